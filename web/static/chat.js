// In-call text chat for everyone admitted: a log and a one-line form over the signaling socket.
//
// The server stamps each line with who sent it and echoes our own lines back, so the log shows
// exactly what everyone received. Lines are refused while waiting, over 4 KiB, or too fast; the
// refusal is shown under the form.
import { roleLabel } from "./mesh.js";

const MAX_BYTES = 4096;

export class ChatBox {
  constructor(root, signal) {
    this.root = root;
    this.signal = signal;
    this.log = root.querySelector(".chat-log");
    this.form = root.querySelector("form");
    this.input = root.querySelector("textarea, input");
    this.error = root.querySelector(".chat-error");
    this.pending = new Set();
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        this.send();
      }
    });
    signal.addEventListener("chat", (ev) => this.add(ev.detail));
    signal.addEventListener("error", (ev) => {
      if (!this.pending.has(ev.detail.ref)) return;
      this.pending.delete(ev.detail.ref);
      const why = { forbidden: "You can chat once you are in the call.", rate_limited: "Please wait a moment before sending again.", invalid_message: "That message is too long." };
      this.showError(why[ev.detail.code] || ev.detail.message);
    });
  }

  send() {
    const text = this.input.value.trim();
    if (!text) return;
    if (new TextEncoder().encode(text).length > MAX_BYTES) {
      this.showError("That message is too long (at most about 4000 letters).");
      return;
    }
    const id = `chat${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    if (!this.signal.sendRaw({ type: "chat", id, text })) {
      this.showError("Not connected; try again in a moment.");
      return;
    }
    this.pending.add(id);
    this.input.value = "";
    this.error.hidden = true;
  }

  add(line) {
    const mine = this.signal.me && line.sender === this.signal.me.participant_id;
    const item = document.createElement("li");
    item.className = mine ? "mine" : "";
    item.dataset.sender = line.sender;
    const who = document.createElement("span");
    who.className = "who";
    const time = new Date((line.at || Date.now() / 1000) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    who.textContent = `${mine ? "You" : `${line.display_name} (${roleLabel(line.role)})`} · ${time}`;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = line.text; // never innerHTML: chat is untrusted input
    item.append(who, text);
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    this.root.dispatchEvent(new CustomEvent("chatline", { detail: line }));
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }
}

// The markup of a chat box (same on every page).
export function chatMarkup() {
  return `<ol class="chat-log" aria-live="polite" aria-label="Chat messages"></ol>
    <form class="chat-form"><label class="sr-only" for="chat-input">Message</label>
      <textarea id="chat-input" rows="2" maxlength="4096" placeholder="Type a message"></textarea>
      <button type="submit" id="chat-send">Send</button></form>
    <p class="chat-error error" role="alert" hidden></p>`;
}
