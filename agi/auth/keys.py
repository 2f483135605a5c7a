"""API keys: ``dk_<key id>_<secret>``, shown once at creation; only a SHA-256 of the secret is kept.

The secret is 32 random bytes, so a fast hash is enough (nothing to brute-force, unlike a
password) and every request can afford the check. The key id is public: lists, the audit
log and the logs name a key by it. A key has a role no higher than its user's, may be scoped
to some campaigns, and stops working when revoked or when its user is disabled or removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.auth.roles import Principal, Role
from agi.auth.users import get_user, parse_role
from agi.db.models import ApiKey, User, utcnow
from agi.admin.campaigns import find_campaign
from agi.db.models import Campaign

_k = ApiKey.__table__
_u = User.__table__
PREFIX = "dk"
_KEY = re.compile(rf"{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})")
# last_used_at is written at most this often per key (not one write per request)
TOUCH_EVERY = dt.timedelta(seconds=60)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(key id, secret, the whole key)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}_{key_id}_{secret}"


def split_key(presented: str) -> tuple[str, str] | None:
    m = _KEY.fullmatch(presented.strip())
    return (m.group(1), m.group(2)) if m else None


async def campaign_ids(conn: AsyncConnection, refs: list[str]) -> list[int]:
    """Campaign names or ids -> ids (each must exist)."""
    return sorted({(await find_campaign(conn, ref, Campaign.id)).id for ref in refs if ref.strip()})


async def create_key(conn: AsyncConnection, user: str, name: str, role: str | None = None,
                     campaigns: list[str] | None = None) -> dict:
    """A new key for ``user``; the returned dict holds the whole key, the only time it exists."""
    owner = await get_user(conn, user)
    owner_role = Role(owner.role)
    chosen = parse_role(role) if role else owner_role
    if chosen.rank > owner_role.rank:
        raise AdminError(f"user {owner.name!r} is {owner_role.value}: a key cannot be {chosen.value}")
    name = name.strip()
    if not 0 < len(name) <= 80:
        raise AdminError("a key needs a name of 1 to 80 characters (what it is for, e.g. crm-sync)")
    scope = await campaign_ids(conn, campaigns) if campaigns else None
    key_id, secret, whole = new_key()
    await conn.execute(_k.insert().values(
        key_id=key_id, user_id=owner.id, name=name, role=chosen.value, campaigns=scope,
        secret_hash=hash_secret(secret), created_at=utcnow()))
    return {"key": whole, "key_id": key_id, "user": owner.name, "name": name, "role": chosen.value,
            "campaigns": scope}


async def revoke_key(conn: AsyncConnection, key_id: str, now: dt.datetime | None = None) -> dict:
    row = (await conn.execute(select(_k.c.id, _k.c.name, _k.c.revoked_at).where(_k.c.key_id == key_id.strip()))).first()
    if row is None:
        raise AdminError(f"no key {key_id!r}; see `dialer keys list`")
    if row.revoked_at is None:
        await conn.execute(update(_k).where(_k.c.id == row.id).values(revoked_at=now or utcnow()))
    return {"key_id": key_id.strip(), "name": row.name, "was_revoked": row.revoked_at is not None}


async def list_keys(conn: AsyncConnection, user: str | None = None) -> list[dict]:
    q = (select(_k.c.key_id, _k.c.name, _k.c.role, _k.c.campaigns, _k.c.created_at, _k.c.last_used_at,
                _k.c.revoked_at, _u.c.name.label("user"))
         .join(_u, _u.c.id == _k.c.user_id).order_by(_u.c.name, _k.c.created_at))
    if user:
        q = q.where(_u.c.name == user.strip())
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]


_LOOKUP = (select(_k.c.id, _k.c.key_id, _k.c.name, _k.c.role, _k.c.campaigns, _k.c.secret_hash,
                  _k.c.last_used_at, _k.c.revoked_at, _u.c.name.label("user"), _u.c.role.label("user_role"),
                  _u.c.disabled)
           .join(_u, _u.c.id == _k.c.user_id))


async def authenticate(conn: AsyncConnection, presented: str, now: dt.datetime | None = None) -> Principal | None:
    """The Principal of a valid, unrevoked key of an enabled user, or None. Stamps last use
    (at most once a minute)."""
    parts = split_key(presented)
    if parts is None:
        return None
    key_id, secret = parts
    row = (await conn.execute(_LOOKUP.where(_k.c.key_id == key_id))).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
        return None
    if row.revoked_at is not None or row.disabled:
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        await conn.execute(update(_k).where(_k.c.id == row.id).values(last_used_at=now))
    role = min(Role(row.role), Role(row.user_role), key=lambda r: r.rank)  # never above the user
    scope = frozenset(row.campaigns) if row.campaigns is not None else None
    return Principal(user=row.user, role=role, campaigns=scope, key_id=row.key_id, key_name=row.name)
