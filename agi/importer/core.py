"""The import itself: rows (a streamed file, or the API's records) in batches through one path:
identity keys, what is stored under them, the plan (agi.importer.plan), the writes
(agi.importer.store).

Given an engine, a file import commits batch by batch under the import lock (a second import
waits) and as a run (agi.importer.runs: an interrupted one is finished by running it again);
given a connection, everything happens in the caller's transaction (the API, tests, the demo).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.db.locks import exclusive
from agi.db.models import Campaign, utcnow
from agi.errors import AdminError
from agi.importer import runs, store
from agi.importer.plan import Context, plan_batch
from agi.importer.reader import CsvSource
from agi.importer.report import ImportReport, Progress, no_progress
from agi.importer.rows import FIELDS, Row, RowIssue, dedupe_key, field_text, make_row, map_target, parse_map
from agi.outcomes import PHONE_FIELDS
from agi.rules.numbering import read_number
from agi.rules.predial import PHONE_FIELD_CHOICES, DialPolicy, chosen_phone
from agi.rules.retry import RetryPolicy

BATCH = 5000  # rows per batch: one transaction of a file import, one round of reads and writes
_MISSING = object()

_CAMPAIGN_COLUMNS = (
    Campaign.id, Campaign.name, Campaign.phone_field, Campaign.default_region,
    Campaign.allowed_countries, Campaign.retry_rules, Campaign.max_attempts,
)


async def find_campaign(conn: AsyncConnection, ref: Campaign | int | str):
    """The campaign's columns the import needs (an ORM Campaign or a row: same attributes)."""
    if isinstance(ref, Campaign):
        return ref
    name = str(ref).strip()
    q = select(*_CAMPAIGN_COLUMNS)
    row = (await conn.execute(q.where(Campaign.name == name))).first()
    if row is None and name.isdigit():
        row = (await conn.execute(q.where(Campaign.id == int(name)))).first()
    if row is None:
        raise AdminError(f"no campaign {name!r} (by name or id); see `dialer campaign list`")
    return row


@dataclass
class Prepared:
    """A batch read and keyed, ready for the database: its rows (identity keys set), the numbers its
    rows dial, the reader's reports of its lines, and each number as read once."""

    rows: list[Row]
    issues: list[RowIssue] = field(default_factory=list)  # the reader's (malformed rows, warnings)
    numbers: list[str] = field(default_factory=list)
    read: Callable = None  # type: ignore[assignment]
    line: int = 0  # the file's last line read with this batch
    bytes_read: int = 0


class Batches:
    """One import's running state: the campaign's rules, the report, and the batch steps."""

    def __init__(self, camp, report: ImportReport, *, update: bool = True, run_id: int | None = None,
                 issues_to_db: bool = False, want_ids: bool = False) -> None:
        self.camp = camp
        self.policy = DialPolicy.from_campaign(camp)
        self.retry = RetryPolicy.from_campaign(camp.retry_rules, camp.max_attempts)
        self.report = report
        self.update = update
        self.run_id = run_id
        self.issues_to_db = issues_to_db
        self.want_ids = want_ids

    def prepare(self, rows: list[Row], issues: list[RowIssue] | None = None) -> Prepared:
        """The batch's CPU work that needs no database (a file's reader thread runs it)."""
        read = _memo_reader()
        region = self.policy.default_region
        numbers = []
        for r in rows:
            r.dedupe_key = dedupe_key(r.external_id, r.first_name, r.last_name, r.phones, r.custom, region, read)
            number = _dialed(r.phones, self.policy, read)
            if number:
                numbers.append(number)
        return Prepared(rows, list(issues or ()), numbers, read)

    async def step(self, conn: AsyncConnection, batch: Prepared, now: dt.datetime | None = None) -> None:
        """One batch: read what is stored, plan, write; counts into the report."""
        now = now or utcnow()
        rows, read = batch.rows, batch.read
        stored = await store.stored_contacts(conn, sorted({r.dedupe_key for r in rows}))
        members = await store.members_of(conn, self.camp.id, (s.id for s in stored.values()))
        numbers = batch.numbers + [n for n in (_dialed(s.phones, self.policy, read) for s in stored.values()) if n]
        listed = await store.listed_numbers(conn, numbers)
        plan = plan_batch(rows, Context(self.policy, listed, stored, members, self.run_id, self.update, read))
        found = plan.issues
        plan.issues = batch.issues + found if self.issues_to_db else []
        ids = await store.Writer(conn, self.camp.id, self.retry, self.run_id, now).write(plan, stored)
        self._count(batch, plan, found, ids)

    def _count(self, batch: Prepared, plan, found: list[RowIssue], ids: dict[str, int]) -> None:
        report = self.report
        report.rows += len(batch.rows)
        for issue in batch.issues:
            report.add_issue(issue)
        for name, n in plan.counts.items():
            if name.startswith("predial."):
                report.predial[name[len("predial."):]] += n
            else:
                setattr(report, name, getattr(report, name) + n)
        if self.issues_to_db:
            del report.issues[:]
        else:
            report.issues.extend(found)
        if self.want_ids:
            for line, key in plan.line_keys:
                report.contact_ids[line] = ids[key]


def _memo_reader():
    """read_number, each number read once per batch (identity, the check and the report share it)."""
    cache: dict = {}

    def read(raw, region):
        key = (raw, region)
        got = cache.get(key, _MISSING)
        if got is _MISSING:
            got = cache[key] = read_number(raw, region)
        return got

    return read


def _dialed(phones: dict, policy: DialPolicy, read) -> str | None:
    raw = chosen_phone(phones, policy.phone_field)
    number = read(raw, policy.default_region) if raw else None
    return number.e164 if number is not None and number.valid else None


# --- the API's records ----------------------------------------------------------------------------


async def import_records(
    conn: AsyncConnection,
    campaign: Campaign | int | str,
    records: Iterable[Mapping[str, Any]],
    *,
    first_line: int = 0,
    update: bool = True,
) -> ImportReport:
    """Contacts already parsed, one dict each (FIELDS by name; "custom": {name: text}), through the
    same checks, identity, pre-dial and DNC path as a file's rows (the public API's contact add), in
    the caller's transaction. Record i is reported as line ``first_line + i``;
    ``report.contact_ids`` maps lines to contacts."""
    camp = await find_campaign(conn, campaign)
    report = ImportReport(campaign=camp.name)
    batches = Batches(camp, report, update=update, want_ids=True)
    rows: list[Row] = []
    for i, record in enumerate(records):
        row = record_row(first_line + i, record)
        if isinstance(row, RowIssue):
            report.add_issue(row)
            continue
        rows.append(row)
        if len(rows) >= BATCH:
            await batches.step(conn, batches.prepare(rows))
            rows = []
    if rows:
        await batches.step(conn, batches.prepare(rows))
    report.issues.sort(key=lambda i: i.line)
    return report


def record_row(line: int, record: Mapping[str, Any]) -> Row | RowIssue:
    values = {f: field_text(record.get(f)) for f in FIELDS if record.get(f) is not None}
    custom = {str(k): str(v) for k, v in (record.get("custom") or {}).items() if v is not None and v != ""}
    given = frozenset(f for f in ("first_name", "last_name", *PHONE_FIELDS) if f in record)
    return make_row(line, values, custom, given)


# --- a file -------------------------------------------------------------------------------------


def _explicit(column_map: str | dict[str, str] | None) -> dict[str, str]:
    if isinstance(column_map, dict):
        from agi.importer.rows import column_key

        return {column_key(k): map_target(v) for k, v in column_map.items()}
    return parse_map(column_map)


def _check_phone_field(camp, phone_field: str | None, source: CsvSource) -> None:
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
    filled = sorted(source.given & set(PHONE_FIELDS))
    if dialed != "any" and dialed not in source.given:
        # a campaign dialing a field the file has no column for is a mapping mistake, not N no_phone rows
        raise AdminError(
            f"campaign {camp.name!r} dials the {dialed} field but the file has no {dialed} column (it has "
            f"{', '.join(filled)}): set the campaign's phone field (`dialer campaign set {camp.name} --phone-field "
            f"{filled[0]}`) or map a column with --map \"Column={dialed}\"; nothing was imported"
        )


def _batched(source: CsvSource, batches: Batches, skip_to: int) -> Iterator[Prepared]:
    """The file's rows in prepared batches, each with the reader's reports of its lines."""
    rows: list[Row] = []
    issues: list[RowIssue] = []
    for row in source.rows(issues.append, skip_to=skip_to):
        rows.append(row)
        if len(rows) >= BATCH:
            yield _done(batches.prepare(rows, issues), source)  # (prepare copies the issues)
            rows = []
            issues.clear()
    yield _done(batches.prepare(rows, issues), source)  # the last (maybe no rows: its lines' reports still go)


def _done(batch: Prepared, source: CsvSource) -> Prepared:
    batch.line, batch.bytes_read = source.line, source.bytes_read()
    return batch


_END = object()


async def _next(handoff: queue.Queue):
    """The next item, waited for in short slices: a cancelled import (Ctrl-C) leaves no thread
    blocked for good."""
    while True:
        try:
            return await asyncio.to_thread(handoff.get, True, 0.5)
        except queue.Empty:
            continue


async def _read_ahead(batches: Iterator[Prepared]) -> AsyncIterator[Prepared]:
    """The batches, read and prepared by a thread one or two ahead: the file's parsing goes on
    while the database works on the batch before."""
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                handoff.put(batch)
            handoff.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            handoff.put(exc)

    threading.Thread(target=produce, name="import-reader", daemon=True).start()
    try:
        while (item := await _next(handoff)) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not handoff.empty():  # unblock a reader waiting to hand over
            handoff.get_nowait()


async def import_contacts(
    target: AsyncConnection | AsyncEngine,
    campaign: Campaign | int | str,
    path: str | Path,
    *,
    phone_field: str | None = None,
    column_map: str | dict[str, str] | None = None,
    delimiter: str | None = None,
    encoding: str = "auto",
    id_field: str | None = None,
    update: bool = True,
    progress: Progress = no_progress,
    on_wait=lambda message: None,
) -> ImportReport:
    """Import the file at ``path`` into ``campaign``. See the module docstring: an engine commits
    batch by batch (resumable, one import at a time), a connection keeps the caller's transaction."""
    source = CsvSource(path, delimiter=delimiter, encoding=encoding, explicit_map=_explicit(column_map),
                       id_field=id_field)
    try:
        options = {"map": column_map, "delimiter": source.delimiter, "encoding": source.encoding,
                   "id_field": id_field, "update": update}
        if isinstance(target, AsyncEngine):
            async with exclusive(target.url.render_as_string(hide_password=False), "import", on_wait):
                return await _committed(target, campaign, source, path, options, phone_field, update, progress)
        return await _in_transaction(target, campaign, source, path, options, phone_field, update, progress)
    finally:
        source.close()


async def _in_transaction(conn, campaign, source, path, options, phone_field, update, progress) -> ImportReport:
    camp = await find_campaign(conn, campaign)
    _check_phone_field(camp, phone_field, source)
    now = utcnow()
    run = await runs.open_run(conn, camp.id, str(path), runs.fingerprint(path, options), now, resume=False)
    report = ImportReport(campaign=camp.name, run_id=run.id)
    batches = Batches(camp, report, update=update, run_id=run.id)
    for batch in _batched(source, batches, 0):
        await batches.step(conn, batch, now)
        progress(report.rows, batch.bytes_read, source.size)
    await runs.advance(conn, run.id, 0, report.counts(), now, finished=True)
    report.issues.sort(key=lambda i: i.line)
    return report


async def _committed(engine, campaign, source, path, options, phone_field, update, progress) -> ImportReport:
    async with engine.begin() as conn:
        camp = await find_campaign(conn, campaign)
        _check_phone_field(camp, phone_field, source)
        run = await runs.open_run(conn, camp.id, str(path), runs.fingerprint(path, options), utcnow())
    report = ImportReport(campaign=camp.name, run_id=run.id)
    if run.line_done:
        report.merge_counts(run.counts or {})
        report.resumed_at = run.line_done
    batches = Batches(camp, report, update=update, run_id=run.id, issues_to_db=True)
    line = run.line_done
    async for batch in _read_ahead(_batched(source, batches, run.line_done)):
        await _commit_batch(engine, batches, batch, run.id)
        line = batch.line
        progress(report.rows, batch.bytes_read, source.size)
    async with engine.begin() as conn:
        await runs.advance(conn, run.id, line, report.counts(), utcnow(), finished=True)
    return report


async def _commit_batch(engine: AsyncEngine, batches: Batches, batch: Prepared, run_id: int) -> None:
    """One batch and the run's progress in one transaction; once more if a concurrent writer (the
    API) stored one of its contacts meanwhile."""
    saved = batches.report.counts()
    for attempt in (1, 2):
        try:
            async with engine.begin() as conn:
                await batches.step(conn, batch)
                await runs.advance(conn, run_id, batch.line, batches.report.counts(), utcnow())
            return
        except IntegrityError:
            if attempt == 2:
                raise
            _restore(batches.report, saved)


def _restore(report: ImportReport, counts: dict) -> None:
    for name, value in counts.items():
        if name == "predial":
            report.predial.clear()
            report.predial.update(value)
        else:
            setattr(report, name, value)
