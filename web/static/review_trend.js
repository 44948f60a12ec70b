// Key face measurements over a patient's visits: one small inline-SVG plot per measurement, both sides.
import { api, el } from "./api.js";
import { fmtDate } from "./review_common.js";
import { DISCLAIMER } from "./review_measure.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 260;
const H = 140;
const PAD = { l: 38, r: 12, t: 12, b: 22 };
const SIDES = [["right", "#c2410c"], ["left", "#1d4ed8"]];
const STEP_NAMES = { rest: "rest", brow_raise: "brow raise", eye_close_gentle: "gentle eye closure",
  smile_open: "open smile", lower_teeth: "lower teeth" };
const UNITS = { mm: "mm", deg: "°", mm2: "mm²" };

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

function plot(series) {
  const pts = series.points;
  const values = pts.flatMap((p) => [p.right, p.left]);
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) hi = lo + 1;
  const x = (i) => PAD.l + (pts.length === 1 ? (W - PAD.l - PAD.r) / 2 : (i * (W - PAD.l - PAD.r)) / (pts.length - 1));
  const y = (v) => PAD.t + ((hi - v) * (H - PAD.t - PAD.b)) / (hi - lo);
  const unit = UNITS[series.unit] || series.unit;
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${series.metric} ${series.kind} at ${series.step_id}, right and left, over ${pts.length} visits` });
  svg.append(node("line", { x1: PAD.l, y1: y(lo), x2: W - PAD.r, y2: y(lo), stroke: "#9aa5b1" }),
    node("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b, stroke: "#9aa5b1" }),
    node("text", { x: PAD.l - 4, y: y(hi) + 4, "text-anchor": "end", "font-size": 11 }, hi.toFixed(1)),
    node("text", { x: PAD.l - 4, y: y(lo) + 4, "text-anchor": "end", "font-size": 11 }, lo.toFixed(1)));
  pts.forEach((p, i) => svg.append(node("text", { x: x(i), y: H - 8, "text-anchor": "middle", "font-size": 11 }, fmtDate(p.scheduled_at))));
  for (const [side, color] of SIDES) {
    if (pts.length > 1) {
      svg.append(node("polyline", { points: pts.map((p, i) => `${x(i)},${y(p[side])}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    }
    pts.forEach((p, i) => {
      const c = node("circle", { cx: x(i), cy: y(p[side]), r: 3.5, fill: color, "data-side": side });
      c.append(node("title", {}, `${side} ${p[side].toFixed(1)} ${unit} · ${fmtDate(p.scheduled_at)}`));
      svg.append(c);
    });
  }
  const what = series.kind === "movement" ? "movement from rest" : "";
  return el("figure", { class: "trend-plot", "data-metric": series.metric, "data-step": series.step_id, "data-kind": series.kind },
    el("h3", {}, `${series.metric.replaceAll("_", " ")} (${unit}) · ${STEP_NAMES[series.step_id] || series.step_id} ${what}`),
    svg);
}

export async function initTrend(patientId) {
  const box = document.getElementById("trend");
  const data = await api("GET", `/api/patients/${patientId}/measurements/trend`);
  const shown = data.series.filter((s) => s.points.length > 0);
  box.hidden = shown.length === 0;
  box.querySelector(".trend-plots").replaceChildren(...shown.map(plot));
  box.querySelector(".legend").replaceChildren(
    ...SIDES.map(([side]) => el("span", { class: `chip side-${side}` }, `● subject's ${side}`)),
    el("span", { class: "muted" }, DISCLAIMER));
}
