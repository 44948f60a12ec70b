"""HTML pages: static shells whose ES modules fetch data from the API."""

from __future__ import annotations

import asyncio

from aiohttp import web

from telehealth.http.access import ALL_ROLES, CARE_TEAM, STAFF, allow, maybe_principal
from telehealth.http.openapi import build_openapi, doc
from telehealth.http.schemas import Health
from telehealth.keys import HANDLERS, SETTINGS

routes = web.RouteTableDef()


async def page(request: web.Request, name: str) -> web.Response:
    """Serve web/<name>.html (read off the event loop)."""
    path = request.app[SETTINGS].web_dir / f"{name}.html"
    body = await asyncio.to_thread(path.read_text, encoding="utf-8")
    return web.Response(text=body, content_type="text/html")


@routes.get("/login")
@allow(*ALL_ROLES)
async def login_page(request: web.Request) -> web.Response:
    """The staff sign-in page."""
    return await page(request, "login")


@routes.get("/")
@allow(*STAFF, page=True)
async def dashboard(request: web.Request) -> web.Response:
    """Today's visits for the signed-in clinician."""
    return await page(request, "dashboard")


@routes.get("/visit/{visit_id}")
@allow(*CARE_TEAM, page=True)
async def visit_page(request: web.Request) -> web.Response:
    """The clinician's call view for one visit (the page loads the visit through the API)."""
    return await page(request, "visit")


@routes.get("/join/{token}")
@allow(*ALL_ROLES)
async def join_page(request: web.Request) -> web.Response:
    """The patient's entry point; unknown or expired links get a clear 404/410 page."""
    await request.app[HANDLERS].join.visit_for_link(request.match_info["token"])
    return await page(request, "join")


@routes.get("/healthz")
@allow(*ALL_ROLES)
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@allow(*ALL_ROLES)
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    if not await request.app[HANDLERS].health.ready():
        return web.json_response(Health(status="unavailable").model_dump(), status=503)
    return web.json_response(Health(status="ok").model_dump())


@routes.get("/api/openapi.json")
@doc("This document")
@allow(*ALL_ROLES)
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of the routes registered on this app."""
    _ = maybe_principal(request)
    return web.json_response(build_openapi(request.app))
