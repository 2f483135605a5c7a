"""Attempt writes: one final result per attempt, the retry rule applied once, DNC on opt-out."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from agi.db.attempts import (
    add_dnc,
    finish_attempt,
    get_attempt,
    is_dnc,
    mark_answered,
    mark_originated,
    mark_waiting_agent,
    record_predial,
    set_disposition,
    set_ivr_keys,
    set_routing,
    start_attempt,
)
from agi.db.claim import claim_due
from agi.db.models import Attempt, CampaignContact, DncEntry
from agi.outcomes import AmdStatus, ContactState, Disposition, Result, Routing
from db_seed import T0, membership, seed_campaign

_a = Attempt.__table__
_cc = CampaignContact.__table__
MIN = dt.timedelta(minutes=1)


async def _dial(engine, camp: int, *, now=T0) -> tuple[str, int]:
    """Claim the next due contact and start an attempt for it (committed, as before Originate)."""
    async with engine.begin() as conn:
        [c] = await claim_due(conn, camp, "d1", 1, now)
        attempt_id = await start_attempt(
            conn, c.membership_id, campaign_id=camp, contact_id=c.contact_id, dialer="d1",
            number=c.number, attempt_no=c.attempts + 1, now=now,
        )
    return attempt_id, c.membership_id


async def _finish(engine, attempt_id, result, at, **kw) -> bool:
    async with engine.begin() as conn:
        return await finish_attempt(conn, attempt_id, result, ended_at=at, **kw)


async def _member(engine, m):
    async with engine.connect() as conn:
        return await membership(conn, m)


async def test_finishing_twice_keeps_the_first_result_and_retries_once(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    ended = T0 + MIN
    assert await _finish(db_engine, aid, Result.BUSY, ended, originate_reason=5)
    assert not await _finish(
        db_engine, aid, Result.OTHER, ended + MIN, hangup_cause=17, talk_seconds=0
    )
    async with db_engine.connect() as conn:
        a = await get_attempt(conn, aid)
        row = (await conn.execute(select(_a).where(_a.c.id == aid))).one()
    assert a.result is Result.BUSY
    assert row.charged is True
    assert row.ended_at == ended  # the first end time stays
    assert (row.originate_reason, row.hangup_cause, row.talk_seconds) == (5, 17, 0)  # filled in
    mem = await _member(db_engine, m)
    assert mem.state == ContactState.RETRY_SCHEDULED
    assert mem.attempts == 1
    assert mem.next_attempt_at == ended + 5 * MIN  # default: busy after 5 min
    assert mem.last_result == Result.BUSY
    assert mem.last_attempt_id == aid
    assert mem.claimed_by is None


async def test_concurrent_finishers_set_one_result_and_count_one_attempt(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    results = [Result.NO_ANSWER, Result.BUSY, Result.SERVICE_ERROR, Result.OTHER] * 2
    wins = await asyncio.gather(
        *(_finish(db_engine, aid, r, T0 + (i + 1) * MIN) for i, r in enumerate(results))
    )
    assert wins.count(True) == 1
    winner = results[wins.index(True)]
    win_time = T0 + (wins.index(True) + 1) * MIN
    async with db_engine.connect() as conn:
        assert (await get_attempt(conn, aid)).result is winner
    mem = await _member(db_engine, m)
    assert mem.attempts == (0 if winner is Result.SERVICE_ERROR else 1)
    assert mem.last_result == winner
    expected_minutes = {Result.NO_ANSWER: 60, Result.BUSY: 5, Result.SERVICE_ERROR: 1}
    if winner is Result.OTHER:
        assert (mem.state, mem.next_attempt_at) == (ContactState.DONE, None)
    else:
        assert mem.next_attempt_at == win_time + expected_minutes[winner] * MIN


async def test_service_errors_do_not_count_against_max_attempts(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1, max_attempts=1)
    now = T0
    for _ in range(3):
        aid, m = await _dial(db_engine, camp, now=now)
        assert await _finish(db_engine, aid, Result.SERVICE_ERROR, now)
        mem = await _member(db_engine, m)
        assert (mem.state, mem.attempts) == (ContactState.RETRY_SCHEDULED, 0)
        assert mem.next_attempt_at == now + MIN  # default: service_error after 1 min
        now = mem.next_attempt_at
    async with db_engine.connect() as conn:
        charged = (await conn.execute(select(func.count()).where(_a.c.charged))).scalar_one()
    assert charged == 0
    aid, m = await _dial(db_engine, camp, now=now)
    assert await _finish(db_engine, aid, Result.NO_ANSWER, now)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.attempts, mem.next_attempt_at) == (ContactState.DONE, 1, None)


async def test_no_answer_is_retried_until_max_attempts(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1, max_attempts=2)
    aid, m = await _dial(db_engine, camp)
    await _finish(db_engine, aid, Result.NO_ANSWER, T0)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.attempts) == (ContactState.RETRY_SCHEDULED, 1)
    aid, m = await _dial(db_engine, camp, now=mem.next_attempt_at)
    async with db_engine.connect() as conn:
        assert (await get_attempt(conn, aid)).attempt_no == 2
    await _finish(db_engine, aid, Result.NO_ANSWER, mem.next_attempt_at)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.attempts, mem.next_attempt_at) == (ContactState.DONE, 2, None)


async def test_opt_out_puts_the_number_on_the_dnc_list_at_once(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        await mark_answered(conn, aid, T0, AmdStatus.HUMAN, "HUMAN-800-800")
        await set_ivr_keys(conn, aid, "79")
        assert await set_disposition(conn, aid, Disposition.OPT_OUT)
    async with db_engine.connect() as conn:
        assert await is_dnc(conn, "+12025550000")
        entry = (await conn.execute(select(DncEntry.__table__))).one()
    assert entry.source == Disposition.OPT_OUT
    async with db_engine.connect() as conn:
        row = (await conn.execute(select(_a).where(_a.c.id == aid))).one()
    assert (row.ivr_keys, row.amd_status, row.amd_cause) == ("79", "HUMAN", "HUMAN-800-800")
    assert await _finish(db_engine, aid, Result.LIVE_ANSWER, T0 + MIN, talk_seconds=20)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.next_attempt_at) == (ContactState.DONE, None)


async def test_a_disposition_is_set_once_unless_overridden(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, _ = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        assert await set_disposition(conn, aid, Disposition.INTERESTED)
        assert not await set_disposition(conn, aid, Disposition.NOT_INTERESTED)
        assert (await get_attempt(conn, aid)).disposition is Disposition.INTERESTED
        assert await set_disposition(conn, aid, Disposition.NOT_INTERESTED, override=True)
        assert (await get_attempt(conn, aid)).disposition is Disposition.NOT_INTERESTED


async def test_an_agents_call_back_after_the_call_reschedules_the_contact(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        await mark_answered(conn, aid, T0, AmdStatus.HUMAN)
        await mark_waiting_agent(conn, aid, T0)
        assert (await membership(conn, m)).state == ContactState.WAITING_AGENT
        assert await set_routing(conn, aid, Routing.AGENT_CONNECTED, agent="PJSIP/agent1")
    await _finish(db_engine, aid, Result.LIVE_ANSWER, T0 + 2 * MIN, talk_seconds=90)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.attempts) == (ContactState.DONE, 1)
    when = T0 + dt.timedelta(days=2)
    async with db_engine.begin() as conn:
        assert await set_disposition(conn, aid, Disposition.CALL_BACK, when)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.next_attempt_at, mem.attempts) == (ContactState.RETRY_SCHEDULED, when, 1)
    async with db_engine.connect() as conn:
        a = await get_attempt(conn, aid)
    assert (a.routing, a.agent, a.callback_at) == (Routing.AGENT_CONNECTED, "PJSIP/agent1", when)


async def test_a_late_disposition_does_not_move_a_contact_dialed_again(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    first, m = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        await set_routing(conn, first, Routing.DROPPED)
    await _finish(db_engine, first, Result.LIVE_ANSWER, T0)
    mem = await _member(db_engine, m)
    assert mem.next_attempt_at == T0 + 30 * MIN  # default: dropped after 30 min
    second, _ = await _dial(db_engine, camp, now=mem.next_attempt_at)
    async with db_engine.begin() as conn:
        assert await set_disposition(conn, first, Disposition.CALL_BACK, T0 + dt.timedelta(days=1))
    mem = await _member(db_engine, m)
    assert (mem.state, mem.last_attempt_id) == (ContactState.DIALING, second)


async def test_a_dropped_routing_reported_after_the_result_schedules_the_retry(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    await _finish(db_engine, aid, Result.LIVE_ANSWER, T0)
    assert (await _member(db_engine, m)).state == ContactState.DONE
    async with db_engine.begin() as conn:
        assert await set_routing(conn, aid, Routing.DROPPED, caller_abandoned=True)
        assert not await set_routing(conn, aid, Routing.AGENT_CONNECTED)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.attempts) == (ContactState.RETRY_SCHEDULED, 1)
    assert mem.next_attempt_at == T0 + 30 * MIN


async def test_late_call_reports_do_not_move_a_finished_contact(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        await mark_originated(conn, aid, T0)
        await mark_originated(conn, aid, T0 + MIN)
    await _finish(db_engine, aid, Result.NO_ANSWER, T0 + MIN)
    async with db_engine.begin() as conn:
        await mark_answered(conn, aid, T0 + 2 * MIN, AmdStatus.HUMAN)
        await mark_waiting_agent(conn, aid)
    mem = await _member(db_engine, m)
    assert mem.state == ContactState.RETRY_SCHEDULED
    async with db_engine.connect() as conn:
        row = (await conn.execute(select(_a).where(_a.c.id == aid))).one()
    assert row.originated_at == T0


async def test_an_admin_cancel_survives_the_calls_end(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    async with db_engine.begin() as conn:
        await conn.execute(
            update(_cc).where(_cc.c.id == m).values(state=ContactState.CANCELLED.value)
        )
    assert await _finish(db_engine, aid, Result.BUSY, T0)
    mem = await _member(db_engine, m)
    assert (mem.state, mem.next_attempt_at, mem.attempts) == (ContactState.CANCELLED, None, 1)


async def test_a_predial_result_skips_the_contact_once_without_a_charge(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
        [c] = await claim_due(conn, camp, "d1", 1, T0)
        aid = await record_predial(
            conn, c.membership_id, camp, c.contact_id, Result.DNC, "on the DNC list", T0,
            number=c.number,
        )
        again = await record_predial(
            conn, c.membership_id, camp, c.contact_id, Result.DNC, "on the DNC list", T0
        )
        a = await get_attempt(conn, aid)
        row = (await conn.execute(select(_a).where(_a.c.id == aid))).one()
        mem = await membership(conn, c.membership_id)
        n = (await conn.execute(select(func.count()).select_from(_a))).scalar_one()
    assert again is None and n == 1
    assert a.result is Result.DNC and a.final
    assert row.charged is False and row.detail == "on the DNC list"
    assert (mem.state, mem.attempts, mem.last_result) == (ContactState.SKIPPED, 0, Result.DNC)


async def test_a_dial_result_is_not_a_predial_result(db_engine):
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, 1)
        with pytest.raises(ValueError, match="not a pre-dial result"):
            await record_predial(conn, ids[0], camp, 1, Result.BUSY, None, T0)


async def test_add_dnc_is_idempotent_even_when_racing(db_engine):
    async def add(source):
        async with db_engine.begin() as conn:
            return await add_dnc(conn, "+442079460000", source)

    added = await asyncio.gather(*(add(s) for s in ("manual", "import", "agent", "manual")))
    assert added.count(True) == 1
    async with db_engine.connect() as conn:
        assert await is_dnc(conn, "+442079460000")
        assert not await is_dnc(conn, "+442079460001")
        n = (await conn.execute(select(func.count()).select_from(DncEntry.__table__))).scalar_one()
    assert n == 1


async def test_get_attempt_of_an_unknown_id_is_none(db_engine):
    async with db_engine.connect() as conn:
        assert await get_attempt(conn, "00000000-0000-0000-0000-000000000000") is None


@pytest.mark.parametrize("rounds", [6])
async def test_a_call_back_racing_the_hangup_always_reschedules_the_contact(db_engine, rounds):
    """The IVR flow's disposition and the hangup flow's result, at once, in either order."""
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, rounds)
    when = T0 + dt.timedelta(days=1)

    async def dispose(aid):
        async with db_engine.begin() as conn:
            return await set_disposition(conn, aid, Disposition.CALL_BACK, when)

    for i in range(rounds):
        aid, m = await _dial(db_engine, camp)
        jobs = [dispose(aid), _finish(db_engine, aid, Result.LIVE_ANSWER, T0, talk_seconds=30)]
        if i % 2:
            jobs.reverse()
        assert await asyncio.gather(*jobs) == [True, True]
        mem = await _member(db_engine, m)
        assert (mem.state, mem.next_attempt_at, mem.attempts) == (
            ContactState.RETRY_SCHEDULED, when, 1
        ), f"round {i}"


async def test_every_writer_racing_on_many_attempts_leaves_one_result_each(db_engine):
    """Originator, outbound flow and hangup flow all report at once: no deadlock, no double count."""
    n = 12
    async with db_engine.begin() as conn:
        camp, ids = await seed_campaign(conn, n)
    calls = [await _dial(db_engine, camp) for _ in range(n)]

    async def write(fn, *args, **kw):
        async with db_engine.begin() as conn:
            return await fn(conn, *args, **kw)

    jobs = []
    for aid, _ in calls:
        jobs += [
            write(mark_answered, aid, T0, AmdStatus.HUMAN),
            write(mark_waiting_agent, aid, T0),
            write(set_routing, aid, Routing.DROPPED),
            write(set_disposition, aid, Disposition.NOT_INTERESTED),
            write(finish_attempt, aid, Result.LIVE_ANSWER, ended_at=T0, talk_seconds=12),
            write(finish_attempt, aid, Result.OTHER, ended_at=T0, hangup_cause=16),
        ]
    await asyncio.gather(*jobs)
    async with db_engine.connect() as conn:
        rows = (await conn.execute(select(_a).where(_a.c.campaign_id == camp))).all()
        members = (await conn.execute(select(_cc).where(_cc.c.campaign_id == camp))).all()
    assert len(rows) == n
    assert all(r.result in (Result.LIVE_ANSWER, Result.OTHER) for r in rows)
    assert all((r.hangup_cause, r.talk_seconds) == (16, 12) for r in rows)
    assert all(m.attempts == 1 for m in members)
    by_attempt = {r.id: r for r in rows}
    for m in members:
        r = by_attempt[m.last_attempt_id]
        assert m.last_result == r.result
        # dropped, whichever result won (a live answer, or other: an answered call counted as a
        # dropped person): retried after 30 min by the dropped rule
        assert (m.state, m.next_attempt_at) == (ContactState.RETRY_SCHEDULED, T0 + 30 * MIN)


async def _first_step(conn, write):
    """Run the first Step of ``write`` (an agi.db.attempt_writes generator) on ``conn`` and
    return the rest as a coroutine function: the write paused between its round trips, as the
    network can pause it, so another transaction's statements can come in between."""
    from agi.db.attempts import _execute

    results = [await _execute(conn, s) for s in write.send(None).statements]

    async def rest():
        nonlocal results
        while True:
            try:
                step = write.send(results)
            except StopIteration as done:
                return done.value
            results = [await _execute(conn, s) for s in step.statements]
    return rest


async def test_a_late_finish_and_a_routing_on_a_final_attempt_wait_for_each_other_without_deadlock(db_engine):
    """Attempt first, then membership, in every write. A finish that lost (the result was set)
    still fills the empty bookkeeping; sent after the membership's lock, it waited for the
    attempt that a routing arriving after the result held while the routing waited for the
    membership: PostgreSQL's deadlock. Here the two are interleaved exactly so."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no row locks to order")
    from agi.db import attempt_writes as w

    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    assert await _finish(db_engine, aid, Result.LIVE_ANSWER, T0 + MIN)  # the result, no talk time yet

    async with db_engine.connect() as late, db_engine.connect() as routing:
        await late.begin()
        rest_of_late = await _first_step(late, w.finish_attempt(aid, Result.OTHER, ended_at=T0 + MIN,
                                                                 talk_seconds=12, hangup_cause=16))
        await routing.begin()
        routed = asyncio.create_task(set_routing(routing, aid, Routing.DROPPED, now=T0 + MIN))
        await asyncio.sleep(0.3)  # the routing goes as far as it can (on the old order: it held the attempt)
        assert await asyncio.wait_for(rest_of_late(), 10) is False  # old order: DeadlockDetected here ...
        await late.commit()
        assert await asyncio.wait_for(routed, 10) is True  # ... or here
        await routing.commit()

    async with db_engine.connect() as conn:
        row = (await conn.execute(select(_a).where(_a.c.id == aid))).one()
    assert (row.result, row.routing, row.talk_seconds, row.hangup_cause) == ("live_answer", "dropped", 12, 16)
    assert (await _member(db_engine, m)).state == ContactState.RETRY_SCHEDULED  # dropped: retried


async def test_repeated_service_errors_back_off_then_stop(db_engine):
    """A number whose trunk always fails is not redialed forever (retry.MAX_SERVICE_ERRORS)."""
    import datetime as _dt

    from sqlalchemy import select as _select

    from agi.db import attempts as _db
    from agi.db.models import CampaignContact as _CC
    from agi.outcomes import ContactState as _CS, Result as _R
    from db_seed import T0 as _T0, seed_campaign as _seed

    async with db_engine.begin() as conn:
        cid, (m,) = await _seed(conn, 1)
        contact = (await conn.execute(_select(_CC.__table__.c.contact_id))).scalar_one()
    gaps = []
    for _ in range(12):
        async with db_engine.begin() as conn:
            a = await _db.start_attempt(conn, m, campaign_id=cid, contact_id=contact, dialer="d",
                                        number="+12025550000", attempt_no=1, now=_T0)
            await _db.finish_attempt(conn, a, _R.SERVICE_ERROR, ended_at=_T0)
            state, when = (await conn.execute(_select(_CC.__table__.c.state, _CC.__table__.c.next_attempt_at)
                                              .where(_CC.__table__.c.id == m))).one()
        if state == _CS.DONE.value:
            break
        gaps.append((when - _T0) / _dt.timedelta(minutes=1))
    assert gaps == [1, 1, 1, 2, 4, 8, 16, 32, 60, 60, 60] and state == _CS.DONE.value


# the previous attempt's choice -> is the next attempt a call-back (seed 002 "No answer from a customer (Callback)")
CALLBACK_AFTER = {
    "first_attempt": (None, False),
    "after_the_person_asked_for_a_call_back": (Disposition.CALL_BACK, True),
    "after_not_interested": (Disposition.NOT_INTERESTED, False),
    "after_no_key": (Disposition.NO_KEY, False),
}


@pytest.mark.parametrize("case", sorted(CALLBACK_AFTER))
async def test_an_attempt_is_a_call_back_when_the_previous_one_asked_for_it(db_engine, case):
    previous, is_callback = CALLBACK_AFTER[case]
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
    aid, m = await _dial(db_engine, camp)
    if previous is not None:
        async with db_engine.begin() as conn:
            await mark_answered(conn, aid, T0)
            await set_disposition(conn, aid, previous, T0 + 5 * MIN, now=T0)
            await finish_attempt(conn, aid, Result.LIVE_ANSWER, ended_at=T0 + MIN)
        async with db_engine.begin() as conn:  # the next dial (as the originator starts it, claimed or not)
            m_row = await membership(conn, m)
            aid = await start_attempt(conn, m, campaign_id=camp, contact_id=m_row.contact_id, dialer="d1",
                                      number=m_row.number, attempt_no=2, now=T0 + 5 * MIN)
    async with db_engine.connect() as conn:
        rows = (await conn.execute(select(_a.c.id, _a.c.callback).where(_a.c.membership_id == m))).all()
    assert {r.id: r.callback for r in rows}[aid] is is_callback
    assert sum(r.callback for r in rows) == int(is_callback)  # only the new attempt, never the first
