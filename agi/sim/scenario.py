"""One dialed number's fate: what the network does (answer, busy, ...), the ring time, what AMD()
decides, fax, and the person's behaviour (``callee``: keys, hang-up timing, given to
agi.sim.callee.Callee); the named scenarios every trace and test refers to.
Which number gets which scenario is the plan's business (agi.sim.scenarios.ScenarioPlan).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from collections.abc import Mapping

from agi.sim.callee import FAX, MACHINE, NO_MEDIA, Callee, KeyPress


class Network(str, Enum):
    """What the far end / the network does with the call."""

    ANSWER = "answer"
    BUSY = "busy"  # Busy(): Reason 5, cause 17
    NO_ANSWER = "no_answer"  # rings until the Originate Timeout: Reason 3, cause 19
    CONGESTION = "congestion"  # Congestion(): Reason 8, cause 34
    UNALLOCATED = "unallocated"  # Hangup(1): Reason 0, cause 1
    NUMBER_CHANGED = "number_changed"  # Hangup(22): Reason 0, cause 22
    REJECTED = "rejected"  # Hangup(21): Reason 0, cause 21
    NO_CHANNEL = "no_channel"  # the channel cannot be created (bad tech, trunk down): no channel, no Hangup
    NO_EXTEN = "no_exten"  # Local/<nonexistent>@ctx: channels created and torn down, Reason 0, cause 0


# Q.850 cause the far end hangs up with (ITU-T Q.850 / Asterisk causes.h)
FAILURE_CAUSE = {
    Network.BUSY: 17,
    Network.NO_ANSWER: 19,
    Network.CONGESTION: 34,
    Network.UNALLOCATED: 1,
    Network.NUMBER_CHANGED: 22,
    Network.REJECTED: 21,
    Network.NO_EXTEN: 0,
}


def _callee(d: Mapping[str, Any] | Callee | None, base: Callee | None = None) -> Callee:
    """A Callee from a plan dict: keys as "1", "1@2.5" (at 2.5 s into prompt 0), "1@2.5/1", or tables."""
    if isinstance(d, Callee):
        return d
    d = dict(d or {})
    if "keys" in d:
        keys = d["keys"]
        if isinstance(keys, str):
            keys = [keys] if keys else []
        parsed = []
        for k in keys:
            if isinstance(k, KeyPress):
                parsed.append(k)
            elif isinstance(k, Mapping):
                parsed.append(KeyPress(**k))
            else:
                key, _, rest = str(k).partition("@")
                at, _, prompt = rest.partition("/")
                parsed.append(KeyPress(key, float(at or 1.5), int(prompt) if prompt else 0))
        d["keys"] = tuple(parsed)
    if "hangup_after_prompt" in d and d["hangup_after_prompt"] is not None:
        d["hangup_after_prompt"] = tuple(d["hangup_after_prompt"])
    known = {f.name for f in dataclasses.fields(Callee)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown callee field(s) {sorted(unknown)}; known: {sorted(known)}")
    return dataclasses.replace(base, **d) if base is not None else Callee(**d)


@dataclass(frozen=True)
class Scenario:
    """One dialed number's fate. AMD status/cause/duration come from ``callee`` (Callee.amd())."""

    name: str
    network: Network = Network.ANSWER
    ring_time: float = 3.0  # seconds of ringing before answer / failure
    callee: Callee = field(default_factory=Callee)
    media: str = "sounds/human-hello"  # what the far end's leg plays (Local channels only)

    @property
    def answered(self) -> bool:
        return self.network is Network.ANSWER

    @property
    def fax(self) -> bool:
        return self.callee.kind == FAX

    @property
    def amd_status(self) -> str:
        return self.callee.amd()[0] if self.answered else ""

    @property
    def amd_cause(self) -> str:
        return self.callee.amd()[1] if self.answered else ""

    @property
    def amd_time(self) -> float:
        return self.callee.amd()[2] if self.answered else 0.0

    def with_(self, **changes: Any) -> Scenario:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        callee = dataclasses.asdict(self.callee)
        callee["keys"] = [f"{k['key']}@{k['at']}" + (f"/{k['prompt']}" if k["prompt"] is not None else "")
                          for k in callee["keys"]]
        if callee.get("amd_status") is not None:
            callee["amd_status"] = str(callee["amd_status"])
        return {"name": self.name, "network": self.network.value, "ring_time": self.ring_time,
                "media": self.media, "callee": callee}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str | None = None) -> Scenario:
        d = dict(d)
        base_name = d.pop("base", None)
        base = scenario(base_name) if base_name else cls(name=name or d.get("name", "custom"))
        callee = d.pop("callee", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown scenario field(s) {sorted(unknown)}; known: {sorted(known | {'base'})}")
        if "network" in d:
            try:
                d["network"] = Network(d["network"])
            except ValueError:
                raise ValueError(f"unknown network outcome {d['network']!r}; "
                                 f"known: {', '.join(n.value for n in Network)}") from None
        if callee is not None:
            d["callee"] = _callee(callee, base.callee)
        d.setdefault("name", name or base.name)
        return dataclasses.replace(base, **d)


def _failure(name: str, network: Network, ring: float = 0.5) -> Scenario:
    return Scenario(name=name, network=network, ring_time=ring)


# Named scenarios: every trace, plus the cases the issue asks for. Plans refer to them by name.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("human"),  # (a) "Hello?" + silence: HUMAN / HUMAN-800-800
        Scenario("human_keypress", callee=Callee(keys=(KeyPress("1", 1.5, 0),))),  # (a') presses 1
        Scenario("human_wrong_key", callee=Callee(keys=(KeyPress("7", 1.0, 0), KeyPress("9", 1.0, 1)))),
        Scenario("human_no_media", callee=Callee(kind=NO_MEDIA), media=""),  # (a'') NOTSURE / TOOLONG-4939
        Scenario("human_hangs_up_during_message", callee=Callee(hangup_after_prompt=(0, 2.0))),
        Scenario("human_hangs_up_in_queue",
                 callee=Callee(keys=(KeyPress("1", 1.5, 0),), hangup_in_queue_after=2.0)),
        Scenario("machine", callee=Callee(kind=MACHINE), media="sounds/machine-greeting"),  # (b)
        Scenario("machine_late_beep", callee=Callee(kind=MACHINE, greeting_seconds=25.0),
                 media="sounds/machine-greeting"),
        Scenario("fax", callee=Callee(kind=FAX), media="sounds/fax-cng"),  # (g) CNG
        _failure("busy", Network.BUSY),
        _failure("congestion", Network.CONGESTION),
        _failure("no_answer", Network.NO_ANSWER, ring=60.0),
        _failure("unallocated", Network.UNALLOCATED),
        _failure("number_changed", Network.NUMBER_CHANGED),
        _failure("rejected", Network.REJECTED),
        _failure("no_channel", Network.NO_CHANNEL, ring=0),
        _failure("no_exten", Network.NO_EXTEN, ring=0),
    ]
}

# Names the capture rig's [callee] extensions use (Local/<exten>@callee in the traces)
TRACE_ALIASES = {
    "human": "human",
    "human-dtmf": "human_keypress",
    "human-nomedia": "human_no_media",
    "machine": "machine",
    "busy": "busy",
    "congestion": "congestion",
    "noanswer": "no_answer",
    "unallocated": "unallocated",
    "rejected": "rejected",
    "numberchanged": "number_changed",
    "fax": "fax",
    "doesnotexist": "no_exten",
}


def scenario(name_or_spec: str | Mapping[str, Any] | Scenario, name: str | None = None) -> Scenario:
    """A scenario from its name, a dict (optionally with ``base``), or a Scenario."""
    if isinstance(name_or_spec, Scenario):
        return name_or_spec
    if isinstance(name_or_spec, str):
        key = TRACE_ALIASES.get(name_or_spec, name_or_spec)
        try:
            return SCENARIOS[key]
        except KeyError:
            raise ValueError(f"unknown scenario {name_or_spec!r}; known: {', '.join(sorted(SCENARIOS))}") from None
    return Scenario.from_dict(name_or_spec, name=name)
