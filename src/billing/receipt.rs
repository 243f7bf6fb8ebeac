//! The receipt: what one call cost, and how that figure was made.

use crate::billing::Allocation;
use crate::endpoint::VariantBilling;
use crate::pricing::{PriceOrigin, Provenance};
use crate::usage::Usage;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a cost line is for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineItem {
    /// Instance-hours or serverless compute seconds.
    Compute,
    /// Data processed in.
    DataIn,
    /// Data processed out.
    DataOut,
    /// Per-inference fee.
    Inference,
    /// Input tokens.
    InputTokens,
    /// Output tokens.
    OutputTokens,
}

impl LineItem {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            LineItem::Compute => "compute",
            LineItem::DataIn => "data_in",
            LineItem::DataOut => "data_out",
            LineItem::Inference => "inference",
            LineItem::InputTokens => "input_tokens",
            LineItem::OutputTokens => "output_tokens",
        }
    }
}

/// The unit of a line's quantity.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityUnit {
    /// Instance-hours.
    InstanceHours,
    /// Seconds.
    Seconds,
    /// Gigabytes (2³⁰ bytes).
    Gigabytes,
    /// Calls.
    Calls,
    /// Tokens.
    Tokens,
}

impl QuantityUnit {
    /// Lower-case name, as a ledger writes it (`instance_hours`).
    pub fn as_str(&self) -> &'static str {
        match self {
            QuantityUnit::InstanceHours => "instance_hours",
            QuantityUnit::Seconds => "seconds",
            QuantityUnit::Gigabytes => "gigabytes",
            QuantityUnit::Calls => "calls",
            QuantityUnit::Tokens => "tokens",
        }
    }
}

/// The price of one line, or why it has none. Never a silent zero.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LinePrice {
    /// Priced.
    Priced {
        /// USD per unit of the line's quantity.
        #[serde(with = "amount")]
        usd_per_unit: Decimal,
        /// What the line costs, to 10⁻¹² USD: quantity × usd_per_unit, rounded,
        /// for most lines; a processor-sharing or inference-component compute
        /// line is priced from its exact instance-femtoseconds, rounded down
        /// once (the quantity shows them rounded, so the product can differ in
        /// the last digit: 1 ms alone on $0.23/h costs $0.000000063888, the
        /// product rounded 0.000000063889); an amortised line carries what the
        /// accrual added (see `docs/cost-model.md`).
        #[serde(with = "amount")]
        cost_usd: Decimal,
        /// Where the rate came from.
        provenance: Provenance,
    },
    /// No price could be found.
    Unpriced {
        /// Why.
        reason: String,
    },
}

/// One line of a receipt.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    /// What the line is for.
    pub item: LineItem,
    /// How much was used, in `unit`.
    #[serde(with = "amount")]
    pub quantity: Decimal,
    /// The unit of `quantity`.
    pub unit: QuantityUnit,
    /// Its price.
    pub price: LinePrice,
}

impl CostLine {
    /// The line's cost, `None` when unpriced.
    pub fn cost_usd(&self) -> Option<Decimal> {
        match &self.price {
            LinePrice::Priced { cost_usd, .. } => Some(*cost_usd),
            LinePrice::Unpriced { .. } => None,
        }
    }
}

/// What a variant's standing capacity has cost while sagemeter has been metering
/// it, next to what its receipts allocated: the idle part is on no receipt.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accrual {
    /// The variant's standing capacity × its rate × time since the first metered
    /// call: instances × hourly rate for an instance variant; provisioned
    /// concurrency × the per-second provisioned-concurrency rate of its memory
    /// size for a serverless variant with provisioned concurrency (charged
    /// whether calls come or not).
    #[serde(with = "amount")]
    pub accrued_usd: Decimal,
    /// Compute allocated to calls on receipts so far, for this variant (for
    /// provisioned concurrency, of the calls it served: not those beyond it, billed
    /// on demand).
    #[serde(with = "amount")]
    pub allocated_usd: Decimal,
    /// allocated ÷ accrued, when accrued > 0. For instances, the share of instance
    /// time allocated to calls (1 = busy all the time; at most 1 under processor
    /// sharing on an endpoint of one variant: on one of several, SageMaker may
    /// route the calls naming no variant to one of them, whose receipts then
    /// exceed its accrual). For provisioned concurrency, the calls' inference-duration
    /// charges over the standing charge (a ratio of two rates, not of time).
    #[serde(default, with = "amount::option")]
    pub utilisation: Option<Decimal>,
    /// ML storage volumes (`VolumeSizeInGB` × instances × the GB-month rate,
    /// prorated by the second over the calendar month) over the same time, when
    /// the variant's volume size and the storage rate are known.
    #[serde(
        default,
        with = "amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_usd: Option<Decimal>,
    /// For a variant hosting inference components: the part of `accrued_usd` no
    /// component reserved (instance capacity left free), which no call is
    /// allocated. Shown here, never spread over the components' calls.
    #[serde(
        default,
        with = "amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub unreserved_usd: Option<Decimal>,
    /// Where the rates behind these figures came from: one entry per standing
    /// charge and price source that priced some stretch of them, in the order
    /// first used (an accrual that ran at a snapshot rate, then at a live one,
    /// lists both). Empty in ledgers written before accruals carried it. With a
    /// fleet, the capacity's is the source of the rate the fleet's day was
    /// priced at (this call's), the storage's this process's. Shared, so that a
    /// call does not allocate it.
    #[serde(default, skip_serializing_if = "no_sources")]
    pub priced_from: Arc<[AccrualSource]>,
    /// When `accrued_usd` also pays for variants billed alongside this one, which
    /// serve no caller's call (a shadow variant, a deployment's new fleet): its
    /// standing charges at their latest rates, this variant's own first. AWS
    /// bills each under its own usage type (`Host:<instance type>`), and a
    /// reconciliation files each part of the accrual under its own. Empty when
    /// the accrual is this variant's alone.
    #[serde(default, skip_serializing_if = "no_parts")]
    pub standing_parts: Arc<[StandingPart]>,
    /// When these figures run to, where that is not the end of the call the
    /// receipt states (`at` + latency): an async invocation's settlement is dated
    /// at its submission, its latency the model's processing, and its accrual
    /// runs to when it was settled, hours later maybe. `None` for every other
    /// receipt, and in ledgers written before receipts carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrued_to: Option<DateTime<Utc>>,
}

fn no_sources(sources: &Arc<[AccrualSource]>) -> bool {
    sources.is_empty()
}

fn no_parts(parts: &Arc<[StandingPart]>) -> bool {
    parts.is_empty()
}

/// No standing parts: one shared allocation, cloned (an accrual is made on every
/// call, and most have none).
pub(crate) fn no_standing_parts() -> Arc<[StandingPart]> {
    static NONE: std::sync::OnceLock<Arc<[StandingPart]>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Arc::from([])).clone()
}

/// One variant's standing charge in an [`Accrual`] that adds up several
/// ([`Accrual::standing_parts`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingPart {
    /// How AWS bills the variant.
    pub billing: VariantBilling,
    /// What its standing capacity costs an hour: instances × the hourly rate, or
    /// provisioned concurrency × the per-second rate × 3,600.
    #[serde(with = "amount")]
    pub usd_per_hour: Decimal,
}

impl StandingPart {
    /// `billing`'s standing charge of `usd_per_hour`.
    pub fn new(billing: VariantBilling, usd_per_hour: Decimal) -> Self {
        StandingPart {
            billing,
            usd_per_hour,
        }
    }
}

impl Accrual {
    /// The entries of [`priced_from`](Self::priced_from) that are fallbacks
    /// ([`AccrualSource::is_fallback`]).
    pub fn fallbacks(&self) -> impl Iterator<Item = &AccrualSource> {
        self.priced_from.iter().filter(|s| s.is_fallback())
    }
}

/// Which standing charge of an [`Accrual`] a rate priced.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccrualCharge {
    /// The standing capacity of `accrued_usd`: instance-hours, or provisioned
    /// concurrency.
    Capacity,
    /// ML storage (`storage_usd`).
    Storage,
}

impl AccrualCharge {
    /// Lower-case name, as written in ledgers.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccrualCharge::Capacity => "capacity",
            AccrualCharge::Storage => "storage",
        }
    }
}

/// Where the rate of one standing charge of an [`Accrual`] came from, as a
/// receipt line's [`Provenance`] says it: so that an accrual priced from the
/// bundled snapshot (possibly out of date) is told from one priced live.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccrualSource {
    /// The charge the rate priced.
    pub charge: AccrualCharge,
    /// Where the rate came from.
    pub price_source: PriceOrigin,
    /// The rate's [`Provenance::note`] (why that source was used, when it is a
    /// fallback; the latest stretch's when several had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Arc<str>>,
}

impl AccrualSource {
    /// A source of `charge`'s rate.
    pub fn new(charge: AccrualCharge, price_source: PriceOrigin, note: Option<Arc<str>>) -> Self {
        AccrualSource {
            charge,
            price_source,
            note,
        }
    }

    /// Whether the rate is a fallback, by the rule of a receipt line's
    /// ([`Provenance::is_fallback`]): the bundled snapshot, or a cached price the
    /// cache's own note calls stale, kept after a failed refresh or the fallback
    /// source's. A cached live price keeps its answer's explanatory note (which
    /// charge a provisioned-concurrency SKU is, an announced term in effect) and is
    /// no fallback for it.
    pub fn is_fallback(&self) -> bool {
        crate::pricing::is_fallback(self.price_source, self.note.as_deref())
    }
}

/// The cost receipt of one call.
///
/// ```
/// # use sagemeter::Cost;
/// fn show(cost: &Cost) {
///     // One line: "$0.000015972222 for InvokeEndpoint on demo-realtime/AllTraffic ... [live]"
///     println!("{cost}");
///     for line in &cost.lines {
///         println!("  {:?} {} -> {:?}", line.item, line.quantity, line.cost_usd());
///     }
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// A unique id for this call (the SageMaker request id when the service returned one).
    pub call_id: String,
    /// When the call started.
    pub at: DateTime<Utc>,
    /// Endpoint name.
    pub endpoint: String,
    /// The variant the call was billed to.
    pub variant: Option<String>,
    /// The inference component the call named (`InferenceComponentName`): its
    /// compute is that component's share of the variant's instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_component: Option<String>,
    /// The model of a multi-model endpoint the call named (`TargetModel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_model: Option<String>,
    /// How that variant is billed, when known.
    pub billing: Option<VariantBilling>,
    /// How instance time was allocated to this call.
    pub allocation: Allocation,
    /// What was measured.
    pub usage: Usage,
    /// The cost, line by line.
    pub lines: Vec<CostLine>,
    /// Sum of the priced lines, in USD.
    #[serde(with = "amount")]
    pub cost_usd: Decimal,
    /// Currency of every amount on the receipt (always `USD`; borrowed, so that
    /// a receipt made by a call does not allocate it).
    pub currency: std::borrow::Cow<'static, str>,
    /// The AWS region the call was priced in, [`Meter::region`](crate::Meter::region):
    /// the endpoints' region, unless `ClientBuilder::region` prices them at another
    /// region's rates on purpose (`None` in ledgers written before receipts carried
    /// it). Shared, so that a call does not allocate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<std::sync::Arc<str>>,
    /// Everything this client has spent, this call included.
    #[serde(with = "amount")]
    pub running_client_usd: Decimal,
    /// Everything spent on this endpoint through this client, this call included.
    #[serde(with = "amount")]
    pub running_endpoint_usd: Decimal,
    /// Everything the whole fleet (every process sharing the fleet table) has spent
    /// in the current UTC day, this call included (a duplicate settlement, billed
    /// nowhere, adds nothing to it); `None` without a fleet (see the `fleet`
    /// module, feature `fleet`, for how fresh it is).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "amount::option"
    )]
    pub running_fleet_usd: Option<Decimal>,
    /// The variant's wall-clock cost since metering began, for a variant with
    /// standing capacity: an instance variant, or a serverless one with
    /// provisioned concurrency.
    pub accrual: Option<Accrual>,
    /// Tags attributed to the call.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Things the reader should know (assumptions, fallbacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set only on the receipt of a **duplicate** settlement of an async
    /// invocation ([`Cost::is_duplicate_settlement`]): which settlement billed it
    /// first. Such a receipt is recorded nowhere, so no ledger carries this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_before: Option<SettledBefore>,
}

/// The earlier settlement of an async invocation, on the receipt of a duplicate
/// one: a typed fact, so that telling a duplicate does not hang on a note's
/// wording (the note says the same for people).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledBefore {
    /// Who settled the invocation first.
    pub by: SettledBy,
    /// When, if known (the first settler's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Set while that settlement is still in progress: in another process of
    /// the fleet (marked in the fleet table, not billed yet), until when its
    /// claim runs; in this client (a copy settled while the first copy here
    /// had no receipt yet), 5 minutes after it started, the claim it makes with
    /// a fleet. It is due to bill the invocation, but may find another
    /// settlement in progress, or its process be killed, before it does: see
    /// [`Cost::is_settlement_in_progress_elsewhere`]. `None`: billed, final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_until: Option<DateTime<Utc>>,
}

/// Who settled an async invocation first (see [`SettledBefore`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettledBy {
    /// This client: its meter remembers what it settled.
    ThisClient,
    /// Another process sharing the fleet table.
    Fleet,
}

/// The note the client writes on the second receipt of an async invocation
/// (`client::async_invoke`): "settlement of the async invocation submitted at …".
pub(crate) const SETTLEMENT_NOTE: &str = "settlement of the async invocation";

/// How the note on a serverless call billed beyond its variant's provisioned
/// concurrency ends (`client::meter`); ledgers carry it, and
/// [`Cost::is_beyond_provisioned`] reads it back: reworded, they would be misread.
pub(crate) const BEYOND_PROVISIONED_NOTE_END: &str =
    "billed at the on-demand serverless rate, as AWS bills the calls beyond it";

/// The note `MeteringInterceptor` writes on every receipt it makes, first of
/// its notes. Ledgers of every version carry it, and [`is_settlement`] reads
/// it back from them: reworded, those ledgers would be misread.
pub(crate) const INTERCEPTOR_NOTE: &str = "metered by the SDK interceptor";

/// Whether an async invocation's receipt with these line items, bytes out, token
/// counts and notes is its settlement (see [`Cost::is_async_settlement`]); one
/// rule for receipts and for ledger rows read without making a receipt.
///
/// The interceptor makes no settlement: its receipt of an async call
/// ([`INTERCEPTOR_NOTE`]) is the call's only one, whatever lines it has (an
/// endpoint priced by the token alone gives it token lines only). A settlement
/// bills neither data in nor the per-inference fee (the submission did): a
/// receipt with either line is the submission, or the invocation's only
/// receipt, whatever else it has.
pub(crate) fn is_settlement<'a>(
    items: impl IntoIterator<Item = LineItem>,
    bytes_out: u64,
    has_tokens: bool,
    notes: impl Iterator<Item = &'a str>,
) -> bool {
    for note in notes {
        if note == INTERCEPTOR_NOTE {
            return false;
        }
        if note.starts_with(SETTLEMENT_NOTE) {
            return true;
        }
    }
    let mut settlement_line = false;
    for item in items {
        match item {
            LineItem::DataIn | LineItem::Inference => return false,
            _ => settlement_line = true,
        }
    }
    settlement_line || bytes_out > 0 || has_tokens
}

/// Whether an async submission's receipt with these notes says that no
/// settlement will ever come for some job it queued, that job's compute
/// (AsyncInf instance-hours) never on a receipt: one that failed after
/// SageMaker accepted it
/// ([`ACCEPTED_THEN_FAILED_NOTE`](crate::client::ACCEPTED_THEN_FAILED_NOTE)),
/// or that its caller dropped once accepted
/// ([`DROPPED_SUBMISSION_NOTE`](crate::client::DROPPED_SUBMISSION_NOTE)), has
/// none settled; one SageMaker accepted more than once
/// ([`ACCEPTED_MORE_THAN_ONCE_NOTE`](crate::client::ACCEPTED_MORE_THAN_ONCE_NOTE))
/// has its other jobs unsettled, and its last is settled all the same
/// ([`is_settled_in_part`]). One rule for receipts and for ledger rows read
/// without making a receipt.
pub(crate) fn is_never_settled<'a>(notes: impl Iterator<Item = &'a str>) -> bool {
    never_settled(notes) != NeverSettled::No
}

/// Whether an async submission's receipt with these notes is
/// [never settled](is_never_settled) in part only: SageMaker accepted it more
/// than once, and its last job's settlement is still to come.
pub(crate) fn is_settled_in_part<'a>(notes: impl Iterator<Item = &'a str>) -> bool {
    never_settled(notes) == NeverSettled::InPart
}

/// Which of an async submission's jobs no settlement will ever come for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NeverSettled {
    /// Every job it queued is settled.
    No,
    /// Those beyond the last one accepted.
    InPart,
    /// All of them.
    All,
}

/// Which of an async submission's jobs its notes say no settlement will come
/// for (see [`is_never_settled`]).
fn never_settled<'a>(notes: impl Iterator<Item = &'a str>) -> NeverSettled {
    use crate::client::{
        ACCEPTED_MORE_THAN_ONCE_NOTE, ACCEPTED_THEN_FAILED_NOTE, DROPPED_SUBMISSION_NOTE,
    };
    let mut said = NeverSettled::No;
    for note in notes {
        if note == ACCEPTED_THEN_FAILED_NOTE || note == DROPPED_SUBMISSION_NOTE {
            return NeverSettled::All;
        }
        if note == ACCEPTED_MORE_THAN_ONCE_NOTE {
            said = NeverSettled::InPart;
        }
    }
    said
}

/// Whether a receipt with these notes is one `MeteringInterceptor` made
/// ([`INTERCEPTOR_NOTE`]): of an async invocation, the call's only receipt (see
/// [`is_settlement`]); one rule for receipts and for ledger rows read without
/// making a receipt.
pub(crate) fn is_by_interceptor<'a>(mut notes: impl Iterator<Item = &'a str>) -> bool {
    notes.any(|note| note == INTERCEPTOR_NOTE)
}

impl Cost {
    /// Whether `MeteringInterceptor` made this receipt (noted "metered by the SDK
    /// interceptor"): of an `InvokeEndpointAsync` call, the invocation's only
    /// receipt, neither its submission nor its settlement.
    pub(crate) fn is_by_interceptor(&self) -> bool {
        is_by_interceptor(self.notes.iter().map(String::as_str))
    }

    /// Whether this is the second receipt of an asynchronous invocation
    /// (`InvokeEndpointAsync`), its **settlement** (compute, data out, tokens),
    /// rather than its submission (data in, the per-inference fee): one call, two
    /// receipts. Told by the note the client writes on it, or by a line or a
    /// figure only a settlement has, on a receipt without a line only a
    /// submission has. The one receipt `MeteringInterceptor` makes of an async
    /// call (noted "metered by the SDK interceptor") is the call itself, never a
    /// settlement, even when its only lines are per-token ones.
    pub fn is_async_settlement(&self) -> bool {
        self.usage.operation == crate::usage::Operation::InvokeEndpointAsync
            && is_settlement(
                self.lines.iter().map(|l| l.item),
                self.usage.bytes_out,
                self.usage.input_tokens.is_some() || self.usage.output_tokens.is_some(),
                self.notes.iter().map(String::as_str),
            )
    }

    /// Whether this serverless call started beyond its variant's provisioned
    /// concurrency and was billed on demand, at the serverless rate (AWS bills
    /// it under `ServerlessInf:Mem-<N>GB`, not the provisioned concurrency's
    /// usage type). Told by the note that says so.
    pub fn is_beyond_provisioned(&self) -> bool {
        matches!(
            &self.billing,
            Some(VariantBilling::Serverless {
                provisioned_concurrency: Some(_),
                ..
            })
        ) && self
            .notes
            .iter()
            .any(|n| n.ends_with(BEYOND_PROVISIONED_NOTE_END))
    }

    /// True when every line has a price.
    pub fn is_fully_priced(&self) -> bool {
        self.lines
            .iter()
            .all(|l| matches!(l.price, LinePrice::Priced { .. }))
    }

    /// True when some line was priced from a fallback
    /// ([`Provenance::is_fallback`]: the bundled snapshot, or a cached price
    /// served stale or kept after a failed refresh).
    pub fn is_priced_from_fallback(&self) -> bool {
        self.lines.iter().any(|l| match &l.price {
            LinePrice::Priced { provenance, .. } => provenance.is_fallback(),
            LinePrice::Unpriced { .. } => false,
        })
    }

    /// Reasons of the unpriced lines.
    pub fn unpriced_reasons(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match &l.price {
            LinePrice::Unpriced { reason } => Some(reason.as_str()),
            LinePrice::Priced { .. } => None,
        })
    }

    /// The least fresh source among the priced lines (override < live < cache <
    /// snapshot), `None` when nothing is priced. This is what logs call `price_source`.
    pub fn price_source(&self) -> Option<PriceOrigin> {
        self.lines
            .iter()
            .filter_map(|l| match &l.price {
                LinePrice::Priced { provenance, .. } => Some(provenance.source),
                LinePrice::Unpriced { .. } => None,
            })
            .max()
    }

    /// The provenance of the compute line, when priced: of the first, when an
    /// amortised receipt has one per rate its gap accrued at (see
    /// [`Allocation::Amortized`](crate::billing::Allocation::Amortized)).
    pub fn compute_provenance(&self) -> Option<&Provenance> {
        self.lines.iter().find_map(|l| match (&l.item, &l.price) {
            (crate::billing::LineItem::Compute, LinePrice::Priced { provenance, .. }) => {
                Some(provenance)
            }
            _ => None,
        })
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "${} for {} on {}",
            self.cost_usd, self.usage.operation, self.endpoint
        )?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        if let Some(component) = &self.inference_component {
            write!(f, " component {component}")?;
        }
        if let Some(model) = &self.target_model {
            write!(f, " model {model}")?;
        }
        write!(f, " ({} ms", self.usage.latency.as_millis())?;
        // `?` for a count the response did not report (TGI reports no input).
        let (input, output) = (self.usage.input_tokens, self.usage.output_tokens);
        if input.is_some() || output.is_some() {
            let count = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
            write!(f, ", {}+{} tokens", count(input), count(output))?;
        }
        write!(f, "); running ${}", self.running_client_usd)?;
        match self.price_source() {
            Some(source) => write!(f, " [{source}]")?,
            // No line at all (an async submission on an endpoint priced by the
            // token alone: the settlement bills the tokens) is a $0 that is
            // right, not one that could not be priced.
            None if self.lines.is_empty() => f.write_str(" [nothing billed]")?,
            None => f.write_str(" [unpriced]")?,
        }
        if !self.is_fully_priced() {
            let reasons: Vec<_> = self.unpriced_reasons().collect();
            write!(f, " UNPRICED: {}", reasons.join("; "))?;
        }
        Ok(())
    }
}

/// Amounts serialised as rust_decimal writes them (a JSON string, every digit of
/// the scale kept), with the mantissa's digits written by `itoa` instead of
/// rust_decimal's 96-bit loop: a receipt carries about fifteen of them, and the
/// ledger writes every receipt. Read back from JSON strings only ([`deserialize`](amount::deserialize)).
pub(crate) mod amount {
    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Longest text of a decimal: sign, 29 digits, a leading zero and the point.
    pub(crate) const MAX_LEN: usize = 32;

    pub(super) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; MAX_LEN];
        s.serialize_str(text(d, &mut buf))
    }

    /// An amount from a JSON string only, as [`serialize`] writes it: a JSON
    /// number reaches a deserializer as an `f64`, which keeps about 17
    /// significant digits (`0.1234567890123456789` would read as
    /// `0.12345678901234568`), so it is refused, not rounded silently. The
    /// string is read by [`exact`] too. Every amount [`serialize`] writes reads
    /// back, the very same decimal.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        Exact::deserialize(d).map(|Exact(d)| d)
    }

    /// The decimal text `s` read exactly: the one rule for every amount a ledger
    /// holds as text (both JSON Lines formats, the Parquet lines' quantities and
    /// rates). Text with more significant digits than a `Decimal` holds is
    /// refused, where `Decimal::from_str` would round it
    /// (`0.00000000000000000000000000015` to `0.0000000000000000000000000002`).
    pub(crate) fn exact(s: &str) -> Result<Decimal, rust_decimal::Error> {
        Decimal::from_str_exact(s)
    }

    /// An amount read by [`deserialize`]: the one reading of both ledger formats.
    struct Exact(Decimal);

    impl<'de> Deserialize<'de> for Exact {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ExactVisitor;
            impl Visitor<'_> for ExactVisitor {
                type Value = Exact;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a decimal string with no more digits than a decimal holds")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Exact, E> {
                    exact(s)
                        .map(Exact)
                        .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
                }
            }
            d.deserialize_str(ExactVisitor)
        }
    }

    /// An amount that may be null, as [`serialize`] and [`deserialize`] do it.
    pub(crate) mod option {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in crate::billing) fn serialize<S: Serializer>(
            d: &Option<Decimal>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Decimal>, D::Error> {
            Option::<super::Exact>::deserialize(d).map(|d| d.map(|super::Exact(d)| d))
        }
    }

    /// `d` as rust_decimal's `Serialize` writes it.
    pub(crate) fn text<'a>(d: &Decimal, buf: &'a mut [u8; MAX_LEN]) -> &'a str {
        // Every byte written is ASCII.
        std::str::from_utf8(ascii(d, buf)).unwrap_or("0")
    }

    /// [`text`] as bytes: the mantissa's digits (two at a time, by `itoa`), with
    /// the point placed by the scale.
    pub(crate) fn ascii<'a>(d: &Decimal, buf: &'a mut [u8; MAX_LEN]) -> &'a [u8] {
        let mut itoa = itoa::Buffer::new();
        let digits = itoa.format(d.mantissa().unsigned_abs()).as_bytes();
        let scale = d.scale() as usize;
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        if d.is_sign_negative() {
            put(b"-");
        }
        match digits.len().checked_sub(scale) {
            Some(whole) if whole > 0 => {
                put(&digits[..whole]);
                if scale > 0 {
                    put(b".");
                    put(&digits[whole..]);
                }
            }
            // All digits are decimals: a leading zero, then zeros up to them.
            _ => {
                put(b"0.");
                for _ in digits.len()..scale {
                    put(b"0");
                }
                put(digits);
            }
        }
        &buf[..len]
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            #[test]
            fn amounts_serialise_as_rust_decimal_writes_them(
                m in 0u128..(1 << 96),
                scale in 0u32..=28,
                negative: bool,
            ) {
                let d = Decimal::from_i128_with_scale(m as i128, scale);
                let d = if negative { -d } else { d };
                let mut buf = [0u8; MAX_LEN];
                let ours = format!("\"{}\"", text(&d, &mut buf));
                prop_assert_eq!(ours, serde_json::to_string(&d).unwrap());
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// What both ledger formats read an amount with reads every one
            /// [`serialize`] writes: the same value, scale and sign.
            #[test]
            fn every_amount_written_reads_back_the_same_decimal(
                m in 0u128..(1 << 96),
                scale in 0u32..=28,
                negative: bool,
            ) {
                let d = Decimal::from_i128_with_scale(m as i128, scale);
                let d = if negative { -d } else { d };
                let mut buf = [0u8; MAX_LEN];
                let json = format!("\"{}\"", text(&d, &mut buf));
                let read = deserialize(&mut serde_json::Deserializer::from_str(&json)).unwrap();
                prop_assert_eq!(read, d);
                prop_assert_eq!(read.scale(), d.scale());
                prop_assert_eq!(read.is_sign_negative(), d.is_sign_negative());
                let read = option::deserialize(&mut serde_json::Deserializer::from_str(&json));
                prop_assert_eq!(read.unwrap(), Some(d));
            }
        }

        /// A decimal holds 28 digits after the point: `from_str` rounds a 29th
        /// (`…15` to `…2`), so an amount with one is refused, not read as another.
        #[test]
        fn an_amount_with_more_digits_than_a_decimal_holds_is_refused_not_rounded() {
            let read = |json: &str| deserialize(&mut serde_json::Deserializer::from_str(json));
            let read_option =
                |json: &str| option::deserialize(&mut serde_json::Deserializer::from_str(json));
            for json in [
                r#""0.00000000000000000000000000015""#,
                r#""79228162514264337593543950335.5""#,
                r#""792281625142643375935439503351""#,
            ] {
                assert!(read(json).is_err(), "read {json} rounded");
                assert!(read_option(json).is_err(), "read {json} rounded");
            }
            // The most digits a decimal holds, read exactly; null is no amount.
            let most = Decimal::from_i128_with_scale(15, 28);
            assert_eq!(read(r#""0.0000000000000000000000000015""#).unwrap(), most);
            assert_eq!(
                read(r#""79228162514264337593543950335""#).unwrap(),
                Decimal::MAX
            );
            assert_eq!(read_option("null").unwrap(), None);
        }

        #[test]
        fn small_and_round_amounts_serialise_as_rust_decimal_writes_them() {
            for s in [
                "0",
                "0.000",
                "1",
                "10",
                "0.5",
                "-0.5",
                "0.000015972222",
                "120.00",
                "-7",
            ] {
                let d: Decimal = s.parse().unwrap();
                let mut buf = [0u8; MAX_LEN];
                let ours = format!("\"{}\"", text(&d, &mut buf));
                assert_eq!(ours, serde_json::to_string(&d).unwrap(), "{s}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{Operation, Outcome};
    use std::time::Duration;

    fn line(item: LineItem, unit: QuantityUnit, cost_usd: Option<&str>) -> CostLine {
        CostLine {
            item,
            quantity: Decimal::ZERO,
            unit,
            price: match cost_usd {
                Some(usd) => LinePrice::Priced {
                    usd_per_unit: "0.016".parse().unwrap(),
                    cost_usd: usd.parse().unwrap(),
                    provenance: Provenance::new(PriceOrigin::Snapshot),
                },
                None => LinePrice::Unpriced {
                    reason: "not seen".into(),
                },
            },
        }
    }

    /// A receipt of an `InvokeEndpointAsync` call with `lines` and `notes`.
    fn async_receipt(lines: Vec<CostLine>, notes: &[&str]) -> Cost {
        Cost {
            call_id: "async-req-1".into(),
            at: DateTime::<Utc>::from(std::time::UNIX_EPOCH),
            endpoint: "jobs".into(),
            variant: Some("AllTraffic".into()),
            inference_component: None,
            target_model: None,
            billing: None,
            allocation: Allocation::default(),
            usage: Usage::new(Operation::InvokeEndpointAsync, Duration::from_millis(40))
                .with_outcome(Outcome::Ok),
            cost_usd: lines.iter().filter_map(CostLine::cost_usd).sum(),
            lines,
            currency: "USD".into(),
            region: None,
            running_client_usd: Decimal::ZERO,
            running_endpoint_usd: Decimal::ZERO,
            running_fleet_usd: None,
            accrual: None,
            tags: BTreeMap::new(),
            notes: notes.iter().map(|n| (*n).to_owned()).collect(),
            settled_before: None,
        }
    }

    #[test]
    fn a_receipt_without_lines_reads_as_nothing_billed_not_as_unpriced() {
        // An async submission on an endpoint priced by the token alone
        // (`UsageCharges::alone`, no fee per call): nothing is billed until the
        // settlement counts the tokens.
        let submission = async_receipt(Vec::new(), &[]);
        assert!(submission.is_fully_priced());
        let text = submission.to_string();
        assert!(text.ends_with("running $0 [nothing billed]"), "{text}");
        let unpriced = async_receipt(
            vec![line(LineItem::OutputTokens, QuantityUnit::Tokens, None)],
            &[],
        );
        let text = unpriced.to_string();
        assert!(text.contains("[unpriced] UNPRICED: "), "{text}");
    }

    #[test]
    fn an_async_invocations_only_receipt_is_not_taken_for_its_settlement() {
        // What MeteringInterceptor makes of an InvokeEndpointAsync call: one
        // receipt, the invocation's only one (data in, the compute it cannot see
        // unpriced, data out). It is the call, not the second half of one:
        // metrics, EMF, reports and ledger profiles must count it as an invocation.
        let only = async_receipt(
            vec![
                line(LineItem::Compute, QuantityUnit::InstanceHours, None),
                line(LineItem::DataIn, QuantityUnit::Gigabytes, Some("0")),
                line(LineItem::DataOut, QuantityUnit::Gigabytes, Some("0")),
                line(LineItem::Inference, QuantityUnit::Calls, Some("0.001")),
            ],
            &["metered by the SDK interceptor"],
        );
        assert!(!only.is_async_settlement(), "{:?}", only.lines);
        // A client's two receipts of one invocation are still told apart: the
        // submission bills data in and the fee; the settlement (compute, data
        // out, with the client's note) neither.
        let submission = async_receipt(
            vec![
                line(
                    LineItem::DataIn,
                    QuantityUnit::Gigabytes,
                    Some("0.000015625"),
                ),
                line(LineItem::Inference, QuantityUnit::Calls, Some("0.001")),
            ],
            &[],
        );
        assert!(!submission.is_async_settlement());
        let settlement = async_receipt(
            vec![
                line(
                    LineItem::Compute,
                    QuantityUnit::InstanceHours,
                    Some("0.0023"),
                ),
                line(LineItem::DataOut, QuantityUnit::Gigabytes, Some("0")),
            ],
            &["settlement of the async invocation submitted at 2026-12-01T10:00:00+00:00"],
        );
        assert!(settlement.is_async_settlement());
        // A settlement from a ledger written before the client noted it: told by
        // its lines alone.
        let unnoted = async_receipt(settlement.lines.clone(), &[]);
        assert!(unnoted.is_async_settlement());
    }

    #[test]
    fn the_interceptors_receipt_of_an_async_call_with_token_lines_only_is_the_call() {
        // An endpoint priced by the token alone (`UsageCharges::alone`, no fee per
        // call): the interceptor's receipt has no data-in or fee line, only token
        // lines, unpriced (the output is in S3: no counts). Its note says who made
        // it, and the interceptor makes no settlements.
        let only = async_receipt(
            vec![
                line(LineItem::InputTokens, QuantityUnit::Tokens, None),
                line(LineItem::OutputTokens, QuantityUnit::Tokens, None),
            ],
            &[INTERCEPTOR_NOTE],
        );
        assert!(!only.is_async_settlement(), "{:?}", only.lines);
        // A client's settlement on the same endpoint has the same lines, and is
        // told by its own note.
        let settlement = async_receipt(
            only.lines.clone(),
            &["settlement of the async invocation submitted at 2026-12-01T10:00:00+00:00"],
        );
        assert!(settlement.is_async_settlement());
    }

    #[test]
    fn a_cached_rate_is_a_fallback_by_the_caches_own_notes_not_by_having_a_note() {
        let source = |origin, note: Option<&str>| {
            AccrualSource::new(AccrualCharge::Capacity, origin, note.map(Arc::from))
        };
        // A live answer's notes, kept when the cache serves the answer again: a
        // fresh price, no fallback.
        let pc = "SKU PCUSAGE is the standing charge per second provisioned per its group \
                  (ServerlessInference); skipped 1 $0 row(s)";
        let announced = "rate of the term effective 2026-09-01T00:00:00Z, announced in the \
                         Price List answer fetched 2026-08-31T22:00:00Z";
        let changed = "price changed: 0.2 per hour (effective 2026-09-01), was 0.23 \
                       (effective 2026-05-01) (-13.04%)";
        for note in [pc, announced, changed, "skipped 2 $0 row(s)"] {
            assert!(
                !source(PriceOrigin::Cache, Some(note)).is_fallback(),
                "{note}"
            );
            assert!(
                !source(PriceOrigin::Live, Some(note)).is_fallback(),
                "{note}"
            );
        }
        assert!(!source(PriceOrigin::Cache, None).is_fallback());
        // The cache's own notes: stale, replaced by a term, kept after a failed
        // refresh (after a change note too), the fallback's after a failure.
        let stale = format!("cached price older than its TTL; a refresh is under way; {pc}");
        let replaced = "cached price replaced by a term effective 2026-09-01T00:00:00Z; a \
                        refresh is under way";
        let kept = format!(
            "{changed}; refresh failed (price source unavailable: HTTP 500); kept the last \
             good price, fetched 2026-08-31T22:00:00Z; {announced}"
        );
        let primary = "primary price source failed (HTTP 500); bundled price snapshot";
        for note in [stale.as_str(), replaced, kept.as_str()] {
            assert!(
                source(PriceOrigin::Cache, Some(note)).is_fallback(),
                "{note}"
            );
        }
        assert!(source(PriceOrigin::Snapshot, Some(primary)).is_fallback());
        assert!(source(PriceOrigin::Snapshot, None).is_fallback());
        assert!(!source(PriceOrigin::Override, None).is_fallback());
    }
}
