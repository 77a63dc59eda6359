//! Faults with real processes: worker binaries killed or stopped, Redis
//! flushed and restarted, the S3 server stopped, Postgres connections
//! terminated, and a burst of concurrent requests. Every job must end
//! `Succeeded` with a workbook that matches the SQL oracle: none is lost.
//!
//! A job that must still be running when the fault strikes is held there by
//! the test, not by hoping its rows take long: the test locks `orders`
//! (`OrdersGate`) so the worker's next page waits until it lets go.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use ordersum_tests::gate::OrdersGate;
use ordersum_tests::oracle::{COMPANY, assert_job_matches_sql};
use ordersum_tests::procs::{RedisProcess, S3Process, WorkerProcess};
use ordersum_tests::{Key, TestApp, ret_code, seed, spawn_app_with, test_settings};
use serde_json::Value;
use sqlx::PgPool;

/// The whole seeded period (30 days), shifted by `offset` seconds so that
/// jobs differ.
fn window(offset: i64) -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400 + offset, now + 86_400)
}

async fn submit(app: &TestApp, key: &Key, window: (i64, i64)) -> Value {
    let (start, end) = (window.0.to_string(), window.1.to_string());
    app.call(
        key,
        &[
            ("Action", "DownloadOrderSummary"),
            ("StartTime", &start),
            ("EndTime", &end),
        ],
    )
    .await
}

async fn submit_ok(app: &TestApp, key: &Key, window: (i64, i64)) -> String {
    let answer = submit(app, key, window).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    answer["JobId"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, key: &Key, id: &str) -> Value {
    app.call(key, &[("Action", "GetOrderSummaryJob"), ("JobId", id)])
        .await
}

/// Polls the job until `done` holds; panics after `within`.
async fn wait_for(
    app: &TestApp,
    key: &Key,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let job = get(app, key, id).await;
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never got there: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn running_with_rows(job: &Value) -> bool {
    let rows = |sheet: &str| job["Progress"][sheet].as_i64().unwrap_or(0);
    job["Status"] == "Running" && rows("PaidRows") + rows("UnpaidRows") > 0
}

/// Submits a summary of `window` while `orders` is locked and lets the job
/// export a page or two: it is then running, with rows written, its next
/// page waiting at the gate until the test opens it.
async fn submit_held_mid_export(
    app: &TestApp,
    key: &Key,
    window: (i64, i64),
) -> (String, OrdersGate) {
    let mut gate = OrdersGate::close(app).await;
    let id = submit_ok(app, key, window).await;
    gate.hold_mid_export(&id).await;
    let job = get(app, key, &id).await;
    assert!(running_with_rows(&job), "{job}");
    (id, gate)
}

fn ended(job: &Value) -> bool {
    !matches!(job["Status"].as_str(), Some("Queued" | "Running"))
}

/// (attempts, worker id) of a job.
async fn attempts(app: &TestApp, id: &str) -> (i32, Option<String>) {
    sqlx::query_as("SELECT attempts, worker_id FROM summary_jobs WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until a second attempt has claimed the job (the first failed and
/// was retried); panics with `worker`'s log after `within`.
async fn wait_for_retry(app: &TestApp, id: &str, within: Duration, worker: &WorkerProcess) {
    let deadline = tokio::time::Instant::now() + within;
    while attempts(app, id).await.0 < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job was not retried: {}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_killed_mid_export_leaves_its_job_to_another_worker(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 40_000, 30, 21).await;
    let key = app.create_key(COMPANY).await;
    let mut a = WorkerProcess::start(&app, "a", &[]).await;
    let (id, gate) = submit_held_mid_export(&app, &key, window(0)).await;
    let mut b = WorkerProcess::start(&app, "b", &[]).await;
    a.kill().await;
    // Killed mid-export. B takes the job back once A's heartbeat is stale
    // and reads it from the start (A's page query, still waiting, runs for
    // nobody and its backend ends).
    gate.open().await;

    let job = wait_for(&app, &key, &id, Duration::from_secs(120), ended).await;
    assert_job_matches_sql(&app, &job, window(0), "", Tz::UTC).await;
    let (tries, worker) = attempts(&app, &id).await;
    assert!(tries >= 2, "attempts {tries}");
    assert_eq!(worker.as_deref(), Some(b.id.as_str()));
    assert!(b.terminate(Duration::from_secs(20)).await.success());
}

#[sqlx::test(migrations = "../migrations")]
async fn redis_flushed_or_restarted_empty_loses_no_job(pool: PgPool) {
    let mut redis = RedisProcess::start().await;
    let mut settings = test_settings();
    settings.backends.redis_url = redis.url().into();
    settings.max_active_jobs = 20;
    settings.dependency_timeout_ms = 1000;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 8_000, 30, 22).await;
    let key = app.create_key(COMPANY).await;
    let worker = WorkerProcess::start(&app, "w", &[("ORDERSUM_WORKER_CONCURRENCY", "1")]).await;

    // FLUSHALL with one job running and three queued: the running one
    // waits at the gate for its first page until Redis is back.
    let mut gate = OrdersGate::close(&app).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(submit_ok(&app, &key, window(i)).await);
    }
    gate.wait_for_reader().await;
    let job = get(&app, &key, &ids[0]).await;
    assert_eq!(job["Status"], "Running", "{job}");
    for id in &ids[1..] {
        let job = get(&app, &key, id).await;
        assert_eq!(job["Status"], "Queued", "{job}");
    }
    redis.flushall().await;

    // Redis dies with jobs queued and running: the API answers 2000+ and is
    // not ready; Redis comes back empty: the API recovers without a restart.
    for i in 4..7 {
        ids.push(submit_ok(&app, &key, window(i)).await);
    }
    redis.stop().await;
    let refused = submit(&app, &key, window(7)).await;
    assert!(ret_code(&refused) >= 2000, "{refused}");
    assert_eq!(app.get_path("/readyz").await.0, 503);
    // Down until the worker's queue consumer has lost it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !worker.log_text().contains("queue consumer stopped") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never noticed Redis was gone: {}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart().await;
    let mut recovered = None;
    for _ in 0..50 {
        let answer = submit(&app, &key, window(7)).await;
        if ret_code(&answer) == 0 {
            recovered = Some(answer["JobId"].as_str().unwrap().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ids.push(recovered.expect("the API did not recover once Redis was back"));
    assert_eq!(app.get_path("/readyz").await.0, 200);
    let job = get(&app, &key, &ids[0]).await;
    assert_eq!(job["Status"], "Running", "{job}");
    gate.open().await;

    for (i, id) in ids.iter().enumerate() {
        let job = wait_for(&app, &key, id, Duration::from_secs(180), ended).await;
        assert_job_matches_sql(&app, &job, window(i as i64), "", Tz::UTC).await;
    }
    drop(worker);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_s3_server_stopping_during_a_job_delays_it_but_loses_nothing(pool: PgPool) {
    let mut s3 = S3Process::start().await;
    let mut settings = test_settings();
    settings.storage.url = s3.storage_url();
    settings.storage.access_key_id = Some("minioadmin".into());
    settings.storage.secret_access_key = Some("minioadmin".into());
    settings.dependency_timeout_ms = 1000;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 20_000, 30, 23).await;
    let key = app.create_key(COMPANY).await;
    let worker = WorkerProcess::start(&app, "w", &[("ORDERSUM_MAX_ATTEMPTS", "20")]).await;
    let (id, gate) = submit_held_mid_export(&app, &key, window(0)).await;
    // The store goes away mid-export; the export then runs to its end.
    s3.stop().await;
    gate.open().await;

    // The upload fails and the job waits for a retry; the API is not ready.
    wait_for_retry(&app, &id, Duration::from_secs(90), &worker).await;
    let (status, body) = app.get_path("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""Storage":"unavailable""#), "{body}");
    s3.restart().await;

    let job = wait_for(&app, &key, &id, Duration::from_secs(120), ended).await;
    assert_job_matches_sql(&app, &job, window(0), "", Tz::UTC).await;
    assert!(
        worker.log_text().contains("retrying"),
        "{}",
        worker.log_text()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn terminated_postgres_connections_mid_export_lose_no_job(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 40_000, 30, 24).await;
    let key = app.create_key(COMPANY).await;
    let worker = WorkerProcess::start(&app, "w", &[]).await;
    let (id, mut gate) = submit_held_mid_export(&app, &key, window(0)).await;
    // Every connection of the worker is terminated, the one whose page
    // query waits at the gate among them: the export fails while reading.
    let readers = gate.waiting_readers_of(&worker.id).await;
    assert_eq!(readers.len(), 1, "the worker's reader is not at the gate");
    let terminated: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&worker.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        terminated.contains(&(readers[0], true)),
        "the reader was not terminated: {terminated:?}"
    );
    // That attempt fails and the job is retried: attempt 2 claims it (and
    // waits at the gate for its first page).
    wait_for_retry(&app, &id, Duration::from_secs(60), &worker).await;
    gate.open().await;
    let job = wait_for(&app, &key, &id, Duration::from_secs(120), ended).await;
    assert_job_matches_sql(&app, &job, window(0), "", Tz::UTC).await;
    let (tries, _) = attempts(&app, &id).await;
    assert!(tries >= 2, "attempts {tries}");
    let log = worker.log_text();
    assert!(
        log.lines()
            .any(|line| line.contains("job failed; retrying") && line.contains("attempt=1 ")),
        "{log}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_stopped_with_sigterm_hands_its_job_back_to_another(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 40_000, 30, 25).await;
    let key = app.create_key(COMPANY).await;
    let mut a = WorkerProcess::start(&app, "a", &[]).await;
    let (id, gate) = submit_held_mid_export(&app, &key, window(0)).await;
    let b = WorkerProcess::start(&app, "b", &[]).await;
    // A cannot finish within its 1 s grace: its next page waits at the gate.
    let exit = a.terminate(Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(a.log_text().contains("handed back"), "{}", a.log_text());
    gate.open().await;

    let job = wait_for(&app, &key, &id, Duration::from_secs(120), ended).await;
    assert_job_matches_sql(&app, &job, window(0), "", Tz::UTC).await;
    let (tries, worker) = attempts(&app, &id).await;
    assert!(tries >= 2, "attempts {tries}");
    assert_eq!(worker.as_deref(), Some(b.id.as_str()));
}

#[sqlx::test(migrations = "../migrations")]
async fn two_hundred_concurrent_requests_from_twenty_companies_are_all_accounted_for(pool: PgPool) {
    let mut settings = test_settings();
    settings.max_active_jobs = 10;
    let app = spawn_app_with(pool, settings).await;
    let mut keys = Vec::new();
    for company in 1..=20 {
        seed(&app.pool, company, 300, 30, 100 + company as u64).await;
        keys.push(app.create_key(company).await);
    }
    let _workers = [
        WorkerProcess::start(&app, "w1", &[]).await,
        WorkerProcess::start(&app, "w2", &[]).await,
    ];

    let requests = keys
        .iter()
        .flat_map(|key| (0..10).map(move |i| (key, window(i * 60))));
    let answers =
        futures::future::join_all(requests.clone().map(|(key, w)| submit(&app, key, w))).await;
    let mut jobs = Vec::new();
    for ((key, w), answer) in requests.zip(&answers) {
        assert_eq!(ret_code(answer), 0, "{answer}");
        jobs.push((key, w, answer["JobId"].as_str().unwrap().to_owned()));
    }
    let distinct: std::collections::HashSet<_> = jobs.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(distinct.len(), 200);

    for (i, (key, w, id)) in jobs.iter().enumerate() {
        let job = wait_for(&app, key, id, Duration::from_secs(240), ended).await;
        assert_eq!(job["Status"], "Succeeded", "{job}");
        let expected: (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 1) FROM orders \
             WHERE company_id = $1 AND start_time >= to_timestamp($2) AND start_time < to_timestamp($3)",
        )
        .bind(key.company_id)
        .bind(w.0 as f64)
        .bind(w.1 as f64)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(
            (
                job["Progress"]["PaidRows"].as_i64().unwrap(),
                job["Progress"]["UnpaidRows"].as_i64().unwrap()
            ),
            expected
        );
        if i % 67 == 0 && key.company_id == COMPANY {
            assert_job_matches_sql(&app, &job, *w, "", Tz::UTC).await;
        }
    }
}
