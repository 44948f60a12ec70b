// Take commands on their way to the patient's device, kept until the device acknowledges them.
//
// Why the pending set lives here, in the clinician's page, and not in the server's hub: this page
// issues the take and is the only one that learns its record ids (from the take's HTTP answer),
// it sees the patient's presence drop and come back, and it is one place. A hub buffer would have
// to follow the patient when it resumes on another server process (state in Redis), and outlive
// its room, which closes when the last local socket leaves. sessionStorage keeps the set across
// a reload of this page. The cost: a take clicked in a page that is then closed for good is not
// re-sent; its device copy is then reported missing by the server, the stream copy stays primary.
//
// A take has two parts, the command (`capture_take`, sent at the click) and its record ids
// (`capture_ids`, sent when the server answered); each is re-sent until `capture_ack` names it:
// when the patient comes back, when this page's socket rejoins, and every RESEND_MS meanwhile.
// Duplicates are harmless: the device ignores a take id it has seen, and uploads carry an
// idempotency key. A take is given up GIVE_UP_MS after the click.

const RESEND_MS = 4000;
const GIVE_UP_MS = 3 * 60_000;
const MAX_PENDING = 100;

export class TakeDelivery {
  constructor({ signal, patientPeer, visitId }) {
    this.signal = signal;
    this.patientPeer = patientPeer; // () => participant id of the connected, admitted patient, or null
    this.storeKey = `telehealth-takes:${visitId}`;
    this.pending = this.load(); // take_id -> {take, ids, clickedAt, sentAt, acked: {take, ids}}
    this.timer = setInterval(() => this.resend({ due: true }), RESEND_MS / 2);
  }

  load() {
    try {
      return new Map(JSON.parse(sessionStorage.getItem(this.storeKey) || "[]"));
    } catch {
      return new Map();
    }
  }

  save() {
    try {
      sessionStorage.setItem(this.storeKey, JSON.stringify([...this.pending]));
    } catch {
      /* storage full or disabled: delivery still works while this page lives */
    }
  }

  get size() {
    return this.pending.size;
  }

  // The click: send the take command now and keep it until acknowledged.
  take(fields) {
    const entry = { take: fields, ids: null, clickedAt: Date.now(), sentAt: 0, acked: { take: false, ids: false } };
    this.pending.set(fields.take_id, entry);
    while (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value);
    this.send(entry);
    this.save();
  }

  // The server created the take's records: the device must learn where its files go.
  ids(fields) {
    const entry = this.pending.get(fields.take_id);
    if (!entry) return;
    entry.ids = fields;
    this.send(entry);
    this.save();
  }

  // The take failed on the server: there is nothing for the device to upload to.
  forget(takeId) {
    if (this.pending.delete(takeId)) this.save();
  }

  onAck({ take_id: takeId, part }) {
    const entry = this.pending.get(takeId);
    if (!entry || !(part in entry.acked)) return;
    entry.acked[part] = true;
    if (entry.acked.take && entry.acked.ids) this.pending.delete(takeId);
    this.save();
  }

  // Re-send every unacknowledged part (only those not sent within RESEND_MS when `due`).
  resend({ due = false } = {}) {
    const now = Date.now();
    for (const [takeId, entry] of this.pending) {
      if (now - entry.clickedAt > GIVE_UP_MS) {
        console.warn(`take ${takeId} never reached the patient's device; its stream copy stays`);
        this.pending.delete(takeId);
        continue;
      }
      if (!due || now - entry.sentAt >= RESEND_MS) this.send(entry);
    }
    this.save();
  }

  send(entry) {
    const peer = this.patientPeer();
    if (!peer) return;
    let sent = false;
    if (!entry.acked.take) {
      // age_ms lets the device tell a late copy from the click itself.
      sent = this.signal.send("capture_take", { ...entry.take, peer, age_ms: Math.max(0, Date.now() - entry.clickedAt) }) || sent;
    }
    if (entry.ids && !entry.acked.ids) sent = this.signal.send("capture_ids", { ...entry.ids, peer }) || sent;
    if (sent) entry.sentAt = Date.now();
  }

  close() {
    clearInterval(this.timer);
  }
}
