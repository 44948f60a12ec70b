"""The response models of captured media: one per resource, shared by the capture panel, review and export."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, computed_field

from telehealth.capture.protocol import CaptureProtocol
from telehealth.records.captures import DeviceCopy, device_copy
from telehealth.records.models import Capture, CaptureKind, CaptureStatus, MediaFile, Provenance
from telehealth.records.quality import CaptureQuality, read_quality
from telehealth.records.review import PatientBrief, VisitBrief, media_url

PeerStatus = Literal["none", "connecting", "receiving", "closed"]


class MediaOut(BaseModel):
    """One stored file of a take (its bytes are served by GET /api/media/{id})."""

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
        return cls.model_validate({**_columns(m), "url": media_url(m.id)})


def _columns(m: MediaFile) -> dict[str, object]:
    names = ("id", "content_type", "size", "sha256", "width", "height", "duration_ms", "frames", "provenance")
    return {n: getattr(m, n) for n in (*names, "is_primary", "is_thumbnail", "created_at")}


class TakeOut(BaseModel):
    """One take of a step and kind, with its files and where its device copy stands."""

    capture_id: uuid.UUID
    kind: CaptureKind
    status: CaptureStatus
    created_at: datetime
    superseded: bool
    skip_reason: str | None
    flags: list[str]
    quality: CaptureQuality | None
    device_copy: DeviceCopy
    earlier_takes: int
    notes: int
    media: list[MediaOut]

    @classmethod
    def of(
        cls,
        c: Capture,
        media: Sequence[MediaFile],
        *,
        superseded: bool = False,
        earlier_takes: int = 0,
        notes: int = 0,
    ) -> TakeOut:
        """Serialize a take with its files."""
        quality = read_quality(c.quality)
        return cls(
            capture_id=c.id,
            kind=c.kind,
            status=c.status,
            created_at=c.created_at,
            superseded=superseded,
            skip_reason=c.skip_reason,
            flags=list(quality.flags) if quality else [],
            quality=quality,
            device_copy=device_copy(c, media),
            earlier_takes=earlier_takes,
            notes=notes,
            media=[MediaOut.of(m) for m in media],
        )


class StepOut(BaseModel):
    """One protocol step of a visit: its current still and clip, and every take (oldest first)."""

    id: str
    label: str
    instruction: str | None
    still: TakeOut | None
    clip: TakeOut | None
    takes: list[TakeOut]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step_id(self) -> str:
        """The same as ``id``; the name the review pages read."""
        return self.id


class ProtocolStepOut(BaseModel):
    """A step as the protocol defines it."""

    id: str
    label: str
    instruction: str
    still: bool
    clip: bool
    clip_seconds: float
    optional: bool


class ProtocolOut(BaseModel):
    """A capture protocol."""

    id: str
    version: int
    title: str
    steps: list[ProtocolStepOut]

    @classmethod
    def of(cls, p: CaptureProtocol) -> ProtocolOut:
        """Serialize a protocol."""
        steps = [
            ProtocolStepOut(
                id=s.id,
                label=s.label,
                instruction=s.instruction,
                still=s.still,
                clip=s.clip,
                clip_seconds=s.clip_seconds,
                optional=s.optional,
            )
            for s in p.steps
        ]
        return cls(id=p.id, version=p.version, title=p.title, steps=steps)


class TakeResultOut(BaseModel):
    """What a take or skip of a step created."""

    step_id: str
    still: TakeOut | None
    clip: TakeOut | None


class CaptureStatusOut(BaseModel):
    """Where a visit's capture stands (the clinician's panel)."""

    protocol: ProtocolOut | None
    peer: PeerStatus
    current_step: str | None
    steps: list[StepOut]
    complete: bool


class MontageOut(BaseModel):
    """A visit's series in protocol order; a step never captured has no still and no clip."""

    patient: PatientBrief
    visit: VisitBrief
    protocol: ProtocolOut | None
    steps: list[StepOut]


class ThumbOut(BaseModel):
    """One still in a timeline strip."""

    step_id: str
    label: str
    capture_id: uuid.UUID
    url: str
    provenance: Provenance
    flags: list[str]
    device_copy: DeviceCopy


class TimelineVisit(BaseModel):
    """One visit row of a timeline."""

    visit: VisitBrief
    stills: int
    clips: int
    thumbs: list[ThumbOut]
    grades: dict[str, dict[str, object]]


class TimelineOut(BaseModel):
    """A patient's visits, newest first."""

    patient: PatientBrief
    visits: list[TimelineVisit]


def by_capture(files: Iterable[MediaFile]) -> dict[uuid.UUID, list[MediaFile]]:
    """Media rows grouped by their take, in the given order."""
    out: dict[uuid.UUID, list[MediaFile]] = {}
    for m in files:
        if m.capture_id is not None:
            out.setdefault(m.capture_id, []).append(m)
    return out
