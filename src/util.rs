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

#[cfg(test)]
mod tests {
    use super::*;
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
