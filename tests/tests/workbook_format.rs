//! The workbook's presentation, read from its XML (the part calamine does
//! not show): a bold, frozen, filtered header on each sheet; amounts shown
//! with the amount number format and times with a date-time format; and a
//! code whose label is missing from `enum_labels`: the code is written, its
//! name cell is left out (no cell at all), the columns after it stay put.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Cursor, Read};

use chrono::Utc;
use ordersum_tests::oracle::{COMPANY, Cell, fetch, read_workbook, run_window_summary};
use ordersum_tests::{seed, spawn_app_with, spawn_worker, test_settings};
use sqlx::PgPool;

/// The formats docs/api.md promises: amounts with 2 to 8 decimals, times as
/// date and time.
const AMOUNT_FORMAT: &str = "#,##0.00######";
const TIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss";
const AMOUNT_HEADERS: [&str; 8] = [
    "Quantity",
    "ListPrice",
    "DiscountPrice",
    "OriginalPrice",
    "OrderTotalPrice",
    "CashAccount",
    "BonusAccount",
    "Coupon",
];
const TIME_HEADERS: [&str; 4] = ["StartTime", "EndTime", "PaidTime", "CreateTime"];

/// The files of an xlsx, by name.
fn unzip(bytes: &[u8]) -> HashMap<String, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut files = HashMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut text = String::new();
        if file.read_to_string(&mut text).is_ok() {
            files.insert(file.name().unwrap().into_owned(), text);
        }
    }
    files
}

/// The start tags `<tag …>` (or `<tag …/>`) in `xml`, in order.
fn start_tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let mut tags = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        if after.starts_with([' ', '>', '/']) {
            let end = after.find('>').unwrap();
            tags.push(&rest[at..at + open.len() + end + 1]);
        }
        rest = after;
    }
    tags
}

/// The elements `<tag …>…</tag>` or `<tag …/>` in `xml`, whole, in order.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    for start in start_tags(xml, tag) {
        let at = rest.find(start).unwrap();
        let from = &rest[at..];
        let len = if start.ends_with("/>") {
            start.len()
        } else {
            from.find(&close).unwrap() + close.len()
        };
        out.push(&from[..len]);
        rest = &from[len..];
    }
    out
}

/// The text between `<tag…>` and `</tag>` (the first one).
fn section<'a>(xml: &'a str, tag: &str) -> &'a str {
    elements(xml, tag).first().copied().unwrap_or("")
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"').unwrap();
    Some(&tag[at..at + len])
}

/// `A`, `B`, … `Z`, `AA`, … for a zero-based column.
fn column_letters(mut col: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap()
}

/// What `xl/styles.xml` says of a cell style id.
#[derive(Debug)]
struct Style {
    bold: bool,
    /// The format code of its number format ("General" for 0).
    number_format: String,
}

fn styles(xml: &str) -> Vec<Style> {
    let formats: HashMap<&str, &str> = start_tags(section(xml, "numFmts"), "numFmt")
        .into_iter()
        .map(|tag| {
            (
                attr(tag, "numFmtId").unwrap(),
                attr(tag, "formatCode").unwrap(),
            )
        })
        .collect();
    let fonts: Vec<bool> = elements(section(xml, "fonts"), "font")
        .into_iter()
        .map(|font| font.contains("<b/>"))
        .collect();
    start_tags(section(xml, "cellXfs"), "xf")
        .into_iter()
        .map(|xf| {
            let font: usize = attr(xf, "fontId").unwrap_or("0").parse().unwrap();
            let id = attr(xf, "numFmtId").unwrap_or("0");
            let number_format = match id {
                "0" => "General".to_owned(),
                custom => formats
                    .get(custom)
                    .map_or(format!("built-in {custom}"), |code| (*code).to_owned()),
            };
            Style {
                bold: fonts[font],
                number_format,
            }
        })
        .collect()
}

/// A sheet's cells by reference (`B7`): its start tag, style and all.
fn cells(sheet: &str) -> HashMap<String, &str> {
    start_tags(sheet, "c")
        .into_iter()
        .map(|tag| (attr(tag, "r").unwrap().to_owned(), tag))
        .collect()
}

fn style_of<'s>(styles: &'s [Style], cell: &str) -> &'s Style {
    let id: usize = attr(cell, "s").unwrap_or("0").parse().unwrap();
    &styles[id]
}

/// The order numbers of one paid and one unpaid order, given codes with no
/// label: order type 99 on the paid one, pricing unit 77 on the unpaid one.
async fn unlabel_two_orders(pool: &PgPool) -> (String, String) {
    let mut order_nos = Vec::new();
    for (status, set) in [(2, "order_type = 99"), (1, "pricing_unit = 77")] {
        let sql = format!(
            "UPDATE orders SET {set} WHERE id = (SELECT min(id) FROM orders \
             WHERE company_id = $1 AND status = $2) RETURNING order_no"
        );
        let order_no: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(COMPANY)
            .bind(status as i16)
            .fetch_one(pool)
            .await
            .unwrap();
        order_nos.push(order_no);
    }
    let labelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enum_labels WHERE (kind, value) IN \
         (('order_type', 99), ('pricing_unit', 77))",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(labelled, 0, "the codes must have no label");
    (order_nos.remove(0), order_nos.remove(0))
}

#[sqlx::test(migrations = "../migrations")]
async fn header_is_bold_frozen_filtered_and_numbers_carry_their_formats(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    seed(&app.pool, COMPANY, 400, 30, 7).await;
    let (paid_no, unpaid_no) = unlabel_two_orders(&app.pool).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |s| s.page_size = 53).await;
    let now = Utc::now().timestamp();
    let job = run_window_summary(&app, &key, (now - 31 * 86_400, now + 86_400)).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    let url = job["Data"]["DownloadURL"].as_str().unwrap();
    let bytes = fetch(&app, url).await.bytes().await.unwrap().to_vec();
    worker.stop().await;

    let files = unzip(&bytes);
    let values = read_workbook(bytes);
    let styles = styles(&files["xl/styles.xml"]);
    let workbook_sheets: Vec<&str> = start_tags(&files["xl/workbook.xml"], "sheet")
        .into_iter()
        .map(|tag| attr(tag, "name").unwrap())
        .collect();
    assert_eq!(workbook_sheets, ["Paid Orders", "Unpaid Orders"]);

    for (n, (name, rows)) in values.iter().enumerate() {
        let xml = &files[&format!("xl/worksheets/sheet{}.xml", n + 1)];
        let headers: Vec<&str> = rows[0]
            .iter()
            .map(|cell| match cell {
                Cell::Text(text) => text.as_str(),
                other => panic!("{name}: header {other:?}"),
            })
            .collect();
        let last = column_letters(headers.len() - 1);
        assert!(rows.len() > 10, "{name}: {} rows", rows.len());

        // Frozen under the header, filtered over header and data.
        let panes = start_tags(xml, "pane");
        assert_eq!(panes.len(), 1, "{name}: {panes:?}");
        assert_eq!(attr(panes[0], "state"), Some("frozen"), "{name}");
        assert_eq!(attr(panes[0], "ySplit"), Some("1"), "{name}");
        assert_eq!(attr(panes[0], "topLeftCell"), Some("A2"), "{name}");
        assert_eq!(attr(panes[0], "xSplit"), None, "{name}: no frozen column");
        let filters = start_tags(xml, "autoFilter");
        assert_eq!(filters.len(), 1, "{name}");
        let range = format!("A1:{last}{}", rows.len());
        assert_eq!(attr(filters[0], "ref"), Some(range.as_str()), "{name}");

        let cells = cells(xml);
        for (col, header) in headers.iter().enumerate() {
            let reference = format!("{}1", column_letters(col));
            let style = style_of(&styles, cells[&reference]);
            assert!(style.bold, "{name} {reference} {header}: {style:?}");
        }
        for row in 2..=rows.len() {
            assert!(
                !style_of(&styles, cells[&format!("A{row}")]).bold,
                "{name}: data row {row} is bold"
            );
            for (col, header) in headers.iter().enumerate() {
                let reference = format!("{}{row}", column_letters(col));
                let Some(cell) = cells.get(&reference) else {
                    continue;
                };
                let format = &style_of(&styles, cell).number_format;
                if AMOUNT_HEADERS.contains(header) {
                    assert_eq!(format, AMOUNT_FORMAT, "{name} {reference} {header}");
                } else if TIME_HEADERS.contains(header) {
                    assert_eq!(format, TIME_FORMAT, "{name} {reference} {header}");
                } else {
                    assert_eq!(format, "General", "{name} {reference} {header}");
                }
            }
        }

        // A code without a label: the code, then no name cell at all.
        let (order_no, code_header, code) = match name.as_str() {
            "Paid Orders" => (&paid_no, "OrderType", 99.0),
            _ => (&unpaid_no, "PricingUnit", 77.0),
        };
        let code_col = headers.iter().position(|h| *h == code_header).unwrap();
        assert_eq!(headers[code_col + 1], format!("{code_header}Name"));
        let row = rows
            .iter()
            .position(|row| row[0] == Cell::Text(order_no.clone()))
            .unwrap();
        let cells_row = &rows[row];
        assert_eq!(cells_row[code_col], Cell::Number(code), "{name}");
        assert_eq!(
            cells_row.get(code_col + 1).cloned().unwrap_or(Cell::Empty),
            Cell::Empty,
            "{name}: {code_header}Name of a code with no label"
        );
        let name_cell = format!("{}{}", column_letters(code_col + 1), row + 1);
        assert!(
            !cells.contains_key(&name_cell),
            "{name}: {name_cell} is written: {:?}",
            cells.get(&name_cell)
        );
        // Every other row of the sheet has a name beside its code, and the
        // columns after the missing name hold what they hold elsewhere.
        for (i, other) in rows.iter().enumerate().skip(1) {
            if i != row {
                assert!(
                    matches!(other[code_col + 1], Cell::Text(_)),
                    "{name} row {}: {:?}",
                    i + 1,
                    other[code_col + 1]
                );
            }
        }
        let after = code_col + 2;
        assert!(
            matches!(cells_row[after], Cell::Text(_) | Cell::Number(_)),
            "{name}: {} after a missing name: {:?}",
            headers[after],
            cells_row[after]
        );
    }
}
