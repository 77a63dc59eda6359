//! The worker's row in `workers`, for the operator console: registered at
//! start, a heartbeat every [`BEAT_INTERVAL`], marked stopped at a clean
//! exit. A worker that dies keeps its last heartbeat, and the console shows
//! it as stale; the sweeper deletes rows a day after their last beat.

use std::sync::Arc;
use std::time::Duration;

use ordersum_model::store;

use crate::context::JobContext;

pub use ordersum_model::store::workers::WORKER_BEAT_INTERVAL as BEAT_INTERVAL;

/// Registers the worker, then beats until the task is dropped. A row that
/// went missing (deleted while Postgres was out of reach for a day, or by
/// hand) is registered again.
pub async fn run(ctx: Arc<JobContext>) {
    let host = crate::startup::hostname();
    let metrics_addr = ctx.settings.metrics_addr.0.map(|addr| addr.to_string());
    let mut registered = false;
    let mut tick = tokio::time::interval(BEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if registered {
            match store::workers::worker_beat(&ctx.pool, &ctx.worker_id).await {
                Ok(true) => continue,
                Ok(false) => registered = false,
                Err(err) => {
                    tracing::warn!(error = %err, "could not record the worker's heartbeat");
                    continue;
                }
            }
        }
        match store::workers::register_worker(
            &ctx.pool,
            &ctx.worker_id,
            &host,
            std::process::id(),
            ctx.settings.concurrency,
            env!("CARGO_PKG_VERSION"),
            metrics_addr.as_deref(),
        )
        .await
        {
            Ok(()) => registered = true,
            Err(err) => tracing::warn!(error = %err, "could not register the worker"),
        }
    }
}

/// Marks the worker stopped (a clean exit): the console stops listing it.
pub async fn stopped(ctx: &JobContext) {
    let marked = tokio::time::timeout(
        Duration::from_secs(5),
        store::workers::worker_stopped(&ctx.pool, &ctx.worker_id),
    )
    .await;
    if !matches!(marked, Ok(Ok(()))) {
        tracing::warn!("could not mark the worker stopped; the console will show it stale");
    }
}
