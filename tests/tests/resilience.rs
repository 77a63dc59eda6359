//! No input makes the API answer a 5xx or panic, and when Postgres or Redis
//! is down calls answer a retryable 2000+ RetCode, `/readyz` says not ready,
//! and no job is half-written.

#![allow(clippy::unwrap_used)]

use ordersum_tests::{TestApp, ret_code, spawn_app, spawn_app_with, test_settings};
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A local port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

const JULY: [(&str, &str); 3] = [
    ("Action", "DownloadOrderSummary"),
    ("StartTime", "1719792000"),
    ("EndTime", "1722470400"),
];

#[sqlx::test(migrations = "../migrations")]
async fn with_redis_down_enqueue_answers_2000_plus_and_writes_no_job(pool: PgPool) {
    let mut settings = test_settings();
    settings.backends.redis_url = format!("redis://127.0.0.1:{}", closed_port().await).into();
    settings.dependency_timeout_ms = 500;
    let app = spawn_app_with(pool, settings).await;
    let key = app.create_key(5).await;
    let body = app.call(&key, &JULY).await;
    assert!(ret_code(&body) >= 2000, "{body}");
    assert_eq!(
        body["Message"],
        "Service temporarily unavailable, please retry later"
    );
    assert_eq!(app.job_rows(5).await, 0);
    let (status, text) = app.get_path("/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains(r#""Redis":"unavailable""#), "{text}");
    assert_eq!(app.get_path("/healthz").await.0, 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn with_postgres_down_calls_answer_2000_plus_and_not_ready(pool: PgPool) {
    // The key exists in the real database; the app's pool points at a dead port.
    let probe = spawn_app(pool.clone()).await;
    let key = probe.create_key(5).await;
    let dead = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy(&format!(
            "postgres://postgres@127.0.0.1:{}/x",
            closed_port().await
        ))
        .unwrap();
    let mut settings = test_settings();
    settings.dependency_timeout_ms = 500;
    let app = spawn_app_with(dead, settings).await;
    let app = TestApp { pool, ..app };
    for params in [JULY.to_vec(), vec![("Action", "ListOrderSummaryJobs")]] {
        let body = app.call(&key, &params).await;
        assert!(ret_code(&body) >= 2000, "{body}");
        assert!(
            !body["Message"].as_str().unwrap().contains("127.0.0.1"),
            "{body}"
        );
    }
    let (status, text) = app.get_path("/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains(r#""Postgres":"unavailable""#), "{text}");
}

#[sqlx::test(migrations = "../migrations")]
async fn garbage_never_gets_a_5xx(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(5).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let content_types = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "application/json; charset=utf-8",
    ];
    for i in 0..300 {
        let len = rng.random_range(0..200);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 3 == 0 {
            // Mostly well-formed forms with odd values.
            body = format!(
                "Action=DownloadOrderSummary&PublicKey={}&Signature={}&StartTime={}&EndTime=%FF%FE&ResourceIds.{}=x",
                key.public,
                "a".repeat(i % 50),
                rng.random::<i64>(),
                rng.random::<u32>()
            )
            .into_bytes();
        }
        let (status, text) = app
            .post_raw(content_types[i % content_types.len()], body)
            .await;
        assert_eq!(status, 200, "{text}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            ret_code(&answer) > 0 && ret_code(&answer) < 2000,
            "{answer}"
        );
    }
    // A huge Action, odd query strings and odd methods.
    let (status, text) = app
        .get_path(&format!("/?Action={}", "A".repeat(50_000)))
        .await;
    assert_eq!(status, 200);
    assert!(text.len() < 1000, "the unknown Action is echoed bounded");
    for path in [
        "/?%",
        "/?Action=%ZZ",
        "/api?Action&Action=",
        "/?Action=GetOrderSummaryJob&JobId=1&JobId=2",
    ] {
        let (status, text) = app.get_path(path).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    let big = vec![b'a'; 3 * 1024 * 1024];
    let (status, _) = app.post_raw("application/x-www-form-urlencoded", big).await;
    assert!(status < 500, "oversized body answered {status}");
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_count_calls_by_action_and_retcode(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(5).await;
    assert_eq!(ret_code(&app.call(&key, &JULY).await), 0);
    assert_eq!(
        ret_code(&app.call(&key, &[("Action", "DownloadOrderSummary")]).await),
        220
    );
    let (status, text) = app.get_path("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"ordersum_api_requests_total{action="DownloadOrderSummary",ret_code="0"}"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"ordersum_api_requests_total{action="DownloadOrderSummary",ret_code="220"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains("ordersum_api_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("ordersum_jobs_enqueued_total"), "{text}");
    let (status, text) = app.get_path("/readyz").await;
    assert_eq!(status, 200, "{text}");
}
