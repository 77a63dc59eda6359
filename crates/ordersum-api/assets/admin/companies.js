// The companies: queued and running jobs per company against the cap, and
// the last hour's jobs and failures.

import { api } from "./api.js";
import { el, syncRows, table } from "./dom.js";
import { fmtInt, fmtSecs } from "./format.js";
import { emptyRow, heading, notice, showNotice } from "./widgets.js";

function capBar(active, cap) {
  const ratio = cap > 0 ? Math.min(1, active / cap) : 0;
  const fill = el("span", { class: "fill" });
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  const full = cap > 0 && active >= cap;
  return el(
    "div",
    { class: `progress cap${full ? " full" : ""}`, "data-testid": "cap-bar" },
    el("span", { class: "track", role: "meter", "aria-label": "Active jobs against the cap", "aria-valuemin": "0", "aria-valuemax": String(cap), "aria-valuenow": String(active) }, fill),
    el("span", { class: "progress-text", text: `${fmtInt(active)} / ${fmtInt(cap)}${full ? " (at cap)" : ""}` }),
  );
}

export function companiesView() {
  const error = notice();
  const note = el("p", { class: "muted", "data-testid": "companies-note" });
  const grid = table(
    "companies-table",
    [{ label: "Company", cls: "num" }, { label: "Queued", cls: "num" }, { label: "Running", cls: "num" }, { label: "Active / cap", cls: "wide" }, { label: "Oldest waiting", cls: "num" }, { label: "Last hour", cls: "num" }, { label: "Failed, last hour", cls: "num" }],
    "Companies",
  );
  const empty = emptyRow("No company has an active job or one created in the last 24 hours.");
  return {
    title: "Companies",
    route: "companies",
    nodes: [heading("Companies"), error, note, el("div", { class: "scroll" }, grid.node), empty],
    load: () => api("companies"),
    fail: (err) => showNotice(error, err.message),
    update(data) {
      showNotice(error, "");
      const companies = data.companies || [];
      note.textContent = `Companies with an active job or one created in the last 24 hours, most active first. Each may have ${fmtInt(data.cap)} jobs queued or running at once.`;
      empty.hidden = companies.length > 0;
      syncRows(
        grid.tbody,
        companies,
        (c) => c.company_id,
        [
          { cls: "num", sig: (c) => c.company_id, render: (c) => el("a", { href: `#/jobs?company=${encodeURIComponent(c.company_id)}`, title: "This company's jobs", text: String(c.company_id) }) },
          { cls: "num", render: (c) => fmtInt(c.queued) },
          { cls: "num", render: (c) => fmtInt(c.running) },
          { cls: "wide", render: (c) => capBar(Number(c.active) || 0, Number(c.cap != null ? c.cap : data.cap) || 0) },
          { cls: "num", render: (c) => (c.oldest_queued_age_secs == null ? "—" : fmtSecs(c.oldest_queued_age_secs)) },
          { cls: "num", render: (c) => fmtInt(c.last_hour) },
          { cls: "num", render: (c) => el("span", { class: Number(c.failed_last_hour) > 0 ? "bad-count" : null, text: fmtInt(c.failed_last_hour) }) },
        ],
        (tr, c) => {
          tr.setAttribute("data-testid", "company-row");
          tr.setAttribute("data-company-id", String(c.company_id));
        },
      );
    },
  };
}
