//! Replay protection, when `ORDERSUM_REQUIRE_TIMESTAMP` is on. UCloud's
//! signature has no time in it, so a captured call could be sent again
//! forever; with a signed `Timestamp` (Unix seconds) a call is only good
//! within the window around the server's clock, and only once: the first
//! use of each signature is recorded in Redis (`SET NX EX`, shared by every
//! API replica) for as long as its timestamp can be accepted.
//!
//! Runs after the signature is verified, so unsigned garbage never reaches
//! Redis.

use ordersum_model::{ApiError, Params};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::state::AppState;

/// Refuses a call without a fresh `Timestamp` (220, 230) or whose signature
/// was used before (171), when timestamps are required.
pub async fn check(state: &AppState, params: &Params, signature: &str) -> Result<()> {
    if !state.settings.require_timestamp {
        return Ok(());
    }
    let timestamp = params
        .text("Timestamp")?
        .ok_or(ApiError::MissingParam("Timestamp"))?;
    let timestamp: i64 = timestamp.parse().map_err(|_| ApiError::bad("Timestamp"))?;
    let now = chrono::Utc::now().timestamp();
    if timestamp.abs_diff(now) > state.settings.timestamp_window_secs {
        return Err(ApiError::bad("Timestamp").into());
    }
    // A timestamp is accepted from `t - window` to `t + window`: remember
    // the signature that long (plus a second for rounding).
    let remember = state.settings.timestamp_window_secs.saturating_mul(2) + 1;
    if first_use(state, signature, remember).await? {
        Ok(())
    } else {
        Err(ApiError::Replayed.into())
    }
}

/// Records `signature` as used for `secs`; false if it already was.
async fn first_use(state: &AppState, signature: &str, secs: u64) -> Result<bool> {
    let key = seen_key(state.queue.name(), signature);
    let mut conn = state.queue.connection();
    let mut command = redis::cmd("SET");
    command.arg(&key).arg(1).arg("NX").arg("EX").arg(secs);
    let set = command.query_async::<Option<String>>(&mut conn);
    let timeout = state.settings.dependency_timeout();
    match tokio::time::timeout(timeout, set).await {
        Ok(Ok(stored)) => Ok(stored.is_some()),
        Ok(Err(err)) => Err(Error::Queue(format!("recording a signature: {err}"))),
        Err(_) => Err(Error::Queue(format!(
            "recording a signature: no answer within {timeout:?}"
        ))),
    }
}

/// The Redis key of a used signature: a hash (the signature itself is a
/// credential for that one call), case-folded as verification is.
fn seen_key(namespace: &str, signature: &str) -> String {
    let normalized = signature.trim().to_ascii_lowercase();
    let digest = Sha256::digest(normalized.as_bytes());
    format!(
        "{namespace}:ordersum:seen-signature:{}",
        hex::encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_in_another_case_is_the_same_use() {
        assert_eq!(seen_key("q", "ABCdef"), seen_key("q", " abcdef "));
        assert_ne!(seen_key("q", "abcdef"), seen_key("q", "abcdee"));
        assert!(!seen_key("q", "abcdef").contains("abcdef"));
    }
}
