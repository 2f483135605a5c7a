"""Schema migrations from code: upgrade, downgrade, current revision, models-vs-database check.

Plain (sync) functions so the CLI, the tests and ``asyncio.to_thread`` can call them;
the Alembic config is built here, so they work from any working directory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

# Alembic announces each autogenerate plugin at INFO as it loads: noise in the CLI's log
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from sqlalchemy import pool  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

import agi  # noqa: E402
from agi.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite, normalize_url  # noqa: E402
from agi.db.locks import sqlite_file_lock  # noqa: E402
from agi.db.models import Base  # noqa: E402

MIGRATIONS_DIR = Path(agi.__file__).resolve().parent.parent / "migrations"

T = TypeVar("T")


def alembic_config(url: str) -> Config:
    """An Alembic Config for ``url`` without alembic.ini."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise RuntimeError(f"migrations not found at {MIGRATIONS_DIR}; run from a source checkout")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = normalize_url(url)  # not in the ini options: '%' would need escaping
    return cfg


# Alembic's `context` is module-global: one command at a time per process. Between
# processes PostgreSQL's advisory lock in env.py serialises them.
_ALEMBIC_LOCK = threading.Lock()


def upgrade(url: str, rev: str = "head", on_wait: Callable[[str], None] = lambda message: None) -> None:
    """Migrate up to ``rev``; a second migration of the same database waits for the first (SQLite:
    a lock file beside it, ``on_wait`` told; PostgreSQL: the advisory lock of migrations/env.py)."""
    def run() -> None:
        with _ALEMBIC_LOCK, sqlite_file_lock(url, "migration", on_wait):
            command.upgrade(alembic_config(url), rev)

    _off_loop(run)


def downgrade(url: str, rev: str, on_wait: Callable[[str], None] = lambda message: None) -> None:
    def run() -> None:
        with _ALEMBIC_LOCK, sqlite_file_lock(url, "migration", on_wait):
            command.downgrade(alembic_config(url), rev)

    _off_loop(run)


def current(url: str) -> str | None:
    """The database's revision, or None for a database never migrated."""
    return _off_loop(lambda: asyncio.run(_with_connection(url, revision_of)))


def check(url: str) -> list:
    """Differences between the models and the migrated database (Alembic autogenerate diffs).

    An empty list means they agree.
    """
    return _off_loop(lambda: asyncio.run(_with_connection(url, _compare)))


def head() -> str:
    """The newest revision in migrations/."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def revision_of(sync_conn) -> str | None:
    """The revision of the database behind a sync connection (``AsyncConnection.run_sync``)."""
    return _context(sync_conn).get_current_revision()



def _compare(sync_conn) -> list:
    ctx = _context(sync_conn, compare_type=True, render_as_batch=True)
    return compare_metadata(ctx, Base.metadata)


def _context(sync_conn, **opts) -> MigrationContext:
    """A read-only MigrationContext, without Alembic's INFO lines about the dialect."""
    log = logging.getLogger("alembic.runtime.migration")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        return MigrationContext.configure(sync_conn, opts=opts)
    finally:
        log.setLevel(level)


async def _with_connection(url: str, fn: Callable):
    url = normalize_url(url)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000} if is_sqlite(url) else {}
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _off_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` here, or in a worker thread when this thread runs an event loop.

    The migration environment uses asyncio.run, which cannot nest in a running loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrate") as pool_:
        return pool_.submit(fn).result()
