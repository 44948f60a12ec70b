"""The seam to the rest of the application: authentication and visit state persistence."""

from __future__ import annotations

from typing import Literal, Protocol

from telehealth.signaling.identity import Identity

VisitStateName = Literal["waiting", "in_call", "ended"]


class SignalingStateError(Exception):
    """The visit cannot move to the requested state (e.g. it has already ended)."""


class VisitGateway(Protocol):
    """What signaling needs from accounts, sessions, join tokens and the visit records."""

    async def authenticate_clinician(self, session_token: str, visit_id: str) -> Identity | None:
        """Identity of the clinician behind session cookie `th_session` for this visit, or None."""
        ...

    async def authenticate_patient(self, join_token: str) -> Identity | None:
        """Identity (carrying its visit id) for a patient join token, or None to refuse."""
        ...

    async def set_visit_state(self, visit_id: str, state: VisitStateName) -> None:
        """Persist the visit state; idempotent for the same state; SignalingStateError if illegal."""
        ...

    async def participant_admitted(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Record (and audit) that `by` admitted the participant."""
        ...

    async def participant_removed(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Record (and audit) the removal; an invited participant's link stops working."""
        ...

    async def keep_chat(self, sender: Identity, text: str) -> None:
        """Store a chat line with the visit record (only called when keeping chat is enabled)."""
        ...

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """The lobby id (clinician user id or clinic id) this session may watch, or None."""
        ...
