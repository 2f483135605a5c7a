"""panoramisk 1.4's Manager/AMIProtocol/Action with the few overrides that make them safe to use.

What panoramisk 1.4 does on Python 3.11, each seen by experiment against a scripted AMI peer
(tests/test_ami_client.py has the regression tests), and what we override here:

- An exception while handling one message (an Originate without `Async` -> KeyError 'async' in
  Action.multi; a message with a repeated `ActionID` or `Event` header -> "unhashable type:
  'list'") escapes data_received, and asyncio closes the connection. -> SafeProtocol.handle_message
  logs and skips the message.
- After a reconnect it RE-SENDS every pending action that had no reply yet, Originate included,
  with the same ActionID (a call dialed twice). -> SafeManager never resends
  (forgetable_actions = everything, send_awaiting_actions is a no-op).
- On connection loss pending futures are never resolved (and a failed login is just a False
  flag): it reconnects every `reconnect_timeout` s forever, bad secret included.
  -> SafeManager.connection_lost/connection_made never reconnect; the client does, with backoff,
  and watches SafeProtocol.lost.
- data_received decodes each TCP chunk on its own with errors='ignore' (a UTF-8 character split
  between two reads is lost) and strips each message, which drops a last header whose value is
  empty (`BridgeId: `); a stray line ended by a bare LF glues itself to the next header and that
  message is lost. -> SafeProtocol.data_received: incremental decoder, lines split on LF with the
  CR removed (nothing else stripped), and a cap on an unterminated message.
- AMIProtocol.send(action) defaults to as_list=False, which makes every reply single-message
  (an EventList resolves with its first message). -> the client sends with as_list=None.
- Action.multi takes a reply whose message starts "added" and ends "to queue" (QueueAdd's
  "Added interface to queue", a single message) for a list and waits for its end for ever.
  -> the session sends QueueAdd with as_list=False (session.SINGLE_REPLY_ACTIONS).
- Its pinger sends Ping without reading the reply. -> SafeManager.ping is a no-op; the client
  has its own watchdog.
- It parses every event into a case-insensitive dict, wanted or not: most of a call's events
  nobody here reads. -> SafeProtocol.data_received skips, unparsed, an event without ActionID that
  no callback asked for (``wants``, given by the session).
- Events carrying a pending action's ActionID (OriginateResponse, EventList items) only go to that
  action's future, never to register_event callbacks; unsolicited events go to
  SafeManager.dispatch, which hands them to the client.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
from collections.abc import Callable

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

# an AMI message is small (a CoreShowChannel event is < 1 KiB); more than this unterminated is garbage
MAX_PENDING = 1 << 20

log = logging.getLogger(__name__)


class _Everything:
    """A container that holds every action name: panoramisk never queues an action for resend."""

    def __contains__(self, item: object) -> bool:
        return True


class SafeAction(actions.Action):
    """An Action that also tells when its first reply message arrived (the Originate ack)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first: asyncio.Future = asyncio.get_running_loop().create_future()

    def add_message(self, message):
        if not self.first.done():
            self.first.set_result(message)
        return super().add_message(message)


ALWAYS_WANTED = frozenset({"fullybooted", "shutdown"})  # the session's own (booted, lost)
_ACTION_ID = re.compile(r"^actionid:", re.I | re.M)


class SafeProtocol(AMIProtocol):
    """AMIProtocol that survives bad messages and reports its own end on `lost`."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future = loop.create_future()  # result: the reason (an exception)
        self.booted = asyncio.Event()  # FullyBooted seen
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    # events nobody listens to (``wants``, set by the session: None until then = all) are dropped
    # before they are parsed: most of a call's events, and their parsing was the originator's
    # largest cost (issue 15); replies and the events of an action's list (ActionID) always pass
    wants: Callable[[str], bool] | None = None

    def _unwanted(self, block: str) -> bool:
        if self.wants is None or not block.startswith("Event: ") or _ACTION_ID.search(block):
            return False
        end = block.find("\r\n")
        name = (block[7:] if end < 0 else block[7:end]).strip()
        return name.lower() not in ALWAYS_WANTED and not self.wants(name)

    def data_received(self, data: bytes) -> None:
        *blocks, self._pending = (self._pending + self._decoder.decode(data)).split("\r\n\r\n")
        for block in blocks:
            if self._unwanted(block):
                continue
            # a stray line ended by a bare LF must not swallow the next header; the banner has no ': '
            lines = [line.rstrip("\r") for line in block.split("\n")]
            message = Message.from_line("\r\n".join(line for line in lines if line))
            if message is not None:
                self.handle_message(message)
        if len(self._pending) > MAX_PENDING:
            log.error("AMI: over %d bytes without an end of message; dropping the session", MAX_PENDING)
            self.mark_lost(ConnectionError("the AMI peer sent an unterminated message"))
            self.transport.abort()

    def handle_message(self, message) -> None:
        try:
            if message.get("Event") == "FullyBooted":
                self.booted.set()
            super().handle_message(message)
        except Exception:
            log.warning("AMI: skipped a message that could not be handled: %r", message, exc_info=True)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)  # closes; the manager's hook is a no-op
        if isinstance(exc, BaseException):
            reason: BaseException = exc
        elif exc is None:
            reason = ConnectionResetError("the AMI peer closed the connection")
        else:  # panoramisk passes the `Shutdown` event itself
            reason = ConnectionResetError("Asterisk is shutting down (Event: Shutdown)")
        self.mark_lost(reason)

    def mark_lost(self, reason: BaseException) -> None:
        """Declare the session dead (at most once) and tell the client."""
        if self.lost.done():
            return
        self.lost.set_result(reason)
        client = getattr(self.factory, "client", None)
        if client is not None:
            client._on_lost(self, reason)


class SafeManager(Manager):
    """panoramisk's Manager reduced to: open a connection, send Login, route messages."""

    def __init__(self, client, **config) -> None:
        config.setdefault("protocol_factory", SafeProtocol)
        config.setdefault("forgetable_actions", _Everything())
        config.setdefault("ping_delay", 3600)  # its pinger is disabled below; the client pings
        super().__init__(**config)
        self.client = client

    def connection_made(self, f) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # the client reports it and decides when to retry
        super().connection_made(f)

    def connection_lost(self, exc) -> None:
        """No reconnect here: the client owns reconnection (see SafeProtocol.mark_lost)."""

    def ping(self) -> None:
        """Disabled: the client's watchdog pings and checks the reply."""

    async def send_awaiting_actions(self, *_) -> None:
        """Never resend an action after a reconnect (an Originate would dial twice)."""
        self.awaiting_actions.clear()

    def dispatch(self, event):
        self.client._dispatch_event(event)
        return []


# panoramisk logs whole actions in two places ("Fail to send %r", "Adding action ... to awaiting
# list"), a Login among them: its Secret must never reach a log line.
_SECRET = re.compile(r"(?i)(secret['\"]?\s*[:=]\s*['\"]?)([^'\"\\\r\n,}]+)")


class RedactSecrets(logging.Filter):
    """Mask AMI secrets in records of panoramisk's loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        if "ecret" in text:
            record.msg, record.args = _SECRET.sub(r"\1***", text), ()
        return True


for _name in ("panoramisk.ami_protocol", "panoramisk.manager", "panoramisk"):
    logging.getLogger(_name).addFilter(RedactSecrets())
