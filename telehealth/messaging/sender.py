"""The seam to whatever carries a message to a patient (email here; an SMS provider plugs in the same way)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class SendFailed(Exception):
    """The message could not be handed over; the text is recorded on the visit (no patient data)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message: its recipient, a subject (email only) and plain text with at most a link and a time."""

    to: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...] = field(default=())


class MessageSender(Protocol):
    """Hands a message to its carrier; raises SendFailed when it could not."""

    channel: str

    async def send(self, message: Outgoing) -> None:
        """Deliver one message (or raise SendFailed)."""
        ...
