"""Claiming due contacts for dialing: one statement, safe with several originators at once.

PostgreSQL splits the work with ``FOR UPDATE SKIP LOCKED``; SQLite ignores that clause but
runs one writer at a time, and the state guard in the outer WHERE keeps a row from being
claimed twice on either backend.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.attempt_writes import release_claim as release_claim_write
from agi.db.attempts import run
from agi.db.models import CampaignContact
from agi.outcomes import ContactState

CLAIMABLE = (ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value)

_cc = CampaignContact.__table__


@dataclass(frozen=True)
class Claimed:
    """A membership now in ``dialing``, claimed by one dialer."""

    membership_id: int
    contact_id: int
    number: str | None
    timezone: str | None
    attempts: int  # counted attempts before this one
    state_before: ContactState  # pending or retry_scheduled


def _claim_statement():
    """The claim UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING, built once
    (building it per claim was a fifth of a claimer's CPU); a claim binds campaign, dialer, time
    and limit."""
    # States and limit inline, not bound: a cached generic plan on PostgreSQL then still
    # matches the partial index's predicate and knows how few rows it needs.
    claimable = bindparam("claimable", list(CLAIMABLE), expanding=True, literal_execute=True)
    n = bindparam("claim_limit", type_=Integer(), literal_execute=True)
    now = bindparam("p_now", type_=_cc.c.claimed_at.type)
    due = (
        select(_cc.c.id)
        .where(
            _cc.c.campaign_id == bindparam("p_campaign", type_=_cc.c.campaign_id.type),
            _cc.c.state.in_(claimable),
            or_(_cc.c.next_attempt_at.is_(None), _cc.c.next_attempt_at <= now),
        )
        # retries that fell due (a requested call-back time first among them) before fresh
        # contacts, oldest due first; NULLS LAST spelled out since SQLite sorts NULL first
        .order_by(_cc.c.next_attempt_at.asc().nulls_last(), _cc.c.id)
        .limit(n)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
    )
    return (
        update(_cc)
        .where(_cc.c.id.in_(due), _cc.c.state.in_(CLAIMABLE))
        .values(
            state=ContactState.DIALING.value,
            claimed_from=_cc.c.state,  # SET reads the row as it was: the state before
            claimed_by=bindparam("p_dialer", type_=_cc.c.claimed_by.type),
            claimed_at=now,
            updated_at=now,
        )
        .returning(
            _cc.c.id,
            _cc.c.contact_id,
            _cc.c.number,
            _cc.c.timezone,
            _cc.c.attempts,
            _cc.c.claimed_from,
        )
    )


CLAIM = _claim_statement()


async def claim_due(
    conn: AsyncConnection, campaign_id: int, dialer: str, limit: int, now: dt.datetime
) -> list[Claimed]:
    """Move up to ``limit`` due memberships of a campaign to ``dialing`` for ``dialer``.

    The caller owns the transaction and should commit at once (the rows stay locked
    on PostgreSQL until then).
    """
    if limit <= 0:
        return []
    rows = (await conn.execute(CLAIM, {"p_campaign": campaign_id, "p_dialer": dialer, "p_now": now,
                                       "claim_limit": int(limit)})).all()
    claimed = [
        Claimed(
            membership_id=r.id,
            contact_id=r.contact_id,
            number=r.number,
            timezone=r.timezone,
            attempts=r.attempts,
            state_before=ContactState(r.claimed_from),
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: c.membership_id)
    return claimed


async def release_claim(
    conn: AsyncConnection,
    membership_id: int,
    *,
    next_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Give back a claimed membership that was not dialed (e.g. outside the calling window).

    It returns to the state it was claimed from, due at ``next_attempt_at``; no attempt counted
    (agi.db.attempt_writes.release_claim, run on ``conn``).
    """
    return await run(conn, release_claim_write(membership_id, next_attempt_at=next_attempt_at, now=now))
