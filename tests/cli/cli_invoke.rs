//! `sagemeter invoke`, run as a process against the local emulator (a private,
//! seeded moto server): receipts, summaries that add up, concurrency, both billing
//! models, and the error exits.
//!
//! The emulator has no Price List API and these tests point `AWS_ENDPOINT_URL_PRICING`
//! at a port where nothing listens, so every price comes from the bundled snapshot
//! (us-east-1: ml.m5.xlarge $0.23/h, serverless 3 GB $0.00006/s, data $0.016/GB),
//! and the receipts must say `snapshot`.
//!
//! Run: `cargo test --features cli --test cli cli_invoke::`.

use super::clean_env::{self, refused_url};
use crate::support::by_hand::r12;
use crate::support::emulator::{Emulator, REALTIME_ENDPOINT, SERVERLESS_ENDPOINT};
use assert_cmd::Command;
use predicates::prelude::*;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// `sagemeter` with a clean AWS environment pointing at `endpoint_url`: static test
/// credentials, us-east-1, no profile files, pricing unreachable.
fn sagemeter_at(endpoint_url: &str) -> Command {
    let mut cmd = Command::from_std(clean_env::sagemeter(endpoint_url, &refused_url()));
    cmd.timeout(Duration::from_secs(120));
    cmd
}

fn sagemeter() -> Command {
    sagemeter_at(&Emulator::shared().endpoint_url)
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a decimal ({e}): {v}"))
}

/// The `--json` output: (receipt lines, summary).
fn parse_json_lines(stdout: &[u8]) -> (Vec<Value>, Value) {
    let text = String::from_utf8_lossy(stdout);
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = lines.pop().expect("at least a summary line");
    assert_eq!(summary["type"], "summary", "last line: {summary}");
    for line in &lines {
        assert_eq!(line["type"], "receipt", "{line}");
    }
    (lines, summary)
}

/// `sagemeter report ARGS --json`, which must succeed, as JSON.
fn report_json(args: &[&str]) -> Value {
    let mut report = sagemeter_at(&refused_url());
    let done = report
        .arg("report")
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&done.get_output().stdout).unwrap()
}

/// Sources of every priced line of a receipt.
fn sources(receipt: &Value) -> BTreeSet<String> {
    receipt["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            assert_eq!(l["price"]["status"], "priced", "every line priced: {l}");
            l["price"]["provenance"]["source"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn five_calls_print_five_receipts_and_a_summary_that_adds_up() {
    let out = sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"five"}"#,
        ])
        .args(["-n", "5", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, summary) = parse_json_lines(&out.stdout);

    assert_eq!(receipts.len(), 5);
    let calls: BTreeSet<u64> = receipts
        .iter()
        .map(|r| r["call"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, (1..=5).collect());
    let mut total = Decimal::ZERO;
    for r in &receipts {
        assert_eq!(r["endpoint"], REALTIME_ENDPOINT);
        assert_eq!(r["variant"], "AllTraffic");
        assert_eq!(r["billing"]["kind"], "instance");
        assert_eq!(r["billing"]["instance_type"], "ml.m5.xlarge");
        // Pricing unreachable: the bundled snapshot priced the call, and says so.
        assert_eq!(sources(r), BTreeSet::from(["snapshot".to_owned()]), "{r}");
        let cost = dec(&r["cost_usd"]);
        assert!(cost > Decimal::ZERO, "a priced call costs something: {r}");
        // Compute = latency h x $0.23/h: one call at a time on 2 instances is
        // served at full speed, min(1, 2/1) = 1 instance for its latency.
        let compute = &r["lines"][0];
        assert_eq!(compute["item"], "compute");
        assert_eq!(
            dec(&compute["price"]["usd_per_unit"]),
            "0.23".parse().unwrap()
        );
        let latency_us = r["usage"]["latency_us"].as_u64().unwrap();
        // The sharing clock keeps 10^-18 h (truncated).
        let hours = (Decimal::from(latency_us) / Decimal::from(3_600_000_000u64))
            .round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero);
        assert_eq!(dec(&compute["quantity"]), hours, "{r}");
        // A shared allocation is rounded down to 10^-12 USD (shares never add up
        // to more than the instances cost).
        assert_eq!(
            dec(&compute["price"]["cost_usd"]),
            (hours * Decimal::new(23, 2))
                .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::ToZero),
            "{r}"
        );
        total += cost;
    }
    // Sequential calls: the last receipt's running total is everything.
    let last = receipts.iter().max_by_key(|r| r["call"].as_u64()).unwrap();
    assert_eq!(dec(&last["running_client_usd"]), total);

    assert_eq!(summary["calls"], 5);
    assert_eq!(summary["failed"], 0);
    assert_eq!(dec(&summary["total_cost_usd"]), total, "{summary}");
    // per 1,000 = total x 1000 / 5, rounded to 10^-12.
    let per_1000 = (total * Decimal::from(1000) / Decimal::from(5)).round_dp(12);
    assert_eq!(dec(&summary["cost_per_1000_calls_usd"]), per_1000);
    assert_eq!(summary["by_price_source"]["snapshot"], 5, "{summary}");
    assert!(summary["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(
        summary["latency_ms"]["p95"].as_f64().unwrap()
            >= summary["latency_ms"]["p50"].as_f64().unwrap()
    );
    assert!(
        summary["price_notes"].to_string().contains("snapshot"),
        "{summary}"
    );
    assert_eq!(
        summary["endpoint_profile"]["variants"][0]["billing"]["instance_count"],
        2
    );
    // Receipts never carry the payload.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("chat.completion"),
        "payload leaked: {stdout}"
    );
    assert!(!stdout.contains("five"), "request body leaked: {stdout}");
}

#[test]
fn twenty_calls_four_at_a_time_share_one_client_and_add_up() {
    let out = sagemeter()
        .args([
            "invoke",
            SERVERLESS_ENDPOINT,
            "--body",
            r#"{"inputs":"concurrent"}"#,
        ])
        .args(["-n", "20", "--concurrency", "4", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, summary) = parse_json_lines(&out.stdout);

    assert_eq!(receipts.len(), 20);
    let calls: BTreeSet<u64> = receipts
        .iter()
        .map(|r| r["call"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, (1..=20).collect(), "every call exactly once");
    let total: Decimal = receipts.iter().map(|r| dec(&r["cost_usd"])).sum();
    assert!(total > Decimal::ZERO);
    // One shared client: the highest running total is the sum of all receipts.
    let highest = receipts
        .iter()
        .map(|r| dec(&r["running_client_usd"]))
        .max()
        .unwrap();
    assert_eq!(highest, total);
    assert_eq!(dec(&summary["total_cost_usd"]), total);
    assert_eq!(summary["calls"], 20);

    for r in &receipts {
        // Serverless: billed seconds (latency rounded up to the ms) x $0.00006/s at 3 GB.
        assert_eq!(r["billing"]["kind"], "serverless", "{r}");
        assert_eq!(r["billing"]["memory_mb"], 3072);
        let compute = &r["lines"][0];
        assert_eq!(compute["unit"], "seconds");
        assert_eq!(
            dec(&compute["price"]["usd_per_unit"]),
            "0.00006".parse().unwrap()
        );
        let latency_us = r["usage"]["latency_us"].as_u64().unwrap();
        let billed_ms = latency_us.div_ceil(1000);
        assert_eq!(
            dec(&compute["quantity"]),
            Decimal::new(billed_ms as i64, 3),
            "{r}"
        );
        // billed ms / 1000 x 0.00006, to 10^-12 USD.
        assert_eq!(
            dec(&compute["price"]["cost_usd"]),
            r12(Decimal::new(billed_ms as i64, 3) * Decimal::new(6, 5)),
            "{r}"
        );
        assert_eq!(sources(r), BTreeSet::from(["snapshot".to_owned()]));
    }
}

#[test]
fn two_hundred_calls_sixteen_at_a_time_never_allocate_more_than_the_instances_cost() {
    let out = sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"concurrent"}"#,
        ])
        .args(["-n", "200", "--concurrency", "16", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, summary) = parse_json_lines(&out.stdout);
    assert_eq!(receipts.len(), 200);
    // Processor sharing: 16 calls in flight on the endpoint's 2 instances share
    // them (each gets min(1, 2/16) of an instance while all 16 are in flight), so
    // the compute on the receipts never adds up to more than what the instances
    // accrued while metered: utilisation at most 1.
    let accrual = &summary["accrual"];
    let utilisation = dec(&accrual["utilisation"]);
    assert!(
        utilisation > Decimal::ZERO && utilisation <= Decimal::ONE,
        "{summary}"
    );
    let compute: Decimal = receipts
        .iter()
        .map(|r| {
            assert_eq!(r["allocation"], "processor_sharing", "{r}");
            dec(&r["lines"][0]["price"]["cost_usd"])
        })
        .sum();
    assert!(
        compute <= dec(&accrual["accrued_usd"]),
        "{compute} > {accrual}"
    );
}

#[test]
fn text_output_shows_the_response_once_each_receipt_and_a_summary() {
    let out = sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"text"}"#,
            "-n",
            "3",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);

    assert!(
        stdout.starts_with("endpoint demo-realtime (us-east-1): AllTraffic on 2 x ml.m5.xlarge"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("response of call").count(), 1, "{stdout}");
    assert_eq!(
        stdout.matches("\"object\":\"chat.completion\"").count(),
        1,
        "{stdout}"
    );
    let receipts: Vec<&str> = stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(receipts.len(), 3, "{stdout}");
    for line in receipts {
        assert!(
            line.contains("for InvokeEndpoint on demo-realtime/AllTraffic"),
            "{line}"
        );
        assert!(
            line.ends_with("[snapshot]"),
            "each line names its price source: {line}"
        );
    }
    for expected in [
        "calls            3 (0 failed)",
        "total cost       $",
        "per 1,000 calls  $",
        "p50 ",
        "p95 ",
        "price source     snapshot 3",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}`: {stdout}");
    }
}

#[test]
fn the_body_can_come_from_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    let body = r#"{"messages":[{"role":"user","content":"from a file"}]}"#;
    std::fs::write(&path, body).unwrap();
    let out = sagemeter()
        .args(["invoke", SERVERLESS_ENDPOINT, "--json", "--body"])
        .arg(format!("@{}", path.display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, _) = parse_json_lines(&out.stdout);
    assert_eq!(receipts[0]["usage"]["bytes_in"], body.len());

    let stdin_body = r#"{"inputs":"from stdin, a little longer"}"#;
    let out = sagemeter()
        .args(["invoke", SERVERLESS_ENDPOINT, "--json", "--body", "-"])
        .write_stdin(stdin_body)
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, _) = parse_json_lines(&out.stdout);
    assert_eq!(receipts[0]["usage"]["bytes_in"], stdin_body.len());
}

#[test]
fn verbose_shows_the_cost_log_line_of_every_call_on_stderr() {
    sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"log"}"#,
            "-n",
            "2",
            "-v",
        ])
        .assert()
        .success()
        .stderr(predicate::function(|e: &str| {
            e.matches("sagemaker call cost").count() == 2
                && e.matches("price_source=\"snapshot\"").count() == 2
        }));
}

#[test]
fn an_unknown_endpoint_exits_1_naming_it_before_sending_anything() {
    sagemeter()
        .args(["invoke", "no-such-endpoint", "--body", "{}", "-n", "3"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("error: unknown endpoint `no-such-endpoint`")
                .and(predicate::str::contains("nothing was sent")),
        );
}

#[test]
fn a_process_budget_refuses_the_call_that_would_not_fit_before_sending_it() {
    // $0.000002 a day for the endpoint, each call reserved at all of it before it
    // is sent: the first fits, the second (what the first cost + 0.000002) cannot.
    let run = |more: &[&str]| {
        sagemeter()
            .args(["invoke", REALTIME_ENDPOINT, "--body", "{}"])
            .args([
                "--budget",
                "endpoint=0.000002/day",
                "--estimate",
                "0.000002",
            ])
            .args(more)
            .assert()
            .code(1)
            .get_output()
            .clone()
    };
    let output = run(&["-n", "5", "--json"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "receipt");
    assert!(dec(&lines[0]["cost_usd"]) > Decimal::ZERO);
    assert!(
        lines[0].get("running_fleet_usd").is_none(),
        "no fleet: {}",
        lines[0]
    );
    assert_eq!(lines[1]["type"], "error");
    let error = lines[1]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "budget exceeded for endpoint demo-realtime per day: the call's estimate of \
             $0.000002 does not fit (limit $0.000002, spent $0."
        ) && error.contains("the request was not sent")
            // Which depends on whether the first call (its latency) cost the whole
            // $0.000002: both are the CLI's (see failure.rs's unit test).
            && (error.ends_with("; --estimate states what each call is assumed to cost")
                || error.ends_with("; the limit is spent for this period")),
        "{error}"
    );
    // The run stops at the refusal: one call made and billed, the refused one
    // never sent (nor the three after it).
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["calls"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["not_sent"], 4, "{summary}");
    assert_eq!(summary["total_cost_usd"], lines[0]["cost_usd"], "{summary}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 refused before sending (3 not sent after the failure); first failure: budget exceeded"),
        "{stderr}"
    );
    // In text, the refused call says it was not sent, not that it failed.
    let output = run(&["-n", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("#2    REFUSED (not sent)"), "{stdout}");
    assert!(stdout.contains("calls            1 (0 failed)"), "{stdout}");
}

#[test]
fn invalid_arguments_exit_2_and_send_nothing() {
    // Nothing listens at this endpoint URL: had anything been sent, the exit would be 1.
    let nowhere = refused_url();
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("@{}", dir.path().join("missing.json").display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["invoke", REALTIME_ENDPOINT], // no --body
        vec!["invoke", "--body", "{}"],    // no endpoint
        vec!["invoke", REALTIME_ENDPOINT, "--body", "{}", "-n", "0"], // zero calls
        vec!["invoke", REALTIME_ENDPOINT, "--body", "{}", "-n", "lots"], // not a number
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--concurrency",
            "0",
        ],
        vec!["invoke", "bad_name!", "--body", "{}"], // not an endpoint name
        // One key, two values: which one would the calls carry?
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--tag",
            "team=a",
            "--tag",
            "team=b",
        ],
        vec!["invoke", REALTIME_ENDPOINT, "--body", "{not json"], // JSON content type
        vec!["invoke", REALTIME_ENDPOINT, "--body", &missing],    // unreadable file
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--no-such-flag",
        ],
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--region",
            "Not A Region",
        ],
        // Budgets that cannot work: no period, an unknown scope, $0, no budget
        // for --estimate to apply to.
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--budget",
            "endpoint=25",
        ],
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--budget",
            "team=25/day",
        ],
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--budget",
            "client=0/day",
        ],
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--estimate",
            "0.01",
        ],
        vec!["no-such-command"],
        vec![],
    ];
    for args in cases {
        sagemeter_at(&nowhere)
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::is_empty().not());
    }
}

#[test]
fn a_non_json_body_is_sent_as_is_with_another_content_type() {
    let out = sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "1.0,2.0,3.0",
            "--content-type",
            "text/csv",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, _) = parse_json_lines(&out.stdout);
    assert_eq!(receipts[0]["usage"]["bytes_in"], 11);
}

/// A loopback port that accepts connections and never answers (a Price List API
/// that hangs), for as long as the test process lives.
fn unresponsive_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_hanging_price_list_does_not_make_the_first_call_look_slow() {
    // Each price look-up gives up after 1 s and falls back to the snapshot. That wait
    // happens before the first call, not during it: the receipt's latency (and so its
    // compute cost) is the model's, not the price list's.
    let out = sagemeter()
        .env("AWS_ENDPOINT_URL_PRICING", unresponsive_url())
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"slow prices"}"#,
        ])
        .args(["-n", "2", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (receipts, _) = parse_json_lines(&out.stdout);
    assert_eq!(receipts.len(), 2, "a receipt per call");
    for r in &receipts {
        let latency_us = r["usage"]["latency_us"].as_u64().unwrap();
        assert!(
            latency_us < 900_000,
            "latency {latency_us} µs includes pricing: {r}"
        );
        assert_eq!(sources(r), BTreeSet::from(["snapshot".to_owned()]), "{r}");
    }
}

#[test]
fn async_submits_one_request_and_prints_the_submission_receipt() {
    // The submission's receipt (the first line), its data-in line, and stderr.
    let submit = |size: &[&str]| -> (Value, Value, String) {
        let output = sagemeter()
            .args(["invoke", REALTIME_ENDPOINT, "--async", "--json"])
            .args(["--input-location", "s3://sagemeter-demo/input.json"])
            .args(size)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        let receipt: Value =
            serde_json::from_slice(output.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
        let data_in = receipt["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["item"] == "data_in")
            .expect("a data-in line")
            .clone();
        (receipt, data_in, stderr)
    };
    let (receipt, data_in, stderr) = submit(&["--input-bytes", "1073741824"]);
    assert_eq!(receipt["type"], "receipt");
    assert_eq!(receipt["usage"]["operation"], "InvokeEndpointAsync");
    // Where the output (or the failure) will land, for the reader to fetch it (moto
    // makes an id and S3 locations of its own).
    let submission = &receipt["submission"];
    assert!(
        submission["inference_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{receipt}"
    );
    for member in ["output_location", "failure_location"] {
        assert!(
            submission[member]
                .as_str()
                .is_some_and(|at| at.starts_with("s3://")),
            "{member}: {receipt}"
        );
    }
    // 1 GiB of input at the snapshot's 0.016 USD/GB.
    assert_eq!(
        dec(&data_in["price"]["cost_usd"]),
        "0.016".parse::<Decimal>().unwrap()
    );
    assert!(
        receipt["notes"].to_string().contains("AsyncInf"),
        "the receipt says where compute goes: {receipt}"
    );
    assert!(!stderr.contains("--input-bytes"), "{stderr}");

    // Without --input-bytes the input's size is not known: data in is unpriced,
    // and the CLI says which flag bills it.
    let (receipt, data_in, stderr) = submit(&[]);
    assert!(
        stderr.contains(
            "note: data in is unpriced: the input is in S3; --input-bytes bills its size"
        ),
        "{stderr}"
    );
    assert_eq!(data_in["price"]["status"], "unpriced", "{receipt}");
}

#[test]
fn stream_and_async_flags_are_checked_before_anything_is_sent() {
    for args in [
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--stream",
            "-n",
            "2",
        ],
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--stream",
            "--async",
        ],
        vec!["invoke", REALTIME_ENDPOINT, "--input-location", "s3://b/k"],
        vec!["invoke", REALTIME_ENDPOINT],
        // The input is in S3 or in --body, not both.
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--async",
            "--input-location",
            "s3://b/k",
            "--body",
            "{}",
        ],
    ] {
        sagemeter_at(&refused_url()).args(&args).assert().code(2);
    }
}

#[test]
fn ledger_and_tags_record_every_call_and_report_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let ledger_arg = ledger.to_str().unwrap();
    let output = sagemeter()
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{\"inputs\":\"hi\"}",
            "-n",
            "4",
        ])
        .args([
            "--ledger",
            ledger_arg,
            "--tag",
            "team=search",
            "--tag",
            "env=test",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (receipts, summary) = parse_json_lines(&output.stdout);

    // The ledger holds exactly the printed receipts, tagged, and is owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ledger).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let read = sagemeter::ledger::read_all(&ledger).unwrap();
    assert_eq!(read.records.len(), 4);
    assert!(read.torn_tail.is_none());
    for (record, printed) in read.records.iter().zip(&receipts) {
        assert_eq!(record.call_id, printed["call_id"].as_str().unwrap());
        assert_eq!(record.cost_usd, dec(&printed["cost_usd"]));
        assert_eq!(record.tags.get("team").map(String::as_str), Some("search"));
        assert_eq!(record.tags.get("env").map(String::as_str), Some("test"));
    }

    // `report --by tag:team --json` adds the same money up.
    let report = report_json(&[ledger_arg, "--by", "tag:team"]);
    let total: Decimal = read.records.iter().map(|c| c.cost_usd).sum();
    assert_eq!(report["groups"][0]["key"], "search", "{report}");
    assert_eq!(report["groups"][0]["calls"], 4);
    assert_eq!(dec(&report["groups"][0]["cost_usd"]), total);
    assert_eq!(dec(&summary["total_cost_usd"]), total);

    // `compare --from-ledger` takes the same work: 4 calls, their mean latency and bytes.
    let compare = sagemeter_at(&refused_url())
        .args(["compare", "--from-ledger", ledger_arg, "--period", "day"])
        .args(["--per-call", "0.001", "--subscription", "5", "--json"])
        .output()
        .unwrap();
    assert!(
        compare.status.success(),
        "{}",
        String::from_utf8_lossy(&compare.stderr)
    );
    let compare: Value = serde_json::from_slice(&compare.stdout).unwrap();
    let profile = &compare["profile"];
    // The exact mean (a decimal string, as every figure of the profile).
    let bytes_in = read.records.iter().map(|c| c.usage.bytes_in).sum::<u64>();
    let mean_bytes_in = Decimal::from(bytes_in) / Decimal::from(4);
    assert_eq!(
        dec(&profile["bytes_in_per_call"]),
        mean_bytes_in,
        "{profile}"
    );
    assert!(
        dec(&profile["calls_per_period"]) > Decimal::ZERO,
        "{profile}"
    );
}

#[test]
fn a_directory_ledger_rolls_and_report_reads_directories_and_files_together() {
    let dir = tempfile::tempdir().unwrap();
    let rolling = format!("{}/receipts/", dir.path().display());
    let single = dir.path().join("single.jsonl");
    let invoke = |n: &str, ledger: &str| {
        let mut invoke = sagemeter();
        invoke.args(["invoke", REALTIME_ENDPOINT, "--body", "{}", "-n", n]);
        let done = invoke
            .args(["--ledger", ledger, "--json"])
            .assert()
            .success();
        parse_json_lines(&done.get_output().stdout).1
    };
    let first = invoke("3", &rolling);
    let second = invoke("2", single.to_str().unwrap());

    // One file per UTC hour, owner-only, in an owner-only directory.
    use std::os::unix::fs::PermissionsExt;
    let files = sagemeter::ledger::ledger_files(&rolling).unwrap();
    assert!(!files.is_empty() && files.len() <= 2, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with("sagemeter-") && name.ends_with(".jsonl"),
            "{name}"
        );
        assert_eq!(
            std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let receipts_dir = dir.path().join("receipts");
    assert_eq!(
        std::fs::metadata(&receipts_dir)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // The report of the directory and the file together holds all five calls.
    let report = report_json(&[&rolling, single.to_str().unwrap()]);
    assert_eq!(report["total"]["calls"], 5, "{report}");
    let total = dec(&first["total_cost_usd"]) + dec(&second["total_cost_usd"]);
    assert_eq!(dec(&report["total"]["cost_usd"]), total);

    // A size limit needs a directory.
    sagemeter_at(&refused_url())
        .args(["invoke", REALTIME_ENDPOINT, "--body", "{}", "--ledger"])
        .arg(&single)
        .args(["--ledger-roll-bytes", "1000"])
        .assert()
        .code(2);
}

#[test]
fn a_bad_tag_is_a_usage_error() {
    sagemeter_at(&refused_url())
        .args([
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            "{}",
            "--tag",
            "no-equals-sign",
        ])
        .assert()
        .code(2);
}
