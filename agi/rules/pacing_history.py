"""Recent call history for the pacing rule: events in (``PacingHistory``), figures out (``PacingStats``).

Pure: every method takes ``now``, the clock of ``agi.rules.pacing.PacingState.now``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class PacingStats:
    """Recent call history, as measured by ``PacingHistory.stats``.

    Distributions are kept as sorted samples so that conditional probabilities ("this call has rung
    for 12 s, how likely is a person to answer in the next 10 s?") need no distribution model.
    """

    resolved: int = 0  # dials whose ringing ended (answered with an AMD verdict, or not answered)
    humans: int = 0  # of those, answered by a person
    machines: int = 0  # of those, answered by a machine (or fax)
    agent_share: float = 1.0  # share of persons that asked for an agent after AMD/IVR
    amd_delay: float = 2.0  # mean seconds from answer to the agent request (AMD + IVR)
    resolve_ages: tuple[float, ...] = ()  # sorted: seconds from Originate to the end of ringing, every dial
    human_ages: tuple[float, ...] = ()  # sorted: seconds from Originate to answer, persons only
    talk_times: tuple[float, ...] = ()  # sorted: agent talk durations
    acw_times: tuple[float, ...] = ()  # sorted: agent after-call-work durations
    connects: int = 0  # persons connected to an agent, in the window
    drops: int = 0  # persons dropped, in the window

    @cached_property
    def human_rate(self) -> float:
        """Persons per dial."""
        return self.humans / self.resolved if self.resolved else 0.0

    @cached_property
    def answer_rate(self) -> float:
        """Answers (person or machine) per dial."""
        return (self.humans + self.machines) / self.resolved if self.resolved else 0.0

    @cached_property
    def ring_mean(self) -> float:
        """Mean seconds from Originate to a person's answer."""
        return sum(self.human_ages) / len(self.human_ages) if self.human_ages else 0.0

    @cached_property
    def talk_mean(self) -> float:
        return sum(self.talk_times) / len(self.talk_times) if self.talk_times else 0.0

    @cached_property
    def acw_mean(self) -> float:
        return sum(self.acw_times) / len(self.acw_times) if self.acw_times else 0.0


@dataclass
class PacingHistory:
    """Accumulates call events into ``PacingStats``; fed by the originator and the simulator.

    Pure: every method takes ``now`` (the same clock as ``PacingState.now``). Dial outcomes are kept
    for ``window`` seconds (at most ``max_calls``); talk/ACW durations for the last ``max_agent_samples``
    calls whatever their age (agents finish calls slowly). ``stats`` is recomputed at most every
    ``refresh`` seconds.
    """

    window: float = 1800.0
    max_calls: int = 3000
    max_agent_samples: int = 400
    refresh: float = 30.0
    live_total: int = 0  # persons answered since the start (drop-rate denominator)
    dropped_total: int = 0  # persons dropped since the start
    connected_total: int = 0
    placed_total: int = 0
    _resolved: deque = field(default_factory=deque)  # (t, age, kind) kind 0 no answer, 1 machine, 2 person
    _requests: deque = field(default_factory=deque)  # (t, answer->request delay)
    _routed: deque = field(default_factory=deque)  # (t, connected: bool)
    _talk: deque = field(default_factory=deque)
    _acw: deque = field(default_factory=deque)
    _cache: PacingStats | None = None
    _cache_at: float = -math.inf

    def placed(self, now: float) -> None:
        """An Originate was sent."""
        self.placed_total += 1

    def answered(self, now: float, ring: float, human: bool) -> None:
        """AMD's verdict on an answered call; ``ring`` = seconds from Originate to answer."""
        self._resolved.append((now, ring, 2 if human else 1))
        if human:
            self.live_total += 1
        self._dirty(now)

    def unanswered(self, now: float, ring: float) -> None:
        """Busy, no answer, rejected, failed: ``ring`` = seconds from Originate to the end."""
        self._resolved.append((now, ring, 0))
        self._dirty(now)

    def to_agent(self, now: float, delay: float) -> None:
        """A person asked for an agent ``delay`` seconds after answering (AMD + IVR)."""
        self._requests.append((now, delay))

    def connected(self, now: float) -> None:
        self.connected_total += 1
        self._routed.append((now, True))

    def dropped(self, now: float) -> None:
        self.dropped_total += 1
        self._routed.append((now, False))

    def agent_freed(self, now: float, talk: float, acw: float) -> None:
        """An agent finished a call: ``talk`` seconds bridged, then ``acw`` seconds of wrap-up."""
        self._talk.append(talk)
        self._acw.append(acw)
        while len(self._talk) > self.max_agent_samples:
            self._talk.popleft()
            self._acw.popleft()

    def _dirty(self, now: float) -> None:
        q = self._resolved
        while len(q) > self.max_calls:
            q.popleft()

    def stats(self, now: float) -> PacingStats:
        if self._cache is not None and now - self._cache_at < self.refresh:
            return self._cache
        start = now - self.window
        for q in (self._resolved, self._requests, self._routed):
            while q and q[0][0] < start:
                q.popleft()
        ages = []
        hum = []
        machines = 0
        for _t, age, kind in self._resolved:
            ages.append(age)
            if kind == 2:
                hum.append(age)
            elif kind == 1:
                machines += 1
        ages.sort()
        hum.sort()
        humans = len(hum)
        reqs = len(self._requests)
        routed_ok = sum(1 for r in self._routed if r[1])
        self._cache = PacingStats(
            resolved=len(ages),
            humans=humans,
            machines=machines,
            agent_share=min(1.0, reqs / humans) if humans and reqs else 1.0,
            amd_delay=sum([r[1] for r in self._requests]) / reqs if reqs else 2.0,
            resolve_ages=tuple(ages),
            human_ages=tuple(hum),
            talk_times=tuple(sorted(self._talk)),
            acw_times=tuple(sorted(self._acw)),
            connects=routed_ok,
            drops=len(self._routed) - routed_ok,
        )
        self._cache_at = now
        return self._cache
