"""Staff accounts, passwords, login throttling and server-side sessions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.errors import Conflict, InvalidInput, NotAuthenticated, RecordNotFound, Throttled
from telehealth.records.models import AuthSession, Role, User, Visit
from telehealth.records.tokens import new_token, token_hash
from telehealth.records.types import utcnow

_hasher = PasswordHasher()
# Hash of a random password: verifying against it for unknown users keeps timing uniform.
_DUMMY_HASH = _hasher.hash(new_token())
MIN_PASSWORD = 10
MAX_LOCK_SECONDS = 15 * 60


async def hash_password(password: str) -> str:
    """Argon2id hash, computed off the event loop."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Check a password off the event loop."""
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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


FIRST_LOCK_SECONDS = 30


def lock_seconds(failures: int, max_failures: int) -> int:
    """Back-off after too many failures: 30 s, 60 s, 120 s ... capped at 15 minutes."""
    if failures < max_failures:
        return 0
    return int(min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** (failures - max_failures)))


async def authenticate(
    db: AsyncSession,
    username: str,
    password: str,
    *,
    max_failures: int,
    now: datetime | None = None,
) -> User:
    """Return the user for valid credentials; otherwise a generic error (throttled when locked)."""
    now = now or utcnow()
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        await verify_password(_DUMMY_HASH, password)
        raise NotAuthenticated("invalid username or password")
    if user.locked_until is not None and user.locked_until > now:
        retry = int((user.locked_until - now).total_seconds()) + 1
        raise Throttled("too many failed attempts; try again later", retry_after=retry)
    if user.disabled or not await verify_password(user.password_hash, password):
        user.failed_logins += 1
        wait = lock_seconds(user.failed_logins, max_failures)
        user.locked_until = now + timedelta(seconds=wait) if wait else None
        raise NotAuthenticated("invalid username or password")
    user.failed_logins = 0
    user.locked_until = None
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
    replaces: str | None = None,
) -> tuple[str, AuthSession]:
    """Create a session (rotating away any previous one) and return its one-time token."""
    if replaces:
        await revoke_session(db, replaces)
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


async def revoke_session(db: AsyncSession, token: str) -> None:
    """Revoke a session by token; unknown tokens are ignored."""
    row = await db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


async def resolve_session(
    db: AsyncSession, token: str, policy: SessionPolicy, *, touch: bool = True
) -> Principal | None:
    """The principal for a live session token, or None when unknown, revoked or timed out."""
    now = utcnow()
    row = await db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
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
