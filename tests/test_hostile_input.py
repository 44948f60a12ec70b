"""Hostile request bodies get a clear 4xx and change nothing, anonymous or signed in."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

NESTED_ARRAY = "[" * 50_000 + "]" * 50_000
NESTED_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000
DEEP_BUT_SMALL = '{"username":' + "[" * 5_000 + "]" * 5_000 + ',"password":"x"}'


@pytest.mark.parametrize("body", [NESTED_ARRAY, NESTED_OBJECT, DEEP_BUT_SMALL])
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/join/abcdefghijklmnopqrstuvwxyz0123456789abcdefg/session"])
async def test_deeply_nested_json_is_refused_with_400(client: TestClient[Any, Any], path: str, body: str) -> None:
    resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert resp.status in (400, 413), await resp.text()
    payload = await resp.json()
    assert payload["error"]["code"] in ("malformed_json", "too_large", "invalid_input")
