#!/usr/bin/env python3
"""FastAGI benchmark (issue 4 item 5): calls/s, per-call and per-command overhead, memory.

Drives N concurrent simulated Asterisk sessions (a minimal client in this file: an agi_* block,
then an instant canned reply to every command) against, each in its own server process:

  bare-asyncio   (a) a bare stdlib-asyncio FastAGI server: the same 8 commands, no logic, no DB
  bare-uvloop    (a) the same on uvloop
  ours-asyncio   our agi.fastagi server + channel API running the same 8 commands as a flow
  ours-uvloop    the same on uvloop
  pyst2-process  (b) classic AGI: one Python process per call (pyst2 asterisk.agi.AGI on
                 stdin/stdout), spawned per session as Asterisk's AGI() does
  full-asyncio   (c) our real outbound flow (agi.flows) with its PostgreSQL reads and writes, a person
  full-uvloop        pressing 2 (not interested) during the message: bench_full_flow() below

then the per-command turnaround at 500 live calls, paced as real calls are (a 15 s message;
people pressing 2, 9 = opt out, 1 = agent in turn: bench_full_paced()), timed inside the server,
and the idle sessions held at once with their memory.

The full flow needs PostgreSQL's server binaries (scripts/pgserver.py starts a private one).
Prints figures; asserts nothing. ``--quick`` for a smoke run. Runtime about 2-3 min on the
shared 2-core box (docs/performance.md has the figures and how to read them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"

# The 8-command call every contender runs (what a short IVR call does).
COMMANDS = [
    b"ANSWER\n",
    b"GET VARIABLE AMDSTATUS\n",
    b"GET VARIABLE AMDCAUSE\n",
    b'SET VARIABLE CAMPAIGN_RESULT "HUMAN"\n',
    b'STREAM FILE campaign-message "0123456789*#"\n',
    b"WAIT FOR DIGIT 5000\n",
    b'VERBOSE "bench call done" 1\n',
    b"HANGUP\n",
]
IDLE_COMMAND = b"WAIT FOR DIGIT -1\n"  # an idle session: the client never answers it

PYST2_SCRIPT = """
import sys
from asterisk.agi import AGI
agi = AGI()
if len(sys.argv) > 1 and sys.argv[1] == "idle":
    agi.wait_for_digit(-1)
agi.answer()
agi.get_variable("AMDSTATUS")
agi.get_variable("AMDCAUSE")
agi.set_variable("CAMPAIGN_RESULT", "HUMAN")
agi.stream_file("campaign-message", "0123456789*#")
agi.wait_for_digit(5000)
agi.verbose("bench call done", 1)
agi.hangup()
"""


# ------------------------------------------------------------------------------------------
# The simulated Asterisk side (minimal; the real simulator is agi.sim)


def header(script: str, uniqueid: str, args: tuple[str, str] = ("HUMAN", "HUMAN-800-800")) -> bytes:
    return (
        "agi_network: yes\n"
        f"agi_network_script: {script}?campaign=1\n"
        f"agi_request: agi://{HOST}/{script}?campaign=1\n"
        "agi_channel: PJSIP/trunk-00000001\nagi_language: en\nagi_type: PJSIP\n"
        f"agi_uniqueid: {uniqueid}\nagi_version: 22.10.1\nagi_callerid: 15550001111\n"
        "agi_calleridname: Acme Campaign\nagi_context: dialer-outbound\nagi_extension: s\n"
        "agi_priority: 4\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1\n"
        f"agi_arg_1: {args[0]}\nagi_arg_2: {args[1]}\n\n"
    ).encode()


def reply_for(command: bytes) -> bytes | None:
    """Asterisk's instant answer; None for the idle command (never answered)."""
    if command.startswith(b"GET VARIABLE"):
        name = command.split()[-1].strip(b'"')
        return {b"AMDSTATUS": b"200 result=1 (HUMAN)\n", b"AMDCAUSE": b"200 result=1 (HUMAN-800-800)\n"}.get(
            name, b"200 result=0\n")
    if command.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=3404\n"
    if command.startswith(b"WAIT FOR DIGIT"):
        return None if command.split()[-1] == b"-1" else b"200 result=49\n"
    if command.startswith((b"HANGUP", b"VERBOSE", b"SET VARIABLE")):
        return b"200 result=1\n"
    return b"200 result=0\n"


def full_reply_for(command: bytes) -> bytes | None:
    """The outbound flow's person: hears the message and presses 2 (not interested) during it."""
    if command.startswith(b"STREAM FILE"):
        return b"200 result=50 endpos=4120\n"  # ord("2")
    return reply_for(command)


# What the outbound flow sends for that person (dialplan passes AMDSTATUS/AMDCAUSE as arguments);
# ANSWER follows the attempt's lookup + answered write; the final write runs while HANGUP goes out
FULL_FLOW_COMMANDS = ["ANSWER", "STREAM FILE dialer/message \"0123456789*#\"", "HANGUP"]

# The paced run's people, in turn: each one's key during the message, how many commands the flow
# sends, and Asterisk's replies. 9 and 1 make the flow write before its next command (opt-out on
# the DNC list before the confirmation; the choice and "waiting for an agent" before EXEC Queue;
# the routing before HANGUP); 2 writes only behind the HANGUP.
AGENT = b"PJSIP/agent-7"


def person_replies(key: str):
    def replies(command: bytes) -> bytes | None:
        if command.startswith(b"STREAM FILE dialer/message"):
            return f"200 result={ord(key)} endpos=4120\n".encode()
        if command.startswith(b"EXEC Queue"):
            return b"200 result=0\n"  # bridged, and the agent ended the call
        if command.startswith(b"GET VARIABLE"):
            name = command.split()[-1].strip(b'"')
            if name in (b"MEMBERINTERFACE", b"MEMBERNAME"):
                return b"200 result=1 (" + AGENT + b")\n"
        return reply_for(command)
    return replies


PACED_PEOPLE = {  # key -> (what it is, commands the flow sends)
    "2": ("not interested", 3),  # ANSWER, STREAM FILE, HANGUP
    "9": ("opts out", 4),  # ANSWER, STREAM FILE, STREAM FILE dialer/optout-confirm, HANGUP
    "1": ("talks to an agent", 7),  # ANSWER, STREAM FILE, EXEC Queue, GET VARIABLE x3, HANGUP
}


@dataclass
class Samples:
    call: list[float] = field(default_factory=list)  # seconds per call, connect -> EOF
    command: list[float] = field(default_factory=list)  # our reply sent -> next command
    first: list[float] = field(default_factory=list)  # header sent -> first command (accept, parse, route)
    errors: int = 0


async def tcp_call(port: int, script: str, uniqueid: str, s: Samples, *, replies=None, expect: int | None = None,
                   args: tuple[str, str] = ("HUMAN", "HUMAN-800-800"), hold: tuple[bytes, float] | None = None) -> None:
    """One simulated call; ``hold`` = (command prefix, seconds): answer that command after a pause,
    as Asterisk does while a prompt plays (paced load)."""
    replies = replies or reply_for
    expect = len(COMMANDS) if expect is None else expect
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        s.errors += 1
        return
    writer.write(header(script, uniqueid, args))
    sent = time.perf_counter()
    n = 0
    try:
        while line := await reader.readline():
            now = time.perf_counter()
            (s.command if n else s.first).append(now - sent)
            n += 1
            answer = replies(line)
            if hold is not None and line.startswith(hold[0]):
                await asyncio.sleep(hold[1])
            if answer is not None:
                writer.write(answer)
            sent = time.perf_counter()
        writer.write(b"HANGUP\n")
    except (ConnectionError, OSError):
        s.errors += 1
    finally:
        writer.close()
    if n != expect:
        s.errors += 1
    s.call.append(time.perf_counter() - t0)


async def pipe_call(s: Samples, idle: bool = False, started: list | None = None) -> None:
    """Classic AGI: spawn the script, talk AGI over its stdin/stdout."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PYST2_SCRIPT, *(["idle"] if idle else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    if started is not None:
        started.append(proc)
    proc.stdin.write(header("outbound", f"pyst2-{id(proc)}"))
    sent = time.perf_counter()
    n = 0
    while line := await proc.stdout.readline():
        (s.command if n else s.first).append(time.perf_counter() - sent)
        n += 1
        answer = reply_for(line)
        if answer is None:
            if started is not None:
                return  # idle: leave it waiting; the caller measures and kills it
            break
        proc.stdin.write(answer)
        sent = time.perf_counter()
    proc.stdin.close()
    await proc.wait()
    if n != len(COMMANDS):
        s.errors += 1
    s.call.append(time.perf_counter() - t0)


async def run_calls(calls: int, concurrency: int, one) -> tuple[Samples, float]:
    s = Samples()
    queue = iter(range(calls))

    async def worker() -> None:
        for i in queue:
            await one(i, s)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return s, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------
# The contenders' server side, each run in its own process: `bench_agi.py --serve MODE`


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
    return out


async def bare_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    idle = False
    while (line := await reader.readline()) not in (b"\n", b""):
        idle = idle or line.startswith(b"agi_network_script: idle")
    for command in [IDLE_COMMAND] if idle else COMMANDS:
        writer.write(command)
        line = await reader.readline()
        while line == b"HANGUP\n":
            line = await reader.readline()
        if not line:
            break
    writer.close()


def our_router():
    from agi.fastagi import DTMF_KEYS, Router

    async def bench(call) -> None:
        await call.answer()
        await call.get_variable("AMDSTATUS")
        await call.get_variable("AMDCAUSE")
        await call.set_variable("CAMPAIGN_RESULT", "HUMAN")
        await call.stream_file("campaign-message", DTMF_KEYS)
        await call.wait_for_digit(5000)
        await call.verbose("bench call done", 1)
        await call.hangup()

    async def idle(call) -> None:
        await call.wait_for_digit(-1)

    return Router({"outbound": bench, "idle": idle})


# Server-side timing of the full flow (filled inside the server process by _instrument())
SERVER_CMD: list[float] = []  # a reply line handed to the channel -> the next command written
SERVER_CMD_DB: list[float] = []  # the same, for the commands the flow sent after waiting on a database write
# the agi_* block complete -> the first command written (attempt lookup + answered write)
SERVER_FIRST: list[float] = []


def _instrument() -> None:
    """Timestamp, inside the server, each line from Asterisk and the next command the flow sends.

    Wraps AGIChannel.feed_line/execute (a perf_counter and a list append each): the figure is
    the server's own share of a command's turnaround, without the load generator or the kernel.
    A command counts as after a database write when the flow awaited one of FlowContext's writes
    since its previous command (a context variable: each session is its own task; the final
    write, started as a task of its own while HANGUP goes out, does not count).
    """
    import contextvars

    from agi.fastagi import channel as chmod
    from agi.flows.context import FlowContext

    feed, execute, init = chmod.AGIChannel.feed_line, chmod.AGIChannel.execute, chmod.AGIChannel.__init__
    clock = time.perf_counter
    wrote = contextvars.ContextVar("bench_wrote", default=False)

    def __init__(self, *a, **kw):
        init(self, *a, **kw)
        self._bench_t, self._bench_first = clock(), True

    def feed_line(self, raw):
        self._bench_t = clock()
        feed(self, raw)

    async def timed_execute(self, command, *args, timeout=None):
        took = clock() - self._bench_t
        if self._bench_first:
            SERVER_FIRST.append(took)
        else:
            SERVER_CMD.append(took)
            if wrote.get():
                SERVER_CMD_DB.append(took)
        wrote.set(False)
        self._bench_first = False
        return await execute(self, command, *args, timeout=timeout)

    def marks_a_write(method):
        async def wrapper(*a, **kw):
            try:
                return await method(*a, **kw)
            finally:
                wrote.set(True)
        return wrapper

    for name in ("choose", "set_routing", "finish", "agent_disposition"):
        setattr(FlowContext, name, marks_a_write(getattr(FlowContext, name)))
    chmod.AGIChannel.__init__, chmod.AGIChannel.feed_line = __init__, feed_line
    chmod.AGIChannel.execute = timed_execute


async def serve(mode: str) -> None:
    _raise_fd_limit()
    router = None
    if mode.startswith("full"):
        from agi.flows import build_router
        from agi.settings import Settings

        _instrument()
        router = build_router(Settings(db_url=os.environ["BENCH_DB_URL"]))  # as `dialer serve` builds it
    if mode.startswith("bare"):
        server = await asyncio.start_server(bare_handler, HOST, 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
    else:
        import logging

        from agi.fastagi import FastAGIServer

        # full flow: overload (pool timeouts at 500 calls) shows as failed sessions in the table
        logging.basicConfig(level=logging.CRITICAL if router is not None else logging.WARNING, stream=sys.stderr)
        server = FastAGIServer(router or our_router(), host=HOST, port=0, max_sessions=100_000, backlog=4096)
        await server.start()
        port = server.port
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    profile = None
    if os.environ.get("BENCH_PROFILE") and mode.startswith("full"):  # a profiling aid, off by default
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    while line := await reader.readline():
        if line.strip() == b"stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            timing = ({"cmd": SERVER_CMD[:], "first": SERVER_FIRST[:], "cmd_db": SERVER_CMD_DB[:]}
                      if mode.startswith("full") else {})
            SERVER_CMD.clear(), SERVER_FIRST.clear(), SERVER_CMD_DB.clear()
            extra = {"failed": server.stats["failed"], "sessions": server.sessions} if router is not None else {}
            print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, **_proc_status(), **timing, **extra}),
                  flush=True)
    if profile is not None:
        profile.disable()
        profile.dump_stats(f"{os.environ['BENCH_PROFILE']}.{mode}.{os.getpid()}")


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerProcess:
    def __init__(self, mode: str, env: dict[str, str] | None = None) -> None:
        self.mode = mode
        self.env = env

    async def __aenter__(self) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **(self.env or {})}, limit=1 << 26,  # stats lines carry the timing samples
        )
        self.port = json.loads(await self.proc.stdout.readline())["port"]
        return self

    async def stats(self) -> dict:
        self.proc.stdin.write(b"stats\n")
        return json.loads(await self.proc.stdout.readline())

    async def __aexit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 2)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# ------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Figures:
    name: str
    calls: int = 0
    seconds: float = 0.0
    cpu_per_call_us: float | None = None
    peak_rss_kb: int | None = None
    samples: Samples | None = None
    note: str = ""
    db_cpu_per_call_us: float | None = None  # PostgreSQL's CPU (full flow)
    server_cmd: list[float] | None = None  # server-side: reply in -> next command out (full flow)
    server_first: list[float] | None = None  # server-side: agi_* block in -> first command out
    server_cmd_db: list[float] | None = None  # server-side, the commands sent after a DB write

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def bench_tcp(mode: str, calls: int, concurrency: int) -> Figures:
    async with ServerProcess(mode) as srv:
        # warm-up: imports, first allocations
        await run_calls(min(200, calls), concurrency, lambda i, s: tcp_call(srv.port, "outbound", f"w{i}", s))
        before = await srv.stats()
        s, seconds = await run_calls(calls, concurrency, lambda i, s: tcp_call(srv.port, "outbound", f"c{i}", s))
        after = await srv.stats()
    return Figures(mode, len(s.call), seconds, (after["cpu"] - before["cpu"]) / max(1, len(s.call)) * 1e6,
                   after["VmHWM"], s, note=f"{s.errors} errors" if s.errors else "")


async def bench_pyst2(calls: int, concurrency: int) -> Figures:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    s, seconds = await run_calls(calls, concurrency, lambda i, s: pipe_call(s))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # peak RSS: RUSAGE_CHILDREN's max also counts the server processes; see the idle figures instead
    return Figures("pyst2-process", len(s.call), seconds, cpu / max(1, len(s.call)) * 1e6, None, s,
                   note=(f"{s.errors} errors; " if s.errors else "") + "RSS: see idle, per process")


class FullFlowDB:
    """A private PostgreSQL (scripts/pgserver.py), migrated, with a campaign and N dialed attempts.

    Every simulated session gets its own real attempt id as agi_uniqueid, as Originate's ChannelId
    makes it on a real Asterisk; the membership is ``dialing`` with that attempt as its last one.
    """

    def __init__(self) -> None:
        self.pg = None
        self.url = ""
        self._ids: list[str] = []
        self._next = 0

    async def __aenter__(self) -> FullFlowDB:
        sys.path.insert(0, str(ROOT / "scripts"))
        from pgserver import PgServer

        from agi.db.migrate import upgrade

        self.pg = await asyncio.to_thread(lambda: PgServer().start())
        self.url = self.pg.create_database("bench")
        await asyncio.to_thread(upgrade, self.url)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)

    async def seed(self, n: int) -> None:
        """n more dialed attempts, in bulk (a few statements, not n transactions)."""
        import datetime as dt

        from sqlalchemy import insert, select, text

        from agi.db.engine import make_engine
        from agi.db.models import Attempt, Campaign, CampaignContact, Contact, new_attempt_id
        from agi.outcomes import ContactState

        engine = make_engine(self.url)
        now = dt.datetime.now(dt.timezone.utc)
        base = len(self._ids)
        try:
            async with engine.begin() as conn:
                camp = (await conn.execute(select(Campaign.__table__.c.id).where(
                    Campaign.__table__.c.name == "bench"))).scalar()
                if camp is None:
                    camp = (await conn.execute(
                        insert(Campaign.__table__).values(name="bench", queue_name="bench-agents")
                        .returning(Campaign.__table__.c.id))).scalar_one()
                await conn.execute(insert(Contact.__table__), [
                    {"dedupe_key": f"bench-{base + i}", "phone": f"+1202{base + i:07d}"} for i in range(n)])
                contacts = (await conn.execute(select(Contact.__table__.c.id, Contact.__table__.c.phone).where(
                    Contact.__table__.c.id > (select(text("coalesce(max(contact_id), 0)")).select_from(
                        CampaignContact.__table__).scalar_subquery())).order_by(Contact.__table__.c.id))).all()
                await conn.execute(insert(CampaignContact.__table__), [
                    {"campaign_id": camp, "contact_id": c.id, "number": c.phone, "state": ContactState.DIALING.value,
                     "timezone": "America/New_York", "claimed_by": "bench", "claimed_at": now} for c in contacts])
                members = (await conn.execute(select(
                    CampaignContact.__table__.c.id, CampaignContact.__table__.c.contact_id,
                    CampaignContact.__table__.c.number).where(
                    CampaignContact.__table__.c.last_attempt_id.is_(None)))).all()
                rows = [{"id": new_attempt_id(), "campaign_id": camp, "contact_id": m.contact_id,
                         "membership_id": m.id, "dialer": "bench", "number": m.number, "attempt_no": 1,
                         "queued_at": now, "originated_at": now} for m in members]
                await conn.execute(insert(Attempt.__table__), rows)
                await conn.execute(text(
                    "UPDATE campaign_contacts cc SET last_attempt_id = a.id FROM attempts a "
                    "WHERE a.membership_id = cc.id AND cc.last_attempt_id IS NULL"))
                await conn.execute(text("ANALYZE"))
        finally:
            await engine.dispose()
        self._ids += [r["id"] for r in rows]

    def take(self, n: int) -> list[str]:
        """n attempt ids no session has used yet."""
        ids = self._ids[self._next:self._next + n]
        if len(ids) < n:
            raise RuntimeError(f"bench seeding: {n} attempts asked, {len(ids)} left")
        self._next += n
        return ids

    async def check(self, ids: list[str]) -> int:
        """How many of ``ids`` ended as the person pressing 2 must: live_answer + not_interested, done."""
        from sqlalchemy import func, select

        from agi.db.engine import make_engine
        from agi.db.models import Attempt, CampaignContact
        from agi.outcomes import ContactState, Disposition, Result

        a, cc = Attempt.__table__, CampaignContact.__table__
        engine = make_engine(self.url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(select(func.count()).select_from(a.join(cc, cc.c.id == a.c.membership_id))
                        .where(a.c.id.in_(ids), a.c.result == Result.LIVE_ANSWER.value,
                               a.c.disposition == Disposition.NOT_INTERESTED.value, a.c.ended_at.is_not(None),
                               a.c.ivr_keys == "2", cc.c.state == ContactState.DONE.value))).scalar_one()
        finally:
            await engine.dispose()

    async def check_people(self, by_key: dict[str, list[str]]) -> int:
        """How many paced attempts did NOT end as their person must (0 = all right): 2 not
        interested; 9 opted out and on the DNC list; 1 interested and connected to the agent."""
        from sqlalchemy import func, select

        from agi.db.engine import make_engine
        from agi.db.models import Attempt, CampaignContact, DncEntry
        from agi.outcomes import ContactState, Disposition, Result, Routing

        a, cc, dnc = Attempt.__table__, CampaignContact.__table__, DncEntry.__table__
        want = {"2": (Disposition.NOT_INTERESTED, None), "9": (Disposition.OPT_OUT, None),
                "1": (Disposition.INTERESTED, Routing.AGENT_CONNECTED)}
        engine = make_engine(self.url)
        wrong = 0
        try:
            async with engine.connect() as conn:
                for key, ids in by_key.items():
                    disposition, routing = want[key]
                    q = (select(func.count()).select_from(a.join(cc, cc.c.id == a.c.membership_id))
                         .where(a.c.id.in_(ids), a.c.result == Result.LIVE_ANSWER.value,
                                a.c.disposition == disposition.value, a.c.ivr_keys == key,
                                a.c.ended_at.is_not(None), cc.c.state == ContactState.DONE.value,
                                a.c.routing.is_(None) if routing is None else a.c.routing == routing.value))
                    if key == "9":
                        q = q.where(a.c.number.in_(select(dnc.c.number)))
                    if key == "1":
                        q = q.where(a.c.agent == AGENT.decode())
                    wrong += len(ids) - (await conn.execute(q)).scalar_one()
        finally:
            await engine.dispose()
        return wrong

    def cpu(self) -> float:
        """CPU seconds used so far by the PostgreSQL server and its live backends."""
        pids = []
        master = int((self.pg.datadir / "postmaster.pid").read_text().split()[0])
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if int(entry) == master or int(fields[1]) == master:
                    pids.append(fields)
        tick = os.sysconf("SC_CLK_TCK")
        return sum(int(f[11]) + int(f[12]) for f in pids) / tick


async def full_calls(srv: ServerProcess, ids: list[str], concurrency: int) -> tuple[Samples, float]:
    it = iter(ids)
    return await run_calls(len(ids), concurrency, lambda i, s: tcp_call(
        srv.port, "outbound", next(it), s, replies=full_reply_for, expect=len(FULL_FLOW_COMMANDS)))


async def bench_full_flow(args: argparse.Namespace, db: FullFlowDB, mode: str, calls: int,
                          concurrency: int) -> Figures:
    """(c) Our full outbound flow (agi.flows, real PostgreSQL writes) through N concurrent sessions.

    The server process runs ``build_router(Settings(db_url=...))`` exactly as ``dialer serve`` does;
    the load generator is this file's minimal Asterisk (instant replies) playing a person who
    presses 2 (not interested) during the message; each session's agi_uniqueid is a seeded attempt.
    """
    async with ServerProcess(mode, env={"BENCH_DB_URL": db.url}) as srv:
        await full_calls(srv, db.take(min(200, calls)), concurrency)  # warm-up: imports, pool, caches
        before, db_before = await srv.stats(), db.cpu()
        ids = db.take(calls)
        s, seconds = await full_calls(srv, ids, concurrency)
        after, db_after = await srv.stats(), db.cpu()
    good = await db.check(ids)
    notes = []
    if s.errors:
        notes.append(f"{s.errors} errors")
    if good != len(ids):
        notes.append(f"DB: {good}/{len(ids)} attempts right")
    if after.get("failed"):
        notes.append(f"{after['failed']} failed sessions")
    f = Figures(mode, len(s.call), seconds, (after["cpu"] - before["cpu"]) / max(1, len(s.call)) * 1e6,
                after["VmHWM"], s, note="; ".join(notes) or f"DB checked: {good}/{len(ids)} right")
    f.db_cpu_per_call_us = (db_after - db_before) / max(1, len(s.call)) * 1e6
    f.server_cmd, f.server_first, f.server_cmd_db = after["cmd"], after["first"], after["cmd_db"]
    return f


async def bench_full_paced(db: FullFlowDB, mode: str, sessions: int, hold: float) -> Figures:
    """``sessions`` calls in progress at all times, each listening to the message for ``hold`` s
    (the STREAM FILE reply comes after it), so the server holds that many live sessions at a
    sustainable rate (sessions / hold calls/s) instead of being flooded: the per-command figures
    are then the server's own turnaround at that concurrency, not a queue. The people take
    turns (PACED_PEOPLE): not interested, opting out, talking to an agent, so every write the
    outbound flow makes before a command is in the figures."""
    async with ServerProcess(mode, env={"BENCH_DB_URL": db.url}) as srv:
        await full_calls(srv, db.take(50), 10)  # warm-up
        await srv.stats()
        ids = iter(db.take(2 * sessions))
        s = Samples()
        by_key: dict[str, list[str]] = {key: [] for key in PACED_PEOPLE}
        keys = list(PACED_PEOPLE)

        async def caller(i: int) -> None:
            await asyncio.sleep(i * hold / sessions)  # staggered, as calls are answered over time
            for n in range(2):
                key = keys[(2 * i + n) % len(keys)]
                uid = next(ids)
                by_key[key].append(uid)
                await tcp_call(srv.port, "outbound", uid, s, replies=person_replies(key),
                               expect=PACED_PEOPLE[key][1], hold=(b"STREAM FILE dialer/message", hold))

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(sessions)))
        seconds = time.perf_counter() - t0
        after = await srv.stats()
    wrong = await db.check_people(by_key)
    f = Figures(f"{mode} paced", len(s.call), seconds, samples=s,
                note=f"{sessions} live calls, {hold:g} s message, people {'/'.join(keys)} in turn"
                + (f"; {s.errors} errors" if s.errors else "")
                + (f"; {after['failed']} failed sessions" if after.get("failed") else "")
                + (f"; DB: {wrong} attempts wrong" if wrong else f"; DB checked: {len(s.call)} right"))
    f.server_cmd, f.server_first, f.server_cmd_db = after["cmd"], after["first"], after["cmd_db"]
    return f


async def bench_full_idle(db: FullFlowDB, mode: str, sessions: int) -> tuple[int, float, float]:
    """Full-flow sessions held mid-call: answered, attempt marked, the message playing (the
    STREAM FILE reply never comes). (held, kB per session (RSS growth), seconds to open)."""
    async with ServerProcess(mode, env={"BENCH_DB_URL": db.url}) as srv:
        await full_calls(srv, db.take(50), 10)  # warm-up: imports, pool
        base = await srv.stats()
        conns = []
        t0 = time.perf_counter()
        for uid in db.take(sessions):
            try:
                reader, writer = await asyncio.open_connection(HOST, srv.port)
            except OSError:
                break
            writer.write(header("outbound", uid))
            conns.append((reader, writer))

        async def to_the_message(reader, writer) -> bool:
            if await reader.readline() != b"ANSWER\n":
                return False
            writer.write(b"200 result=0\n")
            return (await reader.readline()).startswith(b"STREAM FILE")

        async with asyncio.timeout(120):
            held = sum(await asyncio.gather(*(to_the_message(r, w) for r, w in conns)))
        opened = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        loaded = await srv.stats()
        for _, writer in conns:  # the people hang up: the flows finish their attempts
            writer.write(b"200 result=-1 endpos=100\nHANGUP\n")
        async with asyncio.timeout(120):
            while (await srv.stats())["sessions"]:
                await asyncio.sleep(0.5)
        for _, writer in conns:
            writer.close()
    return held, (loaded["VmRSS"] - base["VmRSS"]) / max(1, held), opened


async def bench_idle(mode: str, sessions: int) -> tuple[int, float, float]:
    """Open ``sessions`` idle sessions; (held, kB per session (RSS growth), seconds to open)."""
    async with ServerProcess(mode) as srv:
        base = await srv.stats()
        conns = []
        t0 = time.perf_counter()
        for i in range(sessions):
            try:
                reader, writer = await asyncio.open_connection(HOST, srv.port)
            except OSError:
                break
            writer.write(header("idle", f"idle{i}"))
            conns.append((reader, writer))
        held = 0
        for reader, _ in conns:  # each has its WAIT FOR DIGIT -1 pending: truly mid-call
            if await asyncio.wait_for(reader.readline(), 30) == IDLE_COMMAND:
                held += 1
        opened = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        loaded = await srv.stats()
        for _, writer in conns:
            writer.close()
    return held, (loaded["VmRSS"] - base["VmRSS"]) / max(1, held), opened


async def bench_pyst2_idle(sessions: int) -> tuple[int, float, float]:
    """Idle classic-AGI calls: one process each; (held, RSS kB per process, PSS kB per process)."""
    procs: list = []
    s = Samples()
    await asyncio.gather(*(pipe_call(s, idle=True, started=procs) for _ in range(sessions)))
    rss, pss = [], []
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss += [int(line.split()[1]) for line in f if line.startswith("VmRSS:")]
            with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                pss += [int(line.split()[1]) for line in f if line.startswith("Pss:")]
        except OSError:
            pass
    for proc in procs:
        proc.kill()
        await proc.wait()
    return len(procs), statistics.mean(rss) if rss else float("nan"), statistics.mean(pss) if pss else float("nan")


# ------------------------------------------------------------------------------------------


def split(r: Figures) -> tuple[str, str]:
    """p99 of the server-side turnaround: commands with no database write before them, and after one."""
    db_samples = sorted(r.server_cmd_db or [])
    rest = list(r.server_cmd or [])
    for x in db_samples:  # multiset difference: the samples of the other commands
        rest.remove(x)
    return ms(pct(rest, 99)), ms(pct(db_samples, 99))


def ms(x: float) -> str:
    return f"{x * 1e3:.2f} ms" if x == x else "-"


def report(rows: list[Figures], base: Figures, pyst2: Figures | None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="FastAGI calls, instant replies (call = connect to EOF; cmd = reply sent -> next command, "
                    "client clock; CPU = server process)", title_justify="left")
    for col in ("contender", "cmds", "calls", "calls/s", "x bare", "x pyst2", "CPU/call", "DB CPU/call",
                "call p50", "call p99", "cmd p50", "cmd p99", "peak RSS", "note"):
        t.add_column(col, justify="left" if col in ("contender", "note") else "right")
    for r in rows:
        s = r.samples or Samples()
        t.add_row(
            r.name, str(len(FULL_FLOW_COMMANDS) if r.name.startswith("full") else len(COMMANDS)), str(r.calls),
            f"{r.rate:.0f}", f"{r.rate / base.rate:.2f}" if base.rate else "-",
            f"{r.rate / pyst2.rate:.1f}" if pyst2 and pyst2.rate else "-",
            f"{r.cpu_per_call_us:.0f} µs" if r.cpu_per_call_us else "-",
            f"{r.db_cpu_per_call_us:.0f} µs" if r.db_cpu_per_call_us is not None else "-",
            ms(pct(s.call, 50)), ms(pct(s.call, 99)), ms(pct(s.command, 50)), ms(pct(s.command, 99)),
            f"{r.peak_rss_kb / 1024:.1f} MB" if r.peak_rss_kb else "-", r.note)
    Console(width=200).print(t)


async def main(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    _raise_fd_limit()
    try:
        import uvloop  # noqa: F401
        have_uvloop = True
    except ImportError:
        have_uvloop = False
    console.print(f"bench_agi: {args.calls} calls ({args.full_calls} full-flow), {args.concurrency} concurrent; "
                  f"pyst2 {args.pyst2_calls} calls, "
                  f"{args.pyst2_concurrency} concurrent; idle {args.idle} sessions")
    console.print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
                  f"client loop: {type(asyncio.get_running_loop()).__module__}; figures are per server process")
    console.print(f"baselines: {len(COMMANDS)} commands per call; full flow: the {len(FULL_FLOW_COMMANDS)} commands "
                  f"the outbound flow sends for a person pressing 2 ({', '.join(FULL_FLOW_COMMANDS)}) and its "
                  "PostgreSQL reads/writes")

    loops = ["asyncio"] + (["uvloop"] if have_uvloop else [])
    rows: list[Figures] = []
    for mode in ["bare-asyncio", "ours-asyncio"] + (["bare-uvloop", "ours-uvloop"] if have_uvloop else []):
        rows.append(await bench_tcp(mode, args.calls, args.concurrency))
    pyst2 = await bench_pyst2(args.pyst2_calls, args.pyst2_concurrency)
    rows.append(pyst2)

    async with FullFlowDB() as db:
        runs = len(loops)
        await db.seed(runs * (2 * min(200, args.full_calls) + 2 * args.full_calls + 100 + 2 * args.high_concurrency
                              + 50 + args.idle) + 100)
        full = {}
        for loop in loops:
            full[loop] = await bench_full_flow(args, db, f"full-{loop}", args.full_calls, args.concurrency)
            rows.append(full[loop])
        report(rows, rows[0], pyst2)

        hi = Table(title=f"per-command turnaround at {args.high_concurrency} concurrent calls "
                         "(the 2 ms target: the p99 of 'server, every cmd')", title_justify="left")
        for col in ("contender", "calls/s", "client cmd p50", "client cmd p99", "server, every cmd p50",
                    "server, every cmd p99", "first p50", "first p99", "after a DB write p99", "no DB p99", "note"):
            hi.add_column(col, justify="left" if col in ("contender", "note") else "right")

        def server_row(r: Figures) -> None:
            every = (r.server_cmd or []) + (r.server_first or [])
            no_db, after_db = split(r)
            hi.add_row(r.name, f"{r.rate:.0f}", ms(pct(r.samples.command, 50)), ms(pct(r.samples.command, 99)),
                       ms(pct(every, 50)), ms(pct(every, 99)), ms(pct(r.server_first, 50)),
                       ms(pct(r.server_first, 99)), after_db, no_db, r.note)

        for mode in [m for m in ("ours-asyncio", "ours-uvloop") if m.split("-")[1] in loops]:
            r = await bench_tcp(mode, args.calls, args.high_concurrency)
            hi.add_row(mode, f"{r.rate:.0f}", ms(pct(r.samples.command, 50)), ms(pct(r.samples.command, 99)),
                       "-", "-", "-", "-", "-", "-", r.note)
        for loop in loops:
            server_row(await bench_full_flow(args, db, f"full-{loop}", args.full_calls, args.high_concurrency))
        for loop in loops:  # asyncio first: what `dialer serve` runs on by default
            server_row(await bench_full_paced(db, f"full-{loop}", args.high_concurrency, args.paced_hold))
        console.print(hi)
        console.print("client cmd = the load generator's reply written -> the next command read (what Asterisk "
                      "waits, plus the load generator's own delays on the same cores); server = inside the "
                      "server, a reply line handed to the channel -> the next command written (flow logic and "
                      "any database round trip the flow waits for between the two commands); every cmd = all "
                      "of them, the first included; first = agi_* block -> first command (attempt lookup and "
                      "answered write); after a DB write = the commands the flow sent right after waiting on "
                      "a write (opt-out confirmation, EXEC Queue, HANGUP after the routing); the final write "
                      "runs while HANGUP goes out. Instant-reply rows offer more calls than the full flow can "
                      "take (their latency is queueing); the paced rows keep that many calls live at a rate "
                      "the server can take.")

        idle = Table(title="idle sessions held at once (each mid-call, waiting on its reply)", title_justify="left")
        for col in ("contender", "held", "kB/session", "opened in", "waiting on"):
            idle.add_column(col, justify="left" if col in ("contender", "waiting on") else "right")
        for mode in ["bare-asyncio", "ours-asyncio"] + (["ours-uvloop"] if have_uvloop else []):
            held, kb, secs = await bench_idle(mode, args.idle)
            idle.add_row(mode, str(held), f"{kb:.1f}", f"{secs:.1f} s", "WAIT FOR DIGIT -1")
        for loop in loops:  # `dialer serve` runs on uvloop when installed (--loop auto), else asyncio
            held, kb, secs = await bench_full_idle(db, f"full-{loop}", args.idle)
            idle.add_row(f"full-{loop}", str(held), f"{kb:.1f}", f"{secs:.1f} s",
                         "STREAM FILE of the message (attempt read, answered written)")
        held, rss, pss = await bench_pyst2_idle(args.pyst2_idle)
        idle.add_row("pyst2-process", str(held), f"{rss:.0f} RSS / {pss:.0f} PSS", "-", "WAIT FOR DIGIT -1, "
                     "one process each")
        console.print(idle)

    b = rows[0]
    for loop in loops:
        f = full[loop]
        console.print(f"full-{loop}: {f.rate:.0f} calls/s = {f.rate / b.rate:.2f} x bare-asyncio "
                      f"(target >= 0.5, stretch 1.0), {f.rate / pyst2.rate:.0f} x pyst2 process-per-call "
                      f"(target >= 20)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--full-calls", type=int, default=1000, help="calls per full-flow run (PostgreSQL)")
    parser.add_argument("--paced-hold", type=float, default=15.0,
                        help="seconds the message plays in the paced 500-call run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--high-concurrency", type=int, default=500)
    parser.add_argument("--pyst2-calls", type=int, default=100)
    parser.add_argument("--pyst2-concurrency", type=int, default=4)
    parser.add_argument("--pyst2-idle", type=int, default=20)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.high_concurrency, args.pyst2_calls, args.idle, args.pyst2_idle = 300, 100, 10, 200, 4
        args.full_calls, args.paced_hold = 200, 3.0
    if args.serve:
        loop_factory = None
        if args.serve.endswith("uvloop"):
            import uvloop

            loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(args.serve))
    else:
        # the load generator runs on uvloop when it can, to disturb the figures less
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main(args))
