"""An in-memory VisitGateway with rule-based credentials, for tests and test servers.

Clinician session cookie `sess:<user>` -> clinician `c-<user>` of any visit, lobby `<user>`.
Patient join token `join:<visit>:<participant>[:<role>]` -> that participant, lobby of `drwho`.
"""

from __future__ import annotations

from telehealth.signaling import Identity, Role, SignalingStateError, VisitStateName

LOBBY_OWNER = "drwho"


class MemoryGateway:
    """VisitGateway fake: records state changes, refuses everything for ended visits."""

    def __init__(self) -> None:
        self.states: dict[str, list[VisitStateName]] = {}
        self.revoked: set[str] = set()

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
        """Identity for `join:<visit>:<participant>[:<role>]`."""
        parts = join_token.split(":")
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

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """The user of `sess:<user>` watches its own lobby."""
        kind, _, user = session_token.partition(":")
        return user if kind == "sess" and user and session_token not in self.revoked else None
