"""The AMI client the originator uses: login, Originate, events, QueueSummary, CoreShowChannels.

Built on panoramisk 1.4 (agi/ami/protocol.py lists what it gets wrong and what we override); this
module adds what it lacks: a timeout on every action, a Ping watchdog that drops a silent peer,
reconnection with capped exponential backoff and jitter, a fatal AMIAuthError for a refused login,
and an immediate AMINotConnected for an action sent while there is no session.

Usage (the API other parts rely on)::

    client = AMIClient(host, port, username, secret, action_timeout=5.0, originate_timeout=60.0,
                       ping_interval=5.0, backoff=(0.5, 30.0))
    client.on_connect = cb()             # after every successful login, the first one included
    client.on_disconnect = cb(exc)       # a live session was lost (exc: why); called once more
                                         # with the AMIAuthError if a reconnect's login is refused
    unsubscribe = client.on_event("Hangup", cb)   # cb(dict); "*" = every event
    await client.connect(retry_for=0.0)  # AMIAuthError (bad login, not retried) or
                                         # AMIConnectError (unreachable after retry_for seconds)
    result = await client.originate(channel=..., context=..., exten=..., priority=1,
                                    timeout_ms=25000, caller_id=..., channel_id=attempt_id,
                                    variables={...}, action_id=None)   # -> OriginateResult
    await client.queue_summary(queue=None) -> list[dict]   # ints for the counters
    await client.core_show_channels() -> list[dict]
    await client.ping() -> dict;  await client.action({...}) -> list[dict];  await client.close()
    client.connected -> bool;  await client.wait_connected(timeout=None) -> bool
    client.fatal -> AMIAuthError | None;  client.connections -> int (logins so far)

Errors: AMINotConnected = nothing was sent (safe to retry later); AMITimeout / AMIConnectionLost
= sent, outcome unknown (`.queued` tells whether Asterisk acknowledged an Originate);
AMIActionError = Asterisk answered `Response: Error`.

Event order: callbacks run in wire order, inside the reader; an originate() caller resumes a
moment later, so Hangup callbacks of a failed call can run before its originate() returns.
Events that answer a pending action (OriginateResponse, EventList items) go to that action only;
an OriginateResponse whose originate() already gave up (timeout, or sent on a previous session)
is delivered to the "OriginateResponse" callbacks instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from agi.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectError,
    AMIConnectionLost,
    AMIError,
    AMINotConnected,
    AMITimeout,
)
from agi.ami.protocol import SafeAction, SafeManager, SafeProtocol
from agi.ids import attempt_id_from_uniqueid  # noqa: F401  (re-exported: part of this API)
from agi.settings import Secret

log = logging.getLogger(__name__)

EventCallback = Callable[[dict], Any]

# QueueSummary counters (Asterisk app_queue manager_queues_summary) returned as ints
QUEUE_SUMMARY_INTS = ("LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime")


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect try `failures` (1, 2, ...): min(cap, base * 2**(n-1)),
    half of it fixed and half random ("equal jitter"), so many dialers do not reconnect in step."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay / 2 + delay / 2 * rand()


@dataclass(frozen=True)
class OriginateResult:
    """The OriginateResponse event of one Originate (docs/outcomes.md, AMI)."""

    response: str  # "Success" | "Failure"
    reason: int  # 0 failure, 1 hung up before answer, 3 ring timeout, 4 answered, 5 busy, 8 congestion
    channel: str  # real channel name on Success, the dial string as sent on Failure
    uniqueid: str | None  # = the ChannelId sent
    raw: dict = field(repr=False)

    @property
    def success(self) -> bool:
        return self.response == "Success"

    @classmethod
    def from_event(cls, event: dict) -> OriginateResult:
        try:
            reason = int(event.get("Reason", "0"))
        except (TypeError, ValueError):
            reason = 0
        return cls(
            response=str(event.get("Response", "")),
            reason=reason,
            channel=str(event.get("Channel", "")),
            uniqueid=event.get("Uniqueid") or None,
            raw=event,
        )


def message_dict(message) -> dict:
    """A panoramisk Message as a plain dict with the wire's header names."""
    out = dict(message.items())
    if not out.get("content"):
        out.pop("content", None)
    return out


def _abort_if_connected(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result()[0].abort()


def _check_headers(headers: dict) -> None:
    """A CR or LF inside a value would inject headers (e.g. a caller name from a CSV)."""
    for key, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            if any(c in f"{key}{item}" for c in "\r\n"):
                raise ValueError(f"AMI header {key!r} contains a line break: {item!r}")


class AMIClient:
    """One AMI session to one Asterisk, kept alive; see the module docstring for the API."""

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
    ) -> None:
        self.host = host
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
        self._callbacks: dict[str, list[EventCallback]] = {}
        self._manager: SafeManager | None = None
        self._proto: SafeProtocol | None = None
        self._closing = False
        self._runner: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._checking = False
        self._up = asyncio.Event()  # set while connected (and when the client stops, to wake waiters)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<AMIClient {self.username}@{self.host}:{self.port} {state}>"

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
        except asyncio.TimeoutError:
            return False
        return self.connected

    # ---- events -------------------------------------------------------------------------

    def on_event(self, name: str, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event_dict)` for each event `name` (case-insensitive; "*" = all).

        A coroutine callback runs as a task; an exception in a callback is logged, never
        propagated. Returns a function that unsubscribes."""
        key = name.lower()
        self._callbacks.setdefault(key, []).append(callback)

        def unsubscribe() -> None:
            callbacks = self._callbacks.get(key, [])
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def _dispatch_event(self, message) -> None:
        name = message.get("Event")
        if not isinstance(name, str):
            log.warning("%s: skipped an event without a single Event header: %r", self.where, message)
            return
        callbacks = self._callbacks.get(name.lower(), []) + self._callbacks.get("*", [])
        if callbacks:
            event = message_dict(message)
            for callback in callbacks:
                self._call(callback, event)

    def _call(self, callback: Callable | None, *args) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            log.exception("%s: callback %r failed", self.where, callback)

    def _spawn(self, awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.where, exc_info=task.exception())

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
                events="on",
                loop=loop,
            )
        task = self._manager.connect()
        try:
            _transport, proto = await asyncio.wait_for(asyncio.shield(task), self.action_timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            task.cancel()
            task.add_done_callback(_abort_if_connected)  # it may have connected meanwhile
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise AMIConnectError(
                f"{self.where}: no TCP connection within {self.action_timeout:.1f} s; "
                "check DIALER_AMI_HOST/DIALER_AMI_PORT and that Asterisk is running"
            ) from None
        except OSError as exc:
            raise AMIConnectError(
                f"{self.where}: cannot connect ({exc.strerror or exc}); check DIALER_AMI_HOST/"
                "DIALER_AMI_PORT, that Asterisk runs and manager.conf has enabled = yes"
            ) from exc
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
        self._call(self.on_connect)

    def _on_lost(self, proto: SafeProtocol, reason: BaseException) -> None:
        """Called by the protocol once when its connection ends (or is declared dead)."""
        if proto is not self._proto:
            return
        self._proto = None
        if self._closing:
            return
        self._up.clear()
        log.warning("%s: connection lost (%s)", self.where, reason)
        self._call(self.on_disconnect, reason)

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
                self._call(self.on_disconnect, exc)
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
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

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
            self._spawn(self._check_alive(proto))
        raise AMITimeout(f"{self.where}: no reply to {what} within {timeout:.1f} s",
                         action_id=action_id, queued=queued)

    def _send(self, headers: dict) -> tuple[SafeProtocol, SafeAction]:
        _check_headers(headers)
        proto = self._require()
        action = SafeAction(headers)
        if action.id in proto.responses:
            raise ValueError(f"ActionID {action.id!r} is already pending")
        proto.send(action, as_list=None)  # None: let the reply say whether a list follows
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

    async def queue_summary(self, queue: str | None = None) -> list[dict]:
        """One dict per queue (QueueSummary events), counters as ints; [] for an unknown queue."""
        headers = {"Action": "QueueSummary"}
        if queue:
            headers["Queue"] = queue
        rows = []
        for item in (await self.action(headers))[1:]:
            if item.get("Event") != "QueueSummary":
                continue
            for key in QUEUE_SUMMARY_INTS:
                if key in item:
                    try:
                        item[key] = int(item[key])
                    except (TypeError, ValueError):
                        pass
            rows.append(item)
        return rows

    async def core_show_channels(self) -> list[dict]:
        """One dict per channel (CoreShowChannel events: Channel, Uniqueid, Linkedid, ...)."""
        return [m for m in (await self.action({"Action": "CoreShowChannels"}))[1:]
                if m.get("Event") == "CoreShowChannel"]

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        timeout_ms: int = 25000,
        caller_id: str | None = None,
        channel_id: str | None = None,
        variables: dict[str, Any] | None = None,
        action_id: str | None = None,
    ) -> OriginateResult:
        """Send Originate (always `Async: true`) and wait for its OriginateResponse event.

        Waits up to action_timeout for Asterisk's ack, then up to
        max(originate_timeout, timeout_ms/1000 + action_timeout) for the OriginateResponse.
        `channel_id` becomes the channel's Uniqueid (Local legs: `<id>;2`). Never re-sent: on
        AMITimeout/AMIConnectionLost `exc.queued` says whether Asterisk had acknowledged it."""
        headers: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Timeout": str(int(timeout_ms)),
            "Async": "true",  # without it there is no OriginateResponse (and panoramisk breaks)
        }
        if caller_id:
            headers["CallerID"] = caller_id
        if channel_id:
            headers["ChannelId"] = channel_id
        if variables:
            headers["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        if action_id:
            headers["ActionID"] = action_id
        proto, action = self._send(headers)
        try:
            first = await self._wait(proto, action.first, self.action_timeout, "Originate", action)
            if first.get("Response") == "Error":
                raise AMIActionError(f"{self.where}: Originate to {channel} refused: {first.get('Message', '')}",
                                     response=message_dict(first))
            limit = max(self.originate_timeout, timeout_ms / 1000 + self.action_timeout)
            reply = await self._wait(proto, action.future, limit, f"Originate to {channel} (OriginateResponse)",
                                     action)
        finally:
            if not action.future.done():
                proto.responses.pop(action.id, None)
        for message in reply if isinstance(reply, list) else [reply]:
            if message.get("Event") == "OriginateResponse":
                return OriginateResult.from_event(message_dict(message))
        raise AMIActionError(f"{self.where}: Originate to {channel}: reply without OriginateResponse: "
                             f"{[message_dict(m) for m in (reply if isinstance(reply, list) else [reply])]}")
