-- Completion webhooks (Standard Webhooks v1): a company's endpoints, the
-- outbox of job-end events, one delivery per (event, endpoint) and the log of
-- every attempt.

-- A company's endpoint. `secret` is `whsec_…` (sealed like API private keys
-- when key encryption is configured); after a rotation `previous_secret`
-- also signs until `previous_secret_until`.
CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY,
    company_id            bigint      NOT NULL,
    url                   text        NOT NULL,
    events                text[]      NOT NULL,
    description           text        NOT NULL DEFAULT '',
    secret                text        NOT NULL,
    previous_secret       text        NULL,
    previous_secret_until timestamptz NULL,
    disabled              boolean     NOT NULL DEFAULT false,
    disabled_reason       text        NULL,
    -- The first failure of the current run of failures (NULL after a success).
    failing_since         timestamptz NULL,
    last_delivery_status  text        NULL,   -- the HTTP status, or what failed
    last_delivery_time    timestamptz NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_company_idx ON webhook_endpoints (company_id);

-- The outbox: one event per job end, written by the trigger below in the
-- transaction that ends the job, whoever ends it (worker, API, sweeper,
-- console). The columns are the job as it ended: the body of every delivery.
CREATE TABLE webhook_events (
    id            text        PRIMARY KEY,   -- evt_…, the `webhook-id` header
    company_id    bigint      NOT NULL,
    job_id        uuid        NOT NULL REFERENCES summary_jobs (id) ON DELETE CASCADE,
    type          text        NOT NULL,      -- order_summary.<status>
    status        text        NOT NULL,
    file_name     text        NULL,
    file_size     bigint      NULL,
    paid_rows     bigint      NOT NULL,
    unpaid_rows   bigint      NOT NULL,
    error_message text        NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_events_job_idx ON webhook_events (job_id);

-- What is left to deliver. A worker claims due rows with FOR UPDATE SKIP
-- LOCKED and leases them; a lease that runs out (the worker died) makes the
-- row due again.
CREATE TABLE webhook_deliveries (
    event_id    text        NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state       text        NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    tries       int         NOT NULL DEFAULT 0,           -- attempts on the current schedule
    next_at     timestamptz NOT NULL DEFAULT now(),
    leased_by   text        NULL,
    lease_until timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id);

-- Every attempt, as the customer's ListOrderSummaryWebhookDeliveries shows it.
CREATE TABLE webhook_attempts (
    id           bigserial   PRIMARY KEY,
    event_id     text        NOT NULL,
    endpoint_id  uuid        NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    http_status  int         NULL,
    error        text        NULL,
    duration_ms  int         NOT NULL,
    next_at      timestamptz NULL,   -- the next try, when there is one
    worker_id    text        NULL,
    FOREIGN KEY (event_id, endpoint_id)
        REFERENCES webhook_deliveries (event_id, endpoint_id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id DESC);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (event_id, endpoint_id);

-- A job's end writes its event and a delivery for each endpoint of the
-- company subscribed to it, and wakes the workers' deliverers.
CREATE FUNCTION summary_job_ended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id   text := 'evt_' || replace(gen_random_uuid()::text, '-', '');
    event_type text := 'order_summary.' || NEW.status;
BEGIN
    INSERT INTO webhook_events (id, company_id, job_id, type, status, file_name, file_size,
                                paid_rows, unpaid_rows, error_message)
    VALUES (event_id, NEW.company_id, NEW.id, event_type, NEW.status, NEW.file_name,
            NEW.file_size, NEW.paid_rows, NEW.unpaid_rows, NEW.error_message);
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
        SELECT event_id, e.id FROM webhook_endpoints e
         WHERE e.company_id = NEW.company_id AND NOT e.disabled AND event_type = ANY (e.events);
    IF FOUND THEN
        PERFORM pg_notify('ordersum_webhooks', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER summary_job_ended AFTER UPDATE OF status ON summary_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('succeeded', 'failed', 'cancelled', 'expired'))
    EXECUTE FUNCTION summary_job_ended();
