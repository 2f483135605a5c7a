"""The do-not-call list as the admin edits it: add, remove, look up, list E.164 numbers.

Numbers arrive here already normalised (agi.admin.text.normalize_number); the import of a whole
file is agi.importer.import_dnc, the opt-outs of calls are written by the flows.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.attempts import add_dnc
from agi.db.models import CampaignContact, Contact, DncEntry


async def dnc_add(conn: AsyncConnection, number: str, source: str = "manual") -> bool:
    """Add an E.164 number; False if it was already listed (the one DNC write: agi.db.attempts.add_dnc)."""
    return await add_dnc(conn, number, (source or "manual")[:40])


async def dnc_remove(conn: AsyncConnection, number: str) -> bool:
    """Take the number off the list, and clear the own DNC flag of the contacts whose campaign
    membership has that number: the one way a DNC contact becomes dialable again (a later import or
    `campaign create --from`; memberships already skipped stay as recorded). False when neither
    the list nor any contact had it."""
    res = await conn.execute(delete(DncEntry).where(DncEntry.number == number))
    flagged = select(CampaignContact.contact_id).where(CampaignContact.number == number)
    cleared = await conn.execute(update(Contact).where(Contact.id.in_(flagged), Contact.dnc.is_(True))
                                 .values(dnc=False))
    return bool(res.rowcount) or bool(cleared.rowcount)


async def dnc_get(conn: AsyncConnection, number: str):
    """The DNC row (number, source, added_at) or None."""
    return (await conn.execute(select(DncEntry.number, DncEntry.source, DncEntry.added_at)
                               .where(DncEntry.number == number))).first()


async def dnc_list(conn: AsyncConnection, source: str | None = None, limit: int | None = None) -> list:
    q = select(DncEntry.number, DncEntry.source, DncEntry.added_at).order_by(DncEntry.number)
    if source:
        q = q.where(DncEntry.source == source)
    if limit:
        q = q.limit(limit)
    return list((await conn.execute(q)).all())
