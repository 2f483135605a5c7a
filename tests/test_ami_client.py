"""AMIClient over real TCP against a peer that answers with the captured Asterisk bytes."""

from __future__ import annotations

import asyncio

import pytest

from agi.ami import (
    AMIActionError,
    AMIAuthError,
    AMIClient,
    AMIConnectError,
    AMIConnectionLost,
    AMINotConnected,
    AMITimeout,
    attempt_id_from_uniqueid,
    backoff_delay,
)
from agi.originator.calls import Call, CallTracker
from agi.outcomes import Result
from agi.rules.classify import classify_failure
from agi.settings import Secret
from test_ami_client_peer import TracePeer, originate_script

USER, SECRET = "dialer", "dialer-secret"  # the capture rig's manager.conf user


async def until(cond, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait for cond() (a liveness bound, not a speed claim)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def peer():
    p = await TracePeer().start()
    yield p
    await p.stop()


def make_client(peer: TracePeer, secret=SECRET, **kw) -> AMIClient:
    kw.setdefault("action_timeout", 1.0)
    kw.setdefault("ping_interval", 0.2)
    kw.setdefault("backoff", (0.02, 0.1))
    return AMIClient("127.0.0.1", peer.port, USER, Secret(secret), **kw)


@pytest.fixture
async def client(peer):
    c = make_client(peer)
    await c.connect()
    yield c
    await c.close()


def originate_kwargs(script) -> dict:
    """The client call that reproduces the trace's Originate."""
    sent = script.sent
    variables = dict(v.split("=", 1) for v in [l.split(": ", 1)[1] for l in sent.lines if l.startswith("Variable: ")])
    return dict(
        channel=sent.get("Channel"),
        context=sent.get("Context"),
        exten=sent.get("Exten"),
        priority=int(sent.get("Priority")),
        timeout_ms=int(sent.get("Timeout")),
        caller_id=sent.get("CallerID"),
        channel_id=sent.get("ChannelId"),
        variables=variables,
    )


# ---- pure helpers


@pytest.mark.parametrize(
    "uniqueid, attempt",
    [
        ("a5e45aab-7478-49d9-b054-85a51d9853a0", "a5e45aab-7478-49d9-b054-85a51d9853a0"),
        ("a5e45aab-7478-49d9-b054-85a51d9853a0;2", "a5e45aab-7478-49d9-b054-85a51d9853a0"),
        ("a5e45aab-7478-49d9-b054-85a51d9853a0;1", "a5e45aab-7478-49d9-b054-85a51d9853a0"),
        ("1795304629.27", "1795304629.27"),  # a channel Asterisk named itself (the agent's)
        ("odd;name", "odd;name"),
    ],
)
def test_attempt_id_strips_the_local_leg_suffix(uniqueid, attempt):
    assert attempt_id_from_uniqueid(uniqueid) == attempt


@pytest.mark.parametrize(
    "failures, rand, expected",
    [
        (1, 0.0, 0.25),  # half of base, fixed
        (1, 1.0, 0.5),  # up to base
        (2, 1.0, 1.0),
        (3, 1.0, 2.0),
        (7, 1.0, 30.0),  # 0.5 * 2**6 = 32 -> capped at 30
        (7, 0.0, 15.0),  # jitter never below half the capped delay
        (50, 0.5, 22.5),
    ],
)
def test_backoff_doubles_up_to_the_cap_with_jitter(failures, rand, expected):
    assert backoff_delay(failures, 0.5, 30.0, rand=lambda: rand) == pytest.approx(expected)


# ---- login


async def test_login_gets_fully_booted_and_the_client_is_connected(peer):
    connects = []
    client = make_client(peer)
    client.on_connect = lambda: connects.append(client.connections)
    await client.connect()
    try:
        assert client.connected
        assert connects == [1]
        login = peer.actions("Login")[0]
        assert (login["Username"], login["Secret"], login["Events"]) == (USER, SECRET, "on")
        assert (await client.ping())["Ping"] == "Pong"
    finally:
        await client.close()
    assert not client.connected
    assert peer.actions("Logoff"), "close() logs off"


async def test_wrong_secret_is_a_fatal_auth_error_and_not_retried(peer):
    client = make_client(peer, secret="wrong-secret", action_timeout=3.0)
    with pytest.raises(AMIAuthError) as info:
        await client.connect(retry_for=5.0)
    text = str(info.value)
    assert "Authentication failed" in text and "manager.conf" in text and USER in text
    assert "wrong-secret" not in text
    await asyncio.sleep(0.3)
    assert peer.connections == 1, "a refused login is never retried"
    assert not client.connected
    with pytest.raises(AMINotConnected):
        await client.ping()


async def test_unreachable_peer_raises_connect_error_after_retry_for(peer):
    port = peer.port
    await peer.stop()
    client = AMIClient("127.0.0.1", port, USER, SECRET, action_timeout=0.5, backoff=(0.02, 0.05))
    with pytest.raises(AMIConnectError) as info:
        await client.connect(retry_for=0.2)
    assert f"127.0.0.1:{port}" in str(info.value) and "AMI address" in str(info.value)


async def test_actions_before_connect_fail_at_once_with_not_connected(peer):
    client = make_client(peer)
    with pytest.raises(AMINotConnected):
        await client.queue_summary()
    assert peer.received == []


# ---- originate


ORIGINATE_TABLE = [
    # trace, Response, Reason, Channel (dial string as sent on Failure, the real channel on Success)
    ("ami-originate-human.txt", "Success", 4, "Local/human@callee-00000009;1"),
    ("ami-originate-machine.txt", "Success", 4, "Local/machine@callee-0000000b;1"),
    ("ami-originate-busy.txt", "Failure", 5, "Local/busy@callee"),
    ("ami-originate-noanswer-timeout.txt", "Failure", 3, "Local/noanswer@callee"),
    ("ami-originate-congestion.txt", "Failure", 8, "Local/congestion@callee"),
    ("ami-originate-unallocated.txt", "Failure", 0, "Local/unallocated@callee"),
    ("ami-originate-rejected.txt", "Failure", 0, "Local/rejected@callee"),
    ("ami-originate-nonexistent-tech.txt", "Failure", 0, "NoSuchTech/12345"),
    ("ami-originate-nonexistent-exten.txt", "Failure", 0, "Local/doesnotexist@callee"),
]


@pytest.mark.parametrize("trace, response, reason, channel", ORIGINATE_TABLE)
async def test_originate_resolves_with_its_originate_response(peer, client, trace, response, reason, channel):
    script = originate_script(trace)
    result = await client.originate(**originate_kwargs(script))
    assert (result.response, result.reason, result.channel) == (response, reason, channel)
    assert result.success is (response == "Success")
    assert result.uniqueid == script.channel_id
    assert result.raw["Event"] == "OriginateResponse"
    sent = peer.actions("Originate")[0]
    assert sent["Async"] == "true"
    assert sent["ChannelId"] == script.channel_id
    assert sent["Variable"] == [l.split(": ", 1)[1] for l in script.sent.lines if l.startswith("Variable: ")]
    assert sent["CallerID"] == '"Acme Campaign" <15550001111>'


async def test_concurrent_originates_each_get_their_own_response(peer, client):
    scripts = [originate_script(t) for t, *_ in ORIGINATE_TABLE]
    results = await asyncio.gather(*(client.originate(**originate_kwargs(s)) for s in scripts))
    got = [(r.uniqueid, r.response, r.reason, r.channel) for r in results]
    assert got == [(s.channel_id, resp, reason, chan) for s, (_, resp, reason, chan) in zip(scripts, ORIGINATE_TABLE)]
    assert len({a["ActionID"] for a in peer.actions("Originate")}) == len(scripts)


async def test_hangup_events_tie_back_to_the_attempt_including_local_leg_2(peer, client):
    script = originate_script("ami-originate-busy.txt")
    hangups = []
    client.on_event("Hangup", hangups.append)
    result = await client.originate(**originate_kwargs(script))
    assert result.reason == 5
    await until(lambda: len(hangups) == 2, what="both Hangup events")
    assert [(h["Uniqueid"], h["Cause"], h["Cause-txt"]) for h in hangups] == [
        (script.channel_id + ";2", "17", "User busy"),
        (script.channel_id, "0", "Unknown"),
    ]
    assert {attempt_id_from_uniqueid(h["Uniqueid"]) for h in hangups} == {script.channel_id}


@pytest.mark.parametrize(
    "trace, reason, hangups, result",
    [
        # Hangup ;1 with Cause 0 first: not the cause yet; the ;2 half's 17 is
        ("ami-originate-busy-response-first.txt", 5, [(";1", "0"), (";2", "17")], Result.BUSY),
        ("ami-originate-rejected-response-first.txt", 0, [(";2", "21"), (";1", "21")], Result.REJECTED),
    ],
)
async def test_a_response_before_the_calls_own_events_still_gets_the_result_of_its_cause(
        peer, trace, reason, hangups, result):
    """A loaded Asterisk's order: the OriginateResponse, then Newchannel and the Hangups. The
    originator's call tracking (agi.originator.calls) waits for the cause the events bring."""
    peer.speed = 100.0  # the trace's sub-millisecond gaps, stretched: the response is handled alone
    client = make_client(peer)
    await client.connect()
    try:
        tracker = CallTracker()
        client.on_event("Newchannel", tracker.on_newchannel)
        client.on_event("Hangup", tracker.on_hangup)
        seen: list[dict] = []
        client.on_event("Hangup", seen.append)
        script = originate_script(trace)
        call = tracker.add(Call(script.channel_id, 1, 1, "+14045550000", sent_at=0.0))
        got = await client.originate(**originate_kwargs(script))
        assert (got.response, got.reason, got.uniqueid) == ("Failure", reason, script.channel_id)
        assert not call.channel_created and not call.cause_in.is_set()  # nothing of the call seen yet
        await call.wait_for_cause(5.0)
        assert call.cause_in.is_set()
        assert classify_failure(got.reason, call.causes, call.channel_created) is result
        await until(lambda: len(seen) == 2, what="both legs' Hangup")
        assert [(h["Uniqueid"].removeprefix(script.channel_id) or ";1", h["Cause"]) for h in seen] == hangups
    finally:
        await client.close()


async def test_event_callbacks_may_be_coroutines_and_a_failing_callback_is_contained(peer, client):
    script = originate_script("ami-originate-busy.txt")
    seen = []

    def broken(event):
        raise RuntimeError("bug in a callback")

    async def collect(event):
        seen.append(event["Event"])

    client.on_event("Hangup", broken)
    client.on_event("*", collect)
    await client.originate(**originate_kwargs(script))
    await until(lambda: seen.count("Hangup") == 2, what="Hangup via '*'")
    assert "DialEnd" in seen and "OriginateResponse" not in seen
    assert client.connected and peer.connections == 1


async def test_originate_response_after_timeout_goes_to_the_event_callbacks(peer):
    peer.hold_originate_response = True
    client = make_client(peer, action_timeout=1.0, originate_timeout=0.2)  # gives up 1.1 s after the ack
    orphans = []
    client.on_event("OriginateResponse", orphans.append)
    await client.connect()
    try:
        script = originate_script("ami-originate-busy.txt")
        kwargs = originate_kwargs(script) | {"timeout_ms": 100}
        with pytest.raises(AMITimeout) as info:
            await client.originate(**kwargs)
        assert info.value.queued, "Asterisk had acknowledged it"
        peer.release()
        await until(lambda: orphans, what="the late OriginateResponse")
        assert orphans[0]["Uniqueid"] == script.channel_id and orphans[0]["Reason"] == "5"
    finally:
        await client.close()


async def test_originate_refused_by_asterisk_raises_action_error(peer, client):
    with pytest.raises(AMIActionError) as info:
        await client.action({"Action": "NoSuchAction"})
    assert "Invalid/unknown command" in str(info.value)
    assert client.connected


async def test_a_line_break_in_a_header_value_is_refused_before_sending(peer, client):
    script = originate_script("ami-originate-busy.txt")
    kwargs = originate_kwargs(script) | {"caller_id": '"Evil\r\nAction: Hangup" <1>'}
    with pytest.raises(ValueError):
        await client.originate(**kwargs)
    assert peer.actions("Originate") == []


# ---- connection faults


async def test_dropped_connection_reconnects_with_backoff_and_fires_the_callbacks(peer):
    events = []
    client = make_client(peer)
    client.on_connect = lambda: events.append("connect")
    client.on_disconnect = lambda exc: events.append("disconnect")
    await client.connect()
    try:
        peer.refuse = True
        peer.drop()
        await until(lambda: not client.connected, what="the drop to be seen")
        with pytest.raises(AMINotConnected):
            await client.originate(**originate_kwargs(originate_script("ami-originate-busy.txt")))
        await until(lambda: peer.refused >= 3, what="reconnect tries")
        assert peer.actions("Originate") == [], "nothing sent while disconnected"
        assert not await client.wait_connected(timeout=0.05)
        peer.refuse = False
        assert await client.wait_connected(timeout=5.0)
        assert events == ["connect", "disconnect", "connect"]
        assert client.connections == 2
        assert (await client.ping())["Ping"] == "Pong"
    finally:
        await client.close()


@pytest.mark.parametrize("acked", [True, False])
async def test_originate_in_flight_when_the_connection_drops_is_lost_and_never_resent(peer, client, acked):
    peer.hold_originate_response = True
    if not acked:
        peer.stall()  # the Originate reaches the peer, no reply at all
    script = originate_script("ami-originate-busy.txt")
    task = asyncio.create_task(client.originate(**originate_kwargs(script)))
    await until(lambda: peer.actions("Originate"), what="the Originate")
    if acked:
        await client.ping()  # its reply follows the ack on the wire: the ack has been read
    else:
        await asyncio.sleep(0.05)
    peer.drop()
    with pytest.raises(AMIConnectionLost) as info:
        await task
    assert info.value.queued is acked
    await until(lambda: client.connected, what="reconnect")
    await client.ping()
    await asyncio.sleep(0.05)
    assert len(peer.actions("Originate")) == 1, "panoramisk alone re-sends an unanswered action"


async def test_stalled_peer_times_out_the_action_and_the_watchdog_reconnects(peer):
    lost = []
    client = make_client(peer, action_timeout=0.3, ping_interval=5.0)
    client.on_disconnect = lost.append
    await client.connect(retry_for=5.0)
    try:
        peer.stall()
        with pytest.raises(AMITimeout):
            await client.queue_summary()
        await until(lambda: peer.connections == 2 and client.connected, what="watchdog reconnect")
        assert isinstance(lost[0], AMIConnectionLost) and "Ping" in str(lost[0])
        assert [q["Queue"] for q in await client.queue_summary()] == ["sales", "empty"]
    finally:
        await client.close()


async def test_watchdog_pings_and_drops_a_silent_peer_without_any_action(peer):
    client = make_client(peer, action_timeout=0.5, ping_interval=0.1)
    await client.connect(retry_for=5.0)
    try:
        pings = len(peer.actions("Ping"))
        await until(lambda: len(peer.actions("Ping")) > pings, what="a watchdog Ping")
        sessions = peer.connections
        peer.stall()
        await until(lambda: peer.connections > sessions and client.connected, what="watchdog reconnect")
    finally:
        await client.close()


async def test_malformed_messages_from_the_peer_do_not_kill_the_session(peer, client):
    hangups = []
    client.on_event("Hangup", hangups.append)
    peer.send_raw(
        b"garbage without a colon\r\n\r\n"
        b"Event: Hangup\r\nEvent: Hangup\r\nActionID: a\r\nActionID: b\r\n\r\n"  # killed panoramisk
        b"Response: Success\r\nActionID: nobody-asked\r\n\r\n"
        b"\xff\xfe\xfd: \x80\r\n\r\n"
        b"a stray line ended by a bare LF\n"  # glued to the next header, it cost panoramisk the message
        b"Event: Hangup\r\nUniqueid: x;2\r\nCause: 16\r\n\r\n"
    )
    await until(lambda: hangups, what="the good Hangup after the bad ones")
    assert hangups == [{"Event": "Hangup", "Uniqueid": "x;2", "Cause": "16"}]
    assert (await client.ping())["Ping"] == "Pong"
    assert peer.connections == 1


async def test_a_utf8_character_split_between_two_reads_is_kept(peer, client):
    names = []
    client.on_event("Hangup", lambda e: names.append(e["CallerIDName"]))
    peer.send_raw(b"Event: Hangup\r\nCallerIDName: Jos\xc3")
    await asyncio.sleep(0.05)  # two TCP segments, two reads
    peer.send_raw(b"\xa9 M\xc3\xbcller\r\nUniqueid: u1\r\n\r\n")
    await until(lambda: names, what="the Hangup")
    assert names == ["Jos\u00e9 M\u00fcller"]


async def test_refused_login_on_reconnect_stops_the_client(peer):
    seen = []
    client = make_client(peer)
    client.on_disconnect = seen.append
    peer.auth_delay = 0.05
    await client.connect()
    try:
        peer.secret = "rotated"
        peer.drop()
        await until(lambda: client.fatal is not None, what="the refused re-login")
        assert isinstance(client.fatal, AMIAuthError)
        assert isinstance(seen[-1], AMIAuthError)
        connections = peer.connections
        await asyncio.sleep(0.3)
        assert peer.connections == connections, "no retry after a refused login"
        with pytest.raises(AMINotConnected, match="refused login"):
            await client.ping()
        assert not await client.wait_connected(timeout=5.0)
    finally:
        await client.close()


async def test_close_while_reconnecting_leaves_no_socket_and_no_task(peer):
    client = make_client(peer, action_timeout=5.0)
    await client.connect()
    peer.mute = True  # the next session hangs at Login
    peer.drop()
    await until(lambda: peer.connections == 2, what="the reconnect")
    await client.close()
    await until(lambda: not peer._conns, what="the half-open session to be closed")
    await asyncio.sleep(0.2)
    assert peer.connections == 2 and not client.connected


async def test_close_does_not_report_a_disconnect_and_refuses_later_actions(peer):
    seen = []
    client = make_client(peer)
    client.on_disconnect = seen.append
    await client.connect()
    await client.close()
    await asyncio.sleep(0.1)
    assert seen == []
    with pytest.raises(AMINotConnected):
        await client.ping()
    assert peer.connections == 1


# ---- lists


async def test_queue_summary_parses_the_trace_event_list(peer, client):
    assert await client.queue_summary() == [
        {"Event": "QueueSummary", "Queue": "sales", "LoggedIn": 1, "Available": 1, "Callers": 0,
         "HoldTime": 0, "TalkTime": 2, "LongestHoldTime": 0, "ActionID": peer.actions("QueueSummary")[0]["ActionID"]},
        {"Event": "QueueSummary", "Queue": "empty", "LoggedIn": 0, "Available": 0, "Callers": 0,
         "HoldTime": 0, "TalkTime": 0, "LongestHoldTime": 0, "ActionID": peer.actions("QueueSummary")[0]["ActionID"]},
    ]
    (sales,) = await client.queue_summary("sales")  # (d): a caller waits, the member rings
    assert (sales["LoggedIn"], sales["Available"], sales["Callers"], sales["LongestHoldTime"]) == (1, 0, 1, 2)
    assert peer.actions("QueueSummary")[1]["Queue"] == "sales"
    assert await client.queue_summary("nosuchqueue") == []


async def test_queue_snapshot_asks_queue_summary_then_queue_status_of_that_queue(peer, client):
    snapshot = await client.queue_snapshot("sales")  # (d): a caller waits, the member rings
    assert (snapshot.queue, snapshot.logged_in, snapshot.available, snapshot.callers) == ("sales", 1, 0, 1)
    assert (snapshot.in_call, snapshot.paused, snapshot.in_acw) == (0, 0, 1)
    assert [(a["Action"], a.get("Queue")) for a in peer.received if a.get("Action", "").startswith("Queue")] == [
        ("QueueSummary", "sales"), ("QueueStatus", "sales")]


async def test_core_show_channels_parses_the_trace_event_list(peer, client):
    channels = await client.core_show_channels()
    assert [c["Channel"] for c in channels] == [
        "Local/agent1@agents-0000000d;2",
        "Local/agent1@agents-0000000d;1",
        "Local/human@callee-0000000c;2",
        "Local/human@callee-0000000c;1",
    ]
    attempt = "68847a01-a67e-4127-9a0b-cedbd51ccc3c"
    assert {c["Linkedid"] for c in channels} == {attempt}
    assert [attempt_id_from_uniqueid(c["Uniqueid"]) for c in channels][2:] == [attempt, attempt]
    # an empty last header survives (panoramisk alone drops it)
    assert channels[0]["AccountCode"] == "" and channels[0]["BridgeId"] == "" and channels[1]["BridgeId"]
    peer.channels_id = "csc-a"
    assert await client.core_show_channels() == []
