// Patient search: the entry point of review.
import { api, el } from "./api.js";
import { fmtDate, patientName, showFatal, startPage } from "./review_common.js";

const tbody = document.querySelector("#results tbody");
const none = document.getElementById("no-results");

async function search(q) {
  const data = await api("GET", `/api/patients?${new URLSearchParams({ q, limit: "50" })}`);
  tbody.replaceChildren(...data.items.map((p) => el("tr", { "data-patient-id": p.id },
    el("td", {}, el("a", { href: `/review/patients/${p.id}` }, patientName(p))),
    el("td", {}, p.mrn),
    el("td", {}, fmtDate(p.birth_date)),
    el("td", {}, p.affected_side))));
  none.hidden = data.items.length > 0;
}

async function main() {
  await startPage();
  const input = document.getElementById("q");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value), 250);
  });
  document.getElementById("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search(input.value);
  });
  await search("");
  document.body.dataset.ready = "true";
}

main().catch(showFatal);
