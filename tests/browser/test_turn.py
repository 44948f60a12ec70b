"""The call through a real TURN relay (coturn on loopback), with both pages forced to `?ice=relay`.

Only on SQLite: the database plays no part in relaying media, so a PostgreSQL run adds time, not coverage.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page

from telehealth.settings import Settings
from tests.browser.calls import PatientPage, open_patient, patient_to_waiting_room, visit_with_link, wait_frames_rising
from tests.browser.conftest import BrowserSession, base_url
from tests.browser.coturn import Coturn, run_coturn, turnserver_path

TURN_TTL_S = 600

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def coturn() -> AsyncIterator[Coturn]:
    """coturn on a free loopback port with a random shared secret; stopped after the test."""
    binary = turnserver_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("coturn's turnserver is required in CI")
        pytest.skip("!!! turnserver (coturn) not installed; TURN browser tests SKIPPED !!!")
    async with run_coturn(secrets.token_urlsafe(24), binary) as server:
        yield server


@pytest.fixture
def app_turn_secret(coturn: Coturn) -> str:
    """The secret the app signs TURN credentials with: coturn's own unless a test overrides it."""
    return coturn.secret


@pytest.fixture
def settings(settings: Settings, coturn: Coturn, app_turn_secret: str) -> Settings:
    """The test settings with coturn as the only ICE server (no STUN, no host candidates in relay mode)."""
    return replace(
        settings,
        stun_urls=(),
        turn_urls=(coturn.url,),
        turn_secret=app_turn_secret,
        turn_ttl_seconds=TURN_TTL_S,
    )


@dataclass
class RelayCall:
    """Both sides of a visit opened with ?ice=relay, the patient admitted."""

    patient: PatientPage
    doc: Page
    doc_context: BrowserContext
    doc_errors: list[str]


@pytest.fixture
async def relay_call(
    camera_chromium: Browser,
    live_server: TestServer,
    signed_in: Callable[..., Awaitable[BrowserSession]],
) -> AsyncIterator[Callable[[], Awaitable[RelayCall]]]:
    """Factory: a visit where the patient goes to the waiting room and the clinician admits, relay-only."""
    contexts: list[BrowserContext] = []

    async def start() -> RelayCall:
        clinician = await signed_in("clinician", next_path="/")
        visit_id, join_url = await visit_with_link(clinician)
        patient = await open_patient(camera_chromium, f"{join_url}?ice=relay")
        contexts.append(patient.context)
        await patient_to_waiting_room(patient)

        context = await camera_chromium.new_context(viewport={"width": 1366, "height": 900})
        contexts.append(context)
        context.set_default_timeout(20_000)
        await context.add_cookies(await clinician.context.cookies())
        doc = await context.new_page()
        doc_errors: list[str] = []
        doc.on("pageerror", lambda exc: doc_errors.append(str(exc)))
        await doc.goto(f"{base_url(live_server)}/visit/{visit_id}?ice=relay")
        await doc.click("li[data-status='waiting'] button.admit")
        await patient.page.wait_for_selector("#step-call:not([hidden])")
        return RelayCall(patient, doc, context, doc_errors)

    yield start
    for context in contexts:
        await context.close()


async def _ice(page: Page) -> dict[str, Any]:
    """The call's ICE view from getStats: states, local candidate types, the selected pair's types."""
    result: dict[str, Any] = await page.evaluate(
        """async () => {
            const call = window.telehealth.call;
            if (!call) return {conn: null, ice: null, localTypes: [], selected: null, errors: []};
            const stats = await call.pc.getStats();
            const localTypes = [];
            let selected = null;
            stats.forEach((s) => {
              if (s.type === "local-candidate") localTypes.push(s.candidateType);
              if (s.type === "transport" && s.selectedCandidatePairId) {
                const pair = stats.get(s.selectedCandidatePairId);
                selected = {state: pair.state, nominated: pair.nominated,
                            local: stats.get(pair.localCandidateId).candidateType,
                            remote: stats.get(pair.remoteCandidateId).candidateType};
              }
            });
            return {conn: call.pc.connectionState, ice: call.pc.iceConnectionState, localTypes, selected,
                    errors: call.candidateErrors};
        }"""
    )
    return result


async def _settled_ice(page: Page) -> dict[str, Any]:
    """The ICE view once the selected pair's checks have succeeded (a consent check may be in flight; 10 s)."""
    ice = await _ice(page)
    for _ in range(50):
        if ice["selected"] is not None and ice["selected"]["state"] == "succeeded":
            break
        await asyncio.sleep(0.2)
        ice = await _ice(page)
    return ice


def _turn_usernames(page_servers: list[dict[str, Any]]) -> list[str]:
    return [s["username"] for s in page_servers if any(u.startswith("turn:") for u in s["urls"])]


def _assert_time_limited(username: str, ttl: int) -> None:
    expiry, _, user = username.partition(":")
    assert expiry.isdigit() and user, f"not a TURN REST API username: {username!r}"
    assert time.time() < int(expiry) <= time.time() + ttl + 1, f"expiry {expiry} not within the next {ttl} s"


async def test_call_connects_through_turn_relay_with_time_limited_credentials(
    relay_call: Callable[[], Awaitable[RelayCall]], coturn: Coturn, snapshot: Callable[..., Awaitable[None]]
) -> None:
    call = await relay_call()
    await wait_frames_rising(call.doc)
    await wait_frames_rising(call.patient.page)
    await snapshot(call.patient.page, "turn-patient-call")

    for side, page in (("clinician", call.doc), ("patient", call.patient.page)):
        ice = await _settled_ice(page)
        assert ice["conn"] == "connected", f"{side}: {ice}"
        assert set(ice["localTypes"]) == {"relay"}, f"{side} gathered non-relay candidates: {ice}"
        assert ice["selected"] is not None, f"{side}: no selected candidate pair: {ice}"
        assert ice["selected"]["state"] == "succeeded" and ice["selected"]["nominated"], f"{side}: {ice}"
        assert ice["selected"]["local"] == "relay", f"{side}: {ice}"
        assert await page.is_hidden("#cannot-connect")

    # The credentials are the server's time-limited ones, and coturn allocated with exactly those.
    allocated = set(re.findall(r"new, realm=<[^>]*>, username=<([^>]+)>", coturn.log()))
    for side, page in (("clinician", call.doc), ("patient", call.patient.page)):
        used = _turn_usernames(await page.evaluate("window.telehealth.iceServers"))
        assert len(used) == 1, f"{side}: {used}"
        _assert_time_limited(used[0], TURN_TTL_S)
        assert used[0] in allocated, f"{side}: coturn never allocated for {used[0]}; it saw {allocated}"

    # GET /api/ice-servers hands out the same kind of credentials (patient: bearer token from the page).
    servers = await call.patient.page.evaluate(
        """async () => (await (await fetch("/api/ice-servers",
             {headers: {Authorization: `Bearer ${window.telehealth.session.token}`}})).json()).ice_servers"""
    )
    fresh = _turn_usernames(servers)
    assert len(fresh) == 1 and servers[0]["urls"] == [coturn.url], servers
    _assert_time_limited(fresh[0], TURN_TTL_S)

    assert call.patient.js_errors == [] and call.doc_errors == []


@pytest.mark.parametrize("app_turn_secret", ["not-the-coturn-secret"])
async def test_wrong_turn_secret_shows_cannot_connect_instead_of_hanging(
    relay_call: Callable[[], Awaitable[RelayCall]], coturn: Coturn, snapshot: Callable[..., Awaitable[None]]
) -> None:
    call = await relay_call()
    # Chromium never marks ICE "failed" here (no candidate pair ever forms): the pages must say so.
    await call.patient.page.wait_for_selector("#cannot-connect:not([hidden])")
    await call.doc.wait_for_selector("#cannot-connect:not([hidden])")
    await snapshot(call.patient.page, "turn-failed-patient")
    await snapshot(call.doc, "turn-failed-clinician")

    assert "cannot connect" in (await call.patient.page.text_content("#cannot-connect") or "").lower()
    assert "401" in (await call.doc.text_content("#cannot-connect") or "")
    for side, page in (("clinician", call.doc), ("patient", call.patient.page)):
        ice = await _ice(page)
        assert ice["conn"] != "connected" and ice["selected"] is None, f"{side}: {ice}"
        assert ice["localTypes"] == [], f"{side} gathered candidates despite the refused TURN: {ice}"
        assert ice["errors"] and {e["code"] for e in ice["errors"]} == {401}, f"{side}: {ice}"
        frames = await page.evaluate(
            """async () => { let n = 0; (await window.telehealth.call.pc.getStats()).forEach((s) => {
                 if (s.type === "inbound-rtp" && s.kind === "video") n = s.framesDecoded || 0; }); return n; }"""
        )
        assert frames == 0, side
    assert "401" in coturn.log()
    assert call.patient.js_errors == [] and call.doc_errors == []
