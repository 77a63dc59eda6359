// The webhooks: every company's endpoints, troubled first (disabled, then
// failing longest), with their pending deliveries and last failures.

import { api } from "./api.js";
import { el, syncRows, table } from "./dom.js";
import { fmtInt } from "./format.js";
import { emptyRow, heading, notice, showNotice, timeEl } from "./widgets.js";

function state(e) {
  if (e.disabled) return el("span", { class: "outcome failed", title: e.disabled_reason || "", text: "disabled" });
  if (e.failing_since) return el("span", { class: "outcome retryscheduled", text: "failing" });
  return el("span", { class: "outcome succeeded", text: "ok" });
}

function failures(e) {
  const list = Array.isArray(e.recent_failures) ? e.recent_failures : [];
  if (list.length === 0) return "—";
  return el(
    "ul",
    { class: "plain small" },
    ...list.map((f) =>
      el("li", {}, timeEl(f.attempted_at), " ", el("span", { class: "mono", text: f.http_status != null ? `HTTP ${f.http_status}` : String(f.error || "error") })),
    ),
  );
}

export function webhooksView() {
  const error = notice();
  const grid = table(
    "webhooks-table",
    [{ label: "Company", cls: "num" }, { label: "URL" }, { label: "State" }, { label: "Failing since" }, { label: "Last delivery" }, { label: "Pending", cls: "num" }, { label: "Recent failures" }],
    "Webhook endpoints",
  );
  const empty = emptyRow("No company has a webhook endpoint.");
  return {
    title: "Webhooks",
    route: "webhooks",
    nodes: [heading("Webhooks"), error, el("div", { class: "scroll" }, grid.node), empty],
    load: () => api("webhooks"),
    fail: (err) => showNotice(error, err.message),
    update(data) {
      showNotice(error, "");
      const endpoints = data.endpoints || [];
      empty.hidden = endpoints.length > 0;
      syncRows(
        grid.tbody,
        endpoints,
        (e) => e.id,
        [
          { cls: "num", sig: (e) => e.company_id, render: (e) => el("a", { href: `#/jobs?company=${encodeURIComponent(e.company_id)}`, text: String(e.company_id) }) },
          { cls: "mono small", render: (e) => String(e.url || "") },
          { render: state },
          { render: (e) => (e.failing_since ? timeEl(e.failing_since) : "—") },
          { render: (e) => (e.last_delivery_time ? el("span", {}, String(e.last_delivery_status || ""), " ", timeEl(e.last_delivery_time)) : "—") },
          { cls: "num", render: (e) => fmtInt(e.pending) },
          { render: failures },
        ],
        (tr, e) => {
          tr.setAttribute("data-testid", "webhook-row");
          tr.setAttribute("data-webhook-id", String(e.id));
        },
      );
    },
  };
}
