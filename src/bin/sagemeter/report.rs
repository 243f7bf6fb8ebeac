//! `sagemeter report`: where the money went, from a ledger. A thin wrapper: the
//! figures, their definitions and the table are `sagemeter::report`'s.

use crate::CliError;
use chrono::{DateTime, Utc};
use sagemeter::report::{
    GroupBy, ReportError, ReportOptions, parse_time_bound, render_table, report_files,
};
use std::io::Write;
use std::path::PathBuf;

/// Summarise ledgers: calls, cost, cost per 1,000 calls, p50/p95 cost and
/// latency, tokens, unpriced share, errors, per group.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// JSON Lines ledgers (written by `--ledger` or `sagemeter::ledger::JsonlLedger`),
    /// Parquet ledgers (`*.parquet`, with the `parquet` feature), or directories of
    /// them (a rolling ledger's, read oldest first). Read on every core. The same
    /// receipts in both formats (a ledger and its conversion) are refused; a file
    /// named twice (a directory and a file in it) is read once, with a warning.
    #[arg(required = true, value_name = "LEDGER")]
    pub ledgers: Vec<PathBuf>,
    /// Group by `endpoint`, `variant`, `component` (inference component),
    /// `model` (target model of a multi-model endpoint), `region`, `tag:<key>`,
    /// `day` or `hour` (UTC). Ledgers of several regions: endpoint groups are per
    /// region (`eu-west-1/NAME`).
    #[arg(long, default_value = "endpoint", value_parser = parse_group_by)]
    pub by: GroupBy,
    /// Only calls starting at or after this: RFC 3339, or YYYY-MM-DD (midnight UTC).
    #[arg(long, value_name = "YYYY-MM-DD|RFC3339", value_parser = parse_bound)]
    pub since: Option<DateTime<Utc>>,
    /// Only calls starting before this (excluded): RFC 3339, or YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD|RFC3339", value_parser = parse_bound)]
    pub until: Option<DateTime<Utc>>,
    /// Print the report as JSON (money as exact decimal strings) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw cost over time per group into this .svg or .png file (needs the
    /// `charts` feature). Checked before any ledger is read.
    #[arg(long, value_name = "FILE", value_parser = crate::compare::parse_chart_path)]
    pub chart: Option<PathBuf>,
}

fn parse_group_by(s: &str) -> Result<GroupBy, sagemeter::report::ReportError> {
    s.parse()
}

pub(crate) fn parse_bound(s: &str) -> Result<DateTime<Utc>, sagemeter::report::ReportError> {
    parse_time_bound(s)
}

/// Runs `sagemeter report`, writing the table (or JSON) to `out`.
pub fn run(args: ReportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut options = ReportOptions::new(args.by);
    options.since = args.since;
    options.until = args.until;
    let report = report_files(&args.ledgers, &options).map_err(|e| match e {
        // --since not before --until: refused before any ledger is read.
        ReportError::EmptyRange { .. } => CliError::Usage(e.to_string()),
        other => CliError::Failed(Box::new(other)),
    })?;
    // The report first: a chart that cannot be drawn (no calls in the range)
    // does not take the figures with it. And the chart whatever became of the
    // report: a reader that left (`| head`) does not take the chart with it.
    let printed = if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(render_table(&report).as_bytes())
    };
    if let Some(path) = &args.chart {
        draw_chart(&report, path).map_err(CliError::Failed)?;
        if printed.is_ok() && !args.json {
            writeln!(out, "chart: {}", path.display())?;
        }
    }
    Ok(printed?)
}

#[cfg(feature = "charts")]
fn draw_chart(
    report: &sagemeter::report::Report,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use sagemeter::report::chart;
    Ok(chart::write(report, path, chart::DEFAULT_SIZE)?)
}

#[cfg(not(feature = "charts"))]
fn draw_chart(
    _report: &sagemeter::report::Report,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(format!(
        "cannot draw {}: this sagemeter was built without charts \
         (cargo install sagemeter --features cli,charts)",
        path.display()
    )
    .into())
}
