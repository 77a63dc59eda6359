//! The worker registry (`workers`): each worker process registers at
//! start, beats while it runs and says when it stops; the console lists
//! them and the sweeper deletes rows of workers long gone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// How often a worker writes its heartbeat into `workers`.
pub const WORKER_BEAT_INTERVAL: Duration = Duration::from_secs(5);

/// A worker that has not beaten for this long is shown stale.
pub const WORKER_STALE_AFTER: Duration = Duration::from_secs(15);

/// Stopped or silent workers are deleted this long after their last beat.
pub const WORKER_ROW_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A worker process as it registered itself, with the jobs it runs now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub concurrency: i32,
    pub version: String,
    /// Where it serves `/metrics`; `None`: metrics off.
    pub metrics_addr: Option<String>,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub heartbeat_age_secs: f64,
    pub jobs: Vec<Uuid>,
}

/// Workers that have not stopped and beat within `shown_for`, oldest first.
#[tracing::instrument(skip_all, err)]
pub async fn workers(
    db: impl PgExecutor<'_>,
    shown_for: Duration,
) -> Result<Vec<WorkerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.id, w.host, w.pid, w.concurrency, w.version, w.metrics_addr, w.started_at, w.heartbeat_at, \
                extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_secs, \
                coalesce(array_agg(j.id ORDER BY j.started_at) FILTER (WHERE j.id IS NOT NULL), \
                         '{}') AS jobs \
         FROM workers w \
         LEFT JOIN summary_jobs j ON j.worker_id = w.id AND j.status = 'running' \
         WHERE w.stopped_at IS NULL AND w.heartbeat_at > now() - $1 \
         GROUP BY w.id ORDER BY w.started_at, w.id",
    )
    .bind(shown_for)
    .fetch_all(db)
    .await
}

/// Registers (or re-registers) a worker process as running.
#[tracing::instrument(skip_all, err, fields(worker = %id))]
pub async fn register_worker(
    db: impl PgExecutor<'_>,
    id: &str,
    host: &str,
    pid: u32,
    concurrency: usize,
    version: &str,
    metrics_addr: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workers (id, host, pid, concurrency, version, metrics_addr) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, metrics_addr = $6",
    )
    .bind(id)
    .bind(host)
    .bind(i32::try_from(pid).unwrap_or(i32::MAX))
    .bind(i32::try_from(concurrency).unwrap_or(i32::MAX))
    .bind(version)
    .bind(metrics_addr)
    .execute(db)
    .await?;
    Ok(())
}

/// A worker's heartbeat; `false` when its row is gone (then it registers again).
#[tracing::instrument(skip_all, err, fields(worker = %id))]
pub async fn worker_beat(db: impl PgExecutor<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE workers SET heartbeat_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A worker that exits cleanly.
#[tracing::instrument(skip_all, err, fields(worker = %id))]
pub async fn worker_stopped(db: impl PgExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workers SET stopped_at = now(), heartbeat_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes workers that stopped, or stopped beating, `older_than` ago.
#[tracing::instrument(skip_all, err)]
pub async fn delete_gone_workers(
    db: impl PgExecutor<'_>,
    older_than: Duration,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM workers WHERE heartbeat_at < now() - $1")
        .bind(older_than)
        .execute(db)
        .await?;
    Ok(result.rows_affected())
}
