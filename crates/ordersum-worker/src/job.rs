//! One order-summary job: claim it, stream its orders page by page into the
//! workbook (reader task → bounded channel → writer in `spawn_blocking`),
//! upload the file, finish the row. A heartbeat with the progress is written
//! about once a second for the whole job; a cancelled job stops at the next
//! page; retryable failures put the job back in the queue with backoff; at
//! shutdown an unfinished job is handed back.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, Data};
use chrono::DateTime;
use chrono_tz::Tz;
use ordersum_model::repo::{self, FinishedFile};
use ordersum_model::{Job, JobMessage, JobStatus, SummaryRequest};
use ordersum_queue::JobQueue;
use ordersum_storage::{PipeWriter, StorageError, Store};
use rust_xlsxwriter::XlsxError;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::metrics::{self, RunOutcome};
use crate::orders::{OrderQuery, OrderRow};
use crate::settings::Settings;
use crate::workbook::{Labels, WorkbookOptions, WorkbookWriter};

/// Pages read ahead of the writer: bounds memory to a few pages.
const PAGES_IN_FLIGHT: usize = 2;
/// How long a delivered id may wait for its row to become visible (the API
/// pushes inside the transaction that inserts it).
const ROW_VISIBILITY_WAIT: Duration = Duration::from_secs(3);

/// What every job of this process shares.
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

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("workbook: {0}")]
    Workbook(#[from] XlsxError),
    #[error("temp file: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored request is unreadable: {0}")]
    Request(String),
    #[error("writer task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("ran longer than {0:?}")]
    TimedOut(Duration),
    #[error("cancelled")]
    Cancelled,
}

impl JobError {
    /// Whether another attempt may succeed: Postgres, the store or the disk
    /// were unavailable or failed transiently. Bad data, bugs and time-outs
    /// are not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Database(err) => database_error_is_transient(err),
            JobError::Storage(err) => err.is_retryable(),
            JobError::Io(_) | JobError::Workbook(XlsxError::IoError(_)) => true,
            _ => false,
        }
    }

    /// What the customer reads in `ErrorMessage` (the cause is in the log).
    pub fn customer_message(&self, settings: &Settings) -> String {
        match self {
            JobError::TimedOut(limit) => format!(
                "The order summary took longer than the allowed {} minutes. Narrow the time window or the filters and try again.",
                limit.as_secs().div_ceil(60)
            ),
            JobError::Request(_) => {
                "The request of this job could not be read. Please submit it again.".into()
            }
            err if err.is_retryable() => format!(
                "The order summary could not be produced after {} attempts because a service it depends on was unavailable. Please try again later.",
                settings.max_attempts
            ),
            _ => "The order summary could not be produced. Please try again later.".into(),
        }
    }
}

fn database_error_is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // connection exceptions, serialization failure, deadlock,
            // admin shutdown / cannot connect now, insufficient resources.
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("57P")
                || code.starts_with("53")
        }),
        _ => false,
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        paid_rows: u64,
        unpaid_rows: u64,
        size: u64,
        elapsed: Duration,
    },
    /// The row is no longer running for this worker: cancelled, or taken
    /// back (the worker paused past the staleness limit) and now another
    /// attempt's. This attempt stopped and removed what it made.
    Abandoned,
    HandedBack,
}

/// The apalis handler: takes a job slot and runs the job in a task of its
/// own, so a Redis hiccup that stops the consumer never stops a running job.
/// While draining, the delivery is pushed back for another worker.
pub async fn handle(message: JobMessage, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    let ctx: Arc<JobContext> = (*ctx).clone();
    let job_id = message.job_id;
    let permit = if ctx.draining.load(Ordering::SeqCst) {
        None
    } else {
        ctx.slots.clone().acquire_owned().await.ok()
    };
    match permit {
        Some(permit) if !ctx.draining.load(Ordering::SeqCst) => {
            let span = tracing::info_span!("job", %job_id, worker = %ctx.worker_id);
            let task_ctx = ctx.clone();
            ctx.tasks.spawn(
                async move {
                    let _permit = permit;
                    settle(&task_ctx, job_id).await;
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

/// Runs one delivery of `job_id` and records how it ended.
pub async fn settle(ctx: &JobContext, job_id: Uuid) {
    let job = match claim(ctx, job_id).await {
        Ok(Ok(job)) => job,
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
    if let Err(err) = ctx.queue.taken(job.id).await {
        tracing::warn!(error = %err, "could not clear the queue marker");
    }
    let run = metrics::run_started();
    if job.attempts > ctx.settings.max_attempts {
        let message = format!(
            "The order summary could not be produced after {} attempts. Please try again later.",
            ctx.settings.max_attempts
        );
        mark_failed(ctx, &job, &message).await;
        run.ended(RunOutcome::Failed);
        return;
    }
    match execute(ctx, &job).await {
        Ok(Outcome::Succeeded {
            paid_rows,
            unpaid_rows,
            size,
            elapsed,
        }) => {
            tracing::info!(
                paid_rows,
                unpaid_rows,
                size,
                attempt = job.attempts,
                elapsed_ms = elapsed.as_millis() as u64,
                "job succeeded"
            );
            metrics::summary_stored(paid_rows, unpaid_rows, size);
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
        Err(err) if err.is_retryable() && job.attempts < ctx.settings.max_attempts => {
            let delay = ctx.settings.retry_delay(job.attempts);
            tracing::warn!(error = %err, attempt = job.attempts, delay_ms = delay.as_millis() as u64, "job failed; retrying");
            requeue(ctx, &job, delay).await;
            run.ended(RunOutcome::Retried);
        }
        Err(err) => {
            tracing::error!(error = %err, attempt = job.attempts, "job failed");
            mark_failed(ctx, &job, &err.customer_message(&ctx.settings)).await;
            run.ended(RunOutcome::Failed);
        }
    }
}

/// This process's attempt at `job`, which every update of the row names.
fn owner<'a>(ctx: &'a JobContext, job: &Job) -> repo::Attempt<'a> {
    repo::Attempt {
        worker_id: &ctx.worker_id,
        attempt: job.attempts,
    }
}

/// Puts the job back in the queue to run after `delay`. When Postgres or
/// Redis refuses, the sweeper finishes the work (stale heartbeat, or queued
/// with no push behind it).
async fn requeue(ctx: &JobContext, job: &Job, delay: Duration) {
    match repo::requeue_job(&ctx.pool, job.id, owner(ctx, job), delay.as_secs_f64()).await {
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
    match repo::fail_job(&ctx.pool, job.id, owner(ctx, job), message).await {
        Ok(true) => {}
        Ok(false) => tracing::info!("job no longer ours; not marked failed"),
        Err(err) => {
            tracing::error!(error = %err, "could not mark the job failed; the sweeper will retry it");
        }
    }
}

/// The job, now running for this worker; or the status that keeps it from
/// running (`None`: no such row).
async fn claim(
    ctx: &JobContext,
    job_id: Uuid,
) -> Result<Result<Job, Option<JobStatus>>, sqlx::Error> {
    let deadline = Instant::now() + ROW_VISIBILITY_WAIT;
    loop {
        if let Some(job) = repo::claim_job(
            &ctx.pool,
            job_id,
            &ctx.worker_id,
            ctx.settings.stale_after(),
        )
        .await?
        {
            return Ok(Ok(job));
        }
        match repo::find_job(&ctx.pool, job_id).await? {
            // Queued: it became visible between the two queries; claim again.
            Some(job) if job.status == JobStatus::Queued => {}
            Some(job) => return Ok(Err(Some(job.status))),
            None if Instant::now() >= deadline => return Ok(Err(None)),
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Shared by the job's work and its heartbeat.
#[derive(Debug, Default)]
struct JobState {
    paid: AtomicU64,
    unpaid: AtomicU64,
    /// The work must stop at the next page.
    stop: AtomicBool,
    /// The row is no longer running for this worker (cancelled, or taken
    /// back by the sweeper after this worker stopped beating).
    lost: AtomicBool,
}

impl JobState {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// Produces the job under its heartbeat, its time limit and the shutdown
/// hand-back.
async fn execute(ctx: &JobContext, job: &Job) -> Result<Outcome, JobError> {
    let state = Arc::new(JobState::default());
    let work = produce(ctx, job, &state);
    let limit = Duration::from_secs(ctx.settings.job_timeout_secs.max(1));
    let deadline = tokio::time::sleep(limit);
    let handback = handback_requested(ctx.handback.subscribe());
    tokio::pin!(work, deadline, handback);
    let mut tick = tokio::time::interval(ctx.settings.progress_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => heartbeat(ctx, job, &state).await,
            () = &mut deadline => {
                state.stop.store(true, Ordering::SeqCst);
                break Err(JobError::TimedOut(limit));
            }
            () = &mut handback => {
                state.stop.store(true, Ordering::SeqCst);
                break Ok(Outcome::HandedBack);
            }
        }
    };
    let Err(err) = out else { return out };
    // A job that is no longer ours is neither retried nor failed by this
    // attempt (e.g. a worker paused past the staleness limit, whose temp
    // directory was swept meanwhile): one more beat tells.
    if !state.lost() {
        heartbeat(ctx, job, &state).await;
    }
    if state.lost() {
        tracing::info!(error = %err, "attempt failed after losing its job");
        return Ok(Outcome::Abandoned);
    }
    Err(err)
}

/// Resolves once the hand-back is asked for; never if it cannot be.
async fn handback_requested(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|handback| *handback).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Writes progress and the heartbeat; a row no longer running for this
/// worker (cancelled, or taken back) stops the work.
async fn heartbeat(ctx: &JobContext, job: &Job, state: &JobState) {
    let (paid, unpaid) = (
        state.paid.load(Ordering::Relaxed),
        state.unpaid.load(Ordering::Relaxed),
    );
    match repo::record_progress(
        &ctx.pool,
        job.id,
        owner(ctx, job),
        paid as i64,
        unpaid as i64,
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            state.lost.store(true, Ordering::SeqCst);
            state.stop.store(true, Ordering::SeqCst);
        }
        Err(err) => tracing::warn!(error = %err, "could not record progress"),
    }
}

/// Export, upload, finish.
async fn produce(ctx: &JobContext, job: &Job, state: &Arc<JobState>) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let request: SummaryRequest = serde_json::from_value(job.request.0.clone())
        .map_err(|err| JobError::Request(err.to_string()))?;
    let tz: Tz = request
        .time_zone
        .parse()
        .map_err(|err| JobError::Request(format!("{err}")))?;
    let file_name = file_name(&request, job.id, tz);
    // rust_xlsxwriter's temp files live in a directory of this attempt,
    // removed on every path (the sweeper removes those of workers that died).
    let dir = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", job.id))
        .tempdir_in(ctx.settings.temp_dir())?;
    // This attempt's own key: whatever happens to this attempt, it never
    // touches another attempt's object.
    let key = ctx
        .store
        .object_key(job.company_id, job.id, job.attempts, &file_name);
    // The zip streams into the store while it is compressed.
    let (out, source) = ordersum_storage::pipe();
    let (exported, stored) = tokio::join!(
        export(ctx, job, &request, tz, dir.path(), out, state),
        ctx.store.put_stream(&key, source, &file_name),
    );
    let ((paid_rows, unpaid_rows), size) = match (exported, stored) {
        (Ok(counts), Ok(size)) => (counts, size),
        (Err(JobError::Cancelled), _) if state.lost() => {
            return Ok(Outcome::Abandoned);
        }
        // The store stopped because the export failed: the export's error.
        (Err(err), Err(stored)) if stored.is_writer_gave_up() => return Err(err),
        // The export stopped because the store failed: the store's error.
        (_, Err(err)) => return Err(err.into()),
        (Err(err), Ok(_)) => {
            // Not reached (a writer that did not finish fails the store), but
            // a stored object must never outlive a failed export.
            ctx.store.delete(&key).await?;
            return Err(err);
        }
    };
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        size,
        "exported and stored"
    );
    drop(dir);
    let file = FinishedFile {
        key: key.clone(),
        name: file_name,
        size: size as i64,
        paid_rows: paid_rows as i64,
        unpaid_rows: unpaid_rows as i64,
    };
    if !repo::finish_job(
        &ctx.pool,
        job.id,
        owner(ctx, job),
        &file,
        ctx.settings.retention_secs(),
    )
    .await?
    {
        // Cancelled (or taken back) while uploading: this attempt's object
        // must not outlive it; the winner's, under its own key, is untouched.
        ctx.store.delete(&key).await?;
        return Ok(Outcome::Abandoned);
    }
    Ok(Outcome::Succeeded {
        paid_rows,
        unpaid_rows,
        size,
        elapsed: started.elapsed(),
    })
}

/// Names of per-attempt temp directories: `ordersum-job-<job id>-<random>`.
pub const TEMP_PREFIX: &str = "ordersum-job-";

/// `order-summary-20240701-20240801-<short id>.xlsx`, dates in the request's zone.
pub fn file_name(request: &SummaryRequest, job_id: Uuid, tz: Tz) -> String {
    let day = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .with_timezone(&tz)
            .format("%Y%m%d")
            .to_string()
    };
    let id = job_id.simple().to_string();
    let short = &id[id.len() - 8..];
    format!(
        "order-summary-{}-{}-{short}.xlsx",
        day(request.start_time),
        day(request.end_time)
    )
}

/// Writes the job's workbook into `out`; answers (paid, unpaid) rows.
async fn export(
    ctx: &JobContext,
    job: &Job,
    request: &SummaryRequest,
    tz: Tz,
    temp_dir: &Path,
    out: PipeWriter,
    state: &Arc<JobState>,
) -> Result<(u64, u64), JobError> {
    let labels = Labels::from_rows(repo::enum_labels(&ctx.pool).await?);
    let query = OrderQuery::new(job.company_id, request, ctx.settings.page_size);
    let options = WorkbookOptions {
        time_zone: tz,
        max_rows_per_sheet: ctx.settings.sheet_max_rows.max(1),
        zip_level: ctx.settings.zip_level,
    };
    let (pages_tx, pages_rx) = mpsc::channel(PAGES_IN_FLIGHT);
    let writer = {
        let (state, temp_dir) = (state.clone(), temp_dir.to_owned());
        tokio::task::spawn_blocking(move || {
            write_pages(pages_rx, &temp_dir, labels, options, out, &state)
        })
    };
    let read = read_pages(&ctx.pool, &query, pages_tx, state).await;
    if read.is_err() {
        state.stop.store(true, Ordering::SeqCst);
    }
    let written = writer.await;
    read?;
    written??.ok_or(JobError::Cancelled)
}

/// Reads keyset pages into `pages` until the window is exhausted, the job
/// stops, or the writer has gone.
async fn read_pages(
    pool: &PgPool,
    query: &OrderQuery,
    pages: mpsc::Sender<Vec<OrderRow>>,
    state: &JobState,
) -> Result<(), sqlx::Error> {
    let mut cursor = query.first_cursor();
    while !state.stopping() {
        let page = query.fetch_page(pool, cursor).await?;
        let full = page.len() >= query.page_size();
        let Some(last) = page.last() else { break };
        cursor = (last.start_time, last.id);
        if pages.send(page).await.is_err() || !full {
            break;
        }
    }
    Ok(())
}

/// The blocking writer: every page into the workbook, then the file into
/// `out`. `None` when told to stop (nothing saved; `out` dropped unfinished).
fn write_pages(
    mut pages: mpsc::Receiver<Vec<OrderRow>>,
    temp_dir: &Path,
    labels: Labels,
    options: WorkbookOptions,
    mut out: PipeWriter,
    state: &JobState,
) -> Result<Option<(u64, u64)>, JobError> {
    let mut workbook = WorkbookWriter::new(temp_dir, labels, options)?;
    while let Some(page) = pages.blocking_recv() {
        if state.stopping() {
            return Ok(None);
        }
        for order in &page {
            workbook.write(order)?;
        }
        let (paid, unpaid) = workbook.counts();
        state.paid.store(paid, Ordering::Relaxed);
        state.unpaid.store(unpaid, Ordering::Relaxed);
    }
    if state.stopping() {
        return Ok(None);
    }
    let counts = workbook.counts();
    let saving = Instant::now();
    workbook.save(&mut out)?;
    out.finish()?;
    tracing::debug!(
        save_ms = saving.elapsed().as_millis() as u64,
        "workbook saved"
    );
    Ok(Some(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_window_in_the_requests_zone_and_a_short_id() {
        let request: SummaryRequest = serde_json::from_value(serde_json::json!({
            "StartTime": 1719792000, "EndTime": 1722470400, "TimeZone": "UTC"
        }))
        .expect("request");
        let id = Uuid::parse_str("01a21823-c04a-762f-852c-45d2bb320eb3").expect("uuid");
        assert_eq!(
            file_name(&request, id, Tz::UTC),
            "order-summary-20240701-20240801-bb320eb3.xlsx"
        );
        assert_eq!(
            file_name(&request, id, chrono_tz::America::New_York),
            "order-summary-20240630-20240731-bb320eb3.xlsx"
        );
    }

    #[test]
    fn connection_and_concurrency_failures_are_retryable_bad_data_is_not() {
        assert!(JobError::Database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(JobError::Io(std::io::Error::other("disk")).is_retryable());
        assert!(!JobError::Database(sqlx::Error::RowNotFound).is_retryable());
        assert!(!JobError::Request("bad".into()).is_retryable());
        assert!(!JobError::TimedOut(Duration::from_secs(60)).is_retryable());
    }
}
