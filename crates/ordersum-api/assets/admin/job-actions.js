// The job page's actions: cancel, retry as a new job, download; the
// buttons the API allows in the job's state, and what the last one did.

import { ApiError, SignedOut, api } from "./api.js";
import { el, patch } from "./dom.js";
import { fmtBytes, fmtSecs, jobHref } from "./format.js";
import { refreshNow } from "./live.js";

/** The action buttons of job `id` and the message line under them. */
export function jobActions(id) {
  const actions = el("div", { class: "actions", "data-testid": "job-actions" });
  const actionMsg = el("p", { class: "action-message", role: "status", "data-testid": "action-message" });
  let busy = false;

  function setButtons(disabled) {
    for (const b of actions.querySelectorAll("button")) b.disabled = disabled;
  }

  async function act(what) {
    if (busy) return;
    busy = true;
    setButtons(true);
    actionMsg.className = "action-message";
    actionMsg.textContent = "Working…";
    try {
      await perform(id, what, actionMsg);
    } catch (err) {
      if (err instanceof SignedOut) return;
      actionMsg.className = "action-message error";
      actionMsg.textContent = err instanceof ApiError && err.status === 409 ? `Not possible now: ${err.message}` : `Failed: ${err.message}`;
    } finally {
      busy = false;
      setButtons(false);
      refreshNow();
    }
  }

  return {
    node: [actions, actionMsg],
    update(_job, data) {
      patch(actions, JSON.stringify([data.can_cancel, data.can_retry, data.can_download]), () => buttons(data, act));
    },
  };
}

/** The buttons `data` allows, each calling act(what). */
function buttons(data, act) {
  return [
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
  ];
}

/** Does `what` to job `id` through the API, telling `msg` how it went. */
async function perform(id, what, msg) {
  if (what === "cancel") {
    if (!window.confirm(`Cancel job ${id}? The customer's request ends as Cancelled.`)) {
      msg.textContent = "";
      return;
    }
    await api(`jobs/${encodeURIComponent(id)}/cancel`, "POST");
    msg.textContent = "Cancelled.";
  } else if (what === "retry") {
    const body = await api(`jobs/${encodeURIComponent(id)}/retry`, "POST");
    const fresh = body && body.job;
    msg.replaceChildren(
      "Retried as a new job: ",
      fresh ? el("a", { href: jobHref(fresh.id), class: "mono", "data-testid": "retry-link", text: fresh.id }) : "(no id in the answer)",
      ". This job stays as it was.",
    );
  } else if (what === "download") {
    const body = await api(`jobs/${encodeURIComponent(id)}/link`);
    const url = new URL(String(body.url), location.href);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ApiError(0, "the link is not an http(s) URL");
    msg.textContent = `Downloading ${body.file_name || "the file"} (${fmtBytes(body.file_size)}); the link is valid for ${fmtSecs(body.expires_in_secs)}.`;
    location.href = url.href;
  }
}
