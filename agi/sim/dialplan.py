"""The dialplan the simulator runs after answer, read from extensions.conf syntax.

``PROJECT_DIALPLAN`` is dialplan/dialer.conf itself, the file a telephony engineer includes
(packaged as agi/sim/dialer.conf, a link to it, so an installed ``dialer sim`` runs it too);
``Dialplan.parse`` also reads the capture rig's dialplan from a trace header, so trace tests run
the very steps the real Asterisk ran. ``${DIALER_AGI}`` defaults to the simulator's --agi host:port
unless the Originate sets the channel variable ``__DIALER_AGI``. The interpreter is agi.sim.pbx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    app: str
    args: str
    label: str | None = None


@dataclass
class Dialplan:
    """context -> exten -> steps (priority order), plus [globals]."""

    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Dialplan:
        dp = cls()
        context: str | None = None
        last: tuple[str, int] | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            m = re.fullmatch(r"\[([^\]]+)\]\s*(\(.*\))?", line)
            if m:
                context = m.group(1).strip()
                last = None
                if context != "globals":
                    dp.contexts.setdefault(context, {})
                continue
            if context is None:
                raise ValueError(f"line {lineno}: {raw.strip()!r} is outside any [context]")
            if context == "globals":
                k, _, v = line.partition("=")
                dp.globals[k.strip()] = v.strip()
                continue
            m = re.fullmatch(r"(exten|same)\s*=>?\s*(.*)", line)
            if not m:
                if re.match(r"(include|switch|ignorepat)\s*=>", line):
                    continue
                raise ValueError(f"line {lineno}: cannot parse {raw.strip()!r}")
            kind, rest = m.groups()
            if kind == "exten":
                exten, _, rest = rest.partition(",")
                exten = exten.strip()
            else:
                if last is None:
                    raise ValueError(f"line {lineno}: 'same =>' without a preceding 'exten =>'")
                exten = last[0]
            prio_s, _, appcall = rest.partition(",")
            prio_s = prio_s.strip()
            label = None
            lm = re.fullmatch(r"([^(]+)\((\w+)\)", prio_s)
            if lm:
                prio_s, label = lm.group(1), lm.group(2)
            if prio_s == "hint":
                continue
            if prio_s == "n":
                if last is None or last[0] != exten:
                    raise ValueError(f"line {lineno}: priority 'n' without a previous priority")
                prio = last[1] + 1
            else:
                prio = int(prio_s)
            app, args = split_app(appcall.strip())
            dp.contexts[context].setdefault(exten, []).append(Step(context, exten, prio, app, args, label))
            last = (exten, prio)
        return dp

    @classmethod
    def from_trace_header(cls, header_lines: list[str]) -> Dialplan:
        """The '#   ...' dialplan lines of a trace header (after '# Dialplan')."""
        out, on = [], False
        for h in header_lines:
            body = h[1:] if h.startswith("#") else h
            if body.strip().startswith("Dialplan"):
                on = True
                continue
            if on:
                if not body.startswith("   "):
                    if body.strip().startswith("[") or body.strip().startswith(("exten", "same")):
                        pass
                    else:
                        on = False
                        continue
                out.append(body.strip())
        return cls.parse("\n".join(out))

    def steps(self) -> list[Step]:
        return [s for ctx in self.contexts.values() for steps in ctx.values() for s in steps]

    def find(self, context: str, exten: str, priority: int) -> Step | None:
        for s in self.contexts.get(context, {}).get(exten, []):
            if s.priority == priority:
                return s
        return None

    def label(self, context: str, exten: str, label: str) -> int | None:
        for s in self.contexts.get(context, {}).get(exten, []):
            if s.label == label:
                return s.priority
        return None

    def has(self, context: str, exten: str) -> bool:
        return exten in self.contexts.get(context, {})


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if c == ";":
            break
        out.append(c)
        i += 1
    return "".join(out)


def split_app(call: str) -> tuple[str, str]:
    m = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", call, re.S)
    if not m:
        raise ValueError(f"cannot parse application call {call!r}")
    return m.group(1), m.group(2) or ""


def split_args(s: str, sep: str = ",") -> list[str]:
    """Split application arguments on ``sep`` outside parentheses, brackets and quotes."""
    out, cur, depth, quote = [], [], 0, False
    for c in s:
        if c == '"':
            quote = not quote
        elif not quote and c in "([{":
            depth += 1
        elif not quote and c in ")]}":
            depth -= 1
        if c == sep and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur))
    return out


def agi_args_of(url: str) -> tuple[str, str, int, str]:
    """agi://host[:port]/script?query -> (host, script-with-query, port, url)."""
    m = re.fullmatch(r"agi://([^/:]+)(?::(\d+))?/?(.*)", url)
    if not m:
        raise ValueError(f"not a FastAGI URL: {url!r}")
    return m.group(1), m.group(3), int(m.group(2) or 4573), url


# dialplan/dialer.conf, the file users include (agi/sim/dialer.conf links to it)
PROJECT_DIALPLAN_TEXT = (resources.files("agi.sim") / "dialer.conf").read_text(encoding="utf-8")
PROJECT_DIALPLAN = Dialplan.parse(PROJECT_DIALPLAN_TEXT)
