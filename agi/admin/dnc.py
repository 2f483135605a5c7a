"""The do-not-call list as the admin edits it: add, remove, look up, list E.164 numbers.

Numbers arrive here already normalised (agi.admin.text.normalize_number); the import of a whole
file is agi.importer.import_dnc, the opt-outs of calls are written by the flows.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.attempts import add_dnc
from agi.db.models import DncEntry


async def dnc_add(conn: AsyncConnection, number: str, source: str = "manual") -> bool:
    """Add an E.164 number; False if it was already listed (the one DNC write: agi.db.attempts.add_dnc)."""
    return await add_dnc(conn, number, (source or "manual")[:40])


async def dnc_remove(conn: AsyncConnection, number: str) -> bool:
    res = await conn.execute(delete(DncEntry).where(DncEntry.number == number))
    return bool(res.rowcount)


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
