//! Domain of ordersum shared by the API, the worker and the CLI: the
//! `DownloadOrderSummary` request and its validation, the job and its
//! lifecycle, RetCodes, UCloud request signatures, the job repository and the
//! migrations. It depends on neither axum nor apalis.

pub mod job;
pub mod params;
pub mod repo;
pub mod request;
pub mod retcode;
pub mod runtime;
pub mod signature;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use job::{Job, JobStatus, JobView};
pub use params::Params;
pub use request::{Limits, SummaryRequest};
pub use retcode::ApiError;

/// The schema, applied by both binaries at start and by `ordersum migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Name of the Redis queue (apalis-redis namespace) that carries job ids.
pub const DEFAULT_QUEUE: &str = "ordersum:summary-jobs";

/// What the queue carries: only the job id. The `summary_jobs` row holds the
/// request, so a message can be re-pushed at any time without losing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}
