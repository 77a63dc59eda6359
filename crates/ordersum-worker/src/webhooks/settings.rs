//! The deliverer's settings, flattened into the worker's.

use std::time::Duration;

use ordersum_runtime::{KeyEncryptionSettings, in_range};
use ordersum_webhooks::PolicySettings;

/// How this worker delivers webhooks.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliverySettings {
    #[command(flatten)]
    pub policy: PolicySettings,
    /// Webhook deliveries one worker has in flight at once.
    #[arg(long, env = "ORDERSUM_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = in_range(1..=256usize))]
    pub webhook_concurrency: usize,
    /// Factor on the retry schedule (immediately, 5 s, 5 min, 30 min, 2 h,
    /// 5 h, 10 h, 14 h, 20 h, 24 h); below 1 for tests only.
    #[arg(long, env = "ORDERSUM_WEBHOOK_RETRY_SCALE", default_value_t = 1.0,
          value_parser = in_range(0.0001..=1.0f64))]
    pub webhook_retry_scale: f64,
    /// Seconds a claimed delivery stays this worker's; a worker that died
    /// mid-delivery has it tried again after this. Above the 15 s an
    /// attempt may take.
    #[arg(long, env = "ORDERSUM_WEBHOOK_LEASE_SECONDS", default_value_t = 60,
          value_parser = in_range(16..=3600u64))]
    pub webhook_lease_secs: u64,
    /// Milliseconds between looks for due deliveries when no job end wakes
    /// the deliverer (retries fall due without one).
    #[arg(long, env = "ORDERSUM_WEBHOOK_POLL_MS", default_value_t = 1000,
          value_parser = in_range(50..=60_000u64))]
    pub webhook_poll_ms: u64,
    /// Opens webhook secrets sealed by the API (the API's keys).
    #[command(flatten)]
    pub key_encryption: KeyEncryptionSettings,
}

impl DeliverySettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.webhook_lease_secs)
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.webhook_poll_ms)
    }
}
