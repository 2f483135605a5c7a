"""Pacing: how many calls a campaign should start now, from its lines, agents and recent history.

Pure: the originator (and ``agi.pacing_sim``) build a ``PacingState`` from their live counters
every tick (~0.2-1 s) and call ``calls_to_start``; time only comes in as ``state.now``.

Feeding it, per campaign and dialer (the originator's side of the seam):

- one ``PacingHistory`` per campaign, fed as events happen: ``placed`` when Originate is sent,
  ``unanswered`` when a call ends without answer (busy, no answer, failure; OriginateResponse or
  Hangup), ``answered`` when the AMD verdict of an answered call is known (ring = Originate to
  OriginateResponse Success), ``to_agent`` when a person enters the queue, ``connected`` /
  ``dropped`` when routing is decided (AgentConnect / drop), ``agent_freed`` when an agent ends
  after-call work (talk from AgentComplete ``TalkTime``, ACW until the member is available again);
- each tick a ``PacingState`` with ``stats=history.stats(now)``, the drop counts over the campaign's
  regulatory window from the database with its cap, target and window settings, and the agents
  from QueueSummary plus per-agent ages.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from agi.outcomes import CampaignMode
from agi.rules.compliance import DROP_WINDOW_US_HOURS, MAX_DROP_RATE_PCT
from agi.rules.pacing_history import PacingHistory, PacingStats

DEFAULT_DROP_CAP_PCT = MAX_DROP_RATE_PCT
DEFAULT_DROP_WINDOW_HOURS = float(DROP_WINDOW_US_HOURS)
# The drop rate predictive steers toward when the campaign sets none: this share of the cap.
DEFAULT_TARGET_SHARE = 0.9
# Windows shorter than this are judged on the raw rate from the first live answer (no prior).
PRIOR_MIN_WINDOW_HOURS = 24.0
# History needed before the predictive mode over-dials (below this it paces progressive).
MIN_RESOLVED_CALLS = 50
MIN_HUMANS = 10
MIN_TALK_SAMPLES = 10


@dataclass(frozen=True)
class PacingState:
    """Everything ``calls_to_start`` looks at, as one tick's snapshot.

    Counts are for this campaign on this dialer. "In flight" means originated and not yet either
    ended or bridged to an agent: ``len(ringing_ages) + detecting + queue_waiting``.
    """

    mode: CampaignMode
    now: float  # seconds on the clock the PacingHistory is fed with (monotonic; any origin)
    # min(dialer lines - its calls up, campaign lines on this dialer - the campaign's calls up there);
    # a call is "up" from Originate until hang-up, including while bridged to an agent
    lines_free: int
    cps_budget: int  # Originates the calls-per-second limiter allows right now (whole tokens)
    # age in seconds (now - Originate sent) of every call not yet answered nor ended
    ringing_ages: tuple[float, ...] = ()
    detecting: int = 0  # answered, still in AMD/IVR: not yet queued for an agent, not ended
    queue_waiting: int = 0  # persons waiting in the agent queue (QueueSummary ``Callers``)
    agents_logged_in: int = 0  # QueueSummary ``LoggedIn``
    agents_available: int = 0  # ready now: not in call, not in ACW, not paused, not ringing (``Available``)
    agents_in_call: int = 0  # talking to a person
    agents_in_acw: int = 0  # after-call work (wrap-up)
    # optional, for predictive: per agent in call, seconds since the bridge; per agent in ACW,
    # seconds since the call ended. Leave empty if unknown (an average model is used instead).
    talk_ages: tuple[float, ...] = ()
    acw_ages: tuple[float, ...] = ()
    ratio: float = 1.0  # campaign ``pacing_ratio``: progressive calls in flight per available agent
    drop_timeout: float = 2.0  # campaign ``drop_timeout``: seconds a person may wait in the queue
    stats: PacingStats | None = None  # ``PacingHistory.stats(now)``; None = no history yet
    # persons dropped / live answers over the regulatory window (campaign ``drop_window_hours``)
    dropped_window: int = 0
    live_window: int = 0
    drop_cap_pct: float = DEFAULT_DROP_CAP_PCT  # campaign ``drop_cap_pct``
    # campaign's target drop rate, under the cap, that predictive steers toward (None: 90% of the cap)
    drop_target_pct: float | None = None
    # the counts' window: under PRIOR_MIN_WINDOW_HOURS the cap is checked on the raw rate only
    drop_window_hours: float = DEFAULT_DROP_WINDOW_HOURS

    @property
    def in_flight(self) -> int:
        return len(self.ringing_ages) + self.detecting + self.queue_waiting

    @property
    def limit(self) -> int:
        """The most calls that may start now: never beyond free lines or the CPS budget."""
        return max(0, min(self.lines_free, self.cps_budget))


def calls_to_start(state: PacingState) -> int:
    """How many Originates to send now; always within ``0 .. state.limit``."""
    if state.mode is CampaignMode.BROADCAST:
        return state.limit
    if state.mode is CampaignMode.PROGRESSIVE:
        # the drop cap holds in every mode that reaches agents: over-dialing (ratio > 1) stops at it
        return progressive(state, min(state.ratio, 1.0) if drop_budget_spent(state) else state.ratio)
    if state.mode is CampaignMode.PREDICTIVE:
        return predictive(state)
    raise ValueError(f"unknown pacing mode {state.mode!r}: use a CampaignMode")


def dial_level(state: PacingState, to_start: int) -> float | None:
    """VICIdial's "dial level" as the live view shows it: calls in flight, with the ``to_start`` now
    being started, per agent ready to take one. None when nothing is paced against agents
    (broadcast) or no agent is ready."""
    if state.mode is CampaignMode.BROADCAST or state.agents_available <= 0:
        return None
    return (state.in_flight + to_start) / state.agents_available


def progressive(state: PacingState, ratio: float) -> int:
    """Keep ``available agents x ratio`` calls in flight."""
    want = math.floor(state.agents_available * max(ratio, 0.0) + 1e-9) - state.in_flight
    return max(0, min(want, state.limit))


def target_drop_pct(state: PacingState) -> float:
    """The drop rate the predictive mode steers toward: the campaign's, never above the cap."""
    target = state.drop_target_pct
    if target is None:
        target = DEFAULT_TARGET_SHARE * state.drop_cap_pct
    return max(0.0, min(target, state.drop_cap_pct))


def _prior_lives(state: PacingState, lives: float) -> float:
    """A prior's weight: none when the window is shorter than a day, whose rule is the raw rate."""
    return lives if state.drop_window_hours >= PRIOR_MIN_WINDOW_HOURS else 0.0


def drop_budget_used(state: PacingState, prior_lives: float = 200.0, prior_used: float | None = None) -> float:
    """Measured drop rate as a share of the cap (1.0 = at the cap), smoothed by a prior.

    The prior (``prior_lives`` live answers at ``prior_used`` of the cap, by default the target's
    share) keeps the first few drops of a new campaign from swinging the pacing wildly; it fades
    as live answers accumulate.
    """
    cap = state.drop_cap_pct / 100.0
    if cap <= 0:
        return math.inf
    if prior_used is None:
        prior_used = target_drop_pct(state) / state.drop_cap_pct
    if state.live_window + prior_lives <= 0:
        return 0.0
    drops = state.dropped_window + prior_used * cap * prior_lives
    return drops / (cap * (state.live_window + prior_lives))


def lines_needed(stats: PacingStats | None, agents: int) -> int | None:
    """About how many lines a campaign keeps busy when its ``agents`` are never idle, from its
    history (None until there is enough): every agent busy needs agents / handle time persons a
    second, so that many / person rate dials a second, each holding a line while it rings (the
    mean time to the end of ringing); the persons hold theirs through detection and their talk."""
    if stats is None or agents <= 0 or not stats.resolve_ages or not stats.talk_times or stats.human_rate <= 0:
        return None
    handle = stats.talk_mean + stats.acw_mean
    if handle <= 0:
        return None
    persons_per_s = agents / handle / max(stats.agent_share, 0.05)
    dials_per_s = persons_per_s / stats.human_rate
    ringing = dials_per_s * (sum(stats.resolve_ages) / len(stats.resolve_ages))
    return math.ceil(ringing + persons_per_s * stats.amd_delay + agents * stats.talk_mean / handle)


def line_limited(state: PacingState) -> bool:
    """Agents wait for a line: every line the campaign may use here is busy while an agent is free."""
    return state.mode is not CampaignMode.BROADCAST and state.lines_free <= 0 and state.agents_available > 0


def drop_budget_spent(state: PacingState, tuning: "PredictiveTuning | None" = None) -> bool:
    """At or over the drop cap as measured (the raw rate once the cap allows a few drops, before
    that the rate smoothed by the prior; the raw rate alone in a window shorter than a day): no
    over-dialing at all, in any mode."""
    tuning = tuning or DEFAULT_TUNING
    cap = state.drop_cap_pct / 100.0
    if cap <= 0:
        return True
    allowed = cap * state.live_window  # drops the cap allows so far
    prior = _prior_lives(state, tuning.prior_lives)
    raw_counts = allowed >= tuning.min_allowed_drops or not prior
    if raw_counts and state.dropped_window > 0 and state.dropped_window >= allowed:
        return True
    return prior > 0 and drop_budget_used(state, prior) >= 1.0


def drop_headroom(state: PacingState, tuning: "PredictiveTuning | None" = None) -> float:
    """Drops the cap still allows (the raw count once it allows a few, before that with a prior of
    ``headroom_prior_lives`` live answers at the target rate)."""
    tuning = tuning or DEFAULT_TUNING
    cap = state.drop_cap_pct / 100.0
    allowed = cap * state.live_window
    prior = _prior_lives(state, tuning.headroom_prior_lives)
    head = (cap - target_drop_pct(state) / 100.0) * prior + allowed - state.dropped_window
    if allowed >= tuning.min_allowed_drops:
        head = min(head, allowed - state.dropped_window)
    return head


def has_history(stats: PacingStats | None) -> bool:
    return (
        stats is not None
        and stats.resolved >= MIN_RESOLVED_CALLS
        and stats.humans >= MIN_HUMANS
        and len(stats.talk_times) >= MIN_TALK_SAMPLES
    )


@dataclass(frozen=True)
class PredictiveTuning:
    """Knobs of the predictive mode (defaults tuned with scripts/bench_pacing.py)."""

    # horizon: persons answering within this quantile of the ring time (1.0: every new call's person)
    ring_quantile: float = 1.0
    share_of_target: float = 0.7  # theta (allowed drop share per new person) on course, x target
    margin_sd: float = 1.0  # keep the drops this many standard deviations under the cap's count
    margin_var: float = 20.0  # ...a standard deviation of at least sqrt(this) drops
    gain: float = 1.0  # theta x (1 + gain x standard deviations under the course)
    min_factor: float = 0.3  # off course, theta never falls below this share (the cap is the hard stop)
    max_factor: float = 2.5  # ...nor rises above this multiple
    headroom_drops: float = 5.0  # theta shrinks linearly once the cap allows fewer drops than this
    headroom_prior_lives: float = 400.0  # weight of the prior (at the target) in that headroom
    max_drop_share: float = 0.35  # never accept more than this expected drop share per new person
    min_allowed_drops: float = 10.0  # the raw rate decides alone once the cap allows this many drops
    prior_lives: float = 200.0  # weight of the prior (at the target) in the hard cap check
    ramp_lives: float = 200.0  # theta grows with live answers up to this many (young campaign)
    ramp_floor: float = 0.1  # ...starting from this share of it
    fixed_theta: float | None = None  # benchmark only: constant theta, no drop-budget feedback


DEFAULT_TUNING = PredictiveTuning()


def allowed_drop_share(state: PacingState, tuning: PredictiveTuning = DEFAULT_TUNING) -> float:
    """theta: the expected drop share predictive accepts for one more person, from the drop budget.

    The course: the drops the campaign should have by now, ``min(target x lives, cap x lives -
    margin)``, the margin being ``margin_sd`` standard deviations of the drop count (a young
    campaign's few drops swing its rate: it keeps clear of the cap; a large one steers to its
    target). theta is the target's share, scaled smoothly by how far the drops are under or over
    that course, and shrunk as the drops the cap still allows run out; at the cap the caller
    stops over-dialing altogether (``drop_budget_spent``).
    """
    if tuning.fixed_theta is not None:
        return tuning.fixed_theta
    cap = state.drop_cap_pct / 100.0
    target = target_drop_pct(state) / 100.0
    lives = state.live_window
    sd = math.sqrt(cap * lives + tuning.margin_var)
    course = min(target * lives, cap * lives - tuning.margin_sd * sd)
    factor = 1.0 + tuning.gain * (course - state.dropped_window) / sd
    theta = target * tuning.share_of_target * min(tuning.max_factor, max(tuning.min_factor, factor))
    if tuning.ramp_lives > 0:  # a young campaign's few drops weigh a lot: ramp up gently
        theta *= min(1.0, max(tuning.ramp_floor, lives / tuning.ramp_lives))
    if tuning.headroom_drops > 0:
        theta *= min(1.0, max(0.0, drop_headroom(state, tuning) / tuning.headroom_drops))
    return min(tuning.max_drop_share, theta)


def predictive(state: PacingState, tuning: PredictiveTuning = DEFAULT_TUNING) -> int:
    """Over-dial so that an agent is free when a person answers, within the drop budget.

    Queueing view: at the horizon ``T`` (AMD delay + longest ring + drop timeout from now) the agents
    free are a sum of Bernoullis (available ones, plus each busy agent whose talk + ACW, given its
    age, ends by then); the persons wanting an agent by then are another (queued callers, calls in
    AMD, each ringing call given its age, and the new calls). With a normal approximation the
    expected overflow (persons with no agent) has a closed form. We add calls while the extra
    expected overflow per extra expected person stays under ``allowed_drop_share``; at the cap,
    plain 1:1.
    """
    floor_1to1 = progressive(state, min(state.ratio, 1.0))
    if tuning.fixed_theta is None and drop_budget_spent(state, tuning):
        return floor_1to1  # at or over the cap as measured: no over-dialing at all
    stats = state.stats
    if not has_history(stats):
        return progressive(state, state.ratio)
    assert stats is not None
    limit = state.limit
    if limit <= 0:
        return 0
    theta = allowed_drop_share(state, tuning)
    m0, v0, p_new = _balance(state, stats, _quantile(stats.human_ages, tuning.ring_quantile))
    if p_new <= 0:
        return floor_1to1
    base = _overflow(m0, v0)
    var_new = p_new * (1.0 - p_new)
    n = 0
    while n < limit:
        k = n + 1
        if _overflow(m0 + k * p_new, v0 + k * var_new) - base > theta * k * p_new:
            break
        n = k
    return max(n, floor_1to1)


def _balance(state: PacingState, stats: PacingStats, ring_h: float) -> tuple[float, float, float]:
    """Persons minus free agents at one horizon: (mean, variance, persons per new call).

    The horizon is the moment a person from a call answered ``ring_h`` seconds after dialing asks
    for an agent, plus the drop timeout: agents free by then can take everyone who asked by then.
    """
    share = stats.agent_share
    horizon = stats.amd_delay + ring_h + state.drop_timeout
    # agents free by the horizon
    free_mean = float(state.agents_available)
    free_var = 0.0
    acw_mean = stats.acw_mean
    talk_mean = stats.talk_mean
    in_call = state.agents_in_call
    ages = state.talk_ages
    if ages:
        talk = stats.talk_times
        n_talk = len(talk)
        reach = horizon - acw_mean
        for a in ages[:in_call] if len(ages) > in_call else ages:
            below = bisect_right(talk, a)
            if below < n_talk:
                p = (bisect_right(talk, a + reach) - below) / (n_talk - below) if reach > 0 else 0.0
            else:
                p = _conditional_by(talk, a, a + reach, talk_mean)
            free_mean += p
            free_var += p * (1.0 - p)
        missing = in_call - min(len(ages), in_call)
    else:
        missing = in_call
    if missing > 0:  # no ages: a busy agent ends within the horizon with probability ~ horizon/handle time
        p = min(1.0, max(0.0, (horizon - acw_mean / 2) / max(talk_mean + acw_mean, 1e-9)))
        free_mean += missing * p
        free_var += missing * p * (1.0 - p)
    in_acw = state.agents_in_acw
    aages = state.acw_ages
    if aages:
        acw = stats.acw_times
        for b in aages[:in_acw] if len(aages) > in_acw else aages:
            p = _conditional_by(acw, b, b + horizon, acw_mean)
            free_mean += p
            free_var += p * (1.0 - p)
        missing = in_acw - min(len(aages), in_acw)
    else:
        missing = in_acw
    if missing > 0:
        p = min(1.0, horizon / max(acw_mean, 1e-9))
        free_mean += missing * p
        free_var += missing * p * (1.0 - p)
    # persons asking for an agent by the horizon
    need_mean = float(state.queue_waiting)
    need_var = 0.0
    answered = stats.humans + stats.machines
    if state.detecting and answered:
        p = share * stats.humans / answered
        need_mean += state.detecting * p
        need_var += state.detecting * p * (1.0 - p)
    res = stats.resolve_ages
    hum = stats.human_ages
    n_res = len(res)
    for g in state.ringing_ages:
        alive = n_res - bisect_right(res, g)
        if alive <= 0:
            continue
        p = share * (bisect_right(hum, g + ring_h) - bisect_right(hum, g)) / alive
        need_mean += p
        need_var += p * (1.0 - p)
    p_new = share * bisect_right(hum, ring_h) / n_res if n_res else 0.0
    return need_mean - free_mean, need_var + free_var, p_new


def _overflow(mean: float, var: float) -> float:
    """E[max(X, 0)] for X ~ Normal(mean, var)."""
    if var <= 1e-12:
        return max(mean, 0.0)
    s = math.sqrt(var)
    z = mean / s
    return mean * 0.5 * math.erfc(-z / math.sqrt(2.0)) + s * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _conditional_by(sorted_sample: tuple[float, ...], age: float, by: float, mean: float) -> float:
    """P(duration <= by | duration > age) from a sorted sample; exponential tail beyond it."""
    if by <= age:
        return 0.0
    n = len(sorted_sample)
    above = n - bisect_right(sorted_sample, age)
    if above <= 0 or n == 0:
        return 1.0 - math.exp(-(by - age) / max(mean, 1e-9))
    return (bisect_right(sorted_sample, by) - (n - above)) / above


def _quantile(sorted_sample: tuple[float, ...], q: float) -> float:
    if not sorted_sample:
        return 0.0
    i = min(len(sorted_sample) - 1, max(0, int(q * len(sorted_sample))))
    return sorted_sample[i]


__all__ = [
    "DEFAULT_DROP_CAP_PCT",
    "DEFAULT_DROP_WINDOW_HOURS",
    "PacingHistory",
    "PacingState",
    "PacingStats",
    "PredictiveTuning",
    "allowed_drop_share",
    "calls_to_start",
    "drop_headroom",
    "target_drop_pct",
    "drop_budget_spent",
    "line_limited",
    "lines_needed",
    "drop_budget_used",
    "predictive",
    "progressive",
]
