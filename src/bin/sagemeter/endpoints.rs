//! `sagemeter endpoints`: every endpoint of the account and region, its burn,
//! invocations and flags. The figures are `sagemeter::account`'s.

use crate::output::{table, usd4};
use crate::{CliError, GlobalArgs, aws};
use rust_decimal::Decimal;
use sagemeter::account::{Account, EndpointRow, EndpointsOptions, EndpointsView, Window};
use std::io::Write;

/// List every endpoint with what it burns per hour, its invocations and flags.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Flags: idle (burning, no invocation in the window), underused (utilisation = model \
time ÷ instance time below --underused-below), unpriced (the reason is shown).
IAM: sagemaker:ListEndpoints, sagemaker:DescribeEndpoint, sagemaker:DescribeEndpointConfig, \
cloudwatch:GetMetricData, pricing:GetProducts.")]
pub struct EndpointsArgs {
    /// How far back invocations are counted: 24h, 7d, 30d (1h to 90d).
    #[arg(long, default_value = "24h", value_parser = parse_window)]
    pub window: Window,
    /// Flag instance variants whose utilisation is below this percentage.
    #[arg(long, default_value = "10%", value_name = "PERCENT", value_parser = parse_percent)]
    pub underused_below: Decimal,
    /// One JSON document: the rows (one object per variant), totals and warnings;
    /// money as exact decimal strings.
    #[arg(long)]
    pub json: bool,
}

fn parse_window(text: &str) -> Result<Window, String> {
    text.parse()
}

fn parse_percent(text: &str) -> Result<Decimal, String> {
    let number = text.strip_suffix('%').unwrap_or(text);
    match number.parse::<Decimal>() {
        Ok(p) if p >= Decimal::ZERO && p <= Decimal::ONE_HUNDRED => Ok(p / Decimal::ONE_HUNDRED),
        _ => Err(format!("`{text}` is not a percentage from 0% to 100%")),
    }
}

/// Runs `sagemeter endpoints`.
pub async fn run(
    args: EndpointsArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let sdk_config = aws::load_with_fallback_region(global).await;
    let account = Account::new(&sdk_config);
    let options = EndpointsOptions::new(args.window).underused_below(args.underused_below);
    let view = account
        .endpoints(&options)
        .await
        .map_err(|e| CliError::Failed(Box::new(e)))?;
    for warning in &view.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &view).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(());
    }
    render(&view, out)?;
    Ok(())
}

fn render(view: &EndpointsView, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} endpoints in {}; invocations over the last {} (CloudWatch)",
        view.totals.endpoints, view.region, view.window
    )?;
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = view
        .rows
        .iter()
        .map(|r| {
            vec![
                r.endpoint.clone(),
                r.variant.clone().unwrap_or_else(dash),
                r.status.clone(),
                deployment(r),
                r.usd_per_hour.map_or_else(dash, usd4),
                r.invocations.map_or_else(dash, |n| n.to_string()),
                r.window_cost_usd.map_or_else(dash, usd4),
                r.usd_per_1000_invocations.map_or_else(dash, usd4),
                r.utilisation.map_or_else(dash, |u| {
                    format!("{}%", (u * Decimal::ONE_HUNDRED).round_dp(2).normalize())
                }),
                r.price_source.map_or_else(dash, |s| s.to_string()),
                flags(r),
            ]
        })
        .collect();
    table(
        out,
        &[
            "ENDPOINT",
            "VARIANT",
            "STATUS",
            "DEPLOYMENT",
            "$/HOUR",
            "INVOCATIONS",
            "WINDOW COST",
            "$/1K CALLS",
            "UTILISATION",
            "PRICES",
            "FLAGS",
        ],
        &rows,
    )?;
    let t = &view.totals;
    writeln!(
        out,
        "total: {}/hour, {}/month (730 h); idle: {}/hour, {}/month; over the window: {}",
        usd4(t.usd_per_hour),
        usd4(t.usd_per_month),
        usd4(t.idle_usd_per_hour),
        usd4(t.idle_usd_per_month),
        usd4(t.window_cost_usd),
    )?;
    if t.unpriced > 0 {
        writeln!(out, "{} variants unpriced, not in the totals", t.unpriced)?;
    }
    for r in &view.rows {
        if let Some(reason) = &r.unpriced_reason {
            writeln!(out, "unpriced {}: {reason}", r.endpoint)?;
        }
    }
    Ok(())
}

fn deployment(r: &EndpointRow) -> String {
    match (&r.instance_type, r.instance_count, r.memory_mb) {
        (Some(t), Some(n), _) => format!("{n} × {t}"),
        (_, _, Some(mb)) => match r.provisioned_concurrency {
            Some(pc) => format!("serverless {mb} MB, PC {pc}"),
            None => format!("serverless {mb} MB"),
        },
        _ => "-".into(),
    }
}

fn flags(r: &EndpointRow) -> String {
    let words: Vec<&str> = r.flags.iter().map(|f| f.as_str()).collect();
    words.join(",")
}
