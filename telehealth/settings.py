"""One frozen settings object, built once from the environment with embedded defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from telehealth.signaling.turn import TURN_TTL_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    web_dir: Path = PROJECT_ROOT / "web"
    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 3600
    join_link_hours: int = 24
    secure_cookies: bool = False
    login_max_failures: int = 5
    max_upload_bytes: int = 200 * 1024 * 1024
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_seconds: int = TURN_TTL_SECONDS
    trusted_origins: tuple[str, ...] = field(default=())
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
        if self.turn_ttl_seconds <= 0:
            raise ValueError("TELEHEALTH_TURN_TTL_SECONDS must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from TELEHEALTH_* variables; secrets may come from *_FILE."""
        env = os.environ if env is None else env
        var_dir = Path(env.get("TELEHEALTH_VAR_DIR", str(PROJECT_ROOT / "var"))).resolve()
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
            keep_chat=_bool(env.get("TELEHEALTH_KEEP_CHAT"), False),
        )
