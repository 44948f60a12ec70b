"""The dashboard's Admit lets the waiting patient in with one click; the visit page's list is right after the end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from tests.browser.calls import open_patient, patient_to_waiting_room, visit_with_link
from tests.browser.conftest import BrowserSession


async def test_one_click_on_the_dashboards_admit_lets_the_patient_in_and_the_list_clears_when_the_visit_ends(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    patient = await open_patient(camera_chromium, join_url)
    await patient_to_waiting_room(patient)

    page = clinician.page
    admit = page.locator(f"tr[data-visit-id='{visit_id}'].is-waiting a.open-visit")
    await admit.wait_for()
    assert await admit.inner_text() == "Admit"
    await snapshot(page, "dashboard-admit-desktop")
    await admit.click()
    await page.wait_for_url(f"**/visit/{visit_id}*")
    # No second click on the visit page: the patient is already in the call.
    await patient.page.wait_for_selector("#step-call:not([hidden])")
    await page.wait_for_selector("li[data-status='admitted'][data-role='patient']")
    assert "admit=" not in page.url  # a reload does not admit again

    page.on("dialog", lambda d: d.accept())
    await page.click("#hangup")
    await patient.page.wait_for_selector("#step-ended:not([hidden])")
    await page.wait_for_selector("#participants li:has-text('The call is over.')")
    assert await page.locator("#participants li[data-participant]").count() == 0
    await patient.context.close()
