"""Calls-per-second limits: a token bucket with time passed in (pure, testable without sleeping)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` Originates per second, bursts of at most ``burst`` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("calls per second must be > 0")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.tokens = self.burst
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def available(self, now: float) -> int:
        """Whole Originates allowed at ``now``."""
        self._refill(now)
        return int(self.tokens + 1e-9)

    def take(self, now: float, n: int = 1) -> None:
        self._refill(now)
        if n > self.tokens + 1e-9:
            raise ValueError(f"taking {n} tokens, only {self.tokens:.2f} available")
        self.tokens -= n

    def set_rate(self, rate: float) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, self.rate)
        self.tokens = min(self.tokens, self.burst)
