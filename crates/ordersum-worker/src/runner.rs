//! The job lifecycle, whatever the work: take a delivery into a job slot,
//! claim the row, run the work under a heartbeat (progress, and the check
//! that the row is still this attempt's), a time limit and the shutdown
//! hand-back, then finish the row, retry it with backoff, hand it back or
//! fail it. The work itself (the order-summary export, `crate::export`) is a
//! [`Work`]: the runner knows nothing of workbooks or storage. One
//! attempt under its heartbeat is `attempt`'s.

mod attempt;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, Data};
use ordersum_model::store;
use ordersum_model::store::attempts::FinishedFile;
use ordersum_model::{Job, JobStatus};
use ordersum_queue::JobMessage;
use tracing::Instrument;
use uuid::Uuid;

use crate::context::JobContext;
use crate::metrics::{self, RunOutcome};
pub use attempt::Attempt;
use attempt::run_attempt;

/// How long a delivered id may wait for its row to become visible (the API
/// pushes inside the transaction that inserts it).
const ROW_VISIBILITY_WAIT: Duration = Duration::from_secs(3);

/// A kind of job the runner can run: produces the job's file.
pub trait Work: Send + Sync + 'static {
    type Error: WorkError;

    /// Makes the file of `job` (this attempt's own object), reporting
    /// progress to `attempt` and stopping soon after `attempt.stopping()`.
    fn produce(
        &self,
        ctx: &JobContext,
        job: &Job,
        attempt: &Arc<Attempt>,
    ) -> impl Future<Output = Result<FinishedFile, Self::Error>> + Send;

    /// Removes a file `produce` made, when the row turned out to be no
    /// longer this attempt's (cancelled, or taken back) as it finished.
    fn discard(
        &self,
        ctx: &JobContext,
        file: &FinishedFile,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A failure of the work, as the runner needs to judge it.
pub trait WorkError: std::error::Error + Send + Sync + 'static {
    /// Another attempt may succeed (a dependency was unavailable).
    fn is_retryable(&self) -> bool;
    /// What the customer reads, when the work has something specific to say.
    fn customer_message(&self) -> Option<String> {
        None
    }
}

/// How an attempt ended, short of an error.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        file: FinishedFile,
        elapsed: Duration,
    },
    /// The row is no longer running for this worker: cancelled, or taken
    /// back (the worker paused past the staleness limit) and now another
    /// attempt's. This attempt stopped and removed what it made.
    Abandoned,
    HandedBack,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: WorkError> {
    #[error(transparent)]
    Work(E),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ran longer than {0:?}")]
    TimedOut(Duration),
}

impl<E: WorkError> RunError<E> {
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Work(err) => err.is_retryable(),
            RunError::Database(err) => ordersum_model::db::is_transient(err),
            RunError::TimedOut(_) => false,
        }
    }

    /// What the customer reads in `ErrorMessage` (the cause is in the log).
    pub fn customer_message(&self, max_attempts: i32) -> String {
        if let RunError::Work(err) = self
            && let Some(message) = err.customer_message()
        {
            return message;
        }
        match self {
            RunError::TimedOut(limit) => format!(
                "The order summary took longer than the allowed {} minutes. Narrow the time window or the filters and try again.",
                limit.as_secs().div_ceil(60)
            ),
            err if err.is_retryable() => format!(
                "The order summary could not be produced after {max_attempts} attempts because a service it depends on was unavailable. Please try again later."
            ),
            _ => "The order summary could not be produced. Please try again later.".into(),
        }
    }
}

/// The apalis handler: takes a job slot and runs the delivery in a task of
/// its own, so a Redis hiccup that stops the consumer never stops a running
/// job. While draining, the delivery is pushed back for another worker.
pub async fn handle<W: Work + Default>(
    message: JobMessage,
    ctx: Data<Arc<JobContext>>,
) -> Result<(), BoxDynError> {
    let ctx: Arc<JobContext> = (*ctx).clone();
    let job_id = message.job_id;
    let permit = if ctx.draining.load(Ordering::SeqCst) {
        None
    } else {
        ctx.slots.clone().acquire_owned().await.ok()
    };
    match permit {
        Some(permit) if !ctx.draining.load(Ordering::SeqCst) => {
            // The delivery names a job, but the slot runs the job next in
            // line (`claim`); the span gets its id once claimed.
            let span = tracing::info_span!(
                "job",
                job_id = tracing::field::Empty,
                delivery = %job_id,
                worker = %ctx.worker_id
            );
            let task_ctx = ctx.clone();
            ctx.tasks.spawn(
                async move {
                    let _permit = permit;
                    run_delivery(&task_ctx, &W::default(), job_id).await;
                }
                .instrument(span),
            );
        }
        _ => {
            tracing::info!(%job_id, "shutting down: delivery pushed back");
            ctx.queue.push(job_id).await?;
        }
    }
    Ok(())
}

/// Runs the job one delivery stands for and records how it ended.
pub async fn run_delivery<W: Work>(ctx: &JobContext, work: &W, job_id: Uuid) {
    let job = match claim(ctx, job_id).await {
        Ok(Ok(job)) => {
            tracing::Span::current().record("job_id", tracing::field::display(job.id));
            job
        }
        Ok(Err(status)) => {
            tracing::info!(?status, "job not claimable; skipped");
            return;
        }
        Err(err) => {
            // The sweeper pushes it again once Postgres answers.
            tracing::error!(error = %err, "could not claim the job");
            return;
        }
    };
    // Redis no longer needs to hold it; not worth waiting for (a marker
    // left behind is removed by the next sweep).
    let (queue, claimed) = (ctx.queue.clone(), job.id);
    tokio::spawn(
        async move {
            if let Err(err) = queue.taken(claimed).await {
                tracing::warn!(error = %err, "could not clear the queue marker");
            }
        }
        .in_current_span(),
    );
    let run = metrics::run_started();
    let max_attempts = ctx.settings.max_attempts;
    if job.attempts > max_attempts {
        let message = format!(
            "The order summary could not be produced after {max_attempts} attempts. Please try again later."
        );
        mark_failed(ctx, &job, &message).await;
        run.ended(RunOutcome::Failed);
        return;
    }
    match run_attempt(ctx, work, &job).await {
        Ok(Outcome::Succeeded { file, elapsed }) => {
            tracing::info!(
                paid_rows = file.paid_rows,
                unpaid_rows = file.unpaid_rows,
                size = file.size,
                attempt = job.attempts,
                elapsed_ms = elapsed.as_millis() as u64,
                "job succeeded"
            );
            metrics::summary_stored(
                file.paid_rows as u64,
                file.unpaid_rows as u64,
                file.size as u64,
            );
            run.ended(RunOutcome::Succeeded);
        }
        Ok(Outcome::Abandoned) => {
            tracing::info!(
                attempt = job.attempts,
                "job no longer ours (cancelled or taken back): attempt abandoned, its files removed"
            );
            run.ended(RunOutcome::Cancelled);
        }
        Ok(Outcome::HandedBack) => {
            tracing::info!("shutdown grace period over: job handed back");
            requeue(ctx, &job, Duration::ZERO).await;
            run.ended(RunOutcome::HandedBack);
        }
        Err(err) if err.is_retryable() && job.attempts < max_attempts => {
            let delay = ctx.settings.retry_delay(job.attempts);
            tracing::warn!(error = %err, attempt = job.attempts, delay_ms = delay.as_millis() as u64, "job failed; retrying");
            requeue(ctx, &job, delay).await;
            run.ended(RunOutcome::Retried);
        }
        Err(err) => {
            tracing::error!(error = %err, attempt = job.attempts, "job failed");
            mark_failed(ctx, &job, &err.customer_message(max_attempts)).await;
            run.ended(RunOutcome::Failed);
        }
    }
}

/// This process's attempt at `job`, which every update of the row names.
fn owner<'a>(ctx: &'a JobContext, job: &Job) -> store::attempts::Attempt<'a> {
    store::attempts::Attempt {
        worker_id: &ctx.worker_id,
        attempt: job.attempts,
    }
}

/// Puts the job back in the queue to run after `delay`. When Postgres or
/// Redis refuses, the sweeper finishes the work (stale heartbeat, or queued
/// with no push behind it).
async fn requeue(ctx: &JobContext, job: &Job, delay: Duration) {
    match store::attempts::requeue_job(&ctx.pool, job.id, owner(ctx, job), delay).await {
        Ok(true) => {
            if let Err(err) = ctx.queue.push_after(job.id, delay).await {
                tracing::warn!(error = %err, "could not push the job again; the sweeper will");
            }
        }
        Ok(false) => tracing::info!("job no longer ours; not requeued"),
        Err(err) => tracing::error!(error = %err, "could not requeue the job; the sweeper will"),
    }
}

async fn mark_failed(ctx: &JobContext, job: &Job, message: &str) {
    match store::attempts::fail_job(&ctx.pool, job.id, owner(ctx, job), message).await {
        Ok(true) => {}
        Ok(false) => tracing::info!("job no longer ours; not marked failed"),
        Err(err) => {
            tracing::error!(error = %err, "could not mark the job failed; the sweeper will retry it");
        }
    }
}

/// The job this delivery runs, now running for this worker; or the status
/// that keeps the delivered one from running (`None`: no such row).
///
/// Deliveries are tokens: each one runs at most one job, the queued job next
/// in line (`store::attempts::claim_next`: fair between companies), which need not be
/// the one it names. Every queued job was pushed, so there are never fewer
/// deliveries than queued jobs; one that finds none due is spent, and the
/// sweeper pushes again any job left waiting too long. The delivered job
/// itself is claimed only when nothing is in line: its worker died (a
/// running row with a stale heartbeat), or its row is not visible yet.
async fn claim(
    ctx: &JobContext,
    job_id: Uuid,
) -> Result<Result<Job, Option<JobStatus>>, sqlx::Error> {
    let deadline = Instant::now() + ROW_VISIBILITY_WAIT;
    let mut pause = Duration::from_millis(2);
    let mut gate = crate::replica::gate(ctx).await?;
    let mut orders = gate.seen();
    loop {
        if let Some(job) = store::attempts::claim_next(&ctx.pool, &ctx.worker_id, orders).await? {
            return Ok(Ok(job));
        }
        if let Some(job) = store::attempts::claim_job(
            &ctx.pool,
            job_id,
            &ctx.worker_id,
            ctx.settings.stale_after(),
            orders,
        )
        .await?
        {
            return Ok(Ok(job));
        }
        // Jobs the orders replica cannot serve yet. It mostly is milliseconds
        // behind (this delivery was pushed as the job committed): look again
        // shortly; when it stays behind, this delivery comes back later.
        if Instant::now() < deadline
            && store::attempts::oldest_waiting(&ctx.pool, orders)
                .await?
                .is_some()
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
            gate = crate::replica::gate(ctx).await?;
            orders = gate.seen();
            continue;
        }
        let max_lag = ctx.settings.max_replica_lag_secs;
        if let Some(oldest) = store::attempts::mark_waiting(&ctx.pool, orders, max_lag).await? {
            let max = Duration::from_millis(ctx.settings.retry_max_ms);
            let delay = crate::replica::backoff(oldest, chrono::Utc::now(), max);
            tracing::info!(
                replayed_at = ?gate.replayed_at,
                delay_ms = delay.as_millis() as u64,
                "orders replica behind the queued jobs; delivery pushed back"
            );
            if let Err(err) = ctx.queue.push_after(job_id, delay).await {
                tracing::warn!(error = %err, "could not push the delivery back; the sweeper will");
            }
            return Ok(Err(Some(JobStatus::Queued)));
        }
        match store::attempts::find_job(&ctx.pool, job_id).await? {
            // Queued: it became visible between the queries; claim again.
            Some(job) if job.status == JobStatus::Queued => {}
            Some(job) => return Ok(Err(Some(job.status))),
            None if Instant::now() >= deadline => return Ok(Err(None)),
            // Pushed inside the transaction that inserts it, which has not
            // committed yet: look again shortly.
            None => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("test failure")]
    struct Failure {
        retryable: bool,
    }

    impl WorkError for Failure {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
    }

    #[test]
    fn connection_failures_are_retried_time_outs_and_bad_data_are_not() {
        let work = |retryable| RunError::Work(Failure { retryable });
        assert!(work(true).is_retryable());
        assert!(!work(false).is_retryable());
        assert!(RunError::<Failure>::Database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!RunError::<Failure>::Database(sqlx::Error::RowNotFound).is_retryable());
        assert!(!RunError::<Failure>::TimedOut(Duration::from_secs(60)).is_retryable());
        assert!(
            RunError::<Failure>::TimedOut(Duration::from_secs(90))
                .customer_message(3)
                .contains("allowed 2 minutes")
        );
        assert!(work(true).customer_message(3).contains("after 3 attempts"));
    }
}
