"""The originator under faults, through the simulator over TCP: AMI dropped or stalled mid-campaign,
a loaded Asterisk's OriginateResponse before the call's own events, DNC added mid-campaign, calling
windows, line and CPS limits."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from agi.db import attempts as db
from agi.db.models import Attempt, Campaign, CampaignContact
from agi.local import LocalStack
from agi import reports
from agi.outcomes import ContactState, Result, Routing
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

ALL_DAY = dict(window_start=dt.time(0, 0), window_end=dt.time(0, 0))


async def campaign(engine, n: int, first: int, **values) -> int:
    async with engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, n, first_number=first)
        values = {**ALL_DAY, "lines": 10, "cps": 20, "key_timeout": 1, "key_tries": 1,
                  "retry_rules": {"busy": 5, "service_error": 1}, "max_attempts": 2, **values}
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(**values))
    return campaign_id


async def attempts_of(engine, campaign_id: int):
    a = Attempt.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()


def check_never_lost_never_twice(record, attempts) -> None:
    """Every Originate the simulator saw has exactly one attempt with a final result, and no
    attempt id reached the network twice."""
    ids = [rec.channel_id for rec in record]
    assert len(ids) == len(set(ids)), "an attempt was originated twice"
    dialed = {r.id: r for r in attempts if r.dialer is not None and Result(r.result).dialed}
    assert all(r.result is not None for r in attempts), [r.id for r in attempts if r.result is None]
    assert set(ids) <= set(dialed), set(ids) - set(dialed)


async def test_ami_dropped_mid_campaign_reconnects_and_loses_nothing(db_engine):
    cid = await campaign(db_engine, 60, 2025552000)
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=3), speed=100.0, lines=10, cps=20) as stack:
        await stack.assign(cid)
        stack.start()
        while len(stack.sim.record) < 20:
            await asyncio.sleep(0.02)
        assert stack.sim.faults.drop_ami() >= 1
        await stack.settle(cid, timeout=120, retry_horizon_s=600)
        assert stack.ami.connections >= 2  # it logged in again
        record = list(stack.sim.record)
    attempts = await attempts_of(db_engine, cid)
    check_never_lost_never_twice(record, attempts)
    assert len(record) >= 60


async def test_ami_stall_times_actions_out_and_the_loop_recovers(db_engine):
    cid = await campaign(db_engine, 40, 2025553000)
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=4), speed=100.0, lines=10, cps=20) as stack:
        stack.ami.action_timeout = 0.5
        await stack.assign(cid)
        stack.start()
        while len(stack.sim.record) < 15:
            await asyncio.sleep(0.02)
        stack.sim.faults.stall_ami(2.0)
        await stack.settle(cid, timeout=120, retry_horizon_s=600)
        record = list(stack.sim.record)
    check_never_lost_never_twice(record, await attempts_of(db_engine, cid))


async def test_number_put_on_dnc_mid_campaign_is_never_dialed_afterwards(db_engine):
    cid = await campaign(db_engine, 30, 2025554000, lines=2, cps=10)
    late = "+12025554029"  # the last contact: not dialed before we list it
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=5), speed=100.0, lines=2, cps=10) as stack:
        await stack.assign(cid)
        stack.start()
        while len(stack.sim.record) < 3:
            await asyncio.sleep(0.02)
        assert not stack.sim.record.by_number(late)
        async with db_engine.begin() as conn:
            await db.add_dnc(conn, late, "manual")
        await stack.settle(cid, timeout=120, retry_horizon_s=600)
        assert not stack.sim.record.by_number(late)
    attempts = await attempts_of(db_engine, cid)
    assert [r.result for r in attempts if r.number == late] == [Result.DNC.value]


async def test_contact_outside_its_calling_window_waits_until_it_opens(db_engine):
    now = dt.datetime.now(dt.timezone.utc)
    ny = now.astimezone(ZoneInfo("America/New_York"))
    # a window that closed an hour ago and opens again in 22 hours, New York time
    start = (ny + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    end = (ny - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    cid = await campaign(db_engine, 5, 2025555000, window_start=start, window_end=end)
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=1.0, lines=5, cps=5) as stack:
        await stack.assign(cid)
        stack.start()
        await asyncio.sleep(1.5)
        assert len(stack.sim.record) == 0  # nothing dialed outside the window
        cc = CampaignContact.__table__
        async with db_engine.connect() as conn:
            rows = (await conn.execute(select(cc.c.state, cc.c.next_attempt_at).where(cc.c.campaign_id == cid))).all()
        assert {r.state for r in rows} == {ContactState.PENDING.value}
        opens = {r.next_attempt_at for r in rows}
        assert len(opens) == 1
        wait = (opens.pop() - now).total_seconds()
        assert 1.5 * 3600 < wait < 2.5 * 3600  # deferred to the window's opening, New York time
        async with db_engine.begin() as conn:  # the window opens ...
            await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(**ALL_DAY))
        # ... and once the originator runs with it, the contacts are due: made due before, one
        # claimed with the window it still had was deferred again to the old opening (a loaded run)
        await until(lambda: _opened(stack, cid), 20, "the originator running with the new window")
        async with db_engine.begin() as conn:
            await conn.execute(update(cc).where(cc.c.campaign_id == cid).values(next_attempt_at=None))
        await stack.settle(cid, timeout=60)
        assert len(stack.sim.record) == 5


async def _opened(stack, cid: int) -> bool:
    run = stack.originator.campaigns.get(cid)
    return run is not None and (run.window.start, run.window.end) == (ALL_DAY["window_start"], ALL_DAY["window_end"])


async def test_lines_and_calls_per_second_never_exceed_the_limits(db_engine):
    cid = await campaign(db_engine, 30, 2025556000, lines=6, cps=4)
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=6), speed=20.0, lines=8, cps=5) as stack:
        await stack.assign(cid)
        stack.start()
        await stack.settle(cid, timeout=150, retry_horizon_s=600)
        assert 0 < stack.sim.record.max_concurrent <= 6  # the campaign's lines on this dialer
        assert 0 < stack.sim.record.max_cps <= 4  # the campaign's calls per second


async def test_person_answering_while_fastagi_is_down_hears_the_drop_message(db_engine):
    """dialplan/dialer.conf: AGISTATUS=FAILURE -> Playback(${DIALER_DROP_MESSAGE}) before Hangup."""
    cid = await campaign(db_engine, 3, 2025556600, drop_message="acme/sorry-we-will-call-back",
                         retry_rules={"dropped": 30})
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="human"), speed=50.0, lines=3, cps=10) as stack:
        await stack.server.shutdown(1.0)  # the FastAGI server is down
        await stack.assign(cid)
        stack.start()
        await stack.settle(cid, timeout=60, retry_horizon_s=0)
        records = list(stack.sim.record)
    assert len(records) == 3
    for rec in records:
        assert "ExecIf(1?Playback(acme/sorry-we-will-call-back))" in rec.dialplan, rec.dialplan
        assert not rec.agi_commands  # nothing ran on our side
    attempts = await attempts_of(db_engine, cid)
    assert all(r.result is not None for r in attempts)  # still one final result each (originator grace)
    # nobody knows whether a person answered: "other", counted as a dropped person and retried as one
    assert {(r.result, r.routing) for r in attempts} == {(Result.OTHER.value, Routing.DROPPED.value)}
    async with db_engine.connect() as conn:
        members = (await conn.execute(select(CampaignContact.__table__).where(
            CampaignContact.__table__.c.campaign_id == cid))).all()
        summary = await reports.summary(conn, cid)
    assert {m.state for m in members} == {ContactState.RETRY_SCHEDULED.value}  # the dropped rule, not done
    assert (summary.dropped_in_window, summary.live_in_window) == (3, 3)  # 100 % dropped, not 0.00 %


# Fast failures (no ringing) of every kind a loaded Asterisk sent response-first in the captured run
FAST_FAILURES = dict(human=0.0, machine=0.0, fax=0.0, notsure=0.0, no_answer=0.0, no_channel=0.0,
                     busy=0.3, unallocated=0.2, rejected=0.2, number_changed=0.1, congestion=0.2)
# what the network did -> the result docs/outcomes.md says (Q.850 cause of the far end: 17, 1, 21, 22, 34)
FAILURE_RESULT = {"busy": Result.BUSY, "unallocated": Result.DISCONNECTED, "rejected": Result.REJECTED,
                  "number_changed": Result.DISCONNECTED, "congestion": Result.SERVICE_ERROR}


@pytest.mark.parametrize("dial_template", ["PJSIP/{number}@trunk", "Local/{number}@callee"],
                         ids=["one-channel", "local-pair"])
async def test_failures_whose_response_comes_before_their_events_get_the_result_of_their_cause(
        db_engine, dial_template):
    """0.3 of the failures get their OriginateResponse before their Newchannel/Hangup (as 15 of 75
    did on a loaded Asterisk): every attempt still gets the result and cause the network gave."""
    # one attempt each: no retry falls due during the test (a service error is retried in 10 hours)
    cid = await campaign(db_engine, 300, 2025557000, lines=20, cps=50, max_attempts=1,
                         retry_rules={"service_error": 600})
    plan = ScenarioPlan.mix(seed=8, ring_time=(0.0, 0.0), **FAST_FAILURES)
    async with LocalStack(db_engine, plan=plan, speed=100.0, lines=20, cps=50, dial_template=dial_template) as stack:
        stack.sim.faults.response_first, stack.sim.faults.response_first_seed = 0.3, 4
        await stack.assign(cid)
        stack.start()
        await stack.settle(cid, timeout=150)
        record = list(stack.sim.record)
    attempts = {r.id: r for r in await attempts_of(db_engine, cid)}
    check_never_lost_never_twice(record, attempts.values())
    assert len(record) == 300
    assert Counter(rec.response_first for rec in record)[True] >= 60  # the order under test did happen
    wrong = [(rec.scenario, rec.response_first, attempts[rec.channel_id].result) for rec in record
             if attempts[rec.channel_id].result != FAILURE_RESULT[rec.network].value]
    assert not wrong, wrong[:10]
    for rec in record:  # and the cause and Reason that decided it are the network's
        row = attempts[rec.channel_id]
        assert row.hangup_cause == next(c for c in rec.causes.values() if c), (rec.scenario, rec.causes)
        assert row.originate_reason == rec.reason


async def test_a_failure_with_no_channel_at_all_waits_the_grace_then_ends_when_it_was_refused(db_engine):
    """No channel (a bad technology): no event ever comes. After the grace it is a service error,
    its Reason recorded, and it ended when Asterisk refused it, not when the grace ran out."""
    cid = await campaign(db_engine, 3, 2025558000, lines=3, cps=10, max_attempts=1,
                         retry_rules={"service_error": 600})
    plan = ScenarioPlan.table({}, default="no_channel")
    async with LocalStack(db_engine, plan=plan, speed=100.0, lines=3, cps=10) as stack:
        await stack.assign(cid)
        stack.start()
        await stack.settle(cid, timeout=60)
        record = {rec.channel_id: rec for rec in stack.sim.record}
    attempts = await attempts_of(db_engine, cid)
    assert len(attempts) == len(record) == 3
    for row in attempts:
        assert (row.result, row.originate_reason, row.hangup_cause) == (Result.SERVICE_ERROR.value, 0, None)
        # the grace (3 s of wall time) is 300 simulated seconds at this speed: not part of the call
        assert (row.ended_at - row.queued_at).total_seconds() < 30  # queued: committed right before the Originate
