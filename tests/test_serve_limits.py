"""The real `telehealth serve` process: slow clients are cut off, and its files are private."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

from tests.test_signaling_app import ROOT, app_process


async def _upgrade(env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telehealth", "db", "upgrade", cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await proc.wait() == 0


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails if it keeps the connection open longer."""
    async with asyncio.timeout(seconds):
        return await reader.read()


async def test_slow_headers_and_slow_bodies_are_cut_off_and_files_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"TELEHEALTH_VAR_DIR": str(var), "TELEHEALTH_READ_TIMEOUT_SECONDS": "2"}
    os.umask(0o022)  # a usual login shell: the server must not depend on it
    await _upgrade(env)
    async with app_process(env) as base:
        port = int(base.rsplit(":", 1)[1])
        # Headers that never finish: dropped after the read timeout, not held for an hour.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        assert await _closed_within(reader, 6) == b""
        writer.close()
        # A body that never finishes: 408 after the read timeout.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        )
        writer.write(head + b'{"username": ')
        await writer.drain()
        async with asyncio.timeout(8):
            status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 408"), status
        writer.close()

        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (var, var / "media", var / "secret_key")}
        modes[var / "telehealth.sqlite3"] = stat.S_IMODE((var / "telehealth.sqlite3").stat().st_mode)
        assert modes == {
            var: 0o700,
            var / "media": 0o700,
            var / "secret_key": 0o600,
            var / "telehealth.sqlite3": 0o600,
        }
