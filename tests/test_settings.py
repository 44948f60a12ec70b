from pathlib import Path

import pytest

from telehealth.app import signaling_settings
from telehealth.settings import Settings
from telehealth.signaling import SignalingSettings


def test_defaults_run_without_any_variable(tmp_path: Path) -> None:
    s = Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'telehealth.sqlite3'}"
    assert s.media_dir == tmp_path / "media"
    assert s.redis_url is None


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path)}).secret_key
    second = Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_secrets_from_file_variants(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgresql+asyncpg://u@h/db\n")
    (tmp_path / "key").write_text("k" * 40)
    s = Settings.from_env(
        {
            "TELEHEALTH_VAR_DIR": str(tmp_path),
            "TELEHEALTH_DATABASE_URL_FILE": str(tmp_path / "db"),
            "TELEHEALTH_SECRET_KEY_FILE": str(tmp_path / "key"),
        }
    )
    assert s.database_url == "postgresql+asyncpg://u@h/db"
    assert s.secret_key == "k" * 40


def test_turn_without_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TURN"):
        Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path), "TELEHEALTH_TURN_URLS": "turn:127.0.0.1:3478"})


def test_where_to_listen_and_how_much_to_log_come_from_settings(tmp_path: Path) -> None:
    env = {
        "TELEHEALTH_VAR_DIR": str(tmp_path),
        "TELEHEALTH_HOST": "0.0.0.0",
        "TELEHEALTH_PORT": "9000",
        "TELEHEALTH_LOG_LEVEL": "warning",
        "TELEHEALTH_TURN_TTL_SECONDS": "600",
    }
    s = Settings.from_env(env)
    assert (s.host, s.port, s.log_level, s.turn_ttl_seconds) == ("0.0.0.0", 9000, "WARNING", 600)


def test_a_port_that_is_not_a_number_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TELEHEALTH_PORT"):
        Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path), "TELEHEALTH_PORT": "eighty"})


def test_the_app_and_signaling_agree_on_the_turn_credential_lifetime(tmp_path: Path) -> None:
    s = Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path)})
    assert signaling_settings(s).turn_ttl == s.turn_ttl_seconds == SignalingSettings(resume_secret=b"x" * 16).turn_ttl
