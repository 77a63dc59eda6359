//! Duty: expire summaries past `ORDERSUM_RETENTION_HOURS`: every attempt's
//! object deleted (not only the one the row records), then the job marked
//! expired (the row stays, for the customer's `GetOrderSummaryJob`).
//! Tested by `tests/tests/orphans.rs`.

use anyhow::Context;
use ordersum_model::store;

use super::BATCH;
use crate::context::JobContext;

/// Jobs expired.
pub async fn run(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let mut expired = 0;
    for (id, company_id, key) in store::maintenance::jobs_past_retention(&ctx.pool, BATCH).await? {
        // The recorded key first: it is outside the job's prefix if the
        // store's prefix changed since the job ran.
        if let Some(key) = key {
            ctx.store
                .delete(&key)
                .await
                .with_context(|| format!("deleting the summary of job {id}"))?;
        }
        let strays = ctx
            .store
            .delete_job_objects(company_id, id)
            .await
            .with_context(|| format!("deleting the objects of job {id}"))?;
        if store::maintenance::expire_job(&ctx.pool, id).await? {
            tracing::info!(job_id = %id, strays, "summary expired; objects deleted");
            expired += 1;
        }
    }
    Ok(expired)
}
