"""Staff login, logout and the current session."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ALL_ROLES, STAFF, actor, allow, principal
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import LoginIn, MeOut
from telehealth.keys import HANDLERS, SETTINGS
from telehealth.websecurity import SESSION_COOKIE

routes = web.RouteTableDef()


@routes.post("/api/auth/login")
@doc("Sign in with username and password; sets the session cookie", body=LoginIn, response=MeOut)
@allow(*ALL_ROLES, csrf=False)
async def login(request: web.Request) -> web.Response:
    """Check credentials (throttled per user and per client), rotate the session, set the cookie."""
    # A foreign Origin never gets here: access_middleware refuses (and audits) it for every write.
    body = await parse_body(request, LoginIn)
    signed_in = await request.app[HANDLERS].accounts.login(
        body.username,
        body.password,
        client_addr=request.remote,
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    user = signed_in.user
    resp = ok(
        MeOut(role=user.role.value, user_id=user.id, display_name=user.display_name, csrf_token=signed_in.csrf_token)
    )
    resp.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies or request.secure,
        path="/",
    )
    return resp


@routes.post("/api/auth/logout")
@doc("Sign out: revoke the session")
@allow(*STAFF)
async def logout(request: web.Request) -> web.Response:
    """Revoke the session server-side and clear the cookie."""
    await request.app[HANDLERS].accounts.logout(actor(request), request.cookies.get(SESSION_COOKIE))
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
