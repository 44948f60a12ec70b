"""Scheduling from the dashboard in Chromium: a visit tomorrow, its link, joining it, and its review."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from tests.browser.calls import open_patient, patient_to_waiting_room, wait_frames_rising
from tests.browser.conftest import BrowserSession, base_url


async def test_clinician_schedules_a_visit_for_tomorrow_sends_the_link_and_the_patient_joins_it(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    page = clinician.page
    await page.wait_for_function("() => document.body.dataset.ready === 'true'")
    status, patient = await clinician.api(
        "POST",
        "/api/patients",
        {"mrn": "SCH-1", "given_name": "Ada", "family_name": "Quinn", "birth_date": "1990-01-02"},
    )
    assert status == 201, patient
    await page.fill("#patient-search", "SCH-1")
    await page.wait_for_function("() => document.getElementById('patient-select').value !== ''")

    # A past time is refused in plain words.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    await page.fill("input[name='scheduled_local']", yesterday)
    await page.click("#visit-form button[type='submit']")
    error = page.locator("#visit-form .error")
    await error.wait_for(state="visible")
    assert await error.text_content() == "That time has already passed. Choose a time from now on."

    # Tomorrow 09:00 on the clinic's clock (UTC in tests): scheduled, and the list moves to that day.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    await page.fill("input[name='scheduled_local']", f"{tomorrow.isoformat()}T09:00")
    await page.click("#visit-form button[type='submit']")
    await page.wait_for_function(
        "() => document.getElementById('visit-form-status').textContent.includes('scheduled for')"
    )
    assert await error.is_hidden()
    row = page.locator("#visits tbody tr").first
    await row.wait_for()
    assert "09:00" in (await row.locator("td").first.text_content() or "")
    assert (await page.text_content("#schedule-title")) == "Visits on"
    visit_id = await row.get_attribute("data-visit-id")
    assert visit_id
    await snapshot(page, "schedule-desktop-tomorrow")

    # The week view shows it too; today does not.
    await page.click("#span-week")
    await page.wait_for_function("() => document.getElementById('schedule-title').textContent === 'Week of'")
    await page.locator(f"tr[data-visit-id='{visit_id}']").wait_for()
    await snapshot(page, "schedule-desktop-week")
    await page.click("#span-day")
    await page.click("#today")
    await page.wait_for_function("() => document.getElementById('schedule-title').textContent === \"Today's visits\"")
    assert await page.locator(f"tr[data-visit-id='{visit_id}']").count() == 0
    await page.click("#next")
    row = page.locator(f"tr[data-visit-id='{visit_id}']")
    await row.wait_for()

    # Create the link from the row; re-sending replaces it; the shown link is the one that works.
    await row.locator("button.copy-link").click()
    link = row.locator("input.join-link")
    await link.wait_for()
    first_url = await link.input_value()
    assert "copied" in (await page.text_content("#copy-status") or "") or "created" in (
        await page.text_content("#copy-status") or ""
    )
    await page.reload()
    await page.wait_for_function("() => document.body.dataset.ready === 'true'")
    await page.click("#next")
    row = page.locator(f"tr[data-visit-id='{visit_id}']")
    await row.locator("button.copy-link", has_text="Re-send link").click()
    await row.locator("input.join-link").wait_for()
    join_url = await row.locator("input.join-link").input_value()
    assert join_url != first_url

    # Email the invitation from the row: a bad address gets plain words, a good one is recorded.
    await row.locator("button.invite").click()
    await row.locator("input.invite-email").fill("not an address")
    await row.locator("button.send-invite").click()
    await page.wait_for_function("() => !document.getElementById('schedule-error').hidden")
    assert await page.text_content("#schedule-error") == "Please type a valid email address."
    await snapshot(page, "schedule-desktop-invite-error")
    await row.locator("input.invite-email").fill("ada@example.org")
    await row.locator("button.send-invite").click()
    await page.wait_for_function("() => document.getElementById('copy-status').textContent.includes('on its way')")
    _, sent = await clinician.api("GET", f"/api/visits/{visit_id}/messages")
    assert [(m["kind"], m["recipient"]) for m in sent["items"]] == [
        ("invitation", "ada@example.org"),
        ("reminder", "ada@example.org"),
    ]
    assert "reminder at" in (await page.text_content("#copy-status") or "")
    await snapshot(page, "schedule-desktop-invited")
    # The invitation issued a fresh link: re-send one more for the patient to use below.
    await row.locator("button.copy-link", has_text="Re-send link").click()
    await row.locator("input.join-link").wait_for()
    join_url = await row.locator("input.join-link").input_value()

    # The phone layout of the schedule: no sideways scrolling of the page itself.
    await page.set_viewport_size({"width": 390, "height": 844})
    await snapshot(page, "schedule-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # The patient opens the link (a day early is fine) and the clinician admits them.
    patient_page = await open_patient(camera_chromium, join_url)
    old = await patient_page.context.new_page()
    replaced = await old.goto(first_url)
    assert replaced is not None and replaced.status == 404  # the replaced link no longer opens anything
    await old.close()
    await patient_to_waiting_room(patient_page)
    context = await camera_chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.click("li[data-status='waiting'] button.admit")
    await patient_page.page.wait_for_selector("#step-call:not([hidden])")
    await wait_frames_rising(doc)
    doc.on("dialog", lambda d: d.accept())
    await doc.click("#hangup")
    await patient_page.page.wait_for_selector("#step-ended:not([hidden])")

    # The ended visit links to its review from the schedule.
    await page.reload()
    await page.wait_for_function("() => document.body.dataset.ready === 'true'")
    await page.click("#next")
    review = page.locator(f"tr[data-visit-id='{visit_id}'] a.review-link")
    await review.wait_for()
    assert await review.get_attribute("href") == f"/review/visits/{visit_id}"
    assert clinician.js_errors == []
    assert patient_page.js_errors == []
    await context.close()
    await patient_page.context.close()
