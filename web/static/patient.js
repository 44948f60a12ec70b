// The patient's visit: confirm identity -> consent -> device check -> waiting room -> call -> end.
// An invited third participant (interpreter, family, colleague; /invite/<token>) takes the same
// page from the device check on: no identity check or consent, the invite link is the credential.
import { api, ApiError, setBearer, showError } from "./api.js";
import { Mesh } from "./mesh.js";
import { ChatBox, chatMarkup } from "./chat.js";
import { explainMediaError, inAppBrowser, mediaSupported, micLevelMeter, openCamera, stopStream, switchCamera, videoInputs } from "./media.js";
import { describeStatus, SignalClient } from "./signal.js";
import { openServerPeer } from "./capturepeer.js";
import { DeviceCapture } from "./devicecapture.js";
import { UploadQueue } from "./uploadqueue.js";

const joinToken = decodeURIComponent(location.pathname.split("/").pop());
const invited = location.pathname.startsWith("/invite/");
const storeKey = `telehealth-session:${joinToken.slice(0, 16)}`;
// How far this tab got ("waiting" or "call"): a reload goes straight back there.
const stageKey = `${storeKey}:stage`;
const iceTransportPolicy = new URLSearchParams(location.search).get("ice") === "relay" ? "relay" : "all";
const $ = (id) => document.getElementById(id);

const state = { info: null, session: null, stream: null, stopMeter: null, signal: null, mesh: null, participants: new Map(), clinicianId: null, qualityTimer: null, uploads: null, device: null, audio: null, cues: { captured: 0, beeps: 0 }, cuedTakes: new Set() };
// The call with the clinician (the quality dot and the tests read it); the mesh holds every pair's call.
Object.defineProperty(state, "call", { get: () => (state.mesh ? state.mesh.main : null) });
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
  if (state.mesh) state.mesh.closeAll();
  if (state.signal) state.signal.close();
  if (state.stopMeter) state.stopMeter();
  stopStream(state.stream);
}

// ---- an invite link: who invites whom, then straight to the device check ----
async function inviteStep() {
  try {
    state.info = await api("GET", `/api/invite/${encodeURIComponent(joinToken)}`);
  } catch (err) {
    $("visit-summary").textContent = err.message;
    return;
  }
  const when = new Date(state.info.scheduled_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  const as = { interpreter: "the interpreter", family: "a family member", colleague: "a colleague" }[state.info.role] || state.info.role;
  $("visit-summary").textContent = `${state.info.display_name}, you are invited as ${as} to a video visit with ${state.info.clinician_name}, ${when}.`;
  state.session = { token: joinToken, visit_id: state.info.visit_id };
  const form = $("verify-form");
  form.hidden = false;
  $("dob-label").hidden = true;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    deviceStep();
  });
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
    const senders = [...(state.mesh ? state.mesh.senders() : []), ...(state.serverPeer ? [state.serverPeer.sender] : [])];
    await switchCamera(state.stream, senders);
    $("preview").srcObject = state.stream;
  });
  $("to-waiting").addEventListener("click", () => {
    // Created inside the tap, so browsers let it play the "captured" beep later.
    unlockAudio();
    waitingStep();
  });
  if (rejoin) {
    // The page was reloaded during the visit: camera and microphone were allowed a moment ago,
    // so go straight back (a browser that wants a tap first leaves the buttons on screen).
    $("device-status").textContent = "Rejoining your visit…";
    $("device-status").hidden = false;
    start().then(() => {
      if (!state.stream) return;
      unlockAudio(); // no tap this time: the context may stay suspended until the next one
      waitingStep();
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
      else if (ev.detail.code === 4014) ended("You were removed from the call", "The clinician ended your part in this visit. You can close this page.");
    }
  });
  state.mesh = new Mesh({ signal, localStream: state.stream, iceServers: [], iceTransportPolicy, remote: $("remote"), tiles: $("tiles") });
  state.mesh.addEventListener("call", (ev) => wireCall(ev.detail.call));
  signal.addEventListener("join", (ev) => {
    state.iceServers = ev.detail.ice_servers;
    state.mesh.iceServers = ev.detail.ice_servers;
    state.participants = new Map((ev.detail.participants || []).map((p) => [p.participant_id, p]));
    const clinician = (ev.detail.participants || []).find((p) => p.role === "clinician");
    if (clinician) state.clinicianId = clinician.participant_id;
    if (ev.detail.status === "admitted") callStep();
    else $("waiting-status").textContent = clinician ? "Your clinician is here and will let you in." : "Waiting for your clinician…";
  });
  signal.addEventListener("waiting", () => show("step-waiting"));
  signal.addEventListener("admit", () => {
    signal.me.status = "admitted";
    callStep();
  });
  signal.addEventListener("decline", (ev) => ended("The clinic could not see you now", ev.detail.reason || "Please contact the clinic."));
  signal.addEventListener("remove", () => ended("You were removed from the call", "The clinician ended your part in this visit. You can close this page."));
  signal.addEventListener("hangup", () => ended("The visit has ended", "Thank you. You can close this page."));
  signal.addEventListener("presence", (ev) => {
    const p = ev.detail.participant;
    state.participants.set(p.participant_id, p);
    if (document.body.dataset.step === "step-call") state.mesh.sync([...state.participants.values()]);
    if (p.role !== "clinician") return;
    state.clinicianId = p.participant_id;
    if (document.body.dataset.step === "step-waiting") {
      $("waiting-status").textContent = p.connected && p.status !== "left" ? "Your clinician is here and will let you in." : "Waiting for your clinician…";
    }
  });
  for (const type of ["offer", "answer", "ice_candidate", "ice_restart"]) {
    signal.addEventListener(type, (ev) => state.mesh.route(ev.detail));
  }
  wireCapture(signal);
  state.chat = new ChatBox($("chat-panel"), signal);
  $("chat-panel").addEventListener("chatline", (ev) => {
    if ($("chat-panel").hidden && ev.detail.sender !== signal.me?.participant_id) $("chat-toggle").dataset.unread = "true";
  });
  signal.connect();
}

function wireCall(call) {
  call.addEventListener("state", (ev) => {
    const bad = ["disconnected", "failed"].includes(ev.detail.ice);
    if (bad && state.signal.state !== "reconnecting") $("reconnecting").textContent = "Reconnecting the video…";
    $("reconnecting").hidden = !bad && state.signal.state !== "reconnecting";
    if (ev.detail.conn === "connected") $("cannot-connect").hidden = true;
  });
  call.addEventListener("unreachable", () => {
    $("cannot-connect").hidden = false;
  });
}

// ---- the capture protocol, driven by the clinician ----
function wireCapture(signal) {
  signal.addEventListener("capture_start", () => startCapture().catch((err) => reportCapture(`camera stream failed: ${err.message}`)));
  signal.addEventListener("capture_step", (ev) => {
    const m = ev.detail;
    $("step-number").textContent = `Step ${m.index} of ${m.total}`;
    $("instruction-text").textContent = m.instruction;
    $("instruction").hidden = false;
    if (!heldTimer) cue(null); // a re-armed step keeps "Hold it…" of the take before it
    $("face-guide").hidden = false;
    document.querySelector("#step-call .stage").classList.add("protocol-mode");
    if (state.device) state.device.beginStep(m.step_id);
  });
  signal.addEventListener("capture_countdown", (ev) => countdown(ev.detail.seconds));
  // Acknowledged on arrival, duplicates too: the clinician's page re-sends until it hears back.
  signal.addEventListener("capture_take", (ev) => {
    signal.send("capture_ack", { peer: ev.detail.peer, take_id: ev.detail.take_id, part: "take" });
    if (state.device) state.device.take(ev.detail);
    // A re-sent copy of a take already cued is acknowledged but not cued (or beeped) again.
    if (state.cuedTakes.has(ev.detail.take_id)) return;
    state.cuedTakes.add(ev.detail.take_id);
    captured(ev.detail);
  });
  signal.addEventListener("capture_ids", (ev) => {
    signal.send("capture_ack", { peer: ev.detail.peer, take_id: ev.detail.take_id, part: "ids" });
    if (state.device) state.device.assign(ev.detail);
  });
  signal.addEventListener("capture_end", () => stopCapture());
}

// ---- protocol cues: 3-2-1, "hold it", "captured" (seen and heard) ----
let countdownTimer = null;
let cueTimer = null;
let heldTimer = null; // a take's post-roll: "Hold it…" until it ends, then "Captured ✓"

function countdown(seconds) {
  clearInterval(countdownTimer);
  let left = seconds;
  const box = $("countdown-number");
  box.textContent = String(left);
  box.hidden = false;
  cue("Get ready…");
  countdownTimer = setInterval(() => {
    left -= 1;
    if (left > 0) {
      box.textContent = String(left);
      return;
    }
    clearInterval(countdownTimer);
    box.hidden = true;
    cue("Hold it…"); // the capture itself arrives now, from the clinician's side
  }, 1000);
}

// The still is taken at once; a clip runs on for the post-roll, so the face is held until it ends.
function captured({ wants_clip: clip = true, post_roll_ms: postRoll = 1500 }) {
  clearInterval(countdownTimer);
  $("countdown-number").hidden = true;
  const done = () => {
    cue("Captured ✓", { captured: true, hideAfterMs: 1800 });
    beep();
    state.cues.captured += 1;
  };
  if (clip && postRoll > 0) {
    cue("Hold it…");
    // Its own timer: the clinician's page re-arms the step (capture_step) right after a take,
    // and that must not swallow the "captured" cue of the take still finishing its post-roll.
    clearTimeout(heldTimer);
    heldTimer = setTimeout(() => {
      heldTimer = null;
      done();
    }, postRoll);
  } else {
    done();
  }
}

function cue(text, { captured: ok = false, hideAfterMs = 0 } = {}) {
  const box = $("capture-cue");
  clearTimeout(cueTimer);
  if (!text) {
    box.hidden = true;
    return;
  }
  box.textContent = text;
  box.classList.toggle("captured", ok);
  box.hidden = false;
  if (hideAfterMs) cueTimer = setTimeout(() => (box.hidden = true), hideAfterMs);
}

function unlockAudio() {
  if (!state.audio && window.AudioContext) state.audio = new AudioContext();
}

// A short two-tone beep; the AudioContext was unlocked by the patient's tap on "Join the waiting room".
function beep() {
  const ctx = state.audio;
  if (!ctx) return;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  const now = ctx.currentTime;
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.25, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
  gain.connect(ctx.destination);
  for (const [freq, at] of [[880, 0], [1320, 0.12]]) {
    const osc = ctx.createOscillator();
    osc.frequency.value = freq;
    osc.connect(gain);
    osc.start(now + at);
    osc.stop(now + at + 0.16);
  }
  state.cues.beeps += 1;
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
  if (!state.device) {
    state.device = new DeviceCapture({ stream: state.stream, videoEl: $("self"), uploads: state.uploads });
    state.device.addEventListener("recording", (ev) => {
      $("recording").hidden = !ev.detail.recording;
    });
  }
  if (state.serverPeer) state.serverPeer.pc.close();
  state.serverPeer = await openServerPeer(state.session.visit_id, state.stream, state.iceServers, iceTransportPolicy);
}

function stopCapture() {
  $("instruction").hidden = true;
  clearInterval(countdownTimer);
  clearTimeout(heldTimer);
  heldTimer = null;
  $("countdown-number").hidden = true;
  cue(null);
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
  state.mesh.setStream(state.stream);
  state.mesh.sync([...state.participants.values()]);
  // After a page reload the peers that offer to us still hold the old connection: ask for fresh ones.
  setTimeout(() => state.mesh.askForMissing(), 2000);
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
    const senders = [...(state.mesh ? state.mesh.senders() : []), ...(state.serverPeer ? [state.serverPeer.sender] : [])];
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
  $("chat-toggle").addEventListener("click", () => {
    const open = $("chat-panel").hidden;
    $("chat-panel").hidden = !open;
    $("chat-toggle").setAttribute("aria-expanded", String(open));
    delete $("chat-toggle").dataset.unread;
    if (open) $("chat-input").focus();
  });
}

// Closing the tab or going back during the call asks first (a reload comes straight back).
window.addEventListener("beforeunload", (ev) => {
  if (document.body.dataset.step !== "step-call") return;
  ev.preventDefault();
  ev.returnValue = "";
});

$("chat-panel").innerHTML = chatMarkup();
wireControls();
(invited ? inviteStep() : verifyStep()).catch((err) => {
  $("visit-summary").textContent = err instanceof ApiError ? err.message : "Something went wrong. Please reload.";
});
