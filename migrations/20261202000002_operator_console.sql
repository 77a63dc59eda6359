-- The operator console (/admin): live workers, each job's attempts, where an
-- export has got to, and which job a retry was made from.

-- One row per worker process, written by the worker itself: registered at
-- start, beating while it runs, marked stopped when it exits cleanly. A
-- worker that died keeps its last heartbeat (the console marks it stale);
-- the sweeper deletes rows that stopped beating a day ago.
CREATE TABLE workers (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          int         NOT NULL,
    concurrency  int         NOT NULL,
    version      text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz NULL
);

-- Each run of a job. Kept by a trigger on summary_jobs, so every claim,
-- retry, hand-back, take-back and end is recorded in the same transaction
-- as the job's own change, whoever makes it.
CREATE TABLE job_attempts (
    job_id     uuid        NOT NULL REFERENCES summary_jobs (id) ON DELETE CASCADE,
    attempt    int         NOT NULL,
    worker_id  text        NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz NULL,
    outcome    text        NULL,   -- succeeded | failed | cancelled | retry scheduled | handed back | taken back
    PRIMARY KEY (job_id, attempt)
);

-- The start time of the last order written: with the request's window, how
-- far an export has got (orders are read in start_time order).
ALTER TABLE summary_jobs ADD COLUMN progress_at timestamptz NULL;
-- A job an operator made by retrying another.
ALTER TABLE summary_jobs ADD COLUMN retry_of uuid NULL;
CREATE INDEX summary_jobs_retry_of_idx ON summary_jobs (retry_of) WHERE retry_of IS NOT NULL;
-- The console's job list and last-hour figures.
CREATE INDEX summary_jobs_created_idx ON summary_jobs (created_at DESC, id DESC);
CREATE INDEX summary_jobs_finished_idx ON summary_jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE FUNCTION ordersum_job_attempts() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempts > OLD.attempts THEN
        -- A claim: a running attempt before it was taken back from a worker
        -- that stopped beating.
        UPDATE job_attempts SET ended_at = now(), outcome = 'taken back'
         WHERE job_id = NEW.id AND attempt = OLD.attempts AND ended_at IS NULL;
        INSERT INTO job_attempts (job_id, attempt, worker_id, started_at)
        VALUES (NEW.id, NEW.attempts, NEW.worker_id, now())
        ON CONFLICT (job_id, attempt) DO NOTHING;
    ELSIF OLD.status = 'running' AND NEW.status <> 'running' THEN
        UPDATE job_attempts
           SET ended_at = now(),
               outcome = CASE
                   WHEN NEW.status <> 'queued' THEN NEW.status
                   WHEN NEW.retry_at > now() THEN 'retry scheduled'
                   WHEN OLD.heartbeat_at < now() - interval '5 seconds' THEN 'taken back'
                   ELSE 'handed back'
               END
         WHERE job_id = NEW.id AND attempt = NEW.attempts AND ended_at IS NULL;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER summary_jobs_attempts
    AFTER UPDATE OF status, attempts ON summary_jobs
    FOR EACH ROW
    EXECUTE FUNCTION ordersum_job_attempts();

-- Operator console sessions: the cookie is an HMAC under the token, and its
-- row must exist, so signing out ends the session on every replica.
CREATE TABLE admin_sessions (
    id         text        PRIMARY KEY,   -- the cookie's nonce
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
