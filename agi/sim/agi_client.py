"""The FastAGI client half of the simulator: what Asterisk 22's ``AGI(agi://...)`` does on a channel.

It connects to the FastAGI server, sends the ``agi_*`` block exactly as the traces show, then answers
commands the way res_agi.c does (reply texts, 510/511/520, the out-of-band ``HANGUP`` lines), plays
prompts to the simulated person (``agi.sim.callee``), runs ``EXEC`` applications (``Queue`` through
``agi.sim.queues``) and emits the AMI events Asterisk emits around AGI commands. It never blocks the
simulator: a silent or vanished server ends the session after ``server_timeout`` wall-clock seconds.

Fault hooks: ``faults`` is any object; these attributes are read when present (all optional):
- ``agi_connect_delay`` (float, simulated s): wait this long before connecting;
- ``agi_never_connect`` (bool): never connect; after Asterisk's connect timeout AGISTATUS=FAILURE;
- ``agi_close_on`` (str): close the socket, without a reply, when a command starting with this text
  (case-insensitive; ``"*"`` = any command) arrives: the socket dies mid-command.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from agi.sim.callee import far_end

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.line import SimLine
    from agi.sim.queues import QueueSystem

AGI_VERSION = "22.10.1"  # the Asterisk the traces were captured from
AGI_PORT = 4573  # FastAGI default port (res_agi.c AGI_PORT)
CONNECT_TIMEOUT = 2.0  # res_agi.c MAX_AGI_CONNECT: 2000 ms to connect to a FastAGI server
SAMPLE_RATE = 8000  # endpos is in 8 kHz samples (slin/ulaw prompts)
DEFAULT_GETDATA_TIMEOUT = 2.0  # app.c ast_app_getdata: no timeout given -> 2 s between digits

SUCCESS, FAILURE, HANGUP = "SUCCESS", "FAILURE", "HANGUP"  # AGISTATUS values

MSG_511 = "Command Not Permitted on a dead channel or intercept routine"
MSG_510 = "Invalid or unknown command"

# Prompt lengths in 8 kHz samples of the sounds the traces play (their endpos); others last
# DEFAULT_SOUND_SECONDS.
SOUNDS: dict[str, int] = {
    "beep": 3404,  # agi-session-human-nokeypress.txt
    "hello-world": 11234,  # agi-session-machine-waitforsilence.txt
    "please-try-call-later": 17330,  # agi-session-queue-timeout.txt
}
DEFAULT_SOUND_SECONDS = 3.0
# Prompts that do not exist (EXEC Playback -> PLAYBACKSTATUS=FAILED, as agi-session-playback-getdata-invalidkey.txt)
MISSING_SOUND_PREFIXES = ("no-such", "nosuch", "missing")

# The 520 usage text Asterisk prints per command (WAIT FOR DIGIT is verbatim from the traces; the
# others are the first paragraph of the command's res_agi.c documentation, same markup).
USAGE = {
    ("WAIT", "FOR", "DIGIT"): (
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF "
        "digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit is "
        "received in the timeout, or the numerical value of the ascii of the digit if one is received. "
        "Use <literal>-1</literal> for the <replaceable>timeout</replaceable> value if you desire the "
        "call to block indefinitely."
    ),
    ("STREAM", "FILE"): (
        "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
        "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed, or <literal>-1</literal> on error or if the "
        "channel was disconnected. If musiconhold is playing before calling stream file it will be "
        "automatically stopped and will not be restarted after completion."
    ),
    ("GET", "DATA"): "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
    ("GET", "VARIABLE"): (
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the "
        "variable in parentheses."
    ),
    ("GET", "FULL", "VARIABLE"): (
        "Evaluates the given <replaceable>expression</replaceable> against the channel specified by "
        "<replaceable>channelname</replaceable>, or the current channel if "
        "<replaceable>channelname</replaceable> is not provided."
    ),
    ("SET", "VARIABLE"): "Sets a variable to the current channel.",
    ("EXEC",): "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.",
    ("VERBOSE",): (
        "Sends <replaceable>message</replaceable> to the console via verbose message system. "
        "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>"
    ),
    ("CHANNEL", "STATUS"): "Returns the status of the specified <replaceable>channelname</replaceable>.",
    ("HANGUP",): "Hangs up the specified channel. If no channel name is given, hangs up the current channel",
}


def parse_args(line: str) -> list[str]:
    """Split a command line into words exactly as res_agi.c ``parse_args`` does (quotes, backslash)."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        escaped = False
    if cur is not None and argv:
        argv[-1] = "".join(cur)
    return argv


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


def _is_dead(line: Any) -> bool:
    ev = getattr(line, "hangup_requested", None)
    return line.hungup.is_set() or (ev is not None and ev.is_set())


def _dead_event(line: Any) -> asyncio.Event:
    ev = getattr(line, "hangup_requested", None)
    return ev if ev is not None else line.hungup


def set_var(line: Any, name: str, value: str) -> None:
    """Set a channel variable and emit VarSet (through the channel's own setter when it has one)."""
    setter = getattr(line, "set_var", None)
    if setter is not None:
        setter(name, value)
    else:
        line.variables[name.lstrip("_")] = value
        line.emit("VarSet", {"Variable": name, "Value": value})


def sound_samples(name: str) -> int | None:
    """Length of a prompt in samples (``a&b`` plays both); None if a file does not exist."""
    total = 0
    for part in name.split("&"):
        base = part.rsplit("/", 1)[-1]
        if not base or base.startswith(MISSING_SOUND_PREFIXES):
            return None
        total += SOUNDS.get(base, int(DEFAULT_SOUND_SECONDS * SAMPLE_RATE))
    return total


class AgiSession:
    """One FastAGI connection from a channel (created by ``run_agi``)."""

    def __init__(
        self,
        line: "SimLine",
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        result: AgiSessionResult,
        *,
        queues: "QueueSystem | None",
        exit_on_hangup: bool,
        server_timeout: float,
        faults: Any,
        host: str,
        port: int,
        switch: Any = None,
    ) -> None:
        self.line = line
        self.switch = switch  # the simulated switch: creates the channels EXEC Dial rings (may be None)
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
        self.started_dead = _is_dead(line)
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
            if not self.dead and _is_dead(self.line):
                self._signal_hangup()
                await self.flush()
            if self._read is None:
                self._read = asyncio.ensure_future(self.reader.readline())
            waits: set[asyncio.Future] = {self._read}
            hang = None
            if not self.dead:
                hang = asyncio.ensure_future(_dead_event(self.line).wait())
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
        spec = _find(argv)
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
        if _is_dead(self.line):
            return False
        if delay <= 0:
            return True
        ev = _dead_event(self.line)
        try:
            await asyncio.wait_for(ev.wait(), timeout=self.clock.real(delay))
            return False
        except asyncio.TimeoutError:
            return not _is_dead(self.line)

    def _dtmf_events(self, key: str) -> None:
        self.line.emit("DTMFBegin", {"Digit": key, "Direction": "Received"})
        self.line.emit("DTMFEnd", {"Digit": key, "DurationMs": "100", "Direction": "Received"})

    async def read_key(self, until: float | None, accept: str) -> tuple[str | None, float] | None:
        """Listen for a key until simulated time ``until`` (None: forever).

        Returns (key or None on timeout, time), or None if the channel died. Keys not in
        ``accept`` are heard by nobody (lost), as ``ast_waitstream`` ignores them.
        """
        self.far.listen_from(self.clock.now())
        for t, key in self.far.lost[len(self.result.lost_keys):]:
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


USAGE_RC = 1  # res_agi.c RESULT_SHOWUSAGE
FAILURE_RC = 2  # res_agi.c RESULT_FAILURE


@dataclass(frozen=True)
class _Spec:
    words: tuple[str, ...]
    handler: Callable[[AgiSession, list[str]], Awaitable[int]]
    dead_ok: bool


_COMMANDS: list[_Spec] = []


def _command(*words: str, dead_ok: bool = False):
    def deco(fn):
        _COMMANDS.append(_Spec(tuple(words), fn, dead_ok))
        return fn

    return deco


def _find(argv: list[str]) -> _Spec | None:
    upper = [a.upper() for a in argv]
    best = None
    for spec in _COMMANDS:
        n = len(spec.words)
        if tuple(upper[:n]) == spec.words and (best is None or n > len(best.words)):
            best = spec
    return best


# ---- commands (res_agi.c handle_*) ------------------------------------------------------------
@_command("ANSWER")
async def _answer(s: AgiSession, argv: list[str]) -> int:
    s.send("200 result=0")
    return 0


@_command("HANGUP")
async def _hangup(s: AgiSession, argv: list[str]) -> int:
    if len(argv) > 2:
        return USAGE_RC
    s.result.server_hung_up = True
    s.line.hangup(0)  # our own hang-up: the h extension then reads HANGUPCAUSE=0, as in the traces
    s.send("200 result=1")
    return 0


@_command("NOOP", dead_ok=True)
async def _noop(s: AgiSession, argv: list[str]) -> int:
    s.send("200 result=0")
    return 0


@_command("VERBOSE", dead_ok=True)
async def _verbose(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 2:
        return USAGE_RC
    s.send("200 result=1")
    return 0


@_command("CHANNEL", "STATUS")
async def _channel_status(s: AgiSession, argv: list[str]) -> int:
    if len(argv) > 3:
        return USAGE_RC
    s.send(f"200 result={getattr(s.line, 'state', 6)}")  # 6 = AST_STATE_UP
    return 0


@_command("SET", "VARIABLE", dead_ok=True)
async def _set_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return USAGE_RC
    set_var(s.line, argv[2], argv[3])
    s.send("200 result=1")
    return 0


@_command("GET", "VARIABLE", dead_ok=True)
async def _get_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return USAGE_RC
    value = lookup(s, argv[2])
    s.send("200 result=0" if value is None else f"200 result=1 ({value})")
    return 0


@_command("GET", "FULL", "VARIABLE", dead_ok=True)
async def _get_full_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        return USAGE_RC
    s.send(f"200 result=1 ({substitute(s, argv[3])})")
    return 0


@_command("STREAM", "FILE")
async def _stream_file(s: AgiSession, argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        return USAGE_RC
    played = await s.play(argv[2], argv[3])
    if played is None:  # hung up while playing: the stream position where it stopped
        s.send(f"200 result=-1 endpos={s.hung_up_at_sample}")
        return FAILURE_RC
    res, endpos = played
    set_var(s.line, "PLAYBACKSTATUS", "FAILED" if res < 0 else "SUCCESS")
    s.send(f"200 result={res} endpos={endpos}")
    return 0 if res >= 0 else FAILURE_RC


@_command("CONTROL", "STREAM", "FILE")
async def _control_stream_file(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4:
        return USAGE_RC
    played = await s.play(argv[3], argv[4] if len(argv) > 4 else "")
    res = -1 if played is None else played[0]
    s.send(f"200 result={res}")
    return 0 if res >= 0 else FAILURE_RC


@_command("GET", "OPTION")
async def _get_option(s: AgiSession, argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        return USAGE_RC
    played = await s.play(argv[2], argv[3])
    if played is None:
        s.send("200 result=-1 endpos=0")
        return FAILURE_RC
    res, endpos = played
    if res == 0 and len(argv) == 5:
        timeout = int(argv[4]) / 1000 if argv[4].lstrip("-").isdigit() else 5.0
        got = await s.read_key(s.clock.now() + (timeout if timeout > 0 else 5.0), argv[3])
        if got is None:
            s.send(f"200 result=-1 endpos={endpos}")
            return FAILURE_RC
        if got[0] is not None:
            res = ord(got[0])
    s.send(f"200 result={res} endpos={endpos}")
    return 0


@_command("GET", "DATA")
async def _get_data(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 3:
        return USAGE_RC
    timeout = int(argv[3]) / 1000 if len(argv) >= 4 and argv[3].lstrip("-").isdigit() else 0.0
    if timeout <= 0:
        timeout = DEFAULT_GETDATA_TIMEOUT
    maxdigits = int(argv[4]) if len(argv) >= 5 and argv[4].isdigit() else 1024
    digits = ""
    played = await s.play(argv[2], "0123456789*#")
    if played is None:
        s.send("200 result=-1")
        return 0
    if played[0] > 0:
        digits = chr(played[0])
    timed_out = False
    while len(digits) < maxdigits and not digits.endswith("#"):
        got = await s.read_key(s.clock.now() + timeout, "0123456789*#")
        if got is None:
            s.send("200 result=-1")
            return 0
        if got[0] is None:
            timed_out = True
            break
        digits += got[0]
    digits = digits.rstrip("#") if digits.endswith("#") else digits
    s.send(f"200 result={digits} (timeout)" if timed_out else f"200 result={digits}")
    return 0


@_command("WAIT", "FOR", "DIGIT")
async def _wait_for_digit(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return USAGE_RC
    try:
        ms = int(argv[3])
    except ValueError:
        return USAGE_RC
    until = None if ms < 0 else s.clock.now() + ms / 1000
    got = await s.read_key(until, "0123456789*#ABCD")
    if got is None:
        s.send("200 result=-1")
        return FAILURE_RC
    s.send(f"200 result={ord(got[0]) if got[0] else 0}")
    return 0


@_command("SAY", "DIGITS")
@_command("SAY", "NUMBER")
@_command("SAY", "ALPHA")
@_command("SAY", "PHONETIC")
async def _say(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4:
        return USAGE_RC
    played = await s.play("say-" + argv[2], argv[3])
    res = -1 if played is None else played[0]
    s.send(f"200 result={res}")
    return 0 if res >= 0 else FAILURE_RC


@_command("SET", "CONTEXT")
@_command("SET", "EXTENSION")
@_command("SET", "PRIORITY")
@_command("SET", "AUTOHANGUP")
@_command("SET", "MUSIC")
@_command("SEND", "TEXT")
@_command("RECEIVE", "CHAR")
@_command("TDD", "MODE")
async def _plain_ok(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 3:
        return USAGE_RC
    s.send("200 result=0")
    return 0


@_command("SET", "CALLERID")
async def _set_callerid(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return USAGE_RC
    s.send("200 result=1")
    return 0


_DATABASE: dict[tuple[str, str], str] = {}


@_command("DATABASE", "GET", dead_ok=True)
async def _db_get(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return USAGE_RC
    value = _DATABASE.get((argv[2], argv[3]))
    s.send("200 result=0" if value is None else f"200 result=1 ({value})")
    return 0


@_command("DATABASE", "PUT", dead_ok=True)
async def _db_put(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 5:
        return USAGE_RC
    _DATABASE[(argv[2], argv[3])] = argv[4]
    s.send("200 result=1")
    return 0


@_command("DATABASE", "DEL", dead_ok=True)
async def _db_del(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return USAGE_RC
    s.send(f"200 result={1 if _DATABASE.pop((argv[2], argv[3]), None) is not None else 0}")
    return 0


@_command("GOSUB", dead_ok=True)
async def _gosub(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4:
        return USAGE_RC
    s.send("100 result=0 Trying...")  # app_stack.c handle_gosub: sent before the routine runs
    s.send("200 result=0 Gosub complete")
    return 0


@_command("EXEC", dead_ok=True)
async def _exec(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 2:
        return USAGE_RC
    app, data = argv[1], argv[2] if len(argv) > 2 else ""
    s.result.apps.append((app, data))
    runner = APPS.get(app.lower())
    if runner is None:
        s.send("200 result=-2")  # res_agi.c handle_exec: "Could not find application"
        return -2
    # while it runs the application is the channel's (CoreShowChannels shows Queue sales,,,,20)
    saved = (getattr(s.line, "application", None), getattr(s.line, "appdata", None))
    if saved[0] is not None:
        s.line.application, s.line.appdata = app, data
    try:
        res = await runner(s, data)
    finally:
        if saved[0] is not None:
            s.line.application, s.line.appdata = saved
    s.send(f"200 result={res}")
    return res


# ---- applications run by EXEC (their dialplan behaviour) -----------------------------------------
async def _app_playback(s: AgiSession, data: str) -> int:
    name = data.split(",")[0]
    if s.dead or sound_samples(name) is None:
        set_var(s.line, "PLAYBACKSTATUS", "FAILED")
        return 0
    played = await s.play(name, "")
    if played is None:
        return -1
    set_var(s.line, "PLAYBACKSTATUS", "SUCCESS")
    return 0


async def _app_wait(s: AgiSession, data: str) -> int:
    try:
        seconds = float(data or 0)
    except ValueError:
        seconds = 0.0
    if s.dead:
        return -1
    end = s.clock.now() + seconds
    if not await s.sleep_until(end):
        return -1
    s.lose_keys_until(end)
    return 0


async def _app_wait_for_silence(s: AgiSession, data: str) -> int:
    """WaitForSilence(ms,iterations,timeout): WAITSTATUS=SILENCE or TIMEOUT (app_waitforsilence.c)."""
    parts = (data.split(",") + ["", "", ""])[:3]
    ms = int(parts[0] or 1000)
    timeout = float(parts[2] or 0)
    if s.dead:
        set_var(s.line, "WAITSTATUS", "HANGUP")
        return -1
    now = s.clock.now()
    silent_from = max(now, s.far.answered_at + s.far.callee.silence_from())
    done_at = silent_from + ms / 1000
    if timeout > 0 and done_at > now + timeout:
        ok = await s.sleep_until(now + timeout)
        status = "TIMEOUT"
    else:
        ok = await s.sleep_until(done_at)
        status = "SILENCE"
    if not ok:
        set_var(s.line, "WAITSTATUS", "HANGUP")
        return -1
    s.lose_keys_until(s.clock.now())
    set_var(s.line, "WAITSTATUS", status)
    return 0


async def _app_noop(s: AgiSession, data: str) -> int:
    return 0


async def _app_answer(s: AgiSession, data: str) -> int:
    return -1 if s.dead else 0


async def _app_hangup(s: AgiSession, data: str) -> int:
    if not s.dead:
        s.result.server_hung_up = True
        s.line.hangup(int(data) if data.isdigit() else 16)
    return -1


async def _app_set(s: AgiSession, data: str) -> int:
    name, _, value = data.partition("=")
    if name:
        set_var(s.line, name.strip(), value)
    return 0


DIAL_RING_SECONDS = 1.0
DIAL_TALK_SECONDS = 4.3  # agi-session-human-*: EXEC Dial Local/agent@agents,20 lasted ~5.35 s


async def _app_dial(s: AgiSession, data: str) -> int:
    """Dial(dest,timeout): the far party answers after a ring, talks, hangs up (result -1, DIALSTATUS)."""
    if s.dead:
        return -1
    exec_dial = getattr(s.switch, "exec_dial", None)
    if exec_dial is not None:
        res = await exec_dial(s, data)
        if res is not None:  # the switch rang a channel of its own (Local/x@ctx with that extension)
            return res
    for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
        set_var(s.line, name, "")
    start = s.clock.now()
    if not await s.sleep_until(start + DIAL_RING_SECONDS):
        set_var(s.line, "DIALSTATUS", "CANCEL")
        return -1
    answered = s.clock.now()
    ok = await s.sleep_until(answered + DIAL_TALK_SECONDS)
    s.lose_keys_until(s.clock.now())
    end = s.clock.now()
    set_var(s.line, "DIALEDTIME", str(int(end - start)))
    set_var(s.line, "ANSWEREDTIME", str(int(end - answered)))
    set_var(s.line, "DIALSTATUS", "ANSWER")
    if ok and hasattr(s.line, "hangupcause"):
        s.line.hangupcause = 16  # the called party's normal clearing becomes our HANGUPCAUSE
    return -1  # app_dial returns -1 when the called party hangs up: read DIALSTATUS (docs/outcomes.md)


async def _app_queue(s: AgiSession, data: str) -> int:
    if s.queues is None:
        from agi.sim.queues import QueueSystem

        s.queues = QueueSystem()
    return await s.queues.run_caller(s, data)


APPS: dict[str, Callable[[AgiSession, str], Awaitable[int]]] = {
    "playback": _app_playback,
    "background": _app_playback,
    "wait": _app_wait,
    "waitforsilence": _app_wait_for_silence,
    "noop": _app_noop,
    "answer": _app_answer,
    "hangup": _app_hangup,
    "set": _app_set,
    "dial": _app_dial,
    "queue": _app_queue,
}


# ---- variables and dialplan functions ------------------------------------------------------------
def lookup(s: AgiSession, name: str) -> str | None:
    """GET VARIABLE: a dialplan function when the name ends in ')', else a variable or builtin."""
    line = s.line
    if name.endswith(")"):
        return _function(s, name)
    variables = line.variables
    if name in variables:
        return variables[name]
    builtin = {
        "CHANNEL": lambda: line.name,
        "UNIQUEID": lambda: line.uniqueid,
        "EXTEN": lambda: s.extension,
        "CONTEXT": lambda: s.context,
        "PRIORITY": lambda: str(s.priority),
        "HANGUPCAUSE": lambda: str(getattr(line, "hangupcause", variables.get("HANGUPCAUSE", "0"))),
        "EPOCH": lambda: str(int(s.clock.now())),
    }.get(name)
    return builtin() if builtin else None


def _function(s: AgiSession, expr: str) -> str | None:
    line = s.line
    fname, _, arg = expr[:-1].partition("(")
    fname, arg = fname.upper(), arg.strip()
    now = s.clock.now()
    answered = getattr(line, "answered_at", None) or s.far.answered_at
    created = getattr(line, "created", None) or answered
    forked = getattr(line, "cdr_started", None)  # the caller's CDR started over (agi.sim.queues)
    if forked is not None:
        answered, created = max(answered, forked), max(created, forked)
    if fname == "CDR":
        return {
            "billsec": str(max(0, int(now - answered))),
            "duration": str(max(0, int(now - created))),
            "disposition": "ANSWERED",
            "uniqueid": line.uniqueid,
            "channel": line.name,
        }.get(arg.lower(), "")
    if fname == "CALLERID":
        if arg.lower() in ("num", "number"):
            return getattr(line, "callerid_num", "") or line.variables.get("CALLERID(num)", "")
        if arg.lower() == "name":
            return getattr(line, "callerid_name", "") or ""
        return ""
    if fname == "CHANNEL":
        key = arg.lower()
        if key == "state":
            return "Up"
        if key in ("hangupsource", "hangup_handler_push"):
            return ""
        if key == "language":
            return getattr(line, "language", "en")
        return line.variables.get(expr)
    if fname == "FAXOPT":
        if arg.lower() == "faxdetect":
            return line.variables.get("FAXOPT(faxdetect)", "no")
        return line.variables.get(expr, "")
    if fname == "HANGUPCAUSE_KEYS":
        return ""
    if expr in line.variables:
        return line.variables[expr]
    return None


def substitute(s: AgiSession, text: str) -> str:
    """${...} substitution of GET FULL VARIABLE (variables, builtins, the functions above)."""
    out = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                j += 1
            inner = substitute(s, text[i + 2 : j - 1])
            out.append(lookup(s, inner) or "")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# ---- the AGI() application ----------------------------------------------------------------------
def agi_env(
    line: "SimLine", request: str, script: str, args: list[str], *, context: str, extension: str, priority: int
) -> list[str]:
    """The ``agi_*`` lines Asterisk 22 sends, in its order (res_agi.c setup_env)."""
    tech = line.name.split("/", 1)[0]
    callerid = getattr(line, "callerid_num", "") or line.variables.get("CALLERID(num)", "")
    calleridname = getattr(line, "callerid_name", "") or line.variables.get("CALLERID(name)", "")
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: {request}",
        f"agi_channel: {line.name}",
        f"agi_language: {getattr(line, 'language', 'en') or 'en'}",
        f"agi_type: {tech}",
        f"agi_uniqueid: {line.uniqueid}",
        f"agi_version: {AGI_VERSION}",
        f"agi_callerid: {callerid or 'unknown'}",
        f"agi_calleridname: {calleridname or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        f"agi_priority: {priority}",
        "agi_enhanced: 0.0",
        f"agi_accountcode: {getattr(line, 'accountcode', '') or ''}",
        f"agi_threadid: {_thread_id()}",
    ]
    lines += [f"agi_arg_{n}: {a}" for n, a in enumerate(args, 1)]
    return lines


def _thread_id() -> int:
    # a pthread_t as glibc prints it: an address in the upper half of the 47-bit user space
    return random.randrange(0x7F0000000000, 0x7FFFFFFFFFFF) & ~0x3F


async def run_agi(
    line: "SimLine",
    host: str,
    port: int,
    script: str,
    args: list[str],
    *,
    context: str,
    extension: str,
    priority: int,
    faults: Any = None,
    exit_on_hangup: bool = False,
    queues: "QueueSystem | None" = None,
    server_timeout: float = 30.0,
    request: str | None = None,
    switch: Any = None,
) -> AgiSessionResult:
    """Run ``AGI(agi://host:port/script,args...)`` on ``line``; sets AGISTATUS and returns what happened.

    ``script`` keeps its query (``outbound?campaign=1``), no leading slash. ``server_timeout`` is in
    wall-clock seconds: how long the client waits for the server's next line before giving up.
    ``exit_on_hangup`` is the channel's ``AGIEXITONHANGUP=yes``.
    """
    script = script.lstrip("/")
    request = request or f"agi://{host}:{port}/{script}"
    result = AgiSessionResult(status=FAILURE, script=script, request=request)
    delay = float(getattr(faults, "agi_connect_delay", 0) or 0) if faults is not None else 0.0
    if delay > 0:
        await line.clock.sleep(delay)
    if faults is not None and getattr(faults, "agi_never_connect", False):
        await line.clock.sleep(CONNECT_TIMEOUT)
        result.error = "fault: FastAGI connection never made"
        set_var(line, "AGISTATUS", FAILURE)
        return result
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=max(CONNECT_TIMEOUT, 0.5)
        )
    except (OSError, asyncio.TimeoutError) as exc:
        result.error = f"cannot connect to FastAGI server {host}:{port}: {exc or 'timeout'}"
        set_var(line, "AGISTATUS", FAILURE)
        return result
    result.connected = True
    session = AgiSession(
        line, reader, writer, result, queues=queues, exit_on_hangup=exit_on_hangup,
        server_timeout=server_timeout, faults=faults, host=host, port=port, switch=switch,
    )
    session.context, session.extension, session.priority = context, extension, priority
    for text in agi_env(line, request, script, args, context=context, extension=extension, priority=priority):
        session.send(text)
    session.send("")
    await session.flush()
    await session.serve()
    result.caller_hung_up = session.went_dead and not result.server_hung_up
    if result.error is not None:
        result.status = FAILURE
    elif session.went_dead:
        result.status = HANGUP
    else:
        result.status = SUCCESS
    set_var(line, "AGISTATUS", result.status)
    return result
