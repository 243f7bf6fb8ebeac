//! The [`Meter`]: discovery, pricing, billing and recording for any call.

use crate::billing::{
    Allocation, Cost, CostLine, LineItem, QuantityUnit, RateResult, UsageCharges, compute_line,
    data_lines, unpriced, usage_charge_lines,
};
use crate::endpoint::{Discovery, DiscoveryError, EndpointKind, EndpointProfile, VariantBilling};
use crate::ledger::{CostMetrics, CostSink, InstanceClock, Totals, TotalsSnapshot, log_cost};
use crate::meter::{TokenCounter, TokenUsage, Usage, detect_tokens};
use crate::pricing::{PriceKey, PriceOrigin, PriceSource, Provenance, Rate};
use aws_smithy_async::time::SharedTimeSource;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The metering engine shared by [`Client`](crate::Client), the
/// [`SendMeteredExt`](crate::SendMeteredExt) extension and the
/// [`MeteringInterceptor`](crate::client::MeteringInterceptor).
///
/// Cheap to clone (an `Arc`); every clone shares totals, caches and sinks.
#[derive(Clone)]
pub struct Meter {
    pub(crate) inner: Arc<MeterInner>,
}

pub(crate) struct MeterInner {
    pub region: String,
    pub discovery: Discovery,
    pub prices: Arc<dyn PriceSource>,
    pub price_overrides: HashMap<PriceKey, Rate>,
    pub allocation: Allocation,
    pub charges: HashMap<String, UsageCharges>,
    pub token_counter: Option<Arc<dyn TokenCounter>>,
    pub default_tags: BTreeMap<String, String>,
    pub totals: Totals,
    pub sinks: Vec<Arc<dyn CostSink>>,
    pub metrics: CostMetrics,
    pub time: SharedTimeSource,
    pub seq: AtomicU64,
    pub warned: Mutex<HashSet<String>>,
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("region", &self.inner.region)
            .field("prices", &self.inner.prices)
            .field("allocation", &self.inner.allocation)
            .field("totals", &self.inner.totals)
            .finish_non_exhaustive()
    }
}

/// The rates a variant needs, looked up while the call is in flight.
#[derive(Debug, Clone)]
pub(crate) struct VariantRates {
    pub compute: RateResult,
    pub data_in: RateResult,
    pub data_out: RateResult,
}

/// What is known about an endpoint before its response arrives.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub profile: Result<Arc<EndpointProfile>, DiscoveryError>,
    pub rates: HashMap<String, VariantRates>,
}

/// One finished call, as the client measured it.
#[derive(Debug)]
pub(crate) struct FinishedCall {
    pub endpoint: String,
    pub request_id: Option<String>,
    pub started_at: SystemTime,
    pub target_variant: Option<String>,
    pub usage: Usage,
    pub tags: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

impl Meter {
    /// A builder; see [`ClientBuilder`](crate::ClientBuilder) for the options.
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> crate::ClientBuilder {
        crate::ClientBuilder::new(sdk_config)
    }

    /// The running totals of every call metered so far.
    pub fn totals(&self) -> TotalsSnapshot {
        self.inner.totals.snapshot()
    }

    /// The region calls are priced in.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The profile of an endpoint (discovered, cached or overridden).
    pub async fn endpoint_profile(
        &self,
        endpoint: &str,
    ) -> Result<Arc<EndpointProfile>, DiscoveryError> {
        self.inner.discovery.profile(endpoint).await
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.time.now()
    }

    /// Token counts of a complete response body, with the configured counter.
    pub(crate) fn count_tokens(&self, body: &[u8]) -> Option<TokenUsage> {
        match &self.inner.token_counter {
            Some(counter) => counter.count(body),
            None => detect_tokens(body),
        }
    }

    /// A rate: the builder's override, else the price source.
    pub async fn rate(&self, key: &PriceKey) -> RateResult {
        if let Some(rate) = self.inner.price_overrides.get(key) {
            return Ok(rate.clone());
        }
        self.inner.prices.price(key).await
    }

    /// Profile and rates of `endpoint`, fetched while the call is in flight.
    pub(crate) async fn prepare(&self, endpoint: &str) -> Prepared {
        let profile = self.inner.discovery.profile(endpoint).await;
        let mut rates = HashMap::new();
        if let Ok(profile) = &profile {
            for variant in &profile.variants {
                let compute = match compute_key(&self.inner.region, profile.kind, &variant.billing)
                {
                    Ok(key) => self.rate(&key).await,
                    Err(reason) => Err(crate::pricing::PriceError::Unavailable { reason }),
                };
                let region = self.inner.region.clone();
                let data_in = self.rate(&PriceKey::DataIn { region }).await;
                let region = self.inner.region.clone();
                let data_out = self.rate(&PriceKey::DataOut { region }).await;
                rates.insert(
                    variant.name.clone(),
                    VariantRates {
                        compute,
                        data_in,
                        data_out,
                    },
                );
            }
        }
        Prepared { profile, rates }
    }

    /// Price → bill → record → receipt, for one finished call. The whole path of a
    /// call after its response, top to bottom.
    pub(crate) fn finish(&self, call: FinishedCall, prepared: &Prepared) -> Cost {
        let FinishedCall {
            endpoint,
            request_id,
            started_at,
            target_variant,
            mut usage,
            tags,
            mut notes,
        } = call;
        let ended_at = self.now();
        // A receipt states durations in whole microseconds (as it is serialised):
        // bill from exactly what it states, so that a receipt read back from a
        // ledger equals the one returned.
        usage.latency = whole_micros(usage.latency);
        usage.time_to_first_byte = usage.time_to_first_byte.map(whole_micros);

        // Which variant served the call, and how it is billed.
        let mut variant = None;
        let mut billing = None;
        let mut lines: Vec<CostLine> = Vec::with_capacity(3);
        let mut gap = None;
        let mut clock = None;
        match &prepared.profile {
            Ok(profile) => {
                match profile.variant_for(usage.variant.as_deref(), target_variant.as_deref()) {
                    Some((v, note)) => {
                        notes.extend(note.map(str::to_owned));
                        let Some(rates) = prepared.rates.get(&v.name) else {
                            unreachable!("prepare() looks up rates for every variant")
                        };
                        if self.inner.allocation == Allocation::Amortized {
                            gap = self
                                .inner
                                .totals
                                .gap_since_previous_call(&endpoint, &v.name, ended_at);
                        }
                        lines.push(compute_line(
                            &v.billing,
                            &usage,
                            self.inner.allocation,
                            gap,
                            &rates.compute,
                        ));
                        lines.extend(data_lines(&usage, &rates.data_in, &rates.data_out));
                        if let (VariantBilling::Instance { instance_count, .. }, Ok(rate)) =
                            (&v.billing, &rates.compute)
                        {
                            clock = Some(InstanceClock {
                                usd_per_hour_all_instances: rate.usd_per_unit
                                    * Decimal::from(*instance_count),
                                started_at,
                                ended_at,
                            });
                        }
                        usage.variant.get_or_insert_with(|| v.name.clone());
                        variant = Some(v.name.clone());
                        billing = Some(v.billing.clone());
                    }
                    None => lines.push(unpriced(
                        LineItem::Compute,
                        Decimal::ZERO,
                        QuantityUnit::InstanceHours,
                        format!("endpoint `{endpoint}` has no production variants"),
                    )),
                }
            }
            Err(err) => lines.push(unpriced(
                LineItem::Compute,
                Decimal::ZERO,
                QuantityUnit::InstanceHours,
                err.to_string(),
            )),
        }
        if let Some(charges) = self.inner.charges.get(&endpoint) {
            lines.extend(usage_charge_lines(&usage, charges));
        }

        let cost_usd: Decimal = lines.iter().filter_map(CostLine::cost_usd).sum();
        let compute_usd = lines
            .iter()
            .find(|l| l.item == LineItem::Compute)
            .and_then(CostLine::cost_usd);
        let recorded =
            self.inner
                .totals
                .record(&endpoint, variant.as_deref(), cost_usd, compute_usd, clock);

        let mut all_tags = self.inner.default_tags.clone();
        all_tags.extend(tags);
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let cost = Cost {
            call_id: request_id.unwrap_or_else(|| format!("local-{seq}")),
            at: DateTime::<Utc>::from(started_at),
            endpoint,
            variant,
            billing,
            allocation: self.inner.allocation,
            usage,
            lines,
            cost_usd,
            currency: "USD".to_owned(),
            running_client_usd: recorded.running_client_usd,
            running_endpoint_usd: recorded.running_endpoint_usd,
            accrual: recorded.accrual,
            tags: all_tags,
            notes,
        };

        if !cost.is_fully_priced() {
            self.warn_unpriced(&cost);
        }
        log_cost(&cost);
        self.inner.metrics.emit(&cost);
        for sink in &self.inner.sinks {
            sink.record(&cost);
        }
        cost
    }

    /// One WARN per endpoint and distinct reason, not one per call.
    fn warn_unpriced(&self, cost: &Cost) {
        for reason in cost.unpriced_reasons() {
            let key = format!("{}\u{0}{reason}", cost.endpoint);
            let first = self
                .inner
                .warned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key);
            if first {
                tracing::warn!(target: "sagemeter", endpoint = %cost.endpoint, reason,
                    "call could not be fully priced; its receipt says so");
            }
        }
    }
}

fn whole_micros(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The price key of a variant's compute.
pub(crate) fn compute_key(
    region: &str,
    kind: EndpointKind,
    billing: &VariantBilling,
) -> Result<PriceKey, String> {
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
                return Err(format!(
                    "serverless memory size {memory_mb} MB is not a whole number of GB"
                ));
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

/// An override rate for `key`.
pub(crate) fn override_rate(key: PriceKey, usd_per_unit: Decimal) -> Rate {
    Rate::new(key, usd_per_unit, Provenance::new(PriceOrigin::Override))
}
