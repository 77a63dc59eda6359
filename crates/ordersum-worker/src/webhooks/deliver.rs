//! One delivery: sign the event with the endpoint's secrets, POST it where
//! the policy allows, decide what comes next and record the attempt.

use chrono::Utc;
use ordersum_model::keycrypt::{ExposeSecret, KeyCipher};
use ordersum_model::store::deliveries::{self, Attempted, Due, Next};
use ordersum_webhooks::schedule::{self, DISABLE_AFTER, Verdict};
use ordersum_webhooks::{Event, Policy, send, sign};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::metrics;
use crate::context::JobContext;

/// Sends `due` once and records how it went.
pub async fn one(ctx: &JobContext, policy: &Policy, cipher: &KeyCipher, due: Due) {
    let keys = signing_keys(cipher, &due);
    let sent = if keys.is_empty() {
        tracing::error!(webhook_id = %due.endpoint_id, "webhook secret unreadable (ORDERSUM_KEY_ENCRYPTION_KEYS?)");
        send::Sent {
            error: Some("internal error: the endpoint's secret could not be read".to_owned()),
            ..send::Sent::default()
        }
    } else {
        let body = event(&due).body();
        let timestamp = Utc::now().timestamp();
        let signature = sign::signature_header(&keys, &due.event_id, timestamp, &body);
        send::post(
            policy,
            &due.url,
            headers(&due.event_id, timestamp, &signature),
            body,
        )
        .await
    };
    let verdict = match sent.status {
        Some(status) => schedule::verdict(status, sent.retry_after.as_deref()),
        None => Verdict::Retry(None),
    };
    let tries = u32::try_from(due.tries).unwrap_or(u32::MAX);
    let next = match verdict {
        Verdict::Delivered => Next::Delivered,
        Verdict::Gone => Next::Gone,
        Verdict::Retry(after) => {
            match schedule::next_delay(tries, ctx.settings.webhooks.webhook_retry_scale) {
                Some(delay) => Next::RetryAfter(after.map_or(delay, |after| after.max(delay))),
                None => Next::GiveUp,
            }
        }
    };
    let attempt = Attempted {
        http_status: sent.status.map(i32::from),
        error: sent.error.as_deref(),
        duration: sent.elapsed,
        next,
    };
    metrics::attempted(&attempt, due.event_time);
    match deliveries::record_attempt(&ctx.pool, &ctx.worker_id, &due, &attempt, DISABLE_AFTER).await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(event_id = %due.event_id, "delivery lease lost meanwhile; attempt logged only")
        }
        Err(err) => {
            tracing::warn!(event_id = %due.event_id, error = %err, "could not record a webhook attempt; it is tried again when its lease runs out")
        }
    }
    tracing::debug!(event_id = %due.event_id, webhook_id = %due.endpoint_id, status = ?sent.status, error = ?sent.error, ?next, "webhook attempt");
}

/// The key bytes of the secrets that sign: current first.
fn signing_keys(cipher: &KeyCipher, due: &Due) -> Vec<Vec<u8>> {
    let aad = due.endpoint_id.to_string();
    [Some(&due.secret), due.previous_secret.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|stored| cipher.open(&aad, stored).ok())
        .filter_map(|secret| sign::secret_key(secret.expose_secret()))
        .collect()
}

fn event(due: &Due) -> Event {
    Event {
        id: due.event_id.clone(),
        kind: due.event_type.clone(),
        job_id: due.job_id,
        status: due.status,
        file_name: due.file_name.clone(),
        file_size: due.file_size,
        paid_rows: due.paid_rows,
        unpaid_rows: due.unpaid_rows,
        error_message: due.error_message.clone(),
        created_at: due.event_time,
    }
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("webhook-id", id);
    put("webhook-timestamp", &timestamp.to_string());
    put("webhook-signature", signature);
    headers
}
