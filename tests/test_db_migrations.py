"""Migrations: `dialer db` applies them, and the migrated schema is exactly the models'."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from agi.cli import main
from agi.db import migrate
from agi.db.engine import make_engine
from agi.db.models import Base


def dialer(url: str, *args: str):
    return CliRunner().invoke(main, ["--db", url, "db", *args], catch_exceptions=False)


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_upgrade_then_check_shows_models_and_migrations_agree(db_url):
    res = dialer(db_url, "upgrade")
    assert res.exit_code == 0, res.output
    assert migrate.head() in res.output
    res = dialer(db_url, "check")
    assert res.exit_code == 0, res.output
    assert "agree" in res.output
    res = dialer(db_url, "current", "--json")
    assert json.loads(res.stdout) == {"current": migrate.head(), "head": migrate.head()}


async def test_downgrade_to_base_and_upgrade_to_head_round_trip(db_url):
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await _tables(db_url) == set(Base.metadata.tables) | {"alembic_version"}
    res = await asyncio.to_thread(dialer, db_url, "downgrade", "base")
    assert res.exit_code == 0, res.output
    assert await asyncio.to_thread(migrate.current, db_url) is None
    assert await _tables(db_url) <= {"alembic_version"}
    res = await asyncio.to_thread(dialer, db_url, "upgrade", "head")
    assert res.exit_code == 0, res.output
    assert await asyncio.to_thread(migrate.check, db_url) == []


async def test_check_fails_clearly_when_the_database_differs_from_the_models(db_url):
    await asyncio.to_thread(migrate.upgrade, db_url)
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_attempts_number"))
        await conn.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    await engine.dispose()
    diffs = await asyncio.to_thread(migrate.check, db_url)
    assert {d[0] for d in diffs} == {"add_index", "remove_table"}
    res = await asyncio.to_thread(dialer, db_url, "check")
    assert res.exit_code == 1
    assert "ix_attempts_number" in res.output
    assert "2 difference(s)" in res.output


def test_check_of_a_database_never_migrated_says_to_upgrade(db_url):
    res = dialer(db_url, "check")
    assert res.exit_code == 1
    assert "dialer db upgrade" in res.output


def test_migrate_works_from_any_directory_and_inside_a_running_loop(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def in_loop():
        migrate.upgrade(db_url)  # called straight from a coroutine: runs off the loop thread
        return migrate.current(db_url)

    assert asyncio.run(in_loop()) == migrate.head()


def test_an_unreachable_database_gives_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = dialer(f"postgresql://postgres:s3cretpw@127.0.0.1:{port}/nodb", "upgrade")
    assert res.exit_code == 1
    assert "upgrade failed" in res.output and "DIALER_DB_URL" in res.output
    assert "s3cretpw" not in res.output  # the password is masked


async def test_the_db_engine_fixture_is_at_the_newest_revision(db_engine, db_url):
    assert await asyncio.to_thread(migrate.current, db_url) == migrate.head()
    async with db_engine.connect() as conn:
        assert set(await conn.run_sync(lambda c: inspect(c).get_table_names())) >= set(
            Base.metadata.tables
        )


def test_upgrades_from_two_threads_at_once_both_succeed(db_url):
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(migrate.upgrade, db_url) for _ in range(2)]:
            f.result()
    assert migrate.current(db_url) == migrate.head()
    assert migrate.check(db_url) == []


def test_two_services_upgrading_at_once_both_succeed_on_postgresql(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite is the single-box embedded database: one upgrader")
    cmd = [sys.executable, "-c", "from agi.cli import main; main()", "--db", db_url, "db", "upgrade"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert migrate.current(db_url) == migrate.head()
    assert migrate.check(db_url) == []
