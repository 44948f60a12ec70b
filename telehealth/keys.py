"""Typed application keys: every shared resource of the aiohttp app is named here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from telehealth.http.throttle import Throttle
from telehealth.records.mediastore import MediaStore
from telehealth.settings import Settings

if TYPE_CHECKING:  # the handler modules need these keys themselves: import only for typing
    from telehealth.capture.catalogue import ProtocolCatalogue
    from telehealth.handlers.capture.events import CaptureListener
    from telehealth.handlers.capture.takes import CaptureTakes
    from telehealth.handlers.capture.uploads import DeviceUploads

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
MEDIA_STORE = web.AppKey("media_store", MediaStore)
THROTTLE = web.AppKey("throttle", Throttle)
PROTOCOLS: web.AppKey[ProtocolCatalogue] = web.AppKey("protocols")
CAPTURE_TAKES: web.AppKey[CaptureTakes] = web.AppKey("capture_takes")
CAPTURE_UPLOADS: web.AppKey[DeviceUploads] = web.AppKey("capture_uploads")
# Told of every capture change (see CaptureListener's contract); the default does nothing.
CAPTURE_LISTENER: web.AppKey[CaptureListener] = web.AppKey("capture_listener")
