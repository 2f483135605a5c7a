"""The console over HTTP (the ASGI app, no socket): the session cookie is signed, HttpOnly and
SameSite=Lax; every form needs its CSRF token; logins are throttled after failures; an agent acts on
their own calls only and cannot open the board; every action lands in the audit log."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy import insert, select, update

from agi.agents import roster
from agi.auth.users import add_user
from agi.db import attempts as db
from agi.db.models import AgentCall, Attempt, AuditEntry, Campaign, CampaignContact
from agi.outcomes import Disposition, Result, Routing
from agi.web.app import WebOptions, create_app
from agi.web.console.session import COOKIE
from db_seed import seed_campaign

PASSWORD = "a-long-password"
NOW = dt.datetime.now(dt.timezone.utc)


def console_client(engine) -> httpx.AsyncClient:
    app = create_app(engine, options=WebOptions(webhooks=False, rate=0, session_secret="s3cret-for-tests"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialer.test")


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def login(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"csrf": csrf_of(page.text), "user": user, "password": password})


async def setup_agents(engine) -> dict:
    """Two agents with a connected queue call each, and a supervisor."""
    async with engine.begin() as conn:
        camp, members = await seed_campaign(conn, 2, name="web")
        await conn.execute(update(Campaign.__table__).values(queue_name="sales", mode="progressive"))
        ids = {}
        for i, name in enumerate(("ann", "bob")):
            await add_user(conn, name, "agent", PASSWORD)
            await roster.set_agent(conn, name, f"PJSIP/agent{i + 1}", ["web"])
            agent = await roster.agent_of(conn, name)
            contact = (await conn.execute(select(CampaignContact.contact_id).where(
                CampaignContact.id == members[i]))).scalar_one()
            aid = await db.start_attempt(conn, members[i], campaign_id=camp, contact_id=contact, dialer="d",
                                         number=f"+1202555000{i}", attempt_no=1, now=NOW)
            await db.mark_answered(conn, aid, NOW)
            await db.set_routing(conn, aid, Routing.AGENT_CONNECTED, agent=f"PJSIP/agent{i + 1}", now=NOW)
            await db.finish_attempt(conn, aid, Result.LIVE_ANSWER, ended_at=NOW)
            call_id = (await conn.execute(insert(AgentCall.__table__).values(
                agent_id=agent.id, campaign_id=camp, contact_id=contact, membership_id=members[i], attempt_id=aid,
                kind="queue", state="acw", offered_at=NOW, acw_until=NOW + dt.timedelta(minutes=5))
                .returning(AgentCall.__table__.c.id))).scalar_one()
            ids[name] = (agent.id, call_id, aid)
        await add_user(conn, "sue", "supervisor", PASSWORD)
    return ids


async def test_login_sets_a_signed_httponly_samesite_lax_cookie_and_a_tampered_one_is_no_session(db_engine):
    await setup_agents(db_engine)
    async with console_client(db_engine) as client:
        res = await login(client, "ann")
        assert res.status_code == 303 and res.headers["location"] == "/agent"
        cookie = next(h for h in res.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        page = await client.get("/agent")
        assert page.status_code == 200 and "PJSIP/agent1" in page.text
        body, mac = client.cookies[COOKIE].rsplit(".", 1)
        client.cookies.set(COOKIE, f"{body}.{'A' * len(mac)}", domain="dialer.test")
        again = await client.get("/agent")
        assert again.status_code == 303 and again.headers["location"].startswith("/login")


async def test_a_post_without_the_sessions_csrf_token_changes_nothing(db_engine):
    ids = await setup_agents(db_engine)
    async with console_client(db_engine) as client:
        await login(client, "ann")
        res = await client.post("/agent/state", data={"state": "ready", "csrf": "forged"})
        assert res.status_code == 303 and "expired" in res.headers["location"]
        res = await client.post(f"/agent/calls/{ids['ann'][1]}/dispose", data={"disposition": "interested"})
    async with db_engine.connect() as conn:
        agent = await roster.agent_of(conn, "ann")
        disp = (await conn.execute(select(Attempt.disposition).where(Attempt.id == ids["ann"][2]))).scalar_one()
    assert agent.wanted_seq == 0 and disp is None


async def test_logins_are_throttled_after_five_failures(db_engine):
    await setup_agents(db_engine)
    async with console_client(db_engine) as client:
        for _ in range(5):
            res = await login(client, "ann", "wrong-password!")
            assert "Wrong" in (await client.get(res.headers["location"])).text
        res = await login(client, "ann")  # the right password, but too many failures
        assert "Too many failed logins" in (await client.get(res.headers["location"])).text
    async with db_engine.connect() as conn:
        actions = [r.action for r in (await conn.execute(select(AuditEntry.action))).all()]
    assert actions.count("console.login_failed") == 5 and "console.login_throttled" in actions


async def test_an_agent_disposes_their_own_call_only_and_it_is_audited(db_engine):
    ids = await setup_agents(db_engine)
    async with console_client(db_engine) as client:
        await login(client, "ann")
        page = await client.get("/agent")
        token = csrf_of(page.text)
        assert "+12025550000" in page.text and "+12025550001" not in page.text  # bob's contact is not shown
        res = await client.post(f"/agent/calls/{ids['bob'][1]}/dispose",
                                data={"csrf": token, "disposition": "interested"})
        assert "not%20yours" in res.headers["location"]
        res = await client.post(f"/agent/calls/{ids['ann'][1]}/dispose",
                                data={"csrf": token, "disposition": "not_interested", "note": "has one"})
        assert res.headers["location"] == "/agent"
        assert (await client.get("/board")).headers["location"].startswith("/login")  # agents have no board
    async with db_engine.connect() as conn:
        got = dict((await conn.execute(select(Attempt.id, Attempt.disposition))).all())
        audit = (await conn.execute(select(AuditEntry).where(AuditEntry.action == "agent.dispose"))).one()
    assert got[ids["ann"][2]] == Disposition.NOT_INTERESTED.value and got[ids["bob"][2]] is None
    assert audit.actor == "ann" and audit.details["note"] == "has one" and audit.source.startswith("console ")


async def test_the_board_pauses_and_starts_a_campaign_audited(db_engine):
    await setup_agents(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(update(Campaign.__table__).values(
            state="running", start_at=NOW - dt.timedelta(days=1), stop_at=NOW + dt.timedelta(days=1)))
        camp = (await conn.execute(select(Campaign.id))).scalar_one()
    async with console_client(db_engine) as client:
        await login(client, "sue")
        page = await client.get("/board")
        assert page.status_code == 200 and 'id="fig-calls_in_progress"' in page.text
        res = await client.post(f"/board/campaigns/{camp}/pause", data={"csrf": csrf_of(page.text)})
        assert "stopped" in res.headers["location"]
        res = await client.post(f"/board/campaigns/{camp}/start", data={"csrf": csrf_of(page.text)})
        assert "running" in res.headers["location"]
    async with db_engine.connect() as conn:
        actions = [r.action for r in (await conn.execute(select(AuditEntry.action).order_by(AuditEntry.id))).all()]
    assert actions[-2:] == ["campaign.pause", "campaign.start"]
