//! Billing: usage × rates = money.
//!
//! Each function here is pure: it takes what was measured ([`Usage`]), how the
//! variant is billed ([`VariantBilling`]) and the [`Rate`]s that apply, and returns
//! [`CostLine`]s. The [`Cost`] receipt gathers the lines with the running totals.
//!
//! Every line's `cost_usd` is rounded to [`COST_SCALE`] decimal places
//! (10⁻¹² USD), so that any number of receipts add up exactly to the running
//! totals, in any order.

mod arith;
mod component;
mod receipt;

#[cfg(feature = "account")]
pub(crate) use arith::mul_div_down;
pub(crate) use arith::{checked_mul_round_dp, div_round_dp, mul_round_dp, pico_usd};
use arith::{checked_mul_round_dp_down, hourly_fs_cost_down, mul_div_floor};
pub use component::ReservedBy;
pub(crate) use component::{
    CopyShare, ResourcesFrom, component_compute_line, copy_share, fit_to_instances,
    unreserved_fraction,
};

pub use receipt::{
    Accrual, AccrualCharge, AccrualSource, Cost, CostLine, LineItem, LinePrice, QuantityUnit,
    SettledBefore, SettledBy, StandingPart,
};
pub(crate) use receipt::{
    BEYOND_PROVISIONED_NOTE_END, INTERCEPTOR_NOTE, SETTLEMENT_NOTE, amount, no_standing_parts,
};
#[cfg(feature = "parquet")]
pub(crate) use receipt::{is_by_interceptor, is_settlement};
pub(crate) use receipt::{is_never_settled, is_settled_in_part};

use crate::config_error::ConfigError;
use crate::endpoint::{EndpointKind, VariantBilling};
use crate::pricing::{PriceError, PriceKey, PriceOrigin, Provenance, Rate};
use crate::usage::{Outcome, Usage};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Decimal places kept on every line's cost (pico-dollars).
pub const COST_SCALE: u32 = 12;

/// Bytes in one GB of data processed: AWS bills data in gibibytes (2³⁰ bytes).
pub const BYTES_PER_GB: u64 = 1 << 30;

pub use crate::pricing::MAX_SANE_USD_PER_UNIT;

/// What is wrong with a configured price (a price override, a usage charge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPrice {
    /// Below zero.
    Negative,
    /// Above [`MAX_SANE_USD_PER_UNIT`]: most likely a misplaced decimal point or
    /// the wrong unit.
    AboveSane,
}

/// The one check every configured USD-per-unit price goes through: not negative,
/// not above [`MAX_SANE_USD_PER_UNIT`]. ($0 is each caller's own question.)
pub(crate) fn check_usd_per_unit(usd: Decimal) -> Result<(), BadPrice> {
    if usd.is_sign_negative() && !usd.is_zero() {
        Err(BadPrice::Negative)
    } else if usd > MAX_SANE_USD_PER_UNIT {
        Err(BadPrice::AboveSane)
    } else {
        Ok(())
    }
}

/// How an instance endpoint's hourly cost is allocated to single calls.
///
/// Whatever the rule, idle instance time is on no receipt: the receipt's
/// [`Accrual`] shows it (utilisation = allocated ÷ accrued).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// Processor sharing (the default): while `n` calls are in flight on an
    /// endpoint with `k` instances, each call is allocated `min(1/m, k/n)` of an
    /// instance for that stretch of time, `m` being how many calls one instance
    /// serves at full speed ([`ClientBuilder::max_concurrency_per_instance`],
    /// default 1). Model servers (TGI, vLLM, any multi-worker container) serve many
    /// calls at once; the calls in flight together on one clock are allocated at
    /// most its `k` instances, so, when the variants they are routed to share one
    /// rate, their receipts never add up to more than those instances' cost in
    /// this process over the calls' time. An endpoint's can, in two cases: calls
    /// naming a variant and calls naming none at once, each kind on its own clock
    /// (A and B on 1 × ml.m5.xlarge each, $0.23/h: one call naming A and two
    /// naming none for an hour, $0.23 + 2 × $0.23 = $0.69 against AWS's $0.46);
    /// and routable variants of different instance types (A on 1 × ml.g5.12xlarge,
    /// $7.09/h, B on 1 × ml.m5.xlarge: two calls naming none for an hour, both
    /// served by A, a whole instance-hour each at A's rate, $14.18 against AWS's
    /// $7.32). One variant's can too: SageMaker may route the calls naming no
    /// variant to one of several, and a variant's accrual begins with its first
    /// call (see docs/cost-model.md);
    /// with the fleet on, `n` counts every process's calls (see `sagemeter::fleet`).
    /// Each step is rounded down (in instance-femtoseconds); the cost is priced
    /// from the call's exact share and rounded down once to 10⁻¹² USD, the
    /// quantity shown being its instance-hours rounded down at 18 places. Kept in
    /// O(1) per call event: a per-endpoint
    /// virtual clock advances at the share, and a call's allocation is the clock's
    /// advance over its attempts' stretches (from each attempt's request to its
    /// end; not the back-off between attempts), those that reached the model.
    ///
    /// [`ClientBuilder::max_concurrency_per_instance`]: crate::ClientBuilder::max_concurrency_per_instance
    #[default]
    ProcessorSharing,
    /// Each call costs the instance time it kept one instance busy, as if it had
    /// the instance to itself: latency × hourly rate / 3600. Concurrent calls each
    /// pay a whole instance, so their receipts can add up to more than the
    /// instances cost (utilisation above 1).
    BusyTime,
    /// Each call carries what the variant's instances accrued since the previous
    /// metered call to it: the accrual's capacity cost (not storage) between the
    /// two calls' ends, stretch by stretch at the instance count and rate then in
    /// force (a refresh that found 4 instances instead of 2, or a new price,
    /// counts from when it was applied). The receipts then add up exactly to the
    /// accrued capacity cost over the span the variant was called (utilisation 1
    /// after the first call, which has no previous one and costs its busy time).
    ///
    /// The compute line states the instance-hours accrued, at the rate per
    /// instance-hour: one line per rate in force during the gap (a rate from
    /// another price source is another rate), each with its own provenance, so
    /// that no line claims one rate for time accrued at another. With a shadow or
    /// pending variant billed alongside, the rate is the average over all their
    /// instances. Until the variant's rate is known, its gaps are priced
    /// (unpriced) on the wall clock: instances × gap. With the fleet, each process
    /// charges its share of the fleet's calls (see `sagemeter::fleet`).
    Amortized,
}

impl Allocation {
    /// The name written in logs and ledgers (`processor_sharing`, `busy_time`, `amortized`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Allocation::ProcessorSharing => "processor_sharing",
            Allocation::BusyTime => "busy_time",
            Allocation::Amortized => "amortized",
        }
    }
}

/// Charges that the Price List does not carry, configured per endpoint:
/// per inference (e.g. AWS Marketplace model packages) and per token.
///
/// By default they apply on top of the instance or serverless cost. When they are
/// the whole price (e.g. a per-token rate charged by whoever runs the endpoint),
/// mark them [`alone`](Self::alone): receipts then carry no compute or data lines,
/// and the endpoint needs no profile. An endpoint that is neither `alone` nor
/// profiled keeps an explicit unpriced compute line: never a silent $0.
///
/// ```
/// use sagemeter::billing::UsageCharges;
/// // $0.50 per million input tokens, $1.50 per million output tokens, nothing else.
/// let charges = UsageCharges::default()
///     .per_1000_tokens("0.0005".parse().unwrap(), "0.0015".parse().unwrap())
///     .alone();
/// assert!(charges.alone);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCharges {
    /// USD per 1,000 inferences: each HTTP 2XX answer (a call whose 2XX answer
    /// was cut off and answered again on a retry is 2).
    pub usd_per_1000_calls: Option<Decimal>,
    /// USD per 1,000 input tokens.
    pub usd_per_1000_input_tokens: Option<Decimal>,
    /// USD per 1,000 output tokens.
    pub usd_per_1000_output_tokens: Option<Decimal>,
    /// These charges are the endpoint's whole price: no compute, no data processing.
    #[serde(default)]
    pub alone: bool,
}

impl UsageCharges {
    /// A per-inference price, in USD per 1,000 inferences: charged for each
    /// successful (HTTP 2XX) answer, as AWS Marketplace charges by default, so a
    /// call whose 2XX answer was cut off and answered again on a retry pays 2;
    /// not for a model error (see `docs/cost-model.md`).
    pub fn per_1000_calls(mut self, usd: Decimal) -> Self {
        self.usd_per_1000_calls = Some(usd);
        self
    }

    /// Per-token prices, in USD per 1,000 input and output tokens.
    pub fn per_1000_tokens(mut self, input_usd: Decimal, output_usd: Decimal) -> Self {
        self.usd_per_1000_input_tokens = Some(input_usd);
        self.usd_per_1000_output_tokens = Some(output_usd);
        self
    }

    /// Makes these charges the endpoint's whole price: receipts carry no compute or
    /// data-processing lines (and no endpoint profile is needed to price a call).
    pub fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// Checks that no price is negative or implausibly high, and that charges
    /// marked [`alone`](Self::alone) have a price above $0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (option, name, v) in [
            (
                "UsageCharges::usd_per_1000_calls",
                "per 1,000 calls",
                self.usd_per_1000_calls,
            ),
            (
                "UsageCharges::usd_per_1000_input_tokens",
                "per 1,000 input tokens",
                self.usd_per_1000_input_tokens,
            ),
            (
                "UsageCharges::usd_per_1000_output_tokens",
                "per 1,000 output tokens",
                self.usd_per_1000_output_tokens,
            ),
        ] {
            match v.map(check_usd_per_unit) {
                Some(Err(BadPrice::Negative)) => {
                    return Err(ConfigError::new(
                        option,
                        format!("the price {name} must not be negative"),
                    ));
                }
                Some(Err(BadPrice::AboveSane)) => {
                    return Err(ConfigError::new(
                        option,
                        format!("the price {name} is above {MAX_SANE_USD_PER_UNIT} USD"),
                    )
                    .hint("check the unit"));
                }
                Some(Ok(())) | None => {}
            }
        }
        // $0 prices next to a priced one (free input tokens, say) are a choice;
        // charges that are the whole price and all $0 would price every call at
        // a silent $0.
        let none_above_zero = [
            self.usd_per_1000_calls,
            self.usd_per_1000_input_tokens,
            self.usd_per_1000_output_tokens,
        ]
        .iter()
        .all(|v| v.is_none_or(|usd| usd.is_zero()));
        if self.alone && none_above_zero {
            return Err(ConfigError::new(
                "UsageCharges::alone",
                "charges marked `alone` need a price above $0 per 1,000 calls or per \
                 1,000 tokens (otherwise every call would cost a silent $0)",
            ));
        }
        Ok(())
    }
}

/// A rate or why there is none: what billing receives from pricing.
pub type RateResult = Result<Rate, PriceError>;

/// Rounds a cost to [`COST_SCALE`] places.
pub fn round_cost(usd: Decimal) -> Decimal {
    arith::round_dp(usd, COST_SCALE)
}

/// Hours in a duration, exact to the microsecond (`µs / 3,600,000,000`).
pub fn hours(d: Duration) -> Decimal {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    arith::quotient(micros, 3_600_000_000)
}

/// Femtoseconds (10⁻¹⁵ s) in a nanosecond: sharing clocks count in fs.
pub(crate) const FS_PER_NANOSECOND: u128 = 1_000_000;

/// The instance time a processor-sharing clock allocated a call, exactly: in
/// instance-femtoseconds (10⁻¹⁵ s), as the clock counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SharedTime {
    pub(crate) fs: u128,
}

impl SharedTime {
    pub(crate) fn from_fs(fs: u128) -> Self {
        SharedTime { fs }
    }

    /// In instance-hours, rounded down at 18 decimal places: the quantity a
    /// receipt shows (its cost is priced from the femtoseconds, not from this).
    pub(crate) fn hours(self) -> Decimal {
        // An hour is 3.6·10¹⁸ fs: rounded down at 18 places, fs are ⌊fs / 3.6⌋
        // atto-hours (10⁻¹⁸ h), in integers.
        let atto_hours = self.fs.saturating_mul(10) / 36;
        match i128::try_from(atto_hours) {
            Ok(n) if n < 1 << 96 => Decimal::from_i128_with_scale(n, 18),
            _ => Decimal::MAX,
        }
    }

    /// `fraction` of it (a copy's share of an instance), rounded down to the
    /// femtosecond; nothing for a fraction below 0.
    pub(crate) fn times(self, fraction: Decimal) -> Self {
        if fraction.is_sign_negative() {
            return SharedTime::default();
        }
        let m = fraction.mantissa().unsigned_abs();
        let unit = 10u128.pow(fraction.scale());
        SharedTime::from_fs(mul_div_floor(self.fs, m, unit).unwrap_or(u128::MAX))
    }

    /// What it costs at `usd_per_hour`, rounded down once to 10⁻¹² USD from the
    /// exact time (not from the hours shown, which are rounded down already);
    /// `None` when no decimal holds it.
    pub(crate) fn cost_down(self, usd_per_hour: Decimal) -> Option<Decimal> {
        if usd_per_hour.is_sign_negative() {
            // Not a price any source gives: as the hours shown price it.
            return checked_mul_round_dp_down(usd_per_hour, self.hours(), COST_SCALE);
        }
        hourly_fs_cost_down(usd_per_hour, self.fs)
    }
}

/// Serverless billed seconds: the duration rounded up to the millisecond.
pub fn billed_seconds(d: Duration) -> Decimal {
    Decimal::from(billed_millis(d)) / Decimal::from(1000)
}

/// The milliseconds serverless bills for a duration: rounded up, per request.
pub(crate) fn billed_millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// GB (2³⁰ bytes) in a byte count.
pub fn gigabytes(bytes: u64) -> Decimal {
    arith::quotient(bytes, BYTES_PER_GB)
}

/// A line priced at `rate` for `quantity`, or unpriced with the rate's error.
pub(crate) fn line(
    item: LineItem,
    quantity: Decimal,
    unit: QuantityUnit,
    rate: &RateResult,
) -> CostLine {
    match rate {
        Ok(rate) => priced(item, quantity, unit, rate.usd_per_unit, &rate.provenance),
        Err(err) => unpriced(item, quantity, unit, err.to_string()),
    }
}

/// A line priced at `usd_per_unit` for `quantity`; unpriced, saying why, when
/// the cost is more than a decimal holds (a garbage rate from a price source).
pub(crate) fn priced(
    item: LineItem,
    quantity: Decimal,
    unit: QuantityUnit,
    usd_per_unit: Decimal,
    provenance: &Provenance,
) -> CostLine {
    let Some(cost_usd) = checked_mul_round_dp(usd_per_unit, quantity, COST_SCALE) else {
        return implausible(item, quantity, unit, usd_per_unit);
    };
    CostLine {
        item,
        quantity: quantity.normalize(),
        unit,
        price: LinePrice::Priced {
            usd_per_unit,
            cost_usd,
            provenance: provenance.clone(),
        },
    }
}

/// The unpriced line of a rate whose cost for `quantity` no decimal holds: no
/// SageMaker price comes near such a rate, so it is not a price (and never a panic).
fn implausible(
    item: LineItem,
    quantity: Decimal,
    unit: QuantityUnit,
    usd_per_unit: Decimal,
) -> CostLine {
    let reason = format!(
        "the rate {usd_per_unit} USD per unit × {} is more than a decimal holds: not a \
         plausible price (no SageMaker price is above {MAX_SANE_USD_PER_UNIT} USD per unit)",
        quantity.normalize()
    );
    unpriced(item, quantity, unit, reason)
}

/// A line that could not be priced at all (no profile, unsupported memory size, ...).
pub(crate) fn unpriced(
    item: LineItem,
    quantity: Decimal,
    unit: QuantityUnit,
    reason: String,
) -> CostLine {
    CostLine {
        item,
        quantity: quantity.normalize(),
        unit,
        price: LinePrice::Unpriced { reason },
    }
}

/// The price key of a variant's compute: what one instance-hour (real-time or
/// asynchronous) or one serverless second of the variant costs.
///
/// ```
/// use sagemeter::billing::compute_key;
/// use sagemeter::endpoint::{EndpointKind, VariantBilling, VariantProfile};
/// use sagemeter::pricing::PriceKey;
///
/// let variant = VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2);
/// assert_eq!(
///     compute_key("us-east-1", EndpointKind::RealTime, &variant.billing)?,
///     PriceKey::hosting("us-east-1", "ml.g5.xlarge"),
/// );
/// # Ok::<(), sagemeter::pricing::PriceError>(())
/// ```
///
/// Serverless memory sizes are priced per whole GB: one that is not (or is 0) has
/// no key, and the error says so ([`PriceError::Unavailable`]).
pub fn compute_key(
    region: &str,
    kind: EndpointKind,
    billing: &VariantBilling,
) -> Result<PriceKey, PriceError> {
    match billing {
        VariantBilling::Instance { instance_type, .. } => Ok(match kind {
            EndpointKind::Async => PriceKey::AsyncInference {
                region: region.to_owned(),
                instance_type: instance_type.clone(),
            },
            _ => PriceKey::hosting(region, instance_type.clone()),
        }),
        VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency,
        } => {
            if *memory_mb == 0 || memory_mb % 1024 != 0 {
                return Err(PriceError::Unavailable {
                    reason: format!(
                        "serverless memory size {memory_mb} MB is not a whole number of GB"
                    ),
                });
            }
            let memory_gb = memory_mb / 1024;
            let region = region.to_owned();
            Ok(match provisioned_concurrency {
                Some(_) => PriceKey::ProvisionedConcurrencyUsage { region, memory_gb },
                None => PriceKey::Serverless { region, memory_gb },
            })
        }
    }
}

/// What [`Allocation::Amortized`] charges one call, from the variant's accrual
/// (see `Totals::amortized_since_previous_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AmortizedShare {
    /// The variant's first call: nothing before it to amortise, busy time.
    First,
    /// What the capacity accrued since the previous call, per rate.
    Accrued {
        /// One part per rate.
        parts: Vec<AccruedCapacity>,
        /// The instance-hours of the variant's own that stood meanwhile at no
        /// known rate, in none of `parts` (`StandingRate::beside_unknown`).
        unpriced_instance_hours: Decimal,
    },
    /// No standing rate is known (so nothing accrues): the wall-clock time since
    /// the previous call, at the call's instance count.
    Gap(Duration),
}

/// What a variant's capacity accrued at one rate between two amortised calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccruedCapacity {
    /// The rate, USD per instance-hour.
    pub(crate) usd_per_instance_hour: Decimal,
    /// Where the rate came from.
    pub(crate) source: PriceOrigin,
    /// Why, when a fallback (the latest stretch's note).
    pub(crate) note: Option<std::sync::Arc<str>>,
    /// Instance-hours accrued at the rate.
    pub(crate) instance_hours: Decimal,
    /// What they cost, at [`COST_SCALE`] places: the parts of all calls add up to
    /// the accrual's running figure.
    pub(crate) cost_usd: Decimal,
}

/// The compute lines of an amortised call on an instance variant (see
/// [`Allocation::Amortized`]): one per rate accrued since the previous call; for
/// the first call, busy time (as [`compute_line`]); while no rate is known, the
/// wall-clock gap × the call's instances, unpriced with the rate's error.
///
/// A part at the call's own rate and source carries the rate's full provenance
/// (SKU, effective date); a part at another carries its source and note.
pub(crate) fn amortized_compute_lines(
    billing: &VariantBilling,
    usage: &Usage,
    share: AmortizedShare,
    rate: &RateResult,
) -> Vec<CostLine> {
    let parts = match (billing, share) {
        // Serverless bills by the call, and a first call has nothing before it.
        (VariantBilling::Serverless { .. }, _) | (_, AmortizedShare::First) => {
            return vec![compute_line(
                billing,
                usage,
                Allocation::Amortized,
                None,
                None,
                rate,
            )];
        }
        (VariantBilling::Instance { instance_count, .. }, AmortizedShare::Gap(gap)) => {
            return vec![line(
                LineItem::Compute,
                hours(gap) * Decimal::from(*instance_count),
                QuantityUnit::InstanceHours,
                rate,
            )];
        }
        // The unpriced instance-hours are the caller's to state, with why.
        (_, AmortizedShare::Accrued { parts, .. }) => parts,
    };
    let own = rate.as_ref().ok();
    if parts.is_empty() {
        // No time passed since the previous call's end (or this call ended
        // before it): its instance time is on that call's receipt.
        return vec![line(
            LineItem::Compute,
            Decimal::ZERO,
            QuantityUnit::InstanceHours,
            rate,
        )];
    }
    parts
        .into_iter()
        .map(|part| {
            let provenance = match own {
                Some(own)
                    if own.usd_per_unit == part.usd_per_instance_hour
                        && own.provenance.source == part.source
                        && own.provenance.note == part.note =>
                {
                    own.provenance.clone()
                }
                _ => {
                    let mut provenance = Provenance::new(part.source);
                    provenance.note = part.note;
                    provenance
                }
            };
            CostLine {
                item: LineItem::Compute,
                quantity: part.instance_hours.normalize(),
                unit: QuantityUnit::InstanceHours,
                price: LinePrice::Priced {
                    usd_per_unit: part.usd_per_instance_hour,
                    cost_usd: part.cost_usd,
                    provenance,
                },
            }
        })
        .collect()
}

/// The compute line of one call on a variant.
///
/// - Instance, processor sharing: `shared instance-hours × usd/h`, the share
///   allocated by the endpoint's sharing clock (`shared`, exact in
///   instance-femtoseconds), rounded down once to the pico-dollar; the quantity
///   shown is the instance-hours rounded down at 18 places. Without a share (a
///   call the clock did not see), busy time.
/// - Instance, busy time: `latency h × usd/h` (one instance serves one call).
/// - Instance, amortised: see [`amortized_compute_lines`]; here (its first call,
///   or one it does not bill), busy time.
/// - Serverless: `billed seconds × usd/s`, at the rate the caller gives: with
///   provisioned concurrency its inference-duration rate, or the on-demand rate for
///   a call beyond it. The billed seconds are the latency rounded up to the
///   millisecond or, for a call several of whose attempts reached the model,
///   `serverless_ms`: each attempt rounded up on its own, as AWS bills each
///   request it ran.
pub(crate) fn compute_line(
    billing: &VariantBilling,
    usage: &Usage,
    allocation: Allocation,
    shared: Option<SharedTime>,
    serverless_ms: Option<u64>,
    rate: &RateResult,
) -> CostLine {
    match billing {
        VariantBilling::Instance { .. } => {
            match (allocation, shared) {
                (Allocation::ProcessorSharing, Some(time)) => match rate {
                    // Rounded down, so that shares never add up to more than the
                    // instances' accrued cost; once, from the exact time.
                    Ok(rate) => {
                        let shared = time.hours();
                        match time.cost_down(rate.usd_per_unit) {
                            Some(cost_usd) => CostLine {
                                item: LineItem::Compute,
                                quantity: shared.normalize(),
                                unit: QuantityUnit::InstanceHours,
                                price: LinePrice::Priced {
                                    usd_per_unit: rate.usd_per_unit,
                                    cost_usd,
                                    provenance: rate.provenance.clone(),
                                },
                            },
                            None => implausible(
                                LineItem::Compute,
                                shared,
                                QuantityUnit::InstanceHours,
                                rate.usd_per_unit,
                            ),
                        }
                    }
                    Err(err) => unpriced(
                        LineItem::Compute,
                        time.hours(),
                        QuantityUnit::InstanceHours,
                        err.to_string(),
                    ),
                },
                _ => line(
                    LineItem::Compute,
                    hours(usage.latency),
                    QuantityUnit::InstanceHours,
                    rate,
                ),
            }
        }
        VariantBilling::Serverless { .. } => line(
            LineItem::Compute,
            match serverless_ms {
                Some(ms) => Decimal::from(ms) / Decimal::from(1000),
                None => billed_seconds(usage.latency),
            },
            QuantityUnit::Seconds,
            rate,
        ),
    }
}

/// Data processed in and out, for the bytes of this call.
pub(crate) fn data_lines(
    usage: &Usage,
    data_in: &RateResult,
    data_out: &RateResult,
) -> [CostLine; 2] {
    [
        line(
            LineItem::DataIn,
            gigabytes(usage.bytes_in),
            QuantityUnit::Gigabytes,
            data_in,
        ),
        line(
            LineItem::DataOut,
            gigabytes(usage.bytes_out),
            QuantityUnit::Gigabytes,
            data_out,
        ),
    ]
}

/// Whether a call got a successful (HTTP 2XX) answer from SageMaker: AWS
/// Marketplace charges one inference for each, by default. An `InvokeEndpoint`
/// answered (`Outcome::Ok`), an async submission accepted, and a response stream
/// whose 200 arrived (its `parts` counted from then), even one the model broke
/// off after it or its caller dropped; not a model error (HTTP 424), nor a call
/// dropped or timed out before its answer came.
pub(crate) fn answered_2xx(usage: &Usage) -> bool {
    usage.outcome == Outcome::Ok || usage.parts.is_some()
}

/// The input and output tokens of `usage` that count (in
/// `sagemeter_tokens_total`, on the cost line and on the call's span, as
/// `report` counts them): those it reports when its call was answered with HTTP
/// 2XX ([`answered_2xx`]), none otherwise. A failed asynchronous inference's
/// settlement may carry the counts of an output that answered no call; its
/// token lines charge none.
pub(crate) fn counted_tokens(usage: &Usage) -> (Option<u64>, Option<u64>) {
    if answered_2xx(usage) {
        (usage.input_tokens, usage.output_tokens)
    } else {
        (None, None)
    }
}

/// Why a call's per-inference line charges nothing. A call cancelled (dropped, or
/// timed out by the SDK) before its answer came may still have been answered by
/// SageMaker after its caller left, and then AWS Marketplace charges it: the
/// receipt is a lower bound, not "no answer".
fn no_inference_note(usage: &Usage) -> &'static str {
    match usage.outcome {
        Outcome::Cancelled => {
            "configured per endpoint; no inference charged here: no answer came before the \
             call was cancelled; if SageMaker answered it with HTTP 2XX afterwards, AWS \
             Marketplace charges one (a lower bound)"
        }
        _ => {
            "configured per endpoint; no inference charged: AWS Marketplace charges one for \
             each successful (HTTP 2XX) answer, and the call got none"
        }
    }
}

/// Why a call's per-token line charges no `direction` ("input", "output") tokens
/// when it got no successful (HTTP 2XX) answer: a model error answered none; a
/// call cancelled before its answer came may have been answered after its caller
/// left, and then its tokens were charged: a lower bound, as its fee is.
fn no_tokens_note(usage: &Usage, direction: &str) -> String {
    match usage.outcome {
        Outcome::Cancelled => format!(
            "configured per endpoint; no {direction} tokens charged here: no answer came \
             before the call was cancelled; if SageMaker answered it with HTTP 2XX \
             afterwards, its tokens were charged (a lower bound)"
        ),
        _ => format!(
            "configured per endpoint; no {direction} tokens charged: tokens are charged on a \
             successful (HTTP 2XX) answer, and the call got none"
        ),
    }
}

/// Why a call's per-token line of `direction` ("input", "output") is unpriced
/// when `cut_off` of its `answers` successful (HTTP 2XX) answers had their body
/// cut off (the SDK tried again, or failed the call): AWS Marketplace charges
/// each answer's tokens, and nobody read those. `unreported`: the answer read
/// did not report its count either.
fn cut_off_tokens_reason(cut_off: u32, answers: u32, direction: &str, unreported: bool) -> String {
    let of = if answers == 1 { "answer" } else { "answers" };
    let (was, its, body) = if cut_off == 1 {
        ("was", "its", "its body was")
    } else {
        ("were", "their", "their bodies were")
    };
    let reason = format!(
        "{cut_off} of {answers} {of} (HTTP 2XX) {was} cut off before {body} read: {its} \
         {direction} tokens are charged but not known"
    );
    match unreported {
        true => format!(
            "{reason}; the answer read did not report its {direction} tokens either \
             (configure a TokenCounter)"
        ),
        false => reason,
    }
}

/// Per-inference and per-token lines, as configured.
///
/// The per-inference fee is one call for each successful (HTTP 2XX) answer the
/// call got, as AWS Marketplace charges by default: `answers_2xx`, those its
/// attempts were seen to get (a success whose body was cut off and which the
/// SDK tried again is one, its retry's success another), at least one when the
/// call was answered ([`answered_2xx`]: its attempts may not have been seen). A
/// call that got none (a model error, a call cancelled before its answer) has
/// the line at 0 calls, $0, saying why. A container can report another count in
/// its response's `X-Amzn-Inference-Metering` header; SageMaker's runtime API
/// does not document passing it on to the caller and the SDK's output has no
/// field for it, so it is not read: receipts count one per 2XX answer (a known
/// limit).
///
/// The per-token lines charge the tokens a 2XX answer reported; one that did not
/// report a count has that line unpriced (a `TokenCounter` can count it). A call
/// that got no 2XX answer answered no tokens: its token lines are 0 tokens, $0,
/// priced, saying why, as its fee line is (not unpriced, which would advise a
/// `TokenCounter` that cannot help and count the call as unpriced). Each 2XX
/// answer whose body was cut off (counted in `answers_2xx` beyond the call's
/// own answer) was charged tokens nobody read: each token line then has an
/// unpriced line of 0 tokens after it saying so (after the answer read's priced
/// tokens, when it reported them: the receipt keeps their cost and is not fully
/// priced), whether or not the call was answered in the end.
pub(crate) fn usage_charge_lines(
    usage: &Usage,
    answers_2xx: u32,
    charges: &UsageCharges,
) -> Vec<CostLine> {
    let thousand = Decimal::from(1000);
    let configured = Provenance::new(PriceOrigin::Override).with_note("configured per endpoint");
    let mut lines = Vec::new();
    if let Some(p) = charges.usd_per_1000_calls {
        let inferences = answers_2xx.max(u32::from(answered_2xx(usage)));
        let (calls, provenance) = if inferences > 0 {
            (Decimal::from(inferences), configured.clone())
        } else {
            (
                Decimal::ZERO,
                Provenance::new(PriceOrigin::Override).with_note(no_inference_note(usage)),
            )
        };
        lines.push(priced(
            LineItem::Inference,
            calls,
            QuantityUnit::Calls,
            p / thousand,
            &provenance,
        ));
    }
    let tokens = [
        (
            LineItem::InputTokens,
            charges.usd_per_1000_input_tokens,
            usage.input_tokens,
            "input",
        ),
        (
            LineItem::OutputTokens,
            charges.usd_per_1000_output_tokens,
            usage.output_tokens,
            "output",
        ),
    ];
    let answered = answered_2xx(usage);
    // The 2XX answers whose body nobody read: their tokens are not known.
    let answers = answers_2xx.max(u32::from(answered));
    let cut_off = answers - u32::from(answered);
    for (item, price, count, direction) in tokens {
        if let Some(p) = price {
            if cut_off > 0 {
                // The answer read's tokens, priced when it reported them; the
                // cut-off answers' after them, not known.
                if let (true, Some(n)) = (answered, count) {
                    lines.push(priced(
                        item,
                        Decimal::from(n),
                        QuantityUnit::Tokens,
                        p / thousand,
                        &configured,
                    ));
                }
                let unreported = answered && count.is_none();
                lines.push(unpriced(
                    item,
                    Decimal::ZERO,
                    QuantityUnit::Tokens,
                    cut_off_tokens_reason(cut_off, answers, direction, unreported),
                ));
                continue;
            }
            lines.push(match count {
                _ if !answered => priced(
                    item,
                    Decimal::ZERO,
                    QuantityUnit::Tokens,
                    p / thousand,
                    &Provenance::new(PriceOrigin::Override)
                        .with_note(no_tokens_note(usage, direction)),
                ),
                Some(n) => priced(
                    item,
                    Decimal::from(n),
                    QuantityUnit::Tokens,
                    p / thousand,
                    &configured,
                ),
                None => unpriced(
                    item,
                    Decimal::ZERO,
                    QuantityUnit::Tokens,
                    // The count this line needs: a TGI answer reports its output
                    // and not its input.
                    format!(
                        "the response did not report its {direction} tokens (configure a \
                         TokenCounter)"
                    ),
                ),
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests;
