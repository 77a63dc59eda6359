//! What every ordersum binary does the same way: logs through `tracing` to
//! stderr (`RUST_LOG` filters, default `info` without Postgres' "already
//! exists, skipping" notices; text or JSON), and one shutdown signal for
//! Ctrl-C and SIGTERM.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where every ordersum process finds the shared state, and how it logs.
#[derive(Debug, Clone, clap::Args)]
pub struct Backends {
    /// Postgres connection string.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://localhost/ordersum",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Redis connection string.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Redis queue (apalis namespace) carrying job ids; API and workers must agree.
    #[arg(long, env = "ORDERSUM_QUEUE", default_value = crate::DEFAULT_QUEUE)]
    pub queue: String,
    /// Log format: text or json.
    #[arg(long, env = "ORDERSUM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Backends {
    /// `database_url` and `redis_url`, with the default queue and text logs.
    pub fn new(database_url: impl Into<String>, redis_url: impl Into<String>) -> Self {
        Backends {
            database_url: database_url.into(),
            redis_url: redis_url.into(),
            queue: crate::DEFAULT_QUEUE.to_owned(),
            log_format: LogFormat::Text,
        }
    }
}

/// Installs the global subscriber; a second call changes nothing.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
