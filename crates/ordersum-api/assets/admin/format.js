// Formatting of the API's values for display: plain strings, no DOM.

/** Job statuses in display order. */
export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "expired"];

const numberFormat = new Intl.NumberFormat("en-US");
export const fmtInt = (n) => (n == null ? "—" : numberFormat.format(n));

export function capital(word) {
  return word ? word.charAt(0).toUpperCase() + word.slice(1) : "";
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Local "YYYY-MM-DD HH:MM:SS" (time only when today). */
export function fmtTime(iso, always) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay && !always ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Seconds as "0.4 s", "12 s", "3 min 05 s", "2 h 03 min", "3 d 4 h". */
export function fmtSecs(secs) {
  if (secs == null || Number.isNaN(Number(secs))) return "—";
  const s = Math.max(0, Number(secs));
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(Math.floor(s % 60))} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${pad(m % 60)} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function fmtBytes(n) {
  if (n == null) return "—";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${fmtInt(v)} bytes` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

// Job ids are UUIDv7: the first digits are the creation time, shared by
// jobs made together; the last 8 (random, also in the file name) tell them apart.
export const shortId = (id) => String(id).slice(-8);
export const jobHref = (id) => `#/jobs/${encodeURIComponent(id)}`;
