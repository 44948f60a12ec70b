"""Review: a patient's timeline and a visit's montage, in the order and with the labels of the visit's protocol."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.capture.catalogue import ProtocolCatalogue
from telehealth.capture.protocol import CaptureProtocol
from telehealth.handlers.capture.schemas import (
    MontageOut,
    ProtocolOut,
    ThumbOut,
    TimelineOut,
    TimelineVisit,
)
from telehealth.handlers.capture.series import visit_steps
from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, review
from telehealth.records.captures import current_takes, device_copy, step_sequence
from telehealth.records.models import CaptureKind, MediaFile, Visit
from telehealth.records.quality import read_quality

__all__ = ["montage", "series_protocol", "timeline"]


def series_protocol(catalogue: ProtocolCatalogue, visit: Visit) -> CaptureProtocol | None:
    """The protocol a visit's series is shown in: its own (id and version), else that id's newest,
    else the default for a visit where capture never started; None for an unknown protocol."""
    if visit.protocol_id is None:
        return catalogue.default
    return catalogue.get(visit.protocol_id, visit.protocol_version or "") or catalogue.latest(visit.protocol_id)


def _display_still(files: Sequence[MediaFile]) -> MediaFile | None:
    """The file a strip shows for a still: its thumbnail, else the primary, else any image."""
    images = [m for m in files if m.content_type.startswith("image/")]
    for pick in ([m for m in images if m.is_thumbnail], [m for m in images if m.is_primary], images):
        if pick:
            return pick[-1]
    return None


async def _timeline(db: AsyncSession, catalogue: ProtocolCatalogue, patient_id: uuid.UUID) -> TimelineOut:
    patient = await review.patient(db, patient_id)
    rows = await review.patient_visits(db, patient_id)
    visit_ids = [v.id for v, _ in rows]
    takes = current_takes(await review.takes_of(db, visit_ids))
    still_ids = [c.id for (_, _, kind), (c, _) in takes.items() if kind is CaptureKind.STILL]
    images = await review.images_of(db, visit_ids, still_ids)
    grades = await review.grades_by_visit(db, visit_ids)
    out = []
    for visit, clinician_name in rows:
        mine = {(step, kind): c for (vid, step, kind), (c, _) in takes.items() if vid == visit.id}
        protocol = series_protocol(catalogue, visit)
        thumbs = []
        for step in step_sequence(protocol.steps if protocol else (), (s for s, _ in mine)):
            still = mine.get((step.id, CaptureKind.STILL))
            shown = _display_still(images.get(still.id, [])) if still is not None else None
            if still is None or shown is None:
                continue
            quality = read_quality(still.quality)
            thumbs.append(
                ThumbOut(
                    step_id=step.id,
                    label=step.label,
                    capture_id=still.id,
                    url=review.media_url(shown.id),
                    provenance=shown.provenance,
                    flags=list(quality.flags) if quality else [],
                    device_copy=device_copy(still, images.get(still.id, [])),
                )
            )
        out.append(
            TimelineVisit(
                visit=review.visit_brief(visit, clinician_name),
                stills=sum(1 for _, k in mine if k is CaptureKind.STILL),
                clips=sum(1 for _, k in mine if k is CaptureKind.CLIP),
                thumbs=thumbs,
                grades=grades.get(visit.id, {}),
            )
        )
    return TimelineOut(patient=review.PatientBrief.of(patient), visits=out)


async def timeline(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalogue: ProtocolCatalogue,
    actor: audit.Actor,
    patient_id: uuid.UUID,
) -> TimelineOut:
    """A patient's visits, newest first, each with its stills as a strip in protocol order (audited)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        out = await _timeline(uow.db, catalogue, patient_id)
        uow.audit("view_timeline", object_type="patient", object_id=patient_id, patient_id=patient_id)
    return out


async def montage(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalogue: ProtocolCatalogue,
    actor: audit.Actor,
    visit_id: uuid.UUID,
) -> MontageOut:
    """A visit's takes in protocol order, every protocol step present ("not captured" if empty) (audited)."""
    async with UnitOfWork(sessionmaker, actor) as uow:
        visit, patient, clinician_name = await review.visit_header(uow.db, visit_id)
        takes = await review.takes_of(uow.db, [visit_id])
        media = await review.media_by_capture(uow.db, [visit_id])
        notes = await review.note_counts(uow.db, visit_id)
        uow.audit("view_montage", object_type="visit", object_id=visit_id, patient_id=patient.id)
    protocol = series_protocol(catalogue, visit)
    return MontageOut(
        patient=review.PatientBrief.of(patient),
        visit=review.visit_brief(visit, clinician_name),
        protocol=ProtocolOut.of(protocol) if protocol else None,
        steps=visit_steps(protocol.steps if protocol else (), takes, media, notes),
    )
