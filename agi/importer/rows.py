"""One contact row: which columns fill which contact fields, what makes a row malformed, and the
contact's identity (who a row is, so a re-import or another file finds the same contact).

Identity: a row with an external id (the CRM's id column) is that id, whatever else it holds, so
a re-import with changed fields finds the contact and updates it. A row without one is its
normalised fields: the same name, the same numbers (E.164 when valid, whatever the writing) and the
same other fields; two people sharing a household number are two contacts (the originator never
rings one number twice at once).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from agi.errors import AdminError
from agi.outcomes import PHONE_FIELDS
from agi.rules.numbering import PhoneNumber, read_number

# Contact fields a CSV column can fill, with the header names recognised by default
# (compared lower-case, spaces and hyphens as underscores).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "external_id", "contact_id", "customer_id", "crm_id"),
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
TRUE_WORDS = frozenset({"1", "y", "yes", "true", "t", "x", "dnc"})
FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "f"})

# reasons of a reported row besides the pre-dial results (agi.outcomes.Result)
MALFORMED = "malformed"  # only reported, nothing written
DUPLICATE = "duplicate"  # already in the campaign (or an earlier row of the file): nothing changed
WARNING = "warning"  # imported, with something the admin should know (a short or long row)
MARKED_DNC = "marked_dnc"  # an existing contact made DNC by this row, in every campaign it is in
UPDATED = "updated"  # an existing contact (by external id) whose fields this row changed


def column_key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


@dataclass(frozen=True)
class RowIssue:
    """A reported row: its line in the file, the reason code and what exactly is wrong."""

    line: int
    reason: str  # a pre-dial Result code, or one of the reasons above
    detail: str

    def as_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason, "detail": self.detail}


@dataclass
class Row:
    line: int
    external_id: str | None
    first_name: str
    last_name: str
    phones: dict[str, str | None]
    dnc: bool
    custom: dict[str, str]
    dedupe_key: str = ""
    given: frozenset[str] | None = None  # the fields the source has (None: all)


# --- columns ----------------------------------------------------------------------------------


def parse_map(text: str | None) -> dict[str, str]:
    """'Mobile=cell,Tel=phone,Notes=-' -> {'mobile': 'cell', 'tel': 'phone', 'notes': '-'}."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in filter(None, (p.strip() for p in text.split(","))):
        column, sep, target = part.partition("=")
        if not sep or not column.strip():
            raise AdminError(f"bad --map entry {part!r}: use COLUMN=FIELD, e.g. Mobile=cell")
        mapping[column_key(column)] = map_target(target)
    return mapping


def map_target(text: str) -> str:
    target = text.strip()
    if target == IGNORE:
        return target
    if target.lower().startswith("custom.") and len(target) > len("custom."):
        return "custom." + target[len("custom."):]
    target = column_key(target)
    if target not in FIELDS:
        raise AdminError(
            f"bad --map target {text.strip()!r}: use one of {', '.join(FIELDS)}, custom.NAME, or - to drop the column"
        )
    return target


def map_header(header: list[str], explicit: dict[str, str], id_field: str | None = None) -> list[tuple[str, str]]:
    """For each column: ('field', name) for a contact field, ('custom', key) or ('ignore', '').

    ``id_field`` names the column holding the external id (``--id-field``; default: a column
    called id, external_id, contact_id, customer_id or crm_id when there is one)."""
    keys = [column_key(h) for h in header]
    explicit = _with_id_field(explicit, keys, header, id_field)
    out: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    claimed = {"external_id"} if id_field else set()  # --id-field: no other column is the id
    for raw, key in zip(header, keys):
        target = explicit.get(key)
        if target is None:
            target = next((f for f, aliases in FIELD_ALIASES.items()
                           if key in aliases and f not in taken and f not in claimed), None)
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


def _with_id_field(explicit: dict[str, str], keys: list[str], header: list[str], id_field: str | None) -> dict:
    """The explicit mapping with --id-field's column as the external id; columns it names must exist."""
    explicit = dict(explicit)
    if id_field:
        if column_key(id_field) not in keys:
            raise AdminError(f"--id-field {id_field!r} is not a column of the file's header ({', '.join(header)})")
        explicit[column_key(id_field)] = "external_id"
    unknown = [c for c in explicit if c not in keys]
    if unknown:
        raise AdminError(
            f"--map names column(s) {', '.join(unknown)} not in the file's header ({', '.join(header)})"
        )
    return explicit


# --- a row ------------------------------------------------------------------------------------


def make_row(line: int, values: dict[str, str], custom: dict[str, str],
             given: frozenset[str] | None = None) -> Row | RowIssue:
    """One contact's field texts (FIELDS by name, stripped) and custom fields -> a Row, or the
    RowIssue that makes it malformed (a value too long for its column, a DNC flag not yes/no)."""
    too_long = [f for f, limit in MAX_LEN.items() if len(values.get(f, "")) > limit]
    if too_long:
        return RowIssue(line, MALFORMED, ", ".join(f"{f} longer than {MAX_LEN[f]} characters" for f in too_long))
    flag = values.get("dnc", "").lower()
    if flag not in TRUE_WORDS and flag not in FALSE_WORDS:
        return RowIssue(line, MALFORMED, f"dnc value {values.get('dnc')!r} is not yes/no")
    return Row(
        line=line,
        external_id=values.get("external_id") or None,
        first_name=values.get("first_name", ""),
        last_name=values.get("last_name", ""),
        phones={p: (values.get(p) or None) for p in PHONE_FIELDS},
        dnc=flag in TRUE_WORDS,
        custom=custom,
        given=given,
    )


def field_text(value: Any) -> str:
    """A JSON value as the text a CSV cell would hold (true -> yes)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).strip()


Reader = Callable[[str | None, str], "PhoneNumber | None"]


def phone_key(raw: str | None, region: str, read: Reader = read_number) -> str:
    """A phone as identity compares it: E.164 when valid, else its digits and letters lower-cased."""
    if not raw:
        return ""
    number = read(raw, region)
    if number is not None and number.valid:
        return number.e164
    return re.sub(r"[\s\-.()]", "", raw).lower()


def dedupe_key(external_id: str | None, first: str, last: str, phones: dict[str, str | None],
               custom: dict[str, str] | None = None, region: str = "US", read: Reader = read_number) -> str:
    """The contact's identity (see the module docstring) as a fixed-length key."""
    if external_id:
        basis = "id\x1f" + external_id.strip()
    else:
        parts = [first.strip().lower(), last.strip().lower()]
        parts += [phone_key(phones.get(p), region, read) for p in PHONE_FIELDS]
        extra = json.dumps(sorted((k, v.strip()) for k, v in (custom or {}).items() if v.strip()),
                           ensure_ascii=False)
        basis = "fields\x1f" + "\x1f".join(parts) + "\x1f" + extra
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()
