// The overview: queue depth, running jobs and live workers, jobs by status
// and the last hour's finished jobs per minute as a bar chart.

import { api } from "./api.js";
import { el, patch, svg } from "./dom.js";
import { STATUSES, capital, fmtInt, fmtSecs, fmtTime } from "./format.js";
import { heading, notice, showNotice } from "./widgets.js";

export function overviewView() {
  const tiles = el("div", { class: "tiles" });
  const statuses = el("ul", { class: "status-counts", "data-testid": "overview-statuses" });
  const chartBox = el("div", { class: "chart", "data-testid": "overview-chart" });
  const hourText = el("p", { class: "muted", "data-testid": "overview-last-hour" });
  const error = notice();

  const tile = (key, label) => {
    const value = el("span", { class: "value", text: "—" });
    const node = el("div", { class: "tile", "data-testid": `stat-${key}` }, el("span", { class: "label", text: label }), value);
    tiles.append(node);
    return value;
  };
  const queueDepth = tile("queue-depth", "Queue depth");
  const oldest = tile("oldest-queued", "Oldest waiting job");
  const running = tile("running", "Running");
  const workers = tile("workers-live", "Live workers");
  const hourOk = tile("succeeded-hour", "Succeeded, last hour");
  const hourFailed = tile("failed-hour", "Failed, last hour");

  return {
    title: "Overview",
    route: "overview",
    nodes: [
      heading("Overview"),
      error,
      tiles,
      el("section", { "aria-labelledby": "h-status" }, el("h2", { id: "h-status", text: "Jobs by status" }), statuses),
      el(
        "section",
        { "aria-labelledby": "h-hour" },
        el("h2", { id: "h-hour", text: "Last hour, per minute" }),
        hourText,
        chartBox,
        el(
          "p",
          { class: "legend" },
          el("span", { class: "key succeeded" }),
          "succeeded ",
          el("span", { class: "key failed" }),
          "failed",
        ),
      ),
    ],
    load: () => api("overview"),
    fail: (err) => showNotice(error, err.message),
    update(data) {
      showNotice(error, "");
      queueDepth.textContent = fmtInt(data.queue_depth);
      oldest.textContent = data.oldest_queued_age_secs == null ? "none waiting" : fmtSecs(data.oldest_queued_age_secs);
      running.textContent = fmtInt(data.running);
      workers.textContent = fmtInt(data.workers_live);
      workers.parentElement.classList.toggle("warn", Number(data.workers_live) === 0);
      const hour = data.last_hour || {};
      hourOk.textContent = fmtInt(hour.succeeded);
      hourFailed.textContent = fmtInt(hour.failed);
      hourFailed.parentElement.classList.toggle("warn", Number(hour.failed) > 0);
      const counts = data.statuses || {};
      patch(statuses, JSON.stringify(counts), () =>
        STATUSES.map((s) =>
          el(
            "li",
            null,
            el(
              "a",
              { href: `#/jobs?status=${s}`, "data-testid": `count-${s}` },
              el("span", { class: `badge status-${s}`, text: capital(s) }),
              el("span", { class: "count", text: fmtInt(counts[s] || 0) }),
            ),
          ),
        ),
      );
      hourText.textContent = `${fmtInt(hour.succeeded)} succeeded, ${fmtInt(hour.failed)} failed, ${fmtInt(hour.cancelled)} cancelled in the last 60 minutes.`;
      patch(chartBox, JSON.stringify(hour.minutes || []), () => chart(hour.minutes || []));
    },
  };
}

/** Stacked bars, succeeded under failed, one per minute, oldest left. */
function chart(minutes) {
  const W = 720;
  const H = 150;
  const top = 14;
  const base = 120;
  const left = 34;
  const n = Math.max(1, minutes.length);
  const step = (W - left) / n;
  const max = Math.max(1, ...minutes.map((m) => (m.succeeded || 0) + (m.failed || 0)));
  const scale = (base - top) / max;
  const total = minutes.reduce((acc, m) => [acc[0] + (m.succeeded || 0), acc[1] + (m.failed || 0)], [0, 0]);
  const node = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Jobs finished per minute over the last hour: ${total[0]} succeeded, ${total[1]} failed; busiest minute ${max}.`,
    preserveAspectRatio: "xMidYMid meet",
  });
  node.append(
    svg("line", { x1: left, y1: base + 0.5, x2: W, y2: base + 0.5, class: "axis" }),
    svg("line", { x1: left, y1: top + 0.5, x2: W, y2: top + 0.5, class: "grid-line" }),
    svg("text", { x: left - 6, y: top + 4, class: "tick", "text-anchor": "end" }, String(max)),
    svg("text", { x: left - 6, y: base + 4, class: "tick", "text-anchor": "end" }, "0"),
  );
  minutes.forEach((m, i) => {
    const x = left + i * step;
    const ok = m.succeeded || 0;
    const bad = m.failed || 0;
    const hOk = ok * scale;
    const hBad = bad * scale;
    const g = svg("g", { class: "minute" });
    const when = m.minute ? fmtTime(m.minute).slice(0, -3) : "";
    g.append(svg("title", null, `${when}: ${ok} succeeded, ${bad} failed`));
    g.append(svg("rect", { x: x, y: top, width: step, height: base - top, class: "hit" }));
    if (ok) g.append(svg("rect", { x: x + 1, y: base - hOk, width: Math.max(1, step - 2), height: hOk, class: "bar succeeded" }));
    if (bad) g.append(svg("rect", { x: x + 1, y: base - hOk - hBad, width: Math.max(1, step - 2), height: hBad, class: "bar failed" }));
    node.append(g);
  });
  const labels = [
    [left, "start", "60 min ago"],
    [left + (W - left) / 2, "middle", "30 min ago"],
    [W, "end", "now"],
  ];
  for (const [x, anchor, text] of labels) {
    node.append(svg("text", { x, y: H - 8, class: "tick", "text-anchor": anchor }, text));
  }
  return node;
}
