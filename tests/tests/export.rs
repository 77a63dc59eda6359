//! End to end: API + worker + Postgres + Redis + a file or S3 store. The
//! downloaded workbook, read back with calamine, holds exactly the orders a
//! plain SQL query selects: each once, in the right sheet, with exact
//! amounts and times.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use ordersum_tests::gate::OrdersGate;
use ordersum_tests::oracle::{
    COMPANY, Cell, assert_summary_matches_sql, data_rows, download_workbook, expected_rows, fetch,
    headers, run_summary, run_window_summary, serial,
};
use ordersum_tests::{
    Key, TestApp, TestWorker, s3_storage, seed, spawn_app_with, spawn_worker, test_settings,
};
use sqlx::PgPool;

/// A window of the seeded period, away from its edges.
fn window_days_ago(from: i64, to: i64) -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - from * 86_400, now - to * 86_400)
}

async fn setup(pool: PgPool, orders: u64) -> (TestApp, Key, TestWorker) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, orders, 60, 42).await;
    seed(&app.pool, COMPANY + 1, 300, 60, 43).await; // another company: never in the file
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.page_size = 97).await;
    (app, key, worker)
}

#[sqlx::test(migrations = "../migrations")]
async fn the_whole_window_holds_exactly_the_companys_paid_and_unpaid_orders(pool: PgPool) {
    let (app, key, worker) = setup(pool, 3000).await;
    assert_summary_matches_sql(&app, &key, window_days_ago(45, 5), &[], "").await;
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn product_and_region_filters_select_exactly_their_orders(pool: PgPool) {
    let (app, key, worker) = setup(pool, 3000).await;
    assert_summary_matches_sql(
        &app,
        &key,
        window_days_ago(50, 0),
        &[
            ("ProductCodes.0", "sandbox"),
            ("Regions.0", "cn-bj2"),
            ("Regions.1", "hk"),
        ],
        "AND o.product_code = 'sandbox' AND o.region IN ('cn-bj2', 'hk')",
    )
    .await;
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn organization_order_and_charge_type_filters_select_exactly_their_orders(pool: PgPool) {
    let (app, key, worker) = setup(pool, 3000).await;
    let org = sqlx::query_scalar::<_, i64>(
        "SELECT min(organization_id) FROM orders WHERE company_id = 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .to_string();
    assert_summary_matches_sql(
        &app,
        &key,
        window_days_ago(60, 0),
        &[
            ("OrganizationIds.0", &org),
            ("OrderTypes.0", "1"),
            ("OrderTypes.1", "2"),
            ("ChargeTypes.0", "1"),
        ],
        &format!("AND o.organization_id = {org} AND o.order_type IN (1, 2) AND o.charge_type = 1"),
    )
    .await;
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn resource_model_sku_and_unit_filters_with_a_time_zone(pool: PgPool) {
    let (app, key, worker) = setup(pool, 4000).await;
    let models: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT model_id FROM orders WHERE company_id = 1 AND model_id <> '' ORDER BY 1 LIMIT 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let resources: Vec<String> = sqlx::query_scalar(
        "SELECT resource_id FROM orders WHERE company_id = 1 AND model_id = ANY($1) GROUP BY 1 ORDER BY count(*) DESC LIMIT 3",
    )
    .bind(&models)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut params: Vec<(String, String)> = vec![
        ("ModelIds.0".into(), models[0].clone()),
        ("ModelIds.1".into(), models[1].clone()),
        ("PricingSkus.0".into(), "input_tokens".into()),
        ("PricingSkus.1".into(), "output_tokens".into()),
        ("PricingUnits.0".into(), "1".into()),
        ("PricingUnits.1".into(), "2".into()),
        ("TimeZone".into(), "Asia/Shanghai".into()),
    ];
    for (i, r) in resources.iter().enumerate() {
        params.push((format!("ResourceIds.{i}"), r.clone()));
    }
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "AND o.model_id IN ({}) AND o.resource_id IN ({}) AND o.pricing_sku IN ('input_tokens', 'output_tokens') AND o.pricing_unit IN (1, 2)",
        quoted(&models),
        quoted(&resources)
    );
    assert_summary_matches_sql(&app, &key, window_days_ago(60, 0), &refs, &sql).await;
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_s3_store_serves_the_workbook_through_an_expiring_presigned_url(pool: PgPool) {
    let mut settings = test_settings();
    s3_storage(&mut settings.storage);
    settings.storage.url_ttl_secs = 2;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 2000, 30, 7).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    assert_summary_matches_sql(&app, &key, window_days_ago(30, 0), &[], "").await;

    // A fresh URL on every poll; each works with a plain GET until it expires.
    let list = app.call(&key, &[("Action", "ListOrderSummaryJobs")]).await;
    let id = list["Jobs"][0]["JobId"].as_str().unwrap().to_owned();
    let job = app
        .call(&key, &[("Action", "GetOrderSummaryJob"), ("JobId", &id)])
        .await;
    let url = job["Data"]["DownloadURL"].as_str().unwrap().to_owned();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(fetch(&app, &url).await.status(), 200);
    // Time is what is tested: the URL's 2 s lifetime passes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        fetch(&app, &url).await.status(),
        403,
        "expired presigned URL still works"
    );
    let fresh = app
        .call(&key, &[("Action", "GetOrderSummaryJob"), ("JobId", &id)])
        .await;
    let fresh_url = fresh["Data"]["DownloadURL"].as_str().unwrap();
    assert_ne!(fresh_url, url);
    assert_eq!(fetch(&app, fresh_url).await.status(), 200);
    assert!(worker.temp_files().is_empty(), "{:?}", worker.temp_files());
    worker.stop().await;
}

/// With `public_endpoint` the link names the host customers use (here
/// `localhost` for the server the worker reaches as 127.0.0.1), and it works
/// there: the signature covers that host.
#[sqlx::test(migrations = "../migrations")]
async fn s3_download_links_point_at_the_public_endpoint_and_work_there(pool: PgPool) {
    let mut settings = test_settings();
    s3_storage(&mut settings.storage);
    let internal = std::env::var("S3_ENDPOINT").unwrap();
    let public = internal.replace("127.0.0.1", "localhost");
    assert_ne!(
        public, internal,
        "S3_ENDPOINT {internal} is not on 127.0.0.1"
    );
    settings.storage.url = format!("{}&public_endpoint={public}", settings.storage.url);
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 500, 30, 8).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let job = run_window_summary(&app, &key, window_days_ago(30, 0)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let url = job["Data"]["DownloadURL"].as_str().unwrap();
    assert!(url.starts_with(&format!("{public}/")), "{url}");
    let workbook = download_workbook(&app, &job).await;
    let rows = data_rows(&workbook, "Paid Orders", true).len()
        + data_rows(&workbook, "Unpaid Orders", false).len();
    let progress = &job["Progress"];
    let expected =
        progress["PaidRows"].as_u64().unwrap() + progress["UnpaidRows"].as_u64().unwrap();
    assert!(expected > 0, "{job}");
    assert_eq!(rows as u64, expected);
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_full_sheet_continues_in_numbered_sheets_with_the_header_repeated(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 700, 20, 11).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.sheet_max_rows = 100).await;
    let window = window_days_ago(30, 0);
    let job = run_window_summary(&app, &key, window).await;
    let sheets = download_workbook(&app, &job).await;
    let expected_paid = expected_rows(&app.pool, window, "", 2, Tz::UTC).await;
    let expected_unpaid = expected_rows(&app.pool, window, "", 1, Tz::UTC).await;
    let paid_sheets = expected_paid.len().div_ceil(100);
    let unpaid_sheets = expected_unpaid.len().div_ceil(100);
    let mut names = vec!["Paid Orders".to_owned()];
    names.extend((2..=paid_sheets).map(|n| format!("Paid Orders ({n})")));
    names.push("Unpaid Orders".into());
    names.extend((2..=unpaid_sheets).map(|n| format!("Unpaid Orders ({n})")));
    assert_eq!(
        sheets.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names
    );
    // Every sheet but the last of its kind is full: header + 100 rows.
    for (kind, count) in [
        ("Paid Orders", paid_sheets),
        ("Unpaid Orders", unpaid_sheets),
    ] {
        let of_kind: Vec<_> = sheets.iter().filter(|(n, _)| n.starts_with(kind)).collect();
        assert_eq!(of_kind.len(), count);
        for (name, rows) in &of_kind[..count - 1] {
            assert_eq!(rows.len(), 101, "{name} is full before the next starts");
        }
    }
    assert_eq!(data_rows(&sheets, "Paid Orders", true), expected_paid);
    assert_eq!(data_rows(&sheets, "Unpaid Orders", false), expected_unpaid);
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_empty_result_still_has_both_sheets_with_headers(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 100, 5, 3).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    // A window a year before the seeded orders.
    let window = window_days_ago(400, 380);
    let job = run_window_summary(&app, &key, window).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    assert_eq!(
        job["Progress"],
        serde_json::json!({ "PaidRows": 0, "UnpaidRows": 0 })
    );
    let sheets = download_workbook(&app, &job).await;
    assert_eq!(sheets.len(), 2);
    assert_eq!(sheets[0].0, "Paid Orders");
    assert_eq!(sheets[0].1, vec![headers(true)]);
    assert_eq!(sheets[1].0, "Unpaid Orders");
    assert_eq!(sheets[1].1, vec![headers(false)]);
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn text_longer_than_a_cell_holds_is_cut_and_revoked_orders_are_left_out(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let key = app.create_key(COMPANY).await;
    let long = "組".repeat(40_000);
    for (no, status) in [("SO-LONG", 2), ("SO-REVOKED", 3)] {
        sqlx::query(
            "INSERT INTO orders (order_no, company_id, organization_id, organization_name, status, order_type, \
               charge_type, product_code, resource_id, region, pricing_sku, pricing_unit, quantity, total_price, \
               start_time, end_time, paid_time) \
             VALUES ($1, 1, 9, $2, $3, 1, 1, 'sandbox', 'sbx-1', 'hk', 'cpu_core_hour', 3, 1.5, 0.12345678, \
               '2024-07-02T10:00:00Z', '2024-07-02T11:00:00Z', '2024-07-02T11:05:00Z')",
        )
        .bind(no)
        .bind(&long)
        .bind(status as i16)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let worker = spawn_worker(&app, |_| {}).await;
    let job = run_summary(
        &app,
        &key,
        &[("StartTime", "1719792000"), ("EndTime", "1722470400")],
    )
    .await;
    assert_eq!(
        job["Progress"],
        serde_json::json!({ "PaidRows": 1, "UnpaidRows": 0 })
    );
    let sheets = download_workbook(&app, &job).await;
    let row = &sheets[0].1[1];
    assert_eq!(row[0], Cell::Text("SO-LONG".into()));
    assert_eq!(row[12], Cell::Text("組".repeat(32_767)));
    assert_eq!(row[21], Cell::Number(0.12345678));
    assert_eq!(
        row[23],
        serial("2024-07-02T10:00:00Z".parse().unwrap(), Tz::UTC)
    );
    assert_eq!(sheets[1].1.len(), 1, "only the header in Unpaid Orders");
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn local_download_links_refuse_tampering_and_expire(pool: PgPool) {
    let mut settings = test_settings();
    settings.storage.url_ttl_secs = 1;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 50, 5, 5).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let window = window_days_ago(10, 0);
    let job = run_window_summary(&app, &key, window).await;
    let url = job["Data"]["DownloadURL"].as_str().unwrap().to_owned();
    let file_name = job["Data"]["FileName"].as_str().unwrap().to_owned();
    assert!(
        file_name.starts_with("order-summary-") && file_name.ends_with(".xlsx"),
        "{file_name}"
    );

    let ok = fetch(&app, &url).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-length"].to_str().unwrap(),
        job["Data"]["FileSize"].to_string()
    );
    assert!(
        ok.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&file_name)
    );

    let (base, query) = url.split_once('?').unwrap();
    let signature = query
        .split('&')
        .find_map(|p| p.strip_prefix("Signature="))
        .unwrap();
    let expires: i64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("Expires="))
        .unwrap()
        .parse()
        .unwrap();
    let mut flipped = signature.to_owned();
    flipped.replace_range(0..1, if signature.starts_with('0') { "1" } else { "0" });
    for tampered in [
        format!("{base}?Expires={expires}&Signature={flipped}"),
        format!("{base}?Expires={}&Signature={signature}", expires + 3600),
        format!(
            "{}?Expires={expires}&Signature={signature}",
            base.replace("/1/", "/2/")
        ),
        base.to_owned(),
    ] {
        assert_eq!(fetch(&app, &tampered).await.status(), 403, "{tampered}");
    }
    // Time is what is tested: the link's 1 s lifetime passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        fetch(&app, &url).await.status(),
        403,
        "expired link still works"
    );
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn cancelling_mid_export_stops_the_job_and_leaves_no_object_or_temp_file(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 60_000, 30, 9).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.page_size = 200).await;
    let window = window_days_ago(31, 0);
    let mut gate = OrdersGate::close(&app).await;
    let answer = app
        .call(
            &key,
            &[
                ("Action", "DownloadOrderSummary"),
                ("StartTime", &window.0.to_string()),
                ("EndTime", &window.1.to_string()),
            ],
        )
        .await;
    let id = answer["JobId"].as_str().unwrap().to_owned();
    let get_params = [("Action", "GetOrderSummaryJob"), ("JobId", id.as_str())];
    let get = || app.call(&key, &get_params);
    // Rows are being written and the next page waits at the gate: cancel.
    gate.hold_mid_export(&id).await;
    let job = get().await;
    assert_eq!(job["Status"], "Running", "{job}");
    let cancel = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(cancel["Status"], "Cancelled", "{cancel}");

    // The worker notices at its next progress tick and stops at its next
    // page: pages go through one at a time until its attempt has ended
    // (its job slot is free again), then the gate opens.
    let slots = &worker.ctx.slots;
    let concurrency = worker.ctx.settings.concurrency.max(1);
    gate.let_through_one_by_one_until(|| slots.available_permits() == concurrency)
        .await;
    gate.open().await;
    assert!(
        worker.temp_files().is_empty(),
        "temp files left: {:?}",
        worker.temp_files()
    );
    let job = get().await;
    assert_eq!(job["Status"], "Cancelled");
    assert_eq!(job["Data"], serde_json::json!({}));
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE company_id = 1 AND status IN (1, 2)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let written = job["Progress"]["PaidRows"].as_i64().unwrap()
        + job["Progress"]["UnpaidRows"].as_i64().unwrap();
    assert!(
        written < total,
        "the export ran to the end: {written} of {total}"
    );
    let row: (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT file_key, file_size FROM summary_jobs WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(row, (None, None));
    let stored = app.stored_files();
    assert!(stored.is_empty(), "objects left in the store: {stored:?}");
    worker.stop().await;
}
