"""`dialer originate` (one per Asterisk box), `dialer run` (FastAGI server + originator in one process)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time

import click
from sqlalchemy import select

from agi.ami.client import AMIClient
from agi.ami.errors import AMIAuthError, AMIConnectError
from agi.cli._util import check_database, db_error, metrics_option, start_metrics
from agi.db.engine import make_engine
from agi.db.models import Dialer
from agi.fastagi import FastAGIServer
from agi.flows import build_router
from agi.metrics.http import MetricsServer
from agi.originator.dialer import AMI_EVENTS, Originator
from agi.presence import AgiPresence
from agi.rules.lifecycle import HEARTBEAT_STALE_AFTER_S
from agi.settings import Settings, parse_hostport

log = logging.getLogger("agi.cli")
# a running originator writes its heartbeat every 5 s (agi.originator.dialer.HEARTBEAT_S): watch a little longer
ALIVE_WATCH_S = 6.0


def register(main: click.Group) -> None:
    main.add_command(originate)
    main.add_command(run)


def _dialer_options(f):
    f = click.option("--dialer", "dialer_name", metavar="NAME",
                     help="This dialer's name (one per Asterisk box; default DIALER_NAME or 'default').")(f)
    f = click.option("--lines", type=click.IntRange(min=1), help="Lines of this Asterisk box (never exceeded).")(f)
    f = click.option("--cps", type=click.FloatRange(min=0.1), help="Calls per second this box may start.")(f)
    f = click.option("--template", metavar="DIAL", help="Dial string, e.g. 'PJSIP/{number}@trunk'.")(f)
    f = click.option("--agi", "agi_public", metavar="HOST:PORT",
                     help="FastAGI address Asterisk reaches (sent as __DIALER_AGI; default: the bind address).")(f)
    return f


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread
            pass


async def _connect(settings: Settings, host: str, port: int) -> AMIClient:
    ami = AMIClient(host, port, settings.ami_user, settings.ami_secret, events=AMI_EVENTS)
    await ami.connect(retry_for=30.0)
    return ami


async def _ami_address(engine, settings: Settings, name: str) -> tuple[str, int]:
    """The AMI address registered with `dialer dialers add NAME --ami`: the dialer's own row wins;
    DIALER_AMI_HOST/PORT (or the config file) are the address of a dialer not registered yet. Warns
    when NAME is not registered (a typo starts an idle dialer)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(Dialer.__table__).where(Dialer.__table__.c.name == name))).first()
    if row is None:
        log.warning("dialer %r is not registered (see `dialer dialers list`): registering it now with AMI %s:%s; "
                    "if you meant an existing dialer, stop and check --dialer / DIALER_NAME",
                    name, settings.ami_host, settings.ami_port)
        return settings.ami_host, settings.ami_port
    given = getattr(settings, "given", frozenset())
    if ("ami_host" in given or "ami_port" in given) and (settings.ami_host, settings.ami_port) != (
            row.ami_host, row.ami_port):
        log.info("dialer %s: AMI %s:%s as registered (`dialer dialers add %s --update --ami HOST:PORT` changes it); "
                 "DIALER_AMI_HOST/PORT (%s:%s) only apply to a dialer not registered yet",
                 name, row.ami_host, row.ami_port, name, settings.ami_host, settings.ami_port)
    return row.ami_host, row.ami_port


async def _single_instance(engine, name: str, watch_s: float = ALIVE_WATCH_S) -> None:
    """Refuse to run as NAME while another originator does: two would each fill the dialer's lines."""
    hb = Dialer.__table__.c.last_heartbeat

    async def beat():
        async with engine.connect() as conn:
            return (await conn.execute(select(hb).where(Dialer.__table__.c.name == name))).scalar()

    first = await beat()
    if first is None or dt.datetime.now(dt.timezone.utc) - first > dt.timedelta(seconds=HEARTBEAT_STALE_AFTER_S):
        return
    log.info("dialer %s: heartbeat %s; checking for %g s that no other originator runs as %s",
             name, f"{first:%H:%M:%S}", watch_s, name)
    end = time.monotonic() + watch_s
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        if (now := await beat()) != first:
            raise click.ClickException(
                f"dialer {name!r} is already running (its heartbeat moved at {now:%H:%M:%S} UTC): two originators "
                f"for one Asterisk box would each fill its lines. Stop the other one first, or use another --dialer.")


async def _originate(settings: Settings, name: str, opts: dict, stop: asyncio.Event, engine=None, *,
                     metrics_bind: str | None = None, agi_server: FastAGIServer | None = None) -> None:
    own_engine = engine is None
    if own_engine:
        await check_database(settings.db_url)  # before AMI: a bad URL is an error now, not a traceback later
    engine = engine or make_engine(settings.db_url, pool=settings.db_pool)
    await _single_instance(engine, name)
    ami = await _connect(settings, *await _ami_address(engine, settings, name))
    agi = opts.pop("agi_public") or settings.agi_public or settings.agi_bind
    originator = Originator(engine, ami, name, agi_address=agi, **opts)
    metrics = None
    try:
        if metrics_bind:
            metrics = MetricsServer(engine, metrics_bind, originator=originator, agi_server=agi_server)
            await start_metrics(metrics)
        await originator.run(stop)
    finally:
        if metrics is not None:
            await metrics.close()
        await ami.close()
        if own_engine:
            await engine.dispose()
        log.info("dialer %s: stopped (%s)", name, originator.stats)


def _opts(lines, cps, template, agi_public) -> dict:
    return dict(lines=lines, cps=cps, dial_template=template, agi_public=agi_public)


def _run(coro_factory, db_url: str) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await coro_factory(stop)

    try:
        asyncio.run(main())
    except AMIAuthError as exc:  # the message says what to check (agi.ami.session); said once
        raise click.ClickException(str(exc)) from None
    except AMIConnectError as exc:
        raise click.ClickException(
            f"{exc}\nIs Asterisk's AMI enabled and reachable there? A registered dialer's address is set with "
            "`dialer dialers add NAME --update --ami HOST:PORT`; DIALER_AMI_HOST/PORT are only the address of a "
            "dialer not registered yet.") from None
    except Exception as exc:
        message = db_error(exc, db_url)  # the database gone or never set up: say so, no traceback
        if message is None:
            raise
        raise click.ClickException(message) from None


@click.command()
@_dialer_options
@metrics_option
@click.pass_obj
def originate(obj, dialer_name, lines, cps, template, agi_public, metrics_bind) -> None:
    """Run the originator of one dialer: claim due contacts, pace, Originate over AMI.

    Runs in the foreground, logs to stderr; SIGTERM stops dialing, lets calls in progress
    finish, and exits. Campaigns dial on it once assigned: `dialer campaign assign C --dialer NAME`.
    """
    settings = obj.settings
    name = dialer_name or settings.dialer_name
    _run(lambda stop: _originate(settings, name, _opts(lines, cps, template, agi_public), stop,
                                 metrics_bind=metrics_bind), settings.db_url)


@click.command()
@_dialer_options
@click.option("--bind", metavar="HOST:PORT", help="FastAGI listen address (default DIALER_AGI_BIND).")
@metrics_option
@click.pass_obj
def run(obj, dialer_name, lines, cps, template, agi_public, bind, metrics_bind) -> None:
    """FastAGI server + originator in one process, for a single Asterisk box.

    (`dialer serve` and `dialer originate` stay separate for scale.) SIGTERM stops dialing,
    lets calls finish, then stops the FastAGI server.
    """
    settings = obj.settings
    if bind:
        settings.agi_bind = bind
    name = dialer_name or settings.dialer_name
    host, port = parse_hostport(settings.agi_bind, 4573)

    async def both(stop: asyncio.Event) -> None:
        await check_database(settings.db_url)
        engine = make_engine(settings.db_url, pool=settings.db_pool)
        router = build_router(settings, engine)
        server = FastAGIServer(router, host=host, port=port,
                               allow=settings.agi_allow, max_sessions=settings.agi_max_sessions)
        await server.start()
        log.info("FastAGI listening on %s:%s", host, server.port)
        presence = AgiPresence(engine, agi_public or settings.agi_public or settings.agi_bind,
                               lambda: server.sessions)
        await presence.start()
        try:
            await _originate(settings, name, _opts(lines, cps, template, agi_public), stop, engine,
                             metrics_bind=metrics_bind, agi_server=server)
        finally:
            await presence.stop()
            await server.shutdown(30.0)
            await router.aclose()  # the flows' last final writes land before the engine goes
            await engine.dispose()

    _run(both, settings.db_url)
