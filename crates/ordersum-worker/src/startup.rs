//! Starts a worker process: Postgres (migrations applied), the object store,
//! the queue, the sweeper, and an apalis-redis consumer; on shutdown it
//! stops taking jobs, lets running ones finish within the grace period and
//! hands the rest back to the queue.

use ordersum_runtime::ExposeSecret;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::*;
use ordersum_model::pool::{Databases, Db};
use ordersum_queue::JobQueue;
use ordersum_storage::Store;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::context::{JobContext, Orders};
use crate::export::OrderSummary;
use crate::registry;
use crate::runner;
use crate::settings::Settings;
use crate::sweeper;

/// Connects to Postgres as `application_name = worker id` and applies
/// pending migrations.
pub async fn connect_database(settings: &Settings, worker_id: &str) -> anyhow::Result<Databases> {
    settings
        .backends
        .connect(worker_id, settings.db_max_connections, DB_ACQUIRE_TIMEOUT)
        .connect_and_migrate()
        .await
        .context("connecting to Postgres (DATABASE_URL, ORDERSUM_LISTEN_DATABASE_URL) and applying migrations")
}

const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pool orders are read from: `ORDERSUM_ORDERS_DATABASE_URL`, else the
/// main one.
async fn orders_database(settings: &Settings, main: &Db) -> anyhow::Result<Orders> {
    let Some(url) = &settings.orders_database_url else {
        return Ok(Orders {
            db: main.clone(),
            separate: false,
        });
    };
    let name = settings.worker_id.as_deref().unwrap_or("ordersum-worker");
    let db = settings
        .backends
        .connect(name, settings.db_max_connections, DB_ACQUIRE_TIMEOUT)
        .statements(url.expose_secret())
        .await
        .context("connecting to the orders database (ORDERSUM_ORDERS_DATABASE_URL)")?;
    Ok(Orders { db, separate: true })
}

/// `host-pid-random`: unique per process, as apalis requires.
pub fn default_worker_id() -> String {
    let suffix: u32 = rand::random();
    format!("{}-{}-{suffix:08x}", hostname(), std::process::id())
}

/// The machine's (or pod's) host name; `worker` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// The context jobs share; checks the store answers.
pub async fn job_context(
    mut settings: Settings,
    databases: impl Into<Databases>,
) -> anyhow::Result<Arc<JobContext>> {
    settings.validate()?;
    let Databases { main, direct } = databases.into();
    let orders = orders_database(&settings, &main).await?;
    let store = Store::open(&settings.storage, "http://127.0.0.1:8080")
        .context("opening ORDERSUM_STORAGE")?;
    store.check().await.context("checking the object store")?;
    std::fs::create_dir_all(settings.temp_dir()).context("creating the temp dir")?;
    let queue = JobQueue::open(
        settings.backends.redis_url.expose_secret(),
        &settings.backends.queue,
        Duration::from_secs(10),
    )
    .context("opening the Redis queue (REDIS_URL)")?;
    let worker_id = settings
        .worker_id
        .get_or_insert_with(default_worker_id)
        .clone();
    let concurrency = settings.concurrency;
    Ok(Arc::new(JobContext {
        pool: main,
        direct,
        orders,
        store,
        queue,
        settings,
        worker_id,
        slots: Arc::new(Semaphore::new(concurrency)),
        tasks: TaskTracker::new(),
        draining: AtomicBool::new(false),
        handback: watch::Sender::new(false),
    }))
}

/// Consumes jobs until `shutdown` resolves, then drains.
pub async fn run(
    ctx: Arc<JobContext>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let registry = tokio::spawn(registry::run(ctx.clone()));
    let sweeper = tokio::spawn(sweeper::run(ctx.clone()));
    let deliverer = tokio::spawn(crate::webhooks::run(ctx.clone()));
    tracing::info!(worker = %ctx.worker_id, queue = %ctx.settings.backends.queue, concurrency = ctx.settings.concurrency, "ordersum-worker started");
    consume(&ctx, stop_rx).await;
    sweeper.abort();
    deliverer.abort();
    drain(&ctx).await;
    registry.abort();
    registry::stopped(&ctx).await;
    tracing::info!(worker = %ctx.worker_id, "ordersum-worker stopped");
    Ok(())
}

/// Runs the apalis consumer until `stop` turns true. If it ends with an
/// error (Redis gone), it is started again under a new name: running jobs
/// are tasks of their own and go on meanwhile.
async fn consume(ctx: &Arc<JobContext>, stop: watch::Receiver<bool>) {
    let concurrency = ctx.settings.concurrency;
    // One subscription to push announcements for every generation.
    let wakeups = ctx.queue.wakeups();
    for generation in 0u64.. {
        let backend = ctx
            .queue
            .consumer(concurrency, &wakeups, ctx.settings.poll_interval());
        let name = format!("{}-{generation}", ctx.worker_id);
        let worker = WorkerBuilder::new(name.as_str())
            .backend(backend)
            .concurrency(concurrency)
            .data(ctx.clone())
            .build(runner::handle::<OrderSummary>);
        let mut stop_signal = stop.clone();
        let outcome = worker
            .run_until(async move {
                let _ = stop_signal.wait_for(|stop| *stop).await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        if let Err(err) = ctx.queue.forget_consumer(&name).await {
            tracing::debug!(error = %err, "could not remove the consumer's registration");
        }
        if *stop.borrow() {
            return;
        }
        if let Err(err) = outcome {
            tracing::error!(error = %err, generation, "queue consumer stopped; restarting it");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if *stop.borrow() {
            return;
        }
    }
}

/// Stops taking jobs, gives running ones the grace period, then hands back
/// what is still running.
async fn drain(ctx: &JobContext) {
    ctx.draining.store(true, Ordering::SeqCst);
    ctx.tasks.close();
    let grace = Duration::from_secs(ctx.settings.shutdown_grace_secs);
    if !ctx.tasks.is_empty() {
        tracing::info!(
            jobs = ctx.tasks.len(),
            grace_secs = grace.as_secs(),
            "waiting for running jobs"
        );
    }
    if tokio::time::timeout(grace, ctx.tasks.wait()).await.is_err() {
        tracing::warn!(
            jobs = ctx.tasks.len(),
            "grace period over: handing jobs back"
        );
        let _ = ctx.handback.send(true);
        if tokio::time::timeout(Duration::from_secs(30), ctx.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!("jobs did not stop; the sweeper will take them back");
        }
    }
}

/// Allocations of this size and above get pages of their own, returned to
/// the system when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fixes glibc's mmap threshold at 1 MiB. By default glibc raises it to the
/// size of the largest block freed (up to 32 MiB), so the upload's 8 MiB
/// parts were then carved out of the heap and kept: a 1M-order export to S3
/// peaked at 98–128 MiB RSS instead of 75–77 (bench/export.sh, `STORE=s3`).
/// An operator's own `MALLOC_MMAP_THRESHOLD_` wins.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets a parameter of glibc's allocator, which
        // takes its own lock; it is called before any thread allocates.
        #[allow(unsafe_code)]
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if set != 1 {
            tracing::warn!("could not set the allocator's mmap threshold");
        }
    }
}
