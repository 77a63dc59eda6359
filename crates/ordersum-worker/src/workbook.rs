//! The workbook: a *Paid Orders* and an *Unpaid Orders* sheet written in
//! constant memory (rows stream to temp files), continued in `Paid Orders
//! (2)`, … when a sheet is full, each with a bold, frozen, filtered header.
//! What a cell may hold (text cut to Excel's limit, times as serial dates
//! in the request's zone) is in `cells`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ordersum_model::OrderStatus;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

mod cells;

use crate::columns::{self, AMOUNT_FORMAT, CODE_SLOTS, CODES, COLUMNS, Kind, Placed, TIME_FORMAT};
use crate::orders::OrderRow;
pub use cells::{excel_serial, excel_text};

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

    /// The sheet an order of `status` goes to: revoked orders are in
    /// neither.
    pub fn of(status: OrderStatus) -> Option<SheetKind> {
        match status {
            OrderStatus::Paid => Some(SheetKind::Paid),
            OrderStatus::Unpaid => Some(SheetKind::Unpaid),
            OrderStatus::Revoked => None,
        }
    }

    /// The `part`-th sheet's name: `Paid Orders`, `Paid Orders (2)`, …
    pub fn sheet_name(self, part: usize) -> String {
        match part {
            0 | 1 => self.base_name().to_owned(),
            n => format!("{} ({n})", self.base_name()),
        }
    }

    /// Column headers (docs/api.md#the-workbook), enum names beside their codes: the
    /// columns of [`COLUMNS`] this sheet shows.
    pub fn headers(self) -> Vec<&'static str> {
        columns::headers(self)
            .into_iter()
            .map(|(header, _)| header)
            .collect()
    }
}

/// Display names from `enum_labels`, for each code column of [`COLUMNS`]
/// (by its index among them), by value.
#[derive(Debug, Clone)]
pub struct Labels {
    by_code: [HashMap<i64, String>; CODES],
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            by_code: std::array::from_fn(|_| HashMap::new()),
        }
    }
}

impl Labels {
    /// `(kind, value, name)` rows; kinds no code column names are ignored.
    pub fn from_rows(rows: Vec<(String, i32, String)>) -> Self {
        let mut labels = Labels::default();
        for (kind, value, name) in rows {
            for (index, column) in COLUMNS.iter().enumerate() {
                if matches!(column.kind, Kind::Code { labels: of, .. } if of == kind) {
                    labels.by_code[CODE_SLOTS[index]].insert(i64::from(value), name.clone());
                }
            }
        }
        labels
    }

    /// The labels of the code column at `index` in [`COLUMNS`].
    fn of(&self, index: usize) -> &HashMap<i64, String> {
        &self.by_code[CODE_SLOTS[index]]
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
    /// The columns its sheets show.
    layout: Vec<Placed>,
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
            amount: Format::new().set_num_format(AMOUNT_FORMAT),
            datetime: Format::new().set_num_format(TIME_FORMAT),
        };
        let mut writer = WorkbookWriter {
            workbook,
            paid: SheetSeries {
                kind: SheetKind::Paid,
                layout: columns::layout(SheetKind::Paid),
                sheets: Vec::new(),
                rows_in_sheet: 0,
                total: 0,
            },
            unpaid: SheetSeries {
                kind: SheetKind::Unpaid,
                layout: columns::layout(SheetKind::Unpaid),
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
        for (col, (header, width)) in columns::headers(kind).into_iter().enumerate() {
            sheet.set_column_width(col as u16, width)?;
            sheet.write_string_with_format(0, col as u16, header, &self.formats.header)?;
        }
        // Amounts and times take their number format from their column:
        // rust_xlsxwriter gives a cell written without a format its column's
        // format, where a format per cell cost a hash of the whole Format for
        // each of them (about a tenth of a 1M export's CPU, perf).
        let layout = match kind {
            SheetKind::Paid => &self.paid.layout,
            SheetKind::Unpaid => &self.unpaid.layout,
        };
        for placed in layout {
            let format = match placed.column.kind {
                Kind::Amount => &self.formats.amount,
                Kind::Time | Kind::OptionalTime => &self.formats.datetime,
                _ => continue,
            };
            sheet.set_column_format(placed.col, format)?;
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
        let Some(status) = order.status() else {
            return Ok(());
        };
        let Some(kind) = SheetKind::of(status) else {
            return Ok(());
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
        cells.write(order, status.name(), &series.layout, &self.labels)
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
    /// Each column of `layout` in turn: a `match` on its kind, no call
    /// through a pointer, no allocation but the text's.
    fn write(
        mut self,
        o: &OrderRow,
        status: &str,
        layout: &[Placed],
        labels: &Labels,
    ) -> Result<(), XlsxError> {
        for &Placed { index, col, column } in layout {
            match column.kind {
                Kind::Text => self.text(col, o.text(index))?,
                Kind::Status => self.text(col, status)?,
                Kind::Code { .. } => self.code(col, o.int(index), labels.of(index))?,
                Kind::Integer => {
                    self.sheet
                        .write_number(self.row, col, o.int(index) as f64)?;
                }
                Kind::Amount => self.amount(col, o.amount(index))?,
                Kind::Time | Kind::OptionalTime => {
                    if let Some(time) = o.time(index) {
                        self.time(col, time)?;
                    }
                }
            }
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
        value: i64,
        labels: &HashMap<i64, String>,
    ) -> Result<(), XlsxError> {
        self.sheet.write_number(self.row, col, value as f64)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_sheets_are_numbered_from_two() {
        assert_eq!(SheetKind::Paid.sheet_name(1), "Paid Orders");
        assert_eq!(SheetKind::Unpaid.sheet_name(3), "Unpaid Orders (3)");
        assert_eq!(SheetKind::Paid.headers().len(), 29);
        assert_eq!(SheetKind::Unpaid.headers().last(), Some(&"CreateTime"));
    }
}
