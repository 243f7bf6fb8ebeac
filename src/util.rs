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

/// The value of `key`, inserted as its default when missing, in one look-up: the
/// key is copied only then, not on every look-up as `entry(key.to_owned())` would.
pub(crate) fn entry_by_str<'a, V: Default>(
    map: &'a mut crate::FastMap<String, V>,
    key: &str,
) -> &'a mut V {
    map.entry_ref(key).or_default()
}
