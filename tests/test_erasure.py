"""Erasing a patient when the law requires it: two admins, two steps, an audit tombstone, no leftovers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.erasure import COMPLETED, REQUESTED, confirm_erasure, request_erasure
from telehealth.records import audit, visits
from telehealth.records.accounts import create_user
from telehealth.records.backup import verify
from telehealth.records.errors import AccessDenied, Conflict
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import (
    AffectedSide,
    AuditEvent,
    Capture,
    CaptureKind,
    CaptureNote,
    MediaFile,
    Patient,
    Provenance,
    Role,
    Visit,
)
from telehealth.records.patients import create_patient
from telehealth.settings import Settings
from tests.conftest import PASSWORD, Staff


async def seed_patient(db: async_sessionmaker[AsyncSession], store: FileMediaStore, staff: Staff, mrn: str) -> str:
    """A patient with two visits, captures (one a retake), media files and a note; returns a media key."""
    async with db() as s, s.begin():
        p = await create_patient(
            s, mrn=mrn, given_name="Erin", family_name=f"Erase-{mrn}", birth_date=date(1960, 3, 4),
            affected_side=AffectedSide.RIGHT, created_by=staff.clinician,
        )  # fmt: skip
        key = ""
        for _ in range(2):
            v = await visits.schedule_visit(
                s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=datetime.now(UTC)
            )
            first = Capture(visit_id=v.id, step_id="smile", kind=CaptureKind.STILL)
            s.add(first)
            await s.flush()
            retake = Capture(visit_id=v.id, step_id="smile", kind=CaptureKind.STILL, supersedes_id=first.id)
            s.add(retake)
            await s.flush()
            stored = await store.put_bytes(f"{mrn}-{uuid.uuid4()}".encode())
            s.add(MediaFile(visit_id=v.id, capture_id=retake.id, sha256=stored.sha256, size=stored.size,
                            content_type="image/png", storage_key=stored.key, provenance=Provenance.DEVICE))  # fmt: skip
            s.add(CaptureNote(capture_id=retake.id, visit_id=v.id, text="asymmetry left", created_by=staff.clinician))
            key = stored.key
    return key


async def test_two_admins_erase_one_patient_and_leave_only_a_tombstone(
    settings: Settings, db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    store = FileMediaStore(settings.media_dir)
    gone_key = await seed_patient(db, store, staff, "ERASE-1")
    kept_key = await seed_patient(db, store, staff, "KEEP-1")
    async with db() as s, s.begin():
        second = await create_user(s, "admin2", "Second Admin", Role.ADMIN, PASSWORD)
    first_admin = audit.Actor(str(staff.admin), "admin", "cli")
    second_admin = audit.Actor(str(second.id), "admin", "cli")

    req = await request_erasure(db, first_admin, "ERASE-1", "GDPR art. 17 request of 2026-12-01")
    assert req.counts == {"capture_notes": 2, "captures": 4, "media_files": 2, "patients": 1, "visits": 2}
    async with db() as s:
        assert await s.scalar(select(func.count()).select_from(Patient)) == 2  # step one deletes nothing

    with pytest.raises(AccessDenied):
        await confirm_erasure(db, store, first_admin, req.request_id)  # the requester cannot confirm alone
    done = await confirm_erasure(db, store, second_admin, req.request_id)
    assert done.files_removed == 2 and done.counts == req.counts
    with pytest.raises(Conflict):
        await confirm_erasure(db, store, second_admin, req.request_id)

    async with db() as s:
        assert (await s.scalars(select(Patient.mrn))).all() == ["KEEP-1"]
        assert await s.scalar(select(func.count()).select_from(Visit)) == 2
        assert await s.scalar(select(func.count()).select_from(Capture)) == 4
        events = (await s.scalars(select(AuditEvent).where(AuditEvent.patient_id == req.patient_id))).all()
        refusals = (await s.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused"))).all()
    assert [e.action for e in events] == [REQUESTED, COMPLETED]
    assert events[1].actor_id == str(second.id) and events[1].detail["request"] == req.request_id
    assert "Erase" not in str([e.detail for e in events])  # the tombstone names no one
    assert len(refusals) == 2
    assert not store.local_path(gone_key).exists() and store.local_path(kept_key).exists()
    report = await verify(settings.database_url, settings.media_dir)
    assert report.ok and report.checked == 2


async def test_an_erasure_needs_a_reason_and_an_admin(
    settings: Settings, db: async_sessionmaker[AsyncSession], staff: Staff, tmp_path: Path
) -> None:
    await seed_patient(db, FileMediaStore(settings.media_dir), staff, "ERASE-2")
    with pytest.raises(Conflict):
        await request_erasure(db, audit.Actor(str(staff.admin), "admin", "cli"), "ERASE-2", "  ")
    with pytest.raises(AccessDenied):
        await request_erasure(db, audit.Actor(str(staff.clinician), "clinician", "cli"), "ERASE-2", "asked")
