"""Staff accounts, passwords, login throttling and server-side sessions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import Conflict, InvalidInput, RecordNotFound
from telehealth.records.models import AuthSession, Role, User, Visit
from telehealth.records.tokens import new_token, token_hash
from telehealth.records.types import utcnow

_hasher = PasswordHasher()
MIN_PASSWORD = 10


async def hash_password(password: str) -> str:
    """Argon2id hash, computed off the event loop."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    return await asyncio.to_thread(_hasher.hash, password)


async def create_user(db: AsyncSession, username: str, display_name: str, role: Role, password: str) -> User:
    """Create a staff user; duplicate usernames raise Conflict."""
    username = username.strip().lower()
    if not username or len(username) > 64:
        raise InvalidInput("username must be 1-64 characters")
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=await hash_password(password),
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise Conflict(f"username {username!r} exists") from exc
    return user


async def list_users(db: AsyncSession) -> Sequence[User]:
    """All staff accounts by username."""
    return (await db.scalars(select(User).order_by(User.username))).all()


async def display_names(db: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of these users (unknown ids are left out)."""
    rows = await db.execute(select(User.id, User.display_name).where(User.id.in_(set(user_ids))))
    return {uid: name for uid, name in rows.all()}


async def get_user(db: AsyncSession, user_id: uuid.UUID | None) -> User:
    """The user, or RecordNotFound."""
    user = await db.get(User, user_id) if user_id is not None else None
    if user is None:
        raise RecordNotFound("user not found")
    return user


async def find_user(db: AsyncSession, username: str) -> User | None:
    """The account signing in with this name (names are compared lower-cased), if any."""
    user: User | None = await db.scalar(select(User).where(User.username == username.strip().lower()))
    return user


@dataclass(frozen=True)
class SessionPolicy:
    """Idle and absolute lifetimes of a session."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    session_id: uuid.UUID
    role: str  # admin | clinician | reviewer | patient
    user_id: uuid.UUID | None
    visit_id: uuid.UUID | None
    display_name: str
    csrf_token: str

    @property
    def actor_id(self) -> str:
        """The id recorded in the audit log."""
        return str(self.user_id) if self.user_id else f"patient:{self.visit_id}"


async def start_session(
    db: AsyncSession,
    *,
    user: User | None = None,
    visit: Visit | None = None,
    client_addr: str | None,
) -> tuple[str, AuthSession]:
    """Create a session and return its one-time token (only its hash is stored)."""
    token = new_token()
    row = AuthSession(
        token_hash=token_hash(token),
        user_id=user.id if user else None,
        visit_id=visit.id if visit else None,
        csrf_token=new_token(),
        client_addr=client_addr,
    )
    db.add(row)
    await db.flush()
    return token, row


async def revoke_session(db: AsyncSession, token: str) -> uuid.UUID | None:
    """Revoke a session by token and return its id; unknown or already revoked tokens give None."""
    row = await db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = utcnow()
    return row.id


async def revoke_visit_sessions(db: AsyncSession, visit_id: uuid.UUID) -> list[uuid.UUID]:
    """Revoke every live patient session of a visit (its join link was re-issued or revoked)."""
    rows = await db.scalars(
        update(AuthSession)
        .where(AuthSession.visit_id == visit_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(AuthSession.id)
    )
    return list(rows.all())


async def session_active(db: AsyncSession, session_id: uuid.UUID, policy: SessionPolicy) -> bool:
    """Whether a session (by id) is still live: the check a resuming socket passes, like a request."""
    row = await db.get(AuthSession, session_id)
    return row is not None and (await resolve_row(db, row, policy, touch=False)) is not None


async def resolve_session(
    db: AsyncSession, token: str, policy: SessionPolicy, *, touch: bool = True
) -> Principal | None:
    """The principal for a live session token, or None when unknown, revoked or timed out."""
    row = await db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    return None if row is None else await resolve_row(db, row, policy, touch=touch)


async def resolve_row(db: AsyncSession, row: AuthSession, policy: SessionPolicy, *, touch: bool) -> Principal | None:
    """The principal of a session row, or None when revoked, timed out or its user or link is gone."""
    now = utcnow()
    if row.revoked_at is not None:
        return None
    if now - row.last_seen_at > policy.idle or now - row.created_at > policy.absolute:
        row.revoked_at = now
        return None
    if row.user_id is not None:
        user = await db.get(User, row.user_id)
        if user is None or user.disabled:
            return None
        role, name = user.role.value, user.display_name
    elif row.visit_id is not None:
        visit = await db.get(Visit, row.visit_id)
        if visit is None or visit.join_revoked_at is not None:
            return None
        role, name = "patient", "Patient"
    else:
        return None
    # Write last_seen at most once a minute: sessions are read on every request.
    if touch and now - row.last_seen_at > timedelta(seconds=60):
        row.last_seen_at = now
    return Principal(
        session_id=row.id,
        role=role,
        user_id=row.user_id,
        visit_id=row.visit_id,
        display_name=name,
        csrf_token=row.csrf_token,
    )
