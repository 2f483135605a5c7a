"""Seeding helpers for the database tests: a campaign with contacts, as plain Core inserts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import Campaign, CampaignContact, Contact

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc)


async def seed_campaign(
    conn: AsyncConnection,
    n: int,
    *,
    name: str = "c1",
    max_attempts: int = 3,
    retry_rules: dict | None = None,
    first_number: int = 2025550000,
) -> tuple[int, list[int]]:
    """A campaign with ``n`` pending members; returns (campaign id, membership ids)."""
    camp_id = (
        await conn.execute(
            insert(Campaign.__table__)
            .values(name=name, max_attempts=max_attempts, retry_rules=retry_rules)
            .returning(Campaign.__table__.c.id)
        )
    ).scalar_one()
    cc = CampaignContact.__table__
    contacts = Contact.__table__
    if n:
        await conn.execute(
            insert(contacts),
            [
                {"dedupe_key": f"{name}-{i}", "phone": f"+1{first_number + i}"}
                for i in range(n)
            ],
        )
        rows = (
            await conn.execute(
                select(contacts.c.id, contacts.c.phone)
                .where(contacts.c.dedupe_key.like(f"{name}-%"))
                .order_by(contacts.c.id)
            )
        ).all()
        await conn.execute(
            insert(cc),
            [
                {"campaign_id": camp_id, "contact_id": r.id, "number": r.phone,
                 "timezone": "America/New_York"}
                for r in rows
            ],
        )
    ids = (
        await conn.execute(select(cc.c.id).where(cc.c.campaign_id == camp_id).order_by(cc.c.id))
    ).scalars().all()
    return camp_id, list(ids)


async def membership(conn: AsyncConnection, membership_id: int):
    cc = CampaignContact.__table__
    return (await conn.execute(select(cc).where(cc.c.id == membership_id))).one()
