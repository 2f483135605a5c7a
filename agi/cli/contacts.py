"""`dialer contacts ...`: CSV import into a campaign (per-line report), export, list.

What a bad row does is decided in agi.importer (see its docstring): rows with a pre-dial
result are imported and recorded as pre-dial attempts; malformed rows are only reported.
"""

from __future__ import annotations

import csv
import sys
import time

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from agi import importer, reports
from agi.cli._util import console, json_option, print_json, print_table, run_conn, run_db
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
@click.option("--id-field", metavar="COLUMN",
              help="The column holding your CRM's id, the contact's identity. Default: a column named id "
                   "(or external_id, contact_id, customer_id, crm_id) when the file has one.")
@click.option("--update/--no-update", default=True, show_default=True,
              help="A row matched by its id updates the fields it changes (the report says what changed).")
@click.option("--delimiter", default=None,
              help="Field separator: one character, or tab. Default: detected from the header (comma, "
                   "semicolon, tab or |).")
@click.option("--encoding", default="auto", show_default=True,
              help="The file's encoding: auto = UTF-8 with or without a byte-order mark; cp1252 for a CSV "
                   "saved by Excel on Windows; any Python codec name.")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, writable=True),
              help="Write the reported rows (line, reason, detail) to this CSV instead of the screen.")
@json_option
@click.pass_obj
def import_(obj, file, campaign_ref, phone_field, column_map, id_field, update, delimiter, encoding, errors_file,
            as_json) -> None:
    """Import contacts from FILE (CSV with a header row) into a campaign.

    Good rows become pending contacts. Rows with a pre-dial result (DNC flag or DNC list, no phone,
    invalid number, forbidden country) are imported as skipped contacts and counted in the campaign
    summary. A DNC flag on a contact already stored makes it DNC in every campaign it is in.
    Malformed rows are only reported. Each reported row names its line. Importing the same file again
    changes nothing; an interrupted import (Ctrl-C, kill) is finished by running it again.
    """
    err = console(stderr=True)
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("importing", total=None, rows=0, rate=0.0)

        def progress(rows: int, done: int, total: int) -> None:
            rate = rows / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total or None, rows=rows, rate=rate)

        def waiting(message: str) -> None:
            bar.console.print(f"[yellow]{message}[/]")

        async def work(engine):
            report = await importer.import_contacts(
                engine, campaign_ref, file, phone_field=phone_field, column_map=column_map, delimiter=delimiter,
                encoding=encoding, id_field=id_field, update=update, progress=progress, on_wait=waiting)
            issues = await _issues(engine, report, errors_file, file, as_json)
            return report, issues

        report, issues = run_db(obj.settings.db_url, work)
    seconds = time.monotonic() - started
    if as_json:
        print_json({**report.as_dict(), "issues": issues})
        return
    print_table(f"Import into {report.campaign}", ["", "rows"], report.summary())
    for note in report.notes():
        click.echo(note)
    rate = report.rows / max(seconds, 1e-6)
    click.echo(f"{report.rows:,} rows read in {seconds:.1f} s ({rate:,.0f} rows/s): {report.imported:,} dialable, "
               f"{sum(report.predial.values()):,} skipped by the pre-dial check, {report.marked_dnc:,} marked DNC, "
               f"{report.updated:,} updated, {report.duplicates:,} duplicates, {report.malformed:,} malformed.")
    if errors_file:
        click.echo(f"{issues} reported row(s) written to {errors_file}.")


async def _issues(engine, report, errors_file, file, as_json):
    """The run's reported rows, streamed from the database: to the --errors file, to stderr, or (for
    --json) as a list. Returns the list, or how many were written."""
    if as_json:
        return [i.as_dict() async for i in importer.iter_issues(engine, report.run_id)]
    if errors_file:
        count = 0
        with open(errors_file, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "reason", "detail"])
            async for issue in importer.iter_issues(engine, report.run_id):
                w.writerow([issue.line, issue.reason, issue.detail])
                count += 1
        return count
    async for issue in importer.iter_issues(engine, report.run_id):
        click.echo(f"{file}:{issue.line}: {importer.reason_label(issue.reason)}: {issue.detail}", err=True)
    return None


def _reason_label(reason: str) -> str:
    return importer.reason_label(reason)


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
