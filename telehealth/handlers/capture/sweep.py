"""Device copies that never arrived: marked on the take after a bounded time, so nobody waits forever.

A sweep (not a rule evaluated on read) because the moment matters: the clinician's panel is told
(``device_copy_missing``), the audit trail records it, and exports read a stored fact. Every
process may sweep; the update only marks takes not yet marked, so a repeat does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, captures
from telehealth.records.types import utcnow

from .events import CaptureChange

__all__ = ["SYSTEM", "DeviceCopySweep"]

log = logging.getLogger(__name__)

SYSTEM = audit.Actor("system", "system")


class DeviceCopySweep:
    """Marks takes whose device copy is overdue; one background task, owned by the capture context."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        timeout: timedelta,
        changed: Callable[[uuid.UUID, CaptureChange], Awaitable[None]],
    ) -> None:
        self._sessionmaker = sessionmaker
        self.timeout = timeout
        self._changed = changed
        self.interval = max(1.0, min(60.0, timeout.total_seconds() / 4))

    async def run_once(self) -> int:
        """Mark every overdue take now; returns how many were marked."""
        now = utcnow()
        async with self._sessionmaker() as db:
            overdue = await captures.overdue_device_copies(db, now - self.timeout)
        if not overdue:
            return 0
        waited = int(self.timeout.total_seconds())
        async with UnitOfWork(self._sessionmaker, SYSTEM) as uow:
            for found, patient_id in overdue:
                take = await captures.get_capture(uow.db, found.id)
                if take.device_missing_at is not None:
                    continue
                take.device_missing_at = now
                uow.audit(
                    "device_copy_missing",
                    object_type="capture",
                    object_id=take.id,
                    patient_id=patient_id,
                    detail={"step_id": take.step_id, "kind": take.kind.value, "after_seconds": waited},
                )
        visits = {c.visit_id for c, _ in overdue}
        log.info("device copy missing on %d takes of %d visits", len(overdue), len(visits))
        for visit_id in visits:
            await self._changed(visit_id, CaptureChange.DEVICE_COPY_MISSING)
        return len(overdue)

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failed round is logged and retried."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("device copy sweep failed; retrying in %.0f s", self.interval)
            await asyncio.sleep(self.interval)
