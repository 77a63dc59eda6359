//! Holding a job still without racing the clock: the test takes
//! `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE` in a transaction of its own,
//! and the worker's page query waits on it until the test lets go.
//!
//! Only the page query reads `orders`; a worker writes `summary_jobs` (claim,
//! heartbeat and progress, requeue, finish), so while the gate is closed the
//! job stays `Running`, its heartbeat keeps beating and its row can be
//! cancelled, taken back, failed or handed back: nothing the worker needs
//! besides the next page waits on the lock. The gate's connections are its
//! own (not a pool's): when a test panics they are dropped, Postgres ends
//! their sessions and the lock goes with them.
//!
//! Postgres grants a table lock in the order it was asked for, so the gate
//! can let exactly one waiting statement through: it queues a second
//! `LOCK TABLE` behind the waiting reader, then releases the first. sqlx
//! prepares a statement (its own implicit transaction, which also waits)
//! the first time a pooled connection runs it, so one page may take two
//! statements: two statements let through read one or two pages.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use tokio::time::Instant;

use crate::TestApp;

/// How long any wait of the gate may take before the test fails.
const WITHIN: Duration = Duration::from_secs(60);

/// A lock on `orders` held by the test.
pub struct OrdersGate {
    options: PgConnectOptions,
    /// In a transaction holding the lock.
    held: PgConnection,
    /// Watches `pg_locks`.
    monitor: PgConnection,
}

/// Statements waiting on `orders`: readers (`AccessShareLock`) or, for
/// `mode = 'AccessExclusiveLock'`, a gate queued behind them.
const WAITING: &str = "SELECT count(*) FROM pg_locks \
     WHERE locktype = 'relation' AND NOT granted AND mode = $1 \
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND relation = 'orders'::regclass AND ($2::int IS NULL OR pid = $2)";

impl OrdersGate {
    /// Locks `orders` in the app's database: from now on every read of it
    /// waits (a read already running ends first).
    pub async fn close(app: &TestApp) -> OrdersGate {
        let options = (*app.pool.connect_options())
            .clone()
            .application_name("ordersum-test-gate");
        let held = lock(&options).await;
        let monitor = PgConnection::connect_with(&options).await.unwrap();
        OrdersGate {
            options,
            held,
            monitor,
        }
    }

    /// Waits until a statement reading `orders` waits at the gate.
    pub async fn wait_for_reader(&mut self) {
        let deadline = Instant::now() + WITHIN;
        while self.waiting("AccessShareLock", None).await == 0 {
            assert!(Instant::now() < deadline, "no reader waited on orders");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn waiting(&mut self, mode: &str, pid: Option<i32>) -> i64 {
        sqlx::query_scalar(WAITING)
            .bind(mode)
            .bind(pid)
            .fetch_one(&mut self.monitor)
            .await
            .unwrap()
    }

    /// Lets exactly one statement waiting on `orders` through (waits for
    /// one to wait), and closes behind it: the gate is held again when this
    /// returns, once that statement has ended.
    pub async fn let_one_through(&mut self) {
        self.wait_for_reader().await;
        // The next lock, queued behind the waiting reader.
        let mut next = PgConnection::connect_with(&self.options).await.unwrap();
        let next_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut next)
            .await
            .unwrap();
        let queued = tokio::spawn(async move {
            begin_and_lock(&mut next).await;
            next
        });
        let deadline = Instant::now() + WITHIN;
        while self.waiting("AccessExclusiveLock", Some(next_pid)).await == 0 {
            assert!(
                !queued.is_finished() && Instant::now() < deadline,
                "the next lock did not queue behind the reader"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.held.execute("ROLLBACK").await.unwrap();
        let next = tokio::time::timeout(WITHIN, queued)
            .await
            .expect("the statement let through did not end")
            .unwrap();
        let previous = std::mem::replace(&mut self.held, next);
        previous.close().await.unwrap();
    }

    /// For a job submitted while the gate was closed: lets its reader read
    /// one or two pages (two statements), waits until its progress shows
    /// rows written and its reader waits again. The job is then stuck in
    /// the middle of its export until the gate opens. Answers the rows
    /// written.
    pub async fn hold_mid_export(&mut self, job_id: &str) -> i64 {
        self.let_one_through().await;
        self.let_one_through().await;
        let deadline = Instant::now() + WITHIN;
        let written = loop {
            let (status, rows): (String, i64) = sqlx::query_as(
                "SELECT status, paid_rows + unpaid_rows FROM summary_jobs WHERE id = $1::uuid",
            )
            .bind(job_id)
            .fetch_one(&mut self.monitor)
            .await
            .unwrap();
            assert_eq!(status, "running", "job {job_id} stopped at the gate");
            if rows > 0 {
                break rows;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} wrote no rows from the pages let through"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.wait_for_reader().await;
        written
    }

    /// Whether a statement reading `orders` waits at the gate now.
    pub async fn reader_waits(&mut self) -> bool {
        self.waiting("AccessShareLock", None).await > 0
    }

    /// Backends of `application_name` whose statement on `orders` waits at
    /// the gate.
    pub async fn waiting_readers_of(&mut self, application_name: &str) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'relation' AND NOT l.granted AND l.mode = 'AccessShareLock' \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.relation = 'orders'::regclass AND a.application_name = $1",
        )
        .bind(application_name)
        .fetch_all(&mut self.monitor)
        .await
        .unwrap()
    }

    /// Lets waiting statements through one at a time until `done` holds:
    /// a job that must stop at its next page reads as few pages as the
    /// worker needs to notice, never the rest of its export at once.
    pub async fn let_through_one_by_one_until(&mut self, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + WITHIN;
        while !done() {
            assert!(Instant::now() < deadline, "still not done at the gate");
            if self.reader_waits().await {
                self.let_one_through().await;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Releases the lock: waiting readers go on.
    pub async fn open(mut self) {
        self.held.execute("ROLLBACK").await.unwrap();
        self.held.close().await.unwrap();
        self.monitor.close().await.unwrap();
    }
}

/// A new connection in a transaction holding the lock.
async fn lock(options: &PgConnectOptions) -> PgConnection {
    let mut conn = PgConnection::connect_with(options).await.unwrap();
    begin_and_lock(&mut conn).await;
    conn
}

async fn begin_and_lock(conn: &mut PgConnection) {
    // Bounded, so that a lock that never comes fails the test instead of
    // hanging it.
    conn.execute("SET lock_timeout = '60s'").await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
}
