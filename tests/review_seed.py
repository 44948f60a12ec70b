"""Real, small media for review tests: drawn face stills (PNG), VP8 WebM clips, stored through records.captures."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import av
from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records import captures, patients, visits
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import AffectedSide, CaptureKind, CaptureStatus, Patient, Provenance, Visit
from telehealth.records.quality import CaptureQuality

STILL_SIZE = (360, 480)
THUMB_SIZE = (90, 120)
CLIP_SIZE = (320, 240)
CLIP_FPS = 15
CLIP_FRAMES = 30  # 2 s


def _face(step: str, size: tuple[int, int], tint: tuple[int, int, int], t: float = 1.0) -> Image.Image:
    """A drawn face whose expression follows the step (t in 0..1 is how far into the movement)."""
    w, h = size
    img = Image.new("RGB", size, (32 + tint[0] // 4, 38 + tint[1] // 4, 48 + tint[2] // 4))
    d = ImageDraw.Draw(img)
    cx, cy, rx, ry = w / 2, h * 0.5, w * 0.33, h * 0.36
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(228, 190, 160))
    lift = h * 0.04 * t if step == "brow_raise" else 0
    closed = step.startswith("eye_close")
    for side in (-1, 1):
        ex, ey = cx + side * rx * 0.45, cy - ry * 0.25
        d.line((ex - 22, ey - 28 - lift, ex + 22, ey - 30 - lift), fill=(90, 60, 40), width=5)
        if closed:
            d.line((ex - 16, ey, ex + 16, ey), fill=(60, 40, 30), width=4)
        else:
            d.ellipse((ex - 16, ey - 9, ex + 16, ey + 9), fill=(250, 250, 250))
            d.ellipse((ex - 7, ey - 7, ex + 7, ey + 7), fill=(60, 90, 140))
    my = cy + ry * 0.45
    smile = {"smile_open": 30, "smile_closed": 18, "lower_teeth": -10}.get(step, 4) * t
    if step == "pucker":
        d.ellipse((cx - 12, my - 10, cx + 12, my + 10), outline=(150, 60, 60), width=5)
    elif step in ("smile_open", "lower_teeth"):
        d.chord((cx - 45, my - 20, cx + 45, my + 20 + smile), 0, 180, fill=(150, 60, 60))
        d.rectangle((cx - 30, my, cx + 30, my + 8), fill=(245, 245, 240))
    else:
        d.arc((cx - 40, my - 15, cx + 40, my + 15 + smile), 10, 170, fill=(150, 60, 60), width=5)
    d.rectangle((0, 0, w, 18), fill=tint)
    return img


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@lru_cache(maxsize=64)
def still_png(step: str, tint: tuple[int, int, int], thumb: bool = False) -> bytes:
    """A PNG still of a step (cached: the same bytes are content-addressed once)."""
    return _png(_face(step, THUMB_SIZE if thumb else STILL_SIZE, tint))


@lru_cache(maxsize=64)
def clip_webm(step: str, tint: tuple[int, int, int]) -> bytes:
    """A 2 s VP8 WebM of the movement rest -> peak -> rest."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=CLIP_FPS)
        stream.width, stream.height = CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(CLIP_FRAMES):
            t = 1 - abs(i / (CLIP_FRAMES - 1) * 2 - 1)
            for packet in stream.encode(av.VideoFrame.from_image(_face(step, CLIP_SIZE, tint, t))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@dataclass
class SeededVisit:
    """What a seeded visit contains, for assertions."""

    visit: Visit
    stills: dict[str, uuid.UUID] = field(default_factory=dict)  # step -> capture id
    clips: dict[str, uuid.UUID] = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)  # media id -> bytes


async def make_patient(db: AsyncSession, mrn: str, *, created_by: uuid.UUID, family: str = "Doe") -> Patient:
    """A patient with a right-sided palsy."""
    return await patients.create_patient(
        db,
        mrn=mrn,
        given_name="Jane",
        family_name=family,
        birth_date=datetime(1980, 5, 17).date(),
        affected_side=AffectedSide.RIGHT,
        created_by=created_by,
    )


async def seed_visit(
    db: AsyncSession,
    store: MediaStore,
    *,
    patient_id: uuid.UUID,
    clinician_id: uuid.UUID,
    scheduled_at: datetime,
    steps: tuple[str, ...],
    clip_steps: tuple[str, ...] = (),
    tint: tuple[int, int, int] = (11, 107, 203),
    flags: dict[str, list[str]] | None = None,
    stream_copy: bool = True,
) -> SeededVisit:
    """A visit with a still (device primary + stream copy + thumbnail) per step and clips for clip_steps."""
    visit = await visits.schedule_visit(db, patient_id=patient_id, clinician_id=clinician_id, scheduled_at=scheduled_at)
    seeded = SeededVisit(visit)
    for step in steps:
        take = await captures.new_take(
            db, visit_id=visit.id, step_id=step, kind=CaptureKind.STILL, created_by=clinician_id
        )
        take.status = CaptureStatus.STORED
        if flags and step in flags:
            take.quality = CaptureQuality(source="device", flags=flags[step]).to_json()
        png = still_png(step, tint)
        w, h = STILL_SIZE
        m = await captures.add_media(
            db,
            store,
            visit_id=visit.id,
            capture_id=take.id,
            content=png,
            info=captures.MediaInfo("image/png", Provenance.DEVICE, w, h),
            primary=True,
            created_by=clinician_id,
        )
        seeded.media[str(m.id)] = png
        if stream_copy:
            low = _png(_face(step, (240, 320), tint))
            m = await captures.add_media(
                db,
                store,
                visit_id=visit.id,
                capture_id=take.id,
                content=low,
                info=captures.MediaInfo("image/png", Provenance.STREAM, 240, 320),
            )
            seeded.media[str(m.id)] = low
        thumb = still_png(step, tint, thumb=True)
        m = await captures.add_media(
            db,
            store,
            visit_id=visit.id,
            capture_id=take.id,
            content=thumb,
            info=captures.MediaInfo("image/png", Provenance.DERIVED, *THUMB_SIZE),
            thumbnail=True,
        )
        seeded.media[str(m.id)] = thumb
        seeded.stills[step] = take.id
    for step in clip_steps:
        take = await captures.new_take(
            db, visit_id=visit.id, step_id=step, kind=CaptureKind.CLIP, created_by=clinician_id
        )
        take.status = CaptureStatus.STORED
        webm = clip_webm(step, tint)
        m = await captures.add_media(
            db,
            store,
            visit_id=visit.id,
            capture_id=take.id,
            content=webm,
            info=captures.MediaInfo(
                "video/webm",
                Provenance.DEVICE,
                *CLIP_SIZE,
                duration_ms=CLIP_FRAMES * 1000 // CLIP_FPS,
                frames=CLIP_FRAMES,
            ),
            primary=True,
            created_by=clinician_id,
        )
        seeded.media[str(m.id)] = webm
        seeded.clips[step] = take.id
    await db.flush()
    return seeded
