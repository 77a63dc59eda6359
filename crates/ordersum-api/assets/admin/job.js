// The job page (#/jobs/<id>): one job's state, actions, facts, request and
// history, each part built and brought up to date by its own module.

import { api } from "./api.js";
import { el } from "./dom.js";
import { shortId } from "./format.js";
import { jobActions } from "./job-actions.js";
import { jobFacts, jobRequest } from "./job-facts.js";
import { jobAttempts, jobTimeline } from "./job-history.js";
import { jobFailure, jobHeader, jobProgress, jobRelated } from "./job-summary.js";
import { jobWebhooks } from "./job-webhooks.js";
import { notice, showNotice } from "./widgets.js";

export function jobView(id) {
  const error = notice();
  const header = jobHeader(id);
  const actions = jobActions(id);
  const progress = jobProgress();
  const related = jobRelated();
  const failure = jobFailure();
  const facts = jobFacts();
  const request = jobRequest();
  const timeline = jobTimeline();
  const attempts = jobAttempts();
  const webhooks = jobWebhooks();
  // In the order the page updates them; each has update(job, data).
  const parts = [header, actions, progress, related, failure, facts, request, timeline, attempts, webhooks];

  return {
    title: `Job …${shortId(id)}`,
    route: "jobs",
    nodes: [
      el("p", { class: "crumbs" }, el("a", { href: "#/jobs", text: "← All jobs" })),
      header.node,
      error,
      actions.node,
      progress.node,
      related.node,
      failure.node,
      el("div", { class: "columns" }, facts.node, request.node),
      timeline.node,
      attempts.node,
      webhooks.node,
    ],
    load: () => api(`jobs/${encodeURIComponent(id)}`),
    fail(err) {
      showNotice(error, err.status === 404 ? `No job with id ${id}.` : err.message);
    },
    update(data) {
      showNotice(error, "");
      const job = data.job || {};
      for (const part of parts) part.update(job, data);
    },
  };
}
