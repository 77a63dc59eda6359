//! Reading a downloaded workbook back (calamine) and what a plain SQL query
//! says it must hold: the oracle of the end-to-end and fault tests.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::{Key, TestApp, ret_code};

/// The company the tests' summaries are for.
pub const COMPANY: i64 = 1;

/// A cell as the test compares it.
#[derive(Debug, Clone)]
pub enum Cell {
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

pub fn cell(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::DateTime(d) => Cell::Time(d.as_f64()),
        other => panic!("unexpected cell {other:?}"),
    }
}

pub type Sheets = Vec<(String, Vec<Vec<Cell>>)>;

pub fn read_workbook(bytes: Vec<u8>) -> Sheets {
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

pub fn text(value: String) -> Cell {
    if value.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(value)
    }
}

pub fn serial(t: DateTime<Utc>, tz: Tz) -> Cell {
    let offset = tz
        .offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc();
    let secs =
        t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6 + f64::from(offset);
    Cell::Time(secs / 86_400.0 + 25_569.0)
}

pub fn amount(decimal: String) -> Cell {
    Cell::Number(decimal.parse().unwrap())
}

/// The rows of one sheet kind, as a plain SQL query over `orders` selects
/// them (`status` 2 paid, 1 unpaid), with the labels joined in.
pub async fn expected_rows(
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

pub fn headers(kind_paid: bool) -> Vec<Cell> {
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
pub fn data_rows(sheets: &Sheets, base: &str, paid: bool) -> Vec<Vec<Cell>> {
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

/// Submits a summary of `window` (Unix seconds) without waiting; answers
/// its job id.
pub async fn submit_window_summary(app: &TestApp, key: &Key, window: (i64, i64)) -> String {
    let (start, end) = (window.0.to_string(), window.1.to_string());
    let params = [
        ("Action", "DownloadOrderSummary"),
        ("StartTime", start.as_str()),
        ("EndTime", end.as_str()),
    ];
    let answer = app.call(key, &params).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    answer["JobId"].as_str().unwrap().to_owned()
}

/// Submits a summary with `params`, long-polls until it ends, answers the job.
pub async fn run_summary(app: &TestApp, key: &Key, params: &[(&str, &str)]) -> Value {
    let mut all = vec![("Action", "DownloadOrderSummary"), ("WaitSeconds", "30")];
    all.extend_from_slice(params);
    let answer = app.call(key, &all).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    wait_until_ended(app, key, answer["JobId"].as_str().unwrap()).await
}

/// A summary of `window` (Unix seconds), submitted and waited for.
pub async fn run_window_summary(app: &TestApp, key: &Key, window: (i64, i64)) -> Value {
    let (start, end) = (window.0.to_string(), window.1.to_string());
    run_summary(app, key, &[("StartTime", &start), ("EndTime", &end)]).await
}

/// Long-polls job `id` until it is neither queued nor running.
pub async fn wait_until_ended(app: &TestApp, key: &Key, id: &str) -> Value {
    for _ in 0..10 {
        let job = app
            .call(
                key,
                &[
                    ("Action", "GetOrderSummaryJob"),
                    ("JobId", id),
                    ("WaitSeconds", "30"),
                ],
            )
            .await;
        if !matches!(job["Status"].as_str(), Some("Queued" | "Running")) {
            return job;
        }
    }
    panic!("job {id} did not end");
}

pub async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(url).send().await.unwrap()
}

/// A finished job's workbook, downloaded from its URL (200, and as many
/// bytes as the job says) and read.
pub async fn download_workbook(app: &TestApp, job: &Value) -> Sheets {
    let url = job["Data"]["DownloadURL"].as_str().unwrap();
    let response = fetch(app, url).await;
    assert_eq!(response.status(), 200, "{url}");
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(
        bytes.len() as i64,
        job["Data"]["FileSize"].as_i64().unwrap()
    );
    read_workbook(bytes)
}

/// Runs a summary and checks the workbook against the SQL oracle.
pub async fn assert_summary_matches_sql(
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
    assert_job_matches_sql(app, &job, window, filters_sql, tz).await;
}

/// Checks a finished job: succeeded, and its workbook (downloaded from its
/// URL) holds exactly the orders the SQL oracle selects, in order.
pub async fn assert_job_matches_sql(
    app: &TestApp,
    job: &Value,
    window: (i64, i64),
    filters_sql: &str,
    tz: Tz,
) {
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let sheets = download_workbook(app, job).await;
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
