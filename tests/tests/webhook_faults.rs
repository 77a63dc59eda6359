//! Webhook deliveries when things go wrong: a worker SIGKILLed mid-delivery
//! (real `ordersum-worker` processes), a receiver asking to wait
//! (`Retry-After`), a redirect (never followed), and an endpoint failing
//! for five days in a row (disabled, and the customer sees why).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use ordersum_tests::oracle::{COMPANY, run_window_summary};
use ordersum_tests::procs::WorkerProcess;
use ordersum_tests::receiver::{
    Receiver, Reply, first_webhook_when, loopback_api_settings, loopback_worker, verify,
};
use ordersum_tests::{Key, TestApp, ret_code, seed, spawn_app_with};
use serde_json::Value;
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(20);

fn window() -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400, now + 86_400)
}

async fn app_with_receiver(pool: PgPool, rng_seed: u64) -> (TestApp, Key, Receiver, Value) {
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    seed(&app.pool, COMPANY, 100, 30, rng_seed).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    let created = app
        .call(
            &key,
            &[
                ("Action", "CreateOrderSummaryWebhook"),
                ("URL", &receiver.url()),
            ],
        )
        .await;
    assert_eq!(ret_code(&created), 0, "{created}");
    (app, key, receiver, created)
}

const WORKER_ENV: [(&str, &str); 5] = [
    ("ORDERSUM_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
    ("ORDERSUM_WEBHOOK_ALLOW_HTTP", "true"),
    ("ORDERSUM_WEBHOOK_RETRY_SCALE", "0.001"),
    ("ORDERSUM_WEBHOOK_LEASE_SECONDS", "16"),
    ("ORDERSUM_WEBHOOK_POLL_MS", "100"),
];

async fn delivery_state(app: &TestApp) -> (String, Option<String>) {
    sqlx::query_as("SELECT state, leased_by FROM webhook_deliveries")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_killed_mid_delivery_loses_no_event(pool: PgPool) {
    let (app, key, receiver, created) = app_with_receiver(pool, 21).await;
    // The first POST is held open: the worker is in the middle of it.
    receiver.script(&[Reply::Hang]);
    let mut first = WorkerProcess::start(&app, "first", &WORKER_ENV).await;
    run_window_summary(&app, &key, window()).await;
    let got = receiver.wait_for(1, WAIT).await;
    let event_id = got[0].header("webhook-id").to_owned();
    first.kill().await;
    let (state, leased_by) = delivery_state(&app).await;
    assert_eq!(state, "pending", "the event is still owed");
    assert_eq!(leased_by.as_deref(), Some(first.id.as_str()));

    // Another worker takes it once the dead one's lease runs out.
    let killed_at = Instant::now();
    let _second = WorkerProcess::start(&app, "second", &WORKER_ENV).await;
    let got = receiver.wait_for(2, Duration::from_secs(40)).await;
    assert!(
        killed_at.elapsed() >= Duration::from_secs(10),
        "not before the lease ran out"
    );
    assert_eq!(
        got[1].header("webhook-id"),
        event_id,
        "the same event, the same id"
    );
    verify(created["Secret"].as_str().unwrap(), &got[1]);
    for _ in 0..50 {
        if delivery_state(&app).await.0 == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivery_state(&app).await, ("delivered".to_owned(), None));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn retry_after_is_honoured_and_redirects_are_not_followed(pool: PgPool) {
    let (app, key, receiver, _) = app_with_receiver(pool, 22).await;
    receiver.script(&[Reply::RetryAfter(503, 2), Reply::Status(302)]);
    let _worker = loopback_worker(&app).await;
    run_window_summary(&app, &key, window()).await;
    let got = receiver.wait_for(3, WAIT).await;
    let gap = got[1].at.duration_since(got[0].at).unwrap();
    // The schedule alone (scaled) would try again after 5 ms.
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 waited {gap:?}"
    );
    // 302 is a failure: the third POST came to the same URL, on schedule.
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == got[0].header("webhook-id"))
    );
    assert_eq!(got.len(), 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_endpoint_failing_for_five_days_is_disabled(pool: PgPool) {
    let (app, key, receiver, created) = app_with_receiver(pool, 23).await;
    receiver.script(&[Reply::Status(500); 20]);
    // It has been failing since six days ago.
    sqlx::query("UPDATE webhook_endpoints SET failing_since = now() - interval '6 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let _worker = loopback_worker(&app).await;
    run_window_summary(&app, &key, window()).await;
    receiver.wait_for(1, WAIT).await;
    let listed = first_webhook_when(&app, &key, |w| w["Disabled"] == true).await;
    assert_eq!(listed["Disabled"], true, "{listed}");
    assert_eq!(listed["WebhookId"], created["WebhookId"]);
    assert!(
        listed["DisabledReason"]
            .as_str()
            .unwrap()
            .contains("5 days"),
        "{listed}"
    );
    assert_eq!(listed["LastDeliveryStatus"], "500");
    // Disabled: no more tries.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 1);
}
