"""Attempt limits for sign-in and join links, counted in the database before each check."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records import throttles
from telehealth.records.throttles import Reservation

PRUNE_EVERY_SECONDS = 600.0


class Throttle:
    """``limit`` attempts per key, then exponential back-off; shared by every process through the database."""

    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self._next_prune = 0.0

    async def reserve(self, db: AsyncSession, key: str) -> Reservation:
        """Count one attempt before it is checked (refused while the key is locked)."""
        if (now := time.monotonic()) >= self._next_prune:
            # Forgiven counters are deleted now and then, so a flood of made-up keys does not pile up.
            self._next_prune = now + PRUNE_EVERY_SECONDS
            await throttles.prune(db)
        return await throttles.reserve(db, key, limit=self.limit)

    async def forget(self, db: AsyncSession, reservation: Reservation) -> None:
        """The attempt proved the caller knows the secret: forget every failure of this key."""
        await throttles.clear(db, reservation.key)

    async def refund(self, db: AsyncSession, reservation: Reservation) -> None:
        """The attempt succeeded: give it back, keeping the key's earlier failures."""
        await throttles.refund(db, reservation.key, limit=self.limit)
