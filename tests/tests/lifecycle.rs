//! The job lifecycle's guarantees, with the worker in the test process:
//! a slow but alive worker keeps its job, duplicate deliveries run a job
//! once, queued jobs left without a delivery get one at the next sweep, a
//! hung job times out, and the sweeper expires summaries past
//! retention and removes temp directories of dead attempts.
//!
//! A job that must be slow is held by the test, not by its number of rows:
//! the test locks `orders` (`OrdersGate`) and the worker's next page waits.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use ordersum_tests::gate::OrdersGate;
use ordersum_tests::oracle::{
    COMPANY, fetch, run_window_summary, submit_window_summary, wait_until_ended,
};
use ordersum_tests::{ret_code, seed, spawn_app_with, spawn_worker, sweep, test_settings};
use sqlx::PgPool;
use uuid::Uuid;

fn window() -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400, now + 86_400)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_slow_but_alive_worker_keeps_its_job(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 30_000, 30, 31).await;
    let key = app.create_key(COMPANY).await;
    // Two workers sweeping every second with a 2 s staleness limit; the job
    // is held mid-export, alive, for twice that limit.
    let tweak = |s: &mut ordersum_worker::Settings| {
        s.stale_after_secs = 2;
        s.sweep_interval_secs = 1;
        s.page_size = 300;
    };
    let a = spawn_worker(&app, tweak).await;
    let b = spawn_worker(&app, tweak).await;
    let started = std::time::Instant::now();
    let mut gate = OrdersGate::close(&app).await;
    let id = submit_window_summary(&app, &key, window()).await;
    gate.hold_mid_export(&id).await;
    let row = async || -> (String, i32, Option<String>, f64) {
        sqlx::query_as(
            "SELECT status, attempts, worker_id, \
             extract(epoch FROM now() - started_at)::float8 FROM summary_jobs WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let (_, _, owner, _) = row().await;
    // Time is what this test is about: the job stays running for twice the
    // staleness limit (the workers sweep every second meanwhile), and one
    // more sweep by hand besides; nobody takes it from its worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, attempts, worker, running_for) = row().await;
        assert_eq!(
            (status.as_str(), attempts, &worker),
            ("running", 1, &owner),
            "the job was taken from its worker"
        );
        if running_for > 4.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the clock stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sweep(&a.ctx).await.requeued_stale, 0);
    let (status, attempts, worker, _) = row().await;
    assert_eq!(
        (status.as_str(), attempts, &worker),
        ("running", 1, &owner),
        "the job was taken from its worker"
    );
    gate.open().await;
    let job = wait_until_ended(&app, &key, &id).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the job was too quick to show anything"
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM summary_jobs WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "the job was taken from its worker");
    a.stop().await;
    b.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn duplicate_deliveries_run_a_job_once(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 2_000, 30, 32).await;
    let key = app.create_key(COMPANY).await;
    let id = Uuid::parse_str(&submit_window_summary(&app, &key, window()).await).unwrap();
    let a = spawn_worker(&app, |_| {}).await;
    let b = spawn_worker(&app, |_| {}).await;
    // The same id delivered four more times, to both workers at once.
    let deliveries = (0..4).map(|i| {
        let ctx = if i % 2 == 0 {
            a.ctx.clone()
        } else {
            b.ctx.clone()
        };
        async move {
            ordersum_worker::runner::run_delivery(&ctx, &ordersum_worker::export::OrderSummary, id)
                .await
        }
    });
    futures::future::join_all(deliveries).await;
    let job = wait_until_ended(&app, &key, &id.to_string()).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM summary_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    a.stop().await;
    b.stop().await;
}

/// Deliveries are tokens: each runs the queued job next in line. One spent
/// without running a job (its own job taken by another delivery while every
/// other queued job was being claimed) or lost in Redis must not leave a
/// job waiting for the late re-push (`repush_after`, 5 minutes): the next
/// sweep counts the deliveries Redis holds against the queued jobs.
#[sqlx::test(migrations = "../migrations")]
async fn queued_jobs_left_without_a_delivery_get_one_at_the_next_sweep(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 200, 30, 33).await;
    let key = app.create_key(COMPANY).await;
    let ctx = ordersum_tests::idle_worker_context(&app, |_| {}).await;
    let (start, end) = window();
    let ids = [
        submit_window_summary(&app, &key, (start, end)).await,
        submit_window_summary(&app, &key, (start + 1, end)).await,
    ];
    assert_eq!(ctx.queue.deliveries_held().await.unwrap(), 2);
    // The deliveries go; the markers (Redis held them, recently) stay.
    let config = ordersum_queue::JobQueue::config(&app.settings.backends.queue);
    let mut redis = redis::Client::open(ordersum_tests::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(config.scheduled_jobs_set())
        .arg(config.active_jobs_list())
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(ctx.queue.deliveries_held().await.unwrap(), 0);

    let swept = sweep(&ctx).await;
    assert_eq!(swept.deliveries_restored, 2, "{swept:?}");
    assert_eq!(swept.repushed, 0, "{swept:?}");
    assert_eq!(ctx.queue.deliveries_held().await.unwrap(), 2);
    // Once whole, a sweep pushes nothing more.
    assert_eq!(sweep(&ctx).await.deliveries_restored, 0);

    let worker = spawn_worker(&app, |_| {}).await;
    for id in &ids {
        let job = wait_until_ended(&app, &key, id).await;
        assert_eq!(job["Status"], "Succeeded", "{job}");
    }
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_running_past_its_time_limit_fails_with_a_clear_message(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 40_000, 30, 33).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| {
        s.job_timeout_secs = 1;
        s.page_size = 200;
    })
    .await;
    // The job hangs on its page query, which waits at the gate, until its
    // time limit ends it.
    let mut gate = OrdersGate::close(&app).await;
    let id = submit_window_summary(&app, &key, window()).await;
    gate.wait_for_reader().await;
    let job = wait_until_ended(&app, &key, &id).await;
    gate.open().await;
    assert_eq!(job["Status"], "Failed", "{job}");
    let message = job["ErrorMessage"].as_str().unwrap();
    assert!(
        message.contains("took longer than the allowed 1 minutes"),
        "{message}"
    );
    assert_eq!(job["Data"], serde_json::json!({}));
    for _ in 0..50 {
        if worker.temp_files().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(worker.temp_files().is_empty(), "{:?}", worker.temp_files());
    // Nor half a file in the store (the zip streams into it as it is made).
    let stored = app.stored_files();
    assert!(stored.is_empty(), "left in the store: {stored:?}");
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweeper_expires_old_summaries_and_removes_dead_temp_dirs(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 500, 30, 34).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.sweep_interval_secs = 1).await;
    let job = run_window_summary(&app, &key, window()).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let id = job["JobId"].as_str().unwrap().to_owned();
    let url = job["Data"]["DownloadURL"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&app, &url).await.status(), 200);
    // A temp dir left by an attempt whose worker died.
    let stray = worker
        .temp_dir
        .join(format!("ordersum-job-{}-dead", Uuid::new_v4()));
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("half.xlsx"), b"PK").unwrap();

    // Retention ends.
    sqlx::query(
        "UPDATE summary_jobs SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut expired = serde_json::Value::Null;
    for _ in 0..50 {
        expired = app
            .call(&key, &[("Action", "GetOrderSummaryJob"), ("JobId", &id)])
            .await;
        if expired["Status"] == "Expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(expired["Status"], "Expired", "{expired}");
    assert_eq!(ret_code(&expired), 0);
    assert_eq!(expired["Data"], serde_json::json!({}));
    assert_eq!(fetch(&app, &url).await.status(), 404, "the object is gone");
    // The same sweep goes on to the temp dirs after expiring the job.
    for _ in 0..50 {
        if !stray.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!stray.exists(), "the stray temp dir is still there");
    worker.stop().await;
}
