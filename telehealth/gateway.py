"""The signaling seam implemented on the records: sessions, join sessions and the visit state machine."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import audit, visits
from telehealth.records.accounts import Principal, SessionPolicy, resolve_session
from telehealth.records.errors import InvalidStateError as RecordsInvalidState
from telehealth.records.errors import RecordNotFound
from telehealth.records.models import Visit, VisitState
from telehealth.signaling.gateway import InvalidStateError, VisitStateName
from telehealth.signaling.identity import Identity, Role

log = logging.getLogger(__name__)

_CALL_ROLES: Final = frozenset({"clinician", "admin"})
_OVER: Final = (VisitState.ENDED, VisitState.CANCELLED)


class RecordsGateway:
    """Authenticates sockets against server-side sessions and persists visit states."""

    def __init__(self, sessionmaker: Callable[[], async_sessionmaker[AsyncSession]], policy: SessionPolicy) -> None:
        # A getter: the engine is created by the app's cleanup context, after this object.
        self._sessionmaker = sessionmaker
        self.policy = policy

    def sessionmaker(self) -> AsyncSession:
        """A new database session."""
        return self._sessionmaker()()

    async def _principal(self, db: AsyncSession, token: str) -> Principal | None:
        return await resolve_session(db, token, self.policy)

    async def authenticate_clinician(self, session_token: str, visit_id: str) -> Identity | None:
        """A clinician or admin session may join any open visit of the clinic."""
        vid = _uuid(visit_id)
        if vid is None:
            return None
        async with self.sessionmaker() as db, db.begin():
            p = await self._principal(db, session_token)
            if p is None or p.role not in _CALL_ROLES or p.user_id is None:
                return None
            visit = await db.get(Visit, vid)
            if visit is None or visit.state in _OVER:
                return None
            audit.record(
                db,
                audit.Actor(p.actor_id, p.role),
                "join_visit",
                object_type="visit",
                object_id=vid,
                patient_id=visit.patient_id,
            )
            return Identity(
                participant_id=str(p.user_id),
                role=Role.CLINICIAN,
                display_name=p.display_name[:120],
                visit_id=visit_id,
                user_id=str(p.user_id),
                lobby_id=str(visit.clinician_id),
            )

    async def authenticate_patient(self, join_token: str) -> Identity | None:
        """The token is the patient's visit-bound session (issued after the link and DOB check)."""
        async with self.sessionmaker() as db, db.begin():
            p = await self._principal(db, join_token)
            if p is None or p.role != "patient" or p.visit_id is None:
                return None
            try:
                visit = await visits.get_visit(db, p.visit_id, with_people=True)
            except RecordNotFound:
                return None
            if visit.state in _OVER:
                return None
            audit.record(
                db,
                audit.Actor(p.actor_id, "patient"),
                "join_visit",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
            )
            name = f"{visit.patient.given_name} {visit.patient.family_name}"[:120]
            return Identity(
                participant_id=f"patient-{p.session_id}",
                role=Role.PATIENT,
                display_name=name,
                visit_id=str(visit.id),
                lobby_id=str(visit.clinician_id),
            )

    async def set_visit_state(self, visit_id: str, state: VisitStateName) -> None:
        """Move the visit through the records' state machine."""
        vid = _uuid(visit_id)
        if vid is None:
            raise InvalidStateError("unknown visit")
        async with self.sessionmaker() as db, db.begin():
            visit = await db.get(Visit, vid)
            if visit is None:
                raise InvalidStateError("unknown visit")
            target = VisitState(state)
            # Processes persist "waiting" (patient arrived) and "in_call" (admitted) independently,
            # so the two writes can land in either order: admitting a visit whose "waiting" has not
            # landed yet passes through it, and a late "waiting" never takes a running call back.
            if target == VisitState.WAITING and visit.state == VisitState.IN_CALL:
                return
            try:
                if target == VisitState.IN_CALL and visit.state == VisitState.SCHEDULED:
                    visits.transition(visit, VisitState.WAITING)
                changed = visits.transition(visit, target)
            except RecordsInvalidState as exc:
                raise InvalidStateError(exc.message) from exc
            if changed:
                audit.record(
                    db,
                    audit.Actor(None, "system"),
                    f"visit_{state}",
                    object_type="visit",
                    object_id=vid,
                    patient_id=visit.patient_id,
                )

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """Clinicians and admins watch the lobby of the visits assigned to them."""
        async with self.sessionmaker() as db, db.begin():
            p = await self._principal(db, session_token)
        if p is None or p.role not in _CALL_ROLES or p.user_id is None:
            return None
        return str(p.user_id)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
