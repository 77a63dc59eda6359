//! The API's settings, read once from the environment (see `.env.example`).

use std::net::SocketAddr;
use std::time::Duration;

use ordersum_model::Limits;
pub use ordersum_runtime::{Backends, LogFormat};
use ordersum_storage::StorageSettings;

/// Everything the API process can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordersum-api", version, about = "ordersum HTTP API")]
pub struct Settings {
    #[command(flatten)]
    pub backends: Backends,
    /// Address to listen on.
    #[arg(long, env = "ORDERSUM_API_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Most Postgres connections in the pool.
    #[arg(long, env = "ORDERSUM_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// Most queued + running jobs per company; more answer RetCode 153.
    #[arg(long, env = "ORDERSUM_MAX_ACTIVE_JOBS", default_value_t = 5)]
    pub max_active_jobs: i64,
    /// A succeeded job answers an equal request for this many seconds after it finished.
    #[arg(long, env = "ORDERSUM_DEDUP_FRESH_SECONDS", default_value_t = 60)]
    pub dedup_fresh_secs: u64,
    /// Longest StartTime..EndTime window, in days.
    #[arg(long, env = "ORDERSUM_MAX_SPAN_DAYS", default_value_t = 366)]
    pub max_span_days: i64,
    /// Time zone of the workbook's times when a request names none (IANA name).
    #[arg(long, env = "ORDERSUM_DEFAULT_TIME_ZONE", default_value = "UTC")]
    pub default_time_zone: String,
    /// Long-poll seconds when a call carries no WaitSeconds (0 = answer at once).
    #[arg(long, env = "ORDERSUM_DEFAULT_WAIT_SECONDS", default_value_t = 0)]
    pub default_wait_secs: u64,
    /// How long a call waits for Postgres or Redis before answering 2000+.
    #[arg(long, env = "ORDERSUM_DEPENDENCY_TIMEOUT_MS", default_value_t = 3000)]
    pub dependency_timeout_ms: u64,
    /// How long a found API key is reused (0: look it up on every call); a
    /// disabled key is refused within this. Unknown keys are never cached.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_SECONDS", default_value_t = 2)]
    pub key_cache_secs: u64,
    /// Most API keys kept in the cache.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_CAPACITY", default_value_t = 10_000)]
    pub key_cache_capacity: u64,
    /// A connection must send a request's whole header within this (also
    /// bounds how long an idle keep-alive connection stays open); 0 = no limit.
    #[arg(
        long,
        env = "ORDERSUM_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this; 0 = no limit.
    #[arg(long, env = "ORDERSUM_BODY_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_read_timeout_ms: u64,
    /// Most open client connections; past it, new ones wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "ORDERSUM_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Calls per second from one client address (IPv6: one /64), 0 = no limit.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP", default_value_t = 200)]
    pub rate_limit_per_ip: u32,
    /// Calls one client address may make at once above its rate.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP_BURST", default_value_t = 400)]
    pub rate_limit_per_ip_burst: u32,
    /// Authenticated calls per second with one API key, 0 = no limit.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY", default_value_t = 50)]
    pub rate_limit_per_key: u32,
    /// Calls one API key may make at once above its rate.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY_BURST", default_value_t = 100)]
    pub rate_limit_per_key_burst: u32,
    /// Refuse calls without a signed `Timestamp` (Unix seconds), outside the
    /// window, or replayed (same Signature twice).
    #[arg(
        long,
        env = "ORDERSUM_REQUIRE_TIMESTAMP",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub require_timestamp: bool,
    /// How far a `Timestamp` may be from the server's clock, in seconds.
    #[arg(long, env = "ORDERSUM_TIMESTAMP_WINDOW_SECONDS", default_value_t = 300)]
    pub timestamp_window_secs: u64,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub key_encryption: ordersum_runtime::KeyEncryptionSettings,
}

impl Settings {
    /// Settings with every default, for `database_url`, `redis_url` and the
    /// store `storage_url`.
    pub fn new(
        database_url: impl Into<String>,
        redis_url: impl Into<String>,
        storage_url: impl Into<String>,
    ) -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backends: Backends::new(database_url, redis_url),
            db_max_connections: 10,
            max_active_jobs: 5,
            dedup_fresh_secs: 60,
            max_span_days: 366,
            default_time_zone: "UTC".to_owned(),
            default_wait_secs: 0,
            dependency_timeout_ms: 3000,
            key_cache_secs: 2,
            key_cache_capacity: 10_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            max_connections: 1024,
            rate_limit_per_ip: 200,
            rate_limit_per_ip_burst: 400,
            rate_limit_per_key: 50,
            rate_limit_per_key_burst: 100,
            require_timestamp: false,
            timestamp_window_secs: 300,
            storage: StorageSettings::new(storage_url),
            key_encryption: Default::default(),
        }
    }

    /// The bounds requests are validated against.
    pub fn limits(&self) -> Limits {
        Limits {
            max_span_secs: self.max_span_days.saturating_mul(24 * 3600),
            default_time_zone: self.default_time_zone.clone(),
            ..Limits::default()
        }
    }

    pub fn dependency_timeout(&self) -> Duration {
        Duration::from_millis(self.dependency_timeout_ms)
    }

    /// How long a succeeded job answers an equal request.
    pub fn dedup_fresh(&self) -> Duration {
        Duration::from_secs(self.dedup_fresh_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn new_gives_the_same_limits_as_the_command_line_defaults() {
        let parsed = Settings::try_parse_from(["ordersum-api"]).expect("defaults parse");
        let new = Settings::new("db", "redis", "file:///tmp");
        let limits = |s: &Settings| {
            (
                s.key_cache_secs,
                s.key_cache_capacity,
                s.header_read_timeout_ms,
                s.body_read_timeout_ms,
                s.max_connections,
                (s.rate_limit_per_ip, s.rate_limit_per_ip_burst),
                (s.rate_limit_per_key, s.rate_limit_per_key_burst),
                s.require_timestamp,
                s.timestamp_window_secs,
            )
        };
        assert_eq!(limits(&parsed), limits(&new));
    }

    #[test]
    fn require_timestamp_takes_true_or_false() {
        let on = Settings::try_parse_from(["ordersum-api", "--require-timestamp", "true"])
            .expect("true parses");
        assert!(on.require_timestamp);
        let off = Settings::try_parse_from(["ordersum-api", "--require-timestamp", "false"])
            .expect("false parses");
        assert!(!off.require_timestamp);
    }
}
