//! One POST to a receiver: the host resolved now, every address checked,
//! the connection made to exactly the checked addresses (reqwest is handed
//! them, so it never looks the name up again), no proxy, no redirect,
//! bounded in time and in what is read back.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::policy::{self, Policy, Refusal, Target, TargetHost};

/// Connecting gives up after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole attempt gives up after this.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes of the answer read at most.
pub const MAX_ANSWER_BYTES: usize = 4096;
/// Bytes of a failed answer kept in the delivery log.
const LOGGED_ANSWER_BYTES: usize = 200;

/// The `user-agent` of deliveries.
pub const AGENT: &str = concat!("ordersum-webhooks/", env!("CARGO_PKG_VERSION"));

/// What an attempt came to.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Its `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// What went wrong (refused address, timeout, …), or the start of a
    /// non-2xx answer.
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// The addresses to connect to for `target`: the literal, or every address
/// the name resolves to now, each checked against `policy`.
pub async fn checked_addrs(policy: &Policy, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
    let ips: Vec<IpAddr> = match &target.host {
        TargetHost::Ip(ip) => vec![*ip],
        TargetHost::Name(name) => {
            let lookup = tokio::net::lookup_host((policy::lookup_name(name), target.port));
            match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        }
    };
    if ips.is_empty() {
        if let TargetHost::Name(name) = &target.host
            && let Some(kind) = policy::refused_name(name)
        {
            return Err(Refusal::Name(name.clone(), kind));
        }
        let name = match &target.host {
            TargetHost::Name(name) => name.clone(),
            TargetHost::Ip(ip) => ip.to_string(),
        };
        return Err(Refusal::NoAddress(name));
    }
    for ip in &ips {
        policy.check_addr(*ip, target.port)?;
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, target.port))
        .collect())
}

/// POSTs `body` to `url` with `headers` (the Standard Webhooks ones).
pub async fn post(policy: &Policy, url: &str, headers: HeaderMap, body: Vec<u8>) -> Sent {
    let started = Instant::now();
    let mut sent = match attempt(policy, url, headers, body).await {
        Ok(sent) => sent,
        Err(error) => Sent {
            error: Some(error),
            ..Sent::default()
        },
    };
    sent.elapsed = started.elapsed();
    sent
}

async fn attempt(
    policy: &Policy,
    url: &str,
    mut headers: HeaderMap,
    body: Vec<u8>,
) -> Result<Sent, String> {
    let target = policy.check_url(url).map_err(|r| format!("refused: {r}"))?;
    let addrs = checked_addrs(policy, &target)
        .await
        .map_err(|r| format!("refused: {r}"))?;
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .pool_max_idle_per_host(0);
    if let TargetHost::Name(name) = &target.host {
        client = client.resolve_to_addrs(name, &addrs);
    }
    let client = client.build().map_err(|e| format!("client: {e}"))?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    let mut response = client
        .post(target.url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut answer = Vec::new();
    while answer.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let error = (!(200..300).contains(&status)).then(|| {
        let shown = &answer[..answer.len().min(LOGGED_ANSWER_BYTES)];
        format!("HTTP {status}: {}", String::from_utf8_lossy(shown).trim())
    });
    Ok(Sent {
        status: Some(status),
        retry_after,
        error,
        elapsed: Duration::ZERO,
    })
}

fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        format!("request failed: {err}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_any_connection() {
        let policy = Policy {
            allow_http: true,
            ..Policy::default()
        };
        let sent = post(
            &policy,
            "http://localhost:9/hook",
            HeaderMap::new(),
            b"{}".to_vec(),
        )
        .await;
        let error = sent.error.unwrap();
        assert!(error.starts_with("refused: address "), "{error}");
        assert!(error.contains("loopback"), "{error}");
        assert_eq!(sent.status, None);
    }

    #[tokio::test]
    async fn an_allowed_network_is_reached() {
        let policy = Policy {
            allow_http: true,
            allowed_networks: "127.0.0.0/8,::1/128".parse().unwrap(),
            ..Policy::default()
        };
        let target = policy.check_url("http://localhost:9/").unwrap();
        let addrs = checked_addrs(&policy, &target).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }
}
