"""Discrete-event pacing simulator: a campaign's calls and agents on a simulated clock.

Drives the same pure ``agi.rules.pacing.calls_to_start`` the originator uses (and, for comparison,
baseline pacers written from VICIdial's and Issabel's published descriptions). No sockets, seeded.
``scripts/bench_pacing.py`` runs it over profiles and seeds and prints the table.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Protocol

from agi.outcomes import CampaignMode
from agi.rules.pacing import PacingHistory, PacingState, PredictiveTuning, calls_to_start, predictive


@dataclass(frozen=True)
class Profile:
    """A campaign model (issue 6): dial outcome mix, durations, agents, shift.

    Answered and unanswered calls ring uniform ``ring`` seconds (never past ``ring_timeout``);
    busy ends at ``busy_release`` s, fast failures at ``fail_release`` s; AMD decides at answer +
    ``amd_human`` / ``amd_machine``; a person with no agent free by answer + ``drop_after`` is
    dropped. Talk is lognormal (``talk_sigma``) with mean ``talk_mean``; ACW uniform ``acw``.
    Lines and CPS are not part of issue 6's profiles: they are set generously so that the pacer,
    not the trunk, decides.
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
    """VICIdial-style adaptive dial level, from its published description (no code copied).

    calls to start = level x dialable agents - calls in flight. Every 15 s the level is multiplied by
    (1 + pct/100), pct = 100 x (average ready agents - average waiting calls) / average agents over
    the last minute, scaled by the intensity; clamped to [1, 3]. Safeguards: back to 1.0 once the
    day's drop rate passes the cap; halved when over half the last minute's live answers dropped.
    ``available_only``: dialable agents are those ready now; otherwise all non-paused agents.
    """

    needs_ages = False

    def __init__(self, available_only: bool, intensity: float = 1.0, max_level: float = 3.0):
        self.available_only = available_only
        self.intensity = intensity
        self.max_level = max_level
        self.name = "vicidial-avail" if available_only else "vicidial-all"
        self.level = 1.0
        self.samples: deque = deque()  # (t, ready, waiting, agents)
        self.next_adapt = 15.0
        self.recent: deque = deque()  # (t, dropped?) live answers in the last minute
        self._seen_drops = 0
        self._seen_lives = 0

    def __call__(self, state: PacingState, view: SimView) -> int:
        now = state.now
        agents = state.agents_logged_in - view.agents_paused
        self.samples.append((now, state.agents_available, state.queue_waiting, agents))
        while self.samples and self.samples[0][0] < now - 60.0:
            self.samples.popleft()
        h = view.history
        for _ in range(h.dropped_total - self._seen_drops):
            self.recent.append((now, True))
        for _ in range((h.live_total - h.dropped_total) - (self._seen_lives - self._seen_drops)):
            self.recent.append((now, False))
        self._seen_drops, self._seen_lives = h.dropped_total, h.live_total
        while self.recent and self.recent[0][0] < now - 60.0:
            self.recent.popleft()
        if now >= self.next_adapt:
            self.next_adapt = now + 15.0
            n = len(self.samples)
            ready = sum(s[1] for s in self.samples) / n
            waiting = sum(s[2] for s in self.samples) / n
            avg_agents = sum(s[3] for s in self.samples) / n
            if avg_agents > 0:
                pct = 100.0 * (ready - waiting) / avg_agents * self.intensity
                self.level *= 1.0 + pct / 100.0
            self.level = min(self.max_level, max(1.0, self.level))
            cap = state.drop_cap_pct / 100.0
            if state.live_window and state.dropped_window > cap * state.live_window:
                self.level = 1.0
            dropped = sum(1 for r in self.recent if r[1])
            if self.recent and dropped > len(self.recent) / 2:
                self.level = max(1.0, self.level / 2)
        dialable = state.agents_available if self.available_only else agents
        want = math.floor(self.level * dialable) - state.in_flight
        return max(0, min(want, state.limit))


class IssabelPredictor:
    """Issabel-style predictor, from its published description (no code copied).

    Agents expected free = free agents + busy agents whose call is likely over (probability >= 0.97
    under an exponential talk-time model with the measured mean, given the call's age) by the time a
    new call would be answered; minus waiting callers; divided by the last 30 minutes' answer rate
    (persons per dial: machines never reach agents here) = calls that should be in flight.
    """

    needs_ages = True
    name = "issabel"

    def __init__(self, service_probability: float = 0.97):
        self.service_probability = service_probability

    def __call__(self, state: PacingState, view: SimView) -> int:
        stats = view.history.stats(state.now)
        if stats.resolved < 50 or stats.humans < 5 or not stats.talk_times:
            return _clamp(state.agents_available - state.in_flight, state)
        mean = stats.talk_mean + stats.acw_mean
        t_answer = stats.ring_mean + stats.amd_delay
        # P(total <= age + t) >= p  <=>  age + t >= -mean ln(1 - p)
        need = -mean * math.log(1.0 - self.service_probability) - t_answer
        likely = sum(1 for a in state.talk_ages if a >= need)
        expected_free = state.agents_available + likely - state.queue_waiting
        rate = stats.human_rate
        if rate <= 0:
            return 0
        want = round(expected_free / rate) - state.in_flight
        return _clamp(want, state)


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


_FREE, _TALK, _ACW, _BREAK = 0, 1, 2, 3
# event kinds
_UNANSWERED, _ANSWER, _VERDICT, _DROP_CHECK, _TALK_END, _ACW_END = range(6)


def simulate(profile: Profile, pacer: Pacer, seed: int, tick: float = 1.0) -> ShiftResult:
    """Run one shift; returns the figures the benchmark prints."""
    rng = random.Random(seed)
    p = profile
    history = PacingHistory()
    view = SimView(history=history, profile=p)
    shift = p.shift
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
    breaks_due = [sorted(rng.uniform(0.5, 7.5) * 3600 for _ in range(p.breaks)) for _ in range(n_agents)]
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
    dials = 0
    persons = 0
    drops = 0
    minute_persons = [0] * (int(shift // 60) + 2)
    minute_drops = [0] * (int(shift // 60) + 2)
    recent_dials: deque = deque()  # originate times in the last second (CPS limit)
    cps_limit = int(p.cps)
    max_cps = 0
    cap = p.drop_cap_pct
    ring_lo, ring_hi = p.ring
    mu = math.log(p.talk_mean) - p.talk_sigma**2 / 2
    needs_ages = getattr(pacer, "needs_ages", False)
    mode = getattr(pacer, "mode", CampaignMode.PREDICTIVE)
    c_fail = p.p_fail
    c_busy = c_fail + p.p_busy
    c_human = c_busy + p.p_human
    c_machine = c_human + p.p_machine

    def push(t: float, kind: int, data) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    def connect(now: float, call: int, ans: float) -> None:
        nonlocal connects, idle_total
        a = free_agents.pop()
        idle_total += now - free_since[a]
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
            break_time += max(0.0, min(end, shift) - min(now, shift))
            push(end, _ACW_END, -1 - a)  # break end reuses ACW_END with a negative id
            return
        state[a] = _FREE
        free_since[a] = now
        free_agents.append(a)
        while queue and free_agents:
            call, ans = queue.popleft()
            queued_ids.discard(call)
            connect(now, call, ans)

    next_tick = 0.0
    call_id = 0
    while True:
        t_ev = events[0][0] if events else math.inf
        if next_tick <= t_ev and next_tick < shift:
            now = next_tick
            next_tick += tick
            while recent_dials and recent_dials[0] <= now - 1.0:
                recent_dials.popleft()
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
                drop_timeout=p.drop_after - p.amd_human,
                stats=history.stats(now),
                dropped_window=drops,
                live_window=persons,
                drop_cap_pct=cap,
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
                else:
                    ring = min(p.ring_timeout, rng.uniform(ring_lo, ring_hi))
                    push(now + ring, _UNANSWERED, call_id)
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
            push(now + (p.amd_human if human else p.amd_machine), _VERDICT, (cid, human, now - t0))
        elif kind == _VERDICT:
            cid, human, ring = data
            detecting -= 1
            ans = answer_time.pop(cid)
            history.answered(now, ring, human)
            if not human:
                channels -= 1
                continue
            persons += 1
            if now < shift:
                minute_persons[int(now // 60)] += 1
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
                drops += 1
                channels -= 1
                history.dropped(now)
                if now < shift:
                    minute_drops[int(now // 60)] += 1
        elif kind == _TALK_END:
            a = data
            channels -= 1
            busy_time += max(0.0, min(now, shift) - min(since[a], shift))
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
            busy_time += max(0.0, min(now, shift) - min(since[a], shift))
            history.agent_freed(now, talk_len[a], now - since[a])
            agent_free(now, a)
        if now >= shift and not ringing and not detecting and not queue:
            break
    # agents still busy at the end of the shift
    for a in range(n_agents):
        if state[a] in (_TALK, _ACW) and since[a] < shift:
            busy_time += shift - since[a]
    logged = n_agents * shift - break_time
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
    )
