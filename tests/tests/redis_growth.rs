//! Nothing ordersum keeps grows with the number of jobs it has run: Redis
//! holds a bounded number of keys and entries once jobs are done and a
//! sweep ran, queue markers of jobs cancelled while queued go, and rows of
//! jobs that ended long ago are deleted.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use ordersum_tests::oracle::COMPANY;
use ordersum_tests::{
    Key, TestApp, redis_url, ret_code, seed, spawn_app_with, spawn_worker, sweep, test_settings,
};
use ordersum_worker::context::JobContext;
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

/// Keys of one queue in Redis and the entries they hold.
#[derive(Debug, Default)]
struct Footprint {
    keys: usize,
    /// Fields, members and items of all the queue's keys (a string: 1).
    entries: usize,
    /// The key holding the most entries, and how many.
    largest: (String, usize),
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Names of the queue's keys.
async fn key_names(queue: &str) -> Vec<String> {
    let mut conn = redis().await;
    let mut names = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{queue}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        names.extend(page);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    names.sort();
    names.dedup();
    names
}

async fn footprint(queue: &str) -> Footprint {
    let names = key_names(queue).await;
    let mut conn = redis().await;
    let mut footprint = Footprint {
        keys: names.len(),
        ..Footprint::default()
    };
    for name in names {
        let kind: String = redis::cmd("TYPE")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        let size_cmd = match kind.as_str() {
            "hash" => "HLEN",
            "zset" => "ZCARD",
            "set" => "SCARD",
            "list" => "LLEN",
            _ => "EXISTS",
        };
        let size: usize = redis::cmd(size_cmd)
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        footprint.entries += size;
        if size > footprint.largest.1 {
            footprint.largest = (name, size);
        }
    }
    footprint
}

/// Submits `count` distinct small jobs (windows shifted by a second each).
async fn submit_jobs(app: &TestApp, key: &Key, first: i64, count: i64) -> Vec<String> {
    let now = Utc::now().timestamp();
    let mut ids = Vec::new();
    for i in first..first + count {
        let (start, end) = (
            (now - 31 * 86_400 + i).to_string(),
            (now + 86_400).to_string(),
        );
        let answer = app
            .call(
                key,
                &[
                    ("Action", "DownloadOrderSummary"),
                    ("StartTime", &start),
                    ("EndTime", &end),
                ],
            )
            .await;
        assert_eq!(ret_code(&answer), 0, "{answer}");
        ids.push(answer["JobId"].as_str().unwrap().to_owned());
    }
    ids
}

async fn count_succeeded(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM summary_jobs WHERE status = 'succeeded'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Where the jobs stand, for a failure message: jobs by status, the errors
/// of failed ones, the deliveries Redis holds and the queue's keys.
async fn jobs_report(app: &TestApp, ctx: &JobContext) -> String {
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status::text, count(*) FROM summary_jobs GROUP BY 1 ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let errors: Vec<(String, i64)> = sqlx::query_as(
        "SELECT coalesce(error_message, ''), count(*) FROM summary_jobs \
         WHERE status = 'failed' GROUP BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let held = ctx.queue.deliveries_held().await;
    let footprint = footprint(&app.settings.backends.queue).await;
    format!(
        "jobs by status {by_status:?}, failures {errors:?}, deliveries held {held:?}, Redis {footprint:?}"
    )
}

/// Most keys and entries the queue may hold once its jobs are done: the
/// workers' registrations, the signal list, the (empty) queue.
const MAX_KEYS: usize = 30;
const MAX_ENTRIES: usize = 40;

/// Waits until `done` jobs succeeded, then sweeps until Redis is within
/// bounds; answers the footprint (or panics with it after a bounded wait).
async fn settle_and_measure(app: &TestApp, ctx: &JobContext, done: i64) -> Footprint {
    let deadline = Instant::now() + Duration::from_secs(180);
    while count_succeeded(app).await < done {
        if Instant::now() >= deadline {
            panic!(
                "{done} jobs did not succeed in time: {}",
                jobs_report(app, ctx).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // apalis acknowledges a task just after its handler returns: sweep until
    // the acknowledgements are in and their records removed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        sweep(ctx).await;
        let now = footprint(&app.settings.backends.queue).await;
        if now.keys < MAX_KEYS && now.entries < MAX_ENTRIES {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "after {done} jobs and a sweep Redis still holds {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn redis_holds_a_bounded_number_of_keys_and_entries_however_many_jobs_ran(pool: PgPool) {
    let mut settings = test_settings();
    settings.max_active_jobs = 1_000;
    // One key submits 200 jobs as fast as it can: the per-key rate limit
    // (tests/tests/abuse.rs) would answer 154 on a fast machine.
    settings.rate_limit_per_key = 0;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 20, 30, 61).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| {
        s.concurrency = 4;
        s.sweep_interval_secs = 1;
    })
    .await;

    submit_jobs(&app, &key, 0, 100).await;
    let after_100 = settle_and_measure(&app, &worker.ctx, 100).await;
    submit_jobs(&app, &key, 100, 100).await;
    let after_200 = settle_and_measure(&app, &worker.ctx, 200).await;
    println!("Redis after 100 jobs: {after_100:?}; after 200 jobs: {after_200:?}");
    assert!(
        after_200.entries <= after_100.entries + 5,
        "Redis grows with the jobs run: {after_100:?} then {after_200:?}"
    );
    // A stopped worker leaves no registration behind (one per worker
    // process ever started, otherwise).
    worker.stop().await;
    let left = key_names(&app.settings.backends.queue).await;
    assert!(
        !left.iter().any(|name| name.contains(":workers:metadata:")),
        "a stopped worker's registration stays: {left:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn markers_of_jobs_cancelled_while_queued_are_removed_by_a_sweep(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let key = app.create_key(COMPANY).await;
    let ctx = ordersum_tests::idle_worker_context(&app, |_| {}).await;
    let ids = submit_jobs(&app, &key, 0, 4).await;
    let ids: Vec<Uuid> = ids.iter().map(|id| Uuid::parse_str(id).unwrap()).collect();
    for id in &ids[..3] {
        let cancel = app
            .call(
                &key,
                &[
                    ("Action", "CancelOrderSummaryJob"),
                    ("JobId", &id.to_string()),
                ],
            )
            .await;
        assert_eq!(cancel["Status"], "Cancelled", "{cancel}");
    }
    for id in &ids {
        assert!(
            ctx.queue.pushed_at(*id).await.unwrap().is_some(),
            "no marker for {id}"
        );
    }

    let swept = sweep(&ctx).await;

    for id in &ids[..3] {
        assert_eq!(
            ctx.queue.pushed_at(*id).await.unwrap(),
            None,
            "the marker of cancelled job {id} is still there ({swept:?})"
        );
    }
    assert!(
        ctx.queue.pushed_at(ids[3]).await.unwrap().is_some(),
        "the marker of the still queued job is gone"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_sweep_deletes_rows_of_long_ended_jobs_and_keeps_recent_and_live_ones(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let ctx = ordersum_tests::idle_worker_context(&app, |s| s.job_row_retention_days = 30).await;
    // (status, days since it finished, kept?)
    let rows = [
        ("failed", Some(31), false),
        ("cancelled", Some(45), false),
        ("expired", Some(400), false),
        ("failed", Some(29), true),
        ("cancelled", Some(1), true),
        ("expired", Some(29), true),
        // Succeeded and live jobs are never deleted by row retention.
        ("succeeded", Some(31), true),
        ("queued", None, true),
        ("running", None, true),
    ];
    let mut expected = Vec::new();
    for (status, days, kept) in rows {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO summary_jobs (id, company_id, request, request_hash, status, \
             created_at, finished_at, expires_at, heartbeat_at) \
             VALUES ($1, $2, '{}', $3, $4, now() - interval '500 days', \
                     now() - make_interval(days => $5), now() + interval '1 day', now())",
        )
        .bind(id)
        .bind(COMPANY)
        .bind(id.to_string())
        .bind(status)
        .bind(days)
        .execute(&app.pool)
        .await
        .unwrap();
        if kept {
            expected.push(id);
        }
    }

    let swept = sweep(&ctx).await;

    let mut left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM summary_jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    left.sort();
    expected.sort();
    assert_eq!(left, expected, "{swept:?}");
    assert_eq!(swept.rows_deleted, 3);
}
