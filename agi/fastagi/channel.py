"""The async channel API a flow talks to: one method per AGI command, each with its own timeout.

The connection's protocol hands every line over as it arrives, so an unsolicited ``HANGUP`` is
seen at any moment (between commands or in the middle of one) and a reply is only ever given to
the command waiting for it; a command that timed out has its late reply discarded, not misread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agi.fastagi.errors import (
    AGIAppError,
    AGIConnectionClosed,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIResultHangup,
    AGITimeout,
    AGIUnknownError,
    AGIUsageError,
)
from agi.fastagi.protocol import HANGUP, Reply, ReplyReader, always_quote, command_line, quote
from agi.metrics import AGI_COMMAND_SECONDS
from agi.outcomes import Disposition

log = logging.getLogger(__name__)

# res_agi.c commands[]: the ones flagged to run on a dead channel (after HANGUP); others get 511.
DEAD_OK = frozenset(
    {
        "ASYNCAGI BREAK",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET FULL VARIABLE",
        "GET VARIABLE",
        "GOSUB",
        "NOOP",
        "SET VARIABLE",
        "VERBOSE",
    }
)



_LATENCY: dict = {}  # command -> its child of the AGI command latency histogram


def _latency(word: str):
    """The histogram child of one command (looked up once: commands are our code's, a few dozen)."""
    child = _LATENCY.get(word)
    if child is None:
        child = _LATENCY[word] = AGI_COMMAND_SECONDS.labels(word)
    return child


def _runs_when_dead(command: str) -> bool:
    """'GET VARIABLE', 'EXEC', also a whole line like 'EXEC NoOp x' (upper-cased)."""
    return command in DEAD_OK or any(command.startswith(d + " ") for d in DEAD_OK)


# Every DTMF key a phone sends (RFC 4733 events 0-11; A-D are not on consumer phones).
DTMF_KEYS = "0123456789*#"


@dataclass
class Timeouts:
    """Seconds to wait for a reply, per kind of command (beyond them: AGITimeout)."""

    quick: float = 2.0  # GET/SET VARIABLE, VERBOSE, NOOP, CHANNEL STATUS, HANGUP: Asterisk answers at once
    answer: float = 10.0
    media: float = 600.0  # STREAM FILE, SAY: as long as the longest prompt
    input_grace: float = 5.0  # added to the time a GET DATA / WAIT FOR DIGIT may listen
    exec: float = 4 * 3600.0  # EXEC Queue/Dial: a bridged agent call can last hours


@dataclass(frozen=True)
class MenuResult:
    """What ``AGIChannel.menu`` got.

    ``key``: the key on offer the person pressed, else None; ``keys``: every key pressed, in order
    (the invalid ones too); ``outcome``: without a key on offer, WRONG_KEY if only keys not on
    offer came, NO_KEY if none came after the prompt played through at least once, None if the
    person hung up during its first play without a key; ``hung_up``: the person left during the menu.
    """

    key: str | None
    keys: str
    outcome: Disposition | None
    hung_up: bool = False

    @staticmethod
    def no_choice(pressed: Sequence[str], heard: bool) -> Disposition | None:
        if pressed:
            return Disposition.WRONG_KEY
        return Disposition.NO_KEY if heard else None


class AGIChannel:
    """One FastAGI session's command side.

    ``hung_up`` turns True when Asterisk says so (the ``HANGUP`` line, a 511 reply) or closes the
    socket; from then on only the commands res_agi allows on a dead channel (GET/SET VARIABLE,
    VERBOSE, EXEC, ...) are sent; the others raise AGIHangup without writing anything.

    The connection's protocol feeds it every line as it arrives (``feed_line``, ``feed_eof``), so
    HANGUP is seen at once whether or not a command is waiting, with no reader task.
    """

    def __init__(
        self, transport: asyncio.BaseTransport, *, timeouts: Timeouts | None = None, label: str = ""
    ) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self.timeouts = timeouts or Timeouts()
        self.label = label  # for log lines: the uniqueid
        self.hung_up = False
        self.closed = False  # Asterisk closed its side: nothing can be sent any more
        self._hangup_event = asyncio.Event()
        self._closed_event = asyncio.Event()
        self._replies = ReplyReader()
        self._pending: asyncio.Future[Reply] | None = None
        self._stale = 0  # replies still owed to commands that timed out
        self._broken: AGIProtocolError | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ fed by the protocol

    def feed_line(self, raw: bytes) -> None:
        """One line from Asterisk (with its LF): a reply part, or the out-of-band HANGUP."""
        if self._broken is not None:
            return
        try:
            item = self._replies.feed(raw)
        except AGIProtocolError as exc:
            self.fail(exc)
            return
        if item is None:
            return
        if item is HANGUP:
            self._mark_hung_up("HANGUP from Asterisk")
        elif self._stale:
            self._stale -= 1
            log.debug("%s: discarding late reply %r of a timed-out command", self.label, item.text)
        elif self._pending is not None:
            fut, self._pending = self._pending, None
            if not fut.done():
                fut.set_result(item)
        else:
            log.warning("%s: reply %r with no command waiting: ignored", self.label, item.text)

    def feed_eof(self) -> None:
        """Asterisk closed the connection (or it was lost)."""
        if self.closed:
            return
        self.closed = True
        self._mark_hung_up("connection closed")
        self._closed_event.set()
        self._fail_pending(AGIConnectionClosed("Asterisk closed the connection"))

    def fail(self, exc: AGIProtocolError) -> None:
        """The peer is not speaking AGI: nothing it sends can be trusted any more; drop it."""
        if self._broken is None:
            log.warning("%s: protocol error, closing: %s", self.label, exc)
            self._broken = exc
        self._fail_pending(exc)
        self._transport.abort()

    def _fail_pending(self, exc: Exception) -> None:
        if self._pending is not None:
            fut, self._pending = self._pending, None
            if not fut.done():
                fut.set_exception(exc)

    def _mark_hung_up(self, why: str) -> None:
        if not self.hung_up:
            log.debug("%s: hung up (%s)", self.label, why)
            self.hung_up = True
            self._hangup_event.set()

    def _expire(self, fut: asyncio.Future, command: str, limit: float) -> None:
        """A command's timeout: fail it, and owe its late reply to the bin, not to the next command."""
        if fut.done():
            return
        if self._pending is fut:
            self._pending = None
            self._stale += 1
        fut.set_exception(AGITimeout(f"{command}: no reply within {limit:g} s"))

    # ------------------------------------------------------------------ state

    async def wait_hangup(self) -> None:
        """Return once the channel is hung up (HANGUP line, 511, or connection closed)."""
        await self._hangup_event.wait()

    # ------------------------------------------------------------------ commands

    async def execute(self, command: str, *args: str, timeout: float | None = None) -> Reply:
        """Send one command (``args`` already quoted) and return its 200 reply.

        Raises AGIInvalidCommand (510), AGIHangup (511, or hung up and the command does not run
        on a dead channel), AGIUsageError (520), AGIUnknownError (other codes), AGITimeout,
        AGIConnectionClosed, AGIProtocolError. Low level: flows use the methods below.
        """
        word = command.upper()
        async with self._lock:
            if self._broken is not None:
                raise AGIProtocolError(f"{command}: session dropped after a protocol error: {self._broken}")
            if self.closed:
                raise AGIConnectionClosed(f"{command}: Asterisk closed the connection")
            if self.hung_up and not _runs_when_dead(word):
                raise AGIHangup(f"{command}: the channel is hung up")
            fut: asyncio.Future[Reply] = self._loop.create_future()
            self._pending = fut
            # no drain: one short line per reply awaited, so at most one command is ever buffered
            self._transport.write(command_line(command, *args))
            sent = time.perf_counter()
            limit = self.timeouts.quick if timeout is None else timeout
            timer = self._loop.call_later(limit, self._expire, fut, command, limit)
            try:
                reply = await fut
            finally:
                timer.cancel()
            _latency(word).observe(time.perf_counter() - sent)
        return self._check(command, reply)

    def _check(self, command: str, reply: Reply) -> Reply:
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._mark_hung_up("511")
            raise AGIHangup(f"{command}: {reply.text}")
        if reply.code == 510:
            raise AGIInvalidCommand(f"{command}: {reply.text}")
        if reply.code == 520:
            raise AGIUsageError(f"{command}: {reply.text}\n{reply.usage}".rstrip())
        raise AGIUnknownError(reply.code, f"{command}: unexpected reply {reply.text!r}")

    @staticmethod
    def _media_result(command: str, reply: Reply) -> Reply:
        """For media commands result=-1 means the channel hung up (or the file could not be opened)."""
        if reply.result == "-1":
            raise AGIResultHangup(f"{command}: result=-1 (hung up)")
        return reply

    @staticmethod
    def _key(reply: Reply) -> str | None:
        """result=<ascii code of the key> or 0 -> the key or None."""
        code = reply.result_int
        return chr(code) if code > 0 else None

    async def answer(self, *, timeout: float | None = None) -> None:
        reply = await self.execute("ANSWER", timeout=timeout or self.timeouts.answer)
        self._media_result("ANSWER", reply)

    async def stream_file(
        self, file: str, escape_digits: str = "", *, offset: int | None = None, timeout: float | None = None
    ) -> str | None:
        """Play ``file``; the key that interrupted it (one of ``escape_digits``), else None."""
        args = [quote(file), always_quote(escape_digits)]
        if offset is not None:
            args.append(str(int(offset)))
        reply = await self.execute("STREAM FILE", *args, timeout=timeout or self.timeouts.media)
        return self._key(self._media_result("STREAM FILE", reply))

    async def get_data(
        self, file: str, timeout_ms: int = 5000, max_digits: int = 1, *, timeout: float | None = None
    ) -> str:
        """Play ``file`` and collect up to ``max_digits`` keys; '' if none before the timeout."""
        limit = timeout or self.timeouts.media + max(1, max_digits) * timeout_ms / 1000 + self.timeouts.input_grace
        reply = await self.execute("GET DATA", quote(file), str(int(timeout_ms)), str(int(max_digits)), timeout=limit)
        return self._media_result("GET DATA", reply).result or ""

    async def wait_for_digit(self, timeout_ms: int = 5000, *, timeout: float | None = None) -> str | None:
        """Listen up to ``timeout_ms`` (-1: forever) for one key; the key or None."""
        if timeout is None:
            timeout = self.timeouts.exec if timeout_ms < 0 else timeout_ms / 1000 + self.timeouts.input_grace
        reply = await self.execute("WAIT FOR DIGIT", str(int(timeout_ms)), timeout=timeout)
        return self._key(self._media_result("WAIT FOR DIGIT", reply))

    async def say_digits(self, digits: str, escape_digits: str = "", *, timeout: float | None = None) -> str | None:
        reply = await self.execute(
            "SAY DIGITS", quote(digits), always_quote(escape_digits), timeout=timeout or self.timeouts.media
        )
        return self._key(self._media_result("SAY DIGITS", reply))

    async def say_number(self, number: int, escape_digits: str = "", *, timeout: float | None = None) -> str | None:
        reply = await self.execute(
            "SAY NUMBER", str(int(number)), always_quote(escape_digits), timeout=timeout or self.timeouts.media
        )
        return self._key(self._media_result("SAY NUMBER", reply))

    async def get_variable(self, name: str, *, timeout: float | None = None) -> str | None:
        """A channel variable or function value; None when unset (result=0)."""
        reply = await self.execute("GET VARIABLE", quote(name), timeout=timeout)
        return (reply.data or "") if reply.result == "1" else None

    async def get_full_variable(
        self, expression: str, channel: str | None = None, *, timeout: float | None = None
    ) -> str | None:
        """An expression like '${CDR(billsec)}|${HANGUPCAUSE}' evaluated on the channel."""
        args = [always_quote(expression)] + ([quote(channel)] if channel else [])
        reply = await self.execute("GET FULL VARIABLE", *args, timeout=timeout)
        return (reply.data or "") if reply.result == "1" else None

    async def set_variable(self, name: str, value: object, *, timeout: float | None = None) -> None:
        await self.execute("SET VARIABLE", quote(name), always_quote(value), timeout=timeout)

    async def exec(self, app: str, *args: object, timeout: float | None = None) -> int:
        """Run a dialplan application; its result code.

        result=-1 is NOT a hang-up here: after ``Queue``/``Dial`` it only says the bridge ended
        (the person may still be there); read ``hung_up`` and the app's variables instead.
        Raises AGIAppError when Asterisk has no such application (result=-2).
        """
        data = ",".join(str(a) for a in args)
        words = [quote(app)] + ([quote(data)] if args else [])
        reply = await self.execute("EXEC", *words, timeout=timeout or self.timeouts.exec)
        code = reply.result_int
        if code == -2:
            raise AGIAppError(f"EXEC {app}: no such application in Asterisk (result=-2)")
        return code

    async def verbose(self, message: str, level: int = 1, *, timeout: float | None = None) -> None:
        await self.execute("VERBOSE", always_quote(message), str(int(level)), timeout=timeout)

    async def noop(self, *, timeout: float | None = None) -> None:
        await self.execute("NOOP", timeout=timeout)

    async def channel_status(self, *, timeout: float | None = None) -> int:
        """res_agi channel state: 6 = up (AGIHangup once it is hung up)."""
        reply = await self.execute("CHANNEL STATUS", timeout=timeout)
        return reply.result_int

    async def hangup(self, *, timeout: float | None = None) -> None:
        """Hang the channel up; nothing to do (and nothing sent) if it already is."""
        if self.hung_up:
            return
        try:
            await self.execute("HANGUP", timeout=timeout)
        except AGIHangup:
            pass  # 511: it already was; AGIConnectionClosed: gone
        self._mark_hung_up("we hung up")

    # ------------------------------------------------------------------ IVR helper

    async def menu(
        self,
        file: str | Sequence[str],
        keys: Iterable[str],
        *,
        tries: int = 3,
        timeout: float = 5.0,
        invalid_file: str | None = None,
    ) -> MenuResult:
        """Play a prompt and get one of ``keys``; what happened, also when the person hangs up.

        Listens the whole time (docs/outcomes.md "DTMF"): the prompt plays with every key as an escape
        digit, then WAIT FOR DIGIT listens ``timeout`` seconds more. Silence or an invalid key
        replays the prompt (after ``invalid_file`` for an invalid key), up to ``tries`` times.
        A hang-up ends the menu without an exception: the result says what the person had done
        by then (docs/outcomes.md "Live-answer outcomes", no_key and wrong_key).
        """
        files = [file] if isinstance(file, str) else list(file)
        valid = {str(k) for k in keys}
        pressed: list[str] = []
        heard = False  # the whole prompt played through at least once
        carried: str | None = None  # a key pressed during the invalid-key prompt answers the next try
        try:
            for attempt in range(max(1, tries)):
                key = carried
                carried = None
                if key is None:
                    for f in files:
                        key = await self.stream_file(f, DTMF_KEYS)
                        if key is not None:
                            break
                    else:
                        heard = True
                    if key is None:
                        key = await self.wait_for_digit(int(timeout * 1000))
                if key is None:
                    continue
                pressed.append(key)
                if key in valid:
                    return MenuResult(key, "".join(pressed), None)
                if invalid_file and attempt < tries - 1:
                    carried = await self.stream_file(invalid_file, DTMF_KEYS)
        except AGIHangup:
            return MenuResult(None, "".join(pressed), MenuResult.no_choice(pressed, heard), hung_up=True)
        return MenuResult(None, "".join(pressed), MenuResult.no_choice(pressed, heard))

    # ------------------------------------------------------------------ closing

    async def close(self, linger: float = 2.0) -> None:
        """End the session the way Asterisk expects: half-close, read to its EOF (≤ linger s), close."""
        if not self.closed and self._broken is None:
            try:
                if self._transport.can_write_eof():
                    self._transport.write_eof()
                async with asyncio.timeout(linger):
                    await self._closed_event.wait()
            except (TimeoutError, ConnectionError, OSError):
                pass
        self.abort()

    def abort(self) -> None:
        """Close the socket now."""
        self._transport.abort()
        self.feed_eof()
