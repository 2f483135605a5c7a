"""Preview mode end to end through the simulator (agent first, [dialer-preview] of the real dialplan
file), the test playing the console's part with agi.agents: the agent goes ready, is offered a
contact, refuses it, calls the next (the person answers: live_answer + agent_connected, after-call
work, the disposition), then one whose line is busy; every seed 004 state is passed through."""

from __future__ import annotations

import pytest

import datetime as dt

from sqlalchemy import select, update

from agi.agents import desk, roster
from agi.auth.users import add_user
from agi.db.models import AgentCall, Attempt, Campaign, CampaignContact
from agi.local import LocalStack
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

PLAN = {"+12025550100": {"base": "human", "callee": {"hangup_after_bridge": 6}},
        "+12025550101": {"base": "human", "callee": {"hangup_after_bridge": 6}},
        "+12025550102": "busy"}


async def preview_campaign(engine, *, on_reject: str = "next_agent", bcw: int = 0) -> tuple[int, list[int]]:
    async with engine.begin() as conn:
        camp, members = await seed_campaign(conn, 3, name="pv", first_number=2025550100)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == camp).values(
            mode="preview", window_start=dt.time(0), window_end=dt.time(0), bcw_seconds=bcw, on_reject=on_reject,
            acw_seconds=60, retry_rules={"busy": 5, "service_error": 1}))
        await add_user(conn, "ann", "agent", "a-long-password")
    return camp, members


async def ready_agent(engine, campaign: str):
    """Ann, on the simulator's PJSIP/agent1, ready for ``campaign`` on the local dialer."""
    async with engine.begin() as conn:
        await roster.set_agent(conn, "ann", "PJSIP/agent1", [campaign], dialer="local")
        agent = await roster.agent_of(conn, "ann")
        await roster.request(conn, agent.id, roster.READY)
    return agent


async def offered(engine, agent_id: int):
    """The agent's open call if it is an offer not yet seen, else None."""
    async with engine.connect() as conn:
        row = await desk.open_call(conn, agent_id)
    return row if row is not None and row.state == desk.OFFERED else None


async def contact_state(engine, membership_id: int) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(select(CampaignContact.state).where(CampaignContact.id == membership_id))).scalar_one()


async def test_preview_agent_refuses_one_calls_the_next_and_disposes(db_engine):
    camp, members = await preview_campaign(db_engine)
    async with LocalStack(db_engine, plan=ScenarioPlan.from_dict({"table": PLAN, "default": "human"}),
                          speed=20.0, lines=5, cps=10) as stack:
        stack.sim.add_phone("PJSIP/agent1", answer_after=1.0, talk_seconds=60)
        agent = await ready_agent(db_engine, str(camp))
        await stack.assign(camp)
        stack.start()

        first = await until(lambda: offered(db_engine, agent.id))
        assert first.membership_id == members[0]
        assert await contact_state(db_engine, members[0]) == ContactState.OPERATOR_ASSIGNED.value
        async with db_engine.begin() as conn:
            assert (await roster.agent_of(conn, "ann")).state == roster.READY
            assert await desk.mark_seen(conn, agent.id, first.id, dt.datetime.now(dt.timezone.utc))
        assert await contact_state(db_engine, members[0]) == ContactState.BCW.value
        async with db_engine.begin() as conn:
            assert await desk.reject(conn, agent.id, first.id, dt.datetime.now(dt.timezone.utc)) == \
                ContactState.REJECTED_BY_OPERATOR.value
        assert await contact_state(db_engine, members[0]) == ContactState.REJECTED_BY_OPERATOR.value

        second = await until(lambda: offered(db_engine, agent.id))
        assert second.membership_id == members[1]  # the refused one is not offered to the same agent again
        async with db_engine.begin() as conn:
            await desk.mark_seen(conn, agent.id, second.id, dt.datetime.now(dt.timezone.utc))
            assert await desk.ask_call(conn, agent.id, second.id, dt.datetime.now(dt.timezone.utc))

        async def in_acw():
            async with db_engine.connect() as conn:
                card = await desk.card(conn, agent.id)
            return card if card is not None and card.state == desk.ACW else None

        card = await until(in_acw)
        assert card.number == "+12025550101" and card.attempt_id
        await until(lambda: _is(db_engine, members[1], ContactState.ACW.value))
        async with db_engine.begin() as conn:
            assert await desk.dispose(conn, card.attempt_id, Disposition.INTERESTED, None, by="console",
                                      now=dt.datetime.now(dt.timezone.utc), agent_id=agent.id, note="wants a quote")
        async with db_engine.connect() as conn:
            att = (await conn.execute(select(Attempt).where(Attempt.id == card.attempt_id))).one()
            acall = (await conn.execute(select(AgentCall).where(AgentCall.attempt_id == card.attempt_id))).one()
        assert (att.result, att.routing, att.disposition) == (
            Result.LIVE_ANSWER.value, Routing.AGENT_CONNECTED.value, Disposition.INTERESTED.value)
        assert att.agent == "PJSIP/agent1" and att.talk_seconds is not None and att.talk_seconds >= 5
        assert (acall.state, acall.disposed_by, acall.note) == (desk.DONE, "console", "wants a quote")
        assert await contact_state(db_engine, members[1]) == ContactState.DONE.value

        third = await until(lambda: offered(db_engine, agent.id))
        assert third.membership_id == members[2]
        async with db_engine.begin() as conn:
            await desk.mark_seen(conn, agent.id, third.id, dt.datetime.now(dt.timezone.utc))
            await desk.ask_call(conn, agent.id, third.id, dt.datetime.now(dt.timezone.utc))

        async def busy_result():
            async with db_engine.connect() as conn:
                return (await conn.execute(select(Attempt.result).where(
                    Attempt.membership_id == members[2], Attempt.result.is_not(None)))).scalar()

        assert await until(busy_result) == Result.BUSY.value
        assert await contact_state(db_engine, members[2]) == ContactState.RETRY_SCHEDULED.value
        # the agent's phone was rung twice, each time into the real [dialer-preview] context
        rec = [r for r in stack.sim.record if r.dial_string == "PJSIP/agent1"]
        assert len(rec) == 2
        assert all(any(step.startswith("Dial(PJSIP/+1202555010") for step in r.dialplan) for r in rec)


async def _is(engine, membership_id: int, state: str) -> bool:
    return await contact_state(engine, membership_id) == state


async def test_preview_skip_setting_skips_a_refused_contact(db_engine):
    camp, members = await preview_campaign(db_engine, on_reject="skip")
    async with LocalStack(db_engine, plan=ScenarioPlan.from_dict({"table": PLAN, "default": "human"}),
                          speed=20.0) as stack:
        agent = await ready_agent(db_engine, "pv")
        await stack.assign(camp)
        stack.start()

        first = await until(lambda: offered(db_engine, agent.id))
        async with db_engine.begin() as conn:
            assert await desk.reject(conn, agent.id, first.id, dt.datetime.now(dt.timezone.utc)) == \
                ContactState.SKIPPED.value
        assert await contact_state(db_engine, members[0]) == ContactState.SKIPPED.value
        second = await until(lambda: offered(db_engine, agent.id))
        assert second.membership_id == members[1]


async def test_a_campaign_with_contacts_in_front_of_agents_has_work_left(db_engine):
    from agi.originator import store

    async with db_engine.begin() as conn:
        camp, members = await seed_campaign(conn, 1, name="wl")
        for state in (ContactState.OPERATOR_ASSIGNED, ContactState.BCW, ContactState.REJECTED_BY_OPERATOR,
                      ContactState.ACW):
            await conn.execute(update(CampaignContact.__table__).values(state=state.value))
            assert await store.work_left(conn, camp), state
        await conn.execute(update(CampaignContact.__table__).values(state=ContactState.DONE.value))
        assert not await store.work_left(conn, camp)


async def test_an_agents_phone_that_does_not_answer_leaves_a_service_error_and_pauses_the_agent(db_engine):
    camp, members = await preview_campaign(db_engine)
    async with LocalStack(db_engine, plan=ScenarioPlan.from_dict({"table": PLAN, "default": "human"}),
                          speed=20.0) as stack:
        stack.sim.add_phone("PJSIP/agent1", answers=False)
        agent = await ready_agent(db_engine, "pv")
        await stack.assign(camp)
        stack.start()

        first = await until(lambda: offered(db_engine, agent.id))
        async with db_engine.begin() as conn:
            await desk.mark_seen(conn, agent.id, first.id, dt.datetime.now(dt.timezone.utc))
            await desk.ask_call(conn, agent.id, first.id, dt.datetime.now(dt.timezone.utc))

        async def paused():
            async with db_engine.connect() as conn:
                a = await roster.agent_of(conn, "ann")
            return a if a.state == roster.PAUSED and not a.pending else None

        a = await until(paused)
        assert a.pause_reason == roster.PHONE_UNANSWERED
        async with db_engine.connect() as conn:
            att = (await conn.execute(select(Attempt).where(Attempt.membership_id == members[0]))).one()
        assert att.result == Result.SERVICE_ERROR.value and "did not answer" in att.detail
        assert await contact_state(db_engine, members[0]) == ContactState.RETRY_SCHEDULED.value


async def test_after_call_work_that_runs_out_puts_the_contact_back_without_a_disposition(db_engine):
    from agi.db import attempts as db
    from agi.db.models import AgentCall

    now = dt.datetime.now(dt.timezone.utc)
    camp, members = await preview_campaign(db_engine)
    async with db_engine.begin() as conn:
        await roster.set_agent(conn, "ann", "PJSIP/agent1", ["pv"])
        agent = await roster.agent_of(conn, "ann")
        contact = (await conn.execute(select(CampaignContact.contact_id).where(
            CampaignContact.id == members[0]))).scalar_one()
        aid = await db.start_attempt(conn, members[0], campaign_id=camp, contact_id=contact, dialer="d",
                                     number="+12025550100", attempt_no=1, now=now)
        await db.mark_answered(conn, aid, now)
        await db.finish_attempt(conn, aid, Result.LIVE_ANSWER, ended_at=now)
        await conn.execute(AgentCall.__table__.insert().values(
            agent_id=agent.id, campaign_id=camp, contact_id=contact, membership_id=members[0], attempt_id=aid,
            kind="queue", state=desk.CONNECTED, offered_at=now))
        assert await desk.completed(conn, aid, now)  # acw_seconds 60
        await desk.settle_acw(conn, [agent.id], now)
    assert await contact_state(db_engine, members[0]) == ContactState.ACW.value
    async with db_engine.begin() as conn:
        await desk.settle_acw(conn, [agent.id], now + dt.timedelta(seconds=61))
        state = (await conn.execute(select(AgentCall.state).where(AgentCall.attempt_id == aid))).scalar_one()
    assert state == desk.DONE
    assert await contact_state(db_engine, members[0]) == ContactState.DONE.value
