"""What every handler shares: where database sessions come from, and the anonymous role."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import Actor, UnitOfWork

# A getter: the app creates the engine in its cleanup context, after the handlers are built.
SessionSource = Callable[[], async_sessionmaker[AsyncSession]]

ANONYMOUS: Final = "anonymous"


class SessionsEnded(Protocol):
    """Told after a commit revoked sessions, so their open sockets close (signaling's session watch)."""

    async def ended(self, session_ids: Sequence[uuid.UUID]) -> None:
        """These sessions were revoked."""
        ...


class Handler:
    """Base of the handlers: opens units of work on the app's database."""

    def __init__(self, sessions: SessionSource) -> None:
        self._sessions = sessions

    def work(self, actor: Actor) -> UnitOfWork:
        """A unit of work by this actor (commits only with its audit event)."""
        return UnitOfWork(self._sessions(), actor)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """The app's session factory (for reads and refusals)."""
        return self._sessions()
