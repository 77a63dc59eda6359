//! `ordersum`, the command line: applies migrations, manages API keys and
//! seeds demo orders (each first brings the schema up to date, like the API
//! and the worker do at start), and asks the API for an order summary the way
//! a customer's script would.

pub mod config;
pub mod keys;
pub mod seed;
pub mod summary;

use ordersum_runtime::ExposeSecret;
pub use ordersum_runtime::{LogFormat, init_tracing};

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The command line, and the settings every subcommand shares.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ordersum",
    version,
    about = "ordersum command line: migrations, API keys, demo orders"
)]
pub struct Cli {
    /// Postgres connection string.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "postgres://localhost/ordersum",
        hide_env_values = true,
        value_parser = ordersum_runtime::secret_text
    )]
    pub database_url: ordersum_runtime::SecretString,
    /// Log format on stderr: text or json (filter with RUST_LOG, default info).
    #[arg(
        long,
        global = true,
        env = "ORDERSUM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Keys encrypting API private keys at rest (used by `keys`).
    #[command(flatten)]
    pub key_encryption: ordersum_runtime::KeyEncryptionSettings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply pending migrations.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Insert random demo orders for a company.
    Seed(seed::SeedArgs),
    /// Ask the API for an order summary, follow the job, download the file.
    Summary(Box<summary::SummaryArgs>),
    /// Print every setting of the API and the worker, with its default.
    Config(config::ConfigArgs),
}

/// Runs the subcommand; the database ones connect and migrate first.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Command::Summary(args) => return summary::run(*args).await,
        Command::Config(args) => {
            config::run(&args);
            return Ok(());
        }
        command => command,
    };
    let cli = Cli { command, ..cli };
    if let Command::Keys(keys::KeysCommand::NewEncryptionKey { id }) = &cli.command {
        return keys::print_new_encryption_key(id);
    }
    let pool = connect(cli.database_url.expose_secret()).await?;
    let applied = migrate(&pool).await?;
    let outcome = match cli.command {
        Command::Migrate => {
            let latest = ordersum_model::MIGRATOR
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            println!("applied {applied} migration(s); schema is current (version {latest})");
            Ok(())
        }
        Command::Keys(command) => keys::run(&pool, command, &cli.key_encryption).await,
        Command::Seed(args) => seed::run(&pool, args).await,
        Command::Summary(_) | Command::Config(_) => Ok(()),
    };
    pool.close().await;
    outcome
}

/// Connects; the error names host, port and database but never the password.
async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url).context("parsing DATABASE_URL")?;
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to Postgres at {target}"))
}

/// Applies pending migrations; returns how many were applied.
async fn migrate(pool: &PgPool) -> anyhow::Result<u64> {
    let before = count_applied_migrations(pool)
        .await
        .context("reading applied migrations")?;
    ordersum_model::MIGRATOR
        .run(pool)
        .await
        .context("applying migrations")?;
    let after = count_applied_migrations(pool)
        .await
        .context("reading applied migrations")?;
    let applied = after.saturating_sub(before);
    if applied > 0 {
        tracing::info!(applied, "applied migrations");
    }
    Ok(applied)
}

/// Successful rows of sqlx's `_sqlx_migrations`; 0 before the first run.
#[tracing::instrument(skip_all, err)]
async fn count_applied_migrations(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL"#)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    let count: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM _sqlx_migrations WHERE success"#)
        .fetch_one(pool)
        .await?;
    Ok(count.unsigned_abs())
}

/// `len` random characters from `a-z0-9`.
pub fn random_lower_alnum(rng: &mut (impl Rng + ?Sized), len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
