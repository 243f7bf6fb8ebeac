//! `sagemeter reconcile`: what ledgers metered against what Cost Explorer billed,
//! day by day, the difference explained. The figures are `sagemeter::account`'s.

use crate::output::{self, table, usd4};
use crate::{CliError, GlobalArgs, aws};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use sagemeter::account::{Account, GroupBy, Metered, ReconcileOptions, Reconciliation};
use std::io::Write;
use std::path::PathBuf;

/// Compare ledgers with the bill (Cost Explorer), day by day.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Days are UTC; --until is the day after the last, as in Cost Explorer. Without --since and \
--until, the ledgers' first and last days (from no earlier than Cost Explorer keeps, 13 months; \
to today at the latest: receipts dated later are left out).
Billed is Cost Explorer's AmortizedCost (usage a Savings Plan or reservation covers at its \
effective rate). The difference is explained in parts: idle instance time, calls outside \
sagemeter, storage and standing charges, discounts, other SageMaker charges; what is left is \
unexplained. A day is judged by the sum of its rows' |unexplained|: errors do not cancel.
A rolling ledger's files may be named in any order (e.g. a glob): they are read oldest first.
One region is reconciled (--region, else the configured one): receipts of other regions are left \
out, counted in a note; receipts without a region (older ones) are taken as its. Ledgers with no \
receipt naming it, only other regions' (and perhaps older ones), are refused.
The bill is the caller's account's (sts:GetCallerIdentity), or --account's: from a management \
account, name the member account the ledgers are of.
IAM: ce:GetCostAndUsage, pricing:GetProducts, sts:GetCallerIdentity without --account (allowed to \
every caller); sagemaker:DescribeEndpoint and sagemaker:ListTags with --group-by tag:KEY.")]
pub struct ReconcileArgs {
    /// Ledger files (JSON Lines, or Parquet with the `parquet` feature), or
    /// directories of them, from any number of processes.
    #[arg(required = true, value_name = "LEDGER")]
    pub ledgers: Vec<PathBuf>,
    /// First UTC day, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::price::parse_date)]
    pub since: Option<NaiveDate>,
    /// The day after the last, YYYY-MM-DD (excluded).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::price::parse_date)]
    pub until: Option<NaiveDate>,
    /// Rows per usage type, or per value of an endpoint cost allocation tag.
    #[arg(long, default_value = "usage-type", value_name = "usage-type|tag:KEY", value_parser = parse_group_by)]
    pub group_by: GroupBy,
    /// A day agrees (or is explained) within this many USD.
    #[arg(
        long,
        default_value = "0.01",
        value_name = "USD",
        allow_negative_numbers = true
    )]
    pub tolerance: Decimal,
    /// The account whose bill is reconciled (12 digits; default: the caller's).
    /// From a management account, Cost Explorer answers for every member
    /// account: name the one the ledgers are of.
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account)]
    pub account: Option<String>,
    /// One JSON document, money as exact decimal strings.
    #[arg(long)]
    pub json: bool,
}

/// `--account`: an AWS account id, twelve digits.
fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not an AWS account id (twelve digits, e.g. 123456789012)",
            sagemeter::redact::printable(text)
        ))
    }
}

fn parse_group_by(text: &str) -> Result<GroupBy, String> {
    text.parse()
}

/// Runs `sagemeter reconcile`.
pub async fn run(
    args: ReconcileArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // `Account::reconcile` refuses one too (an invalid option); here it is the
    // flag's usage error, said before the ledgers are read.
    if args.tolerance < Decimal::ZERO {
        return Err(CliError::Usage(format!(
            "--tolerance {} is negative",
            args.tolerance
        )));
    }
    let sdk_config = aws::load_with_fallback_region(global).await?;
    let account = Account::new(&sdk_config);
    let mut metered = Metered::new(account.region());
    let files = ledger_files(&args.ledgers)?;
    // Files named one by one (a shell glob) come in name order, not a rolling
    // ledger's: `read_ledgers` puts each rolling ledger's files oldest first.
    metered
        .read_ledgers(&files)
        .map_err(|e| CliError::Failed(Box::new(e)))?;
    // Receipts of other regions are left out (and said in a note); ledgers that
    // hold none of this region's are of another region's bill. Receipts without
    // a region are taken as this region's, but not when they are all that is
    // kept and the regions named are others: they may be those regions' calls.
    if metered.receipts() == metered.without_region() && !metered.left_out().is_empty() {
        return Err(CliError::failed(other_regions_only(&metered)));
    }
    let (since, until) = days(&args, metered.days(), Utc::now().date_naive())?;
    let mut options = ReconcileOptions::new(since, until)
        .group_by(args.group_by)
        .tolerance_usd(args.tolerance);
    if let Some(account) = args.account {
        options = options.account(account);
    }
    let reconciliation = account
        .reconcile(&metered, &options)
        .await
        .map_err(|e| match e {
            // Checked before Cost Explorer is asked: the dates cannot work.
            sagemeter::account::AccountError::DateRange(message) => CliError::Usage(message),
            other => crate::endpoints::account_failure(other),
        })?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &reconciliation).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    render(&reconciliation, metered.ledgers_read(), out)?;
    Ok(())
}

/// Why ledgers holding only other regions' receipts (and receipts without a
/// region) are not reconciled, and the `--region` that would reconcile them.
fn other_regions_only(metered: &Metered) -> String {
    let regions: Vec<String> = metered
        .left_out()
        .iter()
        .map(|(region, n)| format!("{region} ({n})"))
        .collect();
    let hint: Vec<String> = metered
        .left_out()
        .keys()
        .map(|region| format!("--region {region}"))
        .collect();
    let without_region = match metered.without_region() {
        0 => String::new(),
        1 => format!(
            ", and 1 carries no region (written before receipts did): it would be taken as \
             {}'s, though nothing says it is",
            metered.region()
        ),
        n => format!(
            ", and {n} carry no region (written before receipts did): they would be taken as \
             {}'s, though nothing says they are",
            metered.region()
        ),
    };
    format!(
        "the ledgers' receipts were priced in {}, none in {}, the region reconciled{without_region}: \
         use {}",
        regions.join(", "),
        metered.region(),
        hint.join(" or ")
    )
}

/// The days to reconcile: `--since` and `--until`, or else the ledgers' first day
/// (no earlier than Cost Explorer keeps, said on stderr) and the day after their
/// last, today at the latest (a receipt dated later, by a writer's clock ahead,
/// is left out, said on stderr). A day the user did not give is never named as a
/// flag in an error.
fn days(
    args: &ReconcileArgs,
    ledger_days: Option<(NaiveDate, NaiveDate)>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), CliError> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        return Ok((since, until));
    }
    let Some((first, last)) = ledger_days else {
        return Err(CliError::Usage(
            "the ledgers hold no receipts, so they give no days to compare: name them with \
             --since and --until (the bill of those days then shows as outside sagemeter)"
                .into(),
        ));
    };
    // Cost Explorer has costs up to today: a later day is refused as in the
    // future, and no receipt of it can be compared yet.
    let tomorrow = today.succ_opt().unwrap_or(today);
    let after_last = last.succ_opt().unwrap_or(last);
    let (until, ahead) = match args.until {
        Some(until) => (until, false),
        None if after_last > tomorrow => (tomorrow, true),
        None => (after_last, false),
    };
    let since = match args.since {
        Some(since) if since >= until && ahead => {
            return Err(CliError::Usage(format!(
                "--since {since} is after today ({today}, UTC): Cost Explorer has costs up to \
                 today"
            )));
        }
        Some(since) if since >= until => {
            return Err(CliError::Usage(format!(
                "--since {since} is after the ledgers' last day, {last}: add --until"
            )));
        }
        Some(since) => since,
        None => {
            let earliest = ReconcileOptions::earliest_since(today);
            if last < earliest {
                return Err(CliError::Usage(format!(
                    "the ledgers' receipts ({first} to {last}) are all older than Cost Explorer \
                     keeps: daily costs go back 13 months, to {earliest}"
                )));
            }
            if first < earliest {
                output::eprint(&format!(
                    "reconcile: the ledgers start on {first}, but Cost Explorer keeps daily costs \
                     for 13 months: from {earliest} on"
                ));
            }
            if ahead && first > today {
                return Err(CliError::Usage(format!(
                    "the ledgers' receipts ({first} to {last}) are all dated after today \
                     ({today}, UTC): Cost Explorer has no costs of those days yet (is the \
                     clock of the process that wrote them ahead?)"
                )));
            }
            let since = first.max(earliest);
            if since >= until {
                return Err(CliError::Usage(format!(
                    "--until {until} is not after the ledgers' first day in Cost Explorer's \
                     reach, {since} (--until is the day after the last, as in Cost Explorer)"
                )));
            }
            since
        }
    };
    if ahead {
        output::eprint(&format!(
            "reconcile: the ledgers hold receipts up to {last}, after today ({today}, UTC): \
             Cost Explorer has no costs of those days yet, so the receipts dated after today \
             are left out (is the clock of the process that wrote them ahead?)"
        ));
    }
    Ok((since, until))
}

/// The files named, and the ledger files of the directories named (JSON Lines and
/// Parquet).
fn ledger_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(
            sagemeter::ledger::any_ledger_files(path).map_err(|e| CliError::Failed(Box::new(e)))?,
        );
    }
    Ok(files)
}

/// The reconciliation as tables, headed by the receipts compared (of its days)
/// and the ledgers read (a rolling ledger's directory once, a file named twice
/// once).
fn render(r: &Reconciliation, ledgers: usize, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {} from {ledgers} {} against Cost Explorer ({}), Amazon SageMaker in {} of {}, {} \
         to {} (UTC days, the last excluded), by {}",
        r.receipts,
        if r.receipts == 1 {
            "receipt"
        } else {
            "receipts"
        },
        if ledgers == 1 { "ledger" } else { "ledgers" },
        r.billed_metric,
        r.region,
        r.account.as_deref().map_or_else(
            || "the caller's account".to_owned(),
            |a| format!("account {a}")
        ),
        r.since,
        r.until,
        r.group_by
    )?;
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            let p = &row.parts;
            vec![
                row.day.to_string(),
                row.group.clone(),
                usd4(row.billed_usd),
                usd4(row.metered_usd),
                usd4(row.difference_usd),
                usd4(p.idle_instance_usd),
                usd4(p.outside_usd),
                usd4(p.standing_usd),
                usd4(p.discount_usd),
                usd4(p.other_usd),
                usd4(p.unexplained_usd),
            ]
        })
        .collect();
    table(
        out,
        &[
            "DAY",
            "GROUP",
            "BILLED",
            "METERED",
            "DIFFERENCE",
            "IDLE",
            "OUTSIDE",
            "STANDING",
            "DISCOUNT",
            "OTHER",
            "UNEXPLAINED",
        ],
        &rows,
    )?;
    writeln!(out)?;
    let days: Vec<Vec<String>> = r
        .days
        .iter()
        .map(|d| {
            vec![
                d.day.to_string(),
                usd4(d.billed_usd),
                usd4(d.metered_usd),
                usd4(d.difference_usd),
                usd4(d.unexplained_gross_usd),
                d.verdict.as_str().to_owned(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "DAY",
            "BILLED",
            "METERED",
            "DIFFERENCE",
            "Σ|UNEXPLAINED|",
            "VERDICT",
        ],
        &days,
    )?;
    writeln!(out, "tolerance {} a day", usd4(r.tolerance_usd))?;
    for note in &r.notes {
        // Notes name endpoints and tag values read from the ledgers.
        writeln!(out, "note: {}", sagemeter::redact::printable(note))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: Option<&str>, until: Option<&str>) -> ReconcileArgs {
        ReconcileArgs {
            ledgers: vec![PathBuf::from("spend.jsonl")],
            since: since.map(|d| d.parse().unwrap()),
            until: until.map(|d| d.parse().unwrap()),
            group_by: GroupBy::UsageType,
            tolerance: Decimal::new(1, 2),
            account: None,
            json: false,
        }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn usage(result: Result<(NaiveDate, NaiveDate), CliError>) -> String {
        match result {
            Err(CliError::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn the_ledgers_days_are_reconciled_from_no_earlier_than_cost_explorer_keeps() {
        let today = day("2026-12-04");
        let ledgers = Some((day("2026-11-30"), day("2026-12-02")));
        // The ledgers' first day to the day after their last.
        assert_eq!(
            days(&args(None, None), ledgers, today).unwrap(),
            (day("2026-11-30"), day("2026-12-03"))
        );
        // A ledger begun 14 months ago: from 13 months back (2025-11-04) on, not
        // refused for a --since the user never gave.
        let old = Some((day("2025-10-01"), day("2026-12-02")));
        assert_eq!(
            days(&args(None, None), old, today).unwrap(),
            (day("2025-11-04"), day("2026-12-03"))
        );
        // Dates given are the user's, checked by the library.
        assert_eq!(
            days(&args(Some("2020-01-01"), Some("2020-01-02")), None, today).unwrap(),
            (day("2020-01-01"), day("2020-01-02"))
        );
    }

    #[test]
    fn receipts_dated_after_today_end_the_days_at_today_not_at_an_until_refused_as_future() {
        // Today 2026-12-04 (UTC); the last receipt 2026-12-05T00:00:30Z, its
        // writer's clock ahead. The day after it, 2026-12-06, would be refused as
        // in the future (Cost Explorer has costs up to today): the days end with
        // today, --until 2026-12-05.
        let today = day("2026-12-04");
        let ahead = Some((day("2026-11-30"), day("2026-12-05")));
        assert_eq!(
            days(&args(None, None), ahead, today).unwrap(),
            (day("2026-11-30"), day("2026-12-05"))
        );
        assert_eq!(
            days(&args(Some("2026-12-01"), None), ahead, today).unwrap(),
            (day("2026-12-01"), day("2026-12-05"))
        );
        // A last receipt of today itself: the day after it, as before.
        let to_today = Some((day("2026-11-30"), day("2026-12-04")));
        assert_eq!(
            days(&args(None, None), to_today, today).unwrap(),
            (day("2026-11-30"), day("2026-12-05"))
        );
        // Every receipt after today: nothing Cost Explorer can answer, said
        // without a flag the user did not give.
        let all_ahead = Some((day("2026-12-05"), day("2026-12-06")));
        let message = usage(days(&args(None, None), all_ahead, today));
        assert!(
            message.contains("all dated after today") && !message.contains("--"),
            "{message}"
        );
        // A --since after today: said as the user's, not as the ledgers' last day.
        let message = usage(days(&args(Some("2026-12-05"), None), ahead, today));
        assert!(
            message.contains("--since 2026-12-05 is after today") && !message.contains("--until"),
            "{message}"
        );
    }

    #[test]
    fn days_the_ledgers_cannot_give_are_refused_naming_only_the_flags_given() {
        let today = day("2026-12-04");
        let message = usage(days(&args(None, None), None, today));
        assert!(message.contains("hold no receipts"), "{message}");
        let all_old = Some((day("2025-01-01"), day("2025-02-01")));
        let message = usage(days(&args(None, None), all_old, today));
        assert!(
            message.contains("older than Cost Explorer keeps") && !message.contains("--since"),
            "{message}"
        );
        let ledgers = Some((day("2026-11-30"), day("2026-12-02")));
        let message = usage(days(&args(None, Some("2026-11-30")), ledgers, today));
        assert!(
            message.contains("--until 2026-11-30") && !message.contains("--since"),
            "{message}"
        );
        let message = usage(days(&args(Some("2026-12-03"), None), ledgers, today));
        assert!(
            message.contains("--since 2026-12-03") && !message.contains("--until 2026"),
            "{message}"
        );
    }
}
