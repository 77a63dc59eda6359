//! Putting a job id in the queue: staged (inside the transaction that
//! inserts the row), announced once committed (the marker the sweeper
//! reconciles by, and a wake-up for idle workers), or both at once.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use uuid::Uuid;

use crate::reconcile::unix_now;
use crate::{JobMessage, JobQueue, QueueError};

impl JobQueue {
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
}
