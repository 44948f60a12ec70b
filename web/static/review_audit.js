// Admin: read the audit log filtered by patient or user.
import { api, el, showError } from "./api.js";
import { fmtDateTime, patientName, showFatal, startPage } from "./review_common.js";

const form = document.getElementById("audit-form");
const patientSelect = document.getElementById("patient-id");
const actorSelect = document.getElementById("actor-id");
const names = new Map(); // actor id -> display name
const patients = new Map(); // patient id -> label

async function findPatients(q) {
  const data = await api("GET", `/api/patients?${new URLSearchParams({ q, limit: "20" })}`);
  for (const p of data.items) patients.set(p.id, `${patientName(p)} (${p.mrn})`);
  const keep = patientSelect.value;
  patientSelect.replaceChildren(el("option", { value: "" }, "Any patient"),
    ...data.items.map((p) => el("option", { value: p.id }, patients.get(p.id))));
  if (data.items.length === 1) patientSelect.value = data.items[0].id;
  else if (keep && patients.has(keep)) patientSelect.value = keep;
}

function row(e) {
  const patient = e.patient_id
    ? el("a", { href: `/review/patients/${e.patient_id}` }, patients.get(e.patient_id) || e.patient_id.slice(0, 8))
    : "";
  return el("tr", { class: `outcome-${e.outcome}` },
    el("td", {}, fmtDateTime(e.at)),
    el("td", {}, names.get(e.actor_id) || e.actor_id || "anonymous"),
    el("td", {}, e.actor_role),
    el("td", {}, e.action),
    el("td", {}, e.object_type ? `${e.object_type} ${(e.object_id || "").slice(0, 8)}` : ""),
    el("td", {}, patient),
    el("td", {}, e.outcome),
    el("td", {}, e.client_addr || ""));
}

async function load() {
  const box = document.querySelector("p.error");
  box.hidden = true;
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
  history.replaceState(null, "", `?${q}`);
  try {
    const data = await api("GET", `/api/admin/audit?${q}`);
    document.querySelector("#audit tbody").replaceChildren(...data.items.map(row));
    document.getElementById("no-events").hidden = data.items.length > 0;
  } catch (err) {
    showError(box, err);
  }
}

async function main() {
  await startPage();
  const users = await api("GET", "/api/admin/users");
  for (const u of users.items) names.set(u.id, u.display_name);
  actorSelect.append(...users.items.map((u) => el("option", { value: u.id }, `${u.display_name} (${u.role})`)));
  const initial = new URLSearchParams(location.search);
  const linked = initial.get("patient_id");
  if (linked) {
    const p = await api("GET", `/api/patients/${linked}`).catch(() => null);
    if (p) patients.set(p.id, `${patientName(p)} (${p.mrn})`);
    patientSelect.append(el("option", { value: linked }, patients.get(linked) || linked));
    patientSelect.value = linked;
  }
  if (initial.get("actor_id")) actorSelect.value = initial.get("actor_id");
  let timer = null;
  document.getElementById("patient-q").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => findPatients(ev.target.value), 250);
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  await load();
  document.body.dataset.ready = "true";
}

main().catch(showFatal);
