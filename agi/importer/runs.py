"""An import run: one file into one campaign, committed batch by batch, so an interrupted import
(Ctrl-C, kill, a lost connection) can be run again to finish. The run is found again by the file's
fingerprint (its size, its first and last bytes, and the options that shape its rows); each batch's
transaction also moves the run's ``line_done`` and counts, so a batch is either all in, with its
progress, or not at all. Nothing is imported twice either way: identity keys and the one membership
per contact and campaign hold that; the run only spares the work and keeps the report whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import AsyncIterator

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.db.models import ImportIssue, ImportRun
from agi.importer.rows import RowIssue

_runs = ImportRun.__table__
_issues = ImportIssue.__table__
EDGE_BYTES = 1 << 20


def fingerprint(path: str | Path, options: dict) -> str:
    """SHA-256 of the file's size, its first and last MiB, and the options (a changed file or other
    options make another run)."""
    h = hashlib.sha256()
    size = os.path.getsize(path)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            fh.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            h.update(fh.read())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


async def open_run(conn: AsyncConnection, campaign_id: int, source: str, print_: str,
                   now: dt.datetime, *, resume: bool = True):
    """The unfinished run of this file into this campaign (to go on with), or a new one."""
    if resume:
        row = (await conn.execute(
            select(_runs.c.id, _runs.c.line_done, _runs.c.counts)
            .where(_runs.c.campaign_id == campaign_id, _runs.c.fingerprint == print_, _runs.c.finished_at.is_(None))
            .order_by(_runs.c.id.desc()).limit(1))).first()
        if row is not None:
            return row
    new_id = (await conn.execute(insert(_runs).returning(_runs.c.id).values(
        campaign_id=campaign_id, source=source[:500], fingerprint=print_, line_done=0, counts=None,
        started_at=now, updated_at=now))).scalar_one()
    return (await conn.execute(select(_runs.c.id, _runs.c.line_done, _runs.c.counts)
                               .where(_runs.c.id == new_id))).one()


async def advance(conn: AsyncConnection, run_id: int, line_done: int, counts: dict, now: dt.datetime,
                  *, finished: bool = False) -> None:
    values = {"line_done": line_done, "counts": counts, "updated_at": now}
    if finished:
        values["finished_at"] = now
    await conn.execute(update(_runs).where(_runs.c.id == run_id).values(**values))


async def iter_issues(engine: AsyncEngine, run_id: int, page: int = 5000) -> AsyncIterator[RowIssue]:
    """The run's reported rows by line, page by page (never all in memory)."""
    after = (0, 0)
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(_issues.c.id, _issues.c.line, _issues.c.reason, _issues.c.detail)
                .where(_issues.c.run_id == run_id,
                       (_issues.c.line > after[0]) | ((_issues.c.line == after[0]) & (_issues.c.id > after[1])))
                .order_by(_issues.c.line, _issues.c.id).limit(page))).all()
        if not rows:
            return
        for r in rows:
            yield RowIssue(r.line, r.reason, r.detail)
        after = (rows[-1].line, rows[-1].id)
