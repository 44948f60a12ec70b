"""Review API: timeline, montage, notes and media streaming, all audited and scoped to their record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.capture import default_protocol
from telehealth.records import captures
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, CaptureKind, Provenance
from telehealth.settings import Settings
from tests.conftest import Staff, login
from tests.review_seed import SeededVisit, make_patient, seed_visit

BEFORE = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
AFTER = BEFORE + timedelta(days=180)


@dataclass
class Record:
    patient_id: uuid.UUID
    before: SeededVisit
    after: SeededVisit
    other_patient_visit: SeededVisit


@pytest.fixture
async def record(db: async_sessionmaker[AsyncSession], staff: Staff, settings: Settings) -> Record:
    """A patient with a visit before and after surgery, and another patient's visit."""
    store = FileMediaStore(settings.media_dir)
    async with db() as s, s.begin():
        p = await make_patient(s, "MRN-1", created_by=staff.clinician)
        # Captured out of protocol order on purpose: the review must put them back in order.
        before = await seed_visit(
            s,
            store,
            patient_id=p.id,
            clinician_id=staff.clinician,
            scheduled_at=BEFORE,
            steps=("smile_open", "rest"),
            clip_steps=("smile_open",),
            flags={"smile_open": ["yaw"]},
        )
        after = await seed_visit(
            s,
            store,
            patient_id=p.id,
            clinician_id=staff.clinician,
            scheduled_at=AFTER,
            steps=("rest",),
            tint=(200, 80, 40),
            stream_copy=False,
        )
        other = await make_patient(s, "MRN-2", created_by=staff.clinician, family="Roe")
        elsewhere = await seed_visit(
            s, store, patient_id=other.id, clinician_id=staff.clinician, scheduled_at=BEFORE, steps=("rest",)
        )
    return Record(p.id, before, after, elsewhere)


async def _events(db: async_sessionmaker[AsyncSession], action: str) -> list[AuditEvent]:
    async with db() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_timeline_lists_visits_newest_first_with_stills_in_protocol_order(
    client: TestClient[Any, Any], record: Record, db: async_sessionmaker[AsyncSession]
) -> None:
    me = await login(client, "reviewer")
    r = await client.get(f"/api/patients/{record.patient_id}/timeline")
    assert r.status == 200, await r.text()
    data = await r.json()
    assert [v["visit"]["id"] for v in data["visits"]] == [str(record.after.visit.id), str(record.before.visit.id)]
    before = data["visits"][1]
    assert [t["step_id"] for t in before["thumbs"]] == ["rest", "smile_open"]
    assert before["stills"] == 2 and before["clips"] == 1
    # The strip shows thumbnails, not the full-size originals.
    thumb = before["thumbs"][1]
    assert thumb["flags"] == ["yaw"]
    assert (await (await client.get(thumb["url"])).read()) == record.before.thumbs["smile_open"]
    (event,) = await _events(db, "view_timeline")
    assert event.patient_id == record.patient_id and event.actor_id == me["user_id"]


async def test_montage_shows_every_protocol_step_with_provenance_flags_and_retakes(
    client: TestClient[Any, Any], record: Record, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    v = record.before.visit
    async with db() as s, s.begin():
        retake = await captures.new_take(s, visit_id=v.id, step_id="rest", kind=CaptureKind.STILL, created_by=None)
        await captures.add_media(
            s,
            FileMediaStore(settings.media_dir),
            visit_id=v.id,
            capture_id=retake.id,
            content=b"\x89PNG retake",
            info=captures.MediaInfo("image/png", Provenance.STREAM, 640, 360),
            primary=True,
        )
    await login(client, "reviewer")
    data = await (await client.get(f"/api/visits/{v.id}/montage")).json()
    assert [s["step_id"] for s in data["steps"]] == [step.id for step in default_protocol().steps]
    steps = {s["step_id"]: s for s in data["steps"]}
    rest = steps["rest"]["still"]
    assert rest["capture_id"] == str(retake.id) and rest["earlier_takes"] == 1
    assert [m["provenance"] for m in rest["media"]] == ["stream"]
    smile = steps["smile_open"]
    assert smile["still"]["flags"] == ["yaw"]
    # The stream copy and its thumbnail, then the device copy (primary) and its thumbnail.
    assert sorted(m["provenance"] for m in smile["still"]["media"]) == ["device", "device", "stream", "stream"]
    clip = smile["clip"]["media"][0]
    assert (
        clip["content_type"] == "video/webm" and clip["frames"] == 30 and abs(clip["duration_ms"] - 2000) <= 1
    )  # WebM ms time base
    assert steps["snarl"]["still"] is None and steps["snarl"]["clip"] is None
    (event,) = await _events(db, "view_montage")
    assert event.object_id == str(v.id) and event.patient_id == record.patient_id


async def test_unknown_or_foreign_ids_are_not_found(client: TestClient[Any, Any], record: Record) -> None:
    await login(client, "clinician")
    assert (await client.get(f"/api/patients/{uuid.uuid4()}/timeline")).status == 404
    assert (await client.get(f"/api/visits/{uuid.uuid4()}/montage")).status == 404
    assert (await client.get("/api/visits/not-a-uuid/montage")).status == 404
    assert (await client.get(f"/api/media/{uuid.uuid4()}")).status == 404
    # A capture addressed through a visit it does not belong to does not exist there.
    foreign = record.other_patient_visit.stills["rest"]
    r = await client.get(f"/api/visits/{record.before.visit.id}/captures/{foreign}/notes")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await client.post(f"/api/visits/{record.before.visit.id}/captures/{foreign}/notes", json={"text": "x"})
    assert r.status == 404


async def test_notes_on_a_capture_are_kept_with_author_and_audited(
    client: TestClient[Any, Any], record: Record, db: async_sessionmaker[AsyncSession]
) -> None:
    v, cid = record.before.visit, record.before.stills["smile_open"]
    await login(client, "reviewer")
    url = f"/api/visits/{v.id}/captures/{cid}/notes"
    r = await client.post(url, json={"text": "  Head turned ~10 deg to the left; yaw invalidates symmetry.  "})
    assert r.status == 201, await r.text()
    assert (await r.json())["author_name"] == "Dr. Rev"
    bad = await client.post(url, json={"text": "   "})
    assert bad.status == 400 and (await bad.json())["error"]["details"][0]["field"] == "text"
    notes = (await (await client.get(url)).json())["items"]
    assert [n["text"] for n in notes] == ["Head turned ~10 deg to the left; yaw invalidates symmetry."]
    montage = await (await client.get(f"/api/visits/{v.id}/montage")).json()
    assert next(s for s in montage["steps"] if s["step_id"] == "smile_open")["still"]["notes"] == 1
    assert len(await _events(db, "add_note")) == 1 and len(await _events(db, "view_notes")) == 1


async def test_media_streams_with_ranges_downloads_and_every_access_is_audited(
    client: TestClient[Any, Any], record: Record, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "reviewer")
    clip_id, clip = next((k, v) for k, v in record.before.media.items() if v.startswith(b"\x1aE\xdf\xa3"))
    whole = await client.get(f"/api/media/{clip_id}")
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/webm"
    assert whole.headers["Accept-Ranges"] == "bytes" and await whole.read() == clip
    part = await client.get(f"/api/media/{clip_id}", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == clip[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(clip)}"
    dl = await client.get(f"/api/media/{clip_id}", params={"download": "true"})
    assert dl.headers["Content-Disposition"].startswith('attachment; filename="smile_open-clip-')
    assert dl.headers["Cache-Control"] == "no-store"
    views = await _events(db, "view_media")
    assert len(views) == 2 and {e.patient_id for e in views} == {record.patient_id}
    assert [e.detail for e in views if e.detail] == [{"range": "bytes=100-199"}]
    assert len(await _events(db, "download_media")) == 1


async def test_a_patient_session_cannot_reach_review_data(client: TestClient[Any, Any], record: Record) -> None:
    h = await login(client, "clinician")
    assert h["role"] == "clinician"
    v = record.before.visit
    token = (await (await client.post(f"/api/visits/{v.id}/join-link")).json())["token"]
    bearer = (await (await client.post(f"/api/join/{token}/session", json={})).json())["token"]
    client.session.cookie_jar.clear()
    auth = {"Authorization": f"Bearer {bearer}"}
    media_id = next(iter(record.before.media))
    for path in (f"/api/visits/{v.id}/montage", f"/api/media/{media_id}", f"/api/visits/{v.id}/export/zip"):
        assert (await client.get(path, headers=auth)).status == 403, path
