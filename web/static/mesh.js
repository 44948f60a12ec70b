// The call as a mesh: one PeerCall per pair of admitted participants (fine for three people).
//
// Who offers in each pair is the server's rule (PROTOCOL.md "Who offers"): the higher role
// (clinician, interpreter, observer, family, patient), ties broken by the lower participant id.
// The offerer opens the pair's connection as soon as both are admitted and connected; the other
// side opens it on the first message from that peer. The "main" peer (the patient for the
// clinician, the clinician for everyone else) is shown in #remote; the others get a tile each.
import { fingerprint, PeerCall } from "./call.js";

const ROLE_ORDER = ["clinician", "interpreter", "observer", "family", "patient"];
const ROLE_LABEL = { clinician: "clinician", interpreter: "interpreter", observer: "colleague", family: "family", patient: "patient" };

export function roleLabel(role) {
  return ROLE_LABEL[role] || role;
}

function rank(role) {
  const i = ROLE_ORDER.indexOf(role);
  return i < 0 ? ROLE_ORDER.length : i;
}

// True when `me` makes the offers (and ICE restarts) of the pair {me, other}.
export function offersTo(me, other) {
  const a = rank(me.role);
  const b = rank(other.role);
  return a < b || (a === b && me.participant_id <= other.participant_id);
}

export class Mesh extends EventTarget {
  // tiles: the element the non-main peers' videos go in; remote: the main <video>.
  constructor({ signal, localStream, iceServers, iceTransportPolicy, remote, tiles }) {
    super();
    this.signal = signal;
    this.localStream = localStream;
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.remote = remote;
    this.tiles = tiles;
    this.calls = new Map();
    this.people = new Map();
  }

  get me() {
    return this.signal.me;
  }

  mainRole() {
    return this.me && this.me.role === "clinician" ? "patient" : "clinician";
  }

  // The call shown in #remote (the patient's for the clinician, the clinician's for everyone else).
  get main() {
    for (const [pid, call] of this.calls) {
      if (this.people.get(pid)?.role === this.mainRole()) return call;
    }
    return null;
  }

  // Bring the set of connections in line with who is admitted and connected.
  sync(participants) {
    this.people = new Map(participants.map((p) => [p.participant_id, p]));
    if (!this.me || this.me.status === "waiting") return;
    for (const [pid, call] of [...this.calls]) {
      const p = this.people.get(pid);
      // Gone, or back in the waiting room: that connection has nobody to talk to any more.
      if (!p || p.status !== "admitted") this.close(pid);
      else if (call.closed) this.calls.delete(pid);
    }
    if (!this.localStream) return;
    for (const p of this.people.values()) {
      if (p.participant_id === this.me.participant_id || p.status !== "admitted" || !p.connected) continue;
      if (offersTo(this.me, p)) this.ensure(p.participant_id);
    }
  }

  setStream(stream) {
    this.localStream = stream;
    this.sync([...this.people.values()]);
  }

  ensure(peerId, { fresh = false } = {}) {
    const existing = this.calls.get(peerId);
    if (existing && !fresh) return existing;
    if (existing) this.close(peerId);
    const person = this.people.get(peerId);
    // A peer we have not heard of yet can only have reached us with an offer: we answer.
    const offerer = person ? offersTo(this.me, person) : false;
    const call = new PeerCall({
      signal: this.signal,
      peerId,
      offerer,
      iceServers: this.iceServers,
      localStream: this.localStream,
      iceTransportPolicy: this.iceTransportPolicy,
    });
    call.addEventListener("remotetrack", () => this.show(peerId, call));
    this.calls.set(peerId, call);
    this.dispatchEvent(new CustomEvent("call", { detail: { peerId, call, main: person?.role === this.mainRole() } }));
    call.start();
    return call;
  }

  // offer, answer, ice_candidate and ice_restart from a peer.
  async route(msg) {
    if (!msg.peer || !this.localStream) return;
    if (msg.type === "ice_restart" && msg.reason === "new-peer") {
      // That peer reloaded its page and has a brand-new connection: start over with it.
      this.ensure(msg.peer, { fresh: true });
      return;
    }
    let call = this.calls.get(msg.peer);
    // An offer from a brand-new peer connection (that page was reloaded or started the call over)
    // cannot be applied to ours: answer it with a fresh one.
    const known = call && msg.type === "offer" ? call.remoteFingerprint() : null;
    if (known && known !== fingerprint(msg.sdp)) {
      this.close(msg.peer);
      call = null;
    }
    if (!call) {
      if (msg.type !== "offer") return;
      call = this.ensure(msg.peer);
    }
    await call.handle(msg);
  }

  // Ask every peer that offers to us and whose connection we lack for a fresh one (after a reload).
  askForMissing() {
    for (const p of this.people.values()) {
      if (p.participant_id === this.me.participant_id || p.status !== "admitted" || !p.connected) continue;
      if (!offersTo(this.me, p) && !this.calls.has(p.participant_id)) {
        this.signal.send("ice_restart", { peer: p.participant_id, reason: "new-peer" });
      }
    }
  }

  show(peerId, call) {
    const person = this.people.get(peerId);
    if (person && person.role === this.mainRole()) {
      this.remote.srcObject = call.remoteStream;
      return;
    }
    let tile = this.tiles.querySelector(`[data-peer="${CSS.escape(peerId)}"]`);
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.dataset.peer = peerId;
      const video = document.createElement("video");
      video.playsInline = true;
      video.autoplay = true;
      const caption = document.createElement("figcaption");
      caption.textContent = person ? `${person.display_name} (${roleLabel(person.role)})` : "Participant";
      tile.append(video, caption);
      this.tiles.append(tile);
    }
    tile.querySelector("video").srcObject = call.remoteStream;
    this.tiles.hidden = false;
  }

  close(peerId) {
    const call = this.calls.get(peerId);
    if (call) call.close();
    this.calls.delete(peerId);
    const tile = this.tiles.querySelector(`[data-peer="${CSS.escape(peerId)}"]`);
    if (tile) tile.remove();
    if (this.remote.srcObject && call && this.remote.srcObject === call.remoteStream) this.remote.srcObject = null;
    this.tiles.hidden = this.tiles.children.length === 0;
  }

  closeAll() {
    for (const pid of [...this.calls.keys()]) this.close(pid);
  }

  senders() {
    return [...this.calls.values()].flatMap((c) => c.pc.getSenders());
  }
}
