//! `sagemeter endpoints` and `sagemeter reconcile` on the demo data: a private
//! emulator seeded by `localstack/seed.py` (three endpoints, one idle; a week of
//! hourly CloudWatch data; one Cost Explorer answer for yesterday and today).
//!
//! Prices come from the bundled snapshot (pricing is unreachable here): us-east-1
//! ml.m5.xlarge $0.23/h, ml.m5.large $0.115/h, ML storage $0.14/GB-month (÷ 730 h
//! for an hour), serverless 3 GB $0.00006/s.
//!
//! Run: `cargo test --all-features --test cli cli_account::`.

use super::clean_env::{self, refused_url};
use crate::support::emulator::{Emulator, REALTIME_ENDPOINT};
use crate::support::gb_month_storage;
use chrono::{Duration as Days, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A seeded server of this module's own: the seed's one Cost Explorer answer is
/// taken by the first request for it, and no other test may take it.
fn emulator() -> &'static Emulator {
    static OWN: OnceLock<Emulator> = OnceLock::new();
    OWN.get_or_init(Emulator::start)
}

fn sagemeter(args: &[&str]) -> Command {
    let mut cmd = clean_env::sagemeter(&emulator().endpoint_url, &refused_url());
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    sagemeter(args).output().expect("run sagemeter")
}

/// `sagemeter args`, which must succeed: what it wrote on its standard output.
fn ok_stdout(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert!(
        out.status.success(),
        "sagemeter {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`ok_stdout`] as text.
fn ok_text(args: &[&str]) -> String {
    String::from_utf8_lossy(&ok_stdout(args)).into_owned()
}

fn ok_json(args: &[&str]) -> Value {
    serde_json::from_slice(&ok_stdout(args)).expect("one JSON document")
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {v}"))
        .parse()
        .unwrap()
}

fn row<'a>(view: &'a Value, endpoint: &str) -> &'a Value {
    view["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("no row for {endpoint}: {view:#}"))
}

#[test]
fn endpoints_prices_the_demo_account_and_flags_the_idle_and_underused_ones() {
    let view = ok_json(&["endpoints", "--window", "24h", "--json"]);
    assert_eq!(view["window"], "24h");

    // demo-idle: 1 × $0.115 + 30 GB × $0.14 ÷ 730 = $0.120753424658/h (its storage
    // at an average month). The endpoint is a week old, so the window is the whole
    // 24 h: $0.115 × 24 = $2.76 of instance, and $4.20 a month of storage billed by
    // the days of the month(s) the window falls in (in a 31-day month
    // $4.20 × 24 / 744 = $0.135483870968, $2.895483870968 in all).
    let idle = row(&view, "demo-idle");
    assert_eq!(
        dec(&idle["usd_per_hour"]),
        "0.120753424658".parse::<Decimal>().unwrap()
    );
    let at: chrono::DateTime<chrono::Utc> = view["at"].as_str().unwrap().parse().unwrap();
    let storage = gb_month_storage(Decimal::new(42, 1), at - chrono::Duration::hours(24), at);
    assert_eq!(
        dec(&idle["window_cost_usd"]),
        ("2.76".parse::<Decimal>().unwrap() + storage).round_dp(12)
    );
    assert_eq!(idle["invocations"], 0);
    assert_eq!(idle["flags"], serde_json::json!(["idle"]));
    assert_eq!(idle["kind"], "instance");

    // demo-realtime: 2 × $0.23 = $0.46/h, × 24 h = $11.04 over 24 × 120 = 2,880
    // calls: $3.833333333333 per 1,000. Model time 24 × 120 × 0.25 s = 720 s of
    // 2 × 86,400 s: 0.0042, underused.
    let rt = row(&view, REALTIME_ENDPOINT);
    assert_eq!(dec(&rt["usd_per_hour"]), "0.46".parse::<Decimal>().unwrap());
    assert_eq!(rt["invocations"], 2880);
    assert_eq!(
        dec(&rt["window_cost_usd"]),
        "11.04".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&rt["usd_per_1000_invocations"]),
        "3.833333333333".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&rt["utilisation"]),
        "0.0042".parse::<Decimal>().unwrap()
    );
    assert_eq!(rt["flags"], serde_json::json!(["underused"]));

    // demo-serverless burns nothing standing; its 720 calls × 0.4 s = 288 s of
    // compute at $0.00006/s = $0.01728 ($0.024 per 1,000), estimated from ModelLatency.
    let sl = row(&view, "demo-serverless");
    assert_eq!(dec(&sl["usd_per_hour"]), Decimal::ZERO);
    assert_eq!(
        dec(&sl["window_cost_usd"]),
        "0.01728".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&sl["usd_per_1000_invocations"]),
        "0.024".parse::<Decimal>().unwrap()
    );
    assert_eq!(sl["flags"], serde_json::json!([]));

    // Totals: $0.580753424658/h, × 730 h a month; idle: demo-idle's burn.
    assert_eq!(
        dec(&view["totals"]["usd_per_hour"]),
        "0.580753424658".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&view["totals"]["usd_per_month"]),
        "423.95000000034".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&view["totals"]["idle_usd_per_hour"]),
        "0.120753424658".parse::<Decimal>().unwrap()
    );

    // The table says the same, by burn.
    let table = ok_text(&["endpoints"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("ENDPOINT"), "{table}");
    assert!(
        lines[2].starts_with(REALTIME_ENDPOINT) && lines[2].ends_with("underused"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("demo-idle") && lines[3].ends_with("idle"),
        "{table}"
    );
    assert!(
        table.contains(
            "total: $0.5808/hour, $423.95/month (730 h); idle: $0.1208/hour, $88.15/month"
        ),
        "{table}"
    );
    // What the window cost leaves out is said where the total is.
    assert!(
        table.contains("(no data processed: CloudWatch counts no bytes)"),
        "{table}"
    );

    // A negative threshold is said to be out of range, not taken for a flag.
    let out = run(&["endpoints", "--underused-below", "-5%"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`-5%` is not a percentage from 0% to 100%"),
        "{err}"
    );

    // A region the emulator does not serve: it answers with an HTML error page,
    // named by its status and type, not by the SDK's JSON parser's complaint.
    let out = run(&["--region", "xx-nowhere-1", "endpoints"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ListEndpoints failed: the endpoint answered HTTP 500 of text/html"),
        "{err}"
    );
}

#[test]
fn reconcile_compares_a_ledger_with_the_seeded_bill_and_refuses_what_it_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    let ledger_arg = ledger.to_str().unwrap();
    ok_stdout(&[
        "invoke",
        REALTIME_ENDPOINT,
        "--body",
        r#"{"inputs":"hi"}"#,
        "-n",
        "3",
        "--ledger",
        ledger_arg,
    ]);

    let today = Utc::now().date_naive();
    let yesterday = (today - Days::days(1)).to_string();
    let tomorrow = (today + Days::days(1)).to_string();
    let r = ok_json(&reconcile_over(
        &[ledger_arg],
        &yesterday,
        &tomorrow,
        &["--json"],
    ));
    // Yesterday: the seeded bill, $13.9872 (48 h × $0.23 + 24 h × $0.115 + 720 s ×
    // $0.00006 + 0.05 GB × $0.016 + 0.2 GB × $0.016 + 1 GB-month × $0.14), all of
    // it outside sagemeter or standing (nothing was metered); today is estimated.
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0]["day"], yesterday);
    assert_eq!(
        dec(&days[0]["billed_usd"]),
        "13.9872".parse::<Decimal>().unwrap()
    );
    assert_eq!(dec(&days[0]["metered_usd"]), Decimal::ZERO);
    assert_eq!(
        dec(&days[0]["parts"]["standing_usd"]),
        "0.14".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&days[0]["parts"]["outside_usd"]),
        "13.8472".parse::<Decimal>().unwrap()
    );
    assert_eq!(days[0]["verdict"], "explained");
    assert_eq!(days[1]["verdict"], "not_settled");
    // Today's three calls are metered on the hosting row.
    let host_today = hosting_row(&r, &today.to_string());
    assert!(
        dec(&host_today["metered_usd"]) > Decimal::ZERO,
        "{host_today:#}"
    );

    // Dates Cost Explorer cannot answer: invalid arguments, exit 2, nothing asked.
    for (since, until, says) in [
        (
            "2020-01-01",
            "2020-01-02",
            "beyond what Cost Explorer keeps",
        ),
        (
            tomorrow.as_str(),
            yesterday.as_str(),
            "is not before --until",
        ),
    ] {
        let out = run(&["reconcile", ledger_arg, "--since", since, "--until", until]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }

    // A ledger of another region.
    let out = run(&["--region", "eu-west-1", "reconcile", ledger_arg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("priced in us-east-1") && err.contains("--region us-east-1"),
        "{err}"
    );

    // A grouping that is not one: a usage error, exit 2.
    let out = run(&["reconcile", ledger_arg, "--group-by", "endpoint"]);
    assert_eq!(out.status.code(), Some(2));

    // A negative tolerance is said to be one, not taken for a flag.
    let out = run(&["reconcile", ledger_arg, "--tolerance", "-1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--tolerance -1 is negative"), "{err}");

    // A day that is no date: said with the format expected.
    let out = run(&["reconcile", ledger_arg, "--since", "2026-13-01"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`2026-13-01` is not a date: use YYYY-MM-DD"),
        "{err}"
    );
}

/// One receipt of `rt-rolled` (one ml.m5.xlarge at $0.23/h) at `at`, its process
/// having accrued `accrued` USD of instance time (and allocated none of it). Its
/// compute: 0.000000277 instance-hours (a 1 ms call, 1/3,600,000 h, cut to nine
/// places) × $0.23 = $0.00000006371.
fn rolled_receipt(at: &str, accrued: &str) -> String {
    serde_json::json!({"v": 1, "call_id": format!("call-{at}"), "at": at,
        "endpoint": "rt-rolled", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                  "bytes_out": 0, "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "0.000000277", "unit": "instance_hours",
                   "price": {"status": "priced", "usd_per_unit": "0.23",
                             "cost_usd": "0.00000006371",
                             "provenance": {"source": "live", "sku": null, "effective_date": null,
                                            "fetched_at": null, "note": null}}}],
        "cost_usd": "0.00000006371", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": "0", "utilisation": null}})
    .to_string()
}

/// Writes `receipts` to `path`, a line each.
fn write_ledger(path: &std::path::Path, receipts: &[String]) {
    std::fs::write(path, receipts.join("\n") + "\n").unwrap();
}

/// The seeded bill's days, yesterday and today (UTC): yesterday, and the
/// `--since` and `--until` that ask for them.
fn seeded_bill_days() -> (chrono::NaiveDate, String, String) {
    let today = Utc::now().date_naive();
    let yesterday = today - Days::days(1);
    (
        yesterday,
        yesterday.to_string(),
        (today + Days::days(1)).to_string(),
    )
}

/// `reconcile` of `ledgers` over the days from `since` to before `until`, then
/// `more`.
fn reconcile_over<'a>(
    ledgers: &[&'a str],
    since: &'a str,
    until: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["reconcile"];
    args.extend(ledgers);
    args.extend(["--since", since, "--until", until]);
    args.extend(more);
    args
}

/// The row of `day`'s hosting of ml.m5.xlarge in a reconciliation's JSON.
fn hosting_row<'a>(r: &'a Value, day: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["day"] == day && row["group"] == "Host:ml.m5.xlarge")
        .unwrap_or_else(|| panic!("{day}'s hosting row: {r:#}"))
}

#[test]
fn reconcile_reads_a_rolling_ledgers_files_oldest_first_whatever_order_they_are_named_in() {
    // A rolling ledger of one process, one instance at $0.23/h: file T10 holds its
    // receipts of 10:00 (where the count starts, at 0) and 10:30 (0.115 accrued),
    // T10.1 (after a size roll) the one of 11:00 (0.23): 1 h × $0.23 = $0.23 of
    // instance time, none of it allocated to the 1 ms calls: $0.23 idle.
    // The seeded bill's days (the same request as the other reconcile test's).
    let (yesterday, since, until) = seeded_bill_days();
    let dir = tempfile::tempdir().unwrap();
    let t10 = dir.path().join(format!("sagemeter-{yesterday}T10.jsonl"));
    let t10_1 = dir.path().join(format!("sagemeter-{yesterday}T10.1.jsonl"));
    write_ledger(
        &t10,
        &[
            rolled_receipt(&format!("{yesterday}T10:00:00Z"), "0"),
            rolled_receipt(&format!("{yesterday}T10:30:00Z"), "0.115"),
        ],
    );
    write_ledger(
        &t10_1,
        &[rolled_receipt(&format!("{yesterday}T11:00:00Z"), "0.23")],
    );
    let idle = |files: &[&std::path::Path]| {
        let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
        let r = ok_json(&reconcile_over(&files, &since, &until, &["--json"]));
        assert_eq!(r["billed_metric"], "AmortizedCost");
        dec(&hosting_row(&r, &since)["parts"]["idle_instance_usd"])
    };
    // As a glob names them: `T10.1.jsonl` before `T10.jsonl` ('1' < 'j').
    assert_eq!(idle(&[&t10_1, &t10]), "0.23".parse::<Decimal>().unwrap());
    // The same as the directory.
    assert_eq!(idle(&[dir.path()]), "0.23".parse::<Decimal>().unwrap());
    // Its two files and its directory named: one ledger, its three receipts once.
    let text = ok_text(&reconcile_over(
        &[
            t10_1.to_str().unwrap(),
            t10.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
        &since,
        &until,
        &[],
    ));
    assert!(
        text.starts_with("3 receipts from 1 ledger against"),
        "{text}"
    );
}

#[test]
fn reconcile_counts_the_receipts_of_the_days_compared_and_each_ledger_once() {
    // One ledger: a receipt yesterday and one 3 days ago. Reconciling yesterday
    // and today compares the first only; the ledger, named twice, is one.
    // The seeded bill's days (the same request as the other reconcile tests').
    let (yesterday, since, until) = seeded_bill_days();
    let three_days_ago = yesterday - Days::days(2);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    write_ledger(
        &ledger,
        &[
            rolled_receipt(&format!("{three_days_ago}T10:00:00Z"), "0"),
            rolled_receipt(&format!("{yesterday}T10:00:00Z"), "0"),
        ],
    );
    let ledger = ledger.to_str().unwrap();
    let text = ok_text(&reconcile_over(&[ledger, ledger], &since, &until, &[]));
    assert!(
        text.starts_with("1 receipt from 1 ledger against"),
        "{text}"
    );
    let r = ok_json(&reconcile_over(&[ledger], &since, &until, &["--json"]));
    assert_eq!(r["receipts"], 1, "{r:#}");
}

#[test]
fn reconcile_takes_the_regions_receipts_of_a_ledger_two_regions_share() {
    // One ledger, a client per region: yesterday a us-east-1 call and an
    // eu-west-1 call of the same endpoint. Reconciling us-east-1 (the seeded
    // bill's region) meters the first (0.000000277 h × $0.23 = $0.00000006371) and
    // leaves the other out, saying so.
    // The seeded bill's days (the same request as the other reconcile tests').
    let (yesterday, since, until) = seeded_bill_days();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("mixed.jsonl");
    let us = rolled_receipt(&format!("{yesterday}T10:00:00Z"), "0");
    let mut eu: Value =
        serde_json::from_str(&rolled_receipt(&format!("{yesterday}T10:05:00Z"), "0")).unwrap();
    eu["region"] = "eu-west-1".into();
    eu["call_id"] = "call-eu".into();
    write_ledger(&ledger, &[us, eu.to_string()]);
    let ledger = ledger.to_str().unwrap();
    let r = ok_json(&reconcile_over(&[ledger], &since, &until, &["--json"]));
    assert_eq!(
        dec(&hosting_row(&r, &since)["metered_usd"]),
        // 0.000000277 × 0.23 = 0.00000006371
        "0.00000006371".parse::<Decimal>().unwrap()
    );
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("1 receipt of eu-west-1 left out")),
        "{notes:?}"
    );
    // The caller's account (STS: the emulator's 123456789012) by default, its id
    // not written; --account names it (the same request to Cost Explorer here).
    assert_eq!(r["account"], Value::Null);
    let text = ok_text(&reconcile_over(
        &[ledger],
        &since,
        &until,
        &["--account", "123456789012"],
    ));
    assert!(
        text.contains("Amazon SageMaker in us-east-1 of account 123456789012"),
        "{text}"
    );
    let out = run(&["reconcile", ledger, "--account", "12345"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`12345` is not an AWS account id"), "{err}");
}

#[test]
fn reconcile_refuses_ledgers_with_no_receipt_of_the_region_old_receipts_without_one_aside() {
    // Refused before anything is asked of AWS (none is reachable here).
    let dir = tempfile::tempdir().unwrap();
    let receipt = |at: &str, region: Option<&str>| {
        let mut r: Value = serde_json::from_str(&rolled_receipt(at, "0")).unwrap();
        r["region"] = region.map_or(Value::Null, Value::from);
        r.to_string()
    };
    let reconcile = |ledger: &std::path::Path, region: &str| {
        clean_env::sagemeter(&refused_url(), &refused_url())
            .args(["--region", region, "reconcile"])
            .arg(ledger)
            .stdin(Stdio::null())
            .output()
            .expect("run sagemeter")
    };

    // Only eu-west-1's receipts, us-east-1 reconciled: another region's bill.
    let eu_only = dir.path().join("eu.jsonl");
    std::fs::write(
        &eu_only,
        format!("{}\n", receipt("2026-11-29T10:00:00Z", Some("eu-west-1"))),
    )
    .unwrap();
    let out = reconcile(&eu_only, "us-east-1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the ledgers' receipts were priced in eu-west-1 (1), none in us-east-1, the region \
             reconciled: use --region eu-west-1"
        ),
        "{err}"
    );

    // Two old receipts without a region and one of eu-west-1: nothing says the
    // old two are us-east-1's, and metering them against us-east-1's bill while
    // leaving eu-west-1's out would be a guess. Refused the same, and said.
    let old_and_eu = dir.path().join("old-and-eu.jsonl");
    std::fs::write(
        &old_and_eu,
        format!(
            "{}\n{}\n{}\n",
            receipt("2026-11-29T09:00:00Z", None),
            receipt("2026-11-29T09:30:00Z", None),
            receipt("2026-11-29T10:00:00Z", Some("eu-west-1"))
        ),
    )
    .unwrap();
    let out = reconcile(&old_and_eu, "us-east-1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the ledgers' receipts were priced in eu-west-1 (1), none in us-east-1, the region \
             reconciled, and 2 carry no region (written before receipts did): they would be \
             taken as us-east-1's, though nothing says they are: use --region eu-west-1"
        ),
        "{err}"
    );
    // --region eu-west-1 takes them all as eu-west-1's: not refused for the
    // ledgers. It goes on to ask STS whose the bill is, unreachable here: STS's
    // own failure, saying that --account skips the question.
    let out = reconcile(&old_and_eu, "eu-west-1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("the ledgers' receipts were priced in"),
        "{err}"
    );
    assert!(err.contains("GetCallerIdentity failed: "), "{err}");
    assert!(
        err.contains(
            "the caller's account, whose bill is reconciled by default, is asked of STS: \
             naming it (--account, ReconcileOptions::account) skips this"
        ),
        "{err}"
    );
}

#[test]
fn an_account_that_is_no_account_id_is_said_with_its_control_characters_escaped() {
    let out = clean_env::sagemeter(&refused_url(), &refused_url())
        .args([
            "reconcile",
            "calls.jsonl",
            "--account",
            "1234\u{1b}[2J\n5678",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sagemeter");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "`1234\\u{1b}[2J\\n5678` is not an AWS account id (twelve digits, e.g. 123456789012)"
        ),
        "{err}"
    );
}
