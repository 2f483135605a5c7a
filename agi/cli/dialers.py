"""`dialer dialers ...`: the originators (one per Asterisk box) campaigns run on (seed 003)."""

from __future__ import annotations

import click

from agi.admin.dialers import add_dialer, list_dialers
from agi.cli._util import json_option, print_json, print_table, run_session
from agi.outcomes import CampaignState


@click.group("dialers")
def dialers() -> None:
    """Dialers: one originator per Asterisk box, with its lines and calls per second."""


@dialers.command("add")
@click.argument("name")
@click.option("--ami", metavar="HOST:PORT", help="The Asterisk box's AMI address (default: DIALER_AMI_HOST:"
              "DIALER_AMI_PORT, else 127.0.0.1:5038). The dialer's own address wins over those variables.")
@click.option("--lines", type=int, help="Lines (simultaneous calls) of this dialer (default 30).")
@click.option("--cps", type=float, help="Calls per second this dialer may start (default 10).")
@click.option("--template", metavar="DIALSTRING",
              help="Originate channel with {number}, e.g. 'PJSIP/{number}@trunk' (the default).")
@click.option("--update", "update_existing", is_flag=True, help="Change the dialer if it exists.")
@json_option
@click.pass_obj
def add(obj, name, ami, lines, cps, template, update_existing, as_json) -> None:
    """Add dialer NAME (or change it with --update)."""

    if ami is None and not update_existing:  # the environment's AMI address is the default of a new dialer
        ami = f"{obj.settings.ami_host}:{obj.settings.ami_port}"

    async def work(session):
        d, created = await add_dialer(session, name, ami, lines, cps, template, update_existing)
        return {"id": d.id, "name": d.name, "ami": f"{d.ami_host}:{d.ami_port}", "lines": d.lines,
                "cps": d.cps, "template": d.dial_template, "created": created}

    out = run_session(obj.settings.db_url, work)
    if as_json:
        print_json(out)
        return
    verb = "Added" if out["created"] else "Updated"
    click.echo(f"{verb} dialer {out['name']!r}: AMI {out['ami']}, {out['lines']} lines, "
               f"{out['cps']:g} calls/s, {out['template']}.")


@dialers.command("list")
@json_option
@click.pass_obj
def list_(obj, as_json: bool) -> None:
    """Dialers, their limits, last heartbeat and campaigns."""
    rows = run_session(obj.settings.db_url, list_dialers)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Dialers",
        ["name", "AMI", "lines", "cps", "template", "last heartbeat", "campaigns"],
        [[r["name"], r["ami"], r["lines"], r["cps"], r["template"], r["last_heartbeat"],
          ", ".join(f"{c['campaign']} ({CampaignState(c['state']).label})" for c in r["campaigns"])]
         for r in rows],
    )


def register(main: click.Group) -> None:
    main.add_command(dialers)
