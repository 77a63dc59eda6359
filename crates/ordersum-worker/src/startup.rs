//! Starts a worker process: Postgres (migrations applied), the object store,
//! and an apalis-redis consumer with a unique name, running until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::*;
use apalis_redis::{Config as QueueConfig, ConnectionManager, RedisStorage};
use ordersum_model::JobMessage;
use ordersum_storage::Store;
use redis::aio::ConnectionManagerConfig;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::job::{self, JobContext};
use crate::settings::Settings;

/// Connects to Postgres and applies pending migrations.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(settings.db_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&settings.database_url)
        .await
        .context("connecting to Postgres (DATABASE_URL)")?;
    ordersum_model::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}

/// `host-pid-random`: unique per process, as apalis requires.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

/// The context jobs share; checks the store answers.
pub async fn job_context(settings: Settings, pool: PgPool) -> anyhow::Result<Arc<JobContext>> {
    let store = Store::open(&settings.storage, "http://127.0.0.1:8080")
        .context("opening ORDERSUM_STORAGE")?;
    store.check().await.context("checking the object store")?;
    std::fs::create_dir_all(settings.temp_dir()).context("creating the temp dir")?;
    let worker_id = settings.worker_id.clone().unwrap_or_else(default_worker_id);
    Ok(Arc::new(JobContext {
        pool,
        store,
        settings,
        worker_id,
    }))
}

/// Consumes jobs until `shutdown` resolves.
pub async fn run(
    ctx: Arc<JobContext>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = &ctx.settings;
    let client = redis::Client::open(settings.redis_url.as_str()).context("parsing REDIS_URL")?;
    let conn = ConnectionManager::new_lazy_with_config(
        client,
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10))),
    )
    .context("creating the Redis connection manager")?;
    let concurrency = settings.concurrency.max(1);
    let backend = RedisStorage::<JobMessage>::new(conn)
        .with_config(
            QueueConfig::default()
                .queue(&settings.queue)
                .batch_size(concurrency),
        )
        .poll_with_interval(Duration::from_millis(settings.poll_interval_ms.max(10)));
    tracing::info!(worker = %ctx.worker_id, queue = %settings.queue, concurrency, "ordersum-worker started");
    let worker = WorkerBuilder::new(ctx.worker_id.clone())
        .backend(backend)
        .concurrency(concurrency)
        .data(ctx.clone())
        .build(job::handle);
    worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .context("worker stopped with an error")?;
    tracing::info!(worker = %ctx.worker_id, "ordersum-worker stopped");
    Ok(())
}
