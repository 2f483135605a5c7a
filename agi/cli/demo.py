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


async def _demo(contacts: int, speed: float, mode: str, agents: int, lines: int, seed: int,
                workdir: Path, console: Console, keep: bool = False) -> int:
    url = f"sqlite+aiosqlite:///{workdir / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
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
        console.print(f"[bold]{campaign.name}[/]: {report.rows} contacts imported, {report.imported} dialable, "
                      f"{skipped} stopped at import (no phone, DNC, invalid, forbidden country); "
                      f"{_count(len(after), 'more number')} put on the DNC list after the import.")
        console.print(f"Pacing {mode}, {agents} simulated agents, {lines} lines, simulated time x{speed:g}.")

        plan = ScenarioPlan.mix(seed=seed)
        queues = {"sales": QueueConfig("sales", agents=agents, talk_seconds=(30.0, 150.0),
                                       acw_seconds=(5.0, 20.0))}
        started = time.monotonic()
        async with LocalStack(engine, plan=plan, queues=queues, speed=speed, dialer="demo",
                              lines=lines, cps=max(5.0, lines / 2)) as stack:
            await stack.assign(campaign.id)
            total = await stack.open_contacts(campaign.id)
            with Progress(TextColumn("Dialing"), BarColumn(), MofNCompleteColumn(), TextColumn("contacts"),
                          TimeElapsedColumn(), console=console, transient=True) as progress:
                task = progress.add_task("dial", total=total)
                stack.start()
                await stack.settle(campaign.id, timeout=300.0,
                                   progress=lambda open_: progress.update(task, completed=total - open_))
            occupancy = stack.originator.occupancy(campaign.id)
            calls = len(stack.sim.record)
        elapsed = time.monotonic() - started
        async with engine.connect() as conn:
            summary = await reports.summary(conn, campaign.id)
        _print_summary(console, summary, occupancy)
        console.print(f"{calls} calls placed in {elapsed:.1f} s "
                      f"(about {elapsed * speed / 60:.0f} simulated minutes).")
        if keep:
            console.print(f"Kept: {workdir} (try: dialer --db {url} report calls --campaign 1)")
        return 0
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
@click.option("--contacts", type=click.IntRange(10, 20000), default=300, show_default=True,
              help="How many generated contacts.")
@click.option("--speed", type=click.FloatRange(min=1.0), default=100.0, show_default=True,
              help="Simulated time runs this many times faster than real time.")
@click.option("--mode", type=click.Choice([m.value for m in CampaignMode]), default=CampaignMode.PROGRESSIVE.value,
              show_default=True, help="Pacing mode.")
@click.option("--agents", type=click.IntRange(1, 500), default=10, show_default=True, help="Simulated agents.")
@click.option("--lines", type=click.IntRange(1, 1000), default=30, show_default=True, help="Lines of the dialer.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the contacts and the call mix.")
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the database and CSV in this directory.")
def demo(contacts, speed, mode, agents, lines, seed, keep) -> None:
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
    if keep:
        workdir = Path(keep)
        workdir.mkdir(parents=True, exist_ok=True)
        code = asyncio.run(_demo(contacts, speed, mode, agents, lines, seed, workdir, console, keep=True))
    else:
        with tempfile.TemporaryDirectory(prefix="dialer-demo-") as tmp:
            code = asyncio.run(_demo(contacts, speed, mode, agents, lines, seed, Path(tmp), console))
    raise SystemExit(code)
