// The clinician's visit: camera, admit or decline from the waiting room, the call, ending the visit.
import { api, el, requireStaff } from "./api.js";
import { PeerCall } from "./call.js";
import { explainMediaError, openCamera, stopStream } from "./media.js";
import { describeStatus, SignalClient } from "./signal.js";
import { CapturePanel } from "./capturepanel.js";

const visitId = location.pathname.split("/").pop();
const iceTransportPolicy = new URLSearchParams(location.search).get("ice") === "relay" ? "relay" : "all";
const $ = (id) => document.getElementById(id);
// Errors about a peer that changed state meanwhile (left, back in the waiting room, reloading):
// the page catches up from presence, so they are not worth showing.
const STALE_ERRORS = new Set(["unknown_peer", "peer_required", "forbidden", "invalid_state"]);
const CLOSED_TEXT = {
  4001: "Disconnected: this visit can no longer be joined (it may have ended).",
  4003: "Disconnected: this page was opened from another site.",
  4010: "This visit is open in another tab or window.",
  4012: "The visit has ended.",
};
const state = { ended: false, visit: null, stream: null, signal: null, call: null, participants: new Map(), iceServers: [], qualityTimer: null };
window.telehealth = state; // inspected by the browser tests

function renderParticipants() {
  const items = [...state.participants.values()]
    .filter((p) => p.participant_id !== state.signal?.me?.participant_id && p.status !== "left")
    .map((p) => {
      const li = el("li", { "data-participant": p.participant_id, "data-status": p.status },
        el("span", {}, `${p.display_name} (${p.role}) · ${p.connected ? p.status : "reconnecting"}`));
      if (p.status === "waiting") {
        li.append(
          el("button", { class: "admit", onclick: () => state.signal.send("admit", { participant_id: p.participant_id }) }, "Admit"),
          el("button", { class: "decline secondary", onclick: () => state.signal.send("decline", { participant_id: p.participant_id, reason: "The clinician cannot see you now." }) }, "Decline"),
        );
      }
      return li;
    });
  $("participants").replaceChildren(...items);
  if (!items.length) $("participants").append(el("li", { class: "muted" }, "Nobody else is here yet."));
}

function reachable(p) {
  return Boolean(p && p.status === "admitted" && p.connected);
}

function patientPeer() {
  return [...state.participants.values()].find((p) => p.role === "patient" && reachable(p));
}

// The protocol panel appears once an admitted patient is connected; consent is re-read then,
// because the patient answers it after this page was opened.
async function ensurePanel() {
  const peer = patientPeer();
  if (!peer || state.panel) return;
  state.panel = new CapturePanel($("capture-panel"), { visitId, signal: state.signal, patientPeer: () => patientPeer()?.participant_id || null });
  state.visit = await api("GET", `/api/visits/${visitId}`);
  state.panel.mount(state.visit.consent_capture);
}

function ensureCall({ fresh = false } = {}) {
  ensurePanel();
  const peer = patientPeer();
  if (!peer || !state.stream) return;
  if (state.call && state.call.peerId === peer.participant_id && !fresh) return;
  if (state.call) state.call.close();
  const call = new PeerCall({ signal: state.signal, peerId: peer.participant_id, offerer: true, iceServers: state.iceServers, localStream: state.stream, iceTransportPolicy });
  call.addEventListener("remotetrack", () => {
    $("remote").srcObject = call.remoteStream;
  });
  call.addEventListener("negotiationerror", (ev) => {
    $("call-error").textContent = `Video renegotiation failed (${ev.detail}); the call continues.`;
    $("call-error").hidden = false;
  });
  call.addEventListener("state", (ev) => {
    const bad = ["disconnected", "failed"].includes(ev.detail.ice);
    if (bad && state.signal.state !== "reconnecting") $("reconnecting").textContent = "Reconnecting the video…";
    $("reconnecting").hidden = !bad && state.signal.state !== "reconnecting";
    if (ev.detail.conn === "connected") $("cannot-connect").hidden = true;
  });
  call.addEventListener("unreachable", (ev) => {
    const why = ev.detail.errors.map((e) => `${e.code} ${e.text}`.trim().replace(/\.$/, "")).join("; ");
    $("cannot-connect").textContent = why
      ? `Cannot connect the video: the STUN/TURN server refused (${why}). Check the TURN settings.`
      : "Cannot connect the video: no network path found.";
    $("cannot-connect").hidden = false;
  });
  state.call = call;
  call.start();
  document.dispatchEvent(new CustomEvent("telehealth:call", { detail: call }));
}

function connectSignal() {
  const signal = new SignalClient(`/ws/visit/${visitId}`, { session: true });
  state.signal = signal;
  signal.addEventListener("status", (ev) => {
    const s = ev.detail.state;
    $("signal-status").textContent = s === "closed" ? CLOSED_TEXT[ev.detail.code] || describeStatus(ev.detail) : describeStatus(ev.detail);
    $("reconnecting").textContent = describeStatus(ev.detail);
    $("reconnecting").hidden = s !== "reconnecting";
    if (s === "closed" && ev.detail.code === 4012) visitEnded();
  });
  signal.addEventListener("join", (ev) => {
    state.iceServers = ev.detail.ice_servers;
    state.participants = new Map(ev.detail.participants.map((p) => [p.participant_id, p]));
    renderParticipants();
    ensureCall();
  });
  signal.addEventListener("presence", (ev) => {
    const p = ev.detail.participant;
    const before = reachable(state.participants.get(p.participant_id));
    state.participants.set(p.participant_id, p);
    // The patient's page reconnected or was admitted again: it may have missed take commands.
    if (p.role === "patient" && reachable(p) && !before && state.panel) state.panel.patientBack();
    renderParticipants();
    // Gone, or back in the waiting room: this connection has nobody to talk to any more; a new
    // one starts when the patient is admitted again (or rejoins the call by itself).
    if (p.role === "patient" && p.status !== "admitted" && state.call && state.call.peerId === p.participant_id) {
      state.call.close();
      state.call = null;
      $("remote").srcObject = null;
    }
    ensureCall();
  });
  signal.addEventListener("ice_restart", (ev) => {
    // A patient whose page was reloaded has a brand-new peer connection: start over with it.
    if (ev.detail.reason === "new-peer") ensureCall({ fresh: true });
    else if (state.call) state.call.handle(ev.detail);
  });
  for (const type of ["answer", "ice_candidate", "offer"]) {
    signal.addEventListener(type, (ev) => {
      if (state.call && ev.detail.peer === state.call.peerId) state.call.handle(ev.detail);
    });
  }
  signal.addEventListener("error", (ev) => {
    if (STALE_ERRORS.has(ev.detail.code)) {
      console.info("signaling:", ev.detail.code, ev.detail.message);
      return;
    }
    $("call-error").textContent = ev.detail.message;
    $("call-error").hidden = false;
  });
  signal.connect();
}

function visitEnded() {
  state.ended = true;
  clearInterval(state.qualityTimer);
  if (state.panel) state.panel.stop();
  for (const id of ["mute", "camera-off"]) $(id).disabled = true;
  if (state.call) state.call.close();
  stopStream(state.stream);
  $("signal-status").textContent = "The visit has ended.";
  $("hangup").disabled = true;
}

async function startCamera() {
  try {
    state.stream = await openCamera("user");
  } catch (err) {
    $("call-error").textContent = explainMediaError(err);
    $("call-error").hidden = false;
    return;
  }
  $("self").srcObject = state.stream;
  $("start-camera").hidden = true;
  ensureCall();
}

function wireControls() {
  $("start-camera").addEventListener("click", startCamera);
  for (const [id, kind, on, off] of [["mute", "audio", "Mute", "Unmute"], ["camera-off", "video", "Camera off", "Camera on"]]) {
    $(id).addEventListener("click", (ev) => {
      const track = state.stream && state.stream.getTracks().find((t) => t.kind === kind);
      if (!track) return;
      track.enabled = !track.enabled;
      ev.target.setAttribute("aria-pressed", String(!track.enabled));
      ev.target.textContent = track.enabled ? on : off;
    });
  }
  $("hangup").addEventListener("click", () => {
    if (!confirm("End the visit for everyone?")) return;
    state.signal.send("hangup", { reason: "ended by clinician" });
  });
  state.qualityTimer = setInterval(async () => {
    if (!state.call) return;
    const q = await state.call.quality();
    $("quality").className = `quality ${q.level}`;
    $("quality").title = `Connection ${q.level}: ${q.width}x${q.height} ${Math.round(q.fps)} fps`;
  }, 2000);
}

async function main() {
  await requireStaff();
  state.visit = await api("GET", `/api/visits/${visitId}`);
  const p = state.visit.patient;
  $("visit-title").textContent = `${p.family_name}, ${p.given_name} · MRN ${p.mrn} · affected side: ${p.affected_side}`;
  wireControls();
  connectSignal();
  await startCamera();
  document.body.dataset.ready = "true";
}

// Leaving the page (back button, closing the tab) during a call asks first.
window.addEventListener("beforeunload", (ev) => {
  if (state.ended || !state.call) return;
  ev.preventDefault();
  ev.returnValue = "";
});

main();
