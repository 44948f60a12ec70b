"""The aiohttp application factory: wires routes and resources, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from telehealth.capture.service import capture_context
from telehealth.http import api_admin, api_auth, api_capture, api_join, api_patients, api_visits, pages
from telehealth.http.access import access_middleware, access_of
from telehealth.http.middleware import error_middleware, security_headers
from telehealth.http.throttle import Throttle
from telehealth.keys import ENGINE, MEDIA_STORE, SESSIONMAKER, SETTINGS, THROTTLE
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.mediastore import FileMediaStore
from telehealth.settings import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024  # uploads get their own streaming limit


async def _database(app: web.Application) -> AsyncIterator[None]:
    """One cleanup_ctx entry for the engine: created at start, disposed at shutdown."""
    engine = make_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


def _check_access_rules(app: web.Application) -> None:
    """Refuse to start if any route forgot to declare who may call it (deny by default)."""
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource):
            continue
        if access_of(route.handler) is None:
            raise RuntimeError(f"route {route.method} {route.resource} declares no access rule")


def create_app(settings: Settings) -> web.Application:
    """Build the web application for these settings."""
    app = web.Application(
        middlewares=[security_headers, error_middleware, access_middleware],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[SETTINGS] = settings
    app[THROTTLE] = Throttle(limit=settings.login_max_failures)
    app[MEDIA_STORE] = FileMediaStore(settings.media_dir)
    app.cleanup_ctx.append(_database)
    # After the database: at shutdown it closes first, so clip tasks can still write their rows.
    app.cleanup_ctx.append(capture_context)
    for module in (pages, api_auth, api_patients, api_visits, api_join, api_admin, api_capture):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", settings.web_dir / "static", follow_symlinks=False)
    _check_access_rules(app)
    return app
