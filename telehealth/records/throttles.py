"""Attempt counters in the database: reserved atomically before the work they limit.

Every key (an account name, a client address, a join link) counts attempts. An attempt is
reserved by one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE not locked ... RETURNING`` before the
expensive or guessable check runs, so concurrent requests and several server processes can never
check more than ``limit`` before the lock holds. A success then clears or refunds the reservation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, case, delete, literal, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.models import AttemptCounter
from telehealth.records.types import UTCDateTime, utcnow

FIRST_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60
# Failures older than this are forgiven (the longest lock is well inside it).
FORGET_AFTER = timedelta(hours=1)


def lock_seconds(failures: int, limit: int) -> int:
    """Back-off once ``limit`` attempts are used: 30 s, 60 s, 120 s ... capped at 15 minutes."""
    if failures < limit:
        return 0
    return int(min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** (failures - limit)))


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of reserving an attempt: granted, or refused for ``retry_after`` seconds."""

    key: str
    retry_after: int = 0

    @property
    def granted(self) -> bool:
        """Whether the attempt may go ahead."""
        return self.retry_after == 0


def _lock_until(failures: ColumnElement[int], limit: int, now: datetime) -> ColumnElement[datetime | None]:
    """SQL for the lock a count leads to; each possible back-off is a bound value (portable, no date maths)."""
    steps = range(limit, limit + 1 + (MAX_LOCK_SECONDS // FIRST_LOCK_SECONDS).bit_length())
    whens = [(failures == n, _at(now + timedelta(seconds=lock_seconds(n, limit)))) for n in steps]
    return case((failures < limit, null()), *whens, else_=_at(now + timedelta(seconds=MAX_LOCK_SECONDS)))


def _at(moment: datetime) -> ColumnElement[datetime | None]:
    return literal(moment, type_=UTCDateTime())


async def reserve(db: AsyncSession, key: str, *, limit: int, now: datetime | None = None) -> Reservation:
    """Count one attempt for ``key`` unless it is locked; the count that reaches ``limit`` sets the lock."""
    now = now or utcnow()
    table = cast(Table, AttemptCounter.__table__)
    insert = (postgresql.insert if db.bind.dialect.name == "postgresql" else sqlite.insert)(table)
    counted = case((table.c.last_attempt_at < now - FORGET_AFTER, 1), else_=table.c.failures + 1)
    stmt = (
        insert.values(key=key, failures=1, locked_until=_lock_until_value(1, limit, now), last_attempt_at=now)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": counted,
                "locked_until": _lock_until(counted, limit, now),
                "last_attempt_at": now,
            },
            where=(table.c.locked_until.is_(None)) | (table.c.locked_until <= now),
        )
        .returning(table.c.failures)
    )
    if (await db.execute(stmt)).first() is not None:
        return Reservation(key)
    locked_until = await db.scalar(select(AttemptCounter.locked_until).where(AttemptCounter.key == key))
    wait = int((locked_until - now).total_seconds()) + 1 if locked_until else 1
    return Reservation(key, retry_after=max(1, wait))


def _lock_until_value(failures: int, limit: int, now: datetime) -> datetime | None:
    seconds = lock_seconds(failures, limit)
    return now + timedelta(seconds=seconds) if seconds else None


async def clear(db: AsyncSession, key: str) -> None:
    """Forget every attempt of ``key`` (an account after a successful sign-in)."""
    await db.execute(delete(AttemptCounter).where(AttemptCounter.key == key))


async def refund(db: AsyncSession, key: str, *, limit: int) -> None:
    """Give back one reserved attempt that succeeded (a client address keeps its earlier failures)."""
    remaining = AttemptCounter.failures - 1
    await db.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == key, AttemptCounter.failures > 0)
        .values(failures=remaining, locked_until=case((remaining < limit, null()), else_=AttemptCounter.locked_until))
    )


async def prune(db: AsyncSession, now: datetime | None = None) -> int:
    """Delete counters whose attempts are all forgiven; returns how many."""
    cutoff = (now or utcnow()) - FORGET_AFTER
    result = await db.execute(delete(AttemptCounter).where(AttemptCounter.last_attempt_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
