//! Duty: take back running jobs whose worker stopped beating (it died, or
//! lost its database) for `ORDERSUM_STALE_AFTER_SECONDS`, and push them so
//! another worker resumes them. Tested by `tests/tests/lifecycle.rs` and the
//! fault tests (`tests/tests/faults.rs`: a worker killed mid-job).

use ordersum_model::store;

use crate::context::JobContext;

/// Jobs taken back.
pub async fn run(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let stale =
        store::maintenance::requeue_stale_jobs(&ctx.pool, ctx.settings.stale_after()).await?;
    for id in &stale {
        tracing::warn!(job_id = %id, "worker stopped beating: job taken back");
        ctx.queue.push(*id).await?;
    }
    Ok(stale.len())
}
