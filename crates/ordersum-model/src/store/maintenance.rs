//! The sweeper's queries over every company's jobs: take back attempts
//! whose heartbeat stopped, find queued jobs Redis should deliver again
//! (reconciliation), expire summaries past retention, delete old rows of
//! ended jobs, and the fleet gauges.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::job::JobStatus;

/// Running jobs whose worker stopped beating for `stale`, put back in
/// the queue (their worker died or lost its database).
#[tracing::instrument(skip_all, err)]
pub async fn requeue_stale_jobs(
    db: impl PgExecutor<'_>,
    stale: Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        r#"UPDATE summary_jobs SET status = 'queued', worker_id = NULL, heartbeat_at = NULL, retry_at = NULL
           WHERE status = 'running' AND heartbeat_at < now() - $1
           RETURNING id"#,
    )
    .bind(stale)
    .fetch_all(db)
    .await
}

/// Queued jobs due to run (retry time passed), oldest first.
#[tracing::instrument(skip_all, err)]
pub async fn queued_jobs_due(
    db: impl PgExecutor<'_>,
    older_than: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        r#"SELECT id FROM summary_jobs
           WHERE status = 'queued' AND (retry_at IS NULL OR retry_at <= now())
             AND created_at < now() - $1
           ORDER BY created_at LIMIT $2"#,
    )
    .bind(older_than)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many jobs are queued, due or waiting for their retry time.
#[tracing::instrument(skip_all, err)]
pub async fn count_queued(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(r#"SELECT count(*) FROM summary_jobs WHERE status = 'queued'"#)
        .fetch_one(db)
        .await
}

/// Succeeded jobs past retention: (id, company, recorded object key).
#[tracing::instrument(skip_all, err)]
pub async fn jobs_past_retention(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<(Uuid, i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT id, company_id, file_key FROM summary_jobs
           WHERE status = 'succeeded' AND expires_at <= now() ORDER BY expires_at LIMIT $1"#,
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// `succeeded → expired` once its object is gone.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn expire_job(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE summary_jobs SET status = 'expired' WHERE id = $1 AND status = 'succeeded'"#,
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether a worker is working on the job now (running, heartbeat fresh).
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn job_is_live(
    db: impl PgExecutor<'_>,
    id: Uuid,
    stale: Duration,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM summary_jobs WHERE id = $1 AND status = 'running'
                          AND heartbeat_at >= now() - $2)"#,
    )
    .bind(id)
    .bind(stale)
    .fetch_one(db)
    .await
}

/// Up to `limit` ended jobs (failed, cancelled, expired) that finished
/// more than `older_than` ago, oldest first: (id, company), for the
/// sweeper to delete their objects before their rows.
#[tracing::instrument(skip_all, err)]
pub async fn ended_jobs_past_row_retention(
    db: impl PgExecutor<'_>,
    older_than: Duration,
    limit: i64,
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT id, company_id FROM summary_jobs
           WHERE status IN ('failed', 'cancelled', 'expired')
             AND finished_at < now() - $1
           ORDER BY finished_at LIMIT $2"#,
    )
    .bind(older_than)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes the rows of `ids` that are still of ended jobs finished more
/// than `older_than` ago; answers how many.
#[tracing::instrument(skip_all, err)]
pub async fn delete_old_ended_jobs(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    older_than: Duration,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        r#"DELETE FROM summary_jobs
           WHERE id = ANY($1) AND status IN ('failed', 'cancelled', 'expired')
             AND finished_at < now() - $2"#,
    )
    .bind(ids)
    .bind(older_than)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// For each of `ids` that has a row: whether the job is queued. Ids
/// without a row (not yet committed, or deleted) are left out.
#[tracing::instrument(skip_all, err)]
pub async fn queued_flags(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, bool)>, sqlx::Error> {
    sqlx::query_as(r#"SELECT id, status = 'queued' FROM summary_jobs WHERE id = ANY($1)"#)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Jobs of every company by status: (status, count); statuses without a
/// row are left out. The worker's metrics, once per sweep.
#[tracing::instrument(skip_all, err)]
pub async fn count_jobs_by_status(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(JobStatus, i64)>, sqlx::Error> {
    sqlx::query_as(r#"SELECT status, count(*) FROM summary_jobs GROUP BY status"#)
        .fetch_all(db)
        .await
}

/// Seconds since the oldest heartbeat among running jobs; `None` when no
/// job is running.
#[tracing::instrument(skip_all, err)]
pub async fn oldest_heartbeat_age_secs(
    db: impl PgExecutor<'_>,
) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar(
        r#"SELECT extract(epoch FROM now() - min(heartbeat_at))::float8
           FROM summary_jobs WHERE status = 'running'"#,
    )
    .fetch_one(db)
    .await
}
