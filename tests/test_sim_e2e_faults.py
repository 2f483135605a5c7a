"""FastAGI fault hooks and live-call views (CoreShowChannels, Hangup action) through a whole call."""

from __future__ import annotations

import pytest

import asyncio

from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it


class Agi:
    """A FastAGI server that runs ``commands`` on the outbound connection and records everything."""

    def __init__(self, commands: list[str], hold: asyncio.Event | None = None) -> None:
        self.commands = commands
        self.hold = hold
        self.scripts: list[str] = []
        self.replies: list[bytes] = []
        self.closed_by_peer = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env = {}
        while True:
            line = await reader.readline()
            if line in (b"", b"\n"):
                break
            k, _, v = line.decode().rstrip("\n").partition(": ")
            env[k] = v
        script = env.get("agi_network_script", "")
        self.scripts.append(script)
        if script.startswith("outbound"):
            for cmd in self.commands:
                writer.write(cmd.encode() + b"\n")
                await writer.drain()
                reply = await reader.readline()
                self.replies.append(reply)
                if not reply:
                    self.closed_by_peer = True
                    break
            if self.hold is not None:
                await self.hold.wait()
        writer.close()


async def _call(sim: Simulator, number: str, channel_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
    await reader.readline()
    writer.write(b"Action: Login\r\nUsername: dialer\r\nSecret: secret\r\nEvents: off\r\n\r\n")
    writer.write(f"Action: Originate\r\nChannel: PJSIP/{number}@trunk\r\nContext: dialer-outbound\r\nExten: s\r\n"
                 f"Priority: 1\r\nAsync: true\r\nChannelId: {channel_id}\r\nVariable: __ATTEMPT_ID={channel_id}\r\n"
                 f"Variable: CAMPAIGN_ID=3\r\n\r\n".encode())
    await writer.drain()
    seen = b""
    while b"Originate successfully queued\r\n\r\n" not in seen:
        seen += await asyncio.wait_for(reader.read(4096), 5)
    return reader, writer


async def _start(agi: Agi, plan: ScenarioPlan) -> tuple[Simulator, asyncio.Server]:
    server = await asyncio.start_server(agi.handle, "127.0.0.1", 0)
    sim = Simulator(agi_port=server.sockets[0].getsockname()[1], speed=50.0, plan=plan, ami_port=0)
    await sim.start()
    return sim, server


async def test_agi_never_connect_gives_agistatus_failure_and_the_call_still_ends():
    agi = Agi(["ANSWER"])
    sim, server = await _start(agi, ScenarioPlan.table({"+1": "human"}))
    sim.faults.agi_never_connect = True
    try:
        _r, w = await _call(sim, "+1", "a-1")
        assert await sim.wait_idle(10)
        w.close()
    finally:
        await sim.stop()
        server.close()
    rec = sim.record["a-1"]
    assert agi.scripts == []  # no connection at all, not even from h
    assert rec.done and any("never made" in n for n in rec.notes)


async def test_agi_connect_delay_only_delays_the_connection():
    agi = Agi(["ANSWER", "HANGUP"])
    sim, server = await _start(agi, ScenarioPlan.table({"+1": "human"}))
    sim.faults.agi_connect_delay = 5.0  # simulated seconds: 0.1 s at speed 50
    try:
        _r, w = await _call(sim, "+1", "a-2")
        assert await sim.wait_idle(10)
        w.close()
    finally:
        await sim.stop()
        server.close()
    assert agi.scripts == ["outbound?campaign=3", "hangup?campaign=3"]
    assert sim.record["a-2"].agi_commands[:2] == ["ANSWER", "HANGUP"]


async def test_agi_close_on_command_drops_the_socket_mid_command():
    agi = Agi(["ANSWER", 'STREAM FILE hello ""', "HANGUP"])
    sim, server = await _start(agi, ScenarioPlan.table({"+1": "human"}))
    sim.faults.agi_close_on = "STREAM FILE"
    try:
        _r, w = await _call(sim, "+1", "a-3")
        assert await sim.wait_idle(10)
        w.close()
    finally:
        await sim.stop()
        server.close()
    assert agi.replies[0] == b"200 result=0\n"
    assert agi.closed_by_peer  # no reply to STREAM FILE: the socket was closed
    assert sim.record["a-3"].done


async def test_core_show_channels_lists_a_live_call_and_hangup_action_ends_it():
    hold = asyncio.Event()
    agi = Agi(["ANSWER", 'SET VARIABLE CAMPAIGN_RESULT "held"'], hold=hold)
    sim, server = await _start(agi, ScenarioPlan.table({"+1": "human"}))
    try:
        reader, writer = await _call(sim, "+1", "a-4")
        for _ in range(200):
            if agi.replies:
                break
            await asyncio.sleep(0.02)
        writer.write(b"Action: CoreShowChannels\r\nActionID: c1\r\n\r\n")
        await writer.drain()
        text = b""
        while b"CoreShowChannelsComplete" not in text or not text.endswith(b"\r\n\r\n"):
            text += await asyncio.wait_for(reader.read(4096), 5)
        body = text.decode()
        assert "Uniqueid: a-4\r\n" in body and "Application: AGI\r\n" in body and "ListItems: 1\r\n" in body
        name = next(line.split(": ", 1)[1] for line in body.split("\r\n") if line.startswith("Channel: PJSIP/trunk-"))
        writer.write(f"Action: Hangup\r\nActionID: h1\r\nChannel: {name}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.1)
        hold.set()  # the FastAGI server lets go: the AGI() step ends, h runs, the channel goes
        assert await sim.wait_idle(10)
        writer.close()
    finally:
        hold.set()
        await sim.stop()
        server.close()
    rec = sim.record["a-4"]
    assert rec.vars_set == {"CAMPAIGN_RESULT": "held"}
    assert rec.causes == {name: 16}
