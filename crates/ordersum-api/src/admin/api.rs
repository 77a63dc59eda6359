//! The console's JSON API (`/admin/api/…`). Signed in by the session cookie
//! or `Authorization: Bearer`; every POST with the cookie needs the CSRF
//! token in `X-CSRF-Token` and must not come from another origin. Jobs
//! change only as the public API and the workers change them: a cancel is
//! the customer's cancel, a retry is a new job of the same company with the
//! same request (the failed one stays as it was, for the record).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, Utc};
use ordersum_model::store::console::{JobFilter, JobRow, MinuteCount};
use ordersum_model::store::workers::WORKER_STALE_AFTER;
use ordersum_model::{JobStatus, store};
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::{self, AdminAuth, Refusal};
use crate::error::Error;
use crate::jobs;
use crate::startup::AppState;

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
}

/// What the console is told when a call fails: a status and a message.
#[derive(Debug)]
pub enum AdminError {
    NotSignedIn,
    WrongToken,
    Limited(u64),
    Forbidden(&'static str),
    NotFound,
    Conflict(String, Option<Uuid>),
    Bad(String),
    /// Logged in full; the console sees an opaque message.
    Internal(Error),
}

impl From<Error> for AdminError {
    fn from(err: Error) -> Self {
        AdminError::Internal(err)
    }
}

impl From<sqlx::Error> for AdminError {
    fn from(err: sqlx::Error) -> Self {
        AdminError::Internal(err.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, message, job) = match self {
            AdminError::NotSignedIn => (StatusCode::UNAUTHORIZED, "Sign in first.".into(), None),
            AdminError::WrongToken => (StatusCode::UNAUTHORIZED, "Wrong token.".into(), None),
            AdminError::Limited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many wrong tokens from your address; wait {secs} seconds."),
                None,
            ),
            AdminError::Forbidden(why) => (StatusCode::FORBIDDEN, why.into(), None),
            AdminError::NotFound => (StatusCode::NOT_FOUND, "No such job.".into(), None),
            AdminError::Conflict(why, job) => (StatusCode::CONFLICT, why, job),
            AdminError::Bad(why) => (StatusCode::BAD_REQUEST, why, None),
            AdminError::Internal(err) => {
                tracing::error!(error = %err, "operator console call failed");
                let status = match err.to_api_error().ret_code() {
                    2001 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (
                    status,
                    "Internal error; the API's log has the cause.".into(),
                    None,
                )
            }
        };
        let mut body = json!({ "error": message });
        if let Some(job) = job {
            body["job_id"] = json!(job);
        }
        (status, Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// An operator's call: signed in by cookie (a session not signed out) or
/// Bearer; a call that changes something must also come from this origin
/// and, by cookie, carry the session's CSRF token. A handler taking it runs
/// for the operator only.
pub struct Signed {
    pub peer: SocketAddr,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0);
        let admin = parts
            .extensions
            .get::<Arc<AdminAuth>>()
            .cloned()
            .ok_or(AdminError::NotFound)?;
        // A script's Bearer token, or a browser's session (with its CSRF token).
        let session = match auth::bearer(&parts.headers) {
            Some(token) => {
                admin
                    .check_token(peer.ip(), token, "bearer")
                    .map_err(|refusal| match refusal {
                        Refusal::Wrong => AdminError::WrongToken,
                        Refusal::Limited(secs) => AdminError::Limited(secs),
                    })?;
                None
            }
            None => Some(
                super::signed_in(state, &admin, &parts.headers)
                    .await?
                    .ok_or(AdminError::NotSignedIn)?,
            ),
        };
        if parts.method == Method::GET || parts.method == Method::HEAD {
            return Ok(Signed { peer });
        }
        if !auth::same_origin(&parts.headers) {
            tracing::warn!(%peer, "console call from another origin refused");
            return Err(AdminError::Forbidden(
                "Calls from another origin are refused.",
            ));
        }
        if let Some(session) = &session {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if !auth::csrf_matches(&session.csrf, sent) {
                tracing::warn!(%peer, "console call without its CSRF token refused");
                return Err(AdminError::Forbidden(
                    "Missing or wrong X-CSRF-Token: reload the console.",
                ));
            }
        }
        Ok(Signed { peer })
    }
}

fn secs_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    Some((to? - from?).num_milliseconds() as f64 / 1000.0)
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn unix_time(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(time)
}

/// A job as the console shows it (see the module's contract).
fn job_json(job: &JobRow) -> Value {
    let until = job.finished_at.or(Some(job.read_at));
    json!({
        "id": job.id,
        "company_id": job.company_id,
        "status": job.status.as_db(),
        "attempts": job.attempts,
        "worker_id": job.worker_id,
        "paid_rows": job.paid_rows,
        "unpaid_rows": job.unpaid_rows,
        "progress": job.progress(),
        "created_at": time(job.created_at),
        "started_at": job.started_at.map(time),
        "finished_at": job.finished_at.map(time),
        "heartbeat_at": job.heartbeat_at.map(time),
        "wait_secs": secs_between(Some(job.created_at), job.started_at),
        "run_secs": job.started_at.and_then(|_| secs_between(job.started_at, until)),
        "file_name": job.file_name,
        "file_size": job.file_size,
        "error_message": job.error_message,
        "retry_of": job.retry_of,
        "window": { "start": unix_time(job.window_start), "end": unix_time(job.window_end) },
    })
}

async fn overview(_: Signed, State(state): State<AppState>) -> Result<Json<Value>> {
    let view = store::console::overview(&state.pool, WORKER_STALE_AFTER).await?;
    let mut statuses = serde_json::Map::new();
    for status in JobStatus::ALL {
        let count = view
            .statuses
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        statuses.insert(status.as_db().into(), json!(count));
    }
    let count = |status: JobStatus| statuses[status.as_db()].as_i64().unwrap_or(0);
    let (queued, running) = (count(JobStatus::Queued), count(JobStatus::Running));
    let this_minute = view
        .now
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(view.now);
    let minutes: Vec<Value> = (0..60)
        .rev()
        .map(|ago| {
            let minute = this_minute - TimeDelta::minutes(ago);
            let (succeeded, failed) = view
                .minutes
                .iter()
                .find(|m| m.minute == minute)
                .map_or((0, 0), |m| (m.succeeded, m.failed));
            json!({ "minute": time(minute), "succeeded": succeeded, "failed": failed })
        })
        .collect();
    let total = |pick: fn(&MinuteCount) -> i64| view.minutes.iter().map(pick).sum::<i64>();
    Ok(Json(json!({
        "now": time(view.now),
        "statuses": statuses,
        "queue_depth": queued,
        "oldest_queued_age_secs": view.oldest_queued_age_secs,
        "running": running,
        "workers_live": view.workers_live,
        "last_hour": {
            "succeeded": total(|m| m.succeeded),
            "failed": total(|m| m.failed),
            "cancelled": total(|m| m.cancelled),
            "minutes": minutes,
        },
    })))
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
) -> Result<Json<Value>> {
    let filter = job_filter(&query)?;
    let rows = store::console::list_jobs(&state.pool, &filter).await?;
    Ok(Json(
        json!({ "jobs": rows.iter().map(job_json).collect::<Vec<_>>() }),
    ))
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
) -> Result<Json<Value>> {
    let id = job_id(&id)?;
    let row = find(&state, id).await?;
    let (request, attempts, retries) = tokio::try_join!(
        store::console::job_request(&state.pool, id),
        store::console::job_attempts(&state.pool, id),
        store::console::retries_of(&state.pool, id),
    )?;
    let mut timeline = vec![json!({ "at": time(row.created_at), "event": "created" })];
    for attempt in &attempts {
        timeline.push(json!({
            "at": time(attempt.started_at),
            "event": format!("attempt {} started", attempt.attempt),
            "worker_id": attempt.worker_id,
        }));
        if let Some(ended) = attempt.ended_at {
            let outcome = attempt.outcome.as_deref().unwrap_or("ended");
            timeline.push(json!({
                "at": time(ended),
                "event": format!("attempt {} ended: {outcome}", attempt.attempt),
                "worker_id": attempt.worker_id,
            }));
        }
    }
    if let Some(finished) = row.finished_at {
        timeline.push(json!({
            "at": time(finished),
            "event": format!("finished: {}", row.status.as_db()),
        }));
    }
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "worker_id": a.worker_id,
                "started_at": time(a.started_at),
                "ended_at": a.ended_at.map(time),
                "outcome": a.outcome,
            })
        })
        .collect();
    Ok(Json(json!({
        "job": job_json(&row),
        "request": request,
        "timeline": timeline,
        "attempts": attempts,
        "retries": retries,
        "can_cancel": row.status.is_active(),
        "can_retry": retryable(row.status),
        "can_download": row.status == JobStatus::Succeeded && row.file_key.is_some(),
    })))
}

fn retryable(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Failed | JobStatus::Cancelled | JobStatus::Expired
    )
}

async fn cancel(
    Signed { peer }: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
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
    Ok(Json(json!({ "job": job_json(&find(&state, id).await?) })))
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
    let job = job_json(&find(&state, new).await?);
    Ok((StatusCode::CREATED, Json(json!({ "job": job }))).into_response())
}

async fn link(
    Signed { peer }: Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
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
    Ok(Json(json!({
        "url": download.download_url,
        "file_name": download.file_name,
        "file_size": download.file_size,
        "expires_in_secs": state.settings.storage.url_ttl().as_secs(),
    })))
}

async fn workers(_: Signed, State(state): State<AppState>) -> Result<Json<Value>> {
    let rows = store::workers::workers(&state.pool, WORKERS_SHOWN_FOR).await?;
    let stale_after = WORKER_STALE_AFTER.as_secs_f64();
    let workers: Vec<Value> = rows
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "concurrency": w.concurrency,
                "version": w.version,
                "jobs_in_hand": w.jobs,
                "started_at": time(w.started_at),
                "heartbeat_at": time(w.heartbeat_at),
                "heartbeat_age_secs": w.heartbeat_age_secs,
                "stale": w.heartbeat_age_secs > stale_after,
            })
        })
        .collect();
    Ok(Json(
        json!({ "stale_after_secs": stale_after, "workers": workers }),
    ))
}

async fn companies(_: Signed, State(state): State<AppState>) -> Result<Json<Value>> {
    let cap = state.settings.max_active_jobs;
    let rows = store::console::companies(&state.pool, MAX_COMPANIES).await?;
    let companies: Vec<Value> = rows
        .iter()
        .map(|c| {
            json!({
                "company_id": c.company_id,
                "queued": c.queued,
                "running": c.running,
                "active": c.queued + c.running,
                "cap": cap,
                "last_hour": c.last_hour,
                "failed_last_hour": c.failed_last_hour,
                "oldest_queued_age_secs": c.oldest_queued_age_secs,
            })
        })
        .collect();
    Ok(Json(json!({ "cap": cap, "companies": companies })))
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
