"""What happens on the "network" for each dialed number: scenarios and the plan that picks them.

A ``Scenario`` is the network outcome (answer, busy, ...), the ring time, what AMD() decides, fax,
and the person's behaviour (``callee``: keys, hang-up timing, given to agi.sim.callee.Callee).
A ``ScenarioPlan`` maps numbers to scenarios: a fixed table for tests, a seeded random mix for the
demo and benchmarks. Plan files are JSON or TOML (see ``PLAN_FORMAT``); their ``[faults]`` table
sets the simulator's event-order options (agi.sim.faults), kept in ``ScenarioPlan.faults``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from agi.sim.callee import FAX, MACHINE, NO_MEDIA, Callee, KeyPress
from agi.sim.faults import Faults


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

    def with_(self, **changes: Any) -> "Scenario":
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
    def from_dict(cls, d: Mapping[str, Any], name: str | None = None) -> "Scenario":
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

# Default shares of the random mix (answer splits into human / machine / fax / NOTSURE)
DEFAULT_RATES: dict[str, float] = {
    "human": 0.40,
    "machine": 0.15,
    "fax": 0.02,
    "notsure": 0.03,
    "busy": 0.10,
    "no_answer": 0.18,
    "congestion": 0.03,
    "unallocated": 0.03,
    "number_changed": 0.01,
    "rejected": 0.02,
    "no_channel": 0.03,
}
DEFAULT_KEYS: dict[str, float] = {"1": 0.25, "2": 0.15, "3": 0.05, "9": 0.05, "7": 0.05, "": 0.45}


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


class ScenarioPlan:
    """Number -> scenario. ``choose`` is deterministic for (seed, number, n-th dial of it)."""

    def __init__(self, table: Mapping[str, Scenario] | None = None, *, default: Scenario | None = None,
                 rates: Mapping[str, float] | None = None, keys: Mapping[str, float] | None = None,
                 seed: int = 0, hangup_rate: float = 0.05, hangup_in_queue_rate: float = 0.03,
                 ring_time: tuple[float, float] = (2.0, 12.0), talk_time: tuple[float, float] = (20.0, 120.0),
                 faults: Mapping[str, Any] | None = None):
        self.numbers = dict(table or {})
        self.faults = dict(faults or {})  # the plan file's [faults]: applied by the Simulator (Faults.configure)
        self.default = default
        self.rates = dict(rates) if rates is not None else None
        self.keys = dict(keys or DEFAULT_KEYS)
        self.seed = seed
        self.hangup_rate = hangup_rate
        self.hangup_in_queue_rate = hangup_in_queue_rate
        self.ring_time = ring_time
        self.talk_time = talk_time
        self._dials: dict[str, int] = {}
        if self.rates is not None:
            bad = set(self.rates) - set(DEFAULT_RATES)
            if bad:
                raise ValueError(f"unknown rate(s) {sorted(bad)}; known: {sorted(DEFAULT_RATES)}")
            if sum(self.rates.values()) <= 0:
                raise ValueError("the rates of a mix must add up to more than 0")

    # ---- constructors ---------------------------------------------------------------------
    @classmethod
    def table(cls, table: Mapping[str, Any], default: Any = None) -> "ScenarioPlan":
        return cls({n: scenario(s) for n, s in table.items()},
                   default=scenario(default) if default is not None else None)

    @classmethod
    def mix(cls, seed: int = 1, rates: Mapping[str, float] | None = None, *,
            keys: Mapping[str, float] | None = None, table: Mapping[str, Any] | None = None,
            **options: Any) -> "ScenarioPlan":
        """Seeded random mix. Rates override DEFAULT_RATES by name, as a dict or as keywords
        (``ScenarioPlan.mix(seed=1, busy=0.2, machine=0.1)``); missing names keep their defaults.
        Other keywords: hangup_rate, hangup_in_queue_rate, ring_time=(lo, hi), talk_time=(lo, hi),
        faults={...} (the [faults] table of a plan file)."""
        r = dict(DEFAULT_RATES)
        r.update(rates or {})
        r.update({k: float(options.pop(k)) for k in list(options) if k in DEFAULT_RATES})
        return cls({n: scenario(s) for n, s in (table or {}).items()}, rates=r, keys=keys, seed=seed, **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScenarioPlan":
        data = dict(data)
        defined = {name: scenario(spec, name=name) for name, spec in (data.pop("scenarios", None) or {}).items()}

        def resolve(v: Any) -> Scenario:
            if isinstance(v, str) and v in defined:
                return defined[v]
            return scenario(v)

        table = {str(n): resolve(s) for n, s in (data.pop("table", None) or {}).items()}
        default = data.pop("default", None)
        mix = data.pop("mix", None)
        faults = dict(data.pop("faults", None) or {})
        if data:
            raise ValueError(f"unknown plan section(s) {sorted(data)}; expected mix, table, scenarios, default, "
                             "faults")
        Faults().configure(faults)  # a bad [faults] table is refused here, with the file's other errors
        if mix is not None:
            mix = dict(mix)
            seed = int(mix.pop("seed", 1))
            keys = mix.pop("keys", None)
            opts = {k: mix.pop(k) for k in ("hangup_rate", "hangup_in_queue_rate") if k in mix}
            for k in ("ring_time", "talk_time"):
                if k in mix:
                    opts[k] = tuple(mix.pop(k))
            plan = cls.mix(seed=seed, rates=mix, keys=keys, faults=faults, **opts)
            plan.numbers.update(table)
            return plan
        return cls(table, default=resolve(default) if default is not None else None, faults=faults)

    @classmethod
    def load(cls, path: str | Path) -> "ScenarioPlan":
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        if p.suffix not in (".json", ".toml"):
            return cls.from_text(text, source=str(p))
        try:
            data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{p}: not a valid {'JSON' if p.suffix == '.json' else 'TOML'} plan: {e}") from e
        return cls.from_dict(data)

    @classmethod
    def from_text(cls, text: str, source: str = "plan") -> "ScenarioPlan":
        """The plain text form: one ``<number> <scenario>`` per line, ``* <scenario>`` for the rest,
        ``mix <seed>`` for a seeded mix instead; ``#`` starts a comment."""
        table: dict[str, Any] = {}
        default = None
        seed = None
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{source}:{n}: expected '<number> <scenario>', got {raw.strip()!r}")
            key, value = parts
            if key == "mix":
                if not value.isdigit():
                    raise ValueError(f"{source}:{n}: 'mix' needs a numeric seed, got {value!r}")
                seed = int(value)
            elif key == "*":
                default = value
            else:
                table[key] = value
        if seed is not None:
            return cls.mix(seed=seed, table=table)
        return cls.table(table, default=default)

    # ---- choosing -------------------------------------------------------------------------
    def choose(self, number: str) -> Scenario:
        n = self._dials.get(number, 0)
        self._dials[number] = n + 1
        if number in self.numbers:
            return self.numbers[number]
        if self.rates is None:
            if self.default is not None:
                return self.default
            key = TRACE_ALIASES.get(number, number)
            if key in SCENARIOS:
                return SCENARIOS[key]
            raise LookupError(f"no scenario for number {number!r} in the plan table and no default")
        return self._draw(number, n)

    def _draw(self, number: str, n: int) -> Scenario:
        digest = hashlib.sha256(f"{self.seed}:{number}:{n}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        names = list(self.rates)  # type: ignore[arg-type]
        kind = rng.choices(names, weights=[self.rates[k] for k in names])[0]  # type: ignore[index]
        lo, hi = self.ring_time
        ring = round(rng.uniform(lo, hi), 2)
        if kind == "notsure":
            base = SCENARIOS["human_no_media"]
        elif kind in ("human", "machine", "fax"):
            base = SCENARIOS[kind]
        else:
            return SCENARIOS[kind].with_(ring_time=ring if kind != "no_answer" else 60.0)
        callee = base.callee
        if kind == "human":
            key_names = list(self.keys)
            key = rng.choices(key_names, weights=[self.keys[k] for k in key_names])[0]
            keys = (KeyPress(key, round(rng.uniform(0.5, 4.0), 2), 0),) if key else ()
            prompt_hangup = (0, round(rng.uniform(1.0, 6.0), 2)) if rng.random() < self.hangup_rate else None
            in_queue = round(rng.uniform(1.0, 10.0), 2) if key and rng.random() < self.hangup_in_queue_rate else None
            callee = dataclasses.replace(callee, keys=keys, hangup_after_prompt=prompt_hangup,
                                         hangup_in_queue_after=in_queue,
                                         amd_seconds=round(rng.uniform(1.5, 2.5), 2),
                                         hangup_after_bridge=round(rng.uniform(*self.talk_time), 1))
            name = "human_key_" + key if key else "human"
            if prompt_hangup:
                name = "human_hangs_up_during_message"
            elif in_queue:
                name = "human_hangs_up_in_queue"
        elif kind == "machine":
            callee = dataclasses.replace(callee, greeting_seconds=round(rng.uniform(3.0, 15.0), 2))
            name = "machine"
        else:
            name = base.name
        return base.with_(ring_time=ring, callee=callee, name=name)


# Documentation of the plan file format (shown by `dialer sim --help`)
PLAN_FORMAT = """\
Scenario plan (--plan FILE): TOML (.toml), the same structure in JSON (.json), or plain text
(any other name: one "<number> <scenario>" per line, "* <scenario>" for every other number,
"mix <seed>" for a seeded mix of the rest). TOML:

  default = "human"      # without [mix]: scenario for numbers not in [table] (top of file)

  [mix]                  # seeded random mix for numbers not in [table]
  seed = 1
  human = 0.40           # shares (normalised): human machine fax notsure busy no_answer
  machine = 0.15         #   congestion unallocated number_changed rejected no_channel
  busy = 0.10
  keys = {"1" = 0.3, "2" = 0.2, "" = 0.5}   # key the person presses ("" = none)
  hangup_rate = 0.05     # share of humans hanging up during the message
  hangup_in_queue_rate = 0.03
  ring_time = [2, 12]    # seconds, uniform

  [table]                # fixed number -> scenario (name, or an inline table)
  "+15551230001" = "busy"
  "+15551230002" = {base = "human", callee = {keys = ["1@2.0"], hangup_after = 30}}
  "+15551230003" = "my_machine"

  [scenarios.my_machine] # named custom scenarios, usable in [table] and default
  base = "machine"
  callee = {amd_cause = "LONGGREETING-2600-1500", greeting_seconds = 9.5}

  [faults]               # event order of a loaded Asterisk (tests/traces/INDEX.txt, third batch)
  response_first = 0.3   # share of failed calls whose OriginateResponse comes before their
                         #   Newchannel/Hangup (drawn per number and dial)
  response_first_seed = 1
  router_lag = 0.005     # wall seconds those channel events come after the response

Scenario names: """ + ", ".join(sorted(SCENARIOS)) + """.
Scenario fields: base, network (answer busy no_answer congestion unallocated number_changed
rejected no_channel no_exten), ring_time, media, callee = {kind (human machine fax no_media),
keys (["1@2.5/0"]: key 1, 2.5 s into prompt 0), hangup_after, hangup_after_prompt = [i, s],
hangup_in_queue_after, hangup_after_bridge, hangup_cause, greeting_seconds, amd_status,
amd_cause, amd_seconds}.
"""
