"""Staff login, logout and the current session."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import (
    ALL_ROLES,
    ANONYMOUS,
    SESSION_COOKIE,
    STAFF,
    actor,
    allow,
    principal,
    same_origin,
)
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import LoginIn, MeOut
from telehealth.keys import SESSIONMAKER, SETTINGS, THROTTLE
from telehealth.records import audit
from telehealth.records.accounts import authenticate, revoke_session, start_session
from telehealth.records.errors import AccessDenied, DomainError, NotAuthenticated, Throttled

routes = web.RouteTableDef()


@routes.post("/api/auth/login")
@doc("Sign in with username and password; sets the session cookie", body=LoginIn, response=MeOut)
@allow(*ALL_ROLES, csrf=False)
async def login(request: web.Request) -> web.Response:
    """Check credentials (throttled per user and per client), rotate the session, set the cookie."""
    if not same_origin(request):
        raise AccessDenied("cross-origin login refused")
    body = await parse_body(request, LoginIn)
    settings = request.app[SETTINGS]
    throttle = request.app[THROTTLE]
    client_key = f"login:{request.remote}"
    async with request.app[SESSIONMAKER]() as db, db.begin():
        try:
            if wait := throttle.retry_after(client_key):
                raise Throttled("too many failed attempts; try again later", retry_after=wait)
            user = await authenticate(db, body.username, body.password, max_failures=settings.login_max_failures)
        except DomainError as exc:
            if isinstance(exc, NotAuthenticated):
                throttle.failure(client_key)
            audit.record(
                db,
                audit.Actor(None, ANONYMOUS, request.remote),
                "login",
                outcome="throttled" if isinstance(exc, Throttled) else "failed",
                object_type="user",
                object_id=body.username.strip().lower()[:64],
            )
            await db.commit()
            raise
        throttle.success(client_key)
        token, row = await start_session(
            db,
            user=user,
            client_addr=request.remote,
            replaces=request.cookies.get(SESSION_COOKIE),
        )
        audit.record(
            db,
            audit.Actor(str(user.id), user.role.value, request.remote),
            "login",
            object_type="user",
            object_id=user.id,
        )
    resp = ok(
        MeOut(
            role=user.role.value,
            user_id=user.id,
            display_name=user.display_name,
            csrf_token=row.csrf_token,
        )
    )
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies or request.secure,
        path="/",
    )
    return resp


@routes.post("/api/auth/logout")
@doc("Sign out: revoke the session")
@allow(*STAFF)
async def logout(request: web.Request) -> web.Response:
    """Revoke the session server-side and clear the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        if token:
            await revoke_session(db, token)
        audit.record(db, actor(request), "logout")
    resp = ok({"status": "signed_out"})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@routes.get("/api/auth/me")
@doc("The current session's identity and CSRF token", response=MeOut)
@allow("patient", *STAFF)
async def me(request: web.Request) -> web.Response:
    """Who is signed in."""
    p = principal(request)
    return ok(
        MeOut(
            role=p.role,
            user_id=p.user_id,
            display_name=p.display_name,
            csrf_token=p.csrf_token,
            visit_id=p.visit_id,
        )
    )
