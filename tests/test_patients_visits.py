"""Patient and visit API behaviour, including bad input and join links."""

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.models import AuditEvent, Visit
from telehealth.records.types import utcnow
from tests.conftest import login

PATIENT = {
    "mrn": "MRN-100",
    "given_name": "Maya",
    "family_name": "Okafor",
    "birth_date": "1984-03-09",
    "affected_side": "left",
}


async def _patient(client: TestClient[Any, Any], **over: Any) -> dict[str, Any]:
    r = await client.post("/api/patients", json={**PATIENT, **over})
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def _visit(client: TestClient[Any, Any], patient_id: str, **over: Any) -> dict[str, Any]:
    body = {"patient_id": patient_id, "scheduled_at": datetime.now(UTC).isoformat(), **over}
    r = await client.post("/api/visits", json=body)
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def test_register_search_update_patient(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    found = await (await client.get("/api/patients", params={"q": "oka"})).json()
    assert [x["id"] for x in found["items"]] == [p["id"]]
    found = await (await client.get("/api/patients", params={"q": "MRN-100"})).json()
    assert len(found["items"]) == 1
    r = await client.patch(f"/api/patients/{p['id']}", json={"affected_side": "right"})
    assert (await r.json())["affected_side"] == "right"


async def test_duplicate_mrn_is_409_and_keeps_the_first(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    r = await client.post("/api/patients", json={**PATIENT, "given_name": "Other"})
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "conflict"
    kept = await (await client.get(f"/api/patients/{p['id']}")).json()
    assert kept["given_name"] == "Maya"


async def test_malformed_json_and_field_errors_are_400_with_codes(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    r = await client.post("/api/patients", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "malformed_json"
    r = await client.post("/api/patients", json={**PATIENT, "birth_date": "yesterday", "extra": 1})
    err = (await r.json())["error"]
    assert r.status == 400 and err["code"] == "invalid_input"
    fields = {d["field"] for d in err["details"]}
    assert {"birth_date", "extra"} <= fields
    r = await client.post("/api/patients", json={**PATIENT, "birth_date": "2090-01-01"})
    assert r.status == 400 and {d["field"] for d in (await r.json())["error"]["details"]} == {"birth_date"}
    r = await client.post("/api/visits", json={"patient_id": "x", "scheduled_at": "2026-01-01T10:00:00"})
    fields = {d["field"] for d in (await r.json())["error"]["details"]}
    assert {"patient_id", "scheduled_at"} <= fields  # naive timestamps are refused too


async def test_unknown_ids_are_404_not_500(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    for path in ("/api/patients/not-a-uuid", "/api/patients/3f1c1b8e-0000-4000-8000-000000000000", "/api/visits/xyz"):
        r = await client.get(path)
        assert r.status == 404, path
        assert (await r.json())["error"]["code"] == "not_found"


async def test_schedule_list_today_and_view_is_audited(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    v = await _visit(client, p["id"], reason="6-week follow-up")
    await _visit(client, p["id"], scheduled_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    today = await (await client.get("/api/visits", params={"mine": "true"})).json()
    assert [x["id"] for x in today["items"]] == [v["id"]]
    assert today["items"][0]["state"] == "scheduled"
    assert (await client.get(f"/api/visits/{v['id']}")).status == 200
    async with db() as s:
        actions = set((await s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == v["id"]))).all())
    assert {"create_visit", "view_visit"} <= actions


async def test_join_link_flow_and_its_failures(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    v = await _visit(client, p["id"], requires_dob=True)
    link = await (await client.post(f"/api/visits/{v['id']}/join-link")).json()
    token = link["token"]
    assert link["url"].endswith(f"/join/{token}")
    assert len(token) >= 22  # >= 128 random bits in URL-safe base64
    async with db() as s:
        stored = (await s.scalars(select(Visit.join_token_hash))).one()
    assert stored is not None and token not in stored

    page = await client.get(f"/join/{token}")
    assert page.status == 200
    info = await (await client.get(f"/api/join/{token}")).json()
    assert info["requires_dob"] and info["clinician_name"] == "Dr. Clin"

    wrong = await client.post(f"/api/join/{token}/session", json={"birth_date": "1999-01-01"})
    assert wrong.status == 401
    ok = await client.post(f"/api/join/{token}/session", json={"birth_date": "1984-03-09"})
    assert ok.status == 201
    bearer = (await ok.json())["token"]
    mine = await client.get("/api/patient/visit", headers={"Authorization": f"Bearer {bearer}"})
    assert (await mine.json())["visit_id"] == v["id"]

    # A new link replaces the old one; revoking gives 410; unknown gives 404.
    newer = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    assert (await client.get(f"/join/{token}")).status == 404
    assert (await client.delete(f"/api/visits/{v['id']}/join-link")).status == 200
    gone = await client.get(f"/join/{newer}")
    assert gone.status == 410 and "text/html" in gone.headers["Content-Type"]
    assert "Traceback" not in await gone.text()
    # Revoking the link also ends the patient's session.
    assert (await client.get("/api/patient/visit", headers={"Authorization": f"Bearer {bearer}"})).status == 401


async def test_expired_link_is_410(client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    v = await _visit(client, p["id"])
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    async with db() as s, s.begin():
        await s.execute(update(Visit).values(join_expires_at=utcnow() - timedelta(minutes=1)))
    assert (await client.get(f"/join/{token}")).status == 410
    r = await client.get(f"/api/join/{token}")
    assert r.status == 410 and (await r.json())["error"]["code"] == "gone"


async def test_cancel_revokes_link_and_is_final(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    v = await _visit(client, p["id"])
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    r = await client.post(f"/api/visits/{v['id']}/cancel", json={"reason": "patient unwell"})
    assert (await r.json())["state"] == "cancelled"
    assert (await client.get(f"/join/{token}")).status == 410
    again = await client.post(f"/api/visits/{v['id']}/cancel", json={})
    assert again.status == 409 or (await again.json())["state"] == "cancelled"
    assert (await client.post(f"/api/visits/{v['id']}/join-link")).status == 409


async def test_patient_consent_records_who_when_and_version(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    p = await _patient(client)
    v = await _visit(client, p["id"])
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    info = await (await client.get(f"/api/join/{token}")).json()
    bearer = (await (await client.post(f"/api/join/{token}/session", json={})).json())["token"]
    h = {"Authorization": f"Bearer {bearer}"}
    stale = await client.post(
        "/api/patient/consent", json={"capture": True, "consent_version": "old", "signed_name": "Maya"}, headers=h
    )
    assert stale.status == 400
    r = await client.post(
        "/api/patient/consent",
        json={"capture": True, "consent_version": info["consent_version"], "signed_name": "Maya Okafor"},
        headers=h,
    )
    assert (await r.json())["consent_capture"] is True
    visit = await (await client.get(f"/api/visits/{v['id']}")).json()
    assert visit["consent_capture"] is True and visit["consent_at"]
