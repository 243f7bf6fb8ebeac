//! Amounts in `DECIMAL(38,12)` columns, exactly or not at all, and the scales that
//! let them read back as the same `Decimal` text.
//!
//! A `Decimal` is a 96-bit mantissa and a scale of 0 to 28. In a `DECIMAL(38,12)`
//! column it is the mantissa rescaled to 12 places: `0.5` is stored as
//! `500000000000`. That is exact when the amount has at most 12 places (or more
//! whose extra digits are zeros) and fewer than 27 integer digits; any other
//! amount is refused, never rounded. The receipt's own scale (`0.5` has 1,
//! `0.500000000000` has 12) goes to a separate column, so that reading back gives
//! the same text the JSONL ledger holds.

use super::schema::{MONEY_SCALE, SCALE_BITS};
use rust_decimal::Decimal;

/// 10ⁿ for n up to 38.
fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

/// The unscaled `DECIMAL(38,12)` value of `d` and `d`'s own scale, or `None` when
/// it cannot be stored exactly.
pub(crate) fn to_money(d: &Decimal) -> Option<(i128, u32)> {
    let (m, scale) = (d.mantissa(), d.scale());
    let v = if scale <= MONEY_SCALE {
        m.checked_mul(pow10(MONEY_SCALE - scale))?
    } else {
        let unit = pow10(scale - MONEY_SCALE);
        if m % unit != 0 {
            return None;
        }
        m / unit
    };
    (v.unsigned_abs() < 10u128.pow(38)).then_some((v, scale))
}

/// The `Decimal` of scale `scale` whose `DECIMAL(38,12)` value is `v`; `None` when
/// there is none (digits beyond `scale`, or too large for a `Decimal`).
pub(crate) fn from_money(v: i128, scale: u32) -> Option<Decimal> {
    if scale > Decimal::MAX_SCALE {
        return None;
    }
    let m = if scale <= MONEY_SCALE {
        let unit = pow10(MONEY_SCALE - scale);
        if v % unit != 0 {
            return None;
        }
        v / unit
    } else {
        v.checked_mul(pow10(scale - MONEY_SCALE))?
    };
    Decimal::try_from_i128_with_scale(m, scale).ok()
}

/// Scales packed `SCALE_BITS` bits each, the first in the lowest bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scales(pub(crate) i64);

impl Scales {
    /// Sets the scale of amount `i`.
    pub(crate) fn set(&mut self, i: usize, scale: u32) {
        let mask = (1i64 << SCALE_BITS) - 1;
        let shift = i as u32 * SCALE_BITS;
        self.0 = (self.0 & !(mask << shift)) | ((i64::from(scale) & mask) << shift);
    }

    /// The scale of amount `i`.
    pub(crate) fn get(&self, i: usize) -> u32 {
        let mask = (1i64 << SCALE_BITS) - 1;
        ((self.0 >> (i as u32 * SCALE_BITS)) & mask) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_are_stored_at_12_places_and_read_back_with_their_own_scale() {
        for (text, stored) in [
            ("0.5", 500_000_000_000i128),
            ("0.000015972222", 15_972_222),
            ("-7", -7_000_000_000_000),
            ("0", 0),
            ("1.00000000000000", 1_000_000_000_000), // 14 places, the last two zeros
        ] {
            let d: Decimal = text.parse().unwrap();
            let (v, scale) = to_money(&d).unwrap();
            assert_eq!(v, stored, "{text}");
            let back = from_money(v, scale).unwrap();
            assert_eq!(back.to_string(), text);
        }
    }

    #[test]
    fn an_amount_that_does_not_fit_exactly_is_refused_not_rounded() {
        // 13 significant places: 0.0000000000001 would round to 0 in DECIMAL(38,12).
        assert_eq!(to_money(&"0.0000000000001".parse().unwrap()), None);
        assert_eq!(to_money(&"1.0000000000005".parse().unwrap()), None);
        // 79228162514264337593543950335 × 10¹² has 41 digits: more than 38.
        assert_eq!(to_money(&Decimal::MAX), None);
        // 26 integer digits still fit: 26 + 12 = 38.
        let big: Decimal = "99999999999999999999999999".parse().unwrap();
        assert_eq!(from_money(to_money(&big).unwrap().0, 0), Some(big));
    }

    #[test]
    fn a_stored_value_with_digits_beyond_its_scale_is_not_a_decimal() {
        assert_eq!(from_money(1, 0), None);
        assert_eq!(from_money(0, 29), None);
    }

    #[test]
    fn scales_pack_eight_amounts_into_one_integer() {
        let mut scales = Scales::default();
        for i in 0..8 {
            scales.set(i, (i as u32 * 4) % 29);
        }
        scales.set(3, 12);
        let expected: Vec<u32> = (0..8)
            .map(|i| if i == 3 { 12 } else { (i as u32 * 4) % 29 })
            .collect();
        assert_eq!((0..8).map(|i| scales.get(i)).collect::<Vec<_>>(), expected);
    }

    /// The largest mantissa stored at scale 0: 26 nines (26 + 12 = 38 digits).
    const LARGEST: i128 = 10i128.pow(26) - 1;

    proptest! {
        #[test]
        fn every_amount_of_at_most_12_places_round_trips_with_its_text(
            m in -LARGEST..=LARGEST, scale in 0u32..=12,
        ) {
            let d = Decimal::from_i128_with_scale(m, scale);
            let (v, s) = to_money(&d).unwrap();
            let back = from_money(v, s).unwrap();
            prop_assert_eq!(back.to_string(), d.to_string());
            prop_assert_eq!(back.scale(), d.scale());
        }

        #[test]
        fn an_amount_of_more_places_round_trips_or_is_refused(
            m in any::<i64>(), scale in 13u32..=28,
        ) {
            let d = Decimal::new(m, scale);
            match to_money(&d) {
                Some((v, s)) => prop_assert_eq!(from_money(v, s).unwrap().to_string(), d.to_string()),
                None => prop_assert!(d.fract().round_dp(12) != d.fract()),
            }
        }
    }
}
