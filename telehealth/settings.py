"""One frozen settings object, built once from the environment with embedded defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telehealth.signaling.turn import TURN_TTL_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A checkout (or an editable install of one) has pyproject.toml beside the package; a wheel install does not.
IN_SOURCE_TREE = (PROJECT_ROOT / "pyproject.toml").is_file()


def packaged_web_dir() -> Path:
    """The web client: telehealth/web inside an installed wheel, else web/ of the source tree."""
    packaged = resources.files(__package__).joinpath("web")
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return PROJECT_ROOT / "web"


def default_var_dir() -> Path:
    """var/ of the checkout when running from source; ./var of the working directory when installed."""
    return PROJECT_ROOT / "var" if IN_SOURCE_TREE else Path.cwd() / "var"


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """Read a secret from NAME or from the file named by NAME_FILE (docker/k8s secrets)."""
    if value := env.get(name):
        return value
    if path := env.get(f"{name}_FILE"):
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def _load_or_create_key(var_dir: Path) -> str:
    """Generate the secret key once into var/ so restarts keep sessions and links valid."""
    key_file = var_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key)
    os.replace(tmp, key_file)
    return key


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; every field has a default that runs on a laptop."""

    var_dir: Path
    database_url: str
    media_dir: Path
    secret_key: str
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    redis_url: str | None = None
    public_url: str | None = None
    web_dir: Path = field(default_factory=packaged_web_dir)
    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 3600
    join_link_hours: int = 24
    secure_cookies: bool = False
    login_max_failures: int = 5
    # Argon2 threads (64 MiB each while checking) and anonymous requests (sign-in, join) at work at once.
    password_threads: int = 2
    anonymous_concurrency: int = 8
    # A request's headers (from connect or the previous answer) and a JSON body must arrive within this.
    read_timeout_seconds: int = 15
    # SIGTERM ends the process within this, whatever Redis, sockets and peers do (rolling restarts).
    shutdown_timeout_seconds: int = 10
    max_upload_bytes: int = 200 * 1024 * 1024
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_seconds: int = TURN_TTL_SECONDS
    trusted_origins: tuple[str, ...] = field(default=())
    device_copy_timeout_seconds: int = 600
    # Face measurements: worker processes of the landmark pool (each loads the model, ~160 MB),
    # whether they start loading at startup, and whether every stored still is measured at once.
    analysis_workers: int = 1
    analysis_warm: bool = True
    measure_on_capture: bool = True
    # Reverse proxies (addresses or CIDR) whose X-Forwarded-For/-Proto are believed; nobody else's are.
    trusted_proxies: tuple[str, ...] = ()
    log_format: str = "text"  # "json": one object per line, for the journal or a log shipper
    # Who may GET /metrics: these addresses or networks, or anyone sending the bearer token.
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    metrics_token: str | None = None
    # IANA zone the clinic schedules in: "tomorrow 09:00" and the day/week views mean this zone.
    clinic_tz: str = "UTC"
    # Email to patients (invitations, reminders, running late); no host = no email is sent.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: str = "starttls"  # starttls, tls (implicit, usually port 465) or none (local relay)
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "telehealth@localhost"
    reminder_before_minutes: float = 120.0
    messages_poll_seconds: float = 15.0
    # Keep in-call chat with the visit record; off by default, so chat is ephemeral.
    keep_chat: bool = False

    def __post_init__(self) -> None:
        if self.session_idle_seconds <= 0 or self.session_absolute_seconds < self.session_idle_seconds:
            raise ValueError("session timeouts must be positive and absolute >= idle")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("TURN urls need TELEHEALTH_TURN_SECRET (time-limited HMAC credentials)")
        if not 0 < self.port < 65536:
            raise ValueError("TELEHEALTH_PORT must be a TCP port (1-65535)")
        if self.log_level not in _LOG_LEVELS:
            raise ValueError(f"TELEHEALTH_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        if self.shutdown_timeout_seconds < 2:
            raise ValueError("TELEHEALTH_SHUTDOWN_TIMEOUT_SECONDS must be at least 2")
        if self.read_timeout_seconds <= 0:
            raise ValueError("TELEHEALTH_READ_TIMEOUT_SECONDS must be positive")
        if self.password_threads <= 0 or self.anonymous_concurrency <= 0:
            raise ValueError("TELEHEALTH_PASSWORD_THREADS and TELEHEALTH_ANONYMOUS_CONCURRENCY must be positive")
        if self.turn_ttl_seconds <= 0:
            raise ValueError("TELEHEALTH_TURN_TTL_SECONDS must be positive")
        if self.device_copy_timeout_seconds <= 0:
            raise ValueError("TELEHEALTH_DEVICE_COPY_TIMEOUT_SECONDS must be positive")
        if not 1 <= self.analysis_workers <= 16:
            raise ValueError("TELEHEALTH_ANALYSIS_WORKERS must be 1-16")
        if self.log_format not in ("text", "json"):
            raise ValueError("TELEHEALTH_LOG_FORMAT must be text or json")
        for proxy in (*self.trusted_proxies, *self.metrics_allow):
            ipaddress.ip_network(proxy, strict=False)  # a typo must stop the start, not trust nobody silently
        if self.smtp_tls not in ("starttls", "tls", "none"):
            raise ValueError("TELEHEALTH_SMTP_TLS must be starttls, tls or none")
        if self.reminder_before_minutes <= 0 or self.messages_poll_seconds <= 0:
            raise ValueError("TELEHEALTH_REMINDER_MINUTES and the message poll interval must be positive")
        try:
            ZoneInfo(self.clinic_tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = self.clinic_tz
            raise ValueError(f"TELEHEALTH_CLINIC_TZ must be an IANA zone such as Europe/London, not {zone!r}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from TELEHEALTH_* variables; secrets may come from *_FILE."""
        env = os.environ if env is None else env
        var_dir = Path(env.get("TELEHEALTH_VAR_DIR", str(default_var_dir()))).resolve()
        database_url = _secret(env, "TELEHEALTH_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{var_dir / 'telehealth.sqlite3'}"
        )
        secret_key = _secret(env, "TELEHEALTH_SECRET_KEY") or _load_or_create_key(var_dir)

        def urls(name: str) -> tuple[str, ...]:
            return tuple(u.strip() for u in env.get(name, "").split(",") if u.strip())

        return cls(
            var_dir=var_dir,
            database_url=database_url,
            media_dir=Path(env.get("TELEHEALTH_MEDIA_DIR", str(var_dir / "media"))).resolve(),
            secret_key=secret_key,
            host=env.get("TELEHEALTH_HOST") or "127.0.0.1",
            port=_int(env, "TELEHEALTH_PORT", 8080),
            log_level=(env.get("TELEHEALTH_LOG_LEVEL") or "INFO").strip().upper(),
            redis_url=_secret(env, "TELEHEALTH_REDIS_URL"),
            public_url=env.get("TELEHEALTH_PUBLIC_URL") or None,
            secure_cookies=_bool(env.get("TELEHEALTH_SECURE_COOKIES"), False),
            stun_urls=urls("TELEHEALTH_STUN_URLS"),
            turn_urls=urls("TELEHEALTH_TURN_URLS"),
            turn_secret=_secret(env, "TELEHEALTH_TURN_SECRET"),
            turn_ttl_seconds=_int(env, "TELEHEALTH_TURN_TTL_SECONDS", TURN_TTL_SECONDS),
            trusted_origins=urls("TELEHEALTH_TRUSTED_ORIGINS"),
            device_copy_timeout_seconds=_int(env, "TELEHEALTH_DEVICE_COPY_TIMEOUT_SECONDS", 600),
            analysis_workers=_int(env, "TELEHEALTH_ANALYSIS_WORKERS", 1),
            analysis_warm=_bool(env.get("TELEHEALTH_ANALYSIS_WARM"), True),
            measure_on_capture=_bool(env.get("TELEHEALTH_MEASURE_ON_CAPTURE"), True),
            trusted_proxies=urls("TELEHEALTH_TRUSTED_PROXIES"),
            log_format=env.get("TELEHEALTH_LOG_FORMAT", "text").strip().lower() or "text",
            metrics_allow=urls("TELEHEALTH_METRICS_ALLOW") or ("127.0.0.1/32", "::1/128"),
            metrics_token=_secret(env, "TELEHEALTH_METRICS_TOKEN"),
            password_threads=_int(env, "TELEHEALTH_PASSWORD_THREADS", 2),
            anonymous_concurrency=_int(env, "TELEHEALTH_ANONYMOUS_CONCURRENCY", 8),
            read_timeout_seconds=_int(env, "TELEHEALTH_READ_TIMEOUT_SECONDS", 15),
            shutdown_timeout_seconds=_int(env, "TELEHEALTH_SHUTDOWN_TIMEOUT_SECONDS", 10),
            clinic_tz=(env.get("TELEHEALTH_CLINIC_TZ") or "UTC").strip(),
            smtp_host=env.get("TELEHEALTH_SMTP_HOST") or None,
            smtp_port=_int(env, "TELEHEALTH_SMTP_PORT", 587),
            smtp_tls=(env.get("TELEHEALTH_SMTP_TLS") or "starttls").strip().lower(),
            smtp_user=env.get("TELEHEALTH_SMTP_USER") or None,
            smtp_password=_secret(env, "TELEHEALTH_SMTP_PASSWORD"),
            mail_from=env.get("TELEHEALTH_MAIL_FROM") or "telehealth@localhost",
            reminder_before_minutes=_int(env, "TELEHEALTH_REMINDER_MINUTES", 120),
            keep_chat=_bool(env.get("TELEHEALTH_KEEP_CHAT"), False),
        )
