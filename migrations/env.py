"""Alembic environment (async template): runs the migrations on PostgreSQL (psycopg 3) or SQLite.

The URL comes from ``config.attributes["url"]`` (agi.db.migrate), else the
``sqlalchemy.url`` option, else the dialer's settings (DIALER_DB_URL, ./dialer.db).
A caller may also hand over a sync connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from agi.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite, normalize_url
from agi.db.models import Base, UTCDateTime

config = context.config
if config.config_file_name is not None:  # the plain `alembic` command with alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from agi.settings import Settings

        url = Settings.load().db_url
    return normalize_url(url)


def _render_item(type_, obj, autogen_context):
    """New revisions spell the models' UTCDateTime as the plain DateTime it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        # SQLite cannot ALTER most things: batch mode copies the table instead
        render_as_batch=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


# pg_advisory_xact_lock key: "dialer-migrations" as an int64 of our own choosing
MIGRATION_LOCK_KEY = 0x6469616C65726D67


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # services upgrading at once: the second waits here, then finds nothing to do
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000} if is_sqlite(url) else {}
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    # A loop may run in another thread (asyncio.to_thread from the caller): this thread has none.
    asyncio.run(run_async_migrations(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
