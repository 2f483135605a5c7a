"""Contacts into a campaign (a CSV file, or the API's records) and numbers into the DNC list.

What a row becomes (docs/outcomes.md: the summary's first row counts Contact DNC and Contact
No Phone, so those must exist as attempts):

- a good row: a contact (created once, found again by its identity: agi.importer.rows) and a
  ``pending`` membership with the E.164 ``number`` and ``timezone`` from the pre-dial rule;
- a row with a pre-dial result (dnc, no_phone, invalid_number, forbidden_destination): the
  contact and its membership are imported too, the membership ``skipped`` with that
  ``last_result``, and one pre-dial attempt row (no line used, not charged) records it. The row
  is also reported with its line;
- a row for a contact already stored: DNC always wins (``dnc=yes`` makes the contact DNC at once,
  in every campaign it is in), a row matched by external id updates the fields it changes;
  otherwise, already in the campaign, it is a duplicate and nothing changes;
- a malformed row (bytes that are not text, a NUL byte, a value too long for its column, a DNC
  flag that is not yes/no): only reported, nothing written. A short or long row imports, with a
  warning.

Importing the same file again changes nothing. A file is streamed in batches (memory flat with
its size); PostgreSQL bulk-loads with COPY. Which phone a row is checked (and later dialed) on
is the campaign's ``phone_field``, the one source of truth: the originator checks every contact
again with it right before dialing.

Modules: rows (columns, a row, identity), reader (the file), plan (what a batch does, pure),
store (reads and writes), runs (resumable imports), core (the import), dnc (the DNC file).
"""

from __future__ import annotations

from typing import Any

from agi.importer.core import BATCH, find_campaign, import_contacts, import_records, record_row
from agi.importer.dnc import DncImportReport, import_dnc
from agi.importer.report import ImportReport, reason_label
from agi.importer.rows import (
    DUPLICATE,
    FIELD_ALIASES,
    FIELDS,
    MALFORMED,
    MARKED_DNC,
    UPDATED,
    WARNING,
    Row,
    RowIssue,
    dedupe_key,
    field_text,
    make_row,
    map_header,
    parse_map,
)
from agi.importer.runs import iter_issues
from agi.importer.store import mark_dnc
from agi.outcomes import PHONE_FIELDS

__all__ = [
    "BATCH", "DUPLICATE", "FIELDS", "FIELD_ALIASES", "MALFORMED", "MARKED_DNC", "UPDATED", "WARNING",
    "DncImportReport", "ImportReport", "Row", "RowIssue", "dedupe_key", "export_rows", "field_text",
    "find_campaign", "import_contacts", "import_dnc", "import_records", "iter_issues", "make_row", "map_header",
    "mark_dnc", "parse_map", "reason_label", "record_row",
]


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
