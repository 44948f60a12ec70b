"""Domain exceptions; the HTTP layer maps them to answers in one middleware."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: carries a stable machine-readable code."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class RecordNotFound(DomainError):
    """The record does not exist, or the caller may not know it exists."""

    code = "not_found"
    status = 404


class AccessDenied(DomainError):
    """Authenticated but not allowed."""

    code = "forbidden"
    status = 403


class NotAuthenticated(DomainError):
    """No valid session or token."""

    code = "unauthenticated"
    status = 401


class InvalidStateError(DomainError):
    """An illegal state-machine move."""

    code = "invalid_state"
    status = 409


class Conflict(DomainError):
    """A uniqueness rule would be broken (duplicate MRN, username)."""

    code = "conflict"
    status = 409


class Gone(DomainError):
    """Existed once but is no longer usable (expired or revoked link)."""

    code = "gone"
    status = 410


class Throttled(DomainError):
    """Too many attempts; retry later."""

    code = "throttled"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Busy(Throttled):
    """Too many anonymous requests at work right now; retry in a moment (answered at once, not queued)."""

    code = "busy"


class InvalidInput(DomainError):
    """Semantically wrong input (field-level problems in details)."""

    code = "invalid_input"
    status = 400


class UnsupportedMedia(DomainError):
    """Media that is not what it claims or not a type we accept."""

    code = "unsupported_media"
    status = 415


class TooLarge(DomainError):
    """Payload above the configured limit."""

    code = "too_large"
    status = 413
