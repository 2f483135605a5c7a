"""Every hang-up variant of the traces, through the simulator and the real flows, on both databases.

Each call ends with exactly one final result (counted once on the contact), the right
routing/disposition, a FastAGI session that ended cleanly (no failed session, no reply given
to the wrong command), and the ``h`` extension's hangup flow recording the cause and talk time.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select, text, update

from agi.db.models import Campaign, CampaignContact, DncEntry
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.sim.dialplan import PROJECT_DIALPLAN_TEXT, Dialplan
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from flow_rig import NUMBER, Rig

NORMAL_CLEARING = 16  # Q.850: the person put the phone down, or the agent ended the bridge (traces)
WE_HANG_UP = 0  # the AGI HANGUP command: the h extension reads HANGUPCAUSE=0 (traces)


async def campaign(engine, queue: str | None = "sales", **settings) -> tuple[int, int]:
    settings = {"drop_timeout": 2, "key_timeout": 2, "key_tries": 2, **settings}
    async with engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1, first_number=2025550131)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                           .values(queue_name=queue, **settings))
    return campaign_id, membership


async def check_clean_end(rig: Rig, engine, membership: int, attempt_id: str, caplog) -> None:
    """One result counted once, the contact settled, sessions clean, the h extension's AGI ran."""
    assert rig.server.stats["failed"] == 0 and rig.server.stats["cancelled"] == 0, rig.server.stats
    rec = rig.sim.record[attempt_id]
    assert any(s.startswith("hangup?") for s in rec.agi_scripts), rec.agi_scripts
    assert not [n for n in rec.notes if "FastAGI" in n or "fault" in n], rec.notes
    wrong = [r.getMessage() for r in caplog.records
             if r.name.startswith("agi.fastagi") and r.levelno >= logging.WARNING]
    assert not wrong, wrong  # e.g. "reply ... with no command waiting", protocol errors
    async with engine.connect() as conn:
        member = (await conn.execute(select(CampaignContact.__table__).where(
            CampaignContact.__table__.c.id == membership))).one()
    assert member.attempts == 1 and member.last_attempt_id == attempt_id
    assert member.state in (ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value)


def outcome(row) -> tuple:
    return row.result, row.routing, row.disposition


def person(**callee) -> dict:
    return {"base": "human", "callee": callee}


# A person who presses 1 (interested) 1.5 s into the message, then (case) hangs up.
INTERESTED = ["1@1.5/0"]

# name -> (scenario, QueueConfig fields of queue "sales" or None, expected (result, routing, disposition), h extension's HANGUPCAUSE)
CASES = {
    # blocking STREAM FILE: 200 result=-1 endpos=..., then HANGUP
    "during_the_message": (person(hangup_after_prompt=[0, 2.0]), None,
                           (Result.LIVE_ANSWER, None, None), NORMAL_CLEARING),
    # blocking WAIT FOR DIGIT after the 3 s message: 200 result=-1, then HANGUP; heard it: no_key
    "while_listening_for_a_key_after_the_message": (person(hangup_after_prompt=[0, 4.0]), None,
                                                    (Result.LIVE_ANSWER, None, Disposition.NO_KEY),
                                                    NORMAL_CLEARING),
    # gone before AMD decided: AMDSTATUS=HANGUP, the outbound AGI never runs, only h
    "during_amd": (person(hangup_after=1.0), None, (Result.OTHER, None, None), NORMAL_CLEARING),
    # in the agent queue: 200 result=-1, HANGUP, QUEUESTATUS unset, ABANDONED=TRUE
    "waiting_in_the_queue": (person(keys=INTERESTED, hangup_in_queue_after=1.0),
                             dict(agents=1, ring_seconds=(30.0, 30.0)),
                             (Result.LIVE_ANSWER, Routing.DROPPED, Disposition.INTERESTED), NORMAL_CLEARING),
    # bridged; the person hangs up first; the agent's leg goes to wrap-up and keys nothing
    "after_the_agent_bridge": (person(keys=INTERESTED, hangup_after_bridge=1.0),
                               dict(agents=1, talk_seconds=(30.0, 30.0), dispositions={}),
                               (Result.LIVE_ANSWER, Routing.AGENT_CONNECTED, Disposition.INTERESTED),
                               NORMAL_CLEARING),
    # bridged; the agent hangs up first: Queue returns -1 with the person still there; we hang up
    "agent_ends_the_bridge_then_we_hang_up": (person(keys=INTERESTED, hangup_after_bridge=30.0),
                                              dict(agents=1, talk_seconds=(1.0, 1.0)),
                                              (Result.LIVE_ANSWER, Routing.AGENT_CONNECTED,
                                               Disposition.INTERESTED), NORMAL_CLEARING),
    # the person presses 2 and we end the call: our HANGUP, cause 0 in h
    "we_hang_up_after_not_interested": (person(keys=["2@1.0/0"]), None,
                                        (Result.LIVE_ANSWER, None, Disposition.NOT_INTERESTED), WE_HANG_UP),
}


# the media commands sent, in order: nothing after the one the hang-up interrupted
MEDIA_SENT = {
    "during_the_message": ["ANSWER", "STREAM FILE"],
    "while_listening_for_a_key_after_the_message": ["ANSWER", "STREAM FILE", "WAIT FOR DIGIT"],
    "during_amd": [],
}


@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["default", "AGIEXITONHANGUP"])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_hang_up_variant_ends_cleanly_with_one_result(db_engine, case, exit_on_hangup, caplog):
    caplog.set_level(logging.WARNING)
    scenario, queue, expected, cause = CASES[case]
    queue = QueueConfig("sales", **queue) if queue is not None else None  # fresh: members carry state
    campaign_id, membership = await campaign(db_engine, "sales" if queue else None)
    variables = {"AGIEXITONHANGUP": "yes"} if exit_on_hangup else {}
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: scenario}), {"sales": queue} if queue else None) as rig:
        attempt_id = await rig.call(campaign_id, membership, **variables)
        row = await rig.settled(attempt_id)
        await check_clean_end(rig, db_engine, membership, attempt_id, caplog)
        rec = rig.sim.record[attempt_id]
    assert outcome(row) == tuple(x.value if x else None for x in expected)
    assert row.hangup_cause == cause  # written by the h extension's hangup flow
    assert row.talk_seconds is not None and row.talk_seconds >= 0
    assert row.ended_at is not None
    if case == "during_amd":
        assert [s.split("?")[0] for s in rec.agi_scripts] == ["hangup"]
        assert row.detail and "hang-up" in row.detail
    else:
        assert [s.split("?")[0] for s in rec.agi_scripts][:1] == ["outbound"]
        assert row.answered_at is not None
    if case == "waiting_in_the_queue":
        assert row.caller_abandoned
    if expected[1] is Routing.AGENT_CONNECTED:
        assert row.agent
    media = [w for c in rec.agi_commands for w in ("ANSWER", "STREAM FILE", "WAIT FOR DIGIT")
             if c.upper().startswith(w)]
    if case in MEDIA_SENT:  # after the hang-up the flow sends nothing a dead channel refuses
        assert media == MEDIA_SENT[case], rec.agi_commands


async def test_hang_up_while_the_flow_is_between_commands_sends_nothing_more(db_engine, caplog):
    """The person presses 9 (opt out) and hangs up while the flow is writing (the database is held
    by another transaction): HANGUP arrives alone; the confirmation is never sent; the opt-out holds."""
    caplog.set_level(logging.WARNING)
    campaign_id, membership = await campaign(db_engine, None)
    scenario = person(keys=["9@1.0/0"], hangup_after=4.0)  # AMD 1.92 s + 1.0 s: the key; 4.0: gone
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: scenario}), speed=4.0) as rig:
        attempt_id = await rig.call(campaign_id, membership)
        async with asyncio.timeout(20):  # the message is playing: hold the attempt's row
            while not any(c.upper().startswith("STREAM FILE") for c in
                          getattr(rig.sim.record.get(attempt_id), "agi_commands", [])):
                await asyncio.sleep(0.01)
        async with db_engine.connect() as blocker:
            await blocker.execute(text("UPDATE attempts SET detail = detail WHERE id = :id"), {"id": attempt_id})
            chan = next(c for c in rig.sim.channels.values() if c.uniqueid == attempt_id)
            async with asyncio.timeout(20):  # the flow is stuck on its write while the person hangs up
                await chan.hangup_requested.wait()
                await asyncio.sleep(0.2)
            await blocker.commit()
        row = await rig.settled(attempt_id)
        await check_clean_end(rig, db_engine, membership, attempt_id, caplog)
        rec = rig.sim.record[attempt_id]
    assert outcome(row) == (Result.LIVE_ANSWER.value, None, Disposition.OPT_OUT.value)
    assert row.hangup_cause == NORMAL_CLEARING and row.ivr_keys == "9"
    assert not any("optout" in c for c in rec.agi_commands), rec.agi_commands
    assert rec.keys == ["9"]
    async with db_engine.connect() as conn:
        assert NUMBER in (await conn.execute(select(DncEntry.__table__.c.number))).scalars().all()


@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["default", "AGIEXITONHANGUP"])
async def test_we_hang_up_without_waiting_for_the_final_write_and_the_h_flow_reads_it(db_engine, exit_on_hangup,
                                                                                      caplog):
    """The person presses 2; the attempt's row is held by another transaction, so the final write
    cannot land: our HANGUP still goes out at once (the call never waits on the database at its
    end). Asterisk runs the h extension once the AGI returns: with AGIEXITONHANGUP at once, while
    our write is still stuck; its hangup flow, in the same server, waits for that write and
    reads it instead of finalising the call itself ("the outbound flow did not report")."""
    caplog.set_level(logging.WARNING)
    campaign_id, membership = await campaign(db_engine, None)
    variables = {"AGIEXITONHANGUP": "yes"} if exit_on_hangup else {}
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: person(keys=["2@1.0/0"])}), speed=4.0) as rig:
        attempt_id = await rig.call(campaign_id, membership, **variables)
        async with asyncio.timeout(20):  # the message is playing: hold the attempt's row
            while not any(c.upper().startswith("STREAM FILE") for c in
                          getattr(rig.sim.record.get(attempt_id), "agi_commands", [])):
                await asyncio.sleep(0.01)
        async with db_engine.connect() as blocker:
            await blocker.execute(text("UPDATE attempts SET detail = detail WHERE id = :id"), {"id": attempt_id})
            rec = rig.sim.record[attempt_id]
            async with asyncio.timeout(20):  # HANGUP sent while the final write is stuck
                while "HANGUP" not in [c.upper() for c in rec.agi_commands]:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)
            h_started = [step for step in rec.dialplan if "/hangup?" in step]  # AGI() of the h extension
            # AGIEXITONHANGUP: the session closed with the hang-up and h runs now; default: the AGI
            # (our session) lasts until the write lands, and h runs after it
            assert bool(h_started) == exit_on_hangup, rec.dialplan
            await blocker.commit()
        row = await rig.settled(attempt_id)
        await check_clean_end(rig, db_engine, membership, attempt_id, caplog)
    assert outcome(row) == (Result.LIVE_ANSWER.value, None, Disposition.NOT_INTERESTED.value)
    assert row.ivr_keys == "2" and row.hangup_cause == WE_HANG_UP
    assert row.detail is None  # not "finalised at hang-up: the outbound flow did not report"


async def test_hangup_flow_finalises_a_call_the_outbound_flow_never_reported_from_amdstatus(db_engine, caplog):
    """The outbound AGI reached no flow (a script path not deployed: the server's polite default);
    the h extension's flow gets HANGUPCAUSE as its argument and must read AMDSTATUS from the channel."""
    caplog.set_level(logging.ERROR)
    campaign_id, membership = await campaign(db_engine, None)
    dialplan = Dialplan.parse(PROJECT_DIALPLAN_TEXT.replace("/outbound?", "/not-deployed?"))
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: "human"}), dialplan=dialplan) as rig:
        attempt_id = await rig.call(campaign_id, membership)
        row = await rig.settled(attempt_id)
        assert rig.server.stats["failed"] == 0
    assert row.result == Result.LIVE_ANSWER.value  # AMDSTATUS=HUMAN on the channel
    assert row.hangup_cause == WE_HANG_UP and row.talk_seconds is not None
    assert "did not report" in (row.detail or "")


# The default menu (3 tries: the 3 s message, then 5 s listening) and a person who hangs up in it,
# or lets the tries run out. docs/outcomes.md "Live-answer outcomes": no_key once the message played through
# at least once, wrong_key when only keys not on offer came (those keys recorded), nothing before that.
# moment -> (the person, expected disposition, ivr_keys, the h extension's HANGUPCAUSE)
MENU_MOMENTS = {
    "during_the_first_play": (person(hangup_after_prompt=[0, 2.0]), None, "", NORMAL_CLEARING),
    "after_the_first_play_before_any_key": (person(hangup_after_prompt=[0, 5.0]), Disposition.NO_KEY, "",
                                            NORMAL_CLEARING),
    "after_the_second_play": (person(hangup_after_prompt=[1, 5.0]), Disposition.NO_KEY, "", NORMAL_CLEARING),
    "after_a_wrong_key": (person(keys=["7@1.0/0"], hangup_after_prompt=[1, 1.0]), Disposition.WRONG_KEY, "7",
                          NORMAL_CLEARING),
    "after_two_wrong_keys": (person(keys=["7@1.0/0", "8@2.0/1"], hangup_after_prompt=[2, 1.0]),
                             Disposition.WRONG_KEY, "78", NORMAL_CLEARING),
    "wrong_key_then_the_tries_run_out": (person(keys=["7@1.0/0"]), Disposition.WRONG_KEY, "7", WE_HANG_UP),
}


@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["default", "AGIEXITONHANGUP"])
@pytest.mark.parametrize("moment", sorted(MENU_MOMENTS))
async def test_person_who_leaves_the_menu_gets_what_they_did(db_engine, moment, exit_on_hangup, caplog):
    caplog.set_level(logging.WARNING)
    scenario, disposition, keys, cause = MENU_MOMENTS[moment]
    campaign_id, membership = await campaign(db_engine, None, key_tries=3, key_timeout=5)
    variables = {"AGIEXITONHANGUP": "yes"} if exit_on_hangup else {}
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: scenario})) as rig:
        attempt_id = await rig.call(campaign_id, membership, **variables)
        row = await rig.settled(attempt_id)
        await check_clean_end(rig, db_engine, membership, attempt_id, caplog)
    assert outcome(row) == (Result.LIVE_ANSWER.value, None, disposition.value if disposition else None)
    assert (row.ivr_keys, row.hangup_cause) == (keys, cause)
    # talk time is ours: the answer to the hang-up, not Asterisk's CDR(billsec)
    assert row.talk_seconds == int((row.ended_at - row.answered_at).total_seconds())


async def test_talk_time_of_a_call_dropped_after_the_queue_timed_out_runs_from_answer_to_hang_up(db_engine, caplog):
    """The person presses 1, an agent's phone rings but nobody takes the call in the drop timeout
    (QUEUESTATUS=TIMEOUT), the drop message plays, we hang up. On a real Asterisk CDR(billsec) then
    counts only from the end of the unanswered queue ring (a new CDR), a few seconds of a longer
    call; the talk time is our own measure. Real time (speed 1): the simulator's and our clock agree."""
    caplog.set_level(logging.WARNING)
    drop_timeout, drop_message_s = 2, 3.0  # dialer/drop: a prompt of the simulator's default length
    campaign_id, membership = await campaign(db_engine, "sales", drop_timeout=drop_timeout)
    queue = QueueConfig("sales", agents=1, ring_seconds=(30.0, 30.0))
    scenario = {**person(keys=["1@0.5/0"]), "ring_time": 0.5}
    async with Rig(db_engine, ScenarioPlan.table({NUMBER: scenario}), {"sales": queue}, speed=1.0) as rig:
        attempt_id = await rig.call(campaign_id, membership)
        row = await rig.settled(attempt_id, timeout=30)
        await check_clean_end(rig, db_engine, membership, attempt_id, caplog)
        rec = rig.sim.record[attempt_id]
    assert (row.routing, row.queue_status, rec.queue_status) == (Routing.DROPPED.value, "TIMEOUT", "TIMEOUT")
    assert row.talk_seconds == int((row.ended_at - row.answered_at).total_seconds())
    assert row.talk_seconds >= drop_timeout + drop_message_s  # billsec would say about the drop message alone
