// Live refresh: the current view is read again every second, one request
// at a time, paused while the tab is hidden.

import { ApiError, SignedOut } from "./api.js";
import { fmtTime } from "./format.js";

const REFRESH_MS = 1000;
const live = document.getElementById("live");

let view = null;
let timer = null;
let inFlight = false;
let again = false;

/** Makes `next` the view that is refreshed ({load, update, fail?}). */
export function setView(next) {
  view = next;
}

function setLive(state, text) {
  live.className = `live ${state}`;
  live.textContent = text;
}

async function tick() {
  clearTimeout(timer);
  timer = null;
  if (!view) return;
  if (inFlight) {
    again = true;
    return;
  }
  if (document.hidden) {
    setLive("paused", "Paused while hidden");
    return; // visibilitychange starts it again
  }
  const current = view;
  inFlight = true;
  try {
    const data = await current.load();
    if (current === view) {
      current.update(data);
      setLive("ok", `Live · updated ${fmtTime(new Date().toISOString())}`);
    }
  } catch (err) {
    if (err instanceof SignedOut) return;
    if (current === view) {
      if (err instanceof ApiError && current.fail) current.fail(err);
      setLive("bad", err instanceof ApiError ? `Error: ${err.message}` : "Connection lost; retrying…");
    }
  } finally {
    inFlight = false;
    if (!(document.hidden && !again)) {
      timer = setTimeout(tick, again ? 0 : REFRESH_MS);
    }
    again = false;
  }
}

export function refreshNow() {
  if (inFlight) again = true;
  else tick();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !inFlight) tick();
});
