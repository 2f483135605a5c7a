"""`dialer contacts ...`: CSV import into a campaign (per-line report), export, list.

What a bad row does is decided in agi.importer (see its docstring): rows with a pre-dial
result are imported and recorded as pre-dial attempts; malformed rows are only reported.
"""

from __future__ import annotations

import csv
import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agi import importer, reports
from agi.cli._util import console, json_option, print_json, print_table, run_conn
from agi.outcomes import ContactState, Result
from agi.rules.predial import PHONE_FIELD_CHOICES


@click.group("contacts")
def contacts() -> None:
    """Contacts of a campaign: CSV import and export, listing by state."""


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--campaign", "campaign_ref", required=True, metavar="CAMPAIGN", help="Campaign id or name.")
@click.option("--phone-field", type=click.Choice(PHONE_FIELD_CHOICES),
              help="Check that the campaign dials this phone field; a different one is refused. The "
                   "field dialed is the campaign's setting: `dialer campaign create/set --phone-field`.")
@click.option("--map", "column_map", metavar="COL=FIELD,...",
              help="Column mapping, e.g. \"Mobile=cell,Tel=phone,First=first_name,Notes=-\". Fields: "
                   + ", ".join(importer.FIELDS) + ", custom.NAME, or - to drop. Unmapped columns "
                   "are matched by name (case-insensitive) or kept as custom fields.")
@click.option("--delimiter", default=",", show_default=True, help="Field separator (one character, or 'tab').")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, writable=True),
              help="Write the reported rows (line, reason, detail) to this CSV instead of the screen.")
@json_option
@click.pass_obj
def import_(obj, file, campaign_ref, phone_field, column_map, delimiter, errors_file, as_json) -> None:
    """Import contacts from FILE (CSV with a header row) into a campaign.

    Good rows become pending contacts. Rows with a pre-dial result (no phone, DNC flag or DNC list,
    invalid number, forbidden country) are imported as skipped contacts and counted in the
    campaign summary. Malformed rows are only reported. Each reported row names its line.
    Importing the same file again changes nothing.
    """
    err = console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("reading", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description="importing" if stage == "write" else "reading",
                       completed=done, total=total or None)

        report = run_conn(obj.settings.db_url, lambda conn: importer.import_contacts(
            conn, campaign_ref, file, phone_field=phone_field, column_map=column_map,
            delimiter=delimiter, progress=progress))

    if errors_file:
        with open(errors_file, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "reason", "detail"])
            for issue in report.issues:
                w.writerow([issue.line, issue.reason, issue.detail])
    if as_json:
        print_json(report.as_dict())
        return
    if report.issues and not errors_file:
        for issue in report.issues:
            click.echo(f"{file}:{issue.line}: {_reason_label(issue.reason)}: {issue.detail}", err=True)
    print_table(f"Import into {report.campaign}", ["", "rows"], report.summary())
    if errors_file:
        click.echo(f"{len(report.issues)} reported row(s) written to {errors_file}.")


def _reason_label(reason: str) -> str:
    try:
        return Result(reason).label
    except ValueError:
        return reason


@contacts.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--campaign", "campaign_ref", required=True, metavar="CAMPAIGN", help="Campaign id or name.")
@click.option("--state", metavar="STATE[,STATE]", help="Only these contact states (e.g. pending,retry_scheduled).")
@click.pass_obj
def export(obj, file, campaign_ref, state) -> None:
    """Write a campaign's contacts with their state and last result to FILE ('-': stdout)."""
    rows = run_conn(obj.settings.db_url, lambda conn: reports.list_contacts(conn, campaign_ref, state))
    header, out = importer.export_rows(rows)
    if file == "-":
        w = csv.writer(sys.stdout)
        w.writerow(header)
        w.writerows(out)
        return
    with open(file, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(out)
    click.echo(f"{len(out)} contact(s) written to {file}.", err=True)


@contacts.command("list")
@click.option("--campaign", "campaign_ref", required=True, metavar="CAMPAIGN", help="Campaign id or name.")
@click.option("--state", metavar="STATE[,STATE]", help="Only these states: " + ", ".join(s.value for s in ContactState))
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="At most this many (0: all).")
@json_option
@click.pass_obj
def list_(obj, campaign_ref, state, limit, as_json) -> None:
    """List a campaign's contacts with their state, number and last result."""
    rows = run_conn(obj.settings.db_url, lambda conn: reports.list_contacts(conn, campaign_ref, state, limit or None))
    if as_json:
        print_json(rows)
        return
    print_table(
        f"Contacts ({len(rows)})",
        ["id", "name", "number", "time zone", "state", "attempts", "last result", "next attempt (UTC)"],
        [[r["contact_id"], f"{r['first_name']} {r['last_name']}".strip(), r["number"], r["timezone"],
          ContactState(r["state"]).label, r["attempts"], _reason_label(r["last_result"]) if r["last_result"] else "",
          r["next_attempt_at"]] for r in rows],
    )


def register(main: click.Group) -> None:
    main.add_command(contacts)
