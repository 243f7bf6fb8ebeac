//! Record: running totals and the sinks every receipt goes to.
//!
//! [`Totals`] keeps exact running sums (per client, endpoint and variant) under
//! one lock, so a receipt's running totals include exactly the calls recorded
//! before it. Every receipt is then handed to the [`CostSink`]s: the `tracing`
//! cost line ([`log_cost`]) and `metrics` counters ([`CostMetrics`]) are always
//! on; more sinks can be added on the builder:
//! - [`JsonlLedger`]: the append-only JSON Lines ledger file (read it back with
//!   [`read_all`] / [`LedgerReader`]; summarise it with [`crate::report`]).
//! - [`EmfSink`]: CloudWatch Embedded Metric Format lines.

mod emf;
mod error;
mod file;
mod line;
mod metrics;
mod reader;
mod writer;

pub use self::metrics::{
    CostMetrics, MAX_TAG_LABEL_VALUES, OTHER_TAG_VALUE, RESERVED_LABELS, describe_metrics,
};
pub use emf::{DEFAULT_NAMESPACE, EmfSink, EmfSinkBuilder};
pub use error::LedgerError;
pub use file::{DEFAULT_CAPACITY, JsonlLedger, JsonlLedgerBuilder};
pub use reader::{LedgerRead, LedgerReader, TornTail, read_all};
pub use writer::{Refused, SinkStats};

use crate::FastMap;
use crate::billing::{Accrual, COST_SCALE, Cost, div_round_dp, hours, mul_round_dp};
use crate::pricing::BoxFuture;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The version of the ledger line format, written as `"v"` on every line.
pub const LEDGER_FORMAT_VERSION: u32 = 1;

/// Somewhere receipts go after each call (a ledger file, a queue, a test probe).
///
/// `record` runs on the call path: it must be quick and must not block on I/O
/// (queue the receipt and write it elsewhere, as [`JsonlLedger`] does).
/// `flush` and `shutdown` let the owner of the client make sure that everything
/// recorded has been written before the program exits; sinks that write
/// synchronously keep the default no-ops.
pub trait CostSink: fmt::Debug + Send + Sync {
    /// Takes one receipt.
    fn record(&self, cost: &Cost);

    /// Resolves when every receipt recorded before the call has been written out.
    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Flushes, then stops taking receipts. Default: [`flush`](Self::flush).
    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        self.flush()
    }
}

impl<T: CostSink + ?Sized> CostSink for Arc<T> {
    fn record(&self, cost: &Cost) {
        (**self).record(cost)
    }

    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        (**self).flush()
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        (**self).shutdown()
    }
}

/// Running sums at one moment.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TotalsSnapshot {
    /// Calls recorded.
    pub calls: u64,
    /// Everything recorded, in USD.
    pub client_usd: Decimal,
    /// Per endpoint, in USD.
    pub by_endpoint: HashMap<String, Decimal>,
    /// Per `endpoint/variant`, in USD.
    pub by_variant: HashMap<String, Decimal>,
}

#[derive(Default)]
struct VariantState {
    name: String,
    /// Whether a call to the variant has been recorded (snapshots list only those).
    recorded: bool,
    total_usd: Decimal,
    allocated_compute_usd: Decimal,
    accrued_usd: Decimal,
    last_accrual_at: Option<SystemTime>,
    last_call_at: Option<SystemTime>,
}

#[derive(Default)]
struct TotalsInner {
    calls: u64,
    client_usd: Decimal,
    /// Endpoints in the order their slot was first asked for.
    endpoints: Vec<EndpointTotals>,
    /// Where each endpoint is in `endpoints`, looked up by `&str`.
    slots: FastMap<String, usize>,
}

#[derive(Default)]
struct EndpointTotals {
    name: String,
    /// `None` until a call to the endpoint is recorded.
    usd: Option<Decimal>,
    /// Variants in the order their slot was first asked for (a handful at most).
    variants: Vec<VariantState>,
}

/// The value of `key`, inserted as its default when missing, in one look-up: the
/// key is copied only then, not on every look-up as `entry(key.to_owned())` would.
pub(crate) fn entry_by_str<'a, V: Default>(
    map: &'a mut FastMap<String, V>,
    key: &str,
) -> &'a mut V {
    map.entry_ref(key).or_default()
}

/// Exact running totals, safe under any number of concurrent calls.
#[derive(Default)]
pub struct Totals {
    inner: Mutex<TotalsInner>,
}

impl fmt::Debug for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totals")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// Where an endpoint's running totals are kept in [`Totals`]: found by name once
/// per endpoint profile (see [`Totals::endpoint_slot`]), then used by every call
/// without a look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndpointSlot(usize);

/// Where a variant's running totals and instance clock are kept in [`Totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VariantSlot {
    endpoint: usize,
    variant: usize,
}

impl VariantSlot {
    /// The slot of the endpoint this variant belongs to.
    pub(crate) fn endpoint(self) -> EndpointSlot {
        EndpointSlot(self.endpoint)
    }
}

/// What [`Totals::record`] hands back for the receipt.
pub(crate) struct Recorded {
    pub running_client_usd: Decimal,
    pub running_endpoint_usd: Decimal,
    pub accrual: Option<Accrual>,
}

/// The wall-clock cost of a variant's instances, for accrual.
pub(crate) struct InstanceClock {
    /// Instances × USD per hour.
    pub usd_per_hour_all_instances: Decimal,
    /// When the call started.
    pub started_at: SystemTime,
    /// When the call ended.
    pub ended_at: SystemTime,
}

impl Totals {
    /// The slot of `endpoint`, made on first use. The endpoint is listed in
    /// snapshots only once a call to it is recorded.
    pub(crate) fn endpoint_slot(&self, endpoint: &str) -> EndpointSlot {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let next = inner.endpoints.len();
        let index = *inner.slots.entry_ref(endpoint).or_insert(next);
        if index == next {
            inner.endpoints.push(EndpointTotals {
                name: endpoint.to_owned(),
                ..EndpointTotals::default()
            });
        }
        EndpointSlot(index)
    }

    /// The slot of `variant` of the endpoint in `endpoint`, made on first use.
    pub(crate) fn variant_slot(&self, endpoint: EndpointSlot, variant: &str) -> VariantSlot {
        let mut inner = self.lock();
        let variants = &mut inner.endpoints[endpoint.0].variants;
        let index = match variants.iter().position(|v| v.name == variant) {
            Some(index) => index,
            None => {
                variants.push(VariantState {
                    name: variant.to_owned(),
                    ..VariantState::default()
                });
                variants.len() - 1
            }
        };
        VariantSlot {
            endpoint: endpoint.0,
            variant: index,
        }
    }

    /// Time since the previous call recorded for this variant (for amortised
    /// allocation), and marks `now` as the latest call.
    pub(crate) fn gap_since_previous_call(
        &self,
        variant: VariantSlot,
        now: SystemTime,
    ) -> Option<Duration> {
        let mut inner = self.lock();
        let state = &mut inner.endpoints[variant.endpoint].variants[variant.variant];
        let gap = state
            .last_call_at
            .map(|prev| now.duration_since(prev).unwrap_or_default());
        state.last_call_at = Some(state.last_call_at.map_or(now, |prev| prev.max(now)));
        gap
    }

    /// Adds one receipt's total, and accrues the variant's instance cost up to the
    /// end of this call. Returns the running totals including this call.
    pub(crate) fn record(
        &self,
        endpoint: EndpointSlot,
        variant: Option<VariantSlot>,
        cost_usd: Decimal,
        compute_usd: Option<Decimal>,
        clock: Option<InstanceClock>,
    ) -> Recorded {
        let mut inner = self.lock();
        inner.calls += 1;
        inner.client_usd += cost_usd;
        let running_client_usd = inner.client_usd;
        let totals = &mut inner.endpoints[endpoint.0];
        let running_endpoint_usd = totals.usd.unwrap_or_default() + cost_usd;
        totals.usd = Some(running_endpoint_usd);
        let mut accrual = None;
        if let Some(variant) = variant {
            debug_assert_eq!(variant.endpoint(), endpoint);
            let state = &mut totals.variants[variant.variant];
            state.recorded = true;
            state.total_usd += cost_usd;
            if let Some(clock) = clock {
                state.allocated_compute_usd += compute_usd.unwrap_or_default();
                let from = state.last_accrual_at.unwrap_or(clock.started_at);
                if clock.ended_at > from {
                    let elapsed = clock.ended_at.duration_since(from).unwrap_or_default();
                    state.accrued_usd +=
                        mul_round_dp(clock.usd_per_hour_all_instances, hours(elapsed), COST_SCALE);
                    state.last_accrual_at = Some(clock.ended_at);
                } else if state.last_accrual_at.is_none() {
                    state.last_accrual_at = Some(from);
                }
                accrual = Some(Accrual {
                    accrued_usd: state.accrued_usd,
                    allocated_usd: state.allocated_compute_usd,
                    utilisation: (!state.accrued_usd.is_zero())
                        .then(|| div_round_dp(state.allocated_compute_usd, state.accrued_usd, 6)),
                });
            }
        }
        Recorded {
            running_client_usd,
            running_endpoint_usd,
            accrual,
        }
    }

    /// The running sums now.
    pub fn snapshot(&self) -> TotalsSnapshot {
        let inner = self.lock();
        TotalsSnapshot {
            calls: inner.calls,
            client_usd: inner.client_usd,
            by_endpoint: inner
                .endpoints
                .iter()
                .filter_map(|e| Some((e.name.clone(), e.usd?)))
                .collect(),
            by_variant: inner
                .endpoints
                .iter()
                .flat_map(|e| {
                    e.variants
                        .iter()
                        .filter(|v| v.recorded)
                        .map(move |v| (format!("{}/{}", e.name, v.name), v.total_usd))
                })
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TotalsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A duration in milliseconds for logs and metrics: receipts keep whole
/// microseconds, and `µs / 1000` is the double nearest to that figure (4.943, where
/// `as_secs_f64() * 1000.0` gives 4.9430000000000005).
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The cost-per-request log line: one INFO event, target `sagemeter`, per call.
/// Fields: `endpoint`, `variant`, `operation`, `outcome`, `latency_ms`, `bytes_in`,
/// `bytes_out`, `input_tokens`/`output_tokens` (when known; also as
/// `gen_ai.usage.input_tokens`/`gen_ai.usage.output_tokens`), `cost_usd`,
/// `running_usd`, `price_source` (`unpriced` when nothing could be priced). Never the payload.
pub fn log_cost(cost: &Cost) {
    let u = &cost.usage;
    // Field values are only computed when the event is enabled.
    tracing::info!(
        target: "sagemeter",
        endpoint = %cost.endpoint,
        variant = cost.variant.as_deref().unwrap_or(""),
        operation = u.operation.as_str(),
        outcome = u.outcome.as_str(),
        latency_ms = millis(u.latency),
        bytes_in = u.bytes_in,
        bytes_out = u.bytes_out,
        input_tokens = u.input_tokens,
        output_tokens = u.output_tokens,
        gen_ai.usage.input_tokens = u.input_tokens,
        gen_ai.usage.output_tokens = u.output_tokens,
        cost_usd = %cost.cost_usd,
        running_usd = %cost.running_client_usd,
        price_source = cost.price_source().map_or("unpriced", |s| s.as_str()),
        fully_priced = cost.is_fully_priced(),
        "sagemaker call cost"
    );
}

#[cfg(test)]
mod tests {
    use super::{Totals, millis};
    use rust_decimal::Decimal;
    use std::time::Duration;

    #[test]
    fn snapshots_list_what_was_recorded_not_every_slot_handed_out() {
        let totals = Totals::default();
        let quiet = totals.endpoint_slot("quiet");
        totals.variant_slot(quiet, "AllTraffic");
        let busy = totals.endpoint_slot("busy");
        let blue = totals.variant_slot(busy, "blue");
        let green = totals.variant_slot(busy, "green");
        assert_eq!(totals.endpoint_slot("busy"), busy, "one slot per endpoint");
        assert_eq!(
            totals.variant_slot(busy, "green"),
            green,
            "one slot per variant"
        );

        let cost = Decimal::new(25, 6);
        totals.record(busy, Some(blue), cost, None, None);
        let recorded = totals.record(busy, Some(blue), cost, None, None);
        assert_eq!(recorded.running_endpoint_usd, Decimal::new(50, 6));

        let snapshot = totals.snapshot();
        assert_eq!(snapshot.calls, 2);
        assert_eq!(snapshot.client_usd, Decimal::new(50, 6));
        assert_eq!(
            snapshot.by_endpoint.into_iter().collect::<Vec<_>>(),
            [("busy".to_owned(), Decimal::new(50, 6))]
        );
        assert_eq!(
            snapshot.by_variant.into_iter().collect::<Vec<_>>(),
            [("busy/blue".to_owned(), Decimal::new(50, 6))]
        );
    }

    #[test]
    fn latencies_are_logged_as_the_milliseconds_receipts_state() {
        for (micros, text) in [
            (4_943, "4.943"),
            (1, "0.001"),
            (250_000, "250"),
            (5_291, "5.291"),
        ] {
            assert_eq!(millis(Duration::from_micros(micros)).to_string(), text);
        }
    }
}
