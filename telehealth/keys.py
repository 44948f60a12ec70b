"""Typed application keys: every shared resource of the aiohttp app is named here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from telehealth.handlers.container import Handlers
from telehealth.records.mediastore import MediaStore
from telehealth.settings import Settings

if TYPE_CHECKING:  # the service module needs these keys itself: import only for typing
    from telehealth.capture.service import CaptureService

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
MEDIA_STORE = web.AppKey("media_store", MediaStore)
HANDLERS = web.AppKey("handlers", Handlers)
CAPTURE: web.AppKey[CaptureService] = web.AppKey("capture")
