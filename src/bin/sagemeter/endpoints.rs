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
Flags: idle (burning, no invocation in the window; asynchronous endpoints have no \
Invocations metric and are never idle), underused (utilisation = model \
time ÷ instance time below --underused-below), unpriced (the reason is shown).
Endpoints hosting inference components get a row per component (its copies' reserved \
share of the variant's burn; not added to the totals).
A shadow variant's row is flagged shadow: its instances are billed as a production \
variant's and are in the totals.
An endpoint mid blue/green deployment gets a row for the new fleet after its variant's, \
flagged deploying: its instances up so far are billed on top of the old fleet's and are in \
the totals; its calls are counted on its variant's row.
IAM: sagemaker:ListEndpoints, sagemaker:DescribeEndpoint, sagemaker:DescribeEndpointConfig, \
cloudwatch:GetMetricData, pricing:GetProducts (and sagemaker:ListInferenceComponents, \
sagemaker:DescribeInferenceComponent for endpoints hosting components).")]
pub struct EndpointsArgs {
    /// How far back invocations are counted: 24h, 7d, 30d (1h to 90d).
    #[arg(long, default_value = "24h", value_parser = parse_window)]
    pub window: Window,
    /// Flag instance variants whose utilisation is below this percentage (10%; a
    /// bare fraction such as 0.3 is refused as ambiguous).
    #[arg(long, default_value = "10%", value_name = "PERCENT", value_parser = parse_percent,
          allow_hyphen_values = true)]
    pub underused_below: Decimal,
    /// One JSON document: the region, window and time, the rows (one object per
    /// variant), the totals and any warnings; money as exact decimal strings.
    #[arg(long)]
    pub json: bool,
}

fn parse_window(text: &str) -> Result<Window, String> {
    text.parse()
}

fn parse_percent(text: &str) -> Result<Decimal, String> {
    let (number, sign) = match text.strip_suffix('%') {
        Some(number) => (number, true),
        None => (text, false),
    };
    match number.parse::<Decimal>() {
        // `0.3` could be 0.3 % or, as compare's --discount reads it, 30 %.
        Ok(p) if !sign && p > Decimal::ZERO && p < Decimal::ONE => Err(format!(
            "`{text}` is ambiguous: write the percentage with its sign, {}% or {}%",
            p.normalize(),
            (p * Decimal::ONE_HUNDRED).normalize()
        )),
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
    let sdk_config = aws::load_with_fallback_region(global).await?;
    let account = Account::new(&sdk_config);
    let options = EndpointsOptions::new(args.window).underused_below(args.underused_below);
    let view = account.endpoints(&options).await.map_err(account_failure)?;
    for warning in &view.warnings {
        crate::output::eprint(&format!("warning: {warning}"));
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &view).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    render(&view, out)?;
    Ok(())
}

/// An account error as a failure. An AWS refusal is its own line (the operation,
/// the IAM action to grant, what the service said without the caller's identity),
/// not its source's chain: the SDK error repeats the service's message whole.
pub fn account_failure(error: sagemeter::account::AccountError) -> CliError {
    use sagemeter::account::AccountError;
    match error {
        AccountError::MissingPermission { .. } | AccountError::Service { .. } => {
            CliError::failed(error.to_string())
        }
        other => CliError::Failed(Box::new(other)),
    }
}

fn render(view: &EndpointsView, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} endpoints in {}; invocations over the last {} (CloudWatch)",
        view.totals.endpoints, view.region, view.window
    )?;
    let dash = || "-".to_owned();
    // A COMPONENT column only when some endpoint hosts inference components.
    let components = view.rows.iter().any(|r| r.inference_component.is_some());
    let rows: Vec<Vec<String>> = view
        .rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.endpoint.clone(), r.variant.clone().unwrap_or_else(dash)];
            if components {
                cells.push(r.inference_component.clone().unwrap_or_else(dash));
            }
            cells.extend([
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
            ]);
            cells
        })
        .collect();
    let mut header = vec!["ENDPOINT", "VARIANT"];
    if components {
        header.push("COMPONENT");
    }
    header.extend([
        "STATUS",
        "DEPLOYMENT",
        "$/HOUR",
        "INVOCATIONS",
        "WINDOW COST",
        "$/1K CALLS",
        "UTILISATION",
        "PRICES",
        "FLAGS",
    ]);
    table(out, &header, &rows)?;
    let t = &view.totals;
    writeln!(
        out,
        "total: {}/hour, {}/month (730 h); idle: {}/hour, {}/month; over the window: {} \
         (no data processed: CloudWatch counts no bytes)",
        usd4(t.usd_per_hour),
        usd4(t.usd_per_month),
        usd4(t.idle_usd_per_hour),
        usd4(t.idle_usd_per_month),
        usd4(t.window_cost_usd),
    )?;
    let variants = |n: usize| match n {
        1 => "1 variant".to_owned(),
        n => format!("{n} variants"),
    };
    if t.unpriced > 0 {
        writeln!(out, "{} unpriced, not in the totals", variants(t.unpriced))?;
    }
    if t.window_unpriced > 0 {
        writeln!(
            out,
            "{} whose window cost is not known (scaled to zero now after calls in the \
             window or with its calls not known, asynchronous at zero, serverless with its \
             calls' compute not known from CloudWatch, or deleting, out of service or \
             failed after serving, billed earlier for a time not known): not in the \
             window's total (see the rows' notes)",
            variants(t.window_unpriced)
        )?;
    }
    // Names and reasons come from AWS's answers: no control character reaches the
    // terminal.
    let printable = sagemeter::redact::printable;
    for note in &view.notes {
        writeln!(out, "{}", printable(note))?;
    }
    if components {
        writeln!(
            out,
            "a component's $/hour is its copies' reserved share of its variant's (in the \
             variant's, not added to the totals)"
        )?;
    }
    // Every row's notes, one line a row: what an estimate rests on, what is left
    // out, why a figure is missing.
    for r in view.rows.iter().filter(|r| !r.notes.is_empty()) {
        let line = format!("{}: {}", label(r), r.notes.join("; "));
        writeln!(out, "{}", printable(&line))?;
    }
    for r in &view.rows {
        if let Some(reason) = &r.unpriced_reason {
            let reason = crate::output::for_cli(reason);
            let line = match &r.inference_component {
                Some(component) => format!("unpriced {}/{component}: {reason}", r.endpoint),
                None => format!("unpriced {}: {reason}", r.endpoint),
            };
            writeln!(out, "{}", printable(&line))?;
        }
    }
    Ok(())
}

/// `endpoint/variant`, `/component` on a component's row, ` (new fleet)` on a
/// deployment's new fleet (which carries its variant's name).
fn label(r: &EndpointRow) -> String {
    let mut label = format!("{}/{}", r.endpoint, r.variant.as_deref().unwrap_or("-"));
    if let Some(component) = &r.inference_component {
        label.push('/');
        label.push_str(component);
    }
    if r.deploying {
        label.push_str(" (new fleet)");
    }
    label
}

fn deployment(r: &EndpointRow) -> String {
    if let (Some(copies), Some(t), Some(n)) = (r.copies, &r.instance_type, r.instance_count) {
        let share = r.reserved_share.map_or_else(
            || "share unknown".to_owned(),
            |s| format!("{}%", (s * Decimal::ONE_HUNDRED).round_dp(2).normalize()),
        );
        let plural = if copies == 1 { "copy" } else { "copies" };
        return format!("{copies} {plural}, {share} of {n} × {t}");
    }
    match (&r.instance_type, r.instance_count, r.memory_mb) {
        (Some(t), Some(n), _) => format!("{n} × {t}"),
        (_, _, Some(mb)) => match r.provisioned_concurrency {
            Some(pc) => format!("serverless {mb} MB, PC {pc}"),
            None => format!("serverless {mb} MB"),
        },
        _ => "-".into(),
    }
}

/// The row's flags; `deploying` first on a deployment's new fleet, the one thing
/// telling its row from its variant's, whose name it carries; then `shadow` on a
/// shadow variant, whose name is the user's and says nothing of what it is.
fn flags(r: &EndpointRow) -> String {
    let deploying = r.deploying.then_some("deploying");
    let shadow = r.shadow.then_some("shadow");
    let words: Vec<&str> = deploying
        .into_iter()
        .chain(shadow)
        .chain(r.flags.iter().map(|f| f.as_str()))
        .collect();
    words.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_is_a_percentage_and_a_bare_fraction_is_refused_as_ambiguous() {
        let pct = |s: &str| parse_percent(s).map(|d| d.normalize().to_string());
        assert_eq!(pct("10%").as_deref(), Ok("0.1"));
        assert_eq!(pct("10").as_deref(), Ok("0.1"));
        assert_eq!(pct("0.3%").as_deref(), Ok("0.003"));
        assert_eq!(pct("0").as_deref(), Ok("0"));
        assert_eq!(
            pct("0.3"),
            Err("`0.3` is ambiguous: write the percentage with its sign, 0.3% or 30%".into())
        );
        assert!(pct("101%").is_err() && pct("-1%").is_err() && pct("ten").is_err());
    }

    #[test]
    fn an_account_refusal_is_printed_as_its_own_line_not_its_sdk_sources() {
        use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageError;
        use aws_smithy_runtime_api::client::result::SdkError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::error::ErrorMetadata;
        // What the SDK error's chain prints: the service's message whole.
        let said = "User: arn:aws:sts::123456789012:assumed-role/FinOps/alice is not \
                    authorized to perform: ce:GetCostAndUsage";
        let sdk = SdkError::service_error(
            GetCostAndUsageError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message(said)
                    .build(),
            ),
            Response::new(
                StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            ),
        );
        let error = sagemeter::account::AccountError::MissingPermission {
            action: "ce:GetCostAndUsage",
            operation: "GetCostAndUsage",
            message: sagemeter::redact::without_identity(said),
            source: Some(Box::new(sdk)),
        };
        assert_eq!(
            account_failure(error).to_string(),
            "not allowed to call GetCostAndUsage: grant the IAM action ce:GetCostAndUsage \
             (User: <principal> is not authorized to perform: ce:GetCostAndUsage)"
        );
    }

    /// The table `render` prints of a view given as its `--json` form.
    fn rendered(view: serde_json::Value) -> String {
        let view: EndpointsView = serde_json::from_value(view).unwrap();
        let mut out = Vec::new();
        render(&view, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn row(component: Option<&str>, usd_per_hour: &str) -> serde_json::Value {
        let mut row = serde_json::json!({
            "endpoint": "shared", "variant": "AllTraffic", "status": "InService",
            "kind": "instance", "instance_type": "ml.g5.12xlarge", "instance_count": 2,
            "memory_mb": null, "provisioned_concurrency": null,
            "usd_per_hour": usd_per_hour, "price_source": "live", "invocations": 100,
            "window_hours": "24", "window_cost_usd": null, "usd_per_1000_invocations": null,
            "utilisation": null, "flags": [], "unpriced_reason": null
        });
        match component {
            Some(name) => {
                row["inference_component"] = name.into();
                row["copies"] = 1.into();
                row["reserved_share"] = "0.375".into();
            }
            None => {
                row["unreserved_share"] = "0.5".into();
                row["notes"] = serde_json::json!([
                    "inference components reserve 50% of the instances; 7.09 USD/hour is reserved by none"
                ]);
            }
        }
        row
    }

    #[test]
    fn every_rows_notes_are_printed_and_an_unpriced_serverless_row_is_no_zero() {
        // A called serverless endpoint whose per-second rate is unknown.
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [{
                "endpoint": "pay-per-use", "variant": "AllTraffic", "status": "InService",
                "kind": "serverless", "instance_type": null, "instance_count": null,
                "memory_mb": 3072, "provisioned_concurrency": null, "usd_per_hour": null,
                "price_source": null, "invocations": 720, "window_hours": "24",
                "window_cost_usd": null, "usd_per_1000_invocations": null,
                "utilisation": null, "flags": ["unpriced"],
                "unpriced_reason": "called in the window, and the serverless per-second rate is unknown: no price",
                "notes": ["first note", "second note"]
            }],
            "totals": {"endpoints": 1, "usd_per_hour": "0", "usd_per_month": "0",
                       "idle_usd_per_hour": "0", "idle_usd_per_month": "0",
                       "window_cost_usd": "0", "unpriced": 1}
        }));
        assert!(
            text.contains("pay-per-use/AllTraffic: first note; second note\n"),
            "{text}"
        );
        assert!(
            text.contains("unpriced pay-per-use: called in the window"),
            "{text}"
        );
        // No money on the row: $/hour, window cost and per 1,000 are all unknown.
        let row = text.lines().nth(2).unwrap();
        assert!(
            row.starts_with("pay-per-use") && !row.contains('$'),
            "{text}"
        );
    }

    /// A serverless variant whose calls CloudWatch did not answer for: its window
    /// cost is not known, and the total line says why such a variant's may not be,
    /// of one variant in the singular.
    #[test]
    fn one_serverless_variant_without_a_window_cost_is_told_in_the_singular_with_its_reason() {
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [{
                "endpoint": "pay-per-use", "variant": "AllTraffic", "status": "InService",
                "kind": "serverless", "instance_type": null, "instance_count": null,
                "memory_mb": 3072, "provisioned_concurrency": null, "usd_per_hour": "0",
                "price_source": "snapshot", "invocations": null, "window_hours": "24",
                "window_cost_usd": null, "usd_per_1000_invocations": null,
                "utilisation": null, "flags": [], "unpriced_reason": null,
                "notes": ["its calls in the window are not known (CloudWatch did not answer \
                           for them): the compute a serverless variant is billed for per \
                           second is not known, and so neither are the window's cost and \
                           cost per 1,000 calls (not $0)"]
            }],
            "totals": {"endpoints": 1, "usd_per_hour": "0", "usd_per_month": "0",
                       "idle_usd_per_hour": "0", "idle_usd_per_month": "0",
                       "window_cost_usd": "0", "unpriced": 0, "window_unpriced": 1}
        }));
        let line = text
            .lines()
            .find(|l| l.contains("whose window cost is not known"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with("1 variant whose"), "{line}");
        assert!(
            line.contains("serverless with its calls' compute not known from CloudWatch"),
            "{line}"
        );
        assert!(line.contains("failed after serving"), "{line}");
    }

    /// Names, notes and reasons quoting an AWS answer may hold control characters:
    /// none reaches the terminal raw, wherever it is printed.
    #[test]
    fn control_characters_in_names_and_notes_are_printed_escaped() {
        let clear = "\u{1b}[2J";
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [{
                "endpoint": format!("odd{clear}"), "variant": "AllTraffic",
                "status": "InService", "kind": "instance",
                "instance_type": "ml.m5.xlarge", "instance_count": 1,
                "memory_mb": null, "provisioned_concurrency": null, "usd_per_hour": null,
                "price_source": null, "invocations": 0, "window_hours": "24",
                "window_cost_usd": null, "usd_per_1000_invocations": null,
                "utilisation": null, "flags": ["unpriced"],
                "unpriced_reason": format!("AWS said {clear}no"),
                "notes": [format!("a note {clear}quoting AWS")]
            }],
            "totals": {"endpoints": 1, "usd_per_hour": "0", "usd_per_month": "0",
                       "idle_usd_per_hour": "0", "idle_usd_per_month": "0",
                       "window_cost_usd": "0", "unpriced": 1},
            "notes": [format!("a view note {clear}quoting AWS")]
        }));
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("a note \\u{1b}[2Jquoting AWS"), "{text}");
        assert!(text.contains("a view note \\u{1b}[2Jquoting AWS"), "{text}");
        assert!(text.contains("AWS said \\u{1b}[2Jno"), "{text}");
    }

    #[test]
    fn a_deployments_new_fleet_is_flagged_deploying_and_its_notes_are_told_apart() {
        let fleet = |deploying: bool, instance_type: &str, usd_per_hour: &str| {
            let mut row = serde_json::json!({
                "endpoint": "deploying", "variant": "AllTraffic", "status": "Updating",
                "kind": "instance", "instance_type": instance_type, "instance_count": 1,
                "memory_mb": null, "provisioned_concurrency": null,
                "usd_per_hour": usd_per_hour, "price_source": "snapshot", "invocations": 0,
                "window_hours": "24", "window_cost_usd": null,
                "usd_per_1000_invocations": null, "utilisation": null, "flags": ["idle"],
                "unpriced_reason": null, "notes": [format!("note of {instance_type}")]
            });
            if deploying {
                row["deploying"] = true.into();
                row["invocations"] = serde_json::Value::Null;
            }
            row
        };
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [fleet(false, "ml.g5.xlarge", "1.408"),
                     fleet(true, "ml.g5.12xlarge", "7.09")],
            "totals": {"endpoints": 1, "usd_per_hour": "8.498", "usd_per_month": "6203.54",
                       "idle_usd_per_hour": "8.498", "idle_usd_per_month": "6203.54",
                       "window_cost_usd": "0", "unpriced": 0}
        }));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].ends_with("  idle"), "{text}");
        assert!(lines[3].contains("1 × ml.g5.12xlarge"), "{text}");
        assert!(lines[3].ends_with("  deploying,idle"), "{text}");
        assert!(
            text.contains("deploying/AllTraffic: note of ml.g5.xlarge\n"),
            "{text}"
        );
        assert!(
            text.contains("deploying/AllTraffic (new fleet): note of ml.g5.12xlarge\n"),
            "{text}"
        );
    }

    #[test]
    fn a_shadow_variant_is_flagged_shadow_in_the_table() {
        // Production: 2 × ml.m5.xlarge; shadow: 1 × ml.g5.xlarge, not called.
        let variant = |name: &str, shadow: bool, instance_type: &str, count: u32, flags| {
            let mut row = serde_json::json!({
                "endpoint": "ranker", "variant": name, "status": "InService",
                "kind": "instance", "instance_type": instance_type, "instance_count": count,
                "memory_mb": null, "provisioned_concurrency": null,
                "usd_per_hour": "1", "price_source": "snapshot", "invocations": 0,
                "window_hours": "24", "window_cost_usd": null,
                "usd_per_1000_invocations": null, "utilisation": null, "flags": flags,
                "unpriced_reason": null
            });
            if shadow {
                row["shadow"] = true.into();
            }
            row
        };
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [variant("AllTraffic", false, "ml.m5.xlarge", 2, serde_json::json!([])),
                     variant("Candidate", true, "ml.g5.xlarge", 1, serde_json::json!(["idle"]))],
            "totals": {"endpoints": 1, "usd_per_hour": "2", "usd_per_month": "1460",
                       "idle_usd_per_hour": "1", "idle_usd_per_month": "730",
                       "window_cost_usd": "0", "unpriced": 0}
        }));
        let lines: Vec<&str> = text.lines().collect();
        // The production variant has no flag; the shadow's says what it is first.
        assert!(lines[1].ends_with("FLAGS"), "{text}");
        assert!(
            lines[2].contains("AllTraffic") && !lines[2].contains("shadow"),
            "{text}"
        );
        assert!(lines[3].contains("Candidate"), "{text}");
        assert!(lines[3].ends_with("  shadow,idle"), "{text}");
    }

    #[test]
    fn components_get_a_column_their_share_and_the_unreserved_note() {
        let text = rendered(serde_json::json!({
            "region": "us-east-1", "window": "24h", "at": "2026-12-02T12:00:00Z",
            "rows": [row(None, "14.18"), row(Some("large"), "5.3175")],
            "totals": {"endpoints": 1, "usd_per_hour": "14.18", "usd_per_month": "10351.4",
                       "idle_usd_per_hour": "0", "idle_usd_per_month": "0",
                       "window_cost_usd": "0", "unpriced": 0}
        }));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("ENDPOINT  VARIANT     COMPONENT"),
            "{text}"
        );
        fn cells(line: &str) -> Vec<&str> {
            line.split("  ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect()
        }
        assert_eq!(cells(lines[2])[2], "-");
        assert_eq!(cells(lines[3])[2], "large");
        assert_eq!(cells(lines[3])[4], "1 copy, 37.5% of 2 × ml.g5.12xlarge");
        assert_eq!(cells(lines[3])[5], "$5.3175");
        assert!(
            text.contains(
                "shared/AllTraffic: inference components reserve 50% of the instances; 7.09 \
             USD/hour is reserved by none"
            ),
            "{text}"
        );
    }
}
