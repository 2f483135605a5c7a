"""One AMI session to one Asterisk, kept alive: connect and log in, a Ping watchdog that drops a
silent peer, reconnection with capped exponential backoff and jitter, events to callbacks, and
every action sent with a timeout (agi.ami.client adds the actions the originator uses).

What each failure means is in agi/ami/errors.py: AMINotConnected = nothing was sent; AMITimeout /
AMIConnectionLost = sent, outcome unknown; AMIActionError = Asterisk answered `Response: Error`;
AMIAuthError = the login was refused (fatal, never retried).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from agi.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectError,
    AMIConnectionLost,
    AMIError,
    AMINotConnected,
    AMITimeout,
)
from agi.ami.events import Callbacks, EventCallback, message_dict
from agi.ami.protocol import SafeAction, SafeManager, SafeProtocol
from agi.settings import Secret

log = logging.getLogger("agi.ami.client")  # one logger for the client, whichever module of it speaks


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect try `failures` (1, 2, ...): min(cap, base * 2**(n-1)),
    half of it fixed and half random ("equal jitter"), so many dialers do not reconnect in step."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay / 2 + delay / 2 * rand()


def _abort_if_connected(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result()[0].abort()


def _check_headers(headers: dict) -> None:
    """A CR or LF inside a value would inject headers (e.g. a caller name from a CSV)."""
    for key, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            if any(c in f"{key}{item}" for c in "\r\n"):
                raise ValueError(f"AMI header {key!r} contains a line break: {item!r}")

# Actions whose reply is one message that panoramisk's Action.multi mistakes for a list's start
SINGLE_REPLY_ACTIONS = frozenset({"queueadd"})


class Session:
    """One AMI session to one Asterisk, kept alive (agi.ami.client documents the API)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: Secret | str,
        *,
        action_timeout: float = 5.0,
        originate_timeout: float = 60.0,
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        events: str = "on",
    ) -> None:
        self.host = host
        self.events = events  # the event classes asked for at login (manager.c EventMask: "on", "call,agent")
        self.port = int(port)
        self.username = username
        self._secret = secret if isinstance(secret, Secret) else Secret(secret)
        self.action_timeout = action_timeout
        self.originate_timeout = originate_timeout
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.on_connect: Callable[[], Any] | None = None
        self.on_disconnect: Callable[[BaseException], Any] | None = None
        self.fatal: AMIError | None = None  # set when a reconnect's login was refused: the client stopped
        self.connections = 0  # successful logins so far (1 after connect())
        self._events = Callbacks(self.where)  # callbacks, and the tasks they and the watchdog start
        self._manager: SafeManager | None = None
        self._proto: SafeProtocol | None = None
        self._closing = False
        self._runner: asyncio.Task | None = None
        self._checking = False
        self._up = asyncio.Event()  # set while connected (and when the client stops, to wake waiters)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<{type(self).__name__} {self.username}@{self.host}:{self.port} {state}>"

    @property
    def where(self) -> str:
        return f"AMI {self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """A logged-in session is up (actions will be sent)."""
        return self._proto is not None and not self._proto.lost.done()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a session is up: True; False on timeout or when the client has stopped
        (close(), or `fatal` after a refused login)."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return self.connected

    # ---- events -------------------------------------------------------------------------

    def on_event(self, name: str, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event_dict)` for each event `name` (case-insensitive; "*" = all).

        A coroutine callback runs as a task; an exception in a callback is logged, never
        propagated. Returns a function that unsubscribes."""
        return self._events.on(name, callback)

    def _dispatch_event(self, message) -> None:
        self._events.dispatch(message)

    # ---- connection ---------------------------------------------------------------------

    async def connect(self, *, retry_for: float = 0.0) -> None:
        """Open and log in; then keep the session alive until close().

        A refused login raises AMIAuthError at once (Asterisk answers after ~1 s) and is never
        retried. An unreachable peer is retried with backoff for up to `retry_for` seconds
        (0: a single try), then AMIConnectError. After this returns, lost sessions are
        re-opened in the background, forever, until close() (or a refused login: `fatal`)."""
        if self._runner is not None:
            raise RuntimeError(f"{self.where}: connect() called twice")
        self._closing = False
        self.fatal = None
        self._up.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        failures = 0
        while True:
            try:
                await self._open()
                break
            except AMIConnectError as exc:
                failures += 1
                delay = backoff_delay(failures, *self.backoff)
                if loop.time() + delay > deadline:
                    raise
                log.warning("%s; retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        self._runner = loop.create_task(self._run(), name=f"ami-watchdog-{self.host}:{self.port}")

    async def _open(self) -> None:
        """One TCP connection + Login (+ FullyBooted when the user may see it); becomes the current session."""
        loop = asyncio.get_running_loop()
        if self._manager is None:
            self._manager = SafeManager(
                self,
                host=self.host,
                port=self.port,
                username=self.username,
                secret=self._secret.reveal(),
                events=self.events,
                loop=loop,
            )
        task = self._manager.connect()
        try:
            _transport, proto = await asyncio.wait_for(asyncio.shield(task), self.action_timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            task.cancel()
            task.add_done_callback(_abort_if_connected)  # it may have connected meanwhile
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise AMIConnectError(
                f"{self.where}: no TCP connection within {self.action_timeout:.1f} s; "
                "check the dialer's AMI address and that Asterisk is running"
            ) from None
        except OSError as exc:
            raise AMIConnectError(
                f"{self.where}: cannot connect ({exc.strerror or exc}); check the dialer's AMI address, "
                "that Asterisk runs and manager.conf has enabled = yes"
            ) from exc
        proto.wants = self._events.wants  # events nobody listens to are not even parsed
        try:
            await self._login(proto)
        except BaseException:  # refused, timed out, or close() cancelled us: no half-open socket left
            proto.transport.abort()
            raise

    async def _login(self, proto: SafeProtocol) -> None:
        login = self._manager.authenticated_future
        try:
            reply = await self._wait(proto, login, self.action_timeout, "Login")
        except (AMITimeout, AMIConnectionLost) as exc:
            raise AMIConnectError(f"{self.where}: no answer to Login ({exc})") from exc
        if not reply.success:
            raise AMIAuthError(
                f"{self.where}: Asterisk refused the AMI login of user {self.username!r} "
                f"({reply.get('Message') or reply.get('Response')}). Check DIALER_AMI_USER and "
                "DIALER_AMI_SECRET against the user's section in Asterisk's manager.conf "
                "(secret, permit/deny for this host). Not retried."
            )
        # Asterisk (manager.c action_login) writes FullyBooted right after the Login reply, to this
        # session only, if the user may read 'system' events and Asterisk has finished booting. A
        # Ping's reply comes after whatever was written before it: no FullyBooted by then means none
        # comes with this login (no 'system' read class, or Asterisk still starting), so there is
        # nothing to wait for. Ping needs no privilege.
        ping = SafeAction({"Action": "Ping"})
        proto.send(ping, as_list=None)
        try:
            await self._wait(proto, ping.future, self.action_timeout, "Ping after Login", ping)
        except (AMITimeout, AMIConnectionLost) as exc:
            raise AMIConnectError(f"{self.where}: no answer to a Ping right after Login ({exc})") from exc
        finally:
            proto.responses.pop(ping.id, None)
        if proto.lost.done():
            raise AMIConnectError(f"{self.where}: connection lost right after login ({proto.lost.result()})")
        if not proto.booted.is_set():
            log.info("%s: no FullyBooted with the login: the AMI user has no 'system' read class "
                     "(dialplan/README.md grants it), or Asterisk is still starting; going on", self.where)
        self._proto = proto
        self._up.set()
        self.connections += 1
        log.info("%s: logged in as %s (session %d)", self.where, self.username, self.connections)
        self._events.call(self.on_connect)

    def _on_lost(self, proto: SafeProtocol, reason: BaseException) -> None:
        """Called by the protocol once when its connection ends (or is declared dead)."""
        if proto is not self._proto:
            return
        self._proto = None
        if self._closing:
            return
        self._up.clear()
        log.warning("%s: connection lost (%s)", self.where, reason)
        self._events.call(self.on_disconnect, reason)

    def _drop(self, proto: SafeProtocol, why: str) -> None:
        """Declare a silent session dead at once and close its socket; the runner reconnects."""
        proto.mark_lost(AMIConnectionLost(f"{self.where}: {why}"))
        proto.transport.abort()

    async def _run(self) -> None:
        """Watchdog while connected; reconnect loop while not."""
        while not self._closing:
            proto = self._proto
            if proto is not None:
                await asyncio.wait({proto.lost}, timeout=self.ping_interval)
                if not proto.lost.done():
                    await self._check_alive(proto)
                continue
            if not await self._reconnect():
                return

    async def _check_alive(self, proto: SafeProtocol) -> None:
        """Ping; a missing or wrong reply means the peer is stuck: drop the session."""
        if self._checking:
            return
        self._checking = True
        try:
            await self.ping()
        except (AMINotConnected, AMIConnectionLost):
            pass
        except (AMITimeout, AMIActionError) as exc:
            if proto is self._proto:
                log.warning("%s: Ping failed (%s); dropping the session to reconnect", self.where, exc)
                self._drop(proto, f"Ping failed: {exc}")
        finally:
            self._checking = False

    async def _reconnect(self) -> bool:
        """Re-open with backoff until it works (True), the client closes or login is refused (False)."""
        failures = 0
        while not self._closing:
            failures += 1
            delay = backoff_delay(failures, *self.backoff)
            log.info("%s: reconnecting in %.2f s (try %d)", self.where, delay, failures)
            await asyncio.sleep(delay)
            if self._closing:
                break
            try:
                await self._open()
                return True
            except AMIAuthError as exc:
                self.fatal = exc
                self._up.set()  # wake wait_connected(): it returns False
                log.error("%s", exc)
                self._events.call(self.on_disconnect, exc)
                return False
            except AMIConnectError as exc:
                log.warning("%s", exc)
        return False

    async def close(self) -> None:
        """Log off and close; no reconnect after this. Pending actions get AMIConnectionLost."""
        if self._closing and self._runner is None and self._proto is None:
            return
        self._closing = True  # from here a lost session is not reported nor re-opened
        self._up.set()  # wake wait_connected(): it returns False
        proto = self._proto
        if proto is not None and not proto.lost.done():
            try:
                await self._request({"Action": "Logoff"}, timeout=min(self.action_timeout, 1.0))
            except AMIError:
                pass
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        self._proto = None
        if proto is not None:
            proto.close()
            proto.transport.abort()
            await asyncio.wait({proto.lost}, timeout=1.0)
        await self._events.close()

    # ---- actions ------------------------------------------------------------------------

    def _require(self) -> SafeProtocol:
        proto = self._proto
        if proto is None or proto.lost.done():
            if self.fatal is not None:
                raise AMINotConnected(f"{self.where}: client stopped after a refused login: {self.fatal}")
            if self._closing or self._runner is None:
                raise AMINotConnected(f"{self.where}: client is not connected (connect() not called or "
                                      "closed); nothing was sent")
            raise AMINotConnected(f"{self.where}: session lost, reconnecting; nothing was sent")
        return proto

    async def _wait(self, proto: SafeProtocol, fut: asyncio.Future, timeout: float, what: str,
                    action: SafeAction | None = None):
        """The result of `fut`, or AMIConnectionLost / AMITimeout."""
        if not fut.done():
            await asyncio.wait({fut, proto.lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if fut.done():
            return fut.result()
        action_id = action.id if action is not None else ""
        queued = bool(action is not None and action.responses and action.responses[0].get("Response") == "Success")
        if proto.lost.done():
            raise AMIConnectionLost(f"{self.where}: session lost before the reply to {what} "
                                    f"({proto.lost.result()})", action_id=action_id, queued=queued)
        if proto is self._proto:
            self._events.spawn(self._check_alive(proto))
        raise AMITimeout(f"{self.where}: no reply to {what} within {timeout:.1f} s",
                         action_id=action_id, queued=queued)

    def _send(self, headers: dict) -> tuple[SafeProtocol, SafeAction]:
        _check_headers(headers)
        proto = self._require()
        action = SafeAction(headers)
        if action.id in proto.responses:
            raise ValueError(f"ActionID {action.id!r} is already pending")
        # None: let the reply say whether a list follows; but panoramisk takes "Added interface to
        # queue" (QueueAdd's whole reply, app_queue.c) for the start of a list and would wait for ever
        single = str(headers.get("Action", "")).lower() in SINGLE_REPLY_ACTIONS
        proto.send(action, as_list=False if single else None)
        return proto, action

    async def _request(self, headers: dict, timeout: float | None = None) -> list:
        """Send one action and wait for its whole reply: [response, list events...] (Messages)."""
        proto, action = self._send(headers)
        try:
            reply = await self._wait(proto, action.future, timeout or self.action_timeout,
                                     headers.get("Action", "action"), action)
        finally:
            if not action.future.done():  # forget it: a late reply goes to the event callbacks
                proto.responses.pop(action.id, None)
        messages = reply if isinstance(reply, list) else [reply]
        first = messages[0]
        if first.get("Response") == "Error":
            raise AMIActionError(f"{self.where}: {headers.get('Action')} failed: {first.get('Message', '')}",
                                 response=message_dict(first))
        return messages


    async def action(self, headers: dict, *, timeout: float | None = None) -> list[dict]:
        """Any AMI action: the response then its EventList items, as dicts.

        Never retried: after AMITimeout/AMIConnectionLost the action may have run."""
        return [message_dict(m) for m in await self._request(dict(headers), timeout)]

    async def ping(self) -> dict:
        """Ping; the reply dict (`Ping: Pong`)."""
        reply = (await self.action({"Action": "Ping"}))[0]
        if reply.get("Response") != "Success":
            raise AMIActionError(f"{self.where}: unexpected Ping reply {reply!r}", response=reply)
        return reply

