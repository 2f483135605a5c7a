"""``EXEC Queue <q>,<options>,,,<timeout>`` for one caller (app_queue.c), as the traces show: join,
wait in line, ring the free members at once (ringall), then the bridge (agi.sim.queue_bridge), or
TIMEOUT, JOINEMPTY, UNKNOWN, or the caller hanging up while waiting (ABANDONED=TRUE)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from agi.sim.line import dead_event, is_dead, set_var
from agi.sim.queue_bridge import bridge
from agi.sim.queue_legs import (
    agent_event,
    dest_fields,
    drop_leg,
    is_driven,
    local_exten,
    member_leg_gone,
    member_status,
)
from agi.sim.queue_model import Entry, Member, QueueState, queue_vars

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession
    from agi.sim.queues import QueueSystem


async def run_caller(system: QueueSystem, s: AgiSession, data: str) -> int:
    """``EXEC Queue data`` on the session's channel; returns the application's result."""
    line, clock = s.line, s.clock
    if system.clock is None:
        system.clock = clock
    args = (data.split(",") + [""] * 10)[:10]
    qname, options, timeout_arg = args[0].strip(), args[1], args[4]
    for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
        set_var(line, name, "")
    if not qname:
        return -1  # "Queue requires an argument"
    q = system.state().get(qname)
    if q is None:
        set_var(line, "QUEUESTATUS", "UNKNOWN")
        s.result.queue_status = "UNKNOWN"
        return 0
    if s.dead:
        return -1
    now = clock.now()
    if not q.config.joinempty and not any(m.available(now) for m in q.members):
        set_var(line, "QUEUESTATUS", "JOINEMPTY")
        s.result.queue_status = "JOINEMPTY"
        return 0
    timeout = float(timeout_arg) if timeout_arg.strip() else 0.0
    deadline = now + timeout if timeout > 0 else float("inf")
    entry = Entry(line, now, len(q.entries) + 1)
    q.entries.append(entry)
    line.emit("QueueCallerJoin", {"Queue": q.name, "Position": str(entry.position), "Count": str(len(q.entries))})
    far = s.far
    if far.callee.hangup_in_queue_after is not None:
        far.hang_up_at(line, now + far.callee.hangup_in_queue_after)
    try:
        member, leg, answered_at = await _wait_for_agent(system, s, q, entry, deadline)
    finally:
        if entry in q.entries:
            q.entries.remove(entry)
            for i, e in enumerate(q.entries, 1):
                e.position = i
    end = clock.now()
    if member is None:
        reason = "hangup" if s.dead or is_dead(line) else "timeout"
        if reason == "timeout":
            end = min(end, deadline)  # the scheduled end, not the wall clock's jitter
    wait = int(end - entry.joined)
    dialed = end - s.far.answered_at  # app_queue: DIALEDTIME counts from the channel's answer
    if member is None:
        def times() -> None:
            set_var(line, "QUEUEWAIT", str(wait))
            set_var(line, "QUEUEWAIT_MS", str(int((end - entry.joined) * 1000)))
            set_var(line, "DIALEDTIME", str(int(dialed)))
            set_var(line, "DIALEDTIME_MS", str(int(dialed * 1000)))
            set_var(line, "ANSWEREDTIME", "0")
            set_var(line, "ANSWEREDTIME_MS", "0")

        # the order of the traces: on a timeout the times come after the abandon, on the
        # caller's hang-up before it (queue-timeout / queue-caller-hangup)
        if reason == "hangup":
            times()
        set_var(line, "ABANDONED", "TRUE")
        queue_vars(line, q, calls=len(q.entries) + 1)
        q.abandoned += 1
        line.emit("QueueCallerAbandon", {"Queue": q.name, "Position": str(entry.position),
                                         "OriginalPosition": str(entry.position), "HoldTime": str(wait)})
        if reason != "hangup":
            times()
        queue_vars(line, q, calls=len(q.entries) + 1)
        line.emit("QueueCallerLeave", {"Queue": q.name, "Position": str(entry.position), "Count": str(len(q.entries))})
        set_var(line, "QUEUEPOSITION", str(entry.position))
        entry.drop_cancelled()
        q.notify()
        if reason == "timeout":
            set_var(line, "QUEUESTATUS", "TIMEOUT")
            s.result.queue_status = "TIMEOUT"
            if entry.rang:
                # Asterisk 12+ CDRs: the caller's record ends with the unanswered dial and the
                # caller, going on in the dialplan, gets a new one whose answer time is its start
                # (CDR specification; AMI Cdr event AnswerTime): CDR(billsec) counts from here
                line.cdr_started = end
            return 0
        s.result.queue_status = None
        return -1
    return await bridge(system, s, q, entry, member, leg, answered_at, options)


async def _wait_for_agent(system: QueueSystem, s: AgiSession, q: QueueState, entry: Entry, deadline: float):
    """Ring free members (ringall) until one answers, the deadline passes or the caller hangs up."""
    line, clock = s.line, s.clock
    first = True
    while True:
        now = clock.now()
        if is_dead(line) or now >= deadline:
            return None, None, None
        if q.entries and q.entries[0] is entry:
            free = [m for m in q.members if m.available(now)]
            if free:
                # members free at join are rung at join: the wall clock's jitter is not ring time
                since = entry.joined if first else now
                got = await _ring(system, s, q, entry, free, deadline, since)
                if got is not None:
                    member, leg = got
                    # a member's own dialplan answered at its Answer(): the talk counts from then,
                    # not from when this task woke (later on a loaded machine: QUEUETALKTIME 1 for 2)
                    far = getattr(leg, "far_leg", None) if is_driven(leg) else None
                    answered = getattr(far, "answered_at", None)
                    return member, leg, clock.now() if answered is None else answered
                continue
        first = False
        # wait for a change in the queue (a member frees up), the deadline or the hang-up
        changed = q.changed
        waits = [asyncio.ensure_future(changed.wait()),
                 asyncio.ensure_future(dead_event(line).wait())]
        soonest = min([deadline] + [m.acw_until for m in q.members if m.acw_until > now])
        delay = clock.real(soonest - now) if soonest != float("inf") else None
        done, pending = await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()


async def _ring(system: QueueSystem, s: AgiSession, q: QueueState, entry: Entry, free: list[Member],
                deadline: float, start: float):
    """Ring ``free`` at once (ringall) from ``start``; (member, leg) of the one who answered, or None."""
    line, clock = s.line, s.clock
    exten_of = {m: local_exten(m.interface) for m in free}
    legs: dict[Member, Any] = {}
    entry.rang = True
    for m in free:
        m.ringing = True
        leg = system.member_channel_factory(line, m) if system.member_channel_factory is not None else None
        legs[m] = leg
        agent_event(line, "AgentCalled", leg,
                          dest_fields(leg, line, state=0, exten="s", connected=True), q, m)
        dest = dest_fields(leg, line, state=0, exten=exten_of[m], connected=False)
        line.emit("DialBegin", {**dest, "DialString": m.interface})
    q.notify()
    winner = None
    driven = {m: legs[m] for m in free if is_driven(legs[m])}
    if driven:  # their ;2 halves run the member's dialplan: Answer() there is the answer
        waits = [asyncio.ensure_future(leg.dialplan_answered.wait()) for leg in driven.values()]
        waits.append(asyncio.ensure_future(dead_event(line).wait()))
        left = deadline - clock.now()
        await asyncio.wait(waits, timeout=clock.real(left) if left != float("inf") else None,
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        ok = not is_dead(line)
        winner = next((m for m, leg in driven.items() if leg.dialplan_answered.is_set()), None) if ok else None
        timed_out = ok and winner is None
    else:
        answerers = [(start + system.rng.uniform(*q.config.ring_seconds), m) for m in free if m.answers]
        answerers.sort(key=lambda x: x[0])
        until = min([deadline] + ([answerers[0][0]] if answerers else []))
        ok = await s.sleep_until(until) if until != float("inf") else await s.sleep_until(start + 10**9)
        if ok and answerers and answerers[0][0] <= clock.now() + 1e-9 and answerers[0][0] < deadline:
            winner = answerers[0][1]
        timed_out = ok and winner is None and clock.now() >= deadline
    for m in free:
        m.ringing = False
        if m is winner:
            continue
        leg = legs[m]
        if m in driven and getattr(leg, "state", 0) == 5:  # it rang: the device is in use meanwhile
            member_status(line, q, m, in_use=True)
        if timed_out:
            dest = dest_fields(leg, line, state=5, exten="s", connected=True)
            agent_event(line, "AgentRingNoAnswer", leg, dest, q, m,
                              RingTime=str(int(round((min(clock.now(), deadline) - start) * 1000))))
            line.emit("DialEnd", {**dest, "DialStatus": "NOANSWER"})
        else:
            dest = dest_fields(leg, line, state=5, exten="s", connected=True)
            line.emit("DialEnd", {**dest, "DialStatus": "CANCEL"})
        if leg is not None:
            line.emit("DialEnd", {**dest, "DialStatus": "CANCEL"})
            peer = getattr(leg, "peer", None)
            if m in driven and peer is not None and peer.up:
                # the ;2 half's dialplan (Ringing, Wait) is cut: HangupRequest now, the rest
                # after Queue() has returned (queue-timeout / queue-caller-hangup traces)
                peer.emit("HangupRequest", {"Cause": "0"})
                peer.hangup_requested.set()
                drop_leg(leg, 0, peer_too=False)
                asyncio.get_running_loop().call_soon(member_leg_gone, line, q, m, peer)
                continue
            drop_leg(leg, 0, peer_too=False)
            if timed_out and peer is not None and getattr(peer, "finish", None) is not None:
                # the ;2 half notices a moment later: after Queue() has returned (queue-timeout trace)
                asyncio.get_running_loop().call_soon(peer.finish, 0)
            elif not timed_out:
                entry.cancelled_legs.append(leg)
    if winner is not None:
        winner.busy = True
        leg = legs[winner]
        dest = dest_fields(leg, line, state=6, exten="s", connected=True)
        line.emit("DialEnd", {**dest, "DialStatus": "ANSWER"})
        q.notify()
        return winner, leg
    q.notify()
    return None
