//! The deliverer's metrics: attempts by outcome, how long each took, how
//! long after the job's end a delivery landed, and (every few seconds) the
//! backlog of pending deliveries and the age of the oldest.

use chrono::{DateTime, Utc};
use ordersum_model::store::deliveries::{Attempted, Next};

pub const DELIVERIES: &str = "ordersum_webhook_deliveries_total";
pub const ATTEMPT_DURATION: &str = "ordersum_webhook_attempt_duration_seconds";
pub const DELIVERY_LATENCY: &str = "ordersum_webhook_delivery_latency_seconds";
pub const BACKLOG: &str = "ordersum_webhook_backlog";
pub const OLDEST_PENDING: &str = "ordersum_webhook_oldest_pending_seconds";

/// Buckets of both histograms: from milliseconds (a local receiver) to the
/// retry schedule's hours.
pub const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0,
    86_400.0,
];

/// The outcomes counted.
pub const OUTCOMES: [&str; 5] = ["delivered", "retrying", "failed", "gone", "refused"];

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        DELIVERIES,
        "Webhook attempts by outcome: delivered, retrying, failed (no tries left), gone (410: endpoint disabled), refused (address not allowed)"
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Wall time of one webhook attempt"
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From the job's end to the receiver's 2xx, per delivered webhook"
    );
    describe_gauge!(
        BACKLOG,
        "Webhook deliveries pending (all workers), read every 5 s"
    );
    describe_gauge!(
        OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest pending webhook delivery (0: none), read every 5 s"
    );
}

pub fn start_at_zero() {
    for outcome in OUTCOMES {
        metrics::counter!(DELIVERIES, "outcome" => outcome).absolute(0);
    }
    backlog(0, 0.0);
}

/// One attempt was made.
pub fn attempted(attempt: &Attempted<'_>, event_time: DateTime<Utc>) {
    let refused = attempt.error.is_some_and(|e| e.starts_with("refused"));
    let outcome = match attempt.next {
        Next::Delivered => "delivered",
        Next::Gone => "gone",
        _ if refused => "refused",
        Next::RetryAfter(_) => "retrying",
        Next::GiveUp => "failed",
    };
    metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
    metrics::histogram!(ATTEMPT_DURATION).record(attempt.duration.as_secs_f64());
    if attempt.next == Next::Delivered {
        let latency = (Utc::now() - event_time).num_microseconds().unwrap_or(0) as f64 / 1e6;
        metrics::histogram!(DELIVERY_LATENCY).record(latency.max(0.0));
    }
}

pub fn backlog(pending: i64, oldest_secs: f64) {
    metrics::gauge!(BACKLOG).set(pending as f64);
    metrics::gauge!(OLDEST_PENDING).set(oldest_secs.max(0.0));
}
