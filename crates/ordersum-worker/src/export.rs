//! The order-summary export, the [`Work`] of an order-summary job: the
//! request's orders read in keyset pages (reader task → bounded channel →
//! writer in `spawn_blocking`) into the workbook, whose zip streams into the
//! store as it is compressed, under this attempt's own object key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::DateTime;
use chrono_tz::Tz;
use ordersum_model::pool::Db;
use ordersum_model::store;
use ordersum_model::store::attempts::FinishedFile;
use ordersum_model::{Job, SummaryRequest};
use ordersum_storage::{PipeWriter, StorageError};
use rust_xlsxwriter::XlsxError;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::context::JobContext;
use crate::orders::{OrderQuery, OrderRow};
use crate::runner::{Attempt, Work, WorkError};
use crate::workbook::{Labels, WorkbookOptions, WorkbookWriter};

/// Pages read ahead of the writer: bounds memory to a few pages.
const PAGES_IN_FLIGHT: usize = 2;

/// Names of per-attempt temp directories: `ordersum-job-<job id>-<random>`.
pub const TEMP_PREFIX: &str = "ordersum-job-";

/// The order summary of a `DownloadOrderSummary` request.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderSummary;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
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
    #[error("stopped")]
    Stopped,
}

impl WorkError for ExportError {
    /// Postgres, the store or the disk were unavailable or failed
    /// transiently. Bad data and bugs are not retried.
    fn is_retryable(&self) -> bool {
        match self {
            ExportError::Database(err) => ordersum_model::db::is_transient(err),
            ExportError::Storage(err) => err.is_retryable(),
            ExportError::Io(_) | ExportError::Workbook(XlsxError::IoError(_)) => true,
            _ => false,
        }
    }

    fn customer_message(&self) -> Option<String> {
        matches!(self, ExportError::Request(_)).then(|| {
            "The request of this job could not be read. Please submit it again.".to_owned()
        })
    }
}

impl Work for OrderSummary {
    type Error = ExportError;

    async fn produce(
        &self,
        ctx: &JobContext,
        job: &Job,
        attempt: &Arc<Attempt>,
    ) -> Result<FinishedFile, ExportError> {
        let started = Instant::now();
        let request: SummaryRequest = serde_json::from_value(job.request.0.clone())
            .map_err(|err| ExportError::Request(err.to_string()))?;
        let tz: Tz = request
            .time_zone
            .parse()
            .map_err(|err| ExportError::Request(format!("{err}")))?;
        let file_name = file_name(&request, job.id, tz);
        // rust_xlsxwriter's temp files live in a directory of this attempt,
        // removed on every path (the sweeper removes those of workers that
        // died).
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", job.id))
            .tempdir_in(ctx.settings.temp_dir())?;
        // This attempt's own key: whatever happens to this attempt, it never
        // touches another attempt's object.
        let key = ctx
            .store
            .object_key(job.company_id, job.id, job.attempts, &file_name);
        let (out, source) = ordersum_storage::pipe();
        let (written, stored) = tokio::join!(
            stream_workbook(ctx, job, &request, tz, dir.path(), out, attempt),
            ctx.store.put_stream(&key, source, &file_name),
        );
        let ((paid_rows, unpaid_rows), size) = match (written, stored) {
            (Ok(counts), Ok(size)) => (counts, size),
            // The store stopped because the export failed: the export's error.
            (Err(err), Err(stored)) if stored.is_writer_gave_up() => return Err(err),
            // The export stopped because the store failed: the store's error.
            (_, Err(err)) => return Err(err.into()),
            (Err(err), Ok(_)) => {
                // Not reached (a writer that did not finish fails the store),
                // but a stored object must never outlive a failed export.
                ctx.store.delete(&key).await?;
                return Err(err);
            }
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            size,
            "exported and stored"
        );
        Ok(FinishedFile {
            key,
            name: file_name,
            size: size as i64,
            paid_rows: paid_rows as i64,
            unpaid_rows: unpaid_rows as i64,
        })
    }

    async fn discard(&self, ctx: &JobContext, file: &FinishedFile) -> Result<(), ExportError> {
        Ok(ctx.store.delete(&file.key).await?)
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

/// Streams the job's workbook into `out`: pages read here, written by a
/// blocking task; answers (paid, unpaid) rows.
async fn stream_workbook(
    ctx: &JobContext,
    job: &Job,
    request: &SummaryRequest,
    tz: Tz,
    temp_dir: &Path,
    out: PipeWriter,
    attempt: &Arc<Attempt>,
) -> Result<(u64, u64), ExportError> {
    let query = OrderQuery::new(job.company_id, request, ctx.settings.page_size);
    let options = WorkbookOptions {
        time_zone: tz,
        max_rows_per_sheet: ctx.settings.sheet_max_rows,
        zip_level: ctx.settings.zip_level,
    };
    let (pages_tx, pages_rx) = mpsc::channel(PAGES_IN_FLIGHT);
    let pause = ctx
        .settings
        .test_pause_dir
        .as_ref()
        .map(|dir| TestPause::new(dir, job.id));
    // The first page is read while the labels are (two connections, one
    // round trip's wait); the writer starts once it has the labels.
    let reading = async {
        let read = read_pages(&ctx.orders.db, &query, pages_tx, attempt).await;
        if read.is_err() {
            attempt.request_stop();
        }
        read
    };
    let writing = async {
        let labels = match store::attempts::enum_labels(&ctx.orders.db).await {
            Ok(rows) => Labels::from_rows(rows),
            Err(err) => {
                attempt.request_stop();
                return Err(ExportError::from(err));
            }
        };
        let (attempt, temp_dir) = (attempt.clone(), temp_dir.to_owned());
        tokio::task::spawn_blocking(move || {
            write_workbook(pages_rx, &temp_dir, labels, options, out, &attempt, pause)
        })
        .await?
    };
    let (read, written) = tokio::join!(reading, writing);
    read?;
    written?.ok_or(ExportError::Stopped)
}

/// Reads keyset pages into `pages` until the window is exhausted, the
/// attempt stops, or the writer has gone.
async fn read_pages(
    pool: &Db,
    query: &OrderQuery,
    pages: mpsc::Sender<Vec<OrderRow>>,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    let mut cursor = query.first_cursor();
    while !attempt.stopping() {
        let mut tries = 1;
        let page = loop {
            match query.fetch_page(pool, cursor).await {
                Ok(page) => break page,
                Err(err) if crate::replica::read_again(&err, tries).await => tries += 1,
                Err(err) => return Err(err),
            }
        };
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
fn write_workbook(
    mut pages: mpsc::Receiver<Vec<OrderRow>>,
    temp_dir: &Path,
    labels: Labels,
    options: WorkbookOptions,
    mut out: PipeWriter,
    attempt: &Attempt,
    pause: Option<TestPause>,
) -> Result<Option<(u64, u64)>, ExportError> {
    let mut workbook = WorkbookWriter::new(temp_dir, labels, options)?;
    while let Some(page) = pages.blocking_recv() {
        if attempt.stopping() {
            return Ok(None);
        }
        for order in &page {
            workbook.write(order)?;
        }
        let (paid, unpaid) = workbook.counts();
        attempt.record_progress(paid, unpaid, page.last().map(|order| order.start_time));
    }
    if attempt.stopping() {
        return Ok(None);
    }
    let counts = workbook.counts();
    let saving = Instant::now();
    workbook.save(&mut out)?;
    if let Some(pause) = pause {
        pause.wait()?;
    }
    out.finish()?;
    tracing::debug!(
        save_ms = saving.elapsed().as_millis() as u64,
        "workbook saved"
    );
    Ok(Some(counts))
}

/// `ORDERSUM_TEST_PAUSE_DIR`: a point where tests stop a worker
/// deterministically (the whole workbook written into the store, the object
/// not completed).
struct TestPause {
    paused: PathBuf,
    go: PathBuf,
}

impl TestPause {
    fn new(dir: &Path, job_id: Uuid) -> Self {
        TestPause {
            paused: dir.join(format!("{job_id}.paused")),
            go: dir.join(format!("{job_id}.go")),
        }
    }

    /// Says it is here, then waits for the go.
    fn wait(&self) -> std::io::Result<()> {
        std::fs::write(&self.paused, b"")?;
        while !self.go.exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }
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
    fn unavailable_dependencies_are_retryable_bad_data_is_not() {
        assert!(ExportError::Database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(ExportError::Io(std::io::Error::other("disk")).is_retryable());
        assert!(!ExportError::Database(sqlx::Error::RowNotFound).is_retryable());
        assert!(!ExportError::Request("bad".into()).is_retryable());
        assert!(
            ExportError::Request("bad".into())
                .customer_message()
                .is_some_and(|m| m.contains("submit it again"))
        );
    }
}
