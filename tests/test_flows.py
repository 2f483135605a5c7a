"""The call flows end to end: Originate over AMI -> simulated Asterisk -> our FastAGI server -> database.

Each scenario of the simulator's table ends with exactly one final result and the right
routing/disposition for its attempt, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from agi.db.models import Attempt, CampaignContact, DncEntry
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from flow_rig import Rig

SPEED = 40.0

# number suffix -> (scenario, agents in queue "sales", expected result, routing, disposition)
CASES = {
    "human_presses_1_agent_answers": ("human_keypress", 1, Result.LIVE_ANSWER, Routing.AGENT_CONNECTED, Disposition.INTERESTED),
    "human_presses_1_no_agent_logged_in": ("human_keypress", 0, Result.LIVE_ANSWER, Routing.DROPPED, Disposition.INTERESTED),
    "human_hangs_up_waiting_for_agent": ("human_hangs_up_in_queue", -1, Result.LIVE_ANSWER, Routing.DROPPED, Disposition.INTERESTED),
    "human_no_key": ("human", 1, Result.LIVE_ANSWER, None, Disposition.NO_KEY),
    "human_invalid_then_opt_out": ("human_wrong_key", 1, Result.LIVE_ANSWER, None, Disposition.OPT_OUT),
    "human_hangs_up_during_message": ("human_hangs_up_during_message", 1, Result.LIVE_ANSWER, None, None),
    "no_media_notsure_is_human": ("human_no_media", 1, Result.LIVE_ANSWER, None, Disposition.NO_KEY),
    "machine": ("machine", 1, Result.MACHINE_ANSWER, None, None),
    "fax": ("fax", 1, Result.FAX, None, None),
}


async def set_queue(engine, campaign_id: int, queue: str | None) -> None:
    from sqlalchemy import update

    from agi.db.models import Campaign
    async with engine.begin() as conn:
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                           .values(queue_name=queue, drop_timeout=2, key_timeout=2, key_tries=2))


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_scenario_ends_with_one_result_and_the_right_outcome(db_engine, case):
    scenario, agents, result, routing, disposition = CASES[case]
    number = "+12025550101"
    queue = QueueConfig("sales", agents=max(agents, 0), joinempty=agents != 0,
                        talk_seconds=(2.0, 3.0), acw_seconds=(1.0, 1.0))
    if agents < 0:  # nobody answers in time: the person gives up first
        queue = QueueConfig("sales", agents=1, ring_seconds=(30.0, 30.0))
    async with db_engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1, first_number=2025550101)
    await set_queue(db_engine, campaign_id, "sales")
    async with Rig(db_engine, ScenarioPlan.table({number: scenario}), {"sales": queue}, speed=SPEED) as rig:
        attempt_id = await rig.call(campaign_id, membership, number)
        row = await rig.settled(attempt_id)
    assert (row.result, row.routing, row.disposition) == (
        result.value, routing.value if routing else None, disposition.value if disposition else None)
    assert row.answered_at is not None and row.ended_at is not None
    if case == "human_hangs_up_waiting_for_agent":
        assert row.caller_abandoned
    if routing is Routing.AGENT_CONNECTED:
        assert row.agent
    async with db_engine.connect() as conn:
        dnc = (await conn.execute(select(DncEntry.__table__.c.number))).scalars().all()
        state = (await conn.execute(select(CampaignContact.__table__.c.state).where(
            CampaignContact.__table__.c.id == membership))).scalar_one()
    assert (number in dnc) == (disposition is Disposition.OPT_OUT)
    assert state in (ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value)


@pytest.mark.parametrize("agent_key,disposition", [("2", Disposition.NOT_INTERESTED), ("9", Disposition.OPT_OUT),
                                                   ("3", Disposition.CALL_BACK)])
async def test_agent_keys_the_disposition_in_wrap_up_after_the_person_hangs_up(db_engine, agent_key, disposition):
    number = "+12025550102"
    person = {"base": "human_keypress", "callee": {"keys": ["1@1.0/0"], "hangup_after_bridge": 1.0}}
    queue = QueueConfig("sales", agents=1, talk_seconds=(30.0, 30.0), dispositions={agent_key: 1.0},
                        wrapup_key_after=(0.5, 0.5), callback_hours=(2, 2))
    async with db_engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1, first_number=2025550102)
    await set_queue(db_engine, campaign_id, "sales")
    async with Rig(db_engine, ScenarioPlan.table({number: person}), {"sales": queue}, speed=SPEED) as rig:
        attempt_id = await rig.call(campaign_id, membership, number)
        await rig.settled(attempt_id)
        async with asyncio.timeout(20):  # the wrap-up runs on the agent's leg after the person left
            while True:
                async with db_engine.connect() as conn:
                    row = (await conn.execute(select(Attempt.__table__).where(
                        Attempt.__table__.c.id == attempt_id))).one()
                if row.disposition != Disposition.INTERESTED.value:
                    break
                await asyncio.sleep(0.05)
    assert row.result == Result.LIVE_ANSWER.value
    assert row.routing == Routing.AGENT_CONNECTED.value
    assert row.disposition == disposition.value  # the agent's word overrides the key press
    async with db_engine.connect() as conn:
        member = (await conn.execute(select(CampaignContact.__table__).where(
            CampaignContact.__table__.c.id == membership))).one()
    if disposition is Disposition.CALL_BACK:
        assert row.callback_at is not None
        assert member.state == ContactState.RETRY_SCHEDULED.value
        assert member.next_attempt_at == row.callback_at
    else:
        assert member.state == ContactState.DONE.value


def _cli(db_url: str, *args: str):
    from click.testing import CliRunner

    from agi.cli import main
    result = CliRunner().invoke(main, ["--db", db_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_queue_that_cannot_work_is_a_drop_classed_as_broken_routing_and_logged_once(
        db_engine, db_url, caplog, tmp_path):
    """Two people press 1 for an agent; the campaign's queue does not exist in Asterisk
    (QUEUESTATUS=UNKNOWN). Each call is dropped (a drop in the drop rate) and shows in the call
    log as "call forwarding scheme did not work"; the log names the queue once, not per call."""
    import csv
    import json
    import logging

    from agi import reports

    caplog.set_level(logging.INFO)
    numbers = ["+12025550141", "+12025550142"]
    async with db_engine.begin() as conn:
        campaign_id, members = await seed_campaign(conn, 2, name="broken", first_number=2025550141)
    await set_queue(db_engine, campaign_id, "no-such-queue")
    queues = {"sales": QueueConfig("sales", agents=1)}  # Asterisk's queues: not the campaign's
    async with Rig(db_engine, ScenarioPlan.table({n: "human_keypress" for n in numbers}), queues, speed=SPEED) as rig:
        attempts = [await rig.call(campaign_id, m, n) for m, n in zip(members, numbers)]
        rows = [await rig.settled(a) for a in attempts]
    for row in rows:
        assert (row.result, row.routing, row.disposition, row.queue_status) == (
            Result.LIVE_ANSWER.value, Routing.DROPPED.value, Disposition.INTERESTED.value, "UNKNOWN")
    said = [r.getMessage() for r in caplog.records if r.name == "agi.flows" and r.levelno >= logging.ERROR]
    assert len(said) == 1 and "no-such-queue" in said[0], said
    async with db_engine.connect() as conn:
        log = await reports.call_log(conn, campaign=campaign_id)
        summary = await reports.summary(conn, campaign_id)
    assert {r.attempt_id: r.call_class for r in log} == {a: "routing_broken" for a in attempts}
    assert summary.cells[Routing.DROPPED.value] == 2 and summary.dropped_in_window == 2
    out = tmp_path / "calls.csv"
    await asyncio.to_thread(_cli, db_url, "report", "calls", "--campaign", "broken", "--csv", str(out))
    with out.open() as fh:
        exported = list(csv.DictReader(fh))
    assert {(r["class"], r["class_label"]) for r in exported} == {
        ("routing_broken", "Call Forwarding Scheme Did Not Work")}
    shown = json.loads(await asyncio.to_thread(_cli, db_url, "report", "calls", "--campaign", "broken", "--json"))
    assert {r["class"] for r in shown} == {"routing_broken"}
    table = await asyncio.to_thread(_cli, db_url, "report", "calls", "--campaign", "broken")
    assert "Forwarding" in table  # the label, however the table wraps it


async def test_agent_call_back_without_hours_uses_the_campaign_of_the_attempt(db_engine):
    """The agent's leg inherits only __ variables (no CAMPAIGN_ID, as on a real Asterisk): the
    wrap-up finds the campaign from the attempt, and a call-back keyed without hours takes that
    campaign's call-back delay."""
    number = "+12025550103"
    person = {"base": "human_keypress", "callee": {"keys": ["1@1.0/0"], "hangup_after_bridge": 1.0}}
    queue = QueueConfig("sales", agents=1, talk_seconds=(30.0, 30.0), dispositions={"3": 1.0},
                        wrapup_key_after=(0.5, 0.5), callback_hours=None)  # the agent keys 3, no hours
    async with db_engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1, first_number=2025550103)
    await set_queue(db_engine, campaign_id, "sales")
    from sqlalchemy import update

    from agi.db.models import Campaign
    async with db_engine.begin() as conn:
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                           .values(callback_delay_minutes=90))
    async with Rig(db_engine, ScenarioPlan.table({number: person}), {"sales": queue}, speed=SPEED) as rig:
        attempt_id = await rig.call(campaign_id, membership, number)
        await rig.settled(attempt_id)
        async with asyncio.timeout(20):  # the wrap-up runs on the agent's leg after the person left
            while True:
                async with db_engine.connect() as conn:
                    row = (await conn.execute(select(Attempt.__table__).where(
                        Attempt.__table__.c.id == attempt_id))).one()
                if row.disposition != Disposition.INTERESTED.value:
                    break
                await asyncio.sleep(0.05)
        wrapups = rig.sim.queues.wrapups
    assert [w.script for w in wrapups] == ["wrapup"]  # dialer.conf: AGI(agi://${DIALER_AGI}/wrapup,${ATTEMPT_ID})
    assert (row.routing, row.disposition) == (Routing.AGENT_CONNECTED.value, Disposition.CALL_BACK.value)
    delay = (row.callback_at - row.ended_at).total_seconds() / 60
    assert 85 <= delay <= 95  # the campaign's 90 minutes (not a default hour)
