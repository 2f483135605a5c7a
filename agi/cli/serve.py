"""``dialer serve``: run the FastAGI server in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal

import click

from agi.errors import AdminError
from agi.cli._util import check_database, metrics_option, start_metrics
from agi.db.agi_servers import agi_addresses
from agi.fastagi import FastAGIServer, Router
from agi.fastagi.server import new_event_loop, parse_allow
from agi.metrics.http import MetricsServer
from agi.presence import AgiPresence
from agi.settings import Settings, parse_hostport

log = logging.getLogger("agi.cli.serve")


async def load_router(settings: Settings) -> Router:
    """``agi.flows.build_router(settings)`` (sync or async), or a router with only the default flow."""
    try:
        from agi.flows import build_router
    except ImportError as exc:
        if "build_router" not in str(exc):
            raise  # agi.flows exists but is broken: say so loudly
        log.warning("agi.flows.build_router is not there yet: serving the default flow only "
                    "(every call is told so in Asterisk's log and hung up)")
        return Router()
    router = build_router(settings)
    if inspect.isawaitable(router):
        router = await router
    return router


def split_bind(text: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT', '[::1]:4573' -> (host, port)."""
    host, port = parse_hostport(text, 4573)
    return host.strip("[]"), port


async def serve(settings: Settings, host: str, port: int, allow: tuple[str, ...], max_sessions: int,
                deadline: float, metrics_bind: str | None = None) -> None:
    await check_database(settings.db_url)  # every call writes there: refuse to start without it
    router = await load_router(settings)
    log.info("AGI script paths served: %s (others: %s)", ", ".join(sorted(router.routes)) or "none",
             getattr(router.default, "__name__", "default"))
    server = FastAGIServer(router, host=host, port=port, allow=allow, max_sessions=max_sessions)
    presence: AgiPresence | None = None
    loop = asyncio.get_running_loop()
    signals = 0

    async def drain() -> None:
        if presence is not None:
            await presence.stop()  # first: no new call is sent to a server that is draining
        await server.shutdown(deadline)

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("%s: graceful shutdown (up to %g s for calls in progress; again to force)",
                     signal.Signals(signum).name, deadline)
            loop.create_task(drain())
        else:
            log.warning("%s again: closing every session now", signal.Signals(signum).name)
            server.abort_sessions()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await server.start()
    # the address the originators send calls to (__DIALER_AGI): the same fallback as theirs; of a
    # failover list (the originators' setting) a server is one address, its own: the first
    public = settings.agi_public or f"{host}:{server.port}"
    if len(agi_addresses(public)) > 1:
        log.warning("DIALER_AGI_PUBLIC lists %s: this server registers as the first, %s; give each "
                    "`dialer serve` its own address (the list is the originators')", public, agi_addresses(public)[0])
    presence = AgiPresence(router.context.engine, public, lambda: server.sessions)
    await presence.start()
    metrics = MetricsServer(router.context.engine, metrics_bind, agi_server=server) if metrics_bind else None
    try:
        if metrics is not None:
            await start_metrics(metrics)
        await server.serve_forever()
    finally:
        if metrics is not None:
            await metrics.close()
        if presence is not None:
            await presence.stop()
        await router.aclose()


def register(main: click.Group) -> None:
    @main.command("serve")
    @click.option("--bind", metavar="HOST:PORT", default=None,
                  help="Listen address [settings agi_bind / DIALER_AGI_BIND, default 127.0.0.1:4573].")
    @click.option("--allow", metavar="ADDR,...", default=None,
                  help="Asterisk addresses or networks allowed to connect, comma-separated; '*' = any "
                       "[DIALER_AGI_ALLOW, default 127.0.0.1,::1].")
    @click.option("--max-sessions", type=click.IntRange(min=1), default=None,
                  help="Concurrent FastAGI sessions; more are refused and logged [default 2000].")
    @click.option("--shutdown-deadline", type=float, default=30.0, show_default=True,
                  help="Seconds calls in progress get to finish after SIGTERM.")
    # auto (uvloop when installed) by default: with the one-statement writes the full flow ran
    # about 10 % more calls/s on uvloop than on the stdlib loop, same latencies (docs/performance.md)
    @click.option("--loop", "loop_kind", type=click.Choice(["auto", "asyncio", "uvloop"]), default="auto",
                  show_default=True, help="Event loop: auto (uvloop when installed, the faster one with "
                  "our flows, measured), uvloop, or the stdlib's asyncio.")
    @metrics_option
    @click.pass_obj
    def serve_command(obj, bind: str | None, allow: str | None, max_sessions: int | None,
                      shutdown_deadline: float, loop_kind: str, metrics_bind: str | None) -> None:
        """Run the FastAGI server (foreground, logs to stderr) that Asterisk's AGI(agi://...) reaches."""
        settings: Settings = obj.settings
        try:
            host, port = split_bind(bind or settings.agi_bind)
            allowed = tuple(a.strip() for a in allow.split(",")) if allow is not None else settings.agi_allow
            parse_allow(allowed)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        use_uvloop = {"auto": None, "asyncio": False, "uvloop": True}[loop_kind]
        try:
            new_event_loop(use_uvloop).close()  # uvloop asked for but missing: say so before starting
        except RuntimeError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
                runner.run(serve(settings, host, port, allowed, max_sessions or settings.agi_max_sessions,
                                 shutdown_deadline, metrics_bind))
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
