"""No FastAGI server, no dialing: `dialer serve` beats in the database, and an originator dials a
campaign only while a server its calls are sent to (__DIALER_AGI) is alive; otherwise the
campaign's state on that dialer says why, logged once, and dialing resumes by itself."""

from __future__ import annotations

import pytest

import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, update

from agi.ami.client import AMIClient
from agi.cli import main
from agi.db import agi_servers
from agi.db.models import AgiServer, Campaign, Dialer, DialerCampaign
from agi.local import LocalStack
from agi.originator.dialer import Originator
from agi.outcomes import CampaignState
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = [str(Path(sys.executable).parent / "dialer")]
ALL_DAY = dict(window_start=dt.time(0, 0), window_end=dt.time(0, 0))
PAUSED = CampaignState.PAUSED_NO_AGI_SERVER


async def make_campaign(engine, n: int, first: int) -> int:
    async with engine.begin() as conn:
        cid, _ = await seed_campaign(conn, n, first_number=first)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            lines=4, cps=20, key_timeout=1, key_tries=1, **ALL_DAY))
    return cid


async def state_on(engine, cid: int, dialer: str) -> str:
    d, dc = Dialer.__table__, DialerCampaign.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(dc.c.state).join(d, d.c.id == dc.c.dialer_id).where(
            dc.c.campaign_id == cid, d.c.name == dialer))).scalar_one()


def paused_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "no FastAGI server alive" in r.getMessage()]


def test_agi_addresses_are_normalised_for_matching():
    assert agi_servers.agi_addresses("10.0.0.5") == ("10.0.0.5:4573",)
    assert agi_servers.agi_addresses("10.0.0.5:4600, 10.0.0.6") == ("10.0.0.5:4600", "10.0.0.6:4573")
    assert agi_servers.agi_addresses("") == ()


async def test_a_stop_says_the_calls_still_up_and_after_the_drain_says_none(db_engine):
    """`dialer serve` marks itself stopped when draining starts (with the calls it still has) and
    again once they are done: the row then says 0, whenever the last beat was taken."""
    from agi.presence import AgiPresence

    live = [3]
    presence = AgiPresence(db_engine, "127.0.0.1:4999", lambda: live[0], every=60)

    async def row():
        async with db_engine.connect() as conn:
            return (await conn.execute(select(AgiServer.__table__.c.stopped_at, AgiServer.__table__.c.live_sessions)
                                       .where(AgiServer.__table__.c.address == "127.0.0.1:4999"))).one()

    await presence.start()  # beats once with 3 calls up
    live[0] = 2
    await presence.stop()  # draining starts
    stopped_at, sessions = await row()
    assert stopped_at is not None and sessions == 2
    live[0] = 0
    await presence.stop()  # drained
    assert await row() == (stopped_at, 0)  # the stop keeps its first time


async def test_a_stopped_fastagi_server_pauses_dialing_and_a_new_one_resumes_it(db_engine, caplog):
    caplog.set_level(logging.INFO, logger="agi.originator")
    cid = await make_campaign(db_engine, 40, 2025554000)
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=20.0, lines=4,
                          cps=20) as stack:
        await stack.presence.stop()  # `dialer serve` stopping: says so at once
        await stack.assign(cid)
        stack.start()
        await until(lambda: _is(db_engine, cid, PAUSED), 10, "paused for want of a FastAGI server")
        await asyncio.sleep(1.5)  # several ticks of the dial loop
        assert len(stack.sim.record) == 0  # nothing dialed into a missing server
        res = await asyncio.to_thread(CliRunner().invoke, main, [
            "--db", db_engine.url.render_as_string(hide_password=False), "campaign", "show", str(cid), "--json"])
        assert '"paused_no_agi_server"' in res.output, res.output
        await stack.presence.start()  # a server beats again: dialing resumes by itself
        await until(lambda: _is(db_engine, cid, CampaignState.RUNNING), 10, "running again")
        await until(lambda: _some(stack), 10, "calls placed again")
    assert len(paused_lines(caplog)) == 1  # one line, not one per call or tick


async def test_a_killed_dialer_serve_process_pauses_dialing_within_its_heartbeat(db_engine, caplog):
    """The real `dialer serve`, killed with SIGKILL (no goodbye): its beat goes stale, the originator
    stops dialing; a new `dialer serve` on the same address and dialing goes on."""
    caplog.set_level(logging.INFO, logger="agi.originator")
    url = db_engine.url.render_as_string(hide_password=False)
    cid = await make_campaign(db_engine, 400, 2025554500)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    serve = await _spawn_serve(url, address)
    sim = Simulator(speed=10.0, plan=ScenarioPlan.mix(seed=21), ami_port=0)
    await sim.start()
    ami = AMIClient("127.0.0.1", sim.ami_port, "dialer", "secret", action_timeout=5.0, backoff=(0.1, 2.0))
    await ami.connect()
    orig = Originator(db_engine, ami, "box", agi_address=address, clock=sim.clock.now, tick=0.05, lines=4, cps=20,
                      dial_template="PJSIP/{number}@trunk")
    stop = asyncio.Event()
    try:
        await until(lambda: _beats(db_engine, address), 20, "dialer serve's first heartbeat")
        await start_and_assign(db_engine, orig, cid)
        task = asyncio.create_task(orig.run(stop, drain_deadline=15.0))
        await until(lambda: _count(sim, 8), 30, "calls placed")
        serve.send_signal(signal.SIGKILL)
        await serve.wait()
        killed_at = asyncio.get_running_loop().time()
        await until(lambda: _is(db_engine, cid, PAUSED, "box"), 20, "paused after the kill")
        assert asyncio.get_running_loop().time() - killed_at < 12  # within a few missed beats
        await asyncio.sleep(0.5)  # Originates already on their way land
        placed = len(sim.record)
        await asyncio.sleep(2.0)
        assert len(sim.record) == placed  # nothing dialed while no server is alive
        serve = await _spawn_serve(url, address)
        await until(lambda: _is(db_engine, cid, CampaignState.RUNNING, "box"), 20, "running again")
        await until(lambda: _count(sim, placed + 1), 20, "dialing resumed")
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        stop.set()
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
            await asyncio.wait_for(serve.wait(), 30)
        await ami.close()
        await sim.stop()
    assert len(paused_lines(caplog)) == 1
    async with db_engine.connect() as conn:  # the graceful SIGTERM said so in its row
        row = (await conn.execute(select(AgiServer.__table__).where(AgiServer.__table__.c.address == address))).one()
    assert row.stopped_at is not None and row.live_sessions == 0


async def start_and_assign(engine, orig: Originator, cid: int) -> None:
    """Register the originator and give it the campaign, running (`campaign assign` + `start`)."""
    await orig.start()
    async with engine.begin() as conn:
        await conn.execute(DialerCampaign.__table__.insert().values(
            dialer_id=orig.dialer.id, campaign_id=cid, state=CampaignState.SCHEDULED.value))
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=CampaignState.RUNNING.value))


async def _is(engine, cid, state, dialer="local") -> bool:
    return await state_on(engine, cid, dialer) == state.value


async def _some(stack) -> bool:
    return len(stack.sim.record) > 0


async def _count(sim, n: int) -> bool:
    return len(sim.record) >= n


async def _beats(engine, address: str) -> bool:
    async with engine.connect() as conn:
        fresh = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
        return bool(await agi_servers.alive(conn, (address,), fresh))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _spawn_serve(url: str, address: str):
    env = {**os.environ, "DIALER_DB_URL": url, "DIALER_LOG_LEVEL": "WARNING"}
    return await asyncio.create_subprocess_exec(*DIALER, "serve", "--bind", address, env=env,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)

