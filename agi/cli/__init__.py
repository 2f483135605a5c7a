"""The ``dialer`` command: one click group; each module of this package adds its commands.

A module here defines ``register(main)`` and attaches its group or commands to ``main``.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from agi import logs
from agi.cli.audit import audit_changes
from agi.settings import Settings


class DialerContext:
    """What every command gets: the settings (secrets masked in any display) and --json."""

    def __init__(self, settings: Settings, json_output: bool = False) -> None:
        self.settings = settings
        self.json = json_output


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", type=click.Path(dir_okay=False), envvar="DIALER_CONFIG",
              help="TOML settings file (keys as in the README); DIALER_* variables override it.")
@click.option("--db", "db_url", metavar="URL", help="Database URL (overrides DIALER_DB_URL).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("--log-format", type=click.Choice(["plain", "json"]), envvar="DIALER_LOG_FORMAT", default="plain",
              show_default=True, help="Log lines on stderr: plain text, or JSON with the attempt id as a field.")
@click.version_option(package_name="asterisk-dialer")
@click.pass_context
def main(ctx: click.Context, config: str | None, db_url: str | None, verbose: int, log_format: str) -> None:
    """Outbound dialer for Asterisk: campaigns, contacts, DNC, FastAGI server, originator, reports."""
    try:
        settings = Settings.load(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if db_url:
        settings.db_url = db_url
    level = {0: settings.log_level, 1: "INFO", 2: "DEBUG"}.get(verbose, "DEBUG")
    logs.setup(level, log_format)
    ctx.obj = DialerContext(settings)


def pass_dialer(f):
    """Decorator: pass the DialerContext as the first argument."""
    return click.pass_obj(f)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(main)


_register_all()
audit_changes(main)  # every changing command leaves an audit row (agi/cli/audit.py)
