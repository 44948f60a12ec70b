"""Captures and media rows: retakes keep the earlier take; files are stored before rows."""

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import captures, patients, visits
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AffectedSide, CaptureKind, Provenance
from telehealth.records.types import utcnow
from tests.conftest import Staff


async def test_retake_supersedes_and_both_takes_and_files_remain(
    db: async_sessionmaker[AsyncSession], staff: Staff, tmp_path: Path
) -> None:
    store = FileMediaStore(tmp_path / "media")
    async with db() as s, s.begin():
        p = await patients.create_patient(
            s,
            mrn="R1",
            given_name="A",
            family_name="B",
            birth_date=utcnow().date(),
            affected_side=AffectedSide.RIGHT,
            created_by=staff.clinician,
        )
        v = await visits.schedule_visit(s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=utcnow())
        first = await captures.new_take(
            s, visit_id=v.id, step_id="rest", kind=CaptureKind.STILL, created_by=staff.clinician
        )
        m1 = await captures.add_media(
            s,
            store,
            visit_id=v.id,
            capture_id=first.id,
            content=b"take one",
            info=captures.MediaInfo("image/png", Provenance.STREAM, 1280, 720),
            primary=True,
        )
        second = await captures.new_take(
            s, visit_id=v.id, step_id="rest", kind=CaptureKind.STILL, created_by=staff.clinician
        )
        await captures.add_media(
            s,
            store,
            visit_id=v.id,
            capture_id=second.id,
            content=b"take two",
            info=captures.MediaInfo("image/png", Provenance.STREAM, 1280, 720),
            primary=True,
        )
    assert second.supersedes_id == first.id
    async with db() as s:
        current = await captures.visit_takes(s, v.id)
        everything = await captures.visit_takes(s, v.id, include_superseded=True)
        assert [c.id for c in current] == [second.id]
        assert {c.id for c in everything} == {first.id, second.id}
        assert [m.sha256 for m in await captures.media_of(s, first.id)] == [m1.sha256]
    assert await store.verify(m1.storage_key)


async def test_device_upload_becomes_primary_and_stream_copy_stays(
    db: async_sessionmaker[AsyncSession], staff: Staff, tmp_path: Path
) -> None:
    store = FileMediaStore(tmp_path / "media")
    async with db() as s, s.begin():
        p = await patients.create_patient(
            s,
            mrn="R2",
            given_name="A",
            family_name="B",
            birth_date=utcnow().date(),
            affected_side=AffectedSide.LEFT,
            created_by=None,
        )
        v = await visits.schedule_visit(s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=utcnow())
        take = await captures.new_take(s, visit_id=v.id, step_id="smile_open", kind=CaptureKind.STILL, created_by=None)
        stream = await captures.add_media(
            s,
            store,
            visit_id=v.id,
            capture_id=take.id,
            content=b"stream",
            info=captures.MediaInfo("image/png", Provenance.STREAM),
            primary=True,
        )
        device = await captures.add_media(
            s,
            store,
            visit_id=v.id,
            capture_id=take.id,
            content=b"device",
            info=captures.MediaInfo("image/jpeg", Provenance.DEVICE),
            primary=True,
        )
    async with db() as s:
        rows = {m.id: m for m in await captures.media_of(s, take.id)}
    assert rows[device.id].is_primary and not rows[stream.id].is_primary
    assert rows[stream.id].provenance == Provenance.STREAM
