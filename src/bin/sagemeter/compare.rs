//! `sagemeter compare`: would another way of paying be cheaper for the same work?
//!
//! Flags describe the work (a stated usage profile) and the plans to weigh; the
//! library's `compare` module does the pricing. Instance and serverless rates come
//! from the price source the CLI was given, unless stated with the `--*-usd-per-*`
//! overrides.
//!
//! With `--price-trend` the comparison is followed by a projection month by month
//! over `--horizon` (`sagemeter::compare::Projection`).

use crate::CliError;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sagemeter::compare::format::bytes as fmt_bytes;
use sagemeter::compare::{
    CompareError, Comparison, InstancePlan, MAX_HORIZON_MONTHS, MeasuredTrend, PerInferencePlan,
    PerTokenPlan, Period, Plan, PlanModel, PriceTrend, Projection, RateTable, ReceiptTotals,
    SavingsPlan, SavingsPlanTerm, ServerlessPlan, SubscriptionPlan, TrendRate, UsageProfile,
    UsageProfileBuilder, UsageTotals,
};
use sagemeter::ledger::LedgerError;
use sagemeter::pricing::history::PriceListHistory;
use sagemeter::pricing::{PriceKey, PriceSource};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Compare billing plans for the same work: cost per period, cost per 1,000 calls,
/// difference to the cheapest, and where each pair of plans breaks even.
///
/// Example: `sagemeter compare --calls 100000 --per-call 0.0125 --subscription 500`
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Periods: a month is 730 hours, a year 8,760 hours (as in AWS calculators);
--calls-per-day N is converted with N x hours(period) / 24.

Pay per use (--per-call, --per-1000) and per token are all-inclusive prices (a
third-party API's): nothing is added to them. An AWS Marketplace model package's
per-inference fee is billed on top of its endpoint's instance-hours and data; no
plan adds the two: its cost is the pay-per-use row plus the --instance row.

Price trends: --price-trend moves AWS on-demand rates (instance-hours, serverless
seconds, ML storage, data processed) month by month; subscriptions and prices per call or per
token stay at today's; a savings plan's commitment is locked for its term, then
renewed at that month's prices. Month 1 is today's prices.

Examples:
  sagemeter compare --calls 100000 --per-call 0.0125 --subscription 500
  sagemeter compare --calls 60000 --per-1000 12.5 --subscription 400 --included 40000 --overage 0.02
  sagemeter compare --calls 1000000 --latency-ms 800 --instance ml.m5.xlarge --serverless 3072 --chart plans.svg
  sagemeter compare --calls 100000 --instance ml.m5.xlarge --subscription 160 --price-trend -1.5%/month
  sagemeter compare --calls 100000 --instance ml.m5.xlarge --count 2 --savings-plan 0.1 --discount 50% --price-trend -20%/year --horizon 2y")]
pub struct CompareArgs {
    // --- the work ---
    /// Calls per period (the work to price).
    #[arg(
        long,
        value_name = "N",
        value_parser = parse_calls,
        allow_negative_numbers = true,
        required_unless_present_any = ["calls_per_day", "from_ledger"],
        help_heading = "Usage profile"
    )]
    pub calls: Option<Decimal>,
    /// Calls per day instead of per period (converted with hours(period) / 24).
    #[arg(long, value_name = "N", value_parser = parse_calls_per_day,
        allow_negative_numbers = true, conflicts_with = "calls", help_heading = "Usage profile")]
    pub calls_per_day: Option<Decimal>,
    /// Take the work from a ledger written by `sagemeter invoke --ledger` (or the
    /// library's JsonlLedger, or a Parquet ledger): its calls, mean latency, bytes and
    /// tokens, scaled to the period from the time the ledger covers (its first
    /// receipt's start to its last receipt's end, of any endpoint; the calls' own
    /// span when longer). A directory (a
    /// rolling ledger's) is read as one ledger. An async invocation's two receipts (submission and
    /// settlement) are one call. --latency-ms, --bytes-in/-out and --tokens-in/-out,
    /// when given, replace the ledger's figure (e.g. the latency of async calls not
    /// settled yet, or metered by the SDK interceptor, which the ledger cannot
    /// know). When the calls counted (after
    /// --endpoint, --since, --until) were made in several regions, --region must
    /// name one of them: it takes that region's calls alone.
    #[arg(long, value_name = "LEDGER|DIR", conflicts_with_all = ["calls", "calls_per_day"], help_heading = "Usage profile")]
    pub from_ledger: Option<PathBuf>,
    /// With --from-ledger: only this endpoint's calls (repeatable). A ledger of
    /// several endpoints is otherwise compared as one workload.
    #[arg(
        long = "endpoint",
        value_name = "NAME",
        requires = "from_ledger",
        help_heading = "Usage profile"
    )]
    pub endpoints: Vec<String>,
    /// With --from-ledger: only calls starting at or after this (RFC 3339, or
    /// YYYY-MM-DD: midnight UTC).
    #[arg(long, value_name = "YYYY-MM-DD|RFC3339", value_parser = crate::report::parse_bound,
          requires = "from_ledger", help_heading = "Usage profile")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// With --from-ledger: only calls starting before this (excluded).
    #[arg(long, value_name = "YYYY-MM-DD|RFC3339", value_parser = crate::report::parse_bound,
          requires = "from_ledger", help_heading = "Usage profile")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The period costs are compared over (and a subscription fee is charged for).
    #[arg(long, value_name = "day|month|year", default_value = "month", value_parser = parse_period, help_heading = "Usage profile")]
    pub period: Period,
    /// Mean model latency per call, in milliseconds (serverless bills it; with
    /// --from-ledger, replaces the ledger's).
    #[arg(long, value_name = "MS", value_parser = parse_ms,
        allow_negative_numbers = true, help_heading = "Usage profile")]
    pub latency_ms: Option<Decimal>,
    /// Mean request payload per call, in bytes (data processed in; default 0; with
    /// --from-ledger, replaces the ledger's).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes,
        allow_negative_numbers = true, help_heading = "Usage profile")]
    pub bytes_in: Option<u64>,
    /// Mean response payload per call, in bytes (data processed out; default 0; with
    /// --from-ledger, replaces the ledger's).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes,
        allow_negative_numbers = true, help_heading = "Usage profile")]
    pub bytes_out: Option<u64>,
    /// Mean input tokens per call, for --per-1m-tokens-in (needed with it
    /// unless --from-ledger; there it replaces the ledger's).
    #[arg(long, value_name = "N", value_parser = parse_tokens,
        allow_negative_numbers = true, help_heading = "Usage profile")]
    pub tokens_in: Option<u64>,
    /// Mean output tokens per call, for --per-1m-tokens-out (needed with it
    /// unless --from-ledger; there it replaces the ledger's).
    #[arg(long, value_name = "N", value_parser = parse_tokens,
        allow_negative_numbers = true, help_heading = "Usage profile")]
    pub tokens_out: Option<u64>,

    // --- pay per use ---
    /// Pay per use: all-inclusive price of one call (see below).
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, conflicts_with = "per_1000", help_heading = "Plans")]
    pub per_call: Option<Decimal>,
    /// Pay per use: all-inclusive price of 1,000 calls (see below).
    #[arg(long = "per-1000", value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, help_heading = "Plans")]
    pub per_1000: Option<Decimal>,
    /// Per token: price of one million input tokens.
    #[arg(long = "per-1m-tokens-in", value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, help_heading = "Plans")]
    pub per_1m_tokens_in: Option<Decimal>,
    /// Per token: price of one million output tokens.
    #[arg(long = "per-1m-tokens-out", value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, help_heading = "Plans")]
    pub per_1m_tokens_out: Option<Decimal>,

    // --- subscription ---
    /// Subscription: fee per period (--period, or --subscription-period).
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, help_heading = "Plans")]
    pub subscription: Option<Decimal>,
    /// Subscription: the period the fee is charged for, when it differs from --period
    /// (the fee is then amortised by hours).
    #[arg(long, value_name = "day|month|year", value_parser = parse_period, requires = "subscription", help_heading = "Plans")]
    pub subscription_period: Option<Period>,
    /// Subscription: calls included per subscription period.
    #[arg(long, value_name = "CALLS", value_parser = parse_calls,
        allow_negative_numbers = true, requires = "subscription", help_heading = "Plans")]
    pub included: Option<Decimal>,
    /// Subscription: price of each call above the included calls.
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, requires = "subscription", help_heading = "Plans")]
    pub overage: Option<Decimal>,

    // --- instances ---
    /// On-demand real-time endpoint on this instance type (e.g. ml.m5.xlarge).
    #[arg(long, value_name = "TYPE", help_heading = "Plans")]
    pub instance: Option<String>,
    /// Instances behind the endpoint (and under the savings plan).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_count,
        allow_negative_numbers = true, requires = "instance", help_heading = "Plans")]
    pub count: u32,
    /// Hours the instances run per period (default: always on). Under --savings-plan
    /// the commitment is still billed for every hour of the period; only usage beyond
    /// it is charged for these hours alone.
    #[arg(long, value_name = "H", value_parser = parse_hours,
        allow_negative_numbers = true, requires = "instance", help_heading = "Plans")]
    pub hours: Option<Decimal>,
    /// ML storage volume per instance, in GB (1 to 512, the endpoint configuration's
    /// VolumeSizeInGB): adds its GB-month charge, for the hours the instances run, to
    /// the instance plan and the savings plan (default: no storage charged).
    #[arg(long, value_name = "GB", value_parser = parse_volume_gb,
        allow_negative_numbers = true, requires = "instance", help_heading = "Plans")]
    pub volume_gb: Option<u32>,
    /// How many calls one instance serves at full speed, side by side (default 1;
    /// the client's max_concurrency_per_instance): the instances serve at most
    /// count × hours × 3,600 s × N ÷ --latency-ms calls per period.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_concurrency,
        allow_negative_numbers = true, requires = "instance", help_heading = "Plans")]
    pub max_concurrency_per_instance: u32,
    /// Savings plan on --instance: committed spend per hour.
    #[arg(long, value_name = "USD_PER_HOUR", value_parser = parse_usd,
        allow_negative_numbers = true, requires_all = ["instance", "discount"], help_heading = "Plans")]
    pub savings_plan: Option<Decimal>,
    /// Savings plan: discount on on-demand rates, as 0.64 or 64%.
    #[arg(long, value_name = "FRACTION|PERCENT%", value_parser = parse_fraction, allow_hyphen_values = true, requires = "savings_plan", help_heading = "Plans")]
    pub discount: Option<Decimal>,
    /// Savings plan: term, 1y or 3y.
    #[arg(long, value_name = "1y|3y", default_value = "1y", value_parser = parse_term, requires = "savings_plan", help_heading = "Plans")]
    pub term: SavingsPlanTerm,

    // --- serverless ---
    /// Serverless endpoint with this memory size in MB (1024 to 6144, steps of 1024).
    #[arg(long, value_name = "MB", value_parser = parse_memory_mb,
        allow_negative_numbers = true, help_heading = "Plans")]
    pub serverless: Option<u32>,
    /// With --serverless: also a plan with this many provisioned concurrency (1 to
    /// the maximum concurrency), paid per second provisioned, busy or not; calls at
    /// its inference rate, those beyond what it serves at the on-demand rate, up to
    /// the endpoint's maximum concurrency.
    #[arg(long, value_name = "N", requires = "serverless", allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=200), help_heading = "Plans")]
    pub provisioned_concurrency: Option<u32>,
    /// With --serverless: the endpoint's maximum concurrency (its `MaxConcurrency`,
    /// 1 to 200; default 200, the most AWS allows): the most calls it serves at
    /// once, which bounds the calls it can serve in the period.
    #[arg(long, value_name = "N", requires = "serverless", allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=200), help_heading = "Plans")]
    pub serverless_max_concurrency: Option<u32>,

    // --- stated rates ---
    /// State the instance-hour rate instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, requires = "instance", help_heading = "Rate overrides")]
    pub instance_usd_per_hour: Option<Decimal>,
    /// State the ML storage rate per GB-month instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, requires = "volume_gb", help_heading = "Rate overrides")]
    pub storage_usd_per_gb_month: Option<Decimal>,
    /// State the on-demand serverless compute rate instead of looking it up: USD per
    /// second at the --serverless memory size (as AWS lists it, e.g. 0.00006 for
    /// 3072 MB), not per GB-second.
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, requires = "serverless", help_heading = "Rate overrides")]
    pub serverless_usd_per_second: Option<Decimal>,
    /// State provisioned concurrency's standing rate instead of looking it up: USD
    /// per second provisioned, at the --serverless memory size.
    #[arg(long, value_name = "USD", value_parser = parse_usd, allow_negative_numbers = true,
        requires = "provisioned_concurrency", help_heading = "Rate overrides")]
    pub provisioned_usd_per_second: Option<Decimal>,
    /// State provisioned concurrency's inference-duration rate instead of looking it
    /// up: USD per second of the calls it serves, at the --serverless memory size.
    #[arg(long, value_name = "USD", value_parser = parse_usd, allow_negative_numbers = true,
        requires = "provisioned_concurrency", help_heading = "Rate overrides")]
    pub provisioned_usage_usd_per_second: Option<Decimal>,
    /// State the data-processed rate per GB (in and out) instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_usd,
        allow_negative_numbers = true, help_heading = "Rate overrides")]
    pub data_usd_per_gb: Option<Decimal>,

    // --- price trend ---
    /// How AWS on-demand prices change: -20%/year, -1.5%/month, +5%/year, or
    /// `history` (each instance and serverless rate at its yearly change over the last
    /// three years of published Price List versions). Adds each plan's cost month by
    /// month over --horizon and where each commitment (subscription, savings plan)
    /// stops being cheaper than paying per use.
    #[arg(
        long,
        value_name = "RATE",
        allow_hyphen_values = true,
        value_parser = parse_price_trend,
        help_heading = "Price trend"
    )]
    pub price_trend: Option<TrendFlag>,
    /// Months to project with --price-trend: 12m, 18m, 2y (1 month to 10 years;
    /// default 12m).
    #[arg(
        long,
        value_name = "Nm|Ny",
        value_parser = parse_horizon,
        requires = "price_trend",
        help_heading = "Price trend"
    )]
    pub horizon: Option<u32>,

    // --- output ---
    /// Print the comparison as JSON instead of a table.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Draw cost against calls per period for each plan to this .svg or .png file
    /// (with --price-trend, also the cost per month to FILE-trend.svg or .png; needs
    /// the `charts` feature). Checked before anything is priced.
    #[arg(long, value_name = "FILE", value_parser = parse_chart_path, help_heading = "Output")]
    pub chart: Option<PathBuf>,
}

/// What `--price-trend` says: a stated rate of change, or `history`.
#[derive(Debug, Clone)]
pub enum TrendFlag {
    /// One rate for every AWS on-demand price (`-20%/year`).
    Rate(TrendRate),
    /// Each instance and serverless rate at its own yearly change over the last
    /// [`HISTORY_YEARS`] years of published Price List versions.
    History,
}

/// How far back `--price-trend history` measures.
const HISTORY_YEARS: u32 = 3;

impl TrendFlag {
    /// The trend to project with, and what was measured (for `history`).
    async fn trend(
        &self,
        comparison: &Comparison,
        sdk_config: &aws_types::SdkConfig,
    ) -> Result<(PriceTrend, Vec<String>), CompareError> {
        match self {
            TrendFlag::Rate(rate) => Ok((PriceTrend::uniform(*rate), Vec::new())),
            TrendFlag::History => {
                let today = chrono::Utc::now().date_naive();
                let since = today
                    .checked_sub_months(chrono::Months::new(12 * HISTORY_YEARS))
                    .unwrap_or(today);
                let history = PriceListHistory::builder(sdk_config).build();
                let measured = MeasuredTrend::from_history(comparison, &history, since).await?;
                Ok((measured.trend, measured.notes))
            }
        }
    }
}

/// The months projected when `--price-trend` is given without `--horizon`.
const DEFAULT_HORIZON_MONTHS: u32 = 12;

/// `--json`: the comparison's fields, and `trend` with `--price-trend`.
#[derive(Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    comparison: &'a Comparison,
    #[serde(skip_serializing_if = "Option::is_none")]
    trend: Option<&'a Projection>,
    /// With `--price-trend history`: each rate's measured change, or why it is flat.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    measured_trend: &'a [String],
    /// With `--from-ledger`: torn last lines (interrupted writes) that were skipped.
    #[serde(skip_serializing_if = "<[SkippedLine]>::is_empty")]
    skipped_torn_lines: &'a [SkippedLine],
    /// With `--from-ledger`: the ledger's figures that profile flags replaced.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ledger_overrides: &'a [String],
    /// With `--from-ledger`: what was read how (several endpoints as one workload,
    /// the region priced in).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ledger_notes: &'a [String],
    /// With `--from-ledger`: the calls and time the volume was scaled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger_sample: Option<&'a LedgerSample>,
}

/// With `--from-ledger`: what the volume was scaled from.
#[derive(Serialize)]
struct LedgerSample {
    /// Calls the ledger holds (an asynchronous invocation once).
    calls: u64,
    /// The time the calls stand for (at least 1 s), as an exact decimal string:
    /// the span [`ScaledOver`] names.
    #[serde(with = "rust_decimal::serde::str")]
    observed_seconds: Decimal,
    /// Which span that is (the text's line says it; `ledger_notes` in JSON when
    /// it is not the calls' own).
    #[serde(skip)]
    over: ScaledOver,
}

/// The span a ledger's calls are scaled over: the longest known of these.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ScaledOver {
    /// The calls' own: the first call's start to the last call's end, or a mean
    /// gap between starts per call when longer ([`UsageTotals::from_receipts`]).
    Calls,
    /// The ledger's: its first receipt's start to its last receipt's end, of every
    /// endpoint and region (the time it was being written).
    Ledger,
    /// The range asked for (`--since`, `--until`), as far as the ledger covers it.
    Range,
}

impl ScaledOver {
    /// What the span is, for the `Ledger: … calls in …` line.
    fn says(self) -> &'static str {
        match self {
            ScaledOver::Calls => {
                "the first call's start to the last call's end, or a mean gap between starts \
                 per call when longer"
            }
            ScaledOver::Ledger => {
                "the ledger's, its first receipt's start to its last receipt's end, of any \
                 endpoint, longer than the calls' own"
            }
            ScaledOver::Range => "the range asked, as far as the ledger covers it",
        }
    }
}

/// A span of seconds for people: `1 s`, `42.5 s`, `12.5 min`, `3.2 h`, `6.1 days`.
fn span(seconds: Decimal) -> String {
    // The observed time is at least a second (`UsageTotals::from_receipts`).
    if seconds <= Decimal::ONE {
        return "1 s or less (counted as 1 s)".into();
    }
    let (value, unit) = if seconds < Decimal::from(120) {
        (seconds, "s")
    } else if seconds < Decimal::from(2 * 3600) {
        (seconds / Decimal::from(60), "min")
    } else if seconds < Decimal::from(2 * 86_400) {
        (seconds / Decimal::from(3600), "h")
    } else {
        (seconds / Decimal::from(86_400), "days")
    };
    format!("{} {unit}", value.round_dp(1).normalize())
}

/// A ledger file's torn last line, skipped.
#[derive(Serialize)]
struct SkippedLine {
    /// Lossy UTF-8 in JSON: a name that is not UTF-8 must not cut the output short.
    #[serde(serialize_with = "sagemeter::report::lossy_path::serialize")]
    file: PathBuf,
    line: u64,
    bytes: u64,
}

impl std::fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped a torn last line of {} (line {}, {} bytes: an interrupted write)",
            self.file.display(),
            self.line,
            self.bytes
        )
    }
}

/// The totals of the receipts of the ledger at `path` (a file, or a directory of
/// them read as one), streamed (memory does not grow with the receipts), and its
/// files' torn last lines. A `.parquet` file (`sagemeter ledger convert`'s) is read
/// as Parquet, as is a directory that holds Parquet files and no JSON Lines
/// ledger; a directory holding both is refused rather than counted twice (a
/// ledger next to its conversion), as are two files that begin with the same
/// receipt (a copy of a ledger next to it). Parquet files are listed as `report`
/// lists them ([`parquet_ledger_files`]).
///
/// Only the receipts `args` asks for are counted (`--endpoint`, `--since`,
/// `--until`). With `stated` (`--region`), only that region's calls when the
/// ledger holds any (receipts without a region taken as its), the others counted
/// in [`LedgerRead::left_out`]; a ledger holding none of its calls is counted whole
/// (and priced in `stated`: what its calls would cost there).
fn read_ledger(
    path: &Path,
    args: &CompareArgs,
    stated: Option<&str>,
) -> Result<LedgerRead, BoxError> {
    let endpoints = &args.endpoints;
    // Every region's calls, and the stated region's (with receipts without one).
    let mut all = Taken::default();
    let mut of_stated = Taken::default();
    let mut firsts = sagemeter::ledger::FirstReceipts::new();
    let mut held = BTreeSet::new();
    // What the whole ledger covers: its first receipt's start to its last end.
    let mut covers: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    // One receipt of `file`, its first when `first`; `at`, where it is in the file
    // ("line 3"), for an error about what it holds.
    let mut add = |file: &Path, cost: sagemeter::Cost, first: bool, at: &dyn Fn() -> String| {
        if first {
            firsts.note(file, &cost)?;
        }
        if !held.contains(cost.endpoint.as_str()) {
            held.insert(cost.endpoint.clone());
        }
        let end = chrono::Duration::from_std(cost.usage.latency)
            .ok()
            .and_then(|latency| cost.at.checked_add_signed(latency))
            .unwrap_or(cost.at);
        covers = Some(covers.map_or((cost.at, end), |(first, last)| {
            (first.min(cost.at), last.max(end))
        }));
        if !endpoints.is_empty() && !endpoints.contains(&cost.endpoint)
            || args.since.is_some_and(|since| cost.at < since)
            || args.until.is_some_and(|until| cost.at >= until)
        {
            return Ok(());
        }
        // A receipt the totals refuse (a time no call runs) is named
        // where it is, as `report` names a receipt whose amounts overflow.
        let named = |e: CompareError| -> BoxError { format!("{}: {e}", at()).into() };
        all.add(&cost).map_err(named)?;
        if let Some(stated) = stated
            && cost.region.as_deref().is_none_or(|r| r == stated)
        {
            of_stated.add(&cost).map_err(named)?;
        }
        Ok::<_, BoxError>(())
    };
    let mut skipped = Vec::new();
    if let Some(files) = parquet_ledger_files(path)? {
        for file in files {
            for (row, cost) in (1u64..).zip(parquet_receipts(&file)?) {
                let at = || format!("Parquet ledger {}, row {row}", file.display());
                add(&file, cost?, row == 1, &at)?;
            }
        }
    } else {
        for file in sagemeter::ledger::ledger_files(path)? {
            let mut reader = sagemeter::ledger::LedgerReader::open(&file)?;
            let mut first = true;
            while let Some(cost) = reader.next() {
                let line = reader.line();
                let at = || format!("ledger {}, line {line}", file.display());
                add(&file, cost?, std::mem::take(&mut first), &at)?;
            }
            if let Some(torn) = reader.torn_tail() {
                skipped.push(SkippedLine {
                    file,
                    line: torn.line,
                    bytes: torn.bytes,
                });
            }
        }
    }
    // The stated region's calls, when the ledger holds some (not only receipts
    // without a region); the others are left out, counted.
    let mut left_out = BTreeMap::new();
    let taken = match stated {
        Some(stated) if of_stated.regions.contains(stated) => {
            for (region, receipts) in &all.receipts {
                let kept = of_stated.receipts.get(region).copied().unwrap_or(0);
                if *receipts > kept {
                    left_out.insert(region.clone(), receipts - kept);
                }
            }
            of_stated
        }
        _ => all,
    };
    Ok(LedgerRead {
        totals: taken.totals.finish(),
        skipped,
        regions: taken.regions,
        left_out,
        without_region: taken.receipts.get("").copied().unwrap_or(0),
        endpoints: held,
        counted: taken.endpoints,
        covers,
    })
}

/// The receipts taken from a ledger, and what they were made of.
#[derive(Default)]
struct Taken {
    totals: ReceiptTotals,
    /// The regions they were made in (older receipts name none).
    regions: BTreeSet<String>,
    /// Receipts per region (`""` for those without one).
    receipts: BTreeMap<String, u64>,
    /// Their endpoints.
    endpoints: BTreeSet<String>,
}

impl Taken {
    /// Takes `cost`; a receipt the totals refuse ([`ReceiptTotals::add`]) is
    /// not taken.
    fn add(&mut self, cost: &sagemeter::Cost) -> Result<(), CompareError> {
        self.totals.add(cost)?;
        if !self.endpoints.contains(cost.endpoint.as_str()) {
            self.endpoints.insert(cost.endpoint.clone());
        }
        let region = cost.region.as_deref().unwrap_or("");
        match self.receipts.get_mut(region) {
            Some(n) => *n += 1,
            None => {
                self.receipts.insert(region.to_owned(), 1);
            }
        }
        if !region.is_empty() && !self.regions.contains(region) {
            self.regions.insert(region.to_owned());
        }
        Ok(())
    }
}

/// What `compare` takes from a ledger.
struct LedgerRead {
    /// The totals of the receipts counted (with `--endpoint`, those endpoints').
    totals: UsageTotals,
    /// Torn last lines skipped.
    skipped: Vec<SkippedLine>,
    /// The regions the counted receipts were made in (older receipts name none).
    regions: BTreeSet<String>,
    /// Receipts of other regions than `--region`'s, left out, by region.
    left_out: BTreeMap<String, u64>,
    /// Counted receipts without a region.
    without_region: u64,
    /// Every endpoint the ledger holds, counted or not.
    endpoints: BTreeSet<String>,
    /// The endpoints of the receipts counted.
    counted: BTreeSet<String>,
    /// The whole ledger's first receipt's start and last receipt's end.
    covers: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// At most this many names in a sentence.
const NAMES_SAID: usize = 5;

/// `1 receipt`, `2 receipts`.
fn receipts(n: u64) -> String {
    if n == 1 {
        "1 receipt".to_owned()
    } else {
        format!("{n} receipts")
    }
}

/// `names` for a sentence: `a, b, c` (and how many more past [`NAMES_SAID`]).
fn names(names: &BTreeSet<String>) -> String {
    let mut said = names
        .iter()
        .take(NAMES_SAID)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SAID {
        said.push_str(&format!(" and {} more", names.len() - NAMES_SAID));
    }
    said
}

/// The region a ledger's calls are priced in: `--region` when given, else the
/// region the calls were made in, else `configured`. Calls counted that were made
/// in several regions need `--region` naming one of them, to say which region's
/// calls to take (and price there); a `--region` none of them was made in is a
/// what-if of one region's calls only. The sentence, if any, says what was chosen
/// and why.
fn ledger_region(
    path: &Path,
    ledger: &BTreeSet<String>,
    stated: Option<&str>,
    configured: &str,
) -> Result<(String, Option<String>), CliError> {
    let take_one = || {
        ledger
            .iter()
            .take(NAMES_SAID)
            .map(|region| format!("--region {region}"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match (stated, ledger.len()) {
        (Some(stated), 0) => Ok((stated.to_owned(), None)),
        (Some(stated), _) if ledger.len() == 1 && ledger.contains(stated) => {
            Ok((stated.to_owned(), None))
        }
        // Several regions' deployments priced as one workload at a third region's
        // rates: no what-if of one deployment. (`read_ledger` took `stated`'s
        // calls alone when the ledger holds any.)
        (Some(stated), n) if n > 1 => Err(CliError::failed(format!(
            "the ledger {}'s calls counted were made in several regions ({}), none in \
             {stated}: priced in {stated} together they would be one workload of several \
             deployments; {} takes one region's calls, priced there (to price one region's \
             calls in {stated}, count only them: --endpoint, --since, --until)",
            path.display(),
            names(ledger),
            take_one()
        ))),
        (Some(stated), _) => Ok((
            stated.to_owned(),
            Some(format!(
                "its calls were made in {}; priced in {stated}, as --region says",
                names(ledger)
            )),
        )),
        (None, 0) => Ok((configured.to_owned(), None)),
        (None, 1) => {
            let made_in = ledger.first().cloned().unwrap_or_default();
            let said = (made_in != configured)
                .then(|| format!("priced in {made_in}, the region its calls were made in"));
            Ok((made_in, said))
        }
        (None, _) => Err(CliError::failed(format!(
            "the ledger {}'s calls were made in several regions ({}), each at its own \
             prices: {} takes one region's calls, priced there",
            path.display(),
            names(ledger),
            take_one()
        ))),
    }
}

/// The files of a Parquet ledger at `path`: `None` when `path` is JSON Lines (a
/// file not named `.parquet`, or a directory without Parquet files). Listed as
/// `report` and `reconcile` list them ([`sagemeter::ledger::any_ledger_files`]):
/// a directory whose Parquet files cannot be listed is an error naming the entry,
/// and without the `parquet` feature a `.parquet` path, or a directory holding
/// one, is refused naming the feature, rather than its Parquet receipts left out.
fn parquet_ledger_files(path: &Path) -> Result<Option<Vec<PathBuf>>, BoxError> {
    let is_parquet = |file: &Path| file.extension().is_some_and(|x| x == "parquet");
    if !path.is_dir() && !is_parquet(path) {
        return Ok(None);
    }
    let (parquet, jsonl): (Vec<PathBuf>, Vec<PathBuf>) =
        (sagemeter::ledger::any_ledger_files(path)?.into_iter()).partition(|f| is_parquet(f));
    match (parquet.is_empty(), jsonl.is_empty()) {
        (true, _) => Ok(None),
        (false, true) => Ok(Some(parquet)),
        (false, false) => Err(format!(
            "{} holds both JSON Lines and Parquet ledgers: the same receipts may be in \
             both (a ledger next to its conversion); give one format's file",
            path.display()
        )
        .into()),
    }
}

/// The receipts of one Parquet file, read as they are needed.
#[cfg(feature = "parquet")]
fn parquet_receipts(
    file: &Path,
) -> Result<impl Iterator<Item = Result<sagemeter::Cost, LedgerError>>, LedgerError> {
    sagemeter::ledger::parquet::ParquetReader::open(file)
}

/// Without the `parquet` feature there are no Parquet files to read
/// ([`parquet_ledger_files`] refuses them).
#[cfg(not(feature = "parquet"))]
fn parquet_receipts(
    _: &Path,
) -> Result<std::iter::Empty<Result<sagemeter::Cost, LedgerError>>, LedgerError> {
    Ok(std::iter::empty())
}

/// Runs `sagemeter compare`: builds the profile and plans from `args`, prices them
/// with `prices` in `region`, and writes the table (or JSON) to `out`.
pub async fn run(
    args: CompareArgs,
    prices: &dyn PriceSource,
    sdk_config: &aws_types::SdkConfig,
    stated_region: Option<&str>,
    configured_region: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut skipped = Vec::new();
    let mut overrides = Vec::new();
    let mut notes = Vec::new();
    let mut sample = None;
    let mut region = stated_region.unwrap_or(configured_region).to_owned();
    // The plan flags are checked before a ledger is read: a value no plan can have
    // is an invalid argument (exit 2) whatever the ledger holds, not a ledger
    // without calls (exit 1) found after reading all of it.
    let plans = plans(&args).map_err(usage)?;
    let profile = match &args.from_ledger {
        Some(path) => {
            if let (Some(since), Some(until)) = (args.since, args.until)
                && since >= until
            {
                return Err(CliError::Usage(format!(
                    "--since {since} is not before --until {until}: no call can be in that range"
                )));
            }
            check_stated(&args, &plans, &region)?;
            let read = read_ledger(path, &args, stated_region)?;
            let mut totals = read.totals;
            skipped = read.skipped;
            // An --endpoint the ledger does not hold is a typo, not an idle one.
            let unknown: BTreeSet<String> = args
                .endpoints
                .iter()
                .filter(|e| !read.endpoints.contains(*e))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(CliError::failed(format!(
                    "the ledger {} has no calls of {}; it holds {}",
                    path.display(),
                    names(&unknown),
                    if read.endpoints.is_empty() {
                        "none".to_owned()
                    } else {
                        names(&read.endpoints)
                    }
                )));
            }
            let range = match (args.since, args.until) {
                (None, None) => None,
                (since, until) => Some(format!(
                    "from {} until {}",
                    since.map_or("its start".to_owned(), |t| t.to_rfc3339()),
                    until.map_or("its end".to_owned(), |t| t.to_rfc3339())
                )),
            };
            if totals.calls == 0 {
                let of = if args.endpoints.is_empty() {
                    String::new()
                } else {
                    let asked = args.endpoints.iter().cloned().collect();
                    format!(" of {}", names(&asked))
                };
                return Err(CliError::failed(format!(
                    "the ledger {} has no calls{of} to compare{}",
                    path.display(),
                    range.as_ref().map_or_else(String::new, |r| format!(" {r}"))
                )));
            }
            if args.endpoints.is_empty() && read.counted.len() > 1 {
                notes.push(format!(
                    "the calls of {} endpoints ({}) are compared as one workload; \
                     --endpoint takes one",
                    read.counted.len(),
                    names(&read.counted)
                ));
            }
            // The ledger was written all the time it covers, whichever endpoints
            // called: its calls stand for that time (an endpoint that was called on
            // one day of a week's ledger was idle the other six), or for the range
            // asked, as far as the ledger covers it (a week holding 100 calls on one
            // day is 100 a week). The calls' own span counts when it is longer (a
            // ledger of their calls alone: the mean gap between starts per call).
            let mut over = ScaledOver::Calls;
            if let Some((first, last)) = read.covers {
                let from = args.since.map_or(first, |since| since.max(first));
                let to = args.until.map_or(last, |until| until.min(last));
                if let Ok(window) = (to - from).to_std()
                    && window > totals.observed
                {
                    totals.observed = window;
                    let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
                    notes.push(match &range {
                        Some(range) => {
                            over = ScaledOver::Range;
                            format!(
                                "the calls are scaled over the range asked, {range}, as far \
                                 as the ledger covers it ({from} to {to})"
                            )
                        }
                        None => {
                            over = ScaledOver::Ledger;
                            format!(
                                "the calls are scaled over the time the ledger covers, \
                                 {from} to {to} (its first receipt's start to its last \
                                 receipt's end, of any endpoint), longer than their own"
                            )
                        }
                    });
                }
            }
            notes.extend(tokens_reported_note(&totals));
            notes.extend(bytes_unknown_note(&totals));
            notes.extend(compute_unseen_note(&totals));
            notes.extend(answered_note(&totals));
            let note;
            (region, note) = ledger_region(path, &read.regions, stated_region, configured_region)?;
            notes.extend(note);
            if !read.left_out.is_empty() {
                let left_out: Vec<String> = read
                    .left_out
                    .iter()
                    .map(|(region, n)| format!("{} of {region}", receipts(*n)))
                    .collect();
                notes.push(format!(
                    "{} left out: --region {region} takes only {region}'s calls",
                    left_out.join(", ")
                ));
                if read.without_region > 0 {
                    notes.push(format!(
                        "{} no region (written before receipts did): taken as {region}'s",
                        if read.without_region == 1 {
                            "1 receipt carries".to_owned()
                        } else {
                            format!("{} receipts carry", read.without_region)
                        }
                    ));
                }
            }
            // A stated latency replaces the ledger's before the profile is checked:
            // a ledger's mean beyond the hour a profile allows (asynchronous
            // settlements timed from submission count the queue) can still be
            // compared at a stated one.
            // `None` inside: no settled call's model time was seen.
            let ledger_latency = args
                .latency_ms
                .map(|_| (totals.timed_calls().unwrap_or(0) > 0).then(|| mean_latency_ms(&totals)));
            if ledger_latency.is_some() {
                totals.busy_time = Duration::ZERO;
                totals.billed_busy_time = None;
            }
            let mut profile =
                UsageProfile::from_totals(&totals, args.period).map_err(|e| match e {
                    CompareError::OutOfRange {
                        what: "mean latency",
                        ..
                    } => CliError::failed(format!(
                        "{e}; the ledger {}'s calls took that long on average (an \
                         asynchronous settlement's time can include its queue): \
                         --latency-ms states the mean to compare with",
                        path.display()
                    )),
                    e => failed(e),
                })?;
            sample = Some(LedgerSample {
                calls: totals.calls,
                observed_seconds: Decimal::from_i128_with_scale(
                    i128::try_from(totals.observed.as_nanos()).unwrap_or(i128::MAX),
                    9,
                )
                .normalize(),
                over,
            });
            overrides =
                override_ledger_figures(&mut profile, ledger_latency, &args).map_err(usage)?;
            profile
        }
        None => {
            unstated_tokens(&args)?;
            data_rate_without_sizes(&args)?;
            profile(&args).map_err(usage)?
        }
    };
    // What the flags say is checked before anything is priced: values no plan or
    // profile can have are invalid arguments (exit 2), as clap's own are.
    Comparison::check(&profile, &plans).map_err(usage)?;
    let mut rates = stated_rates(&args, &region)?;
    rates
        .fill_from(prices, &plans, &profile)
        .await
        .map_err(with_flag_hint)?;
    let comparison = Comparison::compute(&profile, &plans, &rates).map_err(failed)?;
    let mut measured = Vec::new();
    let projection = match &args.price_trend {
        Some(flag) => {
            let (trend, notes) = flag.trend(&comparison, sdk_config).await.map_err(failed)?;
            measured = notes;
            Some(
                Projection::compute(
                    &comparison,
                    &trend,
                    args.horizon.unwrap_or(DEFAULT_HORIZON_MONTHS),
                )
                .map_err(failed)?,
            )
        }
        None => None,
    };

    let mut charts = Vec::new();
    if let Some(path) = &args.chart {
        draw_chart(&comparison, path).map_err(failed)?;
        charts.push(("Chart", path.clone()));
        if let Some(projection) = &projection {
            let path = trend_chart_path(path);
            draw_trend_chart(projection, &path).map_err(failed)?;
            charts.push(("Trend chart", path));
        }
    }
    if args.json {
        let output = JsonOutput {
            comparison: &comparison,
            trend: projection.as_ref(),
            measured_trend: &measured,
            skipped_torn_lines: &skipped,
            ledger_overrides: &overrides,
            ledger_notes: &notes,
            ledger_sample: sample.as_ref(),
        };
        serde_json::to_writer_pretty(&mut *out, &output).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        // The table quotes plan names and notes, which may hold what a ledger or an
        // AWS answer said: no control character of theirs reaches the terminal.
        let printable = sagemeter::redact::printable_lines;
        write!(out, "{}", printable(&comparison.to_string()))?;
        if let Some(projection) = &projection {
            writeln!(out)?;
            if !measured.is_empty() {
                writeln!(
                    out,
                    "Measured from the AWS Price List's published versions:"
                )?;
                for note in &measured {
                    writeln!(out, "  {}", sagemeter::redact::printable(note))?;
                }
                writeln!(out)?;
            }
            write!(out, "{}", printable(&projection.to_string()))?;
        }
        if !charts.is_empty()
            || !skipped.is_empty()
            || !overrides.is_empty()
            || !notes.is_empty()
            || sample.is_some()
        {
            writeln!(out)?;
        }
        if let Some(sample) = &sample {
            // How much the volume above rests on: a few calls in a few seconds
            // scaled to a month is a guess, and the reader should see it is.
            writeln!(
                out,
                "Ledger: {} calls in {}, {} calls per {} at that rate (the time: {})",
                sample.calls,
                span(sample.observed_seconds),
                sagemeter::compare::format::calls(comparison.profile.calls_per_period),
                comparison.period,
                sample.over.says()
            )?;
        }
        // The notes quote the ledger's endpoint names and regions, and a torn
        // line's text: no control character of theirs reaches the terminal.
        let printable = sagemeter::redact::printable;
        for line in notes.iter().chain(&overrides) {
            writeln!(out, "Ledger: {}", printable(line))?;
        }
        for line in &skipped {
            writeln!(out, "Ledger: {}", printable(&line.to_string()))?;
        }
        for (what, path) in charts {
            writeln!(out, "{what}: {}", path.display())?;
        }
    }
    Ok(())
}

/// The flags cannot work (exit 2): nothing was priced.
fn usage(e: CompareError) -> CliError {
    CliError::Usage(e.to_string())
}

/// The comparison failed (exit 1).
fn failed(e: CompareError) -> CliError {
    CliError::Failed(Box::new(e))
}

/// `plans.svg` → `plans-trend.svg`: the month-by-month chart next to the other.
fn trend_chart_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-trend.{}", ext.to_string_lossy()),
        None => format!("{stem}-trend"),
    };
    path.with_file_name(name)
}

/// A stated profile (no `--from-ledger`) must state the tokens a per-token
/// plan prices: `--per-1m-tokens-in 3` with no `--tokens-in` would price the
/// input at $0 (its default), as the ledger path refuses a count no call
/// reported. `--tokens-in 0` states it.
/// Without a ledger, `--data-usd-per-gb` needs a payload size to price: it would
/// price nothing, and a plan billed for data processed says it left it unpriced.
fn data_rate_without_sizes(args: &CompareArgs) -> Result<(), CliError> {
    if args.data_usd_per_gb.is_some() && args.bytes_in.is_none() && args.bytes_out.is_none() {
        return Err(CliError::Usage(
            "--data-usd-per-gb prices payloads no figure states: give the mean per call \
             with --bytes-in and --bytes-out (a size not stated is not zero; --bytes-in 0 \
             says it is)"
                .into(),
        ));
    }
    Ok(())
}

fn unstated_tokens(args: &CompareArgs) -> Result<(), CliError> {
    for (price, count, priced, stated) in [
        (
            args.per_1m_tokens_in,
            args.tokens_in,
            "--per-1m-tokens-in",
            "--tokens-in",
        ),
        (
            args.per_1m_tokens_out,
            args.tokens_out,
            "--per-1m-tokens-out",
            "--tokens-out",
        ),
    ] {
        if price.is_some_and(|usd| !usd.is_zero()) && count.is_none() {
            return Err(CliError::Usage(format!(
                "{priced} prices tokens no figure states: give the mean per call with \
                 {stated} (a count not stated is not zero; {stated} 0 says it is)"
            )));
        }
    }
    Ok(())
}

fn profile(args: &CompareArgs) -> Result<UsageProfile, CompareError> {
    let mut builder = stated_figures(args)?;
    if let Some(calls) = args.calls {
        builder = builder.calls_per_period(calls);
    }
    if let Some(calls) = args.calls_per_day {
        builder = builder.calls_per_day(calls);
    }
    builder.build()
}

/// The profile's figures the flags state, but the calls: the period, the bytes and
/// tokens per call, the mean latency.
fn stated_figures(args: &CompareArgs) -> Result<UsageProfileBuilder, CompareError> {
    let mut builder = UsageProfile::builder().period(args.period);
    // A figure not given stays unstated in the profile (its 0 is no count), so
    // the plans that bill it refuse it or say they left it unpriced.
    if let Some(bytes) = args.bytes_in {
        builder = builder.bytes_in_per_call(bytes);
    }
    if let Some(bytes) = args.bytes_out {
        builder = builder.bytes_out_per_call(bytes);
    }
    if let Some(tokens) = args.tokens_in {
        builder = builder.tokens_in_per_call(tokens);
    }
    if let Some(tokens) = args.tokens_out {
        builder = builder.tokens_out_per_call(tokens);
    }
    if let Some(ms) = args.latency_ms {
        builder = builder.mean_latency(latency(ms)?);
    }
    Ok(builder)
}

/// With `--from-ledger`, what the flags state is checked before the ledger is read:
/// a value that can never be valid (`--latency-ms=-5`, `--hours` beyond the period,
/// a negative rate, bytes or tokens out of bounds) is an invalid argument (exit 2)
/// whatever the ledger holds, not a ledger without calls (exit 1) found after
/// reading all of it.
fn check_stated(args: &CompareArgs, plans: &[Plan], region: &str) -> Result<(), CliError> {
    // The stated figures on a profile of no calls: their own bounds, and the hours
    // the instance plans run against the period (the calls come from the ledger).
    let stated = stated_figures(args)
        .and_then(|b| b.calls_per_period(0).build())
        .map_err(usage)?;
    let hourly: Vec<Plan> = plans
        .iter()
        .filter(|p| matches!(p.model, PlanModel::Instance(_) | PlanModel::SavingsPlan(_)))
        .cloned()
        .collect();
    if !hourly.is_empty() {
        Comparison::check(&stated, &hourly).map_err(usage)?;
    }
    stated_rates(args, region).map(drop)
}

/// With `--from-ledger`: each of `--latency-ms`, `--bytes-in/-out` and
/// `--tokens-in/-out` given replaces the ledger's figure in `profile`. Returns one
/// line per figure replaced, saying what the ledger had.
fn override_ledger_figures(
    profile: &mut UsageProfile,
    ledger_ms: Option<Option<Decimal>>,
    args: &CompareArgs,
) -> Result<Vec<String>, CompareError> {
    let mut replaced = Vec::new();
    if let (Some(ms), Some(ledger_ms)) = (args.latency_ms, ledger_ms) {
        let stated = latency(ms)?;
        let ledger = match ledger_ms {
            Some(ledger_ms) => format!("{ledger_ms} ms"),
            None => "none known".to_owned(),
        };
        replaced.push(format!(
            "mean latency per call {} ms from --latency-ms, in place of the ledger's {ledger}",
            ms.normalize()
        ));
        profile.mean_latency = stated;
        // A stated mean is billed as stated: rounded up once, not per metered call.
        profile.billed_ms_per_call = None;
    }
    for (flag, what, stated, figure, unstated) in [
        (
            "--bytes-in",
            "bytes in per call",
            args.bytes_in,
            &mut profile.bytes_in_per_call,
            &mut profile.unstated.bytes_in,
        ),
        (
            "--bytes-out",
            "bytes out per call",
            args.bytes_out,
            &mut profile.bytes_out_per_call,
            &mut profile.unstated.bytes_out,
        ),
    ] {
        if let Some(stated) = stated {
            let ledger = match *unstated {
                true => "none known".to_owned(),
                false => fmt_bytes(*figure),
            };
            replaced.push(format!(
                "{what} {} from {flag}, in place of the ledger's {ledger}",
                fmt_bytes(stated),
            ));
            *figure = Decimal::from(stated);
            // A stated mean is known for every call, 0 too.
            *unstated = false;
        }
    }
    let reported = profile.tokens_reported;
    for (flag, what, stated, figure, reported) in [
        (
            "--tokens-in",
            "tokens in per call",
            args.tokens_in,
            &mut profile.tokens_in_per_call,
            reported.map(|r| r.tokens_in),
        ),
        (
            "--tokens-out",
            "tokens out per call",
            args.tokens_out,
            &mut profile.tokens_out_per_call,
            reported.map(|r| r.tokens_out),
        ),
    ] {
        if let Some(stated) = stated {
            let ledger = match reported {
                Some(0) => "none reported".to_string(),
                _ => sagemeter::compare::format::calls(*figure),
            };
            replaced.push(format!(
                "{what} {stated} from {flag}, in place of the ledger's {ledger}"
            ));
            *figure = Decimal::from(stated);
        }
    }
    // A stated mean is known for every call, 0 too: priced and shown as stated,
    // not refused or shown as `?` for the calls that reported none.
    if let Some(reported) = profile.tokens_reported.as_mut() {
        if args.tokens_in.is_some() {
            reported.tokens_in = reported.calls;
        }
        if args.tokens_out.is_some() {
            reported.tokens_out = reported.calls;
        }
    }
    profile.validate()?;
    Ok(replaced)
}

/// How many of the ledger's calls reported their tokens, when some did and some did
/// not: each mean per call is over the calls that reported it. Counted among the
/// calls answered with HTTP 2XX: a model error or a call cancelled before its answer
/// came had no tokens to report (its receipt charged none), and is no call that
/// did not report them.
fn tokens_reported_note(totals: &UsageTotals) -> Option<String> {
    let settled = totals.settled_calls().unwrap_or(0);
    let unanswered = totals.unanswered_settled_calls.unwrap_or(0);
    let could = settled.saturating_sub(unanswered);
    let tokens_in = totals.calls_with_tokens_in.unwrap_or(could);
    let tokens_out = totals.calls_with_tokens_out.unwrap_or(could);
    let some = tokens_in > 0 || tokens_out > 0;
    let not_all = tokens_in < could || tokens_out < could;
    let of = if unanswered > 0 {
        format!("the {could} calls answered with HTTP 2XX")
    } else {
        format!("{could} calls")
    };
    (some && not_all).then(|| {
        format!(
            "tokens in reported by {tokens_in} of {of}, tokens out by {tokens_out} of \
             {could}: each mean per call is over the calls that reported it"
        )
    })
}

/// How many of the ledger's calls had a payload size their receipts record as not
/// known (an input in S3 whose size was not given, an output or a stream not
/// seen): each mean per call is over the calls whose size was known, never their
/// 0 bytes, and a direction no call knew is not priced (its row says so).
fn bytes_unknown_note(totals: &UsageTotals) -> Option<String> {
    let settled = totals.settled_calls().unwrap_or(0);
    let mut parts = Vec::new();
    for (direction, unknown, of, calls, flag) in [
        (
            "in",
            totals.bytes_in_unknown_calls,
            totals.calls,
            "calls",
            "--bytes-in",
        ),
        (
            "out",
            totals.bytes_out_unknown_calls,
            settled,
            "settled calls",
            "--bytes-out",
        ),
    ] {
        if unknown > 0 {
            parts.push(format!(
                "data {direction}: the size of {unknown} of {of} {calls} was not known \
                 ({flag} states the mean per call)"
            ));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{}; each mean per call is over the calls whose size was known, and a \
             direction none knew is not priced",
            parts.join("; ")
        )
    })
}

/// A line when some of the ledger's calls got no HTTP 2XX answer (model errors,
/// calls cancelled before their answer), or some got more than one: per-inference
/// and subscription plans charge the inferences, one per 2XX answer, as AWS
/// Marketplace does and the receipts did, and per-token plans the answered calls'
/// tokens, once a call (a call not answered reported none; the tokens of a 2XX
/// answer cut off, which AWS Marketplace charges too, are not counted: a lower
/// bound, as the receipts' unpriced lines say). A
/// cancelled call may have been answered after its caller left, and then AWS
/// charged it: the line says how many were cancelled, the answered calls being a
/// lower bound by as many.
fn answered_note(totals: &UsageTotals) -> Option<String> {
    let answered = totals.answered_calls?;
    let inferences = totals.inferences.unwrap_or(answered);
    let cancelled = match totals.cancelled_calls {
        Some(n) if n > 0 => format!(" ({n} cancelled: a lower bound)"),
        _ => String::new(),
    };
    // A 2XX answer cut off was charged its tokens too; the receipts could not
    // price them (unpriced lines), and the per-token plans leave them out.
    let cut_off = match inferences > answered {
        true => ", once a call: a 2XX answer cut off had tokens too, not counted (a lower bound)",
        false => "",
    };
    let (charged, counted) = if inferences == answered {
        (String::new(), "those")
    } else {
        (
            format!(
                ", {inferences} inferences charged (one per 2XX answer: a call whose answer \
                 was cut off and tried again, answered again, is two)"
            ),
            "the inferences",
        )
    };
    (answered < totals.calls || inferences != answered).then(|| {
        format!(
            "{answered} of {} calls answered with HTTP 2XX{cancelled}{charged}: per-inference \
             plans and a subscription's included calls count {counted}, as AWS Marketplace \
             charges inferences, and per-token plans charge the answered calls' tokens, as \
             the receipts did (not model errors; a call cancelled before its answer came \
             counts as unanswered, though AWS charges it if SageMaker answered it \
             afterwards){cut_off}; compute and data are priced for every call",
            totals.calls
        )
    })
}

/// How many of the ledger's settled calls' model time was not seen (a stream
/// metered by the SDK interceptor, its compute line unpriced at 0; a settlement
/// whose clocks disagree): the mean latency is over the others, never their 0 ms
/// nor their time to headers.
fn compute_unseen_note(totals: &UsageTotals) -> Option<String> {
    let unseen = totals.compute_unseen_calls;
    (unseen > 0).then(|| {
        format!(
            "model time: {unseen} of {} settled calls' time was not seen (a stream metered \
             by the SDK interceptor, its latency the time to the response's headers, or a \
             settlement whose clocks disagree): the mean latency is over the other calls \
             (--latency-ms states it)",
            totals.settled_calls().unwrap_or(0)
        )
    })
}

/// The ledger's mean model time per settled call whose time is known, in
/// milliseconds, to the nanosecond (as [`UsageProfile::from_totals`] takes it).
fn mean_latency_ms(totals: &UsageTotals) -> Decimal {
    let settled = totals.timed_calls().unwrap_or(0);
    if settled == 0 {
        return Decimal::ZERO;
    }
    let nanos = Decimal::from_i128_with_scale(
        i128::try_from(totals.busy_time.as_nanos()).unwrap_or(i128::MAX),
        0,
    );
    (nanos / Decimal::from(settled))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .checked_div(Decimal::from(1_000_000))
        .unwrap_or_default()
        .normalize()
}

fn latency(ms: Decimal) -> Result<Duration, CompareError> {
    let out_of_range = || CompareError::OutOfRange {
        what: "--latency-ms",
        value: ms.to_string(),
        hint: "give the mean latency in milliseconds, from 0 to 3,600,000".into(),
    };
    if ms < Decimal::ZERO || ms > Decimal::from(3_600_000) {
        return Err(out_of_range());
    }
    let nanos = (ms * Decimal::from(1_000_000)).round();
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| out_of_range())
}

/// `--serverless` on demand and, with `--provisioned-concurrency`, with it: the
/// "pay per use or provision?" question for serverless.
fn serverless_plans(args: &CompareArgs) -> Result<Vec<ServerlessPlan>, CompareError> {
    let Some(mb) = args.serverless else {
        return Ok(Vec::new());
    };
    let mut on_demand = ServerlessPlan::new(mb)?;
    if let Some(n) = args.serverless_max_concurrency {
        on_demand = on_demand.with_max_concurrency(n)?;
    }
    let provisioned = args
        .provisioned_concurrency
        .map(|n| on_demand.clone().with_provisioned_concurrency(n))
        .transpose()?;
    Ok([on_demand].into_iter().chain(provisioned).collect())
}

fn plans(args: &CompareArgs) -> Result<Vec<Plan>, CompareError> {
    let mut plans = Vec::new();
    if let Some(usd) = args.per_call {
        plans.push(Plan::from(PerInferencePlan::per_call(usd)?));
    }
    if let Some(usd) = args.per_1000 {
        plans.push(Plan::from(PerInferencePlan::per_thousand_calls(usd)?));
    }
    if args.per_1m_tokens_in.is_some() || args.per_1m_tokens_out.is_some() {
        plans.push(Plan::from(PerTokenPlan::per_million_tokens(
            args.per_1m_tokens_in.unwrap_or_default(),
            args.per_1m_tokens_out.unwrap_or_default(),
        )?));
    }
    if let Some(fee) = args.subscription {
        let mut sub = SubscriptionPlan::builder()
            .fee_usd(fee)
            .period(args.subscription_period.unwrap_or(args.period));
        if let Some(included) = args.included {
            sub = sub.included_calls(included);
        }
        if let Some(overage) = args.overage {
            sub = sub.overage_usd_per_call(overage);
        }
        plans.push(Plan::from(sub.build()?));
    }
    if let Some(instance_type) = &args.instance {
        let mut instance = InstancePlan::new(instance_type, args.count)?
            .with_max_concurrency_per_instance(args.max_concurrency_per_instance)?;
        if let Some(hours) = args.hours {
            instance = instance.with_hours_per_period(hours)?;
        }
        if let Some(gb) = args.volume_gb {
            instance = instance.with_volume_gb(gb)?;
        }
        plans.push(Plan::from(instance));
        if let Some(commitment) = args.savings_plan {
            let mut savings = SavingsPlan::builder()
                .instance_type(instance_type)
                .count(args.count)
                .commitment_usd_per_hour(commitment)
                .discount(args.discount.unwrap_or_default())
                .term(args.term)
                .max_concurrency_per_instance(args.max_concurrency_per_instance);
            if let Some(hours) = args.hours {
                savings = savings.hours_per_period(hours);
            }
            if let Some(gb) = args.volume_gb {
                savings = savings.volume_gb(gb);
            }
            plans.push(Plan::from(savings.build()?));
        }
    }
    plans.extend(serverless_plans(args)?.into_iter().map(Plan::from));
    if plans.is_empty() {
        return Err(CompareError::Inconsistent {
            problem: "nothing to compare".into(),
            hint: "give at least one plan: --per-call/--per-1000, --subscription, \
                   --per-1m-tokens-in/-out, --instance (with --savings-plan), --serverless"
                .into(),
        });
    }
    Ok(plans)
}

/// The rates stated by flags; a rate that cannot be one is a usage error naming
/// its flag.
fn stated_rates(args: &CompareArgs, region: &str) -> Result<RateTable, CliError> {
    fn flagged(flag: &'static str) -> impl Fn(CompareError) -> CliError {
        move |e| CliError::Usage(format!("{flag}: {e}"))
    }
    let mut rates = RateTable::new(region);
    if let (Some(usd), Some(instance_type)) = (args.instance_usd_per_hour, &args.instance) {
        rates = rates
            .with_rate(PriceKey::hosting(region, instance_type), usd)
            .map_err(flagged("--instance-usd-per-hour"))?;
    }
    if let Some(usd) = args.storage_usd_per_gb_month {
        rates = rates
            .with_rate(PriceKey::storage(region), usd)
            .map_err(flagged("--storage-usd-per-gb-month"))?;
    }
    let serverless = serverless_plans(args).map_err(with_flag_hint)?;
    let provisioned = serverless
        .iter()
        .find(|p| p.provisioned_concurrency.is_some());
    let stated = [
        (
            args.serverless_usd_per_second,
            serverless.first().map(|p| p.duration_key(region)),
            "--serverless-usd-per-second",
        ),
        (
            args.provisioned_usd_per_second,
            provisioned.and_then(|p| p.standing_key(region)),
            "--provisioned-usd-per-second",
        ),
        (
            args.provisioned_usage_usd_per_second,
            provisioned.map(|p| p.duration_key(region)),
            "--provisioned-usage-usd-per-second",
        ),
    ];
    for (usd, key, flag) in stated {
        if let (Some(usd), Some(key)) = (usd, key) {
            rates = rates.with_rate(key, usd).map_err(flagged(flag))?;
        }
    }
    if let Some(usd) = args.data_usd_per_gb {
        for key in [
            PriceKey::DataIn {
                region: region.into(),
            },
            PriceKey::DataOut {
                region: region.into(),
            },
        ] {
            rates = rates
                .with_rate(key, usd)
                .map_err(flagged("--data-usd-per-gb"))?;
        }
    }
    Ok(rates)
}

/// Adds the flag that states a missing rate to the library's message.
fn with_flag_hint(e: CompareError) -> CliError {
    let flag = match &e {
        CompareError::MissingRate { key, .. } => match key {
            PriceKey::Hosting { .. } => Some("--instance-usd-per-hour"),
            PriceKey::Serverless { .. } => Some("--serverless-usd-per-second"),
            PriceKey::ProvisionedConcurrency { .. } => Some("--provisioned-usd-per-second"),
            PriceKey::ProvisionedConcurrencyUsage { .. } => {
                Some("--provisioned-usage-usd-per-second")
            }
            PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => Some("--data-usd-per-gb"),
            PriceKey::Storage { .. } => Some("--storage-usd-per-gb-month"),
            _ => None,
        },
        _ => None,
    };
    match flag {
        Some(flag) => CliError::failed(format!("{e}; or state the rate with {flag}")),
        None => failed(e),
    }
}

#[cfg(feature = "charts")]
fn draw_chart(comparison: &Comparison, path: &Path) -> Result<(), CompareError> {
    sagemeter::compare::chart::render(comparison, path)
}

#[cfg(feature = "charts")]
fn draw_trend_chart(projection: &Projection, path: &Path) -> Result<(), CompareError> {
    sagemeter::compare::chart::render_trend(projection, path)
}

#[cfg(not(feature = "charts"))]
fn draw_trend_chart(_projection: &Projection, path: &Path) -> Result<(), CompareError> {
    draw_chart_unavailable(path)
}

#[cfg(not(feature = "charts"))]
fn draw_chart(_comparison: &Comparison, path: &Path) -> Result<(), CompareError> {
    draw_chart_unavailable(path)
}

#[cfg(not(feature = "charts"))]
fn draw_chart_unavailable(path: &Path) -> Result<(), CompareError> {
    Err(CompareError::Chart {
        path: path.display().to_string(),
        reason: "this sagemeter was built without charts: rebuild with --features charts".into(),
    })
}

/// `--calls`, `--included`: calls per period.
fn parse_calls(s: &str) -> Result<Decimal, String> {
    parse_decimal(s, "0 to 10^15 calls per period")
}

/// `--calls-per-day` (at most 10^15 calls a year).
fn parse_calls_per_day(s: &str) -> Result<Decimal, String> {
    parse_decimal(s, "0 to 2,739,726,027,397 calls per day")
}

/// `--latency-ms`.
fn parse_ms(s: &str) -> Result<Decimal, String> {
    parse_decimal(s, "0 to 3,600,000 ms")
}

/// `--hours`.
fn parse_hours(s: &str) -> Result<Decimal, String> {
    parse_decimal(
        s,
        "more than 0 and at most the period's hours (24 a day, 730 a month, 8,760 a year)",
    )
}

/// Prices, fees and rates in USD.
fn parse_usd(s: &str) -> Result<Decimal, String> {
    parse_decimal(s, "an amount from 0 to 1,000,000,000 USD")
}

/// `--bytes-in`, `--bytes-out`: mean bytes per call.
fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_whole(s, "a whole number of bytes, 0 or more")
}

/// `--tokens-in`, `--tokens-out`: mean tokens per call.
fn parse_tokens(s: &str) -> Result<u64, String> {
    parse_whole(s, "a whole number of tokens, 0 or more")
}

/// `--count`: instances.
fn parse_count(s: &str) -> Result<u32, String> {
    parse_whole(s, "a whole number of instances, 1 or more")
}

/// `--max-concurrency-per-instance`.
fn parse_concurrency(s: &str) -> Result<u32, String> {
    parse_whole(s, "a whole number of calls, 1 or more")
}

/// `--volume-gb`.
fn parse_volume_gb(s: &str) -> Result<u32, String> {
    parse_whole(s, "a whole number of GB from 1 to 512")
}

/// `--serverless`: memory size.
fn parse_memory_mb(s: &str) -> Result<u32, String> {
    parse_whole(s, "1024 to 6144 MB, in steps of 1024")
}

/// A whole number, read as the other numbers are (`1e6`, `40,000`) and refused the
/// same way, saying what the flag `accepts`: never clap's "invalid digit found in
/// string" for `1e6`, nor "unexpected argument '-1'" for a negative value.
fn parse_whole<T: TryFrom<u64>>(s: &str, accepts: &str) -> Result<T, String> {
    let value = parse_decimal(s, accepts)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("`{s}` is negative: give {accepts}"));
    }
    if !value.fract().is_zero() {
        return Err(format!("`{s}` is not a whole number: give {accepts}"));
    }
    u64::try_from(value)
        .ok()
        .and_then(|whole| T::try_from(whole).ok())
        .ok_or_else(|| format!("`{s}` is too large: give {accepts}"))
}

/// A decimal number, with `.` for decimals: `0.0125`, `40000`, `1e6`. `,` (or `_`)
/// may group the digits of the whole part in threes (`40,000`, `1_000_000.5`);
/// anywhere else, such as a decimal comma (`0,0125`, `1.000,50`), the value is
/// refused rather than read as another number. A number an exact decimal cannot
/// hold (`1e30`, `1e-30`, or more digits than the 28 kept) is refused as too large,
/// too small or too precise, never rounded, saying what the flag `accepts`.
fn parse_decimal(s: &str, accepts: &str) -> Result<Decimal, String> {
    let refused = || {
        format!(
            "`{s}` is not a number: use `.` for decimals, and `,` only between groups of \
             three digits (e.g. 40,000, 0.0125, 1e6)"
        )
    };
    let cleaned = ungroup_digits(s.trim()).ok_or_else(refused)?;
    let Some(fraction_digits) = number_syntax(&cleaned) else {
        return Err(refused());
    };
    let beyond = |what: &str| format!("`{s}` is {what}: give {accepts}");
    match Decimal::from_str(&cleaned).or_else(|_| Decimal::from_scientific(&cleaned)) {
        // Parsing rounds digits beyond what a decimal holds: refuse, never round.
        Ok(value) if fraction_digits > value.normalize().scale() as usize => Err(beyond(
            "too precise to read exactly (at most 28 digits, and 28 decimal places)",
        )),
        Ok(value) => Ok(value),
        // Valid syntax, so a magnitude a decimal cannot hold. Zero only when its
        // digits are (`0e-400`): an f64 reads `1e-400` as 0.0 too, and that is a
        // number too small, not zero.
        Err(_) if mantissa_is_zero(&cleaned) => Ok(Decimal::ZERO),
        Err(_) => match cleaned.parse::<f64>().map(f64::abs) {
            Ok(magnitude) if magnitude < 1.0 => {
                Err(beyond("too small to read exactly (below 10^-28)"))
            }
            _ => Err(beyond(
                "too large (a decimal holds at most 79,228,162,514,264,337,593,543,950,335)",
            )),
        },
    }
}

/// Whether every digit of `number`'s mantissa (before any `e`/`E`) is 0: `0e-400`,
/// `-0.00E5`, not `1e-400`. `number` is of valid syntax ([`number_syntax`]).
fn mantissa_is_zero(number: &str) -> bool {
    number
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .bytes()
        .filter(u8::is_ascii_digit)
        .all(|digit| digit == b'0')
}

/// The decimal places `text` needs when it is a plain or scientific number
/// (`-12.50`, `.5`, `1e6`, `2.5E-3`): `Some(places)`, trailing zeros not counted
/// (`100.50` needs 1, `100e-2` none, `2.5E-3` 4); `None` when it is not a number
/// (`NaN`, `inf`, `1.2.3`, `0x10`).
fn number_syntax(text: &str) -> Option<usize> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let exponent: i64 = match exponent {
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !digits(unsigned) {
                return None;
            }
            // An exponent beyond i64 is beyond any decimal: parsing it fails anyway.
            e.parse().unwrap_or(0)
        }
        None => 0,
    };
    // value = D × 10^(exponent − fraction digits); D's trailing zeros raise the power.
    let all = format!("{whole}{fraction}");
    let trailing_zeros = all.len() - all.trim_end_matches('0').len();
    let places = (fraction.len() as i64)
        .saturating_sub(exponent)
        .saturating_sub(trailing_zeros as i64);
    Some(usize::try_from(places).unwrap_or(0))
}

/// `text` without its thousands separators, when it uses them as such: one kind
/// (`,` or `_`), in the whole part only, between a first group of 1 to 3 digits (not
/// starting with 0) and groups of exactly 3. `None` for any other use of `,` or `_`.
fn ungroup_digits(text: &str) -> Option<String> {
    let is_separator = |c: char| c == ',' || c == '_';
    if !text.contains(is_separator) {
        return Some(text.to_owned());
    }
    let (sign, unsigned) = match text.strip_prefix(['+', '-']) {
        Some(rest) => (&text[..1], rest),
        None => ("", text),
    };
    let whole_end = unsigned.find(['.', 'e', 'E']).unwrap_or(unsigned.len());
    let (whole, rest) = unsigned.split_at(whole_end);
    if rest.contains(is_separator) || (whole.contains(',') && whole.contains('_')) {
        return None;
    }
    let mut groups = whole.split(is_separator);
    let first = groups.next()?;
    let first_ok = (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && !first.starts_with('0');
    if !first_ok {
        return None;
    }
    let mut digits = String::from(sign);
    digits.push_str(first);
    for group in groups {
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(group);
    }
    digits.push_str(rest);
    Some(digits)
}

/// `--chart` (of `compare` and `report`): a `.svg` or `.png` file (any case), in a
/// sagemeter built with charts. Refused here, as a usage error, before anything is
/// priced, downloaded or read.
pub(crate) fn parse_chart_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("svg" | "png")) {
        return Err(format!("`{s}`: name the file .svg or .png"));
    }
    if cfg!(not(feature = "charts")) {
        return Err("--chart needs sagemeter built with the `charts` feature".into());
    }
    Ok(path)
}

/// `0.64` or `64%`.
fn parse_fraction(s: &str) -> Result<Decimal, String> {
    const ACCEPTS: &str = "a discount between 0 and 1: write 0.64 or 64%";
    let fraction = match s.trim().strip_suffix('%') {
        Some(pct) => parse_decimal(pct.trim(), ACCEPTS)? / Decimal::from(100),
        None => parse_decimal(s, ACCEPTS)?,
    };
    if fraction <= Decimal::ZERO || fraction >= Decimal::ONE {
        return Err(format!(
            "`{s}` is not a discount between 0 and 1: write 0.64 or 64%"
        ));
    }
    Ok(fraction)
}

fn parse_period(s: &str) -> Result<Period, String> {
    s.parse().map_err(|e: CompareError| e.to_string())
}

fn parse_term(s: &str) -> Result<SavingsPlanTerm, String> {
    s.parse().map_err(|e: CompareError| e.to_string())
}

/// `--price-trend`: a rate of change, `-20%/year`, `-1.5%/month`, `+5%/year`, or
/// `history`.
fn parse_price_trend(s: &str) -> Result<TrendFlag, String> {
    if s.trim().eq_ignore_ascii_case("history") {
        return Ok(TrendFlag::History);
    }
    s.parse::<TrendRate>()
        .map(TrendFlag::Rate)
        .map_err(|e| format!("{e}; or `history` for the trend measured from the Price List"))
}

/// `--horizon`: `12m` (months) or `2y` (years), also `18mo`, `18 months`, `1 year`;
/// from 1 month to 10 years.
fn parse_horizon(s: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "`{s}` is not a horizon: write months or years, e.g. 12m, 18m or 2y (1 month to \
             {} years)",
            MAX_HORIZON_MONTHS / 12
        )
    };
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let n: u32 = number.parse().map_err(|_| bad())?;
    let months = match unit.trim() {
        "m" | "mo" | "month" | "months" => Some(n),
        "y" | "yr" | "year" | "years" => n.checked_mul(12),
        _ => return Err(bad()),
    };
    match months {
        Some(m) if (1..=MAX_HORIZON_MONTHS).contains(&m) => Ok(m),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledgers_span_reads_in_the_unit_that_suits_it() {
        let s = |text: &str| span(text.parse().unwrap());
        // A ledger's calls within a second are counted over one: said so.
        assert_eq!(s("1"), "1 s or less (counted as 1 s)");
        assert_eq!(s("1.5"), "1.5 s");
        assert_eq!(s("42.54"), "42.5 s");
        assert_eq!(s("3600"), "60 min");
        assert_eq!(s("11520"), "3.2 h");
        assert_eq!(s("527040"), "6.1 days");
    }

    /// A ledger directory whose Parquet files cannot be listed is an error naming
    /// the entry, as `report` and `reconcile` say it, not a comparison of its JSON
    /// Lines calls alone: `loop.parquet`, a link to itself, may be a ledger whose
    /// calls would be left out without a word.
    #[cfg(all(unix, feature = "parquet"))]
    #[test]
    fn a_ledger_directory_whose_parquet_files_cannot_be_listed_is_an_error_naming_the_entry() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: CompareArgs,
        }
        let dir = tempfile::tempdir().unwrap();
        let receipt = serde_json::json!({
            "call_id": "c-1", "at": "2026-05-20T10:00:00Z", "endpoint": "realtime",
            "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1200, "bytes_in": 100,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        });
        std::fs::write(dir.path().join("calls.jsonl"), format!("{receipt}\n")).unwrap();
        let looped = dir.path().join("loop.parquet");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let args = <Cli as clap::Parser>::try_parse_from([
            "compare".as_ref(),
            "--from-ledger".as_ref(),
            dir.path().as_os_str(),
            "--per-call".as_ref(),
            "0.01".as_ref(),
        ])
        .unwrap()
        .args;
        match read_ledger(dir.path(), &args, None) {
            Err(e) => assert!(e.to_string().contains("loop.parquet"), "{e}"),
            Ok(read) => panic!("read {} calls, not an error", read.totals.calls),
        }
        // Removed, it is no error: the JSON Lines ledger's one call.
        std::fs::remove_file(&looped).unwrap();
        let read = read_ledger(dir.path(), &args, None).unwrap();
        assert_eq!(read.totals.calls, 1);
    }
}
