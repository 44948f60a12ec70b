"""Visits: scheduling, the state machine, and patient join links."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from telehealth.records.errors import Gone, InvalidInput, InvalidStateError, RecordNotFound
from telehealth.records.models import Patient, Visit, VisitState
from telehealth.records.tokens import new_token, same, token_hash
from telehealth.records.types import utcnow

log = logging.getLogger(__name__)

_MOVES: dict[VisitState, frozenset[VisitState]] = {
    VisitState.SCHEDULED: frozenset({VisitState.WAITING, VisitState.CANCELLED, VisitState.NO_SHOW}),
    VisitState.WAITING: frozenset({VisitState.IN_CALL, VisitState.SCHEDULED, VisitState.ENDED, VisitState.CANCELLED}),
    VisitState.IN_CALL: frozenset({VisitState.WAITING, VisitState.ENDED}),
    VisitState.ENDED: frozenset(),
    VisitState.CANCELLED: frozenset(),
    VisitState.NO_SHOW: frozenset(),
}


# States after which a visit never runs again.
OVER: frozenset[VisitState] = frozenset({VisitState.ENDED, VisitState.CANCELLED, VisitState.NO_SHOW})


def can_move(old: VisitState, new: VisitState) -> bool:
    """Whether the state machine allows old -> new (staying put is always allowed)."""
    return old == new or new in _MOVES[old]


def transition(visit: Visit, new: VisitState) -> bool:
    """The one place a visit changes state; returns False when it was already there."""
    old = visit.state
    if old == new:
        return False
    if not can_move(old, new):
        raise InvalidStateError(f"visit cannot go from {old.value} to {new.value}")
    log.info("visit %s: %s -> %s", visit.id, old.value, new.value)
    visit.state = new
    now = utcnow()
    if new == VisitState.IN_CALL and visit.started_at is None:
        visit.started_at = now
    if new in OVER:
        visit.ended_at = now
        visit.join_revoked_at = visit.join_revoked_at or now
    return True


async def schedule_visit(
    db: AsyncSession,
    *,
    patient_id: uuid.UUID,
    clinician_id: uuid.UUID,
    scheduled_at: datetime,
    reason: str | None = None,
    requires_dob: bool = False,
) -> Visit:
    """Create a visit in the scheduled state."""
    if await db.get(Patient, patient_id) is None:
        raise RecordNotFound("patient not found")
    visit = Visit(
        patient_id=patient_id,
        clinician_id=clinician_id,
        scheduled_at=scheduled_at,
        reason=reason,
        join_requires_dob=requires_dob,
    )
    db.add(visit)
    await db.flush()
    return visit


async def get_visit(db: AsyncSession, visit_id: uuid.UUID, *, with_people: bool = False) -> Visit:
    """The visit (optionally with patient and clinician loaded), or RecordNotFound."""
    stmt = select(Visit).where(Visit.id == visit_id)
    if with_people:
        stmt = stmt.options(selectinload(Visit.patient), selectinload(Visit.clinician))
    visit = await db.scalar(stmt)
    if visit is None:
        raise RecordNotFound("visit not found")
    return visit


async def list_visits(
    db: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    clinician_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> Sequence[Visit]:
    """Visits scheduled in [start, end), with patient and clinician loaded."""
    stmt = (
        select(Visit)
        .where(Visit.scheduled_at >= start, Visit.scheduled_at < end)
        .options(selectinload(Visit.patient), selectinload(Visit.clinician))
        .order_by(Visit.scheduled_at)
    )
    if clinician_id is not None:
        stmt = stmt.where(Visit.clinician_id == clinician_id)
    if patient_id is not None:
        stmt = stmt.where(Visit.patient_id == patient_id)
    return (await db.scalars(stmt)).all()


def issue_join_link(visit: Visit, *, valid_hours: int, now: datetime | None = None) -> str:
    """Issue a new join token (replacing any earlier one) and return it; only its hash is kept."""
    if visit.state in OVER:
        raise InvalidStateError("the visit is over; no join link can be issued")
    now = now or utcnow()
    try:
        expires_at = max(now, visit.scheduled_at) + timedelta(hours=valid_hours)
    except OverflowError:
        raise InvalidInput("the visit is too far in the future for a join link") from None
    token = new_token()
    visit.join_token_hash = token_hash(token)
    visit.join_expires_at = expires_at
    visit.join_revoked_at = None
    return token


def revoke_join_link(visit: Visit) -> None:
    """Revoke the visit's join link."""
    visit.join_revoked_at = utcnow()


async def visit_for_join_token(db: AsyncSession, token: str) -> Visit:
    """The visit a join token opens: 404 when unknown, 410 when expired, revoked or over."""
    if not token or len(token) > 128:
        raise RecordNotFound("unknown join link")
    visit = await db.scalar(
        select(Visit)
        .where(Visit.join_token_hash == token_hash(token))
        .options(selectinload(Visit.patient), selectinload(Visit.clinician))
    )
    if visit is None or visit.join_token_hash is None or not same(visit.join_token_hash, token_hash(token)):
        raise RecordNotFound("unknown join link")
    if visit.join_revoked_at is not None or visit.state in OVER:
        raise Gone("this visit link is no longer valid")
    if visit.join_expires_at is not None and visit.join_expires_at <= utcnow():
        raise Gone("this visit link has expired")
    return visit


def dob_matches(visit: Visit, birth_date: date | None) -> bool:
    """Whether the date of birth confirms the patient (always true when not required)."""
    if not visit.join_requires_dob:
        return True
    return birth_date is not None and birth_date == visit.patient.birth_date
