//! Pricing: what one unit of SageMaker usage costs, and where that figure came from.
//!
//! A [`PriceSource`] answers "what is the rate for this [`PriceKey`]?" with a [`Rate`]
//! that always carries its [`Provenance`]. The default chain used by
//! [`Meter`](crate::Meter) is:
//!
//! 1. per-key overrides set on the builder ([`PriceOrigin::Override`]);
//! 2. [`LivePrices`]: the AWS Price List Query API (`GetProducts`), behind
//!    [`CachedPrices`] (TTL, single-flight, last-known-good on failure);
//! 3. [`Snapshot`]: public prices bundled in the crate, the last fallback.
//!
//! [`history`] reads what rates were in earlier versions of the Price List, and how
//! fast they moved.
//!
//! Pricing never breaks inference: every failure turns into a fallback that the
//! receipt names, or into an explicit unpriced line, never into a failed call and
//! never into a silent $0.

mod cache;
#[cfg(test)]
mod cache_props;
mod change;
mod document;
pub mod history;
mod live;
mod snapshot;
#[cfg(feature = "account")]
pub(crate) use snapshot::as_of_day;
#[cfg(test)]
mod tier_props;

pub use cache::{CachedPrices, CachedPricesBuilder, DEFAULT_FAILURE_BACKOFF, DEFAULT_TTL};
pub use change::{OnPriceChange, PriceChange};
#[cfg(feature = "account")]
pub(crate) use document::UsageType;
pub use live::{
    DEFAULT_TIMEOUT as DEFAULT_LIVE_TIMEOUT, LivePrices, LivePricesBuilder, PricingRegion,
};
pub use snapshot::Snapshot;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The price source the metered client uses unless told otherwise: live Price List
/// prices behind a cache, the bundled snapshot as fallback.
///
/// With default settings:
/// - [`LivePrices`]: Price List API in us-east-1 whatever the application's region,
///   cn-northwest-1 for the China regions ([`PricingRegion::for_region`]; the SDK
///   config's credentials, HTTP client and endpoint settings are kept, so
///   `AWS_ENDPOINT_URL_PRICING` still points it elsewhere), one attempt, at most
///   [`DEFAULT_LIVE_TIMEOUT`] (1 s) per look-up;
/// - [`CachedPrices`]: prices kept for [`DEFAULT_TTL`] (6 h), one request per key at a
///   time, the last good price kept when a refresh fails, the primary left alone for
///   [`DEFAULT_FAILURE_BACKOFF`] (60 s) per key after a failure;
/// - [`Snapshot::bundled`] when no good live price is known.
///
/// Time comes from the SDK config's time source when it has one. For other settings,
/// compose the same pieces with their builders:
///
/// ```no_run
/// use sagemeter::pricing::{CachedPrices, LivePrices, PricingRegion, Snapshot};
/// use std::time::Duration;
///
/// # async fn run() {
/// let sdk_config = aws_config::load_from_env().await;
/// let prices = CachedPrices::builder(
///     LivePrices::builder(&sdk_config).pricing_region(PricingRegion::ApSouth1).build(),
/// )
/// .fallback(Snapshot::bundled())
/// .ttl(Duration::from_secs(24 * 3600))
/// .build();
/// # }
/// ```
pub fn default_price_source(sdk_config: &aws_types::SdkConfig) -> CachedPrices {
    let mut builder = CachedPrices::builder(LivePrices::from_sdk_config(sdk_config))
        .fallback(Snapshot::bundled());
    if let Some(time) = sdk_config.time_source() {
        builder = builder.time_source(time);
    }
    builder.build()
}

#[doc(inline)]
pub use crate::util::BoxFuture;

/// What is being priced: one billable SageMaker dimension in one region.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceKey {
    /// Real-time inference instance-hour (`component=Hosting`, usagetype `…Host:<type>`).
    Hosting {
        /// AWS region code, e.g. `us-east-1`.
        region: String,
        /// Instance type with the `ml.` prefix, e.g. `ml.m5.xlarge`.
        instance_type: String,
    },
    /// Asynchronous inference instance-hour (`component=AsyncInf`, usagetype `…AsyncInf:<type>`).
    AsyncInference {
        /// AWS region code.
        region: String,
        /// Instance type with the `ml.` prefix.
        instance_type: String,
    },
    /// Serverless inference compute second at a memory size (usagetype `…ServerlessInf:Mem-<N>GB`).
    Serverless {
        /// AWS region code.
        region: String,
        /// Memory size in GB (SageMaker allows 1 to 6).
        memory_gb: u32,
    },
    /// Serverless provisioned concurrency, the standing charge: per second provisioned,
    /// whether calls use it or not (AWS's "price per second of provisioned concurrency").
    ///
    /// Which Price List product this is (usagetype `…ProvisionedConcurrency:Mem-<N>GB`
    /// or `…:Usage-<N>GB`) is decided per document from its `group` and description.
    ProvisionedConcurrency {
        /// AWS region code.
        region: String,
        /// Memory size in GB.
        memory_gb: u32,
    },
    /// Serverless inference duration of calls served by provisioned concurrency, per
    /// second (AWS's "price per second of inference duration" for provisioned-concurrency
    /// endpoints, the higher of the two rates).
    ///
    /// Told apart from [`PriceKey::ProvisionedConcurrency`] as described there.
    ProvisionedConcurrencyUsage {
        /// AWS region code.
        region: String,
        /// Memory size in GB.
        memory_gb: u32,
    },
    /// Data processed in, per GB (usagetype `…Hst:Data-Bytes-In`).
    DataIn {
        /// AWS region code.
        region: String,
    },
    /// Data processed out, per GB (usagetype `…Hst:Data-Bytes-Out`).
    DataOut {
        /// AWS region code.
        region: String,
    },
    /// ML storage volume attached to a hosting instance, per GB-month (productFamily
    /// `Storage`, volumeType `General Purpose-Hosting`, usagetype `…Host:VolumeUsage.gp2`,
    /// Price List unit `GB-Mo`).
    Storage {
        /// AWS region code.
        region: String,
    },
}

impl PriceKey {
    /// Real-time hosting instance-hour key.
    pub fn hosting(region: impl Into<String>, instance_type: impl Into<String>) -> Self {
        PriceKey::Hosting {
            region: region.into(),
            instance_type: instance_type.into(),
        }
    }

    /// Serverless compute-second key for a memory size in GB.
    pub fn serverless(region: impl Into<String>, memory_gb: u32) -> Self {
        PriceKey::Serverless {
            region: region.into(),
            memory_gb,
        }
    }

    /// Hosting ML storage key (per GB-month of volume).
    pub fn storage(region: impl Into<String>) -> Self {
        PriceKey::Storage {
            region: region.into(),
        }
    }

    /// The region this key prices in.
    pub fn region(&self) -> &str {
        match self {
            PriceKey::Hosting { region, .. }
            | PriceKey::AsyncInference { region, .. }
            | PriceKey::Serverless { region, .. }
            | PriceKey::ProvisionedConcurrency { region, .. }
            | PriceKey::ProvisionedConcurrencyUsage { region, .. }
            | PriceKey::DataIn { region }
            | PriceKey::DataOut { region }
            | PriceKey::Storage { region } => region,
        }
    }

    /// The unit a rate for this key is quoted in.
    pub fn unit(&self) -> PriceUnit {
        match self {
            PriceKey::Hosting { .. } | PriceKey::AsyncInference { .. } => PriceUnit::Hour,
            PriceKey::Serverless { .. }
            | PriceKey::ProvisionedConcurrency { .. }
            | PriceKey::ProvisionedConcurrencyUsage { .. } => PriceUnit::Second,
            PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => PriceUnit::Gigabyte,
            PriceKey::Storage { .. } => PriceUnit::GigabyteMonth,
        }
    }
}

impl fmt::Display for PriceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceKey::Hosting {
                region,
                instance_type,
            } => write!(f, "hosting {instance_type} in {region}"),
            PriceKey::AsyncInference {
                region,
                instance_type,
            } => write!(f, "async inference {instance_type} in {region}"),
            PriceKey::Serverless { region, memory_gb } => {
                write!(f, "serverless {memory_gb} GB in {region}")
            }
            PriceKey::ProvisionedConcurrency { region, memory_gb } => {
                write!(f, "provisioned concurrency {memory_gb} GB in {region}")
            }
            PriceKey::ProvisionedConcurrencyUsage { region, memory_gb } => {
                write!(
                    f,
                    "provisioned concurrency usage {memory_gb} GB in {region}"
                )
            }
            PriceKey::DataIn { region } => write!(f, "data processed in, {region}"),
            PriceKey::DataOut { region } => write!(f, "data processed out, {region}"),
            PriceKey::Storage { region } => write!(f, "hosting ML storage in {region}"),
        }
    }
}

/// The unit a rate is quoted in.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceUnit {
    /// Per instance-hour (Price List unit `Hrs`).
    Hour,
    /// Per second (serverless compute and provisioned concurrency).
    Second,
    /// Per gigabyte (2^30 bytes) of data processed (Price List unit `GB`).
    Gigabyte,
    /// Per gigabyte of storage kept for a month (Price List unit `GB-Mo`).
    GigabyteMonth,
}

impl fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriceUnit::Hour => "hour",
            PriceUnit::Second => "second",
            PriceUnit::Gigabyte => "GB",
            PriceUnit::GigabyteMonth => "GB-month",
        })
    }
}

/// Where a price came from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceOrigin {
    /// Set by the user on the builder.
    Override,
    /// Fetched from the AWS Price List API for this look-up.
    Live,
    /// A Price List answer kept from an earlier look-up (fresh within its TTL, or the
    /// last good price kept because a refresh failed; [`Provenance::note`] says which,
    /// and [`Provenance::is_fallback`] reads it).
    Cache,
    /// The public price snapshot bundled in the crate.
    Snapshot,
}

impl PriceOrigin {
    /// Lower-case name, as written in logs and ledgers.
    pub fn as_str(&self) -> &'static str {
        match self {
            PriceOrigin::Override => "override",
            PriceOrigin::Live => "live",
            PriceOrigin::Cache => "cache",
            PriceOrigin::Snapshot => "snapshot",
        }
    }
}

impl fmt::Display for PriceOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a price was obtained and how fresh it is.
///
/// Its texts are shared (`Arc<str>`): every receipt line priced from the same rate
/// points at the same strings instead of copying them.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Where the price came from.
    pub source: PriceOrigin,
    /// The Price List SKU, when known.
    pub sku: Option<Arc<str>>,
    /// The `effectiveDate` of the on-demand term (or the snapshot's `as_of` date).
    pub effective_date: Option<Arc<str>>,
    /// When the price was fetched from AWS (None for snapshot and override prices).
    pub fetched_at: Option<DateTime<Utc>>,
    /// Why this source was used, when it is a fallback (e.g. "price list throttled").
    pub note: Option<Arc<str>>,
}

impl Provenance {
    /// Provenance with only a source set.
    pub fn new(source: PriceOrigin) -> Self {
        Provenance {
            source,
            sku: None,
            effective_date: None,
            fetched_at: None,
            note: None,
        }
    }

    /// Sets the SKU.
    pub fn with_sku(mut self, sku: impl Into<Arc<str>>) -> Self {
        self.sku = Some(sku.into());
        self
    }

    /// Sets the effective date.
    pub fn with_effective_date(mut self, date: impl Into<Arc<str>>) -> Self {
        self.effective_date = Some(date.into());
        self
    }

    /// Sets the fetch time.
    pub fn with_fetched_at(mut self, at: DateTime<Utc>) -> Self {
        self.fetched_at = Some(at);
        self
    }

    /// Sets the note saying why this source was used.
    pub fn with_note(mut self, note: impl Into<Arc<str>>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Whether the rate is a fallback: the bundled snapshot, or a rate the cache
    /// served in place of a fresh answer, as its note says (older than its TTL or
    /// past the date of a term announced without a rate, while a refresh runs; the
    /// last good price kept after a failed refresh; the fallback source's after
    /// the primary failed). A cached rate is no fallback for having a note: a live
    /// answer's note (which charge a SKU is, an announced term in effect, $0 rows
    /// skipped, a price change) stays on it when the cache serves it again.
    pub fn is_fallback(&self) -> bool {
        is_fallback(self.source, self.note.as_deref())
    }
}

/// [`Provenance::is_fallback`] of a rate from `source` with provenance `note`:
/// one rule for receipts, accruals and every ledger reader.
pub(crate) fn is_fallback(source: PriceOrigin, note: Option<&str>) -> bool {
    source == PriceOrigin::Snapshot || note.is_some_and(cache::is_fallback_note)
}

/// What one instance of a type has, as the Price List's product attributes say
/// (`vCpu`, `memory`, `gpu`): what an inference component's reservation is a share of.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceResources {
    /// vCPUs (`vCpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    /// Memory in GiB (`memory`, e.g. `16 GiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<Decimal>,
    /// Accelerator devices (`gpu`); 0 for instance types without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerators: Option<u32>,
}

impl InstanceResources {
    /// Resources stated by hand (e.g. `InstanceResources::new(48, 192, 4)` for an
    /// ml.g5.12xlarge: 48 vCPUs, 192 GiB, 4 GPUs).
    pub fn new(vcpu: u32, memory_gib: u32, accelerators: u32) -> Self {
        InstanceResources {
            vcpu: Some(vcpu),
            memory_gib: Some(Decimal::from(memory_gib)),
            accelerators: Some(accelerators),
        }
    }

    /// From a Price List product's attributes; `None` when it names none of them.
    pub(crate) fn of_product(doc: &document::PriceDocument) -> Option<Self> {
        let count = |name: &str| {
            doc.attribute(name)
                .and_then(|v| v.trim().replace(',', "").parse::<u32>().ok())
        };
        let memory_gib = doc.attribute("memory").and_then(|v| {
            let v = v.trim().replace(',', "");
            v.strip_suffix("GiB")
                .or_else(|| v.strip_suffix("GB"))
                .and_then(|n| n.trim().parse::<Decimal>().ok())
        });
        let resources = InstanceResources {
            vcpu: count("vCpu"),
            memory_gib,
            accelerators: count("gpu"),
        };
        (resources != InstanceResources::default()).then_some(resources)
    }
}

/// The largest rate sagemeter accepts, in USD per unit: far above any SageMaker
/// price. A configured price above it (a price override, a usage charge) is refused
/// when the client is built; one read from the Price List or a price snapshot makes
/// that document or snapshot [`PriceError::Malformed`], so the call is priced by the
/// next source in the chain (its receipt says so) instead. Most likely a misplaced
/// decimal point, the wrong unit or a garbled document; left in, a rate that large
/// could make a call's cost more than a decimal holds.
pub const MAX_SANE_USD_PER_UNIT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// A price for one unit of one [`PriceKey`], with its provenance.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// What this rate prices.
    pub key: PriceKey,
    /// USD per [`Rate::unit`].
    pub usd_per_unit: Decimal,
    /// The unit of [`Rate::usd_per_unit`].
    pub unit: PriceUnit,
    /// Where the figure came from.
    pub provenance: Provenance,
    /// For an instance-hour rate from the Price List: what the instance has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceResources>,
    /// For a live rate: the next on-demand term the Price List's answer listed (a
    /// change announced ahead of its date), from whose `effectiveDate` this rate is
    /// no longer the one in effect. [`CachedPrices`] serves the term's own rate from
    /// then, and the rates it serves carry the terms as it serves them from their
    /// dates (source [`PriceOrigin::Cache`]): the variant's accrual charges the
    /// standing capacity of each stretch at the rate in force then.
    #[serde(skip)]
    pub(crate) next_term: Option<Box<NextTerm>>,
}

/// A later on-demand term a Price List answer listed beside the one in effect: a
/// price change AWS announced ahead of its date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NextTerm {
    /// Its `effectiveDate`.
    pub(crate) on: DateTime<Utc>,
    /// The rate the answer gives from then (noted as taken from the announced term,
    /// with the term after it, if listed, as its own [`Rate::next_term`]); `None`
    /// when the answer gives no usable rate for that date, or lists too many terms
    /// ahead to price them all.
    pub(crate) rate: Option<Rate>,
}

impl Rate {
    /// A rate in the unit its key is quoted in.
    pub fn new(key: PriceKey, usd_per_unit: Decimal, provenance: Provenance) -> Self {
        let unit = key.unit();
        Rate {
            key,
            usd_per_unit,
            unit,
            provenance,
            instance: None,
            next_term: None,
        }
    }

    /// This rate with `note` put in front of any note it already has.
    pub(crate) fn with_note_before(mut rate: Rate, note: &str) -> Rate {
        rate.provenance.note = Some(match rate.provenance.note.take() {
            Some(old) if !old.is_empty() => format!("{note}; {old}").into(),
            _ => note.into(),
        });
        rate
    }

    /// Sets what the instance has (see [`InstanceResources`]).
    pub fn with_instance(mut self, resources: InstanceResources) -> Self {
        self.instance = Some(resources);
        self
    }
}

/// Why no rate could be given.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The source has no price for this key (e.g. an instance type not offered in a region).
    #[error(
        "no price for {key}: check the instance type and region, or set a price override{}",
        unknown_region_hint(key.region()).map_or_else(String::new, |hint| format!("; {hint}"))
    )]
    NotFound {
        /// The key that has no price.
        key: PriceKey,
    },
    /// The price snapshot holds no prices of this kind (or, for an instance type it
    /// lists elsewhere or a serverless memory size SageMaker offers, of this one) for
    /// the key's region: the region is a real AWS region, the snapshot just does not
    /// cover it (the bundled one holds data processing and storage in a few regions,
    /// serverless in us-east-1 only). Nothing is wrong with the key; its price needs
    /// the live Price List, or a price override.
    #[error(
        "the {snapshot} has no {what} prices for {} ({}); {}",
        .key.region(),
        covers_text(.covers, .here, .key.region()),
        not_covered_remedy(.key.region())
    )]
    NotCovered {
        /// The key that has no price.
        key: PriceKey,
        /// Which snapshot, as its notes name it: `bundled price snapshot`, or `price
        /// snapshot given to Snapshot::from_tsv` (the reader then knows which table
        /// to extend).
        snapshot: &'static str,
        /// What the snapshot has no prices of, e.g. `data processed in` or
        /// `ml.p4d.24xlarge hosting`.
        what: Box<str>,
        /// The regions the snapshot does have them for, sorted.
        covers: Box<[String]>,
        /// When it has this serverless memory size for no region: the sizes of this
        /// kind it has for the key's region, comma-separated (e.g. `provisioned
        /// concurrency 2 GB`); else empty.
        here: Box<str>,
    },
    /// The source could not be reached, timed out, or was throttled.
    #[error("price source unavailable: {reason}")]
    Unavailable {
        /// What went wrong (never contains credentials).
        reason: String,
    },
    /// The source answered with something that is not a usable price document.
    #[error("malformed price document: {reason}")]
    Malformed {
        /// What was wrong with the document.
        reason: String,
    },
    /// The source lists only $0 for this key: a free-tier or bookkeeping row with no
    /// paid tier or paid product beside it. Never turned into a $0 price: the call gets
    /// an explicit unpriced line (or a fallback source's price) instead.
    #[error("{reason}; not priced at $0")]
    ZeroOnly {
        /// The key that has only $0 listed.
        key: PriceKey,
        /// Where the $0 was seen (SKU, or snapshot line) and what it looked like.
        reason: String,
    },
    /// The source prices this key in other currencies only (the Price List of the
    /// China regions is in CNY). sagemeter bills in USD and never converts: the call
    /// gets an explicit unpriced line unless a USD price override is set.
    #[error(
        "no USD price for {key}: the Price List prices it only in {currencies}; sagemeter \
         bills in USD, so set a USD price override for it"
    )]
    OtherCurrency {
        /// The key that has no USD price.
        key: PriceKey,
        /// The currency codes it is priced in, comma-separated (e.g. `CNY`).
        currencies: String,
    },
}

/// A hint when `region` is not one of the AWS regions this sagemeter knows: the one
/// it most likely means when it differs only in dashes or case (`us-east1`,
/// `US-EAST-1`), else that it is not among them. `None` for a region it knows. A
/// region newer than this sagemeter gets the hint but is never refused for it.
/// A region of an ISO partition (`us-iso-east-1`), which this sagemeter does not
/// list, is not called a typo: the hint says that its partition's Price List is
/// out of sagemeter's reach.
pub fn unknown_region_hint(region: &str) -> Option<String> {
    let known = snapshot::AWS_REGIONS;
    if known.contains(&region) {
        return None;
    }
    let shown = crate::redact::printable(region);
    if let Some(partition) = live::partition_without_price_list(region) {
        return Some(format!(
            "`{shown}` is a region of partition {partition}, whose Price List is out of \
             sagemeter's reach"
        ));
    }
    let squashed = |r: &str| r.replace('-', "").to_ascii_lowercase();
    Some(
        match known.iter().find(|r| squashed(r) == squashed(region)) {
            Some(meant) => format!("`{shown}` is not an AWS region: did you mean `{meant}`?"),
            None => format!("`{shown}` is not among the AWS regions this sagemeter knows"),
        },
    )
}

/// What to do about a region of a partition whose Price List sagemeter cannot reach
/// (see [`LivePrices::builder`]) that the snapshot does not cover.
const NOT_REACHABLE_REMEDY: &str =
    "its partition's Price List is out of sagemeter's reach: set price overrides for its rates";

/// What to do about a region the snapshot does not cover: the live Price List, or
/// for China's regions (priced in CNY only, which receipts in USD cannot use) a
/// USD price override, or for a partition whose Price List sagemeter cannot reach
/// (an ISO partition, the AWS European Sovereign Cloud) a price override.
fn not_covered_remedy(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "China's regions are priced in CNY only, which sagemeter does not convert: \
         set a USD price override"
    } else if live::partition_without_price_list(region).is_some() {
        NOT_REACHABLE_REMEDY
    } else {
        "the live Price List is needed, or set a price override"
    }
}

/// "it covers: a, b", or that it covers no region (and what it has instead in
/// `region`).
fn covers_text(regions: &[String], here: &str, region: &str) -> String {
    match (regions.is_empty(), here.is_empty()) {
        (false, _) => format!("it covers: {}", regions.join(", ")),
        (true, true) => "it has them for no region".to_owned(),
        (true, false) => format!("it has them for no region; for {region} it has {here}"),
    }
}

/// Whether `usd` per unit can be a SageMaker price a source gives: above $0 (never
/// a silent $0: a price that is free on purpose is an override marked so) and not
/// above [`MAX_SANE_USD_PER_UNIT`].
pub(crate) fn is_plausible_usd(usd: Decimal) -> bool {
    !usd.is_zero() && crate::billing::check_usd_per_unit(usd).is_ok()
}

/// A price source's rate, unless it is no price ([`is_plausible_usd`]): $0 is
/// [`PriceError::ZeroOnly`], a negative rate or one beyond any SageMaker price
/// [`PriceError::Malformed`]. The built-in sources refuse such prices where they
/// read them, but a custom [`PriceSource`] could still hand one over: the meter
/// then leaves the line unpriced with the reason, and [`CachedPrices`] takes it as
/// a failed look-up (the last good price kept, else the fallback's, which it
/// checks the same way). So does the account view.
pub(crate) fn plausible(rate: Result<Rate, PriceError>) -> Result<Rate, PriceError> {
    match rate {
        Ok(rate) if rate.usd_per_unit.is_zero() => Err(PriceError::ZeroOnly {
            reason: format!("the price source gave 0 USD per unit for {}", rate.key),
            key: rate.key,
        }),
        Ok(rate) if !is_plausible_usd(rate.usd_per_unit) => Err(PriceError::Malformed {
            reason: format!(
                "the price source gave {} USD per unit for {}: not a price (SageMaker \
                 prices are from 0 to {MAX_SANE_USD_PER_UNIT} USD per unit)",
                rate.usd_per_unit, rate.key
            ),
        }),
        rate => rate,
    }
}

/// Anything that can price a [`PriceKey`].
///
/// Implementations must be cheap to call repeatedly: a warm look-up is on every
/// call's path. Object-safe, so a chain can be built from `Arc<dyn PriceSource>`.
/// A meter refuses a rate of $0 (or one beyond any SageMaker price) from a source:
/// the line is unpriced with the reason. A price that is free on purpose is a price
/// override marked `free_of_charge`.
pub trait PriceSource: fmt::Debug + Send + Sync {
    /// The rate for `key`, or why there is none.
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>>;

    /// The answer [`price`](Self::price) would give, if the source has it at hand
    /// (a fresh cache entry, a bundled table); `None` when it would have to wait
    /// (fetch, refresh). Lets the call path skip the boxed future. Default: `None`.
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        let _ = key;
        None
    }

    /// Fetches `key` ahead of its first look-up, for a source that keeps what it
    /// fetched (a cache): the meter warms every key of an endpoint's profile as soon
    /// as the profile is discovered, so that calls do not wait for the first answer.
    /// Answers nobody: a rate at hand (fresh, stale or kept after a failure), or a
    /// fetch already under way, is left as it is. Default: nothing (a source that
    /// keeps nothing has nothing to warm).
    fn warm<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(std::future::ready(()))
    }
}

impl<T: PriceSource + ?Sized> PriceSource for Arc<T> {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        (**self).price(key)
    }

    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        (**self).price_now(key)
    }

    fn warm<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, ()> {
        (**self).warm(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_region_is_named_with_the_one_it_likely_means() {
        assert_eq!(unknown_region_hint("us-east-1"), None);
        assert_eq!(
            unknown_region_hint("us-east1").as_deref(),
            Some("`us-east1` is not an AWS region: did you mean `us-east-1`?")
        );
        assert_eq!(
            unknown_region_hint("EU-WEST-1").as_deref(),
            Some("`EU-WEST-1` is not an AWS region: did you mean `eu-west-1`?")
        );
        assert_eq!(
            unknown_region_hint("mars-north-1").as_deref(),
            Some("`mars-north-1` is not among the AWS regions this sagemeter knows")
        );
        // The AWS European Sovereign Cloud's region (partition aws-eusc) is one.
        assert_eq!(unknown_region_hint("eusc-de-east-1"), None);
        // An ISO partition's region is not listed, and not a typo: out of reach.
        assert_eq!(
            unknown_region_hint("us-iso-east-1").as_deref(),
            Some(
                "`us-iso-east-1` is a region of partition aws-iso, whose Price List is out \
                 of sagemeter's reach"
            )
        );
        assert_eq!(
            unknown_region_hint("us-isob-east-1").as_deref(),
            Some(
                "`us-isob-east-1` is a region of partition aws-iso-b, whose Price List is \
                 out of sagemeter's reach"
            )
        );
        // In the price error, after the usual advice.
        let err = PriceError::NotFound {
            key: PriceKey::hosting("us-east1", "ml.m5.xlarge"),
        };
        assert!(
            err.to_string()
                .ends_with("or set a price override; `us-east1` is not an AWS region: did you mean `us-east-1`?"),
            "{err}"
        );
    }

    #[test]
    fn storage_key_reads_writes_and_prints_as_hosting_ml_storage_per_gb_month() {
        let key = PriceKey::storage("us-east-1");
        assert_eq!(
            key,
            PriceKey::Storage {
                region: "us-east-1".into()
            }
        );
        assert_eq!(key.region(), "us-east-1");
        assert_eq!(key.unit(), PriceUnit::GigabyteMonth);
        assert_eq!(key.to_string(), "hosting ML storage in us-east-1");
        assert_eq!(PriceUnit::GigabyteMonth.to_string(), "GB-month");
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "storage", "region": "us-east-1"})
        );
        assert_eq!(serde_json::from_value::<PriceKey>(json).unwrap(), key);
        assert_eq!(
            serde_json::to_value(PriceUnit::GigabyteMonth).unwrap(),
            "gigabyte_month"
        );
    }

    #[test]
    fn zero_only_error_says_it_is_not_a_zero_price() {
        let err = PriceError::ZeroOnly {
            key: PriceKey::serverless("us-east-1", 2),
            reason: "the Price List lists only $0 for serverless 2 GB in us-east-1 (SKU S: a \
                     free-tier or bookkeeping row with no paid tier)"
                .into(),
        };
        assert_eq!(
            err.to_string(),
            "the Price List lists only $0 for serverless 2 GB in us-east-1 (SKU S: a free-tier \
             or bookkeeping row with no paid tier); not priced at $0"
        );
    }
}
