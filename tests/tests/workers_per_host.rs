//! Many workers on one host, as a new user starts them: the README's
//! horizontal scaling with every setting left at its default. The first
//! worker takes the default metrics port, the others fall back to free ones
//! (logged, and shown in the console's workers table); only an address set
//! explicitly that is taken stops a worker, in one line.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use ordersum_model::store;
use ordersum_tests::oracle::{COMPANY, submit_window_summary, wait_until_ended};
use ordersum_tests::procs::{UNSET, WorkerProcess};
use ordersum_tests::{scratch_dir, seed, spawn_app_with, test_settings};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn three_workers_with_default_settings_on_one_host_all_take_jobs_and_serve_metrics(
    pool: PgPool,
) {
    let mut settings = test_settings();
    settings.max_active_jobs = 20;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 600, 10, 3).await;
    let key = app.create_key(COMPANY).await;
    let pause = scratch_dir("pause");
    let pause_dir = pause.to_str().unwrap();
    let env = [
        ("ORDERSUM_WORKER_METRICS_ADDR", UNSET),
        ("ORDERSUM_WORKER_CONCURRENCY", "1"),
        ("ORDERSUM_TEST_PAUSE_DIR", pause_dir),
    ];
    let mut workers = Vec::new();
    for name in ["first", "second", "third"] {
        workers.push(WorkerProcess::start(&app, name, &env).await);
    }

    // Nine jobs, each held by the worker that took it just before it ends.
    // A busy worker may keep a delivery waiting for its one slot, so more
    // jobs than workers: whatever a busy one keeps, an idle one finds work.
    let now = Utc::now().timestamp();
    let mut ids = Vec::new();
    for minutes in 1..=9 {
        ids.push(submit_window_summary(&app, &key, (now - minutes * 3600, now)).await);
    }
    let mut holders = Vec::new();
    for _ in 0..600 {
        holders = sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT worker_id FROM summary_jobs WHERE status = 'running' AND worker_id IS NOT NULL",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if holders.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    holders.sort();
    let mut names: Vec<String> = workers.iter().map(|w| w.id.clone()).collect();
    names.sort();
    assert_eq!(holders, names, "each worker holds a job");

    // Each one's metrics, at the address the console shows for it.
    let rows = store::workers::workers(&app.pool, Duration::from_secs(60))
        .await
        .unwrap();
    let mut addrs: Vec<String> = Vec::new();
    for worker in &workers {
        let row = rows.iter().find(|row| row.id == worker.id).unwrap();
        let addr = row
            .metrics_addr
            .clone()
            .expect("metrics address registered");
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let scraped = app
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200);
        assert!(scraped.text().await.unwrap().contains("ordersum_"));
        addrs.push(addr);
    }
    let mut distinct = addrs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{addrs:?}");
    let fell_back = workers
        .iter()
        .filter(|w| w.log_text().contains("default metrics port is taken"))
        .count();
    assert!(fell_back >= 2, "at most one worker holds the default port");

    // An explicit address that is taken stops the worker, in one line.
    let taken = addrs[0].clone();
    let mut explicit = WorkerProcess::start(
        &app,
        "explicit",
        &[("ORDERSUM_WORKER_METRICS_ADDR", taken.as_str())],
    )
    .await;
    let status = explicit.exited(Duration::from_secs(20)).await;
    assert!(!status.success());
    let log = explicit.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].starts_with("ordersum-worker: ORDERSUM_WORKER_METRICS_ADDR=")
            && lines[0].contains(&taken),
        "{log}"
    );

    for id in &ids {
        std::fs::write(pause.join(format!("{id}.go")), b"").unwrap();
    }
    for id in &ids {
        let job = wait_until_ended(&app, &key, id).await;
        assert_eq!(job["Status"], "Succeeded", "{job}");
    }
}
