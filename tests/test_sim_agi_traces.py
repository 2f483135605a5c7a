"""The simulator's FastAGI client says, byte for byte, what Asterisk 22 said in every agi-session trace.

For each trace a scripted FastAGI server (here, over real TCP) sends the trace's '>' lines in order,
reading one line from the client for every '<' line; the client runs against a simulated channel set
up as the trace's scenario. What the client sent must equal the trace's '<' lines after normalising
only what varies run to run: thread ids, endpos values and the server's port in agi_request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from agi.sim.agi_client import run_agi
from agi.sim.callee import Callee, KeyPress
from agi.sim.channels import UP, Channel
from agi.sim.clock import Clock
from agi.sim.queues import Member, QueueConfig, QueueSystem
from tests.conftest import TRACES
from tests.traces import parse

SPEED = 10.0  # simulated seconds per wall-clock second: key windows keep ~100 ms of wall-clock slack


# Queue durations measured from the channel's answer include the wall clock's scheduling jitter
# (scaled by SPEED): their values vary run to run like timestamps do.
JITTERY = {"DIALEDTIME", "DIALEDTIME_MS", "ANSWEREDTIME_MS", "QUEUEWAIT_MS"}


def normalise_replies(entries: list[tuple[float, str, str]], received: list[str]) -> list[str]:
    """The received lines, with the reply to GET VARIABLE of a JITTERY variable made '<ms>'."""
    out, i, asked = [], 0, None
    for _t, direction, text in entries:
        if direction == ">":
            asked = text.split()[-1] if text.startswith("GET VARIABLE ") else None
        elif direction == "<" and i < len(received):
            line = received[i]
            if asked in JITTERY and line.startswith("200 result=1 ("):
                line = "200 result=1 (<ms>)"
            out.append(normalise(line))
            i += 1
    return out + [normalise(x) for x in received[i:]]


def normalise(line: str) -> str:
    line = re.sub(r"^agi_threadid: \d+$", "agi_threadid: <thread>", line)
    line = re.sub(r"endpos=\d+", "endpos=<n>", line)
    line = re.sub(r"^(agi_request: agi://[^:/]+):\d+/", r"\1:4573/", line)
    return line


class ScriptedServer:
    """A FastAGI server that replays one connection of a trace: '>' lines sent, '<' lines read."""

    def __init__(self, entries: list[tuple[float, str, str]]) -> None:
        self.entries = entries
        self.received: list[str] = []
        self.done = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        eof = False
        try:
            for _t, direction, text in self.entries:
                if direction == "<" and not eof:
                    data = await asyncio.wait_for(reader.readline(), timeout=10)
                    if not data:
                        eof = True
                        continue
                    self.received.append(data.decode("utf-8", "surrogateescape").removesuffix("\n"))
                elif direction == ">" and not eof:
                    writer.write(text.encode() + b"\n")
                    await writer.drain()
                elif direction == "#" and "half-closes its write side" in text:
                    writer.write_eof()
            while not eof:  # anything the client sends beyond the trace is a difference too
                data = await asyncio.wait_for(reader.readline(), timeout=10)
                if not data:
                    break
                self.received.append(data.decode("utf-8", "surrogateescape").removesuffix("\n"))
        finally:
            writer.close()
            self.done.set()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def expected(self) -> list[str]:
        return [text for _t, d, text in self.entries if d == "<"]


@dataclass
class Scenario:
    """How the trace's channel, callee and queues were set up."""

    callee: Callee = field(default_factory=Callee)
    variables: dict[str, str] = field(default_factory=dict)
    context: str = "dialer"
    exten: str = "s"
    priority: int = 5
    exit_on_hangup: bool = False
    queues: list[QueueConfig] = field(default_factory=list)
    # per extra connection (h, hangup handler): (context, extension, priority, script, args, variables)
    later: list[tuple[str, str, int, dict[str, str]]] = field(default_factory=list)


HUMAN_VARS = {"AMDSTATUS": "HUMAN", "AMDCAUSE": "HUMAN-800-800"}
SALES_MEMBER = Member("Local/agent1@agents/n", "Agent One")
HANGS_UP_AT_6S = Callee(hangup_after=6.4)

SCENARIOS: dict[str, Scenario] = {
    "agi-session-human-nokeypress.txt": Scenario(variables=HUMAN_VARS),
    "agi-session-human-keypress.txt": Scenario(
        # presses 1 during the GET DATA wait (prompt 1) and again during WAIT FOR DIGIT
        callee=Callee(keys=(KeyPress("1", 1.74, prompt=1), KeyPress("1", 2.74, prompt=1))),
        variables=HUMAN_VARS,
    ),
    "agi-session-human-no-media-amd-notsure.txt": Scenario(
        callee=Callee(kind="no_media"), variables={"AMDSTATUS": "NOTSURE", "AMDCAUSE": "TOOLONG-4939"}
    ),
    "agi-session-machine.txt": Scenario(
        callee=Callee(kind="machine"), variables={"AMDSTATUS": "MACHINE", "AMDCAUSE": "MAXWORDS-3-2"}
    ),
    "agi-session-machine-waitforsilence.txt": Scenario(
        callee=Callee(kind="machine"), variables={"AMDSTATUS": "MACHINE", "AMDCAUSE": "MAXWORDS-3-2"}
    ),
    "agi-session-fax-detected.txt": Scenario(
        callee=Callee(kind="fax"),
        exten="fax",
        priority=2,
        variables={"FAXEXTEN": "s", "AMDSTATUS": "HANGUP", "AMDCAUSE": "", "FAXOPT(faxdetect)": "no"},
    ),
    "agi-session-fax-cng-amd-only.txt": Scenario(callee=Callee(kind="fax"), variables=HUMAN_VARS),
    "agi-session-hangup-while-idle.txt": Scenario(callee=HANGS_UP_AT_6S, variables=HUMAN_VARS),
    "agi-session-hangup-during-command.txt": Scenario(callee=HANGS_UP_AT_6S, variables=HUMAN_VARS),
    "agi-session-hangup-agiexitonhangup.txt": Scenario(
        callee=HANGS_UP_AT_6S, variables=HUMAN_VARS, exit_on_hangup=True
    ),
    "agi-session-hangup-handler.txt": Scenario(
        callee=HANGS_UP_AT_6S,
        variables=HUMAN_VARS,
        context="dialer-h",
        later=[("dialer-h", "h", 1, {}), ("dialer-hangup", "s", 1, {"ARG1": "1"})],
    ),
    "agi-session-playback-getdata-invalidkey.txt": Scenario(
        # 7 during the first GET DATA (prompt 0), 9 during the second (prompt 2), then nothing
        callee=Callee(keys=(KeyPress("7", 2.2, prompt=0), KeyPress("9", 2.0, prompt=2))),
        variables=HUMAN_VARS,
    ),
    "agi-session-queue-bridged.txt": Scenario(
        variables=HUMAN_VARS,
        queues=[QueueConfig("sales", members=[SALES_MEMBER], talk_seconds=(2.015, 2.015)),
                QueueConfig("empty", joinempty=False)],
    ),
    "agi-session-queue-timeout.txt": Scenario(
        variables=HUMAN_VARS,
        queues=[QueueConfig("sales", members=[Member("Local/agent1@agents/n", "Agent One", answers=False)])],
    ),
    "agi-session-queue-joinempty.txt": Scenario(
        variables=HUMAN_VARS,
        queues=[QueueConfig("sales", members=[SALES_MEMBER]), QueueConfig("empty", joinempty=False)],
    ),
    "agi-session-queue-caller-hangup.txt": Scenario(
        callee=Callee(hangup_in_queue_after=3.0),
        variables=HUMAN_VARS,
        queues=[QueueConfig("sales", members=[Member("Local/agent1@agents/n", "Agent One", answers=False)])],
    ),
}


def test_every_agi_trace_has_a_scenario():
    assert sorted(p.name for p in TRACES.glob("agi-session-*.txt")) == sorted(SCENARIOS)


def _channel(trace, scenario: Scenario, clock: Clock, events: list) -> Channel:
    first = trace.connections[0]
    env = dict(t.split(": ", 1) for _s, d, t in first if d == "<" and t.startswith("agi_") and ": " in t)
    ch = Channel(
        name=env["agi_channel"],
        uniqueid=env["agi_uniqueid"],
        linkedid=env["agi_uniqueid"],
        clock=clock,
        sink=lambda event, fields: events.append((event, dict(fields))),
        context=scenario.context,
        exten="s",
        priority=5,
        state=UP,
        callee=scenario.callee,
    )
    ch.callerid_num, ch.callerid_name = env["agi_callerid"], env["agi_calleridname"]
    ch.connected_num, ch.connected_name = ch.callerid_num, ch.callerid_name
    ch.variables.update({"CAMPAIGN_ID": "1", "CONTACT_ID": "42"})
    ch.variables.update(scenario.variables)
    amd_seconds = scenario.callee.amd()[2]
    ch.answered_at = clock.now() - amd_seconds
    ch.created = ch.answered_at
    return ch


def _request(entries) -> tuple[str, list[str]]:
    env = [t for _s, d, t in entries if d == "<" and t.startswith("agi_")]
    script = next(t.split(": ", 1)[1] for t in env if t.startswith("agi_network_script:"))
    args = [t.split(": ", 1)[1] if ": " in t else "" for t in env if t.startswith("agi_arg_")]
    return script, args


AMI_OF = {
    "agi-session-human-nokeypress.txt": "ami-originate-human.txt",
    "agi-session-human-keypress.txt": "ami-originate-human-keypress.txt",
    "agi-session-human-no-media-amd-notsure.txt": "ami-originate-human-no-media.txt",
    "agi-session-machine.txt": "ami-originate-machine.txt",
    "agi-session-machine-waitforsilence.txt": "ami-originate-machine-waitforsilence.txt",
    "agi-session-fax-detected.txt": "ami-originate-fax-cng.txt",
    "agi-session-fax-cng-amd-only.txt": "ami-originate-fax-cng-no-faxdetect.txt",
    "agi-session-hangup-while-idle.txt": "ami-originate-hangup-during-agi.txt",
    "agi-session-hangup-during-command.txt": "ami-originate-hangup-during-agi-command.txt",
    "agi-session-hangup-agiexitonhangup.txt": "ami-originate-hangup-agiexitonhangup.txt",
    "agi-session-hangup-handler.txt": "ami-originate-hangup-handler.txt",
    "agi-session-playback-getdata-invalidkey.txt": "ami-originate-playback-getdata-invalidkey.txt",
    "agi-session-queue-bridged.txt": "ami-originate-queue-bridged.txt",
    "agi-session-queue-timeout.txt": "ami-originate-queue-timeout.txt",
    "agi-session-queue-joinempty.txt": "ami-originate-queue-joinempty.txt",
    "agi-session-queue-caller-hangup.txt": "ami-originate-queue-caller-hangup.txt",
}
AGI_EVENTS = ("Event: AGIExecStart", "Event: AGIExecEnd", "Event: VarSet")


def _agi_view(lines: list[str], caller: str) -> list[str]:
    """AGIExec* and VarSet (of the variables the product reads) on the caller's channel, in order."""
    from tests.sim_ami_support import product_view

    view = [m for m in product_view(lines) if m.startswith(AGI_EVENTS) and f"| Channel: {caller} |" in m]
    first = next(i for i, m in enumerate(view) if m.startswith("Event: AGIExecStart"))
    last = max(i for i, m in enumerate(view) if m.startswith("Event: AGIExecEnd") or "Variable: AGISTATUS" in m)
    return view[first : last + 1]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_client_speaks_like_asterisk(name: str):
    trace = parse(TRACES / name)
    scenario = SCENARIOS[name]
    clock = Clock(speed=SPEED)
    events: list[tuple[str, dict[str, Any]]] = []
    line = _channel(trace, scenario, clock, events)
    queues = QueueSystem(scenario.queues, rng_seed=1) if scenario.queues else None
    places = [(scenario.context, scenario.exten, scenario.priority, {})] + scenario.later
    assert len(places) == len(trace.connections)
    for entries, (context, exten, priority, extra_vars) in zip(trace.connections, places):
        line.variables.update(extra_vars)
        line.context, line.exten, line.priority = context, exten, priority
        server = ScriptedServer(entries)
        port = await server.start()
        script, args = _request(entries)
        result = await asyncio.wait_for(
            run_agi(line, "127.0.0.1", port, script, args, context=context, extension=exten,
                    priority=priority, exit_on_hangup=scenario.exit_on_hangup, queues=queues,
                    server_timeout=15),
            timeout=60,
        )
        await asyncio.wait_for(server.done.wait(), timeout=15)
        await server.close()
        got = normalise_replies(entries, server.received)
        want = normalise_replies(entries, server.expected())
        assert got == want, f"{name}: connection {script} differs"
        assert result.connected
        if not line.hangup_requested.is_set() and exten != "h":
            line.request_hangup(16)  # the dialplan's Hangup() after the AGI, before h runs
        line.finish()
    # the AMI side of the same sessions: AGIExecStart/End per command, VarSet of our variables
    ami = parse(TRACES / AMI_OF[name])
    caller = re.sub(r"-[0-9a-f]{8};", "-<seq1>;", line.name)
    want = _agi_view([t for _s, d, t in ami.lines if d == "<"], caller)
    got = _agi_view(_ami_lines(events), caller)
    assert got == want


# ---- the queue AMI events around EXEC Queue, against the matching ami-originate trace ----------------
QUEUE_AMI = {
    "agi-session-queue-bridged.txt": "ami-originate-queue-bridged.txt",
    "agi-session-queue-timeout.txt": "ami-originate-queue-timeout.txt",
    "agi-session-queue-caller-hangup.txt": "ami-originate-queue-caller-hangup.txt",
    "agi-session-queue-joinempty.txt": "ami-originate-queue-joinempty.txt",
}


def _ami_lines(events: list[tuple[str, dict[str, str]]]) -> list[str]:
    from agi.sim.channels import privilege

    out: list[str] = []
    for event, fields in events:
        out += [f"Event: {event}", f"Privilege: {privilege(event)}"]
        out += [f"{k}: {v}" for k, v in fields.items()] + [""]
    return out


def _queue_window(lines: list[str]) -> list[str]:
    """Product-view messages from AGIExecStart of the first EXEC Queue to the AGIExecEnd of the last."""
    from tests.sim_ami_support import product_view

    view = product_view(lines)
    starts = [i for i, m in enumerate(view) if m.startswith("Event: AGIExecStart") and "Command: EXEC Queue" in m]
    ends = [i for i, m in enumerate(view) if m.startswith("Event: AGIExecEnd") and "Command: EXEC Queue" in m]
    return view[starts[0] : ends[-1] + 1]


@pytest.mark.parametrize("name", sorted(QUEUE_AMI))
async def test_queue_events_match_the_ami_trace(name: str):
    """QueueCallerJoin, AgentCalled, DialBegin/End, AgentConnect/Complete, abandon... as Asterisk sent them.

    The member's Local channel pair is made by a factory here as the switch would (the rig's
    [agents] dialplan: agent1 answers and plays 2 s, or rings for ever).
    """
    from agi.sim.channels import RING, UP as UP_STATE

    trace = parse(TRACES / name)
    scenario = SCENARIOS[name]
    clock = Clock(speed=SPEED)
    events: list[tuple[str, dict[str, str]]] = []
    line = _channel(trace, scenario, clock, events)
    line.connected_num, line.connected_name = line.callerid_num, line.callerid_name
    seq = iter(range(1, 100))

    def member_channel(caller, member):
        n = next(seq)
        legs = []
        for half, state in ((1, 0), (2, RING)):
            ch = Channel(name=f"Local/agent1@agents-{n:08x};{half}", uniqueid=f"1795304527.{2 * n + half}",
                         linkedid=caller.uniqueid, clock=clock, sink=lambda e, f: events.append((e, dict(f))),
                         context="agents", exten="agent1", priority=1, state=state)
            ch.emit("Newchannel")
            legs.append(ch)
        one, two = legs
        one.peer, two.peer = two, one
        for ch in legs:
            ch.callerid_num = ch.connected_num = caller.callerid_num
            ch.callerid_name = ch.connected_name = caller.callerid_name
        if member.answers:
            two.state, two.exten, two.priority = UP_STATE, "agent1-answer", 3
        else:
            two.exten, two.priority = "agent1-noanswer", 2
        return one

    queues = QueueSystem(scenario.queues, rng_seed=1, member_channel_factory=member_channel)
    entries = trace.connections[0]
    server = ScriptedServer(entries)
    port = await server.start()
    script, args = _request(entries)
    await asyncio.wait_for(run_agi(line, "127.0.0.1", port, script, args, context=scenario.context,
                                   extension="s", priority=5, queues=queues, server_timeout=15), timeout=60)
    await asyncio.wait_for(server.done.wait(), timeout=15)
    await server.close()
    ami = parse(TRACES / QUEUE_AMI[name])
    want = _queue_window([t for _s, d, t in ami.lines if d == "<"])
    # the person's own Local half (;2, the callee side) belongs to the switch, not to this test
    want = [m for m in want if not re.search(r"\| Channel: Local/\w+@callee-<seq1>;2 \|", m)]
    got = _queue_window(_ami_lines(events))
    assert got == want
