"""Behaviour of the simulator's FastAGI client beyond the traces: keys, hang-ups, faults, queues.

Each test plays the FastAGI server over real TCP (an interactive peer below) against ``run_agi`` on a
simulated channel (agi.sim.channels.Channel) at a high clock speed.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from agi.sim.agi_client import run_agi
from agi.sim.callee import Callee, KeyPress
from agi.sim.channels import UP, Channel
from agi.sim.clock import Clock
from agi.sim.queues import Member, QueueConfig, QueueSystem

SPEED = 20.0
ATTEMPT = "11111111-2222-4333-8444-555555555555"


class Peer:
    """An interactive FastAGI server: each accepted connection is queued as (env, reader, writer)."""

    def __init__(self) -> None:
        self.conns: asyncio.Queue = asyncio.Queue()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader, writer) -> None:
        env = {}
        while True:
            line = (await reader.readline()).decode().rstrip("\n")
            if not line:
                break
            key, _, value = line.partition(": ")
            env[key] = value
        await self.conns.put(Conn(env, reader, writer))

    async def next(self) -> Conn:
        return await asyncio.wait_for(self.conns.get(), timeout=10)

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class Conn:
    def __init__(self, env, reader, writer) -> None:
        self.env, self.reader, self.writer = env, reader, writer

    async def line(self) -> str:
        data = await asyncio.wait_for(self.reader.readline(), timeout=10)
        return data.decode().rstrip("\n") if data else "<EOF>"

    async def cmd(self, text: str) -> str:
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()
        return await self.line()

    async def finish(self) -> list[str]:
        """Close our side; what the client sends until it closes."""
        self.writer.write_eof()
        rest = []
        while (line := await self.line()) != "<EOF>":
            rest.append(line)
        self.writer.close()
        return rest


def channel(callee: Callee, clock: Clock, events: list | None = None) -> Channel:
    sink_events = events if events is not None else []
    ch = Channel(name="PJSIP/trunk-00000001", uniqueid=ATTEMPT, linkedid=ATTEMPT, clock=clock,
                 sink=lambda e, f: sink_events.append((e, dict(f))), context="dialer-outbound", exten="s",
                 priority=4, state=UP, callee=callee)
    ch.variables.update({"CAMPAIGN_ID": "7", "ATTEMPT_ID": ATTEMPT, "AMDSTATUS": "HUMAN"})
    ch.inheritable.add("ATTEMPT_ID")
    ch.answered_at = clock.now() - 2.0
    return ch


async def start(callee: Callee, *, events=None, queues=None, server_timeout=10.0, faults=None, **kw):
    clock = Clock(speed=SPEED)
    line = channel(callee, clock, events)
    peer = Peer()
    port = await peer.start()
    task = asyncio.ensure_future(run_agi(
        line, "127.0.0.1", port, "outbound?campaign=7", ["HUMAN", "HUMAN-800-800"], context="dialer-outbound",
        extension="s", priority=4, queues=queues, server_timeout=server_timeout, faults=faults, **kw))
    return line, peer, task


async def test_key_pressed_during_exec_playback_is_lost_and_the_next_one_is_heard():
    line, peer, task = await start(Callee(keys=(KeyPress("5", 1.0, prompt=0), KeyPress("1", 4.5, prompt=0))))
    conn = await peer.next()
    assert await conn.cmd("EXEC Playback dialer/message") == "200 result=0"  # 3 s, the 5 is lost
    assert await conn.cmd("WAIT FOR DIGIT 3000") == "200 result=49"
    assert await conn.finish() == ["HANGUP"]
    result = await task
    assert (result.keys, result.lost_keys, result.status) == (["1"], ["5"], "SUCCESS")
    await peer.close()


async def test_stream_file_returns_the_escape_digit_and_ignores_others():
    line, peer, task = await start(Callee(keys=(KeyPress("2", 1.0, prompt=0), KeyPress("1", 1.0, prompt=1))))
    conn = await peer.next()
    reply = await conn.cmd('STREAM FILE dialer/message "1"')  # the 2 is not an escape digit
    assert reply == "200 result=0 endpos=24000"
    reply = await conn.cmd('STREAM FILE dialer/message "12"')
    m = re.fullmatch(r"200 result=49 endpos=(\d+)", reply)
    assert m and 0 < int(m.group(1)) < 24000
    await conn.finish()
    result = await task
    assert result.keys == ["1"] and result.lost_keys == ["2"]
    await peer.close()


async def test_get_data_stops_at_max_digits_and_times_out_with_partial_digits():
    keys = (KeyPress("1", 0.1, 0), KeyPress("2", 0.6, 0), KeyPress("4", 0.1, 1))
    line, peer, task = await start(Callee(keys=keys))
    conn = await peer.next()
    assert await conn.cmd("GET DATA beep 2000 2") == "200 result=12"
    assert await conn.cmd("GET DATA beep 1000 3") == "200 result=4 (timeout)"
    assert await conn.cmd("GET DATA beep 1000 3") == "200 result= (timeout)"
    await conn.finish()
    await task
    await peer.close()


async def test_person_hanging_up_during_the_message_cuts_the_stream_then_hangup_line():
    events: list = []
    line, peer, task = await start(Callee(hangup_after_prompt=(0, 1.0)), events=events)
    conn = await peer.next()
    reply = await conn.cmd('STREAM FILE dialer/message ""')
    m = re.fullmatch(r"200 result=-1 endpos=(\d+)", reply)
    assert m and 0 < int(m.group(1)) < 24000
    assert await conn.line() == "HANGUP"
    assert await conn.cmd("GET VARIABLE HANGUPCAUSE") == "200 result=1 (16)"
    assert await conn.cmd("ANSWER") == "511 Command Not Permitted on a dead channel or intercept routine"
    assert await conn.finish() == ["HANGUP"]
    result = await task
    assert result.status == "HANGUP" and result.caller_hung_up
    ends = [f for e, f in events if e == "AGIExecEnd" and f["Command"].startswith("STREAM FILE")]
    assert (ends[0]["ResultCode"], ends[0]["Result"]) == ("-1", "Failure")
    assert line.variables["AGISTATUS"] == "HANGUP"
    await peer.close()


async def test_every_command_is_framed_by_agi_exec_events_and_set_variable_emits_varset():
    events: list = []
    line, peer, task = await start(Callee(), events=events)
    conn = await peer.next()
    assert await conn.cmd('SET VARIABLE CAMPAIGN_RESULT "DROPPED"') == "200 result=1"
    assert await conn.cmd("FOO BAR") == "510 Invalid or unknown command"
    await conn.finish()
    await task
    names = [(e, f.get("Command"), f.get("Variable")) for e, f in events if e in ("AGIExecStart", "AGIExecEnd", "VarSet")]
    assert names[:5] == [
        ("AGIExecStart", 'SET VARIABLE CAMPAIGN_RESULT "DROPPED"', None),
        ("VarSet", None, "CAMPAIGN_RESULT"),
        ("AGIExecEnd", 'SET VARIABLE CAMPAIGN_RESULT "DROPPED"', None),
        ("AGIExecStart", "FOO BAR", None),
        ("AGIExecEnd", "FOO BAR", None),
    ]
    starts = [f["CommandId"] for e, f in events if e == "AGIExecStart"]
    ends = [(f["CommandId"], f["ResultCode"], f["Result"]) for e, f in events if e == "AGIExecEnd"]
    assert [e[0] for e in ends] == starts
    assert ends[1][1:] == ("510", "Invalid or unknown command")
    await peer.close()


class FaultSwitch:
    agi_connect_delay = 0.0
    agi_never_connect = False
    agi_close_on: str | None = None


async def test_never_connect_fault_gives_failure_without_a_connection():
    faults = FaultSwitch()
    faults.agi_never_connect = True
    line, peer, task = await start(Callee(), faults=faults)
    result = await asyncio.wait_for(task, timeout=5)
    assert (result.status, result.connected) == ("FAILURE", False)
    assert peer.conns.empty()
    assert line.variables["AGISTATUS"] == "FAILURE"
    await peer.close()


async def test_refused_connection_is_failure_with_a_clear_error():
    clock = Clock(speed=SPEED)
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    result = await run_agi(channel(Callee(), clock), "127.0.0.1", port, "outbound", [], context="c",
                           extension="s", priority=1)
    assert result.status == "FAILURE" and "cannot connect" in (result.error or "")


async def test_close_fault_drops_the_socket_mid_command():
    faults = FaultSwitch()
    faults.agi_close_on = "STREAM FILE"
    line, peer, task = await start(Callee(), faults=faults)
    conn = await peer.next()
    assert await conn.cmd("NOOP") == "200 result=0"
    assert await conn.cmd('STREAM FILE beep ""') == "<EOF>"
    result = await task
    assert result.status == "FAILURE" and "closed" in result.error
    await peer.close()


async def test_silent_server_is_given_up_after_the_server_timeout():
    line, peer, task = await start(Callee(), server_timeout=0.3)
    conn = await peer.next()
    result = await asyncio.wait_for(task, timeout=5)
    assert result.status == "FAILURE" and "sent nothing" in result.error
    assert await conn.line() == "<EOF>"
    await peer.close()


async def test_caller_hanging_up_after_the_bridge_runs_the_wrapup_agi_on_the_agent_leg():
    queues = QueueSystem([QueueConfig("sales", members=[Member("PJSIP/agent1", "Agent One")],
                                      talk_seconds=(30, 30), acw_seconds=(0, 0), dispositions={"9": 1.0},
                                      wrapup_key_after=(0.2, 0.2))], rng_seed=3)
    line, peer, task = await start(Callee(hangup_after_bridge=1.0), queues=queues)
    conn = await peer.next()
    assert await conn.cmd("EXEC Queue sales,F(dialer-wrapup^s^1),,,5") == "200 result=-1"
    assert await conn.line() == "HANGUP"
    assert await conn.cmd("GET VARIABLE MEMBERINTERFACE") == "200 result=1 (PJSIP/agent1)"
    assert await conn.cmd("GET VARIABLE QUEUESTATUS") == "200 result=0"
    wrap = await peer.next()
    # dialplan/dialer.conf [dialer-wrapup] expanded on the agent's leg: AGI(agi://${DIALER_AGI}/wrapup,${ATTEMPT_ID})
    assert (wrap.env["agi_network_script"], wrap.env["agi_arg_1"]) == ("wrapup", ATTEMPT)
    assert (wrap.env["agi_context"], wrap.env["agi_extension"], wrap.env["agi_priority"]) == ("dialer-wrapup", "s", "1")
    assert await wrap.cmd("GET VARIABLE ATTEMPT_ID") == f"200 result=1 ({ATTEMPT})"  # __ATTEMPT_ID: inherited
    assert await wrap.cmd("GET VARIABLE CAMPAIGN_ID") == "200 result=0"  # a plain variable is not
    assert await wrap.cmd("GET DATA beep 3000 1") == "200 result=9"
    assert await wrap.finish() == ["HANGUP"]
    await conn.finish()
    result = await task
    assert result.agent == "PJSIP/agent1" and result.caller_hung_up
    for _ in range(100):
        if queues.wrapups:
            break
        await asyncio.sleep(0.01)
    assert queues.wrapups[0].keys == ["9"]
    assert queues.summary("sales")[0]["Available"] == "1"  # after-call work over
    await peer.close()


async def test_agent_hanging_up_first_returns_minus_one_and_no_wrapup():
    queues = QueueSystem([QueueConfig("sales", agents=1, talk_seconds=(1, 1))], rng_seed=1)
    line, peer, task = await start(Callee(), queues=queues)
    conn = await peer.next()
    assert await conn.cmd("EXEC Queue sales,F(dialer-wrapup^s^1),,,5") == "200 result=-1"
    assert await conn.cmd("CHANNEL STATUS") == "200 result=6"  # the person is still there
    assert await conn.cmd("GET VARIABLE ANSWEREDTIME") == "200 result=1 (1)"
    await conn.finish()
    await task
    assert queues.wrapups == [] and peer.conns.empty()
    await peer.close()


async def test_queue_summary_counts_ringing_and_paused_members_as_not_available():
    queues = QueueSystem([QueueConfig("sales", members=[
        Member("PJSIP/agent1", "Agent One", answers=False), Member("PJSIP/agent2", "Agent Two")])])
    queues.pause("PJSIP/agent2", True, reason="lunch")
    assert queues.pause("PJSIP/nobody", True) is False
    line, peer, task = await start(Callee(), queues=queues)
    conn = await peer.next()
    conn.writer.write(b"EXEC Queue sales,,,,20\n")
    await conn.writer.drain()
    for _ in range(200):  # until the caller waits and the free member rings
        row = queues.summary("sales")[0]
        if row["Callers"] == "1" and queues.queues["sales"].members[0].ringing:
            break
        await asyncio.sleep(0.005)
    assert (row["LoggedIn"], row["Available"], row["Callers"]) == ("2", "0", "1")
    kinds = [e for e, _f in queues.status("sales")]
    assert kinds == ["QueueParams", "QueueMember", "QueueMember", "QueueEntry"]
    members = {f["Location"]: f for e, f in queues.status("sales") if e == "QueueMember"}
    assert (members["PJSIP/agent1"]["Status"], members["PJSIP/agent1"]["InCall"]) == ("2", "0")  # ringing
    assert (members["PJSIP/agent2"]["Paused"], members["PJSIP/agent2"]["PausedReason"]) == ("1", "lunch")
    assert await conn.line() == "200 result=0"  # TIMEOUT
    assert await conn.cmd("GET VARIABLE QUEUESTATUS") == "200 result=1 (TIMEOUT)"
    params = dict(queues.status("sales")[0][1])
    assert (params["Abandoned"], params["Calls"]) == ("1", "0")
    await conn.finish()
    await task
    await peer.close()


@pytest.mark.parametrize("paused", [True, False])
async def test_joinempty_no_refuses_at_once_when_no_member_is_free(paused: bool):
    members = [Member("PJSIP/agent1", paused=paused, logged_in=paused)]  # paused, or logged out
    queues = QueueSystem([QueueConfig("sales", members=members, joinempty=False)])
    line, peer, task = await start(Callee(), queues=queues)
    conn = await peer.next()
    assert await conn.cmd("EXEC Queue sales,,,,5") == "200 result=0"
    assert await conn.cmd("GET VARIABLE QUEUESTATUS") == "200 result=1 (JOINEMPTY)"
    await conn.finish()
    await task
    await peer.close()


@pytest.mark.parametrize("rang,status", [(True, "TIMEOUT"), (False, "JOINEMPTY")], ids=["rang", "refused"])
async def test_cdr_billsec_starts_over_after_a_queue_rang_a_member_in_vain(rang, status):
    """Asterisk 12+ CDRs: the unanswered dial ends the caller's record; the caller goes on with a new
    one, answered when it starts, so CDR(billsec) no longer covers the call (our talk time does)."""
    members = [Member("PJSIP/agent1", answers=False, logged_in=rang)]
    queues = QueueSystem([QueueConfig("sales", members=members, joinempty=False)])
    line, peer, task = await start(Callee(), queues=queues)  # answered 2 s before the AGI
    conn = await peer.next()
    billsec = re.compile(r"200 result=1 \((\d+)\)")
    before = int(billsec.fullmatch(await conn.cmd("GET VARIABLE CDR(billsec)")).group(1))
    assert before >= 2
    assert await conn.cmd("EXEC Queue sales,,,,10") == "200 result=0"
    assert await conn.cmd("GET VARIABLE QUEUESTATUS") == f"200 result=1 ({status})"
    after = int(billsec.fullmatch(await conn.cmd("GET VARIABLE CDR(billsec)")).group(1))
    assert after <= 5 if rang else after >= before  # rang 10 s in vain: counts from the queue's end
    await conn.finish()
    await task
    await peer.close()


async def test_syntax_errors_get_the_multiline_520_and_gosub_sends_100_trying_first():
    line, peer, task = await start(Callee())
    conn = await peer.next()
    assert await conn.cmd("STREAM FILE beep") == "520-Invalid command syntax.  Proper usage follows:"
    assert (await conn.line()).startswith("Send the given file")
    assert await conn.line() == "520 End of proper usage."
    assert await conn.cmd("GOSUB sub s 1") == "100 result=0 Trying..."
    assert await conn.line() == "200 result=0 Gosub complete"
    assert await conn.cmd("EXEC NoSuchApplication foo") == "200 result=-2"
    await conn.finish()
    await task
    await peer.close()


@pytest.mark.parametrize(
    ("greeting", "timeout", "status"),
    [
        (11.5, 15, "SILENCE"),  # beep ends ~12.7 s after answer, +1.5 s of silence: within 15 s
        (11.5, 2, "TIMEOUT"),  # still talking when the 2 s are up
        (25.0, 15, "TIMEOUT"),  # a long greeting: the beep comes after the timeout
    ],
)
async def test_wait_for_silence_hears_the_machine_beep_then_silence(greeting, timeout, status):
    line, peer, task = await start(Callee(kind="machine", greeting_seconds=greeting))
    conn = await peer.next()
    assert await conn.cmd(f"EXEC WaitForSilence 1500,1,{timeout}") == "200 result=0"
    assert await conn.cmd("GET VARIABLE WAITSTATUS") == f"200 result=1 ({status})"
    await conn.finish()
    await task
    await peer.close()


def test_agent_keying_call_back_then_keys_the_hours_and_pound():
    queues = QueueSystem([QueueConfig("sales", agents=1, dispositions={"3": 1.0}, callback_hours=(24, 24),
                                      wrapup_key_after=(1.0, 1.0))], rng_seed=5)
    callee = queues.agent_callee(queues.state()["sales"])
    assert [(k.key, k.prompt) for k in callee.keys] == [("3", 0), ("2", 0), ("4", 0), ("#", 0)]
    assert [k.at for k in callee.keys] == sorted(k.at for k in callee.keys)


async def test_agent_hanging_up_sets_the_callers_hangupcause_to_normal_clearing():
    queues = QueueSystem([QueueConfig("sales", agents=1, talk_seconds=(1, 1))], rng_seed=1)
    line, peer, task = await start(Callee(), queues=queues)
    conn = await peer.next()
    assert await conn.cmd("GET VARIABLE HANGUPCAUSE") == "200 result=1 (0)"
    assert await conn.cmd("EXEC Queue sales,,,,5") == "200 result=-1"
    assert await conn.cmd("GET VARIABLE HANGUPCAUSE") == "200 result=1 (16)"
    await conn.finish()
    await task
    await peer.close()


def test_two_simulated_asterisks_given_one_queue_config_keep_their_own_members():
    """A member's state is its calls (busy, CallsTaken, LastCall, a member added by QueueAdd):
    each simulator has its own. Shared, a config used twice in one process (the trace tests'
    tables) started the second with the first's calls, and its events said CallsTaken: 1."""
    config = QueueConfig("sales", members=[Member("PJSIP/agent1", "Agent One")])
    first, second = QueueSystem([config]), QueueSystem([config])
    member = first.state()["sales"].members[0]
    member.busy, member.calls_taken, member.last_call = True, 3, 1795304529
    first.state()["sales"].members.append(Member("PJSIP/agent9"))
    again = second.state()["sales"].members
    assert [(m.interface, m.name, m.busy, m.calls_taken, m.last_call) for m in again] == [
        ("PJSIP/agent1", "Agent One", False, 0, 0)]
    assert [(m.busy, m.calls_taken) for m in config.members] == [(False, 0)]
