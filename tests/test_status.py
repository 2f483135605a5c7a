"""`dialer status`: a line per component and Nagios' exit codes; a killed originator and a killed
FastAGI server (real processes, SIGKILL: no goodbye) reported within a heartbeat."""

from __future__ import annotations

import pytest

import asyncio
import datetime as dt
import os
import signal
import socket
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert, update

from agi.cli import main
from agi.db import agi_servers, live_stats
from agi.db.models import Campaign, Dialer, DialerCampaign
from agi.outcomes import CampaignState
from agi.rules.lifecycle import AGI_BEAT_EVERY_S, AGI_STALE_AFTER_S, DIALER_BEAT_EVERY_S, DIALER_SILENT_AFTER_S
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator
from db_seed import seed_campaign

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = str(Path(sys.executable).parent / "dialer")
NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731
STATUS_RUN_S = 3.0  # a `dialer status` run itself, on a loaded machine


def status(url: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["--db", url, "status"])
    return res.exit_code, res.output


async def beat(conn, name: str, age_s: float, ami: bool = True) -> None:
    last = NOW() - dt.timedelta(seconds=age_s)
    did = (await conn.execute(insert(Dialer.__table__).values(name=name, last_heartbeat=last)
                              .returning(Dialer.__table__.c.id))).scalar_one()
    await live_stats.publish(conn, did, live_stats.DialerFigures(ami, 0, 2, "127.0.0.1:4573"), [])


async def test_status_exits_0_healthy_1_degraded_2_down_with_a_line_per_component(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    async with db_engine.begin() as conn:
        await beat(conn, "pbx1", 1)
        await agi_servers.beat(conn, "127.0.0.1:4573", hostname="h", pid=1, live_sessions=3, now=NOW(),
                               started_at=NOW())
    code, out = await asyncio.to_thread(status, url)
    assert code == 0, out
    assert out.splitlines()[0] == "DIALER OK - 1 originator(s) dialing, 1 FastAGI server(s) alive"
    assert "OK    originator pbx1: beating" in out and "OK    FastAGI server 127.0.0.1:4573: beating" in out
    async with db_engine.begin() as conn:
        await beat(conn, "pbx2", 60)  # a second box whose originator died a minute ago
    code, out = await asyncio.to_thread(status, url)
    assert code == 1, out
    assert out.startswith("DIALER DEGRADED - originator pbx2: not beating: last heartbeat 60 s ago")
    assert "DOWN  originator pbx2: not beating" in out
    async with db_engine.begin() as conn:
        await conn.execute(update(Dialer.__table__).where(Dialer.__table__.c.name == "pbx1").values(
            last_heartbeat=NOW() - dt.timedelta(seconds=60)))
    code, out = await asyncio.to_thread(status, url)
    assert code == 2, out  # no originator left dialing


def test_status_of_an_unreachable_database_is_down():
    code, out = status("postgresql://nobody:x@127.0.0.1:1/none")
    assert code == 2 and out.startswith("DIALER DOWN - database: unreachable"), out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until_status(url: str, words: str, code: int, timeout: float) -> float:
    """Seconds until `dialer status` exits ``code`` with ``words`` in its output."""
    start = time.monotonic()
    while True:
        got, out = await asyncio.to_thread(status, url)
        if got == code and words in out:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"after {timeout} s: {got}\n{out}"
        await asyncio.sleep(0.2)


async def test_a_killed_originator_and_a_killed_fastagi_server_are_reported_within_a_heartbeat(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 300, name="spring", first_number=2025556000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=CampaignState.RUNNING.value, lines=4, cps=10, window_start=dt.time(0), window_end=dt.time(0),
            key_timeout=1, key_tries=1))
        did = (await conn.execute(insert(Dialer.__table__).values(
            name="box", lines=4, cps=10, dial_template="PJSIP/{number}@trunk").returning(
            Dialer.__table__.c.id))).scalar_one()
        await conn.execute(insert(DialerCampaign.__table__).values(dialer_id=did, campaign_id=cid))
    address = f"127.0.0.1:{_free_port()}"
    sim = Simulator(speed=5.0, plan=ScenarioPlan.mix(seed=8), ami_port=0)
    await sim.start()
    async with db_engine.begin() as conn:  # the registered dialer's own AMI address is the one used
        await conn.execute(update(Dialer.__table__).where(Dialer.__table__.c.id == did).values(
            ami_host="127.0.0.1", ami_port=sim.ami_port))
    env = {**os.environ, "DIALER_DB_URL": url, "DIALER_LOG_LEVEL": "WARNING",
           "DIALER_AMI_SECRET": "secret", "DIALER_AGI_PUBLIC": address}
    quiet = dict(env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    serve = await asyncio.create_subprocess_exec(DIALER, "serve", "--bind", address, **quiet)
    originate = await asyncio.create_subprocess_exec(DIALER, "originate", "--dialer", "box", **quiet)
    try:
        await _until_status(url, "DIALER OK - 1 originator(s) dialing, 1 FastAGI server(s) alive", 0, 60)
        originate.send_signal(signal.SIGKILL)
        await originate.wait()
        took = await _until_status(url, "DOWN  originator box: not beating", 2, 60)
        assert took <= DIALER_SILENT_AFTER_S + DIALER_BEAT_EVERY_S + STATUS_RUN_S, took
        serve.send_signal(signal.SIGKILL)
        await serve.wait()
        took = await _until_status(url, f"DOWN  FastAGI server {address}: not beating", 2, 60)
        assert took <= AGI_STALE_AFTER_S + AGI_BEAT_EVERY_S + STATUS_RUN_S, took
    finally:
        for proc in (originate, serve):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await sim.stop()
