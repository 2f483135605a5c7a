"""The audit log: every change made through the API or the CLI, who made it, from where, when.

One function writes it (``record``), in the caller's transaction: an API change and its
audit row commit together. Details never hold a secret (``redact``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import AuditEntry, utcnow

_t = AuditEntry.__table__
SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "authorization")
_MAX_TEXT = 500  # a detail value longer than this is cut (oversized inputs stay out of the log)


def redact(details: Mapping[str, Any] | None) -> dict | None:
    """``details`` with every value whose key names a secret masked, long texts cut."""
    if details is None:
        return None
    out: dict = {}
    for key, value in details.items():
        if any(word in str(key).lower() for word in SECRET_WORDS):
            out[key] = "***"
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        elif isinstance(value, str) and len(value) > _MAX_TEXT:
            out[key] = value[:_MAX_TEXT] + "…"
        elif isinstance(value, (dt.datetime, dt.date, dt.time)):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


async def record(conn: AsyncConnection, actor: str, action: str, target: str = "",
                 details: Mapping[str, Any] | None = None, source: str = "",
                 now: dt.datetime | None = None) -> None:
    """One audit row: ``actor`` (user, key id), ``action`` ("campaign.start"), ``target``
    ("campaign spring"), ``details`` (what was given; secrets masked), ``source`` ("api 10.0.0.7")."""
    await conn.execute(_t.insert().values(
        at=now or utcnow(), actor=actor[:200], action=action[:80], target=str(target)[:200],
        details=redact(details), source=source[:200]))


async def list_entries(conn: AsyncConnection, *, since: dt.datetime | None = None,
                       until: dt.datetime | None = None, actor: str | None = None,
                       action: str | None = None, limit: int | None = 100) -> list[dict]:
    """Newest first; ``actor`` matches a part of the actor, ``action`` a prefix ("campaign.")."""
    q = select(_t).order_by(_t.c.at.desc(), _t.c.id.desc())
    if since is not None:
        q = q.where(_t.c.at >= since)
    if until is not None:
        q = q.where(_t.c.at < until)
    if actor:
        q = q.where(_t.c.actor.contains(actor, autoescape=True))
    if action:
        q = q.where(_t.c.action.startswith(action, autoescape=True))
    if limit:
        q = q.limit(limit)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]
