"""Shared plumbing of the admin commands: run async DB work, check the schema, print tables/JSON.

Not a command module (the leading underscore keeps it out of command discovery).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from agi.errors import AdminError
from agi.db.engine import make_engine, make_sessionmaker
from agi.settings import mask_url

T = TypeVar("T")

# Tables every admin command needs; their absence means the migrations never ran.
REQUIRED_TABLES = ("campaigns", "contacts", "campaign_contacts", "attempts", "dnc")
UPGRADE_HINT = "run `dialer db upgrade` first"


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


async def _check_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    missing = [t for t in REQUIRED_TABLES if t not in names]
    if missing:
        where = mask_url(engine.url.render_as_string(hide_password=False))
        raise AdminError(f"the database {where} has no dialer schema (missing {', '.join(missing)}): {UPGRADE_HINT}"
                         " (or point --db / DIALER_DB_URL at the database that has it)")


DB_HINT = "check the database URL (--db or DIALER_DB_URL) and that the database server is running and reachable"
BUSY_HINT = "another import or migration is writing to it; run this again when that one has finished"
# what SQLite and PostgreSQL say when another writer holds what this one waited for
_BUSY = ("database is locked", "lock timeout", "could not obtain lock", "deadlock detected")


def db_error(exc: BaseException, db_url: str) -> str | None:
    """A database failure as one line saying what to do, or None when ``exc`` is not one."""
    if isinstance(exc, AdminError):
        return str(exc)
    if isinstance(exc, (OperationalError, ProgrammingError, DBAPIError)):
        text = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        if "no such table" in text or ("does not exist" in text and "relation" in text):
            return f"database schema is missing a table ({text}): {UPGRADE_HINT}"
        if "no such column" in text or ("column" in text and "does not exist" in text):
            return f"database schema is out of date ({text}): {UPGRADE_HINT}"
        if any(b in text.lower() for b in _BUSY):
            return f"the database {mask_url(db_url)} is busy ({text}): {BUSY_HINT}"
        return f"database error on {mask_url(db_url)}: {text}; {DB_HINT}"
    if isinstance(exc, OSError):
        return f"cannot reach the database {mask_url(db_url)}: {exc}; {DB_HINT}"
    return None


def open_engine(db_url: str) -> AsyncEngine:
    if db_url.startswith("sqlite"):
        path = (db_url.partition("://")[2][1:]).partition("?")[0]  # sqlite:///rel or sqlite:////abs
        folder = Path(path).parent if path and path != ":memory:" else None
        if folder is not None and not folder.is_dir():
            raise AdminError(f"SQLite database {path}: folder {folder} does not exist; create it or fix "
                             f"the database URL (--db or DIALER_DB_URL)")
    try:
        return make_engine(db_url)
    except Exception as exc:  # a malformed URL, an unknown driver
        raise AdminError(f"cannot open database {mask_url(db_url)!r}: {exc}; use postgresql://USER:PASSWORD@HOST/DB "
                         f"or sqlite:///PATH (--db or DIALER_DB_URL)") from None


async def check_database(db_url: str) -> None:
    """Fail at start-up, with what to do, when the database is unreachable or has no schema."""
    engine = open_engine(db_url)
    try:
        await _check_schema(engine)
    except Exception as exc:
        message = db_error(exc, db_url)
        if message is None:
            raise
        raise AdminError(message) from None
    finally:
        await engine.dispose()


def run_db(db_url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Open the engine, check the schema, run ``work(engine)``; DB errors become clear CLI errors."""

    async def go() -> T:
        engine = open_engine(db_url)
        try:
            await _check_schema(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except (AdminError, DBAPIError, OSError) as exc:
        message = db_error(exc, db_url)
        if message is None:  # pragma: no cover - db_error knows every type caught here
            raise
        raise click.ClickException(message) from None


def run_session(db_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``run_db`` with one session in one transaction, committed when ``work`` returns."""

    async def go(engine: AsyncEngine) -> T:
        async with make_sessionmaker(engine)() as session:
            async with session.begin():
                return await work(session)

    return run_db(db_url, go)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    click.echo(json.dumps(to_jsonable(data), indent=2, sort_keys=False))


def fmt(value: Any) -> str:
    """A cell for a rich table."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    console().print(table)


def metrics_option(f):
    """--metrics-bind for the long-running services (agi.metrics.http); off by default."""
    return click.option("--metrics-bind", metavar="HOST:PORT", envvar="DIALER_METRICS_BIND", default=None,
                        help="Serve Prometheus metrics on http://HOST:PORT/metrics and this process's health on "
                             "/healthz [DIALER_METRICS_BIND; default off].")(f)


async def start_metrics(server) -> None:
    """Start a MetricsServer; a busy or bad address is a clear error."""
    try:
        await server.start()
    except OSError as exc:
        raise AdminError(f"cannot serve metrics on {server.host}:{server.port}: {exc}; "
                         f"choose another --metrics-bind") from None


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(f)


def fail(message: str) -> None:
    raise click.ClickException(message)


def guard(fn: Callable[[], T]) -> T:
    """Turn AdminError/ValueError raised by plain logic outside run_db into a CLI error."""
    try:
        return fn()
    except (AdminError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def run_conn(db_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """``run_db`` with one Core connection in one transaction (``engine.begin()``)."""

    async def go(engine: AsyncEngine) -> T:
        async with engine.begin() as conn:
            return await work(conn)

    return run_db(db_url, go)
