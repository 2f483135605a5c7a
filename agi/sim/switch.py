"""The channels the simulated switch makes for applications on a call: the Local pair ``EXEC Dial``
rings (its ;2 half running that extension of the dialplan, a basic bridge while both are up),
the leg ``Queue()`` rings for each member, and the member's leg for the F() wrap-up; event for
event as the capture rig's traces show them (ami-originate-human*.txt, the queue traces)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from agi.sim.channels import DOWN, RING, RINGING, UP, Bridge, Channel, inherit_variables
from agi.sim.line import set_var
from agi.sim.pbx import CALLEE_ANSWER_DELAY, CalleeRunner, wait_or_hangup
from agi.sim.scenario import Scenario

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.simulator import Simulator


class Switch:
    """What the simulator ``sim`` creates when an application asks for a channel."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def member_channel(self, caller: Any, member: Any) -> Channel:
        """The leg Queue() rings for ``member``: a Local pair (``;1`` returned, ``.peer`` = ``;2``) set
        up as in the queue traces, or one channel for other technologies (PJSIP/agent1-0000000a)."""
        iface = member.interface
        linkedid = getattr(caller, "linkedid", caller.uniqueid)
        if not iface.startswith("Local/"):
            chan = self.sim.new_channel(iface, linkedid=linkedid, context="default", exten="s", record=None)
            inherit_variables(caller, chan)
            chan.callerid_num, chan.callerid_name = caller.callerid_num, caller.callerid_name
            chan.connected_num, chan.connected_name = caller.callerid_num, caller.callerid_name
            chan.peer = None
            return chan
        target, _, opts = iface[len("Local/"):].partition("/")
        lexten, _, lctx = target.partition("@")
        seq = self.sim.next_seq()
        one = Channel(name=f"Local/{target}-{seq:08x};1", uniqueid=self.sim.new_uniqueid(), linkedid=linkedid,
                      clock=self.sim.clock, sink=self.sim.publish, context=lctx, exten=lexten, state=DOWN)
        two = Channel(name=f"Local/{target}-{seq:08x};2", uniqueid=self.sim.new_uniqueid(), linkedid=linkedid,
                      clock=self.sim.clock, sink=self.sim.publish, context=lctx, exten=lexten, state=RING)
        for chan in (one, two):
            self.sim.register(chan)
            chan.emit("Newchannel")
            inherit_variables(caller, chan)
        one.peer, two.peer = two, one
        one.callerid_num, one.callerid_name = caller.callerid_num, caller.callerid_name
        one.newexten("AppQueue", "(Outgoing Line)")
        one.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        dialed = iface[len("Local/"):]
        one.set_var("DIALEDPEERNUMBER", dialed)
        two.set_var("DIALEDPEERNUMBER", dialed)
        two.callerid_num, two.callerid_name = caller.callerid_num, caller.callerid_name
        two.connected_num, two.connected_name = caller.callerid_num, caller.callerid_name
        two.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        two.emit("NewConnectedLine")
        self.sim.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
            ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
        one.connected_num, one.connected_name = caller.callerid_num, caller.callerid_name
        if self.sim.dialplan.has(lctx, lexten):
            # the member's ;2 half runs its extension; the capture rig picks the agent's behaviour with
            # a global <EXTEN>_MODE (AGENT1_MODE=answer|noanswer), here from Member.answers
            one.far_leg = two
            one.dialplan_answered = asyncio.Event()  # type: ignore[attr-defined]
            far = getattr(caller, "far_leg", None)
            runner = _MemberRunner(self.sim.dialplan, scenario=Scenario("agent"), near=one, sounds=self.sim.sounds,
                                   answered=one.dialplan_answered,  # type: ignore[attr-defined]
                                   media_wait=0.0 if far is not None and far.playing else CALLEE_ANSWER_DELAY,
                                   caller=caller)
            runner.defaults[f"{lexten.upper()}_MODE"] = (getattr(member, "mode", "")
                                                         or ("answer" if member.answers else "noanswer"))
            one.leg_task = self.sim.spawn(runner.run_steps(two, lctx, lexten, 1))  # type: ignore[attr-defined]
            return one
        if member.answers:  # the rig's [agents] extensions: agent1-answer (Answer, Playback), agent1-noanswer
            two.state, two.exten, two.priority = UP, f"{lexten}-answer", 3
        else:
            two.exten, two.priority = f"{lexten}-noanswer", 2
        return one

    def agent_line(self, caller: Any, member: Any, callee: Any) -> Channel:
        """The member's leg for the Queue F() wrap-up: a real channel with the caller's inherited vars."""
        iface = member.interface
        prefix = iface[:-2] if iface.endswith("/n") else iface
        chan = self.sim.new_channel(prefix, linkedid=getattr(caller, "linkedid", caller.uniqueid),
                                    context="dialer-wrapup",
                                exten="s", state=UP, callee=callee, record=getattr(caller, "record", None),
                                announce=False)
        if prefix.startswith("Local/"):
            self.sim.channels.pop(chan.name, None)
            chan.name += ";1"
            self.sim.channels[chan.name] = chan
        chan.emit("Newchannel")
        inherit_variables(caller, chan)
        chan.callerid_num, chan.callerid_name = caller.callerid_num, caller.callerid_name
        chan.connected_num, chan.connected_name = caller.callerid_num, caller.callerid_name
        chan.answered_at = self.sim.clock.now()
        chan.finish_on_hangup = True
        return chan

    async def exec_dial(self, s: Any, data: str) -> int | None:
        """``EXEC Dial Local/<exten>@<context>[/n],<timeout>`` as ami-originate-human*.txt show it: the
        Local pair with its events, the pair's ;2 half running that extension of the dialplan, a basic
        bridge while both are up. None (not handled here) for other destinations."""
        caller = s.line
        parts = (data.split(",") + ["", ""])[:3]
        dest, timeout_arg = parts[0].strip(), parts[1].strip()
        if not dest.startswith("Local/") or "&" in dest or not isinstance(caller, Channel):
            return None
        target, _, opts = dest[len("Local/"):].partition("/")
        lexten, _, lctx = target.partition("@")
        if not self.sim.dialplan.has(lctx or "default", lexten):
            return None
        lctx = lctx or "default"
        for name in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
                     "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS"):
            set_var(caller, name, "")
        seq = self.sim.next_seq()
        one = Channel(name=f"Local/{target}-{seq:08x};1", uniqueid=self.sim.new_uniqueid(), linkedid=caller.linkedid,
                      clock=self.sim.clock, sink=self.sim.publish, context=lctx, exten=lexten, state=DOWN)
        two = Channel(name=f"Local/{target}-{seq:08x};2", uniqueid=self.sim.new_uniqueid(), linkedid=caller.linkedid,
                      clock=self.sim.clock, sink=self.sim.publish, context=lctx, exten=lexten, state=RING)
        for chan in (one, two):
            self.sim.register(chan)
            chan.emit("Newchannel")
            inherit_variables(caller, chan)
        one.far_leg = two
        one.set_var("DIALEDPEERNUMBER", target)
        # app_dial: the outgoing channel's caller id is the caller's exten, its connected line the caller
        one.callerid_num, one.callerid_name = caller.exten, caller.callerid_name
        one.connected_num, one.connected_name = caller.callerid_num, caller.callerid_name
        one.newexten("AppDial", "(Outgoing Line)", exten="s")
        one.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        one.emit("NewConnectedLine")
        two.set_var("DIALEDPEERNUMBER", target)
        two.callerid_num, two.callerid_name = caller.callerid_num, caller.callerid_name
        two.connected_num, two.connected_name = caller.exten, caller.callerid_name
        two.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        two.emit("NewConnectedLine")
        self.sim.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
            ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
        caller.emit("DialBegin", one.header("Dest") + [("DialString", target)])
        answered = asyncio.Event()
        # Answer() on the ;2 half waits for the first voice frame from the caller's side, at most
        # 0.5 s (main/channel.c __ast_answer): at once while the person's leg is playing audio
        far = caller.far_leg
        media_wait = 0.0 if far is not None and far.playing else CALLEE_ANSWER_DELAY
        runner = _DialedRunner(self.sim.dialplan, scenario=Scenario("agent"), near=one, sounds=self.sim.sounds,
                               answered=answered, media_wait=media_wait, caller=caller)
        leg = self.sim.spawn(runner.run_steps(two, lctx, lexten, 1))
        timeout = float(timeout_arg) if timeout_arg else 0.0
        waits = [asyncio.ensure_future(answered.wait()), asyncio.ensure_future(caller.hangup_requested.wait()),
                 asyncio.ensure_future(one.hangup_requested.wait())]
        await asyncio.wait(waits, timeout=self.sim.clock.real(timeout) if timeout > 0 else None,
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if not answered.is_set() or caller.hangup_requested.is_set():
            status = "CANCEL" if caller.hangup_requested.is_set() else "NOANSWER"
            caller.emit("DialEnd", one.header("Dest") + [("DialStatus", status)])
            leg.cancel()
            if two.up:
                two.emit("SoftHangupRequest", [("Cause", "16")])
                two.finish(0)
            one.finish(0)
            set_var(caller, "DIALSTATUS", status)
            return -1
        one.newstate(UP)
        one.exten = ""  # app_dial's answered snapshot of the outgoing channel has no exten (traces)
        set_var(caller, "DIALSTATUS", "ANSWER")
        set_var(caller, "DIALEDPEERNAME", one.name)
        set_var(caller, "DIALEDPEERNUMBER", target)
        caller.emit("DialEnd", one.header("Dest") + [("DialStatus", "ANSWER")])
        bridge = Bridge(str(uuid.uuid4()), self.sim.publish)
        bridge.create()
        one.newexten("AppDial", "(Outgoing Line)", exten="")
        bridge.enter(one)
        bridge.enter(caller)
        one.set_var("BRIDGEPEER", caller.name)
        caller.set_var("BRIDGEPEER", one.name)
        waits = [asyncio.ensure_future(caller.hangup_requested.wait()),
                 asyncio.ensure_future(one.hangup_requested.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        caller_first = caller.hangup_requested.is_set() and not one.hangup_requested.is_set()
        if caller_first:
            one.request_hangup(16, soft=True)
        one.set_var("BRIDGEPEER", "")
        caller.set_var("BRIDGEPEER", "")
        bridge.leave(one)
        one.finish(16)
        bridge.leave(caller)
        bridge.destroy()
        leg.cancel()
        up_ms = int((self.sim.clock.now() - (caller.answered_at or self.sim.clock.now())) * 1000)
        for name in ("ANSWEREDTIME", "DIALEDTIME"):
            set_var(caller, name, str(up_ms // 1000))
            set_var(caller, name + "_MS", str(up_ms))
        set_var(caller, "DIALSTATUS", "ANSWER")
        if not caller_first and not caller.hangupcause:
            caller.hangupcause = 16  # the called party's normal clearing becomes our HANGUPCAUSE
        return -1


class _DialedRunner(CalleeRunner):
    """The ;2 half of a Local pair that EXEC Dial rang: its Answer() tells the Dial (after waiting
    ``media_wait`` for media from the caller's side, as __ast_answer does)."""

    def __init__(self, *args: Any, answered: asyncio.Event, media_wait: float, caller: Any = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.answered = answered
        self.media_wait = media_wait
        self.caller = caller

    async def app_ringing(self, chan: Channel, args: str) -> None:
        """The dialed party rings: the outgoing ;1 half goes Ringing, app_dial reports DialState."""
        self.near.newstate(RINGING)
        if self.caller is not None:
            self.caller.emit("DialState", self.near.header("Dest") + [("DialStatus", "RINGING")])

    async def app_answer(self, chan: Channel, args: str) -> None:
        chan.newstate(UP)
        chan.answered_at = chan.clock.now()
        self.answered.set()
        if self.media_wait > 0:
            await wait_or_hangup(chan, self.media_wait)


class _MemberRunner(_DialedRunner):
    """The ;2 half of a queue member's Local pair: Ringing() and Answer() there show on the ;1 half
    (Newstate, AppQueue, NewConnectedLine) and on the caller (DialState RINGING), as the queue traces."""

    def _near_state(self, state: int) -> None:
        near = self.near
        near.exten = "s"
        near.connected_num, near.connected_name = self.caller.callerid_num, self.caller.callerid_name
        near.newstate(state)
        near.newexten("AppQueue", "(Outgoing Line)")
        near.emit("NewConnectedLine")

    async def app_ringing(self, chan: Channel, args: str) -> None:
        self._near_state(RINGING)
        self.caller.emit("DialState", self.near.header("Dest") + [("DialStatus", "RINGING")])

    async def app_answer(self, chan: Channel, args: str) -> None:
        chan.newstate(UP)
        chan.answered_at = chan.clock.now()
        self._near_state(UP)
        self.answered.set()
        if self.media_wait > 0:
            await wait_or_hangup(chan, self.media_wait)
