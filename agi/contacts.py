"""One contact of a campaign: read it with its attempts, change its fields, delete it.

Adding contacts is the import's job, one path for a file and for the API
(``agi.importer.import_records``). A contact is shared by the campaigns it belongs to
(the import's identity rule): a change of its fields shows in each of them, and the
originator checks the changed phones again right before dialing. Deleting acts on the
membership: its state becomes ``deleted``, an admin's decision that late call reports
leave alone (agi.db.attempts).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.db.models import Attempt, Campaign, CampaignContact, Contact, utcnow
from agi.importer import Row, RowIssue, field_text, make_row, mark_dnc
from agi.outcomes import PHONE_FIELDS, ContactState
from agi.rules.predial import Dialable, DialPolicy, check_contact

_ct = Contact.__table__
_cc = CampaignContact.__table__
_a = Attempt.__table__
_camp = Campaign.__table__

# fields a client may change; the identity (dedupe key, external id) stays what the import made it
EDITABLE = ("first_name", "last_name", *PHONE_FIELDS, "dnc", "custom")
_WAITING = (ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value)
ATTEMPT_FIELDS = ("id", "attempt_no", "number", "dialer", "queued_at", "originated_at", "answered_at", "ended_at",
                  "result", "routing", "disposition", "callback_at", "talk_seconds", "agent", "hangup_cause",
                  "detail")


async def _membership(conn: AsyncConnection, campaign_id: int, contact_id: int):
    return (await conn.execute(
        select(_cc).where(_cc.c.campaign_id == campaign_id, _cc.c.contact_id == contact_id))).first()


async def get_contact(conn: AsyncConnection, campaign_id: int, contact_id: int) -> dict | None:
    """The contact, its membership of the campaign and its attempts there (oldest first), or None."""
    member = await _membership(conn, campaign_id, contact_id)
    if member is None:
        return None
    contact = (await conn.execute(select(_ct).where(_ct.c.id == contact_id))).one()
    attempts = (await conn.execute(
        select(*(_a.c[f] for f in ATTEMPT_FIELDS))
        .where(_a.c.campaign_id == campaign_id, _a.c.contact_id == contact_id)
        .order_by(_a.c.queued_at, _a.c.attempt_no))).all()
    return {
        "contact_id": contact.id,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        **{p: getattr(contact, p) for p in PHONE_FIELDS},
        "dnc": contact.dnc,
        "custom": contact.custom or {},
        "created_at": contact.created_at,
        "state": member.state,
        "number": member.number,
        "timezone": member.timezone,
        "attempts_counted": member.attempts,
        "next_attempt_at": member.next_attempt_at,
        "last_result": member.last_result,
        "attempts": [dict(r._mapping) for r in attempts],
    }


async def find_by_external_id(conn: AsyncConnection, campaign_id: int, external_id: str) -> list[int]:
    """Contact ids of the campaign's members with this external id."""
    rows = await conn.execute(
        select(_ct.c.id).join(_cc, _cc.c.contact_id == _ct.c.id)
        .where(_cc.c.campaign_id == campaign_id, _ct.c.external_id == external_id).order_by(_ct.c.id))
    return list(rows.scalars())


async def update_contact(conn: AsyncConnection, campaign_id: int, contact_id: int,
                         changes: Mapping[str, Any], now: dt.datetime | None = None) -> dict:
    """Change EDITABLE fields (the import's checks of each value apply); returns
    {field: [old, new]}. A waiting membership in this campaign gets its new number when the
    changed phones pass the pre-dial check; otherwise the check right before dialing decides."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise AdminError(f"cannot change {', '.join(unknown)}: only {', '.join(EDITABLE)}")
    member = await _membership(conn, campaign_id, contact_id)
    if member is None:
        raise LookupError(contact_id)
    contact = (await conn.execute(select(_ct).where(_ct.c.id == contact_id))).one()
    checked = _checked({f: getattr(contact, f) for f in EDITABLE} | dict(changes))
    if contact.dnc and not checked.dnc:
        raise AdminError(f"contact {contact_id} is do-not-call: only `dialer dnc remove NUMBER` (DELETE "
                         "/api/v1/dnc/NUMBER) lifts that; nothing was changed")
    values = {"first_name": checked.first_name, "last_name": checked.last_name, **checked.phones,
              "dnc": checked.dnc, "custom": checked.custom}
    diff = {f: [getattr(contact, f), values[f]] for f in values if f in changes and getattr(contact, f) != values[f]}
    if not diff:
        return {}
    await conn.execute(update(_ct).where(_ct.c.id == contact_id).values(**{f: values[f] for f in diff}))
    if "dnc" in diff:  # DNC always wins: at once, in every campaign the contact is in
        await mark_dnc(conn, {contact_id: 0}, now or utcnow(), "the contact was made do-not-call by a change")
        return diff
    if member.state in _WAITING:
        await _renumber(conn, member, checked.phones, checked.dnc, now or utcnow())
    return diff


def _checked(fields: Mapping[str, Any]) -> Row:
    """The contact's fields after the change, through the import's row checks (or AdminError)."""
    texts = {f: field_text(v) for f, v in fields.items() if f != "custom" and v is not None}
    row = make_row(0, texts, dict(fields.get("custom") or {}))
    if isinstance(row, RowIssue):
        raise AdminError(row.detail)
    return row


async def _renumber(conn: AsyncConnection, member, phones: dict, flag: bool, now: dt.datetime) -> None:
    camp = (await conn.execute(select(_camp.c.phone_field, _camp.c.default_region, _camp.c.allowed_countries)
                               .where(_camp.c.id == member.campaign_id))).one()
    verdict = check_contact(phones, flag, DialPolicy.from_campaign(camp))
    if isinstance(verdict, Dialable) and verdict.number != member.number:
        # the window rule derives the zone from the new number itself (timezone None)
        await conn.execute(update(_cc).where(_cc.c.id == member.id)
                           .values(number=verdict.number, timezone=None, updated_at=now))


async def delete_contact(conn: AsyncConnection, campaign_id: int, contact_id: int,
                         now: dt.datetime | None = None) -> dict:
    """The membership's state becomes ``deleted`` (never dialed again; a call in progress ends
    and its result is recorded, the state stays). Idempotent; returns {"was": state}."""
    member = await _membership(conn, campaign_id, contact_id)
    if member is None:
        raise LookupError(contact_id)
    if member.state != ContactState.DELETED.value:
        await conn.execute(update(_cc).where(_cc.c.id == member.id).values(
            state=ContactState.DELETED.value, next_attempt_at=None, updated_at=now or utcnow()))
    return {"contact_id": contact_id, "was": member.state, "state": ContactState.DELETED.value}
