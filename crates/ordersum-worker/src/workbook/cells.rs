//! Values as an Excel cell holds them: text cut to 32 767 UTF-16 units on a
//! character boundary, and times as serial dates of the wall-clock time in
//! the request's zone.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::EXCEL_MAX_TEXT;

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
}
