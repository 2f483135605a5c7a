"""An Originate of ``Local/<exten>@<context>``: two channels, ;1 (ours) and ;2 (the far end's half
running that extension), event for event as the capture rig's traces show them, for every
network outcome, with or without the loaded box's response-first order."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from agi.rules.classify import (
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILURE,
    REASON_RING_TIMEOUT,
)
from agi.sim.channels import BUSY, DOWN, RING, RINGING, UP, Channel
from agi.sim.pbx import CALLEE_ANSWER_DELAY, CalleeRunner
from agi.sim.scenario import FAILURE_CAUSE, Network, Scenario

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.originate import Call

# Far ends that run Hangup(<cause>) without answering (traces f, f2, f3)
HANGUP_CAUSES = frozenset({Network.UNALLOCATED, Network.REJECTED, Network.NUMBER_CHANGED})


async def run_local(call: Call, sc: Scenario) -> None:
    """``Local/<exten>@<context>`` dialed: the ;1/;2 pair and its events for the scenario's outcome."""
    sim = call.sim
    target, _, opts = call.resource.partition("/")
    lexten, _, lctx = target.partition("@")
    lctx = lctx or "default"
    prefix = f"Local/{target}"
    seq = sim.next_seq()
    one = Channel(name=f"{prefix}-{seq:08x};1", uniqueid=call.channel_id, linkedid=call.channel_id,
                  clock=sim.clock, sink=call.publish, context=lctx, exten=lexten, state=DOWN,
                  callee=sc.callee, record=call.rec, faults=sim.faults)
    two = Channel(name=f"{prefix}-{seq:08x};2", uniqueid=call.other_id or call.channel_id + ";2",
                  linkedid=call.channel_id, clock=sim.clock, sink=call.publish, context=lctx, exten=lexten,
                  state=RING, callee=sc.callee, record=call.rec, faults=sim.faults)
    call.rec.channel = one.name  # type: ignore[union-attr]
    sim.register(one)
    sim.register(two)
    one.emit("Newchannel")
    two.emit("Newchannel")
    one.newexten("AppDial2", "(Outgoing Line)")
    call.setup_vars(one, reverse=True)
    call.set_callerid(one)
    if sc.network is Network.NO_EXTEN:
        # no such extension: the pair is torn down before any dial (trace h2)
        call.originate_response(False, REASON_FAILURE, call.dial)
        call.setup_vars(two, reverse=False)
        call.set_callerid(two, both=True)
        two.finish(0)
        one.finish(0)
        return
    call.setup_vars(two, reverse=False)
    call.set_callerid(two, both=True)
    call.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
        ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
    net = sc.network
    if net is not Network.ANSWER:
        _far_goto(call, two, lctx)
    if net is Network.NO_ANSWER or sc.ring_time > 0:
        if net is Network.NO_ANSWER:
            two.newexten("Ringing", "", priority=1)
            one.newstate(RINGING)
            call.dial_begin(one, target)
            two.newexten("Wait", "60", priority=2)
        else:
            call.dial_begin(one, target)
            two.newexten("Ringing", "", priority=1)
            one.newstate(RINGING)
        call.dial_state(one, "DialState", "RINGING")
        rang = await call.ring(sc)
        if not rang:
            two.request_hangup(19)
            call.originate_response(False, REASON_RING_TIMEOUT, call.dial)
            two.emit("SoftHangupRequest", [("Cause", "16")])
            two.finish(19)
            one.finish(19)
            return
        dialed = True
    else:
        dialed = False
        # response first (the box is loaded): the ;2 half's Hangup(<cause>) beats the originate
        # thread's DialBegin (ami-originate-rejected-response-first.txt)
        far_first = call.response_first and net in HANGUP_CAUSES
        if net is not Network.CONGESTION and not far_first:
            call.dial_begin(one, target)
            dialed = True
    if net is Network.BUSY and call.response_first:  # ami-originate-busy-response-first.txt
        # the originate thread wins the race with Busy(): it takes the BUSY indication, ends the
        # dial and hangs up ;1 before Busy() sets the ;2 half's state
        two.newexten("Busy", "")
        call.dial_state(one, "DialEnd", "BUSY")
        call.originate_response(False, REASON_BUSY, call.dial)
        two.emit("HangupRequest", [("Cause", "0")])
        one.finish(0)
        two.newstate(BUSY)
        two.emit("SoftHangupRequest", [("Cause", "16")])
        two.finish(FAILURE_CAUSE[net])
        return
    if net is Network.BUSY:  # ami-originate-busy.txt, event for event
        two.newexten("Busy", "")
        two.newstate(BUSY)
        call.dial_state(one, "DialEnd", "BUSY")
        two.emit("HangupRequest", [("Cause", "0")])
        two.emit("SoftHangupRequest", [("Cause", "16")])
        call.originate_response(False, REASON_BUSY, call.dial)
        two.finish(FAILURE_CAUSE[net])
        one.finish(0)
        return
    if net is Network.CONGESTION:  # ami-originate-congestion.txt, event for event
        two.newexten("Congestion", "")
        two.newstate(BUSY)
        call.originate_response(False, REASON_CONGESTION, call.dial)
        if not dialed:
            call.dial_begin(one, target)
        call.dial_state(one, "DialEnd", "CONGESTION")
        two.emit("HangupRequest", [("Cause", "0")])
        one.finish(0)
        two.emit("SoftHangupRequest", [("Cause", "16")])
        two.finish(FAILURE_CAUSE[net])
        return
    if net in HANGUP_CAUSES:
        cause = FAILURE_CAUSE[net]
        two.newexten("Hangup", str(cause))
        two.emit("SoftHangupRequest", [("Cause", "16")])
        one.emit("HangupRequest", [("Cause", str(cause))])
        two.finish(cause)
        if not dialed:
            call.dial_begin(one, target)
        call.dial_state(one, "DialEnd", "NOANSWER")
        call.originate_response(False, REASON_FAILURE, call.dial)
        one.finish(cause)
        return
    # answered
    two.newexten("Answer", "")
    two.newstate(UP)
    call.originate_response(True, REASON_ANSWERED, one.name)
    one.newstate(UP)
    call.dial_state(one, "DialEnd", "ANSWER")
    one.answered_at = two.answered_at = sim.clock.now()
    call.rec.answered_at = one.answered_at  # type: ignore[union-attr]
    one.far_leg = two
    far = sim.spawn(_far_leg_audio(call, one, two, sc, lctx, lexten))
    await call.run_dialplan(one, sc)
    far.cancel()
    if two.up:
        two.emit("HangupRequest", [("Cause", str(one.hangupcause))])
        one.finish()
        if two.playing:
            two.playing = False
            two.set_var("PLAYBACKSTATUS", "SUCCESS")
        two.emit("SoftHangupRequest", [("Cause", "16")])
        two.finish(one.hangupcause)
    else:
        one.finish()


async def _far_leg_audio(call: Call, one: Channel, two: Channel, sc: Scenario, lctx: str, lexten: str) -> None:
    """What the far end's half of the pair does after Answer: the callee context when the
    dialplan has it (capture rig), else the scenario's media played until someone hangs up."""
    sim = call.sim
    try:
        await two.clock.sleep(CALLEE_ANSWER_DELAY)
        if not two.up or two.hangup_requested.is_set():
            return
        if sim.dialplan.has(lctx, lexten):
            runner = CalleeRunner(sim.dialplan, scenario=sc, near=one, sounds=sim.sounds)
            await runner.run_steps(two, lctx, lexten, 2)
        elif sc.media:
            two.newexten("Playback", sc.media, priority=2)
            two.playing = True
    except asyncio.CancelledError:
        return


def _far_goto(call: Call, two: Channel, lctx: str) -> None:
    """The far end's extension jumps first (``Goto(busy,1)``): the ;2 half's later events show
    where it went, as in the response-first traces (Exten +1404... -> busy)."""
    step = call.sim.dialplan.find(lctx, two.exten, two.priority)
    if step is None or step.app != "Goto":
        return
    parts = [p.strip() for p in step.args.split(",")]
    if len(parts) > 2 and parts[0] != lctx:
        return  # another context: not the far end's own plan
    exten, prio = (parts[-2], parts[-1]) if len(parts) >= 2 else (two.exten, parts[0])
    two.newexten("Goto", step.args)
    two.exten, two.priority = exten, int(prio) if prio.isdigit() else 1
