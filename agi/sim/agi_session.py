"""One FastAGI session from a channel, as Asterisk 22's res_agi.c runs it: read command lines, answer
each from the command table (agi.sim.agi_commands) with AGIExecStart/AGIExecEnd around it, the
511/510/520 replies, the out-of-band ``HANGUP`` lines; and the channel's side of the call that the
commands need: simulated time, the person's keys (agi.sim.callee), prompts. It never blocks the
simulator: a silent or vanished server ends the session after ``server_timeout`` wall-clock seconds.

Fault hook (``faults`` is any object; read when present): ``agi_close_on`` (str): close the socket,
without a reply, when a command starting with this text (case-insensitive; ``"*"`` = any command)
arrives: the socket dies mid-command.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable

from agi.sim.agi_commands import FAILURE_RC, USAGE, USAGE_RC, find_command, parse_args
from agi.sim.callee import far_end
from agi.sim.line import dead_event, is_dead
from agi.sim.sounds import SAMPLE_RATE, sound_samples

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.line import SimLine
    from agi.sim.queues import QueueSystem

MSG_511 = "Command Not Permitted on a dead channel or intercept routine"
MSG_510 = "Invalid or unknown command"


@dataclass
class AgiSessionResult:
    """What one FastAGI session did (AGISTATUS and what the server asked of the channel)."""

    status: str  # AGISTATUS: SUCCESS | FAILURE | HANGUP
    script: str  # e.g. "outbound?campaign=1"
    request: str = ""  # agi_request
    connected: bool = False
    commands: list[str] = field(default_factory=list)  # every command line received, in order
    keys: list[str] = field(default_factory=list)  # digits delivered to the server
    lost_keys: list[str] = field(default_factory=list)  # digits pressed while nothing was reading
    apps: list[tuple[str, str]] = field(default_factory=list)  # EXEC'd (application, data)
    agent: str | None = None  # MEMBERINTERFACE when a Queue bridged the call to an agent
    queue_status: str | None = None  # QUEUESTATUS of the last Queue (None: bridged/abandoned/unset)
    caller_hung_up: bool = False  # the channel went down during this session (not by HANGUP)
    server_hung_up: bool = False  # the server sent HANGUP on a live channel
    error: str | None = None  # why the session failed (connect refused, server silent, fault)


class _Closed(Exception):
    """The session is over (socket closed by a fault or AGIEXITONHANGUP)."""


class AgiSession:
    """One FastAGI connection from a channel (created by ``run_agi``)."""

    def __init__(
        self,
        line: SimLine,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        result: AgiSessionResult,
        *,
        queues: QueueSystem | None,
        exit_on_hangup: bool,
        server_timeout: float,
        faults: Any,
        host: str,
        port: int,
        switch: Any = None,
        run_agi: Callable[..., Awaitable[AgiSessionResult]] | None = None,
    ) -> None:
        self.line = line
        self.switch = switch  # the simulated switch: creates the channels EXEC Dial rings (may be None)
        self.run_agi = run_agi  # runs AGI() on another channel (a queue member's wrap-up: agi.sim.agi_client)
        self.reader = reader
        self.writer = writer
        self.result = result
        self.queues = queues
        self.exit_on_hangup = exit_on_hangup
        self.server_timeout = server_timeout
        self.faults = faults
        self.host, self.port = host, port
        self.context, self.extension, self.priority = "", "", 1  # where AGI() runs in the dialplan
        self.clock = line.clock
        self.started_dead = is_dead(line)
        self.dead = self.started_dead  # HANGUP already signalled (or the session began after hang-up)
        self.went_dead = False
        self.hung_up_at_sample = 0
        self._read: asyncio.Task | None = None
        self.far = far_end(line)

    # ---- wire ------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.writer.is_closing():
            return
        self.writer.write((text + "\n").encode("utf-8", "surrogateescape"))

    async def flush(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    def _signal_hangup(self) -> None:
        """The channel died: the out-of-band HANGUP line (AGIEXITONHANGUP: HANGUP twice, then close)."""
        self.dead = True
        self.went_dead = True
        self.send("HANGUP")
        if self.exit_on_hangup:
            self.send("HANGUP")
            raise _Closed()

    async def next_command(self) -> str | None:
        """The next command line, or None when the server closed its side or went silent."""
        while True:
            if not self.dead and is_dead(self.line):
                self._signal_hangup()
                await self.flush()
            if self._read is None:
                self._read = asyncio.ensure_future(self.reader.readline())
            waits: set[asyncio.Future] = {self._read}
            hang = None
            if not self.dead:
                hang = asyncio.ensure_future(dead_event(self.line).wait())
                waits.add(hang)
            done, _ = await asyncio.wait(waits, timeout=self.server_timeout, return_when=asyncio.FIRST_COMPLETED)
            if hang is not None and hang not in done:
                hang.cancel()
            if self._read in done:
                task, self._read = self._read, None
                try:
                    data = task.result()
                except (ConnectionError, OSError, asyncio.LimitOverrunError, ValueError) as exc:
                    self.result.error = f"FastAGI socket error: {exc}"
                    return None
                if not data:
                    return None
                return data.decode("utf-8", "surrogateescape").rstrip("\n").rstrip("\r")
            if hang is not None and hang in done:
                continue  # loop: signal HANGUP, keep reading
            self.result.error = f"FastAGI server sent nothing for {self.server_timeout:g} s: gave up"
            return None

    # ---- session ---------------------------------------------------------------------------
    async def serve(self) -> None:
        try:
            while True:
                line = await self.next_command()
                if line is None:
                    if self.result.error is None:
                        self.send("HANGUP")  # res_agi: the server closed its side -> HANGUP, close
                    break
                await self.command(line)
                await self.flush()
        except _Closed:
            pass
        finally:
            if self._read is not None:
                self._read.cancel()
            await self.flush()
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def command(self, raw: str) -> None:
        self.result.commands.append(raw)
        close_on = getattr(self.faults, "agi_close_on", None) if self.faults is not None else None
        if close_on and (close_on == "*" or raw.upper().startswith(close_on.upper())):
            self.result.error = f"fault: AGI socket closed during {raw!r}"
            raise _Closed()
        command_id = str(random.randrange(1, 2**31))
        self.line.emit("AGIExecStart", {"CommandId": command_id, "Command": raw})
        argv = parse_args(raw)
        spec = find_command(argv)
        if spec is None:
            self.send(f"510 {MSG_510}")
            code, text = 510, MSG_510
        elif self.dead and not spec.dead_ok:
            self.send(f"511 {MSG_511}")
            code, text = 511, MSG_511
        else:
            rc = await spec.handler(self, argv)
            if rc == USAGE_RC:
                code, text = 520, "Usage"
                usage = USAGE.get(spec.words)
                if usage is None:
                    self.send("520 Invalid command syntax.  Proper usage not available.")
                else:
                    self.send("520-Invalid command syntax.  Proper usage follows:")
                    self.send(usage)
                    self.send("520 End of proper usage.")
            elif rc == FAILURE_RC:
                code, text = -1, "Failure"
            elif rc == 0:
                code, text = 200, "Success"
            else:
                code, text = 200, "Unknown Result"
        self.line.emit(
            "AGIExecEnd", {"CommandId": command_id, "Command": raw, "ResultCode": str(code), "Result": text}
        )

    # ---- time, keys, prompts ---------------------------------------------------------------
    async def sleep_until(self, when: float) -> bool:
        """Sleep to simulated time ``when``; False if the channel died first."""
        delay = when - self.clock.now()
        if is_dead(self.line):
            return False
        if delay <= 0:
            return True
        ev = dead_event(self.line)
        try:
            await asyncio.wait_for(ev.wait(), timeout=self.clock.real(delay))
            return False
        except TimeoutError:
            return not is_dead(self.line)

    def _dtmf_events(self, key: str) -> None:
        self.line.emit("DTMFBegin", {"Digit": key, "Direction": "Received"})
        self.line.emit("DTMFEnd", {"Digit": key, "DurationMs": "100", "Direction": "Received"})

    async def read_key(self, until: float | None, accept: str) -> tuple[str | None, float] | None:
        """Listen for a key until simulated time ``until`` (None: forever).

        Returns (key or None on timeout, time), or None if the channel died. Keys not in
        ``accept`` are heard by nobody (lost), as ``ast_waitstream`` ignores them.
        """
        self.far.listen_from(self.clock.now())
        for _t, key in self.far.lost[len(self.result.lost_keys):]:
            self.result.lost_keys.append(key)
            self._dtmf_events(key)
        while True:
            nxt = self.far.next_key()
            if nxt is None or (until is not None and nxt[0] >= until):
                if until is None:
                    # nothing will ever come: wait for the hang-up (or a very long time)
                    ok = await self.sleep_until(self.clock.now() + 10**9)
                    return None if not ok else (None, self.clock.now())
                ok = await self.sleep_until(until)
                return (None, until) if ok else None
            t, key = nxt
            if not await self.sleep_until(t):
                return None
            self._dtmf_events(key)
            if key in accept:
                self.far.take_key(t, key, used=True)
                self.result.keys.append(key)
                return key, t
            self.far.take_key(t, key, used=False)
            self.result.lost_keys.append(key)

    def lose_keys_until(self, now: float) -> None:
        """Keys pressed while nothing was reading (e.g. during EXEC Playback) are lost."""
        self.far.listen_from(now)
        for _t, key in self.far.lost[len(self.result.lost_keys):]:
            self.result.lost_keys.append(key)
            self._dtmf_events(key)

    async def play(self, name: str, escape: str) -> tuple[int, int] | None:
        """Play a prompt; (result, endpos) with result = ascii of an escape key or 0; None if dead.

        A missing file gives (-1, 0). ``self.hung_up_at_sample`` keeps where a hang-up cut the prompt.
        """
        samples = sound_samples(name)
        if samples is None:
            return -1, 0
        seconds = samples / SAMPLE_RATE
        start = self.clock.now()
        self.far.prompt_started(self.line, start)
        end = start + seconds
        self.hung_up_at_sample = 0
        if escape:
            got = await self.read_key(end, escape)
            if got is None:
                self.hung_up_at_sample = min(samples, int((self.clock.now() - start) * SAMPLE_RATE))
                return None
            key, t = got
            if key is not None:
                return ord(key), min(samples, int((t - start) * SAMPLE_RATE))
            return 0, samples
        if not await self.sleep_until(end):
            self.hung_up_at_sample = min(samples, int((self.clock.now() - start) * SAMPLE_RATE))
            return None
        self.lose_keys_until(end)
        return 0, samples
