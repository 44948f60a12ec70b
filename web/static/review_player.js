// Clip player with frame stepping, and a sync group that drives several players as one.
import { el } from "./api.js";

const DEFAULT_FPS = 30;

function fpsOf(media) {
  if (media.frames && media.duration_ms) return media.frames / (media.duration_ms / 1000);
  return DEFAULT_FPS;
}

export function clipPlayer(media, label = "") {
  const fps = fpsOf(media);
  const video = el("video", { src: media.url, preload: "metadata", playsinline: "", "aria-label": `${label} clip` });
  video.muted = true; // clips carry no diagnostic sound; muted video may play without a gesture
  const readout = el("span", { class: "readout" }, "0.00 s · frame 0");
  const playBtn = el("button", { class: "play", type: "button", onclick: () => (video.paused ? video.play() : video.pause()) }, "Play");
  const step = (n) => {
    video.pause();
    // Land in the middle of the target frame so rounding never shows the neighbour.
    const frame = Math.max(0, Math.floor(video.currentTime * fps) + n);
    video.currentTime = Math.min(video.duration || Infinity, (frame + 0.5) / fps);
  };
  const speed = el("select", { "aria-label": "Speed" },
    ...[1, 0.5, 0.25].map((r) => el("option", { value: String(r) }, `${r}×`)));
  speed.addEventListener("change", () => { video.playbackRate = Number(speed.value); });
  const update = () => {
    readout.textContent = `${video.currentTime.toFixed(2)} s · frame ${Math.floor(video.currentTime * fps)}`;
    playBtn.textContent = video.paused ? "Play" : "Pause";
  };
  for (const ev of ["timeupdate", "seeked", "play", "pause", "ended"]) video.addEventListener(ev, update);
  const controls = el("div", { class: "player-controls" },
    el("button", { class: "secondary frame-back", type: "button", title: "Previous frame", onclick: () => step(-1) }, "◀ frame"),
    playBtn,
    el("button", { class: "secondary frame-fwd", type: "button", title: "Next frame", onclick: () => step(1) }, "frame ▶"),
    speed, readout);
  const root = el("div", { class: "player" }, video, controls);
  return { root, video, step, fps };
}

// Plays, pauses and steps several players together; the first is the clock the others follow.
export function syncGroup(players) {
  const [leader, ...followers] = players;
  const drift = () => {
    for (const f of followers) {
      const target = Math.min(leader.video.currentTime, (f.video.duration || Infinity));
      if (!f.video.ended && Math.abs(f.video.currentTime - target) > 0.08) f.video.currentTime = target;
    }
  };
  leader.video.addEventListener("timeupdate", drift);
  const all = (fn) => Promise.all(players.map(fn));
  return {
    play: () => all((p) => p.video.play()),
    pause: () => all((p) => p.video.pause()),
    restart: () => all((p) => { p.video.pause(); p.video.currentTime = 0; }),
    step: (n) => all((p) => p.step(n)),
  };
}

export function syncControls(group) {
  return el("div", { class: "player-controls sync" },
    el("button", { class: "play-both", type: "button", onclick: () => group.play() }, "Play both"),
    el("button", { class: "secondary", type: "button", onclick: () => group.pause() }, "Pause"),
    el("button", { class: "secondary", type: "button", onclick: () => group.step(-1) }, "◀ frame"),
    el("button", { class: "secondary", type: "button", onclick: () => group.step(1) }, "frame ▶"),
    el("button", { class: "secondary", type: "button", onclick: () => group.restart() }, "Restart"));
}
