"""Prometheus metrics and /healthz: a real `dialer run --metrics-bind` scraped during a simulated
campaign (`dialer sim`), its counters adding up to the attempts table; the FastAGI instruments on
real sockets; /healthz per process; labels bounded (no attempt id, no number, ever)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import and_, func, insert, or_, select, update

from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignContact, Dialer, DialerCampaign
from agi.fastagi import FastAGIServer
from agi.metrics.http import MetricsServer
from agi.outcomes import DIAL_RESULTS, CampaignState
from db_seed import seed_campaign
from test_fastagi_server import Flows, asterisk
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = str(Path(sys.executable).parent / "dialer")
_a = Attempt.__table__
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
NUMBER = re.compile(r"\+?\d{7,}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from Prometheus' text format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


async def test_a_scrape_during_a_simulated_campaign_adds_up_to_the_attempts_table(db_engine, tmp_path):
    url = db_engine.url.render_as_string(hide_password=False)
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 60, name="spring", first_number=2025551000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            state=CampaignState.RUNNING.value, mode="progressive", queue_name="sales", lines=8, cps=20,
            window_start=dt.time(0), window_end=dt.time(0), key_timeout=1, key_tries=1, max_attempts=1))
        did = (await conn.execute(insert(Dialer.__table__).values(
            name="box", lines=8, cps=20, dial_template="PJSIP/{number}@trunk").returning(
            Dialer.__table__.c.id))).scalar_one()
        await conn.execute(insert(DialerCampaign.__table__).values(dialer_id=did, campaign_id=cid))
    agi_port, metrics_port = free_port(), free_port()
    sim_log, run_log = tmp_path / "sim.log", tmp_path / "run.log"
    sim = subprocess.Popen([DIALER, "sim", "--ami-port", "0", "--agi", f"127.0.0.1:{agi_port}", "--speed", "20",
                            "--agents", "sales=3", "--seed", "4"], stdout=sim_log.open("w"), stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    run = None
    try:
        end = time.monotonic() + 30
        while not (found := re.search(r"AMI [\d.]+:(\d+)", sim_log.read_text())):
            assert time.monotonic() < end and sim.poll() is None, sim_log.read_text()
            time.sleep(0.1)
        async with db_engine.begin() as conn:  # the registered dialer's own AMI address is the one used
            await conn.execute(update(Dialer.__table__).where(Dialer.__table__.c.id == did).values(
                ami_host="127.0.0.1", ami_port=int(found.group(1))))
        env = {**os.environ, "DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret",
               "DIALER_LOG_LEVEL": "WARNING"}
        run = subprocess.Popen([DIALER, "run", "--dialer", "box", "--bind", f"127.0.0.1:{agi_port}",
                                "--metrics-bind", f"127.0.0.1:{metrics_port}"], env=env, stdout=run_log.open("w"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs = ((sim, sim_log), (run, run_log))

        async def dialing() -> bool:
            try:
                return total(samples((await asyncio.to_thread(get, metrics_port, "/metrics"))[1]),
                             "dialer_originates_total") >= 5
            except OSError:
                return False

        await until(dialing, 60, "a scrape mid-campaign showing Originates sent", *procs)
        mid = samples((await asyncio.to_thread(get, metrics_port, "/metrics"))[1])
        assert total(mid, "dialer_ami_connected", dialer="box") == 1
        assert ("dialer_lines_allowed", (("campaign", "spring"), ("dialer", "box"))) in mid
        assert total(mid, "dialer_database_up") == 1

        async def settled() -> bool:
            async with db_engine.connect() as conn:
                open_ = (await conn.execute(select(func.count()).where(_a.c.campaign_id == cid,
                                                                       _a.c.result.is_(None)))).scalar()
                cc = CampaignContact.__table__
                open_states = ["pending", "dialing", "in_call", "waiting_agent"]
                pending = (await conn.execute(select(func.count()).where(
                    cc.c.campaign_id == cid, cc.c.state.in_(open_states)))).scalar()
            return open_ == 0 and pending == 0

        await until(settled, 180, "the campaign worked through its contacts", *procs)
        status, text = await asyncio.to_thread(get, metrics_port, "/metrics")
        assert status == 200
        end_ = samples(text)
        run.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(run.wait, 60) == 0, run_log.read_text()[-3000:]
    finally:
        for p in (run, sim):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)

    async with db_engine.connect() as conn:
        by_result = dict((await conn.execute(select(_a.c.result, func.count()).where(_a.c.campaign_id == cid)
                                             .group_by(_a.c.result))).all())
        answered = (await conn.execute(select(func.count()).where(_a.c.campaign_id == cid,
                                                                  _a.c.answered_at.is_not(None)))).scalar()
        person = or_(_a.c.result == "live_answer", and_(_a.c.result == "other", _a.c.routing == "dropped"))
        lives, drops = (await conn.execute(select(func.count().filter(person),
                                                  func.count().filter(person, _a.c.routing == "dropped"))
                                           .where(_a.c.campaign_id == cid))).one()
    dialed = sum(n for r, n in by_result.items() if r in {x.value for x in DIAL_RESULTS})
    assert dialed > 20 and answered > 5
    # the originator's own counters: one Originate per dialed attempt, each ended once at Asterisk
    assert total(end_, "dialer_originates_total", campaign="spring", dialer="box") == dialed
    assert total(end_, "dialer_originate_responses_total", campaign="spring") == dialed
    assert total(end_, "dialer_originate_responses_total", reason="answered") == answered
    # results where they are written (originator and flows alike), counted in the database
    assert {ls[1][1]: v for (n, ls), v in end_.items() if n == "dialer_attempts_finished_total"} == by_result
    assert total(end_, "dialer_live_answers_total", campaign="spring") == lives
    assert total(end_, "dialer_drops_total", campaign="spring") == drops
    # the FastAGI side: every answered call ran outbound (or fax, when detected) once, none failed
    started = {dict(ls)["flow"]: v for (n, ls), v in end_.items() if n == "dialer_agi_sessions_started_total"}
    assert started.get("outbound", 0) + started.get("fax", 0) == answered
    assert total(end_, "dialer_agi_sessions_failed_total") == 0
    assert total(end_, "dialer_agi_command_duration_seconds_count", command="ANSWER") > 0
    assert total(end_, "dialer_db_write_duration_seconds_count", kind="start_attempts") > 0
    assert total(end_, "dialer_db_write_duration_seconds_count", kind="heartbeat") > 0
    # bounded labels: names and codes only
    for (_n, labels), _v in end_.items():
        for key, value in labels:
            assert not UUID.search(value) and not NUMBER.fullmatch(value), (key, value)


async def test_fastagi_sessions_and_command_latency_are_counted_on_real_sockets(db_engine):
    flows = Flows()
    server = FastAGIServer(flows.router(), port=0, header_timeout=0.3, linger=0.2)
    await server.start()
    metrics = MetricsServer(db_engine, "127.0.0.1:0", agi_server=server)
    await metrics.start()
    try:
        before = samples((await asyncio.to_thread(get, metrics.port, "/metrics"))[1])
        await asterisk(server.port, "echo?campaign=1")
        await asterisk(server.port, "echo?campaign=1", respond=lambda c: ["520 Invalid command syntax."])
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\n")  # and never the blank line
        await asyncio.sleep(0.6)
        writer.close()
        for _ in range(50):
            if server.sessions == 0:
                break
            await asyncio.sleep(0.05)
        after = samples((await asyncio.to_thread(get, metrics.port, "/metrics"))[1])
    finally:
        await metrics.close()
        await server.shutdown(1)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("dialer_agi_sessions_started_total", flow="echo") == 2
    assert delta("dialer_agi_sessions_failed_total", flow="echo") == 1  # the 520 reply
    assert delta("dialer_agi_sessions_failed_total", flow="none") == 1  # the header that never ended
    assert total(after, "dialer_agi_sessions_active") == 0
    assert delta("dialer_agi_command_duration_seconds_count", command="ANSWER") == 2
    assert delta("dialer_agi_command_duration_seconds_count", command="GET VARIABLE") == 1


async def test_healthz_is_200_while_the_process_can_work_and_503_when_it_cannot(db_engine):
    flows = Flows()
    server = FastAGIServer(flows.router(), port=0)
    await server.start()
    metrics = MetricsServer(db_engine, "127.0.0.1:0", agi_server=server)
    await metrics.start()
    try:
        status, body = await asyncio.to_thread(get, metrics.port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        assert (await asyncio.to_thread(get, metrics.port, "/nope"))[0] == 404
        await server.shutdown(1)  # draining: takes no new call
        status, body = await asyncio.to_thread(get, metrics.port, "/healthz")
        assert status == 503 and "not accepting calls" in body, body
    finally:
        await metrics.close()
    gone = make_engine("postgresql://nobody:x@127.0.0.1:1/none")
    metrics = MetricsServer(gone, "127.0.0.1:0")
    await metrics.start()
    try:
        status, body = await asyncio.to_thread(get, metrics.port, "/healthz")
        assert status == 503 and "unreachable" in body, body
        status, text = await asyncio.to_thread(get, metrics.port, "/metrics")  # still scrapable: says the DB is down
        assert status == 200 and total(samples(text), "dialer_database_up") == 0
    finally:
        await metrics.close()
        await gone.dispose()


def test_a_busy_metrics_address_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "m.db"
        subprocess.run([DIALER, "--db", f"sqlite:///{db}", "db", "upgrade"], check=True, capture_output=True)
        done = subprocess.run([DIALER, "--db", f"sqlite:///{db}", "serve", "--bind", f"127.0.0.1:{free_port()}",
                               "--metrics-bind", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot serve metrics on 127.0.0.1" in done.stderr, done.stderr
