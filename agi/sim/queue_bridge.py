"""A caller bridged to a queue member (app_queue.c): the member and queue variables, AgentConnect,
the talk until one side hangs up, AgentComplete, the times; with option F() and the caller
hanging up first, the member's leg goes on to the wrap-up (agi.sim.queue_wrapup)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from agi.sim.callee import far_end_hangup
from agi.sim.channels import Bridge
from agi.sim.line import dead_event, is_dead, set_var
from agi.sim.queue_legs import (
    agent_event,
    dest_fields,
    drop_leg,
    is_driven,
    member_status,
)
from agi.sim.queue_model import Entry, Member, QueueState, queue_vars
from agi.sim.queue_wrapup import f_option, wrapup

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession
    from agi.sim.queues import QueueSystem


async def bridge(system: QueueSystem, s: AgiSession, q: QueueState, entry: Entry, m: Member, leg: Any,
                 answered: float, options: str) -> int:
    """The caller and member ``m`` talk until one hangs up; the reply comes when the bridge ends (-1)."""
    line, clock = s.line, s.clock
    hold = int(answered - entry.joined)
    member_vars = (("MEMBERINTERFACE", m.interface), ("MEMBERNAME", m.name or m.interface),
                   ("MEMBERCALLS", str(m.calls_taken)), ("MEMBERLASTCALL", str(m.last_call)),
                   ("MEMBERPENALTY", "0"), ("MEMBERDYNAMIC", "0"), ("MEMBERREALTIME", "0"))
    entry_vars = (("QEHOLDTIME", str(hold)), ("QEORIGINALPOS", str(entry.position)))
    targets = [line] + ([leg] if leg is not None else [])
    for target in targets:  # setinterfacevar=yes: on the caller, then on the member's leg
        for name, value in member_vars:
            set_var(target, name, value)
    for target in targets:  # setqueueentryvar=yes
        for name, value in entry_vars:
            set_var(target, name, value)
    q.record_hold(hold)
    for target in targets:  # setqueuevar=yes
        queue_vars(target, q, calls=len(q.entries) + 1)
    line.emit("QueueCallerLeave", {"Queue": q.name, "Position": str(entry.position), "Count": str(len(q.entries))})
    entry.drop_cancelled()
    set_var(line, "QUEUEPOSITION", str(entry.position))
    set_var(line, "QUEUEWAIT", str(hold))
    set_var(line, "QUEUEWAIT_MS", str(int((answered - entry.joined) * 1000)))
    dest = dest_fields(leg, line, state=6, exten="s", connected=True)
    agent_event(line, "AgentConnect", leg, dest, q, m, HoldTime=str(hold), RingTime="0")
    bridge = None
    if leg is not None and hasattr(leg, "header") and hasattr(line, "_sink"):  # both real channels
        bridge = Bridge(str(uuid.uuid4()), line._sink)
        bridge.create()
        bridge.enter(leg)
        bridge.enter(line)
        set_var(leg, "BRIDGEPEER", line.name)
        set_var(line, "BRIDGEPEER", leg.name)
        member_status(line, q, m)
    s.result.agent = m.interface
    s.result.queue_status = None
    talk = system.rng.uniform(*q.config.talk_seconds)
    caller_after = s.far.callee.hangup_after_bridge
    driven = is_driven(leg)
    if driven:  # the member's own dialplan decides when it hangs up (a Hangup() on its ;2 half)
        talk = float("inf")
    caller_first = caller_after is not None and caller_after < talk
    scheduled_end = answered + (caller_after if caller_first else talk)
    if driven and not caller_first:
        waits = [asyncio.ensure_future(leg.hangup_requested.wait()),
                 asyncio.ensure_future(dead_event(line).wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        ok = leg.hangup_requested.is_set() and not is_dead(line)
        end = clock.now()
    else:
        ok = await s.sleep_until(scheduled_end)
        end = scheduled_end if ok else clock.now()
    talked = int(end - answered)
    caller_gone = not ok or caller_first
    if not caller_gone and hasattr(line, "hangupcause") and not line.hangupcause:
        line.hangupcause = 16  # the agent's hang-up ends the bridge: HANGUPCAUSE=16 (queue-bridged trace)
    if caller_first and ok:
        far_end_hangup(line, s.far.callee.hangup_cause)
    if bridge is not None and not caller_gone and not leg.hangup_requested.is_set():
        leg.emit("HangupRequest", {"Cause": "16"})  # the agent's half hangs up (queue-bridged trace)
    dest = dest_fields(leg, line, state=6, exten="s", connected=True)
    agent_event(line, "AgentComplete", leg, dest, q, m, HoldTime=str(hold), TalkTime=str(talked),
                      Reason="caller" if caller_gone else "agent")
    m.calls_taken += 1
    m.last_call = int(end)
    q.completed += 1
    q.completed_in_sl += 1
    q.record_talk(talked)
    wrap = f_option(options)
    wraps = caller_gone and wrap is not None
    if leg is not None and not wraps:  # the agent put the phone down: ;2 then ;1 go away
        peer = getattr(leg, "peer", None)
        if peer is not None and getattr(peer, "finish", None) is not None:
            peer.finish(16)
        if bridge is not None:
            set_var(leg, "BRIDGEPEER", "")
            bridge.leave(leg)
        drop_leg(leg, 16, peer_too=False)
    if bridge is not None:
        if wraps:
            set_var(leg, "BRIDGEPEER", "")
            bridge.leave(leg)
        set_var(line, "BRIDGEPEER", "")
        bridge.leave(line)
        bridge.destroy()
    queue_vars(line, q, calls=len(q.entries))
    set_var(line, "ANSWEREDTIME", str(talked))
    set_var(line, "ANSWEREDTIME_MS", str(int((end - answered) * 1000)))
    dialed = end - s.far.answered_at  # app_queue: DIALEDTIME counts from the channel's answer
    set_var(line, "DIALEDTIME", str(int(dialed)))
    set_var(line, "DIALEDTIME_MS", str(int(dialed * 1000)))
    queue_vars(line, q, calls=len(q.entries))  # app_queue sets them again on leaving
    if bridge is not None and not wraps:
        member_status(line, q, m, free=True)
    if wraps:
        assert wrap is not None
        system.spawn(wrapup(system, s, q, m, wrap, leg))
    else:
        q.after_call(m, end, system.rng)
    return -1
