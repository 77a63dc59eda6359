//! Real processes for the fault tests: `ordersum-worker` binaries, a Redis
//! server and an S3 server (s3s-fs) of the test's own, on free local ports,
//! each stopped when dropped.

use ordersum_runtime::ExposeSecret;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::TestApp;

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A binary of this workspace, built next to the test executables
/// (scripts/test.sh builds them before the tests run).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

fn signal(child: &Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status();
    }
}

/// SIGKILL and reap, if running.
async fn kill(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not come up");
}

/// The command of service binary `name` on the app's database, queue and
/// store (credentials included), nothing else of the test's environment,
/// `info` logs to `log`; killed when dropped.
fn service_command(app: &TestApp, name: &str, log: &Path) -> Command {
    let storage = &app.settings.storage;
    let mut command = Command::new(workspace_binary(name));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.database_url())
        .env("REDIS_URL", app.settings.backends.redis_url.expose_secret())
        .env("ORDERSUM_QUEUE", &app.settings.backends.queue)
        .env("ORDERSUM_STORAGE", &storage.url)
        .env(
            "ORDERSUM_URL_SECRET",
            storage
                .url_secret
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .unwrap_or_default(),
        )
        .env(
            "AWS_ACCESS_KEY_ID",
            storage.access_key_id.clone().unwrap_or_default(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            storage
                .secret_access_key
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .unwrap_or_default(),
        )
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true);
    // Through the topology: PgBouncer, the direct URL, the replica.
    command.envs(app.topology_env.iter().map(|(k, v)| (k, v)));
    command
}

/// As a value in [`WorkerProcess::start`]'s `env`: the variable is not set.
pub const UNSET: &str = "\0unset";

/// An `ordersum-worker` process on the app's database, queue and store.
pub struct WorkerProcess {
    pub id: String,
    pub log: PathBuf,
    child: Child,
}

impl WorkerProcess {
    /// Starts a worker with fast test timings; `env` overrides any variable.
    pub async fn start(app: &TestApp, name: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
        let dir = app.dirs.make(&format!("proc-{name}"));
        let log = dir.join("worker.log");
        let mut command = service_command(app, "ordersum-worker", &log);
        command
            .env("ORDERSUM_TEMP_DIR", dir.join("tmp"))
            .env("ORDERSUM_WORKER_ID", &id)
            .env("ORDERSUM_WORKER_CONCURRENCY", "2")
            .env("ORDERSUM_PAGE_SIZE", "500")
            .env("ORDERSUM_PROGRESS_INTERVAL_MS", "200")
            .env("ORDERSUM_POLL_INTERVAL_MS", "100")
            .env("ORDERSUM_STALE_AFTER_SECONDS", "3")
            .env("ORDERSUM_SWEEP_INTERVAL_SECONDS", "1")
            .env("ORDERSUM_REPUSH_AFTER_SECONDS", "20")
            .env("ORDERSUM_RETRY_BASE_MS", "500")
            .env("ORDERSUM_RETRY_MAX_MS", "2000")
            .env("ORDERSUM_SHUTDOWN_GRACE_SECONDS", "1")
            // Workers of one test run side by side: none on the default port.
            .env("ORDERSUM_WORKER_METRICS_ADDR", "127.0.0.1:0");
        for (key, value) in env {
            match *value {
                // The binary's own default, as a user who sets nothing gets it.
                UNSET => command.env_remove(key),
                value => command.env(key, value),
            };
        }
        let child = command.spawn().unwrap();
        WorkerProcess { id, log, child }
    }

    /// Waits for the process to exit by itself; answers its status.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the worker did not exit")
            .unwrap()
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits for the exit; answers the exit status.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the worker did not exit after SIGTERM")
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A Redis server of the test's own, with a data directory of its own
/// that a restart keeps.
pub struct RedisProcess {
    pub port: u16,
    /// Its `--dir`: where an AOF (or RDB) file goes, kept across restarts.
    pub dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisProcess {
    /// A server that keeps nothing: no RDB snapshots, no AOF.
    pub async fn start() -> RedisProcess {
        RedisProcess::start_with(&[]).await
    }

    /// A server with `args` after the defaults (`--save "" --appendonly
    /// no`), which they override: e.g. `["--appendonly", "yes"]`.
    pub async fn start_with(args: &[&str]) -> RedisProcess {
        let mut redis = RedisProcess {
            port: free_port(),
            dir: crate::scratch_dir("redis-data"),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and directory: empty, unless its
    /// `args` turned on persistence, then with what it had written there.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let url = self.url();
        wait_until("redis-server", async || redis_ping(&url).await).await;
    }

    /// Stops the server with SIGKILL: no SHUTDOWN, nothing saved on the way
    /// out (an AOF holds what was fsynced before).
    pub async fn stop(&mut self) {
        kill(self.child.take()).await;
    }

    pub async fn flushall(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

async fn redis_ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

/// An S3 server (s3s-fs, installed by scripts/s3.sh) of the
/// test's own, with the bucket `order-summaries`.
pub struct S3Process {
    pub port: u16,
    data: PathBuf,
    child: Option<Child>,
}

pub const S3_BUCKET: &str = "order-summaries";

impl S3Process {
    pub async fn start() -> S3Process {
        let data = crate::scratch_dir("s3-data");
        std::fs::create_dir_all(data.join(S3_BUCKET)).unwrap();
        let mut s3 = S3Process {
            port: free_port(),
            data,
            child: None,
        };
        s3.restart().await;
        s3
    }

    fn binary() -> PathBuf {
        let home = std::env::var("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
            });
        let installed = home.join("bin/s3s-fs");
        if installed.exists() {
            installed
        } else {
            PathBuf::from("s3s-fs")
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Store settings pointing at this server.
    pub fn storage_url(&self) -> String {
        format!(
            "s3://{S3_BUCKET}/faults?endpoint={}&region=us-east-1&path_style=true",
            self.endpoint()
        )
    }

    /// Starts (again) on the same port with the same data.
    pub async fn restart(&mut self) {
        let child = Command::new(Self::binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", "minioadmin", "--secret-key", "minioadmin"])
            .arg(&self.data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("s3s-fs (installed by scripts/s3.sh)");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        wait_until("s3s-fs", async || {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
    }

    pub async fn stop(&mut self) {
        kill(self.child.take()).await;
    }
}

/// Pausing and resuming a worker process, as a long GC-like stall or a
/// frozen VM would.
impl WorkerProcess {
    /// SIGSTOP: the process stops at once, mid-whatever, until `cont`.
    pub fn stop(&self) {
        signal(&self.child, "STOP");
    }

    /// SIGCONT: a stopped process goes on where it was.
    pub fn cont(&self) {
        signal(&self.child, "CONT");
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// An `ordersum-api` process on the app's database, queue and store, on a
/// free port, its stderr (the log) captured in a file.
pub struct ApiProcess {
    pub addr: std::net::SocketAddr,
    pub log: PathBuf,
    child: Child,
}

impl ApiProcess {
    /// Starts the API and waits until `/healthz` answers; `env` overrides
    /// any variable.
    pub async fn start(app: &TestApp, name: &str, env: &[(&str, &str)]) -> ApiProcess {
        let dir = app.dirs.make(&format!("proc-{name}"));
        let log = dir.join("api.log");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = service_command(app, "ordersum-api", &log);
        command.env("ORDERSUM_API_ADDR", addr.to_string());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let url = format!("http://{addr}/healthz");
        wait_until("ordersum-api", async || {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        ApiProcess { addr, log, child }
    }

    /// SIGTERM, then waits for the exit; answers the exit status.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the API did not exit after SIGTERM")
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
