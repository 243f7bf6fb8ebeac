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
    /// could not be fully priced (each counts at no less than its reserved
    /// estimate, never $0) and for async holds that lapsed (charged as run until
    /// their settlements replace the charge: below $0 where a settlement's
    /// receipt counts only in part). The budget's spend is `spent_usd` plus this.
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
    /// How far the scope's spend (`spent_usd` plus `unpriced_charge_usd`) is past
    /// the limit, when it is: spend the leases did not hold (by processes that do
    /// not declare the budget, which is not in `committed`; let through without a
    /// lease; written after a lease was taken back), so what is left to lease can
    /// be more than zero all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_limit_usd: Option<Decimal>,
    /// Leases held (one per process), lapsed ones included.
    pub leases: u32,
    /// Of those, leases that lapsed (their holder stopped renewing them: it
    /// crashed, or cannot reach the table) more than the clock skew allowed ago
    /// ([`DEFAULT_CLOCK_SKEW`](super::DEFAULT_CLOCK_SKEW) unless
    /// [`fleet_status_with_clock_skew`] says otherwise): the next process short of
    /// room takes them back.
    #[serde(skip_serializing_if = "is_zero")]
    pub lapsed_leases: u32,
    /// What the lapsed leases hold unspent (in `leased_unspent_usd` too).
    #[serde(skip_serializing_if = "Decimal::is_zero")]
    pub lapsed_unspent_usd: Decimal,
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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every scope and period in the fleet table `table`, sorted by scope, then
/// period start. Leases are judged lapsed on this machine's clock, allowing
/// [`DEFAULT_CLOCK_SKEW`](super::DEFAULT_CLOCK_SKEW) between the clocks.
pub async fn fleet_status(
    sdk_config: &aws_types::SdkConfig,
    table: &str,
) -> Result<Vec<FleetScopeStatus>, crate::Error> {
    fleet_status_with_clock_skew(sdk_config, table, super::DEFAULT_CLOCK_SKEW).await
}

/// [`fleet_status`], allowing `clock_skew` between this machine's clock and the
/// clocks the leases' ends were written on: the fleet's
/// [`FleetConfig::clock_skew`](super::FleetConfig::clock_skew), so that a lease
/// is called lapsed when the fleet would take it back.
pub async fn fleet_status_with_clock_skew(
    sdk_config: &aws_types::SdkConfig,
    table: &str,
    clock_skew: std::time::Duration,
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
    Ok(summarise(&items, Utc::now(), clock_skew))
}

fn text<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s,
        _ => "",
    }
}

fn summarise(
    items: &[std::collections::HashMap<String, AttributeValue>],
    now: DateTime<Utc>,
    clock_skew: std::time::Duration,
) -> Vec<FleetScopeStatus> {
    // A lease's end is on its holder's clock: lapsed once past it by the skew.
    let lapsed_before = now
        .timestamp_millis()
        .saturating_sub(keys::millis(clock_skew));
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
        let unpriced = table::int(item, table::UNPRICED).unwrap_or(0);
        let unspent = |l: &table::LeaseHeld| l.granted.saturating_sub(l.used).max(0);
        let lapsed: Vec<&table::LeaseHeld> = leases
            .iter()
            .filter(|l| l.until_ms < lapsed_before)
            .collect();
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
                unpriced_charge_usd: from_pico(unpriced),
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
                        from_pico(
                            leases
                                .iter()
                                .fold(0i128, |sum, l| sum.saturating_add(unspent(l))),
                        )
                    }),
                remaining_usd: limit
                    .zip(committed)
                    .map(|(l, c)| from_pico(l.saturating_sub(c))),
                over_limit_usd: limit
                    .map(|l| spent.saturating_add(unpriced).saturating_sub(l))
                    .filter(|over| *over > 0)
                    .map(from_pico),
                leases: u32::try_from(leases.len()).unwrap_or(u32::MAX),
                lapsed_leases: u32::try_from(lapsed.len()).unwrap_or(u32::MAX),
                lapsed_unspent_usd: from_pico(
                    lapsed
                        .iter()
                        .fold(0i128, |sum, l| sum.saturating_add(unspent(l))),
                ),
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
        let status = summarise(&[item], Utc::now(), crate::fleet::DEFAULT_CLOCK_SKEW);
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
    fn lapsed_leases_and_spend_past_the_limit_are_told_apart() {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let text = |v: &str| AttributeValue::S(v.to_owned());
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ms = |at: &str| {
            DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_millis()
                .to_string()
        };
        // A $1 budget: $0.40 committed to three leases. `live` holds until 12:00:20;
        // `gone` lapsed at 11:59:00 (a minute ago); `late` at 11:59:57, 3 s ago, less
        // than the 5 s the clocks may differ by. $1.10 spent (processes without the
        // budget spent too) plus $0.05 charged for unpriced calls.
        let mut item: HashMap<String, AttributeValue> = HashMap::from([
            (table::PK.to_owned(), text("scope#endpoint:chat")),
            (table::SK.to_owned(), text("day#2026-12-01")),
            (table::SPENT.to_owned(), n("1100000000000")),
            (table::UNPRICED.to_owned(), n("50000000000")),
            (table::LIMIT.to_owned(), n("1000000000000")),
            (table::COMMITTED.to_owned(), n("400000000000")),
        ]);
        for (process, granted, used, until) in [
            (
                "live",
                "100000000000",
                "10000000000",
                "2026-12-01T12:00:20Z",
            ),
            (
                "gone",
                "200000000000",
                "50000000000",
                "2026-12-01T11:59:00Z",
            ),
            ("late", "100000000000", "0", "2026-12-01T11:59:57Z"),
        ] {
            item.insert(format!("{}{process}", table::GRANTED_PREFIX), n(granted));
            item.insert(format!("{}{process}", table::USED_PREFIX), n(used));
            item.insert(format!("{}{process}", table::UNTIL_PREFIX), n(&ms(until)));
        }
        let s = &summarise(&[item.clone()], now, crate::fleet::DEFAULT_CLOCK_SKEW)[0];
        assert_eq!(s.leases, 3);
        // only `gone`: $0.20 − $0.05 = $0.15 unspent
        assert_eq!(s.lapsed_leases, 1);
        assert_eq!(s.lapsed_unspent_usd, Decimal::new(15, 2));
        // all three: 0.09 + 0.15 + 0.10 = $0.34
        assert_eq!(s.leased_unspent_usd, Some(Decimal::new(34, 2)));
        // $1 − $0.40 committed is left to lease, though $1.10 + $0.05 is past the
        // limit by $0.15: both said.
        assert_eq!(s.remaining_usd, Some(Decimal::new(60, 2)));
        assert_eq!(s.over_limit_usd, Some(Decimal::new(15, 2)));
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["lapsed_leases"], 1);
        assert_eq!(json["lapsed_unspent_usd"], "0.15");
        assert_eq!(json["over_limit_usd"], "0.15");
        // Clocks said to agree within 2 s: `late`, 3 s past its end, is lapsed too
        // ($0.10 unspent more).
        let s = &summarise(&[item], now, std::time::Duration::from_secs(2))[0];
        assert_eq!(s.lapsed_leases, 2);
        assert_eq!(s.lapsed_unspent_usd, Decimal::new(25, 2));
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
        let status = summarise(
            &[budget, fleet],
            Utc::now(),
            crate::fleet::DEFAULT_CLOCK_SKEW,
        );
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
