"""Wire messages: one frozen pydantic model per message type, registered by `type`.

Adding a message type is one class here (or in a capture module) decorated with `@register`;
relayed types (`relay=True`) need no handler: the room forwards them between admitted
participants, stamping `peer` with the sender.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from enum import Flag, StrEnum, auto
from typing import Annotated, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

PROTOCOL_VERSION = 1

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=200)]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
CHAT_MAX_BYTES = 4096


def new_id() -> str:
    """A fresh message id for server-originated messages."""
    return secrets.token_urlsafe(9)


class Direction(Flag):
    """Who may send a message type."""

    CLIENT = auto()  # browser -> server
    SERVER = auto()  # server -> browser
    BUS = auto()  # server process -> server process only


class Status(StrEnum):
    """Where a participant stands in the visit."""

    WAITING = "waiting"
    ADMITTED = "admitted"
    LEFT = "left"


class ErrorCode(StrEnum):
    """Stable error codes carried by `error` frames."""

    BAD_JSON = "bad_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    UNSUPPORTED_VERSION = "unsupported_version"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    NOT_AUTHENTICATED = "not_authenticated"
    ALREADY_AUTHENTICATED = "already_authenticated"
    AUTH_FAILED = "auth_failed"
    RESUME_FAILED = "resume_failed"
    FORBIDDEN = "forbidden"
    UNKNOWN_PEER = "unknown_peer"
    PEER_REQUIRED = "peer_required"
    INVALID_STATE = "invalid_state"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class Value(BaseModel):
    """Base of nested values: frozen, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Value):
    """Envelope shared by every message: `type`, `v` (protocol version) and `id`."""

    TYPE: ClassVar[str]
    DIRECTION: ClassVar[Direction]
    RELAY: ClassVar[bool] = False
    # Roles allowed to send a relayed type (None: any admitted participant).
    SENDERS: ClassVar[frozenset[str] | None] = None
    # Roles a relayed type may be addressed to (None: any admitted participant).
    TARGETS: ClassVar[frozenset[str] | None] = None

    type: str
    v: Literal[1] = 1
    id: Id = Field(default_factory=new_id)


REGISTRY: dict[str, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def register(direction: Direction, *, relay: bool = False) -> Callable[[M], M]:
    """Class decorator adding a message type to the registry (the one place to add types)."""

    def add(cls: M) -> M:
        name = cls.__pydantic_fields__["type"].default
        if not isinstance(name, str) or name in REGISTRY:
            raise TypeError(f"{cls.__name__}: type must be a unique string literal")
        cls.TYPE, cls.DIRECTION, cls.RELAY = name, direction, relay
        REGISTRY[name] = cls
        return cls

    return add


BOTH = Direction.CLIENT | Direction.SERVER


class IceServer(Value):
    """One RTCIceServer entry."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


class ParticipantInfo(Value):
    """What other participants see of someone in the visit."""

    participant_id: Id
    role: str
    display_name: str
    status: Status
    # False while the participant's socket is gone but its slot is kept for resume.
    connected: bool = True


class Member(ParticipantInfo):
    """A participant as known between server processes (presence value and bus announce)."""

    epoch: int
    node: str
    lobby_id: Id | None = None
    since: float = 0.0

    def public(self) -> ParticipantInfo:
        """The participant as shown to browsers."""
        return ParticipantInfo(
            participant_id=self.participant_id,
            role=self.role,
            display_name=self.display_name,
            status=self.status,
            connected=self.connected,
        )


class IceCandidateInit(Value):
    """RTCIceCandidateInit exactly as the browser's `candidate.toJSON()` produces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidate: Annotated[str, StringConstraints(max_length=2048)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class LobbyEntry(Value):
    """A patient waiting for a clinician, as shown on the dashboard."""

    visit_id: Id
    participant_id: Id
    display_name: str
    since: float


# --- authentication -------------------------------------------------------------------------


@register(Direction.CLIENT)
class Auth(Message):
    """First message: `session: true` (clinician, uses the th_session cookie) or a join `token`."""

    type: Literal["auth"] = "auth"
    session: bool = False
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        if self.session == (self.token is not None):
            raise ValueError("give exactly one of session=true or token")
        return self


@register(Direction.CLIENT)
class Resume(Message):
    """First message after a dropped connection: restores the slot within the grace period."""

    type: Literal["resume"] = "resume"
    resume_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


@register(Direction.SERVER)
class Join(Message):
    """Sent once authenticated: who you are, who is here, and how to reach them."""

    type: Literal["join"] = "join"
    visit_id: Id
    participant_id: Id
    role: str
    display_name: str
    status: Status
    resume_token: str
    resumed: bool = False
    participants: tuple[ParticipantInfo, ...] = ()
    ice_servers: tuple[IceServer, ...] = ()


# --- waiting room ---------------------------------------------------------------------------


@register(Direction.SERVER)
class Waiting(Message):
    """You are in the waiting room until a clinician admits you."""

    type: Literal["waiting"] = "waiting"
    visit_id: Id


@register(BOTH | Direction.BUS)
class Admit(Message):
    """Client: admit `participant_id` (clinicians only). Server: you have been admitted."""

    type: Literal["admit"] = "admit"
    participant_id: Id


@register(BOTH | Direction.BUS)
class Decline(Message):
    """Client: turn `participant_id` away (clinicians only). Server: you were turned away."""

    type: Literal["decline"] = "decline"
    participant_id: Id
    reason: Text | None = None


# --- WebRTC negotiation (relayed; `peer` = target when sent, sender when received) ---------


@register(BOTH | Direction.BUS, relay=True)
class Offer(Message):
    """An SDP offer."""

    type: Literal["offer"] = "offer"
    peer: Id | None = None
    sdp: Sdp


@register(BOTH | Direction.BUS, relay=True)
class Answer(Message):
    """An SDP answer."""

    type: Literal["answer"] = "answer"
    peer: Id | None = None
    sdp: Sdp


@register(BOTH | Direction.BUS, relay=True)
class IceCandidate(Message):
    """A trickled ICE candidate; `candidate: null` ends the candidates."""

    type: Literal["ice_candidate"] = "ice_candidate"
    peer: Id | None = None
    candidate: IceCandidateInit | None


@register(BOTH | Direction.BUS, relay=True)
class IceRestart(Message):
    """Received: make an ICE-restart offer to `peer`. Sent: ask `peer` to restart ICE."""

    type: Literal["ice_restart"] = "ice_restart"
    peer: Id | None = None
    reason: Text | None = None


@register(BOTH | Direction.BUS)
class Hangup(Message):
    """Client: leave (a clinician's hang-up ends the visit). Server: the visit has ended."""

    type: Literal["hangup"] = "hangup"
    peer: Id | None = None
    reason: Text | None = None


@register(BOTH | Direction.BUS)
class Remove(Message):
    """Client: take `participant_id` out of the call (clinicians only). Server: you were removed."""

    type: Literal["remove"] = "remove"
    participant_id: Id


@register(BOTH | Direction.BUS)
class Chat(Message):
    """Client: a chat line (`text` only). Server: a line from `sender`, stamped by the server."""

    type: Literal["chat"] = "chat"
    text: Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
    sender: Id | None = None
    display_name: str | None = None
    role: str | None = None
    at: float | None = None

    @field_validator("text")
    @classmethod
    def _at_most_4_kib(cls, text: str) -> str:
        # Bytes, not characters: a line of emoji is four times longer on the wire than it looks.
        if len(text.encode("utf-8")) > CHAT_MAX_BYTES:
            raise ValueError(f"a chat message is at most {CHAT_MAX_BYTES} bytes")
        return text


@register(BOTH)
class IceServers(Message):
    """Client: request fresh TURN credentials. Server: the current ICE servers."""

    type: Literal["ice_servers"] = "ice_servers"
    servers: tuple[IceServer, ...] = ()


@register(Direction.SERVER)
class Presence(Message):
    """Someone joined, changed status, dropped (connected=false) or left."""

    type: Literal["presence"] = "presence"
    participant: ParticipantInfo


@register(Direction.SERVER)
class Error(Message):
    """A rejected message; `ref` is the id of the message it answers, when known."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: Text
    ref: Id | None = None


# --- clinician dashboard lobby --------------------------------------------------------------


@register(Direction.SERVER)
class Lobby(Message):
    """Snapshot of the patients waiting in this lobby; replaces what the client knew."""

    type: Literal["lobby"] = "lobby"
    lobby_id: Id
    waiting: tuple[LobbyEntry, ...] = ()


@register(Direction.SERVER | Direction.BUS)
class LobbyUpdate(Message):
    """One patient started waiting (`status: waiting`) or stopped (`status: gone`)."""

    type: Literal["lobby_update"] = "lobby_update"
    entry: LobbyEntry
    status: Literal["waiting", "gone"]


# --- between server processes ---------------------------------------------------------------


@register(Direction.BUS)
class Announce(Message):
    """A process tells the others about one of its participants (join, change, drop, leave)."""

    type: Literal["announce"] = "announce"
    member: Member
