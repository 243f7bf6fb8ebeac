//! Pricing the same work under every plan.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::arith::{HINT_INPUTS, Overflow, add, div, mul, sub};
use super::break_even::{BreakEven, break_even};
use super::format::{calls as fmt_calls, percent, usd};
use super::{
    CompareError, PerTokenPlan, Period, Plan, PlanModel, RateTable, SubscriptionPlan, UsageProfile,
};
use crate::pricing::{PriceKey, PriceSource, Rate};

#[doc(no_inline)]
pub use crate::billing::BYTES_PER_GB;

/// A plan's cost as a function of calls `U` in one period: convex and piecewise
/// linear,
///
/// `cost(U) = fixed_usd + usd_per_call × U + overage_usd_per_call × max(0, U − included_calls)`.
///
/// Every plan model maps onto it for a given profile: instances are all fixed (plus
/// data per call), pay per use and on-demand serverless are all variable, a
/// subscription with a quota has the overage kink, and serverless with provisioned
/// concurrency is its standing charge with a kink where the provisioned
/// concurrency runs out (the calls beyond it billed on demand, up to the endpoint's
/// maximum concurrency). Break-even points are found on these curves, which do not
/// end at a plan's capacity ([`PlanCost::capacity_calls`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostCurve {
    /// Cost that does not depend on calls (fees, instance-hours, commitments).
    pub fixed_usd: Decimal,
    /// Cost of each call from the first.
    pub usd_per_call: Decimal,
    /// Calls per period above which [`overage_usd_per_call`](Self::overage_usd_per_call)
    /// is added (a subscription's quota, what provisioned concurrency serves);
    /// `None` when the plan has none.
    pub included_calls: Option<Decimal>,
    /// Extra cost of each call above the included calls.
    pub overage_usd_per_call: Option<Decimal>,
}

impl CostCurve {
    /// A straight line: `fixed_usd + usd_per_call × U`.
    pub fn linear(fixed_usd: Decimal, usd_per_call: Decimal) -> Self {
        CostCurve {
            fixed_usd,
            usd_per_call,
            included_calls: None,
            overage_usd_per_call: None,
        }
    }

    /// The cost of `calls` calls in one period; [`CompareError::Overflow`] when it is
    /// beyond an exact decimal.
    pub fn cost_usd(&self, calls: Decimal) -> Result<Decimal, CompareError> {
        self.try_cost_usd(calls).map_err(|o| {
            o.of(
                format!("the cost of {} calls per period", fmt_calls(calls)),
                HINT_INPUTS,
            )
        })
    }

    pub(crate) fn try_cost_usd(&self, calls: Decimal) -> Result<Decimal, Overflow> {
        let mut cost = add(self.fixed_usd, mul(self.usd_per_call, calls)?)?;
        if let (Some(included), Some(overage)) = (self.included_calls, self.overage_usd_per_call)
            && calls > included
        {
            cost = add(cost, mul(overage, sub(calls, included)?)?)?;
        }
        Ok(cost.normalize())
    }

    /// The cost of one more call just above `calls` (the slope right of `calls`);
    /// [`CompareError::Overflow`] when it is beyond an exact decimal.
    pub fn marginal_usd_per_call(&self, calls: Decimal) -> Result<Decimal, CompareError> {
        self.try_marginal_usd_per_call(calls).map_err(|o| {
            o.of(
                format!("the cost of a call above {} calls", fmt_calls(calls)),
                HINT_INPUTS,
            )
        })
    }

    pub(crate) fn try_marginal_usd_per_call(&self, calls: Decimal) -> Result<Decimal, Overflow> {
        match (self.included_calls, self.overage_usd_per_call) {
            (Some(included), Some(overage)) if calls >= included => add(self.usd_per_call, overage),
            _ => Ok(self.usd_per_call),
        }
    }

    /// Where the slope changes, if it does.
    pub(crate) fn kink(&self) -> Option<Decimal> {
        match (self.included_calls, self.overage_usd_per_call) {
            (Some(included), Some(overage)) if !overage.is_zero() => Some(included),
            _ => None,
        }
    }
}

/// One plan priced for the profile: a row of the comparison.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCost {
    /// The plan.
    pub plan: Plan,
    /// What the profile's calls cost under this plan, for one period.
    pub cost_usd: Decimal,
    /// `cost_usd × 1000 / calls`; `None` when the profile has no calls.
    pub usd_per_1000_calls: Option<Decimal>,
    /// `cost_usd − cheapest cost_usd` (zero for the cheapest). The cheapest is the
    /// cheapest plan that can serve the work, so a plan over capacity may be below
    /// it; when no plan can serve it, the difference is to the least cost of all.
    pub difference_to_cheapest_usd: Decimal,
    /// The plan's cost at any call volume in the period.
    pub curve: CostCurve,
    /// For instance and savings plans with a known latency: busy time ÷ the time
    /// the instances can serve, i.e. `calls × mean latency / (count × hours × 3600 s
    /// × m)` with the hours the instances run and `m` calls per instance at once
    /// (the plan's `max_concurrency_per_instance`, default 1); above 1 the plan is
    /// [`over_capacity`](Self::over_capacity). For serverless with provisioned
    /// concurrency `n`: `calls × mean latency / (n × the period's seconds)`; above 1
    /// the calls beyond it are billed on demand.
    pub utilisation: Option<Decimal>,
    /// Instance-seconds provisioned per period (instance and savings plans:
    /// `count × running hours × 3600`, to be multiplied by `m` for the seconds of
    /// serving; serverless with provisioned concurrency `n`: `n × the period's
    /// seconds`), the denominator of [`utilisation`](Self::utilisation).
    pub provisioned_seconds: Option<Decimal>,
    /// The most calls per period the plan can serve, spread evenly: instance and
    /// savings plans `count × running hours × 3600 s × m ÷ mean latency`; serverless
    /// `c × the period's seconds ÷ mean latency`, `c` being the most calls the
    /// serverless endpoint serves at once, its
    /// [`max_concurrency`](super::ServerlessPlan::max_concurrency) (at most
    /// [`MAX_SERVERLESS_CONCURRENCY`](super::MAX_SERVERLESS_CONCURRENCY), 200). `None`
    /// for instances when the latency is unknown (capacity not checked, and a note
    /// says so) and for prices per call, per token and subscriptions (the seller's
    /// capacity, not modelled). Adding instances as traffic grows (auto-scaling) is
    /// not modelled: a plan's cost and capacity are its stated instances'.
    #[serde(default)]
    pub capacity_calls: Option<Decimal>,
    /// The profile's calls are more than [`capacity_calls`](Self::capacity_calls):
    /// the plan cannot serve the work, and is never the
    /// [`cheapest`](Comparison::cheapest). Decided exactly, as
    /// `calls × mean latency > the seconds of serving`.
    #[serde(default)]
    pub over_capacity: bool,
    /// The rates looked up or stated for this plan, with their provenance. Empty for
    /// plans whose prices are part of the plan (per call, per token, subscription).
    pub rates: Vec<Rate>,
    /// Where the plan's prices came from: `stated` for prices given in the plan,
    /// otherwise the rates' provenance sources (`live`, `cache`, `snapshot`,
    /// `override`), joined with `+` when they differ.
    pub rate_source: String,
    /// What a reader should know about this row (commitments, quota use, capacity).
    pub notes: Vec<String>,
}

/// The same work priced under each plan, cheapest first, with the break-even points
/// between every pair of plans. Serialises to the CLI's `--json` output.
///
/// ```
/// use sagemeter::compare::{
///     Comparison, PerInferencePlan, Period, Plan, RateTable, SubscriptionPlan, UsageProfile,
/// };
/// use sagemeter::Decimal;
///
/// let profile = UsageProfile::builder().period(Period::Month).calls_per_period(100_000).build()?;
/// let plans = [
///     Plan::from(PerInferencePlan::per_call(Decimal::new(125, 4))?), // 0.0125 USD a call
///     Plan::from(SubscriptionPlan::builder().fee_usd(Decimal::from(500)).build()?),
/// ];
/// let comparison = Comparison::compute(&profile, &plans, &RateTable::new("us-east-1"))?;
///
/// assert_eq!(comparison.cheapest.as_deref(), Some("subscription")); // 500 < 100,000 × 0.0125 = 1,250
/// // U* = P·T / X = 500 × 1 / 0.0125 = 40,000 calls
/// assert_eq!(comparison.break_evens[0].points[0].calls_per_period, Decimal::from(40_000));
/// assert_eq!(
///     comparison.break_evens[0].summary,
///     "subscription is cheaper above 40,000 calls per month; pay per use below"
/// );
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Region the rates are for.
    pub region: String,
    /// The period every cost is for.
    pub period: Period,
    /// Hours in that period (730 for a month).
    pub hours_per_period: Decimal,
    /// The work priced.
    pub profile: UsageProfile,
    /// Name of the cheapest plan that can serve the work (the first one, on a tie);
    /// a plan [`over_capacity`](PlanCost::over_capacity) is never named. `None`
    /// when no plan can serve it.
    pub cheapest: Option<String>,
    /// One row per plan: those that can serve the work cheapest first, then those
    /// over capacity cheapest first (ties keep the order the plans were given in).
    pub plans: Vec<PlanCost>,
    /// Break-even analysis for every pair of plans, in the order the plans were given.
    pub break_evens: Vec<BreakEven>,
}

impl Comparison {
    /// Prices `profile` under each of `plans` with `rates`. Pure: no I/O, no clock.
    pub fn compute(
        profile: &UsageProfile,
        plans: &[Plan],
        rates: &RateTable,
    ) -> Result<Comparison, CompareError> {
        Comparison::check(profile, plans)?;

        let priced: Vec<PlanCost> = plans
            .iter()
            .map(|plan| price_plan(plan, profile, rates))
            .collect::<Result<_, _>>()?;

        let mut break_evens = Vec::new();
        for (i, a) in priced.iter().enumerate() {
            for b in &priced[i + 1..] {
                break_evens.push(break_even(a, b, profile)?);
            }
        }

        // The cheapest plan that can serve the work; none can: the least cost of all.
        let mut rows = priced;
        rows.sort_by_key(|row| (row.over_capacity, row.cost_usd));
        let cheapest = rows.iter().find(|row| !row.over_capacity);
        let cheapest_usd = cheapest.map_or_else(
            || {
                rows.iter()
                    .map(|row| row.cost_usd)
                    .min()
                    .expect("at least one plan")
            },
            |row| row.cost_usd,
        );
        let cheapest = cheapest.map(|row| row.plan.name.clone());
        for row in &mut rows {
            row.difference_to_cheapest_usd = sub(row.cost_usd, cheapest_usd)
                .map_err(|o| {
                    o.of(
                        format!(
                            "the difference between plan `{}` and the cheapest",
                            row.plan.name
                        ),
                        HINT_INPUTS,
                    )
                })?
                .normalize();
        }
        Ok(Comparison {
            region: rates.region().to_string(),
            period: profile.period,
            hours_per_period: profile.period.hours(),
            profile: profile.clone(),
            cheapest,
            plans: rows,
            break_evens,
        })
    }

    /// Checks that `plans` can price `profile` — valid inputs, distinct names, and
    /// the figures each plan needs (a latency for serverless, tokens for per-token) —
    /// before any rate is looked up. [`compute`](Self::compute) runs it too.
    pub fn check(profile: &UsageProfile, plans: &[Plan]) -> Result<(), CompareError> {
        profile.validate()?;
        if plans.is_empty() {
            return Err(CompareError::NoPlans);
        }
        let mut names = BTreeSet::new();
        for plan in plans {
            plan.validate()?;
            if !names.insert(plan.name.as_str()) {
                return Err(CompareError::DuplicatePlanName(plan.name.clone()));
            }
            check_profile_fits(plan, profile)?;
        }
        Ok(())
    }

    /// Looks up the rates `plans` need in `prices` (for `region`) and prices
    /// `profile` under each plan.
    pub async fn with_prices(
        profile: &UsageProfile,
        plans: &[Plan],
        prices: &dyn PriceSource,
        region: &str,
    ) -> Result<Comparison, CompareError> {
        Comparison::check(profile, plans)?;
        let mut rates = RateTable::new(region);
        rates.fill_from(prices, plans, profile).await?;
        Comparison::compute(profile, plans, &rates)
    }

    /// The row of the plan called `name`.
    pub fn plan(&self, name: &str) -> Option<&PlanCost> {
        self.plans.iter().find(|row| row.plan.name == name)
    }

    /// The break-even analysis between plans `a` and `b` (in either order).
    pub fn break_even(&self, a: &str, b: &str) -> Option<&BreakEven> {
        self.break_evens.iter().find(|be| {
            (be.plans[0] == a && be.plans[1] == b) || (be.plans[0] == b && be.plans[1] == a)
        })
    }
}

/// Data processed per call: `bytes × usd_per_gb / 2^30` for each direction. A
/// direction whose size the profile never stated is not priced, and `notes` says
/// so: AWS bills it, and its 0 bytes are no size.
fn data_per_call(
    plan: &str,
    profile: &UsageProfile,
    rates: &RateTable,
    used: &mut Vec<Rate>,
    notes: &mut Vec<String>,
) -> Result<Decimal, CompareError> {
    let mut usd = Decimal::ZERO;
    let region = rates.region().to_string();
    if let Some(note) = unstated_data(profile, rates) {
        notes.push(note);
    }
    for (bytes, key) in [
        (
            profile.bytes_in_per_call,
            PriceKey::DataIn {
                region: region.clone(),
            },
        ),
        (profile.bytes_out_per_call, PriceKey::DataOut { region }),
    ] {
        if bytes.is_zero() {
            continue;
        }
        let rate = rates.require(plan, key)?;
        usd = mul(bytes, rate.usd_per_unit)
            .and_then(|x| div(x, Decimal::from(BYTES_PER_GB)))
            .and_then(|x| add(usd, x))
            .map_err(|o| {
                o.of(
                    format!("the data processed per call under plan `{plan}`"),
                    HINT_INPUTS,
                )
            })?;
        used.push(rate.clone());
    }
    Ok(usd)
}

/// The note of a plan billed for data processed when the profile states no size
/// for a direction (its 0 bytes a placeholder): that direction is not priced.
/// Names the rate when the table holds it.
fn unstated_data(profile: &UsageProfile, rates: &RateTable) -> Option<String> {
    let region = rates.region().to_string();
    let unstated_in = profile.unstated.bytes_in && profile.bytes_in_per_call.is_zero();
    let unstated_out = profile.unstated.bytes_out && profile.bytes_out_per_call.is_zero();
    let rate = |key: PriceKey| {
        rates
            .get(&key)
            .map(|r| format!("{} USD/GB", r.usd_per_unit.normalize()))
    };
    let rate_in = rate(PriceKey::DataIn {
        region: region.clone(),
    });
    let rate_out = rate(PriceKey::DataOut { region });
    let (what, sizes, billed) = match (unstated_in, unstated_out) {
        (true, true) => (
            "data processed",
            "no payload sizes",
            match (rate_in, rate_out) {
                (Some(i), Some(o)) if i == o => format!("{i} in and out"),
                (Some(i), Some(o)) => format!("{i} in, {o} out"),
                _ => "it per GB in and out".to_owned(),
            },
        ),
        (true, false) => (
            "data in",
            "no request size",
            rate_in.map_or_else(|| "it per GB in".to_owned(), |r| format!("{r} in")),
        ),
        (false, true) => (
            "data out",
            "no response size",
            rate_out.map_or_else(|| "it per GB out".to_owned(), |r| format!("{r} out")),
        ),
        (false, false) => return None,
    };
    Some(format!(
        "{what} not priced: {sizes} stated (AWS bills {billed})"
    ))
}

/// ML storage of `count` instances with a `volume_gb` GB volume each, over `hours`:
/// `volume_gb × count × usd_per_gb_month × hours / 730` (a GB-month is 730 hours),
/// multiplied before dividing so that it stays exact.
pub(crate) fn storage_usd(
    volume_gb: u32,
    count: u32,
    usd_per_gb_month: Decimal,
    hours: Decimal,
) -> Result<Decimal, Overflow> {
    mul(Decimal::from(volume_gb), Decimal::from(count))
        .and_then(|x| mul(x, usd_per_gb_month))
        .and_then(|x| mul(x, hours))
        .and_then(|x| div(x, Period::Month.hours()))
}

/// Provisioned concurrency's standing charge over `hours`: `n × usd_per_second ×
/// hours × 3,600`, what a serverless plan with `n` provisioned pays busy or not.
pub(crate) fn provisioned_usd(
    n: u32,
    usd_per_second: Decimal,
    hours: Decimal,
) -> Result<Decimal, Overflow> {
    mul(Decimal::from(n), usd_per_second)
        .and_then(|x| mul(x, hours))
        .and_then(|x| mul(x, Decimal::from(3600)))
}

/// The ML storage of an instance or savings plan for one period; adds the rate to
/// `used` and a note. Without a volume size it is zero and a note says the storage
/// is left out (never a silent $0): SageMaker attaches a volume of the instance
/// type's default size unless one is set, none on types with NVMe instance storage,
/// so what is missing cannot be told from the plan.
fn storage_per_period(
    plan: &str,
    volume_gb: Option<u32>,
    count: u32,
    hours: Decimal,
    rates: &RateTable,
    used: &mut Vec<Rate>,
    notes: &mut Vec<String>,
) -> Result<Decimal, CompareError> {
    let Some(gb) = volume_gb else {
        notes.push(
            "ML storage not priced: no volume size stated (AWS bills a volume per \
             instance, of the instance type's default size unless one is set, none on \
             types with NVMe instance storage; CLI --volume-gb states it)"
                .into(),
        );
        return Ok(Decimal::ZERO);
    };
    let rate = rates.require(plan, PriceKey::storage(rates.region()))?;
    let cost = storage_usd(gb, count, rate.usd_per_unit, hours)
        .map_err(|o| o.of(format!("the ML storage of plan `{plan}`"), HINT_INPUTS))?;
    notes.push(format!(
        "ML storage: {count} × {gb} GB at {} USD/GB-month for {} h = {} USD",
        rate.usd_per_unit.normalize(),
        hours.normalize(),
        usd(cost, 2)
    ));
    used.push(rate.clone());
    Ok(cost)
}

/// The figures a plan needs from the profile: never price a plan at $0 because the
/// profile left out what it charges for.
fn check_profile_fits(plan: &Plan, profile: &UsageProfile) -> Result<(), CompareError> {
    match &plan.model {
        PlanModel::Serverless(_) if profile.mean_latency.is_zero() => {
            Err(CompareError::ProfileLacks {
                plan: plan.name.clone(),
                what: "a mean latency",
                hint: "serverless bills compute time per call: set mean_latency (CLI \
                       --latency-ms)"
                    .into(),
            })
        }
        // No metered call had an answer that could carry tokens (none answered
        // with HTTP 2XX, or only failed asynchronous inferences): the receipts
        // charged none; the plan charges none either, known.
        PlanModel::PerToken(_) if no_tokens_charged(profile) => Ok(()),
        PlanModel::PerToken(p) => {
            if let Some((what, flag, calls)) = unreported_tokens(p, profile) {
                return Err(CompareError::ProfileLacks {
                    plan: plan.name.clone(),
                    what,
                    hint: format!(
                        "none of the {calls} metered calls reported them (TGI, for one, \
                         reports only the tokens it generated), and a count not reported is \
                         not zero: state it (CLI {flag}), or leave its price out"
                    ),
                });
            }
            if tokens_per_call(profile, p.usd_per_input_token, p.usd_per_output_token)
                .is_ok_and(|usd| usd.is_zero())
            {
                return Err(CompareError::ProfileLacks {
                    plan: plan.name.clone(),
                    what: "tokens per call",
                    hint: "a per-token plan charges the tokens it is given: set \
                           tokens_in_per_call / tokens_out_per_call (CLI --tokens-in, \
                           --tokens-out)"
                        .into(),
                });
            }
            // One direction priced and never stated: its 0 is no count.
            if let Some((what, flag, setter)) = unstated_tokens(p, profile) {
                return Err(CompareError::ProfileLacks {
                    plan: plan.name.clone(),
                    what,
                    hint: format!(
                        "the plan prices them and no count was stated, which is not zero: \
                         set {setter} (CLI {flag}; 0 states none), or leave its price out"
                    ),
                });
            }
            Ok(())
        }
        PlanModel::Instance(p) => check_hours_fit(p.hours_per_period, profile),
        PlanModel::SavingsPlan(p) => check_hours_fit(p.hours_per_period, profile),
        _ => Ok(()),
    }
}

/// The token direction a per-token plan prices that the profile was built without
/// (its 0 a placeholder, not a count): `(figure, CLI flag, builder method)`. A
/// figure set on the profile since (not 0) counts as stated.
fn unstated_tokens(
    plan: &PerTokenPlan,
    profile: &UsageProfile,
) -> Option<(&'static str, &'static str, &'static str)> {
    [
        (
            plan.usd_per_input_token,
            profile.unstated.tokens_in,
            profile.tokens_in_per_call,
            "input tokens per call",
            "--tokens-in",
            "tokens_in_per_call",
        ),
        (
            plan.usd_per_output_token,
            profile.unstated.tokens_out,
            profile.tokens_out_per_call,
            "output tokens per call",
            "--tokens-out",
            "tokens_out_per_call",
        ),
    ]
    .into_iter()
    .find(|(usd, unstated, tokens, ..)| !usd.is_zero() && *unstated && tokens.is_zero())
    .map(|(_, _, _, what, flag, setter)| (what, flag, setter))
}

/// The figure a per-token plan charges for that no metered call of the profile
/// reported and nobody stated (its mean of 0 would be a $0 guess):
/// `(figure, CLI flag, calls)`.
fn unreported_tokens(
    plan: &PerTokenPlan,
    profile: &UsageProfile,
) -> Option<(&'static str, &'static str, u64)> {
    let reported = profile.tokens_reported?;
    [
        (
            plan.usd_per_input_token,
            profile.tokens_in_per_call,
            reported.tokens_in,
            "input tokens per call",
            "--tokens-in",
        ),
        (
            plan.usd_per_output_token,
            profile.tokens_out_per_call,
            reported.tokens_out,
            "output tokens per call",
            "--tokens-out",
        ),
    ]
    .into_iter()
    .find(|&(usd, mean, calls, _, _)| !usd.is_zero() && mean.is_zero() && calls == 0)
    .map(|(_, _, _, what, flag)| (what, flag, reported.calls))
}

/// Hours instances run per period are at most the period's hours.
fn check_hours_fit(hours: Option<Decimal>, profile: &UsageProfile) -> Result<(), CompareError> {
    match hours {
        Some(h) if h > profile.period.hours() => Err(CompareError::OutOfRange {
            what: "instance hours per period",
            value: h.normalize().to_string(),
            hint: format!(
                "an instance runs at most {} hours in a {}",
                profile.period.hours(),
                profile.period
            ),
        }),
        _ => Ok(()),
    }
}

/// The calls a per-token plan charges each direction's mean on, as (share of the
/// calls made, calls per period).
struct TokenCalls {
    tokens_in: (Decimal, Decimal),
    tokens_out: (Decimal, Decimal),
}

/// What a per-token plan charges, as the receipts' token lines did: the tokens
/// reported. A mean over every call (a profile stated by hand, or totals that do
/// not count the calls that reported tokens apart) is charged on every call: the
/// tokens stated, whole. A mean over the calls that reported it (a ledger's) is
/// charged on the calls whose answer could carry tokens, the profile's
/// [`token_calls`](UsageProfile::token_calls), an answered call that reported no
/// count at the mean, never as 0 tokens (or on the calls that reported it, if the
/// totals counted more); a profile that does not say, on its answered calls, as
/// the calls that reported tokens are among them. At the profile's volume those
/// calls are as metered (exact); other volumes are priced at the share.
fn token_calls(
    profile: &UsageProfile,
    answered: Option<Decimal>,
    charged_calls: Decimal,
) -> TokenCalls {
    let every = (Decimal::ONE, profile.calls_per_period);
    if let Some(t) = profile.token_calls {
        return TokenCalls {
            tokens_in: (t.in_share, t.in_per_period),
            tokens_out: (t.out_share, t.out_per_period),
        };
    }
    // The calls answered, at most every call: a call answered twice (charged two
    // inferences) reported its tokens once.
    let calls = match (profile.tokens_reported, answered) {
        (Some(_), Some(share)) if share < Decimal::ONE => (share, charged_calls),
        _ => every,
    };
    TokenCalls {
        tokens_in: calls,
        tokens_out: calls,
    }
}

/// Whether a per-token plan charges no call's tokens: no metered call had an
/// answer that could carry them, and the receipts charged none.
fn no_tokens_charged(profile: &UsageProfile) -> bool {
    match profile.token_calls {
        Some(t) => t.in_share.is_zero() && t.out_share.is_zero(),
        None => {
            profile.tokens_reported.is_some() && profile.answered_per_call == Some(Decimal::ZERO)
        }
    }
}

/// Tokens per call priced: `tokens_in × usd_in + tokens_out × usd_out`.
fn tokens_per_call(
    profile: &UsageProfile,
    usd_per_input_token: Decimal,
    usd_per_output_token: Decimal,
) -> Result<Decimal, Overflow> {
    add(
        mul(profile.tokens_in_per_call, usd_per_input_token)?,
        mul(profile.tokens_out_per_call, usd_per_output_token)?,
    )
}

fn price_plan(
    plan: &Plan,
    profile: &UsageProfile,
    rates: &RateTable,
) -> Result<PlanCost, CompareError> {
    let name = plan.name.as_str();
    let period = profile.period;
    let calls = profile.calls_per_period;
    let latency_seconds = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 9);
    let mut used: Vec<Rate> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // The inferences per call a per-inference fee or a quota counts (HTTP 2XX
    // answers; a per-token price, the calls answered), when they are not one a
    // call: some calls were not answered, or some answered twice.
    let answered = profile.answered_per_call.filter(|s| *s != Decimal::ONE);
    // The inferences that fee or quota charges at the profile's volume: the
    // inferences per period as metered (one division, as the calls per period: 48
    // of 72 a day are 48), else calls × share; the share, rounded at 28 digits when
    // it is not a finite decimal (2/3), prices other volumes only.
    let charged_calls = match (answered, profile.answered_calls_per_period) {
        (None, _) => calls,
        (Some(_), Some(answered_calls)) => answered_calls,
        (Some(share), None) => mul(calls, share)
            .map_err(|o| o.of(format!("the answered calls of plan `{name}`"), HINT_INPUTS))?,
    };
    if let Some(share) = answered
        && matches!(
            plan.model,
            PlanModel::PerInference(_)
                | PlanModel::Subscription(SubscriptionPlan {
                    included_calls: Some(_),
                    ..
                })
        )
    {
        notes.push(format!(
            "charges the inferences, one per HTTP 2XX answer, {} of the calls metered ({} \
             per {period}), as AWS Marketplace charges them: not model errors; a call whose \
             answer was cut off and tried again, answered again, twice; a call cancelled \
             before its answer came counts as unanswered, though AWS charges it if SageMaker \
             answered it afterwards (a lower bound)",
            percent(share),
            fmt_calls(charged_calls)
        ));
    }
    let mut provisioned_seconds = None;
    let region = rates.region().to_string();
    // "the cost per month of plan `x` is too large to compute exactly ..."
    let overflow = |figure: &str| {
        let what = format!("{figure} of plan `{name}`");
        move |o: Overflow| o.of(what.clone(), HINT_INPUTS)
    };
    let per_period = format!("the fixed cost per {period}");
    // The cost at the profile's calls when the curve holds it only rounded.
    let mut exact_cost = None;

    let curve = match &plan.model {
        PlanModel::Instance(p) => {
            let hours = p.hours_per_period.unwrap_or_else(|| period.hours());
            let rate = rates.require(name, PriceKey::hosting(&region, &p.instance_type))?;
            let count = Decimal::from(p.count);
            let instances = mul(count, hours)
                .and_then(|x| mul(x, rate.usd_per_unit))
                .map_err(overflow(&per_period))?;
            used.push(rate.clone());
            let storage = storage_per_period(
                name,
                p.volume_gb,
                p.count,
                hours,
                rates,
                &mut used,
                &mut notes,
            )?;
            let fixed = add(instances, storage).map_err(overflow(&per_period))?;
            let data = data_per_call(name, profile, rates, &mut used, &mut notes)?;
            provisioned_seconds = Some(
                mul(count, hours)
                    .and_then(|x| mul(x, Decimal::from(3600)))
                    .map_err(overflow("the provisioned instance-seconds"))?,
            );
            CostCurve::linear(fixed, data)
        }
        PlanModel::SavingsPlan(p) => {
            let rate = rates.require(name, PriceKey::hosting(&region, &p.instance_type))?;
            let count = Decimal::from(p.count);
            used.push(rate.clone());
            let hourly = overflow("the hourly cost");
            let on_demand_per_hour = mul(count, rate.usd_per_unit).map_err(&hourly)?;
            let undiscounted = sub(Decimal::ONE, p.discount).map_err(&hourly)?;
            let discounted_per_hour = mul(on_demand_per_hour, undiscounted).map_err(&hourly)?;
            let commitment = p.commitment_usd_per_hour;
            // The commitment is billed for every hour of the period; usage beyond it only
            // for the hours the instances run.
            let period_hours = period.hours();
            let hours = p.hours_per_period.unwrap_or(period_hours);
            let committed = mul(commitment, period_hours).map_err(overflow(&per_period))?;
            let fixed = if discounted_per_hour <= commitment {
                let unused = sub(commitment, discounted_per_hour).map_err(&hourly)?;
                if !unused.is_zero() {
                    notes.push(format!(
                        "{} USD/h of the {} USD/h commitment is unused (usage at the \
                         discounted rate is {} USD/h)",
                        unused.normalize(),
                        commitment.normalize(),
                        discounted_per_hour.normalize()
                    ));
                }
                committed
            } else {
                let covered_on_demand = div(commitment, undiscounted).map_err(&hourly)?;
                notes.push(format!(
                    "the commitment covers {} USD/h of on-demand usage; the other {} USD/h is \
                     charged on demand",
                    usd(covered_on_demand, 4),
                    usd(
                        sub(on_demand_per_hour, covered_on_demand).map_err(&hourly)?,
                        4
                    )
                ));
                // c × P + (D − c / (1 − d)) × H, the overflow as one fraction so that it
                // stays exact until the last division: (D (1 − d) − c) × H / (1 − d)
                sub(discounted_per_hour, commitment)
                    .and_then(|x| mul(x, hours))
                    .and_then(|x| div(x, undiscounted))
                    .and_then(|x| add(committed, x))
                    .map_err(overflow(&per_period))?
            };
            if hours < period_hours {
                notes.push(format!(
                    "the instances run {} of the {} h per {period}; the commitment is billed for \
                     all {} h",
                    hours.normalize(),
                    period_hours,
                    period_hours
                ));
            }
            notes.push(format!(
                "commits {} USD/h for {} ({} USD in total), whatever the usage",
                commitment.normalize(),
                p.term,
                usd(
                    mul(commitment, p.term.hours()).map_err(overflow("the total commitment"))?,
                    2
                )
            ));
            let storage = storage_per_period(
                name,
                p.volume_gb,
                p.count,
                hours,
                rates,
                &mut used,
                &mut notes,
            )?;
            let fixed = add(fixed, storage).map_err(overflow(&per_period))?;
            let data = data_per_call(name, profile, rates, &mut used, &mut notes)?;
            provisioned_seconds = Some(
                mul(count, hours)
                    .and_then(|x| mul(x, Decimal::from(3600)))
                    .map_err(overflow("the provisioned instance-seconds"))?,
            );
            CostCurve::linear(fixed, data)
        }
        PlanModel::Serverless(p) => {
            let rate = rates.require(name, p.duration_key(&region))?;
            let billed = profile.billed_seconds_per_call();
            let compute =
                mul(billed, rate.usd_per_unit).map_err(overflow("the compute per call"))?;
            used.push(rate.clone());
            let billed_ms = mul(billed, Decimal::from(1000))
                .map_err(overflow("the billed milliseconds per call"))?;
            notes.push(if profile.billed_ms_per_call.is_some() {
                format!(
                    "bills {} ms per call on average (each metered call's time rounded up to \
                     the millisecond)",
                    billed_ms.round_dp(6).normalize()
                )
            } else {
                format!(
                    "bills {} ms per call (mean latency rounded up to the millisecond)",
                    billed_ms.normalize()
                )
            });
            // Provisioned concurrency: n × its per-second rate, every second of the
            // period, busy or not.
            let standing = match (p.provisioned_concurrency, p.standing_key(&region)) {
                (Some(n), Some(key)) => {
                    let rate = rates.require(name, key)?;
                    let seconds = mul(period.hours(), Decimal::from(3600))
                        .map_err(overflow("the seconds per period"))?;
                    let cost = provisioned_usd(n, rate.usd_per_unit, period.hours())
                        .map_err(overflow(&per_period))?;
                    notes.push(format!(
                        "provisioned concurrency: {n} × {} USD per second provisioned × {} s = \
                         {} USD per {period}, busy or not; calls at its inference rate",
                        rate.usd_per_unit.normalize(),
                        seconds.normalize(),
                        usd(cost, 2)
                    ));
                    used.push(rate.clone());
                    provisioned_seconds = Some(
                        mul(Decimal::from(n), seconds)
                            .map_err(overflow("the provisioned seconds"))?,
                    );
                    cost
                }
                _ => Decimal::ZERO,
            };
            // Calls beyond what the provisioned concurrency serves are billed at the
            // on-demand rate: a kink where its seconds run out with the calls spread
            // evenly (peaks spill sooner, so this is a lower bound).
            let (included_calls, overage_usd_per_call) =
                match (provisioned_seconds, p.beyond_provisioned_key(&region)) {
                    (Some(capacity), Some(key)) if !latency_seconds.is_zero() => {
                        let on_demand = rates.require(name, key)?;
                        let included = div(capacity, latency_seconds)
                            .map_err(overflow("the calls the provisioned concurrency serves"))?;
                        let extra_rate = sub(on_demand.usd_per_unit, rate.usd_per_unit)
                            .map_err(overflow("the on-demand rate's difference"))?;
                        if extra_rate.is_sign_negative() {
                            notes.push(format!(
                                "the on-demand rate {} USD/s is below the inference rate: \
                                 calls beyond the provisioned concurrency are counted at the \
                                 inference rate",
                                on_demand.usd_per_unit.normalize()
                            ));
                        }
                        let extra = mul(billed, extra_rate.max(Decimal::ZERO)).map_err(
                            overflow("the cost per call beyond the provisioned concurrency"),
                        )?;
                        notes.push(format!(
                            "with the calls spread evenly, the provisioned concurrency serves \
                             up to {} calls per {period}; AWS bills each call beyond it at the \
                             on-demand rate, {} USD/s, up to the endpoint's maximum \
                             concurrency of {} (peaks spill over sooner: a lower bound)",
                            served(included),
                            on_demand.usd_per_unit.normalize(),
                            p.max_concurrency()
                        ));
                        used.push(on_demand.clone());
                        (Some(included.normalize()), Some(extra.normalize()))
                    }
                    _ => (None, None),
                };
            let data = data_per_call(name, profile, rates, &mut used, &mut notes)?;
            let per_call = add(compute, data).map_err(overflow("the cost per call"))?;
            CostCurve {
                included_calls,
                overage_usd_per_call,
                ..CostCurve::linear(standing, per_call)
            }
        }
        PlanModel::PerInference(p) => {
            // A fee per inference: one per HTTP 2XX answer. At the profile's volume,
            // the inferences themselves; the curve's price per call made, `share ×
            // price`, may be rounded.
            let per_call = match answered {
                Some(share) => {
                    exact_cost = Some(
                        mul(p.usd_per_call, charged_calls)
                            .map_err(overflow(&format!("the cost per {period}")))?,
                    );
                    mul(p.usd_per_call, share).map_err(overflow("the cost per call"))?
                }
                None => p.usd_per_call,
            };
            CostCurve::linear(Decimal::ZERO, per_call)
        }
        PlanModel::PerToken(p) => {
            let charged = token_calls(profile, answered, charged_calls);
            // Each direction's mean, priced, on the calls it is charged on: in calls
            // made at their share, and, when fewer than the calls made, at the
            // profile's volume on those calls per period (exact as metered).
            let exact = charged.tokens_in.0 != Decimal::ONE || charged.tokens_out.0 != Decimal::ONE;
            let mut per_call = Decimal::ZERO;
            let mut cost = Decimal::ZERO;
            // The most calls a priced direction is charged on, for the note when
            // they are fewer than the calls made.
            let mut most: Option<(Decimal, Decimal)> = None;
            for (mean, usd, (share, per_period)) in [
                (
                    profile.tokens_in_per_call,
                    p.usd_per_input_token,
                    charged.tokens_in,
                ),
                (
                    profile.tokens_out_per_call,
                    p.usd_per_output_token,
                    charged.tokens_out,
                ),
            ] {
                let priced = mul(mean, usd)
                    .map_err(overflow("the cost per call (tokens × price per token)"))?;
                if !usd.is_zero() && most.is_none_or(|m| share > m.0) {
                    most = Some((share, per_period));
                }
                per_call = mul(priced, share)
                    .and_then(|x| add(per_call, x))
                    .map_err(overflow("the cost per call"))?;
                if exact {
                    cost = mul(priced, per_period)
                        .and_then(|x| add(cost, x))
                        .map_err(overflow(&format!("the cost per {period}")))?;
                }
            }
            if let Some(share) = most.filter(|m| m.0 < Decimal::ONE) {
                notes.push(format!(
                    "charges the tokens of {} of the calls metered ({} per {period}), as the \
                     receipts did: the means are over the calls that reported tokens, and are \
                     charged on the calls answered with HTTP 2XX (one that reported no count \
                     at the mean), or on those that reported them if more; a model error or a \
                     failed asynchronous inference answered no tokens and is charged none, a \
                     call cancelled before its answer came none either, though it is charged \
                     if SageMaker answered it afterwards (a lower bound)",
                    percent(share.0),
                    fmt_calls(share.1)
                ));
            }
            if exact {
                exact_cost = Some(cost);
            }
            CostCurve::linear(Decimal::ZERO, per_call)
        }
        PlanModel::Subscription(p) => {
            // T = hours(period) / hours(subscription period); multiply before dividing
            // so that e.g. a yearly fee over a month (× 730 / 8,760) stays exact.
            let amortise = |x: Decimal, figure: &str| {
                mul(x, period.hours())
                    .and_then(|x| div(x, p.period.hours()))
                    .map(|x| x.normalize())
                    .map_err(overflow(figure))
            };
            let fixed = amortise(p.fee_usd, &per_period)?;
            let included = p
                .included_calls
                .map(|calls| amortise(calls, &format!("the included calls per {period}")))
                .transpose()?;
            if let Some(included) = included {
                let over = sub(charged_calls, included)
                    .map_err(overflow("the calls above the quota"))?
                    .max(Decimal::ZERO);
                // The curve's kink below, `included / share`, and its overage,
                // `share × overage`, are rounded when the share is not a finite
                // decimal: the cost at the profile's volume is taken from the
                // answered calls per period instead, exact as metered.
                if answered.is_some() {
                    exact_cost = Some(
                        mul(over, p.overage_usd_per_call.unwrap_or_default())
                            .and_then(|x| add(fixed, x))
                            .map_err(overflow(&format!("the cost per {period}")))?,
                    );
                }
                notes.push(format!(
                    "includes {} calls per {period}; {} calls above that at {} USD each",
                    fmt_calls(included),
                    fmt_calls(over),
                    p.overage_usd_per_call.unwrap_or_default().normalize()
                ));
            }
            if p.period != period {
                notes.push(format!(
                    "fee of {} USD per {} amortised by hours: × {} h / {} h = {} USD per {period}",
                    p.fee_usd.normalize(),
                    p.period,
                    period.hours(),
                    p.period.hours(),
                    usd(fixed, 2)
                ));
            }
            // The quota counts answered calls, `share × U` of `U` calls: in calls
            // made, it lasts `included / share` calls, and each call beyond costs
            // `share × overage` on average. None answered: the fee alone.
            let (included, overage) = match (answered, included, p.overage_usd_per_call) {
                (Some(share), Some(_), Some(_)) if share.is_zero() => (None, None),
                (Some(share), Some(included), Some(overage)) => (
                    Some(
                        div(included, share)
                            .map_err(overflow("the calls the quota lasts"))?
                            .normalize(),
                    ),
                    Some(
                        mul(overage, share)
                            .map_err(overflow("the overage per call"))?
                            .normalize(),
                    ),
                ),
                (_, included, overage) => (included, overage),
            };
            CostCurve {
                fixed_usd: fixed,
                usd_per_call: Decimal::ZERO,
                included_calls: included,
                overage_usd_per_call: overage,
            }
        }
    };

    let curve = CostCurve {
        fixed_usd: curve.fixed_usd.normalize(),
        usd_per_call: curve.usd_per_call.normalize(),
        ..curve
    };
    let cost_usd = exact_cost
        .map_or_else(|| curve.try_cost_usd(calls), |cost| Ok(cost.normalize()))
        .map_err(|o| {
            o.of(
                format!(
                    "the cost of plan `{name}` for {} calls per {period}",
                    fmt_calls(calls)
                ),
                HINT_INPUTS,
            )
        })?;
    let usd_per_1000_calls = if calls.is_zero() {
        None
    } else {
        // × 1000 first keeps the quotient exact; past the decimal's range, ÷ first.
        let thousand = Decimal::from(1000);
        let per_1000 = mul(cost_usd, thousand)
            .and_then(|x| div(x, calls))
            .or_else(|_| div(cost_usd, calls).and_then(|x| mul(x, thousand)))
            .map_err(overflow("the cost per 1,000 calls"))?;
        Some(per_1000.normalize())
    };
    // Calls served at once per second provisioned: `m` per instance, one per
    // provisioned concurrency.
    let at_once = Decimal::from(calls_at_once(plan));
    let utilisation = match provisioned_seconds {
        Some(seconds) if !latency_seconds.is_zero() => Some(
            mul(calls, latency_seconds)
                .and_then(|busy| div(busy, mul(seconds, at_once)?))
                .map_err(overflow("the utilisation"))?
                .normalize(),
        ),
        _ => None,
    };
    let capacity = capacity(plan, profile, provisioned_seconds, &mut notes)
        .map_err(overflow("the calls the plan can serve"))?;
    if let Some(u) = utilisation
        && u > Decimal::ONE
        && let PlanModel::Serverless(p) = &plan.model
    {
        notes.push(format!(
            "busy {} of the provisioned concurrency's time: the calls beyond it are served \
             and billed on demand up to the endpoint's maximum concurrency of {}{}; \
             provision more to pay the inference rate",
            percent(u),
            p.max_concurrency(),
            capacity
                .map(|c| format!(" ({} calls per {period})", served(c.calls)))
                .unwrap_or_default()
        ));
    }

    let rate_source = if used.is_empty() {
        "stated".to_string()
    } else {
        let sources: BTreeSet<&str> = used.iter().map(|r| r.provenance.source.as_str()).collect();
        sources.into_iter().collect::<Vec<_>>().join("+")
    };
    Ok(PlanCost {
        plan: plan.clone(),
        cost_usd,
        usd_per_1000_calls,
        difference_to_cheapest_usd: Decimal::ZERO,
        curve,
        utilisation,
        provisioned_seconds: provisioned_seconds.map(|s| s.normalize()),
        capacity_calls: capacity.map(|c| c.calls),
        over_capacity: capacity.is_some_and(|c| c.over),
        rates: used,
        rate_source,
        notes,
    })
}

/// Calls one second provisioned serves at once: an instance plan's `m` (its
/// `max_concurrency_per_instance`, default 1), one for anything else.
pub(crate) fn calls_at_once(plan: &Plan) -> u32 {
    match &plan.model {
        PlanModel::Instance(p) => p.max_concurrency_per_instance.unwrap_or(1),
        PlanModel::SavingsPlan(p) => p.max_concurrency_per_instance.unwrap_or(1),
        _ => 1,
    }
}

/// What bounds a plan's capacity, in words: "at 1 call per instance", "at its
/// maximum concurrency of 200".
pub(crate) fn capacity_basis(plan: &Plan) -> String {
    match (&plan.model, calls_at_once(plan)) {
        (PlanModel::Serverless(p), _) => {
            format!("at its maximum concurrency of {}", p.max_concurrency())
        }
        (_, 1) => "at 1 call per instance".into(),
        (_, m) => format!("at {m} calls per instance"),
    }
}

/// A capacity in whole calls, for people: the calls a plan can serve, rounded down
/// (never more than it serves).
pub(crate) fn served(calls: Decimal) -> String {
    if calls >= Decimal::ONE {
        fmt_calls(calls.trunc())
    } else {
        fmt_calls(calls)
    }
}

/// A plan's capacity at the profile's volume.
#[derive(Debug, Clone, Copy)]
struct Capacity {
    /// The most calls per period it serves.
    calls: Decimal,
    /// The profile's calls are more.
    over: bool,
}

/// The most calls per period a plan serves, `seconds of serving ÷ mean latency`,
/// and whether the profile's calls are more (`calls × latency > seconds of
/// serving`, exact); `None` for plans whose capacity is not modelled, and for
/// instances without a latency (a note says it was not checked). Notes a plan
/// over capacity.
fn capacity(
    plan: &Plan,
    profile: &UsageProfile,
    provisioned_seconds: Option<Decimal>,
    notes: &mut Vec<String>,
) -> Result<Option<Capacity>, Overflow> {
    let period = profile.period;
    let latency = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 9);
    // Instances and the hours they run.
    let (count, hours) = match &plan.model {
        PlanModel::Instance(p) => (p.count, p.hours_per_period),
        PlanModel::SavingsPlan(p) => (p.count, p.hours_per_period),
        _ => (0, None),
    };
    let hours = hours.unwrap_or_else(|| period.hours());
    let instances = count > 0;
    let serving = match (&plan.model, provisioned_seconds) {
        (PlanModel::Serverless(p), _) => mul(
            Decimal::from(p.max_concurrency()),
            mul(period.hours(), Decimal::from(3600))?,
        )?,
        (_, Some(seconds)) if instances => mul(seconds, Decimal::from(calls_at_once(plan)))?,
        _ => return Ok(None),
    };
    if latency.is_zero() {
        notes.push(
            "capacity not checked (no latency given): how many calls the instances serve \
             depends on each call's time"
                .into(),
        );
        return Ok(None);
    }
    let busy = mul(profile.calls_per_period, latency)?;
    let calls = div(serving, latency)?.normalize();
    let over = busy > serving;
    if over {
        let ms = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 6);
        let to_serve = fmt_calls(profile.calls_per_period);
        notes.push(if instances {
            format!(
                "over capacity: serves at most {} calls per {period} ({} for {} h {}, {} ms \
                 a call), fewer than the {to_serve} to serve (busy {} of the time it can \
                 serve); add instances, or calls per instance if the model server serves \
                 them side by side",
                served(calls),
                instance_count(count),
                hours.normalize(),
                capacity_basis(plan),
                ms.normalize(),
                percent(div(busy, serving)?),
            )
        } else {
            format!(
                "over capacity: serves at most {} calls per {period} {} at {} ms a call, \
                 fewer than the {to_serve} to serve (a mean concurrency of {}): the calls \
                 beyond it would be throttled, not served",
                served(calls),
                capacity_basis(plan),
                ms.normalize(),
                super::format::usd(div(busy, mul(period.hours(), Decimal::from(3600))?)?, 1),
            )
        });
    }
    Ok(Some(Capacity { calls, over }))
}

/// "1 instance", "3 instances".
fn instance_count(n: u32) -> String {
    if n == 1 {
        "1 instance".into()
    } else {
        format!("{n} instances")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{InstancePlan, PerInferencePlan, SavingsPlan};
    use std::time::Duration;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// ml.m5.xlarge at 0.23 USD/h, stated.
    fn m5_rates() -> RateTable {
        RateTable::new("us-east-1")
            .with_rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), d("0.23"))
            .unwrap()
    }

    /// `rates` with us-east-1's 2 GB serverless rates: provisioned concurrency's
    /// $0.00001/s standing and $0.0000233/s inference duration, on demand
    /// $0.00004/s.
    fn with_2_gb_serverless_rates(rates: RateTable) -> RateTable {
        let (region, gb) = ("us-east-1".to_owned(), 2);
        rates
            .with_rate(
                PriceKey::ProvisionedConcurrency {
                    region: region.clone(),
                    memory_gb: gb,
                },
                d("0.00001"),
            )
            .unwrap()
            .with_rate(
                PriceKey::ProvisionedConcurrencyUsage {
                    region: region.clone(),
                    memory_gb: gb,
                },
                d("0.0000233"),
            )
            .unwrap()
            .with_rate(PriceKey::serverless(&region, gb), d("0.00004"))
            .unwrap()
    }

    fn savings(commitment: &str, hours: Option<&str>) -> Plan {
        let mut builder = SavingsPlan::builder()
            .instance_type("ml.m5.xlarge")
            .commitment_usd_per_hour(d(commitment))
            .discount(d("0.64"));
        if let Some(h) = hours {
            builder = builder.hours_per_period(d(h));
        }
        Plan::from(builder.build().unwrap())
    }

    #[test]
    fn a_part_time_savings_plan_pays_its_commitment_every_hour_and_the_rest_while_running() {
        let profile = UsageProfile::builder()
            .calls_per_period(100_000)
            .build()
            .unwrap();
        let plans = [
            savings("0.05", Some("400")),
            Plan::from(PerInferencePlan::per_call(d("0.001")).unwrap()),
        ];
        let comparison = Comparison::compute(&profile, &plans, &m5_rates()).unwrap();
        let row = comparison
            .plan("savings plan ml.m5.xlarge x1 (1 yr)")
            .unwrap();
        // Discounted usage 0.23 × (1 − 0.64) = 0.0828 USD/h > 0.05 committed, so the
        // commitment covers 0.05 / 0.36 = 0.13888… USD/h of on-demand usage and
        // 0.23 − 0.13888… = 0.09111… USD/h is charged on demand while running.
        // 0.05 × 730 h = 36.5 (every hour of the month)
        // + 0.09111… × 400 h = 0.0328 × 400 / 0.36 = 13.12 / 0.36 = 36.4444…
        // = 72.9444… (always-on pricing would give 0.0508 × 730 / 0.36 = 103.0111…)
        assert_eq!(row.cost_usd.round_dp(10), d("72.9444444444"));
        assert_eq!(row.curve.fixed_usd.round_dp(10), d("72.9444444444"));
        // instance-seconds provisioned: 1 × 400 h × 3,600 s
        assert_eq!(row.provisioned_seconds, Some(d("1440000")));
        // pay per use breaks even at 72.9444… / 0.001 = 72,944.44… calls
        let be = comparison
            .break_even("savings plan ml.m5.xlarge x1 (1 yr)", "pay per use")
            .unwrap();
        assert_eq!(be.points[0].calls_per_period.round_dp(2), d("72944.44"));
        assert!(
            row.notes.iter().any(|n| n
                == "the instances run 400 of the 730 h per month; the commitment \
                            is billed for all 730 h"),
            "{:?}",
            row.notes
        );
    }

    /// Serverless with provisioned concurrency, from AWS's rules: the standing charge
    /// per second provisioned, every second of the period, and each call's billed
    /// seconds at the inference-duration rate (not the on-demand rate).
    #[test]
    fn provisioned_concurrency_pays_its_standing_charge_and_its_inference_rate() {
        use crate::compare::ServerlessPlan;
        let profile = UsageProfile::builder()
            .calls_per_period(1_000_000)
            .mean_latency(Duration::from_millis(800))
            .build()
            .unwrap();
        let rates = with_2_gb_serverless_rates(m5_rates());
        let pc = ServerlessPlan::new(2048)
            .unwrap()
            .with_provisioned_concurrency(2)
            .unwrap();
        let plans = [
            Plan::from(pc),
            Plan::from(ServerlessPlan::new(2048).unwrap()),
            Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
        ];
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        let row = comparison
            .plan("serverless 2048 MB, 2 provisioned")
            .unwrap();
        // Standing: 2 × 0.00001 USD/s × 730 h × 3,600 s = 52.56 USD a month.
        assert_eq!(row.curve.fixed_usd, d("52.56"));
        // Calls: 1,000,000 × 0.8 s × 0.0000233 = 18.64; in all 71.20.
        assert_eq!(row.cost_usd, d("71.2"));
        // Busy 1,000,000 × 0.8 s of 2 × 2,628,000 s provisioned.
        assert_eq!(row.provisioned_seconds, Some(d("5256000")));
        assert_eq!(row.utilisation.unwrap().round_dp(6), d("0.152207"));
        // On demand: 1,000,000 × 0.8 × 0.00004 = 32, no standing charge.
        let on_demand = comparison.plan("serverless 2048 MB").unwrap();
        assert_eq!(on_demand.cost_usd, d("32"));
        // The instance (0.23 × 730 = 167.9) breaks even with provisioned
        // concurrency at (167.9 − 52.56) / (0.8 × 0.0000233) = 6,187,768.24… calls.
        let be = comparison
            .break_even("ml.m5.xlarge x1", "serverless 2048 MB, 2 provisioned")
            .unwrap();
        assert_eq!(be.points[0].calls_per_period.round_dp(2), d("6187768.24"));
        // With the calls spread evenly, 2 × 2,628,000 s ÷ 0.8 s = 6,570,000 calls fit
        // the provisioned concurrency; AWS bills each call beyond at the on-demand
        // rate, 0.8 s × (0.00004 − 0.0000233) = 0.00001336 USD more than inside it.
        assert_eq!(row.curve.included_calls, Some(d("6570000")));
        assert_eq!(row.curve.overage_usd_per_call, Some(d("0.00001336")));
        // 7,000,000 calls: 52.56 + 7,000,000 × 0.8 × 0.0000233 (130.48)
        // + 430,000 × 0.8 × 0.0000167 (5.7448) = 188.7848.
        assert_eq!(row.curve.cost_usd(d("7000000")).unwrap(), d("188.7848"));
    }

    /// The note on what provisioned concurrency serves rounds down, as every other
    /// capacity does: never more calls than fit its seconds.
    #[test]
    fn the_calls_provisioned_concurrency_serves_are_rounded_down_in_its_note() {
        use crate::compare::ServerlessPlan;
        let profile = UsageProfile::builder()
            .calls_per_period(1_000_000)
            .mean_latency(Duration::from_millis(700))
            .build()
            .unwrap();
        let rates = with_2_gb_serverless_rates(RateTable::new("us-east-1"));
        let pc = ServerlessPlan::new(2048)
            .unwrap()
            .with_provisioned_concurrency(1)
            .unwrap();
        let comparison = Comparison::compute(&profile, &[Plan::from(pc)], &rates).unwrap();
        let row = &comparison.plans[0];
        // 1 × 730 h × 3,600 s ÷ 0.7 s = 2,628,000 ÷ 0.7 = 3,754,285.71… calls;
        // 3,754,286 calls would take 2,628,000.2 s, more than is provisioned.
        assert!(
            row.notes.iter().any(|n| n
                .contains("the provisioned concurrency serves up to 3,754,285 calls per month")),
            "{:?}",
            row.notes
        );
        assert!(
            !row.notes.iter().any(|n| n.contains("3,754,286")),
            "{:?}",
            row.notes
        );
    }

    #[test]
    fn a_commitment_covering_all_usage_costs_the_same_however_long_the_instances_run() {
        let profile = UsageProfile::builder()
            .calls_per_period(100_000)
            .mean_latency(Duration::from_millis(500))
            .build()
            .unwrap();
        let plans = [savings("0.1", Some("400"))];
        let comparison = Comparison::compute(&profile, &plans, &m5_rates()).unwrap();
        let row = &comparison.plans[0];
        // 0.23 × 0.36 = 0.0828 ≤ 0.1: the commitment covers every running hour;
        // 0.1 × 730 h = 73, billed whether the instances run or not
        assert_eq!(row.cost_usd, d("73"));
        // busy 100,000 × 0.5 s = 50,000 s of 400 h × 3,600 s = 1,440,000 s: 1/28.8
        // = 0.034722…
        assert_eq!(row.utilisation.unwrap().round_dp(6), d("0.034722"));
    }

    #[test]
    fn instances_with_a_volume_pay_ml_storage_per_gb_month_for_the_hours_they_run() {
        let profile = UsageProfile::builder()
            .calls_per_period(100_000)
            .build()
            .unwrap();
        let instance = InstancePlan::new("ml.m5.xlarge", 2)
            .and_then(|p| p.with_hours_per_period(d("365")))
            .and_then(|p| p.with_volume_gb(30))
            .unwrap();
        let savings = SavingsPlan::builder()
            .instance_type("ml.m5.xlarge")
            .count(2)
            .commitment_usd_per_hour(d("0.1"))
            .discount(d("0.64"))
            .hours_per_period(d("365"))
            .volume_gb(30)
            .build()
            .unwrap();
        let plans = [Plan::from(instance), Plan::from(savings)];
        let rates = m5_rates()
            .with_rate(PriceKey::storage("us-east-1"), d("0.14"))
            .unwrap();
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        // storage: 2 instances × 30 GB × 0.14 USD/GB-month × 365 h / 730 h = 4.20
        // instances: 2 × 365 h × 0.23 = 167.90; + 4.20 = 172.10
        assert_eq!(
            comparison.plan("ml.m5.xlarge x2").unwrap().cost_usd,
            d("172.1")
        );
        // savings plan: usage 2 × 0.23 × 0.36 = 0.1656 USD/h > 0.1 committed;
        // 0.1 × 730 = 73 + (0.1656 − 0.1) × 365 / 0.36 = 23.944 / 0.36 = 66.5111…
        // + storage 4.20 (not covered by the commitment) = 143.7111…
        let row = comparison
            .plan("savings plan ml.m5.xlarge x2 (1 yr)")
            .unwrap();
        assert_eq!(row.cost_usd.round_dp(10), d("143.7111111111"));
        assert!(
            row.rates
                .iter()
                .any(|r| r.key == PriceKey::storage("us-east-1")),
            "{:?}",
            row.rates
        );

        // Without the storage rate the plan is not priced (never a silent $0).
        let err = Comparison::compute(&profile, &plans, &m5_rates()).unwrap_err();
        assert!(
            matches!(&err, CompareError::MissingRate { key, .. } if *key == PriceKey::storage("us-east-1")),
            "{err}"
        );
    }

    /// An instance or savings plan with no volume size leaves its ML storage out, and
    /// says so: AWS bills a volume per instance unless the type has NVMe storage.
    #[test]
    fn ml_storage_left_out_for_want_of_a_volume_size_is_noted() {
        use crate::compare::SubscriptionPlan;
        let profile = UsageProfile::builder()
            .calls_per_period(100_000)
            .build()
            .unwrap();
        let subscription = || {
            Plan::from(
                SubscriptionPlan::builder()
                    .fee_usd(d("170"))
                    .build()
                    .unwrap(),
            )
        };
        let left_out = |row: &PlanCost| {
            row.notes
                .iter()
                .any(|n| n.starts_with("ML storage not priced"))
        };
        let plans = [
            Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
            savings("0.1", None),
            subscription(),
        ];
        let comparison = Comparison::compute(&profile, &plans, &m5_rates()).unwrap();
        // 730 h × 0.23 = 167.90, under the 170 subscription, but without the volume
        // AWS bills with it (30 GB × 0.14 USD/GB-month = 4.20, 172.10 in all).
        let instance = comparison.plan("ml.m5.xlarge x1").unwrap();
        assert_eq!(instance.cost_usd, d("167.9"));
        assert!(left_out(instance), "{:?}", instance.notes);
        let savings_row = comparison
            .plan("savings plan ml.m5.xlarge x1 (1 yr)")
            .unwrap();
        assert!(left_out(savings_row), "{:?}", savings_row.notes);
        assert!(!left_out(comparison.plan("subscription").unwrap()));

        // With a 30 GB volume: 167.90 + 1 × 30 GB × 0.14 × 730 h / 730 h = 172.10,
        // priced, no such note.
        let with_volume = [
            Plan::from(
                InstancePlan::new("ml.m5.xlarge", 1)
                    .and_then(|p| p.with_volume_gb(30))
                    .unwrap(),
            ),
            subscription(),
        ];
        let rates = m5_rates()
            .with_rate(PriceKey::storage("us-east-1"), d("0.14"))
            .unwrap();
        let comparison = Comparison::compute(&profile, &with_volume, &rates).unwrap();
        let instance = comparison.plan("ml.m5.xlarge x1").unwrap();
        assert_eq!(instance.cost_usd, d("172.1"));
        assert!(!left_out(instance), "{:?}", instance.notes);
    }

    #[test]
    fn a_volume_outside_what_sagemaker_accepts_is_refused() {
        for gb in [0, 513] {
            let err = InstancePlan::new("ml.m5.xlarge", 1)
                .and_then(|p| p.with_volume_gb(gb))
                .unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "ML storage volume (GB) is out of range (got {gb})"
                )),
                "{err}"
            );
        }
    }

    /// A per-token plan priced from a ledger charges what the receipts' own token
    /// lines charged, scaled to the period: the billing prices each call's lines
    /// here, and their sum over the hour, × 24, is the plan's cost a day.
    #[test]
    fn a_per_token_plan_from_a_ledger_charges_what_the_receipts_token_lines_did() {
        use crate::billing::{UsageCharges, usage_charge_lines};
        use crate::compare::{PerTokenPlan, UsageTotals};
        use crate::usage::{Operation, Outcome, TokenUsage, Usage};
        // 4 calls of 100 ms in one hour, one every 15 min (4 starts 3 gaps apart:
        // 3 × 15 min × 4 / 3 = 60 min): two answered with 400 + 600 tokens in and
        // 100 + 300 out, a model error (HTTP 424) and a call cancelled before its
        // answer, neither read for tokens.
        let calls = [
            (Outcome::Ok, Some(TokenUsage::new(400, 100))),
            (Outcome::Error, None),
            (Outcome::Ok, Some(TokenUsage::new(600, 300))),
            (Outcome::Cancelled, None),
        ];
        // $2 per 1,000 tokens in and out (0.002 USD a token): one call's tokens
        // price in whole figures.
        let charges = UsageCharges::default().per_1000_tokens(d("2"), d("2"));
        let mut receipts_usd = Decimal::ZERO;
        let mut receipts = Vec::new();
        for (i, (outcome, tokens)) in calls.into_iter().enumerate() {
            let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_millis(100))
                .with_outcome(outcome);
            if let Some(tokens) = tokens {
                usage = usage.with_tokens(tokens);
            }
            let lines = usage_charge_lines(&usage, 0, &charges);
            let usd: Decimal = lines.iter().filter_map(|l| l.cost_usd()).sum();
            receipts_usd += usd;
            let at = format!("2026-05-20T10:{:02}:00Z", i * 15);
            receipts.push(
                serde_json::from_value::<crate::Cost>(serde_json::json!({
                    "call_id": format!("c-{i}"), "at": at, "endpoint": "vendor",
                    "variant": "AllTraffic", "allocation": "busy_time",
                    "usage": usage, "lines": lines, "cost_usd": usd.to_string(),
                    "currency": "USD", "running_client_usd": "0",
                    "running_endpoint_usd": "0"
                }))
                .unwrap(),
            );
        }
        // (400 + 100) × 0.002 = 1 USD and (600 + 300) × 0.002 = 1.8 USD; the model
        // error's and the cancelled call's token lines have no count and charge
        // nothing: 2.8 USD in the hour.
        assert_eq!(receipts_usd, d("2.8"));
        let totals = UsageTotals::from_receipts(&receipts).unwrap();
        let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
        let plan = Plan::from(PerTokenPlan::per_million_tokens(d("2000"), d("2000")).unwrap());
        let comparison =
            Comparison::compute(&profile, &[plan], &RateTable::new("us-east-1")).unwrap();
        // 2.8 USD an hour × 24 = 67.2 USD a day: 2 × 24 = 48 answered calls of
        // (500 + 200) × 0.002 = 1.4 USD each (not 4 × 24 = 96 calls × 1.4 = 134.4).
        assert_eq!(
            comparison.plans[0].cost_usd,
            receipts_usd * Decimal::from(24)
        );
        assert_eq!(comparison.plans[0].cost_usd, d("67.2"));
    }

    /// Serverless bills data processed in and out; a size never stated is no size:
    /// the data is left out of the cost (1,000 calls × 0.8 s × 0.00006 USD/s =
    /// 0.048 USD, compute alone) and the row says so, naming the rate it holds.
    #[test]
    fn data_processed_without_a_stated_size_is_noted_unpriced_with_its_rate() {
        use crate::compare::ServerlessPlan;
        let rates = RateTable::new("us-east-1")
            .with_rate(PriceKey::serverless("us-east-1", 3), d("0.00006"))
            .unwrap()
            .with_rate(
                PriceKey::DataIn {
                    region: "us-east-1".into(),
                },
                d("0.016"),
            )
            .unwrap()
            .with_rate(
                PriceKey::DataOut {
                    region: "us-east-1".into(),
                },
                d("0.016"),
            )
            .unwrap();
        let plans = [Plan::from(ServerlessPlan::new(3072).unwrap())];
        let builder = || {
            UsageProfile::builder()
                .calls_per_period(1_000)
                .mean_latency(Duration::from_millis(800))
        };
        let none = Comparison::compute(&builder().build().unwrap(), &plans, &rates).unwrap();
        assert_eq!(none.plans[0].cost_usd, d("0.048"));
        assert!(
            none.plans[0].notes.iter().any(|n| n
                == "data processed not priced: no payload sizes stated (AWS bills 0.016 \
                    USD/GB in and out)"),
            "{:?}",
            none.plans[0].notes
        );
        // 1 MiB in stated: 1,000 × 2^20 / 2^30 GB × 0.016 = 0.015625 USD more; the
        // response size is still unstated.
        let profile = builder().bytes_in_per_call(1_048_576).build().unwrap();
        let some = Comparison::compute(&profile, &plans, &rates).unwrap();
        assert_eq!(some.plans[0].cost_usd, d("0.063625"));
        assert!(
            some.plans[0].notes.iter().any(|n| n
                == "data out not priced: no response size stated (AWS bills 0.016 USD/GB out)"),
            "{:?}",
            some.plans[0].notes
        );
        // Both stated, 0 out included: nothing to note.
        let profile = builder()
            .bytes_in_per_call(1_048_576)
            .bytes_out_per_call(0)
            .build()
            .unwrap();
        let all = Comparison::compute(&profile, &plans, &rates).unwrap();
        assert!(
            !all.plans[0].notes.iter().any(|n| n.contains("not priced")),
            "{:?}",
            all.plans[0].notes
        );
    }

    /// A per-token price bills both directions: an output count never stated is
    /// not zero. At 3 and 15 USD per million tokens, 100,000 calls of 500 tokens in
    /// and 200 out are billed 100,000 × (500 × 0.000003 + 200 × 0.000015)
    /// = 100,000 × (0.0015 + 0.003) = 450 USD; pricing the unstated 200 as 0 gave
    /// 100,000 × 0.0015 = 150 USD. Refused, naming the figure; a stated 0 is priced.
    #[test]
    fn a_per_token_plan_refuses_a_priced_direction_never_stated() {
        let plan = Plan::from(PerTokenPlan::per_million_tokens(d("3"), d("15")).unwrap());
        let unstated = UsageProfile::builder()
            .calls_per_period(100_000)
            .tokens_in_per_call(500)
            .build()
            .unwrap();
        let rates = RateTable::new("us-east-1");
        match Comparison::compute(&unstated, std::slice::from_ref(&plan), &rates) {
            Err(CompareError::ProfileLacks { what, hint, .. }) => {
                assert_eq!(what, "output tokens per call");
                assert!(hint.contains("tokens_out_per_call"), "{hint}");
            }
            other => panic!("expected ProfileLacks, got {other:?}"),
        }

        // Stated as none (an embedding model answers no tokens): 100,000 × 500 ×
        // 0.000003 = 150 USD.
        let stated = UsageProfile::builder()
            .calls_per_period(100_000)
            .tokens_in_per_call(500)
            .tokens_out_per_call(0)
            .build()
            .unwrap();
        let comparison = Comparison::compute(&stated, &[plan], &rates).unwrap();
        assert_eq!(comparison.plans[0].cost_usd, d("150"));
    }

    /// 800 ms calls against one ml.m5.xlarge (0.23 USD/h) and 0.05 USD per 1,000
    /// calls, over a month (730 h), the instance stated `m` calls per instance.
    fn m5_against_pay_per_use(calls: u64, per_1000: &str, m: Option<u32>) -> Comparison {
        let profile = UsageProfile::builder()
            .calls_per_period(calls)
            .mean_latency(Duration::from_millis(800))
            .build()
            .unwrap();
        let mut instance = InstancePlan::new("ml.m5.xlarge", 1).unwrap();
        if let Some(m) = m {
            instance = instance.with_max_concurrency_per_instance(m).unwrap();
        }
        let plans = [
            Plan::from(instance),
            Plan::from(PerInferencePlan::per_thousand_calls(d(per_1000)).unwrap()),
        ];
        Comparison::compute(&profile, &plans, &m5_rates()).unwrap()
    }

    #[test]
    fn an_instance_over_capacity_is_not_the_cheapest_and_breaks_even_only_beyond_it() {
        let comparison = m5_against_pay_per_use(4_000_000, "0.05", None);
        // One instance serving one call at a time: 730 h × 3,600 s = 2,628,000 s,
        // ÷ 0.8 s = 3,285,000 calls a month. 4,000,000 calls need 3,200,000 s:
        // busy 3,200,000 / 2,628,000 = 121.77 %, over capacity.
        let instance = comparison.plan("ml.m5.xlarge x1").unwrap();
        assert_eq!(instance.capacity_calls, Some(d("3285000")));
        assert!(instance.over_capacity);
        assert_eq!(instance.utilisation.unwrap().round_dp(4), d("1.2177"));
        // 730 × 0.23 = 167.90 against 4,000,000 × 0.00005 = 200.00: the instance
        // costs less but cannot serve the calls; pay per use is the cheapest, and the
        // instance's row comes after it, 167.90 − 200 = −32.10 from it.
        assert_eq!(instance.cost_usd, d("167.9"));
        assert_eq!(comparison.cheapest.as_deref(), Some("pay per use"));
        assert_eq!(comparison.plans[0].plan.name, "pay per use");
        assert_eq!(instance.difference_to_cheapest_usd, d("-32.1"));
        assert!(
            instance.notes.iter().any(|n| n
                == "over capacity: serves at most 3,285,000 calls per month (1 instance for \
                    730 h at 1 call per instance, 800 ms a call), fewer than the 4,000,000 to \
                    serve (busy 121.8% of the time it can serve); add instances, or calls per \
                    instance if the model server serves them side by side"),
            "{:?}",
            instance.notes
        );
        // They cost the same at 167.90 / 0.00005 = 3,358,000 calls, more than the
        // instance serves.
        let be = comparison
            .break_even("ml.m5.xlarge x1", "pay per use")
            .unwrap();
        assert_eq!(be.points[0].calls_per_period, d("3358000"));
        assert_eq!(be.points[0].beyond_capacity, ["ml.m5.xlarge x1"]);
        assert_eq!(be.capacity_calls["ml.m5.xlarge x1"], d("3285000"));
        assert_eq!(
            be.summary,
            "ml.m5.xlarge x1 would be cheaper only above 3,358,000 calls per month, beyond \
             the 3,285,000 it can serve at 1 call per instance: pay per use is cheaper at \
             every volume it can serve"
        );
        let table = comparison.to_string();
        assert!(
            table.contains(
                "pay per use          200.00           0.0500       cheapest  stated\n\
                 ml.m5.xlarge x1      167.90           0.0420  over capacity  override\n"
            ),
            "{table}"
        );
    }

    #[test]
    fn four_calls_per_instance_serve_four_times_the_calls_at_the_same_cost() {
        let comparison = m5_against_pay_per_use(4_000_000, "0.05", Some(4));
        // 730 h × 3,600 s × 4 calls at once ÷ 0.8 s = 13,140,000 calls a month;
        // 4,000,000 calls busy 3,200,000 s of 10,512,000: 30.44 %.
        let instance = comparison.plan("ml.m5.xlarge x1").unwrap();
        assert_eq!(instance.capacity_calls, Some(d("13140000")));
        assert!(!instance.over_capacity);
        assert_eq!(instance.utilisation.unwrap().round_dp(4), d("0.3044"));
        // Still 730 × 0.23 = 167.90, below pay per use's 200.00: the cheapest.
        assert_eq!(instance.cost_usd, d("167.9"));
        assert_eq!(comparison.cheapest.as_deref(), Some("ml.m5.xlarge x1"));
        // At 3,358,000 calls: 3,358,000 × 0.8 s ÷ 10,512,000 s = 25.56 % busy.
        let be = &comparison.break_evens[0];
        assert!(be.points[0].beyond_capacity.is_empty());
        assert_eq!(
            be.summary,
            "ml.m5.xlarge x1 is cheaper above 3,358,000 calls per month, up to the \
             13,140,000 it can serve at 4 calls per instance (ml.m5.xlarge x1 at 25.6% \
             utilisation); pay per use below"
        );
    }

    #[test]
    fn an_instance_within_capacity_is_the_cheapest_as_before() {
        // 3,000,000 calls × 0.8 s = 2,400,000 s of the 2,628,000 one instance serves
        // (91.32 % busy): within its 3,285,000 calls. 730 × 0.23 = 167.90 against
        // 3,000,000 × 0.00006 = 180.00 per use: the instance is the cheapest.
        let comparison = m5_against_pay_per_use(3_000_000, "0.06", None);
        let instance = comparison.plan("ml.m5.xlarge x1").unwrap();
        assert!(!instance.over_capacity);
        assert_eq!(instance.utilisation.unwrap().round_dp(4), d("0.9132"));
        assert_eq!(comparison.cheapest.as_deref(), Some("ml.m5.xlarge x1"));
        assert_eq!(
            comparison
                .plan("pay per use")
                .unwrap()
                .difference_to_cheapest_usd,
            d("12.1")
        );
        // Break-even 167.90 / 0.00006 = 2,798,333.33 calls, within capacity
        // (2,798,333.33 × 0.8 ÷ 2,628,000 = 85.19 % busy); the range the instance is
        // cheaper in ends at the 3,285,000 calls it serves.
        let be = &comparison.break_evens[0];
        assert_eq!(be.points[0].calls_per_period.round_dp(2), d("2798333.33"));
        assert!(be.points[0].beyond_capacity.is_empty());
        assert_eq!(
            be.summary,
            "ml.m5.xlarge x1 is cheaper above 2,798,333 calls per month, up to the 3,285,000 \
             it can serve at 1 call per instance (ml.m5.xlarge x1 at 85.2% utilisation); pay \
             per use below"
        );
    }

    #[test]
    fn without_a_latency_an_instances_capacity_is_not_checked_and_says_so() {
        // 730 × 0.23 = 167.90 < 4,000,000 × 0.00005 = 200.00, however long the calls.
        let profile = UsageProfile::builder()
            .calls_per_period(4_000_000)
            .build()
            .unwrap();
        let plans = [
            Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
            savings("0.1", None),
            Plan::from(PerInferencePlan::per_thousand_calls(d("0.05")).unwrap()),
        ];
        let comparison = Comparison::compute(&profile, &plans, &m5_rates()).unwrap();
        for name in ["ml.m5.xlarge x1", "savings plan ml.m5.xlarge x1 (1 yr)"] {
            let row = comparison.plan(name).unwrap();
            assert_eq!(row.capacity_calls, None);
            assert!(!row.over_capacity);
            assert!(
                row.notes.iter().any(|n| n
                    == "capacity not checked (no latency given): how many calls the \
                        instances serve depends on each call's time"),
                "{:?}",
                row.notes
            );
        }
        // 0.1 × 730 = 73 for the savings plan: the cheapest, as before.
        assert_eq!(
            comparison.cheapest.as_deref(),
            Some("savings plan ml.m5.xlarge x1 (1 yr)")
        );
        assert_eq!(
            comparison
                .break_even("ml.m5.xlarge x1", "pay per use")
                .unwrap()
                .summary,
            "ml.m5.xlarge x1 is cheaper above 3,358,000 calls per month; pay per use below"
        );
    }

    /// 500,000,000 calls of 1.2 s a month on serverless 2 GB (0.00004 USD/s on
    /// demand), against 0.05 USD per 1,000 calls.
    #[test]
    fn serverless_beyond_its_maximum_concurrency_is_over_capacity() {
        use crate::compare::ServerlessPlan;
        let profile = UsageProfile::builder()
            .calls_per_period(500_000_000)
            .mean_latency(Duration::from_millis(1200))
            .build()
            .unwrap();
        let rates = with_2_gb_serverless_rates(RateTable::new("us-east-1"));
        let serverless = ServerlessPlan::new(2048).unwrap();
        let pay_per_use = Plan::from(PerInferencePlan::per_thousand_calls(d("0.05")).unwrap());
        let plans = [Plan::from(serverless.clone()), pay_per_use.clone()];
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        // Mean concurrency 500,000,000 × 1.2 s ÷ (730 × 3,600 s = 2,628,000 s) =
        // 228.3, above the 200 a serverless endpoint serves at once: at most
        // 200 × 2,628,000 s ÷ 1.2 s = 438,000,000 calls a month.
        let row = comparison.plan("serverless 2048 MB").unwrap();
        assert_eq!(row.capacity_calls, Some(d("438000000")));
        assert!(row.over_capacity);
        assert!(
            row.notes.iter().any(|n| n
                == "over capacity: serves at most 438,000,000 calls per month at its maximum \
                    concurrency of 200 at 1200 ms a call, fewer than the 500,000,000 to serve \
                    (a mean concurrency of 228.3): the calls beyond it would be throttled, not \
                    served"),
            "{:?}",
            row.notes
        );
        // 500,000,000 × 1.2 × 0.00004 = 24,000 against 500,000,000 × 0.00005 =
        // 25,000: pay per use is the cheapest that can serve them.
        assert_eq!(row.cost_usd, d("24000"));
        assert_eq!(comparison.cheapest.as_deref(), Some("pay per use"));
        assert_eq!(
            comparison.break_evens[0].summary,
            "serverless 2048 MB is cheaper at every volume up to the 438,000,000 it can serve \
             at its maximum concurrency of 200: it never breaks even with pay per use \
             (1,000.00 USD less at 500,000,000 calls per month)"
        );

        // Alone, or with 2 provisioned, no plan can serve them.
        let provisioned = serverless.with_provisioned_concurrency(2).unwrap();
        let plans = [Plan::from(provisioned)];
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        assert_eq!(comparison.cheapest, None);
        let row = &comparison.plans[0];
        assert!(row.over_capacity);
        // 2 provisioned serve 2 × 2,628,000 s ÷ 1.2 s = 4,380,000 calls: busy
        // 600,000,000 s ÷ 5,256,000 s = 11,415.5 %; AWS bills the calls beyond on
        // demand, up to what 200 at once serve.
        assert!(
            row.notes.iter().any(|n| n
                == "busy 11,415.5% of the provisioned concurrency's time: the calls beyond \
                    it are served and billed on demand up to the endpoint's maximum \
                    concurrency of 200 (438,000,000 calls per month); provision more to pay \
                    the inference rate"),
            "{:?}",
            row.notes
        );
        let table = comparison.to_string();
        assert!(
            table.contains(
                "No plan can serve 500,000,000 calls per month: each is over capacity (see the \
                 notes)"
            ),
            "{table}"
        );
        let row = table.lines().find(|l| l.starts_with("serverless")).unwrap();
        assert!(
            row.contains(" over capacity ") && !row.contains(" cheapest "),
            "{table}"
        );
    }

    #[test]
    fn savings_plan_hours_beyond_the_period_are_refused() {
        let profile = UsageProfile::builder()
            .period(Period::Day)
            .calls_per_period(1_000)
            .build()
            .unwrap();
        let err =
            Comparison::compute(&profile, &[savings("0.1", Some("25"))], &m5_rates()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance hours per period is out of range (got 25): an instance runs at most 24 \
             hours in a day"
        );
    }
}
