"""An in-memory VisitGateway with rule-based credentials, for tests and test servers.

Clinician session cookie `sess:<user>` -> clinician `c-<user>` of any visit, lobby `<user>`.
Patient join token `join:<visit>:<participant>[:<role>]` -> that participant, lobby of `drwho`.
Invite token `guest:<visit>:<participant>:<role>` -> an invited participant who waits to be admitted.
"""

from __future__ import annotations

from telehealth.signaling import Identity, Role, SignalingStateError, VisitStateName

LOBBY_OWNER = "drwho"


class MemoryGateway:
    """VisitGateway fake: records state changes, refuses everything for ended visits."""

    def __init__(self) -> None:
        self.states: dict[str, list[VisitStateName]] = {}
        self.revoked: set[str] = set()
        self.admitted: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str]] = []
        self.chat: list[tuple[str, str]] = []

    def _ended(self, visit_id: str) -> bool:
        return self.states.get(visit_id, [])[-1:] == ["ended"]

    async def authenticate_clinician(self, session_token: str, visit_id: str) -> Identity | None:
        """Clinician identity for `sess:<user>`."""
        kind, _, user = session_token.partition(":")
        if kind != "sess" or not user or session_token in self.revoked or self._ended(visit_id):
            return None
        try:
            return Identity(f"c-{user}", Role.CLINICIAN, f"Dr {user}", visit_id, user, user)
        except ValueError:
            return None

    async def authenticate_patient(self, join_token: str) -> Identity | None:
        """Identity for `join:<visit>:<participant>[:<role>]` or `guest:<visit>:<participant>:<role>`."""
        parts = join_token.split(":")
        if len(parts) == 4 and parts[0] == "guest" and join_token not in self.revoked and parts[3] in set(Role):
            if self._ended(parts[1]):
                return None
            try:
                return Identity(parts[2], Role(parts[3]), parts[2].title(), parts[1], None, LOBBY_OWNER, waits=True)
            except ValueError:
                return None
        if len(parts) not in (3, 4) or parts[0] != "join" or join_token in self.revoked:
            return None
        role = Role(parts[3]) if len(parts) == 4 and parts[3] in set(Role) else Role.PATIENT
        if self._ended(parts[1]):
            return None
        # As the records gateway: a patient of a call in progress was admitted already.
        rejoins = role is Role.PATIENT and self.states.get(parts[1], [])[-1:] == ["in_call"]
        try:
            return Identity(parts[2], role, parts[2].title(), parts[1], None, LOBBY_OWNER, rejoins_call=rejoins)
        except ValueError:
            return None

    async def set_visit_state(self, visit_id: str, state: VisitStateName) -> None:
        """Record the state; leaving `ended` is illegal."""
        history = self.states.setdefault(visit_id, [])
        if history[-1:] == ["ended"] and state != "ended":
            raise SignalingStateError(f"visit {visit_id} has ended")
        if history[-1:] != [state]:
            history.append(state)

    async def participant_admitted(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Remember who was admitted."""
        self.admitted.append((visit_id, participant_id))

    async def participant_removed(self, visit_id: str, participant_id: str, by: Identity) -> None:
        """Remember the removal; the removed participant's join token stops working."""
        self.removed.append((visit_id, participant_id))
        self.revoked.update(t for t in self.tokens_of(visit_id, participant_id))

    async def keep_chat(self, sender: Identity, text: str) -> None:
        """Remember the kept line."""
        self.chat.append((sender.participant_id, text))

    def tokens_of(self, visit_id: str, participant_id: str) -> list[str]:
        """The join tokens that name this participant (with or without a role)."""
        roles = [str(r) for r in Role]
        return (
            [f"join:{visit_id}:{participant_id}"]
            + [f"join:{visit_id}:{participant_id}:{r}" for r in roles]
            + [f"guest:{visit_id}:{participant_id}:{r}" for r in roles]
        )

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """The user of `sess:<user>` watches its own lobby."""
        kind, _, user = session_token.partition(":")
        return user if kind == "sess" and user and session_token not in self.revoked else None
