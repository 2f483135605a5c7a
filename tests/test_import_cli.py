"""The import and the admin's other mistakes as a person meets them: real `dialer` processes on both
databases. An interrupted import is finished by running it again; a second import waits for the
first; a summary line with rows/s; settings outside the rules refused with what to write instead."""

from __future__ import annotations

import asyncio
import csv
import json
import signal

import pytest
from sqlalchemy import func, insert, select

from agi.db.locks import exclusive
from agi.db.models import CampaignContact, Contact, Dialer, ImportRun
from agi.sim.simulator import Simulator
from test_qa_cli_faults import DIALER, _originate_until, clean_env, run_dialer

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it


async def dialer_ok(url: str, *args: str, timeout: float = 120.0) -> str:
    code, out = await run_dialer(*args, env={"DIALER_DB_URL": url}, timeout=timeout)
    assert code == 0, out
    return out


def contacts_file(path, n: int, start: int = 0) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "phone", "tier"])
        for i in range(start, start + n):
            w.writerow([f"C{i}", f"Person {i}", f"+1212{2000000 + i:07d}", "gold"])


async def counts(engine) -> tuple[int, int]:
    async with engine.connect() as conn:
        return ((await conn.execute(select(func.count()).select_from(Contact))).scalar_one(),
                (await conn.execute(select(func.count()).select_from(CampaignContact))).scalar_one())


async def test_a_summary_line_with_rows_per_second_when_not_on_a_terminal(db_engine, db_url, tmp_path):
    await dialer_ok(db_url, "campaign", "create", "c")
    contacts_file(tmp_path / "a.csv", 50)
    out = await dialer_ok(db_url, "contacts", "import", str(tmp_path / "a.csv"), "--campaign", "c")
    assert "50 rows read in" in out and "rows/s): 50 dialable" in out


async def test_an_interrupted_import_is_finished_by_running_it_again_and_nothing_is_imported_twice(
        db_engine, db_url, tmp_path):
    await dialer_ok(db_url, "campaign", "create", "c")
    path = tmp_path / "big.csv"
    contacts_file(path, 60_000)
    proc = await asyncio.create_subprocess_exec(*DIALER, "contacts", "import", str(path), "--campaign", "c",
                                                env=clean_env({"DIALER_DB_URL": db_url}),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(120):
            while True:  # killed once its first batches are committed
                async with db_engine.connect() as conn:
                    done = (await conn.execute(select(func.max(ImportRun.line_done)))).scalar() or 0
                if done > 0 or proc.returncode is not None:
                    break
                await asyncio.sleep(0.05)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import ended before it could be interrupted"
    contacts, members = await counts(db_engine)
    assert 0 < members < 60_000 and contacts == members

    out = json.loads(await dialer_ok(db_url, "contacts", "import", str(path), "--campaign", "c", "--json"))
    assert out["resumed_at"] and out["resumed_at"] > 1
    assert (out["rows"], out["imported"], out["duplicates"]) == (60_000, 60_000, 0)
    assert await counts(db_engine) == (60_000, 60_000)
    again = json.loads(await dialer_ok(db_url, "contacts", "import", str(path), "--campaign", "c", "--json"))
    assert (again["imported"], again["duplicates"], again["resumed_at"]) == (0, 60_000, None)
    assert await counts(db_engine) == (60_000, 60_000)


async def test_a_second_import_waits_for_the_first_and_says_so(db_engine, db_url, tmp_path):
    await dialer_ok(db_url, "campaign", "create", "c")
    contacts_file(tmp_path / "a.csv", 20)
    async with exclusive(db_url, "import"):  # an import running
        proc = await asyncio.create_subprocess_exec(*DIALER, "contacts", "import", str(tmp_path / "a.csv"),
                                                    "--campaign", "c", env=clean_env({"DIALER_DB_URL": db_url}),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert b"another import is running on this database; waiting" in line
        await asyncio.sleep(0.3)
        assert proc.returncode is None and await counts(db_engine) == (0, 0)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert await counts(db_engine) == (20, 20)
    assert b"check the database URL" not in out + err


async def test_dnc_import_and_add_say_how_many_waiting_contacts_they_stop(db_engine, db_url, tmp_path):
    await dialer_ok(db_url, "campaign", "create", "c")
    contacts_file(tmp_path / "a.csv", 30)
    await dialer_ok(db_url, "contacts", "import", str(tmp_path / "a.csv"), "--campaign", "c")
    (tmp_path / "dnc.txt").write_text("".join(f"+1212{2000000 + i:07d}\n" for i in range(10)))
    out = await dialer_ok(db_url, "dnc", "import", str(tmp_path / "dnc.txt"))
    assert "10 contact(s) waiting to be dialed" in out and "Contact DNC" in out
    out = await dialer_ok(db_url, "dnc", "add", "+12122000020")
    assert "1 contact(s) waiting to be dialed" in out


# --- the admin's other mistakes -------------------------------------------------------------------


@pytest.mark.parametrize("args, error", [
    (["--drop-cap", "5"], "--allow-drop-cap-above-legal"),
    (["--caller-id", "Acme Sales"], "'\"Name\" <digits>'"),
    (["--caller-id", "\"Acme\" <12a>"], "or as digits only"),
    (["--retry", ""], "'default' for the defaults"),
    (["--retry", "busy=5,busy=10"], "busy twice"),
])
async def test_settings_outside_the_rules_are_refused_and_nothing_is_stored(db_engine, db_url, args, error):
    code, out = await run_dialer("campaign", "create", "c", *args, env={"DIALER_DB_URL": db_url})
    assert code != 0 and error in out, out
    code, out = await run_dialer("campaign", "list", "--json", env={"DIALER_DB_URL": db_url})
    assert json.loads(out) == []


async def test_a_drop_cap_above_the_legal_one_needs_the_explicit_option(db_engine, db_url):
    await dialer_ok(db_url, "campaign", "create", "c", "--drop-cap", "5", "--allow-drop-cap-above-legal",
                    "--caller-id", '"Acme" <12025550100>', "--retry", "none")
    shown = json.loads(await dialer_ok(db_url, "campaign", "show", "c", "--json"))["campaign"]
    assert (shown["drop_cap_pct"], shown["caller_id"], shown["retry_rules"]) == (5.0, '"Acme" <12025550100>', {})


async def test_a_dialers_own_ami_address_wins_over_the_environment(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    try:
        async with db_engine.begin() as conn:
            await conn.execute(insert(Dialer.__table__).values(name="box1", ami_host="127.0.0.1",
                                                               ami_port=sim.ami_port))
        out = await _originate_until({"DIALER_DB_URL": url, "DIALER_AMI_SECRET": "secret",
                                      "DIALER_AMI_HOST": "127.0.0.9", "DIALER_AMI_PORT": "1"}, "logged in")
    finally:
        await sim.stop()
    assert f"127.0.0.1:{sim.ami_port}: logged in" in out, out


async def test_a_wrong_ami_secret_is_said_once(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    sim = Simulator(agi_port=1, speed=10.0, ami_port=0)
    await sim.start()
    try:
        async with db_engine.begin() as conn:
            await conn.execute(insert(Dialer.__table__).values(name="box1", ami_host="127.0.0.1",
                                                               ami_port=sim.ami_port))
        code, out = await run_dialer("originate", "--dialer", "box1", env={
            "DIALER_DB_URL": url, "DIALER_AMI_SECRET": "wrong", "DIALER_AMI_USER": "nobody"}, timeout=60)
    finally:
        await sim.stop()
    assert code == 1, out
    assert out.count("refused the AMI login") == 1 and out.count("DIALER_AMI_SECRET") == 1, out


async def test_a_missing_schema_names_the_database_it_looked_at(db_url):
    code, out = await run_dialer("campaign", "list", env={"DIALER_DB_URL": db_url})
    where = db_url.rsplit("/", 1)[-1]
    assert code == 1 and "has no dialer schema" in out and where in out, out


async def test_no_class_names_in_a_refusal(db_engine, db_url):
    code, out = await run_dialer("campaign", "create", "c", "--mode", "turbo", env={"DIALER_DB_URL": db_url})
    assert code != 0 and "unknown campaign mode 'turbo'" in out and "CampaignMode" not in out, out


async def test_help_texts_hold_no_internal_references():
    for group in (["campaign", "assign"], ["dialers"], ["campaign", "create"], ["contacts", "import"]):
        code, out = await run_dialer(*group, "--help", env={})
        assert code == 0 and "seed 0" not in out, (group, out)


async def test_two_migrations_at_once_both_succeed_and_the_second_says_it_waits(db_url):
    from agi.db.locks import sqlite_file_lock

    procs = []
    with sqlite_file_lock(db_url, "migration"):  # a migration running (SQLite: PostgreSQL's waits in env.py)
        for _ in range(2):
            procs.append(await asyncio.create_subprocess_exec(
                *DIALER, "db", "upgrade", env=clean_env({"DIALER_DB_URL": db_url}),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT))
        if db_url.startswith("sqlite"):
            line = await asyncio.wait_for(procs[0].stdout.readline(), 30)
            assert b"another migration is running on this database; waiting" in line
    outs = [(await asyncio.wait_for(p.communicate(), 120))[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("check the database URL" in o.lower() or "Check the database URL" in o for o in outs)
