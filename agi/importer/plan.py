"""What one batch of rows does to the database, decided without touching it (pure).

Given the batch's rows, the contacts already stored under their identities, their memberships
of this campaign and the DNC-listed numbers among theirs, each row is one of:

- a new contact: stored, and joins the campaign pending, or skipped with its pre-dial result;
- an existing contact not in this campaign: joins it (checked on its fields after this row);
- an existing contact already in the campaign: a duplicate, nothing changes, unless the row
  says something new:
  - ``dnc=yes`` on a contact not yet DNC makes it DNC at once, in every campaign it is in
    (DNC always wins, docs/outcomes.md "Pre-dial results"); nothing in a row turns it back;
  - a row matched by external id with changed fields updates those fields (``--update``).

Running the same rows again after their batch committed plans nothing: idempotent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from agi.importer.rows import DUPLICATE, MARKED_DNC, UPDATED, Row, RowIssue, phone_key
from agi.outcomes import PHONE_FIELDS, ContactState, Result
from agi.rules.numbering import PhoneNumber
from agi.rules.predial import Dialable, DialPolicy, check_contact, chosen_phone

WAITING = (ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value)
NAME_FIELDS = ("first_name", "last_name")
Reader = Callable[[str | None, str], PhoneNumber | None]


@dataclass(frozen=True)
class Stored:
    """A contact already in the database."""

    id: int
    dnc: bool
    external_id: str | None
    first_name: str
    last_name: str
    phones: dict
    custom: dict


@dataclass(frozen=True)
class Member:
    """A stored contact's membership of the campaign being imported into."""

    id: int
    state: str
    run_id: int | None
    line: int | None


@dataclass(frozen=True)
class Join:
    """A new membership of the campaign: dialable, or skipped with its pre-dial result."""

    line: int
    key: str
    verdict: Dialable | Result
    number: str | None  # E.164 when valid (the membership's number)
    dialed: str | None  # the number as the pre-dial attempt records it (raw when not valid)
    why: str  # the pre-dial result's detail ("" when dialable)


@dataclass
class Plan:
    new_rows: list[Row] = field(default_factory=list)
    updates: dict[int, dict] = field(default_factory=dict)  # contact id -> {column: new value}
    mark_dnc: dict[int, int] = field(default_factory=dict)  # contact id -> the line that made it DNC
    joins: list[Join] = field(default_factory=list)
    renumber: list[tuple[int, Dialable]] = field(default_factory=list)  # waiting membership -> new number
    issues: list[RowIssue] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    line_keys: list[tuple[int, str]] = field(default_factory=list)  # every row's line -> its contact's key


@dataclass(frozen=True)
class Context:
    policy: DialPolicy
    listed: frozenset[str]  # DNC-listed numbers among the batch's
    stored: dict[str, Stored]  # identity key -> stored contact
    members: dict[int, Member]  # contact id -> membership of this campaign
    run_id: int | None  # this import's run (a membership it made names it)
    update: bool  # --update: rows matched by external id update changed fields
    read: Reader


def plan_batch(rows: list[Row], ctx: Context) -> Plan:
    plan = Plan()
    unique: dict[str, Row] = {}
    for row in rows:
        plan.line_keys.append((row.line, row.dedupe_key))
        first = unique.get(row.dedupe_key)
        if first is None:
            unique[row.dedupe_key] = row
            continue
        plan.counts["duplicates"] += 1
        plan.issues.append(RowIssue(row.line, DUPLICATE, f"same contact as line {first.line}"
                                    + ("; its DNC flag applies" if row.dnc and not first.dnc else "")))
        first.dnc = first.dnc or row.dnc
    for row in unique.values():
        stored = ctx.stored.get(row.dedupe_key)
        if stored is None:
            plan.new_rows.append(row)
            plan.counts["new_contacts"] += 1
            _join(plan, ctx, row.line, row.dedupe_key, row.phones, row.dnc)
        else:
            _existing(plan, ctx, row, stored)
    return plan


def _existing(plan: Plan, ctx: Context, row: Row, stored: Stored) -> None:
    changes = field_changes(stored, row, ctx) if ctx.update and row.external_id else {}
    if changes:
        _updated(plan, row, stored, changes)
    phones = _phones_after(stored, row, changes)
    flag = stored.dnc or row.dnc
    newly_dnc = row.dnc and not stored.dnc
    if newly_dnc:
        _mark_dnc(plan, row, stored)
    member = ctx.members.get(stored.id)
    if member is None:
        _join(plan, ctx, row.line, row.dedupe_key, phones, flag)
    elif not newly_dnc and not changes:
        plan.counts["duplicates"] += 1
        earlier = member.run_id is not None and member.run_id == ctx.run_id
        plan.issues.append(RowIssue(row.line, DUPLICATE, f"same contact as line {member.line}" if earlier
                                    else f"contact {stored.id} is already in the campaign"))
    elif changes and not flag:
        _renumber(plan, ctx, member, phones)


def _phones_after(stored: Stored, row: Row, changes: dict) -> dict:
    """The contact's phones once this row's changes are in."""
    return {p: (row.phones.get(p) if p in changes else stored.phones.get(p)) for p in PHONE_FIELDS}


def _mark_dnc(plan: Plan, row: Row, stored: Stored) -> None:
    plan.mark_dnc[stored.id] = row.line
    plan.counts["marked_dnc"] += 1
    plan.issues.append(RowIssue(row.line, MARKED_DNC, f"contact {stored.id} is do-not-call from now on, in "
                                                      "every campaign it is in"))


def _renumber(plan: Plan, ctx: Context, member: Member, phones: dict) -> None:
    """A waiting membership whose contact's phones changed gets the new number when it is dialable;
    otherwise the check right before dialing decides (as the API's change of a contact does)."""
    if member.state not in WAITING:
        return
    verdict = check_contact(phones, False, ctx.policy, ctx.listed.__contains__, read=ctx.read)
    if isinstance(verdict, Dialable):
        plan.renumber.append((member.id, verdict))


def _updated(plan: Plan, row: Row, stored: Stored, changes: dict[str, tuple]) -> None:
    plan.updates[stored.id] = {name: new for name, (_old, new) in changes.items()}
    plan.counts["updated"] += 1
    plan.issues.append(RowIssue(row.line, UPDATED, "; ".join(
        f"{name}: {_show(old)} -> {_show(new)}" for name, (old, new) in changes.items())))


def field_changes(stored: Stored, row: Row, ctx: Context) -> dict[str, tuple]:
    """{column: (old, new)} of the fields the row gives that differ from the stored contact's
    (phones compared as numbers, not as written; custom fields merged key by key)."""
    given = row.given if row.given is not None else frozenset(("first_name", "last_name", *PHONE_FIELDS))
    out: dict[str, tuple] = {}
    for name in NAME_FIELDS:
        new = getattr(row, name)
        if name in given and new != getattr(stored, name):
            out[name] = (getattr(stored, name), new)
    region = ctx.policy.default_region
    for name in PHONE_FIELDS:
        old, new = stored.phones.get(name), row.phones.get(name)
        if name in given and phone_key(old, region, ctx.read) != phone_key(new, region, ctx.read):
            out[name] = (old, new)
    merged = {**(stored.custom or {}), **row.custom}
    if merged != (stored.custom or {}):
        out["custom"] = (stored.custom or {}, merged)
    return out


def _show(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return repr(value) if value else "(empty)"


def _join(plan: Plan, ctx: Context, line: int, key: str, phones: dict, flag: bool) -> None:
    verdict = check_contact(phones, flag, ctx.policy, ctx.listed.__contains__, read=ctx.read)
    if isinstance(verdict, Dialable):
        plan.counts["imported"] += 1
        if len(verdict.timezones) > 1:
            plan.counts["ambiguous_zone"] += 1
        plan.joins.append(Join(line, key, verdict, verdict.number, verdict.number, ""))
        return
    e164, dialed, why = describe(verdict, phones, flag, ctx)
    plan.counts["predial." + verdict.value] += 1
    plan.issues.append(RowIssue(line, verdict.value, why))
    plan.joins.append(Join(line, key, verdict, e164, dialed, why))


def describe(result: Result, phones: dict, flag: bool, ctx: Context) -> tuple[str | None, str | None, str]:
    """(E.164 if valid, the number for the attempt row, the human detail) of a pre-dial result."""
    policy = ctx.policy
    raw = chosen_phone(phones, policy.phone_field)
    number = ctx.read(raw, policy.default_region) if raw else None
    e164 = number.e164 if number is not None and number.valid else None
    dialed = e164 or (raw[:40] if raw else None)
    field_name = "every phone field" if policy.phone_field == "any" else f"the {policy.phone_field} field"
    if result is Result.DNC:
        return e164, dialed, "the contact's DNC flag is set" if flag else f"{e164} is on the DNC list"
    if result is Result.NO_PHONE:
        return None, None, f"{field_name} is empty"
    if result is Result.INVALID_NUMBER:
        if number is None:
            return None, dialed, f"{raw!r} has letters or symbols, or is no phone number"
        return None, dialed, f"{raw!r} is not a valid number ({number.e164} is in no range its country assigns)"
    allowed = ",".join(sorted(policy.allowed_countries))
    return e164, dialed, f"{e164} is in {number.country}, not in the allowed countries {allowed}"
