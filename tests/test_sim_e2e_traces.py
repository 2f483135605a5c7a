"""Every ami-originate-*.txt trace, driven through the simulator over TCP, compared with the trace.

The test sends the trace's '>' lines (Login, Originate, Logoff) to the simulator's AMI port; for
answered calls a scripted FastAGI server replays the '>' lines of the matching agi-session trace.
The simulator runs the capture rig's own dialplan (parsed from the trace header) with the trace's
scenario. What the simulator sent on AMI is compared with the trace's '<' lines after normalising
only run-to-run values (tests/sim_ami_support.py: timestamps, uniqueids, sequence numbers, bridge
ids, and per-call durations Asterisk measures on the wall clock: ANSWEREDTIME/DIALEDTIME/QUEUEWAIT
and their _MS, HoldTime/TalkTime/RingTime of one call's Queue/Agent events). LEVEL says how:

full (10): busy, congestion, noanswer-timeout, numberchanged, nonexistent-tech, machine,
  hangup-during-agi-command, human, busy-response-first, rejected-response-first: the same lines
  in the same order.
streams (15): the same messages, field for field, in the same order within each stream (a channel,
  the originate thread, the AMI session); only the interleaving of streams is left free, because
  on Asterisk it is a thread race, and the traces prove it:
  - OriginateResponse comes from the originate thread while the channel's own thread runs on: in
    the answered traces, which run the same dialplan up to the answer, it lands after the ;2 half's
    Newstate (human), after DialEnd (human-no-media), after the first Newexten (fax-cng,
    hangup-during-agi), before LocalBridge (machine-waitforsilence), right after the first
    Newchannel (queue-joinempty); for the failures it moves the same way (rejected and
    numberchanged run the same dialplan and differ only there; nonexistent-exten);
  - SuccessfulAuth is a security event stasis delivers on its own thread: after the Originate reply
    in unallocated, before it everywhere else (unallocated differs from full only there);
  - the two halves of a Local pair hang up on their own threads: the ;1 Hangup falls before or
    after the ;2 half's PLAYBACKSTATUS (machine-waitforsilence, queue-joinempty vs human);
  - the queue traces (bridged, timeout, caller-hangup, joinempty): app_queue, the member's Local
    pair and the caller run on separate threads; QueueMemberStatus is its own stream.
  Traces at this level: fax-cng, fax-cng-no-faxdetect, hangup-agiexitonhangup, hangup-during-agi,
  hangup-handler, human-no-media, machine-waitforsilence, nonexistent-exten,
  playback-getdata-invalidkey, queue-joinempty, queue-bridged, queue-timeout, queue-caller-hangup,
  rejected, unallocated.
response-first (2): busy-response-first, rejected-response-first are the events a second AMI
  session saw while a loaded Asterisk ran the call (no Login, no Originate of their own): the
  simulator, with faults.response_first on, runs the call for a driver session, and what a second
  session with the capture's view (Events: call) receives must be the trace, line for line.
streams-dtmf (1): human-keypress: as streams, with each channel's DTMF events a stream of their own,
  compared by key, direction and duration: the keys the person sends during the agent bridge come
  on the person's timeline (SendDTMF loop), the agent's dialplan steps on the agent's, so which step
  a key's snapshot shows races (the trace's third key lands 12 ms before the agent's Playback ends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from agi.sim.callee import Callee, KeyPress
from agi.sim.dialplan import Dialplan
from agi.sim.queues import Member, QueueConfig
from agi.sim.scenarios import SCENARIOS, Scenario, ScenarioPlan
from agi.sim.simulator import Simulator
from tests.conftest import TRACES
from tests.sim_ami_support import AmiReplayer, ami_connections, normalise, streams
from tests.traces import parse

SPEED = 20.0

HANGS_UP_AT_6S = Callee()  # the rig's callee hangs up itself: Answer, Playback(hello-silence-5s), Hangup(16)
# Lengths of the capture rig's sound files (seconds, from the traces' Playback -> PLAYBACKSTATUS);
# the long ones are "Hello?"/greeting/CNG plus silence that outlast every call.
RIG_SOUNDS = {"agent": 4.343, "agent-2s": 1.998, "hello": 0.94, "hello-silence-2s5": 3.44, "hello-silence-5s": 5.94, "human-hello": 30.0,
              "machine-greeting": 30.0, "fax-cng": 30.0}
SALES_MEMBER = Member("Local/agent1@agents/n", "Agent One")
BANNER_LINE = "Asterisk Call Manager/11.0.0"  # every AMI trace's first line


@dataclasses.dataclass
class Case:
    agi: str | None  # matching agi-session trace
    scenario: Scenario
    queues: list[QueueConfig] = dataclasses.field(default_factory=list)
    # calls the capture rig's queue 'sales' had completed before this one (same Asterisk run): they
    # show in QUEUECOMPLETED/QUEUETALKTIME and the member's CallsTaken/LastCall
    prior_calls: int = 0
    prior_abandoned: int = 0
    speed: float = SPEED
    response_first: bool = False  # a second session's capture of a loaded Asterisk (see the docstring)


def _answered(name: str, callee: Callee | None = None) -> Scenario:
    return Scenario(name, ring_time=0.0, callee=callee or Callee())


def _failed(name: str) -> Scenario:
    return SCENARIOS[name].with_(ring_time=0.0)


CASES: dict[str, Case] = {
    "ami-originate-human.txt": Case("agi-session-human-nokeypress.txt", _answered("human")),
    "ami-originate-human-keypress.txt": Case(
        "agi-session-human-keypress.txt",
        # the rig's SendDTMF(1) keys as the AGI side hears them: at their DTMFEnd, 4.154 and 5.811 s,
        # counted from the GET DATA prompt (2.411 s); speed 4 keeps the person's loop and the AGI
        # session in step for the 0.5 s margin the end of the call has within the loop's Wait(1.2)
        _answered("human_keypress", Callee(keys=(KeyPress("1", 1.74, prompt=1), KeyPress("1", 3.40, prompt=1)))),
        speed=4.0),
    "ami-originate-human-no-media.txt": Case("agi-session-human-no-media-amd-notsure.txt",
                                             _answered("human_no_media", Callee(kind="no_media"))),
    "ami-originate-machine.txt": Case("agi-session-machine.txt", _answered("machine", Callee(kind="machine"))),
    "ami-originate-machine-waitforsilence.txt": Case("agi-session-machine-waitforsilence.txt",
                                                     _answered("machine", Callee(kind="machine"))),
    "ami-originate-fax-cng.txt": Case("agi-session-fax-detected.txt", _answered("fax", Callee(kind="fax"))),
    "ami-originate-fax-cng-no-faxdetect.txt": Case("agi-session-fax-cng-amd-only.txt",
                                                   _answered("fax", Callee(kind="fax"))),
    "ami-originate-hangup-during-agi.txt": Case("agi-session-hangup-while-idle.txt",
                                                _answered("hangup_early", HANGS_UP_AT_6S)),
    "ami-originate-hangup-during-agi-command.txt": Case("agi-session-hangup-during-command.txt",
                                                        _answered("hangup_early", HANGS_UP_AT_6S)),
    "ami-originate-hangup-agiexitonhangup.txt": Case("agi-session-hangup-agiexitonhangup.txt",
                                                     _answered("hangup_early", HANGS_UP_AT_6S)),
    "ami-originate-hangup-handler.txt": Case("agi-session-hangup-handler.txt",
                                             _answered("hangup_early", HANGS_UP_AT_6S)),
    "ami-originate-playback-getdata-invalidkey.txt": Case(
        "agi-session-playback-getdata-invalidkey.txt",
        _answered("human_wrong_key", Callee(keys=(KeyPress("7", 2.2, prompt=0), KeyPress("9", 2.0, prompt=2))))),
    "ami-originate-queue-bridged.txt": Case(
        "agi-session-queue-bridged.txt", _answered("human"),
        [QueueConfig("sales", members=[SALES_MEMBER], talk_seconds=(2.015, 2.015)),
         QueueConfig("empty", joinempty=False)]),
    "ami-originate-queue-timeout.txt": Case(
        "agi-session-queue-timeout.txt", _answered("human"),
        [QueueConfig("sales", members=[Member("Local/agent1@agents/n", "Agent One", answers=False)])],
        prior_calls=1),
    "ami-originate-queue-joinempty.txt": Case(
        "agi-session-queue-joinempty.txt", _answered("human"),
        [QueueConfig("sales", members=[SALES_MEMBER]), QueueConfig("empty", joinempty=False)]),
    "ami-originate-queue-caller-hangup.txt": Case(
        "agi-session-queue-caller-hangup.txt", _answered("abandon"),
        [QueueConfig("sales", members=[Member("Local/agent1@agents/n", "Agent One", answers=False)])],
        prior_calls=1, prior_abandoned=1),
    "ami-originate-busy.txt": Case(None, _failed("busy")),
    "ami-originate-congestion.txt": Case(None, _failed("congestion")),
    "ami-originate-noanswer-timeout.txt": Case(None, _failed("no_answer")),
    "ami-originate-unallocated.txt": Case(None, _failed("unallocated")),
    "ami-originate-rejected.txt": Case(None, _failed("rejected")),
    "ami-originate-numberchanged.txt": Case(None, _failed("number_changed")),
    "ami-originate-nonexistent-exten.txt": Case(None, _failed("no_exten")),
    "ami-originate-nonexistent-tech.txt": Case(None, _failed("no_channel")),
    "ami-originate-busy-response-first.txt": Case(None, _failed("busy"), response_first=True),
    "ami-originate-rejected-response-first.txt": Case(None, _failed("rejected"), response_first=True),
}

# How closely each trace is reproduced (the strongest comparison that holds; see the docstring)
LEVEL = {
    "ami-originate-busy.txt": "full",
    "ami-originate-human.txt": "full",
    "ami-originate-congestion.txt": "full",
    "ami-originate-hangup-during-agi-command.txt": "full",
    "ami-originate-machine.txt": "full",
    "ami-originate-noanswer-timeout.txt": "full",
    "ami-originate-nonexistent-tech.txt": "full",
    "ami-originate-numberchanged.txt": "full",
    "ami-originate-busy-response-first.txt": "full",
    "ami-originate-rejected-response-first.txt": "full",
    "ami-originate-fax-cng-no-faxdetect.txt": "streams",
    "ami-originate-fax-cng.txt": "streams",
    "ami-originate-hangup-agiexitonhangup.txt": "streams",
    "ami-originate-hangup-during-agi.txt": "streams",
    "ami-originate-hangup-handler.txt": "streams",
    "ami-originate-human-no-media.txt": "streams",
    "ami-originate-machine-waitforsilence.txt": "streams",
    "ami-originate-nonexistent-exten.txt": "streams",
    "ami-originate-playback-getdata-invalidkey.txt": "streams",
    "ami-originate-queue-joinempty.txt": "streams",
    "ami-originate-queue-bridged.txt": "streams",
    "ami-originate-queue-timeout.txt": "streams",
    "ami-originate-queue-caller-hangup.txt": "streams",
    "ami-originate-rejected.txt": "streams",
    "ami-originate-unallocated.txt": "streams",
    "ami-originate-human-keypress.txt": "streams-dtmf",
}
def test_every_originate_trace_has_a_case():
    assert sorted(p.name for p in TRACES.glob("ami-originate-*.txt")) == sorted(CASES)


def _callee_media(dialplan: Dialplan, exten: str) -> str:
    """The first Playback of the rig's [callee] extension: what the far end's leg plays."""
    for step in dialplan.contexts.get("callee", {}).get(exten, []):
        if step.app == "Playback":
            return step.args.replace("${SND}", "sounds")
    return ""


class ScriptedAgi:
    """A FastAGI server replaying the '>' lines of each connection of an agi-session trace, in turn."""

    def __init__(self, connections) -> None:
        self.connections = list(connections)
        self.received: list[list[str]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        entries = self.connections[len(self.received)] if len(self.received) < len(self.connections) else []
        got: list[str] = []
        self.received.append(got)
        eof = False
        try:
            for _t, d, text in entries:
                if eof:
                    break
                if d == "<":
                    data = await asyncio.wait_for(reader.readline(), 10)
                    if not data:
                        eof = True
                        continue
                    got.append(data.decode("utf-8", "surrogateescape").removesuffix("\n"))
                elif d == ">":
                    writer.write(text.encode() + b"\n")
                    await writer.drain()
                elif d == "#" and "half-closes its write side" in text:
                    writer.write_eof()
            while not eof:
                data = await asyncio.wait_for(reader.readline(), 10)
                if not data:
                    break
                got.append(data.decode("utf-8", "surrogateescape").removesuffix("\n"))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


# The capture rig's far end as the response-first traces show it (their header: "[callee-plan] busy ->
# Busy(); rejected -> Hangup(21)"): the ;2 half's Exten turns from the number into busy / rejected.
CALLEE_PLAN = """\
[callee-plan]
exten => {number},1,Goto({exten},1)
exten => busy,1,Busy()
exten => rejected,1,Hangup(21)
"""


async def _ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **headers: str) -> list[str]:
    """Send one action, return the lines of the reply."""
    writer.write("".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
    lines = []
    while (line := (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\r\n")) or not lines:
        if line:
            lines.append(line)
    return lines


async def run_response_first_trace(name: str) -> tuple[list[str], list[str], Simulator]:
    """A driver session originates the traced call; a second session, logged in as the capture
    was, records what it is sent. The trace's own lines come after that session's login."""
    case = CASES[name]
    trace = parse(TRACES / name)
    body = [t for _s, d, t in trace.lines if d == "<"]
    response = dict(line.split(": ", 1) for line in body[:body.index("")])
    assert response["Event"] == "OriginateResponse"
    number = response["Channel"].split("/", 1)[1].split("@")[0]
    context = response["Channel"].split("@", 1)[1]
    sim = Simulator(ami_port=0, ami_user="dialer", ami_secret="dialer-secret", speed=case.speed,
                    plan=ScenarioPlan.table({number: case.scenario}),
                    dialplan=Dialplan.parse(CALLEE_PLAN.format(number=number, exten=case.scenario.name)))
    sim.faults.response_first = 1.0
    await sim.start()
    originated = False
    login = ["Action: Login", "Username: dialer", "Secret: dialer-secret", "Events: call", ""]
    logged_in = ["Response: Success", "Message: Authentication accepted", ""]
    entries = ([(0.0, "<", BANNER_LINE)] + [(0.0, ">", x) for x in login] + [(0.0, "<", x) for x in logged_in]
               + [(0.0, "<", x) for x in body])
    try:
        capture = AmiReplayer(entries, timeout=10, quiet=lambda: originated and sim.idle)
        capturing = asyncio.ensure_future(capture.run("127.0.0.1", sim.ami_port))
        while len(capture.received) < 1 + len(logged_in) - 1 and not capturing.done():
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        try:
            await reader.readline()  # banner
            assert (await _ami(reader, writer, Action="Login", Username="dialer", Secret="dialer-secret",
                               Events="off"))[0] == "Response: Success"
            reply = await _ami(reader, writer, Action="Originate", ActionID=response["ActionID"],
                               Channel=response["Channel"], Context=response["Context"], Exten=response["Exten"],
                               Priority="1", Timeout="30000", Async="true",
                               CallerID=f'"{response["CallerIDName"]}" <{response["CallerIDNum"]}>',
                               ChannelId=response["Uniqueid"])
            assert reply[0] == "Response: Success"
            originated = True
            got = await capturing
        finally:
            writer.close()
        assert capture.bad_endings == []
        assert context == "callee-plan"
        return got, capture.expected(), sim
    finally:
        await sim.stop()


async def run_trace(name: str) -> tuple[list[str], list[str], Simulator]:
    case = CASES[name]
    if case.response_first:
        return await run_response_first_trace(name)
    path = TRACES / name
    trace = parse(path)
    dialplan = Dialplan.from_trace_header(trace.header_lines)
    channel = re.search(r"Channel=(\S+)", trace.header.get("Originate", "")).group(1)  # type: ignore[union-attr]
    number = channel.split("/", 1)[1].split("@")[0]
    scenario = case.scenario.with_(media=_callee_media(dialplan, number))
    agi = ScriptedAgi(parse(TRACES / case.agi).connections if case.agi else [])
    agi_port = await agi.start()
    sim = Simulator(ami_port=0, ami_user="dialer", ami_secret="dialer-secret", speed=case.speed,
                    plan=ScenarioPlan.table({number: scenario}), dialplan=dialplan,
                    agi_connect=("127.0.0.1", agi_port), queues=case.queues or None, sounds=RIG_SOUNDS)
    await sim.start()
    if case.prior_calls or case.prior_abandoned:
        q = sim.queues.state()["sales"]
        q.completed = q.completed_in_sl = case.prior_calls
        q.abandoned = case.prior_abandoned
        q.talktime = 2  # the queue-bridged call just before: 2 s with the agent
        for m in q.members:
            m.calls_taken, m.last_call = case.prior_calls, int(sim.clock.now()) - 10
    try:
        replay = AmiReplayer(ami_connections(path)[0], timeout=60 / case.speed + 5,
                             quiet=lambda: sim.idle)
        got = await replay.run("127.0.0.1", sim.ami_port)
        assert replay.bad_endings == []
        return got, replay.expected(), sim
    finally:
        await sim.stop()
        await agi.close()


def test_every_originate_trace_has_a_level():
    assert sorted(LEVEL) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_originate_trace_is_reproduced(name: str):
    got, expected, sim = await run_trace(name)
    level = LEVEL[name]
    if level == "full":
        assert normalise(got) == normalise(expected)
    elif level == "streams":
        assert streams(got) == streams(expected)
    else:
        assert level == "streams-dtmf"
        assert streams(got, dtmf_apart=True) == streams(expected, dtmf_apart=True)
    # the simulator's own record of the call agrees with the trace
    rec = next(iter(sim.record))
    observed = parse(TRACES / name).header.get("Observed", "")
    reason = re.search(r"Reason=(\d+)", observed)
    assert reason and rec.reason == int(reason.group(1))
