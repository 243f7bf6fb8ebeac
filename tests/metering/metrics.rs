//! The `metrics` counters and histograms of metered calls, captured with a
//! debugging recorder installed for this thread (the tests run on a
//! current-thread runtime, so the calls' metrics land on it).

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::{rt_priced_by_overrides, submit_async};
use aws_sdk_sagemakerruntime::primitives::Blob;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::{Client, Cost, Error};
use std::collections::{BTreeMap, HashMap};

type Labels = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every metric of the snapshot by (name, labels).
fn by_name_and_labels(recorder: &DebuggingRecorder) -> HashMap<(String, Labels), DebugValue> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

async fn fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake.add_endpoint(
        "exotic",
        vec![FakeVariant::instance("AllTraffic", "ml.nope.xlarge", 1)],
    );
    fake
}

/// [`rt_priced_by_overrides`] with `exotic` (an instance type no price source knows) and the
/// `team` tag as a label.
async fn client(fake: &FakeSageMaker) -> Client {
    rt_priced_by_overrides(fake)
        .await
        .endpoint_profile(EndpointProfile::new(
            "exotic",
            vec![VariantProfile::instance("AllTraffic", "ml.nope.xlarge", 1)],
        ))
        .default_tag("team", "search")
        .metric_tag_labels(["team"])
        .build()
        .unwrap()
}

async fn call(client: &Client, endpoint: &str, team: Option<&str>) -> Result<Cost, Error> {
    let mut request = client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(Blob::new("{}"));
    if let Some(team) = team {
        request = request.tag("team", team);
    }
    request.send().await.map(|r| r.into_parts().1)
}

#[tokio::test]
async fn counters_and_histograms_carry_endpoint_variant_price_source_and_the_opted_in_tag() {
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let client = client(&fake).await;

    let search_1 = call(&client, "rt", None).await.unwrap();
    let search_2 = call(&client, "rt", None).await.unwrap();
    let ads = call(&client, "rt", Some("ads")).await.unwrap();
    *fake.state.invoke_error.lock().unwrap() = Some((424, "ModelError".into()));
    let Err(Error::Invoke {
        cost: Some(failed), ..
    }) = call(&client, "rt", None).await
    else {
        panic!("a model error has a receipt")
    };
    *fake.state.invoke_error.lock().unwrap() = None;
    let unpriced = call(&client, "exotic", None).await.unwrap();
    assert!(!unpriced.is_fully_priced());

    let metrics = by_name_and_labels(&recorder);
    let base = |endpoint: &str, team: &str| {
        labels(&[
            ("endpoint", endpoint),
            ("region", "us-east-1"),
            ("variant", "AllTraffic"),
            ("price_source", "override"),
            ("team", team),
        ])
    };
    let with = |mut l: Labels, k: &str, v: &str| {
        l.insert(k.into(), v.into());
        l
    };
    let counter = |name: &str, l: Labels| match metrics.get(&(name.to_owned(), l.clone())) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {l:?}: {other:?}\nall: {:#?}", metrics.keys()),
    };

    // 2 ok + 1 failed call tagged search on rt, 1 ads; the per-call tag wins.
    assert_eq!(
        counter("sagemeter_invocations_total", base("rt", "search")),
        3
    );
    assert_eq!(counter("sagemeter_invocations_total", base("rt", "ads")), 1);
    assert_eq!(
        counter("sagemeter_invocations_total", base("exotic", "search")),
        1
    );
    let search_error = with(base("rt", "search"), "outcome", "error");
    assert_eq!(counter("sagemeter_errors_total", search_error), 1);
    assert!(
        !metrics.contains_key(&(
            "sagemeter_errors_total".into(),
            with(base("rt", "ads"), "outcome", "error")
        )),
        "no error was counted for ads"
    );
    // The exotic instance type has no price: the call counts as unpriced (its
    // data lines are priced, so its price_source is still `override`).
    assert_eq!(
        counter("sagemeter_unpriced_total", base("exotic", "search")),
        1
    );
    // The fake reports 12 prompt and 30 completion tokens on every successful call.
    let input = |team| with(base("rt", team), "direction", "input");
    let output = |team| with(base("rt", team), "direction", "output");
    assert_eq!(counter("sagemeter_tokens_total", input("search")), 2 * 12);
    assert_eq!(counter("sagemeter_tokens_total", output("search")), 2 * 30);
    assert_eq!(counter("sagemeter_tokens_total", input("ads")), 12);

    // Micro-dollars: the exact sum of the receipts, truncated (remainders carry).
    let micro = |costs: &[&Cost]| {
        let sum: Decimal = costs.iter().map(|c| c.cost_usd).sum();
        (sum * Decimal::from(1_000_000)).trunc().to_u64().unwrap()
    };
    assert_eq!(
        counter("sagemeter_cost_micro_usd_total", base("rt", "search")),
        micro(&[&search_1, &search_2, &failed])
    );
    assert_eq!(
        counter("sagemeter_cost_micro_usd_total", base("rt", "ads")),
        micro(&[&ads])
    );

    // One histogram value per call, in seconds and USD.
    let Some(DebugValue::Histogram(latencies)) =
        metrics.get(&("sagemeter_latency_seconds".to_owned(), base("rt", "search")))
    else {
        panic!("no latency histogram")
    };
    assert_eq!(latencies.len(), 3);
    let expected_s = search_1.usage.latency.as_secs_f64();
    assert!(latencies.iter().any(|v| (v.0 - expected_s).abs() < 1e-9));
    let Some(DebugValue::Histogram(costs)) =
        metrics.get(&("sagemeter_cost_usd".to_owned(), base("rt", "ads")))
    else {
        panic!("no cost histogram")
    };
    assert_eq!(costs.len(), 1);
}

/// Calls of 0.4 micro-dollars each (0.0004 USD per 1,000 calls): the cost
/// counter, in whole micro-dollars, carries each call's remainder to the next
/// (rounded per call it would never move), and the cost histogram holds each
/// call's own cost.
#[tokio::test]
async fn the_cost_counter_carries_what_a_call_leaves_below_a_micro_dollar() {
    use sagemeter::billing::UsageCharges;
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let client = rt_priced_by_overrides(&fake)
        .await
        .usage_charges(
            "rt",
            UsageCharges::default()
                .per_1000_calls(Decimal::new(4, 4))
                .alone(),
        )
        .build()
        .unwrap();
    let key = (
        "sagemeter_cost_micro_usd_total".to_owned(),
        labels(&[
            ("endpoint", "rt"),
            ("region", "us-east-1"),
            ("variant", "AllTraffic"),
            ("price_source", "override"),
        ]),
    );
    // A snapshot of the debugging recorder takes what was counted since the one
    // before: the counter's total is the sum of what each snapshot takes.
    let (mut counted, mut costs) = (0u64, Vec::new());
    // After each call: 0.4, 0.8, 1.2, 1.6 and 2.0 micro-dollars in all.
    for expected in [0, 0, 1, 1, 2] {
        let cost = call(&client, "rt", None).await.unwrap();
        assert_eq!(cost.cost_usd, Decimal::new(4, 7), "0.0004 / 1,000");
        let all = by_name_and_labels(&recorder);
        if let Some(DebugValue::Counter(n)) = all.get(&key) {
            counted += n;
        }
        if let Some(DebugValue::Histogram(values)) =
            all.get(&("sagemeter_cost_usd".to_owned(), key.1.clone()))
        {
            costs.extend(values.iter().map(|v| v.0));
        }
        assert_eq!(counted, expected);
    }
    assert_eq!(costs.len(), 5);
    assert!(
        costs.iter().all(|v| (v - 0.0000004).abs() < 1e-15),
        "{costs:?}"
    );
}

#[tokio::test]
async fn metrics_are_described_with_units_when_the_client_is_built() {
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let client = client(&fake).await;
    call(&client, "rt", None).await.unwrap();
    let described: HashMap<String, Option<metrics::Unit>> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, _, _)| (key.key().name().to_owned(), unit))
        .collect();
    assert_eq!(
        described["sagemeter_latency_seconds"],
        Some(metrics::Unit::Seconds)
    );
    assert_eq!(
        described["sagemeter_invocations_total"],
        Some(metrics::Unit::Count)
    );
}

#[tokio::test]
async fn a_tag_label_that_clashes_with_a_built_in_label_is_a_build_error() {
    let fake = fake().await;
    let err = Client::builder(&fake.sdk_config().await)
        .metric_tag_labels(["endpoint"])
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("clashes"), "{err}");
}

/// Handles are registered once per label set and reused; a recorder that becomes
/// current later (installed after the first calls, or another thread's local one)
/// gets its own, and the one before keeps what it counted.
#[tokio::test]
async fn a_recorder_installed_after_the_first_calls_counts_the_calls_after_it() {
    let fake = fake().await;
    let client = client(&fake).await;
    let invocations = |recorder: &DebuggingRecorder| {
        let key = (
            "sagemeter_invocations_total".to_owned(),
            labels(&[
                ("endpoint", "rt"),
                ("region", "us-east-1"),
                ("variant", "AllTraffic"),
                ("price_source", "override"),
                ("team", "search"),
            ]),
        );
        match by_name_and_labels(recorder).get(&key) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            other => panic!("{other:?}"),
        }
    };
    // No recorder yet: the facade's no-op one.
    call(&client, "rt", None).await.unwrap();
    let first = DebuggingRecorder::new();
    {
        let _guard = metrics::set_default_local_recorder(&first);
        call(&client, "rt", None).await.unwrap();
        call(&client, "rt", None).await.unwrap();
    }
    let second = DebuggingRecorder::new();
    {
        let _guard = metrics::set_default_local_recorder(&second);
        call(&client, "rt", None).await.unwrap();
    }
    assert_eq!(invocations(&first), 2);
    assert_eq!(invocations(&second), 1);
}

/// The value of the series of `name` whose labels include each of `labels`, in a
/// Prometheus exposition; `None` when the exporter has no such series.
fn rendered(text: &str, name: &str, labels: &[&str]) -> Option<u64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|l| line.contains(l)))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

/// With the Prometheus exporter's `idle_timeout`, a series not updated for the
/// timeout is removed at a render. Its next update must bring it back (from
/// zero, as the exporter's own macros do), whether the whole endpoint was idle or
/// only one rarely used counter of a busy endpoint (its errors).
#[tokio::test]
async fn a_series_the_exporter_removed_as_idle_comes_back_with_the_next_calls() {
    use metrics_exporter_prometheus::PrometheusBuilder;
    use std::time::Duration;
    let idle = Duration::from_secs(1);
    let recorder = PrometheusBuilder::new()
        .idle_timeout(metrics_util::MetricKindMask::ALL, Some(idle))
        .build_recorder();
    let exporter = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let client = client(&fake).await;
    let rt = ["endpoint=\"rt\"", "team=\"search\""];
    let errors = ["endpoint=\"rt\"", "team=\"search\"", "outcome=\"error\""];
    let model_error = |on: bool| {
        *fake.state.invoke_error.lock().unwrap() = on.then(|| (424, "ModelError".into()));
    };

    call(&client, "rt", None).await.unwrap();
    model_error(true);
    call(&client, "rt", None).await.unwrap_err();
    model_error(false);
    let text = exporter.render();
    assert_eq!(rendered(&text, "sagemeter_invocations_total", &rt), Some(2));
    assert_eq!(rendered(&text, "sagemeter_errors_total", &errors), Some(1));

    // rt stays busy (a call every 300 ms) while its error counter idles: after
    // more than the timeout the exporter removes the error series alone.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        call(&client, "rt", None).await.unwrap();
        exporter.render();
    }
    let text = exporter.render();
    assert_eq!(rendered(&text, "sagemeter_errors_total", &errors), None);
    assert_eq!(
        rendered(&text, "sagemeter_invocations_total", &rt),
        Some(2 + 6)
    );
    // The next error is counted again: 1 (the series starts over).
    model_error(true);
    call(&client, "rt", None).await.unwrap_err();
    model_error(false);
    let text = exporter.render();
    assert_eq!(rendered(&text, "sagemeter_errors_total", &errors), Some(1));
    assert_eq!(
        rendered(&text, "sagemeter_invocations_total", &rt),
        Some(2 + 6 + 1)
    );

    // Now the whole endpoint idles past the timeout and is removed...
    tokio::time::sleep(idle + Duration::from_millis(200)).await;
    let text = exporter.render();
    assert_eq!(rendered(&text, "sagemeter_invocations_total", &rt), None);
    // ...and its next 3 calls are its series again: 3.
    for _ in 0..3 {
        call(&client, "rt", None).await.unwrap();
    }
    let text = exporter.render();
    assert_eq!(rendered(&text, "sagemeter_invocations_total", &rt), Some(3));
}

#[tokio::test]
async fn a_client_built_without_metrics_emits_none_and_still_prices_its_calls() {
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let quiet = rt_priced_by_overrides(&fake)
        .await
        .without_metrics()
        .build()
        .unwrap();
    let cost = call(&quiet, "rt", None).await.unwrap();
    assert!(cost.is_fully_priced() && cost.cost_usd > Decimal::ZERO);
    assert_eq!(quiet.meter().totals().client_usd, cost.cost_usd);
    assert!(by_name_and_labels(&recorder).is_empty());

    // The same call through a client with metrics (the default) is counted.
    let counted = rt_priced_by_overrides(&fake).await.build().unwrap();
    call(&counted, "rt", None).await.unwrap();
    let metrics = by_name_and_labels(&recorder);
    let invocations: Vec<&DebugValue> = metrics
        .iter()
        .filter(|((name, _), _)| name == "sagemeter_invocations_total")
        .map(|(_, value)| value)
        .collect();
    assert!(
        matches!(invocations[..], [DebugValue::Counter(1)]),
        "{invocations:?}"
    );
}

#[tokio::test]
async fn an_async_invocation_counts_once_though_it_has_two_receipts() {
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let client = client(&fake).await;
    let submitted = submit_async(&client, "rt", 1024).await;
    let submission = submitted.cost().clone();
    let settlement = submitted
        .settle(sagemeter::client::AsyncCompletion::processed_for(
            std::time::Duration::from_secs(90),
        ))
        .await;
    assert!(!submission.is_async_settlement());
    assert!(settlement.is_async_settlement());

    let metrics = by_name_and_labels(&recorder);
    let invocations: u64 = metrics
        .iter()
        .filter(|((name, _), _)| name == "sagemeter_invocations_total")
        .map(|(_, value)| match value {
            DebugValue::Counter(n) => *n,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(invocations, 1, "one invocation, two receipts");
}

/// The EMF sink counts an async invocation once too: the settlement's document
/// carries its cost with `Invocations` 0.
#[tokio::test]
async fn an_async_invocation_is_one_emf_invocation_though_it_has_two_documents() {
    let buffer = crate::support::MemoryWriter::default();
    let emf = sagemeter::sink::EmfSink::builder()
        .writer("buffer", buffer.clone())
        .build()
        .unwrap();
    let fake = fake().await;
    let client = rt_priced_by_overrides(&fake)
        .await
        .sink(emf.clone())
        .build()
        .unwrap();
    let submitted = submit_async(&client, "rt", 1024).await;
    let settlement = submitted
        .settle(sagemeter::client::AsyncCompletion::processed_for(
            std::time::Duration::from_secs(90),
        ))
        .await;
    emf.flush().await.unwrap();

    let text = buffer.text();
    let documents: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(documents.len(), 2, "two receipts, two documents: {text}");
    let invocations: u64 = documents
        .iter()
        .map(|d| d["Invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(invocations, 1, "Sum(Invocations) is one invocation");
    let settled = &documents[1];
    assert_eq!(settled["Invocations"], 0);
    assert_eq!(
        settled["CostUSDExact"].as_str().unwrap(),
        settlement.cost_usd.to_string(),
        "the settlement's cost is still on its document"
    );
    assert!(settlement.cost_usd > Decimal::ZERO);
}

/// Two clients of one process, one per region, call endpoints of the same name:
/// two deployments, two series, told apart by `region`.
#[tokio::test]
async fn same_named_endpoints_of_two_regions_are_two_series() {
    use sagemeter::pricing::PriceKey;
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let us = rt_priced_by_overrides(&fake).await.build().unwrap();
    let eu_config = fake
        .sdk_config()
        .await
        .to_builder()
        .region(aws_types::region::Region::new("eu-west-1"))
        .build();
    let eu = Client::builder(&eu_config)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_override(
            PriceKey::hosting("eu-west-1", "ml.m5.xlarge"),
            Decimal::new(257, 3),
        )
        .price_override(
            PriceKey::DataIn {
                region: "eu-west-1".into(),
            },
            Decimal::new(16, 3),
        )
        .price_override(
            PriceKey::DataOut {
                region: "eu-west-1".into(),
            },
            Decimal::new(16, 3),
        )
        .build()
        .unwrap();
    call(&us, "rt", None).await.unwrap();
    call(&us, "rt", None).await.unwrap();
    let eu_call = call(&eu, "rt", None).await.unwrap();
    assert_eq!(eu_call.region.as_deref(), Some("eu-west-1"));

    let metrics = by_name_and_labels(&recorder);
    let invocations = |region: &str| {
        let key = (
            "sagemeter_invocations_total".to_owned(),
            labels(&[
                ("endpoint", "rt"),
                ("region", region),
                ("variant", "AllTraffic"),
                ("price_source", "override"),
            ]),
        );
        match metrics.get(&key) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{key:?}: {other:?}\nall: {:#?}", metrics.keys()),
        }
    };
    // Two calls in us-east-1, one in eu-west-1: not three calls of one endpoint.
    assert_eq!(invocations("us-east-1"), 2);
    assert_eq!(invocations("eu-west-1"), 1);
}
