//! The ways of paying for the same work.

use crate::pricing::PriceKey;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::{CompareError, Period, check};

/// One way of paying, with a name that labels its row, its break-even points and its
/// line on the chart.
///
/// Build one from a plan model; each model validates its inputs when built:
///
/// ```
/// use sagemeter::compare::{Period, PerInferencePlan, Plan, SubscriptionPlan};
/// use sagemeter::Decimal;
///
/// let pay_per_use = Plan::from(PerInferencePlan::per_thousand_calls(Decimal::new(125, 1))?);
/// let subscription = Plan::from(
///     SubscriptionPlan::builder()
///         .fee_usd(Decimal::from(500))
///         .period(Period::Month)
///         .build()?,
/// )
/// .named("vendor subscription");
/// assert_eq!(pay_per_use.name, "pay per use");
/// assert_eq!(subscription.name, "vendor subscription");
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Label of the plan in tables, break-even sentences and charts.
    pub name: String,
    /// How the plan charges.
    #[serde(flatten)]
    pub model: PlanModel,
}

impl Plan {
    /// Renames the plan (names must be distinct within one comparison).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the model's inputs again (builders already do; deserialised plans need it).
    pub fn validate(&self) -> Result<(), CompareError> {
        if self.name.trim().is_empty() {
            return Err(CompareError::Inconsistent {
                problem: "a plan has an empty name".into(),
                hint: "name it with Plan::named(..)".into(),
            });
        }
        match &self.model {
            PlanModel::Instance(p) => p.validate(),
            PlanModel::Serverless(p) => p.validate(),
            PlanModel::PerInference(p) => p.validate(),
            PlanModel::PerToken(p) => p.validate(),
            PlanModel::Subscription(p) => p.validate(),
            PlanModel::SavingsPlan(p) => p.validate(),
        }
    }
}

/// How a plan charges. See each model for its cost formula.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanModel {
    /// On-demand real-time endpoint on instances.
    Instance(InstancePlan),
    /// Serverless inference endpoint.
    Serverless(ServerlessPlan),
    /// A price per call.
    PerInference(PerInferencePlan),
    /// A price per input and output token.
    PerToken(PerTokenPlan),
    /// A fee per period, optionally with included calls and an overage rate.
    Subscription(SubscriptionPlan),
    /// Instances under a savings-plan style hourly commitment.
    SavingsPlan(SavingsPlan),
}

impl PlanModel {
    /// Lower-case kind, as in the JSON `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            PlanModel::Instance(_) => "instance",
            PlanModel::Serverless(_) => "serverless",
            PlanModel::PerInference(_) => "per_inference",
            PlanModel::PerToken(_) => "per_token",
            PlanModel::Subscription(_) => "subscription",
            PlanModel::SavingsPlan(_) => "savings_plan",
        }
    }
}

macro_rules! plan_from {
    ($model:ident, $variant:ident) => {
        impl From<$model> for Plan {
            fn from(model: $model) -> Plan {
                Plan {
                    name: model.default_name(),
                    model: PlanModel::$variant(model),
                }
            }
        }
    };
}
plan_from!(InstancePlan, Instance);
plan_from!(ServerlessPlan, Serverless);
plan_from!(PerInferencePlan, PerInference);
plan_from!(PerTokenPlan, PerToken);
plan_from!(SubscriptionPlan, Subscription);
plan_from!(SavingsPlan, SavingsPlan);

/// An on-demand real-time endpoint: `count × usd_per_hour × hours`, busy or not,
/// plus its ML storage when the volume size is given, plus data processed in and out
/// per GB (2^30 bytes).
///
/// The instance runs the whole period unless
/// [`with_hours_per_period`](InstancePlan::with_hours_per_period) says otherwise
/// (e.g. an endpoint deleted at night). The hourly rate comes from a
/// [`PriceSource`](crate::pricing::PriceSource) (`PriceKey::Hosting`) or is stated in
/// a [`RateTable`](super::RateTable).
///
/// ML storage (the volume attached to each instance, the endpoint configuration's
/// `VolumeSizeInGB`) is billed per GB-month; with
/// [`with_volume_gb`](InstancePlan::with_volume_gb) it adds
/// `volume_gb × count × usd_per_gb_month × hours / 730` (`PriceKey::Storage`, a month
/// being 730 hours). Without a volume size no storage is charged: AWS bills it for
/// instances that have a volume, so give the size to compare the whole bill.
///
/// The instances serve at most `count × hours × 3,600 s × m ÷ mean latency` calls
/// per period, `m` being how many calls one instance serves at full speed
/// ([`with_max_concurrency_per_instance`](InstancePlan::with_max_concurrency_per_instance),
/// default 1): its capacity, checked when compared.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePlan {
    /// SageMaker instance type, with the `ml.` prefix.
    pub instance_type: String,
    /// Instances behind the endpoint.
    pub count: u32,
    /// Hours each instance runs in one period; `None` = always on (the whole period).
    pub hours_per_period: Option<Decimal>,
    /// ML storage volume per instance, in GB; `None` = no storage charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_gb: Option<u32>,
    /// How many calls one instance serves at full speed, side by side (the client's
    /// `max_concurrency_per_instance`); `None` = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency_per_instance: Option<u32>,
}

impl InstancePlan {
    /// `count` always-on instances of `instance_type`.
    pub fn new(instance_type: impl Into<String>, count: u32) -> Result<Self, CompareError> {
        let plan = InstancePlan {
            instance_type: instance_type.into(),
            count,
            hours_per_period: None,
            volume_gb: None,
            max_concurrency_per_instance: None,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Instances run only `hours` per period (at most the period's hours, checked
    /// when compared).
    pub fn with_hours_per_period(mut self, hours: Decimal) -> Result<Self, CompareError> {
        self.hours_per_period = Some(hours);
        self.validate()?;
        Ok(self)
    }

    /// Each instance has an ML storage volume of `gb` GB (1 to 512), billed per
    /// GB-month for the hours the instances run.
    pub fn with_volume_gb(mut self, gb: u32) -> Result<Self, CompareError> {
        self.volume_gb = Some(gb);
        self.validate()?;
        Ok(self)
    }

    /// Each instance serves `calls` calls at full speed, side by side (at least 1;
    /// default 1), as the client's
    /// [`max_concurrency_per_instance`](crate::ClientBuilder::max_concurrency_per_instance)
    /// means it: set it to the model server's batch size or worker count. The
    /// instances' capacity grows with it; their cost does not.
    pub fn with_max_concurrency_per_instance(mut self, calls: u32) -> Result<Self, CompareError> {
        self.max_concurrency_per_instance = Some(calls);
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), CompareError> {
        check::instance(&self.instance_type, self.count)?;
        check_hours_per_period(self.hours_per_period)?;
        check_volume_gb(self.volume_gb)?;
        check_max_concurrency(self.max_concurrency_per_instance)
    }

    fn default_name(&self) -> String {
        format!("{} x{}", self.instance_type, self.count)
    }
}

/// Calls one instance serves at full speed, when given: at least 1.
fn check_max_concurrency(calls: Option<u32>) -> Result<(), CompareError> {
    match calls {
        Some(0) => Err(CompareError::NotPositive {
            what: "max concurrency per instance",
            value: "0".into(),
            hint: "an instance serves at least 1 call at a time; leave it unset for 1".into(),
        }),
        _ => Ok(()),
    }
}

/// Hours instances run per period, when given: positive and at most a year's (the
/// period's own hours are checked when compared).
fn check_hours_per_period(hours: Option<Decimal>) -> Result<(), CompareError> {
    if let Some(hours) = hours {
        check::positive(
            "instance hours per period",
            hours,
            "an endpoint that never runs costs nothing and serves nothing; leave hours \
             unset for an always-on endpoint",
        )?;
        check::at_most(
            "instance hours per period",
            hours,
            Period::Year.hours(),
            "at most 8,760 hours (a year)",
        )?;
    }
    Ok(())
}

/// An ML storage volume size, when given: 1 to 512 GB, as SageMaker accepts.
fn check_volume_gb(gb: Option<u32>) -> Result<(), CompareError> {
    match gb {
        Some(gb) if !(1..=MAX_VOLUME_GB).contains(&gb) => Err(CompareError::OutOfRange {
            what: "ML storage volume (GB)",
            value: gb.to_string(),
            hint: "an endpoint's instance volume is 1 to 512 GB (VolumeSizeInGB); leave it \
                   unset to charge no storage"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// The largest ML storage volume of a hosting instance SageMaker accepts.
const MAX_VOLUME_GB: u32 = 512;

/// A serverless endpoint: billed compute seconds × the per-second rate of its memory
/// size, plus data processed in and out.
///
/// Billed seconds per call are the profile's mean latency rounded up to the
/// millisecond. With provisioned concurrency `n`, the standing charge `n × the
/// per-second provisioned rate × the period's seconds` is paid busy or not, and
/// calls are billed at its inference-duration rate up to what `n` can serve with
/// the calls spread evenly over the period (`n × the period's seconds ÷ the mean
/// latency`); AWS bills the calls beyond it at the on-demand serverless rate, up to
/// the endpoint's maximum concurrency. Peaks spill over sooner, so the plan's cost
/// is a lower bound for uneven traffic.
///
/// A serverless endpoint serves at most its maximum concurrency `c` of calls at once
/// (`MaxConcurrency` in its endpoint configuration, 1 to
/// [`MAX_SERVERLESS_CONCURRENCY`] (200); unset here: 200, AWS's limit): at most
/// `c × the period's seconds ÷ the mean latency` calls per period, its capacity,
/// checked when compared (calls beyond it are throttled, not served).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerlessPlan {
    /// Memory size in MB: 1024, 2048, 3072, 4096, 5120 or 6144.
    pub memory_mb: u32,
    /// Provisioned concurrency, when configured (1 to the maximum concurrency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_concurrency: Option<u32>,
    /// The endpoint's maximum concurrency (`MaxConcurrency`, 1 to 200); `None` =
    /// 200, the most AWS allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// The most calls a serverless endpoint serves at once: AWS's limit on its maximum
/// concurrency (`MaxConcurrency`, 1 to 200).
pub const MAX_SERVERLESS_CONCURRENCY: u32 = 200;

impl ServerlessPlan {
    /// A serverless endpoint with `memory_mb` of memory.
    pub fn new(memory_mb: u32) -> Result<Self, CompareError> {
        let plan = ServerlessPlan {
            memory_mb,
            provisioned_concurrency: None,
            max_concurrency: None,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// With `n` provisioned concurrency (1 to the maximum concurrency).
    pub fn with_provisioned_concurrency(mut self, n: u32) -> Result<Self, CompareError> {
        self.provisioned_concurrency = Some(n);
        self.validate()?;
        Ok(self)
    }

    /// With a maximum concurrency of `n` (1 to 200), the endpoint configuration's
    /// `MaxConcurrency`: the most calls it serves at once, which bounds its capacity.
    pub fn with_max_concurrency(mut self, n: u32) -> Result<Self, CompareError> {
        self.max_concurrency = Some(n);
        self.validate()?;
        Ok(self)
    }

    /// The most calls it serves at once: its maximum concurrency, 200 when unset.
    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency.unwrap_or(MAX_SERVERLESS_CONCURRENCY)
    }

    /// The memory size in GB, as the price list keys it (`memory_mb / 1024`).
    pub fn memory_gb(&self) -> u32 {
        self.memory_mb / 1024
    }

    /// The rate of its calls' compute time in `region`: the on-demand serverless
    /// rate, or with provisioned concurrency its inference-duration rate.
    pub fn duration_key(&self, region: &str) -> PriceKey {
        let (region, memory_gb) = (region.to_owned(), self.memory_gb());
        match self.provisioned_concurrency {
            Some(_) => PriceKey::ProvisionedConcurrencyUsage { region, memory_gb },
            None => PriceKey::Serverless { region, memory_gb },
        }
    }

    /// The rate of its provisioned concurrency's standing charge (per second
    /// provisioned) in `region`, when it has some.
    pub fn standing_key(&self, region: &str) -> Option<PriceKey> {
        self.provisioned_concurrency
            .map(|_| PriceKey::ProvisionedConcurrency {
                region: region.to_owned(),
                memory_gb: self.memory_gb(),
            })
    }

    /// The rate AWS bills calls beyond its provisioned concurrency at in `region`
    /// (the on-demand serverless rate), when it has some.
    pub fn beyond_provisioned_key(&self, region: &str) -> Option<PriceKey> {
        self.provisioned_concurrency
            .map(|_| PriceKey::serverless(region, self.memory_gb()))
    }

    /// Every rate the plan is priced with in `region` (data processed aside).
    pub(crate) fn compute_keys(&self, region: &str) -> Vec<PriceKey> {
        let mut keys = vec![self.duration_key(region)];
        keys.extend(self.standing_key(region));
        keys.extend(self.beyond_provisioned_key(region));
        keys
    }

    fn validate(&self) -> Result<(), CompareError> {
        if self.memory_mb == 0 || !self.memory_mb.is_multiple_of(1024) || self.memory_mb > 6144 {
            return Err(CompareError::OutOfRange {
                what: "serverless memory (MB)",
                value: self.memory_mb.to_string(),
                hint: "SageMaker serverless memory is 1024, 2048, 3072, 4096, 5120 or 6144 MB"
                    .into(),
            });
        }
        if let Some(n) = self
            .max_concurrency
            .filter(|n| !(1..=MAX_SERVERLESS_CONCURRENCY).contains(n))
        {
            return Err(CompareError::OutOfRange {
                what: "serverless maximum concurrency",
                value: n.to_string(),
                hint: "a serverless endpoint's maximum concurrency is 1 to 200; leave it unset \
                       for 200"
                    .into(),
            });
        }
        let max = self.max_concurrency();
        if let Some(n) = self
            .provisioned_concurrency
            .filter(|n| !(1..=max).contains(n))
        {
            return Err(CompareError::OutOfRange {
                what: "provisioned concurrency",
                value: n.to_string(),
                hint: format!(
                    "a serverless variant's provisioned concurrency is 1 to its maximum \
                     concurrency ({max}); leave it unset for none"
                ),
            });
        }
        Ok(())
    }

    fn default_name(&self) -> String {
        match self.provisioned_concurrency {
            Some(n) => format!("serverless {} MB, {n} provisioned", self.memory_mb),
            None => format!("serverless {} MB", self.memory_mb),
        }
    }
}

/// Pay per use at an all-inclusive price: `C = X × U` for a price `X` per call and
/// `U` calls.
///
/// From metered calls, the fee is charged for the calls answered with HTTP 2XX, as
/// AWS Marketplace charges inferences: `C = X × s × U` for `U` calls made, `s`
/// the profile's [`answered_per_call`](super::UsageProfile::answered_per_call)
/// (at the profile's own volume, `X` × its
/// [`answered_calls_per_period`](super::UsageProfile::answered_calls_per_period));
/// a subscription's included calls count the same calls.
///
/// All-inclusive: no instance, serverless or data charges are added. `X` is the
/// whole price of a call: a third-party API's (a model provider's), or an all-in
/// price stated per call. It is not an AWS Marketplace model package's
/// per-inference fee alone: AWS bills that fee on top of the SageMaker
/// instance-hours (and data processing) of the endpoint the package runs on. At
/// 0.50 USD per 1,000 inferences on one ml.m5.xlarge (0.23 USD an hour), 100,000
/// calls a month are 100 × 0.50 + 730 × 0.23 = 50.00 + 167.90 = 217.90 USD (and
/// data), not 50.00. No plan adds the two: such a package costs this plan's cost
/// plus an [`InstancePlan`]'s at the same volume, and the break-even points of a
/// comparison do not cover that sum.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerInferencePlan {
    /// Price of one call.
    pub usd_per_call: Decimal,
}

impl PerInferencePlan {
    /// `usd_per_call` per call.
    pub fn per_call(usd_per_call: Decimal) -> Result<Self, CompareError> {
        let plan = PerInferencePlan { usd_per_call };
        plan.validate()?;
        Ok(plan)
    }

    /// `usd_per_1000_calls` per 1,000 calls (stored per call: `/ 1000`).
    pub fn per_thousand_calls(usd_per_1000_calls: Decimal) -> Result<Self, CompareError> {
        check::usd(
            "price per 1,000 calls (USD)",
            usd_per_1000_calls,
            "a free plan needs no comparison; give the price the provider charges per 1,000 calls",
        )?;
        Self::per_call(check::per_unit(
            "price per 1,000 calls (USD)",
            usd_per_1000_calls,
            1000,
        )?)
    }

    fn validate(&self) -> Result<(), CompareError> {
        check::usd(
            "price per call (USD)",
            self.usd_per_call,
            "a free plan needs no comparison; give the price the provider charges per call",
        )
    }

    fn default_name(&self) -> String {
        "pay per use".into()
    }
}

/// Per token: `tokens_in × usd_per_input_token + tokens_out × usd_per_output_token`
/// per call. All-inclusive, like [`PerInferencePlan`].
///
/// From metered calls, the tokens charged are those reported, as the receipts
/// charge them: a receipt charges the tokens its HTTP 2XX answer reported, and a
/// call not answered (a model error, a failed asynchronous inference, a call
/// cancelled before its answer came: a lower bound) has token lines of 0 tokens at
/// $0. A ledger's token means are over the calls that reported them, and are
/// charged on the calls whose answer could carry tokens, the profile's
/// [`token_calls`](super::UsageProfile::token_calls): an answered call that
/// reported no count is taken at the mean, never as 0 tokens, and a mean stated in
/// place of the ledger's is charged on the same calls. For `U` calls made that is
/// `c × tokens × price` a call, `c` their share, the curve assuming it holds at
/// every volume; at the profile's own volume, those calls as metered. A profile
/// that does not count the calls that reported tokens (stated by hand, or totals
/// without [`UsageTotals::calls_with_tokens_in`](super::UsageTotals::calls_with_tokens_in))
/// states a mean over every call, charged on every call: the tokens stated, whole.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerTokenPlan {
    /// Price of one input (prompt) token.
    pub usd_per_input_token: Decimal,
    /// Price of one output (completion) token.
    pub usd_per_output_token: Decimal,
}

impl PerTokenPlan {
    /// Prices per single token. Either may be zero, not both.
    pub fn new(
        usd_per_input_token: Decimal,
        usd_per_output_token: Decimal,
    ) -> Result<Self, CompareError> {
        let plan = PerTokenPlan {
            usd_per_input_token,
            usd_per_output_token,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Prices per million tokens, as LLM providers quote them (stored per token).
    pub fn per_million_tokens(
        usd_per_million_input: Decimal,
        usd_per_million_output: Decimal,
    ) -> Result<Self, CompareError> {
        for (what, v) in [
            (
                "price per million input tokens (USD)",
                usd_per_million_input,
            ),
            (
                "price per million output tokens (USD)",
                usd_per_million_output,
            ),
        ] {
            check::not_negative(what, v, "token prices are charges, not credits")?;
            check::at_most(what, v, Decimal::from(check::MAX_USD), "too large to model")?;
        }
        Self::new(
            check::per_unit(
                "price per million input tokens (USD)",
                usd_per_million_input,
                1_000_000,
            )?,
            check::per_unit(
                "price per million output tokens (USD)",
                usd_per_million_output,
                1_000_000,
            )?,
        )
    }

    fn validate(&self) -> Result<(), CompareError> {
        for (what, v) in [
            ("price per input token (USD)", self.usd_per_input_token),
            ("price per output token (USD)", self.usd_per_output_token),
        ] {
            check::not_negative(what, v, "token prices are charges, not credits")?;
            check::at_most(what, v, Decimal::from(check::MAX_USD), "too large to model")?;
        }
        if self.usd_per_input_token.is_zero() && self.usd_per_output_token.is_zero() {
            return Err(CompareError::NotPositive {
                what: "token prices (USD)",
                value: "0 in, 0 out".into(),
                hint: "give the price of input tokens, output tokens, or both".into(),
            });
        }
        Ok(())
    }

    fn default_name(&self) -> String {
        "per token".into()
    }
}

/// A subscription: `C = P × T` for a fee `P` per period and `T` periods, plus
/// `overage × max(0, U − included × T)` when it includes a quota of calls.
///
/// Without a quota the fee covers any number of calls. A quota needs an overage rate
/// (what a call above it costs). When the comparison period differs from the
/// subscription's, the fee and the quota are amortised by hours: a yearly fee counts
/// 1/12 per month, a monthly fee 12 times per year.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionPlan {
    /// Fee per period.
    pub fee_usd: Decimal,
    /// What the fee is charged for.
    pub period: Period,
    /// Calls included per period; `None` = unlimited.
    pub included_calls: Option<Decimal>,
    /// Price of each call above the included calls.
    pub overage_usd_per_call: Option<Decimal>,
}

impl SubscriptionPlan {
    /// A builder; the period defaults to a month.
    pub fn builder() -> SubscriptionPlanBuilder {
        SubscriptionPlanBuilder::default()
    }

    fn validate(&self) -> Result<(), CompareError> {
        check::usd(
            "subscription fee (USD)",
            self.fee_usd,
            "a subscription without a fee is pay per use: compare a per-inference plan \
             instead (PerInferencePlan; --per-call in the CLI)",
        )?;
        if let Some(included) = self.included_calls {
            check::not_negative(
                "included calls",
                included,
                "give how many calls the fee covers per period",
            )?;
            check::at_most(
                "included calls",
                included,
                Decimal::from(check::MAX_CALLS_PER_PERIOD),
                "at most 10^15 calls per period are modelled",
            )?;
        }
        if let Some(overage) = self.overage_usd_per_call {
            check::not_negative(
                "overage per call (USD)",
                overage,
                "give what a call above the included calls costs",
            )?;
            check::at_most(
                "overage per call (USD)",
                overage,
                Decimal::from(check::MAX_USD),
                "too large to model",
            )?;
        }
        match (self.included_calls, self.overage_usd_per_call) {
            (Some(included), None) => Err(CompareError::Inconsistent {
                problem: format!(
                    "the subscription includes {} calls per {} but has no overage rate",
                    included.normalize(),
                    self.period
                ),
                hint: "say what a call above the quota costs (overage_usd_per_call, CLI \
                       --overage), or drop the quota for an unlimited subscription"
                    .into(),
            }),
            (None, Some(_)) => Err(CompareError::Inconsistent {
                problem: "the subscription has an overage rate but no included calls".into(),
                hint: "set included_calls (0 if every call is charged)".into(),
            }),
            _ => Ok(()),
        }
    }

    fn default_name(&self) -> String {
        "subscription".into()
    }
}

/// Builds a [`SubscriptionPlan`].
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPlanBuilder {
    fee_usd: Option<Decimal>,
    period: Option<Period>,
    included_calls: Option<Decimal>,
    overage_usd_per_call: Option<Decimal>,
}

impl SubscriptionPlanBuilder {
    /// Fee per period (required).
    pub fn fee_usd(mut self, fee: Decimal) -> Self {
        self.fee_usd = Some(fee);
        self
    }

    /// The fee's period (default: a month).
    pub fn period(mut self, period: Period) -> Self {
        self.period = Some(period);
        self
    }

    /// Calls the fee covers per period.
    pub fn included_calls(mut self, calls: impl Into<Decimal>) -> Self {
        self.included_calls = Some(calls.into());
        self
    }

    /// Price of each call above the included calls. Setting it without
    /// [`included_calls`](Self::included_calls) means zero included calls.
    pub fn overage_usd_per_call(mut self, usd: Decimal) -> Self {
        self.overage_usd_per_call = Some(usd);
        self
    }

    /// The validated plan.
    pub fn build(self) -> Result<SubscriptionPlan, CompareError> {
        let fee_usd = self.fee_usd.ok_or_else(|| CompareError::Inconsistent {
            problem: "the subscription has no fee".into(),
            hint: "set fee_usd(..) (CLI --subscription)".into(),
        })?;
        let included_calls = match (self.included_calls, self.overage_usd_per_call) {
            (None, Some(_)) => Some(Decimal::ZERO),
            (included, _) => included,
        };
        let plan = SubscriptionPlan {
            fee_usd,
            period: self.period.unwrap_or(Period::Month),
            included_calls,
            overage_usd_per_call: self.overage_usd_per_call,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// The length of a savings-plan commitment.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavingsPlanTerm {
    /// One year.
    OneYear,
    /// Three years.
    ThreeYears,
}

impl SavingsPlanTerm {
    /// Years in the term.
    pub fn years(self) -> u32 {
        match self {
            SavingsPlanTerm::OneYear => 1,
            SavingsPlanTerm::ThreeYears => 3,
        }
    }

    /// Hours in the term (8,760 per year).
    pub fn hours(self) -> Decimal {
        Period::Year.hours() * Decimal::from(self.years())
    }
}

impl fmt::Display for SavingsPlanTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} yr", self.years())
    }
}

impl FromStr for SavingsPlanTerm {
    type Err = CompareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "1y" | "1yr" | "1year" | "1-year" | "one_year" => Ok(SavingsPlanTerm::OneYear),
            "3" | "3y" | "3yr" | "3years" | "3-year" | "three_years" => {
                Ok(SavingsPlanTerm::ThreeYears)
            }
            _ => Err(CompareError::OutOfRange {
                what: "savings plan term",
                value: s.to_string(),
                hint: "savings plans run for 1 or 3 years: use 1y or 3y".into(),
            }),
        }
    }
}

/// Instances under a savings-plan style commitment.
///
/// You commit to spend `commitment_usd_per_hour` every hour of the term, whatever you
/// use; usage is charged at the discounted rate `on_demand × (1 − discount)` against
/// the commitment, and usage beyond it on demand. With `c` the commitment,
/// `D = count × on-demand usd_per_hour`, `P` the period's hours (730 for a month) and
/// `H` the hours the instances run in it (`P` unless
/// [`SavingsPlanBuilder::hours_per_period`] says otherwise), one period costs
///
/// `c × P + max(0, D − c / (1 − discount)) × H`:
///
/// - the commitment is billed for every hour of the period, running or not;
/// - in an hour the instances run, if `D × (1 − discount) ≤ c` the commitment covers
///   all of it (the rest of the commitment is unused and lost); otherwise it covers
///   `c / (1 − discount)` of on-demand usage and the other
///   `D − c / (1 − discount)` is charged on demand, for the `H` running hours only.
///
/// Data processed in and out is charged as on demand (not discounted), and so is
/// ML storage when [`SavingsPlanBuilder::volume_gb`] gives the volume size: a
/// savings plan covers instance usage, not storage, which costs
/// `volume_gb × count × usd_per_gb_month × H / 730` as for an [`InstancePlan`].
/// The commitment binds for the whole term; the comparison prices one period of it
/// and each row notes the total commitment.
///
/// The instances' capacity is an [`InstancePlan`]'s, with
/// [`SavingsPlanBuilder::max_concurrency_per_instance`] calls per instance.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavingsPlan {
    /// SageMaker instance type, with the `ml.` prefix.
    pub instance_type: String,
    /// Instances the commitment pays for.
    pub count: u32,
    /// Spend committed per hour.
    pub commitment_usd_per_hour: Decimal,
    /// Discount on the on-demand rate, as a fraction (0.64 = 64 % off).
    pub discount: Decimal,
    /// Length of the commitment.
    pub term: SavingsPlanTerm,
    /// Hours the instances run in one period; `None` = always on (the whole period).
    /// The commitment is billed for every hour of the period either way.
    #[serde(default)]
    pub hours_per_period: Option<Decimal>,
    /// ML storage volume per instance, in GB; `None` = no storage charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_gb: Option<u32>,
    /// How many calls one instance serves at full speed, side by side; `None` = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency_per_instance: Option<u32>,
}

impl SavingsPlan {
    /// A builder; the term defaults to one year, the count to one instance.
    pub fn builder() -> SavingsPlanBuilder {
        SavingsPlanBuilder::default()
    }

    fn validate(&self) -> Result<(), CompareError> {
        check::instance(&self.instance_type, self.count)?;
        check_hours_per_period(self.hours_per_period)?;
        check_volume_gb(self.volume_gb)?;
        check_max_concurrency(self.max_concurrency_per_instance)?;
        check::usd(
            "savings plan commitment (USD per hour)",
            self.commitment_usd_per_hour,
            "a savings plan commits a spend per hour; give that spend",
        )?;
        if self.discount <= Decimal::ZERO || self.discount >= Decimal::ONE {
            return Err(CompareError::OutOfRange {
                what: "savings plan discount",
                value: self.discount.normalize().to_string(),
                hint: "give the discount on on-demand rates as a fraction between 0 and 1 \
                       (0.64 for 64 % off)"
                    .into(),
            });
        }
        Ok(())
    }

    fn default_name(&self) -> String {
        format!(
            "savings plan {} x{} ({})",
            self.instance_type, self.count, self.term
        )
    }
}

/// Builds a [`SavingsPlan`].
#[derive(Debug, Clone, Default)]
pub struct SavingsPlanBuilder {
    instance_type: Option<String>,
    count: Option<u32>,
    commitment_usd_per_hour: Option<Decimal>,
    discount: Option<Decimal>,
    term: Option<SavingsPlanTerm>,
    hours_per_period: Option<Decimal>,
    volume_gb: Option<u32>,
    max_concurrency_per_instance: Option<u32>,
}

impl SavingsPlanBuilder {
    /// The instance type the commitment pays for (required).
    pub fn instance_type(mut self, instance_type: impl Into<String>) -> Self {
        self.instance_type = Some(instance_type.into());
        self
    }

    /// Instances the commitment pays for (default 1).
    pub fn count(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    /// Committed spend per hour (required).
    pub fn commitment_usd_per_hour(mut self, usd: Decimal) -> Self {
        self.commitment_usd_per_hour = Some(usd);
        self
    }

    /// Discount on on-demand rates as a fraction, e.g. 0.64 (required).
    pub fn discount(mut self, fraction: Decimal) -> Self {
        self.discount = Some(fraction);
        self
    }

    /// Term (default one year).
    pub fn term(mut self, term: SavingsPlanTerm) -> Self {
        self.term = Some(term);
        self
    }

    /// Hours the instances run per period (default: always on; at most the period's
    /// hours, checked when compared). The commitment is still billed for every hour of
    /// the period; only usage beyond it shrinks with the running hours.
    pub fn hours_per_period(mut self, hours: Decimal) -> Self {
        self.hours_per_period = Some(hours);
        self
    }

    /// Each instance has an ML storage volume of `gb` GB (1 to 512), billed on demand
    /// per GB-month for the hours the instances run (default: no storage charged).
    pub fn volume_gb(mut self, gb: u32) -> Self {
        self.volume_gb = Some(gb);
        self
    }

    /// Each instance serves `calls` calls at full speed, side by side (at least 1;
    /// default 1), as for
    /// [`InstancePlan::with_max_concurrency_per_instance`].
    pub fn max_concurrency_per_instance(mut self, calls: u32) -> Self {
        self.max_concurrency_per_instance = Some(calls);
        self
    }

    /// The validated plan.
    pub fn build(self) -> Result<SavingsPlan, CompareError> {
        let missing = |what: &str, how: &str| CompareError::Inconsistent {
            problem: format!("the savings plan has no {what}"),
            hint: how.into(),
        };
        let plan = SavingsPlan {
            instance_type: self.instance_type.ok_or_else(|| {
                missing("instance type", "set instance_type(..) (CLI --instance)")
            })?,
            count: self.count.unwrap_or(1),
            commitment_usd_per_hour: self.commitment_usd_per_hour.ok_or_else(|| {
                missing(
                    "commitment",
                    "set commitment_usd_per_hour(..) (CLI --savings-plan)",
                )
            })?,
            discount: self
                .discount
                .ok_or_else(|| missing("discount", "set discount(..) (CLI --discount)"))?,
            term: self.term.unwrap_or(SavingsPlanTerm::OneYear),
            hours_per_period: self.hours_per_period,
            volume_gb: self.volume_gb,
            max_concurrency_per_instance: self.max_concurrency_per_instance,
        };
        plan.validate()?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_without_an_overage_rate_is_refused() {
        let err = SubscriptionPlan::builder()
            .fee_usd(Decimal::from(100))
            .included_calls(10_000)
            .build()
            .unwrap_err();
        assert!(err.to_string().starts_with(
            "the subscription includes 10000 calls per month but has no overage rate"
        ));
    }

    #[test]
    fn an_overage_rate_alone_means_no_included_calls() {
        let plan = SubscriptionPlan::builder()
            .fee_usd(Decimal::from(100))
            .overage_usd_per_call(Decimal::new(1, 3))
            .build()
            .unwrap();
        assert_eq!(plan.included_calls, Some(Decimal::ZERO));
    }

    #[test]
    fn a_price_too_small_to_hold_per_unit_is_refused_never_rounded() {
        // 1e-25 USD per million tokens is 1e-31 per token: past an exact decimal's 28
        // places, it would round to 0. 1e-22 is 1e-28 per token, the smallest held.
        let tiny = Decimal::new(1, 25);
        let err = PerTokenPlan::per_million_tokens(tiny, Decimal::ONE).unwrap_err();
        assert!(
            matches!(err, CompareError::OutOfRange { what, .. } if what.contains("input")),
            "{err}"
        );
        let plan = PerTokenPlan::per_million_tokens(Decimal::new(1, 22), Decimal::ONE).unwrap();
        assert_eq!(plan.usd_per_input_token, Decimal::new(1, 28));
        // 1e-27 per 1,000 calls is 1e-30 per call: refused for its size, not called zero.
        let err = PerInferencePlan::per_thousand_calls(Decimal::new(1, 27)).unwrap_err();
        assert!(matches!(err, CompareError::OutOfRange { .. }), "{err}");
        // 0.0125 per 1,000 is exactly 0.0000125 per call.
        let plan = PerInferencePlan::per_thousand_calls(Decimal::new(125, 4)).unwrap();
        assert_eq!(plan.usd_per_call, Decimal::new(125, 7));
    }

    #[test]
    fn serverless_memory_must_be_a_whole_number_of_gb_up_to_6() {
        assert!(ServerlessPlan::new(3072).is_ok());
        // Provisioned concurrency: 1 to 200.
        let plan = ServerlessPlan::new(2048).unwrap();
        assert!(plan.clone().with_provisioned_concurrency(200).is_ok());
        for n in [0, 201] {
            assert!(matches!(
                plan.clone().with_provisioned_concurrency(n),
                Err(CompareError::OutOfRange { .. })
            ));
        }
        for mb in [0, 1000, 7168] {
            assert!(matches!(
                ServerlessPlan::new(mb),
                Err(CompareError::OutOfRange { .. })
            ));
        }
    }

    #[test]
    fn plans_serialise_with_their_kind() {
        let plan = Plan::from(ServerlessPlan::new(2048).unwrap());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "serverless 2048 MB", "kind": "serverless", "memory_mb": 2048})
        );
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
    }
}
