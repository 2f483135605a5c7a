"""AMIClient against the simulator's AMI server (the stand-in for Asterisk), over real TCP."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid

import pytest

from agi.ami import (
    AMIActionError,
    AMIAuthError,
    AMIClient,
    AMIConnectionLost,
    AMINotConnected,
    AMITimeout,
    attempt_id_from_uniqueid,
)
from agi.local import LocalStack
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator

from tests.conftest import ROOT
from tests.waiting import until

USER, SECRET = "dialer", "sim-secret"
SPEED = 50.0  # simulated seconds per wall second: a 25 s ring timeout takes 0.5 s

PLAN = {
    "+15550000001": "human",
    "+15550000002": "busy",
    "+15550000003": "no_answer",
    "+15550000004": "congestion",
    "+15550000005": "unallocated",
    "+15550000006": "rejected",
    "+15550000007": "no_channel",
}

# number -> (Response, Reason); Channel is the dial string on Failure, the real channel on Success
EXPECTED = {
    "+15550000001": ("Success", 4),
    "+15550000002": ("Failure", 5),
    "+15550000003": ("Failure", 3),
    "+15550000004": ("Failure", 8),
    "+15550000005": ("Failure", 0),
    "+15550000006": ("Failure", 0),
    "+15550000007": ("Failure", 0),
}


def free_port() -> int:
    """A loopback port nobody listens on: the simulated calls' AGI() fails fast, which is fine here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def sim():
    s = Simulator(agi_host="127.0.0.1", agi_port=free_port(), speed=SPEED, plan=ScenarioPlan.table(PLAN),
                  queues={"sales": QueueConfig("sales", agents=2)}, ami_port=0, ami_user=USER, ami_secret=SECRET)
    await s.start()
    yield s
    await s.stop()


def make_client(sim: Simulator, secret: str = SECRET, **kw) -> AMIClient:
    kw.setdefault("action_timeout", 1.0)
    kw.setdefault("ping_interval", 0.2)
    kw.setdefault("backoff", (0.02, 0.2))
    return AMIClient("127.0.0.1", sim.ami_port, USER, secret, **kw)


@pytest.fixture
async def client(sim):
    c = make_client(sim)
    await c.connect()
    yield c
    await c.close()


def originate(client: AMIClient, number: str, attempt: str | None = None):
    attempt = attempt or str(uuid.uuid4())
    return client.originate(
        channel=f"PJSIP/{number}@trunk", context="dialer-outbound", exten="s", priority=1, timeout_ms=25000,
        caller_id='"Acme Campaign" <15550001111>', channel_id=attempt,
        variables={"__ATTEMPT_ID": attempt, "CAMPAIGN_ID": 1, "CONTACT_ID": 42},
    )


async def test_login_and_ping_against_the_simulator(client):
    assert client.connected and client.connections == 1
    assert (await client.ping())["Ping"] == "Pong"


def readme_ami_read() -> str:
    """The read= classes of dialplan/README.md's least-privilege AMI user (its manager.conf example)."""
    text = (ROOT / "dialplan" / "README.md").read_text()
    section = text.split("## 3.", 1)[1].split("## 4.", 1)[0]
    (read,) = re.findall(r"^read\s*=\s*(\S+)", section, re.M)
    return read


async def test_a_user_without_the_system_read_class_logs_in_at_once_without_a_warning(caplog):
    sim = Simulator(agi_port=free_port(), speed=SPEED, plan=ScenarioPlan.table(PLAN), ami_port=0, ami_user=USER,
                    ami_secret=SECRET, ami_read="call,agent")  # Asterisk sends it no FullyBooted
    await sim.start()
    client = make_client(sim, action_timeout=30.0)
    booted = []
    client.on_event("FullyBooted", booted.append)
    try:
        with caplog.at_level(logging.INFO, logger="agi.ami.client"):
            # a liveness bound, not a speed claim: before, the login waited the whole action_timeout
            await asyncio.wait_for(client.connect(), 15.0)
        assert client.connected and booted == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert "no FullyBooted with the login" in caplog.text and "'system' read class" in caplog.text
        result = await originate(client, "+15550000002")  # and the session works
        assert (result.response, result.reason) == ("Failure", 5)
    finally:
        await client.close()
        await sim.stop()


async def test_the_readme_ami_user_sees_fully_booted_and_the_events_the_originator_uses(caplog):
    read = readme_ami_read()
    assert set(read.split(",")) == set(LocalStack.AMI_READ.split(","))  # the end-to-end tests use that user
    sim = Simulator(agi_port=free_port(), speed=SPEED, plan=ScenarioPlan.table(PLAN), ami_port=0, ami_user=USER,
                    ami_secret=SECRET, ami_read=read, queues={"sales": QueueConfig("sales", agents=2)})
    await sim.start()
    client = make_client(sim)
    booted, hangups = [], []
    client.on_event("FullyBooted", booted.append)
    client.on_event("Hangup", hangups.append)
    try:
        with caplog.at_level(logging.INFO, logger="agi.ami.client"):
            await client.connect()
        assert len(booted) == 1 and "no FullyBooted" not in caplog.text
        attempt = str(uuid.uuid4())
        result = await originate(client, "+15550000002", attempt)
        assert (result.response, result.reason) == ("Failure", 5)
        await until(lambda: hangups, what="the busy call's Hangup")
        assert (hangups[0]["Uniqueid"], hangups[0]["Cause"]) == (attempt, "17")
        assert (await client.queue_summary("sales"))[0]["LoggedIn"] == 2
    finally:
        await client.close()
        await sim.stop()


async def test_wrong_secret_against_the_simulator_is_a_fatal_auth_error(sim):
    client = make_client(sim, secret="wrong", action_timeout=3.0)
    with pytest.raises(AMIAuthError, match="manager.conf"):
        await client.connect(retry_for=5.0)
    await until(lambda: not sim.ami.sessions, what="the session to close")
    await asyncio.sleep(0.2)
    assert not sim.ami.sessions, "no second login attempt"


@pytest.mark.parametrize("number", sorted(EXPECTED))
async def test_originate_gets_the_simulated_originate_response(sim, client, number):
    attempt = str(uuid.uuid4())
    result = await originate(client, number, attempt)
    assert (result.response, result.reason) == EXPECTED[number]
    assert result.uniqueid == attempt
    if result.success:
        assert result.channel.startswith("PJSIP/trunk-")
    else:
        assert result.channel == f"PJSIP/{number}@trunk"
    rec = sim.record[attempt]
    assert (rec.response, rec.reason) == EXPECTED[number]
    assert rec.variables == {"__ATTEMPT_ID": attempt, "CAMPAIGN_ID": "1", "CONTACT_ID": "42"}


async def test_concurrent_originates_each_get_their_own_response(sim, client):
    numbers = sorted(EXPECTED) * 3
    attempts = [str(uuid.uuid4()) for _ in numbers]
    results = await asyncio.gather(*(originate(client, n, a) for n, a in zip(numbers, attempts)))
    assert [(r.uniqueid, r.response, r.reason) for r in results] == [
        (a, *EXPECTED[n]) for n, a in zip(numbers, attempts)
    ]
    assert sim.record.originates == len(numbers)


async def test_originate_the_switch_rejects_raises_action_error_and_the_session_stays(sim, client):
    with pytest.raises(AMIActionError, match="Exten not specified"):
        await client.originate(channel="PJSIP/+15550000002@trunk", context="dialer-outbound", exten="")
    assert client.connected and sim.record.originates == 0
    assert (await originate(client, "+15550000002")).reason == 5


async def test_hangup_causes_reach_the_attempt_on_both_local_legs(sim, client):
    sim.plan = ScenarioPlan.table({"busy": "busy"})
    attempt = str(uuid.uuid4())
    hangups = []
    client.on_event("Hangup", hangups.append)
    result = await client.originate(channel="Local/busy@callee", context="dialer-outbound", exten="s",
                                    channel_id=attempt, timeout_ms=25000)
    assert (result.response, result.reason, result.channel) == ("Failure", 5, "Local/busy@callee")
    await until(lambda: len(hangups) == 2, what="both legs' Hangup")
    assert sorted((h["Uniqueid"], h["Cause"]) for h in hangups) == [(attempt, "0"), (attempt + ";2", "17")]
    assert {attempt_id_from_uniqueid(h["Uniqueid"]) for h in hangups} == {attempt}


async def test_dropped_ami_reconnects_and_actions_in_the_outage_fail_at_once(sim):
    events = []
    client = make_client(sim, backoff=(1.0, 1.0))  # the first retry comes 0.5-1 s after the drop
    client.on_connect = lambda: events.append("connect")
    client.on_disconnect = lambda exc: events.append("disconnect")
    await client.connect()
    try:
        sim.faults.drop_ami()
        await until(lambda: not client.connected, what="the drop to be seen")
        with pytest.raises(AMINotConnected):
            await originate(client, "+15550000002")
        assert sim.record.originates == 0
        await until(lambda: client.connected, what="reconnect")
        assert events == ["connect", "disconnect", "connect"]
        result = await originate(client, "+15550000002")
        assert result.reason == 5
    finally:
        await client.close()


async def test_originate_in_flight_during_a_drop_is_lost_not_resent(sim, client):
    task = asyncio.create_task(originate(client, "+15550000003"))  # rings 25 simulated s
    await until(lambda: sim.record.originates == 1, what="the Originate")
    await client.ping()  # its reply follows the Originate's ack on the wire: the ack has been read
    sim.faults.drop_ami()
    with pytest.raises(AMIConnectionLost) as info:
        await task
    assert info.value.queued
    await until(lambda: client.connected, what="reconnect")
    await client.ping()
    assert sim.record.originates == 1


async def test_stalled_ami_times_out_and_the_watchdog_reconnects(sim):
    lost = []
    client = make_client(sim, action_timeout=0.3, ping_interval=5.0)
    client.on_disconnect = lost.append
    await client.connect(retry_for=5.0)
    try:
        sim.faults.stall_ami(1.0)  # also holds the next logins' replies: reconnect keeps trying
        with pytest.raises(AMITimeout):
            await client.queue_summary()
        await until(lambda: lost, what="the watchdog to drop the session")
        await until(lambda: client.connected, what="reconnect after the stall", timeout=10.0)
        assert client.connections >= 2
        (sales,) = await client.queue_summary("sales")
        assert sales["LoggedIn"] == 2
    finally:
        await client.close()


async def test_malformed_line_from_the_simulator_does_not_kill_the_session(sim, client):
    assert sim.faults.send_malformed() == 1
    assert (await client.ping())["Ping"] == "Pong"
    assert (await originate(client, "+15550000002")).reason == 5
    assert client.connections == 1


async def test_queue_summary_from_the_simulator(sim, client):
    (sales,) = await client.queue_summary("sales")
    assert (sales["Queue"], sales["LoggedIn"], sales["Available"], sales["Callers"]) == ("sales", 2, 2, 0)
    assert [q["Queue"] for q in await client.queue_summary()] == ["sales"]
    assert await client.queue_summary("nosuchqueue") == []


async def test_core_show_channels_lists_the_answered_call_by_attempt_id():
    # slow clock: the answered call stays in AMD() (~2 simulated s) long enough to be listed
    async with Simulator(agi_host="127.0.0.1", agi_port=free_port(), speed=5.0, plan=ScenarioPlan.table(PLAN),
                         ami_port=0, ami_user=USER, ami_secret=SECRET) as sim:
        client = make_client(sim)
        await client.connect()
        try:
            assert await client.core_show_channels() == []
            attempt = str(uuid.uuid4())
            assert (await originate(client, "+15550000001", attempt)).success
            channels = await client.core_show_channels()
            assert [(attempt_id_from_uniqueid(c["Uniqueid"]), c["Linkedid"]) for c in channels] == [(attempt, attempt)]
        finally:
            await client.close()
