//! Helpers for the end-to-end tests: start the API on port 0 against the
//! test's own database and its own Redis queue, make API keys, and call the
//! API the way UCloud's SDKs do (form POST, JSON POST, GET), signing with an
//! implementation written here independently of the service's.

#![allow(clippy::unwrap_used)]

pub mod gate;
pub mod oracle;
pub mod procs;
pub mod receiver;
pub mod topology;

use ordersum_runtime::ExposeSecret;
use std::net::SocketAddr;

use std::path::PathBuf;
use std::sync::Arc;

use ordersum_api::{Application, Settings};
use ordersum_worker::Settings as WorkerSettings;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use sha1::{Digest, Sha1};
use sqlx::PgPool;
use uuid::Uuid;

/// Redis for the tests: `REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Logs only when `TEST_LOG` is set.
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,ordersum_api=debug")
            .try_init();
    }
}

/// A key pair of one company.
#[derive(Debug, Clone)]
pub struct Key {
    pub public: String,
    pub private: String,
    pub company_id: i64,
}

/// A running API with its own database, queue and file store.
#[derive(Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub settings: Settings,
    pub http: reqwest::Client,
    /// The API's long-poll registry (how many calls wait).
    pub watch: Arc<ordersum_api::watch::JobWatch>,
    /// Removes the test's local directories when the test ends.
    pub dirs: Arc<TestDirs>,
    /// The services' connections: `pool` itself, or through the
    /// topology's PgBouncer (`topology::Topology::of_this_run`).
    pub databases: ordersum_model::pool::Databases,
    /// Through the topology: service processes' database variables, and
    /// where workers read orders (the replica).
    pub topology_env: Vec<(String, String)>,
    /// Through the topology: ends the test database's sessions at the end.
    pub end_sessions: Option<Arc<topology::EndSessions>>,
}

/// Directories a test made under the system temp dir, removed on drop.
#[derive(Debug, Default)]
pub struct TestDirs(std::sync::Mutex<Vec<PathBuf>>);

impl TestDirs {
    /// A new empty directory.
    pub fn make(&self, what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ordersum-test-{what}-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        self.0.lock().unwrap().push(dir.clone());
        dir
    }
}

impl Drop for TestDirs {
    fn drop(&mut self) {
        for dir in self.0.lock().unwrap().drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

thread_local! {
    static DIRS: Arc<TestDirs> = Arc::new(TestDirs::default());
}

/// A new empty directory of the current test, removed when it ends.
pub fn scratch_dir(what: &str) -> PathBuf {
    DIRS.with(|dirs| dirs.make(what))
}

/// Settings for a test: a fresh queue name, port 0, a fresh local file store.
pub fn test_settings() -> Settings {
    let files = DIRS.with(|dirs| dirs.make("files"));
    let mut settings = Settings::new(
        "postgres://unused",
        redis_url(),
        format!("file://{}", files.display()),
    );
    settings.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.backends.queue = format!("ordersum-test:{}", Uuid::new_v4());
    settings.storage.url_secret = Some("test-url-secret-of-32-bytes-or-more".into());
    settings
}

/// An `s3://` store URL on the local S3 server started by scripts/test.sh
/// (`scripts/s3.sh`), under a prefix of its own.
pub fn s3_storage(settings: &mut ordersum_storage::StorageSettings) {
    let endpoint = std::env::var("S3_ENDPOINT").expect(
        "S3_ENDPOINT is not set: run the tests through scripts/test.sh, which starts the S3 server",
    );
    let bucket = std::env::var("S3_BUCKET").unwrap_or_else(|_| "order-summaries".into());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    settings.url = format!(
        "s3://{bucket}/test-{}?endpoint={endpoint}&region={region}&path_style=true",
        Uuid::new_v4()
    );
    settings.access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
    settings.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok().map(Into::into);
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, test_settings()).await
}

pub async fn spawn_app_with(pool: PgPool, settings: Settings) -> TestApp {
    spawn_app_through(pool, settings, topology::Topology::of_this_run()).await
}

/// The API on `pool`'s database, through `topology` when given.
pub async fn spawn_app_through(
    pool: PgPool,
    settings: Settings,
    topology: Option<topology::Topology>,
) -> TestApp {
    init_test_log();
    let (databases, topology_env, end_sessions) = match topology {
        Some(topology) => {
            let database = pool.connect_options().get_database().unwrap().to_owned();
            let direct = direct_url(&database);
            (
                topology.databases(&pool).await,
                topology.service_env(&database, &direct).await,
                Some(Arc::new(topology::EndSessions { direct_url: direct })),
            )
        }
        None => (pool.clone().into(), Vec::new(), None),
    };
    let app = Application::build(settings.clone(), databases.clone())
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let watch = app.job_watch();
    tokio::spawn(app.run_until(std::future::pending()));
    let dirs = DIRS.with(Arc::clone);
    TestApp {
        addr,
        pool,
        settings,
        http: reqwest::Client::new(),
        watch,
        dirs,
        databases,
        topology_env,
        end_sessions,
    }
}

/// The URL of test database `database` on `DATABASE_URL`'s server.
fn direct_url(database: &str) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{database}")
}

/// A worker running in this process on the app's queue and store.
pub struct TestWorker {
    pub temp_dir: PathBuf,
    pub ctx: Arc<ordersum_worker::context::JobContext>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestWorker {
    /// Stops taking jobs and waits for the worker to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), &mut self.handle).await;
    }

    /// Files left in the worker's temp dir.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.temp_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

/// A worker's settings on the app's queue and store, with a temp dir of
/// its own.
pub fn worker_settings(app: &TestApp) -> WorkerSettings {
    let mut settings = WorkerSettings::new(
        "postgres://unused",
        app.settings.backends.redis_url.expose_secret(),
        &app.settings.storage.url,
    );
    settings.storage = app.settings.storage.clone();
    settings.backends.queue = app.settings.backends.queue.clone();
    settings.temp_dir = Some(app.dirs.make("worker-tmp"));
    settings.webhooks.key_encryption = app.settings.key_encryption.clone();
    for (name, value) in &app.topology_env {
        match name.as_str() {
            "ORDERSUM_ORDERS_DATABASE_URL" => {
                settings.orders_database_url = Some(value.clone().into());
            }
            "ORDERSUM_PG_STATEMENT_CACHE" => {
                settings.backends.pg_statement_cache = value.parse().unwrap();
            }
            _ => {}
        }
    }
    settings
}

/// A worker's context on the app's queue and store, with no consumer or
/// sweeper running: the test sweeps by hand.
pub async fn idle_worker_context(
    app: &TestApp,
    tweak: impl FnOnce(&mut WorkerSettings),
) -> Arc<ordersum_worker::context::JobContext> {
    let mut settings = worker_settings(app);
    tweak(&mut settings);
    ordersum_worker::startup::job_context(settings, app.databases.clone())
        .await
        .unwrap()
}

/// One sweep by hand, waiting for the lock while another sweeper (a
/// running worker's) holds it.
pub async fn sweep(ctx: &ordersum_worker::context::JobContext) -> ordersum_worker::sweeper::Sweep {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(sweep) = ordersum_worker::sweeper::sweep_once(ctx).await.unwrap() {
            return sweep;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep lock stayed taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Starts a worker for `app`; `tweak` adjusts its settings.
pub async fn spawn_worker(app: &TestApp, tweak: impl FnOnce(&mut WorkerSettings)) -> TestWorker {
    let mut settings = worker_settings(app);
    let temp_dir = settings.temp_dir.clone().unwrap();
    settings.progress_interval_ms = 100;
    settings.poll_interval_ms = 100;
    tweak(&mut settings);
    let ctx = ordersum_worker::startup::job_context(settings, app.databases.clone())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(ordersum_worker::startup::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    TestWorker {
        temp_dir,
        ctx,
        stop: Some(stop),
        handle,
    }
}

/// Inserts `orders` random orders for `company_id` within the last `days`
/// days, with `ordersum seed`'s generator.
pub async fn seed(pool: &PgPool, company_id: i64, orders: u64, days: u32, rng_seed: u64) {
    let args = ordersum_cli::seed::SeedArgs {
        company: company_id,
        orders,
        days,
        seed: Some(rng_seed),
    };
    ordersum_cli::seed::run(pool, args).await.unwrap();
}

/// Lowercase hex SHA1 of the params sorted by key, `key + value` each, then
/// the private key: the rule of UCloud's SDKs, written out again here.
pub fn sdk_signature(pairs: &[(String, String)], private_key: &str) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha1::new();
    for (k, v) in sorted {
        hasher.update(k.as_bytes());
        hasher.update(v.as_bytes());
    }
    hasher.update(private_key.as_bytes());
    hex::encode(hasher.finalize())
}

/// `params` plus `PublicKey` and a valid `Signature`.
pub fn signed(key: &Key, params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pairs.push(("PublicKey".into(), key.public.clone()));
    let signature = sdk_signature(&pairs, &key.private);
    pairs.push(("Signature".into(), signature));
    pairs
}

impl TestApp {
    /// The test database's URL, for processes of their own.
    pub fn database_url(&self) -> String {
        direct_url(self.pool.connect_options().get_database().unwrap())
    }

    /// Every file in the app's local (`file://`) store, partial ones included.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, files: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, files);
                } else {
                    files.push(path);
                }
            }
        }
        let root = self.settings.storage.url.trim_start_matches("file://");
        let mut files = Vec::new();
        walk(std::path::Path::new(root), &mut files);
        files
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A new enabled key for `company_id`.
    pub async fn create_key(&self, company_id: i64) -> Key {
        let public = format!("test-{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
        let private = Alphanumeric.sample_string(&mut rand::rng(), 40);
        ordersum_model::store::keys::insert_api_key(&self.pool, &public, &private, company_id)
            .await
            .unwrap();
        Key {
            public,
            private,
            company_id,
        }
    }

    /// POSTs `pairs` as a form; answers the HTTP status and the JSON body.
    pub async fn post_form_raw(&self, pairs: &[(String, String)]) -> (u16, Value) {
        let response = self.http.post(self.url()).form(pairs).send().await.unwrap();
        read(response).await
    }

    /// A signed form POST, as UCloud's SDKs send it; asserts HTTP 200.
    pub async fn call(&self, key: &Key, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.post_form_raw(&signed(key, params)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A signed GET with the params in the query string.
    pub async fn call_get(&self, key: &Key, params: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(self.url())
            .query(&signed(key, params))
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A signed JSON POST: `body` must be an object; arrays are signed as
    /// their values concatenated, numbers as their text.
    pub async fn call_json(&self, key: &Key, mut body: Value) -> Value {
        let object = body.as_object_mut().unwrap();
        object.insert("PublicKey".into(), Value::String(key.public.clone()));
        let pairs: Vec<(String, String)> = object
            .iter()
            .map(|(k, v)| (k.clone(), json_signing_text(v)))
            .collect();
        let signature = sdk_signature(&pairs, &key.private);
        object.insert("Signature".into(), Value::String(signature));
        let response = self.http.post(self.url()).json(&body).send().await.unwrap();
        let (status, body) = read(response).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A body sent as is with the given content type; answers status and text.
    pub async fn post_raw(&self, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let response = self
            .http
            .post(self.url())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn get_path(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Number of job rows of a company.
    pub async fn job_rows(&self, company_id: i64) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM summary_jobs WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn json_signing_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(json_signing_text).collect(),
        other => other.to_string(),
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `RetCode` of an answer.
pub fn ret_code(body: &Value) -> i64 {
    body["RetCode"].as_i64().unwrap_or(-1)
}
