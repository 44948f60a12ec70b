"""Wiring into an aiohttp application: routes, typed app keys, one cleanup_ctx per resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from telehealth.signaling.broker import Broker, InProcessBroker
from telehealth.signaling.capturefeed import CaptureFeed
from telehealth.signaling.config import SignalingSettings
from telehealth.signaling.connection import Connection
from telehealth.signaling.gateway import VisitGateway
from telehealth.signaling.hub import Hub
from telehealth.signaling.identity import valid_id
from telehealth.signaling.outbox import CloseCode
from telehealth.signaling.redisbroker import RedisBroker
from telehealth.signaling.revocation import SessionWatch
from telehealth.signaling.sessions import LobbySession, VisitSession

log = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("signaling_settings", SignalingSettings)
GATEWAY_KEY = web.AppKey("signaling_gateway", VisitGateway)
BROKER_KEY = web.AppKey("signaling_broker", Broker)
HUB_KEY = web.AppKey("signaling_hub", Hub)
CAPTURE_FEED_KEY = web.AppKey("signaling_capture_feed", CaptureFeed)
CONNECTIONS_KEY: web.AppKey[set[Connection]] = web.AppKey("signaling_connections")
WATCH_KEY = web.AppKey("signaling_session_watch", SessionWatch)

# Frames above the codec's limit still get an error frame; far above it aiohttp closes (1009).
_HARD_FRAME_LIMIT = 1024 * 1024
_SHUTDOWN_FLUSH = 5.0


def make_broker(settings: SignalingSettings) -> Broker:
    """Redis pub/sub when a Redis URL is configured, otherwise in-process."""
    if settings.redis_url:
        return RedisBroker(settings.redis_url, settings.node_id, pool_size=settings.redis_pool_size)
    return InProcessBroker(settings.node_id)


def setup_signaling(
    app: web.Application,
    gateway: VisitGateway,
    settings: SignalingSettings,
    broker: Broker | None = None,
    watch: SessionWatch | None = None,
) -> None:
    """Add the signaling routes and resources to app; takes ownership of broker if given."""
    app[WATCH_KEY] = watch if watch is not None else SessionWatch()
    app[SETTINGS_KEY] = settings
    app[GATEWAY_KEY] = gateway
    app[BROKER_KEY] = broker if broker is not None else make_broker(settings)
    app[CONNECTIONS_KEY] = set()
    app[CAPTURE_FEED_KEY] = CaptureFeed(lambda: app[HUB_KEY])
    app.cleanup_ctx.append(_broker_ctx)
    app.cleanup_ctx.append(_hub_ctx)
    app.cleanup_ctx.append(_capture_feed_ctx)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/ws/visit/{visit_id}", visit_socket)
    app.router.add_get("/ws/lobby", lobby_socket)


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    broker = app[BROKER_KEY]
    await broker.start()
    yield
    await broker.close()


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = Hub(app[BROKER_KEY], app[GATEWAY_KEY], app[SETTINGS_KEY])
    app[HUB_KEY] = hub
    await hub.start()
    await app[WATCH_KEY].start(app[BROKER_KEY])
    yield
    await app[WATCH_KEY].close()
    await hub.close()


async def _capture_feed_ctx(app: web.Application) -> AsyncIterator[None]:
    feed = app[CAPTURE_FEED_KEY]
    feed.start()
    yield
    await feed.close()


async def _close_sockets(app: web.Application) -> None:
    """Close sockets before resources go: clients reconnect and resume elsewhere."""
    connections: list[Connection] = [*app[CONNECTIONS_KEY]]
    for conn in connections:
        conn.close(CloseCode.GOING_AWAY, "server shutting down")
    # aiohttp cancels handlers next; wait (bounded) so the close frames actually go out.
    try:
        async with asyncio.timeout(_SHUTDOWN_FLUSH):
            await asyncio.gather(*(conn.flushed() for conn in connections))
    except TimeoutError:
        log.warning("some sockets did not close within %.0f s", _SHUTDOWN_FLUSH)


def _prepare(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS_KEY]
    # No permessage-deflate: its per-socket zlib state costs far more memory than it saves.
    return web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        max_msg_size=_HARD_FRAME_LIMIT,
        compress=False,
        timeout=5.0,
    )


async def _serve(request: web.Request, scope: str, visit_id: str | None) -> web.WebSocketResponse:
    ws = _prepare(request)
    await ws.prepare(request)
    app = request.app
    conn = Connection(ws, app[SETTINGS_KEY], scope)
    conn.start()
    app[CONNECTIONS_KEY].add(conn)
    try:
        if visit_id is None:
            await LobbySession(app[HUB_KEY], conn, request, app[WATCH_KEY]).run()
        else:
            await VisitSession(app[HUB_KEY], conn, request, visit_id, app[WATCH_KEY]).run()
    except Exception:
        conn.log.exception("signaling session failed")
    finally:
        app[CONNECTIONS_KEY].discard(conn)
        await conn.finish()
    return ws


async def visit_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/visit/{visit_id}: the signaling socket of one visit."""
    visit_id = request.match_info["visit_id"]
    if not valid_id(visit_id):
        raise web.HTTPNotFound()
    return await _serve(request, f"visit={visit_id}", visit_id)


async def lobby_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/lobby: a clinician dashboard's live feed of waiting patients."""
    return await _serve(request, "lobby", None)
