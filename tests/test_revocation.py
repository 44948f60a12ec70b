"""Ending a session ends its sockets: sign-out, a re-issued or revoked join link, with real sockets."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from telehealth.app import create_app
from telehealth.settings import Settings
from telehealth.signaling.outbox import CloseCode
from tests.conftest import IN_CI, Staff, login, with_settings
from tests.test_signaling_app import REDIS_URL, _redis_reachable


async def _visit_with_patient(client: TestClient[Any, Any]) -> tuple[str, str]:
    """A visit and a patient bearer session on it (the clinician is signed in on ``client``)."""
    await login(client, "clinician")
    patient = {"mrn": "MRN-R", "given_name": "Rae", "family_name": "Voke", "birth_date": "1980-01-02"}
    p = await (await client.post("/api/patients", json={**patient, "affected_side": "left"})).json()
    body = {"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat()}
    v = await (await client.post("/api/visits", json=body)).json()
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    async with aiohttp.ClientSession() as anonymous:
        r = await anonymous.post(client.make_url(f"/api/join/{token}/session"), json={})
        bearer: str = (await r.json())["token"]
    return v["id"], bearer


async def _joined(ws: aiohttp.ClientWebSocketResponse, **auth: Any) -> dict[str, Any]:
    await ws.send_str(json.dumps({"type": "auth", "v": 1, "id": "a1", **auth}))
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data: dict[str, Any] = json.loads(msg.data)
            if data["type"] == "join":
                return data


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The close code the server sends within a second (frames before it are skipped)."""
    async with asyncio.timeout(1.0):
        while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            pass
    return ws.close_code


async def _resume_refused(client: TestClient[Any, Any], visit_id: str, resume_token: str) -> bool:
    async with client.ws_connect(f"/ws/visit/{visit_id}") as ws:
        await ws.send_str(json.dumps({"type": "resume", "v": 1, "id": "r1", "resume_token": resume_token}))
        async with asyncio.timeout(10):
            while (msg := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] == "join":
                    return False
                if data["type"] == "error":
                    assert data["code"] == "resume_failed"
        return ws.close_code == CloseCode.AUTH_FAILED


async def test_reissuing_the_join_link_closes_the_patients_socket_and_refuses_its_resume(
    client: TestClient[Any, Any],
) -> None:
    visit_id, bearer = await _visit_with_patient(client)
    async with client.ws_connect(f"/ws/visit/{visit_id}") as ws:
        joined = await _joined(ws, token=bearer)
        assert (await client.post(f"/api/visits/{visit_id}/join-link")).status == 201
        assert await _closed_with(ws) == CloseCode.SESSION_ENDED
    assert await _resume_refused(client, visit_id, joined["resume_token"])
    r = await client.get("/api/patient/visit", headers={"Authorization": f"Bearer {bearer}"})
    assert r.status == 401


async def test_a_revoked_links_sessions_stay_ended_after_a_new_link(client: TestClient[Any, Any]) -> None:
    visit_id, bearer = await _visit_with_patient(client)
    async with client.ws_connect(f"/ws/visit/{visit_id}") as ws:
        await _joined(ws, token=bearer)
        assert (await client.delete(f"/api/visits/{visit_id}/join-link")).status == 200
        assert await _closed_with(ws) == CloseCode.SESSION_ENDED
    assert (await client.post(f"/api/visits/{visit_id}/join-link")).status == 201
    r = await client.get("/api/patient/visit", headers={"Authorization": f"Bearer {bearer}"})
    assert r.status == 401


async def test_signing_out_closes_the_clinicians_call_and_lobby_sockets(client: TestClient[Any, Any]) -> None:
    visit_id, _ = await _visit_with_patient(client)
    origin = {"Origin": str(client.make_url("/")).rstrip("/")}
    async with (
        client.ws_connect(f"/ws/visit/{visit_id}", headers=origin) as call,
        client.ws_connect("/ws/lobby", headers=origin) as lobby,
    ):
        joined = await _joined(call, session=True)
        await lobby.send_str(json.dumps({"type": "auth", "v": 1, "id": "l1", "session": True}))
        async with asyncio.timeout(10):
            assert json.loads((await lobby.receive()).data)["type"] == "lobby"
        assert (await client.post("/api/auth/logout")).status == 200
        assert await _closed_with(call) == CloseCode.SESSION_ENDED
        assert await _closed_with(lobby) == CloseCode.SESSION_ENDED
    assert await _resume_refused(client, visit_id, joined["resume_token"])


async def test_a_link_reissued_on_another_process_closes_the_patients_socket_via_redis(
    aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    if not await _redis_reachable():
        if IN_CI:
            pytest.fail("Redis is required in CI")
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    shared = with_settings(settings, redis_url=REDIS_URL)
    first = await aiohttp_client(create_app(shared))
    second = await aiohttp_client(create_app(shared))
    visit_id, bearer = await _visit_with_patient(second)
    async with first.ws_connect(f"/ws/visit/{visit_id}") as ws:
        await _joined(ws, token=bearer)
        assert (await second.post(f"/api/visits/{visit_id}/join-link")).status == 201
        assert await _closed_with(ws) == CloseCode.SESSION_ENDED
