"""The simulator's own account of every call: what the network did and what the AGI side did.

Tests hold the product's database against it; ``max_concurrent`` and ``max_cps`` measure the
originator's line and calls-per-second limits from the outside.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.channels import Channel


@dataclass
class CallRecord:
    channel_id: str  # the Originate ChannelId (= the first leg's Uniqueid)
    number: str
    dial_string: str  # the Originate Channel as sent
    scenario: str
    network: str  # Network value
    action_id: str = ""
    originated_at: float = 0.0  # simulated epoch seconds
    answered_at: float | None = None
    ended_at: float | None = None
    reason: int | None = None  # OriginateResponse Reason
    response: str = ""  # Success | Failure
    response_first: bool = False  # its OriginateResponse went out before its channel events (faults)
    causes: dict[str, int] = field(default_factory=dict)  # channel name -> Hangup cause
    channel: str = ""  # the first leg's channel name ("" when none was created)
    variables: dict[str, str] = field(default_factory=dict)  # Originate Variable: headers
    amd: tuple[str, str] | None = None
    agi_scripts: list[str] = field(default_factory=list)  # agi_network_script of each connection
    agi_commands: list[str] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)  # EXEC <app> <args> the AGI server ran
    keys: list[str] = field(default_factory=list)  # digits delivered to the AGI server
    vars_set: dict[str, str] = field(default_factory=dict)  # SET VARIABLE by the AGI server
    bridged_to: str | None = None  # the agent's member interface when bridged
    queue_status: str | None = None
    dialplan: list[str] = field(default_factory=list)  # App(data) of every dialplan step the call ran
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.ended_at is not None

    def on_event(self, chan: Channel, event: str, fields: list[tuple[str, str]]) -> None:
        """Every event of the call's channels passes here (set by Channel.emit)."""
        f = dict(fields)
        if event == "AGIExecStart":
            cmd = f.get("Command", "")
            self.agi_commands.append(cmd)
            upper = cmd.upper()
            if upper.startswith("EXEC "):
                self.apps.append(cmd[5:])
            elif upper.startswith("SET VARIABLE "):
                name, _, value = cmd[13:].strip().partition(" ")
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                self.vars_set[name] = value
        elif event == "VarSet":
            name, value = f.get("Variable", ""), f.get("Value", "")
            if name == "AMDCAUSE" and "AMDSTATUS" in chan.variables:
                self.amd = (chan.variables["AMDSTATUS"], value)
            elif name == "QUEUESTATUS":
                self.queue_status = value
            elif name == "MEMBERINTERFACE" and value:
                self.bridged_to = value
        elif event == "Newexten":
            self.dialplan.append(f"{f.get('Application', '')}({f.get('AppData', '')})")
        elif event == "AgentConnect":
            self.bridged_to = f.get("Interface") or f.get("MemberName") or self.bridged_to or "agent"
        elif event == "Hangup":
            try:
                self.causes[chan.name] = int(f.get("Cause", "0"))
            except ValueError:
                pass

    def note(self, kind: str, value: str) -> None:
        """The AGI side records something the AMI events do not carry (keys, SET VARIABLE...)."""
        if kind == "key":
            self.keys.append(value)
        elif kind == "agi_script":
            self.agi_scripts.append(value)
        else:
            self.notes.append(f"{kind}: {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Record:
    """All calls, by ChannelId, plus concurrency and rate figures."""

    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self._live = 0
        self.max_concurrent = 0
        self._recent: deque[float] = deque()
        self.max_cps = 0
        self.originates = 0

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(list(self.calls.values()))

    def __getitem__(self, channel_id: str) -> CallRecord:
        return self.calls[channel_id]

    def get(self, channel_id: str) -> CallRecord | None:
        return self.calls.get(channel_id)

    def originate(self, rec: CallRecord) -> None:
        """An Originate was accepted (wall-clock rate: the originator paces in real time)."""
        self.originates += 1
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        self.max_cps = max(self.max_cps, len(self._recent))
        key = rec.channel_id
        if key in self.calls:  # a ChannelId reused: keep both
            key = f"{key}#{sum(1 for k in self.calls if k.split('#')[0] == rec.channel_id)}"
        self.calls[key] = rec

    def line_up(self) -> None:
        self._live += 1
        self.max_concurrent = max(self.max_concurrent, self._live)

    def line_down(self) -> None:
        self._live -= 1

    @property
    def concurrent(self) -> int:
        return self._live

    def by_number(self, number: str) -> list[CallRecord]:
        return [c for c in self.calls.values() if c.number == number]

    def find(self, **match: Any) -> list[CallRecord]:
        return [c for c in self.calls.values() if all(getattr(c, k) == v for k, v in match.items())]

    def to_jsonl(self, path: str | Path | None = None) -> str:
        text = "".join(json.dumps(c.to_dict(), sort_keys=True) + "\n" for c in self.calls.values())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text
