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
  full-flow      (c) our outbound flow against PostgreSQL: bench_full_flow() below (flows work)

Prints figures; asserts nothing. ``--quick`` for a smoke run. Runtime 20-50 s on the shared 2-core box.
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


def header(script: str, uniqueid: str) -> bytes:
    return (
        "agi_network: yes\n"
        f"agi_network_script: {script}?campaign=1\n"
        f"agi_request: agi://{HOST}/{script}?campaign=1\n"
        "agi_channel: PJSIP/trunk-00000001\nagi_language: en\nagi_type: PJSIP\n"
        f"agi_uniqueid: {uniqueid}\nagi_version: 22.10.1\nagi_callerid: 15550001111\n"
        "agi_calleridname: Acme Campaign\nagi_context: dialer-outbound\nagi_extension: s\n"
        "agi_priority: 4\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1\n"
        "agi_arg_1: HUMAN\nagi_arg_2: HUMAN-800-800\n\n"
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


@dataclass
class Samples:
    call: list[float] = field(default_factory=list)  # seconds per call, connect -> EOF
    command: list[float] = field(default_factory=list)  # our reply sent -> next command
    first: list[float] = field(default_factory=list)  # header sent -> first command (accept, parse, route)
    errors: int = 0


async def tcp_call(port: int, script: str, uniqueid: str, s: Samples) -> None:
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        s.errors += 1
        return
    writer.write(header(script, uniqueid))
    sent = time.perf_counter()
    n = 0
    try:
        while line := await reader.readline():
            now = time.perf_counter()
            (s.command if n else s.first).append(now - sent)
            n += 1
            answer = reply_for(line)
            if answer is not None:
                writer.write(answer)
            sent = time.perf_counter()
        writer.write(b"HANGUP\n")
    except (ConnectionError, OSError):
        s.errors += 1
    finally:
        writer.close()
    if n != len(COMMANDS):
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


async def serve(mode: str) -> None:
    _raise_fd_limit()
    if mode.startswith("bare"):
        server = await asyncio.start_server(bare_handler, HOST, 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
    else:
        import logging

        from agi.fastagi import FastAGIServer

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        server = FastAGIServer(our_router(), host=HOST, port=0, max_sessions=100_000, backlog=4096)
        await server.start()
        port = server.port
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, **_proc_status()}), flush=True)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerProcess:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __aenter__(self) -> "ServerProcess":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
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


async def bench_full_flow(args: argparse.Namespace) -> Figures | None:
    """(c) Our full outbound flow against PostgreSQL, through N concurrent simulated sessions.

    Slot for the flows work: start a PostgreSQL (scripts/pgserver.py), seed campaigns/contacts/
    attempts, serve ``agi.flows.build_router(settings)`` in a server process, drive sessions that
    answer like agi.sim does for the human-keypress path, and return Figures like bench_tcp.
    Returns None until then.
    """
    return None


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


def report(rows: list[Figures], base: Figures) -> None:
    print("\ncall = connect to EOF; cmd = our reply sent -> next command received (client clock);"
          " CPU/call = server process CPU")
    print(f"{'contender':<15} {'calls':>6} {'calls/s':>9} {'x bare':>7} {'CPU/call':>10} "
          f"{'call p50':>9} {'call p99':>9} {'cmd p50':>8} {'cmd p99':>8} {'peak RSS':>9}  note")
    for r in rows:
        s = r.samples or Samples()
        rss = f"{r.peak_rss_kb / 1024:>7.1f}MB" if r.peak_rss_kb else f"{'-':>9}"
        print(f"{r.name:<15} {r.calls:>6} {r.rate:>9.0f} {r.rate / base.rate if base.rate else 0:>7.2f} "
              f"{(r.cpu_per_call_us or 0):>8.0f}µs "
              f"{pct(s.call, 50) * 1e3:>7.2f}ms {pct(s.call, 99) * 1e3:>7.2f}ms "
              f"{pct(s.command, 50) * 1e3:>6.2f}ms {pct(s.command, 99) * 1e3:>6.2f}ms {rss}  {r.note}")


async def main(args: argparse.Namespace) -> None:
    _raise_fd_limit()
    try:
        import uvloop  # noqa: F401
        have_uvloop = True
    except ImportError:
        have_uvloop = False
    print(f"bench_agi: {args.calls} calls x {len(COMMANDS)} commands, {args.concurrency} concurrent; "
          f"pyst2 {args.pyst2_calls} calls, {args.pyst2_concurrency} concurrent; idle {args.idle} sessions")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"client loop: {type(asyncio.get_running_loop()).__module__}; figures are per server process")

    rows: list[Figures] = []
    modes = ["bare-asyncio", "ours-asyncio"] + (["bare-uvloop", "ours-uvloop"] if have_uvloop else [])
    for mode in modes:
        rows.append(await bench_tcp(mode, args.calls, args.concurrency))
    rows.append(await bench_pyst2(args.pyst2_calls, args.pyst2_concurrency))
    full = await bench_full_flow(args)
    if full is not None:
        rows.append(full)
    base = rows[0]
    report(rows, base)
    if full is None:
        print("full-flow       (c) not measured yet: bench_full_flow() is the slot for the flows work")

    print(f"\nper-command latency at {args.high_concurrency} concurrent calls (p99 is the 2 ms target; it includes"
          " the load generator's own delays on the same cores):")
    for mode in [m for m in modes if m.startswith("ours")]:
        r = await bench_tcp(mode, args.calls, args.high_concurrency)
        s = r.samples
        print(f"  {mode:<13} cmd p50 {pct(s.command, 50) * 1e3:.2f} ms, p99 {pct(s.command, 99) * 1e3:.2f} ms; "
              f"header->first command p50 {pct(s.first, 50) * 1e3:.2f} ms, p99 {pct(s.first, 99) * 1e3:.2f} ms; "
              f"{r.rate:.0f} calls/s {r.note}")

    print(f"\nidle sessions held at once (each mid-call, waiting on WAIT FOR DIGIT -1):")
    for mode in ["bare-asyncio", "ours-asyncio"] + (["ours-uvloop"] if have_uvloop else []):
        held, kb, secs = await bench_idle(mode, args.idle)
        print(f"  {mode:<13} {held:>6} held, {kb:6.1f} kB per session (server RSS growth), opened in {secs:.1f} s")
    held, rss, pss = await bench_pyst2_idle(args.pyst2_idle)
    print(f"  {'pyst2-process':<13} {held:>6} held, {rss:6.0f} kB RSS / {pss:6.0f} kB PSS per call (one process each)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
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
