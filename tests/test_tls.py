"""The self-signed certificate for LAN use: a private key nobody else can read, usable by ssl."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from telehealth.tls import ensure_self_signed, ssl_context


def test_the_private_key_is_created_readable_only_by_its_owner(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    assert isinstance(ssl_context(cert, key), ssl.SSLContext)


def test_a_half_written_key_is_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "self-signed.key").write_bytes(b"partial")
    cert, key = ensure_self_signed(directory)
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert isinstance(ssl_context(cert, key), ssl.SSLContext)
