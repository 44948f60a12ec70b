"""Token bucket used for per-connection message rates and abuse strikes."""

from __future__ import annotations

import time


class TokenBucket:
    """Allows `burst` events at once and `rate` per second sustained."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        """Consume one token; False when the bucket is empty."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
