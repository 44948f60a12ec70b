"""GET /metrics for Prometheus, and the middleware that counts requests.

Only addresses in TELEHEALTH_METRICS_ALLOW (loopback by default) or a caller with the bearer token
TELEHEALTH_METRICS_TOKEN may scrape: the figures reveal how busy the clinic is. Gauges that describe
shared state (visits by state, media size, pool use, sockets) are read at scrape time, so they are
right even after a restart and cost nothing between scrapes.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from telehealth import metrics
from telehealth.http.access import ALL_ROLES, allow
from telehealth.http.forwarded import Network
from telehealth.keys import HANDLERS, SETTINGS
from telehealth.signaling.routes import BROKER_KEY, CONNECTIONS_KEY, HUB_KEY

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
LOGIN_ROUTE = "/api/auth/login"


def _route_of(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by method, route template and status class, with its duration."""
    started = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_of(request)
        metrics.record_request(request.method, route, status, time.perf_counter() - started)
        if route == LOGIN_ROUTE and request.method == "POST":
            metrics.record_login(status)


def _allowed(request: web.Request) -> bool:
    settings = request.app[SETTINGS]
    token = settings.metrics_token
    auth = request.headers.get("Authorization", "")
    if token and auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    try:
        addr = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in settings.metrics_allow)
    return any(addr in net for net in networks)


def _read_process(app: web.Application) -> None:
    metrics.WEBSOCKETS.set(len(app[CONNECTIONS_KEY]))
    metrics.PARTICIPANTS.set(sum(len(room.slots) for room in app[HUB_KEY].rooms().values()))
    connected = getattr(app[BROKER_KEY], "connected", None)  # only the Redis broker has a connection
    if isinstance(connected, bool):
        metrics.REDIS_UP.set(1 if connected else 0)


@routes.get("/metrics")
@allow(*ALL_ROLES)
async def scrape(request: web.Request) -> web.Response:
    """Prometheus text format; 403 unless the caller's address is allowed or it sends the token."""
    if not _allowed(request):
        raise web.HTTPForbidden(reason="metrics are not available to this address")
    try:
        await request.app[HANDLERS].monitoring.refresh()
    except Exception:  # a scrape still reports the rest while the database is down
        log.exception("metrics: database gauges unavailable")
    _read_process(request.app)
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})
