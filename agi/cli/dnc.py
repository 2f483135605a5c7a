"""`dialer dnc ...`: the do-not-call list (E.164 numbers), checked at import and before every dial."""

from __future__ import annotations

import click

from agi import importer
from agi.importer.dnc import waiting_with
from agi.admin.dnc import dnc_add, dnc_get, dnc_list, dnc_remove
from agi.admin.text import normalize_number
from agi.errors import AdminError
from agi.cli._util import guard, json_option, print_json, print_table, run_conn

REGION_HELP = "Region for numbers written without +country code."


def _number(raw: str, region: str) -> str:
    return guard(lambda: normalize_number(raw, region))


@click.group("dnc")
def dnc() -> None:
    """Do-not-call list: add, remove, import, list, check numbers (normalised to E.164)."""


@dnc.command("add")
@click.argument("number")
@click.option("--source", default="manual", show_default=True, help="Where the entry comes from.")
@click.option("--region", default="US", show_default=True, help=REGION_HELP)
@click.pass_obj
def add(obj, number: str, source: str, region: str) -> None:
    """Put NUMBER on the DNC list."""
    e164 = _number(number, region)

    async def work(conn):
        return await dnc_add(conn, e164, source), await waiting_with(conn, [e164])

    added, waiting = run_conn(obj.settings.db_url, work)
    click.echo(f"{e164} added to the DNC list." if added else f"{e164} was already on the DNC list.")
    if waiting:
        click.echo(_waiting(waiting))


@dnc.command("remove")
@click.argument("number")
@click.option("--region", default="US", show_default=True, help=REGION_HELP)
@click.pass_obj
def remove(obj, number: str, region: str) -> None:
    """Take NUMBER off the DNC list."""
    e164 = _number(number, region)
    removed = run_conn(obj.settings.db_url, lambda conn: dnc_remove(conn, e164))
    if not removed:
        raise click.ClickException(f"{e164} is not on the DNC list")
    click.echo(f"{e164} removed from the DNC list.")


@dnc.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", default="import", show_default=True, help="Source recorded for these entries.")
@click.option("--region", default="US", show_default=True, help=REGION_HELP)
@json_option
@click.pass_obj
def import_(obj, file: str, source: str, region: str, as_json: bool) -> None:
    """Add the numbers of FILE: one per line, or a CSV whose first column is the number."""
    report = run_conn(obj.settings.db_url, lambda conn: importer.import_dnc(conn, file, region, source))
    if as_json:
        print_json(report.as_dict())
        return
    for issue in report.issues:
        click.echo(f"{file}:{issue.line}: {issue.reason}: {issue.detail}", err=True)
    print_table("DNC import", ["", "numbers"],
                [["Added", report.added], ["Already listed", report.already], ["Invalid", report.invalid],
                 ["Waiting contacts now DNC", report.waiting]])
    if report.waiting:
        click.echo(_waiting(report.waiting))


def _waiting(count: int) -> str:
    return (f"{count:,} contact(s) waiting to be dialed (in any campaign) have these numbers: each is skipped "
            "with result Contact DNC by the check right before dialing, never dialed.")


@dnc.command("list")
@click.option("--source", help="Only entries from this source (manual, import, opt_out, ...).")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: all).")
@json_option
@click.pass_obj
def list_(obj, source: str | None, limit: int, as_json: bool) -> None:
    """The DNC list."""
    rows = run_conn(obj.settings.db_url, lambda conn: dnc_list(conn, source, limit or None))
    if as_json:
        print_json([{"number": r.number, "source": r.source, "added_at": r.added_at} for r in rows])
        return
    print_table(f"DNC list ({len(rows)})", ["number", "source", "added (UTC)"],
                [[r.number, r.source, r.added_at] for r in rows])


@dnc.command("check")
@click.argument("number")
@click.option("--region", default="US", show_default=True, help=REGION_HELP)
@json_option
@click.pass_obj
def check(obj, number: str, region: str, as_json: bool) -> None:
    """Exit 0 if NUMBER is not on the DNC list, 1 if it is (2: not a valid number)."""
    try:
        e164 = normalize_number(number, region)
    except AdminError as exc:
        click.echo(f"Error: {exc}", err=True)
        click.get_current_context().exit(2)
    row = run_conn(obj.settings.db_url, lambda conn: dnc_get(conn, e164))
    if as_json:
        print_json({"number": e164, "listed": row is not None,
                    "source": row.source if row else None, "added_at": row.added_at if row else None})
    elif row is None:
        click.echo(f"{e164} is not on the DNC list.")
    else:
        click.echo(f"{e164} is on the DNC list (source {row.source}, added {row.added_at:%Y-%m-%d %H:%M} UTC).")
    if row is not None:
        click.get_current_context().exit(1)


def register(main: click.Group) -> None:
    main.add_command(dnc)
