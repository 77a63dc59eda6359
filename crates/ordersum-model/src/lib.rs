//! Domain of ordersum shared by the API, the worker and the CLI: the
//! `DownloadOrderSummary` request and its validation, the job and its
//! lifecycle, RetCodes, UCloud request signatures, every actor's SQL
//! (`store`, a module per actor) and the migrations. It depends on neither axum nor apalis, and sets up no process
//! (logs, signals and command-line settings are `ordersum-runtime`'s).

pub mod db;
pub mod job;
pub mod keycrypt;
pub mod order;
pub mod params;
pub mod request;
pub mod retcode;
pub mod signature;
pub mod store;

pub use job::{Job, JobStatus, JobView};
pub use order::OrderStatus;
pub use params::Params;
pub use request::{Limits, SummaryRequest};
pub use retcode::ApiError;

/// The schema, applied by both binaries at start and by `ordersum migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Connects a pool to `database_url` as `application_name` (so operators can
/// tell the processes apart in `pg_stat_activity`) and applies pending
/// migrations; sqlx's migrator takes an advisory lock, so many processes may
/// start at once.
pub async fn connect_and_migrate(
    database_url: &str,
    application_name: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<sqlx::PgPool, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = database_url.parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options.application_name(application_name))
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
