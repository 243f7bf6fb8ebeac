//! The account view and the reconciliation against the emulator: endpoints made
//! here (dated back with the emulator's `sagemeter:emulator-created-hours-ago` tag),
//! CloudWatch data put here through the SDK's RPC v2 CBOR protocol, Cost Explorer
//! results queued on a private server. Expected figures are worked out by hand
//! from us-east-1's public on-demand prices (the bundled snapshot's rows):
//! ml.m5.large $0.115/h, ml.m5.xlarge $0.23/h, ML storage $0.14/GB-month, data
//! processed $0.016/GB; a month of storage is prorated over 730 hours.

use crate::support::emulator::Emulator;
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::gb_month_storage;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType, Tag};
use chrono::{Duration as Days, NaiveDate, Utc};
use rust_decimal::Decimal;
use sagemeter::account::{
    Account, AccountError, EndpointsOptions, EndpointsView, Flag, GroupBy, Metered,
    ReconcileOptions, Verdict, Window,
};
use sagemeter::pricing::Snapshot;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, SystemTime};

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates an endpoint of `count` × `instance_type` on the emulator, `age_hours` old.
async fn endpoint(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    instance_type: &str,
    count: i32,
    volume_gb: Option<i32>,
    tags: &[(&str, &str)],
) {
    let config = format!("{name}-config");
    sm.create_endpoint_config()
        .endpoint_config_name(&config)
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("sagemeter-demo-model")
                .instance_type(ProductionVariantInstanceType::from(instance_type))
                .initial_instance_count(count)
                .set_volume_size_in_gb(volume_gb)
                .build(),
        )
        .send()
        .await
        .expect("CreateEndpointConfig");
    let mut create = sm
        .create_endpoint()
        .endpoint_name(name)
        .endpoint_config_name(&config)
        .tags(
            Tag::builder()
                .key("sagemeter:emulator-created-hours-ago")
                .value("48")
                .build(),
        );
    for (k, v) in tags {
        create = create.tags(Tag::builder().key(*k).value(*v).build());
    }
    create.send().await.expect("CreateEndpoint");
}

/// Puts `calls` invocations and `model_seconds` of model time half an hour ago.
async fn traffic(cw: &aws_sdk_cloudwatch::Client, endpoint: &str, calls: f64, model_seconds: f64) {
    let at = SystemTime::now() - Duration::from_secs(1800);
    let datum = |metric: &str, sum: f64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name("EndpointName")
                    .value(endpoint)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("VariantName")
                    .value("AllTraffic")
                    .build(),
            )
            .timestamp(at.into())
            .statistic_values(
                StatisticSet::builder()
                    .sample_count(calls)
                    .sum(sum)
                    .minimum(0.0)
                    .maximum(sum)
                    .build(),
            )
            .unit(unit)
            .build()
    };
    cw.put_metric_data()
        .namespace("AWS/SageMaker")
        .metric_data(datum("Invocations", calls, StandardUnit::None))
        .metric_data(datum(
            "ModelLatency",
            model_seconds * 1e6,
            StandardUnit::Microseconds,
        ))
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_busy_and_underused_endpoints_are_told_apart_and_priced_by_hand() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let sm = aws_sdk_sagemaker::Client::new(&conf);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let idle = unique("acct-idle");
    let busy = unique("acct-busy");
    let quiet = unique("acct-quiet");
    endpoint(&sm, &idle, "ml.m5.large", 3, None, &[]).await;
    endpoint(&sm, &busy, "ml.m5.xlarge", 1, None, &[]).await;
    endpoint(&sm, &quiet, "ml.m5.xlarge", 2, Some(20), &[]).await;
    // busy: 600 calls, 18,000 s of model time; quiet: 100 calls, 500 s.
    traffic(&cw, &busy, 600.0, 18_000.0).await;
    traffic(&cw, &quiet, 100.0, 500.0).await;

    let account = Account::builder(&conf)
        .price_source(Snapshot::bundled())
        .build();
    let view = account
        .endpoints(&EndpointsOptions::new(Window::hours(24)))
        .await
        .expect("the account view");
    assert!(view.warnings.is_empty(), "{:?}", view.warnings);
    let row = |name: &str| {
        view.rows
            .iter()
            .find(|r| r.endpoint == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {:#?}", view.rows))
    };

    // Idle: 3 × $0.115/h = $0.345/h, burning for the whole window (the endpoint is
    // 48 h old): 24 h × $0.345 = $8.28, and nobody called it.
    let r = row(&idle);
    assert_eq!(r.status, "InService");
    assert_eq!(r.usd_per_hour, Some(dec("0.345")));
    assert_eq!(r.window_hours, dec("24"));
    assert_eq!(r.window_cost_usd, Some(dec("8.28")));
    assert_eq!(r.invocations, Some(0));
    assert_eq!(r.flags, [Flag::Idle]);
    assert_eq!(r.usd_per_1000_invocations, None);

    // Busy: $0.23/h × 24 h = $5.52 over 600 calls = $9.20 per 1,000; model time
    // 18,000 s ÷ (1 instance × 86,400 s) = 0.2083 of the instance: not underused.
    let r = row(&busy);
    assert_eq!(r.usd_per_hour, Some(dec("0.23")));
    assert_eq!(r.window_cost_usd, Some(dec("5.52")));
    assert_eq!(r.invocations, Some(600));
    assert_eq!(r.usd_per_1000_invocations, Some(dec("9.2")));
    assert_eq!(r.utilisation, Some(dec("0.2083")));
    assert!(r.flags.is_empty(), "{:?}", r.flags);

    // Quiet: 2 × $0.23 + 20 GB × 2 × $0.14 ÷ 730 h = $0.46 + $0.007671232876712…
    // = $0.467671232877/h (to the pico-dollar), the burn at an average month. Over
    // the window AWS bills the instances, 2 × $0.23 × 24 h = $11.04, and the
    // storage, $5.60 a month, by the days of the month(s) the 24 h fall in (in a
    // 31-day month $5.60 × 24 / 744 = $0.180645161290…); per 1,000 of its 100
    // calls, 10 × that. Model time 500 s ÷ (2 × 86,400 s) = 0.0029: underused.
    let r = row(&quiet);
    assert_eq!(r.usd_per_hour, Some(dec("0.467671232877")));
    let storage = gb_month_storage(dec("5.6"), view.at - chrono::Duration::hours(24), view.at);
    let window = (dec("11.04") + storage).round_dp(12);
    assert_eq!(r.window_cost_usd, Some(window));
    assert_eq!(
        r.usd_per_1000_invocations.map(|d| d.normalize()),
        Some((window * dec("10")).normalize())
    );
    assert_eq!(r.utilisation, Some(dec("0.0029")));
    assert_eq!(r.flags, [Flag::Underused]);

    // The rows come by burn, highest first; the totals hold every priced row.
    let burns: Vec<Decimal> = view.rows.iter().filter_map(|r| r.usd_per_hour).collect();
    assert!(burns.windows(2).all(|w| w[0] >= w[1]), "{burns:?}");
    let sum: Decimal = burns.iter().sum();
    assert_eq!(view.totals.usd_per_hour, sum.normalize());
    assert_eq!(
        view.totals.usd_per_month,
        (sum * Decimal::from(730)).normalize()
    );
    assert!(view.totals.idle_usd_per_hour >= dec("0.345"));
}

/// The account of the shared emulator, seen through a fault proxy.
async fn behind_a_proxy() -> (FaultProxy, Account) {
    let emu = Emulator::shared();
    let proxy = FaultProxy::start(&emu.endpoint_url).await;
    let conf = emu.config_loader().endpoint_url(&proxy.url).load().await;
    let account = Account::builder(&conf)
        .price_source(Snapshot::bundled())
        .build();
    (proxy, account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_are_named_and_the_view_lists_what_it_can() {
    let (proxy, account) = behind_a_proxy().await;

    let day = EndpointsOptions::new(Window::hours(24));
    let demo_idle = |view: &EndpointsView| {
        view.rows
            .iter()
            .find(|r| r.endpoint == "demo-idle")
            .cloned()
            .expect("demo-idle listed")
    };

    proxy.set(Fault::Deny("GetMetricData"));
    let view = account
        .endpoints(&day)
        .await
        .expect("listed without CloudWatch");
    let idle = demo_idle(&view);
    assert_eq!(idle.invocations, None);
    assert!(idle.flags.is_empty(), "no flag guessed: {:?}", idle.flags);
    // $0.115 + 30 GB × $0.14 ÷ 730 = $0.120753424658 (to the pico-dollar)
    assert_eq!(idle.usd_per_hour, Some(dec("0.120753424658")));
    assert_eq!(view.warnings.len(), 1, "{:?}", view.warnings);
    assert!(
        view.warnings[0].contains("cloudwatch:GetMetricData"),
        "{:?}",
        view.warnings
    );

    proxy.set(Fault::Deny("ListEndpoints"));
    let err = account
        .endpoints(&day)
        .await
        .expect_err("no list without ListEndpoints");
    assert!(
        matches!(
            err,
            AccountError::MissingPermission {
                action: "sagemaker:ListEndpoints",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("grant the IAM action sagemaker:ListEndpoints"),
        "{err}"
    );

    proxy.set(Fault::Deny("DescribeEndpoint"));
    let view = account
        .endpoints(&day)
        .await
        .expect("listed without descriptions");
    let idle = demo_idle(&view);
    assert_eq!(idle.flags, [Flag::Unpriced]);
    assert!(
        idle.unpriced_reason
            .as_deref()
            .is_some_and(|r| r.contains("sagemaker:DescribeEndpoint")),
        "{idle:?}"
    );

    proxy.set(Fault::Deny("GetCostAndUsage"));
    let today = Utc::now().date_naive();
    let err = account
        .reconcile(
            &Metered::new("us-east-1"),
            &ReconcileOptions::new(today - Days::days(3), today - Days::days(1)),
        )
        .await
        .expect_err("no bill without ce:GetCostAndUsage");
    assert!(
        matches!(
            err,
            AccountError::MissingPermission {
                action: "ce:GetCostAndUsage",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A receipt's figures: compute instance-hours and USD, data in GB and USD, then
/// the accrual's accrued and allocated USD.
type Figures<'a> = [&'a str; 6];

/// One receipt of the ledger format, as a process writes it.
fn receipt(at: &str, endpoint: &str, region: &str, figures: Figures) -> serde_json::Value {
    let provenance = json!({"source": "live", "sku": "JDZQJFUVUR8SUWHS", "effective_date": "2026-06-27",
        "fetched_at": null, "note": null});
    let [
        compute_hours,
        compute_usd,
        gb_in,
        in_usd,
        accrued,
        allocated,
    ] = figures;
    let cost: Decimal = dec(compute_usd) + dec(in_usd);
    json!({"v": 1, "call_id": unique("call"), "at": at, "endpoint": endpoint, "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 2},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 10, "bytes_out": 10,
                  "outcome": "ok"},
        "lines": [
            {"item": "compute", "quantity": compute_hours, "unit": "instance_hours",
             "price": {"status": "priced", "usd_per_unit": "0.23", "cost_usd": compute_usd,
                       "provenance": provenance}},
            {"item": "data_in", "quantity": gb_in, "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016", "cost_usd": in_usd,
                       "provenance": provenance}}],
        "cost_usd": cost.to_string(), "currency": "USD", "region": region,
        "running_client_usd": cost.to_string(), "running_endpoint_usd": cost.to_string(),
        "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}})
}

fn write_ledger(
    dir: &std::path::Path,
    name: &str,
    receipts: &[serde_json::Value],
) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    for r in receipts {
        writeln!(file, "{r}").unwrap();
    }
    path
}

/// A Cost Explorer answer of one settled day, grouped by `keys` (tag key first).
fn ce_day(day: NaiveDate, groups: &[(&[&str], &str, &str, &str)]) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = groups
        .iter()
        .map(|(keys, cost, quantity, unit)| {
            json!({"Keys": keys, "Metrics": {
                "AmortizedCost": {"Amount": cost, "Unit": "USD"},
                "UsageQuantity": {"Amount": quantity, "Unit": unit}}})
        })
        .collect();
    json!({"ResultsByTime": [{
        "TimePeriod": {"Start": day.to_string(), "End": day.succ_opt().unwrap().to_string()},
        "Total": {}, "Groups": groups, "Estimated": false}],
        "DimensionValueAttributes": []})
}

/// Queues Cost Explorer answers on `emu` (moto's `/moto-api/static/ce/...`).
fn queue_ce(emu: &Emulator, results: &[serde_json::Value]) {
    use std::io::Read;
    let body = json!({"results": results}).to_string();
    let host = emu.endpoint_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /moto-api/static/ce/cost-and-usage-results HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_explains_a_known_idle_amount_to_the_cent_by_usage_type_and_by_tag() {
    // A private server: Cost Explorer answers from one queue per account.
    let emu = Emulator::start_unseeded();
    let conf = emu.sdk_config().await;
    let sm = aws_sdk_sagemaker::Client::new(&conf);
    sm.create_model()
        .model_name("sagemeter-demo-model")
        .execution_role_arn("arn:aws:iam::123456789012:role/test")
        .primary_container(
            aws_sdk_sagemaker::types::ContainerDefinition::builder()
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1")
                .build(),
        )
        .send()
        .await
        .expect("CreateModel");
    let ep = "rec-search";
    endpoint(&sm, ep, "ml.m5.xlarge", 2, None, &[("team", "search")]).await;

    let day = Utc::now().date_naive() - Days::days(2);
    let at = |hh: &str| format!("{day}T{hh}:00:00Z");
    // One ledger, two runs of a process (the accrual starts over in the second):
    // each run's receipts say accrued $0.115 then $0.575, allocated $0.115 then
    // $0.23, so each run accrued $0.575 and allocated $0.23: $0.345 idle.
    // Compute lines: 4 × 0.5 instance-hours × $0.23 = $0.46.
    // Data in: 4 × 0.25 GB × $0.016 = $0.016.
    let dir = tempfile::tempdir().unwrap();
    let call = |hh: &str, figures| receipt(&at(hh), ep, "us-east-1", figures);
    let first = ["0.5", "0.115", "0.25", "0.004", "0.115", "0.115"];
    let second = ["0.5", "0.115", "0.25", "0.004", "0.575", "0.23"];
    let run1 = write_ledger(
        dir.path(),
        "process-1.jsonl",
        &[
            call("10", first),
            call("11", second),
            call("14", first),
            call("15", second),
        ],
    );
    // Another process, another ledger: one call, its accrual is its allocation.
    let alone = ["0.1", "0.023", "0", "0", "0.023", "0.023"];
    let run2 = write_ledger(dir.path(), "process-2.jsonl", &[call("12", alone)]);
    // Metered: compute 4 × $0.115 + $0.023 = $0.483; data in $0.016; total $0.499.
    // Accrued $1.15 + $0.023 = $1.173, allocated $0.46 + $0.023 = $0.483:
    // idle $0.69 (= 2 runs × ($0.575 − $0.23)).
    //
    // The bill: the instances ran exactly while metered, 1.173 ÷ 0.23 = 5.1 h, at
    // the on-demand rate: $1.173; data in 1 GB, $0.016.
    queue_ce(
        &emu,
        &[
            ce_day(
                day,
                &[
                    (&["USE1-Host:ml.m5.xlarge"], "1.173", "5.1", "Hrs"),
                    (&["USE1-Hst:Data-Bytes-In"], "0.016", "1", "GB"),
                ],
            ),
            ce_day(
                day,
                &[
                    (
                        &["team$search", "USE1-Host:ml.m5.xlarge"],
                        "1.173",
                        "5.1",
                        "Hrs",
                    ),
                    (
                        &["team$search", "USE1-Hst:Data-Bytes-In"],
                        "0.016",
                        "1",
                        "GB",
                    ),
                    (&["team$", "USE1-Host:ml.m5.large"], "2.76", "24", "Hrs"),
                ],
            ),
        ],
    );
    let mut metered = Metered::new("us-east-1");
    metered.read_ledger(&run1).unwrap();
    metered.read_ledger(&run2).unwrap();
    assert_eq!(metered.receipts(), 5);
    let account = Account::builder(&conf)
        .price_source(Snapshot::bundled())
        .build();
    let options = ReconcileOptions::new(day, day.succ_opt().unwrap());

    let by_type = account
        .reconcile(&metered, &options)
        .await
        .expect("by usage type");
    let host = by_type
        .rows
        .iter()
        .find(|r| r.group == "Host:ml.m5.xlarge")
        .expect("the hosting row");
    assert_eq!(host.billed_usd, dec("1.173"));
    assert_eq!(host.metered_usd, dec("0.483"));
    assert_eq!(host.difference_usd, dec("0.69"));
    assert_eq!(host.parts.idle_instance_usd, dec("0.69"));
    assert_eq!(host.parts.outside_usd, Decimal::ZERO);
    assert_eq!(host.parts.discount_usd, Decimal::ZERO);
    assert_eq!(host.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(host.effective_rate_ratio, Some(Decimal::ONE));
    assert_eq!(host.billed_quantity, Some(dec("5.1")));
    assert_eq!(host.metered_quantity, Some(dec("2.1")));
    let data = by_type
        .rows
        .iter()
        .find(|r| r.group == "Hst:Data-Bytes-In")
        .unwrap();
    assert_eq!(
        (data.billed_usd, data.metered_usd),
        (dec("0.016"), dec("0.016"))
    );
    let verdict = &by_type.days[0];
    assert_eq!(verdict.difference_usd, dec("0.69"));
    assert_eq!(verdict.parts.idle_instance_usd, dec("0.69"));
    assert_eq!(verdict.verdict, Verdict::Explained);

    // By the endpoints' cost allocation tag: the untagged ml.m5.large nobody
    // metered is all outside sagemeter (24 h × $0.115 = $2.76 at on-demand).
    let by_tag = account
        .reconcile(
            &metered,
            &options.clone().group_by(GroupBy::Tag("team".into())),
        )
        .await
        .expect("by tag");
    let search = by_tag.rows.iter().find(|r| r.group == "search").unwrap();
    assert_eq!(search.billed_usd, dec("1.189"));
    assert_eq!(search.metered_usd, dec("0.499"));
    assert_eq!(search.parts.idle_instance_usd, dec("0.69"));
    let untagged = by_tag
        .rows
        .iter()
        .find(|r| r.group == "(untagged)")
        .unwrap();
    assert_eq!(untagged.billed_usd, dec("2.76"));
    assert_eq!(untagged.parts.outside_usd, dec("2.76"));
    assert_eq!(by_tag.days[0].verdict, Verdict::Explained);
    assert_eq!(by_tag.days[0].parts.unexplained_usd, Decimal::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_of_another_currency_and_dates_beyond_cost_explorer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let day = Utc::now().date_naive() - Days::days(2);
    let at = format!("{day}T10:00:00Z");
    let hour = ["1", "0.23", "0", "0", "0.23", "0.23"];
    let elsewhere = write_ledger(
        dir.path(),
        "eu.jsonl",
        &[receipt(&at, "e", "eu-west-1", hour)],
    );
    // Another region's receipt is another region's bill: left out, counted.
    let mut metered = Metered::new("us-east-1");
    metered.read_ledger(&elsewhere).unwrap();
    assert_eq!(metered.receipts(), 0);
    assert_eq!(metered.left_out().get("eu-west-1"), Some(&1));

    let mut euros = receipt(&at, "e", "us-east-1", hour);
    euros["currency"] = json!("EUR");
    let euros = write_ledger(dir.path(), "eur.jsonl", &[euros]);
    let err = Metered::new("us-east-1").read_ledger(&euros).unwrap_err();
    assert!(err.to_string().contains("EUR"), "{err}");

    // Nothing is asked of Cost Explorer for dates it does not keep.
    let (proxy, account) = behind_a_proxy().await;
    let today = Utc::now().date_naive();
    let two_years_ago = today - Days::days(730);
    let err = account
        .reconcile(
            &Metered::new("us-east-1"),
            &ReconcileOptions::new(two_years_ago, two_years_ago + Days::days(1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::DateRange(_)), "{err:?}");
    assert!(err.to_string().contains("13 months"), "{err}");
    assert_eq!(proxy.forwarded(), 0, "no request for a refused range");
}
