// Two visits side by side, expression by expression, with clips played in sync.
import { api, el } from "./api.js";
import { fmtDate, itemBadges, originalOf, patientName, previewOf, showFatal, startPage } from "./review_common.js";
import { changeTable } from "./review_measure.js";
import { clipPlayer, syncControls, syncGroup } from "./review_player.js";

const params = new URLSearchParams(location.search);

function still(step, take) {
  const preview = take && take.status !== "skipped" ? previewOf(take) : null;
  const original = originalOf(take);
  if (!preview || !original) return el("div", { class: "slot empty" }, el("span", { class: "muted" }, "Not captured"));
  // The comparison shows the full-resolution original: thumbnails hide the detail being compared.
  return el("div", { class: "slot" },
    el("a", { href: original.url, target: "_blank", rel: "noopener" },
      el("img", { src: original.content_type.startsWith("image/") ? original.url : preview.url, alt: `${step.label} still` })),
    el("div", { class: "chips" }, ...itemBadges(take, original)));
}

function side(step, take, clipPlayerOrNull) {
  const parts = [still(step, take && take.still)];
  if (clipPlayerOrNull) parts.push(clipPlayerOrNull.root);
  return el("div", { class: `side${clipPlayerOrNull ? " with-clip" : ""}` }, ...parts);
}

function row(label, stepId, a, b, measured) {
  const clipA = originalOf(a && a.clip);
  const clipB = originalOf(b && b.clip);
  const players = [clipA && clipPlayer(clipA, `${label} before`), clipB && clipPlayer(clipB, `${label} after`)];
  const step = { label };
  const out = el("section", { class: "compare-row", "data-step": stepId }, el("h3", {}, label),
    el("div", { class: "pair" }, side(step, a, players[0]), side(step, b, players[1])));
  const numbers = measured && changeTable(stepId, measured[0], measured[1], measured[1].units);
  if (numbers) out.append(numbers);
  if (players[0] && players[1]) out.append(syncControls(syncGroup(players)));
  else if (clipA || clipB) out.append(el("p", { class: "muted" }, "Clip captured at only one of the two visits."));
  return out;
}

const captured = (s) => s && (s.still || s.clip);

async function render(a, b) {
  const [ma, mb] = await Promise.all([a, b].map((id) => api("GET", `/api/visits/${id}/montage`)));
  // The numbers are an extra: a visit not measured (or an error) leaves the stills and clips as they are.
  const measured = await Promise.all([a, b].map((id) => api("GET", `/api/visits/${id}/measurements`)))
    .catch(() => null);
  const warn = document.getElementById("compare-warning");
  warn.hidden = ma.patient.id === mb.patient.id;
  warn.textContent = "These visits belong to different patients.";
  const byStep = (m) => new Map(m.steps.map((s) => [s.step_id, s]));
  const sa = byStep(ma);
  const sb = byStep(mb);
  // Only expressions captured at one visit at least; the montage shows the empty protocol slots.
  const order = [...ma.steps.map((s) => s.step_id), ...mb.steps.map((s) => s.step_id).filter((s) => !sa.has(s))]
    .filter((id) => captured(sa.get(id)) || captured(sb.get(id)));
  const header = el("div", { class: "pair head" },
    el("strong", {}, `Before: ${fmtDate(ma.visit.scheduled_at)}`), el("strong", {}, `After: ${fmtDate(mb.visit.scheduled_at)}`));
  document.getElementById("compare").replaceChildren(header,
    ...order.map((id) => row((sa.get(id) || sb.get(id)).label, id, sa.get(id), sb.get(id), measured)));
  return ma.patient;
}

async function main() {
  await startPage();
  const a = params.get("a");
  const b = params.get("b");
  if (!a || !b) throw Object.assign(new Error("Pick two visits from a patient's timeline."), { status: 400 });
  const patient = await render(a, b);
  document.getElementById("patient-name").textContent = patientName(patient);
  const link = document.getElementById("patient-link");
  link.textContent = patientName(patient);
  link.href = `/review/patients/${patient.id}`;
  const timeline = await api("GET", `/api/patients/${patient.id}/timeline`);
  for (const [id, chosen] of [["pick-a", a], ["pick-b", b]]) {
    const sel = document.getElementById(id);
    sel.replaceChildren(...timeline.visits.map((tv) => el("option", { value: tv.visit.id }, fmtDate(tv.visit.scheduled_at))));
    sel.value = chosen;
    sel.addEventListener("change", () => {
      const next = new URLSearchParams({ a: document.getElementById("pick-a").value, b: document.getElementById("pick-b").value });
      location.assign(`/review/compare?${next}`);
    });
  }
  document.body.dataset.ready = "true";
}

main().catch(showFatal);
