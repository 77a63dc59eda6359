-- Retries: a job put back in the queue after a retryable failure waits
-- until retry_at; the sweeper re-pushes queued jobs only once it has passed.
ALTER TABLE summary_jobs ADD COLUMN retry_at timestamptz NULL;
