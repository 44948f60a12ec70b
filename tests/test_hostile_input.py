"""Hostile request bodies get a clear 4xx and change nothing, anonymous or signed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.models import AuditEvent
from tests.conftest import login

NESTED_ARRAY = "[" * 50_000 + "]" * 50_000
NESTED_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000
DEEP_BUT_SMALL = '{"username":' + "[" * 5_000 + "]" * 5_000 + ',"password":"x"}'


@pytest.mark.parametrize("body", [NESTED_ARRAY, NESTED_OBJECT, DEEP_BUT_SMALL])
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/join/abcdefghijklmnopqrstuvwxyz0123456789abcdefg/session"])
async def test_deeply_nested_json_is_refused_with_400(client: TestClient[Any, Any], path: str, body: str) -> None:
    resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert resp.status in (400, 413), await resp.text()
    payload = await resp.json()
    assert payload["error"]["code"] in ("malformed_json", "too_large", "invalid_input")


async def _patient(client: TestClient[Any, Any]) -> str:
    await login(client, "clinician")
    body = {"mrn": "MRN-H", "given_name": "Hal", "family_name": "Ost", "birth_date": "1970-05-06"}
    r = await client.post("/api/patients", json={**body, "affected_side": "left"})
    assert r.status == 201
    patient_id: str = (await r.json())["id"]
    return patient_id


async def test_nul_bytes_in_names_and_searches_are_refused_with_400(client: TestClient[Any, Any]) -> None:
    patient_id = await _patient(client)
    r = await client.patch(f"/api/patients/{patient_id}", json={"family_name": "Ost\u0000ler"})
    assert r.status == 400, await r.text()
    body = {"mrn": "MRN-N", "given_name": "N\u0000", "family_name": "Ul", "birth_date": "1970-05-06"}
    assert (await client.post("/api/patients", json={**body, "affected_side": "left"})).status == 400
    assert (await client.get("/api/patients", params={"q": "Os\u0000"})).status == 400


async def test_a_day_at_the_end_of_time_is_a_400_not_a_500(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    for day in ("9999-12-31", "0001-01-01"):
        r = await client.get("/api/visits", params={"day": day, "tz_offset_minutes": "-900"})
        assert r.status in (200, 400), await r.text()
        r = await client.get("/api/visits", params={"day": day, "tz_offset_minutes": "900"})
        assert r.status in (200, 400), await r.text()


async def test_a_join_link_for_a_visit_in_year_9999_is_a_400_not_a_500(client: TestClient[Any, Any]) -> None:
    patient_id = await _patient(client)
    r = await client.post("/api/visits", json={"patient_id": patient_id, "scheduled_at": "9999-12-31T23:00:00Z"})
    if r.status == 201:
        r = await client.post(f"/api/visits/{(await r.json())['id']}/join-link")
    assert r.status == 400, await r.text()


async def test_head_on_the_zip_export_sends_no_body_and_is_not_an_export(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    patient_id = await _patient(client)
    body = {"patient_id": patient_id, "scheduled_at": datetime.now(UTC).isoformat()}
    visit_id = (await (await client.post("/api/visits", json=body)).json())["id"]
    r = await client.head(f"/api/visits/{visit_id}/export/zip")
    assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
    assert await r.read() == b""
    async with db() as s:
        exports = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "export_zip"))).all()
    assert exports == []
    # The connection is still usable: nothing unread was left on it.
    assert (await client.get("/api/auth/me")).status == 200
