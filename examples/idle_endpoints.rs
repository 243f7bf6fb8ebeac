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
//! sagemaker:DescribeEndpointConfig, cloudwatch:GetMetricData, pricing:GetProducts
//! (and, for endpoints hosting inference components,
//! sagemaker:ListInferenceComponents, sagemaker:DescribeInferenceComponent).

use sagemeter::account::{Account, EndpointRow, EndpointsOptions, Flag, Window};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let window: Window = match std::env::args().nth(1).map(|text| text.parse()) {
        None => Window::hours(24),
        Some(Ok(window)) => window,
        Some(Err(e)) => {
            eprintln!("usage: idle_endpoints [WINDOW]  (24h, 7d, 30d): {e}");
            return ExitCode::from(2);
        }
    };
    match run(window).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain, as the library's errors redact it (no identity, no payload).
            eprintln!("error: {}", sagemeter::redact::error_chain(&*error));
            ExitCode::FAILURE
        }
    }
}

async fn run(window: Window) -> Result<(), Box<dyn std::error::Error>> {
    let sdk_config = aws_config::load_from_env().await;
    let account = Account::new(&sdk_config);
    let view = account.endpoints(&EndpointsOptions::new(window)).await?;
    for warning in &view.warnings {
        eprintln!("warning: {warning}");
    }
    // A component's row is a share of its variant's burn (and not in the totals):
    // next to its idle variant's row it would count that burn twice, so it is
    // listed only when its variant serves calls (another component's).
    let variant_idle = |r: &EndpointRow| {
        view.rows.iter().any(|v| {
            v.inference_component.is_none()
                && v.endpoint == r.endpoint
                && v.variant == r.variant
                && v.flags.contains(&Flag::Idle)
        })
    };
    let idle: Vec<_> = view
        .rows
        .iter()
        .filter(|r| {
            r.flags.contains(&Flag::Idle) && (r.inference_component.is_none() || !variant_idle(r))
        })
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
        let mut name = format!("{}/{}", row.endpoint, row.variant.as_deref().unwrap_or("-"));
        if let Some(component) = &row.inference_component {
            name = format!("{name}/{component} (part of its variant's burn)");
        }
        // A burn whose rate is unknown is said, never printed as $0.
        let (Some(per_hour), Some(window_cost)) = (row.usd_per_hour, row.window_cost_usd) else {
            println!(
                "  {name}: unpriced ({})",
                row.unpriced_reason
                    .as_deref()
                    .unwrap_or("its rate is unknown")
            );
            continue;
        };
        println!(
            "  {name}: ${}/hour, ${}/month, ${} over the window",
            per_hour.round_dp(4),
            (per_hour * sagemeter::Decimal::from(730)).round_dp(2),
            window_cost.round_dp(2),
        );
    }
    println!(
        "idle in total: ${}/hour, ${}/month",
        view.totals.idle_usd_per_hour.round_dp(4),
        view.totals.idle_usd_per_month.round_dp(2)
    );
    Ok(())
}
