"""Generic fixtures for tests in a real Chromium against a live server of the real app.

- `chromium`: the Debian Chromium (never a downloaded one) launched headless through Playwright.
- `live_server`: the app from `create_app(settings)` served by pytest-aiohttp on a local port; its
  database is the parametrized `database_url` (SQLite and PostgreSQL), so every browser test runs on both.
- `signed_in`: opens a fresh browser context, signs a staff user in through the real login form and
  returns a `BrowserSession` (page + base URL + the JavaScript errors seen so far).
- `snapshot`: saves a full-page screenshot when TELEHEALTH_SCREENSHOTS names a directory (for looking
  at pages while developing; tests never compare pixels).

Usage::

    async def test_x(live_server, signed_in):
        s = await signed_in("reviewer", next_path="/review")
        await s.page.get_by_label("MRN or name").fill("MRN-1")
        assert s.js_errors == []
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from telehealth.app import create_app
from telehealth.settings import Settings
from tests.conftest import PASSWORD, Staff

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # generous for a loaded 2-core machine; tests wait on conditions, not on time


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """The system Chromium, headless; skipped (locally) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI")
        pytest.skip("!!! chromium not installed; browser tests SKIPPED !!!")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def live_server(aiohttp_server: Any, settings: Settings, staff: Staff) -> TestServer:
    """The real application on a local port (staff accounts seeded, one per role)."""
    server: TestServer = await aiohttp_server(create_app(settings))
    return server


def base_url(server: TestServer) -> str:
    """http://127.0.0.1:<port> of a live server."""
    return str(server.make_url("")).rstrip("/")


@dataclass
class BrowserSession:
    """A signed-in page and what went wrong in its JavaScript."""

    context: BrowserContext
    page: Page
    base: str
    js_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        """An absolute URL on the live server."""
        return f"{self.base}{path}"

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the API from inside the page, as the page's own code would (cookie + CSRF)."""
        result: tuple[int, Any] = await self.page.evaluate(
            """async ([method, path, body]) => {
                const me = await (await fetch("/api/auth/me")).json();
                const r = await fetch(path, {method, headers: {"Content-Type": "application/json",
                  "X-CSRF-Token": me.csrf_token}, body: body === null ? undefined : JSON.stringify(body)});
                return [r.status, await r.json().catch(() => null)];
            }""",
            [method, path, body],
        )
        return result


def _console(session: BrowserSession, kind: str, text: str) -> None:
    # Refused or missing resources are logged by Chromium itself; tests assert on those explicitly.
    if kind == "error" and not text.startswith("Failed to load resource"):
        session.js_errors.append(text)


@pytest.fixture
async def signed_in(
    chromium: Browser, live_server: TestServer
) -> AsyncIterator[Callable[..., Awaitable[BrowserSession]]]:
    """Factory: sign a user in through the login form and land on next_path (page is ready)."""
    contexts: list[BrowserContext] = []

    async def sign_in(username: str, *, next_path: str = "/", password: str = PASSWORD) -> BrowserSession:
        context = await chromium.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        session = BrowserSession(context, page, base_url(live_server))
        page.on("pageerror", lambda exc: session.js_errors.append(str(exc)))
        page.on("console", lambda msg: _console(session, msg.type, msg.text))
        await page.goto(session.url(next_path))
        await page.wait_for_selector("#login-form")  # anonymous: redirected to the sign-in page
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("#login-submit")
        await page.wait_for_url(session.url(next_path))
        return session

    yield sign_in
    for context in contexts:
        await context.close()


@pytest.fixture
def snapshot() -> Callable[[Page, str], Awaitable[None]]:
    """Save a full-page screenshot to $TELEHEALTH_SCREENSHOTS/<name>.png when that variable is set."""
    target = os.environ.get("TELEHEALTH_SCREENSHOTS")

    async def take(page: Page, name: str) -> None:
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)

    return take


@pytest.fixture(scope="session")
def fake_camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The looping fake-camera video (an asymmetric synthetic face at 1280x720), made once per run."""
    from tests.browser.fakecam import write_y4m

    return write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture
async def camera_chromium(fake_camera_file: Path) -> AsyncIterator[Browser]:
    """Chromium whose camera is the fake face video and whose media permission prompts auto-accept."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI")
        pytest.skip("!!! chromium not installed; browser tests SKIPPED !!!")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_camera_file}",
        "--autoplay-policy=no-user-gesture-required",
        # Real host addresses instead of mDNS names, so two browsers on one machine find each other.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=args)
        try:
            yield browser
        finally:
            await browser.close()
