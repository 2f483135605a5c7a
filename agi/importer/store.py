"""The import's reads and writes, batch by batch: what is stored under the batch's identities, and
the batch's plan written (agi.importer.plan).

PostgreSQL bulk-loads with ``COPY`` through psycopg (ids taken from the tables' sequences first,
so nothing is read back row by row); SQLite takes multi-row INSERTs. Both write the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Iterable, Sequence

from sqlalchemy import ARRAY, String, any_, bindparam, cast, func, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.attempts import record_predial
from agi.db.models import Attempt, CampaignContact, Contact, DncEntry, ImportIssue, new_attempt_id
from agi.importer.plan import WAITING, Member, Plan, Stored
from agi.importer.rows import Row, RowIssue
from agi.outcomes import PHONE_FIELDS, Result
from agi.rules.predial import Dialable
from agi.rules.retry import Outcome, RetryPolicy, next_step

_ct = Contact.__table__
_cc = CampaignContact.__table__
_at = Attempt.__table__
_dnc = DncEntry.__table__
_issues = ImportIssue.__table__

CONTACT_COLUMNS = ("id", "dedupe_key", "external_id", "first_name", "last_name", *PHONE_FIELDS, "dnc", "custom",
                   "created_at")
MEMBER_COLUMNS = ("id", "campaign_id", "contact_id", "state", "number", "timezone", "attempts", "next_attempt_at",
                  "last_result", "last_attempt_id", "updated_at", "import_run_id", "import_line")
ATTEMPT_COLUMNS = ("id", "campaign_id", "contact_id", "membership_id", "number", "attempt_no", "queued_at",
                   "ended_at", "result", "charged", "ivr_keys", "caller_abandoned", "callback", "detail")


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


# --- reads --------------------------------------------------------------------------------------


def _among(conn: AsyncConnection, column, values: list):
    """``column IN values`` with one parameter, whatever the count: on PostgreSQL a text split into
    an array by the server (``= ANY``), on SQLite a JSON array (``json_each``). One statement text
    for every batch: thousands of parameters would cost their rendering, and each count would be
    another statement kept in the driver's cache (memory growing with the file on SQLite)."""
    if is_postgres(conn):
        joined = bindparam(f"{column.name}_values", "\x1f".join(map(str, values)), type_=String)
        return column == any_(cast(func.string_to_array(joined, "\x1f"), ARRAY(column.type)))
    array = bindparam(f"{column.name}_values", json.dumps(list(values)), type_=String)
    return column.in_(select(literal_column("value")).select_from(func.json_each(array)).scalar_subquery())


async def stored_contacts(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Stored]:
    if not keys:
        return {}
    cols = [_ct.c.id, _ct.c.dedupe_key, _ct.c.dnc, _ct.c.external_id, _ct.c.first_name, _ct.c.last_name,
            _ct.c.custom, *(_ct.c[p] for p in PHONE_FIELDS)]
    rows = (await conn.execute(select(*cols).where(_among(conn, _ct.c.dedupe_key, list(keys))))).all()
    return {r.dedupe_key: Stored(id=r.id, dnc=bool(r.dnc), external_id=r.external_id, first_name=r.first_name or "",
                                 last_name=r.last_name or "", phones={p: getattr(r, p) for p in PHONE_FIELDS},
                                 custom=dict(r.custom or {}))
            for r in rows}


async def members_of(conn: AsyncConnection, campaign_id: int, contact_ids: Iterable[int]) -> dict[int, Member]:
    ids = list(contact_ids)
    if not ids:
        return {}
    rows = (await conn.execute(
        select(_cc.c.id, _cc.c.contact_id, _cc.c.state, _cc.c.import_run_id, _cc.c.import_line)
        .where(_cc.c.campaign_id == campaign_id, _among(conn, _cc.c.contact_id, ids)))).all()
    return {r.contact_id: Member(r.id, r.state, r.import_run_id, r.import_line) for r in rows}


async def listed_numbers(conn: AsyncConnection, numbers: Iterable[str]) -> frozenset[str]:
    wanted = sorted(set(numbers))
    if not wanted:
        return frozenset()
    return frozenset((await conn.execute(select(_dnc.c.number).where(_among(conn, _dnc.c.number, wanted)))).scalars())


# --- writes -------------------------------------------------------------------------------------


class Writer:
    """The writes of one batch's plan, on one connection in the caller's transaction."""

    def __init__(self, conn: AsyncConnection, campaign_id: int, retry: RetryPolicy, run_id: int | None,
                 now: dt.datetime) -> None:
        self.conn = conn
        self.campaign_id = campaign_id
        self.retry = retry
        self.run_id = run_id
        self.now = now
        self.naive_now = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
        self.pg = is_postgres(conn)

    async def write(self, plan: Plan, stored: dict[str, Stored]) -> dict[str, int]:
        """Write ``plan``; returns identity key -> contact id for every contact of the batch."""
        ids = {key: s.id for key, s in stored.items()}
        if plan.new_rows:
            ids.update(await self._contacts(plan.new_rows))
        for contact_id, values in plan.updates.items():
            await self.conn.execute(update(_ct).where(_ct.c.id == contact_id).values(**values))
        for membership_id, verdict in plan.renumber:
            await self.conn.execute(update(_cc).where(_cc.c.id == membership_id).values(
                number=verdict.number, timezone=one_zone(verdict), updated_at=self.now))
        if plan.mark_dnc:
            await mark_dnc(self.conn, plan.mark_dnc, self.now, "the contact's DNC flag was set by import line {line}")
        if plan.joins:
            await self._memberships(plan, ids)
        if plan.issues and self.run_id is not None:
            await self.issues(plan.issues)
        return ids

    async def issues(self, issues: list[RowIssue]) -> None:
        rows = [(self.run_id, i.line, i.reason, i.detail) for i in issues]
        if self.pg:
            await _copy(self.conn, "import_issues", ("run_id", "line", "reason", "detail"), rows)
        else:
            await self.conn.execute(insert(_issues), [dict(zip(("run_id", "line", "reason", "detail"), r))
                                                      for r in rows])

    async def _contacts(self, rows: list[Row]) -> dict[str, int]:
        values = [(r.dedupe_key, r.external_id, r.first_name, r.last_name, *(r.phones[p] for p in PHONE_FIELDS),
                   r.dnc, r.custom) for r in rows]
        if self.pg:
            ids = await _next_ids(self.conn, "contacts", len(values))
            await _copy(self.conn, "contacts", CONTACT_COLUMNS,
                        [(i, *v[:-1], _json(v[-1]), self.naive_now) for i, v in zip(ids, values)])
            return {v[0]: i for i, v in zip(ids, values)}
        names = CONTACT_COLUMNS[1:-1]
        await self.conn.execute(insert(_ct), [{**dict(zip(names, v)), "created_at": self.now} for v in values])
        keys = [v[0] for v in values]
        found = await self.conn.execute(select(_ct.c.id, _ct.c.dedupe_key).where(_among(self.conn, _ct.c.dedupe_key,
                                                                                         keys)))
        return {key: cid for cid, key in found.all()}

    async def _memberships(self, plan: Plan, ids: dict[str, int]) -> None:
        members, attempts = [], []
        for join in plan.joins:
            contact_id = ids[join.key]
            if isinstance(join.verdict, Dialable):
                members.append([contact_id, "pending", join.number, one_zone(join.verdict), 0, None, None, None,
                                join.line])
                continue
            step = next_step(Outcome(join.verdict), 0, self.now, self.retry)
            attempt_id = new_attempt_id()
            members.append([contact_id, step.state.value, join.number, None, step.attempts, step.next_attempt_at,
                            join.verdict.value, attempt_id, join.line])
            attempts.append([attempt_id, contact_id, join.dialed, join.verdict.value,
                             f"import line {join.line}: {join.why}"])
        membership_of = await self._insert_members(members)
        if attempts:
            await self._insert_attempts(attempts, membership_of)

    async def _insert_members(self, members: list[list]) -> dict[int, int]:
        """contact id -> membership id of the new memberships."""
        if self.pg:
            ids = await _next_ids(self.conn, "campaign_contacts", len(members))
            await _copy(self.conn, "campaign_contacts", MEMBER_COLUMNS, [
                (i, self.campaign_id, m[0], m[1], m[2], m[3], m[4], _naive(m[5]), m[6], m[7], self.naive_now,
                 self.run_id, m[8]) for i, m in zip(ids, members)])
            return {m[0]: i for i, m in zip(ids, members)}
        names = MEMBER_COLUMNS[2:10]
        await self.conn.execute(insert(_cc), [
            {"campaign_id": self.campaign_id, **dict(zip(names, m[:8])), "updated_at": self.now,
             "import_run_id": self.run_id, "import_line": m[8]} for m in members])
        wanted = [m[0] for m in members if m[7] is not None]  # only pre-dial attempts need the membership
        if not wanted:
            return {}
        found = await self.conn.execute(select(_cc.c.id, _cc.c.contact_id).where(
            _cc.c.campaign_id == self.campaign_id, _among(self.conn, _cc.c.contact_id, wanted)))
        return {contact_id: mid for mid, contact_id in found.all()}

    async def _insert_attempts(self, attempts: list[list], membership_of: dict[int, int]) -> None:
        rows = [(a[0], self.campaign_id, a[1], membership_of[a[1]], a[2], 1, self.naive_now, self.naive_now, a[3],
                 False, "", False, False, a[4]) for a in attempts]
        if self.pg:
            await _copy(self.conn, "attempts", ATTEMPT_COLUMNS, rows)
            return
        await self.conn.execute(insert(_at), [
            {**dict(zip(ATTEMPT_COLUMNS, r)), "queued_at": self.now, "ended_at": self.now} for r in rows])


def one_zone(verdict: Dialable) -> str | None:
    """The membership's zone when the number has one; several (or none) -> None: the window rule
    then keeps to all the number's zones, derived from the number itself."""
    return verdict.timezones[0] if len(verdict.timezones) == 1 else None


async def mark_dnc(conn: AsyncConnection, contacts: dict[int, int], now: dt.datetime, why: str) -> int:
    """Make contacts DNC at once (id -> line, for ``why``): the flag, and each of their memberships
    still waiting, in every campaign, skipped with result dnc and its pre-dial attempt (the one
    pre-dial write, agi.db.attempts.record_predial). Returns the memberships skipped."""
    ids = sorted(contacts)
    await conn.execute(update(_ct).where(_ct.c.id.in_(ids)).values(dnc=True))
    waiting = (await conn.execute(
        select(_cc.c.id, _cc.c.campaign_id, _cc.c.contact_id, _cc.c.number)
        .where(_cc.c.contact_id.in_(ids), _cc.c.state.in_(WAITING)).order_by(_cc.c.id))).all()
    skipped = 0
    for m in waiting:
        done = await record_predial(conn, m.id, m.campaign_id, m.contact_id, Result.DNC,
                                    why.format(line=contacts[m.contact_id]), now, number=m.number)
        skipped += done is not None
    return skipped


# --- PostgreSQL bulk load -----------------------------------------------------------------------


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value is not None else None


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _next_ids(conn: AsyncConnection, table: str, n: int) -> list[int]:
    """``n`` ids from the table's own sequence: concurrent writers never get the same one."""
    rows = await conn.execute(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
                              .bindparams(bindparam("t"), bindparam("n")), {"t": table, "n": n})
    return [r[0] for r in rows]


async def _copy(conn: AsyncConnection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """``COPY table (columns) FROM STDIN`` on the connection's own transaction."""
    raw = (await conn.get_raw_connection()).driver_connection
    async with raw.cursor() as cur:
        async with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)
