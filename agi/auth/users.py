"""Users: add, change, remove, list; password login for the console (``authenticate``).

Plain async functions over a Core connection in the caller's transaction; user-facing
errors are ``AdminError`` with what to do.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.auth.passwords import check_strength, hash_password, needs_rehash, verify_password
from agi.auth.roles import Principal, Role
from agi.db.models import ApiKey, User, utcnow

_u = User.__table__
_k = ApiKey.__table__
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,79}")


def parse_role(text: str) -> Role:
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def _check_password(password: str) -> None:
    try:
        check_strength(password)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


async def get_user(conn: AsyncConnection, name: str):
    row = (await conn.execute(select(_u).where(_u.c.name == name.strip()))).first()
    if row is None:
        raise AdminError(f"no user {name!r}; see `dialer users list`")
    return row


async def add_user(conn: AsyncConnection, name: str, role: str, password: str | None = None) -> dict:
    name = name.strip()
    if not NAME.fullmatch(name):
        raise AdminError(f"bad user name {name!r}: 1 to 80 letters, digits, '.', '_', '@' or '-'")
    parsed = parse_role(role)
    if password is not None:
        _check_password(password)
    if (await conn.execute(select(_u.c.id).where(_u.c.name == name))).first():
        raise AdminError(f"user {name!r} already exists; change it with `dialer users set`")
    await conn.execute(_u.insert().values(
        name=name, role=parsed.value, password_hash=hash_password(password) if password else None,
        disabled=False, created_at=utcnow()))
    return {"name": name, "role": parsed.value, "password": password is not None}


async def set_user(conn: AsyncConnection, name: str, role: str | None = None, disabled: bool | None = None,
                   password: str | None = None) -> dict:
    """Change a user's role, enable/disable them, or set a password. Keys above a lowered role
    are lowered with it (a key never outranks its user)."""
    user = await get_user(conn, name)
    values: dict = {}
    if role is not None:
        values["role"] = parse_role(role).value
    if disabled is not None:
        values["disabled"] = disabled
    if password is not None:
        _check_password(password)
        values["password_hash"] = hash_password(password)
    if not values:
        raise AdminError("nothing to change: give --role, --disable/--enable or --password")
    await conn.execute(update(_u).where(_u.c.id == user.id).values(**values))
    lowered = 0
    if "role" in values:
        new = Role(values["role"])
        higher = [r.value for r in Role if r.rank > new.rank]
        lowered = (await conn.execute(update(_k).where(_k.c.user_id == user.id, _k.c.role.in_(higher))
                                      .values(role=new.value))).rowcount or 0
    return {"name": user.name, **{k: v for k, v in values.items() if k != "password_hash"},
            "password_changed": password is not None, "keys_lowered": lowered}


async def remove_user(conn: AsyncConnection, name: str) -> dict:
    user = await get_user(conn, name)
    keys = (await conn.execute(select(func.count()).select_from(_k).where(_k.c.user_id == user.id))).scalar_one()
    await conn.execute(delete(_k).where(_k.c.user_id == user.id))
    await conn.execute(delete(_u).where(_u.c.id == user.id))
    return {"name": user.name, "keys_removed": keys}


async def list_users(conn: AsyncConnection) -> list[dict]:
    keys = dict((await conn.execute(
        select(_k.c.user_id, func.count()).where(_k.c.revoked_at.is_(None)).group_by(_k.c.user_id))).all())
    rows = (await conn.execute(select(_u).order_by(_u.c.name))).all()
    return [{"name": r.name, "role": r.role, "disabled": r.disabled, "password": r.password_hash is not None,
             "keys": keys.get(r.id, 0), "created_at": r.created_at, "last_login_at": r.last_login_at}
            for r in rows]


async def authenticate(conn: AsyncConnection, name: str, password: str,
                       now: dt.datetime | None = None) -> Principal | None:
    """The user's Principal when the password matches and the user is enabled, else None
    (the same time spent either way). Stamps the login; re-hashes an outdated hash."""
    row = (await conn.execute(select(_u).where(_u.c.name == name.strip()))).first()
    ok = verify_password(row.password_hash if row else None, password)
    if not ok or row is None or row.disabled:
        return None
    values: dict = {"last_login_at": now or utcnow()}
    if needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    await conn.execute(update(_u).where(_u.c.id == row.id).values(**values))
    return Principal(user=row.name, role=Role(row.role))
