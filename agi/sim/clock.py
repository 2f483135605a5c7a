"""Simulated time: every simulated duration is divided by ``speed`` (``dialer sim --speed K``).

``now()`` runs ``speed`` times faster than the wall clock from the moment the clock was made,
so event timestamps stay consistent with the scaled durations.
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._t0 = time.monotonic()
        self._start = time.time() if start is None else start

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._start + (time.monotonic() - self._t0) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        if seconds > 0:
            await asyncio.sleep(seconds / self.speed)

    def real(self, seconds: float) -> float:
        """Wall-clock seconds for a simulated duration (for timeouts)."""
        return seconds / self.speed
