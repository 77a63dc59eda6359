//! The API keys a customer signs calls with (`api_keys`): found by the
//! API on every call (cached there), made by `ordersum keys`. The private
//! key is stored as given (plain or sealed by `keycrypt`), never printed.

use sqlx::PgExecutor;

/// An API key pair and the company it acts for.
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub public_key: String,
    pub private_key: String,
    pub company_id: i64,
    pub disabled: bool,
}

/// Never prints the private key.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .field("company_id", &self.company_id)
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[tracing::instrument(skip_all, err)]
pub async fn find_api_key(
    db: impl PgExecutor<'_>,
    public_key: &str,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT public_key, private_key, company_id, disabled FROM api_keys WHERE public_key = $1"#,
    )
    .bind(public_key)
    .fetch_optional(db)
    .await
}

#[tracing::instrument(skip_all, err)]
pub async fn insert_api_key(
    db: impl PgExecutor<'_>,
    public_key: &str,
    private_key: &str,
    company_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(r#"INSERT INTO api_keys (public_key, private_key, company_id) VALUES ($1, $2, $3)"#)
        .bind(public_key)
        .bind(private_key)
        .bind(company_id)
        .execute(db)
        .await
        .map(drop)
}
