//! Prometheus metrics of the worker, served on `GET /metrics` at
//! `ORDERSUM_WORKER_METRICS_ADDR`: job runs by outcome and their duration,
//! rows and bytes written, jobs in flight, and (read by every worker each
//! sweep interval) jobs by status, the queue depth and the oldest heartbeat.
//! One recorder per process; every function here records one event.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ordersum_model::JobStatus;

pub const JOBS_STARTED: &str = "ordersum_worker_jobs_started_total";
pub const JOBS_SUCCEEDED: &str = "ordersum_worker_jobs_succeeded_total";
pub const JOBS_FAILED: &str = "ordersum_worker_jobs_failed_total";
pub const JOBS_RETRIED: &str = "ordersum_worker_jobs_retried_total";
pub const JOBS_CANCELLED: &str = "ordersum_worker_jobs_cancelled_total";
pub const JOBS_HANDED_BACK: &str = "ordersum_worker_jobs_handed_back_total";
pub const JOB_DURATION: &str = "ordersum_worker_job_duration_seconds";
pub const ROWS_WRITTEN: &str = "ordersum_worker_rows_written_total";
pub const BYTES_STORED: &str = "ordersum_worker_bytes_stored_total";
pub const JOBS_IN_FLIGHT: &str = "ordersum_worker_jobs_in_flight";
pub const QUEUE_DEPTH: &str = "ordersum_worker_queue_depth";
pub const JOBS_BY_STATUS: &str = "ordersum_worker_jobs";
pub const HEARTBEAT_AGE: &str = "ordersum_worker_heartbeat_age_seconds";

const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process' Prometheus handle, installing the recorder on first use.
/// `None` when another recorder was installed first.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(JOB_DURATION.to_owned()), &DURATION_BUCKETS)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Prefix("ordersum_webhook_".to_owned()),
                    &crate::webhooks::metrics::BUCKETS,
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            start_at_zero();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    crate::webhooks::metrics::describe();
    describe_counter!(JOBS_STARTED, "Job runs started by this worker");
    describe_counter!(JOBS_SUCCEEDED, "Job runs that produced their summary");
    describe_counter!(JOBS_FAILED, "Job runs that failed the job for good");
    describe_counter!(
        JOBS_RETRIED,
        "Job runs that failed and put the job back for a retry"
    );
    describe_counter!(
        JOBS_CANCELLED,
        "Job runs stopped because the job was cancelled or taken back"
    );
    describe_counter!(
        JOBS_HANDED_BACK,
        "Job runs handed back to the queue at shutdown"
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Wall time of a job run, by outcome"
    );
    describe_counter!(
        ROWS_WRITTEN,
        "Order rows written into summaries, by sheet (paid, unpaid)"
    );
    describe_counter!(
        BYTES_STORED,
        Unit::Bytes,
        "Bytes of finished summaries stored"
    );
    describe_gauge!(JOBS_IN_FLIGHT, "Job runs in progress in this worker");
    describe_gauge!(
        QUEUE_DEPTH,
        "Jobs waiting to run (status queued), read every sweep interval"
    );
    describe_gauge!(JOBS_BY_STATUS, "Jobs by status, read every sweep interval");
    describe_gauge!(
        HEARTBEAT_AGE,
        Unit::Seconds,
        "Age of the oldest heartbeat among running jobs (0: none), read every sweep interval"
    );
}

/// Counters and the in-flight gauge exist from the start, at 0: a worker that
/// has not run a job yet shows zeroes rather than no series (so that rates,
/// ratios and "absent" alerts see it).
fn start_at_zero() {
    for name in [
        JOBS_STARTED,
        JOBS_SUCCEEDED,
        JOBS_FAILED,
        JOBS_RETRIED,
        JOBS_CANCELLED,
        JOBS_HANDED_BACK,
        BYTES_STORED,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for sheet in ["paid", "unpaid"] {
        metrics::counter!(ROWS_WRITTEN, "sheet" => sheet).absolute(0);
    }
    metrics::gauge!(JOBS_IN_FLIGHT).set(0.0);
    crate::webhooks::metrics::start_at_zero();
}

/// Serves `GET /metrics` on `addr` (installing the recorder); answers the
/// bound address, `None` when `addr` is `None` (metrics off). When the
/// address is the default (`explicit` false) and its port is taken, by
/// another worker on the same host say, a free port on the same interface
/// is taken instead and logged; an address set explicitly must be free.
pub async fn serve(addr: Option<SocketAddr>, explicit: bool) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = addr else {
        tracing::info!("metrics off (ORDERSUM_WORKER_METRICS_ADDR)");
        return Ok(None);
    };
    let handle = handle().context("another metrics recorder is installed")?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) if !explicit && err.kind() == std::io::ErrorKind::AddrInUse => {
            let free = SocketAddr::new(addr.ip(), 0);
            let listener = tokio::net::TcpListener::bind(free)
                .await
                .with_context(|| format!("binding a free port for metrics on {}", addr.ip()))?;
            tracing::warn!(
                taken = %addr,
                addr = %listener.local_addr()?,
                "the default metrics port is taken (another worker on this host?); serving on a free one"
            );
            listener
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "ORDERSUM_WORKER_METRICS_ADDR={addr} cannot be bound (set another address, 0 for a free port, or off)"
            )));
        }
    };
    let bound = listener.local_addr()?;
    tokio::spawn(run_upkeep(handle.clone()));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "serving metrics on /metrics");
    Ok(Some(bound))
}

/// Drains histogram buckets now and then, as the exporter asks its owner to.
async fn run_upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// How a job run ended, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Retried,
    /// Cancelled or taken back: the row is no longer this run's.
    Cancelled,
    HandedBack,
}

impl RunOutcome {
    fn label(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Retried => "retried",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::HandedBack => "handed_back",
        }
    }

    fn counter(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => JOBS_SUCCEEDED,
            RunOutcome::Failed => JOBS_FAILED,
            RunOutcome::Retried => JOBS_RETRIED,
            RunOutcome::Cancelled => JOBS_CANCELLED,
            RunOutcome::HandedBack => JOBS_HANDED_BACK,
        }
    }
}

/// A job run in progress: counted in flight until it ends or is dropped.
#[derive(Debug)]
pub struct Run {
    started: Instant,
}

/// A job run starts.
pub fn run_started() -> Run {
    metrics::counter!(JOBS_STARTED).increment(1);
    metrics::gauge!(JOBS_IN_FLIGHT).increment(1.0);
    Run {
        started: Instant::now(),
    }
}

impl Run {
    /// The run ended with `outcome`.
    pub fn ended(self, outcome: RunOutcome) {
        metrics::counter!(outcome.counter()).increment(1);
        metrics::histogram!(JOB_DURATION, "outcome" => outcome.label())
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        metrics::gauge!(JOBS_IN_FLIGHT).decrement(1.0);
    }
}

/// A summary was stored: its rows and bytes.
pub fn summary_stored(paid_rows: u64, unpaid_rows: u64, bytes: u64) {
    metrics::counter!(ROWS_WRITTEN, "sheet" => "paid").increment(paid_rows);
    metrics::counter!(ROWS_WRITTEN, "sheet" => "unpaid").increment(unpaid_rows);
    metrics::counter!(BYTES_STORED).increment(bytes);
}

/// What a sweep read of the jobs table: rows by status and the age of the
/// oldest heartbeat among running jobs.
pub fn jobs_swept(by_status: &[(JobStatus, i64)], oldest_heartbeat_secs: Option<f64>) {
    let count = |status: JobStatus| {
        by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    for status in JobStatus::ALL {
        metrics::gauge!(JOBS_BY_STATUS, "status" => status.as_db()).set(count(status) as f64);
    }
    metrics::gauge!(QUEUE_DEPTH).set(count(JobStatus::Queued) as f64);
    metrics::gauge!(HEARTBEAT_AGE).set(oldest_heartbeat_secs.unwrap_or(0.0).max(0.0));
}
