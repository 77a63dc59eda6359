//! Completion webhooks end to end: the API, a worker and a receiver on
//! 127.0.0.1 (allowed through ORDERSUM_WEBHOOK_ALLOWED_NETWORKS), real
//! Postgres and Redis. Every delivery is verified with the Standard
//! Webhooks library, as a customer's receiver would.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use ordersum_tests::oracle::{COMPANY, run_window_summary, submit_window_summary};
use ordersum_tests::receiver::{
    Receiver, Reply, first_webhook_when, loopback_api_settings, loopback_worker, verify,
};
use ordersum_tests::{Key, TestApp, ret_code, seed, spawn_app_with, spawn_worker};
use serde_json::Value;
use sqlx::PgPool;
use standardwebhooks::Webhook;

const WAIT: Duration = Duration::from_secs(20);

fn window() -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400, now + 86_400)
}

async fn create(app: &TestApp, key: &Key, url: &str, extra: &[(&str, &str)]) -> Value {
    let mut params = vec![("Action", "CreateOrderSummaryWebhook"), ("URL", url)];
    params.extend_from_slice(extra);
    app.call(key, &params).await
}

/// A summary of a window an hour wider than [`window`]'s (a new job, not
/// the first one again), run to its end.
async fn run_another_summary(app: &TestApp, key: &Key) -> Value {
    let (start, end) = (window().0 - 3600, window().1);
    ordersum_tests::oracle::run_summary(
        app,
        key,
        &[
            ("StartTime", &start.to_string()),
            ("EndTime", &end.to_string()),
        ],
    )
    .await
}

async fn deliveries(app: &TestApp, key: &Key, webhook_id: &str) -> Value {
    let answer = app
        .call(
            key,
            &[
                ("Action", "ListOrderSummaryWebhookDeliveries"),
                ("WebhookId", webhook_id),
                ("Limit", "100"),
            ],
        )
        .await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    answer
}

#[sqlx::test(migrations = "../migrations")]
async fn a_receiver_gets_one_signed_post_per_job_end(pool: PgPool) {
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    seed(&app.pool, COMPANY, 2_000, 30, 7).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    let created = create(&app, &key, &receiver.url(), &[("Description", "finance")]).await;
    assert_eq!(ret_code(&created), 0, "{created}");
    let secret = created["Secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created["Events"].as_array().unwrap().len(),
        4,
        "all events by default"
    );
    let _worker = loopback_worker(&app).await;

    let job = run_window_summary(&app, &key, window()).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let got = receiver.wait_for(1, WAIT).await;
    let hook = &got[0];
    verify(secret, hook);
    assert_eq!(hook.header("content-type"), "application/json");
    assert!(
        hook.header("user-agent").starts_with("ordersum"),
        "{}",
        hook.header("user-agent")
    );
    assert!(hook.header("webhook-id").starts_with("evt_"));
    let body = hook.json();
    assert_eq!(body["type"], "order_summary.succeeded");
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    let data = &body["data"];
    assert_eq!(data["JobId"], job["JobId"]);
    assert_eq!(data["Status"], "Succeeded");
    assert_eq!(data["FileName"], job["Data"]["FileName"]);
    assert_eq!(data["FileSize"], job["Data"]["FileSize"]);
    assert_eq!(data["PaidRows"], job["Progress"]["PaidRows"]);
    assert_eq!(data["UnpaidRows"], job["Progress"]["UnpaidRows"]);
    assert!(
        !String::from_utf8_lossy(&hook.body).contains("http"),
        "no link in the body: {body}"
    );

    // A cancelled job is an end too; the two events differ.
    let (start, end) = (window().0 - 86_400, window().1);
    let id = submit_window_summary(&app, &key, (start, end)).await;
    app.call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    let got = receiver.wait_for(2, WAIT).await;
    let ends: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    if ends[1] == "order_summary.cancelled" {
        verify(secret, &got[1]);
        assert_eq!(got[1].json()["data"]["JobId"], id.as_str());
        assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    } else {
        // The worker finished it before the cancel landed.
        assert_eq!(ends[1], "order_summary.succeeded", "{ends:?}");
    }

    // The sweeper expiring a summary sends one more.
    let job_id = job["JobId"].as_str().unwrap();
    sqlx::query(
        "UPDATE summary_jobs SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(job_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let ctx = ordersum_tests::idle_worker_context(&app, |_| {}).await;
    ordersum_tests::sweep(&ctx).await;
    let got = receiver.wait_for(3, WAIT).await;
    let expired = got
        .iter()
        .find(|r| r.json()["type"] == "order_summary.expired")
        .unwrap();
    verify(secret, expired);
    assert_eq!(expired.json()["data"]["JobId"], job_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3, "one POST per end, no more");

    let list = app
        .call(&key, &[("Action", "ListOrderSummaryWebhooks")])
        .await;
    let listed = &list["Webhooks"][0];
    assert_eq!(listed["LastDeliveryStatus"], "200", "{list}");
    assert_eq!(listed["Description"], "finance");
    assert_eq!(listed["Disabled"], false);
    assert!(
        listed.get("Secret").is_none(),
        "no secret in the list: {list}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn failures_are_retried_with_the_same_id_and_logged(pool: PgPool) {
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    seed(&app.pool, COMPANY, 100, 30, 8).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    receiver.script(&[Reply::Status(500), Reply::Status(500)]);
    let created = create(
        &app,
        &key,
        &receiver.url(),
        &[("Events.0", "order_summary.succeeded")],
    )
    .await;
    let webhook_id = created["WebhookId"].as_str().unwrap();
    let _worker = loopback_worker(&app).await;
    run_window_summary(&app, &key, window()).await;

    let got = receiver.wait_for(3, WAIT).await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for hook in &got {
        verify(created["Secret"].as_str().unwrap(), hook);
    }
    // The log, newest first: 200 after two 500s, each failure with a next try.
    let mut log = deliveries(&app, &key, webhook_id).await;
    for _ in 0..50 {
        if log["TotalCount"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = deliveries(&app, &key, webhook_id).await;
    }
    let attempts = log["Deliveries"].as_array().unwrap();
    let statuses: Vec<i64> = attempts
        .iter()
        .map(|a| a["HttpStatus"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 500, 500], "{log}");
    assert!(attempts[0].get("NextTry").is_none());
    assert!(attempts[1]["NextTry"].as_i64().unwrap() >= attempts[1]["Time"].as_i64().unwrap());
    assert!(
        attempts
            .iter()
            .all(|a| a["EventId"] == ids[0] && a["EventType"] == "order_summary.succeeded")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn gone_disables_the_endpoint_and_redeliver_enables_it(pool: PgPool) {
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    seed(&app.pool, COMPANY, 100, 30, 9).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    receiver.script(&[Reply::Status(410)]);
    let created = create(&app, &key, &receiver.url(), &[]).await;
    let webhook_id = created["WebhookId"].as_str().unwrap();
    let _worker = loopback_worker(&app).await;
    run_window_summary(&app, &key, window()).await;
    let got = receiver.wait_for(1, WAIT).await;
    let event_id = got[0].header("webhook-id").to_owned();

    let listed = first_webhook_when(&app, &key, |w| w["Disabled"] == true).await;
    assert_eq!(listed["Disabled"], true, "{listed}");
    assert_eq!(listed["LastDeliveryStatus"], "410");
    assert!(listed["DisabledReason"].as_str().unwrap().contains("410"));
    // A disabled endpoint is not called for later ends.
    run_another_summary(&app, &key).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 1);

    // The customer fixed it and asks again: enabled, delivered once more.
    let answer = app
        .call(
            &key,
            &[
                ("Action", "RedeliverOrderSummaryWebhook"),
                ("WebhookId", webhook_id),
                ("EventId", &event_id),
            ],
        )
        .await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), event_id);
    let listed = app
        .call(&key, &[("Action", "ListOrderSummaryWebhooks")])
        .await;
    assert_eq!(listed["Webhooks"][0]["Disabled"], false, "{listed}");
}

#[sqlx::test(migrations = "../migrations")]
async fn during_a_rotation_either_secret_verifies(pool: PgPool) {
    let mut settings = loopback_api_settings();
    settings.key_encryption = ordersum_runtime::KeyEncryptionSettings::from_spec(
        "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 100, 30, 10).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    let created = create(&app, &key, &receiver.url(), &[]).await;
    let old = created["Secret"].as_str().unwrap().to_owned();
    let webhook_id = created["WebhookId"].as_str().unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1::uuid")
            .bind(webhook_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!stored.contains(&old[6..]), "the secret is sealed at rest");
    let rotated = app
        .call(
            &key,
            &[
                ("Action", "RotateOrderSummaryWebhookSecret"),
                ("WebhookId", webhook_id),
            ],
        )
        .await;
    assert_eq!(ret_code(&rotated), 0, "{rotated}");
    let new = rotated["Secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    let _worker = loopback_worker(&app).await;
    run_window_summary(&app, &key, window()).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(&old, &got[0]);
    verify(&new, &got[0]);
    // After the overlap only the new secret signs.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = now() WHERE id = $1::uuid")
        .bind(webhook_id)
        .execute(&app.pool)
        .await
        .unwrap();
    run_another_summary(&app, &key).await;
    let got = receiver.wait_for(2, WAIT).await;
    verify(&new, &got[1]);
    assert!(
        Webhook::new(&old)
            .unwrap()
            .verify(&got[1].body, &got[1].headers)
            .is_err()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_name_resolving_to_a_refused_address_fails_the_delivery_not_the_worker(pool: PgPool) {
    // The API allows loopback (so the endpoint is created); the worker does
    // not: what `localhost` resolves to at delivery time is refused.
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    seed(&app.pool, COMPANY, 100, 30, 11).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let created = create(&app, &key, &url, &[]).await;
    assert_eq!(ret_code(&created), 0, "{created}");
    let webhook_id = created["WebhookId"].as_str().unwrap();
    let _worker = spawn_worker(&app, |s| {
        s.webhooks.policy.webhook_allow_http = true;
        s.webhooks.webhook_retry_scale = 0.001;
        s.webhooks.webhook_poll_ms = 50;
    })
    .await;
    run_window_summary(&app, &key, window()).await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = deliveries(&app, &key, webhook_id).await;
        if log["TotalCount"].as_i64().unwrap() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = log["Deliveries"][0]["Error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with("refused: address "), "{log}");
    assert!(error.contains("loopback"), "{error}");
    assert!(log["Deliveries"][0].get("HttpStatus").is_none());
    assert!(
        receiver.received().is_empty(),
        "no packet reached the receiver"
    );
    // The worker goes on working.
    let job = run_another_summary(&app, &key).await;
    assert_eq!(job["Status"], "Succeeded");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_end_that_rolls_back_leaves_no_event(pool: PgPool) {
    let app = spawn_app_with(pool, loopback_api_settings()).await;
    let key = app.create_key(COMPANY).await;
    let receiver = Receiver::start().await;
    create(&app, &key, &receiver.url(), &[]).await;
    let id = submit_window_summary(&app, &key, window()).await;
    let events = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE job_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query(
        "UPDATE summary_jobs SET status = 'cancelled', finished_at = now() WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(events().await, 0, "a rolled-back end has no event");
    let cancelled = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(cancelled["Status"], "Cancelled");
    assert_eq!(events().await, 1, "the committed end has exactly one");
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id \
         WHERE v.job_id = $1::uuid AND d.state = 'pending'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(queued, 1, "and one delivery waiting for a worker");
}
