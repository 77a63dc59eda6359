// The top of the job page: its heading and status, progress bar, related
// jobs (retry of, retried as) and error message.

import { el, patch } from "./dom.js";
import { badge, jobLink, progressBar } from "./widgets.js";

/** "Job <id>" and the status badge beside it. */
export function jobHeader(id) {
  const title = el("h1", { tabindex: "-1" }, "Job ", el("span", { class: "mono", text: id }));
  const status = el("span", { class: "head-status" });
  return {
    node: el("div", { class: "page-head" }, title, status),
    update(job) {
      patch(status, job.status, () => badge(job.status));
    },
  };
}

export function jobProgress() {
  const progress = el("div", { class: "job-progress" });
  return {
    node: progress,
    update(job) {
      patch(progress, JSON.stringify([job.status, job.progress, job.paid_rows, job.unpaid_rows]), () => progressBar(job));
    },
  };
}

/** The job this one retries, and the jobs that retried it. */
export function jobRelated() {
  const related = el("div", { class: "related", "data-testid": "related" });
  return {
    node: related,
    update(job, data) {
      patch(related, JSON.stringify([job.retry_of, data.retries]), () => [
        job.retry_of ? el("p", { "data-testid": "retry-of" }, "Retry of ", jobLink(job.retry_of, true), ".") : null,
        data.retries && data.retries.length
          ? el("p", { "data-testid": "retries" }, "Retried as ", data.retries.map((r, i) => [i ? ", " : "", jobLink(r, true)]), ".")
          : null,
      ]);
    },
  };
}

/** The error message of a failed job, or why a queued one waits. */
export function jobFailure() {
  const failure = el("div", { "data-testid": "job-error-box" });
  return {
    node: failure,
    update(job) {
      patch(failure, JSON.stringify([job.error_message, job.wait_reason]), () => [
        job.error_message
          ? el("section", { class: "failure", "aria-labelledby": "h-error" }, el("h2", { id: "h-error", text: "Error" }), el("pre", { "data-testid": "error-message", text: job.error_message }))
          : null,
        job.wait_reason
          ? el("section", { "aria-labelledby": "h-waiting" }, el("h2", { id: "h-waiting", text: "Waiting" }), el("p", { "data-testid": "wait-reason", text: job.wait_reason }))
          : null,
      ]);
    },
  };
}
