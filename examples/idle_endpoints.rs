//! Idle endpoints: which endpoints of the account burn money with nobody calling
//! them, and what they cost per month. A service can run this on a schedule and
//! log or alert on the result.
//!
//! ```sh
//! bash localstack/up.sh       # the demo account has one idle endpoint, demo-idle
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo run --features account --example idle_endpoints -- 24h
//! ```
//!
//! The argument is the window invocations are counted over (default 24h; 7d, 30d).
//! IAM: sagemaker:ListEndpoints, sagemaker:DescribeEndpoint,
//! sagemaker:DescribeEndpointConfig, cloudwatch:GetMetricData, pricing:GetProducts.

use sagemeter::account::{Account, EndpointsOptions, Flag, Window};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let window: Window = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => Window::hours(24),
    };
    let sdk_config = aws_config::load_from_env().await;
    let account = Account::new(&sdk_config);
    let view = account.endpoints(&EndpointsOptions::new(window)).await?;
    for warning in &view.warnings {
        eprintln!("warning: {warning}");
    }
    let idle: Vec<_> = view
        .rows
        .iter()
        .filter(|r| r.flags.contains(&Flag::Idle))
        .collect();
    if idle.is_empty() {
        println!("no idle endpoint in {} over the last {window}", view.region);
        return Ok(());
    }
    println!(
        "idle endpoints in {} (no invocation in the last {window}):",
        view.region
    );
    for row in idle {
        let per_hour = row.usd_per_hour.unwrap_or_default();
        println!(
            "  {}/{}: ${}/hour, ${}/month, ${} over the window",
            row.endpoint,
            row.variant.as_deref().unwrap_or("-"),
            per_hour.round_dp(4),
            (per_hour * sagemeter::Decimal::from(730)).round_dp(2),
            row.window_cost_usd.unwrap_or_default().round_dp(2),
        );
    }
    println!(
        "idle in total: ${}/hour, ${}/month",
        view.totals.idle_usd_per_hour.round_dp(4),
        view.totals.idle_usd_per_month.round_dp(2)
    );
    Ok(())
}
