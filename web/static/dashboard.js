import { api, el, requireStaff, showError } from "./api.js";
import { SignalClient } from "./signal.js";

const tbody = document.querySelector("#visits tbody");
const noVisits = document.getElementById("no-visits");
const copyStatus = document.getElementById("copy-status");
const onlyMine = document.getElementById("only-mine");
let me = null;

function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function tzOffset() {
  return new Date().getTimezoneOffset();
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // clipboard needs a secure context and focus; the link is shown instead
  }
}

async function issueLink(visit, cell) {
  try {
    const link = await api("POST", `/api/visits/${visit.id}/join-link`);
    const input = el("input", { class: "join-link", readonly: "", value: link.url, "aria-label": "Join link" });
    cell.replaceChildren(input);
    input.select();
    const copied = await copyText(link.url);
    copyStatus.textContent = copied
      ? `Join link for ${visit.patient.given_name} ${visit.patient.family_name} copied.`
      : "Join link created: copy it from the box.";
  } catch (err) {
    copyStatus.textContent = err.message;
  }
}

function row(visit) {
  const linkCell = el("td");
  const care = me.role !== "reviewer";
  const open = !["ended", "cancelled"].includes(visit.state);
  if (care && open) {
    linkCell.append(el("button", { class: "copy-link", onclick: () => issueLink(visit, linkCell) },
      visit.join_link_active ? "New link" : "Create link"));
  }
  const actions = el("td");
  if (care && open) {
    // markWaiting() turns this into "Admit" (one click: the visit page admits on arrival) while the patient waits.
    actions.append(el("a", { class: "button open-visit", href: `/visit/${visit.id}` }, "Open"));
  }
  return el("tr", { "data-visit-id": visit.id, "data-state": visit.state },
    el("td", {}, fmtTime(visit.scheduled_at)),
    el("td", {}, `${visit.patient.family_name}, ${visit.patient.given_name}`),
    el("td", {}, visit.patient.mrn),
    el("td", {}, visit.clinician.display_name),
    el("td", { class: `state state-${visit.state}` }, visit.state.replace("_", " ")),
    linkCell,
    actions);
}

export async function loadVisits() {
  const params = new URLSearchParams({ tz_offset_minutes: String(tzOffset()), mine: String(onlyMine.checked) });
  const data = await api("GET", `/api/visits?${params}`);
  tbody.replaceChildren(...data.items.map(row));
  noVisits.hidden = data.items.length > 0;
}

function wireForms() {
  const pform = document.getElementById("patient-form");
  pform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = pform.querySelector(".error");
    box.hidden = true;
    const body = Object.fromEntries(new FormData(pform));
    try {
      const p = await api("POST", "/api/patients", body);
      pform.reset();
      document.getElementById("patient-search").value = p.mrn;
      await searchPatients(p.mrn);
    } catch (err) {
      showError(box, err);
    }
  });

  const vform = document.getElementById("visit-form");
  vform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = vform.querySelector(".error");
    box.hidden = true;
    const data = new FormData(vform);
    const local = data.get("scheduled_at");
    try {
      await api("POST", "/api/visits", {
        patient_id: data.get("patient_id"),
        scheduled_at: new Date(local).toISOString(),
        reason: data.get("reason") || null,
        requires_dob: data.get("requires_dob") === "on",
      });
      vform.reset();
      await loadVisits();
    } catch (err) {
      showError(box, err);
    }
  });

  let timer = null;
  document.getElementById("patient-search").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => searchPatients(ev.target.value), 250);
  });
}

async function searchPatients(q) {
  const select = document.getElementById("patient-select");
  const data = await api("GET", `/api/patients?${new URLSearchParams({ q, limit: "20" })}`);
  select.replaceChildren(el("option", { value: "" }, data.items.length ? "Select a patient" : "No match"),
    ...data.items.map((p) => el("option", { value: p.id }, `${p.family_name}, ${p.given_name} (${p.mrn})`)));
  if (data.items.length === 1) select.value = data.items[0].id;
}

// Live waiting room: the lobby socket pushes who is waiting; rows light up without a reload.
const waiting = new Map();

function markWaiting() {
  for (const tr of tbody.querySelectorAll("tr[data-visit-id]")) {
    const entry = waiting.get(tr.dataset.visitId);
    tr.classList.toggle("is-waiting", Boolean(entry));
    const stateCell = tr.querySelector(".state");
    if (entry) {
      stateCell.textContent = "waiting";
      stateCell.className = "state state-waiting";
    }
    const link = tr.querySelector("a.open-visit");
    if (link) {
      const id = encodeURIComponent(tr.dataset.visitId);
      link.textContent = entry ? "Admit" : "Open";
      link.href = entry ? `/visit/${id}?admit=${encodeURIComponent(entry.participant_id)}` : `/visit/${id}`;
    }
  }
  document.getElementById("waiting-count").textContent = waiting.size ? `${waiting.size} waiting` : "";
}

function watchLobby() {
  const lobby = new SignalClient("/ws/lobby", { session: true });
  lobby.addEventListener("lobby", (ev) => {
    waiting.clear();
    for (const e of ev.detail.waiting) waiting.set(e.visit_id, e);
    loadVisits().then(markWaiting);
  });
  lobby.addEventListener("lobby_update", (ev) => {
    if (ev.detail.status === "waiting") waiting.set(ev.detail.entry.visit_id, ev.detail.entry);
    else waiting.delete(ev.detail.entry.visit_id);
    loadVisits().then(markWaiting);
  });
  lobby.connect();
}

async function main() {
  me = await requireStaff();
  document.getElementById("whoami").textContent = `${me.display_name} (${me.role})`;
  document.getElementById("today-label").textContent = new Date().toLocaleDateString();
  document.body.dataset.role = me.role;
  if (me.role === "reviewer") {
    onlyMine.checked = false;
    for (const s of document.querySelectorAll(".care-only")) s.hidden = true;
  }
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/api/auth/logout");
    location.assign("/login");
  });
  onlyMine.addEventListener("change", loadVisits);
  wireForms();
  await loadVisits();
  await searchPatients("");
  if (me.role !== "reviewer") watchLobby();
  document.body.dataset.ready = "true";
}

main();
