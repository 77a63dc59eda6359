//! The job queue in Redis. apalis-redis carries only job ids; beside each
//! push a marker (a member of the sorted set `<queue>:ordersum:pushed`,
//! scored with the push time) records that Redis holds the job and when it
//! was pushed, so the sweeper can tell a queued job that Redis lost
//! (restarted empty, FLUSHALL) from one that is merely waiting, and push it
//! again. Pushing twice is harmless: a worker only runs a job it can claim.
//!
//! Nothing here grows with the number of jobs: a marker goes when its job is
//! claimed or, for a job that ended while queued, at the next sweep
//! ([`JobQueue::forget_markers`]); apalis-redis' own records of finished
//! tasks are removed by [`JobQueue::vacuum`].

use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use apalis::prelude::{PollWith, StreamStrategy, TaskBuilder, TaskSink};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use redis::aio::ConnectionManagerConfig;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Name of the Redis queue (apalis-redis namespace) that carries job ids.
pub const DEFAULT_QUEUE: &str = "ordersum:summary-jobs";

/// What the queue carries: only the job id. The `summary_jobs` row holds the
/// request, so a message can be re-pushed at any time without losing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

/// Removes apalis-redis' records of up to `ARGV[1]` finished tasks: each id
/// popped from the done and dead sets loses its data field, its result and
/// its meta hash (key names as apalis-redis' `Config` builds them).
const VACUUM_SCRIPT: &str = r#"
local removed = 0
for _, set in ipairs({KEYS[1], KEYS[2]}) do
  local ids = redis.call('SPOP', set, ARGV[1])
  for _, id in ipairs(ids) do
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4] .. ':result', id)
    redis.call('DEL', KEYS[4] .. ':' .. id)
    removed = removed + 1
  end
end
return removed
"#;

/// Counts the deliveries Redis holds: waiting (`KEYS[1]`, the active
/// list), delayed (`KEYS[2]`, the scheduled set) and taken by a consumer
/// but not yet acknowledged (the in-flight set `ARGV[1]:<consumer>` of each
/// consumer registered in `KEYS[3]`).
const HELD_SCRIPT: &str = r#"
local held = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
for _, consumer in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  held = held + redis.call('SCARD', ARGV[1] .. ':' .. consumer)
end
return held
"#;

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

    /// The sorted set of markers: job id → Unix seconds of its last push.
    fn markers(&self) -> String {
        format!("{}:ordersum:pushed", self.name)
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

    /// Pushes `job_id` for delivery now and wakes the workers.
    pub async fn push(&self, job_id: Uuid) -> Result<(), QueueError> {
        self.stage(job_id, Duration::ZERO).await?;
        self.announce(job_id, true).await
    }

    /// Pushes `job_id` for delivery after `delay`, and marks it held. No
    /// worker is woken: a worker's fallback poll takes it when it is due.
    pub async fn push_after(&self, job_id: Uuid, delay: Duration) -> Result<(), QueueError> {
        self.stage(job_id, delay).await?;
        self.announce(job_id, delay.is_zero()).await
    }

    /// Puts `job_id` in the queue without marking it or waking anyone: for
    /// a push inside the transaction that inserts the row, which
    /// [`JobQueue::announce`]s it once committed (a worker woken earlier
    /// would not see the row yet).
    pub async fn stage(&self, job_id: Uuid, delay: Duration) -> Result<(), QueueError> {
        let mut storage = self.storage.clone();
        let task = if delay.is_zero() {
            TaskBuilder::new(JobMessage { job_id }).build()
        } else {
            TaskBuilder::new(JobMessage { job_id })
                .run_after(delay)
                .build()
        };
        self.bounded(storage.push_task(task)).await
    }

    /// Marks a staged `job_id` held by Redis and, with `wake`, wakes the
    /// idle workers (one round trip). A lost announcement costs no job: the
    /// sweeper pushes an unmarked queued job again, and workers poll now and
    /// then.
    pub async fn announce(&self, job_id: Uuid, wake: bool) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(self.markers())
            .arg(unix_now())
            .arg(job_id.to_string())
            .ignore();
        if wake {
            pipe.cmd("PUBLISH")
                .arg(self.wake_channel())
                .arg(job_id.to_string())
                .ignore();
        }
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    /// The channel pushes are announced on.
    fn wake_channel(&self) -> String {
        format!("{}:ordersum:wake", self.name)
    }

    /// Wake-ups for a consumer of this queue: a subscription to the
    /// announcements of pushes, kept open (and opened again after Redis
    /// comes back) by a task that lives as long as the [`Wakeups`].
    pub fn wakeups(&self) -> Wakeups {
        let signal = Arc::new(Signal::default());
        let task = tokio::spawn(subscribe(
            self.client.clone(),
            self.wake_channel(),
            signal.clone(),
        ));
        Wakeups { signal, task }
    }

    /// When `job_id` was last pushed (Unix seconds), if Redis still holds it.
    pub async fn pushed_at(&self, job_id: Uuid) -> Result<Option<u64>, QueueError> {
        let mut conn = self.conn.clone();
        let score = self
            .bounded(
                redis::cmd("ZSCORE")
                    .arg(self.markers())
                    .arg(job_id.to_string())
                    .query_async::<Option<f64>>(&mut conn),
            )
            .await?;
        Ok(score.map(|at| at as u64))
    }

    /// The job was taken by a worker: Redis no longer needs to hold it.
    pub async fn taken(&self, job_id: Uuid) -> Result<(), QueueError> {
        self.forget_markers(&[job_id]).await
    }

    /// Up to `limit` marked jobs with their push time (Unix seconds), oldest
    /// push first, skipping the first `offset`.
    pub async fn marked_jobs(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(Uuid, u64)>, QueueError> {
        let mut conn = self.conn.clone();
        let marked = self
            .bounded(
                redis::cmd("ZRANGE")
                    .arg(self.markers())
                    .arg(offset)
                    .arg(offset + limit.max(1) - 1)
                    .arg("WITHSCORES")
                    .query_async::<Vec<(String, f64)>>(&mut conn),
            )
            .await?;
        // A member that is not a job id (written by hand) is left alone.
        Ok(marked
            .into_iter()
            .filter_map(|(id, at)| Some((Uuid::parse_str(&id).ok()?, at as u64)))
            .collect())
    }

    /// Drops the markers of `job_ids` (jobs no longer waiting in the queue).
    pub async fn forget_markers(&self, job_ids: &[Uuid]) -> Result<(), QueueError> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.markers());
        for id in job_ids {
            cmd.arg(id.to_string());
        }
        self.bounded(cmd.query_async::<()>(&mut conn)).await
    }

    /// Removes apalis-redis' records (data, meta hash, result, done or dead
    /// entry) of up to `batch` tasks whose handler has finished; answers how
    /// many. apalis-redis keeps them forever otherwise (about 11 Redis
    /// entries a job), and its own `Vacuum` leaves the done set growing.
    /// A finished task is never run again: the job row is the truth.
    pub async fn vacuum(&self, batch: usize) -> Result<usize, QueueError> {
        let config = Self::config(&self.name);
        let mut conn = self.conn.clone();
        let script = redis::Script::new(VACUUM_SCRIPT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(config.done_jobs_set())
            .key(config.dead_jobs_set())
            .key(config.job_data_hash())
            .key(config.job_meta_hash())
            .arg(batch.max(1));
        self.bounded(invocation.invoke_async::<usize>(&mut conn))
            .await
    }

    /// How many deliveries Redis holds, waiting, delayed or in a
    /// consumer's hands. A delivery runs one queued job, whichever is next
    /// in line, so fewer deliveries than queued jobs means some job would
    /// wait for the sweeper's late re-push ([`JobQueue::pushed_at`]).
    pub async fn deliveries_held(&self) -> Result<usize, QueueError> {
        let config = Self::config(&self.name);
        let mut conn = self.conn.clone();
        let script = redis::Script::new(HELD_SCRIPT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.workers_set())
            .arg(config.inflight_jobs_set());
        self.bounded(invocation.invoke_async::<usize>(&mut conn))
            .await
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A consumer's subscription to push announcements (see
/// [`JobQueue::wakeups`]); dropping it ends the subscription.
#[derive(Debug)]
pub struct Wakeups {
    signal: Arc<Signal>,
    task: JoinHandle<()>,
}

/// A raised flag and the waker to call: an announcement raised while
/// nobody waits is kept for the next poll.
#[derive(Debug, Default)]
struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// After a wake-up, the consumer fetches once more this much later: a
/// fetch already in flight when the announcement came may have run in
/// Redis before the push it announces.
const ECHO: Duration = Duration::from_millis(20);

/// Yields when a push is announced (and once more [`ECHO`] later), and
/// every fallback interval. apalis' `PollWith` polls it once per fetch and
/// does not poll it again after it yields, so every poll leaves the task's
/// waker registered with each source, whether it yields or not.
pub struct WakeStream {
    signal: Arc<Signal>,
    fallback: tokio::time::Interval,
    echo: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for WakeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeStream").finish_non_exhaustive()
    }
}

impl Stream for WakeStream {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let this = self.get_mut();
        this.signal.waker.register(cx.waker());
        let announced = this.signal.raised.swap(false, Ordering::AcqRel);
        // A tick that fired re-arms the interval: poll it again so the
        // next tick is registered too.
        let ticked = this.fallback.poll_tick(cx).is_ready();
        if ticked {
            let _ = this.fallback.poll_tick(cx);
        }
        let echoed = this
            .echo
            .as_mut()
            .is_some_and(|echo| echo.as_mut().poll(cx).is_ready());
        if echoed {
            this.echo = None;
        }
        if announced {
            let mut echo = Box::pin(tokio::time::sleep(ECHO));
            let _ = echo.as_mut().poll(cx);
            this.echo = Some(echo);
        }
        if announced || ticked || echoed {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

impl Wakeups {
    /// The wake-up stream an apalis consumer polls by.
    pub fn stream(&self, fallback: Duration) -> WakeStream {
        let mut fallback =
            tokio::time::interval_at(tokio::time::Instant::now() + fallback, fallback);
        fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        WakeStream {
            signal: self.signal.clone(),
            fallback,
            echo: None,
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps a subscription to `channel` open, turning each message into a
/// wake-up. After a lost connection it wakes the consumer once (pushes may
/// have been announced meanwhile) and subscribes again.
async fn subscribe(client: redis::Client, channel: String, signal: Arc<Signal>) {
    let mut retry = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    retry = Duration::from_millis(100);
                    signal.raise();
                    let mut messages = pubsub.into_on_message();
                    while messages.next().await.is_some() {
                        signal.raise();
                    }
                    tracing::warn!(
                        "lost the Redis subscription to push announcements; subscribing again"
                    );
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not subscribe to push announcements")
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "could not connect to Redis for push announcements")
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Counts how often the task would have been woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stream(signal: &Arc<Signal>) -> WakeStream {
        WakeStream {
            signal: signal.clone(),
            fallback: tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(3600),
                Duration::from_secs(3600),
            ),
            echo: None,
        }
    }

    #[tokio::test]
    async fn an_announcement_after_the_stream_yielded_still_wakes_the_task() {
        let signal = Arc::new(Signal::default());
        let mut wake = stream(&signal);
        let counter = Arc::new(CountingWaker::default());
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);

        // Raised before anyone waits: kept for the first poll.
        signal.raise();
        assert_eq!(
            Pin::new(&mut wake).poll_next(&mut cx),
            Poll::Ready(Some(()))
        );
        // apalis does not poll again after a yield; the next announcement
        // must reach the task all the same.
        let before = counter.0.load(Ordering::SeqCst);
        signal.raise();
        assert!(counter.0.load(Ordering::SeqCst) > before);
        assert_eq!(
            Pin::new(&mut wake).poll_next(&mut cx),
            Poll::Ready(Some(()))
        );
    }

    #[tokio::test]
    async fn a_wake_up_is_echoed_once_for_a_fetch_that_was_in_flight() {
        let signal = Arc::new(Signal::default());
        let mut wake = stream(&signal);
        signal.raise();
        assert_eq!(wake.next().await, Some(()));
        // The echo, then nothing more until the next announcement.
        tokio::time::timeout(Duration::from_secs(1), wake.next())
            .await
            .expect("the echo comes");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), wake.next())
                .await
                .is_err()
        );
    }
}
