"""Campaigns: list, show, create and update (the CLI's settings and validation: agi.admin),
schedule, start, stop, cancel (stop by admin: waiting contacts cancelled), assign to dialers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, create_model

from agi import admin
from agi.errors import AdminError
from agi.auth.roles import Permission
from agi.web.context import Caller, require
from agi.web.errors import ApiError

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

SettingValue = str | int | float | bool | list[str | int] | dict[str, str | int | float] | None

# every campaign setting of the CLI (agi.admin.SETTING_OPTIONS), by the CLI option's name
CampaignSettings = create_model(
    "CampaignSettings",
    __config__=ConfigDict(extra="forbid"),
    **{admin.option_dest(o.option): (SettingValue, Field(None, description=f"`{o.option} {o.metavar}`: {o.help}"))
       for o in admin.SETTING_OPTIONS},
)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    copy_from: str | None = Field(None, max_length=200, description="Copy this campaign's settings (`--from`).")
    last_result: str | list[str] | None = Field(
        None, description="With copy_from: copy its contacts whose last result is one of these (`--last-result`).")
    settings: CampaignSettings = Field(default_factory=CampaignSettings)  # type: ignore[valid-type]


class CampaignUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200, description="Rename the campaign.")
    settings: CampaignSettings = Field(default_factory=CampaignSettings)  # type: ignore[valid-type]


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str | None = Field(None, max_length=40, description="YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (in tz) or 'now'.")
    stop: str | None = Field(None, max_length=40, description="YYYY-MM-DD (the whole day) or 'YYYY-MM-DD HH:MM'.")
    days: str | None = Field(None, max_length=80, description="mon-fri, mon,wed,fri, all.")
    hours: str | None = Field(None, max_length=200, description="09:00-17:00 or 09:00-12:00,13:00-17:00.")
    tz: str | None = Field(None, max_length=64, description="IANA time zone of the dates and hours.")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialer: str = Field(max_length=80)
    lines: int | None = Field(None, ge=1)
    remove: bool = False


def setting_text(value: Any) -> str:
    """A JSON value as the CLI option's text: lists comma-joined, maps as K=V, booleans yes/no."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def parse_settings(settings: BaseModel) -> dict:
    """agi.admin.parse_settings, one setting at a time so each error names its field."""
    values: dict = {}
    errors = []
    for key, value in settings.model_dump(exclude_unset=True).items():
        try:
            values.update(admin.parse_settings({key: setting_text(value)}))
        except AdminError as exc:
            errors.append({"field": f"settings.{key}", "reason": str(exc)})
    if errors:
        raise ApiError(422, "invalid campaign settings: see errors", errors)
    return values


@router.get("", summary="List campaigns with their state and contact counts")
async def list_campaigns(caller: Caller = require(Permission.CAMPAIGNS_READ)) -> list[dict]:
    async with caller.change() as session:
        rows = await admin.list_campaigns(session)
    return [r for r in rows if caller.principal.sees(r["id"])]


@router.post("", status_code=201, summary="Create a campaign (the CLI's settings and checks)")
async def create_campaign(body: CampaignCreate, caller: Caller = require(Permission.CAMPAIGNS_WRITE)) -> dict:
    if caller.principal.campaigns is not None:
        raise ApiError(403, "a key scoped to some campaigns cannot create campaigns")
    values = parse_settings(body.settings)
    codes = None
    if body.last_result:
        text = body.last_result if isinstance(body.last_result, str) else ",".join(body.last_result)
        codes = admin.parse_last_results(text)
    async with caller.change() as session:
        conn = await session.connection()
        source = str((await caller.campaign(conn, body.copy_from)).id) if body.copy_from else None
        campaign, copied = await admin.create_campaign(session, body.name, values, source, codes)
        await caller.audit(conn, "campaign.create", f"campaign {campaign.name}",
                           {"settings": body.settings.model_dump(exclude_unset=True), "copy_from": body.copy_from,
                            "last_result": codes, "contacts_copied": copied})
        out = await admin.show_campaign(session, str(campaign.id))
    return {**out, "contacts_copied": copied}


@router.get("/{campaign}", summary="A campaign: settings, state per dialer, contact counts")
async def show_campaign(campaign: str, caller: Caller = require(Permission.CAMPAIGNS_READ)) -> dict:
    async with caller.change() as session:
        row = await caller.campaign(await session.connection(), campaign)
        return await admin.show_campaign(session, str(row.id))


@router.patch("/{campaign}", summary="Change settings or the name (the CLI's checks)")
async def update_campaign(campaign: str, body: CampaignUpdate,
                          caller: Caller = require(Permission.CAMPAIGNS_WRITE)) -> dict:
    values = parse_settings(body.settings)
    if not values and body.name is None:
        raise ApiError(422, "nothing to change: give a name or settings", [{"field": "settings", "reason": "empty"}])
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        changes = await admin.set_campaign(session, str(row.id), values, body.name)
        if changes:
            await caller.audit(conn, "campaign.update", f"campaign {row.name}",
                               {k: {"old": old, "new": new} for k, (old, new) in changes.items()})
    return {"changed": {k: {"old": old, "new": new} for k, (old, new) in changes.items()}}


async def _lifecycle(caller: Caller, campaign: str, action: str, work) -> dict:
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        try:
            out = await work(session, str(row.id))
        except AdminError as exc:
            raise ApiError(409, str(exc)) from None
        await caller.audit(conn, f"campaign.{action}", f"campaign {row.name}", {
            k: v for k, v in out.items() if k not in ("campaign",)})
    return out


@router.post("/{campaign}/schedule", summary="Set dates and daily hours (an unscheduled campaign becomes scheduled)")
async def schedule_campaign(campaign: str, body: ScheduleIn,
                            caller: Caller = require(Permission.CAMPAIGNS_RUN)) -> dict:
    return await _lifecycle(caller, campaign, "schedule", lambda s, ref: admin.schedule_campaign(
        s, ref, body.start, body.stop, body.days, body.hours, body.tz))


@router.post("/{campaign}/start", summary="Start: scheduled, stopped or completed -> running")
async def start_campaign(campaign: str, caller: Caller = require(Permission.CAMPAIGNS_RUN)) -> dict:
    return await _lifecycle(caller, campaign, "start", admin.start_campaign)


@router.post("/{campaign}/stop", summary="Stop: no new calls; calls in progress finish")
async def stop_campaign(campaign: str, caller: Caller = require(Permission.CAMPAIGNS_RUN)) -> dict:
    return await _lifecycle(caller, campaign, "stop", admin.stop_campaign)


@router.post("/{campaign}/cancel", summary="Cancel (stop by admin): the contacts still waiting become cancelled")
async def cancel_campaign(campaign: str, caller: Caller = require(Permission.CAMPAIGNS_WRITE)) -> dict:
    return await _lifecycle(caller, campaign, "cancel", lambda s, ref: admin.stop_campaign(s, ref, admin=True))


@router.post("/{campaign}/assign", summary="Run the campaign on a dialer (or remove it from one)")
async def assign_campaign(campaign: str, body: AssignIn, caller: Caller = require(Permission.CAMPAIGNS_WRITE)) -> dict:
    return await _lifecycle(caller, campaign, "assign", lambda s, ref: admin.assign_campaign(
        s, ref, body.dialer, body.lines, body.remove))
