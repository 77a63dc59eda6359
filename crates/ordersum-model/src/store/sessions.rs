//! The operator console's sessions (`admin_sessions`): a row per signed-in
//! browser, so signing out (or a changed token) ends it on every replica.

use chrono::{DateTime, Utc};

use sqlx::PgExecutor;

/// Records a console session (signing in); drops expired ones on the way.
#[tracing::instrument(skip_all, err)]
pub async fn insert_session(
    db: &crate::pool::Db,
    id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM admin_sessions WHERE expires_at < now()")
        .execute(db)
        .await?;
    sqlx::query("INSERT INTO admin_sessions (id, expires_at) VALUES ($1, $2)")
        .bind(id)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether a console session is signed in (not signed out, not expired).
#[tracing::instrument(skip_all, err)]
pub async fn session_alive(db: impl PgExecutor<'_>, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM admin_sessions WHERE id = $1 AND expires_at > now())",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Ends a console session (signing out).
#[tracing::instrument(skip_all, err)]
pub async fn delete_session(db: impl PgExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM admin_sessions WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
