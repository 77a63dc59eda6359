//! The API's settings, read once from the environment (see `.env.example`).

use std::net::SocketAddr;
use std::time::Duration;

use ordersum_model::Limits;
use ordersum_model::request::canonical_time_zone;
pub use ordersum_runtime::{Backends, LogFormat};
use ordersum_runtime::{ExposeSecret, InvalidSetting, SecretString, check_range};

/// The shortest operator token accepted.
pub const ADMIN_TOKEN_MIN_CHARS: usize = 16;
use ordersum_storage::StorageSettings;

/// Everything the API process can be told.
/// Every setting's default, stated once (the command line and `Settings::new`).
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    pub const ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    pub const DEFAULT_TIME_ZONE: &str = "UTC";
    pub const DB_MAX_CONNECTIONS: u32 = 10;
    pub const MAX_ACTIVE_JOBS: i64 = 5;
    pub const DEDUP_FRESH_SECS: u64 = 60;
    pub const FAIR_SHARE_STEP_SECS: u64 = 10;
    pub const MAX_SPAN_DAYS: i64 = 366;
    pub const DEFAULT_WAIT_SECS: u64 = 0;
    pub const WAIT_FALLBACK_MS: u64 = 5_000;
    pub const DEPENDENCY_TIMEOUT_MS: u64 = 3000;
    pub const KEY_CACHE_SECS: u64 = 2;
    pub const KEY_CACHE_CAPACITY: u64 = 10_000;
    pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
    pub const BODY_READ_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_CONNECTIONS: usize = 1024;
    pub const RATE_LIMIT_PER_IP: u32 = 200;
    pub const RATE_LIMIT_PER_IP_BURST: u32 = 400;
    pub const RATE_LIMIT_PER_KEY: u32 = 50;
    pub const RATE_LIMIT_PER_KEY_BURST: u32 = 100;
    pub const REQUIRE_TIMESTAMP: bool = false;
    pub const TIMESTAMP_WINDOW_SECS: u64 = 300;
}

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordersum-api", version, about = "ordersum HTTP API")]
pub struct Settings {
    #[command(flatten)]
    pub backends: Backends,
    /// Address to listen on.
    #[arg(long, env = "ORDERSUM_API_ADDR", default_value_t = defaults::ADDR)]
    pub addr: SocketAddr,
    /// Most Postgres connections in the pool.
    #[arg(long, env = "ORDERSUM_DB_MAX_CONNECTIONS", default_value_t = defaults::DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,
    /// Most queued + running jobs per company; more answer RetCode 153.
    #[arg(long, env = "ORDERSUM_MAX_ACTIVE_JOBS", default_value_t = defaults::MAX_ACTIVE_JOBS)]
    pub max_active_jobs: i64,
    /// Fair share between companies: a new job waits behind other
    /// companies' jobs submitted up to this many seconds after it, for each
    /// job its company already has queued or running (0: first come, first
    /// served).
    #[arg(long, env = "ORDERSUM_FAIR_SHARE_STEP_SECS", default_value_t = defaults::FAIR_SHARE_STEP_SECS)]
    pub fair_share_step_secs: u64,
    /// A succeeded job answers an equal request for this many seconds after it finished.
    #[arg(long, env = "ORDERSUM_DEDUP_FRESH_SECONDS", default_value_t = defaults::DEDUP_FRESH_SECS)]
    pub dedup_fresh_secs: u64,
    /// Longest StartTime..EndTime window, in days.
    #[arg(long, env = "ORDERSUM_MAX_SPAN_DAYS", default_value_t = defaults::MAX_SPAN_DAYS)]
    pub max_span_days: i64,
    /// Time zone of the workbook's times when a request names none (IANA name).
    #[arg(long, env = "ORDERSUM_DEFAULT_TIME_ZONE", default_value = defaults::DEFAULT_TIME_ZONE)]
    pub default_time_zone: String,
    /// Long-poll seconds when a call carries no WaitSeconds (0 = answer at once).
    #[arg(long, env = "ORDERSUM_DEFAULT_WAIT_SECONDS", default_value_t = defaults::DEFAULT_WAIT_SECS)]
    pub default_wait_secs: u64,
    /// How often a long-poll reads its job again unwoken: only a fallback,
    /// the job's end wakes it at once (Postgres LISTEN/NOTIFY).
    #[arg(long, env = "ORDERSUM_WAIT_FALLBACK_MS", default_value_t = defaults::WAIT_FALLBACK_MS)]
    pub wait_fallback_ms: u64,
    /// How long a call waits for Postgres or Redis before answering 2000+.
    #[arg(long, env = "ORDERSUM_DEPENDENCY_TIMEOUT_MS", default_value_t = defaults::DEPENDENCY_TIMEOUT_MS)]
    pub dependency_timeout_ms: u64,
    /// How long a found API key is reused (0: look it up on every call); a
    /// disabled key is refused within this. Unknown keys are never cached.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_SECONDS", default_value_t = defaults::KEY_CACHE_SECS)]
    pub key_cache_secs: u64,
    /// Most API keys kept in the cache.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_CAPACITY", default_value_t = defaults::KEY_CACHE_CAPACITY)]
    pub key_cache_capacity: u64,
    /// A connection must send a request's whole header within this (also
    /// bounds how long an idle keep-alive connection stays open); 0 = no limit.
    #[arg(
        long,
        env = "ORDERSUM_HEADER_READ_TIMEOUT_MS",
        default_value_t = defaults::HEADER_READ_TIMEOUT_MS)]
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this; 0 = no limit.
    #[arg(long, env = "ORDERSUM_BODY_READ_TIMEOUT_MS", default_value_t = defaults::BODY_READ_TIMEOUT_MS)]
    pub body_read_timeout_ms: u64,
    /// Most open client connections; past it, new ones wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "ORDERSUM_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Calls per second from one client address (IPv6: one /64), 0 = no limit.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP", default_value_t = defaults::RATE_LIMIT_PER_IP)]
    pub rate_limit_per_ip: u32,
    /// Calls one client address may make at once above its rate.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP_BURST", default_value_t = defaults::RATE_LIMIT_PER_IP_BURST)]
    pub rate_limit_per_ip_burst: u32,
    /// Authenticated calls per second with one API key, 0 = no limit.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY", default_value_t = defaults::RATE_LIMIT_PER_KEY)]
    pub rate_limit_per_key: u32,
    /// Calls one API key may make at once above its rate.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY_BURST", default_value_t = defaults::RATE_LIMIT_PER_KEY_BURST)]
    pub rate_limit_per_key_burst: u32,
    /// Refuse calls without a signed `Timestamp` (Unix seconds), outside the
    /// window, or replayed (same Signature twice).
    #[arg(
        long,
        env = "ORDERSUM_REQUIRE_TIMESTAMP",
        default_value_t = defaults::REQUIRE_TIMESTAMP,
        action = clap::ArgAction::Set
    )]
    pub require_timestamp: bool,
    /// How far a `Timestamp` may be from the server's clock, in seconds.
    #[arg(long, env = "ORDERSUM_TIMESTAMP_WINDOW_SECONDS", default_value_t = defaults::TIMESTAMP_WINDOW_SECS)]
    pub timestamp_window_secs: u64,
    /// The operator console's token: `/admin` signs in with it (or scripts
    /// send `Authorization: Bearer <token>`). Unset: the console is off and
    /// `/admin` answers 404. At least 16 characters.
    #[arg(
        long,
        env = "ORDERSUM_ADMIN_TOKEN",
        hide_env_values = true,
        value_parser = ordersum_runtime::secret_text
    )]
    pub admin_token: Option<SecretString>,
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
            addr: defaults::ADDR,
            backends: Backends::new(database_url, redis_url),
            db_max_connections: defaults::DB_MAX_CONNECTIONS,
            max_active_jobs: defaults::MAX_ACTIVE_JOBS,
            dedup_fresh_secs: defaults::DEDUP_FRESH_SECS,
            fair_share_step_secs: defaults::FAIR_SHARE_STEP_SECS,
            max_span_days: defaults::MAX_SPAN_DAYS,
            default_time_zone: defaults::DEFAULT_TIME_ZONE.to_owned(),
            default_wait_secs: defaults::DEFAULT_WAIT_SECS,
            wait_fallback_ms: defaults::WAIT_FALLBACK_MS,
            dependency_timeout_ms: defaults::DEPENDENCY_TIMEOUT_MS,
            key_cache_secs: defaults::KEY_CACHE_SECS,
            key_cache_capacity: defaults::KEY_CACHE_CAPACITY,
            header_read_timeout_ms: defaults::HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: defaults::BODY_READ_TIMEOUT_MS,
            max_connections: defaults::MAX_CONNECTIONS,
            rate_limit_per_ip: defaults::RATE_LIMIT_PER_IP,
            rate_limit_per_ip_burst: defaults::RATE_LIMIT_PER_IP_BURST,
            rate_limit_per_key: defaults::RATE_LIMIT_PER_KEY,
            rate_limit_per_key_burst: defaults::RATE_LIMIT_PER_KEY_BURST,
            require_timestamp: defaults::REQUIRE_TIMESTAMP,
            timestamp_window_secs: defaults::TIMESTAMP_WINDOW_SECS,
            admin_token: None,
            storage: StorageSettings::new(storage_url),
            key_encryption: Default::default(),
        }
    }

    /// Refuses values the API cannot run with, naming the setting; nothing
    /// is clamped silently.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check_range(
            "ORDERSUM_DB_MAX_CONNECTIONS",
            self.db_max_connections,
            1..=1000,
        )?;
        check_range(
            "ORDERSUM_MAX_ACTIVE_JOBS",
            self.max_active_jobs,
            1..=100_000,
        )?;
        check_range(
            "ORDERSUM_DEDUP_FRESH_SECONDS",
            self.dedup_fresh_secs,
            0..=86_400,
        )?;
        check_range(
            "ORDERSUM_WAIT_FALLBACK_MS",
            self.wait_fallback_ms,
            100..=60_000,
        )?;
        check_range(
            "ORDERSUM_FAIR_SHARE_STEP_SECS",
            self.fair_share_step_secs,
            0..=3_600,
        )?;
        check_range("ORDERSUM_MAX_SPAN_DAYS", self.max_span_days, 1..=3660)?;
        if let Some(token) = &self.admin_token {
            let token = token.expose_secret();
            if token.chars().count() < ADMIN_TOKEN_MIN_CHARS || token.trim() != token {
                return Err(InvalidSetting {
                    setting: "ORDERSUM_ADMIN_TOKEN",
                    value: "[redacted]".into(),
                    rule: format!(
                        "at least {ADMIN_TOKEN_MIN_CHARS} characters, no surrounding spaces \
                         (e.g. `openssl rand -hex 24`); unset it to turn the console off"
                    ),
                });
            }
        }
        // As the worker reads it: an IANA name written exactly.
        let zone = &self.default_time_zone;
        if canonical_time_zone(zone).as_deref() != Some(zone.as_str()) {
            return Err(InvalidSetting {
                setting: "ORDERSUM_DEFAULT_TIME_ZONE",
                value: self.default_time_zone.clone(),
                rule: "an IANA time zone name such as UTC or Asia/Shanghai".into(),
            });
        }
        let max_wait = crate::jobs::MAX_WAIT_SECS.unsigned_abs();
        check_range(
            "ORDERSUM_DEFAULT_WAIT_SECONDS",
            self.default_wait_secs,
            0..=max_wait,
        )?;
        check_range(
            "ORDERSUM_DEPENDENCY_TIMEOUT_MS",
            self.dependency_timeout_ms,
            1..=60_000,
        )?;
        check_range("ORDERSUM_KEY_CACHE_SECONDS", self.key_cache_secs, 0..=3600)?;
        check_range(
            "ORDERSUM_KEY_CACHE_CAPACITY",
            self.key_cache_capacity,
            1..=10_000_000,
        )?;
        check_range(
            "ORDERSUM_HEADER_READ_TIMEOUT_MS",
            self.header_read_timeout_ms,
            0..=600_000,
        )?;
        check_range(
            "ORDERSUM_BODY_READ_TIMEOUT_MS",
            self.body_read_timeout_ms,
            0..=600_000,
        )?;
        check_range(
            "ORDERSUM_MAX_CONNECTIONS",
            self.max_connections,
            1..=1_000_000,
        )?;
        for (setting, rate, burst_setting, burst) in [
            (
                "ORDERSUM_RATE_LIMIT_PER_IP",
                self.rate_limit_per_ip,
                "ORDERSUM_RATE_LIMIT_PER_IP_BURST",
                self.rate_limit_per_ip_burst,
            ),
            (
                "ORDERSUM_RATE_LIMIT_PER_KEY",
                self.rate_limit_per_key,
                "ORDERSUM_RATE_LIMIT_PER_KEY_BURST",
                self.rate_limit_per_key_burst,
            ),
        ] {
            check_range(setting, rate, 0..=1_000_000)?;
            if rate > 0 {
                // A burst below the rate would refuse a steady caller.
                check_range(burst_setting, burst, rate..=10_000_000)?;
            }
        }
        check_range(
            "ORDERSUM_TIMESTAMP_WINDOW_SECONDS",
            self.timestamp_window_secs,
            1..=86_400,
        )?;
        self.storage.validate()?;
        Ok(())
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

    /// How often a long-poll reads its job again unwoken.
    pub fn wait_fallback(&self) -> Duration {
        Duration::from_millis(self.wait_fallback_ms)
    }

    /// How far back in line each already active job puts a company's new one.
    pub fn fair_share_step(&self) -> Duration {
        Duration::from_secs(self.fair_share_step_secs)
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
    fn out_of_range_values_are_refused_naming_the_setting_not_clamped() {
        let ok = Settings::new("db", "redis", "file:///tmp");
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        let refused = |tweak: fn(&mut Settings)| {
            let mut settings = Settings::new("db", "redis", "file:///tmp");
            tweak(&mut settings);
            settings.validate().expect_err("refused").to_string()
        };
        assert_eq!(
            refused(|s| s.default_wait_secs = 600),
            "ORDERSUM_DEFAULT_WAIT_SECONDS=600 is not allowed: between 0 and 60"
        );
        assert!(
            refused(|s| s.default_time_zone = "Mars/Olympus".into())
                .starts_with("ORDERSUM_DEFAULT_TIME_ZONE=Mars/Olympus")
        );
        assert!(
            refused(|s| s.rate_limit_per_key_burst = 10)
                .starts_with("ORDERSUM_RATE_LIMIT_PER_KEY_BURST=10")
        );
        assert!(refused(|s| s.max_connections = 0).starts_with("ORDERSUM_MAX_CONNECTIONS=0"));
        assert!(
            refused(|s| s.storage.url_ttl_secs = 8 * 24 * 3600)
                .starts_with("ORDERSUM_URL_TTL_SECONDS=691200")
        );
        // A limit turned off needs no burst.
        let mut off = Settings::new("db", "redis", "file:///tmp");
        off.rate_limit_per_ip = 0;
        off.rate_limit_per_ip_burst = 0;
        assert!(off.validate().is_ok());
    }

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
