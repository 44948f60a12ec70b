"""Audit trail: every login, view, capture, export and refused access is recorded."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, a patient (by visit), or anonymous."""

    id: str | None
    role: str
    client_addr: str | None = None


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    outcome: str = "ok",
    object_type: str | None = None,
    object_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the caller's transaction."""
    event = AuditEvent(
        actor_id=actor.id,
        actor_role=actor.role,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        patient_id=patient_id,
        client_addr=actor.client_addr,
        outcome=outcome,
        detail=detail,
    )
    session.add(event)
    return event


async def recent(
    session: AsyncSession, *, limit: int, patient_id: uuid.UUID | None = None, actor_id: str | None = None
) -> Sequence[AuditEvent]:
    """Audit events, newest first, optionally about one patient or by one actor."""
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == patient_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    return (await session.scalars(stmt)).all()
