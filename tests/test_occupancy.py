"""Agent occupancy as a stored figure: the originator's per-hour agent time, its increments
to the database, and the summary report's percentage over it (both backends)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, update

from agi import reports
from agi.ami.client import AMIClient
from agi.cli import main
from agi.db.models import Campaign, CampaignAgentTime, Dialer, DialerCampaign
from agi.local import LocalStack
from agi.originator import store
from agi.originator.agents import AgentTime
from agi.originator.dialer import Originator
from agi.outcomes import CampaignState
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

H = 3600.0
T = 1_790_000_000.0 - 1_790_000_000.0 % H  # a whole hour, epoch seconds


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


# ---- the in-memory increments (pure) ----------------------------------------------------------

@pytest.mark.parametrize("t0, t1, busy, logged, expected", [
    # inside one hour: span x agents
    (T + 10, T + 70, 2, 3, {T: (120.0, 180.0)}),
    # across an hour boundary: each hour gets its own part
    (T + H - 30, T + H + 90, 1, 4, {T: (30.0, 120.0), T + H: (90.0, 360.0)}),
    # across two boundaries: the whole middle hour
    (T + H - 1, T + 2 * H + 1, 2, 2, {T: (2.0, 2.0), T + H: (2 * H, 2 * H), T + 2 * H: (2.0, 2.0)}),
    # nothing observed: nothing pending
    (T + 5, T + 5, 3, 3, {}),
])
def test_a_poll_interval_is_split_into_agent_seconds_per_clock_hour(t0, t1, busy, logged, expected):
    at = AgentTime()
    at.add(t0, t1, busy, logged)
    assert at.take() == {utc(h): pytest.approx(v) for h, v in expected.items()}
    assert at.take() == {}  # taken once: a flush never sends the same seconds twice


def test_increments_not_stored_are_given_back_and_sent_with_the_next_ones():
    at = AgentTime()
    at.add(T, T + 10, 1, 2)
    failed = at.take()
    at.add(T + 10, T + 20, 0, 2)
    at.give_back(failed)
    assert at.take() == {utc(T): (10.0, 40.0)}


# ---- stored: increments add up, the report counts shared agents once ---------------------------

async def _dialer(conn, name: str, host: str = "10.0.0.1", port: int = 5038) -> int:
    d = Dialer.__table__
    return (await conn.execute(insert(d).values(name=name, ami_host=host, ami_port=port)
                               .returning(d.c.id))).scalar_one()


async def test_flushes_add_increments_to_the_dialers_hour_rows(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 0)
        a = await _dialer(conn, "a")
        assert await reports.agent_occupancy(conn, cid) is None  # nothing logged in yet
        await store.add_agent_time(conn, cid, a, {utc(T): (30.0, 100.0)})
        await store.add_agent_time(conn, cid, a, {utc(T): (15.0, 50.0), utc(T + H): (40.0, 50.0)})
        await store.add_agent_time(conn, cid, a, {})
        t = CampaignAgentTime.__table__
        rows = (await conn.execute(select(t.c.hour, t.c.busy_agent_seconds, t.c.logged_agent_seconds)
                                   .where(t.c.campaign_id == cid).order_by(t.c.hour))).all()
        assert [tuple(r) for r in rows] == [(utc(T), 45.0, 150.0), (utc(T + H), 40.0, 50.0)]
        assert await reports.agent_occupancy(conn, cid) == pytest.approx(100.0 * 85 / 200)
        # per period: only the hours overlapping it
        assert await reports.agent_occupancy(conn, cid, since=utc(T + H + 60)) == pytest.approx(80.0)
        assert await reports.agent_occupancy(conn, cid, until=utc(T + H)) == pytest.approx(30.0)


async def test_dialers_on_one_asterisk_count_its_agents_once_and_other_boxes_add_up(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 0)
        a = await _dialer(conn, "a", "10.0.0.1")
        b = await _dialer(conn, "b", "10.0.0.1")  # same box, same queue, same agents as a
        c = await _dialer(conn, "c", "10.0.0.2")  # another box: its own agents
        # hour T: a and b both watched the whole hour (4 agents, 3 busy on average)
        await store.add_agent_time(conn, cid, a, {utc(T): (3 * H, 4 * H)})
        await store.add_agent_time(conn, cid, b, {utc(T): (3 * H, 4 * H)})
        # hour T+1: b only started half-way: a's full hour is the one that counts
        await store.add_agent_time(conn, cid, a, {utc(T + H): (2 * H, 4 * H)})
        await store.add_agent_time(conn, cid, b, {utc(T + H): (H, 2 * H)})
        assert await reports.agent_occupancy(conn, cid) == pytest.approx(100.0 * 5 / 8)
        # box 2: 2 agents always idle, adds to the logged-in time
        await store.add_agent_time(conn, cid, c, {utc(T): (0.0, 2 * H), utc(T + H): (0.0, 2 * H)})
        assert await reports.agent_occupancy(conn, cid) == pytest.approx(100.0 * 5 / 12)


async def test_summary_has_no_occupancy_for_a_campaign_without_agent_time(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 0)
        other, _ = await seed_campaign(conn, 0, name="other")
        await store.add_agent_time(conn, other, await _dialer(conn, "a"), {utc(T): (1.0, 2.0)})
        assert (await reports.summary(conn, cid)).agent_occupancy_pct is None
        assert (await reports.summary(conn, other)).agent_occupancy_pct == pytest.approx(50.0)


# ---- end to end: simulator + FastAGI + originator, then `dialer report summary` ---------------

async def _stored_rows(engine, cid: int) -> int:
    t = CampaignAgentTime.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).where(t.c.campaign_id == cid))).scalar_one()


async def test_report_summary_prints_the_occupancy_the_originator_measured(db_engine, db_url):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 30, name="occ", first_number=2025557000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="progressive", queue_name="sales", lines=6, cps=20, drop_timeout=2, key_timeout=2,
            key_tries=1, window_start=dt.time(0, 0), window_end=dt.time(0, 0)))
    queues = {"sales": QueueConfig("sales", agents=3, talk_seconds=(20, 60), acw_seconds=(5, 15))}
    # every person presses 1 (interested): the calls go to the agents
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="human_keypress"), queues=queues,
                          speed=100.0, lines=6, cps=20) as stack:
        await stack.assign(cid)
        stack.start()
        # stored while the campaign runs (the periodic flush), not only at stop
        async with asyncio.timeout(30):
            while not await _stored_rows(db_engine, cid):
                await asyncio.sleep(0.2)
        await stack.settle(cid, timeout=120)
    measured = stack.originator.occupancy(cid)  # the run has stopped: everything is flushed
    assert measured is not None and 0.0 < measured < 100.0

    res = await asyncio.to_thread(CliRunner().invoke, main, ["--db", db_url, "report", "summary",
                                                             "--campaign", "occ", "--json"])
    assert res.exit_code == 0, res.output
    stored = json.loads(res.stdout)["agent_occupancy_pct"]
    assert stored == pytest.approx(measured, abs=0.01)

    res = await asyncio.to_thread(CliRunner().invoke, main, ["--db", db_url, "report", "summary",
                                                             "--campaign", "occ"])
    assert res.exit_code == 0, res.output
    assert f"Agent occupancy: {stored:.1f}%" in res.output


async def test_two_dialers_on_one_asterisk_queue_count_its_agents_once(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 30, name="shared", first_number=2025557100)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="progressive", queue_name="sales", lines=6, cps=20, drop_timeout=2, key_timeout=2,
            key_tries=1, window_start=dt.time(0, 0), window_end=dt.time(0, 0)))
    queues = {"sales": QueueConfig("sales", agents=3, talk_seconds=(20, 60), acw_seconds=(5, 15))}
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="human_keypress"), queues=queues,
                          speed=100.0, dialer="a", lines=3, cps=10) as stack:
        # a second dialer on the same simulated Asterisk: same AMI address, same queue, same agents
        ami = AMIClient("127.0.0.1", stack.sim.ami_port, "dialer", stack.ami_secret,
                        action_timeout=5.0, ping_interval=2.0, backoff=(0.1, 2.0))
        await ami.connect()
        b = Originator(db_engine, ami, "b", agi_address=f"127.0.0.1:{stack.server.port}",
                       clock=stack.sim.clock.now, tick=0.05, lines=3, cps=10,
                       dial_template="PJSIP/{number}@trunk")
        stop_b, task_b = asyncio.Event(), None
        try:
            await b.start()
            async with db_engine.begin() as conn:
                await conn.execute(insert(DialerCampaign.__table__).values(
                    dialer_id=b.dialer.id, campaign_id=cid, state=CampaignState.SCHEDULED.value))
            await stack.assign(cid)
            task_b = asyncio.create_task(b.run(stop_b, drain_deadline=30.0))
            stack.start()
            await stack.settle(cid, timeout=120)
        finally:
            stop_b.set()
            if task_b is not None:
                await asyncio.wait_for(task_b, 40)
            await ami.close()
    a = stack.originator
    logged_a, logged_b = a.campaigns[cid].agents.logged_s, b.campaigns[cid].agents.logged_s
    # both watched the agents most of the time: adding their figures would nearly double them
    assert min(logged_a, logged_b) > 0.5 * max(logged_a, logged_b) > 0
    async with db_engine.connect() as conn:
        busy, logged = await reports.agent_seconds(conn, cid)
        pct = await reports.agent_occupancy(conn, cid)
    assert max(logged_a, logged_b) <= logged * (1 + 1e-9) and logged < 1.25 * max(logged_a, logged_b)
    both = sorted((a.occupancy(cid), b.occupancy(cid)))
    assert 0.0 < pct < 100.0
    assert both[0] - 2.0 <= pct <= both[1] + 2.0
