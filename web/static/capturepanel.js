// The clinician's protocol panel: steps in order, instruction pushed to the patient, one-click
// capture (Space or C), thumbnails, retake, skip with a reason, progress and completion.
//
// Updates are pushed: the server sends `capture_changed` over the visit socket and the panel
// reads the capture once. It polls (slowly) only while that socket is down. The panel's elements
// are built once and updated in place, keyed by step and take kind, so a pushed update never
// replaces the button the clinician's keyboard focus is on.
import { api, el } from "./api.js";
import { TakeDelivery } from "./takedelivery.js";

const FALLBACK_MS = 5000;
const POST_ROLL_MS = 1500;
const COUNTDOWN_S = 3;

// Update a node only where it differs: unchanged nodes keep focus, selection and hover.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (value === null || value === undefined || value === false) node.removeAttribute(name);
  else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, value === true ? "" : String(value));
}

// Make `parent`'s children exactly `items` ({key, className, text}), reusing nodes by key.
function syncLines(parent, items, tag = "div") {
  const existing = new Map([...parent.children].map((c) => [c.dataset.key, c]));
  items.forEach((item, i) => {
    let node = existing.get(item.key);
    if (!node) node = el(tag, { "data-key": item.key });
    existing.delete(item.key);
    if (node.className !== item.className) node.className = item.className;
    for (const [k, v] of Object.entries(item.attrs || {})) setAttr(node, k, v);
    setText(node, item.text);
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
  for (const stale of existing.values()) stale.remove();
}

export class CapturePanel {
  constructor(root, { visitId, signal, patientPeer, countdown = () => false }) {
    this.root = root;
    this.visitId = visitId;
    this.signal = signal;
    this.patientPeer = patientPeer; // () => participant id of the admitted patient, or null
    this.delivery = new TakeDelivery({ signal, patientPeer, visitId });
    this.countdown = countdown; // () => whether the patient sees 3-2-1 before each capture
    this.protocol = null;
    this.status = null;
    this.current = null;
    this.upload = new Map(); // `${capture_id}:${kind}` -> progress
    this.fallbackTimer = null;
    this.fetching = null;
    this.again = false;
    this.busy = false;
    this.lastThumbMs = null;
    this.ui = null;
    this.wireSignal();
  }

  wireSignal() {
    this.signal.addEventListener("capture_changed", () => {
      if (this.protocol) this.refresh();
    });
    this.signal.addEventListener("capture_ack", (ev) => this.delivery.onAck(ev.detail));
    this.signal.addEventListener("upload_progress", (ev) => this.onUploadProgress(ev.detail));
    // A (re)joined socket may have missed pushes and take acknowledgements: catch up once.
    this.signal.addEventListener("join", () => {
      if (this.protocol) this.refresh();
      this.delivery.resend();
    });
    this.signal.addEventListener("status", () => this.fallback());
  }

  // Poll only while the socket is down; pushes cover everything while it is open.
  fallback() {
    const down = this.signal.state !== "open" && this.protocol && !this.stopped;
    if (down && !this.fallbackTimer) this.fallbackTimer = setInterval(() => this.refresh(), FALLBACK_MS);
    if (!down && this.fallbackTimer) {
      clearInterval(this.fallbackTimer);
      this.fallbackTimer = null;
    }
  }

  // The patient's page came back (reconnected, or reloaded and admitted again): it may have
  // missed take commands and the current step's instruction.
  patientBack() {
    this.delivery.resend();
    if (this.current && !this.stopped) this.sendStep(this.current);
  }

  mount(consent) {
    this.root.replaceChildren(el("h2", {}, "Capture protocol"));
    if (consent !== true) {
      this.root.append(el("p", { class: "muted", id: "capture-consent" },
        consent === false ? "The patient declined photos and video: capture is off for this visit." : "Waiting for the patient's consent."));
      return;
    }
    const start = el("button", { id: "protocol-start", onclick: () => this.start() }, "Start protocol");
    this.root.append(el("p", { class: "muted", id: "capture-hint" }, "Admit the patient, then start the standard series."), start);
    document.addEventListener("keydown", (ev) => this.onKey(ev));
  }

  send(type, fields) {
    const peer = this.patientPeer();
    if (peer) this.signal.send(type, { peer, ...fields });
  }

  async start() {
    const res = await api("POST", `/api/visits/${this.visitId}/capture/start`, {});
    this.protocol = res.protocol;
    this.send("capture_start", {});
    this.build();
    this.fallback();
    await this.refresh();
  }

  // Read the capture once; calls made while a read is running coalesce into one more read.
  refresh() {
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    this.fetching = (async () => {
      try {
        do {
          this.again = false;
          try {
            this.status = await api("GET", `/api/visits/${this.visitId}/capture`);
            this.render();
          } catch {
            /* transient: the next push, rejoin or fallback poll reads again */
          }
        } while (this.again);
      } finally {
        this.fetching = null;
      }
    })();
    return this.fetching;
  }

  onUploadProgress(msg) {
    this.upload.set(`${msg.capture_id}:${msg.kind}`, msg);
    this.render();
  }

  stepStatus(stepId) {
    return this.status ? this.status.steps.find((s) => s.id === stepId) : null;
  }

  currentTakes(stepId) {
    const s = this.stepStatus(stepId);
    return s ? s.takes.filter((t) => !t.superseded) : [];
  }

  async begin(step) {
    if (this.stopped) return;
    this.current = step;
    this.render();
    // One step armed at a time, in the order chosen: a re-arm after a take that finishes after
    // the clinician chose the next step must not leave the server or the device on the old step.
    const previous = this.arming ? this.arming.catch(() => {}) : Promise.resolve();
    const arming = previous.then(async () => {
      if (this.current !== step) return; // another step was chosen meanwhile
      await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/begin`);
      if (this.current === step) this.sendStep(step);
    });
    this.arming = arming;
    try {
      await arming;
    } finally {
      if (this.arming === arming) this.arming = null;
    }
  }

  // The clinician chose a step (Next, Begin, a step's name): its capture is the next action, so
  // the keyboard goes there and Space captures. Pushed updates never move focus.
  choose(step) {
    const started = this.begin(step);
    if (!this.ui.takeButton.disabled) this.ui.takeButton.focus();
    return started;
  }

  sendStep(step) {
    const index = this.protocol.steps.indexOf(step);
    this.send("capture_step", { step_id: step.id, instruction: step.instruction, index: index + 1, total: this.protocol.steps.length });
  }

  streamLive() {
    return Boolean(this.status && this.status.peer === "receiving");
  }

  async take() {
    if (!this.current || this.busy || this.stopped) return;
    if (!this.streamLive()) {
      this.error("The patient's camera stream is not connected: wait for it, or ask the patient to rejoin.");
      return;
    }
    const step = this.current;
    this.busy = true;
    if (this.countdown()) {
      // The patient sees 3-2-1 and gets the expression ready; the capture happens at zero.
      this.send("capture_countdown", { step_id: step.id, seconds: COUNTDOWN_S });
      this.root.dataset.counting = "true";
      await new Promise((resolve) => setTimeout(resolve, COUNTDOWN_S * 1000));
      delete this.root.dataset.counting;
      if (this.stopped || this.current !== step) {
        this.busy = false;
        return;
      }
    }
    const t0 = performance.now();
    const takeId = crypto.randomUUID();
    try {
      // A click right after choosing a step waits until the step is armed: the server's window
      // and the device's recording must be this step's, not the previous one's.
      if (this.arming) await this.arming;
      if (this.current !== step) return;
      // The patient's device grabs its full-resolution frame at this moment.
      this.delivery.take({ step_id: step.id, take_id: takeId, post_roll_ms: POST_ROLL_MS, wants_still: step.still, wants_clip: step.clip });
      const res = await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/take`);
      this.delivery.ids({ take_id: takeId, still_capture_id: res.still ? res.still.capture_id : null, clip_capture_id: res.clip ? res.clip.capture_id : null });
      const thumb = res.still && res.still.media.find((m) => m.is_thumbnail);
      if (thumb) {
        await loadImage(thumb.url);
        this.lastThumbMs = Math.round(performance.now() - t0);
        this.root.dataset.lastThumbMs = String(this.lastThumbMs);
      }
      await this.refresh();
      // Re-arm the step: a retake gets its own window and a fresh device recording.
      if (this.current === step) await this.begin(step);
    } catch (err) {
      this.delivery.forget(takeId);
      this.error(err.message);
    } finally {
      this.busy = false;
    }
  }

  async skip(step) {
    const reason = prompt(`Why skip "${step.id.replace(/_/g, " ")}"?`, "patient unable");
    if (!reason) return;
    await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/skip`, { reason });
    await this.refresh();
    this.next(step);
  }

  next(step) {
    const steps = this.protocol.steps;
    const i = steps.indexOf(step);
    if (i + 1 < steps.length) this.choose(steps[i + 1]);
  }

  finish() {
    this.send("capture_end", {});
    this.current = null;
    this.finished = true;
    this.render();
  }

  // The visit ended: nothing more may be captured from this page.
  stop() {
    this.stopped = true;
    this.fallback();
    this.delivery.close();
    this.current = null;
    for (const b of this.root.querySelectorAll("button")) b.disabled = true;
  }

  // Space captures unless a button has focus (Space presses that button, as everywhere);
  // C captures anywhere but in a text field.
  onKey(ev) {
    if (!this.current || this.stopped || ev.repeat || ev.target.closest("input, textarea, select, [contenteditable]")) return;
    const space = ev.code === "Space" && !ev.target.closest("button, a");
    if (space || ev.key === "c" || ev.key === "C") {
      ev.preventDefault();
      this.take();
    }
  }

  error(text) {
    const box = this.root.querySelector("#capture-error");
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }

  badge(take) {
    const parts = [];
    for (const m of take.media.filter((x) => !x.is_thumbnail)) parts.push(`${m.provenance} ${m.content_type.split("/")[0] === "image" ? "still" : "clip"} ✓`);
    const up = this.upload.get(`${take.capture_id}:${take.kind}`);
    if (up && up.state !== "stored") parts.push(`device ${up.state}${up.percent ? ` ${up.percent}%` : ""}`);
    if (take.status === "pending") parts.push("pending…");
    if (take.status === "failed") parts.push("failed: retake");
    return parts.join(" · ");
  }

  // The panel's fixed skeleton, built once when the protocol starts.
  build() {
    const steps = this.protocol.steps;
    const ui = {};
    ui.progress = el("p", { id: "capture-progress", "aria-live": "polite" });
    ui.instruction = el("p", { class: "instruction-preview" });
    ui.takeButton = el("button", { id: "capture-take", onclick: () => this.take() });
    ui.current = el("div", { class: "current-step" },
      ui.instruction,
      el("div", { class: "buttons" },
        ui.takeButton,
        el("button", { class: "secondary", id: "capture-next", onclick: () => this.current && this.next(this.current) }, "Next"),
        el("button", { class: "secondary", id: "capture-skip", onclick: () => this.current && this.skip(this.current) }, "Skip…")));
    ui.idle = el("div", { class: "buttons" },
      el("button", { id: "protocol-begin", onclick: () => this.choose(steps.find((s) => !this.currentTakes(s.id).length) || steps[0]) }, "Begin steps"));
    ui.items = new Map(steps.map((step, i) => {
      const li = el("li", { class: "step-item", "data-step": step.id },
        el("button", { class: "link step-name", onclick: () => this.choose(step) }, `${i + 1}. ${step.id.replace(/_/g, " ")}${step.optional ? " (optional)" : ""}`),
        el("div", { class: "step-detail" }));
      return [step.id, li];
    }));
    ui.finish = el("button", { id: "protocol-finish", class: "secondary",
      onclick: () => (this.status?.complete || confirm("Not every step is done. Finish the protocol anyway?")) && this.finish() }, "Finish protocol");
    ui.finished = el("p", { class: "muted", id: "protocol-finished", hidden: "" }, "Protocol finished.");
    ui.latency = el("p", { class: "muted", id: "thumb-latency", hidden: "" });
    this.ui = ui;
    this.root.replaceChildren(
      el("h2", {}, "Capture protocol"),
      ui.progress, ui.current, ui.idle,
      el("p", { id: "capture-error", class: "error", role: "alert", hidden: "" }),
      el("ol", { class: "steps" }, ...ui.items.values()),
      ui.finish, ui.finished, ui.latency,
    );
    this.render();
  }

  render() {
    if (!this.protocol || !this.ui) return;
    const ui = this.ui;
    const steps = this.protocol.steps;
    const isDone = (id) => this.currentTakes(id).some((t) => t.status === "stored" || t.status === "skipped");
    const done = steps.filter((s) => isDone(s.id)).length;
    const complete = Boolean(this.status && this.status.complete);
    setText(ui.progress, `${done} of ${steps.length}${complete ? " · protocol complete" : ""} · stream: ${this.status ? this.status.peer : "…"}`);
    setAttr(ui.progress, "data-done", String(done));
    setAttr(ui.progress, "data-total", String(steps.length));

    const cur = this.current;
    ui.current.hidden = !cur;
    ui.idle.hidden = Boolean(cur);
    if (cur) {
      setText(ui.instruction, `“${cur.instruction}”`);
      const live = this.streamLive();
      ui.takeButton.disabled = !live || Boolean(this.stopped);
      setAttr(ui.takeButton, "title", live ? null : "waiting for the patient's camera stream");
      setText(ui.takeButton, this.currentTakes(cur.id).length ? "Retake (Space)" : "Capture (Space)");
    }
    for (const step of steps) this.renderStep(ui.items.get(step.id), step, isDone(step.id));

    ui.finish.hidden = Boolean(this.finished);
    ui.finished.hidden = !this.finished;
    if (this.lastThumbMs !== null) {
      ui.latency.hidden = false;
      setText(ui.latency, `last still shown ${this.lastThumbMs} ms after the click`);
    }
  }

  renderStep(li, step, done) {
    const takes = this.currentTakes(step.id);
    li.classList.toggle("current", this.current === step);
    setAttr(li, "data-done", String(done));
    const thumb = takes.flatMap((t) => t.media).find((m) => m.is_thumbnail);
    let img = li.querySelector("img.thumb");
    if (thumb && !img) {
      img = el("img", { class: "thumb", alt: `${step.id} still` });
      li.insertBefore(img, li.querySelector(".step-detail"));
    }
    if (thumb) setAttr(img, "src", thumb.url);
    else if (img) img.remove();
    const lines = [];
    const skipped = takes.find((t) => t.status === "skipped");
    if (skipped) lines.push({ key: "skipped", className: "muted", text: `skipped: ${skipped.skip_reason}` });
    for (const t of takes.filter((x) => x.status !== "skipped")) {
      lines.push({ key: `badge-${t.kind}`, className: "badge muted", text: `${t.kind}: ${this.badge(t)}`, attrs: { "data-kind": t.kind } });
    }
    for (const t of takes) {
      const flags = t.quality && t.quality.flags ? t.quality.flags : [];
      if (flags.length) lines.push({ key: `flags-${t.kind}`, className: "error quality-flags", text: `check: ${flags.join(", ")}` });
      if (t.device_copy === "missing") {
        lines.push({ key: `missing-${t.kind}`, className: "error device-missing", text: `${t.kind}: device copy missing (stream copy kept)`, attrs: { "data-kind": t.kind } });
      }
    }
    syncLines(li.querySelector(".step-detail"), lines);
  }
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("thumbnail did not load"));
    img.src = url;
  });
}
