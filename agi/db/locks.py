"""One at a time: an import, or a migration, holds a lock for its whole run, so a second one waits
(after saying so) instead of failing half-way on the first one's rows.

PostgreSQL: a session advisory lock on a connection of its own (a killed process's connection
closes, and the lock goes with it). SQLite: an exclusive ``flock`` on a file beside the database
(released by the kernel when the process ends). An in-memory SQLite database has no other user.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from pathlib import Path
from typing import AsyncIterator, Callable

from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from agi.db.engine import normalize_url

# pg advisory lock keys: "dialer-import" and "dialer-migrations" as int64s of our own choosing
# (the migrations' own transaction lock, migrations/env.py, uses the second too)
LOCK_KEYS = {"import": 0x6469616C6572696D, "migration": 0x6469616C65726D67}

OnWait = Callable[[str], None]


def _sqlite_path(url: str) -> Path | None:
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


@contextlib.asynccontextmanager
async def exclusive(url: str, what: str, on_wait: OnWait = lambda message: None) -> AsyncIterator[None]:
    """Hold the ``what`` lock ("import" or "migration") of the database at ``url`` while inside."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "postgresql":
        async with _pg_lock(url, LOCK_KEYS[what], what, on_wait):
            yield
        return
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    async with _file_lock(path.with_name(path.name + f".{what}.lock"), what, on_wait):
        yield


def waiting_message(what: str) -> str:
    return f"another {what} is running on this database; waiting for it to finish (Ctrl-C to give up)"


@contextlib.asynccontextmanager
async def _pg_lock(url: str, key: int, what: str, on_wait: OnWait) -> AsyncIterator[None]:
    engine: AsyncEngine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            params = {"k": key}
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)").bindparams(bindparam("k")),
                                      params)).scalar()
            if not got:
                on_wait(waiting_message(what))
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), params)
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), params)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _file_lock(path: Path, what: str, on_wait: OnWait) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(waiting_message(what))
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def sqlite_file_lock(url: str, what: str, on_wait: OnWait = lambda message: None):
    """The SQLite side of ``exclusive`` for synchronous callers (the migrations); nothing on PostgreSQL,
    whose migrations take their advisory lock in migrations/env.py."""
    url = normalize_url(url)
    path = _sqlite_path(url) if make_url(url).get_backend_name() == "sqlite" else None
    if path is None or not path.parent.is_dir():
        yield
        return
    fd = os.open(path.with_name(path.name + f".{what}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(waiting_message(what))
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
