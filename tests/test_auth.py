"""Login, sessions, throttling and CSRF, against the real app on both databases."""

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.models import AuditEvent, AuthSession
from telehealth.records.types import utcnow
from tests.conftest import PASSWORD, login


async def test_login_sets_http_only_cookie_and_me_answers(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/auth/login", json={"username": "Clinician", "password": PASSWORD})
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert "th_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = await (await client.get("/api/auth/me")).json()
    assert me["role"] == "clinician" and me["display_name"] == "Dr. Clin"


async def test_wrong_password_and_unknown_user_get_the_same_generic_answer(client: TestClient[Any, Any]) -> None:
    a = await client.post("/api/auth/login", json={"username": "clinician", "password": "nope nope nope"})
    b = await client.post("/api/auth/login", json={"username": "nobody", "password": "nope nope nope"})
    assert a.status == b.status == 401
    assert (await a.json())["error"]["message"] == (await b.json())["error"]["message"]


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(5):
        r = await client.post("/api/auth/login", json={"username": "reviewer", "password": "wrong password!"})
        assert r.status in (401, 429)
    r = await client.post("/api/auth/login", json={"username": "reviewer", "password": PASSWORD})
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    async with db() as s:
        outcomes = (await s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "login"))).all()
    assert outcomes.count("failed") >= 4 and "throttled" in outcomes


async def test_login_rotates_the_session_and_logout_revokes_it(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    first = client.session.cookie_jar.filter_cookies(client.make_url("/"))["th_session"].value
    await login(client, "clinician")
    second = client.session.cookie_jar.filter_cookies(client.make_url("/"))["th_session"].value
    assert first != second
    assert (await client.get("/api/auth/me")).status == 200
    assert (await client.post("/api/auth/logout")).status == 200
    client.session.cookie_jar.clear()
    # Neither the rotated-away token nor the logged-out one works any more.
    for token in (first, second):
        r = await client.get("/api/auth/me", headers={"Cookie": f"th_session={token}"})
        assert r.status == 401


async def test_idle_session_expires_after_30_minutes(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    assert (await client.get("/api/auth/me")).status == 200
    async with db() as s, s.begin():
        await s.execute(update(AuthSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    assert (await client.get("/api/auth/me")).status == 401


async def test_absolute_lifetime_is_12_hours_even_when_active(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    async with db() as s, s.begin():
        await s.execute(
            update(AuthSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1), last_seen_at=utcnow())
        )
    assert (await client.get("/api/auth/me")).status == 401


async def test_state_change_without_csrf_token_is_refused_and_audited(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    del client.session.headers["X-CSRF-Token"]
    body = {"mrn": "M1", "given_name": "A", "family_name": "B", "birth_date": "1990-01-01"}
    r = await client.post("/api/patients", json=body)
    assert r.status == 403
    async with db() as s:
        ev = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied"))).one()
    assert ev.detail == {"reason": "csrf"} and ev.actor_role == "clinician"


async def test_cross_origin_state_change_is_refused(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    body = {"mrn": "M1", "given_name": "A", "family_name": "B", "birth_date": "1990-01-01"}
    r = await client.post("/api/patients", json=body, headers={"Origin": "https://evil.example"})
    assert r.status == 403
    r = await client.post(
        "/api/auth/login",
        json={"username": "clinician", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status == 403


async def test_disabled_user_cannot_sign_in_or_keep_a_session(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    from telehealth.records.models import User

    await login(client, "reviewer")
    async with db() as s, s.begin():
        await s.execute(update(User).where(User.username == "reviewer").values(disabled=True))
    assert (await client.get("/api/auth/me")).status == 401
    r = await client.post("/api/auth/login", json={"username": "reviewer", "password": PASSWORD})
    assert r.status == 401
