"""Third participants: invite links bound to a visit and a role, who joined each call, kept chat."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import Gone, InvalidStateError, RecordNotFound
from telehealth.records.models import ChatMessage, Visit, VisitInvite, VisitParticipant, VisitState
from telehealth.records.tokens import new_token, same, token_hash
from telehealth.records.types import utcnow

# Invite roles as the clinician names them -> the signaling role they join with.
INVITE_ROLES: Final = {"interpreter": "interpreter", "family": "family", "colleague": "observer"}
_OVER: Final = (VisitState.ENDED, VisitState.CANCELLED)


def issue_invite(
    db: AsyncSession, visit: Visit, *, role: str, display_name: str, created_by: uuid.UUID, valid_hours: int
) -> tuple[VisitInvite, str]:
    """A new invite link for one person in one role; returns the row and the token (only its hash is kept)."""
    if visit.state in _OVER:
        raise InvalidStateError("the visit is over; nobody can be invited")
    if role not in INVITE_ROLES:
        raise InvalidStateError(f"unknown role {role}")
    token = new_token()
    now = utcnow()
    invite = VisitInvite(
        visit_id=visit.id,
        role=role,
        display_name=display_name,
        token_hash=token_hash(token),
        expires_at=max(now, visit.scheduled_at) + timedelta(hours=valid_hours),
        created_by=created_by,
    )
    db.add(invite)
    return invite, token


async def invite_for_token(db: AsyncSession, token: str) -> tuple[VisitInvite, Visit]:
    """The invite and visit a token opens: 404 unknown, 410 revoked, expired or the visit is over."""
    if not token or len(token) > 128:
        raise RecordNotFound("unknown invite link")
    invite = await db.scalar(select(VisitInvite).where(VisitInvite.token_hash == token_hash(token)))
    if invite is None or not same(invite.token_hash, token_hash(token)):
        raise RecordNotFound("unknown invite link")
    visit = await db.get(Visit, invite.visit_id)
    if visit is None:
        raise RecordNotFound("unknown invite link")
    if invite.revoked_at is not None or visit.state in _OVER:
        raise Gone("this invite link is no longer valid")
    if invite.expires_at <= utcnow():
        raise Gone("this invite link has expired")
    return invite, visit


async def list_invites(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[VisitInvite]:
    """A visit's invites, oldest first."""
    stmt = select(VisitInvite).where(VisitInvite.visit_id == visit_id).order_by(VisitInvite.created_at)
    return (await db.scalars(stmt)).all()


async def revoke_invite(db: AsyncSession, visit_id: uuid.UUID, invite_id: uuid.UUID) -> VisitInvite:
    """Revoke one invite of the visit (idempotent)."""
    invite = await db.get(VisitInvite, invite_id)
    if invite is None or invite.visit_id != visit_id:
        raise RecordNotFound("invite not found")
    invite.revoked_at = invite.revoked_at or utcnow()
    return invite


async def record_participant(
    db: AsyncSession,
    visit_id: uuid.UUID,
    participant_id: str,
    *,
    role: str,
    display_name: str,
    user_id: uuid.UUID | None = None,
    invite_id: uuid.UUID | None = None,
) -> VisitParticipant:
    """The participant's row for this visit, created on first join (a rejoin keeps the first)."""
    row = await _participant(db, visit_id, participant_id)
    if row is None:
        row = VisitParticipant(
            visit_id=visit_id,
            participant_id=participant_id,
            role=role,
            display_name=display_name,
            user_id=user_id,
            invite_id=invite_id,
        )
        db.add(row)
        await db.flush()
    return row


async def mark_participant(
    db: AsyncSession, visit_id: uuid.UUID, participant_id: str, *, admitted: bool = False, removed: bool = False
) -> VisitParticipant | None:
    """Stamp admission or removal on a recorded participant (None when never recorded)."""
    row = await _participant(db, visit_id, participant_id)
    if row is None:
        return None
    now = utcnow()
    if admitted and row.admitted_at is None:
        row.admitted_at = now
    if removed:
        row.removed_at = now
    return row


async def list_participants(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[VisitParticipant]:
    """Everyone who joined the visit's call, in joining order."""
    stmt = select(VisitParticipant).where(VisitParticipant.visit_id == visit_id).order_by(VisitParticipant.joined_at)
    return (await db.scalars(stmt)).all()


def keep_chat(
    db: AsyncSession, visit_id: uuid.UUID, *, participant_id: str, role: str, display_name: str, text: str, at: datetime
) -> ChatMessage:
    """Store one chat line with the visit record."""
    row = ChatMessage(
        visit_id=visit_id,
        participant_id=participant_id,
        role=role,
        display_name=display_name,
        text=text,
        created_at=at,
    )
    db.add(row)
    return row


async def list_chat(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[ChatMessage]:
    """The kept chat of a visit, in order."""
    stmt = select(ChatMessage).where(ChatMessage.visit_id == visit_id).order_by(ChatMessage.created_at)
    return (await db.scalars(stmt)).all()


async def _participant(db: AsyncSession, visit_id: uuid.UUID, participant_id: str) -> VisitParticipant | None:
    stmt = select(VisitParticipant).where(
        VisitParticipant.visit_id == visit_id, VisitParticipant.participant_id == participant_id
    )
    row: VisitParticipant | None = await db.scalar(stmt)
    return row
