//! Builds the API: connects to Postgres and Redis, applies migrations, binds
//! the listener (port 0 works, for tests) and serves until told to stop.

use ordersum_runtime::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get};
use ordersum_model::pool::Databases;
use ordersum_queue::JobQueue;
use ordersum_storage::Store;
use tokio::net::TcpListener;
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::keys::KeyCache;
use crate::ratelimit::{self, Limiter, RateLimits};
use crate::server::{self, ServerLimits};
use crate::settings::Settings;
pub use crate::state::AppState;
use crate::watch::JobWatch;
use crate::{actions, files, health, metrics};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Whole-call bound: the longest long-poll plus slack.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Application {
    listener: TcpListener,
    router: Router,
    server_limits: ServerLimits,
    keys: Arc<KeyCache>,
    rate_limits: RateLimits,
    watch: Arc<JobWatch>,
}

impl Application {
    /// Connects to Postgres (applying pending migrations) and builds the app.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let databases = settings
            .backends
            .connect(
                "ordersum-api",
                settings.db_max_connections,
                settings.dependency_timeout(),
            )
            .connect_and_migrate()
            .await
            .context("connecting to Postgres (DATABASE_URL, ORDERSUM_LISTEN_DATABASE_URL) and applying migrations")?;
        Self::build(settings, databases).await
    }

    /// Builds the app on an existing pool. Redis is connected lazily, so the
    /// API starts (and answers 2000+, not ready) while Redis is down.
    pub async fn build(
        settings: Settings,
        databases: impl Into<Databases>,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let Databases { main: pool, direct } = databases.into();
        let queue = JobQueue::open(
            settings.backends.redis_url.expose_secret(),
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
        let key_cipher = settings.key_encryption.cipher()?;
        let keys = Arc::new(KeyCache::new(
            Duration::from_secs(settings.key_cache_secs),
            settings.key_cache_capacity,
            key_cipher,
        ));
        let rate_limits = RateLimits {
            per_address: Limiter::new(settings.rate_limit_per_ip, settings.rate_limit_per_ip_burst),
            per_key: Limiter::new(
                settings.rate_limit_per_key,
                settings.rate_limit_per_key_burst,
            ),
        };
        let server_limits = ServerLimits {
            header_read_timeout: (settings.header_read_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.header_read_timeout_ms)),
            max_connections: settings.max_connections,
        };
        let watch = JobWatch::start(&direct);
        let state = AppState {
            pool,
            watch: Arc::clone(&watch),
            queue,
            limits: Arc::new(settings.limits()),
            settings: Arc::new(settings),
            metrics: metrics_handle,
            store,
            keys: Arc::clone(&keys),
            rate_limits: rate_limits.clone(),
        };
        Ok(Application {
            listener,
            router: router(state),
            server_limits,
            keys,
            rate_limits,
            watch,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The long-poll registry (for tests and diagnostics).
    pub fn job_watch(&self) -> Arc<JobWatch> {
        Arc::clone(&self.watch)
    }

    /// The API key cache (for tests and diagnostics).
    pub fn key_cache(&self) -> Arc<KeyCache> {
        Arc::clone(&self.keys)
    }

    /// The rate limiters (for tests and diagnostics).
    pub fn rate_limits(&self) -> RateLimits {
        self.rate_limits.clone()
    }

    /// Serves until `shutdown` resolves, then finishes the calls in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(self.listener, self.router, self.server_limits, shutdown).await
    }
}

pub fn router(state: AppState) -> Router {
    let body_deadline = (state.settings.body_read_timeout_ms > 0).then(|| {
        RequestBodyDeadlineLayer::new(Duration::from_millis(state.settings.body_read_timeout_ms))
    });
    let actions = Router::new()
        .route("/", any(actions::endpoint))
        .route("/api", any(actions::endpoint))
        .route_layer(from_fn_with_state(
            state.clone(),
            ratelimit::limit_action_by_address,
        ));
    let downloads = Router::new()
        .route("/files/{*key}", get(files::download))
        .route_layer(from_fn_with_state(
            state.clone(),
            ratelimit::limit_download_by_address,
        ));
    Router::new()
        .merge(actions)
        .merge(downloads)
        .merge(crate::admin::router(&state.settings))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower::util::option_layer(body_deadline))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            CALL_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of one request: method and path only. The query string carries
/// `Signature=` (of a call, or of a download link) and stays out of logs.
fn request_span(request: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}
