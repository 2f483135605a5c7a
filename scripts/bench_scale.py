#!/usr/bin/env python3
"""Scale benchmark (issue 15): the whole platform under load, each part in its own process.

K simulated Asterisk boxes (`dialer sim --speed 100`), K originators (`dialer originate`, one per
box), M FastAGI servers (`dialer serve`) and one private PostgreSQL (scripts/pgserver.py, with
PostgreSQL's default ``max_connections=100``), a broadcast campaign of 100,000 contacts (and a
second run with the contacts split over 4 campaigns). It prints, per run:

- sustained originates/s and attempts/s (finished), claims/s, over the measured window;
- CPU seconds per 1,000 calls of each component (originators, FastAGI servers, simulators,
  PostgreSQL: postmaster and every backend, those that exited included);
- the peak of database connections (pg_stat_activity, by component);
- the largest number of originates any box saw in any one second against its CPS limit (the
  simulator's own count, as a carrier counts);
- claim-to-Originate delay p50/p99 (attempts.queued_at, taken before the claim, to originated_at);
- the checks: one final attempt per dial, none twice at once, none lost (no attempt open, no
  contact left dialing), every result equal to the simulators' record, no task error in any log.

Then the claim query alone: 1, 2 and 4 claimer processes (batch 10) on one campaign, claims/s and
no double claim. Prints figures; exits 1 if a check fails. ``--quick`` for a smoke run. About 4-6
minutes on the shared 2-core box by default.

    .venv/bin/python scripts/bench_scale.py [--quick] [--runs 1x1,4x2,4x2x4] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import psycopg  # noqa: E402

from pgserver import PgServer, free_port  # noqa: E402

DIALER = str(Path(sys.executable).parent / "dialer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
AREAS = (202, 212, 305, 312, 415, 617, 713, 818)  # valid US area codes (the pre-dial check parses each number)
NETWORK_RESULT = {  # what the simulated network did -> the result it must be recorded as (docs/outcomes.md)
    "busy": "busy", "no_answer": "no_answer", "congestion": "service_error", "unallocated": "disconnected",
    "number_changed": "disconnected", "rejected": "rejected", "no_channel": "service_error",
    "no_exten": "service_error",
}
# cProfile on CPU time (process_time), not wall time: on a busy machine a process waiting for the
# CPU is not charged with it. argv: the .prof path, then the script and its arguments.
CPU_PROFILE = """import cProfile, runpy, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
prof = cProfile.Profile(time.process_time)
prof.enable()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    prof.disable()
    prof.dump_stats(out)
"""
LOG_PROBLEMS = ("Traceback", "Task exception was never retrieved", "too many clients", "Error in")


@dataclass(frozen=True)
class RunSpec:
    boxes: int
    servers: int
    campaigns: int = 1

    @classmethod
    def parse(cls, text: str) -> RunSpec:
        parts = [int(p) for p in text.lower().split("x")]
        return cls(*parts)

    def __str__(self) -> str:
        return f"K={self.boxes} M={self.servers}" + (f" {self.campaigns} campaigns" if self.campaigns > 1 else "")


@dataclass
class Proc:
    role: str  # originate | serve | sim
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Result:
    spec: RunSpec
    cps_per_box: float
    window_s: float = 0.0
    originates_s: float = 0.0
    attempts_s: float = 0.0
    claims_s: float = 0.0
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    peak_connections: int = 0
    peak_by_role: dict[str, int] = field(default_factory=dict)
    max_cps_seen: list[int] = field(default_factory=list)
    delay_p50_ms: float | None = None
    delay_p99_ms: float | None = None
    calls: int = 0
    checks: dict[str, str] = field(default_factory=dict)
    load: str = ""


# ------------------------------------------------------------------------------------------ seeding

def seed_template(pg: PgServer, contacts: int) -> str:
    """A migrated database with ``contacts`` contacts (no campaign yet): the template of every run."""
    from agi.db.migrate import upgrade

    name = "bench_template"
    url = pg.create_database(name)
    upgrade(url)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with psycopg.connect(_conninfo(pg, name)) as conn:
        with conn.cursor().copy("COPY contacts (dedupe_key, first_name, last_name, phone, dnc, custom, created_at) "
                                "FROM STDIN") as copy:
            for i in range(contacts):
                area, rest = AREAS[i % len(AREAS)], 2_000_000 + i // len(AREAS)
                copy.write_row((f"bench-{i}", "Bench", f"Contact {i}", f"+1{area}{rest:07d}", False, "{}", now))
        conn.execute("ANALYZE contacts")
    return name


def make_run_database(pg: PgServer, template: str, spec: RunSpec, *, cps: float, lines: int,
                      ami_ports: list[int]) -> str:
    """A copy of the template with the run's campaigns (24/7, broadcast, one attempt each), its
    dialers (one per box) and every campaign assigned to every dialer."""
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(_conninfo(pg, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    from sqlalchemy import create_engine, insert, select

    from agi.db.models import Campaign, Dialer, DialerCampaign

    engine = create_engine(pg.database_url(name))
    with engine.begin() as conn:
        campaign_ids = []
        for c in range(spec.campaigns):
            campaign_ids.append(conn.execute(insert(Campaign.__table__).values(
                name=f"bench-{c + 1}", mode="broadcast", state="running", window_start=dt.time(0, 0),
                window_end=dt.time(0, 0), lines=lines, cps=cps * spec.boxes, max_attempts=1,
                caller_id='"Bench" <12025550100>', key_timeout=3, key_tries=1,
            ).returning(Campaign.__table__.c.id)).scalar_one())
        for i in range(spec.boxes):
            dialer_id = conn.execute(insert(Dialer.__table__).values(
                name=f"box{i + 1}", ami_host="127.0.0.1", ami_port=ami_ports[i], lines=lines, cps=cps,
                dial_template="PJSIP/{number}@trunk").returning(Dialer.__table__.c.id)).scalar_one()
            for cid in campaign_ids:
                conn.execute(insert(DialerCampaign.__table__).values(dialer_id=dialer_id, campaign_id=cid,
                                                                     lines=lines))
        ids = conn.execute(select(Campaign.__table__.c.id)).scalars().all()
    engine.dispose()
    with psycopg.connect(_conninfo(pg, name)) as conn:
        # the contacts dealt round-robin over the campaigns
        conn.execute(
            "INSERT INTO campaign_contacts (campaign_id, contact_id, state, number, timezone, attempts, updated_at) "
            "SELECT (%s::int[])[1 + (id %% %s)], id, 'pending', phone, 'America/New_York', 0, now() FROM contacts",
            (sorted(ids), len(ids)))
        conn.execute("ANALYZE campaign_contacts")
    return name


def _conninfo(pg: PgServer, db: str) -> str:
    return f"host=127.0.0.1 port={pg.port} user=postgres dbname={db}"


# ------------------------------------------------------------------------------------------ processes

async def spawn(role: str, name: str, args: list[str], env: dict, logdir: Path) -> Proc:
    log = logdir / f"{name}.log"
    fh = log.open("wb")
    proc = await asyncio.create_subprocess_exec(*args, env={**os.environ, **env}, stdout=fh, stderr=fh,
                                                stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
    fh.close()
    return Proc(role, name, proc, log)


def db_env(pg: PgServer, db: str, app: str) -> dict:
    return {"DIALER_DB_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/{db}?application_name={app}",
            "DIALER_LOG_LEVEL": "WARNING"}


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of ``pid`` (with ``children``: of its reaped children too), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / CLK_TCK


def postgres_cpu(pg: PgServer) -> float:
    """The cluster's CPU so far: the postmaster, its reaped children, and every live backend."""
    postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_seconds(int(entry.name))
    return total


def component_cpu(procs: list[Proc], pg: PgServer) -> dict[str, float]:
    out: dict[str, float] = Counter()
    for p in procs:
        out[p.role] += cpu_seconds(p.pid)
    out["postgresql"] = postgres_cpu(pg)
    return dict(out)


# ------------------------------------------------------------------------------------------ one run

async def run_one(pg: PgServer, template: str, spec: RunSpec, args, workdir: Path) -> Result:
    cps = args.cps if args.cps else (args.total_cps / spec.boxes)
    res = Result(spec, cps)
    ami_ports = [free_port() for _ in range(spec.boxes)]
    agi_ports = [free_port() for _ in range(spec.servers)]
    db = make_run_database(pg, template, spec, cps=cps, lines=args.lines, ami_ports=ami_ports)
    logdir = workdir / db
    logdir.mkdir()
    procs: list[Proc] = []
    sims: list[Proc] = []
    for i, port in enumerate(agi_ports):
        procs.append(await spawn("serve", f"serve{i + 1}", [DIALER, "serve", "--bind", f"127.0.0.1:{port}"],
                                 db_env(pg, db, f"serve{i + 1}"), logdir))
    for i, port in enumerate(ami_ports):
        sims.append(await spawn("sim", f"sim{i + 1}", [
            DIALER, "sim", "--ami-port", str(port), "--agi", f"127.0.0.1:{agi_ports[i % spec.servers]}",
            "--speed", str(args.speed), "--seed", str(i + 1), "--record", str(logdir / f"sim{i + 1}.jsonl")],
            {}, logdir))
    procs += sims
    await _wait_ports(ami_ports + agi_ports)
    for i, port in enumerate(ami_ports):
        agi = agi_ports[i % spec.servers]
        profile = [sys.executable, "-c", CPU_PROFILE, str(logdir / f"box{i + 1}.prof")] if args.profile else []
        argv = [*profile, DIALER, "originate", "--dialer", f"box{i + 1}"]
        procs.append(await spawn("originate", f"box{i + 1}", argv, {
            **db_env(pg, db, f"originate{i + 1}"), "DIALER_AMI_PORT": str(port), "DIALER_AMI_SECRET": "secret",
            "DIALER_AGI_PUBLIC": f"127.0.0.1:{agi}"}, logdir))
    monitor = Monitor(pg, db)
    watch = asyncio.create_task(monitor.watch())
    try:
        t_first = await monitor.first_originate(timeout=120)
        await asyncio.sleep(args.warmup)
        t0, cpu0 = time.time(), component_cpu(procs, pg)
        await asyncio.sleep(args.seconds)
        t1, cpu1 = time.time(), component_cpu(procs, pg)
        res.load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    finally:
        await _stop(procs, "originate", signal.SIGTERM, 90)
        await monitor.until_settled(timeout=60)
        await _stop(procs, "serve", signal.SIGTERM, 60)
        await _stop(procs, "sim", signal.SIGINT, 60)
        watch.cancel()
    res.window_s = t1 - t0
    await _figures(res, pg, db, t0, t1, cpu0, cpu1)
    res.peak_connections, res.peak_by_role = monitor.peak, monitor.peak_by_role
    records = _records(logdir, spec.boxes)
    res.max_cps_seen = [_max_cps(p.log) for p in sims]
    res.checks = await _checks(pg, db, records, procs)
    res.checks["CPS never exceeded"] = "ok" if max(res.max_cps_seen) <= int(cps) else (
        f"FAILED: {max(res.max_cps_seen)} originates in one second against {cps:g}")
    del t_first
    return res


async def _wait_ports(ports: list[int], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s") from None
                await asyncio.sleep(0.2)


async def _stop(procs: list[Proc], role: str, sig: int, timeout: float) -> None:
    mine = [p for p in procs if p.role == role and p.proc.returncode is None]
    for p in mine:
        p.proc.send_signal(sig)
    for p in mine:
        try:
            await asyncio.wait_for(p.proc.wait(), timeout)
        except TimeoutError:
            print(f"  {p.name} did not stop in {timeout:g} s: killed", file=sys.stderr)
            p.proc.kill()
            await p.proc.wait()


class Monitor:
    """Samples the database twice a second: connections (by application_name), attempts."""

    def __init__(self, pg: PgServer, db: str) -> None:
        self.pg, self.db = pg, db
        self.peak = 0
        self.peak_by_role: dict[str, int] = {}

    async def _conn(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(_conninfo(self.pg, self.db), autocommit=True)

    async def watch(self) -> None:
        async with await self._conn() as conn:
            while True:
                rows = await (await conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1")).fetchall()
                self.peak = max(self.peak, sum(n for _, n in rows))
                by_role: Counter = Counter()
                for app, n in rows:
                    by_role[app.rstrip("0123456789") or "other"] += n
                for role, n in by_role.items():
                    self.peak_by_role[role] = max(self.peak_by_role.get(role, 0), n)
                await asyncio.sleep(0.5)

    async def first_originate(self, timeout: float) -> float:
        end = time.monotonic() + timeout
        async with await self._conn() as conn:
            while time.monotonic() < end:
                n = (await (await conn.execute("SELECT count(*) FROM attempts WHERE dialer IS NOT NULL")).fetchone())[0]
                if n:
                    return time.time()
                await asyncio.sleep(0.2)
        raise RuntimeError(f"no call started within {timeout:g} s: see the logs")

    async def until_settled(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        async with await self._conn() as conn:
            while time.monotonic() < end:
                n = (await (await conn.execute("SELECT count(*) FROM attempts WHERE result IS NULL")).fetchone())[0]
                if not n:
                    return
                await asyncio.sleep(0.5)


async def _figures(res: Result, pg: PgServer, db: str, t0: float, t1: float, cpu0: dict, cpu1: dict) -> None:
    a, b = dt.datetime.fromtimestamp(t0, dt.timezone.utc), dt.datetime.fromtimestamp(t1, dt.timezone.utc)
    async with await psycopg.AsyncConnection.connect(_conninfo(pg, db)) as conn:
        q = "SELECT count(*) FILTER (WHERE originated_at >= %(a)s AND originated_at < %(b)s), " \
            "count(*) FILTER (WHERE ended_at >= %(a)s AND ended_at < %(b)s), " \
            "count(*) FILTER (WHERE queued_at >= %(a)s AND queued_at < %(b)s), " \
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM originated_at - queued_at)) " \
            "  FILTER (WHERE originated_at >= %(a)s AND originated_at < %(b)s), " \
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM originated_at - queued_at)) " \
            "  FILTER (WHERE originated_at >= %(a)s AND originated_at < %(b)s) FROM attempts"
        row = await (await conn.execute(q, {"a": a.replace(tzinfo=None), "b": b.replace(tzinfo=None)})).fetchone()
    span = t1 - t0
    originated, ended, claimed, p50, p99 = row
    res.calls = originated
    res.originates_s, res.attempts_s, res.claims_s = originated / span, ended / span, claimed / span
    res.delay_p50_ms = None if p50 is None else p50 * 1000
    res.delay_p99_ms = None if p99 is None else p99 * 1000
    for role in ("originate", "serve", "sim", "postgresql"):
        used = cpu1.get(role, 0) - cpu0.get(role, 0)
        res.cpu_per_1000[role] = used / (originated / 1000) if originated else float("nan")


def _records(logdir: Path, boxes: int) -> list[dict]:
    out = []
    for i in range(boxes):
        path = logdir / f"sim{i + 1}.jsonl"
        if path.exists():
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def _max_cps(log: Path) -> int:
    for line in log.read_text(errors="replace").splitlines():
        if "originates/s" in line:
            return int(line.rsplit("max", 1)[1].split()[0])
    return -1


def truth(rec: dict) -> str:
    """What the simulator's record says the attempt's result must be."""
    if rec["network"] != "answer":
        return NETWORK_RESULT[rec["network"]]
    if any(s.startswith("fax") for s in rec["agi_scripts"]):
        return "fax"
    amd = rec.get("amd") or ["", ""]
    return "machine_answer" if amd[0] == "MACHINE" else ("other" if amd[0] == "HANGUP" else "live_answer")


async def _checks(pg: PgServer, db: str, records: list[dict], procs: list[Proc]) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(_conninfo(pg, db)) as conn:
        attempts = await (await conn.execute(
            "SELECT id, membership_id, result, queued_at, ended_at, detail FROM attempts "
            "WHERE dialer IS NOT NULL AND result IS DISTINCT FROM 'dnc'")).fetchall()
        stuck = (await (await conn.execute(
            "SELECT count(*) FROM campaign_contacts WHERE state IN ('dialing', 'in_call', 'waiting_agent')"
        )).fetchone())[0]
    checks: dict[str, str] = {}
    by_id = {r[0]: r for r in attempts}
    open_ = [r for r in attempts if r[2] is None]
    ids = [rec["channel_id"] for rec in records]
    dialed = {r[0] for r in attempts if r[2] not in ("no_phone", "invalid_number", "forbidden_destination")}
    checks["one final attempt per dial"] = "ok" if (len(ids) == len(set(ids)) and set(ids) == dialed and not open_) \
        else f"FAILED: {len(ids)} originates ({len(set(ids))} distinct), {len(dialed)} attempts, {len(open_)} open"
    overlap = _overlaps(attempts)
    checks["none twice at once"] = "ok" if not overlap else f"FAILED: {overlap} membership(s) in two calls at once"
    checks["none lost"] = ("ok" if not open_ and not stuck
                           else f"FAILED: {len(open_)} attempts open, {stuck} contacts stuck")
    wrong = [(rec["scenario"], truth(rec), by_id[rec["channel_id"]][2]) for rec in records
             if rec["channel_id"] in by_id and truth(rec) != by_id[rec["channel_id"]][2]]
    checks["equal to the simulators' records"] = "ok" if not wrong else f"FAILED: {len(wrong)}, e.g. {wrong[:3]}"
    alarms = [r for r in attempts if (r[5] or "").startswith("reconciler")]
    checks["no reconciler alarm"] = "ok" if not alarms else f"FAILED: {len(alarms)} attempts closed by the reconciler"
    problems = Counter()
    for p in procs:
        text = p.log.read_text(errors="replace")
        for word in LOG_PROBLEMS:
            problems[word] += text.count(word)
    bad = {k: v for k, v in problems.items() if v}
    checks["no task error in the logs"] = "ok" if not bad else f"FAILED: {bad}"
    return checks


def _overlaps(attempts: list) -> int:
    by_member: dict[int, list] = {}
    for r in attempts:
        if r[1] is not None and r[4] is not None:
            by_member.setdefault(r[1], []).append((r[3], r[4]))
    bad = 0
    for spans in by_member.values():
        spans.sort()
        bad += any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    return bad


# ------------------------------------------------------------------------------------------ claims alone

async def claim_bench(pg: PgServer, template: str, claimers: int, seconds: float) -> tuple[float, str]:
    """``claimers`` processes claiming batches of 10 from one campaign for ``seconds``: claims/s,
    and whether any membership was claimed twice."""
    spec = RunSpec(1, 1)
    db = make_run_database(pg, template, spec, cps=1, lines=1, ami_ports=[0])
    url = pg.database_url(db)
    with psycopg.connect(_conninfo(pg, db)) as conn:
        cid = conn.execute("SELECT id FROM campaigns").fetchone()[0]
    procs = [await asyncio.create_subprocess_exec(sys.executable, __file__, "--claimer", url, str(cid), f"c{i}",
                                                  str(seconds), stdout=asyncio.subprocess.PIPE)
             for i in range(claimers)]
    outs = [int((await p.communicate())[0].decode().split()[-1]) for p in procs]
    with psycopg.connect(_conninfo(pg, db)) as conn:
        dialing = conn.execute("SELECT count(*) FROM campaign_contacts WHERE state = 'dialing'").fetchone()[0]
    ok = "ok" if dialing == sum(outs) else f"FAILED: {sum(outs)} claims, {dialing} memberships claimed"
    return sum(outs) / seconds, ok


async def claimer(url: str, cid: int, name: str, seconds: float) -> int:
    from agi.db.claim import claim_due
    from agi.db.engine import make_engine

    engine = make_engine(url)
    n = 0
    end = time.monotonic() + seconds
    async with engine.connect() as conn:
        while time.monotonic() < end:
            async with conn.begin():
                n += len(await claim_due(conn, cid, name, 10, dt.datetime.now(dt.timezone.utc)))
    await engine.dispose()
    return n


# ------------------------------------------------------------------------------------------ report

def report(results: list[Result], claims: list[tuple[int, float, str]]) -> bool:
    ok = True
    print("\nend to end (sustained over the measured window):")
    print("| run | CPS/box | originates/s | attempts/s | claims/s | CPU-s per 1,000 calls: originator / FastAGI / "
          "simulator / PostgreSQL | peak DB conns (by part) | max originates in 1 s per box | claim->Originate "
          "p50 / p99 | load |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- |")
    for r in results:
        cpu = " / ".join(f"{r.cpu_per_1000.get(k, float('nan')):.2f}" for k in ("originate", "serve", "sim",
                                                                               "postgresql"))
        roles = ", ".join(f"{k} {v}" for k, v in sorted(r.peak_by_role.items()))
        delay = (f"{r.delay_p50_ms:.0f} / {r.delay_p99_ms:.0f} ms" if r.delay_p50_ms is not None else "-")
        print(f"| {r.spec} | {r.cps_per_box:g} | {r.originates_s:.0f} | {r.attempts_s:.0f} | {r.claims_s:.0f} "
              f"| {cpu} | "
              f"{r.peak_connections} ({roles}) | {', '.join(map(str, r.max_cps_seen))} | {delay} | {r.load} |")
    for r in results:
        print(f"\n{r.spec}: {r.calls} calls in {r.window_s:.0f} s measured")
        for name, verdict in r.checks.items():
            print(f"  {name}: {verdict}")
            ok = ok and verdict == "ok"
    if claims:
        print("\nthe claim query alone (batch 10, one campaign of the 100,000):")
        for n, rate, verdict in claims:
            print(f"  {n} claimer(s): {rate:,.0f} claims/s; no double claim: {verdict}")
            ok = ok and verdict == "ok"
    return ok


async def main(args) -> int:
    started = time.monotonic()
    pg = PgServer(max_connections=args.max_connections).start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"PostgreSQL on port {pg.port} (max_connections={args.max_connections}); logs in {workdir}", flush=True)
    try:
        print(f"seeding {args.contacts:,} contacts...", flush=True)
        template = seed_template(pg, args.contacts)
        results = []
        for spec in args.runs:
            print(f"run {spec}: {args.seconds:g} s measured after {args.warmup:g} s...", flush=True)
            results.append(await run_one(pg, template, spec, args, workdir))
            r = results[-1]
            print(f"  {r.originates_s:.0f} originates/s, load {r.load}", flush=True)
        claims = []
        for n in args.claimers:
            print(f"claims: {n} claimer(s)...", flush=True)
            rate, verdict = await claim_bench(pg, template, n, args.claim_seconds)
            claims.append((n, rate, verdict))
        ok = report(results, claims)
    finally:
        pg.stop()
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=lambda s: [RunSpec.parse(x) for x in s.split(",")],
                   default=[RunSpec(1, 1), RunSpec(4, 2), RunSpec(4, 2, 4)],
                   help="runs as BOXESxSERVERS[xCAMPAIGNS], comma-separated [1x1,4x2,4x2x4]")
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--total-cps", type=float, default=400, help="the boxes' CPS limits add up to this [400]")
    p.add_argument("--cps", type=float, default=None, help="each box's CPS limit (instead of --total-cps)")
    p.add_argument("--lines", type=int, default=2000, help="each box's lines [2000]")
    p.add_argument("--speed", type=float, default=100)
    p.add_argument("--seconds", type=float, default=40, help="measured window per run [40]")
    p.add_argument("--warmup", type=float, default=8)
    p.add_argument("--claimers", type=lambda s: [int(x) for x in s.split(",")] if s else [], default=[1, 2, 4])
    p.add_argument("--claim-seconds", type=float, default=4)
    p.add_argument("--max-connections", type=int, default=100)
    p.add_argument("--profile", action="store_true", help="run the originators under cProfile (box<N>.prof "
                   "beside their logs; slower)")
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 contacts, short windows")
    args = p.parse_args(argv)
    if args.quick:
        args.contacts, args.seconds, args.warmup, args.claim_seconds = 20_000, 12, 4, 2
    return args


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--claimer":
        _, _, url, cid, name, seconds = sys.argv
        print(asyncio.run(claimer(url, int(cid), name, float(seconds))))
        sys.exit(0)
    sys.exit(asyncio.run(main(parse_args(sys.argv[1:]))))
