"""The console in a real browser (headless Chromium through Selenium) against `dialer web` and the
whole product on the simulator: an agent logs in, goes ready, gets a screen pop in a predictive
campaign and disposes in after-call work; in a preview campaign refuses a contact, calls the next
and disposes; the supervisor board shows the database's figures. Screenshots of every page.

Selenium blocks: every browser call runs in a thread, so the simulator, the FastAGI server and the
originator (all on this test's event loop) keep running meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from sqlalchemy import func, insert, select, update

from agi.agents import roster
from agi.auth.users import add_user
from agi.db.models import AgentCall, Attempt, Campaign, CampaignContact, Contact
from agi.local import LocalStack
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from browser_support import Shots, WebServer, browser, close
from db_seed import seed_campaign

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

PASSWORD = "a-long-password"


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Shots:
    return Shots(tmp_path_factory.getbasetemp() / "screenshots")


async def run(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def wait_for(driver, css: str, text: str | None = None, timeout: float = 40.0):
    """The first element matching ``css`` (containing ``text``), once the page shows it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = await run(driver.find_elements, By.CSS_SELECTOR, css)
        for el in found:
            try:
                if text is None or text in await run(lambda el=el: el.text):
                    return el
            except Exception:  # noqa: BLE001 - the panel was replaced meanwhile: look again
                continue
        await asyncio.sleep(0.1)
    body = await run(lambda: driver.find_element(By.TAG_NAME, "body").text)
    raise TimeoutError(f"no {css!r} with {text!r} on the page in {timeout} s; the page says:\n{body}")


async def click(driver, css: str, text: str | None = None) -> None:
    await _on_element(driver, css, text, lambda el: el.click())


async def type_into(driver, css: str, keys: str) -> None:
    await _on_element(driver, css, None, lambda el: el.send_keys(keys))


async def _on_element(driver, css: str, text: str | None, act) -> None:
    """Act on the element once it shows. The live panel is replaced when the call changes (as a
    person sees it: a fresh panel), so an element found just before may be gone: find it again."""
    for _ in range(10):
        el = await wait_for(driver, css, text)
        try:
            await run(act, el)
            return
        except StaleElementReferenceException:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{css} was replaced ten times in a row before it could be used")


async def log_in(driver, base: str, user: str, shots: Shots | None = None, shot: str | None = None) -> None:
    await run(driver.get, f"{base}/login")
    (await wait_for(driver, "#user")).send_keys(user)
    await run((await wait_for(driver, "#password")).send_keys, PASSWORD)
    if shots is not None:
        await run(shots.take, driver, shot)
    await click(driver, "#login")


async def until_db(engine, query, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        async with engine.connect() as conn:
            got = (await conn.execute(query)).first()
        if got is not None:
            return got
        await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing in the database for {query}")


async def add_agent(engine, campaign: str, user: str = "ann", interface: str = "PJSIP/agent1") -> None:
    async with engine.begin() as conn:
        await add_user(conn, user, "agent", PASSWORD)
        await roster.set_agent(conn, user, interface, [campaign], dialer="local")


async def test_an_agent_gets_a_screen_pop_in_a_predictive_campaign_and_disposes(db_engine, db_url, shots):
    async with db_engine.begin() as conn:
        camp, members = await seed_campaign(conn, 1, name="spring", first_number=2025550300)
        await conn.execute(update(Campaign.__table__).values(
            mode="predictive", queue_name="sales", window_start=dt.time(0), window_end=dt.time(0), lines=2,
            drop_timeout=60, key_timeout=3, key_tries=1, acw_seconds=300))
        await conn.execute(update(Contact.__table__).values(first_name="Grace", last_name="Hopper",
                                                            custom={"plan": "gold", "city": "Arlington"}))
    plan = ScenarioPlan.from_dict({"default": {"base": "human", "callee": {"keys": ["1@0.5"],
                                                                          "hangup_after_bridge": 20}}})
    queues = {"sales": QueueConfig("sales", talk_seconds=(60, 60), dispositions={"": 1.0})}
    async with LocalStack(db_engine, plan=plan, queues=queues, speed=5.0) as stack:
        await add_agent(db_engine, "spring")
        stack.start()
        driver = await run(browser)
        try:
            with WebServer(db_url) as web:
                await log_in(driver, web.url, "ann", shots, "01-login")
                await wait_for(driver, "#agent-state", "Logged out")
                await click(driver, "#btn-ready")
                await wait_for(driver, "#agent-state", "Ready")
                assert stack.sim.queues.state()["sales"].members[0].interface == "PJSIP/agent1"
                await stack.assign(camp)
                await wait_for(driver, "#card-name", "Grace Hopper")
                assert "+12025550300" in await run(lambda: driver.find_element(By.ID, "card-number").text)
                assert "gold" in await run(lambda: driver.find_element(By.ID, "custom").text)
                await run(shots.take, driver, "02-agent-screen-pop")
                await wait_for(driver, "#acw-countdown")
                await until_db(db_engine, select(CampaignContact.id).where(
                    CampaignContact.id == members[0], CampaignContact.state == ContactState.ACW.value))
                await click(driver, "#disp-interested")
                await type_into(driver, "#note", "wants the gold plan")
                await run(shots.take, driver, "03-agent-after-call-work")
                await click(driver, "#btn-dispose")
                await wait_for(driver, "#waiting", "Waiting for a call")
                await run(shots.take, driver, "04-agent-waiting")
        finally:
            await run(close, driver)
    async with db_engine.connect() as conn:
        att = (await conn.execute(select(Attempt).where(Attempt.membership_id == members[0]))).one()
        acall = (await conn.execute(select(AgentCall).where(AgentCall.attempt_id == att.id))).one()
        state = (await conn.execute(select(CampaignContact.state).where(CampaignContact.id == members[0]))).scalar()
    assert (att.result, att.routing, att.disposition) == (
        Result.LIVE_ANSWER.value, Routing.AGENT_CONNECTED.value, Disposition.INTERESTED.value)
    assert (acall.disposed_by, acall.note, state) == ("console", "wants the gold plan", ContactState.DONE.value)


async def test_an_agent_refuses_a_preview_contact_calls_the_next_and_disposes(db_engine, db_url, shots):
    async with db_engine.begin() as conn:
        camp, members = await seed_campaign(conn, 2, name="preview", first_number=2025550400)
        await conn.execute(update(Campaign.__table__).values(
            mode="preview", window_start=dt.time(0), window_end=dt.time(0), bcw_seconds=0, acw_seconds=300))
        for m, (first, last) in zip(members, (("Ada", "Lovelace"), ("Alan", "Turing"))):
            contact = (await conn.execute(select(CampaignContact.contact_id).where(CampaignContact.id == m))).scalar()
            await conn.execute(update(Contact.__table__).where(Contact.__table__.c.id == contact).values(
                first_name=first, last_name=last, custom={"company": f"{last} Ltd"}))
    plan = ScenarioPlan.from_dict({"default": {"base": "human", "callee": {"hangup_after_bridge": 10}}})
    async with LocalStack(db_engine, plan=plan, speed=5.0) as stack:
        stack.sim.add_phone("PJSIP/agent1", answer_after=1.0, talk_seconds=120)
        await add_agent(db_engine, "preview")
        await stack.assign(camp)
        stack.start()
        driver = await run(browser)
        try:
            with WebServer(db_url) as web:
                await log_in(driver, web.url, "ann")
                await click(driver, "#btn-ready")
                await wait_for(driver, "#card-name", "Ada Lovelace")
                await wait_for(driver, "#card-phase", "Before Call Work")
                await until_db(db_engine, select(CampaignContact.id).where(
                    CampaignContact.id == members[0], CampaignContact.state == ContactState.BCW.value))
                await run(shots.take, driver, "05-preview-offer")
                await click(driver, "#btn-reject")
                await wait_for(driver, "#card-name", "Alan Turing")
                await until_db(db_engine, select(CampaignContact.id).where(
                    CampaignContact.id == members[0], CampaignContact.state == ContactState.REJECTED_BY_OPERATOR.value))
                await click(driver, "#btn-call")
                await wait_for(driver, "#acw-countdown", timeout=60)
                await click(driver, "#disp-call_back")
                await type_into(driver, "#note", "after the board meeting")
                await run(shots.take, driver, "06-preview-after-call-work")
                await click(driver, "#btn-dispose")
                await wait_for(driver, "#waiting")
        finally:
            await run(close, driver)
    async with db_engine.connect() as conn:
        att = (await conn.execute(select(Attempt).where(Attempt.membership_id == members[1]))).one()
        refused = (await conn.execute(select(func.count()).select_from(Attempt).where(
            Attempt.membership_id == members[0]))).scalar()
    assert (att.result, att.routing, att.disposition) == (
        Result.LIVE_ANSWER.value, Routing.AGENT_CONNECTED.value, Disposition.CALL_BACK.value)
    assert att.callback_at is not None and refused == 0  # a refused contact is never dialed


async def test_the_board_shows_the_databases_figures(db_engine, db_url, shots):
    now = dt.datetime.now(dt.timezone.utc)
    async with db_engine.begin() as conn:
        camp, members = await seed_campaign(conn, 4, name="autumn")
        await conn.execute(update(Campaign.__table__).values(
            mode="progressive", queue_name="sales", drop_cap_pct=3.0, state="running",
            start_at=now - dt.timedelta(days=1), stop_at=now + dt.timedelta(days=1)))
        contact = (await conn.execute(select(CampaignContact.contact_id))).scalars().all()
        rows = [dict(result="live_answer", routing="dropped"), dict(result="live_answer", routing="agent_connected"),
                dict(result="busy"), dict(result=None)]
        for m, c, r in zip(members, contact, rows):
            await conn.execute(insert(Attempt.__table__).values(
                id=f"00000000-0000-0000-0000-00000000000{m}", campaign_id=camp, contact_id=c, membership_id=m,
                dialer="local", number="+1", attempt_no=1, queued_at=now, answered_at=now if r["result"] else None,
                ended_at=now if r["result"] else None, charged=False, **r))
        await add_user(conn, "sue", "supervisor", PASSWORD)
        await add_user(conn, "ann", "agent", PASSWORD)
        await roster.set_agent(conn, "ann", "PJSIP/agent1", ["autumn"])
        agent = await roster.agent_of(conn, "ann")
        await roster.request(conn, agent.id, roster.PAUSED, "lunch")
        await roster.applied(conn, await roster.agent_of(conn, "ann"), state=roster.PAUSED, error=None, now=now)
    driver = await run(browser)
    try:
        with WebServer(db_url) as web:
            await log_in(driver, web.url, "sue")
            await wait_for(driver, "#agents", "ann")
            shown = {name: int(await run(lambda n=name: driver.find_element(By.ID, f"fig-{n}").text))
                     for name in ("calls_in_progress", "calls_last_hour", "answered_last_hour", "dropped_last_hour")}
            rate = await wait_for(driver, "tr[data-campaign='autumn'] .drop-rate")
            assert "over-cap" in await run(rate.get_attribute, "class")
            assert (await run(lambda: rate.text)) == "50.0 %"
            assert "paused (lunch)" in await run(lambda: driver.find_element(By.ID, "agents").text)
            await run(shots.take, driver, "07-supervisor-board")
            await click(driver, f"#pause-{camp}")
            await wait_for(driver, "#flash", "stopped")
    finally:
        await run(close, driver)
    a = Attempt.__table__
    async with db_engine.connect() as conn:
        db_figures = {  # every attempt was queued now: "the last hour" is all of them
            "calls_in_progress": (await conn.execute(select(func.count()).where(a.c.result.is_(None)))).scalar(),
            "calls_last_hour": (await conn.execute(select(func.count()).select_from(a))).scalar(),
            "answered_last_hour": (await conn.execute(select(func.count()).where(
                a.c.result == "live_answer"))).scalar(),
            "dropped_last_hour": (await conn.execute(select(func.count()).where(a.c.routing == "dropped"))).scalar(),
        }
        state = (await conn.execute(select(Campaign.state))).scalar()
    assert shown == db_figures == {"calls_in_progress": 1, "calls_last_hour": 4, "answered_last_hour": 2,
                                   "dropped_last_hour": 1}
    assert state == "stopped"
