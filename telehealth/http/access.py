"""Who may call what: every route declares its roles here, enforced in one middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from telehealth.handlers.common import ANONYMOUS as ANONYMOUS
from telehealth.handlers.uow import Actor
from telehealth.keys import HANDLERS, SETTINGS
from telehealth.records.accounts import Principal
from telehealth.records.errors import AccessDenied, NotAuthenticated
from telehealth.records.tokens import same
from telehealth.websecurity import SESSION_COOKIE
from telehealth.websecurity import same_origin as _same_origin

log = logging.getLogger(__name__)

PATIENT: Final = "patient"
REVIEWER: Final = "reviewer"
CLINICIAN: Final = "clinician"
ADMIN: Final = "admin"
ALL_ROLES: Final = (ANONYMOUS, PATIENT, REVIEWER, CLINICIAN, ADMIN)
STAFF: Final = (REVIEWER, CLINICIAN, ADMIN)
CARE_TEAM: Final = (CLINICIAN, ADMIN)

CSRF_HEADER: Final = "X-CSRF-Token"
PRINCIPAL_KEY: Final = web.RequestKey("principal", Principal)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Access:
    """A handler's access rule: allowed roles; pages redirect anonymous users to /login."""

    roles: frozenset[str]
    page: bool = False
    csrf: bool = True

    def __post_init__(self) -> None:
        unknown = self.roles - set(ALL_ROLES)
        if unknown or not self.roles:
            raise ValueError(f"bad roles {sorted(unknown)}")


H = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allow(*roles: str, page: bool = False, csrf: bool = True) -> Callable[[H], H]:
    """Declare which roles may call the decorated handler (csrf=False only for login)."""

    def mark(handler: H) -> H:
        handler.__access__ = Access(frozenset(roles), page, csrf)  # type: ignore[attr-defined]
        return handler

    return mark


def access_of(handler: object) -> Access | None:
    """The access rule declared on a handler, if any."""
    rule = getattr(handler, "__access__", None)
    return rule if isinstance(rule, Access) else None


def principal(request: web.Request) -> Principal:
    """The authenticated caller (the middleware guarantees one on non-anonymous routes)."""
    p = maybe_principal(request)
    if p is None:
        raise NotAuthenticated("sign in required")
    return p


def maybe_principal(request: web.Request) -> Principal | None:
    """The caller if authenticated."""
    p = request.get(PRINCIPAL_KEY)
    return p if isinstance(p, Principal) else None


def actor(request: web.Request) -> Actor:
    """The audit actor for this request."""
    p = maybe_principal(request)
    addr = request.remote
    if p is None:
        return Actor(None, ANONYMOUS, addr)
    return Actor(p.actor_id, p.role, addr)


def _credential(request: web.Request) -> tuple[str | None, bool]:
    """The session token and whether it came from the cookie (cookies need CSRF checks)."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip() or None, False
    return request.cookies.get(SESSION_COOKIE) or None, True


def same_origin(request: web.Request) -> bool:
    """HTTP writes: this site's Origin, or none at all (cookie writes also need the CSRF token)."""
    return _same_origin(request, request.app[SETTINGS].trusted_origins, missing_ok=True)


async def _refuse(request: web.Request, reason: str) -> None:
    """Audit a refused request (in its own transaction: the request's work never commits)."""
    await request.app[HANDLERS].sessions.refuse(actor(request), f"{request.method} {request.path}", reason)
    p = maybe_principal(request)
    log.warning("refused %s %s for %s: %s", request.method, request.path, p.role if p else ANONYMOUS, reason)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller, enforce the route's roles and CSRF, audit refusals."""
    route_handler = request.match_info.route.handler
    rule = access_of(route_handler)
    if rule is None:
        # Unmatched routes (404/405) and static files: nothing to protect beyond the default.
        if request.match_info.http_exception is not None or request.path.startswith("/static/"):
            return await handler(request)
        log.error("route %s has no access rule", request.path)
        raise web.HTTPInternalServerError()
    token, from_cookie = _credential(request)
    p: Principal | None = None
    if token:
        p = await request.app[HANDLERS].sessions.resolve(token)
    if p is not None:
        request[PRINCIPAL_KEY] = p
    role = p.role if p else ANONYMOUS
    if role not in rule.roles and not (p is not None and ANONYMOUS in rule.roles):
        if p is None:
            if rule.page:
                raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")
            raise NotAuthenticated("sign in required")
        await _refuse(request, "role")
        raise AccessDenied("not allowed for your role")
    if request.method not in _SAFE_METHODS:
        if not same_origin(request):
            await _refuse(request, "origin")
            raise AccessDenied("cross-origin request refused")
        if p is not None and from_cookie and rule.csrf:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not same(sent, p.csrf_token):
                await _refuse(request, "csrf")
                raise AccessDenied("missing or wrong CSRF token")
    return await handler(request)
