"""The originator as the real `dialer originate` process: killed with SIGKILL and restarted, wrong
AMI secret, and two dialers (two simulated Asterisk boxes) sharing one PostgreSQL campaign."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, update

from agi.cli import main
from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignContact, Dialer, DialerCampaign
from agi.fastagi import FastAGIServer
from agi.flows import build_router
from agi.local import LocalStack
from agi.outcomes import CampaignState, ContactState, Result
from agi.presence import AgiPresence
from agi.settings import Settings
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = [str(Path(sys.executable).parent / "dialer")]
ALL_DAY = dict(window_start=dt.time(0, 0), window_end=dt.time(0, 0))


async def make_campaign(engine, n: int, first: int, dialers: list[str], **values) -> int:
    async with engine.begin() as conn:
        cid, _ = await seed_campaign(conn, n, first_number=first)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=CampaignState.RUNNING.value, lines=10, cps=20, key_timeout=1, key_tries=1,
            retry_rules={"busy": 1, "service_error": 1}, max_attempts=3, **ALL_DAY, **values))
        for name in dialers:
            dialer_id = (await conn.execute(insert(Dialer.__table__).values(
                name=name, lines=10, cps=20, dial_template="PJSIP/{number}@trunk").returning(Dialer.__table__.c.id))).scalar_one()
            await conn.execute(insert(DialerCampaign.__table__).values(dialer_id=dialer_id, campaign_id=cid))
    return cid


async def register_ami(url: str, name: str, ami_port: int) -> None:
    """The registered dialer's own AMI address is the one its originator uses (not DIALER_AMI_*)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(Dialer.__table__).where(Dialer.__table__.c.name == name).values(
                ami_host="127.0.0.1", ami_port=ami_port))
    finally:
        await engine.dispose()


async def spawn_originator(url: str, name: str, ami_port: int, agi_port: int, secret: str = "secret"):
    await register_ami(url, name, ami_port)
    env = {**os.environ, "DIALER_DB_URL": url, "DIALER_AMI_PORT": str(ami_port), "DIALER_AMI_SECRET": secret,
           "DIALER_AGI_PUBLIC": f"127.0.0.1:{agi_port}", "DIALER_LOG_LEVEL": "WARNING"}
    return await asyncio.create_subprocess_exec(*DIALER, "originate", "--dialer", name, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def open_count(engine, cid: int) -> int:
    cc = CampaignContact.__table__
    async with engine.connect() as conn:
        rows = (await conn.execute(select(cc.c.state).where(cc.c.campaign_id == cid))).scalars().all()
    return sum(1 for s in rows if s in (ContactState.PENDING.value, ContactState.DIALING.value,
                                        ContactState.IN_CALL.value, ContactState.WAITING_AGENT.value))


@pytest.fixture
def pg_engine(db_engine):
    if db_engine.dialect.name != "postgresql":
        pytest.skip("several processes on one campaign: PostgreSQL")
    return db_engine


async def test_originator_killed_with_sigkill_and_restarted_leaves_nothing_dangling(pg_engine):
    url = pg_engine.url.render_as_string(hide_password=False)
    cid = await make_campaign(pg_engine, 60, 2025557000, ["box1"])
    server = FastAGIServer(build_router(Settings(), pg_engine), port=0)
    await server.start()
    presence = AgiPresence(pg_engine, f"127.0.0.1:{server.port}", lambda: server.sessions)
    await presence.start()  # the originator dials only while a FastAGI server beats
    # slow enough that calls are ringing when the process dies
    sim = Simulator(agi_port=server.port, speed=4.0, plan=ScenarioPlan.mix(seed=11), ami_port=0)
    await sim.start()
    try:
        proc = await spawn_originator(url, "box1", sim.ami_port, server.port)
        async with asyncio.timeout(60):
            while len(sim.record) < 15:
                await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        a = Attempt.__table__
        async with pg_engine.connect() as conn:
            dangling_at_kill = (await conn.execute(select(a.c.id).where(a.c.result.is_(None)))).scalars().all()
        assert dangling_at_kill, "the kill should catch calls in progress"
        await asyncio.sleep(1.0)
        proc = await spawn_originator(url, "box1", sim.ami_port, server.port)
        await until(lambda: _settled(pg_engine, cid), 120, "campaign settles after the restart")
        proc.send_signal(signal.SIGTERM)  # graceful: stops dialing, lets calls finish, exits 0
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        await sim.stop()
        await presence.stop()
        await server.shutdown(2.0)
    async with pg_engine.connect() as conn:
        rows = (await conn.execute(select(a).where(a.c.campaign_id == cid))).all()
    by_id = {r.id: r for r in rows}
    assert all(r.result is not None for r in rows)  # nothing left hanging
    ids = [rec.channel_id for rec in sim.record]
    assert len(ids) == len(set(ids)) and set(ids) <= set(by_id)  # never originated twice
    for attempt_id in dangling_at_kill:  # each resolved: by its call's own outcome or the reconciler
        assert by_id[attempt_id].result is not None


async def _settled(engine, cid: int) -> bool:
    a = Attempt.__table__
    async with engine.connect() as conn:
        open_attempts = (await conn.execute(select(a.c.id).where(a.c.campaign_id == cid, a.c.result.is_(None)))).all()
    return not open_attempts and await open_count(engine, cid) == 0


async def test_wrong_ami_secret_is_a_clear_error_and_a_non_zero_exit(pg_engine):
    url = pg_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    try:
        proc = await spawn_originator(url, "box1", sim.ami_port, 1, secret="not-the-secret")
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await sim.stop()
    assert proc.returncode not in (0, None)
    text = err.decode()
    assert "Authentication failed" in text and "DIALER_AMI_SECRET" in text
    assert "not-the-secret" not in text  # secrets never in logs


async def test_two_dialers_on_one_campaign_never_dial_the_same_contact_at_once(pg_engine):
    async with pg_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 120, first_number=2025558000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            lines=10, cps=50, key_timeout=1, key_tries=1, retry_rules={"busy": 1, "service_error": 1},
            max_attempts=3, **ALL_DAY))
    plan = ScenarioPlan.mix(seed=12)
    async with LocalStack(pg_engine, plan=plan, speed=100.0, dialer="east", lines=10, cps=50) as east, \
            LocalStack(pg_engine, plan=plan, speed=100.0, dialer="west", lines=10, cps=50) as west:
        await east.assign(cid)
        await west.assign(cid)
        east.start()
        west.start()
        await east.settle(cid, timeout=120, retry_horizon_s=120)
        await west.settle(cid, timeout=120, retry_horizon_s=120)
        records = list(east.sim.record) + list(west.sim.record)
        assert len(east.sim.record) > 10 and len(west.sim.record) > 10  # both dialed
        show = await asyncio.to_thread(CliRunner().invoke, main, [
            "--db", pg_engine.url.render_as_string(hide_password=False), "campaign", "show", str(cid), "--json"])
    assert show.exit_code == 0, show.output
    assert {d["dialer"] for d in json.loads(show.output)["dialers"]} == {"east", "west"}
    ids = [r.channel_id for r in records]
    assert len(ids) == len(set(ids))
    by_number: dict[str, list] = {}
    for r in records:
        by_number.setdefault(r.number, []).append((r.originated_at, r.ended_at or r.originated_at))
    for number, spans in by_number.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"{number} dialed by both dialers at once"


async def test_dialer_run_serves_fastagi_and_dials_then_stops_on_sigterm(db_engine):
    """`dialer run`: FastAGI server + originator in one process, for a single box."""
    import socket

    url = db_engine.url.render_as_string(hide_password=False)
    cid = await make_campaign(db_engine, 8, 2025557500, ["solo"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        agi_port = s.getsockname()[1]
    sim = Simulator(agi_port=agi_port, speed=20.0, plan=ScenarioPlan.table({}, default="human"), ami_port=0)
    await sim.start()
    await register_ami(url, "solo", sim.ami_port)
    env = {**os.environ, "DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret", "DIALER_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(*DIALER, "run", "--dialer", "solo", "--bind", f"127.0.0.1:{agi_port}",
                                                env=env, stderr=asyncio.subprocess.PIPE)
    try:
        await until(lambda: _settled(db_engine, cid), 60, "all 8 calls answered and finished")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await sim.stop()
    a = Attempt.__table__
    async with db_engine.connect() as conn:
        results = (await conn.execute(select(a.c.result).where(a.c.campaign_id == cid))).scalars().all()
    assert results == [Result.LIVE_ANSWER.value] * 8  # the flows ran in the same process
    assert all(rec.agi_scripts for rec in sim.record)
