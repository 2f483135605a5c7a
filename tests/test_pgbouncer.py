"""Through PgBouncer in transaction pooling mode (Debian's pgbouncer 1.18, started by the test):
a campaign dials and every result lands, with server-side prepared statements off
(``DIALER_DB_PREPARED_STATEMENTS=false``): PgBouncer before 1.21 hands each transaction to
whichever server connection is free, where a statement prepared on another does not exist."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, update

from agi.db.engine import make_engine, prepared_statements
from agi.db.models import Attempt, Campaign
from agi.local import LocalStack
from agi.settings import Settings
from agi.sim.scenarios import ScenarioPlan
from conftest import _create_database
from db_seed import seed_campaign
from pgserver import PgBouncer
from test_originator_e2e import truth

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not PgBouncer.available(),
                                                  reason="pgbouncer not installed (scripts/test installs it)")]


@pytest.fixture
def bouncer(pg_server, pg_template):
    name = "t_" + uuid.uuid4().hex[:12]
    _create_database(pg_server, name, template=pg_template)
    b = PgBouncer(pg_server, pool_mode="transaction", pool_size=4).start()
    yield b, name
    b.stop()


async def test_a_campaign_through_pgbouncer_in_transaction_mode(bouncer):
    b, name = bouncer
    settings = Settings.load(env={"DIALER_DB_URL": b.url(name), "DIALER_DB_PREPARED_STATEMENTS": "false"})
    engine = make_engine(settings.db_url, pool=settings.db_pool)
    assert not prepared_statements(engine)
    try:
        async with engine.begin() as conn:
            campaign_id, _ = await seed_campaign(conn, 40, first_number=2025555000, max_attempts=1)
            await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
                window_start=dt.time(0, 0), window_end=dt.time(0, 0), lines=10, cps=30))
        async with LocalStack(engine, plan=ScenarioPlan.mix(seed=9), speed=100.0, lines=10, cps=30) as stack:
            await stack.assign(campaign_id)
            stack.start()
            await stack.settle(campaign_id, timeout=120)
            record = list(stack.sim.record)
        a = Attempt.__table__
        async with engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()}
    finally:
        await engine.dispose()
    assert all(r.result is not None for r in rows.values())
    assert len(record) == len({rec.channel_id for rec in record}) == len(rows) >= 40
    wrong = [(rec.scenario, truth(rec).value, rows[rec.channel_id].result) for rec in record
             if truth(rec).value != rows[rec.channel_id].result]
    assert not wrong, wrong
