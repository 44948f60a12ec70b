"""Benchmark call set-up on loopback: how soon the clinician sees the patient (goal <= 1.0 s).

Run:  PYTHONPATH=. /work/main/.venv/bin/python bench/call.py [--runs 5]

The server is the real app (`create_app`) on an aiohttp AppRunner on a free 127.0.0.1 port, with a
temporary SQLite database and var directory seeded through `telehealth.records`. Debian Chromium
(headless, the fake 1280x720 face camera of the browser tests) plays both people. Every run uses a
fresh visit and fresh browser contexts. The human steps are automated from inside the pages (a
MutationObserver clicks each step the moment it appears), so no Playwright round trip is counted:
  (a) admit click -> first remote frame presented at the clinician (requestVideoFrameCallback on #remote);
  (b) patient navigation start (performance.timeOrigin) -> that same frame, with the patient's identity,
      consent, camera and waiting-room steps and the clinician's admit all taken at once;
  (c) baseline: two RTCPeerConnections in one page, connected directly (no server, no signaling),
      same fake camera and the app's media settings (camera constraints, call.js withBitrateHints on
      both descriptions, the sender tuning of tuneSender): createOffer -> first remote frame presented.
  (d) three-way: once (a)'s call runs, an interpreter opens an invite link (device check and waiting
      room clicked at once by the page) and the clinician admits them: admit click -> first frame
      presented at the interpreter from the clinician (#remote) and from the patient (their tile).
Timestamps are performance.timeOrigin + now in each page (one machine clock). It also reports the
remote video's size at the first frame, 1 s and 3 s later.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from telehealth.app import create_app
from telehealth.records import participants, visits
from telehealth.records.accounts import create_user
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.migrate import upgrade
from telehealth.records.models import AffectedSide, Role
from telehealth.records.patients import create_patient
from telehealth.records.types import utcnow
from telehealth.settings import Settings
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.fakecam import write_y4m

GOAL_S = 1.0
RUN_TIMEOUT_MS = 30_000
PASSWORD = secrets.token_urlsafe(12)

# Shared by both pages: watch #remote and record the first frame, and the frame size 1 s and 3 s later.
FRAME_WATCH_JS = """
window.__watchFrames = (video, B) => {
  const onFrame = (now, meta) => {
    const t = performance.timeOrigin + now;
    if (!B.first) B.first = {t, w: meta.width, h: meta.height};
    const dt = t - B.first.t;
    if (!B.hd && meta.height >= 720) B.hd = {dt};
    if (!B.at1 && dt >= 1000) B.at1 = {w: meta.width, h: meta.height};
    if (!B.at3 && dt >= 3000) { B.at3 = {w: meta.width, h: meta.height}; return; }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
};
"""

CLINICIAN_JS = (
    FRAME_WATCH_JS
    + """
(() => {
  // The server may refuse an admit sent right after the patient arrives ("visit cannot go from
  // scheduled to in_call": its "waiting" write is not committed yet). A person would click again;
  // so does this, counting the refusals. admitAt is the click that worked, firstAdmitAt the first.
  const B = window.__bench = {admitAt: null, firstAdmitAt: null, refused: 0, errors: [], pending: false};
  const click = (button) => {
    const err = document.getElementById("call-error");
    err.hidden = true;
    err.textContent = "";
    B.admitAt = performance.timeOrigin + performance.now();
    if (B.firstAdmitAt === null) B.firstAdmitAt = B.admitAt;
    B.pending = true;
    button.click();
  };
  new MutationObserver(() => {
    const admit = document.querySelector("li[data-status='waiting'] button.admit");
    const err = document.getElementById("call-error");
    if (!admit) return;
    if (B.firstAdmitAt === null) click(admit);
    else if (B.pending && err && !err.hidden) {
      B.pending = false;
      B.refused += 1;
      B.errors.push(err.textContent);
      setTimeout(() => click(admit), 20);
    }
  }).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["hidden"]});
  document.addEventListener("DOMContentLoaded", () => {
    const remote = document.getElementById("remote");  // absent on the sign-in page
    if (remote) window.__watchFrames(remote, B);
  });
})();
"""
)

PATIENT_JS = """
(() => {
  const B = window.__bench = {marks: {}};
  const $ = (id) => document.getElementById(id);
  const shown = (id) => $(id) !== null && $(id).closest("[hidden]") === null;
  const once = (name, act) => {
    if (name in B.marks) return;
    B.marks[name] = performance.timeOrigin + performance.now();
    act();
  };
  new MutationObserver(() => {
    if (shown("verify-form")) once("verify", () => $("verify-continue").click());
    if (shown("step-consent")) {
      once("consent", () => { $("consent-name").value = "Bench Patient"; $("consent-agree").click(); });
    }
    if (shown("step-devices")) once("camera", () => $("start-camera").click());
    if (shown("to-waiting")) once("waiting", () => $("to-waiting").click());
    if (shown("step-call")) once("call", () => {});
  }).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["hidden"]});
})();
"""

GUEST_JS = (
    FRAME_WATCH_JS
    + """
(() => {
  const B = window.__bench = {marks: {}, clinician: {}, patient: {}};
  const $ = (id) => document.getElementById(id);
  const shown = (id) => $(id) !== null && $(id).closest("[hidden]") === null;
  const once = (name, act) => {
    if (name in B.marks) return;
    B.marks[name] = performance.timeOrigin + performance.now();
    act();
  };
  new MutationObserver(() => {
    if (shown("verify-form")) once("verify", () => $("verify-continue").click());
    if (shown("step-devices")) once("camera", () => $("start-camera").click());
    if (shown("to-waiting")) once("waiting", () => $("to-waiting").click());
    if (shown("step-call")) once("call", () => window.__watchFrames($("remote"), B.clinician));
    const tile = document.querySelector("#tiles video");
    if (tile && !B.tileWatched) { B.tileWatched = true; window.__watchFrames(tile, B.patient); }
  }).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["hidden"]});
})();
"""
)

# Clicks the interpreter's Admit on the clinician's page the moment it appears; returns the click time.
ADMIT_GUEST_JS = """
() => new Promise((resolve) => {
  const tryClick = () => {
    const admit = document.querySelector("li[data-role='interpreter'][data-status='waiting'] button.admit");
    if (!admit) return false;
    const t = performance.timeOrigin + performance.now();
    admit.click();
    resolve(t);
    return true;
  };
  if (tryClick()) return;
  const obs = new MutationObserver(() => { if (tryClick()) obs.disconnect(); });
  obs.observe(document, {subtree: true, childList: true, attributes: true});
})
"""

BASELINE_HTML = "<!doctype html><html><body><video id='remote' autoplay playsinline muted></video></body></html>"
BASELINE_JS = """
async () => {
  const { openCamera } = await import("/static/media.js");
  const { withBitrateHints } = await import("/static/call.js");  // the app's start-bitrate hint, as in a call
  const stream = await openCamera("user");  // the app's own camera constraints; opened before timing, as in a call
  const B = {};
  const video = document.getElementById("remote");
  window.__watchFrames(video, B);
  const t0 = performance.timeOrigin + performance.now();
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => a.addIceCandidate(e.candidate);
  b.ontrack = (e) => { if (!video.srcObject) video.srcObject = e.streams[0]; };
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription({type: "offer", sdp: withBitrateHints(offer.sdp)});
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription({type: "answer", sdp: withBitrateHints(answer.sdp)});
  // As call.js tuneSender does once the answer is in: keep resolution under CPU pressure, 2.5 Mbit/s cap.
  const sender = a.getSenders().find((x) => x.track && x.track.kind === "video");
  const params = sender.getParameters();
  if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
  params.encodings[0].maxBitrate = 2500 * 1000;
  params.degradationPreference = "maintain-resolution";
  await sender.setParameters(params).catch(() => {});
  while (!B.at3) await new Promise((r) => setTimeout(r, 50));
  a.close(); b.close(); stream.getTracks().forEach((t) => t.stop());
  return {ms: B.first.t - t0, first: [B.first.w, B.first.h], at1: [B.at1.w, B.at1.h], at3: [B.at3.w, B.at3.h],
          hd_ms: B.hd ? B.hd.dt : null};
}
"""


@dataclass
class Run:
    """One measured visit."""

    admit_to_frame_ms: float
    first_admit_to_frame_ms: float
    admits_refused: int
    refusal_texts: list[str]
    load_to_frame_ms: float
    steps_ms: dict[str, float]
    sizes: dict[str, tuple[int, int]]
    hd_after_first_ms: float | None
    baseline_ms: float
    baseline_sizes: dict[str, tuple[int, int]]
    third_from_clinician_ms: float
    third_from_patient_ms: float


async def seed(settings: Settings) -> str:
    """Migrate the temp database and create the clinician; returns the clinician's user id."""
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            user = await create_user(db, "clinician", "Dr. Bench", Role.CLINICIAN, PASSWORD)
            return str(user.id)
    finally:
        await engine.dispose()


async def new_visit(settings: Settings, clinician_id: str, n: int) -> tuple[str, str]:
    """A fresh patient and visit now, with a join link; returns (visit id, join path)."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            patient = await create_patient(
                db,
                mrn=f"BENCH-{n}-{secrets.token_hex(3)}",
                given_name="Bench",
                family_name=f"Patient{n}",
                birth_date=date(1984, 3, 9),
                affected_side=AffectedSide.LEFT,
                created_by=uuid.UUID(clinician_id),
            )
            visit = await visits.schedule_visit(
                db, patient_id=patient.id, clinician_id=uuid.UUID(clinician_id), scheduled_at=utcnow()
            )
            token = visits.issue_join_link(visit, valid_hours=1)
            return str(visit.id), f"/join/{token}"
    finally:
        await engine.dispose()


async def new_invite(settings: Settings, clinician_id: str, visit_id: str) -> str:
    """An interpreter's invite link for the visit; returns its path."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            visit = await visits.get_visit(db, uuid.UUID(visit_id))
            _, token = participants.issue_invite(
                db,
                visit,
                role="interpreter",
                display_name="Bench Interpreter",
                created_by=uuid.UUID(clinician_id),
                valid_hours=1,
            )
            return f"/invite/{token}"
    finally:
        await engine.dispose()


async def third_participant(
    browser: Browser, settings: Settings, base: str, clinician_id: str, visit_id: str, doc: Page
) -> tuple[BrowserContext, float, float]:
    """(d): an interpreter joins the running call; admit click -> first frame from the clinician and the patient."""
    invite_path = await new_invite(settings, clinician_id, visit_id)
    context = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    context.set_default_timeout(RUN_TIMEOUT_MS)
    await context.add_init_script(GUEST_JS)
    guest = await context.new_page()
    await guest.goto(f"{base}{invite_path}")
    admit_at: float = await doc.evaluate(ADMIT_GUEST_JS)
    await guest.wait_for_function(
        "() => window.__bench.clinician.first && window.__bench.patient.first", timeout=RUN_TIMEOUT_MS
    )
    g: dict[str, Any] = await guest.evaluate("window.__bench")
    return context, g["clinician"]["first"]["t"] - admit_at, g["patient"]["first"]["t"] - admit_at


async def clinician_page(browser: Browser, base: str, visit_id: str) -> tuple[BrowserContext, Page]:
    """A fresh clinician context signed in through the form, on the visit page with its camera on."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(RUN_TIMEOUT_MS)
    await context.add_init_script(CLINICIAN_JS)
    page = await context.new_page()
    await page.goto(f"{base}/visit/{visit_id}")
    await page.wait_for_selector("#login-form")
    await page.fill("#username", "clinician")
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"{base}/visit/{visit_id}")
    await page.wait_for_selector("body[data-ready='true']")
    return context, page


async def baseline(browser: Browser, base: str) -> dict[str, Any]:
    """Two peer connections in one page, no server: createOffer -> first remote frame."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await context.add_init_script(FRAME_WATCH_JS)
        # A page of the app's origin (camera allowed on http://127.0.0.1) served by Playwright itself.
        await page.route(f"{base}/bench-baseline", lambda r: r.fulfill(body=BASELINE_HTML, content_type="text/html"))
        await page.goto(f"{base}/bench-baseline")
        result: dict[str, Any] = await page.evaluate(BASELINE_JS)
        return result
    finally:
        await context.close()


async def one_run(browser: Browser, settings: Settings, base: str, clinician_id: str, n: int) -> Run:
    """One visit: clinician waiting on the visit page, patient opens the link, everything clicked at once."""
    visit_id, join_path = await new_visit(settings, clinician_id, n)
    contexts: list[BrowserContext] = []
    try:
        doc_context, doc = await clinician_page(browser, base, visit_id)
        contexts.append(doc_context)
        patient_context = await browser.new_context(
            viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
        )
        contexts.append(patient_context)
        patient_context.set_default_timeout(RUN_TIMEOUT_MS)
        await patient_context.add_init_script(PATIENT_JS)
        patient = await patient_context.new_page()
        await patient.goto(f"{base}{join_path}")
        try:
            await doc.wait_for_function("() => window.__bench.at3", timeout=RUN_TIMEOUT_MS)
        except Exception as exc:
            seen = await patient.evaluate("[document.body.dataset.step, window.__bench.marks]")
            seen.append(await doc.text_content("#call-error"))
            raise RuntimeError(
                f"run {n} stuck: clinician {await doc.evaluate('window.__bench')}, patient {seen}"
            ) from exc
        d: dict[str, Any] = await doc.evaluate("window.__bench")
        p: dict[str, Any] = await patient.evaluate("({nav: performance.timeOrigin, marks: window.__bench.marks})")
        guest_context, third_doc, third_pat = await third_participant(
            browser, settings, base, clinician_id, visit_id, doc
        )
        contexts.append(guest_context)
    finally:
        for context in contexts:
            await context.close()
    first = d["first"]["t"]
    marks = p["marks"]
    steps = {
        "page load -> identity step shown": marks["verify"] - p["nav"],
        "identity -> consent shown": marks["consent"] - marks["verify"],
        "consent -> device step shown": marks["camera"] - marks["consent"],
        "start camera -> camera on": marks["waiting"] - marks["camera"],
        "join waiting room -> first admit click": d["firstAdmitAt"] - marks["waiting"],
        "first admit click -> admit accepted (retries)": d["admitAt"] - d["firstAdmitAt"],
        "accepted admit click -> call shown to patient": marks["call"] - d["admitAt"],
        "accepted admit click -> first frame at clinician": first - d["admitAt"],
    }
    b = await baseline(browser, base)
    return Run(
        admit_to_frame_ms=first - d["admitAt"],
        first_admit_to_frame_ms=first - d["firstAdmitAt"],
        admits_refused=d["refused"],
        refusal_texts=d["errors"],
        load_to_frame_ms=first - p["nav"],
        steps_ms=steps,
        sizes={k: (d[k]["w"], d[k]["h"]) for k in ("first", "at1", "at3")},
        hd_after_first_ms=d["hd"]["dt"] if d.get("hd") else None,
        baseline_ms=b["ms"],
        baseline_sizes={"first": tuple(b["first"]), "at1": tuple(b["at1"]), "at3": tuple(b["at3"])},
        third_from_clinician_ms=third_doc,
        third_from_patient_ms=third_pat,
    )


def _fmt_size(s: tuple[int, int]) -> str:
    return f"{s[0]}x{s[1]}"


def report(runs: list[Run]) -> None:
    """Print p50 and max of each figure, and how it compares with the 1.0 s goal."""

    def p50max(values: list[float]) -> str:
        return f"p50 {statistics.median(values) / 1000:.3f} s   max {max(values) / 1000:.3f} s"

    a = [r.admit_to_frame_ms for r in runs]
    b = [r.load_to_frame_ms for r in runs]
    c = [r.baseline_ms for r in runs]
    print(f"\n== {len(runs)} runs, loopback, real app + Debian Chromium (fake camera 1280x720@30) ==")
    print(f"(a) admit click -> first frame at clinician:        {p50max(a)}   goal <= {GOAL_S:.1f} s")
    print(f"(b) patient page load -> first frame at clinician:  {p50max(b)}   (all human steps instant)")
    print(f"(c) baseline, 2 peer connections in 1 page:         {p50max(c)}")
    print(f"    ratio (a)/(c) of the medians: {statistics.median(a) / statistics.median(c):.2f}")
    d_doc = [r.third_from_clinician_ms for r in runs]
    d_pat = [r.third_from_patient_ms for r in runs]
    print(f"(d) three-way: admit of a third participant -> their first frame from the clinician: {p50max(d_doc)}")
    print(f"                                              -> their first frame from the patient:   {p50max(d_pat)}")
    refused = [r for r in runs if r.admits_refused]
    if refused:
        extra = [r.first_admit_to_frame_ms for r in refused]
        print(
            f"    admit refused by the server at first ('scheduled -> in_call') in {len(refused)} of {len(runs)} runs "
            f"({sum(r.admits_refused for r in refused)} refusals); first click -> first frame there: {p50max(extra)}"
        )
        print(f"    refusal messages: {sorted({t for r in refused for t in r.refusal_texts})}")
    print("\n(b) broken down (p50 / max, ms):")
    for name in runs[0].steps_ms:
        values = [r.steps_ms[name] for r in runs]
        print(f"    {name:<50} {statistics.median(values):7.0f} / {max(values):7.0f}")
    print("\nremote video size at the clinician (first frame / +1 s / +3 s), per run:")
    for i, r in enumerate(runs, 1):
        hd = f"{r.hd_after_first_ms / 1000:.2f} s" if r.hd_after_first_ms is not None else "not within 3 s"
        sizes = " / ".join(_fmt_size(r.sizes[k]) for k in ("first", "at1", "at3"))
        base = " / ".join(_fmt_size(r.baseline_sizes[k]) for k in ("first", "at1", "at3"))
        print(f"    run {i}: {sizes:<32} 720p reached after {hd:<15} baseline: {base}")
    verdict = (
        "MEETS" if max(a) <= GOAL_S * 1000 else ("median meets" if statistics.median(a) <= GOAL_S * 1000 else "MISSES")
    )
    print(
        f"\n(a) vs goal {GOAL_S:.1f} s: {verdict} (p50 {statistics.median(a) / 1000:.3f} s, max {max(a) / 1000:.3f} s)"
    )


async def bench(runs: int) -> list[Run]:
    """Start the app and Chromium, measure `runs` visits, stop everything."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian chromium is required (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="call-bench-"))
    var = work / "var"
    var.mkdir()
    settings = Settings(
        var_dir=var,
        database_url=f"sqlite+aiosqlite:///{work / 'db.sqlite3'}",
        media_dir=var / "media",
        secret_key=secrets.token_urlsafe(32),
    )
    camera = write_y4m(work / "face.y4m")
    runner = web.AppRunner(create_app(settings))
    results: list[Run] = []
    try:
        clinician_id = await seed(settings)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        args = [
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
        ]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=args)
            try:
                for n in range(1, runs + 1):
                    async with asyncio.timeout(150):  # three browsers on a loaded machine
                        run = await one_run(browser, settings, base, clinician_id, n)
                    results.append(run)
                    print(
                        f"run {n}: (a) {run.admit_to_frame_ms:6.0f} ms  (b) {run.load_to_frame_ms:6.0f} ms  "
                        f"(c) {run.baseline_ms:6.0f} ms  first frame {_fmt_size(run.sizes['first'])}  "
                        f"admits refused {run.admits_refused}  (d) {run.third_from_clinician_ms:6.0f} / "
                        f"{run.third_from_patient_ms:6.0f} ms",
                        flush=True,
                    )
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="visits to measure (default 5)")
    args = parser.parse_args()
    report(asyncio.run(bench(args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
