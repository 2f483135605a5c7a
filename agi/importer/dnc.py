"""The DNC list from a file: one number per line, or a CSV whose first column is the number (a
header line is skipped), streamed in batches. Every listed number takes effect on contacts already
waiting in any campaign: the pre-dial check right before dialing (agi.originator.dial) skips them
with result dnc; the report says how many contacts that is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import CampaignContact, DncEntry, utcnow
from agi.errors import AdminError
from agi.importer.plan import WAITING
from agi.importer.rows import MALFORMED, RowIssue
from agi.outcomes import Result
from agi.rules.predial import normalize

BATCH = 5000
_cc = CampaignContact.__table__
_dnc = DncEntry.__table__


@dataclass
class DncImportReport:
    added: int = 0
    already: int = 0
    invalid: int = 0
    waiting: int = 0  # memberships still to be dialed whose number is now listed
    issues: list[RowIssue] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "already_listed": self.already, "invalid": self.invalid,
                "waiting_contacts_now_dnc": self.waiting, "issues": [i.as_dict() for i in self.issues]}


def _lines(path: str | Path) -> Iterator[str]:
    try:
        fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield from fh


def read_dnc_numbers(path: str | Path, region: str, issues: list[RowIssue]) -> Iterator[tuple[int, str]]:
    """(line, E.164) of each valid number; bad lines go to ``issues``."""
    reader = csv.reader(_lines(path))
    line = 0
    first = True
    while True:
        start = line + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            issues.append(RowIssue(start, MALFORMED, f"CSV error: {exc}"))
            continue
        line = reader.line_num
        raw = record[0].strip() if record else ""
        if not raw or raw.startswith("#"):
            continue
        e164 = normalize(raw, region) if "\x00" not in raw and not any("\udc80" <= c <= "\udcff" for c in raw) else None
        if e164 is not None:
            yield start, e164
        elif first and not any(ch.isdigit() for ch in raw):
            pass  # a header such as "number"
        else:
            issues.append(RowIssue(start, Result.INVALID_NUMBER.value, f"{raw!r} is not a valid number for {region}"))
        first = False


async def waiting_with(conn: AsyncConnection, numbers: list[str]) -> int:
    """Memberships still to be dialed (pending, retry scheduled), in any campaign, with these numbers."""
    if not numbers:
        return 0
    return (await conn.execute(select(func.count()).select_from(_cc)
                               .where(_cc.c.number.in_(numbers), _cc.c.state.in_(WAITING)))).scalar_one()


async def import_dnc(conn: AsyncConnection, path: str | Path, region: str = "US", source: str = "import") -> DncImportReport:
    """Add every valid number of ``path`` to the DNC list (batched; already listed ones are kept)."""
    report = DncImportReport()
    batch: dict[str, int] = {}  # a number repeated in a later batch is found listed by then
    for line, number in read_dnc_numbers(path, region, report.issues):
        if number in batch:
            report.already += 1
            continue
        batch[number] = line
        if len(batch) >= BATCH:
            await _add(conn, batch, source, report)
            batch = {}
    await _add(conn, batch, source, report)
    report.invalid = len(report.issues)
    return report


async def _add(conn: AsyncConnection, batch: dict[str, int], source: str, report: DncImportReport) -> None:
    if not batch:
        return
    listed = set((await conn.execute(select(_dnc.c.number).where(_dnc.c.number.in_(list(batch))))).scalars())
    fresh = [n for n in batch if n not in listed]
    report.already += len(listed)
    if fresh:
        now = utcnow()
        await conn.execute(insert(_dnc), [{"number": n, "source": source[:40], "added_at": now} for n in fresh])
        report.added += len(fresh)
        report.waiting += await waiting_with(conn, fresh)
