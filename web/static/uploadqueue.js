// The patient's device uploads, kept in IndexedDB until the server has them.
//
// Each file is written to IndexedDB before it is sent and deleted after the server's 2xx (or a
// refusal that retrying cannot fix), so a reload or a crashed tab loses nothing: the reloaded page
// resumes what is left once the patient's session is back. The Idempotency-Key is stored with the
// file, so a file whose answer was lost is stored once even when sent again. The store is bounded
// (MAX_ENTRIES files, MAX_BYTES bytes): the oldest files are dropped first, with a console warning.
// Files older than MAX_AGE_MS are dropped when a page loads: a face photo should not linger on a
// shared device, and the session that could upload it has expired by then.
//
// Events: "progress" with detail {capture_id, kind, state, percent, error?}.

const DB_NAME = "telehealth-uploads";
const STORE = "uploads";
const MAX_ENTRIES = 30;
const MAX_BYTES = 200 * 1024 * 1024;
const MAX_AGE_MS = 24 * 3600 * 1000;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  if (!window.indexedDB) return Promise.reject(new Error("IndexedDB is not available"));
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => {
    const store = req.result.createObjectStore(STORE, { keyPath: "key" });
    store.createIndex("createdAt", "createdAt");
  };
  return request(req);
}

// One IndexedDB store; without IndexedDB (some private modes) the queue still works, in memory.
class Shelf {
  constructor() {
    this.db = openDb().catch((err) => {
      console.warn(`device uploads will not survive a reload: ${err.message}`);
      return null;
    });
  }

  async run(mode, fn) {
    const db = await this.db;
    if (!db) return null;
    const tx = db.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    const result = await request(fn(tx.objectStore(STORE)));
    await done; // written for good, not only accepted
    return result;
  }

  all() {
    return this.run("readonly", (s) => s.index("createdAt").getAll()).then((rows) => rows || []);
  }

  put(entry) {
    return this.run("readwrite", (s) => s.put(entry));
  }

  delete(key) {
    return this.run("readwrite", (s) => s.delete(key));
  }
}

export class UploadQueue extends EventTarget {
  constructor({ bearer, visitId }) {
    super();
    this.bearer = bearer;
    this.visitId = visitId;
    this.shelf = new Shelf();
    this.queue = [];
    this.keys = new Set(); // idempotency keys queued in this page
    this.uploading = false;
  }

  // A new file of a capture: kept on the device first, then sent.
  async add(captureId, kind, blob) {
    const entry = {
      key: `${captureId}:${kind}:${crypto.randomUUID()}`,
      visitId: this.visitId,
      captureId,
      kind,
      blob,
      contentType: blob.type || "application/octet-stream",
      size: blob.size,
      createdAt: Date.now(),
    };
    try {
      await this.makeRoom(entry.size);
      await this.shelf.put(entry);
    } catch (err) {
      console.warn(`device upload kept in memory only: ${err.message}`);
    }
    this.push(entry);
  }

  // After a reload, once the session is back: send what the previous page left unsent.
  async resume() {
    let rows = [];
    try {
      rows = await this.shelf.all();
    } catch (err) {
      console.warn(`could not read unsent device uploads: ${err.message}`);
    }
    for (const entry of rows) {
      if (Date.now() - entry.createdAt > MAX_AGE_MS) {
        console.warn(`dropping an unsent ${entry.kind} of capture ${entry.captureId}: older than a day`);
        await this.forget(entry);
      } else if (entry.visitId === this.visitId) {
        this.push(entry);
      }
    }
  }

  async makeRoom(size) {
    const rows = await this.shelf.all(); // oldest first
    let bytes = rows.reduce((n, r) => n + (r.size || 0), 0);
    let count = rows.length;
    for (const old of rows) {
      if (count + 1 <= MAX_ENTRIES && bytes + size <= MAX_BYTES) break;
      console.warn(`device upload storage full: dropping the oldest unsent ${old.kind} of capture ${old.captureId}`);
      await this.shelf.delete(old.key);
      this.queue = this.queue.filter((q) => q.key !== old.key || q === this.queue[0]);
      count -= 1;
      bytes -= old.size || 0;
      this.emit(old, "failed", 0, "dropped: the device's upload storage was full");
    }
  }

  push(entry) {
    if (this.keys.has(entry.key)) return;
    this.keys.add(entry.key);
    this.queue.push({ ...entry, attempt: 0 });
    this.emit(entry, "queued", 0);
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
        await this.forget(item);
        this.emit(item, "stored", 100);
      } catch (err) {
        item.attempt += 1;
        if (err.final || item.attempt > RETRY_MS.length) {
          this.queue.shift();
          // A refusal is final; a network that stayed down is not: a later page load retries it.
          if (err.final) await this.forget(item);
          this.emit(item, "failed", 0, err.message);
        } else {
          this.emit(item, "retrying", 0, err.message);
          await new Promise((r) => setTimeout(r, RETRY_MS[item.attempt - 1]));
        }
      }
    }
    this.uploading = false;
  }

  async forget(item) {
    try {
      await this.shelf.delete(item.key);
    } catch (err) {
      console.warn(`could not remove a sent upload from the device: ${err.message}`);
    }
  }

  // XMLHttpRequest, not fetch: it reports upload progress.
  upload(item) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/captures/${item.captureId}/upload`);
      xhr.setRequestHeader("Authorization", `Bearer ${this.bearer}`);
      xhr.setRequestHeader("Content-Type", item.contentType);
      xhr.setRequestHeader("Idempotency-Key", item.key);
      let last = 0;
      xhr.upload.onprogress = (ev) => {
        const pct = ev.lengthComputable ? Math.round((100 * ev.loaded) / ev.total) : 0;
        if (pct - last >= 20) {
          last = pct;
          this.emit(item, "uploading", pct);
        }
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else {
          const err = new Error(`upload refused (${xhr.status})`);
          // 4xx other than 408/409/429 will not succeed by retrying the same bytes.
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

  emit(item, state, percent, error) {
    const detail = { capture_id: item.captureId, kind: item.kind, state, percent };
    if (error) detail.error = error;
    this.dispatchEvent(new CustomEvent("progress", { detail }));
  }
}
