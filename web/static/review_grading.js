// Grading forms. The server validates and computes every score; this module only shows them.
import { api, el, showError } from "./api.js";
import { fmtDateTime } from "./review_common.js";

const ROMAN = ["I", "II", "III", "IV", "V", "VI"];
const SB_EXPRESSIONS = [["brow_lift", "Brow lift"], ["gentle_eye_closure", "Gentle eye closure"],
  ["open_mouth_smile", "Open-mouth smile"], ["snarl", "Snarl"], ["lip_pucker", "Lip pucker"]];
const SB_RESTING = [["eye", "Eye", 1], ["cheek", "Cheek (nasolabial fold)", 2], ["mouth", "Mouth", 1]];
const EFACE = {
  static: [["resting_brow", "Resting brow"], ["palpebral_fissure", "Palpebral fissure"],
    ["nasolabial_fold", "Nasolabial fold"], ["oral_commissure", "Oral commissure"]],
  dynamic: [["brow_elevation", "Brow elevation"], ["gentle_eye_closure", "Gentle eye closure"],
    ["full_eye_closure", "Full eye closure"], ["oral_commissure_smile", "Oral commissure with smile"],
    ["nasolabial_fold_depth_smile", "Nasolabial fold depth with smile"],
    ["nasolabial_fold_orientation_smile", "Nasolabial fold orientation with smile"],
    ["lower_lip_eee", "Lower lip movement (EEE)"]],
  synkinesis: [["ocular_synkinesis", "Ocular"], ["midfacial_synkinesis", "Midfacial"],
    ["mentalis_synkinesis", "Mentalis"], ["platysmal_synkinesis", "Platysmal"]],
};

// Form item <- computed eFACE item of the visit analysis (GET /api/visits/{id}/measurements "eface").
const COMPUTED = {
  resting_brow: "brow_rest", brow_elevation: "brow_elevation", gentle_eye_closure: "eye_closure_gentle",
  full_eye_closure: "eye_closure_full", oral_commissure_smile: "smile", lower_lip_eee: "lower_lip",
  ocular_synkinesis: "ocular_synkinesis",
};

// Brow at rest is computed on eFACE's 0-200 scale (100 = level); the form takes it folded to 0-100.
function formValue(field, value) {
  const v = field === "resting_brow" ? 100 - Math.abs(100 - value) : value;
  return String(Math.round(Math.max(0, Math.min(100, v))));
}

// Prefill from the stills' measurements: marked "computed", still editable; editing drops the mark.
function prefill(computed) {
  const form = document.getElementById("eface-form");
  for (const [field, key] of Object.entries(COMPUTED)) {
    const item = computed[key];
    const input = form.elements.namedItem(field);
    if (!item || !input) continue;
    input.value = formValue(field, item.value);
    input.classList.add("computed");
    const mark = el("small", { class: "computed-mark", title: `${item.basis}; computed from landmarks — decision support, not a diagnosis` }, "computed");
    input.after(mark);
    input.addEventListener("input", () => {
      input.classList.remove("computed");
      mark.remove();
    }, { once: true });
  }
}

function range(lo, hi) {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

// Every score starts unchosen and is required: saving never records a grade nobody picked.
function placeholder() {
  return el("option", { value: "", disabled: "", selected: "" }, "–");
}

function select(name, label, lo, hi) {
  return el("label", {}, label, el("select", { name, required: "" }, placeholder(), ...range(lo, hi).map((n) => el("option", { value: String(n) }, String(n)))));
}

export function summary(g) {
  const s = g.scores;
  if (g.scale === "house_brackmann") return `House-Brackmann grade ${s.label}`;
  if (g.scale === "sunnybrook") {
    return `Sunnybrook composite ${s.composite} (voluntary ${s.voluntary} - resting ${s.resting} - synkinesis ${s.synkinesis})`;
  }
  return `eFACE total ${s.total} (static ${s.static}, dynamic ${s.dynamic}, synkinesis ${s.synkinesis})`;
}

function buildForms() {
  document.querySelector("#hb-form select").append(placeholder(), ...ROMAN.map((r, i) => el("option", { value: String(i + 1) }, r)));
  const sb = document.getElementById("sb-form");
  sb.querySelector('[data-group="resting"]').append(...SB_RESTING.map(([k, l, hi]) => select(`resting.${k}`, l, 0, hi)));
  sb.querySelector('[data-group="voluntary"]').append(...SB_EXPRESSIONS.map(([k, l]) => select(`voluntary.${k}`, l, 1, 5)));
  sb.querySelector('[data-group="synkinesis"]').append(...SB_EXPRESSIONS.map(([k, l]) => select(`synkinesis.${k}`, l, 0, 3)));
  const ef = document.getElementById("eface-form");
  for (const [group, items] of Object.entries(EFACE)) {
    ef.querySelector(`[data-group="${group}"]`).append(...items.map(([k, l]) =>
      el("label", {}, l, el("input", { name: k, type: "number", min: "0", max: "100", step: "1", required: "" }))));
  }
}

// "resting.eye" -> { resting: { eye: 1 } }; every value is an integer.
function nested(form) {
  const out = {};
  for (const [key, value] of new FormData(form)) {
    const path = key.split(".");
    let node = out;
    for (const p of path.slice(0, -1)) node = node[p] ||= {};
    node[path[path.length - 1]] = Number(value);
  }
  return out;
}

function renderGrades(data) {
  document.getElementById("current-grades").replaceChildren(...data.current.map((g) =>
    el("p", { class: `current-grade grade-${g.scale}` }, summary(g), el("small", { class: "muted" }, ` · ${g.author_name}, ${fmtDateTime(g.created_at)}`))));
  document.querySelector("#grade-history tbody").replaceChildren(...data.history.map((g) => el("tr", {},
    el("td", {}, fmtDateTime(g.created_at)), el("td", {}, g.scale.replace("_", "-")),
    el("td", {}, summary(g)), el("td", {}, g.author_name))));
}

export async function initGrading(visitId, me, computed = {}) {
  buildForms();
  prefill(computed);
  const canGrade = me.role === "clinician" || me.role === "admin";
  document.getElementById("grading-readonly").hidden = canGrade;
  const forms = { "hb-form": "house_brackmann", "sb-form": "sunnybrook", "eface-form": "eface" };
  for (const [id, scale] of Object.entries(forms)) {
    const form = document.getElementById(id);
    for (const c of form.elements) c.disabled = !canGrade;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const box = form.querySelector(".error");
      box.hidden = true;
      const items = nested(form);
      try {
        const saved = await api("POST", `/api/visits/${visitId}/grades`, { scale, items });
        form.querySelector(".result").textContent = `Saved: ${summary(saved)}`;
        renderGrades(await api("GET", `/api/visits/${visitId}/grades`));
      } catch (err) {
        showError(box, err);
      }
    });
  }
  renderGrades(await api("GET", `/api/visits/${visitId}/grades`));
}
