//! `sagemeter compare`: would another way of paying be cheaper for the same work?
//!
//! Flags describe the work (a stated usage profile) and the plans to weigh; the
//! library's `compare` module does the pricing. Instance and serverless rates come
//! from the price source the CLI was given, unless stated with the `--*-usd-per-*`
//! overrides.

use rust_decimal::Decimal;
use sagemeter::compare::{
    CompareError, Comparison, InstancePlan, PerInferencePlan, PerTokenPlan, Period, Plan,
    RateTable, SavingsPlan, SavingsPlanTerm, ServerlessPlan, SubscriptionPlan, UsageProfile,
};
use sagemeter::pricing::{PriceKey, PriceSource};
use std::io::Write;
use std::path::PathBuf;
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

Examples:
  sagemeter compare --calls 100000 --per-call 0.0125 --subscription 500
  sagemeter compare --calls 60000 --per-1000 12.5 --subscription 400 --included 40000 --overage 0.02
  sagemeter compare --calls 1000000 --latency-ms 800 --instance ml.m5.xlarge --serverless 3072 --chart plans.svg")]
pub struct CompareArgs {
    // --- the work ---
    /// Calls per period (the work to price).
    #[arg(
        long,
        value_name = "N",
        value_parser = parse_decimal,
        required_unless_present_any = ["calls_per_day", "from_ledger"],
        help_heading = "Usage profile"
    )]
    pub calls: Option<Decimal>,
    /// Calls per day instead of per period (converted with hours(period) / 24).
    #[arg(long, value_name = "N", value_parser = parse_decimal, conflicts_with = "calls", help_heading = "Usage profile")]
    pub calls_per_day: Option<Decimal>,
    /// Take the work from a ledger written by `sagemeter invoke --ledger` (or the
    /// library's JsonlLedger): its calls, mean latency, bytes and tokens, scaled from
    /// the time the ledger covers to the period. An async invocation's two receipts
    /// (submission and settlement) are one call.
    #[arg(long, value_name = "LEDGER", conflicts_with_all = ["calls", "calls_per_day"], help_heading = "Usage profile")]
    pub from_ledger: Option<PathBuf>,
    /// The period costs are compared over (and a subscription fee is charged for).
    #[arg(long, value_name = "day|month|year", default_value = "month", value_parser = parse_period, help_heading = "Usage profile")]
    pub period: Period,
    /// Mean model latency per call, in milliseconds (serverless bills it).
    #[arg(long, value_name = "MS", value_parser = parse_decimal, help_heading = "Usage profile")]
    pub latency_ms: Option<Decimal>,
    /// Mean request payload per call, in bytes (data processed in).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 0,
        help_heading = "Usage profile"
    )]
    pub bytes_in: u64,
    /// Mean response payload per call, in bytes (data processed out).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 0,
        help_heading = "Usage profile"
    )]
    pub bytes_out: u64,
    /// Mean input tokens per call (for --per-1m-tokens-in).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Usage profile"
    )]
    pub tokens_in: u64,
    /// Mean output tokens per call (for --per-1m-tokens-out).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Usage profile"
    )]
    pub tokens_out: u64,

    // --- pay per use ---
    /// Pay per use: price of one call.
    #[arg(long, value_name = "USD", value_parser = parse_decimal, conflicts_with = "per_1000", help_heading = "Plans")]
    pub per_call: Option<Decimal>,
    /// Pay per use: price of 1,000 calls.
    #[arg(long = "per-1000", value_name = "USD", value_parser = parse_decimal, help_heading = "Plans")]
    pub per_1000: Option<Decimal>,
    /// Per token: price of one million input tokens.
    #[arg(long = "per-1m-tokens-in", value_name = "USD", value_parser = parse_decimal, help_heading = "Plans")]
    pub per_1m_tokens_in: Option<Decimal>,
    /// Per token: price of one million output tokens.
    #[arg(long = "per-1m-tokens-out", value_name = "USD", value_parser = parse_decimal, help_heading = "Plans")]
    pub per_1m_tokens_out: Option<Decimal>,

    // --- subscription ---
    /// Subscription: fee per period (--period, or --subscription-period).
    #[arg(long, value_name = "USD", value_parser = parse_decimal, help_heading = "Plans")]
    pub subscription: Option<Decimal>,
    /// Subscription: the period the fee is charged for, when it differs from --period
    /// (the fee is then amortised by hours).
    #[arg(long, value_name = "day|month|year", value_parser = parse_period, requires = "subscription", help_heading = "Plans")]
    pub subscription_period: Option<Period>,
    /// Subscription: calls included per subscription period.
    #[arg(long, value_name = "CALLS", value_parser = parse_decimal, requires = "subscription", help_heading = "Plans")]
    pub included: Option<Decimal>,
    /// Subscription: price of each call above the included calls.
    #[arg(long, value_name = "USD", value_parser = parse_decimal, requires = "subscription", help_heading = "Plans")]
    pub overage: Option<Decimal>,

    // --- instances ---
    /// On-demand real-time endpoint on this instance type (e.g. ml.m5.xlarge).
    #[arg(long, value_name = "TYPE", help_heading = "Plans")]
    pub instance: Option<String>,
    /// Instances behind the endpoint (and under the savings plan).
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Plans")]
    pub count: u32,
    /// Hours the instances run per period (default: always on).
    #[arg(long, value_name = "H", value_parser = parse_decimal, requires = "instance", help_heading = "Plans")]
    pub hours: Option<Decimal>,
    /// Savings plan on --instance: committed spend per hour.
    #[arg(long, value_name = "USD_PER_HOUR", value_parser = parse_decimal, requires_all = ["instance", "discount"], help_heading = "Plans")]
    pub savings_plan: Option<Decimal>,
    /// Savings plan: discount on on-demand rates, as 0.64 or 64%.
    #[arg(long, value_name = "FRACTION|PERCENT%", value_parser = parse_fraction, requires = "savings_plan", help_heading = "Plans")]
    pub discount: Option<Decimal>,
    /// Savings plan: term, 1y or 3y.
    #[arg(long, value_name = "1y|3y", default_value = "1y", value_parser = parse_term, help_heading = "Plans")]
    pub term: SavingsPlanTerm,

    // --- serverless ---
    /// Serverless endpoint with this memory size in MB (1024 to 6144, steps of 1024).
    #[arg(long, value_name = "MB", help_heading = "Plans")]
    pub serverless: Option<u32>,

    // --- stated rates ---
    /// State the instance-hour rate instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_decimal, requires = "instance", help_heading = "Rate overrides")]
    pub instance_usd_per_hour: Option<Decimal>,
    /// State the serverless compute rate per second instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_decimal, requires = "serverless", help_heading = "Rate overrides")]
    pub serverless_usd_per_second: Option<Decimal>,
    /// State the data-processed rate per GB (in and out) instead of looking it up.
    #[arg(long, value_name = "USD", value_parser = parse_decimal, help_heading = "Rate overrides")]
    pub data_usd_per_gb: Option<Decimal>,

    // --- output ---
    /// Print the comparison as JSON instead of a table.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Draw cost against calls per period for each plan to this .svg or .png file.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub chart: Option<PathBuf>,
}

/// Runs `sagemeter compare`: builds the profile and plans from `args`, prices them
/// with `prices` in `region`, and writes the table (or JSON) to `out`.
pub async fn run(
    args: CompareArgs,
    prices: &dyn PriceSource,
    region: &str,
    out: &mut dyn Write,
) -> Result<(), BoxError> {
    let profile = match &args.from_ledger {
        Some(path) => {
            let read = sagemeter::ledger::read_all(path)?;
            if read.records.is_empty() {
                return Err(
                    format!("the ledger {} has no calls to compare", path.display()).into(),
                );
            }
            let totals = sagemeter::compare::UsageTotals::from_receipts(&read.records);
            UsageProfile::from_totals(&totals, args.period)?
        }
        None => profile(&args)?,
    };
    let plans = plans(&args)?;
    Comparison::check(&profile, &plans)?;
    let mut rates = stated_rates(&args, region)?;
    rates
        .fill_from(prices, &plans, &profile)
        .await
        .map_err(with_flag_hint)?;
    let comparison = Comparison::compute(&profile, &plans, &rates)?;

    if let Some(path) = &args.chart {
        draw_chart(&comparison, path)?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &comparison)?;
        writeln!(out)?;
    } else {
        write!(out, "{comparison}")?;
        if let Some(path) = &args.chart {
            writeln!(out)?;
            writeln!(out, "Chart: {}", path.display())?;
        }
    }
    Ok(())
}

fn profile(args: &CompareArgs) -> Result<UsageProfile, CompareError> {
    let mut builder = UsageProfile::builder()
        .period(args.period)
        .bytes_in_per_call(args.bytes_in)
        .bytes_out_per_call(args.bytes_out)
        .tokens_in_per_call(args.tokens_in)
        .tokens_out_per_call(args.tokens_out);
    if let Some(calls) = args.calls {
        builder = builder.calls_per_period(calls);
    }
    if let Some(calls) = args.calls_per_day {
        builder = builder.calls_per_day(calls);
    }
    if let Some(ms) = args.latency_ms {
        builder = builder.mean_latency(latency(ms)?);
    }
    builder.build()
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
        let mut instance = InstancePlan::new(instance_type, args.count)?;
        if let Some(hours) = args.hours {
            instance = instance.with_hours_per_period(hours)?;
        }
        plans.push(Plan::from(instance));
        if let Some(commitment) = args.savings_plan {
            let savings = SavingsPlan::builder()
                .instance_type(instance_type)
                .count(args.count)
                .commitment_usd_per_hour(commitment)
                .discount(args.discount.unwrap_or_default())
                .term(args.term)
                .build()?;
            plans.push(Plan::from(savings));
        }
    }
    if let Some(mb) = args.serverless {
        plans.push(Plan::from(ServerlessPlan::new(mb)?));
    }
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

fn stated_rates(args: &CompareArgs, region: &str) -> Result<RateTable, CompareError> {
    let mut rates = RateTable::new(region);
    if let (Some(usd), Some(instance_type)) = (args.instance_usd_per_hour, &args.instance) {
        rates = rates.with_rate(PriceKey::hosting(region, instance_type), usd)?;
    }
    if let (Some(usd), Some(mb)) = (args.serverless_usd_per_second, args.serverless) {
        rates = rates.with_rate(PriceKey::serverless(region, mb / 1024), usd)?;
    }
    if let Some(usd) = args.data_usd_per_gb {
        rates = rates
            .with_rate(
                PriceKey::DataIn {
                    region: region.into(),
                },
                usd,
            )?
            .with_rate(
                PriceKey::DataOut {
                    region: region.into(),
                },
                usd,
            )?;
    }
    Ok(rates)
}

/// Adds the flag that states a missing rate to the library's message.
fn with_flag_hint(e: CompareError) -> BoxError {
    let flag = match &e {
        CompareError::MissingRate { key, .. } => match key {
            PriceKey::Hosting { .. } => Some("--instance-usd-per-hour"),
            PriceKey::Serverless { .. } => Some("--serverless-usd-per-second"),
            PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => Some("--data-usd-per-gb"),
            _ => None,
        },
        _ => None,
    };
    match flag {
        Some(flag) => format!("{e}; or state the rate with {flag}").into(),
        None => e.into(),
    }
}

#[cfg(feature = "charts")]
fn draw_chart(comparison: &Comparison, path: &std::path::Path) -> Result<(), CompareError> {
    sagemeter::compare::chart::render(comparison, path)
}

#[cfg(not(feature = "charts"))]
fn draw_chart(_comparison: &Comparison, path: &std::path::Path) -> Result<(), CompareError> {
    Err(CompareError::Chart {
        path: path.display().to_string(),
        reason: "this sagemeter was built without charts: rebuild with --features charts".into(),
    })
}

/// A decimal number; `,` and `_` group digits (`40,000`, `1_000_000`), and
/// `1e6` is accepted.
fn parse_decimal(s: &str) -> Result<Decimal, String> {
    let cleaned: String = s.chars().filter(|c| *c != ',' && *c != '_').collect();
    Decimal::from_str(&cleaned)
        .or_else(|_| Decimal::from_scientific(&cleaned))
        .map_err(|_| format!("`{s}` is not a number (e.g. 40000, 0.0125, 1e6)"))
}

/// `0.64` or `64%`.
fn parse_fraction(s: &str) -> Result<Decimal, String> {
    let fraction = match s.trim().strip_suffix('%') {
        Some(pct) => parse_decimal(pct.trim())? / Decimal::from(100),
        None => parse_decimal(s)?,
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
