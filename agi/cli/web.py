"""``dialer web``: serve the public HTTP API (and the webhook deliveries) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import click

from agi.errors import AdminError
from agi.cli._util import check_database
from agi.settings import parse_hostport

# Importing FastAPI and uvicorn takes about half a second: only `dialer web` pays it, inside the
# command, not every other `dialer` command at start-up.
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # agi.web.limits.DEFAULT_MAX_BODY (tests/test_web_cli.py holds them equal)

log = logging.getLogger("agi.cli.web")


def openapi_text(app) -> str:
    """The OpenAPI document as checked into docs/openapi.json (stable order, trailing newline)."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@click.command("web")
@click.option("--bind", envvar="DIALER_WEB_BIND", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Address to listen on. Loopback by default: put a TLS reverse proxy (nginx) in front "
                   "for other hosts (README).")
@click.option("--rate-limit", type=click.FloatRange(min=0), default=20.0, show_default=True, metavar="N",
              envvar="DIALER_WEB_RATE_LIMIT", help="Requests per second per API key (bursts of twice that; 0: no limit).")
@click.option("--max-body", type=click.IntRange(min=1024), default=DEFAULT_MAX_BODY, show_default=True,
              metavar="BYTES", envvar="DIALER_WEB_MAX_BODY", help="Largest request body accepted (413 above).")
@click.option("--webhooks/--no-webhooks", default=True, show_default=True,
              help="Deliver webhooks from this process (several processes may: each message is claimed once).")
@click.option("--trusted-proxy", "trusted", default="127.0.0.1", show_default=True, metavar="IP[,IP]",
              help="Proxies whose X-Forwarded-For names the client (audit log 'from where').")
@click.option("--session-secret", envvar="DIALER_SESSION_SECRET", metavar="TEXT",
              help="Signs the console's session cookies: set it (env DIALER_SESSION_SECRET) so sessions outlive a "
                   "restart and every `dialer web` process accepts them.")
@click.option("--secure-cookies/--no-secure-cookies", default=False, show_default=True,
              help="The console is served over HTTPS (the TLS proxy): cookies only over HTTPS.")
@click.option("--openapi", "openapi_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the OpenAPI document to this file ('-': stdout) and exit (docs/openapi.json).")
@click.pass_obj
def web(obj, bind: str, rate_limit: float, max_body: int, webhooks: bool, trusted: str,
        session_secret: str | None, secure_cookies: bool, openapi_file: str | None) -> None:
    """Serve the public HTTP API (/api/v1/..., the OpenAPI document at /docs), the agent console (/agent)
    and the supervisor board (/board)."""
    import uvicorn

    from agi.web.app import WebOptions, create_app

    options = WebOptions(rate=rate_limit, max_body=max_body, webhooks=webhooks, session_secret=session_secret,
                         secure_cookies=secure_cookies)
    if openapi_file:
        text = openapi_text(create_app(db_url="sqlite+aiosqlite://", options=options))
        if openapi_file == "-":
            click.echo(text, nl=False)
        else:
            Path(openapi_file).write_text(text, encoding="utf-8")
        return
    try:
        host, port = parse_hostport(bind, 8080)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    try:
        asyncio.run(check_database(obj.settings.db_url))  # refuse to start without the schema
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(db_url=obj.settings.db_url, options=options)
    log.info("API on http://%s:%d/api/v1 (OpenAPI at /docs), console at /agent and /board", host, port)
    config = uvicorn.Config(app, host=host.strip("[]"), port=port, proxy_headers=True, forwarded_allow_ips=trusted,
                            log_config=None, access_log=True, server_header=False, timeout_graceful_shutdown=30)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again to the handler
    # that was there before it: make that one a no-op, so a graceful stop exits 0 (as `dialer serve`)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()
    log.info("dialer web stopped")


def register(main: click.Group) -> None:
    main.add_command(web)
