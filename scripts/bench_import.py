#!/usr/bin/env python3
"""Benchmark of `dialer contacts import` on PostgreSQL (a private cluster, scripts/pgserver.py) and SQLite:
rows/s and the import process's peak RSS, for a big file (default 1,000,000 rows) and a smaller one
(100,000), each imported by the real command as a separate process into a fresh database.

Then the DNC proof on the 100,000-contact campaign: `dialer dnc import` of 10,000 of its pending
numbers (it prints how many waiting contacts that stops), then the originator's own pre-dial check
right before dialing (agi.originator.dial.DialLoop: claim, check, record) runs over the whole
campaign with the hand-off to Asterisk replaced by a list: every listed contact ends with result
dnc, none of them is handed off.

    .venv/bin/python scripts/bench_import.py [--rows 1000000] [--small 100000] [--db pg,sqlite]
                                             [--no-dnc-proof]

The files mix what CRM exports hold: several number formats, invalid numbers, empty phones, DNC
flags, repeated rows, foreign numbers, short rows, custom columns.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from sqlalchemy import func, select, update  # noqa: E402

from agi.db.engine import make_engine  # noqa: E402
from agi.db.migrate import upgrade  # noqa: E402
from agi.db.models import Attempt, Campaign, CampaignContact  # noqa: E402
from pgserver import PgServer  # noqa: E402

DIALER = str(ROOT / ".venv" / "bin" / "dialer")
# assigned US area codes (one or several time zones), spread like a national list
AREAS = [201, 202, 203, 205, 206, 208, 210, 212, 213, 214, 215, 216, 217, 303, 305, 310, 312, 313, 314, 317,
         404, 405, 406, 407, 408, 410, 412, 414, 415, 502, 503, 504, 505, 512, 513, 515, 516, 520, 602, 603,
         608, 612, 614, 615, 617, 619, 702, 703, 704, 713, 714, 716, 718, 720, 801, 802, 803, 804, 808, 813,
         816, 817, 818, 901, 904, 907, 912, 913, 916, 917, 918, 919, 949, 954, 971, 972, 973]


def write_file(path: Path, n: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["CRM Id", "First Name", "Last Name", "Phone", "Mobile", "DNC", "Company", "Segment"])
        earlier: list[list[str]] = []
        for i in range(n):
            area = AREAS[i % len(AREAS)]
            sub = f"{2000000 + i // len(AREAS):07d}"
            phone = rng.choice([f"({area}) {sub[:3]}-{sub[3:]}", f"{area}-{sub[:3]}-{sub[3:]}", f"+1{area}{sub}",
                                f"1 {area} {sub}", f"{area}.{sub[:3]}.{sub[3:]}"])
            row = [f"crm-{i}", f"First{i % 5000}", f"Last{i}", phone, "", "", f"Company {i % 20000}",
                   rng.choice(["gold", "silver", "bronze"])]
            roll = rng.random()
            if roll < 0.02:
                row[3] = f"123-{sub[:3]}-{sub[3:]}"  # possible, not valid: Invalid Record
            elif roll < 0.04:
                row[3], row[4] = "", phone  # only a mobile: the campaign dials phone, Contact No Phone
            elif roll < 0.055:
                row[5] = "yes"  # the contact's own DNC flag
            elif roll < 0.065 and earlier:
                row = rng.choice(earlier)  # a repeated row
            elif roll < 0.075:
                row[3] = f"+44 20 7946 {i % 10000:04d}"  # not an allowed country
            elif roll < 0.08:
                row = row[:4]  # a short row
            if len(earlier) < 1000:
                earlier.append(row)
            w.writerow(row)


def run_import(url: str, path: Path, errors: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, output) of one `dialer contacts import` process."""
    env = {**os.environ, "DIALER_DB_URL": url, "COLUMNS": "120"}
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([DIALER, "contacts", "import", str(path), "--campaign", "bench", "--map",
                                 "Mobile=cell", "--errors", str(errors)], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read().decode()
    if status != 0:
        raise SystemExit(f"import failed ({status}):\n{text}")
    return seconds, usage.ru_maxrss / 1024, text


async def prepare(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(Campaign.__table__.insert().values(
                name="bench", allowed_countries=["US", "CA"], phone_field="phone",
                window_start=dt.time(0), window_end=dt.time(0)))  # a 24/7 window: the proof dials at any hour
    finally:
        await engine.dispose()


def dialer(url: str, *args: str) -> str:
    return subprocess.run([DIALER, *args], env={**os.environ, "DIALER_DB_URL": url}, check=True,
                          capture_output=True, text=True).stdout


async def dnc_proof(url: str, tmp: Path, listed: int) -> dict:
    """List ``listed`` pending numbers, then run the originator's pre-dial check over the campaign."""
    engine = make_engine(url)
    cc = CampaignContact.__table__
    try:
        async with engine.connect() as conn:
            numbers = list((await conn.execute(select(cc.c.number).where(cc.c.state == "pending")
                                               .order_by(cc.c.id))).scalars())
        chosen = numbers[::max(1, len(numbers) // listed)][:listed]
        (tmp / "dnc.txt").write_text("".join(f"{n}\n" for n in chosen))
        shown = dialer(url, "dnc", "import", str(tmp / "dnc.txt"))
        launched, seconds = await _dial_everything(engine)
        async with engine.connect() as conn:
            at = Attempt.__table__
            dnc_before_dial = (await conn.execute(select(func.count()).select_from(at).where(
                at.c.result == "dnc", at.c.detail == "checked right before dialing"))).scalar_one()
            pending = (await conn.execute(select(func.count()).select_from(cc)
                                          .where(cc.c.state.in_(["pending", "retry_scheduled"])))).scalar_one()
    finally:
        await engine.dispose()
    return {"pending before": len(numbers), "listed": len(chosen), "dnc import says": shown.strip().splitlines(),
            "skipped with dnc right before dialing": dnc_before_dial, "handed off": len(launched),
            "listed numbers handed off": len(set(chosen) & set(launched)), "still waiting": pending,
            "seconds": round(seconds, 1)}


async def _dial_everything(engine) -> tuple[list[str], float]:
    from agi.originator.calls import CallTracker
    from agi.originator.campaigns import CampaignRun
    from agi.originator.clock import Clock, as_dt
    from agi.originator.dial import DialLoop
    from agi.originator.limits import RateLimiter
    from agi.originator.store import DialerRow
    from agi.db.claim import claim_due
    from agi.outcomes import CampaignState
    from agi.rules.predial import DialPolicy
    from agi.rules.window import CallingWindow

    async with engine.connect() as conn:
        row = (await conn.execute(select(Campaign.__table__).where(Campaign.__table__.c.name == "bench"))).one()
    run = CampaignRun(row=row, state=CampaignState.RUNNING, bucket=RateLimiter(1e9),
                      policy=DialPolicy.from_campaign(row), window=CallingWindow.from_campaign(row))
    launched: list[str] = []
    clock = Clock.of(time.time)
    loop = DialLoop(engine, clock, CallTracker(), {"predial": 0, "deferred": 0},
                    dialer=DialerRow(1, "bench", 10**9, 1e9, "Local/{number}"), bucket=RateLimiter(1e9),
                    launch=lambda r, call, contact_id: launched.append(call.number))
    started = time.monotonic()
    while True:
        now = clock.now()
        async with engine.begin() as conn:
            claimed = await claim_due(conn, run.id, "bench", 2000, as_dt(now))
        if not claimed:
            return launched, time.monotonic() - started
        loop.tracker = CallTracker()  # the calls handed off are not in progress here: no number is busy
        await loop._check_and_dial(run, claimed, now)


async def bench(db: str, rows: int, small: int, tmp: Path, proof: bool, pg: PgServer | None) -> list[dict]:
    out = []
    for n in (small, rows):
        path = tmp / f"contacts-{n}.csv"
        if not path.exists():
            write_file(path, n)
        url = pg.create_database(f"bench_{db}_{n}") if db == "pg" else f"sqlite:///{tmp / f'bench-{n}.db'}"
        await prepare(url)
        seconds, rss, text = run_import(url, path, tmp / f"errors-{db}-{n}.csv")
        line = next((x for x in text.splitlines() if "rows read in" in x), "")
        out.append({"db": db, "rows": n, "seconds": round(seconds, 1), "rows/s": round(n / seconds),
                    "peak RSS MiB": round(rss, 1), "summary": line})
        print(out[-1], flush=True)
        if proof and n == small:
            result = await dnc_proof(url, tmp, 10_000)
            print({"db": db, "dnc proof": result}, flush=True)
    return out


async def main(args) -> None:
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    pg = PgServer().start() if "pg" in dbs else None
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            for db in dbs:
                results += await bench(db, args.rows, args.small, Path(tmp), not args.no_dnc_proof, pg)
    finally:
        if pg is not None:
            pg.stop()
    print("\n| database | rows | seconds | rows/s | peak RSS |\n| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['db']} | {r['rows']:,} | {r['seconds']} | {r['rows/s']:,} | {r['peak RSS MiB']} MiB |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--db", default="pg,sqlite")
    parser.add_argument("--no-dnc-proof", action="store_true")
    asyncio.run(main(parser.parse_args()))
