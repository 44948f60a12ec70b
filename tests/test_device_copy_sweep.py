"""A take whose device copy never arrives is marked after the bounded time; nothing else is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.capture import CaptureChange
from telehealth.handlers.capture.sweep import DeviceCopySweep
from telehealth.records import captures
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, Capture, CaptureKind, CaptureStatus
from telehealth.settings import Settings
from tests.conftest import Staff
from tests.review_seed import make_patient, seed_visit


async def test_only_takes_still_waiting_for_their_device_copy_are_marked_missing_once(
    db: async_sessionmaker[AsyncSession], staff: Staff, settings: Settings
) -> None:
    store = FileMediaStore(settings.media_dir)
    async with db() as s, s.begin():
        p = await make_patient(s, "SWEEP-1", created_by=staff.clinician)
        seeded = await seed_visit(
            s, store, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=datetime.now(UTC), steps=("rest",)
        )
        vid = seeded.visit.id
        waiting = await captures.new_take(s, visit_id=vid, step_id="snarl", kind=CaptureKind.CLIP, created_by=None)
        skipped = await captures.new_take(s, visit_id=vid, step_id="pucker", kind=CaptureKind.STILL, created_by=None)
        skipped.status, skipped.skip_reason = CaptureStatus.SKIPPED, "pain"
    told: list[tuple[uuid.UUID, CaptureChange]] = []

    async def changed(visit_id: uuid.UUID, reason: CaptureChange) -> None:
        told.append((visit_id, reason))

    not_yet = DeviceCopySweep(db, timedelta(minutes=10), changed)
    assert await not_yet.run_once() == 0  # nothing is ten minutes old yet
    sweep = DeviceCopySweep(db, timedelta(0), changed)
    assert await sweep.run_once() == 1
    assert await sweep.run_once() == 0  # marked once
    async with db() as s:
        marked = (await s.scalars(select(Capture).where(Capture.device_missing_at.is_not(None)))).all()
        events = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "device_copy_missing"))).all()
    assert [c.id for c in marked] == [waiting.id]  # the arrived device still and the skipped step are not
    assert [(e.object_id, e.patient_id, e.actor_role) for e in events] == [(str(waiting.id), p.id, "system")]
    assert told == [(vid, CaptureChange.DEVICE_COPY_MISSING)]
