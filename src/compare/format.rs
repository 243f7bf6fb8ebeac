//! Numbers for people: thousands separators, fixed decimals, percentages.
//!
//! Only for display; the comparison's values stay exact.

use rust_decimal::{Decimal, RoundingStrategy};

/// `1234567.891` → `"1,234,567.89"` with `dp` decimals (rounded half away from zero).
pub fn usd(value: Decimal, dp: u32) -> String {
    let rounded = value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    // Padded by hand: `Decimal`'s own `{:.N}` panics when the padded digits exceed
    // its buffer (29 whole digits and 4 decimals, say).
    let mut s = rounded.to_string();
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    if dp as usize > decimals {
        if decimals == 0 {
            s.push('.');
        }
        s.extend(std::iter::repeat_n('0', dp as usize - decimals));
    }
    group(&s)
}

/// A call count: whole calls with separators from 100 up, otherwise up to two
/// decimals (`0.5`, `12.25`). A count that is not zero is never shown as `0`: below
/// 0.005 it keeps two significant digits (`0.000000001`, `0.0012`), so a break-even
/// below one call reads as the fraction it is.
pub fn calls(value: Decimal) -> String {
    if value.abs() >= Decimal::from(100) {
        return usd(value, 0);
    }
    let mut r = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    if r.is_zero() && !value.is_zero() {
        r = value
            .round_sf_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            .unwrap_or(value);
    }
    group(&r.normalize().to_string())
}

/// A fraction as a percentage with one decimal: `0.3805` → `"38.1%"`. A fraction too
/// large to multiply by 100 is written as `fraction × 100%`.
pub fn percent(fraction: Decimal) -> String {
    match fraction.checked_mul(Decimal::from(100)) {
        Some(pct) => format!("{}%", usd(pct, 1)),
        None => format!("{} × 100%", usd(fraction, 1)),
    }
}

/// Bytes in binary units: `2048` → `"2 KiB"`, `1500` → `"1,500 B"`; a mean that is
/// not a whole number of a unit is shown in bytes as [`calls`] shows a count
/// (`12.5 B`, `1,501 B` for 1,500.5).
pub fn bytes(value: impl Into<Decimal>) -> String {
    let value: Decimal = value.into();
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        let size = Decimal::from(size);
        if value >= size && (value % size).is_zero() {
            return format!("{} {unit}", group(&(value / size).normalize().to_string()));
        }
    }
    format!("{} B", calls(value))
}

/// Inserts `,` every three digits of the integer part.
fn group(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::with_capacity(s.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped_and_rounded_half_away_from_zero() {
        assert_eq!(usd(Decimal::new(1_234_567_895, 3), 2), "1,234,567.90");
        assert_eq!(usd(Decimal::new(15, 1), 2), "1.50");
        assert_eq!(usd(Decimal::from(7), 2), "7.00");
        assert_eq!(usd(Decimal::new(-5, 3), 2), "-0.01");
        // The largest decimal with 4 places padded (it panicked in `{:.4}`).
        assert_eq!(
            usd(Decimal::MAX, 4),
            "79,228,162,514,264,337,593,543,950,335.0000"
        );
        assert_eq!(usd(Decimal::new(-5, 1), 0), "-1");
        assert_eq!(usd(Decimal::ZERO, 2), "0.00");
    }

    #[test]
    fn calls_are_whole_from_a_hundred_up() {
        assert_eq!(calls(Decimal::new(400_004, 1)), "40,000");
        assert_eq!(calls(Decimal::new(125, 1)), "12.5");
    }

    #[test]
    fn a_count_below_a_hundredth_keeps_its_significant_digits_never_zero() {
        assert_eq!(calls(Decimal::new(1, 9)), "0.000000001");
        assert_eq!(calls(Decimal::new(12_345, 7)), "0.0012"); // 0.0012345, 2 digits
        assert_eq!(calls(Decimal::new(-1, 3)), "-0.001");
        assert_eq!(calls(Decimal::new(5, 3)), "0.01"); // 0.005 rounds half up to 0.01
        assert_eq!(calls(Decimal::ZERO), "0");
    }

    #[test]
    fn a_percentage_beyond_a_decimal_is_written_without_multiplying() {
        assert_eq!(percent(Decimal::new(3805, 4)), "38.1%"); // 0.3805 × 100 = 38.05 → 38.1
        // MAX × 100 does not fit: MAX itself, grouped, then "× 100%"
        assert_eq!(
            percent(Decimal::MAX),
            "79,228,162,514,264,337,593,543,950,335.0 × 100%"
        );
    }

    #[test]
    fn bytes_use_the_largest_exact_binary_unit() {
        assert_eq!(bytes(2048), "2 KiB");
        assert_eq!(bytes(1500), "1,500 B");
        assert_eq!(bytes(3 << 20), "3 MiB");
        assert_eq!(bytes(Decimal::new(125, 1)), "12.5 B");
        assert_eq!(bytes(Decimal::new(15005, 1)), "1,501 B");
    }
}
