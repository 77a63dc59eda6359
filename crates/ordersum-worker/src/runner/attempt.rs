//! One attempt at a job: the work under its heartbeat (progress written,
//! and the check that the row is still this attempt's), its time limit and
//! the shutdown hand-back; then the row finished with the work's file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ordersum_model::Job;
use ordersum_model::store;
use tokio::sync::watch;

use super::{Outcome, RunError, Work, owner};
use crate::context::JobContext;

/// One attempt's shared state: its progress, written by the work and read
/// by the heartbeat, and whether the work must stop.
#[derive(Debug, Default)]
pub struct Attempt {
    paid: AtomicU64,
    unpaid: AtomicU64,
    /// Start time (Unix microseconds) of the last order written; 0: none yet.
    reached: AtomicI64,
    /// The work must stop at the next page.
    stop: AtomicBool,
    /// The row is no longer running for this worker (cancelled, or taken
    /// back by the sweeper after this worker stopped beating).
    lost: AtomicBool,
}

impl Attempt {
    /// Rows written so far, and the start time of the last order written
    /// (how far through the window), reported with the next heartbeat.
    pub fn record_progress(&self, paid: u64, unpaid: u64, reached: Option<DateTime<Utc>>) {
        self.paid.store(paid, Ordering::Relaxed);
        self.unpaid.store(unpaid, Ordering::Relaxed);
        if let Some(reached) = reached {
            self.reached
                .store(reached.timestamp_micros(), Ordering::Relaxed);
        }
    }

    fn reached(&self) -> Option<DateTime<Utc>> {
        match self.reached.load(Ordering::Relaxed) {
            0 => None,
            micros => DateTime::from_timestamp_micros(micros),
        }
    }

    /// The work must stop: time limit, hand-back, cancel, or it failed.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The row is no longer this attempt's.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// One attempt: the work under its heartbeat, its time limit and the
/// shutdown hand-back, then the row finished with the work's file.
pub(super) async fn run_attempt<W: Work>(
    ctx: &JobContext,
    work: &W,
    job: &Job,
) -> Result<Outcome, RunError<W::Error>> {
    let started = Instant::now();
    let attempt = Arc::new(Attempt::default());
    let produced = work.produce(ctx, job, &attempt);
    let limit = Duration::from_secs(ctx.settings.job_timeout_secs);
    let deadline = tokio::time::sleep(limit);
    let handback = handback_requested(ctx.handback.subscribe());
    tokio::pin!(produced, deadline, handback);
    // The claim was the first beat: the next is one interval away.
    let period = ctx.settings.progress_interval();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let out = loop {
        tokio::select! {
            out = &mut produced => break out.map_err(RunError::Work),
            _ = tick.tick() => heartbeat(ctx, job, &attempt).await,
            () = &mut deadline => {
                attempt.request_stop();
                break Err(RunError::TimedOut(limit));
            }
            () = &mut handback => {
                attempt.request_stop();
                return Ok(Outcome::HandedBack);
            }
        }
    };
    let file = match out {
        Ok(file) => file,
        Err(err) => {
            // A job that is no longer ours is neither retried nor failed by
            // this attempt (e.g. a worker paused past the staleness limit,
            // whose temp directory was swept meanwhile): one more beat tells.
            if !attempt.lost() {
                heartbeat(ctx, job, &attempt).await;
            }
            if attempt.lost() {
                tracing::info!(error = %err, "attempt failed after losing its job");
                return Ok(Outcome::Abandoned);
            }
            return Err(err);
        }
    };
    let finished = store::attempts::finish_job(
        &ctx.pool,
        job.id,
        owner(ctx, job),
        &file,
        ctx.settings.retention(),
    )
    .await?;
    if !finished {
        // Cancelled (or taken back) while storing: this attempt's file must
        // not outlive it; the winner's, under its own key, is untouched.
        work.discard(ctx, &file).await.map_err(RunError::Work)?;
        return Ok(Outcome::Abandoned);
    }
    Ok(Outcome::Succeeded {
        file,
        elapsed: started.elapsed(),
    })
}

/// Resolves once the hand-back is asked for; never if it cannot be.
async fn handback_requested(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|handback| *handback).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Writes progress and the heartbeat; a row no longer running for this
/// worker (cancelled, or taken back) stops the work.
async fn heartbeat(ctx: &JobContext, job: &Job, attempt: &Attempt) {
    let (paid, unpaid) = (
        attempt.paid.load(Ordering::Relaxed),
        attempt.unpaid.load(Ordering::Relaxed),
    );
    match store::attempts::record_progress(
        &ctx.pool,
        job.id,
        owner(ctx, job),
        paid as i64,
        unpaid as i64,
        attempt.reached(),
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            attempt.lost.store(true, Ordering::SeqCst);
            attempt.request_stop();
        }
        Err(err) => tracing::warn!(error = %err, "could not record progress"),
    }
}
