//! Billing plans compared: would another way of paying be cheaper for the same work?
//!
//! Describe the work once as a [`UsageProfile`] (stated, or from metered
//! [`UsageTotals`]), list the [`Plan`]s to weigh — on-demand instances, serverless, a
//! price per call or per token, a subscription with or without a quota, a savings-plan
//! commitment — and [`Comparison`] prices the same work under each, cheapest first,
//! with the [`BreakEven`] points between every pair ("subscription is cheaper above
//! 40,000 calls per month"). Instances and serverless serve only so many calls
//! ([`PlanCost::capacity_calls`]): a plan over its capacity is never the cheapest,
//! and a break-even beyond it is one the plan would make only there.
//!
//! Money is exact ([`Decimal`](rust_decimal::Decimal) USD). Periods follow the AWS
//! Pricing Calculator: a month is 730 hours, a year 8,760 (see [`Period`]).
//! Instance and serverless rates come from a [`RateTable`], stated by hand or filled
//! from any [`PriceSource`](crate::pricing::PriceSource); every row says where its
//! rates came from. With the `charts` feature, `chart` draws cost against calls for
//! each plan with the break-even points marked.
//!
//! Prices move: inference prices fall as new instance generations arrive, and a
//! commitment bought today locks in today's price. A [`Projection`] takes a
//! comparison month by month over a horizon (1 to 120 months) while AWS on-demand
//! rates follow a [`PriceTrend`] (`-20%/year`, `-1.5%/month`: a [`TrendRate`] for
//! every price, or one per [`PriceKey`](crate::pricing::PriceKey)), and says for each
//! commitment against each plan paid as used the month it stops being cheaper and
//! what it saves over the horizon:
//!
//! - on-demand instances, serverless, ML storage and data processed follow the trend;
//! - a subscription and prices per call or per token are held at today's price (a
//!   third party's prices, not AWS's);
//! - a savings plan's commitment and the discounted rate it buys are locked for its
//!   term, then renewed at that month's prices; usage beyond it follows the trend.
//!
//! Month 1 is today's prices; month `k` is at `factor^(k − 1)`, the monthly factor of a
//! yearly rate being `(1 + y)^(1/12)`, exact decimals rounded to [`FACTOR_DP`] (12)
//! places. `chart::render_trend` (feature `charts`) draws the months.
//!
//! ```
//! use sagemeter::compare::{
//!     Comparison, InstancePlan, PerInferencePlan, Plan, RateTable, ServerlessPlan,
//!     UsageProfile,
//! };
//! use sagemeter::pricing::PriceKey;
//! use sagemeter::Decimal;
//! use std::time::Duration;
//!
//! let profile = UsageProfile::builder()
//!     .calls_per_period(1_000_000)
//!     .mean_latency(Duration::from_millis(800))
//!     .build()?;
//! let plans = [
//!     Plan::from(InstancePlan::new("ml.m5.xlarge", 1)?),
//!     Plan::from(ServerlessPlan::new(3072)?),
//!     Plan::from(PerInferencePlan::per_thousand_calls(Decimal::new(5, 1))?),
//! ];
//! let rates = RateTable::new("us-east-1")
//!     .with_rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), Decimal::new(23, 2))?
//!     .with_rate(PriceKey::serverless("us-east-1", 3), Decimal::new(6, 5))?;
//! let comparison = Comparison::compute(&profile, &plans, &rates)?;
//!
//! // 1 × 730 h × 0.23 USD/h = 167.90 USD; serverless 1,000,000 × 0.8 s × 0.00006 = 48 USD
//! assert_eq!(comparison.plan("ml.m5.xlarge x1").unwrap().cost_usd, Decimal::new(16790, 2));
//! assert_eq!(comparison.cheapest.as_deref(), Some("serverless 3072 MB"));
//! println!("{comparison}");
//! # Ok::<(), sagemeter::compare::CompareError>(())
//! ```

mod arith;
mod break_even;
#[cfg(feature = "charts")]
pub mod chart;
mod engine;
mod error;
pub mod format;
mod period;
mod plan;
mod profile;
mod projection;
#[cfg(test)]
mod props;
mod rates;
mod table;
mod trend;

pub use break_even::{BreakEven, BreakEvenPoint, MAX_BREAK_EVEN_CALLS, Region};
pub use engine::{BYTES_PER_GB, Comparison, CostCurve, PlanCost};
pub use error::CompareError;
pub use period::Period;
pub use plan::{
    InstancePlan, MAX_SERVERLESS_CONCURRENCY, PerInferencePlan, PerTokenPlan, Plan, PlanModel,
    SavingsPlan, SavingsPlanBuilder, SavingsPlanTerm, ServerlessPlan, SubscriptionPlan,
    SubscriptionPlanBuilder,
};
pub use profile::{
    ReceiptTotals, TokenCalls, TokensReported, Unstated, UsageProfile, UsageProfileBuilder,
    UsageTotals,
};
pub use projection::{
    CommitmentOutlook, MAX_HORIZON_MONTHS, PlanProjection, PriceBasis, Projection, TrendFactors,
};
pub use rates::RateTable;
pub use trend::{
    FACTOR_DP, KeyTrend, MAX_YEARLY_CHANGE_PERCENT, MIN_MEASURED_SPAN_DAYS, MeasuredTrend,
    PriceTrend, TrendPer, TrendRate,
};

/// Input checks shared by plans and profiles. The bounds keep inputs plausible; some
/// products of in-range inputs still exceed `Decimal`'s range (10^9 USD per token ×
/// 10^9 tokens × 10^15 calls), which the checked arithmetic of the engine answers
/// with [`CompareError::Overflow`].
pub(crate) mod check {
    use rust_decimal::Decimal;
    use std::time::Duration;

    use super::CompareError;

    pub(crate) const MAX_CALLS_PER_PERIOD: u64 = 1_000_000_000_000_000;
    pub(crate) const MAX_USD: u64 = 1_000_000_000;
    pub(crate) const MAX_LATENCY: Duration = Duration::from_secs(3600);
    pub(crate) const MAX_BYTES_PER_CALL: u64 = 1 << 40;
    /// The most tokens a call is metered with, as receipts count them.
    pub(crate) const MAX_TOKENS_PER_CALL: u64 = crate::usage::MAX_TOKENS_PER_CALL;
    pub(crate) const MAX_INSTANCES: u32 = 10_000;

    pub(crate) fn positive(
        what: &'static str,
        value: Decimal,
        hint: &str,
    ) -> Result<(), CompareError> {
        if value <= Decimal::ZERO {
            return Err(CompareError::NotPositive {
                what,
                value: value.normalize().to_string(),
                hint: hint.into(),
            });
        }
        Ok(())
    }

    pub(crate) fn not_negative(
        what: &'static str,
        value: Decimal,
        hint: &str,
    ) -> Result<(), CompareError> {
        if value < Decimal::ZERO {
            return Err(CompareError::Negative {
                what,
                value: value.normalize().to_string(),
                hint: hint.into(),
            });
        }
        Ok(())
    }

    pub(crate) fn at_most(
        what: &'static str,
        value: Decimal,
        max: Decimal,
        hint: &str,
    ) -> Result<(), CompareError> {
        if value > max {
            return Err(CompareError::OutOfRange {
                what,
                value: value.normalize().to_string(),
                hint: hint.into(),
            });
        }
        Ok(())
    }

    /// A price: positive and at most a billion USD.
    pub(crate) fn usd(what: &'static str, value: Decimal, hint: &str) -> Result<(), CompareError> {
        positive(what, value, hint)?;
        at_most(
            what,
            value,
            Decimal::from(MAX_USD),
            "at most 10^9 USD is modelled",
        )
    }

    /// `usd ÷ per` (a price per 1,000 or per million, per unit), refused when the
    /// quotient needs more decimal places than an exact decimal holds: a tiny price
    /// would otherwise round, down to zero at worst.
    pub(crate) fn per_unit(
        what: &'static str,
        usd: Decimal,
        per: u32,
    ) -> Result<Decimal, CompareError> {
        let unit = usd / Decimal::from(per);
        if unit * Decimal::from(per) != usd {
            return Err(CompareError::OutOfRange {
                what,
                value: usd.normalize().to_string(),
                hint: format!(
                    "divided by {per} it needs more than 28 decimal places; state it with \
                     fewer decimal places"
                ),
            });
        }
        Ok(unit)
    }

    pub(crate) fn instance(instance_type: &str, count: u32) -> Result<(), CompareError> {
        let name = instance_type.strip_prefix("ml.").unwrap_or("");
        if name.is_empty() || !name.contains('.') || name.contains(char::is_whitespace) {
            return Err(CompareError::OutOfRange {
                what: "instance type",
                value: format!("`{instance_type}`"),
                hint: "use the SageMaker instance name with its ml. prefix, e.g. ml.m5.xlarge"
                    .into(),
            });
        }
        if count == 0 {
            return Err(CompareError::NotPositive {
                what: "instance count",
                value: "0".into(),
                hint: "an endpoint runs at least one instance; compare serverless for \
                       scale-to-zero"
                    .into(),
            });
        }
        if count > MAX_INSTANCES {
            return Err(CompareError::OutOfRange {
                what: "instance count",
                value: count.to_string(),
                hint: "at most 10,000 instances are modelled".into(),
            });
        }
        Ok(())
    }
}
