"""The contacts of a campaign with their state and last result (``contacts list`` and ``export``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.campaigns import find_campaign
from agi.db.models import Campaign, CampaignContact, Contact
from agi.errors import AdminError
from agi.outcomes import ContactState


async def list_contacts(
    conn: AsyncConnection, campaign: str | int, state: str | None = None, limit: int | None = None
) -> list[dict]:
    camp = await find_campaign(conn, campaign, Campaign.id)
    cc = CampaignContact.__table__
    ct = Contact.__table__
    q = (
        select(
            ct.c.id.label("contact_id"), ct.c.external_id, ct.c.first_name, ct.c.last_name,
            ct.c.home, ct.c.work, ct.c.cell, ct.c.phone, ct.c.dnc, ct.c.custom,
            cc.c.state, cc.c.number, cc.c.timezone, cc.c.attempts, cc.c.last_result, cc.c.next_attempt_at,
        )
        .join(cc, cc.c.contact_id == ct.c.id)
        .where(cc.c.campaign_id == camp.id)
        .order_by(cc.c.id)
    )
    if state:
        states = []
        for part in filter(None, (p.strip() for p in state.split(","))):
            try:
                states.append(ContactState.parse(part).value)
            except ValueError as exc:
                raise AdminError(str(exc)) from None
        q = q.where(cc.c.state.in_(states))
    if limit:
        q = q.limit(limit)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]
