"""A three-way call in real Chromium: the clinician invites an interpreter by link, admits, chats, removes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tests.browser.calls import PatientPage, open_patient, patient_to_waiting_room, visit_with_link, wait_frames_rising
from tests.browser.conftest import BrowserSession, base_url

TIMEOUT_S = 60.0  # three browsers encoding twice each on a loaded 2-core machine


async def mesh_frames(page: Page) -> dict[str, int]:
    """Decoded video frames per peer connection of the page's mesh."""
    result: dict[str, int] = await page.evaluate(
        """async () => {
            const out = {};
            const mesh = window.telehealth && window.telehealth.mesh;
            if (!mesh) return out;
            for (const [peer, call] of mesh.calls) {
              let decoded = 0;
              (await call.pc.getStats()).forEach((s) => {
                if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0;
              });
              out[peer] = decoded;
            }
            return out;
        }"""
    )
    return result


async def wait_mesh_frames(page: Page, peers: int, *, timeout_s: float = TIMEOUT_S) -> dict[str, int]:
    """Wait until the page has decoded video frames from each of `peers` peers."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await mesh_frames(page)
        # A few frames per pair prove each connection carries decodable video; a loaded machine
        # may run at a low frame rate ("maintain-resolution" drops frames before pixels).
        if len(last) == peers and all(n > 2 for n in last.values()):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not every peer's video is decoded: {last}")


async def refused(page: Page, message: dict[str, Any]) -> str:
    """Send a raw signaling message from the page and return the error code the server answers with."""
    code: str = await page.evaluate(
        """(message) => new Promise((resolve) => {
            const signal = window.telehealth.signal;
            const id = "probe" + Math.random().toString(36).slice(2, 8);
            signal.addEventListener("error", (ev) => { if (ev.detail.ref === id) resolve(ev.detail.code); });
            signal.sendRaw({ ...message, id });
        })""",
        message,
    )
    return code


async def test_an_invited_interpreter_joins_a_three_way_call_chats_and_is_removed(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
    snapshot: Callable[..., Awaitable[None]],
) -> None:
    clinician = await signed_in("clinician", next_path="/")
    visit_id, join_url = await visit_with_link(clinician)
    patient = await open_patient(camera_chromium, join_url)
    await patient_to_waiting_room(patient)

    context = await camera_chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    await context.add_cookies(await clinician.context.cookies())
    doc = await context.new_page()
    doc_errors: list[str] = []
    doc.on("pageerror", lambda exc: doc_errors.append(str(exc)))
    await doc.goto(f"{base_url(live_server)}/visit/{visit_id}")
    await doc.click("li[data-status='waiting'] button.admit")
    await patient.page.wait_for_selector("#step-call:not([hidden])")
    await wait_frames_rising(doc)

    # The clinician invites an interpreter from the call; the link names the role.
    await doc.select_option("#invite-role", "interpreter")
    await doc.fill("#invite-name", "Lou Haddad")
    await doc.click("#invite-create")
    await doc.wait_for_selector("#invite-result:not([hidden])")
    invite_url = await doc.input_value("#invite-link")
    assert "/invite/" in invite_url
    await snapshot(doc, "threeway-invite-desktop")

    # The interpreter passes the same device check and waiting room.
    lou = await open_patient(camera_chromium, invite_url)
    await lou.page.wait_for_selector("#verify-continue")
    assert "interpreter" in await lou.page.inner_text("#visit-summary")
    await snapshot(lou.page, "threeway-invite-phone")
    await lou.page.click("#verify-continue")
    await lou.page.click("#start-camera")
    await lou.page.click("#to-waiting")
    await lou.page.wait_for_selector("#step-waiting:not([hidden])")
    await lou.page.wait_for_function("() => window.telehealth.signal.me !== null")
    assert await refused(lou.page, {"type": "chat", "text": "hello?"}) == "forbidden"

    await doc.click("li[data-role='interpreter'][data-status='waiting'] button.admit")
    await lou.page.wait_for_selector("#step-call:not([hidden])")
    # A mesh: every side decodes video from both others.
    for page in (doc, patient.page, lou.page):
        await wait_mesh_frames(page, 2)
    await lou.page.wait_for_selector("#tiles:not([hidden]) figure.tile video")
    await snapshot(doc, "threeway-clinician-desktop")
    await snapshot(patient.page, "threeway-patient-phone")
    await snapshot(lou.page, "threeway-interpreter-phone")

    # The interpreter has no capture panel and the server refuses its capture messages.
    assert await lou.page.query_selector("#capture-panel") is None
    patient_id = await patient.page.evaluate("window.telehealth.signal.me.participant_id")
    assert await refused(lou.page, {"type": "capture_start", "peer": patient_id}) == "forbidden"

    # Chat reaches everyone admitted.
    await patient.page.click("#chat-toggle")
    await patient.page.fill("#chat-input", "Okafor, with a K")
    await patient.page.click("#chat-send")
    for page in (doc, patient.page):
        await page.wait_for_selector(".chat-log li:has-text('Okafor, with a K')")
    # The interpreter's chat is closed: the line is there and the Chat button says something is unread.
    await lou.page.wait_for_selector(".chat-log li:has-text('Okafor, with a K')", state="attached")
    await lou.page.wait_for_selector("#chat-toggle[data-unread='true']")
    await snapshot(patient.page, "threeway-chat-phone")

    # The clinician removes the interpreter: their page ends, the others' tiles go, the link is dead.
    await doc.click("li[data-role='interpreter'] button.remove")
    await lou.page.wait_for_selector("#step-ended:not([hidden])")
    assert "removed" in await lou.page.inner_text("#ended-title")
    await doc.wait_for_selector("li[data-role='interpreter']", state="detached")
    await patient.page.wait_for_selector("#tiles figure.tile", state="detached")
    token = invite_url.rsplit("/", 1)[1]
    status = await doc.evaluate("async (t) => (await fetch('/api/invite/' + t)).status", token)
    assert status == 410
    await wait_frames_rising(patient.page)  # the two-way call goes on

    _, roster = await clinician.api("GET", f"/api/visits/{visit_id}/participants")
    roles = {p["role"] for p in roster["participants"]}
    assert roles == {"clinician", "patient", "interpreter"}
    assert lou.js_errors == [] and patient.js_errors == [] and doc_errors == []
    await context.close()
    for p in (patient, lou):
        await close(p)


async def close(page: PatientPage) -> None:
    """Close a participant's browser context."""
    await page.context.close()
