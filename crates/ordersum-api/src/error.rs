//! The API's errors. Caller errors carry their RetCode; dependency and
//! internal errors answer an opaque 2000+ and are logged with their cause.

use ordersum_model::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("queue: {0}")]
    Queue(String),
    #[error("storage: {0}")]
    Storage(#[from] ordersum_storage::StorageError),
    #[error("key encryption: {0}")]
    Sealing(#[from] ordersum_model::keycrypt::KeyCryptError),
}

impl Error {
    /// What the caller is told. Dependency failures (connections, time-outs)
    /// are 2001 "unavailable", anything else unexpected 2000.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            Error::Api(api) => api.clone(),
            Error::Database(err) if ordersum_model::db::is_transient(err) => ApiError::Unavailable,
            Error::Database(_) => ApiError::Internal,
            Error::Storage(err) if err.is_retryable() => ApiError::Unavailable,
            Error::Storage(_) => ApiError::Internal,
            Error::Queue(_) => ApiError::Unavailable,
            Error::Sealing(_) => ApiError::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
