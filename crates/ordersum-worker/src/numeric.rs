//! Amounts: Postgres `numeric` read as the nearest `f64`, decoded from the
//! binary wire format here rather than cast with `::float8` in the query.
//!
//! Postgres casts numeric to float8 by printing the number and parsing the
//! text, about 0.2 µs a value: with the eight amounts of an order, more than
//! half the CPU of a small summary's page query (EXPLAIN ANALYZE on the
//! bench's data: 4.0 ms with the casts, 1.5 ms without). Decoding gives the
//! same double: the exact decimal the numeric holds, correctly rounded.

use sqlx::Postgres;
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef};

/// `numeric`'s type OID (pg_type.dat).
const NUMERIC_OID: Oid = Oid(1700);

/// Sign words of the binary format (numeric.c).
const SIGN_POSITIVE: u16 = 0x0000;
const SIGN_NEGATIVE: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_INFINITY: u16 = 0xD000;
const SIGN_NEGATIVE_INFINITY: u16 = 0xF000;

/// Integers up to this are exact in an `f64`.
const EXACT_INTEGER: u64 = 1 << 53;

/// A `numeric` value as the nearest `f64` (what `numeric::float8` gives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount(pub f64);

impl sqlx::Type<Postgres> for Amount {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC_OID)
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(NUMERIC_OID)
    }
}

impl Decode<'_, Postgres> for Amount {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let number = match value.format() {
            PgValueFormat::Binary => from_binary(value.as_bytes()?)?,
            PgValueFormat::Text => from_text(value.as_str()?)?,
        };
        Ok(Amount(number))
    }
}

/// The text form (`numeric_out`): a decimal, `NaN`, `Infinity` or
/// `-Infinity`, all of which Rust parses as Postgres' `float8in` does.
fn from_text(text: &str) -> Result<f64, BoxDynError> {
    Ok(text.parse()?)
}

/// The binary form (`numeric_send`): `ndigits`, `weight`, `sign` and
/// `dscale` as 16-bit big-endian words, then `ndigits` base-10 000 digits,
/// the first worth 10 000^`weight`.
fn from_binary(bytes: &[u8]) -> Result<f64, BoxDynError> {
    let word = |i: usize| -> Result<u16, BoxDynError> {
        bytes
            .get(2 * i..2 * i + 2)
            .map(be16)
            .ok_or_else(|| "numeric: value cut short".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let negative = match word(2)? {
        SIGN_POSITIVE => false,
        SIGN_NEGATIVE => true,
        SIGN_NAN => return Ok(f64::NAN),
        SIGN_INFINITY => return Ok(f64::INFINITY),
        SIGN_NEGATIVE_INFINITY => return Ok(f64::NEG_INFINITY),
        other => return Err(format!("numeric: unknown sign word {other:#06x}").into()),
    };
    if bytes.len() != 8 + 2 * ndigits {
        return Err(format!("numeric: {} bytes for {ndigits} digits", bytes.len()).into());
    }
    let digits = Digits(&bytes[8..]);
    if let Some(digit) = digits.iter().find(|&d| d >= 10_000) {
        return Err(format!("numeric: digit {digit} out of range").into());
    }
    // The last digit is worth 10 000^(weight - ndigits + 1).
    let exponent = 4 * (weight + 1 - ndigits as i32);
    let magnitude = match exact(digits, exponent) {
        Some(magnitude) => magnitude,
        None => parsed(digits, exponent)?,
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// A big-endian 16-bit word of the binary form.
fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// The base-10 000 digits, as big-endian words (no copy: a page holds
/// thousands of amounts).
#[derive(Clone, Copy)]
struct Digits<'a>(&'a [u8]);

impl Digits<'_> {
    fn len(self) -> usize {
        self.0.len() / 2
    }

    fn iter(self) -> impl Iterator<Item = u16> {
        self.0.chunks_exact(2).map(be16)
    }
}

/// Clinger's fast path: the digits as an integer below 2^53 and a power of
/// ten up to 10^22 (`exponent`, the last digit's), both exact in an `f64`,
/// so one multiplication or division rounds correctly. `None` when the
/// number is outside it.
fn exact(digits: Digits<'_>, exponent: i32) -> Option<f64> {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let mut mantissa: u64 = 0;
    for digit in digits.iter() {
        mantissa = mantissa.checked_mul(10_000)? + u64::from(digit);
        if mantissa >= EXACT_INTEGER {
            return None;
        }
    }
    let power = *POWERS.get(exponent.unsigned_abs() as usize)?;
    Some(if exponent >= 0 {
        mantissa as f64 * power
    } else {
        mantissa as f64 / power
    })
}

/// Any other number: written out in scientific notation and parsed (Rust's
/// parser rounds correctly, as `float8in`'s `strtod` does).
fn parsed(digits: Digits<'_>, exponent: i32) -> Result<f64, BoxDynError> {
    use std::fmt::Write;
    let mut text = String::with_capacity(4 * digits.len() + 8);
    for digit in digits.iter() {
        let _ = write!(text, "{digit:04}");
    }
    let _ = write!(text, "e{exponent}");
    Ok(text.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary form of `weight`, `sign` and `digits` (dscale 8).
    fn encoded(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, 8] {
            bytes.extend(word.to_be_bytes());
        }
        for digit in digits {
            bytes.extend(digit.to_be_bytes());
        }
        bytes
    }

    /// The double nearest the decimal `text` (Rust rounds correctly).
    fn exactly(text: &str) -> f64 {
        text.parse().expect("a decimal")
    }

    fn decoded(weight: i16, sign: u16, digits: &[u16]) -> f64 {
        from_binary(&encoded(weight, sign, digits)).expect("a valid numeric")
    }

    #[test]
    fn decimals_decode_to_the_nearest_double() {
        // 1234.5678: digits 1234 | 5678, the first worth 10 000^0.
        assert_eq!(decoded(0, SIGN_POSITIVE, &[1234, 5678]), 1234.5678);
        // 0.1 is 1000 × 10 000^-1.
        assert_eq!(decoded(-1, SIGN_POSITIVE, &[1000]), 0.1);
        // -0.00000001 (numeric(20,8)'s smallest step).
        assert_eq!(decoded(-2, SIGN_NEGATIVE, &[1]), -1e-8);
        // 123 456 789 012.34567891: 15 significant digits, past 2^53 as an
        // integer of 20 digits, so parsed.
        assert_eq!(
            decoded(2, SIGN_POSITIVE, &[1234, 5678, 9012, 3456, 7891]),
            exactly("123456789012.34567891")
        );
        // numeric(30,8)'s largest.
        let nines = [99, 9999, 9999, 9999, 9999, 9999, 9999, 9999];
        assert_eq!(
            decoded(5, SIGN_POSITIVE, &nines),
            exactly("9999999999999999999999.99999999")
        );
        // 10^24: no digits but one, a high weight.
        assert_eq!(decoded(6, SIGN_POSITIVE, &[1]), 1e24);
        assert_eq!(decoded(0, SIGN_POSITIVE, &[]), 0.0);
    }

    #[test]
    fn special_values_and_text_follow_postgres() {
        assert!(decoded(0, SIGN_NAN, &[]).is_nan());
        assert_eq!(decoded(0, SIGN_INFINITY, &[]), f64::INFINITY);
        assert_eq!(decoded(0, SIGN_NEGATIVE_INFINITY, &[]), f64::NEG_INFINITY);
        assert_eq!(from_text("-12.50000000").expect("text"), -12.5);
        assert_eq!(from_text("-Infinity").expect("text"), f64::NEG_INFINITY);
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert!(from_binary(&[0, 1]).is_err());
        let mut short = encoded(0, SIGN_POSITIVE, &[1, 2]);
        short.pop();
        assert!(from_binary(&short).is_err());
        assert!(from_binary(&encoded(0, SIGN_POSITIVE, &[10_000])).is_err());
        assert!(from_binary(&encoded(0, 0x1234, &[1])).is_err());
    }
}
