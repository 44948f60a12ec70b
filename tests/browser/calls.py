"""Helpers for browser tests of the visit: a camera-enabled Chromium, a patient page, waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

from tests.browser.conftest import BrowserSession

TIMEOUT_MS = 20_000
PHONE = {"width": 375, "height": 740}


@dataclass
class PatientPage:
    """The patient's browser tab and the JavaScript errors it raised."""

    context: BrowserContext
    page: Page
    js_errors: list[str] = field(default_factory=list)


async def open_patient(browser: Browser, url: str, *, viewport: dict[str, int] | None = None) -> PatientPage:
    """A fresh phone-sized context (its own permissions and storage) on the join link."""
    context = await browser.new_context(viewport=viewport or PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    patient = PatientPage(context, page)
    page.on("pageerror", lambda exc: patient.js_errors.append(str(exc)))
    await page.goto(url)
    return patient


async def no_horizontal_overflow(page: Page) -> bool:
    """True when nothing on the page is wider than the viewport."""
    result: bool = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    return result


async def remote_frames(page: Page) -> dict[str, Any]:
    """The remote video's size and the call's decoded-frame count from getStats."""
    result: dict[str, Any] = await page.evaluate(
        """async () => {
            const v = document.getElementById("remote");
            const call = window.telehealth && window.telehealth.call;
            let decoded = 0;
            if (call) {
              const stats = await call.pc.getStats();
              stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0; });
            }
            return {width: v.videoWidth, height: v.videoHeight, decoded, ice: call ? call.pc.iceConnectionState : null};
        }"""
    )
    return result


async def wait_frames_rising(page: Page, *, above: int = 0, timeout_s: float = TIMEOUT_MS / 1000) -> int:
    """Wait until the remote video has a size and framesDecoded exceeds `above` by 10; returns the count."""
    # Polled from Python: getStats is asynchronous and wait_for_function does not await promises.
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await remote_frames(page)
        if last["width"] > 0 and last["decoded"] > above + 10:
            return int(last["decoded"])
        await asyncio.sleep(0.25)
    raise AssertionError(f"remote video did not advance past {above} frames: {last}")


async def patient_to_waiting_room(
    patient: PatientPage, *, consent: bool = True, name: str = "Maya Okafor"
) -> list[str]:
    """Go through identity, consent and device check; returns the steps that overflowed horizontally."""
    page = patient.page
    overflow: list[str] = []
    await page.wait_for_selector("#verify-continue")
    if not await no_horizontal_overflow(page):
        overflow.append("verify")
    await page.click("#verify-continue")
    await page.wait_for_selector("#step-consent:not([hidden])")
    if not await no_horizontal_overflow(page):
        overflow.append("consent")
    await page.fill("#consent-name", name)
    await page.click("#consent-agree" if consent else "#consent-decline")
    await page.wait_for_selector("#step-devices:not([hidden])")
    await page.click("#start-camera")
    await page.wait_for_selector("#to-waiting:not([hidden])")
    await page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")
    if not await no_horizontal_overflow(page):
        overflow.append("devices")
    await page.click("#to-waiting")
    await page.wait_for_selector("#step-waiting:not([hidden])")
    if not await no_horizontal_overflow(page):
        overflow.append("waiting")
    return overflow


async def visit_with_link(clinician: BrowserSession) -> tuple[str, str]:
    """Create a patient and a visit now through the API; returns (visit id, patient join URL)."""
    status, patient = await clinician.api(
        "POST",
        "/api/patients",
        {
            "mrn": "CALL-1",
            "given_name": "Maya",
            "family_name": "Okafor",
            "birth_date": "1984-03-09",
            "affected_side": "left",
        },
    )
    assert status == 201, patient
    status, visit = await clinician.api(
        "POST", "/api/visits", {"patient_id": patient["id"], "scheduled_at": datetime.now(UTC).isoformat()}
    )
    assert status == 201, visit
    status, link = await clinician.api("POST", f"/api/visits/{visit['id']}/join-link")
    assert status == 201, link
    return visit["id"], link["url"]
