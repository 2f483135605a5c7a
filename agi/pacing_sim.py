"""Discrete-event pacing simulator: a campaign's calls and agents on a simulated clock.

Drives the same pure ``agi.rules.pacing.calls_to_start`` the originator uses (and, for comparison,
baseline pacers written from VICIdial's and Issabel's source). No sockets, seeded.
``scripts/bench_pacing.py`` runs it over profiles and seeds and prints the table; ``dialer pacing
simulate`` runs it for one campaign (``compare_modes``) so an admin picks a mode before dialing.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from agi.outcomes import CampaignMode
from agi.rules.pacing import (
    DEFAULT_DROP_WINDOW_HOURS,
    PacingHistory,
    PacingState,
    PredictiveTuning,
    calls_to_start,
    predictive,
)


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


# --- pacers -------------------------------------------------------------------------------------


class OurMode:
    """Our pure pacing function, unchanged."""

    def __init__(self, mode: CampaignMode, name: str | None = None, tuning: PredictiveTuning | None = None):
        self.mode = mode
        self.name = name or mode.value
        self.tuning = tuning
        self.needs_ages = mode is CampaignMode.PREDICTIVE

    def __call__(self, state: PacingState, view: SimView) -> int:
        if self.tuning is not None and self.mode is CampaignMode.PREDICTIVE:
            return _clamp(predictive(state, self.tuning), state)
        return calls_to_start(state)


class VicidialAdaptive:
    """VICIdial's adaptive predictive dialing (dial method ADAPT_HARD_LIMIT), as its source does it.

    From ``AST_VDauto_dial.pl`` (one loop every 2.5 s): calls to place = round(dial level x
    dialable agents) - the campaign's calls in SENT, RINGING, LIVE, XFER or CLOSER state, i.e. the
    calls ringing, waiting for an agent *and those already with an agent*. Dialable agents are the
    non-paused agents (READY, QUEUE, INCALL) less the "dead" ones (INCALL with no call: after-call
    work), or with "available only tally" the READY ones, in which case the calls with agents are
    added back to the goal. Each loop also samples ready agents, waiting calls and all logged-in
    agents; ``AST_VDadapt.pl`` averages the last 20 samples and every 15 s multiplies the level by
    (1 + (ready - waiting) / agents) (intensity 0), caps it at the maximum level (3) and floors it
    at 1; with drop counts refreshed every 60 s it halves the level when over half of the last
    minute's calls (over 20) dropped and sets it to 1.0 when today's drops passed the cap (of the
    answered calls, once today has over 50 calls).
    """

    needs_ages = False
    LOOP = 2.5  # AST_VDauto_dial.pl: default --delay, seconds per loop
    ADAPT_EVERY = 15.0  # AST_VDadapt.pl: "Calculate and update Dial level every 15 seconds"
    DROPS_EVERY = 60.0  # AST_VDadapt.pl: "Update Drop counter every 60 seconds"
    SAMPLES = 20  # AST_VDauto_dial.pl: the differential averages the last 20 loops

    def __init__(self, available_only: bool, max_level: float = 3.0):
        self.available_only = available_only
        self.max_level = max_level
        self.name = "vicidial-avail" if available_only else "vicidial-all"
        self.level = 1.0
        self.samples: deque = deque(maxlen=self.SAMPLES)  # (ready, waiting, logged-in agents)
        self.next_loop = 0.0
        self.next_adapt = self.ADAPT_EVERY
        self.next_drops = 0.0
        self.minute: deque = deque()  # (t, dials, drops) increments seen in the last minute
        self._seen = (0, 0)  # (placed_total, dropped_total) already in ``minute``
        self.calls_one = self.drops_one = 0  # last minute, as of the last drop refresh
        self.calls_today = self.drops_today = self.answers_today = 0

    def __call__(self, state: PacingState, view: SimView) -> int:
        now = state.now
        h = view.history
        placed, dropped = h.placed_total - self._seen[0], h.dropped_total - self._seen[1]
        if placed or dropped:
            self.minute.append((now, placed, dropped))
            self._seen = (h.placed_total, h.dropped_total)
        while self.minute and self.minute[0][0] <= now - 60.0:
            self.minute.popleft()
        if now < self.next_loop:
            return 0
        while self.next_loop <= now:
            self.next_loop += self.LOOP
        self.samples.append((state.agents_available, state.queue_waiting, state.agents_logged_in))
        if now >= self.next_drops:
            self.next_drops = now + self.DROPS_EVERY
            self.calls_one = sum(m[1] for m in self.minute)
            self.drops_one = sum(m[2] for m in self.minute)
            self.calls_today, self.drops_today, self.answers_today = h.placed_total, h.dropped_total, h.live_total
        if now >= self.next_adapt:
            self.next_adapt = now + self.ADAPT_EVERY
            self._adapt(state)
        dialable = state.agents_available
        if not self.available_only:
            dialable += state.agents_in_call  # INCALL with a live call; after-call work is "dead"
        goal = round(self.level * dialable)
        if self.available_only:
            goal += state.agents_in_call  # calls already with agents (XFER) added back
        existing = state.in_flight + state.agents_in_call  # SENT/RINGING/LIVE + XFER
        return _clamp(goal - existing, state)

    def _adapt(self, state: PacingState) -> None:
        n = len(self.samples)
        ready = sum(s[0] for s in self.samples) / n
        waiting = sum(s[1] for s in self.samples) / n
        agents = sum(s[2] for s in self.samples) / n
        if agents > 0:
            self.level = min(self.max_level, self.level * (1.0 + (ready - waiting) / agents))
        self.level = max(1.0, self.level)
        if self.calls_one > 20 and self.drops_one > self.calls_one / 2:
            self.level /= 2
        cap = state.drop_cap_pct / 100.0
        if self.calls_today > 50 and self.answers_today and self.drops_today > cap * self.answers_today:
            self.level = 1.0  # ADAPT_HARD_LIMIT
        self.level = max(1.0, self.level)


class IssabelPredictor:
    """Issabel's call-center predictor, as its source does it (``CampaignProcess.class.php``,
    ``Predictor.class.php``, ``Campania.class.php``).

    Every 3 s: free agents (queue members neither paused nor in use: after-call work included, as
    Asterisk reports a member in wrap-up time as not in use) + agents in a call whose call is over
    with probability >= 0.97 (exponential with the mean talk time, at call age + mean time to
    answer of the last 20 answered calls, 8 s until there are 20) once the campaign has 10
    completed calls - callers waiting; then minus the calls still waiting for an answer; then, with
    ``dialer.overcommit`` on, divided by the answer ratio of the last 30 minutes (answered calls /
    finished calls, at least 10), floored at 0.20.
    """

    needs_ages = True
    name = "issabel"
    LOOP = 3.0  # CampaignProcess: INTERVALO_REVISION_CAMPANIAS
    MIN_SAMPLES = 10  # CampaignProcess: MIN_MUESTRAS completed calls before predicting
    ANSWER_SAMPLES = 20  # Campania: NUM_LLAMADAS_HISTORIAL_CONTESTADA
    ANSWER_DEFAULT = 8.0  # ConfigDB: dialer.tiempo_contestar
    ASR_FLOOR = 0.20  # CampaignProcess: $ASR_safe floor

    def __init__(self, service_probability: float = 0.97, overcommit: bool = True):
        self.service_probability = service_probability  # ConfigDB: dialer.qos default 0.97
        self.overcommit = overcommit  # ConfigDB: dialer.overcommit (off by default; on here)
        self.next_loop = 0.0

    def __call__(self, state: PacingState, view: SimView) -> int:
        now = state.now
        if now < self.next_loop:
            return 0
        while self.next_loop <= now:
            self.next_loop += self.LOOP
        stats = view.history.stats(now)
        likely = 0
        if len(stats.talk_times) >= self.MIN_SAMPLES and stats.talk_mean > 0:
            rings = list(view.answer_rings)
            t_answer = (sum(rings) + self.ANSWER_DEFAULT * (self.ANSWER_SAMPLES - len(rings))) / self.ANSWER_SAMPLES
            # P(call over by age + t_answer) = 1 - exp(-(age + t_answer) / mean) >= qos
            need = -stats.talk_mean * math.log(1.0 - self.service_probability) - t_answer
            likely = sum(1 for a in state.talk_ages if a >= need)
        waiting = state.queue_waiting + state.detecting
        n = max(0, state.agents_available + state.agents_in_acw + likely - waiting)
        if n > 0:
            n = max(0, n - len(state.ringing_ages))
        if n > 0 and self.overcommit and stats.resolved >= 10 and stats.humans + stats.machines > 0:
            n = round(n / max(self.ASR_FLOOR, stats.answer_rate))
        return _clamp(n, state)


def _clamp(n: int, state: PacingState) -> int:
    return max(0, min(int(n), state.limit))


def make_pacers() -> list[Callable[[], Pacer]]:
    """Factories for every strategy the benchmark compares (fresh state per run)."""
    return [
        lambda: OurMode(CampaignMode.PREDICTIVE),
        lambda: OurMode(CampaignMode.PROGRESSIVE),
        lambda: VicidialAdaptive(available_only=False),
        lambda: VicidialAdaptive(available_only=True),
        lambda: IssabelPredictor(),
    ]


# --- the simulation -----------------------------------------------------------------------------


@dataclass
class ShiftResult:
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


_FREE, _TALK, _ACW, _BREAK = 0, 1, 2, 3
# event kinds
_UNANSWERED, _ANSWER, _VERDICT, _DROP_CHECK, _TALK_END, _ACW_END = range(6)
DAY = 86400.0


def simulate(profile: Profile, pacer: Pacer, seed: int, tick: float = 1.0) -> ShiftResult:
    """Run the campaign's shift(s); returns the figures of the last one."""
    rng = random.Random(seed)
    p = profile
    history = PacingHistory()
    view = SimView(history=history, profile=p)
    days = max(1, p.days)
    m0 = (days - 1) * DAY  # the measured shift: the last day's
    m1 = m0 + p.shift
    window = p.drop_window_hours * 3600.0
    n_agents = p.agents
    state = [_FREE] * n_agents
    since = [0.0] * n_agents  # when the agent entered its current state
    talk_len = [0.0] * n_agents
    busy_time = 0.0
    break_time = 0.0
    free_agents: list[int] = list(range(n_agents))  # stack of free agent ids
    free_since = [0.0] * n_agents
    idle_total = 0.0
    connects = 0
    breaks_due = [
        sorted(d * DAY + rng.uniform(0.5, 7.5) * 3600 for d in range(days) for _ in range(p.breaks))
        for _ in range(n_agents)
    ]
    paused = 0

    events: list = []
    seq = 0
    ringing: dict[int, float] = {}  # call id -> originate time
    detecting = 0
    queue: deque = deque()  # (call id, answer time)
    queued_ids: set[int] = set()
    answer_time: dict[int, float] = {}
    channels = 0  # lines in use
    max_channels = 0
    lines_seen = [0] * (p.lines + 1)  # seconds of the measured shift with n lines in use
    dials = 0
    persons = 0
    drops = 0
    window_lives: deque = deque()  # times persons answered, within the drop window
    window_drops: deque = deque()  # times persons were dropped, within the drop window
    minutes = int(p.shift // 60) + 2
    minute_persons = [0] * minutes
    minute_drops = [0] * minutes
    recent_dials: deque = deque()  # originate times in the last second (CPS limit)
    cps_limit = int(p.cps)
    max_cps = 0
    ring_lo, ring_hi = p.ring
    mu = math.log(p.talk_mean) - p.talk_sigma**2 / 2
    needs_ages = getattr(pacer, "needs_ages", False)
    mode = getattr(pacer, "mode", CampaignMode.PREDICTIVE)
    c_fail = p.p_fail
    c_busy = c_fail + p.p_busy
    c_human = c_busy + p.p_human
    c_machine = c_human + p.p_machine

    def measured(t: float) -> bool:
        return m0 <= t < m1

    def overlap(a: float, b: float) -> float:
        return max(0.0, min(b, m1) - max(a, m0))

    def push(t: float, kind: int, data) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    def connect(now: float, call: int, ans: float) -> None:
        nonlocal connects, idle_total
        a = free_agents.pop()
        if measured(now):
            idle_total += now - max(free_since[a], m0)
            connects += 1
        history.connected(now)
        state[a] = _TALK
        since[a] = now
        talk = rng.lognormvariate(mu, p.talk_sigma)
        talk_len[a] = talk
        push(now + talk, _TALK_END, a)

    def agent_free(now: float, a: int) -> None:
        nonlocal paused, break_time
        due = breaks_due[a]
        if due and due[0] <= now:
            due.pop(0)
            state[a] = _BREAK
            paused += 1
            end = now + p.break_len
            break_time += overlap(now, end)
            push(end, _ACW_END, -1 - a)  # break end reuses ACW_END with a negative id
            return
        state[a] = _FREE
        free_since[a] = now
        free_agents.append(a)
        while queue and free_agents:
            call, ans = queue.popleft()
            queued_ids.discard(call)
            connect(now, call, ans)

    day = 0
    next_tick = 0.0
    call_id = 0
    while True:
        t_ev = events[0][0] if events else math.inf
        if next_tick <= t_ev and day * DAY + p.shift <= next_tick < math.inf:  # the shift is over
            day += 1
            next_tick = day * DAY if day < days else math.inf
            if day < days:
                for a in free_agents:
                    free_since[a] = next_tick
            continue
        if next_tick <= t_ev and next_tick < math.inf:
            now = next_tick
            next_tick += tick
            if measured(now):
                lines_seen[min(channels, p.lines)] += 1
            while recent_dials and recent_dials[0] <= now - 1.0:
                recent_dials.popleft()
            for q in (window_lives, window_drops):
                while q and q[0] < now - window:
                    q.popleft()
            budget = cps_limit - len(recent_dials)
            lines_free = p.lines - channels
            if budget <= 0 or lines_free <= 0:
                continue
            in_call = in_acw = 0
            talk_ages: tuple = ()
            acw_ages: tuple = ()
            if needs_ages:
                ta = []
                aa = []
                for i in range(n_agents):
                    s = state[i]
                    if s == _TALK:
                        ta.append(now - since[i])
                    elif s == _ACW:
                        aa.append(now - since[i])
                talk_ages, acw_ages = tuple(ta), tuple(aa)
                in_call, in_acw = len(ta), len(aa)
            else:
                for s in state:
                    if s == _TALK:
                        in_call += 1
                    elif s == _ACW:
                        in_acw += 1
            st = PacingState(
                mode=mode,
                now=now,
                lines_free=lines_free,
                cps_budget=budget,
                ringing_ages=tuple(now - t0 for t0 in ringing.values()),
                detecting=detecting,
                queue_waiting=len(queue),
                agents_logged_in=n_agents,
                agents_available=len(free_agents),
                agents_in_call=in_call,
                agents_in_acw=in_acw,
                talk_ages=talk_ages,
                acw_ages=acw_ages,
                ratio=p.ratio,
                drop_timeout=p.drop_after - p.amd_human,
                stats=history.stats(now),
                dropped_window=len(window_drops),
                live_window=len(window_lives),
                drop_cap_pct=p.drop_cap_pct,
                drop_target_pct=p.drop_target_pct,
                drop_window_hours=p.drop_window_hours,
            )
            view.agents_paused = paused
            n = pacer(st, view)
            if n < 0 or n > st.limit:
                raise AssertionError(f"{pacer.name} asked for {n} calls, limit {st.limit}")
            if n:
                recent_dials.extend([now] * n)
                max_cps = max(max_cps, len(recent_dials))
            for _ in range(n):
                call_id += 1
                if measured(now):
                    dials += 1
                channels += 1
                history.placed(now)
                u = rng.random()
                if u < c_fail:
                    push(now + p.fail_release, _UNANSWERED, call_id)
                elif u < c_busy:
                    push(now + p.busy_release, _UNANSWERED, call_id)
                elif u < c_machine:
                    ring = min(p.ring_timeout, rng.uniform(ring_lo, ring_hi))
                    push(now + ring, _ANSWER, (call_id, u < c_human))
                else:  # nobody answers: it rings until the ring timeout
                    push(now + p.ring_timeout, _UNANSWERED, call_id)
                ringing[call_id] = now
            max_channels = max(max_channels, channels)
            continue
        if not events:
            break
        now, _, kind, data = heapq.heappop(events)
        if kind == _UNANSWERED:
            t0 = ringing.pop(data)
            channels -= 1
            history.unanswered(now, now - t0)
        elif kind == _ANSWER:
            cid, human = data
            t0 = ringing.pop(cid)
            detecting += 1
            answer_time[cid] = now
            view.answer_rings.append(now - t0)
            push(now + (p.amd_human if human else p.amd_machine), _VERDICT, (cid, human, now - t0))
        elif kind == _VERDICT:
            cid, human, ring = data
            detecting -= 1
            ans = answer_time.pop(cid)
            history.answered(now, ring, human)
            if not human:
                channels -= 1
                continue
            if measured(now):
                persons += 1
                minute_persons[int((now - m0) // 60)] += 1
            window_lives.append(now)
            history.to_agent(now, now - ans)
            if free_agents:
                connect(now, cid, ans)
            else:
                queue.append((cid, ans))
                queued_ids.add(cid)
                push(ans + p.drop_after, _DROP_CHECK, cid)
        elif kind == _DROP_CHECK:
            if data in queued_ids:
                queued_ids.discard(data)
                for i, (c, _a) in enumerate(queue):
                    if c == data:
                        del queue[i]
                        break
                channels -= 1
                history.dropped(now)
                window_drops.append(now)
                if measured(now):
                    drops += 1
                    minute_drops[int((now - m0) // 60)] += 1
        elif kind == _TALK_END:
            a = data
            channels -= 1
            busy_time += overlap(since[a], now)
            state[a] = _ACW
            since[a] = now
            push(now + rng.uniform(*p.acw), _ACW_END, a)
        elif kind == _ACW_END:
            if data < 0:  # break over
                a = -1 - data
                paused -= 1
                agent_free(now, a)
                continue
            a = data
            busy_time += overlap(since[a], now)
            history.agent_freed(now, talk_len[a], now - since[a])
            agent_free(now, a)
        if next_tick == math.inf and not ringing and not detecting and not queue:
            break
    # agents still busy at the end of the shift
    for a in range(n_agents):
        if state[a] in (_TALK, _ACW):
            busy_time += overlap(since[a], m1)
    logged = n_agents * p.shift - break_time
    worst = 0.0
    wp = wd = 0
    for m in range(len(minute_persons)):
        wp += minute_persons[m]
        wd += minute_drops[m]
        if m >= 60:
            wp -= minute_persons[m - 60]
            wd -= minute_drops[m - 60]
        if m >= 59 and wp:
            worst = max(worst, wd / wp)
    return ShiftResult(
        profile=p.name,
        pacer=pacer.name,
        seed=seed,
        occupancy=busy_time / logged if logged else 0.0,
        drop_rate=drops / persons if persons else 0.0,
        worst_hour_drop_rate=worst,
        connects_per_agent_hour=connects / (logged / 3600.0) if logged else 0.0,
        idle_wait=idle_total / connects if connects else 0.0,
        dials=dials,
        persons=persons,
        drops=drops,
        max_lines_used=max_channels,
        max_cps_seen=max_cps,
        p95_lines_used=_percentile(lines_seen, 0.95),
        window_hours=p.drop_window_hours,
    )


def _percentile(histogram: list[int], q: float) -> int:
    """The q-quantile of a histogram (index = value, entry = how often)."""
    total = sum(histogram)
    if not total:
        return 0
    need = q * total
    seen = 0
    for value, n in enumerate(histogram):
        seen += n
        if seen >= need:
            return value
    return len(histogram) - 1


# --- what-if for one campaign (``dialer pacing simulate``) ------------------------------------


@dataclass(frozen=True)
class ModeResult:
    """One mode and ratio over several seeds: medians, and the worst seed where it matters."""

    mode: str
    ratio: float
    seeds: int
    occupancy: float
    occupancy_worst: float
    drop_rate: float
    drop_rate_worst: float
    worst_hour_drop_rate: float  # median over the seeds of each seed's worst rolling hour
    connects_per_agent_hour: float
    lines_p95: int  # highest over the seeds
    lines_max: int
    over_cap: bool  # some seed's drop rate over the cap

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compare_modes(
    profile: Profile,
    ratios: list[float],
    seeds: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> list[ModeResult]:
    """Progressive at each ratio, then predictive (at the profile's ratio), ``seeds`` shifts each."""
    plans = [(CampaignMode.PROGRESSIVE, r) for r in ratios] + [(CampaignMode.PREDICTIVE, profile.ratio)]
    total, done = len(plans) * seeds, 0
    out = []
    for mode, ratio in plans:
        runs = []
        for seed in range(1, seeds + 1):
            runs.append(simulate(profile.scaled(ratio=ratio), OurMode(mode), seed))
            done += 1
            if progress:
                progress(done, total)
        occ = [r.occupancy for r in runs]
        drop = [r.drop_rate for r in runs]
        out.append(ModeResult(
            mode=mode.value, ratio=ratio, seeds=seeds,
            occupancy=statistics.median(occ), occupancy_worst=min(occ),
            drop_rate=statistics.median(drop), drop_rate_worst=max(drop),
            worst_hour_drop_rate=statistics.median(r.worst_hour_drop_rate for r in runs),
            connects_per_agent_hour=statistics.median(r.connects_per_agent_hour for r in runs),
            lines_p95=max(r.p95_lines_used for r in runs), lines_max=max(r.max_lines_used for r in runs),
            over_cap=max(drop) > profile.drop_cap_pct / 100.0,
        ))
    return out
