"""Media files: who may read which stored file; every access is audited before a byte is served."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, review
from telehealth.records.errors import RecordNotFound
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import MediaFile

__all__ = ["MediaAccess", "open_media"]


@dataclass(frozen=True, slots=True)
class MediaAccess:
    """A stored file ready to serve, and the name it is served under."""

    media: MediaFile
    path: Path
    stem: str  # "<step>-<kind>" or "file"


async def open_media(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: MediaStore,
    actor: audit.Actor,
    media_id: uuid.UUID,
    *,
    download: bool,
    range_header: str | None,
) -> MediaAccess:
    """Audit the view or download of one file and locate it (RecordNotFound if its bytes are gone)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        media, patient_id, capture = await review.media_with_context(uow.db, media_id)
        uow.audit(
            "download_media" if download else "view_media",
            object_type="media",
            object_id=media_id,
            patient_id=patient_id,
            detail={"range": range_header[:64]} if range_header else None,
        )
    path = store.local_path(media.storage_key)
    if not await asyncio.to_thread(path.is_file):
        raise RecordNotFound("media file missing")
    return MediaAccess(media, path, f"{capture.step_id}-{capture.kind.value}" if capture else "file")
