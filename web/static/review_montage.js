// One visit: the standard montage in protocol order, a viewer with notes, export links, grading.
import { api, el } from "./api.js";
import { badge, fmtDate, fmtDateTime, itemBadges, originalOf, patientName, previewOf, showFatal, startPage } from "./review_common.js";
import { initGrading } from "./review_grading.js";
import { initMeasurements, viewerStill } from "./review_measure.js";
import { initNotes, openNotes } from "./review_notes.js";
import { clipPlayer } from "./review_player.js";

const visitId = location.pathname.split("/").pop();
const viewer = document.getElementById("viewer");

function fileMeta(file) {
  const parts = [file.content_type, `${(file.size / 1024).toFixed(0)} KiB`];
  if (file.duration_ms) parts.push(`${(file.duration_ms / 1000).toFixed(1)} s`);
  if (file.frames) parts.push(`${file.frames} frames`);
  return parts.join(" · ");
}

function open(step, take) {
  const file = originalOf(take);
  document.getElementById("viewer-title").textContent = `${step.label} · ${take.kind}`;
  const body = document.getElementById("viewer-body");
  if (!file) body.replaceChildren(el("p", { class: "muted" }, `No file (${take.status}).`));
  else if (take.kind === "clip") body.replaceChildren(clipPlayer(file, step.label).root);
  else body.replaceChildren(...viewerStill(step.step_id, el("img", { class: "full", src: file.url, alt: `${step.label} still` })));
  const meta = document.getElementById("viewer-meta");
  meta.replaceChildren(...itemBadges(take, file));
  if (file) {
    meta.append(el("span", { class: "muted" }, fileMeta(file)),
      el("a", { class: "download", href: `${file.url}?download=true`, download: "" }, "Download original"));
    for (const other of take.media.filter((m) => m !== file && !m.is_thumbnail)) {
      meta.append(el("a", { href: `${other.url}?download=true`, download: "" }, `Download ${other.provenance} copy`));
    }
  }
  openNotes(visitId, take);
  viewer.showModal();
}

function cell(step, take, kind) {
  if (!take) return el("div", { class: `slot empty ${kind}` }, el("span", { class: "muted" }, "Not captured"));
  if (take.status === "skipped") {
    return el("div", { class: `slot empty ${kind}` }, el("span", { class: "muted" }, `Skipped: ${take.skip_reason || "no reason"}`));
  }
  const file = originalOf(take);
  let face;
  if (kind === "still") {
    const preview = previewOf(take);
    face = preview ? el("img", { src: preview.url, alt: `${step.label} still`, loading: "lazy" }) : el("span", {}, take.status);
  } else {
    const secs = file && file.duration_ms ? ` ${(file.duration_ms / 1000).toFixed(1)} s` : "";
    face = el("span", { class: "clip-label" }, `▶ Clip${secs}`);
  }
  return el("div", { class: `slot ${kind}` },
    el("button", { class: `open-${kind}`, type: "button", onclick: () => open(step, take), "aria-label": `Open ${step.label} ${kind}` }, face),
    el("div", { class: "chips" }, ...itemBadges(take, file)));
}

function stepCard(step) {
  return el("article", { class: "step", "data-step": step.step_id },
    el("h3", {}, step.label),
    cell(step, step.still, "still"),
    cell(step, step.clip, "clip"));
}

async function main() {
  const me = await startPage();
  const data = await api("GET", `/api/visits/${visitId}/montage`);
  const p = data.patient;
  const v = data.visit;
  document.title = `${patientName(p)} ${fmtDate(v.scheduled_at)} · Review`;
  const link = document.getElementById("patient-link");
  link.textContent = patientName(p);
  link.href = `/review/patients/${p.id}`;
  document.getElementById("visit-title").textContent = `Visit of ${fmtDateTime(v.scheduled_at)}`;
  document.getElementById("visit-meta").replaceChildren(
    `${patientName(p)} · MRN ${p.mrn} · affected side ${p.affected_side} · ${v.clinician_name} · `, badge(v.state));
  document.getElementById("export-fhir").href = `/api/visits/${visitId}/export/fhir`;
  document.getElementById("export-zip").href = `/api/visits/${visitId}/export/zip`;
  document.getElementById("montage").replaceChildren(...data.steps.map(stepCard));
  document.getElementById("viewer-close").addEventListener("click", () => viewer.close());
  viewer.addEventListener("close", () => {
    for (const video of viewer.querySelectorAll("video")) video.pause();
  });
  initNotes(me);
  const labels = Object.fromEntries(data.steps.map((s) => [s.step_id, s.label]));
  const measured = await initMeasurements(visitId, labels);
  await initGrading(visitId, me, measured ? measured.eface : {});
  document.body.dataset.ready = "true";
}

main().catch(showFatal);
