//! An order as one line of Postgres' `COPY ... FROM STDIN` text format:
//! columns as in `COPY_COLUMNS`, text escaped, times in UTC.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::orders::Order;

impl Order {
    /// Appends the order as one line of COPY text format, columns as in
    /// [`COPY_COLUMNS`](super::orders::COPY_COLUMNS).
    pub fn write_copy_row(&self, out: &mut String) -> fmt::Result {
        push_text(out, &self.order_no);
        write!(out, "\t{}\t{}\t", self.company_id, self.organization_id)?;
        push_text(out, &self.organization_name);
        out.push('\t');
        push_text(out, &self.user_email);
        write!(
            out,
            "\t{}\t{}\t{}\t",
            self.status.code(),
            self.order_type,
            self.charge_type
        )?;
        for text in [
            self.product_code,
            self.model_id,
            self.model_name,
            &self.resource_id,
            self.region,
            self.pricing_sku,
        ] {
            push_text(out, text);
            out.push('\t');
        }
        write!(out, "{}", self.pricing_unit)?;
        for amount in [
            self.quantity,
            self.list_price,
            self.discount_price,
            self.original_price,
            self.total_price,
            self.cash_account,
            self.bonus_account,
            self.coupon,
        ] {
            write!(out, "\t{amount}")?;
        }
        out.push('\t');
        push_text(out, self.currency);
        for time in [
            Some(self.start_time),
            Some(self.end_time),
            self.paid_time,
            Some(self.created_at),
        ] {
            out.push('\t');
            match time {
                Some(time) => write_timestamp(out, time)?,
                None => out.push_str("\\N"),
            }
        }
        out.push('\n');
        Ok(())
    }
}

/// Appends `text` with COPY's text-format escapes.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// `2026-11-26 15:00:00+00`: explicit UTC, whatever the session's time zone.
fn write_timestamp(out: &mut String, time: DateTime<Utc>) -> fmt::Result {
    write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_copy() {
        let mut out = String::new();
        push_text(&mut out, "a\tb\\c\nd");
        assert_eq!(out, "a\\tb\\\\c\\nd");
    }
}
