from pathlib import Path

import pytest

from telehealth.settings import Settings


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
