"""Parse the raw Asterisk transcripts in tests/traces/ (see its INDEX.txt).

A trace is a '#' header ending in '# ----', then lines '<seconds> <dir> <raw line>' with dir '<'
(sent by Asterisk), '>' (sent by our side) or '#' (a note). FastAGI traces may hold several
connections, each starting with a '# === FastAGI connection ... ===' line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"^\s*(\d+\.\d+) ([<>#])(?: (.*))?$")


@dataclass
class Trace:
    path: Path
    header: dict[str, str] = field(default_factory=dict)  # 'Scenario', 'Originate', 'Observed', ...
    header_lines: list[str] = field(default_factory=list)
    lines: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds, dir, raw line)
    connections: list[list[tuple[float, str, str]]] = field(default_factory=list)  # FastAGI only

    @property
    def originate(self) -> dict[str, str]:
        """'Channel=... Context=... Variables=A=1,B=2' of the header as a dict."""
        out: dict[str, str] = {}
        for part in self.header.get("Originate", "").split(" "):
            key, _, value = part.partition("=")
            if key:
                out[key] = value
        return out


def parse(path: str | Path) -> Trace:
    path = Path(path)
    trace = Trace(path)
    in_header = True
    current: list[tuple[float, str, str]] | None = None
    for raw in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if in_header:
            if raw.startswith("# ----"):
                in_header = False
                continue
            text = raw[2:] if raw.startswith("# ") else raw.lstrip("#")
            trace.header_lines.append(text)
            key, sep, value = text.partition(": ")
            if sep and key and " " not in key.strip() and key not in trace.header:
                trace.header[key.strip()] = value
            continue
        if raw.startswith("# === FastAGI connection"):
            current = []
            trace.connections.append(current)
            continue
        m = _LINE.match(raw)
        if not m:
            continue
        entry = (float(m.group(1)), m.group(2), m.group(3) or "")
        trace.lines.append(entry)
        if current is not None:
            current.append(entry)
    if not trace.connections and trace.lines:
        trace.connections.append(list(trace.lines))
    return trace
