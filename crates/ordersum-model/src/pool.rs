//! The connections ordersum keeps to Postgres, and how statements may use
//! them.
//!
//! A transaction-pooling PgBouncer (1.18 has no `max_prepared_statements`)
//! hands a client's statements to whichever server connection is free once
//! the previous transaction ended. sqlx runs each statement as Parse, Sync,
//! then Bind and Execute, and names its prepared statements `sqlx_s_<n>` per
//! client connection: through such a pooler the two halves may reach
//! different servers, and two clients' `sqlx_s_1` the same one. Measured
//! here (8 tasks × 300 statements, sqlx 0.9, PgBouncer 1.18): errors
//! ("prepared statement … already exists / does not exist") in every mode,
//! and with unnamed statements answers to *another* client's statement.
//!
//! [`Db::pooled`] is the way through: each statement runs in a transaction
//! of its own (the pooler keeps one server connection for a transaction)
//! that begins by dropping whatever statements earlier clients left on that
//! server (`DEALLOCATE ALL`), with sqlx's statement cache off, so no
//! prepared statement is used outside the transaction that made it.
//! [`Databases::direct`] is the connection a pooler cannot provide: the
//! `LISTEN`s, the session advisory locks and the migrations.

use std::fmt;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use futures::{FutureExt, future::BoxFuture};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Error, Execute, Executor, PgPool, Postgres, SqlStr, Transaction};

/// Begins every transaction through a transaction pooler.
const POOLED_BEGIN: &str = "BEGIN; DEALLOCATE ALL";

/// A pool of connections for statements, direct or through a transaction
/// pooler. `&Db` is an executor like `&PgPool`.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    pooled: bool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("pooled", &self.pooled)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connections straight to Postgres (or a session pooler).
    pub fn direct(pool: PgPool) -> Self {
        Db {
            pool,
            pooled: false,
        }
    }

    /// Connections through a transaction pooler: the pool's connections must
    /// have sqlx's statement cache off (`statement_cache_capacity(0)`).
    pub fn pooled(pool: PgPool) -> Self {
        Db { pool, pooled: true }
    }

    /// Whether statements run through a transaction pooler.
    pub fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// The pool itself (its size, its options).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction; through a pooler it first drops the statements
    /// others left on the server connection it was given.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        match self.pooled {
            true => self.pool.begin_with(POOLED_BEGIN).await,
            false => self.pool.begin().await,
        }
    }
}

impl From<PgPool> for Db {
    fn from(pool: PgPool) -> Self {
        Db::direct(pool)
    }
}

impl<'c> Executor<'c> for &'c Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return self.pool.fetch_many(query);
        }
        // The statement's results are read to the end inside its
        // transaction, which commits before any of them is handed on.
        stream::once(async move {
            let mut tx = self.begin().await?;
            let steps: Vec<_> = tx.fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, Error>(stream::iter(steps.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return self.pool.fetch_optional(query);
        }
        async move {
            let mut tx = self.begin().await?;
            let row = tx.fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        }
        .boxed()
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, Error>>
    where
        'c: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, Error>>
    where
        'c: 'e,
    {
        self.pool.describe(sql)
    }
}

/// The connections of one process: [`Databases::main`] for statements,
/// [`Databases::direct`] for what must hold a server connection of its own
/// (`LISTEN`, session advisory locks, migrations).
#[derive(Debug, Clone)]
pub struct Databases {
    pub main: Db,
    pub direct: PgPool,
}

impl From<PgPool> for Databases {
    /// One direct pool for both.
    fn from(pool: PgPool) -> Self {
        Databases {
            main: Db::direct(pool.clone()),
            direct: pool,
        }
    }
}
