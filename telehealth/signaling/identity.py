"""Who a connection is: the identity the gateway vouches for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class Role(StrEnum):
    """A participant's role in a visit; the rank decides who makes WebRTC offers."""

    CLINICIAN = "clinician"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    FAMILY = "family"
    PATIENT = "patient"

    @property
    def rank(self) -> int:
        """Lower rank offers first; clinicians drive (ICE restarts, admission)."""
        return list(Role).index(self)

    @property
    def admitted_on_join(self) -> bool:
        """Staff skip the waiting room; everyone else waits to be admitted."""
        return self in (Role.CLINICIAN, Role.INTERPRETER)

    @property
    def may_admit(self) -> bool:
        """Only clinicians admit, decline and end a visit."""
        return self is Role.CLINICIAN


@dataclass(frozen=True, slots=True)
class Identity:
    """A participant the gateway has authenticated for one visit."""

    participant_id: str
    role: Role
    display_name: str
    visit_id: str
    user_id: str | None = None
    # Whose dashboard lobby shows this participant while waiting (clinician or clinic id).
    lobby_id: str | None = None
    # The server-side session behind this socket: when it ends, the socket closes and resume is refused.
    session_id: str | None = None
    # The gateway vouches that this participant was already admitted to the call in progress
    # (e.g. the patient reloaded the page): no second admission.
    rejoins_call: bool = False
    # Someone let in by a link or a colleague's own login waits to be admitted whatever the role.
    waits: bool = False

    def __post_init__(self) -> None:
        # Ids end up in Redis keys and channel names, so they are validated at the seam.
        for name in ("participant_id", "visit_id"):
            if not _ID.match(getattr(self, name)):
                raise ValueError(f"{name} must match {_ID.pattern}")
        if self.lobby_id is not None and not _ID.match(self.lobby_id):
            raise ValueError(f"lobby_id must match {_ID.pattern}")
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", Role(self.role))
        if not 0 < len(self.display_name) <= 120:
            raise ValueError("display_name must be 1..120 characters")


def skips_waiting(identity: Identity) -> bool:
    """Whether this participant is admitted as soon as it joins."""
    # A patient coming back to a call in progress was admitted already (reload, second tab).
    return identity.rejoins_call or (identity.role.admitted_on_join and not identity.waits)


def valid_id(value: str) -> bool:
    """True if value may be used as a visit, participant or lobby id."""
    return bool(_ID.match(value))
