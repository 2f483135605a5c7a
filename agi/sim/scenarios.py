"""Which scenario each dialed number gets: a ``ScenarioPlan`` maps numbers to scenarios
(agi.sim.scenario), a fixed table for tests, a seeded random mix for the demo and benchmarks. Plan
files are JSON or TOML (see ``PLAN_FORMAT``); their ``[faults]`` table sets the simulator's
event-order options (agi.sim.faults), kept in ``ScenarioPlan.faults``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import tomllib
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from agi.sim.callee import KeyPress
from agi.sim.faults import Faults
from agi.sim.scenario import (  # noqa: F401 - the plan's vocabulary, also imported from here
    FAILURE_CAUSE,
    SCENARIOS,
    TRACE_ALIASES,
    Network,
    Scenario,
    scenario,
)

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
    def table(cls, table: Mapping[str, Any], default: Any = None) -> ScenarioPlan:
        return cls({n: scenario(s) for n, s in table.items()},
                   default=scenario(default) if default is not None else None)

    @classmethod
    def mix(cls, seed: int = 1, rates: Mapping[str, float] | None = None, *,
            keys: Mapping[str, float] | None = None, table: Mapping[str, Any] | None = None,
            **options: Any) -> ScenarioPlan:
        """Seeded random mix. Rates override DEFAULT_RATES by name, as a dict or as keywords
        (``ScenarioPlan.mix(seed=1, busy=0.2, machine=0.1)``); missing names keep their defaults.
        Other keywords: hangup_rate, hangup_in_queue_rate, ring_time=(lo, hi), talk_time=(lo, hi),
        faults={...} (the [faults] table of a plan file)."""
        r = dict(DEFAULT_RATES)
        r.update(rates or {})
        r.update({k: float(options.pop(k)) for k in list(options) if k in DEFAULT_RATES})
        return cls({n: scenario(s) for n, s in (table or {}).items()}, rates=r, keys=keys, seed=seed, **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioPlan:
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
    def load(cls, path: str | Path) -> ScenarioPlan:
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
    def from_text(cls, text: str, source: str = "plan") -> ScenarioPlan:
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
