"""Shared fixtures: a private PostgreSQL for the session, and a database URL per backend."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
SHARED = ROOT.parent / "shared"
TRACES = SHARED / "asterisk-traces"

from pgserver import PgServer  # noqa: E402


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL cluster for the whole run, started from the machine's binaries."""
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database on each backend (no schema): SQLite file or a fresh PG database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database("t_" + uuid.uuid4().hex[:12])


@pytest.fixture
async def db_engine(db_url):
    """An AsyncEngine on a database with the current schema, on each backend.

    Schema comes from the Alembic migrations (agi.db.migrate) once they exist.
    """
    from agi.db.engine import make_engine
    from agi.db.models import Base

    engine = make_engine(db_url)
    try:
        from agi.db.migrate import upgrade  # noqa: F401  (provided by the migrations work)
        await _upgrade(db_url)
    except ImportError:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


async def _upgrade(url: str) -> None:
    import asyncio

    from agi.db.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
