//! Duty: keep Redis in step with Postgres, where the row is the truth and
//! Redis only delivers. Reads Postgres and lets
//! `ordersum_queue::reconcile` decide: pushes again queued jobs whose push
//! Redis lost or has held too long, pushes the deliveries missing when
//! queued jobs outnumber them, and forgets markers of jobs no longer queued
//! and apalis-redis' records of finished tasks. Tested by
//! `tests/tests/lifecycle.rs`, `resilience.rs` (Redis flushed) and
//! `redis_growth.rs`.

use std::collections::HashMap;
use std::time::Duration;

use ordersum_model::store;
use ordersum_queue::reconcile::{lost, shortfall, stale_markers, unix_now};
use uuid::Uuid;

use super::BATCH;
use crate::context::JobContext;

/// A queued job younger than this is left to the push that created it.
const QUEUED_GRACE: Duration = Duration::from_secs(5);
/// How long after counting fewer deliveries than queued jobs the sweeper
/// counts again before pushing (see `restore_deliveries`).
const RECOUNT_AFTER: Duration = Duration::from_millis(250);
/// Most batches of finished apalis tasks one sweep removes.
const VACUUM_ROUNDS: usize = 20;

/// Pushes queued jobs whose push Redis lost, or that have waited longer
/// than `ORDERSUM_REPUSH_AFTER_SECONDS`.
pub async fn repush_lost(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let now = unix_now();
    let mut pushed = 0;
    for id in store::maintenance::queued_jobs_due(&ctx.pool, QUEUED_GRACE, BATCH).await? {
        let pushed_at = ctx.queue.pushed_at(id).await?;
        if lost(pushed_at, now, ctx.settings.repush_after_secs) {
            tracing::info!(job_id = %id, "queued job not held by Redis: pushed again");
            ctx.queue.push(id).await?;
            pushed += 1;
        }
    }
    Ok(pushed)
}

/// Pushes a delivery for each queued job beyond the deliveries Redis holds.
/// A delivery spent without running a job (its job taken by another
/// delivery while no other was free to take) would otherwise leave a job
/// waiting until `repush_after`. Redis is counted before Postgres: a job
/// claimed between the two counts lowers both, and one pushed between them
/// was staged before its row committed. A delivery taken and acknowledged
/// whose worker has not committed its claim yet is counted by neither side
/// as gone: that lasts milliseconds, so a shortfall is counted again
/// [`RECOUNT_AFTER`] later and only what both counts miss is pushed.
pub async fn restore_deliveries(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let first = missing_deliveries(ctx).await?;
    if first <= 0 {
        return Ok(0);
    }
    tokio::time::sleep(RECOUNT_AFTER).await;
    let missing = first.min(missing_deliveries(ctx).await?);
    if missing <= 0 {
        return Ok(0);
    }
    let ids =
        store::maintenance::queued_jobs_due(&ctx.pool, Duration::ZERO, missing.min(BATCH)).await?;
    for id in &ids {
        ctx.queue.push(*id).await?;
    }
    if !ids.is_empty() {
        tracing::warn!(
            missing,
            pushed = ids.len(),
            "fewer deliveries in Redis than queued jobs: pushed the missing ones"
        );
    }
    Ok(ids.len())
}

async fn missing_deliveries(ctx: &JobContext) -> Result<i64, anyhow::Error> {
    let held = ctx.queue.deliveries_held().await?;
    let queued = store::maintenance::count_queued(&ctx.pool).await?;
    Ok(shortfall(queued, held))
}

/// Removes apalis-redis' records of tasks whose handler has finished.
pub async fn vacuum_finished_tasks(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let batch = BATCH as usize;
    let mut removed = 0;
    for _ in 0..VACUUM_ROUNDS {
        let round = ctx.queue.vacuum(batch).await?;
        removed += round;
        if round < batch {
            break;
        }
    }
    Ok(removed)
}

/// Removes the markers of jobs that are no longer queued (claimed, ended,
/// cancelled while waiting) or whose row is long gone; markers of queued
/// jobs stay, for `repush_lost`.
pub async fn forget_markers_of_unqueued_jobs(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let now = unix_now();
    let batch = BATCH as usize;
    let (mut offset, mut removed) = (0, 0);
    loop {
        let marked = ctx.queue.marked_jobs(offset, batch).await?;
        let ids: Vec<Uuid> = marked.iter().map(|(id, _)| *id).collect();
        let queued: HashMap<Uuid, bool> = store::maintenance::queued_flags(&ctx.pool, &ids)
            .await?
            .into_iter()
            .collect();
        let gone = stale_markers(&marked, &queued, now);
        ctx.queue.forget_markers(&gone).await?;
        removed += gone.len();
        offset += marked.len() - gone.len();
        if marked.len() < batch {
            return Ok(removed);
        }
    }
}
