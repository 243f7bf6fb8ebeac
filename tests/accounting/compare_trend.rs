//! Plans over time, as a specification: hand-worked monthly costs while AWS on-demand
//! prices follow a trend, commitments locked at today's price, and the month a
//! commitment stops being cheaper than paying per use.
//!
//! Rates as elsewhere in the comparison's tests (us-east-1 snapshot): ml.m5.xlarge
//! 0.23 USD/h, so one instance for a month of 730 h is 167.90 USD; serverless 3 GB
//! 0.00006 USD/s; data processed 0.016 USD/GB. Trends of −1 % or −10 % a month keep
//! every factor exact within 12 places (0.9^11 = 0.31381059609), so the expected
//! figures below are exact.

use sagemeter::Decimal;
use sagemeter::compare::{
    CommitmentOutlook, CompareError, Comparison, InstancePlan, PerInferencePlan, Period, Plan,
    PriceBasis, PriceTrend, Projection, RateTable, SavingsPlan, SavingsPlanTerm, ServerlessPlan,
    SubscriptionPlan, TrendRate, UsageProfile,
};
use sagemeter::pricing::PriceKey;
use std::str::FromStr;
use std::time::Duration;

const REGION: &str = "us-east-1";
const INSTANCE: &str = "ml.m5.xlarge x1";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn ds(values: &[&str]) -> Vec<Decimal> {
    values.iter().map(|v| d(v)).collect()
}

fn rates() -> RateTable {
    RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), d("0.23"))
        .unwrap()
        .with_rate(PriceKey::serverless(REGION, 3), d("0.00006"))
        .unwrap()
        .with_rate(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            d("0.016"),
        )
        .unwrap()
}

fn monthly(calls: u64) -> UsageProfile {
    UsageProfile::builder()
        .period(Period::Month)
        .calls_per_period(calls)
        .mean_latency(Duration::from_millis(800))
        .build()
        .unwrap()
}

fn instance(count: u32) -> Plan {
    Plan::from(InstancePlan::new("ml.m5.xlarge", count).unwrap())
}

fn subscription(fee: &str) -> Plan {
    Plan::from(
        SubscriptionPlan::builder()
            .fee_usd(d(fee))
            .period(Period::Month)
            .build()
            .unwrap(),
    )
}

fn savings_plan(count: u32, commitment: &str, discount: &str, term: SavingsPlanTerm) -> Plan {
    Plan::from(
        SavingsPlan::builder()
            .instance_type("ml.m5.xlarge")
            .count(count)
            .commitment_usd_per_hour(d(commitment))
            .discount(d(discount))
            .term(term)
            .build()
            .unwrap(),
    )
}

fn per_month(percent: &str) -> PriceTrend {
    PriceTrend::uniform(format!("{percent}%/month").parse().unwrap())
}

fn project(profile: &UsageProfile, plans: &[Plan], trend: &PriceTrend, months: u32) -> Projection {
    let comparison = Comparison::compute(profile, plans, &rates()).unwrap();
    Projection::compute(&comparison, trend, months).unwrap()
}

// ------------------------------------------------------------ what follows the trend

#[test]
fn an_on_demand_instance_costs_todays_price_times_the_months_factor() {
    let projection = project(&monthly(100_000), &[instance(1)], &per_month("-1"), 6);
    let plan = projection.plan(INSTANCE).unwrap();
    assert_eq!(plan.basis, PriceBasis::Trend);
    // month k: 167.90 × 0.99^(k − 1)
    assert_eq!(
        plan.monthly_usd,
        ds(&[
            "167.90",           // today's price
            "166.221",          // × 0.99
            "164.55879",        // × 0.9801
            "162.9132021",      // × 0.970299
            "161.284070079",    // × 0.96059601
            "159.671229378210", // × 0.9509900499
        ])
    );
    // 167.90 + 166.221 = 334.121; + 164.55879 = 498.67979; … ; sum = 982.54829155721
    assert_eq!(plan.cumulative_usd[1], d("334.121"));
    assert_eq!(plan.cumulative_usd[2], d("498.67979"));
    assert_eq!(plan.total_usd, d("982.54829155721"));
    assert_eq!(projection.factors[0].monthly_factor, d("0.99"));
    assert_eq!(projection.factors[0].by_month[5], d("0.9509900499"));
}

#[test]
fn serverless_and_data_processed_follow_the_trend_and_a_price_per_call_is_held() {
    // 1,000,000 calls × 0.8 s × 0.00006 = 48; data in 1,000,000 × 2,048 B × 0.016 / 2^30
    // = 0.030517578125; pay per use 1,000,000 × 0.00005 = 50
    let profile = UsageProfile::builder()
        .calls_per_period(1_000_000)
        .mean_latency(Duration::from_millis(800))
        .bytes_in_per_call(2048)
        .build()
        .unwrap();
    let plans = [
        Plan::from(ServerlessPlan::new(3072).unwrap()),
        Plan::from(PerInferencePlan::per_call(d("0.00005")).unwrap()),
    ];
    let projection = project(&profile, &plans, &per_month("-1"), 3);
    let serverless = projection.plan("serverless 3072 MB").unwrap();
    // 48.030517578125, × 0.99 = 47.55021240234375, × 0.9801 = 47.0747102783203125
    assert_eq!(
        serverless.monthly_usd,
        ds(&[
            "48.030517578125",
            "47.55021240234375",
            "47.0747102783203125"
        ])
    );
    let pay_per_use = projection.plan("pay per use").unwrap();
    assert_eq!(pay_per_use.basis, PriceBasis::Held);
    assert_eq!(pay_per_use.monthly_usd, ds(&["50", "50", "50"]));
    // No commitment among the plans: nothing to weigh.
    assert!(projection.commitments.is_empty());
    assert_eq!(
        projection.cheapest_by_month,
        [
            "serverless 3072 MB",
            "serverless 3072 MB",
            "serverless 3072 MB"
        ]
    );
    assert!(projection.to_string().contains(
        "No commitment (subscription or savings plan) among the plans: nothing is locked at \
         today's price."
    ));
}

// ------------------------------------------------------------ commitments

#[test]
fn a_subscription_stops_being_cheaper_when_on_demand_prices_fall_below_its_fee() {
    let plans = [instance(1), subscription("160")];
    let projection = project(&monthly(100_000), &plans, &per_month("-1"), 6);
    let sub = projection.plan("subscription").unwrap();
    assert_eq!(sub.basis, PriceBasis::Commitment);
    assert_eq!(sub.monthly_usd, ds(&["160"; 6]));
    // The instance (above) is 161.284070079 in month 5 and 159.67122937821 in month 6.
    let outlook = projection.outlook("subscription", INSTANCE).unwrap();
    assert!(outlook.cheaper_in_month_1);
    assert_eq!(outlook.stops_being_cheaper_in_month, Some(6));
    assert_eq!(outlook.becomes_cheaper_in_month, None);
    // 982.54829155721 − 6 × 160 = 22.54829155721
    assert_eq!(outlook.saving_over_horizon_usd, d("22.54829155721"));
    assert!(outlook.cheaper_over_horizon);
    assert_eq!(
        outlook.summary,
        "subscription stops being cheaper than ml.m5.xlarge x1 in month 6 at -1%/month; over \
         6 months it still saves 22.55 USD"
    );
    assert_eq!(projection.cheapest_by_month[4], "subscription");
    assert_eq!(projection.cheapest_by_month[5], INSTANCE);
}

#[test]
fn a_savings_plan_commitment_is_locked_at_todays_price_while_on_demand_falls() {
    // 0.23 × (1 − 0.64) = 0.0828 ≤ 0.1 committed: 0.1 × 730 = 73 a month, locked for
    // the 3-year term. On demand at −10 %/month: 167.90 × 0.9^(k − 1).
    let plans = [
        instance(1),
        savings_plan(1, "0.1", "0.64", SavingsPlanTerm::ThreeYears),
    ];
    let projection = project(&monthly(100_000), &plans, &per_month("-10"), 12);
    let sp = projection
        .plan("savings plan ml.m5.xlarge x1 (3 yr)")
        .unwrap();
    assert_eq!(sp.monthly_usd, ds(&["73"; 12]));
    assert_eq!(sp.renews_every_months, Some(36));
    let on_demand = projection.plan(INSTANCE).unwrap();
    // month 8: 167.90 × 0.9^7 = 167.90 × 0.4782969 = 80.30604951 > 73
    // month 9: 167.90 × 0.9^8 = 167.90 × 0.43046721 = 72.275444559 < 73
    assert_eq!(on_demand.monthly_usd[7], d("80.30604951"));
    assert_eq!(on_demand.monthly_usd[8], d("72.275444559"));
    let outlook = projection
        .outlook("savings plan ml.m5.xlarge x1 (3 yr)", INSTANCE)
        .unwrap();
    assert_eq!(outlook.stops_being_cheaper_in_month, Some(9));
    // Σ 167.90 × 0.9^k, k = 0..11 = 167.90 × (1 − 0.9^12) / 0.1
    // = 167.90 × 7.17570463519 = 1,204.800808248401; − 12 × 73 = 328.800808248401
    assert_eq!(on_demand.total_usd, d("1204.800808248401"));
    assert_eq!(outlook.saving_over_horizon_usd, d("328.800808248401"));
}

#[test]
fn usage_beyond_a_savings_plan_commitment_is_charged_at_the_falling_on_demand_price() {
    // Two instances: D = 2 × 0.23 = 0.46 USD/h; at 50 % off they use 0.23 USD/h of
    // discounted rate, above the 0.1 committed. The commitment covers 0.1 / 0.5 = 0.2
    // USD/h of on-demand usage; the other 0.26 USD/h is charged on demand.
    // Month k: 0.1 × 730 = 73 locked + 0.26 × 730 = 189.80 × 0.9^(k − 1).
    // On demand: 2 × 167.90 = 335.80 × 0.9^(k − 1).
    let plans = [
        instance(2),
        savings_plan(2, "0.1", "0.5", SavingsPlanTerm::OneYear),
    ];
    let projection = project(&monthly(100_000), &plans, &per_month("-10"), 12);
    let sp = projection
        .plan("savings plan ml.m5.xlarge x2 (1 yr)")
        .unwrap();
    // 73 + 189.80 = 262.80; 73 + 170.82 = 243.82; month 7: 73 + 189.80 × 0.531441
    // = 173.8675018; month 8: 73 + 189.80 × 0.4782969 = 163.78075162
    assert_eq!(sp.monthly_usd[0], d("262.80"));
    assert_eq!(sp.monthly_usd[1], d("243.82"));
    assert_eq!(sp.monthly_usd[6], d("173.8675018"));
    assert_eq!(sp.monthly_usd[7], d("163.78075162"));
    let on_demand = projection.plan("ml.m5.xlarge x2").unwrap();
    // month 7: 335.80 × 0.531441 = 178.4578878; month 8: × 0.4782969 = 160.61209902
    assert_eq!(on_demand.monthly_usd[6], d("178.4578878"));
    assert_eq!(on_demand.monthly_usd[7], d("160.61209902"));
    // 146 × 0.9^(k − 1) > 73 while 0.9^(k − 1) > 0.5: months 1 to 7
    let outlook = projection
        .outlook("savings plan ml.m5.xlarge x2 (1 yr)", "ml.m5.xlarge x2")
        .unwrap();
    assert_eq!(outlook.stops_being_cheaper_in_month, Some(8));
    // 335.80 × 7.17570463519 − (12 × 73 + 189.80 × 7.17570463519)
    // = 146 × 7.17570463519 − 876 = 171.65287673774
    assert_eq!(outlook.saving_over_horizon_usd, d("171.65287673774"));
    assert_eq!(
        outlook.summary,
        "savings plan ml.m5.xlarge x2 (1 yr) stops being cheaper than ml.m5.xlarge x2 in \
         month 8 at -10%/month; over 12 months it still saves 171.65 USD"
    );
}

#[test]
fn a_one_year_savings_plan_is_renewed_at_the_prices_of_the_month_its_term_ends() {
    let plans = [
        instance(1),
        savings_plan(1, "0.1", "0.64", SavingsPlanTerm::OneYear),
    ];
    let projection = project(&monthly(100_000), &plans, &per_month("-10"), 14);
    let sp = projection
        .plan("savings plan ml.m5.xlarge x1 (1 yr)")
        .unwrap();
    // months 1–12: 73; months 13–14: 73 × 0.9^12 = 73 × 0.282429536481 = 20.617356163113
    assert_eq!(sp.monthly_usd[11], d("73"));
    assert_eq!(sp.monthly_usd[12], d("20.617356163113"));
    assert_eq!(sp.monthly_usd[13], d("20.617356163113"));
    // On demand in month 13: 167.90 × 0.282429536481 = 47.4199191751599: the renewed
    // commitment is cheaper again; the outlook reports the first change only.
    assert_eq!(
        projection.plan(INSTANCE).unwrap().monthly_usd[12],
        d("47.4199191751599")
    );
    assert_eq!(projection.cheapest_by_month[12], sp.name);
    let outlook = projection.outlook(&sp.name, INSTANCE).unwrap();
    assert_eq!(outlook.stops_being_cheaper_in_month, Some(9));
}

#[test]
fn rising_prices_keep_a_commitment_cheaper_or_make_it_cheaper() {
    // +1 %/month: 167.90, 169.579, 171.27479, …; the twelve months sum to
    // 167.90 × Σ 1.01^k = 2,129.3922559156084 (every factor exact within 12 places)
    let trend = per_month("+1");
    let cheaper = project(
        &monthly(100_000),
        &[instance(1), subscription("160")],
        &trend,
        12,
    );
    let outlook = cheaper.outlook("subscription", INSTANCE).unwrap();
    assert_eq!(outlook.stops_being_cheaper_in_month, None);
    // 2,129.3922559156084 − 12 × 160 = 209.3922559156084
    assert_eq!(outlook.saving_over_horizon_usd, d("209.3922559156084"));
    assert_eq!(
        outlook.summary,
        "subscription stays cheaper than ml.m5.xlarge x1 through month 12 at +1%/month; over \
         12 months it saves 209.39 USD"
    );

    // A fee of 170 is dearer than 167.90 and 169.579, cheaper than 171.27479.
    let later = project(
        &monthly(100_000),
        &[instance(1), subscription("170")],
        &trend,
        12,
    );
    let outlook = later.outlook("subscription", INSTANCE).unwrap();
    assert!(!outlook.cheaper_in_month_1);
    assert_eq!(outlook.becomes_cheaper_in_month, Some(3));
    // 2,129.3922559156084 − 12 × 170 = 89.3922559156084
    assert_eq!(
        outlook.summary,
        "subscription becomes cheaper than ml.m5.xlarge x1 in month 3 at +1%/month; over 12 \
         months it saves 89.39 USD"
    );
}

/// Asserts that `outlook` finds its commitment cheaper in no month (not in
/// month 1, becoming so in none) nor over the horizon.
#[track_caller]
fn assert_never_cheaper(outlook: &CommitmentOutlook) {
    assert_eq!(
        (
            outlook.cheaper_in_month_1,
            outlook.stops_being_cheaper_in_month,
            outlook.becomes_cheaper_in_month,
            outlook.cheaper_over_horizon
        ),
        (false, None, None, false),
        "{outlook:?}"
    );
}

#[test]
fn a_commitment_never_cheaper_says_what_it_costs_more() {
    // 200 against 167.90 falling 1 % a month: dearer every month;
    // 6 × 200 − 982.54829155721 = 217.45170844279 more
    let projection = project(
        &monthly(100_000),
        &[instance(1), subscription("200")],
        &per_month("-1"),
        6,
    );
    let outlook = projection.outlook("subscription", INSTANCE).unwrap();
    assert_never_cheaper(outlook);
    assert_eq!(outlook.saving_over_horizon_usd, d("-217.45170844279"));
    assert_eq!(
        outlook.summary,
        "subscription is not cheaper than ml.m5.xlarge x1 in any month through month 6 at \
         -1%/month; over 6 months it costs 217.45 USD more"
    );
}

// ------------------------------------------------------------ capacity

/// 4,000,000 calls a month of 800 ms: one instance serves 730 h × 3,600 s ÷ 0.8 s =
/// 3,285,000 calls, fewer, so the instance and the savings plan on it are over
/// capacity; a price per call has no capacity here (the seller's).
fn beyond_one_instance() -> UsageProfile {
    monthly(4_000_000)
}

#[test]
fn the_cheapest_over_the_horizon_is_of_the_plans_that_can_serve_the_calls() {
    // pay per use 4,000,000 × 0.00005 = 200 a month, 12 × 200 = 2,400 over 12 months;
    // the savings plan uses 0.23 × (1 − 0.64) = 0.0828 ≤ 0.1 committed: 0.1 × 730 = 73
    // a month, 12 × 73 = 876, cheaper, but it cannot serve the calls.
    let sp = "savings plan ml.m5.xlarge x1 (1 yr)";
    let plans = [
        instance(1),
        savings_plan(1, "0.1", "0.64", SavingsPlanTerm::OneYear),
        Plan::from(PerInferencePlan::per_call(d("0.00005")).unwrap()),
    ];
    let trend = PriceTrend::uniform("-20%/year".parse().unwrap());
    let projection = project(&beyond_one_instance(), &plans, &trend, 12);
    let pay_per_use = projection.plan("pay per use").unwrap();
    assert_eq!(pay_per_use.total_usd, d("2400"));
    assert!(!pay_per_use.over_capacity);
    let savings = projection.plan(sp).unwrap();
    assert_eq!(savings.total_usd, d("876"));
    assert!(savings.over_capacity);
    assert!(projection.plan(INSTANCE).unwrap().over_capacity);
    assert_eq!(projection.cheapest_by_month, ["pay per use"; 12]);
    assert_eq!(projection.cheapest_over_horizon, "pay per use");
    let text = projection.to_string();
    let total = text.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.ends_with("  pay per use"), "{text}");

    // No saving is claimed for a plan that cannot serve the calls: 2,400 − 876 =
    // 1,524 is what the two would cost, not advice.
    let outlook = projection.outlook(sp, "pay per use").unwrap();
    assert_eq!(outlook.over_capacity, [sp]);
    assert_eq!(outlook.saving_over_horizon_usd, d("1524"));
    assert_never_cheaper(outlook);
    assert_eq!(
        outlook.summary,
        "savings plan ml.m5.xlarge x1 (1 yr) cannot serve 4,000,000 calls per month: it is \
         not weighed against pay per use"
    );
    let both = projection.outlook(sp, INSTANCE).unwrap();
    assert_eq!(both.over_capacity, [sp, INSTANCE]);
    assert_eq!(
        both.summary,
        "savings plan ml.m5.xlarge x1 (1 yr) and ml.m5.xlarge x1 cannot serve 4,000,000 \
         calls per month: they are not weighed against each other"
    );
    assert!(!text.contains("saves"), "{text}");

    let json = serde_json::to_value(&projection).unwrap();
    assert_eq!(json["cheapest_over_horizon"], "pay per use");
    assert_eq!(json["plans"][1]["over_capacity"], true);
    assert_eq!(json["commitments"][0]["over_capacity"][0], sp);
}

#[test]
fn a_commitment_is_not_weighed_against_a_plan_that_cannot_serve_the_calls() {
    // The subscription of 160 against the instance (167.90 × 0.99^(k − 1)) would stop
    // being cheaper in month 6 (above); at 4,000,000 calls the instance serves only
    // 3,285,000, so there is no crossover to report.
    let plans = [instance(1), subscription("160")];
    let projection = project(&beyond_one_instance(), &plans, &per_month("-1"), 12);
    let outlook = projection.outlook("subscription", INSTANCE).unwrap();
    assert_eq!(outlook.over_capacity, [INSTANCE]);
    assert_eq!(outlook.stops_being_cheaper_in_month, None);
    assert!(!outlook.cheaper_over_horizon);
    assert_eq!(
        outlook.summary,
        "ml.m5.xlarge x1 cannot serve 4,000,000 calls per month: subscription is not \
         weighed against it"
    );
    // 12 × 160 = 1,920 for the only plan that can serve the calls
    assert_eq!(projection.cheapest_by_month, ["subscription"; 12]);
    assert_eq!(projection.cheapest_over_horizon, "subscription");
    assert!(
        projection
            .to_string()
            .contains("\nOver capacity, never named the cheapest: ml.m5.xlarge x1\n")
    );

    // The instance alone cannot serve them either: the cheapest is named of all plans
    // (one), and the table says none can.
    let alone = project(&beyond_one_instance(), &[instance(1)], &per_month("-1"), 2);
    assert_eq!(alone.cheapest_over_horizon, INSTANCE);
    assert!(
        alone
            .to_string()
            .contains("\nNo plan can serve the calls: the cheapest is named of them all\n")
    );
}

// ------------------------------------------------------------ yearly rates, periods, horizons

#[test]
fn a_yearly_trend_compounds_to_its_change_over_twelve_months() {
    let trend = PriceTrend::uniform("-20%/year".parse().unwrap());
    let projection = project(&monthly(100_000), &[instance(1)], &trend, 13);
    let factors = &projection.factors[0];
    // 0.8^(1/12) = 0.98157652987375…, to 12 places
    assert_eq!(factors.monthly_factor, d("0.981576529874"));
    assert_eq!(factors.by_month[1], d("0.981576529874"));
    // month 13, a year on: 0.981576529874^12 = 0.800000000002428… → 0.800000000002
    assert_eq!(factors.by_month[12], d("0.800000000002"));
    assert!((factors.by_month[12] - d("0.8")).abs() < d("0.00000000001"));
    // 167.90 × 0.800000000002 = 134.3200000003358 (0.8 × 167.90 = 134.32 to the cent)
    let plan = projection.plan(INSTANCE).unwrap();
    assert_eq!(plan.monthly_usd[12], d("134.3200000003358"));
}

#[test]
fn a_comparison_over_a_year_is_projected_month_by_month() {
    // 8,760 h × 0.23 = 2,014.80 a year; × 730 / 8,760 = 167.90 a month
    let profile = monthly(100_000).over(Period::Year).unwrap();
    let projection = project(&profile, &[instance(1)], &per_month("-1"), 2);
    assert_eq!(
        projection.plan(INSTANCE).unwrap().monthly_usd,
        ds(&["167.90", "166.221"])
    );
}

#[test]
fn a_horizon_of_one_month_is_todays_comparison() {
    let plans = [instance(1), subscription("160")];
    let comparison = Comparison::compute(&monthly(100_000), &plans, &rates()).unwrap();
    let projection = Projection::compute(&comparison, &per_month("-50"), 1).unwrap();
    for row in &comparison.plans {
        let plan = projection.plan(&row.plan.name).unwrap();
        assert_eq!(plan.monthly_usd, [row.cost_usd]);
        assert_eq!(plan.total_usd, row.cost_usd);
    }
    assert_eq!(
        projection.cheapest_by_month,
        [comparison.cheapest.clone().unwrap()]
    );
    assert_eq!(
        projection.commitments[0].summary,
        "subscription stays cheaper than ml.m5.xlarge x1 through month 1 at -50%/month; over \
         1 month it saves 7.90 USD"
    );
}

#[test]
fn a_flat_trend_repeats_todays_costs() {
    let plans = [instance(1), subscription("160")];
    let trend = PriceTrend::uniform(TrendRate::flat());
    let projection = project(&monthly(100_000), &plans, &trend, 24);
    assert_eq!(
        projection.plan(INSTANCE).unwrap().total_usd,
        d("4029.6") // 24 × 167.90
    );
}

#[test]
fn a_trend_per_price_moves_each_part_of_a_plan_at_its_own_rate() {
    // Instance-hours fall 10 % a month, data processed stays: 167.90 + 0.030517578125
    // in month 1; 151.11 + 0.030517578125 = 151.140517578125 in month 2.
    let profile = UsageProfile::builder()
        .calls_per_period(1_000_000)
        .bytes_in_per_call(2048)
        .build()
        .unwrap();
    let trend = PriceTrend::per_key(
        [(
            PriceKey::hosting(REGION, "ml.m5.xlarge"),
            "-10%/month".parse().unwrap(),
        )],
        TrendRate::flat(),
    )
    .unwrap();
    let projection = project(&profile, &[instance(1)], &trend, 2);
    assert_eq!(
        projection.plan(INSTANCE).unwrap().monthly_usd,
        ds(&["167.930517578125", "151.140517578125"])
    );
    assert_eq!(projection.factors.len(), 2);
}

// ------------------------------------------------------------ bad inputs

#[test]
fn a_horizon_outside_one_to_120_months_is_refused() {
    let comparison = Comparison::compute(&monthly(1000), &[instance(1)], &rates()).unwrap();
    for months in [0, 121] {
        let err = Projection::compute(&comparison, &per_month("-1"), months).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "horizon (months) is out of range (got {months}): project from 1 to 120 \
                 months (10 years)"
            )
        );
    }
    assert!(Projection::compute(&comparison, &per_month("-1"), 120).is_ok());
}

#[test]
fn a_trend_out_of_range_is_refused_even_when_deserialised() {
    let comparison = Comparison::compute(&monthly(1000), &[instance(1)], &rates()).unwrap();
    let trend: PriceTrend = serde_json::from_value(serde_json::json!({
        "kind": "uniform", "rate": {"change": "-1.5", "per": "year"}
    }))
    .unwrap();
    let err = Projection::compute(&comparison, &trend, 12).unwrap_err();
    assert!(matches!(
        err,
        CompareError::OutOfRange {
            what: "price trend",
            ..
        }
    ));
    assert!(err.to_string().starts_with(
        "price trend is out of range (got -150%/year): prices cannot fall by 100% or more"
    ));
}

#[test]
fn the_steepest_rise_over_the_longest_horizon_fits_in_a_decimal() {
    // +1,000 %/year for 120 months: prices × 11^10 ≈ 2.6 × 10^10 in the last month.
    let plans = [instance(10_000), subscription("1000000000")];
    let projection = project(
        &monthly(1000),
        &plans,
        &PriceTrend::uniform("+1000%/year".parse().unwrap()),
        120,
    );
    let last = projection.plan("ml.m5.xlarge x10000").unwrap().monthly_usd[119];
    // 10,000 × 167.90 × 11^(119/12) ≈ 3.566 × 10^16
    let (low, high) = (35_650_000_000_000_000u64, 35_670_000_000_000_000u64);
    assert!(
        last > Decimal::from(low) && last < Decimal::from(high),
        "{last}"
    );
}

// ------------------------------------------------------------ read back

#[test]
fn a_projection_read_back_with_fewer_months_than_its_horizon_prints_without_panicking() {
    // Two months of 167.90 × 0.99^(k − 1): 167.90 and 166.221; the subscription 160.
    let projection = project(
        &monthly(100_000),
        &[instance(1), subscription("160")],
        &per_month("-1"),
        2,
    );
    let mut json = serde_json::to_value(&projection).unwrap();
    assert_eq!(json["horizon_months"], 2);
    // Keep only the first month of each plan, and of the cheapest plans.
    for plan in json["plans"].as_array_mut().unwrap() {
        plan["monthly_usd"].as_array_mut().unwrap().truncate(1);
        plan["cumulative_usd"].as_array_mut().unwrap().truncate(1);
    }
    json["cheapest_by_month"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let read: Projection = serde_json::from_value(json.clone()).unwrap();
    let text = read.to_string();
    assert!(
        text.contains("\n    1        160.00           167.90  subscription\n"),
        "{text}"
    );
    assert!(!text.contains("\n    2 "), "{text}");

    // One plan with both months, the other with one: the missing month is `-`.
    let mut uneven = json;
    uneven["plans"][1]["monthly_usd"] = serde_json::json!(["167.9", "166.221"]);
    let read: Projection = serde_json::from_value(uneven).unwrap();
    let text = read.to_string();
    assert!(
        text.contains("\n    2             -           166.22  -\n"),
        "{text}"
    );
}
