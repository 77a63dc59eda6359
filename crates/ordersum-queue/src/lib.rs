//! The job queue in Redis. apalis-redis carries only job ids; the row in
//! Postgres holds everything else, so a job id can be pushed again at any
//! time, and pushing twice is harmless: a worker only runs a job it can
//! claim. [`push`] puts ids in the queue, [`reconcile`] is how Redis is kept
//! in step with Postgres (markers, deliveries held, vacuum), [`wake`] wakes
//! idle workers on a push.

pub mod push;
pub mod reconcile;
pub mod wake;

use std::future::Future;
use std::time::Duration;

use apalis::prelude::{PollWith, StreamStrategy};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use redis::aio::ConnectionManagerConfig;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use wake::{WakeStream, Wakeups};

/// Name of the Redis queue (apalis-redis namespace) that carries job ids.
pub const DEFAULT_QUEUE: &str = "ordersum:summary-jobs";

/// What the queue carries: only the job id. The `summary_jobs` row holds the
/// request, so a message can be re-pushed at any time without losing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

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
    client: redis::Client,
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
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let storage = RedisStorage::new(conn.clone()).with_config(Self::config(name));
        Ok(JobQueue {
            storage,
            client,
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

    /// The apalis-redis backend a worker consumes this queue with: up to
    /// `batch` ids taken per fetch; an idle consumer fetches again when
    /// `wakeups` announces a push, and every `fallback` in case an
    /// announcement was lost (and for delayed pushes coming due).
    pub fn consumer(
        &self,
        batch: usize,
        wakeups: &Wakeups,
        fallback: Duration,
    ) -> PollWith<RedisStorage<JobMessage>, StreamStrategy<WakeStream>> {
        let backend = RedisStorage::new(self.conn.clone())
            .with_config(Self::config(&self.name).batch_size(batch));
        PollWith::new(backend, StreamStrategy::new(wakeups.stream(fallback)))
    }

    /// A Redis connection (for the worker's apalis backend and health checks).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn name(&self) -> &str {
        &self.name
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

    /// Drops what apalis-redis registered for the consumer `worker_name`
    /// once it has stopped (its metadata hash; apalis keeps it forever, one
    /// per consumer ever started). Its heartbeat entry and in-flight set stay
    /// for apalis' orphan re-enqueue.
    pub async fn forget_consumer(&self, worker_name: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        self.bounded(
            redis::cmd("DEL")
                .arg(format!("{}:workers:metadata:{worker_name}", self.name))
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
