"""Webhooks of a campaign: add (the signing secret is shown once), list, remove, their deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from agi.auth.roles import Permission
from agi.web.context import Caller, require
from agi.web.errors import invalid, not_found
from agi.webhooks import outbox

router = APIRouter(tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="http(s) URL that receives each final attempt (POST, JSON).")


@router.get("/campaigns/{campaign}/webhooks", summary="The campaign's webhooks with their outbox counts")
async def list_hooks(campaign: str, caller: Caller = require(Permission.WEBHOOKS)) -> list[dict]:
    async with caller.read() as conn:
        row = await caller.campaign(conn, campaign)
        return await outbox.list_hooks(conn, frozenset({row.id}))


@router.post("/campaigns/{campaign}/webhooks", status_code=201,
             summary="Add a webhook; the answer holds its signing secret, shown this once")
async def add_hook(campaign: str, body: WebhookIn, caller: Caller = require(Permission.WEBHOOKS)) -> dict:
    try:
        url = outbox.check_url(body.url)
    except ValueError as exc:
        raise invalid("url", str(exc)) from None
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        hook = await outbox.add_hook(conn, row.id, url)
        await caller.audit(conn, "webhook.add", f"campaign {row.name} webhook {hook['id']}",
                           {"url": outbox.shown_url(url)})
    return hook


async def _hook(caller: Caller, conn, hook_id: int):
    hook = await outbox.get_hook(conn, hook_id)
    if hook is None or not caller.principal.sees(hook.campaign_id):
        raise not_found(f"webhook {hook_id}")
    return hook


@router.delete("/webhooks/{hook_id}", summary="Remove a webhook and its outbox")
async def remove_hook(hook_id: int, caller: Caller = require(Permission.WEBHOOKS)) -> dict:
    async with caller.change() as session:
        conn = await session.connection()
        hook = await _hook(caller, conn, hook_id)
        await outbox.remove_hook(conn, hook_id)
        await caller.audit(conn, "webhook.remove", f"webhook {hook_id}", {"url": outbox.shown_url(hook.url)})
    return {"id": hook_id, "removed": True}


@router.get("/webhooks/{hook_id}/deliveries", summary="A webhook's deliveries, newest first")
async def deliveries(hook_id: int, status: str | None = Query(None, pattern="^(pending|delivered|failed)$"),
                     limit: int = Query(100, ge=1, le=10_000),
                     caller: Caller = require(Permission.WEBHOOKS)) -> list[dict]:
    async with caller.read() as conn:
        await _hook(caller, conn, hook_id)
        return await outbox.list_deliveries(conn, status=status, hook_id=hook_id, limit=limit)
