//! What every ordersum binary does the same way: logs through `tracing` to
//! stderr (`RUST_LOG` filters, default `info` without Postgres' "already
//! exists, skipping" notices; text or JSON), one shutdown signal for Ctrl-C
//! and SIGTERM, and the command-line settings all processes share. Secrets
//! among them are [`SecretString`]s: `Debug` never prints them.

use std::fmt;
use std::io::IsTerminal;

use ordersum_model::keycrypt::{KeyCipher, KeyCryptError};

mod settings;
pub use secrecy::{ExposeSecret, SecretString};
pub use settings::{
    InRange, InvalidSetting, SettingDoc, check_range, defaults_of, documented, env_file, in_range,
    markdown_table, summary_table,
};
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where every ordersum process finds the shared state, and how it logs.
/// The URLs may hold passwords: they are secrets.
#[derive(Debug, Clone, clap::Args)]
pub struct Backends {
    /// Postgres connection string; migrations are applied at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://localhost/ordersum",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub database_url: SecretString,
    /// A direct Postgres URL (no transaction pooler in between) for what
    /// must keep a server connection: `LISTEN`, session advisory locks and
    /// migrations. Default: `DATABASE_URL`.
    #[arg(
        long,
        env = "ORDERSUM_LISTEN_DATABASE_URL",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub listen_database_url: Option<SecretString>,
    /// Prepared statements kept per Postgres connection. `0` when
    /// `DATABASE_URL` (or `ORDERSUM_ORDERS_DATABASE_URL`) is a
    /// transaction-pooling PgBouncer: then no statement outlives its
    /// transaction (docs/deploy.md).
    #[arg(long, env = "ORDERSUM_PG_STATEMENT_CACHE", default_value_t = 100,
          value_parser = in_range(0..=10_000usize))]
    pub pg_statement_cache: usize,
    /// Redis connection string (the job queue and the workers' wake-ups).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub redis_url: SecretString,
    /// Redis queue (apalis namespace) carrying job ids; API and workers must agree.
    #[arg(long, env = "ORDERSUM_QUEUE", default_value = ordersum_queue::DEFAULT_QUEUE)]
    pub queue: String,
    /// Log format on stderr (filter with RUST_LOG).
    #[arg(long, env = "ORDERSUM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Backends {
    /// How to connect to Postgres, as `application_name`.
    pub fn connect<'a>(
        &'a self,
        application_name: &'a str,
        max_connections: u32,
        acquire_timeout: std::time::Duration,
    ) -> ordersum_model::Connect<'a> {
        ordersum_model::Connect {
            database_url: self.database_url.expose_secret(),
            direct_url: self
                .listen_database_url
                .as_ref()
                .map(|url| url.expose_secret())
                .filter(|url| !url.trim().is_empty()),
            statement_cache: self.pg_statement_cache,
            application_name,
            max_connections,
            acquire_timeout,
        }
    }

    /// `database_url` and `redis_url`, with the default queue and text logs.
    pub fn new(database_url: impl Into<String>, redis_url: impl Into<String>) -> Self {
        Backends {
            database_url: SecretString::from(database_url.into()),
            listen_database_url: None,
            pg_statement_cache: 100,
            redis_url: SecretString::from(redis_url.into()),
            queue: ordersum_queue::DEFAULT_QUEUE.to_owned(),
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

/// The key encryption settings, flattened into the API's and the CLI's.
#[derive(Clone, Default, clap::Args)]
pub struct KeyEncryptionSettings {
    /// Keys encrypting API private keys at rest: `id:key,...` (32 bytes as
    /// base64 or hex); the first encrypts, all decrypt. Unset: plain text.
    #[arg(
        long,
        global = true,
        env = "ORDERSUM_KEY_ENCRYPTION_KEYS",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub key_encryption_keys: Option<SecretString>,
}

impl fmt::Debug for KeyEncryptionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.key_encryption_keys.as_ref().map(|_| "[redacted]");
        f.debug_struct("KeyEncryptionSettings")
            .field("key_encryption_keys", &shown)
            .finish()
    }
}

impl KeyEncryptionSettings {
    /// Settings holding `spec` (`id:key,...`).
    pub fn from_spec(spec: impl Into<String>) -> Self {
        KeyEncryptionSettings {
            key_encryption_keys: Some(SecretString::from(spec.into())),
        }
    }

    /// The keys, read and checked; an error names the bad entry, never its
    /// material.
    pub fn cipher(&self) -> Result<KeyCipher, KeyCryptError> {
        match &self.key_encryption_keys {
            Some(spec) => KeyCipher::parse(spec.expose_secret()),
            None => Ok(KeyCipher::default()),
        }
    }
}

/// Takes the text as is: a parse error here would make clap print the value.
pub fn secret_text(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        backends: Backends,
        #[command(flatten)]
        keys: KeyEncryptionSettings,
    }

    #[test]
    fn debug_never_prints_the_secrets() {
        let cli = Cli::try_parse_from([
            "x",
            "--database-url",
            "postgres://app:pg-password-1@db/ordersum",
            "--redis-url",
            "redis://:redis-password-2@cache:6379",
            "--key-encryption-keys",
            "k1:key-material-3",
        ])
        .expect("parsed");
        let printed = format!("{cli:?}");
        for secret in ["pg-password-1", "redis-password-2", "key-material-3"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert_eq!(
            cli.backends.database_url.expose_secret(),
            "postgres://app:pg-password-1@db/ordersum"
        );
    }
}
