"""The originator's queries: its campaigns, heartbeat, pre-dial data, drop counts, dangling attempts,
agent time.

Core statements only; each function takes an AsyncConnection (the caller owns the transaction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import (
    Attempt,
    Campaign,
    CampaignAgentTime,
    CampaignContact,
    Contact,
    Dialer,
    DialerCampaign,
    DncEntry,
)
from agi.outcomes import PHONE_FIELDS, CampaignState, ContactState
from agi.rules.lifecycle import WORKING_STATES

_a = Attempt.__table__
_c = Campaign.__table__
_cc = CampaignContact.__table__
_ct = Contact.__table__
_d = Dialer.__table__
_dc = DialerCampaign.__table__
_dnc = DncEntry.__table__
_at = CampaignAgentTime.__table__

# Per-dialer states in which a dialer is actively working a campaign (a dead dialer leaves them).
ACTIVE_STATES = tuple(s.value for s in WORKING_STATES)
WORK_STATES = (ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value)
LIVE_STATES = (ContactState.DIALING.value, ContactState.IN_CALL.value, ContactState.WAITING_AGENT.value)
# In front of an agent (offered, before or after call work, refused and waiting for another agent):
# still work for the campaign, never claimed by the dial loop.
AGENT_STATES = (ContactState.OPERATOR_ASSIGNED.value, ContactState.BCW.value,
                ContactState.REJECTED_BY_OPERATOR.value, ContactState.ACW.value)


@dataclass(frozen=True)
class DialerRow:
    id: int
    name: str
    lines: int
    cps: float
    dial_template: str


async def ensure_dialer(conn: AsyncConnection, name: str, *, ami_host: str, ami_port: int,
                        lines: int | None = None, cps: float | None = None,
                        dial_template: str | None = None) -> DialerRow:
    """This dialer's row, created on first start (settings given here update it)."""
    row = (await conn.execute(select(_d).where(_d.c.name == name))).first()
    values = {k: v for k, v in dict(lines=lines, cps=cps, dial_template=dial_template).items() if v is not None}
    if row is None:
        await conn.execute(insert(_d).values(name=name, ami_host=ami_host, ami_port=ami_port, **values))
    elif values:
        await conn.execute(update(_d).where(_d.c.name == name).values(**values))
    row = (await conn.execute(select(_d).where(_d.c.name == name))).one()
    return DialerRow(row.id, row.name, row.lines, row.cps, row.dial_template)


async def heartbeat(conn: AsyncConnection, dialer_id: int, now: dt.datetime) -> None:
    await conn.execute(update(_d).where(_d.c.id == dialer_id).values(last_heartbeat=now))


async def stop_dialer(conn: AsyncConnection, dialer_id: int, now: dt.datetime,
                      only_stale_before: dt.datetime | None = None) -> int:
    """This dialer's campaigns it was working -> stopped_by_dialer (it stops, or its last run died:
    with ``only_stale_before``, only if its heartbeat is older than that). Returns how many."""
    q = update(_dc).where(_dc.c.dialer_id == dialer_id, _dc.c.state.in_(ACTIVE_STATES))
    if only_stale_before is not None:
        stale = select(_d.c.id).where(_d.c.id == dialer_id, (_d.c.last_heartbeat.is_(None))
                                      | (_d.c.last_heartbeat < only_stale_before))
        q = q.where(_dc.c.dialer_id.in_(stale.scalar_subquery()))
    res = await conn.execute(q.values(state=CampaignState.STOPPED_BY_DIALER.value, updated_at=now))
    return res.rowcount or 0


async def stop_dead_dialers(conn: AsyncConnection, me: int, stale_before: dt.datetime) -> list[str]:
    """Campaigns still marked active on dialers whose heartbeat stopped -> stopped_by_dialer."""
    dead = select(_d.c.id).where(
        _d.c.id != me, (_d.c.last_heartbeat.is_(None)) | (_d.c.last_heartbeat < stale_before)
    )
    rows = (await conn.execute(
        update(_dc)
        .where(_dc.c.dialer_id.in_(dead.scalar_subquery()), _dc.c.state.in_(ACTIVE_STATES))
        .values(state=CampaignState.STOPPED_BY_DIALER.value, updated_at=stale_before)
        .returning(_dc.c.dialer_id, _dc.c.campaign_id)
    )).all()
    return [f"dialer {r.dialer_id} campaign {r.campaign_id}" for r in rows]


async def assigned_campaigns(conn: AsyncConnection, dialer_id: int) -> list[tuple]:
    """(Campaign row, lines here, state here) for every campaign assigned to this dialer."""
    rows = (await conn.execute(
        select(_c, _dc.c.lines.label("lines_here"), _dc.c.state.label("state_here"))
        .join(_dc, _dc.c.campaign_id == _c.c.id)
        .where(_dc.c.dialer_id == dialer_id)
    )).all()
    return rows


async def set_dialer_state(conn: AsyncConnection, dialer_id: int, campaign_id: int,
                           state: CampaignState, now: dt.datetime) -> None:
    await conn.execute(
        update(_dc).where(_dc.c.dialer_id == dialer_id, _dc.c.campaign_id == campaign_id)
        .values(state=state.value, updated_at=now)
    )


async def complete_if_all_done(conn: AsyncConnection, campaign_id: int, now: dt.datetime) -> bool:
    """Campaign.state -> completed once every dialer it is assigned to completed it."""
    not_done = exists().where(_dc.c.campaign_id == campaign_id,
                              _dc.c.state != CampaignState.COMPLETED.value)
    res = await conn.execute(
        update(_c).where(_c.c.id == campaign_id, _c.c.state == CampaignState.RUNNING.value, ~not_done)
        .values(state=CampaignState.COMPLETED.value, updated_at=now)
    )
    return res.rowcount == 1


async def work_left(conn: AsyncConnection, campaign_id: int) -> bool:
    """Any contact still to try (pending, scheduled for retry), being tried (live states) or in
    front of an agent."""
    q = select(exists().where(_cc.c.campaign_id == campaign_id,
                              _cc.c.state.in_(WORK_STATES + LIVE_STATES + AGENT_STATES)))
    return bool((await conn.execute(q)).scalar())


async def claimed_row(conn: AsyncConnection, membership_id: int):
    """A membership's number, time zone and counted attempts (a preview offer about to be dialed)."""
    return (await conn.execute(select(_cc.c.number, _cc.c.timezone, _cc.c.attempts)
                               .where(_cc.c.id == membership_id))).first()


async def contacts_for(conn: AsyncConnection, contact_ids: list[int]) -> dict[int, tuple[dict, bool]]:
    """contact id -> (the four phones, dnc flag), for the pre-dial check right before dialing."""
    if not contact_ids:
        return {}
    cols = [_ct.c.id, _ct.c.dnc] + [_ct.c[f] for f in PHONE_FIELDS]
    rows = (await conn.execute(select(*cols).where(_ct.c.id.in_(contact_ids)))).all()
    return {r.id: ({f: getattr(r, f) for f in PHONE_FIELDS}, bool(r.dnc)) for r in rows}


async def dnc_numbers(conn: AsyncConnection, numbers: list[str]) -> set[str]:
    """Which of ``numbers`` are on the DNC list now (checked again right before every dial)."""
    if not numbers:
        return set()
    return set((await conn.execute(select(_dnc.c.number).where(_dnc.c.number.in_(numbers)))).scalars())


async def numbers_in_call(conn: AsyncConnection, numbers: list[str], since: dt.datetime) -> set[str]:
    """Which of ``numbers`` have a call of any dialer going on (attempt started since ``since``, not ended)."""
    if not numbers:
        return set()
    return set((await conn.execute(
        select(_a.c.number).where(_a.c.number.in_(numbers), _a.c.ended_at.is_(None), _a.c.queued_at >= since)
    )).scalars())


async def verdicts(conn: AsyncConnection, attempt_ids: list[str]) -> list:
    """What the FastAGI flows learnt of answered calls: AMD status, result, routing."""
    if not attempt_ids:
        return []
    return (await conn.execute(
        select(_a.c.id, _a.c.amd_status, _a.c.result, _a.c.routing).where(_a.c.id.in_(attempt_ids))
    )).all()


async def open_attempts(conn: AsyncConnection, dialer: str) -> list:
    """This dialer's attempts without a final result (the reconciler's candidates)."""
    return (await conn.execute(
        select(_a.c.id, _a.c.campaign_id, _a.c.membership_id, _a.c.number, _a.c.queued_at,
               _a.c.answered_at)
        .where(_a.c.dialer == dialer, _a.c.result.is_(None))
    )).all()


async def orphan_claims(conn: AsyncConnection, dialer: str) -> list[int]:
    """Memberships this dialer claimed but never started an attempt for (it died in between)."""
    open_attempt = exists().where(_a.c.id == _cc.c.last_attempt_id, _a.c.result.is_(None))
    rows = (await conn.execute(
        select(_cc.c.id).where(_cc.c.claimed_by == dialer, _cc.c.state.in_(LIVE_STATES), ~open_attempt)
    )).scalars().all()
    return list(rows)


async def reschedule_after_reconcile(conn: AsyncConnection, attempt_id: str, at: dt.datetime) -> None:
    """A reconciled attempt (call lost, result unknown) gets a retry if attempts remain."""
    max_attempts = select(_c.c.max_attempts).where(_c.c.id == _cc.c.campaign_id).scalar_subquery()
    await conn.execute(
        update(_cc)
        .where(and_(_cc.c.last_attempt_id == attempt_id, _cc.c.state == ContactState.DONE.value,
                    _cc.c.attempts < max_attempts))
        .values(state=ContactState.RETRY_SCHEDULED.value, next_attempt_at=at)
    )


async def add_agent_time(conn: AsyncConnection, campaign_id: int, dialer_id: int,
                         increments: dict[dt.datetime, tuple[float, float]]) -> None:
    """Add (busy, logged-in) agent-seconds to this dialer's hour rows of the campaign.

    An increment, never an overwrite: each flush adds only what was measured since the last
    one, so a dialer restarted mid-hour adds to the hour instead of replacing it. One
    INSERT ... ON CONFLICT DO UPDATE (PostgreSQL and SQLite alike) per hour row.
    """
    if not increments:
        return
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    if dialect is None:
        raise RuntimeError(f"agent time: no upsert for the {conn.dialect.name} dialect")
    stmt = dialect.insert(_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_at.c.campaign_id, _at.c.dialer_id, _at.c.hour],
        set_={
            "busy_agent_seconds": _at.c.busy_agent_seconds + stmt.excluded.busy_agent_seconds,
            "logged_agent_seconds": _at.c.logged_agent_seconds + stmt.excluded.logged_agent_seconds,
        },
    )
    await conn.execute(stmt, [
        {"campaign_id": campaign_id, "dialer_id": dialer_id, "hour": hour,
         "busy_agent_seconds": busy, "logged_agent_seconds": logged}
        for hour, (busy, logged) in sorted(increments.items())
    ])
