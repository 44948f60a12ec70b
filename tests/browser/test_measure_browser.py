"""Face measurements in real Chromium: the visit page's table, the landmark overlay, computed eFACE values, the trend."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.analysis import ANALYSIS
from telehealth.settings import Settings
from tests.analysis.test_measure_api import seed
from tests.browser.conftest import BrowserSession
from tests.conftest import Staff

SignIn = Callable[..., Awaitable[BrowserSession]]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


async def _shots(page: Page, name: str) -> None:
    """Phone and desktop screenshots into $TELEHEALTH_SCREENSHOTS, when set (looked at by a person)."""
    target = os.environ.get("TELEHEALTH_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(Path(target) / f"{name}-{label}.png"), full_page=True)


async def test_the_surgeon_sees_measurements_per_side_and_toggles_landmarks_on_the_still(
    signed_in: SignIn,
    live_server: TestServer,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    staff: Staff,
) -> None:
    patient_id, visit_id, media = await seed(db, settings, staff, {"rest": "rest", "smile_open": "smile"})
    service = live_server.app[ANALYSIS]
    for device_id, _thumb in media.values():
        await service.measure_media(device_id)

    s = await signed_in("clinician", next_path=f"/review/visits/{visit_id}")
    page = s.page
    await page.wait_for_selector("body[data-ready=true]")

    section = page.locator("#measurements")
    await expect(section).to_contain_text("computed from landmarks — decision support, not a diagnosis")
    smile = section.locator('.measure-step[data-step="smile_open"]')
    await expect(smile.locator("thead th")).to_have_text(
        ["Measurement", "Right", "Left", "Asymmetry %", "Movement right", "Movement left", "Movement asym. %"]
    )
    excursion = smile.locator('tr[data-metric="commissure_excursion"] td')
    cells = [float(t) for t in await excursion.all_text_contents()]
    # The subject's right corner was moved half as far as the left (see tests/analysis/test_measure_api.py).
    assert 0 < cells[3] < cells[4]
    await expect(section.locator('.measure-step[data-step="rest"] thead th')).to_have_count(4)

    card = page.locator('#montage .step[data-step="rest"]')
    overlay = card.locator("svg.landmarks")
    await expect(overlay).to_be_hidden()
    await card.get_by_role("button", name="Landmarks").click()
    await expect(overlay).to_be_visible()
    assert await overlay.locator("circle").count() == 478
    # The points land on the shown still: the overlay covers the image exactly and the face is inside it.
    img_box = await card.locator(".slot.still img").bounding_box()
    svg_box = await overlay.bounding_box()
    assert img_box is not None and svg_box is not None
    assert abs(img_box["width"] - svg_box["width"]) < 1 and abs(img_box["height"] - svg_box["height"]) < 1
    pupil = await overlay.locator("circle").nth(468).bounding_box()
    assert pupil is not None
    assert img_box["x"] < pupil["x"] < img_box["x"] + img_box["width"]
    assert img_box["y"] < pupil["y"] < img_box["y"] + img_box["height"]

    # In the viewer the full still (the real face) gets its own overlay, fitted like the image (contain).
    await card.get_by_role("button", name="Open Rest still").click()
    viewer = page.locator("#viewer")
    await page.wait_for_function("() => document.querySelector('#viewer img.full')?.naturalWidth === 1280")
    await viewer.get_by_role("button", name="Landmarks").click()
    big = viewer.locator("svg.landmarks")
    await expect(big).to_be_visible()
    assert await big.locator("circle").count() == 478
    await _shots(page, "measure-viewer")
    await page.set_viewport_size(DESKTOP)
    await viewer.get_by_role("button", name="Close").click()

    smile_field = page.locator('#eface-form input[name="oral_commissure_smile"]')
    value = int(await smile_field.input_value())
    assert 0 < value < 100
    await expect(smile_field).to_have_class("computed")
    await expect(page.locator("#eface-form .computed-mark").first).to_have_text("computed")
    await smile_field.fill("80")
    await expect(smile_field).not_to_have_class("computed")
    await _shots(page, "measure-visit")

    # Two visits side by side carry each measurement's change (the same visit twice: no change).
    await page.goto(s.url(f"/review/compare?a={visit_id}&b={visit_id}"))
    await page.wait_for_selector("body[data-ready=true]")
    numbers = page.locator('.compare-row[data-step="smile_open"] .measure-change')
    await expect(numbers.locator("thead th")).to_have_text(
        ["Measurement", "Movement from rest, right", "Change", "Movement from rest, left", "Change", "Asymmetry %"]
    )
    moved = await numbers.locator('tr[data-metric="commissure_excursion"] td').all_text_contents()
    assert moved[1] == moved[3] == "0.0" and " → " in moved[0]
    await _shots(page, "measure-compare")

    await page.goto(s.url(f"/review/patients/{patient_id}"))
    await page.wait_for_selector("body[data-ready=true]")
    plot = page.locator('#trend .trend-plot[data-metric="commissure_excursion"]')
    await expect(plot.locator("svg circle")).to_have_count(2)  # one visit, both sides
    await _shots(page, "measure-patient")
    assert s.js_errors == []
