//! The customer's jobs: submit (under the company's lock, reusing an equal
//! live or fresh job), read, list, count and cancel. Every query here is
//! scoped to the calling company: another company's job does not exist.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{JOB_COLUMNS, job_query};
use crate::job::Job;
use crate::request::SummaryRequest;

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
