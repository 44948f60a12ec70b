"""Stored stills are measured in the landmark process pool, kept with history, and read back per visit and over time.

Real parts: the app factory, SQLite and PostgreSQL, the file media store, MediaPipe in worker
processes, and a real face (the public-domain astronaut portrait) rendered into 1280x720 stills.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.handlers.analysis import ANALYSIS
from telehealth.records import captures, measurements, visits
from telehealth.records.errors import InvalidInput
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, CaptureKind, CaptureStatus, Measurement, MeasurementStatus, Provenance
from telehealth.settings import Settings
from tests.analysis.faces import Bump, astronaut_still, png, warp
from tests.conftest import Staff, login
from tests.review_seed import make_patient


def analysis_app(settings: Settings) -> web.Application:
    """The real app with the landmark pool warming at startup."""
    return create_app(replace(settings, analysis_warm=True))


@lru_cache(maxsize=4)
def still(kind: str) -> bytes:
    """PNG stills: rest, a smile whose subject-right corner (image left) moves half as far, and no face at all."""
    rest = astronaut_still()
    if kind == "rest":
        return png(rest)
    if kind == "smile":
        # Mouth corners near (540, 430) (subject's right) and (720, 430) (left): up and outwards.
        return png(
            warp(
                rest,
                [Bump((540, 430), (-6, -9), (40, 30)), Bump((720, 430), (12, -18), (40, 30))],
            )
        )
    return png(np.full((720, 1280, 3), 128, dtype=np.uint8))


async def seed(
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    staff: Staff,
    stills: dict[str, str],
    *,
    days_ago: int = 0,
    patient_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, uuid.UUID, dict[str, list[uuid.UUID]]]:
    """A visit with one still take per step: device copy (primary, 1280x720), stream copy, thumbnail."""
    store = FileMediaStore(settings.media_dir)
    media: dict[str, list[uuid.UUID]] = {}
    async with db() as s, s.begin():
        if patient_id is None:
            patient_id = (await make_patient(s, f"M{uuid.uuid4().hex[:6]}", created_by=staff.clinician)).id
        when = datetime.now(UTC) - timedelta(days=days_ago)
        visit = await visits.schedule_visit(s, patient_id=patient_id, clinician_id=staff.clinician, scheduled_at=when)
        for step, kind in stills.items():
            take = await captures.new_take(s, visit_id=visit.id, step_id=step, kind=CaptureKind.STILL, created_by=None)
            take.status = CaptureStatus.STORED
            data = still(kind)
            device = await captures.add_media(
                s,
                store,
                visit_id=visit.id,
                capture_id=take.id,
                content=data,
                info=captures.MediaInfo("image/png", Provenance.DEVICE, 1280, 720),
                primary=True,
            )
            thumb = await captures.add_media(
                s,
                store,
                visit_id=visit.id,
                capture_id=take.id,
                content=png(np.zeros((9, 16, 3), np.uint8)),
                info=captures.MediaInfo("image/png", Provenance.DERIVED, 16, 9),
                thumbnail=True,
            )
            media[step] = [device.id, thumb.id]
    return patient_id, visit.id, media


async def test_every_stored_still_is_measured_and_a_still_without_a_face_is_flagged(
    aiohttp_client: Any, settings: Settings, staff: Staff, db: async_sessionmaker[AsyncSession]
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(analysis_app(settings))
    service = client.app[ANALYSIS]
    patient_id, visit_id, media = await seed(
        db, settings, staff, {"rest": "rest", "smile_open": "smile", "brow_raise": "blank"}
    )
    for device_id, _thumb in media.values():
        assert service.enqueue(device_id)
    await service.join()

    async with db() as s:
        rows = {m.media_id: m for m in await s.scalars(select(Measurement))}
    rest = rows[media["rest"][0]]
    assert rest.status is MeasurementStatus.OK
    assert rest.model_version == "0.10.21" and rest.width == 1280 and rest.height == 720
    assert rest.landmarks is not None and measurements.unpack_landmarks(rest.landmarks).shape == (478, 3)
    assert rest.metrics is not None and 25 < rest.metrics["scale"]["iris_diameter_px"] < 40
    assert rows[media["brow_raise"][0]].status is MeasurementStatus.NO_FACE
    assert media["rest"][1] not in rows  # thumbnails are not measured
    with pytest.raises(InvalidInput):
        await service.measure_media(media["rest"][1])

    await login(client, "reviewer")
    resp = await client.get(f"/api/visits/{visit_id}/measurements")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["recorded_affected_side"] == "right" and body["affected_side_source"] == "recorded"
    assert set(body["steps"]) == {"rest", "smile_open"}
    statuses = {s["step_id"]: s["measurement"]["status"] for s in body["stills"]}
    assert statuses == {"rest": "ok", "smile_open": "ok", "brow_raise": "no_face"}
    assert all(s["measurement"]["landmarks"] is None for s in body["stills"])
    smile = body["steps"]["smile_open"]
    excursion = smile["movement"]["commissure_excursion"]
    # The subject's right corner was moved half as far as the left: the right moves less.
    assert 0 < excursion["right"] < excursion["left"]
    assert smile["movement_asymmetry_pct"]["commissure_excursion"] > 20
    assert body["steps"]["rest"]["movement"] is None
    assert 0 < body["eface"]["smile"]["value"] < 100 and body["eface"]["smile"]["computed"] is True
    async with db() as s:
        viewed = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "view_measurements"))).all()
        measured = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "measure_media"))).all()
    assert [(v.object_id, v.patient_id) for v in viewed] == [(str(visit_id), patient_id)]
    assert len(measured) == 3 and all(m.patient_id == patient_id for m in measured)

    with_points = await (await client.get(f"/api/visits/{visit_id}/measurements?landmarks=true")).json()
    rest_still = next(s for s in with_points["stills"] if s["step_id"] == "rest")
    assert len(rest_still["measurement"]["landmarks"]) == 478


async def test_remeasuring_keeps_the_history_and_gives_identical_numbers(
    aiohttp_client: Any, settings: Settings, staff: Staff, db: async_sessionmaker[AsyncSession]
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(analysis_app(settings))
    service = client.app[ANALYSIS]
    _, _, media = await seed(db, settings, staff, {"rest": "rest"})
    first = await service.measure_media(media["rest"][0])
    second = await service.measure_media(media["rest"][0])
    async with db() as s:
        rows = await measurements.history(s, media["rest"][0])
    assert [r.id for r in rows] == [first.id, second.id]
    assert first.metrics == second.metrics
    assert first.landmarks == second.landmarks


async def test_the_trend_follows_a_patient_across_visits_and_only_staff_read_it(
    aiohttp_client: Any, settings: Settings, staff: Staff, db: async_sessionmaker[AsyncSession]
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(analysis_app(settings))
    service = client.app[ANALYSIS]
    patient_id, old_visit, old = await seed(db, settings, staff, {"rest": "rest", "smile_open": "rest"}, days_ago=30)
    _, new_visit, new = await seed(db, settings, staff, {"rest": "rest", "smile_open": "smile"}, patient_id=patient_id)
    for step_media in (*old.values(), *new.values()):
        await service.measure_media(step_media[0])

    assert (await client.get(f"/api/patients/{patient_id}/measurements/trend")).status == 401
    await login(client, "clinician")
    resp = await client.get(f"/api/patients/{patient_id}/measurements/trend")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    series = {(s["step_id"], s["metric"], s["kind"]): s for s in body["series"]}
    smile = series[("smile_open", "commissure_excursion", "movement")]
    assert [p["visit_id"] for p in smile["points"]] == [str(old_visit), str(new_visit)]
    assert smile["unit"] == "mm"
    # The first visit's "smile" is the rest still again: no movement; the second one moved.
    assert abs(smile["points"][0]["left"]) < 0.01 and smile["points"][1]["left"] > 1
    assert [e["visit_id"] for e in body["eface"]] == [str(old_visit), str(new_visit)]
    async with db() as s:
        trend_views = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "view_measurement_trend"))).all()
    assert [t.patient_id for t in trend_views] == [patient_id]
    missing = await client.get(f"/api/visits/{uuid.uuid4()}/measurements")
    assert missing.status == 404

    # The patient's own join link gives no access to the measurements of their visit.
    token = (await (await client.post(f"/api/visits/{new_visit}/join-link")).json())["token"]
    bearer = (await (await client.post(f"/api/join/{token}/session", json={})).json())["token"]
    patient = {"Authorization": f"Bearer {bearer}"}
    assert (await client.get(f"/api/visits/{new_visit}/measurements", headers=patient)).status == 403
    assert (await client.get(f"/api/patients/{patient_id}/measurements/trend", headers=patient)).status == 403
