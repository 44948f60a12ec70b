// Camera and microphone: permission handling, camera switching, a microphone level meter.

export const VIDEO_CONSTRAINTS = {
  width: { ideal: 1280 },
  height: { ideal: 720 },
  frameRate: { ideal: 30, max: 30 },
};

// In-app browsers (Facebook, Instagram, LINE, WeChat, TikTok, Android WebViews) often have no camera.
export function inAppBrowser() {
  const ua = navigator.userAgent || "";
  return /FBAN|FBAV|Instagram|Line\/|MicroMessenger|WhatsApp|TikTok|musical_ly|; wv\)/i.test(ua);
}

export function mediaSupported() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.RTCPeerConnection);
}

// Turns a getUserMedia failure into guidance a patient can act on.
export function explainMediaError(err) {
  const name = err && err.name;
  if (!window.isSecureContext) {
    return "This page must be opened over https to use the camera. Please use the link exactly as you received it.";
  }
  if (name === "NotAllowedError" || name === "SecurityError") {
    return "Camera or microphone access was blocked. Tap the camera icon or the lock in the address bar, " +
      "allow the camera and microphone for this site, then tap \"Try again\".";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return "No camera or microphone was found. Connect one, or use a phone, then tap \"Try again\".";
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return "The camera is being used by another app (for example another video call). Close it, then tap \"Try again\".";
  }
  return `The camera could not be started (${name || err}).`;
}

export async function openCamera(facingMode = "user", deviceId = null) {
  const video = { ...VIDEO_CONSTRAINTS };
  if (deviceId) video.deviceId = { exact: deviceId };
  else video.facingMode = facingMode;
  return navigator.mediaDevices.getUserMedia({
    video,
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
}

export async function videoInputs() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "videoinput");
}

// Replaces the video track of `stream` in place (and on any RTCRtpSenders) with the other camera.
export async function switchCamera(stream, senders = []) {
  const current = stream.getVideoTracks()[0];
  const settings = current ? current.getSettings() : {};
  const nextFacing = settings.facingMode === "environment" ? "user" : "environment";
  let fresh;
  try {
    fresh = await navigator.mediaDevices.getUserMedia({ video: { ...VIDEO_CONSTRAINTS, facingMode: { exact: nextFacing } } });
  } catch {
    // Laptops have no facingMode: cycle through the cameras instead.
    const cams = await videoInputs();
    const idx = cams.findIndex((c) => c.deviceId === settings.deviceId);
    const next = cams[(idx + 1) % cams.length];
    fresh = await navigator.mediaDevices.getUserMedia({ video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: next.deviceId } } });
  }
  const track = fresh.getVideoTracks()[0];
  for (const s of senders) if (s.track && s.track.kind === "video") await s.replaceTrack(track);
  if (current) {
    stream.removeTrack(current);
    current.stop();
  }
  stream.addTrack(track);
  return track;
}

// Calls onLevel(0..1) about 15 times a second with the microphone's loudness; returns a stop function.
export function micLevelMeter(stream, onLevel) {
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx || stream.getAudioTracks().length === 0) return () => {};
  const ctx = new AudioCtx();
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const buf = new Uint8Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getByteTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += ((v - 128) / 128) ** 2;
    onLevel(Math.min(1, Math.sqrt(sum / buf.length) * 4));
  }, 66);
  return () => {
    clearInterval(timer);
    ctx.close();
  };
}

export function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}
