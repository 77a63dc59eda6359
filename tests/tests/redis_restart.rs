//! Redis killed with SIGKILL and restarted mid-burst, with its AOF on and
//! off: the row in Postgres is the truth and Redis only delivers, so a
//! burst of 100 small jobs across the restart loses none and runs none
//! twice. While Redis is down a submission is refused with the retryable
//! 2001 and writes no job (the client submits again); the API and the
//! worker processes reconnect by themselves, the workers' wake-up
//! subscriptions and the long-polls come back. Each test prints the
//! burst's latency (submit → succeeded) and how many submissions were
//! refused: docs/operations.md#redis-persistence quotes them. (With the
//! AOF, the deliveries a consumer had in hand when Redis died come back in
//! the dead consumer's name, and their jobs wait for apalis-redis' orphan
//! re-enqueue, some 15 s: the AOF run's tail.)

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use ordersum_tests::oracle::COMPANY;
use ordersum_tests::procs::{RedisProcess, WorkerProcess};
use ordersum_tests::{Key, TestApp, ret_code, seed, spawn_app_with, test_settings};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Notify;
use tokio::time::Instant;

const JOBS: usize = 100;
/// Submissions in flight at once.
const AT_ONCE: usize = 10;
/// Redis is killed once this many jobs were accepted…
const KILL_AFTER: usize = 30;
/// …and started again this much later.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// The API re-reads a waiting call's job only this often: a long-poll
/// answered sooner was woken by its job's end.
const WAIT_FALLBACK_MS: u64 = 60_000;
/// The long-poll asks to wait this long (`WaitSeconds`).
const WAIT_SECONDS: &str = "30";

/// A distinct window for job `i` (the whole seeded period, its start
/// shifted by `i` seconds): no two jobs are equal, so none is deduplicated.
fn window(base: i64, i: usize) -> (String, String) {
    let start = base - 31 * 86_400 + i as i64;
    (start.to_string(), (base + 86_400).to_string())
}

/// An accepted submission: its job id, when it was first tried, and
/// whether Redis had been restarted when it was accepted.
struct Accepted {
    id: String,
    first_try: chrono::DateTime<Utc>,
    after_restart: bool,
}

/// Shared by the submitters and the test that kills Redis.
#[derive(Default)]
struct Burst {
    accepted: AtomicUsize,
    refused: AtomicUsize,
    /// Set once Redis is back.
    restarted: AtomicBool,
    kill_now: Notify,
}

/// Submits job `i` until the API accepts it. While Redis is down the API
/// answers 2001 "Service temporarily unavailable, please retry later"
/// (tests/tests/resilience.rs): counted, then submitted again.
async fn submit_until_accepted(
    app: &TestApp,
    key: &Key,
    burst: &Burst,
    base: i64,
    i: usize,
) -> Accepted {
    let (start, end) = window(base, i);
    let first_try = Utc::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after_restart = burst.restarted.load(Ordering::SeqCst);
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
        if ret_code(&answer) == 0 {
            assert_eq!(answer["Status"], "Queued", "{answer}");
            if burst.accepted.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                burst.kill_now.notify_one();
            }
            return Accepted {
                id: answer["JobId"].as_str().unwrap().to_owned(),
                first_try,
                after_restart,
            };
        }
        assert_eq!(ret_code(&answer), 2001, "job {i}: {answer}");
        assert_eq!(
            answer["Message"], "Service temporarily unavailable, please retry later",
            "{answer}"
        );
        burst.refused.fetch_add(1, Ordering::SeqCst);
        assert!(
            Instant::now() < deadline,
            "job {i} was refused for 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Subscribers of the queue's wake-up channel on `redis`.
async fn wake_subscribers(redis: &RedisProcess, app: &TestApp) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{}:ordersum:wake", app.settings.backends.queue))
        .query_async(&mut conn)
        .await
        .unwrap();
    subscribers
}

/// Waits until every worker process listens for wake-ups on `redis`.
async fn wait_for_wake_subscribers(redis: &RedisProcess, app: &TestApp, workers: &[WorkerProcess]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while wake_subscribers(redis, app).await < workers.len() as i64 {
        assert!(
            Instant::now() < deadline,
            "the workers do not listen for wake-ups: {}",
            logs(workers)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of `workers`' first queue consumers (`<worker id>-0`, each
/// registered with apalis-redis before the kill, never again after) Redis
/// still lists: all with an AOF, none when it came back empty.
async fn first_consumers_kept(
    redis: &RedisProcess,
    app: &TestApp,
    workers: &[WorkerProcess],
) -> usize {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let set = ordersum_queue::JobQueue::config(&app.settings.backends.queue).workers_set();
    let mut kept = 0;
    for worker in workers {
        let seen: Option<f64> = redis::cmd("ZSCORE")
            .arg(&set)
            .arg(format!("{}-0", worker.id))
            .query_async(&mut conn)
            .await
            .unwrap();
        kept += usize::from(seen.is_some());
    }
    kept
}

fn logs(workers: &[WorkerProcess]) -> String {
    workers
        .iter()
        .map(|w| format!("--- {} ---\n{}", w.id, w.log_text()))
        .collect()
}

/// Jobs by status.
async fn statuses(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT status, count(*) FROM summary_jobs GROUP BY 1 ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A long-poll started after the restart on the queued job last in line:
/// it answers when that job ends, well before its wait is up.
async fn long_poll_wakes_on_the_end(app: &TestApp, key: &Key, accepted: &[Accepted]) {
    let after: Vec<uuid::Uuid> = accepted
        .iter()
        .filter(|job| job.after_restart)
        .map(|job| uuid::Uuid::parse_str(&job.id).unwrap())
        .collect();
    assert!(!after.is_empty(), "no job was accepted after the restart");
    let last: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM summary_jobs WHERE id = ANY($1) AND status = 'queued' \
         ORDER BY fair_at DESC, id DESC LIMIT 1",
    )
    .bind(&after)
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    let id = last
        .expect("every job accepted after the restart already ran: nothing left to wait for")
        .to_string();
    let asked = Instant::now();
    let poll = {
        let (app, key, id) = (app.clone(), key.clone(), id.clone());
        tokio::spawn(async move {
            app.call(
                &key,
                &[
                    ("Action", "GetOrderSummaryJob"),
                    ("JobId", &id),
                    ("WaitSeconds", WAIT_SECONDS),
                ],
            )
            .await
        })
    };
    while app.watch.waiting_calls() < 1 {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the long-poll does not wait"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status: String = sqlx::query_scalar("SELECT status FROM summary_jobs WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        status == "queued" || status == "running",
        "job {id} ended before the long-poll waited ({status})"
    );
    let answer: Value = poll.await.unwrap();
    let took = asked.elapsed();
    assert_eq!(answer["Status"], "Succeeded", "{answer}");
    let since_end: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM clock_timestamp() - finished_at)::float8 \
         FROM summary_jobs WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        since_end < 1.5 && took < Duration::from_secs(25),
        "the long-poll answered {since_end:.3} s after its job ended ({took:?} after it asked)"
    );
}

/// p-th percentile (nearest rank) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values[values.len() - 1]
    )
}

/// The burst across a Redis restart, Redis started with `args`, which make
/// it `persistent` (an AOF) or not.
async fn burst_across_a_restart(pool: PgPool, label: &str, persistent: bool, args: &[&str]) {
    let mut redis = RedisProcess::start_with(args).await;
    let mut settings = test_settings();
    settings.backends.redis_url = redis.url().into();
    // One company submits 100 jobs as fast as it can: no cap or rate limit
    // refuses any (tests/tests/abuse.rs covers those).
    settings.max_active_jobs = 1_000;
    settings.rate_limit_per_key = 0;
    settings.rate_limit_per_ip = 0;
    settings.dependency_timeout_ms = 1_000;
    settings.wait_fallback_ms = WAIT_FALLBACK_MS;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 300, 30, 77).await;
    let key = app.create_key(COMPANY).await;
    let mut workers = [
        WorkerProcess::start(&app, "w1", &[]).await,
        WorkerProcess::start(&app, "w2", &[]).await,
    ];
    wait_for_wake_subscribers(&redis, &app, &workers).await;

    // The test's own connection: while Redis is down, submissions hold the
    // app's pool (each waits in its transaction, under its company's lock).
    let observer = PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.database_url())
        .await
        .unwrap();
    let burst = Arc::new(Burst::default());
    let base = Utc::now().timestamp();
    let began = Instant::now();
    let submitting = {
        let (app, key, burst) = (app.clone(), key.clone(), burst.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..JOBS)
                .map(|i| submit_until_accepted(&app, &key, &burst, base, i))
                .buffer_unordered(AT_ONCE)
                .collect::<Vec<Accepted>>()
                .await
        })
    };
    // SIGKILL (no SHUTDOWN: nothing is written on the way out), then the
    // same port and directory 1 s later while submissions go on.
    burst.kill_now.notified().await;
    let kill_began = Instant::now();
    redis.stop().await;
    let killed_after = burst.accepted.load(Ordering::SeqCst);
    let at_kill = statuses(&observer).await;
    tokio::time::sleep(DOWN_FOR).await;
    redis.restart().await;
    let down_for = kill_began.elapsed();
    // Redis came back with what it had (AOF) or empty (none).
    let kept = first_consumers_kept(&redis, &app, &workers).await;
    assert_eq!(
        kept,
        if persistent { workers.len() } else { 0 },
        "{label}: Redis came back with {kept} of the workers' first consumers"
    );
    burst.restarted.store(true, Ordering::SeqCst);
    let restarted_at: chrono::DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&observer)
        .await
        .unwrap();
    let accepted = submitting.await.unwrap();
    let submitted_in = began.elapsed();
    assert_eq!(accepted.len(), JOBS);
    let ids: HashSet<&str> = accepted.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids.len(), JOBS, "two submissions got the same job");

    long_poll_wakes_on_the_end(&app, &key, &accepted).await;

    // Every accepted job succeeds; nothing else was written.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let by_status = statuses(&app.pool).await;
        if by_status == [("succeeded".to_owned(), JOBS as i64)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: not every job succeeded: {by_status:?}\n{}",
            logs(&workers)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done_in = began.elapsed();

    // None ran twice: one claim each, one attempt recorded, which succeeded.
    let twice: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT j.id::text, j.attempts, count(a.attempt) FROM summary_jobs j \
         LEFT JOIN job_attempts a ON a.job_id = j.id AND a.outcome = 'succeeded' \
         GROUP BY j.id, j.attempts \
         HAVING j.attempts <> 1 OR count(a.attempt) <> 1 \
            OR (SELECT count(*) FROM job_attempts b WHERE b.job_id = j.id) <> 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        twice.is_empty(),
        "{label}: jobs run other than once (id, attempts, succeeded attempts): {twice:?}\n{}",
        logs(&workers)
    );

    // Each file is in the store, as big as the row says.
    let files: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id::text, file_key, file_size FROM summary_jobs")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let root = Path::new(app.settings.storage.url.trim_start_matches("file://"));
    for (id, file_key, size) in &files {
        let meta = std::fs::metadata(root.join(file_key))
            .unwrap_or_else(|err| panic!("job {id}: no file {file_key}: {err}"));
        assert_eq!(meta.len() as i64, *size, "job {id}: {file_key}");
    }

    // Both workers reconnected by themselves: each ran jobs claimed after
    // the restart, and listens for wake-ups on the restarted Redis.
    let after: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT worker_id FROM job_attempts WHERE started_at > $1")
            .bind(restarted_at)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for worker in &workers {
        assert!(
            after.contains(&worker.id),
            "{label}: {} ran no job after the restart: {after:?}\n{}",
            worker.id,
            logs(&workers)
        );
    }
    wait_for_wake_subscribers(&redis, &app, &workers).await;
    let (status, body) = app.get_path("/readyz").await;
    assert_eq!(status, 200, "{body}");

    let latency: Vec<(String, f64)> = sqlx::query_as(
        "SELECT id::text, extract(epoch FROM finished_at - created_at)::float8 * 1000 \
         FROM summary_jobs",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let finished: Vec<(String, chrono::DateTime<Utc>)> =
        sqlx::query_as("SELECT id::text, finished_at FROM summary_jobs")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let from_first_try: Vec<f64> = accepted
        .iter()
        .map(|job| {
            let (_, at) = finished.iter().find(|(id, _)| *id == job.id).unwrap();
            (*at - job.first_try).num_microseconds().unwrap() as f64 / 1000.0
        })
        .collect();
    let repushed = workers
        .iter()
        .map(|w| w.log_text().matches("pushed again").count())
        .sum::<usize>();
    let restored = workers
        .iter()
        .map(|w| w.log_text().matches("pushed the missing ones").count())
        .sum::<usize>();
    println!(
        "redis restart, {label}: {JOBS} jobs succeeded, each run once; Redis killed after {killed_after} \
         accepted (jobs then {at_kill:?}), down {down_for:.1?}; {} submissions refused (2001) meanwhile and submitted again; \
         all accepted in {submitted_in:.1?}, all succeeded in {done_in:.1?}; \
         sweeper: {repushed} jobs pushed again, {restored} shortfall pushes\n  \
         submit → succeeded (created_at → finished_at): {}\n  \
         first try → succeeded (refusals included): {}",
        burst.refused.load(Ordering::SeqCst),
        summary(latency.into_iter().map(|(_, ms)| ms).collect()),
        summary(from_first_try),
    );
    // Gone before the test's database is dropped.
    for worker in &mut workers {
        worker.kill().await;
    }
    observer.close().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn redis_killed_and_restarted_mid_burst_with_aof_loses_no_job_and_runs_none_twice(
    pool: PgPool,
) {
    burst_across_a_restart(
        pool,
        "AOF on (appendfsync everysec)",
        true,
        &["--appendonly", "yes", "--appendfsync", "everysec"],
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn redis_killed_and_restarted_mid_burst_without_persistence_loses_no_job_and_runs_none_twice(
    pool: PgPool,
) {
    burst_across_a_restart(
        pool,
        "AOF off (no persistence)",
        false,
        &["--save", "", "--appendonly", "no"],
    )
    .await;
}
