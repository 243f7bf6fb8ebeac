//! Would another way of paying be cheaper for the same work?
//!
//! A team serves a model at 1,200 calls a day on one always-on ml.m5.xlarge. This
//! prices the same month of work on demand, under a savings plan, on serverless, with
//! a per-token API and with a subscription that includes 30,000 calls, and says where
//! each pair of plans breaks even.
//!
//! ```text
//! cargo run --example compare_plans                    # table
//! cargo run --example compare_plans --features charts  # table + SVG and PNG charts
//! ```

use sagemeter::Decimal;
use sagemeter::compare::{
    Comparison, InstancePlan, PerTokenPlan, Period, Plan, RateTable, SavingsPlan, ServerlessPlan,
    SubscriptionPlan, UsageProfile,
};
use sagemeter::pricing::{PriceKey, Snapshot};
use std::str::FromStr;
use std::time::Duration;

const REGION: &str = "us-east-1";

fn usd(s: &str) -> Decimal {
    Decimal::from_str(s).expect("a decimal literal")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The work: what the endpoint did, per call, and how often.
    let profile = UsageProfile::builder()
        .period(Period::Month)
        .calls_per_day(1_200) // × 730 h / 24 h = 36,500 calls a month
        .mean_latency(Duration::from_millis(800))
        .bytes_in_per_call(2_048)
        .bytes_out_per_call(1_024)
        .tokens_in_per_call(500)
        .tokens_out_per_call(200)
        .build()?;

    // The ways of paying for it.
    let plans = [
        Plan::from(InstancePlan::new("ml.m5.xlarge", 1)?),
        Plan::from(
            SavingsPlan::builder()
                .instance_type("ml.m5.xlarge")
                .commitment_usd_per_hour(usd("0.1"))
                .discount(usd("0.64"))
                .build()?,
        ),
        Plan::from(ServerlessPlan::new(3072)?),
        Plan::from(PerTokenPlan::per_million_tokens(usd("3"), usd("15"))?).named("token API"),
        Plan::from(
            SubscriptionPlan::builder()
                .fee_usd(usd("99"))
                .period(Period::Month)
                .included_calls(30_000)
                .overage_usd_per_call(usd("0.004"))
                .build()?,
        ),
    ];

    // Instance, serverless and data rates: from the bundled price snapshot (an app would
    // use sagemeter's live Price List source the same way). Each row says which.
    let mut rates = RateTable::new(REGION);
    if let Err(e) = rates
        .fill_from(&Snapshot::bundled(), &plans, &profile)
        .await
    {
        eprintln!("snapshot: {e}\n-> using the public {REGION} on-demand rates stated here\n");
        rates = RateTable::new(REGION)
            .with_rate(PriceKey::hosting(REGION, "ml.m5.xlarge"), usd("0.23"))?
            .with_rate(PriceKey::serverless(REGION, 3), usd("0.00006"))?
            .with_rate(
                PriceKey::DataIn {
                    region: REGION.into(),
                },
                usd("0.016"),
            )?
            .with_rate(
                PriceKey::DataOut {
                    region: REGION.into(),
                },
                usd("0.016"),
            )?;
    }

    let comparison = Comparison::compute(&profile, &plans, &rates)?;
    println!("{comparison}");

    // The cheapest plan that can serve the calls (none when every plan is over
    // capacity).
    match comparison
        .cheapest
        .as_deref()
        .and_then(|name| comparison.plan(name))
    {
        Some(cheapest) => println!(
            "Cheapest: {} at {} USD per month ({} USD per 1,000 calls).",
            cheapest.plan.name,
            cheapest.cost_usd.round_dp(2),
            cheapest.usd_per_1000_calls.unwrap_or_default().round_dp(4)
        ),
        None => println!("No plan can serve the calls."),
    }
    if let Some(be) = comparison.break_even("token API", "subscription") {
        println!("Token API or subscription? {}.", be.summary);
    }

    #[cfg(feature = "charts")]
    {
        let dir = std::env::temp_dir();
        for name in ["compare_plans.svg", "compare_plans.png"] {
            let path = dir.join(name);
            sagemeter::compare::chart::render(&comparison, &path)?;
            println!("Chart: {}", path.display());
        }
    }
    Ok(())
}
