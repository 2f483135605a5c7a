"""Webhooks and their outbox in the database: hooks, the scan that fills the outbox, due
messages (claimed with a lease, so several `dialer web` processes never send one twice at
once, and a crashed one's claims come due again), and the result of each try.

The scan: every final attempt of a hooked campaign that ended after the hook was created gets
one outbox row per hook (unique per webhook and attempt). The cursor is the newest ``ended_at``
taken, never past the scan's own clock; each scan looks back ``LOOKBACK`` before it, so an
attempt whose final write commits after a later one's (a slow transaction, a dialer box whose
clock is a little behind) is still found, and one already taken is not taken twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import Attempt, Campaign, Contact, Webhook, WebhookDelivery, utcnow
from agi.outcomes import Result
from agi.settings import mask_url
from agi.webhooks import signing

_h = Webhook.__table__
_d = WebhookDelivery.__table__
_a = Attempt.__table__
_c = Campaign.__table__
_ct = Contact.__table__

LOOKBACK = dt.timedelta(minutes=5)
SCAN_BATCH = 500
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
ATTEMPT_FIELDS = ("id", "attempt_no", "number", "dialer", "queued_at", "answered_at", "ended_at", "result",
                  "routing", "disposition", "callback_at", "talk_seconds", "agent", "hangup_cause")


def shown_url(url: str) -> str:
    """A hook's URL for lists and logs: credentials and the query (often a token) masked."""
    base, sep, _query = mask_url(url).partition("?")
    return base + ("?***" if sep else "")


def check_url(url: str) -> str:
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2000 or any(c.isspace() for c in url):
        raise ValueError("a webhook URL is http:// or https://, at most 2000 characters, without spaces")
    return url


async def add_hook(conn: AsyncConnection, campaign_id: int, url: str, now: dt.datetime | None = None) -> dict:
    """A new hook; the returned secret is shown this once (receivers check signatures with it)."""
    secret = signing.new_secret()
    now = now or utcnow()
    res = await conn.execute(_h.insert().values(campaign_id=campaign_id, url=check_url(url), secret=secret,
                                                active=True, cursor_at=None, created_at=now).returning(_h.c.id))
    return {"id": res.scalar_one(), "campaign_id": campaign_id, "url": url.strip(), "secret": secret,
            "created_at": now}


async def get_hook(conn: AsyncConnection, hook_id: int):
    return (await conn.execute(select(_h.c.id, _h.c.campaign_id, _h.c.url, _h.c.active)
                               .where(_h.c.id == hook_id))).first()


async def remove_hook(conn: AsyncConnection, hook_id: int) -> bool:
    """Delete a hook with its outbox rows."""
    await conn.execute(_d.delete().where(_d.c.webhook_id == hook_id))
    return bool((await conn.execute(_h.delete().where(_h.c.id == hook_id))).rowcount)


async def list_hooks(conn: AsyncConnection, campaign_ids: frozenset[int] | None = None) -> list[dict]:
    """Hooks (never their secrets; URLs with credentials masked) with their outbox counts."""
    counts: dict[tuple[int, str], int] = {
        (h, s): n for h, s, n in (await conn.execute(
            select(_d.c.webhook_id, _d.c.status, func.count()).group_by(_d.c.webhook_id, _d.c.status))).all()}
    q = (select(_h.c.id, _h.c.campaign_id, _c.c.name.label("campaign"), _h.c.url, _h.c.active, _h.c.created_at,
                _h.c.cursor_at).join(_c, _c.c.id == _h.c.campaign_id).order_by(_h.c.id))
    if campaign_ids is not None:
        q = q.where(_h.c.campaign_id.in_(sorted(campaign_ids)))
    return [{**dict(r._mapping), "url": shown_url(r.url),
             **{s: counts.get((r.id, s), 0) for s in STATUSES}} for r in (await conn.execute(q)).all()]


# --- the scan --------------------------------------------------------------------------------


def _insert_ignoring_duplicates(conn: AsyncConnection):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(_d).on_conflict_do_nothing(index_elements=["webhook_id", "attempt_id"])


async def fill(conn: AsyncConnection, now: dt.datetime | None = None, batch: int = SCAN_BATCH) -> int:
    """Put the newly final attempts of every active hook's campaign in the outbox; returns how many."""
    now = now or utcnow()
    hooks = (await conn.execute(
        select(_h.c.id, _h.c.campaign_id, _h.c.cursor_at, _h.c.created_at, _c.c.name)
        .join(_c, _c.c.id == _h.c.campaign_id).where(_h.c.active.is_(True)))).all()
    added = 0
    for hook in hooks:
        added += await _fill_hook(conn, hook, now, batch)
    return added


async def _fill_hook(conn: AsyncConnection, hook, now: dt.datetime, batch: int) -> int:
    start = hook.created_at if hook.cursor_at is None else max(hook.created_at, hook.cursor_at - LOOKBACK)
    taken = select(_d.c.id).where(_d.c.webhook_id == hook.id, _d.c.attempt_id == _a.c.id).exists()
    rows = (await conn.execute(
        select(*(_a.c[f] for f in ATTEMPT_FIELDS), _a.c.contact_id, _ct.c.external_id)
        .join(_ct, _ct.c.id == _a.c.contact_id)
        .where(_a.c.campaign_id == hook.campaign_id, _a.c.result.is_not(None), _a.c.ended_at >= start, ~taken)
        .order_by(_a.c.ended_at, _a.c.id).limit(batch))).all()
    if not rows:
        return 0
    campaign = {"id": hook.campaign_id, "name": hook.name}
    messages = []
    for r in rows:
        attempt = {f: getattr(r, f) for f in ATTEMPT_FIELDS}
        attempt["result_label"] = Result(r.result).label
        messages.append({
            "webhook_id": hook.id, "attempt_id": r.id, "status": PENDING, "tries": 0, "next_try_at": now,
            "created_at": now, "last_status": None, "last_error": None, "delivered_at": None,
            "payload": signing.body(campaign, attempt, {"id": r.contact_id, "external_id": r.external_id}),
        })
    await conn.execute(_insert_ignoring_duplicates(conn), messages)
    newest = min(max(r.ended_at for r in rows), now)
    if hook.cursor_at is None or newest > hook.cursor_at:
        await conn.execute(update(_h).where(_h.c.id == hook.id).values(cursor_at=newest))
    return len(rows)


# --- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    id: int
    webhook_id: int
    url: str
    secret: str
    payload: str
    tries: int


async def claim_due(conn: AsyncConnection, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Due]:
    """Pending messages whose time has come, claimed until ``now + lease`` (a try sets the real next time)."""
    active = select(_h.c.id).where(_h.c.active.is_(True))
    ids = (select(_d.c.id)
           .where(_d.c.status == PENDING, _d.c.next_try_at <= now, _d.c.webhook_id.in_(active))
           .order_by(_d.c.next_try_at, _d.c.id).limit(limit).with_for_update(skip_locked=True))
    claimed = (await conn.execute(
        update(_d).where(_d.c.id.in_(ids.scalar_subquery())).values(next_try_at=now + lease)
        .returning(_d.c.id, _d.c.webhook_id, _d.c.payload, _d.c.tries))).all()
    if not claimed:
        return []
    hooks = {h.id: h for h in (await conn.execute(
        select(_h.c.id, _h.c.url, _h.c.secret).where(_h.c.id.in_({c.webhook_id for c in claimed})))).all()}
    return [Due(c.id, c.webhook_id, hooks[c.webhook_id].url, hooks[c.webhook_id].secret, c.payload, c.tries)
            for c in sorted(claimed, key=lambda c: c.id)]


async def record_try(conn: AsyncConnection, due: Due, *, ok: bool, status: int | None, error: str | None,
                     now: dt.datetime, retry_delay=signing.retry_delay) -> str:
    """The outcome of one try: delivered, pending again after the backoff, or failed for good."""
    tries = due.tries + 1
    if ok:
        state, next_at = DELIVERED, now
    else:
        delay = retry_delay(tries)
        state, next_at = (FAILED, now) if delay is None else (PENDING, now + delay)
    await conn.execute(update(_d).where(_d.c.id == due.id).values(
        status=state, tries=tries, next_try_at=next_at, last_status=status,
        last_error=None if ok else (error or f"HTTP {status}")[:500], delivered_at=now if ok else None))
    return state


async def list_deliveries(conn: AsyncConnection, *, status: str | None = None, hook_id: int | None = None,
                          campaign_ids: frozenset[int] | None = None, limit: int | None = 100) -> list[dict]:
    q = (select(_d.c.id, _d.c.webhook_id, _h.c.campaign_id, _d.c.attempt_id, _d.c.status, _d.c.tries,
                _d.c.next_try_at, _d.c.last_status, _d.c.last_error, _d.c.created_at, _d.c.delivered_at)
         .join(_h, _h.c.id == _d.c.webhook_id).order_by(_d.c.id.desc()))
    if status:
        q = q.where(_d.c.status == status)
    if hook_id is not None:
        q = q.where(_d.c.webhook_id == hook_id)
    if campaign_ids is not None:
        q = q.where(_h.c.campaign_id.in_(sorted(campaign_ids)))
    if limit:
        q = q.limit(limit)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]


async def retry_failed(conn: AsyncConnection, hook_id: int | None = None, delivery_id: int | None = None,
                       now: dt.datetime | None = None) -> int:
    """Failed messages become pending again, due now, with their tries counted from zero."""
    q = update(_d).where(_d.c.status == FAILED)
    if hook_id is not None:
        q = q.where(_d.c.webhook_id == hook_id)
    if delivery_id is not None:
        q = q.where(_d.c.id == delivery_id)
    res = await conn.execute(q.values(status=PENDING, tries=0, next_try_at=now or utcnow()))
    return res.rowcount or 0
