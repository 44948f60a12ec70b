"""Captures of protocol steps and their media files; retakes supersede, never delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import RecordNotFound
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import Capture, CaptureKind, CaptureStatus, MediaFile, Provenance


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
