//! What every handler shares: the pool, the queue, the settings, the
//! store, the key cache, the rate limits and the job watch. Built once by
//! `startup`; handlers import it from here, not from `startup`, which
//! imports every handler.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use ordersum_model::Limits;
use ordersum_model::pool::Db;
use ordersum_queue::JobQueue;
use ordersum_storage::Store;

use crate::keys::KeyCache;
use crate::ratelimit::RateLimits;
use crate::settings::Settings;
use crate::watch::JobWatch;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: Db,
    pub queue: JobQueue,
    pub settings: Arc<Settings>,
    pub limits: Arc<Limits>,
    pub metrics: Option<PrometheusHandle>,
    pub store: Store,
    pub keys: Arc<KeyCache>,
    pub rate_limits: RateLimits,
    /// Wakes long-polls when their job ends.
    pub watch: Arc<JobWatch>,
}
