"""The audit log, newest first (also `dialer audit`)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from agi import audit
from agi.admin.text import parse_when
from agi.errors import AdminError
from agi.auth.roles import Permission
from agi.web.context import Caller, require
from agi.web.errors import invalid

router = APIRouter(tags=["audit"])


@router.get("/audit", summary="Changes made through the API or the CLI: who, what, when, from where")
async def entries(
    since: str | None = Query(None, alias="from", max_length=40),
    until: str | None = Query(None, alias="to", max_length=40),
    actor: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=80, description="An action or its prefix, e.g. campaign."),
    limit: int = Query(100, ge=1, le=10_000),
    caller: Caller = require(Permission.AUDIT_READ),
) -> list[dict]:
    try:
        start = parse_when(since) if since else None
        end = parse_when(until, end_of_day=True) if until else None
    except AdminError as exc:
        raise invalid("from/to", str(exc)) from None
    async with caller.read() as conn:
        return await audit.list_entries(conn, since=start, until=end, actor=actor, action=action, limit=limit)
