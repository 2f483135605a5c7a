"""`dialer audit`: the audit log; and the hook that records every changing CLI command in it.

``audit_changes(main)`` wraps the commands of CHANGES once they are all registered: after a
command succeeds, one audit row names the OS user (the sudo user behind root), the action, its
target and the options given (secrets masked: agi.audit.redact), from this host. Commands that
only read, or run a process, are in READS; tests/test_web_cli.py fails when a command is in neither.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
from typing import Any, Callable, Iterator

import click

from agi import audit as log
from agi.cli._util import guard, json_option, print_json, print_table, run_conn
from agi.admin.text import parse_when

# command path -> audit action (the API's action names where it has the same change)
CHANGES = {
    "agents set": "agent.set",
    "campaign create": "campaign.create",
    "campaign set": "campaign.update",
    "campaign schedule": "campaign.schedule",
    "campaign start": "campaign.start",
    "campaign stop": "campaign.stop",
    "campaign delete": "campaign.delete",
    "campaign assign": "campaign.assign",
    "contacts import": "contacts.import",
    "dialers add": "dialer.add",
    "dispose": "attempt.dispose",
    "dnc add": "dnc.add",
    "dnc remove": "dnc.remove",
    "dnc import": "dnc.import",
    "keys create": "key.create",
    "keys revoke": "key.revoke",
    "users add": "user.add",
    "users set": "user.update",
    "users remove": "user.remove",
    "webhooks add": "webhook.add",
    "webhooks remove": "webhook.remove",
    "webhooks retry": "webhook.retry",
}
# read-only commands, long-running processes, and the schema's own commands (db: the migrations)
READS = {
    "agents list", "audit", "campaign list", "campaign show", "pacing simulate", "top", "status", "contacts export",
    "contacts list", "db upgrade", "db downgrade",
    "db current", "db check", "demo", "dialers list", "dnc list", "dnc check", "keys list", "originate",
    "report summary", "report calls", "run", "serve", "sim", "users list", "web", "webhooks list",
    "webhooks deliveries",
}
_QUIET = {"as_json", "yes"}  # options that change only the output


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            yield from commands(cmd, path)
        else:
            yield path, cmd


def audit_changes(main: click.Group) -> None:
    for path, cmd in commands(main):
        if path in CHANGES and cmd.callback is not None and not getattr(cmd.callback, "audited", False):
            cmd.callback = _audited(CHANGES[path], cmd.callback)


def _audited(action: str, callback: Callable) -> Callable:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        out = callback(*args, **kwargs)
        _record(click.get_current_context(), action)
        return out

    run.audited = True  # type: ignore[attr-defined]
    return run


def actor() -> str:
    user = getpass.getuser()
    behind = os.environ.get("SUDO_USER")
    return f"{behind} (as {user})" if behind and behind != user else user


def _record(ctx: click.Context, action: str) -> None:
    target = []
    campaign = ctx.params.get("campaign_ref") or ctx.params.get("campaign")
    if campaign:
        target.append(f"campaign {campaign}")
    if ctx.params.get("user"):
        target.append(f"user {ctx.params['user']}")
    target += [str(ctx.params[p.name]) for p in ctx.command.params
               if isinstance(p, click.Argument) and p.name not in ("campaign_ref", "campaign")]
    details = {k: v for k, v in ctx.params.items() if k not in _QUIET and v is not None and v is not False}
    db_url = ctx.find_root().obj.settings.db_url
    try:
        run_conn(db_url, lambda conn: log.record(conn, actor(), action, " ".join(target), details,
                                                 f"cli {socket.gethostname()}"))
    except click.ClickException as exc:
        click.echo(f"Warning: the change was made but not written to the audit log: {exc.message}", err=True)


@click.command("audit")
@click.option("--from", "since", metavar="DATE", help="From this date/time (UTC).")
@click.option("--to", "until", metavar="DATE", help="Up to this date (the whole day) or time (UTC).")
@click.option("--actor", help="Only actors containing this (a user name, a key id).")
@click.option("--action", help="Only this action or prefix (campaign., dnc.add, ...).")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="At most this many (0: all).")
@json_option
@click.pass_obj
def audit(obj, since, until, actor, action, limit, as_json) -> None:
    """Changes made through the API or the CLI, newest first: when, who, what, on what, from where."""
    start = guard(lambda: parse_when(since)) if since else None
    end = guard(lambda: parse_when(until, end_of_day=True)) if until else None
    rows = run_conn(obj.settings.db_url, lambda conn: log.list_entries(
        conn, since=start, until=end, actor=actor, action=action, limit=limit or None))
    if as_json:
        print_json(rows)
        return
    print_table(f"Audit log ({len(rows)})", ["when (UTC)", "who", "action", "target", "from", "details"],
                [[r["at"], r["actor"], r["action"], r["target"], r["source"], r["details"]] for r in rows])


def register(main: click.Group) -> None:
    main.add_command(audit)
