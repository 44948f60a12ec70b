"""The capture contract end to end: a real server-side capture (aiortc) as the surgeon reviews and exports it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.capture import default_protocol
from telehealth.handlers.capture import CaptureChange
from telehealth.keys import CAPTURE_LISTENER
from telehealth.settings import Settings
from tests.capture.sender import ExpressiveTrack
from tests.conftest import Staff, login, with_settings
from tests.test_capture_api import new_visit, offer_camera, start_capture, step, wait_for
from tests.test_capture_events import Recorder

DEVICE_COPY_TIMEOUT = 3  # seconds; the patient's page never uploads a device copy here
TAKEN = ("smile_open", "rest")  # out of protocol order on purpose: review and export restore it


def _media_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"]


async def test_a_stream_capture_reaches_the_montage_and_the_fhir_export_as_the_surgeon_expects(
    db: async_sessionmaker[AsyncSession], aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    recorder = Recorder(db)
    app = create_app(with_settings(settings, device_copy_timeout_seconds=DEVICE_COPY_TIMEOUT))
    app[CAPTURE_LISTENER] = recorder
    client: TestClient[Any, Any] = await aiohttp_client(app)
    await login(client, "clinician")
    ctx = await new_visit(client, "CONTRACT-1")
    await start_capture(client, ctx)
    track = ExpressiveTrack(640, 480)
    sender = await offer_camera(client, ctx, track)
    try:
        await wait_for(client, ctx, lambda s: s["peer"] == "receiving")
        await asyncio.sleep(2.0)  # past the stream's quality ramp
        for step_id in TAKEN:
            await step(client, ctx, track, step_id)
        await wait_for(client, ctx, lambda s: all(t["status"] != "pending" for st in s["steps"] for t in st["takes"]))
    finally:
        await sender.close()

    protocol = default_protocol()
    r = await client.get(f"/api/visits/{ctx.visit_id}/montage")
    assert r.status == 200, await r.text()
    montage = await r.json()
    # Every protocol step, in protocol order, with its label; the ones never taken show "Not captured".
    assert [(s["step_id"], s["label"]) for s in montage["steps"]] == [(s.id, s.label) for s in protocol.steps]
    steps = {s["step_id"]: s for s in montage["steps"]}
    for step_id in set(steps) - set(TAKEN):
        assert steps[step_id]["still"] is None and steps[step_id]["clip"] is None, step_id
    for step_id in TAKEN:
        still, clip = steps[step_id]["still"], steps[step_id]["clip"]
        assert still["status"] == clip["status"] == "stored"
        # Stream provenance on the primary copies; a clip whose resolution held carries no flag.
        assert [m["provenance"] for m in still["media"] if m["is_primary"]] == ["stream"]
        assert [m["provenance"] for m in clip["media"] if m["is_primary"]] == ["stream"]
        assert clip["quality"]["resolution_changed"] is False and clip["flags"] == []
        assert "resolution_changed" not in still["flags"]

    # The device copies never arrive: after the bounded time the takes say so; the stream copy stays primary.
    def copies(montage: dict[str, Any]) -> set[str]:
        return {s[kind]["device_copy"] for s in montage["steps"] if s["step_id"] in TAKEN for kind in ("still", "clip")}

    async with asyncio.timeout(DEVICE_COPY_TIMEOUT + 10):
        while copies(montage := await (await client.get(f"/api/visits/{ctx.visit_id}/montage")).json()) != {"missing"}:
            await asyncio.sleep(0.5)
    assert CaptureChange.DEVICE_COPY_MISSING in recorder.reasons()
    for s in montage["steps"]:
        for take in (s["still"], s["clip"]) if s["step_id"] in TAKEN else ():
            assert [m["provenance"] for m in take["media"] if m["is_primary"]] == ["stream"]

    r = await client.get(f"/api/visits/{ctx.visit_id}/export/fhir")
    assert r.status == 200, await r.text()
    media = _media_of(await r.json())
    labels = {s.id: s.label for s in protocol.steps}
    # Protocol order (rest before smile_open), still then clip, each labelled from the protocol.
    assert [(m["view"]["coding"][0]["code"], m["type"]["coding"][0]["code"]) for m in media] == [
        ("rest", "image"),
        ("rest", "video"),
        ("smile_open", "image"),
        ("smile_open", "video"),
    ]
    for m in media:
        coding = m["view"]["coding"][0]
        assert coding["display"] == labels[coding["code"]]
        assert m["modality"]["coding"][0]["code"] == "stream"
        notes = " ".join(n["text"] for n in m.get("note", []))
        assert "resolution_changed" not in notes
