"""Sessions that end close their sockets: in this process at once, in the others through the broker."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from pydantic import Field

from telehealth.signaling.broker import Broker, BrokerUnavailable, Subscription
from telehealth.signaling.codec import BusFrame
from telehealth.signaling.messages import Direction, Message, register
from telehealth.signaling.outbox import CloseCode, Outbox

log = logging.getLogger(__name__)

CHANNEL = "sessions-ended"


@register(Direction.BUS)
class SessionsEnded(Message):
    """Server to server: these sessions were revoked (sign-out, rotation, a re-issued or revoked link)."""

    type: Literal["sessions_ended"] = "sessions_ended"
    sessions: list[uuid.UUID] = Field(max_length=10_000)


class SessionCheck(Protocol):
    """The one session validity check HTTP requests also pass (the records' sessions)."""

    async def session_active(self, session_id: str) -> bool:
        """Whether the session is still live (not revoked, not past its lifetime, user or link still valid)."""
        ...

    async def session_of(self, session_token: str) -> str | None:
        """The id of a live session token, or None."""
        ...


class SessionWatch:
    """Open sockets by the session that authenticated them; closes them when that session ends anywhere."""

    def __init__(self, check: SessionCheck | None = None) -> None:
        self.check = check
        self._sockets: dict[str, set[Outbox]] = {}
        self._broker: Broker | None = None
        self._subscription: Subscription | None = None

    async def start(self, broker: Broker) -> None:
        """Listen for sessions ended by other processes."""
        self._broker = broker
        self._subscription = await broker.subscribe(CHANNEL, self._on_frame)

    async def close(self) -> None:
        """Stop listening (at shutdown)."""
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.close()
        self._broker = None

    async def active(self, session_id: str | None) -> bool:
        """Whether a resuming socket's session is still live (identities without a session always are)."""
        return session_id is None or self.check is None or await self.check.session_active(session_id)

    async def session_of(self, session_token: str) -> str | None:
        """The session id behind a token, for sockets whose identity does not carry it (the lobby)."""
        return None if self.check is None else await self.check.session_of(session_token)

    def watch(self, session_id: str | None, socket: Outbox) -> None:
        """Close ``socket`` when ``session_id`` ends (sockets of test identities have no session)."""
        if session_id is not None:
            self._sockets.setdefault(session_id, set()).add(socket)

    def unwatch(self, session_id: str | None, socket: Outbox) -> None:
        """The socket closed by itself."""
        if session_id is not None and (sockets := self._sockets.get(session_id)) is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[session_id]

    async def ended(self, session_ids: Sequence[uuid.UUID]) -> None:
        """These sessions were revoked and committed: close their sockets here and in every process."""
        if not session_ids:
            return
        self._close(str(s) for s in session_ids)
        if self._broker is None:
            return
        frame = BusFrame(self._broker.node_id, None, None, SessionsEnded(sessions=list(session_ids)))
        try:
            await self._broker.publish(CHANNEL, frame)
        except BrokerUnavailable:
            # The revocation itself is committed: requests and resumes are refused by the database.
            log.warning("could not tell other processes that %d sessions ended", len(session_ids))

    def _on_frame(self, frame: BusFrame) -> None:
        if isinstance(frame.message, SessionsEnded):
            self._close(str(s) for s in frame.message.sessions)

    def _close(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            for socket in self._sockets.pop(session_id, ()):
                socket.close(CloseCode.SESSION_ENDED, "session ended; sign in again")
