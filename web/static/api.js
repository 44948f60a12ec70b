// Thin fetch wrapper: JSON in/out, CSRF header for cookie sessions, bearer for patients.

let csrfToken = null;
let bearer = null;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function setCsrf(token) { csrfToken = token; }
export function setBearer(token) { bearer = token; }

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  else if (csrfToken && method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = data.error || {};
    throw new ApiError(resp.status, err.code || "http_error", err.message || resp.statusText, err.details);
  }
  return data;
}

// Loads the session for a staff page; sends the user to /login when it has expired.
export async function requireStaff() {
  try {
    const me = await api("GET", "/api/auth/me");
    setCsrf(me.csrf_token);
    return me;
  } catch (e) {
    if (e.status === 401) window.location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw e;
  }
}

export function showError(el, err) {
  const fields = (err.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
  el.textContent = fields ? `${err.message} (${fields})` : err.message;
  el.hidden = false;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
