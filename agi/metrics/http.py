"""The metrics port of `dialer serve`, `originate` and `run` (``--metrics-bind``): GET /metrics in
Prometheus' text format, GET /healthz with this process's health.

A small HTTP/1.1 server on the process's own event loop (no thread): a scrape first reads the
database through agi.live, then renders this process's counters, its originator as it is now and
the database's figures from one registry of its own.

/healthz answers 200 while this process can do its job (the database reachable and migrated, its
originator's AMI session up, its FastAGI server listening), 503 when it cannot, with the checks
as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import gc_collector, platform_collector, process_collector
from sqlalchemy.ext.asyncio import AsyncEngine

from agi import live
from agi.metrics import INSTRUMENTS
from agi.metrics.collectors import DatabaseCollector, OriginatorCollector
from agi.rules import health
from agi.settings import parse_hostport

if TYPE_CHECKING:
    from agi.fastagi import FastAGIServer
    from agi.originator.dialer import Originator

log = logging.getLogger("agi.metrics")

READ_TIMEOUT_S = 5.0  # a client has this long to send its request
MAX_REQUEST_BYTES = 8192


def own_checks(database: live.DatabaseView, originator: Originator | None,
               agi_server: FastAGIServer | None) -> list[health.Check]:
    """This process's checks: the database as `dialer status` judges it, and its own parts."""
    checks = [health.database(database.reachable, database.revision, database.head, database.error)]
    if originator is not None:
        up = originator.ami.connected
        checks.append(health.Check("originator", originator.name, health.Level.OK if up else health.Level.DOWN,
                                   "AMI connected" if up else "AMI disconnected", working=up))
    if agi_server is not None:
        listening = agi_server.listening
        checks.append(health.Check(
            "fastagi", f"{agi_server.host}:{agi_server.port}", health.Level.OK if listening else health.Level.DOWN,
            f"listening, {agi_server.sessions} sessions" if listening else "not accepting calls", working=listening))
    return checks


class MetricsServer:
    """``await MetricsServer(engine, "127.0.0.1:9120", originator=..., agi_server=...).start()``."""

    def __init__(self, engine: AsyncEngine, bind: str, *, originator: Originator | None = None,
                 agi_server: FastAGIServer | None = None) -> None:
        self.engine = engine
        self.host, self._port = parse_hostport(bind, 9120)
        self.host = self.host.strip("[]")
        self.originator = originator
        self.agi_server = agi_server
        self.database = DatabaseCollector()
        self.registry = CollectorRegistry(auto_describe=True)
        for instrument in INSTRUMENTS:
            self.registry.register(instrument)
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        if originator is not None:
            self.registry.register(OriginatorCollector(originator))
        self.registry.register(self.database)
        self._server: asyncio.Server | None = None
        self.routes: dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]] = {
            "/metrics": self.metrics, "/healthz": self.healthz}

    @property
    def port(self) -> int:
        if self._server and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self._port)
        log.info("metrics on http://%s:%s/metrics, health on /healthz", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def metrics(self) -> tuple[int, str, bytes]:
        self.database.snapshot = await live.read(self.engine, with_results=True)
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    async def healthz(self) -> tuple[int, str, bytes]:
        checks = own_checks(await live.database(self.engine), self.originator, self.agi_server)
        level = max(c.level for c in checks)
        body = {"status": level.name.lower(),
                "checks": [{"component": c.kind, "name": c.name, "status": c.level.name.lower(), "detail": c.detail}
                           for c in checks]}
        return (503 if level is health.Level.DOWN else 200), "application/json", json.dumps(body).encode()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if len(head) > MAX_REQUEST_BYTES:
            await self._reply(writer, 431, "text/plain", b"request too large\n")
            return
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        route = self.routes.get(path)
        if method != "GET" or route is None:
            await self._reply(writer, 404, "text/plain", b"try /metrics or /healthz\n")
            return
        try:
            status, ctype, body = await route()
        except Exception:  # noqa: BLE001 - a scrape must not take the process down
            log.exception("metrics: %s failed", path)
            status, ctype, body = 500, "text/plain", b"internal error: see the process's log\n"
        await self._reply(writer, status, ctype, body)

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
        reason = {200: "OK", 404: "Not Found", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
                  503: "Service Unavailable"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode("latin-1") + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()
