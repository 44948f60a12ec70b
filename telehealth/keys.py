"""Typed application keys: every shared resource of the aiohttp app is named here."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from telehealth.http.throttle import Throttle
from telehealth.records.mediastore import MediaStore
from telehealth.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
MEDIA_STORE = web.AppKey("media_store", MediaStore)
THROTTLE = web.AppKey("throttle", Throttle)
