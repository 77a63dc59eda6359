//! Waiting is event-driven. A push wakes an idle worker, and a job's end
//! wakes the long-polls waiting on it. Each test sets the fallbacks (the
//! worker's poll, the long-poll's re-read) to a minute, longer than the
//! wait it asks for, so an answer within the wait can only come from a
//! wake-up. Lost connections (the worker's Redis subscription, the API's
//! Postgres listener) are re-established and cost no answer.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ordersum_tests::oracle::submit_window_summary;
use ordersum_tests::{
    Key, TestApp, TestWorker, redis_url, ret_code, seed, spawn_app_with, spawn_worker,
    test_settings,
};
use serde_json::Value;
use sqlx::PgPool;

/// Longer than any wait below: a fallback never answers within a test.
const FALLBACK_MS: u64 = 60_000;
/// What each call asks to wait (`WaitSeconds`). A call that waited it out
/// re-reads the job once at the end and answers whatever it finds, so each
/// test also checks that the answer came long before that.
const WAIT: &str = "30";
/// An answer woken by the job's end comes well within this (a handful of
/// milliseconds unloaded). A worker without wake-ups would still fetch at
/// apalis' 5 s heartbeat, a call without them only at the end of its wait.
const WOKEN_WITHIN: Duration = Duration::from_millis(1500);

fn window() -> (i64, i64) {
    let now = chrono::Utc::now().timestamp();
    (now - 3 * 86_400, now + 86_400)
}

async fn app_without_fallback(pool: PgPool) -> TestApp {
    let mut settings = test_settings();
    settings.wait_fallback_ms = FALLBACK_MS;
    spawn_app_with(pool, settings).await
}

/// A worker that polls Redis only once a minute, once it listens for pushes.
async fn worker_without_fallback(app: &TestApp) -> TestWorker {
    let worker = spawn_worker(app, |s| s.poll_interval_ms = FALLBACK_MS).await;
    wait_for_subscribers(app, 1).await;
    worker
}

fn wake_channel(app: &TestApp) -> String {
    format!("{}:ordersum:wake", app.settings.backends.queue)
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until `count` workers are subscribed to the queue's wake-ups.
async fn wait_for_subscribers(app: &TestApp, count: i64) {
    let mut conn = redis().await;
    let channel = wake_channel(app);
    for _ in 0..500 {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        if subscribers >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no worker subscribed to {channel}");
}

async fn get_job(app: &TestApp, key: &Key, id: &str, wait: &str) -> Value {
    app.call(
        key,
        &[
            ("Action", "GetOrderSummaryJob"),
            ("JobId", id),
            ("WaitSeconds", wait),
        ],
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_small_summary_answers_its_url_within_the_call_that_asked_for_it(pool: PgPool) {
    seed(&pool, 1, 500, 2, 7).await;
    let app = app_without_fallback(pool).await;
    let key = app.create_key(1).await;
    let worker = worker_without_fallback(&app).await;

    // Several in a row: each push wakes the idle worker, each end the call.
    for offset in 0..5 {
        let asked = Instant::now();
        let (start, end) = window();
        let (start, end) = ((start + offset).to_string(), end.to_string());
        let answer = app
            .call(
                &key,
                &[
                    ("Action", "DownloadOrderSummary"),
                    ("StartTime", &start),
                    ("EndTime", &end),
                    ("WaitSeconds", WAIT),
                ],
            )
            .await;
        let took = asked.elapsed();
        assert_eq!(ret_code(&answer), 0, "{answer}");
        assert_eq!(answer["Status"], "Succeeded", "{answer}");
        assert!(took < WOKEN_WITHIN, "job {offset} answered after {took:?}");
        assert!(answer["Data"]["DownloadURL"].as_str().is_some(), "{answer}");
    }
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_long_poll_wakes_when_its_job_is_cancelled_elsewhere(pool: PgPool) {
    let app = app_without_fallback(pool).await;
    let key = app.create_key(2).await;
    // No worker: the job stays queued until cancelled.
    let id = submit_window_summary(&app, &key, window()).await;
    let waiting = {
        let (app, key, id) = (app.clone(), key.clone(), id.clone());
        tokio::spawn(async move { get_job(&app, &key, &id, WAIT).await })
    };
    wait_for_waiters(&app, 1).await;
    let ended = Instant::now();
    let cancelled = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(cancelled["Status"], "Cancelled", "{cancelled}");
    let answer = waiting.await.unwrap();
    assert_eq!(answer["Status"], "Cancelled", "{answer}");
    assert!(
        ended.elapsed() < WOKEN_WITHIN,
        "answered {:?} after the cancel",
        ended.elapsed()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn hundreds_of_long_polls_share_the_pool_and_all_wake(pool: PgPool) {
    const WAITERS: usize = 300;
    const JOBS: usize = 30;
    let mut settings = test_settings();
    settings.wait_fallback_ms = FALLBACK_MS;
    settings.max_active_jobs = JOBS as i64;
    settings.db_max_connections = 5;
    // One client with one key: the rate limits are not what is tested.
    settings.rate_limit_per_ip = 0;
    settings.rate_limit_per_key = 0;
    let app = spawn_app_with(pool.clone(), settings).await;
    let key = app.create_key(3).await;
    let (start, end) = window();
    let mut ids = Vec::new();
    for n in 0..JOBS as i64 {
        ids.push(submit_window_summary(&app, &key, (start + n, end)).await);
    }
    let connections = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ordersum-api'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let waiters: Vec<_> = (0..WAITERS)
        .map(|n| {
            let (app, key, id) = (app.clone(), key.clone(), ids[n % JOBS].clone());
            tokio::spawn(async move { get_job(&app, &key, &id, WAIT).await })
        })
        .collect();
    wait_for_waiters(&app, WAITERS).await;
    // Ten times the API's pool are waiting, on its few connections and
    // its one listener.
    let held = connections().await;
    assert!(held <= 5 + 1, "the API holds {held} connections");

    let ended = Instant::now();
    sqlx::query("UPDATE summary_jobs SET status = 'cancelled', finished_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    for waiter in waiters {
        let answer = waiter.await.unwrap();
        assert_eq!(answer["Status"], "Cancelled", "{answer}");
    }
    // Every one of them woke and read its job on the API's five connections.
    let took = ended.elapsed();
    assert!(
        took < 4 * WOKEN_WITHIN,
        "the last answered {took:?} after the end"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_long_poll_is_answered_after_the_api_loses_its_listener(pool: PgPool) {
    let app = app_without_fallback(pool.clone()).await;
    let key = app.create_key(4).await;
    let id = submit_window_summary(&app, &key, window()).await;
    let waiting = {
        let (app, key, id) = (app.clone(), key.clone(), id.clone());
        tokio::spawn(async move { get_job(&app, &key, &id, WAIT).await })
    };
    wait_for_waiters(&app, 1).await;
    // The listener connects in the background when the API starts.
    let mut killed: Vec<bool> = Vec::new();
    for _ in 0..500 {
        killed = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if !killed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(killed, [true], "one listener connection");
    // Ended while the listener may be away: the reconnect wakes the waiter
    // to read again, or the new listener hears it.
    sqlx::query(
        "UPDATE summary_jobs SET status = 'cancelled', finished_at = now() WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    let ended = Instant::now();
    let answer = waiting.await.unwrap();
    assert_eq!(answer["Status"], "Cancelled", "{answer}");
    // The listener reconnects within a few hundred milliseconds.
    assert!(
        ended.elapsed() < 4 * WOKEN_WITHIN,
        "answered {:?} after the end",
        ended.elapsed()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_that_lost_its_subscription_subscribes_again_and_wakes(pool: PgPool) {
    seed(&pool, 5, 200, 2, 9).await;
    let app = app_without_fallback(pool).await;
    let key = app.create_key(5).await;
    let worker = worker_without_fallback(&app).await;
    let mut conn = redis().await;
    // Only this test's subscriber listens on its queue's channel; kill the
    // connections subscribed to it.
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ours = clients
        .lines()
        .filter(|line| line.contains("sub=1"))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(!ours.is_empty());
    for id in &ours {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
    }
    wait_for_subscribers(&app, 1).await;
    let (start, end) = window();
    for n in 0..3 {
        let asked = Instant::now();
        let id = submit_window_summary(&app, &key, (start + n, end)).await;
        let answer = get_job(&app, &key, &id, WAIT).await;
        assert_eq!(answer["Status"], "Succeeded", "{answer}");
        let took = asked.elapsed();
        assert!(took < WOKEN_WITHIN, "job {n} answered after {took:?}");
    }
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_company_that_submits_later_is_served_before_another_s_backlog(pool: PgPool) {
    seed(&pool, 6, 100, 2, 11).await;
    seed(&pool, 7, 100, 2, 12).await;
    let mut settings = test_settings();
    settings.max_active_jobs = 10;
    let app = spawn_app_with(pool.clone(), settings).await;
    let (busy, late) = (app.create_key(6).await, app.create_key(7).await);
    let (start, end) = window();
    // Company 6 queues four jobs, then company 7 one, before any worker runs.
    let mut backlog = Vec::new();
    for n in 0..4 {
        backlog.push(submit_window_summary(&app, &busy, (start + n, end)).await);
    }
    let first_of_late = submit_window_summary(&app, &late, (start, end)).await;
    let worker = spawn_worker(&app, |s| s.concurrency = 1).await;
    for id in &backlog {
        let job = get_job(&app, &busy, id, WAIT).await;
        assert_eq!(job["Status"], "Succeeded", "{job}");
    }
    let job = get_job(&app, &late, &first_of_late, WAIT).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    worker.stop().await;
    // One slot: the order the jobs started in is the order they ran in.
    let order: Vec<i64> =
        sqlx::query_scalar("SELECT company_id FROM summary_jobs ORDER BY started_at, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(order, [6, 7, 6, 6, 6]);
}

/// Waits until `count` calls are long-polling on the app.
async fn wait_for_waiters(app: &TestApp, count: usize) {
    for _ in 0..1000 {
        if app.watch.waiting_calls() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {count} calls are waiting");
}
