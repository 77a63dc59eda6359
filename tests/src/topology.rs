//! The production topology in the tests: a streaming replica of the test
//! Postgres and a transaction-pooling PgBouncer in front of it, started by
//! `scripts/services.sh topology` (which exports their URLs).
//!
//! `tests/tests/topology.rs` always uses them. With `ORDERSUM_TEST_TOPOLOGY=1`
//! every other test runs through them too (scripts/test.sh does so for the
//! end-to-end and fault tests): the API and the workers reach the test
//! database through PgBouncer with `ORDERSUM_PG_STATEMENT_CACHE=0`, keep
//! `LISTEN` and the advisory locks on the direct URL, and read orders from
//! the replica; the test itself still asserts on the primary, directly.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ordersum_model::pool::{Databases, Db};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The servers of the topology (URLs without a database).
#[derive(Debug, Clone)]
pub struct Topology {
    pub pgbouncer: String,
    pub replica: String,
}

fn url_of(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run the tests through scripts/test.sh, which starts the replica and PgBouncer (scripts/services.sh topology)")
    })
}

impl Topology {
    /// The topology's URLs; panics naming what to run when they are unset.
    pub fn required() -> Topology {
        Topology {
            pgbouncer: url_of("ORDERSUM_TEST_PGBOUNCER_URL"),
            replica: url_of("ORDERSUM_TEST_REPLICA_URL"),
        }
    }

    /// The topology when this run goes through it: `ORDERSUM_TEST_TOPOLOGY=1`
    /// for all of it, `=pgbouncer` for PgBouncer with the orders read from
    /// the primary through it (the tests that hold an export with
    /// `gate::OrdersGate`, a lock on the primary's `orders`, which a
    /// replica's readers do not queue behind the same way).
    pub fn of_this_run() -> Option<Topology> {
        let mode = std::env::var("ORDERSUM_TEST_TOPOLOGY").unwrap_or_default();
        match mode.as_str() {
            "1" => Some(Topology::required()),
            "pgbouncer" => Some(Topology {
                replica: String::new(),
                ..Topology::required()
            }),
            _ => None,
        }
    }

    /// `server` + `/database`.
    pub fn url(server: &str, database: &str) -> String {
        format!("{}/{database}", server.trim_end_matches('/'))
    }

    /// The test database through PgBouncer, as the services connect to it.
    pub fn pooled(&self, database: &str) -> Db {
        let options: PgConnectOptions = Topology::url(&self.pgbouncer, database).parse().unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_lazy_with(options.statement_cache_capacity(0));
        Db::pooled(pool)
    }

    /// The API's and in-process workers' connections: statements through
    /// PgBouncer, the direct test pool for what a pooler cannot carry.
    pub async fn databases(&self, direct: &PgPool) -> Databases {
        let database = direct.connect_options().get_database().unwrap().to_owned();
        Databases {
            main: self.pooled(&database),
            direct: direct.clone(),
        }
    }

    /// The test database on the replica, once replay has created it.
    pub async fn replica_url(&self, database: &str) -> String {
        let url = Topology::url(&self.replica, database);
        let options: PgConnectOptions = url.parse().unwrap();
        for _ in 0..200 {
            if let Ok(pool) = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
            {
                pool.close().await;
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("database {database} did not appear on the replica");
    }

    /// A pool on the replica's copy of `database`.
    pub async fn replica_pool(&self, database: &str) -> PgPool {
        let url = self.replica_url(database).await;
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap()
    }

    /// Environment of a service process on `database` through the topology.
    pub async fn service_env(&self, database: &str, direct_url: &str) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "DATABASE_URL".into(),
                Topology::url(&self.pgbouncer, database),
            ),
            ("ORDERSUM_LISTEN_DATABASE_URL".into(), direct_url.to_owned()),
            ("ORDERSUM_PG_STATEMENT_CACHE".into(), "0".into()),
        ];
        if !self.replica.is_empty() {
            env.push((
                "ORDERSUM_ORDERS_DATABASE_URL".into(),
                self.replica_url(database).await,
            ));
        }
        env
    }
}

/// Ends every session on a test database when the test is done, so that
/// sqlx can drop it: PgBouncer keeps idle server connections to it.
#[derive(Debug)]
pub struct EndSessions {
    pub direct_url: String,
}

impl Drop for EndSessions {
    fn drop(&mut self) {
        let Some((server, database)) = self.direct_url.rsplit_once('/') else {
            return;
        };
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            database.replace('\'', "")
        );
        let _ = std::process::Command::new("psql")
            .args([&format!("{server}/postgres"), "-Atqc", &sql])
            .stdout(std::process::Stdio::null())
            .status();
    }
}
