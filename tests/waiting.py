"""The one way tests wait for something that happens in another task or process.

A liveness bound, never a speed claim: the timeout only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import Any


async def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "", *procs: tuple[Popen, Path],
                every: float = 0.05) -> Any:
    """Call ``check()`` (a plain or a coroutine function) until it gives something truthy; return it.

    ``procs`` are (process, its log file) pairs that must stay alive meanwhile: one that died
    fails the wait at once with the end of its log, instead of at the timeout."""
    end = time.monotonic() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        for proc, log in procs:
            assert proc.poll() is None, f"{proc.args!r} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or getattr(check, '__name__', check)}")
        await asyncio.sleep(every)
