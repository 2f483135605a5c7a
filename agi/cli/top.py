"""`dialer top`: the live view, redrawn every second from the database (agi.live) until `q`.

`--once` prints one frame and exits (scripts, tests, a quick look); `--json` prints one snapshot.
The frame is drawn by agi.cli._top_view; the keys are read in cbreak mode, so `q` needs no Enter
and the terminal is restored however the view ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator

try:  # POSIX terminals; elsewhere the view still runs, Ctrl-C quits
    import termios
    import tty
except ImportError:  # pragma: no cover - Windows
    termios = tty = None

import click
from rich.console import Console
from rich.live import Live

from agi import live
from agi.cli._top_view import frame
from agi.cli._util import guard, open_engine, print_json

QUIT_KEYS = b"qQ"


@contextlib.contextmanager
def quit_on_key(stop: asyncio.Event) -> Iterator[None]:
    """``stop`` is set when q is pressed (stdin a terminal), or on SIGINT / SIGTERM."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fd = sys.stdin.fileno() if termios is not None and sys.stdin is not None and sys.stdin.isatty() else None
    saved = termios.tcgetattr(fd) if fd is not None else None

    def on_key() -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data or any(k in data for k in QUIT_KEYS):  # q, or stdin closed
            stop.set()

    try:
        if fd is not None:
            tty.setcbreak(fd)
            loop.add_reader(fd, on_key)
        yield
    finally:
        if fd is not None:
            loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _watch(engine, interval: float, options: dict) -> None:
    stop = asyncio.Event()
    console = Console()
    with quit_on_key(stop), Live(console=console, screen=True, auto_refresh=False, transient=True) as view:
        while not stop.is_set():
            view.update(frame(await live.read(engine, **options), interval=interval), refresh=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def _top(db_url: str, interval: float, options: dict, once: bool, as_json: bool) -> None:
    engine = guard(lambda: open_engine(db_url))
    try:
        if as_json:
            print_json((await live.read(engine, **options)).as_dict())
        elif once:
            Console().print(frame(await live.read(engine, **options)))
        else:
            await _watch(engine, interval, options)
    finally:
        await engine.dispose()


def register(main: click.Group) -> None:
    @main.command("top")
    @click.option("--once", is_flag=True, help="Print one frame and exit.")
    @click.option("--json", "as_json", is_flag=True, help="Print one snapshot as JSON and exit.")
    @click.option("--interval", type=click.FloatRange(min=0.2), default=1.0, show_default=True,
                  help="Seconds between two frames.")
    @click.option("--campaign", "names", multiple=True, metavar="NAME", help="Only this campaign (repeatable).")
    @click.option("--all", "all_campaigns", is_flag=True,
                  help="Every campaign, not only those running or scheduled (or with calls up).")
    @click.pass_obj
    def top(obj, once: bool, as_json: bool, interval: float, names: tuple[str, ...], all_campaigns: bool) -> None:
        """Live view: per campaign and dialer the state and why, pacing, lines, calls, agents, drop
        rate, occupancy, pace and contacts left; FastAGI servers and originators with their
        heartbeats. Refreshes every second; q quits."""
        options = {"names": names, "all_campaigns": all_campaigns}
        if not (once or as_json) and not sys.stdout.isatty():
            raise click.UsageError("the live view needs a terminal: use --once or --json in scripts")
        asyncio.run(_top(obj.settings.db_url, interval, options, once, as_json))
