// The job page's two lists of facts: the job's own (status, company,
// window, times, rows, file) and the request it was made from.

import { el, patch } from "./dom.js";
import { capital, fmtBytes, fmtInt, fmtSecs } from "./format.js";
import { timeEl } from "./widgets.js";

/** The job's facts, one dd each, rebuilt only when its own value changed (keeps focus). */
export function jobFacts() {
  const facts = el("dl", { class: "facts", "data-testid": "job-facts" });
  const cells = new Map();
  function setFacts(rows) {
    for (const [label, value, render] of rows) {
      let dd = cells.get(label);
      if (!dd) {
        dd = el("dd");
        facts.append(el("dt", { text: label }), dd);
        cells.set(label, dd);
      }
      patch(dd, JSON.stringify(value === undefined ? null : value), render);
    }
  }
  return {
    node: el("section", { "aria-labelledby": "h-facts" }, el("h2", { id: "h-facts", text: "Job" }), facts),
    update(job) {
      setFacts(factRows(job));
    },
  };
}

/** [label, value (the signature), render] for each fact of `job`. */
function factRows(job) {
  const w = job.window || {};
  return [
    ["Status", job.status, () => capital(job.status)],
    ["Company", job.company_id, () => el("a", { href: `#/jobs?company=${encodeURIComponent(job.company_id)}`, text: String(job.company_id) })],
    ["Window", [w.start, w.end], () => [timeEl(w.start, true), " → ", timeEl(w.end, true)]],
    ["Attempts", job.attempts, () => fmtInt(job.attempts)],
    ["Worker", job.worker_id, () => (job.worker_id ? el("span", { class: "mono", text: job.worker_id }) : "—")],
    ["Created", job.created_at, () => timeEl(job.created_at, true)],
    ["Started", job.started_at, () => timeEl(job.started_at, true)],
    ["Finished", job.finished_at, () => timeEl(job.finished_at, true)],
    ["Last heartbeat", job.heartbeat_at, () => timeEl(job.heartbeat_at, true)],
    ["Waited", job.wait_secs, () => fmtSecs(job.wait_secs)],
    ["Run time", job.run_secs, () => fmtSecs(job.run_secs)],
    ["Rows", [job.paid_rows, job.unpaid_rows], () => `paid ${fmtInt(job.paid_rows)} · unpaid ${fmtInt(job.unpaid_rows)}`],
    ["File", job.file_name, () => (job.file_name ? el("span", { "data-testid": "file-name", text: job.file_name }) : "—")],
    [
      "File size",
      job.file_size,
      () => (job.file_size == null ? "—" : el("span", { "data-testid": "file-size", title: `${fmtInt(job.file_size)} bytes`, text: `${fmtBytes(job.file_size)} (${fmtInt(job.file_size)} bytes)` })),
    ],
  ];
}

/** The request's fields: the time window first, the rest by name. */
export function jobRequest() {
  const request = el("dl", { class: "facts request", "data-testid": "request" });
  return {
    node: el("section", { "aria-labelledby": "h-request" }, el("h2", { id: "h-request", text: "Request (filters)" }), request),
    update(_job, data) {
      const req = data.request && typeof data.request === "object" ? data.request : {};
      patch(request, JSON.stringify(req), () => {
        const first = ["StartTime", "EndTime", "TimeZone"];
        const keys = Object.keys(req).sort((a, b) => {
          const ia = first.indexOf(a) < 0 ? first.length : first.indexOf(a);
          const ib = first.indexOf(b) < 0 ? first.length : first.indexOf(b);
          return ia - ib || (a < b ? -1 : a > b ? 1 : 0);
        });
        return keys.length ? dlRows(keys.map((k) => [k, requestValue(req[k], k)])) : el("p", { class: "muted", text: "(empty)" });
      });
    },
  };
}

const dlRows = (pairs) => pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", null, v == null || v === "" ? "—" : v)]);

function requestValue(v, key) {
  if (v == null) return "—";
  // StartTime / EndTime are Unix seconds: show the time beside them.
  if (/Time$/.test(key) && /^\d{9,11}$/.test(String(v))) {
    const at = new Date(Number(v) * 1000).toISOString();
    return [String(v), " ", el("span", { class: "muted" }, "(", timeEl(at, true), ")")];
  }
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", ") : "(any)";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
