"""Export a visit: the FHIR Bundle and the ZIP of originals, in the order and labels of its protocol."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.capture.catalogue import ProtocolCatalogue
from telehealth.handlers.review import series_protocol
from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, export, fhir, review
from telehealth.records.mediastore import MediaStore

__all__ = ["ZipExport", "fhir_export", "zip_export"]


async def fhir_export(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalogue: ProtocolCatalogue,
    store: MediaStore,
    actor: audit.Actor,
    visit_id: uuid.UUID,
    *,
    base_url: str,
) -> dict[str, Any]:
    """The FHIR Bundle of a visit (audited)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        visit, _, _ = await review.visit_header(uow.db, visit_id)
        protocol = series_protocol(catalogue, visit)
        steps = protocol.steps if protocol else ()
        bundle = await fhir.fhir_bundle(uow.db, store, visit_id, base_url=base_url, steps=steps)
        uow.audit(
            "export_fhir",
            object_type="visit",
            object_id=visit_id,
            patient_id=visit.patient_id,
            detail={"entries": len(bundle["entry"])},
        )
    return bundle


@dataclass(frozen=True, slots=True)
class ZipExport:
    """What the ZIP of a visit holds: its checked files and its manifest."""

    files: list[tuple[str, Path, str]]
    manifest: dict[str, Any]


async def zip_export(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalogue: ProtocolCatalogue,
    store: MediaStore,
    actor: audit.Actor,
    visit_id: uuid.UUID,
) -> ZipExport:
    """The files and manifest of a visit's ZIP, every file checked present (audited before any byte is sent)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        visit, patient, _ = await review.visit_header(uow.db, visit_id)
        protocol = series_protocol(catalogue, visit)
        entries = await export.zip_entries(uow.db, visit_id, protocol.steps if protocol else ())
        files = await export.check_files(store, entries)
        uow.audit(
            "export_zip",
            object_type="visit",
            object_id=visit_id,
            patient_id=visit.patient_id,
            detail={"files": len(entries)},
        )
    return ZipExport(files, export.zip_manifest(visit, patient, entries))
