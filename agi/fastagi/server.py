"""The FastAGI TCP server: accepts Asterisk's connections, reads the agi_* block, runs the routed flow.

It guards the edges (allow-list, session cap, header deadline and size limits) and keeps every
session's failure to that session; ``shutdown(deadline)`` lets calls in progress finish.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Iterable

from agi.fastagi.channel import Timeouts
from agi.fastagi.transport import LineProtocol
from agi.fastagi.errors import AGIException, AGIHangup, AGIProtocolError
from agi.fastagi.protocol import MAX_HEADER_BYTES, MAX_HEADER_LINES, MAX_LINE, HeaderBlock
from agi.fastagi.routing import AGICall, Router
from agi.metrics import (
    AGI_CONNECTIONS_REFUSED,
    AGI_SESSIONS_ACTIVE,
    AGI_SESSIONS_FAILED,
    AGI_SESSIONS_STARTED,
)

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(allow: Iterable[str] | None) -> list[_Network] | None:
    """'127.0.0.1', '10.0.0.0/8', '::1' -> networks; None (or '*') allows every peer."""
    if allow is None:
        return None
    items = [a.strip() for a in allow if a and a.strip()]
    if "*" in items:
        return None
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"bad allow-list entry {item!r}: expected an IP address or network (10.0.0.0/8)") from None
    return nets


class FastAGIServer:
    """``await server.start()``; ``server.port``; ``await server.shutdown(deadline)``."""

    def __init__(
        self,
        router: Router,
        host: str = "127.0.0.1",
        port: int = 4573,
        allow: Iterable[str] | None = ("127.0.0.1", "::1"),
        max_sessions: int = 2000,
        header_timeout: float = 5.0,
        *,
        timeouts: Timeouts | None = None,
        linger: float = 2.0,
        max_line: int = MAX_LINE,
        max_header_lines: int = MAX_HEADER_LINES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        backlog: int = 1024,
    ) -> None:
        self.router = router
        self.host = host
        self._port = port
        self.allow = parse_allow(allow)
        self.max_sessions = max_sessions
        self.header_timeout = header_timeout
        self.timeouts = timeouts or Timeouts()
        self.linger = linger
        self.max_line = max_line
        self.max_header_lines = max_header_lines
        self.max_header_bytes = max_header_bytes
        self.backlog = backlog
        self.stats: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self._stopped = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self._port, backlog=self.backlog
        )
        log.info("FastAGI server listening on %s:%s (allow: %s, max sessions %d)",
                 self.host, self.port, self._allow_text(), self.max_sessions)

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        if self._server and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def listening(self) -> bool:
        """Accepting new calls (started, not shutting down)."""
        return self._server is not None and not self._closing

    @property
    def sessions(self) -> int:
        """Connections being served right now (reading headers or running a flow)."""
        return len(self._tasks)

    async def serve_forever(self) -> None:
        """Wait until ``shutdown`` has finished."""
        await self._stopped.wait()

    async def shutdown(self, deadline: float = 10.0) -> None:
        """Stop accepting; let sessions finish for up to ``deadline`` s; then close the rest."""
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        running = set(self._tasks)
        if running:
            log.info("shutting down: waiting up to %g s for %d session(s)", deadline, len(running))
            _, pending = await asyncio.wait(running, timeout=deadline)
            if pending:
                log.warning("shutdown deadline: closing %d session(s) still running", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
        log.info("FastAGI server stopped")
        self._stopped.set()

    def abort_sessions(self) -> None:
        """Close every session now (a second SIGTERM): their flows get CancelledError."""
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> "FastAGIServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown(deadline=1.0)

    # ------------------------------------------------------------------ one connection

    def _allow_text(self) -> str:
        return "any" if self.allow is None else ", ".join(map(str, self.allow)) or "nobody"

    def _allowed(self, host: str) -> bool:
        if self.allow is None:
            return True
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allow)

    def _admit(self, peer: tuple, transport: asyncio.BaseTransport) -> bool:
        """The edge checks of a new connection: allow-list, shutting down, session cap.

        A stranger is reset at once; Asterisk over the cap (or during shutdown) gets a plain close,
        which its AGI() reports as AGISTATUS=FAILURE before the dialplan goes on.
        """
        if not self._allowed(str(peer[0])):
            self.stats["refused_peer"] += 1
            AGI_CONNECTIONS_REFUSED.labels("not_allowed").inc()
            log.warning("refused FastAGI connection from %s:%s: not on the allow-list (%s)",
                        peer[0], peer[1], self._allow_text())
            transport.abort()
            return False
        if self._closing or len(self._tasks) >= self.max_sessions:
            why = "shutting down" if self._closing else f"{len(self._tasks)} sessions already (max-sessions)"
            self.stats["refused_closing" if self._closing else "refused_busy"] += 1
            AGI_CONNECTIONS_REFUSED.labels("shutting_down" if self._closing else "max_sessions").inc()
            log.warning("refused FastAGI connection from %s:%s: %s", peer[0], peer[1], why)
            transport.close()
            return False
        return True

    def _start(self, proto: "_Connection") -> None:
        self.stats["accepted"] += 1
        task = asyncio.get_running_loop().create_task(self._session(proto))
        self._tasks.add(task)
        AGI_SESSIONS_ACTIVE.inc()
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        AGI_SESSIONS_ACTIVE.dec()

    async def _session(self, proto: "_Connection") -> None:
        where = f"{proto.peer[0]}:{proto.peer[1]}"
        try:
            async with asyncio.timeout(self.header_timeout):
                call = await proto.header_done
        except TimeoutError:
            self.stats["header_timeout"] += 1
            AGI_SESSIONS_FAILED.labels("none").inc()
            log.warning("FastAGI %s: no complete agi_* block within %g s: closed", where, self.header_timeout)
            proto.transport.abort()
            return
        except AGIProtocolError as exc:
            self.stats["bad_header"] += 1
            AGI_SESSIONS_FAILED.labels("none").inc()
            log.warning("FastAGI %s: bad header block: %s: closed", where, exc)
            proto.transport.abort()
            return
        except asyncio.CancelledError:
            proto.transport.abort()
            raise

        request = call.request
        flow = self.router.resolve(request.path)
        name = getattr(flow, "__name__", repr(flow))
        log.debug("FastAGI %s: %s %r -> %s", where, request.uniqueid, request.script, name)
        flow_label = getattr(flow, "__name__", "unnamed")  # our code's flows: a bounded label
        AGI_SESSIONS_STARTED.labels(flow_label).inc()
        try:
            await flow(call)
            self.stats["completed"] += 1
        except AGIHangup as exc:
            self.stats["hung_up"] += 1
            log.info("%s %s: ended by hang-up: %s", request.uniqueid, request.path, exc)
        except AGIException as exc:
            self.stats["failed"] += 1
            AGI_SESSIONS_FAILED.labels(flow_label).inc()
            log.warning("%s %s: flow %s stopped on an AGI error: %s: %s",
                        request.uniqueid, request.path, name, type(exc).__name__, exc)
        except asyncio.CancelledError:
            self.stats["cancelled"] += 1
            log.warning("%s %s: session closed by shutdown", request.uniqueid, request.path)
            call.abort()
            raise
        except Exception:
            self.stats["failed"] += 1
            AGI_SESSIONS_FAILED.labels(flow_label).inc()
            log.exception("%s %s: flow %s failed", request.uniqueid, request.path, name)
        try:
            await call.close(self.linger)
        except asyncio.CancelledError:
            call.abort()
            raise


class _Connection(LineProtocol):
    """One Asterisk connection: the agi_* block first, then every line to the call's channel."""

    def __init__(self, server: FastAGIServer) -> None:
        super().__init__(server.max_line)
        self.server = server
        self.peer: tuple = ("?", 0)
        self.block = HeaderBlock(server.max_header_lines, server.max_header_bytes)
        self.header_done: asyncio.Future[AGICall] | None = None
        self.call: AGICall | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = tuple(peer[:2])
        if not self.server._admit(self.peer, transport):
            return
        self.transport = transport  # type: ignore[assignment]
        self.header_done = asyncio.get_running_loop().create_future()
        self.server._start(self)

    def line_received(self, raw: bytes) -> None:
        if self.call is not None:
            self.call.feed_line(raw)
            return
        if self.header_done is None or self.header_done.done():
            return  # refused, or the header failed: the session is closing it
        try:
            if not self.block.add(raw):
                return
            if "agi_network_script" not in self.block.env and "agi_request" not in self.block.env:
                raise AGIProtocolError("header block has neither agi_network_script nor agi_request")
        except AGIProtocolError as exc:
            self.header_done.set_exception(exc)
            return
        self.call = AGICall(self.block.request(self.peer), self.transport, timeouts=self.server.timeouts)
        self.header_done.set_result(self.call)

    def line_too_long(self) -> None:
        self._buf.clear()
        exc = AGIProtocolError(f"line longer than {self.max_line} bytes")
        if self.call is not None:
            self.call.fail(exc)
        elif self.header_done is not None and not self.header_done.done():
            self.header_done.set_exception(exc)

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        if self.call is not None:
            self.call.feed_eof()
        elif self.header_done is not None and not self.header_done.done():
            self.header_done.set_exception(AGIProtocolError(
                f"connection closed after {len(self.block.env)} header line(s), before the blank line"))


def new_event_loop(use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """uvloop's loop when asked (or, with None, when installed), else the stdlib one."""
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise RuntimeError("uvloop is not installed: pip install uvloop, or run without it") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
