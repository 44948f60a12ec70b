"""In-memory, bounded attempt counter per key (client address or join link)."""

from __future__ import annotations

import time
from collections import OrderedDict


class Throttle:
    """Counts failures per key; after `limit` failures a key waits with exponential back-off."""

    def __init__(self, limit: int = 5, max_keys: int = 10_000, max_wait: float = 900.0) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self.max_wait = max_wait
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Seconds the key must still wait (0 when it may try)."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None:
            return 0
        return max(0, int(entry[1] - now + 0.999))

    def failure(self, key: str, now: float | None = None) -> None:
        """Record one failed attempt."""
        now = time.monotonic() if now is None else now
        count = self._entries.pop(key, (0, 0.0))[0] + 1
        wait = 0.0 if count < self.limit else min(self.max_wait, 2.0 ** (count - self.limit))
        self._entries[key] = (count, now + wait)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def success(self, key: str) -> None:
        """Forget the key's failures."""
        self._entries.pop(key, None)
