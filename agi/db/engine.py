"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite (aiosqlite), configured alike.

SQLite gets WAL, a busy timeout and foreign keys on every connection, so several
processes (originator, FastAGI server, CLI) can share the embedded database.

PostgreSQL: each process holds at most ``pool`` connections (settings ``db_pool``, default 10),
never more: a caller waits for a free one instead of opening one more and closing it after use.
Four originators and two FastAGI servers then hold 60 of a stock server's ``max_connections=100``.
``?prepared_statements=false`` on the URL (or the setting ``db_prepared_statements``,
DIALER_DB_PREPARED_STATEMENTS=false, which adds it) turns server-side prepared statements off
everywhere (psycopg's automatic ones and agi.db.writer's): PgBouncer before 1.21 in transaction
pooling mode cannot keep them (README "PgBouncer").
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
DEFAULT_POOL = 10  # connections one process holds at most on PostgreSQL (settings db_pool)
POOL_WAIT_S = 30.0  # a caller waits this long for a free connection, then gets an error (retried)
PREPARED = "prepared_statements"  # the URL parameter (true|false) and the engine's execution option


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs; use the async drivers we ship."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        u = u.set(drivername="postgresql+psycopg")
    elif u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    if PREPARED in u.query:  # ours, not the driver's: only make_engine reads it
        u = u.difference_update_query([PREPARED])
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def split_prepared(url: str) -> tuple[str, bool]:
    """The URL without our ``prepared_statements`` parameter, and its value (default true)."""
    u = make_url(url)
    value = u.query.get(PREPARED)
    if value is None:
        return url, True
    if isinstance(value, tuple):
        value = value[-1]
    if value.lower() not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
        raise ValueError(f"{PREPARED}={value!r} in the database URL: use true or false")
    return u.difference_update_query([PREPARED]).render_as_string(hide_password=False), \
        value.lower() in ("true", "on", "yes", "1")


def prepared_statements(engine: AsyncEngine) -> bool:
    """Whether server-side prepared statements may be used on ``engine`` (false behind PgBouncer < 1.21)."""
    return engine.dialect.name == "postgresql" and engine.get_execution_options().get(PREPARED, True)


def make_engine(url: str, *, pool: int | None = None, **kwargs) -> AsyncEngine:
    url, prepared = split_prepared(url)
    url = normalize_url(url)
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)  # per checkout: the per-call writes hold theirs (agi.db.writer)
    kwargs.setdefault("pool_size", pool or DEFAULT_POOL)
    kwargs.setdefault("max_overflow", 0)  # bounded: wait for a connection, never open one more
    kwargs.setdefault("pool_timeout", POOL_WAIT_S)
    if not prepared:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "prepare_threshold": None}
    kwargs["execution_options"] = {**kwargs.get("execution_options", {}), PREPARED: prepared}
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
