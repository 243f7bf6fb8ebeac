//! `sagemeter::report` on a small hand-written ledger (and one metered through the
//! client, of a per-token endpoint): every figure is checked
//! against arithmetic done by hand (shown in the comments).

use rust_decimal::Decimal;
use sagemeter::Cost;
use sagemeter::ledger::{JsonlLedger, read_all};
use sagemeter::report::{
    Bucket, GroupBy, GroupSummary, Report, ReportError, ReportOptions, UNTAGGED, parse_time_bound,
    render_table, report_file, report_files, summarize,
};
use serde_json::json;
use std::path::Path;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// One receipt of the fixture.
struct Call {
    at: &'static str,
    endpoint: &'static str,
    variant: &'static str,
    cost_usd: &'static str,
    latency_us: u64,
    tokens: Option<(u64, u64)>,
    outcome: &'static str,
    unpriced: bool,
    team: Option<&'static str>,
}

impl Call {
    fn cost(&self, id: usize) -> Cost {
        let mut usage = json!({
            "operation": "invoke_endpoint", "latency_us": self.latency_us,
            "bytes_in": 100, "bytes_out": 200, "variant": self.variant,
            "outcome": self.outcome,
        });
        if let Some((input, output)) = self.tokens {
            usage["input_tokens"] = json!(input);
            usage["output_tokens"] = json!(output);
        }
        let mut lines = vec![json!({
            "item": "compute", "quantity": "0.0001", "unit": "instance_hours",
            "price": {"status": "priced", "usd_per_unit": "1", "cost_usd": self.cost_usd,
                      "provenance": {"source": "live", "sku": null, "effective_date": null,
                                     "fetched_at": null, "note": null}}
        })];
        if self.unpriced {
            lines.push(json!({
                "item": "data_in", "quantity": "0.0000001", "unit": "gigabytes",
                "price": {"status": "unpriced", "reason": "no data-in price in us-east-1"}
            }));
        }
        let mut cost = json!({
            "call_id": format!("req-{id}"), "at": self.at, "endpoint": self.endpoint,
            "variant": self.variant, "allocation": "busy_time", "usage": usage,
            "lines": lines, "cost_usd": self.cost_usd, "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0",
        });
        if let Some(team) = self.team {
            cost["tags"] = json!({ "team": team });
        }
        serde_json::from_value(cost).unwrap()
    }
}

#[rustfmt::skip]
const CALLS: [Call; 8] = [
    // at,                        endpoint, variant, cost,    latency, tokens,          outcome,     unpriced, team
    Call { at: "2026-11-01T09:15:00Z", endpoint: "chat",  variant: "A", cost_usd: "0.010", latency_us: 100_000, tokens: Some((100, 200)), outcome: "ok",        unpriced: false, team: Some("search") },
    Call { at: "2026-11-01T09:45:00Z", endpoint: "chat",  variant: "A", cost_usd: "0.020", latency_us: 200_000, tokens: Some((50, 150)),  outcome: "ok",        unpriced: false, team: Some("search") },
    Call { at: "2026-11-01T10:05:00Z", endpoint: "chat",  variant: "B", cost_usd: "0.030", latency_us: 300_000, tokens: None,             outcome: "error",     unpriced: false, team: Some("ads") },
    Call { at: "2026-11-02T08:00:00Z", endpoint: "chat",  variant: "A", cost_usd: "0.040", latency_us: 400_000, tokens: Some((300, 700)), outcome: "ok",        unpriced: false, team: None },
    Call { at: "2026-11-02T12:00:00Z", endpoint: "embed", variant: "A", cost_usd: "0.001", latency_us: 10_000,  tokens: None,             outcome: "ok",        unpriced: true,  team: Some("search") },
    Call { at: "2026-11-02T13:00:00Z", endpoint: "embed", variant: "A", cost_usd: "0.002", latency_us: 20_000,  tokens: None,             outcome: "cancelled", unpriced: false, team: Some("search") },
    Call { at: "2026-11-03T00:00:00Z", endpoint: "embed", variant: "A", cost_usd: "0.003", latency_us: 30_000,  tokens: None,             outcome: "ok",        unpriced: false, team: Some("ads") },
    // Before the week: only in reports without `since`.
    Call { at: "2026-10-31T23:59:59Z", endpoint: "chat",  variant: "A", cost_usd: "1.000", latency_us: 5_000,   tokens: None,             outcome: "ok",        unpriced: false, team: Some("search") },
];

fn fixture() -> Vec<Cost> {
    CALLS
        .iter()
        .enumerate()
        .map(|(i, c)| c.cost(i + 1))
        .collect()
}

/// The fixture, written through the ledger writer.
async fn fixture_file(path: &Path) {
    let ledger = JsonlLedger::open(path).unwrap();
    for cost in fixture() {
        ledger.try_record(&cost).unwrap();
    }
    ledger.shutdown().await.unwrap();
}

fn since_nov_1(by: GroupBy) -> ReportOptions {
    ReportOptions::new(by).since(parse_time_bound("2026-11-01").unwrap())
}

/// Each group of `report`, in order, as (key, calls, cost).
fn rows(report: &Report) -> Vec<(&str, u64, Decimal)> {
    report
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.calls, g.cost_usd))
        .collect()
}

fn group<'a>(report: &'a Report, key: &str) -> &'a GroupSummary {
    report
        .groups
        .iter()
        .find(|g| g.key == key)
        .unwrap_or_else(|| panic!("no group {key} in {report:#?}"))
}

#[test]
fn per_endpoint_figures_match_the_hand_computed_ones() {
    let report = summarize(&fixture(), &since_nov_1(GroupBy::Endpoint)).unwrap();
    assert_eq!(
        report.outside_range, 1,
        "the 31 October call is not counted"
    );
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["chat", "embed"], "highest cost first");

    let chat = group(&report, "chat");
    assert_eq!(chat.calls, 4);
    // 0.010 + 0.020 + 0.030 + 0.040
    assert_eq!(chat.cost_usd, dec("0.100"));
    // 0.100 × 1000 / 4
    assert_eq!(chat.usd_per_1000_calls, Some(dec("25")));
    // sorted 0.01 0.02 0.03 0.04: p50 = rank ⌈0.5·4⌉ = 2, p95 = rank ⌈3.8⌉ = 4
    assert_eq!(chat.cost_per_call_p50_usd, Some(dec("0.020")));
    assert_eq!(chat.cost_per_call_p95_usd, Some(dec("0.040")));
    assert_eq!(chat.latency_p50_ms, Some(dec("200")));
    assert_eq!(chat.latency_p95_ms, Some(dec("400")));
    // tokens: in 100 + 50 + 300, out 200 + 150 + 700, over 3 calls
    assert_eq!(
        (
            chat.input_tokens,
            chat.output_tokens,
            chat.calls_with_tokens
        ),
        (450, 1050, 3)
    );
    // (0.010 + 0.020 + 0.040) × 1000 / 1500 tokens = 0.0466…, to 12 places
    assert_eq!(chat.usd_per_1000_tokens, Some(dec("0.046666666667")));
    assert_eq!((chat.unpriced_calls, chat.unpriced_share), (0, dec("0")));
    assert_eq!((chat.errors, chat.cancelled), (1, 0));

    let embed = group(&report, "embed");
    assert_eq!(embed.calls, 3);
    assert_eq!(embed.cost_usd, dec("0.006"));
    // 0.006 × 1000 / 3
    assert_eq!(embed.usd_per_1000_calls, Some(dec("2")));
    // sorted 0.001 0.002 0.003: p50 = rank 2, p95 = rank ⌈2.85⌉ = 3
    assert_eq!(embed.cost_per_call_p50_usd, Some(dec("0.002")));
    assert_eq!(embed.cost_per_call_p95_usd, Some(dec("0.003")));
    assert_eq!(embed.latency_p50_ms, Some(dec("20")));
    assert_eq!(embed.latency_p95_ms, Some(dec("30")));
    assert_eq!(embed.usd_per_1000_tokens, None, "no call reported tokens");
    // 1 of 3 calls had an unpriced line
    assert_eq!(
        (embed.unpriced_calls, embed.unpriced_share),
        (1, dec("0.333333"))
    );
    assert_eq!((embed.errors, embed.cancelled), (0, 1));

    let total = &report.total;
    assert_eq!(total.key, "total");
    assert_eq!(total.calls, 7);
    assert_eq!(total.cost_usd, dec("0.106"));
    // 0.106 × 1000 / 7 = 15.142857142857142…
    assert_eq!(total.usd_per_1000_calls, Some(dec("15.142857142857")));
    // sorted 0.001 0.002 0.003 0.01 0.02 0.03 0.04: p50 = rank ⌈3.5⌉ = 4, p95 = rank ⌈6.65⌉ = 7
    assert_eq!(total.cost_per_call_p50_usd, Some(dec("0.010")));
    assert_eq!(total.cost_per_call_p95_usd, Some(dec("0.040")));
    // sorted 10 20 30 100 200 300 400 ms
    assert_eq!(total.latency_p50_ms, Some(dec("100")));
    assert_eq!(total.latency_p95_ms, Some(dec("400")));
    // 1 / 7 = 0.142857…
    assert_eq!(total.unpriced_share, dec("0.142857"));
    assert_eq!((total.errors, total.cancelled), (1, 1));
    assert_eq!(
        total.first_at,
        Some(parse_time_bound("2026-11-01T09:15:00Z").unwrap())
    );
    assert_eq!(
        total.last_at,
        Some(parse_time_bound("2026-11-03T00:00:00Z").unwrap())
    );
}

#[test]
fn per_tag_groups_put_untagged_calls_together() {
    let report = summarize(&fixture(), &since_nov_1("tag:team".parse().unwrap())).unwrap();
    let rows = rows(&report);
    assert_eq!(
        rows,
        [
            // call 4
            (UNTAGGED, 1, dec("0.040")),
            // calls 3, 7: 0.030 + 0.003; equal cost to search, so by name
            ("ads", 2, dec("0.033")),
            // calls 1, 2, 5, 6: 0.010 + 0.020 + 0.001 + 0.002
            ("search", 4, dec("0.033")),
        ]
    );
    assert_eq!(report.by, "tag:team");
}

#[test]
fn per_variant_groups_are_endpoint_slash_variant() {
    let report = summarize(&fixture(), &since_nov_1(GroupBy::Variant)).unwrap();
    let rows = rows(&report);
    assert_eq!(
        rows,
        [
            ("chat/A", 3, dec("0.070")),
            ("chat/B", 1, dec("0.030")),
            ("embed/A", 3, dec("0.006")),
        ]
    );
}

#[test]
fn per_day_groups_are_utc_days_in_time_order() {
    let report = summarize(&fixture(), &ReportOptions::new(GroupBy::Day)).unwrap();
    let rows = rows(&report);
    assert_eq!(
        rows,
        [
            ("2026-10-31", 1, dec("1.000")),
            ("2026-11-01", 3, dec("0.060")),
            ("2026-11-02", 3, dec("0.043")),
            ("2026-11-03", 1, dec("0.003")),
        ]
    );
    assert_eq!(report.outside_range, 0);
    // Over time, a time grouping is one series in its own bucket.
    assert_eq!(report.over_time.bucket, Bucket::Day);
    assert_eq!(report.over_time.series.len(), 1);
    assert_eq!(report.over_time.series[0].points.len(), 4);
}

#[test]
fn since_is_included_and_until_excluded() {
    let options = ReportOptions::new(GroupBy::Hour)
        .since(parse_time_bound("2026-11-01T09:15:00Z").unwrap())
        .until(parse_time_bound("2026-11-01T10:05:00Z").unwrap());
    let report = summarize(&fixture(), &options).unwrap();
    // Calls 1 (at since) and 2; call 3 (at until) is out, as are 4–8.
    let rows: Vec<_> = report
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.calls))
        .collect();
    assert_eq!(rows, [("2026-11-01T09:00Z", 2)]);
    assert_eq!(report.outside_range, 6);
}

#[test]
fn cost_over_time_is_per_group_and_hourly_for_short_spans() {
    let report = summarize(&fixture(), &since_nov_1(GroupBy::Endpoint)).unwrap();
    // 2026-11-01T09:15 to 2026-11-03T00:00 is under 72 hours.
    assert_eq!(report.over_time.bucket, Bucket::Hour);
    let chat = &report.over_time.series[0];
    assert_eq!(chat.key, "chat");
    let points: Vec<_> = chat
        .points
        .iter()
        .map(|p| (p.start.to_rfc3339(), p.calls, p.cost_usd))
        .collect();
    assert_eq!(
        points,
        [
            ("2026-11-01T09:00:00+00:00".to_owned(), 2, dec("0.030")),
            ("2026-11-01T10:00:00+00:00".to_owned(), 1, dec("0.030")),
            ("2026-11-02T08:00:00+00:00".to_owned(), 1, dec("0.040")),
        ]
    );
    // With the 31 October call the span is 48 h + 1 s: still hourly. A week is daily.
    let mut far = fixture();
    far.push(
        Call {
            at: "2026-11-09T00:00:00Z",
            ..CALLS[0]
        }
        .cost(99),
    );
    let report = summarize(&far, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert_eq!(report.over_time.bucket, Bucket::Day);
}

#[tokio::test]
async fn a_report_of_a_ledger_file_equals_the_in_memory_one_and_notes_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fixture_file(&path).await;
    let options = since_nov_1(GroupBy::Endpoint);
    let from_file = report_file(&path, &options).unwrap();
    assert_eq!(from_file, summarize(&fixture(), &options).unwrap());
    assert!(from_file.torn_tail.is_none());

    // Tear the last line (the 31 October call, outside the range anyway).
    let len = std::fs::metadata(&path).unwrap().len();
    crate::support::cut_to(&path, len - 10);
    let torn = report_file(&path, &options).unwrap();
    assert_eq!(torn.total, from_file.total);
    // The file's last line: eight receipts after their definitions.
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(torn.torn_tail.as_ref().map(|t| t.line), Some(lines));
    // Named with its file: of many, which one.
    assert!(
        render_table(&torn).contains(&format!("skipped a torn last line of {} (", path.display())),
        "{}",
        render_table(&torn)
    );
}

/// A receipt referring to a price no line defined is damage, refused with its
/// line as every other reader refuses it, not a priced call.
#[tokio::test]
async fn a_receipt_referring_to_an_undefined_price_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fixture_file(&path).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\"l\":[[").expect("a receipt with a priced line") + 6;
    let id_end = at + text[at..].find(',').unwrap();
    let damaged = format!("{}77{}", &text[..at], &text[id_end..]);
    std::fs::write(&path, damaged).unwrap();
    let err = report_file(&path, &since_nov_1(GroupBy::Endpoint)).unwrap_err();
    assert!(
        err.to_string()
            .contains("price 77 is not defined before it"),
        "{err}"
    );
    assert!(read_all(&path).is_err());
}

/// A ledger file named twice (a directory and a file in it, the same file by two
/// paths or through a hard link) is counted once, with a WARN naming it.
#[tokio::test]
async fn a_ledger_file_named_twice_is_counted_once() {
    let logs = crate::support::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fixture_file(&path).await;
    let options = since_nov_1(GroupBy::Endpoint);
    let once = report_file(&path, &options).unwrap();
    assert_eq!(once.total.calls, 7);

    let same_file = dir.path().join(".").join("calls.jsonl");
    // A hard link is the same file under another name (its own canonical path).
    let elsewhere = tempfile::tempdir().unwrap();
    let hard_link = elsewhere.path().join("linked.jsonl");
    std::fs::hard_link(&path, &hard_link).unwrap();
    for inputs in [
        vec![path.clone(), hard_link.clone()],
        vec![elsewhere.path().to_owned(), dir.path().to_owned()],
        vec![dir.path().to_owned(), path.clone()],
        vec![path.clone(), path.clone()],
        vec![path.clone(), same_file.clone(), dir.path().to_owned()],
    ] {
        let report = report_files(&inputs, &options).unwrap();
        assert_eq!(report, once, "{inputs:?}");
    }
    let warnings = logs.at_level("WARN");
    assert!(
        warnings.iter().any(|w| {
            w["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("more than once")
                && w["fields"]["path"] == same_file.display().to_string()
        }),
        "{warnings:?}"
    );
}

/// A copy of a ledger (a backup, files synced from two hosts) holds the same
/// receipts under another file: reported with the ledger, every receipt would
/// count twice. It is refused, naming both files; two ledgers of their own are
/// reported together.
#[tokio::test]
async fn a_copy_of_a_ledger_reported_with_it_is_refused_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fixture_file(&path).await;
    let backups = tempfile::tempdir().unwrap();
    let copy = backups.path().join("calls-backup.jsonl");
    std::fs::copy(&path, &copy).unwrap();
    let options = since_nov_1(GroupBy::Endpoint);
    for inputs in [
        vec![path.clone(), copy.clone()],
        vec![dir.path().to_owned(), backups.path().to_owned()],
    ] {
        let err = report_files(&inputs, &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} and {} begin with the same receipt (req-1): they hold the same receipts (a \
                 copy of the ledger, or its conversion to the other format?), and reading \
                 both would count them twice; give one of them",
                path.display(),
                copy.display()
            )
        );
    }
    // Another ledger, of another call: both are counted, 7 + 1 calls.
    let other = backups.path().join("other.jsonl");
    let ledger = JsonlLedger::open(&other).unwrap();
    ledger.try_record(&CALLS[4].cost(99)).unwrap();
    ledger.shutdown().await.unwrap();
    let both = report_files([&path, &other], &options).unwrap();
    assert_eq!(both.total.calls, 8);
}

#[test]
fn the_table_shows_every_group_then_the_total_and_notes() {
    let report = summarize(&fixture(), &since_nov_1(GroupBy::Endpoint)).unwrap();
    let table = render_table(&report);
    let expected = "\
endpoint  calls  cost USD     USD/1k calls  p50 USD/call  p95 USD/call  p50 ms  p95 ms  tokens in  tokens out   USD/1k tokens   unpriced  errors  cancelled
-----------------------------------------------------------------------------------------------------------------------------------------------------------
chat          4       0.1               25          0.02          0.04     200     400        450        1050  0.046666666667          0       1          0
embed         3     0.006                2         0.002         0.003      20      30          -           -               -  1 (33.3%)       0          1
-----------------------------------------------------------------------------------------------------------------------------------------------------------
total         7     0.106  15.142857142857          0.01          0.04     100     400        450        1050  0.046666666667  1 (14.3%)       1          1

calls from 2026-11-01T00:00:00+00:00; 1 outside the range not counted
note: 1 of 7 calls had unpriced lines: cost figures are lower bounds
note: input tokens reported by 3 of 5 calls answered with HTTP 2XX, output tokens by 3: each sum is of those calls; USD/1k tokens is over the 3 that reported both
";
    assert_eq!(table, expected, "\n{table}");
}

#[test]
fn the_json_report_keeps_money_exact_as_decimal_strings() {
    let report = summarize(&fixture(), &since_nov_1(GroupBy::Endpoint)).unwrap();
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["by"], "endpoint");
    assert_eq!(value["total"]["calls"], 7);
    assert_eq!(value["total"]["cost_usd"], "0.106");
    assert_eq!(value["total"]["usd_per_1000_calls"], "15.142857142857");
    assert_eq!(value["groups"][0]["key"], "chat");
    assert_eq!(value["over_time"]["bucket"], "hour");
    // And it reads back.
    let back: Report = serde_json::from_value(value).unwrap();
    assert_eq!(back, report);
}

#[test]
fn an_empty_ledger_is_an_empty_report_not_an_error() {
    let report = summarize(&[], &ReportOptions::default()).unwrap();
    assert_eq!(report.total.calls, 0);
    assert_eq!(report.total.usd_per_1000_calls, None);
    assert_eq!(report.total.cost_per_call_p50_usd, None);
    assert!(report.groups.is_empty());
    assert!(render_table(&report).contains("total"));
}

#[test]
fn bad_options_are_clear_errors() {
    let err = "week".parse::<GroupBy>().unwrap_err();
    assert!(err.to_string().contains("tag:<key>"), "{err}");
    let err = parse_time_bound("last tuesday").unwrap_err();
    assert!(err.to_string().contains("RFC 3339"), "{err}");
    let t = parse_time_bound("2026-11-02").unwrap();
    let err = summarize(&[], &ReportOptions::default().since(t).until(t)).unwrap_err();
    assert!(matches!(err, ReportError::EmptyRange { .. }), "{err:?}");
    let err = report_file("/no/such/ledger.jsonl", &ReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/no/such/ledger.jsonl"), "{err}");
}

/// A priced cost line of `item`: `quantity` `unit` at `rate` USD each, costing `cost`.
fn priced_line(
    item: &str,
    quantity: &str,
    unit: &str,
    rate: &str,
    cost: &str,
) -> serde_json::Value {
    json!({"item": item, "quantity": quantity, "unit": unit,
           "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": cost,
                     "provenance": {"source": "snapshot", "sku": null, "effective_date": null,
                                    "fetched_at": null, "note": null}}})
}

/// The two receipts of one `InvokeEndpointAsync` call `id` on `async-ep` (an
/// ml.m5.xlarge at 0.23 USD per instance-hour; data in and out at 0.016 USD per
/// GB, AWS's published rates): the submission (1 GB ÷ 1000 of input, 40 ms for
/// the request) and, when `settled` says how it ended, the settlement (10 s of
/// processing, 2 MB of output, 100 + 400 tokens, the client's note).
fn async_invocation(id: &str, submission_outcome: &str, settled: Option<&str>) -> Vec<Cost> {
    let receipt = |usage: serde_json::Value, lines: Vec<serde_json::Value>, cost: &str, notes| {
        serde_json::from_value::<Cost>(json!({
            "call_id": id, "at": "2026-11-05T10:00:00Z", "endpoint": "async-ep",
            "variant": "AllTraffic", "allocation": "processor_sharing", "usage": usage,
            "lines": lines, "cost_usd": cost, "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0", "notes": notes,
        }))
        .unwrap()
    };
    // Data in: 0.001 GB × 0.016 USD/GB = 0.000016 USD.
    let mut receipts = vec![receipt(
        json!({"operation": "InvokeEndpointAsync", "latency_us": 40_000, "bytes_in": 1_000_000,
               "bytes_out": 0, "outcome": submission_outcome}),
        vec![priced_line(
            "data_in",
            "0.001",
            "gigabytes",
            "0.016",
            "0.000016",
        )],
        "0.000016",
        json!([]),
    )];
    if let Some(outcome) = settled {
        // Compute: 10 s = 10/3600 h × 0.23 USD/h = 0.000638888888…, rounded to
        // 10⁻¹² as receipts are: 0.000638888889. Data out: 0.002 GB × 0.016 =
        // 0.000032. The settlement: 0.000638888889 + 0.000032 = 0.000670888889.
        receipts.push(receipt(
            json!({"operation": "InvokeEndpointAsync", "latency_us": 10_000_000,
                   "bytes_in": 0, "bytes_out": 2_000_000, "input_tokens": 100,
                   "output_tokens": 400, "outcome": outcome}),
            vec![
                priced_line(
                    "compute",
                    "0.002777777778",
                    "instance_hours",
                    "0.23",
                    "0.000638888889",
                ),
                priced_line("data_out", "0.002", "gigabytes", "0.016", "0.000032"),
            ],
            "0.000670888889",
            json!(["settlement of the async invocation submitted at 2026-11-05T10:00:00+00:00"]),
        ));
    }
    receipts
}

/// An asynchronous invocation's submission and settlement are one call, whether
/// the report reads them in memory, from a JSON Lines ledger or from Parquet.
#[tokio::test]
async fn an_async_invocation_is_one_call_with_both_receipts_cost() {
    let receipts = async_invocation("async-1", "ok", Some("ok"));
    assert!(!receipts[0].is_async_settlement() && receipts[1].is_async_settlement());
    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(&receipts, &options).unwrap();
    let total = &report.total;
    assert_eq!(total.calls, 1, "one invocation, two receipts");
    // 0.000016 (submission) + 0.000670888889 (settlement) = 0.000686888889 USD.
    assert_eq!(total.cost_usd, dec("0.000686888889"));
    // × 1000 ÷ 1 call.
    assert_eq!(total.usd_per_1000_calls, Some(dec("0.686888889")));
    // Latency: the submission's 40 ms (the client's request), not the 10 s of
    // processing on the settlement; both percentiles of the one call.
    assert_eq!(total.latency_p50_ms, Some(dec("40")));
    assert_eq!(total.latency_p95_ms, Some(dec("40")));
    // Cost per call: the settlement's, where the compute is billed.
    assert_eq!(total.cost_per_call_p50_usd, Some(dec("0.000670888889")));
    assert_eq!(total.cost_per_call_p95_usd, Some(dec("0.000670888889")));
    // Tokens, on the settlement: 0.000670888889 × 1000 ÷ (100 + 400) =
    // 0.001341777778 (rounded to 10⁻¹²).
    assert_eq!((total.input_tokens, total.output_tokens), (100, 400));
    assert_eq!(total.calls_with_tokens, 1);
    assert_eq!(total.usd_per_1000_tokens, Some(dec("0.001341777778")));
    assert_eq!((total.errors, total.unpriced_calls), (0, 0));
    let point = &report.over_time.series[0].points[0];
    assert_eq!((point.calls, point.cost_usd), (1, dec("0.000686888889")));

    // The same from a JSON Lines ledger, and from Parquet.
    assert_same_from_ledgers(&receipts, &options, &report).await;
}

/// `report` of `receipts` is what a JSON Lines ledger of them reports (read
/// without building most receipts), and a Parquet file of them.
async fn assert_same_from_ledgers(receipts: &[Cost], options: &ReportOptions, report: &Report) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("async.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for cost in receipts {
        ledger.try_record(cost).unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(&report_file(&path, options).unwrap(), report);
    #[cfg(feature = "parquet")]
    {
        let path = dir.path().join("async.parquet");
        let mut out = sagemeter::ledger::parquet::ParquetFileWriter::create(&path).unwrap();
        for cost in receipts {
            out.write(cost).unwrap();
        }
        out.finish().unwrap();
        assert_eq!(&report_files([&path], options).unwrap(), report);
    }
}

/// Submissions whose settlement is not in the ledgers leave their compute out of
/// every figure: the report says how many, and that cost figures are lower bounds;
/// settlements without their submission add cost without a call, and are said too.
#[test]
fn async_invocations_not_settled_in_the_ledgers_are_counted_and_said() {
    let mut receipts = async_invocation("async-1", "ok", Some("ok"));
    receipts.extend(async_invocation("async-2", "ok", None));
    receipts.extend(async_invocation("async-3", "ok", None));
    // A submission that failed after SageMaker accepted it is queued, and no
    // settlement will ever come: its compute is in no figure either. (A failed
    // submission SageMaker did not accept has no receipt at all.)
    receipts.push(accepted_then_failed_submission(
        "async-4",
        "2026-11-05T10:00:00Z",
    ));
    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(&receipts, &options).unwrap();
    assert_eq!(report.total.calls, 4);
    assert_eq!(report.total.unsettled_async_calls, 3);
    assert_eq!(report.groups[0].unsettled_async_calls, 3);
    let json = serde_json::to_value(&report.total).unwrap();
    assert_eq!(json["unsettled_async_calls"], 3);
    assert!(json.get("settlements_without_submission").is_none());
    assert!(
        render_table(&report).contains(
            "note: 3 asynchronous invocation(s) submitted have no settlement in these ledgers"
        ),
        "{}",
        render_table(&report)
    );

    // A settling process's ledger: settlements only, no call counted.
    let settled: Vec<Cost> = async_invocation("async-5", "ok", Some("ok"))
        .into_iter()
        .filter(Cost::is_async_settlement)
        .collect();
    let report = summarize(&settled, &options).unwrap();
    assert_eq!(report.total.calls, 0);
    assert_eq!(report.total.settlements_without_submission, 1);
    assert!(render_table(&report).contains("note: 1 settlement(s) of asynchronous invocations"));

    // Submitted with one tag, settled with another (another client's default
    // tags): by tag, one group has the submission and the other the settlement;
    // the total says one of each, not that they cancel out.
    let mut split = async_invocation("async-6", "ok", Some("ok"));
    split[0].tags.insert("team".into(), "a".into());
    split[1].tags.insert("team".into(), "b".into());
    let by_tag = ReportOptions::new("tag:team".parse().unwrap());
    let report = summarize(&split, &by_tag).unwrap();
    assert_eq!(report.total.unsettled_async_calls, 1);
    assert_eq!(report.total.settlements_without_submission, 1);
}

/// The submission receipt of `InvokeEndpointAsync` call `id` on `async-ep` that
/// failed after SageMaker accepted it (a 2XX answer cut off, then retries that
/// failed), as the client writes it: outcome `error`, its note saying the job's
/// compute can never be on a settlement receipt. 1 MiB of input: 2^20 B = 2^-10 GB
/// (AWS's GB of data processed is 2^30 B) × 0.016 USD/GB = 0.000015625 USD.
fn accepted_then_failed_submission(id: &str, at: &str) -> Cost {
    serde_json::from_value(json!({
        "call_id": id, "at": at, "endpoint": "async-ep",
        "variant": "AllTraffic", "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpointAsync", "latency_us": 40_000,
                  "bytes_in": 1_048_576, "bytes_out": 0, "outcome": "error"},
        "lines": [priced_line("data_in", "0.0009765625", "gigabytes", "0.016", "0.000015625")],
        "cost_usd": "0.000015625", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "notes": ["the submission failed after SageMaker accepted it (a 2XX answer that could \
                   not be read): queued, it is billed as submitted; its output location is \
                   unknown, so the job's compute (AsyncInf instance-hours) cannot be metered \
                   on a settlement receipt"],
    }))
    .unwrap()
}

/// A submission SageMaker accepted before it failed is queued: the job runs
/// (on an ml.m5.xlarge at 0.23 USD/h, 10 minutes is 0.23 × 10/60 =
/// 0.038333… USD) but no settlement will ever bill it, so the report's
/// 0.000015625 USD is a lower bound and says so, whichever reader reads it; a
/// settlement without its submission (another invocation's) does not make up
/// for it.
#[tokio::test]
async fn an_async_submission_accepted_then_failed_is_never_settled_and_said() {
    let failed = accepted_then_failed_submission("async-1", "2026-11-05T10:00:00Z");
    // Another invocation's settlement, whose submission is in another ledger.
    let stray: Vec<Cost> = async_invocation("async-2", "ok", Some("ok"))
        .into_iter()
        .filter(Cost::is_async_settlement)
        .collect();
    let options = ReportOptions::new(GroupBy::Endpoint);
    for receipts in [vec![failed.clone()], [vec![failed], stray.clone()].concat()] {
        let report = summarize(&receipts, &options).unwrap();
        let total = &report.total;
        assert_eq!((total.calls, total.errors), (1, 1));
        assert_eq!(total.unsettled_async_calls, 1, "{total:?}");
        let table = render_table(&report);
        assert!(
            table.contains(
                "note: 1 asynchronous invocation(s) submitted have no settlement in these \
                 ledgers: their compute (billed at settlement) is not counted, so cost figures \
                 are lower bounds"
            ),
            "{table}"
        );
        if receipts.len() == 1 {
            assert_eq!(total.cost_usd, dec("0.000015625"));
            assert_eq!(total.settlements_without_submission, 0);
        } else {
            // 0.000015625 + the settlement's 0.000670888889 = 0.000686513889.
            assert_eq!(total.cost_usd, dec("0.000686513889"));
            assert_eq!(total.settlements_without_submission, 1);
        }

        // The same from a JSON Lines ledger, and from Parquet.
        assert_same_from_ledgers(&receipts, &options, &report).await;
    }

    // A submission its caller dropped once SageMaker accepted it (outcome ok)
    // lost its pending invocation: never settled either, so the stray
    // settlement does not make up for it.
    let mut dropped = accepted_then_failed_submission("async-3", "2026-11-05T10:00:00Z");
    dropped.usage.outcome = sagemeter::usage::Outcome::Ok;
    dropped.notes = vec![
        "submission dropped by the caller after SageMaker accepted it, before its receipt was \
         made: billed as submitted; its pending invocation was lost with it, so its compute \
         (AsyncInf instance-hours) is never settled on a receipt"
            .to_owned(),
    ];
    let report = summarize(&[vec![dropped], stray].concat(), &options).unwrap();
    assert_eq!(report.total.unsettled_async_calls, 1);
    assert_eq!(report.total.settlements_without_submission, 1);
}

/// A submission SageMaker accepted twice (its first 202 cut off, the SDK's
/// retry accepted again) queued two jobs: the second is settled, the first
/// never is, its compute in no figure. The report counts one invocation
/// unsettled, and the settlement as its submission's (not one without a
/// submission), from receipts as from ledgers.
#[tokio::test]
async fn an_async_submission_accepted_twice_has_one_job_never_settled() {
    let mut receipts = async_invocation("async-1", "ok", Some("ok"));
    receipts[0].notes = vec![
        "SageMaker accepted the submission more than once (a 2XX answer that could not be \
         read, then a retry): each accepted attempt queued a job that runs, but only the last \
         one's output location is known, so the other jobs' compute (AsyncInf instance-hours) \
         and data out are never settled on a receipt"
            .to_owned(),
    ];
    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(&receipts, &options).unwrap();
    let total = &report.total;
    assert_eq!(total.calls, 1);
    assert_eq!(total.unsettled_async_calls, 1, "{total:?}");
    assert_eq!(total.settlements_without_submission, 0, "{total:?}");
    assert_same_from_ledgers(&receipts, &options, &report).await;
}

/// An asynchronous invocation is an error once, whether its submission failed
/// (it has no settlement) or its inference did (its settlement says so).
#[tokio::test]
async fn a_failed_async_invocation_is_one_error_in_one_call() {
    let mut receipts = async_invocation("async-1", "ok", Some("error"));
    receipts.push(accepted_then_failed_submission(
        "async-2",
        "2026-11-05T10:00:00Z",
    ));
    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(&receipts, &options).unwrap();
    assert_eq!((report.total.calls, report.total.errors), (2, 2));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("async.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for cost in &receipts {
        ledger.try_record(cost).unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(report_file(&path, &options).unwrap(), report);
}

/// A receipt of one `operation` call on `chat` at `cost` USD (a compute line),
/// ended `outcome`, with a response stream's `parts` and the token counts its
/// usage holds.
fn call_with_tokens(
    id: &str,
    operation: &str,
    outcome: &str,
    parts: Option<u64>,
    tokens: (Option<u64>, Option<u64>),
    cost: &str,
) -> Cost {
    let mut usage = json!({"operation": operation, "latency_us": 100_000, "bytes_in": 100,
                           "bytes_out": 200, "outcome": outcome});
    if let Some(parts) = parts {
        usage["parts"] = json!(parts);
    }
    if let Some(input) = tokens.0 {
        usage["input_tokens"] = json!(input);
    }
    if let Some(output) = tokens.1 {
        usage["output_tokens"] = json!(output);
    }
    serde_json::from_value(json!({
        "call_id": id, "at": "2026-11-05T09:00:00Z", "endpoint": "chat",
        "variant": "AllTraffic", "allocation": "processor_sharing", "usage": usage,
        "lines": [priced_line("compute", "0.001", "instance_hours", "1", cost)],
        "cost_usd": cost, "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0",
    }))
    .unwrap()
}

/// The same report from the receipts in memory, from a JSON Lines ledger and
/// from Parquet: each reader tells a call answered with HTTP 2XX alike.
async fn report_everywhere(receipts: &[Cost]) -> Report {
    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(receipts, &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for cost in receipts {
        ledger.try_record(cost).unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(report_file(&path, &options).unwrap(), report);
    #[cfg(feature = "parquet")]
    {
        let path = dir.path().join("calls.parquet");
        let mut out = sagemeter::ledger::parquet::ParquetFileWriter::create(&path).unwrap();
        for cost in receipts {
            out.write(cost).unwrap();
        }
        out.finish().unwrap();
        assert_eq!(report_files([&path], &options).unwrap(), report);
    }
    report
}

/// Only a call answered with HTTP 2XX reports tokens: the token figures and the
/// table's note count those, not every call. A model error, and a failed
/// asynchronous inference whatever counts its settlement holds, are no calls that
/// did not report them; a response stream whose 200 arrived is answered however it
/// ended; an asynchronous invocation is one call, answered by its settlement.
#[tokio::test]
async fn the_token_note_counts_only_the_calls_answered_2xx() {
    // Six calls:
    // 1, 2. InvokeEndpoint, answered: 100 in, 20 out, 0.001 USD each;
    // 3. a stream whose 200 arrived (3 parts), then dropped by its caller
    //    (cancelled): answered, 50 in, 10 out, 0.002 USD;
    // 4. an asynchronous invocation, accepted and settled: 100 in, 400 out on the
    //    settlement (0.000016 + 0.000670888889 USD, see `async_invocation`);
    // 5. a model error: no tokens, 0.0005 USD;
    // 6. an asynchronous invocation whose inference failed: its settlement holds
    //    100 in, 400 out (counted from its failure output), charged none.
    let receipts = |first_two_input: Option<u64>| {
        let mut receipts = vec![
            call_with_tokens(
                "c1",
                "InvokeEndpoint",
                "ok",
                None,
                (first_two_input, Some(20)),
                "0.001",
            ),
            call_with_tokens(
                "c2",
                "InvokeEndpoint",
                "ok",
                None,
                (first_two_input, Some(20)),
                "0.001",
            ),
            call_with_tokens(
                "c3",
                "InvokeEndpointWithResponseStream",
                "cancelled",
                Some(3),
                (Some(50), Some(10)),
                "0.002",
            ),
            call_with_tokens(
                "c5",
                "InvokeEndpoint",
                "error",
                None,
                (None, None),
                "0.0005",
            ),
        ];
        receipts.extend(async_invocation("c4", "ok", Some("ok")));
        receipts.extend(async_invocation("c6", "ok", Some("error")));
        receipts
    };

    // Every answered call reported both counts.
    let report = report_everywhere(&receipts(Some(100))).await;
    let total = &report.total;
    // Calls 1–6; answered: 1, 2, 3 and 4 (by its settlement); errors: 5 and 6.
    assert_eq!((total.calls, total.answered_calls), (6, 4));
    assert_eq!((total.errors, total.cancelled), (2, 1));
    // In: 100 + 100 + 50 + 100 = 350; out: 20 + 20 + 10 + 400 = 450 (not call
    // 6's 100 and 400).
    assert_eq!((total.input_tokens, total.output_tokens), (350, 450));
    assert_eq!(
        (
            total.calls_with_tokens,
            total.calls_with_input_tokens,
            total.calls_with_output_tokens
        ),
        (4, 4, 4)
    );
    // (0.001 + 0.001 + 0.002 + 0.000670888889) × 1000 ÷ 800 tokens =
    // 4.670888889 ÷ 800 = 0.00583861111125, rounded to 10⁻¹²: 0.005838611111.
    assert_eq!(total.usd_per_1000_tokens, Some(dec("0.005838611111")));
    let json = serde_json::to_value(total).unwrap();
    assert_eq!(json["answered_calls"], 4);
    let table = render_table(&report);
    assert!(!table.contains("tokens reported by"), "{table}");

    // Calls 1 and 2 reported output only (TGI).
    let report = report_everywhere(&receipts(None)).await;
    let total = &report.total;
    // In: 50 + 100 = 150, from calls 3 and 4; out: 450, from all four.
    assert_eq!((total.input_tokens, total.output_tokens), (150, 450));
    // Over calls 3 and 4, with both: (0.002 + 0.000670888889) × 1000 ÷ (60 + 500)
    // = 2.670888889 ÷ 560 = 0.0047694444446…, rounded to 10⁻¹²: 0.004769444445.
    assert_eq!(total.usd_per_1000_tokens, Some(dec("0.004769444445")));
    let table = render_table(&report);
    assert!(
        table.contains(
            "note: input tokens reported by 2 of 4 calls answered with HTTP 2XX, output tokens \
             by 4: each sum is of those calls; USD/1k tokens is over the 2 that reported both\n"
        ),
        "{table}"
    );
}

/// `call` as made by a client of `region` (`None`: a receipt written before
/// receipts carried one).
fn in_region(call: &Call, id: usize, region: Option<&str>) -> Cost {
    let mut cost = call.cost(id);
    cost.region = region.map(Into::into);
    cost
}

#[rustfmt::skip]
const TWO_REGIONS: [Call; 3] = [
    // Two deployments named `demo-realtime`, one per region, in one ledger.
    Call { at: "2026-11-01T09:00:00Z", endpoint: "demo-realtime", variant: "A", cost_usd: "0.010", latency_us: 100_000, tokens: None, outcome: "ok", unpriced: false, team: None },
    Call { at: "2026-11-01T09:10:00Z", endpoint: "demo-realtime", variant: "A", cost_usd: "0.020", latency_us: 200_000, tokens: None, outcome: "ok", unpriced: false, team: None },
    Call { at: "2026-11-01T09:20:00Z", endpoint: "demo-realtime", variant: "A", cost_usd: "0.030", latency_us: 300_000, tokens: None, outcome: "ok", unpriced: false, team: None },
];

/// The first two calls in us-east-1, the third in eu-west-1.
fn two_regions() -> Vec<Cost> {
    let regions = ["us-east-1", "us-east-1", "eu-west-1"];
    TWO_REGIONS
        .iter()
        .zip(regions)
        .enumerate()
        .map(|(i, (call, region))| in_region(call, i + 1, Some(region)))
        .collect()
}

#[tokio::test]
async fn an_endpoint_name_in_two_regions_is_two_groups_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for cost in two_regions() {
        ledger.try_record(&cost).unwrap();
    }
    ledger.shutdown().await.unwrap();

    let options = ReportOptions::new(GroupBy::Endpoint);
    let report = summarize(&two_regions(), &options).unwrap();
    assert_eq!(report_file(&path, &options).unwrap(), report);
    // Both cost 0.030: by name.
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["eu-west-1/demo-realtime", "us-east-1/demo-realtime"]);
    assert_eq!(report.regions, ["eu-west-1", "us-east-1"]);

    let us = group(&report, "us-east-1/demo-realtime");
    assert_eq!(us.calls, 2);
    // 0.010 + 0.020
    assert_eq!(us.cost_usd, dec("0.030"));
    // 0.030 × 1000 / 2
    assert_eq!(us.usd_per_1000_calls, Some(dec("15")));
    // sorted 0.010 0.020: p50 = rank ⌈0.5·2⌉ = 1, p95 = rank ⌈1.9⌉ = 2
    assert_eq!(us.cost_per_call_p50_usd, Some(dec("0.010")));
    assert_eq!(us.cost_per_call_p95_usd, Some(dec("0.020")));
    assert_eq!(us.latency_p50_ms, Some(dec("100")));
    assert_eq!(us.latency_p95_ms, Some(dec("200")));

    let eu = group(&report, "eu-west-1/demo-realtime");
    assert_eq!(eu.calls, 1);
    assert_eq!(eu.cost_usd, dec("0.030"));
    // 0.030 × 1000 / 1
    assert_eq!(eu.usd_per_1000_calls, Some(dec("30")));
    assert_eq!(eu.cost_per_call_p50_usd, Some(dec("0.030")));
    assert_eq!(eu.cost_per_call_p95_usd, Some(dec("0.030")));
    assert_eq!(eu.latency_p50_ms, Some(dec("300")));

    // All calls: 0.010 + 0.020 + 0.030.
    assert_eq!(report.total.calls, 3);
    assert_eq!(report.total.cost_usd, dec("0.060"));

    // By variant: the region first too.
    let by_variant = summarize(&two_regions(), &ReportOptions::new(GroupBy::Variant)).unwrap();
    assert_eq!(group(&by_variant, "us-east-1/demo-realtime/A").calls, 2);
    assert_eq!(group(&by_variant, "eu-west-1/demo-realtime/A").calls, 1);

    // By region.
    let by_region: GroupBy = "region".parse().unwrap();
    let options = ReportOptions::new(by_region);
    let by_region = summarize(&two_regions(), &options).unwrap();
    assert_eq!(report_file(&path, &options).unwrap(), by_region);
    assert_eq!(group(&by_region, "us-east-1").cost_usd, dec("0.030"));
    assert_eq!(group(&by_region, "eu-west-1").calls, 1);

    // The variants whose accrual was priced from the snapshot: each region's.
    let snapshot_accrual: sagemeter::billing::Accrual = serde_json::from_value(json!({
        "accrued_usd": "0.1", "allocated_usd": "0.05", "utilisation": "0.5",
        "priced_from": [{"charge": "capacity", "price_source": "snapshot"}]
    }))
    .unwrap();
    let with_accrual: Vec<Cost> = two_regions()
        .into_iter()
        .map(|mut cost| {
            cost.accrual = Some(snapshot_accrual.clone());
            cost
        })
        .collect();
    let report = summarize(&with_accrual, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert_eq!(report.accrual_fallbacks.len(), 2);
    assert!(
        render_table(&report).contains(
            "note: accrual priced from the bundled snapshot for: eu-west-1/demo-realtime/A, \
             us-east-1/demo-realtime/A\n"
        ),
        "{}",
        render_table(&report)
    );

    // One region, and receipts older than regions on receipts: one group, named
    // as before.
    let one = [
        in_region(&TWO_REGIONS[0], 1, Some("us-east-1")),
        in_region(&TWO_REGIONS[1], 2, None),
    ];
    let report = summarize(&one, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["demo-realtime"]);
    assert_eq!(report.groups[0].calls, 2);
    assert_eq!(report.regions, ["us-east-1"]);

    // A rolling ledger from before and after receipts carried a region, its
    // accrual priced from the snapshot throughout: one variant, one fallback,
    // us-east-1's, last seen at the later receipt (09:10), not one per region.
    let rolled = [
        in_region(&TWO_REGIONS[0], 1, None),
        in_region(&TWO_REGIONS[1], 2, Some("us-east-1")),
    ]
    .map(|mut cost| {
        cost.accrual = Some(snapshot_accrual.clone());
        cost
    });
    for rolled in [rolled.to_vec(), rolled.iter().rev().cloned().collect()] {
        let report = summarize(&rolled, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        assert_eq!(report.regions, ["us-east-1"]);
        assert_eq!(
            report.accrual_fallbacks.len(),
            1,
            "{:?}",
            report.accrual_fallbacks
        );
        let fallback = &report.accrual_fallbacks[0];
        assert_eq!(fallback.region.as_deref(), Some("us-east-1"));
        assert_eq!(
            (fallback.endpoint.as_str(), fallback.variant.as_deref()),
            ("demo-realtime", Some("A"))
        );
        assert_eq!(fallback.last_at.to_rfc3339(), "2026-11-01T09:10:00+00:00");
        assert_eq!(
            serde_json::to_value(&report).unwrap()["accrual_fallbacks"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

/// A per-token endpoint's calls not answered with HTTP 2XX, metered through the
/// client and reported from its ledger: a model error (HTTP 424) and a call
/// cancelled before its answer came answered no tokens, and their receipts' token
/// lines are 0 tokens at $0, priced. The report counts no call with unpriced lines
/// (not 2 of 3, lower bounds), and the token charges are the answered call's alone.
#[tokio::test]
async fn a_model_error_on_a_per_token_endpoint_is_not_counted_unpriced() {
    use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
    use aws_sdk_sagemakerruntime::primitives::Blob;
    use sagemeter::billing::{LineItem, UsageCharges};
    use sagemeter::usage::Outcome;

    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    // $0.0005 per 1,000 input tokens, $0.0015 per 1,000 output tokens.
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .usage_charges(
            "rt",
            UsageCharges::default().per_1000_tokens(dec("0.0005"), dec("0.0015")),
        )
        .sink(ledger.clone())
        .build()
        .unwrap();
    let invoke = |client: &sagemeter::Client| {
        client
            .invoke_endpoint()
            .endpoint_name("rt")
            .content_type("application/json")
            .body(Blob::new("{}"))
            .send()
    };
    // Answered: the fake's body reports 12 tokens in and 30 out.
    invoke(&client).await.unwrap();
    // Cancelled before its answer came: dropped while the model holds it.
    fake.hold();
    let held = tokio::spawn(invoke(&client));
    fake.wait_for_invocations(2).await;
    held.abort();
    assert!(held.await.unwrap_err().is_cancelled());
    fake.release();
    // A model error.
    fake.fail_invocations(424, "ModelError", "boom");
    invoke(&client).await.unwrap_err();
    ledger.shutdown().await.unwrap();

    let report = report_file(&path, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    let total = &report.total;
    assert_eq!(
        (total.calls, total.errors, total.cancelled),
        (3, 1, 1),
        "{total:?}"
    );
    // Every line priced: no call is a lower bound for want of a token count.
    assert_eq!(
        (total.unpriced_calls, total.unpriced_share),
        (0, Decimal::ZERO)
    );
    let table = render_table(&report);
    assert!(!table.contains("unpriced lines"), "{table}");

    let receipts = read_all(&path).unwrap().records;
    let outcomes: Vec<_> = receipts.iter().map(|c| c.usage.outcome).collect();
    assert_eq!(outcomes, [Outcome::Ok, Outcome::Cancelled, Outcome::Error]);
    for cost in &receipts[1..] {
        assert!(cost.is_fully_priced(), "{:#?}", cost.lines);
        for line in cost
            .lines
            .iter()
            .filter(|l| matches!(l.item, LineItem::InputTokens | LineItem::OutputTokens))
        {
            assert_eq!(
                (line.quantity, line.cost_usd()),
                (Decimal::ZERO, Some(Decimal::ZERO)),
                "{line:?}"
            );
        }
    }
    // The token charges of the ledger: the answered call's 12 × 0.0005 / 1,000 =
    // 0.000006 USD in and 30 × 0.0015 / 1,000 = 0.000045 USD out, 0.000051 USD.
    let tokens_usd: Decimal = receipts
        .iter()
        .flat_map(|c| &c.lines)
        .filter(|l| matches!(l.item, LineItem::InputTokens | LineItem::OutputTokens))
        .map(|l| l.cost_usd().unwrap())
        .sum();
    assert_eq!(tokens_usd, dec("0.000051"));
}
