"""Simulated agent queues: what ``EXEC Queue <q>,<options>,,,<timeout>`` does (app_queue.c), as the traces show.

``QueueSystem`` holds the queues of one simulated Asterisk: members (logged in, paused, ringing, on a
call, in after-call work), waiting callers, and the statistics ``QueueSummary``/``QueueStatus`` report.
Outcomes of ``Queue()`` (docs/outcomes.md "Agents"): bridged to a free member (the reply comes when the bridge
ends; QUEUESTATUS unset; MEMBERINTERFACE/MEMBERNAME/ANSWEREDTIME set), TIMEOUT, JOINEMPTY, UNKNOWN,
or the caller hanging up while waiting (ABANDONED=TRUE). Option ``F(context^exten^priority)``: when
the caller hangs up after a bridge, the member's leg runs the wrap-up FastAGI there, where the
simulated agent keys a disposition; after-call work follows before the member takes calls again.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from agi.sim.callee import Callee, KeyPress
from agi.sim.channels import inherit_variables
from agi.sim.dialplan import PROJECT_DIALPLAN, Dialplan, agi_args_of, split_args, substitute

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_client import AgiSession, AgiSessionResult

# app_queue.c enum agent status as AMI prints it (QueueMember Status)
NOT_INUSE, INUSE, RINGING_STATUS, UNAVAILABLE = 1, 2, 6, 5

# Agent wrap-up keys (agi.outcomes.DEFAULT_KEY_MAP; "" = the agent keys nothing) and how often.
DEFAULT_DISPOSITIONS: dict[str, float] = {"1": 0.35, "2": 0.35, "3": 0.1, "9": 0.05, "": 0.15}


@dataclass(eq=False)
class Member:
    """A queue member (an agent's phone)."""

    interface: str  # e.g. "PJSIP/agent1" or "Local/agent1@agents/n"
    name: str = ""
    logged_in: bool = True
    paused: bool = False
    paused_reason: str = ""
    answers: bool = True  # False: the phone rings and nobody picks up
    mode: str = ""  # the rig's <EXTEN>_MODE for a Local member run by the dialplan; "" = answer/noanswer
    # runtime state
    busy: bool = False  # on a call (InCall=1)
    ringing: bool = False
    acw_until: float = 0.0  # after-call work ends at this simulated time
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0

    def available(self, now: float) -> bool:
        return self.logged_in and not self.paused and not self.busy and not self.ringing and now >= self.acw_until


@dataclass
class QueueConfig:
    """One queue (queues.conf section) and its simulated agents. Times are simulated seconds.

    ``agents=N`` adds members PJSIP/agent1..N ("Agent 1".."Agent N") when ``members`` is empty.
    ``talk_seconds``/``acw_seconds``/``ring_seconds`` are (low, high) uniform ranges.
    """

    name: str
    members: list[Member] = field(default_factory=list)
    agents: int = 0
    joinempty: bool = True
    strategy: str = "ringall"
    ring_seconds: tuple[float, float] = (0.0, 0.0)
    talk_seconds: tuple[float, float] = (30.0, 120.0)
    acw_seconds: tuple[float, float] = (0.0, 0.0)
    dispositions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DISPOSITIONS))
    wrapup_key_after: tuple[float, float] = (1.0, 4.0)  # seconds into the wrap-up prompt
    callback_hours: tuple[int, int] | None = (1, 48)  # after key 3 the agent keys the hours, then '#'; None: none

    def __post_init__(self) -> None:
        if not self.members and self.agents:
            self.members = [Member(f"PJSIP/agent{i}", f"Agent {i}") for i in range(1, self.agents + 1)]


@dataclass
class _Entry:
    line: Any
    joined: float
    position: int
    cancelled_legs: list[Any] = field(default_factory=list)  # their ;2 halves go after QueueCallerLeave
    rang: bool = False  # a member was rung for this caller (a dial: the caller's CDR forks)

    def drop_cancelled(self) -> None:
        for leg in self.cancelled_legs:
            peer = getattr(leg, "peer", None)
            if peer is not None and getattr(peer, "finish", None) is not None:
                peer.finish(0)
        self.cancelled_legs.clear()


class QueueState:
    def __init__(self, config: QueueConfig, now: float) -> None:
        self.config = config
        self.name = config.name
        self.members = config.members
        for m in self.members:
            m.login_time = int(now)
        self.entries: list[_Entry] = []
        self.completed = 0
        self.abandoned = 0
        self.completed_in_sl = 0
        self.holdtime = 0  # rolling averages as app_queue.c keeps them: (3*old + new) / 4
        self.talktime = 0
        self.changed = asyncio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def record_hold(self, seconds: int) -> None:
        self.holdtime = (3 * self.holdtime + seconds) // 4

    def record_talk(self, seconds: int) -> None:
        # the first completed call sets the average outright (QUEUETALKTIME=2 after one 2 s call: queue-bridged)
        self.talktime = seconds if self.completed <= 1 else (3 * self.talktime + seconds) // 4


class AgentLeg:
    """The member's channel when the switch does not provide one (a minimal ``SimLine``)."""

    def __init__(self, caller: Any, member: Member, clock: Any, callee: Callee) -> None:
        self.name = member.interface.split("/n")[0] + "-leg;1"
        self.uniqueid = f"{caller.uniqueid}-agent"
        self.variables: dict[str, str] = {}
        self.inheritable: set[str] = set()
        inherit_variables(caller, self)  # only the caller's __X and _X, as on a real Asterisk
        self.clock = clock
        self.hungup = asyncio.Event()
        self.callee = callee
        self.answered_at = clock.now()
        self.callerid_num = getattr(caller, "callerid_num", "")
        self.callerid_name = getattr(caller, "callerid_name", "")
        self.events: list[tuple[str, dict[str, str]]] = []

    def emit(self, event: str, fields: dict[str, str]) -> None:
        self.events.append((event, dict(fields)))

    def hangup(self, cause: int = 16) -> None:
        self.hungup.set()


class QueueSystem:
    """The queues of one simulated Asterisk.

    Hooks for the switch (both optional):
    - ``member_channel_factory(caller_line, member) -> channel``: called for every member rung; it
      creates the member's leg (for a Local member the ``;1`` half, with ``.peer`` = ``;2``) and emits
      its Newchannel events. The leg must offer ``header(prefix)``, the header attributes
      (``state``, ``exten``, ``callerid_num``...), ``variables``/``set_var``, ``finish(cause)`` (the
      Hangup event) like ``agi.sim.channels.Channel``. AgentCalled/DialBegin/DialEnd/AgentConnect/
      AgentComplete/AgentRingNoAnswer then carry its Dest* fields, and the F() wrap-up runs on it.
    - ``agent_line_factory(caller_line, member, callee) -> SimLine``: the wrap-up leg when there is no
      member leg. By default a silent ``AgentLeg`` is used.
    """

    def __init__(
        self,
        queues: list[QueueConfig] | None = None,
        *,
        rng: random.Random | None = None,
        rng_seed: int | None = None,
        clock: Any = None,
        agent_line_factory: Callable[[Any, Member, Callee], Any] | None = None,
        member_channel_factory: Callable[[Any, Member], Any] | None = None,
        dialplan: Dialplan | None = None,
    ) -> None:
        self.rng = rng or random.Random(rng_seed)
        self.dialplan = dialplan or PROJECT_DIALPLAN  # where option F() sends the member's leg
        self.clock = clock
        self._configs = list(queues or [])
        self.queues: dict[str, QueueState] = {}
        self.agent_line_factory = agent_line_factory
        self.member_channel_factory = member_channel_factory
        self.wrapups: list["AgiSessionResult"] = []  # results of the wrap-up FastAGI sessions
        self.tasks: set[asyncio.Task] = set()

    def _now(self, clock: Any = None) -> float:
        c = clock or self.clock
        return c.now() if c is not None else time.time()

    def _state(self) -> dict[str, QueueState]:
        if self._configs:
            for cfg in self._configs:
                if cfg.name not in self.queues:
                    self.queues[cfg.name] = QueueState(cfg, self._now())
            self._configs = []
        return self.queues

    def add(self, config: QueueConfig) -> None:
        self._configs.append(config)
        self._state()

    # ---- AMI views -----------------------------------------------------------------------------
    def summary(self, queue: str | None = None) -> list[dict[str, str]]:
        """QueueSummary rows, field order as Asterisk prints them (ami-queuesummary.txt)."""
        now = self._now()
        rows = []
        for q in self._state().values():
            if queue and q.name != queue:
                continue
            logged = [m for m in q.members if m.logged_in]
            rows.append({
                "Queue": q.name,
                "LoggedIn": str(len(logged)),
                "Available": str(sum(1 for m in logged if m.available(now))),
                "Callers": str(len(q.entries)),
                "HoldTime": str(q.holdtime),
                "TalkTime": str(q.talktime),
                "LongestHoldTime": str(max((int(now - e.joined) for e in q.entries), default=0)),
            })
        return rows

    def status(self, queue: str | None = None) -> list[tuple[str, dict[str, str]]]:
        """QueueStatus events in order: QueueParams, its QueueMembers, its QueueEntries, per queue."""
        now = self._now()
        out: list[tuple[str, dict[str, str]]] = []
        for q in self._state().values():
            if queue and q.name != queue:
                continue
            done = q.completed + q.abandoned
            out.append(("QueueParams", {
                "Queue": q.name, "Max": "0", "Strategy": q.config.strategy, "Calls": str(len(q.entries)),
                "Holdtime": str(q.holdtime), "TalkTime": str(q.talktime), "Completed": str(q.completed),
                "Abandoned": str(q.abandoned), "ServiceLevel": "0",
                "ServicelevelPerf": f"{(100.0 * q.completed_in_sl / q.completed) if q.completed else 0.0:.1f}",
                "ServicelevelPerf2": f"{(100.0 * q.completed_in_sl / done) if done else 0.0:.1f}",
                "Weight": "0",
            }))
            for m in q.members:
                if not m.logged_in:
                    continue
                out.append(("QueueMember", self._member_fields(q, m, location=True)))
            for e in q.entries:
                out.append(("QueueEntry", {
                    "Queue": q.name, "Position": str(e.position), "Channel": e.line.name,
                    "Uniqueid": e.line.uniqueid,
                    # CallerID/ConnectedLine as ami-queuesummary.txt (d) shows them
                    "CallerIDNum": getattr(e.line, "callerid_num", "") or "<unknown>",
                    "CallerIDName": getattr(e.line, "callerid_name", "") or "<unknown>",
                    "ConnectedLineNum": getattr(e.line, "connected_num", "") or "<unknown>",
                    "ConnectedLineName": getattr(e.line, "connected_name", "") or "<unknown>",
                    "Wait": str(int(now - e.joined)), "Priority": "0",
                }))
        return out

    def _member_fields(self, q: QueueState, m: Member, *, location: bool = False) -> dict[str, str]:
        status = NOT_INUSE if not (m.busy or m.ringing) else INUSE
        head = {"Queue": q.name, "Name" if location else "MemberName": m.name or m.interface}
        head["Location" if location else "Interface"] = m.interface
        head.update({
            "StateInterface": m.interface, "Membership": "static", "Penalty": "0",
            "CallsTaken": str(m.calls_taken), "LastCall": str(m.last_call), "LastPause": str(m.last_pause),
            "LoginTime": str(m.login_time), "InCall": "1" if m.busy else "0", "Status": str(status),
            "Paused": "1" if m.paused else "0", "PausedReason": m.paused_reason,
        })
        if not location:
            head["Ringinuse"] = "0"
        head["Wrapuptime"] = "0"
        return head

    def pause(self, interface: str, paused: bool, queue: str | None = None, reason: str = "") -> bool:
        """QueuePause: False if no queue has that member (AMI: 'Interface not found')."""
        found = False
        for q in self._state().values():
            if queue and q.name != queue:
                continue
            for m in q.members:
                if m.interface == interface:
                    found = True
                    m.paused = paused
                    m.paused_reason = reason if paused else ""
                    if paused:
                        m.last_pause = int(self._now())
                    q.notify()
        return found

    def set_logged_in(self, interface: str, logged_in: bool) -> bool:
        found = False
        for q in self._state().values():
            for m in q.members:
                if m.interface == interface:
                    m.logged_in, found = logged_in, True
                    q.notify()
        return found

    # ---- the Queue() application ------------------------------------------------------------------
    async def run_caller(self, s: "AgiSession", data: str) -> int:
        """``EXEC Queue data`` on the session's channel; returns the application's result."""
        from agi.sim.agi_client import set_var

        line, clock = s.line, s.clock
        if self.clock is None:
            self.clock = clock
        args = (data.split(",") + [""] * 10)[:10]
        qname, options, timeout_arg = args[0].strip(), args[1], args[4]
        for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            set_var(line, name, "")
        if not qname:
            return -1  # "Queue requires an argument"
        q = self._state().get(qname)
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
        entry = _Entry(line, now, len(q.entries) + 1)
        q.entries.append(entry)
        line.emit("QueueCallerJoin", {"Queue": q.name, "Position": str(entry.position), "Count": str(len(q.entries))})
        far = s.far
        if far.callee.hangup_in_queue_after is not None:
            far.hang_up_at(line, now + far.callee.hangup_in_queue_after)
        try:
            member, leg, answered_at = await self._wait_for_agent(s, q, entry, deadline)
        finally:
            if entry in q.entries:
                q.entries.remove(entry)
                for i, e in enumerate(q.entries, 1):
                    e.position = i
        end = clock.now()
        if member is None:
            reason = "hangup" if s.dead or _dead(line) else "timeout"
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
            self._queue_vars(line, q, calls=len(q.entries) + 1)
            q.abandoned += 1
            line.emit("QueueCallerAbandon", {"Queue": q.name, "Position": str(entry.position),
                                             "OriginalPosition": str(entry.position), "HoldTime": str(wait)})
            if reason != "hangup":
                times()
            self._queue_vars(line, q, calls=len(q.entries) + 1)
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
        return await self._bridge(s, q, entry, member, leg, answered_at, options)

    async def _wait_for_agent(self, s: "AgiSession", q: QueueState, entry: _Entry, deadline: float):
        """Ring free members (ringall) until one answers, the deadline passes or the caller hangs up."""
        line, clock = s.line, s.clock
        first = True
        while True:
            now = clock.now()
            if _dead(line) or now >= deadline:
                return None, None, None
            if q.entries and q.entries[0] is entry:
                free = [m for m in q.members if m.available(now)]
                if free:
                    # members free at join are rung at join: the wall clock's jitter is not ring time
                    since = entry.joined if first else now
                    got = await self._ring(s, q, entry, free, deadline, since)
                    if got is not None:
                        return got[0], got[1], clock.now()
                    continue
            first = False
            # wait for a change in the queue (a member frees up), the deadline or the hang-up
            changed = q.changed
            waits = [asyncio.ensure_future(changed.wait()),
                     asyncio.ensure_future(_dead_event(line).wait())]
            soonest = min([deadline] + [m.acw_until for m in q.members if m.acw_until > now])
            delay = clock.real(soonest - now) if soonest != float("inf") else None
            done, pending = await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()

    # ---- member legs (channels the switch creates for each ring) -----------------------------------
    def _dest(self, leg: Any, line: Any, *, state: int, exten: str, connected: bool) -> dict[str, str]:
        """The Dest* header of a member leg as app_queue's snapshots show it (empty without a leg)."""
        if leg is None or not hasattr(leg, "header"):
            return {}
        leg.state = state
        leg.exten = exten
        leg.callerid_num = getattr(line, "callerid_num", "")
        leg.callerid_name = getattr(line, "callerid_name", "")
        leg.connected_num = leg.callerid_num if connected else ""
        leg.connected_name = leg.callerid_name if connected else ""
        return dict(leg.header("Dest"))

    def _agent_event(self, line: Any, event: str, leg: Any, dest: dict[str, str], q: QueueState, m: Member,
                     **extra: str) -> None:
        fields = dict(dest)
        fields.update({"Queue": q.name, "Interface": m.interface, "MemberName": m.name or m.interface})
        fields.update(extra)
        line.emit(event, fields)

    def _drop_leg(self, leg: Any, cause: int, *, peer_too: bool = True) -> None:
        if leg is None:
            return
        finish = getattr(leg, "finish", None)
        if finish is not None:
            finish(cause)
        elif not leg.hungup.is_set():
            leg.hangup(cause)
        peer = getattr(leg, "peer", None)
        if peer_too and peer is not None and getattr(peer, "finish", None) is not None:
            peer.finish(cause)

    async def _ring(self, s: "AgiSession", q: QueueState, entry: _Entry, free: list[Member], deadline: float,
                    start: float):
        """Ring ``free`` at once (ringall) from ``start``; (member, leg) of the one who answered, or None."""
        line, clock = s.line, s.clock
        exten_of = {m: _local_exten(m.interface) for m in free}
        legs: dict[Member, Any] = {}
        entry.rang = True
        for m in free:
            m.ringing = True
            leg = self.member_channel_factory(line, m) if self.member_channel_factory is not None else None
            legs[m] = leg
            self._agent_event(line, "AgentCalled", leg,
                              self._dest(leg, line, state=0, exten="s", connected=True), q, m)
            dest = self._dest(leg, line, state=0, exten=exten_of[m], connected=False)
            line.emit("DialBegin", {**dest, "DialString": m.interface})
        q.notify()
        winner = None
        driven = {m: legs[m] for m in free if _driven(legs[m])}
        if driven:  # their ;2 halves run the member's dialplan: Answer() there is the answer
            waits = [asyncio.ensure_future(leg.dialplan_answered.wait()) for leg in driven.values()]
            waits.append(asyncio.ensure_future(_dead_event(line).wait()))
            left = deadline - clock.now()
            await asyncio.wait(waits, timeout=clock.real(left) if left != float("inf") else None,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            ok = not _dead(line)
            winner = next((m for m, leg in driven.items() if leg.dialplan_answered.is_set()), None) if ok else None
            timed_out = ok and winner is None
        else:
            answerers = [(start + self.rng.uniform(*q.config.ring_seconds), m) for m in free if m.answers]
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
                self._member_status(line, q, m, in_use=True)
            if timed_out:
                dest = self._dest(leg, line, state=5, exten="s", connected=True)
                self._agent_event(line, "AgentRingNoAnswer", leg, dest, q, m,
                                  RingTime=str(int(round((min(clock.now(), deadline) - start) * 1000))))
                line.emit("DialEnd", {**dest, "DialStatus": "NOANSWER"})
            else:
                dest = self._dest(leg, line, state=5, exten="s", connected=True)
                line.emit("DialEnd", {**dest, "DialStatus": "CANCEL"})
            if leg is not None:
                line.emit("DialEnd", {**dest, "DialStatus": "CANCEL"})
                peer = getattr(leg, "peer", None)
                if m in driven and peer is not None and peer.up:
                    # the ;2 half's dialplan (Ringing, Wait) is cut: HangupRequest now, the rest
                    # after Queue() has returned (queue-timeout / queue-caller-hangup traces)
                    peer.emit("HangupRequest", {"Cause": "0"})
                    peer.hangup_requested.set()
                    self._drop_leg(leg, 0, peer_too=False)
                    asyncio.get_running_loop().call_soon(self._member_leg_gone, line, q, m, peer)
                    continue
                self._drop_leg(leg, 0, peer_too=False)
                if timed_out and peer is not None and getattr(peer, "finish", None) is not None:
                    # the ;2 half notices a moment later: after Queue() has returned (queue-timeout trace)
                    asyncio.get_running_loop().call_soon(peer.finish, 0)
                elif not timed_out:
                    entry.cancelled_legs.append(leg)
        if winner is not None:
            winner.busy = True
            leg = legs[winner]
            dest = self._dest(leg, line, state=6, exten="s", connected=True)
            line.emit("DialEnd", {**dest, "DialStatus": "ANSWER"})
            q.notify()
            return winner, leg
        q.notify()
        return None

    async def _bridge(self, s: "AgiSession", q: QueueState, entry: _Entry, m: Member, leg: Any,
                      answered: float, options: str) -> int:
        from agi.sim.agi_client import set_var

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
            self._queue_vars(target, q, calls=len(q.entries) + 1)
        line.emit("QueueCallerLeave", {"Queue": q.name, "Position": str(entry.position), "Count": str(len(q.entries))})
        entry.drop_cancelled()
        set_var(line, "QUEUEPOSITION", str(entry.position))
        set_var(line, "QUEUEWAIT", str(hold))
        set_var(line, "QUEUEWAIT_MS", str(int((answered - entry.joined) * 1000)))
        dest = self._dest(leg, line, state=6, exten="s", connected=True)
        self._agent_event(line, "AgentConnect", leg, dest, q, m, HoldTime=str(hold), RingTime="0")
        bridge = None
        if leg is not None and hasattr(leg, "header") and hasattr(line, "_sink"):  # both real channels
            from agi.sim.channels import Bridge

            bridge = Bridge(str(uuid.uuid4()), line._sink)
            bridge.create()
            bridge.enter(leg)
            bridge.enter(line)
            set_var(leg, "BRIDGEPEER", line.name)
            set_var(line, "BRIDGEPEER", leg.name)
            self._member_status(line, q, m)
        s.result.agent = m.interface
        s.result.queue_status = None
        talk = self.rng.uniform(*q.config.talk_seconds)
        caller_after = s.far.callee.hangup_after_bridge
        driven = _driven(leg)
        if driven:  # the member's own dialplan decides when it hangs up (a Hangup() on its ;2 half)
            talk = float("inf")
        caller_first = caller_after is not None and caller_after < talk
        scheduled_end = answered + (caller_after if caller_first else talk)
        if driven and not caller_first:
            waits = [asyncio.ensure_future(leg.hangup_requested.wait()),
                     asyncio.ensure_future(_dead_event(line).wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            ok = leg.hangup_requested.is_set() and not _dead(line)
            end = clock.now()
        else:
            ok = await s.sleep_until(scheduled_end)
            end = scheduled_end if ok else clock.now()
        talked = int(end - answered)
        caller_gone = not ok or caller_first
        if not caller_gone and hasattr(line, "hangupcause") and not line.hangupcause:
            line.hangupcause = 16  # the agent's hang-up ends the bridge: HANGUPCAUSE=16 (queue-bridged trace)
        if caller_first and ok:
            from agi.sim.callee import far_end_hangup

            far_end_hangup(line, s.far.callee.hangup_cause)
        if bridge is not None and not caller_gone and not leg.hangup_requested.is_set():
            leg.emit("HangupRequest", {"Cause": "16"})  # the agent's half hangs up (queue-bridged trace)
        dest = self._dest(leg, line, state=6, exten="s", connected=True)
        self._agent_event(line, "AgentComplete", leg, dest, q, m, HoldTime=str(hold), TalkTime=str(talked),
                          Reason="caller" if caller_gone else "agent")
        m.calls_taken += 1
        m.last_call = int(end)
        q.completed += 1
        q.completed_in_sl += 1
        q.record_talk(talked)
        wrap = _f_option(options)
        wraps = caller_gone and wrap is not None
        if leg is not None and not wraps:  # the agent put the phone down: ;2 then ;1 go away
            peer = getattr(leg, "peer", None)
            if peer is not None and getattr(peer, "finish", None) is not None:
                peer.finish(16)
            if bridge is not None:
                set_var(leg, "BRIDGEPEER", "")
                bridge.leave(leg)
            self._drop_leg(leg, 16, peer_too=False)
        if bridge is not None:
            if wraps:
                set_var(leg, "BRIDGEPEER", "")
                bridge.leave(leg)
            set_var(line, "BRIDGEPEER", "")
            bridge.leave(line)
            bridge.destroy()
        self._queue_vars(line, q, calls=len(q.entries))
        set_var(line, "ANSWEREDTIME", str(talked))
        set_var(line, "ANSWEREDTIME_MS", str(int((end - answered) * 1000)))
        dialed = end - s.far.answered_at  # app_queue: DIALEDTIME counts from the channel's answer
        set_var(line, "DIALEDTIME", str(int(dialed)))
        set_var(line, "DIALEDTIME_MS", str(int(dialed * 1000)))
        self._queue_vars(line, q, calls=len(q.entries))  # app_queue sets them again on leaving
        if bridge is not None and not wraps:
            self._member_status(line, q, m, free=True)
        if wraps:
            assert wrap is not None
            self._spawn(self._wrapup(s, q, m, wrap, leg))
        else:
            self._after_call(q, m, end)
        return -1

    def _member_status(self, line: Any, q: QueueState, m: Member, *, free: bool = False,
                       in_use: bool = False) -> None:
        """QueueMemberStatus: the member's device state changed (ringing or bridged: in use; free after)."""
        sink = getattr(line, "_sink", None)
        if sink is None:
            return
        fields = self._member_fields(q, m)
        if free:
            fields.update({"InCall": "0", "Status": str(NOT_INUSE)})
        elif in_use:
            fields["Status"] = str(INUSE)
        sink("QueueMemberStatus", list(fields.items()))

    def _member_leg_gone(self, line: Any, q: QueueState, m: Member, peer: Any) -> None:
        peer.emit("SoftHangupRequest", {"Cause": "16"})
        peer.finish(0)
        self._member_status(line, q, m, free=True)

    def _after_call(self, q: QueueState, m: Member, end: float) -> None:
        m.busy = False
        m.acw_until = end + self.rng.uniform(*q.config.acw_seconds)
        q.notify()

    def _queue_vars(self, line: Any, q: QueueState, calls: int) -> None:
        from agi.sim.agi_client import set_var

        for name, value in (("QUEUENAME", q.name), ("QUEUEMAX", "0"), ("QUEUESTRATEGY", q.config.strategy),
                            ("QUEUECALLS", str(calls)), ("QUEUEHOLDTIME", str(q.holdtime)),
                            ("QUEUETALKTIME", str(q.talktime)), ("QUEUECOMPLETED", str(q.completed)),
                            ("QUEUEABANDONED", str(q.abandoned)), ("QUEUESRVLEVEL", "0"),
                            ("QUEUESRVLEVELPERF", f"{(100.0 * q.completed_in_sl / q.completed) if q.completed else 0.0:.1f}")):
            set_var(line, name, value)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def agent_callee(self, q: QueueState) -> Callee:
        """The agent at wrap-up: keys a disposition drawn from the queue's distribution (or nothing)."""
        keys_w = q.config.dispositions
        key = self.rng.choices(list(keys_w), weights=list(keys_w.values()))[0] if keys_w else ""
        at = self.rng.uniform(*q.config.wrapup_key_after)
        presses: list[KeyPress] = []
        if key:
            presses.append(KeyPress(key, at, prompt=0))
            if key == "3" and q.config.callback_hours is not None:
                hours = str(self.rng.randint(*q.config.callback_hours))
                for i, digit in enumerate(hours + "#", 1):
                    presses.append(KeyPress(digit, at + 0.4 * i, prompt=0))
        return Callee(keys=tuple(presses))

    async def _wrapup(self, s: "AgiSession", q: QueueState, m: Member, where: tuple[str, str, int],
                      leg: Any = None) -> None:
        """Queue option F: the member's leg continues at the wrap-up place and runs its FastAGI."""
        from agi.sim.agi_client import run_agi

        callee = self.agent_callee(q)
        context, exten, priority = where
        if leg is not None:  # the member's own channel goes on in the dialplan
            leg.callee = callee
            leg.context, leg.exten, leg.priority = context or getattr(leg, "context", ""), exten, priority
            leg.answered_at = s.clock.now()  # it inherited the caller's variables when it was created
        elif self.agent_line_factory is not None:
            leg = self.agent_line_factory(s.line, m, callee)
        else:
            leg = AgentLeg(s.line, m, s.clock, callee)
        agi = self._wrapup_agi(leg, (context or getattr(leg, "context", ""), exten, priority), f"{s.host}:{s.port}")
        try:
            if agi is not None:
                script, args = agi
                result = await run_agi(leg, s.host, s.port, script, args, context=context, extension=exten,
                                       priority=priority, server_timeout=s.server_timeout)
                self.wrapups.append(result)
        finally:
            from agi.sim.callee import far_end

            far_end(leg).cancel()
            self._drop_leg(leg, 16)
            self._after_call(q, m, s.clock.now())

    def _wrapup_agi(self, leg: Any, where: tuple[str, str, int], agi_default: str) -> tuple[str, list[str]] | None:
        """The FastAGI script and arguments of the ``AGI()`` the F() target runs, expanded with the
        agent leg's own variables (dialplan/dialer.conf [dialer-wrapup]); None if it runs none."""
        step = self.dialplan.find(*where)
        if step is None or step.app.upper() != "AGI":
            return None

        def lookup(name: str) -> str:
            value = leg.variables.get(name)
            if value is None:
                value = agi_default if name == "DIALER_AGI" else self.dialplan.globals.get(name, "")
            return value

        url, *args = split_args(substitute(step.args, lookup))
        return agi_args_of(url)[1], args


def _f_option(options: str) -> tuple[str, str, int] | None:
    """Queue option F(context^exten^priority) -> where the member's leg goes after the caller hangs up."""
    i = options.find("F(")
    if i < 0:
        return None
    inner = options[i + 2 : options.index(")", i)] if ")" in options[i:] else ""
    parts = inner.split("^")
    if len(parts) == 3:
        context, exten, prio = parts
    elif len(parts) == 2:
        context, (exten, prio) = "", parts
    else:
        context, exten, prio = "", "", parts[0]
    try:
        priority = int(prio)
    except ValueError:
        priority = 1
    return context, exten or "s", priority


def _local_exten(interface: str) -> str:
    """'Local/agent1@agents/n' -> 'agent1' (the exten a Local member leg starts at); else ''."""
    if interface.startswith("Local/"):
        return interface[6:].split("@", 1)[0]
    return ""


def _driven(leg: Any) -> bool:
    """A member leg whose ;2 half runs the member's extension of the dialplan (the switch set it up)."""
    return getattr(leg, "dialplan_answered", None) is not None


def _dead(line: Any) -> bool:
    ev = getattr(line, "hangup_requested", None)
    return line.hungup.is_set() or (ev is not None and ev.is_set())


def _dead_event(line: Any) -> asyncio.Event:
    ev = getattr(line, "hangup_requested", None)
    return ev if ev is not None else line.hungup
