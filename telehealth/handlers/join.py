"""The patient's side of a join link: what it opens, trading it for a session, consent."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.handlers.common import Handler, SessionSource
from telehealth.handlers.passwords import AdmissionGate
from telehealth.handlers.throttle import Throttle
from telehealth.handlers.uow import Actor, Event, bookkeeping, reading, record_refusal
from telehealth.records import accounts, visits
from telehealth.records.consent import CONSENT_VERSION
from telehealth.records.errors import DomainError, InvalidInput, NotAuthenticated, Throttled
from telehealth.records.models import Visit
from telehealth.records.tokens import token_hash
from telehealth.records.types import utcnow


class JoinHandler(Handler):
    """Join links are guessable only by brute force: attempts are counted per client and per link first."""

    def __init__(self, sessions: SessionSource, *, throttle: Throttle, gate: AdmissionGate) -> None:
        super().__init__(sessions)
        self.throttle = throttle
        self.gate = gate

    async def visit_for_link(self, token: str) -> Visit:
        """The visit behind a join link (404 unknown, 410 expired or revoked); shows no patient data."""
        async with reading(self.sessionmaker) as db:
            return await visits.visit_for_join_token(db, token)

    async def start_session(self, actor: Actor, token: str, birth_date: date | None) -> tuple[str, str, uuid.UUID]:
        """Trade a join link (and date of birth) for a visit-bound session: (token, csrf token, visit id)."""
        with self.gate.admit():
            async with bookkeeping(self.sessionmaker) as db:
                # Counted before the link is looked up: unknown tokens spend the address's guesses.
                client = await self.throttle.reserve(db, f"join-ip:{actor.client_addr}")
                link, visit, refused = client, None, None
                if client.granted:
                    visit, refused = await _visit_or_error(db, token)
                    if visit is not None and visit.join_requires_dob:
                        link = await self.throttle.reserve(db, f"join:{token_hash(token)}")
            for reservation in (client, link):
                if not reservation.granted:
                    raise Throttled("too many attempts; try again later", retry_after=reservation.retry_after)
            if visit is None:
                assert refused is not None
                raise refused
            if not visits.dob_matches(visit, birth_date):
                refusal = Event("patient_join", "visit", visit.id, visit.patient_id, {"reason": "dob"}, "failed")
                await record_refusal(self.sessionmaker, actor, refusal)
                raise NotAuthenticated("the date of birth does not match our records")
            async with self.work(actor) as uow:
                # Looked up again inside the transaction: the link may have been revoked meanwhile.
                visit = await visits.visit_for_join_token(uow.db, token)
                await self.throttle.refund(uow.db, client)
                if link is not client:
                    await self.throttle.forget(uow.db, link)
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


async def _visit_or_error(db: AsyncSession, token: str) -> tuple[Visit | None, DomainError | None]:
    """The link's visit, or the refusal to raise once the attempt's count has committed."""
    try:
        return await visits.visit_for_join_token(db, token), None
    except DomainError as exc:
        return None, exc
