"""Every Prometheus metric of the service, and the small functions that record events.

Labels are bounded by construction: routes are the router's templates (never a concrete id), kinds
and outcomes are mapped onto fixed sets, and nothing is labelled per visit, user or patient. The
metrics live in one registry of their own (process-wide, like the events they count).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY: Final = CollectorRegistry()
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

_KINDS: Final = frozenset({"still", "clip", "thumbnail"})
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "telehealth_http_requests", "HTTP requests by route template and status class", ["method", "route", "status"],
    registry=REGISTRY,
)  # fmt: skip
HTTP_SECONDS = Histogram(
    "telehealth_http_request_duration_seconds", "HTTP request time by route template", ["route"],
    buckets=(*_FAST, 2.5, 5.0), registry=REGISTRY,
)  # fmt: skip
LOGINS = Counter(
    "telehealth_logins", "Staff sign-in answers: ok, failed (wrong credentials) or throttled (locked or too many)",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
LOCKOUTS = Counter(
    "telehealth_account_lockouts", "Sign-in attempts refused because the account is locked", registry=REGISTRY
)

VISITS = Gauge("telehealth_visits", "Visits by state (whole database, read at scrape)", ["state"], registry=REGISTRY)
PARTICIPANTS = Gauge("telehealth_participants_connected", "Visit participants attached here", registry=REGISTRY)
WEBSOCKETS = Gauge("telehealth_websockets_open", "Signaling WebSockets open in this process", registry=REGISTRY)
RELAY_SECONDS = Histogram(
    "telehealth_signaling_relay_seconds", "Signaling message relay time inside the server", buckets=_FAST,
    registry=REGISTRY,
)  # fmt: skip
REDIS_UP = Gauge("telehealth_redis_connected", "1 when the Redis broker is connected (absent without Redis)",
                 registry=REGISTRY)  # fmt: skip
DB_POOL = Gauge("telehealth_db_pool_connections", "Database pool connections", ["state"], registry=REGISTRY)

CAPTURE_PEERS = Gauge("telehealth_capture_peers", "Server capture peers open in this process", registry=REGISTRY)
CAPTURES = Counter("telehealth_captures", "Server-side captures", ["kind", "outcome"], registry=REGISTRY)
CAPTURE_BYTES = Counter("telehealth_capture_bytes", "Bytes stored by server captures", ["kind"], registry=REGISTRY)
CAPTURE_SECONDS = Histogram(
    "telehealth_capture_duration_seconds", "Click to stored file", ["kind"], buckets=_SLOW, registry=REGISTRY
)
UPLOADS = Counter("telehealth_uploads", "Device uploads", ["kind", "outcome"], registry=REGISTRY)
UPLOAD_BYTES = Counter("telehealth_upload_bytes", "Bytes received by device uploads", ["kind"], registry=REGISTRY)
UPLOAD_SECONDS = Histogram(
    "telehealth_upload_duration_seconds", "Upload request time", ["kind"], buckets=_SLOW, registry=REGISTRY
)
MEASUREMENT_QUEUE = Gauge("telehealth_measurement_queue", "Captures waiting for measurement", registry=REGISTRY)
MEASUREMENT_SECONDS = Histogram(
    "telehealth_measurement_duration_seconds", "Time to measure one capture", buckets=_SLOW, registry=REGISTRY
)
MEDIA_FILES = Gauge("telehealth_media_files", "Media files recorded (read at scrape)", registry=REGISTRY)
MEDIA_BYTES = Gauge("telehealth_media_bytes", "Bytes of media recorded (read at scrape)", registry=REGISTRY)


def _kind(kind: str) -> str:
    return kind if kind in _KINDS else "other"


def _outcome(ok: bool) -> str:
    return "ok" if ok else "failed"


def status_class(status: int) -> str:
    """200 -> "2xx": five values instead of every status code."""
    return f"{status // 100}xx"


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request answered (route is the router's template, e.g. /api/visits/{visit_id})."""
    HTTP_REQUESTS.labels(method, route, status_class(status)).inc()
    HTTP_SECONDS.labels(route).observe(seconds)


def record_login(status: int) -> None:
    """One answer to POST /api/auth/login, classified by its status."""
    LOGINS.labels("ok" if status < 400 else "throttled" if status == 429 else "failed").inc()


def record_lockout() -> None:
    """A sign-in was refused because the account is locked."""
    LOCKOUTS.inc()


def record_capture(kind: str, *, ok: bool, nbytes: int = 0, seconds: float | None = None) -> None:
    """A server capture finished (still, clip or thumbnail)."""
    CAPTURES.labels(_kind(kind), _outcome(ok)).inc()
    if ok:
        CAPTURE_BYTES.labels(_kind(kind)).inc(nbytes)
    if seconds is not None:
        CAPTURE_SECONDS.labels(_kind(kind)).observe(seconds)


def record_upload(kind: str, *, ok: bool, nbytes: int = 0, seconds: float | None = None) -> None:
    """A device upload finished or was refused."""
    UPLOADS.labels(_kind(kind), _outcome(ok)).inc()
    if ok:
        UPLOAD_BYTES.labels(_kind(kind)).inc(nbytes)
    if seconds is not None:
        UPLOAD_SECONDS.labels(_kind(kind)).observe(seconds)


def set_capture_peers(count: int) -> None:
    """The number of capture peers open in this process."""
    CAPTURE_PEERS.set(count)


def set_measurement_queue(depth: int) -> None:
    """Captures waiting for measurement."""
    MEASUREMENT_QUEUE.set(depth)


def observe_measurement(seconds: float) -> None:
    """One capture measured."""
    MEASUREMENT_SECONDS.observe(seconds)


def observe_relay(seconds: float) -> None:
    """One signaling message relayed (from receipt to hand-off to the receiver's writer)."""
    RELAY_SECONDS.observe(seconds)


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
