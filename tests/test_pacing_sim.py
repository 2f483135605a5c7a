"""The pacing simulator drives the real pacing rule: short seeded shifts, no timing assertions."""

from __future__ import annotations

import pytest

from agi.outcomes import CampaignMode
from agi.pacing_sim import PROFILES, OurMode, VicidialAdaptive, make_pacers, simulate

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
