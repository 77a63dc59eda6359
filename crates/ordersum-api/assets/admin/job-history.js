// The job page's history: the timeline of its events and the table of its
// attempts (worker, start, end, time taken, outcome).

import { el, patch, syncRows, table } from "./dom.js";
import { fmtSecs } from "./format.js";
import { emptyRow, timeEl } from "./widgets.js";

export function jobTimeline() {
  const timeline = el("ol", { class: "timeline", "data-testid": "timeline" });
  return {
    node: el("section", { "aria-labelledby": "h-timeline" }, el("h2", { id: "h-timeline", text: "Timeline" }), timeline),
    update(_job, data) {
      const events = data.timeline || [];
      patch(timeline, JSON.stringify(events), () =>
        events.map((e) =>
          el(
            "li",
            { "data-event": String(e.event || "") },
            timeEl(e.at, true),
            el("span", { class: "event", text: String(e.event || "") }),
            e.worker_id ? el("span", { class: "mono small muted", text: `on ${e.worker_id}` }) : null,
          ),
        ),
      );
    },
  };
}

const ATTEMPT_HEADERS = [{ label: "#", cls: "num" }, { label: "Worker" }, { label: "Started" }, { label: "Ended" }, { label: "Took", cls: "num" }, { label: "Outcome" }];

const ATTEMPT_COLUMNS = [
  { cls: "num", render: (a) => String(a.attempt) },
  { cls: "mono small", render: (a) => a.worker_id || "—" },
  { render: (a) => timeEl(a.started_at) },
  { render: (a) => timeEl(a.ended_at) },
  {
    cls: "num",
    render: (a) => (a.started_at && a.ended_at ? fmtSecs((new Date(a.ended_at) - new Date(a.started_at)) / 1000) : a.started_at ? "running" : "—"),
  },
  { render: (a) => (a.outcome ? el("span", { class: `outcome ${String(a.outcome).replace(/[^a-z]/g, "")}`, text: a.outcome }) : "—") },
];

export function jobAttempts() {
  const attempts = table("attempts", ATTEMPT_HEADERS, "Attempts");
  const noAttempts = emptyRow("No attempt yet.");
  return {
    node: el("section", { "aria-labelledby": "h-attempts" }, el("h2", { id: "h-attempts", text: "Attempts" }), el("div", { class: "scroll" }, attempts.node), noAttempts),
    update(_job, data) {
      const list = data.attempts || [];
      noAttempts.hidden = list.length > 0;
      syncRows(
        attempts.tbody,
        list,
        (a) => a.attempt,
        ATTEMPT_COLUMNS,
        (tr) => tr.setAttribute("data-testid", "attempt-row"),
      );
    },
  };
}
