//! The console's JSON API (`/admin/api/…`). Signed in by the session cookie
//! or `Authorization: Bearer`; every POST with the cookie needs the CSRF
//! token in `X-CSRF-Token` and must not come from another origin. Jobs
//! change only as the public API and the workers change them: a cancel is
//! the customer's cancel, a retry is a new job of the same company with the
//! same request (the failed one stays as it was, for the record).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, Utc};
use ordersum_model::store::console::{JobFilter, JobRow, MinuteCount};
use ordersum_model::store::workers::WORKER_STALE_AFTER;
use ordersum_model::{JobStatus, store};
use uuid::Uuid;

pub use super::error::AdminError;
use super::error::Result;
pub use super::signed::Signed;
use super::views::{self, ConsoleJob, retryable, time};
use crate::jobs;
use crate::state::AppState;

/// Jobs one list answers by default, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// Companies the companies page shows at most.
const MAX_COMPANIES: i64 = 200;
/// Silent workers stay listed (as stale) this long.
const WORKERS_SHOWN_FOR: Duration = Duration::from_secs(3600);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api/overview", get(overview))
        .route("/admin/api/jobs", get(jobs))
        .route("/admin/api/jobs/{id}", get(job))
        .route("/admin/api/jobs/{id}/cancel", post(cancel))
        .route("/admin/api/jobs/{id}/retry", post(retry))
        .route("/admin/api/jobs/{id}/link", get(link))
        .route("/admin/api/workers", get(workers))
        .route("/admin/api/companies", get(companies))
        .route("/admin/api/webhooks", get(webhooks))
}

async fn overview(_: Signed, State(state): State<AppState>) -> Result<Json<views::Overview>> {
    let view = store::console::overview(&state.pool, WORKER_STALE_AFTER).await?;
    let statuses: BTreeMap<&'static str, i64> = JobStatus::ALL
        .into_iter()
        .map(|status| {
            let count = view
                .statuses
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            (status.as_db(), count)
        })
        .collect();
    let count = |status: JobStatus| statuses.get(status.as_db()).copied().unwrap_or(0);
    let (queued, running) = (count(JobStatus::Queued), count(JobStatus::Running));
    let this_minute = view
        .now
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(view.now);
    let minutes = (0..60)
        .rev()
        .map(|ago| {
            let minute = this_minute - TimeDelta::minutes(ago);
            let (succeeded, failed) = view
                .minutes
                .iter()
                .find(|m| m.minute == minute)
                .map_or((0, 0), |m| (m.succeeded, m.failed));
            views::Minute {
                minute: time(minute),
                succeeded,
                failed,
            }
        })
        .collect();
    let total = |pick: fn(&MinuteCount) -> i64| view.minutes.iter().map(pick).sum::<i64>();
    Ok(Json(views::Overview {
        now: time(view.now),
        statuses,
        queue_depth: queued,
        oldest_queued_age_secs: view.oldest_queued_age_secs,
        running,
        workers_live: view.workers_live,
        last_hour: views::LastHour {
            succeeded: total(|m| m.succeeded),
            failed: total(|m| m.failed),
            cancelled: total(|m| m.cancelled),
            minutes,
        },
    }))
}

/// A time filter: RFC 3339, Unix seconds, or a zone-less date and time
/// (`2026-12-02T10:00`, taken as UTC).
fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| AdminError::Bad(format!("{name}: out of range")));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            AdminError::Bad(format!(
                "{name}: expected RFC 3339 (2026-12-02T10:00:00Z) or Unix seconds"
            ))
        })
}

fn job_filter(query: &HashMap<String, String>) -> Result<JobFilter> {
    let given = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let statuses = match given("status") {
        None => None,
        Some("active") => Some(vec![JobStatus::Queued, JobStatus::Running]),
        Some(text) => Some(vec![JobStatus::from_db(text).ok_or_else(|| {
            AdminError::Bad(format!(
                "status: one of queued, running, succeeded, failed, cancelled, expired, active; not {text:?}"
            ))
        })?]),
    };
    let company_id = given("company")
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| AdminError::Bad(format!("company: a company id, not {text:?}")))
        })
        .transpose()?;
    let limit = given("limit")
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| AdminError::Bad(format!("limit: 1 to {MAX_LIMIT}")))
        })
        .transpose()?
        .unwrap_or(DEFAULT_LIMIT);
    Ok(JobFilter {
        statuses,
        company_id,
        created_since: given("since").map(|v| parse_time("since", v)).transpose()?,
        created_until: given("until").map(|v| parse_time("until", v)).transpose()?,
        limit,
    })
}

async fn jobs(
    _: Signed,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<views::Jobs>> {
    let filter = job_filter(&query)?;
    let rows = store::console::list_jobs(&state.pool, &filter).await?;
    Ok(Json(views::Jobs {
        jobs: rows.iter().map(ConsoleJob::from).collect(),
    }))
}

fn job_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| AdminError::NotFound)
}

async fn find(state: &AppState, id: Uuid) -> Result<JobRow> {
    store::console::get_job(&state.pool, id)
        .await?
        .ok_or(AdminError::NotFound)
}

async fn job(
    _: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<views::JobDetail>> {
    let id = job_id(&id)?;
    let row = find(&state, id).await?;
    let (request, attempts, retries, webhooks) = tokio::try_join!(
        store::console::job_request(&state.pool, id),
        store::console::job_attempts(&state.pool, id),
        store::console::retries_of(&state.pool, id),
        store::console::job_webhooks(&state.pool, id),
    )?;
    Ok(Json(views::JobDetail {
        job: ConsoleJob::from(&row),
        request,
        timeline: views::timeline(&row, &attempts),
        attempts: attempts.iter().map(views::ConsoleAttempt::from).collect(),
        retries,
        webhooks,
        can_cancel: row.status.is_active(),
        can_retry: retryable(row.status),
        can_download: row.status == JobStatus::Succeeded && row.file_key.is_some(),
    }))
}

async fn cancel(
    Signed { peer }: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<views::OneJob>> {
    let id = job_id(&id)?;
    let row = find(&state, id).await?;
    if store::jobs::cancel_job(&state.pool, row.company_id, id)
        .await?
        .is_none()
    {
        let now = find(&state, id).await?;
        return Err(AdminError::Conflict(
            format!(
                "The job is {}: only a queued or running job can be cancelled.",
                now.status.as_db()
            ),
            None,
        ));
    }
    tracing::info!(job_id = %id, company_id = row.company_id, %peer, "job cancelled by the operator");
    let job = ConsoleJob::from(&find(&state, id).await?);
    Ok(Json(views::OneJob { job }))
}

async fn retry(
    Signed { peer }: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let old = job_id(&id)?;
    let row = find(&state, old).await?;
    if !retryable(row.status) {
        return Err(AdminError::Conflict(
            format!(
                "The job is {}: only a failed, cancelled or expired job can be retried.",
                row.status.as_db()
            ),
            None,
        ));
    }
    let new = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    store::jobs::lock_company(&mut tx, row.company_id).await?;
    // Queued or running only: a succeeded job is never "fresh" for zero seconds.
    let live =
        store::jobs::find_reusable_job(&mut tx, row.company_id, &row.request_hash, Duration::ZERO);
    if let Some(equal) = live.await? {
        return Err(AdminError::Conflict(
            "An equal job of this company is already queued or running.".into(),
            Some(equal.id),
        ));
    }
    if store::console::insert_retry(&mut tx, new, old)
        .await?
        .is_none()
    {
        return Err(AdminError::Conflict(
            "The job changed meanwhile; reload it.".into(),
            None,
        ));
    }
    jobs::stage(&state, new).await?;
    tx.commit().await?;
    jobs::announce(&state, new).await;
    ::metrics::counter!(crate::metrics::JOBS_ENQUEUED_TOTAL).increment(1);
    tracing::info!(job_id = %new, retry_of = %old, company_id = row.company_id, %peer, "job retried by the operator");
    let job = ConsoleJob::from(&find(&state, new).await?);
    Ok((StatusCode::CREATED, Json(views::OneJob { job })).into_response())
}

async fn link(
    Signed { peer }: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<views::Link>> {
    let row = find(&state, job_id(&id)?).await?;
    let download = jobs::file_link(
        &state,
        row.status,
        row.file_key.as_deref(),
        row.file_name.as_deref(),
        row.file_size,
    )
    .await?
    .ok_or_else(|| {
        AdminError::Conflict(
            format!(
                "The job is {}: only a succeeded job has a file.",
                row.status.as_db()
            ),
            None,
        )
    })?;
    tracing::info!(job_id = %row.id, %peer, "download link handed to the operator");
    Ok(Json(views::Link {
        url: download.download_url,
        file_name: download.file_name,
        file_size: download.file_size,
        expires_in_secs: state.settings.storage.url_ttl().as_secs(),
    }))
}

async fn workers(_: Signed, State(state): State<AppState>) -> Result<Json<views::Workers>> {
    let rows = store::workers::workers(&state.pool, WORKERS_SHOWN_FOR).await?;
    let stale_after_secs = WORKER_STALE_AFTER.as_secs_f64();
    Ok(Json(views::Workers {
        stale_after_secs,
        workers: rows
            .iter()
            .map(|w| views::ConsoleWorker::new(w, stale_after_secs))
            .collect(),
    }))
}

async fn companies(_: Signed, State(state): State<AppState>) -> Result<Json<views::Companies>> {
    let cap = state.settings.max_active_jobs;
    let rows = store::console::companies(&state.pool, MAX_COMPANIES).await?;
    Ok(Json(views::Companies {
        cap,
        companies: rows
            .iter()
            .map(|c| views::ConsoleCompany::new(c, cap))
            .collect(),
    }))
}

/// Endpoints shown at most.
const MAX_ENDPOINTS: i64 = 200;

async fn webhooks(_: Signed, State(state): State<AppState>) -> Result<Json<views::Webhooks>> {
    let endpoints = store::console::webhook_endpoints(&state.pool, MAX_ENDPOINTS).await?;
    Ok(Json(views::Webhooks { endpoints }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters_take_rfc3339_unix_seconds_and_zone_less_times() {
        let expected = DateTime::from_timestamp(1_764_669_600, 0).expect("time");
        assert_eq!(
            parse_time("since", "2025-12-02T10:00:00Z").ok(),
            Some(expected)
        );
        assert_eq!(parse_time("since", "1764669600").ok(), Some(expected));
        assert_eq!(parse_time("since", "2025-12-02T10:00").ok(), Some(expected));
        assert!(matches!(
            parse_time("since", "yesterday"),
            Err(AdminError::Bad(_))
        ));
    }

    #[test]
    fn bad_filters_are_refused_with_what_is_expected() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert!(
            matches!(job_filter(&query(&[("status", "done")])), Err(AdminError::Bad(m)) if m.contains("status"))
        );
        assert!(
            matches!(job_filter(&query(&[("company", "x")])), Err(AdminError::Bad(m)) if m.contains("company"))
        );
        assert!(matches!(
            job_filter(&query(&[("limit", "0")])),
            Err(AdminError::Bad(_))
        ));
        let filter = job_filter(&query(&[("status", "active"), ("company", "7")])).expect("filter");
        assert_eq!(
            filter.statuses,
            Some(vec![JobStatus::Queued, JobStatus::Running])
        );
        assert_eq!(filter.company_id, Some(7));
        assert_eq!(filter.limit, DEFAULT_LIMIT);
    }
}
