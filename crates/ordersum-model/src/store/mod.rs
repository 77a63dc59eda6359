//! Every actor's SQL, one module per concern: the customer's API keys and
//! jobs, a worker's attempt, the sweeper's maintenance, the worker
//! registry, and the operator console's queries and sessions. One function
//! per query; callers name the module (`store::attempts::claim_next`), so a
//! change to what one actor does lands in that actor's file.

pub mod attempts;
pub mod console;
pub mod deliveries;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod sessions;
pub mod webhooks;
pub mod workers;

pub(crate) const JOB_COLUMNS: &str = "id, company_id, request, request_hash, status, attempts, paid_rows, \
     unpaid_rows, file_key, file_name, file_size, error_message, worker_id, heartbeat_at, \
     created_at, started_at, finished_at, expires_at, wait_reason, orders_as_of";

pub(crate) fn job_query(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM summary_jobs {tail}"))
}
