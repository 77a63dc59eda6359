//! What the console's JSON API answers, one type per answer: the field
//! names `console.js` reads. Times are RFC 3339 in UTC with milliseconds,
//! durations seconds as numbers, statuses their `summary_jobs` text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordersum_model::JobStatus;
use ordersum_model::store::console::{AttemptRow, CompanyRow, JobRow};
use ordersum_model::store::workers::WorkerRow;
use serde::Serialize;
use uuid::Uuid;

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn unix_time(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(time)
}

fn secs_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    Some((to? - from?).num_milliseconds() as f64 / 1000.0)
}

/// A job as the console lists and shows it.
#[derive(Debug, Serialize)]
pub struct ConsoleJob {
    pub id: Uuid,
    pub company_id: i64,
    pub status: &'static str,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
    /// How far through its window the export has read, 0 to 1.
    pub progress: Option<f64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<String>,
    /// Seconds from submission to the first start.
    pub wait_secs: Option<f64>,
    /// Seconds from the first start to the end (or now).
    pub run_secs: Option<f64>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub error_message: Option<String>,
    /// Why a queued job has not started (the orders replica is behind).
    pub wait_reason: Option<String>,
    /// The orders replica's last replayed commit the attempt read at.
    pub orders_as_of: Option<String>,
    pub retry_of: Option<Uuid>,
    pub window: Window,
}

/// A request's window.
#[derive(Debug, Serialize)]
pub struct Window {
    pub start: Option<String>,
    pub end: Option<String>,
}

impl From<&JobRow> for ConsoleJob {
    fn from(job: &JobRow) -> Self {
        let until = job.finished_at.or(Some(job.read_at));
        ConsoleJob {
            id: job.id,
            company_id: job.company_id,
            status: job.status.as_db(),
            attempts: job.attempts,
            worker_id: job.worker_id.clone(),
            paid_rows: job.paid_rows,
            unpaid_rows: job.unpaid_rows,
            progress: job.progress(),
            created_at: time(job.created_at),
            started_at: job.started_at.map(time),
            finished_at: job.finished_at.map(time),
            heartbeat_at: job.heartbeat_at.map(time),
            wait_secs: secs_between(Some(job.created_at), job.started_at),
            run_secs: job
                .started_at
                .and_then(|_| secs_between(job.started_at, until)),
            file_name: job.file_name.clone(),
            file_size: job.file_size,
            error_message: job.error_message.clone(),
            wait_reason: job
                .wait_reason
                .clone()
                .filter(|_| job.status == JobStatus::Queued),
            orders_as_of: job.orders_as_of.map(time),
            retry_of: job.retry_of,
            window: Window {
                start: unix_time(job.window_start),
                end: unix_time(job.window_end),
            },
        }
    }
}

/// `GET /admin/api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub now: String,
    /// Jobs by status, every status present.
    pub statuses: BTreeMap<&'static str, i64>,
    pub queue_depth: i64,
    pub oldest_queued_age_secs: Option<f64>,
    pub running: i64,
    pub workers_live: i64,
    pub last_hour: LastHour,
}

#[derive(Debug, Serialize)]
pub struct LastHour {
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// The last 60 minutes, oldest first.
    pub minutes: Vec<Minute>,
}

#[derive(Debug, Serialize)]
pub struct Minute {
    pub minute: String,
    pub succeeded: i64,
    pub failed: i64,
}

/// `GET /admin/api/jobs`.
#[derive(Debug, Serialize)]
pub struct Jobs {
    pub jobs: Vec<ConsoleJob>,
}

/// A job changed by the operator (cancel, retry).
#[derive(Debug, Serialize)]
pub struct OneJob {
    pub job: ConsoleJob,
}

/// `GET /admin/api/jobs/{id}`.
#[derive(Debug, Serialize)]
pub struct JobDetail {
    pub job: ConsoleJob,
    pub request: Option<serde_json::Value>,
    pub timeline: Vec<Event>,
    pub attempts: Vec<ConsoleAttempt>,
    pub retries: Vec<Uuid>,
    /// Its webhook events and their deliveries.
    pub webhooks: Vec<ordersum_model::store::console::JobWebhookRow>,
    pub can_cancel: bool,
    pub can_retry: bool,
    pub can_download: bool,
}

/// One line of a job's timeline.
#[derive(Debug, Serialize)]
pub struct Event {
    pub at: String,
    pub event: String,
    /// Present on an attempt's events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Option<String>>,
}

#[derive(Debug, Serialize)]
pub struct ConsoleAttempt {
    pub attempt: i32,
    pub worker_id: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: Option<String>,
}

impl From<&AttemptRow> for ConsoleAttempt {
    fn from(a: &AttemptRow) -> Self {
        ConsoleAttempt {
            attempt: a.attempt,
            worker_id: a.worker_id.clone(),
            started_at: time(a.started_at),
            ended_at: a.ended_at.map(time),
            outcome: a.outcome.clone(),
        }
    }
}

/// The timeline of `row`: created, each attempt's start and end, finished.
pub fn timeline(row: &JobRow, attempts: &[AttemptRow]) -> Vec<Event> {
    let mut events = vec![Event {
        at: time(row.created_at),
        event: "created".into(),
        worker_id: None,
    }];
    for attempt in attempts {
        events.push(Event {
            at: time(attempt.started_at),
            event: format!("attempt {} started", attempt.attempt),
            worker_id: Some(attempt.worker_id.clone()),
        });
        if let Some(ended) = attempt.ended_at {
            let outcome = attempt.outcome.as_deref().unwrap_or("ended");
            events.push(Event {
                at: time(ended),
                event: format!("attempt {} ended: {outcome}", attempt.attempt),
                worker_id: Some(attempt.worker_id.clone()),
            });
        }
    }
    if let Some(finished) = row.finished_at {
        events.push(Event {
            at: time(finished),
            event: format!("finished: {}", row.status.as_db()),
            worker_id: None,
        });
    }
    events
}

/// Whether the operator may retry a job in `status`.
pub fn retryable(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Failed | JobStatus::Cancelled | JobStatus::Expired
    )
}

/// `GET /admin/api/jobs/{id}/link`.
#[derive(Debug, Serialize)]
pub struct Link {
    pub url: String,
    pub file_name: String,
    pub file_size: i64,
    pub expires_in_secs: u64,
}

/// `GET /admin/api/workers`.
#[derive(Debug, Serialize)]
pub struct Workers {
    pub stale_after_secs: f64,
    pub workers: Vec<ConsoleWorker>,
}

#[derive(Debug, Serialize)]
pub struct ConsoleWorker {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub concurrency: i32,
    pub version: String,
    /// Where it serves `/metrics` (a free port when the default was taken).
    pub metrics_addr: Option<String>,
    pub jobs_in_hand: Vec<Uuid>,
    pub started_at: String,
    pub heartbeat_at: String,
    pub heartbeat_age_secs: f64,
    pub stale: bool,
}

impl ConsoleWorker {
    pub fn new(w: &WorkerRow, stale_after_secs: f64) -> Self {
        ConsoleWorker {
            id: w.id.clone(),
            host: w.host.clone(),
            pid: w.pid,
            concurrency: w.concurrency,
            version: w.version.clone(),
            metrics_addr: w.metrics_addr.clone(),
            jobs_in_hand: w.jobs.clone(),
            started_at: time(w.started_at),
            heartbeat_at: time(w.heartbeat_at),
            heartbeat_age_secs: w.heartbeat_age_secs,
            stale: w.heartbeat_age_secs > stale_after_secs,
        }
    }
}

/// `GET /admin/api/companies`.
#[derive(Debug, Serialize)]
pub struct Companies {
    pub cap: i64,
    pub companies: Vec<ConsoleCompany>,
}

#[derive(Debug, Serialize)]
pub struct ConsoleCompany {
    pub company_id: i64,
    pub queued: i64,
    pub running: i64,
    pub active: i64,
    pub cap: i64,
    pub last_hour: i64,
    pub failed_last_hour: i64,
    pub oldest_queued_age_secs: Option<f64>,
}

impl ConsoleCompany {
    pub fn new(c: &CompanyRow, cap: i64) -> Self {
        ConsoleCompany {
            company_id: c.company_id,
            queued: c.queued,
            running: c.running,
            active: c.queued + c.running,
            cap,
            last_hour: c.last_hour,
            failed_last_hour: c.failed_last_hour,
            oldest_queued_age_secs: c.oldest_queued_age_secs,
        }
    }
}

/// A refused console call.
#[derive(Debug, Serialize)]
pub struct Refused {
    pub error: String,
    /// The job in the way (an equal one already queued or running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
}

/// `/admin/api/webhooks`: every company's endpoints, troubled first.
#[derive(Debug, Serialize)]
pub struct Webhooks {
    pub endpoints: Vec<ordersum_model::store::console::EndpointRow>,
}
