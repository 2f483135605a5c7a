"""The call flows' attempt writes, run by one AttemptWriter chosen at start-up for the database.

Every write is the one definition in ``agi.db.attempt_writes``; only how its statements travel
differs. ``AttemptWriter`` (SQLite, or any database): each write in its own SQLAlchemy
transaction, one statement after another. ``PgAttemptWriter`` (PostgreSQL): the same Core
statements compiled once for psycopg, sent over a connection borrowed from the engine's pool
(one pool for the whole process): each Step of a write pipelined in one round trip, the COMMIT
with its last Step, and the writes of calls reaching the same write together run in lockstep
in one transaction (group commit), so a group of N calls costs the round trips of one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db import attempts
from agi.db.attempt_writes import COUNT, ROW, SCALAR, Statement, Step, T, Write

GROUP_MAX = 64  # writes of one kind sharing a transaction at most


class AttemptWriter:
    """Runs the attempt writes over SQLAlchemy: each in its own transaction, statement by statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @staticmethod
    def for_engine(engine: AsyncEngine) -> "AttemptWriter":
        """The writer for ``engine``'s database: pipelined and grouped on PostgreSQL."""
        return PgAttemptWriter(engine) if engine.dialect.name == "postgresql" else AttemptWriter(engine)

    async def run(self, write: Callable[..., Write[T]], attempt_id: str, *args, **kwargs) -> T:
        """``write(attempt_id, *args, **kwargs)`` (an agi.db.attempt_writes definition), committed."""
        async with self.engine.begin() as conn:
            return await attempts.run(conn, write(attempt_id, *args, **kwargs))

    async def close(self) -> None:
        """Let the writes in flight land (the engine is its owner's to dispose)."""


@dataclass(frozen=True)
class _Job:
    attempt_id: str
    write: Callable[[], Write]  # a fresh generator each call: a failed group's writes run again alone
    done: asyncio.Future


class PgAttemptWriter(AttemptWriter):
    """Runs the attempt writes on PostgreSQL: pipelined, the writes of calls arriving together grouped.

    A write leaves at once when no group of its kind is in flight; those arriving meanwhile leave
    together as soon as it returns. At light load a call never waits for company; under load the
    groups grow by themselves. An attempt appears once per group (its second write must read what
    the first wrote). If a group's transaction fails (a deadlock, one bad value) it is rolled back
    whole and each of its writes runs again alone: every write is idempotent.
    """

    def __init__(self, engine: AsyncEngine, group_max: int = GROUP_MAX) -> None:
        super().__init__(engine)
        self.group_max = group_max
        self._waiting: dict[Callable, list[_Job]] = {}
        self._in_flight: set[Callable] = set()
        self._tasks: set[asyncio.Task] = set()

    async def run(self, write: Callable[..., Write[T]], attempt_id: str, *args, **kwargs) -> T:
        job = _Job(attempt_id, functools.partial(write, attempt_id, *args, **kwargs),
                   asyncio.get_running_loop().create_future())
        self._waiting.setdefault(write, []).append(job)
        self._send_next(write)
        return await job.done

    async def close(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _send_next(self, kind: Callable) -> None:
        if kind in self._in_flight or not self._waiting.get(kind):
            return
        group: list[_Job] = []
        later: list[_Job] = []
        for job in self._waiting.pop(kind):
            if len(group) >= self.group_max or any(job.attempt_id == j.attempt_id for j in group):
                later.append(job)
            else:
                group.append(job)
        if later:
            self._waiting[kind] = later
        self._in_flight.add(kind)
        task = asyncio.get_running_loop().create_task(self._write_group(kind, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_group(self, kind: Callable, group: list[_Job]) -> None:
        try:
            try:
                outs = await self.transaction([job.write() for job in group])
            except Exception as exc:
                if len(group) == 1:
                    return _settle(group[0].done, exc=exc)
                for job in group:  # the shared transaction rolled back whole: each write on its own
                    try:
                        _settle(job.done, (await self.transaction([job.write()]))[0])
                    except Exception as one:
                        _settle(job.done, exc=one)
                return
            for job, out in zip(group, outs):
                _settle(job.done, out)
        finally:
            for job in group:
                if not job.done.done():
                    job.done.cancel()
            self._in_flight.discard(kind)
            self._send_next(kind)  # the writes that arrived meanwhile

    async def transaction(self, writes: list[Write]) -> list:
        """``writes`` in one transaction on a connection of the engine's pool; their answers."""
        async with self.engine.connect() as sa:
            conn = (await sa.get_raw_connection()).driver_connection
            try:
                return await _lockstep(conn, writes)
            except BaseException:
                if conn.broken:  # the server went away: not back into the pool
                    await sa.invalidate()
                raise  # else the pool rolls the transaction back as the connection returns


async def _lockstep(conn: psycopg.AsyncConnection, writes: list[Write]) -> list:
    """Run the writes side by side: the n-th Steps of all of them in one pipelined round trip,
    the COMMIT with the round whose Steps are all last (else on its own at the end)."""
    outs: list = [None] * len(writes)
    steps: dict[int, Step] = {}
    for i, write in enumerate(writes):
        _advance(write, None, i, steps, outs)
    committed = False
    async with conn.pipeline() as pipeline:
        while steps:
            if committed:
                raise RuntimeError("an attempt write went on after the Step it said was its last")
            sent = {i: [await _send(conn, s) for s in st.statements] for i, st in steps.items()}
            committed = all(st.last for st in steps.values())
            await (conn.commit() if committed else pipeline.sync())
            later: dict[int, Step] = {}
            for i, cursors in sent.items():
                results = [await _result(cur, s) for cur, s in zip(cursors, steps[i].statements)]
                _advance(writes[i], results, i, later, outs)
            steps = later
        if not committed:
            await conn.commit()
    return outs


def _advance(write: Write, results: list | None, i: int, steps: dict[int, Step], outs: list) -> None:
    try:
        steps[i] = write.send(results)
    except StopIteration as done:
        outs[i] = done.value


async def _send(conn: psycopg.AsyncConnection, statement: Statement) -> psycopg.AsyncCursor:
    sql, constants, processors = _compiled(statement.sql)
    if processors.keys() != statement.params.keys():
        raise TypeError(f"values {sorted(statement.params)} given for parameters {sorted(processors)}")
    params = {name: value if (proc := processors[name]) is None else proc(value)
              for name, value in statement.params.items()}
    cur = conn.cursor(row_factory=_aware_row)
    await cur.execute(sql, {**constants, **params}, prepare=True)
    return cur


async def _result(cur: psycopg.AsyncCursor, statement: Statement):
    if statement.returns == ROW:
        return await cur.fetchone()
    if statement.returns == COUNT:
        return cur.rowcount
    if statement.returns == SCALAR:
        return (await cur.fetchone())[0]
    return None


_PG = pg_psycopg.dialect()


def _compiled(stmt) -> tuple[str, dict, dict]:
    """A statement of agi.db.attempt_sql as psycopg SQL text, compiled once: the text, its constant
    values, and a bind processor (or None) per value bound on each call (the ``p_*`` ones)."""
    if isinstance(stmt, Mapping):
        stmt = stmt[_PG.name]
    return _compile(stmt)


@functools.cache
def _compile(stmt) -> tuple[str, dict, dict]:
    compiled = stmt.compile(dialect=_PG)
    per_call = [name for name in compiled.binds if name.startswith("p_")]
    state = compiled.construct_expanded_state({name: None for name in per_call})
    processors = {name: compiled.binds[name].type.bind_processor(_PG) for name in per_call}
    constants = {k: v for k, v in state.parameters.items() if k not in processors}
    return state.statement, constants, processors


@functools.lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]):
    return namedtuple("Row", names)


def _aware_row(cursor: psycopg.AsyncCursor):
    """Rows as named tuples; ``timestamp`` columns hold naive UTC (UTCDateTime): read back aware."""
    if cursor.description is None:
        return tuple
    make = _row_class(tuple(d.name for d in cursor.description))._make
    return lambda values: make([v.replace(tzinfo=dt.timezone.utc) if type(v) is dt.datetime else v
                                for v in values])


def _settle(fut: asyncio.Future, value=None, *, exc: BaseException | None = None) -> None:
    if not fut.done():  # its caller may have been cancelled meanwhile
        fut.set_result(value) if exc is None else fut.set_exception(exc)
