//! The decimal arithmetic of every receipt, on machine integers.
//!
//! Each function gives exactly what the `rust_decimal` expression in its doc gives,
//! value and scale alike (so receipts serialise the same), which the tests check
//! on arbitrary inputs and on constructed near-ties. The integer path covers what
//! calls produce: non-negative amounts whose mantissas multiply within 128 bits,
//! quotients below one, results not within a hair of a rounding tie. Anything
//! else goes to `rust_decimal` itself, its checked arithmetic where a product can
//! be more than a decimal holds (a garbage rate must not panic a call).
//!
//! Why: `rust_decimal`'s general division and rounding loops were most of the
//! instructions metering added to a call (five divisions and four roundings per
//! receipt).

use rust_decimal::{Decimal, RoundingStrategy};

/// 10⁰ … 10³⁸, every power of ten a `u128` holds.
const POW10: [u128; 39] = {
    let mut p = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// A decimal's mantissa is below 2⁹⁶.
const MANTISSA_LIMIT: u128 = 1 << 96;

/// `m × 10^-scale`, `m` below 2⁹⁶, `scale` at most 28.
fn decimal(m: u128, scale: u32) -> Decimal {
    debug_assert!(m < MANTISSA_LIMIT && scale <= Decimal::MAX_SCALE);
    Decimal::from_parts(m as u32, (m >> 32) as u32, (m >> 64) as u32, false, scale)
}

/// The mantissa of a positive decimal (`None` for zero and negatives).
fn positive(d: &Decimal) -> Option<u128> {
    (!d.is_sign_negative() && !d.is_zero()).then(|| d.mantissa().unsigned_abs())
}

/// `m / 10^k` rounded half to even, `k` at most 38.
fn div_pow10_half_even(m: u128, k: u32) -> u128 {
    if k == 0 {
        return m;
    }
    let unit = POW10[k as usize];
    let q = m / unit;
    let r = m - q * unit;
    let half = unit / 2;
    if r > half || (r == half && q % 2 == 1) {
        q + 1
    } else {
        q
    }
}

/// `d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)`.
pub(crate) fn round_dp(d: Decimal, dp: u32) -> Decimal {
    round_dp_fast(d, dp)
        .unwrap_or_else(|| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven))
}

fn round_dp_fast(d: Decimal, dp: u32) -> Option<Decimal> {
    let scale = d.scale();
    if scale <= dp {
        return Some(d);
    }
    let m = positive(&d)?;
    Some(decimal(div_pow10_half_even(m, scale - dp), dp))
}

/// `round_dp(a * b, dp)`: a rate times a quantity, rounded once; `None` when the
/// product is more than a decimal holds (about 7.9 × 10²⁸), where `a * b` panics.
///
/// `rust_decimal` rounds a product that does not fit its 96 bits or 28 places
/// first, then to `dp`; the exact product rounds the same way unless it lies
/// within that first rounding of a tie, which is left to `rust_decimal`.
pub(crate) fn checked_mul_round_dp(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    mul_round_dp_fast(a, b, dp).or_else(|| a.checked_mul(b).map(|p| round_dp(p, dp)))
}

/// [`checked_mul_round_dp`] where the product fits by construction.
///
/// # Panics
///
/// When the product is more than a decimal holds, as `a * b` does: never use it
/// on a rate or a quantity that comes from outside (use [`checked_mul_round_dp`]).
pub(crate) fn mul_round_dp(a: Decimal, b: Decimal, dp: u32) -> Decimal {
    checked_mul_round_dp(a, b, dp).expect("Multiplication overflowed")
}

/// The exact product of two positive decimals: its mantissa, its scale, and how
/// many digits `rust_decimal` drops to bring it within 28 places and 96 bits
/// (0: it keeps the exact product). `None` for zero, negatives and products past
/// 128 bits.
fn exact_product(a: &Decimal, b: &Decimal) -> Option<(u128, u32, u32)> {
    let p = positive(a)?.checked_mul(positive(b)?)?;
    let scale = a.scale() + b.scale();
    let mut dropped = scale.saturating_sub(Decimal::MAX_SCALE);
    let high = p >> 96;
    while high >= POW10[dropped as usize] {
        dropped += 1;
    }
    Some((p, scale, dropped))
}

fn mul_round_dp_fast(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    let (p, scale, dropped) = exact_product(&a, &b)?;
    if dropped == 0 {
        // It keeps the exact product.
        return round_dp_fast(decimal(p, scale), dp);
    }
    // Its estimate may drop one digit more than needed; allow for it, and for a
    // first rounding that already reaches `dp` places.
    if scale < dp + dropped + 2 || scale - dp > 38 {
        return None;
    }
    let unit = POW10[(scale - dp) as usize];
    let q = p / unit;
    let r = p - q * unit;
    let half = unit / 2;
    if r.abs_diff(half) <= POW10[dropped as usize + 1] {
        return None;
    }
    Some(decimal(if r > half { q + 1 } else { q }, dp))
}

/// `(a * b).round_dp_with_strategy(dp, RoundingStrategy::ToZero)`: a share that
/// must never add up to more than the whole it is cut from; `None` when the
/// product is more than a decimal holds, where `a * b` panics.
///
/// As in [`checked_mul_round_dp`], a product `rust_decimal` rounds first is left
/// to it when that first rounding could carry it up onto the next multiple of 10^-dp.
pub(crate) fn checked_mul_round_dp_down(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    mul_round_dp_down_fast(a, b, dp).or_else(|| {
        a.checked_mul(b)
            .map(|p| p.round_dp_with_strategy(dp, RoundingStrategy::ToZero))
    })
}

fn mul_round_dp_down_fast(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    let (p, scale, dropped) = exact_product(&a, &b)?;
    if scale <= dp {
        return (dropped == 0).then(|| decimal(p, scale));
    }
    if dropped > 0 && (scale < dp + dropped + 2 || scale - dp > 38) {
        return None;
    }
    let unit = POW10[(scale - dp) as usize];
    let q = p / unit;
    let r = p - q * unit;
    if dropped > 0 && unit - r <= POW10[dropped as usize + 1] {
        return None;
    }
    Some(decimal(q, dp))
}

/// `Decimal::from(n) / Decimal::from(d)`: hours in microseconds, GB in bytes.
///
/// For `0 < n < d < 2³²` (quotients below one) this follows `rust_decimal`'s
/// division step by step: nine digits at a time to 27 places, one more to 28, stop
/// early where the division is exact, round half to even at 28 places, then strip
/// trailing zeros the way it does.
pub(crate) fn quotient(n: u64, d: u64) -> Decimal {
    quotient_fast(n, d).unwrap_or_else(|| Decimal::from(n) / Decimal::from(d))
}

fn quotient_fast(n: u64, d: u64) -> Option<Decimal> {
    const MAX_N: u128 = u128::MAX / POW10[28];
    let (n, d) = (u128::from(n), u128::from(d));
    if n == 0 || n >= d || d > u128::from(u32::MAX) || n > MAX_N {
        return None;
    }
    let x = n * POW10[28];
    let q = x / d;
    let r = x - q * d;
    let (m, scale) = if r == 0 {
        // Exact within 28 places: at the first of 9, 18, 27, 28 where it is.
        let scale = [9u32, 18, 27]
            .into_iter()
            .find(|&s| (n * POW10[s as usize]).is_multiple_of(d))
            .unwrap_or(28);
        (q / POW10[(28 - scale) as usize], scale)
    } else if 2 * r > d || (2 * r == d && q % 2 == 1) {
        (q + 1, 28)
    } else {
        (q, 28)
    };
    let (m, scale) = unscale(m, scale);
    Some(decimal(m, scale))
}

/// `rust_decimal`'s trailing-zero stripping after a division: eight zeros at a time
/// while the low 32 bits are clear, then at most four, two and one.
fn unscale(mut m: u128, mut scale: u32) -> (u128, u32) {
    if m & 1 == 1 {
        // Odd: no trailing zero (half of all quotients; skips the tests below, which
        // the compiler evaluates without branches).
        return (m, scale);
    }
    while m as u32 == 0 && scale >= 8 && m.is_multiple_of(POW10[8]) {
        m /= POW10[8];
        scale -= 8;
    }
    for (digits, mask) in [(4u32, 0xF), (2, 0x3), (1, 0x1)] {
        if m & mask == 0 && scale >= digits && m.is_multiple_of(POW10[digits as usize]) {
            m /= POW10[digits as usize];
            scale -= digits;
        }
    }
    (m, scale)
}

/// `(a / b).round_dp(dp)`: a ratio of two amounts, rounded once.
///
/// `rust_decimal` rounds the quotient to 28 places (or 28 significant digits)
/// first; the exact quotient rounds the same way unless it lies within that first
/// rounding of a tie, or of a number with `dp` places or fewer (whose scale
/// `rust_decimal` keeps): those are left to it.
pub(crate) fn div_round_dp(a: Decimal, b: Decimal, dp: u32) -> Decimal {
    div_round_dp_fast(a, b, dp).unwrap_or_else(|| (a / b).round_dp(dp))
}

fn div_round_dp_fast(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    let (ma, mb) = (positive(&a)?, positive(&b)?);
    let e = (dp + b.scale())
        .checked_sub(a.scale())
        .filter(|&e| e <= 38)?;
    let x = ma.checked_mul(POW10[e as usize])?;
    let q = x / mb;
    let r = x - q * mb;
    // The first rounding, in units of `r`: 10^-28 absolute, and 10^-27 relative
    // (bounded above with powers of two: 2⁶⁹ < 10²¹, 2⁸⁶ < 10²⁶).
    let relative = mb.checked_mul(q + 1).map_or(u128::MAX, |x| x >> 86);
    let window = (mb >> 69).saturating_add(relative).saturating_add(1);
    let near_grid = r <= window || mb - r <= window;
    let near_tie = (2 * r).abs_diff(mb) <= window.saturating_mul(2);
    let rounded = if 2 * r > mb { q + 1 } else { q };
    if near_grid || near_tie || rounded >= MANTISSA_LIMIT {
        return None;
    }
    Some(decimal(rounded, dp))
}

/// `a × b` in 256 bits, as its high and low 128 bits.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & LOW);
    let (b1, b0) = (b >> 64, b & LOW);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let mid = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    let low = (p00 & LOW) | (mid << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (high, low)
}

/// `⌊a × b ÷ d⌋`, exactly (the product in 256 bits); `None` when `d` is 0 or the
/// quotient is 2¹²⁸ or more.
pub(crate) fn mul_div_floor(a: u128, b: u128, d: u128) -> Option<u128> {
    if d == 0 {
        return None;
    }
    if let Some(p) = a.checked_mul(b) {
        return Some(p / d);
    }
    let (high, low) = mul_wide(a, b);
    if high >= d {
        return None;
    }
    // Long division, a bit at a time: the remainder stays below `d`.
    let (mut r, mut q) = (high, 0u128);
    for i in (0..128).rev() {
        let carry = r >> 127;
        r = (r << 1) | ((low >> i) & 1);
        q <<= 1;
        if carry == 1 || r >= d {
            r = r.wrapping_sub(d);
            q |= 1;
        }
    }
    Some(q)
}

/// `a × n ÷ d` rounded toward zero at `dp` places, exactly (the product in 256
/// bits, through [`mul_div_floor`]): a share of an amount (`n ≤ d`) that never
/// adds up with the others cut from it to more than the whole, at a fixed
/// scale, so that shares of amounts of at most `dp` places add up exactly. A
/// share whose whole part leaves no room for `dp` places in a decimal (beyond
/// 2⁹⁶ × 10^-dp, 7.9 × 10¹⁰ at 18) is rounded toward zero at as many as fit.
/// `None` when `d` is 0, or when `n × 10^(dp − a's places)` (or `d ×
/// 10^(a's places − dp)`) is past 128 bits, which no share of a time span or of
/// a ratio of 20 places at 18 places is.
#[cfg(any(feature = "account", test))]
pub(crate) fn mul_div_down(a: Decimal, n: u128, d: u128, dp: u32) -> Option<Decimal> {
    if d == 0 || dp > Decimal::MAX_SCALE {
        return None;
    }
    let m = a.mantissa().unsigned_abs();
    let s = a.scale();
    let mut q = match s <= dp {
        true => mul_div_floor(m, n.checked_mul(POW10[(dp - s) as usize])?, d)?,
        false => mul_div_floor(m, n, d.checked_mul(POW10[(s - dp) as usize])?)?,
    };
    // ⌊⌊x⌋ ÷ 10⌋ = ⌊x ÷ 10⌋: one place fewer is still rounded toward zero once.
    let mut places = dp;
    while q >= MANTISSA_LIMIT {
        places = places.checked_sub(1)?;
        q /= 10;
    }
    let share = decimal(q, places);
    Some(if a.is_sign_negative() { -share } else { share })
}

/// `usd_per_hour × fs ÷ 3.6·10¹⁸` (an hourly rate for `fs` femtoseconds),
/// rounded down once to whole pico-dollars, at 12 places: exact, where pricing
/// the hours rounded first could come out a pico-dollar low. `None` when the
/// cost is more than a decimal holds, or the rate is negative.
pub(crate) fn hourly_fs_cost_down(usd_per_hour: Decimal, fs: u128) -> Option<Decimal> {
    if usd_per_hour.is_zero() {
        return Some(decimal(0, 12));
    }
    let m = positive(&usd_per_hour)?;
    // m × 10^-s USD/h × fs ÷ (3.6·10¹⁸ fs/h) × 10¹² pico/USD
    //   = m × fs ÷ (36 × 10^(s+5)) pico-dollars.
    let d = 36 * POW10[(usd_per_hour.scale() + 5) as usize];
    let pico = mul_div_floor(m, fs, d)?;
    (pico < MANTISSA_LIMIT).then(|| decimal(pico, 12))
}

/// A positive amount in whole pico-dollars (10⁻¹² USD, the places a receipt
/// keeps; finer digits are dropped), `None` for zero and negative amounts.
pub(crate) fn pico_usd(usd: Decimal) -> Option<u128> {
    const PICO_PLACES: u32 = 12;
    let m = positive(&usd)?;
    let scale = usd.scale();
    Some(if scale <= PICO_PLACES {
        m.saturating_mul(POW10[(PICO_PLACES - scale) as usize])
    } else {
        m / POW10[(scale - PICO_PLACES) as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Value and scale alike: what a receipt serialises.
    /// `ours` equal to `reference` and written the same, but where rust_decimal's
    /// product or quotient fell below its 28 places: it comes out as a `0` of scale
    /// 0, where ours is a zero at the places asked for (`0.0000000000`).
    fn same(ours: Decimal, reference: Decimal) -> bool {
        let underflowed = reference.is_zero() && reference.scale() == 0 && ours.is_zero();
        ours == reference
            && (underflowed
                || (ours.scale() == reference.scale() && ours.to_string() == reference.to_string()))
    }

    fn dec(m: u128, scale: u32) -> Decimal {
        Decimal::from_i128_with_scale(m as i128, scale)
    }

    /// A decimal with a mantissa of up to `bits` bits and any scale. Its bit
    /// length is drawn first: drawn uniformly, nearly every mantissa would have
    /// about `bits` bits, and nearly no product of two would fit in 128 bits,
    /// the integer path that `mul_round_dp` takes for the products that do.
    fn amount(bits: u32) -> impl Strategy<Value = Decimal> {
        (
            (1u32..=bits).prop_flat_map(|b| 0u128..(1u128 << b)),
            0u32..=28,
        )
            .prop_map(|(m, s)| dec(m, s))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn round_dp_is_rust_decimals(d in amount(96), dp in 0u32..=28, negative: bool) {
            let d = if negative { -d } else { d };
            let reference = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
            prop_assert!(same(round_dp(d, dp), reference), "{d} to {dp}");
        }

        #[test]
        fn mul_round_dp_is_rust_decimals(a in amount(64), b in amount(96), dp in 0u32..=16) {
            // Products that overflow a decimal panic in both; keep to those that fit.
            if let Some(product) = a.checked_mul(b) {
                let reference = product.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
                prop_assert!(same(mul_round_dp(a, b, dp), reference), "{a} × {b} to {dp}");
            } else {
                prop_assert_eq!(checked_mul_round_dp(a, b, dp), None, "{} × {} to {}", a, b, dp);
            }
        }

        #[test]
        fn mul_round_dp_down_is_rust_decimals(a in amount(64), b in amount(96), dp in 0u32..=16) {
            let down = checked_mul_round_dp_down(a, b, dp);
            if let Some(product) = a.checked_mul(b) {
                let reference = product.round_dp_with_strategy(dp, RoundingStrategy::ToZero);
                prop_assert!(down.is_some_and(|d| same(d, reference)), "{a} × {b} to {dp}");
            } else {
                prop_assert_eq!(down, None, "{} × {} to {}", a, b, dp);
            }
        }

        #[test]
        fn hourly_rates_times_hours_are_rust_decimals(
            rate in amount(40),
            micros in 0u64..20_000_000_000,
        ) {
            let hours = Decimal::from(micros) / Decimal::from(3_600_000_000u64);
            let reference = (rate * hours).round_dp_with_strategy(12, RoundingStrategy::MidpointNearestEven);
            prop_assert!(same(mul_round_dp(rate, hours, 12), reference));
        }

        #[test]
        fn products_a_hair_from_a_tie_or_a_grid_point_are_rust_decimals(
            ma in 1u128..10_000_000_000,
            sa in 0u32..=12,
            t in 0u128..1_000_000,
            dp in 6u32..=14,
            hair in -3i128..=3,
        ) {
            // b such that a × b is within a few units of b's last place of t + ½ at
            // dp places (a tie, for rounding half to even), or of t (a grid point,
            // onto which rust_decimal's first rounding may carry a share rounded down).
            let near = |twice: u128| {
                twice
                    .checked_mul(POW10[(sa + 28 - dp) as usize])
                    .and_then(|x| (x / (2 * ma)).checked_add_signed(hair))
                    .filter(|&m| m > 0 && m < MANTISSA_LIMIT)
            };
            if let Some(bm) = near(2 * t + 1) {
                let (a, b) = (dec(ma, sa), dec(bm, 28));
                let reference = (a * b).round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
                prop_assert!(same(mul_round_dp(a, b, dp), reference), "{a} × {b} to {dp}");
            }
            if let Some(bm) = near(2 * t) {
                let (a, b) = (dec(ma, sa), dec(bm, 28));
                let reference = (a * b).round_dp_with_strategy(dp, RoundingStrategy::ToZero);
                let down = checked_mul_round_dp_down(a, b, dp);
                prop_assert!(down.is_some_and(|d| same(d, reference)), "{a} × {b} to {dp}");
            }
        }

        #[test]
        fn ratios_a_hair_from_a_tie_are_rust_decimals(
            mb in 1u128..1 << 95,
            t in 0u128..2_000_000,
            hair in -3i128..=3,
        ) {
            // a / b within a few units of a's last place of t + ½ at 6 places, and of t.
            for twice in [2 * t + 1, 2 * t] {
                let am = (twice * mb / 2_000_000)
                    .checked_add_signed(hair)
                    .filter(|&m| m > 0 && m < MANTISSA_LIMIT);
                if let Some(am) = am {
                    let (a, b) = (dec(am, 12), dec(mb, 12));
                    prop_assert!(same(div_round_dp(a, b, 6), (a / b).round_dp(6)), "{a} / {b}");
                }
            }
        }

        #[test]
        fn quotient_is_rust_decimals(n in 0u64..20_000_000_000, d in 1u64..5_000_000_000) {
            prop_assert!(same(quotient(n, d), Decimal::from(n) / Decimal::from(d)), "{n} / {d}");
        }

        #[test]
        fn hours_and_gigabytes_are_rust_decimals(n in 0u64..8_000_000_000, shift in 0u32..34) {
            for d in [3_600_000_000u64, 1 << 30] {
                let n = n >> shift;
                prop_assert!(same(quotient(n, d), Decimal::from(n) / Decimal::from(d)), "{n} / {d}");
            }
        }

        #[test]
        fn div_round_dp_is_rust_decimals(a in amount(80), b in amount(80), dp in 0u32..=12) {
            if let Some(q) = a.checked_div(b) {
                prop_assert!(same(div_round_dp(a, b, dp), q.round_dp(dp)), "{a} / {b} to {dp}");
            }
        }

        #[test]
        fn utilisations_are_rust_decimals(allocated in 0u64..1 << 50, accrued in 1u64..1 << 50) {
            let (a, b) = (dec(allocated.into(), 12), dec(accrued.into(), 12));
            prop_assert!(same(div_round_dp(a, b, 6), (a / b).round_dp(6)), "{a} / {b}");
        }
    }

    #[test]
    fn mul_div_floor_is_the_exact_quotient() {
        // Within 128 bits: 102 × 3·10⁹ ÷ 3.6·10⁹ = 85 exactly.
        assert_eq!(mul_div_floor(102, 3_000_000_000, 3_600_000_000), Some(85));
        // Past 128 bits: (2¹²⁰ × 2¹⁰) ÷ 2⁵ = 2¹²⁵; (2¹²⁸ − 1)² ÷ (2¹²⁸ − 1) = 2¹²⁸ − 1.
        assert_eq!(mul_div_floor(1 << 120, 1 << 10, 1 << 5), Some(1 << 125));
        assert_eq!(
            mul_div_floor(u128::MAX, u128::MAX, u128::MAX),
            Some(u128::MAX)
        );
        // (2¹²⁸ − 1) × 3 ÷ 2 = 2¹²⁸ × 1.5 − 1.5: past 128 bits; ÷ 4: ⌊3·2¹²⁶ − 0.75⌋.
        assert_eq!(mul_div_floor(u128::MAX, 3, 2), None);
        assert_eq!(mul_div_floor(u128::MAX, 3, 4), Some(3 * (1 << 126) - 1));
        assert_eq!(mul_div_floor(1, 1, 0), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// q = ⌊a·b ÷ d⌋ exactly when q·d ≤ a·b < (q + 1)·d, checked in 256 bits.
        #[test]
        fn mul_div_floor_brackets_the_product(
            a in any::<u128>(), b in any::<u128>(), d in 1u128..,
        ) {
            let (high, low) = mul_wide(a, b);
            match mul_div_floor(a, b, d) {
                Some(q) => {
                    let below = mul_wide(q, d);
                    prop_assert!(below <= (high, low));
                    let (h, l) = mul_wide(q, d);
                    let (l, carry) = l.overflowing_add(d);
                    // (q + 1)·d past 2²⁵⁶ is above any product.
                    if let Some(h) = h.checked_add(u128::from(carry)) {
                        prop_assert!((high, low) < (h, l));
                    }
                }
                None => prop_assert!(high >= d),
            }
        }
    }

    #[test]
    fn shares_are_rounded_toward_zero_at_the_places_asked() {
        // 14.18 × 3,600,000,000 ÷ 3,601,234,567 = 14.17513884482271215520074…:
        // 14.175138844822712155 at 18 places (the digits beyond dropped).
        let usd = Decimal::new(1418, 2);
        assert_eq!(
            mul_div_down(usd, 3_600_000_000, 3_601_234_567, 18),
            Some(dec(14_175_138_844_822_712_155, 18))
        );
        // 0.23 × 1,800,000,000 ÷ 3,599,999,999 = 0.11500000003194444445…
        assert_eq!(
            mul_div_down(Decimal::new(23, 2), 1_800_000_000, 3_599_999_999, 18),
            Some(dec(115_000_000_031_944_444, 18))
        );
        // Toward zero for a negative amount; exact quotients keep their value.
        assert_eq!(
            mul_div_down(-usd, 3_600_000_000, 3_601_234_567, 18),
            Some(-dec(14_175_138_844_822_712_155, 18))
        );
        assert_eq!(mul_div_down(usd, 1, 2, 18), Some(Decimal::new(709, 2)));
        // An amount of more places than asked: 10⁻²⁰ × 1 ÷ 3 is below 10⁻¹⁸: 0.
        assert_eq!(
            mul_div_down(Decimal::new(1, 20), 1, 3, 18),
            Some(Decimal::ZERO)
        );
        // 10¹² ÷ 3 at 18 places is 30 digits, 3.3 × 10²⁹ > 2⁹⁶ ≈ 7.9 × 10²⁸: at
        // 17, as many as fit (333,333,333,333.33333333333333333, 3.3 × 10²⁸).
        let trillion = Decimal::from(1_000_000_000_000u64);
        assert_eq!(
            mul_div_down(trillion, 1, 3, 18),
            Some(dec(33_333_333_333_333_333_333_333_333_333, 17))
        );
        assert_eq!(mul_div_down(usd, 1, 0, 18), None);
    }

    #[test]
    fn a_product_no_decimal_holds_is_none_not_a_panic() {
        // Decimal::MAX = 2⁹⁶ − 1 ≈ 7.92 × 10²⁸.
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let (rate, max) = (d("50000000000000000000000000000"), Decimal::MAX);
        // 5 × 10²⁸ × 2.5 = 1.25 × 10²⁹; × 2 = 10²⁹.
        assert_eq!(checked_mul_round_dp(rate, d("2.5"), 12), None);
        assert_eq!(checked_mul_round_dp_down(rate, Decimal::TWO, 12), None);
        // Just past the largest decimal, by its last unit, both ways.
        assert_eq!(
            checked_mul_round_dp(max, d("1.0000000000000000000000000001"), 0),
            None
        );
        assert_eq!(checked_mul_round_dp_down(d("2"), max, 0), None);
        // The largest decimal itself, and 5 × 10²⁸ × 1.5 = 7.5 × 10²⁸, fit.
        assert_eq!(checked_mul_round_dp(max, Decimal::ONE, 12), Some(max));
        assert_eq!(
            checked_mul_round_dp_down(rate, d("1.5"), 12),
            Some(d("75000000000000000000000000000"))
        );
    }

    #[test]
    fn pico_dollars_of_an_amount() {
        let pico = |s: &str| pico_usd(s.parse().unwrap());
        assert_eq!(pico("0.000015972222"), Some(15_972_222));
        assert_eq!(pico("1.5"), Some(1_500_000_000_000));
        assert_eq!(pico("0.0000000000019"), Some(1));
        assert_eq!(pico("0"), None);
        assert_eq!(pico("-0.25"), None);
    }

    #[test]
    fn what_calls_produce_takes_the_integer_path() {
        let rate: Decimal = "0.2300000000".parse().unwrap();
        for micros in [1u64, 999, 48_213, 2_500_000, 3_599_999_999] {
            let hours = quotient_fast(micros, 3_600_000_000).expect("hours below one");
            assert!(mul_round_dp_fast(rate, hours, 12).is_some(), "{micros} µs");
        }
        for bytes in [1u64, 15, 95, 25_000_000] {
            let gb = quotient_fast(bytes, 1 << 30).expect("GB below one");
            assert!(mul_round_dp_fast("0.016".parse().unwrap(), gb, 12).is_some());
        }
        // Processor-sharing shares: atto-hours (18 places) at an hourly rate.
        for atto_hours in [1u128, 13_392_857_142_857, 277_777_777_777_777_777] {
            assert!(mul_round_dp_down_fast(rate, dec(atto_hours, 18), 12).is_some());
        }
        let (allocated, accrued) = (dec(15_972_222, 12), dec(63_888_888_889, 12));
        assert!(div_round_dp_fast(allocated, accrued, 6).is_some());
        assert!(round_dp_fast(dec(123_456_789_012_345, 14), 12).is_some());
    }

    #[test]
    fn near_ties_and_exact_results_are_rust_decimals() {
        // Products on a tie at 12 places, and a hair either side of one.
        for (a, b) in [
            ("0.0000000000005", "1"),
            ("0.0000000000015", "1"),
            ("0.25", "0.0000000000022"),
            ("0.2300000000", "0.0000000021739130434782608695652174"),
            ("3", "0.0000000000001666666666666666666666666667"),
        ] {
            let (a, b): (Decimal, Decimal) = (a.parse().unwrap(), b.parse().unwrap());
            let reference =
                (a * b).round_dp_with_strategy(12, RoundingStrategy::MidpointNearestEven);
            assert!(same(mul_round_dp(a, b, 12), reference), "{a} × {b}");
        }
        // Exact quotients keep rust_decimal's scale: 1/4, 2³⁰ bytes, multiples of 4 bytes.
        for (n, d) in [
            (1, 4),
            (1 << 29, 1 << 30),
            (16, 1 << 30),
            (12, 1 << 30),
            (1, 3),
        ] {
            assert!(
                same(quotient(n, d), Decimal::from(n) / Decimal::from(d)),
                "{n}/{d}"
            );
        }
        // Ratios exactly on the grid and on a tie keep rust_decimal's scale and rounding.
        for (a, b) in [
            ("0.5", "1"),
            ("1", "1"),
            ("0.0000005", "1"),
            ("1", "3"),
            ("2", "3"),
            ("0.500000000000", "1.000000000000"),
            ("0.123456000000", "1.000000000000"),
        ] {
            let (a, b): (Decimal, Decimal) = (a.parse().unwrap(), b.parse().unwrap());
            assert!(same(div_round_dp(a, b, 6), (a / b).round_dp(6)), "{a}/{b}");
        }
    }
}
