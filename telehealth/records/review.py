"""Read models for review: a patient's timeline, a visit's montage, capture notes, media lookup."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
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
    CaptureKind,
    CaptureNote,
    CaptureStatus,
    Grade,
    MediaFile,
    Patient,
    Provenance,
    User,
    Visit,
    VisitState,
)

# The default protocol's steps in capture order. Kept as ONE constant until the protocol file
# (telehealth/capture/protocols/default.json) lands on main; then this should be read from it.
DEFAULT_STEPS: tuple[tuple[str, str], ...] = (
    ("rest", "Rest"),
    ("brow_raise", "Brow raise"),
    ("eye_close_gentle", "Gentle eye closure"),
    ("eye_close_tight", "Tight eye closure"),
    ("smile_closed", "Closed-lip smile"),
    ("smile_open", "Open-mouth smile"),
    ("snarl", "Snarl"),
    ("pucker", "Pucker"),
    ("lower_teeth", "Lower teeth"),
    ("spontaneous", "Spontaneous"),
)
_POSITION = {step: i for i, (step, _) in enumerate(DEFAULT_STEPS)}
_LABEL = dict(DEFAULT_STEPS)


def step_label(step_id: str) -> str:
    """A human label for a protocol step id (unknown steps get a readable fallback)."""
    return _LABEL.get(step_id) or step_id.replace("_", " ").capitalize()


def step_order(step_ids: Iterable[str]) -> list[str]:
    """Step ids in protocol order; steps outside the default protocol follow, alphabetically."""
    return sorted(set(step_ids), key=lambda s: (_POSITION.get(s, len(_POSITION)), s))


def quality_flags(quality: dict[str, Any] | None) -> list[str]:
    """Problems recorded by the capture checks, tolerant of the two shapes capture may write.

    Either {"flags": ["yaw", ...]} or a map of check name -> passed (False means a flag).
    """
    if not quality:
        return []
    flags = quality.get("flags")
    if isinstance(flags, list):
        return [str(f) for f in flags]
    return sorted(k for k, v in quality.items() if v is False)


class MediaOut(BaseModel):
    """One stored file as the review pages see it."""

    id: uuid.UUID
    url: str
    content_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    duration_ms: int | None
    frames: int | None
    provenance: Provenance
    is_primary: bool
    is_thumbnail: bool
    created_at: datetime

    @classmethod
    def of(cls, m: MediaFile) -> MediaOut:
        """Serialize a media row."""
        return cls(
            id=m.id,
            url=media_url(m.id),
            content_type=m.content_type,
            size=m.size,
            sha256=m.sha256,
            width=m.width,
            height=m.height,
            duration_ms=m.duration_ms,
            frames=m.frames,
            provenance=m.provenance,
            is_primary=m.is_primary,
            is_thumbnail=m.is_thumbnail,
            created_at=m.created_at,
        )


class TakeOut(BaseModel):
    """The current take of one step and kind, with its files."""

    capture_id: uuid.UUID
    kind: CaptureKind
    status: CaptureStatus
    created_at: datetime
    skip_reason: str | None
    flags: list[str]
    quality: dict[str, Any] | None
    earlier_takes: int
    notes: int
    media: list[MediaOut]


class StepOut(BaseModel):
    """One protocol step of a visit: its still and clip."""

    step_id: str
    label: str
    still: TakeOut | None
    clip: TakeOut | None


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


class MontageOut(BaseModel):
    """A visit in protocol order."""

    patient: PatientBrief
    visit: VisitBrief
    steps: list[StepOut]


class ThumbOut(BaseModel):
    """One still in a timeline strip."""

    step_id: str
    label: str
    capture_id: uuid.UUID
    url: str
    provenance: Provenance
    flags: list[str]


class TimelineVisit(BaseModel):
    """One visit row of a timeline."""

    visit: VisitBrief
    stills: int
    clips: int
    thumbs: list[ThumbOut]
    grades: dict[str, dict[str, Any]]


class TimelineOut(BaseModel):
    """A patient's visits, newest first."""

    patient: PatientBrief
    visits: list[TimelineVisit]


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


def _brief(v: Visit, clinician_name: str) -> VisitBrief:
    return VisitBrief(
        id=v.id,
        scheduled_at=v.scheduled_at,
        state=v.state,
        clinician_name=clinician_name,
        protocol_id=v.protocol_id,
        reason=v.reason,
    )


def current_takes(takes: Iterable[Capture]) -> dict[tuple[uuid.UUID, str, CaptureKind], tuple[Capture, int]]:
    """Per (visit, step, kind): the newest take nothing supersedes, and how many takes came before it.

    Same rule as records.captures.current_take, applied to rows already loaded in bulk.
    """
    takes = list(takes)
    superseded = {c.supersedes_id for c in takes if c.supersedes_id is not None}
    groups: dict[tuple[uuid.UUID, str, CaptureKind], list[Capture]] = defaultdict(list)
    for c in takes:
        groups[(c.visit_id, c.step_id, c.kind)].append(c)
    out = {}
    for key, group in groups.items():
        live = [c for c in group if c.id not in superseded] or group
        newest = max(live, key=lambda c: (c.created_at, str(c.id)))
        out[key] = (newest, len(group) - 1)
    return out


def _display_still(files: Sequence[MediaFile]) -> MediaFile | None:
    """The file a strip shows for a still: its thumbnail, else the primary, else any image."""
    images = [m for m in files if m.content_type.startswith("image/")]
    for pick in (
        [m for m in images if m.is_thumbnail],
        [m for m in images if m.is_primary],
        images,
    ):
        if pick:
            return pick[-1]
    return None


async def _patient(db: AsyncSession, patient_id: uuid.UUID) -> Patient:
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise RecordNotFound("patient not found")
    return patient


async def _media_by_capture(db: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MediaFile]]:
    rows = await db.scalars(
        select(MediaFile).where(MediaFile.visit_id.in_(visit_ids)).order_by(MediaFile.created_at, MediaFile.id)
    )
    by_capture: dict[uuid.UUID, list[MediaFile]] = defaultdict(list)
    for m in rows:
        if m.capture_id is not None:
            by_capture[m.capture_id].append(m)
    return by_capture


async def timeline(db: AsyncSession, patient_id: uuid.UUID) -> TimelineOut:
    """A patient's visits, newest first, each with its stills as a strip in protocol order."""
    patient = await _patient(db, patient_id)
    rows = (
        await db.execute(
            select(Visit, User.display_name)
            .join(User, User.id == Visit.clinician_id)
            .where(Visit.patient_id == patient_id)
            .order_by(Visit.scheduled_at.desc(), Visit.id)
        )
    ).all()
    visit_ids = [v.id for v, _ in rows]
    takes = current_takes(await db.scalars(select(Capture).where(Capture.visit_id.in_(visit_ids))))
    still_ids = [c.id for (_, _, kind), (c, _) in takes.items() if kind is CaptureKind.STILL]
    thumbs_by_capture: dict[uuid.UUID, list[MediaFile]] = defaultdict(list)
    if still_ids:
        # Only images of current stills: a strip never needs the clips or superseded takes.
        images = await db.scalars(
            select(MediaFile).where(
                MediaFile.visit_id.in_(visit_ids),
                MediaFile.capture_id.in_(still_ids),
                MediaFile.content_type.like("image/%"),
            )
        )
        for m in images:
            assert m.capture_id is not None
            thumbs_by_capture[m.capture_id].append(m)
    grades = await db.scalars(select(Grade).where(Grade.visit_id.in_(visit_ids)).order_by(Grade.created_at.desc()))
    grades_by_visit: dict[uuid.UUID, list[Grade]] = defaultdict(list)
    for g in grades:
        grades_by_visit[g.visit_id].append(g)
    out = []
    for visit, clinician_name in rows:
        mine = {(step, kind): c for (vid, step, kind), (c, _) in takes.items() if vid == visit.id}
        thumbs = []
        for step in step_order(s for s, k in mine if k is CaptureKind.STILL):
            still = mine[(step, CaptureKind.STILL)]
            shown = _display_still(thumbs_by_capture.get(still.id, []))
            if shown is not None:
                thumbs.append(
                    ThumbOut(
                        step_id=step,
                        label=step_label(step),
                        capture_id=still.id,
                        url=media_url(shown.id),
                        provenance=shown.provenance,
                        flags=quality_flags(still.quality),
                    )
                )
        out.append(
            TimelineVisit(
                visit=_brief(visit, clinician_name),
                stills=sum(1 for _, k in mine if k is CaptureKind.STILL),
                clips=sum(1 for _, k in mine if k is CaptureKind.CLIP),
                thumbs=thumbs,
                grades={s.value: g.scores for s, g in current_grades(grades_by_visit[visit.id]).items()},
            )
        )
    return TimelineOut(patient=PatientBrief.of(patient), visits=out)


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


async def montage(db: AsyncSession, visit_id: uuid.UUID) -> MontageOut:
    """A visit's current takes in protocol order, every default step present (empty if not captured)."""
    visit, patient, clinician_name = await visit_header(db, visit_id)
    takes = current_takes(await db.scalars(select(Capture).where(Capture.visit_id == visit_id)))
    media = await _media_by_capture(db, [visit_id])
    counted = await db.execute(
        select(CaptureNote.capture_id, func.count())
        .where(CaptureNote.visit_id == visit_id)
        .group_by(CaptureNote.capture_id)
    )
    note_counts: dict[uuid.UUID, int] = {cid: n for cid, n in counted.all()}

    def take(step: str, kind: CaptureKind) -> TakeOut | None:
        found = takes.get((visit_id, step, kind))
        if found is None:
            return None
        c, earlier = found
        return TakeOut(
            capture_id=c.id,
            kind=c.kind,
            status=c.status,
            created_at=c.created_at,
            skip_reason=c.skip_reason,
            flags=quality_flags(c.quality),
            quality=c.quality,
            earlier_takes=earlier,
            notes=note_counts.get(c.id, 0),
            media=[MediaOut.of(m) for m in media.get(c.id, [])],
        )

    captured = {step for (_, step, _) in takes}
    default_protocol = visit.protocol_id in (None, "default")
    steps = step_order(captured | (set(_POSITION) if default_protocol else set()))
    return MontageOut(
        patient=PatientBrief.of(patient),
        visit=_brief(visit, clinician_name),
        steps=[
            StepOut(
                step_id=s,
                label=step_label(s),
                still=take(s, CaptureKind.STILL),
                clip=take(s, CaptureKind.CLIP),
            )
            for s in steps
        ],
    )


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
