"""Health as `dialer status` and /healthz judge it: one check per component (the database, each
originator, each FastAGI server), each ok or down, and the whole from them.

The whole is OK when every check is; DEGRADED when some component is down but calls can still be
made and taken; DOWN when none can: the database is unreachable or not migrated, no originator is
working (beating with its AMI session up), or originators work and no FastAGI server is alive to
take their answered calls. The levels are Nagios' exit codes (0 OK, 1 WARNING, 2 CRITICAL).
A graceful stop is not a failure: that component is reported stopped, and only the whole may suffer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

# A FastAGI server row that has not beaten for this long is a retired address, not a server down.
AGI_SERVER_FORGOTTEN_AFTER_S = 24 * 3600.0


class Level(IntEnum):
    OK = 0
    DEGRADED = 1
    DOWN = 2


@dataclass(frozen=True)
class Check:
    kind: str  # "database", "originator", "fastagi"
    name: str
    level: Level
    detail: str
    working: bool = False  # doing its job now (not merely not failing)


def _ago(seconds: float, when: dt.datetime) -> str:
    return f"{seconds:.0f} s ago, {when:%H:%M:%S} UTC"


def database(reachable: bool, revision: str | None, head: str, error: str | None = None) -> Check:
    if not reachable:
        return Check("database", "database", Level.DOWN, f"unreachable: {error}")
    if revision != head:
        return Check("database", "database", Level.DOWN,
                     f"schema at {revision or 'nothing'}, newest is {head}: run `dialer db upgrade`")
    return Check("database", "database", Level.OK, f"reachable, schema at {head} (newest)", working=True)


def originator(name: str, *, last_beat: dt.datetime | None, beat_age_s: float | None, beating: bool,
               stopped_at: dt.datetime | None, ami_connected: bool, lines_in_use: int, lines: int) -> Check:
    if stopped_at is not None:
        return Check("originator", name, Level.OK, f"stopped at {stopped_at:%H:%M:%S} UTC (graceful)")
    if last_beat is None or beat_age_s is None:
        return Check("originator", name, Level.OK, "never started")
    if not beating:
        return Check("originator", name, Level.DOWN, f"not beating: last heartbeat {_ago(beat_age_s, last_beat)}")
    if not ami_connected:
        return Check("originator", name, Level.DOWN, f"beating ({beat_age_s:.0f} s ago), AMI disconnected")
    return Check("originator", name, Level.OK,
                 f"beating ({beat_age_s:.0f} s ago), AMI connected, {lines_in_use}/{lines} lines in use", working=True)


def agi_server(address: str, *, last_beat: dt.datetime | None, beat_age_s: float | None, alive: bool,
               stopped_at: dt.datetime | None, live_sessions: int) -> Check | None:
    """None for a retired address (silent for a day)."""
    if beat_age_s is None or last_beat is None or beat_age_s > AGI_SERVER_FORGOTTEN_AFTER_S:
        return None
    if stopped_at is not None:
        return Check("fastagi", address, Level.OK, f"stopped at {stopped_at:%H:%M:%S} UTC (graceful)")
    if not alive:
        return Check("fastagi", address, Level.DOWN, f"not beating: last beat {_ago(beat_age_s, last_beat)}")
    return Check("fastagi", address, Level.OK, f"beating ({beat_age_s:.0f} s ago), {live_sessions} live sessions",
                 working=True)


def overall(checks: Iterable[Check]) -> Level:
    checks = list(checks)
    of = {kind: [c for c in checks if c.kind == kind] for kind in ("database", "originator", "fastagi")}
    if any(c.level is Level.DOWN for c in of["database"]):
        return Level.DOWN
    dialing = any(c.working for c in of["originator"])
    if of["originator"] and not dialing:
        return Level.DOWN  # nothing can place a call
    if (dialing or of["fastagi"]) and not any(c.working for c in of["fastagi"]):
        return Level.DOWN  # nothing can take an answered call
    return Level.DEGRADED if any(c.level is Level.DOWN for c in checks) else Level.OK
