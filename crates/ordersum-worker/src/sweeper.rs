//! The sweeper: every worker runs it periodically, one at a time across
//! the fleet (a Postgres advisory lock). It takes back running jobs whose
//! worker died, pushes again queued jobs Redis no longer holds (restarted
//! empty, FLUSHALL) or has held too long, expires summaries past retention
//! (every attempt's object deleted, row kept) and removes temp directories
//! of dead attempts.
//! Deliveries are interchangeable (each runs the queued job next in line),
//! so it also checks that Redis holds at least one per queued job and
//! pushes the missing ones at once.
//! It also keeps Redis and Postgres from growing with the number of jobs:
//! it removes apalis-redis' records of finished tasks and the queue markers
//! of jobs no longer queued, and deletes rows of jobs that ended more than
//! `ORDERSUM_JOB_ROW_RETENTION_DAYS` ago, each after the objects its
//! attempts left.
//! Every tick, every worker (sweeper or not) reads jobs by status into its
//! metrics.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ordersum_model::store;
use uuid::Uuid;

use crate::context::JobContext;
use crate::export::TEMP_PREFIX;

/// Advisory lock key of the sweeper ("ordrsump").
pub const SWEEP_LOCK: i64 = 0x6f72_6472_7375_6d70;
/// Most rows one sweep handles per kind.
const BATCH: i64 = 500;
/// A queued job younger than this is left to the push that created it.
const QUEUED_GRACE: Duration = Duration::from_secs(5);
/// A marker whose job has no row is kept this long: the API pushes inside
/// the transaction that inserts the row, so the row may not be visible yet.
const MARKER_WITHOUT_ROW_GRACE_SECS: u64 = 60;
/// How long after counting fewer deliveries than queued jobs the sweeper
/// counts again before pushing (see `restore_deliveries`).
const RECOUNT_AFTER: Duration = Duration::from_millis(250);
/// Most batches of finished apalis tasks one sweep removes.
const VACUUM_ROUNDS: usize = 20;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub requeued_stale: usize,
    pub repushed: usize,
    /// Deliveries pushed because queued jobs outnumbered those Redis held.
    pub deliveries_restored: usize,
    pub expired: usize,
    pub temp_dirs_removed: usize,
    /// apalis-redis records of finished tasks removed.
    pub tasks_vacuumed: usize,
    /// Markers of jobs no longer queued removed.
    pub markers_removed: usize,
    /// Rows of long-ended jobs deleted.
    pub rows_deleted: u64,
    /// Rows of workers gone a day ago deleted.
    pub workers_deleted: u64,
}

/// Sweeps every `sweep_interval` until the task is dropped.
pub async fn run(ctx: Arc<JobContext>) {
    let mut tick = tokio::time::interval(Duration::from_secs(ctx.settings.sweep_interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep_once(&ctx).await {
            Ok(Some(sweep)) if sweep != Sweep::default() => tracing::info!(?sweep, "swept"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "sweep failed; next time"),
        }
    }
}

/// One sweep, if no other worker is sweeping; `None` when one is.
pub async fn sweep_once(ctx: &JobContext) -> Result<Option<Sweep>, anyhow::Error> {
    // Every worker, every tick, sweeper or not: dashboards and alerts take the
    // max of these gauges over the workers, so a value left from a worker's
    // last turn as the sweeper would stay stale there.
    if let Err(err) = refresh_fleet_gauges(ctx).await {
        tracing::warn!(error = %err, "reading jobs by status failed; gauges not updated");
    }
    let mut lock = ctx.pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !locked {
        return Ok(None);
    }
    let result = sweep_locked(ctx).await;
    // The lock also ends with the session if this fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SWEEP_LOCK)
        .execute(&mut *lock)
        .await;
    result.map(Some)
}

/// Jobs by status, queue depth and the oldest heartbeat, into this worker's
/// gauges.
async fn refresh_fleet_gauges(ctx: &JobContext) -> Result<(), anyhow::Error> {
    let by_status = store::maintenance::count_jobs_by_status(&ctx.pool).await?;
    let heartbeat_age = store::maintenance::oldest_heartbeat_age_secs(&ctx.pool).await?;
    crate::metrics::jobs_swept(&by_status, heartbeat_age);
    Ok(())
}

async fn sweep_locked(ctx: &JobContext) -> Result<Sweep, anyhow::Error> {
    let mut sweep = Sweep::default();
    let stale =
        store::maintenance::requeue_stale_jobs(&ctx.pool, ctx.settings.stale_after()).await?;
    for id in &stale {
        tracing::warn!(job_id = %id, "worker stopped beating: job taken back");
        ctx.queue.push(*id).await?;
    }
    sweep.requeued_stale = stale.len();
    sweep.repushed = repush_lost(ctx).await?;
    sweep.deliveries_restored = restore_deliveries(ctx).await?;
    sweep.expired = expire(ctx).await?;
    sweep.temp_dirs_removed = remove_dead_temp_dirs(ctx).await?;
    sweep.tasks_vacuumed = vacuum_finished_tasks(ctx).await?;
    sweep.markers_removed = forget_markers_of_unqueued_jobs(ctx).await?;
    sweep.rows_deleted = delete_old_rows(ctx).await?;
    sweep.workers_deleted =
        store::workers::delete_gone_workers(&ctx.pool, store::workers::WORKER_ROW_RETENTION)
            .await?;
    Ok(sweep)
}

/// Removes apalis-redis' records of tasks whose handler has finished.
async fn vacuum_finished_tasks(ctx: &JobContext) -> Result<usize, anyhow::Error> {
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
async fn forget_markers_of_unqueued_jobs(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let batch = BATCH as usize;
    let (mut offset, mut removed) = (0, 0);
    loop {
        let marked = ctx.queue.marked_jobs(offset, batch).await?;
        let ids: Vec<Uuid> = marked.iter().map(|(id, _)| *id).collect();
        let queued: std::collections::HashMap<Uuid, bool> =
            store::maintenance::queued_flags(&ctx.pool, &ids)
                .await?
                .into_iter()
                .collect();
        let gone: Vec<Uuid> = marked
            .iter()
            .filter(|(id, pushed_at)| match queued.get(id) {
                Some(queued) => !queued,
                None => now.saturating_sub(*pushed_at) > MARKER_WITHOUT_ROW_GRACE_SECS,
            })
            .map(|(id, _)| *id)
            .collect();
        ctx.queue.forget_markers(&gone).await?;
        removed += gone.len();
        offset += marked.len() - gone.len();
        if marked.len() < batch {
            return Ok(removed);
        }
    }
}

/// Pushes queued jobs whose push Redis lost, or that have waited longer
/// than `repush_after` (a push is idempotent: only one claim wins).
async fn repush_lost(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut pushed = 0;
    for id in store::maintenance::queued_jobs_due(&ctx.pool, QUEUED_GRACE, BATCH).await? {
        let lost = match ctx.queue.pushed_at(id).await? {
            None => true,
            Some(at) => now.saturating_sub(at) > ctx.settings.repush_after_secs,
        };
        if lost {
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
async fn restore_deliveries(ctx: &JobContext) -> Result<usize, anyhow::Error> {
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

/// Queued jobs minus the deliveries Redis holds.
async fn missing_deliveries(ctx: &JobContext) -> Result<i64, anyhow::Error> {
    let held = ctx.queue.deliveries_held().await?;
    let queued = store::maintenance::count_queued(&ctx.pool).await?;
    Ok(queued.saturating_sub(i64::try_from(held).unwrap_or(i64::MAX)))
}

/// Deletes the objects of succeeded jobs past retention, every attempt's
/// (not only the one the row records), then marks them expired.
async fn expire(ctx: &JobContext) -> Result<usize, anyhow::Error> {
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

/// Deletes rows of jobs that ended more than `ORDERSUM_JOB_ROW_RETENTION_DAYS`
/// ago, each once its objects are gone (a failed job's attempts may have
/// left some): a row whose objects the store would not delete stays for
/// the next sweep.
async fn delete_old_rows(ctx: &JobContext) -> Result<u64, anyhow::Error> {
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

/// Temp directories of attempts no worker is running any more.
async fn remove_dead_temp_dirs(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let dir = ctx.settings.temp_dir();
    let mut removed = 0;
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return Ok(0);
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(job_id) = temp_dir_job(&name) else {
            continue;
        };
        if !store::maintenance::job_is_live(&ctx.pool, job_id, ctx.settings.stale_after()).await? {
            remove(&entry.path()).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The job of a temp directory name `ordersum-job-<uuid>-<random>`.
fn temp_dir_job(name: &str) -> Option<Uuid> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    Uuid::parse_str(rest.get(..36)?).ok()
}

async fn remove(path: &Path) {
    if let Err(err) = tokio::fs::remove_dir_all(path).await {
        tracing::warn!(error = %err, path = %path.display(), "could not remove a stray temp dir");
    } else {
        tracing::info!(path = %path.display(), "stray temp dir removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_name_their_job() {
        let id = Uuid::new_v4();
        assert_eq!(temp_dir_job(&format!("ordersum-job-{id}-x8Yz")), Some(id));
        assert_eq!(temp_dir_job("ordersum-job-nope"), None);
        assert_eq!(temp_dir_job(".tmpXYZ"), None);
    }
}
