//! The rates a comparison prices with: stated, or looked up in a `PriceSource`.

use rust_decimal::Decimal;
use std::collections::BTreeMap;

use super::{CompareError, Plan, PlanModel, UsageProfile};
use crate::pricing::{PriceKey, PriceOrigin, PriceSource, Provenance, Rate};

/// The instance-hour, serverless-second, data-GB and ML storage GB-month rates of
/// one region, each with its provenance.
///
/// The comparison engine only reads this table, so it stays pure: state rates by hand
/// (tests, negotiated prices) or fill the table from any
/// [`PriceSource`] — live prices, the bundled snapshot — with
/// [`fill_from`](RateTable::fill_from). Stated rates win over looked-up ones.
///
/// ```
/// use sagemeter::compare::RateTable;
/// use sagemeter::pricing::{PriceKey, PriceOrigin};
/// use sagemeter::Decimal;
///
/// let rates = RateTable::new("us-east-1")
///     .with_rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), Decimal::new(23, 2))?;
/// let rate = rates.get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge")).unwrap();
/// assert_eq!(rate.provenance.source, PriceOrigin::Override);
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    region: String,
    rates: BTreeMap<PriceKey, Rate>,
}

impl RateTable {
    /// An empty table for `region` (e.g. `us-east-1`).
    pub fn new(region: impl Into<String>) -> Self {
        RateTable {
            region: region.into(),
            rates: BTreeMap::new(),
        }
    }

    /// The region whose rates this table holds.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// States a rate by hand (provenance [`PriceOrigin::Override`]), in the unit its
    /// key is quoted in (USD per hour, second or GB).
    pub fn with_rate(self, key: PriceKey, usd_per_unit: Decimal) -> Result<Self, CompareError> {
        let rate = Rate::new(
            key,
            usd_per_unit,
            Provenance::new(PriceOrigin::Override).with_note("stated for the comparison"),
        );
        self.with(rate)
    }

    /// Adds a rate obtained elsewhere, keeping its provenance.
    pub fn with(mut self, rate: Rate) -> Result<Self, CompareError> {
        self.insert(rate)?;
        Ok(self)
    }

    /// Adds a rate obtained elsewhere, keeping its provenance.
    pub fn insert(&mut self, rate: Rate) -> Result<(), CompareError> {
        check_rate(&rate)?;
        self.rates.insert(rate.key.clone(), rate);
        Ok(())
    }

    /// The rate for `key`, if the table has one.
    pub fn get(&self, key: &PriceKey) -> Option<&Rate> {
        self.rates.get(key)
    }

    /// Looks up in `prices` every rate `plans` need to price `profile` that the table
    /// does not hold yet.
    ///
    /// A rate that cannot be found is an error naming the plan and the key, and so is
    /// a $0 rate (a free-tier row is not what a metered dimension bills): a plan is
    /// never priced at $0.
    pub async fn fill_from(
        &mut self,
        prices: &dyn PriceSource,
        plans: &[Plan],
        profile: &UsageProfile,
    ) -> Result<(), CompareError> {
        for (plan, key) in needed_keys(&self.region, plans, profile) {
            if self.rates.contains_key(&key) {
                continue;
            }
            let rate = prices
                .price(&key)
                .await
                .map_err(|e| CompareError::MissingRate {
                    plan: plan.to_string(),
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            if rate.usd_per_unit.is_zero() {
                let note = rate
                    .provenance
                    .note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default();
                return Err(CompareError::MissingRate {
                    plan: plan.to_string(),
                    key,
                    reason: format!(
                        "the price source answered $0 per {} ({}{note}); {ZERO_RATE}",
                        rate.unit,
                        rate.provenance.source.as_str()
                    ),
                });
            }
            if rate.key != key || rate.unit != key.unit() {
                return Err(CompareError::MissingRate {
                    plan: plan.to_string(),
                    key: key.clone(),
                    reason: format!(
                        "the price source answered with a rate for {} per {}",
                        rate.key, rate.unit
                    ),
                });
            }
            self.insert(rate).map_err(|e| CompareError::MissingRate {
                plan: plan.to_string(),
                key,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The rate for `key`, or a [`CompareError::MissingRate`] naming `plan`.
    pub(crate) fn require(&self, plan: &str, key: PriceKey) -> Result<&Rate, CompareError> {
        self.rates
            .get(&key)
            .ok_or_else(|| CompareError::MissingRate {
                plan: plan.to_string(),
                key,
                reason: "the rate table has none: state it with RateTable::with_rate(..) or fill \
                     the table from a price source with RateTable::fill_from(..)"
                    .into(),
            })
    }
}

/// Why a $0 rate is refused.
const ZERO_RATE: &str = "a metered dimension is never billed at $0: a $0 price is a \
     free-tier or bookkeeping row, not the rate, and the plan is not priced at $0";

fn check_rate(rate: &Rate) -> Result<(), CompareError> {
    if rate.usd_per_unit.is_zero() {
        return Err(CompareError::NotPositive {
            what: "rate (USD per unit)",
            value: format!("0 for {}", rate.key),
            hint: format!("{ZERO_RATE}; state the rate SageMaker bills"),
        });
    }
    if rate.usd_per_unit < Decimal::ZERO {
        return Err(CompareError::NotPositive {
            what: "rate (USD per unit)",
            value: format!("{} for {}", rate.usd_per_unit, rate.key),
            hint: "SageMaker charges for every priced dimension; a zero or negative rate is a \
                   wrong price, not a free one"
                .into(),
        });
    }
    if rate.usd_per_unit > Decimal::from(super::check::MAX_USD) {
        return Err(CompareError::OutOfRange {
            what: "rate (USD per unit)",
            value: format!("{} for {}", rate.usd_per_unit, rate.key),
            hint: "too large to model".into(),
        });
    }
    Ok(())
}

/// The price keys each plan needs for this profile, in plan order. Data rates are
/// only needed when the profile moves bytes.
pub(crate) fn needed_keys<'p>(
    region: &str,
    plans: &'p [Plan],
    profile: &UsageProfile,
) -> Vec<(&'p str, PriceKey)> {
    let mut keys = Vec::new();
    for plan in plans {
        let name = plan.name.as_str();
        let moves_data = match &plan.model {
            PlanModel::Instance(p) => {
                keys.push((name, PriceKey::hosting(region, &p.instance_type)));
                if p.volume_gb.is_some() {
                    keys.push((name, PriceKey::storage(region)));
                }
                true
            }
            PlanModel::SavingsPlan(p) => {
                keys.push((name, PriceKey::hosting(region, &p.instance_type)));
                if p.volume_gb.is_some() {
                    keys.push((name, PriceKey::storage(region)));
                }
                true
            }
            PlanModel::Serverless(p) => {
                keys.extend(p.compute_keys(region).into_iter().map(|key| (name, key)));
                true
            }
            _ => false,
        };
        if moves_data && !profile.bytes_in_per_call.is_zero() {
            keys.push((
                name,
                PriceKey::DataIn {
                    region: region.to_string(),
                },
            ));
        }
        if moves_data && !profile.bytes_out_per_call.is_zero() {
            keys.push((
                name,
                PriceKey::DataOut {
                    region: region.to_string(),
                },
            ));
        }
    }
    keys
}
