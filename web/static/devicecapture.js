// Full-resolution capture on the patient's own device: a still at the click, a clip of the step,
// uploaded in the background with retries. Nothing is written to the device's storage.

const POST_ROLL_MS = 1500;
const MAX_CLIP_MS = 75_000;
const MAX_QUEUE = 40;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];

function clipMimeType() {
  const options = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4;codecs=avc1", "video/mp4"];
  return options.find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || "";
}

// The frame exactly as the camera delivers it: drawn without any mirroring.
export async function grabStill(track, videoEl) {
  if (window.ImageCapture) {
    try {
      const bitmap = await new ImageCapture(track).grabFrame();
      return await bitmapToBlob(bitmap, bitmap.width, bitmap.height);
    } catch {
      /* fall back to the video element */
    }
  }
  const w = videoEl.videoWidth;
  const h = videoEl.videoHeight;
  return bitmapToBlob(videoEl, w, h);
}

function bitmapToBlob(source, w, h) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").drawImage(source, 0, 0, w, h);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("encode failed"))), "image/png"));
}

export class DeviceCapture extends EventTarget {
  constructor({ stream, videoEl, bearer }) {
    super();
    this.stream = stream;
    this.videoEl = videoEl;
    this.bearer = bearer;
    this.active = null;
    this.takes = new Map(); // take_id -> {still: Blob|null, clip: Promise<Blob>|null, ids}
    this.queue = [];
    this.uploading = false;
  }

  // A step began: record it from now, so the clip shows rest -> peak -> relax. Each recording
  // owns its chunks: a take's clip may still be finishing its post-roll when the next step starts.
  beginStep(stepId) {
    if (this.active) this.finish(this.active); // an unclaimed recording of the previous step is dropped
    this.active = window.MediaRecorder ? this.record(stepId) : null;
  }

  record(stepId) {
    const recorder = new MediaRecorder(new MediaStream(this.stream.getVideoTracks()), { mimeType: clipMimeType(), videoBitsPerSecond: 4_000_000 });
    const rec = { stepId, recorder, chunks: [] };
    rec.done = new Promise((resolve) => {
      recorder.addEventListener("stop", () => resolve(rec.chunks.length ? new Blob(rec.chunks, { type: recorder.mimeType.split(";")[0] || "video/webm" }) : null), { once: true });
    });
    recorder.addEventListener("dataavailable", (ev) => {
      if (ev.data && ev.data.size) rec.chunks.push(ev.data);
    });
    // The page shows a recording indicator while any clip (a step's, or a take's post-roll) records.
    recorder.addEventListener("start", () => this.recordingChanged(+1));
    recorder.addEventListener("stop", () => this.recordingChanged(-1), { once: true });
    recorder.start(1000);
    rec.timer = setTimeout(() => this.finish(rec), MAX_CLIP_MS);
    return rec;
  }

  recordingChanged(delta) {
    this.recording = Math.max(0, (this.recording || 0) + delta);
    this.dispatchEvent(new CustomEvent("recording", { detail: { recording: this.recording > 0 } }));
  }

  finish(rec) {
    clearTimeout(rec.timer);
    if (this.active === rec) this.active = null;
    if (rec.recorder.state !== "inactive") rec.recorder.stop();
    return rec.done;
  }

  stopRecorder() {
    return this.active ? this.finish(this.active) : Promise.resolve(null);
  }

  // The clinician clicked capture: grab the still now, end the clip after the post-roll.
  async take({ take_id: takeId, post_roll_ms: postRoll = POST_ROLL_MS, wants_still: wantsStill = true, wants_clip: wantsClip = true }) {
    const entry = { still: null, clip: null, ids: null };
    this.takes.set(takeId, entry);
    const track = this.stream.getVideoTracks()[0];
    if (wantsStill && track) {
      entry.still = grabStill(track, this.videoEl).catch(() => null);
    }
    if (wantsClip && this.active) {
      const rec = this.active;
      this.active = null; // claimed by this take; a retake records afresh from its own begin
      entry.clip = new Promise((resolve) => setTimeout(resolve, postRoll)).then(() => this.finish(rec));
    }
    this.maybeQueue(takeId);
  }

  // The server created the capture rows for a take: now the files know where to go.
  assign({ take_id: takeId, still_capture_id: stillId, clip_capture_id: clipId }) {
    const entry = this.takes.get(takeId);
    if (!entry) return;
    entry.ids = { still: stillId, clip: clipId };
    this.maybeQueue(takeId);
  }

  async maybeQueue(takeId) {
    const entry = this.takes.get(takeId);
    if (!entry || !entry.ids) return;
    this.takes.delete(takeId);
    if (entry.still && entry.ids.still) this.enqueue(entry.ids.still, "still", await entry.still);
    if (entry.clip && entry.ids.clip) this.enqueue(entry.ids.clip, "clip", await entry.clip);
  }

  enqueue(captureId, kind, blob) {
    if (!blob) {
      this.emit({ capture_id: captureId, kind, state: "failed", percent: 0, error: "nothing was recorded" });
      return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      this.emit({ capture_id: captureId, kind, state: "failed", percent: 0, error: "upload queue full" });
      return;
    }
    const item = { captureId, kind, blob, key: `${captureId}:${kind}:${crypto.randomUUID()}`, attempt: 0 };
    this.queue.push(item);
    this.emit({ capture_id: captureId, kind, state: "queued", percent: 0 });
    this.pump();
  }

  async pump() {
    if (this.uploading) return;
    this.uploading = true;
    while (this.queue.length) {
      const item = this.queue[0];
      try {
        await this.upload(item);
        this.queue.shift();
        this.emit({ capture_id: item.captureId, kind: item.kind, state: "stored", percent: 100 });
      } catch (err) {
        item.attempt += 1;
        if (err.final || item.attempt > RETRY_MS.length) {
          this.queue.shift();
          this.emit({ capture_id: item.captureId, kind: item.kind, state: "failed", percent: 0, error: err.message });
        } else {
          this.emit({ capture_id: item.captureId, kind: item.kind, state: "retrying", percent: 0, error: err.message });
          await new Promise((r) => setTimeout(r, RETRY_MS[item.attempt - 1]));
        }
      }
    }
    this.uploading = false;
  }

  // XMLHttpRequest, not fetch: it reports upload progress.
  upload(item) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/captures/${item.captureId}/upload`);
      xhr.setRequestHeader("Authorization", `Bearer ${this.bearer}`);
      xhr.setRequestHeader("Content-Type", item.blob.type || "application/octet-stream");
      xhr.setRequestHeader("Idempotency-Key", item.key);
      let last = 0;
      xhr.upload.onprogress = (ev) => {
        const pct = ev.lengthComputable ? Math.round((100 * ev.loaded) / ev.total) : 0;
        if (pct - last >= 20) {
          last = pct;
          this.emit({ capture_id: item.captureId, kind: item.kind, state: "uploading", percent: pct });
        }
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else {
          const err = new Error(`upload refused (${xhr.status})`);
          // 4xx other than 408/429 will not succeed by retrying the same bytes.
          err.final = xhr.status >= 400 && xhr.status < 500 && ![408, 409, 429].includes(xhr.status);
          reject(err);
        }
      };
      xhr.onerror = () => reject(new Error("network error"));
      xhr.ontimeout = () => reject(new Error("timed out"));
      xhr.timeout = 120_000;
      xhr.send(item.blob);
    });
  }

  emit(detail) {
    this.dispatchEvent(new CustomEvent("progress", { detail }));
  }

  stop() {
    this.stopRecorder();
  }
}
