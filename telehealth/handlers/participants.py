"""Third participants of a visit: invite links by role, who took part, and what the call's chat kept."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from telehealth.handlers.common import Handler, SessionSource
from telehealth.handlers.uow import Actor, reading
from telehealth.records import participants, visits
from telehealth.records.errors import InvalidInput
from telehealth.records.models import ChatMessage, Visit, VisitInvite, VisitParticipant


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite and its token (shown once; only the hash is stored)."""

    invite: VisitInvite
    token: str


@dataclass(frozen=True, slots=True)
class Roster:
    """A visit's invites, everyone who joined its call, and its kept chat."""

    invites: Sequence[VisitInvite]
    participants: Sequence[VisitParticipant]
    chat: Sequence[ChatMessage]


class ParticipantsHandler(Handler):
    """Invites are issued by the care team; every invite, revocation and roster view is audited."""

    def __init__(self, sessions: SessionSource, *, link_hours: int) -> None:
        super().__init__(sessions)
        self.link_hours = link_hours

    async def invite(self, actor: Actor, visit_id: uuid.UUID, *, role: str, display_name: str) -> IssuedInvite:
        """Issue a link that lets one named person into the visit in the given role."""
        if actor.id is None:
            raise InvalidInput("only a signed-in clinician can invite")
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            invite, token = participants.issue_invite(
                uow.db,
                visit,
                role=role,
                display_name=display_name,
                created_by=uuid.UUID(actor.id),
                valid_hours=self.link_hours,
            )
            await uow.db.flush()
            uow.audit(
                "invite_participant",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"role": role, "invite_id": str(invite.id)},
            )
        return IssuedInvite(invite, token)

    async def revoke(self, actor: Actor, visit_id: uuid.UUID, invite_id: uuid.UUID) -> VisitInvite:
        """Revoke an invite link (a participant already in the call is removed through the call)."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            invite = await participants.revoke_invite(uow.db, visit_id, invite_id)
            uow.audit(
                "revoke_invite",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"invite_id": str(invite_id)},
            )
        return invite

    async def roster(self, actor: Actor, visit_id: uuid.UUID) -> Roster:
        """The visit's invites, participants and kept chat (an audited view of the visit)."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            roster = Roster(
                invites=await participants.list_invites(uow.db, visit_id),
                participants=await participants.list_participants(uow.db, visit_id),
                chat=await participants.list_chat(uow.db, visit_id),
            )
            uow.audit("view_participants", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        return roster

    async def for_link(self, token: str) -> tuple[VisitInvite, Visit]:
        """The invite behind a link and its visit with the clinician (404 unknown, 410 revoked or over)."""
        async with reading(self.sessionmaker) as db:
            invite, visit = await participants.invite_for_token(db, token)
            visit = await visits.get_visit(db, visit.id, with_people=True)
            return invite, visit
