"""`dialer status`: the installation's health in a few lines, for people and Nagios-style checks.

Exit 0 healthy, 1 degraded, 2 down (Nagios' OK, WARNING, CRITICAL); the checks are agi.live's
(the database, each originator's heartbeat and AMI session, each FastAGI server's heartbeat),
judged by agi.rules.health.
"""

from __future__ import annotations

import asyncio

import click

from agi import live
from agi.cli._util import open_engine, print_json
from agi.errors import AdminError
from agi.rules import health

WORDS = {health.Level.OK: "OK", health.Level.DEGRADED: "DEGRADED", health.Level.DOWN: "DOWN"}
KINDS = {"database": "database", "originator": "originator", "fastagi": "FastAGI server"}


async def _checks(db_url: str) -> list[health.Check]:
    try:
        engine = open_engine(db_url)
    except AdminError as exc:
        return [health.Check("database", "database", health.Level.DOWN, str(exc))]
    try:
        return live.checks(await live.read(engine))
    finally:
        await engine.dispose()


def report(checks: list[health.Check], level: health.Level) -> list[str]:
    """The first line sums up (Nagios shows it), then one line per component."""
    down = [c for c in checks if c.level is health.Level.DOWN]
    if down:
        summary = "; ".join(f"{KINDS[c.kind]} {c.name}: {c.detail}" if c.kind != "database" else f"database: {c.detail}"
                            for c in down)
    else:
        working = {k: sum(1 for c in checks if c.kind == k and c.working) for k in ("originator", "fastagi")}
        summary = (f"{working['originator']} originator(s) dialing, {working['fastagi']} FastAGI server(s) alive"
                   if len(checks) > 1 else "no dialer or FastAGI server has run yet")
        if level is health.Level.DOWN:
            summary = f"nothing can place or take calls: {summary}"
    lines = [f"DIALER {WORDS[level]} - {summary}"]
    for c in checks:
        name = "" if c.kind == "database" else f" {c.name}"
        lines.append(f"{'OK' if c.level is health.Level.OK else 'DOWN':<4}  {KINDS[c.kind]}{name}: {c.detail}")
    return lines


def register(main: click.Group) -> None:
    @main.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
    @click.pass_obj
    def status(obj, as_json: bool) -> None:
        """Health of the database, each originator and each FastAGI server: a line each.

        Exit status 0 healthy, 1 degraded (some component down, calls still made and taken),
        2 down (the database unreachable or not migrated, no originator working, or no FastAGI
        server alive to take answered calls): Nagios' OK, WARNING and CRITICAL.
        """
        checks = asyncio.run(_checks(obj.settings.db_url))
        level = health.overall(checks)
        if as_json:
            print_json({"status": WORDS[level].lower(), "exit": int(level), "checks": [
                {"component": c.kind, "name": c.name, "status": WORDS[c.level].lower(), "detail": c.detail,
                 "working": c.working} for c in checks]})
        else:
            click.echo("\n".join(report(checks, level)))
        click.get_current_context().exit(int(level))
