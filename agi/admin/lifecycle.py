"""A campaign's schedule and the admin's intent: schedule (dates, days, daily hours), start, stop.

Campaign.state is the admin's intent; what each dialer does with it is agi/rules/lifecycle.py.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agi.admin.campaigns import get_campaign, window_changed
from agi.admin.contacts import contact_state_counts
from agi.admin.dialers import dialer_count, set_dialer_states
from agi.admin.text import DAYS, parse_days, parse_hours, parse_tz, parse_when
from agi.db.models import Campaign, CampaignContact, utcnow
from agi.errors import AdminError
from agi.outcomes import CampaignState, ContactState
from agi.rules.lifecycle import WORKING_STATES
from agi.rules.window import parse_schedule

# Campaign.state is the admin's intent (agi/rules/lifecycle.py); these may be started.
_STARTABLE = {
    CampaignState.SCHEDULED,
    CampaignState.STOPPED,
    CampaignState.STOPPED_BY_ADMIN,
    CampaignState.STOPPED_BY_DIALER,
    CampaignState.COMPLETED,
}


def _dates(c: Campaign, start: str | None, stop: str | None, zone: dt.tzinfo,
           now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The new (start_at, stop_at): given dates in ``zone``, else the campaign's; stop after start and now."""
    start_at = parse_when(start, zone, now=now) if start else c.start_at
    stop_at = parse_when(stop, zone, end_of_day=True, now=now) if stop else c.stop_at
    if start_at is None or stop_at is None:
        raise AdminError("a schedule needs --start and --stop dates (e.g. --start 2026-12-01 --stop 2026-12-31)")
    if stop_at <= start_at:
        raise AdminError("--stop must be after --start")
    if stop_at <= now:
        raise AdminError(f"--stop {stop_at:%Y-%m-%d %H:%M} UTC is in the past")
    return start_at, stop_at


def _weekly(c: Campaign, days: str | None, hours: str | None) -> dict | None:
    """The stored schedule {day: [[start, end], ...]}: given days (default every day) with the given
    hours (default the hours already scheduled, else the calling window)."""
    if days is None and hours is None:
        return c.schedule
    day_list = parse_days(days) if days is not None else list(DAYS)
    if hours is not None:
        spans = parse_hours(hours)
    elif c.schedule:
        spans = next(iter(c.schedule.values()))
    else:
        spans = [[c.window_start.strftime("%H:%M"), c.window_end.strftime("%H:%M")]]
    schedule = {d: [list(s) for s in spans] for d in day_list}
    try:
        parse_schedule(schedule)  # the window rule must accept what we store
    except ValueError as exc:
        raise AdminError(f"bad schedule: {exc}") from None
    return schedule


async def schedule_campaign(
    session: AsyncSession,
    ref: str,
    start: str | None = None,
    stop: str | None = None,
    days: str | None = None,
    hours: str | None = None,
    tz: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Set dates and daily hours; an unscheduled campaign becomes scheduled.

    Seed 003: scheduling needs start and stop dates, a schedule, and lines.
    """
    now = now or utcnow()
    c = await get_campaign(session, ref)
    zone = parse_tz(tz) if tz else parse_tz(c.schedule_tz or "UTC")
    start_at, stop_at = _dates(c, start, stop, zone, now)
    schedule = _weekly(c, days, hours)
    c.start_at, c.stop_at, c.schedule = start_at, stop_at, schedule
    if tz:
        c.schedule_tz = zone.key
    old_state = c.state
    if c.state == CampaignState.UNSCHEDULED.value:
        c.state = CampaignState.SCHEDULED.value
    await set_dialer_states(session, c.id, CampaignState.SCHEDULED, [CampaignState.UNSCHEDULED])
    await session.flush()
    await window_changed(session, c.id)  # dates and hours are the window rule's too
    return {"campaign": c.name, "state": c.state, "was": old_state, "start_at": c.start_at,
            "stop_at": c.stop_at, "schedule": c.schedule, "tz": c.schedule_tz,
            "dialers": await dialer_count(session, c.id)}


async def start_campaign(session: AsyncSession, ref: str, now: dt.datetime | None = None) -> dict:
    """scheduled/stopped/completed -> running; unscheduled must be scheduled first."""
    now = now or utcnow()
    c = await get_campaign(session, ref)
    state = CampaignState(c.state)
    if state in WORKING_STATES:
        return {"campaign": c.name, "state": c.state, "was": c.state, "changed": False, "warnings": []}
    if state is CampaignState.UNSCHEDULED or c.start_at is None or c.stop_at is None:
        raise AdminError(
            f"campaign {c.name!r} is not scheduled (no start/stop dates): give it dates first with "
            f"`dialer campaign schedule {c.name} --start YYYY-MM-DD --stop YYYY-MM-DD`"
        )
    if state not in _STARTABLE:  # pragma: no cover - every state is handled above
        raise AdminError(f"campaign {c.name!r} is {state.label}; it cannot be started")
    if c.stop_at is not None and c.stop_at <= now:
        raise AdminError(
            f"campaign {c.name!r} stopped at {c.stop_at:%Y-%m-%d %H:%M} UTC: "
            f"set a later --stop with `dialer campaign schedule {c.name} --stop YYYY-MM-DD`"
        )
    warnings = []
    if not await dialer_count(session, c.id):
        warnings.append(f"no dialer assigned: `dialer campaign assign {c.name} --dialer NAME` or it will not dial")
    counts = (await contact_state_counts(session, [c.id])).get(c.id, {})
    if not counts.get(ContactState.PENDING.value) and not counts.get(ContactState.RETRY_SCHEDULED.value):
        warnings.append("no contact to dial: import some with `dialer contacts import FILE.csv --campaign ...`")
    c.state = CampaignState.RUNNING.value
    # until each dialer's next tick says running (or paused, ...): waiting for it
    await set_dialer_states(session, c.id, CampaignState.SCHEDULED, [
        CampaignState.UNSCHEDULED, CampaignState.STOPPED, CampaignState.STOPPED_BY_ADMIN,
        CampaignState.STOPPED_BY_DIALER, CampaignState.COMPLETED])
    await session.flush()
    return {"campaign": c.name, "state": c.state, "was": state.value, "changed": True, "warnings": warnings}


async def stop_campaign(session: AsyncSession, ref: str, admin: bool = False) -> dict:
    """-> stopped (no new calls, calls in progress finish); admin: -> stopped_by_admin and the
    contacts still waiting (pending, retry_scheduled) are cancelled."""
    c = await get_campaign(session, ref)
    was = c.state
    target = CampaignState.STOPPED_BY_ADMIN if admin else CampaignState.STOPPED
    if not admin and was in (CampaignState.STOPPED_BY_ADMIN.value, CampaignState.COMPLETED.value,
                             CampaignState.UNSCHEDULED.value, CampaignState.STOPPED.value):
        return {"campaign": c.name, "state": was, "was": was, "cancelled": 0, "changed": False}
    c.state = target.value
    await set_dialer_states(session, c.id, target)
    cancelled = 0
    if admin:
        res = await session.execute(
            update(CampaignContact)
            .where(
                CampaignContact.campaign_id == c.id,
                CampaignContact.state.in_([ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value]),
            )
            .values(state=ContactState.CANCELLED.value, next_attempt_at=None, updated_at=utcnow())
        )
        cancelled = res.rowcount or 0
    await session.flush()
    return {"campaign": c.name, "state": c.state, "was": was, "cancelled": cancelled,
            "changed": was != c.state or cancelled > 0}
