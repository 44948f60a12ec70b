"""Every still stored by the capture path is measured by itself, and the surgeon reads it from the API."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient

from telehealth.app import create_app
from telehealth.settings import Settings
from tests.analysis.faces import astronaut_still, png
from tests.conftest import Staff, login
from tests.test_uploads import pending_takes, upload


async def test_a_device_still_uploaded_during_the_protocol_is_measured_without_anyone_asking(
    aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    app = create_app(replace(settings, measure_on_capture=True, analysis_warm=True))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    ctx, still_id, _ = await pending_takes(client, "AUTO1")
    r = await upload(client, ctx, still_id, png(astronaut_still()), "image/png")
    assert r.status == 201, await r.text()
    await login(client, "reviewer")
    readings: list[dict[str, Any]] = []
    for _ in range(300):  # the first still waits for the worker to load the model (seconds on a busy machine)
        body = await (await client.get(f"/api/visits/{ctx.visit_id}/measurements")).json()
        readings = [s for s in body["stills"] if s.get("measurement")]
        if readings:
            break
        await asyncio.sleep(0.1)
    assert readings, body
    (rest,) = readings
    assert rest["step_id"] == "rest" and rest["measurement"]["status"] == "ok"
