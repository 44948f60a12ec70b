"""Face measurements of stored stills: one row per measuring run, history kept; the media never change."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.captures import visit_takes
from telehealth.records.errors import RecordNotFound
from telehealth.records.models import (
    Capture,
    CaptureKind,
    Measurement,
    MeasurementStatus,
    MediaFile,
    Patient,
    Visit,
    VisitState,
)


def pack_landmarks(points: NDArray[np.float64]) -> bytes:
    """Landmarks (n, 3) as zlib-compressed little-endian float32 (float32 keeps 1e-4 px at 4K widths)."""
    return zlib.compress(np.asarray(points, dtype="<f4").tobytes(), level=6)


def unpack_landmarks(blob: bytes) -> NDArray[np.float64]:
    """The inverse of :func:`pack_landmarks`: an (n, 3) float64 array."""
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").astype(np.float64).reshape(-1, 3)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one measuring run produced, ready to be stored."""

    status: MeasurementStatus
    model: str
    model_version: str
    code_version: str
    width: int | None = None
    height: int | None = None
    landmarks: NDArray[np.float64] | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    total_ms: float = 0.0


def add(db: AsyncSession, media: MediaFile, reading: Reading) -> Measurement:
    """Store a reading of a media file as a new row (earlier readings stay as history)."""
    row = Measurement(
        media_id=media.id,
        visit_id=media.visit_id,
        status=reading.status,
        model=reading.model,
        model_version=reading.model_version,
        code_version=reading.code_version,
        width=reading.width,
        height=reading.height,
        landmarks=pack_landmarks(reading.landmarks) if reading.landmarks is not None else None,
        metrics=reading.metrics,
        error=reading.error[:256] if reading.error else None,
        decode_ms=reading.decode_ms,
        detect_ms=reading.detect_ms,
        total_ms=reading.total_ms,
    )
    db.add(row)
    return row


def is_still(media: MediaFile) -> bool:
    """Whether a media file is a measurable still (an image that is not a thumbnail)."""
    return media.content_type.startswith("image/") and not media.is_thumbnail


async def get_media(db: AsyncSession, media_id: uuid.UUID) -> MediaFile:
    """The media file, or RecordNotFound."""
    media = await db.get(MediaFile, media_id)
    if media is None:
        raise RecordNotFound("media not found")
    return media


@dataclass(frozen=True, slots=True)
class MeasuredStill:
    """A still of a visit's current take, with its latest measurement (None until measured)."""

    step_id: str
    capture_id: uuid.UUID
    media: MediaFile
    measurement: Measurement | None


async def _latest_by_media(db: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Measurement]:
    """The newest measurement of every measured media file of these visits."""
    if not visit_ids:
        return {}
    rows = await db.scalars(
        select(Measurement).where(Measurement.visit_id.in_(visit_ids)).order_by(Measurement.created_at, Measurement.id)
    )
    return {m.media_id: m for m in rows}


async def _stills(db: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MeasuredStill]]:
    """Per visit: the stills of its current still takes, with their latest measurements."""
    out: dict[uuid.UUID, list[MeasuredStill]] = {vid: [] for vid in visit_ids}
    takes: dict[uuid.UUID, Capture] = {}
    for vid in visit_ids:
        for take in await visit_takes(db, vid):
            if take.kind is CaptureKind.STILL:
                takes[take.id] = take
    if not takes:
        return out
    latest = await _latest_by_media(db, visit_ids)
    files = await db.scalars(
        select(MediaFile).where(MediaFile.capture_id.in_(takes)).order_by(MediaFile.created_at, MediaFile.id)
    )
    for media in files:
        if media.capture_id is None or not is_still(media):
            continue
        take = takes[media.capture_id]
        out[take.visit_id].append(MeasuredStill(take.step_id, take.id, media, latest.get(media.id)))
    return out


async def visit_stills(db: AsyncSession, visit_id: uuid.UUID) -> tuple[Visit, Patient, list[MeasuredStill]]:
    """A visit, its patient and its measured stills; RecordNotFound for an unknown visit."""
    visit = await db.get(Visit, visit_id)
    if visit is None:
        raise RecordNotFound("visit not found")
    patient = await db.get(Patient, visit.patient_id)
    if patient is None:
        raise RecordNotFound("patient not found")
    return visit, patient, (await _stills(db, [visit_id]))[visit_id]


async def patient_stills(
    db: AsyncSession, patient_id: uuid.UUID
) -> tuple[Patient, list[tuple[Visit, list[MeasuredStill]]]]:
    """A patient and, per visit in time order (cancelled ones left out), its measured stills."""
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise RecordNotFound("patient not found")
    visits = (
        await db.scalars(
            select(Visit)
            .where(Visit.patient_id == patient_id, Visit.state != VisitState.CANCELLED)
            .order_by(Visit.scheduled_at, Visit.id)
        )
    ).all()
    stills = await _stills(db, [v.id for v in visits])
    return patient, [(v, stills[v.id]) for v in visits]


async def history(db: AsyncSession, media_id: uuid.UUID) -> Sequence[Measurement]:
    """Every measurement of one media file, oldest first."""
    rows = await db.scalars(
        select(Measurement).where(Measurement.media_id == media_id).order_by(Measurement.created_at, Measurement.id)
    )
    return rows.all()
