"""`dialer top` on a running simulated campaign shows what the database holds, figure by figure.

The campaign runs in this test's event loop (simulator, FastAGI server, originator: agi.local);
`dialer top --json` and `--once` run as real processes while that loop is held still (a blocking
subprocess call), and the expected figures are read right then with plain queries of the test's
own, so nothing moves between what top read and what the test reads. Then the live view itself in
a real terminal (tmux): launched, a frame captured, q quits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import and_, case, create_engine, func, or_, select, update

from agi import live
from agi.cli._top_view import frame
from agi.db.models import (
    AgiServer,
    Attempt,
    Campaign,
    CampaignAgentTime,
    CampaignContact,
    CampaignLive,
    Dialer,
    DialerCampaign,
    DialerLive,
)
from agi.local import LocalStack
from agi.outcomes import CampaignState
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = str(Path(sys.executable).parent / "dialer")
_a, _cc, _cl = Attempt.__table__, CampaignContact.__table__, CampaignLive.__table__


def sync_engine(async_engine):
    url = async_engine.url
    return create_engine(url.set(drivername="sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"))


def top(url: str, *runs: tuple[str, ...], columns: int = 80) -> list[str]:
    """`dialer top ARGS` for each of ``runs``, as processes side by side, while this test's event loop
    stands still (a blocking wait: the simulator, FastAGI server and originator in it wait too)."""
    procs = [subprocess.Popen([DIALER, "--db", url, "top", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "COLUMNS": str(columns)}, stdin=subprocess.DEVNULL)
             for args in runs]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


def expected(engine, cid: int, now: dt.datetime) -> dict:
    """The figures, by the test's own queries (the drop rule as docs/outcomes.md states it)."""
    answered = func.coalesce(_a.c.answered_at, _a.c.queued_at)
    person = or_(_a.c.result == "live_answer", and_(_a.c.result == "other", _a.c.routing == "dropped"))
    dropped = and_(person, _a.c.routing == "dropped")
    used_line = or_(_a.c.result.is_(None), _a.c.result.notin_(["no_phone", "dnc", "invalid_number",
                                                               "forbidden_destination"]))
    hour = now.replace(minute=0, second=0, microsecond=0)
    with engine.connect() as conn:
        window_h = conn.execute(select(Campaign.__table__.c.drop_window_hours).where(
            Campaign.__table__.c.id == cid)).scalar_one()

        def drops(since):
            row = conn.execute(select(func.sum(case((dropped, 1), else_=0)), func.sum(case((person, 1), else_=0)))
                               .where(_a.c.campaign_id == cid, answered >= since)).one()
            return int(row[0] or 0), int(row[1] or 0)

        at = CampaignAgentTime.__table__
        busy, logged = conn.execute(select(func.sum(at.c.busy_agent_seconds), func.sum(at.c.logged_agent_seconds))
                                    .where(at.c.campaign_id == cid, at.c.hour == hour)).one()
        d, dc, dl = Dialer.__table__, DialerCampaign.__table__, DialerLive.__table__
        return {
            "window_h": window_h,
            "drops_window": drops(now - dt.timedelta(hours=window_h)),
            "drops_hour": drops(now - dt.timedelta(hours=1)),
            "pace": conn.execute(select(func.count()).where(_a.c.campaign_id == cid, used_line,
                                                            _a.c.queued_at >= now - dt.timedelta(hours=1))).scalar(),
            "occupancy": None if not logged else 100.0 * busy / logged,
            "contacts": dict(conn.execute(select(_cc.c.state, func.count()).where(_cc.c.campaign_id == cid)
                                          .group_by(_cc.c.state)).all()),
            "live": conn.execute(select(_cl, d.c.name).join(d, d.c.id == _cl.c.dialer_id)
                                 .where(_cl.c.campaign_id == cid)).one()._asdict(),
            "state": conn.execute(select(dc.c.state).where(dc.c.campaign_id == cid)).scalar_one(),
            "dialer": conn.execute(select(d, dl).join(dl, dl.c.dialer_id == d.c.id)).one()._asdict(),
            "servers": [r._asdict() for r in conn.execute(select(AgiServer.__table__)).all()],
        }


def pct(dropped: int, live: int) -> str:
    return f"{100.0 * dropped / live:.2f}%" if live else "–"


def check_json(snap: dict, want: dict) -> None:
    [c] = snap["campaigns"]
    assert (c["drop_rate_window"]["dropped"], c["drop_rate_window"]["live"]) == want["drops_window"]
    assert (c["drop_rate_hour"]["dropped"], c["drop_rate_hour"]["live"]) == want["drops_hour"]
    assert c["attempts_last_hour"] == want["pace"]
    assert c["occupancy_pct"] == pytest.approx(want["occupancy"])
    assert c["contacts"] == want["contacts"]
    [on] = c["dialers"]
    live = want["live"]
    assert on["state"] == want["state"] == live["state"] and on["reason"] == live["reason"]
    assert on["figures"] == {k: live[k] for k in on["figures"]}
    [o] = snap["originators"]
    assert o["beating"] and (o["ami_connected"], o["lines_in_use"]) == (want["dialer"]["ami_connected"],
                                                                         want["dialer"]["lines_in_use"])
    assert [(s["address"], s["live_sessions"], s["alive"]) for s in snap["agi_servers"]] == [
        (s["address"], s["live_sessions"], True) for s in want["servers"]]


def check_frame(text: str, want: dict) -> None:
    """Every figure of the frame, read back from the text a person sees."""
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    (dw, lw), (dh, lh) = want["drops_window"], want["drops_hour"]
    assert (f"drop rate {pct(dw, lw)} over {want['window_h']} h ({dw}/{lw}), "
            f"{pct(dh, lh)} last hour ({dh}/{lh})") in text, text
    occ = "–" if want["occupancy"] is None else f"{want['occupancy']:.0f}%"
    assert f"occupancy {occ} this hour · {want['pace']} attempts in the last hour" in text, text
    k = want["contacts"]
    in_call = sum(k.get(s, 0) for s in ("dialing", "in_call", "waiting_agent"))
    assert (f"contacts {k.get('pending', 0)} pending · {k.get('retry_scheduled', 0)} retry later · {in_call} in call · "
            f"{k.get('done', 0)} done · {k.get('skipped', 0)} skipped") in text, text
    f = want["live"]
    assert f"  local  running: {f['reason']}" in text, text
    level = "–" if f["dial_level"] is None else f"{f['dial_level']:.2f}"
    start = "–" if f["calls_to_start"] is None else str(f["calls_to_start"])
    row = [f"{f['lines_in_use']}/{f['lines_allowed']}", level, start] + [str(f[k]) for k in (
        "ringing", "detecting", "in_ivr", "waiting", "agents_ready", "agents_in_call", "agents_acw", "agents_paused")]
    assert any(line.split() == ["local", *row] for line in lines), (row, text)
    d = want["dialer"]
    assert re.search(rf"local  beating · last .* · AMI connected · {d['lines_in_use']}/{d['lines']} lines", text), text
    for s in want["servers"]:
        assert f"{s['address']}  alive · {s['live_sessions']} sessions" in text, text


async def last_beat(engine) -> dt.datetime | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(Dialer.__table__.c.last_heartbeat))).scalar()


async def beat_after(engine, beat: dt.datetime | None) -> bool:
    return await last_beat(engine) != beat


async def test_dialer_top_shows_a_running_simulated_campaign_as_the_database_has_it(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 200, name="spring")
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            mode="predictive", queue_name="sales", lines=12, cps=20, window_start=dt.time(0), window_end=dt.time(0),
            key_timeout=2, key_tries=1, drop_window_hours=24))
    queues = {"sales": QueueConfig("sales", agents=4, talk_seconds=(40.0, 150.0), acw_seconds=(5.0, 20.0))}
    url = db_engine.url.render_as_string(hide_password=False)
    sync = sync_engine(db_engine)
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=5), queues=queues, speed=8.0, lines=12,
                          cps=20) as stack:
        await stack.assign(cid)
        stack.start()

        async def busy() -> bool:  # agents talking, persons answered, calls up: every figure has something
            async with db_engine.connect() as conn:
                row = (await conn.execute(select(_cl.c.agents_in_call, _cl.c.lines_in_use))).first()
                lives = (await conn.execute(select(func.count()).where(_a.c.result == "live_answer"))).scalar()
            return row is not None and row.agents_in_call > 0 and row.lines_in_use > 0 and lives >= 3

        await until(busy, 90, "agents in calls and live answers")
        beat = await last_beat(db_engine)
        await until(lambda: beat_after(db_engine, beat), 10, "a fresh heartbeat")  # its figures fresh for 7 s
        # the loop stands still from here: top, then the test, read the same database
        as_json, text = top(url, ("--json",), ("--once",))
        snap = json.loads(as_json)
        want = expected(sync, cid, dt.datetime.fromisoformat(snap["now"]))
    sync.dispose()
    check_json(snap, want)
    check_frame(text, want)


def tmux() -> str | None:
    """tmux, installed with apt-get when missing and possible (root); None if it cannot be had."""
    if shutil.which("tmux"):
        return shutil.which("tmux")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], env=env, capture_output=True, timeout=300)
    return shutil.which("tmux")


def test_the_live_view_runs_in_a_real_terminal_at_80_columns_and_q_quits(tmp_path):
    binary = tmux()
    if binary is None:
        pytest.skip("tmux is not installed and could not be installed with apt-get")
    db = tmp_path / "top.db"
    subprocess.run([DIALER, "--db", f"sqlite:///{db}", "db", "upgrade"], check=True, capture_output=True)
    for argv in (["campaign", "create", "spring", "--mode", "predictive", "--queue", "sales"],
                 ["dialers", "add", "pbx1"], ["campaign", "assign", "spring", "--dialer", "pbx1"]):
        subprocess.run([DIALER, "--db", f"sqlite:///{db}", *argv], check=True, capture_output=True)
    session = f"top{os.getpid()}"
    sock = str(tmp_path / "tmux.sock")
    tm = [binary, "-S", sock]
    done = tmp_path / "exit-status"
    subprocess.run([*tm, "new-session", "-d", "-s", session, "-x", "80", "-y", "30",
                    f"{DIALER} --db sqlite:///{db} top --all; echo $? > {done}; sleep 30"], check=True)
    try:
        frame = ""
        end = time.monotonic() + 30
        while time.monotonic() < end and "Originators" not in frame:
            time.sleep(0.5)
            frame = subprocess.run([*tm, "capture-pane", "-p", "-t", session], capture_output=True,
                                   text=True).stdout
        assert "dialer top" in frame and "q quits" in frame, frame
        assert "spring  predictive" in frame and "pbx1" in frame and "Originators" in frame, frame
        assert max(len(line) for line in frame.splitlines()) <= 80
        first = re.search(r"\d\d:\d\d:\d\d UTC", frame).group(0)
        time.sleep(2.5)  # redrawn every second
        again = subprocess.run([*tm, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        assert re.search(r"\d\d:\d\d:\d\d UTC", again).group(0) != first, again
        subprocess.run([*tm, "send-keys", "-t", session, "q"], check=True)
        end = time.monotonic() + 15
        while time.monotonic() < end and not done.exists():
            time.sleep(0.2)
        assert done.exists() and done.read_text().strip() == "0", "q did not end the live view"
    finally:
        subprocess.run([*tm, "kill-server"], capture_output=True)


async def test_a_campaign_waiting_for_a_fastagi_server_says_so_and_a_graceful_stop_is_no_failure(db_engine):
    async with db_engine.begin() as conn:
        cid, _ = await seed_campaign(conn, 20, name="spring")
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == cid).values(
            window_start=dt.time(0), window_end=dt.time(0)))
    async with LocalStack(db_engine, plan=ScenarioPlan.table({}, default="busy"), speed=20.0, lines=4) as stack:
        await stack.presence.stop()  # `dialer serve` stopping: no server takes answered calls
        await stack.assign(cid)
        stack.start()
        address = f"127.0.0.1:{stack.server.port}"

        async def waiting() -> bool:
            async with db_engine.connect() as conn:
                row = (await conn.execute(select(_cl.c.state, _cl.c.reason))).first()
            return row is not None and row.state == CampaignState.PAUSED_NO_AGI_SERVER.value

        await until(waiting, 20, "the published state: waiting for a FastAGI server")
        snap = await live.read(db_engine)
        with open(os.devnull, "w") as sink:
            console = Console(width=80, record=True, file=sink)
            console.print(frame(snap))
        text = console.export_text()
        assert f"  local  waiting: no FastAGI server alive at {address}" in text, text
        assert len(stack.sim.record) == 0
    snap = await live.read(db_engine)  # the originator stopped with SIGTERM's path: it says so
    [o] = snap.originators
    assert o.stopped_at is not None and not o.beating
    [check] = [c for c in live.checks(snap) if c.kind == "originator"]
    assert check.level == 0 and "graceful" in check.detail
    [c] = (await live.read(db_engine, all_campaigns=True)).campaigns
    assert c.dialers[0].state is CampaignState.STOPPED_BY_DIALER and c.dialers[0].figures is None
    assert c.dialers[0].reason.startswith("its originator stopped at")
