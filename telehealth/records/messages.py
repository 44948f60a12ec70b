"""Outgoing messages to patients: the durable schedule, claimed atomically by whichever process is first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.models import MessageOutcome, OutgoingMessage


async def due_ids(db: AsyncSession, *, now: datetime, stale_before: datetime, limit: int) -> list[uuid.UUID]:
    """Pending messages whose time has come and that nobody holds (or whose holder died)."""
    rows = await db.scalars(
        select(OutgoingMessage.id)
        .where(
            OutgoingMessage.outcome == MessageOutcome.PENDING,
            OutgoingMessage.due_at <= now,
            or_(OutgoingMessage.claimed_at.is_(None), OutgoingMessage.claimed_at < stale_before),
        )
        .order_by(OutgoingMessage.due_at)
        .limit(limit)
    )
    return list(rows)


async def claim(db: AsyncSession, message_id: uuid.UUID, *, now: datetime, stale_before: datetime, node: str) -> bool:
    """Take one message for sending; False when another process took it first (one UPDATE decides)."""
    result = await db.execute(
        update(OutgoingMessage)
        .where(
            OutgoingMessage.id == message_id,
            OutgoingMessage.outcome == MessageOutcome.PENDING,
            or_(OutgoingMessage.claimed_at.is_(None), OutgoingMessage.claimed_at < stale_before),
        )
        .values(claimed_at=now, claimed_by=node)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def for_visit(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[OutgoingMessage]:
    """Every message of a visit, oldest first."""
    rows = await db.scalars(
        select(OutgoingMessage).where(OutgoingMessage.visit_id == visit_id).order_by(OutgoingMessage.created_at)
    )
    return rows.all()


async def pending_for_visit(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[OutgoingMessage]:
    """Messages of a visit not sent yet."""
    rows = await db.scalars(
        select(OutgoingMessage).where(
            OutgoingMessage.visit_id == visit_id, OutgoingMessage.outcome == MessageOutcome.PENDING
        )
    )
    return rows.all()
