//! The webhook Actions' refusals: where a webhook may not point (checked
//! without sending a packet), the per-company cap, bad parameters, and
//! another company's endpoint answering like one that does not exist.

#![allow(clippy::unwrap_used)]

use ordersum_tests::oracle::COMPANY;
use ordersum_tests::{Key, TestApp, ret_code, spawn_app_with, test_settings};
use serde_json::Value;
use sqlx::PgPool;

async fn create(app: &TestApp, key: &Key, url: &str) -> Value {
    app.call(
        key,
        &[("Action", "CreateOrderSummaryWebhook"), ("URL", url)],
    )
    .await
}

/// Each refused form of URL, with what the message must name. The default
/// policy: https only, no private network allowed.
const REFUSED: &[(&str, &str)] = &[
    ("http://example.com/hook", "scheme must be https"),
    ("https://127.0.0.1/hook", "127.0.0.1 is loopback"),
    ("https://0177.0.0.1/hook", "127.0.0.1 is loopback"),
    ("https://2130706433/hook", "127.0.0.1 is loopback"),
    ("https://0x7f000001/hook", "127.0.0.1 is loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "127.0.0.1 is loopback"),
    ("https://[::1]/hook", "::1 is loopback"),
    ("https://localhost/hook", "is loopback"),
    ("https://localhost./hook", "is loopback"),
    ("https://hooks.localhost/hook", "is loopback"),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        "private-use name",
    ),
    ("https://0.0.0.0/hook", "0.0.0.0 is \"this network\""),
    ("https://10.0.0.8/hook", "private (RFC 1918)"),
    ("https://172.16.5.4/hook", "private (RFC 1918)"),
    ("https://192.168.1.1/hook", "private (RFC 1918)"),
    ("https://100.64.0.1/hook", "CGNAT"),
    (
        "https://169.254.169.254/latest/meta-data",
        "link-local (cloud metadata)",
    ),
    (
        "https://[::ffff:169.254.169.254]/",
        "link-local (cloud metadata)",
    ),
    ("https://[fd12:3456::1]/hook", "unique local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://224.0.0.251/hook", "multicast"),
    ("https://[ff02::1]/hook", "multicast"),
    (
        "https://93.184.215.14:8443/hook",
        "port 8443 is not allowed",
    ),
    ("https://user:pw@example.com/hook", "user name or password"),
    (
        "https://example.com@127.0.0.1/hook",
        "user name or password",
    ),
    ("https://example.com/hook#frag", "fragment"),
    ("file:///etc/passwd", "scheme must be https"),
    ("not a url", "not a valid absolute URL"),
];

#[sqlx::test(migrations = "../migrations")]
async fn creation_refuses_every_address_form_the_policy_refuses(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let key = app.create_key(COMPANY).await;
    for (url, why) in REFUSED {
        let answer = create(&app, &key, url).await;
        assert_eq!(ret_code(&answer), 230, "{url}: {answer}");
        let message = answer["Message"].as_str().unwrap();
        assert!(
            message.starts_with("Params [URL] not available: "),
            "{url}: {message}"
        );
        assert!(message.contains(why), "{url}: {message} (expected {why:?})");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing refused was stored");
    // A public address on 443 is accepted (nothing is sent at creation).
    let answer = create(&app, &key, "https://93.184.215.14/hook").await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_company_has_at_most_five_and_parameters_are_checked(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let key = app.create_key(COMPANY).await;
    let missing = app
        .call(&key, &[("Action", "CreateOrderSummaryWebhook")])
        .await;
    assert_eq!(ret_code(&missing), 220, "{missing}");
    let unknown = app
        .call(
            &key,
            &[
                ("Action", "CreateOrderSummaryWebhook"),
                ("URL", "https://93.184.215.14/"),
                ("Events.0", "order_summary.exploded"),
            ],
        )
        .await;
    assert_eq!(ret_code(&unknown), 230, "{unknown}");
    assert!(
        unknown["Message"]
            .as_str()
            .unwrap()
            .contains("order_summary.exploded")
    );
    let some = app
        .call(
            &key,
            &[
                ("Action", "CreateOrderSummaryWebhook"),
                ("URL", "https://93.184.215.14/a"),
                ("Events.0", "order_summary.failed"),
                ("Events.1", "order_summary.failed"),
            ],
        )
        .await;
    assert_eq!(
        some["Events"],
        serde_json::json!(["order_summary.failed"]),
        "{some}"
    );
    for i in 1..5 {
        let answer = create(&app, &key, &format!("https://93.184.215.14/{i}")).await;
        assert_eq!(ret_code(&answer), 0, "{answer}");
    }
    let sixth = create(&app, &key, "https://93.184.215.14/6").await;
    assert_eq!(ret_code(&sixth), 153, "{sixth}");
    assert!(
        sixth["Message"].as_str().unwrap().contains("at most 5"),
        "{sixth}"
    );
    let list = app
        .call(&key, &[("Action", "ListOrderSummaryWebhooks")])
        .await;
    assert_eq!(list["Webhooks"].as_array().unwrap().len(), 5);
    // Deleting one makes room.
    let id = list["Webhooks"][0]["WebhookId"].as_str().unwrap();
    let deleted = app
        .call(
            &key,
            &[("Action", "DeleteOrderSummaryWebhook"), ("WebhookId", id)],
        )
        .await;
    assert_eq!(ret_code(&deleted), 0, "{deleted}");
    assert_eq!(
        ret_code(&create(&app, &key, "https://93.184.215.14/6").await),
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn another_companys_webhook_answers_like_one_that_does_not_exist(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let ours = app.create_key(COMPANY).await;
    let theirs = app.create_key(COMPANY + 1).await;
    let created = create(&app, &theirs, "https://93.184.215.14/theirs").await;
    let their_id = created["WebhookId"].as_str().unwrap();
    let nobody = uuid::Uuid::now_v7().to_string();
    for action in [
        "DeleteOrderSummaryWebhook",
        "RotateOrderSummaryWebhookSecret",
        "ListOrderSummaryWebhookDeliveries",
    ] {
        let foreign = app
            .call(&ours, &[("Action", action), ("WebhookId", their_id)])
            .await;
        let missing = app
            .call(&ours, &[("Action", action), ("WebhookId", &nobody)])
            .await;
        assert_eq!(ret_code(&foreign), 230, "{action}: {foreign}");
        assert_eq!(foreign["Message"], missing["Message"], "{action}");
    }
    let foreign = app
        .call(
            &ours,
            &[
                ("Action", "RedeliverOrderSummaryWebhook"),
                ("WebhookId", their_id),
                ("EventId", "evt_x"),
            ],
        )
        .await;
    assert_eq!(ret_code(&foreign), 230, "{foreign}");
    assert_eq!(foreign["Message"], "Params [WebhookId] not available");
    let list = app
        .call(&ours, &[("Action", "ListOrderSummaryWebhooks")])
        .await;
    assert_eq!(list["Webhooks"], serde_json::json!([]));
    // Theirs is untouched.
    let list = app
        .call(&theirs, &[("Action", "ListOrderSummaryWebhooks")])
        .await;
    assert_eq!(list["Webhooks"].as_array().unwrap().len(), 1);
}
