"""Administration: staff accounts and the audit log."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from telehealth.http.access import ADMIN, actor, allow
from telehealth.http.jsonio import ok, parse_body, parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas import AuditList, AuditOut, AuditQuery, UserIn, UserList, UserOut
from telehealth.keys import SESSIONMAKER
from telehealth.records import audit
from telehealth.records.accounts import create_user
from telehealth.records.models import AuditEvent, User

routes = web.RouteTableDef()


@routes.get("/api/admin/users")
@doc("List staff accounts", response=UserList)
@allow(ADMIN)
async def list_users(request: web.Request) -> web.Response:
    """All staff accounts."""
    async with request.app[SESSIONMAKER]() as db, db.begin():
        users = (await db.scalars(select(User).order_by(User.username))).all()
        audit.record(db, actor(request), "list_users")
    return ok(UserList(items=[UserOut.of(u) for u in users]))


@routes.post("/api/admin/users")
@doc("Create a staff account", body=UserIn, response=UserOut, status=201)
@allow(ADMIN)
async def add_user(request: web.Request) -> web.Response:
    """Create a staff account (409 on a duplicate username)."""
    body = await parse_body(request, UserIn)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        user = await create_user(db, body.username, body.display_name, body.role, body.password)
        audit.record(db, actor(request), "create_user", object_type="user", object_id=user.id)
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
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(q.limit)
    if q.patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == q.patient_id)
    if q.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == q.actor_id)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        rows = (await db.scalars(stmt)).all()
        audit.record(db, actor(request), "read_audit", patient_id=q.patient_id)
    return ok(AuditList(items=[AuditOut.model_validate(r, from_attributes=True) for r in rows]))
