//! The order-summary job: its lifecycle states, its row in `summary_jobs`
//! and the view of it the API answers with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a job is in `queued → running → succeeded | failed | cancelled`,
/// `succeeded → expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Expired,
    ];

    /// The value stored in `summary_jobs.status`.
    pub fn as_db(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Expired => "expired",
        }
    }

    /// The status stored as `text` in `summary_jobs.status`.
    pub fn from_db(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_db() == text)
    }

    /// Whether the job can still change on its own (a worker owes it work).
    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// Stored as its `as_db` text in `summary_jobs.status`.
impl sqlx::Type<sqlx::Postgres> for JobStatus {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for JobStatus {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_db(), buf)
    }
}

impl sqlx::Decode<'_, sqlx::Postgres> for JobStatus {
    fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        JobStatus::from_db(text).ok_or_else(|| format!("unknown job status {text:?}").into())
    }
}

/// A row of `summary_jobs`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub company_id: i64,
    pub request: sqlx::types::Json<serde_json::Value>,
    pub request_hash: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
    pub file_key: Option<String>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub error_message: Option<String>,
    pub worker_id: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Why a queued job is not started yet (the orders replica is behind).
    pub wait_reason: Option<String>,
    /// The orders replica's last replayed commit when this attempt began
    /// reading; `None`: read from the primary.
    pub orders_as_of: Option<DateTime<Utc>>,
}

/// Rows written so far per sheet (the totals once succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    pub paid_rows: i64,
    pub unpaid_rows: i64,
}

/// Where to fetch a finished summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Download {
    #[serde(rename = "DownloadURL")]
    pub download_url: String,
    pub file_name: String,
    pub file_size: i64,
}

/// The job as the API shows it: the top level of `GetOrderSummaryJob` and
/// each item of `ListOrderSummaryJobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobView {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub progress: Progress,
    pub create_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Why a queued job has not started yet (the orders replica is behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_reason: Option<String>,
    pub request: serde_json::Value,
    /// `{}` until the job has succeeded.
    #[serde(with = "data_or_empty")]
    pub data: Option<Download>,
}

impl JobView {
    /// The view of `job`, with `download` when it has succeeded.
    pub fn new(job: &Job, download: Option<Download>) -> Self {
        JobView {
            job_id: job.id,
            status: job.status,
            progress: Progress {
                paid_rows: job.paid_rows,
                unpaid_rows: job.unpaid_rows,
            },
            create_time: job.created_at.timestamp(),
            run_time: job.started_at.map(|t| t.timestamp()),
            finish_time: job.finished_at.map(|t| t.timestamp()),
            expire_time: job.expires_at.map(|t| t.timestamp()),
            error_message: job
                .error_message
                .clone()
                .filter(|_| job.status == JobStatus::Failed),
            wait_reason: job
                .wait_reason
                .clone()
                .filter(|_| job.status == JobStatus::Queued),
            request: job.request.0.clone(),
            data: download.filter(|_| job.status == JobStatus::Succeeded),
        }
    }
}

/// `DownloadOrderSummary`'s answer: the job, its status and, once it has
/// succeeded (within `WaitSeconds`, or an equal fresh job), its file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Submitted {
    pub job_id: Uuid,
    pub status: JobStatus,
    #[serde(serialize_with = "data_or_empty::serialize")]
    pub data: Option<Download>,
}

impl From<JobView> for Submitted {
    fn from(view: JobView) -> Self {
        Submitted {
            job_id: view.job_id,
            status: view.status,
            data: view.data,
        }
    }
}

/// `Data` is `{}` rather than `null` while there is nothing to download, as
/// UCloud's SDKs expect an object.
mod data_or_empty {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Download;

    pub fn serialize<S: Serializer>(data: &Option<Download>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(download) => download.serialize(s),
            None => serde_json::Map::new().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Download>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(serde_json::from_value(value).ok())
    }
}
