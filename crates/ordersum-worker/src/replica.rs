//! Reading orders from a replica without silently missing any.
//!
//! A streaming replica shows what the primary committed up to its last
//! replayed commit (`pg_last_xact_replay_timestamp()`). A job is claimed
//! only once that commit is no more than `ORDERSUM_MAX_REPLICA_LAG_SECONDS`
//! before the moment the job was accepted: the orders of a window are
//! committed by the time it ends, and a window that had ended was ended
//! before its job was accepted, so with the default 0 every order the
//! primary held when the job was accepted is on the replica. (The job's own
//! row is a commit after that moment, so an idle primary never keeps a job
//! waiting.) Until then the job stays queued with the reason in its row,
//! and its delivery comes back with backoff.
//!
//! A replica may cancel a long read that conflicts with the WAL it replays
//! ("conflict with recovery"); the page is read again from the same keyset
//! cursor ([`read_again`]), so the export resumes where it was.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ordersum_model::pool::Db;

use crate::context::JobContext;

/// Which jobs the orders database can serve now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate {
    /// Jobs accepted after this are not claimed yet; `None`: any job.
    pub visible_until: Option<DateTime<Utc>>,
    /// The replica's last replayed commit (`None`: read from a primary, or
    /// nothing replayed yet).
    pub replayed_at: Option<DateTime<Utc>>,
}

impl Gate {
    /// As the claim queries take it.
    pub fn seen(&self) -> ordersum_model::store::attempts::OrdersSeen {
        ordersum_model::store::attempts::OrdersSeen {
            visible_until: self.visible_until,
            replayed_at: self.replayed_at,
        }
    }
}

/// Reads the orders database's replay position, when it is a replica of
/// its own (`ORDERSUM_ORDERS_DATABASE_URL`).
pub async fn gate(ctx: &JobContext) -> Result<Gate, sqlx::Error> {
    if !ctx.orders.separate {
        return Ok(Gate::default());
    }
    let (in_recovery, replayed_at) = replay(&ctx.orders.db).await?;
    if !in_recovery {
        return Ok(Gate::default());
    }
    let lag = chrono::Duration::seconds(ctx.settings.max_replica_lag_secs as i64);
    Ok(Gate {
        // Nothing replayed since the replica started: no job is served
        // until a commit (the next job's own row, at the latest) arrives.
        visible_until: Some(replayed_at.unwrap_or(DateTime::UNIX_EPOCH) + lag),
        replayed_at,
    })
}

/// `pg_is_in_recovery()` and `pg_last_xact_replay_timestamp()`.
async fn replay(db: &Db) -> Result<(bool, Option<DateTime<Utc>>), sqlx::Error> {
    sqlx::query_as("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
        .fetch_one(db)
        .await
}

/// How long a delivery waits before it looks again, for jobs waiting since
/// `oldest`: half the wait so far, from 200 ms up to `max`.
pub fn backoff(oldest: DateTime<Utc>, now: DateTime<Utc>, max: Duration) -> Duration {
    let waited = (now - oldest).to_std().unwrap_or_default();
    (waited / 2).clamp(
        Duration::from_millis(200),
        max.max(Duration::from_millis(200)),
    )
}

/// Reads of one page cancelled by recovery conflicts, at most, before the
/// error ends the attempt (and the job is retried).
pub const READS_PER_PAGE: u32 = 5;

/// Whether `err` is the replica cancelling a read that conflicted with the
/// WAL it replays (SQLSTATE 40001, or 40P01 for a lock, "conflict with
/// recovery").
pub fn is_recovery_conflict(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code()
                .is_some_and(|code| code == "40001" || code == "40P01")
                && db.message().contains("conflict with recovery")
        }
        _ => false,
    }
}

/// Whether a page read that failed with `err` on its `attempt`-th try is
/// tried again (after a short pause), from the same cursor.
pub async fn read_again(err: &sqlx::Error, attempt: u32) -> bool {
    if attempt >= READS_PER_PAGE || !is_recovery_conflict(err) {
        return false;
    }
    tracing::warn!(error = %err, attempt, "page read cancelled by the replica; reading it again");
    tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_half_the_wait_between_200_ms_and_the_cap() {
        let now = Utc::now();
        let max = Duration::from_secs(60);
        assert_eq!(backoff(now, now, max), Duration::from_millis(200));
        let ten_s = now - chrono::Duration::seconds(10);
        assert_eq!(backoff(ten_s, now, max), Duration::from_secs(5));
        let hour = now - chrono::Duration::hours(1);
        assert_eq!(backoff(hour, now, max), max);
    }

    #[test]
    fn only_database_errors_are_recovery_conflicts() {
        assert!(!is_recovery_conflict(&sqlx::Error::PoolTimedOut));
        assert!(!is_recovery_conflict(&sqlx::Error::RowNotFound));
    }
}
