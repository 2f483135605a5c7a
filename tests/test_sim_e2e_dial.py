"""EXEC Dial from a FastAGI session to a Local channel the simulated dialplan runs (no trace covers
the unanswered case; ami-originate-human*.txt cover the answered one)."""

from __future__ import annotations

import pytest

import asyncio

from agi.sim.callee import Callee
from agi.sim.dialplan import Dialplan
from agi.sim.scenarios import Scenario, ScenarioPlan
from agi.sim.simulator import Simulator

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

RIG = Dialplan.parse("""
[dialer]
exten => s,1,AGI(agi://127.0.0.1:4573/outbound)
 same => n,Hangup()
[agents]
exten => ring,1,Ringing()
 same => n,Wait(120)
 same => n,Hangup()
""")


async def test_dial_to_a_party_that_only_rings_ends_noanswer_and_tears_the_pair_down():
    replies: list[str] = []

    async def agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        for cmd in ("EXEC Dial Local/ring@agents,3", "GET VARIABLE DIALSTATUS"):
            writer.write(cmd.encode() + b"\n")
            await writer.drain()
            replies.append((await reader.readline()).decode().rstrip("\n"))
        writer.close()

    server = await asyncio.start_server(agi, "127.0.0.1", 0)
    sim = Simulator(ami_port=0, speed=20.0, dialplan=RIG, agi_connect=("127.0.0.1", server.sockets[0].getsockname()[1]),
                    plan=ScenarioPlan.table({"p": Scenario("human", ring_time=0.0, callee=Callee())}))
    await sim.start()
    events: list[dict[str, str]] = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: dialer\r\nSecret: secret\r\n\r\n"
                     b"Action: Originate\r\nChannel: Local/p@callee\r\nContext: dialer\r\nExten: s\r\n"
                     b"Priority: 1\r\nAsync: true\r\nChannelId: c-1\r\n\r\n")

        async def collect() -> None:
            msg: dict[str, str] = {}
            while line := await reader.readline():
                if line == b"\r\n":
                    events.append(msg)
                    msg = {}
                    continue
                k, _, v = line.decode().rstrip("\r\n").partition(": ")
                msg[k] = v

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.05)
        assert await sim.wait_idle(10)
        await asyncio.sleep(0.05)
        task.cancel()
        writer.close()
    finally:
        await sim.stop()
        server.close()

    assert replies == ["200 result=-1", "200 result=1 (NOANSWER)"]
    dial = [(e["Event"], e.get("DialStatus")) for e in events if e.get("Event", "").startswith("Dial")
            and e.get("Channel", "").startswith("Local/p@callee")]
    assert dial == [("DialBegin", None), ("DialState", "RINGING"), ("DialEnd", "NOANSWER")]
    ring = [e for e in events if e.get("Channel", "").startswith("Local/ring@agents-")]
    ends = {e["Channel"][-2:]: e for e in ring if e["Event"] == "Hangup"}
    assert set(ends) == {";1", ";2"}  # both halves of the dialed pair are gone
    assert [e["Application"] for e in ring if e["Event"] == "Newexten" and e["Channel"].endswith(";2")] == \
        ["Ringing", "Wait"]  # the dialed party's own dialplan ran until the Dial gave up
