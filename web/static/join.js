import { api } from "./api.js";

const token = location.pathname.split("/").pop();
const summary = document.getElementById("visit-summary");

async function main() {
  try {
    const info = await api("GET", `/api/join/${encodeURIComponent(token)}`);
    const when = new Date(info.scheduled_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    summary.textContent = `With ${info.clinician_name}, ${when}.`;
  } catch (err) {
    summary.textContent = err.message;
  }
}

main();
