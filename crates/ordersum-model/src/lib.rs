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
pub mod pool;
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

/// How a process connects to Postgres (the settings of `Backends`).
#[derive(Debug, Clone, Copy)]
pub struct Connect<'a> {
    pub database_url: &'a str,
    /// A direct URL for `LISTEN`, session advisory locks and migrations,
    /// when `database_url` is a transaction pooler; `None`: `database_url`.
    pub direct_url: Option<&'a str>,
    /// Prepared statements sqlx keeps per connection; 0: none outlives its
    /// transaction ([`pool::Db::pooled`]).
    pub statement_cache: usize,
    /// Shown in `pg_stat_activity`, so operators tell the processes apart.
    pub application_name: &'a str,
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

/// Connections at most on the direct URL: the API's listener, the
/// deliverer's, the sweeper's lock and the migrations.
const DIRECT_MAX_CONNECTIONS: u32 = 4;

impl Connect<'_> {
    /// A pool of statements on `url` (the main database, or the orders
    /// replica), through a pooler when the statement cache is 0.
    pub async fn statements(&self, url: &str) -> Result<pool::Db, sqlx::Error> {
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(
                options
                    .application_name(self.application_name)
                    .statement_cache_capacity(self.statement_cache),
            )
            .await?;
        Ok(match self.statement_cache {
            0 => pool::Db::pooled(pool),
            _ => pool::Db::direct(pool),
        })
    }

    /// The main pool and the direct one; pending migrations applied on the
    /// direct one (sqlx's migrator takes a session advisory lock, so many
    /// processes may start at once).
    pub async fn connect_and_migrate(&self) -> Result<pool::Databases, sqlx::Error> {
        let main = self.statements(self.database_url).await?;
        let direct = match self.direct_url {
            Some(url) if url != self.database_url => {
                let options: sqlx::postgres::PgConnectOptions = url.parse()?;
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(DIRECT_MAX_CONNECTIONS)
                    .min_connections(0)
                    .acquire_timeout(self.acquire_timeout)
                    .connect_with(options.application_name(self.application_name))
                    .await?
            }
            _ => main.pool().clone(),
        };
        MIGRATOR.run(&direct).await?;
        Ok(pool::Databases { main, direct })
    }
}
