"""The flows' per-call writes (FlowContext.finish, the answered mark): the PostgreSQL fast path
(agi.db.fastpath) leaves exactly what the Core writes of agi.db.attempts leave, in every order."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from agi.db import attempts as db
from agi.db.claim import claim_due
from agi.db.models import Attempt, Campaign, CampaignContact, DncEntry
from agi.flows.context import FlowContext
from agi.outcomes import ContactState, Disposition, Result, Routing
from db_seed import T0, seed_campaign

MIN = dt.timedelta(minutes=1)
ENDED = T0 + 2 * MIN
CALLBACK = T0 + dt.timedelta(hours=3)
_a, _cc = Attempt.__table__, CampaignContact.__table__

# What happens to one attempt, in order: ("answer",), ("finish", result, kwargs, set here?),
# ("choose", key, disposition, kwargs, chosen here?), ("routing", Routing), ("cancel",) an admin cancelling the contact; then the attempt's (result, disposition, keys) and the
# membership's (state, attempts, next_attempt_at).
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
}


async def _dialed(engine, name: str, first_number: int) -> tuple[str, int]:
    async with engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1, name=name, first_number=first_number)
        [c] = await claim_due(conn, camp, "d1", 1, T0)
        aid = await db.start_attempt(conn, c.membership_id, campaign_id=camp, contact_id=c.contact_id,
                                     dialer="d1", number=c.number, attempt_no=1, now=T0)
    return aid, c.membership_id


async def _answer(ctx: FlowContext, attempt_id: str):
    if ctx.fast is not None:
        return await ctx.fast.mark_answered(attempt_id, T0 + MIN, "HUMAN", "HUMAN-1-1")
    return await ctx.write(db.mark_answered, attempt_id, T0 + MIN, "HUMAN", "HUMAN-1-1")


async def _play(ctx: FlowContext, attempt_id: str, steps) -> None:
    for step in steps:
        if step[0] == "answer":
            info = await _answer(ctx, attempt_id)
            assert info is not None and info.id == attempt_id and info.answered_at == T0 + MIN
        elif step[0] == "cancel":
            async with ctx.engine.begin() as conn:
                await conn.execute(update(_cc).where(_cc.c.last_attempt_id == attempt_id).values(
                    state=ContactState.CANCELLED.value))
        elif step[0] == "routing":
            await ctx.set_routing(attempt_id, step[1], now=ENDED, **(step[2] if len(step) > 2 else {}))
        elif step[0] == "choose":
            _, key, disposition, kwargs, chosen_here = step
            assert await ctx.choose(attempt_id, key, disposition, now=ENDED, **kwargs) is chosen_here
        else:
            _, result, kwargs, set_here = step
            assert await ctx.finish(attempt_id, result, ended_at=ENDED, now=ENDED, **kwargs) is set_here


async def _state(engine, attempt_id: str, membership_id: int):
    async with engine.connect() as conn:
        a = (await conn.execute(select(_a).where(_a.c.id == attempt_id))).one()._asdict()
        m = (await conn.execute(select(_cc).where(_cc.c.id == membership_id))).one()._asdict()
        dnc = (await conn.execute(select(DncEntry.__table__.c.number).where(
            DncEntry.__table__.c.number == a["number"]))).first() is not None
    for row, skip in ((a, ("id", "campaign_id", "contact_id", "membership_id", "number")),
                      (m, ("id", "campaign_id", "contact_id", "number", "last_attempt_id"))):
        for key in skip:
            row.pop(key)
    return a, m, dnc


@pytest.mark.parametrize("name", SCENARIOS)
async def test_fast_path_and_core_writes_leave_the_same_attempt_and_contact(db_engine, name):
    steps, (result, disposition, keys), (state, attempts, next_at) = SCENARIOS[name]
    fast = FlowContext(db_engine)
    core = FlowContext(db_engine)
    core.fast = None
    assert (fast.fast is not None) == (db_engine.dialect.name == "postgresql")
    try:
        outcomes = []
        for i, ctx in enumerate((fast, core)):
            aid, mid = await _dialed(db_engine, f"c{i}", 2025550000 + 100 * i)
            await _play(ctx, aid, steps)
            outcomes.append(await _state(db_engine, aid, mid))
    finally:
        await fast.aclose()
    assert outcomes[0] == outcomes[1]
    a, m, dnc = outcomes[0]
    assert (a["result"], a["disposition"], a["ivr_keys"]) == (result, disposition, keys)
    assert (m["state"], m["attempts"], m["next_attempt_at"]) == (state, attempts, next_at)
    assert a["ended_at"] == ENDED
    assert dnc == (disposition is Disposition.OPT_OUT)
    if name == "dropped_because_the_queue_does_not_exist_keeps_its_queuestatus":
        assert (a["routing"], a["queue_status"], a["talk_seconds"]) == (Routing.DROPPED, "UNKNOWN", 60)
    if name == "talk_time_from_the_answer_to_the_first_final_write":
        assert (a["talk_seconds"], a["hangup_cause"]) == (60, 16)


async def test_unknown_attempt_is_neither_found_nor_written(db_engine):
    ctx = FlowContext(db_engine)
    try:
        assert await _answer(ctx, "no-such-attempt") is None
        assert await ctx.finish("no-such-attempt", Result.LIVE_ANSWER, ended_at=ENDED,
                                keys="2", disposition=Disposition.NOT_INTERESTED) is False
    finally:
        await ctx.aclose()
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(_a.c.id))).first() is None


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
        if ctx.fast is None:
            marks = [ctx.write(db.mark_answered, aid, T0 + MIN, bad if i == 3 else "HUMAN")
                     for i, (aid, _) in enumerate(dialed)]
        else:
            marks = [ctx.fast.mark_answered(aid, T0 + MIN, bad if i == 3 else "HUMAN")
                     for i, (aid, _) in enumerate(dialed)]
        found = await asyncio.gather(*marks, return_exceptions=True)
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


async def test_a_lone_write_goes_out_at_once_and_the_ones_behind_it_go_together(db_engine):
    """Group commit: a call never waits for company (the first mark leaves alone, at once);
    the marks that arrive while it is in flight leave together, in one round trip."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    ctx = FlowContext(db_engine)
    dialed = [await _dialed(db_engine, f"g{i}", 2025553000 + 10 * i) for i in range(10)]
    groups: list[int] = []
    run = ctx.fast._run

    async def counted(fn, items, *rest):
        groups.append(len(items))
        return await run(fn, items, *rest)

    ctx.fast._run = counted
    try:
        assert (await ctx.fast.mark_answered(dialed[0][0], T0 + MIN, "HUMAN")).id == dialed[0][0]
        assert groups == [1]
        found = await asyncio.gather(*(ctx.fast.mark_answered(aid, T0 + MIN, "HUMAN") for aid, _ in dialed[1:]))
    finally:
        await ctx.aclose()
    assert [f.id for f in found] == [aid for aid, _ in dialed[1:]]
    assert groups == [1, 1, 8]  # the first of the nine at once, the eight behind it together


async def test_a_person_choosing_to_talk_to_an_agent_waits_for_one_on_both_paths(db_engine):
    """The choice and the contact waiting for an agent, one transaction (fast path = Core)."""
    fast = FlowContext(db_engine)
    core = FlowContext(db_engine)
    core.fast = None
    try:
        states = []
        for i, ctx in enumerate((fast, core)):
            aid, mid = await _dialed(db_engine, f"w{i}", 2025554000 + 100 * i)
            await _answer(ctx, aid)
            assert await ctx.choose(aid, "1", Disposition.INTERESTED, now=ENDED, waiting_agent=True)
            assert not await ctx.choose(aid, "1", Disposition.INTERESTED, now=ENDED, waiting_agent=True)
            states.append(await _state(db_engine, aid, mid))
    finally:
        await fast.aclose()
    assert states[0] == states[1]
    a, m, dnc = states[0]
    assert (a["result"], a["disposition"], a["ivr_keys"]) == (None, Disposition.INTERESTED, "1")
    assert m["state"] == ContactState.WAITING_AGENT and m["updated_at"] == ENDED and not dnc


# --- the one-statement final write (FINISH_AND_MOVE) and its fall-back ------------------------

def _pg_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")


def _runners(ctx: FlowContext) -> list[str]:
    """The names of the fast path's transactions, as they run (a record, nothing replaced)."""
    names: list[str] = []
    run = ctx.fast._run

    async def recorded(fn, *args):
        names.append(fn.__name__)
        return await run(fn, *args)

    ctx.fast._run = recorded
    return names


async def _elsewhere_then_here(engine, name: str, number: int, elsewhere, here):
    """Answered here; ``elsewhere`` (a Core FlowContext: another process) writes mid-call; then
    this process's final write. Returns (state, runners) next to the same done all on Core."""
    out = []
    for i, fast_here in enumerate((True, False)):
        ctx = FlowContext(engine)
        other = FlowContext(engine)
        other.fast = None
        if not fast_here:
            ctx.fast = None
        runners = _runners(ctx) if fast_here else []
        aid, mid = await _dialed(engine, f"{name}{i}", number + 100 * i)
        try:
            await _answer(ctx, aid)
            await elsewhere(other, aid)
            await here(ctx, aid)
        finally:
            await ctx.aclose()
        out.append((await _state(engine, aid, mid), runners))
    (fast_state, runners), (core_state, _) = out
    assert fast_state == core_state
    return fast_state, runners


async def test_the_final_write_of_a_call_answered_here_is_one_statement(db_engine):
    _pg_only(db_engine)
    ctx = FlowContext(db_engine)
    runners = _runners(ctx)
    aid, mid = await _dialed(db_engine, "one", 2025556000)
    try:
        await _answer(ctx, aid)
        assert await ctx.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED, keys="2",
                                disposition=Disposition.NOT_INTERESTED)
    finally:
        await ctx.aclose()
    assert runners == ["_answer_all", "_finish_assumed_all"]
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["result"], a["disposition"], m["state"], m["attempts"]) == (
        Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, ContactState.DONE, 1)


async def test_a_retry_policy_edited_mid_call_is_the_one_applied(db_engine):
    """The step worked out with the policy read at answer no longer holds: nothing of the
    one-statement write is kept; the two-step write applies the policy as it is now."""
    _pg_only(db_engine)

    async def edit_policy(_other, aid):
        async with db_engine.begin() as conn:
            camp = (await conn.execute(select(_a.c.campaign_id).where(_a.c.id == aid))).scalar_one()
            await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == camp)
                               .values(retry_rules={"busy": 7}, max_attempts=5))

    async def busy(ctx, aid):
        assert await ctx.finish(aid, Result.BUSY, ended_at=ENDED, hangup_cause=17)

    (a, m, _), runners = await _elsewhere_then_here(db_engine, "policy", 2025556100, edit_policy, busy)
    assert runners == ["_answer_all", "_finish_assumed_all", "_finish_all"]
    assert (m["state"], m["attempts"], m["next_attempt_at"]) == (ContactState.RETRY_SCHEDULED, 1, ENDED + 7 * MIN)
    assert a["result"] == Result.BUSY and a["hangup_cause"] == 17


async def test_a_choice_written_elsewhere_mid_call_wins_and_moves_the_contact(db_engine):
    _pg_only(db_engine)

    async def agent_sets_call_back(other, aid):
        assert await other.choose(aid, "3", Disposition.CALL_BACK, CALLBACK, now=ENDED)

    async def person_presses_2(ctx, aid):
        assert await ctx.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED, keys="2",
                                disposition=Disposition.NOT_INTERESTED)

    (a, m, _), runners = await _elsewhere_then_here(db_engine, "choice", 2025556200, agent_sets_call_back,
                                                    person_presses_2)
    assert runners == ["_answer_all", "_finish_assumed_all", "_finish_all"]
    assert (a["disposition"], a["ivr_keys"]) == (Disposition.CALL_BACK, "2")
    assert (m["state"], m["attempts"], m["next_attempt_at"]) == (ContactState.RETRY_SCHEDULED, 1, CALLBACK)


async def test_a_result_written_elsewhere_first_then_the_choice_here_moves_the_contact_again(db_engine):
    """The h extension's flow in another server finalised the call; this process's final write
    brings the person's choice: not set here, but the retry rule runs again with it."""
    _pg_only(db_engine)

    async def hangup_flow(other, aid):
        assert await other.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED, hangup_cause=16)

    async def person_pressed_2(ctx, aid):
        assert not await ctx.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED, keys="2",
                                    disposition=Disposition.NOT_INTERESTED, now=ENDED)

    (a, m, _), runners = await _elsewhere_then_here(db_engine, "late", 2025556300, hangup_flow, person_pressed_2)
    assert runners == ["_answer_all", "_finish_assumed_all", "_finish_all"]
    assert (a["result"], a["disposition"], a["hangup_cause"]) == (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED, 16)
    assert (m["state"], m["attempts"]) == (ContactState.DONE, 1)


async def test_a_final_write_started_behind_the_hangup_lands_before_the_context_closes(db_engine):
    """Shutdown: the flows' final writes still in flight are written before the connections go."""
    ctx = FlowContext(db_engine)
    aid, mid = await _dialed(db_engine, "close", 2025557000)
    await _answer(ctx, aid)
    ctx.finish_behind(aid, Result.LIVE_ANSWER, ended_at=ENDED, keys="2", disposition=Disposition.NOT_INTERESTED)
    await ctx.aclose()
    a, m, _ = await _state(db_engine, aid, mid)
    assert (a["result"], a["disposition"], m["state"]) == (Result.LIVE_ANSWER, Disposition.NOT_INTERESTED,
                                                           ContactState.DONE)


async def test_a_choice_after_the_result_is_written_with_its_retry_rule_in_one_transaction(db_engine):
    """The one-statement choice finds the attempt final already: nothing of it is kept, and
    the choice and the retry rule run again together (all or nothing, as on the Core path)."""
    _pg_only(db_engine)

    async def hangup_flow(other, aid):
        assert await other.finish(aid, Result.LIVE_ANSWER, ended_at=ENDED, hangup_cause=16)

    async def call_back(ctx, aid):
        assert await ctx.choose(aid, "3", Disposition.CALL_BACK, CALLBACK, now=ENDED)

    (a, m, _), runners = await _elsewhere_then_here(db_engine, "cb", 2025557100, hangup_flow, call_back)
    assert runners == ["_answer_all", "_one", "_write_then_rule"]
    assert (a["disposition"], a["ivr_keys"]) == (Disposition.CALL_BACK, "3")
    assert (m["state"], m["next_attempt_at"]) == (ContactState.RETRY_SCHEDULED, CALLBACK)
