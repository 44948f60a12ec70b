"""Administration: staff accounts and the audit log."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ADMIN, actor, allow
from telehealth.http.jsonio import ok, parse_body, parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas import AuditList, AuditOut, AuditQuery, UserIn, UserList, UserOut
from telehealth.keys import HANDLERS

routes = web.RouteTableDef()


@routes.get("/api/admin/users")
@doc("List staff accounts", response=UserList)
@allow(ADMIN)
async def list_users(request: web.Request) -> web.Response:
    """All staff accounts."""
    users = await request.app[HANDLERS].accounts.list_users(actor(request))
    return ok(UserList(items=[UserOut.of(u) for u in users]))


@routes.post("/api/admin/users")
@doc("Create a staff account", body=UserIn, response=UserOut, status=201)
@allow(ADMIN)
async def add_user(request: web.Request) -> web.Response:
    """Create a staff account (409 on a duplicate username)."""
    body = await parse_body(request, UserIn)
    user = await request.app[HANDLERS].accounts.create_user(
        actor(request), username=body.username, display_name=body.display_name, role=body.role, password=body.password
    )
    return ok(UserOut.of(user), status=201)


@routes.get("/api/admin/audit")
@doc(
    "Read the audit log, newest first, filtered by patient or actor",
    query=AuditQuery,
    response=AuditList,
)
@allow(ADMIN)
async def read_audit(request: web.Request) -> web.Response:
    """Audit events (reading them is itself audited)."""
    q = parse_query(request, AuditQuery)
    rows = await request.app[HANDLERS].accounts.audit_log(
        actor(request), limit=q.limit, patient_id=q.patient_id, actor_id=q.actor_id
    )
    return ok(AuditList(items=[AuditOut.model_validate(r, from_attributes=True) for r in rows]))
