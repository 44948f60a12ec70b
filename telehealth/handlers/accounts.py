"""Accounts and sessions: sign-in, sign-out, resolving a session, staff accounts, the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from telehealth import metrics
from telehealth.handlers.common import ANONYMOUS, Handler, SessionsEnded, SessionSource
from telehealth.handlers.passwords import DUMMY_HASH, AdmissionGate, PasswordChecker
from telehealth.handlers.throttle import Throttle
from telehealth.handlers.uow import Actor, Event, bookkeeping, record_refusal
from telehealth.records import accounts, audit
from telehealth.records.accounts import Principal, SessionPolicy
from telehealth.records.errors import NotAuthenticated, Throttled
from telehealth.records.models import AuditEvent, Role, User

INVALID_LOGIN = "invalid username or password"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in: the new session's one-time token, its CSRF token and the user."""

    token: str
    csrf_token: str
    user: User


class SessionsHandler(Handler):
    """Who is calling: server-side sessions resolved on every request and socket, and refused requests."""

    def __init__(self, sessions: SessionSource, *, policy: SessionPolicy) -> None:
        super().__init__(sessions)
        self.policy = policy

    async def resolve(self, token: str) -> Principal | None:
        """The caller behind a session token, or None when unknown, revoked or timed out."""
        async with bookkeeping(self.sessionmaker) as db:
            return await accounts.resolve_session(db, token, self.policy)

    async def active(self, session_id: uuid.UUID) -> bool:
        """Whether a session (by id) is live; a call's socket may outlive the idle timeout, not a revocation."""
        lifetime = SessionPolicy(idle=self.policy.absolute, absolute=self.policy.absolute)
        async with bookkeeping(self.sessionmaker) as db:
            return await accounts.session_active(db, session_id, lifetime)

    async def refuse(self, actor: Actor, route: str, reason: str) -> None:
        """Audit a refused request (wrong role, foreign origin, missing CSRF token)."""
        event = Event("access_denied", "route", route[:64], detail={"reason": reason}, outcome="denied")
        await record_refusal(self.sessionmaker, actor, event)


class AccountsHandler(Handler):
    """The rules of signing in and of sessions; the only caller of the password check.

    Each attempt is counted in the database per client address and per account name *before* the
    password is checked, atomically, so a burst (from one process or several) checks at most the
    allowed number. Argon2 runs on its own small executor while no database connection is held,
    and at most ``gate.limit`` anonymous requests are at work at once; the rest are refused at once.
    """

    def __init__(
        self,
        sessions: SessionSource,
        *,
        max_failures: int,
        throttle: Throttle,
        passwords: PasswordChecker,
        gate: AdmissionGate,
        ended: SessionsEnded,
    ) -> None:
        super().__init__(sessions)
        self.ended = ended
        self.max_failures = max_failures
        self.throttle = throttle
        self.accounts = Throttle(limit=max_failures)
        self.passwords = passwords
        self.gate = gate

    async def login(self, username: str, password: str, *, client_addr: str | None, replaces: str | None) -> SignedIn:
        """Check credentials (throttled per client and per account) and start a rotated session."""
        anonymous = Actor(None, ANONYMOUS, client_addr)
        attempted = username.strip().lower()[:64]
        with self.gate.admit():
            async with bookkeeping(self.sessionmaker) as db:
                client = await self.throttle.reserve(db, f"login-ip:{client_addr}")
                account = await self.accounts.reserve(db, f"login:{attempted}") if client.granted else client
                user = await accounts.find_user(db, attempted) if account.granted else None
            if not client.granted:
                await record_refusal(self.sessionmaker, anonymous, _login_refused(attempted, "throttled"))
                raise Throttled("too many failed attempts; try again later", retry_after=client.retry_after)
            if not account.granted:
                metrics.record_lockout()
                # The same answer as a wrong password: a lock must not tell that the account exists.
                await record_refusal(self.sessionmaker, anonymous, _login_refused(attempted, "locked"))
                raise NotAuthenticated(INVALID_LOGIN)
            # Unknown names are checked against a dummy hash so they take as long as real ones.
            valid = await self.passwords.verify(user.password_hash if user else DUMMY_HASH, password)
            if user is None or user.disabled or not valid:
                await record_refusal(self.sessionmaker, anonymous, _login_refused(attempted, "failed"))
                raise NotAuthenticated(INVALID_LOGIN)
            async with self.work(anonymous) as uow:
                await self.accounts.forget(uow.db, account)
                await self.throttle.refund(uow.db, client)
                rotated = await accounts.revoke_session(uow.db, replaces) if replaces else None
                token, row = await accounts.start_session(uow.db, user=user, client_addr=client_addr)
                signed_in = Actor(str(user.id), user.role.value, client_addr)
                uow.audit("login", object_type="user", object_id=user.id, actor=signed_in)
            if rotated is not None:
                await self.ended.ended([rotated])
        return SignedIn(token=token, csrf_token=row.csrf_token, user=user)

    async def logout(self, actor: Actor, token: str | None) -> None:
        """Revoke the session server-side."""
        async with self.work(actor) as uow:
            revoked = await accounts.revoke_session(uow.db, token) if token else None
            uow.audit("logout")
        if revoked is not None:
            await self.ended.ended([revoked])

    async def list_users(self, actor: Actor) -> Sequence[User]:
        """All staff accounts (audited)."""
        async with self.work(actor) as uow:
            users = await accounts.list_users(uow.db)
            uow.audit("list_users")
        return users

    async def create_user(self, actor: Actor, *, username: str, display_name: str, role: Role, password: str) -> User:
        """Create a staff account (Conflict on a duplicate username)."""
        async with self.work(actor) as uow:
            user = await accounts.create_user(uow.db, username, display_name, role, password)
            uow.audit("create_user", object_type="user", object_id=user.id)
        return user

    async def audit_log(
        self, actor: Actor, *, limit: int, patient_id: uuid.UUID | None, actor_id: str | None
    ) -> Sequence[AuditEvent]:
        """Audit events, newest first (reading them is itself audited)."""
        async with self.work(actor) as uow:
            events = await audit.recent(uow.db, limit=limit, patient_id=patient_id, actor_id=actor_id)
            uow.audit("read_audit", patient_id=patient_id)
        return events


def _login_refused(username: str, outcome: str) -> Event:
    return Event("login", "user", username, outcome=outcome)
