//! The sweeper: every worker runs it every `ORDERSUM_SWEEP_INTERVAL_SECONDS`,
//! one at a time across the fleet (a Postgres advisory lock). A sweep is a
//! list of duties ([`DUTIES`]), each in a module of its own:
//!
//! - [`rescuer`]: take back running jobs whose worker stopped beating;
//! - [`reconcile`]: keep Redis in step with Postgres (push again what Redis
//!   lost or holds too long, restore missing deliveries, forget markers of
//!   jobs no longer queued, vacuum apalis' records of finished tasks);
//! - [`expiry`]: expire summaries past retention, every attempt's object
//!   deleted, the row kept;
//! - [`temp_dirs`]: remove temp directories of dead attempts;
//! - [`cleaner`]: delete rows of long-ended jobs (after their objects) and
//!   of workers long gone.
//!
//! Every tick, every worker (sweeper or not) also reads jobs by status into
//! its metrics ([`refresh_fleet_gauges`]).

pub mod cleaner;
pub mod expiry;
pub mod reconcile;
pub mod rescuer;
pub mod temp_dirs;

use std::sync::Arc;
use std::time::Duration;

use ordersum_model::store;

use crate::context::JobContext;

/// Advisory lock key of the sweeper ("ordrsump").
pub const SWEEP_LOCK: i64 = 0x6f72_6472_7375_6d70;
/// Most rows one sweep handles per kind.
const BATCH: i64 = 500;

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

/// One maintenance duty of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    RescueStale,
    RepushLost,
    RestoreDeliveries,
    Expire,
    RemoveTempDirs,
    VacuumTasks,
    ForgetMarkers,
    DeleteOldRows,
    DeleteGoneWorkers,
}

/// The duties of a sweep, in the order they run: taking back and pushing
/// first, so a job waits the least; deleting last.
pub const DUTIES: &[Duty] = &[
    Duty::RescueStale,
    Duty::RepushLost,
    Duty::RestoreDeliveries,
    Duty::Expire,
    Duty::RemoveTempDirs,
    Duty::VacuumTasks,
    Duty::ForgetMarkers,
    Duty::DeleteOldRows,
    Duty::DeleteGoneWorkers,
];

impl Duty {
    /// Does the duty, counting what it did into `sweep`.
    async fn run(self, ctx: &JobContext, sweep: &mut Sweep) -> Result<(), anyhow::Error> {
        match self {
            Duty::RescueStale => sweep.requeued_stale = rescuer::run(ctx).await?,
            Duty::RepushLost => sweep.repushed = reconcile::repush_lost(ctx).await?,
            Duty::RestoreDeliveries => {
                sweep.deliveries_restored = reconcile::restore_deliveries(ctx).await?
            }
            Duty::Expire => sweep.expired = expiry::run(ctx).await?,
            Duty::RemoveTempDirs => sweep.temp_dirs_removed = temp_dirs::run(ctx).await?,
            Duty::VacuumTasks => {
                sweep.tasks_vacuumed = reconcile::vacuum_finished_tasks(ctx).await?
            }
            Duty::ForgetMarkers => {
                sweep.markers_removed = reconcile::forget_markers_of_unqueued_jobs(ctx).await?
            }
            Duty::DeleteOldRows => sweep.rows_deleted = cleaner::delete_old_rows(ctx).await?,
            Duty::DeleteGoneWorkers => {
                sweep.workers_deleted = cleaner::delete_gone_workers(ctx).await?
            }
        }
        Ok(())
    }
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
    let mut lock = ctx.direct.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !locked {
        return Ok(None);
    }
    let mut sweep = Sweep::default();
    let mut result = Ok(());
    for duty in DUTIES {
        // A duty that fails ends the sweep (the store or a backend is
        // likely down for the rest too); the next sweep starts over.
        result = duty
            .run(ctx, &mut sweep)
            .await
            .map_err(|err| err.context(format!("sweeper duty {duty:?}")));
        if result.is_err() {
            break;
        }
    }
    // The lock also ends with the session if this fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SWEEP_LOCK)
        .execute(&mut *lock)
        .await;
    result.map(|()| Some(sweep))
}

/// Jobs by status, queue depth and the oldest heartbeat, into this worker's
/// gauges.
pub async fn refresh_fleet_gauges(ctx: &JobContext) -> Result<(), anyhow::Error> {
    let by_status = store::maintenance::count_jobs_by_status(&ctx.pool).await?;
    let heartbeat_age = store::maintenance::oldest_heartbeat_age_secs(&ctx.pool).await?;
    crate::metrics::jobs_swept(&by_status, heartbeat_age);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_takes_back_first_and_runs_each_duty_once() {
        for (i, duty) in DUTIES.iter().enumerate() {
            assert!(!DUTIES[..i].contains(duty), "{duty:?} twice");
        }
        assert_eq!(DUTIES.first(), Some(&Duty::RescueStale));
        let pushes = DUTIES.iter().position(|d| *d == Duty::RestoreDeliveries);
        let deletes = DUTIES.iter().position(|d| *d == Duty::DeleteOldRows);
        assert!(pushes < deletes, "pushing comes before deleting");
    }
}
