"""The dialplan the simulator runs after answer, declared once as data, and its interpreter.

``PROJECT_DIALPLAN`` is the project's ``[dialer-outbound]``/``[dialer-wrapup]`` (notes/DIALPLAN.md,
dialplan/dialer.conf) parsed from extensions.conf syntax; ``Dialplan.parse`` also reads the capture
rig's dialplan from a trace header, so trace tests run the very steps the real Asterisk ran.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.channels import Channel
    from agi.sim.scenarios import Scenario

# The project's dialplan, step for step (dialplan/dialer.conf; ${DIALER_AGI} defaults to the
# simulator's --agi host:port unless the Originate sets the channel variable __DIALER_AGI).
PROJECT_DIALPLAN_TEXT = """\
[dialer-outbound]
exten => s,1,NoOp(dialer attempt=${ATTEMPT_ID} campaign=${CAMPAIGN_ID} contact=${CONTACT_ID})
 same => n,Set(FAXOPT(faxdetect)=yes)
 same => n,AMD()
 same => n,AGI(agi://${DIALER_AGI}/outbound?campaign=${CAMPAIGN_ID},${AMDSTATUS},${AMDCAUSE})
 same => n,ExecIf($["${AGISTATUS}" = "FAILURE" & "${DIALER_DROP_MESSAGE}" != ""]?Playback(${DIALER_DROP_MESSAGE}))
 same => n,Hangup()
exten => fax,1,AGI(agi://${DIALER_AGI}/fax?campaign=${CAMPAIGN_ID},${FAXEXTEN})
 same => n,Hangup()
exten => h,1,AGI(agi://${DIALER_AGI}/hangup?campaign=${CAMPAIGN_ID},${HANGUPCAUSE})

[dialer-wrapup]
exten => s,1,AGI(agi://${DIALER_AGI}/wrapup,${ATTEMPT_ID})
 same => n,Hangup()
"""


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    app: str
    args: str
    label: str | None = None


@dataclass
class Dialplan:
    """context -> exten -> steps (priority order), plus [globals]."""

    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Dialplan":
        dp = cls()
        context: str | None = None
        last: tuple[str, int] | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            m = re.fullmatch(r"\[([^\]]+)\]\s*(\(.*\))?", line)
            if m:
                context = m.group(1).strip()
                last = None
                if context != "globals":
                    dp.contexts.setdefault(context, {})
                continue
            if context is None:
                raise ValueError(f"line {lineno}: {raw.strip()!r} is outside any [context]")
            if context == "globals":
                k, _, v = line.partition("=")
                dp.globals[k.strip()] = v.strip()
                continue
            m = re.fullmatch(r"(exten|same)\s*=>?\s*(.*)", line)
            if not m:
                if re.match(r"(include|switch|ignorepat)\s*=>", line):
                    continue
                raise ValueError(f"line {lineno}: cannot parse {raw.strip()!r}")
            kind, rest = m.groups()
            if kind == "exten":
                exten, _, rest = rest.partition(",")
                exten = exten.strip()
            else:
                if last is None:
                    raise ValueError(f"line {lineno}: 'same =>' without a preceding 'exten =>'")
                exten = last[0]
            prio_s, _, appcall = rest.partition(",")
            prio_s = prio_s.strip()
            label = None
            lm = re.fullmatch(r"([^(]+)\((\w+)\)", prio_s)
            if lm:
                prio_s, label = lm.group(1), lm.group(2)
            if prio_s == "hint":
                continue
            if prio_s == "n":
                if last is None or last[0] != exten:
                    raise ValueError(f"line {lineno}: priority 'n' without a previous priority")
                prio = last[1] + 1
            else:
                prio = int(prio_s)
            app, args = _split_app(appcall.strip())
            dp.contexts[context].setdefault(exten, []).append(Step(context, exten, prio, app, args, label))
            last = (exten, prio)
        return dp

    @classmethod
    def from_trace_header(cls, header_lines: list[str]) -> "Dialplan":
        """The '#   ...' dialplan lines of a trace header (after '# Dialplan')."""
        out, on = [], False
        for h in header_lines:
            body = h[1:] if h.startswith("#") else h
            if body.strip().startswith("Dialplan"):
                on = True
                continue
            if on:
                if not body.startswith("   "):
                    if body.strip().startswith("[") or body.strip().startswith(("exten", "same")):
                        pass
                    else:
                        on = False
                        continue
                out.append(body.strip())
        return cls.parse("\n".join(out))

    def steps(self) -> list[Step]:
        return [s for ctx in self.contexts.values() for steps in ctx.values() for s in steps]

    def find(self, context: str, exten: str, priority: int) -> Step | None:
        for s in self.contexts.get(context, {}).get(exten, []):
            if s.priority == priority:
                return s
        return None

    def label(self, context: str, exten: str, label: str) -> int | None:
        for s in self.contexts.get(context, {}).get(exten, []):
            if s.label == label:
                return s.priority
        return None

    def has(self, context: str, exten: str) -> bool:
        return exten in self.contexts.get(context, {})



def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if c == ";":
            break
        out.append(c)
        i += 1
    return "".join(out)


def _split_app(call: str) -> tuple[str, str]:
    m = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", call, re.S)
    if not m:
        raise ValueError(f"cannot parse application call {call!r}")
    return m.group(1), m.group(2) or ""


def split_args(s: str, sep: str = ",") -> list[str]:
    """Split application arguments on ``sep`` outside parentheses, brackets and quotes."""
    out, cur, depth, quote = [], [], 0, False
    for c in s:
        if c == '"':
            quote = not quote
        elif not quote and c in "([{":
            depth += 1
        elif not quote and c in ")]}":
            depth -= 1
        if c == sep and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur))
    return out


# ---- variable substitution -------------------------------------------------------------------
def substitute(text: str, lookup: Callable[[str], str]) -> str:
    """Expand ${...} (innermost first) and $[...] like pbx_substitute_variables."""
    for _ in range(50):
        m = re.search(r"\$\{([^{}$]*)\}", text)
        if not m:
            break
        text = text[: m.start()] + lookup(m.group(1)) + text[m.end():]
    for _ in range(50):
        m = re.search(r"\$\[([^\[\]]*)\]", text)
        if not m:
            break
        text = text[: m.start()] + evaluate(m.group(1)) + text[m.end():]
    return text


def evaluate(expr: str) -> str:
    """A small subset of Asterisk's $[...] expressions: = != < > <= >= + - & | and plain values."""
    expr = expr.strip()
    for op in ("|", "&", "!=", "<=", ">=", "=", "<", ">", "+", "-"):
        quote = False
        for i in range(len(expr) - 1, 0, -1):  # rightmost operator outside quotes: left-associative
            if expr[i] == '"':
                quote = not quote
                continue
            if quote or expr[i: i + len(op)] != op:
                continue
            if op in ("=", "<", ">") and (expr[i - 1] in "!<>" or expr[i + 1: i + 2] == "="):
                continue
            a, b = _unquote(evaluate(expr[:i])), _unquote(evaluate(expr[i + len(op):]))
            return _apply(op, a, b)
    return _unquote(expr)


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _apply(op: str, a: str, b: str) -> str:
    na, nb = _num(a), _num(b)
    if op in ("+", "-"):
        r = (na or 0) + (nb or 0) if op == "+" else (na or 0) - (nb or 0)
        return str(int(r)) if r == int(r) else str(r)
    if op == "&":
        return b if a not in ("", "0") and b not in ("", "0") else "0"
    if op == "|":
        return a if a not in ("", "0") else (b if b not in ("", "0") else "0")
    x, y = (na, nb) if na is not None and nb is not None else (a, b)
    result = {"=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]  # type: ignore[operator]
    return "1" if result else "0"


def truthy(value: str) -> bool:
    v = value.strip()
    return v not in ("", "0")


# ---- the interpreter ---------------------------------------------------------------------------
AgiRunner = Callable[["Channel", str, list[str]], Awaitable[Any]]


class _Return(Exception):
    """Return() ends a Gosub (hangup handlers)."""


class Goto(Exception):
    def __init__(self, context: str, exten: str, priority: int) -> None:
        self.target = (context, exten, priority)


class DialplanRunner:
    """Runs one answered channel through a ``Dialplan`` (the part of Asterisk's pbx loop we need)."""

    def __init__(self, dialplan: Dialplan, *, scenario: "Scenario", agi: AgiRunner,
                 defaults: dict[str, str] | None = None) -> None:
        self.dialplan = dialplan
        self.scenario = scenario
        self.agi = agi
        self.defaults = dict(dialplan.globals)
        self.defaults.update(defaults or {})

    # variable lookup: channel variables, then built-ins, then [globals]/defaults
    def lookup(self, chan: "Channel", name: str) -> str:
        if name in chan.variables:
            return chan.variables[name]
        builtin = {
            "CHANNEL": chan.name,
            "UNIQUEID": chan.uniqueid,
            "LINKEDID": chan.linkedid,
            "EXTEN": chan.exten,
            "CONTEXT": chan.context,
            "PRIORITY": str(chan.priority),
            "HANGUPCAUSE": str(chan.hangupcause),
            "CALLERID(num)": chan.callerid_num,
            "CALLERID(name)": chan.callerid_name,
            "CALLERID(all)": f'"{chan.callerid_name}" <{chan.callerid_num}>',
            "FAXOPT(faxdetect)": "yes" if chan.faxdetect else "no",
        }
        if name in builtin:
            return builtin[name]
        return self.defaults.get(name, "")

    async def run(self, chan: "Channel", context: str, exten: str, priority: int = 1) -> None:
        """Main extension until it ends or the channel hangs up, then ``h`` and hangup handlers."""
        await self.run_steps(chan, context, exten, priority)
        if not chan.hungup.is_set():
            # Hangup() / the far end / falling off the end: soft hang-up, then h and the handlers
            chan.emit("SoftHangupRequest", [("Cause", "16")])
            chan.hangup_requested.set()
            await self.run_h(chan)

    async def run_steps(self, chan: "Channel", context: str, exten: str, priority: int = 1) -> None:
        """Run priorities from ``priority`` until the extension ends or the channel is hung up."""
        target: tuple[str, str, int] | None = (context, exten, priority)
        while target is not None:
            ctx, ext, prio = target
            target = None
            step = self.dialplan.find(ctx, ext, prio)
            if step is None or chan.hangup_requested.is_set():
                break
            args = substitute(step.args, lambda n: self.lookup(chan, n))
            chan.newexten(step.app, args, context=ctx, exten=ext, priority=prio)
            try:
                await self.execute(chan, step.app, args)
            except Goto as g:
                target = g.target
                continue
            if chan.hangup_requested.is_set():
                break
            target = (ctx, ext, prio + 1)

    async def run_h(self, chan: "Channel") -> None:
        """The h extension, then the hangup handlers (each a Gosub ending in Return())."""
        if self.dialplan.has(chan.context, "h"):
            prio = 1
            while True:
                step = self.dialplan.find(chan.context, "h", prio)
                if step is None:
                    break
                args = substitute(step.args, lambda n: self.lookup(chan, n))
                chan.newexten(step.app, args, exten="h", priority=prio)
                try:
                    await self.execute(chan, step.app, args)
                except (Goto, _Return):
                    break
                prio += 1
            # Asterisk leaves h one past its last step; AMI shows it only in the next fresh
            # snapshot (the Hangup event), events before keep the last step's priority (traces)
            chan.final_priority = prio
        for hctx, hexten, hprio, hargs in list(chan.hangup_handlers):
            chan.emit("HangupHandlerRun", [("Handler", f"{hctx},{hexten},{hprio}({hargs})")])
            saved = (chan.context, chan.exten)
            argv = split_args(hargs) if hargs else []
            for i, a in enumerate(argv, 1):
                chan.variables[f"ARG{i}"] = a
                chan.emit("VarSet", [("Variable", f"LOCAL(ARG{i})"), ("Value", a)])
            chan.variables["ARGC"] = str(len(argv))
            chan.emit("VarSet", [("Variable", "LOCAL(ARGC)"), ("Value", str(len(argv)))])
            prio = hprio
            while True:
                step = self.dialplan.find(hctx, hexten, prio)
                if step is None:
                    break
                args = substitute(step.args, lambda n: self.lookup(chan, n))
                chan.newexten(step.app, args, context=hctx, exten=hexten, priority=prio)
                try:
                    await self.execute(chan, step.app, args)
                except _Return:
                    for name in ["ARGC"] + [f"ARG{i}" for i in range(len(argv), 0, -1)] + ["GOSUB_RETVAL"]:
                        chan.variables.pop(name, None)
                        chan.emit("VarSet", [("Variable", name), ("Value", "")])
                    break
                except Goto:
                    break
                prio += 1
            chan.context, chan.exten = saved

    # ---- applications -----------------------------------------------------------------------
    async def execute(self, chan: "Channel", app: str, args: str) -> None:
        fn = getattr(self, "app_" + app.lower(), None)
        if fn is None:
            # Asterisk: "No application 'X' for extension": the channel is hung up
            chan.request_hangup(16, soft=True, emit=False)
            return
        await fn(chan, args)

    async def app_noop(self, chan: "Channel", args: str) -> None:
        return None

    async def app_verbose(self, chan: "Channel", args: str) -> None:
        return None

    async def app_set(self, chan: "Channel", args: str) -> None:
        name, _, value = args.partition("=")
        name = name.strip()
        if name == "FAXOPT(faxdetect)":
            chan.faxdetect = value.strip().lower() in ("yes", "true", "1", "cng", "t38")
            return
        if name == "CHANNEL(hangup_handler_push)":
            target = value.strip()
            m = re.fullmatch(r"([^,]+),([^,]+),(\d+)(?:\((.*)\))?", target)
            if m:
                chan.hangup_handlers.insert(0, (m.group(1), m.group(2), int(m.group(3)), m.group(4) or ""))
                chan.emit("HangupHandlerPush", [("Handler", target)])
            return
        chan.set_var(name, value)

    async def app_execif(self, chan: "Channel", args: str) -> None:
        cond, _, rest = args.partition("?")
        branches = split_args(rest, ":")
        chosen = branches[0] if truthy(cond) else (branches[1] if len(branches) > 1 else "")
        if chosen:
            app, appargs = _split_app(chosen)
            await self.execute(chan, app, appargs)

    async def app_gotoif(self, chan: "Channel", args: str) -> None:
        cond, _, rest = args.partition("?")
        branches = split_args(rest, ":")
        chosen = branches[0] if truthy(cond) else (branches[1] if len(branches) > 1 else "")
        if chosen:
            await self.app_goto(chan, chosen)

    async def app_goto(self, chan: "Channel", args: str) -> None:
        parts = split_args(args)
        ctx, ext = chan.context, chan.exten
        if len(parts) == 3:
            ctx, ext, p = parts
        elif len(parts) == 2:
            ext, p = parts
        else:
            p = parts[0]
        prio = int(p) if p.isdigit() else self.dialplan.label(ctx, ext, p)
        if prio is None:
            chan.request_hangup(16, soft=True, emit=False)
            return
        raise Goto(ctx, ext, prio)

    async def app_return(self, chan: "Channel", args: str) -> None:
        raise _Return()

    async def app_wait(self, chan: "Channel", args: str) -> None:
        await wait_or_hangup(chan, float(args or 0))

    async def app_answer(self, chan: "Channel", args: str) -> None:
        return None

    async def app_playback(self, chan: "Channel", args: str) -> None:
        await wait_or_hangup(chan, 1.0)
        chan.set_var("PLAYBACKSTATUS", "SUCCESS")

    async def app_hangup(self, chan: "Channel", args: str) -> None:
        cause = int(args) if args.strip().isdigit() else 16
        chan.hangupcause = cause
        chan.hangup_requested.set()

    async def app_amd(self, chan: "Channel", args: str) -> None:
        sc = self.scenario
        if sc.fax and chan.faxdetect:
            from agi.sim.callee import FAX_DETECT_SECONDS

            if await wait_or_hangup(chan, FAX_DETECT_SECONDS):
                return self._amd_result(chan, "HANGUP", "")
            here = chan.exten
            chan.set_var("FAXEXTEN", here)
            chan.set_var("AMDSTATUS", "HANGUP")
            chan.set_var("AMDCAUSE", "")
            if self.dialplan.has(chan.context, "fax"):
                raise Goto(chan.context, "fax", 1)
            return None
        if sc.fax:  # AMD alone calls a CNG tone HUMAN (trace g')
            status, cause, seconds = "HUMAN", "HUMAN-800-800", sc.callee.amd()[2]
        else:
            status, cause, seconds = sc.amd_status, sc.amd_cause, sc.amd_time
        if await wait_or_hangup(chan, seconds):
            return self._amd_result(chan, "HANGUP", "")
        self._amd_result(chan, status, cause)

    def _amd_result(self, chan: "Channel", status: str, cause: str) -> None:
        chan.set_var("AMDSTATUS", status)
        chan.set_var("AMDCAUSE", cause)

    async def app_agi(self, chan: "Channel", args: str) -> None:
        parts = split_args(args)
        url, agi_args = parts[0], parts[1:]
        await self.agi(chan, url, agi_args)  # the FastAGI client sets AGISTATUS


async def wait_or_hangup(chan: "Channel", seconds: float) -> bool:
    """Sleep simulated ``seconds``; True if the channel got a hang-up request meanwhile."""
    if chan.hangup_requested.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(chan.hangup_requested.wait(), chan.clock.real(seconds))
        return True
    except asyncio.TimeoutError:
        return False


class CalleeRunner(DialplanRunner):
    """The far end's half of a Local channel pair running the callee context (capture rig style):
    Playback/Wait/SendDTMF take their time, Hangup() hangs the call up from the far end."""

    DTMF_SECONDS = 0.45  # SendDTMF of one digit: 250 ms tone + gaps (traces: next step 0.45 s later)
    DTMF_GAP = 0.1  # DTMFBegin 100 ms after the step, DTMFEnd 100 ms after that (traces)

    def __init__(self, dialplan: Dialplan, *, scenario: "Scenario", near: "Channel",
                 sounds: dict[str, float] | None = None, default_sound: float = 30.0) -> None:
        super().__init__(dialplan, scenario=scenario, agi=_no_agi)
        self.near = near
        self.sounds = sounds or {}
        self.default_sound = default_sound
        self.defaults.setdefault("SND", "sounds")

    def sound_seconds(self, name: str) -> float:
        base = name.rsplit("/", 1)[-1]
        return self.sounds.get(base, self.default_sound)

    async def app_playback(self, chan: "Channel", args: str) -> None:
        chan.playing = True
        if await wait_or_hangup(chan, sum(self.sound_seconds(n) for n in split_args(args)[0].split("&"))):
            return  # interrupted: the hang-up choreography reports PLAYBACKSTATUS
        chan.playing = False
        chan.set_var("PLAYBACKSTATUS", "SUCCESS")

    async def app_senddtmf(self, chan: "Channel", args: str) -> None:
        digits = split_args(args)[0] or " "
        for digit in digits:
            # tone 100 ms after the step, 100 ms long, next step 250 ms later (ami-originate-human-keypress)
            if await wait_or_hangup(chan, self.DTMF_GAP):
                return
            relayed = self._dtmf("DTMFBegin", digit, [])
            if await wait_or_hangup(chan, self.DTMF_GAP):
                return
            if relayed:  # a key begun before the bridge was the AGI side's (begin and end)
                self._dtmf("DTMFEnd", digit, [("DurationMs", "100")])
            if await wait_or_hangup(chan, self.DTMF_SECONDS - 2 * self.DTMF_GAP):
                return

    def _dtmf(self, event: str, digit: str, extra: list[tuple[str, str]]) -> bool:
        """A key the far end sends reaches the near half; while it is bridged (EXEC Dial), the
        bridge passes it on: Sent on the peer, Received on the peer's far half. Unbridged keys are
        the AGI side's business (agi.sim.callee: read or lost by the command running then)."""
        bridge = getattr(self.near, "bridge", None)
        if bridge is None:
            return False
        self.near.emit(event, [("Digit", digit)] + extra + [("Direction", "Received")])
        for peer in list(bridge.channels):
            if peer is self.near:
                continue
            peer.emit(event, [("Digit", digit)] + extra + [("Direction", "Sent")])
            if peer.far_leg is not None and peer.far_leg.up:
                peer.far_leg.emit(event, [("Digit", digit)] + extra + [("Direction", "Received")])
        return True

    async def app_hangup(self, chan: "Channel", args: str) -> None:
        cause = int(args) if args.strip().isdigit() else 16
        self.near.request_hangup(cause)  # HangupRequest on ;1 after our SoftHangupRequest (traces)

    async def app_ringing(self, chan: "Channel", args: str) -> None:
        return None


async def _no_agi(chan: "Channel", url: str, args: list[str]) -> None:
    return None


def agi_args_of(url: str) -> tuple[str, str, int, str]:
    """agi://host[:port]/script?query -> (host, script-with-query, port, url)."""
    m = re.fullmatch(r"agi://([^/:]+)(?::(\d+))?/?(.*)", url)
    if not m:
        raise ValueError(f"not a FastAGI URL: {url!r}")
    return m.group(1), m.group(3), int(m.group(2) or 4573), url


def describe(dialplan: Dialplan) -> list[dict[str, Any]]:
    """The steps as plain dicts (for tests holding dialplan/dialer.conf against PROJECT_DIALPLAN)."""
    return [dict(context=s.context, exten=s.exten, priority=s.priority, app=s.app, args=s.args)
            for s in dialplan.steps()]


PROJECT_DIALPLAN = Dialplan.parse(PROJECT_DIALPLAN_TEXT)
