"""A scripted AMI peer (no tests here): Asterisk's side replayed byte for byte from the traces.

Stands in for Asterisk in tests/test_ami_client.py until the simulator's AMI server is used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import traces
from conftest import TRACES

BANNER = "Asterisk Call Manager/"


@dataclass
class Msg:
    """One AMI message of a trace: direction, time (s since connect), raw lines."""

    t: float
    dir: str
    lines: list[str]

    def get(self, name: str) -> str | None:
        for line in self.lines:
            key, sep, value = line.partition(": ")
            if sep and key.lower() == name.lower():
                return value
        return None

    def wire(self, action_ids: dict[str, str] | None = None) -> bytes:
        lines = self.lines
        if action_ids:
            lines = [_swap_action_id(line, action_ids) for line in lines]
        if len(lines) == 1 and lines[0].startswith(BANNER):
            return (lines[0] + "\r\n").encode()
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _swap_action_id(line: str, action_ids: dict[str, str]) -> str:
    key, sep, value = line.partition(": ")
    if sep and key == "ActionID" and value in action_ids:
        return f"ActionID: {action_ids[value]}"
    return line


def load_trace(name: str) -> list[Msg]:
    """The trace's messages in wire order (both directions; the banner is a message of its own)."""
    out: list[Msg] = []
    partial: dict[str, Msg] = {}
    for t, d, content in traces.parse(TRACES / name).lines:
        if d == "#":
            continue
        if content.startswith(BANNER):
            out.append(Msg(t, d, [content]))
        elif content == "":
            if d in partial:
                out.append(partial.pop(d))
        else:
            partial.setdefault(d, Msg(t, d, [])).lines.append(content)
    return out


def replies_after(msgs: list[Msg], index: int) -> list[Msg]:
    """Asterisk's messages after the client's message `index`, up to the client's next message."""
    out = []
    for msg in msgs[index + 1:]:
        if msg.dir == ">":
            break
        out.append(msg)
    return out


def replies_to(msgs: list[Msg], action_id: str) -> list[Msg]:
    return [m for m in msgs if m.dir == "<" and m.get("ActionID") == action_id]


@dataclass
class OriginateScript:
    """An originate trace: what the client sent and everything Asterisk answered."""

    name: str
    action_id: str
    sent: Msg
    replies: list[Msg]

    @property
    def channel_id(self) -> str:
        return self.sent.get("ChannelId") or ""


def originate_script(name: str) -> OriginateScript:
    msgs = load_trace(name)
    if "-response-first" in name:
        return _response_first_script(name, msgs)
    i = next(i for i, m in enumerate(msgs) if m.dir == ">" and m.get("Action") == "Originate")
    return OriginateScript(name, msgs[i].get("ActionID") or "", msgs[i], replies_after(msgs, i))


def _response_first_script(name: str, msgs: list[Msg]) -> OriginateScript:
    """A response-first trace holds only the events a second AMI session saw (no Originate of ours):
    the Originate is the one its OriginateResponse answers, Asterisk's ack the busy trace's."""
    response = msgs[0]
    assert response.get("Event") == "OriginateResponse"
    action_id, channel_id = response.get("ActionID") or "", response.get("Uniqueid") or ""
    sent = Msg(0.0, ">", [
        "Action: Originate", f"ActionID: {action_id}", f"Channel: {response.get('Channel')}",
        f"Context: {response.get('Context')}", f"Exten: {response.get('Exten')}", "Priority: 1", "Timeout: 30000",
        f'CallerID: "{response.get("CallerIDName")}" <{response.get("CallerIDNum")}>', "Async: true",
        f"ChannelId: {channel_id}"])
    busy = originate_script("ami-originate-busy.txt")
    ack = busy.replies[0]
    assert ack.get("Message") == "Originate successfully queued"
    ack = Msg(0.0, "<", [_swap_action_id(line, {busy.action_id: action_id}) for line in ack.lines])
    return OriginateScript(name, action_id, sent, [ack] + msgs)


class _Conn:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.logged_in = False
        self.stalled = False


@dataclass
class TracePeer:
    """Asterisk's AMI side, from the traces: banner, Login (ok / refused after auth_delay),
    Ping, Logoff, unknown actions, Originate (replays the trace whose ChannelId it carries,
    trace times x speed), QueueSummary, QueueStatus, CoreShowChannels; plus fault hooks."""

    secret: str = "dialer-secret"
    speed: float = 0.05
    auth_delay: float = 1.0
    queue_summary_ids: dict = field(default_factory=lambda: {None: "qs-a-all", "sales": "qs-d-sales",
                                                             "nosuchqueue": "qs-nosuch"})
    queue_status_ids: dict = field(default_factory=lambda: {None: "qst-a", "sales": "qst-d"})
    channels_id: str = "csc-b"
    hold_originate_response: bool = False  # ack Originate, keep the rest until release()
    refuse: bool = False  # accept TCP and close at once
    mute: bool = False  # new connections get the banner and nothing else
    received: list = field(default_factory=list)
    connections: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        self._conns: list[_Conn] = []
        self._held: list[tuple[_Conn, list[Msg], dict]] = []
        self._tasks: set[asyncio.Task] = set()
        login = load_trace("ami-login-ping-badsecret.txt")
        self.banner = login[0]
        self.denied = replies_to(login, "ping-0")
        bad_i = next(i for i, m in enumerate(login) if m.get("Secret") == "wrong-secret")
        self.login_refused = replies_after(login, bad_i)
        self.pong = replies_to(login, "ping-1")
        self.unknown = replies_to(login, "bad-1")
        self.goodbye = replies_to(login, "logoff-1")
        busy = load_trace("ami-originate-busy.txt")
        ok_i = next(i for i, m in enumerate(busy) if m.get("Action") == "Login")
        self.login_ok = replies_after(busy, ok_i)  # Response: Success, FullyBooted, SuccessfulAuth
        self.queues = load_trace("ami-queuesummary.txt")
        self.channels = load_trace("ami-coreshowchannels.txt")
        self.scripts = {}
        for path in sorted(TRACES.glob("ami-originate-*.txt")):
            script = originate_script(path.name)
            self.scripts[script.channel_id] = script

    async def start(self) -> TracePeer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    # ---- fault hooks
    def drop(self) -> None:
        """Close every open AMI connection (as a crash or network cut would)."""
        for conn in self._conns:
            conn.writer.transport.abort()
        self._conns.clear()

    def stall(self) -> None:
        """The open connections stop answering (they still read)."""
        for conn in self._conns:
            conn.stalled = True

    def send_raw(self, data: bytes) -> None:
        for conn in self._conns:
            conn.writer.write(data)

    def release(self) -> None:
        """Send the held OriginateResponse and what follows it."""
        held, self._held = self._held, []
        for conn, msgs, ids in held:
            self._spawn(self._replay(conn, msgs, ids))

    def actions(self, name: str) -> list[dict]:
        return [a for a in self.received if a.get("Action", "").lower() == name.lower()]

    # ---- the peer
    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            self.refused += 1
            writer.transport.abort()
            return
        self.connections += 1
        conn = _Conn(writer)
        conn.stalled = self.mute
        self._conns.append(conn)
        writer.write(self.banner.wire())
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    action: dict = {}
                    for line in raw.decode().split("\r\n"):
                        key, sep, value = line.partition(": ")
                        if not sep:
                            continue
                        if key in action:
                            prev = action[key]
                            action[key] = (prev if isinstance(prev, list) else [prev]) + [value]
                        else:
                            action[key] = value
                    self.received.append(action)
                    if not conn.stalled:
                        await self._answer(conn, action)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            writer.transport.abort()

    def _send(self, conn: _Conn, msgs: list[Msg], ids: dict | None = None) -> None:
        for msg in msgs:
            conn.writer.write(msg.wire(ids))

    async def _answer(self, conn: _Conn, action: dict) -> None:
        name = action.get("Action", "").lower()
        aid = action.get("ActionID", "")
        if name == "login":
            if action.get("Secret") == self.secret:
                conn.logged_in = True
                self._send(conn, self.login_ok, {"login-1": aid})
            else:
                self._spawn(self._refuse_login(conn, aid))
            return
        if not conn.logged_in:
            self._send(conn, self.denied, {"ping-0": aid})
        elif name == "ping":
            self._send(conn, self.pong, {"ping-1": aid})
        elif name == "logoff":
            self._send(conn, self.goodbye, {"logoff-1": aid})
            await conn.writer.drain()
            conn.writer.close()
        elif name == "originate":
            script = self.scripts[action["ChannelId"]]
            ids = {script.action_id: aid}
            first, rest = script.replies[:1], script.replies[1:]
            if self.hold_originate_response:
                ack = [m for m in script.replies if m.get("ActionID") == script.action_id][:1]
                self._send(conn, ack, ids)
                self._held.append((conn, [m for m in script.replies if m not in ack], ids))
            else:
                self._send(conn, first, ids)
                self._spawn(self._replay(conn, rest, ids))
        elif name == "queuesummary":
            trace_id = self.queue_summary_ids[action.get("Queue")]
            self._send(conn, replies_to(self.queues, trace_id), {trace_id: aid})
        elif name == "queuestatus":
            trace_id = self.queue_status_ids[action.get("Queue")]
            self._send(conn, replies_to(self.queues, trace_id), {trace_id: aid})
        elif name == "coreshowchannels":
            self._send(conn, replies_to(self.channels, self.channels_id), {self.channels_id: aid})
        else:
            self._send(conn, self.unknown, {"bad-1": aid})

    async def _refuse_login(self, conn: _Conn, aid: str) -> None:
        await asyncio.sleep(self.auth_delay)  # Asterisk answers a bad login after ~1 s
        self._send(conn, self.login_refused, {"login-1": aid})
        await conn.writer.drain()
        conn.writer.transport.close()

    async def _replay(self, conn: _Conn, msgs: list[Msg], ids: dict) -> None:
        if not msgs:
            return
        t0 = msgs[0].t
        loop = asyncio.get_running_loop()
        start = loop.time()
        for msg in msgs:
            delay = start + (msg.t - t0) * self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if conn.writer.is_closing() or conn.stalled:
                return
            conn.writer.write(msg.wire(ids))
