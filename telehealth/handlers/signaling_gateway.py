"""The signaling seam implemented on the records: sessions, join sessions and the visit state machine."""

from __future__ import annotations

import uuid
from typing import Final

from telehealth.handlers.accounts import SessionsHandler
from telehealth.handlers.common import SessionSource
from telehealth.handlers.uow import Actor, UnitOfWork
from telehealth.records import participants, visits
from telehealth.records.accounts import SessionPolicy
from telehealth.records.errors import Gone, InvalidStateError, RecordNotFound
from telehealth.records.models import Visit, VisitState
from telehealth.records.types import utcnow
from telehealth.signaling.gateway import SignalingStateError, VisitStateName
from telehealth.signaling.identity import Identity, Role

_CALL_ROLES: Final = frozenset({"clinician", "admin"})
_OVER: Final = (VisitState.ENDED, VisitState.CANCELLED, VisitState.NO_SHOW)
_SYSTEM: Final = Actor(None, "system")
GUEST_PREFIX: Final = "guest-"  # participant id of an invited participant: guest-<invite id>


class RecordsGateway:
    """Authenticates sockets against server-side sessions and persists visit states."""

    def __init__(self, sessions: SessionSource, policy: SessionPolicy) -> None:
        self.sessions = SessionsHandler(sessions, policy=policy)

    def _work(self, actor: Actor) -> UnitOfWork:
        return self.sessions.work(actor)

    async def authenticate_clinician(self, session_token: str, visit_id: str) -> Identity | None:
        """The visit's clinician runs the call; any other clinician or admin joins as a colleague who waits."""
        vid = _uuid(visit_id)
        if vid is None:
            return None
        p = await self.sessions.resolve(session_token)
        if p is None or p.role not in _CALL_ROLES or p.user_id is None:
            return None
        own = True
        async with self._work(Actor(p.actor_id, p.role)) as uow:
            visit = await uow.db.get(Visit, vid)
            if visit is None or visit.state in _OVER:
                uow.discard()
                return None
            own = visit.clinician_id == p.user_id
            role = Role.CLINICIAN if own else Role.OBSERVER
            name = p.display_name[:120]
            await participants.record_participant(
                uow.db, vid, str(p.user_id), role=role.value, display_name=name, user_id=p.user_id
            )
            uow.audit(
                "join_visit",
                object_type="visit",
                object_id=vid,
                patient_id=visit.patient_id,
                detail={"role": role.value},
            )
        return Identity(
            participant_id=str(p.user_id),
            role=role,
            display_name=name,
            visit_id=visit_id,
            user_id=str(p.user_id),
            lobby_id=str(visit.clinician_id),
            session_id=str(p.session_id),
            waits=not own,
        )

    async def authenticate_patient(self, join_token: str) -> Identity | None:
        """The patient's visit-bound session (issued after the link and DOB check), or an invite link."""
        p = await self.sessions.resolve(join_token)
        if p is None:
            return await self._authenticate_guest(join_token)
        if p.role != "patient" or p.visit_id is None:
            return None
        async with self._work(Actor(p.actor_id, "patient")) as uow:
            try:
                visit = await visits.get_visit(uow.db, p.visit_id, with_people=True)
            except RecordNotFound:
                uow.discard()
                return None
            if visit.state in _OVER:
                uow.discard()
                return None
            # One patient slot per visit: a second tab (or a new session) takes over the first.
            pid = f"patient-{visit.id}"
            name = f"{visit.patient.given_name} {visit.patient.family_name}"[:120]
            await participants.record_participant(uow.db, visit.id, pid, role="patient", display_name=name)
            uow.audit("join_visit", object_type="visit", object_id=visit.id, patient_id=visit.patient_id)
        return Identity(
            participant_id=pid,
            role=Role.PATIENT,
            display_name=f"{visit.patient.given_name} {visit.patient.family_name}"[:120],
            visit_id=str(visit.id),
            lobby_id=str(visit.clinician_id),
            session_id=str(p.session_id),
            # The call is in progress, so this visit's patient was admitted: no second admission.
            rejoins_call=visit.state == VisitState.IN_CALL,
        )

    async def _authenticate_guest(self, token: str) -> Identity | None:
        """An invite link names its visit, role and person; they wait to be admitted like a patient."""
        async with self._work(Actor(None, "guest")) as uow:
            try:
                invite, visit = await participants.invite_for_token(uow.db, token)
            except (RecordNotFound, Gone):
                uow.discard()
                return None
            pid = f"{GUEST_PREFIX}{invite.id}"
            role = participants.INVITE_ROLES[invite.role]
            await participants.record_participant(
                uow.db, visit.id, pid, role=role, display_name=invite.display_name, invite_id=invite.id
            )
            uow.audit(
                "join_visit",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
                detail={"role": invite.role, "invite_id": str(invite.id)},
                actor=Actor(pid, "guest"),
            )
        return Identity(
            participant_id=pid,
            role=Role(role),
            display_name=invite.display_name[:120],
            visit_id=str(visit.id),
            lobby_id=str(visit.clinician_id),
            waits=True,
        )

    async def participant_admitted(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Stamp the admission on the participant's record and audit it as the admitting clinician's act."""
        await self._participant_event(visit_id, participant_id, by, "admit_participant", removed=False)

    async def participant_removed(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Stamp the removal; an invited participant's link is revoked in the same transaction."""
        await self._participant_event(visit_id, participant_id, by, "remove_participant", removed=True)

    async def _participant_event(
        self, visit_id: str, participant_id: str, by: Identity, action: str, *, removed: bool
    ) -> None:
        vid = _uuid(visit_id)
        if vid is None:
            raise SignalingStateError("unknown visit")
        async with self._work(Actor(by.user_id, by.role.value)) as uow:
            visit = await uow.db.get(Visit, vid)
            if visit is None:
                raise SignalingStateError("unknown visit")
            row = await participants.mark_participant(
                uow.db, vid, participant_id, admitted=not removed, removed=removed
            )
            detail: dict[str, str] = {"participant_id": participant_id}
            if row is not None:
                detail["role"] = row.role
                if removed and row.invite_id is not None:
                    await participants.revoke_invite(uow.db, vid, row.invite_id)
                    detail["invite_id"] = str(row.invite_id)
            uow.audit(action, object_type="visit", object_id=vid, patient_id=visit.patient_id, detail=detail)

    async def keep_chat(self, sender: Identity, text: str) -> None:
        """Store a chat line with the visit record (called only when keeping chat is enabled)."""
        vid = _uuid(sender.visit_id)
        if vid is None:
            raise SignalingStateError("unknown visit")
        async with self._work(Actor(sender.user_id or sender.participant_id, sender.role.value)) as uow:
            visit = await uow.db.get(Visit, vid)
            if visit is None:
                raise SignalingStateError("unknown visit")
            row = participants.keep_chat(
                uow.db,
                vid,
                participant_id=sender.participant_id,
                role=sender.role.value,
                display_name=sender.display_name,
                text=text,
                at=utcnow(),
            )
            await uow.db.flush()
            uow.audit("chat_kept", object_type="chat_message", object_id=row.id, patient_id=visit.patient_id)

    async def set_visit_state(self, visit_id: str, state: VisitStateName) -> None:
        """Move the visit through the records' state machine."""
        vid = _uuid(visit_id)
        if vid is None:
            raise SignalingStateError("unknown visit")
        async with self._work(_SYSTEM) as uow:
            visit = await uow.db.get(Visit, vid)
            if visit is None:
                raise SignalingStateError("unknown visit")
            target = VisitState(state)
            # Processes persist "waiting" (patient arrived) and "in_call" (admitted) independently,
            # so the two writes can land in either order: admitting a visit whose "waiting" has not
            # landed yet passes through it, and a late "waiting" never takes a running call back.
            if target == VisitState.WAITING and visit.state == VisitState.IN_CALL:
                uow.discard()
                return
            try:
                if target == VisitState.IN_CALL and visit.state == VisitState.SCHEDULED:
                    visits.transition(visit, VisitState.WAITING)
                changed = visits.transition(visit, target)
            except InvalidStateError as exc:
                raise SignalingStateError(exc.message) from exc
            if not changed:
                uow.discard()
                return
            uow.audit(f"visit_{state}", object_type="visit", object_id=vid, patient_id=visit.patient_id)

    async def session_active(self, session_id: str) -> bool:
        """The session behind a resuming socket is still live (the same rule as for a request)."""
        sid = _uuid(session_id)
        return sid is not None and await self.sessions.active(sid)

    async def session_of(self, session_token: str) -> str | None:
        """The id of a live session token (a lobby socket's), or None."""
        p = await self.sessions.resolve(session_token)
        return None if p is None else str(p.session_id)

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """Clinicians and admins watch the lobby of the visits assigned to them."""
        p = await self.sessions.resolve(session_token)
        if p is None or p.role not in _CALL_ROLES or p.user_id is None:
            return None
        return str(p.user_id)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
