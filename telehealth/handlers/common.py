"""What every handler shares: where database sessions come from, and the anonymous role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import Actor, UnitOfWork

# A getter: the app creates the engine in its cleanup context, after the handlers are built.
SessionSource = Callable[[], async_sessionmaker[AsyncSession]]

ANONYMOUS: Final = "anonymous"


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
