//! Every DownloadOrderSummary parameter is checked: a missing one is 220
//! `Missing params [X]`, a malformed one 230 `Params [X] not available`, and
//! a refused request leaves no job behind.

#![allow(clippy::unwrap_used)]

use ordersum_api::Settings;
use ordersum_tests::{TestApp, ret_code, spawn_app_with, test_settings};
use serde_json::json;
use sqlx::PgPool;

const START: &str = "1719792000"; // 2024-07-01
const END: &str = "1722470400"; // 2024-08-01

async fn app(pool: PgPool) -> TestApp {
    let mut settings: Settings = test_settings();
    settings.max_span_days = 31;
    spawn_app_with(pool, settings).await
}

/// Calls DownloadOrderSummary with `params` (Action added) and asserts the
/// RetCode and Message.
async fn expect(app: &TestApp, params: &[(&str, &str)], code: i64, message: &str) {
    let key = app.create_key(11).await;
    let mut all = vec![("Action", "DownloadOrderSummary")];
    all.extend_from_slice(params);
    let body = app.call(&key, &all).await;
    assert_eq!(ret_code(&body), code, "{params:?} → {body}");
    assert_eq!(body["Message"], message, "{params:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_times_are_220(pool: PgPool) {
    let app = app(pool).await;
    expect(&app, &[("EndTime", END)], 220, "Missing params [StartTime]").await;
    expect(
        &app,
        &[("StartTime", START)],
        220,
        "Missing params [EndTime]",
    )
    .await;
    expect(
        &app,
        &[("StartTime", "  "), ("EndTime", END)],
        220,
        "Missing params [StartTime]",
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn times_that_are_not_unix_seconds_are_230(pool: PgPool) {
    let app = app(pool).await;
    for bad in ["abc", "1.5", "-1", "99999999999999999999", "1e9"] {
        expect(
            &app,
            &[("StartTime", bad), ("EndTime", END)],
            230,
            "Params [StartTime] not available",
        )
        .await;
    }
    expect(
        &app,
        &[("StartTime", START), ("StartTime", START), ("EndTime", END)],
        230,
        "Params [StartTime] not available",
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_empty_or_reversed_window_is_230(pool: PgPool) {
    let app = app(pool).await;
    expect(
        &app,
        &[("StartTime", START), ("EndTime", START)],
        230,
        "Params [EndTime] not available",
    )
    .await;
    expect(
        &app,
        &[("StartTime", END), ("EndTime", START)],
        230,
        "Params [EndTime] not available",
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_window_longer_than_the_configured_span_is_230(pool: PgPool) {
    let app = app(pool).await;
    // 31 days is allowed, 31 days and a second is not.
    let end_ok = (1719792000 + 31 * 86400).to_string();
    let end_bad = (1719792000 + 31 * 86400 + 1).to_string();
    let key = app.create_key(11).await;
    let ok = app
        .call(
            &key,
            &[
                ("Action", "DownloadOrderSummary"),
                ("StartTime", START),
                ("EndTime", &end_ok),
            ],
        )
        .await;
    assert_eq!(ret_code(&ok), 0, "{ok}");
    expect(
        &app,
        &[("StartTime", START), ("EndTime", &end_bad)],
        230,
        "Params [EndTime] not available",
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn list_items_of_the_wrong_type_or_enum_are_230(pool: PgPool) {
    let app = app(pool).await;
    let window = [("StartTime", START), ("EndTime", END)];
    for (key, value, name) in [
        ("PricingUnits.0", "per-hour", "PricingUnits"),
        ("OrderTypes.0", "1.5", "OrderTypes"),
        ("ChargeTypes.0", "99999999999", "ChargeTypes"),
        ("OrganizationIds.0", "org-1", "OrganizationIds"),
        ("ProductCodes.0", "uhost", "ProductCodes"),
        ("Regions.0", "", "Regions"),
        ("TimeZone", "Mars/Olympus_Mons", "TimeZone"),
        ("WaitSeconds", "61", "WaitSeconds"),
        ("WaitSeconds", "soon", "WaitSeconds"),
    ] {
        let mut params = window.to_vec();
        params.push((key, value));
        expect(
            &app,
            &params,
            230,
            &format!("Params [{name}] not available"),
        )
        .await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn lists_past_the_item_or_length_caps_are_230(pool: PgPool) {
    let app = app(pool).await;
    let key = app.create_key(11).await;
    let mut body =
        json!({ "Action": "DownloadOrderSummary", "StartTime": 1719792000, "EndTime": 1722470400 });
    let too_many: Vec<String> = (0..1001).map(|i| format!("mv-{i}")).collect();
    body["ResourceIds"] = json!(too_many);
    let answer = app.call_json(&key, body.clone()).await;
    assert_eq!(ret_code(&answer), 230, "{answer}");
    assert_eq!(answer["Message"], "Params [ResourceIds] not available");

    // The cap is on items sent: 50 000 copies of one region are refused...
    body["ResourceIds"] = json!(vec!["mv-1"; 50_000]);
    let answer = app.call_json(&key, body.clone()).await;
    assert_eq!(ret_code(&answer), 230, "{answer}");
    assert_eq!(answer["Message"], "Params [ResourceIds] not available");
    // ...and 1000 items, duplicates among them, are fine.
    let mut items: Vec<String> = (0..500).map(|i| format!("mv-{i}")).collect();
    items.extend((0..500).map(|i| format!("mv-{i}")));
    body["ResourceIds"] = json!(items);
    let answer = app.call_json(&key, body.clone()).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");

    body["ResourceIds"] = json!(["x".repeat(257)]);
    body["StartTime"] = json!(1719792001);
    let answer = app.call_json(&key, body).await;
    assert_eq!(ret_code(&answer), 230, "{answer}");
}

#[sqlx::test(migrations = "../migrations")]
async fn refused_requests_leave_no_job(pool: PgPool) {
    let app = app(pool).await;
    expect(
        &app,
        &[("StartTime", END), ("EndTime", START)],
        230,
        "Params [EndTime] not available",
    )
    .await;
    expect(
        &app,
        &[("StartTime", START)],
        220,
        "Missing params [EndTime]",
    )
    .await;
    assert_eq!(app.job_rows(11).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn job_actions_check_their_params(pool: PgPool) {
    let app = app(pool).await;
    let key = app.create_key(11).await;
    let body = app.call(&key, &[("Action", "GetOrderSummaryJob")]).await;
    assert_eq!(
        (ret_code(&body), body["Message"].as_str().unwrap()),
        (220, "Missing params [JobId]")
    );
    let body = app
        .call(
            &key,
            &[("Action", "GetOrderSummaryJob"), ("JobId", "not-a-uuid")],
        )
        .await;
    assert_eq!(
        (ret_code(&body), body["Message"].as_str().unwrap()),
        (230, "Params [JobId] not available")
    );
    let body = app
        .call(
            &key,
            &[
                ("Action", "CancelOrderSummaryJob"),
                ("JobId", &uuid::Uuid::new_v4().to_string()),
            ],
        )
        .await;
    assert_eq!(
        (ret_code(&body), body["Message"].as_str().unwrap()),
        (230, "Params [JobId] not available")
    );
    for (k, v) in [
        ("Limit", "0"),
        ("Limit", "101"),
        ("Offset", "-1"),
        ("Offset", "x"),
    ] {
        let body = app
            .call(&key, &[("Action", "ListOrderSummaryJobs"), (k, v)])
            .await;
        assert_eq!(ret_code(&body), 230, "{k}={v} → {body}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn bodies_that_are_neither_form_nor_json_object_are_230(pool: PgPool) {
    let app = app(pool).await;
    for (content_type, body) in [
        ("application/json", b"[1,2,3]".to_vec()),
        ("application/json", b"{\"Action\": ".to_vec()),
        ("text/plain", b"Action=DownloadOrderSummary".to_vec()),
        ("multipart/form-data; boundary=x", b"--x--".to_vec()),
    ] {
        let (status, text) = app.post_raw(content_type, body).await;
        assert_eq!(status, 200, "{content_type}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ret_code(&answer), 230, "{content_type} → {answer}");
        assert_eq!(answer["Message"], "Params [Body] not available");
    }
}
