//! The one table of the export's columns. Each entry is a column of the page
//! query's `SELECT` (at the entry's position, which is also where its value
//! is decoded from) and, unless hidden, a column of the sheets it appears on,
//! in table order: header, width, number format and how its cells are written
//! all follow from the entry. Adding a column is adding an entry.

use crate::workbook::SheetKind;

/// Which sheets show a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheets {
    Both,
    Paid,
    Unpaid,
    /// Selected for the query's own use (the keyset cursor), shown nowhere.
    Hidden,
}

impl Sheets {
    pub const fn shows(self, kind: SheetKind) -> bool {
        matches!(
            (self, kind),
            (Sheets::Both, _)
                | (Sheets::Paid, SheetKind::Paid)
                | (Sheets::Unpaid, SheetKind::Unpaid)
        )
    }
}

/// What a column holds: the SQL type its expression must have, and how its
/// cells are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `text`, written as text cut to what a cell holds.
    Text,
    /// `smallint` order status: picks the sheet; written as the status name.
    Status,
    /// `int` code, written as a number, followed by a column `name_header`
    /// with its display name from `enum_labels` (kind `labels`); that cell is
    /// left empty when the code has no label.
    Code {
        labels: &'static str,
        name_header: &'static str,
        name_width: f64,
    },
    /// `bigint`, written as a plain number.
    Integer,
    /// `numeric` amount, read as the nearest double
    /// ([`crate::numeric::Amount`]), shown with [`AMOUNT_FORMAT`].
    Amount,
    /// `timestamptz`, an Excel date-time in the request's zone, shown with
    /// [`TIME_FORMAT`].
    Time,
    /// Nullable `timestamptz`: as [`Kind::Time`], no cell when NULL.
    OptionalTime,
}

/// Amounts: thousands separators, 2 to 8 decimals.
pub const AMOUNT_FORMAT: &str = "#,##0.00######";
/// Times.
pub const TIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss";

/// One column: see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub header: &'static str,
    /// Expression in the `SELECT` list; its type must be the kind's.
    pub sql: &'static str,
    pub kind: Kind,
    pub width: f64,
    pub sheets: Sheets,
}

const fn on_both(header: &'static str, sql: &'static str, kind: Kind, width: f64) -> Column {
    Column {
        header,
        sql,
        kind,
        width,
        sheets: Sheets::Both,
    }
}

const fn code(labels: &'static str, name_header: &'static str, name_width: f64) -> Kind {
    Kind::Code {
        labels,
        name_header,
        name_width,
    }
}

impl Column {
    const fn only(self, sheets: Sheets) -> Column {
        Column { sheets, ..self }
    }
}

use Kind::{Amount, Integer, OptionalTime, Status, Text, Time};

/// Every column, in `SELECT` order and, per sheet, in sheet order.
#[rustfmt::skip]
pub const COLUMNS: &[Column] = &[
    on_both("", "id", Integer, 0.0).only(Sheets::Hidden),
    on_both("OrderNo", "order_no", Text, 26.0),
    on_both("Status", "status", Status, 8.0),
    on_both("OrderType", "order_type", code("order_type", "OrderTypeName", 14.0), 10.0),
    on_both("ChargeType", "charge_type", code("charge_type", "ChargeTypeName", 16.0), 11.0),
    on_both("ProductCode", "product_code", Text, 12.0),
    on_both("ModelId", "model_id", Text, 18.0),
    on_both("ModelName", "model_name", Text, 22.0),
    on_both("ResourceId", "resource_id", Text, 16.0),
    on_both("Region", "region", Text, 9.0),
    on_both("OrganizationId", "organization_id", Integer, 14.0),
    on_both("OrganizationName", "organization_name", Text, 22.0),
    on_both("UserEmail", "user_email", Text, 26.0),
    on_both("PricingSku", "pricing_sku", Text, 16.0),
    on_both("PricingUnit", "pricing_unit", code("pricing_unit", "PricingUnitName", 16.0), 11.0),
    on_both("Quantity", "quantity", Amount, 16.0),
    on_both("ListPrice", "list_price", Amount, 14.0),
    on_both("DiscountPrice", "discount_price", Amount, 14.0),
    on_both("OriginalPrice", "original_price", Amount, 14.0),
    on_both("OrderTotalPrice", "total_price", Amount, 16.0),
    on_both("Currency", "currency", Text, 9.0),
    on_both("StartTime", "start_time", Time, 19.0),
    on_both("EndTime", "end_time", Time, 19.0),
    on_both("PaidTime", "paid_time", OptionalTime, 19.0).only(Sheets::Paid),
    on_both("CashAccount", "cash_account", Amount, 14.0).only(Sheets::Paid),
    on_both("BonusAccount", "bonus_account", Amount, 14.0).only(Sheets::Paid),
    on_both("Coupon", "coupon", Amount, 14.0).only(Sheets::Paid),
    on_both("CreateTime", "created_at", Time, 19.0).only(Sheets::Unpaid),
];

/// Columns the query itself needs, by position: the keyset cursor
/// `(start_time, id)` and the status that picks the sheet.
pub const ID: usize = position("id");
pub const START_TIME: usize = position("start_time");
pub const STATUS: usize = position("status");
const _: () = assert!(matches!(COLUMNS[ID].kind, Kind::Integer));
const _: () = assert!(matches!(COLUMNS[START_TIME].kind, Kind::Time));
const _: () = assert!(matches!(COLUMNS[STATUS].kind, Kind::Status));

/// Where a row keeps a column's value: one array per Rust type, so a row is
/// as compact as a struct of named fields and decoding allocates only the
/// text it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Text,
    Int,
    Float,
    Time,
}

impl Kind {
    pub const fn store(self) -> Store {
        match self {
            Kind::Text => Store::Text,
            Kind::Status | Kind::Code { .. } | Kind::Integer => Store::Int,
            Kind::Amount => Store::Float,
            Kind::Time | Kind::OptionalTime => Store::Time,
        }
    }
}

/// Values of each store in a row.
pub const TEXTS: usize = count(Store::Text);
pub const INTS: usize = count(Store::Int);
pub const FLOATS: usize = count(Store::Float);
pub const TIMES: usize = count(Store::Time);
/// Each column's index within its store's array.
pub const SLOTS: [usize; COLUMNS.len()] = slots();
/// Code columns, and each one's index among them (for its labels).
pub const CODES: usize = codes().0;
pub const CODE_SLOTS: [usize; COLUMNS.len()] = codes().1;

const fn count(store: Store) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < COLUMNS.len() {
        if COLUMNS[i].kind.store() as usize == store as usize {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn slots() -> [usize; COLUMNS.len()] {
    let mut slots = [0; COLUMNS.len()];
    let mut seen = [0; 4];
    let mut i = 0;
    while i < COLUMNS.len() {
        let store = COLUMNS[i].kind.store() as usize;
        slots[i] = seen[store];
        seen[store] += 1;
        i += 1;
    }
    slots
}

const fn codes() -> (usize, [usize; COLUMNS.len()]) {
    let mut slots = [0; COLUMNS.len()];
    let mut n = 0;
    let mut i = 0;
    while i < COLUMNS.len() {
        if let Kind::Code { .. } = COLUMNS[i].kind {
            slots[i] = n;
            n += 1;
        }
        i += 1;
    }
    (n, slots)
}

/// The position of the column selected as `sql` (fails to compile if none).
const fn position(sql: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        if eq(COLUMNS[i].sql, sql) {
            return i;
        }
        i += 1;
    }
    panic!("no such column")
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The `SELECT` list, in table order.
pub fn select_list() -> String {
    COLUMNS
        .iter()
        .map(|column| column.sql)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column as a sheet shows it: its table position and its sheet column
/// (a code's name is in the next sheet column).
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub index: usize,
    pub col: u16,
    pub column: &'static Column,
}

/// The columns a sheet shows, in order.
pub fn layout(kind: SheetKind) -> Vec<Placed> {
    let mut placed = Vec::new();
    let mut col = 0;
    for (index, column) in COLUMNS.iter().enumerate() {
        if !column.sheets.shows(kind) {
            continue;
        }
        placed.push(Placed { index, col, column });
        col += match column.kind {
            Kind::Code { .. } => 2,
            _ => 1,
        };
    }
    placed
}

/// A sheet's headers and widths, column by column.
pub fn headers(kind: SheetKind) -> Vec<(&'static str, f64)> {
    let mut headers = Vec::new();
    for placed in layout(kind) {
        let column = placed.column;
        headers.push((column.header, column.width));
        if let Kind::Code {
            name_header,
            name_width,
            ..
        } = column.kind
        {
            headers.push((name_header, name_width));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sheets as they were laid out by hand before this table.
    const PAID: [(&str, f64); 29] = [
        ("OrderNo", 26.0),
        ("Status", 8.0),
        ("OrderType", 10.0),
        ("OrderTypeName", 14.0),
        ("ChargeType", 11.0),
        ("ChargeTypeName", 16.0),
        ("ProductCode", 12.0),
        ("ModelId", 18.0),
        ("ModelName", 22.0),
        ("ResourceId", 16.0),
        ("Region", 9.0),
        ("OrganizationId", 14.0),
        ("OrganizationName", 22.0),
        ("UserEmail", 26.0),
        ("PricingSku", 16.0),
        ("PricingUnit", 11.0),
        ("PricingUnitName", 16.0),
        ("Quantity", 16.0),
        ("ListPrice", 14.0),
        ("DiscountPrice", 14.0),
        ("OriginalPrice", 14.0),
        ("OrderTotalPrice", 16.0),
        ("Currency", 9.0),
        ("StartTime", 19.0),
        ("EndTime", 19.0),
        ("PaidTime", 19.0),
        ("CashAccount", 14.0),
        ("BonusAccount", 14.0),
        ("Coupon", 14.0),
    ];

    fn formatted(kind: SheetKind, pick: fn(Kind) -> bool) -> Vec<u16> {
        layout(kind)
            .into_iter()
            .filter(|p| pick(p.column.kind))
            .map(|p| p.col)
            .collect()
    }

    #[test]
    fn sheets_keep_their_headers_widths_and_formatted_columns() {
        assert_eq!(headers(SheetKind::Paid), PAID);
        let mut unpaid = PAID[..25].to_vec();
        unpaid.push(("CreateTime", 19.0));
        assert_eq!(headers(SheetKind::Unpaid), unpaid);

        let amount = |k| k == Kind::Amount;
        let time = |k| matches!(k, Kind::Time | Kind::OptionalTime);
        assert_eq!(
            formatted(SheetKind::Paid, amount),
            [17, 18, 19, 20, 21, 26, 27, 28]
        );
        assert_eq!(formatted(SheetKind::Unpaid, amount), [17, 18, 19, 20, 21]);
        assert_eq!(formatted(SheetKind::Paid, time), [23, 24, 25]);
        assert_eq!(formatted(SheetKind::Unpaid, time), [23, 24, 25]);
    }

    #[test]
    fn stores_and_positions_follow_the_table() {
        assert_eq!((ID, STATUS), (0, 2));
        assert_eq!(COLUMNS[START_TIME].sql, "start_time");
        assert_eq!(TEXTS + INTS + FLOATS + TIMES, COLUMNS.len());
        assert_eq!(CODES, 3);
        assert_eq!(CODE_SLOTS[position("pricing_unit")], 2);
        assert_eq!(SLOTS[position("created_at")], TIMES - 1);
        assert!(select_list().starts_with("id, order_no, status, order_type, "));
    }
}
