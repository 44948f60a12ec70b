// Shared by the review pages: the top bar, formatting, badges, and picking the file to show.
import { api, el, requireStaff } from "./api.js";

export async function startPage() {
  const me = await requireStaff();
  document.getElementById("whoami").textContent = `${me.display_name} (${me.role})`;
  document.body.dataset.role = me.role;
  for (const a of document.querySelectorAll(".admin-only")) a.hidden = me.role !== "admin";
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/api/auth/logout");
    location.assign("/login");
  });
  return me;
}

export function fmtDate(iso) {
  return new Date(iso).toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

export function fmtDateTime(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function patientName(p) {
  return `${p.family_name}, ${p.given_name}`;
}

export function badge(text, kind = "") {
  return el("span", { class: `badge ${kind}`.trim() }, text);
}

// Provenance and quality flags, shown on every item so a degraded frame is never mistaken for a full one.
export function itemBadges(take, file) {
  const out = [];
  if (file) out.push(badge(file.provenance, `prov-${file.provenance}`));
  if (file && file.width && file.height) out.push(badge(`${file.width}×${file.height}`, "dim"));
  for (const f of take.flags) out.push(badge(f, "flag"));
  // The patient's full-resolution copy never arrived: what is shown is the stream copy.
  if (take.device_copy === "missing") out.push(badge("device copy missing", "flag device-missing"));
  if (take.earlier_takes) out.push(badge(`${take.earlier_takes} earlier take${take.earlier_takes > 1 ? "s" : ""}`, "dim"));
  if (take.notes) out.push(badge(`${take.notes} note${take.notes > 1 ? "s" : ""}`, "note"));
  return out;
}

// The original to open or download: the primary copy, else the newest non-thumbnail file.
export function originalOf(take) {
  if (!take) return null;
  const originals = take.media.filter((m) => !m.is_thumbnail);
  return originals.find((m) => m.is_primary) || originals[originals.length - 1] || null;
}

// The small image a grid shows: the thumbnail, else the original still.
export function previewOf(take) {
  if (!take) return null;
  const images = take.media.filter((m) => m.content_type.startsWith("image/"));
  return images.find((m) => m.is_thumbnail) || images.find((m) => m.is_primary) || images[images.length - 1] || null;
}

export function gradeChips(grades) {
  const chips = [];
  if (grades.house_brackmann) chips.push(badge(`HB ${grades.house_brackmann.label}`, "grade"));
  if (grades.sunnybrook) chips.push(badge(`Sunnybrook ${grades.sunnybrook.composite}`, "grade"));
  if (grades.eface) chips.push(badge(`eFACE ${grades.eface.total}`, "grade"));
  return chips;
}

export function showFatal(err) {
  const main = document.querySelector("main");
  main.replaceChildren(el("section", { class: "card" }, el("h1", {}, err.status === 404 ? "Not found" : "Error"),
    el("p", { class: "error", role: "alert" }, err.message)));
  document.body.dataset.ready = "error";
}
