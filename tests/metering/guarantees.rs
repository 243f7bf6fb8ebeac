//! The guarantees the README states, each proved here: exact totals under load,
//! a ledger that survives SIGKILL, nothing leaking into logs, ledgers, metrics or
//! errors, and a clean shutdown.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::logs;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rust_decimal::Decimal;
use sagemeter::ledger::{JsonlLedger, read_all};
use sagemeter::pricing::PriceKey;
use sagemeter::{Client, Cost};
use std::collections::HashMap;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake.add_endpoint("sls", vec![FakeVariant::serverless("AllTraffic", 3072)]);
    fake
}

fn priced(builder: sagemeter::ClientBuilder) -> sagemeter::ClientBuilder {
    let r = "us-east-1".to_owned();
    builder
        .price_override(PriceKey::hosting(&r, "ml.m5.xlarge"), dec("0.23"))
        .price_override(PriceKey::serverless(&r, 3), dec("0.00006"))
        .price_override(PriceKey::DataIn { region: r.clone() }, dec("0.016"))
        .price_override(PriceKey::DataOut { region: r.clone() }, dec("0.016"))
}

/// What the receipts of `endpoint` among `receipts` cost in all.
fn sum_of(receipts: &[Cost], endpoint: &str) -> Decimal {
    receipts
        .iter()
        .filter(|c| c.endpoint == endpoint)
        .map(|c| c.cost_usd)
        .sum()
}

/// 10,000 calls over 64 concurrent tasks: the running totals equal the sum of the
/// receipts to the last digit (overall and per endpoint), the ledger holds exactly
/// 10,000 records with the same sum, and the micro-dollar counter is that sum
/// truncated to the micro-dollar, per label set.
#[tokio::test]
async fn ten_thousand_concurrent_calls_add_up_exactly_in_totals_ledger_and_metrics() {
    // A local recorder sees this thread's events: the runtime is current-thread, so
    // all 64 tasks run here (concurrently, interleaved at every await).
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("load.jsonl");
    let ledger = JsonlLedger::builder(&path).capacity(20_000).open().unwrap();
    let client = priced(Client::builder(&fake.sdk_config().await))
        .sink(ledger.clone())
        .build()
        .unwrap();

    const CALLS: usize = 10_000;
    const TASKS: usize = 64;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut receipts = Vec::new();
                for i in (t..CALLS).step_by(TASKS) {
                    let endpoint = if i % 4 == 0 { "sls" } else { "rt" };
                    let response = client
                        .invoke_endpoint()
                        .endpoint_name(endpoint)
                        .body(Blob::new(format!("{{\"i\":{i}}}")))
                        .send()
                        .await
                        .unwrap();
                    receipts.push(response.into_parts().1);
                }
                receipts
            })
        })
        .collect();
    let mut receipts: Vec<Cost> = Vec::with_capacity(CALLS);
    for t in tasks {
        receipts.extend(t.await.unwrap());
    }
    client.shutdown().await.unwrap();

    assert_eq!(receipts.len(), CALLS);
    let sum: Decimal = receipts.iter().map(|c| c.cost_usd).sum();
    let totals = client.meter().totals();
    assert_eq!(totals.calls, CALLS as u64);
    assert_eq!(
        totals.client_usd, sum,
        "running total = Σ receipts, every digit"
    );
    for endpoint in ["rt", "sls"] {
        let per = sum_of(&receipts, endpoint);
        assert_eq!(totals.by_endpoint[endpoint], per, "{endpoint}");
    }
    // Running totals on receipts are distinct prefix sums ending at the total.
    let mut running: Vec<Decimal> = receipts.iter().map(|c| c.running_client_usd).collect();
    running.sort();
    running.dedup();
    assert_eq!(running.len(), CALLS);
    assert_eq!(*running.last().unwrap(), sum);

    let read = read_all(&path).unwrap();
    assert_eq!(read.records.len(), CALLS);
    assert!(read.torn_tail.is_none());
    assert_eq!(
        read.records.iter().map(|c| c.cost_usd).sum::<Decimal>(),
        sum
    );
    let by_id: HashMap<&str, &Cost> = receipts.iter().map(|c| (c.call_id.as_str(), c)).collect();
    for record in &read.records {
        assert_eq!(
            by_id[record.call_id.as_str()],
            record,
            "ledger record = receipt"
        );
    }

    let mut invocations = 0;
    // The micro-dollar counter's series, by their `endpoint` label.
    let mut micro_usd: HashMap<String, Vec<u64>> = HashMap::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        match (key.key().name(), value) {
            ("sagemeter_invocations_total", DebugValue::Counter(n)) => invocations += n,
            ("sagemeter_cost_micro_usd_total", DebugValue::Counter(n)) => {
                let endpoint = key
                    .key()
                    .labels()
                    .find(|l| l.key() == "endpoint")
                    .unwrap()
                    .value()
                    .to_owned();
                micro_usd.entry(endpoint).or_default().push(n);
            }
            _ => {}
        }
    }
    assert_eq!(invocations, CALLS as u64);
    // Each endpoint's calls have one label set (one region, variant and price
    // source), so its counter is the exact sum of its receipts truncated to the
    // micro-dollar: ⌊Σ × 10⁶⌋, the sub-micro-dollar remainders carried, not lost.
    assert_eq!(micro_usd.len(), 2, "{micro_usd:?}");
    for endpoint in ["rt", "sls"] {
        let per = sum_of(&receipts, endpoint);
        let truncated = u64::try_from((per * Decimal::from(1_000_000)).floor()).unwrap();
        assert_eq!(
            micro_usd[endpoint],
            [truncated],
            "{endpoint}: Σ receipts {per} USD"
        );
    }
}

/// A distinctive marker in request and response bodies (and custom attributes)
/// appears in no log line, ledger record, metric label or error message; nor do the
/// credentials. The ledger file is owner-only.
#[tokio::test]
async fn payloads_and_credentials_never_leak() {
    // Installs the capture, read back below as `logs::everything()`.
    let _logs = logs::capture();
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    const MARKER: &str = "ZEBRA-PAYLOAD-4411";
    let fake = fake().await;
    fake.set_response_body(
        format!(r#"{{"text":"{MARKER}","usage":{{"prompt_tokens":1,"completion_tokens":2}}}}"#)
            .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leak.jsonl");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIALEAKCHECK0000001",
            "SECRETLEAKCHECKzzzzzzzzzzzzzzzzzzzzzzzz",
            None,
            None,
            "test",
        ))
        .endpoint_url(&fake.url)
        .load()
        .await;
    let client = priced(Client::builder(&config))
        .sink(JsonlLedger::open(&path).unwrap())
        .build()
        .unwrap();
    let mut messages = Vec::new();
    for endpoint in ["rt", "sls"] {
        let r = client
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .custom_attributes(MARKER)
            .body(Blob::new(format!(r#"{{"inputs":"{MARKER}"}}"#)))
            .send()
            .await
            .unwrap();
        messages.push(format!("{} {:?}", r.cost(), r.cost()));
    }
    // Failing calls: the model's error text and the request both carry the marker.
    fake.fail_invocations(424, "ModelError", &format!("model said: {MARKER}"));
    let err = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new(MARKER))
        .send()
        .await
        .unwrap_err();
    // The SDK error inside keeps the model's message (so it did carry the marker).
    let sagemeter::Error::Invoke { source, .. } = &err else {
        panic!("expected Error::Invoke, got {err}")
    };
    let Some(InvokeEndpointError::ModelError(model)) = source.as_service_error() else {
        panic!("expected a ModelError")
    };
    assert!(model.message().is_some_and(|m| m.contains(MARKER)));
    messages.push(err.to_string());
    messages.push(format!("{err:?}"));
    // The request builders, body set: their Debug names the endpoint, and neither
    // the body nor the SDK client's configuration (credentials).
    let builders = [
        format!(
            "{:?}",
            client
                .invoke_endpoint()
                .endpoint_name("rt")
                .custom_attributes(MARKER)
                .body(Blob::new(MARKER))
        ),
        format!(
            "{:?}",
            client
                .invoke_endpoint_with_response_stream()
                .endpoint_name("rt")
                .custom_attributes(MARKER)
                .body(Blob::new(MARKER))
        ),
        format!(
            "{:?}",
            client
                .invoke_endpoint_async()
                .endpoint_name("rt")
                .custom_attributes(MARKER)
                .body(Blob::new(MARKER))
        ),
    ];
    for text in &builders {
        assert!(text.contains("\"rt\""), "{text}");
    }
    client.shutdown().await.unwrap();

    let ledger = std::fs::read_to_string(&path).unwrap();
    let metric_labels: Vec<String> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, ..)| format!("{:?}", key.key()))
        .collect();
    for (what, text) in [
        // Every level and thread (the writers' too), not only this test's INFO.
        ("logs", logs::everything()),
        ("ledger", ledger),
        ("metric labels", metric_labels.join("\n")),
        ("receipts and errors", messages.join("\n")),
        ("client debug", format!("{client:?}")),
        ("request builders' debug", builders.join("\n")),
    ] {
        assert!(!text.is_empty(), "{what} is empty");
        for secret in [MARKER, "AKIALEAKCHECK0000001", "SECRETLEAKCHECK"] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {what}:\n{text}"
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
