"""agi.live, the one query module of the live views: every figure from the database, on both backends.

Seeded rows with known answers: the drop counts over the regulatory window and the last hour (an
unreported answer counts as a dropped person), attempts in the last hour (pre-dial results are not
attempts that used a line), contacts by state, occupancy this hour, and each dialer's state as a
reader should see it from its heartbeat: figures only while it beats, a reason when it does not.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, update

from agi import live
from agi.db import live_stats
from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignAgentTime, CampaignContact, Dialer, DialerCampaign
from agi.outcomes import CampaignState as S
from agi.outcomes import Result, Routing
from db_seed import seed_campaign

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
AGO = lambda **kw: NOW - dt.timedelta(**kw)  # noqa: E731


def figures(campaign_id: int, **kw) -> live_stats.CampaignFigures:
    base = dict(campaign_id=campaign_id, state="running", reason="dialing", mode="predictive", dial_level=1.5,
                calls_to_start=2, lines_in_use=4, lines_allowed=10, ringing=2, detecting=1, in_ivr=0, waiting=1,
                agents_logged_in=3, agents_ready=1, agents_in_call=1, agents_acw=1, agents_paused=0)
    return live_stats.CampaignFigures(**{**base, **kw})


async def add_dialer(conn, name: str, beat: dt.datetime | None, cid: int, state: S) -> int:
    did = (await conn.execute(insert(Dialer.__table__).values(name=name, last_heartbeat=beat, lines=30)
                              .returning(Dialer.__table__.c.id))).scalar_one()
    await conn.execute(insert(DialerCampaign.__table__).values(dialer_id=did, campaign_id=cid, state=state.value))
    return did


async def attempts(conn, cid: int, rows: list[dict]) -> None:
    contact = (await conn.execute(CampaignContact.__table__.select().where(
        CampaignContact.__table__.c.campaign_id == cid))).first().contact_id
    await conn.execute(insert(Attempt.__table__), [
        {"campaign_id": cid, "contact_id": contact, "answered_at": None, "result": None, "routing": None,
         "queued_at": r.pop("at"), **r} for r in rows])


@pytest.fixture
async def seeded(db_engine):
    async with db_engine.begin() as conn:
        cid, members = await seed_campaign(conn, 10, name="spring")
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=S.RUNNING.value, drop_window_hours=24, drop_cap_pct=3.0, mode="predictive", queue_name="sales"))
        cc = CampaignContact.__table__
        for mid, state in zip(members, ["retry_scheduled"] * 2 + ["done"] * 3 + ["skipped", "dialing"]):
            await conn.execute(update(cc).where(cc.c.id == mid).values(state=state))
        L, D, OTHER = Result.LIVE_ANSWER.value, Routing.DROPPED.value, Result.OTHER.value
        await attempts(conn, cid, [
            {"at": AGO(minutes=10), "answered_at": AGO(minutes=10), "result": L, "routing": D},
            {"at": AGO(minutes=20), "answered_at": AGO(minutes=20), "result": L},
            {"at": AGO(minutes=30), "answered_at": AGO(minutes=30), "result": OTHER, "routing": D},  # unreported
            {"at": AGO(minutes=40), "result": Result.BUSY.value},
            {"at": AGO(minutes=50)},  # in progress: used a line
            {"at": AGO(minutes=5), "result": Result.DNC.value},  # pre-dial: no line used
            {"at": AGO(hours=3), "answered_at": AGO(hours=3), "result": L, "routing": D},
            {"at": AGO(hours=5), "answered_at": AGO(hours=5), "result": L},
            {"at": AGO(hours=30), "answered_at": AGO(hours=30), "result": L, "routing": D},  # outside 24 h
        ])
        hour = NOW.replace(minute=0, second=0)
        fresh = await add_dialer(conn, "fresh", AGO(seconds=1), cid, S.RUNNING)
        silent = await add_dialer(conn, "silent", AGO(seconds=12), cid, S.RUNNING)
        await add_dialer(conn, "dead", AGO(seconds=90), cid, S.PAUSED_NO_AGENTS)
        gone = await add_dialer(conn, "gone", AGO(seconds=90), cid, S.STOPPED_BY_DIALER)
        dialer = live_stats.DialerFigures(ami_connected=True, ami_reconnects=2, lines_in_use=4, agi_address="h:1")
        for did in (fresh, silent, gone):
            await live_stats.publish(conn, did, dialer, [figures(cid)])
        await live_stats.mark_stopped(conn, gone, AGO(seconds=90))
        await conn.execute(insert(CampaignAgentTime.__table__), [
            {"campaign_id": cid, "dialer_id": fresh, "hour": hour, "busy_agent_seconds": 900.0,
             "logged_agent_seconds": 1200.0},
            {"campaign_id": cid, "dialer_id": fresh, "hour": hour - dt.timedelta(hours=1), "busy_agent_seconds": 10.0,
             "logged_agent_seconds": 1000.0}])
        done_id, _ = await seed_campaign(conn, 2, name="old", first_number=2025559000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == done_id).values(
            state=S.COMPLETED.value))
    return db_engine, cid


async def test_drop_rates_pace_contacts_and_occupancy_are_the_databases(seeded):
    engine, cid = seeded
    snap = await live.read(engine, NOW, with_results=True)
    assert snap.database.migrated
    [c] = snap.campaigns  # the completed campaign is not shown by default
    assert c.name == "spring" and c.state is S.RUNNING
    assert (c.drops_window.dropped, c.drops_window.live) == (3, 5)  # 24 h: the unreported answer is a drop
    assert (c.drops_hour.dropped, c.drops_hour.live) == (2, 3)
    assert c.drops_hour.pct == pytest.approx(200 / 3) and c.over_cap(c.drops_hour)
    assert (c.drops_total.dropped, c.drops_total.live) == (4, 6)
    assert c.attempts_last_hour == 5  # four finished with a dial result or in progress, not the DNC one
    assert c.occupancy_pct == pytest.approx(75.0)  # this hour only
    assert c.contacts == {"pending": 3, "retry_scheduled": 2, "done": 3, "skipped": 1, "dialing": 1}
    assert c.results == {Result.LIVE_ANSWER.value: 5, Result.OTHER.value: 1, Result.BUSY.value: 1,
                         Result.DNC.value: 1}
    assert c.in_progress == 1


async def test_a_dialer_is_seen_from_its_heartbeat_with_figures_only_while_it_beats(seeded):
    engine, cid = seeded
    snap = await live.read(engine, NOW)
    on = {d.dialer: d for d in snap.campaigns[0].dialers}
    assert on["fresh"].state is S.RUNNING and on["fresh"].reason == "dialing"
    assert on["fresh"].figures == figures(cid)
    # three beats missed: still running as stored, but said so, and its old figures are not shown
    assert on["silent"].state is S.RUNNING and on["silent"].figures is None
    assert on["silent"].reason.startswith("its originator silent for 12 s")
    assert on["dead"].state is S.STOPPED_BY_DIALER and on["dead"].figures is None
    assert on["dead"].reason.endswith("nothing is dialing it")
    assert on["gone"].state is S.STOPPED_BY_DIALER and on["gone"].reason.startswith("its originator stopped at")
    beats = {o.name: o for o in snap.originators}
    assert [beats[n].beating for n in ("fresh", "silent", "dead", "gone")] == [True, False, False, False]
    assert beats["fresh"].ami_connected and beats["fresh"].ami_reconnects == 2
    assert beats["gone"].stopped_at is not None and not beats["gone"].ami_connected


async def test_campaigns_shown_are_those_wanted_dialed_unless_asked(seeded):
    engine, _ = seeded
    assert [c.name for c in (await live.read(engine, NOW, all_campaigns=True)).campaigns] == ["old", "spring"]
    assert [c.name for c in (await live.read(engine, NOW, names=("old",))).campaigns] == ["old"]


async def test_a_database_not_migrated_or_unreachable_says_so(db_url, tmp_path):
    engine = make_engine(db_url)  # empty: no schema
    try:
        snap = await live.read(engine, NOW)
    finally:
        await engine.dispose()
    assert snap.database.reachable and not snap.database.migrated and snap.campaigns == ()
    engine = make_engine("postgresql://nobody:x@127.0.0.1:1/none")
    try:
        snap = await live.read(engine, NOW)
    finally:
        await engine.dispose()
    assert not snap.database.reachable and "refused" in snap.database.error
