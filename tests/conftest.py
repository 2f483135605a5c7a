"""Shared fixtures: a private PostgreSQL for the session, and a database URL per backend."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
TRACES = ROOT / "tests" / "traces"  # raw transcripts of a real Asterisk 22.10.1 (INDEX.txt)

from pgserver import PgServer  # noqa: E402


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL cluster for the whole run, started from the machine's binaries."""
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database on each backend (no schema): SQLite file or a fresh PG database.

    When the test also uses db_engine, the database is born migrated instead (a copy of
    the session's template), so it is not created twice.
    """
    migrated = "db_engine" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            _MIGRATED.add(str(path))
        return f"sqlite+aiosqlite:///{path}"
    server = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    if not migrated:
        return server.create_database(name)
    _create_database(server, name, template=request.getfixturevalue("pg_template"))
    _MIGRATED.add(name)
    return server.database_url(name)


_MIGRATED: set[str] = set()  # databases db_url created from a migrated template


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to head once per session; each db_engine test gets a copy."""
    from agi.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server) -> str:
    """A PostgreSQL database migrated to head once per session: the TEMPLATE of test databases."""
    from agi.db.migrate import upgrade

    name = "tmpl_" + uuid.uuid4().hex[:12]
    upgrade(pg_server.create_database(name))
    return name


@pytest.fixture
async def db_engine(request, db_url):
    """An AsyncEngine on the database of ``db_url`` with the migrated schema, on each backend.

    The migrations run once per session (sqlite_template, pg_template); a test's database
    is a copy of the migrated one (a file copy, or CREATE DATABASE ... TEMPLATE).
    """
    from sqlalchemy.engine import make_url

    from agi.db.engine import is_sqlite, make_engine

    name = make_url(db_url).database
    if name not in _MIGRATED:  # db_url was made empty (asked for before db_engine)
        if is_sqlite(db_url):
            shutil.copyfile(request.getfixturevalue("sqlite_template"), name)
        else:
            server = request.getfixturevalue("pg_server")
            _create_database(server, name, template=request.getfixturevalue("pg_template"))
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


def _create_database(server, name: str, template: str) -> None:
    """(Re)create database ``name`` as a copy of ``template`` (no one may be connected to it)."""
    import psycopg

    with psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
