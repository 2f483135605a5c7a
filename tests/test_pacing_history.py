"""A campaign's pacing history measured from its attempts, and `dialer pacing simulate`, on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, update

from agi.cli import main
from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignAgentTime, CampaignContact, Dialer
from agi.outcomes import Result, Routing
from agi.pacing_history import campaign_history
from db_seed import T0, seed_campaign

# (result, routing, talk seconds, attempts): 100 calls placed, plus attempts that must not count
MIX = [
    (Result.LIVE_ANSWER, Routing.AGENT_CONNECTED, 100, 4),
    (Result.LIVE_ANSWER, Routing.AGENT_CONNECTED, 140, 4),
    (Result.LIVE_ANSWER, Routing.DROPPED, 3, 2),
    (Result.MACHINE_ANSWER, None, 20, 5),
    (Result.FAX, None, 5, 1),
    (Result.BUSY, None, None, 10),
    (Result.REJECTED, None, None, 4),
    (Result.DISCONNECTED, None, None, 2),
    (Result.SERVICE_ERROR, None, None, 1),
    (Result.OTHER, None, None, 1),
    (Result.NO_ANSWER, None, None, 66),
]
RING = 18.0  # seconds from Originate to answer, every answered call
ACW = 15.0  # seconds of after-call work per connected call
AGENTS = 6  # logged in over two hours


async def seed_history(conn) -> int:
    camp, members = await seed_campaign(conn, 3, name="hist")
    await conn.execute(update(Campaign).where(Campaign.id == camp).values(
        queue_name="sales", lines=40, cps=4.0, pacing_ratio=1.5, ring_timeout=30, drop_timeout=3,
        drop_cap_pct=2.5, drop_window_hours=24))
    contact = (await conn.execute(select(CampaignContact.contact_id).where(CampaignContact.id == members[0]))).scalar()
    rows, i = [], 0
    for result, routing, talk, n in MIX:
        for _ in range(n):
            i += 1
            start = T0 + dt.timedelta(minutes=i)
            answered = result in (Result.LIVE_ANSWER, Result.MACHINE_ANSWER, Result.FAX)
            rows.append(dict(id=f"h{i}", campaign_id=camp, contact_id=contact, membership_id=members[0],
                             queued_at=start, originated_at=start, result=result.value,
                             routing=routing.value if routing else None, talk_seconds=talk,
                             answered_at=start + dt.timedelta(seconds=RING) if answered else None))
    old = T0 - dt.timedelta(days=60)  # before the measured period
    await conn.execute(insert(Attempt), rows)
    for extra in (dict(id="old", queued_at=old, originated_at=old, result=Result.LIVE_ANSWER.value,
                       routing=Routing.DROPPED.value),
                  dict(id="dnc", queued_at=T0, result=Result.DNC.value),  # never dialed
                  dict(id="open", queued_at=T0, originated_at=T0)):  # no result yet
        await conn.execute(insert(Attempt).values(campaign_id=camp, contact_id=contact, **extra))
    dialer = (await conn.execute(insert(Dialer).values(name="d1").returning(Dialer.id))).scalar_one()
    talk = sum(t * n for _r, routing, t, n in MIX if routing is Routing.AGENT_CONNECTED)
    busy = talk + 8 * ACW
    for h in range(2):
        await conn.execute(insert(CampaignAgentTime).values(
            campaign_id=camp, dialer_id=dialer, hour=T0 + dt.timedelta(hours=h),
            busy_agent_seconds=busy / 2, logged_agent_seconds=AGENTS * 3600.0))
    return camp


async def test_campaign_history_measures_what_was_seeded(db_engine):
    async with db_engine.begin() as conn:
        await seed_history(conn)
        h = await campaign_history(conn, "hist", since=T0 - dt.timedelta(days=1))
    assert (h.dials, h.connected, h.dropped) == (100, 8, 2)
    assert (h.person_rate, h.machine_rate, h.busy_rate, h.fail_rate, h.no_answer_rate) == pytest.approx(
        (0.10, 0.06, 0.10, 0.08, 0.66))
    assert h.ring_times == (RING,) * 16 and h.ring_range() == (RING, RING)
    assert h.talk_mean == pytest.approx(120.0)
    assert h.acw_mean == pytest.approx(ACW)
    assert (h.agents, h.hours_worked) == (pytest.approx(AGENTS), 2)
    assert (h.has_agents, h.lines, h.cps, h.ratio, h.ring_timeout, h.drop_timeout) == (True, 40, 4.0, 1.5, 30, 3)
    assert (h.drop_cap_pct, h.drop_window_hours) == (2.5, 24)


async def test_campaign_history_over_all_time_counts_older_attempts_and_an_unknown_campaign_is_named(db_engine):
    async with db_engine.begin() as conn:
        camp = await seed_history(conn)
        h = await campaign_history(conn, str(camp))
        assert (h.dials, h.dropped) == (101, 3)
        with pytest.raises(Exception, match="no campaign 'nope'"):
            await campaign_history(conn, "nope")


def _db(url: str, work):
    async def go():
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_pacing_simulate_takes_a_campaigns_mix_from_its_history(db_engine, db_url):
    _db(db_url, seed_history)
    days = str((dt.datetime.now(dt.timezone.utc) - T0).days + 2)
    result = CliRunner().invoke(main, ["--db", db_url, "pacing", "simulate", "--campaign", "hist", "--history-days",
                                       days, "--hours", "1", "--seeds", "1", "--ratios", "1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    inputs = {k: v["value"] for k, v in out["inputs"].items()}
    assert inputs["person_rate"] == pytest.approx(10.0) and inputs["busy_rate"] == pytest.approx(10.0)
    assert (inputs["agents"], inputs["talk"], inputs["acw"]) == pytest.approx((AGENTS, 120, ACW))
    assert (inputs["lines"], inputs["drop_cap"], inputs["ring_timeout"], inputs["ratio"]) == (40, 2.5, 30, 1.5)
    assert out["inputs"]["person_rate"]["source"].startswith("history")
    assert out["inputs"]["lines"]["source"] == "campaign"
    assert [(m["mode"], m["ratio"]) for m in out["modes"]] == [("progressive", 1.0), ("predictive", 1.5)]


def test_pacing_simulate_says_which_value_is_missing_for_a_campaign_without_calls(db_engine, db_url):
    _db(db_url, lambda conn: seed_campaign(conn, 1, name="empty"))
    simulate = ["--db", db_url, "pacing", "simulate", "--campaign", "empty"]
    result = CliRunner().invoke(main, simulate)
    assert result.exit_code == 1
    assert "campaign 'empty' has no agent queue" in result.output
    _db(db_url, lambda conn: conn.execute(update(Campaign).where(Campaign.name == "empty").values(queue_name="q")))
    result = CliRunner().invoke(main, simulate)
    assert result.exit_code == 1
    assert "--agents is needed: campaign 'empty' has no agent time" in result.output
    result = CliRunner().invoke(main, [*simulate, "--agents", "5"])
    assert "--person-rate is needed: campaign 'empty' has no calls placed" in result.output


def test_pacing_simulate_from_the_command_line_alone_prints_every_mode():
    args = ["pacing", "simulate", "--agents", "8", "--person-rate", "25", "--machine-rate", "8", "--busy-rate", "8",
            "--talk", "120", "--hours", "1", "--seeds", "1", "--ratios", "1,2"]
    out = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    modes = {(m["mode"], m["ratio"]): m for m in out["modes"]}
    assert set(modes) == {("progressive", 1.0), ("progressive", 2.0), ("predictive", 1.0)}
    assert modes[("predictive", 1.0)]["occupancy"] > modes[("progressive", 1.0)]["occupancy"]
    assert out["inputs"]["lines"] == {"value": 40, "source": "default: 5 per agent"}
    text = CliRunner().invoke(main, args, terminal_width=200).output
    assert "Expected over a 1 h shift" in text and "predictive" in text and "lines p95" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "5", "--talk", "60"], "--person-rate is needed: no --campaign given"),
        (["--agents", "5", "--talk", "60", "--person-rate", "60", "--busy-rate", "50"], "add up to 125%"),
        (["--agents", "5", "--talk", "60", "--person-rate", "120"], "not a percentage"),
        (["--agents", "5", "--talk", "60", "--person-rate", "10", "--drop-target", "4"], "above the cap"),
        (["--agents", "5", "--ratios", "1,x"], "give ratios separated by commas"),
    ],
)
def test_pacing_simulate_says_what_is_wrong_with_its_inputs(args, message):
    result = CliRunner().invoke(main, ["pacing", "simulate", *args], terminal_width=200)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
