"""Helpers for the simulator's AMI trace tests: replay a trace's '>' side over TCP, normalise, compare.

Normalising touches only what varies run to run: timestamps, Asterisk-made uniqueids, channel
sequence numbers, session/thread/command ids, ports, bridge ids, uptimes, durations (including the
per-call durations Dial/Queue measure into ANSWEREDTIME, DIALEDTIME, QUEUEWAIT..., see MEASURED).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.traces import parse

Entry = tuple[float, str, str]

# Events (and their fields) the product consumes: compared exactly in the "filtered" mode
PRODUCT_EVENTS = {
    "Newchannel", "DialBegin", "DialEnd", "OriginateResponse", "Hangup", "AGIExecStart", "AGIExecEnd",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentConnect",
    "AgentComplete", "AgentRingNoAnswer", "FullyBooted",
}
OUR_VARIABLES = {"AMDSTATUS", "AMDCAUSE", "AGISTATUS", "FAXEXTEN", "CAMPAIGN_ID", "CONTACT_ID", "ATTEMPT_ID",
                 "__ATTEMPT_ID", "CAMPAIGN_RESULT", "FINAL_STATUS", "QUEUESTATUS", "MEMBERINTERFACE"}


def ami_connections(path: Path) -> list[list[Entry]]:
    """The body of an AMI trace split per TCP connection ('# === AMI connection' notes)."""
    trace = parse(path)
    conns: list[list[Entry]] = [[]]
    text = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    body = text[next(i for i, line in enumerate(text) if line.startswith("# ----")) + 1:]
    if any(line.startswith("# === AMI connection") for line in body):
        conns = []
        line_re = re.compile(r"^\s*(\d+\.\d+) ([<>#])(?: (.*))?$")
        for raw in body:
            if raw.startswith("# === AMI connection"):
                conns.append([])
                continue
            m = line_re.match(raw)
            if m and conns:
                conns[-1].append((float(m.group(1)), m.group(2), m.group(3) or ""))
        return conns
    return [list(trace.lines)]


def messages(lines: list[str]) -> list[list[str]]:
    """Lines grouped into AMI messages (the banner is a message of its own)."""
    out: list[list[str]] = []
    cur: list[str] = []
    for line in lines:
        if line.startswith("Asterisk Call Manager/") and not cur:
            out.append([line])
            continue
        if line == "":
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(line)
    if cur:
        out.append(cur)
    return out


class AmiReplayer:
    """Sends a connection's '>' messages, each after the '<' lines the trace shows before it arrived."""

    def __init__(self, entries: list[Entry], *, timeout: float = 10.0, quiet=None) -> None:
        self.entries = entries
        self.timeout = timeout
        self.quiet = quiet  # () -> bool: nothing more can come (the simulator is idle); stop waiting
        self.received: list[str] = []
        self.bad_endings: list[str] = []
        self.eof = False

    def expected(self) -> list[str]:
        return [t for _s, d, t in self.entries if d == "<"]

    async def _read_until(self, reader: asyncio.StreamReader, count: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count and not self.eof:
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                raw = await asyncio.wait_for(reader.readline(), min(left, 0.3))
            except TimeoutError:
                if self.quiet is not None and self.quiet():
                    return
                continue
            if not raw:
                self.eof = True
                return
            text = raw.decode("utf-8", "surrogateescape")
            if not text.endswith("\r\n"):
                self.bad_endings.append(text)
            self.received.append(text.rstrip("\r\n"))

    async def run(self, host: str, port: int, *, before_send=None) -> list[str]:
        reader, writer = await asyncio.open_connection(host, port)
        pending: list[str] = []
        seen = 0
        try:
            for _t, d, text in self.entries:
                if d == "<":
                    seen += 1
                elif d == ">":
                    if not pending:
                        await self._read_until(reader, seen, self.timeout)
                    pending.append(text)
                    if text == "":
                        if before_send is not None:
                            await before_send(pending)
                        writer.write("".join(p + "\r\n" for p in pending).encode())
                        await writer.drain()
                        pending = []
            await self._read_until(reader, seen, self.timeout)
            await self._read_until(reader, seen + 10_000, 0.3)  # anything more is a difference too
        finally:
            writer.close()
        return self.received


# Per-call durations Asterisk measures on the wall clock (app_dial / app_queue): they vary run to run
MEASURED = {f"{name}{unit}" for name in ("ANSWEREDTIME", "DIALEDTIME", "RINGTIME", "PROGRESSTIME", "QUEUEWAIT")
            for unit in ("", "_MS")}

# Events whose HoldTime/TalkTime/RingTime are one call's measured durations (not queue averages)
PER_CALL_EVENTS = {"QueueCallerAbandon", "AgentConnect", "AgentComplete", "AgentRingNoAnswer"}


class Normaliser:
    """Replaces run-to-run values by stable placeholders (numbered by first appearance)."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, str]] = {}
        self.variable = ""  # the VarSet being read: its Value is a measured duration when in MEASURED
        self.event = ""  # the event being read

    def _map(self, kind: str, value: str) -> str:
        m = self.maps.setdefault(kind, {})
        if value not in m:
            m[value] = f"<{kind}{len(m) + 1}>"
        return m[value]

    def line(self, line: str) -> str:
        key, sep, value = line.partition(": ")
        if sep:
            if key == "Event":
                self.event = value
            elif key in ("HoldTime", "TalkTime", "RingTime") and self.event in PER_CALL_EVENTS:
                return f"{key}: <measured>"
            if key == "Variable":
                self.variable = value
            elif key == "Value" and value and self.variable in MEASURED:
                return "Value: <measured>"
            if key in ("Timestamp", "EventTV", "SessionTV", "LastCall", "LoginTime", "LastPause"):
                return f"{key}: <time>" if value not in ("0", "") else line
            if key in ("Uptime", "LastReload"):
                return f"{key}: <n>"
            if key == "SessionID":
                return f"{key}: <session>"
            if key == "CommandId":
                return f"{key}: <cmd>"
            if key == "Duration":
                return f"{key}: <duration>"
            if key in ("LocalAddress", "RemoteAddress"):
                return re.sub(r"/\d+$", "/<port>", line)
            if key.endswith("BridgeUniqueid") or key == "BridgeId":
                return f"{key}: " + (self._map("bridge", value) if value else "")
        line = re.sub(r"\b\d{9,11}\.\d+\b", lambda m: self._map("uid", m.group(0)), line)
        line = re.sub(r"(?<=-)[0-9a-f]{8}(?=;\d|\b)", lambda m: self._map("seq", m.group(0)), line)
        line = re.sub(r"endpos=\d+", "endpos=<n>", line)
        line = re.sub(r"^(agi_threadid): \d+$", r"\1: <thread>", line)
        return line

    def lines(self, lines: list[str]) -> list[str]:
        return [self.line(x) for x in lines]


def normalise(lines: list[str]) -> list[str]:
    return Normaliser().lines(lines)


def product_view(lines: list[str]) -> list[str]:
    """The messages the product consumes, normalised, one string per message."""
    out = []
    for msg in messages(normalise(lines)):
        head = msg[0]
        if head.startswith("Event: "):
            name = head[7:]
            fields = dict(x.split(": ", 1) for x in msg[1:] if ": " in x)
            if name == "VarSet" and fields.get("Variable") not in OUR_VARIABLES:
                continue
            if name not in PRODUCT_EVENTS and name != "VarSet":
                continue
        out.append(" | ".join(msg))
    return out


def stream_of(msg: list[str], dtmf_apart: bool = False) -> str:
    """Which Asterisk thread/stream a message comes from: its channel, else its kind.

    ``dtmf_apart``: a channel's DTMF events form a stream of their own (keys relayed by a bridge
    come on the far end's timeline, so where they fall among the channel's dialplan steps races)."""
    head = msg[0]
    if not head.startswith("Event: "):
        return "response"
    name = head[7:]
    fields = dict(x.split(": ", 1) for x in msg[1:] if ": " in x)
    if name == "OriginateResponse":
        return "originate"
    for key in ("Channel", "DestChannel", "LocalOneChannel"):
        if key in fields:
            return fields[key] + (" DTMF" if dtmf_apart and name.startswith("DTMF") else "")
    return name


def streams(lines: list[str], only_product: bool = False, dtmf_apart: bool = False) -> dict[str, list[str]]:
    """Messages per stream (a channel, the originate thread, the session): the order within a
    stream is causal in Asterisk; the interleaving of streams is thread timing and varies."""
    out: dict[str, list[str]] = {}
    keep = set(product_view(lines)) if only_product else None
    for msg in messages(normalise(lines)):
        text = " | ".join(msg)
        if keep is not None and text not in keep:
            continue
        key = stream_of(msg, dtmf_apart)
        if key.endswith(" DTMF"):  # the key itself; the channel's snapshot (which step) is the race
            text = " | ".join(x for x in msg if x.split(": ", 1)[0] in DTMF_FIELDS)
        out.setdefault(key, []).append(text)
    return out


DTMF_FIELDS = {"Event", "Channel", "Digit", "DurationMs", "Direction"}
