"""What the patient sees and hears during the protocol: step number, 3-2-1, hold it, captured, recording."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tests.browser.calls import open_patient, patient_to_waiting_room, wait_frames_rising
from tests.browser.conftest import BrowserSession, base_url
from tests.browser.test_capture import _peer_receiving, _wait

PHONE = {"width": 390, "height": 844}

# Records every text the countdown and the cue show, so a 1-second number is not missed under load.
WATCH = """() => {
    window.seenCues = [];
    for (const id of ["countdown-number", "capture-cue"]) {
      const el = document.getElementById(id);
      new MutationObserver(() => { if (!el.hidden) window.seenCues.push(`${id}:${el.textContent}`); })
        .observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
    }
}"""


async def _seen(page: Page) -> list[str]:
    seen: list[str] = await page.evaluate("window.seenCues.slice()")
    return seen


async def _overlap(page: Page, a: str, b: str) -> bool:
    boxes: list[dict[str, Any] | None] = [await page.eval_on_selector(sel, _BOX) for sel in (a, b)]
    first, second = boxes
    assert first is not None and second is not None
    return not (
        first["right"] <= second["left"]
        or second["right"] <= first["left"]
        or first["bottom"] <= second["top"]
        or second["bottom"] <= first["top"]
    )


_BOX = (
    "e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }"
)


async def test_patient_sees_the_step_a_countdown_hold_it_and_hears_captured_while_recording_shows(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    _, p = await clinician.api(
        "POST",
        "/api/patients",
        {
            "mrn": "CUE-1",
            "given_name": "Ana",
            "family_name": "Silva",
            "birth_date": "1979-02-01",
            "affected_side": "right",
        },
    )
    _, v = await clinician.api(
        "POST", "/api/visits", {"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat()}
    )
    _, link = await clinician.api("POST", f"/api/visits/{v['id']}/join-link")
    visit_id = v["id"]
    patient = await open_patient(camera_chromium, link["url"], viewport=PHONE)
    await patient_to_waiting_room(patient, consent=True)

    context = await camera_chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.click("li[data-status='waiting'] button.admit")
    await wait_frames_rising(doc)
    await doc.click("#protocol-start")
    await _wait(lambda: _peer_receiving(clinician, visit_id), "server stream receiving")
    await doc.click("#protocol-begin")

    page = patient.page
    await page.wait_for_selector("#instruction:not([hidden])")
    assert (await page.inner_text("#step-number")).startswith("Step 1 of ")
    assert await page.inner_text("#instruction-text")
    await page.wait_for_selector("#recording:not([hidden])")  # the step's clip records from its start
    assert not await _overlap(page, "#quality", "#instruction"), "the quality dot covers the instruction"
    await page.evaluate(WATCH)

    # With the countdown (on by default) the patient sees 3-2-1, then hold it, then captured.
    assert await doc.is_checked("#countdown")
    await doc.wait_for_selector("#capture-take:not([disabled])")
    await doc.click("#capture-take")
    await page.wait_for_selector("#countdown-number:not([hidden])")
    await snapshot(page, "cues-countdown-phone")
    await page.wait_for_selector("#capture-cue.captured:not([hidden])", timeout=30_000)
    await snapshot(page, "cues-captured-phone")
    seen = await _seen(page)
    numbers = [s.split(":", 1)[1] for s in seen if s.startswith("countdown-number:")]
    assert numbers[:1] == ["3"] and "1" in numbers, seen
    cues = [s.split(":", 1)[1] for s in seen if s.startswith("capture-cue:")]
    assert "Hold it…" in cues and cues[-1] == "Captured ✓", seen
    cues_state = await page.evaluate("window.telehealth.cues")
    assert cues_state["captured"] == 1 and cues_state["beeps"] == 1
    await snapshot(doc, "cues-clinician-desktop")

    # The clinician turns the countdown off: the next capture comes at once, still with its cue.
    await doc.uncheck("#countdown")
    await doc.wait_for_selector("li[data-step] img.thumb", timeout=40_000)
    await doc.wait_for_selector("#capture-take:not([disabled])")
    await page.evaluate("window.seenCues.length = 0")
    await doc.click("#capture-take")
    await page.wait_for_function("() => window.telehealth.cues.captured === 2", timeout=30_000)
    assert not [s for s in await _seen(page) if s.startswith("countdown-number:")]
    assert patient.js_errors == []
    await asyncio.gather(context.close(), patient.context.close())
