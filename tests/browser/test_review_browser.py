"""Review in real Chromium: compare two visits with clips in sync, grade, export, read the audit log."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.mediastore import FileMediaStore
from telehealth.settings import Settings
from tests.browser.conftest import BrowserSession
from tests.conftest import Staff
from tests.review_seed import SeededVisit, make_patient, seed_visit
from tests.test_export import validate_r4_bundle

STEPS = ("rest", "brow_raise", "eye_close_gentle", "smile_open", "pucker")
SignIn = Callable[..., Awaitable[BrowserSession]]


@pytest.fixture
async def two_visits(
    db: async_sessionmaker[AsyncSession], staff: Staff, settings: Settings
) -> tuple[SeededVisit, SeededVisit]:
    """Patient MRN-77 seen before and after surgery; clips of rest and smile at both visits."""
    store = FileMediaStore(settings.media_dir)
    start = datetime(2026, 1, 12, 9, tzinfo=UTC)
    async with db() as s, s.begin():
        p = await make_patient(s, "MRN-77", created_by=staff.clinician, family="Palsy")
        before = await seed_visit(
            s,
            store,
            patient_id=p.id,
            clinician_id=staff.clinician,
            scheduled_at=start,
            steps=STEPS,
            clip_steps=("rest", "smile_open"),
            flags={"brow_raise": ["yaw"]},
        )
        after = await seed_visit(
            s,
            store,
            patient_id=p.id,
            clinician_id=staff.clinician,
            scheduled_at=start + timedelta(days=200),
            steps=STEPS,
            clip_steps=("rest", "smile_open"),
            tint=(210, 90, 40),
        )
    return before, after


async def _images_rendered(page: Page, selector: str) -> int:
    """How many images under selector have decoded pixels."""
    count: int = await page.eval_on_selector_all(
        selector, "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length"
    )
    return count


async def test_reviewer_compares_two_visits_plays_clips_in_sync_and_cannot_grade(
    signed_in: SignIn, two_visits: tuple[SeededVisit, SeededVisit], snapshot: Any
) -> None:
    before, after = two_visits
    s = await signed_in("reviewer", next_path="/review")
    page = s.page
    await page.fill("#q", "MRN-77")
    await page.get_by_role("link", name="Palsy, Jane").click()

    # Timeline: both visits, newest first, each a strip of real thumbnails in protocol order.
    rows = page.locator("li.visit-row")
    await expect(rows).to_have_count(2)
    assert await rows.nth(0).get_attribute("data-visit-id") == str(after.visit.id)
    steps = await rows.nth(1).locator("figure.thumb").evaluate_all("fs => fs.map(f => f.dataset.step)")
    assert steps == list(STEPS)
    await page.wait_for_function("() => [...document.querySelectorAll('figure.thumb img')].every(i => i.complete)")
    assert await _images_rendered(page, "figure.thumb img") == 2 * len(STEPS)
    await expect(rows.nth(1).locator(".badge.flag")).to_have_text("yaw")
    await snapshot(page, "timeline")

    for row in (rows.nth(0), rows.nth(1)):
        await row.locator("input.pick").check()
    await page.click("#compare")
    await page.wait_for_url("**/review/compare?*")
    await page.wait_for_selector("body[data-ready=true]")
    assert f"a={before.visit.id}" in page.url and f"b={after.visit.id}" in page.url

    smile = page.locator('section.compare-row[data-step="smile_open"]')
    await page.wait_for_function(
        """() => [...document.querySelectorAll('section[data-step="smile_open"] .pair:not(.clips) img')]
                 .every(i => i.complete && i.naturalWidth > 0)"""
    )
    await smile.scroll_into_view_if_needed()
    await smile.get_by_role("button", name="Play both").click()
    # Both clips really decode and advance together (VP8 WebM through HTTP Range from the media API).
    await page.wait_for_function(
        """() => {
            const v = [...document.querySelectorAll('section[data-step="smile_open"] video')];
            return v.length === 2 && v.every(x => x.videoWidth === 320 && (x.currentTime > 0.5 || x.ended));
        }"""
    )
    await smile.get_by_role("button", name="Restart").click()
    await smile.locator(".sync").get_by_role("button", name="frame ▶").click()
    await page.wait_for_function(
        """() => [...document.querySelectorAll('section[data-step="smile_open"] video')]
                 .every(x => x.paused && x.currentTime > 0 && x.currentTime < 0.2)"""
    )
    await snapshot(page, "compare")

    # The montage is read-only for a reviewer, and the API refuses a grade even if the form is bypassed.
    await page.goto(s.url(f"/review/visits/{after.visit.id}"))
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#grading-readonly")).to_be_visible()
    await expect(page.locator("#sb-form button[type=submit]")).to_be_disabled()
    status, body = await s.api(
        "POST", f"/api/visits/{after.visit.id}/grades", {"scale": "house_brackmann", "items": {"grade": 2}}
    )
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert s.js_errors == []


async def test_clinician_grades_sunnybrook_steps_a_clip_and_exports_valid_fhir_then_admin_reads_audit(
    signed_in: SignIn, two_visits: tuple[SeededVisit, SeededVisit], snapshot: Any, tmp_path: Path
) -> None:
    _, after = two_visits
    vid = after.visit.id
    s = await signed_in("clinician", next_path=f"/review/visits/{vid}")
    page = s.page
    await page.wait_for_selector("body[data-ready=true]")
    cards = page.locator("#montage article.step")
    await expect(cards).to_have_count(10)  # the default protocol, captured or not
    assert await cards.evaluate_all("cs => cs.map(c => c.dataset.step)") == [
        "rest", "brow_raise", "eye_close_gentle", "eye_close_tight", "smile_closed",
        "smile_open", "snarl", "pucker", "lower_teeth", "spontaneous",
    ]  # fmt: skip

    # Clip player: frame stepping moves exactly one frame (15 fps clip).
    await page.locator('article[data-step="rest"] button.open-clip').click()
    viewer = page.locator("#viewer")
    await page.wait_for_function("() => document.querySelector('#viewer video').readyState >= 1")
    await viewer.get_by_role("button", name="frame ▶").click()
    await viewer.get_by_role("button", name="frame ▶").click()
    await expect(viewer.locator(".readout")).to_contain_text("frame 2")
    await snapshot(page, "viewer")
    await viewer.get_by_role("button", name="Close").click()

    # Sunnybrook: resting 1+1+0 -> 10, voluntary (4+5+3+4+3) x 4 -> 76, synkinesis 1+0+2+0+1 -> 4: composite 62.
    form = page.locator("#sb-form")
    choices = {
        "resting.eye": "1", "resting.cheek": "1", "resting.mouth": "0",
        "voluntary.brow_lift": "4", "voluntary.gentle_eye_closure": "5", "voluntary.open_mouth_smile": "3",
        "voluntary.snarl": "4", "voluntary.lip_pucker": "3",
        "synkinesis.brow_lift": "1", "synkinesis.gentle_eye_closure": "0", "synkinesis.open_mouth_smile": "2",
        "synkinesis.snarl": "0", "synkinesis.lip_pucker": "1",
    }  # fmt: skip
    for name, value in choices.items():
        await form.locator(f'select[name="{name}"]').select_option(value)
    await form.get_by_role("button", name="Save Sunnybrook").click()
    await expect(form.locator(".result")).to_have_text(
        "Saved: Sunnybrook composite 62 (voluntary 76 - resting 10 - synkinesis 4)"
    )
    await expect(page.locator("#current-grades .grade-sunnybrook")).to_contain_text("composite 62")
    await expect(page.locator("#grade-history tbody tr")).to_have_count(1)
    await snapshot(page, "visit")

    # Export: the bundle the page downloads is valid FHIR R4 and carries the grade.
    async with page.expect_download() as info:
        await page.click("#export-fhir")
    target = tmp_path / "bundle.json"
    await (await info.value).save_as(target)
    resources = validate_r4_bundle(json.loads(target.read_text()))
    observations = [r for r in resources.values() if r["resourceType"] == "Observation"]
    assert [o["valueInteger"] for o in observations] == [62]
    assert sum(r["resourceType"] == "Media" for r in resources.values()) == len(STEPS) + 2
    assert s.js_errors == []

    # The admin reads who did what to this patient.
    admin = await signed_in("admin", next_path="/review/audit")
    await admin.page.wait_for_selector("body[data-ready=true]")
    await admin.page.fill("#patient-q", "MRN-77")
    await expect(admin.page.locator("#patient-id option")).to_have_count(2)
    await admin.page.get_by_role("button", name="Show").click()
    actions = admin.page.locator("#audit tbody tr td:nth-child(4)")
    await expect(actions.first).to_have_text("export_fhir")
    seen = set(await actions.all_text_contents())
    assert {"view_montage", "grade_visit", "view_media", "export_fhir"} <= seen
    await expect(admin.page.locator("#audit tbody tr", has_text="grade_visit").locator("td").nth(1)).to_have_text(
        "Dr. Clin"
    )
    await snapshot(admin.page, "audit")
    assert admin.js_errors == []
