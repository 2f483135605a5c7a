"""``dialer db``: the schema's Alembic migrations (upgrade, downgrade, current, check)."""

from __future__ import annotations

import json

import click

from agi.settings import mask_url


def register(main: click.Group) -> None:
    main.add_command(db)


@click.group()
def db() -> None:
    """Database schema: apply, undo and check the migrations (uses --db / DIALER_DB_URL)."""


def _fail(action: str, url: str, exc: Exception) -> click.ClickException:
    from sqlalchemy.exc import DBAPIError

    from agi.cli._util import _BUSY, BUSY_HINT

    why = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip()
    if any(b in why.lower() for b in _BUSY):
        return click.ClickException(f"{action} on {mask_url(url)} waited too long: {BUSY_HINT}")
    return click.ClickException(
        f"{action} failed on {mask_url(url)}: {why}\n"
        "Check the database URL (--db or DIALER_DB_URL) and that the server is reachable."
    )


@db.command()
@click.argument("rev", default="head")
@click.pass_obj
def upgrade(obj, rev: str) -> None:
    """Migrate the database up to REV (default: head, the newest schema)."""
    from agi.db import migrate

    url = obj.settings.db_url
    try:
        migrate.upgrade(url, rev, on_wait=lambda message: click.echo(message, err=True))
        now = migrate.current(url)
    except Exception as exc:  # noqa: BLE001 - report any driver/alembic error plainly
        raise _fail("upgrade", url, exc) from None
    click.echo(f"database {mask_url(url)} at revision {now or '(none)'}")


@db.command()
@click.argument("rev")
@click.pass_obj
def downgrade(obj, rev: str) -> None:
    """Migrate the database down to REV (a revision id, -1, or base to drop everything)."""
    from agi.db import migrate

    url = obj.settings.db_url
    try:
        migrate.downgrade(url, rev, on_wait=lambda message: click.echo(message, err=True))
        now = migrate.current(url)
    except Exception as exc:  # noqa: BLE001
        raise _fail("downgrade", url, exc) from None
    click.echo(f"database {mask_url(url)} at revision {now or '(none: base)'}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print {current, head} as JSON.")
@click.pass_obj
def current(obj, as_json: bool) -> None:
    """Show the database's revision and the newest one available."""
    from agi.db import migrate

    url = obj.settings.db_url
    try:
        rev, head = migrate.current(url), migrate.head()
    except Exception as exc:  # noqa: BLE001
        raise _fail("reading the revision", url, exc) from None
    if as_json or getattr(obj, "json", False):
        click.echo(json.dumps({"current": rev, "head": head}))
        return
    state = "up to date" if rev == head else "run `dialer db upgrade`"
    click.echo(f"{rev or '(none)'} (head {head}: {state})")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print the differences as a JSON list.")
@click.pass_obj
def check(obj, as_json: bool) -> None:
    """Compare the models with the migrated database; exit 1 if they differ."""
    from agi.db import migrate

    url = obj.settings.db_url
    try:
        rev, head = migrate.current(url), migrate.head()
        diffs = migrate.check(url) if rev == head else None
    except Exception as exc:  # noqa: BLE001
        raise _fail("check", url, exc) from None
    if diffs is None:
        raise click.ClickException(
            f"database is at revision {rev or '(none)'}, not head {head}: "
            "run `dialer db upgrade` first"
        )
    if as_json or getattr(obj, "json", False):
        click.echo(json.dumps([repr(d) for d in diffs]))
    if diffs:
        if not (as_json or getattr(obj, "json", False)):
            click.echo("models and migrations disagree:", err=True)
            for d in diffs:
                click.echo(f"  {d!r}", err=True)
        raise click.ClickException(
            f"{len(diffs)} difference(s) between agi/db/models.py and the migrations: "
            "write a migration (alembic revision --autogenerate) or fix the models"
        )
    if not (as_json or getattr(obj, "json", False)):
        click.echo(f"models and migrations agree (revision {rev})")
