"""Audit by construction: a database transaction that commits only together with its audit event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import audit
from telehealth.records.audit import Actor as Actor  # handlers take an Actor; views get it from here
from telehealth.records.models import AuditEvent


class UnauditedChange(RuntimeError):
    """A unit of work tried to commit without naming its audit event: a programming error."""


@dataclass(frozen=True, slots=True)
class Event:
    """What a unit of work did, as it will appear in the audit log."""

    action: str
    object_type: str | None = None
    object_id: uuid.UUID | str | None = None
    patient_id: uuid.UUID | None = None
    detail: dict[str, Any] | None = None
    outcome: str = "ok"


@dataclass(slots=True)
class UnitOfWork:
    """One session and transaction for one action, committed with exactly the audit events it recorded.

    ``async with UnitOfWork(sessionmaker, actor) as uow:`` opens the transaction; the body reads and
    writes through ``uow.db`` and calls :meth:`audit` once it knows the object (and patient) acted on.
    Leaving the block without an audit event raises :class:`UnauditedChange` and rolls back, so no
    state change or view of patient data can skip its audit row. An exception rolls back everything,
    the audit event included; refusals are audited separately by :func:`record_refusal`.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    actor: audit.Actor
    _db: AsyncSession | None = None
    _events: list[AuditEvent] = field(default_factory=list)
    _discarded: bool = False

    @property
    def db(self) -> AsyncSession:
        """The open database session (only inside the ``async with`` block)."""
        if self._db is None:
            raise RuntimeError("the unit of work is not open")
        return self._db

    def audit(
        self,
        action: str,
        *,
        object_type: str | None = None,
        object_id: uuid.UUID | str | None = None,
        patient_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
        actor: audit.Actor | None = None,
    ) -> None:
        """Record the audit event that commits with this unit of work (by ``actor`` if it became known)."""
        event = audit.record(
            self.db,
            actor or self.actor,
            action,
            outcome=outcome,
            object_type=object_type,
            object_id=object_id,
            patient_id=patient_id,
            detail=detail,
        )
        self._events.append(event)

    def discard(self) -> None:
        """Nothing happened after all (a refused or repeated request): roll back instead of committing."""
        self._discarded = True

    @property
    def audited(self) -> bool:
        """Whether an audit event has been recorded."""
        return bool(self._events)

    async def __aenter__(self) -> Self:
        self._db = self.sessionmaker()
        await self._db.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        db, self._db = self.db, None
        try:
            if exc_type is not None or self._discarded:
                await db.rollback()
                return
            if not self._events:
                await db.rollback()
                raise UnauditedChange("a unit of work ended without an audit event")
            await db.commit()
        finally:
            await db.close()


async def record_refusal(
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: audit.Actor,
    event: Event,
) -> None:
    """Audit a refused or failed action in its own transaction (the refused work never commits)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        uow.audit(
            event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            patient_id=event.patient_id,
            detail=event.detail,
            outcome=event.outcome,
        )


@asynccontextmanager
async def reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads that show no patient data (a join link's clinician and time); never commits."""
    # Closing without a commit rolls the transaction back and detaches (not expires) what was read.
    async with sessionmaker() as db:
        yield db


@asynccontextmanager
async def bookkeeping(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction for upkeep that is nobody's action (a session's last-seen time, an attempt count).

    Kept apart from :class:`UnitOfWork` on purpose: auditing every request's session touch would
    bury the actions in the log. Only session resolution and the sign-in and join attempt counters
    use it; the attempt they count is audited by its own outcome.
    """
    async with sessionmaker() as db, db.begin():
        yield db
