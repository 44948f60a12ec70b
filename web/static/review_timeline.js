// Patient timeline: every visit as a row of standardized thumbnails, newest first.
import { api, el } from "./api.js";
import { initTrend } from "./review_trend.js";
import { badge, fmtDate, fmtDateTime, gradeChips, patientName, showFatal, startPage } from "./review_common.js";

const patientId = location.pathname.split("/").pop();
const picked = new Set();
const compareBtn = document.getElementById("compare");
let visitsById = new Map();

function visitRow(tv) {
  const v = tv.visit;
  const box = el("input", { type: "checkbox", class: "pick", "aria-label": `Compare visit of ${fmtDate(v.scheduled_at)}` });
  box.addEventListener("change", () => {
    if (box.checked) picked.add(v.id); else picked.delete(v.id);
    compareBtn.disabled = picked.size !== 2;
  });
  const strip = el("div", { class: "strip" }, ...tv.thumbs.map((t) =>
    el("figure", { class: "thumb", "data-step": t.step_id },
      el("img", { src: t.url, alt: t.label, loading: "lazy", title: `${t.label} (${t.provenance})` }),
      el("figcaption", {}, t.label, ...t.flags.map((f) => badge(f, "flag"))))));
  if (!tv.thumbs.length) strip.append(el("p", { class: "muted" }, "No stills captured."));
  return el("li", { class: "card visit-row", "data-visit-id": v.id },
    el("div", { class: "visit-head" },
      el("label", { class: "inline" }, box, el("strong", {}, fmtDateTime(v.scheduled_at))),
      el("span", { class: "muted" }, `${v.clinician_name} · ${v.state.replace("_", " ")}`),
      el("span", { class: "muted" }, `${tv.stills} stills · ${tv.clips} clips`),
      el("span", { class: "chips" }, ...gradeChips(tv.grades)),
      el("a", { class: "button open-visit", href: `/review/visits/${v.id}` }, "Open montage")),
    strip);
}

async function main() {
  await startPage();
  const data = await api("GET", `/api/patients/${patientId}/timeline`);
  const p = data.patient;
  document.title = `${patientName(p)} · Review`;
  document.getElementById("patient-name").textContent = patientName(p);
  document.getElementById("patient-meta").textContent =
    `MRN ${p.mrn} · born ${fmtDate(p.birth_date)} · affected side: ${p.affected_side}`;
  document.getElementById("patient-audit").href = `/review/audit?${new URLSearchParams({ patient_id: p.id })}`;
  visitsById = new Map(data.visits.map((tv) => [tv.visit.id, tv.visit]));
  document.getElementById("visits").replaceChildren(...data.visits.map(visitRow));
  document.getElementById("no-visits").hidden = data.visits.length > 0;
  compareBtn.addEventListener("click", () => {
    // Before = the earlier visit, after = the later one, whatever order they were ticked in.
    const [a, b] = [...picked].sort((x, y) =>
      new Date(visitsById.get(x).scheduled_at) - new Date(visitsById.get(y).scheduled_at));
    location.assign(`/review/compare?${new URLSearchParams({ a, b })}`);
  });
  try {
    await initTrend(patientId);
  } catch (err) {
    // A reader without access to measurements still gets the timeline.
    console.warn("trend unavailable", err);
  }
  document.body.dataset.ready = "true";
}

main().catch(showFatal);
