"""500 calls of a seeded mix at speed 100 against a minimal FastAGI server: the record accounts for all.

Also: two simulators in one process, the fault hooks, the JSON-lines export.
"""

from __future__ import annotations

import pytest

import asyncio
import json
from collections import Counter

from agi.rules.classify import REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION, REASON_FAILURE, REASON_RING_TIMEOUT
from agi.sim.scenarios import FAILURE_CAUSE, Network, ScenarioPlan
from agi.sim.simulator import Simulator

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

CALLS = 500

EXPECTED_REASON = {
    Network.ANSWER: REASON_ANSWERED,
    Network.BUSY: REASON_BUSY,
    Network.CONGESTION: REASON_CONGESTION,
    Network.NO_ANSWER: REASON_RING_TIMEOUT,
    Network.UNALLOCATED: REASON_FAILURE,
    Network.NUMBER_CHANGED: REASON_FAILURE,
    Network.REJECTED: REASON_FAILURE,
    Network.NO_CHANNEL: REASON_FAILURE,
}


class MinimalAgi:
    """answer + a few commands + hangup; the h-extension connection just reads one variable."""

    def __init__(self) -> None:
        self.scripts: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env = {}
        try:
            while True:
                line = await reader.readline()
                if line in (b"", b"\n"):
                    break
                k, _, v = line.decode().rstrip("\n").partition(": ")
                env[k] = v
            script = env.get("agi_network_script", "").split("?")[0]
            self.scripts[script] += 1
            cmds = ["GET VARIABLE HANGUPCAUSE"] if script == "hangup" else [
                "ANSWER", "GET VARIABLE AMDSTATUS", 'STREAM FILE campaign-msg "129"', "GET DATA beep 2000 1",
                'SET VARIABLE CAMPAIGN_RESULT "done"', "HANGUP"]
            for cmd in cmds:
                writer.write(cmd.encode() + b"\n")
                await writer.drain()
                reply = await reader.readline()
                while reply == b"HANGUP\n":
                    reply = await reader.readline()
                if not reply:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()


async def _login(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"Action: Login\r\nUsername: dialer\r\nSecret: secret\r\nEvents: on\r\n\r\n")
    return reader, writer


async def _collect(reader: asyncio.StreamReader, into: list[dict[str, str]]) -> None:
    msg: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            return
        if line == b"\r\n":
            if msg.get("Event") in ("OriginateResponse", "Hangup"):
                into.append(msg)
            msg = {}
            continue
        k, _, v = line.decode().rstrip("\r\n").partition(": ")
        msg[k] = v


def _originate(n: int, number: str) -> bytes:
    return (f"Action: Originate\r\nActionID: o{n}\r\nChannel: PJSIP/{number}@trunk\r\nContext: dialer-outbound\r\n"
            f"Exten: s\r\nPriority: 1\r\nTimeout: 25000\r\nCallerID: \"Acme\" <15550001111>\r\nAsync: true\r\n"
            f"ChannelId: att-{n}\r\nVariable: __ATTEMPT_ID=att-{n}\r\nVariable: CAMPAIGN_ID=7\r\n"
            f"Variable: CONTACT_ID={n}\r\n\r\n").encode()


async def test_500_calls_of_a_seeded_mix_are_all_in_the_record_with_their_scenario():
    agi = MinimalAgi()
    agi_server = await asyncio.start_server(agi.handle, "127.0.0.1", 0)
    plan = ScenarioPlan.mix(seed=7)
    sim = Simulator(agi_port=agi_server.sockets[0].getsockname()[1], speed=100.0, plan=plan, ami_port=0)
    await sim.start()
    events: list[dict[str, str]] = []
    try:
        reader, writer = await _login(sim.ami_port)
        collector = asyncio.create_task(_collect(reader, events))
        numbers = [f"+1555{n:07d}" for n in range(CALLS)]
        for i in range(0, CALLS, 50):  # 50 per burst: a paced originator would do the same
            writer.write(b"".join(_originate(n, numbers[n]) for n in range(i, i + 50)))
            await writer.drain()
            await asyncio.sleep(0.05)
        assert await sim.wait_idle(120)
        await asyncio.sleep(0.1)
        collector.cancel()
        writer.close()
    finally:
        await sim.stop()
        agi_server.close()

    rec = sim.record
    assert len(rec) == CALLS
    # the same seed gives the same scenario to the same number, whatever the order of the calls
    replay = ScenarioPlan.mix(seed=7)
    responses = {e["ActionID"]: e for e in events if e["Event"] == "OriginateResponse"}
    hangups: dict[str, list[str]] = {}
    for e in events:
        if e["Event"] == "Hangup":
            hangups.setdefault(e["Uniqueid"], []).append(e["Cause"])
    seen = Counter()
    for n, number in enumerate(numbers):
        call = rec[f"att-{n}"]
        chosen = replay.choose(number)
        seen[chosen.network] += 1
        assert (call.number, call.scenario, call.network) == (number, chosen.name, chosen.network.value)
        assert call.done
        assert call.reason == EXPECTED_REASON[chosen.network]
        assert int(responses[f"o{n}"]["Reason"]) == call.reason
        if chosen.network is Network.NO_CHANNEL:
            assert f"att-{n}" not in hangups
        elif chosen.network is Network.ANSWER:
            assert call.answered_at is not None
            assert call.agi_scripts[0].startswith(("outbound?campaign=7", "fax?campaign=7"))
            assert call.agi_scripts[-1] == "hangup?campaign=7"
        else:
            assert hangups[f"att-{n}"] == [str(FAILURE_CAUSE[chosen.network])]
    # the mix really is a mix
    assert {Network.ANSWER, Network.BUSY, Network.NO_ANSWER, Network.CONGESTION, Network.NO_CHANNEL} <= set(seen)
    assert rec.max_concurrent >= 2
    lines = rec.to_jsonl().splitlines()
    assert len(lines) == CALLS
    assert {json.loads(x)["channel_id"] for x in lines} == {f"att-{n}" for n in range(CALLS)}


async def test_two_simulators_in_one_process_keep_separate_records(tmp_path):
    sims = [Simulator(agi_port=1, speed=100.0, plan=ScenarioPlan.table({}, default="busy"), ami_port=0)
            for _ in range(2)]
    for s in sims:
        await s.start()
    try:
        for k, s in enumerate(sims):
            reader, writer = await _login(s.ami_port)
            for n in range(3):
                writer.write(_originate(10 * k + n, f"+1666{k}{n}"))
            await writer.drain()
        for s in sims:
            assert await s.wait_idle(10)
    finally:
        for s in sims:
            await s.stop()
    assert sorted(c.channel_id for c in sims[0].record) == ["att-0", "att-1", "att-2"]
    assert sorted(c.channel_id for c in sims[1].record) == ["att-10", "att-11", "att-12"]
    path = tmp_path / "calls.jsonl"
    sims[0].record.to_jsonl(path)
    assert [json.loads(x)["scenario"] for x in path.read_text().splitlines()] == ["busy"] * 3


async def test_drop_ami_closes_every_session_and_malformed_line_reaches_logged_in_ones():
    sim = Simulator(agi_port=1, speed=100.0, plan=ScenarioPlan.table({}, default="busy"), ami_port=0)
    await sim.start()
    try:
        reader, writer = await _login(sim.ami_port)
        while (await reader.readline()) != b"\r\n":  # the login reply
            pass
        await asyncio.sleep(0.05)
        assert sim.faults.send_malformed(b"garbage without colon\n") == 1
        data = b""
        while b"garbage without colon\n" not in data:
            data += await asyncio.wait_for(reader.read(4096), 5)
        assert sim.faults.drop_ami() == 1
        rest = await asyncio.wait_for(reader.read(), 5)
        assert rest == b"" or b"garbage" not in rest
        # a new connection is accepted after the drop (Asterisk came back)
        r2, w2 = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        assert await r2.readline() == b"Asterisk Call Manager/11.0.0\r\n"
        w2.close()
        writer.close()
    finally:
        await sim.stop()


async def test_stalled_ami_holds_replies_back_then_delivers_them_in_order():
    sim = Simulator(agi_port=1, speed=100.0, plan=ScenarioPlan.table({}, default="busy"), ami_port=0)
    await sim.start()
    try:
        reader, writer = await _login(sim.ami_port)
        while (await reader.readline()) != b"\r\n":
            pass
        await asyncio.sleep(0.05)
        while True:  # drain FullyBooted / SuccessfulAuth
            try:
                await asyncio.wait_for(reader.readline(), 0.1)
            except TimeoutError:
                break
        sim.faults.stall_ami(0.5)
        writer.write(b"Action: Ping\r\nActionID: p1\r\n\r\nAction: Ping\r\nActionID: p2\r\n\r\n")
        await writer.drain()
        try:
            early = await asyncio.wait_for(reader.readline(), 0.2)
        except TimeoutError:
            early = None
        assert early is None  # nothing while stalled
        text = b""
        while text.count(b"Ping: Pong") < 2:
            text += await asyncio.wait_for(reader.read(4096), 5)
        assert text.index(b"ActionID: p1") < text.index(b"ActionID: p2")
        writer.close()
    finally:
        await sim.stop()
