// Face measurements on the visit page: landmark overlay per still, a table per step, eFACE prefill values.
// Numbers come from /api/visits/{id}/measurements; the server computes everything, this only shows it.
import { api, el } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
export const DISCLAIMER = "computed from landmarks — decision support, not a diagnosis";
const NAMES = {
  brow_height: "Brow height", mrd1: "MRD1", mrd2: "MRD2", palpebral_fissure_height: "Palpebral fissure",
  commissure_excursion: "Commissure excursion", smile_angle: "Smile angle", commissure_height: "Commissure height",
  lower_lip_height: "Lower lip height", dental_show: "Dental show",
};
const UNITS = { mm: "mm", deg: "°", mm2: "mm²" };

function num(v, digits = 1) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
}

// The still whose landmarks a step's card overlays: the one the visit's numbers use, else any measured copy.
function stillFor(data, stepId) {
  const used = data.steps[stepId]?.media_id;
  const withPoints = data.stills.filter((s) => s.step_id === stepId && s.measurement?.landmarks);
  return withPoints.find((s) => s.media_id === used) || withPoints[0] || null;
}

const byStep = new Map();  // step id -> the still whose landmarks are drawn

// Points are in the measured file's pixels: a viewBox of the file's size scales them to the shown image
// ("slice" for the montage's object-fit: cover, "meet" for the viewer's object-fit: contain).
function overlay(still, fit = "slice") {
  const m = still.measurement;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "landmarks");
  svg.setAttribute("viewBox", `0 0 ${m.width} ${m.height}`);
  svg.setAttribute("preserveAspectRatio", `xMidYMid ${fit}`);
  svg.setAttribute("aria-hidden", "true");
  const r = Math.max(m.width, m.height) / 300;
  for (const [x, y] of m.landmarks) {
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", x.toFixed(1));
    c.setAttribute("cy", y.toFixed(1));
    c.setAttribute("r", r.toFixed(1));
    svg.append(c);
  }
  return svg;  // hidden by CSS until toggled (SVG elements have no `hidden` property)
}

function toggleFor(svg) {
  const toggle = el("button", { type: "button", class: "secondary small landmark-toggle", "aria-pressed": "false" }, "Landmarks");
  toggle.addEventListener("click", () => {
    const shown = svg.classList.toggle("shown");
    toggle.setAttribute("aria-pressed", String(shown));
  });
  return toggle;
}

function addToggle(card, still) {
  const slot = card.querySelector(".slot.still");
  const img = slot?.querySelector("img");
  if (!img) return;
  const frame = img.parentElement;
  frame.classList.add("overlay-frame");
  const svg = overlay(still);
  frame.append(svg);
  slot.after(toggleFor(svg));
}

// The viewer's full-size still with its own overlay and toggle (nothing when the step was not measured).
export function viewerStill(stepId, img) {
  const still = byStep.get(stepId);
  if (!still) return [img];
  const svg = overlay(still, "meet");
  return [el("div", { class: "overlay-frame viewer-frame" }, img, svg), toggleFor(svg)];
}

function stepTable(stepId, label, step, units) {
  const moves = step.movement !== null;
  const head = ["Measurement", "Right", "Left", "Asymmetry %"];
  if (moves) head.push("Movement right", "Movement left", "Movement asym. %");
  const rows = Object.entries(step.metrics).map(([name, v]) => {
    const unit = UNITS[units[name]] || units[name] || "";
    const cells = [`${NAMES[name] || name} (${unit})`, num(v.right), num(v.left), num(step.asymmetry_pct[name], 0)];
    if (moves) {
      const mv = step.movement[name];
      cells.push(num(mv?.right), num(mv?.left), num(step.movement_asymmetry_pct?.[name], 0));
    }
    return el("tr", { "data-metric": name }, ...cells.map((c, i) => el(i ? "td" : "th", i ? {} : { scope: "row" }, c)));
  });
  return el("div", { class: "measure-step", "data-step": stepId },
    el("h3", {}, label),
    el("div", { class: "table-scroll" }, el("table", { class: "measurements" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows))));
}

function sideNote(data) {
  const side = data.affected_side ? `${data.affected_side} (${data.affected_side_source})` : "unknown";
  return `Sides are the subject's own; affected side: ${side}. Movement is the change from rest; asymmetry is |right − left| / healthy side. Values ${DISCLAIMER}.`;
}

// Decorates the montage (already rendered) and fills the measurements section; returns the data (or null).
export async function initMeasurements(visitId, labels) {
  const section = document.getElementById("measurements");
  let data;
  try {
    data = await api("GET", `/api/visits/${visitId}/measurements?landmarks=true`);
  } catch (err) {
    section.querySelector(".body").replaceChildren(el("p", { class: "muted" }, `Measurements unavailable: ${err.message}`));
    return null;
  }
  for (const card of document.querySelectorAll("#montage .step")) {
    const still = stillFor(data, card.dataset.step);
    if (!still) continue;
    byStep.set(card.dataset.step, still);
    addToggle(card, still);
  }
  const steps = Object.entries(data.steps);
  const flagged = data.stills.filter((s) => s.measurement && s.measurement.status !== "ok");
  section.querySelector(".body").replaceChildren(
    el("p", { class: "disclaimer" }, sideNote(data)),
    ...(steps.length ? steps.map(([id, step]) => stepTable(id, labels[id] || id, step, data.units))
      : [el("p", { class: "muted" }, "No still of this visit has been measured yet.")]),
    ...flagged.map((s) => el("p", { class: "muted" }, `${labels[s.step_id] || s.step_id}: not measured (${s.measurement.status.replace("_", " ")}).`)));
  return data;
}

function change(a, b) {
  return a === null || a === undefined || b === null || b === undefined ? null : b - a;
}

function signed(v, digits = 1) {
  return v === null ? "–" : `${v > 0 ? "+" : ""}${Number(v).toFixed(digits)}`;
}

// Two visits' numbers for one expression: each side before and after and its change; for expressions the
// movement from rest (what treatment aims to change) and the movement asymmetry. Null when either is unmeasured.
export function changeTable(stepId, before, after, units) {
  const a = before?.steps?.[stepId];
  const b = after?.steps?.[stepId];
  if (!a || !b) return null;
  const moves = a.movement !== null && b.movement !== null;
  const source = moves ? "movement" : "metrics";
  const asym = moves ? "movement_asymmetry_pct" : "asymmetry_pct";
  const rows = Object.keys(b.metrics).filter((name) => a.metrics[name]).map((name) => {
    const unit = UNITS[units[name]] || units[name] || "";
    const va = a[source][name] || {};
    const vb = b[source][name] || {};
    const cells = [`${NAMES[name] || name} (${unit})`,
      `${num(va.right)} → ${num(vb.right)}`, signed(change(va.right, vb.right)),
      `${num(va.left)} → ${num(vb.left)}`, signed(change(va.left, vb.left)),
      `${num(a[asym]?.[name], 0)} → ${num(b[asym]?.[name], 0)}`];
    return el("tr", { "data-metric": name }, ...cells.map((c, i) => el(i ? "td" : "th", i ? {} : { scope: "row" }, c)));
  });
  if (!rows.length) return null;
  const what = moves ? "Movement from rest" : "Value";
  const head = ["Measurement", `${what}, right`, "Change", `${what}, left`, "Change", "Asymmetry %"];
  return el("div", { class: "measure-change", "data-step": stepId },
    el("p", { class: "disclaimer" }, `${what} before → after; ${DISCLAIMER}.`),
    el("div", { class: "table-scroll" }, el("table", { class: "measurements" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows))));
}
