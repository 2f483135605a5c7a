"""The simulator's Asterisk Manager Interface: asyncio TCP server, CRLF framing, Asterisk 22 replies.

Replies and event lists follow tests/traces/ami-*.txt; the call work behind ``Originate`` and the
queue data behind ``QueueSummary``/``QueueStatus`` live in agi.sim.simulator and agi.sim.queues.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.simulator import Simulator

BANNER = "Asterisk Call Manager/11.0.0"  # what Asterisk 22 prints (AMI protocol version)
AUTH_FAIL_DELAY = 1.0  # manager.c: a failed Login is answered after 1 s, then the socket is closed

# manager.c perms[]: the event/permission classes of manager.conf read= / write= and EventMask
CLASSES = frozenset({"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
                     "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security",
                     "message"})

Fields = list[tuple[str, str]]


def classes_of(text: str | None) -> frozenset[str] | None:
    """A class list as manager.c's strings_to_mask reads it: "" -> None (leave as is), a true word
    ("on", "yes") -> all, a false word ("off", "no") -> none, else the named classes ("all" = all)."""
    value = (text or "").strip().lower()
    if not value:
        return None
    if value in ("on", "yes", "true", "y", "t", "1"):
        return CLASSES
    if value in ("off", "no", "false", "n", "f", "0"):
        return frozenset()
    names = {part.strip() for part in value.split(",")}
    return CLASSES if "all" in names else frozenset(names & CLASSES)


def event_classes(fields: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The classes of an event from its Privilege header ("call,all" -> {"call"})."""
    for key, value in fields:
        if key == "Privilege":
            return frozenset(value.split(",")) - {"all"}
    return frozenset()


def render(fields: Iterable[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode("utf-8", "surrogateescape")


class Message:
    """One AMI message from the client; header names are case-insensitive, repeats kept."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, key: str, default: str | None = None) -> str | None:
        k = key.lower()
        for name, value in self.pairs:
            if name.lower() == k:
                return value
        return default

    def getall(self, key: str) -> list[str]:
        k = key.lower()
        return [v for n, v in self.pairs if n.lower() == k]

    @property
    def action(self) -> str:
        return (self.get("Action") or "").strip()


class Session:
    """One AMI client connection."""

    ids = itertools.count(0x7F28C0000000, 0x1310)

    def __init__(self, server: "AmiServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.read: frozenset[str] = CLASSES  # the user's read classes (manager.conf read=)
        self.send: frozenset[str] = CLASSES  # the session's event mask (Login Events:, Action: Events)
        self.username = ""
        self.session_id = hex(next(self.ids))
        self._held: list[bytes] = []
        self._flusher: asyncio.Task | None = None
        self.closed = False

    # ---- output ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        faults = self.server.sim.faults
        if self._held or time.monotonic() < faults.stall_until:
            self._held.append(data)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_later())
            return
        self.writer.write(data)

    async def _flush_later(self) -> None:
        faults = self.server.sim.faults
        while True:
            wait = faults.stall_until - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 0.05))
        held, self._held = self._held, []
        if not self.closed and not self.writer.is_closing():
            self.writer.write(b"".join(held))

    def stall_changed(self) -> None:
        if self._held and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    def respond(self, msg: Message, response: str, *fields: tuple[str, str], message: str | None = None) -> None:
        out: Fields = [("Response", response)]
        aid = msg.get("ActionID")
        if aid is not None:
            out.append(("ActionID", aid))
        out.extend(fields)
        if message is not None:
            out.append(("Message", message))
        self.write(render(out))

    def event(self, name: str, fields: Fields) -> None:
        self.write(render([("Event", name)] + list(fields)))

    def wants(self, classes: frozenset[str]) -> bool:
        """manager.c: an event goes to a session whose user may read its class and whose event
        mask has it."""
        return self.authenticated and bool(classes & self.read & self.send)

    async def close(self) -> None:
        if self.closed:
            return
        # what was held back by a stall still goes out before the close
        if self._flusher is not None and not self._flusher.done():
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        self.closed = True
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        self.writer.close()

    def abort(self) -> None:
        self.closed = True
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    # ---- input ----------------------------------------------------------------------------
    async def read_message(self) -> Message | None:
        pairs: list[tuple[str, str]] = []
        while True:
            raw = await self.reader.readline()
            if not raw:
                return None
            line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
            if line == "":
                if pairs:
                    return Message(pairs)
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue  # Asterisk ignores a header line without a colon
            pairs.append((name.strip(), value.lstrip(" ")))

    async def run(self) -> None:
        self.write((BANNER + "\r\n").encode())
        try:
            while not self.closed:
                msg = await self.read_message()
                if msg is None:
                    break
                keep = await self.handle(msg)
                if keep is False:
                    break
                await self.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()
            self.server.sessions.discard(self)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.closed = True

    # ---- actions --------------------------------------------------------------------------
    async def handle(self, msg: Message) -> bool | None:
        action = msg.action
        key = action.lower()
        sim = self.server.sim
        if not action:
            self.respond(msg, "Error", message="Missing action in request")
            return None
        if key == "login":
            return await self.login(msg)
        if key == "challenge" and not self.authenticated:
            self.respond(msg, "Success", ("Challenge", "840415273"))
            return None
        if not self.authenticated:
            self.respond(msg, "Error", message="Permission denied")
            return None
        if key == "logoff":
            self.respond(msg, "Goodbye", message="Thanks for all the fish.")
            return False
        if key == "ping":
            self.respond(msg, "Success", ("Ping", "Pong"), ("Timestamp", f"{sim.clock.now():.6f}"))
        elif key == "events":
            mask = classes_of(msg.get("EventMask"))
            if mask is None:
                self.respond(msg, "Error", message="Invalid event mask")
            else:
                self.send = mask
                self.respond(msg, "Success", ("Events", "On" if mask else "Off"))
        elif key == "originate":
            await sim.ami_originate(self, msg)
        elif key == "queuesummary":
            sim.ami_queue_summary(self, msg)
        elif key == "queuestatus":
            sim.ami_queue_status(self, msg)
        elif key == "queuepause":
            sim.ami_queue_pause(self, msg)
        elif key == "queueadd":
            sim.ami_queue_add(self, msg)
        elif key == "queueremove":
            sim.ami_queue_remove(self, msg)
        elif key == "coreshowchannels":
            sim.ami_core_show_channels(self, msg)
        elif key == "hangup":
            sim.ami_hangup(self, msg)
        elif key == "getvar":
            sim.ami_getvar(self, msg)
        else:
            self.respond(
                msg, "Error",
                message=f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
            )
        return None

    async def login(self, msg: Message) -> bool | None:
        sim = self.server.sim
        user, secret = msg.get("Username") or "", msg.get("Secret") or ""
        if sim.faults.refuse_logins or user != sim.ami_user or secret != sim.ami_secret:
            await asyncio.sleep(AUTH_FAIL_DELAY)
            self.respond(msg, "Error", message="Authentication failed")
            return False
        self.authenticated = True
        self.username = user
        self.read = classes_of(sim.ami_read) or frozenset()
        mask = classes_of(msg.get("Events"))
        if mask is not None:
            self.send = mask
        self.respond(msg, "Success", message="Authentication accepted")
        # manager.c action_login: FullyBooted right after the reply, to this session only, when it
        # may read and asked for 'system' events
        if self.wants(frozenset({"system"})):
            up = str(int(sim.clock.now() - sim.started_at))
            self.event("FullyBooted", [("Privilege", "system,all"), ("Uptime", up), ("LastReload", up),
                                       ("Status", "Fully Booted")])
        if self.send:
            tv = sim.event_tv()
            local = self.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
            peer = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
            fields: Fields = [
                ("Privilege", "security,all"), ("EventTV", tv), ("Severity", "Informational"),
                ("Service", "AMI"), ("EventVersion", "1"), ("AccountID", user), ("SessionID", self.session_id),
                ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"), ("UsingPassword", "0"), ("SessionTV", tv),
            ]
            self.server.broadcast_rendered(render([("Event", "SuccessfulAuth")] + fields), frozenset({"security"}))
        return None


class AmiServer:
    def __init__(self, sim: "Simulator") -> None:
        self.sim = sim
        self.sessions: set[Session] = set()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port, limit=1 << 20)
        return self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def broadcast(self, event: str, fields: Fields) -> None:
        if not self.sessions:
            return
        self.broadcast_rendered(render([("Event", event)] + fields), event_classes(fields))

    def broadcast_rendered(self, data: bytes, classes: frozenset[str]) -> None:
        for s in list(self.sessions):
            if s.wants(classes):
                s.write(data)

    def drop_all(self) -> int:
        n = 0
        for s in list(self.sessions):
            s.abort()
            self.sessions.discard(s)
            n += 1
        return n

    def send_raw_all(self, data: bytes) -> int:
        n = 0
        for s in list(self.sessions):
            if s.authenticated:
                s.write(data)
                n += 1
        return n

    def stall_changed(self) -> None:
        for s in list(self.sessions):
            s.stall_changed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.abort()
        self.sessions.clear()
        if self._tasks:  # aborted transports end the session tasks (EOF) without cancelling them
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
