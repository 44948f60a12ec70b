"""OpenAPI document, security headers, health checks, pages."""

from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.test_access_matrix import registered_routes


async def test_openapi_lists_exactly_the_api_routes(client: TestClient[Any, Any]) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    api = {(m, p) for m, p in registered_routes(client.app) if p.startswith("/api/")}
    assert documented == api
    login = doc["paths"]["/api/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/LoginIn")
    assert "LoginIn" in doc["components"]["schemas"]


async def test_pages_carry_security_headers_and_no_store(client: TestClient[Any, Any]) -> None:
    r = await client.get("/login")
    assert r.status == 200
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    api = await client.get("/api/patients")
    assert api.headers["Cache-Control"] == "no-store"


async def test_dashboard_redirects_anonymous_to_login(client: TestClient[Any, Any]) -> None:
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login?next=/"


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    r = await client.get("/readyz")
    assert r.status == 200 and (await r.json())["status"] == "ok"


async def test_unknown_api_path_is_json_404(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/nothing-here")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_static_module_is_served(client: TestClient[Any, Any]) -> None:
    r = await client.get("/static/api.js")
    assert r.status == 200 and "export async function api" in await r.text()


async def test_login_redirect_keeps_the_query_string(client: TestClient[Any, Any]) -> None:
    r = await client.get("/review/compare", params={"a": "1", "b": "2"}, allow_redirects=False)
    assert r.status == 302
    location = URL(r.headers["Location"])
    assert location.path == "/login" and location.query["next"] == "/review/compare?a=1&b=2"


async def test_redirects_carry_the_security_headers(client: TestClient[Any, Any]) -> None:
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
