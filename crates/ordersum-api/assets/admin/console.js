// ordersum operator console: hash routes over the JSON API under
// /admin/api/, each view refreshed by short polling (one request at a time,
// paused while the tab is hidden). Every value reaches the DOM through
// textContent or setAttribute, never as HTML.
//
// The entry module: the router. Each view is a module of its own (overview,
// jobs, job, workers, companies, webhooks), built from dom.js, format.js, widgets.js,
// talking to the API through api.js and refreshed by live.js.

import { append } from "./dom.js";
import { companiesView } from "./companies.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { refreshNow, setView } from "./live.js";
import { overviewView } from "./overview.js";
import { webhooksView } from "./webhooks.js";
import { workersView } from "./workers.js";

const main = document.getElementById("main");

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
    case "webhooks":
      return webhooksView();
    default:
      return overviewView();
  }
}

let first = true;
function route() {
  if (!/^#\//.test(location.hash)) {
    history.replaceState(null, "", "#/overview");
  }
  const view = makeView();
  setView(view);
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
