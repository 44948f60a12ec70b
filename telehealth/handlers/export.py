"""Export a visit: the FHIR Bundle and the ZIP of originals, in the order and labels of its protocol."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.capture.catalogue import ProtocolCatalogue
from telehealth.handlers.analysis import measured_steps
from telehealth.handlers.review import series_protocol
from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, export, fhir, review
from telehealth.records.mediastore import MediaStore

__all__ = ["ExportHandler", "ZipExport"]


@dataclass(frozen=True, slots=True)
class ZipExport:
    """What the ZIP of a visit holds: its checked files and its manifest."""

    files: list[tuple[str, Path, str]]
    manifest: dict[str, Any]

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The archive's bytes, streamed (files re-hashed as they are read)."""
        return export.stream_zip(self.files, self.manifest)


class ExportHandler:
    """A visit for the hospital record: FHIR Bundle or ZIP of originals, audited."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], catalogue: ProtocolCatalogue, store: MediaStore
    ) -> None:
        self._sessionmaker = sessionmaker
        self._catalogue = catalogue
        self._store = store

    async def fhir(self, actor: audit.Actor, visit_id: uuid.UUID, *, base_url: str) -> dict[str, Any]:
        """The FHIR Bundle of a visit (audited)."""
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            visit, _, _ = await review.visit_header(uow.db, visit_id)
            protocol = series_protocol(self._catalogue, visit)
            steps = protocol.steps if protocol else ()
            measured = await measured_steps(uow.db, visit_id)
            bundle = await fhir.fhir_bundle(
                uow.db, self._store, visit_id, base_url=base_url, steps=steps, measured=measured
            )
            uow.audit(
                "export_fhir",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"entries": len(bundle["entry"])},
            )
        return bundle

    async def zip(self, actor: audit.Actor, visit_id: uuid.UUID) -> ZipExport:
        """The files and manifest of a visit's ZIP, each file checked present (audited before a byte is sent)."""
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            visit, patient, _ = await review.visit_header(uow.db, visit_id)
            protocol = series_protocol(self._catalogue, visit)
            entries = await export.zip_entries(uow.db, visit_id, protocol.steps if protocol else ())
            files = await export.check_files(self._store, entries)
            uow.audit(
                "export_zip",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"files": len(entries)},
            )
        return ZipExport(files, export.zip_manifest(visit, patient, entries))
