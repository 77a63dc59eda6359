// ordersum operator console: hash routes over the JSON API under
// /admin/api/, each view refreshed by short polling (one request at a time,
// paused while the tab is hidden). Every value reaches the DOM through
// textContent or setAttribute, never as HTML.
"use strict";

(() => {
  const REFRESH_MS = 1000;
  const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "expired"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") || "" : "";
  const main = document.getElementById("main");
  const live = document.getElementById("live");

  // ---------------------------------------------------------------- DOM

  /** An element: props are attributes, except class, text, on (listeners). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value != null) node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "on") {
        for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  /** Replaces `node`'s children by build()'s, only when `sig` changed (keeps focus). */
  const sigs = new WeakMap();
  function patch(node, sig, build) {
    if (sigs.get(node) === sig) return;
    sigs.set(node, sig);
    const built = build();
    node.replaceChildren();
    append(node, [built]);
  }

  /**
   * Brings a tbody to `items`, keyed rows kept in place: a cell is rebuilt
   * only when its own signature changed, so a focused link survives.
   * columns: [{cls, sig?(item), render(item)}]; decorate(tr, item).
   */
  function syncRows(tbody, items, keyOf, columns, decorate) {
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) old.set(tr.dataset.key, tr);
    const kept = new Set();
    items.forEach((item, index) => {
      const key = String(keyOf(item));
      let tr = old.get(key);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        for (const col of columns) tr.append(el("td", { class: col.cls }));
      }
      kept.add(key);
      decorate(tr, item);
      const whole = JSON.stringify(item);
      columns.forEach((col, i) => {
        const cell = tr.cells[i];
        if (col.label) cell.setAttribute("data-label", col.label);
        patch(cell, col.sig ? String(col.sig(item)) : whole, () => col.render(item));
      });
      const at = tbody.rows[index];
      if (at !== tr) tbody.insertBefore(tr, at || null);
    });
    for (const [key, tr] of old) if (!kept.has(key)) tr.remove();
  }

  function table(testid, headers, caption) {
    const tbody = el("tbody");
    const node = el(
      "table",
      { class: "grid", "data-testid": testid },
      caption ? el("caption", { class: "visually-hidden", text: caption }) : null,
      el("thead", null, el("tr", null, headers.map((h) => el("th", { scope: "col", class: h.cls, text: h.label })))),
      tbody,
    );
    return { node, tbody };
  }

  // ---------------------------------------------------------- formatting

  const numberFormat = new Intl.NumberFormat("en-US");
  const fmtInt = (n) => (n == null ? "—" : numberFormat.format(n));

  function capital(word) {
    return word ? word.charAt(0).toUpperCase() + word.slice(1) : "";
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  /** Local "YYYY-MM-DD HH:MM:SS" (time only when today). */
  function fmtTime(iso, always) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return sameDay && !always ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }

  function timeEl(iso, always) {
    if (!iso) return "—";
    return el("time", { datetime: iso, title: iso, text: fmtTime(iso, always) });
  }

  /** Seconds as "0.4 s", "12 s", "3 min 05 s", "2 h 03 min", "3 d 4 h". */
  function fmtSecs(secs) {
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

  function fmtBytes(n) {
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
  const shortId = (id) => String(id).slice(-8);
  const jobHref = (id) => `#/jobs/${encodeURIComponent(id)}`;

  function jobLink(id, full) {
    return el("a", { href: jobHref(id), class: "mono", title: String(id), text: full ? String(id) : shortId(id) });
  }

  function badge(status) {
    const s = String(status || "unknown");
    return el("span", { class: `badge status-${s.replace(/[^a-z]/g, "")}`, "data-testid": "job-status", "data-status": s, text: capital(s) });
  }

  /** The progress bar of a job: fill width = progress, text paid · unpaid rows. */
  function progressBar(job) {
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

  function emptyRow(text) {
    return el("p", { class: "empty", text, hidden: true });
  }

  // ------------------------------------------------------------------ API

  class SignedOut extends Error {}

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, method) {
    const init = {
      method: method || "GET",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    };
    if (init.method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    const response = await fetch(`/admin/api/${path}`, init);
    if (response.status === 401) {
      location.href = "/admin";
      throw new SignedOut("signed out");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  // -------------------------------------------------------- live refresh

  let view = null;
  let timer = null;
  let inFlight = false;
  let again = false;

  function setLive(state, text) {
    live.className = `live ${state}`;
    live.textContent = text;
  }

  async function tick() {
    clearTimeout(timer);
    timer = null;
    if (!view) return;
    if (inFlight) {
      again = true;
      return;
    }
    if (document.hidden) {
      setLive("paused", "Paused while hidden");
      return; // visibilitychange starts it again
    }
    const current = view;
    inFlight = true;
    try {
      const data = await current.load();
      if (current === view) {
        current.update(data);
        setLive("ok", `Live · updated ${fmtTime(new Date().toISOString())}`);
      }
    } catch (err) {
      if (err instanceof SignedOut) return;
      if (current === view) {
        if (err instanceof ApiError && current.fail) current.fail(err);
        setLive("bad", err instanceof ApiError ? `Error: ${err.message}` : "Connection lost; retrying…");
      }
    } finally {
      inFlight = false;
      if (!(document.hidden && !again)) {
        timer = setTimeout(tick, again ? 0 : REFRESH_MS);
      }
      again = false;
    }
  }

  function refreshNow() {
    if (inFlight) again = true;
    else tick();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !inFlight) tick();
  });

  // --------------------------------------------------------------- pages

  function heading(text, extra) {
    return el("div", { class: "page-head" }, el("h1", { tabindex: "-1", text }), extra);
  }

  function notice() {
    return el("p", { class: "notice error", role: "alert", hidden: true, "data-testid": "view-error" });
  }

  function showNotice(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  // Overview ------------------------------------------------------------

  function overviewView() {
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

  // Jobs ------------------------------------------------------------------

  /** datetime-local value (local time) → RFC 3339 UTC, or null. */
  function localToIso(value) {
    if (!value) return null;
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d.toISOString();
  }

  function jobsView(params) {
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

  // Job page ----------------------------------------------------------------

  function jobView(id) {
    const title = el("h1", { tabindex: "-1" }, "Job ", el("span", { class: "mono", text: id }));
    const status = el("span", { class: "head-status" });
    const error = notice();
    const actions = el("div", { class: "actions", "data-testid": "job-actions" });
    const actionMsg = el("p", { class: "action-message", role: "status", "data-testid": "action-message" });
    const progress = el("div", { class: "job-progress" });
    const facts = el("dl", { class: "facts", "data-testid": "job-facts" });
    const failure = el("div", { "data-testid": "job-error-box" });
    const request = el("dl", { class: "facts request", "data-testid": "request" });
    const timeline = el("ol", { class: "timeline", "data-testid": "timeline" });
    const attempts = table("attempts", [{ label: "#", cls: "num" }, { label: "Worker" }, { label: "Started" }, { label: "Ended" }, { label: "Took", cls: "num" }, { label: "Outcome" }], "Attempts");
    const noAttempts = emptyRow("No attempt yet.");
    const related = el("div", { class: "related", "data-testid": "related" });
    let job = null;
    let busy = false;

    async function act(what) {
      if (busy) return;
      busy = true;
      for (const b of actions.querySelectorAll("button")) b.disabled = true;
      actionMsg.className = "action-message";
      actionMsg.textContent = "Working…";
      try {
        if (what === "cancel") {
          if (!window.confirm(`Cancel job ${id}? The customer's request ends as Cancelled.`)) {
            actionMsg.textContent = "";
            return;
          }
          await api(`jobs/${encodeURIComponent(id)}/cancel`, "POST");
          actionMsg.textContent = "Cancelled.";
        } else if (what === "retry") {
          const body = await api(`jobs/${encodeURIComponent(id)}/retry`, "POST");
          const fresh = body && body.job;
          actionMsg.replaceChildren(
            "Retried as a new job: ",
            fresh ? el("a", { href: jobHref(fresh.id), class: "mono", "data-testid": "retry-link", text: fresh.id }) : "(no id in the answer)",
            ". This job stays as it was.",
          );
        } else if (what === "download") {
          const body = await api(`jobs/${encodeURIComponent(id)}/link`);
          const url = new URL(String(body.url), location.href);
          if (url.protocol !== "http:" && url.protocol !== "https:") throw new ApiError(0, "the link is not an http(s) URL");
          actionMsg.textContent = `Downloading ${body.file_name || "the file"} (${fmtBytes(body.file_size)}); the link is valid for ${fmtSecs(body.expires_in_secs)}.`;
          location.href = url.href;
        }
      } catch (err) {
        if (err instanceof SignedOut) return;
        actionMsg.className = "action-message error";
        actionMsg.textContent = err instanceof ApiError && err.status === 409 ? `Not possible now: ${err.message}` : `Failed: ${err.message}`;
      } finally {
        busy = false;
        for (const b of actions.querySelectorAll("button")) b.disabled = false;
        refreshNow();
      }
    }

    const dlRows = (pairs) =>
      pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", null, v == null || v === "" ? "—" : v)]);

    const factCells = new Map();
    function setFacts(dl, rows) {
      for (const [label, value, render] of rows) {
        let dd = factCells.get(label);
        if (!dd) {
          dd = el("dd");
          dl.append(el("dt", { text: label }), dd);
          factCells.set(label, dd);
        }
        patch(dd, JSON.stringify(value === undefined ? null : value), render);
      }
    }

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

    return {
      title: `Job …${shortId(id)}`,
      route: "jobs",
      nodes: [
        el("p", { class: "crumbs" }, el("a", { href: "#/jobs", text: "← All jobs" })),
        el("div", { class: "page-head" }, title, status),
        error,
        actions,
        actionMsg,
        progress,
        related,
        failure,
        el(
          "div",
          { class: "columns" },
          el("section", { "aria-labelledby": "h-facts" }, el("h2", { id: "h-facts", text: "Job" }), facts),
          el("section", { "aria-labelledby": "h-request" }, el("h2", { id: "h-request", text: "Request (filters)" }), request),
        ),
        el("section", { "aria-labelledby": "h-timeline" }, el("h2", { id: "h-timeline", text: "Timeline" }), timeline),
        el("section", { "aria-labelledby": "h-attempts" }, el("h2", { id: "h-attempts", text: "Attempts" }), el("div", { class: "scroll" }, attempts.node), noAttempts),
      ],
      load: () => api(`jobs/${encodeURIComponent(id)}`),
      fail(err) {
        showNotice(error, err.status === 404 ? `No job with id ${id}.` : err.message);
      },
      update(data) {
        showNotice(error, "");
        job = data.job || {};
        patch(status, job.status, () => badge(job.status));
        patch(actions, JSON.stringify([data.can_cancel, data.can_retry, data.can_download]), () => [
          data.can_cancel ? el("button", { type: "button", class: "danger", "data-testid": "cancel", on: { click: () => act("cancel") }, text: "Cancel job" }) : null,
          data.can_retry
            ? el(
                "span",
                { class: "action" },
                el("button", { type: "button", "data-testid": "retry", "aria-describedby": "retry-note", on: { click: () => act("retry") }, text: "Retry as a new job" }),
                el("span", { id: "retry-note", class: "muted small", text: "Makes a new job with the same request; this one stays as it is." }),
              )
            : null,
          data.can_download ? el("button", { type: "button", "data-testid": "download", on: { click: () => act("download") }, text: "Download" }) : null,
          !data.can_cancel && !data.can_retry && !data.can_download ? el("span", { class: "muted", text: "No action possible in this state." }) : null,
        ]);
        patch(progress, JSON.stringify([job.status, job.progress, job.paid_rows, job.unpaid_rows]), () => progressBar(job));
        patch(related, JSON.stringify([job.retry_of, data.retries]), () => [
          job.retry_of ? el("p", { "data-testid": "retry-of" }, "Retry of ", jobLink(job.retry_of, true), ".") : null,
          data.retries && data.retries.length
            ? el("p", { "data-testid": "retries" }, "Retried as ", data.retries.map((r, i) => [i ? ", " : "", jobLink(r, true)]), ".")
            : null,
        ]);
        patch(failure, String(job.error_message || ""), () =>
          job.error_message
            ? el("section", { class: "failure", "aria-labelledby": "h-error" }, el("h2", { id: "h-error", text: "Error" }), el("pre", { "data-testid": "error-message", text: job.error_message }))
            : null,
        );
        const w = job.window || {};
        // One dd per fact, each rebuilt only when its own value changed (keeps focus).
        setFacts(facts, [
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
        ]);
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
        const list = data.attempts || [];
        noAttempts.hidden = list.length > 0;
        syncRows(
          attempts.tbody,
          list,
          (a) => a.attempt,
          [
            { cls: "num", render: (a) => String(a.attempt) },
            { cls: "mono small", render: (a) => a.worker_id || "—" },
            { render: (a) => timeEl(a.started_at) },
            { render: (a) => timeEl(a.ended_at) },
            {
              cls: "num",
              render: (a) => (a.started_at && a.ended_at ? fmtSecs((new Date(a.ended_at) - new Date(a.started_at)) / 1000) : a.started_at ? "running" : "—"),
            },
            { render: (a) => (a.outcome ? el("span", { class: `outcome ${String(a.outcome).replace(/[^a-z]/g, "")}`, text: a.outcome }) : "—") },
          ],
          (tr) => tr.setAttribute("data-testid", "attempt-row"),
        );
      },
    };
  }

  // Workers -------------------------------------------------------------------

  function workersView() {
    const error = notice();
    const note = el("p", { class: "muted", "data-testid": "workers-note" });
    const grid = table("workers-table", [{ label: "Worker" }, { label: "Host" }, { label: "Jobs in hand" }, { label: "Last heartbeat", cls: "num" }, { label: "Started" }, { label: "Slots", cls: "num" }, { label: "Version" }], "Workers");
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

  // Companies ------------------------------------------------------------------

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

  function companiesView() {
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

  // -------------------------------------------------------------- router

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
    const parts = path
      .split("/")
      .filter(Boolean)
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch (_) {
          return p;
        }
      });
    return { parts, params };
  }

  function makeView() {
    const { parts, params } = parseHash();
    switch (parts[0]) {
      case "jobs":
        return parts[1] ? jobView(parts[1]) : jobsView(params);
      case "workers":
        return workersView();
      case "companies":
        return companiesView();
      default:
        return overviewView();
    }
  }

  let first = true;
  function route() {
    if (!/^#\//.test(location.hash)) {
      history.replaceState(null, "", "#/overview");
    }
    view = makeView();
    document.title = `${view.title} · ordersum console`;
    for (const a of document.querySelectorAll("nav a[data-route]")) {
      if (a.getAttribute("data-route") === view.route) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    main.replaceChildren();
    append(main, view.nodes);
    if (!first) {
      const h1 = main.querySelector("h1");
      if (h1) h1.focus({ preventScroll: false });
    }
    first = false;
    refreshNow();
  }

  window.addEventListener("hashchange", route);
  route();
})();
