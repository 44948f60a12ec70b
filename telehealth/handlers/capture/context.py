"""The capture resources as ONE aiohttp cleanup_ctx entry: catalogue, peers, handlers, sweep."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from aiohttp import web

from telehealth.capture.catalogue import ProtocolCatalogue
from telehealth.capture.registry import PeerRegistry
from telehealth.keys import (
    CAPTURE_LISTENER,
    CAPTURE_TAKES,
    CAPTURE_UPLOADS,
    MEDIA_STORE,
    PROTOCOLS,
    SESSIONMAKER,
    SETTINGS,
)
from telehealth.signaling.messages import IceServer
from telehealth.signaling.routes import SETTINGS_KEY
from telehealth.signaling.turn import ice_servers

from .events import CaptureChange, notify
from .sweep import DeviceCopySweep
from .takes import CaptureTakes
from .uploads import DeviceUploads

__all__ = ["capture_context"]


async def capture_context(app: web.Application) -> AsyncIterator[None]:
    """Start the capture side; at shutdown all peers close (after their clips), then every task ends."""
    settings, sessionmaker, store = app[SETTINGS], app[SESSIONMAKER], app[MEDIA_STORE]
    catalogue = await asyncio.to_thread(ProtocolCatalogue.shipped)  # package files, read once

    async def changed(visit_id: uuid.UUID, reason: CaptureChange) -> None:
        await notify(app[CAPTURE_LISTENER], visit_id, reason)

    async def peer_event(visit_id: uuid.UUID, what: str) -> None:
        await changed(visit_id, CaptureChange(what))

    def servers(name: str) -> Sequence[IceServer]:
        return ice_servers(app[SETTINGS_KEY], name)

    peers = PeerRegistry(sessionmaker, store, on_event=peer_event)
    app[PROTOCOLS] = catalogue
    app[CAPTURE_TAKES] = CaptureTakes(
        sessionmaker, store, peers, catalogue, ice_servers=servers, listener=lambda: app[CAPTURE_LISTENER]
    )
    app[CAPTURE_UPLOADS] = uploads = DeviceUploads(
        settings, sessionmaker, store, listener=lambda: app[CAPTURE_LISTENER]
    )
    sweep = DeviceCopySweep(sessionmaker, timedelta(seconds=settings.device_copy_timeout_seconds), changed)
    sweeping = asyncio.get_running_loop().create_task(sweep.run(), name="device-copy-sweep")
    try:
        yield
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        await peers.close()
        uploads.close()
