//! The worker's Prometheus metrics, scraped from a real `ordersum-worker`
//! process on `ORDERSUM_WORKER_METRICS_ADDR`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use ordersum_tests::gate::OrdersGate;
use ordersum_tests::oracle::{
    COMPANY, run_window_summary, submit_window_summary, wait_until_ended,
};
use ordersum_tests::procs::{WorkerProcess, free_port};
use ordersum_tests::{TestApp, seed, spawn_app_with, test_settings};
use serde_json::Value;
use sqlx::PgPool;

/// The whole seeded period (30 days), shifted by `offset` seconds so that
/// jobs differ.
fn window(offset: i64) -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400 + offset, now + 86_400)
}

/// The worker's `/metrics` page; panics unless it answers 200 in the text
/// format within 15 s (the worker may still be starting).
async fn scrape(app: &TestApp, addr: &str) -> String {
    let url = format!("http://{addr}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(response) = app.http.get(&url).send().await {
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"].to_str().unwrap();
            assert!(
                content_type.starts_with("text/plain; version=0.0.4"),
                "{content_type}"
            );
            return response.text().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing serves {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample `series` (name and labels as rendered), if any.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
}

fn value(page: &str, series: &str) -> f64 {
    sample(page, series).unwrap_or_else(|| panic!("no sample {series} in:\n{page}"))
}

/// Scrapes until `done` holds on the page; panics after 30 s.
async fn scrape_until(
    app: &TestApp,
    addr: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape(app, addr).await;
        if done(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never showed:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_worker_serves_prometheus_metrics_of_the_jobs_it_ran_and_of_the_queue(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 3_000, 30, 31).await;
    let key = app.create_key(COMPANY).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut worker =
        WorkerProcess::start(&app, "m", &[("ORDERSUM_WORKER_METRICS_ADDR", &addr)]).await;

    // Before its first job a worker shows its counters at 0, not no series.
    let idle = scrape(&app, &addr).await;
    for series in [
        "ordersum_worker_jobs_started_total",
        "ordersum_worker_jobs_succeeded_total",
        "ordersum_worker_jobs_failed_total",
        "ordersum_worker_jobs_retried_total",
        "ordersum_worker_jobs_cancelled_total",
        "ordersum_worker_jobs_handed_back_total",
        "ordersum_worker_bytes_stored_total",
        r#"ordersum_worker_rows_written_total{sheet="paid"}"#,
        r#"ordersum_worker_rows_written_total{sheet="unpaid"}"#,
        "ordersum_worker_jobs_in_flight",
    ] {
        assert_eq!(sample(&idle, series), Some(0.0), "{series} in\n{idle}");
    }

    let job = run_window_summary(&app, &key, window(0)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let paid = job["Progress"]["PaidRows"].as_f64().unwrap();
    let unpaid = job["Progress"]["UnpaidRows"].as_f64().unwrap();
    let size = job["Data"]["FileSize"].as_f64().unwrap();
    assert!(paid > 0.0 && unpaid > 0.0 && size > 0.0, "{job}");

    // The row is finished before the run's metrics are: wait for them; the
    // sweep (every second) then sees the succeeded job and an empty queue.
    let page = scrape_until(&app, &addr, "the succeeded run and a sweep", |page| {
        sample(page, "ordersum_worker_jobs_succeeded_total") == Some(1.0)
            && sample(page, r#"ordersum_worker_jobs{status="succeeded"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(value(&page, "ordersum_worker_jobs_started_total"), 1.0);
    assert_eq!(value(&page, "ordersum_worker_jobs_in_flight"), 0.0);
    assert_eq!(
        value(&page, r#"ordersum_worker_rows_written_total{sheet="paid"}"#),
        paid
    );
    assert_eq!(
        value(
            &page,
            r#"ordersum_worker_rows_written_total{sheet="unpaid"}"#
        ),
        unpaid
    );
    assert_eq!(value(&page, "ordersum_worker_bytes_stored_total"), size);
    assert_eq!(
        value(
            &page,
            r#"ordersum_worker_job_duration_seconds_count{outcome="succeeded"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &page,
            r#"ordersum_worker_job_duration_seconds_bucket{outcome="succeeded",le="3600"}"#
        ),
        1.0
    );
    assert_eq!(value(&page, "ordersum_worker_queue_depth"), 0.0);
    assert_eq!(
        value(&page, r#"ordersum_worker_jobs{status="queued"}"#),
        0.0
    );
    assert_eq!(
        value(&page, r#"ordersum_worker_jobs{status="running"}"#),
        0.0
    );
    assert_eq!(value(&page, "ordersum_worker_heartbeat_age_seconds"), 0.0);
    assert_eq!(
        sample(&page, "ordersum_worker_jobs_failed_total"),
        Some(0.0)
    );
    assert!(worker.log_text().contains(&format!("addr={addr}")));
    assert!(worker.terminate(Duration::from_secs(20)).await.success());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_cancelled_while_it_runs_counts_as_cancelled_not_failed(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 40_000, 30, 32).await;
    let key = app.create_key(COMPANY).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut worker = WorkerProcess::start(
        &app,
        "c",
        &[
            ("ORDERSUM_WORKER_METRICS_ADDR", &addr),
            ("ORDERSUM_PAGE_SIZE", "200"),
        ],
    )
    .await;
    // Cancel once the run is in flight: it is held there, its page query
    // waiting on the test's lock on `orders`, until the cancel is in.
    let mut gate = OrdersGate::close(&app).await;
    let id = submit_window_summary(&app, &key, window(0)).await;
    gate.wait_for_reader().await;
    scrape_until(&app, &addr, "a run in flight", |page| {
        sample(page, "ordersum_worker_jobs_in_flight") == Some(1.0)
    })
    .await;
    let cancel = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(cancel["Status"], "Cancelled", "{cancel}");
    gate.open().await;
    let job: Value = wait_until_ended(&app, &key, &id).await;
    assert_eq!(job["Status"], "Cancelled", "{job}");

    let page = scrape_until(&app, &addr, "the cancelled run", |page| {
        sample(page, "ordersum_worker_jobs_cancelled_total") == Some(1.0)
    })
    .await;
    assert_eq!(value(&page, "ordersum_worker_jobs_started_total"), 1.0);
    assert_eq!(value(&page, "ordersum_worker_jobs_in_flight"), 0.0);
    assert_eq!(
        value(
            &page,
            r#"ordersum_worker_job_duration_seconds_count{outcome="cancelled"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&page, "ordersum_worker_jobs_failed_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "ordersum_worker_jobs_succeeded_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "ordersum_worker_bytes_stored_total"),
        Some(0.0)
    );
    assert!(worker.terminate(Duration::from_secs(20)).await.success());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_with_metrics_off_serves_nothing_and_still_runs_jobs(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 500, 30, 33).await;
    let key = app.create_key(COMPANY).await;
    let mut worker =
        WorkerProcess::start(&app, "off", &[("ORDERSUM_WORKER_METRICS_ADDR", "off")]).await;
    let job = run_window_summary(&app, &key, window(0)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let log = worker.log_text();
    assert!(log.contains("metrics off"), "{log}");
    assert!(!log.contains("serving metrics"), "{log}");
    assert!(worker.terminate(Duration::from_secs(20)).await.success());
}

/// Jobs by status and the queue depth come from every worker on every tick,
/// not only from the one holding the sweep lock: dashboards and alerts take
/// the max over workers, and a value left from a worker's last turn as the
/// sweeper would stay there, stale.
#[sqlx::test(migrations = "../migrations")]
async fn a_worker_that_is_not_the_sweeper_still_reports_the_jobs_by_status(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 2_000, 30, 37).await;
    let key = app.create_key(COMPANY).await;
    // Another worker holds the sweep lock throughout.
    let mut sweeper = app.pool.acquire().await.unwrap();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(ordersum_worker::sweeper::SWEEP_LOCK)
        .fetch_one(&mut *sweeper)
        .await
        .unwrap();
    assert!(locked);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut worker =
        WorkerProcess::start(&app, "n", &[("ORDERSUM_WORKER_METRICS_ADDR", &addr)]).await;

    let job = run_window_summary(&app, &key, window(0)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let page = scrape_until(&app, &addr, "jobs by status", |page| {
        sample(page, r#"ordersum_worker_jobs{status="succeeded"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(value(&page, "ordersum_worker_queue_depth"), 0.0);
    assert!(
        !worker.log_text().contains("swept"),
        "the worker swept although another held the lock"
    );
    assert!(worker.terminate(Duration::from_secs(20)).await.success());
}
