//! Reading the orders of a summary: keyset pages over `orders` for one
//! company, the request's window and every filter it names, in
//! `(start_time, id)` order, never OFFSET, never the whole set at once.

use chrono::{DateTime, Utc};
use ordersum_model::{OrderStatus, SummaryRequest};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};

/// One order as the workbook needs it. Amounts come as float8 (Postgres
/// rounds numeric to the nearest double, what Excel stores anyway).
#[derive(Debug, Clone)]
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

/// Columns by position, in `SELECT`'s order: looking each up by name hashed
/// its name for every cell, about 7 % of a 1M export's CPU (perf).
impl<'r> sqlx::FromRow<'r, PgRow> for OrderRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(OrderRow {
            id: row.try_get(0)?,
            order_no: row.try_get(1)?,
            status: row.try_get(2)?,
            order_type: row.try_get(3)?,
            charge_type: row.try_get(4)?,
            product_code: row.try_get(5)?,
            model_id: row.try_get(6)?,
            model_name: row.try_get(7)?,
            resource_id: row.try_get(8)?,
            region: row.try_get(9)?,
            organization_id: row.try_get(10)?,
            organization_name: row.try_get(11)?,
            user_email: row.try_get(12)?,
            pricing_sku: row.try_get(13)?,
            pricing_unit: row.try_get(14)?,
            quantity: row.try_get(15)?,
            list_price: row.try_get(16)?,
            discount_price: row.try_get(17)?,
            original_price: row.try_get(18)?,
            total_price: row.try_get(19)?,
            cash_account: row.try_get(20)?,
            bonus_account: row.try_get(21)?,
            coupon: row.try_get(22)?,
            currency: row.try_get(23)?,
            start_time: row.try_get(24)?,
            end_time: row.try_get(25)?,
            paid_time: row.try_get(26)?,
            created_at: row.try_get(27)?,
        })
    }
}

const SELECT: &str = "SELECT id, order_no, status, order_type, charge_type, product_code, model_id, \
     model_name, resource_id, region, organization_id, organization_name, user_email, pricing_sku, \
     pricing_unit, quantity::float8 AS quantity, list_price::float8 AS list_price, \
     discount_price::float8 AS discount_price, original_price::float8 AS original_price, \
     total_price::float8 AS total_price, cash_account::float8 AS cash_account, \
     bonus_account::float8 AS bonus_account, coupon::float8 AS coupon, currency, start_time, \
     end_time, paid_time, created_at \
     FROM orders WHERE company_id = ";

/// Where the previous page ended.
pub type Cursor = (DateTime<Utc>, i64);

/// The page query of one summary: only the filters the request names appear
/// in it, each as `column = ANY($n)`, so the same filters always give the
/// same SQL text (and hit sqlx's prepared-statement cache).
#[derive(Debug, Clone)]
pub struct OrderQuery {
    company_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    request: SummaryRequest,
    page_size: i64,
}

impl OrderQuery {
    pub fn new(company_id: i64, request: &SummaryRequest, page_size: i64) -> Self {
        OrderQuery {
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

    /// The page after `after`, each bind pushed beside its SQL.
    fn page_query(&self, after: Cursor) -> QueryBuilder<Postgres> {
        let mut q = QueryBuilder::new(SELECT);
        q.push_bind(self.company_id)
            .push(" AND start_time >= ")
            .push_bind(self.start)
            .push(" AND start_time < ")
            .push_bind(self.end)
            .push(" AND (start_time, id) > (")
            .push_bind(after.0)
            .push(", ")
            .push_bind(after.1)
            .push(") AND status IN (");
        // Literals, as before: the same two codes for every query.
        for (i, status) in OrderStatus::EXPORTED.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push(status.code());
        }
        q.push(")");
        let r = &self.request;
        filter(&mut q, "resource_id", &r.resource_ids);
        filter(&mut q, "model_id", &r.model_ids);
        filter(&mut q, "pricing_unit", &r.pricing_units);
        filter(&mut q, "order_type", &r.order_types);
        filter(&mut q, "charge_type", &r.charge_types);
        filter(&mut q, "organization_id", &r.organization_ids);
        filter(&mut q, "region", &r.regions);
        filter(&mut q, "pricing_sku", &r.pricing_skus);
        filter(&mut q, "product_code", &r.product_codes);
        q.push(" ORDER BY start_time, id LIMIT ")
            .push_bind(self.page_size);
        q
    }

    /// The next page after `after`; shorter than the page size at the end.
    #[tracing::instrument(skip_all, err)]
    pub async fn fetch_page(
        &self,
        db: impl PgExecutor<'_>,
        after: Cursor,
    ) -> Result<Vec<OrderRow>, sqlx::Error> {
        self.page_query(after)
            .build_query_as::<OrderRow>()
            .fetch_all(db)
            .await
    }
}

/// ` AND column = ANY($n)` when the request names values for `column`.
fn filter<T>(q: &mut QueryBuilder<Postgres>, column: &str, values: &[T])
where
    T: sqlx::postgres::PgHasArrayType + sqlx::Type<Postgres> + for<'q> sqlx::Encode<'q, Postgres>,
{
    if !values.is_empty() {
        q.push(" AND ")
            .push(column)
            .push(" = ANY(")
            .push_bind(values)
            .push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SummaryRequest {
        SummaryRequest {
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
        }
    }

    fn sql(query: &OrderQuery, after: Cursor) -> String {
        query.page_query(after).into_string()
    }

    #[test]
    fn only_named_filters_appear_in_the_query_in_bind_order() {
        let query = OrderQuery::new(1, &request(), 100);
        let sql = sql(&query, query.first_cursor());
        assert!(
            sql.contains(
                " FROM orders WHERE company_id = $1 AND start_time >= $2 AND start_time < $3 \
                 AND (start_time, id) > ($4, $5) AND status IN (1, 2)"
            ),
            "{sql}"
        );
        assert!(sql.contains(" AND resource_id = ANY($6)"), "{sql}");
        assert!(sql.contains(" AND order_type = ANY($7)"), "{sql}");
        assert!(sql.contains(" AND organization_id = ANY($8)"), "{sql}");
        assert!(sql.contains(" AND product_code = ANY($9)"), "{sql}");
        assert!(sql.ends_with(" ORDER BY start_time, id LIMIT $10"), "{sql}");
        assert!(!sql.contains("region = ANY"), "{sql}");
    }

    #[test]
    fn the_same_filters_give_the_same_sql_on_every_page() {
        let query = OrderQuery::new(1, &request(), 100);
        let first = sql(&query, query.first_cursor());
        let later = (DateTime::from_timestamp(5, 0).unwrap_or_default(), 42);
        assert_eq!(first, sql(&query, later));
        let other = SummaryRequest {
            resource_ids: vec!["b".into(), "c".into()],
            organization_ids: vec![6, 7],
            ..request()
        };
        let other = OrderQuery::new(2, &other, 100);
        assert_eq!(first, sql(&other, other.first_cursor()));
    }
}
