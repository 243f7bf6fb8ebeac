//! `sagemeter fleet init|status`: the DynamoDB table a fleet shares.
//!
//! `init` makes the table (on-demand capacity, `pk`/`sk` string keys, TTL on
//! `expires_at`) and waits until it is active; an existing table is kept (one
//! of another key schema is refused, unchanged).
//! `status` lists every scope and period in it: spent, calls, each variant's
//! spend, and for budgets the limit, what is committed to leases, what is left and
//! the alert thresholds passed. With `--json`, one object per line with the same
//! facts (`unpriced_charge_usd` and `unreadable` left out when zero or empty),
//! amounts as exact decimal strings.

use crate::output::{json_line, usd};
use crate::{CliError, GlobalArgs, aws};
use sagemeter::fleet::FleetScopeStatus;
use serde::Serialize;
use std::io::Write;

/// `sagemeter fleet …`.
#[derive(clap::Subcommand, Debug)]
pub enum FleetCommand {
    /// Create the fleet table (kept if it exists).
    Init {
        /// Table name.
        #[arg(long, value_name = "NAME")]
        table: String,
    },
    /// Where every scope and period of the fleet stands.
    Status {
        /// Table name.
        #[arg(long, value_name = "NAME")]
        table: String,
        /// JSON lines: one object per scope and period.
        #[arg(long)]
        json: bool,
        /// Seconds the fleet's clocks may differ by (the processes' --clock-skew):
        /// a lease is called lapsed this long after its end.
        #[arg(long, value_name = "SECS",
              default_value_t = sagemeter::fleet::DEFAULT_CLOCK_SKEW.as_secs(),
              value_parser = clap::value_parser!(u64).range(0..=sagemeter::fleet::MAX_CLOCK_SKEW.as_secs()))]
        clock_skew: u64,
    },
}

#[derive(Serialize)]
struct StatusLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    status: &'a FleetScopeStatus,
}

/// Runs `sagemeter fleet …`.
pub async fn run(
    command: FleetCommand,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let sdk_config = aws::load_with_fallback_region(global).await?;
    match command {
        FleetCommand::Init { table } => {
            let created = sagemeter::fleet::create_table(&sdk_config, &table)
                .await
                .map_err(|e| CliError::Failed(Box::new(e)))?;
            if created {
                writeln!(
                    out,
                    "created fleet table `{table}` (on-demand, TTL on expires_at)"
                )?;
            } else {
                writeln!(
                    out,
                    "fleet table `{table}` already exists; TTL on expires_at"
                )?;
            }
        }
        FleetCommand::Status {
            table,
            json,
            clock_skew,
        } => {
            let skew = std::time::Duration::from_secs(clock_skew);
            let all = sagemeter::fleet::fleet_status_with_clock_skew(&sdk_config, &table, skew)
                .await
                .map_err(|e| CliError::Failed(Box::new(e)))?;
            for status in &all {
                if json {
                    json_line(
                        out,
                        &StatusLine {
                            kind: "scope",
                            status,
                        },
                    )?;
                } else {
                    write_status(out, status)?;
                }
            }
            if all.is_empty() && !json {
                writeln!(out, "fleet table `{table}` holds no spend yet")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// One scope's line. Names in the table (a scope's tag, a variant) were written
/// by any process: control characters in them are written as escapes.
fn write_status(out: &mut dyn Write, s: &FleetScopeStatus) -> std::io::Result<()> {
    use sagemeter::redact::printable;
    let period = match s.period {
        sagemeter::budget::BudgetPeriod::Hour => s.period_start.format("hour %Y-%m-%dT%H"),
        sagemeter::budget::BudgetPeriod::Day => s.period_start.format("day %Y-%m-%d"),
        _ => s.period_start.format("month %Y-%m"),
    };
    write!(
        out,
        "{:<32} {period:<20} spent {:>16} in {:>6} calls",
        printable(&s.scope.to_string()),
        usd(s.spent_usd),
        s.calls
    )?;
    if !s.unpriced_charge_usd.is_zero() {
        // Below zero where lapsed async holds' charges were taken back.
        let sign = if s.unpriced_charge_usd.is_sign_positive() {
            "+"
        } else {
            ""
        };
        write!(
            out,
            " ({sign}{} charged to budgets beyond the receipts)",
            usd(s.unpriced_charge_usd)
        )?;
    }
    if !s.variants.is_empty() {
        let each: Vec<String> = s
            .variants
            .iter()
            .map(|(name, spent)| format!("{} {}", printable(name), usd(*spent)))
            .collect();
        write!(out, "; variants {}", each.join(", "))?;
    }
    // Leases no longer renewed (their process crashed or lost the table) are
    // told apart from live ones: the next process short of room takes them back.
    let lapsed = if s.lapsed_leases == 0 {
        String::new()
    } else {
        format!(
            "; {} lapsed, {} unspent",
            s.lapsed_leases,
            usd(s.lapsed_unspent_usd)
        )
    };
    match (s.limit_usd, s.committed_usd, s.remaining_usd) {
        (Some(limit), Some(committed), Some(remaining)) => write!(
            out,
            "; limit {}, committed {} ({} leases, {} unspent{lapsed}), remaining {}",
            usd(limit),
            usd(committed),
            s.leases,
            usd(s.leased_unspent_usd.unwrap_or_default()),
            usd(remaining)
        )?,
        // Committed with no limit written (spend added without a lease: a call
        // `WhenUnavailable::Allow` let through before any process leased): the
        // committed sum is shown all the same, as `--json` carries it.
        (None, Some(committed), _) => write!(
            out,
            "; no limit, committed {} ({} leases, {} unspent{lapsed})",
            usd(committed),
            s.leases,
            usd(s.leased_unspent_usd.unwrap_or_default()),
        )?,
        _ => {}
    }
    if let Some(over) = s.over_limit_usd {
        // Spend of processes without the budget is not in what is committed: the
        // scope can be past its limit with room left to lease.
        write!(out, "; OVER LIMIT by {}", usd(over))?;
    }
    let percents = |passed: &[u32]| -> String {
        let passed: Vec<String> = passed.iter().map(|p| format!("{p}%")).collect();
        passed.join(", ")
    };
    if s.budget_alerts.len() > 1 {
        // Each budget of the scope alerts on its own limit.
        let each: Vec<String> = s
            .budget_alerts
            .iter()
            .filter(|b| !b.passed.is_empty())
            .map(|b| {
                let mode = match b.mode {
                    sagemeter::budget::BudgetMode::Enforce => "enforced",
                    _ => "alerting",
                };
                format!("{} of {} ({mode})", percents(&b.passed), usd(b.limit_usd))
            })
            .collect();
        write!(out, "; alerts passed {}", each.join(", "))?;
    } else if !s.alerts_passed.is_empty() {
        write!(out, "; alerts passed {}", percents(&s.alerts_passed))?;
    }
    if !s.unreadable.is_empty() {
        // Read as absent: the figures above are too low, never a silent $0.
        write!(
            out,
            "; UNREADABLE {} (not the figures sagemeter writes: read as absent, the figures \
             are too low)",
            printable(&s.unreadable.join(", "))
        )?;
    }
    writeln!(out)
}
