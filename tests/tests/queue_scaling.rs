//! What the worker autoscaler counts: with no worker running, a waiting job
//! is not in the Redis list `<queue>:active` (apalis-redis parks it in the
//! sorted set `<queue>:scheduled`), so KEDA's Redis list scaler would see
//! nothing. The ScaledObject in deploy/ counts queued `summary_jobs` rows
//! instead; this test runs the manifest's own query.

#![allow(clippy::unwrap_used)]

use ordersum_tests::{redis_url, ret_code, spawn_app};
use serde_json::Value;
use sqlx::PgPool;

const SCALED_OBJECT: &str = include_str!("../../deploy/k8s/base/worker-scaledobject.yaml");

/// The `query:` of the ScaledObject's postgresql trigger, as the manifest has it.
fn scaler_query() -> String {
    let line = SCALED_OBJECT
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("query:"))
        .expect("worker-scaledobject.yaml has a `query:` line");
    let line = line.trim();
    // A YAML double-quoted scalar without escapes: drop the outer quotes only.
    let query = line
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(line)
        .to_owned();
    assert!(!query.is_empty(), "empty query in worker-scaledobject.yaml");
    query
}

#[sqlx::test(migrations = "../migrations")]
async fn a_waiting_job_is_counted_by_the_scaler_query_and_not_by_the_redis_list(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let key = app.create_key(3).await;
    let body: Value = app
        .call(
            &key,
            &[
                ("Action", "DownloadOrderSummary"),
                ("StartTime", "1719792000"),
                ("EndTime", "1722470400"),
            ],
        )
        .await;
    assert_eq!(ret_code(&body), 0, "{body}");

    // No worker runs: the job waits. It is not in the list KEDA's redis
    // scaler would read, but in apalis-redis' sorted set.
    let queue = &app.settings.backends.queue;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let active: i64 = redis::cmd("LLEN")
        .arg(format!("{queue}:active"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let scheduled: i64 = redis::cmd("ZCARD")
        .arg(format!("{queue}:scheduled"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(active, 0, "a waiting job in {queue}:active");
    assert_eq!(scheduled, 1, "the waiting job is not in {queue}:scheduled");

    // The ScaledObject's query sees it.
    // The query comes from our own manifest, not from a caller.
    let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(scaler_query()))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        waiting, 1,
        "the scaler query does not count the waiting job"
    );
}
