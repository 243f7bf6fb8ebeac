//! The fleet across real processes: `sagemeter invoke --fleet-table … --budget …`
//! run as several processes at once against the emulator (moto serves SageMaker
//! and DynamoDB), `sagemeter fleet init|status`, and a process killed while it
//! holds a lease.
//!
//! Prices come from the bundled snapshot (pricing is unreachable here, as in
//! `cli_invoke`): a call to demo-realtime costs its latency at $0.23/h plus
//! $0.016/GB each way, a few tenths of a micro-dollar.
//!
//! Run: `cargo test --all-features --test cli cli_fleet::`.

use super::clean_env::{self, refused_url};
use crate::support::emulator::{Emulator, REALTIME_ENDPOINT};
use rust_decimal::Decimal;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `sagemeter ARGS` with a clean AWS environment pointing at the shared emulator.
fn sagemeter(args: &[&str]) -> Command {
    let mut cmd = clean_env::sagemeter(&Emulator::shared().endpoint_url, &refused_url());
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn output(mut cmd: Command) -> Output {
    cmd.output().expect("run sagemeter")
}

/// A table name no other test uses.
fn table_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "cli-fleet-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn init(table: &str) {
    let out = output(sagemeter(&["fleet", "init", "--table", table]));
    assert!(
        out.status.success(),
        "fleet init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created fleet table"));
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {v}"))
        .parse()
        .unwrap()
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `fleet status --json`: the line of `scope` (`kind` and name) in the day period.
fn status_of(table: &str, kind: &str, name: Option<&str>) -> Value {
    let out = output(sagemeter(&["fleet", "status", "--table", table, "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
        .into_iter()
        .find(|l| {
            l["scope"]["kind"] == kind
                && l["period"] == "day"
                && name.is_none_or(|n| l["scope"]["name"] == n)
        })
        .unwrap_or_else(|| panic!("no {kind} scope: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn four_processes_share_one_endpoint_budget_and_status_is_the_sum_of_their_receipts() {
    let table = table_name("budget");
    init(&table);
    // $100 per million: the four processes' 240 calls at a few tenths of a
    // micro-dollar each (more for the first, cold one) ask for more than that;
    // each call is reserved at $20 per million (313 ms at $0.23/h) before it is sent.
    let (limit, estimate) = ("0.0001", "0.00002");
    let budget = format!("endpoint={limit}/day");
    // Started one after another, each once its first call has answered. Started
    // together on two busy cores, the four first calls took 0.5-0.9 s each (most
    // likely queued behind each other's discovery at the one-request-at-a-time
    // emulator) and are billed that long: on a slow host those four alone spent the
    // whole budget. The processes still run side by side after their first call.
    let mut children = Vec::new();
    for _ in 0..4 {
        let mut child = sagemeter(&[
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"fleet"}"#,
            "-n",
            "60",
            "--json",
            "--fleet-table",
            &table,
            "--budget",
            &budget,
            "--estimate",
            estimate,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sagemeter");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        children.push((child, stdout, first));
    }
    let (limit, estimate): (Decimal, Decimal) = (limit.parse().unwrap(), estimate.parse().unwrap());
    let (mut spent, mut overrun, mut refused, mut receipts) = (Decimal::ZERO, Decimal::ZERO, 0, 0);
    for (child, mut stdout, mut printed) in children {
        stdout.read_to_string(&mut printed).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in lines(printed.as_bytes()) {
            match line["type"].as_str() {
                Some("receipt") => {
                    let cost = dec(&line["cost_usd"]);
                    spent += cost;
                    // A call that cost more than its reservation can take the
                    // fleet past the limit by that much, and no more.
                    overrun += (cost - estimate).max(Decimal::ZERO);
                    receipts += 1;
                    assert!(line["running_fleet_usd"].is_string(), "{line}");
                }
                Some("error") => {
                    let error = line["error"].as_str().unwrap();
                    assert!(
                        error.contains("budget exceeded for endpoint demo-realtime"),
                        "{error}"
                    );
                    refused += 1;
                }
                _ => {}
            }
        }
        // No fleet table failure, no panic (budget alerts are WARNs of their own).
        assert!(
            !stderr.contains("panicked") && !stderr.contains("sagemeter::fleet"),
            "{stderr}"
        );
    }
    assert!(
        refused > 0,
        "the budget refused no call ({receipts} receipts)"
    );
    assert!(receipts > 4, "only {receipts} calls went through");
    assert!(
        spent <= limit + overrun,
        "the fleet spent ${spent} under a ${limit} limit (calls over their estimate: ${overrun})"
    );
    // After every process exited (flushed, leases given back), the table holds
    // exactly what the receipts say.
    let endpoint = status_of(&table, "endpoint", Some(REALTIME_ENDPOINT));
    assert_eq!(dec(&endpoint["spent_usd"]), spent, "{endpoint}");
    assert_eq!(endpoint["calls"], receipts, "{endpoint}");
    assert_eq!(dec(&endpoint["committed_usd"]), spent, "{endpoint}");
    assert_eq!(endpoint["leases"], 0, "{endpoint}");
    assert_eq!(dec(&endpoint["limit_usd"]), limit);
    assert_eq!(dec(&status_of(&table, "client", None)["spent_usd"]), spent);
}

#[test]
fn a_killed_process_lease_returns_to_the_fleet_after_it_lapses() {
    let table = table_name("killed");
    init(&table);
    // The first process leases the whole budget at once and keeps calling.
    let fleet_args = |calls: &'static str, percent: &'static str| {
        vec![
            "invoke",
            REALTIME_ENDPOINT,
            "--body",
            r#"{"inputs":"fleet"}"#,
            "-n",
            calls,
            "--json",
            "--fleet-table",
            table.as_str(),
            "--budget",
            "client=0.001/day",
            "--estimate",
            "0.0001",
            "--lease-ttl",
            "4",
            // one machine, one clock
            "--clock-skew",
            "0",
            "--lease-percent",
            percent,
        ]
    };
    let mut holder = sagemeter(&fleet_args("1000000", "100"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(holder.stdout.take().unwrap());
    let started = Instant::now();
    let mut seen = 0;
    let mut line = String::new();
    while seen < 5 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the holder stopped"
        );
        seen += usize::from(line.contains("\"type\":\"receipt\""));
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    // Killed while it holds the lease: no shutdown, nothing given back.
    let killed_at = Instant::now();
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();

    let blocked = output(sagemeter(&fleet_args("1", "100")));
    assert!(!blocked.status.success());
    let refusal = lines(&blocked.stdout);
    assert!(
        refusal[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("budget exceeded for client per day (fleet-wide)")),
        "{refusal:?}"
    );

    // Four seconds after its last renewal (at most four after the kill) the lease
    // has lapsed: the next process reclaims it and spends.
    std::thread::sleep(Duration::from_millis(4500).saturating_sub(killed_at.elapsed()));
    let after = output(sagemeter(&fleet_args("3", "10")));
    assert!(
        after.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&after.stderr)
    );
    assert_eq!(
        lines(&after.stdout)
            .iter()
            .filter(|l| l["type"] == "receipt")
            .count(),
        3
    );
    let fleet = status_of(&table, "client", None);
    assert_eq!(fleet["leases"], 0, "reclaimed and given back: {fleet}");
    assert!(dec(&fleet["remaining_usd"]) > Decimal::ZERO, "{fleet}");
}

#[test]
fn fleet_status_json_carries_every_fact_the_text_shows() {
    let table = table_name("views");
    init(&table);
    // Two budgets (client and endpoint) leased from, then given back at exit.
    let out = output(sagemeter(&[
        "invoke",
        REALTIME_ENDPOINT,
        "--body",
        r#"{"inputs":"fleet"}"#,
        "-n",
        "3",
        "--json",
        "--fleet-table",
        &table,
        "--budget",
        "client=1/day",
        "--budget",
        "endpoint=1/day",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = output(sagemeter(&["fleet", "status", "--table", &table, "--json"]));
    assert!(json.status.success());
    let json = lines(&json.stdout);
    // The text's columns are padded: compare with single spaces.
    let text = status_text(&table);
    assert_eq!(json.len(), text.len(), "{json:#?} {text:#?}");
    let usd = |v: &Value| format!("${}", dec(v).normalize());
    for (line, text) in json.iter().zip(&text) {
        // Every field on every line, the client scope's too.
        for field in [
            "variants",
            "budget_alerts",
            "alerts_passed",
            "leased_unspent_usd",
        ] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
        let scope = match line["scope"]["name"].as_str() {
            Some(name) => format!("{} {name}", line["scope"]["kind"].as_str().unwrap()),
            None => line["scope"]["kind"].as_str().unwrap().to_owned(),
        };
        assert!(text.starts_with(&scope), "{text} / {line}");
        let spent = format!(
            "spent {} in {} calls",
            usd(&line["spent_usd"]),
            line["calls"]
        );
        assert!(text.contains(&spent), "{text} / {line}");
        for (variant, spent) in line["variants"].as_object().unwrap() {
            assert!(
                text.contains(&format!("{variant} {}", usd(spent))),
                "{text} / {line}"
            );
        }
        // Both scopes have a budget (client and endpoint): a limit each.
        let budgeted = ["client", "endpoint"].contains(&line["scope"]["kind"].as_str().unwrap());
        assert_eq!(line["limit_usd"].is_string(), budgeted, "{line}");
        if budgeted {
            // The text's "(0 leases, $0 unspent)": the JSON says "0", not null.
            let budget = format!(
                "limit {}, committed {} ({} leases, {} unspent), remaining {}",
                usd(&line["limit_usd"]),
                usd(&line["committed_usd"]),
                line["leases"],
                usd(&line["leased_unspent_usd"]),
                usd(&line["remaining_usd"])
            );
            assert!(text.contains(&budget), "{text} / {line}");
        }
        let passed: Vec<String> = line["alerts_passed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{p}%"))
            .collect();
        assert_eq!(
            text.contains("alerts passed"),
            !passed.is_empty(),
            "{text} / {line}"
        );
    }
    // Both budgets' items were leased from and given back.
    let endpoint = status_of(&table, "endpoint", Some(REALTIME_ENDPOINT));
    assert_eq!(endpoint["leased_unspent_usd"], "0", "{endpoint}");
    assert!(endpoint["variants"]["AllTraffic"].is_string(), "{endpoint}");
    let client = status_of(&table, "client", None);
    assert_eq!(client["leased_unspent_usd"], "0", "{client}");
    assert_eq!(client["budget_alerts"], serde_json::json!([]), "{client}");
}

/// A stream or an asynchronous submission the fleet's budget refuses says so in
/// text, as a plain call does (docs/cli.md): `REFUSED (not sent)`, not `FAILED
/// (not billed)`. A first process spends the day's $0.000001 (its first call
/// costs a few tenths of a micro-dollar; its second, estimated at $0.000001, no
/// longer fits); then neither a stream nor a submission fits either.
#[test]
fn a_stream_or_submission_the_fleet_budget_refuses_says_refused_not_failed() {
    let table = table_name("refused");
    init(&table);
    let budget = [
        "--fleet-table",
        table.as_str(),
        "--budget",
        "client=0.000001/day",
        "--estimate",
        "0.000001",
    ];
    let spender = output(sagemeter(
        &[
            &["invoke", REALTIME_ENDPOINT, "--body", "{}", "-n", "3"],
            &budget[..],
        ]
        .concat(),
    ));
    let stdout = String::from_utf8_lossy(&spender.stdout);
    assert!(stdout.contains("#2    REFUSED (not sent)"), "{stdout}");
    for way in ["--stream", "--async"] {
        let out = output(sagemeter(
            &[
                &["invoke", REALTIME_ENDPOINT, way, "--body", "{}"],
                &budget[..],
            ]
            .concat(),
        ));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{way}: {stdout} {stderr}");
        assert!(
            stdout.contains("#1    REFUSED (not sent)"),
            "{way}: {stdout}"
        );
        assert!(!stdout.contains("FAILED"), "{way}: {stdout}");
        assert!(
            stderr.contains("budget exceeded for client per day (fleet-wide)"),
            "{way}: {stderr}"
        );
    }
}

/// Writes `item` (its `pk` and `sk` among its attributes) to the fleet table
/// `table` as it stands, whatever sagemeter would have written.
fn put_item(table: &str, item: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let conf = Emulator::shared().sdk_config().await;
        let item = item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        aws_sdk_dynamodb::Client::new(&conf)
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    });
}

/// `fleet status` as text, each line's runs of spaces made one.
fn status_text(table: &str) -> Vec<String> {
    let out = output(sagemeter(&["fleet", "status", "--table", table]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A number attribute, as DynamoDB carries it.
fn num(value: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(value.to_owned())
}

/// A new table (named after `name`) holding one item written by hand: endpoint
/// `chat`'s spend of 2026-12-01, with `attributes`.
fn table_with_chats_day(
    name: &str,
    attributes: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
) -> String {
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = table_name(name);
    init(&table);
    let mut item = vec![
        ("pk", AttributeValue::S("scope#endpoint:chat".into())),
        ("sk", AttributeValue::S("day#2026-12-01".into())),
    ];
    item.extend(attributes);
    put_item(&table, item);
    table
}

#[test]
fn fleet_status_text_shows_what_is_committed_without_a_limit() {
    // An endpoint's budget item that no process leased from: its $0.05 of spend
    // was written without a lease (a call `WhenUnavailable::Allow` let through
    // while the table did not answer), added to `committed_pico`; no
    // `limit_pico` was ever written.
    let table = table_with_chats_day(
        "nolimit",
        vec![
            ("spent_pico", num("50000000000")),
            ("calls", num("5")),
            ("committed_pico", num("50000000000")),
        ],
    );
    let json = status_of(&table, "endpoint", Some("chat"));
    assert_eq!(json["committed_usd"], "0.05", "{json}");
    assert!(json["limit_usd"].is_null(), "{json}");
    let text = status_text(&table);
    assert_eq!(text.len(), 1, "{text:?}");
    // The text says it too ($50,000,000,000 pico-USD = $0.05), not only --json.
    assert!(
        text[0].contains("no limit, committed $0.05 (0 leases, $0 unspent)"),
        "{text:?}"
    );
}

#[test]
fn fleet_status_names_a_figure_that_is_not_a_number_instead_of_showing_it_as_zero() {
    use aws_sdk_dynamodb::types::AttributeValue;
    // A hand-edited item: its spend stored as a string, one variant's as a
    // fraction (sagemeter writes whole pico-USD), the other's as written.
    let table = table_with_chats_day(
        "unreadable",
        vec![
            ("spent_pico", AttributeValue::S("50000000000".into())),
            ("calls", num("5")),
            ("variant:AllTraffic", num("1.5")),
            ("variant:Canary", num("20000000000")),
        ],
    );
    let json = status_of(&table, "endpoint", Some("chat"));
    // Read as absent, and said so: never a silent $0.
    assert_eq!(json["spent_usd"], "0", "{json}");
    assert_eq!(
        json["unreadable"],
        serde_json::json!(["spent_pico", "variant:AllTraffic"]),
        "{json}"
    );
    assert_eq!(json["variants"]["Canary"], "0.02", "{json}");
    let text = status_text(&table);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("; UNREADABLE spent_pico, variant:AllTraffic (not the figures"),
        "{text:?}"
    );
}

/// A `--fleet-table` that does not exist (mistyped, or `fleet init` not run) stops
/// `invoke` before any call is sent, saying how to make it; `fleet status` says
/// the same.
#[test]
fn a_missing_fleet_table_stops_invoke_before_any_call_and_says_how_to_make_it() {
    let table = table_name("never-made");
    let made = format!(
        "table `{table}` does not exist: make it with `sagemeter fleet init --table {table}`"
    );
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let out = output(sagemeter(&[
        "invoke",
        REALTIME_ENDPOINT,
        "--body",
        "{}",
        "--json",
        "--fleet-table",
        &table,
        "--ledger",
        ledger.to_str().unwrap(),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&made), "{stderr}");
    assert!(out.stdout.is_empty(), "no call, no receipt, no summary");
    assert!(
        !ledger.exists(),
        "the ledger's file is not made for a run that never starts"
    );
    let out = output(sagemeter(&["fleet", "status", "--table", &table]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&made), "{stderr}");
    // The command it names, run as written, makes the table.
    let advised: Vec<&str> = made
        .split('`')
        .nth(3)
        .and_then(|command| command.strip_prefix("sagemeter "))
        .expect("a command in the message")
        .split_whitespace()
        .collect();
    let out = output(sagemeter(&advised));
    assert!(
        out.status.success(),
        "{advised:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = output(sagemeter(&["fleet", "status", "--table", &table]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
