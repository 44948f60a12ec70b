import { api, el, requireStaff } from "./api.js";
import { SignalClient } from "./signal.js";

const tbody = document.querySelector("#visits tbody");
const noVisits = document.getElementById("no-visits");
const copyStatus = document.getElementById("copy-status");
const scheduleError = document.getElementById("schedule-error");
const onlyMine = document.getElementById("only-mine");
let me = null;
// What the schedule shows: a day or the week holding it (null = today), in the clinic's zone.
const view = { span: "day", day: null, tz: "UTC", start: null };
const OVER = ["ended", "cancelled", "no_show"];
const STATE_TEXT = { scheduled: "scheduled", waiting: "waiting", in_call: "in call", ended: "ended", cancelled: "cancelled", no_show: "no-show" };
const FIELD_TEXT = { scheduled_at: "date and time", scheduled_local: "date and time", patient_id: "patient", reason: "reason", clinician_id: "clinician" };

// Plain words for an API error: the server's own sentence, or which field to check.
function plain(err) {
  if (err.code === "invalid_input" && err.message === "invalid fields") {
    const fields = [...new Set((err.details || []).map((d) => FIELD_TEXT[d.field] || d.field))];
    return `Please check the ${fields.join(" and ") || "form"}.`;
  }
  if (err.status === 0 || err.code === "http_error") return "The server could not be reached. Please try again.";
  return err.message.charAt(0).toUpperCase() + err.message.slice(1);
}

function say(text) {
  scheduleError.hidden = true;
  copyStatus.textContent = text;
}

function fail(err) {
  copyStatus.textContent = "";
  scheduleError.textContent = plain(err);
  scheduleError.hidden = false;
}

function fmt(iso, opts) {
  return new Intl.DateTimeFormat([], { timeZone: view.tz, ...opts }).format(new Date(iso));
}

function fmtTime(iso) {
  return view.span === "week"
    ? fmt(iso, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })
    : fmt(iso, { hour: "2-digit", minute: "2-digit" });
}

// "YYYY-MM-DDTHH:MM" on the clinic's wall clock (what a datetime-local input holds).
function clinicLocal(iso) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: view.tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

function shiftDay(isoDay, days) {
  const [y, m, d] = isoDay.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // clipboard needs a secure context and focus; the link is shown instead
  }
}

function who(visit) {
  return `${visit.patient.given_name} ${visit.patient.family_name}`;
}

async function issueLink(visit, cell) {
  try {
    const link = await api("POST", `/api/visits/${visit.id}/join-link`);
    const input = el("input", { class: "join-link", readonly: "", value: link.url, "aria-label": "Join link" });
    cell.replaceChildren(input, " ",
      el("button", { class: "invite secondary", onclick: () => inviteForm(visit, cell) }, "Email…"), " ",
      el("button", { class: "revoke-link link", onclick: () => revokeLink(visit) }, "Revoke"));
    input.select();
    const copied = await copyText(link.url);
    const again = visit.join_link_active ? "New join link (the previous one no longer works)" : "Join link";
    say(copied ? `${again} for ${who(visit)} copied.` : `${again} for ${who(visit)} created: copy it from the box.`);
  } catch (err) {
    fail(err);
  }
}

async function revokeLink(visit) {
  try {
    await api("DELETE", `/api/visits/${visit.id}/join-link`);
    say(`The join link for ${who(visit)} no longer works.`);
    await loadVisits();
  } catch (err) {
    fail(err);
  }
}

function rescheduleForm(visit, cell) {
  const input = el("input", { type: "datetime-local", value: clinicLocal(visit.scheduled_at), "aria-label": "New date and time" });
  const save = async () => {
    try {
      await api("PATCH", `/api/visits/${visit.id}`, { scheduled_local: input.value });
      say(`Visit with ${who(visit)} moved to ${fmt(new Date(`${input.value}:00Z`).toISOString(), { timeZone: "UTC", dateStyle: "medium", timeStyle: "short" })}.`);
      await loadVisits();
    } catch (err) {
      fail(err);
    }
  };
  cell.replaceChildren(input, el("button", { class: "save-reschedule", onclick: save }, "Save"),
    el("button", { class: "secondary", onclick: () => loadVisits() }, "Keep"));
  input.focus();
}

function cancelForm(visit, cell) {
  const input = el("input", { type: "text", maxlength: "256", placeholder: "Reason (optional)", "aria-label": "Reason for cancelling" });
  const go = async () => {
    try {
      await api("POST", `/api/visits/${visit.id}/cancel`, { reason: input.value.trim() });
      say(`Visit with ${who(visit)} cancelled; its join link no longer works.`);
      await loadVisits();
    } catch (err) {
      fail(err);
    }
  };
  cell.replaceChildren(input, el("button", { class: "danger confirm-cancel", onclick: go }, "Cancel visit"),
    el("button", { class: "secondary", onclick: () => loadVisits() }, "Back"));
  input.focus();
}

function inviteForm(visit, cell) {
  const input = el("input", { type: "email", placeholder: "patient@example.org", "aria-label": "Patient's email address", class: "invite-email" });
  const go = async () => {
    try {
      const data = await api("POST", `/api/visits/${visit.id}/invitation`, { email: input.value.trim() });
      const reminder = data.items.find((m) => m.kind === "reminder");
      say(`Invitation with a new join link on its way to ${input.value.trim()}` +
        (reminder ? `; reminder at ${fmt(reminder.due_at, { dateStyle: "medium", timeStyle: "short" })}.` : "."));
      await loadVisits();
    } catch (err) {
      fail(err.code === "invalid_input" ? { ...err, message: "Please type a valid email address.", details: [] } : err);
    }
  };
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
  cell.replaceChildren(input, el("button", { class: "send-invite", onclick: go }, "Send"),
    el("button", { class: "secondary", onclick: () => loadVisits() }, "Back"));
  input.focus();
}

async function runningLate(visit) {
  try {
    await api("POST", `/api/visits/${visit.id}/running-late`, { minutes: 10 });
    say(`${who(visit)} was told you are running about 10 minutes late.`);
  } catch (err) {
    fail(err);
  }
}

async function noShow(visit) {
  try {
    await api("POST", `/api/visits/${visit.id}/no-show`);
    say(`Visit with ${who(visit)} recorded as a no-show.`);
    await loadVisits();
  } catch (err) {
    fail(err);
  }
}

function row(visit) {
  const linkCell = el("td");
  const care = me.role !== "reviewer";
  const open = !OVER.includes(visit.state);
  if (care && open) {
    linkCell.append(el("button", { class: "copy-link", onclick: () => issueLink(visit, linkCell) },
      visit.join_link_active ? "Re-send link" : "Create link"));
    linkCell.append(" ", el("button", { class: "invite secondary", onclick: () => inviteForm(visit, linkCell) }, "Email…"));
    if (visit.join_link_active) linkCell.append(" ", el("button", { class: "revoke-link link", onclick: () => revokeLink(visit) }, "Revoke"));
  }
  const actions = el("td", { class: "actions" });
  if (care && open) {
    // markWaiting() turns this into "Admit" (one click: the visit page admits on arrival) while the patient waits.
    actions.append(el("a", { class: "button open-visit", href: `/visit/${visit.id}` }, "Open"));
    if (visit.state === "waiting") actions.append(el("button", { class: "secondary running-late", onclick: () => runningLate(visit) }, "Running late"));
    if (visit.state === "scheduled") {
      actions.append(el("button", { class: "secondary reschedule", onclick: () => rescheduleForm(visit, actions) }, "Reschedule"));
      if (new Date(visit.scheduled_at) <= new Date()) {
        actions.append(el("button", { class: "secondary no-show", onclick: () => noShow(visit) }, "No-show"));
      }
    }
    actions.append(el("button", { class: "secondary cancel", onclick: () => cancelForm(visit, actions) }, "Cancel…"));
  }
  if (visit.state === "ended") actions.append(el("a", { class: "button review-link", href: `/review/visits/${visit.id}` }, "Review"));
  const stateText = visit.state === "cancelled" && visit.cancel_reason ? `cancelled: ${visit.cancel_reason}` : STATE_TEXT[visit.state] || visit.state;
  return el("tr", { "data-visit-id": visit.id, "data-state": visit.state },
    el("td", {}, fmtTime(visit.scheduled_at)),
    el("td", {}, `${visit.patient.family_name}, ${visit.patient.given_name}`),
    el("td", {}, visit.patient.mrn),
    el("td", {}, visit.clinician.display_name),
    el("td", { class: `state state-${visit.state}` }, stateText),
    linkCell,
    actions);
}

let loads = 0;

export async function loadVisits() {
  const params = new URLSearchParams({ mine: String(onlyMine.checked), span: view.span });
  if (view.day) params.set("day", view.day);
  // Lobby updates and navigation both reload: only the latest request may draw the list.
  const mine = ++loads;
  let data;
  try {
    data = await api("GET", `/api/visits?${params}`);
  } catch (err) {
    if (mine === loads) fail(err);
    return;
  }
  if (mine !== loads) return;
  view.tz = data.time_zone;
  view.start = data.start;
  tbody.replaceChildren(...data.items.map(row));
  const first = clinicLocal(data.start).slice(0, 10);
  const today = clinicLocal(new Date().toISOString()).slice(0, 10);
  const title = view.span === "week" ? "Week of" : first === today ? "Today's visits" : "Visits on";
  document.getElementById("schedule-title").textContent = title;
  document.getElementById("today-label").textContent = fmt(data.start, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  document.getElementById("tz-label").textContent = `Times in ${view.tz}`;
  document.getElementById("form-tz").textContent = `(${view.tz})`;
  noVisits.textContent = view.span === "week" ? "No visits this week." : first === today ? "No visits scheduled today." : "No visits that day.";
  noVisits.hidden = data.items.length > 0;
  for (const [id, span] of [["span-day", "day"], ["span-week", "week"]]) {
    document.getElementById(id).setAttribute("aria-pressed", String(view.span === span));
  }
  markWaiting();
}

function wireSchedule() {
  const move = (days) => {
    const base = view.day || clinicLocal(view.start || new Date().toISOString()).slice(0, 10);
    view.day = shiftDay(base, view.span === "week" ? days * 7 : days);
    loadVisits();
  };
  document.getElementById("span-day").addEventListener("click", () => { view.span = "day"; loadVisits(); });
  document.getElementById("span-week").addEventListener("click", () => { view.span = "week"; loadVisits(); });
  document.getElementById("prev").addEventListener("click", () => move(-1));
  document.getElementById("next").addEventListener("click", () => move(1));
  document.getElementById("today").addEventListener("click", () => { view.day = null; loadVisits(); });
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
      box.textContent = plain(err);
      box.hidden = false;
    }
  });

  const vform = document.getElementById("visit-form");
  vform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = vform.querySelector(".error");
    box.hidden = true;
    const data = new FormData(vform);
    const status = document.getElementById("visit-form-status");
    status.textContent = "";
    try {
      // A wall-clock time in the clinic's zone; the server turns it into an instant.
      const visit = await api("POST", "/api/visits", {
        patient_id: data.get("patient_id"),
        scheduled_local: data.get("scheduled_local"),
        reason: data.get("reason") || null,
        requires_dob: data.get("requires_dob") === "on",
      });
      vform.reset();
      status.textContent = `Visit with ${who(visit)} scheduled for ${fmt(visit.scheduled_at, { dateStyle: "full", timeStyle: "short" })}. Create its join link from the list.`;
      view.day = clinicLocal(visit.scheduled_at).slice(0, 10);
      await loadVisits();
    } catch (err) {
      box.textContent = plain(err);
      box.hidden = false;
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
  wireSchedule();
  await loadVisits();
  await searchPatients("");
  if (me.role !== "reviewer") watchLobby();
  document.body.dataset.ready = "true";
}

main();
