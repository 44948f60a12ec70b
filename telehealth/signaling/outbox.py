"""What rooms need from a connection: a non-blocking send and a close with a reason."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from telehealth.signaling.messages import Message


class CloseCode(IntEnum):
    """WebSocket close codes this server uses (4000-4999 are application codes)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down; reconnect with the resume token
    TRY_AGAIN = 1013  # broker unavailable; reconnect shortly
    AUTH_TIMEOUT = 4000
    AUTH_FAILED = 4001
    ORIGIN_REJECTED = 4003
    ABUSE = 4008  # too many rejected messages
    SLOW_CLIENT = 4009  # the send queue overflowed
    SUPERSEDED = 4010  # the same participant connected again elsewhere
    DECLINED = 4011  # a clinician turned the participant away
    ENDED = 4012  # the visit has ended
    SESSION_ENDED = 4013  # signed out, session revoked, or the join link re-issued or revoked
    REMOVED = 4014  # a clinician removed the participant from the call


class Outbox(Protocol):
    """The sending half of a participant's connection."""

    def send(self, message: Message) -> None:
        """Queue a message; never blocks (an overflowing client is disconnected)."""
        ...

    def close(self, code: CloseCode, reason: str) -> None:
        """Send what is queued, then close; idempotent."""
        ...
