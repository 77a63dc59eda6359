//! Queries on `api_keys` and `summary_jobs`, one per function. Every job
//! query is scoped to a company: another company's job does not exist.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::job::{Job, JobStatus};
use crate::request::SummaryRequest;

/// An API key pair and the company it acts for.
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub public_key: String,
    pub private_key: String,
    pub company_id: i64,
    pub disabled: bool,
}

/// Never prints the private key.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .field("company_id", &self.company_id)
            .field("disabled", &self.disabled)
            .finish()
    }
}

const JOB_COLUMNS: &str = "id, company_id, request, request_hash, status, attempts, paid_rows, \
     unpaid_rows, file_key, file_name, file_size, error_message, worker_id, heartbeat_at, \
     created_at, started_at, finished_at, expires_at";

fn job_query(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM summary_jobs {tail}"))
}

#[tracing::instrument(skip_all, err)]
pub async fn find_api_key(
    db: impl PgExecutor<'_>,
    public_key: &str,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT public_key, private_key, company_id, disabled FROM api_keys WHERE public_key = $1"#,
    )
    .bind(public_key)
    .fetch_optional(db)
    .await
}

#[tracing::instrument(skip_all, err)]
pub async fn insert_api_key(
    db: impl PgExecutor<'_>,
    public_key: &str,
    private_key: &str,
    company_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(r#"INSERT INTO api_keys (public_key, private_key, company_id) VALUES ($1, $2, $3)"#)
        .bind(public_key)
        .bind(private_key)
        .bind(company_id)
        .execute(db)
        .await
        .map(drop)
}

/// Serialises enqueues of one company until the transaction ends, so that
/// dedup and the active-job cap see every concurrent request.
#[tracing::instrument(skip_all, err)]
pub async fn lock_company(conn: &mut PgConnection, company_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(r#"SELECT pg_advisory_xact_lock(hashtextextended('ordersum.company', $1))"#)
        .bind(company_id)
        .execute(conn)
        .await
        .map(drop)
}

/// A job the same request can be answered with: queued or running, or
/// succeeded no longer than `fresh` ago.
#[tracing::instrument(skip_all, err)]
pub async fn find_reusable_job(
    conn: &mut PgConnection,
    company_id: i64,
    request_hash: &str,
    fresh: Duration,
) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(job_query(
        r#"WHERE company_id = $1 AND request_hash = $2
             AND (status IN ('queued', 'running')
                  OR (status = 'succeeded' AND finished_at > now() - $3))
           ORDER BY created_at DESC LIMIT 1"#,
    ))
    .bind(company_id)
    .bind(request_hash)
    .bind(fresh)
    .fetch_optional(conn)
    .await
}

/// Inserts a queued job for `request`, unless the company already has `cap`
/// jobs queued or running (then `None`). Its place in line (`fair_at`) is
/// now plus `fair_step` for each of those jobs.
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn insert_job(
    conn: &mut PgConnection,
    id: Uuid,
    company_id: i64,
    request: &SummaryRequest,
    cap: i64,
    fair_step: Duration,
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "WITH active AS (SELECT count(*) AS jobs FROM summary_jobs \
                         WHERE company_id = $2 AND status IN ('queued', 'running')) \
         INSERT INTO summary_jobs (id, company_id, request, request_hash, fair_at) \
         SELECT $1, $2, $3, $4, now() + $6 * active.jobs FROM active WHERE active.jobs < $5 \
         RETURNING {JOB_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(id)
        .bind(company_id)
        .bind(sqlx::types::Json(request))
        .bind(request.hash())
        .bind(cap)
        .bind(fair_step)
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn get_job(
    db: impl PgExecutor<'_>,
    company_id: i64,
    id: Uuid,
) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(job_query("WHERE company_id = $1 AND id = $2"))
        .bind(company_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One page of a company's jobs, newest first, each list of a job's
/// `request` cut in Postgres to its first `list_items + 1` items (one more
/// than shown, so the caller can tell a cut list): a page never brings the
/// whole requests (up to nine lists of 1 000 items each) into memory.
#[tracing::instrument(skip_all, err)]
pub async fn list_jobs(
    db: impl PgExecutor<'_>,
    company_id: i64,
    offset: i64,
    limit: i64,
    list_items: i64,
) -> Result<Vec<Job>, sqlx::Error> {
    let cut_request = r#"(SELECT coalesce(jsonb_object_agg(k, CASE WHEN jsonb_typeof(v) = 'array'
             THEN jsonb_path_query_array(v, '$[0 to $n]', jsonb_build_object('n', $4::bigint))
             ELSE v END), '{}') FROM jsonb_each(request) AS e(k, v)) AS request"#;
    let columns = JOB_COLUMNS.replacen("request,", &format!("{cut_request},"), 1);
    let query = sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM summary_jobs \
         WHERE company_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT $3"
    ));
    sqlx::query_as(query)
        .bind(company_id)
        .bind(offset)
        .bind(limit)
        .bind(list_items)
        .fetch_all(db)
        .await
}

#[tracing::instrument(skip_all, err)]
pub async fn count_jobs(db: impl PgExecutor<'_>, company_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(r#"SELECT count(*) FROM summary_jobs WHERE company_id = $1"#)
        .bind(company_id)
        .fetch_one(db)
        .await
}

/// Moves a queued or running job to `cancelled`; `None` when it was in no
/// such state (or does not exist for this company).
#[tracing::instrument(skip_all, err, fields(job_id = %id))]
pub async fn cancel_job(
    db: impl PgExecutor<'_>,
    company_id: i64,
    id: Uuid,
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE summary_jobs SET status = 'cancelled', finished_at = now() \
         WHERE company_id = $1 AND id = $2 AND status IN ('queued', 'running') \
         RETURNING {JOB_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(company_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

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
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE summary_jobs SET status = 'running', worker_id = $2, attempts = attempts + 1, \
         heartbeat_at = now(), started_at = now(), paid_rows = 0, unpaid_rows = 0, progress_at = NULL, \
         error_message = NULL, retry_at = NULL \
         WHERE id = $1 AND (status = 'queued' OR (status = 'running' \
               AND heartbeat_at < now() - $3)) \
         RETURNING {JOB_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(id)
        .bind(worker_id)
        .bind(stale)
        .fetch_optional(db)
        .await
}

/// Claims the queued job next in line for `worker_id`: due (its retry time
/// passed), earliest `fair_at` first, skipping rows another worker is
/// claiming at this moment. `None` when no queued job is due.
#[tracing::instrument(skip_all, err)]
pub async fn claim_next(
    db: impl PgExecutor<'_>,
    worker_id: &str,
) -> Result<Option<Job>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE summary_jobs SET status = 'running', worker_id = $1, attempts = attempts + 1, \
         heartbeat_at = now(), started_at = now(), paid_rows = 0, unpaid_rows = 0, progress_at = NULL, \
         error_message = NULL, retry_at = NULL \
         WHERE id = (SELECT id FROM summary_jobs \
                     WHERE status = 'queued' AND (retry_at IS NULL OR retry_at <= now()) \
                     ORDER BY fair_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
           AND status = 'queued' \
         RETURNING {JOB_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(worker_id)
        .fetch_optional(db)
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
