"""Review reads: the rows behind a patient's timeline and a visit's montage, capture notes, media lookup.

The montage and timeline themselves are built by ``telehealth.handlers.review`` with the
visit's protocol steps (order and labels come from the protocol catalogue, not from here).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Self

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import RecordNotFound
from telehealth.records.grading import current_grades
from telehealth.records.models import (
    AffectedSide,
    Capture,
    CaptureNote,
    Grade,
    MediaFile,
    Patient,
    User,
    Visit,
    VisitState,
)


class PatientBrief(BaseModel):
    """Who the record is about."""

    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    affected_side: AffectedSide

    @classmethod
    def of(cls, p: Patient) -> Self:
        """Serialize a patient row (subclasses read their extra fields from the row too)."""
        return cls.model_validate(p, from_attributes=True)


class VisitBrief(BaseModel):
    """A visit's header on review pages."""

    id: uuid.UUID
    scheduled_at: datetime
    state: VisitState
    clinician_name: str
    protocol_id: str | None
    reason: str | None


class NoteOut(BaseModel):
    """A note on a capture."""

    id: uuid.UUID
    capture_id: uuid.UUID
    text: str
    created_at: datetime
    author_id: uuid.UUID
    author_name: str


def media_url(media_id: uuid.UUID) -> str:
    """Where the media API serves a file (relative, same origin)."""
    return f"/api/media/{media_id}"


def visit_brief(v: Visit, clinician_name: str) -> VisitBrief:
    """A visit's header for review pages."""
    return VisitBrief(
        id=v.id,
        scheduled_at=v.scheduled_at,
        state=v.state,
        clinician_name=clinician_name,
        protocol_id=v.protocol_id,
        reason=v.reason,
    )


async def patient(db: AsyncSession, patient_id: uuid.UUID) -> Patient:
    """The patient, or RecordNotFound."""
    found = await db.get(Patient, patient_id)
    if found is None:
        raise RecordNotFound("patient not found")
    return found


async def media_by_capture(db: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MediaFile]]:
    """The visits' media rows grouped by take, oldest first."""
    rows = await db.scalars(
        select(MediaFile).where(MediaFile.visit_id.in_(visit_ids)).order_by(MediaFile.created_at, MediaFile.id)
    )
    by_capture: dict[uuid.UUID, list[MediaFile]] = defaultdict(list)
    for m in rows:
        if m.capture_id is not None:
            by_capture[m.capture_id].append(m)
    return by_capture


async def patient_visits(db: AsyncSession, patient_id: uuid.UUID) -> list[tuple[Visit, str]]:
    """A patient's visits, newest first, each with its clinician's name."""
    rows = await db.execute(
        select(Visit, User.display_name)
        .join(User, User.id == Visit.clinician_id)
        .where(Visit.patient_id == patient_id)
        .order_by(Visit.scheduled_at.desc(), Visit.id)
    )
    return [(v, name) for v, name in rows.all()]


async def takes_of(db: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> Sequence[Capture]:
    """Every take of these visits, superseded ones included."""
    return (await db.scalars(select(Capture).where(Capture.visit_id.in_(visit_ids)))).all()


async def images_of(
    db: AsyncSession, visit_ids: Sequence[uuid.UUID], capture_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MediaFile]]:
    """Image files of these takes (a strip never needs clips), grouped by take."""
    out: dict[uuid.UUID, list[MediaFile]] = defaultdict(list)
    if not capture_ids:
        return out
    images = await db.scalars(
        select(MediaFile).where(
            MediaFile.visit_id.in_(visit_ids),
            MediaFile.capture_id.in_(capture_ids),
            MediaFile.content_type.like("image/%"),
        )
    )
    for m in images:
        assert m.capture_id is not None
        out[m.capture_id].append(m)
    return out


async def grades_by_visit(
    db: AsyncSession, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, dict[str, Any]]]:
    """Each visit's current grade scores by scale."""
    grades = await db.scalars(select(Grade).where(Grade.visit_id.in_(visit_ids)).order_by(Grade.created_at.desc()))
    by_visit: dict[uuid.UUID, list[Grade]] = defaultdict(list)
    for g in grades:
        by_visit[g.visit_id].append(g)
    return {vid: {s.value: g.scores for s, g in current_grades(by_visit[vid]).items()} for vid in visit_ids}


async def note_counts(db: AsyncSession, visit_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How many notes each take of a visit has."""
    counted = await db.execute(
        select(CaptureNote.capture_id, func.count())
        .where(CaptureNote.visit_id == visit_id)
        .group_by(CaptureNote.capture_id)
    )
    return {cid: n for cid, n in counted.all()}


async def visit_header(db: AsyncSession, visit_id: uuid.UUID) -> tuple[Visit, Patient, str]:
    """The visit, its patient and its clinician's name, or RecordNotFound."""
    row = (
        await db.execute(
            select(Visit, Patient, User.display_name)
            .join(Patient, Patient.id == Visit.patient_id)
            .join(User, User.id == Visit.clinician_id)
            .where(Visit.id == visit_id)
        )
    ).first()
    if row is None:
        raise RecordNotFound("visit not found")
    return row[0], row[1], row[2]


async def capture_in_visit(db: AsyncSession, visit_id: uuid.UUID, capture_id: uuid.UUID) -> tuple[Capture, Visit]:
    """The capture if it belongs to that visit; another visit's capture is simply not found."""
    row = (
        await db.execute(
            select(Capture, Visit).join(Visit, Visit.id == Capture.visit_id).where(Capture.id == capture_id)
        )
    ).first()
    if row is None or row[0].visit_id != visit_id:
        raise RecordNotFound("capture not found")
    return row[0], row[1]


async def notes(db: AsyncSession, capture_id: uuid.UUID) -> list[NoteOut]:
    """Notes on a capture, oldest first."""
    rows = await db.execute(
        select(CaptureNote, User.display_name)
        .join(User, User.id == CaptureNote.created_by)
        .where(CaptureNote.capture_id == capture_id)
        .order_by(CaptureNote.created_at, CaptureNote.id)
    )
    return [_note_out(n, name) for n, name in rows.all()]


def _note_out(n: CaptureNote, author_name: str) -> NoteOut:
    return NoteOut(
        id=n.id,
        capture_id=n.capture_id,
        text=n.text,
        created_at=n.created_at,
        author_id=n.created_by,
        author_name=author_name,
    )


async def add_note(db: AsyncSession, capture: Capture, text: str, author: User) -> NoteOut:
    """Append a note to a capture."""
    note = CaptureNote(capture_id=capture.id, visit_id=capture.visit_id, text=text, created_by=author.id)
    db.add(note)
    await db.flush()
    return _note_out(note, author.display_name)


async def media_with_context(db: AsyncSession, media_id: uuid.UUID) -> tuple[MediaFile, uuid.UUID, Capture | None]:
    """A media row with its patient id and capture (for auditing and naming), or RecordNotFound."""
    row = (
        await db.execute(
            select(MediaFile, Visit.patient_id, Capture)
            .join(Visit, Visit.id == MediaFile.visit_id)
            .outerjoin(Capture, Capture.id == MediaFile.capture_id)
            .where(MediaFile.id == media_id)
        )
    ).first()
    if row is None:
        raise RecordNotFound("media not found")
    return row[0], row[1], row[2]
