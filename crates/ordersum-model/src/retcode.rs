//! UCloud RetCodes and the messages that go with them. Codes below 2000 are
//! the caller's fault and never retried by UCloud SDKs; 2000 and above are
//! retryable and carry an opaque message (the cause goes to the log).

/// An answer other than success, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(
        "Too many active order summary jobs (at most {0} queued or running); wait for one to finish or cancel one"
    )]
    TooManyJobs(i64),
    #[error(
        "Too many webhooks (at most {0} per company); delete one with DeleteOrderSummaryWebhook first"
    )]
    TooManyWebhooks(i64),
    /// A parameter refused with a message of its own (`Params [key] not
    /// available: why`).
    #[error("Params [{0}] not available: {1}")]
    Refused(&'static str, String),
    /// Too many calls from one client address or with one key; retry after
    /// the given seconds (also sent as `Retry-After`).
    #[error("Request rate limit exceeded, retry after {0} s")]
    RateLimited(u64),
    #[error("Missing Action")]
    MissingAction,
    #[error("Action [{0}] not found")]
    UnknownAction(String),
    #[error("Missing signature")]
    MissingSignature,
    #[error("Missing public key")]
    MissingPublicKey,
    #[error("Signature VerifyAC Error")]
    BadSignature,
    /// A signed call whose signature was already used within the timestamp
    /// window (only when timestamps are required).
    #[error("Signature VerifyAC Error: request replayed")]
    Replayed,
    #[error("Public key not found")]
    UnknownPublicKey,
    #[error("Missing params [{0}]")]
    MissingParam(&'static str),
    #[error("Params [{0}] not available")]
    BadParam(String),
    #[error("Internal error, please retry later")]
    Internal,
    #[error("Service temporarily unavailable, please retry later")]
    Unavailable,
}

impl ApiError {
    /// The UCloud RetCode of this answer.
    pub fn ret_code(&self) -> i32 {
        match self {
            ApiError::TooManyJobs(_) | ApiError::TooManyWebhooks(_) => 153,
            ApiError::RateLimited(_) => 154,
            ApiError::MissingAction => 160,
            ApiError::UnknownAction(_) => 161,
            ApiError::MissingSignature | ApiError::MissingPublicKey => 170,
            ApiError::BadSignature | ApiError::Replayed => 171,
            ApiError::UnknownPublicKey => 172,
            ApiError::MissingParam(_) => 220,
            ApiError::BadParam(_) | ApiError::Refused(..) => 230,
            ApiError::Internal => 2000,
            ApiError::Unavailable => 2001,
        }
    }

    /// `Params [key] not available`.
    pub fn bad(key: impl Into<String>) -> Self {
        ApiError::BadParam(key.into())
    }
}
