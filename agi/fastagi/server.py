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
from agi.fastagi.errors import AGIException, AGIHangup, AGIProtocolError
from agi.fastagi.protocol import MAX_HEADER_BYTES, MAX_HEADER_LINES, MAX_LINE, AGIRequest, HeaderBlock
from agi.fastagi.routing import AGICall, Router

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
        self._server = await asyncio.start_server(
            self._handle, self.host, self._port, limit=self.max_line, backlog=self.backlog
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        if not self._allowed(str(peer[0])):
            self.stats["refused_peer"] += 1
            log.warning("refused FastAGI connection from %s:%s: not on the allow-list (%s)",
                        peer[0], peer[1], self._allow_text())
            writer.transport.abort()
            return
        if self._closing:
            self.stats["refused_closing"] += 1
            log.warning("refused FastAGI connection from %s:%s: shutting down", peer[0], peer[1])
            writer.transport.abort()
            return
        if len(self._tasks) >= self.max_sessions:
            self.stats["refused_busy"] += 1
            log.warning("refused FastAGI connection from %s:%s: %d sessions already (max-sessions)",
                        peer[0], peer[1], len(self._tasks))
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats["accepted"] += 1
        try:
            await self._session(reader, writer, tuple(peer[:2]))
        finally:
            self._tasks.discard(task)

    async def _read_request(self, reader: asyncio.StreamReader, peer: tuple) -> AGIRequest:
        block = HeaderBlock(self.max_header_lines, self.max_header_bytes)
        async with asyncio.timeout(self.header_timeout):
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:
                    raise AGIProtocolError(f"header line longer than {self.max_line} bytes") from None
                if not raw.endswith(b"\n"):
                    raise AGIProtocolError(f"connection closed after {len(block.env)} header line(s), "
                                           "before the blank line")
                if block.add(raw):
                    break
        if "agi_network_script" not in block.env and "agi_request" not in block.env:
            raise AGIProtocolError("header block has neither agi_network_script nor agi_request")
        return block.request(peer)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple) -> None:
        where = f"{peer[0]}:{peer[1]}"
        try:
            request = await self._read_request(reader, peer)
        except TimeoutError:
            self.stats["header_timeout"] += 1
            log.warning("FastAGI %s: no complete agi_* block within %g s: closed", where, self.header_timeout)
            writer.transport.abort()
            return
        except (AGIProtocolError, ConnectionError, OSError) as exc:
            self.stats["bad_header"] += 1
            log.warning("FastAGI %s: bad header block: %s: closed", where, exc)
            writer.transport.abort()
            return
        except asyncio.CancelledError:
            writer.transport.abort()
            raise

        call = AGICall(request, reader, writer, timeouts=self.timeouts)
        flow = self.router.resolve(request.path)
        name = getattr(flow, "__name__", repr(flow))
        log.debug("FastAGI %s: %s %r -> %s", where, request.uniqueid, request.script, name)
        try:
            await flow(call)
            self.stats["completed"] += 1
        except AGIHangup as exc:
            self.stats["hung_up"] += 1
            log.info("%s %s: ended by hang-up: %s", request.uniqueid, request.path, exc)
        except AGIException as exc:
            self.stats["failed"] += 1
            log.warning("%s %s: flow %s stopped on an AGI error: %s: %s",
                        request.uniqueid, request.path, name, type(exc).__name__, exc)
        except asyncio.CancelledError:
            self.stats["cancelled"] += 1
            log.warning("%s %s: session closed by shutdown", request.uniqueid, request.path)
            call.abort()
            raise
        except Exception:
            self.stats["failed"] += 1
            log.exception("%s %s: flow %s failed", request.uniqueid, request.path, name)
        try:
            await call.close(self.linger)
        except asyncio.CancelledError:
            call.abort()
            raise


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
