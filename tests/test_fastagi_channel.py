"""The channel API over real TCP against a scripted Asterisk: timeouts, hang-up rules, the menu helper."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agi.fastagi import (
    AGIAppError,
    AGIChannel,
    AGIHangup,
    AGIProtocolError,
    AGIResultHangup,
    AGITimeout,
    DTMF_KEYS,
    MenuResult,
    Timeouts,
)
from agi.fastagi.transport import open_channel
from agi.outcomes import Disposition

Respond = Callable[[str], object]  # command -> list of lines (or a coroutine giving them)


class Peer:
    """A scripted Asterisk on a real socket: answers each command with ``respond(command)``."""

    def __init__(self, respond: Respond, first: list[str] | None = None) -> None:
        self.respond = respond
        self.first = first or []
        self.commands: list[str] = []
        self.done = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write("".join(line + "\n" for line in self.first).encode())
        try:
            while line := await reader.readline():
                command = line.decode().rstrip("\n")
                self.commands.append(command)
                lines = self.respond(command)
                if asyncio.iscoroutine(lines):
                    lines = await lines
                if lines is None:  # close the socket (AGIEXITONHANGUP)
                    break
                writer.write("".join(x + "\n" for x in lines).encode())
        finally:
            writer.close()
            self.done.set()

    async def channel(self, timeouts: Timeouts | None = None) -> AGIChannel:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return await open_channel("127.0.0.1", port, timeouts=timeouts, label="test")

    async def close(self, ch: AGIChannel) -> None:
        ch.abort()
        self.server.close()


def replies(*lines: str | list[str]) -> Respond:
    """Answer the n-th command with the n-th item (a line or a list of lines)."""
    queue = [[x] if isinstance(x, str) else x for x in lines]
    return lambda command: queue.pop(0)


async def test_a_timed_out_command_never_steals_the_next_reply():
    async def respond(command: str) -> list[str]:
        if command == "GET VARIABLE SLOW":
            await asyncio.sleep(0.3)
            return ["200 result=1 (slow)"]
        return [f"200 result=1 ({command.split()[-1].lower()})"]

    peer = Peer(respond)
    ch = await peer.channel(Timeouts(quick=0.1))
    with pytest.raises(AGITimeout, match="GET VARIABLE"):
        await ch.get_variable("SLOW")
    assert await ch.get_variable("NEXT", timeout=2) == "next"  # the late '(slow)' reply is dropped
    assert await ch.get_variable("THIRD", timeout=2) == "third"
    await peer.close(ch)


async def test_each_command_waits_as_long_as_its_kind_needs():
    async def respond(command: str) -> list[str]:
        await asyncio.sleep(0.3)  # Asterisk busy: a bridged call, a long prompt
        return ["200 result=0"]

    peer = Peer(respond)
    ch = await peer.channel(Timeouts(quick=0.1, exec=5.0, media=5.0, input_grace=0.1))
    assert await ch.exec("Queue", "sales", "", "", "", 30) == 0
    assert await ch.stream_file("hello-world") is None
    assert await ch.wait_for_digit(500) is None  # 0.5 s listening + 0.1 s grace
    with pytest.raises(AGITimeout):
        await ch.get_variable("QUEUESTATUS")  # a quick command may not take 0.3 s
    await peer.close(ch)


async def test_raw_lines_after_hangup_follow_the_dead_channel_rules():
    peer = Peer(replies(["200 result=1", "HANGUP"], "200 result=0"))
    ch = await peer.channel()
    await ch.execute("NOOP")
    await asyncio.wait_for(ch.wait_hangup(), 2)
    assert (await ch.execute("EXEC NoOp after-hangup")).result == "0"
    with pytest.raises(AGIHangup):
        await ch.execute("SAY DIGITS 123 \"\"")
    assert peer.commands == ["NOOP", "EXEC NoOp after-hangup"]
    await peer.close(ch)


@pytest.mark.parametrize(
    "call",
    [
        lambda ch: ch.answer(),
        lambda ch: ch.stream_file("beep"),
        lambda ch: ch.get_data("beep", 3000, 1),
        lambda ch: ch.wait_for_digit(1000),
        lambda ch: ch.say_digits("123"),
    ],
    ids=["answer", "stream_file", "get_data", "wait_for_digit", "say_digits"],
)
async def test_result_minus_one_of_a_media_command_is_a_hangup(call):
    peer = Peer(replies("200 result=-1"))
    ch = await peer.channel()
    with pytest.raises(AGIResultHangup):
        await call(ch)
    await peer.close(ch)


async def test_exec_minus_one_is_a_result_not_a_hangup_and_minus_two_is_a_missing_app():
    peer = Peer(replies("200 result=-1", "200 result=-2", "200 result=0"))
    ch = await peer.channel()
    assert await ch.exec("Dial", "Local/agent@agents", 20) == -1
    assert not ch.hung_up
    with pytest.raises(AGIAppError, match="no such application"):
        await ch.exec("NoSuchApplication", "foo")
    assert await ch.exec("Queue", "sales", "", "", "", 30) == 0
    assert peer.commands == ["EXEC Dial Local/agent@agents,20", "EXEC NoSuchApplication foo", "EXEC Queue sales,,,,30"]
    await peer.close(ch)


async def test_exec_arguments_with_spaces_are_quoted():
    peer = Peer(replies("200 result=0"))
    ch = await peer.channel()
    await ch.exec("NoOp", 'a "quoted" word')
    assert peer.commands == [r'EXEC NoOp "a \"quoted\" word"']
    await peer.close(ch)


async def test_unsolicited_hangup_between_commands_is_seen_and_media_is_refused_without_writing():
    peer = Peer(replies(["200 result=1 (HUMAN)", "HANGUP"], "200 result=1"))
    ch = await peer.channel()
    assert await ch.get_variable("AMDSTATUS") == "HUMAN"
    await asyncio.wait_for(ch.wait_hangup(), 2)
    assert ch.hung_up
    with pytest.raises(AGIHangup):
        await ch.stream_file("beep")
    await ch.set_variable("RESULT", "CALLER_HUNGUP")  # bookkeeping still works
    await ch.hangup()  # nothing to do
    assert peer.commands == ["GET VARIABLE AMDSTATUS", 'SET VARIABLE RESULT "CALLER_HUNGUP"']
    await peer.close(ch)


async def test_511_marks_the_channel_hung_up():
    peer = Peer(replies("511 Command Not Permitted on a dead channel or intercept routine"))
    ch = await peer.channel()
    with pytest.raises(AGIHangup):
        await ch.channel_status()
    assert ch.hung_up
    await peer.close(ch)


async def test_hangup_is_sent_once():
    peer = Peer(replies("200 result=1"))
    ch = await peer.channel()
    await ch.hangup()
    await ch.hangup()
    assert peer.commands == ["HANGUP"] and ch.hung_up
    await peer.close(ch)


async def test_a_garbage_reply_drops_the_session_instead_of_guessing():
    peer = Peer(replies("this is not AGI"))
    ch = await peer.channel()
    with pytest.raises(AGIProtocolError):
        await ch.get_variable("X")
    with pytest.raises(AGIProtocolError):
        await ch.get_variable("Y")
    await peer.close(ch)


async def test_a_stray_reply_with_no_command_waiting_is_ignored():
    peer = Peer(lambda c: ["200 result=1 (mine)"], first=["200 result=1 (stray)"])
    ch = await peer.channel()
    await asyncio.sleep(0.05)  # let the stray line arrive first
    assert await ch.get_variable("X") == "mine"
    await peer.close(ch)


async def test_concurrent_commands_are_serialised_and_each_gets_its_own_reply():
    peer = Peer(lambda c: [f"200 result=1 ({c.split()[-1]})"])
    ch = await peer.channel()
    names = [f"V{i}" for i in range(20)]
    assert await asyncio.gather(*(ch.get_variable(n) for n in names)) == names
    await peer.close(ch)


async def test_connection_closed_mid_command_raises_a_hangup():
    peer = Peer(lambda c: None)  # closes on the first command, like AGIEXITONHANGUP
    ch = await peer.channel()
    with pytest.raises(AGIHangup):
        await ch.wait_for_digit(1000)
    assert ch.closed and ch.hung_up
    await peer.close(ch)


ESC = f'"{DTMF_KEYS}"'
GONE = ["200 result=-1", "HANGUP"]  # a blocking command when the person hangs up (traces)


@pytest.mark.parametrize(
    "lines, expected, commands",
    [
        # key pressed during the prompt
        (["200 result=49 endpos=100"], MenuResult("1", "1", None), [f"STREAM FILE msg {ESC}"]),
        # key pressed after the prompt, while still listening
        (["200 result=0 endpos=3404", "200 result=50"], MenuResult("2", "2", None),
         [f"STREAM FILE msg {ESC}", "WAIT FOR DIGIT 4000"]),
        # silence on every try
        (["200 result=0", "200 result=0"] * 2, MenuResult(None, "", Disposition.NO_KEY),
         [f"STREAM FILE msg {ESC}", "WAIT FOR DIGIT 4000"] * 2),
        # an invalid key, the invalid prompt, then a valid key on the replay: both keys recorded
        (["200 result=55", "200 result=0", "200 result=0", "200 result=57"], MenuResult("9", "79", None),
         [f"STREAM FILE msg {ESC}", f"STREAM FILE invalid {ESC}", f"STREAM FILE msg {ESC}", "WAIT FOR DIGIT 4000"]),
        # only invalid keys: the keys pressed are recorded
        (["200 result=55", "200 result=0", "200 result=0", "200 result=56"],
         MenuResult(None, "78", Disposition.WRONG_KEY),
         [f"STREAM FILE msg {ESC}", f"STREAM FILE invalid {ESC}", f"STREAM FILE msg {ESC}", "WAIT FOR DIGIT 4000"]),
        # a key pressed during the invalid-key prompt answers the next try
        (["200 result=55", "200 result=49"], MenuResult("1", "71", None),
         [f"STREAM FILE msg {ESC}", f"STREAM FILE invalid {ESC}"]),
    ],
    ids=["during-prompt", "after-prompt", "no-key", "invalid-then-valid", "wrong-key", "key-during-invalid-prompt"],
)
async def test_menu(lines, expected, commands):
    peer = Peer(replies(*lines))
    ch = await peer.channel()
    assert await ch.menu("msg", keys="1239", tries=2, timeout=4, invalid_file="invalid") == expected
    assert peer.commands == commands
    await peer.close(ch)


# docs/outcomes.md "Live-answer outcomes": a hang-up during the menu (keys 1 and 2 on offer, 3 tries) still
# says what the person did by then. moment -> (prompt files, replies in order, what the menu returns)
MENU_HANGUPS = {
    "during_the_first_play": (["msg"], [GONE], MenuResult(None, "", None, hung_up=True)),
    "during_the_first_play_of_its_second_file": (["intro", "options"], ["200 result=0", GONE],
                                                 MenuResult(None, "", None, hung_up=True)),
    "after_the_first_play_before_a_key": (["msg"], ["200 result=0", GONE],
                                          MenuResult(None, "", Disposition.NO_KEY, hung_up=True)),
    "during_the_second_play": (["msg"], ["200 result=0", "200 result=0", GONE],
                               MenuResult(None, "", Disposition.NO_KEY, hung_up=True)),
    "after_the_second_play": (["msg"], ["200 result=0", "200 result=0", "200 result=0", GONE],
                              MenuResult(None, "", Disposition.NO_KEY, hung_up=True)),
    "after_a_wrong_key": (["msg"], ["200 result=55", GONE],
                          MenuResult(None, "7", Disposition.WRONG_KEY, hung_up=True)),
    "after_a_wrong_key_that_cut_the_first_play": (["intro", "options"], ["200 result=0", "200 result=55", GONE],
                                                  MenuResult(None, "7", Disposition.WRONG_KEY, hung_up=True)),
}


@pytest.mark.parametrize("moment", sorted(MENU_HANGUPS))
async def test_menu_hung_up_says_what_the_person_did(moment):
    files, lines, expected = MENU_HANGUPS[moment]
    peer = Peer(replies(*lines))
    ch = await peer.channel()
    assert await ch.menu(files, keys="12", tries=3, timeout=5) == expected
    assert ch.hung_up
    await peer.close(ch)


async def test_menu_plays_several_files_and_a_hangup_in_the_second_is_the_first_play():
    peer = Peer(replies("200 result=0", GONE))
    ch = await peer.channel()
    assert await ch.menu(["intro", "options"], keys="12", tries=3, timeout=5) == MenuResult(None, "", None, True)
    assert peer.commands == [f"STREAM FILE intro {ESC}", f"STREAM FILE options {ESC}"]
    await peer.close(ch)
