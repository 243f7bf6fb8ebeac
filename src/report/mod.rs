//! Report: where the money went, from a ledger.
//!
//! ```no_run
//! use sagemeter::report::{GroupBy, ReportOptions, render_table, report_file};
//! let options = ReportOptions::new(GroupBy::Endpoint)
//!     .since(sagemeter::report::parse_time_bound("2026-11-01")?);
//! let report = report_file("calls.jsonl", &options)?;
//! print!("{}", render_table(&report));
//! # Ok::<(), sagemeter::report::ReportError>(())
//! ```
//!
//! # Definitions
//! - **Which calls**: those whose start (`at`) is in `[since, until)`: `since`
//!   included, `until` excluded, both UTC. A bare date is midnight UTC, so
//!   `--since 2026-11-01 --until 2026-11-08` is the seven days 1–7 November.
//! - **Groups** (`--by`): `endpoint`; `variant` (`endpoint/variant`, `endpoint/-`
//!   when the variant is unknown); `component` (`endpoint/inference component`)
//!   and `model` (`endpoint/target model`), `endpoint/-` for calls that named
//!   none; `region` (the region the call was made in, [`NO_REGION`] for receipts
//!   written before receipts carried one); `tag:<key>` (the tag's value,
//!   [`UNTAGGED`] for calls without it); `day` (`YYYY-MM-DD`, UTC); `hour`
//!   (`YYYY-MM-DDTHH:00Z`, UTC). Time groups are listed in time order, the others
//!   by cost, highest first (then by name).
//! - **Regions**: an endpoint is a deployment of one region, and two regions can
//!   have endpoints of the same name (a client per region writing one ledger).
//!   When the receipts counted were made in more than one region
//!   ([`Report::regions`]), the endpoint groupings (`endpoint`, `variant`,
//!   `component`, `model`) and the accrual fallbacks are per region too, the
//!   region first: `eu-west-1/demo-realtime` (`-/…` for receipts without a
//!   region). Of one region (receipts without one taken as it), keys are as
//!   above. `tag:<key>`, `day` and `hour` groups hold every region's calls.
//! - **Calls**: one per call. An asynchronous invocation (`InvokeEndpointAsync`)
//!   has two receipts, its submission (data in, the per-inference fee) and later
//!   its settlement (compute, data out, tokens; [`Cost::is_async_settlement`]), and
//!   is one call: the submission counts it, the settlement adds its cost, tokens,
//!   unpriced lines and outcome but no call ([`CallPart`]). The settlement's `at`
//!   is the submission's, so both fall in the same groups and range. A group can
//!   hold a settlement without its submission (e.g. one whose submission is in
//!   another ledger file not reported): its cost counts, with no call. The one
//!   receipt `MeteringInterceptor` makes of an asynchronous invocation (noted
//!   "metered by the SDK interceptor"; it makes no settlement) is the whole call
//!   ([`CallPart::AsyncOnly`]): it counts the call, its cost (in the cost per
//!   call) and its latency, awaits no settlement, and is not an answered call.
//! - **cost_usd**: the exact sum of the receipts' `cost_usd` (priced lines only).
//! - **usd_per_1000_calls**: cost_usd × 1000 ÷ calls.
//! - **Percentiles** (cost per call, latency): nearest rank. For p in (0, 100]
//!   and n values sorted ascending, the value at rank ⌈p × n / 100⌉ (1-based). It
//!   is always an observed value, never interpolated: p50 of 1, 2, 3, 4 is 2.
//!   Exact up to 4,096 calls in a group (and in the total, which holds all the
//!   calls of every group); beyond, so that memory does not grow
//!   with the calls, the smallest observed value of the 0.1%-wide bucket that
//!   holds the rank: at most 0.1% below the exact one
//!   ([`Report::approximate_percentiles`] says so).
//!   One value per call: for an asynchronous invocation, the **cost per call** is
//!   its settlement's (where its compute is billed; the submission's data-in fee is
//!   left out of that percentile, not of cost_usd) and the **latency** its
//!   submission's (the client-side time of the `InvokeEndpointAsync` request; the
//!   processing time on the settlement is not a client latency).
//! - **Latency**: the billed time on the receipt (`latency_us`), in ms: each
//!   attempt that reached the model, from its request to its end (a ledger
//!   written before receipts billed attempts holds the calls' wall times from
//!   their start, credentials and back-off included, mixed into the percentiles).
//! - **Tokens**: sums of the input and output tokens the responses reported. Only
//!   a call answered with HTTP 2XX reports tokens: `answered_calls` counts those
//!   (a response stream whose 200 arrived, however it ended; an asynchronous
//!   invocation by its settlement, when its inference succeeded), and a model
//!   error, a call cancelled before its answer or a failed asynchronous inference
//!   is none, whatever counts its receipt holds (its token lines charge 0 tokens).
//!   `calls_with_tokens` counts the answered calls that reported any,
//!   `calls_with_input_tokens` and `calls_with_output_tokens` each count apart (TGI
//!   reports only output), and the table's note says when some answered call did
//!   not report a count: a count no call reported is unknown, not 0 (`-` in the
//!   table).
//!   **usd_per_1000_tokens** = the cost of the calls that reported both counts ×
//!   1000 ÷ their input + output tokens (`None` when no call reported both): a call
//!   reporting one count only would add its whole cost but part of its tokens, and
//!   calls without token counts would dilute it. Of an asynchronous invocation, the
//!   settlement reports the tokens and its cost is the one counted here.
//! - **Unpriced**: `unpriced_calls` counts calls with at least one unpriced line
//!   (an asynchronous invocation counts by each of its receipts that has one, so
//!   one whose submission and settlement both have one counts twice);
//!   `unpriced_share` = unpriced_calls ÷ calls, at most 1. When it is not zero,
//!   cost figures are lower bounds.
//! - **Fallback prices**: `fallback_priced_calls` counts calls with at least one
//!   line priced from a fallback
//!   ([`Provenance::is_fallback`](crate::pricing::Provenance::is_fallback): the bundled
//!   snapshot, or a cached price served stale or kept after a failed refresh),
//!   whose cost may not be at AWS's current prices. An asynchronous invocation
//!   counts by each of its receipts that has one (the two are not paired), the
//!   count at most the calls.
//! - **Async not settled here**: `unsettled_async_calls` counts submissions
//!   beyond the settlements in the ledgers, plus every submission no settlement
//!   will ever come for (one that failed after SageMaker accepted it, or that
//!   its caller dropped once accepted: its notes say so) or for one of whose
//!   jobs none will (SageMaker accepted it more than once: its last job is
//!   settled, the others are not); their compute, billed at settlement, is in
//!   no figure: cost figures are then lower bounds.
//!   `settlements_without_submission` counts settlements beyond the submissions
//!   (submitted in other ledgers or before the range, never those that will
//!   not settle): cost without a call.
//! - **errors** / **cancelled**: calls whose outcome was `error` / `cancelled`
//!   (they are included in every other figure: a failed call still cost money).
//!   An asynchronous invocation is an error when its submission failed (it then
//!   has no settlement) or its settlement did (the inference failed): once.
//! - Derived money (per 1,000 calls or tokens) is rounded to 10⁻¹² USD like the
//!   receipts; shares to 6 decimal places; sums and percentiles are exact.
//! - **Overflow**: a sum (cost, input or output tokens) or a cost per 1,000 calls
//!   or tokens that does not fit (`Decimal`: too large, or a sum with more
//!   digits than its 28 or 29 hold, which is not rounded to fewer places; `u64`)
//!   is [`ReportError::Overflow`],
//!   naming the ledger (and the line, when one receipt tipped it over): such
//!   amounts are no meter's, and a capped or wrapped figure would be wrong.
//! - **Over time** ([`OverTime`]): the cost per group and time bucket (hours when
//!   the calls span at most 72 hours, else days), what `--chart` draws.
//! - **Accrual fallbacks** ([`Report::accrual_fallbacks`]): each variant and
//!   standing charge whose accrual, on a receipt in the range, was priced (for
//!   some stretch since its process began metering) from a fallback: the bundled
//!   snapshot, or a cached price served stale or kept after a failed refresh, as
//!   the cache's note says ([`AccrualSource::is_fallback`]).

#[cfg(feature = "charts")]
pub mod chart;
#[cfg(test)]
mod props;
mod quantiles;
mod scan;

use crate::billing::{AccrualCharge, AccrualSource, Cost, round_cost};
use crate::ledger::{LedgerError, TornTail};
use crate::pricing::PriceOrigin;
use crate::usage::Outcome;
use crate::util::exact_sum;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use quantiles::Quantiles;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The group key of calls without the tag in a `tag:<key>` report.
pub const UNTAGGED: &str = "(untagged)";

/// The region of receipts written before receipts carried one, in a `region`
/// report and before the keys of a report of several regions.
pub const NO_REGION: &str = "-";

/// Calls spanning at most this many hours are charted per hour, longer spans per day.
pub const HOURLY_SPAN_LIMIT_HOURS: i64 = 72;

/// What can go wrong making a report.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// `--by` is not one of the groupings.
    #[error(
        "cannot group by `{0}`: use endpoint, variant, component, model, region, day, hour or \
         tag:<key> (e.g. tag:team)"
    )]
    BadGroupBy(String),
    /// A time bound did not parse.
    #[error(
        "`{0}` is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, \
         midnight UTC)"
    )]
    BadTime(String),
    /// `since` is not before `until`.
    #[error("the range is empty: since ({since}) must be before until ({until})")]
    EmptyRange {
        /// Start.
        since: DateTime<Utc>,
        /// End (excluded).
        until: DateTime<Utc>,
    },
    /// The chart could not be drawn or written.
    #[error("cannot draw the chart: {0}")]
    Chart(String),
    /// A sum (cost, tokens) or a figure derived from one (per 1,000 calls or
    /// tokens) does not fit: the receipts carry amounts or token counts no meter
    /// wrote. Nothing is rounded, wrapped or capped instead.
    #[error(
        "{}{what} overflows: the receipts carry amounts or token counts beyond what a report \
         can add up (a corrupt or hand-edited ledger?)",
        overflow_where(.ledgers, *.line)
    )]
    Overflow {
        /// The ledger files being reported on: the one whose receipt overflowed a
        /// sum, or every file when partial sums overflowed as they were added up
        /// (empty for receipts given in memory).
        ledgers: Vec<PathBuf>,
        /// The line of the receipt that overflowed a sum, when it is known.
        line: Option<u64>,
        /// What overflowed, e.g. "the cost of group `e`".
        what: String,
    },
}

impl ReportError {
    /// An overflow of `what`, in no ledger yet.
    fn overflow(what: String) -> Self {
        ReportError::Overflow {
            ledgers: Vec::new(),
            line: None,
            what,
        }
    }

    /// Says which ledgers (and line) an overflow is of, when it does not yet.
    pub(crate) fn in_ledgers(mut self, files: &[PathBuf], at: Option<u64>) -> Self {
        if let ReportError::Overflow { ledgers, line, .. } = &mut self
            && ledgers.is_empty()
        {
            ledgers.extend_from_slice(files);
            *line = line.or(at);
        }
        self
    }
}

/// "ledger a.jsonl, line 3: ", "ledgers a, b, c and 2 more: " or "".
fn overflow_where(ledgers: &[PathBuf], line: Option<u64>) -> String {
    let mut text = match ledgers {
        [] => return String::new(),
        [one] => format!("ledger {}", one.display()),
        many => {
            let named: Vec<String> = many
                .iter()
                .take(3)
                .map(|p| p.display().to_string())
                .collect();
            let mut text = format!("ledgers {}", named.join(", "));
            if many.len() > 3 {
                text.push_str(&format!(" and {} more", many.len() - 3));
            }
            text
        }
    };
    if let Some(line) = line {
        text.push_str(&format!(", line {line}"));
    }
    text.push_str(": ");
    text
}

/// What overflowed in a group's sums.
#[derive(Debug)]
struct Overflow(&'static str);

/// The error of an overflow of `of`'s sums ("all calls", "group `e`").
fn overflow(of: &str) -> impl Fn(Overflow) -> ReportError + '_ {
    move |Overflow(what)| ReportError::overflow(format!("the {what} of {of}"))
}

/// `a + b` exactly, or which sum overflowed (see [`exact_sum`]).
fn sum(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    exact_sum(a, b).ok_or(Overflow(what))
}

/// `a + b` of counts, or which sum overflowed.
fn count(a: u64, b: u64, what: &'static str) -> Result<u64, Overflow> {
    a.checked_add(b).ok_or(Overflow(what))
}

/// How calls are grouped.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// Per endpoint.
    #[default]
    Endpoint,
    /// Per `endpoint/variant`.
    Variant,
    /// Per `endpoint/inference component` (`endpoint/-` for calls that named none).
    Component,
    /// Per `endpoint/target model` of a multi-model endpoint (`endpoint/-` for calls
    /// that named none).
    Model,
    /// Per value of a tag.
    Tag(String),
    /// Per region the calls were made in ([`NO_REGION`] for receipts without one).
    Region,
    /// Per UTC day.
    Day,
    /// Per UTC hour.
    Hour,
}

impl GroupBy {
    /// True for the time groupings (`day`, `hour`).
    pub fn is_time(&self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Hour)
    }

    /// True for the groupings of endpoints (`endpoint`, `variant`, `component`,
    /// `model`): an endpoint is a deployment of one region, and the calls of
    /// same-named endpoints of several regions are groups of their own.
    pub fn is_per_region(&self) -> bool {
        matches!(
            self,
            GroupBy::Endpoint | GroupBy::Variant | GroupBy::Component | GroupBy::Model
        )
    }

    /// The key of the group a call belongs to among the calls of its region.
    ///
    /// A report's key is this one when the calls counted were made in one region
    /// (receipts without one taken as it). When they were made in several
    /// ([`Report::regions`]), the endpoint groupings ([`is_per_region`](Self::is_per_region))
    /// start with the region: `eu-west-1/` then this key (`-/` for a receipt
    /// without a region, [`NO_REGION`]); `region`, `tag:<key>`, `day` and `hour`
    /// keys are this one still.
    pub fn key(&self, cost: &Cost) -> String {
        let mut key = String::new();
        self.write_key(&ReportRow::of(cost, self), &mut key);
        key
    }

    /// Writes the group of `row` into `key` (cleared first).
    fn write_key(&self, row: &ReportRow<'_>, key: &mut String) {
        use std::fmt::Write;
        key.clear();
        match self {
            GroupBy::Endpoint => key.push_str(row.endpoint),
            GroupBy::Variant => {
                key.push_str(row.endpoint);
                key.push('/');
                key.push_str(row.variant.unwrap_or("-"));
            }
            GroupBy::Component => {
                key.push_str(row.endpoint);
                key.push('/');
                key.push_str(row.inference_component.unwrap_or("-"));
            }
            GroupBy::Model => {
                key.push_str(row.endpoint);
                key.push('/');
                key.push_str(row.target_model.unwrap_or("-"));
            }
            GroupBy::Tag(_) => key.push_str(row.tag.as_deref().unwrap_or(UNTAGGED)),
            GroupBy::Region => key.push_str(row.region.unwrap_or(NO_REGION)),
            GroupBy::Day => {
                let _ = write!(key, "{}", row.at.format("%Y-%m-%d"));
            }
            GroupBy::Hour => {
                let _ = write!(key, "{}", row.at.format("%Y-%m-%dT%H:00Z"));
            }
        }
    }

    /// The time bucket that decides the key of a time grouping (seconds).
    fn time_bucket(&self, at: DateTime<Utc>) -> Option<i64> {
        match self {
            GroupBy::Day => Some(at.timestamp().div_euclid(86_400)),
            GroupBy::Hour => Some(at.timestamp().div_euclid(3_600)),
            _ => None,
        }
    }
}

/// What a report reads of one receipt. Readers that can read less than a whole
/// [`Cost`] (a format-2 ledger, Parquet columns) make these directly.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ReportRow<'a> {
    /// When the call started.
    pub at: DateTime<Utc>,
    /// Endpoint name.
    pub endpoint: &'a str,
    /// The variant billed, when known.
    pub variant: Option<&'a str>,
    /// The inference component the call named.
    pub inference_component: Option<&'a str>,
    /// The target model the call named (multi-model endpoints).
    pub target_model: Option<&'a str>,
    /// The region the call was made in (`None` in receipts written before
    /// receipts carried one).
    pub region: Option<&'a str>,
    /// For a `tag:<key>` report, the call's value of that tag.
    pub tag: Option<Cow<'a, str>>,
    /// The receipt's total.
    pub cost_usd: Decimal,
    /// Client-side latency, microseconds.
    pub latency_us: u64,
    /// Input tokens reported.
    pub input_tokens: Option<u64>,
    /// Output tokens reported.
    pub output_tokens: Option<u64>,
    /// Every line priced.
    pub fully_priced: bool,
    /// How the call ended.
    pub outcome: Outcome,
    /// Payload parts received (response streams only, as the receipt's
    /// `usage.parts`): a stream whose 200 arrived got its answer, however it ended.
    pub parts: Option<u64>,
    /// Which receipt of its call this is: a call's only one, or one of the two
    /// of an asynchronous invocation (see [`CallPart`]).
    pub part: CallPart,
    /// Where the rates of the receipt's accrual came from (at least every
    /// fallback among them; empty without an accrual or in older ledgers).
    pub accrual_priced_from: Cow<'a, [AccrualSource]>,
    /// Some line was priced from a fallback
    /// ([`Cost::is_priced_from_fallback`]).
    pub fallback_priced: bool,
    /// An asynchronous invocation's submission whose notes say no settlement
    /// will ever come for a job it queued (it failed after SageMaker accepted
    /// it, or its caller dropped it once accepted: none comes; SageMaker
    /// accepted it more than once: [`settled_in_part`](Self::settled_in_part)):
    /// that job's compute is on no receipt.
    pub never_settled: bool,
    /// A submission [`never_settled`](Self::never_settled) in part only:
    /// SageMaker accepted it more than once (a 2XX answer cut off, then
    /// retried), and the settlement of the last job it accepted is still to
    /// come; the others' is not.
    pub settled_in_part: bool,
}

/// Which receipt of a call a [`ReportRow`] is. An asynchronous invocation
/// (`InvokeEndpointAsync`) has two receipts, one call: the module docs say what
/// each counts for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallPart {
    /// The only receipt of its call (every operation but `InvokeEndpointAsync`).
    #[default]
    Whole,
    /// The submission of an asynchronous invocation (data in, the per-inference
    /// fee): it counts the call.
    AsyncSubmission,
    /// The settlement of an asynchronous invocation (compute, data out, tokens;
    /// [`Cost::is_async_settlement`]): it adds its cost, not a call.
    AsyncSettlement,
    /// The only receipt of an asynchronous invocation: the one
    /// `MeteringInterceptor` makes (noted "metered by the SDK interceptor"; it
    /// makes no settlement). It counts the call, its cost (the cost per call
    /// too) and its latency; it awaits no settlement, and does not say the
    /// invocation was answered (its output, in S3, is not seen).
    AsyncOnly,
}

impl CallPart {
    /// The part of `operation`'s call a receipt is, given whether it is a
    /// settlement ([`Cost::is_async_settlement`]) and whether the SDK interceptor
    /// made it (its notes say so).
    pub(crate) fn of(
        operation: crate::usage::Operation,
        settlement: bool,
        by_interceptor: bool,
    ) -> Self {
        match (operation, settlement, by_interceptor) {
            (crate::usage::Operation::InvokeEndpointAsync, _, true) => CallPart::AsyncOnly,
            (crate::usage::Operation::InvokeEndpointAsync, true, false) => {
                CallPart::AsyncSettlement
            }
            (crate::usage::Operation::InvokeEndpointAsync, false, false) => {
                CallPart::AsyncSubmission
            }
            _ => CallPart::Whole,
        }
    }

    /// The part of its call `cost` is: [`CallPart::of`] its operation, whether it
    /// is a settlement ([`Cost::is_async_settlement`]) and whether the SDK
    /// interceptor made it. One rule for `report` and for `compare --from-ledger`.
    pub(crate) fn of_receipt(cost: &Cost) -> Self {
        CallPart::of(
            cost.usage.operation,
            cost.is_async_settlement(),
            cost.is_by_interceptor(),
        )
    }

    /// True for the receipts that count a call (all but settlements).
    fn counts_the_call(self) -> bool {
        self != CallPart::AsyncSettlement
    }

    /// Whether a receipt of this part with these notes is an asynchronous
    /// invocation's submission no settlement will ever come for
    /// ([`ReportRow::never_settled`]; the notes read by
    /// [`is_never_settled`](crate::billing::is_never_settled)). One rule for
    /// receipts and for ledger rows read without making a receipt.
    pub(crate) fn never_settled<'n>(self, notes: impl Iterator<Item = &'n str>) -> bool {
        self == CallPart::AsyncSubmission && crate::billing::is_never_settled(notes)
    }

    /// Whether a receipt of this part with these notes is an asynchronous
    /// invocation's submission settled in part only
    /// ([`ReportRow::settled_in_part`]; the notes read by
    /// [`is_settled_in_part`](crate::billing::is_settled_in_part)).
    pub(crate) fn settled_in_part<'n>(self, notes: impl Iterator<Item = &'n str>) -> bool {
        self == CallPart::AsyncSubmission && crate::billing::is_settled_in_part(notes)
    }
}

impl<'a> ReportRow<'a> {
    /// A row of a call of `endpoint` at `at` that cost `cost_usd`: every line
    /// priced, outcome `ok`, no tokens nor stream parts, latency 0, the call's
    /// only receipt ([`CallPart::Whole`]), until set.
    pub fn new(at: DateTime<Utc>, endpoint: &'a str, cost_usd: Decimal) -> Self {
        ReportRow {
            at,
            endpoint,
            variant: None,
            inference_component: None,
            target_model: None,
            region: None,
            tag: None,
            cost_usd,
            latency_us: 0,
            input_tokens: None,
            output_tokens: None,
            fully_priced: true,
            outcome: Outcome::Ok,
            parts: None,
            part: CallPart::Whole,
            accrual_priced_from: Cow::Borrowed(&[]),
            fallback_priced: false,
            never_settled: false,
            settled_in_part: false,
        }
    }

    /// The row of a receipt, for a report grouped `by`.
    pub fn of(cost: &'a Cost, by: &GroupBy) -> Self {
        let part = CallPart::of_receipt(cost);
        ReportRow {
            at: cost.at,
            endpoint: &cost.endpoint,
            variant: cost.variant.as_deref(),
            inference_component: cost.inference_component.as_deref(),
            target_model: cost.target_model.as_deref(),
            region: cost.region.as_deref(),
            tag: match by {
                GroupBy::Tag(key) => cost.tags.get(key).map(|v| Cow::Borrowed(v.as_str())),
                _ => None,
            },
            cost_usd: cost.cost_usd,
            latency_us: u64::try_from(cost.usage.latency.as_micros()).unwrap_or(u64::MAX),
            input_tokens: cost.usage.input_tokens,
            output_tokens: cost.usage.output_tokens,
            fully_priced: cost.is_fully_priced(),
            outcome: cost.usage.outcome,
            parts: cost.usage.parts,
            part,
            accrual_priced_from: match &cost.accrual {
                Some(accrual) => Cow::Borrowed(&accrual.priced_from),
                None => Cow::Borrowed(&[]),
            },
            fallback_priced: cost.is_priced_from_fallback(),
            never_settled: part.never_settled(cost.notes.iter().map(String::as_str)),
            settled_in_part: part.settled_in_part(cost.notes.iter().map(String::as_str)),
        }
    }

    /// True for the receipt of a call answered with HTTP 2XX, the only calls that
    /// can report tokens (see `billing::answered_2xx`): a call answered, a
    /// response stream whose 200 arrived, an asynchronous invocation's settlement
    /// that succeeded. Not a submission: its invocation is answered by its
    /// settlement, if at all; nor the interceptor's only receipt of one, which
    /// does not see the answer.
    fn answered(&self) -> bool {
        matches!(self.part, CallPart::Whole | CallPart::AsyncSettlement)
            && (self.outcome == Outcome::Ok || self.parts.is_some())
    }
}

impl FromStr for GroupBy {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, ReportError> {
        match s {
            "endpoint" => Ok(GroupBy::Endpoint),
            "variant" => Ok(GroupBy::Variant),
            "component" => Ok(GroupBy::Component),
            "model" => Ok(GroupBy::Model),
            "region" => Ok(GroupBy::Region),
            "day" => Ok(GroupBy::Day),
            "hour" => Ok(GroupBy::Hour),
            _ => match s.strip_prefix("tag:") {
                Some(key) if !key.trim().is_empty() => Ok(GroupBy::Tag(key.to_owned())),
                _ => Err(ReportError::BadGroupBy(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::Endpoint => f.write_str("endpoint"),
            GroupBy::Variant => f.write_str("variant"),
            GroupBy::Component => f.write_str("component"),
            GroupBy::Model => f.write_str("model"),
            GroupBy::Tag(key) => write!(f, "tag:{key}"),
            GroupBy::Region => f.write_str("region"),
            GroupBy::Day => f.write_str("day"),
            GroupBy::Hour => f.write_str("hour"),
        }
    }
}

/// A `--since`/`--until` value: RFC 3339 (any offset, converted to UTC), or a bare
/// `YYYY-MM-DD` date meaning midnight UTC at its start.
pub fn parse_time_bound(s: &str) -> Result<DateTime<Utc>, ReportError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
        .ok_or_else(|| ReportError::BadTime(s.to_owned()))
}

/// What to report on.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// Grouping.
    pub by: GroupBy,
    /// Calls starting at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Calls starting before this.
    pub until: Option<DateTime<Utc>>,
}

impl ReportOptions {
    /// All calls, grouped by `by`.
    pub fn new(by: GroupBy) -> Self {
        ReportOptions {
            by,
            since: None,
            until: None,
        }
    }

    /// Only calls starting at or after `since`.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only calls starting before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    fn validate(&self) -> Result<(), ReportError> {
        match (self.since, self.until) {
            (Some(since), Some(until)) if since >= until => {
                Err(ReportError::EmptyRange { since, until })
            }
            _ => Ok(()),
        }
    }

    fn includes(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The figures of one group (or of all calls). See the module docs for definitions.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The group (`total` for all calls).
    pub key: String,
    /// Calls.
    pub calls: u64,
    /// Total cost of the priced lines.
    pub cost_usd: Decimal,
    /// cost_usd × 1000 ÷ calls (`None` without calls).
    pub usd_per_1000_calls: Option<Decimal>,
    /// Median cost of one call (nearest rank).
    pub cost_per_call_p50_usd: Option<Decimal>,
    /// 95th percentile cost of one call (nearest rank).
    pub cost_per_call_p95_usd: Option<Decimal>,
    /// Median latency in ms (nearest rank).
    pub latency_p50_ms: Option<Decimal>,
    /// 95th percentile latency in ms (nearest rank).
    pub latency_p95_ms: Option<Decimal>,
    /// Input tokens reported, by the
    /// [`calls_with_input_tokens`](Self::calls_with_input_tokens) (unknown, not 0,
    /// when none).
    pub input_tokens: u64,
    /// Output tokens reported, by the
    /// [`calls_with_output_tokens`](Self::calls_with_output_tokens).
    pub output_tokens: u64,
    /// Calls answered with HTTP 2XX, the only ones that can report tokens: an
    /// asynchronous invocation is counted by its settlement, when its inference
    /// succeeded (so a settlement whose submission is not counted is one too).
    #[serde(default)]
    pub answered_calls: u64,
    /// Answered calls ([`answered_calls`](Self::answered_calls)) that reported
    /// any token count.
    pub calls_with_tokens: u64,
    /// Answered calls that reported their input tokens.
    #[serde(default)]
    pub calls_with_input_tokens: u64,
    /// Answered calls that reported their output tokens.
    #[serde(default)]
    pub calls_with_output_tokens: u64,
    /// Cost of the calls that reported both counts × 1000 ÷ their input + output
    /// tokens.
    pub usd_per_1000_tokens: Option<Decimal>,
    /// Calls with at least one unpriced line.
    pub unpriced_calls: u64,
    /// unpriced_calls ÷ calls (0 without calls).
    pub unpriced_share: Decimal,
    /// Calls that failed.
    pub errors: u64,
    /// Calls cancelled by the caller.
    pub cancelled: u64,
    /// Asynchronous invocations submitted in these ledgers whose settlement is not
    /// in them (more submissions than settlements): their compute, billed at
    /// settlement, is in no figure, so cost figures are lower bounds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unsettled_async_calls: u64,
    /// Settlements in these ledgers beyond their submissions (invocations submitted
    /// elsewhere, or before the range): cost without a call counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settlements_without_submission: u64,
    /// Calls with at least one line priced from a fallback (the bundled snapshot,
    /// or a cached price served stale or kept after a failed refresh): their cost
    /// may not be at AWS's current prices. At most [`calls`](Self::calls).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fallback_priced_calls: u64,
    /// Start of the first call.
    pub first_at: Option<DateTime<Utc>>,
    /// Start of the last call.
    pub last_at: Option<DateTime<Utc>>,
}

/// Time bucket of [`OverTime`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

/// One group's cost in one time bucket.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Calls in it.
    pub calls: u64,
    /// Their cost.
    pub cost_usd: Decimal,
}

/// One group's cost over time (only buckets with calls).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The group (for time groupings, the single series `total`).
    pub key: String,
    /// Buckets in time order.
    pub points: Vec<Point>,
}

/// Cost over time per group: what `--chart` draws.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverTime {
    /// Bucket size.
    pub bucket: Bucket,
    /// One series per group, in the order of [`Report::groups`].
    pub series: Vec<Series>,
}

/// A ledger summary. Serialises to JSON with money as decimal strings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The grouping (`endpoint`, `variant`, `tag:<key>`, `region`, `day`, `hour`).
    pub by: String,
    /// The `since` filter.
    pub since: Option<DateTime<Utc>>,
    /// The `until` filter (excluded).
    pub until: Option<DateTime<Utc>>,
    /// One entry per group.
    pub groups: Vec<GroupSummary>,
    /// All calls in the range.
    pub total: GroupSummary,
    /// The regions the calls counted were made in, in name order (receipts
    /// without one name none). More than one: the endpoint groupings' keys and
    /// the accrual fallbacks are per region (see the module docs).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Records outside `[since, until)`, not counted.
    pub outside_range: u64,
    /// A torn last line of the ledger, skipped (the first, of many files).
    pub torn_tail: Option<TornTail>,
    /// The file of [`torn_tail`](Self::torn_tail). Lossy UTF-8 in JSON (see
    /// [`lossy_path`]): a name that is not UTF-8 must not cut the output short.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy_path::option"
    )]
    pub torn_tail_file: Option<std::path::PathBuf>,
    /// Files whose torn last line was skipped.
    #[serde(default)]
    pub torn_tails: u64,
    /// Ledger files listed in a directory that were gone when their turn to be
    /// read came (a rolling ledger's retention removed them): not counted.
    #[serde(default)]
    pub removed_files: u64,
    /// Some group, or all calls together (the total), had more than 4,096 calls:
    /// the percentiles of that group or of the total are within 0.1% below the
    /// exact nearest rank (see the module docs).
    #[serde(default)]
    pub approximate_percentiles: bool,
    /// Cost over time per group.
    pub over_time: OverTime,
    /// The variants whose accrual was priced from a fallback on some receipt in
    /// the range (see the module docs), by endpoint, variant, charge and source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accrual_fallbacks: Vec<AccrualFallback>,
}

/// A variant whose accrual was priced from a fallback ([`Report::accrual_fallbacks`]):
/// its idle instance-hours, provisioned concurrency or storage may be priced at an
/// out-of-date rate, as a receipt line priced from one says.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccrualFallback {
    /// The region of the endpoint (`None` in receipts without one). In a report
    /// of one region, receipts without one are taken as it: the fallback is that
    /// region's, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint name.
    pub endpoint: String,
    /// The variant, when the receipt named one.
    pub variant: Option<String>,
    /// The standing charge the fallback rate priced.
    pub charge: AccrualCharge,
    /// The fallback source.
    pub price_source: PriceOrigin,
    /// Its note, as on the latest such receipt in the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The start of the latest receipt in the range whose accrual listed it.
    pub last_at: DateTime<Utc>,
}

impl AccrualFallback {
    fn is_of(&self, row: &ReportRow<'_>, source: &AccrualSource) -> bool {
        self.region.as_deref() == row.region
            && self.endpoint == row.endpoint
            && self.variant.as_deref() == row.variant
            && self.charge == source.charge
            && self.price_source == source.price_source
    }

    /// Takes in a later sighting of the same fallback (its note, if later).
    fn update(&mut self, at: DateTime<Utc>, note: Option<&str>) {
        if at >= self.last_at {
            self.last_at = at;
            if self.note.as_deref() != note {
                self.note = note.map(str::to_owned);
            }
        }
    }
}

/// Adds the fallbacks of `row`'s accrual to `fallbacks`.
fn add_fallbacks(fallbacks: &mut Vec<AccrualFallback>, row: &ReportRow<'_>) {
    for source in row.accrual_priced_from.iter().filter(|s| s.is_fallback()) {
        match fallbacks.iter_mut().find(|f| f.is_of(row, source)) {
            Some(known) => known.update(row.at, source.note.as_deref()),
            None => fallbacks.push(AccrualFallback {
                region: row.region.map(str::to_owned),
                endpoint: row.endpoint.to_owned(),
                variant: row.variant.map(str::to_owned),
                charge: source.charge,
                price_source: source.price_source,
                note: source.note.as_deref().map(str::to_owned),
                last_at: row.at,
            }),
        }
    }
}

/// Calls and cost per hour (keyed by the hour's start, seconds since the epoch).
type Hourly = BTreeMap<i64, (u64, Decimal)>;

/// One hour of [`Hourly`]: its start, then its calls and cost.
type HourSlot = (i64, (u64, Decimal));

/// Running sums of one group.
#[derive(Debug, Default)]
struct Acc {
    calls: u64,
    cost_usd: Decimal,
    costs: Quantiles<Decimal>,
    latencies_us: Quantiles<u64>,
    input_tokens: u64,
    output_tokens: u64,
    answered_calls: u64,
    calls_with_tokens: u64,
    calls_with_input_tokens: u64,
    calls_with_output_tokens: u64,
    /// Cost and tokens (input + output) of the calls that reported both counts.
    cost_with_both_tokens: Decimal,
    both_tokens: Decimal,
    unpriced_calls: u64,
    /// Receipts with a line priced from a fallback.
    fallback_priced: u64,
    errors: u64,
    cancelled: u64,
    async_submissions: u64,
    async_settlements: u64,
    /// Submissions no settlement will ever come for ([`ReportRow::never_settled`]):
    /// unsettled whatever settlements there are.
    async_never_settled: u64,
    first_at: Option<DateTime<Utc>>,
    last_at: Option<DateTime<Utc>>,
    hourly: Hourly,
    /// The hour being added to (receipts come mostly in time order), not yet in
    /// `hourly`: its start, calls and cost.
    open_hour: Option<(i64, u64, Decimal)>,
}

impl Acc {
    /// Counts `row`; when a sum would overflow, says which and counts nothing.
    fn add(&mut self, row: &ReportRow<'_>) -> Result<(), Overflow> {
        // Every sum first, then the changes: an overflow leaves the group as it was.
        let cost_usd = sum(self.cost_usd, row.cost_usd, "cost")?;
        // Only a call answered with HTTP 2XX reports tokens: counts on a receipt
        // of one that was not (a failed asynchronous inference's output) are no
        // answer's, and its token lines charged none.
        let answered = row.answered();
        let (input, output) = match answered {
            true => (row.input_tokens, row.output_tokens),
            false => (None, None),
        };
        let input_tokens = count(self.input_tokens, input.unwrap_or(0), "input tokens")?;
        let output_tokens = count(self.output_tokens, output.unwrap_or(0), "output tokens")?;
        let both = match (input, output) {
            (Some(input), Some(output)) => Some((
                sum(
                    self.cost_with_both_tokens,
                    row.cost_usd,
                    "cost of the calls with tokens",
                )?,
                Decimal::from(input) + Decimal::from(output),
            )),
            _ => None,
        };
        // An asynchronous invocation is one call: its submission counts it (and
        // gives its latency), its settlement adds its cost (and the cost per call).
        let call = u64::from(row.part.counts_the_call());
        let hour = row.at.timestamp().div_euclid(3600) * 3600;
        let (open_hour, settled) = match self.open_hour {
            Some((open, calls, usd)) if open == hour => (
                (open, calls + call, sum(usd, row.cost_usd, "cost per hour")?),
                None,
            ),
            _ => ((hour, call, row.cost_usd), self.settled()?),
        };

        self.calls += call;
        self.cost_usd = cost_usd;
        if row.part != CallPart::AsyncSubmission {
            self.costs.push(row.cost_usd);
        }
        if row.part.counts_the_call() {
            self.latencies_us.push(row.latency_us);
        }
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self.answered_calls += u64::from(answered);
        self.calls_with_tokens += u64::from(input.is_some() || output.is_some());
        self.calls_with_input_tokens += u64::from(input.is_some());
        self.calls_with_output_tokens += u64::from(output.is_some());
        if let Some((cost, tokens)) = both {
            self.cost_with_both_tokens = cost;
            // At most the two token sums just checked: within a Decimal.
            self.both_tokens += tokens;
        }
        if !row.fully_priced {
            self.unpriced_calls += 1;
        }
        self.fallback_priced += u64::from(row.fallback_priced);
        match row.outcome {
            Outcome::Error => self.errors += 1,
            Outcome::Cancelled => self.cancelled += 1,
            _ => {}
        }
        match row.part {
            // Queued, but its settlement will never come (accepted, then failed
            // or dropped), or that of a job it queued besides (accepted more than
            // once): that compute is on no receipt. Settled in part, its last
            // job's settlement is to come.
            CallPart::AsyncSubmission if row.never_settled => {
                self.async_never_settled += 1;
                self.async_submissions += u64::from(row.settled_in_part);
            }
            // A failed submission not so marked was never accepted: it queued
            // nothing, so no settlement is to come, nor is any missing.
            CallPart::AsyncSubmission if row.outcome != Outcome::Error => {
                self.async_submissions += 1
            }
            CallPart::AsyncSettlement => self.async_settlements += 1,
            _ => {}
        }
        self.first_at = Some(self.first_at.map_or(row.at, |t| t.min(row.at)));
        self.last_at = Some(self.last_at.map_or(row.at, |t| t.max(row.at)));
        if let Some((hour, slot)) = settled {
            self.hourly.insert(hour, slot);
        }
        self.open_hour = Some(open_hour);
        Ok(())
    }

    /// The hour and `hourly` slot the open hour makes when settled.
    fn settled(&self) -> Result<Option<HourSlot>, Overflow> {
        let Some((hour, calls, usd)) = self.open_hour else {
            return Ok(None);
        };
        let (c, u) = self.hourly.get(&hour).copied().unwrap_or_default();
        Ok(Some((hour, (c + calls, sum(u, usd, "cost per hour")?))))
    }

    /// Moves the open hour into `hourly`.
    fn settle(&mut self) -> Result<(), Overflow> {
        if let Some((hour, slot)) = self.settled()? {
            self.hourly.insert(hour, slot);
        }
        self.open_hour = None;
        Ok(())
    }

    fn merge(&mut self, other: &Acc) -> Result<(), Overflow> {
        self.calls += other.calls;
        self.cost_usd = sum(self.cost_usd, other.cost_usd, "cost")?;
        self.costs.merge(&other.costs);
        self.latencies_us.merge(&other.latencies_us);
        self.input_tokens = count(self.input_tokens, other.input_tokens, "input tokens")?;
        self.output_tokens = count(self.output_tokens, other.output_tokens, "output tokens")?;
        self.answered_calls += other.answered_calls;
        self.calls_with_tokens += other.calls_with_tokens;
        self.calls_with_input_tokens += other.calls_with_input_tokens;
        self.calls_with_output_tokens += other.calls_with_output_tokens;
        self.cost_with_both_tokens = sum(
            self.cost_with_both_tokens,
            other.cost_with_both_tokens,
            "cost of the calls with tokens",
        )?;
        self.both_tokens += other.both_tokens;
        self.unpriced_calls += other.unpriced_calls;
        self.fallback_priced += other.fallback_priced;
        self.errors += other.errors;
        self.cancelled += other.cancelled;
        self.async_submissions += other.async_submissions;
        self.async_settlements += other.async_settlements;
        self.async_never_settled += other.async_never_settled;
        for t in [other.first_at, other.last_at].into_iter().flatten() {
            self.first_at = Some(self.first_at.map_or(t, |f| f.min(t)));
            self.last_at = Some(self.last_at.map_or(t, |l| l.max(t)));
        }
        self.settle()?;
        let open = other.open_hour.iter().map(|(h, c, u)| (h, (c, u)));
        for (hour, (calls, usd)) in other
            .hourly
            .iter()
            .map(|(h, (c, u))| (h, (c, u)))
            .chain(open)
        {
            let slot = self.hourly.entry(*hour).or_default();
            slot.0 += calls;
            slot.1 = sum(slot.1, *usd, "cost per hour")?;
        }
        Ok(())
    }

    fn summary(mut self, key: String) -> Result<(GroupSummary, Hourly), Overflow> {
        self.settle()?;
        let [cost_p50, cost_p95] = self.costs.nearest_ranks([50, 95]);
        let [latency_p50, latency_p95] = self.latencies_us.nearest_ranks([50, 95]);
        // n > 0 is a count of calls or tokens, at most 2 × u64::MAX: exact as a Decimal.
        let per_1000 = |usd: Decimal, n: Decimal, what| match n.is_zero() {
            true => Ok(None),
            false => match usd.checked_mul(Decimal::ONE_THOUSAND) {
                Some(thousand) => Ok(Some(round_cost(thousand / n))),
                None => Err(Overflow(what)),
            },
        };
        // Exact, with three places (µs), as before; u64::MAX fits a Decimal.
        let ms = |us: u64| Decimal::from_i128_with_scale(i128::from(us), 3);
        let summary = GroupSummary {
            key,
            calls: self.calls,
            cost_usd: self.cost_usd,
            usd_per_1000_calls: per_1000(
                self.cost_usd,
                Decimal::from(self.calls),
                "cost per 1,000 calls",
            )?,
            cost_per_call_p50_usd: cost_p50,
            cost_per_call_p95_usd: cost_p95,
            latency_p50_ms: latency_p50.map(ms),
            latency_p95_ms: latency_p95.map(ms),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            answered_calls: self.answered_calls,
            calls_with_tokens: self.calls_with_tokens,
            calls_with_input_tokens: self.calls_with_input_tokens,
            calls_with_output_tokens: self.calls_with_output_tokens,
            usd_per_1000_tokens: per_1000(
                self.cost_with_both_tokens,
                self.both_tokens,
                "cost per 1,000 tokens",
            )?,
            unpriced_calls: self.unpriced_calls,
            // At most 1: an asynchronous invocation both of whose receipts have
            // unpriced lines counts twice, and a group can hold settlements alone.
            unpriced_share: match (self.unpriced_calls, self.calls) {
                (0, _) => Decimal::ZERO,
                (unpriced, calls) if unpriced >= calls => Decimal::ONE,
                (unpriced, calls) => (Decimal::from(unpriced) / Decimal::from(calls)).round_dp(6),
            },
            errors: self.errors,
            cancelled: self.cancelled,
            unsettled_async_calls: self
                .async_submissions
                .saturating_sub(self.async_settlements)
                + self.async_never_settled,
            settlements_without_submission: self
                .async_settlements
                .saturating_sub(self.async_submissions),
            // An asynchronous invocation's two receipts are not paired: each with
            // a fallback line counts, at most the calls.
            fallback_priced_calls: self.fallback_priced.min(self.calls),
            first_at: self.first_at,
            last_at: self.last_at,
        };
        Ok((summary, self.hourly))
    }
}

/// The value at nearest rank ⌈p·n/100⌉ of sorted `values`, `None` when empty.
///
/// # Panics
/// When `percentile` is not in `1..=100` (a caller's mistake, not data).
pub fn nearest_rank<T>(sorted: &[T], percentile: u32) -> Option<&T> {
    assert!(
        (1..=100).contains(&percentile),
        "percentile must be in 1..=100"
    );
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (percentile as usize * n).div_ceil(100).max(1);
    sorted.get(rank - 1)
}

/// The groups of the calls of one region (`None`: receipts without one).
#[derive(Debug, Default)]
struct RegionGroups {
    region: Option<Box<str>>,
    groups: Groups,
}

/// Groups by key.
type Groups = HashMap<String, Acc, foldhash::fast::RandomState>;

/// Builds a [`Report`] one receipt at a time, in memory that grows with the
/// groups, not with the receipts.
#[derive(Debug)]
pub struct ReportBuilder {
    options: ReportOptions,
    /// The groups of each region, apart until [`finish`](Self::finish) knows
    /// whether the calls are of more than one.
    regions: Vec<RegionGroups>,
    /// The index in `regions` of the last receipt's region (receipts come in
    /// runs of one region).
    region: usize,
    outside_range: u64,
    torn_tail: Option<TornTail>,
    torn_tail_file: Option<std::path::PathBuf>,
    torn_tails: u64,
    removed_files: u64,
    /// The key being looked up (no allocation for a group seen before).
    key: String,
    /// The last time bucket of a time grouping, whose key is in `key`.
    last_bucket: Option<i64>,
    /// Accruals priced from a fallback ([`Report::accrual_fallbacks`]).
    accrual_fallbacks: Vec<AccrualFallback>,
}

impl ReportBuilder {
    /// An empty report; fails when the range is empty.
    pub fn new(options: ReportOptions) -> Result<Self, ReportError> {
        options.validate()?;
        Ok(ReportBuilder {
            options,
            regions: Vec::new(),
            region: 0,
            outside_range: 0,
            torn_tail: None,
            torn_tail_file: None,
            torn_tails: 0,
            removed_files: 0,
            key: String::new(),
            last_bucket: None,
            accrual_fallbacks: Vec::new(),
        })
    }

    /// Counts one receipt (or skips it when outside the range).
    ///
    /// A sum it would make overflow (cost, input or output tokens of its group)
    /// is [`ReportError::Overflow`], and the receipt is not counted. Token sums
    /// are refused rather than capped at `u64::MAX`: a capped sum would be wrong
    /// and make the cost per 1,000 tokens wrong with it.
    pub fn add(&mut self, cost: &Cost) -> Result<(), ReportError> {
        let row = ReportRow::of(cost, &self.options.by);
        self.add_row(&row)
    }

    /// Counts one receipt read as a [`ReportRow`] (or skips it when outside the
    /// range). For `tag:<key>` reports, `row.tag` must be that tag's value; for
    /// every report, `row.region` the receipt's region (several regions'
    /// same-named endpoints are told apart by it).
    /// Overflows as [`add`](Self::add).
    pub fn add_row(&mut self, row: &ReportRow<'_>) -> Result<(), ReportError> {
        if !self.options.includes(row.at) {
            self.outside_range += 1;
            return Ok(());
        }
        match self.options.by.time_bucket(row.at) {
            Some(bucket) if self.last_bucket == Some(bucket) => {}
            bucket => {
                self.options.by.write_key(row, &mut self.key);
                self.last_bucket = bucket;
            }
        }
        let region = self.region_of(row.region);
        let groups = &mut self.regions[region].groups;
        let added = match groups.get_mut(self.key.as_str()) {
            Some(acc) => acc.add(row),
            None => {
                let mut acc = Acc::default();
                let added = acc.add(row);
                if added.is_ok() {
                    groups.insert(self.key.clone(), acc);
                }
                added
            }
        };
        // The key is formatted only on an overflow: this is the per-receipt path.
        added.map_err(|e| overflow(&format!("group `{}`", self.key))(e))?;
        if !row.accrual_priced_from.is_empty() {
            add_fallbacks(&mut self.accrual_fallbacks, row);
        }
        Ok(())
    }

    /// The index in `regions` of `region`'s groups, made on first use. Receipts
    /// come in runs of one region, and a process calls a few: the last one is
    /// looked at first, then each.
    fn region_of(&mut self, region: Option<&str>) -> usize {
        if let Some(last) = self.regions.get(self.region)
            && last.region.as_deref() == region
        {
            return self.region;
        }
        self.region = match self
            .regions
            .iter()
            .position(|r| r.region.as_deref() == region)
        {
            Some(found) => found,
            None => {
                self.regions.push(RegionGroups {
                    region: region.map(Box::from),
                    groups: Groups::default(),
                });
                self.regions.len() - 1
            }
        };
        self.region
    }

    /// The options this builder reports on.
    pub(crate) fn options(&self) -> &ReportOptions {
        &self.options
    }

    /// Adds what `other` (of the same options) counted; an overflow fails the
    /// report (and leaves `self` part merged).
    pub(crate) fn merge(&mut self, other: ReportBuilder) -> Result<(), ReportError> {
        for theirs in other.regions {
            let region = self.region_of(theirs.region.as_deref());
            merge_groups(&mut self.regions[region].groups, theirs.groups)?;
        }
        for theirs in other.accrual_fallbacks {
            let same = |f: &&mut AccrualFallback| {
                f.region == theirs.region
                    && f.endpoint == theirs.endpoint
                    && f.variant == theirs.variant
                    && f.charge == theirs.charge
                    && f.price_source == theirs.price_source
            };
            match self.accrual_fallbacks.iter_mut().find(same) {
                Some(ours) => ours.update(theirs.last_at, theirs.note.as_deref()),
                None => self.accrual_fallbacks.push(theirs),
            }
        }
        self.outside_range += other.outside_range;
        self.torn_tails += other.torn_tails;
        self.removed_files += other.removed_files;
        if self.torn_tail.is_none() {
            self.torn_tail = other.torn_tail;
            self.torn_tail_file = other.torn_tail_file;
        }
        Ok(())
    }

    /// Notes that `files` ledger files were gone when their turn to be read came
    /// (see [`Report::removed_files`]).
    pub fn removed_files(&mut self, files: u64) {
        self.removed_files += files;
    }

    /// Notes that a ledger file's torn last line was skipped (once per file).
    pub fn torn_tail(&mut self, torn: Option<TornTail>) {
        if let Some(torn) = torn {
            self.torn_tails += 1;
            self.torn_tail.get_or_insert(torn);
        }
    }

    /// [`torn_tail`](Self::torn_tail) of `file`, which the report's note names.
    pub fn torn_tail_of(&mut self, file: &std::path::Path, torn: TornTail) {
        if self.torn_tail.is_none() {
            self.torn_tail_file = Some(file.to_owned());
        }
        self.torn_tail(Some(torn));
    }

    /// The report; [`ReportError::Overflow`] when the groups' sums overflow as
    /// they are added up into the total, or a cost per 1,000 calls or tokens
    /// does not fit.
    pub fn finish(self) -> Result<Report, ReportError> {
        let mut regions: Vec<String> = self
            .regions
            .iter()
            .filter(|r| !r.groups.is_empty())
            .filter_map(|r| r.region.as_deref().map(str::to_owned))
            .collect();
        regions.sort();
        regions.dedup();
        // The calls of several regions' same-named endpoints are groups of their
        // own; of one region, receipts without one are taken as it.
        let per_region = regions.len() > 1 && self.options.by.is_per_region();
        let mut by_key = Groups::default();
        for RegionGroups { region, groups } in self.regions {
            if per_region {
                let region = region.as_deref();
                let keyed = groups
                    .into_iter()
                    .map(|(key, acc)| (region_key(region, &key), acc))
                    .collect();
                merge_groups(&mut by_key, keyed)?;
            } else {
                merge_groups(&mut by_key, groups)?;
            }
        }
        let mut all = Acc::default();
        for acc in by_key.values() {
            all.merge(acc).map_err(overflow("all calls"))?;
        }
        // The total's percentiles too: it holds every group's values, and
        // switches to buckets past the limit though no group does.
        let approximate_percentiles = by_key
            .values()
            .chain([&all])
            .any(|acc| !acc.costs.is_exact() || !acc.latencies_us.is_exact());
        let span_hours = match (all.first_at, all.last_at) {
            (Some(first), Some(last)) => (last - first).num_hours(),
            _ => 0,
        };
        let bucket = if self.options.by == GroupBy::Day {
            Bucket::Day
        } else if self.options.by == GroupBy::Hour || span_hours <= HOURLY_SPAN_LIMIT_HOURS {
            Bucket::Hour
        } else {
            Bucket::Day
        };
        let (mut total, total_hourly) = all
            .summary("total".to_owned())
            .map_err(overflow("all calls"))?;

        let mut groups: Vec<(GroupSummary, Hourly)> = Vec::with_capacity(by_key.len());
        for (key, acc) in by_key {
            let group = format!("group `{key}`");
            groups.push(acc.summary(key).map_err(overflow(&group))?);
        }
        // The groups' own: a submission in one group (by tag, say) and a settlement
        // in another are one of each, not none.
        total.unsettled_async_calls = groups.iter().map(|(g, _)| g.unsettled_async_calls).sum();
        total.settlements_without_submission = groups
            .iter()
            .map(|(g, _)| g.settlements_without_submission)
            .sum();
        if self.options.by.is_time() {
            groups.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        } else {
            groups.sort_by(|a, b| b.0.cost_usd.cmp(&a.0.cost_usd).then(a.0.key.cmp(&b.0.key)));
        }
        let series = if self.options.by.is_time() {
            vec![series("total".to_owned(), &total_hourly, bucket).map_err(overflow("all calls"))?]
        } else {
            let mut all = Vec::with_capacity(groups.len());
            for (g, hourly) in &groups {
                let group = format!("group `{}`", g.key);
                all.push(series(g.key.clone(), hourly, bucket).map_err(overflow(&group))?);
            }
            all
        };
        let mut accrual_fallbacks = self.accrual_fallbacks;
        if let [region] = regions.as_slice() {
            accrual_fallbacks = of_one_region(accrual_fallbacks, region);
        }
        accrual_fallbacks.sort_by(|a, b| {
            (
                &a.region,
                &a.endpoint,
                &a.variant,
                a.charge,
                a.price_source.as_str(),
            )
                .cmp(&(
                    &b.region,
                    &b.endpoint,
                    &b.variant,
                    b.charge,
                    b.price_source.as_str(),
                ))
        });
        Ok(Report {
            by: self.options.by.to_string(),
            since: self.options.since,
            until: self.options.until,
            groups: groups.into_iter().map(|(g, _)| g).collect(),
            total,
            regions,
            outside_range: self.outside_range,
            torn_tail: self.torn_tail,
            torn_tail_file: self.torn_tail_file,
            torn_tails: self.torn_tails,
            removed_files: self.removed_files,
            approximate_percentiles,
            over_time: OverTime { bucket, series },
            accrual_fallbacks,
        })
    }
}

/// The fallbacks of a report of one region, `region`: receipts without a region
/// are taken as it, so a fallback seen on both (a rolling ledger from before and
/// after receipts carried a region) is one, `region`'s, last seen at the later.
fn of_one_region(fallbacks: Vec<AccrualFallback>, region: &str) -> Vec<AccrualFallback> {
    let mut merged: Vec<AccrualFallback> = Vec::with_capacity(fallbacks.len());
    for mut f in fallbacks {
        if f.region.is_none() {
            f.region = Some(region.to_owned());
        }
        let same = |m: &&mut AccrualFallback| {
            m.region == f.region
                && m.endpoint == f.endpoint
                && m.variant == f.variant
                && m.charge == f.charge
                && m.price_source == f.price_source
        };
        match merged.iter_mut().find(same) {
            Some(known) => known.update(f.last_at, f.note.as_deref()),
            None => merged.push(f),
        }
    }
    merged
}

/// `key` of a group of `region`'s calls: `region/key` (`-/key` without a region).
fn region_key(region: Option<&str>, key: &str) -> String {
    match region {
        Some(region) => format!("{region}/{key}"),
        None => format!("{NO_REGION}/{key}"),
    }
}

/// Adds `theirs` to `ours`, group by group; an overflow names the group.
fn merge_groups(ours: &mut Groups, theirs: Groups) -> Result<(), ReportError> {
    for (key, acc) in theirs {
        match ours.get_mut(&key) {
            Some(mine) => mine
                .merge(&acc)
                .map_err(|e| overflow(&format!("group `{key}`"))(e))?,
            None => {
                ours.insert(key, acc);
            }
        }
    }
    Ok(())
}

fn series(key: String, hourly: &Hourly, bucket: Bucket) -> Result<Series, Overflow> {
    let mut buckets: Hourly = BTreeMap::new();
    for (hour, (calls, usd)) in hourly {
        let start = match bucket {
            Bucket::Hour => *hour,
            Bucket::Day => hour.div_euclid(86_400) * 86_400,
        };
        let slot = buckets.entry(start).or_default();
        slot.0 += calls;
        slot.1 = sum(slot.1, *usd, "cost per day")?;
    }
    Ok(Series {
        key,
        points: buckets
            .into_iter()
            .map(|(start, (calls, cost_usd))| Point {
                start: DateTime::from_timestamp(start, 0).unwrap_or_default(),
                calls,
                cost_usd,
            })
            .collect(),
    })
}

/// Paths as JSON strings, their bytes that are not UTF-8 replaced by U+FFFD (as
/// `Path::display` shows them in text output), for `#[serde(serialize_with)]`:
/// serde's own `Path` serialiser fails on such a name, and a `--json` output
/// would stop part-way through.
pub mod lossy_path {
    use serde::{Serialize, Serializer};
    use std::path::{Path, PathBuf};

    /// `path`, lossy.
    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }

    /// `path`, lossy, or `null`.
    pub fn option<S: Serializer>(path: &Option<PathBuf>, serializer: S) -> Result<S::Ok, S::Error> {
        path.as_deref().map(Lossy).serialize(serializer)
    }

    struct Lossy<'a>(&'a Path);

    impl Serialize for Lossy<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, serializer)
        }
    }
}

/// A report of receipts already in memory.
pub fn summarize<'a>(
    records: impl IntoIterator<Item = &'a Cost>,
    options: &ReportOptions,
) -> Result<Report, ReportError> {
    let mut builder = ReportBuilder::new(options.clone())?;
    for cost in records {
        builder.add(cost)?;
    }
    builder.finish()
}

/// A report of a ledger file, streamed. A torn last line is skipped and noted in
/// [`Report::torn_tail`]; other damage is an error naming the line, and so are
/// amounts or token counts whose sums overflow ([`ReportError::Overflow`]).
pub fn report_file(path: impl AsRef<Path>, options: &ReportOptions) -> Result<Report, ReportError> {
    report_files([path.as_ref()], options)
}

/// A report of many ledgers (files, or directories of them: see
/// [`ledger_files`](crate::ledger::ledger_files)), streamed: memory holds the
/// groups and a few blocks of each file, not the receipts. The files are read on
/// every core (blocks of whole lines, merged); the first bad line (by file, then
/// line) is the error.
///
/// A file named more than once (a directory and a file in it, the same file by
/// two paths: the same once canonicalised) is read once, with a WARN.
///
/// JSON Lines and Parquet files can be reported together, but not the same
/// receipts twice: two files that begin with the same receipt (same endpoint,
/// call id, start, latency and cost), a copy of a ledger or its conversion to the
/// other format, are [`LedgerError::SameReceipts`] (see
/// [`FirstReceipts`](crate::ledger::FirstReceipts)). Receipts are not
/// de-duplicated one by one (memory would grow with them).
///
/// An empty range ([`ReportError::EmptyRange`]) is refused before any file is
/// listed or read: a missing ledger is not what the caller hears first.
pub fn report_files<P: AsRef<Path>>(
    paths: impl IntoIterator<Item = P>,
    options: &ReportOptions,
) -> Result<Report, ReportError> {
    options.validate()?;
    let (mut jsonl, mut parquet) = (Vec::new(), Vec::new());
    for path in paths {
        inputs(path.as_ref(), &mut jsonl, &mut parquet)?;
    }
    drop_files_named_twice(&mut jsonl);
    drop_files_named_twice(&mut parquet);
    refuse_same_receipts(&jsonl, &parquet)?;
    let mut builder = scan::scan(&jsonl, options)?;
    let all = || jsonl.iter().chain(&parquet).cloned().collect::<Vec<_>>();
    if !parquet.is_empty() {
        builder
            .merge(parquet_report(&parquet, options)?)
            .map_err(|e| e.in_ledgers(&all(), None))?;
    }
    builder.finish().map_err(|e| e.in_ledgers(&all(), None))
}

/// Keeps the first of the paths in `files` that name the same file (a directory
/// and a file in it, a file given twice, by a relative and an absolute path, or
/// through a symbolic or hard link: see [`FileId`](crate::ledger::FileId)), with a WARN for each
/// dropped: its receipts are already counted. A path that does not canonicalise
/// (a missing file) is compared as given and left for the report to refuse.
fn drop_files_named_twice(files: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::with_capacity(files.len());
    files.retain(|path| {
        let first = seen.insert(crate::ledger::FileId::of(path));
        if !first {
            tracing::warn!(target: "sagemeter", path = %path.display(),
                "report: this ledger file is among the inputs more than once (a directory \
                 and a file in it, or the same file twice): its receipts are counted once");
        }
        first
    });
}

/// [`LedgerError::SameReceipts`] when two files begin with the same receipt.
/// Reads one receipt of each file; a file that does not read is left to the
/// report to refuse, with its line.
fn refuse_same_receipts(jsonl: &[PathBuf], parquet: &[PathBuf]) -> Result<(), ReportError> {
    let mut firsts = crate::ledger::FirstReceipts::new();
    for path in jsonl {
        let first = crate::ledger::LedgerReader::open(path)
            .ok()
            .and_then(|mut r| r.next());
        if let Some(Ok(cost)) = first {
            firsts.note(path, &cost)?;
        }
    }
    // Keyed from the key columns alone, as the report reads them: a copy another
    // tool rewrote (a cost at scale 6, a null currency) is told too.
    #[cfg(feature = "parquet")]
    for path in parquet {
        if let Some(Ok(key)) = crate::ledger::parquet::first_key(path) {
            firsts.note_key(path, key)?;
        }
    }
    #[cfg(not(feature = "parquet"))]
    let _ = parquet;
    Ok(())
}

#[cfg(feature = "parquet")]
fn parquet_report(
    files: &[PathBuf],
    options: &ReportOptions,
) -> Result<ReportBuilder, ReportError> {
    crate::ledger::parquet::report(files, options)
}

/// Without the feature no Parquet file is taken (`inputs`): nothing to add.
#[cfg(not(feature = "parquet"))]
fn parquet_report(_: &[PathBuf], options: &ReportOptions) -> Result<ReportBuilder, ReportError> {
    ReportBuilder::new(options.clone())
}

/// The ledger files at `path` ([`any_ledger_files`](crate::ledger::any_ledger_files)),
/// each format's to its list.
fn inputs(
    path: &Path,
    jsonl: &mut Vec<PathBuf>,
    parquet: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    for file in crate::ledger::any_ledger_files(path)? {
        match is_parquet(&file) {
            true => parquet.push(file),
            false => jsonl.push(file),
        }
    }
    Ok(())
}

/// A Parquet ledger file, by its name, when Parquet files are read at all.
fn is_parquet(path: &Path) -> bool {
    cfg!(feature = "parquet") && crate::ledger::is_parquet_name(path)
}

/// Renders the report as a plain-text table (groups, then the total), followed by
/// notes (range, unpriced calls, torn tail). Money is shown exactly.
pub fn render_table(report: &Report) -> String {
    const HEADERS: [&str; 14] = [
        "",
        "calls",
        "cost USD",
        "USD/1k calls",
        "p50 USD/call",
        "p95 USD/call",
        "p50 ms",
        "p95 ms",
        "tokens in",
        "tokens out",
        "USD/1k tokens",
        "unpriced",
        "errors",
        "cancelled",
    ];
    let opt = |d: Option<Decimal>| d.map_or_else(|| "-".to_owned(), |d| d.normalize().to_string());
    let tokens = |sum: u64, calls: u64| match calls {
        0 => "-".to_owned(),
        _ => sum.to_string(),
    };
    let row = |g: &GroupSummary| -> Vec<String> {
        vec![
            // A ledger's names (endpoints, tags) could hold escape sequences.
            crate::redact::printable(&g.key).into_owned(),
            g.calls.to_string(),
            g.cost_usd.normalize().to_string(),
            opt(g.usd_per_1000_calls),
            opt(g.cost_per_call_p50_usd),
            opt(g.cost_per_call_p95_usd),
            opt(g.latency_p50_ms),
            opt(g.latency_p95_ms),
            // A sum no call reported is unknown, not 0.
            tokens(g.input_tokens, g.calls_with_input_tokens),
            tokens(g.output_tokens, g.calls_with_output_tokens),
            opt(g.usd_per_1000_tokens),
            if g.unpriced_calls == 0 {
                "0".to_owned()
            } else {
                format!(
                    "{} ({}%)",
                    g.unpriced_calls,
                    (g.unpriced_share * Decimal::from(100))
                        .round_dp(1)
                        .normalize()
                )
            },
            g.errors.to_string(),
            g.cancelled.to_string(),
        ]
    };
    let mut header: Vec<String> = HEADERS.iter().map(|h| (*h).to_owned()).collect();
    header[0] = report.by.clone();
    let body: Vec<Vec<String>> = report.groups.iter().map(row).collect();
    let total = row(&report.total);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in body.iter().chain([&total]) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("  {cell:>w$}"));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let rule: String = {
        let width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        format!("{}\n", "-".repeat(width))
    };
    let mut out = line(&header);
    out.push_str(&rule);
    for r in &body {
        out.push_str(&line(r));
    }
    out.push_str(&rule);
    out.push_str(&line(&total));

    let range = match (report.since, report.until) {
        (None, None) => "all calls".to_owned(),
        (Some(s), None) => format!("calls from {}", s.to_rfc3339()),
        (None, Some(u)) => format!("calls before {}", u.to_rfc3339()),
        (Some(s), Some(u)) => format!(
            "calls from {} to {} (excluded)",
            s.to_rfc3339(),
            u.to_rfc3339()
        ),
    };
    out.push_str(&format!("\n{range}"));
    if report.outside_range > 0 {
        out.push_str(&format!(
            "; {} outside the range not counted",
            report.outside_range
        ));
    }
    out.push('\n');
    if report.total.unpriced_calls > 0 {
        out.push_str(&format!(
            "note: {} of {} calls had unpriced lines: cost figures are lower bounds\n",
            report.total.unpriced_calls, report.total.calls
        ));
    }
    let t = &report.total;
    // Of the calls answered with HTTP 2XX: a model error or a cancelled call had no
    // tokens to report, and is no call that did not report them.
    if t.calls_with_tokens > 0
        && (t.calls_with_input_tokens < t.answered_calls
            || t.calls_with_output_tokens < t.answered_calls)
    {
        // Calls with both counts: those with input plus those with output, less
        // those with either.
        let both = (t.calls_with_input_tokens + t.calls_with_output_tokens)
            .saturating_sub(t.calls_with_tokens);
        out.push_str(&format!(
            "note: input tokens reported by {} of {} calls answered with HTTP 2XX, output \
             tokens by {}: each sum is of those calls; USD/1k tokens is over the {both} that \
             reported both\n",
            t.calls_with_input_tokens, t.answered_calls, t.calls_with_output_tokens
        ));
    }
    if report.total.unsettled_async_calls > 0 {
        out.push_str(&format!(
            "note: {} asynchronous invocation(s) submitted have no settlement in these \
             ledgers: their compute (billed at settlement) is not counted, so cost figures \
             are lower bounds\n",
            report.total.unsettled_async_calls
        ));
    }
    if report.total.settlements_without_submission > 0 {
        out.push_str(&format!(
            "note: {} settlement(s) of asynchronous invocations submitted elsewhere (or \
             before the range) add their cost without a call\n",
            report.total.settlements_without_submission
        ));
    }
    if report.total.fallback_priced_calls > 0 {
        out.push_str(&format!(
            "note: {} of {} calls priced (in part) from the bundled snapshot or a stale cache: \
             their cost may not be at AWS's current prices\n",
            report.total.fallback_priced_calls, report.total.calls
        ));
    }
    if report.approximate_percentiles {
        out.push_str(
            "note: more than 4,096 calls in a group or in the total: their p50/p95 are observed \
             values at most 0.1% below the exact nearest rank\n",
        );
    }
    if !report.accrual_fallbacks.is_empty() {
        out.push_str(&accrual_fallback_note(
            &report.accrual_fallbacks,
            report.regions.len() > 1,
        ));
    }
    if report.removed_files > 0 {
        out.push_str(&format!(
            "note: {} ledger file(s) were removed while the report read the directory (a \
             rolling ledger's retention): their receipts are not counted\n",
            report.removed_files
        ));
    }
    if let Some(torn) = &report.torn_tail {
        let of = report
            .torn_tail_file
            .as_ref()
            .map_or_else(String::new, |file| {
                let name = file.display().to_string();
                format!(" of {}", crate::redact::printable(&name))
            });
        out.push_str(&format!(
            "note: skipped a torn last line{of} ({} bytes at line {}) left by an interrupted \
             write\n",
            torn.bytes, torn.line
        ));
        if report.torn_tails > 1 {
            out.push_str(&format!(
                "note: {} ledger files in all ended in a torn line, each skipped\n",
                report.torn_tails
            ));
        }
    }
    out
}

/// One line naming the accruals priced from a fallback, by source: `note: accrual
/// priced from the bundled snapshot for: llm/AllTraffic, …; from a cached price
/// (stale or kept) for: …`. The storage charge is named when it is the one; the
/// region first (`eu-west-1/llm/AllTraffic`) when the report is of several.
fn accrual_fallback_note(fallbacks: &[AccrualFallback], per_region: bool) -> String {
    let mut by_source: Vec<(PriceOrigin, Vec<String>)> = Vec::new();
    for f in fallbacks {
        let mut name = format!("{}/{}", f.endpoint, f.variant.as_deref().unwrap_or("-"));
        if per_region {
            name = region_key(f.region.as_deref(), &name);
        }
        let mut name = crate::redact::printable(&name).into_owned();
        if f.charge == AccrualCharge::Storage {
            name.push_str(" (storage)");
        }
        match by_source.iter_mut().find(|(s, _)| *s == f.price_source) {
            Some((_, names)) if names.contains(&name) => {}
            Some((_, names)) => names.push(name),
            None => by_source.push((f.price_source, vec![name])),
        }
    }
    let parts: Vec<String> = by_source
        .into_iter()
        .map(|(source, names)| {
            let what = match source {
                PriceOrigin::Snapshot => "the bundled snapshot",
                PriceOrigin::Cache => "a cached price (stale or kept after a failed refresh)",
                other => other.as_str(),
            };
            format!("{what} for: {}", names.join(", "))
        })
        .collect();
    format!("note: accrual priced from {}\n", parts.join("; from "))
}

#[cfg(test)]
mod tests {
    use super::quantiles::EXACT_LIMIT;
    use super::*;

    #[test]
    fn nearest_rank_is_an_observed_value() {
        let v = [1, 2, 3, 4];
        assert_eq!(nearest_rank(&v, 50), Some(&2)); // ⌈0.5·4⌉ = 2
        assert_eq!(nearest_rank(&v, 95), Some(&4)); // ⌈0.95·4⌉ = 4
        assert_eq!(nearest_rank(&v, 25), Some(&1)); // ⌈0.25·4⌉ = 1
        assert_eq!(nearest_rank(&[7], 50), Some(&7));
        assert_eq!(nearest_rank::<u8>(&[], 50), None);
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 95), Some(&95));
        let twenty: Vec<u32> = (1..=20).collect();
        assert_eq!(nearest_rank(&twenty, 95), Some(&19)); // ⌈19⌉ = 19
        assert_eq!(nearest_rank(&twenty, 96), Some(&20)); // ⌈19.2⌉ = 20
    }

    #[test]
    fn group_by_parses_and_prints_back() {
        for s in ["endpoint", "variant", "day", "hour", "tag:team"] {
            assert_eq!(s.parse::<GroupBy>().unwrap().to_string(), s);
        }
        for bad in ["", "tag:", "tag: ", "week", "Endpoint"] {
            let err = bad.parse::<GroupBy>().unwrap_err();
            assert!(err.to_string().contains("tag:<key>"), "{err}");
        }
    }

    #[test]
    fn time_bounds_accept_rfc3339_and_dates() {
        let t = parse_time_bound("2026-11-01").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        let t = parse_time_bound("2026-11-01T10:30:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T08:30:00+00:00");
        assert!(matches!(
            parse_time_bound("yesterday"),
            Err(ReportError::BadTime(_))
        ));
        assert!(parse_time_bound("2026-13-01").is_err());
    }

    /// A format-2 ledger: a context for endpoint `e` (0) and one for `f` (1), then
    /// `receipts` (each `(context, cost, input tokens, output tokens)`), one a
    /// line from line 3 on.
    fn ledger(dir: &Path, receipts: &[(u8, &str, Option<u64>, Option<u64>)]) -> PathBuf {
        let context = |c: u8, endpoint: &str| {
            format!(
                r#"{{"v":2,"context":{c},"endpoint":"{endpoint}","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":"AllTraffic"}}"#
            )
        };
        let mut text = format!("{}\n{}\n", context(0, "e"), context(1, "f"));
        for (i, (c, cost, tin, tout)) in receipts.iter().enumerate() {
            let tokens: String = [("tin", tin), ("tout", tout)]
                .iter()
                .filter_map(|(k, v)| v.map(|v| format!(r#""{k}":{v},"#)))
                .collect();
            text.push_str(&format!(
                r#"{{"v":2,"c":{c},"id":"r{i}","at":{at},"lat":1,{tokens}"l":[],"cost":"{cost}","rc":"1","re":"1"}}"#,
                at = i as u64 * 1_000_000_000,
            ));
            text.push('\n');
        }
        let path = dir.join("calls.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A serverless (3 GB) call of endpoint `endpoint` at second `i`, its compute
    /// (2 s at $0.00006 per second) priced from `source` with `note`.
    fn serverless_call(i: u64, endpoint: &str, source: &str, note: Option<&str>) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": format!("{endpoint}-{i}"),
            "at": DateTime::from_timestamp(1_780_000_000 + i as i64, 0).unwrap(),
            "endpoint": endpoint, "variant": "AllTraffic",
            "billing": {"kind": "serverless", "memory_mb": 3072},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 2_000_000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": "2", "unit": "seconds",
                       "price": {"status": "priced", "usd_per_unit": "0.00006",
                                 "cost_usd": "0.00012",
                                 "provenance": {"source": source, "sku": "SKU3GB",
                                                "effective_date": "2026-05-20",
                                                "fetched_at": null, "note": note}}}],
            "cost_usd": "0.00012", "currency": "USD", "region": "us-east-1",
            "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null
        }))
        .unwrap()
    }

    /// The report of `receipts` in memory, then of a format-1 file, a format-2
    /// file (as the ledger writes it: its fast read) and a Parquet file of them,
    /// each named; every file's total the same as the one in memory.
    fn reports_in_every_format(
        receipts: &[Cost],
        options: &ReportOptions,
    ) -> Vec<(String, Report)> {
        let in_memory = summarize(receipts, options).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Format 1: each receipt whole, as serde writes it.
        let format_1 = dir.path().join("format1.jsonl");
        let text: String = receipts
            .iter()
            .map(|c| format!("{{\"v\":1,{}\n", &serde_json::to_string(c).unwrap()[1..]))
            .collect();
        std::fs::write(&format_1, text).unwrap();
        let format_2 = dir.path().join("format2.jsonl");
        let ledger = crate::ledger::JsonlLedger::open(&format_2).unwrap();
        for cost in receipts {
            ledger.try_record(cost).unwrap();
        }
        drop(ledger);
        #[cfg_attr(not(feature = "parquet"), allow(unused_mut))]
        let mut paths = vec![format_1, format_2];
        #[cfg(feature = "parquet")]
        {
            let parquet = dir.path().join("calls.parquet");
            let mut out = crate::ledger::parquet::ParquetFileWriter::create(&parquet).unwrap();
            for cost in receipts {
                out.write(cost).unwrap();
            }
            out.finish().unwrap();
            paths.push(parquet);
        }
        let mut reports = Vec::new();
        for path in paths {
            let report = report_file(&path, options).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(report.total, in_memory.total, "{name}");
            reports.push((name, report));
        }
        reports.insert(0, ("in memory".to_owned(), in_memory));
        reports
    }

    #[test]
    fn calls_priced_from_a_fallback_are_counted_and_noted_in_every_format() {
        // A service in a private subnet (no Price List) priced everything from the
        // bundled snapshot: 1,000 serverless 3 GB calls of 2 s at $0.00006 per
        // second = 1,000 × $0.00012 = $0.12. Another endpoint's call was priced
        // from a fresh cached live price with its answer's note: no fallback.
        let mut receipts: Vec<Cost> = (0..1000)
            .map(|i| {
                serverless_call(
                    i,
                    "private",
                    "snapshot",
                    Some("primary price source failed (HTTP 500); bundled price snapshot"),
                )
            })
            .collect();
        receipts.push(serverless_call(
            1000,
            "public",
            "cache",
            Some("SKU PC3GB is the standing charge per second provisioned per its group (x)"),
        ));
        let options = ReportOptions::new(GroupBy::Endpoint);
        let check = |report: &Report, path: &str| {
            let group = |key: &str| report.groups.iter().find(|g| g.key == key).unwrap();
            assert_eq!(group("private").cost_usd, Decimal::new(12, 2), "{path}");
            assert_eq!(group("private").fallback_priced_calls, 1000, "{path}");
            assert_eq!(group("public").fallback_priced_calls, 0, "{path}");
            assert_eq!(
                (report.total.calls, report.total.fallback_priced_calls),
                (1001, 1000),
                "{path}"
            );
            assert!(report.accrual_fallbacks.is_empty(), "{path}");
            let table = render_table(report);
            assert!(
                table.contains(
                    "note: 1000 of 1001 calls priced (in part) from the bundled snapshot or a \
                     stale cache"
                ),
                "{path}: {table}"
            );
            let json = serde_json::to_value(report).unwrap();
            assert_eq!(json["total"]["fallback_priced_calls"], 1000, "{path}");
        };
        for (path, report) in reports_in_every_format(&receipts, &options) {
            check(&report, &path);
        }
    }

    #[test]
    fn the_interceptors_only_receipt_of_an_async_call_is_the_call_not_a_submission() {
        // Ten InvokeEndpointAsync calls through a plain SDK client with
        // MeteringInterceptor: one receipt each, the invocation's only one (the
        // interceptor makes no settlement), data in priced, compute and data out
        // unseen (unpriced). 1 MiB in = 2²⁰ ÷ 2³⁰ = 0.0009765625 GB × $0.016 per GB
        // = $0.000015625 a call; ten calls $0.00015625.
        let receipts: Vec<Cost> = (0..10)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "call_id": format!("inference-{i}"),
                    "at": DateTime::from_timestamp(1_780_000_000 + i, 0).unwrap(),
                    "endpoint": "jobs", "variant": "AllTraffic",
                    "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge",
                                "instance_count": 1},
                    "allocation": "processor_sharing",
                    "usage": {"operation": "InvokeEndpointAsync",
                              "latency_us": 40_000 + i * 1_000, "bytes_in": 1_048_576,
                              "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
                    "lines": [
                        {"item": "data_in", "quantity": "0.0009765625", "unit": "gigabytes",
                         "price": {"status": "priced", "usd_per_unit": "0.016",
                                   "cost_usd": "0.000015625",
                                   "provenance": {"source": "live", "sku": "DATAIN",
                                                  "effective_date": "2026-05-01",
                                                  "fetched_at": null, "note": null}}},
                        {"item": "compute", "quantity": "0", "unit": "instance_hours",
                         "price": {"status": "unpriced",
                                   "reason": "the interceptor does not see the job run"}},
                        {"item": "data_out", "quantity": "0", "unit": "gigabytes",
                         "price": {"status": "unpriced",
                                   "reason": "the interceptor does not see the output"}}
                    ],
                    "cost_usd": "0.000015625", "currency": "USD", "region": "us-east-1",
                    "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null,
                    "notes": [crate::billing::INTERCEPTOR_NOTE]
                }))
                .unwrap()
            })
            .collect();
        let options = ReportOptions::new(GroupBy::Endpoint);
        for (path, report) in reports_in_every_format(&receipts, &options) {
            let t = &report.total;
            assert_eq!(
                (t.calls, t.cost_usd),
                (10, Decimal::new(15_625, 8)),
                "{path}"
            );
            // Every call's cost is its receipt's: p50 and p95 $0.000015625.
            assert_eq!(
                t.cost_per_call_p50_usd,
                Some(Decimal::new(15_625, 9)),
                "{path}"
            );
            assert_eq!(
                t.cost_per_call_p95_usd,
                Some(Decimal::new(15_625, 9)),
                "{path}"
            );
            // Latencies 40 … 49 ms: p50 rank ⌈5⌉ = 44 ms, p95 rank ⌈9.5⌉ = 49 ms.
            assert_eq!(t.latency_p50_ms, Some(Decimal::new(44_000, 3)), "{path}");
            assert_eq!(t.latency_p95_ms, Some(Decimal::new(49_000, 3)), "{path}");
            // Nothing awaits a settlement; the interceptor did not see an answer.
            assert_eq!(t.unsettled_async_calls, 0, "{path}");
            assert_eq!(t.settlements_without_submission, 0, "{path}");
            assert_eq!(t.answered_calls, 0, "{path}");
            assert_eq!(t.unpriced_calls, 10, "{path}");
            let table = render_table(&report);
            assert!(!table.contains("no settlement"), "{path}: {table}");
        }
    }

    #[test]
    fn tokens_no_call_reported_are_unknown_and_cost_per_token_is_over_calls_with_both() {
        let dir = tempfile::tempdir().unwrap();
        // e: two calls with 1,000 in and 100 out, two with no counts, one TGI call
        // with 100 out only; f: one TGI call with 50 out only.
        let path = ledger(
            dir.path(),
            &[
                (0, "0.01", Some(1000), Some(100)),
                (0, "0.01", Some(1000), Some(100)),
                (0, "0.005", None, None),
                (0, "0.005", None, None),
                (0, "0.02", None, Some(100)),
                (1, "0.02", None, Some(50)),
            ],
        );
        let report = report_file(&path, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        let e = report.groups.iter().find(|g| g.key == "e").unwrap();
        assert_eq!((e.input_tokens, e.calls_with_input_tokens), (2000, 2));
        assert_eq!((e.output_tokens, e.calls_with_output_tokens), (300, 3));
        assert_eq!(e.calls_with_tokens, 3);
        // Over the two calls with both counts: (0.01 + 0.01) USD × 1000 ÷ (2 × 1,100)
        // tokens = 0.00909090… USD, rounded to 10⁻¹². (The TGI call's whole 0.02 USD
        // against its 100 output tokens alone would make it 40 ÷ 2,300.)
        assert_eq!(e.usd_per_1000_tokens, Some(Decimal::new(9_090_909_091, 12)));
        let f = report.groups.iter().find(|g| g.key == "f").unwrap();
        assert_eq!(f.calls_with_input_tokens, 0);
        assert_eq!(f.usd_per_1000_tokens, None);

        let table = render_table(&report);
        // f's input tokens: unknown, not 0; its output 50
        let f_row = table.lines().find(|l| l.starts_with("f ")).unwrap();
        let cells: Vec<&str> = f_row.split_whitespace().collect();
        assert_eq!(&cells[8..11], ["-", "50", "-"], "{table}");
        // all 6 calls: input from 2, output from 2 + 1 + 1 = 4, both from 2
        assert!(
            table.contains(
                "note: input tokens reported by 2 of 6 calls answered with HTTP 2XX, output \
                 tokens by 4: each sum is of those calls; USD/1k tokens is over the 2 that \
                 reported both\n"
            ),
            "{table}"
        );
    }

    #[test]
    fn a_report_names_the_variants_whose_accrual_was_priced_from_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let context = |c: u8, endpoint: &str| {
            format!(
                r#"{{"v":2,"context":{c},"endpoint":"{endpoint}","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":"AllTraffic"}}"#
            )
        };
        let receipt = |c: u8, i: u64, origins: &str| {
            format!(
                r#"{{"v":2,"c":{c},"id":"r{i}","at":{at},"lat":1,"l":[],"cost":"0.1","rc":"1","re":"1","ac":{{"a":"1","l":"0.5","u":"0.5","o":[{origins}]}}}}"#,
                at = i * 1_000_000_000
            )
        };
        let lines = [
            context(0, "e"),
            context(1, "f"),
            context(2, "g"),
            r#"{"v":2,"origin":3,"charge":"capacity","price_source":"snapshot","note":"primary price source failed (HTTP 500)"}"#.to_owned(),
            r#"{"v":2,"origin":4,"charge":"capacity","price_source":"live"}"#.to_owned(),
            r#"{"v":2,"origin":5,"charge":"storage","price_source":"cache","note":"refresh failed (HTTP 500); kept the last good price"}"#.to_owned(),
            r#"{"v":2,"origin":6,"charge":"capacity","price_source":"cache","note":"SKU PCUSAGE is the standing charge per second provisioned per its group (ServerlessInference)"}"#.to_owned(),
            // e: priced from the snapshot, then live too (the snapshot's stretch
            // is still in its accrual); f: live, then a fresh cached price with its
            // answer's note (no fallback); g: its storage from a kept cached
            // price, written whole.
            receipt(0, 0, "3"),
            receipt(0, 1, "3,4"),
            receipt(1, 2, "4,6"),
            receipt(
                2,
                3,
                r#"4,{"charge":"storage","price_source":"cache","note":"refresh failed (HTTP 500); kept the last good price"}"#,
            ),
        ];
        let path = dir.path().join("calls.jsonl");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();

        let report = report_file(&path, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        let named: Vec<(&str, AccrualCharge, PriceOrigin, Option<&str>)> = report
            .accrual_fallbacks
            .iter()
            .map(|f| {
                (
                    f.endpoint.as_str(),
                    f.charge,
                    f.price_source,
                    f.note.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                (
                    "e",
                    AccrualCharge::Capacity,
                    PriceOrigin::Snapshot,
                    Some("primary price source failed (HTTP 500)")
                ),
                (
                    "g",
                    AccrualCharge::Storage,
                    PriceOrigin::Cache,
                    Some("refresh failed (HTTP 500); kept the last good price")
                ),
            ]
        );
        assert_eq!(report.accrual_fallbacks[0].last_at.timestamp(), 1);
        let table = render_table(&report);
        assert!(
            table.contains(
                "note: accrual priced from the bundled snapshot for: e/AllTraffic; from a cached \
                 price (stale or kept after a failed refresh) for: g/AllTraffic (storage)\n"
            ),
            "{table}"
        );
        // Only receipts in the range count: f's alone names none.
        let f_only = ReportOptions::new(GroupBy::Endpoint)
            .since(DateTime::from_timestamp(2, 0).unwrap())
            .until(DateTime::from_timestamp(3, 0).unwrap());
        let report = report_file(&path, &f_only).unwrap();
        assert!(report.accrual_fallbacks.is_empty());
        assert!(!render_table(&report).contains("accrual"));
    }

    /// A sum with more digits than a `Decimal` holds (at most 2⁹⁶ − 1 =
    /// 79228162514264337593543950335 as its digits) is refused as one too large,
    /// never rounded to fewer places; one whose digits fit at fewer places than
    /// its parts have is exact, and kept.
    #[test]
    fn a_sum_with_more_digits_than_a_decimal_holds_is_an_error_not_rounded() {
        let dir = tempfile::tempdir().unwrap();
        let by_endpoint = ReportOptions::new(GroupBy::Endpoint);

        // 70000000000000000.000000000000 + 10000000000000000.000000000001 =
        // 80000000000000000.000000000001: its 29 digits at 12 places,
        // 80000000000000000000000000001, exceed 2⁹⁶ − 1 (a Decimal would round it
        // to 80000000000000000.00000000000, a picodollar short).
        let path = ledger(
            dir.path(),
            &[
                (0, "70000000000000000.000000000000", None, None),
                (0, "10000000000000000.000000000001", None, None),
            ],
        );
        let (ledgers, line, what) = overflow(report_file(&path, &by_endpoint));
        assert_eq!((ledgers, line), (vec![path.clone()], Some(4)));
        assert_eq!(what, "the cost of group `e`");

        // 40000000000000000.000000000001 + 40000000000000000.000000000009 =
        // 80000000000000000.000000000010: too many digits at 12 places, but
        // 80000000000000000.00000000001 at 11 (8000000000000000000000000001
        // tenths of a nanodollar fits), exact.
        let path = ledger(
            dir.path(),
            &[
                (0, "40000000000000000.000000000001", None, None),
                (0, "40000000000000000.000000000009", None, None),
            ],
        );
        let report = report_file(&path, &by_endpoint).unwrap();
        let want: Decimal = "80000000000000000.00000000001".parse().unwrap();
        assert_eq!(report.groups[0].cost_usd, want);
        assert_eq!(report.total.cost_usd, want);
    }

    /// The overflow of `report`, with its ledgers, line and what overflowed.
    fn overflow(report: Result<Report, ReportError>) -> (Vec<PathBuf>, Option<u64>, String) {
        match report {
            Err(ReportError::Overflow {
                ledgers,
                line,
                what,
            }) => (ledgers, line, what),
            other => panic!("not an overflow: {other:?}"),
        }
    }

    #[test]
    fn sums_that_overflow_are_an_error_naming_the_ledger_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let by_endpoint = ReportOptions::new(GroupBy::Endpoint);
        let max = Decimal::MAX.to_string(); // 79228162514264337593543950335 = 2⁹⁶ − 1

        // MAX + MAX in endpoint e's cost: the receipt on line 4 overflows.
        let path = ledger(dir.path(), &[(0, &max, None, None), (0, &max, None, None)]);
        let err = report_file(&path, &by_endpoint);
        let (ledgers, line, what) = overflow(err);
        assert_eq!((ledgers, line), (vec![path.clone()], Some(4)));
        assert_eq!(what, "the cost of group `e`");
        let message = report_file(&path, &by_endpoint).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("ledger {}, line 4: the cost", path.display())),
            "{message}"
        );

        // MAX in e, MAX in f: each group's sum fits, their total does not.
        let path = ledger(dir.path(), &[(0, &max, None, None), (1, &max, None, None)]);
        let (ledgers, line, what) = overflow(report_file(&path, &by_endpoint));
        assert_eq!((ledgers, line), (vec![path.clone()], None));
        assert_eq!(what, "the cost of all calls");

        // One call of 10²⁶ USD: its sum fits, but per 1,000 calls it is
        // 10²⁶ × 1000 = 10²⁹ > 7.9 × 10²⁸ (the total's, worked out first).
        let path = ledger(
            dir.path(),
            &[(0, "100000000000000000000000000", None, None)],
        );
        let (ledgers, _, what) = overflow(report_file(&path, &by_endpoint));
        assert_eq!(ledgers, vec![path.clone()]);
        assert_eq!(what, "the cost per 1,000 calls of all calls");

        // Input tokens u64::MAX twice: refused, not capped or wrapped.
        let path = ledger(
            dir.path(),
            &[
                (0, "1", Some(u64::MAX), None),
                (0, "1", Some(u64::MAX), None),
            ],
        );
        let (_, line, what) = overflow(report_file(&path, &by_endpoint));
        assert_eq!(
            (line, what.as_str()),
            (Some(4), "the input tokens of group `e`")
        );

        // u64::MAX in and 1 out on one call fit each sum, and their total
        // 2⁶⁴ = 18446744073709551616 tokens is exact: a cost of
        // 18446744073709551.616 USD is 18446744073709551.616 × 1000 ÷ 2⁶⁴ = 1 USD
        // per 1,000 tokens.
        let path = ledger(
            dir.path(),
            &[(0, "18446744073709551.616", Some(u64::MAX), Some(1))],
        );
        let report = report_file(&path, &by_endpoint).unwrap();
        assert_eq!(report.total.input_tokens, u64::MAX);
        assert_eq!(report.total.output_tokens, 1);
        assert_eq!(report.total.usd_per_1000_tokens, Some(Decimal::ONE));

        // Receipts in memory name no ledger.
        let cost = |endpoint: &str| -> Cost {
            let mut cost: Cost = crate::ledger::read_all(&path).unwrap().records.remove(0);
            cost.endpoint = endpoint.to_owned();
            cost.cost_usd = Decimal::MAX;
            cost
        };
        let (ledgers, line, what) = overflow(summarize(&[cost("e"), cost("e")], &by_endpoint));
        assert_eq!((ledgers, line), (vec![], None));
        assert_eq!(what, "the cost of group `e`");
    }

    /// A ledger's endpoint name with an escape sequence and a line break (a ledger
    /// written by hand, or by another tool) is shown escaped: it cannot clear the
    /// terminal or forge a row of the table.
    #[test]
    fn names_from_a_ledger_cannot_write_control_characters_to_the_terminal() {
        let at = parse_time_bound("2026-11-01").unwrap();
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        let forged = "e\u{1b}[2J\r\nforged  999";
        builder
            .add_row(&ReportRow::new(at, forged, Decimal::ONE))
            .unwrap();
        let table = render_table(&builder.finish().unwrap());
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        assert!(table.contains(r"e\u{1b}[2J\r\nforged  999"), "{table}");
        assert!(!table.lines().any(|l| l.starts_with("forged")), "{table}");
    }

    /// A torn ledger's file name that is not UTF-8 is written lossy in the JSON
    /// (as `display` shows it), not an error that cuts the output short.
    #[cfg(unix)]
    #[test]
    fn a_torn_tail_file_not_utf8_is_written_lossy_in_json() {
        use std::os::unix::ffi::OsStrExt;
        let at = parse_time_bound("2026-11-01").unwrap();
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        builder
            .add_row(&ReportRow::new(at, "e", Decimal::ONE))
            .unwrap();
        let mut report = builder.finish().unwrap();
        let file = PathBuf::from(std::ffi::OsStr::from_bytes(b"/ledgers/calls-\xff.jsonl"));
        report.torn_tail_file = Some(file.clone());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["torn_tail_file"], "/ledgers/calls-\u{fffd}.jsonl");
        assert_eq!(json["torn_tail_file"], file.display().to_string());
        // None is left out, as before.
        report.torn_tail_file = None;
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("torn_tail_file").is_none(), "{json}");
    }

    /// A latency beyond i64's microseconds is shown as it is, not as i64::MAX.
    #[test]
    fn the_largest_latency_is_shown_exactly_in_milliseconds() {
        let at = parse_time_bound("2026-11-01").unwrap();
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        let mut row = ReportRow::new(at, "e", Decimal::ONE);
        row.latency_us = u64::MAX;
        builder.add_row(&row).unwrap();
        let report = builder.finish().unwrap();
        // 18,446,744,073,709,551,615 µs ÷ 1,000.
        let ms = Decimal::from_str_exact("18446744073709551.615").unwrap();
        assert_eq!(report.total.latency_p95_ms, Some(ms));
        // Written with its three places, as reports always have: 12,000 µs is
        // `12.000` ms in the JSON, not `12`.
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        let mut row = ReportRow::new(at, "e", Decimal::ONE);
        row.latency_us = 12_000;
        builder.add_row(&row).unwrap();
        let report = builder.finish().unwrap();
        let json = serde_json::to_value(&report.total).unwrap();
        assert_eq!(json["latency_p95_ms"], "12.000");
    }

    /// Two groups of 3,000 calls: each group's percentiles are exact, the total's
    /// (6,000 calls) are not, and the report says so.
    #[test]
    fn percentiles_of_a_total_past_the_exact_limit_are_flagged_approximate() {
        let at = parse_time_bound("2026-11-01").unwrap();
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        // e costs 2..=3001 USD, f 3002..=6001: the exact p50 of all 6,000 is the
        // 3,000th, 3001; its bucket [3000, 3002) begins with 3000.
        for (endpoint, values) in [("e", 2..=3001), ("f", 3002..=6001)] {
            for v in values {
                builder
                    .add_row(&ReportRow::new(at, endpoint, Decimal::from(v)))
                    .unwrap();
            }
        }
        let report = builder.finish().unwrap();
        let group = |key: &str| report.groups.iter().find(|g| g.key == key).unwrap();
        assert_eq!(group("e").cost_per_call_p50_usd, Some(Decimal::from(1501)));
        assert_eq!(group("f").cost_per_call_p50_usd, Some(Decimal::from(4501)));
        assert_eq!(report.total.calls, 6_000);
        let p50 = report.total.cost_per_call_p50_usd.unwrap();
        assert_eq!(p50, Decimal::from(3000), "bucketed, not the exact 3001");
        assert!(
            report.approximate_percentiles,
            "the total's p50 is approximate"
        );
        assert!(
            render_table(&report).contains("more than 4,096 calls in a group or in the total"),
            "{}",
            render_table(&report)
        );

        // Within the limit in all, nothing is approximate.
        let mut builder = ReportBuilder::new(ReportOptions::default()).unwrap();
        for v in 1..=EXACT_LIMIT as i64 {
            let endpoint = if v % 2 == 0 { "e" } else { "f" };
            builder
                .add_row(&ReportRow::new(at, endpoint, Decimal::from(v)))
                .unwrap();
        }
        let report = builder.finish().unwrap();
        assert!(!report.approximate_percentiles);
        assert_eq!(
            report.total.cost_per_call_p50_usd,
            Some(Decimal::from(2048))
        );
    }

    #[test]
    fn an_empty_range_is_rejected() {
        let t = parse_time_bound("2026-11-01").unwrap();
        let err = ReportBuilder::new(ReportOptions::default().since(t).until(t)).unwrap_err();
        assert!(matches!(err, ReportError::EmptyRange { .. }), "{err:?}");
        // Before any ledger is read: a missing one is not what is said.
        let missing = tempfile::tempdir().unwrap().path().join("missing.jsonl");
        let err = report_files([missing], &ReportOptions::default().since(t).until(t));
        assert!(
            matches!(err, Err(ReportError::EmptyRange { .. })),
            "{err:?}"
        );
    }
}
