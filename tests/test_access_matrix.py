"""Role x route matrix: every registered route, every kind of caller."""

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.models import AuditEvent
from tests.conftest import PASSWORD

ANON, PAT, REV, CLIN, ADMIN = "anonymous", "patient", "reviewer", "clinician", "admin"
EVERYONE = {ANON, PAT, REV, CLIN, ADMIN}
STAFF = {REV, CLIN, ADMIN}
CARE = {CLIN, ADMIN}

# The expected policy, written out independently of the code's decorators.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    # Any role, but only from TELEHEALTH_METRICS_ALLOW addresses or with the token (tests/test_metrics.py).
    ("GET", "/metrics"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("GET", "/"): STAFF,
    ("GET", "/join/{token}"): EVERYONE,
    ("GET", "/visit/{visit_id}"): CARE,
    ("GET", "/api/openapi.json"): EVERYONE,
    ("GET", "/api/ice-servers"): {PAT} | STAFF,
    # Sockets authenticate with their first message (tests/signaling, tests/test_signaling_app.py).
    ("GET", "/ws/visit/{visit_id}"): EVERYONE,
    ("GET", "/ws/lobby"): EVERYONE,
    ("POST", "/api/auth/login"): EVERYONE,
    ("POST", "/api/auth/logout"): STAFF,
    ("GET", "/api/auth/me"): {PAT} | STAFF,
    ("GET", "/api/patients"): STAFF,
    ("POST", "/api/patients"): CARE,
    ("GET", "/api/patients/{patient_id}"): STAFF,
    ("PATCH", "/api/patients/{patient_id}"): CARE,
    ("GET", "/api/visits"): STAFF,
    ("POST", "/api/visits"): CARE,
    ("GET", "/api/visits/{visit_id}"): STAFF,
    ("PATCH", "/api/visits/{visit_id}"): CARE,
    ("POST", "/api/visits/{visit_id}/cancel"): CARE,
    ("POST", "/api/visits/{visit_id}/join-link"): CARE,
    ("DELETE", "/api/visits/{visit_id}/join-link"): CARE,
    ("POST", "/api/visits/{visit_id}/no-show"): CARE,
    ("POST", "/api/visits/{visit_id}/invitation"): CARE,
    ("POST", "/api/visits/{visit_id}/running-late"): CARE,
    ("GET", "/api/visits/{visit_id}/messages"): STAFF,
    ("GET", "/api/join/{token}"): EVERYONE,
    ("POST", "/api/join/{token}/session"): EVERYONE,
    ("POST", "/api/visits/{visit_id}/invites"): CARE,
    ("DELETE", "/api/visits/{visit_id}/invites/{invite_id}"): CARE,
    ("GET", "/api/visits/{visit_id}/participants"): CARE,
    ("GET", "/api/invite/{token}"): EVERYONE,
    ("GET", "/invite/{token}"): EVERYONE,
    ("GET", "/api/patient/visit"): {PAT},
    ("POST", "/api/patient/consent"): {PAT},
    ("GET", "/api/admin/users"): {ADMIN},
    ("POST", "/api/admin/users"): {ADMIN},
    ("GET", "/api/admin/audit"): {ADMIN},
    ("GET", "/review"): STAFF,
    ("GET", "/review/patients/{patient_id}"): STAFF,
    ("GET", "/review/visits/{visit_id}"): STAFF,
    ("GET", "/review/compare"): STAFF,
    ("GET", "/review/audit"): {ADMIN},
    ("GET", "/api/patients/{patient_id}/timeline"): STAFF,
    ("GET", "/api/visits/{visit_id}/montage"): STAFF,
    ("GET", "/api/visits/{visit_id}/captures/{capture_id}/notes"): STAFF,
    ("POST", "/api/visits/{visit_id}/captures/{capture_id}/notes"): STAFF,
    ("GET", "/api/visits/{visit_id}/grades"): STAFF,
    ("GET", "/api/visits/{visit_id}/measurements"): STAFF,
    ("GET", "/api/patients/{patient_id}/measurements/trend"): STAFF,
    ("POST", "/api/visits/{visit_id}/grades"): CARE,
    ("GET", "/api/media/{media_id}"): STAFF,
    ("GET", "/api/visits/{visit_id}/export/fhir"): STAFF,
    ("GET", "/api/visits/{visit_id}/export/zip"): STAFF,
    ("POST", "/api/visits/{visit_id}/capture/start"): CARE,
    ("POST", "/api/visits/{visit_id}/capture/peer"): {PAT},
    ("POST", "/api/visits/{visit_id}/capture/steps/{step_id}/begin"): CARE,
    ("POST", "/api/visits/{visit_id}/capture/steps/{step_id}/take"): CARE,
    ("POST", "/api/visits/{visit_id}/capture/steps/{step_id}/skip"): CARE,
    ("GET", "/api/visits/{visit_id}/capture"): {PAT} | STAFF,
    ("POST", "/api/captures/{capture_id}/upload"): {PAT},
}


def registered_routes(app: Any) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path is None or "prefix" in info:
            continue
        out.add((route.method, path))
    return out


async def _caller(client: TestClient[Any, Any], role: str, ctx: dict[str, str]) -> dict[str, str]:
    """Headers that make the next request come from `role`."""
    client.session.cookie_jar.clear()
    if role == ANON:
        return {}
    if role == PAT:
        return {"Authorization": f"Bearer {ctx['patient_bearer']}"}
    r = await client.post("/api/auth/login", json={"username": role, "password": PASSWORD})
    me = await r.json()
    return {"X-CSRF-Token": me["csrf_token"]}


async def _context(client: TestClient[Any, Any]) -> dict[str, str]:
    h = await _caller(client, CLIN, {})
    p = await (
        await client.post(
            "/api/patients",
            json={"mrn": "X1", "given_name": "A", "family_name": "B", "birth_date": "1990-01-01"},
            headers=h,
        )
    ).json()
    v = await (
        await client.post(
            "/api/visits", json={"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat()}, headers=h
        )
    ).json()
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link", headers=h)).json())["token"]
    bearer = (await (await client.post(f"/api/join/{token}/session", json={})).json())["token"]
    return {"patient_id": p["id"], "visit_id": v["id"], "token": token, "patient_bearer": bearer}


def _fill(path: str, ctx: dict[str, str]) -> str:
    # Ids the context has no record for (capture, media) are unknown ids: allowed roles get 404.
    unknown = "00000000-0000-0000-0000-000000000000"
    return path.format(
        patient_id=ctx["patient_id"],
        visit_id=ctx["visit_id"],
        token=ctx["token"],
        step_id="rest",
        capture_id=unknown,
        media_id=unknown,
        invite_id=unknown,
    )


async def test_matrix_covers_every_registered_route(client: TestClient[Any, Any]) -> None:
    assert registered_routes(client.app) == set(EXPECTED), "update EXPECTED for new or removed routes"


@pytest.mark.parametrize("role", sorted(EVERYONE))
async def test_each_role_gets_exactly_the_routes_it_should(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], role: str
) -> None:
    ctx = await _context(client)
    denied_seen = 0
    headers = await _caller(client, role, ctx)
    for (method, path), allowed in sorted(EXPECTED.items()):
        if (method, path) in {
            ("POST", "/api/auth/logout"),
            ("POST", "/api/auth/login"),
        } or path == "/api/join/{token}/session":
            continue  # would end or replace the caller's own session; covered in their own tests
        r = await client.request(
            method, _fill(path, ctx), headers=headers, json={} if method != "GET" else None, allow_redirects=False
        )
        label = f"{role} {method} {path} -> {r.status}"
        if role in allowed:
            assert r.status not in (401, 403), label
            assert r.status < 500, label
        elif role == ANON:
            assert r.status == 401 or (r.status == 302 and r.headers["Location"].startswith("/login")), label
        else:
            assert r.status == 403, label
            denied_seen += 1
    if role not in (ANON, ADMIN):
        async with db() as s:
            refusals = (
                await s.scalars(
                    select(AuditEvent).where(AuditEvent.action == "access_denied", AuditEvent.actor_role == role)
                )
            ).all()
        assert len(refusals) == denied_seen > 0


async def test_clinician_on_admin_route_is_403_and_audited(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    h = await _caller(client, CLIN, {})
    r = await client.post(
        "/api/admin/users",
        json={"username": "x", "display_name": "X", "role": "admin", "password": "long enough pw"},
        headers=h,
    )
    assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    async with db() as s:
        ev = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied"))).one()
    assert ev.actor_role == "clinician" and ev.object_id == "POST /api/admin/users" and ev.outcome == "denied"


async def test_patient_token_is_bound_to_its_own_visit(client: TestClient[Any, Any]) -> None:
    ctx = await _context(client)
    h = {"Authorization": f"Bearer {ctx['patient_bearer']}"}
    client.session.cookie_jar.clear()
    # A patient cannot read any visit by id, not even its own, through the staff API.
    assert (await client.get(f"/api/visits/{ctx['visit_id']}", headers=h)).status == 403
    mine = await (await client.get("/api/patient/visit", headers=h)).json()
    assert mine["visit_id"] == ctx["visit_id"]
