//! The worker's settings, read once from the environment (see `.env.example`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ordersum_runtime::{Backends, InvalidSetting, check_range, in_range};

use crate::workbook::EXCEL_MAX_DATA_ROWS;
use ordersum_storage::StorageSettings;

/// Everything a worker process can be told: each setting declared once
/// (variable, default, range, help; see `ordersum_runtime::in_range`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ordersum-worker",
    version,
    about = "ordersum worker: order summaries into workbooks"
)]
pub struct Settings {
    #[command(flatten)]
    pub backends: Backends,
    /// Where the worker reads orders and their labels (a read replica, say;
    /// job state stays on `DATABASE_URL`). Default: `DATABASE_URL`.
    #[arg(
        long,
        env = "ORDERSUM_ORDERS_DATABASE_URL",
        hide_env_values = true,
        value_parser = ordersum_runtime::secret_text
    )]
    pub orders_database_url: Option<ordersum_runtime::SecretString>,
    /// How far the orders replica may be behind the moment a job was
    /// accepted (its last replayed commit) before the job waits for it.
    #[arg(long, env = "ORDERSUM_MAX_REPLICA_LAG_SECONDS", default_value_t = 0,
          value_parser = in_range(0..=86_400u64))]
    pub max_replica_lag_secs: u64,
    /// Most Postgres connections in the worker's pool.
    #[arg(long, env = "ORDERSUM_WORKER_DB_MAX_CONNECTIONS", default_value_t = 8,
          value_parser = in_range(1..=1000u32))]
    pub db_max_connections: u32,
    /// Jobs one worker process runs at once.
    #[arg(long, env = "ORDERSUM_WORKER_CONCURRENCY", default_value_t = 2,
          value_parser = in_range(1..=256usize))]
    pub concurrency: usize,
    /// Orders read per keyset page.
    #[arg(long, env = "ORDERSUM_PAGE_SIZE", default_value_t = 10_000,
          value_parser = in_range(1..=1_000_000i64))]
    pub page_size: i64,
    /// Data rows per sheet before `… (2)` continues it (Excel holds 1 048 575).
    #[arg(long, env = "ORDERSUM_SHEET_MAX_ROWS", default_value_t = EXCEL_MAX_DATA_ROWS,
          value_parser = in_range(1..=EXCEL_MAX_DATA_ROWS))]
    pub sheet_max_rows: u32,
    /// Zip compression of the workbook, 1 (fast) to 9 (small).
    #[arg(long, env = "ORDERSUM_ZIP_LEVEL", default_value_t = 1,
          value_parser = in_range(1..=9u8))]
    pub zip_level: u8,
    /// Where a workbook's sheet data waits until it is zipped (the zip itself
    /// streams to the store). Default: the system temp dir.
    #[arg(long, env = "ORDERSUM_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Hours a finished summary is kept before it expires.
    #[arg(long, env = "ORDERSUM_RETENTION_HOURS", default_value_t = 168,
          value_parser = in_range(1..=24 * 366i64))]
    pub retention_hours: i64,
    /// How often progress and the heartbeat are written, and cancellation read.
    #[arg(long, env = "ORDERSUM_PROGRESS_INTERVAL_MS", default_value_t = 1000,
          value_parser = in_range(10..=60_000u64))]
    pub progress_interval_ms: u64,
    /// Fallback only: a push wakes idle workers at once (Redis pub/sub);
    /// unwoken, an idle worker looks for jobs this often (a lost wake-up, a
    /// delayed retry coming due).
    #[arg(long, env = "ORDERSUM_POLL_INTERVAL_MS", default_value_t = 1_000,
          value_parser = in_range(10..=60_000u64))]
    pub poll_interval_ms: u64,
    /// Attempts a job gets before it fails for good (retryable errors only).
    #[arg(long, env = "ORDERSUM_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = in_range(1..=100i32))]
    pub max_attempts: i32,
    /// First retry delay; each further retry doubles it (jitter: half to all
    /// of it).
    #[arg(long, env = "ORDERSUM_RETRY_BASE_MS", default_value_t = 2000,
          value_parser = in_range(1..=3_600_000u64))]
    pub retry_base_ms: u64,
    /// Longest retry delay (at least the first).
    #[arg(long, env = "ORDERSUM_RETRY_MAX_MS", default_value_t = 60_000,
          value_parser = in_range(1..=3_600_000u64))]
    pub retry_max_ms: u64,
    /// A running job whose heartbeat is older than this is taken back (at
    /// least two progress intervals).
    #[arg(long, env = "ORDERSUM_STALE_AFTER_SECONDS", default_value_t = 30,
          value_parser = in_range(1..=86_400u64))]
    pub stale_after_secs: u64,
    /// How often the sweeper runs (one worker at a time).
    #[arg(long, env = "ORDERSUM_SWEEP_INTERVAL_SECONDS", default_value_t = 10,
          value_parser = in_range(1..=3600u64))]
    pub sweep_interval_secs: u64,
    /// A queued job still waiting in Redis this long after its push is pushed again.
    #[arg(long, env = "ORDERSUM_REPUSH_AFTER_SECONDS", default_value_t = 300,
          value_parser = in_range(1..=86_400u64))]
    pub repush_after_secs: u64,
    /// Days the row of an ended job (failed, cancelled, expired) is kept
    /// after it finished; then the sweeper deletes it.
    #[arg(long, env = "ORDERSUM_JOB_ROW_RETENTION_DAYS", default_value_t = 30,
          value_parser = in_range(1..=3650u32))]
    pub job_row_retention_days: u32,
    /// On SIGTERM, how long running jobs may go on before they are handed back.
    #[arg(long, env = "ORDERSUM_SHUTDOWN_GRACE_SECONDS", default_value_t = 20,
          value_parser = in_range(0..=3600u64))]
    pub shutdown_grace_secs: u64,
    /// A job running longer than this many seconds fails.
    #[arg(long, env = "ORDERSUM_JOB_TIMEOUT_SECONDS", default_value_t = 3600,
          value_parser = in_range(1..=7 * 86_400u64))]
    pub job_timeout_secs: u64,
    /// Name of this worker, unique per process. Default: host, pid and a
    /// random suffix.
    #[arg(long, env = "ORDERSUM_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Tests only: a directory where an attempt, its workbook written into
    /// the store but the object not yet completed, creates `<job id>.paused`
    /// and waits for `<job id>.go` (a test stops the process there).
    #[arg(long, env = "ORDERSUM_TEST_PAUSE_DIR", hide = true)]
    pub test_pause_dir: Option<PathBuf>,
    /// Where the worker serves `GET /metrics` (Prometheus); `off` or empty:
    /// not served. Left at the default, a taken port (another worker on the
    /// host) falls back to a free one, logged and shown in the console's
    /// workers table; an address set here that is taken stops the worker.
    #[arg(long, env = "ORDERSUM_WORKER_METRICS_ADDR", default_value_t = MetricsAddr::default())]
    pub metrics_addr: MetricsAddr,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub webhooks: crate::webhooks::DeliverySettings,
}

impl Settings {
    /// Defaults, for `database_url`, `redis_url` and the store `storage_url`.
    pub fn new(database_url: &str, redis_url: &str, storage_url: &str) -> Self {
        ordersum_runtime::defaults_of(&[
            "ordersum-worker",
            "--database-url",
            database_url,
            "--redis-url",
            redis_url,
            "--storage",
            storage_url,
        ])
    }

    /// An optional setting given as an empty variable (`ORDERSUM_WORKER_ID=`,
    /// as `.env.example` lists them) means "not set": clap would take it as
    /// an empty value, and every worker would then share the name "".
    pub fn without_empty_values(mut self) -> Self {
        self.worker_id = self.worker_id.filter(|id| !id.trim().is_empty());
        self.temp_dir = self.temp_dir.filter(|dir| !dir.as_os_str().is_empty());
        self.orders_database_url = self.orders_database_url.filter(|url| {
            !ordersum_runtime::ExposeSecret::expose_secret(url)
                .trim()
                .is_empty()
        });
        self.test_pause_dir = self
            .test_pause_dir
            .filter(|dir| !dir.as_os_str().is_empty());
        self
    }

    /// The checks a single declaration cannot state (the ranges are refused
    /// while parsing), naming the setting; nothing is clamped silently.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check_range(
            "ORDERSUM_RETRY_MAX_MS",
            self.retry_max_ms,
            self.retry_base_ms..=3_600_000,
        )?;
        // A live worker beats every progress interval: a job is stale only
        // after it missed at least two beats.
        let min_stale = (2 * self.progress_interval_ms).div_ceil(1000);
        check_range(
            "ORDERSUM_STALE_AFTER_SECONDS",
            self.stale_after_secs,
            min_stale.max(1)..=86_400,
        )?;
        Ok(())
    }

    pub fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn progress_interval(&self) -> Duration {
        Duration::from_millis(self.progress_interval_ms)
    }

    /// Delay before retry number `attempt` (1-based): base × 2^(attempt-1),
    /// capped, with jitter between half and all of it.
    pub fn retry_delay(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let full = self
            .retry_base_ms
            .saturating_mul(1 << exponent)
            .min(self.retry_max_ms);
        let jittered = full / 2 + rand::random_range(0..=full / 2);
        Duration::from_millis(jittered)
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_secs)
    }

    pub fn job_row_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.job_row_retention_days) * 86_400)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours.unsigned_abs().saturating_mul(3600))
    }
}

/// `ORDERSUM_WORKER_METRICS_ADDR`: an address to serve metrics on, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

impl MetricsAddr {
    pub const DEFAULT: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
}

impl Default for MetricsAddr {
    fn default() -> Self {
        MetricsAddr(Some(Self::DEFAULT))
    }
}

impl FromStr for MetricsAddr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            return Ok(MetricsAddr(None));
        }
        value
            .parse()
            .map(|addr| MetricsAddr(Some(addr)))
            .map_err(|_| format!("`{value}` is not an address like 127.0.0.1:9464 (or `off`)"))
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_up_to_the_cap() {
        let settings = Settings::new("postgres://x", "redis://x", "file:///tmp");
        for attempt in 1..=10 {
            let full = (2000u64 << (attempt - 1)).min(60_000);
            let delay = settings.retry_delay(attempt).as_millis() as u64;
            assert!(
                (full / 2..=full).contains(&delay),
                "attempt {attempt}: {delay} ms not in [{}, {full}]",
                full / 2
            );
        }
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_variable_and_the_range() {
        use clap::Parser;
        let refused = |args: &[&str]| {
            Settings::try_parse_from(["ordersum-worker"].iter().chain(args))
                .expect_err("refused")
                .to_string()
        };
        assert!(
            refused(&["--concurrency", "0"])
                .contains("ORDERSUM_WORKER_CONCURRENCY=0 is not allowed: between 1 and 256")
        );
        assert!(refused(&["--zip-level", "12"]).contains("ORDERSUM_ZIP_LEVEL=12"));
        assert!(refused(&["--page-size", "0"]).contains("ORDERSUM_PAGE_SIZE=0"));
        assert!(
            refused(&["--upload-concurrency", "0"]).contains("ORDERSUM_S3_UPLOAD_CONCURRENCY=0")
        );
        assert!(refused(&["--job-timeout-secs", "0"]).contains("ORDERSUM_JOB_TIMEOUT_SECONDS=0"));
        let too_many = (EXCEL_MAX_DATA_ROWS + 1).to_string();
        assert!(refused(&["--sheet-max-rows", &too_many]).contains("ORDERSUM_SHEET_MAX_ROWS"));
    }

    #[test]
    fn cross_field_rules_are_refused_naming_the_variable() {
        let ok = Settings::new("p", "r", "s");
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        let refused = |tweak: fn(&mut Settings)| {
            let mut settings = Settings::new("p", "r", "s");
            tweak(&mut settings);
            settings.validate().expect_err("refused").to_string()
        };
        // The cap below the first delay.
        assert!(refused(|s| s.retry_max_ms = 100).starts_with("ORDERSUM_RETRY_MAX_MS=100"));
        // Stale after fewer than two missed beats.
        assert!(
            refused(|s| {
                s.progress_interval_ms = 5000;
                s.stale_after_secs = 5;
            })
            .starts_with("ORDERSUM_STALE_AFTER_SECONDS=5")
        );
    }

    #[test]
    fn an_empty_worker_id_or_temp_dir_means_not_set() {
        let parsed =
            <Settings as clap::Parser>::try_parse_from(["ordersum-worker", "--worker-id", " "])
                .expect("parsed")
                .without_empty_values();
        assert_eq!(parsed.worker_id, None);
        let mut settings = Settings::new("p", "r", "s");
        settings.temp_dir = Some(PathBuf::new());
        assert_eq!(settings.without_empty_values().temp_dir, None);
    }

    #[test]
    fn the_metrics_address_defaults_to_port_9464_and_off_or_empty_turns_it_off() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            Settings::try_parse_from(
                [
                    "ordersum-worker",
                    "--database-url",
                    "postgres://x",
                    "--redis-url",
                    "redis://x",
                ]
                .iter()
                .chain(args),
            )
            .map(|s| s.metrics_addr)
        };
        let default = "127.0.0.1:9464".parse().ok();
        assert_eq!(parse(&[]).expect("default").0, default);
        assert_eq!(Settings::new("p", "r", "s").metrics_addr.0, default);
        assert_eq!(parse(&["--metrics-addr", "off"]).expect("off").0, None);
        assert_eq!(parse(&["--metrics-addr", "OFF"]).expect("OFF").0, None);
        assert_eq!(parse(&["--metrics-addr", ""]).expect("empty").0, None);
        assert_eq!(
            parse(&["--metrics-addr", "0.0.0.0:9100"]).expect("addr").0,
            "0.0.0.0:9100".parse().ok()
        );
        assert!(parse(&["--metrics-addr", "9464"]).is_err());
    }
}
