#!/usr/bin/env python3
"""Benchmark of the public API on PostgreSQL (a private cluster, scripts/pgserver.py), over real HTTP
to `dialer web`'s app on uvicorn in this process:

- a batch add of 10,000 new contacts in one request (the CSV import's path), contacts/s;
- the summary of a 100,000-contact campaign (about 150,000 attempts), ms p50/p99 over repeated reads.

    .venv/bin/python scripts/bench_api.py [--contacts 10000] [--runs 3] [--big 100000] [--reads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from agi.auth import keys, users  # noqa: E402
from agi.db.engine import make_engine  # noqa: E402
from agi.db.migrate import upgrade  # noqa: E402
from agi.db.models import Attempt, CampaignContact, new_attempt_id, utcnow  # noqa: E402
from agi.outcomes import Result  # noqa: E402
from agi.web.app import WebOptions, create_app  # noqa: E402
from pgserver import PgServer, free_port  # noqa: E402

# what 100,000 contacts' attempts ended as (a plausible campaign mix)
MIX = [(Result.NO_ANSWER, 30), (Result.BUSY, 10), (Result.LIVE_ANSWER, 25), (Result.MACHINE_ANSWER, 15),
       (Result.DISCONNECTED, 5), (Result.SERVICE_ERROR, 2), (Result.FAX, 1), (Result.OTHER, 2)]


def contacts(n: int, start: int) -> list[dict]:
    return [{"external_id": f"b{start + i}", "first_name": "Bench", "last_name": f"Contact {start + i}",
             "phone": f"+1202{2_000_000 + (start + i) % 8_000_000:07d}", "custom": {"source": "bench"}}
            for i in range(n)]  # valid numbers: an exchange starts with 2-9


async def seed_attempts(engine, campaign_id: int, rng: random.Random) -> int:
    """1-2 finished attempts per member of the campaign, written in bulk."""
    cc = CampaignContact.__table__
    async with engine.connect() as conn:
        members = (await conn.execute(select(cc.c.id, cc.c.contact_id, cc.c.number)
                                      .where(cc.c.campaign_id == campaign_id))).all()
    results, weights = zip(*MIX)
    now = utcnow()
    rows = []
    for m in members:
        for n in range(1 if rng.random() < 0.5 else 2):
            result = rng.choices(results, weights)[0]
            queued = now - dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 20))
            live = result is Result.LIVE_ANSWER
            rows.append({
                "id": new_attempt_id(), "campaign_id": campaign_id, "contact_id": m.contact_id,
                "membership_id": m.id, "dialer": "d1", "number": m.number, "attempt_no": n + 1,
                "queued_at": queued, "originated_at": queued, "answered_at": queued + dt.timedelta(seconds=9) if live else None,
                "ended_at": queued + dt.timedelta(seconds=40), "result": result.value, "charged": result.charged,
                "routing": ("dropped" if rng.random() < 0.03 else "agent_connected") if live else None,
                "disposition": None, "caller_abandoned": False, "ivr_keys": "", "callback": False,
                "talk_seconds": rng.randrange(5, 300) if live else None,
            })
    async with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(Attempt.__table__), rows[i:i + 5000])
    return len(rows)


async def main(args) -> None:
    pg = PgServer().start()
    try:
        url = pg.create_database("bench_api")
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url)
        async with engine.begin() as conn:
            await users.add_user(conn, "bench", "admin")
            key = (await keys.create_key(conn, "bench", "bench"))["key"]
        app = create_app(engine, options=WebOptions(rate=0, webhooks=False))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers,
                                     timeout=300) as http:
            await bench_batch(http, args)
            await bench_summary(http, engine, args)
        server.should_exit = True
        await serving
        await engine.dispose()
    finally:
        pg.stop()


async def bench_batch(http: httpx.AsyncClient, args) -> None:
    rates = []
    for run in range(args.runs):
        name = f"batch-{run}"
        assert (await http.post("/campaigns", json={"name": name, "settings": {"countries": "US"}})).status_code == 201
        body = {"contacts": contacts(args.contacts, run * args.contacts)}
        t0 = time.perf_counter()
        r = await http.post(f"/campaigns/{name}/contacts/batch", json=body)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200 and r.json()["imported"] == args.contacts, r.text[:300]
        rates.append(args.contacts / elapsed)
        print(f"  batch run {run + 1}: {args.contacts} contacts in {elapsed * 1000:.0f} ms = "
              f"{rates[-1]:,.0f} contacts/s", flush=True)
    print(f"batch add of {args.contacts:,} contacts in one request: median {statistics.median(rates):,.0f} "
          f"contacts/s (best {max(rates):,.0f}, worst {min(rates):,.0f}; target >= 5,000)")


async def bench_summary(http: httpx.AsyncClient, engine, args) -> None:
    name = "big"
    assert (await http.post("/campaigns", json={"name": name, "settings": {"countries": "US"}})).status_code == 201
    print(f"  seeding a {args.big:,}-contact campaign through the API ...", flush=True)
    for start in range(0, args.big, 10_000):
        n = min(10_000, args.big - start)
        r = await http.post(f"/campaigns/{name}/contacts/batch", json={"contacts": contacts(n, 1_000_000 + start)})
        assert r.status_code == 200, r.text[:300]
    campaign_id = (await http.get(f"/campaigns/{name}")).json()["campaign"]["id"]
    attempts = await seed_attempts(engine, campaign_id, random.Random(4))
    # what autovacuum does on a live database: statistics, and the visibility map index-only scans need
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE attempts")
    print(f"  {attempts:,} attempts; reading the summary {args.reads} times ...", flush=True)
    for _ in range(5):  # warm-up
        assert (await http.get(f"/campaigns/{name}/summary")).status_code == 200
    times = []
    for _ in range(args.reads):
        t0 = time.perf_counter()
        r = await http.get(f"/campaigns/{name}/summary")
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"summary of a {args.big:,}-contact campaign ({attempts:,} attempts): p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
