//! The billing-plan comparison, as a specification: hand-computed costs of every plan
//! model and break-even points, and the errors for inputs that cannot be priced.

use proptest::prelude::*;
use sagemeter::compare::{
    CompareError, Comparison, CostCurve, InstancePlan, PerInferencePlan, PerTokenPlan, Period,
    Plan, PlanModel, RateTable, SavingsPlan, SavingsPlanTerm, ServerlessPlan, SubscriptionPlan,
    UsageProfile, UsageTotals,
};
use sagemeter::pricing::{
    BoxFuture, PriceError, PriceKey, PriceOrigin, PriceSource, Provenance, Rate,
};
use sagemeter::{Cost, Decimal};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

const REGION: &str = "us-east-1";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Fixed prices (the bundled snapshot's us-east-1 values): ml.m5.xlarge 0.23 USD/h,
/// serverless 3 GB 0.00006 USD/s, 6 GB 0.00012 USD/s, data in/out 0.016 USD/GB.
#[derive(Debug)]
struct FixedPrices {
    rates: HashMap<PriceKey, Decimal>,
}

impl FixedPrices {
    fn snapshot() -> Self {
        let rates = HashMap::from([
            (PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0.23")),
            (PriceKey::serverless(REGION, 3), d("0.00006")),
            (PriceKey::serverless(REGION, 6), d("0.00012")),
            (
                PriceKey::DataIn {
                    region: REGION.into(),
                },
                d("0.016"),
            ),
            (
                PriceKey::DataOut {
                    region: REGION.into(),
                },
                d("0.016"),
            ),
        ]);
        FixedPrices { rates }
    }

    fn with(mut self, key: PriceKey, usd: &str) -> Self {
        self.rates.insert(key, d(usd));
        self
    }
}

impl PriceSource for FixedPrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        let answer = match self.rates.get(key) {
            Some(usd) => Ok(Rate::new(
                key.clone(),
                *usd,
                Provenance::new(PriceOrigin::Snapshot).with_effective_date("2026-05-20"),
            )),
            None => Err(PriceError::NotFound { key: key.clone() }),
        };
        Box::pin(async move { answer })
    }
}

/// `calls` a month (the default period) of `ms` milliseconds each.
fn calls_of_ms(calls: u64, ms: u64) -> UsageProfile {
    UsageProfile::builder()
        .calls_per_period(calls)
        .mean_latency(Duration::from_millis(ms))
        .build()
        .unwrap()
}

fn monthly(calls: u64) -> UsageProfile {
    UsageProfile::builder()
        .period(Period::Month)
        .calls_per_period(calls)
        .build()
        .unwrap()
}

fn pay_per_use(usd_per_call: &str) -> Plan {
    Plan::from(PerInferencePlan::per_call(d(usd_per_call)).unwrap())
}

fn subscription(fee: &str) -> SubscriptionPlan {
    SubscriptionPlan::builder()
        .fee_usd(d(fee))
        .period(Period::Month)
        .build()
        .unwrap()
}

fn subscription_with_quota(fee: &str, included: u64, overage: &str) -> Plan {
    subscription_with_quota_per(Period::Month, fee, included, overage)
}

/// A subscription of `fee` USD a `period` for `included` calls, `overage` USD each
/// call above.
fn subscription_with_quota_per(period: Period, fee: &str, included: u64, overage: &str) -> Plan {
    Plan::from(
        SubscriptionPlan::builder()
            .fee_usd(d(fee))
            .period(period)
            .included_calls(included)
            .overage_usd_per_call(d(overage))
            .build()
            .unwrap(),
    )
}

fn compute(profile: &UsageProfile, plans: &[Plan]) -> Comparison {
    Comparison::compute(profile, plans, &RateTable::new(REGION)).unwrap()
}

async fn priced(profile: &UsageProfile, plans: &[Plan]) -> Result<Comparison, CompareError> {
    Comparison::with_prices(profile, plans, &FixedPrices::snapshot(), REGION).await
}

fn cost(comparison: &Comparison, plan: &str) -> Decimal {
    comparison.plan(plan).expect("row for the plan").cost_usd
}

// ---------------------------------------------------------------- plan models

#[test]
fn pay_per_use_costs_the_price_per_call_times_the_calls() {
    let comparison = compute(&monthly(100_000), &[pay_per_use("0.0125")]);
    // C = X × U = 0.0125 × 100,000
    assert_eq!(cost(&comparison, "pay per use"), d("1250"));
    // 1,250 USD × 1,000 / 100,000 calls
    assert_eq!(
        comparison.plans[0].usd_per_1000_calls,
        Some(d("12.5")),
        "cost per 1,000 calls"
    );
}

#[test]
fn a_price_per_thousand_calls_is_a_thousandth_per_call() {
    let plan = PerInferencePlan::per_thousand_calls(d("12.5")).unwrap();
    // 12.5 / 1,000
    assert_eq!(plan.usd_per_call, d("0.0125"));
}

#[test]
fn a_subscription_costs_its_fee_times_the_periods_whatever_the_calls() {
    let plan = Plan::from(subscription("500"));
    let year = UsageProfile::builder()
        .period(Period::Year)
        .calls_per_period(0)
        .build()
        .unwrap();
    // C = P × T = 500 USD × 12 months
    assert_eq!(
        cost(&compute(&year, std::slice::from_ref(&plan)), "subscription"),
        d("6000")
    );
    // the same fee at 0 or 10 million calls a month
    assert_eq!(
        cost(
            &compute(&monthly(0), std::slice::from_ref(&plan)),
            "subscription"
        ),
        d("500")
    );
    assert_eq!(
        cost(&compute(&monthly(10_000_000), &[plan]), "subscription"),
        d("500")
    );
}

#[test]
fn a_yearly_fee_is_amortised_over_a_month_by_hours() {
    let yearly = Plan::from(
        SubscriptionPlan::builder()
            .fee_usd(d("1200"))
            .period(Period::Year)
            .included_calls(120_000)
            .overage_usd_per_call(d("0.01"))
            .build()
            .unwrap(),
    );
    let comparison = compute(&monthly(20_000), &[yearly]);
    let row = comparison.plan("subscription").unwrap();
    // fee 1,200 × 730 h / 8,760 h = 100; quota 120,000 × 730 / 8,760 = 10,000 calls
    assert_eq!(row.curve.fixed_usd, d("100"));
    assert_eq!(row.curve.included_calls, Some(d("10000")));
    // 100 + (20,000 − 10,000) × 0.01 = 200
    assert_eq!(row.cost_usd, d("200"));
}

#[test]
fn a_subscription_charges_overage_only_above_its_included_calls() {
    let plan = subscription_with_quota("400", 40_000, "0.02");
    // below the quota: the fee alone
    assert_eq!(
        cost(
            &compute(&monthly(30_000), std::slice::from_ref(&plan)),
            "subscription"
        ),
        d("400")
    );
    // 400 + (60,000 − 40,000) × 0.02 = 400 + 400
    assert_eq!(
        cost(&compute(&monthly(60_000), &[plan]), "subscription"),
        d("800")
    );
}

#[tokio::test]
async fn an_instance_endpoint_costs_instances_times_hours_times_rate_busy_or_not() {
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 2).unwrap())];
    let idle = priced(&monthly(0), &plans).await.unwrap();
    let busy = priced(&monthly(1_000_000), &plans).await.unwrap();
    // 2 instances × 730 h × 0.23 USD/h
    assert_eq!(cost(&idle, "ml.m5.xlarge x2"), d("335.8"));
    assert_eq!(cost(&busy, "ml.m5.xlarge x2"), d("335.8"));
    let row = busy.plan("ml.m5.xlarge x2").unwrap();
    assert_eq!(row.rate_source, "snapshot");
    assert_eq!(row.rates[0].usd_per_unit, d("0.23"));
    assert_eq!(
        row.rates[0].provenance.effective_date.as_deref(),
        Some("2026-05-20")
    );
}

#[tokio::test]
async fn an_instance_that_runs_part_of_the_period_costs_only_those_hours() {
    let plan = InstancePlan::new("ml.m5.xlarge", 1)
        .unwrap()
        .with_hours_per_period(d("300"))
        .unwrap();
    let comparison = priced(&monthly(1000), &[plan.into()]).await.unwrap();
    // 1 × 300 h × 0.23 USD/h
    assert_eq!(cost(&comparison, "ml.m5.xlarge x1"), d("69"));
}

#[tokio::test]
async fn instance_utilisation_is_busy_time_over_provisioned_time() {
    let profile = calls_of_ms(657_000, 800);
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 2).unwrap())];
    let comparison = priced(&profile, &plans).await.unwrap();
    let row = comparison.plan("ml.m5.xlarge x2").unwrap();
    // 657,000 calls × 0.8 s / (2 × 730 h × 3,600 s) = 525,600 / 5,256,000
    assert_eq!(row.provisioned_seconds, Some(d("5256000")));
    assert_eq!(row.utilisation, Some(d("0.1")));
}

#[tokio::test]
async fn serverless_bills_latency_rounded_up_to_the_ms_plus_data_per_gb() {
    let profile = UsageProfile::builder()
        .calls_per_period(1_000_000)
        .mean_latency(Duration::from_micros(800_400)) // 800.4 ms → billed 801 ms
        .bytes_in_per_call(1 << 20) // 1 MiB
        .bytes_out_per_call(512 << 10) // 512 KiB
        .build()
        .unwrap();
    let plans = [Plan::from(ServerlessPlan::new(3072).unwrap())];
    let comparison = priced(&profile, &plans).await.unwrap();
    let row = comparison.plan("serverless 3072 MB").unwrap();
    // compute: 0.801 s × 0.00006 USD/s = 0.00004806 per call
    // data:    2^20 / 2^30 GB × 0.016 + 2^19 / 2^30 GB × 0.016 = 0.000015625 + 0.0000078125
    assert_eq!(row.curve.usd_per_call, d("0.0000714975"));
    // 1,000,000 calls × 0.0000714975 = 48.06 + 23.4375
    assert_eq!(row.cost_usd, d("71.4975"));
    assert_eq!(row.rates.len(), 3, "serverless, data in and data out rates");
}

#[test]
fn per_token_plans_charge_input_and_output_tokens_at_their_own_rates() {
    let profile = UsageProfile::builder()
        .calls_per_period(10_000)
        .tokens_in_per_call(500)
        .tokens_out_per_call(200)
        .build()
        .unwrap();
    let plan = Plan::from(PerTokenPlan::per_million_tokens(d("3"), d("15")).unwrap());
    let comparison = compute(&profile, &[plan]);
    // per call: 500 × 3 / 10^6 + 200 × 15 / 10^6 = 0.0015 + 0.003 = 0.0045
    // 10,000 calls × 0.0045
    assert_eq!(cost(&comparison, "per token"), d("45"));
}

/// Tokens per call from metered totals are the exact mean, not a rounded one: two
/// calls of 1 and 2 tokens each way are 1.5 tokens a call, and a per-token plan
/// bills 1.5, not 2 (33 % too much) nor 1.
#[test]
fn a_per_token_plan_bills_the_exact_mean_of_metered_tokens() {
    // 2 calls in an hour, 1 + 2 tokens in and 1 + 2 tokens out.
    let totals = UsageTotals::new(2, Duration::from_secs(3600)).with_tokens(3, 3);
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    assert_eq!(profile.tokens_in_per_call, d("1.5"));
    let plan = Plan::from(PerTokenPlan::per_million_tokens(d("1000"), d("1000")).unwrap());
    // 48 calls a day × (1.5 × 1,000 / 10^6 + 1.5 × 1,000 / 10^6) = 48 × 0.003
    assert_eq!(cost(&compute(&profile, &[plan]), "per token"), d("0.144"));
}

#[tokio::test]
async fn a_savings_plan_pays_its_whole_commitment_when_usage_is_below_it() {
    let plan = SavingsPlan::builder()
        .instance_type("ml.m5.xlarge")
        .commitment_usd_per_hour(d("0.1"))
        .discount(d("0.64"))
        .build()
        .unwrap();
    let comparison = priced(&monthly(1000), &[plan.into()]).await.unwrap();
    let row = comparison
        .plan("savings plan ml.m5.xlarge x1 (1 yr)")
        .unwrap();
    // usage at the discounted rate: 0.23 × (1 − 0.64) = 0.0828 USD/h ≤ 0.1 committed
    // → pay the commitment: 0.1 USD/h × 730 h
    assert_eq!(row.cost_usd, d("73"));
    assert!(row.notes[0].starts_with("0.0172 USD/h of the 0.1 USD/h commitment is unused"));
    // 0.1 USD/h × 8,760 h
    assert!(row.notes[1].contains("(876.00 USD in total)"));
}

#[tokio::test]
async fn a_savings_plan_charges_usage_beyond_its_commitment_on_demand() {
    let plan = SavingsPlan::builder()
        .instance_type("ml.m5.xlarge")
        .count(2)
        .commitment_usd_per_hour(d("0.1"))
        .discount(d("0.5"))
        .term(SavingsPlanTerm::ThreeYears)
        .build()
        .unwrap();
    let comparison = priced(&monthly(1000), &[plan.into()]).await.unwrap();
    // on demand 2 × 0.23 = 0.46 USD/h; discounted 0.23 > 0.1 committed
    // commitment covers 0.1 / (1 − 0.5) = 0.2 USD/h of on-demand usage
    // per hour: 0.1 + (0.46 − 0.2) = 0.36; × 730 h
    assert_eq!(
        cost(&comparison, "savings plan ml.m5.xlarge x2 (3 yr)"),
        d("262.8")
    );
}

#[tokio::test]
async fn plans_are_listed_cheapest_first_with_their_difference_to_the_cheapest() {
    let profile = calls_of_ms(1_000_000, 800);
    let plans = [
        Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
        Plan::from(ServerlessPlan::new(3072).unwrap()),
        Plan::from(PerInferencePlan::per_thousand_calls(d("0.1")).unwrap()),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    let order: Vec<(&str, Decimal, Decimal)> = comparison
        .plans
        .iter()
        .map(|r| {
            (
                r.plan.name.as_str(),
                r.cost_usd,
                r.difference_to_cheapest_usd,
            )
        })
        .collect();
    // serverless: 1,000,000 × 0.8 s × 0.00006 = 48; pay per use: 1,000 × 0.1 = 100;
    // instance: 730 × 0.23 = 167.9
    assert_eq!(
        order,
        vec![
            ("serverless 3072 MB", d("48"), d("0")),
            ("pay per use", d("100"), d("52")),
            ("ml.m5.xlarge x1", d("167.9"), d("119.9")),
        ]
    );
    assert_eq!(comparison.cheapest.as_deref(), Some("serverless 3072 MB"));
}

// ---------------------------------------------------------------- break-even

#[test]
fn subscription_breaks_even_with_pay_per_use_at_fee_over_price_per_call() {
    let plans = [pay_per_use("0.0125"), Plan::from(subscription("500"))];
    let comparison = compute(&monthly(100_000), &plans);
    let be = comparison
        .break_even("pay per use", "subscription")
        .unwrap();
    // U* = P·T / X = 500 × 1 / 0.0125
    assert_eq!(be.points.len(), 1);
    assert_eq!(be.points[0].calls_per_period, d("40000"));
    assert_eq!(be.points[0].cost_usd, d("500"));
    assert_eq!(
        be.summary,
        "subscription is cheaper above 40,000 calls per month; pay per use below"
    );
    assert_eq!(be.regions[0].cheaper.as_deref(), Some("pay per use"));
    assert_eq!(be.regions[1].cheaper.as_deref(), Some("subscription"));
    assert_eq!(comparison.cheapest.as_deref(), Some("subscription"));
}

#[test]
fn a_break_even_below_one_call_reads_as_its_fraction_and_from_the_first_call() {
    // 10^9 USD a call against a 1 USD monthly fee: pay per use costs more from the
    // first call on.
    let plans = [pay_per_use("1000000000"), Plan::from(subscription("1"))];
    let comparison = compute(&monthly(1_000_000_000_000_000), &plans);
    let be = comparison
        .break_even("pay per use", "subscription")
        .unwrap();
    // U* = P·T / X = 1 × 1 / 1,000,000,000 = 0.000000001 calls per month
    assert_eq!(be.points[0].calls_per_period, d("0.000000001"));
    assert_eq!(
        be.summary,
        "subscription is cheaper above 0.000000001 calls per month, so from the first \
         call; pay per use below"
    );
    // The table's break-even line is the same sentence.
    assert!(
        comparison.to_string().contains(
            "\nBreak-even:\n- subscription is cheaper above 0.000000001 calls per month, so \
             from the first call; pay per use below\n"
        ),
        "{comparison}"
    );

    // 10 USD a call against a 5 USD fee: U* = 5 / 10 = 0.5 calls per month.
    let plans = [pay_per_use("10"), Plan::from(subscription("5"))];
    let be = compute(&monthly(100), &plans).break_evens.remove(0);
    assert_eq!(be.points[0].calls_per_period, d("0.5"));
    assert_eq!(
        be.summary,
        "subscription is cheaper above 0.5 calls per month, so from the first call; pay \
         per use below"
    );
}

#[test]
fn break_even_counts_every_period_of_the_subscription() {
    // a 500 USD monthly fee against 0.0125 per call, compared over a year
    let year = UsageProfile::builder()
        .period(Period::Year)
        .calls_per_period(100_000)
        .build()
        .unwrap();
    let comparison = compute(
        &year,
        &[pay_per_use("0.0125"), Plan::from(subscription("500"))],
    );
    // U* = P·T / X = 500 × 12 / 0.0125 calls per year
    let be = &comparison.break_evens[0];
    assert_eq!(be.points[0].calls_per_period, d("480000"));
    assert_eq!(comparison.cheapest.as_deref(), Some("pay per use")); // 1,250 < 6,000
}

#[test]
fn a_quota_with_dearer_overage_makes_the_subscription_cheaper_only_in_a_band() {
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota("400", 40_000, "0.02"),
    ];
    let comparison = compute(&monthly(60_000), &plans);
    let be = &comparison.break_evens[0];
    // below the quota: 400 = 0.0125 U → U = 32,000
    // above it: 400 + 0.02 (U − 40,000) = 0.0125 U → 0.0075 U = 400 → U = 53,333.33…
    let calls: Vec<Decimal> = be
        .points
        .iter()
        .map(|p| p.calls_per_period.round_dp(6))
        .collect();
    assert_eq!(calls, vec![d("32000"), d("53333.333333")]);
    assert_eq!(
        be.summary,
        "pay per use is cheaper below 32,000 calls per month, subscription between 32,000 \
         and 53,333, pay per use above 53,333"
    );
    // at 60,000 calls: pay per use 750, subscription 400 + 20,000 × 0.02 = 800
    assert_eq!(comparison.cheapest.as_deref(), Some("pay per use"));
}

#[test]
fn a_quota_with_cheaper_overage_crosses_pay_per_use_once() {
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota("400", 10_000, "0.01"),
    ];
    let be = compute(&monthly(60_000), &plans).break_evens.remove(0);
    // at the quota the subscription (400) still costs more than pay per use (125);
    // above it: 400 + 0.01 (U − 10,000) = 0.0125 U → 300 = 0.0025 U → U = 120,000
    assert_eq!(be.points.len(), 1);
    assert_eq!(be.points[0].calls_per_period, d("120000"));
    assert_eq!(
        be.summary,
        "subscription is cheaper above 120,000 calls per month; pay per use below"
    );
}

#[test]
fn plans_with_the_same_shape_and_different_prices_never_break_even() {
    let plans = [
        pay_per_use("0.01").named("vendor A"),
        pay_per_use("0.02").named("vendor B"),
    ];
    let be = compute(&monthly(1000), &plans).break_evens.remove(0);
    assert!(be.points.is_empty());
    assert_eq!(be.regions.len(), 1);
    // 1,000 × (0.02 − 0.01) = 10 USD
    assert_eq!(
        be.summary,
        "vendor A is cheaper at every volume: it never breaks even with vendor B (10.00 USD \
         less at 1,000 calls per month)"
    );
}

#[test]
fn plans_that_cross_beyond_the_largest_volume_reported_are_not_said_never_to() {
    // 10^-12 USD a call against a 10^9 USD monthly fee: U* = 10^9 / 10^-12 = 10^21
    // calls a month, beyond the 10^18 reported.
    let plans = [
        pay_per_use("0.000000000001"),
        Plan::from(subscription("1000000000")),
    ];
    let be = compute(&monthly(100), &plans).break_evens.remove(0);
    assert!(be.points.is_empty());
    // at 100 calls: 10^9 − 100 × 10^-12 = 999,999,999.9999999999 USD, 2 places
    assert_eq!(
        be.summary,
        "pay per use is cheaper at every volume up to 10^18 calls per month: it breaks even \
         with subscription only beyond (1,000,000,000.00 USD less at 100 calls per month)"
    );
}

#[test]
fn a_second_crossing_beyond_the_largest_volume_reported_is_said() {
    // 400 USD for 40,000 calls, then 0.0125 + 10^-16 a call, against 0.0125 a call:
    // they cross at 400 / 0.0125 = 32,000, and again where 400 + (0.0125 + 10^-16)
    // (U − 40,000) = 0.0125 U, U = 40,000 + 100 / 10^-16 = 10^18 + 40,000: beyond.
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota("400", 40_000, "0.0125000000000001"),
    ];
    let be = compute(&monthly(60_000), &plans).break_evens.remove(0);
    assert_eq!(be.points.len(), 1);
    assert_eq!(be.points[0].calls_per_period, d("32000"));
    assert_eq!(
        be.summary,
        "subscription is cheaper above 32,000 calls per month (up to 10^18 calls per \
         month: they cross again beyond); pay per use below"
    );
}

/// A year of 1,000,000 calls at a mean latency of 1 ns (billed 1 ms): provisioned
/// concurrency then serves more calls than the 10^18 a break-even is reported to.
fn a_year_at_one_nanosecond() -> UsageProfile {
    UsageProfile::builder()
        .period(Period::Year)
        .calls_per_period(1_000_000)
        .mean_latency(Duration::from_nanos(1))
        .build()
        .unwrap()
}

/// Some note of `notes` holds every one of `all`.
#[track_caller]
fn assert_noted(notes: &[String], all: &[&str]) {
    assert!(
        notes.iter().any(|n| all.iter().all(|a| n.contains(a))),
        "{notes:?}"
    );
}

/// `rates` with serverless of `memory_gb` priced: on demand at `on_demand` USD/s,
/// provisioned concurrency standing at `standing` USD/s and its inference at
/// 0.0000233 USD/s.
fn with_serverless_rates(
    rates: RateTable,
    memory_gb: u32,
    on_demand: &str,
    standing: &str,
) -> RateTable {
    with_serverless_rates_using(rates, memory_gb, on_demand, standing, "0.0000233")
}

/// [`with_serverless_rates`], provisioned concurrency's inference at `usage`
/// USD/s.
fn with_serverless_rates_using(
    rates: RateTable,
    memory_gb: u32,
    on_demand: &str,
    standing: &str,
    usage: &str,
) -> RateTable {
    rates
        .with_rate(PriceKey::serverless(REGION, memory_gb), d(on_demand))
        .unwrap()
        .with_rate(
            PriceKey::ProvisionedConcurrency {
                region: REGION.into(),
                memory_gb,
            },
            d(standing),
        )
        .unwrap()
        .with_rate(
            PriceKey::ProvisionedConcurrencyUsage {
                region: REGION.into(),
                memory_gb,
            },
            d(usage),
        )
        .unwrap()
}

#[test]
fn plans_that_never_cross_are_not_said_to_cross_beyond_a_kink_past_the_largest_volume() {
    // Serverless 1 GB with 200 provisioned at a mean latency of 1 ns (billed 1 ms),
    // over a year of 8,760 h = 31,536,000 s:
    // - standing charge 200 × 0.00001 USD/s × 31,536,000 s = 63,072 USD;
    // - a call 0.001 s × 0.0000233 USD/s = 0.0000000233 USD;
    // - the provisioned concurrency serves 200 × 31,536,000 s ÷ 0.000000001 s
    //   = 6,307,200,000,000,000,000 calls (past 10^18), each call beyond costing
    //   0.001 s × (0.00004 − 0.0000233) USD/s = 0.0000000167 USD more.
    // A subscription of 100 USD a month is 100 × 8,760 / 730 = 1,200 USD a year,
    // below the standing charge alone, and it adds nothing per call: it is cheaper
    // at every volume, and the two never cross, before the kink or after it.
    let profile = a_year_at_one_nanosecond();
    let rates = with_serverless_rates(RateTable::new(REGION), 1, "0.00004", "0.00001");
    let serverless = ServerlessPlan::new(1024)
        .unwrap()
        .with_provisioned_concurrency(200)
        .unwrap();
    let plans = [Plan::from(subscription("100")), Plan::from(serverless)];
    let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
    let curve = &comparison
        .plan("serverless 1024 MB, 200 provisioned")
        .unwrap()
        .curve;
    assert_eq!(curve.included_calls, Some(d("6307200000000000000")));
    let be = &comparison.break_evens[0];
    assert!(be.points.is_empty());
    // 63,072 + 1,000,000 × 0.0000000233 = 63,072.0233; − 1,200 = 61,872.0233
    assert_eq!(
        be.summary,
        "subscription is cheaper at every volume: it never breaks even with serverless \
         1024 MB, 200 provisioned (61,872.02 USD less at 1,000,000 calls per year)"
    );
}

#[test]
fn a_crossing_between_two_kinks_past_the_largest_volume_is_said_to_be_beyond() {
    // Serverless 1 GB over a year (31,536,000 s) at a mean latency of 1 ns (billed
    // 1 ms): each call 0.001 × 0.0000233 = 0.0000000233 USD under either plan.
    // - 32 provisioned: 32 × 0.0000048 × 31,536,000 = 4,843.9296 USD, serving
    //   32 × 31,536,000 ÷ 0.000000001 = 1,009,152,000,000,000,000 calls;
    // - 200 provisioned: 200 × 0.0000048 × 31,536,000 = 30,274.56 USD, serving
    //   6,307,200,000,000,000,000 calls;
    // beyond what it serves, a call costs 0.001 × (0.00004 − 0.0000233) = 0.0000000167
    // USD more. 32 provisioned is 25,430.6304 USD cheaper up to 1.009152 × 10^18
    // calls, and the gap closes at 0.0000000167 a call: they cross at
    // 1,009,152,000,000,000,000 + 25,430.6304 / 0.0000000167 ≈ 1.0091535 × 10^18,
    // between the two kinks and past 10^18.
    let profile = a_year_at_one_nanosecond();
    let rates = with_serverless_rates(RateTable::new(REGION), 1, "0.00004", "0.0000048");
    let provisioned = |n| {
        Plan::from(
            ServerlessPlan::new(1024)
                .unwrap()
                .with_provisioned_concurrency(n)
                .unwrap(),
        )
    };
    let comparison =
        Comparison::compute(&profile, &[provisioned(32), provisioned(200)], &rates).unwrap();
    let be = &comparison.break_evens[0];
    assert!(be.points.is_empty());
    // 30,274.56 − 4,843.9296 = 25,430.6304 less at any volume up to the first kink
    assert_eq!(
        be.summary,
        "serverless 1024 MB, 32 provisioned is cheaper at every volume up to 10^18 calls \
         per year: it breaks even with serverless 1024 MB, 200 provisioned only beyond \
         (25,430.63 USD less at 1,000,000 calls per year)"
    );
}

#[test]
fn the_cheaper_plan_above_the_last_crossing_is_the_one_before_they_cross_again_beyond() {
    // Over a year (31,536,000 s) at a mean latency of 5 ns (billed 1 ms a call):
    // - 4 GB, 100 provisioned at 0.0000156 USD/s: 100 × 0.0000156 × 31,536,000 =
    //   49,196.16 USD; a call 0.001 × 0.0000233 = 0.0000000233 USD up to
    //   100 × 31,536,000 ÷ 0.000000005 = 630,720,000,000,000,000 calls, then
    //   0.001 × 0.00006 = 0.00000006 USD (on demand);
    // - 2 GB, 200 provisioned at 0.0000048 USD/s: 200 × 0.0000048 × 31,536,000 =
    //   30,274.56 USD; a call 0.001 × 0.000035 = 0.000000035 USD up to
    //   1,261,440,000,000,000,000 calls, then 0.001 × 0.00008 = 0.00000008 USD.
    // They cross where 18,921.6 = 0.0000000117 U: U = 1,617,230,769,230.77; past
    // the first kink the 4 GB plan is 18,921.6 − 0.0000000117 × 6.3072 × 10^17 =
    // −7,379,405,078.4 USD dearer and gains 0.000000025 a call: U = 6.3072 × 10^17 +
    // 7,379,405,078.4 ÷ 0.000000025 = 925,896,203,136,000,000 (below 10^18); past
    // the second kink (8,388,594,921.6 USD dearer, 0.00000002 a call less) they
    // cross again at 1.26144 × 10^18 + 4.1942974608 × 10^17 ≈ 1.68 × 10^18, beyond.
    // So the 2 GB plan is the cheaper above 925,896,203,136,000,000 up to 10^18,
    // though the 4 GB plan is the cheaper again at twice that.
    let profile = UsageProfile::builder()
        .period(Period::Year)
        .calls_per_period(1_000_000)
        .mean_latency(Duration::from_nanos(5))
        .build()
        .unwrap();
    let mut rates = RateTable::new(REGION);
    for (memory_gb, on_demand, standing, usage) in [
        (4, "0.00006", "0.0000156", "0.0000233"),
        (2, "0.00008", "0.0000048", "0.000035"),
    ] {
        rates = with_serverless_rates_using(rates, memory_gb, on_demand, standing, usage);
    }
    let provisioned = |mb, n| {
        Plan::from(
            ServerlessPlan::new(mb)
                .unwrap()
                .with_provisioned_concurrency(n)
                .unwrap(),
        )
    };
    let comparison = Comparison::compute(
        &profile,
        &[provisioned(4096, 100), provisioned(2048, 200)],
        &rates,
    )
    .unwrap();
    let be = &comparison.break_evens[0];
    let (four, two) = (
        "serverless 4096 MB, 100 provisioned",
        "serverless 2048 MB, 200 provisioned",
    );
    let cheaper: Vec<Option<&str>> = be.regions.iter().map(|r| r.cheaper.as_deref()).collect();
    assert_eq!(
        cheaper,
        vec![Some(two), Some(four), Some(two)],
        "{:?}",
        be.regions
    );
    let points: Vec<Decimal> = be
        .points
        .iter()
        .map(|p| p.calls_per_period.round_dp(2))
        .collect();
    assert_eq!(points, vec![d("1617230769230.77"), d("925896203136000000")]);
    assert!(
        be.summary
            .contains("(up to 10^18 calls per year: they cross again beyond)"),
        "{}",
        be.summary
    );
}

#[test]
fn plans_that_part_only_past_the_largest_volume_report_no_point_there() {
    // Serverless 1 GB, 200 provisioned at 1 ns over a year, twice: standing charge
    // and inference rate the same, 200 × 0.0000048 × 31,536,000 = 30,274.56 USD and
    // 0.001 × 0.0000233 a call. Both serve 200 × 31,536,000 ÷ 0.000000001
    // = 6,307,200,000,000,000,000 calls; beyond, one pays the on-demand 0.00004
    // (0.001 × (0.00004 − 0.0000233) = 0.0000000167 more a call), the other's
    // on-demand rate 0.00002 is below its inference rate and adds nothing. They part
    // at 6.3072 × 10^18 calls, past the 10^18 reported.
    let profile = a_year_at_one_nanosecond();
    let rates = with_serverless_rates(RateTable::new(REGION), 1, "0.00004", "0.0000048");
    let rates = with_serverless_rates(rates, 2, "0.00002", "0.0000048");
    let provisioned = |mb| {
        Plan::from(
            ServerlessPlan::new(mb)
                .unwrap()
                .with_provisioned_concurrency(200)
                .unwrap(),
        )
    };
    let comparison =
        Comparison::compute(&profile, &[provisioned(1024), provisioned(2048)], &rates).unwrap();
    let be = &comparison.break_evens[0];
    assert!(be.points.is_empty(), "{:?}", be.points);
    assert_eq!(be.regions.len(), 1);
    assert_eq!(be.regions[0].cheaper, None);
    // Not "the same at every volume": past 6.3072 × 10^18 calls the 1 GB plan pays
    // 0.0000000167 USD a call more.
    assert_eq!(
        be.summary,
        "serverless 1024 MB, 200 provisioned and serverless 2048 MB, 200 provisioned cost \
         the same at every volume up to 10^18 calls per year: they part only beyond"
    );
}

#[test]
fn plans_that_touch_at_the_profiles_volume_say_so_not_zero_less() {
    let plans = [
        pay_per_use("0.01"),
        subscription_with_quota("400", 40_000, "0.02"),
    ];
    let be = compute(&monthly(40_000), &plans).break_evens.remove(0);
    // Pay per use, 0.01 U, meets the subscription at U = 40,000 (400 = 400) and
    // nowhere else: below, 0.01 U < 400; above, 400 + 0.02 (U − 40,000) − 0.01 U
    // = 0.01 U − 400 > 0.
    assert_eq!(be.regions.len(), 1);
    assert_eq!(
        be.summary,
        "pay per use costs the same as subscription at 40,000 calls per month and less at \
         every other volume"
    );
}

#[test]
fn identical_plans_cost_the_same_at_every_volume() {
    let plans = [
        Plan::from(subscription("100")).named("plan A"),
        Plan::from(subscription("100")).named("plan B"),
    ];
    let be = compute(&monthly(1000), &plans).break_evens.remove(0);
    assert!(be.points.is_empty());
    assert_eq!(be.regions[0].cheaper, None);
    assert_eq!(
        be.summary,
        "plan A and plan B cost the same at every volume"
    );
}

#[tokio::test]
async fn serverless_and_an_always_on_instance_break_even_at_a_utilisation() {
    let profile = calls_of_ms(1_000_000, 800);
    let plans = [
        Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
        Plan::from(ServerlessPlan::new(6144).unwrap()),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    let be = comparison
        .break_even("ml.m5.xlarge x1", "serverless 6144 MB")
        .unwrap();
    // instance: 730 h × 0.23 = 167.9 USD; serverless: 0.8 s × 0.00012 = 0.000096 USD a call
    // U* = 167.9 / 0.000096 = 1,748,958.33… calls
    let point = &be.points[0];
    assert_eq!(point.calls_per_period.round_dp(2), d("1748958.33"));
    // utilisation there: U* × 0.8 s / (730 × 3,600 s) = 0.23 / (3,600 × 0.00012) = 0.5324…
    assert_eq!(
        point.utilisation["ml.m5.xlarge x1"].round_dp(4),
        d("0.5324")
    );
    // One instance serving one call at a time serves 730 h × 3,600 s ÷ 0.8 s =
    // 3,285,000 calls a month: the range it is cheaper in ends there.
    assert_eq!(
        be.summary,
        "ml.m5.xlarge x1 is cheaper above 1,748,958 calls per month, up to the 3,285,000 it \
         can serve at 1 call per instance (ml.m5.xlarge x1 at 53.2% utilisation); \
         serverless 6144 MB below"
    );
}

// ---------------------------------------------------------------- profiles

#[test]
fn calls_per_day_become_calls_per_period_through_hours() {
    let month = UsageProfile::builder()
        .period(Period::Month)
        .calls_per_day(2_400)
        .build()
        .unwrap();
    // 2,400 calls/day × 730 h / 24 h
    assert_eq!(month.calls_per_period, d("73000"));
    let year = UsageProfile::builder()
        .period(Period::Year)
        .calls_per_day(1_000)
        .build()
        .unwrap();
    // 1,000 × 365 days
    assert_eq!(year.calls_per_period, d("365000"));
}

#[test]
fn a_profile_from_metered_totals_prices_like_a_stated_one() {
    // 50 calls in 12 minutes, 40 s busy in total, 100 KiB in, 50 KiB out
    let totals = UsageTotals::new(50, Duration::from_secs(720))
        .with_busy_time(Duration::from_secs(40))
        .with_bytes(102_400, 51_200)
        .with_tokens(5_000, 1_000);
    let profile = UsageProfile::from_totals(&totals, Period::Month).unwrap();
    // 50 calls × (730 × 3,600 s) / 720 s
    assert_eq!(profile.calls_per_period, d("182500"));
    // 40 s / 50 calls
    assert_eq!(profile.mean_latency, Duration::from_millis(800));
    assert_eq!(profile.bytes_in_per_call, d("2048"));
    assert_eq!(profile.bytes_out_per_call, d("1024"));
    assert_eq!(profile.tokens_in_per_call, d("100"));
    assert_eq!(profile.tokens_out_per_call, d("20"));
    // priced the same as a stated profile: 182,500 × 0.0125
    assert_eq!(
        cost(&compute(&profile, &[pay_per_use("0.0125")]), "pay per use"),
        d("2281.25")
    );
}

// ---------------------------------------------------------------- profiles from receipts

/// The two receipts an asynchronous invocation leaves (see `client::async_invoke`):
/// the submission (a data-in and an inference-fee line) at `submitted_at` after a
/// 50 ms request, and the settlement (compute, data-out and token lines) stamped with
/// the same start, the same endpoint and the same call id, its latency the
/// `processing_s` seconds the model worked. Their amounts play no part here.
fn async_receipts(
    call_id: &str,
    submitted_at: &str,
    bytes_in: u64,
    processing_s: u64,
    bytes_out: u64,
    tokens: (u64, u64),
) -> [Cost; 2] {
    let provenance = serde_json::json!({"source": "snapshot", "sku": null,
        "effective_date": "2026-05-20", "fetched_at": null, "note": null});
    let line = |item: &str, unit: &str, cost: &str| {
        serde_json::json!({"item": item, "quantity": "1", "unit": unit,
            "price": {"status": "priced", "usd_per_unit": cost, "cost_usd": cost,
                      "provenance": provenance}})
    };
    let receipt = |usage: serde_json::Value, lines: Vec<serde_json::Value>, note: String| {
        serde_json::from_value::<Cost>(serde_json::json!({
            "call_id": call_id, "at": submitted_at, "endpoint": "nightly-batch",
            "variant": "AllTraffic", "allocation": "busy_time", "usage": usage,
            "lines": lines, "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0", "notes": [note]
        }))
        .unwrap()
    };
    let submission = receipt(
        serde_json::json!({"operation": "InvokeEndpointAsync", "latency_us": 50_000,
            "bytes_in": bytes_in, "bytes_out": 0, "variant": null, "outcome": "ok"}),
        vec![
            line("data_in", "gigabytes", "0.000001"),
            line("inference", "calls", "0.0007"),
        ],
        "submission: compute is billed as instance-hours of the async endpoint (AsyncInf) \
         and goes on the settlement receipt"
            .into(),
    );
    let settlement = receipt(
        serde_json::json!({"operation": "InvokeEndpointAsync",
            "latency_us": processing_s * 1_000_000, "bytes_in": 0, "bytes_out": bytes_out,
            "variant": "AllTraffic", "input_tokens": tokens.0, "output_tokens": tokens.1,
            "outcome": "ok"}),
        vec![
            line("compute", "instance_hours", "0.002"),
            line("data_out", "gigabytes", "0.000001"),
            line("input_tokens", "tokens", "0.0001"),
            line("output_tokens", "tokens", "0.0001"),
        ],
        format!("settlement of the async invocation submitted at {submitted_at}"),
    );
    [submission, settlement]
}

/// Three async invocations, both receipts each, in the order a ledger holds them
/// (each settlement after its submission): submitted at 10:00:00, 10:20:00 and
/// 10:40:00, one every 20 minutes; the model worked 30 s, 60 s and 90 s, so the last
/// ends at 10:41:30.
fn three_async_invocations() -> Vec<Cost> {
    let [s1, t1] = async_receipts("req-1", "2026-05-20T10:00:00Z", 1000, 30, 300, (100, 40));
    let [s2, t2] = async_receipts("req-2", "2026-05-20T10:20:00Z", 2000, 60, 600, (200, 50));
    let [s3, t3] = async_receipts("req-3", "2026-05-20T10:40:00Z", 3000, 90, 900, (300, 60));
    vec![s1, s2, t1, s3, t2, t3]
}

#[test]
fn an_async_invocation_is_one_call_with_the_quantities_of_both_its_receipts() {
    let receipts = three_async_invocations();
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    // six receipts, three invocations
    assert_eq!(totals.calls, 3);
    assert_eq!(totals.unsettled_async_calls, 0);
    // three starts 20 min apart: three calls of one every 20 min = 3,600 s (longer
    // than 10:00:00 to the last end, 10:40:00 + 90 s = 10:41:30)
    assert_eq!(totals.observed, Duration::from_secs(3600));
    // busy time is the settlements' model time: 30 + 60 + 90 s (not the 3 × 50 ms
    // the submissions took to queue the requests)
    assert_eq!(totals.busy_time, Duration::from_secs(180));
    // data in from the submissions, data out and tokens from the settlements
    assert_eq!((totals.bytes_in, totals.bytes_out), (6000, 1800));
    assert_eq!((totals.tokens_in, totals.tokens_out), (600, 150));

    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 3 calls × 86,400 s / 3,600 s = 72 calls a day (not 144: one per invocation)
    assert_eq!(profile.calls_per_period, d("72"));
    // 180 s / 3 calls
    assert_eq!(profile.mean_latency, Duration::from_secs(60));
    // 6,000 B / 3 = 2,000; 1,800 B / 3 = 600; 600 / 3 = 200 and 150 / 3 = 50 tokens
    assert_eq!(profile.bytes_in_per_call, d("2000"));
    assert_eq!(profile.bytes_out_per_call, d("600"));
    assert_eq!(profile.tokens_in_per_call, d("200"));
    assert_eq!(profile.tokens_out_per_call, d("50"));
    // priced per call: 72 calls × 0.01 USD
    assert_eq!(
        cost(&compute(&profile, &[pay_per_use("0.01")]), "pay per use"),
        d("0.72")
    );
}

#[test]
fn a_submission_not_yet_settled_is_a_call_whose_model_time_is_not_guessed() {
    let mut receipts = three_async_invocations();
    // req-3's settlement is not in the ledger yet
    receipts.retain(|c| !(c.call_id == "req-3" && c.usage.bytes_out > 0));
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(totals.calls, 3);
    assert_eq!(totals.unsettled_async_calls, 1);
    // req-3 queued at 10:40:00 in 50 ms: 10:00:00 to its end is 2,400.05 s; its
    // submission is a start all the same: 3 starts, one every 20 min = 3,600 s
    assert_eq!(totals.observed, Duration::from_secs(3600));

    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // data in is known for all three: 6,000 B / 3 calls
    assert_eq!(profile.bytes_in_per_call, d("2000"));
    // model time, data out and tokens over the two settled calls:
    // (30 + 60) s / 2 = 45 s; (300 + 600) B / 2 = 450 B; (100 + 200) / 2 = 150 and
    // (40 + 50) / 2 = 45 tokens
    assert_eq!(profile.mean_latency, Duration::from_secs(45));
    assert_eq!(profile.bytes_out_per_call, d("450"));
    assert_eq!(profile.tokens_in_per_call, d("150"));
    assert_eq!(profile.tokens_out_per_call, d("45"));
}

/// The one receipt `MeteringInterceptor` makes of the `InvokeEndpointAsync` call
/// `i` (noted "metered by the SDK interceptor": it makes no settlement), one a
/// minute from 10:00:00: 1 MiB in, priced; compute and data out not seen, unpriced;
/// its latency, 40 + i ms, the time SageMaker took to queue the request.
fn intercepted_async_receipt(i: u32) -> Cost {
    let provenance = serde_json::json!({"source": "snapshot", "sku": null,
        "effective_date": "2026-05-20", "fetched_at": null, "note": null});
    serde_json::from_value(serde_json::json!({
        "call_id": format!("inference-{i}"), "at": format!("2026-05-20T10:{i:02}:00Z"),
        "endpoint": "nightly-batch", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpointAsync", "latency_us": 40_000 + i * 1_000,
                  "bytes_in": 1_048_576, "bytes_out": 0, "variant": "AllTraffic",
                  "outcome": "ok"},
        "lines": [
            {"item": "data_in", "quantity": "0.0009765625", "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016",
                       "cost_usd": "0.000015625", "provenance": provenance}},
            {"item": "compute", "quantity": "0", "unit": "instance_hours",
             "price": {"status": "unpriced",
                       "reason": "the interceptor does not see the job run"}},
            {"item": "data_out", "quantity": "0", "unit": "gigabytes",
             "price": {"status": "unpriced",
                       "reason": "the interceptor does not see the output"}}
        ],
        "cost_usd": "0.000015625", "currency": "USD", "region": REGION,
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "notes": ["metered by the SDK interceptor"]
    }))
    .unwrap()
}

#[tokio::test]
async fn the_interceptors_only_receipt_of_an_async_call_is_the_call_not_a_submission() {
    // Ten InvokeEndpointAsync calls through a plain SDK client with
    // MeteringInterceptor, one a minute from 10:00:00: one receipt each, the whole
    // call, which no settlement follows.
    let receipts: Vec<Cost> = (0..10).map(intercepted_async_receipt).collect();
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(totals.calls, 10);
    // None awaits a settlement: they are counted apart, as the interceptor's.
    assert_eq!(totals.unsettled_async_calls, 0);
    assert_eq!(totals.intercepted_async_calls, 10);
    // Accepted (HTTP 2XX): the per-inference fee's calls, as a submission's.
    assert_eq!(totals.answered_calls, Some(10));
    // Data in is known: 10 × 2^20 B. Their latencies (40 … 49 ms) are the time to
    // queue each request, not model time, and their model time, data out and
    // tokens are not seen: no busy time, and no call the means are over.
    assert_eq!((totals.bytes_in, totals.bytes_out), (10 << 20, 0));
    assert_eq!(totals.busy_time, Duration::ZERO);
    assert_eq!(totals.settled_calls(), Some(0));
    // 10 starts a minute apart, 9 gaps: 9 × 60 s × 10 / 9 = 600 s (longer than
    // 10:00:00 to the last end, 10:09:00.049).
    assert_eq!(totals.observed, Duration::from_secs(600));

    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 10 calls × 86,400 s / 600 s = 1,440 calls a day, 1 MiB in each, all answered
    assert_eq!(profile.calls_per_period, d("1440"));
    assert_eq!(profile.bytes_in_per_call, d("1048576"));
    assert_eq!(profile.answered_per_call, Some(d("1")));
    assert_eq!(profile.mean_latency, Duration::ZERO);

    // An always-on ml.m5.xlarge over a day: 24 h × 0.23 USD/h = 5.52 USD; each
    // call's data in 2^20 / 2^30 = 0.0009765625 GB × 0.016 USD/GB = 0.000015625
    // USD (the receipts' own figure), × 1,440 calls = 0.0225 USD: 5.5425 USD.
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap())];
    let comparison = priced(&profile, &plans).await.unwrap();
    let row = comparison.plan("ml.m5.xlarge x1").unwrap();
    assert_eq!(row.curve.usd_per_call, d("0.000015625"));
    assert_eq!(row.cost_usd, d("5.5425"));
    assert!(
        !row.notes.iter().any(|n| n.contains("settle")),
        "{:?}",
        row.notes
    );

    // With a synchronous call of 200 ms and 400 B out at 10:10:00, the means of
    // model time and data out are that call's, not diluted by the ten calls whose
    // figures were not seen: 200 ms and 400 B a call (not 200 ms / 11).
    let mut receipts = receipts;
    let mut sync =
        serde_json::to_value(sync_receipt("c-1", "2026-05-20T10:10:00Z", 200_000)).unwrap();
    sync["usage"]["bytes_out"] = 400.into();
    receipts.push(serde_json::from_value(sync).unwrap());
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!((totals.calls, totals.settled_calls()), (11, Some(1)));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    assert_eq!(profile.mean_latency, Duration::from_millis(200));
    assert_eq!(profile.bytes_out_per_call, d("400"));
}

/// The receipt of an `InvokeEndpointAsync` submission of 2^29 B that failed after
/// SageMaker accepted it (a 202 whose body was cut off, then two 503s), submitted
/// at `at`: outcome `error`, its data in, no per-inference line (no fee
/// configured); made by `MeteringInterceptor` when `intercepted`, else by `Client`.
fn accepted_then_failed_receipt(call_id: &str, at: &str, intercepted: bool) -> Cost {
    let provenance = serde_json::json!({"source": "snapshot", "sku": null,
        "effective_date": "2026-05-20", "fetched_at": null, "note": null});
    let mut notes = vec![
        "3 attempts: 1 accepted by SageMaker (a 2XX answer, one whose body was cut off \
         included), each a submission queued and billed: its data in and per-inference fee",
        "the submission failed after SageMaker accepted it (a 2XX answer that could not be \
         read): queued, it is billed as submitted; its output location is unknown, so the \
         job's compute (AsyncInf instance-hours) cannot be metered on a settlement receipt",
    ];
    if intercepted {
        notes.insert(0, "metered by the SDK interceptor");
    }
    serde_json::from_value(serde_json::json!({
        "call_id": call_id, "at": at, "endpoint": "realtime", "variant": null,
        "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpointAsync", "latency_us": 300_000,
                  "bytes_in": 1u64 << 29, "bytes_out": 0, "variant": null,
                  "outcome": "error", "attempts": 3},
        "lines": [
            {"item": "data_in", "quantity": "0.5", "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016",
                       "cost_usd": "0.008", "provenance": provenance}}
        ],
        "cost_usd": "0.008", "currency": "USD", "region": REGION,
        "running_client_usd": "0", "running_endpoint_usd": "0", "notes": notes
    }))
    .unwrap()
}

#[test]
fn an_async_submission_accepted_then_failed_counts_its_inference_without_a_fee_line() {
    // One InvokeEndpoint call answered 200 at 10:00, and at 10:10 an async
    // submission SageMaker accepted (a 202 cut off) before its retries failed:
    // queued, it runs, one inference, though its receipt has no per-inference line
    // (no fee configured) and its outcome is `error`. 2 inferences over 2 calls:
    // 1 a call (not 1 / 2 = 0.5, the answered call's alone). Through `Client` (its
    // submission receipt) and through `MeteringInterceptor` (its only receipt).
    for intercepted in [false, true] {
        let receipts = [
            sync_receipt("c-1", "2026-05-20T10:00:00Z", 100_000),
            accepted_then_failed_receipt("a-1", "2026-05-20T10:10:00Z", intercepted),
        ];
        let totals = UsageTotals::from_receipts(&receipts).unwrap();
        assert_eq!(
            (totals.calls, totals.inferences),
            (2, Some(2)),
            "intercepted: {intercepted}"
        );
        let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
        assert_eq!(
            profile.answered_per_call,
            Some(d("1")),
            "intercepted: {intercepted}"
        );
    }
}

#[test]
fn synchronous_calls_and_async_invocations_count_one_each() {
    let mut receipts = three_async_invocations();
    let sync: Cost = serde_json::from_value(serde_json::json!({
        "call_id": "req-1", "at": "2026-05-20T10:30:00Z", "endpoint": "realtime",
        "variant": "AllTraffic", "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 200_000, "bytes_in": 400,
                  "bytes_out": 100, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": "0", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap();
    receipts.push(sync.clone());
    receipts.push(sync);
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    // 3 invocations + 2 synchronous calls (a synchronous receipt is a call, whatever
    // its id)
    assert_eq!(totals.calls, 5);
    // 180 s of async model time + 2 × 0.2 s
    assert_eq!(totals.busy_time, Duration::from_millis(180_400));
    // 6,000 + 2 × 400 in; 1,800 + 2 × 100 out
    assert_eq!((totals.bytes_in, totals.bytes_out), (6800, 2000));
}

/// A synchronous call's receipt on `endpoint` starting at `at`, its latency
/// `latency_us` microseconds; its amounts play no part here.
fn sync_receipt(call_id: &str, at: &str, latency_us: u64) -> Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": call_id, "at": at, "endpoint": "realtime",
        "variant": "AllTraffic", "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpoint", "latency_us": latency_us, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": "0", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

#[test]
fn a_ledgers_calls_stand_for_one_gap_of_traffic_each() {
    let per_day = |receipts: &[Cost]| {
        let totals = UsageTotals::from_receipts(receipts).unwrap();
        UsageProfile::from_totals(&totals, Period::Day)
            .unwrap()
            .calls_per_period
    };
    // Two calls an hour apart are one call an hour: 24 a day. From the first start
    // to the last end (1 h + 1 s) they would read as about 48.
    let two = [
        sync_receipt("c-1", "2026-05-20T10:00:00Z", 1_000_000),
        sync_receipt("c-2", "2026-05-20T11:00:00Z", 1_000_000),
    ];
    assert_eq!(per_day(&two), d("24"));
    // One call at the top of each hour for a day: 24 starts, 23 h apart: 24 a day.
    let hourly: Vec<Cost> = (0..24)
        .map(|h| {
            sync_receipt(
                &format!("h-{h}"),
                &format!("2026-05-20T{h:02}:00:00Z"),
                500_000,
            )
        })
        .collect();
    assert_eq!(per_day(&hourly), d("24"));
    // 16 calls started at once, 2 s each: no gap between their starts, so the time is
    // the first start to the last end, 2 s: 16 × 86,400 / 2 = 691,200 a day.
    let burst: Vec<Cost> = (0..16)
        .map(|i| sync_receipt(&format!("b-{i}"), "2026-05-20T10:00:00Z", 2_000_000))
        .collect();
    assert_eq!(per_day(&burst), d("691200"));
    // A settling worker's ledger holds settlements only: two invocations submitted
    // an hour apart (each settled after 30 s) are one call an hour too, 24 a day.
    let [_, first] = async_receipts("q-1", "2026-05-20T10:00:00Z", 100, 30, 10, (1, 1));
    let [_, second] = async_receipts("q-2", "2026-05-20T11:00:00Z", 100, 30, 10, (1, 1));
    assert_eq!(per_day(&[first, second]), d("24"));
}

/// A synchronous call's receipt like [`sync_receipt`], ended with `outcome`
/// (`"ok"`, `"error"`: a model error, HTTP 424, `"cancelled"`).
fn sync_receipt_ending(call_id: &str, at: &str, latency_us: u64, outcome: &str) -> Cost {
    let mut cost = serde_json::to_value(sync_receipt(call_id, at, latency_us)).unwrap();
    cost["usage"]["outcome"] = outcome.into();
    serde_json::from_value(cost).unwrap()
}

#[tokio::test]
async fn a_per_inference_fee_and_a_quota_count_the_answered_calls_of_a_ledger_not_errors() {
    // 1,000 calls of 100 ms in one hour, one every 3.6 s from 10:00:00 (1,000 starts
    // 999 gaps apart: 999 × 3.6 s × 1,000 / 999 = 3,600 s); calls 0, 10, 20, …, 990
    // (100 of them) were model errors.
    let start = chrono::DateTime::parse_from_rfc3339("2026-05-20T10:00:00Z").unwrap();
    let receipts: Vec<Cost> = (0..1000u32)
        .map(|i| {
            let at = start + chrono::Duration::milliseconds(i64::from(i) * 3600);
            let outcome = if i % 10 == 0 { "error" } else { "ok" };
            sync_receipt_ending(&format!("c-{i}"), &at.to_rfc3339(), 100_000, outcome)
        })
        .collect();
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(totals.calls, 1000);
    assert_eq!(totals.answered_calls, Some(900));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 1,000 calls an hour × 24 = 24,000 calls a day, 900 / 1,000 = 0.9 of them answered
    assert_eq!(profile.calls_per_period, d("24000"));
    assert_eq!(profile.answered_per_call, Some(d("0.9")));

    let plans = [
        // --per-1000 0.50: 0.0005 USD a call
        Plan::from(PerInferencePlan::per_thousand_calls(d("0.50")).unwrap()),
        // 5 USD a day for 20,000 calls, 0.001 USD each above
        subscription_with_quota_per(Period::Day, "5", 20_000, "0.001"),
        Plan::from(ServerlessPlan::new(3072).unwrap()),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    // The receipts charge the 2XX answers only: 24,000 × 0.9 = 21,600 a day ×
    // 0.0005 = 10.80 USD (not 24,000 × 0.0005 = 12.00).
    let row = comparison.plan("pay per use").unwrap();
    assert_eq!(row.cost_usd, d("10.80"));
    assert_noted(&row.notes, &["90.0%", "21,600 per day", "HTTP 2XX"]);
    // 21,600 answered − 20,000 included = 1,600 × 0.001 = 1.60; + 5 = 6.60 USD (not
    // 4,000 above the quota: 9.00)
    let row = comparison.plan("subscription").unwrap();
    assert_eq!(row.cost_usd, d("6.60"));
    assert_noted(
        &row.notes,
        &["includes 20,000 calls per day; 1,600 calls above that"],
    );
    // Compute runs for every call, model errors too: 24,000 × 0.1 s × 0.00006 USD/s
    // = 0.144 USD.
    let row = comparison.plan("serverless 3072 MB").unwrap();
    assert_eq!(row.cost_usd, d("0.144"));
    assert!(
        !row.notes.iter().any(|n| n.contains("HTTP 2XX")),
        "{:?}",
        row.notes
    );
}

/// A synchronous call's receipt like [`sync_receipt_ending`], whose per-inference
/// line (0.50 USD per 1,000 inferences, configured for the endpoint) charged
/// `inferences`: one per HTTP 2XX answer of its attempts.
fn sync_receipt_charging(call_id: &str, at: &str, outcome: &str, inferences: u64) -> Cost {
    let mut cost =
        serde_json::to_value(sync_receipt_ending(call_id, at, 100_000, outcome)).unwrap();
    let usd = Decimal::from(inferences) * d("0.0005");
    cost["lines"] = serde_json::json!([
        {"item": "inference", "quantity": inferences.to_string(), "unit": "calls",
         "price": {"status": "priced", "usd_per_unit": "0.0005",
                   "cost_usd": usd.to_string(),
                   "provenance": {"source": "override", "sku": null, "effective_date": null,
                                  "fetched_at": null, "note": "configured per endpoint"}}}
    ]);
    cost["cost_usd"] = usd.to_string().into();
    serde_json::from_value(cost).unwrap()
}

/// A per-inference fee and a quota count the inferences the receipts charged, one
/// per HTTP 2XX answer: a call whose 2XX answer was cut off, tried again by the
/// SDK and answered again was charged two, and one cut off then failed one.
#[tokio::test]
async fn a_fee_and_a_quota_count_the_inferences_the_receipts_charged_not_only_the_answered_calls() {
    // 6 calls of 100 ms in one hour, one every 10 min from 10:00 (6 starts 5 gaps
    // apart: 5 × 10 min × 6 / 5 = 60 min), each receipt's fee line at 0.50 USD per
    // 1,000 inferences: c-0 and c-2 answered, 1 inference each; c-1 and c-5 answered
    // twice (a 200 cut off, tried again, 200 again), 2 each; c-3 a 200 cut off and
    // then a model error on the retry, 1; c-4 a model error, 0. The receipts
    // charged 1 + 2 + 1 + 1 + 0 + 2 = 7 inferences, 7 × 0.0005 = 0.0035 USD in the
    // hour, for 4 calls answered.
    let receipts = [
        sync_receipt_charging("c-0", "2026-05-20T10:00:00Z", "ok", 1),
        sync_receipt_charging("c-1", "2026-05-20T10:10:00Z", "ok", 2),
        sync_receipt_charging("c-2", "2026-05-20T10:20:00Z", "ok", 1),
        sync_receipt_charging("c-3", "2026-05-20T10:30:00Z", "error", 1),
        sync_receipt_charging("c-4", "2026-05-20T10:40:00Z", "error", 0),
        sync_receipt_charging("c-5", "2026-05-20T10:50:00Z", "ok", 2),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(
        (totals.calls, totals.answered_calls, totals.inferences),
        (6, Some(4), Some(7))
    );
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 6 calls an hour × 24 = 144 calls a day, 7 × 24 = 168 inferences
    assert_eq!(profile.calls_per_period, d("144"));
    assert_eq!(profile.answered_calls_per_period, Some(d("168")));

    let plans = [
        // --per-1000 0.50: 0.0005 USD an inference
        Plan::from(PerInferencePlan::per_thousand_calls(d("0.50")).unwrap()),
        // 5 USD a day for 150 inferences, 0.001 USD each above
        subscription_with_quota_per(Period::Day, "5", 150, "0.001"),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    // 168 × 0.0005 = 0.084 USD, the receipts' 0.0035 USD of the hour × 24 (not the
    // 4 answered calls' 96 a day × 0.0005 = 0.048)
    assert_eq!(cost(&comparison, "pay per use"), d("0.084"));
    // 168 − 150 included = 18 × 0.001 = 0.018; + 5 = 5.018 USD (not 96 answered,
    // within the quota: 5)
    assert_eq!(cost(&comparison, "subscription"), d("5.018"));
    // In calls made, 7 / 6 inferences each: 0.0005 × 7 / 6 USD a call.
    let row = comparison.plan("pay per use").unwrap();
    assert_eq!(
        row.curve.usd_per_call,
        d("0.0005") * (Decimal::from(7) / Decimal::from(6))
    );
    assert_noted(&row.notes, &["116.7%", "168 per day", "HTTP 2XX"]);
}

/// Two of three calls answered: the share, 2/3, is 0.666…67 at 28 digits, but a
/// fee or a quota at the profile's volume charges the answered calls themselves,
/// scaled as the calls are, exactly.
#[tokio::test]
async fn a_fee_and_a_quota_charge_the_answered_calls_exactly_when_their_share_is_not() {
    // 3 calls of 100 ms in one hour, at 10:00, 10:20 and 10:40 (3 starts 2 gaps
    // apart: 2 × 20 min × 3 / 2 = 60 min); the second was a model error.
    let receipts = [
        sync_receipt_ending("c-0", "2026-05-20T10:00:00Z", 100_000, "ok"),
        sync_receipt_ending("c-1", "2026-05-20T10:20:00Z", 100_000, "error"),
        sync_receipt_ending("c-2", "2026-05-20T10:40:00Z", 100_000, "ok"),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!((totals.calls, totals.answered_calls), (3, Some(2)));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 3 calls an hour × 24 = 72 calls a day; 2 × 24 = 48 of them answered
    assert_eq!(profile.calls_per_period, d("72"));
    assert_eq!(profile.answered_calls_per_period, Some(d("48")));

    let plans = [
        // --per-1000 0.50: 0.0005 USD a call
        Plan::from(PerInferencePlan::per_thousand_calls(d("0.50")).unwrap()),
        // 5 USD a day for 48 calls, 1 USD each above
        subscription_with_quota_per(Period::Day, "5", 48, "1"),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    // 48 answered × 0.0005 = 0.024 USD (not 72 × 0.666…67 × 0.0005, a hair under)
    assert_eq!(cost(&comparison, "pay per use"), d("0.024"));
    // 48 answered, 48 included: none above, the fee alone, 5 USD (not 72 × 0.666…67
    // = 48.000…002 answered, 5.000…002 USD)
    let row = comparison.plan("subscription").unwrap();
    assert_eq!(row.cost_usd, d("5"));
    assert_noted(
        &row.notes,
        &["includes 48 calls per day; 0 calls above that"],
    );
    // Over a month the answered calls scale as the calls do: 48 × 730 / 24 = 1,460
    // of 72 × 730 / 24 = 2,190; 1,460 × 0.0005 = 0.73 USD.
    let month = profile.over(Period::Month).unwrap();
    assert_eq!(month.calls_per_period, d("2190"));
    assert_eq!(month.answered_calls_per_period, Some(d("1460")));
    let comparison = priced(&month, &plans[..1]).await.unwrap();
    assert_eq!(cost(&comparison, "pay per use"), d("0.73"));
}

/// A synchronous call's receipt like [`sync_receipt_ending`], whose response
/// reported `tokens` (input, output).
fn sync_receipt_with_tokens(call_id: &str, at: &str, tokens: (u64, u64)) -> Cost {
    let mut cost = serde_json::to_value(sync_receipt(call_id, at, 100_000)).unwrap();
    cost["usage"]["input_tokens"] = tokens.0.into();
    cost["usage"]["output_tokens"] = tokens.1.into();
    serde_json::from_value(cost).unwrap()
}

/// A per-token price charges the tokens the responses reported, as the receipts'
/// token lines do: a model error (HTTP 424) answered no tokens and its receipt
/// charged none, and a call cancelled before its answer came none either (a lower
/// bound, as for a fee). The ledger's mean tokens per call are the answered calls'
/// and are charged on the answered calls, not on every call made.
#[tokio::test]
async fn a_per_token_plan_charges_the_tokens_of_the_answered_calls_of_a_ledger() {
    // 6 calls of 100 ms in one hour, one every 10 min from 10:00 (6 starts 5 gaps
    // apart: 5 × 10 min × 6 / 5 = 60 min): three answered, reporting 900 + 1,000 +
    // 1,100 = 3,000 tokens in and 150 + 200 + 250 = 600 out; two model errors and
    // a call cancelled before its answer, none reporting tokens.
    let receipts = [
        sync_receipt_with_tokens("c-0", "2026-05-20T10:00:00Z", (900, 150)),
        sync_receipt_ending("c-1", "2026-05-20T10:10:00Z", 100_000, "error"),
        sync_receipt_with_tokens("c-2", "2026-05-20T10:20:00Z", (1_000, 200)),
        sync_receipt_ending("c-3", "2026-05-20T10:30:00Z", 100_000, "cancelled"),
        sync_receipt_with_tokens("c-4", "2026-05-20T10:40:00Z", (1_100, 250)),
        sync_receipt_ending("c-5", "2026-05-20T10:50:00Z", 100_000, "error"),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!((totals.calls, totals.answered_calls), (6, Some(3)));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 6 calls an hour × 24 = 144 calls a day, 3 × 24 = 72 of them answered; the
    // means are over the 3 calls that reported tokens: 3,000 / 3 = 1,000 in and
    // 600 / 3 = 200 out.
    assert_eq!(profile.calls_per_period, d("144"));
    assert_eq!(profile.answered_calls_per_period, Some(d("72")));
    assert_eq!(
        (profile.tokens_in_per_call, profile.tokens_out_per_call),
        (d("1000"), d("200"))
    );

    // $0.50 per million tokens in, $1.50 per million out.
    let plans = [Plan::from(
        PerTokenPlan::per_million_tokens(d("0.50"), d("1.50")).unwrap(),
    )];
    let comparison = priced(&profile, &plans).await.unwrap();
    let row = comparison.plan("per token").unwrap();
    // The receipts of the hour: 3,000 × 0.50 / 10^6 = 0.0015 USD in and 600 × 1.50
    // / 10^6 = 0.0009 USD out, 0.0024 USD (the model errors' and the cancelled
    // call's token lines charge nothing); × 24 h = 0.0576 USD a day. Per answered
    // call, 1,000 × 0.50 / 10^6 + 200 × 1.50 / 10^6 = 0.0008 USD: 72 × 0.0008 =
    // 0.0576 (not 144 calls × 0.0008 = 0.1152, the model errors and the cancelled
    // call charged as if they had answered the mean).
    assert_eq!(row.cost_usd, d("0.0576"));
    // In calls made, half of them answered: 0.5 × 0.0008 = 0.0004 USD a call.
    assert_eq!(row.curve.usd_per_call, d("0.0004"));
    assert_noted(&row.notes, &["50.0%", "72 per day", "HTTP 2XX"]);
}

/// A model error or a call cancelled before its answer came had no tokens to
/// report, and its receipt's token lines are 0 tokens at $0, priced: it is not
/// counted as a call that did not report its tokens. The ledger's answered calls
/// all reported theirs, and the profile says so; a ledger of such calls alone is
/// priced at $0 by a per-token plan, as its receipts were, not refused for want of
/// a count.
#[tokio::test]
async fn a_ledgers_calls_not_answered_are_not_calls_that_did_not_report_their_tokens() {
    // The ledger of the test above: 3 answered, reporting 900 + 1,000 + 1,100
    // tokens in and 150 + 200 + 250 out; 2 model errors and 1 cancelled call.
    let receipts = [
        sync_receipt_with_tokens("c-0", "2026-05-20T10:00:00Z", (900, 150)),
        sync_receipt_ending("c-1", "2026-05-20T10:10:00Z", 100_000, "error"),
        sync_receipt_with_tokens("c-2", "2026-05-20T10:20:00Z", (1_000, 200)),
        sync_receipt_ending("c-3", "2026-05-20T10:30:00Z", 100_000, "cancelled"),
        sync_receipt_with_tokens("c-4", "2026-05-20T10:40:00Z", (1_100, 250)),
        sync_receipt_ending("c-5", "2026-05-20T10:50:00Z", 100_000, "error"),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(totals.unanswered_settled_calls, Some(3));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 3 of the 3 calls that could report tokens (answered with HTTP 2XX) did, each
    // way: not 3 of 6.
    let reported = profile.tokens_reported.unwrap();
    assert_eq!(
        (reported.calls, reported.tokens_in, reported.tokens_out),
        (3, 3, 3)
    );

    // The 3 calls not answered alone: 3 calls in 40 min (10:10, 10:30, 10:50; 3
    // starts 2 gaps of 20 min apart: 2 × 20 min × 3 / 2 = 60 min), 72 a day, none
    // answered. Their receipts charged no tokens, at $0, priced; so does the plan.
    let unanswered = [&receipts[1], &receipts[3], &receipts[5]];
    let totals = UsageTotals::from_receipts(unanswered).unwrap();
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    assert_eq!(profile.calls_per_period, d("72"));
    assert_eq!(profile.answered_per_call, Some(Decimal::ZERO));
    let plans = [Plan::from(
        PerTokenPlan::per_million_tokens(d("0.50"), d("1.50")).unwrap(),
    )];
    let comparison = priced(&profile, &plans).await.unwrap();
    // 0 answered calls × any tokens × any price = 0 USD.
    assert_eq!(cost(&comparison, "per token"), Decimal::ZERO);
}

/// Totals stated through the builder without the calls that reported tokens
/// counted apart: the token totals are over every settled call, an unanswered call
/// among them with the none it reported, so the means are over every call and are
/// charged on every call: the tokens reported, as from the receipts of the same
/// hour. Counted apart, a mean is charged on the calls that reported it when they
/// are more than the answered calls.
#[tokio::test]
async fn a_per_token_plan_charges_the_tokens_reported_when_totals_are_stated_by_hand() {
    let plans = [Plan::from(
        PerTokenPlan::per_million_tokens(d("0.50"), d("1.50")).unwrap(),
    )];
    // 6 calls in one hour, 3 answered, 3,000 tokens in and 600 out in all.
    let totals = UsageTotals::new(6, Duration::from_secs(3_600))
        .with_tokens(3_000, 600)
        .with_answered_calls(3);
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // Means over the 6 calls: 3,000 / 6 = 500 in, 600 / 6 = 100 out.
    assert_eq!(
        (profile.tokens_in_per_call, profile.tokens_out_per_call),
        (d("500"), d("100"))
    );
    let row = priced(&profile, &plans).await.unwrap();
    let row = row.plan("per token").unwrap();
    // The tokens of the hour: 3,000 × 0.50 / 10^6 + 600 × 1.50 / 10^6 = 0.0015 +
    // 0.0009 = 0.0024 USD; × 24 h = 0.0576 USD a day. Per call, 500 × 0.50 / 10^6
    // + 100 × 1.50 / 10^6 = 0.0004 USD on 144 calls (not on the 72 answered,
    // 0.0288: half the tokens).
    assert_eq!(row.cost_usd, d("0.0576"));
    assert_eq!(row.curve.usd_per_call, d("0.0004"));
    assert!(
        row.notes.iter().all(|n| !n.contains("tokens of")),
        "{:?}",
        row.notes
    );

    // Counted apart: 4 of the 6 calls reported the 3,000 in and 600 out, 3 of them
    // answered. Means 3,000 / 4 = 750 in, 600 / 4 = 150 out, charged on the 4
    // that reported them (more than the 3 answered): 4 × 24 = 96 calls a day of
    // 750 × 0.50 / 10^6 + 150 × 1.50 / 10^6 = 0.0006 USD, 0.0576 USD, the tokens
    // reported again (on the 72 answered, 0.0432).
    let profile =
        UsageProfile::from_totals(&totals.clone().with_calls_with_tokens(4, 4), Period::Day)
            .unwrap();
    let row = priced(&profile, &plans).await.unwrap();
    let row = row.plan("per token").unwrap();
    assert_eq!(row.cost_usd, d("0.0576"));
    // In calls made, 4 of 6 reported: 0.0006 × 4 / 6 = 0.0004 USD a call.
    assert_eq!(row.curve.usd_per_call, d("0.0004"));
    assert_noted(&row.notes, &["66.7%", "96 per day"]);
}

/// A call cancelled before its answer came is not answered, as its receipt
/// charged none, but SageMaker may have answered it after its caller left: the
/// totals count it apart, so that the answered calls can be said to be a lower
/// bound by as many.
#[test]
fn a_ledgers_cancelled_calls_are_counted_apart_from_its_model_errors() {
    // Four synchronous calls: one answered, one model error, two cancelled.
    let mut receipts = vec![
        sync_receipt_ending("c-0", "2026-05-20T10:00:00Z", 100_000, "ok"),
        sync_receipt_ending("c-1", "2026-05-20T10:10:00Z", 100_000, "error"),
        sync_receipt_ending("c-2", "2026-05-20T10:20:00Z", 100_000, "cancelled"),
        sync_receipt_ending("c-3", "2026-05-20T10:30:00Z", 100_000, "cancelled"),
    ];
    // Two asynchronous invocations whose submissions were cancelled: req-1 was
    // settled here (SageMaker took it: answered), req-2 was not (cancelled).
    let cancelled = |cost: Cost| {
        let mut cost = serde_json::to_value(cost).unwrap();
        cost["usage"]["outcome"] = "cancelled".into();
        serde_json::from_value::<Cost>(cost).unwrap()
    };
    let [s1, t1] = async_receipts("req-1", "2026-05-20T10:40:00Z", 100, 30, 10, (1, 1));
    let [s2, _] = async_receipts("req-2", "2026-05-20T10:50:00Z", 100, 30, 10, (1, 1));
    receipts.extend([cancelled(s1), t1, cancelled(s2)]);
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    // 4 + 2 = 6 calls; c-0 and req-1 answered; c-2, c-3 and req-2 cancelled (c-1,
    // a model error, is neither)
    assert_eq!(totals.calls, 6);
    assert_eq!(totals.answered_calls, Some(2));
    assert_eq!(totals.cancelled_calls, Some(3));
}

#[test]
fn an_async_invocation_is_answered_at_its_submission_or_by_its_settlement() {
    // req-1: both receipts; req-2: its settlement alone (accepted, as it ran); req-3:
    // a submission SageMaker refused (outcome error), never settled.
    let [s1, t1] = async_receipts("req-1", "2026-05-20T10:00:00Z", 100, 30, 10, (1, 1));
    let [_, t2] = async_receipts("req-2", "2026-05-20T10:20:00Z", 100, 30, 10, (1, 1));
    let [s3, _] = async_receipts("req-3", "2026-05-20T10:40:00Z", 100, 30, 10, (1, 1));
    let mut s3 = serde_json::to_value(s3).unwrap();
    s3["usage"]["outcome"] = "error".into();
    let s3: Cost = serde_json::from_value(s3).unwrap();
    let totals = UsageTotals::from_receipts(&[s1, t1, t2, s3]).unwrap();
    // three invocations, each once; req-1 and req-2 answered
    assert_eq!(totals.calls, 3);
    assert_eq!(totals.answered_calls, Some(2));
}

/// A failed asynchronous inference was accepted at its submission (its
/// per-inference fee is charged there) but answered no tokens: its settlement's
/// token lines are 0 tokens at $0, whatever output was counted. A per-token plan
/// charges the tokens of the invocations that settled with an answer, not the mean
/// on the failed one too.
#[tokio::test]
async fn a_failed_async_inference_is_charged_its_fee_but_no_tokens() {
    // req-1 submitted at 10:00, settled after 30 s with 0 tokens in and 1,000 out;
    // req-2 submitted at 10:30 and accepted, its inference failed after 30 s (800
    // tokens out counted, charged none). 2 starts 1 gap of 30 min apart: 30 min ×
    // 2 / 1 = 60 min.
    let [s1, t1] = async_receipts("req-1", "2026-05-20T10:00:00Z", 100, 30, 10, (0, 1_000));
    let [s2, t2] = async_receipts("req-2", "2026-05-20T10:30:00Z", 100, 30, 10, (0, 800));
    let mut t2 = serde_json::to_value(t2).unwrap();
    t2["usage"]["outcome"] = "error".into();
    let t2: Cost = serde_json::from_value(t2).unwrap();
    let receipts = [s1, s2, t1, t2];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    assert_eq!(totals.observed, Duration::from_secs(3_600));
    // Both accepted (the fee's), one answered at its settlement (the tokens').
    assert_eq!(
        (
            totals.calls,
            totals.answered_calls,
            totals.answered_token_calls,
            totals.unanswered_settled_calls
        ),
        (2, Some(2), Some(1), Some(1))
    );
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 2 calls an hour × 24 = 48 a day, all 48 charged a fee; the means over the 1
    // call that reported tokens: 0 in, 1,000 out.
    assert_eq!(profile.calls_per_period, d("48"));
    assert_eq!(profile.answered_calls_per_period, Some(d("48")));
    assert_eq!(
        (profile.tokens_in_per_call, profile.tokens_out_per_call),
        (d("0"), d("1000"))
    );

    let plans = [
        Plan::from(PerTokenPlan::per_million_tokens(d("0.50"), d("1.50")).unwrap()),
        pay_per_use("0.01"),
    ];
    let comparison = priced(&profile, &plans).await.unwrap();
    // The receipts of the hour: 1,000 tokens out × 1.50 / 10^6 = 0.0015 USD (the
    // failed inference's lines 0 tokens, $0); × 24 h = 0.036 USD a day: 24 answers
    // × 0.0015 USD, not 48 × 0.0015 = 0.072 (2,000 tokens an hour).
    assert_eq!(cost(&comparison, "per token"), d("0.036"));
    // The fee is charged at each accepted submission: 48 × 0.01 = 0.48 USD.
    assert_eq!(cost(&comparison, "pay per use"), d("0.48"));
    // In calls made, half answered: 0.5 × 0.0015 = 0.00075 USD a call.
    let row = comparison.plan("per token").unwrap();
    assert_eq!(row.curve.usd_per_call, d("0.00075"));
    assert_noted(&row.notes, &["50.0%", "24 per day"]);

    // The failed invocation alone: its fee charged, no tokens: a per-token plan
    // costs 0, as its receipts did (0 tokens × any price), not refused for want of
    // a count.
    let totals = UsageTotals::from_receipts([&receipts[1], &receipts[3]]).unwrap();
    assert_eq!(
        (
            totals.calls,
            totals.answered_calls,
            totals.answered_token_calls
        ),
        (1, Some(1), Some(0))
    );
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    let comparison = priced(&profile, &plans).await.unwrap();
    assert_eq!(cost(&comparison, "per token"), Decimal::ZERO);
}

#[tokio::test]
async fn serverless_from_receipts_bills_each_call_rounded_up_not_the_mean() {
    // Two calls of 1.2 ms and 2.8 ms, at 10:00:00 and 10:30:00: one call every
    // 30 min, two calls an hour.
    let receipts = [
        sync_receipt("c-1", "2026-05-20T10:00:00Z", 1_200),
        sync_receipt("c-2", "2026-05-20T10:30:00Z", 2_800),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    // AWS bills each serverless call rounded up to the ms: 2 ms + 3 ms
    assert_eq!(totals.billed_busy_time, Some(Duration::from_millis(5)));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 2 calls × 86,400 s / 3,600 s = 48 calls a day
    assert_eq!(profile.calls_per_period, d("48"));
    // (1.2 + 2.8) ms / 2 = 2 ms mean; billed (2 + 3) ms / 2 = 2.5 ms a call, not
    // ceil(2 ms) = 2 ms
    assert_eq!(profile.mean_latency, Duration::from_millis(2));
    assert_eq!(profile.billed_seconds_per_call(), d("0.0025"));

    let plans = [Plan::from(ServerlessPlan::new(3072).unwrap())];
    let comparison = priced(&profile, &plans).await.unwrap();
    let row = comparison.plan("serverless 3072 MB").unwrap();
    // 0.0025 s × 0.00006 USD/s = 0.00000015 USD a call; × 48 calls = 0.0000072 USD
    // (the 5 ms AWS bills for every 2 calls: 24 × 0.005 s × 0.00006)
    assert_eq!(row.curve.usd_per_call, d("0.00000015"));
    assert_eq!(row.cost_usd, d("0.0000072"));
    assert_noted(&row.notes, &["bills 2.5 ms per call on average"]);
}

#[test]
fn serverless_from_receipts_bills_the_seconds_on_a_retried_calls_compute_line() {
    // A call whose three attempts each reached the model (ModelError) in 50.3 ms:
    // its latency is their 150.9 ms, its compute line bills each rounded up,
    // 3 × 51 ms = 0.153 s; and a call of one 1.2 ms attempt (0.002 s on its line).
    let provenance = serde_json::json!({"source": "snapshot", "sku": null,
        "effective_date": "2026-05-20", "fetched_at": null, "note": null});
    let receipt = |call_id: &str, at: &str, latency_us: u64, seconds: &str| -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": call_id, "at": at, "endpoint": "sls",
            "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": latency_us,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic",
                      "outcome": "error"},
            "lines": [{"item": "compute", "quantity": seconds, "unit": "seconds",
                "price": {"status": "priced", "usd_per_unit": "0.00006",
                          "cost_usd": "0", "provenance": provenance}}],
            "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        }))
        .unwrap()
    };
    let receipts = [
        receipt("c-1", "2026-05-20T10:00:00Z", 150_900, "0.153"),
        receipt("c-2", "2026-05-20T10:30:00Z", 1_200, "0.002"),
    ];
    let totals = UsageTotals::from_receipts(&receipts).unwrap();
    // 153 ms + 2 ms, what AWS billed; not ⌈150.9⌉ + ⌈1.2⌉ = 151 + 2 ms
    assert_eq!(totals.billed_busy_time, Some(Duration::from_millis(155)));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // 155 ms / 2 calls = 77.5 ms a call
    assert_eq!(profile.billed_seconds_per_call(), d("0.0775"));
}

#[test]
fn a_compute_line_of_a_time_no_call_runs_is_refused_never_a_panic() {
    // A corrupt or hand-edited receipt: its compute line bills 10^26 s of
    // serverless. In milliseconds that is 10^29, beyond a decimal's 7.9 × 10^28;
    // -1 s is no time either. What serverless billed for the call is unknown.
    let receipt = |call_id: &str, seconds: &str| -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": call_id, "at": "2026-05-20T10:00:00Z", "endpoint": "sls",
            "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1_200,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic",
                      "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": seconds, "unit": "seconds",
                "price": {"status": "unpriced", "reason": "test"}}],
            "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        }))
        .unwrap()
    };
    for (call_id, seconds) in [("c-huge", "100000000000000000000000000"), ("c-neg", "-1")] {
        let err = UsageTotals::from_receipts(&[receipt(call_id, seconds)]).unwrap_err();
        assert!(
            matches!(&err, CompareError::OutOfRange { value, .. } if value == seconds),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!(
                "the receipt of call `{call_id}` on endpoint `sls`"
            )),
            "{err}"
        );
        // The streaming totals refuse it too, and count nothing of it.
        let mut totals = sagemeter::compare::ReceiptTotals::default();
        assert!(totals.add(&receipt(call_id, seconds)).is_err());
        assert_eq!(totals.finish().calls, 0);
    }
    // The most a u64 of milliseconds holds, 18,446,744,073,709,551.615 s, bills
    // that many milliseconds.
    let totals = UsageTotals::from_receipts(&[receipt("c-max", "18446744073709551.615")]).unwrap();
    assert_eq!(
        totals.billed_busy_time,
        Some(Duration::from_millis(u64::MAX))
    );
}

#[test]
fn totals_without_per_call_billed_time_round_the_mean_latency_up() {
    // A client's totals know only the summed latency: 2 calls, 4 ms in all
    let totals =
        UsageTotals::new(2, Duration::from_secs(3_600)).with_busy_time(Duration::from_millis(4));
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    // the documented rule for a mean: ceil(2 ms) = 2 ms
    assert_eq!(profile.billed_ms_per_call, None);
    assert_eq!(profile.billed_seconds_per_call(), d("0.002"));
    // with the per-call billed time: (2 + 3) ms / 2
    let profile = UsageProfile::from_totals(
        &totals.with_billed_busy_time(Duration::from_millis(5)),
        Period::Day,
    )
    .unwrap();
    assert_eq!(profile.billed_ms_per_call, Some(d("2.5")));
    assert_eq!(profile.billed_seconds_per_call(), d("0.0025"));
}

// ---------------------------------------------------------------- rates

#[tokio::test]
async fn stated_rates_win_over_the_price_source_and_say_so() {
    let profile = monthly(1000);
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap())];
    let mut rates = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0.2"))
        .unwrap();
    rates
        .fill_from(&FixedPrices::snapshot(), &plans, &profile)
        .await
        .unwrap();
    let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
    let row = comparison.plan("ml.m5.xlarge x1").unwrap();
    // 730 h × 0.2 (stated), not 0.23 (snapshot)
    assert_eq!(row.cost_usd, d("146"));
    assert_eq!(row.rate_source, "override");
}

#[tokio::test]
async fn a_rate_the_price_source_lacks_is_an_error_never_a_zero() {
    let plans = [Plan::from(InstancePlan::new("ml.p5.48xlarge", 1).unwrap())];
    let err = priced(&monthly(1000), &plans).await.unwrap_err();
    match &err {
        CompareError::MissingRate { plan, key, .. } => {
            assert_eq!(plan, "ml.p5.48xlarge x1");
            assert_eq!(key, &PriceKey::hosting(REGION, "ml.p5.48xlarge"));
        }
        other => panic!("expected MissingRate, got {other:?}"),
    }
    assert!(err.to_string().starts_with(
        "no rate for hosting ml.p5.48xlarge in us-east-1 (needed by plan `ml.p5.48xlarge x1`)"
    ));
}

#[tokio::test]
async fn a_zero_rate_from_the_price_source_is_refused() {
    let prices = FixedPrices::snapshot().with(PriceKey::serverless(REGION, 3), "0");
    let profile = calls_of_ms(1000, 100);
    let plans = [Plan::from(ServerlessPlan::new(3072).unwrap())];
    let err = Comparison::with_prices(&profile, &plans, &prices, REGION)
        .await
        .unwrap_err();
    assert!(matches!(err, CompareError::MissingRate { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no rate for serverless 3 GB in us-east-1 (needed by plan `serverless 3072 MB`): the \
         price source answered $0 per second (snapshot); a metered dimension is never billed \
         at $0: a $0 price is a free-tier or bookkeeping row, not the rate, and the plan is \
         not priced at $0"
    );
}

#[tokio::test]
async fn a_free_tier_data_rate_never_prices_an_instance_plan_at_zero_data_cost() {
    // A price source that kept the $0 free tier of data processed out, as a price
    // parser that did not move on to the paid tier would have.
    let prices = FixedPrices::snapshot().with(
        PriceKey::DataOut {
            region: REGION.into(),
        },
        "0",
    );
    let profile = UsageProfile::builder()
        .calls_per_period(1000)
        .bytes_out_per_call(1 << 20)
        .build()
        .unwrap();
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap())];
    let err = Comparison::with_prices(&profile, &plans, &prices, REGION)
        .await
        .unwrap_err();
    match &err {
        CompareError::MissingRate { plan, key, reason } => {
            assert_eq!(plan, "ml.m5.xlarge x1");
            assert_eq!(
                key,
                &PriceKey::DataOut {
                    region: REGION.into()
                }
            );
            assert!(
                reason.starts_with("the price source answered $0 per GB"),
                "{reason}"
            );
        }
        other => panic!("expected MissingRate, got {other:?}"),
    }
    // Without bytes out the data-out rate is not needed, and the plan is priced:
    // 730 h × 0.23 USD/h
    let no_bytes = Comparison::with_prices(&monthly(1000), &plans, &prices, REGION)
        .await
        .unwrap();
    assert_eq!(cost(&no_bytes, "ml.m5.xlarge x1"), d("167.9"));
}

#[tokio::test]
async fn data_rates_are_looked_up_only_when_calls_move_bytes() {
    // a price source with the instance rate only: enough when bytes are zero
    let prices = FixedPrices {
        rates: HashMap::from([(PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0.23"))]),
    };
    let plans = [Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap())];
    let comparison = Comparison::with_prices(&monthly(10), &plans, &prices, REGION)
        .await
        .unwrap();
    assert_eq!(comparison.plans[0].rates.len(), 1);
}

// ---------------------------------------------------------------- invalid inputs

#[test]
fn impossible_plan_inputs_are_refused_with_what_to_do() {
    let cases: Vec<(Result<Plan, CompareError>, &str)> = vec![
        (
            PerInferencePlan::per_call(d("-0.01")).map(Plan::from),
            "price per call (USD) must be greater than zero (got -0.01)",
        ),
        (
            PerInferencePlan::per_thousand_calls(d("0")).map(Plan::from),
            "price per 1,000 calls (USD) must be greater than zero (got 0)",
        ),
        (
            SubscriptionPlan::builder()
                .fee_usd(d("0"))
                .build()
                .map(Plan::from),
            "subscription fee (USD) must be greater than zero (got 0): a subscription without a \
             fee is pay per use",
        ),
        (
            SubscriptionPlan::builder()
                .fee_usd(d("100"))
                .included_calls(d("-5"))
                .overage_usd_per_call(d("0.01"))
                .build()
                .map(Plan::from),
            "included calls must not be negative (got -5)",
        ),
        (
            SubscriptionPlan::builder()
                .fee_usd(d("100"))
                .included_calls(1000)
                .overage_usd_per_call(d("-0.01"))
                .build()
                .map(Plan::from),
            "overage per call (USD) must not be negative (got -0.01)",
        ),
        (
            InstancePlan::new("ml.m5.xlarge", 0).map(Plan::from),
            "instance count must be greater than zero (got 0)",
        ),
        (
            InstancePlan::new("m5.xlarge", 1).map(Plan::from),
            "instance type is out of range (got `m5.xlarge`): use the SageMaker instance name \
             with its ml. prefix, e.g. ml.m5.xlarge",
        ),
        (
            InstancePlan::new("ml.m5.xlarge", 1)
                .and_then(|p| p.with_hours_per_period(d("0")))
                .map(Plan::from),
            "instance hours per period must be greater than zero (got 0)",
        ),
        (
            ServerlessPlan::new(2500).map(Plan::from),
            "serverless memory (MB) is out of range (got 2500): SageMaker serverless memory is \
             1024, 2048, 3072, 4096, 5120 or 6144 MB",
        ),
        (
            PerTokenPlan::per_million_tokens(d("0"), d("0")).map(Plan::from),
            "token prices (USD) must be greater than zero (got 0 in, 0 out)",
        ),
        (
            PerTokenPlan::per_million_tokens(d("-1"), d("2")).map(Plan::from),
            "price per million input tokens (USD) must not be negative (got -1)",
        ),
        (
            SavingsPlan::builder()
                .instance_type("ml.m5.xlarge")
                .commitment_usd_per_hour(d("0"))
                .discount(d("0.5"))
                .build()
                .map(Plan::from),
            "savings plan commitment (USD per hour) must be greater than zero (got 0)",
        ),
        (
            SavingsPlan::builder()
                .instance_type("ml.m5.xlarge")
                .commitment_usd_per_hour(d("1"))
                .discount(d("64"))
                .build()
                .map(Plan::from),
            "savings plan discount is out of range (got 64): give the discount on on-demand \
             rates as a fraction between 0 and 1 (0.64 for 64 % off)",
        ),
    ];
    for (result, expected) in cases {
        let message = result.expect_err(expected).to_string();
        assert!(
            message.starts_with(expected),
            "\n  got: {message}\n want: {expected}…"
        );
    }
}

#[test]
fn a_negative_call_count_is_refused() {
    let err = UsageProfile::builder()
        .calls_per_period(d("-1"))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "calls per period must not be negative (got -1): a count of calls cannot be negative"
    );
}

#[test]
fn a_profile_without_calls_says_how_to_give_them() {
    let err = UsageProfile::builder().build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the usage profile has no call count: set calls_per_period(..) or calls_per_day(..)"
    );
}

#[test]
fn instance_hours_beyond_the_period_are_refused() {
    let plan = InstancePlan::new("ml.m5.xlarge", 1)
        .unwrap()
        .with_hours_per_period(d("800"))
        .unwrap();
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0.23"))
        .unwrap();
    let err = Comparison::compute(&monthly(1), &[plan.into()], &rates).unwrap_err();
    assert_eq!(
        err.to_string(),
        "instance hours per period is out of range (got 800): an instance runs at most 730 \
         hours in a month"
    );
}

#[test]
fn serverless_without_a_latency_cannot_be_priced() {
    let plans = [Plan::from(ServerlessPlan::new(3072).unwrap())];
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::serverless(REGION, 3), d("0.00006"))
        .unwrap();
    let err = Comparison::compute(&monthly(1000), &plans, &rates).unwrap_err();
    assert!(matches!(
        err,
        CompareError::ProfileLacks {
            what: "a mean latency",
            ..
        }
    ));
}

#[test]
fn a_per_token_plan_without_tokens_is_not_priced_at_zero() {
    let plans = [Plan::from(
        PerTokenPlan::per_million_tokens(d("3"), d("15")).unwrap(),
    )];
    let err = Comparison::compute(&monthly(1000), &plans, &RateTable::new(REGION)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("plan `per token` needs tokens per call in the usage profile")
    );
}

#[test]
fn plans_must_be_given_and_told_apart() {
    let none = Comparison::compute(&monthly(1), &[], &RateTable::new(REGION)).unwrap_err();
    assert_eq!(none, CompareError::NoPlans);
    let twins = [pay_per_use("0.01"), pay_per_use("0.02")];
    let err = Comparison::compute(&monthly(1), &twins, &RateTable::new(REGION)).unwrap_err();
    assert_eq!(err, CompareError::DuplicatePlanName("pay per use".into()));
}

#[test]
fn a_zero_stated_rate_is_refused() {
    let err = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0"))
        .unwrap_err();
    assert!(matches!(err, CompareError::NotPositive { .. }));
    assert_eq!(
        err.to_string(),
        "rate (USD per unit) must be greater than zero (got 0 for hosting ml.m5.xlarge in \
         us-east-1): a metered dimension is never billed at $0: a $0 price is a free-tier or \
         bookkeeping row, not the rate, and the plan is not priced at $0; state the rate \
         SageMaker bills"
    );
}

// ---------------------------------------------------------------- overflow

#[test]
fn a_cost_beyond_a_decimal_is_an_overflow_error_not_a_panic() {
    // The largest per-token price modelled (10^9 USD) × 10^9 tokens in and 10^9 out
    // = 2 × 10^18 USD per call; × 10^15 calls (the most modelled) = 2 × 10^33 USD,
    // beyond Decimal::MAX ≈ 7.9 × 10^28. This multiplication used to panic.
    let limit = d("1000000000");
    let profile = UsageProfile::builder()
        .calls_per_period(1_000_000_000_000_000u64)
        .tokens_in_per_call(1_000_000_000)
        .tokens_out_per_call(1_000_000_000)
        .build()
        .unwrap();
    let plans = [Plan::from(PerTokenPlan::new(limit, limit).unwrap())];
    let err = Comparison::compute(&profile, &plans, &RateTable::new(REGION)).unwrap_err();
    assert!(matches!(err, CompareError::Overflow { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the cost of plan `per token` for 1,000,000,000,000,000 calls per month is too large \
         to compute exactly (above about 7.9 × 10^28): the inputs multiply to more than an \
         exact decimal holds: check the units of the prices (per call, per token, per hour, \
         per GB) and lower the prices, fees or volumes (calls, tokens or bytes per call)"
    );
}

#[test]
fn the_cost_per_thousand_calls_of_a_huge_cost_is_divided_before_it_is_multiplied() {
    // 10^9 USD per million tokens = 1,000 USD per token; 10^9 + 10^9 tokens per call
    // = 2 × 10^12 USD per call; × 10^15 calls = 2 × 10^27 USD (fits a decimal), but
    // 2 × 10^27 × 1,000 does not: this used to panic. ÷ 10^15 calls first, then × 1,000.
    let limit = d("1000000000");
    let profile = UsageProfile::builder()
        .calls_per_period(1_000_000_000_000_000u64)
        .tokens_in_per_call(1_000_000_000)
        .tokens_out_per_call(1_000_000_000)
        .build()
        .unwrap();
    let plans = [Plan::from(
        PerTokenPlan::per_million_tokens(limit, limit).unwrap(),
    )];
    let comparison = compute(&profile, &plans);
    let row = comparison.plan("per token").unwrap();
    assert_eq!(row.cost_usd, d("2000000000000000000000000000"));
    // 2 × 10^12 USD per call × 1,000
    assert_eq!(row.usd_per_1000_calls, Some(d("2000000000000000")));
}

/// Two plans that cost nearly the same per call, one with a large fixed cost: they
/// cross at 10^17 calls a month, where either costs about 10^29 USD.
///
/// - 10,000 instances × 730 h × 10^9 USD/h = 7.3 × 10^15 USD fixed; 1 TiB in per call
///   at 10^9 USD/GB = 1,024 GB × 10^9 = 1.024 × 10^12 USD per call;
/// - per token: 10^9 tokens × 10^9 USD/10^6 + 10^9 tokens × 24,000,000.000073 USD/10^6
///   = 10^12 + 24,000,000,000.073 = 1,024,000,000,000.073 USD per call.
///
/// Crossing: 7.3 × 10^15 / 0.073 = 10^17 calls; 1.024 × 10^12 × 10^17 ≈ 1.024 × 10^29.
fn plans_crossing_beyond_a_decimal() -> (UsageProfile, [Plan; 2], RateTable) {
    let limit = d("1000000000");
    let profile = UsageProfile::builder()
        .calls_per_period(1000)
        .bytes_in_per_call(1u64 << 40)
        .tokens_in_per_call(1_000_000_000)
        .tokens_out_per_call(1_000_000_000)
        .build()
        .unwrap();
    let plans = [
        Plan::from(PerTokenPlan::per_million_tokens(limit, d("24000000.000073")).unwrap()),
        Plan::from(InstancePlan::new("ml.m5.xlarge", 10_000).unwrap()),
    ];
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), limit)
        .unwrap()
        .with_rate(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            limit,
        )
        .unwrap();
    (profile, plans, rates)
}

#[test]
fn a_break_even_whose_cost_is_beyond_a_decimal_is_an_overflow_error_not_a_panic() {
    let (profile, plans, rates) = plans_crossing_beyond_a_decimal();
    // Each plan's cost at the profile's 1,000 calls fits:
    // per token 1,000 × 1,024,000,000,000.073; instances 7.3 × 10^15 + 1,000 × 1.024 × 10^12
    let per_token = &plans[..1];
    assert_eq!(
        cost(
            &Comparison::compute(&profile, per_token, &rates).unwrap(),
            "per token"
        ),
        d("1024000000000073")
    );
    // The crossing at 10^17 calls costs about 1.024 × 10^29 USD: an error, not a panic
    // (comparing the costs on either side of it used to overflow and panic).
    let err = Comparison::compute(&profile, &plans, &rates).unwrap_err();
    assert!(matches!(err, CompareError::Overflow { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "the cost where plans `per token` and `ml.m5.xlarge x10000` break even \
             (100,000,000,000,000,000 calls per month) is too large to compute exactly"
        ),
        "{err}"
    );
}

#[test]
fn a_cost_curve_says_when_a_cost_is_beyond_a_decimal() {
    // 10^15 fixed + 10^20 per call: at 10 calls 10^15 + 10^21; at 10^9 calls 10^29
    let curve = CostCurve::linear(d("1000000000000000"), d("100000000000000000000"));
    assert_eq!(curve.cost_usd(d("10")), Ok(d("1000001000000000000000")));
    assert!(matches!(
        curve.cost_usd(d("1000000000")),
        Err(CompareError::Overflow { .. })
    ));
    assert!(matches!(
        curve.marginal_usd_per_call(Decimal::ZERO),
        Ok(x) if x == d("100000000000000000000")
    ));
}

#[test]
fn moving_a_profile_to_another_period_that_overflows_is_an_error() {
    // A deserialised profile is not validated: Decimal::MAX calls a day × 365
    let profile: UsageProfile = serde_json::from_value(serde_json::json!({
        "period": "day", "calls_per_period": Decimal::MAX.to_string(),
        "mean_latency_ms": "0", "bytes_in_per_call": 0, "bytes_out_per_call": 0,
        "tokens_in_per_call": 0, "tokens_out_per_call": 0
    }))
    .unwrap();
    assert!(matches!(
        profile.over(Period::Year),
        Err(CompareError::Overflow { .. })
    ));
    // 2,400 calls a day × 8,760 h / 24 h = 876,000 calls a year
    let daily = UsageProfile::builder()
        .period(Period::Day)
        .calls_per_period(2_400)
        .build()
        .unwrap();
    assert_eq!(
        daily.over(Period::Year).unwrap().calls_per_period,
        d("876000")
    );
}

#[test]
fn totals_too_dense_to_scale_to_a_period_are_an_error() {
    // u64::MAX calls in one nanosecond, scaled to a year: ≈ 1.8 × 10^19 × 3.15 × 10^7
    // / 10^-9 ≈ 5.8 × 10^35
    let totals = UsageTotals::new(u64::MAX, Duration::from_nanos(1));
    assert!(matches!(
        UsageProfile::from_totals(&totals, Period::Year),
        Err(CompareError::Overflow { .. })
    ));
}

/// Any decimal: small, at the bounds plans and profiles allow and beyond them,
/// and anywhere a decimal reaches (negative, tiny, Decimal::MAX).
fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        4 => (0i64..=1_000_000_000_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s)),
        4 => prop::sample::select(vec![
            Decimal::ZERO,
            Decimal::ONE,
            d("0.0000000000000000000000000001"),
            d("0.999999999"),
            d("1000000000"),
            d("2739726027397"),
            d("1000000000000000"),
            d("1000000000000000000"),
            Decimal::MAX,
            Decimal::MIN,
        ]),
        1 => (any::<u128>(), 0u32..=28, any::<bool>()).prop_map(|(m, scale, negative)| {
            Decimal::from_parts(m as u32, (m >> 32) as u32, (m >> 64) as u32, negative, scale)
        }),
    ]
}

/// A price (fee, rate): mostly one the plans accept, from 10^-28 USD to the 10^9 USD
/// limit, and sometimes any decimal at all.
fn any_price() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        5 => (1i64..=1_000_000_000_000, 3u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
        3 => prop::sample::select(vec![
            d("0.0000000000000000000000000001"),
            d("0.000001"),
            d("999999999.999999999"),
            d("1000000000"),
        ]),
        2 => any_decimal(),
    ]
}

/// Calls per period: mostly up to the 10^15 the profile allows, and sometimes any
/// decimal at all.
fn any_calls() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        5 => (0i64..=1_000_000_000_000_000, 0u32..=3).prop_map(|(m, s)| Decimal::new(m, s)),
        3 => prop::sample::select(vec![Decimal::ZERO, d("0.5"), d("1000000000000000")]),
        2 => any_decimal(),
    ]
}

/// A count up to `max` (bytes, tokens, milliseconds), mostly small or at `max`, and
/// sometimes anything up to u64::MAX.
fn count_up_to(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..=max.min(1_000_000),
        3 => prop::sample::select(vec![0, max]),
        1 => any::<u64>(),
    ]
}

/// Any count, to u64::MAX.
fn any_count() -> impl Strategy<Value = u64> {
    count_up_to(u64::MAX)
}

fn any_period() -> impl Strategy<Value = Period> {
    prop::sample::select(vec![Period::Day, Period::Month, Period::Year])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the prices, volumes, fees and periods: an answer or an error, never
    /// a panic, and an answer can be printed and serialised.
    #[test]
    fn any_comparison_answers_or_errs_and_never_panics(
        period in any_period(),
        calls in any_calls(),
        latency_ms in count_up_to(3_600_000),
        bytes in (count_up_to(1 << 40), count_up_to(1 << 40)),
        tokens in (count_up_to(1_000_000_000), count_up_to(1_000_000_000)),
        per_call in any_price(),
        token_prices in (any_price(), any_price()),
        fee in (any_price(), any_period(), any_calls(), any_price()),
        instance in (1u32..=10_000, any_decimal()),
        savings in (any_price(), any_decimal()),
        rates in (any_price(), any_price(), any_price()),
        chosen in prop::collection::vec(any::<bool>(), 6),
    ) {
        let answer = std::panic::catch_unwind(|| {
            let Ok(profile) = UsageProfile::builder()
                .period(period)
                .calls_per_period(calls)
                .mean_latency(Duration::from_millis(latency_ms))
                .bytes_in_per_call(bytes.0)
                .bytes_out_per_call(bytes.1)
                .tokens_in_per_call(tokens.0)
                .tokens_out_per_call(tokens.1)
                .build()
            else {
                return None;
            };
            let (fee, fee_period, included, overage) = fee;
            let plans: Vec<Plan> = [
                PerInferencePlan::per_call(per_call).map(Plan::from),
                PerTokenPlan::new(token_prices.0, token_prices.1).map(Plan::from),
                SubscriptionPlan::builder()
                    .fee_usd(fee)
                    .period(fee_period)
                    .included_calls(included)
                    .overage_usd_per_call(overage)
                    .build()
                    .map(Plan::from),
                InstancePlan::new("ml.m5.xlarge", instance.0)
                    .and_then(|p| p.with_hours_per_period(instance.1))
                    .map(Plan::from),
                SavingsPlan::builder()
                    .instance_type("ml.m5.xlarge")
                    .count(instance.0)
                    .commitment_usd_per_hour(savings.0)
                    .discount(savings.1)
                    .build()
                    .map(Plan::from),
                ServerlessPlan::new(6144).map(Plan::from),
            ]
            .into_iter()
            .zip(&chosen)
            .filter_map(|(plan, chosen)| plan.ok().filter(|_| *chosen))
            .collect();
            let mut table = RateTable::new(REGION);
            for (key, usd) in [
                (PriceKey::hosting(REGION, "ml.m5.xlarge"), rates.0),
                (PriceKey::serverless(REGION, 6), rates.1),
                (PriceKey::DataIn { region: REGION.into() }, rates.2),
                (PriceKey::DataOut { region: REGION.into() }, rates.2),
            ] {
                if let Ok(with) = table.clone().with_rate(key, usd) {
                    table = with;
                }
            }
            let shown = Comparison::compute(&profile, &plans, &table).map(|comparison| {
                // n plans, n (n − 1) / 2 pairs
                assert_eq!(
                    comparison.break_evens.len(),
                    plans.len() * (plans.len() - 1) / 2
                );
                let json = serde_json::to_string(&comparison).unwrap();
                (comparison.to_string(), json)
            });
            Some(shown)
        });
        prop_assert!(answer.is_ok(), "the comparison panicked");
    }

    /// A cost curve of any figures answers a cost or an overflow, never a panic.
    #[test]
    fn any_cost_curve_answers_or_errs_and_never_panics(
        fixed in any_decimal(),
        per_call in any_decimal(),
        quota in proptest::option::of((any_decimal(), any_decimal())),
        calls in any_decimal(),
    ) {
        let answer = std::panic::catch_unwind(|| {
            let mut curve = CostCurve::linear(fixed, per_call);
            if let Some((included, overage)) = quota {
                curve.included_calls = Some(included);
                curve.overage_usd_per_call = Some(overage);
            }
            (curve.cost_usd(calls), curve.marginal_usd_per_call(calls))
        });
        prop_assert!(answer.is_ok(), "the cost curve panicked");
    }

    /// Any totals become a profile or an error, over any period, never a panic.
    #[test]
    fn any_totals_answer_a_profile_or_an_error_and_never_panic(
        calls in any_count(),
        unsettled in any_count(),
        observed_ns in any_count(),
        busy_s in any_count(),
        bytes in (any_count(), any_count()),
        tokens in (any_count(), any_count()),
        period in any_period(),
        other in any_period(),
    ) {
        let answer = std::panic::catch_unwind(|| {
            let totals = UsageTotals::new(calls, Duration::from_nanos(observed_ns))
                .with_busy_time(Duration::from_secs(busy_s))
                .with_bytes(bytes.0, bytes.1)
                .with_tokens(tokens.0, tokens.1)
                .with_unsettled_async_calls(unsettled);
            UsageProfile::from_totals(&totals, period).map(|p| p.over(other))
        });
        prop_assert!(answer.is_ok(), "the profile panicked");
    }
}

// ---------------------------------------------------------------- records

#[test]
fn the_comparison_serialises_to_json_and_back() {
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota("400", 40_000, "0.02"),
    ];
    let comparison = compute(&monthly(60_000), &plans);
    let json = serde_json::to_value(&comparison).unwrap();
    assert_eq!(json["cheapest"], "pay per use");
    assert_eq!(json["period"], "month");
    assert_eq!(json["hours_per_period"], "730");
    assert_eq!(json["plans"][0]["plan"]["kind"], "per_inference");
    assert_eq!(json["plans"][1]["plan"]["kind"], "subscription");
    assert_eq!(json["plans"][1]["cost_usd"], "800");
    assert_eq!(json["plans"][1]["difference_to_cheapest_usd"], "50");
    assert_eq!(
        json["break_evens"][0]["points"][0]["calls_per_period"],
        "32000"
    );
    let back: Comparison = serde_json::from_value(json).unwrap();
    assert_eq!(back, comparison);
}

#[test]
fn deserialised_plans_are_validated_before_pricing() {
    let plan: Plan = serde_json::from_value(serde_json::json!({
        "name": "free lunch", "kind": "per_inference", "usd_per_call": "0"
    }))
    .unwrap();
    assert!(matches!(plan.model, PlanModel::PerInference(_)));
    let err = Comparison::compute(&monthly(1), &[plan], &RateTable::new(REGION)).unwrap_err();
    assert!(matches!(err, CompareError::NotPositive { .. }));
}

// ---------------------------------------------------------------- chart

#[cfg(feature = "charts")]
mod chart {
    use super::*;
    use sagemeter::compare::chart;

    fn quota_comparison() -> Comparison {
        compute(
            &monthly(60_000),
            &[
                pay_per_use("0.0125"),
                subscription_with_quota("400", 40_000, "0.02"),
            ],
        )
    }

    /// Checks that every tag opened is closed in order (enough for plotters' SVG).
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name = tag.split_whitespace().next().unwrap();
                stack.push(name.to_string());
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }

    #[test]
    fn the_svg_chart_is_a_well_formed_svg_with_every_plan_and_the_break_even_points() {
        let svg = chart::render_svg(&quota_comparison()).unwrap();
        assert!(svg.starts_with("<svg"), "root element is <svg>");
        assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
        assert_well_formed(&svg);
        for text in [
            "pay per use",
            "subscription",
            "calls per month",
            "cost per month (USD)",
            "32k calls",
            "53.33k calls",
            "break-even point",
        ] {
            assert!(svg.contains(text), "chart shows `{text}`");
        }
        assert!(svg.matches("<polyline").count() >= 2, "one line per plan");
    }

    #[test]
    fn a_break_even_beyond_the_axis_is_named_in_the_legend_not_left_out() {
        // 1,000 calls a month against a 500 USD fee at 0.0125 a call: U* = 500 /
        // 0.0125 = 40,000, beyond the axis (it ends near 20 × the profile's calls).
        let comparison = compute(
            &monthly(1000),
            &[pay_per_use("0.0125"), Plan::from(subscription("500"))],
        );
        assert_eq!(
            comparison.break_evens[0].points[0].calls_per_period,
            d("40000")
        );
        let svg = chart::render_svg(&comparison).unwrap();
        assert_well_formed(&svg);
        assert!(
            svg.contains("break-even beyond the axis: 40k calls"),
            "the legend names it"
        );
        assert!(
            !svg.contains(">break-even point<"),
            "no mark drawn on the axis"
        );
    }

    #[test]
    fn the_chart_format_follows_the_file_extension() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("plans.SVG");
        chart::render(&quota_comparison(), &svg).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        let err = chart::render(&quota_comparison(), dir.path().join("plans.gif")).unwrap_err();
        assert!(err.to_string().ends_with("name the file .svg or .png"));
    }

    #[test]
    fn the_png_chart_is_a_complete_png_of_the_chart_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.png");
        chart::render(&quota_comparison(), &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        let (width, height) = png_size(&png);
        assert_eq!((width, height), chart::SIZE);
    }

    /// Walks the PNG's chunks, checking each CRC, and returns IHDR's width and height.
    pub(crate) fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let mut at = 8;
        let mut size = None;
        let mut chunks = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(&png[at + 4..at + 8 + len]), crc, "CRC of {kind:?}");
            if kind == b"IHDR" {
                size = Some((
                    u32::from_be_bytes(data[0..4].try_into().unwrap()),
                    u32::from_be_bytes(data[4..8].try_into().unwrap()),
                ));
            }
            chunks.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + len;
        }
        assert_eq!(chunks.first().map(String::as_str), Some("IHDR"));
        assert!(chunks.iter().any(|c| c == "IDAT"), "image data");
        assert_eq!(chunks.last().map(String::as_str), Some("IEND"));
        size.unwrap()
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}

/// One call in three answered: the share, 1/3, is 0.333…3 at 28 digits. Pay per
/// use at 0.0125 USD a call against 500 USD a day for 40,000 calls, 0.0125 USD each
/// above: the quota lasts 40,000 × 3 = 120,000 calls made, below it the fee is the
/// dearer, above it both cost 0.0125 × the answered calls. The plans cost the same
/// above the quota, not one a rounding residue less.
#[test]
fn a_quota_priced_like_pay_per_use_costs_the_same_above_it_when_a_third_are_answered() {
    // 3 calls in an hour, 1 answered: 72 calls a day, 24 answered.
    let totals = UsageTotals::new(3, Duration::from_secs(3_600)).with_answered_calls(1);
    let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
    assert_eq!(profile.calls_per_period, d("72"));
    assert_eq!(profile.answered_calls_per_period, Some(d("24")));
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota_per(Period::Day, "500", 40_000, "0.0125"),
    ];
    let comparison = compute(&profile, &plans);
    // At 72 calls a day: pay per use 24 answered × 0.0125 = 0.30 USD, the
    // subscription its 500 USD fee.
    assert_eq!(cost(&comparison, "pay per use"), d("0.3"));
    assert_eq!(cost(&comparison, "subscription"), d("500"));
    let be = &comparison.break_evens[0];
    // Below the quota: 500 = 0.0125 × U ÷ 3 → U = 500 × 3 ÷ 0.0125 = 120,000 calls
    // made, 40,000 answered, just where the quota runs out. Above it: 500 + 0.0125 ×
    // (U ÷ 3 − 40,000) = 0.0125 × U ÷ 3, pay per use's cost at every volume.
    let cheaper: Vec<Option<&str>> = be.regions.iter().map(|r| r.cheaper.as_deref()).collect();
    assert_eq!(cheaper, vec![Some("pay per use"), None], "{:?}", be.regions);
    // From the counts, 40,000 answered of 24 in 72 are 40,000 × 72 ÷ 24 = 120,000
    // calls made exactly, where both cost 500 USD.
    assert_eq!(be.points.len(), 1, "{:?}", be.points);
    assert_eq!(be.points[0].calls_per_period, d("120000"));
    assert_eq!(be.points[0].cost_usd, d("500"));
    assert_eq!(
        be.summary,
        "pay per use is cheaper below 120,000 calls per day, the same above 120,000"
    );
    // Stated as the share alone, 0.333…3 at 28 digits: the same verdicts, the
    // point 40,000 ÷ 0.333…3 within a hair of 120,000.
    let mut stated = profile.clone();
    stated.answered_calls_per_period = None;
    let be = compute(&stated, &plans).break_evens.remove(0);
    let cheaper: Vec<Option<&str>> = be.regions.iter().map(|r| r.cheaper.as_deref()).collect();
    assert_eq!(cheaper, vec![Some("pay per use"), None], "{:?}", be.regions);
    let at = be.points[0].calls_per_period;
    assert!((at - d("120000")).abs() < d("0.000000001"), "{at}");
    assert_eq!(be.points[0].cost_usd, d("500"));
}

/// One call in three answered, pay per use at 0.50 USD per 1,000 calls against 500
/// USD a day for 1,000,000 calls, 0.001 USD each above: at the quota's end the
/// answered calls cost 1,000,000 × 0.0005 = 500 USD under pay per use too, and
/// above it the subscription adds 0.001 a call to pay per use's 0.0005. The plans
/// touch at 3,000,000 calls made and pay per use is cheaper at every other volume:
/// not a sliver around the touch where the subscription is.
#[test]
fn pay_per_use_that_meets_a_fee_at_its_quotas_end_is_cheaper_on_both_sides() {
    let mut profile = UsageProfile::builder()
        .period(Period::Day)
        .calls_per_period(72)
        .build()
        .unwrap();
    profile.answered_per_call = Some(Decimal::ONE / Decimal::from(3));
    let plans = [
        Plan::from(PerInferencePlan::per_thousand_calls(d("0.50")).unwrap()),
        subscription_with_quota_per(Period::Day, "500", 1_000_000, "0.001"),
    ];
    let be = compute(&profile, &plans).break_evens.remove(0);
    assert!(be.points.is_empty(), "{:?}", be.regions);
    assert_eq!(be.regions.len(), 1);
    // At 72 calls a day, 24 answered: 24 × 0.0005 = 0.012 USD against 500.
    assert_eq!(
        be.summary,
        "pay per use is cheaper at every volume: it never breaks even with subscription \
         (499.99 USD less at 72 calls per day)"
    );
}

/// Every call answered, a fee of 500 USD a day for 40,000 calls, 0.0125 USD each
/// above, against pay per use at 0.0125, over a month: the fee is 500 × 730 ÷ 24 =
/// 15,208.33… USD for 40,000 × 730 ÷ 24 = 1,216,666.66… calls, neither a finite
/// decimal. Pay per use reaches the fee where the quota ends, and above it both cost
/// 0.0125 a call: the same, not a rounding residue apart.
#[test]
fn a_daily_quota_priced_like_pay_per_use_costs_the_same_above_it_over_a_month() {
    let plans = [
        pay_per_use("0.0125"),
        subscription_with_quota_per(Period::Day, "500", 40_000, "0.0125"),
    ];
    let be = compute(&monthly(1_000), &plans).break_evens.remove(0);
    let cheaper: Vec<Option<&str>> = be.regions.iter().map(|r| r.cheaper.as_deref()).collect();
    assert_eq!(cheaper, vec![Some("pay per use"), None], "{:?}", be.regions);
    let at = be.points[0].calls_per_period;
    assert_eq!(at.round_dp(6), d("1216666.666667"));
    assert_eq!(
        be.summary,
        "pay per use is cheaper below 1,216,667 calls per month, the same above 1,216,667"
    );
}
