"""Helpers of the API tests: the app over a test database, users and keys, finished calls."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.auth import keys, users
from agi.db import attempts as db
from agi.db.models import CampaignContact
from agi.outcomes import Result
from agi.web.app import WebOptions, create_app

BASE = "http://dialer.test/api/v1"


def client(engine: AsyncEngine, **options) -> httpx.AsyncClient:
    """httpx against the ASGI app itself (no socket); webhooks and the rate limit off unless asked."""
    options.setdefault("webhooks", False)
    options.setdefault("rate", 0)
    app = create_app(engine, options=WebOptions(**options))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def new_key(engine: AsyncEngine, user: str = "alice", role: str = "admin", *, key_role: str | None = None,
                  campaigns: list[str] | None = None, name: str = "test") -> dict[str, str]:
    """Headers with a new key of ``user`` (created with ``role`` when missing)."""
    async with engine.begin() as conn:
        if not any(u["name"] == user for u in await users.list_users(conn)):
            await users.add_user(conn, user, role)
        made = await keys.create_key(conn, user, name, key_role, campaigns)
    return {"Authorization": f"Bearer {made['key']}"}


async def membership(engine: AsyncEngine, campaign_id: int, contact_id: int):
    cc = CampaignContact.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(cc).where(cc.c.campaign_id == campaign_id,
                                                    cc.c.contact_id == contact_id))).one()


async def call(engine: AsyncEngine, campaign_id: int, contact_id: int, result: Result, *,
               at: dt.datetime, talk: int | None = None, finish: bool = True) -> str:
    """One dialed attempt of the contact, as the originator and the flows write it; returns its id."""
    m = await membership(engine, campaign_id, contact_id)
    async with engine.begin() as conn:
        aid = await db.start_attempt(conn, m.id, campaign_id=campaign_id, contact_id=contact_id, dialer="d1",
                                     number=m.number, attempt_no=m.attempts + 1, now=at)
        if result is Result.LIVE_ANSWER:
            await db.mark_answered(conn, aid, at + dt.timedelta(seconds=5), "HUMAN")
        if finish:
            await db.finish_attempt(conn, aid, result, ended_at=at + dt.timedelta(seconds=10 + (talk or 0)),
                                    talk_seconds=talk)
    return aid
