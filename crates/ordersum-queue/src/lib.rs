//! The job queue in Redis. apalis-redis carries only job ids; beside each
//! push a marker key records that Redis holds the job and when it was
//! pushed, so the sweeper can tell a queued job that Redis lost (restarted
//! empty, FLUSHALL) from one that is merely waiting, and push it again.
//! Pushing twice is harmless: a worker only runs a job it can claim.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use ordersum_model::JobMessage;
use redis::aio::ConnectionManagerConfig;
use uuid::Uuid;

/// How long a marker outlives its push at most (jobs are claimed or swept long before).
const MARKER_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("push: {0}")]
    Push(String),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// The queue of one namespace, shared by the API (push) and the workers
/// (consume, re-push).
#[derive(Clone)]
pub struct JobQueue {
    storage: RedisStorage<JobMessage>,
    conn: ConnectionManager,
    name: String,
    timeout: Duration,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// A queue on `redis_url`, connected lazily (a process starts while
    /// Redis is down and reconnects when it is back). Every call is bounded
    /// by `timeout`.
    pub fn open(redis_url: &str, name: &str, timeout: Duration) -> Result<Self, QueueError> {
        let client = redis::Client::open(redis_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let storage = RedisStorage::new(conn.clone()).with_config(Self::config(name));
        Ok(JobQueue {
            storage,
            conn,
            name: name.to_owned(),
            timeout,
        })
    }

    /// The apalis configuration of queue `name`.
    pub fn config(name: &str) -> Config {
        Config::default()
            .queue(name)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(3)
    }

    /// A Redis connection (for the worker's apalis backend and health checks).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn marker(&self, job_id: Uuid) -> String {
        format!("{}:ordersum:pushed:{job_id}", self.name)
    }

    async fn bounded<T, E: std::fmt::Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, QueueError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result.map_err(|err| QueueError::Push(err.to_string())),
            Err(_) => Err(QueueError::Timeout(self.timeout)),
        }
    }

    /// Pushes `job_id` for delivery now.
    pub async fn push(&self, job_id: Uuid) -> Result<(), QueueError> {
        self.push_after(job_id, Duration::ZERO).await
    }

    /// Pushes `job_id` for delivery after `delay`, and marks it held.
    pub async fn push_after(&self, job_id: Uuid, delay: Duration) -> Result<(), QueueError> {
        let mut storage = self.storage.clone();
        let task = if delay.is_zero() {
            TaskBuilder::new(JobMessage { job_id }).build()
        } else {
            TaskBuilder::new(JobMessage { job_id })
                .run_after(delay)
                .build()
        };
        self.bounded(storage.push_task(task)).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut conn = self.conn.clone();
        self.bounded(
            redis::cmd("SET")
                .arg(self.marker(job_id))
                .arg(now)
                .arg("EX")
                .arg(MARKER_TTL_SECS)
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// When `job_id` was last pushed (Unix seconds), if Redis still holds it.
    pub async fn pushed_at(&self, job_id: Uuid) -> Result<Option<u64>, QueueError> {
        let mut conn = self.conn.clone();
        self.bounded(
            redis::cmd("GET")
                .arg(self.marker(job_id))
                .query_async::<Option<u64>>(&mut conn),
        )
        .await
    }

    /// The job was taken by a worker: Redis no longer needs to hold it.
    pub async fn taken(&self, job_id: Uuid) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        self.bounded(
            redis::cmd("DEL")
                .arg(self.marker(job_id))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(drop)
    }
}
