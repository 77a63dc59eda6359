//! What each Action answers, as types; `wire::envelope` puts `Action` and
//! `RetCode` around them.

use ordersum_model::JobView;
use ordersum_model::job::Submitted;
use serde::Serialize;

use crate::webhooks::{DeliveryList, Done, WebhookList, WebhookView};

/// The answer of one Action call.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// `DownloadOrderSummary`: `JobId`, `Status`, `Data`.
    Submitted(Submitted),
    /// `GetOrderSummaryJob` and `CancelOrderSummaryJob`: the job.
    Job(JobView),
    /// `ListOrderSummaryJobs`.
    Jobs(JobList),
    /// `CreateOrderSummaryWebhook` and `RotateOrderSummaryWebhookSecret`:
    /// the endpoint with its new `Secret`.
    Webhook(WebhookView),
    /// `ListOrderSummaryWebhooks`.
    Webhooks(WebhookList),
    /// `ListOrderSummaryWebhookDeliveries`.
    Deliveries(DeliveryList),
    /// `DeleteOrderSummaryWebhook`, `RedeliverOrderSummaryWebhook`: the
    /// RetCode alone.
    Done(Done),
}

/// A page of the company's jobs, newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobList {
    pub jobs: Vec<ListedJob>,
    pub total_count: i64,
}

/// A job as listed: its `Request` lists cut to their first few items, and
/// `RequestTruncated: true` when any was.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedJob {
    #[serde(flatten)]
    pub job: JobView,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub request_truncated: bool,
}
