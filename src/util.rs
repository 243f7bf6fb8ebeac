//! Small helpers shared by every module, kept at the bottom so that no module
//! has to reach up (into `pricing`, `ledger`, ...) for them.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that traits with async methods ([`PriceSource`],
/// [`CostSink`]) stay object-safe.
///
/// [`PriceSource`]: crate::pricing::PriceSource
/// [`CostSink`]: crate::sink::CostSink
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `config`, with the latest behavior version when it has none (one made with
/// `SdkConfig::builder()`): the SDK's clients panic when built without one. What
/// `aws_config`'s `behavior-version-latest`, which sagemeter enables, does for the
/// configs it loads, and what [`LivePrices`](crate::pricing::LivePrices) does.
pub(crate) fn with_behavior_version(config: aws_types::SdkConfig) -> aws_types::SdkConfig {
    if config.behavior_version().is_some() {
        return config;
    }
    config
        .into_builder()
        .behavior_version(aws_sdk_sagemakerruntime::config::BehaviorVersion::latest())
        .build()
}

/// The value of `key`, inserted as its default when missing, in one look-up: the
/// key is copied only then, not on every look-up as `entry(key.to_owned())` would.
pub(crate) fn entry_by_str<'a, V: Default>(
    map: &'a mut crate::FastMap<String, V>,
    key: &str,
) -> &'a mut V {
    map.entry_ref(key).or_default()
}

/// `time` as a UTC date-time; `None` beyond chrono's range (about 262,000 years
/// either side of year 0), where `DateTime::from(SystemTime)` would panic. For
/// times that come from outside (AWS answers, a caller's completion time).
pub(crate) fn utc(time: std::time::SystemTime) -> Option<chrono::DateTime<chrono::Utc>> {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => chrono::DateTime::from_timestamp(
            i64::try_from(after.as_secs()).ok()?,
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).ok()?;
            match before.subsec_nanos() {
                0 => chrono::DateTime::from_timestamp(secs.checked_neg()?, 0),
                nanos => chrono::DateTime::from_timestamp(
                    secs.checked_neg()?.checked_sub(1)?,
                    1_000_000_000 - nanos,
                ),
            }
        }
    }
}

/// `make` at the first of `name`'s paths that nothing is at yet: `make` must fail
/// with `AlreadyExists` rather than reuse or follow what is there (`create_new`, a
/// `mkdir`), so that a link someone put at the name is never written through. At
/// most 100 names are tried.
pub(crate) fn create_at_a_free_name<T>(
    mut name: impl FnMut() -> std::path::PathBuf,
    make: impl Fn(&std::path::Path) -> std::io::Result<T>,
) -> std::io::Result<(std::path::PathBuf, T)> {
    let mut tries = 0;
    loop {
        let path = name();
        match make(&path) {
            Ok(made) => return Ok((path, made)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `a + b` exactly, or `None` when it overflows: too large for a `Decimal`, or
/// with more digits than it holds (which `checked_add` would round to fewer
/// places rather than refuse).
pub(crate) fn exact_sum(
    a: rust_decimal::Decimal,
    b: rust_decimal::Decimal,
) -> Option<rust_decimal::Decimal> {
    let s = a.checked_add(b)?;
    let places = s.scale();
    if places >= a.scale().max(b.scale()) {
        return Some(s); // at the inputs' places: nothing rounded
    }
    // Fewer places: exact only when the digits beyond them add up to whole
    // units of the last place kept (each part below one such unit: exact).
    let (ta, tb) = (a.trunc_with_scale(places), b.trunc_with_scale(places));
    let rest = (a - ta) + (b - tb);
    (rest.round_dp(places) == rest)
        .then(|| ta.checked_add(tb)?.checked_add(rest))
        .flatten()
        .filter(|t| *t == s)
}

/// `a × b` exactly, or `None` when it overflows or has more digits than a
/// `Decimal` holds (which `checked_mul` rounds to fewer places rather than
/// refuse).
#[cfg(any(feature = "account", test))]
pub(crate) fn exact_product(
    a: rust_decimal::Decimal,
    b: rust_decimal::Decimal,
) -> Option<rust_decimal::Decimal> {
    let p = a.checked_mul(b)?;
    // The places `checked_mul` dropped: none, or digits that were all zeros,
    // which they are when the mantissas' product holds 10^dropped, that is as
    // many factors of 2 and of 5.
    let dropped = (a.scale() + b.scale()).saturating_sub(p.scale());
    if dropped == 0 || a.is_zero() || b.is_zero() {
        return Some(p);
    }
    let (ma, mb) = (a.mantissa().unsigned_abs(), b.mantissa().unsigned_abs());
    let factors = |mut m: u128, f: u128| {
        let mut n = 0;
        while m.is_multiple_of(f) {
            m /= f;
            n += 1;
        }
        n
    };
    (factors(ma, 2) + factors(mb, 2) >= dropped && factors(ma, 5) + factors(mb, 5) >= dropped)
        .then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_is_exact_or_none() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(exact_product(d("48"), d("0.23")), Some(d("11.04")));
        // 28 places × 10 places: 38 places, which `checked_mul` rounds to 28.
        let q = d("0.1234567890123456789012345678");
        assert_eq!(exact_product(q, d("0.0000000003")), None);
        // 2.5 × 10⁻²⁰ × 4 × 10⁻¹⁰ = 10⁻²⁹ needs 29 places: not 0, refused.
        assert_eq!(
            exact_product(d("0.000000000000000000025"), d("0.0000000004")),
            None
        );
        // 5 × 10⁻¹⁵ × 2 × 10⁻¹³ = 10⁻²⁷, written at 18 + 16 = 34 places, the
        // last seven zeros: exact at 27.
        assert_eq!(
            exact_product(d("0.000000000000005000"), d("0.0000000000002000")),
            Some(d("0.000000000000000000000000001"))
        );
        // Beyond Decimal::MAX.
        assert_eq!(exact_product(rust_decimal::Decimal::MAX, d("2")), None);
    }
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn times_beyond_chronos_range_are_none_and_others_convert_exactly() {
        let at = |t: SystemTime| utc(t).map(|d| d.to_rfc3339());
        assert_eq!(
            at(UNIX_EPOCH + Duration::new(1_796_212_800, 5)).as_deref(),
            Some("2026-12-02T12:00:00.000000005+00:00")
        );
        // 1.5 s before the epoch.
        assert_eq!(
            at(UNIX_EPOCH - Duration::from_millis(1500)).as_deref(),
            Some("1969-12-31T23:59:58.500+00:00")
        );
        // Year 265,000 (an AWS answer's CreationTime of 8.3e12 s): no panic.
        assert_eq!(
            at(UNIX_EPOCH + Duration::from_secs(8_300_000_000_000)),
            None
        );
        assert_eq!(
            at(UNIX_EPOCH - Duration::from_secs(9_000_000_000_000)),
            None
        );
    }
}
