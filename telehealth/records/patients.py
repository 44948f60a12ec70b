"""Patient records: create, search, read, update."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import Conflict, RecordNotFound
from telehealth.records.models import AffectedSide, Patient


async def create_patient(
    db: AsyncSession,
    *,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: date,
    affected_side: AffectedSide,
    created_by: uuid.UUID | None,
) -> Patient:
    """Register a patient; a duplicate MRN raises Conflict."""
    patient = Patient(
        mrn=mrn.strip(),
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        birth_date=birth_date,
        affected_side=affected_side,
        created_by=created_by,
    )
    db.add(patient)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise Conflict(f"a patient with MRN {mrn!r} exists") from exc
    return patient


async def get_patient(db: AsyncSession, patient_id: uuid.UUID) -> Patient:
    """The patient, or RecordNotFound."""
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise RecordNotFound("patient not found")
    return patient


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_patients(db: AsyncSession, query: str, *, limit: int = 50) -> Sequence[Patient]:
    """Patients whose MRN equals the query or whose names start with it."""
    stmt = select(Patient).order_by(Patient.family_name, Patient.given_name).limit(limit)
    q = query.strip()
    if q:
        prefix = _escape_like(q.lower()) + "%"
        stmt = stmt.where(
            or_(
                Patient.mrn == q,
                func.lower(Patient.family_name).like(prefix, escape="\\"),
                func.lower(Patient.given_name).like(prefix, escape="\\"),
            )
        )
    return (await db.scalars(stmt)).all()


async def update_patient(db: AsyncSession, patient_id: uuid.UUID, changes: dict[str, object]) -> Patient:
    """Apply validated field changes; a changed MRN that collides raises Conflict."""
    patient = await get_patient(db, patient_id)
    for name, value in changes.items():
        setattr(patient, name, value)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise Conflict("a patient with that MRN exists") from exc
    return patient
