"""Every recorded Asterisk AGI session, replayed over TCP against our server and channel API.

A fake Asterisk connects to a real FastAGIServer and answers with the trace's own lines; the
flow issues the trace's commands through the channel API. Our side must send exactly the
trace's commands (minus the ones a hung-up channel refuses without writing) and read the
right reply for each, whatever HANGUP lines come in between.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agi.fastagi import (
    AGIAppError,
    AGIConnectionClosed,
    AGIHangup,
    AGIInvalidCommand,
    AGIResultHangup,
    AGIUsageError,
    FastAGIServer,
    Router,
)
from agi.fastagi.protocol import split_command
from conftest import TRACES

TRACE_FILES = sorted(TRACES.glob("agi-session-*.txt"))

# What the traces show still works after hang-up (agi-session-hangup-*.txt): everything else gets 511.
WORKS_WHEN_DEAD = ("GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "EXEC", "NOOP")

_EVENT = re.compile(r"^\s*[\d.]+ ([<>#])(?: (.*))?$")


@dataclass
class Step:
    command: str
    lines: list[str] = field(default_factory=list)  # Asterisk's lines after it, up to the next command
    close_after: bool = False  # Asterisk closed the socket after these lines
    idle_before: bool = False  # the trace's script sat idle before sending it
    unsent: bool = False  # the trace's script did not send it (socket already closed)
    expect_sent: bool = True


@dataclass
class Conn:
    header: list[str] = field(default_factory=list)
    preamble: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    on_eof: list[str] = field(default_factory=list)  # sent after our half-close
    idle_at_end: bool = False


def parse_trace(path: Path) -> list[Conn]:
    conns: list[Conn] = []
    in_header = after_close = idle = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = _EVENT.match(raw)
        if not m:
            continue
        kind, text = m.group(1), m.group(2) or ""
        if kind == "#":
            if text.startswith("connection from"):
                if conns and idle:
                    conns[-1].idle_at_end = True
                conns.append(Conn())
                in_header, after_close, idle = True, False, False
            elif "half-closes" in text:
                after_close = True
            elif "EOF from Asterisk" in text and not after_close:
                (conns[-1].steps[-1] if conns[-1].steps else conns[-1]).close_after = True
            elif text.startswith("idle"):
                idle = True
            elif text.startswith("not sending '"):
                conns[-1].steps.append(Step(text.split("'")[1], unsent=True))
            continue
        conn = conns[-1]
        if kind == "<" and in_header:
            conn.header.append(text)
            in_header = text != ""
        elif kind == "<":
            (conn.on_eof if after_close else conn.steps[-1].lines if conn.steps else conn.preamble).append(text)
        else:
            conn.steps.append(Step(text, idle_before=idle))
            idle = False
    if conns and idle:
        conns[-1].idle_at_end = True
    for conn in conns:
        _mark_expected(conn)
        conn.idle_at_end = conn.idle_at_end and bool(conn.steps) and "HANGUP" in conn.steps[-1].lines
    return conns


def _mark_expected(conn: Conn) -> None:
    """Which commands our side must write: none after EOF; after a hang-up only those that work."""
    dead = any(line == "HANGUP" or line.startswith("511") for line in conn.preamble)
    eof = False
    prev_lines = conn.preamble
    for step in conn.steps:
        # the script waited for the HANGUP line only if one came while it sat idle
        step.idle_before = step.idle_before and "HANGUP" in prev_lines
        prev_lines = step.lines
        works = step.command.upper().startswith(WORKS_WHEN_DEAD)
        step.expect_sent = not eof and not step.unsent and (not dead or works)
        if not step.expect_sent:
            assert all(line.startswith("511") for line in step.lines), step
        if step.command.upper() == "HANGUP":
            dead = True
        if any(line == "HANGUP" or line.startswith("511") for line in step.lines):
            dead = True
        eof = eof or step.close_after


def api_call(call, command: str):
    """The channel API call that should put ``command`` on the wire."""
    w = split_command(command)
    u = [x.upper() for x in w]
    if u[:2] == ["GET", "VARIABLE"]:
        return call.get_variable(w[2])
    if u[:3] == ["GET", "FULL", "VARIABLE"]:
        return call.get_full_variable(w[3])
    if u[:2] == ["SET", "VARIABLE"]:
        return call.set_variable(w[2], w[3])
    if u[:2] == ["STREAM", "FILE"]:
        return call.stream_file(w[2], w[3])
    if u[:2] == ["GET", "DATA"]:
        return call.get_data(w[2], int(w[3]), int(w[4]))
    if u[:3] == ["WAIT", "FOR", "DIGIT"] and len(w) == 4:
        return call.wait_for_digit(int(w[3]))
    if u[0] == "EXEC":
        return call.exec(w[1], *(w[2].split(",") if len(w) > 2 else []))
    if u[0] == "VERBOSE":
        return call.verbose(w[1], int(w[2]))
    if u == ["CHANNEL", "STATUS"]:
        return call.channel_status()
    if u == ["ANSWER"]:
        return call.answer()
    if u == ["HANGUP"]:
        return call.hangup()
    if u == ["NOOP"]:
        return call.noop()
    return call.execute(command)  # FOO BAR, WAIT FOR DIGIT without its argument


async def fake_asterisk(port: int, conn: Conn) -> list[str]:
    """Connect like Asterisk, send the trace's lines as our side's commands arrive; the commands."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received: list[str] = []

    def send(lines: list[str]) -> None:
        writer.write(b"".join(line.encode("utf-8") + b"\n" for line in lines))

    try:
        send(conn.header + conn.preamble)
        for step in conn.steps:
            if not step.expect_sent:
                continue
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                received.append("<EOF too early>")
                return received
            received.append(line.decode("utf-8").rstrip("\n"))
            send(step.lines)
            await writer.drain()
            if step.close_after:
                return received
        extra = await asyncio.wait_for(reader.read(), 5)  # our side half-closes when the flow ends
        if extra:
            received.append(f"<unexpected {extra!r}>")
        send(conn.on_eof)
        await writer.drain()
        return received
    finally:
        writer.close()


async def replay(conn: Conn, mutate=None) -> tuple[list[str], list[tuple[str, object]], dict]:
    """Run ``conn`` through a real server; (commands received, [(command, outcome)], channel facts)."""
    outcomes: list[tuple[str, object]] = []
    facts: dict = {}

    async def driver(call) -> None:
        facts["path"], facts["query"], facts["args"] = call.path, call.query, call.args
        facts["uniqueid"] = call.uniqueid
        for step in conn.steps:
            if step.idle_before:
                await asyncio.wait_for(call.wait_hangup(), 5)
            try:
                result = await api_call(call, step.command)
            except Exception as exc:  # noqa: BLE001 - the outcome under test
                result = type(exc)
            outcomes.append((step.command, result))
            facts.setdefault("hung_up_after", []).append(call.hung_up)
        if conn.idle_at_end:
            await asyncio.wait_for(call.wait_hangup(), 5)
        facts["hung_up"] = call.hung_up

    script = next(h for h in conn.header if h.startswith("agi_network_script: "))
    server = FastAGIServer(Router({script.split(": ", 1)[1].split("?")[0]: driver}), port=0, linger=2.0)
    await server.start()
    try:
        received = await asyncio.wait_for(fake_asterisk(server.port, conn), 20)
        await server.shutdown(deadline=5)
    finally:
        await server.shutdown(deadline=0)
    facts["stats"] = dict(server.stats)
    return received, outcomes, facts


def _conns(name: str) -> list[Conn]:
    return parse_trace(TRACES / f"agi-session-{name}.txt")


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: p.stem.removeprefix("agi-session-"))
async def test_trace_replays_with_exactly_the_trace_commands(path: Path):
    for conn in parse_trace(path):
        received, outcomes, facts = await replay(conn)
        expected = [s.command for s in conn.steps if s.expect_sent]
        assert received == expected
        assert len(outcomes) == len(conn.steps)
        # the session always ends cleanly: the flow ran to its end, nothing crashed
        assert facts["stats"].get("failed", 0) == 0
        assert facts["stats"].get("completed", 0) == 1
        script = next(h for h in conn.header if h.startswith("agi_network_script: "))
        assert facts["path"] == script.split(": ", 1)[1].split("?")[0]


async def test_hangup_while_idle_then_only_dead_channel_commands_are_sent():
    (conn,) = _conns("hangup-while-idle")
    received, outcomes, facts = await replay(conn)
    assert outcomes == [
        ("ANSWER", None),
        ("GET VARIABLE AMDSTATUS", "HUMAN"),
        ("GET VARIABLE AMDSTATUS", "HUMAN"),
        ('VERBOSE "caller hung up" 1', None),
        ('SET VARIABLE CAMPAIGN_RESULT "CALLER_HUNGUP"', None),
        ("CHANNEL STATUS", AGIHangup),
        ('STREAM FILE beep ""', AGIHangup),
        ("WAIT FOR DIGIT 1000", AGIHangup),
        ("ANSWER", AGIHangup),
        ("HANGUP", None),
    ]
    assert received[-1] == 'SET VARIABLE CAMPAIGN_RESULT "CALLER_HUNGUP"'
    assert facts["hung_up_after"][0] is False and facts["hung_up"]


async def test_hangup_during_command_reply_comes_first_and_the_next_reply_is_not_misread():
    (conn,) = _conns("hangup-during-command")
    received, outcomes, facts = await replay(conn)
    assert outcomes == [
        ("ANSWER", None),
        ("GET VARIABLE AMDSTATUS", "HUMAN"),
        ("WAIT FOR DIGIT 20000", AGIResultHangup),
        ("GET VARIABLE AMDSTATUS", "HUMAN"),  # HANGUP came between the command and its reply
        ('STREAM FILE beep ""', AGIHangup),
        ("GET DATA beep 3000 1", AGIHangup),
    ]
    assert received == ["ANSWER", "GET VARIABLE AMDSTATUS", "WAIT FOR DIGIT 20000", "GET VARIABLE AMDSTATUS"]


async def test_agiexitonhangup_closes_the_socket_and_later_commands_raise_without_writing():
    (conn,) = _conns("hangup-agiexitonhangup")
    received, outcomes, facts = await replay(conn)
    assert outcomes[:2] == [("ANSWER", None), ("GET VARIABLE AMDSTATUS", "HUMAN")]
    # AGIConnectionClosed is an AGIHangup: nothing can be sent any more; HANGUP is a no-op
    assert [o for _, o in outcomes[2:]] == [AGIConnectionClosed] * 7 + [None]
    assert received == ["ANSWER", "GET VARIABLE AMDSTATUS"]
    assert facts["hung_up"]


async def test_queue_caller_hangup_exec_minus_one_is_not_a_hangup_but_the_hangup_line_is():
    (conn,) = _conns("queue-caller-hangup")
    received, outcomes, facts = await replay(conn)
    assert outcomes[2] == ("EXEC Queue sales,,,,30", -1)
    assert facts["hung_up_after"][2] is False  # result=-1 alone says nothing
    assert outcomes[3:9] == [
        ("GET VARIABLE QUEUESTATUS", None),  # unset, after the HANGUP line
        ("GET VARIABLE ABANDONED", "TRUE"),
        ("GET VARIABLE QUEUEWAIT", "3"),
        ("GET VARIABLE ANSWEREDTIME", "0"),
        ("GET VARIABLE DIALEDTIME", "4"),
        ("GET VARIABLE HANGUPCAUSE", "16"),
    ]
    assert facts["hung_up_after"][3] is True
    assert outcomes[9:] == [
        ("CHANNEL STATUS", AGIHangup),
        ('STREAM FILE please-try-call-later ""', AGIHangup),
        ('SET VARIABLE CAMPAIGN_RESULT "ABANDONED"', None),
        ("HANGUP", None),
    ]


async def test_queue_bridged_minus_one_leaves_the_caller_up():
    (conn,) = _conns("queue-bridged")
    received, outcomes, facts = await replay(conn)
    got = dict(outcomes)
    assert outcomes[2] == ("EXEC Queue sales,,,,5", -1)
    assert got["GET VARIABLE QUEUESTATUS"] is None
    assert got["GET VARIABLE MEMBERINTERFACE"] == "Local/agent1@agents/n"
    assert got["GET VARIABLE MEMBERNAME"] == "Agent One"
    assert got["CHANNEL STATUS"] == 6
    assert facts["hung_up_after"][:-1] == [False] * (len(outcomes) - 1)


@pytest.mark.parametrize("name", ["human-keypress", "human-nokeypress"])
async def test_510_and_520_multiline_usage_raise_and_the_next_reply_is_in_step(name):
    (conn,) = _conns(name)
    received, outcomes, facts = await replay(conn)
    got = dict(outcomes)
    assert got["FOO BAR"] is AGIInvalidCommand
    assert got["WAIT FOR DIGIT"] is AGIUsageError
    assert got["NOOP"] is None
    assert got["GET VARIABLE DOES_NOT_EXIST"] is None
    assert got['GET FULL VARIABLE "${CHANNEL}|${UNIQUEID}|${CALLERID(num)}"'].endswith("|15550001111")
    assert got["CHANNEL STATUS"] == 6  # the line after the usage block, not the usage text
    assert got['STREAM FILE beep "1234567890*#"'] is None
    assert got["EXEC Dial Local/agent@agents,20"] == -1  # the dialed party hung up; the caller did not
    assert facts["args"] == ["HUMAN", "HUMAN-800-800"]
    assert facts["query"] == {"campaign": "1", "mode": "human-dtmf" if name == "human-keypress" else "human"}
    if name == "human-keypress":
        assert got["GET DATA beep 3000 1"] == "1" and got["WAIT FOR DIGIT 2000"] == "1"
    else:
        assert got["GET DATA beep 3000 1"] == "" and got["WAIT FOR DIGIT 2000"] is None  # (timeout), 0


async def test_get_data_invalid_key_timeout_and_unknown_application():
    (conn,) = _conns("playback-getdata-invalidkey")
    received, outcomes, facts = await replay(conn)
    assert [o for c, o in outcomes if c.startswith("GET DATA")] == ["7", "9", ""]
    got = dict(outcomes)
    assert got["EXEC Playback beep"] == 0
    assert got["EXEC NoSuchApplication foo"] is AGIAppError


async def test_h_extension_session_learns_of_the_hangup_from_511():
    conns = _conns("hangup-handler")
    assert len(conns) == 3
    for conn in conns[1:]:
        received, outcomes, facts = await replay(conn)
        got = dict(outcomes)
        assert got['GET FULL VARIABLE "${CDR(billsec)}|${CDR(duration)}|${CDR(disposition)}"'] == "6|6|ANSWERED"
        assert got['GET FULL VARIABLE "${HANGUPCAUSE_KEYS()}"'] == ""
        assert got["CHANNEL STATUS"] is AGIHangup
        assert got["EXEC NoOp after-hangup"] == 0
        assert got["GET VARIABLE PLAYBACKSTATUS"] == "FAILED"
        assert 'STREAM FILE beep ""' not in received and "HANGUP" not in received
        assert "EXEC Playback beep" in received


async def test_100_trying_before_a_reply_is_skipped():
    (conn,) = _conns("human-keypress")
    dial = next(s for s in conn.steps if s.command.startswith("EXEC Dial"))
    dial.lines.insert(0, "100 result=0 Trying...")
    received, outcomes, facts = await replay(conn)
    got = dict(outcomes)
    assert got["EXEC Dial Local/agent@agents,20"] == -1
    assert got["GET VARIABLE DIALSTATUS"] == "ANSWER"
