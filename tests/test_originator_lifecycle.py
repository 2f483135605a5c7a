"""Campaign states driven by the running originator (seed 003): paused while no agent line is
free and resuming by itself, stopped_by_dialer when another dialer's heartbeat goes stale,
completed when nothing is left, stopped by the admin."""

from __future__ import annotations

import pytest

import asyncio
import logging
import datetime as dt

from sqlalchemy import insert, select, update

from agi.db.models import Campaign, CampaignContact, Dialer, DialerCampaign
from agi.local import LocalStack
from agi.outcomes import CampaignState, ContactState
from agi.sim.queues import Member, QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

ALL_DAY = dict(window_start=dt.time(0, 0), window_end=dt.time(0, 0))


async def dialer_state(engine, campaign_id: int, dialer: str) -> str:
    d, dc = Dialer.__table__, DialerCampaign.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(dc.c.state).join(d, d.c.id == dc.c.dialer_id).where(
            dc.c.campaign_id == campaign_id, d.c.name == dialer))).scalar_one()


async def test_agent_campaign_pauses_with_no_free_agent_and_resumes_by_itself(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 20, first_number=2025559000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="progressive", queue_name="sales", lines=5, cps=20, key_timeout=1, key_tries=1, **ALL_DAY))
    queues = {"sales": QueueConfig("sales", members=[Member("PJSIP/agent1", "Agent One", paused=True)],
                                   talk_seconds=(5, 10))}
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), queues=queues,
                          speed=100.0, lines=5, cps=20) as stack:
        await stack.assign(cid)
        stack.start()
        await until(lambda: _is(db_engine, cid, "local", CampaignState.PAUSED_NO_AGENTS))
        assert len(stack.sim.record) == 0  # progressive with no agent: nothing dialed
        stack.sim.queues.pause("PJSIP/agent1", False)  # the agent comes back from break
        await until(lambda: _is(db_engine, cid, "local", CampaignState.RUNNING))
        await until(lambda: _dialed(stack))


async def _is(engine, cid, dialer, state) -> bool:
    return await dialer_state(engine, cid, dialer) == state.value


async def _dialed(stack) -> bool:
    return len(stack.sim.record) > 0


async def test_dead_dialers_campaign_is_stopped_by_dialer_and_a_finished_one_completes(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 5, first_number=2025559100)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            lines=5, cps=20, **ALL_DAY))
        ghost = (await conn.execute(insert(Dialer.__table__).values(
            name="ghost", last_heartbeat=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
            .returning(Dialer.__table__.c.id))).scalar_one()
        await conn.execute(insert(DialerCampaign.__table__).values(
            dialer_id=ghost, campaign_id=cid, state=CampaignState.RUNNING.value))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=100.0, lines=5) as stack:
        await stack.assign(cid)
        stack.start()
        await until(lambda: _is(db_engine, cid, "ghost", CampaignState.STOPPED_BY_DIALER))
        # the live dialer finishes the campaign on its own (busy: 5 min retry, 3 attempts)
        await until(lambda: _is(db_engine, cid, "local", CampaignState.COMPLETED), timeout=60)
    cc = CampaignContact.__table__
    async with db_engine.connect() as conn:
        states = set((await conn.execute(select(cc.c.state).where(cc.c.campaign_id == cid))).scalars())
    assert states == {ContactState.DONE.value}


async def test_admin_stop_stops_new_calls(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 200, first_number=2025559200)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            lines=3, cps=5, **ALL_DAY))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=100.0, lines=3, cps=5) as stack:
        await stack.assign(cid)
        stack.start()
        await until(lambda: _dialed(stack))
        async with db_engine.begin() as conn:
            await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid)
                               .values(state=CampaignState.STOPPED.value))
        await until(lambda: _is(db_engine, cid, "local", CampaignState.STOPPED))
        await asyncio.sleep(0.5)
        seen = len(stack.sim.record)
        await asyncio.sleep(1.0)
        assert len(stack.sim.record) == seen  # no new calls once stopped
        assert seen < 200


async def _ghost_running(engine, name: str, beat_age: dt.timedelta, n: int = 5, first: int = 2025559300) -> int:
    """A campaign left "running" on dialer ``name`` whose last heartbeat is ``beat_age`` old."""
    async with engine.begin() as conn:
        cid, _ = await seed_campaign(conn, n, name=f"left-{name}", first_number=first)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=CampaignState.RUNNING.value, lines=5, cps=20, **ALL_DAY))
        dialer = (await conn.execute(insert(Dialer.__table__).values(
            name=name, last_heartbeat=dt.datetime.now(dt.timezone.utc) - beat_age)
            .returning(Dialer.__table__.c.id))).scalar_one()
        await conn.execute(insert(DialerCampaign.__table__).values(
            dialer_id=dialer, campaign_id=cid, state=CampaignState.RUNNING.value))
    return cid


def _cli(engine, *args: str):
    from click.testing import CliRunner

    from agi.cli import main

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)


async def test_a_campaign_whose_only_originator_died_reads_stopped_by_dialer(db_engine):
    """Nobody is left to write stopped_by_dialer: campaign show/list derive it from the stale beat."""
    import json

    cid = await _ghost_running(db_engine, "gone", dt.timedelta(minutes=2))
    alive = await _ghost_running(db_engine, "alive", dt.timedelta(seconds=3), first=2025559400)
    shown = json.loads((await asyncio.to_thread(_cli, db_engine, "campaign", "show", str(cid), "--json")).stdout)
    assert [d["state"] for d in shown["dialers"]] == [CampaignState.STOPPED_BY_DIALER.value]
    assert shown["overall_state"] == CampaignState.STOPPED_BY_DIALER.value
    listed = {r["id"]: r for r in json.loads((await asyncio.to_thread(_cli, db_engine, "campaign", "list",
                                                                      "--json")).stdout)}
    assert listed[cid]["overall_state"] == CampaignState.STOPPED_BY_DIALER.value
    assert listed[alive]["overall_state"] == CampaignState.RUNNING.value  # a fresh beat: as stored
    text = (await asyncio.to_thread(_cli, db_engine, "campaign", "list")).output
    assert "Stopped By Dialer" in text


async def test_an_originator_restarted_after_a_crash_marks_its_stale_rows_at_start(db_engine, caplog):
    caplog.set_level(logging.WARNING, logger="agi.originator")
    cid = await _ghost_running(db_engine, "local", dt.timedelta(minutes=5))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=100.0, lines=5):
        # started, not running its loop yet: the rows its dead predecessor left say so already
        assert await dialer_state(db_engine, cid, "local") == CampaignState.STOPPED_BY_DIALER.value
    assert any("left running by a previous run that died" in r.getMessage() for r in caplog.records)


async def test_an_originator_that_stops_leaves_its_campaigns_stopped_by_dialer(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 50, first_number=2025559500)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            lines=2, cps=5, **ALL_DAY))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=20.0, lines=2, cps=5) as stack:
        await stack.assign(cid)
        stack.start()
        await until(lambda: _is(db_engine, cid, "local", CampaignState.RUNNING))
    # stopped (SIGTERM in `dialer originate`): not "Running and Dialing" any more
    assert await dialer_state(db_engine, cid, "local") == CampaignState.STOPPED_BY_DIALER.value


def _agents(busy: int, total: int = 5) -> QueueConfig:
    """A queue of ``total`` agents, ``busy`` of them connected to calls (InCall=1) already."""
    return QueueConfig("sales", members=[Member(f"PJSIP/agent{i}", f"Agent {i}", busy=i <= busy)
                                         for i in range(1, total + 1)], talk_seconds=(600, 600))


async def test_a_campaign_on_two_dialers_pauses_where_its_agents_are_busy_and_dials_where_they_are_free(db_engine):
    """Seed 003's example: 10 agents on two dialers of 5 agent lines each. The dialer whose 5 agents
    are all connected pauses (paused_no_agents); the one at 3 of 5 goes on, pacing by its own free
    agents; the drop budget they pace against is the campaign's, shared."""
    from agi.db.models import Attempt
    from agi.outcomes import Result, Routing

    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 200, first_number=2025559600)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="progressive", queue_name="sales", lines=10, cps=20, **ALL_DAY))
        contact = (await conn.execute(select(CampaignContact.__table__.c.contact_id).limit(1))).scalar_one()
        now = dt.datetime.now(dt.timezone.utc)
        await conn.execute(insert(Attempt.__table__), [  # earlier today: 20 live answers, one dropped
            {"id": f"earlier-{i}", "campaign_id": cid, "contact_id": contact, "result": Result.LIVE_ANSWER.value,
             "routing": Routing.DROPPED.value if i == 0 else None, "queued_at": now, "answered_at": now,
             "ended_at": now} for i in range(20)])
    plan = ScenarioPlan.table({}, default="busy")
    async with LocalStack(db_engine, plan=plan, queues={"sales": _agents(busy=5)}, dialer="east", speed=100.0,
                          lines=5, cps=20) as east, \
            LocalStack(db_engine, plan=plan, queues={"sales": _agents(busy=3)}, dialer="west", speed=100.0,
                       lines=5, cps=20) as west:
        await east.assign(cid)
        await west.assign(cid)
        east.start()
        west.start()
        await until(lambda: _is(db_engine, cid, "east", CampaignState.PAUSED_NO_AGENTS))
        await until(lambda: _is(db_engine, cid, "west", CampaignState.RUNNING))
        await until(lambda: _count(west, 6))
        assert len(east.sim.record) == 0  # its agents are all connected: nothing dialed there
        assert west.sim.record.max_concurrent <= 2  # paced by its own 2 free agents (ratio 1)
        runs = [s.originator.campaigns[cid] for s in (east, west)]
        assert [(r.dropped_window, r.live_window) for r in runs] == [(1, 20), (1, 20)]  # one shared budget


async def _shows_line_limited(engine, cid) -> bool:
    import json

    shown = json.loads((await asyncio.to_thread(_cli, engine, "campaign", "show", str(cid), "--json")).stdout)
    return "line-limited" in shown["dialers"][0]["reason"]


async def _count(stack, n: int) -> bool:
    return len(stack.sim.record) >= n


async def test_a_campaign_whose_agents_wait_for_lines_says_so_once(db_engine, caplog):
    caplog.set_level(logging.WARNING, logger="agi.originator")
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 60, first_number=2025559800)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="progressive", queue_name="sales", lines=2, cps=20, ring_timeout=25, **ALL_DAY))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="no_answer"),
                          queues={"sales": QueueConfig("sales", agents=6)}, speed=20.0, lines=10, cps=20) as stack:
        await stack.assign(cid)
        stack.start()
        await until(lambda: _count(stack, 6))
        run = stack.originator.campaigns[cid]
        assert run.line_limited_since is not None  # 2 lines, 6 free agents: the lines hold it back
        await until(lambda: _shows_line_limited(db_engine, cid))  # `campaign show` says why (live figures)
    said = [r.getMessage() for r in caplog.records if "line-limited" in r.getMessage()]
    assert len(said) == 1 and "2 lines in use of 2 allowed here" in said[0], said
