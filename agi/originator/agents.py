"""One campaign's agents as this dialer sees them: the last queue snapshot, who is wrapping up
after which call, since when nobody is free, and the agent time measured (occupancy).

No I/O: the poller (agi.originator.agent_poll) feeds it snapshots, the queue events feed it
AgentCompletes, and it answers with what happened (agents whose wrap-up ended) for the pacing
history. All times are call time (agi.originator.clock).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from agi.ami.queues import QueueSnapshot
from agi.originator.clock import as_dt

HOUR_S = 3600.0


@dataclass
class AgentTime:
    """Agent-seconds measured here and not stored yet, per hour of the clock.

    The originator adds each poll interval (``add``) and, every few seconds and at stop,
    ``take``s the increments to add them to the database (store.add_agent_time); a failed
    write ``give_back``s them for the next flush. Only increments travel, so a flush adds
    what was measured since the previous one and nothing twice.
    """

    pending: dict[float, list[float]] = field(default_factory=dict)  # hour start -> [busy, logged]

    def add(self, t0: float, t1: float, busy_agents: float, logged_agents: float) -> None:
        """Agents counted constant over [t0, t1): split at hour boundaries into agent-seconds."""
        t = t0
        while t < t1:
            hour = math.floor(t / HOUR_S) * HOUR_S
            end = min(t1, hour + HOUR_S)
            cell = self.pending.setdefault(hour, [0.0, 0.0])
            cell[0] += (end - t) * busy_agents
            cell[1] += (end - t) * logged_agents
            t = end

    def take(self) -> dict[dt.datetime, tuple[float, float]]:
        """The pending increments by hour (aware UTC), now cleared here."""
        taken = {as_dt(h): (busy, logged) for h, (busy, logged) in self.pending.items()}
        self.pending.clear()
        return taken

    def give_back(self, taken: dict[dt.datetime, tuple[float, float]]) -> None:
        for hour, (busy, logged) in taken.items():
            cell = self.pending.setdefault(hour.timestamp(), [0.0, 0.0])
            cell[0] += busy
            cell[1] += logged


@dataclass(frozen=True)
class Freed:
    """An agent whose wrap-up ended: the talk time of the call before it and how long wrap-up took."""

    talk_s: float
    acw_s: float


@dataclass
class AgentWatch:
    """One campaign's agents. Agent time is integrated only between two counted observations in
    a row: a gap (AMI down, the campaign not worked) is not observed, so it is not counted."""

    snapshot: QueueSnapshot | None = None  # the last one polled; None: never polled
    acw_pending: list[tuple[float, float]] = field(default_factory=list)  # (AgentComplete at, talk s)
    no_agents_since: float | None = None  # since when no agent was available
    busy_s: float = 0.0  # agent-seconds on a call or in after-call work, in all
    logged_s: float = 0.0  # agent-seconds logged in, in all
    observed_at: float | None = None  # the last counted observation; None: not observed now
    time: AgentTime = field(default_factory=AgentTime)  # what is not stored yet

    @property
    def now(self) -> QueueSnapshot:
        """The agents as last polled (all zero before the first poll)."""
        return self.snapshot or QueueSnapshot(queue="")

    @property
    def occupancy(self) -> float | None:
        """Percent of logged-in agent time spent talking or in after-call work, as measured here."""
        return 100.0 * self.busy_s / self.logged_s if self.logged_s > 0 else None

    def completed(self, at: float, talk_s: float) -> None:
        """AgentComplete: an agent finished a call and starts wrap-up."""
        self.acw_pending.append((at, talk_s))

    def acw_ages(self, now: float) -> tuple[float, ...]:
        """How long each agent in wrap-up (as AgentComplete told) has been in it."""
        return tuple(now - at for at, _ in self.acw_pending)

    def unobserved(self) -> None:
        """The agents cannot be seen now: the time until the next observation is not counted."""
        self.observed_at = None

    def observe(self, snapshot: QueueSnapshot, now: float, *, counted: bool) -> list[Freed]:
        """A new snapshot of the queue. ``counted``: this campaign is worked, so the time since the
        previous counted observation is agent time. Returns the agents whose wrap-up ended (the
        oldest pending AgentCompletes, first in first out)."""
        freed = []
        while len(self.acw_pending) > snapshot.in_acw:
            done_at, talk = self.acw_pending.pop(0)
            freed.append(Freed(talk, max(0.0, now - done_at)))
        if counted:
            if self.observed_at is not None and self.snapshot is not None and now > self.observed_at:
                self._count(self.observed_at, now, self.snapshot)
            self.observed_at = now
        self.snapshot = snapshot
        if snapshot.available > 0:
            self.no_agents_since = None
        elif self.no_agents_since is None:
            self.no_agents_since = now
        return freed

    def _count(self, t0: float, t1: float, seen: QueueSnapshot) -> None:
        """The agents of ``seen`` counted constant over [t0, t1)."""
        busy, logged = seen.in_call + seen.in_acw, seen.logged_in
        self.busy_s += (t1 - t0) * busy
        self.logged_s += (t1 - t0) * logged
        self.time.add(t0, t1, busy, logged)
