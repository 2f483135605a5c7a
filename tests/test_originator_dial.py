"""What the dial loop tells the pacing rule (agi.originator.dial.pacing_state): the campaign's
calls by stage, its agents as last polled, its drop counts; without I/O."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agi.ami.queues import QueueSnapshot
from agi.originator.calls import Call, CallTracker
from agi.originator.campaigns import CampaignRun
from agi.originator.dial import pacing_state
from agi.originator.limits import RateLimiter
from agi.outcomes import CampaignMode, CampaignState


def campaign(queue_name: str | None, mode: str = "predictive") -> CampaignRun:
    row = SimpleNamespace(id=7, mode=mode, queue_name=queue_name, pacing_ratio=1.5, drop_timeout=2.0,
                          drop_cap_pct=3.0, drop_target_pct=2.4, drop_window_hours=720.0, lines=10, lines_here=None)
    return CampaignRun(row=row, state=CampaignState.RUNNING, bucket=RateLimiter(5))


def calls_at(now: float) -> CallTracker:
    tracker = CallTracker()
    tracker.add(Call("ring-1", 7, 1, "+12025550001", sent_at=now - 4))
    tracker.add(Call("ring-2", 7, 2, "+12025550002", sent_at=now - 9))
    tracker.add(Call("amd", 7, 3, "+12025550003", sent_at=now - 20, answered_at=now - 2))
    tracker.add(Call("machine", 7, 4, "+12025550004", sent_at=now - 20, answered_at=now - 5, verdict=False))
    tracker.add(Call("queued", 7, 5, "+12025550005", sent_at=now - 30, answered_at=now - 20, verdict=True,
                     queued_at=now - 3))
    tracker.add(Call("talking", 7, 6, "+12025550006", sent_at=now - 90, answered_at=now - 80, verdict=True,
                     queued_at=now - 70, routed=True))
    tracker.add(Call("other-campaign", 8, 7, "+12025550007", sent_at=now - 1))
    ended = tracker.add(Call("ended", 7, 8, "+12025550008", sent_at=now - 5))
    ended.ended.set()
    return tracker


@pytest.mark.parametrize("queue_name, mode", [("sales", CampaignMode.PREDICTIVE), (None, CampaignMode.BROADCAST)])
def test_pacing_sees_the_campaigns_calls_by_stage_and_its_agents(queue_name, mode):
    now = 1000.0
    run = campaign(queue_name)
    run.agents.observe(QueueSnapshot("sales", logged_in=4, available=1, in_call=2), now - 1, counted=True)
    run.agents.completed(now - 6, talk_s=50.0)
    run.dropped_window, run.live_window = 1, 40
    stages = calls_at(now).stages(run.id, now)
    assert stages.lines == 6  # hung up or another campaign's: no line of ours
    state = pacing_state(run, stages, now=now, lines_free=3, cps_budget=2)
    assert state.mode is mode  # a campaign without an agent queue has nothing to pace against
    assert sorted(state.ringing_ages) == [4.0, 9.0]
    assert (state.detecting, state.queue_waiting) == (1, 1)
    assert (state.agents_logged_in, state.agents_available, state.agents_in_call, state.agents_in_acw) == (4, 1, 2, 1)
    assert state.acw_ages == (6.0,)
    assert (state.lines_free, state.cps_budget, state.ratio) == (3, 2, 1.5)
    assert (state.dropped_window, state.live_window, state.drop_cap_pct) == (1, 40, 3.0)
    assert state.drop_target_pct == 2.4  # the campaign's own target, steered toward under the cap
