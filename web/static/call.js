// One WebRTC peer connection between two browsers, negotiated over the SignalClient.
//
// The clinician's side offers ("impolite"); the patient's side answers ("polite") and asks the
// clinician for an ICE restart when its connection fails. Candidates are trickled both ways.
// "unreachable" fires when gathering ends with no local candidate at all (e.g. the TURN server
// refused our credentials under a relay-only policy): ICE then never fails, it stays "new".

const START_KBPS = 1200;
const MAX_KBPS = 2500;
const DISCONNECT_GRACE_MS = 2500;

// Chromium ramps video up from a low start bitrate; a higher start gets to 720p within a second.
export function withBitrateHints(sdp) {
  const hint = `x-google-start-bitrate=${START_KBPS};x-google-max-bitrate=${MAX_KBPS}`;
  const videoPts = new Set();
  let inVideo = false;
  for (const line of sdp.split("\r\n")) {
    if (line.startsWith("m=")) inVideo = line.startsWith("m=video");
    const m = inVideo && /^a=rtpmap:(\d+) (VP8|VP9|H264|AV1)\//.exec(line);
    if (m) videoPts.add(m[1]);
  }
  return sdp
    .split("\r\n")
    .map((line) => {
      const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (m && videoPts.has(m[1]) && !line.includes("x-google-start-bitrate")) return `${line};${hint}`;
      return line;
    })
    .join("\r\n");
}

// The DTLS fingerprint of an SDP: a different one means a different peer connection (a reloaded
// page), which cannot be renegotiated with, only replaced.
export function fingerprint(sdp) {
  const m = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return m ? m[1].trim() : null;
}

function preferCodecs(transceiver) {
  if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps) return;
  // VP8 first (everyone decodes it), H.264 next (Safari's hardware codec), then the rest.
  const rank = (c) => (/vp8/i.test(c.mimeType) ? 0 : /h264/i.test(c.mimeType) ? 1 : 2);
  const sorted = [...caps.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(sorted);
  } catch {
    /* some browsers refuse reordering; the default order still offers both */
  }
}

export class PeerCall extends EventTarget {
  constructor({ signal, peerId, offerer, iceServers, localStream, iceTransportPolicy = "all" }) {
    super();
    this.signal = signal;
    this.peerId = peerId;
    this.offerer = offerer;
    this.localStream = localStream;
    this.pendingCandidates = [];
    this.makingOffer = false;
    this.disconnectTimer = null;
    this.closed = false;
    this.localCandidates = 0;
    this.candidateErrors = []; // {url, code, text} from icecandidateerror: why a STUN/TURN server said no
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: "max-bundle" });
    this.wire();
  }

  wire() {
    const pc = this.pc;
    // addTrack (not addTransceiver) so the answerer's tracks attach to the offer's m-lines (JSEP 5.10).
    for (const track of this.localStream.getTracks()) {
      const sender = pc.addTrack(track, this.localStream);
      if (track.kind === "video") {
        this.videoSender = sender;
        const tr = pc.getTransceivers().find((t) => t.sender === sender);
        if (tr) preferCodecs(tr);
      }
    }
    pc.addEventListener("track", (ev) => {
      if (!this.remoteStream.getTracks().includes(ev.track)) this.remoteStream.addTrack(ev.track);
      this.dispatchEvent(new CustomEvent("remotetrack", { detail: ev.track }));
    });
    pc.addEventListener("icecandidate", (ev) => {
      if (ev.candidate) this.localCandidates += 1;
      this.signal.send("ice_candidate", { peer: this.peerId, candidate: ev.candidate ? ev.candidate.toJSON() : null });
    });
    pc.addEventListener("icecandidateerror", (ev) => {
      this.candidateErrors.push({ url: ev.url, code: ev.errorCode, text: ev.errorText });
    });
    pc.addEventListener("icegatheringstatechange", () => this.onGathering());
    pc.addEventListener("negotiationneeded", () => this.offer());
    pc.addEventListener("connectionstatechange", () => this.onState());
    pc.addEventListener("iceconnectionstatechange", () => this.onState());
  }

  remoteFingerprint() {
    return this.pc.remoteDescription ? fingerprint(this.pc.remoteDescription.sdp) : null;
  }

  async start() {
    if (this.offerer) await this.offer();
  }

  async offer({ iceRestart = false } = {}) {
    if (!this.offerer || this.closed) return;
    // start() and the first negotiationneeded both ask for an offer; a second concurrent offer is
    // stale by the time it is set ("order of m-lines ... doesn't match"), so one at a time.
    if (this.makingOffer && !iceRestart) return;
    try {
      this.makingOffer = true;
      const offer = await this.pc.createOffer({ iceRestart });
      if (this.pc.signalingState !== "stable" && !iceRestart) return;
      await this.pc.setLocalDescription(offer);
      this.signal.send("offer", { peer: this.peerId, sdp: this.pc.localDescription.sdp });
    } catch (err) {
      // A renegotiation that fails must not vanish silently: the page shows it, the call goes on.
      this.dispatchEvent(new CustomEvent("negotiationerror", { detail: String(err && err.message ? err.message : err) }));
    } finally {
      this.makingOffer = false;
    }
  }

  restartIce(reason = "ice") {
    this.dispatchEvent(new CustomEvent("restarting", { detail: reason }));
    if (this.offerer) {
      this.offer({ iceRestart: true });
    } else {
      this.signal.send("ice_restart", { peer: this.peerId, reason });
    }
  }

  async handle(msg) {
    if (this.closed) return;
    if (msg.type === "offer") {
      if (this.offerer && (this.makingOffer || this.pc.signalingState !== "stable")) return; // impolite: ignore glare
      await this.pc.setRemoteDescription({ type: "offer", sdp: withBitrateHints(msg.sdp) });
      await this.flushCandidates();
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.signal.send("answer", { peer: this.peerId, sdp: this.pc.localDescription.sdp });
    } else if (msg.type === "answer") {
      if (this.pc.signalingState !== "have-local-offer") return;
      await this.pc.setRemoteDescription({ type: "answer", sdp: withBitrateHints(msg.sdp) });
      await this.flushCandidates();
      this.tuneSender();
    } else if (msg.type === "ice_candidate") {
      if (!msg.candidate) return;
      if (!this.pc.remoteDescription) this.pendingCandidates.push(msg.candidate);
      else await this.pc.addIceCandidate(msg.candidate).catch(() => {});
    } else if (msg.type === "ice_restart") {
      this.restartIce(msg.reason || "peer asked");
    }
  }

  async flushCandidates() {
    const queued = this.pendingCandidates.splice(0);
    for (const c of queued) await this.pc.addIceCandidate(c).catch(() => {});
  }

  async tuneSender() {
    if (!this.videoSender) return;
    const params = this.videoSender.getParameters();
    if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
    params.encodings[0].maxBitrate = MAX_KBPS * 1000;
    // A face that stays sharp matters more than fluid motion for a clinical view.
    params.degradationPreference = "maintain-resolution";
    await this.videoSender.setParameters(params).catch(() => {});
  }

  onState() {
    const ice = this.pc.iceConnectionState;
    const conn = this.pc.connectionState;
    this.dispatchEvent(new CustomEvent("state", { detail: { ice, conn } }));
    clearTimeout(this.disconnectTimer);
    if (conn === "connected") this.tuneSender();
    if (ice === "failed" || conn === "failed") {
      this.restartIce("failed");
    } else if (ice === "disconnected") {
      // Brief blips recover by themselves; restart only if it lasts.
      this.disconnectTimer = setTimeout(() => {
        if (this.pc.iceConnectionState === "disconnected") this.restartIce("disconnected");
      }, DISCONNECT_GRACE_MS);
    }
  }

  onGathering() {
    const g = this.pc.iceGatheringState;
    if (g === "gathering") this.localCandidates = 0; // an ICE restart gathers afresh
    if (g !== "complete" || this.localCandidates > 0 || this.closed) return;
    const errors = this.candidateErrors.slice();
    console.warn("no ICE candidates gathered; STUN/TURN errors:", JSON.stringify(errors));
    this.dispatchEvent(new CustomEvent("unreachable", { detail: { errors } }));
  }

  // Connection quality from getStats: {level: good|fair|poor, rttMs, fps, width, height, lossPct}.
  async quality() {
    const stats = await this.pc.getStats();
    let inbound = null;
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
    const prev = this.lastInbound;
    this.lastInbound = inbound;
    const rttMs = pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime * 1000 : null;
    let lossPct = 0;
    if (inbound && prev) {
      const lost = (inbound.packetsLost || 0) - (prev.packetsLost || 0);
      const recv = (inbound.packetsReceived || 0) - (prev.packetsReceived || 0);
      lossPct = recv + lost > 0 ? (100 * Math.max(0, lost)) / (recv + lost) : 0;
    }
    const fps = inbound ? inbound.framesPerSecond || 0 : 0;
    const height = inbound ? inbound.frameHeight || 0 : 0;
    let level = "good";
    if (!inbound || fps < 10 || lossPct > 8 || (rttMs !== null && rttMs > 400)) level = "poor";
    else if (fps < 20 || lossPct > 2 || height < 480 || (rttMs !== null && rttMs > 200)) level = "fair";
    return {
      level, rttMs, fps, lossPct,
      width: inbound ? inbound.frameWidth || 0 : 0,
      height,
      framesDecoded: inbound ? inbound.framesDecoded || 0 : 0,
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    this.pc.close();
  }
}
