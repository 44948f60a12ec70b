"""Scheduling ahead in the clinic's time zone: day and week views, reschedule, cancel, no-show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.records.models import Visit
from telehealth.settings import Settings
from tests.conftest import Staff, login, with_settings

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
async def london(aiohttp_client: Any, settings: Settings, staff: Staff) -> TestClient[Any, Any]:
    """The app of a clinic in Europe/London, signed in as a clinician."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(with_settings(settings, clinic_tz="Europe/London")))
    await login(client, "clinician")
    return client


async def _patient(client: TestClient[Any, Any]) -> str:
    body = {"mrn": "S-1", "given_name": "Ada", "family_name": "Quinn", "birth_date": "1990-01-02"}
    r = await client.post("/api/patients", json={**body, "affected_side": "right"})
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


def _tomorrow_local(hour: int) -> datetime:
    return datetime.combine(datetime.now(LONDON).date() + timedelta(days=1), datetime.min.time()).replace(hour=hour)


async def test_a_visit_typed_for_tomorrow_9am_is_9am_on_the_clinic_clock_and_listed_that_day(
    london: TestClient[Any, Any],
) -> None:
    pid = await _patient(london)
    local = _tomorrow_local(9)
    r = await london.post("/api/visits", json={"patient_id": pid, "scheduled_local": local.isoformat()})
    assert r.status == 201, await r.text()
    visit = await r.json()
    assert datetime.fromisoformat(visit["scheduled_at"]).astimezone(LONDON).replace(tzinfo=None) == local

    day = await (await london.get("/api/visits", params={"day": local.date().isoformat()})).json()
    assert [v["id"] for v in day["items"]] == [visit["id"]] and day["time_zone"] == "Europe/London"
    today = await (await london.get("/api/visits")).json()
    assert visit["id"] not in [v["id"] for v in today["items"]]
    week = await (await london.get("/api/visits", params={"day": local.date().isoformat(), "span": "week"})).json()
    assert visit["id"] in [v["id"] for v in week["items"]]
    start = datetime.fromisoformat(week["start"]).astimezone(LONDON)
    assert start.weekday() == 0 and (start.hour, start.minute) == (0, 0)  # Monday midnight, clinic clock


async def test_past_times_are_refused_in_plain_words_and_rescheduling_checks_too(london: TestClient[Any, Any]) -> None:
    pid = await _patient(london)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await london.post("/api/visits", json={"patient_id": pid, "scheduled_at": yesterday})
    assert r.status == 400
    assert (await r.json())["error"]["message"] == "That time has already passed. Choose a time from now on."
    r = await london.post("/api/visits", json={"patient_id": pid})
    assert (await r.json())["error"]["message"] == "Choose a date and time for the visit."

    r = await london.post("/api/visits", json={"patient_id": pid, "scheduled_local": _tomorrow_local(10).isoformat()})
    vid = (await r.json())["id"]
    later = _tomorrow_local(15)
    r = await london.patch(f"/api/visits/{vid}", json={"scheduled_local": later.isoformat()})
    assert r.status == 200, await r.text()
    moved = datetime.fromisoformat((await r.json())["scheduled_at"]).astimezone(LONDON)
    assert moved.hour == 15
    r = await london.patch(f"/api/visits/{vid}", json={"scheduled_at": yesterday})
    assert r.status == 400 and "already passed" in (await r.json())["error"]["message"]


async def test_cancel_keeps_its_reason_and_no_show_waits_for_the_visit_time(
    london: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    pid = await _patient(london)
    r = await london.post("/api/visits", json={"patient_id": pid, "scheduled_local": _tomorrow_local(11).isoformat()})
    first = (await r.json())["id"]
    r = await london.post(f"/api/visits/{first}/cancel", json={"reason": "Patient asked to move it"})
    assert (await r.json())["cancel_reason"] == "Patient asked to move it"

    r = await london.post("/api/visits", json={"patient_id": pid, "scheduled_local": _tomorrow_local(12).isoformat()})
    second = (await r.json())["id"]
    r = await london.post(f"/api/visits/{second}/no-show")
    assert r.status == 409
    assert (await r.json())["error"]["message"] == "A visit can be marked as a no-show only once its time has come."
    # Its time comes (moved back directly: the API refuses past times).
    async with db() as s, s.begin():
        await s.execute(update(Visit).values(scheduled_at=datetime.now(UTC) - timedelta(minutes=20)))
    r = await london.post(f"/api/visits/{second}/no-show")
    assert r.status == 200 and (await r.json())["state"] == "no_show"
    r = await london.post(f"/api/visits/{second}/join-link")
    assert r.status == 409  # a no-show is over: no new link
    r = await london.patch(f"/api/visits/{second}", json={"reason": "x"})
    assert (await r.json())["error"]["message"] == "This visit is over and cannot be changed."


def test_the_clinic_time_zone_must_be_a_real_zone(settings: Settings) -> None:
    with pytest.raises(ValueError, match="TELEHEALTH_CLINIC_TZ"):
        with_settings(settings, clinic_tz="Mars/Olympus")
    assert Settings.from_env({"TELEHEALTH_CLINIC_TZ": "Europe/London", "TELEHEALTH_SECRET_KEY": "k"}).clinic_tz == (
        "Europe/London"
    )
