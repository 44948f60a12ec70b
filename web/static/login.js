import { api, showError } from "./api.js";

const form = document.getElementById("login-form");

// Only a path on this origin: never an open redirect ("//evil", "/\\evil", "https://evil" all resolve elsewhere).
export function safeNext(next) {
  if (!next) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}
const errorBox = document.getElementById("login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  const data = new FormData(form);
  try {
    await api("POST", "/api/auth/login", { username: data.get("username"), password: data.get("password") });
    location.assign(safeNext(new URLSearchParams(location.search).get("next")));
  } catch (err) {
    showError(errorBox, err);
  }
});
