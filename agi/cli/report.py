"""`dialer report ...`: the campaign summary (docs/outcomes.md's three rows, drop rate, pace) and the call log."""

from __future__ import annotations

import csv

import click

from agi import reports
from agi.admin.text import parse_when
from agi.cli._util import console, fmt, guard, json_option, print_json, print_table, run_conn
from rich.table import Table


@click.group("report")
def report() -> None:
    """Reports: campaign summary, call log."""


@report.command("summary")
@click.option("--campaign", "campaign_ref", required=True, metavar="CAMPAIGN", help="Campaign id or name.")
@json_option
@click.pass_obj
def summary(obj, campaign_ref: str, as_json: bool) -> None:
    """The campaign summary: every cell counts attempts; plus drop rate, occupancy, attempts per hour."""
    s = run_conn(obj.settings.db_url, lambda conn: reports.summary(conn, campaign_ref))
    if as_json:
        print_json(s.as_dict())
        return
    out = console()
    titles = ("Answered calls", "Failed calls", "Live answered calls")
    for title, row in zip(titles, s.rows()):
        table = Table(title=title if title != titles[0] else f"{s.campaign}: {title}")
        for _code, label, _n in row:
            table.add_column(label, justify="right")
        table.add_row(*(str(n) for _c, _l, n in row))
        out.print(table)
    click.echo("  ".join(f"{label}: {n}" for _c, label, n in s.extra())
               + (f"  In progress: {s.in_progress}" if s.in_progress else ""))
    rate = s.drop_rate_pct
    window = f"{s.drop_window_hours // 24} days" if s.drop_window_hours % 24 == 0 else f"{s.drop_window_hours} h"
    if rate is None:
        click.echo(f"Drop rate: n/a (no live answer in the last {window}; cap {s.drop_cap_pct:g}%)")
    else:
        flag = "  OVER THE CAP" if s.over_cap else ""
        click.echo(f"Drop rate: {rate:.2f}% ({s.dropped_in_window} dropped / {s.live_in_window} live answers, "
                   f"last {window}; cap {s.drop_cap_pct:g}%){flag}")
    occ = "n/a" if s.agent_occupancy_pct is None else f"{s.agent_occupancy_pct:.1f}%"
    pace = "n/a" if s.attempts_per_hour is None else f"{s.attempts_per_hour:.1f}"
    click.echo(f"Agent occupancy: {occ}   Attempts per hour: {pace} (last hour: {s.attempts_last_hour})")


@report.command("calls")
@click.option("--campaign", "campaign_ref", metavar="CAMPAIGN", help="Campaign id or name (default: all).")
@click.option("--result", metavar="R1,R2", help="Only these results, routings or dispositions (e.g. busy,dropped).")
@click.option("--from", "since", metavar="DATE", help="From this date/time (UTC; YYYY-MM-DD or ISO).")
@click.option("--to", "until", metavar="DATE", help="Up to this date (the whole day included) or time (UTC).")
@click.option("--number", metavar="NUMBER", help="Only this number (any format), or numbers containing these digits.")
@click.option("--region", default="US", show_default=True, help="Region for --number without +country code.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most this many, newest first (0: all; --csv exports all unless given).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, allow_dash=True), help="Export to this CSV file.")
@json_option
@click.pass_obj
def calls(obj, campaign_ref, result, since, until, number, region, limit, csv_file, as_json) -> None:
    """The call log: time, number, result, routing, disposition, talk time, agent, class (target,
    repeat, call-back not answered, call forwarding scheme did not work)."""
    start = guard(lambda: parse_when(since)) if since else None
    end = guard(lambda: parse_when(until, end_of_day=True)) if until else None
    if csv_file and click.get_current_context().get_parameter_source("limit").name == "DEFAULT":
        limit = 0
    rows = run_conn(obj.settings.db_url, lambda conn: reports.call_log(
        conn, campaign=campaign_ref, result=result, since=start, until=end, number=number,
        region=region, limit=limit or None))
    if csv_file:
        _write_csv(csv_file, rows)
        return
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    print_table(
        f"Call log ({len(rows)})",
        ["time (UTC)", "campaign", "number", "result", "routing", "disposition", "talk s", "agent", "class",
         "attempt"],
        [[r.time, r.campaign, r.number, lab["result"], lab["routing"], lab["disposition"], r.talk_seconds,
          r.agent, lab["class"], r.attempt_id] for r in rows for lab in [r.labels()]],
    )


def _write_csv(csv_file: str, rows: list[reports.CallRow]) -> None:
    """The call log as CSV: the codes, then labels and the attempt's times, cause and detail."""
    fh = click.open_file(csv_file, "w", encoding="utf-8")
    with fh:
        w = csv.writer(fh)
        w.writerow([*reports.CALL_LOG_COLUMNS, "result_label", "answered_at", "ended_at", "hangup_cause", "detail",
                    "class_label"])
        for r in rows:
            d = r.as_dict()
            w.writerow([fmt(d[c]) if c == "time" else ("" if d[c] is None else d[c])
                        for c in reports.CALL_LOG_COLUMNS]
                       + [r.labels()["result"], fmt(r.answered_at), fmt(r.ended_at),
                          "" if r.hangup_cause is None else r.hangup_cause, r.detail or "", r.labels()["class"]])
    if csv_file != "-":
        click.echo(f"{len(rows)} call(s) written to {csv_file}.", err=True)


def register(main: click.Group) -> None:
    main.add_command(report)
