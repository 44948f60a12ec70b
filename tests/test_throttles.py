"""Sign-in and join-link guessing under concurrent bursts, against the real app on both databases."""

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import Actor
from telehealth.keys import HANDLERS
from telehealth.records.errors import NotAuthenticated, Throttled
from telehealth.records.models import AuditEvent
from tests.conftest import PASSWORD, login


async def _failed_events(db: async_sessionmaker[AsyncSession], action: str) -> int:
    async with db() as s:
        query = select(func.count()).where(AuditEvent.action == action, AuditEvent.outcome == "failed")
        return int(await s.scalar(query) or 0)


async def test_sixty_wrong_passwords_at_once_lock_the_account_after_five_checks(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    accounts = client.app[HANDLERS].accounts
    wrong = {"username": "reviewer", "password": "wrong password!"}
    answers = await asyncio.gather(*(client.post("/api/auth/login", json=wrong) for _ in range(60)))
    statuses = [r.status for r in answers]
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {401, 429}
    # Only five passwords were ever checked; the other 55 were refused before argon2 ran.
    assert accounts.passwords.checks == 5
    assert await _failed_events(db, "login") == 5
    # The account itself is locked: the right password from another address is refused, unchecked.
    with pytest.raises(NotAuthenticated):
        await accounts.login("reviewer", PASSWORD, client_addr="198.51.100.7", replaces=None)
    assert accounts.passwords.checks == 5


async def test_a_locked_account_and_an_unknown_user_get_the_same_answer(client: TestClient[Any, Any]) -> None:
    accounts = client.app[HANDLERS].accounts
    for i in range(5):
        with pytest.raises(NotAuthenticated):
            await accounts.login("reviewer", "wrong password!", client_addr=f"198.51.100.{i}", replaces=None)
    with pytest.raises(NotAuthenticated) as locked:
        await accounts.login("reviewer", PASSWORD, client_addr="198.51.100.99", replaces=None)
    with pytest.raises(NotAuthenticated) as unknown:
        await accounts.login("nobody-here", PASSWORD, client_addr="198.51.100.98", replaces=None)
    assert locked.value.message == unknown.value.message and locked.value.status == unknown.value.status


async def _link_with_dob(client: TestClient[Any, Any]) -> str:
    await login(client, "clinician")
    patient = {"mrn": "MRN-7", "given_name": "A", "family_name": "B", "birth_date": "1984-03-09"}
    p = await (await client.post("/api/patients", json={**patient, "affected_side": "left"})).json()
    body = {"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat(), "requires_dob": True}
    v = await (await client.post("/api/visits", json=body)).json()
    token: str = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    return token


async def test_a_burst_of_two_hundred_birth_date_guesses_checks_at_most_five(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    token = await _link_with_dob(client)
    client.session.cookie_jar.clear()
    guesses = [f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}" for i in range(200)]
    answers = await asyncio.gather(
        *(client.post(f"/api/join/{token}/session", json={"birth_date": g}) for g in guesses)
    )
    statuses = [r.status for r in answers]
    assert not [s for s in statuses if s >= 500], statuses
    assert 201 not in statuses
    assert await _failed_events(db, "patient_join") <= 5
    # The link is now locked even for the right date of birth.
    right = await client.post(f"/api/join/{token}/session", json={"birth_date": "1984-03-09"})
    assert right.status == 429 and int(right.headers["Retry-After"]) >= 1
    # Locked per link, not only per address: the right date from elsewhere is refused too.
    elsewhere = Actor(None, "anonymous", "198.51.100.3")
    with pytest.raises(Throttled):
        await client.app[HANDLERS].join.start_session(elsewhere, token, date(1984, 3, 9))


async def test_guessing_join_tokens_from_one_address_is_throttled(client: TestClient[Any, Any]) -> None:
    token = await _link_with_dob(client)
    client.session.cookie_jar.clear()
    for i in range(5):
        assert (await client.post(f"/api/join/not-a-token-{i}/session", json={})).status == 404
    # The address has used up its guesses: even a real link is refused for a while.
    r = await client.post(f"/api/join/{token}/session", json={"birth_date": "1984-03-09"})
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1


async def test_a_hundred_logins_at_once_leave_a_signed_in_reviewer_served(client: TestClient[Any, Any]) -> None:
    await login(client, "reviewer")
    checked_before = client.app[HANDLERS].accounts.passwords.checks

    async def reviewer_requests() -> list[int]:
        statuses = []
        for _ in range(20):
            statuses.append((await client.get("/api/auth/me")).status)
            await asyncio.sleep(0.01)
        return statuses

    async with aiohttp.ClientSession() as anonymous:
        url = client.make_url("/api/auth/login")
        body = {"username": "clinician", "password": "wrong password!"}
        flood = [anonymous.post(url, json=body) for _ in range(100)]
        reviewer, *answers = await asyncio.gather(reviewer_requests(), *flood)
        statuses = [r.status for r in answers]
    assert reviewer == [200] * 20
    assert not [s for s in statuses if s >= 500], statuses
    # Beyond the cap, requests are refused at once (429 busy) instead of queueing behind argon2.
    assert set(statuses) <= {401, 429}
    assert client.app[HANDLERS].accounts.passwords.checks - checked_before <= 5
