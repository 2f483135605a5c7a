"""Campaign states per dialer and overall (seed 003), as pure functions."""

import datetime as dt

import pytest

from agi.outcomes import CampaignState as S
from agi.rules.lifecycle import (
    DialerView,
    dialer_state,
    heartbeat_stale,
    may_dial,
    overall_state,
    seen_state,
    state_reason,
)

NOW = dt.datetime(2026, 11, 22, 15, 0, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)


def view(**kw) -> DialerView:
    kw.setdefault("campaign_state", S.RUNNING)
    return DialerView(now=NOW, **kw)


@pytest.mark.parametrize("kw,expected", [
    ({}, S.RUNNING),
    ({"campaign_state": S.SCHEDULED}, S.RUNNING),
    ({"campaign_state": S.STOPPED}, S.STOPPED),
    ({"campaign_state": S.STOPPED_BY_ADMIN}, S.STOPPED_BY_ADMIN),
    ({"campaign_state": S.UNSCHEDULED}, S.UNSCHEDULED),
    ({"campaign_state": S.COMPLETED}, S.COMPLETED),
    ({"start_at": NOW + HOUR}, S.SCHEDULED),
    ({"start_at": NOW - HOUR}, S.RUNNING),
    ({"in_schedule": False}, S.SCHEDULED),
    ({"stop_at": NOW - HOUR}, S.COMPLETED),
    ({"stop_at": NOW - HOUR, "calls_in_progress": 2}, S.STOPPED),
    ({"work_left": False}, S.COMPLETED),
    ({"work_left": False, "calls_in_progress": 1}, S.RUNNING),
    ({"lines": 0}, S.UNSCHEDULED),
    ({"agent_campaign": True, "no_agents_for_s": 11}, S.PAUSED_NO_AGENTS),
    ({"agent_campaign": True, "no_agents_for_s": 5}, S.RUNNING),
    ({"agent_campaign": False, "no_agents_for_s": 99}, S.RUNNING),
    ({"agent_campaign": True, "no_agents_for_s": 99, "in_schedule": False}, S.SCHEDULED),
    # no FastAGI server alive for its answered calls: no dialing, and the state says why
    ({"agi_server_alive": False}, S.PAUSED_NO_AGI_SERVER),
    ({"agi_server_alive": False, "agent_campaign": True, "no_agents_for_s": 99}, S.PAUSED_NO_AGI_SERVER),
    ({"agi_server_alive": False, "in_schedule": False}, S.SCHEDULED),
    ({"agi_server_alive": False, "campaign_state": S.STOPPED}, S.STOPPED),
    ({"agi_server_alive": False, "work_left": False}, S.COMPLETED),
])
def test_dialer_state(kw, expected):
    assert dialer_state(view(**kw)) is expected


def test_paused_campaign_resumes_by_itself_when_an_agent_frees_up():
    paused = view(agent_campaign=True, no_agents_for_s=30)
    assert dialer_state(paused) is S.PAUSED_NO_AGENTS
    assert dialer_state(view(agent_campaign=True, no_agents_for_s=0)) is S.RUNNING


def test_only_running_dials():
    assert [s for s in S if may_dial(s)] == [S.RUNNING]


@pytest.mark.parametrize("states,expected", [
    ([S.RUNNING, S.PAUSED_NO_AGENTS], S.RUNNING),  # seed 003: one dialer paused, the other dials
    ([S.PAUSED_NO_AGENTS, S.COMPLETED], S.PAUSED_NO_AGENTS),
    ([S.COMPLETED, S.COMPLETED], S.COMPLETED),
    ([S.COMPLETED, S.STOPPED_BY_DIALER], S.STOPPED_BY_DIALER),
    ([S.SCHEDULED, S.COMPLETED], S.SCHEDULED),
    ([S.STOPPED, S.STOPPED], S.STOPPED),
    ([S.PAUSED_NO_AGI_SERVER, S.RUNNING], S.RUNNING),
    ([S.PAUSED_NO_AGI_SERVER, S.COMPLETED], S.PAUSED_NO_AGI_SERVER),
])
def test_overall_state_of_a_campaign_on_several_dialers(states, expected):
    assert overall_state(states, S.RUNNING) is expected


def test_campaign_without_dialers_is_unscheduled_until_assigned():
    assert overall_state([], S.RUNNING) is S.UNSCHEDULED
    assert overall_state([], S.STOPPED) is S.STOPPED


def test_heartbeat_goes_stale_after_30_s():
    assert heartbeat_stale(None, NOW)
    assert not heartbeat_stale(NOW - dt.timedelta(seconds=29), NOW)
    assert heartbeat_stale(NOW - dt.timedelta(seconds=31), NOW)


@pytest.mark.parametrize("stored,beat_age_s,expected", [
    (S.RUNNING, 5, S.RUNNING),
    (S.RUNNING, 31, S.STOPPED_BY_DIALER),  # its originator died: nobody is left to say so
    (S.PAUSED_NO_AGENTS, 31, S.STOPPED_BY_DIALER),
    (S.PAUSED_NO_AGI_SERVER, 31, S.STOPPED_BY_DIALER),
    (S.RUNNING, None, S.STOPPED_BY_DIALER),  # never beat at all
    (S.COMPLETED, 3600, S.COMPLETED),  # not working it anyway: as stored
    (S.STOPPED, 3600, S.STOPPED),
    (S.SCHEDULED, 3600, S.SCHEDULED),
])
def test_a_reader_sees_a_dialer_with_a_stale_heartbeat_as_stopped_by_dialer(stored, beat_age_s, expected):
    beat = None if beat_age_s is None else NOW - dt.timedelta(seconds=beat_age_s)
    assert seen_state(stored, beat, NOW) is expected


@pytest.mark.parametrize("kw, reason", [
    ({}, "dialing"),
    ({"agent_campaign": True, "no_agents_for_s": 14.2}, "no agent free for 14 s"),
    ({"agi_server_alive": False}, "no FastAGI server alive"),
    ({"start_at": NOW + HOUR}, "starts 2026-11-22 16:00 UTC"),
    ({"in_schedule": False}, "outside its schedule now"),
    ({"work_left": False}, "no contact left to try"),
    ({"stop_at": NOW - HOUR}, "stop date passed"),
    ({"stop_at": NOW - HOUR, "calls_in_progress": 2}, "stop date passed; 2 call(s) finishing"),
    ({"campaign_state": S.STOPPED}, "stopped by the user"),
    ({"campaign_state": S.STOPPED_BY_ADMIN}, "stopped by an admin"),
    ({"lines": 0}, "no lines on this dialer"),
    ({"campaign_state": S.UNSCHEDULED}, "not scheduled"),
])
def test_the_live_view_says_why_a_campaign_is_in_its_state_on_a_dialer(kw, reason):
    v = view(**kw)
    assert state_reason(v, dialer_state(v)) == reason
