// The clinician's protocol panel: steps in order, instruction pushed to the patient, one-click
// capture (Space or C), thumbnails, retake, skip with a reason, progress and completion.
import { api, el } from "./api.js";

const POLL_MS = 1500;
const POST_ROLL_MS = 1500;
const COUNTDOWN_S = 3;

export class CapturePanel {
  constructor(root, { visitId, signal, patientPeer, countdown = () => false }) {
    this.root = root;
    this.visitId = visitId;
    this.signal = signal;
    this.patientPeer = patientPeer; // () => participant id of the admitted patient, or null
    this.countdown = countdown; // () => whether the patient sees 3-2-1 before each capture
    this.protocol = null;
    this.status = null;
    this.current = null;
    this.upload = new Map(); // `${capture_id}:${kind}` -> progress
    this.pollTimer = null;
    this.busy = false;
    this.lastThumbMs = null;
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
    this.render();
    this.poll();
  }

  async poll() {
    clearTimeout(this.pollTimer);
    try {
      this.status = await api("GET", `/api/visits/${this.visitId}/capture`);
      this.render();
    } catch {
      /* transient; the next poll retries */
    }
    this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
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
    await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/begin`);
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
    // The patient's device grabs its full-resolution frame at this moment.
    this.send("capture_take", { step_id: step.id, take_id: takeId, post_roll_ms: POST_ROLL_MS, wants_still: step.still, wants_clip: step.clip });
    try {
      const res = await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/take`);
      this.send("capture_ids", { take_id: takeId, still_capture_id: res.still ? res.still.capture_id : null, clip_capture_id: res.clip ? res.clip.capture_id : null });
      const thumb = res.still && res.still.media.find((m) => m.is_thumbnail);
      if (thumb) {
        const img = await loadImage(thumb.url);
        this.lastThumbMs = Math.round(performance.now() - t0);
        this.root.dataset.lastThumbMs = String(this.lastThumbMs);
        this.lastThumb = img;
      }
      await this.poll();
      // Re-arm the step: a retake gets its own window and a fresh device recording.
      if (this.current === step) await this.begin(step);
    } catch (err) {
      this.error(err.message);
    } finally {
      this.busy = false;
    }
  }

  async skip(step) {
    const reason = prompt(`Why skip "${step.id.replace(/_/g, " ")}"?`, "patient unable");
    if (!reason) return;
    await api("POST", `/api/visits/${this.visitId}/capture/steps/${step.id}/skip`, { reason });
    await this.poll();
    this.next(step);
  }

  next(step) {
    const steps = this.protocol.steps;
    const i = steps.indexOf(step);
    if (i + 1 < steps.length) this.begin(steps[i + 1]);
  }

  finish() {
    this.send("capture_end", {});
    clearTimeout(this.pollTimer);
    this.current = null;
    this.finished = true;
    this.render();
  }

  // The visit ended: nothing more may be captured from this page.
  stop() {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.current = null;
    for (const b of this.root.querySelectorAll("button")) b.disabled = true;
  }

  onKey(ev) {
    if (!this.current || this.stopped || ev.target.closest("input, textarea, select, button")) return;
    if (ev.code === "Space" || ev.key === "c" || ev.key === "C") {
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

  render() {
    if (!this.protocol) return;
    const steps = this.protocol.steps;
    const done = steps.filter((s) => this.currentTakes(s.id).some((t) => t.status === "stored" || t.status === "skipped")).length;
    const complete = this.status && this.status.complete;
    const items = steps.map((step, i) => {
      const takes = this.currentTakes(step.id);
      const thumb = takes.flatMap((t) => t.media).find((m) => m.is_thumbnail);
      const li = el("li", { class: `step-item${this.current === step ? " current" : ""}`, "data-step": step.id,
        "data-done": String(takes.some((t) => ["stored", "skipped"].includes(t.status))) },
        el("button", { class: "link step-name", onclick: () => this.begin(step) }, `${i + 1}. ${step.id.replace(/_/g, " ")}${step.optional ? " (optional)" : ""}`));
      if (thumb) li.append(el("img", { class: "thumb", src: thumb.url, alt: `${step.id} still` }));
      const skipped = takes.find((t) => t.status === "skipped");
      if (skipped) li.append(el("span", { class: "muted" }, ` skipped: ${skipped.skip_reason}`));
      for (const t of takes.filter((x) => x.status !== "skipped")) li.append(el("div", { class: "badge muted", "data-kind": t.kind }, `${t.kind}: ${this.badge(t)}`));
      for (const t of takes) {
        const flags = t.quality && t.quality.flags ? t.quality.flags : [];
        if (flags.length) li.append(el("div", { class: "error quality-flags" }, `check: ${flags.join(", ")}`));
      }
      return li;
    });
    const cur = this.current;
    const controls = cur
      ? el("div", { class: "current-step" },
          el("p", { class: "instruction-preview" }, `“${cur.instruction}”`),
          el("div", { class: "buttons" },
            el("button", { id: "capture-take", onclick: () => this.take(), ...(this.streamLive() ? {} : { disabled: "", title: "waiting for the patient's camera stream" }) },
              this.currentTakes(cur.id).length ? "Retake (Space)" : "Capture (Space)"),
            el("button", { class: "secondary", id: "capture-next", onclick: () => this.next(cur) }, "Next"),
            el("button", { class: "secondary", id: "capture-skip", onclick: () => this.skip(cur) }, "Skip…")))
      : el("div", { class: "buttons" }, el("button", { id: "protocol-begin", onclick: () => this.begin(steps.find((s) => !this.currentTakes(s.id).length) || steps[0]) }, "Begin steps"));
    this.root.replaceChildren(
      el("h2", {}, "Capture protocol"),
      el("p", { id: "capture-progress", "data-done": String(done), "data-total": String(steps.length) },
        `${done} of ${steps.length}${complete ? " · protocol complete" : ""} · stream: ${this.status ? this.status.peer : "…"}`),
      controls,
      el("p", { id: "capture-error", class: "error", role: "alert", hidden: "" }),
      el("ol", { class: "steps" }, ...items),
      this.finished ? el("p", { class: "muted" }, "Protocol finished.") :
        el("button", { id: "protocol-finish", class: "secondary", onclick: () => (complete || confirm("Not every step is done. Finish the protocol anyway?")) && this.finish() }, "Finish protocol"),
    );
    if (this.lastThumbMs !== null) this.root.append(el("p", { class: "muted", id: "thumb-latency" }, `last still shown ${this.lastThumbMs} ms after the click`));
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
