"""The pacing simulator drives the real pacing rule: short seeded shifts, no timing assertions."""

from __future__ import annotations

import pytest

from agi.outcomes import CampaignMode
from agi.pacing_sim import (
    PROFILES,
    IssabelPredictor,
    OurMode,
    SimView,
    VicidialAdaptive,
    compare_modes,
    make_pacers,
    simulate,
)
from agi.rules.pacing import PacingHistory, PacingState

# a small campaign (P2's call mix, 8 agents) for two hours
SMALL = PROFILES["P2"].scaled(name="small", agents=8, shift=2 * 3600.0, lines=40, cps=5.0)


def test_predictive_stays_under_the_drop_cap_and_beats_progressive():
    ours = simulate(SMALL, OurMode(CampaignMode.PREDICTIVE), seed=3)
    base = simulate(SMALL, OurMode(CampaignMode.PROGRESSIVE), seed=3)
    assert ours.persons > 100
    assert ours.drop_rate <= SMALL.drop_cap_pct / 100
    assert base.drops == 0  # 1:1 never drops: an agent is waiting for every call
    assert ours.occupancy > base.occupancy


@pytest.mark.parametrize("index", range(len(make_pacers())))
def test_no_strategy_exceeds_lines_or_calls_per_second(index):
    pacer = make_pacers()[index]()
    r = simulate(SMALL.scaled(shift=1800.0), pacer, seed=1)
    assert r.dials > 0
    assert r.max_lines_used <= SMALL.lines
    assert r.max_cps_seen <= SMALL.cps


def test_same_seed_same_result():
    a = simulate(SMALL.scaled(shift=1800.0), OurMode(CampaignMode.PREDICTIVE), seed=5)
    b = simulate(SMALL.scaled(shift=1800.0), OurMode(CampaignMode.PREDICTIVE), seed=5)
    assert a == b


def test_vicidial_level_returns_to_one_once_the_days_drop_rate_passes_the_cap():
    pacer = VicidialAdaptive(available_only=False)
    r = simulate(SMALL.scaled(shift=1800.0), pacer, seed=2)
    assert r.drop_rate > SMALL.drop_cap_pct / 100  # all-agents over-dials this mix
    assert pacer.level == 1.0


# --- issue 14: no 1:1 cliff; the baselines as their sources do it ------------------------------------


def test_a_fresh_campaigns_worst_seed_stays_near_the_median():
    # P1 (10 agents, 8% of dials reach a person): where the drop budget runs out soonest
    fresh = PROFILES["P1"].scaled(shift=3 * 3600.0)
    runs = [simulate(fresh, OurMode(CampaignMode.PREDICTIVE), seed) for seed in range(1, 9)]
    occupancy = sorted(r.occupancy for r in runs)
    median = (occupancy[3] + occupancy[4]) / 2
    assert occupancy[0] >= median - 0.05  # before: 12 points under (a seed stuck at 1:1 for an hour)
    assert max(r.drop_rate for r in runs) <= fresh.drop_cap_pct / 100


class _DialOnce:
    """Places ``n`` calls at the first tick, then records the ring times the history measured."""

    name = "once"
    needs_ages = False

    def __init__(self, n: int):
        self.n = n
        self.resolve_ages: tuple = ()

    def __call__(self, state, view):
        if state.now == 0.0:
            return min(self.n, state.limit)
        if state.now >= 60.0 and not self.resolve_ages:
            self.resolve_ages = view.history.stats(state.now).resolve_ages
        return 0


def test_unanswered_calls_ring_until_the_ring_timeout():
    nobody = SMALL.scaled(p_human=0.0, p_machine=0.0, p_busy=0.0, p_fail=0.0, shift=120.0, cps=20.0)
    pacer = _DialOnce(10)
    simulate(nobody, pacer, seed=1)
    assert pacer.resolve_ages == (nobody.ring_timeout,) * 10


def _state(**kw) -> PacingState:
    base = dict(mode=CampaignMode.PREDICTIVE, now=0.0, lines_free=100, cps_budget=100, agents_logged_in=10)
    base.update(kw)
    return PacingState(**base)


def _view() -> SimView:
    return SimView(history=PacingHistory(), profile=SMALL)


@pytest.mark.parametrize(
    ("available_only", "available", "in_call", "ringing", "expected"),
    [
        (False, 0, 10, 0, 0),  # level 1, every agent talking: the calls with agents are the goal already
        (False, 4, 6, 0, 4),  # 10 dialable agents - 6 calls with agents
        (False, 4, 6, 3, 1),  # ...- 3 ringing
        (True, 4, 6, 0, 4),  # available only: the calls with agents are added back to the goal
        (True, 4, 6, 3, 1),
    ],
)
def test_vicidial_counts_the_calls_already_with_agents(available_only, available, in_call, ringing, expected):
    pacer = VicidialAdaptive(available_only=available_only)
    state = _state(agents_available=available, agents_in_call=in_call, ringing_ages=(5.0,) * ringing)
    assert pacer(state, _view()) == expected


def test_vicidial_places_calls_once_per_loop_of_two_and_a_half_seconds():
    pacer = VicidialAdaptive(available_only=True)
    view = _view()
    placed = [pacer(_state(now=float(t), agents_available=2), view) for t in range(6)]
    assert placed == [2, 0, 0, 2, 0, 2]  # loops at 0, 2.5, 5.0: ticks 0, 3, 5


def _answered_history(dials: int, answered: int) -> PacingHistory:
    h = PacingHistory(refresh=0.0)
    for i in range(dials):
        if i < answered:
            h.answered(float(i), 20.0, human=True)
        else:
            h.unanswered(float(i), 25.0)
    return h


@pytest.mark.parametrize(
    ("answered", "free", "ringing", "expected"),
    [
        (5, 1, 0, 5),  # 5% of 100 calls answered: divided by the 0.20 floor, not by 0.05
        (50, 1, 0, 2),  # 50% answered: 1 / 0.5
        (50, 3, 1, 4),  # the call still ringing counts before dividing: (3 - 1) / 0.5
        (50, 1, 2, 0),  # more ringing than agents expected free: none
    ],
)
def test_issabel_floors_the_answer_ratio_and_subtracts_ringing_calls_first(answered, free, ringing, expected):
    view = SimView(history=_answered_history(100, answered), profile=SMALL)
    state = _state(now=200.0, agents_available=free, agents_in_call=10 - free, ringing_ages=(3.0,) * ringing)
    assert IssabelPredictor()(state, view) == expected


def test_issabel_counts_agents_in_wrap_up_as_free():
    view = SimView(history=_answered_history(100, 50), profile=SMALL)
    state = _state(now=200.0, agents_available=1, agents_in_acw=2, agents_in_call=7)
    assert IssabelPredictor()(state, view) == 6  # (1 + 2) / 0.5


def test_a_second_day_is_measured_on_its_own_with_the_drop_window_carrying_over():
    two = SMALL.scaled(shift=1800.0, days=2)
    one = simulate(SMALL.scaled(shift=1800.0), OurMode(CampaignMode.PREDICTIVE), seed=4)
    second = simulate(two, OurMode(CampaignMode.PREDICTIVE), seed=4)
    assert second.persons > 0 and second.dials > 0
    assert second != one  # the same seed, but the figures are day 2's


def test_lines_used_at_the_95th_percentile_are_within_the_most_used():
    r = simulate(SMALL.scaled(shift=1800.0), OurMode(CampaignMode.PREDICTIVE), seed=1)
    assert 0 < r.p95_lines_used <= r.max_lines_used <= SMALL.lines


def test_compare_modes_runs_progressive_at_each_ratio_then_predictive():
    done = []
    rows = compare_modes(SMALL.scaled(shift=1800.0, ratio=1.5), [1.0, 2.0], seeds=2,
                         progress=lambda n, total: done.append((n, total)))
    assert [(r.mode, r.ratio) for r in rows] == [("progressive", 1.0), ("progressive", 2.0), ("predictive", 1.5)]
    assert done[-1] == (6, 6)
    assert rows[1].occupancy > rows[0].occupancy  # more calls per free agent, busier agents
