"""Device uploads: the patient's own full-resolution copy of a take, stored as its primary file.

The file checks and re-encoding live in ``telehealth.capture.uploads``; this module holds the
rules (whose capture, which kind takes which type, idempotency) and the database work.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import StreamReader
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth import metrics
from telehealth.capture import uploads
from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, captures, visits
from telehealth.records.errors import DomainError, InvalidInput, InvalidStateError, RecordNotFound, UnsupportedMedia
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import Capture, CaptureKind, CaptureStatus, MediaFile, Provenance
from telehealth.records.quality import CaptureQuality, CopyQuality, read_quality
from telehealth.settings import Settings

from .events import CaptureChange, CaptureListener, notify
from .takes import consented

__all__ = ["MAX_IDEMPOTENCY_KEY", "DeviceUploads", "PreparedCopy", "prepare_device_copy", "store_device_copy"]

log = logging.getLogger(__name__)

_UPLOAD_IDS = uuid.UUID("6f1d3c2e-6a55-4b8e-9a51-2f1e0d7c9b10")  # namespace of idempotent upload ids
MAX_IDEMPOTENCY_KEY = 128


class DeviceUploads:
    """Receives, checks and stores device uploads; owns the upload executor."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        *,
        listener: Callable[[], CaptureListener],
    ) -> None:
        self.settings = settings
        self.limits = uploads.UploadLimits.from_settings(settings)
        self._sessionmaker = sessionmaker
        self._store = store
        self._listener = listener
        # Its own threads: re-encoding a 12 MP photo must not delay a live still.
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="upload")

    def close(self) -> None:
        """Stop the upload threads (requests are over by then)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def upload(
        self,
        capture_id: uuid.UUID,
        *,
        visit_scope: uuid.UUID,
        content_type: str | None,
        idempotency_key: str | None,
        body: StreamReader,
        content_length: int | None,
        actor: audit.Actor,
    ) -> tuple[MediaFile, bool]:
        """Store a device upload as the capture's primary file; returns (media, created)."""
        key = (idempotency_key or "").strip()
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidInput(f"an Idempotency-Key header of 1-{MAX_IDEMPOTENCY_KEY} characters is required")
        ctype = uploads.declared_type(content_type)
        media_id = uuid.uuid5(_UPLOAD_IDS, f"{capture_id}:{key}")
        async with self._sessionmaker() as db:
            capture = await db.get(Capture, capture_id)
            if capture is None or capture.visit_id != visit_scope:
                raise RecordNotFound("capture not found")
            consented(await visits.get_visit(db, capture.visit_id))
            if (existing := await db.get(MediaFile, media_id)) is not None:
                return existing, False  # a repeat of an upload already stored
            if capture.status is CaptureStatus.SKIPPED:
                raise InvalidStateError("this step was skipped; take it again before uploading")
            wanted = uploads.IMAGE_TYPES if capture.kind is CaptureKind.STILL else uploads.VIDEO_TYPES
            if ctype not in wanted:
                raise UnsupportedMedia(f"a {capture.kind.value} capture takes {' or '.join(sorted(wanted))}")
            kind = capture.kind
        loop = asyncio.get_running_loop()
        workdir = await loop.run_in_executor(self._executor, uploads.upload_dir, self.settings.var_dir)
        started = time.perf_counter()
        try:
            raw = workdir / "body"
            head = await uploads.receive_body(
                body, raw, limit=self.limits.for_type(ctype), declared_length=content_length, executor=self._executor
            )
            if (sniffed := uploads.sniff(head)) != ctype:
                raise UnsupportedMedia(f"declared {ctype} but the body is {sniffed or 'not a supported type'}")
            media, created = await self._store_upload(
                capture_id, media_id, kind, ctype, raw, workdir, actor=actor, key=key
            )
            metrics.record_upload(kind.value, ok=True, nbytes=media.size, seconds=time.perf_counter() - started)
            return media, created
        except DomainError as exc:
            metrics.record_upload(kind.value, ok=False)
            log.warning("upload to capture %s refused: %s (%s)", capture_id, exc.code, exc.message)
            raise
        except asyncio.CancelledError:  # the client went away and the server cancels handlers
            metrics.record_upload(kind.value, ok=False)
            log.warning("upload to capture %s incomplete: the client went away", capture_id)
            raise
        finally:
            await loop.run_in_executor(self._executor, uploads.remove_dir, workdir)

    async def _store_upload(
        self,
        capture_id: uuid.UUID,
        media_id: uuid.UUID,
        kind: CaptureKind,
        ctype: str,
        raw: Path,
        workdir: Path,
        *,
        actor: audit.Actor,
        key: str,
    ) -> tuple[MediaFile, bool]:
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(
            self._executor, prepare_device_copy, kind, ctype, raw, workdir / "clean", self.limits
        )
        try:
            async with UnitOfWork(self._sessionmaker, actor) as uow:
                capture = await captures.get_capture(uow.db, capture_id)
                visit = await visits.get_visit(uow.db, capture.visit_id)
                media = await store_device_copy(uow.db, self._store, capture, prepared, media_id=media_id)
                info = prepared.info
                uow.audit(
                    "upload",
                    object_type="media",
                    object_id=media.id,
                    patient_id=visit.patient_id,
                    detail={
                        "capture_id": str(capture_id),
                        "kind": kind.value,
                        "content_type": info.content_type,
                        "size": media.size,
                        "sha256": media.sha256,
                        "idempotency_key": hashlib.sha256(key.encode()).hexdigest()[:16],
                    },
                )
        except IntegrityError:
            async with self._sessionmaker() as db:
                existing = await db.get(MediaFile, media_id)
            if existing is None:
                raise
            return existing, False
        log.info("capture %s: device %s stored (%d bytes)", capture_id, kind.value, media.size)
        await notify(self._listener(), visit.id, CaptureChange.UPLOAD_STORED)
        return media, True


@dataclass(frozen=True, slots=True)
class PreparedCopy:
    """A device copy checked and cleaned, ready to store."""

    content: bytes | Path
    thumbnail: bytes | None
    quality: CaptureQuality
    info: captures.MediaInfo


def prepare_device_copy(
    kind: CaptureKind, ctype: str, raw: Path, clean: Path, limits: uploads.UploadLimits
) -> PreparedCopy:
    """Re-encode a still (PNG, no metadata) or remux a clip into ``clean``. Blocking: run it in an executor."""
    if kind is CaptureKind.STILL:
        still = uploads.prepare_still(raw, ctype, limits)
        info = captures.MediaInfo("image/png", Provenance.DEVICE, still.width, still.height)
        return PreparedCopy(still.png, still.thumbnail, still.quality, info)
    clip = uploads.prepare_clip(raw, ctype, clean, limits)
    info = captures.MediaInfo(
        clip.content_type, Provenance.DEVICE, clip.width, clip.height, clip.duration_ms, clip.frames
    )
    return PreparedCopy(clip.path, None, CaptureQuality(source="device", width=clip.width, height=clip.height), info)


async def store_device_copy(
    db: AsyncSession, store: MediaStore, capture: Capture, copy: PreparedCopy, *, media_id: uuid.UUID | None = None
) -> MediaFile:
    """Store the device copy as the take's primary file (the stream copy stays, demoted); commits with ``db``."""
    media = await captures.add_media(
        db, store, visit_id=capture.visit_id, capture_id=capture.id, content=copy.content, info=copy.info, primary=True
    )
    if media_id is not None:
        # The id derives from (capture, Idempotency-Key): a concurrent repeat, even in
        # another process, collides on the primary key instead of adding a second row.
        media.id = media_id
        await db.flush()
    if copy.thumbnail is not None:
        await captures.add_media(
            db,
            store,
            visit_id=capture.visit_id,
            capture_id=capture.id,
            content=copy.thumbnail,
            info=captures.MediaInfo("image/jpeg", Provenance.DEVICE),
            thumbnail=True,
        )
    previous = read_quality(capture.quality)
    # Keep the stream copy's figures next to the device's: both files stay.
    stream: CopyQuality | None = None
    if previous is not None:
        stream = previous if previous.source == "stream" else previous.stream
    capture.status = CaptureStatus.STORED
    capture.device_missing_at = None  # late, but here: the take is no longer missing it
    capture.quality = copy.quality.model_copy(update={"stream": _copy_only(stream)}).to_json()
    return media


def _copy_only(quality: CopyQuality | None) -> CopyQuality | None:
    """A copy's own figures, without a nested stream record."""
    return CopyQuality.model_validate(quality.model_dump(exclude={"stream"})) if quality is not None else None
