"""The aiohttp application factory: wires routes and resources, nothing else."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from telehealth.handlers.analysis import analysis_context
from telehealth.handlers.capture.context import capture_context
from telehealth.handlers.capture.events import NoCaptureListener
from telehealth.handlers.container import Handlers
from telehealth.handlers.passwords import PasswordChecker
from telehealth.handlers.throttle import Throttle
from telehealth.http import (
    api_admin,
    api_analysis,
    api_auth,
    api_capture,
    api_export,
    api_grading,
    api_ice,
    api_join,
    api_media,
    api_messages,
    api_metrics,
    api_participants,
    api_patients,
    api_review,
    api_visits,
    pages,
    pages_review,
)
from telehealth.http.access import ALL_ROLES, access_middleware, access_of, allow
from telehealth.http.api_metrics import metrics_middleware
from telehealth.http.forwarded import forwarded_middleware, parse_networks
from telehealth.http.middleware import error_middleware, security_headers
from telehealth.http.requestlog import request_context_middleware
from telehealth.keys import CAPTURE_LISTENER, ENGINE, HANDLERS, MEDIA_STORE, SESSIONMAKER, SETTINGS
from telehealth.messaging.service import messages_context
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.mediastore import FileMediaStore
from telehealth.settings import Settings
from telehealth.signaling import CAPTURE_FEED_KEY, SignalingSettings, setup_signaling
from telehealth.signaling import routes as signaling_routes
from telehealth.signaling.revocation import SessionWatch

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024  # uploads get their own streaming limit


async def _database(app: web.Application) -> AsyncIterator[None]:
    """One cleanup_ctx entry for the engine: created at start, disposed at shutdown."""
    engine = make_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


def _password_threads(checker: PasswordChecker) -> Callable[[web.Application], AsyncIterator[None]]:
    """One cleanup_ctx entry for argon2's own threads: stopped at shutdown without waiting for a queue."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        yield
        checker.close()

    return context


def _check_access_rules(app: web.Application) -> None:
    """Refuse to start if any route forgot to declare who may call it (deny by default)."""
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource):
            continue
        if access_of(route.handler) is None:
            raise RuntimeError(f"route {route.method} {route.resource} declares no access rule")


def signaling_settings(settings: Settings) -> SignalingSettings:
    """Signaling tunables derived from the application settings (resume tokens keyed off the secret)."""
    resume_secret = hmac.new(settings.secret_key.encode(), b"signaling-resume", hashlib.sha256).digest()
    return SignalingSettings(
        resume_secret=resume_secret,
        redis_url=settings.redis_url,
        stun_urls=settings.stun_urls,
        turn_urls=settings.turn_urls,
        turn_secret=settings.turn_secret,
        turn_ttl=settings.turn_ttl_seconds,
        allowed_origins=settings.trusted_origins,
        keep_chat=settings.keep_chat,
    )


def _signaling(app: web.Application, handlers: Handlers, settings: SignalingSettings, watch: SessionWatch) -> None:
    """Visit and lobby sockets; they authenticate in-band (first message), so HTTP lets anyone in."""
    setup_signaling(app, handlers.signaling, settings, watch=watch)
    # Capture changes are pushed to the clinicians' visit sockets: the panel does not poll.
    app[CAPTURE_LISTENER] = app[CAPTURE_FEED_KEY]
    for handler in (signaling_routes.visit_socket, signaling_routes.lobby_socket):
        allow(*ALL_ROLES)(handler)


def create_app(settings: Settings) -> web.Application:
    """Build the web application for these settings."""
    app = web.Application(
        middlewares=[
            forwarded_middleware(parse_networks(settings.trusted_proxies)),
            request_context_middleware,
            metrics_middleware,
            error_middleware,
            access_middleware,
        ],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app.on_response_prepare.append(security_headers)
    app[SETTINGS] = settings
    signaling = signaling_settings(settings)
    passwords = PasswordChecker(settings.password_threads)
    watch = SessionWatch()
    handlers = Handlers.build(
        settings,
        sessions=lambda: app[SESSIONMAKER],
        engine=lambda: app[ENGINE],
        throttle=Throttle(limit=settings.login_max_failures),
        ice=signaling,
        passwords=passwords,
        ended=watch,
    )
    watch.check = handlers.signaling
    app[HANDLERS] = handlers
    app[MEDIA_STORE] = FileMediaStore(settings.media_dir)
    app[CAPTURE_LISTENER] = NoCaptureListener()  # replaced by whoever pushes capture changes
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_password_threads(passwords))
    # After the database: at shutdown it closes first, so clip tasks can still write their rows.
    app.cleanup_ctx.append(capture_context)
    # After capture: measuring stops before the peers close; it listens to the stills they store.
    app.cleanup_ctx.append(analysis_context)
    # After the database too: the sender stops (cancelled and awaited) before the engine closes.
    app.cleanup_ctx.append(messages_context)
    for module in (
        pages,
        api_auth,
        api_patients,
        api_visits,
        api_messages,
        api_join,
        api_admin,
        api_capture,
        api_participants,
    ):
        app.router.add_routes(module.routes)
    for module in (pages_review, api_review, api_grading, api_media, api_export, api_analysis):
        app.router.add_routes(module.routes)
    app.router.add_routes(api_ice.routes)
    app.router.add_routes(api_metrics.routes)
    _signaling(app, handlers, signaling, watch)
    app.router.add_static("/static/", settings.web_dir / "static", follow_symlinks=False)
    _check_access_rules(app)
    return app
