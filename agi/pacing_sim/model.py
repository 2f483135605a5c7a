"""The simulator's vocabulary: a campaign's profile, what a pacer sees, the figures of a shift.

Shared by the pacers (``agi.pacing_sim.pacers``) and the discrete-event run
(``agi.pacing_sim.shift``), so neither depends on the other.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol

from agi.rules.pacing import DEFAULT_DROP_WINDOW_HOURS, PacingHistory, PacingState


@dataclass(frozen=True)
class Profile:
    """A campaign model (issue 6): dial outcome mix, durations, agents, shift.

    Answered calls are answered after uniform ``ring`` seconds; unanswered calls ring until
    ``ring_timeout`` (Dial's timeout ends them); busy ends at ``busy_release`` s, fast failures at
    ``fail_release`` s; AMD decides at answer + ``amd_human`` / ``amd_machine``; a person with no
    agent free by answer + ``drop_after`` is dropped. Talk is lognormal (``talk_sigma``) with mean
    ``talk_mean``; ACW uniform ``acw``. Lines and CPS are not part of issue 6's profiles: they are
    set generously so that the pacer, not the trunk, decides.

    ``days`` shifts run one a day (the same campaign: its drop counts and history carry over, the
    pacer counts drops over ``drop_window_hours`` of the clock); the figures are the last day's.
    ``ratio``, ``drop_cap_pct``, ``drop_target_pct`` and ``drop_window_hours`` are the campaign's
    pacing settings as the originator passes them in the ``PacingState``.
    """

    name: str
    agents: int
    p_human: float
    p_machine: float
    p_busy: float
    talk_mean: float
    p_fail: float = 0.10
    talk_sigma: float = 0.6
    ring: tuple[float, float] = (15.0, 25.0)
    ring_timeout: float = 25.0
    busy_release: float = 3.0
    fail_release: float = 1.0
    amd_human: float = 2.0
    amd_machine: float = 2.5
    drop_after: float = 4.0
    acw: tuple[float, float] = (10.0, 20.0)
    shift: float = 8 * 3600.0
    lines: int = 300
    cps: float = 20.0
    breaks: int = 0  # breaks per agent per shift (taken once the agent is free)
    break_len: float = 900.0
    drop_cap_pct: float = 3.0
    drop_target_pct: float | None = None  # None: the pacing rule's default below the cap
    drop_window_hours: float = DEFAULT_DROP_WINDOW_HOURS
    ratio: float = 1.0
    days: int = 1

    def scaled(self, **changes) -> "Profile":
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "P1": Profile("P1", agents=10, p_human=0.08, p_machine=0.04, p_busy=0.10, talk_mean=90.0),
    "P2": Profile("P2", agents=25, p_human=0.25, p_machine=0.08, p_busy=0.08, talk_mean=120.0),
    "P3": Profile("P3", agents=50, p_human=0.40, p_machine=0.10, p_busy=0.05, talk_mean=180.0),
}


@dataclass
class SimView:
    """What a pacer may look at besides the PacingState (baselines keep their own memory)."""

    history: PacingHistory
    profile: Profile
    agents_paused: int = 0
    # seconds from Originate to answer of the last 20 answered calls (person or machine)
    answer_rings: deque = field(default_factory=lambda: deque(maxlen=20))


class Pacer(Protocol):
    name: str
    needs_ages: bool

    def __call__(self, state: PacingState, view: SimView) -> int: ...



@dataclass
class ShiftResult:
    """The figures of one measured shift (the last day's)."""

    profile: str
    pacer: str
    seed: int
    occupancy: float  # (talk + ACW) / logged-in time
    drop_rate: float  # dropped / persons answered, whole shift
    worst_hour_drop_rate: float  # worst rolling 60-minute window (windows with >= 1 person)
    connects_per_agent_hour: float
    idle_wait: float  # mean seconds an agent waited between becoming free and its next call
    dials: int
    persons: int
    drops: int
    max_lines_used: int = 0
    max_cps_seen: int = 0
    p95_lines_used: int = 0  # lines in use, 95th percentile of the shift's seconds
    window_hours: float = 720.0  # the drop window the pacer counted over

