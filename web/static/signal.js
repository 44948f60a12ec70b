// Signaling over one WebSocket: authenticate, dispatch typed messages, reconnect and resume.
//
// Events (CustomEvent, detail = message): every server message type ("join", "waiting", "admit",
// "offer", ...), plus "status" with detail {state: "connecting"|"open"|"reconnecting"|"closed"};
// "reconnecting" carries retryInMs, "closed" the close code.
//
// Every closed socket is reopened with back-off, except when the server said there is nothing to
// come back to: credentials refused (4001, e.g. the visit ended), foreign origin (4003), the same
// participant opened elsewhere (4010), declined (4011), visit ended (4012), removed by a clinician
// (4014). A socket closed for
// too many rejected messages (4008) or for being slow (4009) comes back too: a page stuck without
// signaling is worse for a visit than a noisy one.

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const FINAL_CODES = new Set([4001, 4003, 4010, 4011, 4012, 4014]);
let counter = 0;

// What a page shows for a "status" event, in plain words.
export function describeStatus(detail) {
  if (detail.state === "connecting") return "Connecting…";
  if (detail.state === "open") return "Connected";
  if (detail.state === "reconnecting") {
    const secs = Math.round((detail.retryInMs || 0) / 1000);
    return secs >= 1 ? `Connection lost. Reconnecting in ${secs} s…` : "Connection lost. Reconnecting…";
  }
  return "Disconnected";
}

function msgId() {
  counter += 1;
  return `c${Date.now().toString(36)}${counter}`;
}

export class SignalClient extends EventTarget {
  // credential: {session: true} for staff (cookie) or {token: "<patient session token>"}.
  constructor(path, credential) {
    super();
    this.path = path;
    this.credential = credential;
    this.resumeToken = null;
    this.ws = null;
    this.attempt = 0;
    this.closedByUs = false;
    this.retryTimer = null;
    this.me = null;
    this.resumeFailed = false;
    // Back online: retry now instead of waiting out the back-off.
    window.addEventListener("online", () => {
      if (this.state === "reconnecting" && !this.closedByUs && (!this.ws || this.ws.readyState === WebSocket.CLOSED)) {
        clearTimeout(this.retryTimer);
        this.connect();
      }
    });
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  connect() {
    this.closedByUs = false;
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting", { retryInMs: 0 });
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      const first = this.resumeToken
        ? { type: "resume", resume_token: this.resumeToken }
        : { type: "auth", ...this.credential };
      this.sendRaw(first);
    });
    ws.addEventListener("message", (ev) => this.onMessage(ev.data));
    ws.addEventListener("close", (ev) => this.onClose(ev));
  }

  onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === "join") {
      this.me = msg;
      this.resumeToken = msg.resume_token;
      this.attempt = 0;
      this.setStatus("open");
    }
    if (msg.type === "error" && msg.code === "resume_failed") {
      // The slot expired; the server closes this socket and we start over with the credential.
      this.resumeToken = null;
      this.resumeFailed = true;
    }
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  onClose(ev) {
    if (this.ws && this.ws.readyState !== WebSocket.CLOSED) return;
    // The server refused us for good (auth failed, foreign origin, abuse, superseded, declined,
    // visit ended, removed): do not retry. A failed resume is retried at once with the credential.
    const retryable = this.resumeFailed || !FINAL_CODES.has(ev.code);
    this.resumeFailed = false;
    const final = this.closedByUs || !retryable;
    if (final) {
      this.setStatus("closed", { code: ev.code, reason: ev.reason });
      return;
    }
    // A socket closed for abuse or slowness waits the longest step, so a misbehaving page
    // cannot hammer the server.
    const step = ev.code === 4008 || ev.code === 4009 ? BACKOFF_MS.length - 1 : Math.min(this.attempt, BACKOFF_MS.length - 1);
    const delay = Math.round(BACKOFF_MS[step] * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.setStatus("reconnecting", { code: ev.code, retryInMs: delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setStatus(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...extra } }));
  }

  sendRaw(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ v: 1, id: msgId(), ...obj }));
    return true;
  }

  // Sends a typed message; returns false when the socket is down (callers retry after resume).
  send(type, fields = {}) {
    return this.sendRaw({ type, ...fields });
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "bye");
  }
}
