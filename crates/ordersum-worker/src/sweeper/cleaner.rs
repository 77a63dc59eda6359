//! Duty: keep Postgres from growing with the number of jobs and workers:
//! delete rows of jobs that ended more than
//! `ORDERSUM_JOB_ROW_RETENTION_DAYS` ago (each once its objects are gone)
//! and rows of workers gone a day. Tested by `tests/tests/orphans.rs` and
//! `redis_growth.rs`.

use ordersum_model::store;

use super::BATCH;
use crate::context::JobContext;

/// Deletes rows of long-ended jobs, each once its objects are gone (a
/// failed job's attempts may have left some): a row whose objects the
/// store would not delete stays for the next sweep.
pub async fn delete_old_rows(ctx: &JobContext) -> Result<u64, anyhow::Error> {
    let older_than = ctx.settings.job_row_retention();
    let jobs =
        store::maintenance::ended_jobs_past_row_retention(&ctx.pool, older_than, BATCH).await?;
    let mut cleared = Vec::with_capacity(jobs.len());
    let mut failure = None;
    for (id, company_id) in jobs {
        match ctx.store.delete_job_objects(company_id, id).await {
            Ok(0) => cleared.push(id),
            Ok(strays) => {
                tracing::info!(job_id = %id, strays, "objects of an ended job deleted");
                cleared.push(id);
            }
            Err(err) => {
                // The store is likely down for the rest too: next sweep.
                failure = Some(
                    anyhow::Error::new(err)
                        .context(format!("deleting the objects of ended job {id}")),
                );
                break;
            }
        }
    }
    let deleted =
        store::maintenance::delete_old_ended_jobs(&ctx.pool, &cleared, older_than).await?;
    match failure {
        Some(err) => Err(err),
        None => Ok(deleted),
    }
}

/// Deletes rows of workers that stopped (or stopped beating) a day ago.
pub async fn delete_gone_workers(ctx: &JobContext) -> Result<u64, anyhow::Error> {
    Ok(
        store::workers::delete_gone_workers(&ctx.pool, store::workers::WORKER_ROW_RETENTION)
            .await?,
    )
}
