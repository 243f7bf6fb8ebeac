//! What Cost Explorer billed: `GetCostAndUsage`, daily, Amazon SageMaker in one region
//! and account.

use super::error::{AccountError, from_sdk};
use super::pages::PageTokens;
use super::usage_class::UsageClass;
use aws_sdk_costexplorer::types::{
    DateInterval, Dimension, DimensionValues, Expression, Granularity, GroupDefinition,
    GroupDefinitionType,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::str::FromStr;

/// The `SERVICE` dimension value of SageMaker in Cost Explorer.
pub(crate) const SERVICE: &str = "Amazon SageMaker";

/// The cost metric the bill is read in: `AmortizedCost`. Usage a Savings Plan or
/// reservation covers is at its effective rate (upfront fees spread over the
/// term). `UnblendedCost` would show it at on-demand and cancel it with a
/// `SavingsPlanNegation` line of the same usage type: a covered day would read ≈ $0.
pub(crate) const BILLED_METRIC: &str = "AmortizedCost";

/// The usage metric read with [`BILLED_METRIC`]: `UsageQuantity`, the usage
/// type's quantity in its unit (hours, seconds, GB, GB-months).
const USAGE_METRIC: &str = "UsageQuantity";

/// One usage type of one day (and tag value) as Cost Explorer billed it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledUsage {
    /// The UTC day.
    pub day: NaiveDate,
    /// The tag value when grouped by a tag (`""` for resources without it), else `None`.
    pub tag: Option<String>,
    /// The usage type as billed, e.g. `USE1-Host:ml.m5.xlarge`.
    pub usage_type: String,
    /// What kind of charge it is.
    pub class: UsageClass,
    /// `AmortizedCost`, USD: covered usage at its Savings Plan or reservation rate.
    pub cost_usd: Decimal,
    /// `UsageQuantity`, in `unit`.
    pub quantity: Decimal,
    /// The quantity's unit as billed (`Hrs`, `Second`, `GB`, `GB-Mo`, ...).
    pub unit: String,
}

/// What Cost Explorer answered for a date range.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bill {
    pub usage: Vec<BilledUsage>,
    /// Days Cost Explorer marked `Estimated` (not settled yet).
    pub estimated: BTreeSet<NaiveDate>,
}

/// `GetCostAndUsage` from `since` to `until` (exclusive), every page, of `account`
/// alone (`LINKED_ACCOUNT`: from a management account, Cost Explorer answers for
/// every member account).
pub(crate) async fn fetch(
    client: &aws_sdk_costexplorer::Client,
    region: &str,
    account: &str,
    since: NaiveDate,
    until: NaiveDate,
    tag: Option<&str>,
) -> Result<Bill, AccountError> {
    let dimension = |key: Dimension, value: &str| {
        Expression::builder()
            .dimensions(DimensionValues::builder().key(key).values(value).build())
            .build()
    };
    let filter = Expression::builder()
        .and(dimension(Dimension::Service, SERVICE))
        .and(dimension(Dimension::Region, region))
        .and(dimension(Dimension::LinkedAccount, account))
        .build();
    let period = DateInterval::builder()
        .start(since.to_string())
        .end(until.to_string())
        .build()
        .map_err(|e| AccountError::Invalid(e.to_string()))?;
    let group = |kind: GroupDefinitionType, key: &str| {
        GroupDefinition::builder().r#type(kind).key(key).build()
    };
    let mut groups = Vec::new();
    if let Some(tag) = tag {
        groups.push(group(GroupDefinitionType::Tag, tag));
    }
    groups.push(group(GroupDefinitionType::Dimension, "USAGE_TYPE"));

    let mut bill = Bill::default();
    let mut pages = PageTokens::default();
    loop {
        let answer = client
            .get_cost_and_usage()
            .time_period(period.clone())
            .granularity(Granularity::Daily)
            .metrics(BILLED_METRIC)
            .metrics(USAGE_METRIC)
            .filter(filter.clone())
            .set_group_by(Some(groups.clone()))
            .set_next_page_token(pages.send_next())
            .send()
            .await
            .map_err(|e| from_sdk("GetCostAndUsage", "ce:GetCostAndUsage", e))?;
        for result in answer.results_by_time() {
            let Some(day) = result
                .time_period()
                .and_then(|p| NaiveDate::from_str(p.start()).ok())
            else {
                continue;
            };
            // Cost Explorer answers for the days asked; anything else is not ours.
            if day < since || day >= until {
                continue;
            }
            if result.estimated() {
                bill.estimated.insert(day);
            }
            for g in result.groups() {
                let keys = g.keys();
                let (tag_value, usage_type) = match (tag, keys) {
                    (Some(_), [tag_key, usage_type, ..]) => {
                        (Some(tag_value(tag_key)), usage_type.as_str())
                    }
                    (None, [usage_type, ..]) => (None, usage_type.as_str()),
                    // Billed money under keys not asked for is not left out unsaid.
                    _ => {
                        return Err(AccountError::Service {
                            operation: "GetCostAndUsage",
                            code: None,
                            message: format!(
                                "a group of {day} has the keys {keys:?}, not the {} asked for",
                                match tag {
                                    Some(key) => format!("tag {key} and usage type"),
                                    None => "usage type".to_owned(),
                                }
                            ),
                            source: None,
                        });
                    }
                };
                let metric = |name: &str| g.metrics().and_then(|m| m.get(name));
                let cost = metric(BILLED_METRIC);
                if let Some(unit) = cost.and_then(|c| c.unit())
                    && !unit.eq_ignore_ascii_case("USD")
                {
                    return Err(AccountError::Invalid(format!(
                        "Cost Explorer answered in {unit}, not USD: sagemeter reconciles USD amounts"
                    )));
                }
                // A group without an amount asked for is not the answer asked for,
                // and none of it is guessed: no cost is not a free day, and no
                // quantity is not 0 hours (read as 0, the day's quantity × rate
                // would be $0 and the whole amount billed a discount explaining it).
                // Cost Explorer answers every metric asked for.
                let amount = |name: &str| match metric(name).and_then(|m| m.amount()) {
                    Some(text) => parse_amount(text),
                    None => Err(AccountError::Service {
                        operation: "GetCostAndUsage",
                        code: None,
                        message: format!("the group {usage_type} of {day} has no {name} amount"),
                        source: None,
                    }),
                };
                let cost_usd = amount(BILLED_METRIC)?;
                let quantity = amount(USAGE_METRIC)?;
                bill.usage.push(BilledUsage {
                    day,
                    tag: tag_value,
                    usage_type: usage_type.to_owned(),
                    class: UsageClass::from_usage_type(usage_type),
                    cost_usd,
                    quantity,
                    unit: metric(USAGE_METRIC)
                        .and_then(|q| q.unit())
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
        if !pages.read_on(answer.next_page_token(), "GetCostAndUsage")? {
            break;
        }
    }
    Ok(bill)
}

/// A tag group key as Cost Explorer writes it, `KEY$VALUE` (`KEY$` when untagged).
fn tag_value(key: &str) -> String {
    key.split_once('$')
        .map_or(key, |(_, value)| value)
        .to_owned()
}

/// The largest amount (USD, or units of usage) of one day's group read from Cost
/// Explorer: 10¹². Beyond is no bill of one day, and refusing it keeps the
/// reconciliation's sums and products far from `Decimal`'s limits.
const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Cost Explorer's amounts are decimal strings, sometimes in scientific notation.
/// Read exactly, or refused: one with more digits than a `Decimal` holds is not
/// read rounded.
fn parse_amount(text: &str) -> Result<Decimal, AccountError> {
    let refuse = |why: &str| AccountError::Service {
        operation: "GetCostAndUsage",
        code: None,
        message: format!("`{text}` {why}"),
        source: None,
    };
    // `from_str` rounds digits beyond what a Decimal holds, and so does
    // `from_scientific` its digits before the exponent; `from_str_exact` refuses
    // them. Zeros ending a fraction are no digits of the amount. With the digits
    // exact, the exponent only moves the point, or fails.
    let (digits, exponent) = match text.split_once(['e', 'E']) {
        Some((digits, exponent)) => (digits, Some(exponent)),
        None => (text, None),
    };
    let digits = match digits.contains('.') {
        true => digits.trim_end_matches('0').trim_end_matches('.'),
        false => digits,
    };
    let exact = Decimal::from_str_exact(digits);
    if exact.is_err() && Decimal::from_str(digits).is_ok() {
        return Err(refuse(
            "has more digits than a decimal holds: it is not read rounded",
        ));
    }
    let amount = match exponent {
        None => exact,
        Some(exponent) => Decimal::from_scientific(&format!("{digits}E{exponent}")),
    }
    .map_err(|_| refuse("is not an amount"))?;
    if amount.abs() > MAX_AMOUNT {
        return Err(refuse("is beyond the 10^12 a day's bill can carry"));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_tag_keys_are_read_as_cost_explorer_writes_them() {
        assert_eq!(parse_amount("11.04").unwrap(), Decimal::new(1104, 2));
        assert_eq!(parse_amount("1.5E-7").unwrap(), Decimal::new(15, 8));
        assert!(parse_amount("lots").is_err());
        // Beyond a trillion: no day's bill (two made `quantity × rate` panic).
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000u64));
        assert!(parse_amount("1000000000000").is_ok());
        for huge in ["1000000000000.01", "50000000000000000000000000000", "-1E13"] {
            let err = parse_amount(huge).unwrap_err();
            assert!(err.to_string().contains("beyond"), "{err}");
        }
        // 29 digits: 88,765,868,763,745,249,890,440,529,849 (at 17 places) is
        // beyond 2⁹⁶ − 1 = 79,228,162,514,264,337,593,543,950,335, so no Decimal
        // holds it; read, it was rounded at 16 places to 887658687637.4524989044052985.
        for long in [
            "887658687637.45249890440529849",
            "8.8765868763745249890440529849E11",
            "0.00000000000000000000000000001",
        ] {
            let err = parse_amount(long).unwrap_err();
            assert!(
                err.to_string().contains("more digits than a decimal holds"),
                "{err}"
            );
        }
        // 28 digits is exact, and so is an exponent moving the point of few.
        assert_eq!(
            parse_amount("79228162514.264337593543950335")
                .unwrap()
                .to_string(),
            "79228162514.264337593543950335"
        );
        assert_eq!(parse_amount("1.5E3").unwrap(), Decimal::from(1500));
        // 29 digits written, the last two zeros: 27 digits of amount, exact.
        assert_eq!(
            parse_amount("979683034637.54626010751662700")
                .unwrap()
                .to_string(),
            "979683034637.546260107516627"
        );
        assert_eq!(
            parse_amount("1.500000000000000000000000000000E-7").unwrap(),
            Decimal::new(15, 8)
        );
        assert_eq!(parse_amount("5.").unwrap(), Decimal::from(5));
        for bad in ["", ".", "E5", "1.2.3"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(tag_value("team$growth"), "growth");
        assert_eq!(tag_value("team$"), "");
    }
}
