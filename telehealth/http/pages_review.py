"""Review pages: static shells whose ES modules read the review API (which audits every view)."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ADMIN, STAFF, allow
from telehealth.http.pages import page

routes = web.RouteTableDef()


@routes.get("/review")
@allow(*STAFF, page=True)
async def search_page(request: web.Request) -> web.Response:
    """Find a patient to review."""
    return await page(request, "review")


@routes.get("/review/patients/{patient_id}")
@allow(*STAFF, page=True)
async def timeline_page(request: web.Request) -> web.Response:
    """A patient's visits with thumbnail strips."""
    return await page(request, "review_patient")


@routes.get("/review/visits/{visit_id}")
@allow(*STAFF, page=True)
async def visit_page(request: web.Request) -> web.Response:
    """One visit: montage, clip player, grading, notes, export."""
    return await page(request, "review_visit")


@routes.get("/review/compare")
@allow(*STAFF, page=True)
async def compare_page(request: web.Request) -> web.Response:
    """Two visits side by side, expression by expression (?a=<visit>&b=<visit>)."""
    return await page(request, "review_compare")


@routes.get("/review/audit")
@allow(ADMIN, page=True)
async def audit_page(request: web.Request) -> web.Response:
    """The audit log, filtered by patient or user."""
    return await page(request, "review_audit")
