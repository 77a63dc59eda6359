-- Fair share between companies: a queued job's place in line is fair_at,
-- its submission time plus a step for each job its company already had
-- queued or running then (ORDERSUM_FAIR_SHARE_STEP_SECS). A worker with a
-- free slot takes the due queued job with the earliest fair_at, so in a
-- burst every company's first job runs before any company's second, and a
-- company's extra jobs wait at most (jobs ahead) × step for others'.
ALTER TABLE summary_jobs ADD COLUMN fair_at timestamptz NOT NULL DEFAULT now();
UPDATE summary_jobs SET fair_at = created_at;
CREATE INDEX summary_jobs_fair_queued_idx
    ON summary_jobs (fair_at, id)
    WHERE status = 'queued';

-- Wake-ups: every change of a job's status is announced on the channel
-- ordersum_job_changed as '<job id> <new status>', delivered when the
-- change commits. The API's one listener wakes the long-polls waiting on
-- that job; they re-read the row instead of polling it.
CREATE FUNCTION ordersum_job_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ordersum_job_changed', NEW.id::text || ' ' || NEW.status);
    RETURN NULL;
END;
$$;

CREATE TRIGGER summary_jobs_status_changed
    AFTER UPDATE OF status ON summary_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ordersum_job_changed();
