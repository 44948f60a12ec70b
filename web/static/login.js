import { api, showError } from "./api.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  const data = new FormData(form);
  try {
    await api("POST", "/api/auth/login", { username: data.get("username"), password: data.get("password") });
    const next = new URLSearchParams(location.search).get("next");
    // Only same-site paths: never an open redirect.
    location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } catch (err) {
    showError(errorBox, err);
  }
});
