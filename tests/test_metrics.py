"""/metrics: Prometheus text that follows a visit, for allowed addresses or the token only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from telehealth.app import create_app
from telehealth.settings import Settings
from tests.conftest import Staff, login, with_settings


async def scrape(client: TestClient[Any, Any], **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics", headers=headers)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await r.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_a_visit_from_scheduling_to_the_waiting_room(client: TestClient[Any, Any]) -> None:
    before = await scrape(client)
    assert (await client.post("/api/auth/login", json={"username": "clinician", "password": "nope"})).status == 401
    await login(client, "clinician")
    p = await (
        await client.post(
            "/api/patients", json={"mrn": "M-1", "given_name": "Mo", "family_name": "Tr", "birth_date": "1990-01-01"}
        )
    ).json()
    v = await (
        await client.post("/api/visits", json={"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat()})
    ).json()
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    bearer = (await (await client.post(f"/api/join/{token}/session", json={})).json())["token"]
    scheduled = await scrape(client)

    ws = await client.ws_connect(f"/ws/visit/{v['id']}")
    await ws.send_str(json.dumps({"type": "auth", "v": 1, "id": "a1", "token": bearer}))
    async with asyncio.timeout(10):
        while (msg := await ws.receive()).type == WSMsgType.TEXT and json.loads(msg.data)["type"] != "join":
            pass
    waiting = await scrape(client)
    for _ in range(100):  # the hub writes "waiting" in the background: wait for it (up to 10 s)
        if value(waiting, "telehealth_visits", state="waiting") > value(before, "telehealth_visits", state="waiting"):
            break
        await asyncio.sleep(0.1)
        waiting = await scrape(client)
    await ws.close()

    state = "telehealth_visits"
    assert value(scheduled, state, state="scheduled") == value(before, state, state="scheduled") + 1
    assert value(waiting, state, state="waiting") == value(before, state, state="waiting") + 1
    assert value(waiting, "telehealth_websockets_open") == value(scheduled, "telehealth_websockets_open") + 1
    assert value(waiting, "telehealth_participants_connected") >= 1
    logins = "telehealth_logins_total"
    assert value(scheduled, logins, outcome="failed") == value(before, logins, outcome="failed") + 1
    assert value(scheduled, logins, outcome="ok") == value(before, logins, outcome="ok") + 1
    requests = "telehealth_http_requests_total"
    route = "/api/visits/{visit_id}/join-link"
    assert value(scheduled, requests, method="POST", route=route, status="2xx") == 1 + value(
        before, requests, method="POST", route=route, status="2xx"
    )
    # Bounded labels: route templates only, never a concrete visit id.
    assert not any(v["id"] in str(labels) for (_, labels) in waiting)
    assert "telehealth_db_pool_connections" in {name for name, _ in waiting}


async def test_metrics_are_refused_to_other_addresses_unless_they_bring_the_token(
    aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    client = await aiohttp_client(
        create_app(with_settings(settings, metrics_allow=("10.9.0.0/16",), metrics_token="s3cr3t-scrape"))
    )
    assert (await client.get("/metrics")).status == 403
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 403
    assert "telehealth_visits" in str(await scrape(client, Authorization="Bearer s3cr3t-scrape"))
