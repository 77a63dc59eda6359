//! What every job of a worker process shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ordersum_model::pool::Db;
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
    /// Job state: `DATABASE_URL`.
    pub pool: Db,
    /// What a pooler cannot carry (`LISTEN`, session advisory locks):
    /// `ORDERSUM_LISTEN_DATABASE_URL`.
    pub direct: PgPool,
    /// Orders and their labels: `ORDERSUM_ORDERS_DATABASE_URL` (the main
    /// pool when unset).
    pub orders: Orders,
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

/// Where the orders are read.
#[derive(Debug, Clone)]
pub struct Orders {
    pub db: Db,
    /// A database of its own (`ORDERSUM_ORDERS_DATABASE_URL`): a replica,
    /// whose replay a job waits for (`crate::replica`).
    pub separate: bool,
}
