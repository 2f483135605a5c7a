"""The simulator's AMI server: login rules, panoramisk compatibility, the AMI action transcripts."""

from __future__ import annotations

import asyncio
import time

import pytest
from panoramisk import Manager

from agi.sim.queues import Member, QueueConfig
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator
from tests.conftest import TRACES
from tests.sim_ami_support import AmiReplayer, ami_connections, normalise
from tests.waiting import until

RIG_USER, RIG_SECRET = "dialer", "dialer-secret"  # manager.conf of the capture rig


async def _sim(**kw) -> Simulator:
    kw.setdefault("plan", ScenarioPlan.table({}, default="busy"))
    kw.setdefault("speed", 50.0)
    sim = Simulator(ami_port=0, ami_user=RIG_USER, ami_secret=RIG_SECRET, agi_port=1, **kw)
    return await sim.start()


async def _raw(sim: Simulator) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
    assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
    return reader, writer


async def _message(reader: asyncio.StreamReader) -> dict[str, str]:
    out: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line, "connection closed"
        assert line.endswith(b"\r\n")
        if line == b"\r\n":
            if out:
                return out
            continue
        k, _, v = line.decode().rstrip("\r\n").partition(": ")
        out[k] = v


async def test_action_before_login_is_permission_denied():
    sim = await _sim()
    try:
        reader, writer = await _raw(sim)
        writer.write(b"Action: Ping\r\nActionID: p0\r\n\r\n")
        assert await _message(reader) == {"Response": "Error", "ActionID": "p0", "Message": "Permission denied"}
        writer.close()
    finally:
        await sim.stop()


@pytest.mark.parametrize("user,secret", [(RIG_USER, "wrong-secret"), ("nosuchuser", RIG_SECRET)])
async def test_bad_login_fails_after_a_second_then_asterisk_closes(user: str, secret: str):
    sim = await _sim()
    try:
        reader, writer = await _raw(sim)
        start = time.monotonic()
        writer.write(f"Action: Login\r\nActionID: l1\r\nUsername: {user}\r\nSecret: {secret}\r\n\r\n".encode())
        reply = await _message(reader)
        waited = time.monotonic() - start
        assert reply == {"Response": "Error", "ActionID": "l1", "Message": "Authentication failed"}
        assert waited >= 0.9  # Asterisk answers a failed login after one second
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then closes the socket
        writer.close()
    finally:
        await sim.stop()


async def test_refuse_logins_fault_refuses_even_the_right_secret():
    sim = await _sim()
    sim.faults.refuse_logins = True
    try:
        reader, writer = await _raw(sim)
        writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\n\r\n".encode())
        assert (await _message(reader))["Message"] == "Authentication failed"
        writer.close()
    finally:
        await sim.stop()


async def _manager(sim: Simulator, secret: str = RIG_SECRET) -> tuple[Manager, asyncio.Future]:
    booted: asyncio.Future = asyncio.get_running_loop().create_future()
    manager = Manager(host="127.0.0.1", port=sim.ami_port, username=RIG_USER, secret=secret,
                      ping_delay=60, reconnect_timeout=60, loop=asyncio.get_running_loop())

    def on_booted(_manager, event) -> None:
        if not booted.done():
            booted.set_result(event)

    manager.register_event("FullyBooted", on_booted)
    await manager.connect()
    return manager, booted


async def test_panoramisk_logs_in_and_gets_fully_booted():
    sim = await _sim()
    try:
        manager, booted = await _manager(sim)
        event = await asyncio.wait_for(booted, 5)
        assert event["Status"] == "Fully Booted"
        assert event["Privilege"] == "system,all"
        pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert pong["Ping"] == "Pong"
        manager.close()
    finally:
        await sim.stop()


@pytest.mark.parametrize(
    "number,scenario,response,reason,cause",
    [
        ("+15550000017", "busy", "Failure", "5", "17"),
        ("+15550000034", "congestion", "Failure", "8", "34"),
        ("+15550000001", "unallocated", "Failure", "0", "1"),
        ("+15550000021", "rejected", "Failure", "0", "21"),
        ("+15550000022", "number_changed", "Failure", "0", "22"),
        ("+15550000019", "no_answer", "Failure", "3", "19"),
        ("+15550000000", "no_channel", "Failure", "0", None),
    ],
)
async def test_panoramisk_originate_resolves_with_the_originate_response(number, scenario, response, reason, cause):
    sim = await _sim(plan=ScenarioPlan.table({number: scenario}))
    hangups: list = []
    try:
        manager, booted = await _manager(sim)
        await asyncio.wait_for(booted, 5)
        manager.register_event("Hangup", lambda _m, e: hangups.append(e))
        replies = await asyncio.wait_for(manager.send_action({
            "Action": "Originate", "Channel": f"PJSIP/{number}@trunk", "Context": "dialer-outbound",
            "Exten": "s", "Priority": "1", "Timeout": "3000", "CallerID": '"Acme" <15550001111>',
            "Async": "true", "ChannelId": "attempt-1", "Variable": "__ATTEMPT_ID=attempt-1",
        }), 10)
        queued, final = replies[0], replies[-1]
        assert queued["Message"] == "Originate successfully queued"
        assert final["Event"] == "OriginateResponse"
        assert (final["Response"], final["Reason"], final["Uniqueid"]) == (response, reason, "attempt-1")
        assert final["Channel"] == f"PJSIP/{number}@trunk"  # on Failure: the dial string as sent
        await sim.wait_idle(5)
        await asyncio.sleep(0.05)
        if cause is None:
            assert hangups == []  # no channel, no Hangup (docs/outcomes.md)
        else:
            assert [(h["Uniqueid"], h["Cause"]) for h in hangups] == [("attempt-1", cause)]
        rec = sim.record["attempt-1"]
        assert (rec.scenario, rec.reason, rec.number) == (scenario, int(reason), number)
        manager.close()
    finally:
        await sim.stop()


async def test_panoramisk_originate_of_an_answered_call_gives_the_real_channel_name():
    async def agi(reader, writer):  # a FastAGI server that hangs up at once
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(b"HANGUP\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(agi, "127.0.0.1", 0)
    sim = Simulator(ami_port=0, ami_user=RIG_USER, ami_secret=RIG_SECRET, speed=50,
                    agi_port=server.sockets[0].getsockname()[1],
                    plan=ScenarioPlan.table({"+15557654321": "human"}))
    await sim.start()
    try:
        manager, booted = await _manager(sim)
        await asyncio.wait_for(booted, 5)
        replies = await asyncio.wait_for(manager.send_action({
            "Action": "Originate", "Channel": "PJSIP/+15557654321@trunk", "Context": "dialer-outbound",
            "Exten": "s", "Priority": "1", "Async": "true", "ChannelId": "attempt-2"}), 10)
        final = replies[-1]
        assert (final["Response"], final["Reason"]) == ("Success", "4")
        assert final["Channel"].startswith("PJSIP/trunk-")
        assert await sim.wait_idle(10)
        rec = sim.record["attempt-2"]
        assert rec.agi_scripts == ["outbound?campaign=", "hangup?campaign="]
        assert rec.amd == ("HUMAN", "HUMAN-800-800")
        manager.close()
    finally:
        await sim.stop()
        server.close()


async def test_panoramisk_wrong_secret_is_refused():
    sim = await _sim()
    try:
        manager, booted = await _manager(sim, secret="wrong-secret")
        await asyncio.sleep(1.3)
        assert not manager.authenticated
        assert not booted.done()
        manager.close()
    finally:
        await sim.stop()


async def test_login_ping_badsecret_transcript_is_reproduced():
    """ami-login-ping-badsecret.txt, connection by connection: same lines, same order."""
    sim = await _sim()
    try:
        for entries in ami_connections(TRACES / "ami-login-ping-badsecret.txt"):
            replay = AmiReplayer(entries)
            got = await replay.run("127.0.0.1", sim.ami_port)
            assert normalise(got) == normalise(replay.expected())
            assert replay.eof  # Asterisk closed the socket each time
            assert replay.bad_endings == []
    finally:
        await sim.stop()


def until_soon(cond):
    """The queue's state, polled closely (its moments are short at the simulator's speed)."""
    return until(cond, 10.0, "the queue to get there", every=0.01)


def _rig_queues() -> list[QueueConfig]:
    # queues.conf of the capture rig: sales with one static member, empty with none (joinempty=no)
    return [QueueConfig("sales", members=[Member("Local/agent1@agents/n", "Agent One")]),
            QueueConfig("empty", joinempty=False)]


async def test_queue_actions_before_and_after_pause_match_the_transcript():
    """ami-queuesummary.txt (a), (c) and the error cases, on an idle queue with the rig's statistics."""
    trace = ami_connections(TRACES / "ami-queuesummary.txt")[0]
    sim = await _sim(queues=_rig_queues())
    state = sim.queues.state()
    sales = state["sales"]
    # statistics of the capture rig's earlier calls (the transcript's header says so)
    sales.completed, sales.abandoned, sales.talktime, sales.completed_in_sl = 1, 2, 2, 1
    member = sales.members[0]
    member.calls_taken, member.last_call, member.login_time = 1, 1795304529, 1795304518

    # keep only (a), (c) and the error cases: (b) and (d) need calls up (see test_sim_e2e)
    keep, skip = [], False
    for t, d, text in trace:
        if d == "#":
            skip = text.startswith("(b)") or text.startswith("(d)")
            continue
        if not skip:
            keep.append((t, d, text))

    async def before_send(pending: list[str]) -> None:
        if "ActionID: pause-1" in pending:  # (c) happens after (b) and (d) added a call each
            sales.completed, sales.talktime, sales.completed_in_sl = 2, 5, 2
            sales.abandoned = 3
            member.calls_taken, member.last_call = 2, 1795304643

    try:
        replay = AmiReplayer(keep)
        got = await replay.run("127.0.0.1", sim.ami_port, before_send=before_send)
        assert normalise(got) == normalise(replay.expected())
    finally:
        await sim.stop()


async def test_core_show_channels_with_no_calls_matches_the_transcript():
    trace = ami_connections(TRACES / "ami-coreshowchannels.txt")[0]
    keep, skip = [], False
    for t, d, text in trace:
        if d == "#":
            skip = text.startswith("(b)") or text.startswith("(d)")
            continue
        if not skip:
            keep.append((t, d, text))
    sim = await _sim()
    try:
        replay = AmiReplayer(keep)
        got = await replay.run("127.0.0.1", sim.ami_port)
        assert normalise(got) == normalise(replay.expected())
    finally:
        await sim.stop()


async def test_unknown_action_and_events_off_session_gets_no_events():
    sim = await _sim(plan=ScenarioPlan.table({"+1": "busy"}))
    try:
        reader, writer = await _raw(sim)
        writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\nEvents: off\r\n\r\n".encode())
        assert (await _message(reader))["Message"] == "Authentication accepted"
        writer.write(b"Action: Originate\r\nActionID: o1\r\nChannel: PJSIP/+1@trunk\r\nExten: s\r\n"
                     b"Context: dialer-outbound\r\nAsync: true\r\n\r\n")
        assert (await _message(reader))["Message"] == "Originate successfully queued"
        assert await sim.wait_idle(5)
        writer.write(b"Action: Frobnicate\r\n\r\n")
        msg = await _message(reader)  # no event came before the reply: Events: off
        assert msg == {"Response": "Error", "Message": "Invalid/unknown command: Frobnicate. "
                       "Use Action: ListCommands to show available commands."}
        writer.close()
    finally:
        await sim.stop()


async def test_queue_summary_transcript_with_calls_in_the_queue():
    """ami-queuesummary.txt in full: (b) and (d) with real calls through the simulator, as on the rig
    (helper calls Local/human@callee -> AMD -> FastAGI -> EXEC Queue sales,,,,20 / ,,,,8)."""
    from agi.sim.callee import Callee
    from agi.sim.dialplan import Dialplan
    from agi.sim.scenarios import Scenario

    queue_args = {"b": "sales,,,,20", "d": "sales,,,,8"}
    stage = {"now": "b"}

    async def agi(reader, writer):  # the rig's FastAGI script: straight into the queue, then hang up
        while (await reader.readline()) not in (b"\n", b""):
            pass
        if stage["now"] not in queue_args:
            writer.close()
            return
        writer.write(f"EXEC Queue {queue_args[stage['now']]}\n".encode())
        await writer.drain()
        await reader.readline()
        writer.write(b"HANGUP\n")
        await writer.drain()
        await reader.read()
        writer.close()

    agi_server = await asyncio.start_server(agi, "127.0.0.1", 0)
    rig = Dialplan.parse("[dialer]\nexten => s,1,AMD()\n same => n,AGI(agi://127.0.0.1:4573/outbound)\n"
                         " same => n,Hangup()\n")
    configs = _rig_queues()
    configs[0].talk_seconds = (14.3, 14.3)  # (b): ~4.3 s speech + 10 s silence
    speed = 10.0
    sim = await _sim(queues=configs, speed=speed, dialplan=rig, agi_connect=("127.0.0.1", agi_server.sockets[0].getsockname()[1]),
                     plan=ScenarioPlan.table({"human": Scenario("human", ring_time=0.0, callee=Callee())}))
    sales = sim.queues.state()["sales"]
    sales.completed, sales.abandoned, sales.talktime, sales.completed_in_sl = 1, 2, 2, 1
    member = sales.members[0]
    member.calls_taken, member.last_call, member.login_time = 1, 1795304529, 1795304518
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)  # the helper connection
    writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\nEvents: off\r\n\r\n".encode())

    def originate(channel_id: str) -> None:
        writer.write(f"Action: Originate\r\nChannel: Local/human@callee\r\nContext: dialer\r\nExten: s\r\n"
                     f"Priority: 1\r\nAsync: true\r\nChannelId: {channel_id}\r\n"
                     f"CallerID: \"Acme Campaign\" <15550001111>\r\n\r\n".encode())

    async def before_send(pending: list[str]) -> None:
        if "ActionID: qs-b-all" in pending:  # (b): bridged to the member ~1.5 s ago
            stage["now"] = "b"
            originate("68847a01-a67e-4127-9a0b-cedbd51ccc3c")
            await until_soon(lambda: member.busy)
            await asyncio.sleep(1.5 / speed)
        elif "ActionID: qs-d-all" in pending:  # (d): a caller waits ~2 s, the member rings
            await until_soon(lambda: not member.busy and not sales.entries)
            member.answers = False
            stage["now"] = "d"
            originate("2b7964ed-ff99-49ea-a667-6ad59e504919")
            await until_soon(lambda: bool(sales.entries))
            joined = sales.entries[0].joined
            await until_soon(lambda: sim.clock.now() - joined >= 2.3)
        elif "ActionID: pause-1" in pending:  # (c): after (d) timed out
            await until_soon(lambda: not sales.entries and not member.ringing)

    try:
        trace = ami_connections(TRACES / "ami-queuesummary.txt")[0]
        replay = AmiReplayer(trace)
        got = await replay.run("127.0.0.1", sim.ami_port, before_send=before_send)
        assert normalise(got) == normalise(replay.expected())
        writer.close()
    finally:
        await sim.stop()
        agi_server.close()


async def test_message_without_action_is_an_error_and_the_session_goes_on():
    sim = await _sim()
    try:
        reader, writer = await _raw(sim)
        writer.write(b"ActionID: x1\r\nFoo: bar\r\n\r\nAction: Ping\r\nActionID: p1\r\n\r\n")
        assert await _message(reader) == {"Response": "Error", "ActionID": "x1", "Message": "Missing action in request"}
        assert (await _message(reader))["Message"] == "Permission denied"
        writer.close()
    finally:
        await sim.stop()


# The capture rig's dialplan for the helper calls of ami-coreshowchannels.txt: [callee] and [dialer]
# as in the queue traces' headers; [agents] agent1-long as the header describes it ("answers, ~4.3 s
# speech + 10 s silence"), agent1-noanswer as in ami-originate-queue-timeout.txt
CSC_RIG = """
[callee]
exten => human,1,Answer()
 same => n,Playback(${SND}/human-hello)
 same => n,Hangup()
[dialer]
exten => s,1,NoOp(campaign=${CAMPAIGN_ID} contact=${CONTACT_ID} mode=${AGI_MODE})
 same => n,ExecIf($["${FAXDETECT}" != "no"]?Set(FAXOPT(faxdetect)=yes))
 same => n,AMD()
 same => n,NoOp(AMDSTATUS=${AMDSTATUS} AMDCAUSE=${AMDCAUSE})
 same => n,AGI(agi://127.0.0.1:4573/outbound?campaign=1&mode=${AGI_MODE},${AMDSTATUS},${AMDCAUSE})
 same => n,NoOp(AGISTATUS=${AGISTATUS} CAMPAIGN_RESULT=${CAMPAIGN_RESULT})
 same => n,Hangup()
[agents]
exten => agent1,1,Goto(agent1-${AGENT1_MODE},1)
exten => agent1-long,1,Answer()
 same => n,Playback(${SND}/agent)
 same => n,Wait(10)
 same => n,Hangup()
exten => agent1-noanswer,1,Ringing()
 same => n,Wait(120)
 same => n,Hangup()
"""


def _channel_lists_sorted(lines: list[str]) -> list[str]:
    """Normalised messages with each run of CoreShowChannel events in a fixed order (by channel name
    without its sequence number): Asterisk lists them in the order of its hash container of channel
    snapshots, keyed by names that change from run to run, so that order says nothing."""
    import re

    from tests.sim_ami_support import messages

    def key(msg: list[str]) -> str:
        name = next((x for x in msg if x.startswith("Channel: ")), "")
        return re.sub(r"-[0-9a-f]{8}(?=;|$)", "", name)

    out: list[list[str]] = []
    run: list[list[str]] = []
    for msg in messages(lines):
        if msg[0] == "Event: CoreShowChannel":
            run.append(msg)
            continue
        out += sorted(run, key=key) + [msg]
        run = []
    out += sorted(run, key=key)
    return [" | ".join(m) for m in messages(normalise([x for m in out for x in m + [""]]))]


async def test_core_show_channels_with_queue_calls_matches_the_transcript():
    """ami-coreshowchannels.txt (a), (b) and (d) with real calls through the simulator, as on the rig:
    (b) the caller bridged to the member's Local channel, (d) the caller waiting while it rings."""
    from agi.sim.callee import Callee
    from agi.sim.dialplan import Dialplan
    from agi.sim.scenarios import Scenario

    queue_args = {"b": "sales,,,,20", "d": "sales,,,,8"}
    stage = {"now": "b"}

    async def agi(reader, writer):  # the rig's FastAGI script: straight into the queue, then hang up
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(f"EXEC Queue {queue_args[stage['now']]}\n".encode())
        await writer.drain()
        await reader.readline()
        writer.write(b"HANGUP\n")
        await writer.drain()
        await reader.readline()  # its reply: the script ends, the channel goes
        writer.close()

    agi_server = await asyncio.start_server(agi, "127.0.0.1", 0)
    configs = _rig_queues()
    member = configs[0].members[0]
    member.mode = "long"
    speed = 10.0
    sim = await _sim(queues=configs, speed=speed, dialplan=Dialplan.parse(CSC_RIG),
                     agi_connect=("127.0.0.1", agi_server.sockets[0].getsockname()[1]),
                     sounds={"human-hello": 30.0, "agent": 4.343},
                     plan=ScenarioPlan.table({"human": Scenario("human", ring_time=0.0, callee=Callee())}))
    sales = sim.queues.state()["sales"]
    member = sales.members[0]  # the simulator's own copy of the configured member, on its calls
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)  # the helper connection
    writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\nEvents: off\r\n\r\n".encode())

    def originate(channel_id: str) -> None:
        writer.write(f"Action: Originate\r\nChannel: Local/human@callee\r\nContext: dialer\r\nExten: s\r\n"
                     f"Priority: 1\r\nAsync: true\r\nChannelId: {channel_id}\r\n"
                     f"CallerID: \"Acme Campaign\" <15550001111>\r\n\r\n".encode())

    async def before_send(pending: list[str]) -> None:
        if "ActionID: csc-b" in pending:  # (b): bridged to the member for ~1.5 s
            stage["now"] = "b"
            originate("68847a01-a67e-4127-9a0b-cedbd51ccc3c")
            await until_soon(lambda: member.busy)
            await asyncio.sleep(1.5 / speed)
        elif "ActionID: csc-d" in pending:  # (d): the caller waits ~2 s, the member rings
            await until_soon(lambda: not member.busy and not sales.entries and len(sim.channels) == 0)
            member.answers, member.mode = False, ""
            stage["now"] = "d"
            originate("2b7964ed-ff99-49ea-a667-6ad59e504919")
            await until_soon(lambda: bool(sales.entries) and member.ringing)
            await asyncio.sleep(2.3 / speed)

    try:
        replay = AmiReplayer(ami_connections(TRACES / "ami-coreshowchannels.txt")[0])
        got = await replay.run("127.0.0.1", sim.ami_port, before_send=before_send)
        assert _channel_lists_sorted(got) == _channel_lists_sorted(replay.expected())
        writer.close()
    finally:
        await sim.stop()
        agi_server.close()


# ---- read classes and event masks (manager.c: readperm & send_events) ------------------------------


async def _login_and_ping(sim: Simulator, events: str | None = None) -> list[dict[str, str]]:
    """Log in (with ``Events: <events>`` if given), Ping; the messages up to the Ping reply."""
    reader, writer = await _raw(sim)
    extra = f"Events: {events}\r\n" if events is not None else ""
    writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\n{extra}\r\n".encode())
    writer.write(b"Action: Ping\r\nActionID: after-login\r\n\r\n")
    seen = []
    while (msg := await _message(reader)).get("ActionID") != "after-login":
        seen.append(msg)
    writer.close()
    return seen


@pytest.mark.parametrize(
    "read, events, booted",
    [
        ("all", None, True),
        ("system,call,agent", None, True),  # dialplan/README.md's AMI user
        ("call,agent", None, False),  # without 'system' a user never sees FullyBooted
        ("all", "call,agent", False),  # nor a session whose event mask leaves it out
        ("all", "off", False),
    ],
)
async def test_fully_booted_comes_only_to_a_session_that_may_read_system_events(read, events, booted):
    sim = await _sim(ami_read=read)
    try:
        seen = await _login_and_ping(sim, events)
        assert seen[0] == {"Response": "Success", "Message": "Authentication accepted"}
        assert any(m.get("Event") == "FullyBooted" for m in seen) is booted
        if booted:
            assert seen[1]["Event"] == "FullyBooted"  # right after the Login reply
    finally:
        await sim.stop()


async def _events_of_a_busy_call(sim: Simulator, events: str | None = None, mask: str | None = None) -> list[dict]:
    reader, writer = await _raw(sim)
    extra = f"Events: {events}\r\n" if events is not None else ""
    writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\n{extra}\r\n".encode())
    assert (await _message(reader))["Response"] == "Success"
    seen = []
    if mask is not None:
        writer.write(f"Action: Events\r\nActionID: mask\r\nEventMask: {mask}\r\n\r\n".encode())
        while (msg := await _message(reader)).get("ActionID") != "mask":
            pass  # what came before the new mask
        seen.append(msg)
    writer.write(b"Action: Originate\r\nActionID: o1\r\nChannel: Local/+1@callee\r\nExten: s\r\n"
                 b"Context: dialer-outbound\r\nAsync: true\r\nChannelId: call-1\r\n\r\n")
    while not len(sim.record):
        await asyncio.sleep(0.01)
    assert await sim.wait_idle(5)
    writer.write(b"Action: Ping\r\nActionID: done\r\n\r\n")
    while (msg := await _message(reader)).get("ActionID") != "done":
        seen.append(msg)
    writer.close()
    return seen


@pytest.mark.parametrize(
    "read, events, mask, classes",
    [
        ("all", None, None, {"system", "security", "call", "dialplan"}),
        ("call,agent", None, None, {"call"}),  # a user without dialplan/system/security reads
        ("all", "call", None, {"call"}),  # Login's Events: is the session's event mask
        ("all", None, "call", {"call"}),  # so is Action: Events (from its reply on)
        ("call,agent", "dialplan", None, set()),  # both must allow a class
    ],
)
async def test_events_go_out_only_in_classes_the_user_may_read_and_the_session_asked_for(read, events, mask, classes):
    sim = await _sim(ami_read=read, plan=ScenarioPlan.table({"+1": "busy"}))
    try:
        seen = await _events_of_a_busy_call(sim, events, mask)
        got = {c for m in seen if "Event" in m for c in m["Privilege"].split(",")} - {"all"}
        assert got == classes
        if mask is not None:
            assert {"Response": "Success", "ActionID": "mask", "Events": "On"} in seen
    finally:
        await sim.stop()


# ---- response first: a loaded Asterisk's order (agi.sim.faults) -------------------------------------

FAST_FAILURES = dict(human=0.0, machine=0.0, fax=0.0, notsure=0.0, no_answer=0.0, no_channel=0.0, busy=0.3,
                     unallocated=0.2, rejected=0.2, number_changed=0.1, congestion=0.2)


async def _originate_all(sim: Simulator, dials: list[str]) -> list[dict]:
    """Originate every dial string at once on one session (Events on); every message received."""
    reader, writer = await _raw(sim)
    writer.write(f"Action: Login\r\nUsername: {RIG_USER}\r\nSecret: {RIG_SECRET}\r\n\r\n".encode())
    for i, dial in enumerate(dials):
        writer.write(f"Action: Originate\r\nActionID: orig-{i}\r\nChannel: {dial}\r\nExten: s\r\n"
                     f"Context: dialer-outbound\r\nAsync: true\r\nChannelId: call-{i}\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(0.1)
    assert await sim.wait_idle(10)
    writer.write(b"Action: Ping\r\nActionID: done\r\n\r\n")
    seen = []
    while (msg := await _message(reader)).get("ActionID") != "done":
        seen.append(msg)
    writer.close()
    return seen


def _response_before_channel_events(seen: list[dict], uniqueid: str) -> bool:
    mine = [m for m in seen if "Event" in m and (m.get("Uniqueid") or m.get("DestUniqueid") or
                                                 m.get("LocalOneUniqueid") or "").split(";")[0] == uniqueid]
    return mine[0]["Event"] == "OriginateResponse"


@pytest.mark.parametrize("tech", ["PJSIP/{n}@trunk", "Local/{n}@callee"])
async def test_response_first_share_of_failures_gets_the_response_before_any_channel_event(tech):
    numbers = [f"+1202555{i:04d}" for i in range(60)]
    plan = ScenarioPlan.mix(seed=3, ring_time=(0.0, 0.0), **FAST_FAILURES)
    sim = await _sim(plan=plan)
    sim.faults.response_first, sim.faults.response_first_seed = 0.3, 11
    try:
        seen = await _originate_all(sim, [tech.format(n=n) for n in numbers])
        records = {rec.channel_id: rec for rec in sim.record}
        first = {cid for cid, rec in records.items() if rec.response_first}
        assert 5 <= len(first) <= 35  # about 0.3 of 60, as drawn
        for cid, rec in records.items():
            assert _response_before_channel_events(seen, cid) is rec.response_first, (cid, rec.scenario)
            # the channel events still come, all of them, with their causes
            hangups = [m for m in seen if m.get("Event") == "Hangup" and m["Uniqueid"].split(";")[0] == cid]
            assert len(hangups) == (2 if tech.startswith("Local") else 1)
            assert sorted(int(h["Cause"]) for h in hangups) == sorted(rec.causes.values())
    finally:
        await sim.stop()


async def test_which_calls_go_response_first_is_drawn_from_the_seed_per_number_and_dial():
    numbers = [f"+1202555{i:04d}" for i in range(40)]

    async def drawn(seed: int, order: list[str]) -> set[tuple[str, int]]:
        sim = await _sim(plan=ScenarioPlan.table({}, default="busy"))
        sim.faults.response_first, sim.faults.response_first_seed = 0.5, seed
        try:
            await _originate_all(sim, [f"PJSIP/{n}@trunk" for n in order + numbers[:5]])  # 5 numbers twice
            seen: dict[str, int] = {}
            out = set()
            for rec in sorted(sim.record, key=lambda r: int(r.channel_id.split("-")[1])):
                nth = seen[rec.number] = seen.get(rec.number, -1) + 1
                if rec.response_first:
                    out.add((rec.number, nth))
            return out
        finally:
            await sim.stop()

    one = await drawn(7, numbers)
    assert one == await drawn(7, list(reversed(numbers)))  # the same calls, whatever the order
    assert one != await drawn(8, numbers)
    assert 0 < len(one) < 45


async def test_answered_and_channel_less_calls_are_never_response_first():
    sim = await _sim(plan=ScenarioPlan.table({"+1": "human", "+2": "no_channel"}))
    sim.faults.response_first = 1.0
    try:
        seen = await _originate_all(sim, ["PJSIP/+1@trunk", "PJSIP/+2@trunk"])
        assert not any(rec.response_first for rec in sim.record)
        assert not _response_before_channel_events(seen, "call-0")  # Newchannel first, as ever
    finally:
        await sim.stop()
