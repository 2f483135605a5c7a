"""The originator's times, one injected object: call time, which a simulation may run faster,
and real time, which protects real things (the trunk, other processes, our own waits).

- ``now()`` -- call time, epoch seconds. Everything a call or a campaign is measured in: the
  attempt rows' timestamps, claims, calling windows and schedules, drop windows, the pacing
  history, agent time. ``time.time`` in production; the simulator's clock in the demo and tests.
- ``elapsed()`` -- real seconds from an arbitrary start (monotonic). Every interval: the
  housekeeping cadences, the graces we wait for events or reports, the drain deadline, the back-off
  when nothing is due, and the calls-per-second limits (a carrier counts real seconds).
- ``wall()`` -- real time as an aware UTC datetime: heartbeats of dialers and FastAGI servers,
  which other processes compare with their own clocks whatever the simulation speed.

Waits (``asyncio.sleep``, ``asyncio.wait_for``) are real time, as ``elapsed()`` measures it.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from collections.abc import Callable


def as_dt(seconds: float) -> dt.datetime:
    """Epoch seconds as an aware UTC datetime (how the database stores every time)."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


@dataclass(frozen=True)
class Clock:
    now: Callable[[], float] = time.time  # call time (see the module docstring)
    elapsed: Callable[[], float] = time.monotonic  # real intervals
    wall_s: Callable[[], float] = time.time  # real epoch seconds, for heartbeats

    @classmethod
    def of(cls, clock: Clock | Callable[[], float]) -> Clock:
        """A Clock as given, or one whose call time is ``clock`` (e.g. the simulator's ``now``)."""
        return clock if isinstance(clock, Clock) else cls(now=clock)

    def at(self) -> dt.datetime:
        """Call time now, as a datetime."""
        return as_dt(self.now())

    def wall(self) -> dt.datetime:
        """Real time now, as a datetime (heartbeats)."""
        return as_dt(self.wall_s())

    def every(self, seconds: float, *, at_once: bool = True) -> Every:
        return Every(seconds, self.elapsed, at_once=at_once)


class Every:
    """A real-time cadence: ``due()`` is true at most once per ``seconds`` (first at once, or
    ``seconds`` after it was made)."""

    def __init__(self, seconds: float, elapsed: Callable[[], float], *, at_once: bool = True) -> None:
        self.seconds = seconds
        self._elapsed = elapsed
        self._last = -math.inf if at_once else elapsed()

    def due(self) -> bool:
        now = self._elapsed()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False
