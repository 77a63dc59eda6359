// The job page's webhooks: the job's end event and, for each endpoint, where
// its delivery stands (delivered, pending with its next try, failed) and
// how the last attempt went.

import { el, syncRows, table } from "./dom.js";
import { emptyRow, timeEl } from "./widgets.js";

const HEADERS = [{ label: "Event" }, { label: "At" }, { label: "Endpoint" }, { label: "Delivery" }, { label: "Tries", cls: "num" }, { label: "Last attempt" }, { label: "Next try" }];

const COLUMNS = [
  { cls: "mono small", render: (w) => `${w.event_type} (${w.event_id})` },
  { render: (w) => timeEl(w.event_time) },
  { cls: "mono small", render: (w) => w.url || "no endpoint subscribed" },
  { render: (w) => (w.state ? el("span", { class: `outcome ${w.state === "delivered" ? "succeeded" : w.state === "failed" ? "failed" : "retryscheduled"}`, text: w.state }) : "—") },
  { cls: "num", render: (w) => (w.tries == null ? "—" : String(w.tries)) },
  {
    render: (w) =>
      w.last_attempt_at ? el("span", {}, el("span", { class: "mono", text: w.last_status != null ? `HTTP ${w.last_status}` : String(w.last_error || "") }), " ", timeEl(w.last_attempt_at)) : "—",
  },
  { render: (w) => (w.next_at ? timeEl(w.next_at, true) : "—") },
];

export function jobWebhooks() {
  const grid = table("job-webhooks", HEADERS, "Webhooks");
  const none = emptyRow("No webhook event yet (one is written when the job ends).");
  return {
    node: el("section", { "aria-labelledby": "h-webhooks" }, el("h2", { id: "h-webhooks", text: "Webhooks" }), el("div", { class: "scroll" }, grid.node), none),
    update(_job, data) {
      const list = data.webhooks || [];
      none.hidden = list.length > 0;
      syncRows(grid.tbody, list, (w) => `${w.event_id}/${w.endpoint_id || ""}`, COLUMNS, (tr) => tr.setAttribute("data-testid", "job-webhook-row"));
    },
  };
}
