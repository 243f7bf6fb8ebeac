//! `sagemeter price`: one on-demand rate a receipt or an accrual uses (an instance
//! type, a serverless memory size, provisioned concurrency, data processed, ML
//! storage), with where it came from.
//!
//! Prices come from the same chain the library uses
//! ([`sagemeter::pricing::default_price_source`]): the AWS Price
//! List API (its endpoint follows `AWS_ENDPOINT_URL_PRICING` / `AWS_ENDPOINT_URL`),
//! falling back to the snapshot bundled in sagemeter, and saying so.

use crate::output::json_line;
use crate::{CliError, GlobalArgs, aws};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sagemeter::pricing::{
    PriceError, PriceKey, PriceOrigin, PriceSource, PriceUnit, Provenance, Rate,
    default_price_source,
};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// A `YYYY-MM-DD` option value; the error says the format.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date: use YYYY-MM-DD, e.g. 2024-01-01"))
}

/// Look up an on-demand price, its history, or a family's trend.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  sagemeter price ml.g5.xlarge --region eu-west-1
  sagemeter price serverless:3072 --json
  sagemeter price provisioned:2048
  sagemeter price data-in
  sagemeter price ml.c5.2xlarge --history --since 2024-01-01 --chart c5.svg
  sagemeter price --trend ml.g5

The region is --region, else the AWS configuration's, else us-east-1.
--history and --trend read the published versions of the AWS Price List
(pricing:ListPriceLists, pricing:GetPriceListFileUrl) and keep each downloaded
version in the cache directory ($SAGEMETER_CACHE_DIR, else the user's cache
directory + /sagemeter).")]
pub struct PriceArgs {
    /// What to price: a real-time hosting instance type (ml.m5.xlarge), an
    /// asynchronous one (async:ml.m5.xlarge), a serverless memory size in MB
    /// (serverless:3072; 1024 to 6144 in steps of 1024), provisioned concurrency at
    /// one (provisioned:2048, per second provisioned; provisioned-usage:2048, per
    /// second of inference it serves), data processed (data-in, data-out) or hosting
    /// ML storage (storage, per GB-month).
    #[arg(
        value_name = "WHAT",
        value_parser = Target::parse,
        required_unless_present = "trend"
    )]
    pub target: Option<Target>,

    /// The rate in each published Price List version where it changed: date, rate,
    /// change from the previous one, SKU.
    #[arg(long, conflicts_with = "trend", help_heading = "History")]
    pub history: bool,

    /// Per instance size of a family (ml.g5): first and latest rate, yearly rate of
    /// change, per vCPU and per GPU.
    #[arg(
        long,
        value_name = "FAMILY",
        conflicts_with = "target",
        help_heading = "History"
    )]
    pub trend: Option<String>,

    /// The first date of the history (default: three years before --until).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, help_heading = "History")]
    pub since: Option<NaiveDate>,

    /// The last date of the history (default: today, UTC; not after today).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, help_heading = "History")]
    pub until: Option<NaiveDate>,

    /// Draw the rate over time to FILE (.svg or .png; needs the `charts` feature).
    #[arg(long, value_name = "FILE", help_heading = "History")]
    pub chart: Option<PathBuf>,

    /// Give up on versions not read within this many seconds (listing included;
    /// 1 to 86400, default 300).
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        allow_negative_numbers = true,
        help_heading = "History"
    )]
    pub time_limit: Option<u64>,

    /// Machine-readable output: one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What `price` was asked for: one of the rates a receipt or an accrual uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Real-time hosting, per instance-hour: `ml.m5.xlarge`.
    Instance(String),
    /// Asynchronous inference, per instance-hour: `async:ml.m5.xlarge`.
    AsyncInstance(String),
    /// Serverless inference, per second at a memory size: `serverless:3072`.
    Serverless {
        /// Memory in GB (1 to 6).
        memory_gb: u32,
    },
    /// Serverless provisioned concurrency, per second provisioned (the standing
    /// charge): `provisioned:2048`.
    Provisioned {
        /// Memory in GB (1 to 6).
        memory_gb: u32,
    },
    /// Inference duration of calls served by provisioned concurrency, per second:
    /// `provisioned-usage:2048`.
    ProvisionedUsage {
        /// Memory in GB (1 to 6).
        memory_gb: u32,
    },
    /// Data processed in, per GB: `data-in`.
    DataIn,
    /// Data processed out, per GB: `data-out`.
    DataOut,
    /// Hosting ML storage, per GB-month: `storage`.
    Storage,
}

/// What `price` names, for its messages.
const TARGETS: &str = "an instance type (ml.m5.xlarge), async:<INSTANCE_TYPE>, serverless:<MB>, \
                       provisioned:<MB>, provisioned-usage:<MB>, data-in, data-out or storage";

/// A serverless memory size in MB as whole GB: 1024 to 6144 in steps of 1024.
fn memory_gb(mb: &str, prefix: &str) -> Result<u32, String> {
    let memory_mb: u32 = mb
        .parse()
        .map_err(|_| format!("`{mb}` is not a memory size in MB (e.g. {prefix}:3072)"))?;
    if !(1024..=6144).contains(&memory_mb) || !memory_mb.is_multiple_of(1024) {
        return Err(format!(
            "serverless memory must be 1024, 2048, 3072, 4096, 5120 or 6144 MB (a whole \
             number of GB from 1 to 6), got {memory_mb}"
        ));
    }
    Ok(memory_mb / 1024)
}

/// `ml.<family>.<size>`, as SageMaker names instance types.
fn instance_type(text: &str) -> Option<String> {
    let well_formed = text.starts_with("ml.")
        && text.len() > 3
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    well_formed.then(|| text.to_owned())
}

impl Target {
    fn parse(text: &str) -> Result<Target, String> {
        match text {
            "data-in" => return Ok(Target::DataIn),
            "data-out" => return Ok(Target::DataOut),
            "storage" => return Ok(Target::Storage),
            _ => {}
        }
        if let Some((prefix, rest)) = text.split_once(':') {
            return match prefix {
                "serverless" => Ok(Target::Serverless {
                    memory_gb: memory_gb(rest, prefix)?,
                }),
                "provisioned" => Ok(Target::Provisioned {
                    memory_gb: memory_gb(rest, prefix)?,
                }),
                "provisioned-usage" => Ok(Target::ProvisionedUsage {
                    memory_gb: memory_gb(rest, prefix)?,
                }),
                "async" => instance_type(rest).map(Target::AsyncInstance).ok_or_else(|| {
                    format!("`{rest}` is not an instance type (ml.<family>.<size>, e.g. async:ml.m5.xlarge)")
                }),
                _ => Err(format!("`{text}` is none of {TARGETS}")),
            };
        }
        instance_type(text)
            .map(Target::Instance)
            .ok_or_else(|| format!("`{text}` is none of {TARGETS}"))
    }

    pub(crate) fn key(&self, region: &str) -> PriceKey {
        let region = region.to_owned();
        match self {
            Target::Instance(instance_type) => PriceKey::hosting(region, instance_type.clone()),
            Target::AsyncInstance(instance_type) => PriceKey::AsyncInference {
                region,
                instance_type: instance_type.clone(),
            },
            Target::Serverless { memory_gb } => PriceKey::serverless(region, *memory_gb),
            Target::Provisioned { memory_gb } => PriceKey::ProvisionedConcurrency {
                region,
                memory_gb: *memory_gb,
            },
            Target::ProvisionedUsage { memory_gb } => PriceKey::ProvisionedConcurrencyUsage {
                region,
                memory_gb: *memory_gb,
            },
            Target::DataIn => PriceKey::DataIn { region },
            Target::DataOut => PriceKey::DataOut { region },
            Target::Storage => PriceKey::storage(region),
        }
    }
}

/// The `--json` object.
#[derive(Debug, Serialize)]
struct PriceOutput<'a> {
    /// What was priced (`kind`, `region`, `instance_type` or `memory_gb`).
    key: &'a PriceKey,
    /// USD per `unit`, an exact decimal string.
    usd_per_unit: Decimal,
    unit: PriceUnit,
    currency: &'static str,
    /// `live`, `cache`, `snapshot` or `override`.
    source: PriceOrigin,
    sku: Option<&'a str>,
    /// The on-demand term's `effectiveDate` (live or cached Price List answers);
    /// `null` for a snapshot, which has no term: see `as_of`.
    effective_date: Option<&'a str>,
    /// For a snapshot rate: the date its public source was observed, not an AWS
    /// effective date; `null` otherwise.
    as_of: Option<&'a str>,
    fetched_at: Option<DateTime<Utc>>,
    /// Why this source answered, when it is a fallback.
    note: Option<&'a str>,
}

/// Runs `sagemeter price`.
pub async fn run(
    args: PriceArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // The flags are checked before the AWS config is loaded: an invalid argument
    // is said as such whatever the environment (a missing profile, no region).
    let history_asked = args.history || args.trend.is_some();
    let history_only = args.since.is_some()
        || args.until.is_some()
        || args.chart.is_some()
        || args.time_limit.is_some();
    if !history_asked && history_only {
        return Err(CliError::Usage(
            "--since, --until, --chart and --time-limit go with --history or --trend".into(),
        ));
    }
    if !history_asked && args.target.is_none() {
        return Err(CliError::Usage(format!("name what to price: {TARGETS}")));
    }
    let sdk_config = aws::load_with_fallback_region(global).await?;
    let region = aws::region(&sdk_config);
    if history_asked {
        return crate::price_history::run(&args, &sdk_config, &region, out).await;
    }
    let Some(target) = &args.target else {
        return Err(CliError::Usage(format!("name what to price: {TARGETS}")));
    };
    let key = target.key(&region);
    let prices = default_price_source(&sdk_config);
    let rate = prices.price(&key).await.map_err(|e| no_price(&key, &e))?;

    if args.json {
        let p = &rate.provenance;
        let (effective_date, as_of) = dates(p);
        json_line(
            out,
            &PriceOutput {
                key: &rate.key,
                usd_per_unit: rate.usd_per_unit,
                unit: rate.unit,
                currency: "USD",
                source: p.source,
                sku: p.sku.as_deref(),
                effective_date,
                as_of,
                fetched_at: p.fetched_at,
                note: p.note.as_deref(),
            },
        )?;
    } else {
        write_text(out, &rate)?;
    }
    out.flush()?;
    Ok(())
}

fn no_price(key: &PriceKey, error: &PriceError) -> CliError {
    CliError::failed(match error {
        PriceError::NotFound { .. } => format!(
            "no on-demand price for {key}: neither the AWS Price List nor sagemeter's bundled \
             snapshot has one; check {}the region{}",
            match key {
                PriceKey::Hosting { .. } | PriceKey::AsyncInference { .. } => {
                    "the instance type and "
                }
                _ => "",
            },
            sagemeter::pricing::unknown_region_hint(key.region())
                .map_or_else(String::new, |hint| format!(" ({hint})"))
        ),
        other => format!("no price for {key}: {other}"),
    })
}

/// `(effective date, as of)`: the library carries a snapshot's `as_of` date where a
/// Price List answer has its term's `effectiveDate`; they are not the same thing (a
/// price observed on a day may have taken effect long before), so they are shown
/// apart.
fn dates(p: &Provenance) -> (Option<&str>, Option<&str>) {
    match p.source {
        PriceOrigin::Snapshot => (None, p.effective_date.as_deref()),
        _ => (p.effective_date.as_deref(), None),
    }
}

fn write_text(out: &mut dyn Write, rate: &Rate) -> std::io::Result<()> {
    let p = &rate.provenance;
    let unit = match rate.unit {
        PriceUnit::Hour => "instance-hour",
        PriceUnit::Second => "second",
        PriceUnit::Gigabyte => "GB",
        PriceUnit::GigabyteMonth => "GB-month",
        _ => "unit",
    };
    let source = match p.source {
        PriceOrigin::Live => "live (AWS Price List API, just now)",
        PriceOrigin::Cache => "cache (an earlier AWS Price List answer)",
        PriceOrigin::Snapshot => "snapshot (bundled with sagemeter, NOT live)",
        PriceOrigin::Override => "override",
        _ => "other",
    };
    let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    writeln!(out, "{}", rate.key)?;
    writeln!(
        out,
        "  price       ${} USD per {unit}",
        rate.usd_per_unit.normalize()
    )?;
    writeln!(out, "  source      {source}")?;
    // What a price source answered: no control character reaches the terminal.
    let printable = sagemeter::redact::printable;
    writeln!(out, "  SKU         {}", printable(&dash(p.sku.as_deref())))?;
    match dates(p) {
        (_, Some(as_of)) => writeln!(
            out,
            "  as of       {} (the snapshot's date, not an AWS effective date)",
            printable(as_of)
        )?,
        (effective, None) => writeln!(out, "  effective   {}", printable(&dash(effective)))?,
    }
    writeln!(
        out,
        "  fetched at  {}",
        dash(p.fetched_at.map(|t| t.to_rfc3339()).as_deref())
    )?;
    if let Some(note) = &p.note {
        writeln!(out, "  note        {}", printable(note))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types_and_serverless_sizes_are_parsed() {
        assert_eq!(
            Target::parse("ml.m5.xlarge"),
            Ok(Target::Instance("ml.m5.xlarge".into()))
        );
        // 3072 MB = 3 GB.
        assert_eq!(
            Target::parse("serverless:3072"),
            Ok(Target::Serverless { memory_gb: 3 })
        );
        assert_eq!(
            Target::parse("serverless:6144"),
            Ok(Target::Serverless { memory_gb: 6 })
        );
    }

    #[test]
    fn sizes_that_are_not_whole_gigabytes_from_1_to_6_are_rejected() {
        for bad in [
            "serverless:0",
            "serverless:1000",
            "serverless:7168",
            "serverless:3gb",
            "serverless:",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_instance_types_are_rejected() {
        for bad in ["m5.xlarge", "ml.", "", "ml.m5 xlarge"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_carry_the_region() {
        assert_eq!(
            Target::Serverless { memory_gb: 3 }.key("eu-west-1"),
            PriceKey::serverless("eu-west-1", 3)
        );
    }

    #[test]
    fn every_rate_a_receipt_uses_can_be_named() {
        let key = |text: &str| Target::parse(text).map(|t| t.key("us-east-1"));
        let region = || "us-east-1".to_owned();
        assert_eq!(
            key("async:ml.g5.xlarge"),
            Ok(PriceKey::AsyncInference {
                region: region(),
                instance_type: "ml.g5.xlarge".into()
            })
        );
        assert_eq!(
            key("provisioned:2048"),
            Ok(PriceKey::ProvisionedConcurrency {
                region: region(),
                memory_gb: 2
            })
        );
        assert_eq!(
            key("provisioned-usage:6144"),
            Ok(PriceKey::ProvisionedConcurrencyUsage {
                region: region(),
                memory_gb: 6
            })
        );
        assert_eq!(key("data-in"), Ok(PriceKey::DataIn { region: region() }));
        assert_eq!(key("data-out"), Ok(PriceKey::DataOut { region: region() }));
        assert_eq!(key("storage"), Ok(PriceKey::storage("us-east-1")));
        for bad in ["async:m5.xlarge", "provisioned:1000", "gpu:ml.g5", "data"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
