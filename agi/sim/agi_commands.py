"""The AGI command table: what Asterisk 22's res_agi.c answers to each command (handle_*), with the
520 usage texts. A handler writes its reply line and returns res_agi's result code; the session
(agi.sim.agi_session) reads the lines, finds the handler here and wraps it in AGIExec events.
Applications run by EXEC are agi.sim.agi_apps, variables and functions agi.sim.agi_functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from collections.abc import Awaitable, Callable

from agi.sim.agi_apps import APPS
from agi.sim.agi_functions import lookup, substitute
from agi.sim.line import set_var

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession

DEFAULT_GETDATA_TIMEOUT = 2.0  # app.c ast_app_getdata: no timeout given -> 2 s between digits

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


def find_command(argv: list[str]) -> _Spec | None:
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
