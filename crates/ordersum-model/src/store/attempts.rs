//! A worker's attempt at a job: claim it (the one Redis delivered, or the
//! next due one), write progress and the heartbeat, and end it (succeeded,
//! failed, or handed back to the queue). Not scoped to a company: the
//! worker serves every company; each write is fenced by the attempt
//! (worker id and attempt number), so a taken-back attempt changes nothing.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::{JOB_COLUMNS, job_query};
use crate::job::Job;

/// Who runs a job now: a worker, and which attempt of the job. A worker
/// may be handed the same job again (a redelivery after it was taken back),
/// so the worker alone does not tell an old attempt from the current one;
/// every update of a running job names both.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub worker_id: &'a str,
    /// `attempts` as the claim left it.
    pub attempt: i32,
}

/// Takes a job for `worker_id`: a queued one, or a running one whose
/// worker stopped beating `stale` ago (it died). `None` otherwise
/// (taken, cancelled or finished), so two deliveries never both run it.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn claim_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    worker_id: &str,
    stale: Duration,
    orders: OrdersSeen,
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE summary_jobs SET status = 'running', worker_id = $2, attempts = attempts + 1, {} \
         WHERE id = $1 AND ((status = 'queued' AND ($4::timestamptz IS NULL OR created_at <= $4)) \
               OR (status = 'running' AND heartbeat_at < now() - $3)) \
         RETURNING {JOB_COLUMNS}",
        claimed("$5")
    ));
    sqlx::query_as(query)
        .bind(id)
        .bind(worker_id)
        .bind(stale)
        .bind(orders.visible_until)
        .bind(orders.replayed_at)
        .fetch_optional(db)
        .await
}

/// What a claim sets besides the owner; `replayed_at` names the parameter
/// holding the orders replica's replay position.
fn claimed(replayed_at: &str) -> String {
    format!(
        "heartbeat_at = now(), started_at = now(), paid_rows = 0, unpaid_rows = 0, \
         progress_at = NULL, error_message = NULL, retry_at = NULL, wait_reason = NULL, \
         orders_as_of = {replayed_at}::timestamptz"
    )
}

/// How far the database the orders are read from has got: jobs accepted
/// after `visible_until` are not claimed yet (`None`: any job).
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersSeen {
    pub visible_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded on the claimed row (`orders_as_of`).
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Claims the queued job next in line for `worker_id`: due (its retry time
/// passed), earliest `fair_at` first, skipping rows another worker is
/// claiming at this moment. `None` when no queued job is due.
#[tracing::instrument(skip_all, err)]
pub async fn claim_next(
    db: impl PgExecutor<'_>,
    worker_id: &str,
    orders: OrdersSeen,
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE summary_jobs SET status = 'running', worker_id = $1, attempts = attempts + 1, {} \
         WHERE id = (SELECT id FROM summary_jobs \
                     WHERE status = 'queued' AND (retry_at IS NULL OR retry_at <= now()) \
                       AND ($2::timestamptz IS NULL OR created_at <= $2) \
                     ORDER BY fair_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
           AND status = 'queued' \
         RETURNING {JOB_COLUMNS}",
        claimed("$3")
    ));
    sqlx::query_as(query)
        .bind(worker_id)
        .bind(orders.visible_until)
        .bind(orders.replayed_at)
        .fetch_optional(db)
        .await
}

/// When the oldest queued job the orders replica cannot serve yet was
/// accepted (`None`: none waits).
#[tracing::instrument(skip_all, err)]
pub async fn oldest_waiting(
    db: impl PgExecutor<'_>,
    orders: OrdersSeen,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let Some(until) = orders.visible_until else {
        return Ok(None);
    };
    sqlx::query_scalar(
        "SELECT min(created_at) FROM summary_jobs WHERE status = 'queued' AND created_at > $1",
    )
    .bind(until)
    .fetch_one(db)
    .await
}

/// Queued jobs accepted after `orders.visible_until`, which wait for the
/// orders replica: each gets its reason; answers the oldest one's
/// acceptance (`None`: none waits).
#[tracing::instrument(skip_all, err)]
pub async fn mark_waiting(
    db: impl PgExecutor<'_>,
    orders: OrdersSeen,
    max_lag_secs: u64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let Some(until) = orders.visible_until else {
        return Ok(None);
    };
    sqlx::query_scalar(
        r#"WITH waiting AS (
             UPDATE summary_jobs SET wait_reason =
                 'Waiting for the orders replica: it has replayed '
                 || coalesce('up to ' || to_char($2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                             || ', ' || ceil(extract(epoch FROM created_at - $2))::bigint
                             || ' s before this job was accepted',
                             'no transaction since it started')
                 || ' (at most ' || $3 || ' s allowed); the job starts once it catches up.'
              WHERE status = 'queued' AND created_at > $1
             RETURNING created_at)
           SELECT min(created_at) FROM waiting"#,
    )
    .bind(until)
    .bind(orders.replayed_at)
    .bind(max_lag_secs as i64)
    .fetch_one(db)
    .await
}

/// Any company's job by id (the worker's view).
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn find_job(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(job_query("WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Records progress and the heartbeat of a running job. `false` when the job
/// is no longer running for this worker (cancelled, or taken back).
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn record_progress(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Attempt<'_>,
    paid_rows: i64,
    unpaid_rows: i64,
    reached: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE summary_jobs SET paid_rows = $3, unpaid_rows = $4, heartbeat_at = now(),
               progress_at = coalesce($6, progress_at)
           WHERE id = $1 AND worker_id = $2 AND attempts = $5 AND status = 'running'"#,
    )
    .bind(id)
    .bind(owner.worker_id)
    .bind(paid_rows)
    .bind(unpaid_rows)
    .bind(owner.attempt)
    .bind(reached)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The file of a finished job.
#[derive(Debug, Clone)]
pub struct FinishedFile {
    pub key: String,
    pub name: String,
    pub size: i64,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
}

/// `running → succeeded`, only for the worker that runs it. `false` when
/// the job was cancelled or taken back meanwhile.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn finish_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Attempt<'_>,
    file: &FinishedFile,
    retention: Duration,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE summary_jobs SET status = 'succeeded', finished_at = now(), heartbeat_at = now(),
               file_key = $3, file_name = $4, file_size = $5, paid_rows = $6, unpaid_rows = $7,
               expires_at = now() + $8
           WHERE id = $1 AND worker_id = $2 AND attempts = $9 AND status = 'running'"#,
    )
    .bind(id)
    .bind(owner.worker_id)
    .bind(&file.key)
    .bind(&file.name)
    .bind(file.size)
    .bind(file.paid_rows)
    .bind(file.unpaid_rows)
    .bind(retention)
    .bind(owner.attempt)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// `running → failed` with a message for the customer.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn fail_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Attempt<'_>,
    message: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE summary_jobs SET status = 'failed', finished_at = now(), error_message = $3
           WHERE id = $1 AND worker_id = $2 AND attempts = $4 AND status = 'running'"#,
    )
    .bind(id)
    .bind(owner.worker_id)
    .bind(message)
    .bind(owner.attempt)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Display names of the enum columns: (kind, value, name).
#[tracing::instrument(skip_all, err)]
pub async fn enum_labels(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(String, i32, String)>, sqlx::Error> {
    sqlx::query_as(r#"SELECT kind, value, name FROM enum_labels"#)
        .fetch_all(db)
        .await
}

/// `running → queued` for the worker that runs it, to run again after
/// `delay` (retry) or at once (handed back at shutdown).
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn requeue_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Attempt<'_>,
    delay: Duration,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE summary_jobs SET status = 'queued', worker_id = NULL, heartbeat_at = NULL,
               retry_at = now() + $3
           WHERE id = $1 AND worker_id = $2 AND attempts = $4 AND status = 'running'"#,
    )
    .bind(id)
    .bind(owner.worker_id)
    .bind(delay)
    .bind(owner.attempt)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
