//! A worker's webhook deliveries: claim what is due (`FOR UPDATE SKIP
//! LOCKED`, leased so that a delivery whose worker died is due again when
//! the lease runs out), then record each attempt, its next try and what it
//! says about the endpoint; plus the figures the metrics and the console
//! show.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::job::JobStatus;

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub event_id: String,
    pub endpoint_id: Uuid,
    /// Tries on the current schedule, this one included.
    pub tries: i32,
    pub url: String,
    /// The stored forms of the secrets that sign: the current one, and the
    /// previous one while a rotation's overlap lasts.
    pub secret: String,
    pub previous_secret: Option<String>,
    pub event_type: String,
    pub job_id: Uuid,
    pub status: JobStatus,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
    pub error_message: Option<String>,
    pub event_time: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries of enabled endpoints for `worker`,
/// leased for `lease`.
#[tracing::instrument(skip_all, err)]
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    worker: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        r#"WITH due AS (
               SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id
                WHERE d.state = 'pending' AND d.next_at <= now()
                  AND (d.lease_until IS NULL OR d.lease_until < now()) AND NOT e.disabled
                ORDER BY d.next_at LIMIT $2
                  FOR UPDATE OF d SKIP LOCKED)
           UPDATE webhook_deliveries d
              SET leased_by = $1, lease_until = now() + $3, tries = d.tries + 1
             FROM due, webhook_endpoints e, webhook_events v
            WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
              AND e.id = d.endpoint_id AND v.id = d.event_id
        RETURNING d.event_id, d.endpoint_id, d.tries, e.url, e.secret,
                  CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret,
                  v.type AS event_type, v.job_id, v.status, v.file_name, v.file_size,
                  v.paid_rows, v.unpaid_rows, v.error_message, v.created_at AS event_time"#,
    )
    .bind(worker)
    .bind(limit)
    .bind(lease)
    .fetch_all(db)
    .await
}

/// What comes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// 2xx: done.
    Delivered,
    /// Failed; try again after the delay.
    RetryAfter(Duration),
    /// Failed and no tries are left.
    GiveUp,
    /// 410 Gone: the endpoint is disabled.
    Gone,
}

/// One attempt as it went.
#[derive(Debug, Clone)]
pub struct Attempted<'a> {
    pub http_status: Option<i32>,
    pub error: Option<&'a str>,
    pub duration: Duration,
    pub next: Next,
}

/// Records `attempt` of `due` by `worker`: the log row, the delivery's state
/// and next try (unless the worker lost its lease meanwhile), and the
/// endpoint's last status; an endpoint failing for `disable_after` in a
/// row, or answering 410, is disabled. Answers whether the lease was held.
#[tracing::instrument(skip_all, err, fields(event_id = %due.event_id))]
pub async fn record_attempt(
    pool: &crate::pool::Db,
    worker: &str,
    due: &Due,
    attempt: &Attempted<'_>,
    disable_after: Duration,
) -> Result<bool, sqlx::Error> {
    let (state, delay) = match attempt.next {
        Next::Delivered => ("delivered", None),
        // Postgres intervals hold microseconds.
        Next::RetryAfter(delay) => (
            "pending",
            Some(Duration::from_micros(delay.as_micros() as u64)),
        ),
        Next::GiveUp | Next::Gone => ("failed", None),
    };
    let delivered = attempt.next == Next::Delivered;
    let status_text = match (attempt.http_status, attempt.error) {
        (Some(code), _) => code.to_string(),
        (None, Some(error)) => error.chars().take(120).collect(),
        (None, None) => "unknown".to_owned(),
    };
    let mut tx = pool.begin().await?;
    let held = sqlx::query(
        r#"UPDATE webhook_deliveries
              SET state = $3, next_at = coalesce(now() + $4, next_at), leased_by = NULL, lease_until = NULL
            WHERE event_id = $1 AND endpoint_id = $2 AND leased_by = $5 AND tries = $6"#,
    )
    .bind(&due.event_id)
    .bind(due.endpoint_id)
    .bind(state)
    .bind(delay)
    .bind(worker)
    .bind(due.tries)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let duration_ms = i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX);
    sqlx::query(
        r#"INSERT INTO webhook_attempts (event_id, endpoint_id, http_status, error, duration_ms, next_at, worker_id)
           VALUES ($1, $2, $3, $4, $5, now() + $6, $7)"#,
    )
    .bind(&due.event_id)
    .bind(due.endpoint_id)
    .bind(attempt.http_status)
    .bind(attempt.error)
    .bind(duration_ms)
    .bind(delay.filter(|_| held))
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r#"UPDATE webhook_endpoints
              SET last_delivery_status = $2, last_delivery_time = now(),
                  failing_since = CASE WHEN $3 THEN NULL ELSE coalesce(failing_since, now()) END,
                  disabled = disabled OR $4 OR coalesce(NOT $3 AND failing_since < now() - $5, false),
                  disabled_reason = CASE
                      WHEN disabled THEN disabled_reason
                      WHEN $4 THEN 'the receiver answered 410 Gone'
                      WHEN coalesce(NOT $3 AND failing_since < now() - $5, false)
                          THEN 'deliveries failed for 5 days in a row'
                  END
            WHERE id = $1"#,
    )
    .bind(due.endpoint_id)
    .bind(status_text)
    .bind(delivered)
    .bind(attempt.next == Next::Gone)
    .bind(disable_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(held)
}

/// Pending deliveries and the age in seconds of the oldest (0 without any).
#[tracing::instrument(skip_all, err)]
pub async fn backlog(db: impl PgExecutor<'_>) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        r#"SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
             FROM webhook_deliveries WHERE state = 'pending'"#,
    )
    .fetch_one(db)
    .await
}
