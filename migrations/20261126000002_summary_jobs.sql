-- ordersum's own table: one row per order-summary job. The row is the source
-- of truth; the Redis queue only carries the id.

CREATE TABLE summary_jobs (
    id            uuid        PRIMARY KEY,
    company_id    bigint      NOT NULL,
    request       jsonb       NOT NULL,              -- normalised DownloadOrderSummary params
    request_hash  text        NOT NULL,              -- sha256 of the normalised request (dedup)
    status        text        NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired')),
    attempts      int         NOT NULL DEFAULT 0,
    paid_rows     bigint      NOT NULL DEFAULT 0,
    unpaid_rows   bigint      NOT NULL DEFAULT 0,
    file_key      text        NULL,
    file_name     text        NULL,
    file_size     bigint      NULL,
    error_message text        NULL,
    worker_id     text        NULL,
    heartbeat_at  timestamptz NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz NULL,
    finished_at   timestamptz NULL,
    expires_at    timestamptz NULL
);

-- ListOrderSummaryJobs: a company's jobs, newest first.
CREATE INDEX summary_jobs_company_created_idx
    ON summary_jobs (company_id, created_at DESC, id DESC);

-- Dedup and the per-company cap look only at live (and freshly finished) jobs.
CREATE INDEX summary_jobs_company_hash_live_idx
    ON summary_jobs (company_id, request_hash)
    WHERE status IN ('queued', 'running', 'succeeded');
CREATE INDEX summary_jobs_company_active_idx
    ON summary_jobs (company_id)
    WHERE status IN ('queued', 'running');

-- The sweeper: stale heartbeats of running jobs, queued jobs to re-push,
-- succeeded jobs past retention.
CREATE INDEX summary_jobs_status_heartbeat_idx
    ON summary_jobs (status, heartbeat_at)
    WHERE status IN ('queued', 'running');
CREATE INDEX summary_jobs_expires_idx
    ON summary_jobs (expires_at)
    WHERE status = 'succeeded';
