"""FastAGI wire format, pure: the agi_* header block, reply lines, and command quoting.

No sockets here; the channel and the server feed bytes/lines in and get values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from agi.fastagi.errors import AGIProtocolError

# Limits on what a peer may send before it is cut off (our choice; Asterisk sends ~25 lines of <200 B).
MAX_LINE = 16 * 1024  # one header line or reply line; a GET VARIABLE value must fit
MAX_HEADER_LINES = 256
MAX_HEADER_BYTES = 64 * 1024

# res_agi.c: the unsolicited line Asterisk sends when the channel hangs up.
HANGUP_LINE = "HANGUP"


def decode(raw: bytes) -> str:
    """UTF-8 if it is UTF-8, else Latin-1 (which never fails): Asterisk passes bytes through as is."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _strip_eol(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


# ---------------------------------------------------------------------------------------------
# The request: header block, script path, query, arguments

_KEY_RE = re.compile(rb"[A-Za-z0-9_]+\Z")


@dataclass
class AGIRequest:
    """What Asterisk told us when it connected: the agi_* variables, parsed."""

    env: dict[str, str]
    path: str  # script path without slashes or query: "outbound"
    query: dict[str, str]  # "campaign=1&mode=x" -> {"campaign": "1", "mode": "x"}
    args: list[str]  # agi_arg_1 .. agi_arg_N, in order
    peer: tuple | None = None  # (host, port) of the Asterisk that connected

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def script(self) -> str:
        """The raw agi_network_script (path and query)."""
        return self.env.get("agi_network_script", "")

    @property
    def extension(self) -> str:
        return self.env.get("agi_extension", "")

    @property
    def context(self) -> str:
        return self.env.get("agi_context", "")

    @property
    def callerid(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def calleridname(self) -> str:
        return self.env.get("agi_calleridname", "")

    def arg(self, n: int, default: str = "") -> str:
        """agi_arg_<n> (1-based, like the dialplan), or ``default`` if absent or empty."""
        if 1 <= n <= len(self.args) and self.args[n - 1] != "":
            return self.args[n - 1]
        return default


def parse_script(script: str) -> tuple[str, dict[str, str]]:
    """'outbound?campaign=1&mode=x' -> ('outbound', {'campaign': '1', 'mode': 'x'}).

    %XX is decoded, '+' is kept (a phone number may carry it); a repeated key keeps the last value.
    """
    path, _, qs = script.partition("?")
    query: dict[str, str] = {}
    for part in qs.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        query[unquote(key)] = unquote(value)
    return path.strip("/"), query


class HeaderBlock:
    """Accumulates the agi_* lines up to the blank line, enforcing size limits."""

    def __init__(self, max_lines: int = MAX_HEADER_LINES, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.env: dict[str, str] = {}
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines = 0
        self._bytes = 0
        self.done = False

    def add(self, raw: bytes) -> bool:
        """Feed one raw line (with its LF); True once the blank line that ends the block is seen."""
        self._lines += 1
        self._bytes += len(raw)
        if self._lines > self.max_lines + 1:
            raise AGIProtocolError(f"header block has more than {self.max_lines} lines")
        if self._bytes > self.max_bytes:
            raise AGIProtocolError(f"header block is larger than {self.max_bytes} bytes")
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            self.done = True
            return True
        key, sep, value = line.partition(b":")
        if not sep or not _KEY_RE.match(key):
            raise AGIProtocolError(f"not an agi_* header line: {decode(line[:60])!r}")
        self.env[key.decode("ascii")] = decode(value[1:] if value[:1] == b" " else value)
        return False

    def request(self, peer: tuple | None = None) -> AGIRequest:
        return build_request(self.env, peer)


def build_request(env: dict[str, str], peer: tuple | None = None) -> AGIRequest:
    """The request from a complete agi_* dict (agi_network_script, or agi_request as a fallback)."""
    script = env.get("agi_network_script")
    if script is None:
        # agi_request is the full URL: agi://host:port/path?query
        url = env.get("agi_request", "")
        script = url.split("://", 1)[1].partition("/")[2] if "://" in url else url
    path, query = parse_script(script)
    numbered: dict[int, str] = {}
    for key, value in env.items():
        if key.startswith("agi_arg_") and key[8:].isdigit():
            numbered[int(key[8:])] = value
    args = [numbered.get(i, "") for i in range(1, max(numbered, default=0) + 1)]
    return AGIRequest(env=env, path=path, query=query, args=args, peer=peer)


# ---------------------------------------------------------------------------------------------
# Replies

@dataclass
class Reply:
    """One complete reply to one command."""

    code: int  # 200, 510, 511, 520, ...
    text: str  # the reply line as received (first line for 520)
    result: str | None = None  # "result=" value for 200: "1", "-1", "" (GET DATA timeout), digits
    data: str | None = None  # the "(...)" part: a variable's value, "timeout"
    endpos: int | None = None
    usage: str = ""  # 520: the usage text between the first and the last line
    extra: dict[str, str] = field(default_factory=dict)  # other key=value after the data

    @property
    def result_int(self) -> int:
        """The result as an int; AGIProtocolError if it is not one."""
        try:
            return int(self.result or "")
        except ValueError:
            raise AGIProtocolError(f"expected a numeric result, got {self.text!r}") from None


class Hangup:
    """Marker for the unsolicited HANGUP line (a singleton: ``HANGUP``)."""

    def __repr__(self) -> str:
        return "HANGUP"


HANGUP = Hangup()

_RESULT_RE = re.compile(r"200 result=(\S*)(.*)\Z", re.S)
_KV_RE = re.compile(r"(\w+)=(\S*)")


def parse_reply_line(line: str) -> Reply:
    """One single-line reply ('200 result=1 (x) endpos=5', '510 ...', '511 ...') -> Reply."""
    code_text = line[:3]
    if len(line) < 3 or not code_text.isdigit() or (len(line) > 3 and line[3] not in " -"):
        raise AGIProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(code_text)
    if code != 200:
        return Reply(code=code, text=line)
    m = _RESULT_RE.match(line)
    if not m:
        raise AGIProtocolError(f"200 reply without result=: {line[:80]!r}")
    result, rest = m.group(1), m.group(2).strip()
    data = None
    if rest.startswith("("):
        close = rest.rfind(")")
        if close < 0:
            raise AGIProtocolError(f"unclosed '(' in reply: {line[:80]!r}")
        data, rest = rest[1:close], rest[close + 1 :]
    extra = dict(_KV_RE.findall(rest))
    endpos = extra.pop("endpos", None)
    try:
        endpos_int = int(endpos) if endpos is not None else None
    except ValueError:
        endpos_int = None
    return Reply(code=200, text=line, result=result, data=data, endpos=endpos_int, extra=extra)


class ReplyReader:
    """Turns the lines Asterisk sends into replies and HANGUP markers.

    ``feed(line)`` returns a Reply, ``HANGUP``, or None (line consumed: ``100 Trying``, or a
    line inside a multi-line ``520-`` usage block).
    """

    def __init__(self) -> None:
        self._usage: list[str] | None = None
        self._first = ""

    def feed(self, raw: bytes | str) -> Reply | Hangup | None:
        line = decode(_strip_eol(raw)) if isinstance(raw, bytes) else raw.rstrip("\r\n")
        if line == HANGUP_LINE:
            return HANGUP  # out of band, even inside a usage block
        if self._usage is not None:
            if line.startswith("520 "):
                usage, self._usage = "\n".join(self._usage), None
                return Reply(code=520, text=self._first, usage=usage)
            self._usage.append(line)
            return None
        if line.startswith("520-"):
            self._usage, self._first = [], line
            return None
        if line.startswith("100 ") or line == "100":
            return None  # "100 result=0 Trying..." precedes the real reply
        if not line.strip():
            return None  # stray blank line: nothing to pair
        return parse_reply_line(line)


# ---------------------------------------------------------------------------------------------
# Commands

_NEEDS_QUOTES = re.compile(r'[\s"\\]')


def quote(arg: object) -> str:
    """An argument as res_agi's parse_args reads it: bare if plain, else "..." with \\ and " escaped.

    Empty becomes "" (an empty argument, not a missing one). CR/LF would end the command early
    and smuggle in another: refused.
    """
    text = str(arg)
    if "\n" in text or "\r" in text:
        raise ValueError(f"AGI argument contains a line break: {text[:40]!r}")
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return always_quote(text)


def always_quote(arg: object) -> str:
    """Always "..." (pyst2 quotes these: SET VARIABLE value, VERBOSE message, escape digits)."""
    text = str(arg)
    if "\n" in text or "\r" in text:
        raise ValueError(f"AGI argument contains a line break: {text[:40]!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_command(line: str) -> list[str]:
    """A command line split as res_agi.c parse_args does: blanks split, "..." groups, \\ escapes.

    The inverse of ``quote`` (for the simulator's Asterisk side and for tests).
    """
    words: list[str] = []
    cur: list[str] = []
    quoted = escaped = started = False
    for ch in line.rstrip("\r\n"):
        if escaped:
            cur.append(ch)
            escaped, started = False, True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if started:
                words.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        words.append("".join(cur))
    return words


def command_line(command: str, *args: str) -> bytes:
    """'GET DATA', 'beep', '3000', '1' -> b'GET DATA beep 3000 1\\n' (args already quoted)."""
    line = " ".join([command, *args]) if args else command
    return (line + "\n").encode("utf-8")
