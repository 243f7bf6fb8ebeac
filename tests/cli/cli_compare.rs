//! `sagemeter compare` as a user runs it: the table, the JSON, the chart, the errors.
#![cfg(feature = "cli")]

use assert_cmd::Command;
use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

fn sagemeter() -> Command {
    cargo_bin_cmd!("sagemeter")
}

/// Runs `command`, which must succeed, and reads its stdout as JSON.
fn json_of(command: &mut Command) -> serde_json::Value {
    let output = command.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&output).expect("stdout is JSON")
}

/// `sagemeter <args>` refused as a usage error (exit 2) with nothing on stdout; the
/// caller says what stderr must hold.
fn refused(args: &[&str]) -> assert_cmd::assert::Assert {
    sagemeter().args(args).assert().code(2).stdout("")
}

/// The `cost_usd` of the plan called `name` in `compare --json`'s output.
fn plan_cost(json: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    json["plans"]
        .as_array()?
        .iter()
        .find(|p| p["plan"]["name"] == name)
        .map(|p| p["cost_usd"].clone())
}

#[test]
fn compare_answers_pay_per_use_against_a_subscription_as_a_table() {
    // 100,000 calls × 0.0125 = 1,250 USD; subscription 500 USD; U* = 500 / 0.0125 = 40,000
    sagemeter()
        .args([
            "compare",
            "--calls",
            "100000",
            "--per-call",
            "0.0125",
            "--subscription",
            "500",
            "--period",
            "month",
        ])
        .assert()
        .success()
        .stdout(
            "\
100,000 calls per month (730 h) in us-east-1

plan          cost/month  per 1,000 calls  vs cheapest  prices
subscription      500.00           5.0000     cheapest  stated
pay per use     1,250.00          12.5000      +750.00  stated

Break-even:
- subscription is cheaper above 40,000 calls per month; pay per use below
",
        );
}

#[test]
fn pay_per_use_is_an_all_inclusive_price_and_a_marketplace_package_is_its_fee_plus_the_instance() {
    // The help says what the price is, and what it is not.
    let out = sagemeter().args(["compare", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Pay per use: all-inclusive price of one call"),
        "{help}"
    );
    assert!(
        help.contains(
            "An AWS Marketplace model package's\nper-inference fee is billed on top of its \
             endpoint's instance-hours and data; no\nplan adds the two: its cost is the \
             pay-per-use row plus the --instance row."
        ),
        "{help}"
    );
    // A package at 0.50 USD per 1,000 inferences on one ml.m5.xlarge, 100,000 calls a
    // month: the pay-per-use row is the fee alone, 100 × 0.50 = 50.00 USD (nothing
    // added), the instance row 730 h × 0.23 USD = 167.90 USD; AWS bills the package
    // 50.00 + 167.90 = 217.90 USD plus data processed, which no stated size
    // prices: the instance row says so.
    let json = json_of(sagemeter().args([
        "compare",
        "--calls",
        "100000",
        "--per-1000",
        "0.50",
        "--instance",
        "ml.m5.xlarge",
        "--instance-usd-per-hour",
        "0.23",
        "--json",
    ]));
    assert_eq!(plan_cost(&json, "pay per use").unwrap(), "50", "{json}");
    let instance = json["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"]["kind"] == "instance")
        .unwrap_or_else(|| panic!("no instance plan in {json}"));
    assert_eq!(instance["cost_usd"], "167.9");
    assert!(
        instance["notes"].to_string().contains(
            "data processed not priced: no payload sizes stated (AWS bills it per GB in and out)"
        ),
        "{json}"
    );
}

#[test]
fn a_break_even_below_one_call_is_its_fraction_in_the_table_and_the_json() {
    // U* = P·T / X = 1 USD × 1 month / 1,000,000,000 USD a call = 0.000000001 calls:
    // pay per use costs more than the subscription from the first call.
    let args = [
        "compare",
        "--calls",
        "1e15",
        "--per-call",
        "1000000000",
        "--subscription",
        "1",
    ];
    let line = "subscription is cheaper above 0.000000001 calls per month, so from the \
                first call; pay per use below";
    sagemeter()
        .args(args)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("Break-even:\n- {line}\n")));
    let json = json_of(sagemeter().args(args).arg("--json"));
    let be = &json["break_evens"][0];
    assert_eq!(be["points"][0]["calls_per_period"], "0.000000001");
    assert_eq!(be["regions"][1]["from_calls"], "0.000000001");
    assert_eq!(be["summary"], line);
}

#[test]
fn a_quota_and_overage_show_the_band_where_the_subscription_wins() {
    // pay per use 60,000 × 0.0125 = 750; subscription 400 + (60,000 − 40,000) × 0.02 = 800
    // crossings: 400 / 0.0125 = 32,000 and 400 / (0.02 − 0.0125) = 53,333.33
    sagemeter()
        .args([
            "compare",
            "--calls",
            "60,000",
            "--per-1000",
            "12.5",
            "--subscription",
            "400",
            "--included",
            "40000",
            "--overage",
            "0.02",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "pay per use       750.00          12.5000     cheapest  stated\n\
             subscription      800.00          13.3333       +50.00  stated\n",
        ))
        .stdout(predicate::str::contains(
            "- pay per use is cheaper below 32,000 calls per month, subscription between \
             32,000 and 53,333, pay per use above 53,333\n",
        ))
        .stdout(predicate::str::contains(
            "- subscription: includes 40,000 calls per month; 20,000 calls above that at 0.02 \
             USD each",
        ));
}

#[test]
fn json_output_is_the_serialised_comparison() {
    let json = json_of(sagemeter().args([
        "compare",
        "--calls-per-day",
        "1000",
        "--period",
        "year",
        "--per-call",
        "0.01",
        "--subscription",
        "3000",
        "--json",
    ]));
    // 1,000 calls a day × 365 days = 365,000 calls a year; × 0.01 = 3,650 USD
    assert_eq!(json["profile"]["calls_per_period"], "365000");
    assert_eq!(json["cheapest"], "subscription");
    assert_eq!(json["plans"][0]["plan"]["name"], "subscription");
    assert_eq!(json["plans"][0]["cost_usd"], "3000");
    assert_eq!(json["plans"][1]["cost_usd"], "3650");
    assert_eq!(json["plans"][1]["difference_to_cheapest_usd"], "650");
    assert_eq!(json["plans"][1]["usd_per_1000_calls"], "10");
    // U* = 3,000 / 0.01 = 300,000 calls a year
    assert_eq!(
        json["break_evens"][0]["points"][0]["calls_per_period"],
        "300000"
    );
    assert_eq!(
        json["break_evens"][0]["summary"],
        "subscription is cheaper above 300,000 calls per year; pay per use below"
    );
}

#[test]
fn instances_serverless_and_savings_plans_price_with_stated_rates() {
    // instance 730 h × 0.23 = 167.90; serverless 1,000,000 × 0.8 s × 0.00006 = 48;
    // savings plan: 0.23 × (1 − 0.64) = 0.0828 ≤ 0.1 committed → 0.1 × 730 = 73
    sagemeter()
        .args([
            "compare",
            "--calls",
            "1000000",
            "--latency-ms",
            "800",
            "--instance",
            "ml.m5.xlarge",
            "--count",
            "1",
            "--instance-usd-per-hour",
            "0.23",
            "--savings-plan",
            "0.1",
            "--discount",
            "64%",
            "--serverless",
            "3072",
            "--serverless-usd-per-second",
            "0.00006",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\
plan                                 cost/month  per 1,000 calls  vs cheapest  prices
serverless 3072 MB                        48.00           0.0480     cheapest  override
savings plan ml.m5.xlarge x1 (1 yr)       73.00           0.0730       +25.00  override
ml.m5.xlarge x1                          167.90           0.1679      +119.90  override
",
        ))
        // 167.9 / 0.000048 = 3,497,916.67 calls, more than the 730 h × 3,600 s ÷ 0.8 s
        // = 3,285,000 one instance serves one call at a time.
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1 would be cheaper only above 3,497,917 calls per month, beyond \
             the 3,285,000 it can serve at 1 call per instance: serverless 3072 MB is cheaper \
             at every volume it can serve",
        ));
}

#[test]
fn serverless_with_provisioned_concurrency_pays_its_standing_charge_with_stated_rates() {
    // 2 provisioned at 2 GB: 2 × 0.00001 USD/s × 730 h × 3,600 s = 52.56 a month,
    // busy or not; 1,000,000 calls × 0.8 s at the inference rate 0.0000233 = 18.64:
    // 71.20. On demand, 1,000,000 × 0.8 s × 0.00004 = 32.00, beside it. The
    // instance, 0.23 × 730 = 167.90, would be cheaper above
    // (167.90 − 52.56) / (0.8 × 0.0000233) = 6,187,768 calls (2 × 2,628,000 s ÷
    // 0.8 s = 6,570,000 calls fit the provisioned concurrency there), beyond the
    // 2,628,000 s ÷ 0.8 s = 3,285,000 calls it serves one at a time.
    // The instance against serverless 2 GB on demand and with `provisioned`, each
    // call 0.8 s, at us-east-1's public rates stated.
    let compare = |calls: &str, provisioned: &str| {
        let mut cmd = sagemeter();
        cmd.args(["compare", "--calls", calls, "--latency-ms", "800"])
            .args([
                "--instance",
                "ml.m5.xlarge",
                "--instance-usd-per-hour",
                "0.23",
            ])
            .args([
                "--serverless",
                "2048",
                "--serverless-usd-per-second",
                "0.00004",
            ])
            .args(["--provisioned-concurrency", provisioned])
            .args(["--provisioned-usd-per-second", "0.00001"])
            .args(["--provisioned-usage-usd-per-second", "0.0000233"]);
        cmd
    };
    compare("1000000", "2")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "serverless 2048 MB                      32.00           0.0320     cheapest  override\n\
             serverless 2048 MB, 2 provisioned       71.20           0.0712       +39.20  override",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1 would be cheaper only above 6,187,768 calls per month, beyond \
             the 3,285,000 it can serve at 1 call per instance: serverless 2048 MB, 2 \
             provisioned is cheaper at every volume it can serve",
        ));
    // 7,000,000 calls of 0.8 s on 1 provisioned: it serves 2,628,000 s ÷ 0.8 s =
    // 3,285,000 calls at 0.0000233 per second, AWS bills the other 3,715,000 at the
    // on-demand 0.00004: 26.28 + 3,285,000 × 0.8 × 0.0000233 + 3,715,000 × 0.8 ×
    // 0.00004 = 26.28 + 61.2324 + 118.88 = 206.3924, above the instance's 167.90.
    // They break even where 26.28 + 0.8 × 0.0000233 × U + 0.8 × (0.00004 −
    // 0.0000233) × (U − 3,285,000) = 167.90: U = (167.90 − 26.28 + 43.8876) /
    // 0.000032 = 5,797,112.5, past the 3,285,000 calls the instance serves one at a
    // time, and 7,000,000 calls need 5,600,000 s of its 2,628,000 s: over capacity.
    compare("7000000", "1")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            // the cheapest that can serve the calls: 206.39 < 7,000,000 × 0.8 × 0.00004
            // = 224.00 on demand; the instance's 167.90 serves too few (below)
            "serverless 2048 MB, 1 provisioned      206.39           0.0295       cheapest  override",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1 would be cheaper only above 5,797,113 calls per month, beyond \
             the 3,285,000 it can serve at 1 call per instance",
        ))
        .stdout(predicate::str::contains(
            "ml.m5.xlarge x1                        167.90           0.0240  over capacity  override",
        ))
        .stdout(predicate::str::contains(
            "serves up to 3,285,000 calls per month; AWS bills each call beyond it at the \
             on-demand rate, 0.00004 USD/s",
        ));
    // Provisioned concurrency goes with a serverless plan, 1 to 200.
    for args in [
        &["--provisioned-concurrency", "2"][..],
        &["--serverless", "2048", "--provisioned-concurrency", "0"],
        &["--serverless", "2048", "--provisioned-concurrency", "201"],
    ] {
        sagemeter()
            .args(["compare", "--calls", "100", "--latency-ms", "100"])
            .args(args)
            .assert()
            .code(2);
    }
}

#[test]
fn an_instance_over_capacity_is_marked_and_never_the_cheapest_in_text_and_json() {
    // One ml.m5.xlarge at 0.23 USD/h: 730 × 0.23 = 167.90 a month. Serving one call
    // at a time it serves 730 h × 3,600 s ÷ 0.8 s = 3,285,000 calls; 4,000,000 need
    // 3,200,000 s of its 2,628,000 s (121.8 %). Pay per use: 4,000,000 × 0.00005 =
    // 200.00, the cheapest that can serve them; the two cost the same at
    // 167.90 / 0.00005 = 3,358,000 calls, more than the instance serves.
    let args = [
        "compare",
        "--calls",
        "4000000",
        "--latency-ms",
        "800",
        "--instance",
        "ml.m5.xlarge",
        "--instance-usd-per-hour",
        "0.23",
        "--per-1000",
        "0.05",
    ];
    sagemeter()
        .args(args)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\
plan             cost/month  per 1,000 calls    vs cheapest  prices
pay per use          200.00           0.0500       cheapest  stated
ml.m5.xlarge x1      167.90           0.0420  over capacity  override
",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1 would be cheaper only above 3,358,000 calls per month, beyond \
             the 3,285,000 it can serve at 1 call per instance: pay per use is cheaper at \
             every volume it can serve\n",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1: over capacity: serves at most 3,285,000 calls per month (1 \
             instance for 730 h at 1 call per instance, 800 ms a call), fewer than the \
             4,000,000 to serve (busy 121.8% of the time it can serve)",
        ));

    let json = json_of(sagemeter().args(args).arg("--json"));
    assert_eq!(json["cheapest"], "pay per use");
    let instance = &json["plans"][1];
    assert_eq!(instance["plan"]["name"], "ml.m5.xlarge x1");
    assert_eq!(instance["plan"]["max_concurrency_per_instance"], 1);
    assert_eq!(instance["capacity_calls"], "3285000");
    assert_eq!(instance["over_capacity"], true);
    // 167.90 − 200.00: below the cheapest, which it cannot replace
    assert_eq!(instance["difference_to_cheapest_usd"], "-32.1");
    assert_eq!(json["plans"][0]["over_capacity"], false);
    assert_eq!(json["plans"][0]["capacity_calls"], serde_json::Value::Null);
    let be = &json["break_evens"][0];
    assert_eq!(be["points"][0]["calls_per_period"], "3358000");
    assert_eq!(
        be["points"][0]["beyond_capacity"],
        serde_json::json!(["ml.m5.xlarge x1"])
    );
    assert_eq!(
        be["capacity_calls"],
        serde_json::json!({"ml.m5.xlarge x1": "3285000"})
    );

    // Four calls per instance at once: 730 h × 3,600 s × 4 ÷ 0.8 s = 13,140,000
    // calls, so the same 4,000,000 fit (3,200,000 s of 10,512,000: 30.4 %) and the
    // instance's 167.90 is the cheapest, 200.00 − 167.90 = 32.10 below pay per use.
    // At the break-even, 3,358,000 × 0.8 s ÷ 10,512,000 s = 25.6 % busy.
    let four = || {
        let mut cmd = sagemeter();
        cmd.args(args).args(["--max-concurrency-per-instance", "4"]);
        cmd
    };
    four()
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\
plan             cost/month  per 1,000 calls  vs cheapest  prices
ml.m5.xlarge x1      167.90           0.0420     cheapest  override
pay per use          200.00           0.0500       +32.10  stated
",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x1 is cheaper above 3,358,000 calls per month, up to the \
             13,140,000 it can serve at 4 calls per instance (ml.m5.xlarge x1 at 25.6% \
             utilisation); pay per use below\n",
        ));
    let json = json_of(four().arg("--json"));
    assert_eq!(json["cheapest"], "ml.m5.xlarge x1");
    assert_eq!(json["plans"][0]["plan"]["max_concurrency_per_instance"], 4);
    assert_eq!(json["plans"][0]["capacity_calls"], "13140000");
    assert_eq!(json["plans"][0]["over_capacity"], false);
    assert_eq!(
        json["break_evens"][0]["points"][0]["beyond_capacity"],
        serde_json::json!([])
    );

    // At least one call per instance, and only with an instance plan.
    refused(&[
        "compare",
        "--calls",
        "100",
        "--latency-ms",
        "800",
        "--instance",
        "ml.m5.xlarge",
        "--max-concurrency-per-instance",
        "0",
    ])
    .stderr(predicate::str::contains("max concurrency per instance"));
    refused(&[
        "compare",
        "--calls",
        "100",
        "--per-call",
        "0.1",
        "--max-concurrency-per-instance",
        "2",
    ])
    .stderr(predicate::str::contains("--instance"));
}

#[test]
fn serverless_beyond_its_maximum_concurrency_is_over_capacity_in_text_and_json() {
    // 500,000,000 calls of 1.2 s a month: a mean concurrency of 500,000,000 × 1.2 s
    // ÷ (730 × 3,600 s = 2,628,000 s) = 228.3, above the 200 calls a serverless
    // endpoint serves at once, which serve at most 200 × 2,628,000 s ÷ 1.2 s =
    // 438,000,000 calls. Billed: 500,000,000 × 1.2 s × 0.00004 = 24,000.00 (per
    // 1,000: 0.048), against pay per use's 500,000,000 × 0.00005 = 25,000.00.
    let serverless = [
        "compare",
        "--calls",
        "500000000",
        "--latency-ms",
        "1200",
        "--serverless",
        "2048",
        "--serverless-usd-per-second",
        "0.00004",
    ];
    let with_pay_per_use = || {
        let mut cmd = sagemeter();
        cmd.args(serverless).args(["--per-1000", "0.05"]);
        cmd
    };
    with_pay_per_use()
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\
plan                cost/month  per 1,000 calls    vs cheapest  prices
pay per use          25,000.00           0.0500       cheapest  stated
serverless 2048 MB   24,000.00           0.0480  over capacity  override
",
        ))
        .stdout(predicate::str::contains(
            "- serverless 2048 MB is cheaper at every volume up to the 438,000,000 it can \
             serve at its maximum concurrency of 200: it never breaks even with pay per use",
        ))
        .stdout(predicate::str::contains(
            "- serverless 2048 MB: over capacity: serves at most 438,000,000 calls per month \
             at its maximum concurrency of 200 at 1200 ms a call, fewer than the 500,000,000 \
             to serve (a mean concurrency of 228.3): the calls beyond it would be throttled, \
             not served",
        ));
    let json = json_of(with_pay_per_use().arg("--json"));
    assert_eq!(json["cheapest"], "pay per use");
    assert_eq!(json["plans"][1]["capacity_calls"], "438000000");
    assert_eq!(json["plans"][1]["over_capacity"], true);

    // Alone, no plan can serve the calls: none is the cheapest.
    sagemeter()
        .args(serverless)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "No plan can serve 500,000,000 calls per month: each is over capacity (see the \
             notes)\n",
        ));
    let json = json_of(sagemeter().args(serverless).arg("--json"));
    assert_eq!(json["cheapest"], serde_json::Value::Null);
    assert_eq!(json["plans"][0]["over_capacity"], true);
}

#[test]
fn a_serverless_maximum_concurrency_below_200_bounds_its_capacity() {
    // 50,000,000 calls of 1.2 s a month: a mean concurrency of 50,000,000 × 1.2 s ÷
    // (730 × 3,600 s = 2,628,000 s) = 22.83. At the default maximum of 200 that is
    // served (200 × 2,628,000 ÷ 1.2 = 438,000,000 calls); an endpoint configured
    // with MaxConcurrency 20 serves at most 20 × 2,628,000 s ÷ 1.2 s = 43,800,000.
    // Billed either way: 50,000,000 × 1.2 s × 0.00004 = 2,400.00.
    let serverless = [
        "compare",
        "--calls",
        "50000000",
        "--latency-ms",
        "1200",
        "--serverless",
        "2048",
        "--serverless-usd-per-second",
        "0.00004",
        "--json",
    ];
    let json = json_of(sagemeter().args(serverless));
    assert_eq!(json["plans"][0]["capacity_calls"], "438000000");
    assert_eq!(json["plans"][0]["over_capacity"], false);
    assert_eq!(json["cheapest"], "serverless 2048 MB");

    let json = json_of(
        sagemeter()
            .args(serverless)
            .args(["--serverless-max-concurrency", "20"]),
    );
    let plan = &json["plans"][0];
    assert_eq!(plan["plan"]["max_concurrency"], 20);
    assert_eq!(plan["capacity_calls"], "43800000");
    assert_eq!(plan["over_capacity"], true);
    assert_eq!(plan["cost_usd"], "2400");
    assert_eq!(json["cheapest"], serde_json::Value::Null);
    let notes = plan["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            == "over capacity: serves at most 43,800,000 calls per month at its maximum \
                concurrency of 20 at 1200 ms a call, fewer than the 50,000,000 to serve (a \
                mean concurrency of 22.8): the calls beyond it would be throttled, not served"),
        "{notes:?}"
    );

    // Provisioned concurrency is at most the maximum concurrency (AWS refuses an
    // endpoint configuration with more); the maximum is 1 to 200.
    for args in [
        &[
            "--serverless-max-concurrency",
            "20",
            "--provisioned-concurrency",
            "21",
        ][..],
        &["--serverless-max-concurrency", "0"],
        &["--serverless-max-concurrency", "201"],
    ] {
        let out = sagemeter()
            .args(["compare", "--calls", "100", "--latency-ms", "100"])
            .args([
                "--serverless",
                "2048",
                "--serverless-usd-per-second",
                "0.00004",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
    }
    let out = sagemeter()
        .args(["compare", "--calls", "100", "--latency-ms", "100"])
        .args(["--serverless", "2048", "--serverless-max-concurrency", "20"])
        .args(["--provisioned-concurrency", "21"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("provisioned concurrency is out of range (got 21)")
            && stderr.contains("maximum concurrency (20)"),
        "{stderr}"
    );
}

#[test]
fn hours_apply_to_the_savings_plan_whose_commitment_is_billed_every_hour() {
    // ml.m5.xlarge at 0.23 USD/h running 400 of the month's 730 h:
    // on demand 400 × 0.23 = 92.00; pay per use 100,000 × 0.001 = 100.00;
    // savings plan 0.05 USD/h at 64 % off: usage 0.23 × 0.36 = 0.0828 > 0.05, so the
    // commitment covers 0.05 / 0.36 = 0.13888… of on-demand usage and the other
    // 0.23 − 0.13888… = 0.09111… USD/h is on demand while running:
    // 0.05 × 730 + 0.09111… × 400 = 36.5 + 36.444… = 72.944… (72.94)
    let args = [
        "compare",
        "--calls",
        "100000",
        "--per-call",
        "0.001",
        "--instance",
        "ml.m5.xlarge",
        "--instance-usd-per-hour",
        "0.23",
        "--hours",
        "400",
        "--savings-plan",
        "0.05",
        "--discount",
        "64%",
    ];
    sagemeter()
        .args(args)
        .assert()
        .success()
        // per 1,000 calls: 72.944… / 100 = 0.7294; 92 / 100 = 0.92; 100 / 100 = 1
        // vs cheapest: 92 − 72.944… = 19.06; 100 − 72.944… = 27.06
        .stdout(predicate::str::contains(
            "\
plan                                 cost/month  per 1,000 calls  vs cheapest  prices
savings plan ml.m5.xlarge x1 (1 yr)       72.94           0.7294     cheapest  override
ml.m5.xlarge x1                           92.00           0.9200       +19.06  override
pay per use                              100.00           1.0000       +27.06  stated
",
        ))
        // U* = 72.944… / 0.001 = 72,944 calls (always-on pricing: 103,011)
        .stdout(predicate::str::contains(
            "- savings plan ml.m5.xlarge x1 (1 yr) is cheaper above 72,944 calls per month; \
             pay per use below",
        ))
        .stdout(predicate::str::contains(
            "- savings plan ml.m5.xlarge x1 (1 yr): the instances run 400 of the 730 h per \
             month; the commitment is billed for all 730 h",
        ));

    let json = json_of(sagemeter().args(args).arg("--json"));
    let savings = &json["plans"][0];
    assert_eq!(savings["plan"]["hours_per_period"], "400");
    let cost = savings["cost_usd"].as_str().unwrap();
    assert!(cost.starts_with("72.944444444444"), "{cost}");
    // 1 instance × 400 h × 3,600 s
    assert_eq!(savings["provisioned_seconds"], "1440000");
}

#[test]
fn a_volume_adds_ml_storage_to_the_instance_and_savings_plans() {
    // 2 × ml.m5.xlarge at 0.23 USD/h running 365 of 730 h, 30 GB each at
    // 0.14 USD/GB-month: storage 2 × 30 × 0.14 × 365 / 730 = 4.20;
    // on demand 2 × 365 × 0.23 = 167.90 + 4.20 = 172.10;
    // savings plan 0.1 USD/h at 64 % off: 0.1 × 730 = 73 + (0.46 × 0.36 − 0.1) × 365
    // / 0.36 = 0.0656 × 365 / 0.36 = 66.511 → 139.51 + 4.20 = 143.71
    sagemeter()
        .args([
            "compare",
            "--calls",
            "100000",
            "--instance",
            "ml.m5.xlarge",
            "--count",
            "2",
            "--instance-usd-per-hour",
            "0.23",
            "--hours",
            "365",
            "--savings-plan",
            "0.1",
            "--discount",
            "64%",
            "--volume-gb",
            "30",
            "--storage-usd-per-gb-month",
            "0.14",
        ])
        .assert()
        .success()
        // 172.10 − 143.71 = 28.39
        .stdout(predicate::str::contains(
            "\
plan                                 cost/month  per 1,000 calls  vs cheapest  prices
savings plan ml.m5.xlarge x2 (1 yr)      143.71           1.4371     cheapest  override
ml.m5.xlarge x2                          172.10           1.7210       +28.39  override
",
        ))
        .stdout(predicate::str::contains(
            "- ml.m5.xlarge x2: ML storage: 2 × 30 GB at 0.14 USD/GB-month for 365 h = 4.20 USD",
        ));
}

#[test]
fn invalid_plans_are_invalid_arguments_saying_what_was_wrong_and_what_to_do() {
    // Values the flags' parsers accept but no plan can have: exit 2 (invalid
    // arguments, nothing priced), as for a value clap refuses (`--per-call 0,01`).
    for (args, says) in [
        (
            &["--count", "0", "--instance", "ml.m5.xlarge"][..],
            "instance count must be greater than zero",
        ),
        (
            &["--serverless", "3000", "--latency-ms", "100"],
            "serverless memory (MB) is out of range",
        ),
        (
            &["--per-call=-0.01"],
            "error: price per call (USD) must be greater than zero (got -0.01)",
        ),
        (
            &["--subscription", "100", "--included", "50"],
            "the subscription includes 50 calls per month but has no overage rate",
        ),
        (
            &["--subscription", "100", "--period", "week"],
            "unknown period `week`: use day, month or year",
        ),
        (
            &["--serverless", "3072"],
            "plan `serverless 3072 MB` needs a mean latency in the usage profile",
        ),
    ] {
        refused(&[&["compare", "--calls", "100"][..], args].concat())
            .stderr(predicate::str::contains(says));
    }
    refused(&["compare", "--calls", "100", "--per-call", "0,01"]);
}

#[test]
fn an_overflow_fails_with_what_overflowed_and_what_to_do_never_a_panic() {
    // Two plans that cost nearly the same per call (1 TiB in at 10^9 USD/GB =
    // 1.024 × 10^12 USD on instances; 10^9 tokens at 1,000 USD + 10^9 at
    // 24.000000000073 USD = 1,024,000,000,000.073 USD per token), the instances with
    // 10,000 × 730 h × 10^9 USD/h = 7.3 × 10^15 USD fixed: they cross at
    // 7.3 × 10^15 / 0.073 = 10^17 calls, where a cost is ≈ 1.024 × 10^29 USD, beyond
    // a decimal (≈ 7.9 × 10^28). This used to panic.
    sagemeter()
        .args([
            "compare",
            "--calls",
            "1000",
            "--bytes-in",
            "1099511627776",
            "--tokens-in",
            "1000000000",
            "--tokens-out",
            "1000000000",
            "--per-1m-tokens-in",
            "1000000000",
            "--per-1m-tokens-out",
            "24000000.000073",
            "--instance",
            "ml.m5.xlarge",
            "--count",
            "10000",
            "--instance-usd-per-hour",
            "1000000000",
            "--data-usd-per-gb",
            "1000000000",
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: the cost where plans `per token` and `ml.m5.xlarge x10000` break even \
             (100,000,000,000,000,000 calls per month) is too large to compute exactly (above \
             about 7.9 × 10^28): the plans' costs at the volumes where they could cross are \
             beyond an exact decimal: check the units of the prices",
        ))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn a_stated_profile_priced_per_token_must_state_each_priced_count() {
    // Input priced at 3 USD per 10^6 tokens, its count not stated: at the old
    // default of 0 the per-token plan was 10^6 calls × 200 × 15 / 10^6 = 3,000 USD
    // a month, "cheapest" beside 10^6 × 4 / 1,000 = 4,000 USD per use, where a
    // 1,000-token prompt makes it 3,000 + 10^6 × 1,000 × 3 / 10^6 = 6,000 USD.
    let plans = [
        "compare",
        "--calls",
        "1000000",
        "--per-1m-tokens-in",
        "3",
        "--per-1m-tokens-out",
        "15",
        "--per-1000",
        "4",
    ];
    refused(&[&plans[..], &["--tokens-out", "200"]].concat()).stderr(predicate::str::contains(
        "--per-1m-tokens-in prices tokens no figure states: give the mean per call with \
             --tokens-in",
    ));
    refused(&[&plans[..], &["--tokens-in", "1000"]].concat()).stderr(predicate::str::contains(
        "--per-1m-tokens-out prices tokens",
    ));
    // Stated, it is priced: 6,000 USD a month, dearer than pay per use.
    let json = json_of(sagemeter().args(plans).args([
        "--tokens-in",
        "1000",
        "--tokens-out",
        "200",
        "--json",
    ]));
    assert_eq!(plan_cost(&json, "per token").unwrap(), "6000", "{json}");
    assert_eq!(plan_cost(&json, "pay per use").unwrap(), "4000", "{json}");
    // `--tokens-in 0` states none (a side priced at $0 needs no count).
    sagemeter()
        .args(plans)
        .args(["--tokens-in", "0", "--tokens-out", "200"])
        .assert()
        .success();
    sagemeter()
        .args(["compare", "--calls", "10", "--per-1m-tokens-in", "0"])
        .args(["--per-1m-tokens-out", "15", "--tokens-out", "200"])
        .assert()
        .success();
}

#[test]
fn a_zero_stated_rate_is_refused_never_priced_at_zero() {
    sagemeter()
        .args([
            "compare",
            "--calls",
            "1000",
            "--instance",
            "ml.m5.xlarge",
            "--instance-usd-per-hour",
            "0",
        ])
        .assert()
        // A stated value no rate can have: an invalid argument, nothing priced.
        .code(2)
        .stdout("")
        // Named by its flag.
        .stderr(predicate::str::contains(
            "error: --instance-usd-per-hour: rate (USD per unit) must be greater than zero \
             (got 0 for hosting ml.m5.xlarge in ",
        ))
        .stderr(predicate::str::contains(
            "a metered dimension is never billed at $0",
        ));
}

/// One ledger line of an async invocation's receipt (as `client::async_invoke`
/// writes them): the submission with data in, or the settlement with the model's
/// time, data out and tokens, both with the same call id and start.
/// Writes `lines` as the JSONL ledger `name` in `dir`: its path.
fn ledger_in(dir: &tempfile::TempDir, name: &str, lines: &[String]) -> std::path::PathBuf {
    let ledger = dir.path().join(name);
    std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
    ledger
}

/// The scenario of a model taking 1 MiB in and 1 KiB out, 1,000,000 calls of
/// 800 ms a month on serverless 3072 MB at 0.00006 USD/s, against 0.05 USD per
/// 1,000 calls.
const SERVERLESS_AGAINST_PAY_PER_USE: &[&str] = &[
    "compare",
    "--calls",
    "1000000",
    "--latency-ms",
    "800",
    "--serverless",
    "3072",
    "--serverless-usd-per-second",
    "0.00006",
    "--per-1000",
    "0.05",
];

#[test]
fn data_processed_is_named_unpriced_when_no_payload_size_is_stated() {
    const NOTE: &str =
        "data processed not priced: no payload sizes stated (AWS bills it per GB in and out)";
    // Without sizes: compute only, 1,000,000 × 0.8 s × 0.00006 USD/s = 48 USD, and
    // the row says that AWS's data-processed charge is not in it.
    let json = json_of(
        sagemeter()
            .args(SERVERLESS_AGAINST_PAY_PER_USE)
            .arg("--json"),
    );
    let row = |name: &str| {
        json["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan"]["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("serverless 3072 MB")["cost_usd"], "48");
    assert!(
        row("serverless 3072 MB")["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == NOTE),
        "{json}"
    );
    // Pay per use is all-inclusive: no data charge to leave out.
    assert!(
        !row("pay per use")["notes"]
            .to_string()
            .contains("data processed"),
        "{json}"
    );
    sagemeter()
        .args(SERVERLESS_AGAINST_PAY_PER_USE)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "- serverless 3072 MB: {NOTE}"
        )));

    // With them, AWS bills (2^20 + 2^10) B = 1,049,600 B a call at 0.016 USD/GB
    // (GB = 2^30 B): 1,000,000 × 1,049,600 / 2^30 × 0.016 = 15.6402587890625 USD,
    // so serverless is 48 + 15.64 = 63.64 USD, above pay per use's 1,000,000 /
    // 1,000 × 0.05 = 50 USD.
    let json = json_of(sagemeter().args(SERVERLESS_AGAINST_PAY_PER_USE).args([
        "--bytes-in",
        "1048576",
        "--bytes-out",
        "1024",
        "--data-usd-per-gb",
        "0.016",
        "--json",
    ]));
    assert_eq!(
        plan_cost(&json, "serverless 3072 MB").unwrap(),
        "63.6402587890625"
    );
    assert_eq!(json["cheapest"], "pay per use");
}

#[test]
fn a_data_rate_without_payload_sizes_is_refused() {
    // It would price nothing: no size says how many GB the calls move.
    let mut args = SERVERLESS_AGAINST_PAY_PER_USE.to_vec();
    args.extend(["--data-usd-per-gb", "0.016"]);
    refused(&args)
        .stderr(predicate::str::contains("--data-usd-per-gb"))
        .stderr(predicate::str::contains("--bytes-in"));
}

#[test]
fn a_bad_plan_flag_with_a_ledger_is_a_usage_error_before_the_ledger_is_read() {
    // docs/cli.md: invalid arguments exit 2. A negative price is one whatever
    // the ledger holds, so an empty ledger must not turn it into "no calls" (exit 1).
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("empty.jsonl");
    std::fs::write(&ledger, "").unwrap();
    sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .arg("--per-call=-0.01")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "price per call (USD) must be greater than zero (got -0.01)",
        ))
        .stderr(predicate::str::contains("no calls").not());
}

/// `compare --from-ledger ledger` a day at $0.01 a call, as JSON, with `more`.
fn daily_at_a_cent_a_call(ledger: &std::path::Path, more: &[&str]) -> Command {
    let mut cmd = sagemeter();
    cmd.args(["compare", "--from-ledger"])
        .arg(ledger)
        .args(["--period", "day", "--per-call", "0.01", "--json"])
        .args(more);
    cmd
}

fn async_receipt(call_id: &str, at: &str, settlement: Option<(u64, u64, u64, u64)>) -> String {
    let (usage, lines, note) = match settlement {
        None => (
            serde_json::json!({"operation": "InvokeEndpointAsync", "latency_us": 50_000,
                "bytes_in": 2000, "bytes_out": 0, "variant": null, "outcome": "ok"}),
            serde_json::json!([{"item": "data_in", "quantity": "0.000001862645149230957",
                "unit": "gigabytes", "price": {"status": "unpriced", "reason": "test"}}]),
            "submission: compute is billed as instance-hours of the async endpoint (AsyncInf) \
             and goes on the settlement receipt"
                .to_owned(),
        ),
        Some((seconds, bytes_out, tokens_in, tokens_out)) => (
            serde_json::json!({"operation": "InvokeEndpointAsync",
                "latency_us": seconds * 1_000_000, "bytes_in": 0, "bytes_out": bytes_out,
                "variant": "AllTraffic", "input_tokens": tokens_in,
                "output_tokens": tokens_out, "outcome": "ok"}),
            serde_json::json!([{"item": "compute", "quantity": "0", "unit": "instance_hours",
                "price": {"status": "unpriced", "reason": "test"}}]),
            format!("settlement of the async invocation submitted at {at}"),
        ),
    };
    serde_json::json!({
        "call_id": call_id, "at": at, "endpoint": "nightly-batch", "variant": "AllTraffic",
        "allocation": "busy_time", "usage": usage, "lines": lines, "cost_usd": "0",
        "currency": "USD", "running_client_usd": "0", "running_endpoint_usd": "0",
        "notes": [note]
    })
    .to_string()
}

#[test]
fn compare_from_a_ledger_counts_each_async_invocation_once() {
    // Four invocations, 2,000 B in each, submitted 10:00:00, 10:15:00, 10:30:00 and
    // 10:45:00, one every 15 minutes; the model worked 20, 40, 60 and 60 s; each
    // settlement is written after its submission.
    let lines = [
        async_receipt("a-1", "2026-05-20T10:00:00Z", None),
        async_receipt("a-2", "2026-05-20T10:15:00Z", None),
        async_receipt("a-1", "2026-05-20T10:00:00Z", Some((20, 1000, 300, 100))),
        async_receipt("a-2", "2026-05-20T10:15:00Z", Some((40, 3000, 500, 300))),
        async_receipt("a-3", "2026-05-20T10:30:00Z", None),
        async_receipt("a-3", "2026-05-20T10:30:00Z", Some((60, 2000, 400, 200))),
        async_receipt("a-4", "2026-05-20T10:45:00Z", None),
        async_receipt("a-4", "2026-05-20T10:45:00Z", Some((60, 2000, 400, 200))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);

    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--period", "day", "--per-call", "0.01", "--json"]),
    );
    let profile = &json["profile"];
    // 8 receipts, 4 calls, one every 15 min, so 60 min of traffic (longer than the
    // first start to the last end, 10:46:00): 4 × 86,400 s / 3,600 s = 96 a day
    assert_eq!(profile["calls_per_period"], "96");
    // the model's time: (20 + 40 + 60 + 60) s / 4 = 45 s
    assert_eq!(profile["mean_latency_ms"], "45000");
    // in: 4 × 2,000 B / 4; out: (1,000 + 3,000 + 2,000 + 2,000) B / 4 = 2,000 B
    assert_eq!(profile["bytes_in_per_call"], "2000");
    assert_eq!(profile["bytes_out_per_call"], "2000");
    // tokens: (300 + 500 + 400 + 400) / 4 = 400 in; (100 + 300 + 200 + 200) / 4 = 200 out
    assert_eq!(profile["tokens_in_per_call"], "400");
    assert_eq!(profile["tokens_out_per_call"], "200");
    // 96 calls × 0.01 USD
    assert_eq!(json["plans"][0]["cost_usd"], "0.96");
    // What the 96 rest on: 4 calls in an hour.
    assert_eq!(
        json["ledger_sample"],
        serde_json::json!({"calls": 4, "observed_seconds": "3600"}),
        "{json}"
    );
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(["--period", "day", "--per-call", "0.01"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Ledger: 4 calls in 60 min, 96 calls per day at that rate (the time: the first \
             call's start to the last call's end, or a mean gap between starts per call when \
             longer)"
        ),
        "{text}"
    );

    // A backup copy of the ledger next to it: the directory would hold every
    // receipt twice (192 calls a day): refused, naming both files.
    let copy = dir.path().join("spend-backup.jsonl");
    std::fs::copy(&ledger, &copy).unwrap();
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(dir.path())
        .args(["--period", "day", "--per-call", "0.01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} and {} begin with the same receipt (a-1)",
            copy.display(),
            ledger.display()
        )) || stderr.contains(&format!(
            "{} and {} begin with the same receipt (a-1)",
            ledger.display(),
            copy.display()
        )),
        "{stderr}"
    );
}

#[test]
fn compare_from_a_rolling_ledger_reads_its_files_as_one_and_names_a_torn_line() {
    // The four invocations above, in a rolling ledger's two hourly files; the
    // second file ends with a line torn by a crash.
    let first = [
        async_receipt("a-1", "2026-05-20T10:00:00Z", None),
        async_receipt("a-2", "2026-05-20T10:15:00Z", None),
        async_receipt("a-1", "2026-05-20T10:00:00Z", Some((20, 1000, 300, 100))),
        async_receipt("a-2", "2026-05-20T10:15:00Z", Some((40, 3000, 500, 300))),
        async_receipt("a-3", "2026-05-20T10:30:00Z", None),
        async_receipt("a-3", "2026-05-20T10:30:00Z", Some((60, 2000, 400, 200))),
        async_receipt("a-4", "2026-05-20T10:45:00Z", None),
    ];
    let second = [async_receipt(
        "a-4",
        "2026-05-20T10:45:00Z",
        Some((60, 2000, 400, 200)),
    )];
    let dir = tempfile::tempdir().unwrap();
    let rolled = dir.path().join("receipts");
    std::fs::create_dir(&rolled).unwrap();
    std::fs::write(
        rolled.join("sagemeter-2026-05-20T10.jsonl"),
        first.join("\n") + "\n",
    )
    .unwrap();
    let torn = r#"{"call_id":"a-5","at":"2026-05-20T11:0"#;
    std::fs::write(
        rolled.join("sagemeter-2026-05-20T11.jsonl"),
        second.join("\n") + "\n" + torn,
    )
    .unwrap();

    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&rolled)
            .args(["--period", "day", "--per-call", "0.01", "--json"]),
    );
    // As from one file: 4 calls, one every 15 min, 96 a day, 45 s each.
    assert_eq!(json["profile"]["calls_per_period"], "96");
    assert_eq!(json["profile"]["mean_latency_ms"], "45000");
    assert_eq!(json["plans"][0]["cost_usd"], "0.96");
    let skipped = &json["skipped_torn_lines"];
    assert_eq!(skipped.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(skipped[0]["line"], 2);
    assert_eq!(skipped[0]["bytes"], torn.len());
    assert!(
        skipped[0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("sagemeter-2026-05-20T11.jsonl")),
        "{skipped}"
    );

    // The table says so too.
    sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&rolled)
        .args(["--period", "day", "--per-call", "0.01"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "Ledger: skipped a torn last line of {} (line 2, {} bytes: an interrupted write)",
            rolled.join("sagemeter-2026-05-20T11.jsonl").display(),
            torn.len()
        )));
}

#[test]
fn a_ledger_mean_beyond_an_hour_is_compared_at_a_stated_latency() {
    // Two async invocations whose settlements took 2 h and 4 h (queue time
    // included): a mean of 3 h, beyond the hour a profile allows.
    let lines = [
        async_receipt("q-1", "2026-05-20T10:00:00Z", None),
        async_receipt("q-1", "2026-05-20T10:00:00Z", Some((7_200, 0, 0, 0))),
        async_receipt("q-2", "2026-05-20T11:00:00Z", None),
        async_receipt("q-2", "2026-05-20T11:00:00Z", Some((14_400, 0, 0, 0))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "queued.jsonl", &lines);

    // Without a stated latency: refused, saying which flag answers it.
    sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(["--per-call", "0.01"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("mean latency is out of range"))
        .stderr(predicate::str::contains(
            "--latency-ms states the mean to compare with",
        ));

    // With one, compared at it: 0.8 s × 0.00006 USD/s = 0.000048 USD a call.
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args([
                "--latency-ms",
                "800",
                "--serverless",
                "3072",
                "--serverless-usd-per-second",
                "0.00006",
                "--period",
                "day",
                "--json",
            ]),
    );
    assert_eq!(json["profile"]["mean_latency_ms"], "800");
    // (7,200 + 14,400) s / 2 = 10,800,000 ms
    assert_eq!(
        json["ledger_overrides"][0],
        "mean latency per call 800 ms from --latency-ms, in place of the ledger's 10800000 ms"
    );
}

#[test]
fn profile_flags_replace_the_ledgers_figures_such_as_an_unsettled_calls_latency() {
    // Four async invocations submitted (2,000 B in each, 50 ms to queue), none settled:
    // the ledger knows no model time, data out or tokens. One every 15 minutes: an
    // hour of traffic.
    let lines = [
        async_receipt("u-1", "2026-05-20T10:00:00Z", None),
        async_receipt("u-2", "2026-05-20T10:15:00Z", None),
        async_receipt("u-3", "2026-05-20T10:30:00Z", None),
        async_receipt("u-4", "2026-05-20T10:45:00Z", None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let args = [
        "--period",
        "day",
        "--latency-ms",
        "800",
        "--bytes-in",
        "1073741824",
        "--bytes-out",
        "536870912",
        "--tokens-in",
        "1000",
        "--tokens-out",
        "500",
        "--serverless",
        "3072",
        "--serverless-usd-per-second",
        "0.00006",
        "--data-usd-per-gb",
        "0.016",
        "--per-1m-tokens-in",
        "2",
        "--per-1m-tokens-out",
        "6",
    ];

    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args)
            .arg("--json"),
    );
    let profile = &json["profile"];
    // 4 calls, one every 15 min, 3,600 s: 4 × 86,400 / 3,600 = 96 a day (the ledger's)
    assert_eq!(profile["calls_per_period"], "96");
    // the flags' figures, not the ledger's (0 ms, 2,000 B in, 0 B out, 0 tokens)
    assert_eq!(profile["mean_latency_ms"], "800");
    assert_eq!(profile["bytes_in_per_call"], "1073741824");
    assert_eq!(profile["bytes_out_per_call"], "536870912");
    assert_eq!(profile["tokens_in_per_call"], "1000");
    assert_eq!(profile["tokens_out_per_call"], "500");
    let cost = |name: &str| {
        json["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["plan"]["name"] == name)
            .map(|row| row["cost_usd"].clone())
            .unwrap_or_else(|| panic!("no plan {name} in {json}"))
    };
    // per token: (1,000 × 2 + 500 × 6) / 10^6 = 0.005 a call; × 96 = 0.48
    assert_eq!(cost("per token"), "0.48");
    // serverless: 0.8 s × 0.00006 = 0.000048; data 1 GiB × 0.016 = 0.016 in and
    // 0.5 GiB × 0.016 = 0.008 out; 0.024048 a call × 96 = 2.308608
    assert_eq!(cost("serverless 3072 MB"), "2.308608");
    assert_eq!(
        json["ledger_overrides"][0],
        "mean latency per call 800 ms from --latency-ms, in place of the ledger's none known"
    );

    // The table says what replaced what.
    sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(args)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\
Ledger: mean latency per call 800 ms from --latency-ms, in place of the ledger's none known
Ledger: bytes in per call 1 GiB from --bytes-in, in place of the ledger's 2,000 B
Ledger: bytes out per call 512 MiB from --bytes-out, in place of the ledger's 0 B
Ledger: tokens in per call 1000 from --tokens-in, in place of the ledger's none reported
Ledger: tokens out per call 500 from --tokens-out, in place of the ledger's none reported
",
        ));
}

#[test]
fn serverless_from_a_ledger_bills_each_call_rounded_up_unless_a_latency_is_stated() {
    // Two calls of 1.2 ms and 2.8 ms, half an hour apart: one hour of traffic.
    let receipt = |id: &str, at: &str, latency_us: u64| {
        serde_json::json!({
            "call_id": id, "at": at, "endpoint": "realtime", "variant": "AllTraffic",
            "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": latency_us,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        })
        .to_string()
    };
    let lines = [
        receipt("c-1", "2026-05-20T10:00:00Z", 1_200),
        receipt("c-2", "2026-05-20T10:30:00Z", 2_800),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let args = [
        "--period",
        "day",
        "--serverless",
        "3072",
        "--serverless-usd-per-second",
        "0.00006",
        "--json",
    ];
    let serverless = |json: &serde_json::Value| {
        json["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["plan"]["name"] == "serverless 3072 MB")
            .map(|row| row["cost_usd"].clone())
            .unwrap_or_else(|| panic!("no serverless plan in {json}"))
    };

    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args),
    );
    // 2 calls × 86,400 s / 3,600 s = 48 a day; AWS bills 2 ms + 3 ms per 2 calls,
    // 2.5 ms a call: 48 × 0.0025 s × 0.00006 USD/s = 0.0000072 USD (ceil of the
    // 2 ms mean would bill 48 × 0.002 s × 0.00006 = 0.00000576)
    assert_eq!(json["profile"]["calls_per_period"], "48");
    assert_eq!(json["profile"]["billed_ms_per_call"], "2.5");
    assert_eq!(serverless(&json), "0.0000072");

    // A stated latency is billed as stated: 2 ms rounded up is 2 ms; 48 × 0.002 s ×
    // 0.00006 USD/s = 0.00000576 USD
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args)
            .args(["--latency-ms", "2"]),
    );
    assert!(
        json["profile"].get("billed_ms_per_call").is_none(),
        "{json}"
    );
    assert_eq!(serverless(&json), "0.00000576");
}

#[test]
fn a_ledger_line_of_a_time_no_call_runs_is_an_error_naming_it_never_a_panic() {
    // Line 2 is corrupt: its compute line bills 10^26 s of serverless, 10^29 ms,
    // beyond what a decimal holds (7.9 × 10^28).
    let receipt = |id: &str, at: &str, seconds: &str| {
        serde_json::json!({
            "call_id": id, "at": at, "endpoint": "realtime", "variant": "AllTraffic",
            "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1_200,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": seconds, "unit": "seconds",
                "price": {"status": "unpriced", "reason": "test"}}],
            "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        })
        .to_string()
    };
    let lines = [
        receipt("c-1", "2026-05-20T10:00:00Z", "0.002"),
        receipt("c-2", "2026-05-20T10:30:00Z", "100000000000000000000000000"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(["--per-call", "0.01", "--serverless", "3072"])
        .args(["--serverless-usd-per-second", "0.00006"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "ledger {}, line 2: the serverless seconds on a receipt's compute line is out of \
             range (got 100000000000000000000000000): the receipt of call `c-2` on endpoint \
             `realtime` bills a time no call runs",
            ledger.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[cfg(feature = "parquet")]
#[test]
fn compare_from_a_parquet_ledger_reads_it_as_parquet_not_as_a_damaged_jsonl() {
    // The ledger of two calls (1.2 ms and 2.8 ms, over one hour), converted to Parquet.
    let receipt = |id: &str, at: &str, latency_us: u64| {
        serde_json::json!({
            "call_id": id, "at": at, "endpoint": "realtime", "variant": "AllTraffic",
            "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": latency_us,
                      "bytes_in": 100, "bytes_out": 0, "variant": "AllTraffic",
                      "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        })
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    std::fs::write(
        &ledger,
        [
            receipt("c-1", "2026-05-20T10:00:00Z", 1_200),
            receipt("c-2", "2026-05-20T10:30:00Z", 2_800),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let converted = dir.path().join("parquet");
    sagemeter()
        .args(["ledger", "convert"])
        .arg(&ledger)
        .args(["--to", "parquet"])
        .arg(&converted)
        .assert()
        .success();
    let args = ["--period", "day", "--per-call", "0.01", "--json"];
    for from in [converted.join("spend.parquet"), converted.clone()] {
        let json = json_of(
            sagemeter()
                .args(["compare", "--from-ledger"])
                .arg(&from)
                .args(args),
        );
        // 2 calls × 86,400 s / 3,600 s = 48 a day, as from the JSON Lines ledger
        assert_eq!(
            json["profile"]["calls_per_period"],
            "48",
            "{}",
            from.display()
        );
        assert_eq!(json["profile"]["bytes_in_per_call"], "100");
    }
    // A directory holding a ledger and its conversion would count each call twice.
    std::fs::copy(
        converted.join("spend.parquet"),
        dir.path().join("spend.parquet"),
    )
    .unwrap();
    sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(dir.path())
        .args(args)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "holds both JSON Lines and Parquet ledgers",
        ));
}

#[test]
fn a_decimal_comma_is_refused_never_read_as_another_amount() {
    // `0,0125` meant 0.0125 USD a call; read as 125 it would price 100,000 calls at
    // 12,500,000 USD. `1.000,50` meant 1,000.50; read as 1.0005 it would be a fee of a
    // tenth of a cent. `0,012` is no grouping in threes either (a first group of 0).
    for (flag, value) in [
        ("--per-call", "0,0125"),
        ("--subscription", "1.000,50"),
        ("--per-call", "0,012"),
        ("--per-call", "1,00"),
        ("--subscription", "1,000_000"),
    ] {
        let mut args = vec!["compare", "--calls", "100000"];
        if flag != "--per-call" {
            args.extend(["--per-call", "0.0125"]);
        }
        if flag != "--subscription" {
            args.extend(["--subscription", "500"]);
        }
        args.extend([flag, value]);
        refused(&args).stderr(predicate::str::contains(format!(
            "`{value}` is not a number: use `.` for decimals"
        )));
    }
}

#[test]
fn a_number_no_decimal_holds_is_refused_as_too_large_or_too_precise_with_the_range() {
    // Each is a number, so "is not a number" would be wrong: it is out of what an
    // exact decimal holds (±79,228,162,514,264,337,593,543,950,335, 28 decimal
    // places), and rounding it would price another amount.
    for (args, says) in [
        (
            vec!["--calls", "1e30"],
            "`1e30` is too large (a decimal holds at most \
             79,228,162,514,264,337,593,543,950,335): give 0 to 10^15 calls per period",
        ),
        (
            vec!["--calls", "1e-30"],
            "`1e-30` is too small to read exactly (below 10^-28): give 0 to 10^15 calls \
             per period",
        ),
        (
            // 29 decimal places: rounded, it would be 0 calls
            vec!["--calls", "0.00000000000000000000000000001"],
            "is too precise to read exactly (at most 28 digits, and 28 decimal places): \
             give 0 to 10^15 calls per period",
        ),
        (
            vec![
                "--calls",
                "100",
                "--latency-ms",
                "1e30",
                "--serverless",
                "3072",
            ],
            "`1e30` is too large (a decimal holds at most \
             79,228,162,514,264,337,593,543,950,335): give 0 to 3,600,000 ms",
        ),
        (
            vec![
                "--calls",
                "100",
                "--subscription",
                "10",
                "--included",
                "8e28",
            ],
            "`8e28` is too large (a decimal holds at most \
             79,228,162,514,264,337,593,543,950,335): give 0 to 10^15 calls per period",
        ),
        (
            vec!["--calls", "100", "--per-call", "1e-29"],
            "`1e-29` is too small to read exactly (below 10^-28): give an amount from 0 to \
             1,000,000,000 USD",
        ),
        (
            // Below what even an f64 holds (it reads 0.0): still not zero calls.
            vec!["--calls", "1e-400"],
            "`1e-400` is too small to read exactly (below 10^-28): give 0 to 10^15 calls \
             per period",
        ),
        (
            vec![
                "--calls",
                "100",
                "--subscription",
                "10",
                "--overage",
                "1e-400",
            ],
            "`1e-400` is too small to read exactly (below 10^-28): give an amount from 0 to \
             1,000,000,000 USD",
        ),
        (
            // `=`: clap takes a bare `-1e-400` for a flag.
            vec!["--calls", "100", "--per-call=-1e-400"],
            "`-1e-400` is too small to read exactly (below 10^-28): give an amount from 0 \
             to 1,000,000,000 USD",
        ),
        (
            vec!["--calls", "NaN"],
            "`NaN` is not a number: use `.` for decimals",
        ),
        (
            vec!["--calls", "inf"],
            "`inf` is not a number: use `.` for decimals",
        ),
    ] {
        let mut all = vec!["compare"];
        all.extend(&args);
        if !all.iter().any(|arg| arg.starts_with("--per-call")) {
            all.extend(["--per-call", "0.01"]);
        }
        refused(&all).stderr(predicate::str::contains(says));
    }
    // A zero mantissa is zero at any exponent, however small: `0e-400` calls is 0.
    let json = json_of(sagemeter().args([
        "compare",
        "--calls",
        "0e-400",
        "--per-call",
        "0.01",
        "--json",
    ]));
    assert_eq!(json["profile"]["calls_per_period"], "0", "{json}");
}

#[test]
fn a_negative_value_is_refused_by_what_it_is_not_as_an_unknown_argument() {
    // `--calls -5` is the value -5, not an unknown flag `-5`.
    for (args, says) in [
        (
            vec!["--calls", "-5", "--per-call", "0.01"],
            "calls per period must not be negative (got -5)",
        ),
        (
            vec!["--calls", "100", "--per-call", "-0.01"],
            "price per call (USD) must be greater than zero (got -0.01)",
        ),
        (
            vec![
                "--calls",
                "100",
                "--instance",
                "ml.m5.xlarge",
                "--instance-usd-per-hour",
                "0.23",
                "--hours",
                "-1",
            ],
            "instance hours per period must be greater than zero (got -1)",
        ),
    ] {
        let mut all = vec!["compare"];
        all.extend(&args);
        refused(&all).stderr(predicate::str::contains(says));
    }
}

/// A flag of a plan that is not asked for would change nothing: refused, naming
/// the plan it needs; a negative discount reaches the discount's own check.
/// `compare` of 100 calls at $0.01 each with `flag value` too, which must be refused.
fn refused_with(flag: &str, value: &str) -> assert_cmd::assert::Assert {
    refused(&[
        "compare",
        "--calls",
        "100",
        "--per-call",
        "0.01",
        flag,
        value,
    ])
}

#[test]
fn plan_flags_without_their_plan_are_refused_and_a_negative_discount_is_named() {
    for (flag, value, needs) in [
        ("--count", "3", "--instance"),
        ("--term", "3y", "--savings-plan"),
    ] {
        refused_with(flag, value).stderr(predicate::str::contains(needs));
    }
    refused(&[
        "compare",
        "--calls",
        "100",
        "--instance",
        "ml.m5.xlarge",
        "--savings-plan",
        "0.1",
        "--discount",
        "-5%",
    ])
    .stderr(predicate::str::contains(
        "invalid value '-5%' for '--discount",
    ));
}

#[test]
fn a_whole_number_flag_says_what_is_wrong_with_its_value_and_reads_exponents() {
    for (flag, value, wrong, accepted) in [
        (
            "--bytes-in",
            "-1",
            "`-1` is negative",
            "give a whole number of bytes, 0 or more",
        ),
        (
            "--tokens-out",
            "1e30",
            "`1e30` is too large",
            "give a whole number of tokens",
        ),
        (
            "--tokens-in",
            "2.5",
            "`2.5` is not a whole number",
            "give a whole number of tokens",
        ),
        (
            "--count",
            "5000000000",
            "`5000000000` is too large",
            "give a whole number of instances",
        ),
        (
            "--serverless",
            "two",
            "`two` is not a number",
            "e.g. 40,000",
        ),
    ] {
        refused_with(flag, value)
            .stderr(predicate::str::contains(wrong).and(predicate::str::contains(accepted)));
    }
    // Written as the other numbers may be: 1e3 bytes and 1,500 tokens a call.
    let json = json_of(sagemeter().args([
        "compare",
        "--calls",
        "100",
        "--per-call",
        "0.01",
        "--bytes-in",
        "1e3",
        "--tokens-in",
        "1,500",
        "--json",
    ]));
    assert_eq!(json["profile"]["bytes_in_per_call"], "1000");
    assert_eq!(json["profile"]["tokens_in_per_call"], "1500");
}

#[test]
fn a_years_hours_are_grouped_in_the_header_as_every_other_figure() {
    // 365 days × 24 h = 8,760 h.
    sagemeter()
        .args([
            "compare",
            "--calls",
            "1000",
            "--per-call",
            "0.01",
            "--period",
            "year",
        ])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "1,000 calls per year (8,760 h) in us-east-1\n",
        ));
}

#[test]
fn numbers_in_exponent_form_and_with_trailing_zeros_still_parse() {
    // `1.5E+3` calls, a price `0.0100` with a trailing zero, a fee `100e-2`
    let json = json_of(sagemeter().args([
        "compare",
        "--calls",
        "1.5E+3",
        "--per-call",
        "0.0100",
        "--subscription",
        "100e-2",
        "--json",
    ]));
    assert_eq!(json["profile"]["calls_per_period"], "1500");
    let cost = |name: &str| plan_cost(&json, name);
    // 1,500 × 0.01 = 15 USD; the fee 100 × 10^-2 = 1 USD
    assert_eq!(cost("pay per use"), Some("15".into()));
    assert_eq!(cost("subscription"), Some("1".into()));
}

#[test]
fn thousands_separators_in_groups_of_three_still_parse() {
    // 100,000 calls × 0.0125 = 1,250 USD pay per use; the fee `1,000.50` is 1000.50 USD.
    let json = json_of(sagemeter().args([
        "compare",
        "--calls",
        "100,000",
        "--per-call",
        "0.0125",
        "--subscription",
        "1,000.50",
        "--json",
    ]));
    assert_eq!(json["profile"]["calls_per_period"], "100000");
    let cost = |name: &str| plan_cost(&json, name);
    assert_eq!(cost("pay per use"), Some("1250".into()));
    // 1,000.50 USD, written normalised.
    assert_eq!(cost("subscription"), Some("1000.5".into()));
}

#[test]
fn a_chart_that_cannot_be_written_is_refused_before_anything_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = dir.path().join("a.jpg");
    sagemeter()
        .current_dir(dir.path())
        .args(["compare", "--calls", "1", "--per-call", "0.01", "--chart"])
        .arg(&jpg)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("name the file .svg or .png"));
    assert!(!jpg.exists());
}

/// With prices and a price history to fetch, a chart that cannot be drawn is refused
/// before any request: not after minutes of downloads, with the work lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_chart_is_refused_before_any_price_or_history_request() {
    use super::clean_env::refused_url;
    let server = crate::support::fake_pricelist::published::publish(None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = super::clean_env::sagemeter(&refused_url(), &server.url())
        .env("SAGEMETER_CACHE_DIR", dir.path())
        .current_dir(dir.path())
        .args([
            "compare",
            "--calls",
            "100000",
            "--instance",
            "ml.c5.2xlarge",
            "--subscription",
            "250",
            "--price-trend",
            "history",
            "--chart",
            "plans.jpg",
        ])
        .output()
        .expect("run sagemeter");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`plans.jpg`: name the file .svg or .png"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(server.request_count(), 0, "{:?}", server.requests());
    assert_eq!(server.file_downloads(), 0);
    assert!(!dir.path().join("plans.jpg").exists());
}

#[test]
fn nothing_to_compare_says_which_flags_make_a_plan() {
    refused(&["compare", "--calls", "100"]).stderr(predicate::str::contains(
        "nothing to compare: give at least one plan: --per-call/--per-1000",
    ));
}

#[test]
fn the_work_must_be_stated() {
    sagemeter()
        .args(["compare", "--per-call", "0.01"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--calls <N>"));
}

#[cfg(feature = "charts")]
#[test]
fn chart_writes_an_svg_and_a_png_with_the_table() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["plans.svg", "plans.png"] {
        let path = dir.path().join(name);
        sagemeter()
            .args([
                "compare",
                "--calls",
                "100000",
                "--per-call",
                "0.0125",
                "--subscription",
                "500",
                "--chart",
            ])
            .arg(&path)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "Chart: {}",
                path.display()
            )));
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".svg") {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("subscription") && svg.contains("40k calls"));
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            // IHDR: width and height right after the chunk header
            assert_eq!(&bytes[12..16], b"IHDR");
            assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1100);
            assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 650);
        }
    }
}

#[cfg(feature = "charts")]
#[test]
fn json_with_a_chart_keeps_stdout_pure_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.svg");
    let output = sagemeter()
        .args([
            "compare",
            "--calls",
            "10",
            "--per-call",
            "1",
            "--subscription",
            "5",
            "--json",
            "--chart",
        ])
        .arg(&path)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice::<serde_json::Value>(&output).expect("stdout is JSON only");
    assert!(path.exists());
}

// ------------------------------------------------------------ price trends

/// An instance (730 h × 0.23 = 167.90 a month) against a 160 USD subscription.
fn instance_and_subscription() -> Vec<&'static str> {
    vec![
        "compare",
        "--calls",
        "100000",
        "--instance",
        "ml.m5.xlarge",
        "--instance-usd-per-hour",
        "0.23",
        "--subscription",
        "160",
    ]
}

#[test]
fn a_price_trend_adds_the_months_and_where_a_commitment_stops_being_cheaper() {
    // 167.90 × 0.99^(k − 1): 166.221, 164.55879, 162.9132021, 161.284070079,
    // 159.67122937821 < 160 in month 6; total 982.54829155721 − 960 = 22.55 saved
    sagemeter()
        .args(instance_and_subscription())
        .args(["--price-trend", "-1%/month", "--horizon", "6m"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\n\
Price trend: AWS on-demand rates -1%/month (monthly factor 0.99) over 6 months; month 1 is at today's prices

month  subscription  ml.m5.xlarge x1  cheapest
    1        160.00           167.90  subscription
    2        160.00           166.22  subscription
    3        160.00           164.56  subscription
    4        160.00           162.91  subscription
    5        160.00           161.28  subscription
    6        160.00           159.67  ml.m5.xlarge x1
total        960.00           982.55  subscription

How prices move:
- subscription: a commitment at today's fee for the whole horizon (not an AWS price)
- ml.m5.xlarge x1: follows the trend (AWS on-demand rates)

Commitments against paying per use:
- subscription stops being cheaper than ml.m5.xlarge x1 in month 6 at -1%/month; over 6 months it still saves 22.55 USD
",
        ))
        // the comparison at today's prices comes first, as without a trend
        .stdout(predicate::str::starts_with(
            "100,000 calls per month (730 h) in us-east-1\n",
        ));
}

#[test]
fn the_trend_in_json_is_the_serialised_projection() {
    let json = json_of(sagemeter().args(instance_and_subscription()).args([
        "--price-trend=-1%/month",
        "--horizon",
        "6m",
        "--json",
    ]));
    // the comparison's fields are still there
    assert_eq!(json["cheapest"], "subscription");
    let trend = &json["trend"];
    assert_eq!(
        trend["trend"],
        serde_json::json!({"kind": "uniform", "rate": {"change": "-0.01", "per": "month"}})
    );
    assert_eq!(trend["horizon_months"], 6);
    assert_eq!(trend["factors"][0]["monthly_factor"], "0.99");
    assert_eq!(trend["factors"][0]["by_month"][2], "0.9801");
    let instance = &trend["plans"][1];
    assert_eq!(instance["name"], "ml.m5.xlarge x1");
    assert_eq!(instance["basis"], "trend");
    assert_eq!(instance["monthly_usd"][5], "159.67122937821");
    assert_eq!(instance["cumulative_usd"][1], "334.121");
    assert_eq!(instance["total_usd"], "982.54829155721");
    assert_eq!(trend["plans"][0]["basis"], "commitment");
    assert_eq!(
        trend["plans"][0]["renews_every_months"],
        serde_json::Value::Null
    );
    assert_eq!(trend["cheapest_by_month"][5], "ml.m5.xlarge x1");
    let outlook = &trend["commitments"][0];
    assert_eq!(outlook["commitment"], "subscription");
    assert_eq!(outlook["pay_per_use"], "ml.m5.xlarge x1");
    assert_eq!(outlook["cheaper_in_month_1"], true);
    assert_eq!(outlook["stops_being_cheaper_in_month"], 6);
    assert_eq!(outlook["becomes_cheaper_in_month"], serde_json::Value::Null);
    assert_eq!(outlook["saving_over_horizon_usd"], "22.54829155721");
    assert_eq!(outlook["cheaper_over_horizon"], true);

    // Without --price-trend there is no `trend` key.
    let output = sagemeter()
        .args(instance_and_subscription())
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert!(json.get("trend").is_none());
}

#[test]
fn a_yearly_trend_defaults_to_twelve_months_and_a_horizon_may_be_in_years() {
    let months = |extra: &[&str]| {
        let output = sagemeter()
            .args(instance_and_subscription())
            .args(["--price-trend", "-20%/year", "--json"])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let json: serde_json::Value = serde_json::from_slice(&output).unwrap();
        // 0.8^(1/12) = 0.98157652987375…
        assert_eq!(
            json["trend"]["factors"][0]["monthly_factor"],
            "0.981576529874"
        );
        json["trend"]["horizon_months"].as_u64().unwrap()
    };
    assert_eq!(months(&[]), 12);
    assert_eq!(months(&["--horizon", "2y"]), 24);
    assert_eq!(months(&["--horizon", "18 months"]), 18);
}

#[test]
fn a_price_trend_in_another_form_is_refused_with_the_forms_accepted() {
    for bad in ["-20%", "histories", "-0.2", "-20%/week"] {
        sagemeter()
            .args(instance_and_subscription())
            .args(["--price-trend", bad])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "invalid value '{bad}' for '--price-trend <RATE>': `{bad}` is not a price \
                 trend: write the change of AWS on-demand prices as a percentage per year or \
                 per month, with its sign: -20%/year, -1.5%/month or +5%/year; or `history` \
                 for the trend measured from the Price List"
            )));
    }
    sagemeter()
        .args(instance_and_subscription())
        .args(["--price-trend", "-100%/year"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "price trend is out of range (got -100%/year): prices cannot fall by 100% or more",
        ));
    sagemeter()
        .args(instance_and_subscription())
        .args(["--price-trend", "+30%/month"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "at most +1000%/year (about +22.1%/month) is modelled",
        ));
    for bad in ["0m", "11y", "12w", "12"] {
        sagemeter()
            .args(instance_and_subscription())
            .args(["--price-trend", "-1%/month", "--horizon", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "`{bad}` is not a horizon: write months or years, e.g. 12m, 18m or 2y (1 month \
                 to 10 years)"
            )));
    }
    // A horizon alone projects nothing: it needs a trend.
    sagemeter()
        .args(instance_and_subscription())
        .args(["--horizon", "12m"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the following required arguments were not provided:\n  --price-trend <RATE>",
        ));
}

#[cfg(feature = "charts")]
#[test]
fn a_chart_with_a_price_trend_adds_the_monthly_chart_next_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.svg");
    let trend_path = dir.path().join("plans-trend.svg");
    sagemeter()
        .args(instance_and_subscription())
        .args(["--price-trend", "-1%/month", "--chart"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::ends_with(format!(
            "\nChart: {}\nTrend chart: {}\n",
            path.display(),
            trend_path.display()
        )));
    assert!(path.exists());
    let svg = std::fs::read_to_string(&trend_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // both plans, and the subscription stops being cheaper in month 6
    for text in [
        "subscription",
        "ml.m5.xlarge x1",
        "month 6: commitment no longer cheaper",
    ] {
        assert!(svg.contains(text), "{text} missing from the trend chart");
    }
}

/// `compare --from-ledger DIR --json` where DIR's name is not UTF-8 (Linux allows
/// any bytes): the torn line's file is named lossily, and stdout is whole JSON.
#[cfg(target_os = "linux")]
#[test]
fn a_ledger_path_that_is_not_utf8_still_gives_whole_json() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let rolled = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"receipts-\xff"));
    std::fs::create_dir(&rolled).unwrap();
    let torn = r#"{"call_id":"a-5","at":"2026-05-20T11:0"#;
    let lines = [
        async_receipt("a-1", "2026-05-20T10:00:00Z", None),
        async_receipt("a-1", "2026-05-20T10:00:00Z", Some((20, 1000, 300, 100))),
    ];
    std::fs::write(
        rolled.join("sagemeter-2026-05-20T10.jsonl"),
        lines.join("\n") + "\n" + torn,
    )
    .unwrap();
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&rolled)
            .args(["--period", "day", "--per-call", "0.01", "--json"]),
    );
    let file = json["skipped_torn_lines"][0]["file"].as_str().unwrap();
    assert!(
        file.ends_with("receipts-\u{fffd}/sagemeter-2026-05-20T10.jsonl"),
        "{file}"
    );
}

/// A synchronous call's ledger line on `endpoint`, made in `region`, at `at`.
fn call_in(endpoint: &str, region: &str, call_id: &str, at: &str) -> String {
    serde_json::json!({
        "call_id": call_id, "at": at, "endpoint": endpoint, "region": region,
        "variant": "AllTraffic", "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 100_000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": "0", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    })
    .to_string()
}

#[test]
fn a_ledger_is_priced_in_the_region_its_calls_were_made_in_one_endpoint_at_a_time() {
    use super::clean_env::refused_url;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    // No Price List: the bundled snapshot's rates.
    let compare = |ledger: &std::path::Path, more: &[&str]| {
        let mut cmd = super::clean_env::sagemeter(&refused_url(), &refused_url());
        cmd.env("SAGEMETER_CACHE_DIR", dir.path())
            .args(["compare", "--from-ledger"])
            .arg(ledger)
            .args(["--instance", "ml.m5.xlarge", "--json"])
            .args(more);
        Command::from_std(cmd)
    };
    let instance = |json: &serde_json::Value| json["plans"][0]["cost_usd"].clone();

    // Calls made in eu-west-1, the CLI configured for us-east-1: eu-west-1's rate,
    // 730 h × 0.257 USD (the snapshot's eu-west-1 hosting rate) = 187.61 a month.
    let eu = write(
        "eu.jsonl",
        &[
            call_in("chat", "eu-west-1", "e-1", "2026-05-20T10:00:00Z"),
            call_in("chat", "eu-west-1", "e-2", "2026-05-20T10:30:00Z"),
        ],
    );
    let json = json_of(&mut compare(&eu, &[]));
    assert_eq!(json["region"], "eu-west-1", "{json}");
    assert_eq!(instance(&json), "187.61");
    assert_eq!(
        json["ledger_notes"][0],
        "priced in eu-west-1, the region its calls were made in"
    );
    // --region wins, and says so: 730 h × 0.23 USD = 167.9.
    let json = json_of(&mut compare(&eu, &["--region", "us-east-1"]));
    assert_eq!(json["region"], "us-east-1");
    assert_eq!(instance(&json), "167.9");
    assert_eq!(
        json["ledger_notes"][0],
        "its calls were made in eu-west-1; priced in us-east-1, as --region says"
    );

    // Two endpoints in two regions: one region's prices for both would be wrong.
    let mixed = write(
        "mixed.jsonl",
        &[
            call_in("chat", "eu-west-1", "m-1", "2026-05-20T10:00:00Z"),
            call_in("search", "us-east-1", "m-2", "2026-05-20T10:10:00Z"),
            call_in("chat", "eu-west-1", "m-3", "2026-05-20T10:20:00Z"),
        ],
    );
    compare(&mixed, &[])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "calls were made in several regions (eu-west-1, us-east-1)",
        ))
        .stderr(predicate::str::contains(
            "--region eu-west-1 or --region us-east-1 takes one region's calls, priced there",
        ));
    // One endpoint at a time: chat's two calls, 20 min apart, in eu-west-1.
    let json = json_of(&mut compare(
        &mixed,
        &["--endpoint", "chat", "--period", "day"],
    ));
    assert_eq!(json["region"], "eu-west-1");
    // 2 calls, one every 20 min: 2 × 86,400 s / 2,400 s = 72 a day
    assert_eq!(json["profile"]["calls_per_period"], "72");
    assert_eq!(json["ledger_sample"]["calls"], 2);
    // Two endpoints of one region: compared as one workload, and said.
    let one_region = write(
        "one-region.jsonl",
        &[
            call_in("chat", "us-east-1", "o-1", "2026-05-20T10:00:00Z"),
            call_in("search", "us-east-1", "o-2", "2026-05-20T10:10:00Z"),
        ],
    );
    let json = json_of(&mut compare(&one_region, &[]));
    assert_eq!(json["ledger_sample"]["calls"], 2);
    assert_eq!(
        json["ledger_notes"][0],
        "the calls of 2 endpoints (chat, search) are compared as one workload; --endpoint \
         takes one"
    );
    // An endpoint the ledger does not hold: named, with what it holds.
    compare(&mixed, &["--endpoint", "chta"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "has no calls of chta; it holds chat, search",
        ));
}

#[test]
fn since_and_until_take_one_stretch_of_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        call_in("chat", "us-east-1", "s-1", "2026-05-20T10:00:00Z"),
        call_in("chat", "us-east-1", "s-2", "2026-05-20T10:30:00Z"),
        call_in("chat", "us-east-1", "s-3", "2026-05-20T11:00:00Z"),
        call_in("chat", "us-east-1", "s-4", "2026-05-20T11:10:00Z"),
    ];
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let compare = |more: &[&str]| daily_at_a_cent_a_call(&ledger, more);
    // 10:00 to 11:00 (excluded): two calls half an hour apart, one an hour of
    // traffic: 2 × 86,400 / 3,600 = 48 a day.
    let json = json_of(&mut compare(&[
        "--since",
        "2026-05-20T10:00:00Z",
        "--until",
        "2026-05-20T11:00:00Z",
    ]));
    assert_eq!(json["ledger_sample"]["calls"], 2, "{json}");
    assert_eq!(json["profile"]["calls_per_period"], "48");
    // From 11:00 on: 11:00 and 11:10, 20 min of traffic: 2 × 86,400 / 1,200 = 144.
    let json = json_of(&mut compare(&["--since", "2026-05-20T11:00:00Z"]));
    assert_eq!(json["profile"]["calls_per_period"], "144");
    // A range with no call in it, and one that cannot hold any.
    compare(&["--since", "2026-05-21"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "has no calls to compare from 2026-05-21T00:00:00+00:00 until its end",
        ));
    compare(&["--since", "2026-05-21", "--until", "2026-05-20"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not before --until"));
}

#[test]
fn a_range_asked_for_is_the_time_its_calls_stand_for_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // A ledger from 2026-05-20T00:00 to past 2026-05-22T00:00; chat called twice on
    // the 20th, search at either end.
    let lines = [
        call_in("search", "us-east-1", "r-1", "2026-05-20T00:00:00Z"),
        call_in("chat", "us-east-1", "r-2", "2026-05-20T10:00:00Z"),
        call_in("chat", "us-east-1", "r-3", "2026-05-20T10:30:00Z"),
        call_in("search", "us-east-1", "r-4", "2026-05-22T00:00:00Z"),
    ];
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let compare = |more: &[&str]| daily_at_a_cent_a_call(&ledger, more);
    // The 20th holds chat's two calls: two a day, not the 48 a day their half
    // hour apart would make: 2 × 86,400 s / 86,400 s.
    let json = json_of(&mut compare(&[
        "--endpoint",
        "chat",
        "--since",
        "2026-05-20",
        "--until",
        "2026-05-21",
    ]));
    assert_eq!(json["profile"]["calls_per_period"], "2", "{json}");
    assert_eq!(json["ledger_sample"]["observed_seconds"], "86400");
    assert!(
        json["ledger_notes"][0]
            .as_str()
            .is_some_and(|n| n.starts_with("the calls are scaled over the range asked")),
        "{json}"
    );
    // The 21st onwards holds search's last call only: the note names the endpoints
    // counted, not every one the ledger holds.
    let json = json_of(&mut compare(&["--since", "2026-05-20T10:00:00Z"]));
    assert_eq!(
        json["ledger_notes"][0],
        "the calls of 2 endpoints (chat, search) are compared as one workload; --endpoint \
         takes one"
    );
    let json = json_of(&mut compare(&["--since", "2026-05-21"]));
    assert!(
        json["ledger_notes"].as_array().is_none_or(|notes| !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("endpoints"))),
        "{json}"
    );
    // Chat has no calls after the 20th: said with the range, not "it holds chat".
    compare(&["--endpoint", "chat", "--since", "2026-05-21"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "has no calls of chat to compare from 2026-05-21T00:00:00+00:00 until its end",
        ));
    // A mistyped name beside a right one is refused, not dropped.
    compare(&["--endpoint", "chat", "--endpoint", "chta"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "has no calls of chta; it holds chat, search",
        ));
}

#[test]
fn a_ledgers_calls_stand_for_the_time_it_covers_not_their_own_span() {
    use sagemeter::Decimal;
    let dir = tempfile::tempdir().unwrap();
    // A week's ledger, Monday 2026-05-18 00:00 to Sunday 24:00 (Monday 2026-05-25
    // 00:00): search called at either end (its last call starts at 23:59:59.9 and
    // takes its 100 ms), chat 100 times on Tuesday from 09:00, one every 288 s
    // (4 min 48 s), the last at 09:00 + 99 × 288 s = 16:55:12.
    let tuesday = chrono::DateTime::parse_from_rfc3339("2026-05-19T09:00:00Z").unwrap();
    let chat: Vec<String> = (0..100)
        .map(|i| {
            let at = tuesday + chrono::Duration::seconds(288 * i);
            call_in("chat", "us-east-1", &format!("c-{i}"), &at.to_rfc3339())
        })
        .collect();
    let mut week = vec![call_in(
        "search",
        "us-east-1",
        "s-1",
        "2026-05-18T00:00:00Z",
    )];
    week.extend(chat.iter().cloned());
    week.push(call_in(
        "search",
        "us-east-1",
        "s-2",
        "2026-05-24T23:59:59.900Z",
    ));
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let week = write("week.jsonl", &week);
    let compare = |ledger: &std::path::Path, more: &[&str]| {
        let mut cmd = sagemeter();
        cmd.args(["compare", "--from-ledger"])
            .arg(ledger)
            .args(["--per-call", "0.01"])
            .args(more);
        cmd
    };

    // chat's 100 calls stand for the week the ledger was written, 7 × 86,400 s =
    // 604,800 s (168 h): 100 × 730 h / 168 h = 9,125 / 21 = 434.52… calls a month,
    // 4.3452… USD at 0.01 a call. Not over their own 8 h (100 starts 99 gaps of
    // 288 s apart, each call one gap: 99 × 288 s × 100 / 99 = 28,800 s), which made
    // 100 × 730 / 8 = 9,125 a month: chat was idle the other 160 h.
    let json = json_of(&mut compare(&week, &["--endpoint", "chat", "--json"]));
    assert_eq!(json["ledger_sample"]["calls"], 100, "{json}");
    assert_eq!(json["ledger_sample"]["observed_seconds"], "604800");
    let decimal = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    let calls = decimal(&json["profile"]["calls_per_period"]);
    assert_eq!(
        (calls * Decimal::from(21)).round_dp(20),
        Decimal::from(9_125)
    );
    let cost = decimal(&json["plans"][0]["cost_usd"]);
    // 9,125 / 21 × 0.01 = 91.25 / 21
    assert_eq!(
        (cost * Decimal::from(21)).round_dp(20),
        Decimal::new(9_125, 2)
    );
    assert_eq!(
        json["ledger_notes"][0],
        "the calls are scaled over the time the ledger covers, 2026-05-18T00:00:00+00:00 to \
         2026-05-25T00:00:00+00:00 (its first receipt's start to its last receipt's end, of \
         any endpoint), longer than their own"
    );
    let out = compare(&week, &["--endpoint", "chat"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Ledger: 100 calls in 7 days, 435 calls per month at that rate (the time: the \
             ledger's, its first receipt's start to its last receipt's end, of any endpoint, \
             longer than the calls' own)"
        ),
        "{text}"
    );

    // A ledger of chat's calls alone covers their own span: 28,800 s, 9,125 a month,
    // and no line about the ledger's time.
    let alone = write("chat.jsonl", &chat);
    let json = json_of(&mut compare(&alone, &["--json"]));
    assert_eq!(json["ledger_sample"]["observed_seconds"], "28800", "{json}");
    assert_eq!(json["profile"]["calls_per_period"], "9125");
    assert!(json.get("ledger_notes").is_none(), "{json}");
    let out = compare(&alone, &[]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Ledger: 100 calls in 8 h, 9,125 calls per month at that rate (the time: the \
             first call's start to the last call's end, or a mean gap between starts per call \
             when longer)"
        ),
        "{text}"
    );
}

/// A synchronous call's ledger line at `at` whose response reported `tokens_in` and
/// `tokens_out` (`None`: not reported).
fn call_with_tokens(
    call_id: &str,
    at: &str,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
) -> String {
    let mut usage = serde_json::json!({"operation": "InvokeEndpoint", "latency_us": 100_000,
        "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"});
    if let Some(n) = tokens_in {
        usage["input_tokens"] = n.into();
    }
    if let Some(n) = tokens_out {
        usage["output_tokens"] = n.into();
    }
    serde_json::json!({
        "call_id": call_id, "at": at, "endpoint": "llm", "variant": "AllTraffic",
        "allocation": "busy_time", "usage": usage, "lines": [], "cost_usd": "0",
        "currency": "USD", "running_client_usd": "0", "running_endpoint_usd": "0"
    })
    .to_string()
}

/// A model error or a call cancelled before its answer came had no tokens to
/// report (its receipt charged none): the ledger's note on the calls that reported
/// their tokens counts the calls answered with HTTP 2XX, and says nothing when they
/// all reported them.
#[test]
fn a_ledgers_model_errors_are_not_counted_as_calls_that_did_not_report_their_tokens() {
    let ending = |line: String, outcome: &str| {
        let mut line: serde_json::Value = serde_json::from_str(&line).unwrap();
        line["usage"]["outcome"] = outcome.into();
        line.to_string()
    };
    // 4 calls: two answered with 1,000 tokens in and 100 out, a model error and a
    // call cancelled before its answer, neither reporting any.
    let mut lines = vec![
        call_with_tokens("c-1", "2026-05-20T10:00:00Z", Some(1000), Some(100)),
        call_with_tokens("c-2", "2026-05-20T11:00:00Z", Some(1000), Some(100)),
        ending(
            call_with_tokens("c-3", "2026-05-20T12:00:00Z", None, None),
            "error",
        ),
        ending(
            call_with_tokens("c-4", "2026-05-20T13:00:00Z", None, None),
            "cancelled",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let per_token = ["--per-1m-tokens-in", "1", "--per-1m-tokens-out", "2"];
    let compare = |lines: &[String]| {
        std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
        json_of(
            sagemeter()
                .args(["compare", "--from-ledger"])
                .arg(&ledger)
                .args(per_token)
                .arg("--json"),
        )
    };
    let json = compare(&lines);
    // Both answered calls reported both counts: no note, not "2 of 4".
    assert_eq!(
        json["profile"]["tokens_reported"],
        serde_json::json!({"calls": 2, "tokens_in": 2, "tokens_out": 2}),
        "{json}"
    );
    let notes = json["ledger_notes"].as_array().unwrap();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("tokens in reported by")),
        "{json}"
    );
    // A third answered call reporting only 100 out (TGI): 2 of the 3 answered
    // calls reported their input.
    lines.push(call_with_tokens(
        "c-5",
        "2026-05-20T14:00:00Z",
        None,
        Some(100),
    ));
    let json = compare(&lines);
    let note = "tokens in reported by 2 of the 3 calls answered with HTTP 2XX, tokens out \
                by 3 of 3: each mean per call is over the calls that reported it";
    assert!(
        json["ledger_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == note),
        "{json}"
    );
}

/// A token mean stated in place of a ledger's is the mean of the calls whose
/// answer could carry tokens, as the ledger's was: charged on the calls answered
/// with HTTP 2XX, not on a model error, whose receipt charged no tokens.
#[test]
fn a_token_mean_stated_for_a_ledger_is_charged_on_its_answered_calls() {
    let mut error: serde_json::Value =
        serde_json::from_str(&call_with_tokens("c-3", "2026-05-20T12:00:00Z", None, None)).unwrap();
    error["usage"]["outcome"] = "error".into();
    // 3 calls an hour apart (3 starts 2 gaps of 1 h: 2 h × 3 / 2 = 3 h), 2 answered
    // with 1,000 tokens in and 100 out, a model error.
    let lines = [
        call_with_tokens("c-1", "2026-05-20T10:00:00Z", Some(1000), Some(100)),
        call_with_tokens("c-2", "2026-05-20T11:00:00Z", Some(1000), Some(100)),
        error.to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--per-1m-tokens-in", "1", "--per-1m-tokens-out", "2"])
            .args(["--tokens-in", "500", "--period", "day", "--json"]),
    );
    // 1 call an hour: 24 a day, 2 of 3 answered: 16. Per answered call 500 × 1 /
    // 10^6 + 100 × 2 / 10^6 = 0.0007 USD; 16 × 0.0007 = 0.0112 USD a day (not 24 ×
    // 0.0007 = 0.0168, the model error charged the stated mean).
    assert_eq!(json["plans"][0]["cost_usd"], "0.0112", "{json}");
}

#[test]
fn a_token_count_stated_in_place_of_a_ledgers_none_is_priced_and_shown_even_at_zero() {
    // One TGI call: 100 tokens out reported, input not. `--tokens-in 0` says the
    // input is 0 (a model fed no prompt tokens): priced, not refused.
    let line = call_with_tokens("c-1", "2026-05-20T10:00:00Z", None, Some(100));
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    std::fs::write(&ledger, line + "\n").unwrap();
    let args = [
        "--per-1m-tokens-in",
        "10",
        "--per-1m-tokens-out",
        "1",
        "--tokens-in",
        "0",
    ];
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args)
            .arg("--json"),
    );
    // 0 × 10 / 10^6 + 100 × 1 / 10^6 = 0.0001 USD a call: 0.1 USD per 1,000 calls.
    assert_eq!(json["plans"][0]["usd_per_1000_calls"], "0.1", "{json}");
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The stated 0, not `?`.
    assert!(text.contains(", 0 tokens in, 100 tokens out"), "{text}");
}

#[test]
fn a_ledger_call_that_reported_no_tokens_is_left_out_of_the_mean_never_counted_as_zero() {
    // 5 calls: two reported 1,000 in and 100 out (OpenAI `usage`), two reported
    // nothing, one reported only 100 out (TGI `details`).
    let lines = [
        call_with_tokens("c-1", "2026-05-20T10:00:00Z", Some(1000), Some(100)),
        call_with_tokens("c-2", "2026-05-20T11:00:00Z", Some(1000), Some(100)),
        call_with_tokens("c-3", "2026-05-20T12:00:00Z", None, None),
        call_with_tokens("c-4", "2026-05-20T13:00:00Z", None, None),
        call_with_tokens("c-5", "2026-05-20T14:00:00Z", None, Some(100)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let per_token = ["--per-1m-tokens-in", "1", "--per-1m-tokens-out", "2"];

    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(per_token)
            .arg("--json"),
    );
    let profile = &json["profile"];
    // in: 2,000 tokens over the 2 calls that reported them; out: 300 over 3
    assert_eq!(profile["tokens_in_per_call"], "1000", "{json}");
    assert_eq!(profile["tokens_out_per_call"], "100", "{json}");
    assert_eq!(
        profile["tokens_reported"],
        serde_json::json!({"calls": 5, "tokens_in": 2, "tokens_out": 3})
    );
    // 1,000 × 1 USD / 10^6 + 100 × 2 USD / 10^6 = 0.0012 USD a call: 1.2 USD per
    // 1,000 calls (not 0.52 from 400 in and 60 out over all 5)
    assert_eq!(json["plans"][0]["usd_per_1000_calls"], "1.2", "{json}");
    let note = "tokens in reported by 2 of 5 calls, tokens out by 3 of 5: each mean per \
                call is over the calls that reported it";
    assert!(
        json["ledger_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == note),
        "{json}"
    );
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(per_token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1,000 tokens in, 100 tokens out"), "{text}");
    assert!(text.contains(&format!("Ledger: {note}")), "{text}");

    // Only the TGI call: output known, input not. Input priced at 10 USD per 10^6
    // tokens would be priced at $0: refused, saying what to state.
    std::fs::write(&ledger, lines[4].clone() + "\n").unwrap();
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(["--per-1m-tokens-in", "10", "--per-1m-tokens-out", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("input tokens per call"), "{stderr}");
    assert!(
        stderr.contains("none of the 1 metered calls reported them"),
        "{stderr}"
    );
    assert!(stderr.contains("--tokens-in"), "{stderr}");
    // Stated, it is priced: 500 × 10 / 10^6 + 100 × 1 / 10^6 = 0.0051 USD a call,
    // 5.1 USD per 1,000 calls.
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--per-1m-tokens-in", "10", "--per-1m-tokens-out", "1"])
            .args(["--tokens-in", "500", "--json"]),
    );
    assert_eq!(json["plans"][0]["usd_per_1000_calls"], "5.1", "{json}");
    assert!(
        json["ledger_overrides"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "tokens in per call 500 from --tokens-in, in place of the ledger's none reported"),
        "{json}"
    );
    // Priced at output tokens only, the unknown input is no matter.
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--per-1m-tokens-out", "1", "--json"]),
    );
    // 100 × 1 / 10^6 = 0.0001 USD a call, 0.1 USD per 1,000 calls
    assert_eq!(json["plans"][0]["usd_per_1000_calls"], "0.1", "{json}");
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(["--per-1m-tokens-out", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // the input no call reported is unknown, not 0
    assert!(
        text.contains("per call: 100 ms, ? tokens in, 100 tokens out"),
        "{text}"
    );
}

#[test]
fn a_ledger_of_two_regions_is_compared_one_region_at_a_time() {
    use super::clean_env::refused_url;
    let dir = tempfile::tempdir().unwrap();
    // One ledger, a client per region, an endpoint named `chat` in each: two
    // deployments, each at its own region's prices.
    let lines = [
        call_in("chat", "eu-west-1", "m-1", "2026-05-20T10:00:00Z"),
        call_in("chat", "us-east-1", "m-2", "2026-05-20T10:10:00Z"),
        call_in("chat", "eu-west-1", "m-3", "2026-05-20T10:20:00Z"),
    ];
    let ledger = ledger_in(&dir, "mixed.jsonl", &lines);
    // No Price List: the bundled snapshot's rates.
    let compare = |more: &[&str]| {
        let mut cmd = super::clean_env::sagemeter(&refused_url(), &refused_url());
        cmd.env("SAGEMETER_CACHE_DIR", dir.path())
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--instance", "ml.m5.xlarge", "--period", "day", "--json"])
            .args(more);
        Command::from_std(cmd)
    };

    // --endpoint chat is both regions' chat: the advice names what takes one.
    for more in [&[][..], &["--endpoint", "chat"][..]] {
        compare(more)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "several regions (eu-west-1, us-east-1), each at its own prices: --region \
                 eu-west-1 or --region us-east-1 takes one region's calls, priced there",
            ));
    }

    // --region eu-west-1: eu-west-1's two calls alone, 20 min apart (2 × 86,400 s
    // / 2,400 s = 72 a day), at eu-west-1's rate: 24 h × 0.257 USD = 6.168 a day.
    for more in [
        &["--region", "eu-west-1"][..],
        &["--region", "eu-west-1", "--endpoint", "chat"][..],
    ] {
        let json = json_of(&mut compare(more));
        assert_eq!(json["region"], "eu-west-1", "{json}");
        assert_eq!(json["ledger_sample"]["calls"], 2);
        assert_eq!(json["profile"]["calls_per_period"], "72");
        assert_eq!(json["plans"][0]["cost_usd"], "6.168");
        assert_eq!(
            json["ledger_notes"][0],
            "1 receipt of us-east-1 left out: --region eu-west-1 takes only eu-west-1's calls"
        );
    }
    // --region us-east-1: its one call, at 24 h × 0.23 USD = 5.52 a day.
    let json = json_of(&mut compare(&["--region", "us-east-1"]));
    assert_eq!(json["ledger_sample"]["calls"], 1);
    assert_eq!(json["plans"][0]["cost_usd"], "5.52");
    // The ledger was written from 10:00 to 10:20:00.1 (the last call's 100 ms):
    // the one call stands for those 1,200.1 s, not for the 1 s a lone call's own
    // span counts as.
    assert_eq!(json["ledger_sample"]["observed_seconds"], "1200.1");
    assert_eq!(
        json["ledger_notes"][1],
        "2 receipts of eu-west-1 left out: --region us-east-1 takes only us-east-1's calls"
    );

    // A region none of the calls counted was made in: both regions' deployments
    // priced as one workload at a third region's rates is no what-if. Refused,
    // before any price is looked up.
    compare(&["--region", "us-west-2"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "calls counted were made in several regions (eu-west-1, us-east-1), none in \
             us-west-2: priced in us-west-2 together they would be one workload of several \
             deployments; --region eu-west-1 or --region us-east-1 takes one region's calls, \
             priced there",
        ));
    // The calls counted decide: --until before us-east-1's call (10:10) counts
    // eu-west-1's first call alone, and us-east-1 prices it (what it would cost
    // there): 24 h × 0.23 USD = 5.52 a day.
    let json = json_of(&mut compare(&[
        "--region",
        "us-east-1",
        "--until",
        "2026-05-20T10:05:00Z",
    ]));
    assert_eq!(json["ledger_sample"]["calls"], 1);
    assert_eq!(json["plans"][0]["cost_usd"], "5.52");
    let notes = json["ledger_notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            == "its calls were made in eu-west-1; priced in us-east-1, as --region says"),
        "{notes:?}"
    );

    // Receipts written before receipts carried a region are taken as the one
    // --region names, and a line says how many.
    let mut old: serde_json::Value =
        serde_json::from_str(&call_in("chat", "-", "m-0", "2026-05-20T09:40:00Z")).unwrap();
    old["region"] = serde_json::Value::Null;
    let mut with_old = vec![old.to_string()];
    with_old.extend(lines.iter().cloned());
    std::fs::write(&ledger, with_old.join("\n") + "\n").unwrap();
    // eu-west-1's two and the old one: 3 calls 09:40 to 10:20, one every 20 min
    // (3 × 86,400 s / 3,600 s = 72 a day).
    let json = json_of(&mut compare(&["--region", "eu-west-1"]));
    assert_eq!(json["ledger_sample"]["calls"], 3);
    assert_eq!(
        json["ledger_notes"],
        serde_json::json!([
            "1 receipt of us-east-1 left out: --region eu-west-1 takes only eu-west-1's calls",
            "1 receipt carries no region (written before receipts did): taken as eu-west-1's"
        ])
    );
}

/// Writes a ledger at `ledger` of calls to vendor-model in us-east-1, one every
/// `minutes_apart` minutes from 10:00 on 2026-05-20, the i-th ending as
/// `outcomes[i]` says ("ok", "error" or "cancelled").
fn write_calls_ending(ledger: &std::path::Path, minutes_apart: usize, outcomes: &[&str]) {
    let lines: Vec<String> = outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| {
            let mut line: serde_json::Value = serde_json::from_str(&call_in(
                "vendor-model",
                "us-east-1",
                &format!("c-{i}"),
                &format!("2026-05-20T10:{:02}:00Z", i * minutes_apart),
            ))
            .unwrap();
            line["usage"]["outcome"] = (*outcome).into();
            line.to_string()
        })
        .collect();
    std::fs::write(ledger, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_per_inference_plan_from_a_ledger_charges_the_answered_calls_and_says_so() {
    // 10 calls in one hour, one every 6 min from 10:00 (10 starts 9 gaps apart:
    // 9 × 6 min × 10 / 9 = 60 min): calls 3 and 7 were model errors, call 5 was
    // cancelled before its answer; 7 were answered with HTTP 2XX.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    // Calls 0 to 9.
    #[rustfmt::skip]
    let outcomes = ["ok", "ok", "ok", "error", "ok", "cancelled", "ok", "error", "ok", "ok"];
    write_calls_ending(&ledger, 6, &outcomes);
    let args = ["--per-1000", "0.50", "--period", "day"];
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args)
            .arg("--json"),
    );
    // 10 calls an hour × 24 = 240 calls a day, 7 / 10 = 0.7 of them answered:
    // 240 × 0.7 = 168 × 0.0005 USD = 0.084 USD (not 240 × 0.0005 = 0.12)
    assert_eq!(json["profile"]["calls_per_period"], "240", "{json}");
    assert_eq!(json["profile"]["answered_per_call"], "0.7", "{json}");
    assert_eq!(
        plan_cost(&json, "pay per use"),
        Some("0.084".into()),
        "{json}"
    );
    // Call 5, cancelled, may have been answered after its caller left: the line
    // says so, a lower bound.
    let note = "7 of 10 calls answered with HTTP 2XX (1 cancelled: a lower bound): \
                per-inference plans and a subscription's included calls count those";
    assert!(
        json["ledger_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(note)),
        "{json}"
    );
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("Ledger: {note}")), "{text}");
}

#[test]
fn a_per_inference_plan_from_a_ledger_charges_the_inferences_its_receipts_charged() {
    use sagemeter::Decimal;
    // 6 calls in one hour, one every 10 min from 10:00 (6 starts 5 gaps apart: 5 ×
    // 10 min × 6 / 5 = 60 min), each receipt's fee line at 0.50 USD per 1,000
    // inferences: c-1 and c-5 answered twice (a 200 cut off, tried again, 200
    // again), c-3 a 200 cut off then a model error, c-4 a model error: 1 + 2 + 1 +
    // 1 + 0 + 2 = 7 inferences, 7 × 0.0005 = 0.0035 USD in the hour, 4 calls
    // answered.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let calls = [
        ("ok", 1u64),
        ("ok", 2),
        ("ok", 1),
        ("error", 1),
        ("error", 0),
        ("ok", 2),
    ];
    let lines: Vec<String> = calls
        .iter()
        .enumerate()
        .map(|(i, (outcome, inferences))| {
            let mut line: serde_json::Value = serde_json::from_str(&call_in(
                "vendor-model",
                "us-east-1",
                &format!("c-{i}"),
                &format!("2026-05-20T10:{:02}:00Z", i * 10),
            ))
            .unwrap();
            line["usage"]["outcome"] = (*outcome).into();
            let usd = Decimal::from(*inferences) * Decimal::new(5, 4);
            line["lines"] = serde_json::json!([
                {"item": "inference", "quantity": inferences.to_string(), "unit": "calls",
                 "price": {"status": "priced", "usd_per_unit": "0.0005",
                           "cost_usd": usd.to_string(),
                           "provenance": {"source": "override", "sku": null,
                                          "effective_date": null, "fetched_at": null,
                                          "note": "configured per endpoint"}}}
            ]);
            line["cost_usd"] = usd.to_string().into();
            line.to_string()
        })
        .collect();
    std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--per-1000", "0.50", "--period", "day", "--json"]),
    );
    // 6 × 24 = 144 calls a day, 7 × 24 = 168 inferences: 168 × 0.0005 = 0.084 USD,
    // the receipts' 0.0035 USD × 24 (not 4 answered × 24 = 96 × 0.0005 = 0.048)
    assert_eq!(json["profile"]["calls_per_period"], "144", "{json}");
    assert_eq!(
        json["profile"]["answered_calls_per_period"], "168",
        "{json}"
    );
    assert_eq!(
        plan_cost(&json, "pay per use"),
        Some("0.084".into()),
        "{json}"
    );
    let note = "4 of 6 calls answered with HTTP 2XX, 7 inferences charged (one per 2XX \
                answer: a call whose answer was cut off and tried again, answered again, is \
                two): per-inference plans and a subscription's included calls count the \
                inferences";
    assert!(
        json["ledger_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(note)),
        "{json}"
    );
    // The cut-off answers' tokens (charged by AWS Marketplace, unpriced on the
    // receipts) are not in a per-token plan: the note says so.
    assert!(
        json["ledger_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(
                "once a call: a 2XX answer cut off had tokens too, not counted (a lower bound)"
            )),
        "{json}"
    );
}

#[test]
fn the_interceptors_async_calls_in_a_ledger_await_no_settlement() {
    // Ten InvokeEndpointAsync calls through a plain SDK client with
    // MeteringInterceptor, one a minute from 10:00 (10 starts 9 gaps apart: 9 × 60
    // s × 10 / 9 = 600 s): one receipt each, the whole call, 1 MiB in (2^20 / 2^30
    // = 0.0009765625 GB × 0.016 USD = 0.000015625 USD), noted "metered by the SDK
    // interceptor".
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let lines: Vec<String> = (0..10)
        .map(|i| {
            let mut line: serde_json::Value = serde_json::from_str(&call_in(
                "jobs",
                "us-east-1",
                &format!("inference-{i}"),
                &format!("2026-05-20T10:{i:02}:00Z"),
            ))
            .unwrap();
            line["usage"]["operation"] = "InvokeEndpointAsync".into();
            line["usage"]["latency_us"] = (40_000 + i * 1_000).into();
            line["usage"]["bytes_in"] = 1_048_576.into();
            line["notes"] = serde_json::json!(["metered by the SDK interceptor"]);
            line.to_string()
        })
        .collect();
    std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(["--per-call", "0.01", "--period", "day", "--json"]),
    );
    // 10 calls × 86,400 s / 600 s = 1,440 a day, 1 MiB in each; the model time,
    // data out and tokens the interceptor did not see are not taken as 0: no mean.
    assert_eq!(json["ledger_sample"]["calls"], 10, "{json}");
    assert_eq!(json["profile"]["calls_per_period"], "1440", "{json}");
    assert_eq!(json["profile"]["bytes_in_per_call"], "1048576", "{json}");
    assert_eq!(json["profile"]["mean_latency_ms"], "0", "{json}");
    // 1,440 × 0.01 = 14.40 USD
    assert_eq!(
        plan_cost(&json, "pay per use"),
        Some("14.4".into()),
        "{json}"
    );
    let notes = json["ledger_notes"].to_string();
    assert!(!notes.contains("settle"), "{notes}");
}

#[test]
fn a_ledgers_answered_calls_are_charged_exactly_when_their_share_is_not_a_finite_decimal() {
    // 3 calls in one hour, at 10:00, 10:20 and 10:40 (3 starts 2 gaps apart: 2 × 20
    // min × 3 / 2 = 60 min); the second was a model error: 2 of 3 answered, a share
    // of 0.666…67 at 28 digits.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    write_calls_ending(&ledger, 20, &["ok", "error", "ok"]);
    let compare = |plan: &[&str]| {
        json_of(
            sagemeter()
                .args(["compare", "--from-ledger"])
                .arg(&ledger)
                .args(plan)
                .args(["--period", "day", "--json"]),
        )
    };
    // 3 × 24 = 72 calls a day, 2 × 24 = 48 answered: 48 × 0.0005 = 0.024 USD
    let json = compare(&["--per-1000", "0.50"]);
    assert_eq!(json["profile"]["calls_per_period"], "72", "{json}");
    assert_eq!(json["profile"]["answered_calls_per_period"], "48", "{json}");
    assert_eq!(
        plan_cost(&json, "pay per use"),
        Some("0.024".into()),
        "{json}"
    );
    // 48 answered, 48 included: none above the quota, the fee alone, 5 USD
    let json = compare(&["--subscription", "5", "--included", "48", "--overage", "1"]);
    assert_eq!(plan_cost(&json, "subscription"), Some("5".into()), "{json}");
    let notes = &json["plans"][0]["notes"];
    assert!(
        notes.as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("includes 48 calls per day; 0 calls above")),
        "{json}"
    );
}

/// Whether a plan's row (`--json`) has `note` among its notes.
fn has_note(row: &serde_json::Value, note: &str) -> bool {
    row["notes"]
        .as_array()
        .is_some_and(|notes| notes.iter().any(|n| n == note))
}

/// An asynchronous invocation's two receipts as `Client::invoke_endpoint_async`
/// writes them when its input is in S3 with no `input_bytes` (`bytes_in` given:
/// the size stated) and its settlement has no output size: each unknown size is
/// 0 bytes in the usage and a data line of quantity 0, unpriced.
fn async_receipts_of_sizes(call_id: &str, at: &str, bytes_in: Option<u64>) -> [String; 2] {
    let mut submission: serde_json::Value =
        serde_json::from_str(&async_receipt(call_id, at, None)).unwrap();
    match bytes_in {
        Some(bytes) => {
            submission["usage"]["bytes_in"] = bytes.into();
            submission["lines"][0]["quantity"] =
                (bytes as f64 / 1_073_741_824.0).to_string().into();
        }
        None => {
            submission["usage"]["bytes_in"] = 0.into();
            submission["lines"][0]["quantity"] = "0".into();
            submission["lines"][0]["price"]["reason"] =
                "the input is in S3 and its size was not given (Client::invoke_endpoint_async's \
                 input_bytes bills it; the SDK interceptor cannot see it)"
                    .into();
        }
    }
    let mut settlement: serde_json::Value =
        serde_json::from_str(&async_receipt(call_id, at, Some((60, 0, 0, 0)))).unwrap();
    settlement["lines"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "item": "data_out", "quantity": "0", "unit": "gigabytes",
        "price": {"status": "unpriced", "reason": "the output's size was not given \
            (AsyncCompletion::output or output_bytes bills it)"}}));
    [submission.to_string(), settlement.to_string()]
}

#[test]
fn a_ledger_size_not_known_is_left_unpriced_and_out_of_the_means_never_0_bytes() {
    const INSTANCE: &[&str] = &[
        "--instance",
        "ml.m5.xlarge",
        "--instance-usd-per-hour",
        "0.23",
        "--data-usd-per-gb",
        "0.016",
        "--period",
        "day",
    ];
    // Ten invocations, one a minute from 10:00, the model 60 s on each: 10 calls in
    // 600 s, 10 × 86,400 / 600 = 1,440 a day. `sizes(i)` is invocation i's input.
    let ledger_of = |dir: &tempfile::TempDir, sizes: &dyn Fn(usize) -> Option<u64>| {
        let lines: Vec<String> = (0..10)
            .flat_map(|i| {
                async_receipts_of_sizes(
                    &format!("s-{i}"),
                    &format!("2026-05-20T10:0{i}:00Z"),
                    sizes(i),
                )
            })
            .collect();
        ledger_in(dir, "spend.jsonl", &lines)
    };
    let instance_row = |json: &serde_json::Value| {
        json["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["plan"]["name"] == "ml.m5.xlarge x1")
            .cloned()
            .unwrap_or_else(|| panic!("no instance row in {json}"))
    };
    let dir = tempfile::tempdir().unwrap();

    // No size known, in or out. AWS bills data in and out all the same (1 MiB
    // inputs would be 1,440 × 2^20 B = 1.40625 GB × 0.016 USD = 0.0225 USD a day):
    // the row is the instance alone, 24 h × 0.23 = 5.52 USD, and says that the
    // data is not in it, never priced as 0 bytes.
    let ledger = ledger_of(&dir, &|_| None);
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(INSTANCE)
            .arg("--json"),
    );
    assert_eq!(json["profile"]["calls_per_period"], "1440", "{json}");
    assert_eq!(json["profile"]["unstated"]["bytes_in"], true, "{json}");
    assert_eq!(json["profile"]["unstated"]["bytes_out"], true, "{json}");
    let row = instance_row(&json);
    assert_eq!(row["cost_usd"], "5.52");
    assert!(
        has_note(
            &row,
            "data processed not priced: no payload sizes stated (AWS bills 0.016 USD/GB in \
             and out)"
        ),
        "{json}"
    );
    let ledger_notes = json["ledger_notes"].to_string();
    assert!(
        ledger_notes.contains(
            "data in: the size of 10 of 10 calls was not known (--bytes-in states the mean \
             per call); data out: the size of 10 of 10 settled calls was not known \
             (--bytes-out states the mean per call)"
        ),
        "{json}"
    );

    // Half the inputs known at 1 MiB: the mean is over them, 1 MiB (not 0.5 MiB, the
    // other five taken as 0 bytes), and the row prices it: 1,440 × 2^20 B = 1.40625
    // GB × 0.016 USD = 0.0225 USD a day; 5.52 + 0.0225 = 5.5425 USD. No output size
    // is known: data out is still not priced.
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_of(&dir, &|i| (i % 2 == 0).then_some(1_048_576));
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(INSTANCE)
            .arg("--json"),
    );
    assert_eq!(json["profile"]["bytes_in_per_call"], "1048576", "{json}");
    assert!(
        json["profile"]["unstated"].get("bytes_in").is_none(),
        "{json}"
    );
    let row = instance_row(&json);
    assert_eq!(row["cost_usd"], "5.5425");
    assert!(
        has_note(
            &row,
            "data out not priced: no response size stated (AWS bills 0.016 USD/GB out)"
        ),
        "{json}"
    );
    assert!(
        json["ledger_notes"]
            .to_string()
            .contains("data in: the size of 5 of 10 calls was not known"),
        "{json}"
    );
}

#[test]
fn a_stream_whose_compute_the_interceptor_did_not_see_is_not_billed_as_0_ms_on_serverless() {
    streams_the_interceptor_did_not_time("seconds");
}

/// On an instance endpoint, the interceptor's stream has a compute line of 0
/// instance-hours, unpriced: its latency (the time to headers) is no model time
/// either, for the serverless plan priced from it.
#[test]
fn a_stream_the_interceptor_did_not_time_on_instances_is_not_billed_its_time_to_headers() {
    streams_the_interceptor_did_not_time("instance_hours");
}

/// Ten streams metered by the SDK interceptor, one a minute: 1,000 B in, the
/// latency 300 ms only to the response's headers, the compute line 0 `unit`
/// unpriced and the data out 0 GB unpriced (not seen), compared with serverless.
fn streams_the_interceptor_did_not_time(unit: &str) {
    let receipt = |i: usize| {
        let unseen = |item: &str, unit: &str| {
            serde_json::json!({"item": item, "quantity": "0", "unit": unit,
                "price": {"status": "unpriced", "reason": "InvokeEndpointWithResponseStream \
                is not metered through the SDK interceptor (it does not see the compute time); \
                use sagemeter::Client::invoke_endpoint_with_response_stream"}})
        };
        serde_json::json!({
            "call_id": format!("st-{i}"), "at": format!("2026-05-20T10:0{i}:00Z"),
            "endpoint": "chat", "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpointWithResponseStream", "latency_us": 300_000,
                      "bytes_in": 1000, "bytes_out": 0, "variant": "AllTraffic",
                      "outcome": "ok"},
            "lines": [unseen("compute", unit), unseen("data_out", "gigabytes")],
            "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "notes": ["metered by the SDK interceptor"]
        })
        .to_string()
    };
    let lines: Vec<String> = (0..10).map(receipt).collect();
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let args = [
        "--serverless",
        "3072",
        "--serverless-usd-per-second",
        "0.00006",
        "--data-usd-per-gb",
        "0.016",
        "--period",
        "day",
        "--json",
    ];
    // AWS bills each of the 1,440 calls a day at least the 300 ms the headers took:
    // 1,440 × 0.3 s × 0.00006 USD/s = 0.02592 USD a day, never 0 ms of compute. No
    // call's model time is known: serverless is refused until --latency-ms states it.
    let out = sagemeter()
        .args(["compare", "--from-ledger"])
        .arg(&ledger)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&stdout) {
        assert_ne!(json["profile"]["billed_ms_per_call"], "0", "{json}");
    }
    // Refused before anything is priced, as a stated profile without a latency is.
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("needs a mean latency") && stderr.contains("--latency-ms"),
        "{stderr}"
    );

    // Stated: 1,440 × 0.3 s × 0.00006 = 0.02592 USD; data in 1,440 × 1,000 B /
    // 2^30 B × 0.016 USD = 0.0000214576721191406… USD; data out not priced (not
    // seen): 0.0259414576721191406… USD, the row noting the data out it left out.
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(args)
            .args(["--latency-ms", "300"]),
    );
    let row = &json["plans"][0];
    assert!(
        row["cost_usd"]
            .as_str()
            .unwrap()
            .starts_with("0.02594145767211914"),
        "{json}"
    );
    assert!(
        has_note(
            row,
            "data out not priced: no response size stated (AWS bills 0.016 USD/GB out)"
        ),
        "{json}"
    );
    assert!(
        json["ledger_notes"]
            .to_string()
            .contains("model time: 10 of 10 settled calls' time was not seen"),
        "{json}"
    );
    assert!(
        json["ledger_overrides"]
            .to_string()
            .contains("in place of the ledger's none known"),
        "{json}"
    );
}

/// A call answered with 0 bytes (cancelled before its answer) in a region whose
/// data rate is not known: its data-out line is unpriced at 0 GB for want of a
/// rate, but its size was measured. Five such calls and five of 2 MiB out: the
/// mean is (5 × 0 + 5 × 2,097,152) ÷ 10 = 1,048,576 B, not 2 MiB over the five
/// "known" ones, and no line says a size was not known.
#[test]
fn a_measured_0_byte_answer_whose_rate_is_unknown_is_0_bytes_not_a_size_unknown() {
    let receipt = |i: usize| {
        let bytes_out: u64 = if i < 5 { 0 } else { 2 * 1024 * 1024 };
        let gb = if i < 5 { "0" } else { "0.001953125" };
        serde_json::json!({
            "call_id": format!("c-{i}"), "at": format!("2026-05-20T10:0{i}:00Z"),
            "endpoint": "rt", "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 100_000,
                      "bytes_in": 1000, "bytes_out": bytes_out, "variant": "AllTraffic",
                      "outcome": if i < 5 { "cancelled" } else { "ok" }},
            "lines": [{"item": "data_out", "quantity": gb, "unit": "gigabytes",
                "price": {"status": "unpriced",
                          "reason": "no data processing rate for the region"}}],
            "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        })
        .to_string()
    };
    let lines: Vec<String> = (0..10).map(receipt).collect();
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(&dir, "spend.jsonl", &lines);
    let json = json_of(
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args([
                "--instance",
                "ml.m5.xlarge",
                "--instance-usd-per-hour",
                "0.23",
                "--period",
                "day",
                "--json",
            ]),
    );
    assert_eq!(json["profile"]["bytes_out_per_call"], "1048576", "{json}");
    assert!(
        !json["ledger_notes"].to_string().contains("was not known"),
        "{json}"
    );
}

#[test]
fn names_from_a_ledger_cannot_write_control_characters_to_the_terminal() {
    // An endpoint name read from a ledger that clears the screen and forges a line
    // of its own; a region that sets the window title. Printed as escapes.
    let dir = tempfile::tempdir().unwrap();
    let forged = "b\u{1b}[2J\r\nforged  1";
    let ledger = ledger_in(
        &dir,
        "forged.jsonl",
        &[
            call_in("a", "us-east-1", "f-1", "2026-05-20T10:00:00Z"),
            call_in(forged, "us-east-1", "f-2", "2026-05-20T10:10:00Z"),
        ],
    );
    let regions = ledger_in(
        &dir,
        "region.jsonl",
        &[call_in(
            "a",
            "us-east-1\u{1b}]0;owned\u{7}",
            "r-1",
            "2026-05-20T10:00:00Z",
        )],
    );
    for ledger in [&ledger, &regions] {
        let output = sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(ledger)
            .args(["--per-call", "0.01"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let stdout = String::from_utf8(output).unwrap();
        assert!(
            !stdout.chars().any(|c| c.is_control() && c != '\n'),
            "{stdout:?}"
        );
        assert!(!stdout.contains("\nforged"), "{stdout:?}");
    }
}

#[test]
fn a_profile_flag_or_rate_that_can_never_be_valid_is_refused_before_the_ledger_is_read() {
    // docs/cli.md: a flag value that can never be valid is exit 2 whatever the ledger
    // holds; an empty ledger must not turn it into "no calls" (exit 1).
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("empty.jsonl");
    std::fs::write(&ledger, "").unwrap();
    for (flags, says) in [
        // A month has 730 hours: an instance cannot run 800 of them.
        (
            &["--instance", "ml.m5.xlarge", "--hours", "800"][..],
            "instance hours per period is out of range (got 800)",
        ),
        (
            &[
                "--instance",
                "ml.m5.xlarge",
                "--instance-usd-per-hour=-0.23",
            ][..],
            "--instance-usd-per-hour: ",
        ),
        (
            &["--per-call", "0.01", "--latency-ms=-5"][..],
            "--latency-ms is out of range (got -5)",
        ),
    ] {
        sagemeter()
            .args(["compare", "--from-ledger"])
            .arg(&ledger)
            .args(flags)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(says))
            .stderr(predicate::str::contains("no calls").not());
    }
}

#[test]
fn control_characters_in_a_plan_name_are_escaped_in_the_table_and_its_notes() {
    // The instance row's notes are printed "- <plan name>: <note>": the name's
    // escape sequence (one that would clear the screen) is shown escaped.
    let output = sagemeter()
        .args([
            "compare",
            "--calls",
            "100000",
            "--instance",
            "ml.m5.xlarge\u{1b}[2J",
            "--instance-usd-per-hour",
            "0.23",
            "--subscription",
            "170",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(
        text.contains("- ml.m5.xlarge\\u{1b}[2J x1: ML storage not priced"),
        "{text}"
    );
}
