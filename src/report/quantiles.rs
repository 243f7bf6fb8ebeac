//! Nearest-rank percentiles in memory that does not grow with the calls.
//!
//! Up to [`EXACT_LIMIT`] values a group keeps them all and a percentile is exact.
//! Beyond, values are counted in buckets less than 0.1% wide (relative: the
//! binary exponent and the top 10 bits of the mantissa of the value as a float),
//! each keeping the smallest value it saw, and a percentile is that smallest
//! value of the bucket holding the rank: still an observed value, at most 0.1%
//! below the exact one. The float only chooses the bucket; values and sums stay
//! exact.
//!
//! Memory: at most 1,024 buckets per doubling of the range the values span (about
//! 61,000 for costs from 10⁻¹² to 10⁶ USD; a few thousand in practice).

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;

/// Values kept one by one before counting them in buckets.
pub(crate) const EXACT_LIMIT: usize = 4096;

/// Mantissa bits a bucket keeps: buckets 2⁻¹⁰ (0.098%) wide.
const MANTISSA_BITS: u32 = 10;

/// A value that can be bucketed: its bucket's place in the value order.
pub(crate) trait Bucketed: Copy + Ord {
    /// Buckets in increasing value order; 0 is exactly zero.
    fn bucket(&self) -> i64;
}

/// The bucket of a positive finite `v` (≥ 1 for v > 0, then by magnitude): its
/// binary exponent and the top [`MANTISSA_BITS`] of its mantissa, read from the
/// bits of the float (no logarithm): a bucket spans `[m·2ᵉ, (m+1)·2ᵉ)` with
/// `m ≥ 2¹⁰`, so any two of its values are within 2⁻¹⁰ of each other.
fn log_bucket(v: f64) -> i64 {
    if !(v.is_finite() && v > 0.0) {
        return 1;
    }
    // Positive finite floats order as their bits do.
    1 + (v.to_bits() >> (52 - MANTISSA_BITS)) as i64
}

impl Bucketed for u64 {
    fn bucket(&self) -> i64 {
        if *self == 0 {
            0
        } else {
            log_bucket(*self as f64)
        }
    }
}

impl Bucketed for Decimal {
    fn bucket(&self) -> i64 {
        let magnitude = self.abs().to_f64().unwrap_or(f64::MAX);
        if self.is_zero() {
            0
        } else if self.is_sign_negative() {
            -log_bucket(magnitude)
        } else {
            log_bucket(magnitude)
        }
    }
}

/// The values of one group, for percentiles.
#[derive(Debug, Clone)]
pub(crate) enum Quantiles<T> {
    /// Every value (at most [`EXACT_LIMIT`]).
    Exact(Vec<T>),
    /// Bucket → (count, smallest value seen).
    Buckets(HashMap<i64, (u64, T), foldhash::fast::RandomState>),
}

impl<T> Default for Quantiles<T> {
    fn default() -> Self {
        Quantiles::Exact(Vec::new())
    }
}

impl<T: Bucketed> Quantiles<T> {
    pub(crate) fn push(&mut self, value: T) {
        match self {
            Quantiles::Exact(values) if values.len() < EXACT_LIMIT => values.push(value),
            Quantiles::Exact(_) => {
                self.switch_to_buckets();
                self.push(value);
            }
            Quantiles::Buckets(buckets) => count(buckets, value, 1),
        }
    }

    pub(crate) fn merge(&mut self, other: &Quantiles<T>) {
        match other {
            Quantiles::Exact(values) => {
                for v in values {
                    self.push(*v);
                }
            }
            Quantiles::Buckets(theirs) => {
                self.switch_to_buckets();
                if let Quantiles::Buckets(ours) = self {
                    for (bucket, (n, min)) in theirs {
                        let slot = ours.entry(*bucket).or_insert((0, *min));
                        slot.0 += n;
                        slot.1 = slot.1.min(*min);
                    }
                }
            }
        }
    }

    /// True while every value is kept (percentiles are exact).
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Quantiles::Exact(_))
    }

    /// The nearest-rank percentiles `ps` (each in 1..=100), `None` when empty.
    pub(crate) fn nearest_ranks<const N: usize>(&mut self, ps: [u32; N]) -> [Option<T>; N] {
        match self {
            Quantiles::Exact(values) => {
                values.sort_unstable();
                ps.map(|p| super::nearest_rank(values, p).copied())
            }
            Quantiles::Buckets(buckets) => {
                let mut sorted: Vec<(i64, (u64, T))> =
                    buckets.iter().map(|(k, v)| (*k, *v)).collect();
                sorted.sort_unstable_by_key(|(k, _)| *k);
                let total: u64 = sorted.iter().map(|(_, (n, _))| n).sum();
                ps.map(|p| {
                    if total == 0 {
                        return None;
                    }
                    let rank = (u64::from(p) * total).div_ceil(100).max(1);
                    let mut seen = 0;
                    sorted.iter().find_map(|(_, (n, min))| {
                        seen += n;
                        (seen >= rank).then_some(*min)
                    })
                })
            }
        }
    }

    fn switch_to_buckets(&mut self) {
        if let Quantiles::Exact(values) = self {
            let mut buckets = HashMap::default();
            for v in values.iter() {
                count(&mut buckets, *v, 1);
            }
            *self = Quantiles::Buckets(buckets);
        }
    }
}

fn count<T: Bucketed>(
    buckets: &mut HashMap<i64, (u64, T), foldhash::fast::RandomState>,
    value: T,
    n: u64,
) {
    let slot = buckets.entry(value.bucket()).or_insert((0, value));
    slot.0 += n;
    slot.1 = slot.1.min(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(values: &mut [u64], p: u32) -> Option<u64> {
        values.sort_unstable();
        super::super::nearest_rank(values, p).copied()
    }

    #[test]
    fn small_groups_are_exact_and_large_ones_within_a_tenth_of_a_percent_below() {
        let mut q = Quantiles::default();
        for v in [4u64, 1, 3, 2] {
            q.push(v);
        }
        assert_eq!(q.nearest_ranks([50, 95, 100]), [Some(2), Some(4), Some(4)]);
        assert!(q.is_exact());
        // 10,000 latencies 1..=10,000 µs: p50 is exactly 5,000, p95 9,500.
        let mut q = Quantiles::default();
        for v in (1..=10_000u64).rev() {
            q.push(v);
        }
        assert!(!q.is_exact());
        let [p50, p95] = q.nearest_ranks([50, 95]).map(Option::unwrap);
        assert!(p50 <= 5_000 && p50 as f64 >= 5_000.0 / 1.001, "{p50}");
        assert!(p95 <= 9_500 && p95 as f64 >= 9_500.0 / 1.001, "{p95}");
    }

    #[test]
    fn negative_zero_and_positive_amounts_keep_their_order() {
        let mut q = Quantiles::default();
        let values: Vec<Decimal> = ["-2", "-0.5", "0", "0.000000000001", "3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for _ in 0..1_000 {
            for v in &values {
                q.push(*v);
            }
        }
        assert!(!q.is_exact());
        let got = q.nearest_ranks([20, 40, 60, 80, 100]);
        assert_eq!(got, values.iter().map(|v| Some(*v)).collect::<Vec<_>>()[..]);
    }

    proptest! {
        #[test]
        fn merged_or_not_a_percentile_is_an_observed_value_within_a_tenth_of_a_percent(
            values in proptest::collection::vec(1u64..1_000_000_000, 1..12_000), p in 1u32..=100,
            split in any::<prop::sample::Index>(),
        ) {
            let at = split.index(values.len());
            let (mut a, mut b) = (Quantiles::default(), Quantiles::default());
            values[..at].iter().for_each(|v| a.push(*v));
            values[at..].iter().for_each(|v| b.push(*v));
            a.merge(&b);
            let got = a.nearest_ranks([p])[0].unwrap();
            let want = exact(&mut values.clone(), p).unwrap();
            prop_assert!(values.contains(&got));
            prop_assert!(got <= want && got as f64 >= want as f64 / 1.001 - 1e-6, "{} vs {}", got, want);
            if values.len() <= EXACT_LIMIT {
                prop_assert_eq!(got, want);
            }
        }
    }
}
