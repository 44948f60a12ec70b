// The clinician's visit: camera, admit or decline from the waiting room, invite and remove a third
// participant, the call (a mesh with one connection per pair), chat, ending the visit. A colleague
// who opens the page from their own login joins as a waiting "observer": no admitting, inviting,
// capture panel or ending the visit for everyone.
import { api, el, requireStaff } from "./api.js";
import { explainMediaError, openCamera, stopStream } from "./media.js";
import { describeStatus, SignalClient } from "./signal.js";
import { CapturePanel } from "./capturepanel.js";
import { Mesh, roleLabel } from "./mesh.js";
import { ChatBox, chatMarkup } from "./chat.js";

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
  4013: "Disconnected: your session ended. Sign in again to rejoin.",
  4014: "You were removed from the call.",
};
const state = { ended: false, visit: null, stream: null, signal: null, mesh: null, participants: new Map(), iceServers: [], qualityTimer: null, role: null };
// The call with the patient (tests and the quality dot read it); the mesh holds every pair's call.
Object.defineProperty(state, "call", { get: () => (state.mesh ? state.mesh.main : null) });
window.telehealth = state; // inspected by the browser tests

const leads = () => state.role === "clinician";
// "Admit" on the dashboard opens this page with ?admit=<participant>: admitted on arrival, once.
let admitOnArrival = new URLSearchParams(location.search).get("admit");

function admitIfAsked() {
  if (!admitOnArrival || !leads()) return;
  const p = state.participants.get(admitOnArrival);
  if (!p || p.status !== "waiting") return;
  state.signal.send("admit", { participant_id: p.participant_id });
  admitOnArrival = null;
  history.replaceState(null, "", location.pathname);
}
const STATUS_WORDS = { waiting: "waiting", admitted: "in the call", left: "left" };

function renderParticipants() {
  const items = [...state.participants.values()]
    .filter((p) => p.participant_id !== state.signal?.me?.participant_id && p.status !== "left")
    .map((p) => {
      const li = el("li", { "data-participant": p.participant_id, "data-status": p.status, "data-role": p.role },
        el("span", {}, `${p.display_name} (${roleLabel(p.role)}) · ${p.connected ? STATUS_WORDS[p.status] || p.status : "reconnecting"}`));
      const buttons = el("span", { class: "actions" });
      if (leads() && p.status === "waiting") {
        buttons.append(
          el("button", { class: "admit", onclick: () => state.signal.send("admit", { participant_id: p.participant_id }) }, "Admit"),
          el("button", { class: "decline secondary", onclick: () => state.signal.send("decline", { participant_id: p.participant_id, reason: "The clinician cannot see you now." }) }, "Decline"),
        );
      }
      if (leads() && p.status === "admitted" && !["patient", "clinician"].includes(p.role)) {
        buttons.append(el("button", { class: "remove secondary", onclick: () => state.signal.send("remove", { participant_id: p.participant_id }) }, "Remove"));
      }
      if (buttons.children.length) li.append(buttons);
      return li;
    });
  $("participants").replaceChildren(...items);
  if (!items.length) $("participants").append(el("li", { class: "muted" }, state.over ? "The call is over." : "Nobody else is here yet."));
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
  if (!peer || state.panel || !leads()) return;
  state.panel = new CapturePanel($("capture-panel"), { visitId, signal: state.signal, patientPeer: () => patientPeer()?.participant_id || null, countdown: () => $("countdown").checked });
  state.visit = await api("GET", `/api/visits/${visitId}`);
  state.panel.mount(state.visit.consent_capture);
  $("countdown-option").hidden = state.visit.consent_capture !== true;
}

function ensureCall() {
  ensurePanel();
  if (state.mesh) state.mesh.sync([...state.participants.values()]);
}

function wireCall(call, main) {
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
  if (main) document.dispatchEvent(new CustomEvent("telehealth:call", { detail: call }));
}

function setUpMesh(signal) {
  state.mesh = new Mesh({ signal, localStream: state.stream, iceServers: state.iceServers, iceTransportPolicy, remote: $("remote"), tiles: $("tiles") });
  state.mesh.addEventListener("call", (ev) => wireCall(ev.detail.call, ev.detail.main));
}

// The page as the visit's clinician or as a colleague who waits and only takes part.
function applyRole(join) {
  state.role = join.role;
  const lead = leads();
  $("capture-panel").hidden = !lead;
  $("invite").hidden = !lead;
  $("hangup").textContent = lead ? "End visit" : "Leave";
  // Chat is for people in the call: a waiting colleague gets it once admitted.
  $("chat").hidden = join.status === "waiting";
  if (join.status === "waiting") $("signal-status").textContent = "Waiting for the clinician to let you in…";
}

function connectSignal() {
  const signal = new SignalClient(`/ws/visit/${visitId}`, { session: true });
  state.signal = signal;
  signal.addEventListener("status", (ev) => {
    const s = ev.detail.state;
    // Declined, removed, left or ended: the page already says why; the closing socket adds nothing.
    if (state.ended) return;
    $("signal-status").textContent = s === "closed" ? CLOSED_TEXT[ev.detail.code] || describeStatus(ev.detail) : describeStatus(ev.detail);
    $("reconnecting").textContent = describeStatus(ev.detail);
    $("reconnecting").hidden = s !== "reconnecting";
    if (s === "closed" && ev.detail.code === 4012) visitEnded();
  });
  signal.addEventListener("join", (ev) => {
    state.iceServers = ev.detail.ice_servers;
    if (state.mesh) state.mesh.iceServers = ev.detail.ice_servers;
    applyRole(ev.detail);
    state.participants = new Map(ev.detail.participants.map((p) => [p.participant_id, p]));
    renderParticipants();
    admitIfAsked();
    ensureCall();
  });
  signal.addEventListener("presence", (ev) => {
    const p = ev.detail.participant;
    const before = reachable(state.participants.get(p.participant_id));
    state.participants.set(p.participant_id, p);
    // The patient's page reconnected or was admitted again: it may have missed take commands.
    if (p.role === "patient" && reachable(p) && !before && state.panel) state.panel.patientBack();
    renderParticipants();
    // Gone, or back in the waiting room: the mesh closes that pair's connection (ensureCall below);
    // a new one starts when they are admitted again (or the patient rejoins the call by itself).
    admitIfAsked();
    ensureCall();
  });
  signal.addEventListener("admit", () => {
    // A colleague let in: the join's participants list was empty while waiting; presences follow.
    state.signal.me.status = "admitted";
    $("signal-status").textContent = "Connected";
    $("chat").hidden = false;
    ensureCall();
  });
  signal.addEventListener("decline", () => leftCall("The clinician could not let you in."));
  signal.addEventListener("remove", () => leftCall("You were removed from the call."));
  // Each pair negotiates on its own connection; a reloaded peer asks for a fresh one (new-peer).
  for (const type of ["answer", "ice_candidate", "offer", "ice_restart"]) {
    signal.addEventListener(type, (ev) => state.mesh.route(ev.detail));
  }
  signal.addEventListener("error", (ev) => {
    if (STALE_ERRORS.has(ev.detail.code)) {
      console.info("signaling:", ev.detail.code, ev.detail.message);
      return;
    }
    if (state.chat && state.chat.pending.has(ev.detail.ref)) return; // shown under the chat box
    $("call-error").textContent = ev.detail.message;
    $("call-error").hidden = false;
  });
  setUpMesh(signal);
  state.chat = new ChatBox($("chat"), signal);
  signal.connect();
}

function visitEnded() {
  leftCall("The visit has ended.");
}

function leftCall(text) {
  state.ended = true;
  clearInterval(state.qualityTimer);
  if (state.panel) state.panel.stop();
  for (const id of ["mute", "camera-off", "chat-send", "invite-create"]) $(id).disabled = true;
  if (state.mesh) state.mesh.closeAll();
  stopStream(state.stream);
  $("signal-status").textContent = text;
  $("hangup").disabled = true;
  $("reconnecting").hidden = true;
  // Nobody is in a call that is over: the list says so instead of showing stale statuses.
  state.participants.clear();
  state.over = true;
  renderParticipants();
}

async function invite(ev) {
  ev.preventDefault();
  const box = $("invite-error");
  box.hidden = true;
  try {
    const made = await api("POST", `/api/visits/${visitId}/invites`, { role: $("invite-role").value, display_name: $("invite-name").value });
    $("invite-link").value = made.url;
    $("invite-result").hidden = false;
    $("invite-for").textContent = `Link for ${made.display_name} (${made.role}). It lets only them in, after you admit them.`;
    $("invite-name").value = "";
  } catch (err) {
    box.textContent = err.message;
    box.hidden = false;
  }
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
  if (state.mesh) state.mesh.setStream(state.stream);
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
    if (!leads()) {
      state.signal.send("hangup", {});
      leftCall("You left the call.");
      return;
    }
    if (!confirm("End the visit for everyone?")) return;
    state.signal.send("hangup", { reason: "ended by clinician" });
  });
  $("invite-form").addEventListener("submit", invite);
  $("invite-copy").addEventListener("click", async () => {
    $("invite-link").select();
    await navigator.clipboard?.writeText($("invite-link").value).catch(() => {});
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
  $("chat").innerHTML = `<h2>Chat</h2>${chatMarkup()}`;
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
