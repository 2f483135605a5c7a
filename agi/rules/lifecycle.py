"""Campaign states (seed 003): a campaign's state on one dialer, and its overall state.

``Campaign.state`` holds what the admin asked for (scheduled, running, stopped,
stopped_by_admin) and ``completed`` once every dialer finished it;
``DialerCampaign.state`` is what one dialer is doing with it now. The originator
recomputes the latter every tick from these pure functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agi.outcomes import CampaignState as S

# States an admin command puts a campaign in that a dialer must obey as they are.
_ADMIN_HALTS = {S.STOPPED, S.STOPPED_BY_ADMIN, S.COMPLETED, S.UNSCHEDULED}

# Default: an agent campaign pauses after this long without a free agent line.
PAUSE_NO_AGENTS_AFTER_S = 10.0
# A dialer whose heartbeat is older than this is dead: its running campaigns are stopped_by_dialer.
HEARTBEAT_STALE_AFTER_S = 30.0
# An originator beats (and publishes its live figures) this often; one silent for three missed beats
# is reported down by `dialer status` and the live view at once, before its campaigns are taken
# for stopped_by_dialer (which waits HEARTBEAT_STALE_AFTER_S, so a slow tick does not stop them).
DIALER_BEAT_EVERY_S = 2.0
DIALER_SILENT_AFTER_S = 3 * DIALER_BEAT_EVERY_S + 1.0
# A FastAGI server beats this often and is dead after three missed beats: calls answered while
# none is alive would get the dialplan's fallback drop message, so the originator stops dialing.
AGI_BEAT_EVERY_S = 2.0
AGI_STALE_AFTER_S = 3 * AGI_BEAT_EVERY_S + 1.0

# Per-dialer states in which a dialer works a campaign (dials it or waits to, by itself).
WORKING_STATES = frozenset({S.RUNNING, S.PAUSED_NO_AGENTS, S.PAUSED_NO_AGI_SERVER})


@dataclass(frozen=True)
class DialerView:
    """What one dialer knows of a campaign at ``now``."""

    campaign_state: S  # Campaign.state (the admin's intent)
    now: dt.datetime
    start_at: dt.datetime | None = None
    stop_at: dt.datetime | None = None
    in_schedule: bool = True  # the campaign's daily schedule is open now
    lines: int = 1  # lines this dialer may use for the campaign
    work_left: bool = True  # contacts pending or scheduled for retry remain
    calls_in_progress: int = 0
    agent_campaign: bool = False
    no_agents_for_s: float = 0.0  # how long no agent line has been available (0 = one is free)
    pause_after_s: float = PAUSE_NO_AGENTS_AFTER_S
    agi_server_alive: bool = True  # a FastAGI server this dialer's calls are sent to beats


def dialer_state(v: DialerView) -> S:
    """The campaign's state on one dialer now."""
    if v.campaign_state in _ADMIN_HALTS:
        return v.campaign_state
    if not v.work_left and v.calls_in_progress == 0:
        return S.COMPLETED
    if v.stop_at is not None and v.now >= v.stop_at:
        return S.COMPLETED if v.calls_in_progress == 0 else S.STOPPED
    if v.lines <= 0:
        return S.UNSCHEDULED  # seed 003: no line assignment means not schedulable
    if (v.start_at is not None and v.now < v.start_at) or not v.in_schedule:
        return S.SCHEDULED
    if not v.agi_server_alive:
        return S.PAUSED_NO_AGI_SERVER  # nobody would take the answered calls: do not dial
    if v.agent_campaign and v.no_agents_for_s >= v.pause_after_s:
        return S.PAUSED_NO_AGENTS
    return S.RUNNING


def state_reason(v: DialerView, state: S) -> str:
    """Why the campaign is in ``state`` on this dialer, in a few words for the live view."""
    if state is S.RUNNING:
        return "dialing"
    if state is S.PAUSED_NO_AGENTS:
        return f"no agent free for {v.no_agents_for_s:.0f} s"
    if state is S.PAUSED_NO_AGI_SERVER:
        return "no FastAGI server alive"
    if state is S.SCHEDULED:
        if v.start_at is not None and v.now < v.start_at:
            return f"starts {v.start_at:%Y-%m-%d %H:%M} UTC"
        return "outside its schedule now"
    if state is S.COMPLETED:
        return "stop date passed" if v.stop_at is not None and v.now >= v.stop_at else "no contact left to try"
    if state is S.STOPPED:
        if v.campaign_state is not S.STOPPED:
            return f"stop date passed; {v.calls_in_progress} call(s) finishing"
        return "stopped by the user"
    if state is S.UNSCHEDULED:
        return "no lines on this dialer" if v.campaign_state is not S.UNSCHEDULED else "not scheduled"
    return {S.STOPPED_BY_ADMIN: "stopped by an admin", S.STOPPED_BY_DIALER: "its originator stopped"}.get(
        state, state.value)


def may_dial(state: S) -> bool:
    """Only a running campaign starts new calls; every other state lets calls in progress finish."""
    return state is S.RUNNING


# Overall state of a campaign on several dialers: the most telling per-dialer state wins.
_OVERALL_ORDER = (
    S.RUNNING,
    S.PAUSED_NO_AGENTS,
    S.PAUSED_NO_AGI_SERVER,
    S.STOPPED_BY_DIALER,
    S.STOPPED_BY_ADMIN,
    S.STOPPED,
    S.SCHEDULED,
    S.COMPLETED,
    S.UNSCHEDULED,
)


def overall_state(per_dialer: list[S], campaign_state: S) -> S:
    """One state for the campaign: running if any dialer runs it, completed only if all did."""
    if not per_dialer:
        return S.UNSCHEDULED if campaign_state in (S.RUNNING, S.SCHEDULED) else campaign_state
    present = set(per_dialer)
    for state in _OVERALL_ORDER:
        if state in present:
            return state
    return campaign_state


def heartbeat_stale(last_heartbeat: dt.datetime | None, now: dt.datetime,
                    stale_after_s: float = HEARTBEAT_STALE_AFTER_S) -> bool:
    return last_heartbeat is None or (now - last_heartbeat).total_seconds() > stale_after_s


def seen_state(stored: S, last_heartbeat: dt.datetime | None, now: dt.datetime) -> S:
    """A dialer's state of a campaign as a reader should see it: a dialer working a campaign
    whose heartbeat stopped is not working it (nobody may be left to write stopped_by_dialer)."""
    if stored in WORKING_STATES and heartbeat_stale(last_heartbeat, now):
        return S.STOPPED_BY_DIALER
    return stored
