//! Who may call: Action, key and signature are checked in UCloud's order,
//! and requests signed the way UCloud's SDKs sign them are accepted.

#![allow(clippy::unwrap_used)]

use ordersum_tests::{Key, ret_code, signed, spawn_app};
use sqlx::PgPool;

const WINDOW: [(&str, &str); 2] = [("StartTime", "1719792000"), ("EndTime", "1722470400")];

fn download(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut params = vec![("Action", "DownloadOrderSummary")];
    params.extend(WINDOW);
    params.extend_from_slice(extra);
    params
}

#[sqlx::test(migrations = "../migrations")]
async fn a_form_post_signed_like_the_ucloud_sdks_is_accepted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(7).await;
    // Common params and Key.N lists are part of the signed string.
    let body = app
        .call(
            &key,
            &download(&[
                ("Region", "cn-bj2"),
                ("ProjectId", "org-abc"),
                ("ResourceIds.0", "mv-1"),
                ("ResourceIds.1", "mv-2"),
            ]),
        )
        .await;
    assert_eq!(ret_code(&body), 0, "{body}");
    assert_eq!(body["Action"], "DownloadOrderSummaryResponse");
    assert_eq!(body["Status"], "Queued");
    assert!(body["JobId"].as_str().is_some());
    assert_eq!(body["Data"], serde_json::json!({}));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_tampered_request_is_refused_with_171(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(7).await;
    let mut pairs = signed(&key, &download(&[("Region", "cn-bj2")]));
    // Change one signed value after signing.
    pairs.iter_mut().find(|(k, _)| k == "EndTime").unwrap().1 = "1722470401".into();
    let (status, body) = app.post_form_raw(&pairs).await;
    assert_eq!(status, 200);
    assert_eq!(ret_code(&body), 171, "{body}");
    assert_eq!(body["Message"], "Signature VerifyAC Error");
    assert_eq!(app.job_rows(7).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_signature_made_with_another_private_key_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(7).await;
    let forged = Key {
        private: "0".repeat(40),
        ..key.clone()
    };
    let body = app.call(&forged, &download(&[])).await;
    assert_eq!(ret_code(&body), 171, "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_and_disabled_keys_are_refused_with_172(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let unknown = Key {
        public: "nobody".into(),
        private: "x".repeat(40),
        company_id: 1,
    };
    let body = app.call(&unknown, &download(&[])).await;
    assert_eq!(ret_code(&body), 172, "{body}");

    let key = app.create_key(7).await;
    sqlx::query("UPDATE api_keys SET disabled = true WHERE public_key = $1")
        .bind(&key.public)
        .execute(&pool)
        .await
        .unwrap();
    let body = app.call(&key, &download(&[])).await;
    assert_eq!(ret_code(&body), 172, "{body}");
    assert_eq!(app.job_rows(7).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn checks_run_in_ucloud_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(7).await;
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };

    // No Action at all, even without a signature: 160.
    let (_, body) = app.post_form_raw(&pairs(&[("StartTime", "1")])).await;
    assert_eq!(ret_code(&body), 160, "{body}");
    assert_eq!(body["Message"], "Missing Action");

    // Unknown Action before any signature check: 161, named in the message.
    let (_, body) = app
        .post_form_raw(&pairs(&[("Action", "DescribeUHostInstance")]))
        .await;
    assert_eq!(ret_code(&body), 161, "{body}");
    assert_eq!(body["Message"], "Action [DescribeUHostInstance] not found");
    assert_eq!(body["Action"], "DescribeUHostInstanceResponse");

    // Known Action, no Signature / no PublicKey: 170.
    let (_, body) = app
        .post_form_raw(&pairs(&[
            ("Action", "DownloadOrderSummary"),
            ("PublicKey", &key.public),
        ]))
        .await;
    assert_eq!(ret_code(&body), 170, "{body}");
    let (_, body) = app
        .post_form_raw(&pairs(&[
            ("Action", "DownloadOrderSummary"),
            ("Signature", "abc"),
        ]))
        .await;
    assert_eq!(ret_code(&body), 170, "{body}");

    // Signature is checked before parameters: a bad signature on a request
    // that also lacks StartTime is 171, a good one is 220.
    let mut bad = signed(&key, &[("Action", "DownloadOrderSummary")]);
    bad.last_mut().unwrap().1 = "0".repeat(40);
    let (_, body) = app.post_form_raw(&bad).await;
    assert_eq!(ret_code(&body), 171, "{body}");
    let body = app.call(&key, &[("Action", "DownloadOrderSummary")]).await;
    assert_eq!(ret_code(&body), 220, "{body}");
    assert_eq!(body["Message"], "Missing params [StartTime]");
}

#[sqlx::test(migrations = "../migrations")]
async fn every_answer_carries_a_request_uuid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app
        .http
        .post(app.url())
        .form(&[("Action", "Nope")])
        .send()
        .await
        .unwrap();
    let id = response
        .headers()
        .get("x-ucloud-request-uuid")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}
