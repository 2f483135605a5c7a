"""The flows' per-call writes (FlowContext: the answered mark, the choice, the routing, the final
write) in every order they can arrive: each sequence leaves the expected attempt, contact and DNC
rows, and SQLite and PostgreSQL leave the same rows (one definition of each write, run by the
AttemptWriter of each database: statement by statement, or pipelined and grouped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import uuid

import pytest
from sqlalchemy import select, text, update

from agi.db import attempt_writes as writes
from agi.db import attempts as db
from agi.db.claim import claim_due
from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignContact, DncEntry
from agi.db.writer import AttemptWriter, PgAttemptWriter
from agi.flows.context import FlowContext
from agi.outcomes import ContactState, Disposition, Result, Routing
from conftest import _create_database
from db_seed import T0, seed_campaign

MIN = dt.timedelta(minutes=1)
ENDED = T0 + 2 * MIN
CALLBACK = T0 + dt.timedelta(hours=3)
_a, _cc = Attempt.__table__, CampaignContact.__table__

# What happens to one attempt, in order: ("answer",), ("finish", result, kwargs, set here?),
# ("choose", key, disposition, kwargs, chosen here?), ("routing", Routing[, kwargs]), ("cancel",) an
# admin cancelling the contact, ("policy", rules, max_attempts) the campaign's retry policy edited,
# ("elsewhere", step) a step written by another process; then the attempt's (result, disposition,
# keys) and the membership's (state, attempts, next_attempt_at).
SCENARIOS = {
    "person_presses_2_then_the_hangup_flow_reports": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(keys="2", disposition=Disposition.NOT_INTERESTED), True),
         ("finish", Result.OTHER, dict(hangup_cause=16, talk_seconds=7), False)],
        (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, "2"), (ContactState.DONE, 1, None)),
    "hangup_flow_finalises_first_then_the_choice_reschedules": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16), True),
         ("finish", Result.LIVE_ANSWER, dict(keys="3", disposition=Disposition.CALL_BACK, callback_at=CALLBACK), False)],
        (Result.LIVE_ANSWER, Disposition.CALL_BACK, "3"), (ContactState.RETRY_SCHEDULED, 1, CALLBACK)),
    "first_choice_wins": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(keys="2", disposition=Disposition.NOT_INTERESTED), True),
         ("finish", Result.LIVE_ANSWER, dict(keys="9", disposition=Disposition.OPT_OUT), False)],
        (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, "9"), (ContactState.DONE, 1, None)),
    "opt_out_goes_on_the_dnc_list": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(keys="9", disposition=Disposition.OPT_OUT), True)],
        (Result.LIVE_ANSWER, Disposition.OPT_OUT, "9"), (ContactState.DONE, 1, None)),
    "busy_is_retried_in_5_min": (
        [("finish", Result.BUSY, dict(hangup_cause=17), True)],
        (Result.BUSY, None, ""), (ContactState.RETRY_SCHEDULED, 1, ENDED + 5 * MIN)),
    "dropped_in_the_queue_is_retried_in_30_min": (
        [("answer",), ("routing", Routing.DROPPED),
         ("finish", Result.LIVE_ANSWER, dict(keys="1"), True)],
        (Result.LIVE_ANSWER, None, "1"), (ContactState.RETRY_SCHEDULED, 1, ENDED + 30 * MIN)),
    "service_error_is_not_counted": (
        [("finish", Result.SERVICE_ERROR, dict(detail="trunk down"), True)],
        (Result.SERVICE_ERROR, None, ""), (ContactState.RETRY_SCHEDULED, 0, ENDED + MIN)),
    "an_admin_cancellation_stands": (
        [("answer",), ("cancel",), ("finish", Result.BUSY, {}, True)],
        (Result.BUSY, None, ""), (ContactState.CANCELLED, 1, None)),
    "opt_out_during_the_call_then_the_result": (
        [("answer",), ("choose", "9", Disposition.OPT_OUT, {}, True),
         ("finish", Result.LIVE_ANSWER, {}, True)],
        (Result.LIVE_ANSWER, Disposition.OPT_OUT, "9"), (ContactState.DONE, 1, None)),
    "interested_bridged_to_an_agent": (
        [("answer",), ("choose", "1", Disposition.INTERESTED, dict(waiting_agent=True), True),
         ("routing", Routing.AGENT_CONNECTED), ("finish", Result.LIVE_ANSWER, {}, True)],
        (Result.LIVE_ANSWER, Disposition.INTERESTED, "1"), (ContactState.DONE, 1, None)),
    "interested_then_the_hangup_flow_then_dropped_late": (
        [("answer",), ("choose", "1", Disposition.INTERESTED, dict(waiting_agent=True), True),
         ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16), True), ("routing", Routing.DROPPED)],
        (Result.LIVE_ANSWER, Disposition.INTERESTED, "1"), (ContactState.RETRY_SCHEDULED, 1, ENDED + 30 * MIN)),
    "a_call_back_chosen_after_the_result_reschedules": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16), True),
         ("choose", "3", Disposition.CALL_BACK, dict(callback_at=CALLBACK), True),
         ("choose", "2", Disposition.NOT_INTERESTED, {}, False)],
        (Result.LIVE_ANSWER, Disposition.CALL_BACK, "2"), (ContactState.RETRY_SCHEDULED, 1, CALLBACK)),
    "dropped_because_the_queue_does_not_exist_keeps_its_queuestatus": (
        [("answer",), ("choose", "1", Disposition.INTERESTED, dict(waiting_agent=True), True),
         ("routing", Routing.DROPPED, dict(queue_status="UNKNOWN")),
         ("finish", Result.LIVE_ANSWER, dict(answered_at=T0 + MIN), True)],
        (Result.LIVE_ANSWER, Disposition.INTERESTED, "1"), (ContactState.RETRY_SCHEDULED, 1, ENDED + 30 * MIN)),
    "talk_time_from_the_answer_to_the_first_final_write": (
        [("answer",), ("finish", Result.LIVE_ANSWER, dict(keys="", disposition=Disposition.NO_KEY,
                                                          answered_at=T0 + MIN), True),
         ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16, answered_at=T0), False)],
        (Result.LIVE_ANSWER, Disposition.NO_KEY, ""), (ContactState.DONE, 1, None)),
    "machine_answer_is_final": (
        [("answer",), ("finish", Result.MACHINE_ANSWER, {}, True), ("finish", Result.FAX, {}, False)],
        (Result.MACHINE_ANSWER, None, ""), (ContactState.RETRY_SCHEDULED, 1, ENDED + 240 * MIN)),
    "an_opt_out_after_another_choice_is_neither_written_nor_listed": (
        [("answer",), ("choose", "2", Disposition.NOT_INTERESTED, {}, True),
         ("choose", "9", Disposition.OPT_OUT, {}, False), ("finish", Result.LIVE_ANSWER, {}, True)],
        (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, "9"), (ContactState.DONE, 1, None)),
    # the writes that need what another writer did mid-call: read in the write's transaction
    "a_retry_policy_edited_mid_call_is_the_one_applied": (
        [("answer",), ("policy", {"busy": 7}, 5), ("finish", Result.BUSY, dict(hangup_cause=17), True)],
        (Result.BUSY, None, ""), (ContactState.RETRY_SCHEDULED, 1, ENDED + 7 * MIN)),
    "a_choice_written_elsewhere_mid_call_wins_and_moves_the_contact": (
        [("answer",), ("elsewhere", ("choose", "3", Disposition.CALL_BACK, dict(callback_at=CALLBACK), True)),
         ("finish", Result.LIVE_ANSWER, dict(keys="2", disposition=Disposition.NOT_INTERESTED), True)],
        (Result.LIVE_ANSWER, Disposition.CALL_BACK, "2"), (ContactState.RETRY_SCHEDULED, 1, CALLBACK)),
    "a_result_written_elsewhere_first_then_the_choice_here_moves_the_contact_again": (
        [("answer",), ("elsewhere", ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16), True)),
         ("finish", Result.LIVE_ANSWER, dict(keys="2", disposition=Disposition.NOT_INTERESTED), False)],
        (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, "2"), (ContactState.DONE, 1, None)),
    "a_call_back_chosen_after_another_process_finalised_the_call_reschedules": (
        [("answer",), ("elsewhere", ("finish", Result.LIVE_ANSWER, dict(hangup_cause=16), True)),
         ("choose", "3", Disposition.CALL_BACK, dict(callback_at=CALLBACK), True)],
        (Result.LIVE_ANSWER, Disposition.CALL_BACK, "3"), (ContactState.RETRY_SCHEDULED, 1, CALLBACK)),
}


async def _dialed(engine, name: str, first_number: int) -> tuple[str, int]:
    async with engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1, name=name, first_number=first_number)
        [c] = await claim_due(conn, camp, "d1", 1, T0)
        aid = await db.start_attempt(conn, c.membership_id, campaign_id=camp, contact_id=c.contact_id,
                                     dialer="d1", number=c.number, attempt_no=1, now=T0)
    return aid, c.membership_id


async def _answer(ctx: FlowContext, attempt_id: str, amd_status: str = "HUMAN"):
    return await ctx.writer.run(writes.mark_answered, attempt_id, T0 + MIN, amd_status, "HUMAN-1-1")


async def _play(ctx: FlowContext, other: FlowContext, attempt_id: str, steps) -> None:
    for step in steps:
        if step[0] == "elsewhere":
            await _play(other, other, attempt_id, [step[1]])
        elif step[0] == "answer":
            info = await _answer(ctx, attempt_id)
            assert info is not None and info.id == attempt_id and info.answered_at == T0 + MIN
        elif step[0] == "cancel":
            async with ctx.engine.begin() as conn:
                await conn.execute(update(_cc).where(_cc.c.last_attempt_id == attempt_id).values(
                    state=ContactState.CANCELLED.value, updated_at=T0 + MIN))
        elif step[0] == "policy":
            async with ctx.engine.begin() as conn:
                camp = (await conn.execute(select(_a.c.campaign_id).where(_a.c.id == attempt_id))).scalar_one()
                await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == camp)
                                   .values(retry_rules=step[1], max_attempts=step[2]))
        elif step[0] == "routing":
            await ctx.set_routing(attempt_id, step[1], now=ENDED, **(step[2] if len(step) > 2 else {}))
        elif step[0] == "choose":
            _, key, disposition, kwargs, chosen_here = step
            assert await ctx.choose(attempt_id, key, disposition, now=ENDED, **kwargs) is chosen_here
        else:
            _, result, kwargs, set_here = step
            assert await ctx.finish(attempt_id, result, ended_at=ENDED, now=ENDED, **kwargs) is set_here


async def _state(engine, attempt_id: str, membership_id: int):
    """The attempt's row, its membership's and its number's DNC entry, without the ids a database makes."""
    dnc = DncEntry.__table__
    async with engine.connect() as conn:
        a = (await conn.execute(select(_a).where(_a.c.id == attempt_id))).one()._asdict()
        m = (await conn.execute(select(_cc).where(_cc.c.id == membership_id))).one()._asdict()
        listed = (await conn.execute(select(dnc.c.source, dnc.c.added_at).where(dnc.c.number == a["number"]))).first()
    for row, skip in ((a, ("id", "campaign_id", "contact_id", "membership_id")),
                      (m, ("id", "campaign_id", "contact_id", "last_attempt_id"))):
        for key in skip:
            row.pop(key)
    return a, m, None if listed is None else tuple(listed)


async def play_scenario(engine, name: str, number: int):
    ctx, other = FlowContext(engine), FlowContext(engine)  # other: another process writing the same attempt
    aid, mid = await _dialed(engine, name[:40], number)
    try:
        await _play(ctx, other, aid, SCENARIOS[name][0])
    finally:
        await ctx.aclose()
        await other.aclose()
    return await _state(engine, aid, mid)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_each_write_sequence_leaves_the_expected_attempt_and_contact(db_engine, name):
    _, (result, disposition, keys), (state, attempts, next_at) = SCENARIOS[name]
    a, m, dnc = await play_scenario(db_engine, name, 2025550000)
    assert (a["result"], a["disposition"], a["ivr_keys"]) == (result, disposition, keys)
    assert (m["state"], m["attempts"], m["next_attempt_at"]) == (state, attempts, next_at)
    assert a["ended_at"] == ENDED
    assert (dnc is not None) == (disposition is Disposition.OPT_OUT)
    if name == "dropped_because_the_queue_does_not_exist_keeps_its_queuestatus":
        assert (a["routing"], a["queue_status"], a["talk_seconds"]) == (Routing.DROPPED, "UNKNOWN", 60)
    if name == "talk_time_from_the_answer_to_the_first_final_write":
        assert (a["talk_seconds"], a["hangup_cause"]) == (60, 16)
    if name == "a_result_written_elsewhere_first_then_the_choice_here_moves_the_contact_again":
        assert a["hangup_cause"] == 16


@pytest.fixture
async def both_engines(request, tmp_path):
    """A migrated SQLite database and a migrated PostgreSQL one, side by side."""
    path = tmp_path / "side.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    server = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    _create_database(server, name, template=request.getfixturevalue("pg_template"))
    engines = [make_engine(f"sqlite+aiosqlite:///{path}"), make_engine(server.database_url(name))]
    yield engines
    for engine in engines:
        await engine.dispose()


@pytest.mark.parametrize("name", SCENARIOS)
async def test_sqlite_and_postgresql_leave_the_same_rows(both_engines, name):
    """Every column of the attempt, the membership and the DNC entry, after the same sequence."""
    assert [type(AttemptWriter.for_engine(e)) for e in both_engines] == [AttemptWriter, PgAttemptWriter]
    lite, pg = [await play_scenario(engine, name, 2025550000) for engine in both_engines]
    assert lite == pg


async def test_unknown_attempt_is_neither_found_nor_written(db_engine):
    ctx = FlowContext(db_engine)
    try:
        assert await _answer(ctx, "no-such-attempt") is None
        assert await ctx.finish("no-such-attempt", Result.LIVE_ANSWER, ended_at=ENDED,
                                keys="2", disposition=Disposition.NOT_INTERESTED) is False
        assert await ctx.choose("no-such-attempt", "9", Disposition.OPT_OUT) is False
        assert await ctx.set_routing("no-such-attempt", Routing.DROPPED) is False
    finally:
        await ctx.aclose()
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(_a.c.id))).first() is None
        assert (await conn.execute(select(DncEntry.__table__.c.number))).first() is None


async def test_concurrent_final_writes_set_one_result_and_count_the_attempt_once(db_engine):
    ctx = FlowContext(db_engine)
    aid, mid = await _dialed(db_engine, "race", 2025559000)
    try:
        await _answer(ctx, aid)
        set_here = await asyncio.gather(*(
            ctx.finish(aid, result, ended_at=ENDED, hangup_cause=16)
            for result in [Result.LIVE_ANSWER, Result.OTHER, Result.MACHINE_ANSWER] * 4))
    finally:
        await ctx.aclose()
    assert sum(set_here) == 1
    a, m, _ = await _state(db_engine, aid, mid)
    assert m["attempts"] == 1 and m["last_result"] == a["result"]


async def test_calls_finishing_together_each_get_their_result_even_if_one_write_fails(db_engine):
    """On PostgreSQL their final writes share a transaction; a bad one must not lose the others."""
    ctx = FlowContext(db_engine)
    dialed = [await _dialed(db_engine, f"t{i}", 2025551000 + 10 * i) for i in range(12)]
    bad = 2 ** 40  # not a Q.850 cause, and too big for the column on PostgreSQL
    try:
        outcomes = await asyncio.gather(*(
            ctx.finish(aid, Result.BUSY, ended_at=ENDED, hangup_cause=bad if i == 5 else 17)
            for i, (aid, _) in enumerate(dialed)), return_exceptions=True)
    finally:
        await ctx.aclose()
    for i, ((aid, mid), outcome) in enumerate(zip(dialed, outcomes)):
        if i == 5 and db_engine.dialect.name == "postgresql":
            assert isinstance(outcome, Exception)
            a, m, _ = await _state(db_engine, aid, mid)
            assert a["result"] is None and m["attempts"] == 0  # nothing of it written
            continue
        assert outcome is True
        a, m, _ = await _state(db_engine, aid, mid)
        assert (a["result"], a["hangup_cause"]) == (Result.BUSY, bad if i == 5 else 17)
        assert (m["state"], m["attempts"], m["next_attempt_at"]) == (ContactState.RETRY_SCHEDULED, 1, ENDED + 5 * MIN)


async def test_calls_answered_together_are_each_found_and_marked_even_if_one_write_fails(db_engine):
    """On PostgreSQL their answered marks share a round trip; a bad one must not lose the others."""
    ctx = FlowContext(db_engine)
    dialed = [await _dialed(db_engine, f"ans{i}", 2025552000 + 10 * i) for i in range(10)]
    bad = "X" * 200  # longer than the amd_status column: PostgreSQL refuses it
    try:
        found = await asyncio.gather(*(_answer(ctx, aid, bad if i == 3 else "HUMAN")
                                       for i, (aid, _) in enumerate(dialed)), return_exceptions=True)
    finally:
        await ctx.aclose()
    for i, ((aid, mid), info) in enumerate(zip(dialed, found)):
        a, m, _ = await _state(db_engine, aid, mid)
        if i == 3 and db_engine.dialect.name == "postgresql":
            assert isinstance(info, Exception)
            assert a["answered_at"] is None and m["state"] == ContactState.DIALING
            continue
        assert info.id == aid and info.answered_at == T0 + MIN
        assert m["state"] == ContactState.IN_CALL


def _pg_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs each write on its own: nothing is grouped")


def _groups(ctx: FlowContext) -> list[int]:
    """The sizes of the writer's transactions, as they run (a record, nothing replaced)."""
    sizes: list[int] = []
    transaction = ctx.writer.transaction

    async def recorded(group):
        sizes.append(len(group))
        return await transaction(group)

    ctx.writer.transaction = recorded
    return sizes


async def test_a_lone_write_goes_out_at_once_and_the_ones_behind_it_go_together(db_engine):
    """Group commit: a call never waits for company (the first mark leaves alone, at once);
    the marks that arrive while it is in flight leave together, in one transaction."""
    _pg_only(db_engine)
    ctx = FlowContext(db_engine)
    dialed = [await _dialed(db_engine, f"g{i}", 2025553000 + 10 * i) for i in range(10)]
    groups = _groups(ctx)
    try:
        assert (await _answer(ctx, dialed[0][0])).id == dialed[0][0]
        assert groups == [1]
        found = await asyncio.gather(*(_answer(ctx, aid) for aid, _ in dialed[1:]))
    finally:
        await ctx.aclose()
    assert [f.id for f in found] == [aid for aid, _ in dialed[1:]]
    assert groups == [1, 1, 8]  # the first of the nine at once, the eight behind it together


async def test_two_writes_for_one_attempt_never_share_a_transaction(db_engine):
    """The second must read what the first wrote (its retry rule counts the attempt once)."""
    _pg_only(db_engine)
    ctx = FlowContext(db_engine)
    (aid, mid), (other, _) = [await _dialed(db_engine, f"s{i}", 2025553500 + 10 * i) for i in range(2)]
    groups = _groups(ctx)
    try:
        await asyncio.gather(ctx.finish(other, Result.BUSY, ended_at=ENDED),
                             ctx.finish(aid, Result.BUSY, ended_at=ENDED),
                             ctx.finish(aid, Result.NO_ANSWER, ended_at=ENDED, hangup_cause=19))
    finally:
        await ctx.aclose()
    assert groups == [1, 1, 1]  # the first at once; then one write of ``aid`` per transaction
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["result"], a["hangup_cause"], m["attempts"]) == (Result.BUSY, 19, 1)


async def test_choices_arriving_together_one_wins_and_only_a_winning_opt_out_is_listed(db_engine):
    ctx, other = FlowContext(db_engine), FlowContext(db_engine)
    dialed = [await _dialed(db_engine, f"both{i}", 2025554200 + 10 * i) for i in range(6)]
    try:
        for aid, _ in dialed:
            await _answer(ctx, aid)
        chosen = await asyncio.gather(*(
            call for aid, _ in dialed for call in (ctx.choose(aid, "9", Disposition.OPT_OUT, now=ENDED),
                                                  other.choose(aid, "2", Disposition.NOT_INTERESTED, now=ENDED))))
    finally:
        await ctx.aclose()
        await other.aclose()
    for n, (aid, mid) in enumerate(dialed):
        opt_out, not_interested = chosen[2 * n], chosen[2 * n + 1]
        assert opt_out != not_interested  # exactly one of them
        a, _, dnc = await _state(db_engine, aid, mid)
        assert a["disposition"] == (Disposition.OPT_OUT if opt_out else Disposition.NOT_INTERESTED)
        assert (dnc is not None) == opt_out


async def test_a_person_choosing_to_talk_to_an_agent_waits_for_one(db_engine):
    """The choice and the contact waiting for an agent, one transaction; asked twice, chosen once."""
    ctx = FlowContext(db_engine)
    aid, mid = await _dialed(db_engine, "w", 2025554000)
    try:
        await _answer(ctx, aid)
        assert await ctx.choose(aid, "1", Disposition.INTERESTED, now=ENDED, waiting_agent=True)
        assert not await ctx.choose(aid, "1", Disposition.INTERESTED, now=ENDED, waiting_agent=True)
    finally:
        await ctx.aclose()
    a, m, dnc = await _state(db_engine, aid, mid)
    assert (a["result"], a["disposition"], a["ivr_keys"]) == (None, Disposition.INTERESTED, "1")
    assert m["state"] == ContactState.WAITING_AGENT and m["updated_at"] == ENDED and dnc is None


async def test_the_agents_word_in_wrap_up_overrides_the_key_press_and_moves_the_contact_again(db_engine):
    ctx = FlowContext(db_engine, clock=lambda: ENDED)
    aid, mid = await _dialed(db_engine, "agent", 2025554500)
    try:
        await _answer(ctx, aid)
        assert await ctx.choose(aid, "1", Disposition.INTERESTED, waiting_agent=True)
        await ctx.set_routing(aid, Routing.AGENT_CONNECTED, "agent/1001")
        assert await ctx.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED)
        assert await ctx.agent_disposition(aid, Disposition.CALL_BACK, CALLBACK)
    finally:
        await ctx.aclose()
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["disposition"], a["callback_at"], a["agent"]) == (Disposition.CALL_BACK, CALLBACK, "agent/1001")
    assert (m["state"], m["attempts"], m["next_attempt_at"]) == (ContactState.RETRY_SCHEDULED, 1, CALLBACK)


async def test_a_final_write_started_behind_the_hangup_lands_before_the_context_closes(db_engine):
    """Shutdown: the flows' final writes still in flight are written before the context closes."""
    ctx = FlowContext(db_engine)
    aid, mid = await _dialed(db_engine, "close", 2025557000)
    await _answer(ctx, aid)
    ctx.finish_behind(aid, Result.LIVE_ANSWER, ended_at=ENDED, keys="2", disposition=Disposition.NOT_INTERESTED)
    await ctx.aclose()
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["result"], a["disposition"], m["state"]) == (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED,
                                                           ContactState.DONE)


async def test_a_write_on_a_connection_the_server_dropped_is_written_on_a_fresh_one(db_engine):
    """The writer keeps its connections between writes; one the server closed meanwhile (a restart)
    costs nothing but a reconnect: the write is idempotent and runs again."""
    _pg_only(db_engine)
    ctx = FlowContext(db_engine)
    (first, _), (aid, mid) = [await _dialed(db_engine, f"r{i}", 2025558000 + 10 * i) for i in range(2)]
    try:
        await _answer(ctx, first)  # the writer now holds a connection
        async with db_engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        assert (await _answer(ctx, aid)).id == aid
        assert await ctx.finish(aid, Result.BUSY, ended_at=ENDED)
    finally:
        await ctx.aclose()
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["result"], m["state"]) == (Result.BUSY, ContactState.RETRY_SCHEDULED)


async def test_a_writer_never_closed_gives_its_connections_back_when_the_engine_is_disposed(db_engine):
    _pg_only(db_engine)
    ctx = FlowContext(db_engine)
    aid, _ = await _dialed(db_engine, "d", 2025558500)
    await _answer(ctx, aid)
    assert db_engine.sync_engine.pool.checkedout() == 1  # held by the writer between writes
    await db_engine.dispose()
    async with db_engine.connect() as conn:  # a new pool: only this connection is left
        others = (await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND pid <> pg_backend_pid()"))).scalar_one()
    assert others == 0
