//! The [`Meter`]: discovery, pricing, billing and recording for any call.

use crate::billing::{
    Allocation, AmortizedShare, CopyShare, Cost, CostLine, LineItem, LinePrice, QuantityUnit,
    RateResult, ResourcesFrom, UsageCharges, amortized_compute_lines, component_compute_line,
    compute_key, compute_line, copy_share, data_lines, fit_to_instances, unpriced,
    unreserved_fraction, usage_charge_lines,
};
use crate::budget::{BudgetStatus, Budgets, Priced, Refusal, Reservation};
use crate::config_error::ConfigError;
use crate::endpoint::{
    ComponentProfile, Discovery, DiscoveryError, EndpointProfile, ProfileSource, VariantBilling,
    VariantProfile, owned,
};
use crate::ledger::WarnLimiter;
use crate::pricing::{
    InstanceResources, PriceKey, PriceOrigin, PriceSource, Provenance, Rate, is_plausible_usd,
    plausible,
};
use crate::sink::{CostSink, NamesComponents};
use crate::totals::{
    ClockSeat, EndpointSlot, InstanceClock, RateFrom, StandingRate, StandingTerm, StorageTerm,
    Totals, TotalsSnapshot, VariantSlot, no_storage_terms, no_terms,
};
use crate::usage::{
    StreamTokens, TokenCounter, TokenUsage, TokensUnseen, Usage, detect_tokens, is_event_stream,
    is_plain_text,
};
use aws_smithy_async::time::SharedTimeSource;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The metering engine shared by [`Client`](crate::Client), the
/// [`SendMeteredExt`](crate::SendMeteredExt) extension and the
/// [`MeteringInterceptor`](crate::client::MeteringInterceptor).
///
/// Cheap to clone (an `Arc`); every clone shares totals, caches and sinks.
///
/// ```no_run
/// # async fn run() -> sagemeter::Result<()> {
/// use sagemeter::SendMeteredExt;
/// let sdk_config = aws_config::load_from_env().await;
/// let meter = sagemeter::Meter::builder(&sdk_config).build_meter()?;
/// let sdk = aws_sdk_sagemakerruntime::Client::new(&sdk_config);
/// let response = sdk
///     .invoke_endpoint()
///     .endpoint_name("my-endpoint")
///     .body(aws_sdk_sagemakerruntime::primitives::Blob::new("{}"))
///     .send_metered(&meter)
///     .await?;
/// assert_eq!(meter.totals().client_usd, response.cost().cost_usd);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Meter {
    pub(crate) inner: Arc<MeterInner>,
}

pub(crate) struct MeterInner {
    /// The region calls are priced in (price keys, receipts).
    pub region: Arc<str>,
    /// The region of the endpoints metered: where discovery asks and where calls
    /// must go (see [`Meter::endpoint_region`]). The same `Arc` as `region` unless
    /// [`ClientBuilder::region`](crate::ClientBuilder::region) prices calls at
    /// another region's rates.
    pub endpoint_region: Arc<str>,
    pub discovery: Discovery,
    pub prices: Arc<dyn PriceSource>,
    pub price_overrides: crate::FastMap<PriceKey, Rate>,
    /// Instance resources stated on the builder, by instance type.
    pub instance_resources: crate::FastMap<String, InstanceResources>,
    /// The data-processing keys of `region`, made once.
    pub data_in_key: PriceKey,
    pub data_out_key: PriceKey,
    pub allocation: Allocation,
    pub charges: crate::FastMap<String, UsageCharges>,
    pub token_counter: Option<Arc<dyn TokenCounter>>,
    pub default_tags: BTreeMap<String, String>,
    pub totals: Totals,
    /// This meter's id, random (see [`new_meter_id`]): which meter counted an
    /// async submission among its unpriced calls, so that its settlement here
    /// is not counted twice and one elsewhere is counted there.
    pub id: u64,
    pub budgets: Arc<Budgets>,
    /// Totals and budgets shared with the fleet, when on.
    #[cfg(feature = "fleet")]
    pub fleet: Option<crate::fleet::Fleet>,
    pub background: Arc<crate::background::Background>,
    /// Calls begun whose receipts are not recorded yet: shutdown waits for them.
    pub calls: Arc<crate::background::InFlight>,
    /// Every receipt goes to each of these, in order: the cost log line, the
    /// metrics (unless built [`without_metrics`](crate::ClientBuilder::without_metrics)),
    /// then the builder's sinks.
    pub sinks: Vec<MeteredSink>,
    pub time: SharedTimeSource,
    pub seq: AtomicU64,
    /// The unpriced reasons warned about once already, per endpoint (see
    /// `Meter::warn_unpriced`).
    pub warned: WarnedOnce,
    /// The notes on a variant's configuration logged once already (no volume
    /// size, a part left out of its accrual, a fleet alongside; see
    /// `Meter::first_warning`): a set of their own, so that one per variant of
    /// many endpoints never takes the room of the unpriced reasons' WARNs.
    pub noted: WarnedOnce,
    pub prepared: PreparedMemo,
    /// The generation of the last answer of discovery (a profile, or a
    /// deletion) applied to the accrual and sharing clocks, per endpoint: held
    /// while one is applied, so that none is applied after a newer one (see
    /// [`Meter::set_capacity`]). Taken when a call's profile and rates are put
    /// together afresh (at most about once a second per endpoint while the
    /// same profile stands), not by a call that reuses them.
    pub capacity_applied: Mutex<crate::FastMap<String, u64>>,
    /// The async invocations settled lately: a second settlement of one is a
    /// duplicate, not billed again.
    pub settled: super::async_invoke::SettledCalls,
}

/// A new meter's id: random, different for each meter of a process (a counter
/// hashed under std's randomly keyed SipHash) and, but for a 2⁻⁵³ chance a
/// pair, from those of other processes. 53 bits, so that a JSON reader that
/// reads numbers as doubles (JavaScript's) keeps a copy's id whole. Not a
/// secret: it only tells meters apart in a
/// [`PendingInference`](super::PendingInference) copy.
pub(crate) fn new_meter_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static BUILT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(BUILT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish() >> 11
}

/// How long [`Meter::prepare_now`] reuses what it found for an endpoint (on the
/// meter's clock) instead of asking the price source again: a rate that changes
/// in the source reaches calls at most this much later.
const PREPARED_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The shortest period of the profile refresh loop ([`Meter::start_refreshing`]),
/// whatever [`discovery_refresh`](crate::ClientBuilder::discovery_refresh) says: a
/// refresh interval of zero must not make it spin.
const MIN_REFRESH_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Why work meant for the background was done at once, on the rates at hand.
pub(crate) const NOT_WAITED: &str =
    "the meter is shut down, there is no Tokio runtime, or the runtime it ran on went away";

/// The profile and rates [`Meter::prepare_now`] last put together per endpoint,
/// reused while discovery still answers with the same profile and for at most
/// [`PREPARED_REUSE`]: one look-up per call instead of one per rate, and no
/// price keys or rates copied.
#[derive(Default)]
pub(crate) struct PreparedMemo(
    std::sync::RwLock<crate::FastMap<String, (Arc<Prepared>, SystemTime)>>,
);

impl PreparedMemo {
    fn get(
        &self,
        endpoint: &str,
        profile: &Arc<EndpointProfile>,
        now: SystemTime,
    ) -> Option<Arc<Prepared>> {
        let memo = self.0.read().unwrap_or_else(|e| e.into_inner());
        let (prepared, put_at) = memo.get(endpoint)?;
        let same_profile = matches!(&prepared.profile, Ok(p) if Arc::ptr_eq(p, profile));
        // Reused for a second from when it was put; not for as long as the wall
        // clock stepped back since (a second's grace for readings taken earlier).
        let fresh = now < *put_at + PREPARED_REUSE
            && put_at
                .duration_since(now)
                .map_or(true, |ahead| ahead <= crate::totals::CLOCK_STEPPED_BACK);
        (same_profile && fresh).then(|| prepared.clone())
    }

    fn put(&self, endpoint: &str, prepared: Arc<Prepared>, now: SystemTime) {
        let mut memo = self.0.write().unwrap_or_else(|e| e.into_inner());
        memo.entry_ref(endpoint).insert((prepared, now));
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("region", &self.inner.region)
            .field("endpoint_region", &self.inner.endpoint_region)
            .field("prices", &self.inner.prices)
            .field("allocation", &self.inner.allocation)
            .field("totals", &self.inner.totals)
            .finish_non_exhaustive()
    }
}

/// The rates a variant needs, looked up while the call is in flight, and where
/// its running totals are kept.
#[derive(Debug, Clone)]
pub(crate) struct VariantRates {
    pub compute: RateResult,
    /// For provisioned concurrency: the on-demand serverless rate, which AWS bills
    /// the calls beyond the provisioned concurrency at.
    pub beyond_provisioned: Option<RateResult>,
    /// What the variant's standing capacity costs per hour, when its rate is
    /// known: instances × the compute rate, or provisioned concurrency × the
    /// provisioned-concurrency rate × 3600. Accrual needs it on every call.
    pub standing_usd_per_hour: Option<Decimal>,
    /// The instances (or provisioned concurrency) `standing_usd_per_hour` pays for.
    pub standing_instances: u32,
    /// Where the rate of `standing_usd_per_hour` came from.
    pub standing_from: Option<RateFrom>,
    /// What the variant's ML storage volumes cost per month (all instances), when
    /// the volume size and the storage rate are known.
    pub storage_usd_per_month: Option<Decimal>,
    /// Where the storage rate came from.
    pub storage_from: Option<RateFrom>,
    /// Why the variant's ML storage is left out of its accrual, when its volume
    /// size is known and its storage rate is not.
    pub storage_unpriced: Option<String>,
    /// Why the variant's provisioned concurrency is left out of its accrual,
    /// when it has some and the provisioned-concurrency rate is not known:
    /// what stands and the price source's reason.
    pub standing_unpriced: Option<String>,
    /// The fleets billed alongside the variant (a shadow, a deployment's new
    /// fleet) that its accrual leaves out, their standing rate not known: each
    /// one's name and why.
    pub alongside_unpriced: Vec<(String, String)>,
    /// The share of an instance one copy of each of the variant's inference
    /// components reserves (or why it is unknown), by component name.
    pub components: Vec<(String, Result<CopyShare, String>)>,
    /// The share of the variant's instances no component reserves, when it hosts
    /// components and every share is known.
    pub unreserved_fraction: Option<Decimal>,
    /// How the variant is billed (its own part of `standing_parts`).
    pub billing: VariantBilling,
    /// When variants billed alongside add to `standing_usd_per_hour`: each
    /// one's standing charge, this variant's first (empty otherwise).
    pub standing_parts: Arc<[crate::billing::StandingPart]>,
    /// The later rates of `standing_usd_per_hour` its price source's answer
    /// announced (terms AWS published ahead), as the accrual charges them from
    /// their dates ([`StandingRate::terms`]).
    pub standing_terms: Arc<[StandingTerm]>,
    /// The later rates of `storage_usd_per_month` its storage rate's price source
    /// announced, as the accrual charges them from their dates
    /// ([`StandingRate::storage_terms`]).
    pub storage_terms: Arc<[StorageTerm]>,
    pub totals: VariantSlot,
    /// While this variant's own standing rate is not known: the rates of the
    /// fleets billed alongside it whose rates are, summed as
    /// [`add_alongside`](Self::add_alongside) sums them (each one a part), for
    /// the accrual to carry until a rate of its own is known
    /// ([`standing_beside_unknown`](Self::standing_beside_unknown)).
    pub beside_unknown: Option<Box<VariantRates>>,
}

/// The rates of a variant's standing charges (beyond its per-call ones).
#[derive(Debug, Default, Clone)]
pub(crate) struct StandingRates {
    /// Provisioned concurrency's per-second standing rate (serverless variants
    /// with provisioned concurrency).
    pub provisioned: Option<RateResult>,
    /// The on-demand serverless rate of the calls beyond the provisioned
    /// concurrency (serverless variants with provisioned concurrency).
    pub beyond_provisioned: Option<RateResult>,
    /// ML storage, per GB-month (variants with a known volume size).
    pub storage: Option<RateResult>,
}

/// A fleet's rates as the price source gives them: its compute rate and its
/// standing charges' rates, before they are put together with what it hosts
/// ([`VariantRates::new`]).
type FleetRates = (RateResult, StandingRates);

/// What a variant's standing capacity costs from a refresh of its profile on.
#[derive(Debug)]
pub(crate) enum Standing {
    /// It stands at this rate.
    Stands(StandingRate),
    /// Nothing of it stands (a serverless variant without provisioned
    /// concurrency, or an instance variant at 0 instances whose instance type's
    /// rate is not known, and nothing billed alongside): it costs nothing from
    /// then on.
    Nothing,
    /// Its rate is not known: the last known rate stays in force.
    Unknown,
}

impl VariantRates {
    /// What the variant's standing capacity costs, for the accrual: at a rate,
    /// nothing (nothing of it stands), or unknown (its rate is not known).
    fn standing(&self) -> Standing {
        match (self.standing_usd_per_hour, &self.standing_from) {
            (Some(usd_per_hour), Some(from)) => Standing::Stands(StandingRate {
                usd_per_hour_all_instances: usd_per_hour,
                instances: self.standing_instances,
                capacity_from: from.clone(),
                storage_usd_per_month: self.storage_usd_per_month,
                storage_from: self.storage_from.clone(),
                unreserved_fraction: self.unreserved_fraction,
                parts: self.standing_parts.clone(),
                terms: self.standing_terms.clone(),
                storage_terms: self.storage_terms.clone(),
                beside_unknown: false,
                unpriced_instances: 0,
            }),
            // No rate at all, not an unknown one: serverless without provisioned
            // concurrency has no standing charge, nor has an instance variant
            // scaled to 0 instances, whatever its instance type's rate (a shadow
            // or pending variant whose rate is unknown is left out with a WARN,
            // as beside a known rate).
            (None, _)
                if matches!(
                    self.billing,
                    VariantBilling::Serverless {
                        provisioned_concurrency: None,
                        ..
                    } | VariantBilling::Instance {
                        instance_count: 0,
                        ..
                    }
                ) =>
            {
                Standing::Nothing
            }
            _ => Standing::Unknown,
        }
    }

    fn new(
        variant: &VariantProfile,
        compute: RateResult,
        standing: StandingRates,
        hosted: Hosted<'_>,
        totals: VariantSlot,
    ) -> Self {
        let from = |rate: &crate::pricing::Rate| -> RateFrom {
            (rate.provenance.source, rate.provenance.note.clone())
        };
        // The standing rate, and what an hour costs at one unit of it (with the
        // rate, for the terms it announces).
        let (standing_usd_per_hour, standing_instances, standing_from, per_unit) =
            match (&variant.billing, &compute, &standing.provisioned) {
                (VariantBilling::Instance { instance_count, .. }, Ok(rate), _) => {
                    let per_unit = Decimal::from(*instance_count);
                    (
                        Some(rate.usd_per_unit * per_unit),
                        *instance_count,
                        Some(from(rate)),
                        Some((rate, per_unit)),
                    )
                }
                (
                    VariantBilling::Serverless {
                        provisioned_concurrency: Some(n),
                        ..
                    },
                    _,
                    Some(Ok(rate)),
                ) => {
                    let per_unit = Decimal::from(*n) * Decimal::from(3600);
                    (
                        Some(rate.usd_per_unit * per_unit),
                        *n,
                        Some(from(rate)),
                        Some((rate, per_unit)),
                    )
                }
                _ => (None, 0, None, None),
            };
        // Provisioned concurrency whose standing rate is not known: left out of
        // the accrual, saying so (never a silent $0).
        let standing_unpriced = match (&variant.billing, &standing.provisioned) {
            (
                VariantBilling::Serverless {
                    provisioned_concurrency: Some(n),
                    ..
                },
                None | Some(Err(_)),
            ) => {
                let why = match &standing.provisioned {
                    Some(Err(err)) => err.to_string(),
                    _ => "no price source gave it".to_owned(),
                };
                Some(format!("{n} × the per-second standing rate, {why}"))
            }
            _ => None,
        };
        let (storage_usd_per_month, storage_from, storage_unpriced, storage_terms) =
            match (&variant.billing, variant.volume_size_gb, &standing.storage) {
                (VariantBilling::Instance { instance_count, .. }, Some(gb), Some(Ok(rate))) => {
                    let gb = Decimal::from(gb) * Decimal::from(*instance_count);
                    (
                        Some(rate.usd_per_unit * gb),
                        Some(from(rate)),
                        None,
                        announced_storage_terms(rate, gb),
                    )
                }
                (VariantBilling::Instance { .. }, Some(gb), Some(Err(err))) => (
                    None,
                    None,
                    Some(format!("{gb} GB a volume, {err}")),
                    no_storage_terms(),
                ),
                _ => (None, None, None, no_storage_terms()),
            };
        let mut components = Vec::new();
        let mut unreserved = None;
        if let VariantBilling::Instance {
            instance_type,
            instance_count,
        } = &variant.billing
        {
            let stated = hosted.stated.get(instance_type.as_str());
            let resources =
                stated.or_else(|| compute.as_ref().ok().and_then(|r| r.instance.as_ref()));
            let resources_from = match stated {
                Some(_) => ResourcesFrom::Stated,
                None => ResourcesFrom::rate(compute.as_ref().ok().map(|r| r.provenance.source)),
            };
            // The components that reserve the instances; adapters run on their
            // base's copies and reserve nothing of their own.
            let on_variant: Vec<&ComponentProfile> = hosted
                .components
                .iter()
                .filter(|c| c.variant == variant.name && !c.is_adapter())
                .collect();
            for component in &on_variant {
                components.push((
                    component.name.clone(),
                    copy_share(
                        &component.per_copy,
                        instance_type,
                        resources,
                        resources_from,
                    ),
                ));
            }
            if !on_variant.is_empty() {
                fit_to_instances(*instance_count, &on_variant, &mut components);
                unreserved = unreserved_fraction(
                    *instance_count,
                    on_variant
                        .iter()
                        .copied()
                        .zip(components.iter().map(|(_, s)| s)),
                );
            }
            let adapters = hosted
                .components
                .iter()
                .filter(|c| c.variant == variant.name)
                .filter_map(|c| Some((c.name.as_str(), c.base.as_deref()?)));
            let mut of_base = Vec::new();
            for (adapter, base) in adapters {
                let share = match components.iter().find(|(name, _)| name == base) {
                    Some((_, share)) => share.clone(),
                    None => Err(format!(
                        "its base component `{base}` is not among the variant's components \
                         as discovered: its share of the instances is unknown"
                    )),
                };
                of_base.push((adapter.to_owned(), share));
            }
            components.extend(of_base);
        }
        let standing_terms = per_unit.map_or_else(no_terms, |(rate, per_unit)| {
            announced_terms(rate, per_unit, unreserved)
        });
        VariantRates {
            compute,
            beyond_provisioned: standing.beyond_provisioned,
            standing_usd_per_hour,
            standing_instances,
            standing_from,
            storage_usd_per_month,
            storage_from,
            storage_unpriced,
            standing_unpriced,
            alongside_unpriced: Vec::new(),
            components,
            unreserved_fraction: unreserved,
            billing: variant.billing.clone(),
            standing_parts: crate::billing::no_standing_parts(),
            standing_terms,
            storage_terms,
            totals,
            beside_unknown: None,
        }
    }

    /// While this variant's own standing rate is not known: the standing of
    /// the fleets billed alongside it whose rates are, theirs alone
    /// ([`StandingRate::beside_unknown`]); `None` otherwise.
    fn standing_beside_unknown(&self) -> Option<StandingRate> {
        if !matches!(self.standing(), Standing::Unknown) {
            return None;
        }
        let Standing::Stands(mut standing) = self.beside_unknown.as_ref()?.standing() else {
            return None;
        };
        standing.beside_unknown = true;
        standing.unpriced_instances = self.own_instances();
        Some(standing)
    }

    /// The instances (or provisioned concurrency) of the variant's own that
    /// stand, priced or not.
    fn own_instances(&self) -> u32 {
        match self.billing {
            VariantBilling::Instance { instance_count, .. } => instance_count,
            VariantBilling::Serverless {
                provisioned_concurrency,
                ..
            } => provisioned_concurrency.unwrap_or(0),
        }
    }

    /// Adds the standing capacity of `extra`, a variant billed alongside this one
    /// that serves no caller's call (a shadow variant, a deployment's pending
    /// fleet: [`EndpointProfile::billed_alongside`]), to this one's: the accrual
    /// then carries what AWS bills for it. `Err` (nothing added) with the reason
    /// when its rate is not known. The share of the instances no component
    /// reserves stays a share of this variant's own instances. Nothing is added
    /// either while this variant's own standing rate is not known: its standing
    /// stays unknown, so the last known rate (the others' in it) stays in
    /// force, as it does without them; the extra's alone would price this
    /// variant's instances at nothing. The extra's is kept apart then
    /// ([`beside_unknown`](Self::beside_unknown)), for when no rate of this
    /// variant's own was ever known.
    fn add_alongside(
        &mut self,
        extra: &VariantProfile,
        rates: &VariantRates,
    ) -> Result<(), String> {
        let Some(extra_usd_per_hour) = rates.standing_usd_per_hour else {
            // Provisioned concurrency at a rate not known: left out, its reason
            // said (not the inference rate's).
            if let Some(reason) = &rates.standing_unpriced {
                return Err(format!(
                    "its provisioned concurrency's rate is not known ({reason})"
                ));
            }
            return match &rates.compute {
                // Scaled to 0 instances: nothing standing, whatever the rate.
                _ if matches!(
                    extra.billing,
                    VariantBilling::Instance {
                        instance_count: 0,
                        ..
                    }
                ) =>
                {
                    Ok(())
                }
                Err(err) => Err(err.to_string()),
                // Serverless without provisioned concurrency: nothing standing.
                Ok(_)
                    if matches!(
                        extra.billing,
                        VariantBilling::Serverless {
                            provisioned_concurrency: None,
                            ..
                        }
                    ) =>
                {
                    Ok(())
                }
                Ok(_) => Err("its standing rate is not known".to_owned()),
            };
        };
        if matches!(self.standing(), Standing::Unknown) {
            match &mut self.beside_unknown {
                Some(beside) => return beside.add_alongside(extra, rates),
                None => {
                    // Its own part, as the accrual carries it: under its own
                    // billing, not this variant's.
                    let mut alone = rates.clone();
                    alone.standing_parts = Arc::from([crate::billing::StandingPart::new(
                        extra.billing.clone(),
                        extra_usd_per_hour,
                    )]);
                    self.beside_unknown = Some(Box::new(alone));
                }
            }
            return Ok(());
        }
        let own = self.standing_usd_per_hour;
        // Each part as AWS bills it, with the share of the accrual it pays for:
        // this variant's own nothing when nothing of it is standing (serverless
        // without provisioned concurrency), as the accrual then holds the
        // others' capacity alone.
        let mut parts = self.standing_parts.to_vec();
        if parts.is_empty() {
            // The first variant alongside: the standing rate is still its own.
            parts.push(crate::billing::StandingPart::new(
                self.billing.clone(),
                own.unwrap_or_default(),
            ));
        }
        parts.push(crate::billing::StandingPart::new(
            extra.billing.clone(),
            extra_usd_per_hour,
        ));
        self.standing_parts = parts.into();
        if !self.standing_terms.is_empty() || !rates.standing_terms.is_empty() {
            self.standing_terms = alongside_terms(
                (own, &self.standing_from, self.unreserved_fraction),
                &self.standing_terms,
                (extra_usd_per_hour, &rates.standing_from),
                &rates.standing_terms,
            );
        }
        if let (Some(fraction), Some(own)) = (self.unreserved_fraction, own) {
            let all = own + extra_usd_per_hour;
            self.unreserved_fraction = Some(if all.is_zero() {
                fraction
            } else {
                fraction * own / all
            });
        }
        self.standing_usd_per_hour = Some(own.unwrap_or_default() + extra_usd_per_hour);
        self.standing_instances = self
            .standing_instances
            .saturating_add(rates.standing_instances);
        self.standing_from = worse_of(self.standing_from.take(), &rates.standing_from);
        if let Some(storage) = rates.storage_usd_per_month {
            if !self.storage_terms.is_empty() || !rates.storage_terms.is_empty() {
                self.storage_terms = alongside_storage_terms(
                    (self.storage_usd_per_month, &self.storage_from),
                    &self.storage_terms,
                    (storage, &rates.storage_from),
                    &rates.storage_terms,
                );
            }
            self.storage_usd_per_month =
                Some(self.storage_usd_per_month.unwrap_or_default() + storage);
            self.storage_from = worse_of(self.storage_from.take(), &rates.storage_from);
        }
        if self.storage_unpriced.is_none() {
            self.storage_unpriced = rates.storage_unpriced.clone();
        }
        Ok(())
    }

    /// The copy share of the variant's component `name`: `None` when the variant
    /// hosts no such component.
    fn component(&self, name: &str) -> Option<&Result<CopyShare, String>> {
        self.components
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, share)| share)
    }
}

/// What a variant's instances host beyond the variant's own model: the endpoint's
/// inference components, and the instance resources stated on the builder.
#[derive(Clone, Copy)]
pub(crate) struct Hosted<'a> {
    pub components: &'a [ComponentProfile],
    pub stated: &'a crate::FastMap<String, InstanceResources>,
}

/// What is known about an endpoint before its response arrives.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub profile: Result<Arc<EndpointProfile>, DiscoveryError>,
    /// The rates of each of the profile's variants, in the profile's order.
    pub rates: Vec<VariantRates>,
    /// The region's data-processing rates (in, out): they need no profile, so a
    /// call whose endpoint could not be described still has its data lines.
    pub data: [RateResult; 2],
    /// Where the endpoint's running totals are kept.
    pub totals: EndpointSlot,
    /// Where each of its inference components' clocks and totals are kept.
    pub component_slots: Vec<(String, EndpointSlot)>,
}

impl Prepared {
    /// Whether discovery found no such endpoint.
    pub(crate) fn not_found(&self) -> bool {
        matches!(self.profile, Err(DiscoveryError::NotFound { .. }))
    }
}

impl Prepared {
    /// The slot of inference component `name`; `None` when the profile has no such
    /// component.
    fn component_slot(&self, name: &str) -> Option<EndpointSlot> {
        self.component_slots
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, slot)| *slot)
    }

    /// The rates of `variant`, one of the profile's variants.
    fn rates_of(&self, variant: &VariantProfile) -> &VariantRates {
        let index = self.profile.as_ref().ok().and_then(|profile| {
            profile
                .variants
                .iter()
                .position(|v| std::ptr::eq(v, variant))
        });
        match index.and_then(|i| self.rates.get(i)) {
            Some(rates) => rates,
            None => unreachable!("prepare() looks up rates for every variant of the profile"),
        }
    }
}

/// What a request targets beyond its endpoint: the production variant
/// (`TargetVariant`), the inference component (`InferenceComponentName`) and the
/// model of a multi-model endpoint (`TargetModel`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub variant: Option<String>,
    pub component: Option<String>,
    pub model: Option<String>,
}

impl Targets {
    /// The processor-sharing clock the call joins: its inference component's
    /// (whose copies are what its calls share), else its target variant's (whose
    /// instances are; the endpoint's own clock when the variant is its only one),
    /// else the endpoint's (all its instances, among which SageMaker routes it).
    pub(crate) fn clock_key<'a>(&self, endpoint: &'a str) -> std::borrow::Cow<'a, str> {
        match (&self.component, &self.variant) {
            (Some(component), _) => component_clock(endpoint, component).into(),
            (None, Some(variant)) => variant_clock(endpoint, variant).into(),
            (None, None) => endpoint.into(),
        }
    }

    /// The call's place on `endpoint`'s processor-sharing clock
    /// ([`clock_key`](Self::clock_key); a target variant's before the endpoint's
    /// profile made it: the endpoint's), found when the call begins (at `now`,
    /// on `meter`'s clock); it joins the clock when its first request goes out
    /// (see [`AttemptProbe`](super::call::AttemptProbe)).
    ///
    /// An adapter's call takes its seat on its base component's clock as soon as
    /// a profile is at hand (the override, or one cached: warmed by
    /// [`Meter::endpoint_profile`], or found by an earlier call whose own
    /// profile is not applied yet), not only once a call's profile was applied
    /// to the clocks: seated on a clock of its own, it would be allocated a
    /// copy's time that the base's calls are allocated too. Before any profile
    /// is known, it cannot be told from a component with copies of its own: its
    /// receipt says so (see `Meter::adapter_apart`).
    pub(crate) fn seat(&self, meter: &Meter, endpoint: &str, now: SystemTime) -> ClockSeat {
        let totals = &meter.inner.totals;
        if let Some(component) = &self.component
            && let Some(Some(base)) = meter.inner.discovery.profile_now(endpoint, now, |answer| {
                let base = answer.ok()?.component(component)?.base.as_deref()?;
                Some(component_clock(endpoint, base))
            })
        {
            return totals.seat_on(&base, None);
        }
        let clock = self.clock_key(endpoint);
        let or_else = (self.component.is_none() && self.variant.is_some()).then_some(endpoint);
        totals.seat_on(&clock, or_else)
    }
}

/// The name of a production variant's sharing clock in the totals: two separators,
/// so never an inference component's (whose names are not empty) nor an
/// endpoint's.
pub(crate) fn variant_clock(endpoint: &str, variant: &str) -> String {
    let separator = crate::totals::COMPONENT_SEPARATOR;
    format!("{endpoint}{separator}{separator}{variant}")
}

/// The name of an inference component's sharing clock in the totals: never an
/// endpoint's name (endpoint names cannot hold U+001F).
pub(crate) fn component_clock(endpoint: &str, component: &str) -> String {
    format!(
        "{endpoint}{}{component}",
        crate::totals::COMPONENT_SEPARATOR
    )
}

/// How fully `cost` (priced on `prepared`) is priced, as enforced budgets count
/// it (see [`Priced`]): nothing is worked out for a fully priced receipt. A
/// receipt whose only unpriced lines are the data in of an async input in S3
/// whose size was not given is bounded: that input is at most 1 GB
/// ([`MAX_ASYNC_INPUT_BYTES`](super::MAX_ASYNC_INPUT_BYTES), SageMaker's limit for
/// asynchronous inference), processed once for each of the submission's
/// `may_have_queued` attempts (at least one; [`FinishedCall::may_have_queued`]),
/// at the region's data-in rate the receipt was priced on (not on the line, which
/// says why it has no price). Without that rate, or with any other line
/// unpriced, it is not.
fn priced_for_budgets(cost: &Cost, prepared: &Prepared, may_have_queued: u32) -> Priced {
    if cost.is_fully_priced() {
        return Priced::Fully;
    }
    let only_input_size_unknown = cost.lines.iter().all(|line| match &line.price {
        LinePrice::Priced { .. } => true,
        LinePrice::Unpriced { reason } => {
            line.item == LineItem::DataIn && reason == super::async_invoke::DATA_IN_UNKNOWN
        }
    });
    let [data_in, _] = &prepared.data;
    let bound = match (only_input_size_unknown, data_in) {
        (true, Ok(rate)) => {
            let most_gb = crate::billing::gigabytes(super::MAX_ASYNC_INPUT_BYTES)
                * Decimal::from(may_have_queued.max(1));
            rate.usd_per_unit.checked_mul(most_gb)
        }
        _ => None,
    };
    bound.map_or(Priced::Partly, |unpriced_usd| Priced::AllBut {
        unpriced_usd,
    })
}

/// The note on a receipt whose variant `variant`'s own standing rate is not
/// known (`compute`'s error says why), and none is in force (none was since
/// its accrual began, or it stood at nothing since, scaled to 0): the accrual
/// carries the fleets billed alongside it alone (`alongside`: some stand), or
/// nothing.
fn own_left_out(variant: &str, alongside: bool, compute: &RateResult) -> String {
    let why = match compute {
        Err(err) => err.to_string(),
        Ok(_) => "its standing rate is not known".to_owned(),
    };
    if !alongside {
        return format!(
            "the accrual carries none of variant `{variant}`'s own instances: no rate of \
             theirs is known (none since it was scaled to 0 instances, or ever), so they are \
             not priced ({why})"
        );
    }
    format!(
        "the accrual carries only the fleets billed alongside variant `{variant}` (a shadow, \
         a deployment's new fleet), at their known rates: the variant's own instances are \
         not priced ({why})"
    )
}

/// One finished call, as the client measured it.
#[derive(Debug)]
pub(crate) struct FinishedCall {
    pub endpoint: String,
    pub request_id: Option<String>,
    pub started_at: SystemTime,
    pub targets: Targets,
    pub usage: Usage,
    pub tags: BTreeMap<String, String>,
    pub notes: Vec<String>,
    /// The instance time the endpoint's processor-sharing clock allocated to the
    /// call's billed attempts, exact in instance-femtoseconds (see
    /// `CallShare::end`), when the call was on the clock.
    pub shared_time: Option<crate::billing::SharedTime>,
    /// The sharing clock that allocated `shared_time` (`None`: on no clock).
    pub clock: Option<crate::totals::EndpointSlot>,
    /// On a serverless variant, the milliseconds billed when several attempts
    /// reached the model: each rounded up on its own, as AWS bills each request
    /// (`None`: the latency, rounded up).
    pub serverless_ms: Option<u64>,
    /// The slots of the provisioned concurrency busy on the call's sharing clock
    /// as its first billed attempt went out (see
    /// `CallShare::slots_busy_at_start`; a throttled attempt before it does not
    /// count): a serverless call whose billed attempt found all of them busy is
    /// billed at the on-demand rate.
    pub slots_busy_at_start: Option<u32>,
    /// The successful (HTTP 2XX) answers SageMaker gave the call's attempts, as
    /// they were seen (a success whose body was cut off, and which the SDK
    /// tried again, included): the inferences AWS Marketplace charges (see
    /// `billing::usage_charge_lines`; 0 when none was seen).
    pub answers_2xx: u32,
    /// An async submission's jobs beyond the one its receipt counts against
    /// budgets that SageMaker may have queued (it accepted it more than once:
    /// see `ACCEPTED_MORE_THAN_ONCE_NOTE`; or an attempt timed out after
    /// sending): no settlement will bill them, and each counts at no less
    /// than its estimate, as a submission accepted then failed does (0 for
    /// any other call).
    pub never_settled_jobs: u32,
    /// An async submission's attempts that may have queued its input: those
    /// SageMaker accepted (at least one when the call succeeded) and those that
    /// timed out after their request was sent; a throttled or refused attempt
    /// queued nothing (see `bill_submissions`). Enforced budgets bound an input
    /// in S3 of unstated size by 1 GB for each (0 for any other call).
    pub may_have_queued: u32,
    /// The lines whose quantity is not known, with why (the compute time of a call
    /// the SDK interceptor cannot follow, the size of an input in S3 or of an async
    /// output not given): each is unpriced with its reason, never a $0 from a
    /// made-up figure.
    pub unknown: Vec<(LineItem, String)>,
    /// Why the response's token counts were not seen, when whoever metered the
    /// call could not read the response (the SDK interceptor, for a stream or an
    /// async output: both directions), or why a count it reported was not counted
    /// (beyond any model's: that direction alone): that direction's token line
    /// without a count is unpriced with this reason, not with advice to configure
    /// a token counter that cannot help.
    pub tokens_unseen: TokensUnseen,
    /// Whether the usage's variant is one sagemeter assumed, not one SageMaker
    /// named: an async settlement's, its submission's pick (see
    /// `EndpointProfile::variant_assumed`). False for any other call.
    pub variant_assumed: bool,
    /// Whether an async settlement's submission receipt was not fully priced and
    /// counted among this meter's unpriced calls (it was submitted with this
    /// meter). False for any other call, and for a settlement of another
    /// meter's submission, which this meter's totals never counted.
    pub submission_counted_unpriced: bool,
}

/// The rate of a call on a serverless variant with provisioned concurrency whose
/// first billed attempt went out while every slot of it was busy
/// (`slots_busy_at_start`, not the call itself; `None` when the count is not the
/// variant's): AWS serves it on demand and bills it at the on-demand serverless
/// rate (an unpriced line when that rate could not be found), not the
/// provisioned concurrency's inference rate. A call whose billed attempt found a
/// slot free is served on it, however many calls are in flight on demand, and
/// whatever a throttled attempt before it found. With the note saying so.
/// `None` for any other call.
fn beyond_provisioned<'a>(
    billing: &VariantBilling,
    slots_busy_at_start: Option<u32>,
    rates: &'a VariantRates,
) -> Option<(&'a RateResult, String)> {
    let VariantBilling::Serverless {
        provisioned_concurrency: Some(provisioned),
        ..
    } = billing
    else {
        return None;
    };
    let busy = slots_busy_at_start.filter(|n| n >= provisioned)?;
    let rate = rates.beyond_provisioned.as_ref()?;
    Some((
        rate,
        format!(
            "the call's first billed attempt went out while the provisioned concurrency of \
             {provisioned} was all busy \
             ({busy} calls on it): served beyond it, {}",
            crate::billing::BEYOND_PROVISIONED_NOTE_END
        ),
    ))
}

/// The provisioned concurrency the calls on `profile`'s endpoint clock are
/// served on before any goes on demand: its only variant's, when that is
/// serverless with provisioned concurrency (with several variants, SageMaker
/// routes by weight, and the endpoint's calls are not one variant's).
fn clock_provisioned(profile: &EndpointProfile) -> Option<u32> {
    match profile.variants.as_slice() {
        [only] => match only.billing {
            VariantBilling::Serverless {
                provisioned_concurrency,
                ..
            } => provisioned_concurrency,
            VariantBilling::Instance { .. } => None,
        },
        _ => None,
    }
}

/// Whether `profile` shows no copy of the inference component `name` (an
/// adapter: of its base, whose copies it runs on). A component the profile does
/// not know is not this case: its line says so on its own.
fn no_copies(profile: &EndpointProfile, name: &str) -> bool {
    let Some(component) = profile.component(name) else {
        return false;
    };
    let holder = match component.base.as_deref() {
        Some(base) => profile.component(base),
        None => Some(component),
    };
    holder.is_some_and(|c| c.copies == 0)
}

/// The terms `rate` announced ahead ([`Rate::next_term`]), oldest first, each
/// with its date and its rate, up to the first whose rate the answer does not
/// give or that is no price (0, or beyond the sane bound; the price source's
/// answer from its date is not used then): from its date the last known rate
/// stays in force until a rate is looked up again. As many as the price source
/// keeps (the live reader gives the rates of the first four terms ahead).
fn usable_terms(rate: &Rate) -> impl Iterator<Item = (SystemTime, &Rate)> {
    let mut next = rate.next_term.as_deref();
    std::iter::from_fn(move || {
        let term = next?;
        let rate = term
            .rate
            .as_ref()
            .filter(|rate| is_plausible_usd(rate.usd_per_unit))?;
        next = rate.next_term.as_deref();
        Some((term.on.into(), rate))
    })
}

/// The terms `rate` announced ahead ([`usable_terms`]), each at its rate ×
/// `per_unit` USD an hour.
fn announced_terms(
    rate: &Rate,
    per_unit: Decimal,
    unreserved_fraction: Option<Decimal>,
) -> Arc<[StandingTerm]> {
    if rate.next_term.is_none() {
        return no_terms();
    }
    let terms: Vec<StandingTerm> = usable_terms(rate)
        .map(|(on, rate)| StandingTerm {
            on,
            usd_per_hour_all_instances: rate.usd_per_unit * per_unit,
            capacity_from: (rate.provenance.source, rate.provenance.note.clone()),
            unreserved_fraction,
        })
        .collect();
    match terms.is_empty() {
        true => no_terms(),
        false => terms.into(),
    }
}

/// The terms the ML storage rate `rate` announced ahead ([`usable_terms`]), each
/// at its rate per GB-month × `gb` (the volumes' GB, all instances) USD a month.
fn announced_storage_terms(rate: &Rate, gb: Decimal) -> Arc<[StorageTerm]> {
    if rate.next_term.is_none() {
        return no_storage_terms();
    }
    let terms: Vec<StorageTerm> = usable_terms(rate)
        .map(|(on, rate)| StorageTerm {
            on,
            usd_per_month: rate.usd_per_unit * gb,
            storage_from: (rate.provenance.source, rate.provenance.note.clone()),
        })
        .collect();
    match terms.is_empty() {
        true => no_storage_terms(),
        false => terms.into(),
    }
}

/// The dates of two variants' terms, in order, each once: where a rate summed
/// from both changes.
fn term_dates(dates: impl Iterator<Item = SystemTime>) -> Vec<SystemTime> {
    let mut dates: Vec<SystemTime> = dates.collect();
    dates.sort_unstable();
    dates.dedup();
    dates
}

/// The terms of a variant's standing rate with a variant billed alongside added
/// (see [`VariantRates::add_alongside`]): at each date either announced, each
/// part's rate in force then, added up, the worse of their sources, and the
/// share no component reserves still a share of the variant's own instances.
/// `own` is the variant's rate so far (`None`: nothing of its own), where it came
/// from and that share; `extra` the other's.
fn alongside_terms(
    own: (Option<Decimal>, &Option<RateFrom>, Option<Decimal>),
    own_terms: &[StandingTerm],
    extra: (Decimal, &Option<RateFrom>),
    extra_terms: &[StandingTerm],
) -> Arc<[StandingTerm]> {
    term_dates(own_terms.iter().chain(extra_terms).map(|term| term.on))
        .into_iter()
        .map(|on| {
            let own_then = own_terms.iter().rfind(|term| term.on <= on);
            let (own_usd, own_from, fraction) = match own_then {
                Some(term) => (
                    term.usd_per_hour_all_instances,
                    Some(term.capacity_from.clone()),
                    term.unreserved_fraction,
                ),
                None => (own.0.unwrap_or_default(), own.1.clone(), own.2),
            };
            let (extra_usd, extra_from) = match extra_terms.iter().rfind(|term| term.on <= on) {
                Some(term) => (
                    term.usd_per_hour_all_instances,
                    Some(term.capacity_from.clone()),
                ),
                None => (extra.0, extra.1.clone()),
            };
            let all = own_usd + extra_usd;
            let unreserved_fraction = fraction.map(|fraction| match all.is_zero() {
                true => fraction,
                false => fraction * own_usd / all,
            });
            let from = worse_of(own_from, &extra_from);
            StandingTerm {
                on,
                usd_per_hour_all_instances: all,
                capacity_from: from.unwrap_or((PriceOrigin::Cache, None)),
                unreserved_fraction,
            }
        })
        .collect()
}

/// The terms of a variant's ML storage rate with the storage of a variant billed
/// alongside added (see [`VariantRates::add_alongside`]): at each date either
/// announced, each one's storage rate in force then, added up, and the worse of
/// their sources. `own` is the variant's storage so far (`None`: none of its
/// own) and where it came from; `extra` the other's.
fn alongside_storage_terms(
    own: (Option<Decimal>, &Option<RateFrom>),
    own_terms: &[StorageTerm],
    extra: (Decimal, &Option<RateFrom>),
    extra_terms: &[StorageTerm],
) -> Arc<[StorageTerm]> {
    let dates = term_dates(own_terms.iter().chain(extra_terms).map(|term| term.on));
    let then = |terms: &[StorageTerm], on, (usd, from): (Decimal, &Option<RateFrom>)| match terms
        .iter()
        .rfind(|term| term.on <= on)
    {
        Some(term) => (term.usd_per_month, Some(term.storage_from.clone())),
        None => (usd, from.clone()),
    };
    dates
        .into_iter()
        .map(|on| {
            let (own_usd, own_from) = then(own_terms, on, (own.0.unwrap_or_default(), own.1));
            let (extra_usd, extra_from) = then(extra_terms, on, extra);
            StorageTerm {
                on,
                usd_per_month: own_usd + extra_usd,
                storage_from: worse_of(own_from, &extra_from).unwrap_or((PriceOrigin::Cache, None)),
            }
        })
        .collect()
}

/// The provenance to keep for a standing rate summed from two: a fallback's
/// ([`Provenance::is_fallback`](crate::pricing::Provenance::is_fallback)) over a
/// rate's that is not, so the sum never claims a better source than its worst part.
fn worse_of(own: Option<RateFrom>, extra: &Option<RateFrom>) -> Option<RateFrom> {
    let fallback = |from: &RateFrom| crate::pricing::is_fallback(from.0, from.1.as_deref());
    match (own, extra) {
        (Some(own), Some(extra)) if !fallback(&own) && fallback(extra) => Some(extra.clone()),
        (None, extra) => extra.clone(),
        (own, _) => own,
    }
}

impl Meter {
    /// A builder; see [`ClientBuilder`](crate::ClientBuilder) for the options.
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> crate::ClientBuilder {
        crate::ClientBuilder::new(sdk_config)
    }

    /// The running totals of every call metered so far. Their sums hold what
    /// the receipts priced: a call with an unpriced line adds its priced lines
    /// only, and counts in [`TotalsSnapshot::unpriced_calls`] (per endpoint too),
    /// so that a figure that leaves some cost out says so.
    pub fn totals(&self) -> TotalsSnapshot {
        self.inner.totals.snapshot()
    }

    /// The region calls are priced in.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The region of the endpoints this meter meters, where its calls go and
    /// endpoint discovery asks: the SDK config's region, else
    /// [`region`](Self::region). The two differ only when
    /// [`ClientBuilder::region`](crate::ClientBuilder::region) prices calls at
    /// another region's rates; then it is the region of the
    /// [`runtime_client`](crate::ClientBuilder::runtime_client) given, if any.
    ///
    /// A meter's prices, sharing clocks, accruals and budgets are one region's: a
    /// call whose SDK client (or per-call configuration) is for another region is
    /// refused before it is sent, with an [`Error::Config`](crate::Error::Config)
    /// naming both regions. Meter each region with a meter of its own.
    pub fn endpoint_region(&self) -> &str {
        &self.inner.endpoint_region
    }

    /// `Err` when an SDK client for `sent_to` would send this meter's calls to
    /// another region than its endpoints'. A string compare, no allocation unless
    /// refused: it runs on every call an interceptor meters.
    #[inline]
    pub(crate) fn check_region(
        &self,
        option: &'static str,
        what: &str,
        sent_to: &str,
    ) -> Result<(), ConfigError> {
        if sent_to == &*self.inner.endpoint_region {
            return Ok(());
        }
        Err(self.other_region(option, what, sent_to))
    }

    /// Why `what`, for `sent_to`, cannot be metered by this meter.
    #[cold]
    pub(crate) fn other_region(
        &self,
        option: &'static str,
        what: &str,
        sent_to: &str,
    ) -> ConfigError {
        other_region(
            &self.inner.region,
            &self.inner.endpoint_region,
            option,
            what,
            sent_to,
        )
    }

    /// The profile of an endpoint (discovered, cached or overridden). Under a Tokio
    /// runtime, every price its calls and standing charges need
    /// ([`price_keys`](Self::price_keys)) starts being fetched at once, in the
    /// background: calls then find them cached rather than wait for them.
    pub async fn endpoint_profile(
        &self,
        endpoint: &str,
    ) -> Result<Arc<EndpointProfile>, DiscoveryError> {
        let profile = self.inner.discovery.profile(endpoint).await;
        if let Ok(profile) = &profile {
            self.warm_prices(profile);
        }
        profile
    }

    /// Graceful shutdown, within `timeout` in all (a pod's grace period, say).
    /// First waits for the calls in flight ([`calls_in_flight`](Self::calls_in_flight):
    /// begun, their receipts not yet recorded; a stream until it ends or is
    /// dropped) to make their receipts, and for background work (profile
    /// refreshes, pricing of calls seen by the interceptor), both within half of
    /// `timeout` (pricing a call may wait for a `DescribeEndpoint`, 5 s at most by
    /// default), and meanwhile does what [`budget_status`](Self::budget_status)
    /// does: raises the budgets' queued alerts (see
    /// [`Budget::on_alert`](crate::budget::Budget::on_alert)) and charges the
    /// async holds lapsed by now, within that half too; then stops background
    /// work from starting, writes the fleet's
    /// last increments (until three quarters of it have passed), then flushes and
    /// closes every sink, all at once, in the time left (at least a quarter: the
    /// ledgers are never left without time; a sink that hangs holds up neither
    /// the others nor the caller).
    ///
    /// Calls made afterwards are still metered on their own path, but nothing new
    /// runs in the background: what would have been priced there (a call the
    /// interceptor saw, a call or settlement dropped before its rates came) is
    /// priced at once on the rates at hand, each other line unpriced saying why,
    /// and counted all the same. A receipt made once the sinks are closed still
    /// counts in the totals and budgets, but no sink writes it (a ledger counts
    /// it in [`SinkStats::refused_closed`](crate::ledger::SinkStats::refused_closed)):
    /// stop starting calls first (a server's graceful shutdown), and the error
    /// says how many calls were still in flight when the wait for them ended. It
    /// also names every sink that failed or did not finish, and what else was
    /// left undone.
    pub async fn shutdown_within(&self, timeout: std::time::Duration) -> crate::Result<()> {
        let started = tokio::time::Instant::now();
        let left = || timeout.saturating_sub(started.elapsed());
        let (half, quarter) = (timeout / 2, timeout / 4);
        // Meanwhile, what `budget_status` does: the alerts that pending
        // invocations dropped after their holds lapsed left queued are raised,
        // the holds lapsed by now charged (their alerts raised too), and a
        // fleet handed its charges. A batch that drops its lapsed jobs and
        // shuts down has no call or status after the drop to do it. On a
        // thread of its own and waited for within the calls' half: an alert
        // callback that blocks holds up neither the shutdown nor the calls. Not
        // on Tokio's blocking pool: dropping the runtime waits for all its
        // blocking work, so a callback given up on here would still hold up the
        // process's exit until it returned; a detached thread holds up nothing.
        let budgets_done = async {
            if self.inner.budgets.is_empty() {
                return true;
            }
            let meter = self.clone();
            let (done, status) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("sagemeter-budget-alerts".into())
                .spawn(move || {
                    meter.budget_status();
                    let _ = done.send(());
                });
            if let Err(error) = spawned {
                tracing::error!(target: "sagemeter", %error,
                    "the shutdown could not start a thread to raise the budgets' alerts");
                return false;
            }
            // Ended (or panicked, dropping `done`) within the half.
            tokio::time::timeout(half, status).await.is_ok()
        };
        // Background work goes on meanwhile: a call's receipt may be made there.
        let (budgets_done, calls_done) =
            tokio::join!(budgets_done, self.inner.calls.idle_within(half));
        let in_flight = self.calls_in_flight();
        let idle = self
            .inner
            .background
            .close(half.saturating_sub(started.elapsed()))
            .await;
        // Sinks last: the calls and background pricing above may still have
        // recorded receipts.
        let mut problems = Vec::new();
        if !calls_done {
            problems.push(format!(
                "{in_flight} call(s) still in flight after {half:?}: their receipts will \
                 reach no sink (the totals and budgets count them)"
            ));
        }
        // The fleet's last increments, and the leases' unused parts given back;
        // with them the budgets' provisional charges not yet handed over (a
        // hold lapsed by the start, charged above, or a pending invocation
        // dropped after its hold lapsed since, each queueing one with no call
        // to hand it on): given back, a lapsed hold's lease would return what
        // the job may have cost.
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.inner.fleet {
            self.charge_lapsed();
            problems.extend(fleet.shutdown(left().saturating_sub(quarter)).await);
        }
        // Never less than a quarter: neither step above waits past its share,
        // and the ledgers' last write and sync come before any of theirs.
        let sinks = on_every_sink(
            &self.inner.sinks,
            Some((left().max(quarter), timeout)),
            |sink| sink.shutdown(),
        );
        problems.extend(sinks.await);
        if !budgets_done {
            problems.push(format!(
                "the budgets' alert callbacks still running after {half:?}"
            ));
        }
        if !idle {
            problems.push(format!(
                "{} background task(s) still running after {half:?}",
                self.inner.background.in_flight()
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Shutdown(problems.join("; ")))
        }
    }

    /// Calls begun whose receipts are not recorded yet: sent and not answered, a
    /// response stream not yet ended or dropped, a call waiting for its
    /// endpoint's rates. [`shutdown_within`](Self::shutdown_within) waits for them.
    pub fn calls_in_flight(&self) -> usize {
        self.inner.calls.count()
    }

    /// Writes out every receipt the sinks have accepted so far (e.g. the ledger
    /// file), every sink at once: one that fails does not keep the others from
    /// flushing, and the error names each that failed. Waits as long as the
    /// sinks take: see [`flush_within`](Self::flush_within) for a bound.
    ///
    /// It does not wait for the calls in flight
    /// ([`calls_in_flight`](Self::calls_in_flight)): their receipts reach the
    /// sinks when they end, for the next flush.
    /// [`shutdown_within`](Self::shutdown_within) waits for them first.
    pub async fn flush(&self) -> crate::Result<()> {
        self.flush_sinks(None).await
    }

    /// [`flush`](Self::flush), waiting at most `timeout`: a sink that has not
    /// finished by then (a broker that is down) is named in the error, and its
    /// receipts stay queued in it for the next flush or shutdown. Like `flush`,
    /// it does not wait for the calls in flight.
    pub async fn flush_within(&self, timeout: std::time::Duration) -> crate::Result<()> {
        self.flush_sinks(Some((timeout, timeout))).await
    }

    async fn flush_sinks(
        &self,
        limit: Option<(std::time::Duration, std::time::Duration)>,
    ) -> crate::Result<()> {
        let problems = on_every_sink(&self.inner.sinks, limit, |sink| sink.flush()).await;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Flush(problems.join("; ")))
        }
    }

    /// [`shutdown_within`](Self::shutdown_within) ten seconds.
    pub async fn shutdown(&self) -> crate::Result<()> {
        self.shutdown_within(std::time::Duration::from_secs(10))
            .await
    }

    /// Background tasks still running (profile refreshes, interceptor pricing).
    pub fn background_tasks(&self) -> usize {
        self.inner.background.in_flight()
    }

    /// Settles an async invocation: price (rates as of now) → bill the compute, data
    /// out and tokens → record → the settlement receipt. For a [`PendingInference`]
    /// kept or sent elsewhere; [`AsyncInvocation::settle`] does the same in place.
    /// Recorded even if the returned future is dropped before it is done.
    ///
    /// **Settled twice, counted once.** SNS and SQS deliver at least once, so the
    /// same invocation may be settled again (from a copy of its serialised
    /// `PendingInference`). A second settlement of a call id this meter settled
    /// in the last 14 days (the longest an SQS queue keeps a message, which may
    /// come again after a failed consumer's visibility timeout or a dead-letter
    /// redrive; at most the last 100,000 settlements, the oldest forgotten
    /// first), or, with a fleet (feature `fleet`), that any process of
    /// the fleet settled (a conditional write to the fleet table, kept as long),
    /// returns an explicit **duplicate** receipt: [`Cost::is_duplicate_settlement`]
    /// is true, its note says when and where the invocation was settled, it bills
    /// nothing (no lines, `cost_usd` 0) and is recorded nowhere: no totals, sinks,
    /// ledger or budget charge (the invocation's budget hold goes to the first
    /// settlement, even one still in flight, when this meter made it; when
    /// another process of the fleet did, it is taken back here). Not a
    /// copy of the first receipt, which another process may have made: summing
    /// the receipts returned never counts an invocation twice. When the fleet
    /// table cannot be written, the settlement is billed (nothing lost) and its
    /// receipt notes that duplicates in other processes could not be checked.
    /// A fleet's mark is final once its settlement's receipt is made (a second
    /// write marks it billed): a mark never billed (its process killed before
    /// the receipt) is taken over, and billed, by a later settlement once its
    /// claim (`fleet::SETTLEMENT_CLAIM`, 5 minutes) has passed. A settlement
    /// that finds the mark while its claim runs is a duplicate that says so
    /// ([`Cost::is_settlement_in_progress_elsewhere`]): not remembered here, and
    /// its queue message is to be kept, so that a later copy bills the
    /// invocation should that settlement never finish. So is a copy settled
    /// here while the first copy here is still settling (its receipt not made
    /// yet), with or without a fleet: the first may yet find such a mark.
    ///
    /// [`PendingInference`]: super::PendingInference
    /// [`AsyncInvocation::settle`]: super::AsyncInvocation::settle
    ///
    /// **One region.** An invocation is settled by a meter of the region it was
    /// submitted in ([`Meter::endpoint_region`]; the record says which,
    /// [`PendingInference::region`]): another region's meter would price its
    /// compute at its own region's rates, on its own endpoint of that name. It is
    /// refused with a [`SettleRefused`] that gives the pending invocation back
    /// untouched ([`SettleRefused::into_pending`]; its budget hold still held) and
    /// says why (a [`ConfigError`] naming both regions): nothing is billed or
    /// recorded, and the invocation is settled by a meter of its region. A record
    /// kept by a version that did not write the region is settled by the meter
    /// given, as then.
    ///
    /// [`PendingInference`]: super::PendingInference
    /// [`PendingInference::region`]: super::PendingInference::region
    /// [`SettleRefused`]: super::SettleRefused
    /// [`SettleRefused::into_pending`]: super::SettleRefused::into_pending
    pub fn settle_async(
        &self,
        pending: super::PendingInference,
        completion: super::AsyncCompletion<'_>,
    ) -> impl std::future::Future<Output = Result<Cost, super::SettleRefused>> + Send + use<> {
        let settling = match pending.region() {
            Some(region) if region != self.endpoint_region() => {
                let error = self.not_submitted_here(pending.call_id(), region);
                Err(super::SettleRefused::new(pending, error))
            }
            _ => Ok(super::async_invoke::settle(self, pending, completion)),
        };
        async move { Ok(settling?.await) }
    }

    /// Why an async invocation submitted in `region` is not settled by this meter.
    #[cold]
    fn not_submitted_here(&self, call_id: &str, region: &str) -> ConfigError {
        let said = format!(
            "the async invocation {} was submitted in {}",
            crate::redact::printable(call_id),
            crate::redact::printable(region)
        );
        not_this_meters(
            &self.inner.region,
            &self.inner.endpoint_region,
            "Meter::settle_async",
            said,
        )
        .hint(format!(
            "settle it with a meter of {} (SettleRefused::into_pending gives it back): a \
             meter's prices, accruals and budgets are one region's",
            crate::redact::printable(region)
        ))
    }

    /// Counters of this client's fleet traffic (`None` without a fleet).
    #[cfg(feature = "fleet")]
    pub fn fleet_stats(&self) -> Option<crate::fleet::FleetStats> {
        self.inner.fleet.as_ref().map(crate::fleet::Fleet::stats)
    }

    /// Writes this process's fleet increments now (the flush loop does every
    /// [`flush_every`](crate::fleet::FleetConfig::flush_every)); true when
    /// nothing is left unwritten. True without a fleet.
    #[cfg(feature = "fleet")]
    pub async fn flush_fleet(&self) -> bool {
        match &self.inner.fleet {
            Some(fleet) => fleet.flush().await,
            None => true,
        }
    }

    /// Where each budget stands in its current period.
    pub fn budget_status(&self) -> Vec<BudgetStatus> {
        let now = self.now();
        let status = self.inner.budgets.status(now.into());
        self.charge_lapsed();
        status
    }

    /// Hands the fleet the provisional charges its budgets made when async
    /// holds lapsed (at a reservation, a status or a reservation dropped),
    /// what was taken back of them for invocations settled elsewhere, and the
    /// bounds of what async submissions left unpriced, to count
    /// in the table as charges beyond the receipts, each in the period it was
    /// made in. Also done at shutdown, and by each of the fleet's flushes (a
    /// drop has no call after it to do it).
    pub(crate) fn charge_lapsed(&self) {
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.inner.fleet {
            let (charges, _handing) = self.inner.budgets.take_lapsed_charges();
            if !charges.is_empty() {
                fleet.charge_beyond_receipts(&charges);
            }
        }
    }

    /// Reserves the estimated cost of a call on the enforced budgets covering it,
    /// or rejects it (nothing has been sent yet).
    pub(crate) fn reserve(
        &self,
        endpoint: &str,
        call_tags: &BTreeMap<String, String>,
    ) -> Result<Option<Reservation>, Refusal> {
        self.reserve_in(endpoint, call_tags, false)
    }

    /// Reserves a call that cannot wait for a fleet lease against the budgets'
    /// whole limits (see [`Budgets::reserve_within`]).
    pub(crate) fn reserve_unleased(&self, endpoint: &str) -> Result<Option<Reservation>, Refusal> {
        self.reserve_in(endpoint, &BTreeMap::new(), true)
    }

    fn reserve_in(
        &self,
        endpoint: &str,
        call_tags: &BTreeMap<String, String>,
        unleased: bool,
    ) -> Result<Option<Reservation>, Refusal> {
        if self.inner.budgets.is_empty() {
            return Ok(None);
        }
        let tags = self.tags_into(call_tags.clone());
        let now = self.now();
        let reserved = self
            .inner
            .budgets
            .reserve_within(endpoint, &tags, now.into(), unleased)
            .map(Some);
        self.charge_lapsed();
        reserved
    }

    /// Leases more of fleet budgets for a call to `endpoint` that did not fit in
    /// what this process holds, and reserves it (the fleet works out what is
    /// short from a fresh reservation); the call's refusal when that cannot be
    /// done.
    pub(crate) async fn lease(
        &self,
        endpoint: &str,
        call_tags: &BTreeMap<String, String>,
        refusal: crate::Error,
    ) -> crate::Result<Option<Reservation>> {
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.inner.fleet {
            return fleet.lease(|| self.reserve(endpoint, call_tags)).await;
        }
        let _ = (endpoint, call_tags);
        Err(refusal)
    }

    /// A reservation of nothing, so that spend that was not reserved (an async
    /// settlement) still counts against budgets and raises alerts.
    pub(crate) fn reserve_nothing(&self, endpoint: &str) -> Option<Reservation> {
        (!self.inner.budgets.is_empty()).then(|| self.inner.budgets.unreserved(endpoint))
    }

    /// Settles a reservation of a call to `endpoint` that has no receipt but may
    /// have been billed all the same (an async submission that timed out after
    /// sending: SageMaker may have queued it), tagged `tags`: at $0 priced, not
    /// fully, so enforced budgets count it at its estimate; and as many again
    /// for each of its `jobs` (the attempts that may have queued one) past the
    /// first, as a receipt's further jobs are ([`Meter::finish_settled`]).
    /// `tags` are the call's own: the client's default tags are added here.
    pub(crate) fn settle_at_estimate(
        &self,
        reservation: Reservation,
        endpoint: &str,
        tags: &BTreeMap<String, String>,
        jobs: u32,
    ) {
        let now = self.now();
        // The client's default tags too, as the reservation took them: a tag
        // budget matched through one is charged, not only released.
        let tags = &self.tags_into(tags.clone());
        self.settle_priced(Some(reservation), tags, Decimal::ZERO, Priced::Partly, now);
        for _ in 1..jobs {
            let job = self.reserve_nothing(endpoint);
            self.settle_priced(job, tags, Decimal::ZERO, Priced::Partly, now);
        }
    }

    /// Settles a reservation to a receipt's cost (`cost_usd`, the call tagged
    /// `tags`), priced `priced` as enforced budgets count it, at `now`: for a
    /// receipt, when it was billed, the time the fleet's items count it at, so
    /// that its budget charge lands in the same period as its receipt (read
    /// again after the sinks, a settlement billed just before a period's end
    /// was charged in the next period).
    fn settle_priced(
        &self,
        reservation: Option<Reservation>,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: SystemTime,
    ) {
        let Some(r) = reservation else {
            return;
        };
        // A hand-over under way until the fleet has what the settlement
        // charges beyond the receipt below $0 (a provisional charge taken back).
        let (beyond, _handing) = r.settle_handing(tags, cost_usd, priced, now.into());
        // A fleet budget's charge for a call not fully priced counts in the table too.
        #[cfg(feature = "fleet")]
        if !beyond.is_empty()
            && let Some(fleet) = &self.inner.fleet
        {
            fleet.charge_beyond_receipts(&beyond);
        }
        #[cfg(not(feature = "fleet"))]
        let _ = beyond;
    }

    /// Settles the part of a call billed in parts (an async submission) that
    /// `cost` is the receipt of (priced on `prepared`; its attempts that may
    /// have queued the input: [`FinishedCall::may_have_queued`]): the rest of
    /// its reservation stays held. At `billed_at`, when the receipt was
    /// billed, as [`settle_priced`](Self::settle_priced) settles a receipt.
    pub(crate) fn settle_part(
        &self,
        reservation: &mut Reservation,
        cost: &Cost,
        prepared: &Prepared,
        may_have_queued: u32,
        billed_at: SystemTime,
    ) {
        reservation.settle_part(
            &cost.tags,
            cost.cost_usd,
            priced_for_budgets(cost, prepared, may_have_queued),
            billed_at.into(),
        );
        // The bound of what it left unpriced, charged to fleet budgets beyond
        // its receipt, handed over now.
        self.charge_lapsed();
    }

    /// Client default tags overlaid with the call's own. Without default tags (the
    /// usual case) that is the call's map as it is, nothing copied.
    pub(crate) fn tags_into(
        &self,
        call_tags: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        if self.inner.default_tags.is_empty() {
            return call_tags;
        }
        let mut all = self.inner.default_tags.clone();
        all.extend(call_tags);
        all
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.time.now()
    }

    /// Token counts of a complete response body of `content_type`, with the
    /// configured counter. The built-in detection does not read a `text/plain`
    /// body, as on a stream
    /// ([`StreamTokens::content_type`](crate::usage::StreamTokens::content_type)):
    /// its text is the model's own, and a `{"usage": …}` the model writes is not a
    /// count from the server; a counter of the user's is given it. A
    /// `text/event-stream` body is read as a stream is.
    pub(crate) fn count_tokens(
        &self,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Option<TokenUsage> {
        if self.inner.token_counter.is_none() && content_type.is_some_and(is_plain_text) {
            return None;
        }
        // A whole stream of server-sent events answered at once (vLLM asked to
        // stream through InvokeEndpoint): read event by event, as a stream is.
        if content_type.is_some_and(is_event_stream) {
            let mut tokens = self.stream_tokens();
            tokens.push(body);
            return tokens.finish();
        }
        match &self.inner.token_counter {
            Some(counter) => counter.count(body),
            None => detect_tokens(body),
        }
    }

    /// A reader of a stream's tokens with the configured counter.
    pub(crate) fn stream_tokens(&self) -> StreamTokens {
        match &self.inner.token_counter {
            Some(counter) => StreamTokens::with_counter(counter.clone()),
            None => StreamTokens::new(),
        }
    }

    /// A rate: the builder's override, else the price source.
    pub async fn rate(&self, key: &PriceKey) -> RateResult {
        if let Some(rate) = self.rate_now(key) {
            return rate;
        }
        // The variant's standing costs (rate × instances × 3,600) must not
        // overflow, and no call is priced at a silent $0.
        plausible(self.inner.prices.price(key).await)
    }

    /// The rate [`rate`](Self::rate) gives without waiting, if there is one.
    fn rate_now(&self, key: &PriceKey) -> Option<RateResult> {
        if let Some(rate) = self.inner.price_overrides.get(key) {
            return Some(Ok(rate.clone()));
        }
        self.inner.prices.price_now(key).map(plausible)
    }

    /// The rates of each of `profile`'s variants (the endpoint's totals at
    /// `totals`), with those of the fleets billed alongside it (a shadow, a
    /// deployment's new fleet) folded in, when all are at hand (cached).
    fn variants_rates_now(
        &self,
        profile: &EndpointProfile,
        totals: EndpointSlot,
    ) -> Option<Vec<VariantRates>> {
        self.fold_variants_rates(profile, totals, |fleet| {
            self.fleet_rates_now(profile, fleet)
        })
    }

    /// The rates of each of `profile`'s variants (the endpoint's totals at
    /// `totals`), with those of the fleets billed alongside it folded in, from
    /// each fleet's price-source rates as `rates_of` finds them (`None` from it:
    /// one must be waited for, and so `None`). The one fold of
    /// [`variants_rates_now`](Self::variants_rates_now) (rates at hand) and
    /// [`prepare_waiting`](Self::prepare_waiting) (rates waited for first).
    fn fold_variants_rates(
        &self,
        profile: &EndpointProfile,
        totals: EndpointSlot,
        mut rates_of: impl FnMut(&VariantProfile) -> Option<FleetRates>,
    ) -> Option<Vec<VariantRates>> {
        let mut rates = Vec::with_capacity(profile.variants.len());
        for variant in &profile.variants {
            let slot = self.inner.totals.variant_slot(totals, &variant.name);
            let (compute, standing) = rates_of(variant)?;
            let mut own = VariantRates::new(variant, compute, standing, self.hosted(profile), slot);
            self.note_if_volume_size_unknown(profile, variant);
            for extra in profile.billed_alongside(variant) {
                self.note_if_volume_size_unknown(profile, extra);
                let (compute, standing) = rates_of(extra)?;
                let hosted = self.hosted_nothing();
                let extra_rates = VariantRates::new(extra, compute, standing, hosted, slot);
                // Or kept why the accrual leaves it out (its rate not known), for
                // the note each receipt of the variant then carries, WARNed once.
                if let Err(reason) = own.add_alongside(extra, &extra_rates) {
                    own.alongside_unpriced.push((extra.name.clone(), reason));
                }
            }
            rates.push(own);
        }
        Some(rates)
    }

    /// Profile and rates of `endpoint` when all of them are at hand (cached) at
    /// `now` (the meter's clock, read once by the caller), as on almost every call:
    /// nothing to wait for, nothing to run alongside the call.
    pub(crate) fn prepare_now(&self, endpoint: &str, now: SystemTime) -> Option<Arc<Prepared>> {
        self.start_refreshing();
        // One look-up of discovery (on the meter's clock: both are given the
        // builder's): the reused record while its profile is still the answer, else
        // the answer itself.
        let found = self.inner.discovery.profile_now(endpoint, now, |answer| {
            match answer
                .ok()
                .and_then(|p| self.inner.prepared.get(endpoint, p, now))
            {
                Some(prepared) => Ok(prepared),
                None => Err(owned(answer)),
            }
        })?;
        let profile = match found {
            Ok(prepared) => return Some(prepared),
            Err(profile) => profile,
        };
        let totals = self.inner.totals.endpoint_slot(endpoint);
        let data_in = self.rate_now(&self.inner.data_in_key)?;
        let data_out = self.rate_now(&self.inner.data_out_key)?;
        let rates = match &profile {
            Ok(profile) => self.variants_rates_now(profile, totals)?,
            Err(_) => Vec::new(),
        };
        let found = profile.is_ok();
        let component_slots = match &profile {
            Ok(profile) => self.set_capacity(totals, profile, &rates, now),
            Err(_) => Vec::new(),
        };
        let prepared = Arc::new(Prepared {
            profile,
            rates,
            data: [data_in, data_out],
            totals,
            component_slots,
        });
        if found {
            self.inner.prepared.put(endpoint, prepared.clone(), now);
        }
        Some(prepared)
    }

    /// Starts the loop that refreshes the endpoints' profiles while no call comes
    /// (unless it runs already): every
    /// [`discovery_refresh`](crate::ClientBuilder::discovery_refresh), each
    /// discovered profile is described again, and one that changed is applied to
    /// the accrual and the sharing clocks at once ([`set_capacity`](Self::set_capacity)
    /// at the refresh's time). Without it an autoscaling step during an idle
    /// stretch would be charged from the endpoint's next call back to its previous
    /// one at the count from before it.
    ///
    /// The loop holds the meter weakly (it ends at the first tick after the meter
    /// is dropped, or once shutdown has begun, and a round under way starts no
    /// further refresh then) and is not background work that
    /// shutdown waits for; a runtime that is dropped cancels it, and the next call
    /// starts it on its own runtime.
    fn start_refreshing(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.background.is_closed() {
            return;
        }
        let discovery = &self.inner.discovery;
        let Some(running) = discovery.claim_refresh_loop() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        discovery.on_refreshed({
            let weak = weak.clone();
            Box::new(move |endpoint: String, first_found: bool| {
                let weak = weak.clone();
                Box::pin(async move {
                    if let Some(inner) = weak.upgrade() {
                        let meter = Meter { inner };
                        let prepared = meter.prepare(&endpoint).await;
                        if matches!(prepared.profile, Err(DiscoveryError::NotFound { .. })) {
                            meter.endpoint_deleted(&endpoint);
                        }
                        // Found at last after the calls got a failure (its
                        // discovery throttled, timed out, denied): its instances
                        // stood all along, and are metered from now on, not from
                        // the next call (whose accrual would begin with it).
                        if first_found && prepared.profile.is_ok() {
                            let now = meter.now();
                            for variant in &prepared.rates {
                                meter.inner.totals.begin_accrual(variant.totals, now);
                            }
                        }
                    }
                })
            })
        });
        let every = discovery.refresh_tick().max(MIN_REFRESH_TICK);
        handle.spawn(async move {
            let _running = running;
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is at once: what the call that started the loop
            // found is fresh.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let sweep = {
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    if inner.background.is_closed() {
                        return;
                    }
                    let weak = weak.clone();
                    inner.discovery.refresh_stale(move || {
                        weak.upgrade()
                            .is_some_and(|inner| !inner.background.is_closed())
                    })
                };
                // A few refreshes at a time; the meter is not held meanwhile.
                sweep.await;
            }
        });
    }

    /// The price-source rates of `fleet` (a variant of `profile`, or a fleet
    /// billed alongside one) when all are at hand (see
    /// [`prepare_now`](Self::prepare_now)); `None` when one must be waited for.
    fn fleet_rates_now(
        &self,
        profile: &EndpointProfile,
        fleet: &VariantProfile,
    ) -> Option<FleetRates> {
        let compute = match compute_key(&self.inner.region, profile.kind, &fleet.billing) {
            Ok(key) => self.rate_now(&key)?,
            Err(err) => Err(err),
        };
        let keys = standing_keys(&self.inner.region, fleet);
        // A key's rate at hand (`Some(None)` for no key); `None` to wait for one.
        let rate_now = |key: &Option<PriceKey>| match key {
            Some(key) => self.rate_now(key).map(Some),
            None => Some(None),
        };
        let standing = StandingRates {
            provisioned: rate_now(&keys.provisioned)?,
            beyond_provisioned: rate_now(&keys.beyond_provisioned)?,
            storage: rate_now(&keys.storage)?,
        };
        Some((compute, standing))
    }

    /// The price-source rates of `fleet` (see
    /// [`fleet_rates_now`](Self::fleet_rates_now)), waiting for the price source.
    async fn fleet_rates(&self, profile: &EndpointProfile, fleet: &VariantProfile) -> FleetRates {
        let compute = match compute_key(&self.inner.region, profile.kind, &fleet.billing) {
            Ok(key) => self.rate(&key).await,
            Err(err) => Err(err),
        };
        let keys = standing_keys(&self.inner.region, fleet);
        let rate_of = |key: &Option<PriceKey>| {
            let key = key.clone();
            async move {
                match key {
                    Some(key) => Some(self.rate(&key).await),
                    None => None,
                }
            }
        };
        let (provisioned, beyond_provisioned, storage) = tokio::join!(
            rate_of(&keys.provisioned),
            rate_of(&keys.beyond_provisioned),
            rate_of(&keys.storage),
        );
        (
            compute,
            StandingRates {
                provisioned,
                beyond_provisioned,
                storage,
            },
        )
    }

    /// Says once per endpoint and variant (INFO) that an instance variant's ML
    /// storage is not accrued because no volume size is known: SageMaker attaches
    /// a volume all the same (of a size the instance type sets; none on types
    /// with NVMe instance storage, so nothing may be missing), and no size is
    /// assumed. Runs when an endpoint's rates are put together (about once a
    /// second while it is called), not on every call, and allocates nothing once
    /// said.
    fn note_if_volume_size_unknown(&self, profile: &EndpointProfile, variant: &VariantProfile) {
        let VariantBilling::Instance {
            instance_type,
            instance_count,
        } = &variant.billing
        else {
            return;
        };
        // A new fleet whose deployment's config could not be read says so on
        // its receipts already.
        let config_unread = profile.pending_storage_unknown.is_some()
            && profile
                .pending_variants
                .iter()
                .any(|p| std::ptr::eq(p, variant));
        if variant.volume_size_gb.is_some() || *instance_count == 0 || config_unread {
            return;
        }
        let endpoint = profile.endpoint.as_str();
        if !self.first_warning(("volume size", endpoint, &variant.name)) {
            return;
        }
        match profile.source {
            ProfileSource::Override => tracing::info!(target: "sagemeter", endpoint,
                variant = %variant.name, instance_type,
                "the endpoint profile given states no volume size \
                 (VariantProfile::with_volume_size_gb): the variant's ML storage is not in \
                 its accrual"),
            _ => tracing::info!(target: "sagemeter", endpoint, variant = %variant.name,
                instance_type,
                "the endpoint config states no VolumeSizeInGB: the variant's ML storage \
                 (a volume of the instance type's default size, none on types with NVMe \
                 instance storage) is not in its accrual"),
        }
    }

    /// The note on a receipt whose variant's accrual leaves `part` of what stands
    /// out, its rate not known (`ML storage`: the volume size is known, the
    /// storage rate is not; `provisioned concurrency`: its standing rate), WARNed
    /// once per part, endpoint, variant and reason.
    fn left_out_of_accrual(
        &self,
        part: &str,
        endpoint: &str,
        variant: &str,
        reason: &str,
    ) -> String {
        if self.first_warning((part, endpoint, variant, reason)) {
            tracing::warn!(target: "sagemeter", endpoint, variant, reason,
                "a variant's {part} could not be priced: its accrual leaves it out");
        }
        format!("the variant's {part} is not accrued: its rate is not known ({reason})")
    }

    /// Whether `what` (a tuple naming the kind of note and what it is about) is
    /// noted for the first time (kept up to [`MAX_WARNED`] keys; past that,
    /// nothing more is noted: each receipt still carries its note).
    fn first_warning(&self, what: impl std::hash::Hash) -> bool {
        self.inner.noted.first(what) == Seen::First
    }

    /// Nothing hosted beyond the variant's own model (a shadow or pending fleet,
    /// whose components are not described).
    fn hosted_nothing(&self) -> Hosted<'_> {
        Hosted {
            components: &[],
            stated: &self.inner.instance_resources,
        }
    }

    /// `endpoint` was found deleted: its variants stand at nothing from now on, in
    /// this process's accrual and the fleet's. Only while that is discovery's
    /// current answer, and not after a newer one was applied (see
    /// [`set_capacity`](Self::set_capacity)).
    fn endpoint_deleted(&self, endpoint: &str) {
        let now = self.now();
        let mut applied = (self.inner.capacity_applied.lock()).unwrap_or_else(|e| e.into_inner());
        let Some(generation) = self.inner.discovery.deleted_generation(endpoint) else {
            return;
        };
        let last = applied.entry_ref(endpoint).or_insert(0);
        if generation < *last {
            return;
        }
        *last = generation;
        let stood = self.inner.totals.endpoint_deleted(endpoint, now);
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.inner.fleet {
            for (variant, from) in stood {
                fleet.set_standing(
                    endpoint,
                    &variant,
                    Decimal::ZERO,
                    from,
                    no_terms(),
                    now,
                    Some(now),
                );
            }
        }
        #[cfg(not(feature = "fleet"))]
        let _ = stood;
    }

    fn hosted<'a>(&'a self, profile: &'a EndpointProfile) -> Hosted<'a> {
        Hosted {
            components: &profile.components,
            stated: &self.inner.instance_resources,
        }
    }

    /// What follows a profile found wanting on a receipt: for a profile the
    /// caller set, `fix` (what to put right in it); a discovered one is
    /// described again soon.
    fn profile_put_right(
        &self,
        profile: &EndpointProfile,
        endpoint: &str,
        fix: impl Into<std::borrow::Cow<'static, str>>,
    ) -> std::borrow::Cow<'static, str> {
        if profile.source == ProfileSource::Override {
            fix.into()
        } else {
            self.inner.discovery.refresh_soon(endpoint, self.now());
            "the profile is described again (at most every 10 s, or discovery_refresh when \
             shorter)"
                .into()
        }
    }

    /// Why an adapter's call (to `name`, on `profile`'s endpoint) was allocated
    /// on a clock other than its base component's (`clock`, the one it joined):
    /// it began before any profile of the endpoint was at hand, so it could not
    /// be told from a component with copies of its own (see [`Targets::seat`]).
    /// Its share is then what it would be alone on a copy while calls to the
    /// base (and its other adapters) in flight meanwhile were allocated as if it
    /// were not there: together more than the copies' time. `None` for any
    /// other call (most: not an adapter, or on its base's clock).
    fn adapter_apart(
        &self,
        profile: &EndpointProfile,
        name: &str,
        clock: Option<crate::totals::EndpointSlot>,
    ) -> Option<String> {
        let base = profile.component(name)?.base.as_deref()?;
        let clock = clock?;
        let totals = &self.inner.totals;
        if clock == totals.endpoint_slot(&component_clock(&profile.endpoint, base)) {
            return None;
        }
        Some(format!(
            "inference component `{name}` is an adapter of `{base}`, whose copies its calls \
             share, but this call began before the endpoint's profile was known and was \
             allocated on a clock of its own, as if alone on a copy: calls to `{base}` in \
             flight meanwhile were each allocated as if it were not there, so the copy's \
             time they shared may be charged more than once; later calls share `{base}`'s \
             clock"
        ))
    }

    /// What the sharing clocks share from `now` on: the endpoint's instances, each
    /// variant's (for calls that target it), and each inference component's
    /// copies; and what each variant's standing capacity accrues at from then.
    /// Returns each component's slot (its clock and running total), so that calls
    /// find it without a look-up.
    ///
    /// Applied only while `profile` is discovery's current answer (the
    /// override, or the profile cached now), and never after a newer one: each
    /// answer discovery stores (a profile, or the endpoint found deleted) has a
    /// higher generation than those before (`Discovery::current_generation`),
    /// and an answer whose generation is lower than the last one applied for the
    /// endpoint changes no count or rate, the comparison and the changes made
    /// under one lock ([`MeterInner::capacity_applied`]). So a profile a call
    /// took before a refresh stored a newer one (and applied it), applied after
    /// it, changes nothing, though it was still current when the call looked:
    /// or it would put back the counts and rates from before the refresh until
    /// the next one.
    fn set_capacity(
        &self,
        totals: EndpointSlot,
        profile: &Arc<EndpointProfile>,
        rates: &[VariantRates],
        now: SystemTime,
    ) -> Vec<(String, EndpointSlot)> {
        let generation = self
            .inner
            .discovery
            .current_generation(&profile.endpoint, profile);
        self.apply_capacity(totals, profile, generation, rates, now)
    }

    /// [`set_capacity`](Self::set_capacity) of `profile`, found discovery's
    /// current answer at `generation` (`None`: it was not).
    fn apply_capacity(
        &self,
        totals: EndpointSlot,
        profile: &Arc<EndpointProfile>,
        generation: Option<u64>,
        rates: &[VariantRates],
        now: SystemTime,
    ) -> Vec<(String, EndpointSlot)> {
        let mut applied = (self.inner.capacity_applied.lock()).unwrap_or_else(|e| e.into_inner());
        let current = generation.is_some_and(|generation| {
            let last = applied.entry_ref(profile.endpoint.as_str()).or_insert(0);
            let newest = generation >= *last;
            if newest {
                *last = generation;
            }
            newest
        });
        if current {
            self.set_standing_and_instances(totals, profile, rates, now);
        }
        let clocks = &self.inner.totals;
        let slots = profile
            .components
            .iter()
            .map(|component| {
                let clock = component_clock(&profile.endpoint, &component.name);
                let slot = clocks.endpoint_slot(&clock);
                // An adapter's calls share its base's copies with the base's own:
                // they join the base's clock (its running total stays its own).
                let base = component
                    .base
                    .as_deref()
                    .map(|base| component_clock(&profile.endpoint, base));
                clocks.share_clock(&clock, base.as_deref());
                if current && !component.is_adapter() {
                    clocks.set_instances(slot, component.copies, now);
                }
                (component.name.clone(), slot)
            })
            .collect();
        drop(applied);
        slots
    }

    /// [`set_capacity`](Self::set_capacity)'s variants: each one's standing rate
    /// and instances from `now` on, the endpoint's instances, and nothing
    /// standing of a variant `profile` (discovery's current answer) lacks.
    fn set_standing_and_instances(
        &self,
        totals: EndpointSlot,
        profile: &Arc<EndpointProfile>,
        rates: &[VariantRates],
        now: SystemTime,
    ) {
        let clocks = &self.inner.totals;
        // When this profile was described: one look-up for all its variants.
        #[cfg(feature = "fleet")]
        let described = self
            .inner
            .fleet
            .as_ref()
            .and_then(|_| self.inner.discovery.described_at(&profile.endpoint));
        for (profiled, variant) in profile.variants.iter().zip(rates) {
            // The rate from now on, and where it came from; a rate not known
            // leaves the last known one in force.
            let (usd_per_hour, from, terms) = match variant.standing() {
                Standing::Stands(standing) => {
                    let usd_per_hour = standing.usd_per_hour_all_instances;
                    let from = standing.capacity_from.clone();
                    let terms = standing.terms.clone();
                    clocks.set_standing(variant.totals, standing, now);
                    (usd_per_hour, from, terms)
                }
                // Not the old rate over the time until capacity stands again.
                Standing::Nothing => match clocks.nothing_stands(variant.totals, now) {
                    Some(from) => (Decimal::ZERO, from, no_terms()),
                    None => continue,
                },
                // The fleets billed alongside it still stand, at their known
                // rates (or nothing does), when no rate of its own is in force
                // (none known since the accrual began, or it stood at nothing,
                // scaled to 0 since); the fleet's accrual has nothing of it
                // until one is.
                Standing::Unknown => {
                    clocks.set_standing_beside_unknown(
                        variant.totals,
                        variant.standing_beside_unknown(),
                        variant.own_instances(),
                        now,
                    );
                    continue;
                }
            };
            // The fleet's accrual prices each stretch of the day at its rate.
            #[cfg(feature = "fleet")]
            if let Some(fleet) = &self.inner.fleet {
                fleet.set_standing(
                    &profile.endpoint,
                    &profiled.name,
                    usd_per_hour,
                    from,
                    terms,
                    now,
                    described,
                );
            }
            #[cfg(not(feature = "fleet"))]
            let _ = (profiled, usd_per_hour, from, terms);
        }
        // A variant the profile no longer has (an update to a config without
        // it): nothing of it stands from now on, here and in the fleet's
        // accrual, as when the endpoint is deleted.
        let gone = clocks.variants_gone(
            totals,
            |name| !profile.variants.iter().any(|v| v.name == name),
            now,
        );
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.inner.fleet {
            for (variant, from) in gone {
                fleet.set_standing(
                    &profile.endpoint,
                    &variant,
                    Decimal::ZERO,
                    from,
                    no_terms(),
                    now,
                    described,
                );
            }
        }
        #[cfg(not(feature = "fleet"))]
        let _ = gone;
        // The endpoint's clock is shared by the calls that name no variant:
        // only the variants SageMaker routes those to count.
        clocks.set_instances(totals, profile.routable_instance_count(), now);
        clocks.set_provisioned(totals, clock_provisioned(profile));
        let only_variant = profile.variants.len() == 1;
        for variant in &profile.variants {
            let instances = match variant.billing {
                _ if only_variant => None,
                VariantBilling::Instance { instance_count, .. } => Some(instance_count),
                VariantBilling::Serverless { .. } => continue, // billed by duration
            };
            let clock = variant_clock(&profile.endpoint, &variant.name);
            clocks.set_variant_instances(totals, &clock, instances, now);
        }
    }

    /// Profile and rates of `endpoint`: at hand, else discovered and priced.
    pub(crate) async fn prepare(&self, endpoint: &str) -> Arc<Prepared> {
        match self.prepare_now(endpoint, self.now()) {
            Some(prepared) => prepared,
            None => self.prepare_waiting(endpoint).await,
        }
    }

    /// Profile and rates of `endpoint` as they are at hand now, without waiting:
    /// what is cached, else nothing (each line unpriced, saying so). For a call
    /// whose pricing could not wait ([`NOT_WAITED`]), so that it is still counted
    /// in the totals and budgets.
    pub(crate) fn prepare_at_hand(&self, endpoint: &str) -> Arc<Prepared> {
        if let Some(prepared) = self.prepare_now(endpoint, self.now()) {
            return prepared;
        }
        let why = format!("its rates were not at hand, and could not be waited for: {NOT_WAITED}");
        let unavailable = || {
            Err(crate::pricing::PriceError::Unavailable {
                reason: why.clone(),
            })
        };
        Arc::new(Prepared {
            profile: Err(DiscoveryError::Failed {
                endpoint: endpoint.to_owned(),
                message: why.clone(),
            }),
            rates: Vec::new(),
            data: [unavailable(), unavailable()],
            totals: self.inner.totals.endpoint_slot(endpoint),
            component_slots: Vec::new(),
        })
    }

    /// Profile and rates of `endpoint` through the discovery and price sources'
    /// waiting paths, for when [`prepare_now`](Self::prepare_now) had not all of them.
    pub(crate) async fn prepare_waiting(&self, endpoint: &str) -> Arc<Prepared> {
        self.start_refreshing();
        // The data rates alongside the profile: a cold or failing source costs one
        // wait, not several. The profile's other keys start being fetched as soon as
        // it is known (`endpoint_profile` warms them), so the look-ups below wait
        // for the slowest of them, not for each in turn.
        let (profile, data_in, data_out) = tokio::join!(
            self.endpoint_profile(endpoint),
            self.rate(&self.inner.data_in_key),
            self.rate(&self.inner.data_out_key),
        );
        let totals = self.inner.totals.endpoint_slot(endpoint);
        let mut rates = Vec::new();
        if let Ok(profile) = &profile {
            // Each fleet's rates waited for first, then the fold `prepare_now`'s
            // is. Every shadow and pending fleet is billed alongside a variant
            // (one whose name matches none alongside the first), so these are
            // the fleets the fold asks for when the profile has a variant.
            let mut found: Vec<(&VariantProfile, FleetRates)> = Vec::new();
            if !profile.variants.is_empty() {
                let fleets = (profile.variants.iter())
                    .chain(&profile.shadow_variants)
                    .chain(&profile.pending_variants);
                for fleet in fleets {
                    found.push((fleet, self.fleet_rates(profile, fleet).await));
                }
            }
            let folded = self.fold_variants_rates(profile, totals, |fleet| {
                let (_, rates) = found.iter().find(|(f, _)| std::ptr::eq(*f, fleet))?;
                Some(rates.clone())
            });
            rates = folded.expect("every fleet the fold asks for was waited for above");
        }
        let component_slots = match &profile {
            Ok(profile) => self.set_capacity(totals, profile, &rates, self.now()),
            Err(_) => Vec::new(),
        };
        Arc::new(Prepared {
            profile,
            rates,
            data: [data_in, data_out],
            totals,
            component_slots,
        })
    }

    /// Price → bill → record → settle → sinks, for one finished call: its budget
    /// reservation is settled before any sink runs, so a sink that panics (caught,
    /// see [`record_in_sinks`](Self::record_in_sinks)) can leave no call counted in
    /// the totals but not in its budgets.
    pub(crate) fn finish_settled(
        &self,
        call: FinishedCall,
        prepared: &Prepared,
        reservation: Option<Reservation>,
        part: Option<&mut Reservation>,
        phase: Phase,
    ) -> Cost {
        let (never_settled_jobs, may_have_queued) = (call.never_settled_jobs, call.may_have_queued);
        let (cost, billed_at) = self.bill_phase(call, prepared, phase);
        // A submission receipt that settles the whole reservation is of an
        // invocation whose pending half was lost with its dropped call: its
        // compute, nearly all it costs, runs but is never settled on a
        // receipt, and has no known bound. It counts at no less than the
        // estimate, whatever the submission's own lines (an input in S3 of
        // unstated size would otherwise count at the fee and its 1 GB bound).
        let priced = match phase {
            Phase::Submitted => Priced::Partly,
            Phase::Whole | Phase::Settled => priced_for_budgets(&cost, prepared, may_have_queued),
        };
        self.settle_priced(reservation, &cost.tags, cost.cost_usd, priced, billed_at);
        // So does each further job SageMaker queued for the submission (it
        // accepted it more than once): nothing was reserved for it, and its
        // own lines are on the receipt just settled.
        for _ in 0..never_settled_jobs {
            let job = self.reserve_nothing(&cost.endpoint);
            self.settle_priced(job, &cost.tags, Decimal::ZERO, Priced::Partly, billed_at);
        }
        // An async submission's part of its hold, the rest held for its
        // settlement: at the same time, before the sinks too.
        if let Some(hold) = part {
            self.settle_part(hold, &cost, prepared, may_have_queued, billed_at);
        }
        self.record_in_sinks(&cost, component_listed(prepared, &cost));
        cost
    }

    /// Hands `cost` to every sink, each on its own: a sink that panics is caught,
    /// counted (`sagemeter_sink_dropped_total{sink=<its name>,reason="panicked"}`)
    /// and logged (a WARN naming it, never the receipt, at most every 10 s per
    /// sink), and the call and the other sinks go on. While the thread is already
    /// unwinding (a receipt made in a `Drop` during a panic), a second panic would
    /// abort the process whatever catches it, so the sinks then run on a
    /// background task; with no runtime, once the meter's shutdown has begun
    /// (which refuses tasks), or when the runtime drops the task unrun (one
    /// dropped by the same panic), at once: on a thread of their own, this one
    /// waiting for it, while it unwinds.
    ///
    /// `component_listed`: whether the endpoint's profile lists the call's
    /// inference component, for the sinks that name it (the metrics, EMF; see
    /// [`MeteredSink::names_components`]): they name only those, and, `None`
    /// when not known, a bounded number per endpoint.
    pub(crate) fn record_in_sinks(&self, cost: &Cost, component_listed: Option<bool>) {
        if std::thread::panicking() {
            // On a background task, as the call's own (the caller's runtime,
            // its metrics recorder and `tracing` subscriber there). Refused
            // (no runtime, shutdown begun), or dropped unrun by its runtime
            // (one dropped by this very panic), the task records it at once.
            let later = SinksLater {
                meter: self.clone(),
                receipt: Some((cost.clone(), component_listed)),
            };
            self.inner.background.spawn(later.run());
            return;
        }
        self.record_in_each_sink(cost, component_listed);
    }

    /// [`record_in_sinks`](Self::record_in_sinks) at once: on this thread or,
    /// while it unwinds, on a thread of its own, this one waiting for it (the
    /// caller's runtime and `tracing` subscriber carried over).
    fn record_in_sinks_now(&self, cost: &Cost, component_listed: Option<bool>) {
        if !std::thread::panicking() {
            self.record_in_each_sink(cost, component_listed);
            return;
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let recorded = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("sagemeter-unwinding-receipt".into())
                .spawn_scoped(scope, || {
                    let _runtime = runtime.as_ref().map(|r| r.enter());
                    tracing::dispatcher::with_default(&dispatch, || {
                        self.record_in_each_sink(cost, component_listed)
                    });
                })
                // Joined here: a panic there is this `Err`, not the scope's.
                .map(|thread| thread.join().is_ok())
        });
        if !matches!(recorded, Ok(true)) {
            tracing::warn!(target: "sagemeter", endpoint = %cost.endpoint,
                call_id = %cost.call_id,
                "a receipt made while the thread was panicking could not reach the sinks: \
                 the OS refused a thread for them (the totals and budgets have it)");
        }
    }

    /// Each sink on its own, on this thread (not unwinding; see
    /// [`record_in_sinks`](Self::record_in_sinks)).
    fn record_in_each_sink(&self, cost: &Cost, component_listed: Option<bool>) {
        for MeteredSink {
            sink,
            names_components,
            panic_warn: warn,
        } in &self.inner.sinks
        {
            let recorded =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match names_components {
                    Some(sink) => sink.record_call(cost, component_listed),
                    None => sink.record(cost),
                }));
            if recorded.is_err() {
                crate::sink::count_panicked(sink.name().to_owned());
                if warn.should_warn() {
                    tracing::warn!(target: "sagemeter", sink = sink.name(),
                        endpoint = %cost.endpoint, call_id = %cost.call_id,
                        "a cost sink panicked recording a receipt: it missed this receipt \
                         (counted in sagemeter_sink_dropped_total; logged at most every 10 s); \
                         the call, its totals and budgets and the other sinks are unaffected");
                }
            }
        }
    }

    /// Price → bill → record the totals → the receipt, for the lines of `phase`;
    /// no sinks (see [`finish_settled`](Self::finish_settled)). With when it was
    /// billed: the one reading of the clock its totals and the fleet's items
    /// count it at, for its budgets' settlement to count it at too.
    pub(crate) fn bill_phase(
        &self,
        call: FinishedCall,
        prepared: &Prepared,
        phase: Phase,
    ) -> (Cost, SystemTime) {
        let FinishedCall {
            endpoint,
            request_id,
            started_at,
            targets,
            mut usage,
            tags,
            mut notes,
            shared_time,
            clock: shared_clock,
            serverless_ms,
            slots_busy_at_start,
            answers_2xx,
            never_settled_jobs: _,
            may_have_queued: _,
            unknown,
            tokens_unseen,
            variant_assumed,
            submission_counted_unpriced,
        } = call;
        let compute_unknown = unknown.iter().any(|(item, _)| *item == LineItem::Compute);
        let ended_at = self.now();
        let charges = self.inner.charges.get(&endpoint);
        // Usage charges `alone` are the whole price: no compute, no data processing.
        let alone = charges.is_some_and(|c| c.alone);
        let billed = |item: LineItem| {
            let infrastructure = matches!(
                item,
                LineItem::Compute | LineItem::DataIn | LineItem::DataOut
            );
            phase.bills(item) && !(alone && infrastructure)
        };
        let bill_compute = billed(LineItem::Compute);
        // A receipt states durations in whole microseconds (as it is serialised):
        // bill from exactly what it states, so that a receipt read back from a
        // ledger equals the one returned. Rounded up, not down: serverless time is
        // billed rounded up to the millisecond, and a part of a microsecond over a
        // whole millisecond must still make the next one.
        let micros_up = super::call::micros_up;
        usage.latency = std::time::Duration::from_micros(micros_up(usage.latency));
        usage.time_to_first_byte = usage
            .time_to_first_byte
            .map(|d| std::time::Duration::from_micros(micros_up(d)));
        // A wall clock that stepped forward while the call was in flight is not
        // part of its share (see `Totals::cap_share`).
        let shared_time = shared_time.map(|t| self.inner.totals.cap_share(t, usage.latency));

        // Which variant served the call, and how it is billed.
        let mut variant = None;
        let mut billing = None;
        let mut lines: Vec<CostLine> = Vec::with_capacity(3);
        let mut clock = None;
        // Served beyond the provisioned concurrency: on demand, not by what the
        // standing charge pays for.
        let mut on_demand = false;
        let mut variant_slot = None;
        // Why the accrual has nothing for the call, when the profile shows no
        // instance of the variant that served it.
        let mut no_instance: Option<String> = None;
        let component = targets.component.as_deref();
        match &prepared.profile {
            Ok(profile) => {
                // Priced on a profile kept while its refresh fails: said so.
                if let Some(note) = self.inner.discovery.refresh_failing_note(&endpoint) {
                    notes.push(note);
                }
                // A call to an inference component is served by its variant.
                let targeted = targets.variant.as_deref().or_else(|| {
                    component
                        .and_then(|name| profile.component(name))
                        .map(|c| c.variant.as_str())
                });
                // A variant sagemeter assumed is a hint, never one SageMaker
                // named: taken off the usage, which gets the one priced.
                let chosen = match usage.variant.take_if(|_| variant_assumed) {
                    Some(assumed) => profile.variant_assumed(&assumed, targeted),
                    None => profile
                        .variant_for(usage.variant.as_deref(), targeted)
                        .map(|(v, note)| (v, note.into_iter().collect())),
                };
                match chosen {
                    Some((v, chosen_notes)) => {
                        notes.extend(chosen_notes.into_iter().map(std::borrow::Cow::into_owned));
                        let rates = prepared.rates_of(v);
                        // Its own rate not known, and none of it since the
                        // accrual began: the fleets billed alongside it that
                        // are priced accrue alone, and its own instances are
                        // unpriced, saying so.
                        let standing = match rates.standing() {
                            Standing::Stands(standing) => Some(standing),
                            Standing::Unknown => rates
                                .standing_beside_unknown()
                                .filter(|_| !self.inner.totals.keeps_own_rate(rates.totals))
                                .or_else(|| {
                                    self.inner.totals.standing_beside_unknown(rates.totals)
                                }),
                            Standing::Nothing => None,
                        };
                        let beside_unknown = standing.as_ref().is_some_and(|s| s.beside_unknown);
                        // Its provisioned concurrency at a rate not known, and
                        // no rate of its own in force: nothing of it accrues.
                        if standing.is_none()
                            && bill_compute
                            && let Some(reason) = &rates.standing_unpriced
                            && !self.inner.totals.keeps_own_rate(rates.totals)
                        {
                            notes.push(self.left_out_of_accrual(
                                "provisioned concurrency",
                                &endpoint,
                                &v.name,
                                reason,
                            ));
                        }
                        if let Some(standing) = standing
                            && bill_compute
                        {
                            if beside_unknown {
                                let alongside = standing.instances > 0;
                                notes.push(own_left_out(&v.name, alongside, &rates.compute));
                            }
                            // A settlement's instances stood for its processing at
                            // least; not since the submission, hours back maybe, at
                            // today's count (queued while scaled to zero, or first
                            // seen by a process that only settles).
                            let started_at = match phase {
                                Phase::Settled => ended_at
                                    .checked_sub(usage.latency)
                                    .map_or(started_at, |from| from.max(started_at)),
                                _ => started_at,
                            };
                            // The profile shows no instance, yet the call was
                            // served: the accrual (at what the profile shows) has
                            // nothing for it until a refresh finds the instances.
                            // None is made up over the call: one per call would
                            // count overlapping calls, or a late settlement's time
                            // already accrued at instances found since, twice.
                            if matches!(
                                v.billing,
                                VariantBilling::Instance {
                                    instance_count: 0,
                                    ..
                                }
                            ) {
                                let then = self.profile_put_right(
                                    profile,
                                    &endpoint,
                                    "set it right in the profile set for the endpoint \
                                     (ClientBuilder::endpoint_profile)",
                                );
                                // Fleets billed alongside (a shadow, a deployment's
                                // new fleet) may still stand: then the accrual is
                                // not 0.
                                let no_utilisation = if standing.instances == 0 {
                                    " (no utilisation while it is 0)"
                                } else {
                                    ""
                                };
                                let note = format!(
                                    "the endpoint's profile shows no instance of variant `{}` \
                                     (scaled to zero, or described before one came up), yet \
                                     the call was served: the accrual has nothing for it until \
                                     a refresh finds the instances{no_utilisation}; {then}",
                                    v.name
                                );
                                notes.push(note.clone());
                                no_instance = Some(note);
                            }
                            clock = Some(InstanceClock {
                                standing,
                                started_at,
                                ended_at,
                            });
                            if let Some(reason) = &rates.storage_unpriced {
                                notes.push(self.left_out_of_accrual(
                                    "ML storage",
                                    &endpoint,
                                    &v.name,
                                    reason,
                                ));
                            }
                        }
                        // A shadow or pending fleet whose rate is not known: AWS
                        // bills its instances all the same, whatever stands of
                        // the variant's own (a serverless variant beside a new
                        // instance fleet has nothing standing).
                        if bill_compute {
                            for (fleet, reason) in &rates.alongside_unpriced {
                                notes.push(self.left_out_of_accrual(
                                    &format!("shadow/pending fleet `{fleet}`"),
                                    &endpoint,
                                    &v.name,
                                    reason,
                                ));
                            }
                        }
                        // An async settlement bills the time the caller states, at
                        // a whole instance: it is not on the amortised clock, and
                        // does not move it; nor does a call whose compute is not
                        // known (the next call carries the gap, not a zeroed line).
                        // Amortised, a call carries what the variant's accrual
                        // added since the previous call: instance time. A
                        // serverless call is billed by its own duration, at the
                        // on-demand rate beyond the provisioned concurrency,
                        // whatever the allocation.
                        let amortized = (bill_compute
                            && phase != Phase::Settled
                            && !compute_unknown
                            && self.inner.allocation == Allocation::Amortized
                            && matches!(v.billing, VariantBilling::Instance { .. }))
                        .then(|| {
                            self.inner.totals.amortized_since_previous_call(
                                rates.totals,
                                clock.as_ref(),
                                ended_at,
                            )
                        });
                        match (component, amortized) {
                            // Amortised, the call carries what the accrual added
                            // since the previous call, or (the first priced after
                            // calls at no rate) the gap since it at the
                            // instances the profile shows: nothing, which is not
                            // what the instance that served it cost.
                            (None, Some(share))
                                if no_instance.is_some()
                                    && match &share {
                                        AmortizedShare::Accrued { parts, .. } => parts.is_empty(),
                                        AmortizedShare::Gap(_) => true,
                                        AmortizedShare::First => false,
                                    } =>
                            {
                                lines.push(unpriced(
                                    LineItem::Compute,
                                    Decimal::ZERO,
                                    QuantityUnit::InstanceHours,
                                    no_instance.take().unwrap_or_default(),
                                ));
                            }
                            (None, Some(share)) => {
                                let unpriced_hours = match &share {
                                    AmortizedShare::Accrued {
                                        unpriced_instance_hours,
                                        ..
                                    } => *unpriced_instance_hours,
                                    _ => Decimal::ZERO,
                                };
                                lines.extend(amortized_compute_lines(
                                    &v.billing,
                                    &usage,
                                    share,
                                    &rates.compute,
                                ));
                                // The parts accrued are the fleets' billed
                                // alongside alone (or none): the variant's own
                                // instance-hours of the gap are not priced,
                                // and say so.
                                let own_unpriced = lines.iter_mut().find(|l| {
                                    l.item == LineItem::Compute
                                        && matches!(l.price, LinePrice::Unpriced { .. })
                                });
                                match own_unpriced {
                                    Some(line) if line.quantity.is_zero() => {
                                        line.quantity = unpriced_hours;
                                    }
                                    Some(_) => {}
                                    None if beside_unknown || !unpriced_hours.is_zero() => {
                                        let alongside = clock
                                            .as_ref()
                                            .is_some_and(|c| c.standing.instances > 0);
                                        lines.push(unpriced(
                                            LineItem::Compute,
                                            unpriced_hours,
                                            QuantityUnit::InstanceHours,
                                            own_left_out(&v.name, alongside, &rates.compute),
                                        ));
                                    }
                                    None => {}
                                }
                            }
                            (None, None) => {
                                // Counted on the endpoint's clock: the variant's
                                // calls only when it is the endpoint's one.
                                let busy =
                                    slots_busy_at_start.filter(|_| profile.variants.len() == 1);
                                let rate = match beyond_provisioned(&v.billing, busy, rates) {
                                    Some((rate, note)) => {
                                        notes.push(note);
                                        on_demand = true;
                                        rate
                                    }
                                    None => &rates.compute,
                                };
                                lines.push(compute_line(
                                    &v.billing,
                                    &usage,
                                    self.inner.allocation,
                                    shared_time,
                                    serverless_ms,
                                    rate,
                                ))
                            }
                            // The profile shows no copy of the component (scaled to
                            // zero, or still being created when it was described):
                            // a call proves one now, of a share not known yet.
                            // An adapter has no copies of its own (none to set): it
                            // runs on its base's, which the reason names.
                            (Some(name), _) if no_copies(profile, name) => {
                                let base = profile.component(name).and_then(|c| c.base.as_deref());
                                let (what, fix) = match base {
                                    Some(base) => (
                                        format!(
                                            "inference component `{base}`, the base adapter \
                                             `{name}` runs on"
                                        ),
                                        format!(
                                            "set the copies of its base `{base}` in the profile \
                                             set for the endpoint \
                                             (ClientBuilder::endpoint_profile)"
                                        ),
                                    ),
                                    None => (
                                        format!("inference component `{name}`"),
                                        "set its copies in the profile set for the endpoint \
                                         (ClientBuilder::endpoint_profile)"
                                            .to_owned(),
                                    ),
                                };
                                let then = self.profile_put_right(profile, &endpoint, fix);
                                lines.push(unpriced(
                                    LineItem::Compute,
                                    Decimal::ZERO,
                                    QuantityUnit::InstanceHours,
                                    format!(
                                        "the endpoint's profile shows no copy of {what} (scaled \
                                         to zero, or still being created when described): what \
                                         the call's copy holds of the instances is not known; \
                                         {then}"
                                    ),
                                ));
                            }
                            // The profile lists no such component, yet SageMaker
                            // served the call: created since the profile was
                            // described (a call naming a component the endpoint
                            // lacks is refused unanswered), so it is stale.
                            (Some(name), _)
                                if profile.component(name).is_none()
                                    && rates.component(name).is_none() =>
                            {
                                let then = self.profile_put_right(
                                    profile,
                                    &endpoint,
                                    "add it to the profile set for the endpoint \
                                     (ClientBuilder::endpoint_profile)",
                                );
                                lines.push(unpriced(
                                    LineItem::Compute,
                                    Decimal::ZERO,
                                    QuantityUnit::InstanceHours,
                                    format!(
                                        "inference component `{name}` is not among the \
                                         variant's components as discovered (created since, \
                                         as SageMaker served the call): its share of the \
                                         instances is unknown; {then}"
                                    ),
                                ));
                            }
                            (Some(name), _) => {
                                if self.inner.allocation == Allocation::ProcessorSharing
                                    && shared_time.is_some()
                                    && let Some(note) =
                                        self.adapter_apart(profile, name, shared_clock)
                                {
                                    notes.push(note);
                                }
                                lines.push(component_compute_line(
                                    name,
                                    rates.component(name),
                                    &v.billing,
                                    &usage,
                                    self.inner.allocation,
                                    shared_time,
                                    &rates.compute,
                                ));
                            }
                        }
                        usage.variant.get_or_insert_with(|| v.name.clone());
                        variant_slot = Some(rates.totals);
                        variant = Some(v.name.clone());
                        billing = Some(v.billing.clone());
                    }
                    None => {
                        let override_set = profile.source == ProfileSource::Override;
                        let reason = match (usage.variant.as_deref(), targeted) {
                            // SageMaker served the call from a variant the cached
                            // profile does not know (a blue/green deployment since
                            // it was described): not billed as another variant.
                            (Some(named), _) if override_set => {
                                variant = Some(named.to_owned());
                                format!(
                                    "SageMaker named variant `{named}`, which the profile set \
                                     for endpoint `{endpoint}` (ClientBuilder::endpoint_profile) \
                                     does not have: add it to the profile"
                                )
                            }
                            (Some(named), _) if !profile.variants.is_empty() => {
                                self.inner.discovery.refresh_soon(&endpoint, self.now());
                                variant = Some(named.to_owned());
                                format!(
                                    "profile is stale: SageMaker named `{named}`, a variant \
                                     the profile of endpoint `{endpoint}` does not have; it is \
                                     being described again"
                                )
                            }
                            // SageMaker named none (the call failed), and the
                            // caller targeted a variant the profile lacks (added
                            // since it was described, or none of that name): not
                            // billed as the profile's only (or heaviest) variant.
                            (None, Some(targeted)) if !profile.variants.is_empty() => {
                                let then = self.profile_put_right(
                                    profile,
                                    &endpoint,
                                    "add it to the profile set for the endpoint \
                                     (ClientBuilder::endpoint_profile)",
                                );
                                format!(
                                    "the call targeted variant `{targeted}` (TargetVariant), \
                                     which the profile of endpoint `{endpoint}` does not have \
                                     (added since it was described, or no such variant): its \
                                     instances are not known; {then}"
                                )
                            }
                            _ => format!("endpoint `{endpoint}` has no production variants"),
                        };
                        lines.push(unpriced(
                            LineItem::Compute,
                            Decimal::ZERO,
                            QuantityUnit::InstanceHours,
                            reason,
                        ));
                    }
                }
            }
            Err(err) => lines.push(unpriced(
                LineItem::Compute,
                Decimal::ZERO,
                QuantityUnit::InstanceHours,
                err.to_string(),
            )),
        }
        // Data processed is billed at the region's rate, whatever the endpoint's
        // profile says or whether it could be found: an async submission (which
        // bills no compute) is then not a receipt of no lines at $0.
        let [data_in, data_out] = &prepared.data;
        lines.extend(data_lines(&usage, data_in, data_out));
        if let Some(charges) = charges {
            lines.extend(usage_charge_lines(&usage, answers_2xx, charges));
        }
        lines.retain(|l| billed(l.item));
        // A settlement that states the request never ran (0 s of compute, as
        // `AsyncCompletion::expired()` does) and wrote nothing (0 bytes out)
        // bills nothing of either, at any rate: neither needs one, so neither
        // is left unpriced when the endpoint cannot be described (no
        // permission, deleted since) or its rate is not known. Its line goes,
        // a note says why.
        if phase == Phase::Settled {
            let stated_zero = |item: LineItem| match item {
                LineItem::Compute => usage.latency.is_zero() && !compute_unknown,
                LineItem::DataOut => {
                    usage.bytes_out == 0 && !unknown.iter().any(|(i, _)| *i == item)
                }
                _ => false,
            };
            let mut dropped = |item: LineItem, note: &str| {
                let before = lines.len();
                lines.retain(|l| {
                    !(l.item == item
                        && stated_zero(item)
                        && matches!(l.price, LinePrice::Unpriced { .. }))
                });
                if lines.len() < before {
                    notes.push(note.to_owned());
                }
            };
            dropped(
                LineItem::Compute,
                "no compute billed: 0 s of compute (stated, or from submission to \
                 completion), which costs $0 at any rate, so none is needed",
            );
            dropped(
                LineItem::DataOut,
                "no data out billed: 0 bytes of output stated, which cost $0 at any rate, so \
                 none is needed",
            );
        }
        // A line stated free of charge costs nothing whatever its quantity.
        let free = |line: &CostLine| matches!(line.price, LinePrice::Priced { usd_per_unit, .. } if usd_per_unit.is_zero());
        for (item, reason) in unknown {
            for line in lines.iter_mut().filter(|l| l.item == item && !free(l)) {
                line.quantity = Decimal::ZERO;
                line.price = LinePrice::Unpriced {
                    reason: reason.clone(),
                };
            }
        }
        for (item, reason) in [
            (LineItem::InputTokens, tokens_unseen.input),
            (LineItem::OutputTokens, tokens_unseen.output),
        ] {
            let Some(reason) = reason else { continue };
            for line in lines
                .iter_mut()
                .filter(|l| l.item == item && matches!(l.price, LinePrice::Unpriced { .. }))
            {
                line.price = LinePrice::Unpriced {
                    reason: reason.clone(),
                };
            }
        }

        let cost_usd: Decimal = lines.iter().filter_map(CostLine::cost_usd).sum();
        // An amortised call has a compute line per rate it accrued at. A call
        // served on demand was not served by the provisioned concurrency whose
        // standing charge the accrual holds.
        let compute_usd = lines
            .iter()
            .filter(|l| l.item == LineItem::Compute && !on_demand)
            .filter_map(CostLine::cost_usd)
            .reduce(|a, b| a + b);
        // The fleet keeps each variant's accrual across its processes.
        #[cfg(feature = "fleet")]
        let fleet_accrual = clock.as_ref().map(|c| crate::fleet::AccrualInput {
            usd_per_hour: c.standing.usd_per_hour_all_instances,
            capacity_from: c.standing.capacity_from.clone(),
            terms: c.standing.terms.clone(),
            started_at: c.started_at,
            allocated_usd: compute_usd,
        });
        let all_tags = self.tags_into(tags);
        // A call is unpriced once in a meter's totals: an async invocation at
        // the first of its receipts not fully priced that this meter recorded
        // (a settlement of another meter's unpriced submission counts here).
        let some_unpriced = lines
            .iter()
            .any(|l| matches!(l.price, LinePrice::Unpriced { .. }));
        let counted_already = phase == Phase::Settled && submission_counted_unpriced;
        let unpriced_call = some_unpriced && !counted_already;
        let recorded = self.inner.totals.record(
            &all_tags,
            prepared.totals,
            variant_slot,
            cost_usd,
            compute_usd,
            clock,
            // A component the profile does not know (its call is unpriced) still
            // gets its own running total, as its calls join its own clock.
            component.map(|c| {
                prepared.component_slot(c).unwrap_or_else(|| {
                    self.inner
                        .totals
                        .endpoint_slot(&component_clock(&endpoint, c))
                })
            }),
            // A settlement is its submission's call, counted then.
            phase != Phase::Settled,
            unpriced_call,
        );

        #[cfg(feature = "fleet")]
        let (running_fleet_usd, accrual) = match &self.inner.fleet {
            Some(fleet) => {
                let shared = fleet.record(
                    &endpoint,
                    variant.as_deref(),
                    &all_tags,
                    cost_usd,
                    ended_at,
                    fleet_accrual,
                    phase != Phase::Settled,
                );
                // The fleet's figures, with this process's view of the storage.
                let accrual = match shared.accrual {
                    Some(f) => Some(crate::billing::Accrual {
                        accrued_usd: f.accrued_usd,
                        allocated_usd: f.allocated_usd,
                        utilisation: f.utilisation,
                        storage_usd: recorded.accrual.as_ref().and_then(|a| a.storage_usd),
                        unreserved_usd: recorded.accrual.as_ref().and_then(|a| a.unreserved_usd),
                        priced_from: f
                            .priced_from(recorded.accrual.as_ref().map(|a| &a.priced_from)),
                        standing_parts: recorded
                            .accrual
                            .as_ref()
                            .map_or_else(crate::billing::no_standing_parts, |a| {
                                a.standing_parts.clone()
                            }),
                        accrued_to: None,
                    }),
                    None => recorded.accrual,
                };
                (shared.running_usd, accrual)
            }
            None => (None, recorded.accrual),
        };
        #[cfg(not(feature = "fleet"))]
        let (running_fleet_usd, accrual) = (None, recorded.accrual);
        // A settlement's receipt is dated at its submission, its latency the
        // model's processing; its accrual runs to now, when it was settled.
        let accrual = accrual.map(|mut accrual| {
            if phase == Phase::Settled {
                accrual.accrued_to = crate::util::utc(ended_at);
            }
            accrual
        });
        let cost = Cost {
            call_id: request_id.unwrap_or_else(|| {
                format!("local-{}", self.inner.seq.fetch_add(1, Ordering::Relaxed))
            }),
            at: DateTime::<Utc>::from(started_at),
            endpoint,
            variant,
            inference_component: targets.component,
            target_model: targets.model,
            billing,
            allocation: self.inner.allocation,
            usage,
            lines,
            cost_usd,
            currency: "USD".into(),
            region: Some(self.inner.region.clone()),
            running_client_usd: recorded.running_client_usd,
            running_endpoint_usd: recorded.running_endpoint_usd,
            running_fleet_usd,
            accrual,
            tags: all_tags,
            notes,
            settled_before: None,
        };

        if !cost.is_fully_priced() {
            self.warn_unpriced(&cost);
        }
        (cost, ended_at)
    }

    /// One WARN per endpoint and distinct reason, not one per call. The reasons
    /// seen are kept up to [`MAX_WARNED`]; past that, a reason not seen yet is
    /// logged at DEBUG (each receipt still says why it is unpriced).
    fn warn_unpriced(&self, cost: &Cost) {
        for reason in cost.unpriced_reasons() {
            match self.inner.warned.first((&cost.endpoint, &reason)) {
                Seen::First => tracing::warn!(target: "sagemeter", endpoint = %cost.endpoint,
                    reason, "call could not be fully priced; its receipt says so"),
                Seen::Full => tracing::debug!(target: "sagemeter", endpoint = %cost.endpoint,
                    reason, "call could not be fully priced; its receipt says so"),
                Seen::Before => {}
            }
        }
    }
}

/// Whether the profile of `prepared` lists the inference component `cost` names;
/// `None` when that is not known: the endpoint's profile is an error (no
/// DescribeEndpoint permission, throttled, failed, or not at hand yet), or the call
/// names no component.
fn component_listed(prepared: &Prepared, cost: &Cost) -> Option<bool> {
    let component = cost.inference_component.as_deref()?;
    let profile = prepared.profile.as_ref().ok()?;
    Some(profile.component(component).is_some())
}

/// What a meter has logged once already, by the hash of what it was about (a
/// fixed-key hasher, so that nothing is allocated to look one up; 64 bits among
/// at most [`MAX_WARNED`] keys).
#[derive(Default)]
pub(crate) struct WarnedOnce(Mutex<HashSet<u64>>);

/// Whether what [`WarnedOnce::first`] was asked about is new.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen before, and now kept: log it.
    First,
    /// Seen before: logged already.
    Before,
    /// Not seen before, but the set is full: not kept.
    Full,
}

impl WarnedOnce {
    /// Whether `what` is seen for the first time, keeping it while there is room.
    pub(crate) fn first(&self, what: impl std::hash::Hash) -> Seen {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        what.hash(&mut hasher);
        let key = hasher.finish();
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&key) {
            Seen::Before
        } else if seen.len() < MAX_WARNED {
            seen.insert(key);
            Seen::First
        } else {
            Seen::Full
        }
    }
}

/// How many distinct things each [`WarnedOnce`] of a [`Meter`] keeps (an
/// unpriced reason and its endpoint; a variant's note): a reason that varies
/// from call to call must not grow a set forever.
const MAX_WARNED: usize = 1024;

/// Which lines of a call a receipt carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// All of them: a call whose usage is known when it ends.
    Whole,
    /// An async invocation when it is accepted: data in and the per-inference fee.
    Submitted,
    /// An async invocation when its output lands: compute, data out and tokens.
    Settled,
}

impl Phase {
    pub(crate) fn bills(self, item: LineItem) -> bool {
        match self {
            Phase::Whole => true,
            Phase::Submitted => matches!(item, LineItem::DataIn | LineItem::Inference),
            Phase::Settled => !matches!(item, LineItem::DataIn | LineItem::Inference),
        }
    }
}

/// The price keys of a variant's standing charges.
#[derive(Debug, Default)]
struct StandingKeys {
    provisioned: Option<PriceKey>,
    /// The on-demand serverless rate, which calls beyond the provisioned
    /// concurrency are billed at.
    beyond_provisioned: Option<PriceKey>,
    storage: Option<PriceKey>,
}

/// Why `what`, an SDK client (or call) for `sent_to`, cannot be metered by a
/// meter of the endpoints of `endpoints`, priced at `priced`'s rates.
#[cold]
pub(crate) fn other_region(
    priced: &str,
    endpoints: &str,
    option: &'static str,
    what: &str,
    sent_to: &str,
) -> ConfigError {
    let said = format!("{what} is for {}", crate::redact::printable(sent_to));
    not_this_meters(priced, endpoints, option, said).hint(
        "a meter's prices, accruals and budgets are one region's: make one Meter (or Client) \
         per region, from an SDK config for that region, and send each region's calls \
         through its own",
    )
}

/// `said` (what is of another region), and which region's endpoints a meter of
/// `endpoints`, priced at `priced`'s rates, meters.
fn not_this_meters(
    priced: &str,
    endpoints: &str,
    option: &'static str,
    said: String,
) -> ConfigError {
    let rates = if endpoints == priced {
        String::new()
    } else {
        format!(", priced at {priced}'s rates")
    };
    ConfigError::new(
        option,
        format!("{said}, and this meter meters the endpoints of {endpoints}{rates}"),
    )
}

/// Which standing charges a variant has: provisioned concurrency (serverless with
/// some provisioned, and the on-demand rate of the calls beyond it) and ML storage
/// (instances with a known volume size).
fn standing_keys(region: &str, variant: &VariantProfile) -> StandingKeys {
    match &variant.billing {
        VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency: Some(_),
        } if *memory_mb > 0 && memory_mb % 1024 == 0 => StandingKeys {
            provisioned: Some(PriceKey::ProvisionedConcurrency {
                region: region.to_owned(),
                memory_gb: memory_mb / 1024,
            }),
            beyond_provisioned: Some(PriceKey::serverless(region, memory_mb / 1024)),
            storage: None,
        },
        VariantBilling::Instance { .. } if variant.volume_size_gb.is_some() => StandingKeys {
            storage: Some(PriceKey::storage(region)),
            ..StandingKeys::default()
        },
        _ => StandingKeys::default(),
    }
}

impl Meter {
    /// Every price key that calls to an endpoint of `profile` and its standing
    /// charges look up, in this meter's region, sorted: data processed in and out,
    /// each variant's compute (production, shadow and pending variants alike), its
    /// provisioned concurrency and its ML storage. Inference components are priced
    /// from their variant's compute rate and need no key of their own. What the
    /// meter warms when it discovers a profile; fetch them yourself to have them
    /// all before a first call.
    pub fn price_keys(&self, profile: &EndpointProfile) -> Vec<PriceKey> {
        let region = &*self.inner.region;
        let mut keys = vec![
            self.inner.data_in_key.clone(),
            self.inner.data_out_key.clone(),
        ];
        let variants = profile
            .variants
            .iter()
            .chain(&profile.shadow_variants)
            .chain(&profile.pending_variants);
        for variant in variants {
            // A variant without a compute key (a serverless memory size that is not
            // whole GB) has nothing to look up: its receipts say why it is unpriced.
            if let Ok(key) = compute_key(region, profile.kind, &variant.billing) {
                keys.push(key);
            }
            let standing = standing_keys(region, variant);
            keys.extend(standing.provisioned);
            keys.extend(standing.beyond_provisioned);
            keys.extend(standing.storage);
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Starts fetching every key of `profile` ([`price_keys`](Self::price_keys))
    /// that no override sets and the price source has not at hand, each on a task
    /// of its own that nobody waits for ([`PriceSource::warm`]; the source's single
    /// flight makes it one request per key, however many calls look it up
    /// meanwhile). Nothing without a Tokio runtime, or once shutdown has begun.
    /// Shutdown does not wait for these tasks: all they do is fill the price
    /// cache, which goes with the process.
    pub(crate) fn warm_prices(&self, profile: &EndpointProfile) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.background.is_closed() {
            return;
        }
        for key in self.price_keys(profile) {
            if self.rate_now(&key).is_some() {
                continue;
            }
            let prices = self.inner.prices.clone();
            drop(runtime.spawn(async move { prices.warm(&key).await }));
        }
    }
}

/// An override rate for `key`.
pub(crate) fn override_rate(key: PriceKey, usd_per_unit: Decimal) -> Rate {
    Rate::new(key, usd_per_unit, Provenance::new(PriceOrigin::Override))
}

/// A receipt made while the thread was unwinding, for the sinks on a background
/// task (see [`Meter::record_in_sinks`]). Dropped unrun (the task refused, or
/// dropped by its runtime: a `current_thread` runtime dropped by the same panic
/// drops the tasks queued on it), it records the receipt at once, as
/// `FinishLater` and `SettleLater` finish their calls: without it, the receipt
/// the totals and budgets counted would reach no sink, counted missing nowhere.
struct SinksLater {
    meter: Meter,
    receipt: Option<(Cost, Option<bool>)>,
}

impl SinksLater {
    async fn run(mut self) {
        if let Some((cost, component_listed)) = self.receipt.take() {
            self.meter.record_in_sinks(&cost, component_listed);
        }
    }
}

impl Drop for SinksLater {
    fn drop(&mut self) {
        // Not through `record_in_sinks`: while unwinding, that would hand it to
        // another task the same runtime drops.
        if let Some((cost, component_listed)) = self.receipt.take() {
            self.meter.record_in_sinks_now(&cost, component_listed);
        }
    }
}

/// A sink the meter hands every receipt to, with what limits its WARNs: a sink
/// that panics on every receipt is warned about at most every 10 s, each sink on
/// its own. Kept together, so that no sink goes without its limiter.
pub(crate) struct MeteredSink {
    pub(crate) sink: Arc<dyn CostSink>,
    /// `sink` again when it names inference components (the metrics, an
    /// [`EmfSink`](crate::sink::EmfSink)): it is told whether the endpoint lists
    /// a call's, rather than given the receipt alone.
    pub(crate) names_components: Option<Arc<dyn NamesComponents>>,
    pub(crate) panic_warn: WarnLimiter,
}

impl MeteredSink {
    /// A sink given the receipts alone.
    pub(crate) fn new(sink: Arc<dyn CostSink>) -> Self {
        MeteredSink {
            sink,
            names_components: None,
            panic_warn: WarnLimiter::new(),
        }
    }

    /// A sink told whether the endpoint lists each call's inference component.
    pub(crate) fn naming_components(sink: Arc<impl NamesComponents + 'static>) -> Self {
        MeteredSink {
            sink: sink.clone(),
            names_components: Some(sink),
            panic_warn: WarnLimiter::new(),
        }
    }

    /// A sink given to [`ClientBuilder::sink`](crate::ClientBuilder::sink): an
    /// [`EmfSink`](crate::sink::EmfSink), as it is or in an `Arc`, is told whether
    /// the endpoint lists each call's inference component, as the metrics are;
    /// any other (one wrapped in a [`Queued`](crate::sink::Queued) too) is given
    /// the receipts alone.
    pub(crate) fn given(sink: impl CostSink + 'static) -> Self {
        use crate::sink::EmfSink;
        let any: &dyn std::any::Any = &sink;
        let emf = any
            .downcast_ref::<EmfSink>()
            .or_else(|| any.downcast_ref::<Arc<EmfSink>>().map(|emf| &**emf));
        match emf {
            Some(emf) => MeteredSink::naming_components(Arc::new(emf.clone())),
            None => MeteredSink::new(Arc::new(sink)),
        }
    }
}

/// Runs `op` (a flush, a shutdown) on every sink at once, each for at most
/// `limit`: what went wrong, one line per sink that failed or did not finish.
async fn on_every_sink<'a>(
    sinks: &'a [MeteredSink],
    // How long the sinks have, and the time a late one is said to have overrun
    // (the shutdown's own).
    limit: Option<(std::time::Duration, std::time::Duration)>,
    op: impl Fn(&'a dyn CostSink) -> crate::util::BoxFuture<'a, std::io::Result<()>>,
) -> Vec<String> {
    use std::task::Poll;
    let mut running: Vec<_> = sinks
        .iter()
        .map(|s| (&s.sink, op(s.sink.as_ref())))
        .collect();
    let mut problems = Vec::new();
    let all = std::future::poll_fn(|cx| {
        running.retain_mut(|(sink, work)| match work.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(e)) => {
                problems.push(format!("sink `{}` failed: {e}", sink.name()));
                false
            }
            Poll::Pending => true,
        });
        if running.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    match limit {
        Some((limit, said)) => {
            if tokio::time::timeout(limit, all).await.is_err() {
                for (sink, _) in &running {
                    problems.push(format!(
                        "sink `{}` did not finish within {said:?}",
                        sink.name()
                    ));
                }
            }
        }
        None => all.await,
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::worse_of;

    /// Meters' ids differ and fit a double's 53 bits: a `PendingInference` copy
    /// read and written again by JavaScript keeps the id of the meter that
    /// counted it.
    #[test]
    fn meter_ids_differ_and_fit_53_bits() {
        let ids: std::collections::HashSet<u64> =
            (0..1000).map(|_| super::new_meter_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|&id| id < 1 << 53 && id as f64 as u64 == id));
    }
    use crate::pricing::PriceOrigin;
    use std::sync::Arc;

    /// Endpoint `ab`'s accrual at 60 min (its variant `B` on ml.m5.xlarge at
    /// $0.23/h): `applied` (set for it) applied at 0 and `B` called then;
    /// `stale`, a profile taken before `applied` was stored, applied with its
    /// rates at 10 min; `B` called again at 60 min.
    fn accrued_with_an_older_profile_applied(
        applied: crate::endpoint::EndpointProfile,
        stale: crate::endpoint::EndpointProfile,
    ) -> rust_decimal::Decimal {
        accrued_with_a_later_profile(applied, stale, |meter, totals, stale, rates, at| {
            meter.set_capacity(totals, stale, rates, at);
        })
    }

    /// Endpoint `ab`'s accrual at 60 min, priced by overrides alone
    /// (ml.m5.xlarge at $0.23/h, ml.g5.xlarge at $1.408/h; any other key is not
    /// found): `applied` (set for it) applied at 0 and its first variant called
    /// then; `later`, with its rates (each variant's with those billed
    /// alongside it folded in, as a call's are), given to `apply` at 10 min;
    /// the first variant called again at 60 min.
    fn accrued_with_a_later_profile(
        applied: crate::endpoint::EndpointProfile,
        later: crate::endpoint::EndpointProfile,
        apply: impl Fn(
            &super::Meter,
            crate::totals::EndpointSlot,
            &Arc<crate::endpoint::EndpointProfile>,
            &[super::VariantRates],
            std::time::SystemTime,
        ),
    ) -> rust_decimal::Decimal {
        use crate::pricing::PriceKey;
        use aws_smithy_async::test_util::ManualTimeSource;
        use aws_smithy_async::time::SharedTimeSource;
        use rust_decimal::Decimal;
        use std::time::{Duration, SystemTime};
        let usd = |s: &str| s.parse::<Decimal>().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_788_220_800);
        let minutes = |n: u64| t0 + Duration::from_secs(60 * n);
        let sdk_config = crate::client::call::tests::sdk_config();
        let region = || "us-east-1".to_owned();
        let called = applied.variants[0].name.clone();
        let nothing =
            crate::pricing::Snapshot::from_tsv("region\tkind\tkey\tunit\tusd\tsource\tas_of\n")
                .unwrap();
        let meter = crate::Client::builder(&sdk_config)
            .without_discovery()
            .endpoint_profile(applied)
            .time_source(SharedTimeSource::new(ManualTimeSource::new(t0)))
            .price_source(nothing)
            .price_override(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), usd("0.23"))
            .price_override(PriceKey::hosting("us-east-1", "ml.g5.xlarge"), usd("1.408"))
            .price_override(PriceKey::DataIn { region: region() }, usd("0.016"))
            .price_override(PriceKey::DataOut { region: region() }, usd("0.016"))
            .build_meter()
            .unwrap();
        let current = meter.prepare_now("ab", t0).expect("at hand");
        let super::Standing::Stands(standing) = current.rates[0].standing() else {
            panic!("{called}'s instances stand");
        };
        let totals = &meter.inner.totals;
        let slot = totals.variant_slot(current.totals, &called);
        let call_at = |at| record_at(totals, current.totals, slot, &standing, at);
        call_at(t0);
        let later = Arc::new(later);
        let later_rates = meter
            .variants_rates_now(&later, current.totals)
            .expect("at hand");
        apply(&meter, current.totals, &later, &later_rates, minutes(10));
        let accrual = call_at(minutes(60)).accrual.expect("it accrues");
        accrual.accrued_usd
    }

    /// Records a $0 call to `variant` of `endpoint` at `at` that took no time,
    /// its clock at `standing` (only the accrual is under test).
    fn record_at(
        totals: &crate::totals::Totals,
        endpoint: crate::totals::EndpointSlot,
        variant: crate::totals::VariantSlot,
        standing: &crate::totals::StandingRate,
        at: std::time::SystemTime,
    ) -> crate::totals::Recorded {
        let clock = crate::totals::InstanceClock {
            standing: standing.clone(),
            started_at: at,
            ended_at: at,
        };
        totals.record(
            &std::collections::BTreeMap::new(),
            endpoint,
            Some(variant),
            rust_decimal::Decimal::ZERO,
            None,
            Some(clock),
            None,
            true,
            false,
        )
    }

    /// Endpoint `ab` of one variant, `variant`, on `count` ml.m5.xlarge.
    fn ab(variant: &str, count: u32) -> crate::endpoint::EndpointProfile {
        use crate::endpoint::{EndpointProfile, VariantProfile};
        EndpointProfile::new(
            "ab",
            vec![VariantProfile::instance(variant, "ml.m5.xlarge", count)],
        )
    }

    /// A profile taken before a refresh stored a newer one, applied after it,
    /// leaves the variants the newer one brought standing. Endpoint `ab` was
    /// updated from a config of variant A to one of B (1 × ml.m5.xlarge,
    /// $0.23/h): {B} is applied at 0 and B called then; a profile of {A} taken
    /// before the update is applied at 10 min. AWS bills B's instance the whole
    /// hour: at 60 min B has accrued 1 h × 0.23 = $0.23 (with B standing at
    /// nothing from 10 min, 10 min × 0.23 = $0.038333…).
    #[test]
    fn a_profile_older_than_the_one_applied_leaves_its_variants_standing() {
        let accrued = accrued_with_an_older_profile_applied(ab("B", 1), ab("A", 1));
        assert_eq!(accrued, "0.23".parse().unwrap());
    }

    /// Nor does it put back the instance count from before the newer one:
    /// B scaled out to 4 × ml.m5.xlarge ($0.23/h each), applied at 0; a profile
    /// of B × 1 taken before, applied at 10 min. AWS bills the 4 instances the
    /// whole hour: 4 × 0.23 × 1 h = $0.92 (not 0.92 × 10/60 + 0.23 × 50/60 =
    /// 0.153333… + 0.191666… = $0.345 with the older count from 10 min).
    #[test]
    fn a_profile_older_than_the_one_applied_leaves_its_instance_count() {
        let accrued = accrued_with_an_older_profile_applied(ab("B", 4), ab("B", 1));
        assert_eq!(accrued, "0.92".parse().unwrap());
    }

    /// Endpoint `ab` (AllTraffic on ml.m5.xlarge, $0.23/h) discovered at 2
    /// instances at t0 (on a manual clock), and a call's take of that profile:
    /// its profile and rates, and the generation it was found current at. A
    /// minute on, DescribeEndpoint answers `then` instances (`None`: not
    /// found) and a refresh stores that answer. Returns the meter and the take,
    /// at t0 + 1 min.
    async fn ab_taken_then_refreshed(
        then: Option<i32>,
    ) -> (
        super::Meter,
        Arc<super::Prepared>,
        Option<u64>,
        std::time::SystemTime,
    ) {
        use crate::endpoint::tests::{all_traffic, aws_error, config, instances, mock_client};
        use crate::pricing::PriceKey;
        use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointError;
        use aws_sdk_sagemaker::types::ProductionVariantInstanceType;
        use aws_smithy_async::test_util::ManualTimeSource;
        use aws_smithy_async::time::SharedTimeSource;
        use aws_smithy_mocks::{MockResponse, mock};
        use rust_decimal::Decimal;
        use std::sync::atomic::{AtomicI32, Ordering};
        use std::time::{Duration, SystemTime};
        let usd = |s: &str| s.parse::<Decimal>().unwrap();
        let running = Arc::new(AtomicI32::new(2));
        let described =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_compute_response({
                let running = running.clone();
                move |_| {
                    let count = running.load(Ordering::SeqCst);
                    if count < 0 {
                        return MockResponse::Error(DescribeEndpointError::generic(aws_error(
                            "ValidationException",
                            "Could not find endpoint \"ab\".",
                        )));
                    }
                    MockResponse::Output(all_traffic(count, count))
                }
            });
        let configs =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_output(|| {
                config(instances(
                    "AllTraffic",
                    ProductionVariantInstanceType::MlM5Xlarge,
                    2,
                ))
            });
        let sagemaker = mock_client(&[&described, &configs]);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_788_220_800);
        let time = ManualTimeSource::new(t0);
        let region = || "us-east-1".to_owned();
        let nothing =
            crate::pricing::Snapshot::from_tsv("region\tkind\tkey\tunit\tusd\tsource\tas_of\n")
                .unwrap();
        let meter = crate::Client::builder(&crate::client::call::tests::sdk_config())
            .sagemaker_client(sagemaker)
            .discovery_refresh(Duration::from_secs(60))
            .time_source(SharedTimeSource::new(time.clone()))
            .price_source(nothing)
            .price_override(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), usd("0.23"))
            .price_override(PriceKey::DataIn { region: region() }, usd("0.016"))
            .price_override(PriceKey::DataOut { region: region() }, usd("0.016"))
            .build_meter()
            .unwrap();
        let discovery = &meter.inner.discovery;
        let taken = meter.prepare("ab").await;
        let older = taken.profile.as_ref().expect("discovered").clone();
        assert_eq!(older.instance_count(), 2);
        let found = discovery.current_generation("ab", &older);
        assert!(found.is_some(), "the profile the call took is current");
        running.store(then.unwrap_or(-1), Ordering::SeqCst);
        time.advance(Duration::from_secs(60));
        discovery.refresh_stale(|| true).await;
        while meter.inner.background.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(discovery.current_generation("ab", &older), None);
        (meter, taken, found, t0 + Duration::from_secs(60))
    }

    /// What `ab`'s AllTraffic accrues from a call at `at` to one an hour later,
    /// each carrying `standing`.
    fn accrued_over_the_hour_from(
        meter: &super::Meter,
        prepared: &super::Prepared,
        standing: &crate::totals::StandingRate,
        at: std::time::SystemTime,
    ) -> rust_decimal::Decimal {
        let totals = &meter.inner.totals;
        let slot = totals.variant_slot(prepared.totals, "AllTraffic");
        let call_at = |at| record_at(totals, prepared.totals, slot, standing, at);
        call_at(at);
        let later = at + std::time::Duration::from_secs(3600);
        call_at(later).accrual.expect("it accrues").accrued_usd
    }

    /// A profile a call found current, applied only after a refresh stored a
    /// newer one and applied it, changes nothing, though it passed the check:
    /// the steps of that race, one after another. Endpoint `ab` (AllTraffic on
    /// ml.m5.xlarge, $0.23/h) is discovered at 2 instances; a call takes that
    /// profile, found current. A minute on it is scaled in to 1, and a refresh
    /// stores that profile and applies it; then the call applies its own. AWS
    /// bills the 1 instance that runs: from a call then to one an hour later
    /// the accrual is 1 × 0.23 × 1 h = $0.23, not the 2 instances the call's
    /// profile had, 2 × 0.23 × 1 h = $0.46.
    #[tokio::test]
    async fn a_profile_found_current_then_applied_after_a_newer_one_changes_nothing() {
        let (meter, taken, found, t1) = ab_taken_then_refreshed(Some(1)).await;
        // The refresh's application (as its hook does: a call's prepare).
        let newer = meter.prepare("ab").await;
        let newer_profile = newer.profile.as_ref().expect("discovered");
        assert_eq!(newer_profile.instance_count(), 1, "the refresh landed");
        // Then the call applies the profile it took, with its rates.
        let older = taken.profile.as_ref().expect("discovered");
        meter.apply_capacity(taken.totals, older, found, &taken.rates, t1);
        let super::Standing::Stands(standing) = newer.rates[0].standing() else {
            panic!("AllTraffic's instance stands");
        };
        let accrued = accrued_over_the_hour_from(&meter, &newer, &standing, t1);
        assert_eq!(accrued, "0.23".parse().unwrap());
    }

    /// Nor after the endpoint was found deleted since: `ab` at 2 × ml.m5.xlarge
    /// taken by a call, found deleted a minute on (its instances stand at
    /// nothing from then), then the call's profile applied. Nothing runs, and
    /// AWS bills nothing: the hour after accrues $0, not 2 × 0.23 × 1 h =
    /// $0.46.
    #[tokio::test]
    async fn a_profile_found_current_then_applied_after_the_deletion_changes_nothing() {
        let (meter, taken, found, t1) = ab_taken_then_refreshed(None).await;
        // The deletion's application (as the refresh's hook does).
        meter.endpoint_deleted("ab");
        let older = taken.profile.as_ref().expect("discovered");
        meter.apply_capacity(taken.totals, older, found, &taken.rates, t1);
        let super::Standing::Stands(standing) = taken.rates[0].standing() else {
            panic!("AllTraffic's instances stood");
        };
        let accrued = accrued_over_the_hour_from(&meter, &taken, &standing, t1);
        assert_eq!(accrued, rust_decimal::Decimal::ZERO);
    }

    /// A production variant's own rate not known leaves its last known standing
    /// rate in force, shadow or not. Endpoint `ab`: A on 2 × ml.g5.xlarge
    /// ($1.408/h) with a shadow S on 1 × ml.m5.xlarge ($0.23/h) stands at
    /// 2 × 1.408 + 0.23 = $3.046/h from 0; at 10 min an update puts A on an
    /// instance type no source prices. Its rate unknown, the hour accrues at
    /// the last known rate: 3.046 × 1 h = $3.046 (not the shadow's alone from
    /// 10 min, 3.046 × 10/60 + 0.23 × 50/60 = 0.507666… + 0.191666… =
    /// $0.699333…, as if A's instances cost nothing).
    #[test]
    fn a_shadow_beside_a_variant_of_unknown_rate_leaves_the_last_known_rate() {
        use crate::endpoint::{EndpointProfile, VariantProfile};
        let with_shadow = |instance_type: &str| {
            EndpointProfile::new("ab", vec![VariantProfile::instance("A", instance_type, 2)])
                .with_shadow_variant(VariantProfile::instance("S", "ml.m5.xlarge", 1))
        };
        let accrued = accrued_with_a_later_profile(
            with_shadow("ml.g5.xlarge"),
            with_shadow("ml.unpriced.xlarge"),
            |meter, totals, updated, rates, at| {
                meter.set_standing_and_instances(totals, updated, rates, at);
            },
        );
        assert_eq!(accrued, "3.046".parse().unwrap());
    }

    /// A variant scaled to 0 instances accrues nothing, even when its instance
    /// type's rate is not known: AWS bills instance-hours, and 0 instances run.
    /// Endpoint `ab`: A on 2 × ml.g5.xlarge ($1.408/h) stands at
    /// 2 × 1.408 = $2.816/h from 0; at 10 min A is at 0 instances of a type no
    /// source prices. The hour accrues the first 10 min alone:
    /// 2.816 × 10/60 = 0.469333… (not the last known rate the whole hour,
    /// 2.816 × 1 h = $2.816).
    #[test]
    fn a_variant_scaled_to_zero_of_unknown_rate_accrues_nothing() {
        use crate::endpoint::{EndpointProfile, VariantProfile};
        use rust_decimal::Decimal;
        let a = |instance_type: &str, count| {
            EndpointProfile::new(
                "ab",
                vec![VariantProfile::instance("A", instance_type, count)],
            )
        };
        let accrued = accrued_with_a_later_profile(
            a("ml.g5.xlarge", 2),
            a("ml.unpriced.xlarge", 0),
            |meter, totals, updated, rates, at| {
                meter.set_standing_and_instances(totals, updated, rates, at);
            },
        );
        let expected = "2.816".parse::<Decimal>().unwrap() * Decimal::from(10) / Decimal::from(60);
        assert_eq!(accrued.round_dp(12), expected.round_dp(12));
    }

    /// A shadow whose rate is known still accrues beside a production variant
    /// scaled to 0 instances of a type no source prices. Endpoint `ab`: A on
    /// 2 × ml.g5.xlarge ($1.408/h) with a shadow S on 1 × ml.m5.xlarge
    /// ($0.23/h) stands at 2 × 1.408 + 0.23 = $3.046/h from 0; at 10 min A is
    /// at 0 instances of an unpriced type, S unchanged. The hour accrues
    /// 3.046 × 10/60 + 0.23 × 50/60 = 0.507666… + 0.191666… = 0.699333…
    /// (not $3.046, the last known rate, nor 0.507666…, the shadow left out).
    #[test]
    fn a_shadow_beside_a_variant_scaled_to_zero_of_unknown_rate_still_accrues() {
        use crate::endpoint::{EndpointProfile, VariantProfile};
        use rust_decimal::Decimal;
        let with_shadow = |instance_type: &str, count| {
            EndpointProfile::new(
                "ab",
                vec![VariantProfile::instance("A", instance_type, count)],
            )
            .with_shadow_variant(VariantProfile::instance("S", "ml.m5.xlarge", 1))
        };
        let accrued = accrued_with_a_later_profile(
            with_shadow("ml.g5.xlarge", 2),
            with_shadow("ml.unpriced.xlarge", 0),
            |meter, totals, updated, rates, at| {
                meter.set_standing_and_instances(totals, updated, rates, at);
            },
        );
        let usd = |s: &str| s.parse::<Decimal>().unwrap();
        let expected = usd("3.046") * Decimal::from(10) / Decimal::from(60)
            + usd("0.23") * Decimal::from(50) / Decimal::from(60);
        assert_eq!(accrued.round_dp(12), expected.round_dp(12));
    }

    #[test]
    fn a_standing_rate_summed_from_two_keeps_the_fallbacks_provenance() {
        let note: Arc<str> = "primary price source failed; bundled price snapshot".into();
        let live = Some((PriceOrigin::Live, None));
        let snapshot = Some((PriceOrigin::Snapshot, Some(note.clone())));
        // A production variant priced live with a shadow priced from the snapshot:
        // the sum is (in part) a snapshot price, and says so.
        assert_eq!(worse_of(live.clone(), &snapshot), snapshot);
        // The other way round, the production variant's fallback stays.
        assert_eq!(worse_of(snapshot.clone(), &live), snapshot);
        // Both live: the production variant's own.
        assert_eq!(worse_of(live.clone(), &live), live);
        // A cache hit with no note, or with its live answer's explanatory note, is
        // no fallback; one kept after a failed refresh is.
        let kept: Option<crate::totals::RateFrom> = Some((
            PriceOrigin::Cache,
            Some("refresh failed (HTTP 500); kept the last good price".into()),
        ));
        assert_eq!(worse_of(Some((PriceOrigin::Cache, None)), &kept), kept);
        let explained: Option<crate::totals::RateFrom> = Some((
            PriceOrigin::Cache,
            Some("SKU PCUSAGE is the standing charge per second provisioned".into()),
        ));
        assert_eq!(worse_of(explained.clone(), &kept), kept);
    }

    #[test]
    fn a_standing_rate_changes_at_each_term_announced_with_a_price_and_no_further() {
        use super::announced_terms;
        use crate::pricing::{NextTerm, PriceKey, Provenance, Rate};
        use rust_decimal::Decimal;
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        let on = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        let rate = |usd: &str, next: Option<NextTerm>| {
            let mut rate = Rate::new(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                dec(usd),
                Provenance::new(PriceOrigin::Cache),
            );
            rate.next_term = next.map(Box::new);
            rate
        };
        // 0.23, then 0.20 from 09-01, 0.21 from 10-01, then a term whose rate the
        // answer does not give (11-01): on 3 instances, 3 × 0.20 = 0.60 and
        // 3 × 0.21 = 0.63; from 11-01 the last known rate stays in force.
        let unknown = NextTerm {
            on: on("2026-11-01T00:00:00Z"),
            rate: None,
        };
        let october = NextTerm {
            on: on("2026-10-01T00:00:00Z"),
            rate: Some(rate("0.21", Some(unknown))),
        };
        let september = NextTerm {
            on: on("2026-09-01T00:00:00Z"),
            rate: Some(rate("0.20", Some(october))),
        };
        let terms = announced_terms(&rate("0.23", Some(september)), Decimal::from(3), None);
        let got: Vec<_> = terms
            .iter()
            .map(|t| (t.on, t.usd_per_hour_all_instances))
            .collect();
        assert_eq!(
            got,
            [
                (on("2026-09-01T00:00:00Z").into(), dec("0.60")),
                (on("2026-10-01T00:00:00Z").into(), dec("0.63")),
            ]
        );
        // A term at $0 is no price (the call path refuses it): none from it on.
        let free = NextTerm {
            on: on("2026-09-01T00:00:00Z"),
            rate: Some(rate("0", None)),
        };
        assert!(announced_terms(&rate("0.23", Some(free)), Decimal::ONE, None).is_empty());
    }

    #[test]
    fn a_standing_rate_summed_from_two_changes_at_each_ones_announced_terms() {
        use super::alongside_terms;
        use crate::totals::StandingTerm;
        use rust_decimal::Decimal;
        use std::time::{Duration, SystemTime};
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        let day = |n: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(n * 86_400);
        let cached = Some((PriceOrigin::Cache, None));
        let announced: Arc<str> = "rate of the term announced".into();
        let term = |on, usd: &str, fraction: Option<&str>| StandingTerm {
            on,
            usd_per_hour_all_instances: dec(usd),
            capacity_from: (PriceOrigin::Cache, Some(announced.clone())),
            unreserved_fraction: fraction.map(dec),
        };
        // The production variant: 1 × ml.m5.xlarge at 0.23, 0.20 from day 2, half
        // its instance reserved by no component. A shadow: 2 × ml.c5.xlarge at
        // 0.24 = 0.48, 2 × 0.21 = 0.42 from day 3.
        let own = [term(day(2), "0.20", Some("0.5"))];
        let shadow = [term(day(3), "0.42", None)];
        let terms = alongside_terms(
            (Some(dec("0.23")), &cached, Some(dec("0.5"))),
            &own,
            (dec("0.48"), &cached),
            &shadow,
        );
        // Day 2: 0.20 + 0.48 = 0.68, the unreserved half of 0.20 of 0.68 = 0.1/0.68;
        // day 3: 0.20 + 0.42 = 0.62, 0.1/0.62 of it.
        let rates: Vec<(SystemTime, Decimal, Option<Decimal>)> = terms
            .iter()
            .map(|t| (t.on, t.usd_per_hour_all_instances, t.unreserved_fraction))
            .collect();
        assert_eq!(
            rates,
            [
                (
                    day(2),
                    dec("0.68"),
                    Some(dec("0.5") * dec("0.20") / dec("0.68"))
                ),
                (
                    day(3),
                    dec("0.62"),
                    Some(dec("0.5") * dec("0.20") / dec("0.62"))
                ),
            ]
        );
        assert!(
            terms
                .iter()
                .all(|t| t.capacity_from == (PriceOrigin::Cache, Some(announced.clone())))
        );
        // None announced by the shadow, nothing of the variant's own (serverless
        // without provisioned concurrency): the shadow's terms alone.
        let terms = alongside_terms((None, &None, None), &[], (dec("0.48"), &cached), &shadow);
        assert_eq!(
            terms
                .iter()
                .map(|t| (t.on, t.usd_per_hour_all_instances))
                .collect::<Vec<_>>(),
            [(day(3), dec("0.42"))]
        );
    }

    /// ML storage in us-east-1 at `usd` per GB-month (cached), announcing `next`.
    fn storage_rate(usd: &str, next: Option<crate::pricing::NextTerm>) -> crate::pricing::Rate {
        use crate::pricing::{PriceKey, Provenance, Rate};
        let mut rate = Rate::new(
            PriceKey::storage("us-east-1"),
            usd.parse().unwrap(),
            Provenance::new(PriceOrigin::Cache),
        );
        rate.next_term = next.map(Box::new);
        rate
    }

    fn utc(t: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn an_ml_storage_rate_changes_at_each_term_announced_with_a_price_and_no_further() {
        use super::announced_storage_terms;
        use crate::pricing::NextTerm;
        use rust_decimal::Decimal;
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        // $0.14 per GB-month, $0.10 from 09-01, $0.12 from 10-01, then a term
        // whose rate the answer does not give (11-01). Two instances with 30 GB
        // volumes: 60 GB, 60 × 0.10 = $6.00 and 60 × 0.12 = $7.20 a month; from
        // 11-01 the last known rate stays in force.
        let unknown = NextTerm {
            on: utc("2026-11-01T00:00:00Z"),
            rate: None,
        };
        let october = NextTerm {
            on: utc("2026-10-01T00:00:00Z"),
            rate: Some(storage_rate("0.12", Some(unknown))),
        };
        let september = NextTerm {
            on: utc("2026-09-01T00:00:00Z"),
            rate: Some(storage_rate("0.10", Some(october))),
        };
        let rate = storage_rate("0.14", Some(september));
        let got: Vec<_> = announced_storage_terms(&rate, Decimal::from(60))
            .iter()
            .map(|t| (t.on, t.usd_per_month))
            .collect();
        assert_eq!(
            got,
            [
                (utc("2026-09-01T00:00:00Z").into(), dec("6.00")),
                (utc("2026-10-01T00:00:00Z").into(), dec("7.20")),
            ]
        );
        // A term at $0, or above the sane bound, is no price: none from it on.
        for usd in ["0", "1000000.01"] {
            let bad = NextTerm {
                on: utc("2026-09-01T00:00:00Z"),
                rate: Some(storage_rate(usd, None)),
            };
            let rate = storage_rate("0.14", Some(bad));
            assert!(announced_storage_terms(&rate, Decimal::from(60)).is_empty());
        }
        // None announced: the shared empty list, no allocation.
        let none = announced_storage_terms(&storage_rate("0.14", None), Decimal::ONE);
        assert!(Arc::ptr_eq(&none, &crate::totals::no_storage_terms()));
    }

    #[test]
    fn ml_storage_summed_from_two_changes_at_each_ones_announced_terms() {
        use super::alongside_storage_terms;
        use crate::totals::StorageTerm;
        use rust_decimal::Decimal;
        use std::time::{Duration, SystemTime};
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        let day = |n: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(n * 86_400);
        let live = Some((PriceOrigin::Live, None));
        let announced: Arc<str> = "rate of the term announced".into();
        let term = |on, usd: &str| StorageTerm {
            on,
            usd_per_month: dec(usd),
            storage_from: (PriceOrigin::Cache, Some(announced.clone())),
        };
        // The production variant's volumes: 60 GB at $0.14 = $8.40 a month, 60 ×
        // 0.10 = $6.00 from day 2. A shadow's: 100 GB at $0.14 = $14.00, 100 ×
        // 0.12 = $12.00 from day 3.
        let own = [term(day(2), "6.00")];
        let shadow = [term(day(3), "12.00")];
        let terms = alongside_storage_terms(
            (Some(dec("8.40")), &live),
            &own,
            (dec("14.00"), &live),
            &shadow,
        );
        // Day 2: 6.00 + 14.00 = 20.00; day 3: 6.00 + 12.00 = 18.00; the term's
        // note (a cached price with a note is the worse source) kept.
        let got: Vec<_> = terms
            .iter()
            .map(|t| (t.on, t.usd_per_month, t.storage_from.clone()))
            .collect();
        let from = (PriceOrigin::Cache, Some(announced.clone()));
        assert_eq!(
            got,
            [
                (day(2), dec("20.00"), from.clone()),
                (day(3), dec("18.00"), from),
            ]
        );
        // No storage of the variant's own (its volume size unknown): the shadow's
        // terms alone.
        let terms = alongside_storage_terms((None, &None), &[], (dec("14.00"), &live), &shadow);
        assert_eq!(
            terms
                .iter()
                .map(|t| (t.on, t.usd_per_month))
                .collect::<Vec<_>>(),
            [(day(3), dec("12.00"))]
        );
    }

    #[test]
    fn a_variant_and_its_shadow_carry_their_volumes_storage_terms_into_the_standing_rate() {
        use super::{Hosted, Standing, StandingRates, VariantRates};
        use crate::endpoint::VariantProfile;
        use crate::pricing::{NextTerm, PriceKey, Provenance, Rate};
        use rust_decimal::Decimal;
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        let totals = crate::totals::Totals::default();
        let endpoint = totals.endpoint_slot("e");
        let stated = crate::FastMap::default();
        let hosted = Hosted {
            components: &[],
            stated: &stated,
        };
        let hosting = |instance: &str, usd: &str| -> crate::billing::RateResult {
            Ok(Rate::new(
                PriceKey::hosting("us-east-1", instance),
                dec(usd),
                Provenance::new(PriceOrigin::Cache),
            ))
        };
        // One storage rate for the region: $0.14 per GB-month, $0.10 announced
        // from 2026-09-01T00:00Z.
        let storage = || {
            let september = NextTerm {
                on: utc("2026-09-01T00:00:00Z"),
                rate: Some(storage_rate("0.10", None)),
            };
            StandingRates {
                storage: Some(Ok(storage_rate("0.14", Some(september)))),
                ..StandingRates::default()
            }
        };
        // 2 × ml.m5.xlarge with 30 GB volumes: 60 GB, 60 × 0.14 = $8.40 a month,
        // 60 × 0.10 = $6.00 from 09-01.
        let production =
            VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2).with_volume_size_gb(30);
        let mut rates = VariantRates::new(
            &production,
            hosting("ml.m5.xlarge", "0.23"),
            storage(),
            hosted,
            totals.variant_slot(endpoint, "AllTraffic"),
        );
        let on = |rates: &VariantRates| match rates.standing() {
            Standing::Stands(rate) => (
                rate.storage_usd_per_month,
                rate.storage_terms
                    .iter()
                    .map(|t| (t.on, t.usd_per_month))
                    .collect::<Vec<_>>(),
                rate.terms.len(),
            ),
            other => panic!("{other:?}"),
        };
        let september = utc("2026-09-01T00:00:00Z").into();
        assert_eq!(
            on(&rates),
            (Some(dec("8.40")), vec![(september, dec("6.00"))], 0)
        );
        // A shadow, 1 × ml.g5.xlarge with a 100 GB volume: $14.00 a month, $10.00
        // from 09-01; summed: $22.40, $16.00 from 09-01. The instances' rates
        // announce nothing: no capacity term.
        let shadow = VariantProfile::instance("Shadow", "ml.g5.xlarge", 1).with_volume_size_gb(100);
        let shadow_rates = VariantRates::new(
            &shadow,
            hosting("ml.g5.xlarge", "1.408"),
            storage(),
            hosted,
            totals.variant_slot(endpoint, "Shadow"),
        );
        rates.add_alongside(&shadow, &shadow_rates).unwrap();
        assert_eq!(
            on(&rates),
            (Some(dec("22.40")), vec![(september, dec("16.00"))], 0)
        );
    }

    /// A fleet billed alongside (a pending serverless fleet) with provisioned
    /// concurrency whose standing rate is not known is left out with its reason
    /// (for the WARN), not taken for one with nothing standing; one without
    /// provisioned concurrency has nothing standing, and adds nothing.
    #[test]
    fn a_serverless_fleet_alongside_with_provisioned_concurrency_at_no_rate_is_left_out() {
        use super::{Hosted, Standing, StandingRates, VariantRates};
        use crate::endpoint::VariantProfile;
        use crate::pricing::{PriceError, PriceKey, Provenance, Rate};
        let dec = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        let totals = crate::totals::Totals::default();
        let endpoint = totals.endpoint_slot("e");
        let stated = crate::FastMap::default();
        let hosted = Hosted {
            components: &[],
            stated: &stated,
        };
        // 1 × ml.m5.xlarge at $0.23/h.
        let production = VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1);
        let mut rates = VariantRates::new(
            &production,
            Ok(Rate::new(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                dec("0.23"),
                Provenance::new(PriceOrigin::Cache),
            )),
            StandingRates::default(),
            hosted,
            totals.variant_slot(endpoint, "AllTraffic"),
        );
        let inference = || {
            Ok(Rate::new(
                PriceKey::ProvisionedConcurrencyUsage {
                    region: "us-east-1".to_owned(),
                    memory_gb: 2,
                },
                dec("0.0000233"),
                Provenance::new(PriceOrigin::Cache),
            ))
        };
        let not_found = PriceError::NotFound {
            key: PriceKey::ProvisionedConcurrency {
                region: "us-east-1".to_owned(),
                memory_gb: 2,
            },
        };
        let with_pc = VariantProfile::serverless("Pending", 2048).with_provisioned_concurrency(2);
        let with_pc_rates = VariantRates::new(
            &with_pc,
            inference(),
            StandingRates {
                provisioned: Some(Err(not_found.clone())),
                ..StandingRates::default()
            },
            hosted,
            totals.variant_slot(endpoint, "Pending"),
        );
        let reason = rates.add_alongside(&with_pc, &with_pc_rates).unwrap_err();
        assert_eq!(
            reason,
            format!(
                "its provisioned concurrency's rate is not known (2 × the per-second standing \
                 rate, {not_found})"
            )
        );
        let without_pc = VariantProfile::serverless("Shadow", 2048);
        let without_pc_rates = VariantRates::new(
            &without_pc,
            inference(),
            StandingRates::default(),
            hosted,
            totals.variant_slot(endpoint, "Shadow"),
        );
        assert_eq!(rates.add_alongside(&without_pc, &without_pc_rates), Ok(()));
        // The production variant's $0.23/h alone.
        match rates.standing() {
            Standing::Stands(rate) => assert_eq!(rate.usd_per_hour_all_instances, dec("0.23")),
            other => panic!("{other:?}"),
        }
    }

    /// A sink that notes the call ids it is handed, or panics on each.
    #[derive(Debug, Default)]
    struct Notes {
        seen: std::sync::Mutex<Vec<String>>,
        panics: bool,
    }

    impl crate::sink::CostSink for Notes {
        fn record(&self, cost: &crate::Cost) {
            if self.panics {
                panic!("a sink with a bug");
            }
            self.seen.lock().unwrap().push(cost.call_id.clone());
        }
    }

    /// A receipt made while the thread unwinds (a call dropped by a panic in
    /// the caller's code) after the meter's shutdown began reaches the sinks
    /// all the same (it reached none, counted nowhere, when it was deferred to
    /// a background task the closed meter refused), and a sink that panics on
    /// it is caught as ever, not a panic in a panic that aborts the process.
    #[tokio::test]
    async fn a_receipt_made_while_unwinding_after_shutdown_began_reaches_the_sinks() {
        let (panics, notes) = (
            Arc::new(Notes {
                panics: true,
                ..Notes::default()
            }),
            Arc::new(Notes::default()),
        );
        let meter = crate::Client::builder(&crate::client::call::tests::sdk_config())
            .without_discovery()
            .sink(panics)
            .sink(notes.clone())
            .build_meter()
            .unwrap();
        meter
            .inner
            .background
            .close(std::time::Duration::ZERO)
            .await;

        struct ReceiptOnDrop(super::Meter);
        impl Drop for ReceiptOnDrop {
            fn drop(&mut self) {
                let cost = crate::sink::test_support::cost(Some("AllTraffic"), "ok");
                self.0.record_in_sinks(&cost, None);
            }
        }
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _call = ReceiptOnDrop(meter.clone());
            panic!("the caller's code panics while its call is in flight");
        }));
        assert!(unwound.is_err());
        assert_eq!(*notes.seen.lock().unwrap(), ["req-1"]);
    }
}
