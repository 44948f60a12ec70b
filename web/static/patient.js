// The patient's visit: confirm identity -> consent -> device check -> waiting room -> call -> end.
import { api, ApiError, setBearer, showError } from "./api.js";
import { fingerprint, PeerCall } from "./call.js";
import { explainMediaError, inAppBrowser, mediaSupported, micLevelMeter, openCamera, stopStream, switchCamera, videoInputs } from "./media.js";
import { describeStatus, SignalClient } from "./signal.js";
import { openServerPeer } from "./capturepeer.js";
import { DeviceCapture } from "./devicecapture.js";
import { UploadQueue } from "./uploadqueue.js";

const joinToken = decodeURIComponent(location.pathname.split("/").pop());
const storeKey = `telehealth-session:${joinToken.slice(0, 16)}`;
// How far this tab got ("waiting" or "call"): a reload goes straight back there.
const stageKey = `${storeKey}:stage`;
const iceTransportPolicy = new URLSearchParams(location.search).get("ice") === "relay" ? "relay" : "all";
const $ = (id) => document.getElementById(id);

const state = { info: null, session: null, stream: null, stopMeter: null, signal: null, call: null, clinicianId: null, qualityTimer: null, uploads: null, device: null };
window.telehealth = state; // inspected by the browser tests and handy when supporting a patient

function show(step) {
  for (const s of document.querySelectorAll(".step")) s.hidden = s.id !== step;
  document.body.dataset.step = step;
}

function ended(title, text) {
  cleanup();
  sessionStorage.removeItem(stageKey);
  $("ended-title").textContent = title;
  $("ended-text").textContent = text;
  show("step-ended");
}

function cleanup() {
  clearInterval(state.qualityTimer);
  if (state.serverPeer) state.serverPeer.pc.close();
  if (state.call) state.call.close();
  if (state.signal) state.signal.close();
  if (state.stopMeter) state.stopMeter();
  stopStream(state.stream);
  state.call = null;
}

// ---- 1. who: the link, and the date of birth when the clinic asks for it ----
async function verifyStep() {
  try {
    state.info = await api("GET", `/api/join/${encodeURIComponent(joinToken)}`);
  } catch (err) {
    $("visit-summary").textContent = err.message;
    return;
  }
  const when = new Date(state.info.scheduled_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  $("visit-summary").textContent = `Video visit with ${state.info.clinician_name}, ${when}.`;
  const saved = sessionStorage.getItem(storeKey);
  if (saved) {
    setBearer(JSON.parse(saved).token);
    try {
      const visit = await api("GET", "/api/patient/visit");
      state.session = JSON.parse(saved);
      startUploads(); // a reload mid-upload: finish what the previous page left unsent
      if (visit.consent_capture === null) return consentStep();
      return deviceStep({ rejoin: Boolean(sessionStorage.getItem(stageKey)) });
    } catch {
      sessionStorage.removeItem(storeKey);
      setBearer(null);
    }
  }
  const form = $("verify-form");
  form.hidden = false;
  $("dob-label").hidden = !state.info.requires_dob;
  $("dob").required = state.info.requires_dob;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = form.querySelector(".error");
    box.hidden = true;
    try {
      const body = state.info.requires_dob ? { birth_date: $("dob").value } : {};
      state.session = await api("POST", `/api/join/${encodeURIComponent(joinToken)}/session`, body);
      sessionStorage.setItem(storeKey, JSON.stringify(state.session));
      setBearer(state.session.token);
      startUploads();
      // Answered already (e.g. in another tab): never ask again and never change it silently.
      const visit = await api("GET", "/api/patient/visit");
      if (visit.consent_capture === null) consentStep();
      else deviceStep();
    } catch (err) {
      showError(box, err);
    }
  });
}

// ---- 2. consent to photo and video capture (declining still allows the call) ----
function consentStep() {
  show("step-consent");
  $("consent-text").textContent = state.info.consent_text;
  const form = $("consent-form");
  const box = form.querySelector(".error");
  const answer = async (capture) => {
    box.hidden = true;
    const name = $("consent-name").value.trim();
    if (!name) {
      box.textContent = "Please type your full name.";
      box.hidden = false;
      return;
    }
    try {
      await api("POST", "/api/patient/consent", { capture, consent_version: state.info.consent_version, signed_name: name });
      deviceStep();
    } catch (err) {
      showError(box, err);
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    answer(true);
  });
  $("consent-decline").addEventListener("click", () => answer(false));
}

// ---- 3. device check: camera started from a tap, mirrored preview, microphone meter ----
function deviceStep({ rejoin = false } = {}) {
  show("step-devices");
  const errorBox = $("device-error");
  if (inAppBrowser()) $("inapp-warning").hidden = false;
  if (!mediaSupported()) {
    errorBox.textContent = "This browser cannot make video calls. Please open the link in Safari, Chrome, Firefox or Edge.";
    errorBox.hidden = false;
    $("start-camera").hidden = true;
    return;
  }
  const start = async () => {
    errorBox.hidden = true;
    try {
      stopStream(state.stream);
      state.stream = await openCamera("user");
    } catch (err) {
      errorBox.textContent = explainMediaError(err);
      errorBox.hidden = false;
      $("start-camera").textContent = "Try again";
      return;
    }
    $("preview").srcObject = state.stream;
    if (state.stopMeter) state.stopMeter();
    state.stopMeter = micLevelMeter(state.stream, (level) => {
      $("mic-level").style.width = `${Math.round(level * 100)}%`;
    });
    $("start-camera").hidden = true;
    $("to-waiting").hidden = false;
    $("switch-camera").hidden = (await videoInputs()).length < 2;
  };
  $("start-camera").addEventListener("click", start);
  $("switch-camera").addEventListener("click", async () => {
    const senders = [...(state.call ? state.call.pc.getSenders() : []), ...(state.serverPeer ? [state.serverPeer.sender] : [])];
    await switchCamera(state.stream, senders);
    $("preview").srcObject = state.stream;
  });
  $("to-waiting").addEventListener("click", waitingStep);
  if (rejoin) {
    // The page was reloaded during the visit: camera and microphone were allowed a moment ago,
    // so go straight back (a browser that wants a tap first leaves the buttons on screen).
    $("device-status").textContent = "Rejoining your visit…";
    $("device-status").hidden = false;
    start().then(() => {
      if (state.stream) waitingStep();
    });
  }
}

// ---- 4. waiting room, then 5. the call ----
function waitingStep() {
  show("step-waiting");
  if (!sessionStorage.getItem(stageKey)) sessionStorage.setItem(stageKey, "waiting");
  const signal = new SignalClient(`/ws/visit/${state.session.visit_id}`, { token: state.session.token });
  state.signal = signal;
  signal.addEventListener("status", (ev) => {
    const s = ev.detail.state;
    $("reconnecting").hidden = s !== "reconnecting";
    if (s === "reconnecting") {
      $("reconnecting").textContent = describeStatus(ev.detail);
      if (document.body.dataset.step === "step-waiting") $("waiting-status").textContent = describeStatus(ev.detail);
    }
    if (s === "closed") {
      if (ev.detail.code === 4010) ended("Opened in another tab", "Your visit continues in the other tab or window. You can close this one.");
      else if (ev.detail.code === 4012) ended("The visit has ended", "Thank you. You can close this page.");
      else if (ev.detail.code === 4011) ended("The clinic could not see you now", "Please contact the clinic to arrange another time.");
      else if (ev.detail.code === 4001) ended("This link can no longer be used", "Please contact the clinic for a new link.");
    }
  });
  signal.addEventListener("join", (ev) => {
    state.iceServers = ev.detail.ice_servers;
    const clinician = (ev.detail.participants || []).find((p) => p.role === "clinician");
    if (clinician) state.clinicianId = clinician.participant_id;
    if (ev.detail.status === "admitted") callStep();
    else $("waiting-status").textContent = clinician ? "Your clinician is here and will let you in." : "Waiting for your clinician…";
  });
  signal.addEventListener("waiting", () => show("step-waiting"));
  signal.addEventListener("admit", () => callStep());
  signal.addEventListener("decline", (ev) => ended("The clinic could not see you now", ev.detail.reason || "Please contact the clinic."));
  signal.addEventListener("hangup", () => ended("The visit has ended", "Thank you. You can close this page."));
  signal.addEventListener("presence", (ev) => {
    const p = ev.detail.participant;
    if (p.role !== "clinician") return;
    state.clinicianId = p.participant_id;
    if (document.body.dataset.step === "step-waiting") {
      $("waiting-status").textContent = p.connected && p.status !== "left" ? "Your clinician is here and will let you in." : "Waiting for your clinician…";
    }
  });
  for (const type of ["offer", "answer", "ice_candidate", "ice_restart"]) {
    signal.addEventListener(type, (ev) => onPeerMessage(ev.detail));
  }
  wireCapture(signal);
  signal.connect();
}

function ensureCall(peerId) {
  if (state.call && state.call.peerId === peerId) return state.call;
  if (state.call) state.call.close();
  const call = new PeerCall({
    signal: state.signal,
    peerId,
    offerer: false,
    iceServers: state.iceServers,
    localStream: state.stream,
    iceTransportPolicy,
  });
  call.addEventListener("remotetrack", () => {
    $("remote").srcObject = call.remoteStream;
  });
  call.addEventListener("state", (ev) => {
    const bad = ["disconnected", "failed"].includes(ev.detail.ice);
    if (bad && state.signal.state !== "reconnecting") $("reconnecting").textContent = "Reconnecting the video…";
    $("reconnecting").hidden = !bad && state.signal.state !== "reconnecting";
    if (ev.detail.conn === "connected") $("cannot-connect").hidden = true;
  });
  call.addEventListener("unreachable", () => {
    $("cannot-connect").hidden = false;
  });
  state.call = call;
  return call;
}

async function onPeerMessage(msg) {
  if (!msg.peer) return;
  // An offer from a brand-new peer connection (the clinician's page was reloaded or started the
  // call over) cannot be applied to ours: answer it with a fresh one.
  const known = state.call && state.call.peerId === msg.peer ? state.call.remoteFingerprint() : null;
  if (msg.type === "offer" && known && known !== fingerprint(msg.sdp)) {
    state.call.close();
    state.call = null;
  }
  await ensureCall(msg.peer).handle(msg);
}

// ---- the capture protocol, driven by the clinician ----
function wireCapture(signal) {
  signal.addEventListener("capture_start", () => startCapture().catch((err) => reportCapture(`camera stream failed: ${err.message}`)));
  signal.addEventListener("capture_step", (ev) => {
    const m = ev.detail;
    $("instruction").textContent = `${m.index} of ${m.total}: ${m.instruction}`;
    $("instruction").hidden = false;
    $("face-guide").hidden = false;
    document.querySelector("#step-call .stage").classList.add("protocol-mode");
    if (state.device) state.device.beginStep(m.step_id);
  });
  // Acknowledged on arrival, duplicates too: the clinician's page re-sends until it hears back.
  signal.addEventListener("capture_take", (ev) => {
    signal.send("capture_ack", { peer: ev.detail.peer, take_id: ev.detail.take_id, part: "take" });
    if (state.device) state.device.take(ev.detail);
  });
  signal.addEventListener("capture_ids", (ev) => {
    signal.send("capture_ack", { peer: ev.detail.peer, take_id: ev.detail.take_id, part: "ids" });
    if (state.device) state.device.assign(ev.detail);
  });
  signal.addEventListener("capture_end", () => stopCapture());
}

function reportCapture(text) {
  if (state.clinicianId) state.signal.send("upload_progress", { peer: state.clinicianId, capture_id: "none", kind: "still", state: "failed", percent: 0, error: text.slice(0, 190) });
}

// The device's uploads belong to the session, not to the call: they start (and a reloaded page
// resumes them) as soon as the session is known, before the patient is back in the call.
function startUploads() {
  if (state.uploads) return;
  state.uploads = new UploadQueue({ bearer: state.session.token, visitId: state.session.visit_id });
  state.uploads.addEventListener("progress", (ev) => {
    if (state.signal && state.clinicianId) state.signal.send("upload_progress", { peer: state.clinicianId, ...ev.detail, error: ev.detail.error ? String(ev.detail.error).slice(0, 190) : undefined });
  });
  state.uploads.resume();
}

async function startCapture() {
  if (!state.stream) return;
  if (!state.device) state.device = new DeviceCapture({ stream: state.stream, videoEl: $("self"), uploads: state.uploads });
  if (state.serverPeer) state.serverPeer.pc.close();
  state.serverPeer = await openServerPeer(state.session.visit_id, state.stream, state.iceServers, iceTransportPolicy);
}

function stopCapture() {
  $("instruction").hidden = true;
  $("face-guide").hidden = true;
  document.querySelector("#step-call .stage").classList.remove("protocol-mode");
  if (state.device) state.device.stopRecorder();
  if (state.serverPeer) {
    state.serverPeer.pc.close();
    state.serverPeer = null;
  }
}

function callStep() {
  if (document.body.dataset.step === "step-call") return;
  show("step-call");
  sessionStorage.setItem(stageKey, "call");
  $("self").srcObject = state.stream;
  videoInputs().then((cams) => {
    $("call-switch-camera").hidden = cams.length < 2;
  });
  // After a page reload the clinician still holds the old connection: ask for a fresh one.
  setTimeout(() => {
    if (!state.call && state.clinicianId) state.signal.send("ice_restart", { peer: state.clinicianId, reason: "new-peer" });
  }, 2000);
  if (state.stopMeter) {
    state.stopMeter();
    state.stopMeter = null;
  }
  clearInterval(state.qualityTimer);
  state.qualityTimer = setInterval(async () => {
    if (!state.call) return;
    const q = await state.call.quality();
    const el = $("quality");
    el.className = `quality ${q.level}`;
    el.title = `Connection ${q.level}: ${q.width}x${q.height} ${Math.round(q.fps)} fps${q.rttMs !== null ? `, ${Math.round(q.rttMs)} ms` : ""}`;
  }, 2000);
}

function wireControls() {
  $("call-switch-camera").addEventListener("click", async () => {
    const senders = [...(state.call ? state.call.pc.getSenders() : []), ...(state.serverPeer ? [state.serverPeer.sender] : [])];
    await switchCamera(state.stream, senders);
    $("self").srcObject = state.stream;
  });
  $("mute").addEventListener("click", (ev) => {
    const track = state.stream && state.stream.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    ev.target.setAttribute("aria-pressed", String(!track.enabled));
    ev.target.textContent = track.enabled ? "Mute" : "Unmute";
  });
  $("camera-off").addEventListener("click", (ev) => {
    const track = state.stream && state.stream.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    ev.target.setAttribute("aria-pressed", String(!track.enabled));
    ev.target.textContent = track.enabled ? "Camera off" : "Camera on";
  });
  $("hangup").addEventListener("click", () => {
    if (state.signal) state.signal.send("hangup", {});
    ended("You left the visit", "If this was a mistake, open your link again.");
  });
}

// Closing the tab or going back during the call asks first (a reload comes straight back).
window.addEventListener("beforeunload", (ev) => {
  if (document.body.dataset.step !== "step-call") return;
  ev.preventDefault();
  ev.returnValue = "";
});

wireControls();
verifyStep().catch((err) => {
  $("visit-summary").textContent = err instanceof ApiError ? err.message : "Something went wrong. Please reload.";
});
