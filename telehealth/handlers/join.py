"""The patient's side of a join link: what it opens, trading it for a session, consent."""

from __future__ import annotations

import uuid
from datetime import date

from telehealth.handlers.common import Handler, SessionSource
from telehealth.handlers.throttle import Throttle
from telehealth.handlers.uow import Actor, Event, reading, record_refusal
from telehealth.records import accounts, visits
from telehealth.records.consent import CONSENT_VERSION
from telehealth.records.errors import InvalidInput, NotAuthenticated, RecordNotFound, Throttled
from telehealth.records.models import Visit
from telehealth.records.tokens import token_hash
from telehealth.records.types import utcnow


class JoinHandler(Handler):
    """Join links are guessable only by brute force: attempts are throttled per link and per client."""

    def __init__(self, sessions: SessionSource, *, throttle: Throttle) -> None:
        super().__init__(sessions)
        self.throttle = throttle

    async def visit_for_link(self, token: str) -> Visit:
        """The visit behind a join link (404 unknown, 410 expired or revoked); shows no patient data."""
        async with reading(self.sessionmaker) as db:
            return await visits.visit_for_join_token(db, token)

    async def start_session(self, actor: Actor, token: str, birth_date: date | None) -> tuple[str, str, uuid.UUID]:
        """Trade a join link (and date of birth) for a visit-bound session: (token, csrf token, visit id)."""
        key = f"join:{token_hash(token)}"
        if wait := self.throttle.retry_after(key):
            raise Throttled("too many attempts; try again later", retry_after=wait)
        async with reading(self.sessionmaker) as db:
            try:
                visit = await visits.visit_for_join_token(db, token)
            except RecordNotFound:
                self.throttle.failure(f"join-ip:{actor.client_addr}")
                raise
            matches = visits.dob_matches(visit, birth_date)
        if not matches:
            self.throttle.failure(key)
            refused = Event("patient_join", "visit", visit.id, visit.patient_id, {"reason": "dob"}, outcome="failed")
            await record_refusal(self.sessionmaker, actor, refused)
            raise NotAuthenticated("the date of birth does not match our records")
        self.throttle.success(key)
        async with self.work(actor) as uow:
            # Looked up again inside the transaction: the link may have been revoked meanwhile.
            visit = await visits.visit_for_join_token(uow.db, token)
            session_token, row = await accounts.start_session(uow.db, visit=visit, client_addr=actor.client_addr)
            uow.audit("patient_join", object_type="visit", object_id=visit.id, patient_id=visit.patient_id)
        return session_token, row.csrf_token, visit.id

    async def patient_visit(self, visit_id: uuid.UUID) -> Visit:
        """The visit bound to a patient's own session (their own data: not an audited view)."""
        async with reading(self.sessionmaker) as db:
            return await visits.get_visit(db, visit_id, with_people=True)

    async def consent(
        self, actor: Actor, visit_id: uuid.UUID, *, capture: bool, signed_name: str, consent_version: str
    ) -> Visit:
        """Store consent (or its refusal) with who, when and which text version."""
        if consent_version != CONSENT_VERSION:
            raise InvalidInput(
                "the consent text has changed; please reload and read it again",
                details=[{"field": "consent_version", "message": f"current is {CONSENT_VERSION}"}],
            )
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            visit.consent_capture = capture
            visit.consent_at = utcnow()
            visit.consent_by = signed_name
            visit.consent_text_version = consent_version
            uow.audit(
                "consent",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
                detail={"capture": capture, "version": consent_version},
            )
        return visit
