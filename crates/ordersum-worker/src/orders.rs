//! Reading the orders of a summary: keyset pages over `orders` for one
//! company, the request's window and every filter it names, in
//! `(start_time, id)` order, never OFFSET, never the whole set at once.

use chrono::{DateTime, Utc};
use ordersum_model::{OrderStatus, SummaryRequest};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};

use crate::columns::{self, COLUMNS, FLOATS, INTS, Kind, SLOTS, TEXTS, TIMES};
use crate::numeric::Amount;

/// One order as the workbook needs it: the value of each of
/// [`COLUMNS`], kept by the column's store and slot. Amounts are numeric
/// rounded to the nearest double (what Excel stores anyway), decoded here
/// ([`Amount`]) rather than cast in Postgres.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// The keyset cursor of this order (also its `id` and `start_time`
    /// columns).
    pub id: i64,
    pub start_time: DateTime<Utc>,
    texts: [String; TEXTS],
    ints: [i64; INTS],
    floats: [f64; FLOATS],
    times: [Option<DateTime<Utc>>; TIMES],
}

impl OrderRow {
    /// The order's status; `None` for a code the billing system does not
    /// define.
    pub fn status(&self) -> Option<OrderStatus> {
        i16::try_from(self.int(columns::STATUS))
            .ok()
            .and_then(OrderStatus::from_code)
    }

    /// The value of the text column at `index` in [`COLUMNS`].
    pub fn text(&self, index: usize) -> &str {
        &self.texts[SLOTS[index]]
    }

    /// The value of the status, code or integer column at `index`.
    pub fn int(&self, index: usize) -> i64 {
        self.ints[SLOTS[index]]
    }

    /// The value of the amount column at `index`.
    pub fn amount(&self, index: usize) -> f64 {
        self.floats[SLOTS[index]]
    }

    /// The value of the time column at `index` (`None` for NULL).
    pub fn time(&self, index: usize) -> Option<DateTime<Utc>> {
        self.times[SLOTS[index]]
    }
}

/// Columns by position, in `SELECT`'s (the table's) order: looking each up
/// by name hashed its name for every cell, about 7 % of a 1M export's CPU
/// (perf).
impl<'r> sqlx::FromRow<'r, PgRow> for OrderRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let mut texts: [String; TEXTS] = std::array::from_fn(|_| String::new());
        let mut ints = [0; INTS];
        let mut floats = [0.0; FLOATS];
        let mut times = [None; TIMES];
        for (i, column) in COLUMNS.iter().enumerate() {
            let slot = SLOTS[i];
            match column.kind {
                Kind::Text => texts[slot] = row.try_get(i)?,
                Kind::Status => ints[slot] = i64::from(row.try_get::<i16, _>(i)?),
                Kind::Code { .. } => ints[slot] = i64::from(row.try_get::<i32, _>(i)?),
                Kind::Integer => ints[slot] = row.try_get(i)?,
                Kind::Amount => floats[slot] = row.try_get::<Amount, _>(i)?.0,
                Kind::Time => times[slot] = Some(row.try_get(i)?),
                Kind::OptionalTime => times[slot] = row.try_get(i)?,
            }
        }
        // A `Time` column (checked at compile time), so never NULL here.
        let start_time = times[SLOTS[columns::START_TIME]]
            .ok_or_else(|| sqlx::Error::Decode("start_time is NULL".into()))?;
        Ok(OrderRow {
            id: ints[SLOTS[columns::ID]],
            start_time,
            texts,
            ints,
            floats,
            times,
        })
    }
}

/// Where the previous page ended.
pub type Cursor = (DateTime<Utc>, i64);

/// The page query of one summary: only the filters the request names appear
/// in it, each as `column = ANY($n)`, so the same filters always give the
/// same SQL text (and hit sqlx's prepared-statement cache).
#[derive(Debug, Clone)]
pub struct OrderQuery {
    /// `SELECT <the table's columns> FROM orders WHERE company_id = `
    select: String,
    company_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    request: SummaryRequest,
    page_size: i64,
}

impl OrderQuery {
    pub fn new(company_id: i64, request: &SummaryRequest, page_size: i64) -> Self {
        OrderQuery {
            select: format!(
                "SELECT {} FROM orders WHERE company_id = ",
                columns::select_list()
            ),
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
        let mut q = QueryBuilder::new(&self.select);
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
        assert!(
            sql.starts_with(&format!("SELECT {} FROM", columns::select_list())),
            "{sql}"
        );
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
