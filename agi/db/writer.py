"""The call flows' attempt writes, run by one AttemptWriter chosen at start-up for the database.

Every write is the one definition in ``agi.db.attempt_writes``; only how its statements travel
differs. ``AttemptWriter`` (SQLite, or any database): each write in its own SQLAlchemy
transaction, one statement after another. ``PgAttemptWriter`` (PostgreSQL): the same Core
statements, each compiled once and prepared once per connection, over connections borrowed
from the engine's pool (one pool for the whole process); each Step of a write is one message
of EXECUTEs, one round trip, and the writes of calls reaching the same write together run side
by side in one transaction (group commit), so a group of N calls costs the round trips of one.
(psycopg's pipeline mode sends each statement on its own: about twice the CPU here.) With
server-side prepared statements off (``?prepared_statements=false``: PgBouncer before 1.21 in
transaction mode) the same message carries the statements themselves, values bound in.

Either writer tries a write again while the database cannot be reached (agi.db.outage: backoff,
logged once per outage): every write is idempotent, so one sent twice changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import re
import time
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi import metrics
from agi.db import attempts
from agi.db.attempt_writes import COUNT, ROW, SCALAR, Statement, Step, T, Write
from agi.db.engine import prepared_statements
from agi.db.outage import OUTAGE, RETRY_FOR_S, backoff, retrying, transient

GROUP_MAX = 64  # writes of one kind sharing a transaction at most


class AttemptWriter:
    """Runs the attempt writes over SQLAlchemy: each in its own transaction, statement by statement."""

    def __init__(self, engine: AsyncEngine, retry_for: float = RETRY_FOR_S) -> None:
        self.engine = engine
        self.retry_for = retry_for  # seconds a write is tried again while the database is unreachable

    @staticmethod
    def for_engine(engine: AsyncEngine, retry_for: float = RETRY_FOR_S, **grouping) -> AttemptWriter:
        """The writer for ``engine``'s database: pipelined and grouped on PostgreSQL (``grouping``:
        PgAttemptWriter's group_max, by_kind)."""
        if engine.dialect.name == "postgresql":
            return PgAttemptWriter(engine, retry_for=retry_for, **grouping)
        return AttemptWriter(engine, retry_for=retry_for)

    async def run(self, write: Callable[..., Write[T]], attempt_id: str, *args, **kwargs) -> T:
        """``write(attempt_id, *args, **kwargs)`` (an agi.db.attempt_writes definition), committed."""
        with metrics.db_write(write.__name__):
            return (await self.run_all([functools.partial(write, attempt_id, *args, **kwargs)]))[0]

    async def run_all(self, writes: list[Callable[[], Write]], retry_for: float | None = None) -> list:
        """The writes (each made afresh by its callable: it may run again) in one transaction; their
        answers. Tried again for up to ``retry_for`` seconds (default the writer's) while the
        database cannot be reached."""

        async def once() -> list:
            async with self.engine.begin() as conn:
                return [await attempts.run(conn, make()) for make in writes]

        return await retrying(once, "attempt writes", retry_for=self.retry_for if retry_for is None else retry_for)

    async def close(self) -> None:
        """Let the writes in flight land (the engine is its owner's to dispose)."""


@dataclass(frozen=True)
class _Job:
    attempt_id: str | None  # None: a write of no attempt yet (a pre-dial result, a claim given back)
    write: Callable[[], Write]  # makes the write afresh: it may run again (alone, or reconnected)
    done: asyncio.Future


class PgAttemptWriter(AttemptWriter):
    """Runs the attempt writes on PostgreSQL: a Step per round trip, the writes of calls arriving together grouped.

    A write leaves at once when no group of its kind is in flight; those arriving meanwhile leave
    together as soon as it returns. At light load a call never waits for company; under load the
    groups grow by themselves. An attempt appears once per group (its second write must read what
    the first wrote). If a group's transaction fails (a deadlock, one bad value) it is rolled back
    whole and each of its writes runs again alone: every write is idempotent.

    ``by_kind`` (the FastAGI server's choice: a call's next command waits for its write) keeps a
    group in flight per kind of write; without it (the originator's: nothing waits on its writes
    but the next Originates) all kinds share one group at a time, so the writes of a busy second
    travel in a few round trips whatever their number.
    """

    def __init__(self, engine: AsyncEngine, group_max: int = GROUP_MAX, retry_for: float = RETRY_FOR_S,
                 by_kind: bool = True) -> None:
        super().__init__(engine, retry_for)
        self.group_max = group_max
        self.by_kind = by_kind
        self.prepared = prepared_statements(engine)
        self._waiting: dict[Callable, list[_Job]] = {}
        self._in_flight: set[Callable] = set()
        self._tasks: set[asyncio.Task] = set()
        self._idle: list[_Connection] = []  # borrowed from the engine's pool
        event.listen(engine.sync_engine, "engine_disposed", self._disposed)

    async def run(self, write: Callable[..., Write[T]], attempt_id: str, *args, **kwargs) -> T:
        with metrics.db_write(write.__name__):  # as the call sees it: waiting for its group included
            return await self._queue(write, attempt_id, functools.partial(write, attempt_id, *args, **kwargs))

    def _queue(self, write: Callable, attempt_id: str | None, make: Callable[[], Write]) -> asyncio.Future:
        kind = write if self.by_kind else None
        job = _Job(attempt_id, make, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(kind, []).append(job)
        self._send_next(kind)
        return job.done

    async def run_all(self, writes: list[Callable[[], Write]], retry_for: float | None = None) -> list:
        """The writes side by side in one transaction (one round trip per Step of the longest);
        without ``by_kind``, with whatever other writes are waiting (``retry_for`` is then the writer's)."""
        if self.by_kind:
            return await self.transaction(writes, retry_for)
        return list(await asyncio.gather(*(self._queue(make, None, make) for make in writes)))

    async def close(self) -> None:
        """Let the writes in flight land, then give the borrowed connections back to the pool."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if event.contains(self.engine.sync_engine, "engine_disposed", self._disposed):
            event.remove(self.engine.sync_engine, "engine_disposed", self._disposed)
        idle, self._idle = self._idle, []
        for db in idle:
            await db.sa.close()

    def _disposed(self, _engine) -> None:
        """The engine's pool was disposed (its owner never closed this writer): the borrowed
        connections are closed too. Runs inside the engine's dispose (a greenlet: sync calls may wait)."""
        idle, self._idle = self._idle, []
        for db in idle:
            if db.sa.sync_connection is not None:
                db.sa.sync_connection.invalidate()

    def _send_next(self, kind: Callable) -> None:
        if kind in self._in_flight or not self._waiting.get(kind):
            return
        group: list[_Job] = []
        later: list[_Job] = []
        attempts: set[str] = set()
        for job in self._waiting.pop(kind):
            if len(group) >= self.group_max or job.attempt_id in attempts:
                later.append(job)
            else:
                group.append(job)
                if job.attempt_id is not None:
                    attempts.add(job.attempt_id)
        if later:
            self._waiting[kind] = later
        group.sort(key=lambda job: job.attempt_id or "")  # rows locked in one order: groups never wait in a circle
        self._in_flight.add(kind)
        task = asyncio.get_running_loop().create_task(self._write_group(kind, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_group(self, kind: Callable, group: list[_Job]) -> None:
        try:
            try:
                outs = await self.transaction([job.write for job in group])
            except Exception as exc:
                if len(group) == 1 or transient(exc):  # tried for retry_for already: the database is gone
                    for job in group:
                        _settle(job.done, exc=exc)
                    return
                for job in group:  # the shared transaction rolled back whole: each write on its own
                    try:
                        _settle(job.done, (await self.transaction([job.write]))[0])
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

    async def transaction(self, writes: list[Callable[[], Write]], retry_for: float | None = None) -> list:
        """The writes (each made afresh by its callable) in one transaction; their answers. While
        the database cannot be reached (refused, restarted, out of connections) it is tried
        again with backoff, for up to ``retry_for`` seconds (default the writer's), on a fresh
        connection."""
        end = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        tries = 0
        while True:
            try:
                out = await self._transaction_once(writes)
            except Exception as exc:
                if not transient(exc) or time.monotonic() >= end:
                    raise
                tries += 1
                OUTAGE.failed("attempt writes", exc)
                await self._drop_idle()  # after a restart every held connection is dead too
                await asyncio.sleep(min(backoff(tries), max(0.0, end - time.monotonic())))
                continue
            OUTAGE.ok()
            return out

    async def _transaction_once(self, writes: list[Callable[[], Write]]) -> list:
        db = self._idle.pop() if self._idle else await _Connection.borrow(self.engine, self.prepared)
        try:
            out = await _lockstep(db, [make() for make in writes])
        except psycopg.OperationalError:
            if db.conn.broken or db.conn.closed:
                await _invalidate(db)  # not back into the pool
            else:
                await self._keep(db)
            raise
        except Exception:
            await self._keep(db)
            raise
        except BaseException:  # cancelled mid-write: the connection's state is unknown
            await _invalidate(db)
            raise
        self._idle.append(db)
        return out

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for db in idle:
            await _invalidate(db)

    async def _keep(self, db: _Connection) -> None:
        """A connection whose write failed: rolled back if a transaction is still open, kept."""
        try:
            if db.conn.info.transaction_status != TransactionStatus.IDLE:
                await db.conn.rollback()
            await db.learn_prepared()  # a rollback may have deallocated them
        except psycopg.Error:
            await _invalidate(db)
            return
        self._idle.append(db)


async def _invalidate(db: _Connection) -> None:
    """Close a connection of ours for good (the pool opens a new one when needed)."""
    try:
        await db.sa.invalidate()
    except Exception:  # noqa: BLE001 - it is gone either way
        pass


class _Connection:
    """A connection of the engine's pool, held by a PgAttemptWriter until it closes (no checkout,
    and no ping, per write), in autocommit; the statements prepared on it, once each (unless
    ``use_prepared`` is off: each statement then travels whole, values bound in)."""

    def __init__(self, sa: AsyncConnection, conn: psycopg.AsyncConnection, use_prepared: bool = True) -> None:
        self.sa, self.conn = sa, conn
        self.cur = psycopg.AsyncClientCursor(conn)
        self.use_prepared = use_prepared
        self.prepared: set[str] = set()

    @classmethod
    async def borrow(cls, engine: AsyncEngine, use_prepared: bool = True) -> _Connection:
        sa = await engine.connect()
        try:
            await sa.execution_options(isolation_level="AUTOCOMMIT")
            db = cls(sa, (await sa.get_raw_connection()).driver_connection, use_prepared)
            await db.learn_prepared()
        except BaseException:
            await sa.close()
            raise
        return db

    async def learn_prepared(self) -> None:
        if not self.use_prepared:
            return
        await self.cur.execute("SELECT name FROM pg_prepared_statements")
        self.prepared = {row[0] for row in await self.cur.fetchall()}

    async def send(self, statements: list[Statement], *, begin: bool = False, commit: bool = False) -> list:
        """The statements in one message (one round trip), each an EXECUTE of its prepared form with
        its values quoted in (psycopg's client-side binding); with BEGIN before, COMMIT after."""
        compiled = [_compiled(s.sql) for s in statements]
        if self.use_prepared:
            new = {c.name: c.prepare for c in compiled if c.name not in self.prepared}
            if new:  # prepared statements outlive transactions, so they are made once per connection
                await self.cur.execute(";\n".join(new.values()))
                self.prepared.update(new)
            texts = [self.cur.mogrify(c.execute, c.values(s.params)) for c, s in zip(compiled, statements)]
        else:
            texts = [self.cur.mogrify(c.direct, {f"v{i}": v for i, v in enumerate(c.values(s.params), 1)})
                     for c, s in zip(compiled, statements)]
        await self.cur.execute(";\n".join(["BEGIN"] * begin + texts + ["COMMIT"] * commit))
        if begin:
            self.cur.nextset()  # past BEGIN's
        results = []
        for c, statement in zip(compiled, statements):
            results.append(await c.result(self.cur, statement.returns))
            self.cur.nextset()
        return results


async def _lockstep(db: _Connection, writes: list[Write]) -> list:
    """Run the writes side by side: the n-th Steps of all of them in one message, one round trip.

    A round whose Steps all may commit is one implicit transaction (the message's statements
    kept or dropped together) or, inside an explicit one, goes out with its COMMIT; a round that
    may not opens a transaction with BEGIN if none is open."""
    outs: list = [None] * len(writes)
    steps: dict[int, Step] = {}
    for i, write in enumerate(writes):
        _advance(write, None, i, steps, outs)
    in_transaction = False
    while steps:
        done = all(st.commit for st in steps.values())
        begin = not (done or in_transaction)
        sent = [s for st in steps.values() for s in st.statements]
        results = iter(await db.send(sent, begin=begin, commit=done and in_transaction))
        in_transaction = (in_transaction or begin) and not done
        later: dict[int, Step] = {}
        for i, st in steps.items():
            _advance(writes[i], [next(results) for _ in st.statements], i, later, outs)
        steps = later
    if in_transaction:
        await db.send([], commit=True)
    return outs


def _advance(write: Write, results: list | None, i: int, steps: dict[int, Step], outs: list) -> None:
    try:
        steps[i] = write.send(results)
    except StopIteration as done:
        outs[i] = done.value


_PG = pg_psycopg.dialect(paramstyle="numeric_dollar")


class _Compiled:
    """A statement of agi.db.attempt_sql compiled once for PostgreSQL: its PREPARE (named after its
    text), the EXECUTE that runs it, its constant values and a bind processor (or None) per value
    bound on each call (the ``p_*`` ones), in the order of its parameters."""

    def __init__(self, stmt) -> None:
        compiled = stmt.compile(dialect=_PG)
        if compiled.insert_prefetch:  # SQLAlchemy would compute these at execution; we send the text
            raise ValueError(f"give {[c.key for c in compiled.insert_prefetch]} explicitly in {stmt}")
        per_call = [name for name in compiled.binds if name.startswith("p_")]
        state = compiled.construct_expanded_state({name: None for name in per_call})
        self.name = "agi_" + hashlib.sha1(state.statement.encode()).hexdigest()[:20]
        self.prepare = f"PREPARE {self.name} AS {state.statement}"
        self.order = state.positiontup or []
        self.execute = f"EXECUTE {self.name}" + (f"({', '.join(['%s'] * len(self.order))})" if self.order else "")
        # the statement itself, for a connection without prepared statements: $n -> the n-th value
        self.direct = re.sub(r"\$(\d+)", r"%(v\1)s", state.statement.replace("%", "%%"))
        self.processors = {name: compiled.binds[name].type.bind_processor(_PG) for name in per_call}
        self.constants = {k: v for k, v in state.parameters.items() if k not in self.processors}
        self._row = None  # its rows' named tuple, made from the first result

    async def result(self, cur: psycopg.AsyncClientCursor, returns: str):
        """What ``returns`` asks of the cursor's current result. Rows as named tuples; ``timestamp``
        columns hold naive UTC (UTCDateTime): read back aware."""
        if returns == COUNT:
            return cur.rowcount
        if returns not in (ROW, SCALAR):
            return None
        values = await cur.fetchone()
        if values is None or returns == SCALAR:
            return values if values is None else values[0]
        if self._row is None:
            self._row = namedtuple("Row", [d.name for d in cur.description])._make
        return self._row([v.replace(tzinfo=dt.timezone.utc) if type(v) is dt.datetime else v for v in values])

    def values(self, params: dict) -> list:
        if self.processors.keys() != params.keys():
            raise TypeError(f"values {sorted(params)} given for parameters {sorted(self.processors)}")
        values = {**self.constants, **{name: value if (proc := self.processors[name]) is None else proc(value)
                                       for name, value in params.items()}}
        return [values[name] for name in self.order]


def _compiled(stmt) -> _Compiled:
    if isinstance(stmt, Mapping):  # the statement of each dialect
        stmt = stmt[_PG.name]
    return _compile(stmt)


@functools.cache
def _compile(stmt) -> _Compiled:
    return _Compiled(stmt)


def _settle(fut: asyncio.Future, value=None, *, exc: BaseException | None = None) -> None:
    if not fut.done():  # its caller may have been cancelled meanwhile
        fut.set_result(value) if exc is None else fut.set_exception(exc)
