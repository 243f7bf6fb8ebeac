//! Where the fleet stands: every scope and period of the table, as `fleet status`
//! shows it.

use super::keys::{self, from_pico};
use super::table::{self, Table};
use crate::budget::{BudgetMode, BudgetPeriod, BudgetScope};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One scope in one period, across the fleet. Amounts are exact USD (serialised
/// as decimal strings).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetScopeStatus {
    /// The scope (`client` is the whole fleet).
    pub scope: BudgetScope,
    /// The period.
    pub period: BudgetPeriod,
    /// When the period started (UTC).
    pub period_start: DateTime<Utc>,
    /// Spent in the period by every process, as written so far: the sum of the
    /// receipts.
    pub spent_usd: Decimal,
    /// Charged to the scope's enforced budgets beyond `spent_usd`, for calls that
    /// could not be fully priced: each counts at no less than its reserved
    /// estimate, never $0. The budget's spend is `spent_usd` plus this.
    #[serde(skip_serializing_if = "Decimal::is_zero")]
    pub unpriced_charge_usd: Decimal,
    /// Calls counted.
    pub calls: u64,
    /// Per variant (endpoint scopes; empty for the others, and always written,
    /// so that every line has the same fields).
    pub variants: BTreeMap<String, Decimal>,
    /// The budget's limit, when a process has leased from it.
    pub limit_usd: Option<Decimal>,
    /// Leased to processes (spent or not) minus what they gave back.
    pub committed_usd: Option<Decimal>,
    /// Of that, leased and not spent yet: zero when no lease is held (every
    /// process gave its lease back). `None` only for a scope no budget leased from.
    pub leased_unspent_usd: Option<Decimal>,
    /// What is left to lease: the limit minus what is committed.
    pub remaining_usd: Option<Decimal>,
    /// Leases held (one per process).
    pub leases: u32,
    /// Alert thresholds passed, in percent, by any of the scope's budgets in the
    /// period (each budget's are in `budget_alerts`).
    pub alerts_passed: Vec<u32>,
    /// The alert thresholds each budget of the scope and period passed: each
    /// budget alerts on its own limit (empty, and written so, when none has).
    pub budget_alerts: Vec<FleetBudgetAlerts>,
    /// Attributes of the item that should hold a figure and hold something else
    /// (a hand-edited or corrupt item, e.g. `spent_pico` stored as a string):
    /// each is read as absent, so the figures above made of it are too low.
    /// Processes cannot add to such an item either: DynamoDB refuses their
    /// writes, and they keep their spend to write until it is mended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// The alert thresholds one budget of a scope passed in a period, across the
/// fleet.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetBudgetAlerts {
    /// Whether the budget is enforced or only alerts.
    pub mode: BudgetMode,
    /// Its limit, USD.
    pub limit_usd: Decimal,
    /// The thresholds it passed, in percent, ascending.
    pub passed: Vec<u32>,
}

/// Every scope and period in the fleet table `table`, sorted by scope, then
/// period start.
pub async fn fleet_status(
    sdk_config: &aws_types::SdkConfig,
    table: &str,
) -> Result<Vec<FleetScopeStatus>, crate::Error> {
    let table = Table::of_config(sdk_config, table);
    table
        .check()
        .await
        .map_err(|e| crate::Error::Fleet(e.message))?;
    let items = table
        .scan()
        .await
        .map_err(|e| crate::Error::Fleet(format!("reading table `{}`: {e}", table.name)))?;
    Ok(summarise(&items))
}

fn text<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s,
        _ => "",
    }
}

fn summarise(items: &[std::collections::HashMap<String, AttributeValue>]) -> Vec<FleetScopeStatus> {
    let mut found: BTreeMap<(String, String), FleetScopeStatus> = BTreeMap::new();
    for item in items {
        let (pk, sk) = (text(item, table::PK), text(item, table::SK));
        let (Some(scope), Some((period, start, rest))) =
            (keys::scope_of_pk(pk), keys::period_of_sk(sk))
        else {
            continue;
        };
        if !rest.is_empty() {
            continue; // not a spend item
        }
        let unreadable = table::unreadable_figures(item);
        if !unreadable.is_empty() {
            tracing::warn!(
                pk,
                sk,
                attributes = %unreadable.join(", "),
                "a fleet table item holds attributes that are not the figures sagemeter \
                 writes: each is read as absent, so its figures are too low"
            );
        }
        let leases = table::leases_in(item);
        let committed = table::int(item, table::COMMITTED);
        let limit = table::int(item, table::LIMIT);
        let spent = table::int(item, table::SPENT).unwrap_or(0);
        let percents = |value: Option<&AttributeValue>| -> Vec<u32> {
            let mut passed: Vec<u32> = match value {
                Some(AttributeValue::Ns(set)) => {
                    set.iter().filter_map(|n| n.parse().ok()).collect()
                }
                _ => Vec::new(),
            };
            passed.sort_unstable();
            passed
        };
        let mut budget_alerts: Vec<FleetBudgetAlerts> = item
            .iter()
            .filter_map(|(name, value)| {
                let (mode, limit) = table::alert_mark_of(name)?;
                Some(FleetBudgetAlerts {
                    mode,
                    limit_usd: from_pico(limit),
                    passed: percents(Some(value)),
                })
            })
            .collect();
        budget_alerts.sort_by(|a, b| {
            (a.limit_usd, a.mode == BudgetMode::Enforce)
                .cmp(&(b.limit_usd, b.mode == BudgetMode::Enforce))
        });
        // With the marks of versions that kept one set per scope and period.
        let mut alerts_passed = percents(item.get(table::ALERTED));
        alerts_passed.extend(budget_alerts.iter().flat_map(|b| b.passed.iter().copied()));
        alerts_passed.sort_unstable();
        alerts_passed.dedup();
        let variants = item
            .keys()
            .filter_map(|name| {
                let variant = name.strip_prefix(table::VARIANT_PREFIX)?;
                // Read as every figure is: saturated, not dropped, beyond the bound.
                Some((variant.to_owned(), from_pico(table::int(item, name)?)))
            })
            .collect();
        found.insert(
            (pk.to_owned(), sk.to_owned()),
            FleetScopeStatus {
                scope,
                period,
                period_start: start,
                spent_usd: from_pico(spent),
                unpriced_charge_usd: from_pico(table::int(item, table::UNPRICED).unwrap_or(0)),
                // Saturated beyond a u64, as every figure is, not read as none.
                calls: table::int(item, table::CALLS)
                    .map_or(0, |c| u64::try_from(c.max(0)).unwrap_or(u64::MAX)),
                variants,
                limit_usd: limit.map(from_pico),
                committed_usd: committed.map(from_pico),
                // A budget's item (a limit, a committed sum or a lease): what
                // its leases hold unspent, zero when none is held.
                leased_unspent_usd: (limit.is_some() || committed.is_some() || !leases.is_empty())
                    .then(|| {
                        from_pico(leases.iter().fold(0i128, |sum, l| {
                            sum.saturating_add(l.granted.saturating_sub(l.used).max(0))
                        }))
                    }),
                remaining_usd: limit
                    .zip(committed)
                    .map(|(l, c)| from_pico(l.saturating_sub(c))),
                leases: u32::try_from(leases.len()).unwrap_or(u32::MAX),
                alerts_passed,
                budget_alerts,
                unreadable,
            },
        );
    }
    let mut all: Vec<FleetScopeStatus> = found.into_values().collect();
    all.sort_by(|a, b| {
        (a.scope.to_string(), a.period_start).cmp(&(b.scope.to_string(), b.period_start))
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_corrupt_item_shows_saturated_figures_instead_of_panicking() {
        // 38 nines (about 10³⁸ pico-USD, within an i128) and its negative: the
        // differences and sums of such figures overflow an i128 unless bounded.
        let huge = "9".repeat(38);
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let item: HashMap<String, AttributeValue> = HashMap::from([
            (
                table::PK.to_owned(),
                AttributeValue::S("scope#fleet".into()),
            ),
            (
                table::SK.to_owned(),
                AttributeValue::S("day#2026-12-01".into()),
            ),
            (table::SPENT.to_owned(), n(&huge)),
            (table::CALLS.to_owned(), n(&huge)),
            (table::LIMIT.to_owned(), n(&huge)),
            (table::COMMITTED.to_owned(), n(&format!("-{huge}"))),
            (format!("{}p1", table::GRANTED_PREFIX), n(&huge)),
            (format!("{}p1", table::USED_PREFIX), n(&format!("-{huge}"))),
            (format!("{}p2", table::GRANTED_PREFIX), n(&huge)),
            (format!("{}p2", table::USED_PREFIX), n("0")),
            // 10⁴⁰: more digits than an i128 holds, a number DynamoDB stores.
            (
                format!("{}AllTraffic", table::VARIANT_PREFIX),
                n(&format!("1{}", "0".repeat(40))),
            ),
        ]);
        let status = summarise(&[item]);
        // Each figure read as ±(2⁹⁶ − 1) pico-USD; each result saturated there:
        // 79,228,162,514,264,337.593543950335 USD.
        let most = Decimal::from_i128_with_scale((1 << 96) - 1, 12);
        let s = &status[0];
        assert_eq!(s.spent_usd, most);
        assert_eq!(s.calls, u64::MAX, "calls saturated, not shown as none");
        assert_eq!(s.limit_usd, Some(most));
        assert_eq!(s.committed_usd, Some(-most));
        assert_eq!(s.remaining_usd, Some(most), "limit − committed, saturated");
        assert_eq!(
            s.leased_unspent_usd,
            Some(most),
            "granted − used, summed, saturated"
        );
        assert_eq!(s.leases, 2);
        assert_eq!(
            s.variants.get("AllTraffic"),
            Some(&most),
            "a variant's share, saturated, not left out"
        );
    }

    #[test]
    fn a_budget_whose_leases_were_given_back_shows_zero_unspent_and_every_field() {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let text = |v: &str| AttributeValue::S(v.to_owned());
        // An endpoint budget of $1 after its processes gave their leases back:
        // $0.25 spent and committed, no lease held; and the fleet's own item.
        let budget: HashMap<String, AttributeValue> = HashMap::from([
            (table::PK.to_owned(), text("scope#endpoint:chat")),
            (table::SK.to_owned(), text("day#2026-12-01")),
            (table::SPENT.to_owned(), n("250000000000")),
            (table::CALLS.to_owned(), n("25")),
            (
                format!("{}AllTraffic", table::VARIANT_PREFIX),
                n("250000000000"),
            ),
            (table::LIMIT.to_owned(), n("1000000000000")),
            (table::COMMITTED.to_owned(), n("250000000000")),
        ]);
        let fleet: HashMap<String, AttributeValue> = HashMap::from([
            (table::PK.to_owned(), text("scope#fleet")),
            (table::SK.to_owned(), text("day#2026-12-01")),
            (table::SPENT.to_owned(), n("250000000000")),
            (table::CALLS.to_owned(), n("25")),
        ]);
        let status = summarise(&[budget, fleet]);
        let json: Vec<serde_json::Value> = status
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        // Sorted by scope: `client` first.
        let (client, endpoint) = (&json[0], &json[1]);
        // No lease held: nothing leased is unspent, $0 (as the text says), not null.
        assert_eq!(endpoint["leased_unspent_usd"], "0", "{endpoint}");
        // $1 − $0.25 committed = $0.75 to lease.
        assert_eq!(endpoint["remaining_usd"], "0.75", "{endpoint}");
        assert_eq!(endpoint["variants"]["AllTraffic"], "0.25", "{endpoint}");
        // Every line has every field, the client scope's too.
        for line in [client, endpoint] {
            for field in [
                "variants",
                "budget_alerts",
                "alerts_passed",
                "leased_unspent_usd",
            ] {
                assert!(line.get(field).is_some(), "no {field}: {line}");
            }
        }
        assert_eq!(client["variants"], serde_json::json!({}));
        assert_eq!(client["budget_alerts"], serde_json::json!([]));
        // No budget leased from the fleet's item: no lease figures at all.
        assert!(client["leased_unspent_usd"].is_null(), "{client}");
    }
}
