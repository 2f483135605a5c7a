"""The FastAGI wire format: header block, script path and query, reply lines, argument quoting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi.fastagi.errors import AGIProtocolError
from agi.fastagi.protocol import (
    HANGUP,
    HeaderBlock,
    ReplyReader,
    always_quote,
    command_line,
    parse_reply_line,
    parse_script,
    quote,
    split_command,
)

HEADER = b"""agi_network: yes
agi_network_script: outbound?campaign=1&mode=hangup-idle
agi_request: agi://127.0.0.1:4573/outbound?campaign=1&mode=hangup-idle
agi_channel: Local/hangup-early@callee-00000016;1
agi_uniqueid: c5197532-dfca-48bf-a078-20a5c493fc90
agi_calleridname: Acme Campaign
agi_accountcode: 
agi_arg_1: HUMAN
agi_arg_2: HUMAN-800-800

"""


def feed_all(data: bytes, **limits) -> HeaderBlock:
    block = HeaderBlock(**limits)
    for line in data.splitlines(keepends=True):
        if block.add(line):
            break
    return block


def test_header_block_gives_path_query_args_and_uniqueid():
    block = feed_all(HEADER)
    assert block.done
    req = block.request(("127.0.0.1", 33270))
    assert req.path == "outbound"
    assert req.query == {"campaign": "1", "mode": "hangup-idle"}
    assert req.args == ["HUMAN", "HUMAN-800-800"]
    assert req.arg(1) == "HUMAN" and req.arg(3, "none") == "none"
    assert req.uniqueid == "c5197532-dfca-48bf-a078-20a5c493fc90"
    assert req.env["agi_accountcode"] == ""  # empty values stay empty strings
    assert req.calleridname == "Acme Campaign"


def test_latin1_caller_name_is_decoded_not_fatal():
    data = HEADER.replace(b"Acme Campaign", "Jos\xe9 M\xfcller".encode("latin-1"))
    assert feed_all(data).request().calleridname == "José Müller"


def test_utf8_caller_name_is_decoded_as_utf8():
    data = HEADER.replace(b"Acme Campaign", "José Müller".encode())
    assert feed_all(data).request().calleridname == "José Müller"


def test_args_are_ordered_numerically_and_gaps_are_empty():
    block = feed_all(b"agi_network_script: x\n" + b"".join(
        f"agi_arg_{i}: a{i}\n".encode() for i in (10, 2, 1, 9)) + b"\n")
    assert block.request().args == ["a1", "a2", "", "", "", "", "", "", "a9", "a10"]


def test_agi_request_url_is_used_when_network_script_is_missing():
    req = feed_all(b"agi_request: agi://10.0.0.1:4573/fax?campaign=7\n\n").request()
    assert (req.path, req.query) == ("fax", {"campaign": "7"})


@pytest.mark.parametrize(
    "script, path, query",
    [
        ("outbound?campaign=1&mode=x", "outbound", {"campaign": "1", "mode": "x"}),
        ("outbound", "outbound", {}),
        ("/wrapup/?", "wrapup", {}),
        ("outbound?campaign=", "outbound", {"campaign": ""}),
        ("outbound?flag", "outbound", {"flag": ""}),
        ("outbound?num=+15550001111&a=b%20c", "outbound", {"num": "+15550001111", "a": "b c"}),
        ("outbound?a=1&a=2", "outbound", {"a": "2"}),
        ("", "", {}),
    ],
)
def test_parse_script(script, path, query):
    assert parse_script(script) == (path, query)


@pytest.mark.parametrize(
    "line",
    [b"garbage without colon\n", b"\x00\xff\xfe: x\n", b"agi bad key: x\n"],
)
def test_header_line_that_is_not_agi_is_a_protocol_error(line):
    with pytest.raises(AGIProtocolError):
        feed_all(b"agi_network: yes\n" + line + b"\n")


def test_header_limits():
    with pytest.raises(AGIProtocolError, match="lines"):
        feed_all(b"".join(f"agi_x{i}: y\n".encode() for i in range(10)) + b"\n", max_lines=5)
    with pytest.raises(AGIProtocolError, match="bytes"):
        feed_all(b"agi_x: " + b"y" * 500 + b"\n\n", max_bytes=100)


@pytest.mark.parametrize(
    "line, code, result, data, endpos",
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=1 (HUMAN)", 200, "1", "HUMAN", None),
        ("200 result=1 ()", 200, "1", "", None),
        ("200 result=0 endpos=3404", 200, "0", None, 3404),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=12 (timeout)", 200, "12", "timeout", None),
        ("200 result=-1", 200, "-1", None, None),
        ("200 result=49", 200, "49", None, None),
        ("200 result=1 (Local/human@callee-00000009;1|6826d07d|15550001111)", 200, "1",
         "Local/human@callee-00000009;1|6826d07d|15550001111", None),
        ("200 result=1 (a (nested) value)", 200, "1", "a (nested) value", None),
        ("200 result=1 (6|6|ANSWERED)", 200, "1", "6|6|ANSWERED", None),
        ("200 result=-1 endpos=0", 200, "-1", None, 0),
        ("510 Invalid or unknown command", 510, None, None, None),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, None, None, None),
    ],
)
def test_parse_reply_line(line, code, result, data, endpos):
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.data, reply.endpos) == (code, result, data, endpos)


@pytest.mark.parametrize("line", ["HELLO", "20", "2000 result=1", "200 nothing"])
def test_unparsable_reply_is_a_protocol_error(line):
    with pytest.raises(AGIProtocolError):
        parse_reply_line(line)


def test_reply_reader_assembles_520_usage_and_skips_100_and_reports_hangup():
    r = ReplyReader()
    out = [
        r.feed(b"100 result=0 Trying...\n"),
        r.feed(b"520-Invalid command syntax.  Proper usage follows:\n"),
        r.feed(b"Waits up to <replaceable>timeout</replaceable> milliseconds\n"),
        r.feed(b"HANGUP\n"),
        r.feed(b"more usage\n"),
        r.feed(b"520 End of proper usage.\n"),
        r.feed(b"200 result=6\n"),
    ]
    assert out[0] is None and out[1] is None and out[2] is None and out[4] is None
    assert out[3] is HANGUP
    assert out[5].code == 520
    assert out[5].usage == "Waits up to <replaceable>timeout</replaceable> milliseconds\nmore usage"
    assert out[6].code == 200 and out[6].result_int == 6


def test_single_line_520_is_a_complete_reply():
    assert ReplyReader().feed(b"520 Invalid command syntax.  Proper usage not available.\n").code == 520


def test_reply_reader_decodes_latin1_values():
    reply = ReplyReader().feed("200 result=1 (Jos\xe9)\n".encode("latin-1"))
    assert reply.data == "José"


@pytest.mark.parametrize(
    "arg, wire",
    [
        ("beep", "beep"),
        ("FAXOPT(faxdetect)", "FAXOPT(faxdetect)"),
        ("sales,,,,30", "sales,,,,30"),
        ("", '""'),
        ("caller hung up", '"caller hung up"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        (42, "42"),
    ],
)
def test_quote(arg, wire):
    assert quote(arg) == wire


def test_always_quote_matches_the_trace_style():
    assert always_quote("CALLER_HUNGUP") == '"CALLER_HUNGUP"'
    assert always_quote("") == '""'


@pytest.mark.parametrize("bad", ["a\nHANGUP", "a\rb"])
def test_line_breaks_in_arguments_are_refused(bad):
    with pytest.raises(ValueError, match="line break"):
        quote(bad)
    with pytest.raises(ValueError, match="line break"):
        always_quote(bad)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))),
                min_size=1, max_size=4))
def test_quoted_arguments_reach_asterisk_unchanged(args):
    line = command_line("SET VARIABLE", *(quote(a) for a in args)).decode("utf-8")
    assert split_command(line) == ["SET", "VARIABLE", *args]


def test_split_command_follows_res_agi_parse_args():
    assert split_command('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert split_command('VERBOSE "caller hung up" 1') == ["VERBOSE", "caller hung up", "1"]
    assert split_command(r'SET VARIABLE X "a \"b\" c"') == ["SET", "VARIABLE", "X", 'a "b" c']
    assert split_command(r"EXEC NoOp a\ b") == ["EXEC", "NoOp", "a b"]
