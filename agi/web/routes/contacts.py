"""A campaign's contacts: add one or a batch (the CSV import's path: agi.importer.import_records),
list, get one with its attempts, change fields, delete (state ``deleted``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agi import contacts, importer, reports
from agi.auth.roles import Permission
from agi.outcomes import ContactState, Result
from agi.web.context import Caller, require
from agi.web.errors import ApiError, not_found

router = APIRouter(prefix="/campaigns/{campaign}/contacts", tags=["contacts"])

MAX_BATCH = 50_000
MAX_CUSTOM = 100
CustomValue = str | int | float | bool


class ContactIn(BaseModel):
    """One contact, as a CSV row would hold it (the import checks every value the same way)."""

    model_config = ConfigDict(extra="forbid")
    external_id: str | None = Field(None, description="Your id: the contact's identity (re-adding it changes nothing).")
    first_name: str | None = None
    last_name: str | None = None
    home: str | None = None
    work: str | None = None
    cell: str | None = None
    phone: str | None = None
    dnc: bool | str | None = Field(None, description="The contact's own do-not-call flag.")
    custom: dict[str, CustomValue] | None = Field(None, max_length=MAX_CUSTOM, description="Other fields, kept as given.")


class ContactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_BATCH)


class ContactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: str | None = None
    last_name: str | None = None
    home: str | None = None
    work: str | None = None
    cell: str | None = None
    phone: str | None = None
    dnc: bool | str | None = None
    custom: dict[str, CustomValue] | None = Field(None, max_length=MAX_CUSTOM)


def _report(report: importer.ImportReport, count: int) -> dict:
    data = report.as_dict()
    data["issues"] = [{"index": i.line, "reason": i.reason, "detail": i.detail} for i in report.issues]
    data["contact_ids"] = [report.contact_ids.get(i) for i in range(count)]
    return data


@router.post("/batch", summary="Add contacts: the CSV import's checks, identity, pre-dial and DNC rules")
async def add_batch(campaign: str, body: ContactBatch, caller: Caller = require(Permission.CONTACTS_WRITE)) -> dict:
    """Good records become pending contacts; records with a pre-dial result (no phone, DNC,
    invalid number, forbidden country) are added as skipped and counted in the summary;
    malformed records are only reported; a contact already in the campaign changes nothing.
    Each issue names the record's index in ``contacts``."""
    records = [c.model_dump(exclude_none=True) for c in body.contacts]
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        report = await importer.import_records(conn, row.id, records)
        out = _report(report, len(records))
        await caller.audit(conn, "contacts.add", f"campaign {row.name}", {
            k: out[k] for k in ("rows", "imported", "predial", "duplicates", "malformed", "new_contacts")})
    return out


@router.post("", status_code=201, summary="Add one contact (as one record of a batch)")
async def add_one(campaign: str, body: ContactIn, response: Response,
                  caller: Caller = require(Permission.CONTACTS_WRITE)) -> dict:
    """201 with the contact when it joined the campaign (pending, or skipped with its pre-dial
    result); 200 when it was already there; 422 when a value is malformed."""
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        report = await importer.import_records(conn, row.id, [body.model_dump(exclude_none=True)])
        if report.malformed:
            issue = report.issues[0]
            raise ApiError(422, issue.detail, [{"field": None, "reason": issue.detail}])
        contact_id = report.contact_ids[0]
        joined = report.imported or sum(report.predial.values())
        status = "added" if joined else "updated" if report.updated or report.marked_dnc else "duplicate"
        await caller.audit(conn, "contacts.add", f"campaign {row.name} contact {contact_id}",
                           {"external_id": body.external_id, "status": status})
        detail = await contacts.get_contact(conn, row.id, contact_id)
    if status != "added":
        response.status_code = 200
    issue = next((i for i in report.issues if i.reason in {r.value for r in Result}), None)
    return {"status": status, "predial": issue.reason if issue else None, "why": issue.detail if issue else None,
            **detail}


@router.get("", summary="List the campaign's contacts (by state, or by your external id)")
async def list_contacts(
    campaign: str,
    state: str | None = Query(None, max_length=200, description="States, comma-separated: "
                              + ", ".join(s.value for s in ContactState)),
    external_id: str | None = Query(None, max_length=120),
    limit: int = Query(100, ge=1, le=10_000),
    caller: Caller = require(Permission.CONTACTS_READ),
) -> list[dict]:
    async with caller.read() as conn:
        row = await caller.campaign(conn, campaign)
        if external_id is not None:
            ids = await contacts.find_by_external_id(conn, row.id, external_id)
            return [await contacts.get_contact(conn, row.id, i) for i in ids[:limit]]
        return await reports.list_contacts(conn, row.id, state, limit)


@router.get("/{contact_id}", summary="One contact with its state and attempts")
async def get_contact(campaign: str, contact_id: int, caller: Caller = require(Permission.CONTACTS_READ)) -> dict:
    async with caller.read() as conn:
        row = await caller.campaign(conn, campaign)
        found = await contacts.get_contact(conn, row.id, contact_id)
    if found is None:
        raise not_found(f"contact {contact_id} in campaign {row.name!r}")
    return found


@router.patch("/{contact_id}", summary="Change a contact's fields (shared by the campaigns it is in)")
async def update_contact(campaign: str, contact_id: int, body: ContactPatch,
                         caller: Caller = require(Permission.CONTACTS_WRITE)) -> dict:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ApiError(422, "nothing to change", [{"field": None, "reason": "give at least one field"}])
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        try:
            diff = await contacts.update_contact(conn, row.id, contact_id, changes)
        except LookupError:
            raise not_found(f"contact {contact_id} in campaign {row.name!r}") from None
        if diff:
            await caller.audit(conn, "contacts.update", f"campaign {row.name} contact {contact_id}",
                               {k: {"old": o, "new": n} for k, (o, n) in diff.items()})
        found = await contacts.get_contact(conn, row.id, contact_id)
    return {"changed": sorted(diff), **found}


@router.delete("/{contact_id}", summary="Delete a contact from the campaign (state deleted: never dialed again)")
async def delete_contact(campaign: str, contact_id: int, caller: Caller = require(Permission.CONTACTS_WRITE)) -> dict:
    async with caller.change() as session:
        conn = await session.connection()
        row = await caller.campaign(conn, campaign)
        try:
            out = await contacts.delete_contact(conn, row.id, contact_id)
        except LookupError:
            raise not_found(f"contact {contact_id} in campaign {row.name!r}") from None
        await caller.audit(conn, "contacts.delete", f"campaign {row.name} contact {contact_id}", {"was": out["was"]})
    return out
