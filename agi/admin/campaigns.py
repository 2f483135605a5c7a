"""Campaigns as the admin manages them: find, create (also from an earlier campaign), list, show,
change settings, delete. Plain async functions over a session; they raise ``AdminError`` with a
message that says what to do. Scheduling, start and stop are in agi.admin.lifecycle.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agi.admin.contacts import contact_state_counts, copy_contacts_by_last_result
from agi.db.models import (
    Attempt,
    Campaign,
    CampaignContact,
    CampaignLive,
    Dialer,
    DialerCampaign,
    utcnow,
)
from agi.errors import AdminError
from agi.outcomes import CampaignMode, CampaignState, ContactState
from agi.rules.lifecycle import WORKING_STATES, overall_state, seen_state

# Settings copied by `campaign create NEW --from OLD` (everything but identity, state and dates).
_NOT_COPIED = {"id", "name", "state", "start_at", "stop_at", "source_campaign_id", "created_at", "updated_at"}


async def find_campaign(db: AsyncSession | AsyncConnection, ref: str | int, *columns: Any) -> Any:
    """The row of a campaign by name, or by id when ``ref`` is a number and no campaign has that
    name; ``columns`` to select (default: the Campaign itself). AdminError when there is none."""
    text = str(ref).strip()
    q = select(*columns) if columns else select(Campaign)
    row = (await db.execute(q.where(Campaign.name == text))).first()
    if row is None and text.isdigit():
        row = (await db.execute(q.where(Campaign.id == int(text)))).first()
    if row is None:
        raise AdminError(f"no campaign {text!r} (by name or id); see `dialer campaign list`")
    return row


async def get_campaign(session: AsyncSession, ref: str | int) -> Campaign:
    """A campaign by name, or by id when ``ref`` is a number and no campaign has that name."""
    return (await find_campaign(session, ref))[0]


def validate_campaign(c: Campaign) -> None:
    """Rules across fields, checked after every change."""
    mode = CampaignMode(c.mode or CampaignMode.BROADCAST.value)
    if mode not in (CampaignMode.BROADCAST, CampaignMode.PREVIEW) and not c.queue_name:
        raise AdminError(f"a {mode.value} campaign needs agents: give --queue NAME (or --mode broadcast)")
    if c.drop_target_pct is not None and c.drop_cap_pct is not None and c.drop_target_pct > c.drop_cap_pct:
        raise AdminError(f"--drop-target {c.drop_target_pct:g} % is above the campaign's --drop-cap "
                         f"{c.drop_cap_pct:g} %: the target must be under the cap")


def _check_new_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise AdminError("a campaign needs a name")
    if len(name) > 200:
        raise AdminError("a campaign name is at most 200 characters")
    if name.isdigit():
        raise AdminError(f"campaign name {name!r} is all digits: it would be confused with an id")
    return name


async def create_campaign(
    session: AsyncSession,
    name: str,
    values: Mapping[str, Any],
    source: str | None = None,
    last_results: list[str] | None = None,
) -> tuple[Campaign, int]:
    """A new campaign; with ``source``, a copy of its settings (``values`` override them) and the
    contacts whose last result there is one of ``last_results``. Returns (campaign, contacts copied)."""
    name = _check_new_name(name)
    if (await session.execute(select(Campaign.id).where(Campaign.name == name))).first():
        raise AdminError(f"campaign {name!r} already exists; pick another name or use `dialer campaign set`")
    if last_results and source is None:
        raise AdminError("--last-result needs --from CAMPAIGN")

    campaign = Campaign(name=name, state=CampaignState.UNSCHEDULED.value)
    old = None
    if source is not None:
        old = await get_campaign(session, source)
        for col in Campaign.__table__.columns:
            if col.key not in _NOT_COPIED:
                setattr(campaign, col.key, getattr(old, col.key))
        campaign.source_campaign_id = old.id
    for attr, value in values.items():
        setattr(campaign, attr, value)
    _fill_defaults(campaign)
    validate_campaign(campaign)
    session.add(campaign)
    await session.flush()

    copied = 0
    if old is not None and last_results:
        copied = await copy_contacts_by_last_result(session, old.id, campaign.id, last_results)
    return campaign, copied


def _fill_defaults(c: Campaign) -> None:
    """Column defaults apply at INSERT; fill them now so validation and display see them."""
    for col in Campaign.__table__.columns:
        if getattr(c, col.key) is None and col.default is not None and col.default.is_scalar:
            setattr(c, col.key, col.default.arg)


async def list_campaigns(session: AsyncSession) -> list[dict]:
    campaigns = (await session.execute(select(Campaign).order_by(Campaign.id))).scalars().all()
    counts = await contact_state_counts(session)
    attempts = dict(
        (await session.execute(select(Attempt.campaign_id, func.count()).group_by(Attempt.campaign_id))).all()
    )
    now = utcnow()
    on_dialers: dict[int, list[CampaignState]] = {}
    for campaign_id, state, heartbeat in (await session.execute(
            select(DialerCampaign.campaign_id, DialerCampaign.state, Dialer.last_heartbeat)
            .join(Dialer, Dialer.id == DialerCampaign.dialer_id))).all():
        on_dialers.setdefault(campaign_id, []).append(seen_state(CampaignState(state), heartbeat, now))
    out = []
    for c in campaigns:
        states = counts.get(c.id, {})
        out.append(
            {
                "id": c.id,
                "name": c.name,
                "mode": c.mode,
                "state": c.state,
                "contacts": sum(states.values()),
                "pending": states.get(ContactState.PENDING.value, 0)
                + states.get(ContactState.RETRY_SCHEDULED.value, 0),
                "attempts": attempts.get(c.id, 0),
                "dialers": len(on_dialers.get(c.id, [])),
                "overall_state": overall_state(on_dialers.get(c.id, []), CampaignState(c.state)).value,
                "start_at": c.start_at,
                "stop_at": c.stop_at,
            }
        )
    return out


def campaign_settings(c: Campaign) -> dict:
    """Every column of the campaign, for display."""
    return {col.key: getattr(c, col.key) for col in Campaign.__table__.columns}


async def show_campaign(session: AsyncSession, ref: str) -> dict:
    c = await get_campaign(session, ref)
    rows = (
        await session.execute(
            select(Dialer, DialerCampaign, CampaignLive.reason)
            .join(DialerCampaign, DialerCampaign.dialer_id == Dialer.id)
            .outerjoin(CampaignLive, (CampaignLive.dialer_id == Dialer.id) & (CampaignLive.campaign_id == c.id))
            .where(DialerCampaign.campaign_id == c.id)
            .order_by(Dialer.name)
        )
    ).all()
    now = utcnow()
    dialers = []
    for d, dc, reason in rows:
        # a dialer whose heartbeat stopped is not working the campaign, whatever its row says
        state = seen_state(CampaignState(dc.state), d.last_heartbeat, now)
        dialers.append({
            "dialer": d.name,
            "lines": dc.lines if dc.lines is not None else c.lines,
            "state": state.value,
            "state_label": state.label,
            # why, as its originator last published it (e.g. "line-limited: ... would use about 40")
            "reason": (reason or "") if state.value == dc.state else "",
            "last_heartbeat": d.last_heartbeat,
        })
    counts = (await contact_state_counts(session, [c.id])).get(c.id, {})
    return {
        "campaign": campaign_settings(c),
        "overall_state": overall_state([CampaignState(d["state"]) for d in dialers], CampaignState(c.state)).value,
        "dialers": dialers,
        "contacts": {s.value: counts.get(s.value, 0) for s in ContactState},
    }


async def set_campaign(session: AsyncSession, ref: str, values: Mapping[str, Any], new_name: str | None = None) -> dict:
    """Change settings; returns {attribute: (old, new)} for what changed."""
    c = await get_campaign(session, ref)
    changes: dict[str, tuple[Any, Any]] = {}
    if new_name is not None and new_name.strip() != c.name:
        new_name = new_name.strip()
        if not new_name or new_name.isdigit() or len(new_name) > 200:
            raise AdminError(f"bad campaign name {new_name!r}")
        if (await session.execute(select(Campaign.id).where(Campaign.name == new_name))).first():
            raise AdminError(f"campaign {new_name!r} already exists")
        changes["name"] = (c.name, new_name)
        c.name = new_name
    for attr, value in values.items():
        old = getattr(c, attr)
        if old != value:
            changes[attr] = (old, value)
            setattr(c, attr, value)
    if not changes:
        return {}
    validate_campaign(c)
    await session.flush()
    if WINDOW_FIELDS & changes.keys():
        await window_changed(session, c.id)
    return changes


# what the calling window rule reads of a campaign (agi.rules.window.CallingWindow.from_campaign)
WINDOW_FIELDS = frozenset({"window_start", "window_end", "schedule", "schedule_tz", "start_at", "stop_at"})


async def window_changed(session: AsyncSession, campaign_id: int) -> None:
    """Contacts deferred to the old window's opening are due again: the originator checks them
    against the new window at their next claim (and defers them again if it is still closed).
    Without this, widening the window at 08:10 left contacts deferred to 09:00 waiting until 09:00.
    Pending ones only: a retry keeps its time (the rule's, or the old opening if later)."""
    await session.execute(update(CampaignContact).where(
        CampaignContact.campaign_id == campaign_id, CampaignContact.state == ContactState.PENDING.value,
        CampaignContact.next_attempt_at.is_not(None)).values(next_attempt_at=None))


async def delete_campaign(session: AsyncSession, ref: str) -> dict:
    """Delete a campaign with its memberships and attempts; a running one must be stopped first."""
    c = await get_campaign(session, ref)
    if CampaignState(c.state) in WORKING_STATES:
        raise AdminError(f"campaign {c.name!r} is running: `dialer campaign stop {c.name}` first")
    live = (
        await session.execute(
            select(func.count()).select_from(CampaignContact).where(
                CampaignContact.campaign_id == c.id,
                CampaignContact.state.in_([s.value for s in ContactState if s.live]),
            )
        )
    ).scalar_one()
    if live:
        raise AdminError(f"campaign {c.name!r} still has {live} call(s) in progress; wait for them to end")
    cid = c.id
    counts = {
        "attempts": (await session.execute(delete(Attempt).where(Attempt.campaign_id == cid))).rowcount,
        "contacts": (await session.execute(delete(CampaignContact).where(CampaignContact.campaign_id == cid))).rowcount,
    }
    await session.execute(delete(DialerCampaign).where(DialerCampaign.campaign_id == cid))
    await session.execute(update(Campaign).where(Campaign.source_campaign_id == cid).values(source_campaign_id=None))
    await session.execute(delete(Campaign).where(Campaign.id == cid))
    session.expunge(c)
    return {"campaign": c.name, "id": cid, **counts}
