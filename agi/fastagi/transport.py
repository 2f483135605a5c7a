"""The byte stream under a channel: lines of bounded length, and a channel over a connection we
open ourselves (tools and tests; Asterisk normally connects to the server)."""

from __future__ import annotations

import asyncio

from agi.fastagi.channel import AGIChannel, Timeouts
from agi.fastagi.errors import AGIProtocolError
from agi.fastagi.protocol import MAX_LINE


class LineProtocol(asyncio.Protocol):
    """Splits the byte stream into lines of at most ``max_line`` bytes for ``line_received``."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if end - start >= self.max_line:
                self.line_too_long()
                return
            self.line_received(bytes(buf[start : end + 1]))
            start = end + 1
            if self.transport is None or self.transport.is_closing():
                buf.clear()
                return
        if start:
            del buf[:start]
        if len(buf) > self.max_line:
            self.line_too_long()

    def line_received(self, raw: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def line_too_long(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class ChannelProtocol(LineProtocol):
    """A protocol with a channel and no header phase: for an outgoing connection (tools, tests)."""

    def __init__(self, timeouts: Timeouts | None = None, label: str = "", max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)
        self._timeouts, self._label = timeouts, label
        self.channel: AGIChannel | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.channel = AGIChannel(transport, timeouts=self._timeouts, label=self._label)

    def line_received(self, raw: bytes) -> None:
        self.channel.feed_line(raw)

    def line_too_long(self) -> None:
        self._buf.clear()
        self.channel.fail(AGIProtocolError(f"reply line longer than {self.max_line} bytes"))

    def eof_received(self) -> bool:
        self.channel.feed_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.channel.feed_eof()


async def open_channel(host: str, port: int, *, timeouts: Timeouts | None = None, label: str = "") -> AGIChannel:
    """A channel over a connection we open (Asterisk normally connects to us: tools and tests)."""
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: ChannelProtocol(timeouts, label), host, port)
    return proto.channel
