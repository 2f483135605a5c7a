"""The database goes away mid-campaign and comes back: every part keeps going (issue 15).

A private PostgreSQL cluster (scripts/pgserver.py) that the tests may starve or restart; one
originator and one FastAGI server (agi.local.LocalStack, real TCP to the simulator) dial a
campaign through it. Whatever happens to the database, the calls' writes are retried with
backoff: no task dies with an error, no attempt is left open, each dial has one result, the one
the simulator says happened, nothing is dialed twice, and the outage is logged once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import Counter

import psycopg
import pytest
from sqlalchemy import func, select, update

from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignContact
from agi.db.outage import OUTAGE
from agi.local import LocalStack
from agi.outcomes import ContactState, Result
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from pgserver import PgServer
from test_originator_e2e import truth

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

CONTACTS = 60
LINES = 10


@pytest.fixture(scope="module")
def private_pg():
    """A cluster of our own (restarting or starving the session's would hurt other tests), with
    the pools' room and little more: 30 connections."""
    from agi.db.migrate import upgrade

    server = PgServer(max_connections=30).start()
    template = "tmpl_" + uuid.uuid4().hex[:8]
    upgrade(server.create_database(template))
    yield server, template
    server.stop()


@pytest.fixture
async def outage_db(private_pg):
    server, template = private_pg
    name = "t_" + uuid.uuid4().hex[:12]
    with _admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    engine = make_engine(server.database_url(name), pool=8)
    yield server, engine
    await engine.dispose()


def _admin(server: PgServer) -> psycopg.Connection:
    return psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True)


async def _attempts_started(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(Attempt.__table__))).scalar_one()


async def dial_through(engine, disturb, caplog) -> tuple[list, dict, Counter]:
    """A campaign of CONTACTS dialed while ``disturb()`` (run in a thread once a few calls are
    under way) does its worst to the database; the simulator's record and the attempt rows."""
    async with engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, CONTACTS, first_number=2025553000, max_attempts=1)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0), lines=LINES, cps=20, drop_timeout=2))
    caplog.set_level(logging.WARNING)
    async with LocalStack(engine, plan=ScenarioPlan.mix(seed=11), speed=20.0, lines=LINES, cps=20) as stack:
        await stack.assign(campaign_id)
        stack.start()
        while await _attempts_started(engine) < 15:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(disturb)
        await stack.settle(campaign_id, timeout=180)
        record = list(stack.sim.record)
    a, cc = Attempt.__table__, CampaignContact.__table__
    async with engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()}
        states = Counter((await conn.execute(select(cc.c.state).where(cc.c.campaign_id == campaign_id))).scalars())
    return record, rows, states


def assert_nothing_lost(record: list, rows: dict, states: Counter) -> None:
    dialed = {i: r for i, r in rows.items() if r.dialer is not None and Result(r.result or "other").dialed}
    assert all(r.result is not None for r in rows.values()), "an attempt was left open"
    assert set(states) <= {ContactState.DONE.value, ContactState.SKIPPED.value,
                           ContactState.RETRY_SCHEDULED.value}, states
    # each contact dialed once (max_attempts 1), each dial one attempt, none twice
    assert len(record) == len({rec.channel_id for rec in record}) == len(dialed)
    assert {rec.channel_id for rec in record} == set(dialed)
    wrong = [(rec.scenario, truth(rec).value, rows[rec.channel_id].result, rows[rec.channel_id].detail)
             for rec in record if truth(rec).value != rows[rec.channel_id].result]
    assert not wrong, wrong
    assert sum(states.values()) == CONTACTS


def assert_said_once(caplog) -> None:
    """One warning when the database went away, one when it came back; no error, no dead task."""
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("database unreachable") for m in messages) == 1, messages
    assert sum(m.startswith("database reachable again") for m in messages) == 1, messages
    errors = [m for r, m in zip(caplog.records, messages) if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert not any("Task exception was never retrieved" in m for m in messages)


async def test_postgresql_restarted_mid_campaign_nothing_lost_nothing_dialed_twice(outage_db, caplog):
    server, engine = outage_db
    OUTAGE.reset()
    record, rows, states = await dial_through(engine, lambda: server.restart(down_s=1.5), caplog)
    assert_nothing_lost(record, rows, states)
    assert_said_once(caplog)


async def test_connections_starved_every_write_waits_and_lands(outage_db, caplog):
    """Every connection slot taken by someone else and ours cut: refused ("too many clients")
    until the hog lets go."""
    server, engine = outage_db
    OUTAGE.reset()

    def starve() -> None:
        hogs: list[psycopg.Connection] = []
        try:
            hogs += _fill(server)
            pids = [h.info.backend_pid for h in hogs]
            hogs[0].execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE backend_type = 'client backend' AND pid <> ALL(%s)", (pids,))
            for _ in range(20):  # the slots freed: ours again before the stack's reconnects
                hogs += _fill(server)
            import time

            time.sleep(2.0)
        finally:
            for h in hogs:
                h.close()

    record, rows, states = await dial_through(engine, starve, caplog)
    assert_nothing_lost(record, rows, states)
    assert any("too many clients" in r.getMessage() for r in caplog.records)  # said in the recovery line
    assert_said_once(caplog)


def _fill(server: PgServer) -> list[psycopg.Connection]:
    """Connections until the server refuses one."""
    got = []
    while True:
        try:
            got.append(_admin(server))
        except psycopg.OperationalError:
            return got


def test_the_pool_is_bounded_by_configuration_and_the_defaults_fit_a_stock_server(pg_server):
    """DIALER_DB_POOL bounds each process's connections (no overflow opened and closed per call);
    the default lets 4 originators and 2 FastAGI servers share max_connections=100."""
    from agi.db.engine import DEFAULT_POOL
    from agi.settings import Settings

    assert Settings.load(env={"DIALER_DB_POOL": "7"}).db_pool == 7
    with pytest.raises(ValueError):
        Settings.load(env={"DIALER_DB_POOL": "0"})
    engine = make_engine(pg_server.url, pool=Settings.load(env={"DIALER_DB_POOL": "7"}).db_pool)
    assert (engine.pool.size(), engine.pool._max_overflow) == (7, 0)
    assert Settings().db_pool == DEFAULT_POOL and (4 + 2) * DEFAULT_POOL + 10 <= pg_server.max_connections


def test_an_outage_is_said_once_however_its_tries_flap_and_a_deadlock_is_none(caplog):
    """While connections are scarce some tries succeed between failures: still one outage, ended
    once nothing failed for SETTLED_S; a deadlock is retried but is no outage (pure: a given clock)."""
    from agi.db.outage import SETTLED_S, Outage

    t = [0.0]
    outage = Outage(logging.getLogger("test.outage"), clock=lambda: t[0])
    refused = psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already")
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        for _ in range(5):  # fail, succeed, fail ...
            outage.failed("writes", refused)
            t[0] += 0.2
            outage.ok()
            t[0] += 0.2
        assert outage.down
        t[0] += SETTLED_S
        outage.ok()
        outage.failed("writes", psycopg.errors.DeadlockDetected("deadlock detected"))
    assert not outage.down
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 2 and said[0].startswith("database unreachable")
    assert said[1].startswith("database reachable again") and "5 x sorry, too many clients already" in said[1]
