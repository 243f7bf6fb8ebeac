//! Plan costs month by month while AWS prices move, and where a commitment bought
//! today stops paying off.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::arith::{HINT_INPUTS, Overflow, add, div, mul, sub};
use super::engine::{PlanCost, provisioned_usd, storage_usd};
use super::format::{self, usd};
use super::trend::round_factor;
use super::{BYTES_PER_GB, CompareError, Comparison, Period, PlanModel, PriceTrend, TrendRate};
use crate::pricing::PriceKey;

/// The longest projection: ten years of months.
pub const MAX_HORIZON_MONTHS: u32 = 120;

/// Each plan's cost month by month over a horizon while AWS on-demand prices follow
/// a [`PriceTrend`], and for each commitment against each way of paying per use, the
/// month it stops (or starts) being cheaper and what it saves over the horizon.
///
/// Month 1 is the [`Comparison`]'s figures at today's prices, over a month (730 h;
/// a comparison over a day or a year is scaled by hours). In month `k` a price that
/// follows the trend is at `factor^(k − 1)` of today's (see [`TrendRate`]). What
/// follows the trend and what is held at today's price:
///
/// | plan | over the horizon |
/// | --- | --- |
/// | on-demand instances, serverless | follow the trend: instance-hours, serverless seconds, ML storage and data processed are AWS on-demand rates |
/// | savings plan | the hourly commitment, and the discounted rate it buys, are locked at today's price for the plan's term (12 or 36 months), then renewed at that month's prices (same discount, same instance-hours covered); usage beyond the commitment is charged on demand, and ML storage and data processed follow the trend |
/// | subscription | held at today's fee (and overage) for the whole horizon: a third party's price, not AWS's |
/// | per call, per token | held at today's price for the whole horizon: a third party's price, not AWS's |
///
/// Subscriptions and savings plans are the commitments; each is set against every
/// plan paid as used (instances, serverless, per call, per token) in a
/// [`CommitmentOutlook`]. A plan that cannot serve the calls
/// ([`over_capacity`](super::PlanCost::over_capacity); the volume, so its capacity,
/// is the same every month) is never named the cheapest while another can, and a
/// commitment is not weighed against it (nor it against one): its outlook says so.
///
/// Costs are exact decimals: a month's cost is today's cost of each part times that
/// month's factor (12 places), summed; nothing is rounded to cents but the text.
///
/// ```
/// use sagemeter::compare::{
///     Comparison, InstancePlan, Plan, Projection, RateTable, SubscriptionPlan, TrendRate,
///     UsageProfile,
/// };
/// use sagemeter::pricing::PriceKey;
/// use sagemeter::Decimal;
///
/// let profile = UsageProfile::builder().calls_per_period(100_000).build()?;
/// let plans = [
///     Plan::from(InstancePlan::new("ml.m5.xlarge", 1)?),
///     Plan::from(SubscriptionPlan::builder().fee_usd(Decimal::from(160)).build()?),
/// ];
/// let rates = RateTable::new("us-east-1")
///     .with_rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), Decimal::new(23, 2))?;
/// let comparison = Comparison::compute(&profile, &plans, &rates)?;
///
/// let trend = TrendRate::per_month(Decimal::new(-1, 2))?.into(); // −1 % a month
/// let projection = Projection::compute(&comparison, &trend, 6)?;
/// let instance = projection.plan("ml.m5.xlarge x1").unwrap();
/// // 730 h × 0.23 = 167.90; × 0.99 = 166.221; × 0.99² = 164.55879
/// assert_eq!(instance.monthly_usd[..3], [Decimal::new(16790, 2), Decimal::new(166221, 3),
///     Decimal::new(16455879, 5)]);
/// // 167.90 × 0.99^5 = 159.67122937821 < 160: the subscription stops being cheaper in month 6
/// let outlook = &projection.commitments[0];
/// assert_eq!(outlook.stops_being_cheaper_in_month, Some(6));
/// assert_eq!(
///     outlook.summary,
///     "subscription stops being cheaper than ml.m5.xlarge x1 in month 6 at -1%/month; \
///      over 6 months it still saves 22.55 USD"
/// );
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    /// The trend AWS on-demand prices follow.
    pub trend: PriceTrend,
    /// Months projected; month 1 is at today's prices.
    pub horizon_months: u32,
    /// The factors of each rate of the trend, month by month.
    pub factors: Vec<TrendFactors>,
    /// Each plan's costs, in the comparison's order (cheapest today first).
    pub plans: Vec<PlanProjection>,
    /// The name of the cheapest plan in each month (the first in the comparison's
    /// order, on a tie), of those that can serve the work (not
    /// [`over_capacity`](PlanProjection::over_capacity)); of all plans when none
    /// can.
    pub cheapest_by_month: Vec<String>,
    /// The name of the plan cheapest over the whole horizon (least
    /// [`total_usd`](PlanProjection::total_usd)), of the same plans as
    /// [`cheapest_by_month`](Self::cheapest_by_month) and first on a tie likewise.
    /// Empty only in a projection read back from before it was recorded.
    #[serde(default)]
    pub cheapest_over_horizon: String,
    /// Every commitment against every plan paid as used, in the comparison's order.
    pub commitments: Vec<CommitmentOutlook>,
}

/// One rate's factor for each month of the horizon.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendFactors {
    /// The rate.
    pub rate: TrendRate,
    /// Its factor from one month to the next ([`TrendRate::monthly_factor`]).
    pub monthly_factor: Decimal,
    /// The factor of month `k` at index `k − 1`: `monthly_factor^(k − 1)`, rounded to
    /// [`FACTOR_DP`](super::FACTOR_DP) places (1 in month 1).
    pub by_month: Vec<Decimal>,
}

/// How a plan's price moves over the horizon.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// Every month at that month's AWS on-demand prices (instances, serverless).
    Trend,
    /// Today's price for the whole horizon: a third party's price per call or per
    /// token.
    Held,
    /// Bought today at today's price: a subscription (for the whole horizon) or a
    /// savings plan (for its term, then renewed; usage beyond the commitment and data
    /// follow the trend).
    Commitment,
}

impl PriceBasis {
    /// How the plan's price moves, in words.
    pub fn describe(self, renews_every_months: Option<u32>) -> String {
        match (self, renews_every_months) {
            (PriceBasis::Trend, _) => "follows the trend (AWS on-demand rates)".into(),
            (PriceBasis::Held, _) => "held at today's price (not an AWS price)".into(),
            (PriceBasis::Commitment, None) => {
                "a commitment at today's fee for the whole horizon (not an AWS price)".into()
            }
            (PriceBasis::Commitment, Some(months)) => format!(
                "a commitment locked at today's price, renewed every {months} months at that \
                 month's; usage beyond it and data follow the trend"
            ),
        }
    }
}

/// One plan's cost in each month of the horizon.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanProjection {
    /// The plan's name.
    pub name: String,
    /// How its price moves.
    pub basis: PriceBasis,
    /// For a savings plan: the months of its term, after which the commitment is
    /// renewed at that month's prices.
    pub renews_every_months: Option<u32>,
    /// The cost of month `k` at index `k − 1`.
    pub monthly_usd: Vec<Decimal>,
    /// The cost of months 1 to `k` at index `k − 1`.
    pub cumulative_usd: Vec<Decimal>,
    /// The cost of the whole horizon (the last cumulative cost).
    pub total_usd: Decimal,
    /// The plan cannot serve the comparison's calls
    /// ([`PlanCost::over_capacity`]): it is never named the cheapest while another
    /// plan can, and no commitment is weighed against it.
    #[serde(default)]
    pub over_capacity: bool,
}

/// A commitment (subscription, savings plan) against a plan paid as used, month by
/// month.
///
/// "Cheaper" is strictly cheaper in that month's cost; a month in which both cost the
/// same counts as not cheaper. Only the first change is reported: a savings plan
/// renewed at lower prices can become cheaper again later, which
/// [`PlanProjection::monthly_usd`] shows.
///
/// When either plan cannot serve the calls ([`over_capacity`](Self::over_capacity)
/// not empty) the two are not weighed: no month is cheaper, nothing is cheaper over
/// the horizon, and the summary names the plan that cannot serve them, e.g.
/// "savings plan ml.m5.xlarge x1 (1 yr) cannot serve 4,000,000 calls per month: it is
/// not weighed against pay per use".
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentOutlook {
    /// The commitment's plan name.
    pub commitment: String,
    /// The plan paid as used.
    pub pay_per_use: String,
    /// Whether the commitment is cheaper in month 1, at today's prices; false when
    /// either plan is over capacity.
    pub cheaper_in_month_1: bool,
    /// The first month in which the commitment, cheaper until then, is not cheaper;
    /// `None` when it stays cheaper, was not cheaper in month 1, or either plan is
    /// over capacity.
    pub stops_being_cheaper_in_month: Option<u32>,
    /// The first month in which the commitment, not cheaper until then, is cheaper
    /// (prices rising); `None` when there is no such month or either plan is over
    /// capacity.
    pub becomes_cheaper_in_month: Option<u32>,
    /// What paying per use costs over the horizon minus what the commitment costs;
    /// negative when the commitment costs more. With a plan over capacity, only the
    /// difference of the two costs: not a saving, as one of them cannot serve the
    /// calls.
    pub saving_over_horizon_usd: Decimal,
    /// Whether the commitment costs less over the whole horizon, both plans serving
    /// the calls; false when either is over capacity.
    pub cheaper_over_horizon: bool,
    /// The plans of the pair that cannot serve the calls
    /// ([`PlanProjection::over_capacity`]), the commitment first. Empty when both
    /// can: only then are the two weighed.
    #[serde(default)]
    pub over_capacity: Vec<String>,
    /// The outlook in one sentence, e.g. "savings plan ml.m5.xlarge x1 (1 yr) stops
    /// being cheaper than ml.m5.xlarge x1 in month 8 at -20%/year; over 12 months it
    /// still saves 41.20 USD".
    pub summary: String,
}

impl Projection {
    /// Projects `comparison` over `horizon_months` (1 to [`MAX_HORIZON_MONTHS`]) with
    /// AWS on-demand prices following `trend`. Pure: no I/O, no clock.
    pub fn compute(
        comparison: &Comparison,
        trend: &PriceTrend,
        horizon_months: u32,
    ) -> Result<Projection, CompareError> {
        check_horizon(horizon_months)?;
        trend.validate()?;
        if comparison.plans.is_empty() {
            // Only a comparison not made by Comparison::compute (deserialised) has none.
            return Err(CompareError::NoPlans);
        }
        let factors: Vec<TrendFactors> = trend
            .rates()
            .into_iter()
            .map(|rate| TrendFactors::compute(rate, horizon_months))
            .collect::<Result<_, _>>()?;
        let factor = |key: &PriceKey, month_index: u32| -> Decimal {
            let rate = trend.rate_for(key);
            factors
                .iter()
                .find(|f| f.rate == rate)
                .map_or(Decimal::ONE, |f| f.by_month[month_index as usize])
        };

        let mut plans = Vec::with_capacity(comparison.plans.len());
        for row in &comparison.plans {
            let name = row.plan.name.as_str();
            let overflow = |o: Overflow| {
                o.of(
                    format!("the projected cost of plan `{name}` at {trend}"),
                    HINT_INPUTS,
                )
            };
            let (basis, renews_every_months, parts) = parts(row, comparison)?;
            let mut monthly_usd = Vec::with_capacity(horizon_months as usize);
            let mut cumulative_usd = Vec::with_capacity(horizon_months as usize);
            let mut running = Decimal::ZERO;
            for index in 0..horizon_months {
                let mut month = Decimal::ZERO;
                for part in &parts {
                    let f = match &part.follows {
                        Follows::Held => Decimal::ONE,
                        Follows::Trend(key) => factor(key, index),
                        Follows::Commitment { key, term_months } => {
                            factor(key, index / term_months * term_months)
                        }
                    };
                    month = mul(part.usd, f)
                        .and_then(|x| add(month, x))
                        .map_err(overflow)?;
                }
                running = add(running, month).map_err(overflow)?;
                monthly_usd.push(month.normalize());
                cumulative_usd.push(running.normalize());
            }
            plans.push(PlanProjection {
                name: name.to_string(),
                basis,
                renews_every_months,
                monthly_usd,
                total_usd: running.normalize(),
                cumulative_usd,
                over_capacity: row.over_capacity,
            });
        }

        let candidates = candidates(&plans);
        let cheapest_by_month = (0..horizon_months as usize)
            .map(|i| cheapest(&candidates, |p| p.monthly_usd.get(i).copied()))
            .collect();
        let cheapest_over_horizon = cheapest(&candidates, |p| Some(p.total_usd));

        let work = Work {
            calls: comparison.profile.calls_per_period,
            period: comparison.period,
        };
        let mut commitments = Vec::new();
        for commitment in plans.iter().filter(|p| p.basis == PriceBasis::Commitment) {
            for pay_per_use in plans.iter().filter(|p| p.basis != PriceBasis::Commitment) {
                commitments.push(outlook(
                    commitment,
                    pay_per_use,
                    trend,
                    horizon_months,
                    work,
                )?);
            }
        }

        Ok(Projection {
            trend: trend.clone(),
            horizon_months,
            factors,
            plans,
            cheapest_by_month,
            cheapest_over_horizon,
            commitments,
        })
    }

    /// The projection of the plan called `name`.
    pub fn plan(&self, name: &str) -> Option<&PlanProjection> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The outlook of `commitment` against `pay_per_use`.
    pub fn outlook(&self, commitment: &str, pay_per_use: &str) -> Option<&CommitmentOutlook> {
        self.commitments
            .iter()
            .find(|o| o.commitment == commitment && o.pay_per_use == pay_per_use)
    }
}

impl TrendFactors {
    /// `rate`'s factors for months 1 to `horizon_months`.
    pub fn compute(rate: TrendRate, horizon_months: u32) -> Result<Self, CompareError> {
        check_horizon(horizon_months)?;
        let monthly_factor = rate.monthly_factor()?;
        let mut by_month = Vec::with_capacity(horizon_months as usize);
        // The power at a decimal's full precision; each month's factor rounded from it,
        // so rounding does not compound.
        let mut exact = Decimal::ONE;
        by_month.push(Decimal::ONE);
        for _ in 1..horizon_months {
            exact = mul(exact, monthly_factor).map_err(|o| {
                o.of(
                    format!("the factor of a month at {rate}"),
                    "give a gentler trend or a shorter horizon",
                )
            })?;
            by_month.push(round_factor(exact));
        }
        Ok(TrendFactors {
            rate,
            monthly_factor,
            by_month,
        })
    }
}

/// The plans the cheapest is chosen from: those that can serve the work (the volume,
/// so each plan's capacity, is the same every month); all of them when none can.
fn candidates(plans: &[PlanProjection]) -> Vec<&PlanProjection> {
    let can_serve: Vec<&PlanProjection> = plans.iter().filter(|p| !p.over_capacity).collect();
    if can_serve.is_empty() {
        plans.iter().collect()
    } else {
        can_serve
    }
}

/// The name of the candidate with the least `cost`, the first on a tie; a plan
/// without the figure (a projection read back short) is passed over. Empty when no
/// candidate has it.
fn cheapest(
    candidates: &[&PlanProjection],
    cost: impl Fn(&PlanProjection) -> Option<Decimal>,
) -> String {
    let mut best: Option<(&PlanProjection, Decimal)> = None;
    for plan in candidates {
        if let Some(c) = cost(plan)
            && best.is_none_or(|(_, b)| c < b)
        {
            best = Some((plan, c));
        }
    }
    best.map(|(p, _)| p.name.clone()).unwrap_or_default()
}

fn check_horizon(months: u32) -> Result<(), CompareError> {
    if months == 0 || months > MAX_HORIZON_MONTHS {
        return Err(CompareError::OutOfRange {
            what: "horizon (months)",
            value: months.to_string(),
            hint: "project from 1 to 120 months (10 years)".into(),
        });
    }
    Ok(())
}

/// What a part of a plan's cost follows over the horizon.
enum Follows {
    /// Today's price throughout.
    Held,
    /// The trend of this AWS price.
    Trend(PriceKey),
    /// A savings-plan commitment on this AWS price: today's price for `term_months`,
    /// then the price of the month it is renewed in.
    Commitment { key: PriceKey, term_months: u32 },
}

/// A part of a plan's cost in month 1 (today's prices, over a month).
struct Part {
    usd: Decimal,
    follows: Follows,
}

/// A plan's month-1 cost split by what each part follows. The parts add up to the
/// comparison's cost (scaled to a month): the part on the plan's main rate is what
/// is left after the others.
fn parts(
    row: &PlanCost,
    comparison: &Comparison,
) -> Result<(PriceBasis, Option<u32>, Vec<Part>), CompareError> {
    let name = row.plan.name.as_str();
    let profile = &comparison.profile;
    let region = comparison.region.as_str();
    let period = profile.period;
    let overflow = |figure: &str| {
        let what = format!("{figure} of plan `{name}` over a month");
        move |o: Overflow| o.of(what.clone(), HINT_INPUTS)
    };
    // Over a month: × 730 h / hours(period), multiplied first to stay exact.
    let month = |usd: Decimal| -> Result<Decimal, CompareError> {
        if period == Period::Month {
            return Ok(usd);
        }
        mul(usd, Period::Month.hours())
            .and_then(|x| div(x, period.hours()))
            .map_err(overflow("the cost"))
    };
    let rate_of = |key: &PriceKey| -> Result<Decimal, CompareError> {
        row.rates
            .iter()
            .find(|r| &r.key == key)
            .map(|r| r.usd_per_unit)
            .ok_or_else(|| CompareError::Inconsistent {
                problem: format!("the comparison's row of plan `{name}` has no rate for {key}"),
                hint: "project a comparison made by Comparison::compute".into(),
            })
    };
    // Data processed, in and out: bytes × rate / 2^30 per call, × calls.
    let data = |parts: &mut Vec<Part>| -> Result<Decimal, CompareError> {
        let mut total = Decimal::ZERO;
        for (bytes, key) in [
            (
                profile.bytes_in_per_call,
                PriceKey::DataIn {
                    region: region.into(),
                },
            ),
            (
                profile.bytes_out_per_call,
                PriceKey::DataOut {
                    region: region.into(),
                },
            ),
        ] {
            if bytes.is_zero() {
                continue;
            }
            let usd = mul(bytes, rate_of(&key)?)
                .and_then(|x| div(x, Decimal::from(BYTES_PER_GB)))
                .and_then(|x| mul(x, profile.calls_per_period))
                .map_err(overflow("the data processed"))?;
            total = add(total, usd).map_err(overflow("the data processed"))?;
            parts.push(Part {
                usd: month(usd)?,
                follows: Follows::Trend(key),
            });
        }
        Ok(total)
    };
    // ML storage of the instances for the hours they run, following its own rate.
    let storage = |parts: &mut Vec<Part>,
                   volume_gb: Option<u32>,
                   count: u32,
                   hours: Option<Decimal>|
     -> Result<Decimal, CompareError> {
        let Some(gb) = volume_gb else {
            return Ok(Decimal::ZERO);
        };
        let key = PriceKey::storage(region);
        let usd = storage_usd(gb, count, rate_of(&key)?, hours.unwrap_or(period.hours()))
            .map_err(overflow("the ML storage"))?;
        parts.push(Part {
            usd: month(usd)?,
            follows: Follows::Trend(key),
        });
        Ok(usd)
    };
    let rest = |of: &[Decimal]| -> Result<Decimal, CompareError> {
        of.iter()
            .try_fold(row.cost_usd, |left, x| sub(left, *x))
            .map_err(overflow("the cost"))
    };

    Ok(match &row.plan.model {
        PlanModel::Instance(p) => {
            let mut parts = Vec::new();
            let data = data(&mut parts)?;
            let storage = storage(&mut parts, p.volume_gb, p.count, p.hours_per_period)?;
            parts.push(Part {
                usd: month(rest(&[data, storage])?)?,
                follows: Follows::Trend(PriceKey::hosting(region, &p.instance_type)),
            });
            (PriceBasis::Trend, None, parts)
        }
        PlanModel::Serverless(p) => {
            let mut parts = Vec::new();
            let data = data(&mut parts)?;
            // Provisioned concurrency's standing charge follows its own rate.
            let standing = match (p.provisioned_concurrency, p.standing_key(region)) {
                (Some(n), Some(key)) => {
                    let usd = provisioned_usd(n, rate_of(&key)?, period.hours())
                        .map_err(overflow("the provisioned concurrency"))?;
                    parts.push(Part {
                        usd: month(usd)?,
                        follows: Follows::Trend(key),
                    });
                    usd
                }
                _ => Decimal::ZERO,
            };
            // Calls beyond the provisioned concurrency follow the on-demand rate.
            let beyond = match (row.curve.included_calls, p.beyond_provisioned_key(region)) {
                (Some(included), Some(key)) if profile.calls_per_period > included => {
                    let on_demand = rate_of(&key)?;
                    let usd = sub(profile.calls_per_period, included)
                        .and_then(|calls| mul(calls, profile.billed_seconds_per_call()))
                        .and_then(|seconds| mul(seconds, on_demand))
                        .map_err(overflow("the calls beyond the provisioned concurrency"))?;
                    parts.push(Part {
                        usd: month(usd)?,
                        follows: Follows::Trend(key),
                    });
                    usd
                }
                _ => Decimal::ZERO,
            };
            parts.push(Part {
                usd: month(rest(&[data, standing, beyond])?)?,
                follows: Follows::Trend(p.duration_key(region)),
            });
            (PriceBasis::Trend, None, parts)
        }
        PlanModel::SavingsPlan(p) => {
            let key = PriceKey::hosting(region, &p.instance_type);
            // 12 months of 730 h a year: the term in months.
            let term_months = p.term.years() * 12;
            let committed = mul(p.commitment_usd_per_hour, period.hours())
                .map_err(overflow("the commitment"))?;
            let mut parts = Vec::new();
            let data = data(&mut parts)?;
            let storage = storage(&mut parts, p.volume_gb, p.count, p.hours_per_period)?;
            // Usage beyond the commitment, charged on demand (zero when it covers all).
            parts.push(Part {
                usd: month(rest(&[data, storage, committed])?)?,
                follows: Follows::Trend(key.clone()),
            });
            parts.push(Part {
                usd: month(committed)?,
                follows: Follows::Commitment { key, term_months },
            });
            (PriceBasis::Commitment, Some(term_months), parts)
        }
        PlanModel::Subscription(_) => (
            PriceBasis::Commitment,
            None,
            vec![Part {
                usd: month(row.cost_usd)?,
                follows: Follows::Held,
            }],
        ),
        PlanModel::PerInference(_) | PlanModel::PerToken(_) => (
            PriceBasis::Held,
            None,
            vec![Part {
                usd: month(row.cost_usd)?,
                follows: Follows::Held,
            }],
        ),
    })
}

/// The calls a comparison serves, for the words of an outlook.
#[derive(Clone, Copy)]
struct Work {
    calls: Decimal,
    period: Period,
}

fn outlook(
    commitment: &PlanProjection,
    pay_per_use: &PlanProjection,
    trend: &PriceTrend,
    horizon_months: u32,
    work: Work,
) -> Result<CommitmentOutlook, CompareError> {
    let over_capacity: Vec<String> = [commitment, pay_per_use]
        .into_iter()
        .filter(|p| p.over_capacity)
        .map(|p| p.name.clone())
        .collect();
    let cheaper: Vec<bool> = commitment
        .monthly_usd
        .iter()
        .zip(&pay_per_use.monthly_usd)
        .map(|(c, p)| c < p)
        .collect();
    let cheaper_in_month_1 = cheaper[0];
    let change = cheaper
        .windows(2)
        .position(|w| w[0] != w[1])
        .map(|i| i as u32 + 2);
    let (stops, becomes) = if cheaper_in_month_1 {
        (change, None)
    } else {
        (None, change)
    };
    let saving = sub(pay_per_use.total_usd, commitment.total_usd)
        .map_err(|o| {
            o.of(
                format!(
                    "the difference over the horizon between plans `{}` and `{}`",
                    commitment.name, pay_per_use.name
                ),
                HINT_INPUTS,
            )
        })?
        .normalize();

    let (c, p, h) = (&commitment.name, &pay_per_use.name, horizon_months);
    if !over_capacity.is_empty() {
        // A plan that cannot serve the calls is no alternative: neither cheaper nor a
        // saving is claimed, only what cannot serve them.
        let cannot = format!(
            "cannot serve {} calls per {}",
            format::calls(work.calls),
            work.period
        );
        let summary = match (commitment.over_capacity, pay_per_use.over_capacity) {
            (true, false) => format!("{c} {cannot}: it is not weighed against {p}"),
            (false, true) => format!("{p} {cannot}: {c} is not weighed against it"),
            _ => format!("{c} and {p} {cannot}: they are not weighed against each other"),
        };
        return Ok(CommitmentOutlook {
            commitment: c.clone(),
            pay_per_use: p.clone(),
            cheaper_in_month_1: false,
            stops_being_cheaper_in_month: None,
            becomes_cheaper_in_month: None,
            saving_over_horizon_usd: saving,
            cheaper_over_horizon: false,
            over_capacity,
            summary,
        });
    }
    let months = if h == 1 {
        "1 month".to_string()
    } else {
        format!("{h} months")
    };
    let over = |still: &str| {
        if saving > Decimal::ZERO {
            format!("over {months} it {still}saves {} USD", usd(saving, 2))
        } else if saving < Decimal::ZERO {
            format!("over {months} it costs {} USD more", usd(-saving, 2))
        } else {
            format!("over {months} both cost the same")
        }
    };
    let summary = match (cheaper_in_month_1, change) {
        (true, Some(m)) => format!(
            "{c} stops being cheaper than {p} in month {m} at {trend}; {}",
            over("still ")
        ),
        (true, None) => format!(
            "{c} stays cheaper than {p} through month {h} at {trend}; {}",
            over("")
        ),
        (false, Some(m)) => format!(
            "{c} becomes cheaper than {p} in month {m} at {trend}; {}",
            over("")
        ),
        (false, None) => format!(
            "{c} is not cheaper than {p} in any month through month {h} at {trend}; {}",
            over("")
        ),
    };
    Ok(CommitmentOutlook {
        commitment: c.clone(),
        pay_per_use: p.clone(),
        cheaper_in_month_1,
        stops_being_cheaper_in_month: stops,
        becomes_cheaper_in_month: becomes,
        saving_over_horizon_usd: saving,
        cheaper_over_horizon: saving > Decimal::ZERO,
        over_capacity,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{PerInferencePlan, Plan, RateTable, UsageProfile};

    #[test]
    fn a_comparison_without_plans_is_refused_never_a_panic() {
        let profile = UsageProfile::builder()
            .calls_per_period(1_000)
            .build()
            .unwrap();
        let plans = [Plan::from(
            PerInferencePlan::per_call(Decimal::new(1, 2)).unwrap(),
        )];
        let mut comparison =
            Comparison::compute(&profile, &plans, &RateTable::new("us-east-1")).unwrap();
        // What a deserialised comparison may hold.
        comparison.plans.clear();
        comparison.break_evens.clear();
        let trend = PriceTrend::uniform(TrendRate::per_month(Decimal::new(-1, 2)).unwrap());
        let err = Projection::compute(&comparison, &trend, 12).unwrap_err();
        assert!(matches!(err, CompareError::NoPlans), "{err}");
    }

    #[test]
    fn ml_storage_follows_its_own_rate_not_the_instances() {
        use crate::compare::InstancePlan;
        let profile = UsageProfile::builder()
            .calls_per_period(1_000)
            .build()
            .unwrap();
        let plans = [Plan::from(
            InstancePlan::new("ml.m5.xlarge", 1)
                .and_then(|p| p.with_volume_gb(30))
                .unwrap(),
        )];
        let hosting = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let rates = RateTable::new("us-east-1")
            .with_rate(hosting.clone(), Decimal::new(23, 2))
            .and_then(|r| r.with_rate(PriceKey::storage("us-east-1"), Decimal::new(14, 2)))
            .unwrap();
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        // The instance-hour falls 1 % a month; storage stays flat.
        let trend = PriceTrend::per_key(
            [(hosting, TrendRate::per_month(Decimal::new(-1, 2)).unwrap())],
            TrendRate::flat(),
        )
        .unwrap();
        let projection = Projection::compute(&comparison, &trend, 2).unwrap();
        // month 1: 730 h × 0.23 = 167.90 + 30 GB × 0.14 = 4.20 → 172.10
        // month 2: 167.90 × 0.99 = 166.221 + 4.20 = 170.421 (not 172.10 × 0.99)
        assert_eq!(
            projection.plans[0].monthly_usd,
            [Decimal::new(17210, 2), Decimal::new(170421, 3)]
        );
    }

    #[test]
    fn calls_beyond_the_provisioned_concurrency_follow_the_on_demand_rate() {
        use crate::compare::ServerlessPlan;
        use std::time::Duration;
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let profile = UsageProfile::builder()
            .calls_per_period(7_000_000)
            .mean_latency(Duration::from_millis(800))
            .build()
            .unwrap();
        let (region, memory_gb) = ("us-east-1".to_owned(), 2);
        let on_demand = PriceKey::serverless(&region, memory_gb);
        let rates = RateTable::new(&region)
            .with_rate(on_demand.clone(), d("0.00004"))
            .and_then(|r| {
                r.with_rate(
                    PriceKey::ProvisionedConcurrency {
                        region: region.clone(),
                        memory_gb,
                    },
                    d("0.00001"),
                )
            })
            .and_then(|r| {
                r.with_rate(
                    PriceKey::ProvisionedConcurrencyUsage {
                        region: region.clone(),
                        memory_gb,
                    },
                    d("0.0000233"),
                )
            })
            .unwrap();
        let plan = ServerlessPlan::new(2048)
            .and_then(|p| p.with_provisioned_concurrency(1))
            .unwrap();
        let comparison = Comparison::compute(&profile, &[Plan::from(plan)], &rates).unwrap();
        // The on-demand rate falls 10 % a month; the provisioned rates stay flat.
        let trend = PriceTrend::per_key(
            [(on_demand, TrendRate::per_month(d("-0.1")).unwrap())],
            TrendRate::flat(),
        )
        .unwrap();
        let projection = Projection::compute(&comparison, &trend, 2).unwrap();
        // 1 provisioned serves 2,628,000 s ÷ 0.8 s = 3,285,000 calls a month.
        // month 1: standing 26.28 + 3,285,000 × 0.8 × 0.0000233 = 61.2324
        //          + 3,715,000 × 0.8 × 0.00004 = 118.88 → 206.3924
        // month 2: 26.28 + 61.2324 + 118.88 × 0.9 = 106.992 → 194.5044
        assert_eq!(
            projection.plans[0].monthly_usd,
            [d("206.3924"), d("194.5044")]
        );
    }
}
