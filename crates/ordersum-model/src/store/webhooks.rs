//! The customer's webhook endpoints: create (under the company's lock, at
//! most a few), list, delete, rotate the secret, read the delivery log and
//! ask for a delivery again. Every query is scoped to the calling company:
//! another company's endpoint or event does not exist.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The channel the deliverers listen on; the job-end trigger and
/// [`redeliver`] notify it.
pub const CHANNEL: &str = "ordersum_webhooks";

const ENDPOINT_COLUMNS: &str = "id, company_id, url, events, description, disabled, disabled_reason, \
     last_delivery_status, last_delivery_time, created_at";

/// An endpoint as the customer sees it (no secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub id: Uuid,
    pub company_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub last_delivery_status: Option<String>,
    pub last_delivery_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What `CreateOrderSummaryWebhook` stores.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub company_id: i64,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    /// The secret's stored form (sealed when key encryption is configured).
    pub secret: &'a str,
}

/// Inserts the endpoint unless the company has `cap` already (then `None`);
/// `conn` holds the company's lock.
#[tracing::instrument(skip_all, err, fields(webhook_id = %new.id))]
pub async fn insert_endpoint(
    conn: &mut PgConnection,
    new: &NewEndpoint<'_>,
    cap: i64,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, company_id, url, events, description, secret) \
         SELECT $1, $2, $3, $4, $5, $6 \
          WHERE (SELECT count(*) FROM webhook_endpoints WHERE company_id = $2) < $7 \
         RETURNING {ENDPOINT_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(new.id)
        .bind(new.company_id)
        .bind(new.url)
        .bind(new.events)
        .bind(new.description)
        .bind(new.secret)
        .bind(cap)
        .fetch_optional(conn)
        .await
}

/// The company's endpoints, oldest first.
#[tracing::instrument(skip_all, err)]
pub async fn list_endpoints(
    db: impl PgExecutor<'_>,
    company_id: i64,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE company_id = $1 \
         ORDER BY created_at, id"
    ));
    sqlx::query_as(query).bind(company_id).fetch_all(db).await
}

/// One of the company's endpoints.
#[tracing::instrument(skip_all, err, fields(webhook_id = %id))]
pub async fn get_endpoint(
    db: impl PgExecutor<'_>,
    company_id: i64,
    id: Uuid,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE company_id = $1 AND id = $2"
    ));
    sqlx::query_as(query)
        .bind(company_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Deletes the endpoint with its deliveries and their log.
#[tracing::instrument(skip_all, err, fields(webhook_id = %id))]
pub async fn delete_endpoint(
    db: impl PgExecutor<'_>,
    company_id: i64,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(r#"DELETE FROM webhook_endpoints WHERE company_id = $1 AND id = $2"#)
        .bind(company_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Makes `secret` (stored form) the endpoint's secret; the one it replaces
/// keeps signing for `overlap`.
#[tracing::instrument(skip_all, err, fields(webhook_id = %id))]
pub async fn rotate_secret(
    db: impl PgExecutor<'_>,
    company_id: i64,
    id: Uuid,
    secret: &str,
    overlap: Duration,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let query = sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET previous_secret = secret, \
                previous_secret_until = now() + $4, secret = $3 \
          WHERE company_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
    ));
    sqlx::query_as(query)
        .bind(company_id)
        .bind(id)
        .bind(secret)
        .bind(overlap)
        .fetch_optional(db)
        .await
}

/// One attempt of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoggedAttempt {
    pub event_id: String,
    pub event_type: String,
    pub job_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub next_at: Option<DateTime<Utc>>,
}

/// A page of the endpoint's attempts, newest first, and how many there are.
#[tracing::instrument(skip_all, err, fields(webhook_id = %endpoint_id))]
pub async fn list_attempts(
    db: &crate::pool::Db,
    endpoint_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<(Vec<LoggedAttempt>, i64), sqlx::Error> {
    let page = sqlx::query_as(
        r#"SELECT a.event_id, v.type AS event_type, v.job_id, a.attempted_at, a.http_status,
                  a.error, a.duration_ms, a.next_at
             FROM webhook_attempts a JOIN webhook_events v ON v.id = a.event_id
            WHERE a.endpoint_id = $1 ORDER BY a.id DESC OFFSET $2 LIMIT $3"#,
    )
    .bind(endpoint_id)
    .bind(offset)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let total =
        sqlx::query_scalar(r#"SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1"#)
            .bind(endpoint_id)
            .fetch_one(db)
            .await?;
    Ok((page, total))
}

/// Whether the company has event `event_id`.
#[tracing::instrument(skip_all, err)]
pub async fn event_exists(
    db: impl PgExecutor<'_>,
    company_id: i64,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_events WHERE company_id = $1 AND id = $2)"#,
    )
    .bind(company_id)
    .bind(event_id)
    .fetch_one(db)
    .await
}

/// Delivers the event to the endpoint again, from the start of the
/// schedule, now; an endpoint that was disabled is enabled again (the
/// customer says it is fixed). Both must be the company's (checked first).
#[tracing::instrument(skip_all, err, fields(webhook_id = %endpoint_id))]
pub async fn redeliver(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    event_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"UPDATE webhook_endpoints SET disabled = false, disabled_reason = NULL, failing_since = NULL
            WHERE id = $1 AND disabled"#,
    )
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        r#"INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES ($1, $2)
           ON CONFLICT (event_id, endpoint_id) DO UPDATE
              SET state = 'pending', tries = 0, next_at = now(), leased_by = NULL, lease_until = NULL"#,
    )
    .bind(event_id)
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(r#"SELECT pg_notify($1, '')"#)
        .bind(CHANNEL)
        .execute(conn)
        .await
        .map(drop)
}
