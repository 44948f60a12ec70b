"""Helpers to run test servers and throwaway Redis instances as separate processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


class ServerProc:
    """A running test server process."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url

    def crash(self) -> None:
        """SIGKILL: no cleanup, presence entries are left to expire."""
        self.proc.kill()


@asynccontextmanager
async def signaling_server(redis_url: str, node_id: str, presence_ttl: float = 15.0) -> AsyncIterator[ServerProc]:
    """Run tests/signaling/server_main.py on a port the OS picks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.signaling.server_main", "--port", "0",
        "--redis-url", redis_url, "--node-id", node_id, "--presence-ttl", str(presence_ttl),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()
        assert line.startswith(b"READY"), f"server {node_id} failed to start: {line!r}"
        yield ServerProc(proc, f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        await _stop(proc)


class ThrowawayRedis:
    """A private redis-server on a free port that tests may kill and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this instance."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start and wait until it accepts connections."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = await asyncio.create_subprocess_exec(
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    await writer.wait_closed()
                    return
                except OSError:
                    await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """Kill it (SIGKILL: nothing is flushed, like a crash)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        """Stop it for good."""
        if self.proc is not None:
            await _stop(self.proc)
