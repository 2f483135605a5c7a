"""`dialer campaign ...`: create (also from an earlier campaign's results), list, show, set,
schedule, start, stop, delete, assign to dialers. The use cases are in agi.admin: campaigns,
lifecycle, dialers; the setting options in agi.admin.options."""

from __future__ import annotations

import click

from agi.admin import campaigns, dialers, lifecycle, options
from agi.admin.text import parse_last_results
from agi.cli._util import fail, fmt, guard, json_option, print_json, print_table, run_session
from agi.outcomes import CampaignState, ContactState


def setting_options(f):
    """Every campaign setting as an option (agi.admin.options.SETTING_OPTIONS), all optional text."""
    f = click.option(options.ALLOW_DROP_CAP_OPTION, "allow_drop_cap_above_legal", is_flag=True,
                     help="Accept a --drop-cap above the legal 3 % (only where another rule applies).")(f)
    for spec in reversed(options.SETTING_OPTIONS):
        f = click.option(spec.option, option_dest(spec), metavar=spec.metavar, default=None, help=spec.help)(f)
    return f


def option_dest(spec) -> str:
    return options.option_dest(spec.option)


def _settings(kwargs: dict) -> dict:
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in {option_dest(s) for s in options.SETTING_OPTIONS}}
    allow = kwargs.pop("allow_drop_cap_above_legal", False)
    return guard(lambda: options.parse_settings(given, allow))


@click.group("campaign")
def campaign() -> None:
    """Campaigns: settings, schedule, start/stop, dialer assignment."""


@campaign.command("create")
@click.argument("name")
@click.option("--from", "source", metavar="CAMPAIGN", help="Copy the settings of this campaign (id or name).")
@click.option("--last-result", metavar="R1,R2",
              help="With --from: also copy the contacts whose last result there is one of these "
                   "(e.g. no_answer,busy; routing and disposition codes such as dropped work too).")
@setting_options
@json_option
@click.pass_obj
def create(obj, name: str, source: str | None, last_result: str | None, as_json: bool, **kwargs) -> None:
    """Create campaign NAME (unscheduled until `campaign schedule`)."""
    values = _settings(kwargs)
    codes = guard(lambda: parse_last_results(last_result)) if last_result else None
    if codes and not source:
        fail("--last-result needs --from CAMPAIGN")

    async def work(session):
        c, copied = await campaigns.create_campaign(session, name, values, source, codes)
        return {"id": c.id, "name": c.name, "state": c.state, "mode": c.mode,
                "source_campaign_id": c.source_campaign_id, "contacts_copied": copied}

    out = run_session(obj.settings.db_url, work)
    if as_json:
        print_json(out)
        return
    click.echo(f"Created campaign {out['name']!r} (id {out['id']}), {out['mode']}, {out['state']}.")
    if source:
        click.echo(f"Settings copied from {source!r}; {out['contacts_copied']} contact(s) copied"
                   + (f" (last result {last_result})." if last_result else "."))
    click.echo(f"Next: `dialer contacts import FILE.csv --campaign {out['name']}`, "
               f"`dialer campaign schedule {out['name']} --start ... --stop ...`.")


@campaign.command("list")
@json_option
@click.pass_obj
def list_(obj, as_json: bool) -> None:
    """All campaigns with their state and contact counts."""
    rows = run_session(obj.settings.db_url, campaigns.list_campaigns)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Campaigns",
        ["id", "name", "mode", "state", "contacts", "to dial", "attempts", "dialers", "start (UTC)", "stop (UTC)"],
        [[r["id"], r["name"], r["mode"], _state_cell(r), r["contacts"], r["pending"],
          r["attempts"], r["dialers"], r["start_at"], r["stop_at"]] for r in rows],
    )


def _state_cell(row: dict) -> str:
    """What the campaign is doing, as its dialers report it (a dialer whose heartbeat stopped
    counts as stopped); a running campaign on no dialer dials nothing: say so where the admin looks."""
    state = CampaignState(row["state"])
    if row["dialers"] == 0 and state in (CampaignState.RUNNING, CampaignState.SCHEDULED):
        return f"{state.label} (no dialer: nothing dials)"
    overall = CampaignState(row["overall_state"])
    return state.label if overall is state else f"{state.label}; on its dialers: {overall.label}"


@campaign.command("show")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@json_option
@click.pass_obj
def show(obj, campaign_ref: str, as_json: bool) -> None:
    """Settings, per-dialer assignment and state, contact counts by state."""
    data = run_session(obj.settings.db_url, lambda s: campaigns.show_campaign(s, campaign_ref))
    if as_json:
        print_json(data)
        return
    c = data["campaign"]
    print_table(f"Campaign {c['name']} (id {c['id']})", ["setting", "value"],
                [[k, v] for k, v in c.items() if k not in ("id", "name")])
    click.echo(f"State: {CampaignState(c['state']).label}"
               + (f"; on its dialers: {CampaignState(data['overall_state']).label}"
                  if data["overall_state"] != c["state"] else ""))
    if data["dialers"]:
        print_table("Dialers", ["dialer", "lines", "state", "why", "last heartbeat"],
                    [[d["dialer"], d["lines"], d["state_label"], d["reason"], d["last_heartbeat"]]
                     for d in data["dialers"]])
    else:
        click.echo(f"No dialer assigned: `dialer campaign assign {c['name']} --dialer NAME`.")
    print_table("Contacts", ["state", "count"],
                [[ContactState(k).label, n] for k, n in data["contacts"].items() if n]
                + [["Total", sum(data["contacts"].values())]])


@campaign.command("set")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--name", "new_name", metavar="NAME", help="Rename the campaign.")
@setting_options
@json_option
@click.pass_obj
def set_(obj, campaign_ref: str, new_name: str | None, as_json: bool, **kwargs) -> None:
    """Change settings of CAMPAIGN (any of the create options)."""
    values = _settings(kwargs)
    if not values and new_name is None:
        fail("nothing to change: give at least one setting option (see --help)")
    changes = run_session(obj.settings.db_url, lambda s: campaigns.set_campaign(s, campaign_ref, values, new_name))
    if as_json:
        print_json({k: {"old": old, "new": new} for k, (old, new) in changes.items()})
        return
    if not changes:
        click.echo("Nothing changed (the values were already set).")
        return
    print_table("Changed", ["setting", "old", "new"], [[k, old, new] for k, (old, new) in changes.items()])


@campaign.command("schedule")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--start", metavar="DATE", help="Start: YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (in --tz) or 'now'.")
@click.option("--stop", metavar="DATE", help="Stop: YYYY-MM-DD (the whole day included) or 'YYYY-MM-DD HH:MM'.")
@click.option("--days", metavar="DAYS", help="Days to call: mon-fri, mon,wed,fri, all (default all).")
@click.option("--hours", metavar="HH:MM-HH:MM", help="Daily hours in --tz, e.g. 09:00-17:00 or 09:00-12:00,13:00-17:00.")
@click.option("--tz", metavar="ZONE", help="Time zone of the dates and hours (IANA, e.g. America/New_York).")
@json_option
@click.pass_obj
def schedule(obj, campaign_ref, start, stop, days, hours, tz, as_json) -> None:
    """Set dates and daily hours; an unscheduled campaign becomes scheduled.

    Calls also stay inside the calling window in each number's own time zone.
    """
    out = run_session(obj.settings.db_url,
                      lambda s: lifecycle.schedule_campaign(s, campaign_ref, start, stop, days, hours, tz))
    if as_json:
        print_json(out)
        return
    click.echo(f"Campaign {out['campaign']!r}: {CampaignState(out['state']).label}"
               f" from {fmt(out['start_at'])} to {fmt(out['stop_at'])} UTC ({out['tz']}).")
    if out["schedule"]:
        click.echo("Hours: " + "; ".join(f"{d} {','.join('-'.join(s) for s in spans)}"
                                         for d, spans in out["schedule"].items()))
    if not out["dialers"]:
        click.echo(f"Warning: no dialer assigned: `dialer campaign assign {out['campaign']} --dialer NAME`.", err=True)


@campaign.command("start")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@json_option
@click.pass_obj
def start(obj, campaign_ref: str, as_json: bool) -> None:
    """Start a scheduled (or stopped, or completed) campaign: -> running."""
    out = run_session(obj.settings.db_url, lambda s: lifecycle.start_campaign(s, campaign_ref))
    if as_json:
        print_json(out)
        return
    if not out["changed"]:
        click.echo(f"Campaign {out['campaign']!r} is already {CampaignState(out['state']).label}.")
    else:
        click.echo(f"Campaign {out['campaign']!r}: {CampaignState(out['was']).label} -> "
                   f"{CampaignState(out['state']).label}.")
    for w in out["warnings"]:
        click.echo(f"Warning: {w}", err=True)


@campaign.command("stop")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--admin", "by_admin", is_flag=True,
              help="Stop by admin: also cancel every contact still waiting (pending, retry scheduled).")
@json_option
@click.pass_obj
def stop(obj, campaign_ref: str, by_admin: bool, as_json: bool) -> None:
    """Stop dialing: no new calls; calls in progress finish."""
    out = run_session(obj.settings.db_url, lambda s: lifecycle.stop_campaign(s, campaign_ref, by_admin))
    if as_json:
        print_json(out)
        return
    if not out["changed"]:
        click.echo(f"Campaign {out['campaign']!r} is already {CampaignState(out['state']).label}.")
        return
    click.echo(f"Campaign {out['campaign']!r}: {CampaignState(out['was']).label} -> "
               f"{CampaignState(out['state']).label}. Calls in progress finish.")
    if by_admin:
        click.echo(f"{out['cancelled']} waiting contact(s) cancelled.")


@campaign.command("delete")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(obj, campaign_ref: str, yes: bool) -> None:
    """Delete a campaign with its contact memberships and attempts (contacts themselves stay)."""
    if not yes:
        click.confirm(f"Delete campaign {campaign_ref!r} with its memberships and call history?", abort=True)
    out = run_session(obj.settings.db_url, lambda s: campaigns.delete_campaign(s, campaign_ref))
    click.echo(f"Deleted campaign {out['campaign']!r} (id {out['id']}): {out['contacts']} membership(s), "
               f"{out['attempts']} attempt(s).")


@campaign.command("assign")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--dialer", "dialer_name", required=True, metavar="NAME", help="Dialer (see `dialer dialers list`).")
@click.option("--lines", type=click.IntRange(min=1), help="Lines on that dialer (default: the campaign's lines).")
@click.option("--remove", is_flag=True, help="Remove the assignment instead.")
@json_option
@click.pass_obj
def assign(obj, campaign_ref: str, dialer_name: str, lines: int | None, remove: bool, as_json: bool) -> None:
    """Run CAMPAIGN on a dialer (a campaign may run on several dialers, each with its own lines)."""
    out = run_session(obj.settings.db_url,
                      lambda s: dialers.assign_campaign(s, campaign_ref, dialer_name, lines, remove))
    if as_json:
        print_json(out)
    elif out["removed"]:
        click.echo(f"Campaign {out['campaign']!r} no longer runs on dialer {out['dialer']!r}.")
    else:
        click.echo(f"Campaign {out['campaign']!r} runs on dialer {out['dialer']!r} with {out['lines']} line(s).")


def register(main: click.Group) -> None:
    main.add_command(campaign)

