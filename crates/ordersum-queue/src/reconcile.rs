//! Keeping Redis in step with Postgres, the Redis side. The row in
//! Postgres is the truth; Redis only delivers. Beside each push a marker (a
//! member of the sorted set `<queue>:ordersum:pushed`, scored with the push
//! time) records that Redis holds the job and since when, so a queued job
//! Redis lost (restarted empty, FLUSHALL) can be told from one that is
//! merely waiting. The sweeper (`ordersum-worker`'s `sweeper::reconcile`)
//! reads Postgres and decides here, with [`lost`], [`stale_markers`] and
//! [`shortfall`], what to push again and what to forget; the queue's own
//! pushes write the markers ([`JobQueue::announce`]) and a claim drops one
//! ([`JobQueue::taken`]). apalis-redis' records of finished tasks are
//! removed by [`JobQueue::vacuum`], so nothing grows with the number of
//! jobs.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{JobQueue, QueueError};

/// Removes apalis-redis' records of up to `ARGV[1]` finished tasks: each id
/// popped from the done and dead sets loses its data field, its result and
/// its meta hash (key names as apalis-redis' `Config` builds them).
const VACUUM_SCRIPT: &str = r#"
local removed = 0
for _, set in ipairs({KEYS[1], KEYS[2]}) do
  local ids = redis.call('SPOP', set, ARGV[1])
  for _, id in ipairs(ids) do
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4] .. ':result', id)
    redis.call('DEL', KEYS[4] .. ':' .. id)
    removed = removed + 1
  end
end
return removed
"#;

/// Counts the deliveries Redis holds: waiting (`KEYS[1]`, the active
/// list), delayed (`KEYS[2]`, the scheduled set) and taken by a consumer
/// but not yet acknowledged (the in-flight set `ARGV[1]:<consumer>` of each
/// consumer registered in `KEYS[3]`).
const HELD_SCRIPT: &str = r#"
local held = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
for _, consumer in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  held = held + redis.call('SCARD', ARGV[1] .. ':' .. consumer)
end
return held
"#;

/// The clock markers are scored with: Unix seconds (0 before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A marker whose job has no row is kept this long: the API pushes inside
/// the transaction that inserts the row, so the row may not be visible yet.
pub const MARKER_WITHOUT_ROW_GRACE_SECS: u64 = 60;

/// Whether a queued job's push is lost: Redis holds no marker for it, or
/// it has waited longer than `repush_after_secs` since (a push is
/// idempotent: only one claim wins).
pub fn lost(pushed_at: Option<u64>, now: u64, repush_after_secs: u64) -> bool {
    match pushed_at {
        None => true,
        Some(at) => now.saturating_sub(at) > repush_after_secs,
    }
}

/// The markers to forget among `marked` (job id, push time): those whose
/// job is no longer queued (`queued` from Postgres says false: claimed,
/// ended, cancelled while waiting), or has no row
/// [`MARKER_WITHOUT_ROW_GRACE_SECS`] after its push. Markers of queued jobs
/// stay, for [`lost`].
pub fn stale_markers(marked: &[(Uuid, u64)], queued: &HashMap<Uuid, bool>, now: u64) -> Vec<Uuid> {
    marked
        .iter()
        .filter(|(id, pushed_at)| match queued.get(id) {
            Some(queued) => !queued,
            None => now.saturating_sub(*pushed_at) > MARKER_WITHOUT_ROW_GRACE_SECS,
        })
        .map(|(id, _)| *id)
        .collect()
}

/// Queued jobs (Postgres) minus the deliveries Redis holds: how many
/// deliveries are missing. A delivery runs whichever queued job is next in
/// line, so each queued job needs one.
pub fn shortfall(queued: i64, held: usize) -> i64 {
    queued.saturating_sub(i64::try_from(held).unwrap_or(i64::MAX))
}

impl JobQueue {
    /// The sorted set of markers: job id → Unix seconds of its last push.
    pub(crate) fn markers(&self) -> String {
        format!("{}:ordersum:pushed", self.name)
    }

    /// When `job_id` was last pushed (Unix seconds), if Redis still holds it.
    pub async fn pushed_at(&self, job_id: Uuid) -> Result<Option<u64>, QueueError> {
        let mut conn = self.conn.clone();
        let score = self
            .bounded(
                redis::cmd("ZSCORE")
                    .arg(self.markers())
                    .arg(job_id.to_string())
                    .query_async::<Option<f64>>(&mut conn),
            )
            .await?;
        Ok(score.map(|at| at as u64))
    }

    /// The job was taken by a worker: Redis no longer needs to hold it.
    pub async fn taken(&self, job_id: Uuid) -> Result<(), QueueError> {
        self.forget_markers(&[job_id]).await
    }

    /// Up to `limit` marked jobs with their push time (Unix seconds), oldest
    /// push first, skipping the first `offset`.
    pub async fn marked_jobs(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(Uuid, u64)>, QueueError> {
        let mut conn = self.conn.clone();
        let marked = self
            .bounded(
                redis::cmd("ZRANGE")
                    .arg(self.markers())
                    .arg(offset)
                    .arg(offset + limit.max(1) - 1)
                    .arg("WITHSCORES")
                    .query_async::<Vec<(String, f64)>>(&mut conn),
            )
            .await?;
        // A member that is not a job id (written by hand) is left alone.
        Ok(marked
            .into_iter()
            .filter_map(|(id, at)| Some((Uuid::parse_str(&id).ok()?, at as u64)))
            .collect())
    }

    /// Drops the markers of `job_ids` (jobs no longer waiting in the queue).
    pub async fn forget_markers(&self, job_ids: &[Uuid]) -> Result<(), QueueError> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.markers());
        for id in job_ids {
            cmd.arg(id.to_string());
        }
        self.bounded(cmd.query_async::<()>(&mut conn)).await
    }

    /// Removes apalis-redis' records (data, meta hash, result, done or dead
    /// entry) of up to `batch` tasks whose handler has finished; answers how
    /// many. apalis-redis keeps them forever otherwise (about 11 Redis
    /// entries a job), and its own `Vacuum` leaves the done set growing.
    /// A finished task is never run again: the job row is the truth.
    pub async fn vacuum(&self, batch: usize) -> Result<usize, QueueError> {
        let config = Self::config(&self.name);
        let mut conn = self.conn.clone();
        let script = redis::Script::new(VACUUM_SCRIPT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(config.done_jobs_set())
            .key(config.dead_jobs_set())
            .key(config.job_data_hash())
            .key(config.job_meta_hash())
            .arg(batch.max(1));
        self.bounded(invocation.invoke_async::<usize>(&mut conn))
            .await
    }

    /// How many deliveries Redis holds, waiting, delayed or in a
    /// consumer's hands. A delivery runs one queued job, whichever is next
    /// in line, so fewer deliveries than queued jobs means some job would
    /// wait for the sweeper's late re-push ([`JobQueue::pushed_at`]).
    pub async fn deliveries_held(&self) -> Result<usize, QueueError> {
        let config = Self::config(&self.name);
        let mut conn = self.conn.clone();
        let script = redis::Script::new(HELD_SCRIPT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.workers_set())
            .arg(config.inflight_jobs_set());
        self.bounded(invocation.invoke_async::<usize>(&mut conn))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_is_lost_without_a_marker_or_after_waiting_too_long() {
        assert!(lost(None, 1000, 300));
        assert!(!lost(Some(900), 1000, 300));
        assert!(lost(Some(600), 1000, 300));
    }

    #[test]
    fn markers_go_when_their_job_is_not_queued_or_long_without_a_row() {
        let (queued, claimed, rowless, fresh) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let marked = [(queued, 100), (claimed, 100), (rowless, 100), (fresh, 990)];
        let flags = HashMap::from([(queued, true), (claimed, false)]);
        assert_eq!(stale_markers(&marked, &flags, 1000), vec![claimed, rowless]);
    }

    #[test]
    fn the_shortfall_is_queued_jobs_beyond_the_deliveries_held() {
        assert_eq!(shortfall(5, 3), 2);
        assert_eq!(shortfall(2, 3), -1);
    }
}
