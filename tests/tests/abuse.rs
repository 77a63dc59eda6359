//! The API's edge under abuse: the key cache cannot be grown or flushed by
//! made-up keys, slow or numerous connections cannot hold the server, rate
//! limits answer 154 in the envelope, nothing secret reaches the logs, and
//! with timestamps required a captured call cannot be replayed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ordersum_api::keys::KeyCache;
use ordersum_api::{Application, Settings};
use ordersum_tests::procs::ApiProcess;
use ordersum_tests::{Key, TestApp, TestDirs, ret_code, signed, test_settings};
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIST: [(&str, &str); 1] = [("Action", "ListOrderSummaryJobs")];

/// The API on port 0 with `tweak`ed test settings, and its key cache.
async fn spawn(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> (TestApp, Arc<KeyCache>) {
    ordersum_tests::init_test_log();
    let mut settings = test_settings();
    tweak(&mut settings);
    let app = Application::build(settings.clone(), pool.clone())
        .await
        .unwrap();
    let keys = app.key_cache();
    let watch = app.job_watch();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let app = TestApp {
        addr,
        pool: pool.clone(),
        settings,
        http: reqwest::Client::new(),
        watch,
        dirs: Arc::new(TestDirs::default()),
        databases: pool.clone().into(),
        topology_env: Vec::new(),
        end_sessions: None,
    };
    (app, keys)
}

/// A key pair that is not (yet) in `api_keys`.
fn unknown_key(public: &str) -> Key {
    Key {
        public: public.to_owned(),
        private: "p".repeat(40),
        company_id: 7,
    }
}

async fn insert_key(app: &TestApp, key: &Key) {
    ordersum_model::store::keys::insert_api_key(
        &app.pool,
        &key.public,
        &key.private,
        key.company_id,
    )
    .await
    .unwrap();
}

// --- the API-key cache -------------------------------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_key_created_right_after_a_call_with_it_failed_works_at_once(pool: PgPool) {
    let (app, _) = spawn(pool, |_| {}).await;
    let key = unknown_key("test-created-late");
    let refused = app.call(&key, &LIST).await;
    assert_eq!(ret_code(&refused), 172, "{refused}");

    insert_key(&app, &key).await;
    let accepted = app.call(&key, &LIST).await;
    assert_eq!(ret_code(&accepted), 0, "{accepted}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_disabled_key_is_refused_within_a_couple_of_seconds(pool: PgPool) {
    let (app, _) = spawn(pool, |_| {}).await;
    let key = app.create_key(7).await;
    assert_eq!(ret_code(&app.call(&key, &LIST).await), 0);

    sqlx::query("UPDATE api_keys SET disabled = true WHERE public_key = $1")
        .bind(&key.public)
        .execute(&app.pool)
        .await
        .unwrap();
    let disabled_at = Instant::now();
    let mut last = Value::Null;
    while disabled_at.elapsed() < Duration::from_secs(5) {
        last = app.call(&key, &LIST).await;
        if ret_code(&last) == 172 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ret_code(&last), 172, "{last}");
    // The cache keeps a key 2 s; the rest is slack for a loaded machine.
    assert!(
        disabled_at.elapsed() <= Duration::from_secs(4),
        "the disabled key still worked for {:?}",
        disabled_at.elapsed()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_over_long_public_key_is_refused_with_172_without_a_lookup_and_not_cached(pool: PgPool) {
    let (app, keys) = spawn(pool, |_| {}).await;
    // Even a key that exists is refused when over 128 bytes: no lookup.
    let long = unknown_key(&"k".repeat(129));
    insert_key(&app, &long).await;
    let answer = app.call(&long, &LIST).await;
    assert_eq!(ret_code(&answer), 172, "{answer}");
    assert_eq!(answer["Message"], "Public key not found");

    let huge = unknown_key(&"h".repeat(200_000));
    let answer = app.call(&huge, &LIST).await;
    assert_eq!(ret_code(&answer), 172, "{answer}");
    assert_eq!(keys.entry_count().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn many_unknown_keys_do_not_evict_a_cached_real_key(pool: PgPool) {
    let (app, keys) = spawn(pool, |s| {
        s.key_cache_capacity = 4;
        s.key_cache_secs = 60;
    })
    .await;
    let real = app.create_key(7).await;
    assert_eq!(ret_code(&app.call(&real, &LIST).await), 0);
    assert!(keys.contains(&real.public).await);

    for i in 0..50 {
        let stranger = unknown_key(&format!("test-unknown-{i}"));
        assert_eq!(ret_code(&app.call(&stranger, &LIST).await), 172);
    }
    assert!(
        keys.contains(&real.public).await,
        "the real key was evicted"
    );
    assert_eq!(keys.entry_count().await, 1, "unknown keys were cached");
}

// --- slow clients and floods -------------------------------------------------

/// Reads until the peer closes (Ok(bytes read)) or `within` passes (Err).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, ()> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_connection_trickling_its_header_is_closed_after_the_header_timeout(pool: PgPool) {
    let (app, _) = spawn(pool, |s| s.header_read_timeout_ms = 1000).await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let opened = Instant::now();
    // Keep the connection busy with a header line every 200 ms, forever
    // (time is what is tested: a client that trickles).
    let trickle = tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let line = format!("X-Slow-{i}: x\r\n");
            if writer.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the server kept the trickling connection open"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "closed only after {:?}",
        opened.elapsed()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_body_that_stalls_is_cut_off(pool: PgPool) {
    let (app, _) = spawn(pool, |s| s.body_read_timeout_ms = 1000).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\nAction=ListOrderSummaryJobs",
        )
        .await
        .unwrap();
    let sent = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server kept waiting for the body");
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "{:?}",
        sent.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""RetCode":230"#), "{answer}");
}

/// Sends `GET /healthz` and reads its whole answer, leaving the connection open.
async fn get_healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    read_answer(stream).await
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|l| l.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer was complete");
        received.extend_from_slice(&buf[..n]);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn over_the_connection_cap_a_new_connection_waits_until_one_closes(pool: PgPool) {
    let (app, _) = spawn(pool, |s| {
        s.max_connections = 2;
        s.header_read_timeout_ms = 30_000;
    })
    .await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    assert!(get_healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(get_healthz(&mut second).await.starts_with("HTTP/1.1 200"));

    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.peek(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served over the cap of 2"
    );

    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut third))
        .await
        .expect("the waiting connection was not served once one closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(get_healthz(&mut second).await.starts_with("HTTP/1.1 200"));
}

/// An unsigned call (refused 170 after the address limit): status, header
/// `Retry-After` and the body.
async fn unsigned_call(app: &TestApp) -> (u16, Option<String>, Value) {
    let response = app.http.get(app.url()).query(&LIST).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

/// Calls `call` until it answers other than 154, within `within`.
async fn until_not_limited<F: AsyncFnMut() -> Value>(within: Duration, mut call: F) -> Value {
    let started = Instant::now();
    loop {
        let answer = call().await;
        if ret_code(&answer) != 154 || started.elapsed() > within {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_burst_over_the_address_limit_gets_154_in_the_envelope_then_recovers(pool: PgPool) {
    let (app, _) = spawn(pool, |s| {
        s.rate_limit_per_ip = 1;
        s.rate_limit_per_ip_burst = 3;
    })
    .await;
    // Ten calls in a row: at 1 a second after a burst of 3, several are
    // limited unless the ten take more than 5 s.
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(unsigned_call(&app).await);
    }
    let limited: Vec<_> = answers
        .iter()
        .filter(|(_, _, body)| ret_code(body) == 154)
        .collect();
    assert!(limited.len() >= 2, "{answers:?}");
    for (status, retry_after, body) in &limited {
        assert_eq!(*status, 200);
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
        assert_eq!(
            body["Message"],
            "Request rate limit exceeded, retry after 1 s"
        );
        assert_eq!(body["Action"], "Response");
    }
    assert!(
        answers
            .iter()
            .all(|(_, _, b)| [154, 170].contains(&ret_code(b)))
    );

    let later =
        until_not_limited(Duration::from_secs(3), async || unsigned_call(&app).await.2).await;
    assert_eq!(ret_code(&later), 170, "{later}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_key_limit_holds_one_key_back_and_not_another_of_the_same_address(pool: PgPool) {
    let (app, _) = spawn(pool, |s| {
        s.rate_limit_per_ip = 0;
        s.rate_limit_per_key = 1;
        s.rate_limit_per_key_burst = 2;
    })
    .await;
    let busy = app.create_key(7).await;
    let other = app.create_key(8).await;
    // A stranger's calls with `other`'s public key and bad signatures do
    // not spend its quota.
    let forged = Key {
        private: "0".repeat(40),
        ..other.clone()
    };
    for _ in 0..5 {
        assert_eq!(ret_code(&app.call(&forged, &LIST).await), 171);
    }

    let mut codes = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = app
            .http
            .post(app.url())
            .form(&signed(&busy, &LIST))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        codes.push(ret_code(&body));
        if ret_code(&body) == 154 {
            limited = Some((retry_after, body));
        }
    }
    let (retry_after, body) = limited.unwrap_or_else(|| panic!("never limited: {codes:?}"));
    assert_eq!(retry_after.unwrap(), "1");
    assert_eq!(body["Action"], "ListOrderSummaryJobsResponse");
    assert_eq!(
        body["Message"],
        "Request rate limit exceeded, retry after 1 s"
    );

    assert_eq!(ret_code(&app.call(&other, &LIST).await), 0);
    let later = until_not_limited(Duration::from_secs(3), async || {
        app.call(&busy, &LIST).await
    })
    .await;
    assert_eq!(ret_code(&later), 0, "{later}");
}

// --- no secrets in logs -------------------------------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn no_signature_or_private_key_reaches_the_log_even_at_trace(pool: PgPool) {
    let (app, _) = spawn(pool, |_| {}).await;
    let key = app.create_key(7).await;
    let mut api = ApiProcess::start(&app, "trace", &[("RUST_LOG", "trace")]).await;
    let url = format!("http://{}/", api.addr);
    let mut signatures = Vec::new();

    // A signed GET (the signature in the query string).
    let get = signed(&key, &LIST);
    signatures.push(get.last().unwrap().1.clone());
    let response = app.http.get(&url).query(&get).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(ret_code(&body), 0, "{body}");

    // A signed POST.
    let post = signed(
        &key,
        &[
            ("Action", "DownloadOrderSummary"),
            ("StartTime", "1719792000"),
            ("EndTime", "1722470400"),
        ],
    );
    signatures.push(post.last().unwrap().1.clone());
    let body: Value = app
        .http
        .post(&url)
        .form(&post)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ret_code(&body), 0, "{body}");

    // A wrong signature, in the query.
    let mut wrong = signed(&key, &LIST);
    wrong.last_mut().unwrap().1 = "0123456789abcdef0123456789abcdef01234567".into();
    signatures.push(wrong.last().unwrap().1.clone());
    let body: Value = app
        .http
        .get(&url)
        .query(&wrong)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ret_code(&body), 171, "{body}");

    // A download link with a (bad) signature.
    let link_signature = "f".repeat(64);
    let status = app
        .http
        .get(format!(
            "{url}files/x.xlsx?Expires=1&Signature={link_signature}"
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    signatures.push(link_signature);

    api.terminate(Duration::from_secs(10)).await;
    let log = api.log_text();
    assert!(log.contains("ordersum-api listening"), "no log captured");
    assert!(log.lines().count() > 10, "trace logging was not on: {log}");
    assert!(!log.contains("Signature="), "the log has `Signature=`");
    for signature in &signatures {
        assert!(
            !log.contains(signature.as_str()),
            "the log has the signature {signature}"
        );
    }
    assert!(!log.contains(&key.private), "the log has the private key");
}

// --- replays -------------------------------------------------------------------

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn required_timestamps(pool: PgPool) -> TestApp {
    spawn(pool, |s| {
        s.require_timestamp = true;
        s.timestamp_window_secs = 300;
    })
    .await
    .0
}

#[sqlx::test(migrations = "../migrations")]
async fn with_timestamps_required_a_call_without_one_is_220_and_one_outside_the_window_230(
    pool: PgPool,
) {
    let app = required_timestamps(pool).await;
    let key = app.create_key(7).await;

    let missing = app.call(&key, &LIST).await;
    assert_eq!(ret_code(&missing), 220, "{missing}");
    assert_eq!(missing["Message"], "Missing params [Timestamp]");

    for stale_or_future in [now_secs() - 301, now_secs() + 301] {
        let ts = stale_or_future.to_string();
        let answer = app.call(&key, &[LIST[0], ("Timestamp", &ts)]).await;
        assert_eq!(ret_code(&answer), 230, "{ts}: {answer}");
        assert_eq!(answer["Message"], "Params [Timestamp] not available");
    }
    let garbage = app.call(&key, &[LIST[0], ("Timestamp", "soon")]).await;
    assert_eq!(ret_code(&garbage), 230, "{garbage}");
}

#[sqlx::test(migrations = "../migrations")]
async fn with_timestamps_required_a_fresh_call_works_once_and_its_replay_is_refused(pool: PgPool) {
    let app = required_timestamps(pool).await;
    let key = app.create_key(7).await;
    let ts = now_secs().to_string();
    let pairs = signed(&key, &[LIST[0], ("Timestamp", &ts)]);

    let (status, first) = app.post_form_raw(&pairs).await;
    assert_eq!((status, ret_code(&first)), (200, 0), "{first}");

    let (status, replay) = app.post_form_raw(&pairs).await;
    assert_eq!((status, ret_code(&replay)), (200, 171), "{replay}");
    assert_eq!(
        replay["Message"],
        "Signature VerifyAC Error: request replayed"
    );

    // The same signature in capitals verifies too, and is the same use.
    let mut shouted = pairs.clone();
    let signature = &mut shouted.last_mut().unwrap().1;
    *signature = signature.to_uppercase();
    let (_, replay) = app.post_form_raw(&shouted).await;
    assert_eq!(ret_code(&replay), 171, "{replay}");

    // A GET carrying the same signed params is the same call.
    let response = app.http.get(app.url()).query(&pairs).send().await.unwrap();
    let replay: Value = response.json().await.unwrap();
    assert_eq!(ret_code(&replay), 171, "{replay}");

    // Another call (another signature) still works.
    let next = app
        .call(&key, &[LIST[0], ("Timestamp", &ts), ("Limit", "5")])
        .await;
    assert_eq!(ret_code(&next), 0, "{next}");
}

#[sqlx::test(migrations = "../migrations")]
async fn without_required_timestamps_sdk_calls_without_one_work_and_repeat(pool: PgPool) {
    let (app, _) = spawn(pool, |_| {}).await;
    assert!(!app.settings.require_timestamp, "the default is off");
    let key = app.create_key(7).await;
    let pairs = signed(&key, &LIST);
    for _ in 0..2 {
        let (status, answer) = app.post_form_raw(&pairs).await;
        assert_eq!((status, ret_code(&answer)), (200, 0), "{answer}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn with_timestamps_required_and_redis_down_a_call_answers_2001(pool: PgPool) {
    let (app, _) = spawn(pool, |s| {
        s.require_timestamp = true;
        s.backends.redis_url =
            format!("redis://127.0.0.1:{}", ordersum_tests::procs::free_port()).into();
        s.dependency_timeout_ms = 500;
    })
    .await;
    let key = app.create_key(7).await;
    let ts = now_secs().to_string();
    let answer = app.call(&key, &[LIST[0], ("Timestamp", &ts)]).await;
    assert_eq!(ret_code(&answer), 2001, "{answer}");
}
