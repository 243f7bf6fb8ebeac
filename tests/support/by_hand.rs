//! Figures worked as AWS's rules state them, with plain decimal arithmetic, for
//! the expected side of a test: never the crate's own conversion helpers
//! (`billing::hours`, `billing::billed_seconds`, `billing::round_cost`...), which
//! are what the tests check.

use rust_decimal::Decimal;
use std::time::Duration;

/// Instance hours in a measured duration: whole microseconds / 3,600,000,000
/// (AWS bills instances by the second; receipts keep the microsecond).
pub fn hours(d: Duration) -> Decimal {
    Decimal::from(u64::try_from(d.as_micros()).unwrap()) / Decimal::from(3_600_000_000u64)
}

/// Serverless billed seconds: the duration rounded **up** to the millisecond
/// ("billed by the millisecond"), / 1000.
pub fn serverless_seconds(d: Duration) -> Decimal {
    Decimal::from(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap()) / Decimal::from(1000)
}

/// GB of data processed (AWS's GB: 2³⁰ bytes).
pub fn gigabytes(bytes: u64) -> Decimal {
    Decimal::from(bytes) / Decimal::from(1u64 << 30)
}

/// Rounded to 10⁻¹² USD, half to even, as receipts state money.
pub fn r12(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(12, rust_decimal::RoundingStrategy::MidpointNearestEven)
}
