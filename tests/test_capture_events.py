"""Every capture change is told to the app's capture listener, after it is committed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.handlers.capture import CaptureChange
from telehealth.keys import CAPTURE_LISTENER, CAPTURE_TAKES
from telehealth.records.models import Capture
from telehealth.settings import Settings
from tests.capture.sender import ExpressiveTrack
from tests.conftest import Staff, login
from tests.test_capture_api import new_visit, offer_camera, start_capture, status, wait_for


class Recorder:
    """A listener that remembers what it was told, and what the database held at that moment."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self.db = db
        self.events: list[tuple[uuid.UUID, str, int]] = []
        self.changed = asyncio.Event()

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """Record the event with the number of takes then committed."""
        async with self.db() as s:
            takes = len((await s.scalars(select(Capture).where(Capture.visit_id == visit_id))).all())
        self.events.append((visit_id, reason, takes))
        self.changed.set()

    def reasons(self) -> list[str]:
        """The reasons told so far, in order."""
        return [reason for _, reason, _ in self.events]

    async def until(self, reason: str, timeout: float = 15) -> None:
        """Wait until ``reason`` has been told."""
        async with asyncio.timeout(timeout):
            while reason not in self.reasons():
                self.changed.clear()
                await self.changed.wait()


# ``db`` is requested before ``aiohttp_client`` in the tests below: the app (whose shutdown still
# tells the listener that the peer closed) must stop before the listener's engine is disposed.
async def _client(aiohttp_client: Any, settings: Settings, recorder: Recorder) -> TestClient[Any, Any]:
    app = create_app(settings)
    app[CAPTURE_LISTENER] = recorder
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def test_the_clinician_panel_is_told_of_start_take_and_skip_after_they_are_committed(
    db: async_sessionmaker[AsyncSession], aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    recorder = Recorder(db)
    client = await _client(aiohttp_client, settings, recorder)
    await login(client, "clinician")
    ctx = await new_visit(client)
    await start_capture(client, ctx)
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/take")
    assert r.status == 200, await r.text()
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/brow_raise/skip", json={"reason": "pain"})
    assert r.status == 200, await r.text()
    vid = uuid.UUID(ctx.visit_id)
    # rest: a still and a clip take (2 rows); the skip adds the skipped step's takes.
    assert [(v, reason) for v, reason, _ in recorder.events] == [
        (vid, CaptureChange.STARTED),
        (vid, CaptureChange.TAKE),
        (vid, CaptureChange.SKIP),
    ]
    assert [takes for _, _, takes in recorder.events][:2] == [0, 2]


async def test_the_clinician_panel_is_told_when_the_patients_camera_connects_stores_a_clip_and_leaves(
    db: async_sessionmaker[AsyncSession], aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    recorder = Recorder(db)
    client = await _client(aiohttp_client, settings, recorder)
    await login(client, "clinician")
    ctx = await new_visit(client)
    await start_capture(client, ctx)
    sender = await offer_camera(client, ctx, ExpressiveTrack(320, 240))
    try:
        await wait_for(client, ctx, lambda s: s["peer"] == "receiving")
        async with asyncio.timeout(5):  # the listener is told right after the move; give it its turn
            while len(recorder.reasons()) < 3:
                await asyncio.sleep(0.05)
        assert recorder.reasons()[1:] == [CaptureChange.PEER_STATE, CaptureChange.PEER_STATE]  # connecting, receiving
        r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/take")
        assert r.status == 200, await r.text()
        await recorder.until(CaptureChange.CLIP_STORED)
    finally:
        await sender.close()
    assert recorder.reasons().count(CaptureChange.TAKE) == 1
    # The patient's peer closes: the registry forgets it and the panel is told.
    peers = client.app[CAPTURE_TAKES].peers
    async with asyncio.timeout(30):
        while peers.get(uuid.UUID(ctx.visit_id)) is not None or recorder.reasons().count(CaptureChange.PEER_STATE) < 3:
            await asyncio.sleep(0.1)  # connecting, receiving, closed
    assert len(peers) == 0
    assert (await status(client, ctx))["peer"] == "none"
