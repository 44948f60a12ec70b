"""Fixtures: an app with signaling on an in-process broker, and a real-Redis probe."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from telehealth.signaling import SignalingSettings, setup_signaling
from tests.signaling.fakes import MemoryGateway

REDIS_URL = os.environ.get("TH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

BASE_SETTINGS = SignalingSettings(
    resume_secret=b"test-secret-0123456789abcdef",
    stun_urls=("stun:stun.test:3478",),
    turn_urls=("turn:turn.test:3478?transport=udp",),
    turn_secret="coturn-secret",
)


def redis_reachable() -> bool:
    """True if the shared Redis answers on its port."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def require_redis() -> str:
    """The shared Redis URL; in CI a missing Redis fails instead of skipping."""
    if not redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("Redis at 127.0.0.1:6379 is required in CI")
        pytest.skip("SKIPPED LOUDLY: no Redis at 127.0.0.1:6379 (start one to run these tests)")
    return REDIS_URL


class Server:
    """A running signaling app plus a client session and its gateway."""

    def __init__(self, server: TestServer, gateway: MemoryGateway, http: aiohttp.ClientSession):
        self.server = server
        self.gateway = gateway
        self.http = http
        self.app = server.app

    @property
    def base(self) -> str:
        """http://host:port of the server."""
        return str(self.server.make_url("")).rstrip("/")


async def start_server(settings: SignalingSettings, **kw: Any) -> tuple[TestServer, MemoryGateway]:
    """Start an app with signaling wired in on a free loopback port."""
    gateway = MemoryGateway()
    app = web.Application()
    setup_signaling(app, gateway, settings, **kw)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, gateway


@pytest.fixture
def sig_settings() -> SignalingSettings:
    """Settings for a test; override with dataclasses.replace in the test."""
    return BASE_SETTINGS


@pytest.fixture
async def sig(sig_settings: SignalingSettings) -> AsyncIterator[Server]:
    """A signaling server on an in-process broker."""
    server, gateway = await start_server(sig_settings)
    async with aiohttp.ClientSession() as http:
        yield Server(server, gateway, http)
    await server.close()


def tuned(**changes: Any) -> SignalingSettings:
    """BASE_SETTINGS with changes."""
    return replace(BASE_SETTINGS, **changes)
