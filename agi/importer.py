"""CSV import of contacts into a campaign (and of numbers into the DNC list), with per-line reports.

What a row becomes (docs/outcomes.md: the summary's first row counts Contact No Phone and Contact DNC,
so those must exist as attempts):

- a good row: a contact (created once, keyed by ``dedupe_key``) and a ``pending``
  membership with the E.164 ``number`` and ``timezone`` from the pre-dial rule;
- a row with a pre-dial result (no_phone, dnc, invalid_number, forbidden_destination):
  the contact and its membership are imported too, the membership ``skipped`` with that
  ``last_result``, and one pre-dial attempt row (no line used, not charged) records it, as
  ``agi.db.attempts.record_predial`` would, in bulk. The row is also reported with its line;
- a malformed row (wrong number of fields, bytes that are not UTF-8, a value too long for
  its column, a DNC flag that is not yes/no): only reported, nothing written;
- a row for a contact already in the campaign (re-import), or repeating an earlier row of
  the same file: skipped and counted as a duplicate. An existing contact is never changed.

Re-importing the same file therefore changes nothing. The DNC list is loaded once; all
writes are batched in one transaction.

Which phone a row is checked (and later dialed) on is the campaign's ``phone_field``, the one
source of truth: the originator checks every contact again with it right before dialing. A
``phone_field`` given to the import is a check only: one that differs is refused.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.db.models import Attempt, Campaign, CampaignContact, Contact, DncEntry, new_attempt_id, utcnow
from agi.outcomes import PHONE_FIELDS, PREDIAL_RESULTS, ContactState, Result
from agi.rules.predial import (
    PHONE_FIELD_CHOICES,
    Dialable,
    DialPolicy,
    check_contact,
    chosen_phone,
    normalize,
    number_country,
)
from agi.rules.retry import Outcome, RetryPolicy, next_step

# Contact fields a CSV column can fill, with the header names recognised by default
# (compared lower-case, spaces and hyphens as underscores).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "external_id", "contact_id", "customer_id"),
    "first_name": ("first_name", "firstname", "first", "given_name"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name", "name", "full_name"),
    "home": ("home", "home_phone", "homephone"),
    "work": ("work", "work_phone", "workphone", "office", "office_phone"),
    "cell": ("cell", "mobile", "cell_phone", "cellphone", "mobile_phone", "mobilephone"),
    "phone": ("phone", "telephone", "tel", "phone_number", "number"),
    "dnc": ("dnc", "do_not_call", "donotcall"),
}
FIELDS = tuple(FIELD_ALIASES)
IGNORE = "-"  # --map "Notes=-" drops a column
# Column sizes of agi.db.models.Contact: longer values would be cut, so the row is malformed.
MAX_LEN = {"external_id": 120, "first_name": 120, "last_name": 120, **{p: 40 for p in PHONE_FIELDS}}
TRUE_WORDS = {"1", "y", "yes", "true", "t", "x", "dnc"}
FALSE_WORDS = {"", "0", "n", "no", "false", "f"}
MALFORMED = "malformed"
DUPLICATE = "duplicate"
BATCH = 1000  # rows per INSERT/SELECT batch (well under both backends' parameter limits)


def _key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


@dataclass(frozen=True)
class RowIssue:
    """A reported row: its line in the file, the reason code and what exactly is wrong."""

    line: int
    reason: str  # a pre-dial Result code, "malformed" or "duplicate"
    detail: str

    def as_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason, "detail": self.detail}


@dataclass
class ImportReport:
    campaign: str
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0  # new dialable memberships (pending)
    predial: Counter = field(default_factory=Counter)  # new memberships recorded with a pre-dial result
    duplicates: int = 0  # already in the campaign, or repeating an earlier row of the file
    malformed: int = 0
    new_contacts: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    contact_ids: dict[int, int] = field(default_factory=dict)  # line -> contact (written or found)

    def summary(self) -> list[tuple[str, int]]:
        out = [("Imported (dialable)", self.imported)]
        out += [(r.label, self.predial.get(r.value, 0)) for r in _PREDIAL_ORDER]
        out += [("Duplicates skipped", self.duplicates), ("Malformed rows", self.malformed),
                ("Rows read", self.rows), ("New contacts", self.new_contacts)]
        return out

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "rows": self.rows,
            "imported": self.imported,
            "predial": {r.value: self.predial.get(r.value, 0) for r in _PREDIAL_ORDER},
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "new_contacts": self.new_contacts,
            "issues": [i.as_dict() for i in self.issues],
        }


_PREDIAL_ORDER = (Result.NO_PHONE, Result.DNC, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION)
assert set(_PREDIAL_ORDER) == PREDIAL_RESULTS

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


# --- reading and mapping (pure) ---------------------------------------------------------------


def parse_map(text: str | None) -> dict[str, str]:
    """'Mobile=cell,Tel=phone,Notes=-' -> {'mobile': 'cell', 'tel': 'phone', 'notes': '-'}."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in filter(None, (p.strip() for p in text.split(","))):
        column, sep, target = part.partition("=")
        if not sep or not column.strip():
            raise AdminError(f"bad --map entry {part!r}: use COLUMN=FIELD, e.g. Mobile=cell")
        mapping[_key(column)] = _map_target(target)
    return mapping


def _map_target(text: str) -> str:
    target = text.strip()
    if target == IGNORE:
        return target
    if target.lower().startswith("custom.") and len(target) > len("custom."):
        return "custom." + target[len("custom."):]
    target = _key(target)
    if target not in FIELDS:
        raise AdminError(
            f"bad --map target {text.strip()!r}: use one of {', '.join(FIELDS)}, custom.NAME, or - to drop the column"
        )
    return target


def map_header(header: list[str], explicit: dict[str, str]) -> list[tuple[str, str]]:
    """For each column: ('field', name) for a contact field, ('custom', key) or ('ignore', '')."""
    keys = [_key(h) for h in header]
    unknown = [c for c in explicit if c not in keys]
    if unknown:
        raise AdminError(
            f"--map names column(s) {', '.join(unknown)} not in the file's header ({', '.join(header)})"
        )
    out: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for raw, key in zip(header, keys):
        target = explicit.get(key)
        if target is None:
            target = next((f for f, aliases in FIELD_ALIASES.items() if key in aliases and f not in taken), None)
        if target == IGNORE:
            out.append(("ignore", ""))
        elif target is None or target.startswith("custom."):
            name = target[len("custom."):] if target else raw.strip()
            out.append(("custom", name or f"column_{len(out) + 1}"))
        else:
            if target in taken:
                raise AdminError(
                    f"columns {taken[target]!r} and {raw!r} both map to {target}; "
                    f"drop one with --map \"{raw}=-\" or map it elsewhere"
                )
            taken[target] = raw
            out.append(("field", target))
    return out


@dataclass
class Row:
    line: int
    external_id: str | None
    first_name: str
    last_name: str
    phones: dict[str, str | None]
    dnc: bool
    custom: dict[str, str]
    dedupe_key: str


def dedupe_key(external_id: str | None, first: str, last: str, phones: dict[str, str | None]) -> str:
    """The id column when there is one, else a hash of the normalised name and phones."""
    if external_id:
        basis = "id\x1f" + external_id.strip()
    else:
        parts = [first.strip().lower(), last.strip().lower()]
        parts += [re.sub(r"[\s\-.()]", "", (phones.get(p) or "")).lower() for p in PHONE_FIELDS]
        basis = "row\x1f" + "\x1f".join(parts)
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()


def _has_bad_bytes(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def read_rows(
    lines: Iterable[str], delimiter: str, explicit_map: dict[str, str], issues: list[RowIssue]
) -> Iterator[Row]:
    """Parse CSV text lines (header first) into Rows; malformed rows go to ``issues``."""
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    last_line = 0
    columns: list[tuple[str, str]] = []
    while True:
        start = last_line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            last_line = reader.line_num
            issues.append(RowIssue(start, MALFORMED, f"CSV error: {exc}"))
            continue
        last_line = reader.line_num
        if not record:
            continue  # a blank line
        if header is None:
            if any(_has_bad_bytes(v) for v in record):
                raise AdminError(f"line {start}: the header is not valid UTF-8; save the file as UTF-8")
            header = record
            columns = map_header(header, explicit_map)
            if not any(kind == "field" and name in PHONE_FIELDS for kind, name in columns):
                raise AdminError(
                    f"no phone column in the header ({', '.join(header)}); name one home, work, cell or "
                    "phone, or map it with --map \"Column=phone\""
                )
            continue
        if all(not v.strip() for v in record):
            issues.append(RowIssue(start, MALFORMED, "every field is empty"))
            continue
        if len(record) != len(header):
            issues.append(RowIssue(start, MALFORMED, f"expected {len(header)} fields, got {len(record)}"))
            continue
        bad = [header[i] for i, v in enumerate(record) if _has_bad_bytes(v)]
        if bad:
            issues.append(RowIssue(start, MALFORMED, f"not valid UTF-8 in column(s) {', '.join(bad)}"))
            continue
        values: dict[str, str] = {}
        custom: dict[str, str] = {}
        for (kind, name), value in zip(columns, record):
            if kind == "field":
                values[name] = value.strip()
            elif kind == "custom" and value != "":
                custom[name] = value
        row = make_row(start, values, custom)
        if isinstance(row, RowIssue):
            issues.append(row)
            continue
        yield row
    if header is None:
        raise AdminError("the file is empty: expected a header row, then one contact per row")


def make_row(line: int, values: dict[str, str], custom: dict[str, str]) -> Row | RowIssue:
    """One contact's field texts (FIELDS by name, stripped) and custom fields -> a Row, or the
    RowIssue that makes it malformed (a value too long for its column, a DNC flag not yes/no)."""
    too_long = [f for f, limit in MAX_LEN.items() if len(values.get(f, "")) > limit]
    if too_long:
        return RowIssue(line, MALFORMED, ", ".join(f"{f} longer than {MAX_LEN[f]} characters" for f in too_long))
    flag = values.get("dnc", "").lower()
    if flag not in TRUE_WORDS and flag not in FALSE_WORDS:
        return RowIssue(line, MALFORMED, f"dnc value {values.get('dnc')!r} is not yes/no")
    phones = {p: (values.get(p) or None) for p in PHONE_FIELDS}
    ext = values.get("external_id") or None
    first, last = values.get("first_name", ""), values.get("last_name", "")
    return Row(
        line=line,
        external_id=ext,
        first_name=first,
        last_name=last,
        phones=phones,
        dnc=flag in TRUE_WORDS,
        custom=custom,
        dedupe_key=dedupe_key(ext, first, last, phones),
    )


def _why(result: Result, phones: dict, dnc_flag: bool, policy: DialPolicy) -> tuple[str | None, str | None, str]:
    """(E.164 if valid, number for the attempt row, human detail) of a pre-dial result."""
    raw = chosen_phone(phones, policy.phone_field)
    e164 = normalize(raw, policy.default_region) if raw else None
    number = e164 or (raw[:40] if raw else None)
    field_name = "every phone field" if policy.phone_field == "any" else f"the {policy.phone_field} field"
    if result is Result.NO_PHONE:
        return None, None, f"{field_name} is empty"
    if result is Result.DNC:
        return e164, number, "the contact's DNC flag is set" if dnc_flag else f"{e164} is on the DNC list"
    if result is Result.INVALID_NUMBER:
        return None, number, f"{raw!r} has letters or symbols, or is not a possible number for {policy.default_region}"
    allowed = ",".join(sorted(policy.allowed_countries))
    return e164, number, f"{e164} is in {number_country(e164)}, not in the allowed countries {allowed}"


def _timezone(d: Dialable) -> str | None:
    """One zone when the number has one; several (or none) -> None: the window rule derives
    the most restrictive one from the number itself."""
    return d.timezones[0] if len(d.timezones) == 1 else None


# --- the import -------------------------------------------------------------------------------


def open_lines(path: str | Path) -> Iterator[str]:
    """Lines of a text file as UTF-8 (BOM dropped); bytes that are not UTF-8 survive as
    surrogates so the row holding them is reported, not the whole file refused."""
    try:
        fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield from fh


async def import_contacts(
    conn: AsyncConnection,
    campaign: Campaign | int | str,
    path: str | Path,
    *,
    phone_field: str | None = None,
    column_map: str | dict[str, str] | None = None,
    delimiter: str = ",",
    progress: Progress = _no_progress,
) -> ImportReport:
    """Import ``path`` into ``campaign`` in the caller's transaction. See the module docstring."""
    camp = await _campaign(conn, campaign)
    dialed = camp.phone_field or "phone"
    if phone_field is not None and phone_field not in PHONE_FIELD_CHOICES:
        raise AdminError(f"--phone-field {phone_field!r}: choose one of {', '.join(PHONE_FIELD_CHOICES)}")
    if phone_field is not None and phone_field != dialed:
        # The campaign's phone_field is the one source of truth: the originator checks every contact
        # again right before dialing, with the campaign's field. Importing by another field would
        # store numbers the campaign never dials (every contact would end as Contact No Phone).
        raise AdminError(
            f"--phone-field {phone_field}: campaign {camp.name!r} dials the {dialed} field, for every one of "
            f"its contacts. Set the campaign's phone field first (`dialer campaign set {camp.name} "
            f"--phone-field {phone_field}`), then import; nothing was imported"
        )
    policy = _policy(camp)
    if isinstance(column_map, dict):
        explicit = {_key(k): _map_target(v) for k, v in column_map.items()}
    else:
        explicit = parse_map(column_map)
    delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
    if len(delimiter) != 1:
        raise AdminError(f"--delimiter must be one character (or 'tab'), got {delimiter!r}")

    report = ImportReport(campaign=camp.name)
    progress("read", 0, 0)
    rows = list(read_rows(open_lines(path), delimiter, explicit, report.issues))
    report.malformed = len(report.issues)
    report.rows = len(rows) + report.malformed
    await _import_rows(conn, camp, policy, rows, report, progress)
    return report


async def import_records(
    conn: AsyncConnection,
    campaign: Campaign | int | str,
    records: Iterable[Mapping[str, Any]],
    *,
    first_line: int = 0,
) -> ImportReport:
    """Contacts already parsed, one dict each (FIELDS by name; "custom": {name: text}), through the
    same checks, identity, pre-dial and DNC path as a file's rows (the public API's contact add).
    Record i is reported as line ``first_line + i``; ``report.contact_ids`` maps lines to contacts."""
    camp = await _campaign(conn, campaign)
    report = ImportReport(campaign=camp.name)
    rows: list[Row] = []
    for i, record in enumerate(records):
        values = {f: field_text(record.get(f)) for f in FIELDS if record.get(f) is not None}
        custom = {str(k): str(v) for k, v in (record.get("custom") or {}).items() if v is not None and v != ""}
        row = make_row(first_line + i, values, custom)
        if isinstance(row, RowIssue):
            report.issues.append(row)
        else:
            rows.append(row)
    report.malformed = len(report.issues)
    report.rows = len(rows) + report.malformed
    await _import_rows(conn, camp, _policy(camp), rows, report, _no_progress)
    return report


def field_text(value: Any) -> str:
    """A JSON value as the text a CSV cell would hold (true -> yes)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).strip()


def _policy(camp) -> DialPolicy:
    return DialPolicy(
        phone_field=camp.phone_field or "phone",
        default_region=camp.default_region or "US",
        allowed_countries=frozenset(camp.allowed_countries or ()),
    )


async def _import_rows(conn: AsyncConnection, camp, policy: DialPolicy, rows: list[Row], report: ImportReport,
                       progress: Progress) -> None:
    """Rows of one import -> contacts, memberships and pre-dial attempts, in batches."""
    _check_phone_column(rows, policy, camp.name)

    # repeated rows of this file: the first one wins
    first_line: dict[str, int] = {}
    unique: list[Row] = []
    for row in rows:
        if row.dedupe_key in first_line:
            report.duplicates += 1
            report.issues.append(RowIssue(row.line, DUPLICATE, f"same contact as line {first_line[row.dedupe_key]}"))
            continue
        first_line[row.dedupe_key] = row.line
        unique.append(row)

    total = len(unique)
    progress("write", 0, total)
    dnc = set((await conn.execute(select(DncEntry.number))).scalars().all())  # loaded once
    retry = RetryPolicy.from_campaign(camp.retry_rules, camp.max_attempts)
    now = utcnow()
    done = 0
    for start in range(0, total, BATCH):
        batch = unique[start:start + BATCH]
        await _import_batch(conn, camp.id, batch, policy, dnc.__contains__, retry, now, report)
        done += len(batch)
        progress("write", done, total)
    for row in rows:  # a repeated row is the contact of its first line
        report.contact_ids.setdefault(row.line, report.contact_ids.get(first_line[row.dedupe_key]))
    report.issues.sort(key=lambda i: i.line)


def _check_phone_column(rows: list[Row], policy: DialPolicy, name: str) -> None:
    """A campaign dialing a field the file never fills is a mapping mistake, not N no_phone rows."""
    if not rows or policy.phone_field == "any":
        return
    if all(not r.phones.get(policy.phone_field) for r in rows) and any(any(r.phones.values()) for r in rows):
        filled = sorted({p for r in rows for p, v in r.phones.items() if v})
        raise AdminError(
            f"campaign {name!r} dials the {policy.phone_field} field but no row fills it (the file fills "
            f"{', '.join(filled)}): set the campaign's phone field (`dialer campaign set {name} --phone-field "
            f"{filled[0]}`) or map a column with --map \"Column={policy.phone_field}\"; nothing was imported"
        )


_CAMPAIGN_COLUMNS = (
    Campaign.id, Campaign.name, Campaign.phone_field, Campaign.default_region,
    Campaign.allowed_countries, Campaign.retry_rules, Campaign.max_attempts,
)


async def _campaign(conn: AsyncConnection, ref: Campaign | int | str):
    """The campaign's columns the import needs (an ORM Campaign or a row: same attributes)."""
    if isinstance(ref, Campaign):
        return ref
    text = str(ref).strip()
    q = select(*_CAMPAIGN_COLUMNS)
    row = (await conn.execute(q.where(Campaign.name == text))).first()
    if row is None and text.isdigit():
        row = (await conn.execute(q.where(Campaign.id == int(text)))).first()
    if row is None:
        raise AdminError(f"no campaign {text!r} (by name or id); see `dialer campaign list`")
    return row


_ct = Contact.__table__
_cc = CampaignContact.__table__
_at = Attempt.__table__


async def _import_batch(
    conn: AsyncConnection,
    campaign_id: int,
    batch: list[Row],
    policy: DialPolicy,
    on_dnc_list: Callable[[str], bool],
    retry: RetryPolicy,
    now,
    report: ImportReport,
) -> None:
    keys = [r.dedupe_key for r in batch]
    existing = {
        r.dedupe_key: r
        for r in (
            await conn.execute(
                select(_ct.c.id, _ct.c.dedupe_key, _ct.c.dnc, *(_ct.c[p] for p in PHONE_FIELDS))
                .where(_ct.c.dedupe_key.in_(keys))
            )
        ).all()
    }
    new_rows = [r for r in batch if r.dedupe_key not in existing]
    ids = {r.dedupe_key: r.id for r in existing.values()}
    if new_rows:
        inserted = await conn.execute(
            insert(_ct).returning(_ct.c.id, _ct.c.dedupe_key),
            [
                {
                    "dedupe_key": r.dedupe_key,
                    "external_id": r.external_id,
                    "first_name": r.first_name,
                    "last_name": r.last_name,
                    **r.phones,
                    "dnc": r.dnc,
                    "custom": r.custom,
                    "created_at": now,
                }
                for r in new_rows
            ],
        )
        for cid, key in inserted.all():
            ids[key] = cid
        report.new_contacts += len(new_rows)

    members = set(
        (
            await conn.execute(
                select(_cc.c.contact_id).where(
                    _cc.c.campaign_id == campaign_id, _cc.c.contact_id.in_(list(ids.values()))
                )
            )
        ).scalars().all()
    )
    memberships: list[dict] = []
    attempts: list[dict] = []
    for row in batch:
        contact_id = ids[row.dedupe_key]
        report.contact_ids[row.line] = contact_id
        if contact_id in members:
            report.duplicates += 1
            continue
        stored = existing.get(row.dedupe_key)
        phones = {p: getattr(stored, p) for p in PHONE_FIELDS} if stored else row.phones
        flag = bool(stored.dnc) if stored else row.dnc
        verdict = check_contact(phones, flag, policy, on_dnc_list)
        if isinstance(verdict, Dialable):
            report.imported += 1
            memberships.append({
                "campaign_id": campaign_id, "contact_id": contact_id,
                "state": ContactState.PENDING.value, "number": verdict.number,
                "timezone": _timezone(verdict), "attempts": 0, "updated_at": now,
            })
            continue
        e164, number, why = _why(verdict, phones, flag, policy)
        report.predial[verdict.value] += 1
        report.issues.append(RowIssue(row.line, verdict.value, why))
        step = next_step(Outcome(verdict), 0, now, retry)
        attempt_id = new_attempt_id()
        memberships.append({
            "campaign_id": campaign_id, "contact_id": contact_id,
            "state": step.state.value, "number": e164, "timezone": None,
            "attempts": step.attempts, "next_attempt_at": step.next_attempt_at,
            "last_result": verdict.value, "last_attempt_id": attempt_id, "updated_at": now,
        })
        attempts.append({
            "id": attempt_id, "campaign_id": campaign_id, "contact_id": contact_id,
            "number": number, "attempt_no": 1, "queued_at": now, "ended_at": now,
            "result": verdict.value, "charged": False, "ivr_keys": "",
            "caller_abandoned": False, "detail": f"import line {row.line}: {why}",
        })
    if not memberships:
        return
    # memberships without "next_attempt_at"/"last_result" get NULL: same keys in every dict
    for m in memberships:
        m.setdefault("next_attempt_at", None)
        m.setdefault("last_result", None)
        m.setdefault("last_attempt_id", None)
    inserted = await conn.execute(insert(_cc).returning(_cc.c.id, _cc.c.contact_id), memberships)
    membership_of = {contact_id: mid for mid, contact_id in inserted.all()}
    if attempts:
        for a in attempts:
            a["membership_id"] = membership_of[a["contact_id"]]
        await conn.execute(insert(_at), attempts)


# --- DNC file ----------------------------------------------------------------------------------


@dataclass
class DncImportReport:
    added: int = 0
    already: int = 0
    invalid: int = 0
    issues: list[RowIssue] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "already_listed": self.already, "invalid": self.invalid,
                "issues": [i.as_dict() for i in self.issues]}


def read_dnc_numbers(path: str | Path, region: str) -> tuple[list[tuple[int, str]], list[RowIssue]]:
    """One number per line, or a CSV whose first column is the number (a header line is skipped)."""
    numbers: list[tuple[int, str]] = []
    issues: list[RowIssue] = []
    reader = csv.reader(open_lines(path))
    line = 0
    first = True
    while True:
        start = line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            issues.append(RowIssue(start, MALFORMED, f"CSV error: {exc}"))
            continue
        line = reader.line_num
        raw = record[0].strip() if record else ""
        if not raw or raw.startswith("#"):
            continue
        if _has_bad_bytes(raw):
            issues.append(RowIssue(start, MALFORMED, "not valid UTF-8"))
            first = False
            continue
        e164 = normalize(raw, region)
        if e164 is None:
            if first and not any(ch.isdigit() for ch in raw):
                first = False
                continue  # a header such as "number"
            issues.append(RowIssue(start, Result.INVALID_NUMBER.value, f"{raw!r} is not a valid number for {region}"))
        else:
            numbers.append((start, e164))
        first = False
    return numbers, issues


async def import_dnc(conn: AsyncConnection, path: str | Path, region: str = "US", source: str = "import") -> DncImportReport:
    """Add every valid number of ``path`` to the DNC list (batched; already listed ones are kept)."""
    numbers, issues = read_dnc_numbers(path, region)
    report = DncImportReport(invalid=len(issues), issues=issues)
    listed = set((await conn.execute(select(DncEntry.number))).scalars().all())
    fresh: dict[str, int] = {}
    for _line, number in numbers:
        if number in listed or number in fresh:
            report.already += 1
        else:
            fresh[number] = _line
    now = utcnow()
    items = [{"number": n, "source": source[:40], "added_at": now} for n in fresh]
    for start in range(0, len(items), BATCH):
        await conn.execute(insert(DncEntry.__table__), items[start:start + BATCH])
    report.added = len(items)
    return report


def export_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Contact dicts (see agi.reports.list_contacts) -> CSV header and rows; custom fields as columns."""
    base = ["contact_id", "external_id", "first_name", "last_name", *PHONE_FIELDS, "dnc"]
    tail = ["state", "number", "timezone", "attempts", "last_result", "next_attempt_at"]
    custom_keys = sorted({k for r in rows for k in (r.get("custom") or {})} - set(base) - set(tail))
    header = base + custom_keys + tail
    out = []
    for r in rows:
        custom = r.get("custom") or {}
        values = [r.get(k) for k in base] + [custom.get(k, "") for k in custom_keys] + [r.get(k) for k in tail]
        out.append(["" if v is None else ("yes" if v is True else "no" if v is False else v) for v in values])
    return header, out
