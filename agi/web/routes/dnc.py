"""The do-not-call list: check, add, remove one number; add many (numbers normalised to E.164)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agi import admin
from agi.errors import AdminError
from agi.auth.roles import Permission
from agi.web.context import Caller, require
from agi.web.errors import invalid, not_found

router = APIRouter(prefix="/dnc", tags=["dnc"])
MAX_BATCH = 10_000
REGION = Query("US", min_length=2, max_length=2, description="Region for numbers written without +country code.")


class DncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field("api", max_length=40)


class DncBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numbers: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    source: str = Field("api", max_length=40)
    region: str = Field("US", min_length=2, max_length=2)


def _e164(number: str, region: str) -> str:
    try:
        return admin.normalize_number(number, region)
    except AdminError as exc:
        raise invalid("number", str(exc)) from None


@router.get("/{number}", summary="Is this number on the DNC list?")
async def check(number: str, region: str = REGION, caller: Caller = require(Permission.DNC_CHECK)) -> dict:
    e164 = _e164(number, region)
    async with caller.read() as conn:
        row = await admin.dnc_get(conn, e164)
    return {"number": e164, "listed": row is not None, "source": row.source if row else None,
            "added_at": row.added_at if row else None}


@router.put("/{number}", summary="Put a number on the DNC list (201 added, 200 already there)")
async def add(number: str, response: Response, body: DncIn | None = None, region: str = REGION,
              caller: Caller = require(Permission.DNC_ADD)) -> dict:
    e164 = _e164(number, region)
    source = body.source if body else "api"
    async with caller.change() as session:
        conn = await session.connection()
        added = await admin.dnc_add(conn, e164, source)
        if added:
            await caller.audit(conn, "dnc.add", e164, {"source": source})
    response.status_code = 201 if added else 200
    return {"number": e164, "added": added}


@router.delete("/{number}", summary="Take a number off the DNC list")
async def remove(number: str, region: str = REGION, caller: Caller = require(Permission.DNC_REMOVE)) -> dict:
    e164 = _e164(number, region)
    async with caller.change() as session:
        conn = await session.connection()
        if not await admin.dnc_remove(conn, e164):
            raise not_found(f"{e164} on the DNC list")
        await caller.audit(conn, "dnc.remove", e164)
    return {"number": e164, "removed": True}


@router.post("/batch", summary="Add many numbers; invalid ones are reported by index")
async def add_batch(body: DncBatch, caller: Caller = require(Permission.DNC_ADD)) -> dict:
    issues, added, already = [], 0, 0
    async with caller.change() as session:
        conn = await session.connection()
        for i, raw in enumerate(body.numbers):
            try:
                e164 = admin.normalize_number(raw, body.region)
            except AdminError as exc:
                issues.append({"index": i, "reason": "invalid_number", "detail": str(exc)})
                continue
            if await admin.dnc_add(conn, e164, body.source):
                added += 1
            else:
                already += 1
        await caller.audit(conn, "dnc.add", f"{added} number(s)",
                           {"source": body.source, "added": added, "already_listed": already, "invalid": len(issues)})
    return {"added": added, "already_listed": already, "invalid": len(issues), "issues": issues}
