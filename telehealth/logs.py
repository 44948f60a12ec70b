"""Logging: plain text on a laptop, one JSON object per line in production, never a secret or identifier.

Every record carries the request id and, where there is one, the visit id (context variables set by
`telehealth.http.requestlog`, inherited by tasks started while handling the request). A redaction
filter on the handler masks join tokens in URLs, bearer tokens, passwords, dates of birth and name
fields before any formatter sees the record, so third-party loggers (aiohttp, aiortc) are covered too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Final

LOG_FORMATS: Final = ("text", "json")
REDACTED: Final = "[redacted]"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
visit_id_var: ContextVar[str | None] = ContextVar("visit_id", default=None)

_SENSITIVE_KEYS = (
    r"password|passwd|new_password|secret|token|csrf_token|session_token|authorization|cookie|th_session|"
    r"dob|birth_?date|date_of_birth|given_name|family_name|full_name|patient_name|display_name|name"
)
# Loggers that print SQL parameters (names, dates of birth, token hashes) at INFO or DEBUG: only their
# warnings pass, whatever level the root logger is set to.
_QUERY_LOGGERS: Final = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg")
_PATTERNS: Final = (
    # Join links: /join/<token> and /api/join/<token>/session carry the patient's credential.
    (re.compile(r"(/join/)[^/\s?#\"']+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\bdatetime\.date\(\d{4},\s*\d{1,2},\s*\d{1,2}\)"), REDACTED),
    # key=value, key: value, "key": "value" (JSON or repr of a dict).
    (
        re.compile(
            rf"(?i)([\"']?\b(?:{_SENSITIVE_KEYS})\b[\"']?\s*[:=]\s*)(?!\[redacted\])(\"[^\"]*\"|'[^']*'|[^\s,;&}}\]]+)"
        ),
        rf"\1{REDACTED}",
    ),
    # A bare calendar date is most often a date of birth; timestamps (followed by T or a time) stay.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b(?![T ]\d|[\d:])"), REDACTED),
)


def redact(text: str) -> str:
    """Mask tokens, passwords, dates of birth and name fields in a log text."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrite each record's message (and exception text) with secrets and identifiers masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; drop query loggers' chatter, which carries row values."""
        if record.levelno < logging.WARNING and record.name.startswith(_QUERY_LOGGERS):
            return False
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ContextFilter(logging.Filter):
    """Stamp each record with the current request id and visit id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add request_id and visit_id attributes; never drops a record."""
        record.request_id = request_id_var.get()
        record.visit_id = visit_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, visit_id, http, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialize the record (already redacted by the filter)."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "visit_id"):
            if value := getattr(record, key, None):
                entry[key] = value
        if http := getattr(record, "http", None):
            entry["http"] = http
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The laptop format, with the request id appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Format as text; tag with [req visit] ids when known."""
        text = super().format(record)
        tags = " ".join(f"{k}={v}" for k in ("request_id", "visit_id") if (v := getattr(record, k, None)))
        return f"{text} [{tags}]" if tags else text


def make_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler with context, redaction and the chosen format ("text" or "json")."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def configure_logging(fmt: str, level: str) -> None:
    """Replace the root logger's handlers with one redacting handler in the chosen format."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt))
    root.setLevel(level.upper())
    logging.captureWarnings(True)


@contextmanager
def visit_context(visit_id: object) -> Iterator[None]:
    """Tag log records with a visit id inside this block (sockets, background work for one visit)."""
    token = visit_id_var.set(str(visit_id))
    try:
        yield
    finally:
        visit_id_var.reset(token)
