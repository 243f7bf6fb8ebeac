//! `sagemeter price … --history` and `sagemeter price --trend FAMILY`: rates in the
//! published versions of the AWS Price List, from `sagemeter::pricing::history`.

use crate::output::{eprint, json_line, table};
use crate::price::PriceArgs;
use crate::{CliError, price};
use chrono::{Months, NaiveDate, Utc};
use sagemeter::pricing::PriceUnit;
use sagemeter::pricing::history::{
    HistoryError, KeyHistory, MissingVersion, PriceHistory, PriceListHistory,
    SAGEMAKER_PRICE_LISTS_SINCE, Trend,
};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// `--time-limit` when not given.
const DEFAULT_TIME_LIMIT_SECS: u64 = 300;

/// The `--json` object of `--history`.
#[derive(Serialize)]
struct HistoryOutput<'a> {
    /// `history`.
    kind: &'static str,
    #[serde(flatten)]
    history: &'a PriceHistory,
    /// Versions that could not be read (then the command fails, after printing this).
    missing: &'a [MissingVersion],
    /// Where downloaded versions are kept.
    cache_dir: Option<String>,
}

/// The `--json` object of `--trend`.
#[derive(Serialize)]
struct TrendOutput<'a> {
    /// `trend`.
    kind: &'static str,
    family: &'a str,
    #[serde(flatten)]
    trend: &'a Trend,
    /// How many versions were read.
    versions_read: usize,
    missing: &'a [MissingVersion],
    cache_dir: Option<String>,
}

/// Runs `--history` or `--trend`.
pub async fn run(
    args: &PriceArgs,
    sdk_config: &aws_types::SdkConfig,
    region: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let until = args.until.unwrap_or_else(|| Utc::now().date_naive());
    let since = match args.since {
        Some(since) => since,
        None => until
            .checked_sub_months(Months::new(36))
            .unwrap_or(NaiveDate::MIN),
    };
    if since > until {
        return Err(CliError::Usage(format!(
            "--since {since} is after --until {until}"
        )));
    }
    if let Some(path) = &args.chart {
        check_chart_path(path)?;
    }
    if args.since.is_some()
        && since < SAGEMAKER_PRICE_LISTS_SINCE
        && until >= SAGEMAKER_PRICE_LISTS_SINCE
    {
        eprint(&format!(
            "note: --since {since} is before Amazon SageMaker's launch (November 2017), when \
             no SageMaker price list existed: reading from {SAGEMAKER_PRICE_LISTS_SINCE}"
        ));
    }
    let reader = PriceListHistory::builder(sdk_config)
        .until(until)
        .time_limit(Duration::from_secs(
            args.time_limit.unwrap_or(DEFAULT_TIME_LIMIT_SECS),
        ))
        .build();
    let cache_dir = reader
        .cache_dir()
        .map(|d| d.join("price-lists").display().to_string());

    let (family, answer) = match (&args.trend, &args.target) {
        (Some(family), _) => (
            Some(family.as_str()),
            reader.family(region, family, since).await,
        ),
        (None, Some(target)) => (None, reader.history(&target.key(region), since).await),
        (None, None) => {
            return Err(CliError::Usage(
                "name what to price (an instance type, serverless:MB, data-in, ...), or --trend FAMILY".into(),
            ));
        }
    };
    let (history, missing) = match answer {
        Ok(history) => (history, Vec::new()),
        Err(HistoryError::Incomplete { partial, missing }) => (*partial, missing),
        // Refused as asked (e.g. not a family): nothing was sent.
        Err(HistoryError::Invalid { reason }) => return Err(CliError::Usage(reason)),
        Err(other) => return Err(CliError::failed(other.to_string())),
    };

    // What was read, then the chart, then whether it was all: a reader that left
    // (`| head`) takes neither the chart nor the incomplete history's exit 1 with it.
    let mut printed = print(args, out, family, &history, &missing, cache_dir);
    if let Some(path) = &args.chart {
        match draw_chart(&history, &missing, path) {
            Ok(()) => {
                if printed.is_ok() && !args.json {
                    printed = writeln!(out, "chart written to {}", path.display());
                }
            }
            // A history with versions missing can leave nothing to chart: the
            // chart's error is a note, and the error below names each missing
            // version and why, which the chart's alone would not.
            Err(e) if !missing.is_empty() => crate::output::eprint(&format!("note: {e}")),
            Err(e) => return Err(e),
        }
    }
    let printed = printed.and_then(|()| out.flush());
    if !missing.is_empty() {
        return Err(CliError::failed(
            HistoryError::Incomplete {
                partial: Box::new(history),
                missing,
            }
            .to_string(),
        ));
    }
    Ok(printed?)
}

/// The history (or trend) as text or JSON.
fn print(
    args: &PriceArgs,
    out: &mut dyn Write,
    family: Option<&str>,
    history: &PriceHistory,
    missing: &[MissingVersion],
    cache_dir: Option<String>,
) -> std::io::Result<()> {
    if args.json {
        match family {
            Some(family) => json_line(
                out,
                &TrendOutput {
                    kind: "trend",
                    family,
                    trend: &history.trend(),
                    versions_read: history.versions.len(),
                    missing,
                    cache_dir,
                },
            ),
            None => json_line(
                out,
                &HistoryOutput {
                    kind: "history",
                    history,
                    missing,
                    cache_dir,
                },
            ),
        }
    } else {
        match family {
            Some(family) => write_trend(out, family, history)?,
            None => write_history(out, history, args.target.as_ref())?,
        }
        if let Some(dir) = &cache_dir {
            writeln!(out, "\nPrice List files are cached in {dir}")?;
        }
        Ok(())
    }
}

fn check_chart_path(path: &Path) -> Result<(), CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("svg" | "png")) {
        return Err(CliError::Usage(format!(
            "--chart {}: name the file .svg or .png",
            path.display()
        )));
    }
    if cfg!(not(feature = "charts")) {
        return Err(CliError::Usage(
            "--chart needs sagemeter built with the `charts` feature".into(),
        ));
    }
    Ok(())
}

/// The chart of what was read: no line where `missing` leaves a rate unknown.
#[cfg(feature = "charts")]
fn draw_chart(
    history: &PriceHistory,
    missing: &[MissingVersion],
    path: &Path,
) -> Result<(), CliError> {
    sagemeter::pricing::history::chart::render_incomplete(history, missing, path)
        .map_err(|e| CliError::failed(e.to_string()))
}

#[cfg(not(feature = "charts"))]
fn draw_chart(
    _history: &PriceHistory,
    _missing: &[MissingVersion],
    _path: &Path,
) -> Result<(), CliError> {
    Err(CliError::Usage(
        "--chart needs sagemeter built with the `charts` feature".into(),
    ))
}

fn unit_name(unit: PriceUnit) -> &'static str {
    match unit {
        PriceUnit::Hour => "instance-hour",
        PriceUnit::Second => "second",
        PriceUnit::Gigabyte => "GB",
        PriceUnit::GigabyteMonth => "GB-month",
        _ => "unit",
    }
}

/// The date part of an `effectiveDate` (`2025-03-01T00:00:00Z` → `2025-03-01`).
fn day(text: &str) -> &str {
    text.get(..10).unwrap_or(text)
}

fn write_history(
    out: &mut dyn Write,
    history: &PriceHistory,
    target: Option<&price::Target>,
) -> std::io::Result<()> {
    let versions = history.versions.len();
    match history.series.first() {
        None => {
            let what = target.map_or_else(String::new, |t| format!("{} ", t.key(&history.region)));
            writeln!(
                out,
                "{what}is not listed in the {versions} Price List version(s) in effect from {} to {}",
                history.since, history.until
            )?;
        }
        Some(series) => write_series(out, history, series)?,
    }
    Ok(())
}

fn write_series(
    out: &mut dyn Write,
    history: &PriceHistory,
    series: &KeyHistory,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: on-demand USD per {}",
        series.key,
        unit_name(series.unit)
    )?;
    writeln!(
        out,
        "{} Price List version(s) in effect from {} to {}, read; {} change(s)\n",
        history.versions.len(),
        history.since,
        history.until,
        series.changes().count()
    )?;
    let rows: Vec<Vec<String>> = series
        .points
        .iter()
        .map(|p| {
            let effective = p
                .effective_date
                .as_deref()
                .map_or_else(|| p.seen_on.to_string(), |d| day(d).to_owned());
            match p.usd_per_unit {
                Some(usd) => vec![
                    effective,
                    format!("${}", usd.normalize()),
                    p.change_percent
                        .map_or_else(String::new, |c| format!("{c:+}%")),
                    p.version.clone(),
                    p.sku.clone().unwrap_or_default(),
                ],
                None => vec![
                    p.seen_on.to_string(),
                    "not listed".into(),
                    String::new(),
                    p.version.clone(),
                    String::new(),
                ],
            }
        })
        .collect();
    table(
        out,
        &["effective", "rate", "change", "version", "SKU"],
        &rows,
    )?;
    for p in series.points.iter().filter(|p| p.usd_per_unit.is_some()) {
        if let Some(note) = &p.note {
            // The note can quote a SKU of the Price List file, the version its
            // index: no control character of theirs reaches the terminal.
            let printable = sagemeter::redact::printable;
            writeln!(out, "note ({}): {}", printable(&p.version), printable(note))?;
        }
    }
    Ok(())
}

fn write_trend(out: &mut dyn Write, family: &str, history: &PriceHistory) -> std::io::Result<()> {
    let trend = history.trend();
    writeln!(
        out,
        "{family} in {}: on-demand hosting, USD per instance-hour",
        trend.region
    )?;
    writeln!(
        out,
        "{} Price List version(s) in effect from {} to {}, read\n",
        history.versions.len(),
        trend.since,
        trend.until
    )?;
    if trend.sizes.is_empty() {
        writeln!(out, "no {family} instance type is listed for hosting")?;
        return Ok(());
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut sizes = trend.sizes.clone();
    // Smallest first: by vCPUs, then name.
    sizes.sort_by_key(|a| (a.vcpu, a.key.to_string()));
    let rows: Vec<Vec<String>> = sizes
        .iter()
        .map(|s| {
            let name = match &s.key {
                sagemeter::pricing::PriceKey::Hosting { instance_type, .. } => {
                    instance_type.clone()
                }
                other => other.to_string(),
            };
            // A size no longer listed: its span ends where it was dropped.
            let name = match s.no_longer_listed_on {
                Some(_) => format!("{name} (no longer listed)"),
                None => name,
            };
            vec![
                name,
                dash(s.vcpu.map(|v| v.to_string())),
                dash(s.gpu.map(|g| g.to_string())),
                format!("${}", s.first_usd.normalize()),
                s.first_on.to_string(),
                format!("${}", s.latest_usd.normalize()),
                s.latest_on.to_string(),
                dash(s.yearly_change_percent.map(|p| format!("{p:+.2}%"))),
                // As the JSON gives them: to 10 places, trailing zeros trimmed.
                dash(s.latest_usd_per_vcpu.map(|v| format!("${}", v.normalize()))),
                dash(s.latest_usd_per_gpu.map(|v| format!("${}", v.normalize()))),
            ]
        })
        .collect();
    table(
        out,
        &[
            "instance type",
            "vCPU",
            "GPU",
            "first",
            "on",
            "latest",
            "on",
            "per year",
            "per vCPU-h",
            "per GPU-h",
        ],
        &rows,
    )
}
