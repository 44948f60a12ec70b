"""Captures of protocol steps and their media files; retakes supersede, never delete."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import RecordNotFound
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import Capture, CaptureKind, CaptureStatus, MediaFile, Provenance, Visit

DeviceCopy = Literal["received", "pending", "missing", "not_expected"]


class StepInfo(Protocol):
    """A protocol step as storage needs it (the capture protocol's steps are these)."""

    @property
    def id(self) -> str:
        """The step id takes are stored under."""

    @property
    def label(self) -> str:
        """Its name on review pages and in exports."""


@dataclass(frozen=True, slots=True)
class StepLabel:
    """A step id with its label, in the order a visit's series is shown."""

    id: str
    label: str


def step_sequence(protocol_steps: Sequence[StepInfo], captured: Iterable[str] = ()) -> list[StepLabel]:
    """The protocol's steps in its order, then steps taken outside it (alphabetically, readable labels)."""
    known = [StepLabel(s.id, s.label) for s in protocol_steps]
    ids = {s.id for s in known}
    extra = sorted(set(captured) - ids)
    return known + [StepLabel(s, s.replace("_", " ").capitalize()) for s in extra]


def current_takes(takes: Iterable[Capture]) -> dict[tuple[uuid.UUID, str, CaptureKind], tuple[Capture, int]]:
    """Per (visit, step, kind): the newest take nothing supersedes, and how many takes came before it.

    The same rule as :func:`current_take`, applied to rows already loaded in bulk.
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


def superseded_ids(takes: Iterable[Capture]) -> set[uuid.UUID]:
    """The takes a later take replaced."""
    return {c.supersedes_id for c in takes if c.supersedes_id is not None}


def device_copy(capture: Capture, media: Iterable[MediaFile]) -> DeviceCopy:
    """Where the patient device's own copy of a take stands."""
    if capture.status is CaptureStatus.SKIPPED:
        return "not_expected"
    if any(m.provenance is Provenance.DEVICE for m in media):
        return "received"
    return "missing" if capture.device_missing_at is not None else "pending"


async def overdue_device_copies(db: AsyncSession, created_before: datetime) -> Sequence[tuple[Capture, uuid.UUID]]:
    """Takes older than ``created_before`` with no device copy and not yet marked, with their patient id."""
    has_device = exists().where(MediaFile.capture_id == Capture.id, MediaFile.provenance == Provenance.DEVICE)
    rows = await db.execute(
        select(Capture, Visit.patient_id)
        .join(Visit, Visit.id == Capture.visit_id)
        .where(
            Capture.created_at < created_before,
            Capture.device_missing_at.is_(None),
            Capture.status != CaptureStatus.SKIPPED,
            ~has_device,
        )
        .order_by(Capture.created_at)
        .limit(500)  # a long outage is worked off in batches
    )
    return [(c, pid) for c, pid in rows.all()]


@dataclass(frozen=True)
class MediaInfo:
    """What is known about a file before it is stored."""

    content_type: str
    provenance: Provenance
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "height", "duration_ms", "frames"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")


async def current_take(db: AsyncSession, visit_id: uuid.UUID, step_id: str, kind: CaptureKind) -> Capture | None:
    """The newest take of a step that no later take supersedes."""
    superseded = select(Capture.supersedes_id).where(Capture.visit_id == visit_id, Capture.supersedes_id.is_not(None))
    take: Capture | None = await db.scalar(
        select(Capture)
        .where(
            Capture.visit_id == visit_id,
            Capture.step_id == step_id,
            Capture.kind == kind,
            Capture.id.not_in(superseded),
        )
        .order_by(Capture.created_at.desc())
        .limit(1)
    )
    return take


async def new_take(
    db: AsyncSession,
    *,
    visit_id: uuid.UUID,
    step_id: str,
    kind: CaptureKind,
    created_by: uuid.UUID | None,
) -> Capture:
    """Start a take of a step; if one exists, the new take supersedes it (the old one is kept)."""
    previous = await current_take(db, visit_id, step_id, kind)
    capture = Capture(
        visit_id=visit_id,
        step_id=step_id,
        kind=kind,
        status=CaptureStatus.PENDING,
        supersedes_id=previous.id if previous else None,
        created_by=created_by,
    )
    db.add(capture)
    await db.flush()
    return capture


async def add_media(
    db: AsyncSession,
    store: MediaStore,
    *,
    visit_id: uuid.UUID,
    capture_id: uuid.UUID | None,
    content: bytes | Path,
    info: MediaInfo,
    primary: bool = False,
    thumbnail: bool = False,
    created_by: uuid.UUID | None = None,
) -> MediaFile:
    """Write the bytes durably to the store FIRST, then add the row (commits with the caller)."""
    stored = await (store.put_bytes(content) if isinstance(content, bytes) else store.put_file(content))
    if primary and capture_id is not None:
        for other in await media_of(db, capture_id):
            if not other.is_thumbnail:
                other.is_primary = False
    media = MediaFile(
        visit_id=visit_id,
        capture_id=capture_id,
        sha256=stored.sha256,
        size=stored.size,
        storage_key=stored.key,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        duration_ms=info.duration_ms,
        frames=info.frames,
        provenance=info.provenance,
        is_primary=primary,
        is_thumbnail=thumbnail,
        created_by=created_by,
    )
    db.add(media)
    await db.flush()
    return media


async def media_of(db: AsyncSession, capture_id: uuid.UUID) -> Sequence[MediaFile]:
    """All media files of a capture, oldest first."""
    rows = await db.scalars(select(MediaFile).where(MediaFile.capture_id == capture_id).order_by(MediaFile.created_at))
    return rows.all()


async def get_capture(db: AsyncSession, capture_id: uuid.UUID) -> Capture:
    """The capture, or RecordNotFound."""
    capture = await db.get(Capture, capture_id)
    if capture is None:
        raise RecordNotFound("capture not found")
    return capture


async def visit_takes(db: AsyncSession, visit_id: uuid.UUID, *, include_superseded: bool = False) -> Sequence[Capture]:
    """A visit's takes in capture order (by default only the current take of each step)."""
    stmt = select(Capture).where(Capture.visit_id == visit_id).order_by(Capture.created_at)
    if not include_superseded:
        superseded = select(Capture.supersedes_id).where(
            Capture.visit_id == visit_id, Capture.supersedes_id.is_not(None)
        )
        stmt = stmt.where(Capture.id.not_in(superseded))
    return (await db.scalars(stmt)).all()
