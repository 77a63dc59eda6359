//! What every job of a worker process shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ordersum_queue::JobQueue;
use ordersum_storage::Store;
use sqlx::PgPool;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::settings::Settings;

/// The worker process: its connections, settings and identity, and the
/// state of its job slots (read by the runner, the work and the sweeper).
#[derive(Debug)]
pub struct JobContext {
    pub pool: PgPool,
    pub store: Store,
    pub queue: JobQueue,
    pub settings: Settings,
    pub worker_id: String,
    /// Job slots: the worker's concurrency.
    pub slots: Arc<Semaphore>,
    /// Every job task, to wait for at shutdown.
    pub tasks: TaskTracker,
    /// Set at shutdown: deliveries are pushed back instead of run.
    pub draining: AtomicBool,
    /// Turned true when the shutdown grace period is over: running jobs
    /// stop and go back to the queue.
    pub handback: watch::Sender<bool>,
}
