//! The operator console's queries (`/admin`): every company's jobs and
//! their attempts, a retry of an ended job, the overview's counts and
//! per-company activity. Unlike `jobs`, nothing here is scoped to a
//! company: only an operator reaches it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::job::JobStatus;

/// A job as the console lists it: no request (its lists may be long), but
/// its window and how far the export has read through it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub company_id: i64,
    pub request_hash: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
    pub file_key: Option<String>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub error_message: Option<String>,
    pub wait_reason: Option<String>,
    pub orders_as_of: Option<DateTime<Utc>>,
    pub retry_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Start time of the last order written.
    pub progress_at: Option<DateTime<Utc>>,
    /// The request's StartTime and EndTime, Unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    /// The database's clock when the row was read.
    pub read_at: DateTime<Utc>,
}

impl JobRow {
    /// How far through its window the export has read, 0 to 1; `None`
    /// before a first page was written. A succeeded job is done.
    pub fn progress(&self) -> Option<f64> {
        if self.status == JobStatus::Succeeded || self.status == JobStatus::Expired {
            return Some(1.0);
        }
        let reached = self.progress_at?.timestamp_millis() as f64 / 1000.0;
        let span = (self.window_end - self.window_start).max(1) as f64;
        Some(((reached - self.window_start as f64) / span).clamp(0.0, 1.0))
    }
}

const JOB_ROW_COLUMNS: &str = "id, company_id, request_hash, status, attempts, worker_id, paid_rows, \
     unpaid_rows, file_key, file_name, file_size, error_message, wait_reason, orders_as_of, retry_of, created_at, \
     started_at, finished_at, heartbeat_at, progress_at, \
     (request->>'StartTime')::bigint AS window_start, (request->>'EndTime')::bigint AS window_end, \
     now() AS read_at";

/// Which jobs to list; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub statuses: Option<Vec<JobStatus>>,
    pub company_id: Option<i64>,
    pub created_since: Option<DateTime<Utc>>,
    pub created_until: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Jobs of every company, newest first.
#[tracing::instrument(skip_all, err)]
pub async fn list_jobs(
    db: impl PgExecutor<'_>,
    filter: &JobFilter,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let statuses: Option<Vec<&str>> = filter
        .statuses
        .as_ref()
        .map(|list| list.iter().map(|s| s.as_db()).collect());
    let query = sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_ROW_COLUMNS} FROM summary_jobs \
         WHERE ($1::text[] IS NULL OR status = ANY($1)) \
           AND ($2::bigint IS NULL OR company_id = $2) \
           AND ($3::timestamptz IS NULL OR created_at >= $3) \
           AND ($4::timestamptz IS NULL OR created_at < $4) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ));
    sqlx::query_as(query)
        .bind(statuses)
        .bind(filter.company_id)
        .bind(filter.created_since)
        .bind(filter.created_until)
        .bind(filter.limit)
        .fetch_all(db)
        .await
}

#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn get_job(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_ROW_COLUMNS} FROM summary_jobs WHERE id = $1"
    ));
    sqlx::query_as(query).bind(id).fetch_optional(db).await
}

/// A job's stored (normalised) request.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn job_request(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar::<_, sqlx::types::Json<serde_json::Value>>(
        "SELECT request FROM summary_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .map(|found| found.map(|json| json.0))
}

/// One run of a job (kept by a trigger on `summary_jobs`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i32,
    pub worker_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn job_attempts(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT attempt, worker_id, started_at, ended_at, outcome FROM job_attempts \
         WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Jobs made by retrying `id`, oldest first.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn retries_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM summary_jobs WHERE retry_of = $1 ORDER BY created_at, id")
        .bind(id)
        .fetch_all(db)
        .await
}

/// A new queued job with the request of `old` (failed, cancelled or
/// expired), for its company, recorded as a retry of it. The company's cap
/// does not apply: an operator asked. `None` when `old` is in another state
/// (or gone).
#[tracing::instrument(skip_all, err, fields(job_id = %old))]
pub async fn insert_retry(
    conn: &mut PgConnection,
    id: Uuid,
    old: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO summary_jobs (id, company_id, request, request_hash, retry_of) \
         SELECT $1, company_id, request, request_hash, id FROM summary_jobs \
         WHERE id = $2 AND status IN ('failed', 'cancelled', 'expired') \
         RETURNING id",
    )
    .bind(id)
    .bind(old)
    .fetch_optional(conn)
    .await
}

/// Jobs that ended in one minute, by how.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// Jobs by status now, and what the last hour brought.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub statuses: Vec<(JobStatus, i64)>,
    pub oldest_queued_age_secs: Option<f64>,
    pub workers_live: i64,
    /// Jobs that ended in each minute that had any, oldest first.
    pub minutes: Vec<MinuteCount>,
    /// The database's clock.
    pub now: DateTime<Utc>,
}

#[tracing::instrument(skip_all, err)]
pub async fn overview(db: &crate::pool::Db, stale: Duration) -> Result<Overview, sqlx::Error> {
    let statuses = super::maintenance::count_jobs_by_status(db).await?;
    let (now, oldest_queued_age_secs, workers_live): (DateTime<Utc>, Option<f64>, i64) =
        sqlx::query_as(
            "SELECT now(), \
                (SELECT extract(epoch FROM now() - min(created_at))::float8 \
                   FROM summary_jobs WHERE status = 'queued'), \
                (SELECT count(*) FROM workers \
                  WHERE stopped_at IS NULL AND heartbeat_at > now() - $1)",
        )
        .bind(stale)
        .fetch_one(db)
        .await?;
    let minutes = sqlx::query_as(
        "SELECT date_trunc('minute', finished_at) AS minute, \
                count(*) FILTER (WHERE status IN ('succeeded', 'expired')) AS succeeded, \
                count(*) FILTER (WHERE status = 'failed') AS failed, \
                count(*) FILTER (WHERE status = 'cancelled') AS cancelled \
         FROM summary_jobs \
         WHERE finished_at >= date_trunc('minute', now()) - interval '59 minutes' \
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(db)
    .await?;
    Ok(Overview {
        statuses,
        oldest_queued_age_secs,
        workers_live,
        minutes,
        now,
    })
}

/// A company's jobs now and over the last hour.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CompanyRow {
    pub company_id: i64,
    pub queued: i64,
    pub running: i64,
    pub last_hour: i64,
    pub failed_last_hour: i64,
    pub oldest_queued_age_secs: Option<f64>,
}

/// Companies with a job queued or running, or one created in the last
/// day; the most active first.
#[tracing::instrument(skip_all, err)]
pub async fn companies(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<CompanyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT company_id, \
                count(*) FILTER (WHERE status = 'queued') AS queued, \
                count(*) FILTER (WHERE status = 'running') AS running, \
                count(*) FILTER (WHERE created_at > now() - interval '1 hour') AS last_hour, \
                count(*) FILTER (WHERE status = 'failed' \
                                   AND finished_at > now() - interval '1 hour') AS failed_last_hour, \
                extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 \
                    AS oldest_queued_age_secs \
         FROM summary_jobs \
         WHERE status IN ('queued', 'running') OR created_at > now() - interval '24 hours' \
         GROUP BY company_id \
         ORDER BY count(*) FILTER (WHERE status IN ('queued', 'running')) DESC, \
                  count(*) FILTER (WHERE created_at > now() - interval '1 hour') DESC, company_id \
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A job's webhook events and, for each, its delivery to each endpoint
/// with the last attempt (no delivery: no endpoint was subscribed).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct JobWebhookRow {
    pub event_id: String,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub endpoint_id: Option<Uuid>,
    pub url: Option<String>,
    pub state: Option<String>,
    pub tries: Option<i32>,
    pub next_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn job_webhooks(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<JobWebhookRow>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT v.id AS event_id, v.type AS event_type, v.created_at AS event_time,
                  d.endpoint_id, e.url, d.state, d.tries,
                  CASE WHEN d.state = 'pending' THEN d.next_at END AS next_at,
                  a.http_status AS last_status, a.error AS last_error, a.attempted_at AS last_attempt_at
             FROM webhook_events v
             LEFT JOIN webhook_deliveries d ON d.event_id = v.id
             LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
             LEFT JOIN LATERAL (SELECT http_status, error, attempted_at FROM webhook_attempts x
                                 WHERE x.event_id = d.event_id AND x.endpoint_id = d.endpoint_id
                                 ORDER BY x.id DESC LIMIT 1) a ON true
            WHERE v.job_id = $1 ORDER BY v.created_at, e.url"#,
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// An endpoint as the console shows it: troubled ones first (disabled,
/// then failing longest), with its pending deliveries and last failures.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EndpointRow {
    pub id: Uuid,
    pub company_id: i64,
    pub url: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_delivery_status: Option<String>,
    pub last_delivery_time: Option<DateTime<Utc>>,
    pub pending: i64,
    /// `[{attempted_at, event_id, http_status, error}]`, newest first.
    pub recent_failures: sqlx::types::Json<serde_json::Value>,
}

#[tracing::instrument(skip_all, err)]
pub async fn webhook_endpoints(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT e.id, e.company_id, e.url, e.disabled, e.disabled_reason, e.failing_since,
                  e.last_delivery_status, e.last_delivery_time,
                  (SELECT count(*) FROM webhook_deliveries d
                    WHERE d.endpoint_id = e.id AND d.state = 'pending') AS pending,
                  coalesce((SELECT json_agg(f) FROM (
                      SELECT a.attempted_at, a.event_id, a.http_status, a.error FROM webhook_attempts a
                       WHERE a.endpoint_id = e.id
                         AND (a.http_status IS NULL OR a.http_status NOT BETWEEN 200 AND 299)
                       ORDER BY a.id DESC LIMIT 5) f), '[]'::json) AS recent_failures
             FROM webhook_endpoints e
            ORDER BY e.disabled DESC, e.failing_since NULLS LAST, e.created_at DESC LIMIT $1"#,
    )
    .bind(limit)
    .fetch_all(db)
    .await
}
