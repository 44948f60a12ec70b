"""Behind a reverse proxy: the client address comes from X-Forwarded-For only when the proxy is trusted."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from telehealth.app import create_app
from telehealth.http.forwarded import client_address, parse_networks
from telehealth.settings import Settings
from tests.conftest import Staff, with_settings


async def _fail_logins(client: TestClient[Any, Any], forwarded_for: str, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        resp = await client.post(
            "/api/auth/login",
            json={"username": "nobody", "password": "wrong"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        statuses.append(resp.status)
    return statuses


async def test_clients_behind_a_trusted_proxy_are_throttled_one_by_one(
    aiohttp_client: Any, settings: Settings, staff: Staff
) -> None:
    client = await aiohttp_client(create_app(with_settings(settings, trusted_proxies=("127.0.0.1/32", "::1"))))
    assert (await _fail_logins(client, "203.0.113.7", 6))[-1] == 429
    # Another patient's or clinician's address behind the same proxy is not locked out with the first.
    assert await _fail_logins(client, "198.51.100.9", 1) == [401]


async def test_a_forged_forwarded_header_from_an_untrusted_peer_does_not_evade_the_throttle(
    client: TestClient[Any, Any],
) -> None:
    statuses = [(await _fail_logins(client, f"203.0.113.{i}", 1))[0] for i in range(7)]
    assert statuses[-1] == 429


def test_the_client_is_the_rightmost_address_that_is_not_a_proxy() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.9", proxies) == "198.51.100.1"
    assert client_address("192.0.2.5", "1.2.3.4", proxies) == "192.0.2.5"
    assert client_address("10.0.0.2", "", proxies) == "10.0.0.2"


def test_a_malformed_trusted_proxy_stops_the_start(tmp_path: Any) -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"TELEHEALTH_VAR_DIR": str(tmp_path), "TELEHEALTH_TRUSTED_PROXIES": "10.0.0.0/33"})
