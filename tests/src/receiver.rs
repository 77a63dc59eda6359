//! A webhook receiver on 127.0.0.1: records every POST (headers, body, when)
//! and answers from a script (then 200), or holds the request open.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// This status with `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// Never answers (the request stays open).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: SystemTime,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
}

/// The receiver; stops with the test's runtime.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.addr.port())
    }

    /// The next answers, in order (200 once they are used up).
    pub fn script(&self, replies: &[Reply]) {
        self.inner
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} webhooks arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.received.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at: SystemTime::now(),
    });
    let reply = inner.script.lock().unwrap().pop_front();
    match reply.unwrap_or(Reply::Status(200)) {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::RetryAfter(code, secs) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Reply::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

/// API settings that let webhooks reach the receiver (127.0.0.1, http).
pub fn loopback_api_settings() -> ordersum_api::Settings {
    let mut settings = crate::test_settings();
    settings.webhook_policy.webhook_allowed_networks = "127.0.0.1/32".parse().unwrap();
    settings.webhook_policy.webhook_allow_http = true;
    settings
}

/// A worker in this process that may deliver to the receiver, with the
/// retry schedule scaled down (5 ms, 300 ms, 1.8 s, …) and a 50 ms poll.
pub async fn loopback_worker(app: &crate::TestApp) -> crate::TestWorker {
    crate::spawn_worker(app, |s| {
        s.webhooks.policy.webhook_allowed_networks = "127.0.0.1/32".parse().unwrap();
        s.webhooks.policy.webhook_allow_http = true;
        s.webhooks.webhook_retry_scale = 0.001;
        s.webhooks.webhook_poll_ms = 50;
    })
    .await
}

/// Panics unless the Standard Webhooks library verifies `received` with
/// `secret`, as a customer's receiver would.
pub fn verify(secret: &str, received: &Received) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&received.body, &received.headers)
        .unwrap_or_else(|e| panic!("signature does not verify with {secret}: {e:?}"));
}

/// The company's first webhook as `ListOrderSummaryWebhooks` shows it, once
/// `done` holds for it (or as it is after 5 s).
pub async fn first_webhook_when(
    app: &crate::TestApp,
    key: &crate::Key,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut listed = serde_json::Value::Null;
    for _ in 0..50 {
        listed = app
            .call(key, &[("Action", "ListOrderSummaryWebhooks")])
            .await["Webhooks"][0]
            .clone();
        if done(&listed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listed
}
