"""What an import did, counted and line by line: the report the CLI prints, the API returns and an
interrupted import keeps (agi.importer.runs stores its counts with each batch)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from agi.importer.rows import DUPLICATE, MALFORMED, MARKED_DNC, UPDATED, WARNING, RowIssue
from agi.outcomes import PREDIAL_RESULTS, Result

PREDIAL_ORDER = (Result.DNC, Result.NO_PHONE, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION)
assert set(PREDIAL_ORDER) == PREDIAL_RESULTS

# the counters an import keeps (and a resumed one adds to)
COUNTS = ("rows", "imported", "duplicates", "malformed", "warnings", "new_contacts", "marked_dnc", "updated",
          "ambiguous_zone", "not_utf8")

Progress = Callable[[int, int, int], None]  # (rows read, bytes of the file read, its size)


def no_progress(rows: int, done: int, total: int) -> None:
    pass


@dataclass
class ImportReport:
    campaign: str
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0  # new dialable memberships (pending)
    predial: Counter = field(default_factory=Counter)  # new memberships recorded with a pre-dial result
    duplicates: int = 0  # already in the campaign, or repeating an earlier row of the file: nothing changed
    malformed: int = 0  # only reported
    warnings: int = 0  # imported, but short or long rows
    new_contacts: int = 0
    marked_dnc: int = 0  # existing contacts this import made DNC (in every campaign they are in)
    updated: int = 0  # existing contacts (by external id) whose fields this import changed
    ambiguous_zone: int = 0  # new dialable memberships whose number spans several time zones
    not_utf8: int = 0  # malformed rows whose bytes are not UTF-8 (another encoding?)
    first_not_utf8: int | None = None
    resumed_at: int | None = None  # an interrupted import of the same file went on after this line
    run_id: int | None = None
    issues: list[RowIssue] = field(default_factory=list)
    contact_ids: dict[int, int] = field(default_factory=dict)  # line -> contact (written or found)

    def add_issue(self, issue: RowIssue) -> None:
        """Count a reported row the reader found (malformed, warning) and keep it."""
        if issue.reason == MALFORMED:
            self.malformed += 1
            self.rows += 1
            if "not UTF-8" in issue.detail:
                self.not_utf8 += 1
                if self.first_not_utf8 is None:
                    self.first_not_utf8 = issue.line
        elif issue.reason == WARNING:
            self.warnings += 1
        self.issues.append(issue)

    def merge_counts(self, counts: dict) -> None:
        """Add the counts of an earlier (interrupted) run of the same import."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))
        self.predial.update({k: int(v) for k, v in (counts.get("predial") or {}).items()})
        if counts.get("first_not_utf8") and self.first_not_utf8 is None:
            self.first_not_utf8 = int(counts["first_not_utf8"])

    def counts(self) -> dict:
        out = {name: getattr(self, name) for name in COUNTS}
        out["predial"] = {k: v for k, v in self.predial.items() if v}
        out["first_not_utf8"] = self.first_not_utf8
        return out

    def summary(self) -> list[tuple[str, int]]:
        out = [("Imported (dialable)", self.imported)]
        out += [(r.label, self.predial.get(r.value, 0)) for r in PREDIAL_ORDER]
        out += [("Marked DNC (contacts already there)", self.marked_dnc),
                ("Updated (by external id)", self.updated),
                ("Duplicates skipped", self.duplicates), ("Malformed rows", self.malformed),
                ("Warnings (short or long rows)", self.warnings),
                ("Rows read", self.rows), ("New contacts", self.new_contacts),
                ("Ambiguous time zone (several zones)", self.ambiguous_zone)]
        return out

    def notes(self) -> list[str]:
        """What the admin should know beyond the counts, one sentence each."""
        out = []
        if self.not_utf8:
            out.append(f"{self.not_utf8} row(s) are not UTF-8 (the first on line {self.first_not_utf8}): if the file "
                       "is in another encoding, import it again with --encoding cp1252 (what Excel on Windows "
                       "writes); the rows already imported are not imported twice.")
        if self.ambiguous_zone:
            out.append(f"{self.ambiguous_zone} contact(s) have a number whose area spans several time zones: "
                       "each is called only when the calling window is open in all of them.")
        if self.resumed_at:
            out.append(f"An interrupted import of this file was finished: lines up to {self.resumed_at} had been "
                       "imported by it, the counts include them.")
        return out

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "rows": self.rows,
            "imported": self.imported,
            "predial": {r.value: self.predial.get(r.value, 0) for r in PREDIAL_ORDER},
            "marked_dnc": self.marked_dnc,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "warnings": self.warnings,
            "new_contacts": self.new_contacts,
            "ambiguous_zone": self.ambiguous_zone,
            "resumed_at": self.resumed_at,
            "notes": self.notes(),
            "issues": [i.as_dict() for i in self.issues],
        }


REASON_LABELS = {MALFORMED: "Malformed", DUPLICATE: "Duplicate", WARNING: "Warning", MARKED_DNC: "Marked DNC",
                 UPDATED: "Updated"}


def reason_label(reason: str) -> str:
    try:
        return Result(reason).label
    except ValueError:
        return REASON_LABELS.get(reason, reason)
