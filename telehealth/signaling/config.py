"""Tunables of the signaling sub-package, built once by the application's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from telehealth.signaling.turn import TURN_TTL_SECONDS


@dataclass(frozen=True, slots=True)
class SignalingSettings:
    """Frozen signaling settings; defaults are safe for local development."""

    # HMAC key for resume tokens; every process of a deployment must share it.
    resume_secret: bytes
    redis_url: str | None = None
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    # coturn `static-auth-secret` (use-auth-secret); TURN never gets a static password.
    turn_secret: str | None = None
    turn_ttl: int = TURN_TTL_SECONDS
    # Extra origins allowed for clinician sockets besides the request's own host.
    allowed_origins: tuple[str, ...] = ()
    auth_timeout: float = 10.0
    resume_grace: float = 30.0
    # A page that closed its socket on purpose (tab closed, reload, back: close code 1001) keeps
    # its slot only this long, so the others see it gone within seconds, not after resume_grace.
    away_grace: float = 3.0
    presence_ttl: float = 15.0
    heartbeat: float = 20.0
    max_message_bytes: int = 64 * 1024
    # Messages per second and burst per connection; a renegotiation is ~30 messages.
    rate_per_second: float = 20.0
    rate_burst: int = 60
    # Rejected messages tolerated (refilling one per 10 s) before the socket is closed.
    max_strikes: int = 10
    send_queue_size: int = 128
    # Redis connections per process: the subscriber, the publisher, presence upkeep and reads share
    # these; callers wait for a free one (up to a few seconds) instead of opening more.
    redis_pool_size: int = 8
    # Chat lines per second and burst per participant (on top of the message rate above).
    chat_per_second: float = 1.0
    chat_burst: int = 5
    # Keep chat with the visit record (TELEHEALTH_KEEP_CHAT); otherwise it is relayed and forgotten.
    keep_chat: bool = False
    node_id: str | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.resume_secret) < 16:
            raise ValueError("resume_secret must be at least 16 bytes")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_urls need turn_secret: TURN uses time-limited HMAC credentials")
        if min(self.auth_timeout, self.resume_grace, self.away_grace, self.presence_ttl) <= 0:
            raise ValueError("timeouts must be positive")
        if self.send_queue_size < 1 or self.rate_burst < 1 or self.max_strikes < 1 or self.redis_pool_size < 3:
            raise ValueError("queue size, burst and strikes must be positive")
