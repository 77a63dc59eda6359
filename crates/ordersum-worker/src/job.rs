//! One order-summary job: claim it, stream its orders page by page into the
//! workbook (reader task → bounded channel → writer in `spawn_blocking`),
//! upload the file, finish the row. Progress and the heartbeat are written
//! about once a second, and a cancelled job stops at the next page.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, Data};
use chrono::DateTime;
use chrono_tz::Tz;
use ordersum_model::repo::{self, FinishedFile};
use ordersum_model::{Job, JobMessage, JobStatus, SummaryRequest};
use ordersum_storage::{StorageError, Store};
use rust_xlsxwriter::XlsxError;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

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
    pub settings: Settings,
    pub worker_id: String,
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
    #[error("cancelled")]
    Cancelled,
}

/// How a delivery ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        paid_rows: u64,
        unpaid_rows: u64,
        size: u64,
        elapsed: Duration,
    },
    Cancelled,
    /// Not queued: taken by another delivery, cancelled or finished before.
    Skipped(Option<JobStatus>),
}

/// The apalis handler. Errors are logged here and the job marked failed, so
/// apalis never redelivers a job this worker has settled.
pub async fn handle(message: JobMessage, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("job", job_id = %message.job_id, worker = %ctx.worker_id);
    settle(&ctx, message.job_id).instrument(span).await;
    Ok(())
}

async fn settle(ctx: &JobContext, job_id: Uuid) {
    match run(ctx, job_id).await {
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
                elapsed_ms = elapsed.as_millis() as u64,
                "job succeeded"
            );
        }
        Ok(Outcome::Cancelled) => tracing::info!("job cancelled; stopped and cleaned up"),
        Ok(Outcome::Skipped(status)) => tracing::info!(?status, "job not queued; skipped"),
        Err(err) => {
            tracing::error!(error = %err, "job failed");
            let message = "The order summary could not be produced. Please try again later.";
            if let Err(mark) = repo::fail_job(&ctx.pool, job_id, &ctx.worker_id, message).await {
                tracing::error!(error = %mark, "could not mark the job failed");
            }
        }
    }
}

/// Runs one delivery of `job_id`.
pub async fn run(ctx: &JobContext, job_id: Uuid) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let job = match claim(ctx, job_id).await? {
        Ok(job) => job,
        Err(status) => return Ok(Outcome::Skipped(status)),
    };
    let request: SummaryRequest = serde_json::from_value(job.request.0.clone())
        .map_err(|err| JobError::Request(err.to_string()))?;
    let tz: Tz = request
        .time_zone
        .parse()
        .map_err(|err| JobError::Request(format!("{err}")))?;
    let file_name = file_name(&request, job.id, tz);
    let temp = tempfile::Builder::new()
        .prefix("ordersum-")
        .suffix(".xlsx")
        .tempfile_in(ctx.settings.temp_dir())?
        .into_temp_path();
    let (paid_rows, unpaid_rows) = match export(ctx, &job, &request, tz, &temp).await {
        Ok(counts) => counts,
        Err(JobError::Cancelled) => return Ok(Outcome::Cancelled),
        Err(err) => return Err(err),
    };
    let key = ctx.store.object_key(job.company_id, job.id, &file_name);
    let size = ctx.store.put_file(&key, &temp, &file_name).await?;
    drop(temp);
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
        &ctx.worker_id,
        &file,
        ctx.settings.retention_secs(),
    )
    .await?
    {
        // Cancelled while uploading: the object must not outlive the job.
        ctx.store.delete(&key).await?;
        return Ok(Outcome::Cancelled);
    }
    Ok(Outcome::Succeeded {
        paid_rows,
        unpaid_rows,
        size,
        elapsed: started.elapsed(),
    })
}

/// The job, now running for this worker; or the status that keeps it from
/// running (`None`: no such row).
async fn claim(ctx: &JobContext, job_id: Uuid) -> Result<Result<Job, Option<JobStatus>>, JobError> {
    let deadline = Instant::now() + ROW_VISIBILITY_WAIT;
    loop {
        if let Some(job) = repo::claim_job(&ctx.pool, job_id, &ctx.worker_id).await? {
            return Ok(Ok(job));
        }
        match repo::find_job(&ctx.pool, job_id).await? {
            Some(job) => return Ok(Err(Some(job.status))),
            None if Instant::now() >= deadline => return Ok(Err(None)),
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

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

/// Rows written so far, shared between the writer and the progress loop.
#[derive(Debug, Default)]
struct Progress {
    paid: AtomicU64,
    unpaid: AtomicU64,
}

/// Writes the job's workbook to `path`; answers (paid, unpaid) rows.
async fn export(
    ctx: &JobContext,
    job: &Job,
    request: &SummaryRequest,
    tz: Tz,
    path: &Path,
) -> Result<(u64, u64), JobError> {
    let labels = Labels::from_rows(repo::enum_labels(&ctx.pool).await?);
    let query = OrderQuery::new(job.company_id, request, ctx.settings.page_size);
    let options = WorkbookOptions {
        time_zone: tz,
        max_rows_per_sheet: ctx.settings.sheet_max_rows.max(1),
        zip_level: ctx.settings.zip_level,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cancelled = AtomicBool::new(false);
    let progress = Arc::new(Progress::default());
    let (pages_tx, pages_rx) = mpsc::channel(PAGES_IN_FLIGHT);

    let writer = {
        let (stop, progress, path, temp_dir) = (
            stop.clone(),
            progress.clone(),
            path.to_owned(),
            ctx.settings.temp_dir(),
        );
        tokio::task::spawn_blocking(move || {
            write_pages(
                pages_rx, &temp_dir, labels, options, &path, &stop, &progress,
            )
        })
    };
    let reader = read_pages(&ctx.pool, &query, pages_tx, &stop);
    let work = async {
        let read = reader.await;
        if read.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        (read, writer.await)
    };
    tokio::pin!(work);
    let mut tick = tokio::time::interval(ctx.settings.progress_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (read, written) = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => {
                let (paid, unpaid) = (progress.paid.load(Ordering::Relaxed), progress.unpaid.load(Ordering::Relaxed));
                match repo::record_progress(&ctx.pool, job.id, &ctx.worker_id, paid as i64, unpaid as i64).await {
                    Ok(true) => {}
                    Ok(false) => {
                        cancelled.store(true, Ordering::SeqCst);
                        stop.store(true, Ordering::SeqCst);
                    }
                    Err(err) => tracing::warn!(error = %err, "could not record progress"),
                }
            }
        }
    };
    if cancelled.load(Ordering::SeqCst) {
        return Err(JobError::Cancelled);
    }
    read?;
    written??.ok_or(JobError::Cancelled)
}

/// Reads keyset pages into `pages` until the window is exhausted, `stop` is
/// set, or the writer has gone.
async fn read_pages(
    pool: &PgPool,
    query: &OrderQuery,
    pages: mpsc::Sender<Vec<OrderRow>>,
    stop: &AtomicBool,
) -> Result<(), sqlx::Error> {
    let mut cursor = query.first_cursor();
    while !stop.load(Ordering::SeqCst) {
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

/// The blocking writer: every page into the workbook, then the file. `None`
/// when told to stop (nothing saved).
fn write_pages(
    mut pages: mpsc::Receiver<Vec<OrderRow>>,
    temp_dir: &Path,
    labels: Labels,
    options: WorkbookOptions,
    path: &Path,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<Option<(u64, u64)>, JobError> {
    let mut workbook = WorkbookWriter::new(temp_dir, labels, options)?;
    while let Some(page) = pages.blocking_recv() {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        for order in &page {
            workbook.write(order)?;
        }
        let (paid, unpaid) = workbook.counts();
        progress.paid.store(paid, Ordering::Relaxed);
        progress.unpaid.store(unpaid, Ordering::Relaxed);
    }
    if stop.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let counts = workbook.counts();
    workbook.save(path)?;
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
}
