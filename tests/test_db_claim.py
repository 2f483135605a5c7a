"""The claim query: several originators at once never claim one contact twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

from sqlalchemy import update

from agi.db.claim import claim_due, release_claim
from agi.db.engine import make_engine
from agi.db.models import CampaignContact
from agi.outcomes import ContactState
from db_seed import T0, membership, seed_campaign

_cc = CampaignContact.__table__


async def test_concurrent_claimers_claim_disjoint_sets_and_all_contacts(db_engine, db_url):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 300)
    # two engines, as two originator processes would have
    engines = [db_engine, make_engine(db_url)]

    async def claimer(k: int) -> list[int]:
        got: list[int] = []
        while True:
            async with engines[k % 2].begin() as conn:
                batch = await claim_due(conn, camp, f"dialer-{k}", 7, T0)
            if not batch:
                return got
            assert len(batch) <= 7
            got += [c.membership_id for c in batch]
            await asyncio.sleep(0)

    try:
        results = await asyncio.gather(*(claimer(k) for k in range(8)))
    finally:
        await engines[1].dispose()
    counts = Counter(m for got in results for m in got)
    assert [m for m, n in counts.items() if n > 1] == []
    assert sorted(counts) == sorted(ids)
    # more than one claimer got work: the test really ran them side by side
    assert sum(1 for got in results if got) > 1
    async with db_engine.connect() as conn:
        for k, got in enumerate(results):
            for m in got[:3]:
                row = await membership(conn, m)
                assert row.state == ContactState.DIALING
                assert row.claimed_by == f"dialer-{k}"


async def test_claimers_with_fixed_rounds_never_share_a_contact(db_engine):
    """8 tasks x 5 claims of 7 from 300 contacts: 280 distinct claims, 20 left pending."""
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 300)

    async def claimer(k: int) -> list[int]:
        got = []
        for _ in range(5):
            async with db_engine.begin() as conn:
                got += [c.membership_id for c in await claim_due(conn, camp, f"d{k}", 7, T0)]
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(*(claimer(k) for k in range(8)))
    claimed = [m for got in results for m in got]
    assert len(claimed) == len(set(claimed)) == 8 * 5 * 7
    async with db_engine.connect() as conn:
        left = await claim_due(conn, camp, "last", 100, T0)
    assert sorted(c.membership_id for c in left) == sorted(set(ids) - set(claimed))


async def test_only_due_pending_or_retry_members_of_the_campaign_are_claimed(db_engine):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 6)
        other, other_ids = await seed_campaign(conn, 2, name="other", first_number=2025560000)
        later = T0 + dt.timedelta(minutes=1)
        earlier = T0 - dt.timedelta(minutes=1)
        plan = {
            ids[0]: (ContactState.PENDING, None),  # due: fresh
            ids[1]: (ContactState.RETRY_SCHEDULED, earlier),  # due: retry
            ids[2]: (ContactState.RETRY_SCHEDULED, later),  # not yet
            ids[3]: (ContactState.DONE, None),
            ids[4]: (ContactState.DIALING, None),
            ids[5]: (ContactState.PENDING, T0),  # due exactly now
        }
        for m, (state, at) in plan.items():
            await conn.execute(
                update(_cc).where(_cc.c.id == m).values(state=state.value, next_attempt_at=at)
            )
        claimed = await claim_due(conn, camp, "d1", 100, T0)

    by_id = {c.membership_id: c for c in claimed}
    assert set(by_id) == {ids[0], ids[1], ids[5]}
    assert by_id[ids[0]].state_before is ContactState.PENDING
    assert by_id[ids[1]].state_before is ContactState.RETRY_SCHEDULED
    assert by_id[ids[0]].number == "+12025550000"
    assert by_id[ids[0]].timezone == "America/New_York"
    assert by_id[ids[0]].attempts == 0


async def test_due_retries_are_claimed_before_fresh_contacts(db_engine):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 4)
        await conn.execute(
            update(_cc)
            .where(_cc.c.id.in_([ids[2], ids[3]]))
            .values(
                state=ContactState.RETRY_SCHEDULED.value,
                next_attempt_at=T0 - dt.timedelta(minutes=5),
            )
        )
        await conn.execute(
            update(_cc).where(_cc.c.id == ids[3]).values(next_attempt_at=T0 - dt.timedelta(hours=1))
        )
        first = await claim_due(conn, camp, "d1", 2, T0)
        second = await claim_due(conn, camp, "d1", 2, T0)
    assert {c.membership_id for c in first} == {ids[2], ids[3]}
    assert {c.membership_id for c in second} == {ids[0], ids[1]}


async def test_a_released_claim_goes_back_to_its_state_due_later(db_engine):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 1)
        [c] = await claim_due(conn, camp, "d1", 5, T0)
        tomorrow = T0 + dt.timedelta(hours=17)
        assert await release_claim(conn, c.membership_id, next_attempt_at=tomorrow, now=T0)
        assert not await release_claim(conn, c.membership_id, next_attempt_at=tomorrow, now=T0)
        row = await membership(conn, c.membership_id)
        assert row.state == ContactState.PENDING
        assert row.next_attempt_at == tomorrow
        assert row.claimed_by is None
        assert await claim_due(conn, camp, "d1", 5, T0) == []
        again = await claim_due(conn, camp, "d1", 5, tomorrow)
    assert [c.membership_id for c in again] == ids


async def test_claiming_zero_contacts_claims_nothing(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 3)
        assert await claim_due(conn, camp, "d1", 0, T0) == []
        assert len(await claim_due(conn, camp, "d1", 3, T0)) == 3


async def test_an_open_claim_is_skipped_by_another_dialer_not_waited_for(db_engine):
    """PostgreSQL: SKIP LOCKED lets dialer 2 claim other rows while dialer 1's claim is open.

    SQLite has one writer at a time: dialer 2 waits for dialer 1's commit, then claims others.
    """
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 10)
    first = await db_engine.connect()
    try:
        await first.begin()
        mine = await claim_due(first, camp, "d1", 5, T0)

        async def second_dialer():
            async with db_engine.begin() as conn:
                return await claim_due(conn, camp, "d2", 5, T0)

        other = asyncio.create_task(second_dialer())
        if db_engine.dialect.name == "postgresql":
            theirs = await asyncio.wait_for(other, timeout=30)  # done while d1's claim is open
            await first.commit()
        else:
            await asyncio.sleep(0.05)
            await first.commit()
            theirs = await other
    finally:
        await first.close()
    assert len(mine) == len(theirs) == 5
    assert {c.membership_id for c in mine} | {c.membership_id for c in theirs} == set(ids)


async def test_a_rolled_back_claim_leaves_the_contacts_claimable(db_engine):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 3)
    async with db_engine.connect() as conn:
        async with conn.begin() as tx:
            assert len(await claim_due(conn, camp, "d1", 3, T0)) == 3
            await tx.rollback()
    async with db_engine.begin() as conn:
        assert [c.membership_id for c in await claim_due(conn, camp, "d2", 3, T0)] == ids
