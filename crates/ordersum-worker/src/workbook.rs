//! The workbook: a *Paid Orders* and an *Unpaid Orders* sheet written in
//! constant memory (rows stream to temp files), continued in `Paid Orders
//! (2)`, … when a sheet is full, each with a bold, frozen, filtered header.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use ordersum_model::OrderStatus;

use crate::orders::OrderRow;

/// Most data rows Excel holds under the header row.
pub const EXCEL_MAX_DATA_ROWS: u32 = 1_048_575;
/// Longest text Excel keeps in a cell, in UTF-16 units.
pub const EXCEL_MAX_TEXT: usize = 32_767;

/// Which sheet an order goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetKind {
    Paid,
    Unpaid,
}

impl SheetKind {
    pub fn base_name(self) -> &'static str {
        match self {
            SheetKind::Paid => "Paid Orders",
            SheetKind::Unpaid => "Unpaid Orders",
        }
    }

    /// The `part`-th sheet's name: `Paid Orders`, `Paid Orders (2)`, …
    pub fn sheet_name(self, part: usize) -> String {
        match part {
            0 | 1 => self.base_name().to_owned(),
            n => format!("{} ({n})", self.base_name()),
        }
    }

    /// Column headers (DESIGN §4), enum names beside their codes.
    pub fn headers(self) -> Vec<&'static str> {
        let mut headers: Vec<&str> = COMMON_COLUMNS.iter().map(|(name, _)| *name).collect();
        let extra: &[(&str, f64)] = match self {
            SheetKind::Paid => &PAID_COLUMNS,
            SheetKind::Unpaid => &UNPAID_COLUMNS,
        };
        headers.extend(extra.iter().map(|(name, _)| *name));
        headers
    }

    /// Quantity, ListPrice … OrderTotalPrice; CashAccount, BonusAccount,
    /// Coupon on the paid sheet.
    fn amount_columns(self) -> impl Iterator<Item = u16> {
        let extra: &[u16] = match self {
            SheetKind::Paid => &[26, 27, 28],
            SheetKind::Unpaid => &[],
        };
        (17..=21).chain(extra.iter().copied())
    }

    /// StartTime, EndTime, and PaidTime or CreateTime.
    fn time_columns(self) -> impl Iterator<Item = u16> {
        23..=25
    }

    fn widths(self) -> impl Iterator<Item = f64> {
        let extra: &[(&str, f64)] = match self {
            SheetKind::Paid => &PAID_COLUMNS,
            SheetKind::Unpaid => &UNPAID_COLUMNS,
        };
        COMMON_COLUMNS.iter().chain(extra).map(|(_, width)| *width)
    }
}

const COMMON_COLUMNS: [(&str, f64); 25] = [
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
];
const PAID_COLUMNS: [(&str, f64); 4] = [
    ("PaidTime", 19.0),
    ("CashAccount", 14.0),
    ("BonusAccount", 14.0),
    ("Coupon", 14.0),
];
const UNPAID_COLUMNS: [(&str, f64); 1] = [("CreateTime", 19.0)];

/// Display names from `enum_labels`, by kind and value.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    order_type: HashMap<i32, String>,
    charge_type: HashMap<i32, String>,
    pricing_unit: HashMap<i32, String>,
}

impl Labels {
    pub fn from_rows(rows: Vec<(String, i32, String)>) -> Self {
        let mut labels = Labels::default();
        for (kind, value, name) in rows {
            let map = match kind.as_str() {
                "order_type" => &mut labels.order_type,
                "charge_type" => &mut labels.charge_type,
                "pricing_unit" => &mut labels.pricing_unit,
                _ => continue,
            };
            map.insert(value, name);
        }
        labels
    }
}

/// How the workbook is written.
#[derive(Debug, Clone)]
pub struct WorkbookOptions {
    pub time_zone: Tz,
    /// Data rows per sheet before a continuation sheet starts.
    pub max_rows_per_sheet: u32,
    /// Zip compression, 1 (fast) to 9 (small).
    pub zip_level: u8,
}

struct Formats {
    header: Format,
    amount: Format,
    datetime: Format,
}

/// The sheets of one kind: finished ones, and the one being written.
struct SheetSeries {
    kind: SheetKind,
    sheets: Vec<Worksheet>,
    /// Data rows in the last sheet.
    rows_in_sheet: u32,
    total: u64,
}

/// Writes orders into the two sheet series; `save` assembles the file.
pub struct WorkbookWriter {
    workbook: Workbook,
    paid: SheetSeries,
    unpaid: SheetSeries,
    formats: Formats,
    labels: Labels,
    options: WorkbookOptions,
}

impl WorkbookWriter {
    /// A new workbook whose row data goes to temp files in `temp_dir`.
    pub fn new(
        temp_dir: &Path,
        labels: Labels,
        options: WorkbookOptions,
    ) -> Result<Self, XlsxError> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(temp_dir)?;
        workbook.use_zip_large_file(true);
        workbook.set_zip_compression_level(options.zip_level.clamp(1, 9));
        let formats = Formats {
            header: Format::new().set_bold(),
            amount: Format::new().set_num_format("#,##0.00######"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        };
        let mut writer = WorkbookWriter {
            workbook,
            paid: SheetSeries {
                kind: SheetKind::Paid,
                sheets: Vec::new(),
                rows_in_sheet: 0,
                total: 0,
            },
            unpaid: SheetSeries {
                kind: SheetKind::Unpaid,
                sheets: Vec::new(),
                rows_in_sheet: 0,
                total: 0,
            },
            formats,
            labels,
            options,
        };
        // Both sheets exist even when no order goes to them.
        writer.start_sheet(SheetKind::Paid)?;
        writer.start_sheet(SheetKind::Unpaid)?;
        Ok(writer)
    }

    /// Rows written so far: (paid, unpaid).
    pub fn counts(&self) -> (u64, u64) {
        (self.paid.total, self.unpaid.total)
    }

    fn series(&mut self, kind: SheetKind) -> &mut SheetSeries {
        match kind {
            SheetKind::Paid => &mut self.paid,
            SheetKind::Unpaid => &mut self.unpaid,
        }
    }

    fn start_sheet(&mut self, kind: SheetKind) -> Result<(), XlsxError> {
        let mut sheet = self.workbook.new_worksheet_with_constant_memory()?;
        let part = self.series(kind).sheets.len() + 1;
        sheet.set_name(kind.sheet_name(part))?;
        for (col, (header, width)) in kind.headers().into_iter().zip(kind.widths()).enumerate() {
            sheet.set_column_width(col as u16, width)?;
            sheet.write_string_with_format(0, col as u16, header, &self.formats.header)?;
        }
        // Amounts and times take their number format from their column:
        // rust_xlsxwriter gives a cell written without a format its column's
        // format, where a format per cell cost a hash of the whole Format for
        // each of them (about a tenth of a 1M export's CPU, perf).
        for col in kind.amount_columns() {
            sheet.set_column_format(col, &self.formats.amount)?;
        }
        for col in kind.time_columns() {
            sheet.set_column_format(col, &self.formats.datetime)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        let series = self.series(kind);
        series.sheets.push(sheet);
        series.rows_in_sheet = 0;
        Ok(())
    }

    /// Writes one order to its sheet; revoked orders (or any other status)
    /// are in neither.
    pub fn write(&mut self, order: &OrderRow) -> Result<(), XlsxError> {
        let kind = match OrderStatus::from_code(order.status) {
            Some(OrderStatus::Paid) => SheetKind::Paid,
            Some(OrderStatus::Unpaid) => SheetKind::Unpaid,
            Some(OrderStatus::Revoked) | None => return Ok(()),
        };
        if self.series(kind).rows_in_sheet >= self.options.max_rows_per_sheet {
            self.start_sheet(kind)?;
        }
        let series = match kind {
            SheetKind::Paid => &mut self.paid,
            SheetKind::Unpaid => &mut self.unpaid,
        };
        series.rows_in_sheet += 1;
        series.total += 1;
        let row = series.rows_in_sheet;
        let sheet = series
            .sheets
            .last_mut()
            .ok_or(XlsxError::ParameterError("no sheet".into()))?;
        let cells = RowWriter {
            sheet,
            row,
            tz: self.options.time_zone,
        };
        cells.write(order, kind, &self.labels)
    }

    /// Adds the autofilters and writes the file (a zip, written front to
    /// back) into `out`.
    pub fn save<W: std::io::Write + Send>(mut self, out: W) -> Result<(), XlsxError> {
        for series in [&mut self.paid, &mut self.unpaid] {
            let last_col = (series.kind.headers().len() - 1) as u16;
            let count = series.sheets.len();
            for (i, sheet) in series.sheets.iter_mut().enumerate() {
                let rows = if i + 1 == count {
                    series.rows_in_sheet
                } else {
                    self.options.max_rows_per_sheet
                };
                sheet.autofilter(0, 0, rows.max(1), last_col)?;
            }
        }
        for sheet in self
            .paid
            .sheets
            .drain(..)
            .chain(self.unpaid.sheets.drain(..))
        {
            self.workbook.push_worksheet(sheet);
        }
        self.workbook.save_to_writer(out)
    }
}

/// The cells of one data row.
struct RowWriter<'a> {
    sheet: &'a mut Worksheet,
    row: u32,
    tz: Tz,
}

impl RowWriter<'_> {
    fn write(mut self, o: &OrderRow, kind: SheetKind, labels: &Labels) -> Result<(), XlsxError> {
        self.text(0, &o.order_no)?;
        self.text(
            1,
            if kind == SheetKind::Paid {
                "Paid"
            } else {
                "Unpaid"
            },
        )?;
        self.code(2, o.order_type, &labels.order_type)?;
        self.code(4, o.charge_type, &labels.charge_type)?;
        self.text(6, &o.product_code)?;
        self.text(7, &o.model_id)?;
        self.text(8, &o.model_name)?;
        self.text(9, &o.resource_id)?;
        self.text(10, &o.region)?;
        self.sheet
            .write_number(self.row, 11, o.organization_id as f64)?;
        self.text(12, &o.organization_name)?;
        self.text(13, &o.user_email)?;
        self.text(14, &o.pricing_sku)?;
        self.code(15, o.pricing_unit, &labels.pricing_unit)?;
        for (col, amount) in [
            (17, o.quantity),
            (18, o.list_price),
            (19, o.discount_price),
            (20, o.original_price),
            (21, o.total_price),
        ] {
            self.amount(col, amount)?;
        }
        self.text(22, &o.currency)?;
        self.time(23, o.start_time)?;
        self.time(24, o.end_time)?;
        match kind {
            SheetKind::Paid => {
                if let Some(paid) = o.paid_time {
                    self.time(25, paid)?;
                }
                self.amount(26, o.cash_account)?;
                self.amount(27, o.bonus_account)?;
                self.amount(28, o.coupon)?;
            }
            SheetKind::Unpaid => self.time(25, o.created_at)?,
        }
        Ok(())
    }

    fn text(&mut self, col: u16, value: &str) -> Result<(), XlsxError> {
        self.sheet
            .write_string(self.row, col, excel_text(value).into_owned())
            .map(drop)
    }

    /// The code, and its display name in the next column when one exists.
    fn code(
        &mut self,
        col: u16,
        value: i32,
        labels: &HashMap<i32, String>,
    ) -> Result<(), XlsxError> {
        self.sheet.write_number(self.row, col, f64::from(value))?;
        match labels.get(&value) {
            Some(name) => self.text(col + 1, name),
            None => Ok(()),
        }
    }

    /// An amount; its format is its column's (see `start_sheet`).
    fn amount(&mut self, col: u16, value: f64) -> Result<(), XlsxError> {
        self.sheet.write_number(self.row, col, value).map(drop)
    }

    /// A time as an Excel serial; its format is its column's.
    fn time(&mut self, col: u16, value: DateTime<Utc>) -> Result<(), XlsxError> {
        let serial = excel_serial(value, self.tz);
        self.sheet.write_number(self.row, col, serial).map(drop)
    }
}

/// `value` cut to what an Excel cell holds.
pub fn excel_text(value: &str) -> Cow<'_, str> {
    // UTF-16 length never exceeds UTF-8 length: short strings need no count.
    if value.len() <= EXCEL_MAX_TEXT {
        return Cow::Borrowed(value);
    }
    let mut units = 0;
    let mut end = 0;
    for (i, c) in value.char_indices() {
        units += c.len_utf16();
        if units > EXCEL_MAX_TEXT {
            break;
        }
        end = i + c.len_utf8();
    }
    Cow::Borrowed(&value[..end])
}

/// Excel's serial date of `value` as wall-clock time in `tz` (days since
/// 1899-12-30, the fraction being the time of day).
pub fn excel_serial(value: DateTime<Utc>, tz: Tz) -> f64 {
    let local = value.with_timezone(&tz).naive_local().and_utc();
    let seconds = local.timestamp() as f64 + f64::from(local.timestamp_subsec_micros()) / 1e6;
    seconds / 86_400.0 + 25_569.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_the_excel_limit_on_a_character_boundary() {
        let long = "é".repeat(40_000);
        let cut = excel_text(&long);
        assert_eq!(cut.chars().count(), EXCEL_MAX_TEXT);
        let emoji = "😀".repeat(20_000); // two UTF-16 units each
        assert_eq!(excel_text(&emoji).chars().count(), EXCEL_MAX_TEXT / 2);
        assert_eq!(excel_text("short"), "short");
    }

    #[test]
    fn serial_dates_follow_the_time_zone() {
        let t = DateTime::from_timestamp(1_719_792_000, 0).expect("time"); // 2024-07-01 00:00 UTC
        assert_eq!(excel_serial(t, Tz::UTC), 45_474.0);
        let shanghai = excel_serial(t, chrono_tz::Asia::Shanghai);
        assert!((shanghai - (45_474.0 + 8.0 / 24.0)).abs() < 1e-9);
    }

    #[test]
    fn continuation_sheets_are_numbered_from_two() {
        assert_eq!(SheetKind::Paid.sheet_name(1), "Paid Orders");
        assert_eq!(SheetKind::Unpaid.sheet_name(3), "Unpaid Orders (3)");
        assert_eq!(SheetKind::Paid.headers().len(), 29);
        assert_eq!(SheetKind::Unpaid.headers().last(), Some(&"CreateTime"));
    }
}
