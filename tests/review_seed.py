"""Real media for review tests (drawn face stills, VP8 WebM clips), stored through the capture writers."""

from __future__ import annotations

import asyncio
import io
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import av
from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.capture import StillImage, StillRule, StillScores, default_protocol, make_thumbnail
from telehealth.capture.quality import assess_still_bytes
from telehealth.capture.runner import StillCut
from telehealth.capture.uploads import UploadLimits
from telehealth.handlers.capture.takes import store_still_take
from telehealth.handlers.capture.uploads import PreparedCopy, prepare_device_copy, store_device_copy
from telehealth.records import captures, patients, visits
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import AffectedSide, CaptureKind, Patient, Visit
from telehealth.records.quality import read_quality

STILL_SIZE = (810, 1080)  # the patient's phone: above the 800x600 minimum, so no low_resolution flag
STREAM_SIZE = (360, 480)  # the same moment from the video stream
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
    thumbs: dict[str, bytes] = field(default_factory=dict)  # step -> the device still's thumbnail


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


async def _device_copy(kind: CaptureKind, content_type: str, data: bytes) -> tuple[PreparedCopy, bytes, bytes | None]:
    """What the upload pipeline makes of the patient device's file: (prepared, stored bytes, thumbnail)."""

    def prepare() -> tuple[PreparedCopy, bytes, bytes | None]:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "body"
            raw.write_bytes(data)
            copy = prepare_device_copy(kind, content_type, raw, Path(tmp) / "clean", UploadLimits())
            if isinstance(copy.content, Path):  # a remuxed clip: keep its bytes, the directory goes
                body = copy.content.read_bytes()
                copy = replace(copy, content=body)
            else:
                body = copy.content
            return copy, body, copy.thumbnail

    return await asyncio.to_thread(prepare)


def _stream_cut(step: str, tint: tuple[int, int, int]) -> StillCut:
    """What the server peer cuts from the patient's stream: a smaller still, its scores and quality."""
    png = _png(_face(step, STREAM_SIZE, tint))
    w, h = STREAM_SIZE
    image = StillImage(png, "image/png", w, h, timestamp=0.0, thumbnail=make_thumbnail(png))
    rule = StillRule.SHARPEST if step == "rest" else StillRule.PEAK_EXPRESSION
    scores = StillScores(
        rule, expression=12.0, sharpness=150.0, sharpness_threshold=40.0, candidates=20, baseline_timestamp=0.0
    )
    return StillCut(image, scores, assess_still_bytes(image.thumbnail, w, h, source="stream", scores=scores))


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
    """A visit captured the way the product writes it: the default protocol started, a still per step
    (the stream copy cut by the server unless ``stream_copy`` is off, then the device copy uploaded),
    and clips of ``clip_steps`` from the device. ``flags`` stand for the face-level checks (head pose)
    that capture lists as not run; the picture-level checks run for real.
    """
    visit = await visits.schedule_visit(db, patient_id=patient_id, clinician_id=clinician_id, scheduled_at=scheduled_at)
    protocol = default_protocol()
    visit.consent_capture = True
    visit.protocol_id, visit.protocol_version = protocol.id, str(protocol.version)  # as capture start records
    seeded = SeededVisit(visit)
    for step in steps:
        cut = _stream_cut(step, tint) if stream_copy else None
        take, stream_files = await store_still_take(db, store, visit.id, step, cut, clinician_id)
        if cut is not None:
            for m, data in zip(stream_files, (cut.image.data, cut.image.thumbnail), strict=True):
                seeded.media[str(m.id)] = data
        copy, body, thumb = await _device_copy(CaptureKind.STILL, "image/png", still_png(step, tint))
        m = await store_device_copy(db, store, take, copy)
        seeded.media[str(m.id)] = body
        seeded.thumbs[step] = thumb or b""
        if flags and step in flags:
            quality = read_quality(take.quality)
            assert quality is not None
            take.quality = quality.model_copy(update={"flags": [*quality.flags, *flags[step]]}).to_json()
        seeded.stills[step] = take.id
    for step in clip_steps:
        take = await captures.new_take(
            db, visit_id=visit.id, step_id=step, kind=CaptureKind.CLIP, created_by=clinician_id
        )
        copy, body, _ = await _device_copy(CaptureKind.CLIP, "video/webm", clip_webm(step, tint))
        m = await store_device_copy(db, store, take, copy)
        seeded.media[str(m.id)] = body
        seeded.clips[step] = take.id
    await db.flush()
    return seeded
