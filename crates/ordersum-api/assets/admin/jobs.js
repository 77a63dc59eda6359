// The jobs list: filters (status, company, created since/until) kept in the
// hash, the newest 100 matching jobs with their progress.

import { api } from "./api.js";
import { el, syncRows, table } from "./dom.js";
import { STATUSES, capital, fmtInt, fmtSecs } from "./format.js";
import { refreshNow } from "./live.js";
import { badge, emptyRow, heading, jobLink, notice, progressBar, showNotice, timeEl } from "./widgets.js";

/** datetime-local value (local time) → RFC 3339 UTC, or null. */
function localToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function jobsView(params) {
  const filters = {
    status: params.get("status") || "",
    company: params.get("company") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
  };
  const statusSelect = el(
    "select",
    { id: "f-status", name: "status", "data-testid": "filter-status" },
    el("option", { value: "", text: "Any" }),
    el("option", { value: "active", text: "Active (queued or running)" }),
    STATUSES.map((s) => el("option", { value: s, text: capital(s) })),
  );
  statusSelect.value = filters.status;
  const company = el("input", { id: "f-company", name: "company", type: "number", min: "1", step: "1", inputmode: "numeric", "data-testid": "filter-company", value: filters.company });
  const since = el("input", { id: "f-since", name: "since", type: "datetime-local", "data-testid": "filter-since", value: filters.since });
  const until = el("input", { id: "f-until", name: "until", type: "datetime-local", "data-testid": "filter-until", value: filters.until });
  const field = (label, input) => el("div", { class: "field" }, el("label", { for: input.id, text: label }), input);
  const form = el(
    "form",
    { class: "filters", "data-testid": "job-filters", role: "search", "aria-label": "Filter jobs" },
    field("Status", statusSelect),
    field("Company", company),
    field("Created since", since),
    field("Created until", until),
    el("div", { class: "field buttons" }, el("button", { type: "submit", text: "Apply" }), el("a", { href: "#/jobs", class: "button secondary", text: "Clear" })),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    if (statusSelect.value) q.set("status", statusSelect.value);
    if (company.value.trim()) q.set("company", company.value.trim());
    if (since.value) q.set("since", since.value);
    if (until.value) q.set("until", until.value);
    const hash = `#/jobs${q.toString() ? `?${q}` : ""}`;
    if (location.hash === hash) refreshNow();
    else location.hash = hash;
  });

  const error = notice();
  const count = el("p", { class: "muted", "data-testid": "jobs-count" });
  const grid = table(
    "jobs-table",
    [
      { label: "Job" },
      { label: "Company", cls: "num" },
      { label: "Status" },
      { label: "Progress", cls: "wide" },
      { label: "Attempts", cls: "num" },
      { label: "Worker" },
      { label: "Created" },
      { label: "Wait", cls: "num" },
      { label: "Run time", cls: "num" },
    ],
    "Jobs, newest first",
  );
  const empty = emptyRow("No jobs match these filters.");

  return {
    title: "Jobs",
    route: "jobs",
    nodes: [heading("Jobs"), form, error, count, el("div", { class: "scroll" }, grid.node), empty],
    load() {
      const q = new URLSearchParams();
      if (filters.status) q.set("status", filters.status);
      if (filters.company) q.set("company", filters.company);
      const s = localToIso(filters.since);
      const u = localToIso(filters.until);
      if (s) q.set("since", s);
      if (u) q.set("until", u);
      const qs = q.toString();
      return api(`jobs${qs ? `?${qs}` : ""}`);
    },
    fail: (err) => showNotice(error, err.status === 400 ? `Bad filter: ${err.message}` : err.message),
    update(data) {
      showNotice(error, "");
      const jobs = (data && data.jobs) || [];
      count.textContent = `${jobs.length} job${jobs.length === 1 ? "" : "s"}, newest first${jobs.length >= 100 ? " (the newest 100 shown; narrow the filters for older ones)" : ""}.`;
      empty.hidden = jobs.length > 0;
      syncRows(
        grid.tbody,
        jobs,
        (job) => job.id,
        [
          { cls: "mono", sig: (job) => job.id, render: (job) => jobLink(job.id) },
          { cls: "num", render: (job) => el("a", { href: `#/jobs?company=${encodeURIComponent(job.company_id)}`, title: "This company's jobs", text: String(job.company_id) }) },
          { render: (job) => badge(job.status) },
          { cls: "wide", render: (job) => progressBar(job) },
          { cls: "num", render: (job) => fmtInt(job.attempts) },
          { cls: "mono small", render: (job) => job.worker_id || "—" },
          { render: (job) => timeEl(job.created_at) },
          { cls: "num", render: (job) => fmtSecs(job.wait_secs) },
          { cls: "num", render: (job) => fmtSecs(job.run_secs) },
        ],
        (tr, job) => {
          tr.setAttribute("data-testid", "job-row");
          tr.setAttribute("data-job-id", job.id);
          tr.setAttribute("data-status", job.status);
        },
      );
    },
  };
}
