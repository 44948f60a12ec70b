"""Whatever the patient's browser does mid-visit (reload, second tab, closing the tab), the call recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Dialog, Page

from tests.browser.calls import (
    PatientPage,
    open_patient,
    patient_to_waiting_room,
    visit_with_link,
    wait_frames_rising,
)
from tests.browser.conftest import BrowserSession, base_url

# Records every signaling status and every presence the clinician's page receives.
WATCH_CLINICIAN = """() => {
  const t = window.telehealth;
  t.statuses = [];
  t.presences = [];
  t.signal.addEventListener("status", (e) => t.statuses.push(e.detail.state));
  t.signal.addEventListener("presence", (e) => t.presences.push(e.detail.participant.status));
}"""
NEW_CALL = "() => window.telehealth.call && !window.telehealth.call.old"


@dataclass
class ClinicianPage:
    """The clinician's visit page and the JavaScript errors it raised."""

    page: Page
    js_errors: list[str] = field(default_factory=list)


async def clinician_page(
    browser: Browser, clinician: BrowserSession, server: TestServer, visit_id: str
) -> ClinicianPage:
    """The clinician's visit page in its own camera-enabled desktop context, signaling connected."""
    context: BrowserContext = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    result = ClinicianPage(doc)
    doc.on("pageerror", lambda exc: result.js_errors.append(str(exc)))
    await doc.goto(f"{base_url(server)}/visit/{visit_id}")
    await doc.wait_for_function("() => document.body.dataset.ready === 'true'")
    await doc.wait_for_function("() => window.telehealth.signal.state === 'open'")
    await doc.evaluate(WATCH_CLINICIAN)
    return result


async def in_call(patient: PatientPage, doc: Page) -> None:
    """Admit the waiting patient and wait for video both ways."""
    await doc.click("li[data-status='waiting'] button.admit")
    await patient.page.wait_for_selector("#step-call:not([hidden])")
    await wait_frames_rising(doc)
    await wait_frames_rising(patient.page)


async def test_patient_who_reloads_mid_call_is_back_in_it_by_itself_and_the_clinician_stays_connected(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    clin = await clinician_page(camera_chromium, clinician, live_server, visit_id)
    doc = clin.page
    patient = await open_patient(camera_chromium, join_url)
    await patient_to_waiting_room(patient)
    # The clinician is already in the visit, and the waiting room says so.
    await patient.page.wait_for_function(
        "() => document.getElementById('waiting-status').textContent.includes('Your clinician is here')"
    )
    await snapshot(patient.page, "recovery-waiting-clinician-here")
    await patient.page.set_viewport_size({"width": 1280, "height": 800})
    await snapshot(patient.page, "recovery-waiting-clinician-here-desktop")
    await patient.page.set_viewport_size({"width": 390, "height": 844})
    await in_call(patient, doc)

    # Reload mid-call (the browser asks first; the patient confirms).
    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        await dialog.accept()

    patient.page.on("dialog", accept)
    await doc.evaluate("() => { window.telehealth.call.old = true; window.telehealth.presences = []; }")
    started = time.monotonic()
    await patient.page.reload()
    await patient.page.wait_for_selector("#step-call:not([hidden])")
    # The clinician's page starts a fresh peer connection by itself; video flows both ways again.
    await doc.wait_for_function(NEW_CALL)
    await wait_frames_rising(doc)
    await wait_frames_rising(patient.page)
    rejoined = time.monotonic() - started
    assert rejoined < 15, f"patient back in the call after {rejoined:.1f} s"
    assert dialogs == ["beforeunload"]
    # No second admission: the patient was never back in the waiting room, and the clinician's
    # socket stayed open throughout.
    presences = await doc.evaluate("() => window.telehealth.presences")
    assert "waiting" not in presences, presences
    statuses = await doc.evaluate("() => window.telehealth.statuses")
    assert "closed" not in statuses and "reconnecting" not in statuses, statuses
    assert await doc.locator("button.admit").count() == 0
    await snapshot(patient.page, "recovery-patient-after-reload")
    await snapshot(doc, "recovery-clinician-after-reload")

    # Even a socket the server closes for misbehaviour comes back with back-off, saying so, and
    # the call carries on.
    await doc.evaluate("() => { for (let i = 0; i < 12; i += 1) window.telehealth.signal.ws.send('garbage'); }")
    await doc.wait_for_function("() => document.getElementById('signal-status').textContent.includes('Reconnecting')")
    await snapshot(doc, "recovery-clinician-reconnecting")
    await doc.set_viewport_size({"width": 390, "height": 844})
    await snapshot(doc, "recovery-clinician-reconnecting-phone")
    await doc.set_viewport_size({"width": 1280, "height": 800})
    await doc.wait_for_function("() => window.telehealth.signal.state === 'open'", timeout=30_000)
    assert await doc.text_content("#signal-status") == "Connected"
    await doc.evaluate("() => { window.telehealth.call.old = true; }")
    frames = await wait_frames_rising(doc)
    await wait_frames_rising(doc, above=frames)
    assert patient.js_errors == []
    assert clin.js_errors == []
    await doc.context.close()
    await patient.context.close()


async def test_second_tab_takes_over_and_closing_the_tab_asks_first_then_the_patient_is_gone_within_5_s(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    clin = await clinician_page(camera_chromium, clinician, live_server, visit_id)
    doc = clin.page
    first = await open_patient(camera_chromium, join_url)
    await patient_to_waiting_room(first)
    await in_call(first, doc)

    # The same link in a second tab: consent is not asked again, the new tab goes straight into the
    # call, the old one says where the visit went.
    await doc.evaluate("() => { window.telehealth.call.old = true; }")
    tab = await first.context.new_page()
    second = PatientPage(first.context, tab)
    tab.on("pageerror", lambda exc: second.js_errors.append(str(exc)))
    await tab.goto(join_url)
    await tab.click("#verify-continue")
    await tab.wait_for_selector("#step-devices:not([hidden])")
    await tab.click("#start-camera")
    await tab.click("#to-waiting")
    await tab.wait_for_selector("#step-call:not([hidden])")
    await first.page.wait_for_selector("#step-ended:not([hidden])")
    assert (await first.page.text_content("#ended-title")) == "Opened in another tab"
    await snapshot(first.page, "recovery-old-tab")
    await first.page.set_viewport_size({"width": 1280, "height": 800})
    await snapshot(first.page, "recovery-old-tab-desktop")
    await doc.wait_for_function(NEW_CALL)
    await wait_frames_rising(doc)
    await wait_frames_rising(tab)
    assert await doc.locator("#participants li[data-participant]").count() == 1
    _, visit = await clinician.api("GET", f"/api/visits/{visit_id}")
    assert visit["consent_capture"] is True

    # Closing the tab during the call asks first; staying keeps the call.
    dialogs: list[Dialog] = []

    async def stay(dialog: Dialog) -> None:
        dialogs.append(dialog)
        await dialog.dismiss()

    tab.on("dialog", stay)
    await tab.close(run_before_unload=True)
    await tab.wait_for_timeout(500)
    assert [d.type for d in dialogs] == ["beforeunload"]
    assert not tab.is_closed()
    await wait_frames_rising(doc, above=(await wait_frames_rising(doc)))

    # The clinician's page asks too.
    doc_dialogs: list[str] = []

    async def doc_stay(dialog: Dialog) -> None:
        doc_dialogs.append(dialog.type)
        await dialog.dismiss()

    doc.on("dialog", doc_stay)
    await doc.close(run_before_unload=True)
    await doc.wait_for_timeout(500)
    assert doc_dialogs == ["beforeunload"] and not doc.is_closed()

    # Leaving for real: the clinician sees the patient gone within 5 s, not after 30.
    tab.remove_listener("dialog", stay)
    tab.on("dialog", lambda d: d.accept())
    started = time.monotonic()
    await tab.close(run_before_unload=True)
    await doc.wait_for_selector("#participants li[data-participant]", state="detached", timeout=10_000)
    assert time.monotonic() - started < 5.0
    assert first.js_errors == [] and second.js_errors == []
    assert clin.js_errors == []
    await doc.context.close()
    await first.context.close()
