//! Where every receipt goes after its call: the [`CostSink`]s.
//!
//! The builder puts them in one list, in this order, and the meter hands each
//! receipt to every one of them, once:
//! 1. [`CostLogSink`]: the cost-per-request `tracing` line (always on);
//! 2. [`CostMetrics`]: counters and histograms through the `metrics` facade
//!    (unless [`ClientBuilder::without_metrics`](crate::ClientBuilder::without_metrics));
//! 3. the sinks given to [`ClientBuilder::sink`](crate::ClientBuilder::sink), in
//!    the order given, e.g.
//!    - [`JsonlLedger`]: the append-only JSON Lines ledger file (see [`crate::ledger`]);
//!    - [`EmfSink`]: CloudWatch Embedded Metric Format lines.
//!
//! ```no_run
//! # async fn run(sdk_config: aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use sagemeter::sink::CostSink;
//!
//! /// Counts calls that could not be fully priced.
//! #[derive(Debug, Default)]
//! struct Unpriced(std::sync::atomic::AtomicU64);
//!
//! impl CostSink for Unpriced {
//!     fn record(&self, cost: &sagemeter::Cost) {
//!         if !cost.is_fully_priced() {
//!             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let unpriced = std::sync::Arc::new(Unpriced::default());
//! let client = sagemeter::Client::builder(&sdk_config).sink(unpriced.clone()).build()?;
//! # Ok(()) }
//! ```
//!
//! [`JsonlLedger`]: crate::ledger::JsonlLedger

mod emf;
mod log;
mod metrics;
mod queued;
#[cfg(test)]
pub(crate) mod test_support;

pub use self::metrics::{
    CostMetrics, MAX_TAG_LABEL_VALUES, OTHER_TAG_VALUE, PROMETHEUS_LABELS, RESERVED_LABELS,
    describe_metrics,
};
pub(crate) use self::metrics::{component_value, count_panicked, count_refusal};
pub use emf::{DEFAULT_NAMESPACE, EmfSink, EmfSinkBuilder};
pub use log::CostLogSink;
pub use queued::{DEFAULT_QUEUE_CAPACITY, Queued};

#[doc(no_inline)]
pub use crate::ledger::{Refused, SinkStats};
#[doc(no_inline)]
pub use crate::util::BoxFuture;

use crate::billing::Cost;
use crate::ledger::JsonlLedger;
use crate::pricing::PriceChange;
use std::fmt;
use std::sync::Arc;

/// Somewhere receipts go after each call (a ledger file, a queue, a test probe).
///
/// `record` runs on the call path: it must be quick and must not block on I/O
/// (queue the receipt and write it elsewhere, as [`JsonlLedger`] does: a bounded
/// queue, `try_send`, a writer on its own thread or task; or wrap the sink in
/// [`Queued`], which does that for any sink). A `record` that blocks
/// holds up its Tokio worker thread, and with it every other call on that worker:
/// their answers are read late, and their receipts bill the wait as the model's
/// time (beside a `record` that slept 200 ms, 10 ms calls were billed 410 ms).
/// `flush` and `shutdown` let the owner of the client make sure that everything
/// recorded has been written before the program exits; sinks that write
/// synchronously keep the default no-ops.
pub trait CostSink: fmt::Debug + Send + Sync {
    /// Takes one receipt. A panic here is caught: the call and the other sinks
    /// go on, the receipt lost is counted in
    /// `sagemeter_sink_dropped_total{sink=<name>,reason="panicked"}`, and a WARN
    /// names this sink (see [`name`](Self::name); at most one every 10 s); the
    /// process's panic hook still runs first (the default one prints the panic),
    /// and a build with `panic = "abort"` aborts.
    ///
    /// It may be called after [`shutdown`](Self::shutdown), for a call that
    /// ended after it (see [`Meter::shutdown_within`](crate::Meter::shutdown_within)):
    /// refuse it there and count it, as [`JsonlLedger`] does
    /// ([`SinkStats::refused_closed`]), rather than fail or block.
    fn record(&self, cost: &Cost);

    /// What logs call this sink (e.g. when it panics). Default: its type's name.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Takes note that a price changed (see [`PriceChange`]): the client's default
    /// price source tells its sinks. Default: nothing; [`JsonlLedger`] writes a
    /// `price_change` record.
    fn record_price_change(&self, change: &PriceChange) {
        let _ = change;
    }

    /// Resolves when every receipt recorded before the call has been written out.
    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Flushes, then stops taking receipts. Default: [`flush`](Self::flush).
    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        self.flush()
    }
}

/// A sink of sagemeter's that names a call's inference component in what it
/// writes ([`CostMetrics`]' `inference_component` label, [`EmfSink`]'s
/// `InferenceComponent` dimension), where every name is a series: the client
/// tells it whether the endpoint's profile lists the component, so that a name it
/// does not list is `_other` (see [`component_value`]). Given a receipt by
/// [`CostSink::record`], it does not know, and bounds the names per endpoint.
pub(crate) trait NamesComponents: CostSink {
    /// [`CostSink::record`] for a receipt of the client's own calls:
    /// `component_listed` says whether the endpoint's profile lists its inference
    /// component (`None`: not known, the endpoint could not be described).
    fn record_call(&self, cost: &Cost, component_listed: Option<bool>);
}

impl<T: CostSink + ?Sized> CostSink for Arc<T> {
    fn record(&self, cost: &Cost) {
        (**self).record(cost)
    }

    fn name(&self) -> &str {
        (**self).name()
    }

    fn record_price_change(&self, change: &PriceChange) {
        (**self).record_price_change(change)
    }

    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        (**self).flush()
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        (**self).shutdown()
    }
}

impl CostSink for JsonlLedger {
    fn record(&self, cost: &Cost) {
        // Refusals are counted and logged by the writer.
        self.enqueue(cost);
    }

    fn record_price_change(&self, change: &PriceChange) {
        JsonlLedger::record_price_change(self, change);
    }

    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move { Ok(JsonlLedger::flush(self).await?) })
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move { Ok(JsonlLedger::shutdown(self).await?) })
    }
}

/// Tells every sink in `sinks` of a price change, in order: one that panics on
/// it misses it with a WARN naming it, and the sinks after it are still told
/// (a ledger after a custom sink writes its `price_change` record).
pub(crate) fn tell_price_change(sinks: &[Arc<dyn CostSink>], change: &PriceChange) {
    for sink in sinks {
        let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink.record_price_change(change)
        }));
        if told.is_err() {
            tracing::warn!(target: "sagemeter", sink = sink.name(), key = %change.key,
                "a cost sink panicked recording a price change: it missed this change; \
                 the other sinks were told");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Told {
        changes: Mutex<Vec<String>>,
        panics: bool,
    }

    impl CostSink for Told {
        fn record(&self, _: &Cost) {}

        fn record_price_change(&self, change: &PriceChange) {
            if self.panics {
                panic!("a sink that fails on price changes");
            }
            self.changes.lock().unwrap().push(format!(
                "{} -> {}",
                change.old_usd_per_unit, change.new_usd_per_unit
            ));
        }
    }

    #[test]
    fn a_sink_that_panics_on_a_price_change_leaves_the_sinks_after_it_told() {
        let change = PriceChange {
            at: "2026-09-01T00:00:00Z".parse().unwrap(),
            key: crate::pricing::PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
            unit: crate::pricing::PriceUnit::Hour,
            old_usd_per_unit: rust_decimal::Decimal::new(23, 2),
            new_usd_per_unit: rust_decimal::Decimal::new(20, 2),
            old_effective_date: None,
            new_effective_date: None,
            sku: None,
        };
        let (first, after) = (Arc::new(Told::default()), Arc::new(Told::default()));
        let panicking = Arc::new(Told {
            panics: true,
            ..Told::default()
        });
        let sinks: Vec<Arc<dyn CostSink>> = vec![first.clone(), panicking, after.clone()];
        tell_price_change(&sinks, &change);
        tell_price_change(&sinks, &change);
        assert_eq!(*first.changes.lock().unwrap(), ["0.23 -> 0.20"; 2]);
        assert_eq!(*after.changes.lock().unwrap(), ["0.23 -> 0.20"; 2]);
    }
}
