//! Reading the orders of a summary: keyset pages over `orders` for one
//! company, the request's window and every filter it names, in
//! `(start_time, id)` order, never OFFSET, never the whole set at once.

use chrono::{DateTime, Utc};
use ordersum_model::SummaryRequest;
use sqlx::PgExecutor;

/// Order status codes of the billing system.
pub const STATUS_UNPAID: i16 = 1;
pub const STATUS_PAID: i16 = 2;

/// One order as the workbook needs it. Amounts come as float8 (Postgres
/// rounds numeric to the nearest double, what Excel stores anyway).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: i64,
    pub order_no: String,
    pub status: i16,
    pub order_type: i32,
    pub charge_type: i32,
    pub product_code: String,
    pub model_id: String,
    pub model_name: String,
    pub resource_id: String,
    pub region: String,
    pub organization_id: i64,
    pub organization_name: String,
    pub user_email: String,
    pub pricing_sku: String,
    pub pricing_unit: i32,
    pub quantity: f64,
    pub list_price: f64,
    pub discount_price: f64,
    pub original_price: f64,
    pub total_price: f64,
    pub cash_account: f64,
    pub bonus_account: f64,
    pub coupon: f64,
    pub currency: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub paid_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, order_no, status, order_type, charge_type, product_code, model_id, \
     model_name, resource_id, region, organization_id, organization_name, user_email, pricing_sku, \
     pricing_unit, quantity::float8 AS quantity, list_price::float8 AS list_price, \
     discount_price::float8 AS discount_price, original_price::float8 AS original_price, \
     total_price::float8 AS total_price, cash_account::float8 AS cash_account, \
     bonus_account::float8 AS bonus_account, coupon::float8 AS coupon, currency, start_time, \
     end_time, paid_time, created_at \
     FROM orders \
     WHERE company_id = $1 AND start_time >= $2 AND start_time < $3 \
       AND (start_time, id) > ($4, $5) AND status IN (1, 2)";

/// Where the previous page ended.
pub type Cursor = (DateTime<Utc>, i64);

/// The page query of one summary, built once: only the filters the request
/// names appear in it, each as `column = ANY($n)`.
#[derive(Debug, Clone)]
pub struct OrderQuery {
    sql: String,
    company_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    request: SummaryRequest,
    page_size: i64,
}

impl OrderQuery {
    pub fn new(company_id: i64, request: &SummaryRequest, page_size: i64) -> Self {
        let r = request;
        let filters: [(&str, bool, &str); 9] = [
            ("resource_id", !r.resource_ids.is_empty(), "text[]"),
            ("model_id", !r.model_ids.is_empty(), "text[]"),
            ("pricing_unit", !r.pricing_units.is_empty(), "int4[]"),
            ("order_type", !r.order_types.is_empty(), "int4[]"),
            ("charge_type", !r.charge_types.is_empty(), "int4[]"),
            ("organization_id", !r.organization_ids.is_empty(), "int8[]"),
            ("region", !r.regions.is_empty(), "text[]"),
            ("pricing_sku", !r.pricing_skus.is_empty(), "text[]"),
            ("product_code", !r.product_codes.is_empty(), "text[]"),
        ];
        let mut sql = SELECT.to_owned();
        let mut n = 6;
        for (column, present, cast) in filters {
            if present {
                sql.push_str(&format!(" AND {column} = ANY(${n}::{cast})"));
                n += 1;
            }
        }
        sql.push_str(&format!(" ORDER BY start_time, id LIMIT ${n}"));
        OrderQuery {
            sql,
            company_id,
            start: DateTime::from_timestamp(request.start_time, 0).unwrap_or_default(),
            end: DateTime::from_timestamp(request.end_time, 0).unwrap_or_default(),
            request: request.clone(),
            page_size: page_size.max(1),
        }
    }

    /// Cursor before the first order of the window (ids start at 1).
    pub fn first_cursor(&self) -> Cursor {
        (self.start, 0)
    }

    pub fn page_size(&self) -> usize {
        self.page_size as usize
    }

    /// The next page after `after`; shorter than the page size at the end.
    #[tracing::instrument(skip_all, err)]
    pub async fn fetch_page(
        &self,
        db: impl PgExecutor<'_>,
        after: Cursor,
    ) -> Result<Vec<OrderRow>, sqlx::Error> {
        let r = &self.request;
        let mut query = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(self.sql.clone()))
            .bind(self.company_id)
            .bind(self.start)
            .bind(self.end)
            .bind(after.0)
            .bind(after.1);
        // Same order and conditions as in `new`.
        for list in [&r.resource_ids, &r.model_ids] {
            if !list.is_empty() {
                query = query.bind(list.clone());
            }
        }
        for list in [&r.pricing_units, &r.order_types, &r.charge_types] {
            if !list.is_empty() {
                query = query.bind(list.clone());
            }
        }
        if !r.organization_ids.is_empty() {
            query = query.bind(r.organization_ids.clone());
        }
        for list in [&r.regions, &r.pricing_skus, &r.product_codes] {
            if !list.is_empty() {
                query = query.bind(list.clone());
            }
        }
        query.bind(self.page_size).fetch_all(db).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_filters_appear_in_the_query_in_bind_order() {
        let request = SummaryRequest {
            start_time: 0,
            end_time: 10,
            resource_ids: vec!["a".into()],
            model_ids: vec![],
            pricing_units: vec![],
            order_types: vec![1],
            charge_types: vec![],
            organization_ids: vec![5],
            regions: vec![],
            pricing_skus: vec![],
            product_codes: vec!["sandbox".into()],
            time_zone: "UTC".into(),
        };
        let sql = OrderQuery::new(1, &request, 100).sql;
        assert!(sql.contains("resource_id = ANY($6::text[])"), "{sql}");
        assert!(sql.contains("order_type = ANY($7::int4[])"), "{sql}");
        assert!(sql.contains("organization_id = ANY($8::int8[])"), "{sql}");
        assert!(sql.contains("product_code = ANY($9::text[])"), "{sql}");
        assert!(sql.ends_with("LIMIT $10"), "{sql}");
        assert!(!sql.contains("region = ANY"), "{sql}");
    }
}
