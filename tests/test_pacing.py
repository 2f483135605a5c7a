"""The pure pacing rule: broadcast, progressive and predictive modes, and the history accumulator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi.outcomes import CampaignMode
from agi.rules.pacing import (
    PacingHistory,
    PacingState,
    PacingStats,
    allowed_drop_share,
    calls_to_start,
    dial_level,
    drop_budget_spent,
    drop_budget_used,
    line_limited,
    lines_needed,
    progressive,
    target_drop_pct,
)

B, P, D = CampaignMode.BROADCAST, CampaignMode.PROGRESSIVE, CampaignMode.PREDICTIVE


@pytest.mark.parametrize(
    ("lines_free", "cps_budget", "in_flight", "expected"),
    [
        (10, 5, 0, 5),  # CPS is the limit
        (3, 5, 0, 3),  # free lines are the limit
        (0, 5, 0, 0),  # all lines busy
        (5, 0, 0, 0),  # CPS budget spent this second
        (-2, 5, 0, 0),  # lines over-used (another campaign took them): never negative
        (4, 4, 7, 4),  # calls in flight do not matter: lines_free already counts them
    ],
)
def test_broadcast_fills_free_lines_within_cps(lines_free, cps_budget, in_flight, expected):
    state = PacingState(B, 0.0, lines_free=lines_free, cps_budget=cps_budget, ringing_ages=(1.0,) * in_flight)
    assert calls_to_start(state) == expected


@pytest.mark.parametrize(
    ("available", "ratio", "ringing", "detecting", "queued", "lines", "cps", "expected"),
    [
        (4, 1.0, 0, 0, 0, 10, 10, 4),  # one call per available agent
        (4, 1.0, 2, 0, 0, 10, 10, 2),  # ringing calls count as in flight
        (4, 1.0, 0, 1, 1, 10, 10, 2),  # so do calls in AMD/IVR and callers in the queue
        (4, 1.5, 0, 0, 0, 10, 10, 6),  # ratio
        (3, 1.5, 0, 0, 0, 10, 10, 4),  # 4.5 rounds down
        (4, 1.0, 6, 0, 0, 10, 10, 0),  # more in flight than wanted: none, never negative
        (4, 1.0, 0, 0, 0, 2, 10, 2),  # free lines cap it
        (4, 1.0, 0, 0, 0, 10, 1, 1),  # CPS budget caps it
        (0, 2.0, 0, 0, 0, 10, 10, 0),  # no agent available
        (5, 0.0, 0, 0, 0, 10, 10, 0),  # ratio 0 pauses dialing
        (10, 3.0, 5, 0, 0, 100, 100, 25),
    ],
)
def test_progressive_keeps_available_agents_times_ratio_in_flight(
    available, ratio, ringing, detecting, queued, lines, cps, expected
):
    state = PacingState(
        P,
        0.0,
        lines_free=lines,
        cps_budget=cps,
        ringing_ages=(3.0,) * ringing,
        detecting=detecting,
        queue_waiting=queued,
        agents_logged_in=10,
        agents_available=available,
        ratio=ratio,
    )
    assert calls_to_start(state) == expected


@pytest.mark.parametrize(
    ("ratio", "dropped", "live", "cap", "expected"),
    [
        (2.0, 0, 0, 3.0, 8),  # a fresh campaign: over-dials at its ratio
        (2.0, 1, 300, 3.0, 8),  # far under the cap: ratio 2
        (2.0, 10, 300, 3.0, 4),  # 3.3 % >= the 3 % cap: 1:1 until the rate falls
        (2.0, 4, 50, 3.0, 4),  # 8 % of a few answers: over the cap (smoothed), 1:1
        (2.0, 40, 625, 3.0, 4),  # the field report: 6.4 % dropped and still dialing 2:1
        (0.5, 40, 625, 3.0, 2),  # a ratio under 1 stays as it is
        (2.0, 0, 100, 0.0, 4),  # a zero cap: never over-dials
    ],
)
def test_progressive_over_dialing_stops_at_the_drop_cap(ratio, dropped, live, cap, expected):
    state = PacingState(P, 0.0, lines_free=20, cps_budget=20, agents_logged_in=4, agents_available=4,
                        ratio=ratio, dropped_window=dropped, live_window=live, drop_cap_pct=cap)
    assert calls_to_start(state) == expected


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="CampaignMode"):
        calls_to_start(PacingState("predictive", 0.0, lines_free=1, cps_budget=1))  # type: ignore[arg-type]


# --- predictive -----------------------------------------------------------------------------------


def campaign_history(
    calls: int = 3000, p_human: float = 0.25, p_machine: float = 0.08, talk_mean: float = 120.0, seed: int = 7
) -> PacingStats:
    """A history like profile P2: 15-25 s rings, lognormal talk, 10-20 s ACW."""
    rng = random.Random(seed)
    h = PacingHistory(window=1e9, max_calls=calls)
    now = 0.0
    for _ in range(calls):
        now += 0.5
        h.placed(now)
        u = rng.random()
        ring = rng.uniform(15, 25)
        if u < p_human:
            h.answered(now, ring, human=True)
            h.to_agent(now, 2.0)
            h.connected(now)
        elif u < p_human + p_machine:
            h.answered(now, ring, human=False)
        else:
            h.unanswered(now, ring if u > 0.8 else 3.0)
    for _ in range(300):
        h.agent_freed(now, rng.lognormvariate(4.6, 0.6), rng.uniform(10, 20))
    return h.stats(now)


STATS = campaign_history()


def predictive_state(**kw) -> PacingState:
    base = dict(
        mode=D,
        now=1000.0,
        lines_free=200,
        cps_budget=50,
        agents_logged_in=25,
        agents_available=0,
        agents_in_call=20,
        agents_in_acw=5,
        talk_ages=tuple(float(10 * i) for i in range(20)),
        acw_ages=tuple(float(2 * i) for i in range(5)),
        stats=STATS,
        dropped_window=10,
        live_window=1000,
    )
    base.update(kw)
    return PacingState(**base)


def test_predictive_without_history_paces_progressive():
    for stats in (None, campaign_history(calls=40)):
        state = predictive_state(stats=stats, agents_available=3, agents_in_call=22, ratio=1.0)
        assert calls_to_start(state) == 3


def test_predictive_over_dials_when_agents_are_about_to_free():
    # every agent in after-call work about to end, nothing in flight: more calls than free agents
    state = predictive_state(
        agents_available=2, agents_in_call=0, agents_in_acw=23, talk_ages=(), acw_ages=(18.0,) * 23
    )
    assert calls_to_start(state) > progressive(state, 1.0) == 2


def test_predictive_falls_back_to_one_to_one_at_the_cap():
    for dropped in (30, 31, 60):  # 3% of 1000 live answers and beyond
        state = predictive_state(
            agents_available=4, agents_in_call=16, talk_ages=(300.0,) * 16, dropped_window=dropped
        )
        assert calls_to_start(state) <= 4


def test_predictive_at_the_cap_respects_a_ratio_below_one():
    state = predictive_state(agents_available=4, agents_in_call=16, dropped_window=40, ratio=0.5)
    assert calls_to_start(state) == 2


def test_predictive_tightens_as_the_drop_rate_nears_the_cap():
    counts = [
        calls_to_start(predictive_state(agents_available=3, agents_in_call=17, dropped_window=d))
        for d in (0, 10, 20, 25, 29, 30)
    ]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1]


def test_predictive_calls_do_not_decrease_as_agents_become_available():
    counts = []
    for free in range(0, 21):
        counts.append(
            calls_to_start(
                predictive_state(agents_available=free, agents_in_call=20 - free, talk_ages=(60.0,) * (20 - free))
            )
        )
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]


def test_predictive_counts_calls_already_in_flight():
    idle = calls_to_start(predictive_state(agents_available=5, agents_in_call=15, talk_ages=(30.0,) * 15))
    busy = calls_to_start(
        predictive_state(agents_available=5, agents_in_call=15, talk_ages=(30.0,) * 15, ringing_ages=(5.0,) * 12)
    )
    assert busy < idle


def test_predictive_with_zero_cap_never_over_dials():
    state = predictive_state(agents_available=5, agents_in_call=15, drop_cap_pct=0.0, dropped_window=0)
    assert calls_to_start(state) == 5


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from([B, P, D]),
    lines=st.integers(-5, 60),
    cps=st.integers(-1, 30),
    available=st.integers(0, 30),
    in_call=st.integers(0, 30),
    in_acw=st.integers(0, 10),
    ringing=st.lists(st.floats(0, 40), max_size=40),
    detecting=st.integers(0, 5),
    queued=st.integers(0, 5),
    ratio=st.floats(0, 4),
    dropped=st.integers(0, 100),
    live=st.integers(0, 2000),
    with_ages=st.booleans(),
    with_history=st.booleans(),
)
def test_never_beyond_lines_or_cps_and_never_negative(
    mode, lines, cps, available, in_call, in_acw, ringing, detecting, queued, ratio, dropped, live, with_ages,
    with_history,
):  # fmt: skip
    state = PacingState(
        mode,
        500.0,
        lines_free=lines,
        cps_budget=cps,
        ringing_ages=tuple(ringing),
        detecting=detecting,
        queue_waiting=queued,
        agents_logged_in=available + in_call + in_acw,
        agents_available=available,
        agents_in_call=in_call,
        agents_in_acw=in_acw,
        talk_ages=tuple(float(7 * i) for i in range(in_call)) if with_ages else (),
        acw_ages=tuple(float(i) for i in range(in_acw)) if with_ages else (),
        ratio=ratio,
        stats=STATS if with_history else None,
        dropped_window=dropped,
        live_window=live,
    )
    n = calls_to_start(state)
    assert 0 <= n <= max(0, min(lines, cps))
    if mode is D and live and dropped >= 0.03 * live and 0.03 * live >= 10:
        assert n <= max(0, progressive(state, min(ratio, 1.0)))


def test_drop_budget_use_starts_from_the_prior_and_follows_the_data():
    fresh = PacingState(D, 0.0, lines_free=1, cps_budget=1)
    assert drop_budget_used(fresh, prior_lives=100, prior_used=0.8) == pytest.approx(0.8)
    at_cap = PacingState(D, 0.0, lines_free=1, cps_budget=1, dropped_window=300, live_window=10_000)
    assert drop_budget_used(at_cap, prior_lives=100, prior_used=0.8) == pytest.approx(1.0, abs=0.01)


# --- history --------------------------------------------------------------------------------------


def test_history_measures_rates_delays_and_durations():
    h = PacingHistory(window=600.0, refresh=0.0)
    for i in range(10):
        h.placed(i)
        if i < 2:
            h.answered(i, 20.0, human=True)
        elif i < 3:
            h.answered(i, 16.0, human=False)
        else:
            h.unanswered(i, 25.0)
    h.to_agent(5.0, 2.0)
    h.connected(5.5)
    h.dropped(6.0)
    h.agent_freed(7.0, talk=100.0, acw=10.0)
    h.agent_freed(8.0, talk=50.0, acw=20.0)
    s = h.stats(10.0)
    assert (s.resolved, s.humans, s.machines) == (10, 2, 1)
    assert s.human_rate == pytest.approx(0.2)
    assert s.answer_rate == pytest.approx(0.3)
    assert s.agent_share == pytest.approx(0.5)  # one of two persons asked for an agent
    assert s.amd_delay == pytest.approx(2.0)
    assert (s.connects, s.drops) == (1, 1)
    assert s.human_ages == (20.0, 20.0)
    assert s.talk_times == (50.0, 100.0) and s.acw_mean == pytest.approx(15.0)
    assert (h.live_total, h.dropped_total, h.placed_total) == (2, 1, 10)


def test_history_forgets_calls_older_than_its_window_but_keeps_totals():
    h = PacingHistory(window=100.0, refresh=0.0)
    h.answered(0.0, 20.0, human=True)
    h.unanswered(150.0, 25.0)
    s = h.stats(160.0)
    assert (s.resolved, s.humans) == (1, 0)
    assert h.live_total == 1


def test_history_stats_are_recomputed_at_most_every_refresh_seconds():
    h = PacingHistory(refresh=10.0)
    h.answered(0.0, 20.0, human=True)
    first = h.stats(1.0)
    h.answered(2.0, 20.0, human=True)
    assert h.stats(5.0) is first
    assert h.stats(11.0).humans == 2


# --- issue 14: a target under the cap, a smooth response, short windows --------------------------


@pytest.mark.parametrize(
    ("cap", "target", "expected"),
    [
        (3.0, None, 2.7),  # default: 90% of the cap
        (3.0, 2.0, 2.0),  # the campaign's target
        (3.0, 5.0, 3.0),  # never above the cap
        (0.0, None, 0.0),
    ],
)
def test_the_drop_target_defaults_under_the_cap_and_never_passes_it(cap, target, expected):
    state = PacingState(D, 0.0, lines_free=1, cps_budget=1, drop_cap_pct=cap, drop_target_pct=target)
    assert target_drop_pct(state) == pytest.approx(expected)


def test_predictive_steers_toward_the_campaigns_target():
    kw = dict(agents_available=3, agents_in_call=17, dropped_window=20, live_window=1000)
    low = calls_to_start(predictive_state(drop_target_pct=1.0, **kw))
    default = calls_to_start(predictive_state(**kw))
    assert low < default


def test_the_allowed_drop_share_falls_smoothly_and_reaches_zero_only_at_the_cap():
    shares = [allowed_drop_share(predictive_state(dropped_window=d, live_window=1000)) for d in range(0, 31)]
    assert shares == sorted(shares, reverse=True)
    assert all(s > 0 for s in shares[:30]) and shares[30] == 0.0  # 30 drops = 3% of 1000
    steps = [a - b for a, b in zip(shares, shares[1:])]
    assert max(steps) <= 0.25 * shares[0]  # no cliff: one more drop never takes a quarter away
    # between the course and the cap the response has a floor: the hard stop is the cap itself
    assert shares[26] >= 0.3 * 0.2 * shares[0]


def test_a_young_campaign_keeps_further_under_the_cap_than_a_large_one_at_the_same_rate():
    young = allowed_drop_share(predictive_state(dropped_window=6, live_window=300))
    large = allowed_drop_share(predictive_state(dropped_window=400, live_window=20_000))
    assert young < large


@pytest.mark.parametrize(
    ("window", "dropped", "live", "spent"),
    [
        (720, 1, 20, False),  # a young campaign: smoothed by the prior
        (24, 1, 20, False),
        (1, 1, 20, True),  # an hour's window: the raw rate (5%) from the first live answer
        (1, 0, 0, False),
        (1, 1, 40, False),  # 2.5%
    ],
)
def test_a_window_shorter_than_a_day_is_judged_on_the_raw_rate(window, dropped, live, spent):
    state = PacingState(P, 0.0, lines_free=20, cps_budget=20, dropped_window=dropped, live_window=live,
                        drop_window_hours=window)
    assert drop_budget_spent(state) is spent


def test_predictive_starts_over_dialing_after_a_short_warm_up():
    # 60 calls, 12 persons, 12 finished agent calls: enough for predictive to start
    state = predictive_state(stats=campaign_history(calls=60, p_human=0.2), agents_available=4,
                             agents_in_call=16, talk_ages=(60.0,) * 16, dropped_window=0, live_window=12)
    assert calls_to_start(state) > progressive(state, 1.0)


def test_lines_needed_from_history_counts_ringing_detection_and_talk():
    # P1-like: 8 % persons, each talks 90 s + 15 s wrap-up; dials ring 20 s on average
    stats = PacingStats(resolved=1000, humans=80, resolve_ages=(20.0,) * 1000, human_ages=(15.0,) * 80,
                        talk_times=(90.0,) * 50, acw_times=(15.0,) * 50, amd_delay=2.0)
    # 10 agents: 10/105 persons/s -> /0.08 = 1.19 dials/s x 20 s = 23.8 ringing, + 0.2 in detection,
    # + 10 x 90/105 = 8.6 talking
    assert lines_needed(stats, 10) == 33
    assert lines_needed(stats, 20) == 66  # twice the agents, twice the lines (65.2 rounded up)
    assert lines_needed(PacingStats(), 10) is None  # no history yet
    assert lines_needed(stats, 0) is None


@pytest.mark.parametrize("mode,lines_free,available,expected", [
    (P, 0, 3, True),  # agents wait and no line is free
    (D, -1, 1, True),
    (P, 1, 3, False),  # a line to spare: pacing, not lines, decides
    (P, 0, 0, False),  # every agent busy: lines are not what holds it back
    (B, 0, 0, False),  # broadcast always fills its lines: nobody waits
])
def test_line_limited_means_agents_wait_for_a_line(mode, lines_free, available, expected):
    state = PacingState(mode, 0.0, lines_free=lines_free, cps_budget=5, agents_logged_in=4,
                        agents_available=available)
    assert line_limited(state) is expected


@pytest.mark.parametrize("mode, ringing, detecting, waiting, available, to_start, expected", [
    (P, 3, 1, 0, 2, 2, 3.0),  # 4 in flight + 2 starting, 2 agents ready: VICIdial's dial level 3
    (D, 0, 0, 0, 4, 0, 0.0),
    (D, 5, 0, 1, 0, 0, None),  # no agent ready: no level to speak of
    (B, 5, 0, 0, 3, 2, None),  # broadcast paces lines, not agents
])
def test_dial_level_is_calls_in_flight_and_starting_per_ready_agent(mode, ringing, detecting, waiting, available,
                                                                     to_start, expected):
    state = PacingState(mode=mode, now=0.0, lines_free=10, cps_budget=10, ringing_ages=(1.0,) * ringing,
                        detecting=detecting, queue_waiting=waiting, agents_available=available)
    assert dial_level(state, to_start) == expected
