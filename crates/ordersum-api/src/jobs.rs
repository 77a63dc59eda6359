//! The job actions: DownloadOrderSummary, GetOrderSummaryJob,
//! ListOrderSummaryJobs and CancelOrderSummaryJob. Every query is scoped to
//! the caller's company.

use std::time::Duration;

use ordersum_model::job::Download;
use ordersum_model::{ApiError, Job, JobStatus, JobView, Params, SummaryRequest, store};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::answers::{Answer, JobList, ListedJob};
use crate::error::{Error, Result};
use crate::metrics;
use crate::state::AppState;
use crate::watch::Watching;

/// Longest `WaitSeconds` a call may ask for.
pub const MAX_WAIT_SECS: i64 = 60;
const DEFAULT_LIST_LIMIT: i64 = 20;
const MAX_LIST_LIMIT: i64 = 100;

pub async fn download(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let request = SummaryRequest::from_params(params, &state.limits)?;
    let wait = wait_seconds(state, params)?;
    let job = match enqueue(state, company_id, &request).await? {
        Enqueued::New(job) => {
            // Watch before the workers are woken: the end cannot slip past.
            let watching = (!wait.is_zero()).then(|| state.watch.watch(job.id));
            announce(state, job.id).await;
            wait_for(state, job, watching, wait).await?
        }
        // An equal job read under the company's lock: watch, then read it
        // again, or an end between the two would go unseen.
        Enqueued::Existing(job) if job.status.is_active() && !wait.is_zero() => {
            let watching = state.watch.watch(job.id);
            let job = store::jobs::get_job(&state.pool, company_id, job.id)
                .await?
                .unwrap_or(job);
            wait_for(state, job, Some(watching), wait).await?
        }
        Enqueued::Existing(job) => job,
    };
    // A job that has ended by now (within WaitSeconds, or a fresh equal
    // one) answers its file here: UCloud's SDK method returns only this.
    let download = download_link(state, &job).await?;
    Ok(Answer::Submitted(JobView::new(&job, download).into()))
}

pub async fn get(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let job_id = job_id(params)?;
    let wait = wait_seconds(state, params)?;
    let watching = (!wait.is_zero()).then(|| state.watch.watch(job_id));
    let job = store::jobs::get_job(&state.pool, company_id, job_id)
        .await?
        .ok_or_else(|| ApiError::bad("JobId"))?;
    let job = wait_for(state, job, watching, wait).await?;
    let download = download_link(state, &job).await?;
    Ok(Answer::Job(JobView::new(&job, download)))
}

pub async fn list(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let offset = params.int("Offset", 0, i64::MAX)?.unwrap_or(0);
    let limit = params
        .int("Limit", 1, MAX_LIST_LIMIT)?
        .unwrap_or(DEFAULT_LIST_LIMIT);
    let jobs = store::jobs::list_jobs(
        &state.pool,
        company_id,
        offset,
        limit,
        LISTED_REQUEST_ITEMS as i64,
    )
    .await?;
    let total = store::jobs::count_jobs(&state.pool, company_id).await?;
    let mut listed = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let mut view = JobView::new(job, download_link(state, job).await?);
        let request_truncated = summarise_request(&mut view.request);
        listed.push(ListedJob {
            job: view,
            request_truncated,
        });
    }
    Ok(Answer::Jobs(JobList {
        jobs: listed,
        total_count: total,
    }))
}

/// Items of each list a job's `Request` shows in `ListOrderSummaryJobs`.
pub const LISTED_REQUEST_ITEMS: usize = 5;

/// Cuts each list of a listed job's `Request` to its first
/// [`LISTED_REQUEST_ITEMS`]; answers whether any was cut (the job is then
/// marked `RequestTruncated`), so that a page of jobs stays small whatever
/// their requests held (a request may carry nine lists of 1 000 items);
/// `GetOrderSummaryJob` shows it whole. The rows arrive with one item more
/// than shown (`store::jobs::list_jobs`), which tells a cut list from one
/// that was that long.
fn summarise_request(request: &mut Value) -> bool {
    let Value::Object(request) = request else {
        return false;
    };
    let mut truncated = false;
    for value in request.values_mut() {
        if let Value::Array(items) = value
            && items.len() > LISTED_REQUEST_ITEMS
        {
            items.truncate(LISTED_REQUEST_ITEMS);
            truncated = true;
        }
    }
    truncated
}

/// Cancels a queued or running job. Cancelling a job that already ended
/// changes nothing and answers the job as it is.
pub async fn cancel(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let job_id = job_id(params)?;
    let job = match store::jobs::cancel_job(&state.pool, company_id, job_id).await? {
        Some(job) => {
            tracing::info!(%job_id, company_id, "job cancelled");
            job
        }
        None => store::jobs::get_job(&state.pool, company_id, job_id)
            .await?
            .ok_or_else(|| ApiError::bad("JobId"))?,
    };
    let download = download_link(state, &job).await?;
    Ok(Answer::Job(JobView::new(&job, download)))
}

/// Where to download a succeeded job's file: a URL presigned afresh, valid
/// for the configured TTL.
async fn download_link(state: &AppState, job: &Job) -> Result<Option<Download>> {
    file_link(
        state,
        job.status,
        job.file_key.as_deref(),
        job.file_name.as_deref(),
        job.file_size,
    )
    .await
}

/// [`download_link`] from a job's parts (the operator console's rows).
pub(crate) async fn file_link(
    state: &AppState,
    status: JobStatus,
    key: Option<&str>,
    name: Option<&str>,
    size: Option<i64>,
) -> Result<Option<Download>> {
    let (JobStatus::Succeeded, Some(key), Some(name), Some(size)) = (status, key, name, size)
    else {
        return Ok(None);
    };
    let url = state
        .store
        .presign(key, name, state.settings.storage.url_ttl())
        .await?;
    Ok(Some(Download {
        download_url: url,
        file_name: name.to_owned(),
        file_size: size,
    }))
}

/// What a submission came to.
enum Enqueued {
    /// Inserted and pushed; the workers are not woken yet ([`announce`]).
    New(Job),
    /// An equal live (or freshly succeeded) job answers the request.
    Existing(Job),
}

/// Answers an equal live job, or inserts a new one and pushes its id, all in
/// one transaction under the company's lock: the row exists only if the push
/// succeeded, and concurrent equal requests get one job.
async fn enqueue(state: &AppState, company_id: i64, request: &SummaryRequest) -> Result<Enqueued> {
    let hash = request.hash();
    let mut tx = state.pool.begin().await?;
    store::jobs::lock_company(&mut tx, company_id).await?;
    if let Some(job) =
        store::jobs::find_reusable_job(&mut tx, company_id, &hash, state.settings.dedup_fresh())
            .await?
    {
        tx.commit().await?;
        tracing::info!(job_id = %job.id, company_id, "equal request answered with existing job");
        return Ok(Enqueued::Existing(job));
    }
    let cap = state.settings.max_active_jobs;
    let job = store::jobs::insert_job(
        &mut tx,
        Uuid::now_v7(),
        company_id,
        request,
        cap,
        state.settings.fair_share_step(),
    )
    .await?
    .ok_or(ApiError::TooManyJobs(cap))?;
    stage(state, job.id).await?;
    tx.commit().await?;
    ::metrics::counter!(metrics::JOBS_ENQUEUED_TOTAL).increment(1);
    tracing::info!(job_id = %job.id, company_id, "job enqueued");
    Ok(Enqueued::New(job))
}

/// Pushes a job being inserted, inside its transaction: the row commits
/// only if the push succeeded. The workers are woken after the commit
/// ([`announce`]).
pub(crate) async fn stage(state: &AppState, job_id: Uuid) -> Result<()> {
    state
        .queue
        .stage(job_id, Duration::ZERO)
        .await
        .map_err(|err| Error::Queue(err.to_string()))
}

/// Marks a committed job's push and wakes the workers. The job is already
/// queued and pushed: if Redis fails now, a worker's fallback poll still
/// takes it, and the sweeper re-marks it.
pub(crate) async fn announce(state: &AppState, job_id: Uuid) {
    if let Err(err) = state.queue.announce(job_id, true).await {
        tracing::warn!(%job_id, error = %err, "could not wake the workers; they will find the job on their next poll");
    }
}

/// Waits, up to `wait`, for `job` to end: woken by `watching` when it does
/// (or may have), and re-reading the row now and then in case a wake-up
/// was lost. `watching` must have been made before `job` was read.
async fn wait_for(
    state: &AppState,
    mut job: Job,
    watching: Option<Watching>,
    wait: Duration,
) -> Result<Job> {
    let Some(mut watching) = watching else {
        return Ok(job);
    };
    let deadline = Instant::now() + wait;
    while job.status.is_active() && Instant::now() < deadline {
        let pause = state
            .settings
            .wait_fallback()
            .min(deadline - Instant::now());
        tokio::select! {
            () = watching.changed() => {}
            () = tokio::time::sleep(pause) => {}
        }
        match store::jobs::get_job(&state.pool, job.company_id, job.id).await? {
            Some(fresh) => job = fresh,
            None => break,
        }
    }
    Ok(job)
}

fn wait_seconds(state: &AppState, params: &Params) -> Result<Duration> {
    let default = state.settings.default_wait_secs;
    let secs = params
        .int("WaitSeconds", 0, MAX_WAIT_SECS)?
        .map_or(default, |s| s as u64);
    Ok(Duration::from_secs(secs))
}

fn job_id(params: &Params) -> Result<Uuid> {
    Ok(params.uuid("JobId")?)
}
