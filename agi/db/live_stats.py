"""What a running originator publishes with each heartbeat, and how the live views read it back.

One ``dialer_live`` row per dialer (its AMI session, lines in use, the FastAGI address its calls
go to, a graceful stop) and one ``campaign_live`` row per campaign it is assigned (state and why,
pacing, lines, calls by stage, agents by state). Written in the heartbeat's transaction, so the
figures are as of ``dialers.last_heartbeat``. Core statements; the caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import CampaignLive, DialerLive

_dl = DialerLive.__table__
_cl = CampaignLive.__table__


@dataclass(frozen=True)
class DialerFigures:
    ami_connected: bool
    ami_reconnects: int  # logins after the first one
    lines_in_use: int
    agi_address: str  # where its answered calls go (__DIALER_AGI)


@dataclass(frozen=True)
class CampaignFigures:
    """One campaign on one dialer (the columns of ``campaign_live``)."""

    campaign_id: int
    state: str  # CampaignState code on this dialer
    reason: str  # why, in a few words
    mode: str  # the pacing mode in effect
    dial_level: float | None  # agi.rules.pacing.dial_level; None: not paced against agents now
    calls_to_start: int | None  # the pacing's last answer; None: not dialing
    lines_in_use: int
    lines_allowed: int
    ringing: int
    detecting: int  # answered, AMD still deciding
    in_ivr: int  # a person hearing the message, pressing keys
    waiting: int  # in the agent queue
    agents_logged_in: int
    agents_ready: int
    agents_in_call: int
    agents_acw: int
    agents_paused: int


def _upsert(conn: AsyncConnection, table, keys: list, values: dict):
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    if dialect is None:
        raise RuntimeError(f"live figures: no upsert for the {conn.dialect.name} dialect")
    stmt = dialect.insert(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={
        k: getattr(stmt.excluded, k) for k in values if k not in {c.name for c in keys}})


async def publish(conn: AsyncConnection, dialer_id: int, dialer: DialerFigures,
                  campaigns: list[CampaignFigures]) -> None:
    """This dialer's figures now (a row per assigned campaign; rows of campaigns no longer
    assigned go)."""
    await conn.execute(_upsert(conn, _dl, [_dl.c.dialer_id], {
        "dialer_id": dialer_id, **dataclasses.asdict(dialer), "stopped_at": None}))
    for figures in campaigns:
        await conn.execute(_upsert(conn, _cl, [_cl.c.dialer_id, _cl.c.campaign_id], {
            "dialer_id": dialer_id, **dataclasses.asdict(figures)}))
    gone = delete(_cl).where(_cl.c.dialer_id == dialer_id)
    if campaigns:
        gone = gone.where(_cl.c.campaign_id.not_in([f.campaign_id for f in campaigns]))
    await conn.execute(gone)


async def mark_stopped(conn: AsyncConnection, dialer_id: int, now: dt.datetime) -> None:
    """A graceful stop: the dialer is not dialing any more, and meant not to be."""
    await conn.execute(update(_dl).where(_dl.c.dialer_id == dialer_id).values(
        stopped_at=now, ami_connected=False, lines_in_use=0))
    await conn.execute(delete(_cl).where(_cl.c.dialer_id == dialer_id))


async def dialer_rows(conn: AsyncConnection) -> dict[int, object]:
    """dialer id -> its ``dialer_live`` row."""
    return {r.dialer_id: r for r in (await conn.execute(select(_dl))).all()}


async def campaign_rows(conn: AsyncConnection) -> dict[tuple[int, int], object]:
    """(dialer id, campaign id) -> its ``campaign_live`` row."""
    return {(r.dialer_id, r.campaign_id): r for r in (await conn.execute(select(_cl))).all()}
