"""A whole agent call through the simulator: Queue with F() wrap-up on the agent's own channel."""

from __future__ import annotations

import asyncio

from agi.sim.callee import Callee
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import Scenario, ScenarioPlan
from agi.sim.simulator import Simulator


class FlowServer:
    """outbound: queue the call with F(dialer-wrapup^s^1); wrapup: read ATTEMPT_ID and CAMPAIGN_ID; hangup: nothing."""

    def __init__(self) -> None:
        self.envs: list[dict[str, str]] = []
        self.replies: dict[str, list[str]] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"", b"\n"):
                break
            k, _, v = line.decode().rstrip("\n").partition(": ")
            env[k] = v
        self.envs.append(env)
        script = env["agi_network_script"].split("?")[0]
        cmds = {"outbound": ["ANSWER", "EXEC Queue sales,F(dialer-wrapup^s^1),,,30", "GET VARIABLE MEMBERINTERFACE"],
                "wrapup": ["GET VARIABLE ATTEMPT_ID", "GET VARIABLE CAMPAIGN_ID"]}.get(script, [])
        got = self.replies.setdefault(script, [])
        for cmd in cmds:
            writer.write(cmd.encode() + b"\n")
            await writer.drain()
            reply = await reader.readline()
            while reply == b"HANGUP\n":
                reply = await reader.readline()
            got.append(reply.decode().rstrip("\n"))
        writer.close()


async def test_caller_hangs_up_after_the_bridge_and_the_agent_leg_runs_the_wrapup_flow():
    flows = FlowServer()
    server = await asyncio.start_server(flows.handle, "127.0.0.1", 0)
    caller = Scenario("human_to_agent", ring_time=1.0, callee=Callee(hangup_after_bridge=5.0))
    sim = Simulator(agi_port=server.sockets[0].getsockname()[1], speed=50.0, ami_port=0,
                    plan=ScenarioPlan.table({"+15550001234": caller}),
                    queues={"sales": QueueConfig("sales", agents=1, talk_seconds=(60.0, 60.0))})
    await sim.start()
    events: list[dict[str, str]] = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: dialer\r\nSecret: secret\r\n\r\n"
                     b"Action: Originate\r\nChannel: PJSIP/+15550001234@trunk\r\nContext: dialer-outbound\r\n"
                     b"Exten: s\r\nPriority: 1\r\nAsync: true\r\nChannelId: att-9\r\n"
                     b"Variable: __ATTEMPT_ID=att-9\r\nVariable: CAMPAIGN_ID=4\r\n\r\n")

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
        for _ in range(500):
            if "wrapup" in flows.replies and len(flows.replies["wrapup"]) == 2:
                break
            await asyncio.sleep(0.01)
        assert await sim.wait_idle(10)
        await asyncio.sleep(0.05)
        task.cancel()
        writer.close()
    finally:
        await sim.stop()
        server.close()

    assert flows.replies["outbound"][1] == "200 result=-1"  # the bridge ended: the caller went
    assert flows.replies["outbound"][2] == "200 result=1 (PJSIP/agent1)"
    wrapup = next(e for e in flows.envs if e["agi_network_script"].startswith("wrapup"))
    assert wrapup["agi_channel"].startswith("PJSIP/agent1-")
    assert (wrapup["agi_context"], wrapup["agi_extension"], wrapup["agi_priority"]) == ("dialer-wrapup", "s", "1")
    # __ATTEMPT_ID reaches the agent's leg; CAMPAIGN_ID, set without the __ prefix, does not (real Asterisk)
    assert flows.replies["wrapup"] == ["200 result=1 (att-9)", "200 result=0"]
    assert wrapup["agi_network_script"] == "wrapup" and wrapup["agi_arg_1"] == "att-9"
    names = [e.get("Event") for e in events]
    for name in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete"):
        assert name in names
    agent_leg = wrapup["agi_channel"]
    assert [e["Event"] for e in events if e.get("Channel") == agent_leg][0] == "Newchannel"
    assert [e["Event"] for e in events if e.get("Channel") == agent_leg][-1] == "Hangup"
    rec = sim.record["att-9"]
    assert rec.bridged_to == "PJSIP/agent1"
    assert rec.apps == ["Queue sales,F(dialer-wrapup^s^1),,,30"]


def test_double_underscore_variables_are_inherited_on_and_on_single_underscore_once():
    from agi.sim.channels import Channel, inherit_variables
    from agi.sim.clock import Clock

    a = Channel(name="PJSIP/trunk-00000001", uniqueid="u1", linkedid="u1", clock=Clock(), sink=lambda e, f: None,
                context="dialer-outbound", exten="s")
    a.set_var("__ATTEMPT_ID", "att-1", event=False)
    a.set_var("_ONCE", "x", event=False)
    a.set_var("PLAIN", "y", event=False)
    assert a.variables == {"ATTEMPT_ID": "att-1", "ONCE": "x", "PLAIN": "y"}
    b = Channel(name="PJSIP/agent1-00000002", uniqueid="u2", linkedid="u1", clock=Clock(), sink=lambda e, f: None,
                context="default", exten="s")
    inherit_variables(a, b)
    assert b.variables == {"ATTEMPT_ID": "att-1", "ONCE": "x"}
    c = Channel(name="PJSIP/agent2-00000003", uniqueid="u3", linkedid="u1", clock=Clock(), sink=lambda e, f: None,
                context="default", exten="s")
    inherit_variables(b, c)
    assert c.variables == {"ATTEMPT_ID": "att-1"}
