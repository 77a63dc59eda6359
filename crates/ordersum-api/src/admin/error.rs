//! How a console call fails: a status and a message (`Refused`); an
//! internal error is logged in full and the console sees an opaque message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::views::Refused;
use crate::error::Error;

/// What the console is told when a call fails: a status and a message.
#[derive(Debug)]
pub enum AdminError {
    NotSignedIn,
    WrongToken,
    Limited(u64),
    Forbidden(&'static str),
    NotFound,
    Conflict(String, Option<Uuid>),
    Bad(String),
    /// Logged in full; the console sees an opaque message.
    Internal(Error),
}

impl From<Error> for AdminError {
    fn from(err: Error) -> Self {
        AdminError::Internal(err)
    }
}

impl From<sqlx::Error> for AdminError {
    fn from(err: sqlx::Error) -> Self {
        AdminError::Internal(err.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, message, job) = match self {
            AdminError::NotSignedIn => (StatusCode::UNAUTHORIZED, "Sign in first.".into(), None),
            AdminError::WrongToken => (StatusCode::UNAUTHORIZED, "Wrong token.".into(), None),
            AdminError::Limited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many wrong tokens from your address; wait {secs} seconds."),
                None,
            ),
            AdminError::Forbidden(why) => (StatusCode::FORBIDDEN, why.into(), None),
            AdminError::NotFound => (StatusCode::NOT_FOUND, "No such job.".into(), None),
            AdminError::Conflict(why, job) => (StatusCode::CONFLICT, why, job),
            AdminError::Bad(why) => (StatusCode::BAD_REQUEST, why, None),
            AdminError::Internal(err) => {
                tracing::error!(error = %err, "operator console call failed");
                let status = match err.to_api_error().ret_code() {
                    2001 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (
                    status,
                    "Internal error; the API's log has the cause.".into(),
                    None,
                )
            }
        };
        let body = Refused {
            error: message,
            job_id: job,
        };
        (status, Json(body)).into_response()
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;
