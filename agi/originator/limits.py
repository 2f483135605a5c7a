"""Calls-per-second limits as a sliding window with a guard, and an even spacing (time passed
in: pure, testable).

A token bucket lets a full bucket plus a second's refill through within one second; carriers
and the simulator count any one-second window, so this never lets more than ``rate`` through
in any window of one second (for a rate under 1, one call per 1/rate seconds). The far end counts
the Originates as they *arrive*, and arrival times jitter (the network, a busy event loop at
either end): the window is WINDOW_GUARD_S longer than a second, so a call arriving up to that
late still leaves every second of the far end's count within the limit. The sender spaces calls
evenly over the window (``next_at``) instead of sending a second's worth at once.
"""

from __future__ import annotations

import math
from collections import deque

WINDOW_GUARD_S = 0.05  # arrival jitter tolerated: the sustained rate is rate / (1 + guard), 95 % of it


class RateLimiter:
    def __init__(self, rate: float, guard: float = WINDOW_GUARD_S) -> None:
        self.guard = guard
        self.set_rate(rate)
        self.sent: deque[float] = deque()

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("calls per second must be > 0")
        self.rate = float(rate)
        second = 1.0 if rate >= 1 else 1.0 / rate
        self.per_window = max(1, math.floor(self.rate * second + 1e-9))
        self.window = second + self.guard
        self.spacing = self.window / self.per_window  # even spacing fills the window exactly

    def _expire(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()

    def available(self, now: float) -> int:
        """Originates allowed at ``now``, at once."""
        self._expire(now)
        return max(0, self.per_window - len(self.sent))

    def next_at(self, now: float) -> float:
        """The earliest time from ``now`` the next Originate may go: evenly spaced after the last
        one, and within the window."""
        self._expire(now)
        at = now
        if self.sent:
            at = max(at, self.sent[-1] + self.spacing)
        if len(self.sent) >= self.per_window:
            at = max(at, self.sent[-self.per_window] + self.window)
        return at

    def room(self, now: float, horizon: float) -> int:
        """How many Originates may go, evenly spaced, from ``now`` to ``now + horizon``."""
        first = self.next_at(now)
        if first > now + horizon:
            return 0
        spaced = math.floor((now + horizon - first) / self.spacing + 1e-9) + 1
        still_in = sum(1 for t in self.sent if t > now + horizon - self.window)  # in the window at the horizon
        return max(0, min(spaced, self.per_window - still_in))

    def take(self, now: float, n: int = 1) -> None:
        if n > self.available(now):
            raise ValueError(f"taking {n}, only {self.available(now)} allowed now")
        self.sent.extend([now] * n)
