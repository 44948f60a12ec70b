"""Sign-in page behaviour in Chromium: redirects stay on this site."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from tests.browser.conftest import base_url
from tests.conftest import PASSWORD


async def test_next_parameter_cannot_send_staff_to_another_site(chromium: Browser, live_server: TestServer) -> None:
    base = base_url(live_server)
    context = await chromium.new_context()
    page = await context.new_page()
    for evil in ("/%5Cexample.com/x", "//example.com/x", "https://example.com/x", "/review?x=1"):
        await context.clear_cookies()
        await page.goto(f"{base}/login?next={evil}")
        await page.fill("#username", "reviewer")
        await page.fill("#password", PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_load_state("load")
        await page.wait_for_function("() => location.pathname !== '/login'")
        assert page.url.startswith(base + "/"), (evil, page.url)
    assert page.url == f"{base}/review?x=1"
    await context.close()
