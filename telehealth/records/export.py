"""A visit's original files as a streamed ZIP with a manifest of SHA-256 hashes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import queue
import threading
import uuid
import zipfile
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.captures import StepInfo, current_takes, step_sequence
from telehealth.records.errors import Conflict, RecordNotFound
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import Capture, MediaFile, Patient, Visit
from telehealth.records.review import visit_header
from telehealth.records.types import utcnow

_CHUNK = 1024 * 1024


def _instant(value: datetime) -> str:
    return value.isoformat()


@dataclass(frozen=True)
class ZipEntry:
    """One original file of a visit and the name it gets inside the archive."""

    arcname: str
    media: MediaFile
    step_id: str | None
    kind: str | None
    current: bool
    step_label: str | None = None


_EXT = {"image/png": "png", "image/jpeg": "jpg", "video/webm": "webm", "video/mp4": "mp4"}


async def zip_entries(db: AsyncSession, visit_id: uuid.UUID, steps: Sequence[StepInfo]) -> list[ZipEntry]:
    """Every original (non-thumbnail) file of a visit, superseded takes included, in the order of ``steps``."""
    await visit_header(db, visit_id)
    captures = {c.id: c for c in await db.scalars(select(Capture).where(Capture.visit_id == visit_id))}
    current = {c.id for c, _ in current_takes(captures.values()).values()}
    media = (
        await db.scalars(
            select(MediaFile)
            .where(MediaFile.visit_id == visit_id, MediaFile.is_thumbnail.is_(False))
            .order_by(MediaFile.created_at, MediaFile.id)
        )
    ).all()
    sequence = step_sequence(steps, (c.step_id for c in captures.values()))
    order = {s.id: i for i, s in enumerate(sequence)}
    labels = {s.id: s.label for s in sequence}

    def key(m: MediaFile) -> tuple[int, str]:
        c = captures.get(m.capture_id) if m.capture_id else None
        return (order.get(c.step_id, len(order)) if c else len(order), m.created_at.isoformat())

    out = []
    for i, m in enumerate(sorted(media, key=key), start=1):
        c = captures.get(m.capture_id) if m.capture_id else None
        step = c.step_id if c else "unassigned"
        kind = c.kind.value if c else "file"
        ext = _EXT.get(m.content_type, "bin")
        # Names carry no patient data: order, step, kind, provenance and the start of the hash.
        name = f"media/{i:03d}_{step}_{kind}_{m.provenance.value}_{m.sha256[:12]}.{ext}"
        entry = ZipEntry(
            name,
            m,
            c.step_id if c else None,
            kind if c else None,
            c is None or c.id in current,
            labels.get(c.step_id) if c else None,
        )
        out.append(entry)
    return out


def zip_manifest(visit: Visit, patient: Patient, entries: Sequence[ZipEntry]) -> dict[str, Any]:
    """The manifest stored in the archive: what each file is and its SHA-256."""
    return {
        "visit_id": str(visit.id),
        "patient_id": str(patient.id),
        "mrn": patient.mrn,
        "scheduled_at": _instant(visit.scheduled_at),
        "generated_at": _instant(utcnow()),
        "hash_algorithm": "sha256",
        "files": [
            {
                "path": e.arcname,
                "sha256": e.media.sha256,
                "size": e.media.size,
                "content_type": e.media.content_type,
                "media_id": str(e.media.id),
                "capture_id": str(e.media.capture_id) if e.media.capture_id else None,
                "step_id": e.step_id,
                "step_label": e.step_label,
                "kind": e.kind,
                "provenance": e.media.provenance.value,
                "current_take": e.current,
                "created_at": _instant(e.media.created_at),
                "width": e.media.width,
                "height": e.media.height,
                "duration_ms": e.media.duration_ms,
                "frames": e.media.frames,
            }
            for e in entries
        ],
    }


class _Aborted(Exception):
    """The consumer went away; the producer thread stops writing."""


class _QueueWriter(io.RawIOBase):
    """An unseekable sink for zipfile that hands ~256 KiB chunks to a bounded queue (backpressure)."""

    def __init__(self, q: queue.Queue[bytes | None], stop: threading.Event, flush_at: int = 256 * 1024) -> None:
        self._q, self._stop, self._buf, self._flush_at = q, stop, bytearray(), flush_at

    def writable(self) -> bool:
        """zipfile checks this."""
        return True

    def write(self, b: Any) -> int:
        """Buffer, and pass full chunks on (blocking while the queue is full)."""
        self._buf += b
        while len(self._buf) >= self._flush_at:
            self._put(bytes(self._buf[: self._flush_at]))
            del self._buf[: self._flush_at]
        return len(b)

    def finish(self) -> None:
        """Hand over what is left, then the end marker."""
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(None)

    def _put(self, item: bytes | None) -> None:
        while True:
            if self._stop.is_set():
                raise _Aborted
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


def _write_zip(
    entries: Sequence[tuple[str, Path, str]],
    extra: Sequence[tuple[str, bytes]],
    sink: _QueueWriter,
) -> None:
    """Build the archive (runs in a worker thread); each file is re-hashed while it is copied."""
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for arcname, path, sha256 in entries:
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.file_size = path.stat().st_size
            h = hashlib.sha256()
            with path.open("rb") as src, zf.open(info, "w", force_zip64=info.file_size > 2**31) as dst:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
            if h.hexdigest() != sha256:
                # Better a broken download than an archive whose manifest lies about its content.
                raise Conflict(f"{arcname} failed its integrity check")
        for arcname, data in extra:
            zf.writestr(zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0)), data)
    sink.finish()


async def check_files(store: MediaStore, entries: Sequence[ZipEntry]) -> list[tuple[str, Path, str]]:
    """Resolve every entry to a readable file before the response starts (a missing file is a 404)."""

    def check() -> list[tuple[str, Path, str]]:
        out = []
        for e in entries:
            path = store.local_path(e.media.storage_key)
            if not path.is_file():
                raise RecordNotFound("a media file of this visit is missing from the store")
            out.append((e.arcname, path, e.media.sha256))
        return out

    return await asyncio.to_thread(check)


async def stream_zip(
    files: Sequence[tuple[str, Path, str]], manifest: dict[str, Any], *, max_chunks: int = 4
) -> AsyncGenerator[bytes, None]:
    """The ZIP as a stream of chunks; memory stays at about max_chunks x 256 KiB whatever the size."""
    sums = "".join(f"{sha}  {name}\n" for name, _, sha in files)
    extra = [
        ("manifest.json", json.dumps(manifest, indent=2).encode()),
        ("SHA256SUMS", sums.encode()),
    ]
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=max_chunks)
    stop = threading.Event()
    producer = asyncio.ensure_future(asyncio.to_thread(_write_zip, files, extra, _QueueWriter(q, stop)))
    try:
        while True:
            try:
                chunk = await asyncio.to_thread(q.get, True, 0.5)
            except queue.Empty:
                if producer.done():
                    producer.result()  # surfaces the producer's error
                    return
                continue
            if chunk is None:
                break
            yield chunk
        await producer
    finally:
        stop.set()
        if not producer.done():
            with contextlib.suppress(_Aborted):
                await producer
