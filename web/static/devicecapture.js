// Full-resolution capture on the patient's own device: a still at the click, a clip of the step,
// handed to the UploadQueue (kept in IndexedDB until the server has them).
//
// Take commands may arrive twice (the clinician's page re-sends until acknowledged) and late
// (re-sent after a reconnect): a take id seen before is ignored, and a late take gets no still,
// because a frame grabbed seconds after the click would show another moment.

const POST_ROLL_MS = 1500;
const MAX_CLIP_MS = 75_000;
const STILL_LATE_MS = 2000;
const SEEN_TAKES = 200;

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

// Dispatches "recording" ({recording}) while any clip records, for the page's indicator.
export class DeviceCapture extends EventTarget {
  constructor({ stream, videoEl, uploads }) {
    super();
    this.stream = stream;
    this.videoEl = videoEl;
    this.uploads = uploads; // UploadQueue
    this.active = null;
    this.takes = new Map(); // take_id -> {still: Promise<Blob>|null, clip: Promise<Blob>|null, ids, late}
    this.seen = new Set(); // take ids already handled, oldest first
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
  async take({ take_id: takeId, step_id: stepId, post_roll_ms: postRoll = POST_ROLL_MS, wants_still: wantsStill = true, wants_clip: wantsClip = true, age_ms: age = 0 }) {
    if (this.seen.has(takeId)) return; // a copy re-sent before our acknowledgement arrived
    this.seen.add(takeId);
    if (this.seen.size > SEEN_TAKES) this.seen.delete(this.seen.values().next().value);
    const entry = { still: null, clip: null, ids: null, late: age > STILL_LATE_MS };
    this.takes.set(takeId, entry);
    const track = this.stream.getVideoTracks()[0];
    if (wantsStill && track && !entry.late) {
      entry.still = grabStill(track, this.videoEl).catch(() => null);
    }
    // The step's recording started before the click, so even a late take's clip spans it.
    if (wantsClip && this.active && this.active.stepId === stepId) {
      const rec = this.active;
      this.active = null; // claimed by this take; a retake records afresh from its own begin
      const wait = Math.max(0, postRoll - age);
      entry.clip = new Promise((resolve) => setTimeout(resolve, wait)).then(() => this.finish(rec));
    }
    this.maybeQueue(takeId);
  }

  // The server created the capture rows for a take: now the files know where to go.
  assign({ take_id: takeId, still_capture_id: stillId, clip_capture_id: clipId }) {
    const entry = this.takes.get(takeId);
    if (!entry || entry.ids) return;
    entry.ids = { still: stillId, clip: clipId };
    this.maybeQueue(takeId);
  }

  async maybeQueue(takeId) {
    const entry = this.takes.get(takeId);
    if (!entry || !entry.ids) return;
    this.takes.delete(takeId);
    if (entry.ids.still) {
      if (entry.still) this.enqueue(entry.ids.still, "still", await entry.still);
      else if (entry.late) this.uploads.emit({ captureId: entry.ids.still, kind: "still" }, "failed", 0, "the take reached the device too late for its still");
    }
    if (entry.clip && entry.ids.clip) this.enqueue(entry.ids.clip, "clip", await entry.clip);
  }

  enqueue(captureId, kind, blob) {
    if (!blob) {
      this.uploads.emit({ captureId, kind }, "failed", 0, "nothing was recorded");
      return;
    }
    this.uploads.add(captureId, kind, blob);
  }

  stop() {
    this.stopRecorder();
  }
}
