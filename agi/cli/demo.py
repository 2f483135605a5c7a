"""`dialer demo`: a whole campaign against the built-in Asterisk simulator, SQLite, summary printed."""

from __future__ import annotations

import asyncio
import csv
import logging
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

import click
from sqlalchemy import update
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agi import reports
from agi.db import attempts as db
from agi.db.engine import make_engine, make_sessionmaker
from agi.db.migrate import upgrade
from agi.db.models import Campaign
from agi.importer import import_contacts
from agi.local import LocalStack
from agi.outcomes import CampaignMode
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan


def _count(n: int, noun: str) -> str:
    """'1 more number', '2 more numbers'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def register(main: click.Group) -> None:
    main.add_command(demo)


def write_contacts(path: Path, n: int, seed: int) -> list[str]:
    """A CSV of ``n`` contacts whose mix exercises every pre-dial result; returns numbers for the DNC list."""
    rng = random.Random(seed)
    dnc_list = []
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "first_name", "last_name", "cell", "phone", "dnc"])
        for i in range(n):
            number = f"+1202555{i:04d}" if i < 10000 else f"+1303555{i % 10000:04d}"
            roll = rng.random()
            dnc = ""
            if roll < 0.02:
                number = ""  # Contact No Phone
            elif roll < 0.04:
                dnc = "yes"  # the contact's own DNC flag
            elif roll < 0.05:
                number = f"202-555-CALL{i % 10}"  # letters: Invalid Record
            elif roll < 0.06:
                number = f"+44 20 7946 {i % 10000:04d}"  # UK: not an allowed destination
            elif roll < 0.07:
                dnc_list.append(number)  # on the DNC list
            w.writerow([f"demo-{i}", f"Person{i}", "Demo", "", number, dnc])
    return dnc_list


async def _setup(engine, workdir: Path, *, contacts: int, mode: str, lines: int, seed: int) -> tuple[int, str]:
    """The demo campaign with ``contacts`` generated contacts imported; returns (its id, what happened)."""
    async with make_sessionmaker(engine)() as session, session.begin():
        campaign = Campaign(
            name="Demo campaign", mode=mode, queue_name="sales", lines=lines, cps=max(5.0, lines / 2),
            allowed_countries=["US"], caller_id='"Acme Demo" <12025550100>',
            # around the clock so the demo dials whatever the hour; real campaigns default to
            # 08:00-21:00 in the called number's time zone
            window_start=dt.time(0, 0), window_end=dt.time(0, 0),
            retry_rules={"busy": 5, "service_error": 1, "dropped": 30}, max_attempts=2,
            drop_timeout=2, key_timeout=3, key_tries=2)
        session.add(campaign)
    csv_path = workdir / "contacts.csv"
    listed = write_contacts(csv_path, contacts, seed)
    # half of the DNC numbers are listed before the import (caught there), half after it
    # (caught by the originator's check right before dialing)
    before, after = listed[::2], listed[1::2]
    async with engine.begin() as conn:
        for number in before:
            await db.add_dnc(conn, number, "demo")
        report = await import_contacts(conn, campaign.id, csv_path)
        for number in after:
            await db.add_dnc(conn, number, "demo")
    skipped = sum(report.predial.values())
    said = (f"[bold]{campaign.name}[/]: {report.rows} contacts imported, {report.imported} dialable, "
            f"{skipped} stopped at import (no phone, DNC, invalid, forbidden country); "
            f"{_count(len(after), 'more number')} put on the DNC list after the import.")
    return campaign.id, said


def _queues(agents: int) -> dict:
    return {"sales": QueueConfig("sales", agents=agents, talk_seconds=(30.0, 150.0), acw_seconds=(5.0, 20.0))}


async def _demo(contacts: int, speed: float, mode: str, agents: int, lines: int, seed: int,
                workdir: Path, console: Console, keep: bool = False) -> int:
    url = f"sqlite+aiosqlite:///{workdir / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        campaign_id, said = await _setup(engine, workdir, contacts=contacts, mode=mode, lines=lines, seed=seed)
        console.print(said)
        console.print(f"Pacing {mode}, {agents} simulated agents, {lines} lines, simulated time x{speed:g}.")
        started = time.monotonic()
        async with LocalStack(engine, plan=ScenarioPlan.mix(seed=seed), queues=_queues(agents), speed=speed,
                              dialer="demo", lines=lines, cps=max(5.0, lines / 2)) as stack:
            await stack.assign(campaign_id)
            total = await stack.open_contacts(campaign_id)
            with Progress(TextColumn("Dialing"), BarColumn(), MofNCompleteColumn(), TextColumn("contacts"),
                          TimeElapsedColumn(), console=console, transient=True) as progress:
                task = progress.add_task("dial", total=total)
                stack.start()
                await stack.settle(campaign_id, timeout=300.0,
                                   progress=lambda open_: progress.update(task, completed=total - open_))
            occupancy = stack.originator.occupancy(campaign_id)
            calls = len(stack.sim.record)
        elapsed = time.monotonic() - started
        async with engine.connect() as conn:
            summary = await reports.summary(conn, campaign_id)
        _print_summary(console, summary, occupancy)
        console.print(f"{calls} calls placed in {elapsed:.1f} s "
                      f"(about {elapsed * speed / 60:.0f} simulated minutes).")
        if keep:
            console.print(f"Kept: {workdir} (try: dialer --db {url} report calls --campaign 1)")
        return 0
    finally:
        await engine.dispose()


COMPARED = (CampaignMode.PROGRESSIVE.value, CampaignMode.PREDICTIVE.value)
COMPARE_CPS = 10.0  # calls per simulated second the trunk allows in --compare


async def _compare(contacts: int, speed: float, minutes: float, agents: int, lines: int, seed: int,
                   workdir: Path, console: Console) -> int:
    """The same seeded list and call mix dialed progressive, then predictive, each for ``minutes``
    of simulated time (the list is long enough not to run out), side by side."""
    console.print(f"{contacts} generated contacts, {agents} simulated agents, {lines} lines; each mode dials "
                  f"the same list for {minutes:g} simulated minutes (time x{speed:g}).")
    rows = []
    for mode in COMPARED:
        rows.append(await _one_run(mode, contacts, speed, minutes, agents, lines, seed, workdir / mode, console))
    table = Table(title="Progressive vs predictive, same list, same call mix", title_justify="left")
    for column in ("", *COMPARED):
        table.add_column(column, justify="right" if column else "left")
    for label, key, fmt in (("calls placed", "calls", "{:,}"), ("persons answered", "live", "{:,}"),
                            ("connected to an agent", "connected", "{:,}"), ("dropped", "dropped", "{:,}"),
                            ("drop rate", "drop_pct", "{:.2f} %"), ("agent occupancy", "occupancy", "{:.1f} %"),
                            ("connects per agent-hour", "per_agent_hour", "{:.1f}"),
                            ("most lines in use", "max_lines", "{}")):
        table.add_row(label, *("n/a" if r[key] is None else fmt.format(r[key]) for r in rows))
    console.print(table)
    return 0


async def _one_run(mode: str, contacts: int, speed: float, minutes: float, agents: int, lines: int, seed: int,
                   workdir: Path, console: Console) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{workdir / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        campaign_id, _ = await _setup(engine, workdir, contacts=contacts, mode=mode, lines=lines, seed=seed)
        # calls-per-second limits count real seconds (they protect a trunk): in accelerated time
        # they must be raised by the speed, or they, not the pacing, would set the pace
        cps = COMPARE_CPS * speed
        async with engine.begin() as conn:
            await conn.execute(update(Campaign.__table__).values(cps=cps))
        async with LocalStack(engine, plan=ScenarioPlan.mix(seed=seed), queues=_queues(agents), speed=speed,
                              dialer="demo", lines=lines, cps=cps) as stack:
            await stack.assign(campaign_id)
            start = stack.sim.clock.now()
            with Progress(TextColumn(f"Dialing {mode:<11}"), BarColumn(), TextColumn("{task.completed:.0f} of "
                          "{task.total:.0f} simulated min"), TimeElapsedColumn(), console=console,
                          transient=True) as progress:
                task = progress.add_task("dial", total=minutes)
                stack.start()
                while (elapsed := (stack.sim.clock.now() - start) / 60.0) < minutes:
                    progress.update(task, completed=elapsed)
                    await asyncio.sleep(0.2)
            occupancy = stack.originator.occupancy(campaign_id)
            calls, max_lines = len(stack.sim.record), stack.sim.record.max_concurrent
        async with engine.connect() as conn:
            s = await reports.summary(conn, campaign_id)
        connected = s.cells.get("agent_connected", 0)
        return {"calls": calls, "live": s.live_in_window, "connected": connected, "dropped": s.dropped_in_window,
                "drop_pct": s.drop_rate_pct, "occupancy": occupancy, "max_lines": max_lines,
                "per_agent_hour": connected / (agents * minutes / 60.0)}
    finally:
        await engine.dispose()


def _print_summary(console: Console, s, occupancy: float | None) -> None:
    titles = ("Answered calls", "Failed calls", "Live answered calls")
    for title, row in zip(titles, s.rows()):
        table = Table(title=title, title_justify="left")
        for _code, label, _n in row:
            table.add_column(label, justify="right")
        table.add_row(*(str(n) for _c, _l, n in row))
        console.print(table)
    console.print("  ".join(f"{label}: {n}" for _c, label, n in s.extra()))
    rate = s.drop_rate_pct
    rate_text = "n/a" if rate is None else f"{rate:.2f}% ({s.dropped_in_window} of {s.live_in_window} live answers)"
    cap = f"cap {s.drop_cap_pct:g}%"
    console.print(f"Drop rate: [bold]{rate_text}[/], {cap}{'  [red]OVER THE CAP[/]' if s.over_cap else ''}")
    occ = "n/a" if occupancy is None else f"{occupancy:.1f}%"
    console.print(f"Agent occupancy (talk + after-call work over logged-in time): [bold]{occ}[/]")


@click.command()
@click.option("--contacts", type=click.IntRange(10, 20000), default=None,
              help="How many generated contacts [default 300; 5,000 with --compare].")
@click.option("--speed", type=click.FloatRange(min=1.0), default=None,
              help="Simulated time runs this many times faster than real time [default 100; 50 with --compare, "
                   "whose predictive run places ~60 calls a real second].")
@click.option("--mode", type=click.Choice([m.value for m in CampaignMode]), default=CampaignMode.PROGRESSIVE.value,
              show_default=True, help="Pacing mode.")
@click.option("--agents", type=click.IntRange(1, 500), default=10, show_default=True, help="Simulated agents.")
@click.option("--lines", type=click.IntRange(1, 1000), default=None,
              help="Lines of the dialer [default 30; 60 with --compare: predictive needs more].")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the contacts and the call mix.")
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the database and CSV in this directory.")
@click.option("--compare", is_flag=True,
              help="Dial the same list progressive and then predictive for --minutes each and print them "
                   "side by side (defaults: 5,000 contacts, 60 lines).")
@click.option("--minutes", type=click.FloatRange(min=5), default=60.0, show_default=True,
              help="With --compare: simulated minutes each mode dials.")
def demo(contacts, speed, mode, agents, lines, seed, keep, compare, minutes) -> None:
    """Run a whole campaign against the built-in Asterisk simulator and print its summary.

    Needs nothing configured: creates a SQLite database in a temp dir, a campaign with
    generated contacts (every result represented), starts the simulator (AMI, callees,
    agents), the FastAGI server and the originator on free loopback ports, dials at
    accelerated time, then prints the campaign summary and the drop rate.
    """
    console = Console()
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # the summary is the output; per-call log lines only with -vv
        logging.getLogger().setLevel(logging.WARNING)
    contacts = contacts or (5000 if compare else 300)
    speed = speed or (50.0 if compare else 100.0)
    lines = lines or (60 if compare else 30)

    def run(workdir: Path) -> int:
        if compare:
            return asyncio.run(_compare(contacts, speed, minutes, agents, lines, seed, workdir, console))
        return asyncio.run(_demo(contacts, speed, mode, agents, lines, seed, workdir, console, keep=bool(keep)))

    if keep:
        workdir = Path(keep)
        workdir.mkdir(parents=True, exist_ok=True)
        raise SystemExit(run(workdir))
    with tempfile.TemporaryDirectory(prefix="dialer-demo-") as tmp:
        raise SystemExit(run(Path(tmp)))
