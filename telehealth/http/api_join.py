"""The patient's side of a join link: what the visit is, confirm identity, consent."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ALL_ROLES, PATIENT, actor, allow, principal
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import (
    ConsentIn,
    JoinInfoOut,
    JoinSessionIn,
    PatientSessionOut,
    PatientVisitOut,
)
from telehealth.keys import SESSIONMAKER, THROTTLE
from telehealth.records import audit, visits
from telehealth.records.accounts import start_session
from telehealth.records.consent import CONSENT_TEXT, CONSENT_VERSION
from telehealth.records.errors import InvalidInput, NotAuthenticated, RecordNotFound, Throttled
from telehealth.records.tokens import token_hash
from telehealth.records.types import utcnow

routes = web.RouteTableDef()


@routes.get("/api/join/{token}")
@doc(
    "What a join link opens: clinician, time, whether a date of birth is asked, consent text",
    response=JoinInfoOut,
)
@allow(*ALL_ROLES)
async def join_info(request: web.Request) -> web.Response:
    """Describe the visit behind a join link (404 unknown, 410 expired or revoked)."""
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.visit_for_join_token(db, request.match_info["token"])
    return ok(
        JoinInfoOut(
            clinician_name=visit.clinician.display_name,
            scheduled_at=visit.scheduled_at,
            requires_dob=visit.join_requires_dob,
            consent_text=CONSENT_TEXT,
            consent_version=CONSENT_VERSION,
            state=visit.state,
        )
    )


@routes.post("/api/join/{token}/session")
@doc(
    "Open a patient session for the visit (confirming the date of birth when asked)",
    body=JoinSessionIn,
    response=PatientSessionOut,
    status=201,
)
@allow(*ALL_ROLES, csrf=False)
async def join_session(request: web.Request) -> web.Response:
    """Trade a join link (and date of birth) for a visit-bound bearer session."""
    token = request.match_info["token"]
    body = await parse_body(request, JoinSessionIn)
    throttle = request.app[THROTTLE]
    key = f"join:{token_hash(token)}"
    if wait := throttle.retry_after(key):
        raise Throttled("too many attempts; try again later", retry_after=wait)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        try:
            visit = await visits.visit_for_join_token(db, token)
        except RecordNotFound:
            throttle.failure(f"join-ip:{request.remote}")
            raise
        if not visits.dob_matches(visit, body.birth_date):
            throttle.failure(key)
            audit.record(
                db,
                actor(request),
                "patient_join",
                outcome="failed",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
                detail={"reason": "dob"},
            )
            await db.commit()
            raise NotAuthenticated("the date of birth does not match our records")
        throttle.success(key)
        session_token, row = await start_session(db, visit=visit, client_addr=request.remote)
        audit.record(
            db,
            actor(request),
            "patient_join",
            object_type="visit",
            object_id=visit.id,
            patient_id=visit.patient_id,
        )
    return ok(
        PatientSessionOut(token=session_token, visit_id=visit.id, csrf_token=row.csrf_token),
        status=201,
    )


@routes.get("/api/patient/visit")
@doc("The patient's own visit", response=PatientVisitOut)
@allow(PATIENT)
async def patient_visit(request: web.Request) -> web.Response:
    """The visit bound to the patient's session."""
    p = principal(request)
    assert p.visit_id is not None
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, p.visit_id, with_people=True)
    return ok(
        PatientVisitOut(
            visit_id=visit.id,
            clinician_name=visit.clinician.display_name,
            scheduled_at=visit.scheduled_at,
            state=visit.state,
            consent_capture=visit.consent_capture,
        )
    )


@routes.post("/api/patient/consent")
@doc(
    "Record the patient's answer to photo and video capture",
    body=ConsentIn,
    response=PatientVisitOut,
)
@allow(PATIENT)
async def consent(request: web.Request) -> web.Response:
    """Store consent (or its refusal) with who, when and which text version."""
    body = await parse_body(request, ConsentIn)
    if body.consent_version != CONSENT_VERSION:
        raise InvalidInput(
            "the consent text has changed; please reload and read it again",
            details=[{"field": "consent_version", "message": f"current is {CONSENT_VERSION}"}],
        )
    p = principal(request)
    assert p.visit_id is not None
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, p.visit_id, with_people=True)
        visit.consent_capture = body.capture
        visit.consent_at = utcnow()
        visit.consent_by = body.signed_name
        visit.consent_text_version = body.consent_version
        audit.record(
            db,
            actor(request),
            "consent",
            object_type="visit",
            object_id=visit.id,
            patient_id=visit.patient_id,
            detail={"capture": body.capture, "version": body.consent_version},
        )
    return ok(
        PatientVisitOut(
            visit_id=visit.id,
            clinician_name=visit.clinician.display_name,
            scheduled_at=visit.scheduled_at,
            state=visit.state,
            consent_capture=visit.consent_capture,
        )
    )
