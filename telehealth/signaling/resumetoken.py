"""Resume tokens: HMAC-signed, so any process sharing the secret can verify them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from telehealth.signaling.identity import Identity, Role


@dataclass(frozen=True, slots=True)
class ResumeClaim:
    """What a verified resume token says: the identity and the slot epoch it was issued for."""

    identity: Identity
    epoch: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())


def issue(secret: bytes, identity: Identity, epoch: int, lifetime: float, now: float | None = None) -> str:
    """Sign a token bound to one slot epoch; a newer epoch makes older tokens useless."""
    expires = (time.time() if now is None else now) + lifetime
    claims = {
        "p": identity.participant_id,
        "r": identity.role.value,
        "n": identity.display_name,
        "v": identity.visit_id,
        "u": identity.user_id,
        "l": identity.lobby_id,
        "s": identity.session_id,
        "e": epoch,
        "x": int(expires),
    }
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(secret: bytes, token: str, now: float | None = None) -> ResumeClaim | None:
    """The claim of a genuine, unexpired token, else None."""
    body, _, mac = token.partition(".")
    if not mac or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        claims = json.loads(_unb64(body))
        if claims["x"] < (time.time() if now is None else now):
            return None
        identity = Identity(
            participant_id=claims["p"],
            role=Role(claims["r"]),
            display_name=claims["n"],
            visit_id=claims["v"],
            user_id=claims["u"],
            lobby_id=claims["l"],
            session_id=claims.get("s"),
        )
        return ResumeClaim(identity=identity, epoch=int(claims["e"]))
    except (ValueError, KeyError, TypeError):
        return None
