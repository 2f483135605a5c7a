"""The FastAGI server's edges over real TCP: bad peers are cut off while healthy calls carry on.

Each malformed-input test keeps the bad connection open (or just closed) while a healthy
session runs to completion on the same server.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from agi.fastagi import AGICall, FastAGIServer, Router

UID = "c5197532-dfca-48bf-a078-20a5c493fc90"


def header(script: str = "echo?campaign=1", uniqueid: str = UID, name: bytes = b"Acme Campaign",
           args: tuple[str, ...] = ("HUMAN", "HUMAN-800-800")) -> bytes:
    lines = [
        b"agi_network: yes",
        b"agi_network_script: " + script.encode(),
        b"agi_request: agi://127.0.0.1:4573/" + script.encode(),
        b"agi_channel: Local/human@callee-00000009;1",
        b"agi_uniqueid: " + uniqueid.encode(),
        b"agi_callerid: 15550001111",
        b"agi_calleridname: " + name,
        *(f"agi_arg_{i}: {a}".encode() for i, a in enumerate(args, 1)),
        b"",
    ]
    return b"\n".join(lines) + b"\n"


def default_respond(command: str) -> list[str]:
    if command.startswith("GET VARIABLE"):
        return [f"200 result=1 ({command.split()[-1].lower()})"]
    return ["200 result=1" if command == "HANGUP" else "200 result=0"]


async def asterisk(port: int, script: str = "echo?campaign=1", *, uniqueid: str = UID, name: bytes = b"Acme",
                   respond=default_respond, local_addr=None) -> list[str]:
    """A well-behaved Asterisk: header block, a reply per command, HANGUP and close on our EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local_addr)
    writer.write(header(script, uniqueid, name))
    commands: list[str] = []
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            command = line.decode().rstrip("\n")
            commands.append(command)
            replies = respond(command)
            if asyncio.iscoroutine(replies):
                replies = await replies
            writer.write("".join(r + "\n" for r in replies).encode())
        writer.write(b"HANGUP\n")
    finally:
        writer.close()
    return commands


class Flows:
    """An 'echo' flow that records what it saw, and a 'hold' flow that waits for a signal."""

    def __init__(self) -> None:
        self.seen: dict[str, dict] = {}
        self.release = asyncio.Event()
        self.holding = 0

    async def echo(self, call: AGICall) -> None:
        await call.answer()
        value = await call.get_variable("AMDSTATUS")
        await call.set_variable("CAMPAIGN_RESULT", "HUMAN")
        self.seen[call.uniqueid] = {
            "value": value, "name": call.request.calleridname, "query": call.query, "args": call.args,
        }
        await call.hangup()

    async def hold(self, call: AGICall) -> None:
        self.holding += 1
        await self.release.wait()
        await self.echo(call)

    def router(self) -> Router:
        return Router({"echo": self.echo, "hold": self.hold})


ECHO_COMMANDS = ["ANSWER", "GET VARIABLE AMDSTATUS", 'SET VARIABLE CAMPAIGN_RESULT "HUMAN"', "HANGUP"]


@pytest.fixture
async def flows():
    return Flows()


@pytest.fixture
async def server(flows):
    srv = FastAGIServer(flows.router(), port=0, header_timeout=0.5, linger=0.5)
    await srv.start()
    yield srv
    await srv.shutdown(deadline=1)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (EOF or reset)."""
    try:
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
    except (ConnectionError, OSError):
        pass
    return True


async def test_healthy_session_runs_the_routed_flow(server, flows):
    assert await asterisk(server.port) == ECHO_COMMANDS
    seen = flows.seen[UID]
    assert seen == {"value": "amdstatus", "name": "Acme", "query": {"campaign": "1"}, "args": ["HUMAN", "HUMAN-800-800"]}
    assert server.stats["completed"] == 1


async def test_eof_before_the_blank_line_closes_that_session_only(server, flows):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(header()[:60])  # a few lines, no blank line
    writer.write_eof()
    assert await asterisk(server.port, uniqueid="healthy") == ECHO_COMMANDS
    assert await closed_by_server(reader)
    writer.close()
    assert server.stats["bad_header"] == 1 and flows.seen["healthy"]["value"] == "amdstatus"


async def test_one_megabyte_line_is_cut_off(server, flows):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"agi_network: " + b"x" * 1_000_000 + b"\n\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server may already have cut us off
    assert await asterisk(server.port, uniqueid="healthy") == ECHO_COMMANDS
    assert await closed_by_server(reader)
    writer.close()
    assert server.stats["bad_header"] == 1 and "healthy" in flows.seen


async def test_garbage_bytes_close_that_session_only(server, flows):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef\n")  # a TLS hello, say
    assert await asterisk(server.port, uniqueid="healthy") == ECHO_COMMANDS
    assert await closed_by_server(reader)
    writer.close()
    assert server.stats["bad_header"] == 1 and "healthy" in flows.seen


async def test_header_without_script_is_refused(server, flows):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n\n")
    assert await closed_by_server(reader)
    writer.close()
    assert server.stats["bad_header"] == 1 and not flows.seen


async def test_non_utf8_caller_name_session_works_and_the_name_is_decoded(server, flows):
    latin1 = asterisk(server.port, uniqueid="latin1", name="José Müller".encode("latin-1"))
    healthy = asterisk(server.port, uniqueid="healthy")
    assert await asyncio.gather(latin1, healthy) == [ECHO_COMMANDS, ECHO_COMMANDS]
    assert flows.seen["latin1"]["name"] == "José Müller"


async def test_silent_peer_is_closed_after_the_header_deadline(server, flows):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asterisk(server.port, uniqueid="healthy") == ECHO_COMMANDS
    assert await closed_by_server(reader)  # header_timeout=0.5 s
    writer.close()
    assert server.stats["header_timeout"] == 1 and "healthy" in flows.seen


async def test_peer_not_on_the_allow_list_is_closed_at_once(flows, caplog):
    srv = FastAGIServer(flows.router(), port=0, allow=("127.0.0.1",))
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, local_addr=("127.0.0.2", 0))
        writer.write(header(uniqueid="stranger"))
        healthy = await asterisk(srv.port, uniqueid="healthy")
        assert await closed_by_server(reader)
        writer.close()
    finally:
        await srv.shutdown(1)
    assert healthy == ECHO_COMMANDS
    assert "stranger" not in flows.seen and srv.stats["refused_peer"] == 1
    assert "127.0.0.2" in caplog.text and "allow-list" in caplog.text


async def test_allow_list_accepts_networks():
    srv = FastAGIServer(Router(), allow=("10.0.0.0/8", "::1"))
    assert srv._allowed("10.1.2.3") and srv._allowed("::1") and srv._allowed("::ffff:10.0.0.1")
    assert not srv._allowed("192.168.1.1") and not srv._allowed("127.0.0.1")
    with pytest.raises(ValueError, match="bad allow-list entry"):
        FastAGIServer(Router(), allow=("not-an-address",))


async def test_connections_beyond_max_sessions_are_closed_and_the_others_finish(flows, caplog):
    srv = FastAGIServer(flows.router(), port=0, max_sessions=2)
    await srv.start()
    try:
        held = [asyncio.create_task(asterisk(srv.port, "hold", uniqueid=f"held{i}")) for i in range(2)]
        while flows.holding < 2:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(header(uniqueid="extra"))
        assert await closed_by_server(reader)
        writer.close()
        flows.release.set()
        assert await asyncio.gather(*held) == [ECHO_COMMANDS, ECHO_COMMANDS]
    finally:
        await srv.shutdown(1)
    assert srv.stats["refused_busy"] == 1 and "extra" not in flows.seen
    assert "max-sessions" in caplog.text


async def test_unknown_script_path_gets_the_polite_default_flow(server, caplog):
    commands = await asterisk(server.port, "nosuchflow?x=1")
    assert commands == ['VERBOSE "dialer: no flow for AGI script \'nosuchflow\'; hanging up" 1', "HANGUP"]
    assert "no flow for AGI script path 'nosuchflow'" in caplog.text
    assert server.stats["completed"] == 1


async def test_a_failing_flow_is_logged_with_its_uniqueid_and_the_server_keeps_serving(flows, caplog):
    async def broken(call: AGICall) -> None:
        await call.answer()
        raise RuntimeError("bug in a flow")

    router = flows.router()
    router.add("broken", broken)
    async with FastAGIServer(router, port=0, linger=0.5) as srv:
        assert await asterisk(srv.port, "broken", uniqueid="u-broken") == ["ANSWER"]
        assert await asterisk(srv.port, uniqueid="healthy") == ECHO_COMMANDS
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failed and "u-broken" in failed[0].getMessage() and "bug in a flow" in caplog.text


async def test_graceful_shutdown_lets_the_call_in_progress_finish_and_refuses_new_ones(flows):
    srv = FastAGIServer(flows.router(), port=0, linger=0.5)
    await srv.start()
    port = srv.port
    call = asyncio.create_task(asterisk(port, "hold", uniqueid="in-progress"))
    while flows.holding < 1:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(srv.shutdown(deadline=10))
    await asyncio.sleep(0.05)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    assert not stopping.done()
    flows.release.set()
    assert await call == ECHO_COMMANDS
    await asyncio.wait_for(stopping, 5)
    assert srv.stats["completed"] == 1 and srv.sessions == 0


async def test_shutdown_deadline_closes_sessions_still_running(flows):
    srv = FastAGIServer(flows.router(), port=0)
    await srv.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(header("hold", uniqueid="stuck"))
    while flows.holding < 1:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(srv.shutdown(deadline=0.2), 5)
    assert await closed_by_server(reader)
    writer.close()
    assert srv.stats["cancelled"] == 1 and srv.sessions == 0
