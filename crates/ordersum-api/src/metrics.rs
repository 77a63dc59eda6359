//! Prometheus metrics: requests by action and RetCode, request latency, jobs
//! enqueued. One recorder per process, shared by every app it runs.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "ordersum_api_requests_total";
pub const REQUEST_SECONDS: &str = "ordersum_api_request_duration_seconds";
pub const JOBS_ENQUEUED_TOTAL: &str = "ordersum_jobs_enqueued_total";

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process' Prometheus handle, installing the recorder on first use.
/// `None` when another recorder was installed first.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.to_owned()), &LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(REQUESTS_TOTAL, "API calls by Action and RetCode");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "API call latency by Action"
    );
    metrics::describe_counter!(
        JOBS_ENQUEUED_TOTAL,
        "Order-summary jobs created and pushed to the queue"
    );
}

/// Drains histogram buckets now and then, as the exporter asks its owner to.
pub async fn run_upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// Records one finished API call.
pub fn record_call(action: &'static str, ret_code: i32, elapsed: Duration) {
    metrics::counter!(REQUESTS_TOTAL, "action" => action, "ret_code" => ret_code.to_string())
        .increment(1);
    metrics::histogram!(REQUEST_SECONDS, "action" => action).record(elapsed.as_secs_f64());
}
