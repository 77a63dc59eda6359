//! Amounts are read from `numeric` and decoded in the worker
//! (`ordersum_worker::numeric::Amount`): each must be the very double
//! Postgres' own `numeric::float8` gives, whatever its scale, sign or
//! number of digits, so the workbook's amounts are what the billing
//! system's reports show.

#![allow(clippy::unwrap_used)]

use ordersum_worker::numeric::Amount;
use sqlx::{PgPool, Row};

/// Values at the edges of `orders`' numeric(30,8) and numeric(20,8)
/// columns, and around the decoder's fast path (2^53, 10^22).
const EDGES: &[&str] = &[
    "0",
    "0.00000001",
    "-0.00000001",
    "0.1",
    "0.30000000",
    "1",
    "-1",
    "9999.9999",
    "10000",
    "123456789012.34567891",
    "999999999999.99999999",
    "-999999999999.99999999",
    "9999999999999999999999.99999999",
    "9007199254740992",
    "9007199254740993",
    "90071992547409.93",
    "4503599627370495.5",
    "10000000000000000000000",
    "100000000000000000000000",
    "0.000000015",
    "1e-8",
    "NaN",
];

/// Every value as `Amount` from a `numeric` column, beside `::float8`.
async fn decoded_and_cast(pool: &PgPool, sql: &str) -> Vec<(String, f64, f64)> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let text: String = row.get("text");
            let Amount(decoded) = row.get("value");
            (text, decoded, row.get::<f64, _>("cast"))
        })
        .collect()
}

fn same_double(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[sqlx::test(migrations = "../migrations")]
async fn numeric_amounts_decode_to_the_double_postgres_casts_them_to(pool: PgPool) {
    let edges = EDGES
        .iter()
        .map(|v| format!("('{v}'::numeric)"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut checked = decoded_and_cast(
        &pool,
        &format!(
            "SELECT v::text AS text, v AS value, v::float8 AS cast \
             FROM (VALUES {edges}) AS t(v)"
        ),
    )
    .await;
    // 20 000 random amounts of every scale from 10^-8 to 10^22, both signs,
    // rounded as the table's columns round them.
    checked.extend(
        decoded_and_cast(
            &pool,
            "SELECT v::text AS text, v AS value, v::float8 AS cast FROM ( \
               SELECT round((random() - 0.5)::numeric * 10::numeric ^ (i % 31 - 8) \
                            * (1 + random())::numeric, 8) AS v \
               FROM generate_series(1, 20000) AS i) AS t",
        )
        .await,
    );
    // And as stored: numeric(30,8) and numeric(20,8) columns of orders.
    sqlx::query(
        "INSERT INTO orders (order_no, company_id, status, order_type, charge_type, product_code, \
           resource_id, region, organization_id, pricing_sku, pricing_unit, quantity, list_price, \
           total_price, currency, start_time, end_time) \
         SELECT 'amounts-' || i, 1, 2, 1, 1, 'p', 'r', 'cn', 1, 's', 1, \
           round((random() * 10::numeric ^ (i % 22))::numeric, 8), \
           round((random() * 10::numeric ^ (i % 12))::numeric, 8), \
           -round((random() * 10::numeric ^ (i % 12))::numeric, 8), 'CNY', now(), now() \
         FROM generate_series(1, 2000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    for column in ["quantity", "list_price", "total_price"] {
        checked.extend(
            decoded_and_cast(
                &pool,
                &format!(
                    "SELECT {column}::text AS text, {column} AS value, {column}::float8 AS cast \
                     FROM orders WHERE order_no LIKE 'amounts-%'"
                ),
            )
            .await,
        );
    }
    assert_eq!(checked.len(), EDGES.len() + 20_000 + 3 * 2000);
    let wrong: Vec<_> = checked
        .iter()
        .filter(|(_, decoded, cast)| !same_double(*decoded, *cast))
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "decoded differs from ::float8: {wrong:?}");
}
