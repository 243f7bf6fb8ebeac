//! The fleet table's requests: one function per thing the fleet asks of DynamoDB.
//!
//! Every money attribute is an integer number of pico-USD, written and read as a
//! DynamoDB number without exponent or fraction. Every write that adds is
//! conditional on a per-process sequence number, so a write retried after a
//! timeout (it may have been applied) is applied once.

use crate::budget::BudgetMode;
use crate::pricing::PriceOrigin;
use crate::totals::RateFrom;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::timeout::TimeoutConfig;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The TTL attribute (epoch seconds): DynamoDB deletes an item some time after it.
pub const EXPIRES_AT: &str = "expires_at";
/// Spend in the period, pico-USD (spend items).
pub(crate) const SPENT: &str = "spent_pico";
/// Calls in the period (spend items).
pub(crate) const CALLS: &str = "calls";
/// Charged to the scope's enforced budgets beyond its receipts, for calls that
/// could not be fully priced (their reserved estimate, never $0) and for async
/// holds that lapsed (charged provisionally, taken back as their settlements'
/// receipts come: below 0 in a period where such a receipt counts in part
/// only), pico-USD (spend items). A budget counts `spent_pico` plus this.
pub(crate) const UNPRICED: &str = "unpriced_charge_pico";
/// Leases granted minus unused parts returned, pico-USD (spend items of budgets).
pub(crate) const COMMITTED: &str = "committed_pico";
/// The limit the last process to lease wrote, pico-USD (spend items of budgets).
pub(crate) const LIMIT: &str = "limit_pico";
/// Alert thresholds passed, a number set of percents, as versions that marked
/// them per scope and period wrote them (spend items of budgets): read only.
pub(crate) const ALERTED: &str = "alerted";
/// Alert thresholds one budget passed, a number set of percents,
/// `alerted:<mode>:<limit in pico-USD>` (spend items of budgets): each budget of
/// a scope and period has its own, as each has its own thresholds.
pub(crate) const ALERTED_PREFIX: &str = "alerted:";

/// The attribute holding the alert thresholds passed by the budget of `mode`
/// and `limit` pico-USD (see [`ALERTED_PREFIX`]).
pub(crate) fn alert_mark(mode: BudgetMode, limit: i128) -> String {
    let mode = match mode {
        BudgetMode::Enforce => "enforce",
        _ => "alert",
    };
    format!("{ALERTED_PREFIX}{mode}:{limit}")
}

/// Which process marked `percent` in the alert mark `mark` (see [`alert_mark`]):
/// `alert_by:<mode>:<limit>:<percent>`, a string attribute holding the process's
/// name, so that a retried mark whose answer was lost is known for its own.
pub(crate) fn alert_by(mark: &str, percent: u32) -> String {
    let budget = mark.strip_prefix(ALERTED_PREFIX).unwrap_or(mark);
    format!("{ALERT_BY_PREFIX}{budget}:{percent}")
}

/// The prefix of [`alert_by`]'s attributes.
pub(crate) const ALERT_BY_PREFIX: &str = "alert_by:";

/// The budget an attribute named by [`alert_mark`] is of: its mode and limit.
pub(crate) fn alert_mark_of(name: &str) -> Option<(BudgetMode, i128)> {
    let (mode, limit) = name.strip_prefix(ALERTED_PREFIX)?.split_once(':')?;
    let mode = match mode {
        "enforce" => BudgetMode::Enforce,
        "alert" => BudgetMode::Alert,
        _ => return None,
    };
    Some((mode, limit.parse().ok()?))
}
/// Per variant spend, `variant:<name>` (endpoint spend items).
pub(crate) const VARIANT_PREFIX: &str = "variant:";
/// Per variant calls, `calls:<variant>` (endpoint spend items): every process's
/// calls served by the variant, whose share of them prices its amortised gaps.
pub(crate) const VARIANT_CALLS_PREFIX: &str = "calls:";
/// A process's lease of the budget, `lease_granted:<process>`: the amount
/// granted, pico-USD (spend items of budgets).
pub(crate) const GRANTED_PREFIX: &str = "lease_granted:";
/// What the process has spent of its lease, as flushed, `lease_used:<process>`.
pub(crate) const USED_PREFIX: &str = "lease_used:";
/// Until when the lease holds, epoch ms, `lease_until:<process>`.
pub(crate) const UNTIL_PREFIX: &str = "lease_until:";
/// A process's average calls in flight on the endpoint over its last flush
/// interval, in thousandths, `inflight:<process>` (endpoint items).
pub(crate) const LOAD_PREFIX: &str = "inflight:";
/// When that was written, epoch ms, `inflight_at:<process>`.
pub(crate) const LOAD_AT_PREFIX: &str = "inflight_at:";
/// How long after that the load still counts, ms, `inflight_for:<process>`: the
/// writer's own horizon (three of its flush intervals, at least a second), as
/// it writes its load again only once an interval. Absent (written by a
/// version before it): the reader's own horizon.
pub(crate) const LOAD_FOR_PREFIX: &str = "inflight_for:";
/// Compute allocated to a variant's calls by every process, `allocated:<variant>`,
/// pico-USD (endpoint items).
pub(crate) const ALLOCATED_PREFIX: &str = "allocated:";
/// The fleet's first metered call to a variant in the period, epoch ms,
/// `accrual_from:<variant>` (endpoint items).
pub(crate) const ACCRUAL_FROM_PREFIX: &str = "accrual_from:";
/// A standing rate of a variant from a time on, `rate:<variant>:<epoch ms>`
/// (endpoint items of the day): a map of the hourly cost of the variant's
/// standing capacity in pico-USD ([`RATE_PICO_PER_HOUR`]) and where that rate
/// came from ([`RATE_SOURCE`], [`RATE_NOTE`]). Written with `if_not_exists`:
/// the first writer of a stretch keeps it. The fleet's accrual prices each
/// stretch at its own rate, until the next one starts.
pub(crate) const RATE_PREFIX: &str = "rate:";
/// A stretch's hourly cost, pico-USD (an integer number).
pub(crate) const RATE_PICO_PER_HOUR: &str = "pico_per_hour";
/// A stretch's price source (`live`, `cache`, `snapshot`, `override`).
pub(crate) const RATE_SOURCE: &str = "source";
/// Why the stretch's rate came from a fallback, when it did.
pub(crate) const RATE_NOTE: &str = "note";
/// `true` on a stretch from the date of a term the Price List answer announced
/// ahead (the stretch begins at the term's date, at its rate); absent on a
/// stretch from a process's look-up. A version that does not know it reads the
/// stretch as any other.
pub(crate) const RATE_TERM: &str = "term";
/// The last sequence number of a process's flushes applied to an item.
pub(crate) const SEQ_PREFIX: &str = "seq:";
/// The sequence number of a process's last lease request applied to a budget's
/// item, `lease_seq:<process>`: a request retried after its answer was lost is
/// applied once.
pub(crate) const LEASE_SEQ_PREFIX: &str = "lease_seq:";

/// The partition key prefix of a settled async invocation's item,
/// `settled#<call id>` (sort key `endpoint#<name>`): written once, by the
/// process whose settlement came first, so that a second settlement of the same
/// invocation in any process of the fleet is known for a duplicate.
pub(crate) const SETTLED_PREFIX: &str = "settled#";
/// Which settlement wrote a settled item (`<process>#<n>`): a write retried
/// after its answer was lost finds its own mark, and is not a duplicate.
pub(crate) const SETTLED_BY: &str = "settled_by";
/// When the invocation was settled, epoch ms (settled items).
pub(crate) const SETTLED_AT: &str = "settled_at_ms";
/// Until when the settlement that marked the invocation has to make its
/// receipt, epoch ms (settled items): a mark still not billed after it (and the
/// clock skew allowed) is another settlement's to take over.
pub(crate) const CLAIM_UNTIL: &str = "claim_until_ms";
/// When the settlement that marked the invocation made its receipt, epoch ms
/// (settled items): a billed mark is final.
pub(crate) const BILLED_AT: &str = "billed_at_ms";

/// How marking an async invocation settled in the table ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// Marked now (or by this very settlement's earlier attempt): the first.
    First,
    /// Marked now in place of another settlement's mark, `from` (its
    /// `settled_by`), never billed by its claim's end: this one bills it.
    TakenOver { from: String },
    /// Another settlement marked it before, at `at_ms` (epoch ms, when known),
    /// and billed it (or marked it as an earlier version did, as its receipt
    /// was made): final.
    Before { at_ms: Option<i64> },
    /// Another settlement marked it at `at_ms` (epoch ms, when known) and has
    /// not billed it yet, its claim running until `until_ms` (epoch ms): it is
    /// due to bill it, but may never (its process killed before its receipt),
    /// so a later copy is to ask again, and takes the mark over once the claim
    /// ended.
    InProgress { at_ms: Option<i64>, until_ms: i64 },
}

/// Why a request to the table failed, as far as the fleet acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Failure {
    /// Throttled (throughput exceeded, request limit).
    Throttled,
    /// The table does not exist (or is not visible to these credentials).
    NoTable,
    /// No answer: connection refused, timed out.
    Unreachable,
    /// The credentials lack the IAM permission for the request.
    Denied,
    /// Never sent: the SDK could not get the credentials to sign it (an expired
    /// SSO session, say) or resolve the table's endpoint. (A request it could
    /// not build is [`Other`](Self::Other), applying nothing too.)
    NotSent,
    /// Anything else (validation, say).
    Other,
}

impl Failure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Throttled => "throttled",
            Failure::NoTable => "table not found",
            Failure::Unreachable => "unreachable",
            Failure::Denied => "access denied",
            Failure::NotSent => "not sent",
            Failure::Other => "request failed",
        }
    }
}

/// A failed request: its kind and the service's words (never a payload).
#[derive(Debug, Clone)]
pub(crate) struct TableError {
    pub kind: Failure,
    pub message: String,
    /// The request may have been applied though its answer said otherwise or
    /// never came: no answer (timed out, connection lost), a throttling or a
    /// server error (5xx) after which the SDK's retries gave up, an answer that
    /// could not be read. False for a refusal (missing table, access denied,
    /// invalid request), which applies nothing.
    pub maybe_applied: bool,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl<E> From<SdkError<E, HttpResponse>> for TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        let code = err.code().unwrap_or_default();
        // Refused by the SDK before anything was sent (the credentials, the
        // endpoint, the request itself): applied nothing, and no connection
        // was tried.
        let not_sent = crate::error::sdk_refused(&err);
        let kind = match (&err, code) {
            (SdkError::DispatchFailure(_), _) if not_sent => Failure::NotSent,
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _) => Failure::Unreachable,
            (_, "ResourceNotFoundException") => Failure::NoTable,
            (_, "AccessDeniedException" | "AccessDenied") => Failure::Denied,
            (
                _,
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "Throttling",
            ) => Failure::Throttled,
            _ => Failure::Other,
        };
        let maybe_applied = match &err {
            _ if not_sent => false,
            SdkError::ServiceError(e) => {
                kind == Failure::Throttled || e.raw().status().is_server_error()
            }
            _ => true,
        };
        let message = match err.message() {
            // Never the caller's identity ("User: arn:… is not authorized"), nor
            // what the message quotes of a signed request (the session token).
            Some(m) => format!("{code} {}", crate::redact::without_identity(m))
                .trim()
                .to_owned(),
            None => match &err {
                // Why, safe to show: without the caller's identity, a URL's
                // password, a signed request, a credential process's output.
                SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
                    crate::redact::error_chain(&err)
                }
                SdkError::TimeoutError(_) => "timed out".to_owned(),
                _ => code.to_owned(),
            },
        };
        TableError {
            kind,
            message,
            maybe_applied,
        }
    }
}

/// How long one attempt of a table request may take (unless the client sets it).
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a table request may take, its retries included (unless the client
/// sets it).
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to the table may take (unless the client sets it).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `client` with the fleet's time limits on each request wherever it sets
/// none of its own: the SDK has no operation or read timeout by default, so a
/// stalled connection would hang a flush (holding it for every later one, and
/// for `shutdown()`), `fleet status` or `fleet init` forever. A limit the
/// client sets (or disables explicitly) is kept.
pub(crate) fn with_time_limits(client: &Client) -> Client {
    let config = client.config();
    let mut limits = config
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| TimeoutConfig::builder().build());
    limits.take_defaults_from(
        &TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build(),
    );
    Client::from_conf(config.to_builder().timeout_config(limits).build())
}

/// The fleet table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub client: Client,
    pub name: String,
}

fn n(value: i128) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The largest magnitude an integer attribute is read as: 2⁹⁶ − 1, about
/// 7.9·10²⁸ (in pico-USD, 7.9·10¹⁶ USD, far beyond any spend; the most a
/// `Decimal` holds). A larger figure can only be a corrupt item: it is read as
/// this bound, so that the sums and products made of a few such figures never
/// overflow.
pub(crate) const MAX_READ: i128 = (1 << 96) - 1;

/// An integer number attribute, saturated at ±[`MAX_READ`] (`None`: absent, or
/// not an integer: sagemeter writes integers only).
pub(crate) fn int(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i128> {
    match item.get(name)? {
        AttributeValue::N(text) => bounded_int(text),
        _ => None,
    }
}

/// The attributes of `item` that sagemeter writes as integer numbers (spend,
/// calls, limits, leases, accruals, sequence numbers) or as standing-rate maps,
/// but that hold something else: only a hand-edited or corrupt item has one.
/// [`int`] reads each as absent, so a figure made of it would be low, or $0;
/// whoever shows the figure names these instead. Sorted.
pub(crate) fn unreadable_figures(item: &HashMap<String, AttributeValue>) -> Vec<String> {
    const FIGURES: [&str; 5] = [SPENT, CALLS, UNPRICED, COMMITTED, LIMIT];
    const PER_NAME: [&str; 12] = [
        VARIANT_PREFIX,
        VARIANT_CALLS_PREFIX,
        GRANTED_PREFIX,
        USED_PREFIX,
        UNTIL_PREFIX,
        LOAD_PREFIX,
        LOAD_AT_PREFIX,
        LOAD_FOR_PREFIX,
        ALLOCATED_PREFIX,
        ACCRUAL_FROM_PREFIX,
        SEQ_PREFIX,
        LEASE_SEQ_PREFIX,
    ];
    let mut names: Vec<String> = item
        .iter()
        .filter(|(name, value)| {
            if name.starts_with(RATE_PREFIX) {
                return StandingStretch::read(value).is_none();
            }
            let figure = FIGURES.contains(&name.as_str())
                || PER_NAME.iter().any(|prefix| name.starts_with(prefix));
            figure && !matches!(value, AttributeValue::N(text) if bounded_int(text).is_some())
        })
        .map(|(name, _)| name.clone())
        .collect();
    names.sort_unstable();
    names
}

/// `text` as an integer saturated at ±[`MAX_READ`], however many digits it has.
fn bounded_int(text: &str) -> Option<i128> {
    if let Ok(value) = text.parse::<i128>() {
        return Some(value.clamp(-MAX_READ, MAX_READ));
    }
    // Too many digits for an `i128`: its sign's bound.
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(if negative {
        -MAX_READ
    } else {
        MAX_READ
    })
}

/// What one flush adds to an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    pub spent: i128,
    pub calls: u64,
    /// Charged to the item's budgets beyond the receipts (see [`UNPRICED`]).
    pub unpriced: i128,
    /// Per variant (endpoint items).
    pub variants: BTreeMap<String, i128>,
    /// Calls per variant (endpoint items), of `calls`.
    pub variant_calls: BTreeMap<String, u64>,
    /// Compute allocated per variant (endpoint items), for the fleet's accrual.
    pub allocated: BTreeMap<String, i128>,
    /// Per variant, the earliest start (epoch ms) of this process's calls in the
    /// delta: the fleet keeps the earliest one written as its accrual's start.
    pub first_call_ms: BTreeMap<String, i64>,
    /// Standing rates this process saw take effect, by variant and epoch ms
    /// (endpoint items): each written if the item holds none of that variant
    /// and time.
    pub rates: BTreeMap<(String, i64), StandingStretch>,
    /// The write reads the whole item back: this process has stretches to
    /// compare with those the table holds.
    pub read_back: bool,
}

/// A variant's standing rate from a time on, as an endpoint item holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StandingStretch {
    /// What the variant's standing capacity costs an hour, pico-USD.
    pub pico_per_hour: i128,
    /// Where that rate came from.
    pub from: RateFrom,
    /// The stretch begins at the date of a term the Price List answer
    /// announced ahead ([`RATE_TERM`]), not at a process's look-up.
    pub term: bool,
}

impl StandingStretch {
    fn value(&self) -> AttributeValue {
        let (origin, note) = &self.from;
        let mut map = HashMap::from([
            (RATE_PICO_PER_HOUR.to_owned(), n(self.pico_per_hour)),
            (RATE_SOURCE.to_owned(), s(origin.as_str())),
        ]);
        if let Some(note) = note {
            map.insert(RATE_NOTE.to_owned(), s(note));
        }
        if self.term {
            map.insert(RATE_TERM.to_owned(), AttributeValue::Bool(true));
        }
        AttributeValue::M(map)
    }

    /// The stretch a `rate:` attribute holds (`None`: not one sagemeter wrote).
    fn read(value: &AttributeValue) -> Option<StandingStretch> {
        let AttributeValue::M(map) = value else {
            return None;
        };
        let pico_per_hour = int(map, RATE_PICO_PER_HOUR).filter(|p| *p >= 0)?;
        let origin = match map.get(RATE_SOURCE)? {
            AttributeValue::S(text) => match text.as_str() {
                "override" => PriceOrigin::Override,
                "live" => PriceOrigin::Live,
                "cache" => PriceOrigin::Cache,
                "snapshot" => PriceOrigin::Snapshot,
                _ => return None,
            },
            _ => return None,
        };
        let note = match map.get(RATE_NOTE) {
            Some(AttributeValue::S(note)) => Some(Arc::from(note.as_str())),
            _ => None,
        };
        Some(StandingStretch {
            pico_per_hour,
            from: (origin, note),
            term: matches!(map.get(RATE_TERM), Some(AttributeValue::Bool(true))),
        })
    }
}

impl Delta {
    pub(crate) fn is_empty(&self) -> bool {
        self.spent == 0
            && self.calls == 0
            && self.unpriced == 0
            && self.variants.values().all(|v| *v == 0)
            && self.variant_calls.values().all(|c| *c == 0)
            && self.allocated.values().all(|v| *v == 0)
            && self.rates.is_empty()
    }
}

/// A variant's accrual across the fleet, as an endpoint item holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FleetAccrual {
    /// Compute allocated by every process's receipts in the period, pico-USD.
    pub allocated: i128,
    /// The fleet's first metered call to the variant in the period, epoch ms.
    pub from_ms: Option<i64>,
    /// The variant's standing rates, each from its epoch ms on (empty in items
    /// written by versions before them).
    pub rates: BTreeMap<i64, StandingStretch>,
}

/// The variants' fleet accruals an item's returned attributes hold.
fn accruals_in(item: &HashMap<String, AttributeValue>) -> BTreeMap<String, FleetAccrual> {
    let mut found: BTreeMap<String, FleetAccrual> = BTreeMap::new();
    for name in item.keys() {
        if let Some(variant) = name.strip_prefix(ALLOCATED_PREFIX) {
            found.entry(variant.to_owned()).or_default().allocated = int(item, name).unwrap_or(0);
        } else if let Some(variant) = name.strip_prefix(ACCRUAL_FROM_PREFIX) {
            found.entry(variant.to_owned()).or_default().from_ms =
                int(item, name).and_then(|v| i64::try_from(v).ok());
        } else if let Some((variant, from_ms)) = name
            .strip_prefix(RATE_PREFIX)
            .and_then(|rest| rest.rsplit_once(':'))
        {
            let (Ok(from_ms), Some(stretch)) = (
                from_ms.parse::<i64>(),
                item.get(name).and_then(StandingStretch::read),
            ) else {
                continue;
            };
            found
                .entry(variant.to_owned())
                .or_default()
                .rates
                .insert(from_ms, stretch);
        }
    }
    found
}

/// The calls per variant an item's returned attributes hold.
fn variant_calls_in(item: &HashMap<String, AttributeValue>) -> BTreeMap<String, u64> {
    item.keys()
        .filter_map(|name| {
            let variant = name.strip_prefix(VARIANT_CALLS_PREFIX)?;
            let calls = int(item, name).and_then(|c| u64::try_from(c).ok())?;
            Some((variant.to_owned(), calls))
        })
        .collect()
}

/// This process's load on an endpoint, published with a write of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    /// Average calls in flight over the last interval, in thousandths.
    pub milli: u64,
    /// Now, epoch ms.
    pub now_ms: i64,
    /// How long a load counts after it was written, ms, by this process's
    /// flush interval (three of them, at least a second): published with its
    /// load, and the least it gives another's. A load older than its writer's
    /// horizon and this one's (plus `skew_ms`) is of a process gone or idle.
    pub horizon_ms: i64,
    /// How far behind this process's clock another's may be, ms.
    pub skew_ms: i64,
}

/// How a write to a spend item counts its spend against the item's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseUse {
    /// Not at all: the item is not one of this process's fleet budgets'.
    None,
    /// This process holds a lease of the budget: the spend (with what was
    /// charged beyond the receipts) is the lease's use, and the lease is renewed
    /// until `until_ms` (epoch ms). Applied only while the item holds the lease.
    Held {
        /// The lease's new end, epoch ms.
        until_ms: i64,
    },
    /// This process holds no lease of the budget (another process reclaimed it
    /// after it lapsed, or the spend went on while the table did not answer):
    /// the spend is added to what the budget has committed, which so stays at
    /// least the spend.
    Unleased,
}

/// How an idempotent add ended.
#[derive(Debug, Clone)]
pub(crate) enum Added {
    /// Applied now: the item's spend after it, what it holds granted to this
    /// process (when the write was applied as the lease's use), and the other
    /// processes' fresh loads summed (when it carried a load).
    Applied {
        spent: i128,
        /// What its budgets were charged beyond the receipts, after it.
        unpriced: i128,
        /// The item's calls per variant after it (those the answer holds: every
        /// variant the write added calls to, and all when it read the item back).
        variant_calls: BTreeMap<String, u64>,
        /// The variants' fleet accruals after it (those the write touched).
        accruals: BTreeMap<String, FleetAccrual>,
        /// What the item holds granted to this process after it, when the
        /// write was applied as the use of its lease (`None`: it was not).
        lease_granted: Option<i128>,
        /// What the item holds as this process's use of its lease after it
        /// (`lease_used:<process>`), when the write was applied as that use
        /// (`None` too when the answer does not hold it).
        lease_used: Option<i128>,
        others_load: Option<u64>,
        /// The accrual starts it found later than its own, lowered or not.
        lowering: Lowering,
    },
    /// This sequence number was applied before (a retry): nothing changed now.
    AlreadyApplied {
        /// For a write of a lease's use: the lease as the item holds it now
        /// (`None`: gone, reclaimed by another process since). Its end is the
        /// one the applied write set, not the retry's: the retry changed
        /// nothing. `None` too for a write of no lease.
        lease: Option<LeaseHeld>,
        /// The item's spend and unpriced charge as it holds them now, this write
        /// included (its answer was lost, so its thresholds are still to check);
        /// `None` when DynamoDB returned no item.
        spent: Option<(i128, i128)>,
        /// The item's calls per variant as it holds them now, this write's
        /// included (empty when DynamoDB returned no item): the fleet's count
        /// moves past the write's calls with them counted as this process's.
        variant_calls: BTreeMap<String, u64>,
        /// The accrual starts the item holds later than the write's own,
        /// lowered or not.
        lowering: Lowering,
    },
}

/// The second requests of a write whose item held a later accrual start than
/// the write's own (see [`Table::add_spend`]): each sent after the write was
/// applied, at best, so that a failure of one leaves the write applied.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lowering {
    /// Requests sent to lower a start, answered or not.
    pub sent: u64,
    /// Per variant, the start still to lower: its request failed.
    pub left: BTreeMap<String, i64>,
    /// Why the last of them failed.
    pub failure: Option<TableError>,
}

/// A lease held in a budget's spend item, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseHeld {
    pub process: String,
    pub granted: i128,
    pub used: i128,
    pub until_ms: i64,
}

/// The loads other processes wrote to an endpoint item that still count at
/// `load.now_ms`, summed, in thousandths of a call: each written within the
/// longer of its writer's horizon and this process's, plus the skew allowed (a
/// writer flushing every 10 s writes its load every 10 s: it counts 30 s, not
/// the 3 s of a reader flushing every 250 ms).
fn others_load(item: &HashMap<String, AttributeValue>, process: &str, load: Load) -> u64 {
    item.keys()
        .filter_map(|name| name.strip_prefix(LOAD_PREFIX))
        .filter(|p| *p != process)
        .filter(|p| {
            let horizon = int(item, &format!("{LOAD_FOR_PREFIX}{p}"))
                .map_or(i128::from(load.horizon_ms), |theirs| {
                    theirs.max(i128::from(load.horizon_ms))
                });
            int(item, &format!("{LOAD_AT_PREFIX}{p}")).is_some_and(|at| {
                at.saturating_add(horizon)
                    .saturating_add(i128::from(load.skew_ms))
                    >= i128::from(load.now_ms)
            })
        })
        .filter_map(|p| int(item, &format!("{LOAD_PREFIX}{p}")))
        .map(|milli| u64::try_from(milli).unwrap_or(0))
        .fold(0u64, u64::saturating_add)
}

/// Every lease a spend item holds.
pub(crate) fn leases_in(item: &HashMap<String, AttributeValue>) -> Vec<LeaseHeld> {
    item.keys()
        .filter_map(|name| name.strip_prefix(GRANTED_PREFIX))
        .map(|process| LeaseHeld {
            process: process.to_owned(),
            granted: int(item, &format!("{GRANTED_PREFIX}{process}")).unwrap_or(0),
            used: int(item, &format!("{USED_PREFIX}{process}")).unwrap_or(0),
            until_ms: int(item, &format!("{UNTIL_PREFIX}{process}"))
                .and_then(|v| i64::try_from(v).ok())
                .unwrap_or(0),
        })
        .collect()
}

/// How ending a lease went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseEnd {
    /// Ended: its unused part went back to the fleet.
    Ended,
    /// Not as read: the lease as the item now holds it (`None`: gone, ended or
    /// reclaimed by another process).
    Changed(Option<LeaseHeld>),
}

/// How a lease request ended.
#[derive(Debug)]
pub(crate) enum Leased {
    /// Granted: what the item now holds granted to this process in all (more
    /// than this process counted when an earlier request's answer was lost),
    /// and its use of that lease, `used` (`lease_used:<process>`; `None`
    /// when the answer does not hold it).
    Granted { granted: i128, used: Option<i128> },
    /// No room: the budget's item as it was (spent, committed, the leases held).
    NoRoom(HashMap<String, AttributeValue>),
}

impl Table {
    /// The table `name` through a client of `sdk_config` with the fleet's time
    /// limits ([`with_time_limits`]): what `fleet init`, `fleet status` and the
    /// check before use ask through.
    pub(crate) fn of_config(sdk_config: &aws_types::SdkConfig, name: &str) -> Table {
        Table {
            client: with_time_limits(&Client::new(sdk_config)),
            name: name.to_owned(),
        }
    }

    /// DescribeTable of this table: its keys and status.
    async fn describe(
        &self,
    ) -> Result<
        aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput,
        SdkError<aws_sdk_dynamodb::operation::describe_table::DescribeTableError, HttpResponse>,
    > {
        self.client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
    }

    /// Whether the table exists with the fleet's keys: an error saying what to do
    /// when it is missing or has other keys. A table that cannot be described
    /// (no `dynamodb:DescribeTable`, which running a fleet does not need; an
    /// unreachable endpoint, which the fleet's own WARNs then name) passes.
    pub(crate) async fn check(&self) -> Result<(), TableError> {
        let out = match self.describe().await {
            Ok(out) => out,
            Err(err) => {
                let err = TableError::from(err);
                if err.kind == Failure::NoTable {
                    return Err(TableError {
                        message: format!(
                            "table `{}` does not exist: make it with `sagemeter fleet init --table {}` \
                             (or sagemeter::fleet::create_table), or name the table that does",
                            self.name, self.name
                        ),
                        ..err
                    });
                }
                return Ok(());
            }
        };
        match out.table() {
            Some(table) => check_keys(
                &self.name,
                table.key_schema(),
                table.attribute_definitions(),
            ),
            None => Ok(()),
        }
    }

    fn key(&self, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
    }

    /// Adds `delta` to a spend item, once per (`process`, `seq`), counting it
    /// against the item's budget as `lease` says. A write carrying the use of a
    /// lease the item no longer holds (another process reclaimed it after it
    /// lapsed) is sent again as [`LeaseUse::Unleased`]: that write adds the use
    /// the reclaim could not know of to the committed sum, which so stays at
    /// least the spend. Where the item's answer holds a later accrual start
    /// than the delta's, a second request lowers it, at best: its failure is
    /// in the answer's [`Lowering`], the write applied all the same.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn add_spend(
        &self,
        pk: &str,
        sk: &str,
        process: &str,
        seq: u64,
        delta: &Delta,
        expires_at: i64,
        lease: LeaseUse,
        load: Option<Load>,
    ) -> Result<Added, TableError> {
        let first = self
            .add_spend_once(pk, sk, process, seq, delta, expires_at, lease, load)
            .await?;
        match first {
            Some(added) => Ok(added),
            None => self
                .add_spend_once(
                    pk,
                    sk,
                    process,
                    seq,
                    delta,
                    expires_at,
                    LeaseUse::Unleased,
                    load,
                )
                .await?
                .ok_or_else(|| other("a write without a lease's condition found one")),
        }
    }

    /// One request of [`add_spend`](Self::add_spend); `None` when `lease` was
    /// [`LeaseUse::Held`] and the item holds no lease of `process` any more.
    #[allow(clippy::too_many_arguments)]
    async fn add_spend_once(
        &self,
        pk: &str,
        sk: &str,
        process: &str,
        seq: u64,
        delta: &Delta,
        expires_at: i64,
        lease: LeaseUse,
        load: Option<Load>,
    ) -> Result<Option<Added>, TableError> {
        let granted_name = format!("{GRANTED_PREFIX}{process}");
        let used_name = format!("{USED_PREFIX}{process}");
        let seq_name = format!("{SEQ_PREFIX}{process}");
        let mut adds = vec![
            format!("{SPENT} :spent"),
            format!("{CALLS} :calls"),
            format!("{UNPRICED} :unpriced"),
        ];
        let mut sets = vec![
            "#seq = :seq".to_owned(),
            format!("{EXPIRES_AT} = if_not_exists({EXPIRES_AT}, :exp)"),
        ];
        let mut condition = "(attribute_not_exists(#seq) OR #seq < :seq)".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .expression_attribute_values(":spent", n(delta.spent))
            .expression_attribute_values(":calls", n(i128::from(delta.calls)))
            .expression_attribute_values(":unpriced", n(delta.unpriced));
        for (i, (variant, pico)) in delta.variants.iter().enumerate() {
            adds.push(format!("#v{i} :v{i}"));
            request = request
                .expression_attribute_names(format!("#v{i}"), format!("{VARIANT_PREFIX}{variant}"))
                .expression_attribute_values(format!(":v{i}"), n(*pico));
        }
        for (i, (variant, calls)) in delta.variant_calls.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            request = request
                .expression_attribute_names(
                    format!("#c{i}"),
                    format!("{VARIANT_CALLS_PREFIX}{variant}"),
                )
                .expression_attribute_values(format!(":c{i}"), n(i128::from(*calls)));
        }
        for (i, (variant, pico)) in delta.allocated.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            request = request
                .expression_attribute_names(
                    format!("#a{i}"),
                    format!("{ALLOCATED_PREFIX}{variant}"),
                )
                .expression_attribute_values(format!(":a{i}"), n(*pico));
        }
        for (i, ((variant, ms), stretch)) in delta.rates.iter().enumerate() {
            sets.push(format!("#r{i} = if_not_exists(#r{i}, :r{i})"));
            request = request
                .expression_attribute_names(
                    format!("#r{i}"),
                    format!("{RATE_PREFIX}{variant}:{ms}"),
                )
                .expression_attribute_values(format!(":r{i}"), stretch.value());
        }
        for (i, (variant, ms)) in delta.first_call_ms.iter().enumerate() {
            sets.push(format!("#f{i} = if_not_exists(#f{i}, :f{i})"));
            request = request
                .expression_attribute_names(
                    format!("#f{i}"),
                    format!("{ACCRUAL_FROM_PREFIX}{variant}"),
                )
                .expression_attribute_values(format!(":f{i}"), n(i128::from(*ms)));
        }
        // What the write counts against the item's budget.
        let used = delta.spent.saturating_add(delta.unpriced);
        match lease {
            LeaseUse::None => {}
            LeaseUse::Held { until_ms } => {
                adds.push("#used :used".to_owned());
                sets.push("#until = :until".to_owned());
                condition.push_str(" AND attribute_exists(#granted)");
                request = request
                    .expression_attribute_values(":used", n(used))
                    .expression_attribute_names("#used", &used_name)
                    .expression_attribute_names("#until", format!("{UNTIL_PREFIX}{process}"))
                    .expression_attribute_names("#granted", &granted_name)
                    .expression_attribute_values(":until", n(i128::from(until_ms)));
            }
            LeaseUse::Unleased => {
                adds.push(format!("{COMMITTED} :used"));
                request = request.expression_attribute_values(":used", n(used));
            }
        }
        if let Some(load) = load {
            sets.push("#load = :load".to_owned());
            sets.push("#load_at = :load_at".to_owned());
            sets.push("#load_for = :load_for".to_owned());
            request = request
                .expression_attribute_names("#load", format!("{LOAD_PREFIX}{process}"))
                .expression_attribute_names("#load_at", format!("{LOAD_AT_PREFIX}{process}"))
                .expression_attribute_names("#load_for", format!("{LOAD_FOR_PREFIX}{process}"))
                .expression_attribute_values(":load", n(i128::from(load.milli)))
                .expression_attribute_values(":load_at", n(i128::from(load.now_ms)))
                .expression_attribute_values(":load_for", n(i128::from(load.horizon_ms)));
        }
        let held = matches!(lease, LeaseUse::Held { .. });
        let request = request
            .update_expression(format!("ADD {} SET {}", adds.join(", "), sets.join(", ")))
            .condition_expression(condition)
            .expression_attribute_names("#seq", &seq_name)
            .expression_attribute_values(":seq", n(i128::from(seq)))
            .expression_attribute_values(":exp", n(i128::from(expires_at)))
            // A failed condition reads the item back: the lease as it is, and
            // the spend, which a retry whose answer was lost has to check for
            // thresholds passed.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // A write of the variants' accruals reads the other processes'
            // standing rates back: all of the item.
            .return_values(
                if held
                    || load.is_some()
                    || delta.read_back
                    || !delta.rates.is_empty()
                    || !delta.allocated.is_empty()
                {
                    ReturnValue::AllNew
                } else {
                    ReturnValue::UpdatedNew
                },
            );
        match request.send().await {
            Ok(out) => {
                let item = out.attributes();
                let mut accruals = item.map(accruals_in).unwrap_or_default();
                let mut lowering = Lowering::default();
                for (variant, ms) in &delta.first_call_ms {
                    let held = accruals.get(variant).and_then(|a| a.from_ms);
                    if held.is_some_and(|held| held > *ms)
                        && let Some(lowered) =
                            self.try_lower(pk, sk, variant, *ms, &mut lowering).await
                        && let Some(accrual) = accruals.get_mut(variant)
                    {
                        accrual.from_ms = lowered.or(held);
                    }
                }
                Ok(Some(Added::Applied {
                    spent: item.and_then(|a| int(a, SPENT)).unwrap_or(0),
                    unpriced: item.and_then(|a| int(a, UNPRICED)).unwrap_or(0),
                    variant_calls: item.map(variant_calls_in).unwrap_or_default(),
                    accruals,
                    lease_granted: if held {
                        Some(item.and_then(|a| int(a, &granted_name)).unwrap_or(0))
                    } else {
                        None
                    },
                    lease_used: if held {
                        item.and_then(|a| int(a, &used_name))
                    } else {
                        None
                    },
                    others_load: load.map(|load| item.map_or(0, |a| others_load(a, process, load))),
                    lowering,
                }))
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let item = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                    _ => None,
                };
                // A write of a lease's use whose sequence number was not applied
                // yet failed for the lease: it is gone. Anything else is a retry
                // of a write applied before.
                let applied = item
                    .and_then(|a| int(a, &seq_name))
                    .is_some_and(|applied| applied >= i128::from(seq));
                let lease_gone = item.is_none_or(|a| !a.contains_key(&granted_name));
                if held && !applied && lease_gone {
                    return Ok(None);
                }
                // The lease as the item holds it (what the applied write made
                // of it, or of a reclaim since), never as this retry asked.
                let lease = if held {
                    item.and_then(|a| leases_in(a).into_iter().find(|l| l.process == process))
                } else {
                    None
                };
                // The applied write's answer was lost: its accrual start may
                // still be to lower.
                let mut lowering = Lowering::default();
                if applied && let Some(item) = item {
                    for (variant, ms) in &delta.first_call_ms {
                        let held = int(item, &format!("{ACCRUAL_FROM_PREFIX}{variant}"));
                        if held.is_some_and(|held| held > i128::from(*ms)) {
                            self.try_lower(pk, sk, variant, *ms, &mut lowering).await;
                        }
                    }
                }
                let spent =
                    item.map(|a| (int(a, SPENT).unwrap_or(0), int(a, UNPRICED).unwrap_or(0)));
                // Its calls are in the item's counts only if it was applied.
                let variant_calls = item
                    .filter(|_| applied)
                    .map(variant_calls_in)
                    .unwrap_or_default();
                Ok(Some(Added::AlreadyApplied {
                    lease,
                    spent,
                    variant_calls,
                    lowering,
                }))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// [`lower_accrual_from`](Self::lower_accrual_from), at best: the write
    /// before it was applied, so a failure of it fails nothing but itself. Noted
    /// in `lowering` (sent, or left to lower with why); `None` when it failed.
    async fn try_lower(
        &self,
        pk: &str,
        sk: &str,
        variant: &str,
        from_ms: i64,
        lowering: &mut Lowering,
    ) -> Option<Option<i64>> {
        lowering.sent += 1;
        match self.lower_accrual_from(pk, sk, variant, from_ms).await {
            Ok(lowered) => Some(lowered),
            Err(err) => {
                lowering.left.insert(variant.to_owned(), from_ms);
                lowering.failure = Some(err);
                None
            }
        }
    }

    /// Lowers `variant`'s accrual start in (`pk`, `sk`) to `from_ms` where the
    /// item holds a later one: a call that started earlier but was written later
    /// than another process's (`if_not_exists` kept the first written). Only
    /// ever lowers, so it is applied as often as it is sent. The start the item
    /// holds after it: `from_ms`, or an earlier one another process wrote
    /// (`None`: the item holds none).
    async fn lower_accrual_from(
        &self,
        pk: &str,
        sk: &str,
        variant: &str,
        from_ms: i64,
    ) -> Result<Option<i64>, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("SET #f = :f")
            .condition_expression("#f > :f")
            .expression_attribute_names("#f", format!("{ACCRUAL_FROM_PREFIX}{variant}"))
            .expression_attribute_values(":f", n(i128::from(from_ms)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(from_ms)),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let item = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                    _ => None,
                };
                Ok(item
                    .and_then(|i| int(i, &format!("{ACCRUAL_FROM_PREFIX}{variant}")))
                    .and_then(|v| i64::try_from(v).ok()))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Leases `amount` of the budget kept in (`pk`, `sk`) to `process`, if the
    /// fleet's committed sum stays within `limit`: one conditional update of the
    /// budget's item, which holds every process's lease. Applied once per
    /// (`process`, `seq`): the SDK's retry of a request whose answer was lost finds
    /// it applied, and answers as it would have.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn lease(
        &self,
        pk: &str,
        sk: &str,
        process: &str,
        seq: u64,
        amount: i128,
        limit: i128,
        until_ms: i64,
        expires_at: i64,
    ) -> Result<Leased, TableError> {
        let granted_name = format!("{GRANTED_PREFIX}{process}");
        let used_name = format!("{USED_PREFIX}{process}");
        let seq_name = format!("{LEASE_SEQ_PREFIX}{process}");
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression(format!(
                "SET {COMMITTED} = if_not_exists({COMMITTED}, :zero) + :amount, {LIMIT} = :limit, \
                 #granted = if_not_exists(#granted, :zero) + :amount, \
                 #used = if_not_exists(#used, :zero), #until = :until, #lseq = :seq, \
                 {EXPIRES_AT} = if_not_exists({EXPIRES_AT}, :exp)"
            ))
            .condition_expression(format!(
                "(attribute_not_exists(#lseq) OR #lseq < :seq) AND \
                 (attribute_not_exists({COMMITTED}) OR {COMMITTED} <= :max)"
            ))
            .expression_attribute_names("#granted", &granted_name)
            .expression_attribute_names("#lseq", &seq_name)
            .expression_attribute_values(":seq", n(i128::from(seq)))
            .expression_attribute_names("#used", &used_name)
            .expression_attribute_names("#until", format!("{UNTIL_PREFIX}{process}"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":amount", n(amount))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":max", n(limit.saturating_sub(amount)))
            .expression_attribute_values(":until", n(i128::from(until_ms)))
            .expression_attribute_values(":exp", n(i128::from(expires_at)))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Leased::Granted {
                granted: out
                    .attributes()
                    .and_then(|a| int(a, &granted_name))
                    .unwrap_or(amount),
                // Set by the request (`if_not_exists`): in its `UPDATED_NEW`.
                used: out.attributes().and_then(|a| int(a, &used_name)),
            }),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let item = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned().unwrap_or_default()
                    }
                    _ => HashMap::new(),
                };
                // Applied already: this is the SDK's retry of a request whose
                // answer was lost.
                if int(&item, &seq_name).is_some_and(|applied| applied >= i128::from(seq)) {
                    return Ok(Leased::Granted {
                        granted: int(&item, &granted_name).unwrap_or(amount),
                        used: int(&item, &used_name),
                    });
                }
                Ok(Leased::NoRoom(item))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Ends `lease` (if it still stands as read): removes it from the budget's item
    /// and takes what it did not use off the committed sum (or adds what it used
    /// beyond its grant), so that the committed sum ends equal to what was spent.
    pub(crate) async fn end_lease(
        &self,
        pk: &str,
        sk: &str,
        lease: &LeaseHeld,
    ) -> Result<LeaseEnd, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression(format!(
                "ADD {COMMITTED} :back REMOVE #granted, #used, #until"
            ))
            .condition_expression("#granted = :granted AND #used = :used AND #until = :until")
            .expression_attribute_names("#granted", format!("{GRANTED_PREFIX}{}", lease.process))
            .expression_attribute_names("#used", format!("{USED_PREFIX}{}", lease.process))
            .expression_attribute_names("#until", format!("{UNTIL_PREFIX}{}", lease.process))
            .expression_attribute_values(":granted", n(lease.granted))
            .expression_attribute_values(":used", n(lease.used))
            .expression_attribute_values(":until", n(i128::from(lease.until_ms)))
            // Signed: a lease spent past its grant (calls that cost more than
            // their estimate) adds the excess to what the fleet has committed.
            .expression_attribute_values(":back", n(lease.used.saturating_sub(lease.granted)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(LeaseEnd::Ended),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let now = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item().and_then(|item| {
                            leases_in(item)
                                .into_iter()
                                .find(|held| held.process == lease.process)
                        })
                    }
                    _ => None,
                };
                Ok(LeaseEnd::Changed(now))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Removes `process`'s own attributes from the item (its sequence numbers,
    /// its load, what is left of a lease), unless the item holds a lease of it
    /// (or is gone). True when removed. Only for a process that will not write
    /// the item again: its writes' sequence numbers no longer guard against a
    /// retry being applied twice.
    pub(crate) async fn forget_process(
        &self,
        pk: &str,
        sk: &str,
        process: &str,
    ) -> Result<bool, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("REMOVE #seq, #lseq, #load, #load_at, #load_for, #used, #until")
            .condition_expression(format!(
                "attribute_exists({PK}) AND attribute_not_exists(#granted)"
            ))
            .expression_attribute_names("#seq", format!("{SEQ_PREFIX}{process}"))
            .expression_attribute_names("#lseq", format!("{LEASE_SEQ_PREFIX}{process}"))
            .expression_attribute_names("#load", format!("{LOAD_PREFIX}{process}"))
            .expression_attribute_names("#load_at", format!("{LOAD_AT_PREFIX}{process}"))
            .expression_attribute_names("#load_for", format!("{LOAD_FOR_PREFIX}{process}"))
            .expression_attribute_names("#used", format!("{USED_PREFIX}{process}"))
            .expression_attribute_names("#until", format!("{UNTIL_PREFIX}{process}"))
            .expression_attribute_names("#granted", format!("{GRANTED_PREFIX}{process}"))
            .send()
            .await;
        Ok(conditional(result)?.is_some())
    }

    /// Marks `percent` as passed in the spend item's attribute `mark` (one per
    /// budget, see [`alert_mark`]), and names `process` as the marker
    /// ([`alert_by`]); true for the one process whose write marked it (it
    /// raises the alert). A retry of a mark whose answer was lost (the SDK's,
    /// after a 5xx or a lost connection) finds the mark made by this process,
    /// and is true too: the alert is raised, not lost for the whole fleet.
    pub(crate) async fn mark_alert(
        &self,
        pk: &str,
        sk: &str,
        mark: &str,
        percent: u32,
        process: &str,
    ) -> Result<bool, TableError> {
        let by = alert_by(mark, percent);
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("ADD #mark :set SET #by = :process")
            .condition_expression("attribute_not_exists(#mark) OR NOT contains(#mark, :percent)")
            .expression_attribute_names("#mark", mark)
            .expression_attribute_names("#by", &by)
            .expression_attribute_values(":set", AttributeValue::Ns(vec![percent.to_string()]))
            .expression_attribute_values(":percent", AttributeValue::N(percent.to_string()))
            .expression_attribute_values(":process", s(process))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let marker = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item().and_then(|item| item.get(&by))
                    }
                    _ => None,
                };
                Ok(matches!(marker, Some(AttributeValue::S(p)) if p == process))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Marks the async invocation `call_id` of `endpoint` settled by `by` (one
    /// conditional write that creates the item only if it is not there), its
    /// receipt due by `claim_until_ms`: [`Claimed::First`] for the settlement
    /// that marked it, whatever its retries, [`Claimed::Before`] for any other
    /// once the mark is billed ([`mark_billed`](Self::mark_billed)),
    /// [`Claimed::InProgress`] while it is not and its claim runs. A mark
    /// found not billed whose claim ended before `stale_before_ms` (its
    /// settlement's process is taken to be gone) is taken over, with a second
    /// conditional write on its `settled_by`: [`Claimed::TakenOver`]. A mark
    /// without [`CLAIM_UNTIL`] (written by an earlier version, as its receipt
    /// was made) is final. The claim lasts `hold_ms`. The item expires at
    /// `expires_at` (epoch seconds, the table's TTL attribute). `sent` counts
    /// the requests made (two when a mark is taken over, or its takeover tried).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn claim_settlement(
        &self,
        call_id: &str,
        endpoint: &str,
        by: &str,
        now_ms: i64,
        hold_ms: i64,
        stale_before_ms: i64,
        expires_at: i64,
        sent: &mut u64,
    ) -> Result<Claimed, TableError> {
        let key = self.key(
            &format!("{SETTLED_PREFIX}{call_id}"),
            &format!("endpoint#{endpoint}"),
        );
        let claim = |condition: &str| {
            self.client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key.clone()))
                .update_expression(format!(
                    "SET {SETTLED_BY} = :by, {SETTLED_AT} = :at, {CLAIM_UNTIL} = :until, \
                     {EXPIRES_AT} = :exp"
                ))
                .condition_expression(condition)
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":at", n(i128::from(now_ms)))
                .expression_attribute_values(
                    ":until",
                    n(i128::from(now_ms.saturating_add(hold_ms))),
                )
                .expression_attribute_values(":exp", n(i128::from(expires_at)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
        };
        let by_of = |item: &HashMap<String, AttributeValue>| match item.get(SETTLED_BY) {
            Some(AttributeValue::S(b)) => Some(b.clone()),
            _ => None,
        };
        // A mark whose claim ended before `stale_before_ms`, never billed.
        let lapsed = |item: &HashMap<String, AttributeValue>| {
            int(item, CLAIM_UNTIL).is_some_and(|until| until < i128::from(stale_before_ms))
        };
        // Another settlement's mark, as it stands: billed (or an earlier
        // version's), or still to be billed by a claim that runs.
        let before = |item: &HashMap<String, AttributeValue>| {
            let at_ms = int(item, SETTLED_AT).and_then(|v| i64::try_from(v).ok());
            let until = int(item, CLAIM_UNTIL).and_then(|v| i64::try_from(v).ok());
            match until {
                Some(until_ms) if !item.contains_key(BILLED_AT) && !lapsed(item) => {
                    Claimed::InProgress { at_ms, until_ms }
                }
                _ => Claimed::Before { at_ms },
            }
        };
        *sent += 1;
        let Some(item) =
            failed_condition(claim(&format!("attribute_not_exists({PK})")).send().await)?
        else {
            return Ok(Claimed::First);
        };
        let Some(old) = by_of(&item) else {
            return Ok(before(&item));
        };
        // This settlement's own mark (the SDK's retry of a write applied
        // before its answer was lost, or the settlement asking again after it
        // was dropped): still the first.
        if old == by {
            return Ok(Claimed::First);
        }
        // A mark with no claim's end is an earlier version's, written as its
        // receipt was made (nearly always billed): final, never taken over.
        if item.contains_key(BILLED_AT) || !lapsed(&item) {
            return Ok(before(&item));
        }
        // Marked, never billed, its claim long over: the settlement that marked
        // it stopped before its receipt was made. Taken over if the mark is
        // still that one's (and still not billed).
        *sent += 1;
        let taken = claim(&format!(
            "{SETTLED_BY} = :old AND attribute_exists({CLAIM_UNTIL}) \
             AND attribute_not_exists({BILLED_AT})"
        ))
        .expression_attribute_values(":old", s(&old))
        .send()
        .await;
        match failed_condition(taken)? {
            None => Ok(Claimed::TakenOver { from: old }),
            // Taken over by this very settlement (an SDK retry): still its own.
            Some(now) if by_of(&now).as_deref() == Some(by) => Ok(Claimed::TakenOver { from: old }),
            Some(now) => Ok(before(&now)),
        }
    }

    /// Marks the async invocation `call_id` of `endpoint` billed (its receipt
    /// made) by `by`, the settlement that holds its mark: true when written,
    /// false when the mark is no longer `by`'s (taken over after its claim
    /// ended) or gone.
    pub(crate) async fn mark_billed(
        &self,
        call_id: &str,
        endpoint: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(
                &format!("{SETTLED_PREFIX}{call_id}"),
                &format!("endpoint#{endpoint}"),
            )))
            .update_expression(format!("SET {BILLED_AT} = :at"))
            .condition_expression(format!("{SETTLED_BY} = :by"))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":at", n(i128::from(now_ms)))
            .send()
            .await;
        Ok(conditional(result)?.is_some())
    }

    /// Every item of the table (for `fleet status`). A next page already asked
    /// for (an emulator or proxy answering the start key it was sent) is an
    /// error, not the same pages asked for again without end.
    pub(crate) async fn scan(&self) -> Result<Vec<HashMap<String, AttributeValue>>, TableError> {
        let mut items = Vec::new();
        let mut asked: Vec<HashMap<String, AttributeValue>> = Vec::new();
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(asked.last().cloned())
                .send()
                .await?;
            items.extend(out.items().iter().cloned());
            let Some(next) = out.last_evaluated_key() else {
                return Ok(items);
            };
            if asked.iter().any(|start| start == next) {
                return Err(other(format!(
                    "the Scan of table `{}` answered a LastEvaluatedKey it had already been \
                     sent as an ExclusiveStartKey: stopped rather than read the same pages \
                     again without end (is the endpoint a DynamoDB that pages?)",
                    self.name
                )));
            }
            asked.push(next.clone());
        }
    }

    /// Creates the table (on-demand billing, `pk`/`sk` string keys) and turns on
    /// TTL on [`EXPIRES_AT`]; an existing table of that name is left as it is
    /// (TTL turned on if it was off). True when it was created now.
    pub(crate) async fn create(&self, wait: Duration) -> Result<bool, TableError> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(other)
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(other)
        };
        let created = match self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .send()
            .await
        {
            Ok(_) => true,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(err) => return Err(err.into()),
        };
        let now = tokio::time::Instant::now();
        let deadline = now.checked_add(wait).unwrap_or(now);
        loop {
            let out = match self.describe().await {
                Ok(out) => Some(out),
                // DescribeTable is eventually consistent: right after
                // CreateTable it may not know the table yet.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    None
                }
                Err(err) => return Err(err.into()),
            };
            let table = out.as_ref().and_then(|o| o.table());
            if let Some(table) = table {
                check_keys(
                    &self.name,
                    table.key_schema(),
                    table.attribute_definitions(),
                )?;
            }
            if table.and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TableError {
                    kind: Failure::Other,
                    message: format!("table `{}` is not active after {wait:?}", self.name),
                    maybe_applied: false,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.name)
            .send()
            .await?;
        let on = ttl
            .time_to_live_description()
            .and_then(|d| d.attribute_name())
            == Some(EXPIRES_AT)
            && ttl
                .time_to_live_description()
                .and_then(|d| d.time_to_live_status())
                .is_some_and(|s| s.as_str() == "ENABLED" || s.as_str() == "ENABLING");
        if !on {
            self.client
                .update_time_to_live()
                .table_name(&self.name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(EXPIRES_AT)
                        .build()
                        .map_err(other)?,
                )
                .send()
                .await?;
        }
        Ok(created)
    }
}

/// Whether a table's keys are the fleet's: partition key [`PK`] and sort key
/// [`SK`], both strings. A table of another schema (another application's, of
/// the same name) is refused, before anything of it (its TTL) is changed.
fn check_keys(
    name: &str,
    keys: &[KeySchemaElement],
    attributes: &[AttributeDefinition],
) -> Result<(), TableError> {
    let string = |key: &str| {
        attributes
            .iter()
            .any(|a| a.attribute_name() == key && a.attribute_type() == &ScalarAttributeType::S)
    };
    let has = |key: &str, kind: KeyType| {
        keys.iter()
            .any(|k| k.attribute_name() == key && k.key_type() == &kind)
    };
    if keys.len() == 2
        && has(PK, KeyType::Hash)
        && has(SK, KeyType::Range)
        && string(PK)
        && string(SK)
    {
        return Ok(());
    }
    let found: Vec<String> = keys
        .iter()
        .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
        .collect();
    Err(TableError {
        kind: Failure::Other,
        message: format!(
            "table `{name}` exists with another key schema ({}): a fleet table has \
             partition key `{PK}` (string) and sort key `{SK}` (string); \
             name another table",
            found.join(", ")
        ),
        maybe_applied: false,
    })
}

/// An `UpdateItem`'s answer, `None` when its condition did not hold (which each
/// caller reads in its own way: already applied, changed, already marked).
fn conditional<T>(
    result: Result<T, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<Option<T>, TableError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// A conditional write's failed condition: `None` when the write was applied,
/// the item as it was (`ALL_OLD`; empty when none came back) when its condition
/// failed.
fn failed_condition<T>(
    result: Result<T, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<Option<HashMap<String, AttributeValue>>, TableError> {
    match result {
        Ok(_) => Ok(None),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Ok(Some(match e.err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    c.item().cloned().unwrap_or_default()
                }
                _ => HashMap::new(),
            }))
        }
        Err(err) => Err(err.into()),
    }
}

fn other(err: impl fmt::Display) -> TableError {
    TableError {
        kind: Failure::Other,
        message: err.to_string(),
        maybe_applied: false,
    }
}

/// A DynamoDB client config for unit tests, on `http`, with static credentials.
#[cfg(test)]
pub(crate) fn test_config(
    http: impl aws_smithy_runtime_api::client::http::HttpClient + 'static,
) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(http)
}

/// A client on [`test_config`] whose every request `rule` answers, through `http`
/// (a mock HTTP client), the SDK retrying none.
#[cfg(test)]
pub(crate) fn mocked_client(
    rule: &aws_smithy_mocks::Rule,
    http: impl aws_smithy_runtime_api::client::http::HttpClient + 'static,
) -> Client {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode};
    let conf = test_config(http)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(rule),
        )
        .build();
    Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose every Scan answers `answer` (the SDK retrying none).
    fn scanned(
        answer: impl Fn(
            &aws_sdk_dynamodb::operation::scan::ScanInput,
        ) -> aws_sdk_dynamodb::operation::scan::ScanOutput
        + Send
        + Sync
        + 'static,
    ) -> Table {
        use aws_smithy_mocks::{MockResponse, create_mock_http_client};
        let rule = aws_smithy_mocks::mock!(aws_sdk_dynamodb::Client::scan)
            .then_compute_response(move |input| MockResponse::Output(answer(input)));
        Table {
            client: mocked_client(&rule, create_mock_http_client()),
            name: "fleet".to_owned(),
        }
    }

    /// A Scan answering, as its next page, the very page it was asked for (an
    /// emulator or proxy that does not page) ends `fleet status` with an error
    /// saying so, not in asking for that page again without end.
    #[tokio::test]
    async fn a_scan_answering_the_page_it_was_sent_again_stops_with_an_error() {
        use aws_sdk_dynamodb::operation::scan::ScanOutput;
        let page = HashMap::from([
            (PK.to_owned(), s("scope#fleet")),
            (SK.to_owned(), s("day#2026-12-02")),
        ]);
        let table = scanned(move |input| {
            ScanOutput::builder()
                .items(page.clone())
                .set_last_evaluated_key(Some(
                    input
                        .exclusive_start_key()
                        .cloned()
                        .unwrap_or_else(|| page.clone()),
                ))
                .build()
        });
        let err = tokio::time::timeout(Duration::from_secs(5), table.scan())
            .await
            .expect("the scan ended")
            .expect_err("a page answered again is an error");
        assert_eq!(err.kind, Failure::Other);
        assert!(!err.maybe_applied);
        assert!(err.message.contains("LastEvaluatedKey"), "{err}");
    }

    /// A Scan whose pages each name the next (two of them) gathers both pages'
    /// items.
    #[tokio::test]
    async fn a_scan_gathers_every_page() {
        use aws_sdk_dynamodb::operation::scan::ScanOutput;
        let item =
            |sk: &str| HashMap::from([(PK.to_owned(), s("scope#fleet")), (SK.to_owned(), s(sk))]);
        let (first, second) = (item("day#2026-12-01"), item("day#2026-12-02"));
        let table = scanned(move |input| match input.exclusive_start_key() {
            None => ScanOutput::builder()
                .items(first.clone())
                .last_evaluated_key(PK, s("scope#fleet"))
                .last_evaluated_key(SK, s("day#2026-12-01"))
                .build(),
            Some(_) => ScanOutput::builder().items(second.clone()).build(),
        });
        let items = table.scan().await.unwrap();
        let sks: Vec<&AttributeValue> = items.iter().filter_map(|i| i.get(SK)).collect();
        assert_eq!(
            sks,
            [&s("day#2026-12-01"), &s("day#2026-12-02")],
            "{items:?}"
        );
    }

    /// A request the SDK never sent (no credentials to sign it: an expired SSO
    /// session; no endpoint: no region) says why, applied nothing, and is not
    /// taken for an unreachable table; one that failed in transit may have been
    /// applied. Nothing secret of a credential provider's reaches the message.
    #[test]
    fn a_request_never_sent_says_why_and_applied_nothing() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let failed = |cause: Box<dyn std::error::Error + Send + Sync>| {
            TableError::from(SdkError::<UpdateItemError, HttpResponse>::dispatch_failure(
                ConnectorError::other(cause, None),
            ))
        };
        let expired = failed(Box::new(CredentialsError::provider_error(
            "the SSO session has expired",
        )));
        assert_eq!(expired.kind, Failure::NotSent);
        assert!(!expired.maybe_applied);
        assert!(
            expired.message.contains("SSO session has expired"),
            "{expired}"
        );
        let no_region = failed(Box::new(
            aws_smithy_http::endpoint::ResolveEndpointError::message(
                "A region must be set when sending requests to S3.",
            ),
        ));
        assert_eq!(no_region.kind, Failure::NotSent);
        assert!(!no_region.maybe_applied);
        // A credential_process's output (a secret in it) and the caller's identity
        // are not said.
        let process = failed(Box::new(CredentialsError::provider_error(
            "external process exited with code 1. Stderr: password=CPSECRET",
        )));
        let denied = failed(Box::new(CredentialsError::provider_error(
            "AccessDenied: User: arn:aws:iam::123456789012:user/alice is not authorized to \
             perform: sts:AssumeRole",
        )));
        for said in [process.to_string(), denied.to_string()] {
            for secret in ["CPSECRET", "123456789012", "alice"] {
                assert!(!said.contains(secret), "{said}");
            }
        }
        // One the SDK could not build applied nothing either, and says why.
        let unbuilt = TableError::from(
            SdkError::<UpdateItemError, HttpResponse>::construction_failure(
                aws_smithy_types::error::operation::BuildError::missing_field("key", "no key"),
            ),
        );
        assert_eq!(unbuilt.kind, Failure::Other);
        assert!(!unbuilt.maybe_applied);
        assert!(unbuilt.message.contains("key"), "{unbuilt}");
        // A connection reset may have sent it.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let lost = TableError::from(SdkError::<UpdateItemError, HttpResponse>::dispatch_failure(
            ConnectorError::io(reset.into()),
        ));
        assert_eq!(lost.kind, Failure::Unreachable);
        assert!(lost.maybe_applied);
    }

    #[test]
    fn each_budget_of_an_item_has_its_own_alert_mark() {
        // An alerting $20 and an enforced $25 budget of one scope and period.
        let watch = alert_mark(BudgetMode::Alert, 20_000_000_000_000);
        let cap = alert_mark(BudgetMode::Enforce, 25_000_000_000_000);
        assert_eq!(watch, "alerted:alert:20000000000000");
        assert_eq!(cap, "alerted:enforce:25000000000000");
        assert_eq!(
            alert_mark_of(&cap),
            Some((BudgetMode::Enforce, 25_000_000_000_000))
        );
        assert_eq!(alert_mark_of(ALERTED), None);
        assert_eq!(alert_mark_of("alerted:other:1"), None);
    }

    /// A writer flushing every 10 s refreshes its load every 10 s: it counts for
    /// its own three intervals (30 s) plus the skew, not for the reader's. With
    /// 1 x ml.g5.xlarge at $1.408/h, S (flushing every 10 s) holding 3 calls and
    /// C (every 250 ms) holding 1, n = 4 and C is allocated 1/4 of the instance,
    /// $0.352/h; were S's load dropped 4 s of every 10 (C's cut-off 3 x 250 ms,
    /// at least 1 s, + 5 s skew = 6 s), C would be allocated 0.6 x 1/4 + 0.4 x 1 =
    /// 0.55 instance, $0.7744/h, and S and C together 130 % of the bill.
    #[test]
    fn another_process_load_counts_for_its_own_flush_intervals() {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let now_ms = 1_800_000_000_000;
        let item = HashMap::from([
            // S: flushes every 10 s, its load written 8 s ago.
            (format!("{LOAD_PREFIX}s"), n(3000)),
            (format!("{LOAD_AT_PREFIX}s"), n(now_ms - 8_000)),
            (format!("{LOAD_FOR_PREFIX}s"), n(30_000)),
            // C, the reader itself: never its own load.
            (format!("{LOAD_PREFIX}c"), n(1000)),
            (format!("{LOAD_AT_PREFIX}c"), n(now_ms)),
            (format!("{LOAD_FOR_PREFIX}c"), n(1000)),
        ]);
        // C flushes every 250 ms: its horizon is 3 x 250 ms, at least 1 s.
        let load = Load {
            milli: 1000,
            now_ms,
            horizon_ms: 1000,
            skew_ms: 5000,
        };
        assert_eq!(others_load(&item, "c", load), 3000, "8 s < 30 s + 5 s");
        // 36 s after it was written, S's load is past its horizon and the skew.
        let later = Load {
            now_ms: now_ms + 28_000,
            ..load
        };
        assert_eq!(others_load(&item, "c", later), 0, "36 s > 30 s + 5 s");
        // A writer that publishes no horizon (a version before it) is judged by
        // the reader's: 8 s > 1 s + 5 s.
        let mut old = item.clone();
        old.remove(&format!("{LOAD_FOR_PREFIX}s"));
        assert_eq!(others_load(&old, "c", load), 0);
        // A writer with a shorter horizon than the reader's is judged by the
        // reader's: 8 s <= 10 s + 5 s.
        let mut quick = item.clone();
        quick.insert(format!("{LOAD_FOR_PREFIX}s"), n(1000));
        let slow_reader = Load {
            horizon_ms: 10_000,
            ..load
        };
        assert_eq!(others_load(&quick, "c", slow_reader), 3000);
    }

    #[test]
    fn attributes_that_should_hold_figures_and_hold_something_else_are_named() {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let rate = |pico: AttributeValue| {
            AttributeValue::M(HashMap::from([
                (RATE_PICO_PER_HOUR.to_owned(), pico),
                (RATE_SOURCE.to_owned(), s("live")),
            ]))
        };
        let item = HashMap::from([
            (PK.to_owned(), s("scope#endpoint:chat")),
            (SPENT.to_owned(), s("50000000000")),
            (CALLS.to_owned(), n("5")),
            (format!("{GRANTED_PREFIX}p1"), n("1e3")),
            (format!("{USED_PREFIX}p1"), n("7")),
            (
                format!("{RATE_PREFIX}AllTraffic:1"),
                rate(n("230000000000")),
            ),
            (
                format!("{RATE_PREFIX}AllTraffic:2"),
                rate(s("230000000000")),
            ),
            // Not a figure: left alone whatever it holds.
            (SETTLED_BY.to_owned(), n("3")),
        ]);
        assert_eq!(
            unreadable_figures(&item),
            [
                format!("{GRANTED_PREFIX}p1"),
                format!("{RATE_PREFIX}AllTraffic:2"),
                SPENT.to_owned()
            ]
        );
    }

    #[test]
    fn a_terms_stretch_is_marked_and_one_written_before_the_mark_reads_as_a_look_ups() {
        let term = StandingStretch {
            pico_per_hour: 200_000_000_000,
            from: (PriceOrigin::Cache, Some(Arc::from("rate of the term"))),
            term: true,
        };
        let value = term.value();
        assert_eq!(StandingStretch::read(&value), Some(term.clone()));
        // As an older version writes a stretch (and reads this one): no mark.
        let AttributeValue::M(mut map) = value else {
            panic!("a map");
        };
        assert_eq!(map.remove(RATE_TERM), Some(AttributeValue::Bool(true)));
        let looked_up = StandingStretch::read(&AttributeValue::M(map)).unwrap();
        assert!(!looked_up.term);
        assert_eq!(looked_up.pico_per_hour, term.pico_per_hour);
    }

    #[test]
    fn a_figure_too_large_to_be_spend_is_read_as_the_bound() {
        let item =
            |value: &str| HashMap::from([(SPENT.to_owned(), AttributeValue::N(value.into()))]);
        let read = |value: &str| int(&item(value), SPENT);
        // $25 in pico-USD, as written.
        assert_eq!(read("25000000000000"), Some(25_000_000_000_000));
        // 38 nines (DynamoDB's precision; fits an i128, ~10³⁸) and 50 digits (does
        // not): a corrupt item, read as ±(2⁹⁶ − 1).
        let nines = "9".repeat(38);
        assert_eq!(read(&nines), Some(MAX_READ));
        assert_eq!(read(&format!("-{nines}")), Some(-MAX_READ));
        assert_eq!(read(&"1".repeat(50)), Some(MAX_READ));
        assert_eq!(read(&format!("-{}", "1".repeat(50))), Some(-MAX_READ));
        // Not an integer: not a figure sagemeter writes.
        for text in ["1.5", "1E+100", "", "-", "12a"] {
            assert_eq!(read(text), None, "{text:?}");
        }
        // Sums and differences of two bounded figures fit an i128.
        assert!(MAX_READ.checked_mul(200).is_some());
    }
}
