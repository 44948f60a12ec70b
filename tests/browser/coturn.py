"""A throwaway coturn TURN server on loopback, for browser tests that must relay through TURN.

`run_coturn(secret)` starts Debian's `turnserver` with TURN REST API auth (`use-auth-secret`) on a
free 127.0.0.1 port, waits until it answers a STUN binding request, and always stops it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import struct
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REALM = "telehealth.test"
STUN_MAGIC = 0x2112A442
READY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Coturn:
    """A running coturn: where it listens, its shared secret and its log so far."""

    port: int
    secret: str
    log_path: Path

    @property
    def url(self) -> str:
        """The TURN URL browsers are given (UDP)."""
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        """coturn's own log (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def turnserver_path() -> str | None:
    """The turnserver binary, if installed."""
    return shutil.which("turnserver")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port")


def _stun_binding_answered(port: int) -> bool:
    """True when a STUN binding request to 127.0.0.1:port gets a binding success response."""
    txid = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(request, ("127.0.0.1", port))
        try:
            data = s.recv(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == txid


@contextlib.asynccontextmanager
async def run_coturn(secret: str, binary: str = "turnserver") -> AsyncIterator[Coturn]:
    """Start coturn on a free loopback port with `secret`; yield once it answers STUN; stop it."""
    workdir = Path(tempfile.mkdtemp(prefix="coturn-"))
    port = free_port()
    # Relay ports: a random window, so parallel runs rarely collide (coturn skips busy ports anyway).
    low = random.randrange(40_000, 60_000, 200)
    server = Coturn(port, secret, workdir / "turn.log")
    args = [
        "-n",  # no config file
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={low}",
        f"--max-port={low + 199}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={REALM}",
        # Both browsers' relayed addresses are 127.0.0.1: coturn refuses loopback peers by default.
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--fingerprint",
        "--simple-log",
        "--verbose",
        f"--log-file={server.log_path}",
        # Keep its state out of /var: a private pid file and user database.
        f"--pidfile={workdir / 'turn.pid'}",
        f"--db={workdir / 'turndb'}",
    ]
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while not await loop.run_in_executor(None, _stun_binding_answered, port):
            if proc.returncode is not None or loop.time() > deadline:
                raise RuntimeError(f"coturn did not start (exit {proc.returncode}):\n{server.log()[-3000:]}")
            await asyncio.sleep(0.05)
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
