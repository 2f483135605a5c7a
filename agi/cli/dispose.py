"""`dialer dispose`: an agent working in a CRM sets an attempt's disposition after the call."""

from __future__ import annotations

import datetime as dt

import click

from agi.admin.text import parse_tz, parse_when
from agi.cli._util import print_json, run_db
from agi import dispositions
from agi.errors import AdminError


def register(main: click.Group) -> None:
    main.add_command(dispose)


@click.command()
@click.argument("attempt_id")
@click.argument("disposition", metavar="DISPOSITION")
@click.option("--callback-at", metavar="WHEN",
              help="For call_back: 'YYYY-MM-DD HH:MM' (in --tz), an ISO time, '+2h' / '+30m', or 'tomorrow' "
                   "(this time tomorrow, the default).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of --callback-at.")
@click.option("--json", "as_json", is_flag=True, help="Print the attempt as JSON.")
@click.pass_obj
def dispose(obj, attempt_id: str, disposition: str, callback_at: str | None, tz: str, as_json: bool) -> None:
    """Set ATTEMPT_ID's DISPOSITION (interested, not_interested, call_back, opt_out).

    The agent's word replaces a disposition keyed in the IVR. opt_out puts the number on the
    DNC list at once; call_back re-dials the contact at --callback-at (default: tomorrow).
    """
    try:
        choice = dispositions.parse_agent_disposition(disposition)
    except AdminError as exc:
        raise click.BadParameter(str(exc), param_hint="DISPOSITION") from None
    now = dt.datetime.now(dt.timezone.utc)
    when = _when(callback_at, tz, now) if callback_at else None

    async def work(engine):
        async with engine.begin() as conn:
            try:
                return await dispositions.dispose(conn, attempt_id, choice, when, now=now)
            except LookupError:
                raise AdminError(f"no attempt {attempt_id!r} (see `dialer report calls` for attempt ids)") from None

    attempt = run_db(obj.settings.db_url, work)
    if as_json:
        print_json({"attempt": attempt.id, "disposition": attempt.disposition.value,
                    "callback_at": attempt.callback_at, "result": attempt.result and attempt.result.value})
    else:
        extra = f", call back at {attempt.callback_at:%Y-%m-%d %H:%M} UTC" if attempt.callback_at else ""
        click.echo(f"attempt {attempt.id}: {attempt.disposition.label}{extra}")


def _when(text: str, tz: str, now: dt.datetime) -> dt.datetime:
    text = text.strip()
    if text.lower() == "tomorrow":
        return now + dispositions.DEFAULT_CALLBACK
    if text.startswith("+") and text[-1:] in ("h", "m") and text[1:-1].isdigit():
        amount = int(text[1:-1])
        return now + (dt.timedelta(hours=amount) if text.endswith("h") else dt.timedelta(minutes=amount))
    try:
        zone = parse_tz(tz)
    except AdminError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    try:
        return parse_when(text, zone, now=now)
    except AdminError as exc:
        raise click.BadParameter(str(exc), param_hint="--callback-at") from None
