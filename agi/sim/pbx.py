"""The part of Asterisk's pbx loop the simulator needs: run an answered channel through a
``Dialplan`` step by step (applications, Goto/GotoIf/ExecIf, the h extension, hangup handlers),
and the far end's half of a Local pair running the callee context (``CalleeRunner``)."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable

from agi.sim.callee import FAX_DETECT_SECONDS
from agi.sim.dialplan import Dialplan, split_app, split_args
from agi.sim.expressions import function, substitute, truthy

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.channels import Channel
    from agi.sim.scenario import Scenario

AgiRunner = Callable[["Channel", str, list[str]], Awaitable[Any]]

CALLEE_ANSWER_DELAY = 0.5  # the far end's leg starts its audio ~0.5 s after Answer (traces)


class _Return(Exception):
    """Return() ends a Gosub (hangup handlers)."""


class Goto(Exception):
    def __init__(self, context: str, exten: str, priority: int) -> None:
        self.target = (context, exten, priority)


class DialplanRunner:
    """Runs one answered channel through a ``Dialplan`` (the part of Asterisk's pbx loop we need)."""

    def __init__(self, dialplan: Dialplan, *, scenario: Scenario, agi: AgiRunner,
                 defaults: dict[str, str] | None = None) -> None:
        self.dialplan = dialplan
        self.scenario = scenario
        self.agi = agi
        self.defaults = dict(dialplan.globals)
        self.defaults.update(defaults or {})

    # variable lookup: channel variables, then built-ins, then [globals]/defaults
    def lookup(self, chan: Channel, name: str) -> str:
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
        value = function(name, lambda var: self.lookup(chan, var))  # CUT, FIELDQTY
        if value is not None:
            return value
        return self.defaults.get(name, "")

    async def run(self, chan: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Main extension until it ends or the channel hangs up, then ``h`` and hangup handlers."""
        await self.run_steps(chan, context, exten, priority)
        if not chan.hungup.is_set():
            # Hangup() / the far end / falling off the end: soft hang-up, then h and the handlers
            chan.emit("SoftHangupRequest", [("Cause", "16")])
            chan.hangup_requested.set()
            await self.run_h(chan)

    async def run_steps(self, chan: Channel, context: str, exten: str, priority: int = 1) -> None:
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

    async def run_h(self, chan: Channel) -> None:
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
                except Goto as g:  # within h, as Asterisk's autoloop does (pbx.c ast_pbx_h_exten_run)
                    if g.target[:2] != (chan.context, "h"):
                        break
                    prio = g.target[2]
                    continue
                except _Return:
                    break
                if step.app.lower() == "hangup":  # Hangup() returns -1: h ends
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
    async def execute(self, chan: Channel, app: str, args: str) -> None:
        fn = getattr(self, "app_" + app.lower(), None)
        if fn is None:
            # Asterisk: "No application 'X' for extension": the channel is hung up
            chan.request_hangup(16, soft=True, emit=False)
            return
        await fn(chan, args)

    async def app_noop(self, chan: Channel, args: str) -> None:
        return None

    async def app_verbose(self, chan: Channel, args: str) -> None:
        return None

    async def app_set(self, chan: Channel, args: str) -> None:
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

    async def app_execif(self, chan: Channel, args: str) -> None:
        cond, _, rest = args.partition("?")
        branches = split_args(rest, ":")
        chosen = branches[0] if truthy(cond) else (branches[1] if len(branches) > 1 else "")
        if chosen:
            app, appargs = split_app(chosen)
            await self.execute(chan, app, appargs)

    async def app_gotoif(self, chan: Channel, args: str) -> None:
        cond, _, rest = args.partition("?")
        branches = split_args(rest, ":")
        chosen = branches[0] if truthy(cond) else (branches[1] if len(branches) > 1 else "")
        if chosen:
            await self.app_goto(chan, chosen)

    async def app_goto(self, chan: Channel, args: str) -> None:
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

    async def app_return(self, chan: Channel, args: str) -> None:
        raise _Return()

    async def app_wait(self, chan: Channel, args: str) -> None:
        await wait_or_hangup(chan, float(args or 0))

    async def app_answer(self, chan: Channel, args: str) -> None:
        return None

    async def app_playback(self, chan: Channel, args: str) -> None:
        await wait_or_hangup(chan, 1.0)
        chan.set_var("PLAYBACKSTATUS", "SUCCESS")

    async def app_hangup(self, chan: Channel, args: str) -> None:
        cause = int(args) if args.strip().isdigit() else 16
        chan.hangupcause = cause
        chan.hangup_requested.set()

    async def app_amd(self, chan: Channel, args: str) -> None:
        sc = self.scenario
        if sc.fax and chan.faxdetect:
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

    def _amd_result(self, chan: Channel, status: str, cause: str) -> None:
        chan.set_var("AMDSTATUS", status)
        chan.set_var("AMDCAUSE", cause)

    async def app_agi(self, chan: Channel, args: str) -> None:
        parts = split_args(args)
        url, agi_args = parts[0], parts[1:]
        await self.agi(chan, url, agi_args)  # the FastAGI client sets AGISTATUS


async def wait_or_hangup(chan: Channel, seconds: float) -> bool:
    """Sleep simulated ``seconds``; True if the channel got a hang-up request meanwhile."""
    if chan.hangup_requested.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(chan.hangup_requested.wait(), chan.clock.real(seconds))
        return True
    except TimeoutError:
        return False


class CalleeRunner(DialplanRunner):
    """The far end's half of a Local channel pair running the callee context (capture rig style):
    Playback/Wait/SendDTMF take their time, Hangup() hangs the call up from the far end."""

    DTMF_SECONDS = 0.45  # SendDTMF of one digit: 250 ms tone + gaps (traces: next step 0.45 s later)
    DTMF_GAP = 0.1  # DTMFBegin 100 ms after the step, DTMFEnd 100 ms after that (traces)

    def __init__(self, dialplan: Dialplan, *, scenario: Scenario, near: Channel,
                 sounds: dict[str, float] | None = None, default_sound: float = 30.0) -> None:
        super().__init__(dialplan, scenario=scenario, agi=_no_agi)
        self.near = near
        self.sounds = sounds or {}
        self.default_sound = default_sound
        self.defaults.setdefault("SND", "sounds")

    def sound_seconds(self, name: str) -> float:
        base = name.rsplit("/", 1)[-1]
        return self.sounds.get(base, self.default_sound)

    async def app_playback(self, chan: Channel, args: str) -> None:
        chan.playing = True
        if await wait_or_hangup(chan, sum(self.sound_seconds(n) for n in split_args(args)[0].split("&"))):
            return  # interrupted: the hang-up choreography reports PLAYBACKSTATUS
        chan.playing = False
        chan.set_var("PLAYBACKSTATUS", "SUCCESS")

    async def app_senddtmf(self, chan: Channel, args: str) -> None:
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

    async def app_hangup(self, chan: Channel, args: str) -> None:
        cause = int(args) if args.strip().isdigit() else 16
        self.near.request_hangup(cause)  # HangupRequest on ;1 after our SoftHangupRequest (traces)

    async def app_ringing(self, chan: Channel, args: str) -> None:
        return None


async def _no_agi(chan: Channel, url: str, args: list[str]) -> None:
    return None
