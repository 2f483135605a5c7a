"""Calls-per-second limits as a sliding one-second window (time passed in: pure, testable).

A token bucket lets a full bucket plus a second's refill through within one second; carriers
and the simulator count any one-second window, so this never lets more than ``rate`` through
in any window of one second (for a rate under 1, one call per 1/rate seconds).
"""

from __future__ import annotations

import math
from collections import deque


class RateLimiter:
    def __init__(self, rate: float) -> None:
        self.set_rate(rate)
        self.sent: deque[float] = deque()

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("calls per second must be > 0")
        self.rate = float(rate)
        self.window = 1.0 if rate >= 1 else 1.0 / rate
        self.per_window = max(1, math.floor(self.rate * self.window + 1e-9))

    def available(self, now: float) -> int:
        """Originates allowed at ``now``."""
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        return max(0, self.per_window - len(self.sent))

    def take(self, now: float, n: int = 1) -> None:
        if n > self.available(now):
            raise ValueError(f"taking {n}, only {self.available(now)} allowed now")
        self.sent.extend([now] * n)
