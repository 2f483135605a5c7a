"""FastAGI failover: the dialplan names two servers (``__DIALER_AGI=a&b``); the first dies
mid-campaign; calls go on through the second, nothing is lost, and a call counts as dropped only
if a person was really left unserved (their flow was cut by the death), never for the failover.

The simulator runs dialplan/dialer.conf itself (CUT/FIELDQTY, the retry steps, the h extension)."""

from __future__ import annotations

import pytest

import asyncio
import datetime as dt

from sqlalchemy import func, select, update

from agi.db.models import Attempt, Campaign
from agi.local import LocalStack
from agi.outcomes import Result, Routing
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from test_originator_e2e import truth

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

CONTACTS = 80


async def _count(engine, *where) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(Attempt.__table__).where(*where))).scalar_one()


async def test_the_first_fastagi_server_dies_calls_go_on_through_the_second(db_engine):
    a = Attempt.__table__
    async with db_engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, CONTACTS, first_number=2025554000, max_attempts=1)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0), lines=10, cps=20,
            drop_message="acme/sorry-we-will-call-back"))
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=5), speed=100.0, lines=10, cps=20,
                          agi_servers=2) as stack:
        first, second = (f"127.0.0.1:{s.port}" for s in stack.servers)
        await stack.assign(campaign_id)
        stack.start()
        while await _count(db_engine, a.c.result.is_not(None)) < 20:
            await asyncio.sleep(0.05)
        finished_before = await _count(db_engine, a.c.result.is_not(None))
        await stack.kill_agi_server(0)
        # the answered calls not finished when it died: the flows it cut are among them
        async with db_engine.connect() as conn:
            in_flow = set((await conn.execute(select(a.c.id).where(
                a.c.answered_at.is_not(None), a.c.result.is_(None)))).scalars())
        await stack.settle(campaign_id, timeout=120)
        record = list(stack.sim.record)
    async with db_engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()}
    assert all(r.result is not None for r in rows.values())
    # one attempt per dial, none dialed twice (a service error's retry is a dial of its own)
    assert len(record) == len({rec.channel_id for rec in record}) == len(rows)
    assert len({r.membership_id for r in rows.values()}) == CONTACTS
    # the calls went on after the death, answered ones served by the second server
    assert len(rows) - finished_before >= 30
    tried = [(f"AGI(agi://{first}/outbound" in " ".join(rec.dialplan),
              f"AGI(agi://{second}/outbound" in " ".join(rec.dialplan)) for rec in record]
    assert (True, True) in tried  # the first refused, the second took the call: the failover ran
    assert (True, False) in tried  # before the death the first served alone
    # no result lost: each as the simulator says it happened
    wrong = [(rec.scenario, truth(rec).value, rows[rec.channel_id].result, rows[rec.channel_id].detail)
             for rec in record if truth(rec).value != rows[rec.channel_id].result]
    assert not wrong, wrong
    # dropped only where a person's flow was cut by the death; the drop message never played:
    # the failover reached the second server every time
    dropped = {i for i, r in rows.items() if r.routing == Routing.DROPPED.value}
    assert dropped <= in_flow, (dropped - in_flow, [rows[i].detail for i in dropped - in_flow])
    assert not [rec.dialplan for rec in record if any("Playback(acme/" in step for step in rec.dialplan)]
    assert {Result(r.result) for r in rows.values()} >= {Result.LIVE_ANSWER, Result.BUSY}
