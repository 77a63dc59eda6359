//! A worker that lost its job (paused past the staleness limit, its job
//! taken back and finished by another worker, its temp directory swept)
//! must never touch the winner's file when it resumes: the job stays
//! `Succeeded` with a download that works, and the paused worker ends its
//! attempt quietly, leaving nothing behind.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use ordersum_tests::oracle::{
    COMPANY, download_workbook, run_window_summary, submit_window_summary,
};
use ordersum_tests::procs::WorkerProcess;
use ordersum_tests::{Key, TestApp, spawn_app_with, spawn_worker, test_settings};
use serde_json::Value;
use sqlx::PgPool;
use tokio::time::Instant;

/// Every file under `dir`, recursively (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn is_partial(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".partial")
}

/// Temp directories of attempts at `job_id` in a worker temp dir.
fn temp_dirs_of(temp: &Path, job_id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(temp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(job_id))
        })
        .collect()
}

async fn get(app: &TestApp, key: &Key, id: &str) -> Value {
    app.call(key, &[("Action", "GetOrderSummaryJob"), ("JobId", id)])
        .await
}

/// Waits until `ready` holds, checking every `every`; panics after `within`.
async fn wait_until(
    what: &str,
    within: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(every).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_resuming_after_losing_its_job_leaves_the_winners_file_alone(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    ordersum_tests::seed(&app.pool, COMPANY, 60_000, 30, 51).await;
    let key = app.create_key(COMPANY).await;
    // Both workers share a temp dir, as processes on one host do: the
    // winner's sweeper removes the paused attempt's directory.
    let temp = app.dirs.make("shared-tmp");
    let temp_env = temp.display().to_string();
    let env = [
        ("ORDERSUM_TEMP_DIR", temp_env.as_str()),
        ("ORDERSUM_WORKER_CONCURRENCY", "1"),
        ("ORDERSUM_PAGE_SIZE", "2000"),
    ];
    // A waits at its pause point (the whole workbook written into the
    // store's partial file, the object not completed) until told to go.
    let pause = app.dirs.make("pause");
    let pause_env = pause.display().to_string();
    let mut a_env = env.to_vec();
    a_env.push(("ORDERSUM_TEST_PAUSE_DIR", pause_env.as_str()));
    let mut a = WorkerProcess::start(&app, "a", &a_env).await;
    let now = Utc::now().timestamp();
    let id = submit_window_summary(&app, &key, (now - 31 * 86_400, now + 86_400)).await;
    let root = PathBuf::from(app.settings.storage.url.trim_start_matches("file://"));
    let job_dir = root.join(format!("summaries/{COMPANY}/{id}"));

    // A is saving: stop it there, then let it go (it goes on when resumed).
    wait_until(
        "A at its pause point",
        Duration::from_secs(120),
        Duration::from_millis(20),
        || pause.join(format!("{id}.paused")).exists(),
    )
    .await;
    assert!(
        files_under(&job_dir).iter().any(|f| is_partial(f)),
        "A paused with no partial file: {:?}",
        files_under(&job_dir)
    );
    assert!(
        !temp_dirs_of(&temp, &id).is_empty(),
        "A's job streams through temp files (more orders than one page)"
    );
    a.stop();
    std::fs::write(pause.join(format!("{id}.go")), b"").unwrap();

    // B takes the job back once A's heartbeat is stale, and finishes it.
    let mut b = WorkerProcess::start(&app, "b", &env).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let job = get(&app, &key, &id).await;
        if job["Status"] == "Succeeded" {
            break job;
        }
        assert!(Instant::now() < deadline, "B never finished: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (attempts, worker): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, worker_id FROM summary_jobs WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(worker.as_deref(), Some(b.id.as_str()), "B did not win");
    assert!(attempts >= 2, "attempts {attempts}");
    // A's temp dir is swept while A is stopped (the job is not A's any more).
    wait_until(
        "the paused attempt's temp dir swept",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || temp_dirs_of(&temp, &id).is_empty(),
    )
    .await;

    // A resumes, finds the job is no longer its own and ends its attempt.
    a.cont();
    wait_until(
        "A ending its attempt",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            let log = a.log_text();
            let ended = ["abandoned", "job cancelled", "job failed", "not requeued"]
                .iter()
                .any(|s| log.contains(s));
            ended && !files_under(&job_dir).iter().any(|f| is_partial(f))
        },
    )
    .await;

    let after = get(&app, &key, &id).await;
    assert_eq!(after["Status"], "Succeeded", "{after}");
    assert_eq!(after["Data"]["FileSize"], job["Data"]["FileSize"]);
    download_workbook(&app, &after).await;
    assert!(a.is_running(), "A exited");
    let log = a.log_text();
    assert!(!log.contains("panicked"), "A panicked:\n{log}");
    assert!(
        !log.contains("retrying"),
        "A requeued a job not its own:\n{log}"
    );
    let file_key: String =
        sqlx::query_scalar("SELECT file_key FROM summary_jobs WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        files_under(&job_dir),
        vec![root.join(&file_key)],
        "objects under the job other than the winner's"
    );
    b.terminate(Duration::from_secs(20)).await;
    a.terminate(Duration::from_secs(20)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stored_summary_is_readable_by_the_services_user_only(pool: PgPool) {
    use std::os::unix::fs::PermissionsExt;

    let app = spawn_app_with(pool, test_settings()).await;
    ordersum_tests::seed(&app.pool, COMPANY, 300, 30, 52).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let now = Utc::now().timestamp();
    let job = run_window_summary(&app, &key, (now - 31 * 86_400, now + 86_400)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    download_workbook(&app, &job).await;
    let stored = app.stored_files();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let mode = std::fs::metadata(&stored[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o} of {}", stored[0].display());
    worker.stop().await;
}
