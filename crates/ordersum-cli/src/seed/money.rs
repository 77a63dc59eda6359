//! Exact decimal amounts for the seeder: integers scaled by 10^8, the scale of
//! the `orders` money columns, so no float ever touches a price.

use std::fmt;
use std::ops::{Add, Sub};

/// A decimal with exactly 8 fractional digits, stored as `value * 10^8`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fixed8(i128);

impl Fixed8 {
    /// 10^8: one unit.
    pub const SCALE: i128 = 100_000_000;
    pub const ZERO: Fixed8 = Fixed8(0);

    /// The amount whose scaled representation is `raw` (`from_raw(1)` = 0.00000001).
    pub const fn from_raw(raw: i128) -> Self {
        Fixed8(raw)
    }

    /// `units / 10^decimals`, e.g. `from_decimal(125, 2)` = 1.25. `decimals` ≤ 8.
    pub const fn from_decimal(units: i64, decimals: u32) -> Self {
        Fixed8(units as i128 * 10i128.pow(8 - decimals))
    }

    /// `self * other`, rounded half away from zero to 8 decimals (as Postgres'
    /// `round` does).
    pub fn mul_round(self, other: Fixed8) -> Fixed8 {
        Fixed8(div_round(self.0 * other.0, Self::SCALE))
    }

    /// `self * numerator / denominator`, rounded half away from zero.
    pub fn mul_ratio(self, numerator: i128, denominator: i128) -> Fixed8 {
        Fixed8(div_round(self.0 * numerator, denominator))
    }
}

/// `n / d` rounded half away from zero; `d` > 0.
fn div_round(n: i128, d: i128) -> i128 {
    let half = d / 2;
    if n >= 0 {
        (n + half) / d
    } else {
        (n - half) / d
    }
}

impl Add for Fixed8 {
    type Output = Fixed8;
    fn add(self, rhs: Fixed8) -> Fixed8 {
        Fixed8(self.0 + rhs.0)
    }
}

impl Sub for Fixed8 {
    type Output = Fixed8;
    fn sub(self, rhs: Fixed8) -> Fixed8 {
        Fixed8(self.0 - rhs.0)
    }
}

/// Plain decimal text, trailing fractional zeros dropped: `12.5`, `0.00000001`, `3`.
impl fmt::Display for Fixed8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = Self::SCALE.unsigned_abs();
        let (int, mut frac) = (abs / scale, abs % scale);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let mut digits = 8;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{sign}{int}.{frac:0digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_without_trailing_zeros() {
        assert_eq!(Fixed8::from_decimal(125, 2).to_string(), "1.25");
        assert_eq!(Fixed8::from_decimal(3, 0).to_string(), "3");
        assert_eq!(Fixed8::from_raw(1).to_string(), "0.00000001");
        assert_eq!(Fixed8::from_raw(-150_000_000).to_string(), "-1.5");
        assert_eq!(Fixed8::ZERO.to_string(), "0");
        assert_eq!(Fixed8::from_raw(1_000_000_010).to_string(), "10.0000001");
    }

    #[test]
    fn multiplication_rounds_half_away_from_zero() {
        // 0.00000001 * 0.5 = 0.000000005 → 0.00000001
        let half = Fixed8::from_decimal(5, 1);
        assert_eq!(Fixed8::from_raw(1).mul_round(half), Fixed8::from_raw(1));
        assert_eq!(Fixed8::from_raw(-1).mul_round(half), Fixed8::from_raw(-1));
        // 0.00000001 * 0.4 → 0
        assert_eq!(
            Fixed8::from_raw(1).mul_round(Fixed8::from_decimal(4, 1)),
            Fixed8::ZERO
        );
        // 1.23456789 * 2.5 = 3.086419725 → 3.08641973
        let product = Fixed8::from_decimal(123_456_789, 8).mul_round(Fixed8::from_decimal(25, 1));
        assert_eq!(product.to_string(), "3.08641973");
    }

    #[test]
    fn ratio_rounds() {
        assert_eq!(Fixed8::from_raw(10).mul_ratio(1, 3), Fixed8::from_raw(3));
        assert_eq!(Fixed8::from_raw(10).mul_ratio(1, 4), Fixed8::from_raw(3)); // 2.5 → 3
    }
}
