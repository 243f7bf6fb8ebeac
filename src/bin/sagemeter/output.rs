//! Shared output pieces: money and latency formatting, percentiles, JSON lines.

use rust_decimal::Decimal;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// `$0.000123` with no trailing zeros (the exact decimal, never a float).
pub fn usd(amount: Decimal) -> String {
    format!("${}", amount.normalize())
}

/// Milliseconds with one decimal, e.g. `12.3`.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted` (ascending), `None`
/// when empty. Nearest rank returns an observed value: p95 of 20 calls is the 19th.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).unwrap_or(usize::MAX);
    sorted.get(index.min(sorted.len() - 1)).copied()
}

/// Writes `value` as one line of JSON.
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles_return_observed_values() {
        let twenty = ms(&(1..=20).collect::<Vec<_>>());
        // p50 of 20: rank ceil(0.50 × 20) = 10 → 10 ms; p95: rank ceil(0.95 × 20) = 19 → 19 ms.
        assert_eq!(percentile(&twenty, 50), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&twenty, 95), Some(Duration::from_millis(19)));
        // One value is every percentile of itself.
        assert_eq!(percentile(&ms(&[7]), 95), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn money_is_printed_exactly_without_trailing_zeros() {
        assert_eq!(usd("0.000015972222000".parse().unwrap()), "$0.000015972222");
        assert_eq!(usd(Decimal::ZERO), "$0");
    }

    #[test]
    fn latency_is_rounded_to_a_tenth_of_a_millisecond() {
        assert_eq!(millis(Duration::from_micros(12_345)), 12.3);
    }
}
