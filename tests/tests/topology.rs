//! The production topology, really started (scripts/services.sh topology):
//! the API and the worker through a transaction-pooling PgBouncer 1.18, the
//! orders read from a streaming replica, `LISTEN` and the advisory locks on
//! the direct URL.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use ordersum_model::pool::Db;
use ordersum_tests::oracle::{
    COMPANY, assert_job_matches_sql, submit_window_summary, wait_until_ended,
};
use ordersum_tests::topology::Topology;
use ordersum_tests::{
    Key, TestApp, TestWorker, seed, spawn_app_through, spawn_worker, test_settings,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// The replica is shared: a test that pauses its replay runs alone.
static REPLICA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn database(pool: &PgPool) -> String {
    pool.connect_options().get_database().unwrap().to_owned()
}

async fn setup(pool: PgPool) -> (TestApp, Key, TestWorker, Topology) {
    let topology = Topology::required();
    let app = spawn_app_through(pool, test_settings(), Some(topology.clone())).await;
    seed(&app.pool, COMPANY, 1500, 20, 7).await;
    seed(&app.pool, COMPANY + 1, 200, 20, 8).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.page_size = 101).await;
    (app, key, worker, topology)
}

/// Scans and rows read from the orders and their labels, once every other
/// session of the database has ended (a backend's counts reach the shared
/// statistics when it exits, at the latest).
async fn order_reads(db: &PgPool) -> [i64; 4] {
    // A session of its own: a pooled one may hold counts of its own (the
    // seeding's) not yet flushed.
    let mut conn = sqlx::PgConnection::connect_with(&db.connect_options())
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for _ in 0..100 {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if others == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An ending backend leaves pg_stat_activity just before it flushes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut conn)
        .await
        .unwrap();
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(seq_scan), 0)::int8, coalesce(sum(seq_tup_read), 0)::int8, \
                coalesce(sum(idx_scan), 0)::int8, coalesce(sum(idx_tup_fetch), 0)::int8 \
         FROM pg_stat_user_tables WHERE relname IN ('orders', 'enum_labels')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    [row.0, row.1, row.2, row.3]
}

fn window() -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 21 * 86_400, now)
}

#[sqlx::test(migrations = "../migrations")]
async fn an_export_reads_its_orders_from_the_replica_and_none_from_the_primary(pool: PgPool) {
    let _alone = REPLICA.lock().await;
    let (app, key, worker, topology) = setup(pool).await;
    let replica = topology.replica_pool(&database(&app.pool)).await;
    let primary_before = order_reads(&app.pool).await;
    let replica_before = order_reads(&replica).await;

    let id = submit_window_summary(&app, &key, window()).await;
    let job = wait_until_ended(&app, &key, &id).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");

    let primary_after = order_reads(&app.pool).await;
    let replica_after = order_reads(&replica).await;
    eprintln!(
        "orders/enum_labels [seq_scan, seq_tup_read, idx_scan, idx_tup_fetch]: primary {primary_before:?} -> {primary_after:?}, replica {replica_before:?} -> {replica_after:?}"
    );
    assert_eq!(
        primary_after, primary_before,
        "the export read orders or labels on the primary"
    );
    let rows_read = |r: [i64; 4]| r[1] + r[3];
    assert!(
        rows_read(replica_after) > rows_read(replica_before),
        "the replica shows no reads: {replica_before:?} -> {replica_after:?}"
    );
    let as_of: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT orders_as_of FROM summary_jobs WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        as_of.is_some(),
        "the attempt records the replica's replay position"
    );
    // The workbook still holds exactly what the primary holds.
    assert_job_matches_sql(&app, &job, window(), "", Tz::UTC).await;
    worker.stop().await;
}

/// Resumes the replica's replay however the test ends.
struct ResumeOnDrop(String);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([self.0.as_str(), "-Atqc", "SELECT pg_wal_replay_resume()"])
            .status();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_waits_for_a_paused_replica_with_its_reason_shown_then_has_every_order(pool: PgPool) {
    let _alone = REPLICA.lock().await;
    let (app, key, worker, topology) = setup(pool).await;
    let replica_url = topology.replica_url(&database(&app.pool)).await;
    let replica = topology.replica_pool(&database(&app.pool)).await;
    let _resume = ResumeOnDrop(replica_url);
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica)
        .await
        .unwrap();
    for _ in 0..100 {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(&replica)
            .await
            .unwrap();
        if state == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Orders the replica has not replayed, then the job.
    seed(&app.pool, COMPANY, 300, 2, 9).await;
    let id = submit_window_summary(&app, &key, window()).await;

    let mut waiting = serde_json::Value::Null;
    for _ in 0..100 {
        let job = app
            .call(&key, &[("Action", "GetOrderSummaryJob"), ("JobId", &id)])
            .await;
        if job["WaitReason"].is_string() {
            waiting = job;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting["Status"], "Queued", "{waiting}");
    let reason = waiting["WaitReason"].as_str().unwrap();
    assert!(reason.contains("orders replica"), "{reason}");
    // It keeps waiting, and waiting spends no attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM summary_jobs WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 0));

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica)
        .await
        .unwrap();
    let job = wait_until_ended(&app, &key, &id).await;
    assert!(job.get("WaitReason").is_none(), "{job}");
    // Every order of the window, the 300 written during the pause too.
    assert_job_matches_sql(&app, &job, window(), "", Tz::UTC).await;
    worker.stop().await;
}

/// Runs 16 tasks × 60 statements (two alternating texts) on `db`; answers
/// (errors, wrong answers).
async fn alternating_statements(db: &Db) -> (usize, usize) {
    let mut tasks = Vec::new();
    for task in 0..16i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let (mut errors, mut wrong) = (0, 0);
            for i in 0..60i64 {
                let (sql, want) = match i % 2 {
                    0 => ("SELECT $1::int8 + $2::int8", i + task),
                    _ => ("SELECT $1::int8 * 1000 + $2::int8", i * 1000 + task),
                };
                let got = match i % 3 {
                    // A transaction of the caller's own, too.
                    0 => match db.begin().await {
                        Ok(mut tx) => {
                            let got = sqlx::query_scalar::<_, i64>(sql)
                                .bind(i)
                                .bind(task)
                                .fetch_one(&mut *tx)
                                .await;
                            match tx.commit().await {
                                Ok(()) => got,
                                Err(err) => Err(err),
                            }
                        }
                        Err(err) => Err(err),
                    },
                    _ => {
                        sqlx::query_scalar::<_, i64>(sql)
                            .bind(i)
                            .bind(task)
                            .fetch_one(&db)
                            .await
                    }
                };
                match got {
                    Ok(got) if got == want => {}
                    Ok(_) => wrong += 1,
                    Err(_) => errors += 1,
                }
            }
            (errors, wrong)
        }));
    }
    let mut total = (0, 0);
    for task in tasks {
        let (errors, wrong) = task.await.unwrap();
        total = (total.0 + errors, total.1 + wrong);
    }
    total
}

#[sqlx::test(migrations = "../migrations")]
async fn through_pgbouncer_the_default_statement_cache_fails_and_zero_works(pool: PgPool) {
    let topology = Topology::required();
    let url = Topology::url(&topology.pgbouncer, &database(&pool));
    let options: PgConnectOptions = url.parse().unwrap();
    let connect = |cache: usize| {
        PgPoolOptions::new()
            .max_connections(16)
            .connect_lazy_with(options.clone().statement_cache_capacity(cache))
    };
    // sqlx's default: named statements, cached per client connection.
    let default = alternating_statements(&Db::direct(connect(100))).await;
    // ORDERSUM_PG_STATEMENT_CACHE=0: every statement in a transaction of
    // its own that starts from a clean server connection.
    let zero = alternating_statements(&Db::pooled(connect(0))).await;
    eprintln!(
        "960 statements through PgBouncer: default cache (errors, wrong answers) {default:?}, cache 0 {zero:?}"
    );
    assert!(
        default.0 + default.1 > 0,
        "the default cache went through PgBouncer unharmed: {default:?}"
    );
    assert_eq!(zero, (0, 0));
}
