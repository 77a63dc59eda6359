//! Rate limits per client address and per API key (GCRA, `governor`). The
//! address limit runs before anything is parsed or looked up; the key limit
//! after the key is authenticated, so bad signatures cannot spend another
//! tenant's quota. A limited call is answered 154 with `Retry-After`.
//!
//! The client address is the TCP peer (a proxy's `X-Forwarded-For` is not
//! trusted); IPv6 addresses count per /64, what one host usually holds.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ordersum_model::ApiError;
use uuid::Uuid;

use crate::state::AppState;
use crate::{metrics, wire};

/// How often idle entries (clients whose bucket is full again) are dropped.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(10);

/// One keyed limiter, or none when its rate is 0.
#[derive(Debug, Clone)]
pub struct Limiter<K: Hash + Eq + Clone + Send + Sync + 'static> {
    inner: Option<Arc<DefaultKeyedRateLimiter<K>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Limiter<K> {
    /// `per_second` calls a second with `burst` at once (at least the rate);
    /// a rate of 0 turns the limit off. Idle keys are dropped periodically,
    /// so the limiter does not grow with every client ever seen.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let Some(rate) = NonZeroU32::new(per_second) else {
            return Limiter { inner: None };
        };
        let burst = NonZeroU32::new(burst).unwrap_or(rate).max(rate);
        Self::with_quota(Quota::per_second(rate).allow_burst(burst))
    }

    /// A limit of any quota (e.g. one every few seconds).
    pub fn with_quota(quota: Quota) -> Self {
        let limiter = Arc::new(RateLimiter::keyed(quota));
        tokio::spawn(upkeep(Arc::downgrade(&limiter)));
        Limiter {
            inner: Some(limiter),
        }
    }

    /// Ok, or 154 with the whole seconds to wait (at least 1).
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let whole_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited(whole_secs.max(1))
        })
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |limiter| limiter.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops keys whose bucket is full again, until the limiter is dropped.
async fn upkeep<K: Hash + Eq + Clone + Send + Sync + 'static>(
    limiter: Weak<DefaultKeyedRateLimiter<K>>,
) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// The per-address and per-key limits of one API process.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub per_address: Limiter<IpAddr>,
    pub per_key: Limiter<String>,
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64.
pub fn client_bucket(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Middleware for the Action endpoint: 154 in the UCloud envelope when the
/// peer address is over its rate, before the request is read.
pub async fn limit_action_by_address(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match check_address(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            metrics::record_call("limited", err.ret_code(), Duration::ZERO);
            let response = wire::refusal("", Uuid::new_v4(), err.clone());
            with_retry_after(response, &err)
        }
    }
}

/// Middleware for downloads: 429 with `Retry-After` when over the rate.
pub async fn limit_download_by_address(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match check_address(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            let response = (StatusCode::TOO_MANY_REQUESTS, format!("{err}\n")).into_response();
            with_retry_after(response, &err)
        }
    }
}

fn check_address(state: &AppState, request: &Request) -> Result<(), ApiError> {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => state
            .rate_limits
            .per_address
            .check(&client_bucket(peer.ip())),
        None => Ok(()),
    }
}

/// Adds `Retry-After` to a 154 answer.
pub fn with_retry_after(mut response: Response, err: &ApiError) -> Response {
    if let ApiError::RateLimited(secs) = err {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_of_one_64_count_together() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_bucket(a), client_bucket(b));
        assert_ne!(client_bucket(a), client_bucket(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            client_bucket(mapped),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[tokio::test]
    async fn a_burst_over_the_limit_is_told_when_to_retry() {
        let limiter = Limiter::<u8>::new(1, 2);
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        assert_eq!(limiter.check(&1), Err(ApiError::RateLimited(1)));
        assert!(limiter.check(&2).is_ok(), "another key has its own bucket");
        assert!(Limiter::<u8>::new(0, 0).check(&1).is_ok(), "0 = off");
    }
}
