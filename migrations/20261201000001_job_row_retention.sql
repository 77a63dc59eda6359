-- Row retention: the sweeper deletes rows of ended jobs (failed, cancelled,
-- expired) whose finished_at is older than ORDERSUM_JOB_ROW_RETENTION_DAYS,
-- oldest first, in batches.
CREATE INDEX summary_jobs_ended_finished_idx
    ON summary_jobs (finished_at)
    WHERE status IN ('failed', 'cancelled', 'expired');
