"""QA: what an operator meets starting the services by hand, as real `dialer` processes.

A wrong database URL or a database without the schema is a one-line error saying what to do (no
traceback, no password), for `serve` and `originate` as for the admin commands; `originate`
connects to the AMI address registered with `dialers add --ami` and warns about an unknown name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert

from agi.db.models import Dialer
from agi.sim.simulator import Simulator

DIALER = [str(Path(sys.executable).parent / "dialer")]
PASSWORD = "pw-not-to-show"


def clean_env(env: dict) -> dict:
    """The test's environment without any DIALER_* of the machine, plus ``env``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}, **env}


async def run_dialer(*args: str, env: dict, timeout: float = 30.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*DIALER, *args, env=clean_env(env),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:  # it hung: do not leave it running after the test
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode()


def unreachable(url: str, tmp_path: Path) -> str:
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/no/such/dir/dialer.db"
    return f"postgresql://dialer:{PASSWORD}@127.0.0.1:1/dialer"


@pytest.mark.parametrize("command", [["serve", "--bind", "127.0.0.1:0"], ["originate", "--dialer", "box1"],
                                     ["campaign", "list"]])
async def test_an_unreachable_database_is_one_clear_line_and_exit_1(db_url, tmp_path, command):
    code, out = await run_dialer(*command, env={"DIALER_DB_URL": unreachable(db_url, tmp_path),
                                                "DIALER_AMI_PORT": "1"})
    assert code == 1, out
    assert "Traceback" not in out and PASSWORD not in out
    assert "DIALER_DB_URL" in out  # says what to check


@pytest.mark.parametrize("command", [["serve", "--bind", "127.0.0.1:0"], ["originate", "--dialer", "box1"]])
async def test_services_on_a_database_without_the_schema_say_run_db_upgrade(db_url, command):
    code, out = await run_dialer(*command, env={"DIALER_DB_URL": db_url, "DIALER_AMI_PORT": "1"})
    assert code == 1, out
    assert "Traceback" not in out and "dialer db upgrade" in out


async def _originate_until(env: dict, needle: str, timeout: float = 20.0) -> str:
    proc = await asyncio.create_subprocess_exec(*DIALER, "originate", "--dialer", "box1",
                                                env=clean_env(env), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    seen = []
    try:
        async with asyncio.timeout(timeout):
            while needle not in "".join(seen):
                line = await proc.stdout.readline()
                if not line:
                    break
                seen.append(line.decode())
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    return "".join(seen) + rest.decode()


async def test_originate_uses_the_ami_address_registered_for_the_dialer(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    try:
        async with db_engine.begin() as conn:
            await conn.execute(insert(Dialer.__table__).values(name="box1", ami_host="127.0.0.1",
                                                               ami_port=sim.ami_port))
        # no DIALER_AMI_HOST/PORT: the registered address, not the default 127.0.0.1:5038
        out = await _originate_until({"DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret"}, "logged in")
    finally:
        await sim.stop()
    assert f"127.0.0.1:{sim.ami_port}: logged in" in out, out


async def test_originate_warns_when_the_dialer_name_is_not_registered(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    try:
        out = await _originate_until({"DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret",
                                      "DIALER_AMI_PORT": str(sim.ami_port)}, "logged in")
    finally:
        await sim.stop()
    assert "'box1' is not registered" in out and "dialer dialers list" in out, out


async def test_a_second_originator_for_the_same_dialer_refuses_to_run(db_engine):
    # two `originate --dialer box1` at once each filled box1's lines: the record showed 8 calls on 4 lines
    url = db_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    env = {"DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret", "DIALER_AMI_PORT": str(sim.ami_port)}
    first = await asyncio.create_subprocess_exec(*DIALER, "originate", "--dialer", "box1", env=clean_env(env),
                                                 stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(20):
            while b"logged in" not in await first.stderr.readline():
                pass
        code, out = await run_dialer("originate", "--dialer", "box1", env=env)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 30)
        await sim.stop()
    assert code == 1 and "'box1' is already running" in out, out
    assert first.returncode == 0
