"""The visit in real Chromium: join link -> consent -> device check -> waiting -> admitted -> HD call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from tests.browser.calls import (
    open_patient,
    patient_to_waiting_room,
    remote_frames,
    visit_with_link,
    wait_frames_rising,
)
from tests.browser.conftest import BrowserSession, base_url


async def test_patient_joins_waits_is_admitted_and_both_see_video_then_recovers(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    patient = await open_patient(camera_chromium, join_url)

    overflow = await patient_to_waiting_room(patient)
    assert overflow == [], f"horizontal scrolling at a 375 px phone width on: {overflow}"

    # The dashboard shows the patient waiting, live.
    await clinician.page.wait_for_selector(f"tr[data-visit-id='{visit_id}'].is-waiting")
    await snapshot(clinician.page, "dashboard-waiting")

    # The clinician opens the visit (with its own camera-enabled context) and admits.
    context = await camera_chromium.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    doc_errors: list[str] = []
    doc.on("pageerror", lambda exc: doc_errors.append(str(exc)))
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.wait_for_selector("li[data-status='waiting'] button.admit")
    await doc.click("li[data-status='waiting'] button.admit")

    await patient.page.wait_for_selector("#step-call:not([hidden])")
    doc_frames = await wait_frames_rising(doc)
    pat_frames = await wait_frames_rising(patient.page)
    doc_stats = await remote_frames(doc)
    assert doc_stats["width"] > 0 and doc_stats["height"] > 0
    await snapshot(doc, "clinician-call")
    await snapshot(patient.page, "patient-call")
    assert await patient.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # Self-view is mirrored on screen only; the remote view is not.
    self_transform = await patient.page.eval_on_selector("#self", "e => getComputedStyle(e).transform")
    assert self_transform.startswith("matrix(-1, 0, 0, 1"), self_transform
    assert await patient.page.eval_on_selector("#remote", "e => getComputedStyle(e).transform") == "none"

    # The patient's network drops: the page shows it is reconnecting, then the call carries on.
    # Chromium's offline emulation blocks new connections but leaves an open WebSocket alone, so the
    # socket the network would have killed is dropped by hand (from the page, as a network error would).
    await patient.context.set_offline(True)
    await patient.page.evaluate("() => window.telehealth.signal.ws.close(4999, 'network cut')")
    await patient.page.wait_for_selector("#reconnecting:not([hidden])")
    await patient.context.set_offline(False)
    await patient.page.wait_for_selector("#reconnecting", state="hidden")
    await wait_frames_rising(doc, above=doc_frames)
    await wait_frames_rising(patient.page, above=pat_frames)
    assert patient.js_errors == []
    assert doc_errors == []

    # The clinician ends the visit: the patient sees the end screen and the visit is ended.
    doc.on("dialog", lambda d: d.accept())
    await doc.click("#hangup")
    await patient.page.wait_for_selector("#step-ended:not([hidden])")
    _, visit = await clinician.api("GET", f"/api/visits/{visit_id}")
    assert visit["state"] == "ended"
    await context.close()
    await patient.context.close()


async def test_declined_patient_and_dead_links_get_clear_pages(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    patient = await open_patient(camera_chromium, join_url)
    await patient_to_waiting_room(patient, consent=False)

    context = await camera_chromium.new_context()
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.click("li[data-status='waiting'] button.decline")
    await patient.page.wait_for_selector("#step-ended:not([hidden])")
    assert "could not see you" in (await patient.page.text_content("#ended-title") or "")

    # A revoked link and an unknown link: clear pages, right status codes, no stack trace.
    status, _ = await clinician.api("DELETE", f"/api/visits/{visit_id}/join-link")
    assert status == 200
    page = await context.new_page()
    gone = await page.goto(join_url)
    assert gone is not None and gone.status == 410
    assert "no longer valid" in (await page.text_content("h1") or "").lower()
    unknown = await page.goto(f"{base_url(live_server)}/join/not-a-real-link")
    assert unknown is not None and unknown.status == 404
    await context.close()
    await patient.context.close()
