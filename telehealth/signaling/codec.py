"""Text <-> typed message conversion for browsers and for the inter-process bus."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from telehealth.signaling.messages import (
    ID_PATTERN,
    PROTOCOL_VERSION,
    REGISTRY,
    Direction,
    ErrorCode,
    Message,
)


class ProtocolError(Exception):
    """A message was rejected; carries the stable error code for the error frame."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None, *, stale: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        # True when a peer's state change (left, back in the waiting room, reloaded) made an
        # honest message invalid: answered with an error frame but never counted as abuse.
        self.stale = stale


_ID = re.compile(ID_PATTERN)


def _ref(data: dict[str, Any]) -> str | None:
    # Echoed in the error frame, whose `ref` is validated like any id: a ref that would not
    # validate there is dropped here, or building the error frame would raise instead.
    ref = data.get("id")
    return ref if isinstance(ref, str) and _ID.fullmatch(ref) else None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"[:200]


def decode_value(data: Any, allowed: Direction) -> Message:
    """Validate an already-parsed JSON object as a message a sender with `allowed` may send."""
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "a message is a JSON object")
    ref = _ref(data)
    kind = data.get("type")
    cls = REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None or not (cls.DIRECTION & allowed):
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind!r}"[:200], ref)
    if data.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION, f"v must be {PROTOCOL_VERSION}", ref)
    if ref is None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "id: 1..64 characters of A-Z a-z 0-9 _ . : - required")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _first_error(exc), ref) from None


def decode_client(raw: str, max_bytes: int) -> Message:
    """Parse a browser's text frame; raise ProtocolError with a stable code if unacceptable."""
    # len(str) <= bytes, so only long strings pay for the encode.
    if len(raw) > max_bytes or (len(raw) * 4 > max_bytes and len(raw.encode()) > max_bytes):
        raise ProtocolError(ErrorCode.TOO_LARGE, f"messages are limited to {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON") from None
    return decode_value(data, Direction.CLIENT)


def encode(message: Message) -> str:
    """Serialize a message for a browser or the bus."""
    return message.model_dump_json()


@dataclass(frozen=True, slots=True)
class BusFrame:
    """A message travelling between server processes, with its routing."""

    node: str  # process that published it; processes ignore their own room frames
    sender: str | None  # participant id that caused it
    to: str | None  # target participant id, None for everyone in the channel
    message: Message


def encode_frame(frame: BusFrame) -> str:
    """Serialize a bus frame (the message part goes through the same codec)."""
    head = json.dumps({"node": frame.node, "sender": frame.sender, "to": frame.to})
    return f'{head[:-1]},"message":{encode(frame.message)}}}'


def decode_frame(raw: str | bytes) -> BusFrame:
    """Parse a bus frame; raise ProtocolError if another process sent something unexpected."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "bus frame is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "bus frame is not an object")
    node, sender, to = data.get("node"), data.get("sender"), data.get("to")
    if not isinstance(node, str) or not all(v is None or isinstance(v, str) for v in (sender, to)):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "bus frame routing is malformed")
    message = decode_value(data.get("message"), Direction.BUS)
    return BusFrame(node=node, sender=sender, to=to, message=message)
