//! Who may use the console: an operator holding `ORDERSUM_ADMIN_TOKEN`,
//! signed in by a session cookie (the browser) or sending it as a Bearer
//! token (scripts).
//!
//! A session is a signed cookie and a row: `v1.<expires>.<nonce>.<mac>`,
//! the MAC an HMAC-SHA256 under a key derived from the token (changing the
//! token signs everyone out), and the session's row in `admin_sessions`
//! (`ordersum_model::store::sessions`), which signing out deletes, so every
//! API replica with the same token accepts a session until then and none
//! after. The
//! CSRF token is a second MAC of the session's nonce: a page gets it in its
//! HTML, a state-changing call must send it back in `X-CSRF-Token`, and a
//! call whose `Origin` (or `Sec-Fetch-Site`) says another site is refused
//! whatever it carries. Bearer calls need no CSRF token: a browser never
//! adds that header by itself.
//!
//! Wrong tokens, by form or by header, are logged and limited per client
//! address; past the limit every token from that address is refused for a
//! while, the right one too, so guessing cannot go on at the limit's pace.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use governor::Quota;
use hmac::{Hmac, Mac};
use ordersum_runtime::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ratelimit::{Limiter, client_bucket};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name (path `/admin`).
pub const COOKIE: &str = "ordersum_admin";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Wrong tokens one address may send at once…
const WRONG_TOKEN_BURST: u32 = 5;
/// …and then one per this period.
const WRONG_TOKEN_PERIOD: Duration = Duration::from_secs(12);
/// How long an address over the limit is refused every token.
const BLOCKED_FOR: Duration = Duration::from_secs(60);

/// The operator's credentials and the wrong-token limit.
pub struct AdminAuth {
    token: SecretString,
    key: [u8; 32],
    wrong_tokens: Limiter<IpAddr>,
    blocked: moka::sync::Cache<IpAddr, ()>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").finish_non_exhaustive()
    }
}

/// A browser session as its cookie says (the caller checks it was not
/// signed out: `admin_sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The cookie's nonce: the session's row.
    pub id: String,
    pub csrf: String,
    /// Unix seconds.
    pub expires: i64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Wrong,
    /// Too many wrong tokens from this address: wait this many seconds.
    Limited(u64),
}

impl AdminAuth {
    pub fn new(token: SecretString) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"ordersum admin session\0")
            .chain_update(token.expose_secret().as_bytes())
            .finalize()
            .into();
        let quota = Quota::with_period(WRONG_TOKEN_PERIOD)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(WRONG_TOKEN_BURST).unwrap_or(NonZeroU32::MIN));
        AdminAuth {
            token,
            key,
            wrong_tokens: Limiter::with_quota(quota),
            blocked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(BLOCKED_FOR)
                .build(),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
            mac.update(b"\0");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a token from `peer`: the sign-in form's or a Bearer header's.
    pub fn check_token(&self, peer: IpAddr, offered: &str, via: &str) -> Result<(), Refusal> {
        let bucket = client_bucket(peer);
        if self.blocked.contains_key(&bucket) {
            tracing::warn!(%peer, via, "operator token refused: too many wrong tokens from this address");
            return Err(Refusal::Limited(BLOCKED_FOR.as_secs()));
        }
        let offered = Sha256::digest(offered.as_bytes());
        let expected = Sha256::digest(self.token.expose_secret().as_bytes());
        if bool::from(offered.ct_eq(&expected)) {
            return Ok(());
        }
        tracing::warn!(%peer, via, "wrong operator token");
        if self.wrong_tokens.check(&bucket).is_err() {
            self.blocked.insert(bucket, ());
            tracing::warn!(%peer, via, blocked_secs = BLOCKED_FOR.as_secs(), "too many wrong operator tokens: address blocked");
            return Err(Refusal::Limited(BLOCKED_FOR.as_secs()));
        }
        Err(Refusal::Wrong)
    }

    /// A new session: its cookie's value, and the session.
    pub fn new_session(&self, now: i64) -> (String, Session) {
        let expires = now + SESSION_TTL.as_secs() as i64;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let mac = self.mac(&[b"session", expires.to_string().as_bytes(), nonce.as_bytes()]);
        let session = Session {
            csrf: self.csrf_of(&nonce),
            id: nonce,
            expires,
        };
        (format!("v1.{expires}.{}.{mac}", session.id), session)
    }

    fn csrf_of(&self, nonce: &str) -> String {
        self.mac(&[b"csrf", nonce.as_bytes()])
    }

    /// The session of a cookie value this token signed, unexpired.
    pub fn session(&self, value: &str, now: i64) -> Option<Session> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(expires), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expected = self.mac(&[b"session", expires.as_bytes(), nonce.as_bytes()]);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let expires = expires
            .parse::<i64>()
            .ok()
            .filter(|expires| *expires > now)?;
        Some(Session {
            id: nonce.to_owned(),
            csrf: self.csrf_of(nonce),
            expires,
        })
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether a state-changing request may come from where it says: no
/// `Sec-Fetch-Site` saying another site, and no `Origin` or one naming this
/// host. `Origin: null` (a browser hiding where a form was posted from)
/// passes only with the browser's own `Sec-Fetch-Site: same-origin`, which
/// no page can set.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .map(|site| site.to_str().unwrap_or(""));
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|host| host.to_str()),
    ) else {
        return false;
    };
    if origin == "null" {
        return site == Some("same-origin");
    }
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
}

/// Whether the CSRF token a request sent is its session's.
pub fn csrf_matches(expected: &str, sent: Option<&str>) -> bool {
    sent.is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> AdminAuth {
        AdminAuth::new(SecretString::from("a-long-enough-operator-token"))
    }

    #[tokio::test]
    async fn a_session_verifies_until_it_expires_and_not_when_altered() {
        let auth = auth();
        let (cookie, session) = auth.new_session(1_000);
        assert_eq!(auth.session(&cookie, 1_001), Some(session));
        let expires = 1_000 + SESSION_TTL.as_secs() as i64;
        assert_eq!(auth.session(&cookie, expires), None);
        let longer = cookie.replacen(&expires.to_string(), &(expires + 3600).to_string(), 1);
        assert_eq!(auth.session(&longer, 1_001), None);
        let other = AdminAuth::new(SecretString::from("another-operator-token-entirely"));
        assert_eq!(
            other.session(&cookie, 1_001),
            None,
            "a new token signs everyone out"
        );
        assert_eq!(auth.session("v1.x.y", 1_001), None);
    }

    #[tokio::test]
    async fn wrong_tokens_past_the_burst_block_the_address_even_for_the_right_one() {
        let auth = auth();
        let peer: IpAddr = "10.1.2.3".parse().expect("address");
        for _ in 0..WRONG_TOKEN_BURST {
            assert_eq!(auth.check_token(peer, "guess", "form"), Err(Refusal::Wrong));
        }
        assert!(matches!(
            auth.check_token(peer, "guess", "form"),
            Err(Refusal::Limited(_))
        ));
        assert!(matches!(
            auth.check_token(peer, "a-long-enough-operator-token", "form"),
            Err(Refusal::Limited(_))
        ));
        let elsewhere: IpAddr = "10.9.9.9".parse().expect("address");
        assert_eq!(
            auth.check_token(elsewhere, "a-long-enough-operator-token", "form"),
            Ok(())
        );
    }

    #[test]
    fn origins_of_other_sites_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: a script");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(
            !same_origin(&headers),
            "a hidden origin without the browser's word"
        );
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(
            same_origin(&headers),
            "a hidden origin, same-origin by the browser"
        );
        headers.remove("sec-fetch-site");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ordersum_admin=v1.2.3.4; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("v1.2.3.4"));
    }
}
