// Notes on the capture open in the viewer.
import { api, el, showError } from "./api.js";
import { fmtDateTime } from "./review_common.js";

const list = document.getElementById("notes-list");
const form = document.getElementById("note-form");
let current = null; // { visitId, captureId }

function noteItem(n) {
  return el("li", { class: "note" }, el("p", {}, n.text),
    el("small", { class: "muted" }, `${n.author_name} · ${fmtDateTime(n.created_at)}`));
}

export async function openNotes(visitId, take) {
  current = { visitId, captureId: take.capture_id };
  list.replaceChildren();
  form.querySelector(".error").hidden = true;
  const data = await api("GET", `/api/visits/${visitId}/captures/${take.capture_id}/notes`);
  list.replaceChildren(...data.items.map(noteItem));
}

export function initNotes() {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = form.querySelector(".error");
    box.hidden = true;
    try {
      const note = await api("POST", `/api/visits/${current.visitId}/captures/${current.captureId}/notes`,
        { text: form.elements.text.value });
      list.append(noteItem(note));
      form.reset();
    } catch (err) {
      showError(box, err);
    }
  });
}
