"""Which flow answers which script path (asterisk-java's MappingStrategy), and the call a flow gets.

``agi://host/outbound?campaign=1,HUMAN`` -> the flow registered for "outbound" runs with an
``AGICall``: the parsed request plus the channel API. An unknown path gets the polite default.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agi.fastagi.channel import AGIChannel, Timeouts
from agi.fastagi.protocol import AGIRequest

log = logging.getLogger(__name__)


class AGICall(AGIChannel):
    """A FastAGI session as a flow sees it: ``call.answer()``, ``call.query["campaign"]``, ``call.arg(1)``."""

    def __init__(
        self, request: AGIRequest, transport: asyncio.BaseTransport, *, timeouts: Timeouts | None = None
    ) -> None:
        super().__init__(transport, timeouts=timeouts, label=request.uniqueid or request.path)
        self.request = request

    @property
    def env(self) -> dict[str, str]:
        return self.request.env

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def query(self) -> dict[str, str]:
        return self.request.query

    @property
    def args(self) -> list[str]:
        return self.request.args

    @property
    def uniqueid(self) -> str:
        return self.request.uniqueid

    @property
    def peer(self) -> tuple | None:
        return self.request.peer

    def arg(self, n: int, default: str = "") -> str:
        """agi_arg_<n>, 1-based like ``${ARG1}``; ``default`` if absent or empty."""
        return self.request.arg(n, default)

    def __repr__(self) -> str:
        return f"<AGICall {self.path!r} {self.uniqueid}>"


Flow = Callable[[AGICall], Awaitable[object]]


async def polite_hangup(call: AGICall) -> None:
    """The default flow for a script path nobody registered: say so in Asterisk's log, hang up."""
    await call.verbose(f"dialer: no flow for AGI script {call.path!r}; hanging up", 1)
    await call.hangup()


class Router:
    """Script path -> flow. ``router.add("outbound", flow)`` or ``@router.route("outbound")``."""

    def __init__(self, routes: dict[str, Flow] | None = None, default: Flow = polite_hangup) -> None:
        self.routes: dict[str, Flow] = {}
        self.default = default
        self._closers: list[Callable[[], Awaitable[object]]] = []
        for path, flow in (routes or {}).items():
            self.add(path, flow)

    def on_close(self, closer: Callable[[], Awaitable[object]]) -> None:
        """Run ``await closer()`` when the server is done with this router (e.g. engine.dispose)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("closing the router: %r failed", closer)
        self._closers.clear()

    @staticmethod
    def _key(path: str) -> str:
        return path.strip("/")

    def add(self, path: str, flow: Flow) -> None:
        key = self._key(path)
        if key in self.routes:
            raise ValueError(f"AGI script path {key!r} already has a flow: {self.routes[key]!r}")
        self.routes[key] = flow

    def route(self, path: str) -> Callable[[Flow], Flow]:
        def register(flow: Flow) -> Flow:
            self.add(path, flow)
            return flow

        return register

    def resolve(self, path: str) -> Flow:
        """The flow for ``path``, or the default flow (logged: Asterisk asked for a script we lack)."""
        flow = self.routes.get(self._key(path))
        if flow is None:
            known = ", ".join(sorted(self.routes)) or "none"
            log.warning("no flow for AGI script path %r (known: %s): using the default flow", path, known)
            return self.default
        return flow
