// The workers: every worker's heartbeat, jobs in hand, slots; stale ones marked.

import { api } from "./api.js";
import { el, syncRows, table } from "./dom.js";
import { fmtSecs } from "./format.js";
import { emptyRow, heading, jobLink, notice, showNotice, timeEl } from "./widgets.js";

export function workersView() {
  const error = notice();
  const note = el("p", { class: "muted", "data-testid": "workers-note" });
  const grid = table("workers-table", [{ label: "Worker" }, { label: "Host" }, { label: "Jobs in hand" }, { label: "Last heartbeat", cls: "num" }, { label: "Started" }, { label: "Slots", cls: "num" }, { label: "Metrics" }, { label: "Version" }], "Workers");
  const empty = emptyRow("No worker is running.");
  return {
    title: "Workers",
    route: "workers",
    nodes: [heading("Workers"), error, note, el("div", { class: "scroll" }, grid.node), empty],
    load: () => api("workers"),
    fail: (err) => showNotice(error, err.message),
    update(data) {
      showNotice(error, "");
      const workers = data.workers || [];
      const stale = workers.filter((w) => w.stale).length;
      note.textContent = `${workers.length - stale} live, ${stale} stale. A worker is stale when its last heartbeat is older than ${fmtSecs(data.stale_after_secs)}; a stale worker's jobs are taken back.`;
      empty.hidden = workers.length > 0;
      syncRows(
        grid.tbody,
        workers,
        (w) => w.id,
        [
          { cls: "mono small", render: (w) => [w.id, w.stale ? el("span", { class: "badge stale", "data-testid": "stale", text: "stale" }) : null] },
          { render: (w) => [String(w.host || "—"), w.pid != null ? el("span", { class: "muted small", text: ` pid ${w.pid}` }) : null] },
          {
            sig: (w) => JSON.stringify(w.jobs_in_hand || []),
            render: (w) => {
              const jobs = w.jobs_in_hand || [];
              return jobs.length ? jobs.map((j, i) => [i ? ", " : "", jobLink(j)]) : el("span", { class: "muted", text: "idle" });
            },
          },
          { cls: "num", render: (w) => `${fmtSecs(w.heartbeat_age_secs)} ago` },
          { render: (w) => timeEl(w.started_at) },
          { cls: "num", render: (w) => (w.concurrency == null ? "—" : String(w.concurrency)) },
          { cls: "mono small", render: (w) => (w.metrics_addr ? el("span", { "data-testid": "metrics-addr", text: w.metrics_addr }) : el("span", { class: "muted", text: "off" })) },
          { cls: "small", render: (w) => w.version || "—" },
        ],
        (tr, w) => {
          tr.setAttribute("data-testid", "worker-row");
          tr.setAttribute("data-worker-id", w.id);
          tr.classList.toggle("stale", Boolean(w.stale));
        },
      );
    },
  };
}
