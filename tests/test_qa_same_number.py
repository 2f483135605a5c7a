"""QA: two contacts sharing one phone (a household, a duplicate row) never ring it twice at once."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select, update

from agi.db.models import Attempt, Campaign, CampaignContact, Contact
from agi.local import LocalStack
from agi.outcomes import ContactState, Result
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign

SHARED = "+12025559000"


async def test_contacts_sharing_a_number_are_dialed_one_after_the_other(db_engine):
    async with db_engine.begin() as conn:
        campaign_id, members = await seed_campaign(conn, 6, name="shared", first_number=2025559100)
        cc, ct = CampaignContact.__table__, Contact.__table__
        shared = members[:4]
        contact_ids = (await conn.execute(select(cc.c.contact_id).where(cc.c.id.in_(shared)))).scalars().all()
        await conn.execute(update(ct).where(ct.c.id.in_(contact_ids)).values(phone=SHARED))
        await conn.execute(update(cc).where(cc.c.id.in_(shared)).values(number=SHARED))
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0), mode="broadcast", lines=6, cps=50,
            key_tries=1, key_timeout=2))
    plan = ScenarioPlan.from_text("* human\n")
    async with LocalStack(db_engine, plan=plan, speed=100.0, lines=6, cps=50) as stack:
        await stack.assign(campaign_id)
        stack.start()
        await stack.settle(campaign_id, timeout=60)
        record = list(stack.sim.record)
    calls = defaultdict(list)
    for rec in record:
        calls[rec.number].append((rec.originated_at, rec.ended_at))
    assert len(calls[SHARED]) == 4  # every contact still called once
    spans = sorted(calls[SHARED])
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert not overlaps, f"{SHARED} rang {len(overlaps) + 1} times at once"
    a = Attempt.__table__
    async with db_engine.connect() as conn:
        results = (await conn.execute(select(a.c.result).where(a.c.campaign_id == campaign_id))).scalars().all()
        states = set((await conn.execute(select(cc.c.state).where(cc.c.campaign_id == campaign_id))).scalars())
    assert len(results) == 6 and set(results) == {Result.LIVE_ANSWER.value}
    assert states == {ContactState.DONE.value}
