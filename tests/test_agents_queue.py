"""Console agents in queue campaigns, through the simulator over AMI: ready/paused/logged out reach the
queue (QueueAdd, QueuePause with the reason, QueueRemove), a call the queue bridges to the agent pops
on their console (AgentConnect) with the contact, after-call work follows (AgentComplete, contact
``acw``), the console's disposition ends it; the agent's and the phone's dispositions: first wins."""

from __future__ import annotations

import pytest

import datetime as dt

from sqlalchemy import insert, select, update

from agi.agents import desk, roster
from agi.auth.users import add_user
from agi.db import attempts as db
from agi.db.models import AgentCall, Attempt, Campaign, CampaignContact, Contact
from agi.local import LocalStack
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from test_agents_preview import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

NOW = dt.datetime.now(dt.timezone.utc)
PERSON_PRESSES_1 = {"default": {"base": "human", "callee": {"keys": ["1@0.5"], "hangup_after_bridge": 4}}}


async def queue_campaign(engine, n: int = 1) -> tuple[int, list[int]]:
    async with engine.begin() as conn:
        camp, members = await seed_campaign(conn, n, name="pr", first_number=2025550200)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == camp).values(
            mode="predictive", queue_name="sales", window_start=dt.time(0), window_end=dt.time(0), lines=2,
            drop_timeout=30, key_timeout=3, key_tries=1, acw_seconds=120))
        await conn.execute(update(Contact.__table__).values(first_name="Grace", last_name="Hopper",
                                                            custom={"plan": "gold"}))
        await add_user(conn, "bob", "agent", "a-long-password")
    return camp, members


def member(stack, interface: str = "PJSIP/agent1"):
    return next((m for m in stack.sim.queues.state()["sales"].members if m.interface == interface), None)


def sales_queue() -> dict:
    # no static member: the console's agents join by QueueAdd; the simulated agent keys nothing on the phone
    return {"sales": QueueConfig("sales", talk_seconds=(30, 30), dispositions={"": 1.0})}


async def test_ready_pause_and_log_out_reach_the_queue_over_ami(db_engine):
    camp, _ = await queue_campaign(db_engine)
    async with LocalStack(db_engine, plan=ScenarioPlan.from_dict(PERSON_PRESSES_1), queues=sales_queue(),
                          speed=20.0) as stack:
        async with db_engine.begin() as conn:
            await roster.set_agent(conn, "bob", "PJSIP/agent1", ["pr"], dialer="local")
            agent = await roster.agent_of(conn, "bob")
            await roster.request(conn, agent.id, roster.READY)
        stack.start()

        async def agent_is(state):
            async def check():
                async with db_engine.connect() as conn:
                    a = await roster.agent_of(conn, "bob")
                return a if a.state == state and not a.pending else None
            return await until(check)

        await agent_is(roster.READY)
        m = member(stack)
        assert m is not None and m.name == "bob" and not m.paused
        async with db_engine.begin() as conn:
            await roster.request(conn, agent.id, roster.PAUSED, "lunch")
        paused = await agent_is(roster.PAUSED)
        assert paused.pause_reason == "lunch"
        assert member(stack).paused and member(stack).paused_reason == "lunch"
        # the same request applied again leaves Asterisk as once (QueueAdd "Already there" is fine)
        await stack.originator.agent_desk.apply(paused)
        assert [x.interface for x in stack.sim.queues.state()["sales"].members] == ["PJSIP/agent1"]
        async with db_engine.begin() as conn:
            await roster.request(conn, agent.id, roster.LOGGED_OUT)
        await agent_is(roster.LOGGED_OUT)
        assert member(stack) is None


async def test_a_queue_call_pops_on_the_console_and_after_call_work_ends_with_the_disposition(db_engine):
    camp, members = await queue_campaign(db_engine)
    # the person stays on (40 s) until the agent hangs up (talk 30 s: 1.5 s here); hanging up after
    # 4 s (0.2 s) the connected card once came and went between two looks of a loaded test run
    talks = {"default": {"base": "human", "callee": {"keys": ["1@0.5"], "hangup_after_bridge": 40}}}
    async with LocalStack(db_engine, plan=ScenarioPlan.from_dict(talks), queues=sales_queue(),
                          speed=20.0) as stack:
        async with db_engine.begin() as conn:
            await roster.set_agent(conn, "bob", "PJSIP/agent1", ["pr"], dialer="local")
            agent = await roster.agent_of(conn, "bob")
            await roster.request(conn, agent.id, roster.READY)
        await stack.assign(camp)
        stack.start()

        async def popped():
            async with db_engine.connect() as conn:
                return await desk.card(conn, agent.id)

        card = await until(popped)
        assert card.kind == "queue" and card.state == desk.CONNECTED
        assert (card.name, card.number, card.custom) == ("Grace Hopper", "+12025550200", {"plan": "gold"})

        async def in_acw():
            got = await popped()
            return got if got is not None and got.state == desk.ACW else None

        card = await until(in_acw)
        assert card.acw_until is not None

        async def contact_in_acw():
            async with db_engine.connect() as conn:
                state = (await conn.execute(select(CampaignContact.state).where(
                    CampaignContact.id == members[0]))).scalar_one()
            return state == ContactState.ACW.value

        await until(contact_in_acw)
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
        async with db_engine.begin() as conn:
            assert await desk.dispose(conn, card.attempt_id, Disposition.CALL_BACK, later, by="console",
                                      now=dt.datetime.now(dt.timezone.utc), agent_id=agent.id)
        async with db_engine.connect() as conn:
            att = (await conn.execute(select(Attempt).where(Attempt.id == card.attempt_id))).one()
            cc = (await conn.execute(select(CampaignContact).where(CampaignContact.id == members[0]))).one()
        assert (att.result, att.routing, att.disposition) == (
            Result.LIVE_ANSWER.value, Routing.AGENT_CONNECTED.value, Disposition.CALL_BACK.value)
        assert cc.state == ContactState.RETRY_SCHEDULED.value and abs((cc.next_attempt_at - later).total_seconds()) < 1
        assert await popped() is None  # the card is gone: the agent is free


async def _connected_call(engine, attempt_state: str = desk.ACW) -> tuple[str, int]:
    """An agent's queue call in after-call work, its attempt final: (attempt id, agent id)."""
    async with engine.begin() as conn:
        camp, members = await seed_campaign(conn, 1, name="fw")
        await conn.execute(update(Campaign.__table__).values(queue_name="sales", mode="progressive"))
        await add_user(conn, "cy", "agent", "a-long-password")
        await roster.set_agent(conn, "cy", "PJSIP/agent9", ["fw"])
        agent = await roster.agent_of(conn, "cy")
        contact = (await conn.execute(select(CampaignContact.contact_id))).scalar_one()
        aid = await db.start_attempt(conn, members[0], campaign_id=camp, contact_id=contact, dialer="d",
                                     number="+12025550000", attempt_no=1, now=NOW)
        await db.mark_answered(conn, aid, NOW)
        await db.set_routing(conn, aid, Routing.AGENT_CONNECTED, agent="PJSIP/agent9", now=NOW)
        await db.finish_attempt(conn, aid, Result.LIVE_ANSWER, ended_at=NOW)
        await conn.execute(insert(AgentCall.__table__).values(
            agent_id=agent.id, campaign_id=camp, contact_id=contact, membership_id=members[0], attempt_id=aid,
            kind="queue", state=attempt_state, offered_at=NOW))
    return aid, agent.id


async def test_the_consoles_disposition_stands_against_a_later_one_keyed_on_the_phone(db_engine):
    aid, agent_id = await _connected_call(db_engine)
    async with db_engine.begin() as conn:
        assert await desk.dispose(conn, aid, Disposition.INTERESTED, None, by="console", now=NOW, agent_id=agent_id)
        assert not await desk.dispose(conn, aid, Disposition.NOT_INTERESTED, None, by="phone", now=NOW)
        att = (await conn.execute(select(Attempt.disposition).where(Attempt.id == aid))).scalar_one()
    assert att == Disposition.INTERESTED.value


async def test_the_phones_disposition_stands_against_a_later_one_from_the_console(db_engine):
    aid, agent_id = await _connected_call(db_engine)
    async with db_engine.begin() as conn:
        assert await desk.dispose(conn, aid, Disposition.OPT_OUT, None, by="phone", now=NOW)
        assert not await desk.dispose(conn, aid, Disposition.INTERESTED, None, by="console", now=NOW,
                                      agent_id=agent_id)
        att = (await conn.execute(select(Attempt.disposition).where(Attempt.id == aid))).scalar_one()
        by = (await conn.execute(select(AgentCall.disposed_by).where(AgentCall.attempt_id == aid))).scalar_one()
    assert (att, by) == (Disposition.OPT_OUT.value, "phone")


async def test_an_agent_cannot_dispose_another_agents_call(db_engine):
    aid, agent_id = await _connected_call(db_engine)
    async with db_engine.begin() as conn:
        assert not await desk.dispose(conn, aid, Disposition.INTERESTED, None, by="console", now=NOW,
                                      agent_id=agent_id + 1)
        assert await desk.attempt_of_call(conn, agent_id + 1, 1) is None
