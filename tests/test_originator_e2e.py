"""The originator end to end through the simulator over TCP: a campaign of a few hundred contacts
with every scenario ends with every contact final or scheduled, one result per attempt, and the
database's counts equal the simulator's own record of what happened, result by result."""

from __future__ import annotations

import pytest

import datetime as dt
from collections import Counter

from sqlalchemy import select, update

from agi.db.models import Attempt, Campaign, CampaignContact
from agi.local import LocalStack
from agi.outcomes import ContactState, Result, Routing
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

# What really happened on the "network" -> the result docs/outcomes.md says it must be recorded as.
NETWORK_RESULT = {
    "busy": Result.BUSY, "no_answer": Result.NO_ANSWER, "congestion": Result.SERVICE_ERROR,
    "unallocated": Result.DISCONNECTED, "number_changed": Result.DISCONNECTED,
    "rejected": Result.REJECTED, "no_channel": Result.SERVICE_ERROR, "no_exten": Result.SERVICE_ERROR,
}


def truth(rec) -> Result:
    if rec.network != "answer":
        return NETWORK_RESULT[rec.network]
    if any(s.startswith("fax") for s in rec.agi_scripts):
        return Result.FAX
    status = rec.amd[0] if rec.amd else ""
    return Result.MACHINE_ANSWER if status == "MACHINE" else Result.LIVE_ANSWER


async def test_campaign_of_300_contacts_matches_the_simulators_record(db_engine):
    async with db_engine.begin() as conn:
        campaign_id, members = await seed_campaign(conn, 300, first_number=2025551000)
        # a 24/7 window so the test does not depend on the hour it runs at
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0),
            queue_name="sales", mode="progressive", lines=20, cps=50, drop_timeout=2, key_timeout=2,
            key_tries=1, retry_rules={"busy": 5, "service_error": 1}, max_attempts=2))
    plan = ScenarioPlan.mix(seed=7)
    queues = {"sales": QueueConfig("sales", agents=8, talk_seconds=(5, 20), acw_seconds=(2, 5))}
    async with LocalStack(db_engine, plan=plan, queues=queues, speed=100.0, lines=20, cps=50) as stack:
        await stack.assign(campaign_id)
        stack.start()
        await stack.settle(campaign_id, timeout=150, retry_horizon_s=600)
        record = list(stack.sim.record)
    a, cc = Attempt.__table__, CampaignContact.__table__
    async with db_engine.connect() as conn:
        attempts = (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()
        states = Counter((await conn.execute(select(cc.c.state).where(cc.c.campaign_id == campaign_id))).scalars())
    dialed = [r for r in attempts if r.dialer is not None and Result(r.result).dialed]
    # when its Originate went out, failed calls included
    assert all(r.originated_at is not None and r.originated_at >= r.queued_at for r in dialed)
    # every attempt final; every contact final or scheduled
    assert all(r.result is not None for r in attempts)
    assert set(states) <= {ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value, ContactState.SKIPPED.value}
    # one attempt per originate the simulator saw, never the same attempt twice
    unseen = [(r.id, r.result, r.detail) for r in dialed if r.id not in {rec.channel_id for rec in record}]
    assert not unseen, f"attempts the simulator never saw: {unseen}"
    assert len(record) == len({rec.channel_id for rec in record}) == len(dialed)
    by_id = {r.id: r for r in dialed}
    mismatched = [(rec.scenario, truth(rec).value, by_id[rec.channel_id].result) for rec in record
                  if truth(rec).value != by_id[rec.channel_id].result]
    assert not mismatched, mismatched[:10]
    assert Counter(truth(rec).value for rec in record) == Counter(r.result for r in dialed)
    assert len({truth(rec) for rec in record}) >= 7  # the mix exercised the results
    # routing as the network saw it: bridged -> agent_connected; queued and not bridged -> dropped
    queued = [rec for rec in record if any(app.startswith("Queue ") for app in rec.apps)]
    assert queued, "some persons asked for an agent"
    for rec in queued:
        expected = Routing.AGENT_CONNECTED.value if rec.bridged_to else Routing.DROPPED.value
        assert by_id[rec.channel_id].routing == expected, (rec.scenario, rec.queue_status, rec.bridged_to)
    never_queued = {rec.channel_id for rec in record} - {rec.channel_id for rec in queued}
    assert all(by_id[i].routing is None for i in never_queued)  # no drop without a queue attempt
    assert stack.sim.record.max_concurrent <= 20
