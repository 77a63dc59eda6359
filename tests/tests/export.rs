//! End to end: API + worker + Postgres + Redis + a file or S3 store. The
//! downloaded workbook, read back with calamine, holds exactly the orders a
//! plain SQL query selects: each once, in the right sheet, with exact
//! amounts and times.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::time::Duration;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use ordersum_tests::{
    Key, TestApp, TestWorker, ret_code, s3_storage, seed, spawn_app_with, spawn_worker,
    test_settings,
};
use serde_json::Value;
use sqlx::{PgPool, Row};

const COMPANY: i64 = 1;

/// A cell as the test compares it.
#[derive(Debug, Clone)]
enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// An Excel serial date.
    Time(f64),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Empty, Cell::Empty) => true,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Number(a), Cell::Number(b)) => a == b,
            // Serial dates agree to well under a millisecond.
            (Cell::Time(a), Cell::Time(b)) => (a - b).abs() < 1e-8,
            _ => false,
        }
    }
}

fn cell(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::DateTime(d) => Cell::Time(d.as_f64()),
        other => panic!("unexpected cell {other:?}"),
    }
}

type Sheets = Vec<(String, Vec<Vec<Cell>>)>;

fn read_workbook(bytes: Vec<u8>) -> Sheets {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let names = workbook.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = workbook.worksheet_range(&name).unwrap();
            let rows = range
                .rows()
                .map(|row| row.iter().map(cell).collect())
                .collect();
            (name, rows)
        })
        .collect()
}

fn text(value: String) -> Cell {
    if value.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(value)
    }
}

fn serial(t: DateTime<Utc>, tz: Tz) -> Cell {
    let offset = tz
        .offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc();
    let secs =
        t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6 + f64::from(offset);
    Cell::Time(secs / 86_400.0 + 25_569.0)
}

fn amount(decimal: String) -> Cell {
    Cell::Number(decimal.parse().unwrap())
}

/// The rows of one sheet kind, as a plain SQL query over `orders` selects
/// them (`status` 2 paid, 1 unpaid), with the labels joined in.
async fn expected_rows(
    pool: &PgPool,
    window: (i64, i64),
    filters_sql: &str,
    status: i16,
    tz: Tz,
) -> Vec<Vec<Cell>> {
    let sql = format!(
        "SELECT o.*, o.quantity::text AS q, o.list_price::text AS lp, o.discount_price::text AS dp, \
           o.original_price::text AS op, o.total_price::text AS tp, o.cash_account::text AS ca, \
           o.bonus_account::text AS ba, o.coupon::text AS cp, \
           lo.name AS order_type_name, lc.name AS charge_type_name, lu.name AS pricing_unit_name \
         FROM orders o \
         LEFT JOIN enum_labels lo ON lo.kind = 'order_type' AND lo.value = o.order_type \
         LEFT JOIN enum_labels lc ON lc.kind = 'charge_type' AND lc.value = o.charge_type \
         LEFT JOIN enum_labels lu ON lu.kind = 'pricing_unit' AND lu.value = o.pricing_unit \
         WHERE o.company_id = {COMPANY} AND o.start_time >= to_timestamp({}) AND o.start_time < to_timestamp({}) \
           AND o.status = {status} {filters_sql} \
         ORDER BY o.start_time, o.id",
        window.0, window.1
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let label = |name: &str| {
                r.get::<Option<String>, _>(name)
                    .map_or(Cell::Empty, Cell::Text)
            };
            let mut cells = vec![
                Cell::Text(r.get("order_no")),
                Cell::Text(if status == 2 { "Paid" } else { "Unpaid" }.into()),
                Cell::Number(f64::from(r.get::<i32, _>("order_type"))),
                label("order_type_name"),
                Cell::Number(f64::from(r.get::<i32, _>("charge_type"))),
                label("charge_type_name"),
                text(r.get("product_code")),
                text(r.get("model_id")),
                text(r.get("model_name")),
                text(r.get("resource_id")),
                text(r.get("region")),
                Cell::Number(r.get::<i64, _>("organization_id") as f64),
                text(r.get("organization_name")),
                text(r.get("user_email")),
                text(r.get("pricing_sku")),
                Cell::Number(f64::from(r.get::<i32, _>("pricing_unit"))),
                label("pricing_unit_name"),
                amount(r.get("q")),
                amount(r.get("lp")),
                amount(r.get("dp")),
                amount(r.get("op")),
                amount(r.get("tp")),
                text(r.get("currency")),
                serial(r.get("start_time"), tz),
                serial(r.get("end_time"), tz),
            ];
            if status == 2 {
                cells.push(
                    r.get::<Option<DateTime<Utc>>, _>("paid_time")
                        .map_or(Cell::Empty, |t| serial(t, tz)),
                );
                cells.extend([
                    amount(r.get("ca")),
                    amount(r.get("ba")),
                    amount(r.get("cp")),
                ]);
            } else {
                cells.push(serial(r.get("created_at"), tz));
            }
            cells
        })
        .collect()
}

const PAID_HEADERS: [&str; 29] = [
    "OrderNo",
    "Status",
    "OrderType",
    "OrderTypeName",
    "ChargeType",
    "ChargeTypeName",
    "ProductCode",
    "ModelId",
    "ModelName",
    "ResourceId",
    "Region",
    "OrganizationId",
    "OrganizationName",
    "UserEmail",
    "PricingSku",
    "PricingUnit",
    "PricingUnitName",
    "Quantity",
    "ListPrice",
    "DiscountPrice",
    "OriginalPrice",
    "OrderTotalPrice",
    "Currency",
    "StartTime",
    "EndTime",
    "PaidTime",
    "CashAccount",
    "BonusAccount",
    "Coupon",
];

fn headers(kind_paid: bool) -> Vec<Cell> {
    let mut names: Vec<&str> = PAID_HEADERS[..25].to_vec();
    if kind_paid {
        names.extend(&PAID_HEADERS[25..]);
    } else {
        names.push("CreateTime");
    }
    names.into_iter().map(|n| Cell::Text(n.into())).collect()
}

/// Data rows of every sheet named `base` or `base (n)`, in sheet order,
/// checking each sheet starts with the header.
fn data_rows(sheets: &Sheets, base: &str, paid: bool) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (name, sheet_rows) in sheets
        .iter()
        .filter(|(name, _)| name == base || name.starts_with(&format!("{base} (")))
    {
        let width = headers(paid).len();
        assert_eq!(sheet_rows[0], headers(paid), "header of {name}");
        for row in &sheet_rows[1..] {
            let mut row = row.clone();
            row.resize(width, Cell::Empty);
            rows.push(row);
        }
    }
    rows
}

/// Submits a summary with `params`, long-polls until it ends, answers the job.
async fn run_summary(app: &TestApp, key: &Key, params: &[(&str, &str)]) -> Value {
    let mut all = vec![("Action", "DownloadOrderSummary"), ("WaitSeconds", "30")];
    all.extend_from_slice(params);
    let answer = app.call(key, &all).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    let id = answer["JobId"].as_str().unwrap().to_owned();
    for _ in 0..10 {
        let job = app
            .call(
                key,
                &[
                    ("Action", "GetOrderSummaryJob"),
                    ("JobId", &id),
                    ("WaitSeconds", "30"),
                ],
            )
            .await;
        let status = job["Status"].as_str().unwrap().to_owned();
        if status != "Queued" && status != "Running" {
            return job;
        }
    }
    panic!("job {id} did not end");
}

async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(url).send().await.unwrap()
}

/// Runs a summary and checks the workbook against the SQL oracle.
async fn assert_summary_matches_sql(
    app: &TestApp,
    key: &Key,
    window: (i64, i64),
    params: &[(&str, &str)],
    filters_sql: &str,
) {
    let (start, end) = (window.0.to_string(), window.1.to_string());
    let mut all = vec![("StartTime", start.as_str()), ("EndTime", end.as_str())];
    all.extend_from_slice(params);
    let tz: Tz = params
        .iter()
        .find(|(k, _)| *k == "TimeZone")
        .map_or(Tz::UTC, |(_, v)| v.parse().unwrap());
    let job = run_summary(app, key, &all).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let url = job["Data"]["DownloadURL"].as_str().unwrap();
    let response = fetch(app, url).await;
    assert_eq!(response.status(), 200, "{url}");
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(
        bytes.len() as i64,
        job["Data"]["FileSize"].as_i64().unwrap()
    );
    let sheets = read_workbook(bytes);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Paid Orders", "Unpaid Orders"]);

    let expected_paid = expected_rows(&app.pool, window, filters_sql, 2, tz).await;
    let expected_unpaid = expected_rows(&app.pool, window, filters_sql, 1, tz).await;
    assert!(
        !expected_paid.is_empty() && !expected_unpaid.is_empty(),
        "the filters select orders of both kinds"
    );
    let paid = data_rows(&sheets, "Paid Orders", true);
    let unpaid = data_rows(&sheets, "Unpaid Orders", false);
    assert_eq!(paid.len(), expected_paid.len());
    assert_eq!(unpaid.len(), expected_unpaid.len());
    for (got, want) in paid
        .iter()
        .zip(&expected_paid)
        .chain(unpaid.iter().zip(&expected_unpaid))
    {
        assert_eq!(got, want);
    }
    assert_eq!(job["Progress"]["PaidRows"], expected_paid.len());
    assert_eq!(job["Progress"]["UnpaidRows"], expected_unpaid.len());
}

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

#[sqlx::test(migrations = "../migrations")]
async fn a_full_sheet_continues_in_numbered_sheets_with_the_header_repeated(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 700, 20, 11).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.sheet_max_rows = 100).await;
    let window = window_days_ago(30, 0);
    let job = run_summary(
        &app,
        &key,
        &[
            ("StartTime", &window.0.to_string()),
            ("EndTime", &window.1.to_string()),
        ],
    )
    .await;
    let bytes = fetch(&app, job["Data"]["DownloadURL"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let sheets = read_workbook(bytes);
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
    let job = run_summary(
        &app,
        &key,
        &[
            ("StartTime", &window.0.to_string()),
            ("EndTime", &window.1.to_string()),
        ],
    )
    .await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    assert_eq!(
        job["Progress"],
        serde_json::json!({ "PaidRows": 0, "UnpaidRows": 0 })
    );
    let bytes = fetch(&app, job["Data"]["DownloadURL"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let sheets = read_workbook(bytes);
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
    let bytes = fetch(&app, job["Data"]["DownloadURL"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let sheets = read_workbook(bytes);
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
    let job = run_summary(
        &app,
        &key,
        &[
            ("StartTime", &window.0.to_string()),
            ("EndTime", &window.1.to_string()),
        ],
    )
    .await;
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
    // Wait until rows are being written, then cancel.
    let mut job = get().await;
    for _ in 0..400 {
        if job["Status"] == "Running" && job["Progress"]["PaidRows"].as_i64().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        job = get().await;
    }
    assert_eq!(job["Status"], "Running", "{job}");
    let cancel = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(cancel["Status"], "Cancelled", "{cancel}");

    // The worker notices at its next progress tick and cleans up.
    let mut clean = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if worker.temp_files().is_empty() {
            clean = true;
            break;
        }
    }
    assert!(clean, "temp files left: {:?}", worker.temp_files());
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    let store_root = app
        .settings
        .storage
        .url
        .trim_start_matches("file://")
        .to_owned();
    let stored: Vec<_> = walk(std::path::Path::new(&store_root));
    assert!(stored.is_empty(), "objects left in the store: {stored:?}");
    worker.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path))
            } else {
                files.push(path)
            }
        }
    }
    files
}
