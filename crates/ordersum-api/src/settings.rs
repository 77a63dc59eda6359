//! The API's settings, read once from the environment (see `.env.example`).

use std::net::SocketAddr;
use std::time::Duration;

use ordersum_model::Limits;
use ordersum_model::request::canonical_time_zone;
pub use ordersum_runtime::{Backends, LogFormat};
use ordersum_runtime::{ExposeSecret, InvalidSetting, SecretString, check_range, in_range};

/// The shortest operator token accepted.
pub const ADMIN_TOKEN_MIN_CHARS: usize = 16;
use ordersum_storage::StorageSettings;

/// Everything the API process can be told: each setting declared once
/// (variable, default, range, help; see `ordersum_runtime::in_range`).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordersum-api", version, about = "ordersum HTTP API")]
pub struct Settings {
    #[command(flatten)]
    pub backends: Backends,
    /// Address the API listens on.
    #[arg(long, env = "ORDERSUM_API_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Most Postgres connections in the API's pool.
    #[arg(long, env = "ORDERSUM_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = in_range(1..=1000u32))]
    pub db_max_connections: u32,
    /// Most queued + running jobs per company; more answer RetCode 153.
    #[arg(long, env = "ORDERSUM_MAX_ACTIVE_JOBS", default_value_t = 5,
          value_parser = in_range(1..=100_000i64))]
    pub max_active_jobs: i64,
    /// Fair share between companies: a new job waits behind other
    /// companies' jobs submitted up to this many seconds after it, for each
    /// job its company already has queued or running; in a burst every
    /// company's first job runs before anyone's second (0: first come, first
    /// served).
    #[arg(long, env = "ORDERSUM_FAIR_SHARE_STEP_SECS", default_value_t = 10,
          value_parser = in_range(0..=3_600u64))]
    pub fair_share_step_secs: u64,
    /// A succeeded job answers an equal request for this many seconds after
    /// it finished.
    #[arg(long, env = "ORDERSUM_DEDUP_FRESH_SECONDS", default_value_t = 60,
          value_parser = in_range(0..=86_400u64))]
    pub dedup_fresh_secs: u64,
    /// Longest StartTime..EndTime window, in days.
    #[arg(long, env = "ORDERSUM_MAX_SPAN_DAYS", default_value_t = 366,
          value_parser = in_range(1..=3660i64))]
    pub max_span_days: i64,
    /// Time zone of the workbook's times when a request names none (an IANA
    /// name such as UTC or Asia/Shanghai).
    #[arg(long, env = "ORDERSUM_DEFAULT_TIME_ZONE", default_value = "UTC")]
    pub default_time_zone: String,
    /// Long-poll seconds when a call carries no WaitSeconds (0: answer at
    /// once; set e.g. 25 when serving UCloud's typed SDKs, which cannot send
    /// WaitSeconds).
    #[arg(long, env = "ORDERSUM_DEFAULT_WAIT_SECONDS", default_value_t = 0,
          value_parser = in_range(0..=crate::jobs::MAX_WAIT_SECS.unsigned_abs()))]
    pub default_wait_secs: u64,
    /// Fallback only: a long-poll wakes when its job ends (one Postgres
    /// LISTEN per API process); unwoken, it reads the job again this often.
    #[arg(long, env = "ORDERSUM_WAIT_FALLBACK_MS", default_value_t = 5_000,
          value_parser = in_range(100..=60_000u64))]
    pub wait_fallback_ms: u64,
    /// How long a call waits for Postgres or Redis before answering RetCode
    /// 2001.
    #[arg(long, env = "ORDERSUM_DEPENDENCY_TIMEOUT_MS", default_value_t = 3000,
          value_parser = in_range(1..=60_000u64))]
    pub dependency_timeout_ms: u64,
    /// How long a found API key is reused (0: look it up on every call); a
    /// disabled key is refused within this. Unknown keys are never cached.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_SECONDS", default_value_t = 2,
          value_parser = in_range(0..=3600u64))]
    pub key_cache_secs: u64,
    /// Most API keys kept in the cache.
    #[arg(long, env = "ORDERSUM_KEY_CACHE_CAPACITY", default_value_t = 10_000,
          value_parser = in_range(1..=10_000_000u64))]
    pub key_cache_capacity: u64,
    /// A connection must send a request's whole header within this (also
    /// bounds how long an idle keep-alive connection stays open); 0 = no limit.
    #[arg(long, env = "ORDERSUM_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = in_range(0..=600_000u64))]
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this (else 230 `Params
    /// [Body] not available` and the connection is closed); 0 = no limit.
    #[arg(long, env = "ORDERSUM_BODY_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = in_range(0..=600_000u64))]
    pub body_read_timeout_ms: u64,
    /// Most open client connections; past it, new ones wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "ORDERSUM_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = in_range(1..=1_000_000usize))]
    pub max_connections: usize,
    /// Calls per second from one client address (IPv6: one /64), 0 = no
    /// limit; a limited call answers RetCode 154 with Retry-After.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP", default_value_t = 200,
          value_parser = in_range(0..=1_000_000u32))]
    pub rate_limit_per_ip: u32,
    /// Calls one client address may make at once above its rate (at least
    /// the rate).
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_IP_BURST", default_value_t = 400,
          value_parser = in_range(0..=10_000_000u32))]
    pub rate_limit_per_ip_burst: u32,
    /// Authenticated calls per second with one API key, 0 = no limit.
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY", default_value_t = 50,
          value_parser = in_range(0..=1_000_000u32))]
    pub rate_limit_per_key: u32,
    /// Calls one API key may make at once above its rate (at least the rate).
    #[arg(long, env = "ORDERSUM_RATE_LIMIT_PER_KEY_BURST", default_value_t = 100,
          value_parser = in_range(0..=10_000_000u32))]
    pub rate_limit_per_key_burst: u32,
    /// Refuse calls without a signed `Timestamp` (Unix seconds), outside the
    /// window, or replayed (same Signature twice). UCloud's SDKs send no
    /// Timestamp: their calls are refused (220) when this is on.
    #[arg(long, env = "ORDERSUM_REQUIRE_TIMESTAMP", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub require_timestamp: bool,
    /// How far a `Timestamp` may be from the server's clock, in seconds.
    #[arg(long, env = "ORDERSUM_TIMESTAMP_WINDOW_SECONDS", default_value_t = 300,
          value_parser = in_range(1..=86_400u64))]
    pub timestamp_window_secs: u64,
    /// The operator console's token (at least 16 characters; `openssl rand
    /// -hex 24`): `/admin` signs in with it, scripts send `Authorization:
    /// Bearer <token>`. Unset: the console is off and every `/admin` path
    /// answers 404. The same on every API replica (changing it signs everyone
    /// out).
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
    /// Webhook endpoints one company may have.
    #[arg(long, env = "ORDERSUM_WEBHOOKS_PER_COMPANY", default_value_t = 5,
          value_parser = in_range(1..=100i64))]
    pub webhooks_per_company: i64,
    #[command(flatten)]
    pub webhook_policy: ordersum_webhooks::PolicySettings,
}

impl Settings {
    /// Settings with every default, for `database_url`, `redis_url` and the
    /// store `storage_url`.
    pub fn new(
        database_url: impl Into<String>,
        redis_url: impl Into<String>,
        storage_url: impl Into<String>,
    ) -> Self {
        let (database_url, redis_url, storage_url) =
            (database_url.into(), redis_url.into(), storage_url.into());
        ordersum_runtime::defaults_of(&[
            "ordersum-api",
            "--database-url",
            &database_url,
            "--redis-url",
            &redis_url,
            "--storage",
            &storage_url,
        ])
    }

    /// The checks a single declaration cannot state (the ranges are refused
    /// while parsing), naming the setting; nothing is clamped silently.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(token) = &self.admin_token {
            let token = token.expose_secret();
            if token.chars().count() < ADMIN_TOKEN_MIN_CHARS || token.trim() != token {
                return Err(InvalidSetting {
                    setting: "ORDERSUM_ADMIN_TOKEN".into(),
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
                setting: "ORDERSUM_DEFAULT_TIME_ZONE".into(),
                value: self.default_time_zone.clone(),
                rule: "an IANA time zone name such as UTC or Asia/Shanghai".into(),
            });
        }
        for (burst_setting, rate, burst) in [
            (
                "ORDERSUM_RATE_LIMIT_PER_IP_BURST",
                self.rate_limit_per_ip,
                self.rate_limit_per_ip_burst,
            ),
            (
                "ORDERSUM_RATE_LIMIT_PER_KEY_BURST",
                self.rate_limit_per_key,
                self.rate_limit_per_key_burst,
            ),
        ] {
            if rate > 0 {
                // A burst below the rate would refuse a steady caller.
                check_range(burst_setting, burst, rate..=10_000_000)?;
            }
        }
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

    fn parse(args: &[&str]) -> Result<Settings, String> {
        Settings::try_parse_from(["ordersum-api"].iter().chain(args)).map_err(|err| err.to_string())
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_variable_and_the_range() {
        let refused = |args: &[&str]| parse(args).expect_err("refused");
        assert!(
            refused(&["--default-wait-secs", "600"])
                .contains("ORDERSUM_DEFAULT_WAIT_SECONDS=600 is not allowed: between 0 and 60")
        );
        assert!(
            refused(&["--max-connections", "0"])
                .contains("ORDERSUM_MAX_CONNECTIONS=0 is not allowed: between 1 and 1000000")
        );
        assert!(
            refused(&["--url-ttl-seconds", "691200"])
                .contains("ORDERSUM_URL_TTL_SECONDS=691200 is not allowed: between 1 and 604800")
        );
        assert!(
            refused(&["--db-max-connections", "many"]).contains("ORDERSUM_DB_MAX_CONNECTIONS=many")
        );
    }

    #[test]
    fn cross_field_rules_are_refused_naming_the_variable() {
        let ok = Settings::new("db", "redis", "file:///tmp");
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        let refused = |tweak: fn(&mut Settings)| {
            let mut settings = Settings::new("db", "redis", "file:///tmp");
            tweak(&mut settings);
            settings.validate().expect_err("refused").to_string()
        };
        assert!(
            refused(|s| s.default_time_zone = "Mars/Olympus".into())
                .starts_with("ORDERSUM_DEFAULT_TIME_ZONE=Mars/Olympus")
        );
        assert_eq!(
            refused(|s| s.rate_limit_per_key_burst = 10),
            "ORDERSUM_RATE_LIMIT_PER_KEY_BURST=10 is not allowed: between 50 and 10000000"
        );
        assert!(
            refused(|s| s.admin_token = Some(SecretString::from("short")))
                .starts_with("ORDERSUM_ADMIN_TOKEN=[redacted] is not allowed")
        );
        // A limit turned off needs no burst.
        let mut off = Settings::new("db", "redis", "file:///tmp");
        off.rate_limit_per_ip = 0;
        off.rate_limit_per_ip_burst = 0;
        assert!(off.validate().is_ok());
    }

    #[test]
    fn new_is_the_declared_defaults() {
        let new = Settings::new("db", "redis", "file:///tmp");
        assert_eq!(new.addr.to_string(), "127.0.0.1:8080");
        assert_eq!((new.max_active_jobs, new.key_cache_secs), (5, 2));
        assert_eq!(new.storage.url, "file:///tmp");
        assert_eq!(new.backends.redis_url.expose_secret(), "redis");
        assert!(!new.require_timestamp);
    }

    #[test]
    fn require_timestamp_takes_true_or_false() {
        assert!(
            parse(&["--require-timestamp", "true"])
                .expect("true")
                .require_timestamp
        );
        assert!(
            !parse(&["--require-timestamp", "false"])
                .expect("false")
                .require_timestamp
        );
    }
}
