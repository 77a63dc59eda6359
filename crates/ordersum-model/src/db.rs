//! Postgres errors as the API and the worker see them.

/// Whether `err` says Postgres was unreachable, busy or shutting down, or
/// the statement lost a race (serialization failure, deadlock): the same
/// call may succeed later. The API answers such errors "unavailable, retry"
/// and the worker retries the job; anything else is a bug or bad data.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 40001: serialization failure;
            // 40P01: deadlock; 57P: admin shutdown, crash, cannot connect
            // now; 53: insufficient resources (too many connections, disk).
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("57P")
                || code.starts_with("53")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_or_busy_postgres_is_transient_bad_queries_are_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::other(
            "reset"
        ))));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
