//! When to try a delivery again: the Standard Webhooks schedule, scaled (for
//! tests) and jittered, and what an answer means for the next try.

use std::time::Duration;

use rand::Rng;

/// Delay before each try, in seconds: immediately, 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 14 h, 20 h, 24 h. After the last one fails the delivery fails.
pub const SCHEDULE_SECS: [u64; 10] = [
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
];

/// Days of failures in a row after which an endpoint is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay before try `tries + 1` after `tries` failed ones (`None`: no
/// tries left), the schedule scaled by `scale`, jittered by ±10 %.
pub fn next_delay(tries: u32, scale: f64) -> Option<Duration> {
    let secs = *SCHEDULE_SECS.get(tries as usize)?;
    let jitter = rand::rng().random_range(0.9..=1.1);
    Some(Duration::from_secs_f64(secs as f64 * scale * jitter))
}

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver asks not to be called again.
    Gone,
    /// Anything else: try again on the schedule, or after `Retry-After`.
    Retry(Option<Duration>),
}

/// The verdict on an HTTP status (redirects are failures: never followed)
/// and its `Retry-After` header (seconds; honoured on 429 and 503).
pub fn verdict(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        429 | 503 => Verdict::Retry(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER)),
        ),
        _ => Verdict::Retry(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_scales_and_ends() {
        assert_eq!(next_delay(0, 1.0), Some(Duration::ZERO));
        let second = next_delay(1, 1.0).unwrap().as_secs_f64();
        assert!((4.5..=5.5).contains(&second), "{second}");
        let scaled = next_delay(2, 0.001).unwrap().as_secs_f64();
        assert!((0.27..=0.33).contains(&scaled), "{scaled}");
        assert_eq!(next_delay(10, 1.0), None);
    }

    #[test]
    fn answers_mean_what_standard_webhooks_says() {
        assert_eq!(verdict(204, None), Verdict::Delivered);
        assert_eq!(verdict(301, None), Verdict::Retry(None));
        assert_eq!(verdict(410, None), Verdict::Gone);
        assert_eq!(verdict(500, Some("7")), Verdict::Retry(None));
        assert_eq!(
            verdict(429, Some("7")),
            Verdict::Retry(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            verdict(503, Some("999999")),
            Verdict::Retry(Some(MAX_RETRY_AFTER))
        );
        assert_eq!(verdict(503, Some("soon")), Verdict::Retry(None));
    }
}
