"""Simulated agent queues: what ``EXEC Queue <q>,<options>,,,<timeout>`` does (app_queue.c), as the traces show.

``QueueSystem`` holds the queues of one simulated Asterisk: members (logged in, paused, ringing, on a
call, in after-call work), waiting callers, and the statistics ``QueueSummary``/``QueueStatus`` report.
Outcomes of ``Queue()`` (docs/outcomes.md "Agents"): bridged to a free member (the reply comes when the bridge
ends; QUEUESTATUS unset; MEMBERINTERFACE/MEMBERNAME/ANSWEREDTIME set), TIMEOUT, JOINEMPTY, UNKNOWN,
or the caller hanging up while waiting (ABANDONED=TRUE). Option ``F(context^exten^priority)``: when
the caller hangs up after a bridge, the member's leg runs the wrap-up FastAGI there, where the
simulated agent keys a disposition; after-call work follows before the member takes calls again.

The rooms: agi.sim.queue_model (members, a queue's state), queue_call (one caller in Queue()),
queue_legs (a member's leg on AMI), queue_bridge (the bridge), queue_wrapup (option F()).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any, Callable

from agi.sim.callee import Callee, KeyPress
from agi.sim.dialplan import PROJECT_DIALPLAN, Dialplan
from agi.sim.queue_call import run_caller
from agi.sim.queue_model import (  # noqa: F401 - the queues' vocabulary, imported from here
    DEFAULT_DISPOSITIONS,
    Member,
    QueueConfig,
    QueueState,
    member_fields,
)

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession, AgiSessionResult


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

    def state(self) -> dict[str, QueueState]:
        """The queues by name (those configured so far added on first use)."""
        if self._configs:
            for cfg in self._configs:
                if cfg.name not in self.queues:
                    self.queues[cfg.name] = QueueState(cfg, self._now())
            self._configs = []
        return self.queues

    def add(self, config: QueueConfig) -> None:
        self._configs.append(config)
        self.state()

    # ---- AMI views -----------------------------------------------------------------------------
    def summary(self, queue: str | None = None) -> list[dict[str, str]]:
        """QueueSummary rows, field order as Asterisk prints them (ami-queuesummary.txt)."""
        now = self._now()
        rows = []
        for q in self.state().values():
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
        for q in self.state().values():
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
                out.append(("QueueMember", member_fields(q, m, location=True)))
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

    def pause(self, interface: str, paused: bool, queue: str | None = None, reason: str = "") -> bool:
        """QueuePause: False if no queue has that member (AMI: 'Interface not found')."""
        found = False
        for q in self.state().values():
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

    def add_member(self, queue: str, interface: str, name: str = "", *, paused: bool = False,
                   reason: str = "") -> str:
        """QueueAdd: "added", "already" (a member of that queue already) or "noqueue"."""
        q = self.state().get(queue)
        if q is None:
            return "noqueue"
        if any(m.interface == interface for m in q.members):
            return "already"
        m = Member(interface, name or interface, paused=paused, paused_reason=reason if paused else "")
        m.login_time = int(self._now())
        q.members.append(m)
        q.notify()
        return "added"

    def remove_member(self, queue: str, interface: str) -> str:
        """QueueRemove: "removed", "notthere" or "noqueue"."""
        q = self.state().get(queue)
        if q is None:
            return "noqueue"
        for m in list(q.members):
            if m.interface == interface:
                q.members.remove(m)
                q.notify()
                return "removed"
        return "notthere"

    def set_logged_in(self, interface: str, logged_in: bool) -> bool:
        found = False
        for q in self.state().values():
            for m in q.members:
                if m.interface == interface:
                    m.logged_in, found = logged_in, True
                    q.notify()
        return found

    # ---- the Queue() application ------------------------------------------------------------------
    async def run_caller(self, s: "AgiSession", data: str) -> int:
        """``EXEC Queue data`` on the session's channel; returns the application's result."""
        return await run_caller(self, s, data)

    def spawn(self, coro) -> None:
        """Run ``coro`` in the background (a wrap-up after the caller has gone), kept until it ends."""
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
