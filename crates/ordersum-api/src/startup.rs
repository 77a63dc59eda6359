//! Builds the API: connects to Postgres and Redis, applies migrations, binds
//! the listener (port 0 works, for tests) and serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use ordersum_model::Limits;
use ordersum_queue::JobQueue;
use ordersum_storage::Store;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::keys::KeyCache;
use crate::settings::Settings;
use crate::{actions, files, health, metrics};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Whole-call bound: the longest long-poll plus slack.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub queue: JobQueue,
    pub settings: Arc<Settings>,
    pub limits: Arc<Limits>,
    pub metrics: Option<PrometheusHandle>,
    pub store: Store,
    pub keys: Arc<KeyCache>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Connects to Postgres (applying pending migrations) and builds the app.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let pool = ordersum_model::connect_and_migrate(
            &settings.backends.database_url,
            "ordersum-api",
            settings.db_max_connections,
            settings.dependency_timeout(),
        )
        .await
        .context("connecting to Postgres (DATABASE_URL) and applying migrations")?;
        Self::build(settings, pool).await
    }

    /// Builds the app on an existing pool. Redis is connected lazily, so the
    /// API starts (and answers 2000+, not ready) while Redis is down.
    pub async fn build(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let queue = JobQueue::open(
            &settings.backends.redis_url,
            &settings.backends.queue,
            settings.dependency_timeout(),
        )
        .context("opening the Redis queue (REDIS_URL)")?;
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {}", settings.addr))?;
        let public_url = format!("http://{}", listener.local_addr()?);
        let store =
            Store::open(&settings.storage, &public_url).context("opening ORDERSUM_STORAGE")?;
        let metrics_handle = metrics::handle();
        if let Some(handle) = metrics_handle.clone() {
            tokio::spawn(metrics::run_upkeep(handle));
        }
        let settings_key_ttl = settings.key_cache_secs;
        let key_cipher = settings.key_encryption.cipher()?;
        let state = AppState {
            pool,
            queue,
            limits: Arc::new(settings.limits()),
            settings: Arc::new(settings),
            metrics: metrics_handle,
            store,
            keys: Arc::new(KeyCache::new(
                Duration::from_secs(settings_key_ttl),
                key_cipher,
            )),
        };
        Ok(Application {
            listener,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes the calls in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Small answers go out at once: no Nagle delay behind a delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::warn!(%err, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", any(actions::endpoint))
        .route("/api", any(actions::endpoint))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/files/{*key}", get(files::download))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            CALL_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
