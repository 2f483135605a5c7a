"""An attempt's disposition, set by an agent working in a CRM (agi.dispositions)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from agi import dispositions
from agi.errors import AdminError
from agi.auth.roles import Permission
from agi.db import attempts as db
from agi.db.models import utcnow
from agi.outcomes import Disposition
from agi.web.context import Caller, require
from agi.web.errors import invalid, not_found

router = APIRouter(prefix="/attempts", tags=["dispositions"])


class DispositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposition: str = Field(max_length=40, description=", ".join(
        d.value for d in Disposition if d not in dispositions.NOT_AN_AGENTS))
    callback_at: dt.datetime | None = Field(None, description="For call_back: when (ISO time with offset; "
                                                              "default tomorrow, same time).")


@router.post("/{attempt_id}/disposition", summary="Set the disposition of a call (the agent's word wins)")
async def dispose(attempt_id: str, body: DispositionIn, caller: Caller = require(Permission.DISPOSE)) -> dict:
    try:
        choice = dispositions.parse_agent_disposition(body.disposition)
    except AdminError as exc:
        raise invalid("disposition", str(exc)) from None
    when = body.callback_at
    if when is not None and when.tzinfo is None:
        raise invalid("callback_at", "give the time zone, e.g. 2026-12-01T15:00:00+00:00")
    async with caller.change() as session:
        conn = await session.connection()
        found = await db.get_attempt(conn, attempt_id[:36])
        if found is None or not caller.principal.sees(found.campaign_id):
            raise not_found(f"attempt {attempt_id!r}")
        try:
            attempt = await dispositions.dispose(conn, found.id, choice, when, now=utcnow())
        except AdminError as exc:
            raise invalid("disposition" if "call-back" not in str(exc) else "callback_at", str(exc)) from None
        await caller.audit(conn, "attempt.dispose", f"attempt {attempt.id}",
                           {"disposition": choice.value, "callback_at": attempt.callback_at})
    return {"attempt": attempt.id, "disposition": attempt.disposition.value, "callback_at": attempt.callback_at,
            "result": attempt.result.value if attempt.result else None}
