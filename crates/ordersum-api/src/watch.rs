//! Long-polls wake when their job ends. One Postgres connection per API
//! process LISTENs on `ordersum_job_changed` (a trigger announces every
//! status change as it commits) and wakes the calls waiting on that job;
//! a thousand waiting calls hold a thousand small registrations, not a
//! thousand connections. When the listener loses its connection it wakes
//! every waiter once (an end may have been missed), and waiters re-read on a
//! slow timer as well, so a lost notification costs latency, never an answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordersum_model::JobStatus;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;
use uuid::Uuid;

/// The channel the `summary_jobs` trigger notifies, payload `<id> <status>`.
pub const CHANNEL: &str = "ordersum_job_changed";

/// The waiters of one API process, by job.
#[derive(Debug, Default)]
pub struct JobWatch {
    waiters: Mutex<HashMap<Uuid, watch::Sender<()>>>,
}

/// One call's interest in a job: [`Watching::changed`] resolves once the job
/// may have ended since this was made. Dropping it unregisters.
#[derive(Debug)]
pub struct Watching {
    watch: Arc<JobWatch>,
    job_id: Uuid,
    rx: watch::Receiver<()>,
}

impl JobWatch {
    /// A watch fed by a listener on its own connection (the pool the API
    /// serves calls from keeps all of its connections), started now and
    /// kept going, reconnecting, for the life of the process.
    pub fn start(pool: &PgPool) -> Arc<Self> {
        let watch = Arc::new(JobWatch::default());
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        tokio::spawn(listen(listener_pool, Arc::downgrade(&watch)));
        watch
    }

    /// Registers interest in `job_id`. Make it before reading the row whose
    /// status decides whether to wait: an end committed after the read then
    /// wakes this call.
    pub fn watch(self: &Arc<Self>, job_id: Uuid) -> Watching {
        let mut waiters = self.lock();
        let rx = waiters
            .entry(job_id)
            .or_insert_with(|| watch::Sender::new(()))
            .subscribe();
        Watching {
            watch: Arc::clone(self),
            job_id,
            rx,
        }
    }

    /// Jobs with at least one call waiting (for tests and metrics).
    pub fn watched_jobs(&self) -> usize {
        self.lock().len()
    }

    /// Calls waiting, on any job (for tests and metrics).
    pub fn waiting_calls(&self) -> usize {
        self.lock().values().map(|tx| tx.receiver_count()).sum()
    }

    fn wake(&self, job_id: Uuid) {
        if let Some(tx) = self.lock().get(&job_id) {
            tx.send_replace(());
        }
    }

    fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_replace(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<()>>> {
        // A panic while holding the lock leaves the map consistent.
        self.waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Watching {
    /// Resolves when the job's status changed to an end, or the listener
    /// lost notifications, since this was made or last resolved.
    pub async fn changed(&mut self) {
        // The sender lives while this receiver is registered.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut waiters = self.watch.lock();
        // This receiver is the last: nobody else waits on the job.
        if waiters
            .get(&self.job_id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            waiters.remove(&self.job_id);
        }
    }
}

/// Listens until the watch is dropped, connecting again after a failure.
async fn listen(pool: PgPool, watch: std::sync::Weak<JobWatch>) {
    let mut retry = Duration::from_millis(100);
    loop {
        match listen_once(&pool, &watch).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, "job-change listener lost Postgres; listening again");
                if let Some(watch) = watch.upgrade() {
                    watch.wake_all();
                }
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

/// One listening session; `Ok` once the watch is gone.
async fn listen_once(pool: &PgPool, watch: &std::sync::Weak<JobWatch>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Ends committed while not listening were missed.
    match watch.upgrade() {
        Some(watch) => watch.wake_all(),
        None => return Ok(()),
    }
    tracing::debug!("listening for job changes");
    loop {
        let notification = listener.try_recv().await?;
        let Some(watch) = watch.upgrade() else {
            return Ok(());
        };
        let Some(notification) = notification else {
            // The connection was lost and is open again: wake everyone.
            tracing::warn!("job-change listener reconnected; waking every waiting call");
            watch.wake_all();
            continue;
        };
        if let Some(job_id) = ended_job(notification.payload()) {
            watch.wake(job_id);
        }
    }
}

/// The job of a `<id> <status>` payload, if that status is an end (a
/// long-poll waits for nothing else).
fn ended_job(payload: &str) -> Option<Uuid> {
    let (id, status) = payload.split_once(' ')?;
    if JobStatus::from_db(status)?.is_active() {
        return None;
    }
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ends_wake_a_long_poll() {
        let id = Uuid::now_v7();
        assert_eq!(ended_job(&format!("{id} succeeded")), Some(id));
        assert_eq!(ended_job(&format!("{id} cancelled")), Some(id));
        assert_eq!(ended_job(&format!("{id} failed")), Some(id));
        assert_eq!(ended_job(&format!("{id} running")), None);
        assert_eq!(ended_job(&format!("{id} queued")), None);
        assert_eq!(ended_job("garbage"), None);
        assert_eq!(ended_job("not-a-uuid succeeded"), None);
    }

    #[tokio::test]
    async fn a_waiter_sees_a_wake_made_after_it_registered_and_unregisters_on_drop() {
        let watch = Arc::new(JobWatch::default());
        let id = Uuid::now_v7();
        let mut first = watch.watch(id);
        let second = watch.watch(id);
        assert_eq!(watch.watched_jobs(), 1);
        // Woken before the waiter awaits: not lost.
        watch.wake(id);
        tokio::time::timeout(Duration::from_secs(1), first.changed())
            .await
            .expect("a wake before the wait is kept");
        drop(second);
        assert_eq!(watch.watched_jobs(), 1, "one waiter is left");
        drop(first);
        assert_eq!(watch.watched_jobs(), 0);
        // A wake for nobody is harmless.
        watch.wake(id);
        watch.wake_all();
    }
}
