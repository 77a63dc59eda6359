// Small pieces shared by the views: times, job links, status badges, the
// progress bar, page headings and the error notice.

import { el } from "./dom.js";
import { capital, fmtInt, fmtTime, jobHref, shortId } from "./format.js";

export function timeEl(iso, always) {
  if (!iso) return "—";
  return el("time", { datetime: iso, title: iso, text: fmtTime(iso, always) });
}

export function jobLink(id, full) {
  return el("a", { href: jobHref(id), class: "mono", title: String(id), text: full ? String(id) : shortId(id) });
}

export function badge(status) {
  const s = String(status || "unknown");
  return el("span", { class: `badge status-${s.replace(/[^a-z]/g, "")}`, "data-testid": "job-status", "data-status": s, text: capital(s) });
}

/** The progress bar of a job: fill width = progress, text paid · unpaid rows. */
export function progressBar(job) {
  const p = job.progress == null ? 0 : Math.min(1, Math.max(0, Number(job.progress)));
  const fill = el("span", { class: "fill", "data-testid": "progress-fill" });
  fill.style.width = `${(p * 100).toFixed(1)}%`;
  const label = `paid ${fmtInt(job.paid_rows)} · unpaid ${fmtInt(job.unpaid_rows)} rows`;
  return el(
    "div",
    { class: `progress status-${String(job.status).replace(/[^a-z]/g, "")}`, "data-testid": "progress", "data-progress": job.progress == null ? "" : String(job.progress) },
    el(
      "span",
      {
        class: "track",
        role: "progressbar",
        "aria-label": "Progress through the time window",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": job.progress == null ? null : String(Math.round(p * 100)),
        "aria-valuetext": job.progress == null ? "not started" : `${Math.round(p * 100)}%`,
        "data-testid": "progress-bar",
        title: job.progress == null ? "not started" : `${(p * 100).toFixed(1)}% of the time window read`,
      },
      fill,
    ),
    el("span", { class: "progress-text", text: label }),
  );
}

export function emptyRow(text) {
  return el("p", { class: "empty", text, hidden: true });
}

export function heading(text, extra) {
  return el("div", { class: "page-head" }, el("h1", { tabindex: "-1", text }), extra);
}

export function notice() {
  return el("p", { class: "notice error", role: "alert", hidden: true, "data-testid": "view-error" });
}

export function showNotice(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}
