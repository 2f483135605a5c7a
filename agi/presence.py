"""A FastAGI server's heartbeat while it serves: originators dial only while one is alive.

Without it a dead `dialer serve` was dialed into: every answered person got the dialplan's
fallback drop message (or dead air) and the attempts ended `other`. The beat carries the
live session count for the operators' views; a graceful stop says so at its start, so no
new call is sent to a server that is draining.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db import agi_servers
from agi.db.outage import OUTAGE, transient
from agi.rules.lifecycle import AGI_BEAT_EVERY_S

log = logging.getLogger("agi.presence")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AgiPresence:
    """``await presence.start()`` once the server listens; ``await presence.stop()`` when it
    starts draining. Beats every ``every`` seconds in between; a failed beat is logged once
    per outage and tried again."""

    def __init__(self, engine: AsyncEngine, address: str, sessions: Callable[[], int],
                 every: float = AGI_BEAT_EVERY_S) -> None:
        self.engine = engine
        self.address = agi_servers.agi_addresses(address)[0]
        self.sessions = sessions
        self.every = every
        self.pid = os.getpid()
        self.hostname = socket.gethostname()
        self.started_at = utcnow()
        self._task: asyncio.Task | None = None
        self._failing = False
        self._stopping = False
        self._marked = False  # the stop was written (a second stop updates its count)

    async def start(self) -> None:
        self._stopping = self._marked = False
        await self._beat()
        if self._stopping:  # stopped while the first beat was written: say so
            await self._mark_stopped()
            return
        self._task = asyncio.get_running_loop().create_task(self._loop())
        log.info("FastAGI server %s: heartbeat every %g s in the database", self.address, self.every)

    async def stop(self) -> None:
        """Stop beating and mark this server stopped (originators stop sending it calls), with the
        calls it still has. Called again once they are drained, it records what is left (0): the
        row's count was otherwise the last beat's, taken while calls were still up."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        elif not self._marked:
            return  # never beat, or abandoned (a death, not a stop)
        await self._mark_stopped()

    def abandon(self) -> None:
        """Beat no more and say nothing (the process died): the beat goes stale (tests, demos)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _mark_stopped(self) -> None:
        self._marked = True
        try:
            async with self.engine.begin() as conn:
                await agi_servers.mark_stopped(conn, self.address, self.pid, utcnow(), self.sessions())
        except Exception as exc:  # noqa: BLE001 - stopping anyway: the stale beat will tell
            log.warning("FastAGI server %s: could not record the stop (%s); its beat goes stale", self.address, exc)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self._beat()
            except Exception as exc:  # noqa: BLE001 - the database may come back
                if transient(exc):  # the database's outage, said once for the process (agi.db.outage)
                    OUTAGE.failed(f"FastAGI server {self.address} heartbeat", exc)
                elif not self._failing:
                    log.warning("FastAGI server %s: heartbeat not written (%s); retrying every %g s",
                                self.address, exc, self.every)
                self._failing = True
                continue
            if self._failing:
                log.info("FastAGI server %s: heartbeat written again", self.address)
                self._failing = False

    async def _beat(self) -> None:
        async with self.engine.begin() as conn:
            await agi_servers.beat(conn, self.address, hostname=self.hostname, pid=self.pid,
                                   live_sessions=self.sessions(), now=utcnow(), started_at=self.started_at)
