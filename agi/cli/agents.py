"""`dialer agents ...`: which users take calls in the console, on which phone, for which campaigns."""

from __future__ import annotations

import click

from agi.agents import roster
from agi.cli._util import json_option, print_json, print_table, run_conn


@click.group("agents")
def agents() -> None:
    """Agents of the console (`dialer web`, /agent): a user with role agent, their phone and campaigns."""


@agents.command("set")
@click.argument("user")
@click.option("--interface", required=True, metavar="TECH/RESOURCE",
              help="The agent's Asterisk device the queue and preview calls ring, e.g. PJSIP/agent1.")
@click.option("--campaign", "campaigns", multiple=True, metavar="CAMPAIGN",
              help="A campaign they work (repeat the option); going ready adds them to its queue.")
@click.option("--dialer", metavar="NAME", help="The dialer (Asterisk box) their phone is on: its originator "
              "puts them in the queues and rings them for preview calls.")
@json_option
@click.pass_obj
def set_(obj, user: str, interface: str, campaigns: tuple[str, ...], dialer: str | None, as_json: bool) -> None:
    """Make USER an agent, or change their phone, campaigns or dialer."""
    out = run_conn(obj.settings.db_url, lambda conn: roster.set_agent(conn, user, interface, list(campaigns), dialer))
    if as_json:
        print_json(out)
    else:
        click.echo(f"Agent {out['user']!r}: phone {out['interface']}, campaigns {out['campaigns'] or 'none'}, "
                   f"dialer {out['dialer'] or 'none'}. They log in at /agent of `dialer web`.")


@agents.command("list")
@json_option
@click.pass_obj
def list_(obj, as_json: bool) -> None:
    """The agents, their phone, campaigns and state."""
    rows = run_conn(obj.settings.db_url, roster.list_agents)
    data = [{"user": a.user, "interface": a.interface, "campaigns": list(a.campaigns), "dialer_id": a.dialer_id,
             "state": a.state, "since": a.state_since, "pause_reason": a.pause_reason} for a in rows]
    if as_json:
        print_json(data)
        return
    print_table(f"Agents ({len(data)})", ["user", "phone", "campaigns", "state", "since (UTC)"],
                [[d["user"], d["interface"], ",".join(map(str, d["campaigns"])), d["state"]
                  + (f" ({d['pause_reason']})" if d["pause_reason"] else ""), d["since"]] for d in data])


def register(main: click.Group) -> None:
    main.add_command(agents)
