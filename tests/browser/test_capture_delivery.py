"""Device copies of takes survive a cut patient socket and a reload; the clinician's panel is pushed to."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, Request, Route
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import Capture, MediaFile, Provenance
from telehealth.settings import Settings
from tests.browser.calls import PatientPage, open_patient, patient_to_waiting_room, visit_with_link, wait_frames_rising
from tests.browser.conftest import BrowserSession, base_url

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Protocol:
    """A visit in its capture protocol: the clinician's page, the patient's page, the visit id."""

    doc: Page
    patient: PatientPage
    visit_id: str
    clinician: BrowserSession


async def _wait(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 40) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.3)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


async def _capture(s: BrowserSession, visit_id: str) -> dict[str, Any]:
    code, body = await s.api("GET", f"/api/visits/{visit_id}/capture")
    assert code == 200, body
    return dict(body)


async def _step(s: BrowserSession, visit_id: str, step_id: str) -> dict[str, Any]:
    return next(st for st in (await _capture(s, visit_id))["steps"] if st["id"] == step_id)


async def _device_copies(s: BrowserSession, visit_id: str, step_id: str) -> set[str]:
    """Kinds of the step's current takes whose primary file came from the patient's device."""
    takes = [t for t in (await _step(s, visit_id, step_id))["takes"] if not t["superseded"]]
    return {
        t["kind"]
        for t in takes
        if any(m["provenance"] == "device" and m["is_primary"] and not m["is_thumbnail"] for m in t["media"])
    }


async def _verified_device_files(
    db: async_sessionmaker[AsyncSession], settings: Settings, visit_id: str, step_id: str
) -> set[str]:
    """Content types of the step's device-provenance primary files whose SHA-256 verifies on disk."""
    store = FileMediaStore(settings.media_dir)
    async with db() as s:
        rows = (
            await s.execute(
                select(MediaFile)
                .join(Capture, MediaFile.capture_id == Capture.id)
                .where(
                    Capture.visit_id == uuid.UUID(visit_id),
                    Capture.step_id == step_id,
                    MediaFile.provenance == Provenance.DEVICE,
                    MediaFile.is_primary.is_(True),
                )
            )
        ).scalars()
        files = list(rows)
    return {m.content_type.split("/")[0] for m in files if await store.verify(m.storage_key)}


@pytest.fixture
async def protocol(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
) -> AsyncIterator[Protocol]:
    """Patient admitted, call up, protocol started, the server receiving the stream, on step `rest`."""
    clinician = await signed_in("clinician", next_path="/")
    visit_id, link = await visit_with_link(clinician)
    patient = await open_patient(camera_chromium, link)
    await patient_to_waiting_room(patient, consent=True)
    context = await camera_chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.click("li[data-status='waiting'] button.admit")
    await wait_frames_rising(doc)
    await doc.click("#protocol-start")
    await doc.wait_for_selector("#capture-progress:has-text('stream: receiving')", timeout=30_000)
    await doc.click("#protocol-begin")
    await doc.wait_for_selector("li.step-item.current[data-step='rest']")
    await patient.page.wait_for_function("() => !document.getElementById('instruction').hidden")
    await asyncio.sleep(1.0)  # the device's recording of the step has begun
    yield Protocol(doc, patient, visit_id, clinician)
    await context.close()
    await patient.context.close()


async def test_a_take_reaches_the_device_although_the_patients_socket_drops_during_it(
    protocol: Protocol, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    doc, patient = protocol.doc, protocol.patient.page
    # The patient's socket drops the moment the take command arrives, and stays away for 3 s:
    # the take's record ids (sent once the server answered the click) find no connection.
    await patient.evaluate(
        """() => {
            const signal = window.telehealth.signal;
            signal.addEventListener("capture_take", () => {
                const reconnect = signal.connect.bind(signal);
                signal.connect = () => setTimeout(reconnect, 3000);
                signal.ws.close();
            }, { once: true });
        }"""
    )
    await doc.wait_for_selector("#capture-take:not([disabled])")
    await doc.click("#capture-take")
    await doc.wait_for_selector("li[data-step='rest'] img.thumb")
    # Nothing has acknowledged the ids while the patient is away: the clinician's page holds the take.
    await doc.wait_for_selector("li[data-participant] span:has-text('reconnecting')")
    assert await doc.evaluate("() => window.telehealth.panel.delivery.size") == 1
    await doc.wait_for_selector(
        "li[data-participant][data-status='admitted'] span:has-text('in the call')", timeout=20_000
    )
    await doc.wait_for_function("() => window.telehealth.panel.delivery.size === 0")

    async def device_copies_arrived() -> bool:
        return await _device_copies(protocol.clinician, protocol.visit_id, "rest") == {"still", "clip"}

    await _wait(device_copies_arrived, "the device's still and clip of the take are stored")
    assert await _verified_device_files(db, settings, protocol.visit_id, "rest") == {"image", "video"}
    # The panel shows the device copies without being reloaded (pushed, not polled).
    await doc.wait_for_selector("li[data-step='rest'] .badge[data-kind='still']:has-text('device still ✓')")
    assert protocol.patient.js_errors == []


async def test_a_take_clicked_while_the_patient_is_away_still_brings_the_device_clip_but_no_late_still(
    protocol: Protocol, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    doc, patient = protocol.doc, protocol.patient.page
    await patient.evaluate(
        """() => {
            const signal = window.telehealth.signal;
            const reconnect = signal.connect.bind(signal);
            signal.connect = () => setTimeout(reconnect, 3000);
            signal.ws.close();
        }"""
    )
    await doc.wait_for_selector("li[data-participant] span:has-text('reconnecting')")
    # No 3-2-1 countdown here: the take must be clicked while the patient is still away.
    await doc.uncheck("#countdown")
    await doc.click("#capture-take")  # the take command finds no patient connection
    await doc.wait_for_selector("li[data-step='rest'] img.thumb")  # the stream's still, at the click
    await doc.wait_for_selector(
        "li[data-participant][data-status='admitted'] span:has-text('in the call')", timeout=20_000
    )
    await doc.wait_for_function("() => window.telehealth.panel.delivery.size === 0")

    async def clip_arrived() -> bool:
        return "clip" in await _device_copies(protocol.clinician, protocol.visit_id, "rest")

    await _wait(clip_arrived, "the device's clip of the step (recording since the step began) is stored")
    assert await _verified_device_files(db, settings, protocol.visit_id, "rest") == {"video"}
    # A frame grabbed seconds after the click would show another moment: the stream's still stays
    # primary, and the panel says why the device copy is missing.
    await doc.wait_for_selector("li[data-step='rest'] .badge[data-kind='still']:has-text('device failed')")
    assert await _device_copies(protocol.clinician, protocol.visit_id, "rest") == {"clip"}
    assert protocol.patient.js_errors == []


async def test_a_reload_of_the_patients_page_mid_upload_still_delivers_the_upload(
    protocol: Protocol, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    doc, patient = protocol.doc, protocol.patient
    held: list[Route] = []

    async def hold_first_upload(route: Route) -> None:
        if not held:
            held.append(route)  # never answered: the page is reloaded while it is in flight
        else:
            await route.continue_()

    await patient.context.route("**/api/captures/*/upload", hold_first_upload)
    await doc.wait_for_selector("#capture-take:not([disabled])")
    await doc.click("#capture-take")

    async def both_files_kept() -> bool:
        return bool(held) and await _unsent(patient.page) == 2

    # The still is in flight; both files (the clip after its post-roll) are kept on the device.
    await _wait(both_files_kept, "the first upload is in flight and both files are kept on the device")
    await patient.page.reload()
    with contextlib.suppress(PlaywrightError):  # the reload may already have cancelled the request
        await held[0].abort()

    async def delivered() -> bool:
        return await _device_copies(protocol.clinician, protocol.visit_id, "rest") == {"still", "clip"}

    await _wait(delivered, "the reloaded page delivers the still and the clip")
    assert await _verified_device_files(db, settings, protocol.visit_id, "rest") == {"image", "video"}
    assert await _unsent(patient.page) == 0
    assert patient.js_errors == []


async def test_keyboard_focus_survives_a_pushed_update_and_the_panel_does_not_poll(
    protocol: Protocol, snapshot: Callable[[Page, str], Awaitable[None]]
) -> None:
    doc = protocol.doc
    reads: list[str] = []

    def count(request: Request) -> None:
        if request.method == "GET" and request.url.endswith(f"/api/visits/{protocol.visit_id}/capture"):
            reads.append(request.url)

    doc.on("request", count)
    await doc.focus("li[data-step='smile_open'] .step-name")
    await asyncio.sleep(7)  # several of the old 1.5 s polls, and longer than the fallback poll
    assert reads == [], "the panel read the capture while its socket was open"

    # Someone else changes the capture (here: another tab of the care team skips the step).
    code, body = await protocol.clinician.api(
        "POST", f"/api/visits/{protocol.visit_id}/capture/steps/smile_open/skip", {"reason": "patient unable"}
    )
    assert code == 200, body
    await doc.wait_for_selector("li[data-step='smile_open'][data-done='true'] .step-detail:has-text('skipped')")
    assert await doc.evaluate("() => document.activeElement.matches(\"li[data-step='smile_open'] .step-name\")")
    assert 1 <= len(reads) <= 2, reads  # one read per push (two if a push came mid-read)
    # The focused button still works from the keyboard: Enter chooses that step.
    await doc.keyboard.press("Enter")
    await doc.wait_for_selector("li.step-item.current[data-step='smile_open']")

    await snapshot(doc, "capture-panel-desktop")
    await doc.set_viewport_size(PHONE)
    await snapshot(doc, "capture-panel-phone")


# The number of unsent uploads the patient's page keeps in IndexedDB.
UNSENT_UPLOADS = """() => new Promise((resolve) => {
    const open = indexedDB.open("telehealth-uploads");
    open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("uploads")) { db.close(); resolve(0); return; }
        const count = db.transaction("uploads").objectStore("uploads").count();
        count.onsuccess = () => { db.close(); resolve(count.result); };
    };
})"""


async def _unsent(page: Page) -> int:
    """How many uploads the patient's page still keeps (0 when the store does not exist yet)."""
    count: int = await page.evaluate(UNSENT_UPLOADS)
    return count
