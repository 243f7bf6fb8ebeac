//! The metered client through the real SDK stack, against an in-process fake
//! SageMaker (control plane + runtime). Rates come from a fixed test price source
//! so every expected figure is computed by hand from the rates the receipt names.

use crate::support::by_hand::r12;
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::logs;
use crate::support::manual_clock;
use crate::support::receipts::{Receipts, line};
use crate::support::{AttemptsEnded, intercepted, submit_async};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_types::timeout::TimeoutConfig;
use rust_decimal::Decimal;
use sagemeter::billing::{Allocation, LineItem, UsageCharges};
use sagemeter::endpoint::{EndpointProfile, VariantBilling, VariantProfile};
use sagemeter::pricing::{
    BoxFuture, PriceError, PriceKey, PriceOrigin, PriceSource, Provenance, Rate,
};
use sagemeter::usage::Outcome;
use sagemeter::{Client, Cost, Error, SendMeteredExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Published us-east-1 rates (see data/sagemaker-on-demand-usd.tsv), served as `live`.
#[derive(Debug)]
struct FixedPrices(HashMap<PriceKey, Decimal>);

impl FixedPrices {
    fn us_east_1() -> Self {
        let r = "us-east-1".to_owned();
        FixedPrices(HashMap::from([
            (PriceKey::hosting(&r, "ml.m5.xlarge"), dec("0.23")),
            (PriceKey::serverless(&r, 3), dec("0.00006")),
            (PriceKey::DataIn { region: r.clone() }, dec("0.016")),
            (PriceKey::DataOut { region: r.clone() }, dec("0.016")),
        ]))
    }

    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        self.0
            .get(key)
            .map(|usd| {
                Rate::new(
                    key.clone(),
                    *usd,
                    Provenance::new(PriceOrigin::Live)
                        .with_sku("TESTSKU")
                        .with_effective_date("2026-11-01T00:00:00Z"),
                )
            })
            .ok_or(PriceError::NotFound { key: key.clone() })
    }
}

/// Every rate at hand, as a warm cache has them: calls take the path that reuses
/// what was put together for an endpoint, as they do in production.
impl PriceSource for FixedPrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { self.rate(key) })
    }
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.rate(key))
    }
}

async fn fake_with_demo_endpoints() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake.add_endpoint("sls", vec![FakeVariant::serverless("AllTraffic", 3072)]);
    fake.add_endpoint(
        "exotic",
        vec![FakeVariant::instance("AllTraffic", "ml.nope.xlarge", 1)],
    );
    fake
}

async fn client_for(fake: &FakeSageMaker) -> Client {
    priced(fake).await.build().unwrap()
}

/// A client of the fake's `rt` as one ml.m5.xlarge (a fixed profile, no
/// discovery), priced from [`FixedPrices`].
async fn rt_on_one_m5(fake: &FakeSageMaker) -> sagemeter::ClientBuilder {
    Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
        ))
        .price_source(FixedPrices::us_east_1())
}

/// A client builder of `fake`, priced from [`FixedPrices`].
async fn priced(fake: &FakeSageMaker) -> sagemeter::ClientBuilder {
    Client::builder(&fake.sdk_config().await).price_source(FixedPrices::us_east_1())
}

/// The receipts sink `sink` lost to a panic, as `recorder` counted them.
fn lost_to_a_panic(recorder: &metrics_util::debugging::DebuggingRecorder, sink: &str) -> u64 {
    crate::support::counter_values(recorder, "sagemeter_sink_dropped_total")
        .into_iter()
        .filter(|(labels, _)| {
            let has = |k: &str, v: &str| labels.iter().any(|(lk, lv)| lk == k && lv == v);
            has("sink", sink) && has("reason", "panicked")
        })
        .map(|(_, n)| n)
        .sum()
}

/// A client of `fake` priced from [`FixedPrices`], `rt`'s tokens charged
/// `input` and `output` USD per 1,000.
async fn rt_per_1000_tokens(fake: &FakeSageMaker, input: Decimal, output: Decimal) -> Client {
    priced(fake)
        .await
        .usage_charges("rt", UsageCharges::default().per_1000_tokens(input, output))
        .build()
        .unwrap()
}

/// Why the receipt's `item` line is unpriced; it must be.
fn unpriced_reason(cost: &Cost, item: LineItem) -> String {
    let line = cost.lines.iter().find(|l| l.item == item).unwrap();
    match &line.price {
        sagemeter::billing::LinePrice::Unpriced { reason } => reason.clone(),
        priced => panic!("{item:?} should be unpriced: {priced:?}"),
    }
}

/// `InvokeEndpoint` with an empty JSON body.
fn invoke(
    client: &Client,
    endpoint: &str,
) -> impl std::future::Future<
    Output = sagemeter::Result<
        sagemeter::Metered<
            aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointOutput,
        >,
    >,
> + use<> {
    request(client, endpoint).send()
}

/// An `InvokeEndpoint` request of `endpoint` with an empty JSON body, to add to.
fn request(client: &Client, endpoint: &str) -> sagemeter::client::InvokeEndpoint {
    client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(Blob::new("{}"))
}

fn line_cost(cost: &Cost, item: LineItem) -> Decimal {
    cost.lines
        .iter()
        .find(|l| l.item == item)
        .and_then(|l| l.cost_usd())
        .unwrap_or_else(|| panic!("no priced {item:?} line in {cost:#?}"))
}

const GIB: u64 = 1 << 30;

#[tokio::test]
async fn instance_endpoint_receipt_equals_busy_time_and_data_at_the_named_rates() {
    let fake = fake_with_demo_endpoints().await;
    // The model takes 50 ms; describing the endpoint (the first call's discovery)
    // takes 300 ms, which is no model time and must not be billed as such.
    *fake.state.latency.lock().unwrap() = Duration::from_millis(50);
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_millis(300);
    let client = priced(&fake)
        .await
        .allocation(Allocation::BusyTime)
        .build()
        .unwrap();
    let body = r#"{"messages":[{"role":"user","content":"hello"}]}"#;

    let response = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .content_type("application/json")
        .body(Blob::new(body))
        .send()
        .await
        .unwrap();
    let cost = response.cost();

    // The SDK output is still there.
    assert!(
        response
            .body()
            .unwrap()
            .as_ref()
            .starts_with(b"{\"choices\"")
    );
    assert_eq!(response.invoked_production_variant(), Some("AllTraffic"));

    assert!(
        cost.usage.latency >= Duration::from_millis(50)
            && cost.usage.latency < Duration::from_millis(300),
        "{:?}: the model's 50 ms, not the discovery's 300",
        cost.usage.latency
    );
    let latency_us = Decimal::from(cost.usage.latency.as_micros() as u64);
    // compute = 0.23 USD/h × latency µs / 3.6e9 µs/h
    let compute = r12(dec("0.23") * latency_us / Decimal::from(3_600_000_000u64));
    // data = bytes / 2^30 × 0.016 USD/GB
    let data_in = r12(Decimal::from(body.len()) / Decimal::from(GIB) * dec("0.016"));
    let bytes_out = response.body().unwrap().as_ref().len() as u64;
    let data_out = r12(Decimal::from(bytes_out) / Decimal::from(GIB) * dec("0.016"));
    assert_eq!(line_cost(cost, LineItem::Compute), compute);
    assert_eq!(line_cost(cost, LineItem::DataIn), data_in);
    assert_eq!(line_cost(cost, LineItem::DataOut), data_out);
    assert_eq!(cost.cost_usd, compute + data_in + data_out);
    assert!(cost.cost_usd > Decimal::ZERO);

    assert_eq!(cost.usage.bytes_in, body.len() as u64);
    assert_eq!(cost.usage.bytes_out, bytes_out);
    assert_eq!(cost.usage.input_tokens, Some(12));
    assert_eq!(cost.usage.output_tokens, Some(30));
    assert_eq!(cost.variant.as_deref(), Some("AllTraffic"));
    assert_eq!(cost.running_client_usd, cost.cost_usd);
    assert_eq!(cost.running_endpoint_usd, cost.cost_usd);
    assert_eq!(cost.price_source(), Some(PriceOrigin::Live));
    let provenance = cost.compute_provenance().unwrap();
    assert_eq!(provenance.sku.as_deref(), Some("TESTSKU"));
    assert_eq!(
        provenance.effective_date.as_deref(),
        Some("2026-11-01T00:00:00Z")
    );
    assert!(cost.is_fully_priced());
    assert!(cost.call_id.starts_with("req-"), "{}", cost.call_id);
    // Accrual: the 2 instances accrue from the start of metering; busy time is a part of it.
    let accrual = cost.accrual.as_ref().unwrap();
    assert_eq!(accrual.allocated_usd, compute);
    assert!(accrual.accrued_usd >= compute, "{accrual:?}");
}

#[tokio::test]
async fn serverless_receipt_bills_duration_rounded_up_to_the_millisecond() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let response = invoke(&client, "sls").await.unwrap();
    let cost = response.cost();
    let billed_ms = cost.usage.latency.as_nanos().div_ceil(1_000_000) as u64;
    // 3072 MB = 3 GB at 0.00006 USD/s; billed ms / 1000 × rate
    let compute = r12(Decimal::from(billed_ms) / Decimal::from(1000) * dec("0.00006"));
    assert_eq!(line_cost(cost, LineItem::Compute), compute);
    assert!(compute > Decimal::ZERO);
    assert!(cost.accrual.is_none(), "serverless has no idle accrual");
    assert!(matches!(
        cost.billing,
        Some(VariantBilling::Serverless {
            memory_mb: 3072,
            ..
        })
    ));
}

#[tokio::test]
async fn unknown_endpoint_is_a_clear_error_naming_it() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let err = invoke(&client, "no-such-endpoint").await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownEndpoint { ref endpoint, .. } if endpoint == "no-such-endpoint")
    );
    assert!(err.to_string().contains("`no-such-endpoint`"), "{err}");
    assert_eq!(client.meter().totals().calls, 0, "nothing is recorded");
}

#[tokio::test]
async fn an_instance_type_without_a_price_is_unpriced_not_zero_and_the_call_succeeds() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let response = invoke(&client, "exotic").await.unwrap();
    let cost = response.cost();
    assert!(!cost.is_fully_priced());
    let compute = line(cost, LineItem::Compute);
    assert_eq!(compute.cost_usd(), None);
    let reasons: Vec<_> = cost.unpriced_reasons().collect();
    assert!(reasons[0].contains("ml.nope.xlarge"), "{reasons:?}");
    assert!(cost.to_string().contains("UNPRICED"), "{cost}");
    // Data lines are still priced: the total is what is known, never a silent zero line.
    assert_eq!(
        cost.cost_usd,
        line_cost(cost, LineItem::DataIn) + line_cost(cost, LineItem::DataOut)
    );
}

#[tokio::test]
async fn running_totals_equal_the_sum_of_receipts_under_concurrency() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = client.clone();
        let endpoint = if i % 3 == 0 { "sls" } else { "rt" };
        tasks.push(tokio::spawn(async move {
            client
                .invoke_endpoint()
                .endpoint_name(endpoint)
                .body(Blob::new(format!("{{\"n\":{i}}}")))
                .send()
                .await
                .unwrap()
                .into_parts()
                .1
        }));
    }
    let mut receipts = Vec::new();
    for t in tasks {
        receipts.push(t.await.unwrap());
    }
    let sum: Decimal = receipts.iter().map(|c| c.cost_usd).sum();
    let totals = client.meter().totals();
    assert_eq!(totals.calls, 200);
    assert_eq!(totals.client_usd, sum);
    for endpoint in ["rt", "sls"] {
        let per_endpoint: Decimal = receipts
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .map(|c| c.cost_usd)
            .sum();
        assert_eq!(totals.by_endpoint[endpoint], per_endpoint);
    }
    // Each receipt's running total is a distinct prefix sum; the largest is the total.
    let max_running = receipts.iter().map(|c| c.running_client_usd).max().unwrap();
    assert_eq!(max_running, sum);
}

#[tokio::test]
async fn send_metered_on_the_sdk_builder_returns_the_same_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let meter = sagemeter::Meter::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .build_meter()
        .unwrap();
    let sdk = aws_sdk_sagemakerruntime::Client::new(&config);
    let response = sdk
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send_metered(&meter)
        .await
        .unwrap();
    assert!(response.cost().cost_usd > Decimal::ZERO);
    assert_eq!(meter.totals().client_usd, response.cost().cost_usd);

    // The futures own what they need (the meter is cloned, not borrowed): a
    // request can be spawned, tagged with borrowed text or not.
    let team = String::from("search");
    let tagged = sdk
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send_metered_tagged(&meter, [("team".to_owned(), team.clone())]);
    let plain = sdk
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send_metered(&meter);
    let meter_kept = meter.clone();
    drop(meter);
    let (tagged, plain) = (tokio::spawn(tagged), tokio::spawn(plain));
    assert_eq!(tagged.await.unwrap().unwrap().cost().tags["team"], team);
    plain.await.unwrap().unwrap();
    assert_eq!(meter_kept.totals().calls, 3);
}

/// Code written against the SDK's fluent builder works on sagemeter's: the
/// `set_*` (an `Option`) and `get_*` forms of every setter are there, and what
/// they set is what the SDK sends.
#[tokio::test]
async fn the_sdk_builders_set_and_get_forms_work_unchanged() {
    let fake = fake_with_demo_endpoints().await;
    let client = priced(&fake).await.build().unwrap();
    let request = client
        .invoke_endpoint()
        .set_endpoint_name(Some("rt".to_owned()))
        .set_body(Some(Blob::new("{}")))
        .set_content_type(Some("application/json".to_owned()))
        .prefix_aware_id("app-1")
        .set_session_id(None);
    assert_eq!(request.get_endpoint_name().as_deref(), Some("rt"));
    assert_eq!(
        request.get_content_type().as_deref(),
        Some("application/json")
    );
    assert_eq!(request.get_prefix_aware_id().as_deref(), Some("app-1"));
    assert_eq!(request.get_session_id(), &None);
    let request = request.set_content_type(None);
    assert_eq!(request.get_content_type(), &None);
    let response = request.send().await.unwrap();
    assert_eq!(response.cost().endpoint, "rt");
    assert_eq!(response.cost().usage.bytes_in, 2);
    let stream = client
        .invoke_endpoint_with_response_stream()
        .set_prefix_aware_id(Some("app-2".to_owned()));
    assert_eq!(stream.get_prefix_aware_id().as_deref(), Some("app-2"));
    let queued = client
        .invoke_endpoint_async()
        .set_request_ttl_seconds(Some(600));
    assert_eq!(queued.get_request_ttl_seconds(), &Some(600));
}

/// A request built once and sent again (a retry, a hedge) clones, as the SDK's
/// fluent builders do: each send is its own call with its own receipt.
#[tokio::test]
async fn a_request_clones_as_the_sdks_builders_do_and_each_send_has_its_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let built = request(&client, "rt").tag("team", "search");
    let first = built.clone().send().await.unwrap();
    let second = built.send().await.unwrap();
    assert_ne!(first.cost().call_id, second.cost().call_id);
    for response in [&first, &second] {
        assert_eq!(response.cost().tags["team"], "search");
    }
    let _ = client.invoke_endpoint_with_response_stream().clone();
    let _ = client.invoke_endpoint_async().clone();
}

/// Every future the library hands out can be spawned on a multi-threaded runtime
/// (`Send + 'static`), as a service's handlers do.
#[tokio::test]
async fn the_librarys_futures_can_be_spawned() {
    fn spawned<F: std::future::Future + Send + 'static>(f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F::Output: Send + 'static,
    {
        tokio::spawn(f)
    }
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let client = sagemeter::Client::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .build()
        .unwrap();
    let invoke = invoke(&client, "rt");
    assert!(spawned(invoke).await.unwrap().is_ok());
    let meter = client.meter().clone();
    let profile = {
        let meter = meter.clone();
        async move {
            meter
                .endpoint_profile("rt")
                .await
                .map(|p| p.endpoint.clone())
        }
    };
    assert_eq!(spawned(profile).await.unwrap().unwrap(), "rt");
    let flush = {
        let meter = meter.clone();
        async move { meter.flush().await }
    };
    spawned(flush).await.unwrap().unwrap();
    let shutdown = async move { client.shutdown().await };
    spawned(shutdown).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_interceptor_meters_a_plain_sdk_client_with_no_change_at_the_call_site() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let meter = sagemeter::Meter::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .build_meter()
        .unwrap();
    let sdk = intercepted(&config, &meter);
    for _ in 0..3 {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
            .await
            .unwrap();
    }
    // Pricing runs off the call path: wait for it, bounded.
    for _ in 0..200 {
        if meter.totals().calls == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let totals = meter.totals();
    assert_eq!(totals.calls, 3);
    assert!(totals.by_endpoint["rt"] > Decimal::ZERO);
}

#[tokio::test]
async fn a_model_error_still_costs_and_the_receipt_rides_on_the_error() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.invoke_error.lock().unwrap() = Some((424, "ModelError".into()));
    let client = client_for(&fake).await;
    let err = invoke(&client, "rt").await.unwrap_err();
    let Error::Invoke { source, cost, .. } = &err else {
        panic!("expected Invoke, got {err:?}");
    };
    assert!(source.as_service_error().unwrap().is_model_error());
    let cost = cost
        .as_ref()
        .expect("the model ran: the call has a receipt");
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert!(cost.cost_usd > Decimal::ZERO);
    assert_eq!(client.meter().totals().calls, 1);
    // The same receipt, without matching the variant.
    assert_eq!(err.cost(), Some(&**cost));
}

/// The running totals per tag: each receipt counts under every tag it carries,
/// the client's default tags included; an untagged call under none.
#[tokio::test]
async fn running_totals_are_kept_per_tag_value() {
    let fake = fake_with_demo_endpoints().await;
    let client = priced(&fake)
        .await
        .default_tag("env", "prod")
        .build()
        .unwrap();
    let client = &client;
    let tagged = |tenant: &'static str| async move {
        let sent = request(client, "rt").tag("tenant", tenant).send().await;
        sent.unwrap().cost().cost_usd
    };
    let acme = [tagged("acme").await, tagged("acme").await];
    let initech = tagged("initech").await;
    let untagged = invoke(client, "rt").await.unwrap().cost().cost_usd;
    let by_tag = client.meter().totals().by_tag;
    let sums = |values: &[(&str, Decimal)]| {
        values
            .iter()
            .map(|(value, usd)| (value.to_string(), *usd))
            .collect::<HashMap<_, _>>()
    };
    let expected = HashMap::from([
        (
            "tenant".to_owned(),
            sums(&[("acme", acme[0] + acme[1]), ("initech", initech)]),
        ),
        // Every call carries the default tag, the untagged one too.
        (
            "env".to_owned(),
            sums(&[("prod", acme[0] + acme[1] + initech + untagged)]),
        ),
    ]);
    assert_eq!(by_tag, expected);
    assert!(initech > Decimal::ZERO);
}

#[tokio::test]
async fn a_throttled_call_is_not_billed() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let client = retrying_client(&fake, 3, Duration::from_millis(1), |b| {
        b.sink(receipts.clone())
    })
    .await;
    // Throttled on every attempt: SageMaker never ran the model, and AWS bills
    // nothing for it.
    fake.throttle_next(u64::MAX);
    let err = invoke(&client, "rt").await.unwrap_err();
    assert_eq!(fake.invocations(), 3, "every attempt throttled");
    assert!(matches!(err, Error::Invoke { cost: None, .. }), "{err:?}");
    assert_eq!(err.cost(), None);
    assert_eq!(client.meter().totals().calls, 0);
    assert_eq!(client.meter().totals().client_usd, Decimal::ZERO);
    assert!(receipts.all().is_empty(), "{:?}", receipts.all());
    // Nor is a request refused before the model (a validation error).
    fake.throttle_next(0);
    *fake.state.invoke_error.lock().unwrap() = Some((400, "ValidationError".into()));
    let err = invoke(&client, "rt").await.unwrap_err();
    assert!(matches!(err, Error::Invoke { cost: None, .. }), "{err:?}");
    assert_eq!(client.meter().totals().calls, 0);
    assert!(receipts.all().is_empty());
}

#[tokio::test]
async fn access_denied_on_describe_is_unpriced_with_the_reason_and_an_override_fixes_it() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let client = client_for(&fake).await;
    let response = invoke(&client, "rt")
        .await
        .expect("pricing problems never fail the call");
    let reasons: Vec<_> = response.cost().unpriced_reasons().collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("sagemaker:DescribeEndpoint")),
        "{reasons:?}"
    );

    let client = priced(&fake)
        .await
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    assert!(response.cost().is_fully_priced());
}

#[tokio::test]
async fn a_call_whose_endpoint_cannot_be_described_still_bills_its_data_never_a_silent_zero() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let client = client_for(&fake).await;
    // An async submission bills data in (and a per-inference fee), no compute:
    // 1 GiB in S3 × 0.016 USD/GB = 0.016 USD, whatever the endpoint's profile.
    let submitted = submit_async(&client, "rt", GIB).await;
    let cost = submitted.cost();
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.016"));
    assert_eq!(cost.cost_usd, dec("0.016"));

    // A call: its compute is unpriced with the reason, its data lines are billed
    // (2 B in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003).
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    assert!(!cost.is_fully_priced());
    assert!(
        cost.unpriced_reasons()
            .any(|r| r.contains("sagemaker:DescribeEndpoint"))
    );
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    assert!(cost.lines.iter().any(|l| l.item == LineItem::DataOut));
}

/// "Never price silently at $0" holds for the running totals too: a call whose
/// compute could not be priced (DescribeEndpoint denied, no profile set) adds
/// only its priced part to `client_usd`, and the snapshot says how many calls
/// that left out, in all and per endpoint.
///
/// AWS bills the call its compute (instance-hours × the instance's rate) and
/// its data (2 B in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003 USD,
/// and the response's bytes out at the same rate): the totals hold the data
/// lines only, the receipt's `cost_usd`, a lower bound, with 1 call unpriced.
#[tokio::test]
async fn totals_count_the_calls_they_could_not_price_in_all_and_per_endpoint() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let client = client_for(&fake).await;
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    assert!(!cost.is_fully_priced());
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    let totals = client.meter().totals();
    assert_eq!((totals.calls, totals.unpriced_calls), (1, 1));
    assert_eq!(
        totals.unpriced_by_endpoint,
        HashMap::from([("rt".to_owned(), 1)])
    );
    assert_eq!(totals.by_endpoint["rt"], cost.cost_usd);
    assert_eq!(totals.client_usd, cost.cost_usd);

    // A fully priced call counts none.
    let client = rt_on_one_m5(&fake).await.build().unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    assert!(response.cost().is_fully_priced());
    let totals = client.meter().totals();
    assert_eq!((totals.calls, totals.unpriced_calls), (1, 0));
    assert!(totals.unpriced_by_endpoint.is_empty());
}

/// A client's calls and unpriced calls: in all, and on endpoint `rt`.
fn unpriced_counts(client: &Client) -> (u64, u64, Option<u64>) {
    let t = client.meter().totals();
    (
        t.calls,
        t.unpriced_calls,
        t.unpriced_by_endpoint.get("rt").copied(),
    )
}

/// An async invocation processed for 10 s, with 2,048 B of output.
fn ten_seconds_2048_b_out() -> sagemeter::client::AsyncCompletion<'static> {
    sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(2048)
}

/// An async invocation is one call however many of its two receipts are
/// unpriced: counted unpriced at its submission if that is, else at its
/// settlement if that is. With DescribeEndpoint denied, a submission of 1 GiB
/// in S3 is priced (1 GiB × 0.016 USD/GB = 0.016 USD) and its settlement's
/// compute is not: 1 call, 1 unpriced once settled. A submission whose input
/// size was not given is unpriced, and so is its settlement: 1 more call, 1
/// more unpriced, not 2.
#[tokio::test]
async fn an_async_invocation_counts_as_one_unpriced_call_whichever_receipts_are() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let client = client_for(&fake).await;

    let submitted = submit_async(&client, "rt", GIB).await;
    assert!(submitted.cost().is_fully_priced());
    assert_eq!(submitted.cost().cost_usd, dec("0.016"));
    assert_eq!(unpriced_counts(&client), (1, 0, None));
    let settled = submitted.settle(ten_seconds_2048_b_out()).await;
    assert!(!settled.is_fully_priced());
    assert_eq!(unpriced_counts(&client), (1, 1, Some(1)));

    let submitted = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/2.json")
        .send()
        .await
        .unwrap();
    assert!(!submitted.cost().is_fully_priced());
    assert_eq!(unpriced_counts(&client), (2, 2, Some(2)));
    // Settled from the copy kept as JSON (as another process would keep it):
    // the copy remembers its submission was counted.
    let (_, _, pending) = submitted.into_parts();
    let pending: sagemeter::client::PendingInference =
        serde_json::from_str(&serde_json::to_string(&pending).unwrap()).unwrap();
    let settled = client
        .meter()
        .settle_async(pending, ten_seconds_2048_b_out())
        .await
        .unwrap();
    assert!(!settled.is_fully_priced());
    assert_eq!(unpriced_counts(&client), (2, 2, Some(2)));
}

/// A settlement by another meter (a worker process settling the JSON copy) is
/// counted there when it is unpriced, even if its submission was unpriced too:
/// the submitting meter counted the submission in its own totals, not in the
/// settling one's, whose `client_usd` would otherwise be a lower bound that
/// says nothing. With DescribeEndpoint denied, a submission of unstated size
/// is unpriced (meter A: 1 call, 1 unpriced); its settlement by meter B prices
/// the 2,048 B out (2,048 / 2³⁰ GB × 0.016 USD/GB = 0.000000030517578125 USD,
/// 0.000000030518 at the receipt's 12 places) and not the compute: B holds that
/// data line and 1 unpriced call (a settlement adds no call), A still 1.
#[tokio::test]
async fn an_unpriced_settlement_by_another_meter_counts_there_as_unpriced() {
    let fake = fake_with_demo_endpoints().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let submitter = client_for(&fake).await;
    let submit_unsized = |n: u32| {
        submitter
            .invoke_endpoint_async()
            .endpoint_name("rt")
            .input_location(format!("s3://fake-bucket/input/{n}.json"))
            .send()
    };

    let submitted = submit_unsized(1).await.unwrap();
    assert!(!submitted.cost().is_fully_priced());
    assert_eq!(unpriced_counts(&submitter), (1, 1, Some(1)));
    let (_, _, pending) = submitted.into_parts();
    let json = serde_json::to_string(&pending).unwrap();
    let worker = client_for(&fake).await;
    let settled = worker
        .meter()
        .settle_async(
            serde_json::from_str(&json).unwrap(),
            ten_seconds_2048_b_out(),
        )
        .await
        .unwrap();
    assert!(!settled.is_fully_priced());
    assert_eq!(
        line_cost(&settled, LineItem::DataOut),
        dec("0.000000030518")
    );
    let totals = worker.meter().totals();
    assert_eq!(totals.client_usd, settled.cost_usd);
    assert_eq!(unpriced_counts(&worker), (0, 1, Some(1)));
    assert_eq!(unpriced_counts(&submitter), (1, 1, Some(1)));
}

#[tokio::test]
async fn a_completion_hours_after_submission_bills_at_most_the_invocation_timeout() {
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5(&fake).await.build().unwrap();
    let six_hours = Duration::from_secs(6 * 3600);
    let compute_hours = |cost: &Cost| line(cost, LineItem::Compute).quantity;
    // Queued for hours, then processed: the model can have worked on it for the
    // invocation timeout at the most (AWS's default 900 s = 0.25 h), not 6 h.
    let submitted = submit_async(&client, "rt", 1024).await;
    let landed = std::time::SystemTime::from(submitted.pending().submitted_at()) + six_hours;
    let cost = submitted
        .settle(sagemeter::client::AsyncCompletion::completed_at(landed).output_bytes(2048))
        .await;
    assert_eq!(compute_hours(&cost), dec("0.25"));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("billed the invocation timeout (900 s)")
                && n.contains("21600 s since submission was queue time")),
        "{:?}",
        cost.notes
    );
    // A request's own timeout (60 s) is the bound: 60 / 3,600 h.
    let submitted = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/2.json")
        .input_bytes(1024)
        .invocation_timeout_seconds(60)
        .send()
        .await
        .unwrap();
    let landed = std::time::SystemTime::from(submitted.pending().submitted_at()) + six_hours;
    let cost = submitted
        .settle(sagemeter::client::AsyncCompletion::completed_at(landed).output_bytes(2048))
        .await;
    assert_eq!(compute_hours(&cost), (dec("60") / dec("3600")).normalize());
    // Within the timeout, the whole time is billed: 120 s = 1/30 h.
    let submitted = submit_async(&client, "rt", 1024).await;
    let landed =
        std::time::SystemTime::from(submitted.pending().submitted_at()) + Duration::from_secs(120);
    let cost = submitted
        .settle(sagemeter::client::AsyncCompletion::completed_at(landed).output_bytes(2048))
        .await;
    assert_eq!(compute_hours(&cost), (dec("120") / dec("3600")).normalize());
}

#[tokio::test]
async fn a_completion_known_to_the_second_bills_to_the_end_of_that_second() {
    use sagemeter::client::AsyncCompletion;
    let fake = fake_with_demo_endpoints().await;
    // 2027-01-15 08:00:00 UTC on a manual clock; `rt` asynchronous, at one
    // ml.m5.xlarge of AsyncInf at $0.23/h.
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(
            EndpointProfile::new(
                "rt",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_source(FixedPrices::us_east_1())
        .price_override(
            PriceKey::AsyncInference {
                region: "us-east-1".into(),
                instance_type: "ml.m5.xlarge".into(),
            },
            dec("0.23"),
        )
        .time_source(shared)
        .build()
        .unwrap();
    let at = |s: u64, ms: u64| {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s) + Duration::from_millis(ms)
    };
    // A: submitted at 08:00:00.400; its output landed at 08:00:00.850, which
    // S3's `LastModified` (whole seconds, rounded down) gives as 08:00:00.
    time.set_time(at(0, 400));
    let submitted = submit_async(&client, "rt", 1024).await;
    let last_modified = at(0, 0);
    // Taken as the time itself, it is before the submission: compute unpriced.
    let cost = submitted
        .settle(AsyncCompletion::completed_at(last_modified).output_bytes(0))
        .await;
    assert!(!cost.is_fully_priced(), "{cost:#?}");
    // Within 1 s of it: landed by 08:00:01, 0.6 s after the submission, an
    // upper bound; 0.6 s × $0.23/h / 3,600 s = $0.0000383333… → $0.000038333333.
    let other = submit_async(&client, "rt", 1024).await;
    let cost = other
        .settle(
            AsyncCompletion::completed_within(last_modified, Duration::from_secs(1))
                .output_bytes(0),
        )
        .await;
    assert!(cost.is_fully_priced(), "{cost:#?}");
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.000038333333"));
    // B: submitted at 08:00:05.900, landed at 08:00:06.800 (0.9 s of work),
    // `LastModified` 08:00:06. Taken as the time itself it would bill 0.1 s,
    // less than the model ran; within 1 s, to 08:00:07: 1.1 s × $0.23/h /
    // 3,600 s = $0.0000702777… → $0.000070277778.
    time.set_time(at(5, 900));
    let cost = submit_async(&client, "rt", 1024)
        .await
        .settle(AsyncCompletion::completed_within(at(6, 0), Duration::from_secs(1)).output_bytes(0))
        .await;
    assert!(cost.is_fully_priced(), "{cost:#?}");
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.000070277778"));
    // A bound too far to add to any time: the most the model can have worked
    // on it, the invocation timeout (900 s by default): 0.25 h × $0.23 =
    // $0.0575, not the 0.1 s to the time stated.
    let cost = submit_async(&client, "rt", 1024)
        .await
        .settle(AsyncCompletion::completed_within(at(6, 0), Duration::MAX).output_bytes(0))
        .await;
    assert!(cost.is_fully_priced(), "{cost:#?}");
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.0575"));
    // Stated 1 s before the submission, within 1 s: landed by the submission
    // at the latest, before it: the clocks disagree, compute unpriced.
    let cost = submit_async(&client, "rt", 1024)
        .await
        .settle(
            AsyncCompletion::completed_within(at(4, 900), Duration::from_secs(1)).output_bytes(0),
        )
        .await;
    assert!(!cost.is_fully_priced(), "{cost:#?}");
}

/// SageMaker expires an async request after its `InvocationTimeoutSeconds` (900 s
/// by default): a stated processing time past it is billed the timeout, as a
/// completion time past it is, with a note. At $0.23/h, 1 h stated on a request
/// with the default timeout: 900 s = 0.25 h × $0.23 = $0.0575, not $0.23.
#[tokio::test]
async fn a_processing_time_past_the_invocation_timeout_bills_the_timeout() {
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5_at(&fake, "0.23").await;
    let submitted = submit_async(&client, "rt", 1024).await;
    let cost = submitted
        .settle(
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(3600))
                .output_bytes(0),
        )
        .await;
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(compute.quantity, dec("0.25"));
    assert_eq!(compute.cost_usd(), Some(dec("0.0575")));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("billed the invocation timeout (900 s)")
                && n.contains("not the 3600 s stated")),
        "{:?}",
        cost.notes
    );
    // Within the timeout, the stated time: 600 s = 1/6 h × $0.23 = $0.0383333…,
    // rounded half to even at 12 places: $0.038333333333; no such note.
    let submitted = submit_async(&client, "rt", 1024).await;
    let cost = submitted
        .settle(
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600))
                .output_bytes(0),
        )
        .await;
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.038333333333"));
    assert!(!cost.notes.iter().any(|n| n.contains("invocation timeout")));
}

/// A client metering rt on one ml.m5.xlarge whose hosting costs `usd_per_hour`.
async fn rt_on_one_m5_at(fake: &FakeSageMaker, usd_per_hour: &str) -> Client {
    rt_on_one_m5(fake)
        .await
        .price_override(
            PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
            dec(usd_per_hour),
        )
        .build()
        .unwrap()
}

/// Submits 1 KiB to rt asynchronously, keeps its pending invocation as JSON
/// changed by `edit` (as an earlier version or a hand wrote it), and settles the
/// kept one as processed for `processed`, with no output.
async fn settle_kept(
    client: &Client,
    edit: impl FnOnce(&mut serde_json::Value),
    processed: Duration,
) -> Cost {
    let submitted = submit_async(client, "rt", 1024).await;
    let mut kept = serde_json::to_value(submitted.pending()).unwrap();
    edit(&mut kept);
    let kept: sagemeter::client::PendingInference = serde_json::from_value(kept).unwrap();
    drop(submitted);
    client
        .meter()
        .settle_async(
            kept,
            sagemeter::client::AsyncCompletion::processed_for(processed).output_bytes(0),
        )
        .await
        .unwrap()
}

/// A pending invocation kept by an earlier version has no timeout stored: the
/// most AWS allows, 3,600 s, bounds it, and the note says it is AWS's longest, not
/// the request's. At $0.23/h, 2 h stated: 3,600 s = 1 h × $0.23 = $0.23.
#[tokio::test]
async fn an_invocation_kept_without_its_timeout_is_bounded_by_aws_longest_and_says_so() {
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5_at(&fake, "0.23").await;
    // As an earlier version wrote it: no `invocation_timeout_seconds`.
    let as_earlier = |kept: &mut serde_json::Value| {
        assert!(
            kept.as_object_mut()
                .unwrap()
                .remove("invocation_timeout_seconds")
                .is_some()
        );
    };
    let cost = settle_kept(&client, as_earlier, Duration::from_secs(7200)).await;
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(compute.quantity, dec("1"));
    assert_eq!(compute.cost_usd(), Some(dec("0.23")));
    assert!(
        cost.notes.iter().any(|n| n.starts_with(
            "billed AWS's longest invocation timeout (3600 s; the request's own was not \
             kept with it), the most the model can have worked on it"
        ) && n.contains("not the 7200 s stated")),
        "{:?}",
        cost.notes
    );
}

/// A pending invocation kept with a timeout AWS would not take (1 to 3,600 s;
/// written by hand, or damaged) is bounded by AWS's longest, 3,600 s, and the note
/// says the kept one is out of range, not that none was kept. At $0.23/h, 2 h
/// stated: 3,600 s = 1 h × $0.23 = $0.23.
#[tokio::test]
async fn an_invocation_kept_with_a_timeout_out_of_range_is_bounded_by_aws_longest_and_says_so() {
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5_at(&fake, "0.23").await;
    for kept_seconds in [0u64, 86_400] {
        let out_of_range = |kept: &mut serde_json::Value| {
            kept["invocation_timeout_seconds"] = kept_seconds.into();
        };
        let cost = settle_kept(&client, out_of_range, Duration::from_secs(7200)).await;
        let compute = line(&cost, LineItem::Compute);
        assert_eq!(compute.quantity, dec("1"), "{kept_seconds}");
        assert_eq!(compute.cost_usd(), Some(dec("0.23")), "{kept_seconds}");
        let said = format!(
            "billed AWS's longest invocation timeout (3600 s; the {kept_seconds} s kept with \
             the request is out of range, 1 to 3600 s), the most the model can have worked \
             on it"
        );
        assert!(
            cost.notes
                .iter()
                .any(|n| n.starts_with(&said) && n.contains("not the 7200 s stated")),
            "{:?}",
            cost.notes
        );
    }
}

/// A client metering the async endpoint `jobs` as a profile set by hand with
/// `variants`, its instances (ml.g6e.2xlarge, ml.g5.xlarge) at the us-east-1
/// on-demand async rates (`AsyncInf`): $2.8026/h and $1.408/h.
async fn jobs_async(fake: &FakeSageMaker, variants: Vec<VariantProfile>) -> Client {
    let async_inf = |instance_type: &str| PriceKey::AsyncInference {
        region: "us-east-1".into(),
        instance_type: instance_type.into(),
    };
    priced(fake)
        .await
        .without_discovery()
        .endpoint_profile(EndpointProfile::new("jobs", variants).asynchronous())
        .price_override(async_inf("ml.g6e.2xlarge"), dec("2.8026"))
        .price_override(async_inf("ml.g5.xlarge"), dec("1.408"))
        .build()
        .unwrap()
}

/// `jobs`'s invocation as a submission kept it, naming the variant it assumed.
fn kept_naming(variant: &str) -> sagemeter::client::PendingInference {
    serde_json::from_value(serde_json::json!({
        "endpoint": "jobs", "call_id": "req-1", "inference_id": null,
        "output_location": null, "failure_location": null,
        "submitted_at": "2026-01-05T10:00:00Z", "variant": variant, "region": "us-east-1",
    }))
    .unwrap()
}

/// `InvokeEndpointAsync` returns no `InvokedProductionVariant`: the variant a
/// kept invocation names is the one its submission assumed (the endpoint's only
/// one then, `AllTraffic`), not one SageMaker named. The endpoint since updated
/// to a config whose only variant is `blue` (one ml.g6e.2xlarge, $2.8026/h
/// AsyncInf), the job ran on `blue`, and AWS bills its 600 s there:
/// 600 / 3,600 h = 1/6 h × $2.8026 = $0.4671. Not an unpriced line saying
/// SageMaker named `AllTraffic`.
#[tokio::test]
async fn an_async_settlement_whose_assumed_variant_is_gone_is_priced_at_the_endpoints() {
    let fake = FakeSageMaker::start().await;
    let client = jobs_async(
        &fake,
        vec![VariantProfile::instance("blue", "ml.g6e.2xlarge", 1)],
    )
    .await;
    let cost = client
        .meter()
        .settle_async(
            kept_naming("AllTraffic"),
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600))
                .output_bytes(0),
        )
        .await
        .unwrap();
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(
        compute.cost_usd(),
        Some(dec("0.467100000000")),
        "{compute:?}"
    );
    assert_eq!(cost.variant.as_deref(), Some("blue"));
    assert_eq!(cost.usage.variant.as_deref(), Some("blue"));
    let said = serde_json::to_string(&cost).unwrap();
    assert!(!said.contains("SageMaker named"), "{said}");
    assert!(
        cost.notes.iter().any(|n| n
            == "the submission's variant `AllTraffic` is no longer the endpoint's; priced at \
                `blue`"),
        "{:?}",
        cost.notes
    );
}

/// Of several variants the submission assumed the heaviest, and the settlement
/// keeps to it, saying so, even where the weights have changed since: `blue`
/// (one ml.g6e.2xlarge, $2.8026/h) now at weight 0.2 beside `green` (one
/// ml.g5.xlarge, $1.408/h) at 0.8. 600 s on `blue`: 1/6 h × $2.8026 = $0.4671.
#[tokio::test]
async fn an_async_settlement_keeps_the_assumed_variant_and_says_it_was_assumed() {
    let fake = FakeSageMaker::start().await;
    let weighted = |name: &str, instance_type: &str, weight: f32| {
        let mut variant = VariantProfile::instance(name, instance_type, 1);
        variant.weight = Some(weight);
        variant
    };
    let client = jobs_async(
        &fake,
        vec![
            weighted("blue", "ml.g6e.2xlarge", 0.2),
            weighted("green", "ml.g5.xlarge", 0.8),
        ],
    )
    .await;
    let cost = client
        .meter()
        .settle_async(
            kept_naming("blue"),
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600))
                .output_bytes(0),
        )
        .await
        .unwrap();
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.4671"));
    assert_eq!(cost.variant.as_deref(), Some("blue"));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.starts_with("SageMaker did not name the variant: heaviest variant assumed")),
        "{:?}",
        cost.notes
    );
}

#[tokio::test]
async fn a_completion_before_its_submission_leaves_compute_unpriced_not_zero() {
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5(&fake).await.build().unwrap();
    let submitted = submit_async(&client, "rt", 1024).await;
    // The notification's clock is 5 s behind the submitting host's.
    let landed =
        std::time::SystemTime::from(submitted.pending().submitted_at()) - Duration::from_secs(5);
    let cost = submitted
        .settle(sagemeter::client::AsyncCompletion::completed_at(landed).output_bytes(2048))
        .await;
    let compute = line(&cost, LineItem::Compute);
    assert!(
        matches!(&compute.price, sagemeter::billing::LinePrice::Unpriced { reason }
            if reason.contains("before the submission")),
        "{compute:?}"
    );
    assert!(!cost.is_fully_priced());
    // Data out is still billed: 2,048 / 2³⁰ GB × 0.016 USD/GB = 3.0517578125e-8
    // → 0.000000030518.
    assert_eq!(line_cost(&cost, LineItem::DataOut), dec("0.000000030518"));
}

#[tokio::test]
async fn a_zero_rate_from_a_custom_price_source_is_unpriced_not_zero() {
    #[derive(Debug)]
    struct FreeHosting(FixedPrices);
    impl PriceSource for FreeHosting {
        fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
            Box::pin(async move {
                match key {
                    PriceKey::Hosting { .. } => Ok(Rate::new(
                        key.clone(),
                        Decimal::ZERO,
                        Provenance::new(PriceOrigin::Live),
                    )),
                    _ => self.0.rate(key),
                }
            })
        }
    }
    let fake = fake_with_demo_endpoints().await;
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(FreeHosting(FixedPrices::us_east_1()))
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    let compute = line(cost, LineItem::Compute);
    assert!(
        matches!(&compute.price, sagemeter::billing::LinePrice::Unpriced { reason }
            if reason.contains("0 USD per unit")),
        "{compute:?}"
    );
    assert!(!cost.is_fully_priced());
}

#[tokio::test]
async fn a_price_override_wins_and_is_marked_override() {
    let fake = fake_with_demo_endpoints().await;
    let client = priced(&fake)
        .await
        .price_override(PriceKey::hosting("us-east-1", "ml.nope.xlarge"), dec("1.5"))
        .build()
        .unwrap();
    let response = invoke(&client, "exotic").await.unwrap();
    let provenance = response.cost().compute_provenance().unwrap();
    assert_eq!(provenance.source, PriceOrigin::Override);
    assert_eq!(response.cost().price_source(), Some(PriceOrigin::Live));
}

/// The wall clock stepped back an hour: the profile, described "in the future",
/// is not kept for that hour; calls a minute on see autoscaling as they would
/// have without the step.
#[tokio::test]
async fn a_profile_is_refreshed_after_the_wall_clock_steps_back_not_kept_for_the_step() {
    let fake = fake_with_demo_endpoints().await;
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = crate::support::SettableClock::new(start);
    let client = priced(&fake)
        .await
        .discovery_refresh(Duration::from_secs(60))
        .time_source(SharedTimeSource::new(clock.clone()))
        .build()
        .unwrap();
    let instances = |cost: &Cost| match cost.billing {
        Some(VariantBilling::Instance { instance_count, .. }) => instance_count,
        ref other => panic!("{other:?}"),
    };
    let first = invoke(&client, "rt").await.unwrap();
    assert_eq!(instances(first.cost()), 2);
    // The clock steps back an hour; a minute later the endpoint has 5 instances.
    fake.set_instance_count("rt", "AllTraffic", 5);
    clock.set(start - Duration::from_secs(3600) + Duration::from_secs(61));
    let described = fake.describe_calls();
    invoke(&client, "rt").await.unwrap();
    for _ in 0..500 {
        if fake.describe_calls() > described && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let later = invoke(&client, "rt").await.unwrap();
    assert_eq!(
        instances(later.cost()),
        5,
        "the profile was kept for the step"
    );
}

/// After discovery failed, its retry runs in the background: calls once the
/// retry is due get the failure at once, not a wait for a control plane that may
/// still be failing (here one that does not answer within the 10 s limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_discovery_is_tried_again_in_the_background_not_on_the_calls() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = priced(&fake)
        .await
        .discovery_timeout(Duration::from_secs(10))
        .time_source(shared)
        .build()
        .unwrap();
    // Discovery is refused at once: the first call's compute is unpriced.
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let first = invoke(&client, "rt").await.unwrap();
    assert!(first.cost().compute_provenance().is_none());
    assert_eq!(fake.describe_calls(), 1);

    // 31 s on, the retry is due, and the control plane now takes 30 s to answer.
    *fake.state.describe_error.lock().unwrap() = None;
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    time.advance(Duration::from_secs(31));
    // Every request, counted as it arrives (DescribeEndpoint's count waits for
    // its answer).
    let requests = || fake.access_key_ids().len();
    let before = requests();
    let started = std::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let client = client.clone();
        calls.spawn(async move { invoke(&client, "rt").await.unwrap().cost().clone() });
    }
    while let Some(cost) = calls.join_next().await {
        let cost = cost.unwrap();
        assert!(
            cost.unpriced_reasons()
                .any(|r| r.contains("not authorized")),
            "{cost:#?}"
        );
    }
    // Each call came back without waiting for the retry's 10 s limit (the old
    // path held them all for it); the retry itself went out once.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for _ in 0..500 {
        if requests() >= before + 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(requests(), before + 6, "5 calls and one DescribeEndpoint");
}

/// A retry in the background dropped before it landed (with the runtime made for
/// the call that started it) does not leave an endpoint unpriced for good: the
/// next call discovers it on its way, as the first did.
#[test]
fn a_discovery_retry_dropped_with_its_runtime_is_made_on_the_next_calls_way() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let fake = server.block_on(fake_with_demo_endpoints());
    let (time, shared) = manual_clock();
    let client = Client::builder(&server.block_on(fake.sdk_config()))
        .price_source(FixedPrices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap();
    let priced = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            let response = invoke(&client, "rt").await.unwrap();
            response.cost().compute_provenance().is_some()
        })
    };
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    assert!(!priced(&server), "discovery was refused");
    // 31 s on the retry is due; the control plane now holds its answer, and the
    // call's own runtime, which the retry was spawned on, goes away after it.
    *fake.state.describe_error.lock().unwrap() = None;
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    time.advance(Duration::from_secs(31));
    let one_call = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!priced(&one_call), "the failure, at once");
    drop(one_call);
    // The control plane answers again: the next call discovers on its way.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::ZERO;
    assert!(
        priced(&server),
        "the dropped retry left the endpoint unpriced"
    );
}

/// A background refresh cut off mid-request (the runtime the call ran on went
/// away, as with a runtime made for one call) does not stop the profile from
/// being refreshed: the next stale call starts another, and autoscaling is seen.
#[test]
fn a_profile_refresh_cut_off_with_its_runtime_is_started_again() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let fake = server.block_on(fake_with_demo_endpoints());
    let (time, shared) = manual_clock();
    let client = Client::builder(&server.block_on(fake.sdk_config()))
        .price_source(FixedPrices::us_east_1())
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // The instance count a call to `rt` was billed with.
    let call = || async {
        let response = invoke(&client, "rt").await.unwrap();
        match response.cost().billing {
            Some(VariantBilling::Instance { instance_count, .. }) => instance_count,
            ref other => panic!("{other:?}"),
        }
    };
    // The first call on the long-lived runtime: the SDK's connections live there.
    assert_eq!(server.block_on(call()), 2);

    // Scaled to 4; the stale call's refresh is cut off while SageMaker is slow.
    fake.set_instance_count("rt", "AllTraffic", 4);
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    time.advance(Duration::from_secs(61));
    let requests = || fake.access_key_ids().len();
    let one_call = runtime();
    let before = requests();
    one_call.block_on(async {
        assert_eq!(call().await, 2, "billed on the stale profile");
        // The call, then the refresh's DescribeEndpoint, which the fake holds.
        for _ in 0..500 {
            if requests() >= before + 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no refresh was started");
    });
    drop(one_call);

    // The next stale call starts another, which sees the 4 instances.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::ZERO;
    let seen = runtime().block_on(async {
        for _ in 0..500 {
            let instances = call().await;
            if instances == 4 {
                return instances;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        2
    });
    assert_eq!(seen, 4, "the profile was never refreshed again");
}

#[tokio::test]
async fn amortized_allocation_charges_all_instances_for_the_gap_between_calls() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = priced(&fake)
        .await
        .allocation(Allocation::Amortized)
        .time_source(shared)
        .build()
        .unwrap();
    let call = || invoke(&client, "rt");
    call().await.unwrap();
    time.advance(Duration::from_secs(30));
    let second = call().await.unwrap();
    // 2 instances × 30 s = 1/60 h × 0.23 USD/h = 0.0038333…
    assert_eq!(
        line_cost(second.cost(), LineItem::Compute),
        dec("0.003833333333")
    );
}

#[tokio::test]
async fn accrual_counts_idle_instances_and_follows_autoscaling_after_refresh() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    // Busy time: the calls take no time on the manual clock, only on the real one.
    let client = priced(&fake)
        .await
        .allocation(Allocation::BusyTime)
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    let call = || invoke(&client, "rt");
    call().await.unwrap();
    time.advance(Duration::from_secs(10));
    let second = call().await.unwrap();
    // 2 instances × 0.23 USD/h × 10 s = 0.46 × 10 / 3600 = 0.0012777…
    let accrual = second.cost().accrual.clone().unwrap();
    assert_eq!(accrual.accrued_usd, dec("0.001277777778"));
    let utilisation = accrual.utilisation.unwrap();
    assert!(utilisation > Decimal::ZERO && utilisation < Decimal::ONE);

    // Autoscaling to 4: seen after the profile is refreshed (in the background).
    fake.set_instance_count("rt", "AllTraffic", 4);
    time.advance(Duration::from_secs(61));
    call().await.unwrap(); // stale profile used; refresh spawned
    let four_instances = |billing: &VariantBilling| {
        matches!(
            billing,
            VariantBilling::Instance {
                instance_count: 4,
                ..
            }
        )
    };
    let mut refreshed = false;
    for _ in 0..200 {
        let profile = client.meter().endpoint_profile("rt").await.unwrap();
        refreshed = four_instances(&profile.variants[0].billing);
        if refreshed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refreshed, "the instance count never refreshed to 4");
    // The very next call is billed with it: the rates put together for the old
    // profile are not reused for the new one, however recent they are.
    let next = call().await.unwrap();
    assert!(four_instances(next.cost().billing.as_ref().unwrap()));
}

#[tokio::test]
async fn a_call_that_began_before_a_scale_out_accrues_the_new_instances_from_when_they_were_seen() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = priced(&fake)
        .await
        .allocation(Allocation::BusyTime)
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap(); // t = 0: 2 instances, the accrual begins
    fake.set_instance_count("rt", "AllTraffic", 4);
    time.advance(Duration::from_secs(61));
    // t = 61: a long call (3 s on the real clock, while the test moves the
    // meter's) with the profile it has, of 2 instances; it starts the profile's
    // refresh.
    *fake.state.latency.lock().unwrap() = Duration::from_secs(3);
    let long = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(2).await;
    let mut refreshed = false;
    for _ in 0..200 {
        let profile = client.meter().endpoint_profile("rt").await.unwrap();
        if matches!(
            profile.variants[0].billing,
            VariantBilling::Instance {
                instance_count: 4,
                ..
            }
        ) {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refreshed, "the instance count never refreshed to 4");
    // The refresh found 4 instances at t = 61 and applied them then (not at the
    // next call): wait until that is done.
    for _ in 0..200 {
        if client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // t = 111: the next call.
    time.advance(Duration::from_secs(50));
    let next = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(3).await;
    // t = 161: both calls end (in either order; the accrual is the same).
    time.advance(Duration::from_secs(50));
    let long = long.await.unwrap().unwrap();
    next.await.unwrap().unwrap();
    // 2 instances × 0.23 USD/h for 61 s (until the refresh saw 4), then
    // 4 × 0.23 for 100 s: (0.46 × 61 + 0.92 × 100) / 3600 = 120.06 / 3600 =
    // 0.03335 (not 0.46 × 161 / 3600 = 0.020572…, all at the long call's 2
    // instances).
    let accrual = long.cost().accrual.clone().unwrap();
    assert_eq!(accrual.accrued_usd, dec("0.03335"));
}

#[tokio::test]
async fn discovery_makes_one_describe_call_for_many_concurrent_first_calls() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let calls = (0..50).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { invoke(&client, "rt").await.unwrap() })
    });
    for c in calls.collect::<Vec<_>>() {
        c.await.unwrap();
    }
    assert_eq!(fake.describe_calls(), 1);
}

#[tokio::test]
async fn per_inference_and_per_token_charges_ride_on_top_of_compute() {
    let fake = fake_with_demo_endpoints().await;
    let client = priced(&fake)
        .await
        .usage_charges(
            "rt",
            UsageCharges::default()
                .per_1000_calls(dec("0.70"))
                .per_1000_tokens(dec("0.0005"), dec("0.0015")),
        )
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    // 0.70/1000 = 0.0007; 12 × 0.0005/1000 = 0.000006; 30 × 0.0015/1000 = 0.000045
    assert_eq!(line_cost(cost, LineItem::Inference), dec("0.0007"));
    assert_eq!(line_cost(cost, LineItem::InputTokens), dec("0.000006"));
    assert_eq!(line_cost(cost, LineItem::OutputTokens), dec("0.000045"));
    let sum: Decimal = cost.lines.iter().filter_map(|l| l.cost_usd()).sum();
    assert_eq!(cost.cost_usd, sum);
}

/// AWS Marketplace charges one inference for each successful (HTTP 2XX) answer,
/// by default, not for a model error (HTTP 424), though the model ran (its
/// compute and data are billed). $0.70 per 1,000 calls: a call answered costs
/// 0.70 / 1,000 = $0.0007 of fees, a model error $0, at 0 calls.
#[tokio::test]
async fn a_model_error_is_charged_no_per_inference_fee() {
    let fake = fake_with_demo_endpoints().await;
    let client = priced(&fake)
        .await
        .usage_charges("rt", UsageCharges::default().per_1000_calls(dec("0.70")))
        .build()
        .unwrap();
    let answered = invoke(&client, "rt").await.unwrap();
    assert_eq!(
        line_cost(answered.cost(), LineItem::Inference),
        dec("0.0007")
    );
    fake.fail_invocations(424, "ModelError", "boom");
    let (_, cost) = invoke_failure(invoke(&client, "rt").await.unwrap_err());
    let cost = cost.expect("the model ran: the failure has its receipt");
    assert_eq!(cost.usage.outcome, sagemeter::usage::Outcome::Error);
    let fee = line(&cost, LineItem::Inference);
    assert_eq!(fee.quantity, Decimal::ZERO);
    assert_eq!(fee.cost_usd(), Some(Decimal::ZERO));
    // The model ran: its instance time is billed.
    assert!(line_cost(&cost, LineItem::Compute) > Decimal::ZERO);
    // $0.0007 + $0: the two calls' fees together.
    let fees: Decimal = [answered.cost(), &cost]
        .iter()
        .map(|c| line_cost(c, LineItem::Inference))
        .sum();
    assert_eq!(fees, dec("0.0007"));
}

#[tokio::test]
async fn builder_rejects_invalid_options_at_build_time() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let no_region = aws_types::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let cases: Vec<(sagemeter::ClientBuilder, &str)> = vec![
        (Client::builder(&no_region), "no region"),
        (
            Client::builder(&config).price_override(PriceKey::hosting("us-east-1", "x"), dec("-1")),
            "negative",
        ),
        (
            Client::builder(&config).endpoint_profile(EndpointProfile::new("", vec![])),
            "empty name",
        ),
        (
            Client::builder(&config)
                .usage_charges("rt", UsageCharges::default().per_1000_calls(dec("-0.1"))),
            "negative",
        ),
        (
            Client::builder(&config).discovery_refresh(Duration::ZERO),
            "longer than zero",
        ),
        (
            Client::builder(&config).discovery_timeout(Duration::ZERO),
            "discovery_timeout must be longer than zero",
        ),
        (
            // 2,300,000 USD per instance-hour: a misplaced decimal point.
            Client::builder(&config).price_override(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                dec("2300000"),
            ),
            "check the unit",
        ),
        (
            Client::builder(&config).usage_charges(
                "rt",
                UsageCharges::default().per_1000_tokens(dec("1"), dec("5000000")),
            ),
            "check the unit",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{err} should mention {expected}"
        );
    }
}

#[tokio::test]
async fn an_empty_endpoint_name_is_rejected_before_anything_is_sent() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let err = client
        .invoke_endpoint()
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert_eq!(fake.invocations(), 0);
}

/// A call sent without a body sends 0 bytes: its data in is priced at 0 GB,
/// not left unpriced as an async input in S3 of a size not given is.
#[tokio::test]
async fn a_call_without_a_body_has_priced_data_in_of_zero_bytes() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let response = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .send()
        .await
        .unwrap();
    let cost = response.cost();
    assert!(cost.is_fully_priced(), "{cost}");
    let data_in = line(cost, LineItem::DataIn);
    assert_eq!(data_in.quantity, Decimal::ZERO);
    assert_eq!(data_in.cost_usd(), Some(Decimal::ZERO));
}

/// A count of tokens no model reads or writes in a call (a container's u64::MAX)
/// is left out with a note, not carried into per-token charges and ledger sums.
#[tokio::test]
async fn a_token_count_beyond_any_model_is_not_counted_and_says_so() {
    let fake = fake_with_demo_endpoints().await;
    fake.set_response_body(
        br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1000000000}}"#,
    );
    let client = rt_per_1000_tokens(&fake, dec("0.0005"), dec("0.0015")).await;
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    assert_eq!(cost.usage.input_tokens, None);
    // 10^9 is the most counted: still counted, 10^9 × 0.0015 / 1000 = 1500.
    assert_eq!(cost.usage.output_tokens, Some(1_000_000_000));
    assert_eq!(line_cost(cost, LineItem::OutputTokens), dec("1500"));
    // The input tokens' line is unpriced saying why, not asking for a counter.
    let reason = unpriced_reason(cost, LineItem::InputTokens);
    assert!(
        reason.contains("18446744073709551615 input tokens") && !reason.contains("TokenCounter"),
        "{reason}"
    );
    assert!(
        cost.notes.iter().any(|n| n.contains(
            "the response reported 18446744073709551615 input tokens, more than any model"
        )),
        "{:?}",
        cost.notes
    );
}

/// A count left out for being beyond any model says so on its own line only: the
/// other direction's line keeps its own reason. A TGI answer reports no input
/// count and, here, 5,000,000,000 output tokens (above the 10^9 counted): the
/// input line asks for a counter, the output line names the count left out.
#[tokio::test]
async fn a_token_count_left_out_leaves_the_other_lines_reason_alone() {
    let fake = fake_with_demo_endpoints().await;
    fake.set_response_body(
        br#"[{"generated_text":"x","details":{"generated_tokens":5000000000}}]"#,
    );
    let client = rt_per_1000_tokens(&fake, dec("1"), dec("1")).await;
    let response = invoke(&client, "rt").await.unwrap();
    let cost = response.cost();
    assert_eq!(cost.usage.input_tokens, None);
    assert_eq!(cost.usage.output_tokens, None);
    let reason = |item| unpriced_reason(cost, item);
    let input = reason(LineItem::InputTokens);
    assert!(
        input.contains("did not report its input tokens") && !input.contains("5000000000"),
        "{input}"
    );
    let output = reason(LineItem::OutputTokens);
    assert!(
        output.contains("5000000000 output tokens") && !output.contains("TokenCounter"),
        "{output}"
    );
}

#[tokio::test]
async fn every_call_logs_one_info_cost_line_without_the_payload() {
    let logs = logs::capture();

    let fake = fake_with_demo_endpoints().await;
    let marker = "PAYLOAD-MARKER-7f3a";
    fake.set_response_body(
        format!(r#"{{"text":"{marker}","usage":{{"prompt_tokens":3,"completion_tokens":4}}}}"#)
            .as_bytes(),
    );
    let client = client_for(&fake).await;
    let mut receipts = Vec::new();
    for _ in 0..3 {
        let r = client
            .invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new(format!(r#"{{"inputs":"{marker}"}}"#)))
            .custom_attributes(marker)
            .tag("tenant", "acme")
            .tag("team", "search")
            .send()
            .await
            .unwrap();
        receipts.push(r.into_parts().1);
    }

    let lines = logs.lines();
    let cost_lines: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["target"] == "sagemeter"
                && l["level"] == "INFO"
                && l["fields"]["message"] == "sagemaker call cost"
        })
        .collect();
    assert_eq!(cost_lines.len(), 3, "{lines:#?}");
    for (line, receipt) in cost_lines.iter().zip(&receipts) {
        let f = &line["fields"];
        assert_eq!(
            f["call_id"],
            receipt.call_id.as_str(),
            "to find it in a ledger"
        );
        assert_eq!(f["endpoint"], "rt");
        assert_eq!(f["region"], "us-east-1");
        assert_eq!(f["variant"], "AllTraffic");
        assert_eq!(f["price_source"], "live");
        assert!(
            f.get("running_fleet_usd").is_none(),
            "no fleet, no fleet figure"
        );
        assert_eq!(f["input_tokens"], 3);
        assert_eq!(f["output_tokens"], 4);
        assert_eq!(f["gen_ai.usage.input_tokens"], 3);
        assert_eq!(f["cost_usd"], receipt.cost_usd.to_string());
        assert_eq!(f["running_usd"], receipt.running_client_usd.to_string());
        assert_eq!(f["bytes_in"], receipt.usage.bytes_in);
        assert_eq!(f["tags"], "team=search,tenant=acme");
        assert!(f["latency_ms"].as_f64().unwrap() > 0.0);
        // Logged inside its call's span: a recorded span is entered for the finish.
        assert_eq!(line["span"]["name"], "sagemaker.invoke", "{line}");
        assert_eq!(line["span"]["endpoint"], "rt");
        assert_eq!(line["span"]["operation"], "InvokeEndpoint");
        // The span gets the receipt's figures only after the line is logged: text
        // formatters, which append the span's fields to the event's, print each
        // figure once.
        for figure in [
            "cost_usd",
            "outcome",
            "input_tokens",
            "gen_ai.usage.cost.amount",
        ] {
            assert!(line["span"].get(figure).is_none(), "{figure} twice: {line}");
        }
    }
    // Every level and thread, not only this test's INFO lines.
    let everything = crate::support::logs::everything();
    assert!(!everything.is_empty());
    assert!(!everything.contains(marker), "the payload leaked into logs");
}

#[tokio::test]
async fn an_endpoint_deleted_between_calls_becomes_an_unknown_endpoint_after_refresh() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = priced(&fake)
        .await
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    let call = || invoke(&client, "rt");
    call().await.unwrap();
    fake.remove_endpoint("rt");
    time.advance(Duration::from_secs(61));
    // The stale profile is used once while the refresh learns the endpoint is gone.
    let _ = call().await;
    for _ in 0..200 {
        if client.meter().endpoint_profile("rt").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = call().await.unwrap_err();
    assert!(matches!(err, Error::UnknownEndpoint { .. }), "{err:?}");
}

#[tokio::test]
async fn a_body_over_the_payload_limit_is_rejected_before_anything_is_sent() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let too_big = vec![b' '; sagemeter::client::MAX_REQUEST_BYTES + 1];
    let err = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new(too_big))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(err.to_string().contains("25000000"), "{err}");
    assert_eq!(fake.invocations(), 0);
}

#[tokio::test]
async fn an_async_inline_body_over_128_000_bytes_is_rejected_before_anything_is_sent() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let submit = |bytes: usize| {
        client
            .invoke_endpoint_async()
            .endpoint_name("rt")
            .body(Blob::new(vec![b' '; bytes]))
            .send()
    };
    // At the limit it goes (the fake queues it); one byte more does not.
    submit(sagemeter::client::MAX_ASYNC_INLINE_BYTES)
        .await
        .expect("128,000 bytes inline are accepted");
    let err = submit(128_001).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("at most 128000 bytes inline for InvokeEndpointAsync")
            && message.contains("input_location"),
        "{message}"
    );
}

/// Prices like `FixedPrices`, slowly: background pricing is still running when asked.
#[derive(Debug)]
struct SlowPrices(FixedPrices);

impl PriceSource for SlowPrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.0.price(key).await
        })
    }
}

#[tokio::test]
async fn shutdown_waits_for_background_pricing_and_then_spawns_nothing_more() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let meter = sagemeter::Meter::builder(&config)
        .price_source(SlowPrices(FixedPrices::us_east_1()))
        .build_meter()
        .unwrap();
    let sdk = intercepted(&config, &meter);
    for _ in 0..3 {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
            .await
            .unwrap();
    }
    assert!(
        meter.background_tasks() > 0,
        "pricing runs in the background"
    );
    meter.shutdown().await.unwrap();
    assert_eq!(meter.background_tasks(), 0);
    assert_eq!(meter.totals().calls, 3, "nothing metered was lost");
    // After shutdown, the interceptor no longer spawns work: the call is priced
    // at once on the rates at hand, and counted.
    sdk.invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(meter.background_tasks(), 0);
    assert_eq!(
        meter.totals().calls,
        4,
        "the call after shutdown is counted"
    );
}

/// Hosting at a price the test can change; answers at once, as a warm cache does.
#[derive(Debug)]
struct AdjustablePrices {
    hosting: std::sync::Mutex<Decimal>,
    rest: FixedPrices,
}

impl AdjustablePrices {
    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        match key {
            PriceKey::Hosting { .. } => Ok(Rate::new(
                key.clone(),
                *self.hosting.lock().unwrap(),
                Provenance::new(PriceOrigin::Live),
            )),
            _ => self.rest.0.get(key).map_or_else(
                || Err(PriceError::NotFound { key: key.clone() }),
                |usd| {
                    Ok(Rate::new(
                        key.clone(),
                        *usd,
                        Provenance::new(PriceOrigin::Live),
                    ))
                },
            ),
        }
    }
}

impl PriceSource for AdjustablePrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { self.rate(key) })
    }
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.rate(key))
    }
}

fn compute_rate(cost: &Cost) -> Decimal {
    match &line(cost, LineItem::Compute).price {
        sagemeter::billing::LinePrice::Priced { usd_per_unit, .. } => *usd_per_unit,
        other => panic!("compute is not priced: {other:?}"),
    }
}

#[tokio::test]
async fn a_new_price_in_the_source_reaches_calls_within_a_second() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let prices = Arc::new(AdjustablePrices {
        hosting: std::sync::Mutex::new(dec("0.23")),
        rest: FixedPrices::us_east_1(),
    });
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(prices.clone())
        .time_source(shared)
        .build()
        .unwrap();
    // The first call discovers the endpoint; the second finds everything at hand.
    for _ in 0..2 {
        assert_eq!(
            compute_rate(invoke(&client, "rt").await.unwrap().cost()),
            dec("0.23")
        );
    }
    *prices.hosting.lock().unwrap() = dec("0.46");
    // Within the reuse window the rates put together for the endpoint still hold…
    time.advance(Duration::from_millis(999));
    assert_eq!(
        compute_rate(invoke(&client, "rt").await.unwrap().cost()),
        dec("0.23")
    );
    // …and once it is over, the source is asked again.
    time.advance(Duration::from_millis(1));
    assert_eq!(
        compute_rate(invoke(&client, "rt").await.unwrap().cost()),
        dec("0.46")
    );
}

/// The rates put together for an endpoint are reused for a second from when
/// they were, not for as long as the wall clock then stepped back.
#[tokio::test]
async fn a_new_price_reaches_calls_after_the_wall_clock_steps_back() {
    let fake = fake_with_demo_endpoints().await;
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = crate::support::SettableClock::new(start);
    let prices = Arc::new(AdjustablePrices {
        hosting: std::sync::Mutex::new(dec("0.23")),
        rest: FixedPrices::us_east_1(),
    });
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(prices.clone())
        .time_source(SharedTimeSource::new(clock.clone()))
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            compute_rate(invoke(&client, "rt").await.unwrap().cost()),
            dec("0.23")
        );
    }
    *prices.hosting.lock().unwrap() = dec("0.46");
    clock.set(start - Duration::from_secs(3600));
    assert_eq!(
        compute_rate(invoke(&client, "rt").await.unwrap().cost()),
        dec("0.46")
    );
}

/// A client on a manual clock for endpoint `rt` declared with `instances`
/// ml.m5.xlarge instances (no discovery: the profile is at hand from the first call).
async fn shared_instances_client(
    fake: &FakeSageMaker,
    instances: u32,
) -> (Client, ManualTimeSource, Receipts) {
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance(
                "AllTraffic",
                "ml.m5.xlarge",
                instances,
            )],
        ))
        .price_source(FixedPrices::us_east_1())
        .time_source(shared)
        .sink(receipts.clone())
        .build()
        .unwrap();
    (client, time, receipts)
}

#[tokio::test]
async fn a_call_after_the_wall_clock_steps_back_is_billed_its_whole_time() {
    let fake = fake_with_demo_endpoints().await;
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = crate::support::SettableClock::new(t0);
    let set = |at: std::time::SystemTime| clock.set(at);
    let client = rt_on_one_m5(&fake)
        .await
        .time_source(SharedTimeSource::new(clock.clone()))
        .build()
        .unwrap();
    let held_call = |start: std::time::SystemTime| {
        set(start);
        fake.hold();
        let call = tokio::spawn(invoke(&client, "rt"));
        (call, start)
    };
    // Two calls alone on the one instance, 36 s each: 0.01 h × 0.23 USD/h =
    // 0.0023 USD. Between them the wall clock steps back 10 s.
    let mut accrued = Vec::new();
    for (i, start) in [t0, t0 + Duration::from_secs(26)].into_iter().enumerate() {
        let (call, start) = held_call(start);
        fake.wait_for_invocations(i as u64 + 1).await;
        set(start + Duration::from_secs(36));
        fake.release();
        let cost = call.await.unwrap().unwrap().into_parts().1;
        assert_eq!(
            line_cost(&cost, LineItem::Compute),
            dec("0.0023"),
            "call {i}"
        );
        accrued.push(cost.accrual.unwrap());
    }
    // The instance accrued 36 s for each call (0.0023 USD each): allocated
    // equals accrued, utilisation 1, nothing lost to the step.
    let last = accrued.pop().unwrap();
    assert_eq!(last.accrued_usd, dec("0.0046"));
    assert_eq!(last.allocated_usd, dec("0.0046"));
    assert_eq!(last.utilisation, Some(Decimal::ONE));
}

/// Credentials that a test hands over when it says so (a credentials provider
/// slow to answer: an SSO or IMDS fetch, a role assumed).
#[derive(Debug, Clone)]
struct GatedCredentials {
    asked: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<tokio::sync::Semaphore>,
}

impl GatedCredentials {
    fn new() -> Self {
        GatedCredentials {
            asked: Arc::default(),
            open: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl aws_credential_types::provider::ProvideCredentials for GatedCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            self.asked.store(true, std::sync::atomic::Ordering::SeqCst);
            let _permit = self.open.acquire().await;
            Ok(aws_credential_types::Credentials::new(
                "test", "test", None, None, "gated",
            ))
        })
    }
}

/// A call waiting for its credentials is not in flight on its endpoint's
/// sharing clock: it joins it when its request goes out. Call B's model runs
/// 0–1 s alone on the one instance while call A waits 1.5 s for its credentials;
/// A's request then takes 2 ms.
#[tokio::test]
async fn a_call_waiting_for_its_credentials_does_not_share_the_instance_with_running_calls() {
    waiting_for_credentials(WayIn::Client).await;
}

/// The same, A sent through a plain SDK client with the `MeteringInterceptor`.
#[tokio::test]
async fn an_intercepted_call_waiting_for_its_credentials_does_not_share_the_instance() {
    waiting_for_credentials(WayIn::Interceptor).await;
}

/// The same, A sent with `send_metered`, whose call begins inside its request.
#[tokio::test]
async fn a_send_metered_call_waiting_for_its_credentials_does_not_share_the_instance() {
    waiting_for_credentials(WayIn::SendMetered).await;
}

/// How call A of [`waiting_for_credentials`] is metered.
#[derive(Debug, Clone, Copy)]
enum WayIn {
    Client,
    Interceptor,
    SendMetered,
}

/// A call of `rt` with an empty JSON body made on a task, through an SDK
/// client of `config` metered by `meter` the way `way_in` says; it must
/// succeed.
fn spawn_call(
    way_in: WayIn,
    config: aws_sdk_sagemakerruntime::config::Builder,
    meter: &sagemeter::Meter,
) -> tokio::task::JoinHandle<()> {
    match way_in {
        WayIn::Interceptor => {
            let sdk = aws_sdk_sagemakerruntime::Client::from_conf(
                config
                    .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
                    .build(),
            );
            tokio::spawn(async move {
                sdk.invoke_endpoint()
                    .endpoint_name("rt")
                    .body(Blob::new("{}"))
                    .send()
                    .await
                    .map(|_| ())
                    .unwrap();
            })
        }
        WayIn::SendMetered => {
            let sdk = aws_sdk_sagemakerruntime::Client::from_conf(config.build());
            let meter = meter.clone();
            tokio::spawn(async move {
                sdk.invoke_endpoint()
                    .endpoint_name("rt")
                    .body(Blob::new("{}"))
                    .send_metered(&meter)
                    .await
                    .map(|_| ())
                    .unwrap();
            })
        }
        WayIn::Client => {
            let client = Client::from_parts(
                aws_sdk_sagemakerruntime::Client::from_conf(config.build()),
                meter.clone(),
            );
            let call = invoke(&client, "rt");
            tokio::spawn(async move {
                call.await.unwrap();
            })
        }
    }
}

/// The two receipts `receipts` gets, once `meter` has nothing left in the
/// background (waiting up to about 2 s).
async fn two_receipts(receipts: &Receipts, meter: &sagemeter::Meter) -> Vec<Cost> {
    for _ in 0..1000 {
        if receipts.all().len() >= 2 && meter.background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    receipts.all()
}

async fn waiting_for_credentials(way_in: WayIn) {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let b_client = rt_on_one_m5(&fake)
        .await
        .time_source(shared)
        .sink(receipts.clone())
        .build()
        .unwrap();
    let meter = b_client.meter().clone();
    let gated = GatedCredentials::new();
    let a_config = fake
        .sdk_config()
        .await
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(gated.clone()),
        )
        .build();
    let a_call = spawn_call(
        way_in,
        aws_sdk_sagemakerruntime::config::Builder::from(&a_config),
        &meter,
    );
    // (A's task runs once the test first waits, at t = 0 as well.)
    // t = 0: B's request is at the model (held); A begins and waits for its
    // credentials.
    fake.hold();
    let b = tokio::spawn(invoke(&b_client, "rt"));
    fake.wait_for_invocations(1).await;
    for _ in 0..1000 {
        if gated.asked.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(gated.asked.load(std::sync::atomic::Ordering::SeqCst));
    // t = 1 s: B's model answers.
    time.advance(Duration::from_secs(1));
    fake.release();
    b.await.unwrap().unwrap();
    // t = 1.5 s: A's credentials arrive, its request goes out and is answered
    // at 1.502 s.
    time.advance(Duration::from_millis(500));
    fake.hold();
    gated.open.add_permits(1);
    fake.wait_for_invocations(2).await;
    time.advance(Duration::from_millis(2));
    fake.release();
    a_call.await.unwrap();
    let all = two_receipts(&receipts, &meter).await;
    assert_eq!(all.len(), 2);
    // B's receipt first: it ended first.
    let (b, a) = (&all[0], &all[1]);
    // B had the instance to itself for its 1 s: 1/3600 h × 0.23 USD/h =
    // 0.0000638888…, rounded down to 10⁻¹² USD; not half of it (0.0000319444…),
    // as if A's wait for its credentials were shared with it.
    assert_eq!(line_cost(b, LineItem::Compute), dec("0.000063888888"));
    // A had it to itself for its 2 ms: 0.002/3600 h × 0.23 USD/h =
    // 0.000000127777…, rounded down; not 1.002 s (0.5 s shared with B, the rest
    // of its wait alone, then its request).
    assert_eq!(line_cost(a, LineItem::Compute), dec("0.000000127777"));
}

/// A call backing off between its attempts is not in flight on its endpoint's
/// sharing clock: it is on it only while an attempt is out. Call A's model runs
/// 0–1 s alone on the one instance while call B, throttled at once, backs off;
/// B's second attempt then takes 2 ms.
#[tokio::test]
async fn a_call_backing_off_between_attempts_does_not_share_the_instance_with_running_calls() {
    backing_off(WayIn::Client).await;
}

/// The same, B sent through a plain SDK client with the `MeteringInterceptor`.
#[tokio::test]
async fn an_intercepted_call_backing_off_does_not_share_the_instance() {
    backing_off(WayIn::Interceptor).await;
}

/// The same, B sent with `send_metered`.
#[tokio::test]
async fn a_send_metered_call_backing_off_does_not_share_the_instance() {
    backing_off(WayIn::SendMetered).await;
}

async fn backing_off(way_in: WayIn) {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let a_client = rt_on_one_m5(&fake)
        .await
        .time_source(shared)
        .sink(receipts.clone())
        .build()
        .unwrap();
    let meter = a_client.meter().clone();
    // B's SDK client retries a throttled attempt once, after 1 s (real time,
    // without jitter): long enough for the test to move the meter's clock;
    // `ended` counts its attempts seen to end.
    let ended = AttemptsEnded::default();
    let b_config = ended.retrying_once_after_a_second(&fake.sdk_config().await);
    // t = 0: A's request is at the model (held).
    fake.hold();
    let a = tokio::spawn(invoke(&a_client, "rt"));
    fake.wait_for_invocations(1).await;
    // B's first attempt goes out at t = 0 too, and is throttled at once.
    fake.throttle_next(1);
    let b_call = spawn_call(way_in, b_config, &meter);
    // B's throttled attempt is seen to end: it steps off the sharing clock.
    ended.wait_for(1).await;
    // t = 1 s: A's model answers, while B still backs off.
    time.advance(Duration::from_secs(1));
    fake.release();
    a.await.unwrap().unwrap();
    // B's second attempt goes out at t = 1 s, after its back-off, and is
    // answered at 1.002 s.
    fake.hold();
    fake.wait_for_invocations(3).await;
    time.advance(Duration::from_millis(2));
    fake.release();
    b_call.await.unwrap();
    let all = two_receipts(&receipts, &meter).await;
    assert_eq!(all.len(), 2);
    // A's receipt first: it ended first.
    let (a, b) = (&all[0], &all[1]);
    // A had the instance to itself for its 1 s (B's throttled attempt took no
    // time on the meter's clock, and B was off it while backing off):
    // 1/3600 h × 0.23 USD/h = 0.0000638888…, rounded down to 10⁻¹² USD; not
    // half of it (0.0000319444…), as if B's back-off were shared with it.
    assert_eq!(line_cost(a, LineItem::Compute), dec("0.000063888888"));
    // B had it to itself for its second attempt's 2 ms: 0.002/3600 h ×
    // 0.23 USD/h = 0.000000127777…, rounded down.
    assert_eq!(b.usage.attempts, 2);
    assert_eq!(line_cost(b, LineItem::Compute), dec("0.000000127777"));
    // Together 0.000064016665 USD: the instance's 1.002 s (1.002/3600 × 0.23 =
    // 0.0000640166…), but for the rounding down of each receipt.
    assert_eq!(
        line_cost(a, LineItem::Compute) + line_cost(b, LineItem::Compute),
        dec("0.000064016665")
    );
}

/// A SageMaker on a local port, its address returned: the first answer, a 200
/// stating a 100-byte body, is cut off after 5 bytes; every later one is whole
/// (`{}`, 2 bytes).
async fn cut_off_once_then_whole() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for n in 0.. {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                // The whole request (its body, `{}`, is its end), so that the
                // answer is not a reset of unread bytes.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.ends_with(b"{}") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer: &[u8] = match n {
                    0 => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":",
                    _ => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                };
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A success whose body is cut off is retried by the SDK (a transient response
/// error): the model ran for that attempt, and the call is off the sharing
/// clock while it backs off, as after any failed attempt. Call A's model runs
/// 0–1 s alone on one ml.m5.xlarge; call B's first attempt is answered 200 with
/// a body cut short at 0, B backs off until 1 s, its second attempt is answered
/// at once. With a Marketplace fee of $0.50 per 1,000 inferences, each of B's
/// two 200s is an inference charged.
#[tokio::test]
async fn a_success_cut_off_and_retried_is_off_the_clock_while_backing_off() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let a_client = rt_on_one_m5(&fake)
        .await
        .time_source(shared)
        .sink(receipts.clone())
        .usage_charges("rt", UsageCharges::default().per_1000_calls(dec("0.50")))
        .build()
        .unwrap();
    // B's SageMaker: the first answer's body is cut off, the next is whole.
    let addr = cut_off_once_then_whole().await;
    let ended = AttemptsEnded::default();
    let b_client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::from_conf(
            ended
                .retrying_once_after_a_second(&fake.sdk_config().await)
                .endpoint_url(format!("http://{addr}"))
                .build(),
        ),
        a_client.meter().clone(),
    );
    // t = 0: A's request is at the model (held); B's first answer is cut off.
    fake.hold();
    let a = tokio::spawn(invoke(&a_client, "rt"));
    fake.wait_for_invocations(1).await;
    let b = tokio::spawn(invoke(&b_client, "rt"));
    ended.wait_for(1).await;
    // t = 1 s: A's model answers while B still backs off; B's second attempt
    // then goes out and is answered at once.
    time.advance(Duration::from_secs(1));
    fake.release();
    let a = a.await.unwrap().unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(b.cost().usage.attempts, 2);
    // Both answers reached the model: the first was a success cut off.
    assert!(
        b.cost()
            .notes
            .iter()
            .any(|n| n == "2 attempts: 2 reached the model and are billed, 0 were not"),
        "{:?}",
        b.cost().notes
    );
    // A had the instance to itself for its 1 s: 1/3600 h × 0.23 USD/h =
    // 0.0000638888…, rounded down to 10⁻¹² USD; not half of it, as if B's
    // back-off shared the instance with it.
    assert_eq!(
        line_cost(a.cost(), LineItem::Compute),
        dec("0.000063888888")
    );
    // B's two attempts took no time on the meter's clock.
    assert_eq!(line(b.cost(), LineItem::Compute).quantity, Decimal::ZERO);
    // AWS Marketplace charges an inference for each 2XX answer: A's one is
    // $0.50 / 1,000 = $0.0005; B's two, the cut-off 200 and its retry's,
    // 2 × $0.50 / 1,000 = $0.001.
    let fee = |cost: &sagemeter::Cost| {
        let line = line(cost, LineItem::Inference);
        (line.quantity, line.cost_usd())
    };
    assert_eq!(fee(a.cost()), (Decimal::ONE, Some(dec("0.0005"))));
    assert_eq!(fee(b.cost()), (Decimal::from(2), Some(dec("0.001"))));
}

/// A success whose body is cut off and which the SDK tries again was sent by
/// SageMaker all the same: its response is data out, as the retry's is. The
/// first answer states 100 bytes (and is cut off), the second sends 2: data
/// out is 102 B, 102 / 2³⁰ GB × 0.016 USD/GB = 1.632 / 1,073,741,824 =
/// 0.0000000015199…, rounded to 10⁻¹² USD: 0.000000001520 (not the 2 B of the
/// final body alone, 0.032 / 1,073,741,824 = 0.000000000030).
#[tokio::test]
async fn a_success_cut_off_and_retried_bills_both_responses_out() {
    cut_off_then_answered(WayIn::Client).await;
}

/// The same, sent through a plain SDK client with the `MeteringInterceptor`.
#[tokio::test]
async fn an_intercepted_success_cut_off_and_retried_bills_both_responses_out() {
    cut_off_then_answered(WayIn::Interceptor).await;
}

async fn cut_off_then_answered(way_in: WayIn) {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let client = rt_on_one_m5(&fake)
        .await
        .sink(receipts.clone())
        .build()
        .unwrap();
    let meter = client.meter().clone();
    // SageMaker: the first answer's body is cut off, the next is whole.
    let addr = cut_off_once_then_whole().await;
    let config = aws_sdk_sagemakerruntime::config::Builder::from(&fake.sdk_config().await)
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .endpoint_url(format!("http://{addr}"));
    match way_in {
        WayIn::Client => {
            let sdk = aws_sdk_sagemakerruntime::Client::from_conf(config.build());
            invoke(&Client::from_parts(sdk, meter.clone()), "rt")
                .await
                .unwrap();
        }
        _ => {
            let sdk = aws_sdk_sagemakerruntime::Client::from_conf(
                config
                    .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
                    .build(),
            );
            sdk.invoke_endpoint()
                .endpoint_name("rt")
                .body(Blob::new("{}"))
                .send()
                .await
                .unwrap();
        }
    }
    for _ in 0..1000 {
        if !receipts.all().is_empty() && meter.background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    let cost = &all[0];
    assert_eq!(cost.usage.attempts, 2);
    assert_eq!(cost.usage.bytes_out, 102);
    assert_eq!(line_cost(cost, LineItem::DataOut), dec("0.000000001520"));
    assert!(
        cost.notes.iter().any(|n| n
            == "data out includes the response of each of the 1 attempt(s) answered 2XX whose \
                body was cut off, at its Content-Length: SageMaker sent it"),
        "{:?}",
        cost.notes
    );
}

/// A call whose first attempt reached the model, timed out and was retried is
/// allocated its two attempts' stretches on the sharing clock, summed, not the
/// back-off between them. Call A's model runs 0–1.5 s; call B's first attempt
/// is at the model 0–0.5 s with A's, times out, B backs off until 1.5 s, and its
/// second attempt runs 1.5–2 s alone.
#[tokio::test]
async fn a_retried_call_is_allocated_its_attempts_stretches_not_its_back_off() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let a_client = rt_on_one_m5(&fake)
        .await
        .time_source(shared)
        .sink(receipts.clone())
        .build()
        .unwrap();
    // B's SDK client cuts an attempt off after 0.5 s and retries once, after
    // 1 s (real time, without jitter); `ended` counts its attempts seen to end.
    let ended = AttemptsEnded::default();
    let b_client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::from_conf(
            ended
                .retrying_once_after_a_second(&fake.sdk_config().await)
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_attempt_timeout(Duration::from_millis(500))
                        .build(),
                )
                .build(),
        ),
        a_client.meter().clone(),
    );
    // t = 0: A's request and B's first are at the model (held).
    fake.hold();
    let a = tokio::spawn(invoke(&a_client, "rt"));
    fake.wait_for_invocations(1).await;
    let b = tokio::spawn(invoke(&b_client, "rt"));
    fake.wait_for_invocations(2).await;
    // t = 0.5 s, before B's attempt times out (in real time, 0.5 s after it
    // went out); then it does, and B steps off the sharing clock.
    time.advance(Duration::from_millis(500));
    ended.wait_for(1).await;
    // t = 1.5 s: A's model answers, while B still backs off.
    time.advance(Duration::from_secs(1));
    fake.release();
    a.await.unwrap().unwrap();
    // B's second attempt goes out at 1.5 s and is answered at 2 s.
    fake.hold();
    fake.wait_for_invocations(3).await;
    time.advance(Duration::from_millis(500));
    fake.release();
    b.await.unwrap().unwrap();
    let all = receipts.all();
    assert_eq!(all.len(), 2);
    let (a, b) = (&all[0], &all[1]);
    // A: 0.5 s at ½ (with B's first attempt) + 1 s alone (B backing off) =
    // 1.25 s: 1.25/3600 h × 0.23 USD/h = 0.0000798611…, rounded down to
    // 10⁻¹² USD; not 0.75 s (0.0000479166…), as if B's back-off were shared.
    assert_eq!(line_cost(a, LineItem::Compute), dec("0.000079861111"));
    // B: its timed-out attempt's 0.5 s at ½ (billed: it reached the model)
    // + its second attempt's 0.5 s alone = 0.75 s: 0.75/3600 × 0.23 =
    // 0.0000479166…, rounded down.
    assert_eq!(b.usage.attempts, 2);
    assert_eq!(line_cost(b, LineItem::Compute), dec("0.000047916666"));
    // Together 0.000127777777 USD: the instance's 2 s (2/3600 × 0.23 =
    // 0.0001277777…), but for the rounding down of each receipt.
    assert_eq!(
        line_cost(a, LineItem::Compute) + line_cost(b, LineItem::Compute),
        dec("0.000127777777")
    );
}

#[tokio::test]
async fn sixteen_calls_in_flight_together_on_three_instances_each_pay_three_sixteenths() {
    let fake = fake_with_demo_endpoints().await;
    let (client, time, _) = shared_instances_client(&fake, 3).await;
    fake.hold();
    let calls: Vec<_> = (0..16)
        .map(|_| tokio::spawn(invoke(&client, "rt")))
        .collect();
    fake.wait_for_invocations(16).await;
    time.advance(Duration::from_secs(1));
    fake.release();
    let mut costs = Vec::new();
    for call in calls {
        costs.push(call.await.unwrap().unwrap().into_parts().1);
    }

    // Processor sharing: 16 calls on 3 instances for 1 s each get 3/16 s
    // = 187,500 µs = 0.000052083333333333… h (kept to 18 places, rounded down);
    // × 0.23 USD/h = 0.00001197916666666659… → 0.000011979166 (rounded down).
    for cost in &costs {
        assert_eq!(cost.allocation, Allocation::ProcessorSharing);
        let compute = line(cost, LineItem::Compute);
        assert_eq!(compute.quantity, dec("0.000052083333333333"));
        assert_eq!(compute.cost_usd(), Some(dec("0.000011979166")));
    }
    // The instances' accrued cost over that second: 3 × 0.23 USD/h × 1/3600 h
    // = 0.000191666666… → 0.000191666667; the 16 compute lines add up to
    // 16 × 0.000011979166 = 0.000191666656, no more than that.
    let accrued = costs
        .iter()
        .filter_map(|c| c.accrual.as_ref())
        .map(|a| a.accrued_usd)
        .max()
        .unwrap();
    assert_eq!(accrued, dec("0.000191666667"));
    let allocated: Decimal = costs.iter().map(|c| line_cost(c, LineItem::Compute)).sum();
    assert_eq!(allocated, dec("0.000191666656"));
    assert!(allocated <= accrued);
}

#[tokio::test]
async fn concurrent_calls_with_staggered_starts_never_add_up_to_more_than_the_instances_cost() {
    let fake = fake_with_demo_endpoints().await;
    let (client, time, receipts) = shared_instances_client(&fake, 3).await;
    // 16 workers, 4 calls each; the clock moves 7 ms at a time while calls are
    // in flight, so starts and ends interleave.
    *fake.state.latency.lock().unwrap() = Duration::from_millis(3);
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..4 {
                    invoke(&client, "rt").await.unwrap();
                }
            })
        })
        .collect();
    let ticker = {
        let time = time.clone();
        tokio::spawn(async move {
            loop {
                time.advance(Duration::from_millis(7));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for w in workers {
        w.await.unwrap();
    }
    ticker.abort();

    let all = receipts.all();
    assert_eq!(all.len(), 64);
    let allocated: Decimal = all.iter().map(|c| line_cost(c, LineItem::Compute)).sum();
    let last = all.last().unwrap().accrual.clone().unwrap();
    assert_eq!(last.allocated_usd, allocated);
    assert!(
        allocated <= last.accrued_usd,
        "receipts {allocated} > accrued {}",
        last.accrued_usd
    );
    for cost in &all {
        let utilisation = cost.accrual.as_ref().unwrap().utilisation;
        assert!(
            utilisation.is_none_or(|u| u <= Decimal::ONE),
            "{utilisation:?}"
        );
    }
}

/// A call to `rt` (one ml.m5.xlarge) sent, then dropped by its caller 2 s
/// later while the model runs: the client and the one receipt it makes
/// (cancelled).
async fn an_invoke_dropped_two_seconds_after_sending() -> (Client, Cost) {
    let fake = fake_with_demo_endpoints().await;
    let (client, time, receipts) = shared_instances_client(&fake, 1).await;
    fake.hold();
    let call = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(2));
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    fake.release();
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    let cost = all[0].clone();
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    (client, cost)
}

#[tokio::test]
async fn an_invoke_dropped_after_sending_still_makes_one_cancelled_receipt() {
    let (client, cost) = an_invoke_dropped_two_seconds_after_sending().await;
    let cost = &cost;
    // A lower bound, said: SageMaker may have let the model run on.
    assert!(
        cost.notes.iter().any(|n| n.contains(
            "billed as if the model ran until then (at least: the model may have run on \
             after its caller went away)"
        )),
        "{:?}",
        cost.notes
    );
    // Alone on its one instance for the 2 s until the drop: 2/3600 h
    // = 0.000555555555555555 (18 places, rounded down) × 0.23 USD/h
    // = 0.00012777777777777765 → 0.000127777777 (rounded down).
    assert_eq!(line_cost(cost, LineItem::Compute), dec("0.000127777777"));
    // The 2-byte body went in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003.
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    assert_eq!(client.meter().totals().calls, 1);
    assert_eq!(client.meter().totals().client_usd, cost.cost_usd);
}

/// The call's span closes with the cancelled receipt's figures, as a dropped
/// stream's does: the receipt made on the drop is priced in the span and its cost
/// recorded on it.
#[tokio::test]
async fn an_invoke_dropped_after_sending_closes_its_span_with_its_cancelled_cost() {
    let (logs, _guard) = crate::support::spans::capture();
    let (_client, cost) = an_invoke_dropped_two_seconds_after_sending().await;
    let cost = &cost;
    // Alone on its one ml.m5.xlarge (0.23 USD/h) for the 2 s until the drop:
    // 2/3600 h × 0.23 = 0.000127777… → 0.000127777777 (rounded down); and the
    // 2-byte body in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003.
    // 0.000127777777 + 0.00000000003 = 0.000127777807 USD.
    assert_eq!(cost.cost_usd, dec("0.000127777807"));
    let spans = logs.closed_spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    let field = |name: &str| span.get(name).map(String::as_str);
    assert_eq!(field("outcome"), Some("cancelled"), "{span:#?}");
    assert_eq!(field("cost_usd"), Some("0.000127777807"), "{span:#?}");
    assert_eq!(
        field("gen_ai.usage.cost.amount"),
        Some("f64:0.000127777807")
    );
    assert_eq!(field("gen_ai.usage.cost.currency"), Some("USD"));
    assert_eq!(field("fully_priced"), Some("true"));
    assert!(span.contains_key("price_source"), "{span:#?}");
    // The cost line was logged inside the call's span.
    let lines = logs.cost_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0].get("@span").map(String::as_str),
        Some("sagemaker.invoke")
    );
}

/// A client of an SDK config whose time source is a manual clock (no
/// `ClientBuilder::time_source`): `chat` on 1 x ml.g5.xlarge at 1.408 USD/h,
/// called while its clock is moved by `advance`; its compute line.
async fn compute_of_a_call_on_the_sdk_configs_clock(
    time: ManualTimeSource,
    advance: Duration,
) -> Decimal {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "chat",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    let config = fake
        .sdk_config()
        .await
        .to_builder()
        .time_source(SharedTimeSource::new(time.clone()))
        .build();
    let mut prices = FixedPrices::us_east_1();
    prices
        .0
        .insert(PriceKey::hosting("us-east-1", "ml.g5.xlarge"), dec("1.408"));
    let client = Client::builder(&config)
        .without_discovery()
        .without_metrics()
        .endpoint_profile(EndpointProfile::new(
            "chat",
            vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 1)],
        ))
        .price_source(prices)
        .build()
        .unwrap();
    fake.hold();
    let call = tokio::spawn(invoke(&client, "chat"));
    fake.wait_for_invocations(1).await;
    time.advance(advance);
    fake.release();
    let ok = call.await.unwrap().unwrap();
    line_cost(ok.cost(), LineItem::Compute)
}

/// A manual clock set on the SDK config (not on the builder) moves as it says:
/// the call's 2 s on it are billed, not the few milliseconds that really passed.
/// Alone on its one instance for 2 s: 2/3600 h = 0.000555555555555555 (18
/// places, rounded down) x 1.408 USD/h = 0.00078222222222222144 ->
/// 0.000782222222 (12 places, rounded down), $0.000782222.
#[tokio::test]
async fn a_manual_clock_on_the_sdk_config_is_billed_as_it_moves() {
    let (time, _) = manual_clock();
    let compute = compute_of_a_call_on_the_sdk_configs_clock(time, Duration::from_secs(2)).await;
    assert_eq!(compute, dec("0.000782222222"));
}

/// An SDK config clock that reads the system clock's time is taken for it: a
/// jump of 10 s forward during a call that really took far less is a step of
/// the clock (NTP, a VM resumed), not time the instance served, and is not
/// billed. 10 s would be 10/3600 x 1.408 = $0.003911111; one second of it
/// 1/3600 x 1.408 = $0.000391111, more than the call really took.
#[tokio::test]
async fn an_sdk_config_clock_reading_the_system_time_is_checked_for_steps() {
    let time = ManualTimeSource::new(std::time::SystemTime::now());
    let compute = compute_of_a_call_on_the_sdk_configs_clock(time, Duration::from_secs(10)).await;
    assert!(compute < dec("0.000391111"), "{compute}");
}

#[tokio::test]
async fn an_invoke_dropped_before_anything_was_sent_makes_no_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let (client, _time, receipts) = shared_instances_client(&fake, 1).await;
    drop(invoke(&client, "rt")); // never polled: no request went out
    assert!(receipts.all().is_empty());
    assert_eq!(fake.invocations(), 0);
}

#[tokio::test]
async fn throttled_attempts_are_counted_and_not_billed() {
    let fake = fake_with_demo_endpoints().await;
    let client = retrying_client(&fake, 3, Duration::from_millis(50), |b| {
        b.allocation(Allocation::BusyTime)
    })
    .await;
    fake.throttle_next(2);
    let started = std::time::Instant::now();
    let response = invoke(&client, "rt").await.unwrap();
    let wall = started.elapsed();

    assert_eq!(
        fake.invocations(),
        3,
        "two throttled attempts, then one answered"
    );
    let cost = response.cost();
    assert_eq!(cost.usage.attempts, 3);
    crate::support::receipts::assert_noted(
        cost,
        "3 attempts: 1 reached the model and are billed, 2 were not",
    );
    // Only the answered attempt is billed: its latency excludes the two throttled
    // round trips and the back-offs between the attempts, 50 + 100 ms without
    // jitter (billed from the first attempt, it would be 150 ms longer at least).
    assert!(
        cost.usage.latency + Duration::from_millis(150) <= wall,
        "{:?} of {wall:?}",
        cost.usage.latency
    );
    // Busy time, worked by hand: latency µs / 3.6e9 h, at 0.23 USD/h.
    let compute = line(cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
}

#[tokio::test]
async fn send_metered_counts_each_attempt_once_whichever_sdk_client_sends_it() {
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    let retrying = || {
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config).retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
    };
    let client = Client::builder(&sdk_config)
        .runtime_client(aws_sdk_sagemakerruntime::Client::from_conf(
            retrying().build(),
        ))
        .price_source(FixedPrices::us_east_1())
        .build()
        .unwrap();
    // A plain SDK client (the watch goes on the request), and the Client's own
    // runtime client (the watch is on it already, and goes on the request again).
    let plain = aws_sdk_sagemakerruntime::Client::from_conf(retrying().build());
    for (sdk, which) in [(&plain, "plain"), (client.runtime(), "the Client's")] {
        let before = fake.invocations();
        fake.throttle_next(1);
        let response = sdk
            .invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send_metered(client.meter())
            .await
            .unwrap();
        assert_eq!(
            fake.invocations() - before,
            2,
            "{which}: one throttled, one answered"
        );
        assert_eq!(response.cost().usage.attempts, 2, "{which} SDK client");
    }
}

#[tokio::test]
async fn a_zero_price_override_is_refused_unless_free_on_purpose() {
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
    let err = Client::builder(&sdk_config)
        .price_override(key.clone(), Decimal::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("free_of_charge"), "{err}");

    let client = Client::builder(&sdk_config)
        .price_source(FixedPrices::us_east_1())
        .free_of_charge(key)
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    assert_eq!(line_cost(response.cost(), LineItem::Compute), Decimal::ZERO);
    let provenance = response.cost().compute_provenance().unwrap();
    assert_eq!(provenance.source, PriceOrigin::Override);
    assert!(
        provenance
            .note
            .as_deref()
            .unwrap()
            .contains("free of charge"),
        "{provenance:?}"
    );
}

/// An override for another region than the client's would never price a call
/// (list prices would, with no word): refused at build, saying which region.
#[tokio::test]
async fn a_price_override_for_another_region_is_refused() {
    let fake = fake_with_demo_endpoints().await;
    let err = Client::builder(&fake.sdk_config().await)
        .region("eu-west-1")
        .price_override(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), dec("0.20"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("is for us-east-1, and this client prices calls in eu-west-1"),
        "{text}"
    );
}

/// Spend recorded after shutdown cannot reach the fleet table any more (the
/// flushing has stopped): it is said once, and counted in the unwritten items,
/// not dropped silently. (Here, not in the `fleet` binary: no table is needed,
/// and that binary's timed tests run without the log capture.)
#[cfg(feature = "fleet")]
#[tokio::test]
async fn fleet_spend_after_shutdown_is_said_once_to_stay_unwritten() {
    let logs = logs::capture();
    let fake = fake_with_demo_endpoints().await;
    // A table nobody answers for: nothing is written, which is not the point.
    let unanswered = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&fake.sdk_config().await)
            .endpoint_url("http://127.0.0.1:1")
            .build(),
    );
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .fleet(sagemeter::fleet::FleetConfig::dynamodb("late").dynamodb_client(unanswered))
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap();
    let _ = client
        .meter()
        .shutdown_within(Duration::from_millis(200))
        .await;
    let before = client.meter().fleet_stats().unwrap().unwritten_items;
    for _ in 0..2 {
        invoke(&client, "rt").await.unwrap();
    }
    let late: Vec<_> = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("spend recorded after the fleet was shut down"))
        })
        .collect();
    assert_eq!(late.len(), 1, "{late:#?}");
    assert!(client.meter().fleet_stats().unwrap().unwritten_items >= before);
}

#[tokio::test]
async fn a_max_concurrency_of_zero_is_refused() {
    let fake = fake_with_demo_endpoints().await;
    let err = Client::builder(&fake.sdk_config().await)
        .max_concurrency_per_instance(0)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("max_concurrency_per_instance"),
        "{err}"
    );
}

#[tokio::test]
async fn calls_an_instance_serves_side_by_side_each_get_a_whole_share_up_to_that_many() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = rt_on_one_m5(&fake)
        .await
        .max_concurrency_per_instance(4)
        .time_source(shared)
        .build()
        .unwrap();
    fake.hold();
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(invoke(&client, "rt")))
        .collect();
    fake.wait_for_invocations(2).await;
    time.advance(Duration::from_secs(36));
    fake.release();
    for call in calls {
        let cost = call.await.unwrap().unwrap().into_parts().1;
        // m = 4: 2 calls on 1 instance each get min(1/4, 1/2) = 1/4 instance for
        // 36 s = 9 s = 0.0025 h × 0.23 USD/h = 0.000575.
        assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.000575"));
    }
}

/// `FixedPrices::us_east_1()` plus the standing charges' rates.
fn with_standing_rates() -> FixedPrices {
    let mut prices = FixedPrices::us_east_1();
    let r = "us-east-1".to_owned();
    prices.0.extend([
        // Serverless 2 GB with provisioned concurrency: 0.00001 USD per second
        // provisioned, 0.0000233 USD per second of inference duration.
        (
            PriceKey::ProvisionedConcurrency {
                region: r.clone(),
                memory_gb: 2,
            },
            dec("0.00001"),
        ),
        (
            PriceKey::ProvisionedConcurrencyUsage {
                region: r.clone(),
                memory_gb: 2,
            },
            dec("0.0000233"),
        ),
        // Hosting ML storage, 0.14 USD per GB-month.
        (PriceKey::storage(&r), dec("0.14")),
    ]);
    prices
}

#[tokio::test]
async fn provisioned_concurrency_accrues_its_standing_charge_and_calls_pay_the_inference_rate() {
    let fake = fake_with_demo_endpoints().await;
    fake.add_endpoint("pc", vec![FakeVariant::serverless("AllTraffic", 2048)]);
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "pc",
            vec![VariantProfile::serverless("AllTraffic", 2048).with_provisioned_concurrency(2)],
        ))
        .price_source(with_standing_rates())
        .time_source(shared)
        .build()
        .unwrap();
    invoke(&client, "pc").await.unwrap();
    time.advance(Duration::from_secs(100));
    let second = invoke(&client, "pc").await.unwrap();
    let cost = second.cost();

    // The call: billed seconds × the inference-duration rate 0.0000233 USD/s.
    let billed_ms = cost.usage.latency.as_nanos().div_ceil(1_000_000) as u64;
    let compute = r12(Decimal::from(billed_ms) / Decimal::from(1000) * dec("0.0000233"));
    assert_eq!(line_cost(cost, LineItem::Compute), compute);
    // Standing: 2 provisioned × 0.00001 USD/s × 100 s = 0.002 USD, on no receipt.
    let accrual = cost
        .accrual
        .as_ref()
        .expect("provisioned concurrency accrues");
    assert_eq!(accrual.accrued_usd, dec("0.002"));
    let first_compute = accrual.allocated_usd - compute;
    assert!(first_compute > Decimal::ZERO);
    assert_eq!(
        accrual.utilisation,
        Some(
            (accrual.allocated_usd / dec("0.002"))
                .round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven)
        )
    );
}

/// Provisioned concurrency whose standing rate no source gives: AWS bills it all
/// the same (2 provisioned × $0.00001/s × 100 s = $0.002 between the two calls),
/// so it is never a silent $0. The accrual leaves it out, every receipt says so
/// with the reason, and one WARN names the endpoint and variant; the calls
/// themselves pay the inference rate, which is known (0.0000233 USD/s at 2 GB).
#[tokio::test]
async fn provisioned_concurrency_whose_standing_rate_is_not_known_is_left_out_saying_so() {
    let logs = crate::support::logs::capture();
    let fake = fake_with_demo_endpoints().await;
    fake.add_endpoint(
        "pc-rate-unknown",
        vec![FakeVariant::serverless("AllTraffic", 2048)],
    );
    let (time, shared) = manual_clock();
    let mut prices = with_standing_rates();
    prices.0.remove(&PriceKey::ProvisionedConcurrency {
        region: "us-east-1".to_owned(),
        memory_gb: 2,
    });
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "pc-rate-unknown",
            vec![VariantProfile::serverless("AllTraffic", 2048).with_provisioned_concurrency(2)],
        ))
        .price_source(prices)
        .time_source(shared)
        .build()
        .unwrap();
    let first = invoke(&client, "pc-rate-unknown").await.unwrap();
    time.advance(Duration::from_secs(100));
    let second = invoke(&client, "pc-rate-unknown").await.unwrap();

    for cost in [first.cost(), second.cost()] {
        // The call: billed seconds × the inference-duration rate 0.0000233 USD/s.
        let billed_ms = cost.usage.latency.as_nanos().div_ceil(1_000_000) as u64;
        let compute = r12(Decimal::from(billed_ms) / Decimal::from(1000) * dec("0.0000233"));
        assert_eq!(line_cost(cost, LineItem::Compute), compute);
        // The standing charge is not on the receipt, nor accrued at $0.
        assert_eq!(cost.accrual, None);
        assert!(
            cost.notes.iter().any(|n| n.starts_with(
                "the variant's provisioned concurrency is not accrued: its rate is not known \
                 (2 × the per-second standing rate, "
            )),
            "{:?}",
            cost.notes
        );
    }
    let warned = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| {
            l["fields"]["endpoint"] == "pc-rate-unknown"
                && l["fields"]["message"]
                    == "a variant's provisioned concurrency could not be priced: its accrual \
                        leaves it out"
        })
        .count();
    assert_eq!(warned, 1);
}

/// A call that starts while the provisioned concurrency is all busy is served on
/// demand, and AWS bills it at the on-demand serverless rate: with 1 provisioned
/// and 2 calls in flight from the start, one call pays the provisioned inference rate
/// (0.0000233 USD/s at 2 GB) and the other the on-demand rate (0.00004 USD/s),
/// each on its billed seconds (latency rounded up to the millisecond). The
/// accrual's allocation holds only what the provisioned concurrency served.
#[tokio::test]
async fn a_call_beyond_the_provisioned_concurrency_pays_the_on_demand_rate() {
    let fake = fake_with_demo_endpoints().await;
    fake.add_endpoint("pc", vec![FakeVariant::serverless("AllTraffic", 2048)]);
    // A client of `profile`, the on-demand rate beside the standing ones.
    let sdk_config = fake.sdk_config().await;
    let client_of = |profile: EndpointProfile, allocation: sagemeter::billing::Allocation| {
        let mut prices = with_standing_rates();
        prices
            .0
            .insert(PriceKey::serverless("us-east-1", 2), dec("0.00004"));
        Client::builder(&sdk_config)
            .without_discovery()
            .endpoint_profile(profile)
            .price_source(prices)
            .allocation(allocation)
            .build()
            .unwrap()
    };
    let billed = |cost: &sagemeter::Cost, rate: &str| {
        let ms = cost.usage.latency.as_nanos().div_ceil(1_000_000) as u64;
        r12(Decimal::from(ms) / Decimal::from(1000) * dec(rate))
    };
    let beyond = |cost: &sagemeter::Cost| {
        cost.notes
            .iter()
            .any(|n| n.contains("the provisioned concurrency of 1 was all busy"))
    };
    // Whatever the allocation: it shares instance time, and a serverless call is
    // billed by its own duration (amortised, the call beyond was once billed at
    // the provisioned rate).
    use sagemeter::billing::Allocation;
    for allocation in [Allocation::ProcessorSharing, Allocation::Amortized] {
        let client = client_of(
            EndpointProfile::new(
                "pc",
                vec![
                    VariantProfile::serverless("AllTraffic", 2048).with_provisioned_concurrency(1),
                ],
            ),
            allocation,
        );
        let before = fake.invocations();
        fake.hold();
        let calls: Vec<_> = (0..2)
            .map(|_| tokio::spawn(invoke(&client, "pc")))
            .collect();
        fake.wait_for_invocations(before + 2).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        fake.release();
        let mut costs = Vec::new();
        for call in calls {
            costs.push(call.await.unwrap().unwrap().into_parts().1);
        }
        costs.sort_by_key(beyond);
        let (provisioned, on_demand) = (&costs[0], &costs[1]);
        assert!(
            !beyond(provisioned) && beyond(on_demand),
            "{allocation:?}: {costs:#?}"
        );
        // Typed, for code (reconcile files it under the on-demand usage type).
        assert!(!provisioned.is_beyond_provisioned() && on_demand.is_beyond_provisioned());
        assert_eq!(
            line_cost(provisioned, LineItem::Compute),
            billed(provisioned, "0.0000233"),
            "{allocation:?}"
        );
        assert_eq!(
            line_cost(on_demand, LineItem::Compute),
            billed(on_demand, "0.00004"),
            "{allocation:?}"
        );
        let allocated = costs
            .iter()
            .filter_map(|c| c.accrual.as_ref())
            .map(|a| a.allocated_usd)
            .max()
            .unwrap();
        assert_eq!(
            allocated,
            billed(provisioned, "0.0000233"),
            "{allocation:?}"
        );
    }

    // With a second production variant, the calls in flight on the endpoint are
    // not the provisioned variant's (SageMaker routes by weight): none is taken
    // for beyond it, both pay the provisioned inference rate.
    fake.add_endpoint(
        "ab",
        vec![
            FakeVariant::serverless("A", 2048),
            FakeVariant::instance("B", "ml.m5.xlarge", 1),
        ],
    );
    let client = client_of(
        EndpointProfile::new(
            "ab",
            vec![
                VariantProfile::serverless("A", 2048).with_provisioned_concurrency(1),
                VariantProfile::instance("B", "ml.m5.xlarge", 1),
            ],
        ),
        Allocation::ProcessorSharing,
    );
    let before = fake.invocations();
    fake.hold();
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(invoke(&client, "ab")))
        .collect();
    fake.wait_for_invocations(before + 2).await;
    fake.release();
    for call in calls {
        let cost = call.await.unwrap().unwrap().into_parts().1;
        assert_eq!(cost.variant.as_deref(), Some("A"));
        assert!(!beyond(&cost), "{:?}", cost.notes);
        assert_eq!(
            line_cost(&cost, LineItem::Compute),
            billed(&cost, "0.0000233")
        );
    }
}

#[tokio::test]
async fn ml_storage_accrues_per_gb_month_prorated_over_the_calendar_month() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![
                VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2).with_volume_size_gb(100),
            ],
        ))
        .price_source(with_standing_rates())
        .time_source(shared)
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap();
    time.advance(Duration::from_secs(3600));
    let second = invoke(&client, "rt").await.unwrap();
    let accrual = second.cost().accrual.clone().unwrap();
    // The clock starts on 2027-01-15 (January: 31 days). 100 GB × 2 instances ×
    // 0.14 USD/GB-month × 3600 s / (31 × 86,400 s) = 100,800 / 2,678,400
    // = 0.0376344086021505… → 0.037634408602.
    assert_eq!(accrual.storage_usd, Some(dec("0.037634408602")));
    // The instances: 2 × 0.23 USD/h × 1 h = 0.46.
    assert_eq!(accrual.accrued_usd, dec("0.46"));
}

/// A client whose runtime client retries throttled calls up to `attempts` times,
/// `backoff` apart (before jitter).
async fn retrying_client(
    fake: &FakeSageMaker,
    attempts: u32,
    backoff: Duration,
    configure: impl FnOnce(sagemeter::ClientBuilder) -> sagemeter::ClientBuilder,
) -> Client {
    timing_out_client(
        fake,
        attempts,
        backoff,
        TimeoutConfig::disabled(),
        configure,
    )
    .await
}

/// [`retrying_client`] whose SDK client also has `timeouts`.
async fn timing_out_client(
    fake: &FakeSageMaker,
    attempts: u32,
    backoff: Duration,
    timeouts: TimeoutConfig,
    configure: impl FnOnce(sagemeter::ClientBuilder) -> sagemeter::ClientBuilder,
) -> Client {
    let sdk_config = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .retry_config(
                // Without jitter: each back-off is exactly `backoff` × 2^retry, so
                // a test knows when the SDK is backing off.
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(backoff)
                    .with_use_static_exponential_base(true),
            )
            .timeout_config(timeouts)
            .build(),
    );
    configure(
        Client::builder(&sdk_config)
            .runtime_client(runtime)
            .price_source(FixedPrices::us_east_1()),
    )
    .build()
    .unwrap()
}

#[tokio::test]
async fn an_invoke_dropped_while_backing_off_from_throttling_makes_no_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let budget = sagemeter::budget::Budget::enforce(
        sagemeter::budget::BudgetScope::Client,
        sagemeter::budget::BudgetPeriod::Day,
        dec("10"),
    )
    .unwrap();
    let client = retrying_client(&fake, 10, Duration::from_secs(5), |b| {
        b.sink(receipts.clone()).budget(budget)
    })
    .await;
    invoke(&client, "rt").await.unwrap(); // profile and rates at hand
    let before = receipts.all().len();
    let spent = client.meter().totals().client_usd;

    fake.throttle_next(1_000);
    let call = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(2).await; // the first attempt was throttled
    tokio::time::sleep(Duration::from_millis(100)).await; // the SDK backs off for 5 s
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(fake.invocations(), 2, "no second attempt went out");

    // The only attempt was throttled: the model never ran, so nothing is billed
    // and the call's reservation is released.
    assert_eq!(receipts.all().len(), before, "{:#?}", receipts.all().last());
    assert_eq!(client.meter().totals().client_usd, spent);
    assert_eq!(
        client.meter().budget_status()[0].reserved_usd,
        Decimal::ZERO
    );
}

#[tokio::test]
async fn an_invoke_dropped_during_its_retry_is_billed_for_that_attempt_only() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let client = retrying_client(&fake, 3, Duration::from_millis(300), |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    invoke(&client, "rt").await.unwrap(); // profile and rates at hand
    fake.throttle_next(1);
    fake.hold();
    let started = std::time::Instant::now();
    let call = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(3).await; // throttled, then the retry is held
    tokio::time::sleep(Duration::from_millis(50)).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let wall = started.elapsed();
    fake.release();

    let all = receipts.all();
    assert_eq!(all.len(), 2, "{all:#?}");
    let cost = &all[1];
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert_eq!(cost.usage.attempts, 2);
    crate::support::receipts::assert_noted(
        cost,
        "2 attempts: 1 reached the model and are billed, 1 were not",
    );
    // Billed: the retry, from when it went out to the drop; not the call's whole
    // wall time. The retry went out after the throttled attempt and a back-off of
    // exactly 300 ms (no jitter), so at least 300 ms of the wall time is not billed,
    // however late this task saw the retry arrive.
    assert!(
        cost.usage.latency <= wall - Duration::from_millis(300),
        "{:?} billed of {wall:?}, of which 300 ms were the back-off",
        cost.usage.latency
    );
    assert!(cost.usage.latency >= Duration::from_millis(50));
    // Busy time, worked by hand: latency µs / 3.6e9 h, at 0.23 USD/h.
    let compute = line(cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
}

/// The SDK error inside a failed `InvokeEndpoint`, and the receipt it carries.
type InvokeFailure = (
    aws_sdk_sagemakerruntime::error::SdkError<
        aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError,
        aws_smithy_runtime_api::http::Response,
    >,
    Option<Cost>,
);

/// A call to `rt` that puts its profile and rates at hand, then one held at
/// the model until it fails: the failure's SDK error and its receipt.
async fn failed_after_a_warm_up(fake: &FakeSageMaker, client: &Client) -> InvokeFailure {
    invoke(client, "rt").await.unwrap();
    fake.hold();
    let failed = invoke_failure(invoke(client, "rt").await.unwrap_err());
    fake.release();
    failed
}

/// The SDK error and receipt inside `err`, which must be an invoke's.
fn invoke_failure(err: Error) -> InvokeFailure {
    match err {
        Error::Invoke { source, cost, .. } => (*source, cost.map(|c| *c)),
        other => panic!("not an invoke error: {other:?}"),
    }
}

#[tokio::test]
async fn an_invoke_the_sdk_times_out_after_sending_makes_one_cancelled_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(1))
        .build();
    let client = timing_out_client(&fake, 1, Duration::ZERO, timeouts, |b| {
        b.without_discovery()
            .endpoint_profile(EndpointProfile::new(
                "rt",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            ))
            .time_source(shared)
            .sink(receipts.clone())
    })
    .await;
    fake.hold();
    let call = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(2));
    let (source, cost) = invoke_failure(call.await.unwrap().unwrap_err());
    fake.release();

    assert!(
        matches!(
            source,
            aws_sdk_sagemakerruntime::error::SdkError::TimeoutError(_)
        ),
        "{source:?}"
    );
    let cost = cost.expect("the timed-out call's receipt comes with its error");
    assert_eq!(receipts.all(), vec![cost.clone()]);
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("the SDK timed out the call")),
        "{:?}",
        cost.notes
    );
    // As for a dropped call: alone on its one instance for the 2 s until the
    // timeout, 2/3600 h = 0.000555555555555555 (18 places, rounded down)
    // × 0.23 USD/h = 0.00012777777777777765 → 0.000127777777 (rounded down).
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.000127777777"));
    // The 2-byte body went in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003.
    assert_eq!(line_cost(&cost, LineItem::DataIn), dec("0.00000000003"));
    assert_eq!(client.meter().totals().calls, 1);
    assert_eq!(client.meter().totals().client_usd, cost.cost_usd);
}

#[tokio::test]
async fn attempts_the_sdk_times_out_and_retries_are_each_billed_until_their_timeout() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .build();
    let client = timing_out_client(&fake, 2, Duration::from_millis(200), timeouts, |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    invoke(&client, "rt").await.unwrap(); // profile and rates at hand
    fake.hold();
    let started = std::time::Instant::now();
    let (source, cost) = invoke_failure(invoke(&client, "rt").await.unwrap_err());
    let wall = started.elapsed();
    fake.release();

    assert!(
        matches!(
            source,
            aws_sdk_sagemakerruntime::error::SdkError::TimeoutError(_)
        ),
        "{source:?}"
    );
    assert_eq!(fake.invocations(), 3, "the warm-up call, then two attempts");
    let cost = cost.expect("the timed-out call's receipt comes with its error");
    assert_eq!(receipts.all().len(), 2);
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert_eq!(cost.usage.attempts, 2);
    for note in [
        "2 attempts: 2 reached the model and are billed, 0 were not",
        "2 of the attempts timed out after the request was sent: billed as if the model \
         ran until the timeout (at least: the model may have run on after it)",
    ] {
        assert!(cost.notes.iter().any(|n| n == note), "{:?}", cost.notes);
    }
    // Billed: the two attempts of 300 ms each until their timeout (each from when
    // its request went out, a little after its timer started), not the 200 ms
    // back-off between them.
    assert!(
        cost.usage.latency >= Duration::from_millis(550),
        "{:?}",
        cost.usage.latency
    );
    assert!(
        cost.usage.latency + Duration::from_millis(200) <= wall,
        "{:?} billed of {wall:?}",
        cost.usage.latency
    );
    // Busy time, worked by hand: latency µs / 3.6e9 h, at 0.23 USD/h.
    let compute = line(&cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
}

#[tokio::test]
async fn an_invoke_past_the_http_read_timeout_makes_one_cancelled_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let timeouts = TimeoutConfig::builder()
        .read_timeout(Duration::from_millis(300))
        .build();
    let client = timing_out_client(&fake, 1, Duration::ZERO, timeouts, |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    invoke(&client, "rt").await.unwrap();
    fake.hold();
    let err = invoke(&client, "rt").await.unwrap_err();
    fake.release();
    // Billed as the SDK's other timeouts after sending: a retry may get past it,
    // and is billed again.
    assert!(err.is_retryable(), "{err:?}");
    let (source, cost) = invoke_failure(err);

    assert!(
        matches!(&source, aws_sdk_sagemakerruntime::error::SdkError::DispatchFailure(f) if f.is_timeout()),
        "{source:?}"
    );
    let cost = cost.expect("the timed-out call's receipt comes with its error");
    assert_eq!(receipts.all().len(), 2);
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert!(cost.usage.latency >= Duration::from_millis(300));
    // Busy time: the call's own latency, at 0.23 USD/h (ml.m5.xlarge, us-east-1).
    // Busy time, worked by hand: latency µs / 3.6e9 h, at 0.23 USD/h.
    let compute = line(&cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
    assert!(
        matches!(compute.price, sagemeter::billing::LinePrice::Priced { usd_per_unit, .. } if usd_per_unit == dec("0.23")),
        "{compute:?}"
    );
}

/// A credentials provider that takes its time (an SSO or assumed-role fetch on
/// the call's way), then answers the fake's test credentials.
#[derive(Debug)]
struct SlowCredentials(Duration);

impl aws_credential_types::provider::ProvideCredentials for SlowCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            tokio::time::sleep(self.0).await;
            Ok(aws_credential_types::Credentials::new(
                "test", "test", None, None, "slow",
            ))
        })
    }
}

/// The fake's `sls` as one 3 GB serverless variant (a fixed profile, no
/// discovery), priced from [`FixedPrices`].
fn sls_on_3_gb(builder: sagemeter::ClientBuilder) -> sagemeter::ClientBuilder {
    builder
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "sls",
            vec![VariantProfile::serverless("AllTraffic", 3072)],
        ))
        .price_source(FixedPrices::us_east_1())
}

#[tokio::test]
async fn a_credentials_fetch_before_the_request_is_not_billed_as_model_time() {
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    // Credentials fetched on each call's way (no cache), 1 s each time; the fake
    // model answers at once.
    let slow = aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
        .credentials_provider(SlowCredentials(Duration::from_secs(1)))
        .identity_cache(aws_sdk_sagemakerruntime::config::IdentityCache::no_cache())
        .build();
    let client = sls_on_3_gb(Client::builder(&sdk_config))
        .runtime_client(aws_sdk_sagemakerruntime::Client::from_conf(slow.clone()))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let metered = invoke(&client, "sls").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));

    // The same through the SDK interceptor.
    let receipts = Receipts::default();
    let meter = sls_on_3_gb(Client::builder(&sdk_config))
        .sink(receipts.clone())
        .build_meter()
        .unwrap();
    let sdk = aws_sdk_sagemakerruntime::Client::from_conf(
        slow.to_builder()
            .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
            .build(),
    );
    sdk.invoke_endpoint()
        .endpoint_name("sls")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    meter.shutdown().await.unwrap();
    let intercepted = receipts.all().pop().expect("the interceptor's receipt");

    for (cost, how) in [(metered.cost(), "Client"), (&intercepted, "interceptor")] {
        assert_eq!(cost.usage.attempts, 1, "{how}");
        // Billed: from the request going out to SageMaker's answer (milliseconds,
        // with no model latency), not the second spent on the credentials before
        // it: 1 s × 0.00006 USD/s = 0.00006 USD at least.
        assert!(
            cost.usage.latency < Duration::from_millis(500),
            "{how}: billed {:?}",
            cost.usage.latency
        );
        // Serverless, worked by hand: the latency rounded up to the millisecond,
        // × 0.00006 USD/s (3 GB, us-east-1); under 0.5 s × 0.00006 = 0.00003.
        let billed_ms = cost.usage.latency.as_micros().div_ceil(1000);
        let compute = line_cost(cost, LineItem::Compute);
        assert_eq!(
            compute,
            r12(Decimal::from(billed_ms) / Decimal::from(1000) * dec("0.00006")),
            "{how}"
        );
        assert!(compute < dec("0.00003"), "{how}: {compute}");
        assert!(
            !cost.notes.iter().any(|n| n.contains("attempts")),
            "{how}: no note for an ordinary call: {:?}",
            cost.notes
        );
    }
}

#[tokio::test]
async fn an_operation_timeout_during_the_back_off_bills_the_attempt_until_its_own_timeout() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    // Each attempt times out after 300 ms, the SDK then backs off for 2 s, and
    // the operation timeout (900 ms) fires during the back-off.
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .operation_timeout(Duration::from_millis(900))
        .build();
    let client = timing_out_client(&fake, 2, Duration::from_secs(2), timeouts, |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    let (source, cost) = failed_after_a_warm_up(&fake, &client).await;

    assert!(
        matches!(
            source,
            aws_sdk_sagemakerruntime::error::SdkError::TimeoutError(_)
        ),
        "{source:?}"
    );
    assert_eq!(fake.invocations(), 2, "the warm-up call, then one attempt");
    let cost = cost.expect("the timed-out call's receipt comes with its error");
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert_eq!(cost.usage.attempts, 1);
    // Its notes say what it bills: the attempt to its own timeout, not the call
    // "until then" (the operation timeout, 600 ms later).
    crate::support::receipts::assert_noted_containing(&cost, "the SDK timed out the call");
    crate::support::receipts::assert_not_noted_containing(&cost, "until then");
    // Billed: the attempt until its timeout, 300 ms from its timer's start (its
    // request went out a little after), not the 600 ms of back-off after it.
    assert!(
        cost.usage.latency >= Duration::from_millis(250)
            && cost.usage.latency < Duration::from_millis(600),
        "billed {:?}",
        cost.usage.latency
    );
    // Busy time, worked by hand: 0.3 s ÷ 3600 × 0.23 USD/h = 0.0000191666…
    // (the whole 0.9 s would be 0.0000575); the receipt's own latency µs
    // / 3.6e9 h × 0.23, under 0.6 s ÷ 3600 × 0.23 = 0.0000383333….
    let compute = line(&cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
    assert!(line_cost(&cost, LineItem::Compute) < dec("0.0000383333"));
}

#[tokio::test]
async fn a_retried_call_cut_off_while_backing_off_is_not_billed_the_back_off() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    // Attempts time out after 200 ms, 1 s then 2 s apart; the operation timeout
    // (2 s) fires in the second back-off, after two attempts.
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(200))
        .operation_timeout(Duration::from_secs(2))
        .build();
    let client = timing_out_client(&fake, 3, Duration::from_secs(1), timeouts, |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    let (_, cost) = failed_after_a_warm_up(&fake, &client).await;

    assert_eq!(fake.invocations(), 3, "the warm-up call, then two attempts");
    let cost = cost.expect("the timed-out call's receipt comes with its error");
    assert_eq!(cost.usage.attempts, 2);
    crate::support::receipts::assert_noted(
        &cost,
        "2 attempts: 2 reached the model and are billed, 0 were not",
    );
    // Billed: 2 × 200 ms, each attempt until its timeout; not the second one
    // stretched to the operation timeout (200 + 800 ms = 1 s).
    assert!(
        cost.usage.latency >= Duration::from_millis(350)
            && cost.usage.latency < Duration::from_millis(700),
        "billed {:?}",
        cost.usage.latency
    );
    // Busy time, worked by hand: 0.4 s ÷ 3600 × 0.23 USD/h = 0.0000255555…; the
    // receipt's own latency µs / 3.6e9 h × 0.23.
    let compute = line(&cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
}

#[tokio::test]
async fn an_invoke_dropped_while_backing_off_from_a_timed_out_attempt_is_billed_until_its_timeout()
{
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .build();
    let client = timing_out_client(&fake, 2, Duration::from_secs(5), timeouts, |b| {
        b.sink(receipts.clone()).allocation(Allocation::BusyTime)
    })
    .await;
    invoke(&client, "rt").await.unwrap(); // profile and rates at hand
    fake.hold();
    let call = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(2).await;
    // The attempt times out at 300 ms; the caller gives up at 800 ms, while the
    // SDK backs off for 5 s.
    tokio::time::sleep(Duration::from_millis(800)).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    fake.release();
    assert_eq!(fake.invocations(), 2, "no second attempt went out");

    let all = receipts.all();
    assert_eq!(all.len(), 2, "{all:#?}");
    let cost = &all[1];
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    // Billed: the attempt until its timeout, not until the drop (0.8 s).
    assert!(
        cost.usage.latency >= Duration::from_millis(250)
            && cost.usage.latency < Duration::from_millis(600),
        "billed {:?}",
        cost.usage.latency
    );
    // Busy time, worked by hand: 0.3 s ÷ 3600 × 0.23 USD/h = 0.0000191666…; the
    // receipt's own latency µs / 3.6e9 h × 0.23.
    let compute = line(cost, LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(cost.usage.latency);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
    // The notes say what is billed: the attempt until its timeout, not the
    // call until the drop.
    crate::support::receipts::assert_noted_containing(
        cost,
        "1 of the attempts timed out after the request was sent: billed as if the model \
         ran until the timeout",
    );
    crate::support::receipts::assert_noted_containing(
        cost,
        "the caller dropped the call while the SDK was backing off between attempts",
    );
    crate::support::receipts::assert_not_noted_containing(cost, "until then");
}

/// An adopter's retry classifier that retries the model's errors (424), as a
/// service whose model fails now and then may set.
#[derive(Debug)]
struct RetryModelErrors;

impl aws_sdk_sagemakerruntime::config::retry::ClassifyRetry for RetryModelErrors {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_sagemakerruntime::config::interceptors::InterceptorContext,
    ) -> aws_sdk_sagemakerruntime::config::retry::RetryAction {
        use aws_sdk_sagemakerruntime::config::retry::RetryAction;
        match ctx.response() {
            Some(response) if response.status().as_u16() == 424 => RetryAction::server_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "tests::RetryModelErrors"
    }
}

/// End to end through the SDK's retries (the fake's latency is real time, so
/// this cannot tell each attempt rounded up from their sum rounded up once every
/// time: the exact case, which fails on a sum rounded once, is the library's
/// `serverless_bills_each_attempt_that_reached_the_model_rounded_up_on_its_own`).
#[tokio::test]
async fn a_serverless_call_retried_on_model_errors_bills_each_attempt_rounded_up() {
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(10))
                    .with_use_static_exponential_base(true),
            )
            .retry_classifier(RetryModelErrors)
            .build(),
    );
    let client = sls_on_3_gb(Client::builder(&sdk_config))
        .runtime_client(runtime)
        .build()
        .unwrap();
    // The model takes 50 ms, then fails, three times.
    *fake.state.latency.lock().unwrap() = Duration::from_millis(50);
    fake.fail_invocations(424, "ModelError", "boom");
    let (_, cost) = invoke_failure(invoke(&client, "sls").await.unwrap_err());
    let cost = cost.expect("the model ran: the failure has its receipt");
    assert_eq!(fake.invocations(), 3);
    assert_eq!(cost.usage.attempts, 3);
    crate::support::receipts::assert_noted(
        &cost,
        "3 attempts: 3 reached the model and are billed, 0 were not",
    );
    // AWS bills each request rounded up to the millisecond: each attempt took the
    // model's 50 ms and a little more, so bills 51 ms at least; 3 × 51 ms =
    // 0.153 s × 0.00006 USD/s (3 GB, us-east-1) = 0.00000918 USD at least. Each
    // rounded up on its own adds less than a millisecond per attempt to their
    // time together, rounded up once.
    let compute = line(&cost, LineItem::Compute);
    assert!(compute.quantity >= dec("0.153"), "{compute:?}");
    let together_ms = cost.usage.latency.as_micros().div_ceil(1000);
    assert!(
        compute.quantity * Decimal::from(1000) <= Decimal::from(together_ms + 2),
        "{compute:?} for {:?}",
        cost.usage.latency
    );
    assert_eq!(
        compute.cost_usd(),
        Some(r12(compute.quantity * dec("0.00006")))
    );
    assert!(line_cost(&cost, LineItem::Compute) >= dec("0.00000918"));
}

/// A credentials provider that fails (an SSO session expired).
#[derive(Debug)]
struct FailingCredentials;

impl aws_credential_types::provider::ProvideCredentials for FailingCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async {
            Err(
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    "the SSO session has expired",
                ),
            )
        })
    }
}

#[tokio::test]
async fn a_call_without_credentials_to_sign_it_is_refused_before_sending() {
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    let receipts = Receipts::default();
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .credentials_provider(FailingCredentials)
            .build(),
    );
    let client = rt_on_one_m5(&fake)
        .await
        .runtime_client(runtime)
        .sink(receipts.clone())
        .build()
        .unwrap();
    let err = invoke(&client, "rt").await.unwrap_err();
    assert!(err.refused_before_sending(), "{err:?}");
    assert!(err.cost().is_none());
    assert_eq!(fake.invocations(), 0, "nothing was sent");
    assert!(receipts.all().is_empty());
    // A call that went out and failed was not refused.
    fake.fail_invocations(424, "ModelError", "boom");
    let sent = invoke(&client_for(&fake).await, "rt").await.unwrap_err();
    assert!(!sent.refused_before_sending(), "{sent:?}");
}

#[tokio::test]
async fn a_call_whose_endpoint_the_sdk_cannot_resolve_is_refused_before_sending() {
    // FIPS with a custom endpoint URL: SageMaker Runtime's endpoint rules refuse it
    // ("FIPS and custom endpoint are not supported") before anything is sent.
    let fake = fake_with_demo_endpoints().await;
    let sdk_config = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .use_fips(true)
            .build(),
    );
    let client = rt_on_one_m5(&fake)
        .await
        .runtime_client(runtime)
        .build()
        .unwrap();
    let err = invoke(&client, "rt").await.unwrap_err();
    assert!(err.refused_before_sending(), "{err:?}");
    assert!(err.cost().is_none());
    assert_eq!(fake.invocations(), 0, "nothing was sent");
}

#[tokio::test]
async fn the_interceptor_meters_a_call_the_sdk_times_out_after_sending() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let receipts = Receipts::default();
    let meter = sagemeter::Meter::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .allocation(Allocation::BusyTime)
        .sink(receipts.clone())
        .build_meter()
        .unwrap();
    let sdk = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&config)
            .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );
    fake.hold();
    let err = sdk
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    fake.release();
    assert!(
        matches!(
            err,
            aws_sdk_sagemakerruntime::error::SdkError::TimeoutError(_)
        ),
        "{err:?}"
    );
    meter.shutdown().await.unwrap(); // the receipt is made in the background
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].usage.outcome, Outcome::Cancelled);
    // Billed from the request to the timeout: the 300 ms of the operation
    // timeout, which counts from the operation's start, less the time before
    // the request went out (signing, connecting: milliseconds, more on a busy
    // machine), plus the time the drop took.
    let latency = all[0].usage.latency;
    assert!(
        latency > Duration::from_millis(150) && latency < Duration::from_secs(1),
        "{latency:?}"
    );
    // Busy time at 0.23 USD/h (ml.m5.xlarge, us-east-1) for the call's latency.
    // Busy time, worked by hand: latency µs / 3.6e9 h, at 0.23 USD/h.
    let compute = line(&all[0], LineItem::Compute);
    let billed_hours = crate::support::by_hand::hours(all[0].usage.latency);
    assert_eq!(compute.quantity, billed_hours);
    assert_eq!(compute.cost_usd(), Some(r12(billed_hours * dec("0.23"))));
    assert_eq!(meter.totals().calls, 1);
}

/// A listener that never accepts, its queue of one connection full: the kernel
/// drops further connection requests, so connecting to it hangs. Its URL, and what
/// keeps it so.
fn unconnectable() -> (String, impl Sized) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let queued: Vec<_> = (0..4)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok())
        .collect();
    (format!("http://{addr}"), (listener, queued))
}

/// A client of `fake`'s endpoints whose SageMaker Runtime calls go to `url`, with
/// `timeouts` and no retries.
async fn client_of(
    fake: &FakeSageMaker,
    url: String,
    timeouts: TimeoutConfig,
    receipts: &Receipts,
) -> Client {
    let sdk_config = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .endpoint_url(url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts)
            .build(),
    );
    Client::builder(&sdk_config)
        .runtime_client(runtime)
        .price_source(FixedPrices::us_east_1())
        .sink(receipts.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_invoke_the_sdk_times_out_while_connecting_makes_no_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let (url, _listener) = unconnectable();
    // The attempt timeout fires while the connection is still being made (the
    // connect and read timeouts are far longer): the request never went out.
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(20))
        .build();
    let client = client_of(&fake, url, timeouts, &receipts).await;
    let (source, cost) = invoke_failure(invoke(&client, "rt").await.unwrap_err());
    assert!(
        matches!(
            source,
            aws_sdk_sagemakerruntime::error::SdkError::TimeoutError(_)
        ),
        "{source:?}"
    );
    assert!(cost.is_none(), "{cost:?}");

    // Dropped by its caller while connecting: nothing reached SageMaker either.
    let dropped = tokio::time::timeout(Duration::from_millis(100), invoke(&client, "rt")).await;
    assert!(dropped.is_err(), "the call did not hang: {dropped:?}");
    client.meter().shutdown().await.unwrap();
    assert!(receipts.all().is_empty(), "{:#?}", receipts.all());
    assert_eq!(client.meter().totals().calls, 0);
}

#[tokio::test]
async fn an_invoke_whose_connection_times_out_makes_no_receipt() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let (url, listener) = unconnectable();
    // The read timeout runs from the start of the request, connecting included:
    // longer than the connect timeout, so that the connect timeout is the one that
    // fires.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_secs(5))
        .build();
    let client = client_of(&fake, url, timeouts, &receipts).await;
    let (source, cost) = invoke_failure(invoke(&client, "rt").await.unwrap_err());
    assert!(
        matches!(&source, aws_sdk_sagemakerruntime::error::SdkError::DispatchFailure(f) if f.is_timeout()),
        "{source:?}"
    );
    assert!(cost.is_none(), "{cost:?}");
    drop(listener);
    assert!(receipts.all().is_empty());
    assert_eq!(client.meter().totals().calls, 0);
}

#[tokio::test]
async fn calls_that_target_one_of_two_variants_share_that_variants_instances() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![
                VariantProfile::instance("a", "ml.m5.xlarge", 1),
                VariantProfile::instance("b", "ml.m5.xlarge", 1),
            ],
        ))
        .price_source(FixedPrices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap();
    // Warm: the profile is known, so each variant's clock knows its instances.
    request(&client, "rt")
        .target_variant("a")
        .send()
        .await
        .unwrap();
    fake.hold();
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(request(&client, "rt").target_variant("a").send()))
        .collect();
    fake.wait_for_invocations(3).await;
    time.advance(Duration::from_secs(36));
    fake.release();
    for call in calls {
        let cost = call.await.unwrap().unwrap().into_parts().1;
        // Two calls on variant a's one instance for 36 s: half an instance each,
        // 18 s = 0.005 h × 0.23 USD/h = 0.00115 USD (not the whole instance that
        // counting variant b's instance too would give).
        let compute = line(&cost, LineItem::Compute);
        assert_eq!(compute.quantity, dec("0.005"));
        assert_eq!(compute.cost_usd(), Some(dec("0.00115")));
        // Variant a accrued 1 × 0.23 USD/h × 0.01 h = 0.0023 USD over the 36 s.
        let accrual = cost.accrual.unwrap();
        assert_eq!(accrual.accrued_usd, dec("0.0023"));
        assert!(
            accrual.utilisation.is_none_or(|u| u <= Decimal::ONE),
            "{accrual:?}"
        );
    }
}

#[tokio::test]
async fn first_calls_that_name_the_only_variant_share_the_endpoints_clock_too() {
    let fake = fake_with_demo_endpoints().await;
    let (client, time, _) = shared_instances_client(&fake, 1).await;
    // The very first calls, before the endpoint's profile is applied: one names
    // the variant, one does not.
    fake.hold();
    let named = tokio::spawn(request(&client, "rt").target_variant("AllTraffic").send());
    let unnamed = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(2).await;
    time.advance(Duration::from_secs(10));
    fake.release();
    // One instance, two calls for 10 s: 5 s each, 1/720 h = 0.001388…
    // (rounded down at 18 places) × 0.23 USD/h = 0.000319444444 (rounded down),
    // within the instance's 10 s (0.000638888889 USD), not 10 s each.
    for call in [named, unnamed] {
        let cost = call.await.unwrap().unwrap().into_parts().1;
        assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.000319444444"));
        let utilisation = cost.accrual.unwrap().utilisation;
        assert!(
            utilisation.is_none_or(|u| u <= Decimal::ONE),
            "{utilisation:?}"
        );
    }
}

#[tokio::test]
async fn calls_that_name_the_only_variant_share_the_endpoints_clock() {
    let fake = fake_with_demo_endpoints().await;
    let (client, time, _) = shared_instances_client(&fake, 1).await;
    invoke(&client, "rt").await.unwrap(); // the profile is known
    fake.hold();
    let named = tokio::spawn(request(&client, "rt").target_variant("AllTraffic").send());
    let unnamed = tokio::spawn(invoke(&client, "rt"));
    fake.wait_for_invocations(3).await;
    time.advance(Duration::from_secs(36));
    fake.release();
    // One instance, two calls for 36 s, one naming the variant: 18 s each,
    // 0.005 h × 0.23 USD/h = 0.00115 USD.
    let named = named.await.unwrap().unwrap().into_parts().1;
    let unnamed = unnamed.await.unwrap().unwrap().into_parts().1;
    for cost in [named, unnamed] {
        assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.00115"));
    }
}

#[tokio::test]
async fn a_failing_profile_refresh_is_retried_after_a_pause_not_on_every_call() {
    let fake = fake_with_demo_endpoints().await;
    let conf = fake.sdk_config().await;
    let (time, shared) = manual_clock();
    let sagemaker = aws_sdk_sagemaker::Client::from_conf(
        aws_sdk_sagemaker::config::Builder::from(&conf)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let client = Client::builder(&conf)
        .sagemaker_client(sagemaker)
        .price_source(FixedPrices::us_east_1())
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    let settle = async || {
        while client.meter().background_tasks() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    // Whether a receipt says it was priced on a profile whose refresh fails.
    let kept_note = |cost: &sagemeter::Cost| {
        cost.notes
            .iter()
            .find(|n| n.contains("refreshing it has failed"))
            .cloned()
    };
    // Described at 08:00:00 (the manual clock's start, 1,800,000,000 s).
    let first = invoke(&client, "rt").await.unwrap();
    assert_eq!(kept_note(first.cost()), None, "freshly described");
    let described = fake.describe_calls();
    *fake.state.describe_error.lock().unwrap() = Some("ThrottlingException".into());
    time.advance(Duration::from_secs(61)); // the profile is due for a refresh
    for i in 0..20 {
        let response = invoke(&client, "rt").await.unwrap();
        assert!(
            response.cost().is_fully_priced(),
            "the last good profile is kept"
        );
        // The first call started the refresh, which may land after its receipt;
        // every call after it is priced on the kept profile, and says so: when
        // it was described (08:00:00), since when refreshing it fails (61 s on),
        // and why, with no caller's identity.
        if i > 0 {
            let note = kept_note(response.cost()).expect("the kept profile is noted");
            assert!(
                note.starts_with(
                    "endpoint profile described at 2027-01-15T08:00:00Z; refreshing it has \
                     failed since 2027-01-15T08:01:01Z (could not discover endpoint `rt`: "
                ),
                "{note}"
            );
            assert!(note.contains("priced on that profile"), "{note}");
            assert!(
                note.contains("<principal>") && !note.contains("User: test"),
                "{note}"
            );
        }
        settle().await;
    }
    assert_eq!(
        fake.describe_calls() - described,
        1,
        "one failed refresh, then a pause"
    );
    // After the pause (30 s, the refresh interval's cap), one more try, which works.
    *fake.state.describe_error.lock().unwrap() = None;
    time.advance(Duration::from_secs(30));
    invoke(&client, "rt").await.unwrap();
    settle().await;
    assert_eq!(fake.describe_calls() - described, 2);
    let fresh = invoke(&client, "rt").await.unwrap();
    settle().await;
    assert_eq!(fake.describe_calls() - described, 2, "fresh again");
    assert_eq!(kept_note(fresh.cost()), None, "refreshed: no note");
}

#[tokio::test]
async fn an_async_submission_answered_with_a_model_error_code_is_an_error_without_a_receipt() {
    use aws_smithy_mocks::{MockResponseInterceptor, create_mock_http_client, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    // SageMaker never answers a submission this way, but a proxy or an emulator may.
    let rule =
        mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint_async).then_http_response(|| {
            let mut response = Response::new(
                StatusCode::try_from(424).unwrap(),
                SdkBody::from(r#"{"Message":"from a proxy"}"#),
            );
            response
                .headers_mut()
                .insert("x-amzn-ErrorType", "ModelError");
            response
        });
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sagemakerruntime::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .http_client(create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&rule))
            .build(),
    );
    let receipts = Receipts::default();
    let sdk_config = aws_types::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let meter = sagemeter::Meter::builder(&sdk_config)
        .without_discovery()
        .endpoint_profile(
            EndpointProfile::new(
                "q",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_source(FixedPrices::us_east_1())
        .sink(receipts.clone())
        .build_meter()
        .unwrap();
    let client = Client::from_parts(runtime, meter);
    let err = client
        .invoke_endpoint_async()
        .endpoint_name("q")
        .input_location("s3://bucket/key")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvokeAsync { .. }), "{err:?}");
    assert!(
        receipts.all().is_empty(),
        "nothing was queued, nothing billed"
    );
}

#[tokio::test]
async fn the_interceptor_settles_budgets_and_an_enforced_one_refuses_before_sending() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope};

    // Alerting: every call's cost counts.
    let meter = sagemeter::Meter::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .budget(Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("1")).unwrap())
        .build_meter()
        .unwrap();
    let sdk = intercepted(&config, &meter);
    for _ in 0..3 {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
            .await
            .unwrap();
    }
    while meter.totals().calls < 3 || meter.background_tasks() > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let spent = meter.totals().client_usd;
    assert!(spent > Decimal::ZERO);
    assert_eq!(meter.budget_status()[0].spent_usd, spent);
    assert_eq!(meter.budget_status()[0].reserved_usd, Decimal::ZERO);

    // Enforced, $0.01 a day, each call estimated at $0.01: while one call is in
    // flight (its $0.01 held), the next has no room: refused before anything is
    // sent.
    let meter = sagemeter::Meter::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .budget(
            Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("0.01"))
                .unwrap()
                .estimate(sagemeter::budget::Estimate::Fixed { usd: dec("0.01") })
                .unwrap(),
        )
        .build_meter()
        .unwrap();
    let sdk = intercepted(&config, &meter);
    fake.hold();
    let before = fake.invocations();
    let in_flight = {
        let sdk = sdk.clone();
        tokio::spawn(async move {
            sdk.invoke_endpoint()
                .endpoint_name("rt")
                .body(Blob::new("{}"))
                .send()
                .await
        })
    };
    fake.wait_for_invocations(before + 1).await;
    let err = sdk
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(fake.invocations(), before + 1, "nothing more was sent");
    fake.release();
    in_flight.await.unwrap().unwrap();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut refused = false;
    while let Some(e) = source {
        refused |= matches!(
            e.downcast_ref::<Error>(),
            Some(Error::BudgetExceeded { .. })
        );
        source = e.source();
    }
    assert!(refused, "{err:?}");
}

#[tokio::test]
async fn an_absurd_rate_from_a_custom_price_source_is_unpriced_not_a_panic() {
    let fake = fake_with_demo_endpoints().await;
    let mut prices = FixedPrices::us_east_1();
    // 10²⁸ USD an hour: × 8 instances is more than a decimal holds.
    prices.0.insert(
        PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
        dec("10000000000000000000000000000"),
    );
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 8)],
        ))
        .price_source(prices)
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    let compute = line(response.cost(), LineItem::Compute);
    assert!(compute.cost_usd().is_none(), "{compute:?}");
    let reason = format!("{:?}", compute.price);
    assert!(reason.contains("not a price"), "{reason}");
    // The data lines keep their plausible rates: 2 bytes in at 0.016 USD/GB.
    assert_eq!(
        line_cost(response.cost(), LineItem::DataIn),
        dec("0.00000000003")
    );
}

/// An SDK client of `config` with `meter`'s interceptor on its config.

#[tokio::test]
async fn the_interceptor_makes_one_cancelled_receipt_for_a_call_dropped_after_sending() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let meter = crate::support::m5_priced_by_overrides(&fake, "rt", 1)
        .await
        .time_source(shared)
        .sink(receipts.clone())
        .build_meter()
        .unwrap();
    let sdk = intercepted(&fake.sdk_config().await, &meter);
    fake.hold();
    let call = tokio::spawn(async move {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
            .await
    });
    fake.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(2));
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    fake.release();
    meter.shutdown().await.unwrap();

    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    let cost = &all[0];
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    // Alone on its one instance for the 2 s until the drop: 2/3600 h
    // = 0.000555555555555555 (18 places, rounded down) × 0.23 USD/h
    // = 0.00012777777777777765 → 0.000127777777 (rounded down).
    assert_eq!(line_cost(cost, LineItem::Compute), dec("0.000127777777"));
    // The 2-byte body went in: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003.
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    assert_eq!(meter.totals().calls, 1);
}

#[tokio::test]
async fn the_interceptor_meters_each_call_once_however_it_is_wrapped_or_registered() {
    let fake = fake_with_demo_endpoints().await;
    let config = fake.sdk_config().await;
    let fake = &fake;
    let meter = || async move {
        crate::support::rt_priced_by_overrides(fake)
            .await
            .build_meter()
            .unwrap()
    };

    // A Client over an SDK client that has the interceptor, on the same meter.
    let shared = meter().await;
    let client = Client::from_parts(intercepted(&config, &shared), shared.clone());
    invoke(&client, "rt").await.unwrap();
    shared.shutdown().await.unwrap();
    assert_eq!(shared.totals().calls, 1, "Client::from_parts");

    // A Client built over it: the Client's call owns the request.
    let theirs = meter().await;
    let client = crate::support::rt_priced_by_overrides(fake)
        .await
        .runtime_client(intercepted(&config, &theirs))
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap();
    theirs.shutdown().await.unwrap();
    assert_eq!(client.meter().totals().calls, 1, "runtime_client");
    assert_eq!(
        theirs.totals().calls,
        0,
        "runtime_client: the interceptor's"
    );

    // send_metered on an SDK client that has the interceptor.
    let shared = meter().await;
    intercepted(&config, &shared)
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send_metered(&shared)
        .await
        .unwrap();
    shared.shutdown().await.unwrap();
    assert_eq!(shared.totals().calls, 1, "send_metered");

    // The interceptor on the client's config and again on the request.
    let twice = meter().await;
    intercepted(&config, &twice)
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .customize()
        .interceptor(sagemeter::client::MeteringInterceptor::new(twice.clone()))
        .send()
        .await
        .unwrap();
    twice.shutdown().await.unwrap();
    assert_eq!(twice.totals().calls, 1, "registered twice");
}

#[tokio::test]
async fn settlements_whose_clocks_disagree_warn_once_not_once_each() {
    let logs = logs::capture();
    let fake = fake_with_demo_endpoints().await;
    let client = rt_on_one_m5(&fake).await.build().unwrap();
    // A hundred invocations, each settled as completing a different time before
    // it was sent (with its output's size: the clocks are the one reason).
    for behind in 1..=100 {
        let submitted = submit_async(&client, "rt", 1024).await;
        let at = std::time::SystemTime::from(submitted.pending().submitted_at());
        let (_, _, pending) = submitted.into_parts();
        let completion =
            sagemeter::client::AsyncCompletion::completed_at(at - Duration::from_secs(behind))
                .output_bytes(512);
        let cost = client
            .meter()
            .settle_async(pending, completion)
            .await
            .unwrap();
        assert!(!cost.is_fully_priced());
    }
    let warned = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| l["fields"]["message"] == "call could not be fully priced; its receipt says so")
        .count();
    assert_eq!(warned, 1);
}

#[tokio::test]
async fn many_variants_without_a_volume_size_leave_the_unpriced_warning_its_room() {
    let logs = logs::capture();
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint("wide", vec![FakeVariant::instance("v0", "ml.m5.xlarge", 1)]);
    fake.add_endpoint(
        "nope",
        vec![FakeVariant::instance("AllTraffic", "ml.nope.xlarge", 1)],
    );
    // 1,024 variants whose configs state no volume size (as on NVMe types): each
    // is noted once. Then an endpoint of a type no price source knows: its call
    // is unpriced, and that is warned about once at WARN, as the docs promise
    // for up to 1,024 endpoints and reasons, whatever was noted before.
    let wide = (0..1024)
        .map(|i| VariantProfile::instance(format!("v{i}"), "ml.m5.xlarge", 1))
        .collect();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new("wide", wide))
        .endpoint_profile(EndpointProfile::new(
            "nope",
            vec![VariantProfile::instance("AllTraffic", "ml.nope.xlarge", 1)],
        ))
        .price_source(FixedPrices::us_east_1())
        .build()
        .unwrap();
    for endpoint in ["wide", "nope"] {
        client
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .body(Blob::new("{}"))
            .send()
            .await
            .unwrap();
    }
    let warned: Vec<_> = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| l["fields"]["message"] == "call could not be fully priced; its receipt says so")
        .filter(|l| l["fields"]["endpoint"] == "nope")
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", logs.at_level("DEBUG"));
}

#[tokio::test]
async fn a_model_error_from_an_endpoint_discovery_cannot_find_keeps_its_receipt() {
    // The runtime answers (the model ran, and failed); DescribeEndpoint knows no
    // such endpoint.
    let fake = FakeSageMaker::start().await;
    *fake.state.invoke_error.lock().unwrap() = Some((424, "ModelError".into()));
    let client = client_for(&fake).await;
    let err = invoke(&client, "gone").await.unwrap_err();
    let Error::Invoke {
        cost: Some(cost), ..
    } = &err
    else {
        panic!("expected Invoke with its receipt, got {err:?}");
    };
    assert_eq!(cost.usage.outcome, Outcome::Error);
    // Compute is unpriced with discovery's answer; the 2-byte body is billed:
    // 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11 → 0.00000000003.
    assert!(
        cost.unpriced_reasons().any(|r| r.contains("not found")),
        "{cost:#?}"
    );
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    assert_eq!(client.meter().totals().calls, 1);
}

/// A sink whose first `record` panics.
#[derive(Debug, Clone, Default)]
struct PanicsOnce(Arc<std::sync::atomic::AtomicBool>);

impl sagemeter::sink::CostSink for PanicsOnce {
    fn record(&self, _cost: &Cost) {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a sink's bug");
        }
    }
}

#[tokio::test]
async fn a_background_task_that_panics_does_not_hold_up_shutdown() {
    let fake = fake_with_demo_endpoints().await;
    let meter = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(PanicsOnce::default())
        .build_meter()
        .unwrap();
    let sdk = intercepted(&fake.sdk_config().await, &meter);
    // Priced in the background, where the sink panics.
    sdk.invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    meter
        .shutdown_within(Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(meter.background_tasks(), 0);
}

/// A sink whose `record` blocks until it is let go (a synchronous client to a
/// service that is slow), and that panics on the receipts it is told to.
#[derive(Debug, Default)]
struct Blocking {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    recorded: std::sync::Mutex<Vec<String>>,
    panic_on_first: bool,
}

impl Blocking {
    fn let_go(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn recorded(&self) -> Vec<String> {
        self.recorded.lock().unwrap().clone()
    }
}

impl sagemeter::sink::CostSink for Blocking {
    fn record(&self, cost: &Cost) {
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
        let mut recorded = self.recorded.lock().unwrap();
        recorded.push(cost.call_id.clone());
        if self.panic_on_first && recorded.len() == 1 {
            drop(recorded);
            panic!("a sink's bug");
        }
    }
}

/// A `Queued` sink takes a blocking `record` off the call path: calls are answered
/// while it is still blocked, and every receipt reaches it, in order, by the
/// shutdown; one recorded after is refused and counted.
#[tokio::test]
async fn a_queued_sink_keeps_a_blocking_record_off_the_calls() {
    use sagemeter::sink::Queued;
    let fake = fake_with_demo_endpoints().await;
    let queued = Arc::new(Queued::new(Blocking::default()));
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(queued.clone())
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(invoke(&client, "rt").await.unwrap().cost().call_id.clone());
    }
    // Five calls answered, the sink still blocked in its first record.
    assert!(queued.inner().recorded().is_empty());
    assert_eq!(queued.stats().accepted, 5);
    queued.inner().let_go();
    client.shutdown().await.unwrap();
    assert_eq!(queued.inner().recorded(), ids);
    assert_eq!(queued.stats().written, 5);
    // Shut down: refused and counted, the call itself unaffected.
    invoke(&client, "rt").await.unwrap();
    assert_eq!(queued.stats().refused_closed, 1);
    assert_eq!(queued.inner().recorded().len(), 5);
}

/// A full queue drops a receipt and counts it rather than wait; a panic in the
/// sink loses that receipt only.
#[tokio::test]
async fn a_queued_sink_drops_what_does_not_fit_and_survives_a_panic() {
    use sagemeter::sink::Queued;
    let fake = fake_with_demo_endpoints().await;
    let client_with = |queued: &Arc<Queued<Blocking>>| {
        let sink = queued.clone();
        let fake = &fake;
        async move {
            let builder = crate::support::rt_priced_by_overrides(fake).await;
            builder.sink(sink).build().unwrap()
        }
    };
    let queued = Arc::new(Queued::with_capacity(Blocking::default(), 1));
    let client = client_with(&queued).await;
    for _ in 0..3 {
        invoke(&client, "rt").await.unwrap();
    }
    // The thread holds at most one (blocked) and the queue one more: of three,
    // at least one did not fit.
    let stats = queued.stats();
    assert!(stats.dropped_full >= 1, "{stats:?}");
    assert_eq!(stats.accepted + stats.dropped_full, 3, "{stats:?}");
    assert_eq!(
        client.meter().totals().calls,
        3,
        "the calls counted all the same"
    );
    queued.inner().let_go();
    client.meter().flush().await.unwrap();
    assert_eq!(queued.stats().written, stats.accepted);

    let panicking = Blocking {
        panic_on_first: true,
        ..Blocking::default()
    };
    panicking.let_go();
    let queued = Arc::new(Queued::new(panicking));
    let client = client_with(&queued).await;
    for _ in 0..3 {
        invoke(&client, "rt").await.unwrap();
    }
    client.meter().flush().await.unwrap();
    let stats = queued.stats();
    assert_eq!((stats.lost_on_error, stats.written), (1, 2), "{stats:?}");
}

/// A sink that panics on every receipt, under a name of its own.
#[derive(Debug)]
struct PanicsAlways(&'static str);

impl sagemeter::sink::CostSink for PanicsAlways {
    fn record(&self, _cost: &Cost) {
        panic!("a sink's bug");
    }

    fn name(&self) -> &str {
        self.0
    }
}

/// A sink that panics on every receipt, called by the meter or behind a queue,
/// loses each receipt counted (the metric, the queue's stats) and is warned about
/// once for the three, not once per receipt; a flush does not fail for it.
#[tokio::test]
async fn a_sink_that_panics_on_every_receipt_is_counted_each_time_and_warned_about_once_a_while() {
    use metrics_util::debugging::DebuggingRecorder;
    use sagemeter::sink::Queued;
    let logs = logs::capture();
    let recorder = DebuggingRecorder::new();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let fake = fake_with_demo_endpoints().await;
    let queued = Arc::new(Queued::new(PanicsAlways("panics-behind-a-queue")));
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(PanicsAlways("panics-on-the-call-path"))
        .sink(queued.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        invoke(&client, "rt").await.unwrap();
    }
    client.meter().flush().await.unwrap();

    // The meter's sink: each receipt lost is counted under the sink's name (the
    // queue's thread counts its own into the process's recorder, not this
    // thread's: see the queued sink's tests).
    let counted = lost_to_a_panic(&recorder, "panics-on-the-call-path");
    assert_eq!(counted, 3);
    let stats = queued.stats();
    assert_eq!((stats.lost_on_error, stats.written), (3, 0), "{stats:?}");

    // One WARN for each sink's three losses: on this thread for the meter's...
    let warns = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| l.to_string().contains("panics-on-the-call-path"))
        .count();
    assert_eq!(warns, 1, "{:#?}", logs.lines());
    // ... on the queue's thread for the other.
    let warns = logs::everything()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["level"] == "WARN" && l.to_string().contains("panics-behind-a-queue"))
        .count();
    assert_eq!(warns, 1);
}

/// A receipt made while its thread is panicking (a call sent, then dropped as
/// its task unwinds) goes to the sinks on a background task, not during the
/// unwinding, where a sink's panic would abort the process: a sink that panics
/// on it there is caught and counted as on the call path, and the sinks after
/// it still get the receipt.
#[tokio::test]
async fn a_receipt_made_while_the_thread_panics_reaches_the_sinks_and_a_panicking_one_is_counted() {
    use metrics_util::debugging::DebuggingRecorder;
    // This test's runtime runs on this one thread, the background task too: the
    // thread's recorder counts what that task records.
    let recorder = DebuggingRecorder::new();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(PanicsAlways("panics-after-an-unwinding"))
        .sink(receipts.clone())
        .build()
        .unwrap();
    // The call reaches the model, held there; then its task panics with it.
    fake.hold();
    let (sent, wait) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let call = invoke(&client, "rt");
        tokio::spawn(async move {
            tokio::pin!(call);
            tokio::select! {
                _ = &mut call => unreachable!("the model is held"),
                _ = wait => {}
            }
            panic!("the application's bug, the call still in flight");
        })
    };
    fake.wait_for_invocations(1).await;
    sent.send(()).unwrap();
    assert!(task.await.unwrap_err().is_panic());
    for _ in 0..1000 {
        if !receipts.all().is_empty() && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    fake.release();
    // The receipt, cancelled, reached the sink after the one that panicked.
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].usage.outcome, sagemeter::usage::Outcome::Cancelled);
    let counted = lost_to_a_panic(&recorder, "panics-after-an-unwinding");
    assert_eq!(counted, 1);
}

/// A sink whose flush fails (a full disk, say) or never ends (a broker that is
/// down).
#[derive(Debug)]
enum Stuck {
    Fails,
    Hangs,
}

impl sagemeter::sink::CostSink for Stuck {
    fn record(&self, _cost: &Cost) {}

    fn name(&self) -> &str {
        match self {
            Stuck::Fails => "full-disk",
            Stuck::Hangs => "broker-down",
        }
    }

    fn flush(&self) -> sagemeter::pricing::BoxFuture<'_, std::io::Result<()>> {
        match self {
            Stuck::Fails => Box::pin(async { Err(std::io::Error::other("no space left")) }),
            Stuck::Hangs => Box::pin(std::future::pending()),
        }
    }
}

/// A sink that counts its flushes.
#[derive(Debug, Default)]
struct Flushes(std::sync::atomic::AtomicU32);

impl sagemeter::sink::CostSink for Flushes {
    fn record(&self, _cost: &Cost) {}

    fn flush(&self) -> sagemeter::pricing::BoxFuture<'_, std::io::Result<()>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// A sink that fails to flush, or never finishes, holds up neither the other
/// sinks nor shutdown beyond its timeout, and the error names it.
#[tokio::test]
async fn a_sink_that_fails_or_hangs_keeps_no_other_sink_from_flushing() {
    let fake = fake_with_demo_endpoints().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let ledger = Arc::new(sagemeter::ledger::JsonlLedger::open(&path).unwrap());
    let flushes = Arc::new(Flushes::default());
    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(Stuck::Fails)
        .sink(flushes.clone())
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap();
    let err = client.meter().flush().await.unwrap_err();
    assert!(matches!(err, Error::Flush(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "flush incomplete: sink `full-disk` failed: no space left"
    );
    // The sink after the failing one was flushed all the same.
    assert_eq!(flushes.0.load(std::sync::atomic::Ordering::SeqCst), 1);

    let client = crate::support::rt_priced_by_overrides(&fake)
        .await
        .sink(Stuck::Hangs)
        .sink(ledger.clone())
        .build()
        .unwrap();
    invoke(&client, "rt").await.unwrap();
    // A bounded flush names the sink that did not finish, and the ledger beside
    // it is written.
    let err = client
        .meter()
        .flush_within(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "flush incomplete: sink `broker-down` did not finish within 200ms"
    );
    assert_eq!(sagemeter::ledger::read_all(&path).unwrap().records.len(), 1);
    let started = std::time::Instant::now();
    let err = client
        .meter()
        .shutdown_within(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.to_string(),
        "shutdown incomplete: sink `broker-down` did not finish within 200ms"
    );
    // The ledger after it was closed with the receipt.
    assert_eq!(sagemeter::ledger::read_all(&path).unwrap().records.len(), 1);
    assert_eq!(ledger.stats().written, 1);
}

/// Shutdown waits for the calls in flight, so that their receipts reach the sinks
/// (a server's graceful shutdown ends its last requests as the meter shuts down),
/// and says how many it could not wait for.
#[tokio::test]
async fn shutdown_waits_for_calls_in_flight_and_says_how_many_it_could_not() {
    let fake = fake_with_demo_endpoints().await;
    let dir = tempfile::tempdir().unwrap();
    let opened = |name: &str| {
        let path = dir.path().join(name);
        let ledger = Arc::new(sagemeter::ledger::JsonlLedger::open(&path).unwrap());
        (path, ledger)
    };
    let fake = &fake;
    let build = |ledger: &Arc<sagemeter::ledger::JsonlLedger>| {
        let ledger = ledger.clone();
        async move {
            crate::support::rt_priced_by_overrides(fake)
                .await
                .sink(ledger)
                .build()
                .unwrap()
        }
    };
    let in_flight = |client: &Client| {
        let client = client.clone();
        tokio::spawn(async move { invoke(&client, "rt").await })
    };

    // A call answered 300 ms after it was sent, within the wait (half of 5 s).
    let (path, ledger) = opened("waited.jsonl");
    let client = build(&ledger).await;
    fake.next_latencies(&[Duration::from_millis(300)]);
    let call = in_flight(&client);
    fake.wait_for_invocations(1).await;
    assert_eq!(client.meter().calls_in_flight(), 1);
    client
        .shutdown_within(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(client.meter().calls_in_flight(), 0);
    let cost = call.await.unwrap().unwrap().cost().clone();
    let written = sagemeter::ledger::read_all(&path).unwrap().records;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].call_id, cost.call_id);

    // A call held past the wait (half of 200 ms): said, and its receipt, made
    // once the ledger is closed, is counted in the totals but written nowhere.
    let (path, ledger) = opened("held.jsonl");
    let client = build(&ledger).await;
    fake.hold();
    let call = in_flight(&client);
    fake.wait_for_invocations(2).await;
    let err = client
        .shutdown_within(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "shutdown incomplete: 1 call(s) still in flight after 100ms: their receipts \
         will reach no sink (the totals and budgets count them)"
    );
    fake.release();
    call.await.unwrap().unwrap();
    assert_eq!(client.meter().totals().calls, 1);
    assert!(
        sagemeter::ledger::read_all(&path)
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(ledger.stats().refused_closed, 1);
}

/// An async settlement waiting for its endpoint's rates is a call in flight too:
/// shutdown waits for its receipt to reach the sinks.
#[tokio::test]
async fn shutdown_waits_for_a_settlement_still_finding_its_rates() {
    use sagemeter::client::{AsyncCompletion, PendingInference};
    let fake = fake_with_demo_endpoints().await;
    let submitted = crate::support::submit_async(&client_for(&fake).await, "rt", 1024).await;
    let copy = serde_json::to_string(submitted.pending()).unwrap();
    // The settling process's meter is cold, and DescribeEndpoint takes 300 ms.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settled.jsonl");
    let ledger = Arc::new(sagemeter::ledger::JsonlLedger::open(&path).unwrap());
    let settler = priced(&fake).await.sink(ledger.clone()).build().unwrap();
    let pending: PendingInference = serde_json::from_str(&copy).unwrap();
    let described = fake.describe_calls();
    let meter = settler.meter().clone();
    let settling = tokio::spawn(async move {
        let done = AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(10);
        meter.settle_async(pending, done).await.unwrap()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // The settlement is waiting for its endpoint's profile.
    while fake.describe_calls() == described {
        assert!(std::time::Instant::now() < deadline, "never described");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(settler.meter().calls_in_flight(), 1);
    settler
        .shutdown_within(Duration::from_secs(5))
        .await
        .unwrap();
    let settled = settling.await.unwrap();
    assert!(settled.is_async_settlement());
    let written = sagemeter::ledger::read_all(&path).unwrap().records;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].call_id, settled.call_id);
}

#[tokio::test]
async fn an_amortized_async_settlement_bills_its_stated_time_at_one_instance() {
    let fake = fake_with_demo_endpoints().await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(
            EndpointProfile::new(
                "rt",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
            )
            .asynchronous(),
        )
        .price_override(
            PriceKey::AsyncInference {
                region: "us-east-1".into(),
                instance_type: "ml.m5.xlarge".into(),
            },
            dec("0.23"),
        )
        .price_source(FixedPrices::us_east_1())
        .allocation(Allocation::Amortized)
        .time_source(shared)
        .build()
        .unwrap();
    let first = submit_async(&client, "rt", 1024).await;
    let second = submit_async(&client, "rt", 1024).await;
    let ten_seconds = || sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10));
    let first = first.settle(ten_seconds()).await;
    time.advance(Duration::from_secs(100));
    let second = second.settle(ten_seconds()).await;
    // Each job: the 10 s stated, at one instance (not the 2 instances × 100 s
    // between the settlements): 10/3600 h × 0.23 USD/h = 0.00063888… USD
    // → 0.000638888889 (12 places).
    for cost in [&first, &second] {
        assert_eq!(line_cost(cost, LineItem::Compute), dec("0.000638888889"));
    }
}

#[tokio::test]
async fn serverless_time_a_fraction_of_a_microsecond_past_a_millisecond_bills_the_next_one() {
    let fake = fake_with_demo_endpoints().await;
    let client = client_for(&fake).await;
    let submitted = submit_async(&client, "sls", 0).await;
    let cost = submitted
        .settle(sagemeter::client::AsyncCompletion::processed_for(
            Duration::from_nanos(800_000_500),
        ))
        .await;
    // AWS bills serverless inference by the millisecond, rounded up: 800.0005 ms
    // is 801 ms = 0.801 s, × 0.00006 USD/s (3 GB) = 0.00004806 USD.
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(compute.quantity, dec("0.801"));
    assert_eq!(line_cost(&cost, LineItem::Compute), dec("0.00004806"));
    // The receipt states the time in whole microseconds, rounded up too.
    assert_eq!(cost.usage.latency, Duration::from_micros(800_001));
}

#[tokio::test]
async fn a_control_plane_that_never_answers_holds_a_first_call_no_longer_than_the_discovery_timeout()
 {
    let fake = fake_with_demo_endpoints().await;
    let conf = fake.sdk_config().await;
    // A listener whose connections the kernel completes and nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sagemaker = aws_sdk_sagemaker::Client::from_conf(
        aws_sdk_sagemaker::config::Builder::from(&conf)
            .endpoint_url(format!("http://{}", silent.local_addr().unwrap()))
            .build(),
    );
    let client = Client::builder(&conf)
        .sagemaker_client(sagemaker)
        .price_source(FixedPrices::us_east_1())
        .discovery_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), invoke(&client, "rt"))
        .await
        .expect("the call returns once discovery has timed out")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let cost = response.cost();
    assert!(
        cost.unpriced_reasons().any(|r| r
            .contains("DescribeEndpoint did not answer within the discovery's time limit (300ms")),
        "{cost:#?}"
    );
    // Data is billed all the same: 2 / 2³⁰ GB × 0.016 USD/GB = 2.98e-11
    // → 0.00000000003.
    assert_eq!(line_cost(cost, LineItem::DataIn), dec("0.00000000003"));
    drop(silent);
}

#[tokio::test]
async fn a_sink_that_panics_loses_neither_the_answer_nor_the_budget_charge_nor_the_other_sinks() {
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
    let logs = logs::capture();
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("10"))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.01") })
        .unwrap();
    let client = priced(&fake)
        .await
        .sink(PanicsOnce::default())
        .sink(receipts.clone())
        .budget(budget)
        .build()
        .unwrap();

    let response = invoke(&client, "rt").await.expect("the model answered");
    let cost = response.cost().clone();

    // The call came back with its receipt, and the sink after the panicking one
    // still saw it.
    let seen = receipts.all();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].call_id, cost.call_id);
    assert_eq!(seen[0].cost_usd, cost.cost_usd);
    // The budget was charged what the totals count, and holds nothing back.
    let status = &client.meter().budget_status()[0];
    assert!(cost.cost_usd > Decimal::ZERO);
    assert_eq!(client.meter().totals().client_usd, cost.cost_usd);
    assert_eq!(status.spent_usd, cost.cost_usd);
    assert_eq!(status.reserved_usd, Decimal::ZERO);
    // One WARN names the sink; nothing of the receipt's payload is in it.
    let warns: Vec<_> = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| l.to_string().contains("PanicsOnce"))
        .collect();
    assert_eq!(warns.len(), 1, "{:#?}", logs.lines());

    // The next call goes through every sink as usual.
    let next = invoke(&client, "rt").await.unwrap();
    assert_eq!(receipts.all().len(), 2);
    assert_eq!(
        client.meter().budget_status()[0].spent_usd,
        cost.cost_usd + next.cost().cost_usd
    );
}

#[tokio::test]
async fn an_invoke_answered_then_dropped_while_its_price_is_found_is_billed_as_answered() {
    let (logs, _guard) = crate::support::spans::capture();
    let fake = fake_with_demo_endpoints().await;
    // A silent control plane: discovery gives up after 2 s; the invoke answers at once.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    let receipts = Receipts::default();
    let client = priced(&fake)
        .await
        .discovery_timeout(Duration::from_secs(2))
        .sink(receipts.clone())
        .build()
        .unwrap();

    let gave_up_after = Duration::from_millis(500);
    let dropped = tokio::time::timeout(gave_up_after, invoke(&client, "rt")).await;
    assert!(dropped.is_err(), "still finding the endpoint's profile");
    assert_eq!(fake.invocations(), 1, "the model answered");

    // The receipt is made once discovery gives up (in the background).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receipts.all().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no receipt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cost = receipts.all().remove(0);
    // Billed as the model answered: its outcome, its bytes out and tokens (the
    // fake's body: 12 prompt, 30 completion tokens), and its time until the
    // answer, before the caller gave up; not `cancelled` at the drop.
    assert_eq!(cost.usage.outcome, Outcome::Ok, "{:#?}", cost.notes);
    assert_eq!(cost.usage.input_tokens, Some(12));
    assert_eq!(cost.usage.output_tokens, Some(30));
    assert_eq!(
        cost.usage.bytes_out,
        fake.state.response_body.lock().unwrap().len() as u64
    );
    assert_eq!(cost.usage.variant.as_deref(), Some("AllTraffic"));
    assert!(
        cost.usage.latency < gave_up_after,
        "billed {:?}, past the answer",
        cost.usage.latency
    );
    // Priced in the background, in the call's span: the span closes with the
    // receipt's outcome and cost, and the cost line is logged in it.
    client.shutdown().await.unwrap();
    let spans = logs.closed_spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let field = |name: &str| spans[0].get(name).map(String::as_str);
    assert_eq!(field("outcome"), Some("ok"), "{spans:#?}");
    assert_eq!(field("cost_usd"), Some(cost.cost_usd.to_string().as_str()));
    let lines = logs.cost_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0].get("@span").map(String::as_str),
        Some("sagemaker.invoke")
    );
}

#[tokio::test]
async fn an_async_input_size_beyond_what_sagemaker_takes_is_refused_unsent() {
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let client = priced(&fake).await.sink(receipts.clone()).build().unwrap();
    let submit = |bytes: u64| {
        client
            .invoke_endpoint_async()
            .endpoint_name("rt")
            .input_location("s3://fake-bucket/input/1.json")
            .input_bytes(bytes)
            .send()
    };
    // One byte past 1 GB (2^30 bytes): refused before anything is sent, no receipt.
    let err = submit((1 << 30) + 1).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("at most 1073741824 bytes")),
        "{err:?}"
    );
    assert_eq!(
        fake.state
            .async_submissions
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(receipts.all().is_empty());
    // 1 GB is taken: 1 GB × 0.016 USD of data in.
    let submitted = submit(1 << 30).await.unwrap();
    assert_eq!(
        line(submitted.cost(), LineItem::DataIn).cost_usd(),
        Some(dec("0.016"))
    );
}

#[tokio::test]
async fn an_async_submission_accepted_then_dropped_while_its_price_is_found_keeps_its_receipt() {
    let fake = fake_with_demo_endpoints().await;
    // A silent control plane: discovery gives up after 2 s; the submission is
    // accepted (202) at once.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    let receipts = Receipts::default();
    let client = priced(&fake)
        .await
        .discovery_timeout(Duration::from_secs(2))
        .usage_charges("rt", UsageCharges::default().per_1000_calls(Decimal::ONE))
        .sink(receipts.clone())
        .build()
        .unwrap();

    let submit = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/1.json")
        .input_bytes(1 << 29)
        .send();
    let dropped = tokio::time::timeout(Duration::from_millis(500), submit).await;
    assert!(dropped.is_err(), "still finding the endpoint's profile");

    // SageMaker queued it: its submission is billed once discovery gives up (in
    // the background), not lost with the dropped future.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receipts.all().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no receipt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cost = receipts.all().remove(0);
    assert_eq!(
        cost.usage.operation,
        sagemeter::usage::Operation::InvokeEndpointAsync
    );
    assert!(
        cost.call_id.starts_with("async-req-"),
        "SageMaker's request id: {}",
        cost.call_id
    );
    assert_eq!(cost.usage.outcome, Outcome::Ok);
    // What a submission bills: 2^29 bytes = 0.5 GB × $0.016/GB = $0.008 of data in,
    // and the $1 per 1,000 inferences fee = $0.001: $0.009. No compute: it is the
    // settlement's, and the dropped call's pending invocation is gone.
    assert_eq!(line(&cost, LineItem::DataIn).cost_usd(), Some(dec("0.008")));
    assert_eq!(
        line(&cost, LineItem::Inference).cost_usd(),
        Some(dec("0.001"))
    );
    assert_eq!(cost.cost_usd, dec("0.009"));
    assert!(
        cost.lines.iter().all(|l| l.item != LineItem::Compute),
        "{cost:#?}"
    );
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("dropped") && n.contains("never settled")),
        "{:?}",
        cost.notes
    );
    assert_eq!(client.meter().totals().client_usd, dec("0.009"));
}

/// A [`timing_out_client`] on `fake` that tries twice, 10 ms apart, each attempt
/// timing out after 300 ms, with `rt`'s profile and rates already at hand.
async fn two_attempts_of_300_ms(fake: &FakeSageMaker) -> Client {
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .build();
    let client = timing_out_client(fake, 2, Duration::from_millis(10), timeouts, |b| b).await;
    invoke(&client, "rt").await.unwrap();
    client
}

#[tokio::test]
async fn a_retried_call_bills_data_in_once_for_each_attempt_that_reached_the_model() {
    let fake = fake_with_demo_endpoints().await;
    let client = two_attempts_of_300_ms(&fake).await;
    // Attempt 1 reaches the model and times out after sending; attempt 2 answers.
    fake.next_latencies(&[Duration::from_secs(2), Duration::ZERO]);
    let mebibyte = vec![b' '; 1 << 20];
    let response = request(&client, "rt")
        .body(Blob::new(mebibyte))
        .send()
        .await
        .unwrap();
    let cost = response.cost();
    assert_eq!(cost.usage.attempts, 2);
    crate::support::receipts::assert_noted(
        cost,
        "2 attempts: 2 reached the model and are billed, 0 were not",
    );
    // SageMaker received (and bills) the 1 MiB request twice:
    // 2 × 2²⁰ B / 2³⁰ B/GB = 2 × 1/1024 GB = 0.001953125 GB,
    // × 0.016 USD/GB = 0.00003125 USD (once would be 0.000015625).
    let data_in = line(cost, LineItem::DataIn);
    assert_eq!(data_in.quantity, dec("0.001953125"));
    assert_eq!(data_in.cost_usd(), Some(dec("0.00003125")));
}

/// An async submission only queues its input: SageMaker bills the data in of the
/// submission it was seen to accept, once, not of one that timed out (which may
/// have been queued too, unseen: a lower bound, as its note says).
#[tokio::test]
async fn a_retried_async_submission_bills_its_data_in_once() {
    let fake = fake_with_demo_endpoints().await;
    let client = two_attempts_of_300_ms(&fake).await;
    // Attempt 1 is held past its 300 ms timeout after it was sent; attempt 2 is
    // let through and accepted (202).
    fake.hold();
    let submissions = || {
        fake.state
            .async_submissions
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let submit = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/1.json")
        .input_bytes(1 << 29)
        .send();
    let release = async {
        while submissions() < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        fake.release();
    };
    let (submitted, ()) = tokio::join!(submit, release);
    let submitted = submitted.unwrap();
    let cost = submitted.cost();
    assert_eq!(submissions(), 2);
    assert_eq!(cost.usage.attempts, 2);
    crate::support::receipts::assert_noted(
        cost,
        "2 attempts: 1 accepted by SageMaker (a 2XX answer, one whose body was cut off \
         included), each a submission queued and billed: its data in and per-inference fee",
    );
    // The attempt that timed out may have been queued too, unseen: not said
    // not to be, and the figures are said to be a lower bound.
    crate::support::receipts::assert_noted(
        cost,
        "1 of the attempts timed out after the request was sent: SageMaker may have queued \
         them as well, unbilled here, so data in and the per-inference fee are a lower bound",
    );
    assert!(
        !cost
            .notes
            .iter()
            .any(|n| n.contains("once for each") || n.contains("were not")),
        "{:?}",
        cost.notes
    );
    // One input seen queued: 2²⁹ B / 2³⁰ B/GB = 0.5 GB × 0.016 USD/GB = 0.008
    // USD (not 2 × 0.5 GB = 1 GB, 0.016 USD, for an attempt not seen accepted).
    assert_eq!(cost.usage.bytes_in, 1 << 29);
    let data_in = line(cost, LineItem::DataIn);
    assert_eq!(data_in.quantity, dec("0.5"));
    assert_eq!(data_in.cost_usd(), Some(dec("0.008")));
}

/// An async submission whose 202 answer is cut off was queued: the SDK tries
/// again (reading the body failed, a transient response error), and SageMaker
/// refusing every retry does not unqueue it. The call fails with the receipt of
/// what SageMaker will process: the input's data in and an inference, with its
/// budget reservation settled, not released.
#[tokio::test]
async fn an_async_submission_accepted_then_failing_its_retries_carries_its_receipt() {
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
    let fake = fake_with_demo_endpoints().await;
    let receipts = Receipts::default();
    let budget = |budget: sagemeter::Result<Budget>| {
        budget
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.05") })
            .unwrap()
    };
    let meter = rt_on_one_m5(&fake)
        .await
        .sink(receipts.clone())
        .usage_charges("rt", UsageCharges::default().per_1000_calls(dec("0.50")))
        .budget(budget(Budget::enforce(
            BudgetScope::endpoint("rt"),
            BudgetPeriod::Day,
            dec("1"),
        )))
        .budget(budget(Budget::alert(
            BudgetScope::endpoint("rt"),
            BudgetPeriod::Day,
            dec("1"),
        )))
        .build_meter()
        .unwrap();
    let (url, requests) = crate::support::accepting_once_then_unavailable().await;
    let client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::from_conf(
            crate::support::three_attempts_at(&fake.sdk_config().await, &url).build(),
        ),
        meter.clone(),
    );
    let err = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/1.json")
        .input_bytes(1 << 29)
        .send()
        .await
        .unwrap_err();
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert!(
        matches!(&err, Error::InvokeAsync { cost: Some(_), .. }),
        "{err:?}"
    );
    assert!(!err.refused_before_sending());
    // Queued already: a retry would run the job twice, though the last answer
    // (a 503) alone would be retryable.
    assert!(!err.is_retryable());
    // SageMaker's last word: the retries' 503.
    let Error::InvokeAsync { source, .. } = &err else {
        unreachable!()
    };
    assert_eq!(
        source.as_service_error().and_then(|e| e.meta().code()),
        Some("ServiceUnavailable")
    );
    let cost = err.cost().expect("the accepted submission's receipt");
    assert_eq!(
        cost.usage.operation,
        sagemeter::usage::Operation::InvokeEndpointAsync
    );
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert_eq!(cost.usage.attempts, 3);
    // One input queued: 2²⁹ B / 2³⁰ B/GB = 0.5 GB × 0.016 USD/GB = 0.008 USD,
    // and one inference, 0.50 USD / 1,000 = 0.0005 USD: 0.0085 USD. No compute
    // here: nothing will settle it.
    assert_eq!(cost.usage.bytes_in, 1 << 29);
    let data_in = line(cost, LineItem::DataIn);
    assert_eq!(data_in.quantity, dec("0.5"));
    assert_eq!(data_in.cost_usd(), Some(dec("0.008")));
    let fee = line(cost, LineItem::Inference);
    assert_eq!(
        (fee.quantity, fee.cost_usd()),
        (Decimal::ONE, Some(dec("0.0005")))
    );
    assert!(
        cost.lines.iter().all(|l| l.item != LineItem::Compute),
        "{cost:#?}"
    );
    assert_eq!(cost.cost_usd, dec("0.0085"));
    crate::support::receipts::assert_noted(
        cost,
        "3 attempts: 1 accepted by SageMaker (a 2XX answer, one whose body was cut off \
         included), each a submission queued and billed: its data in and per-inference fee",
    );
    crate::support::receipts::assert_noted_containing(
        cost,
        "its output location is unknown, so the job's compute",
    );
    // Nothing of the answer's body on the receipt.
    assert!(!format!("{cost:?}").contains("InferenceId"), "{cost:#?}");
    // The same receipt in the sinks, once.
    let recorded = receipts.all();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].call_id, cost.call_id);
    assert_eq!(recorded[0].cost_usd, dec("0.0085"));
    // Its reservation is settled, not released: the alerting budget counts the
    // receipt's 0.0085 USD; the enforced one counts it at no less than its 0.05
    // USD estimate, the job's compute running with no receipt to settle it.
    let status = meter.budget_status();
    let spent = |mode| {
        let status = status.iter().find(|s| s.mode == mode).unwrap();
        (status.spent_usd, status.reserved_usd)
    };
    assert_eq!(
        spent(sagemeter::budget::BudgetMode::Alert),
        (dec("0.0085"), Decimal::ZERO)
    );
    assert_eq!(
        spent(sagemeter::budget::BudgetMode::Enforce),
        (dec("0.05"), Decimal::ZERO)
    );
}

/// An `SdkConfig` made by hand without a behavior version: the SDK's clients
/// panic when built from it; sagemeter gives it the latest (as `aws_config`'s
/// `behavior-version-latest` does for configs it loads) and the client works.
#[tokio::test]
async fn a_config_without_a_behavior_version_gets_the_latest_not_a_panic() {
    let fake = fake_with_demo_endpoints().await;
    let loaded = fake.sdk_config().await;
    let bare = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new("us-east-1"))
        .endpoint_url(loaded.endpoint_url().unwrap())
        .credentials_provider(loaded.credentials_provider().unwrap())
        .build();
    assert!(bare.behavior_version().is_none());
    let client = sagemeter::Client::builder(&bare)
        .price_source(FixedPrices::us_east_1())
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    assert!(response.cost().cost_usd > Decimal::ZERO);
    #[cfg(feature = "account")]
    {
        let _account = sagemeter::account::Account::builder(&bare).build();
    }
}

/// A `text/plain` answer is the model's own text: a `{"usage": …}` it writes is
/// not a count from the server, whether the call went through the client, the
/// interceptor or an async output said to be plain text (as on a stream).
#[tokio::test]
async fn a_plain_text_answer_is_not_read_for_tokens() {
    let fake = fake_with_demo_endpoints().await;
    let body = br#"{"usage":{"prompt_tokens":0,"completion_tokens":999999999}}"#;
    fake.set_response_body(body);
    fake.set_response_content_type("text/plain; charset=utf-8");
    let receipts = Receipts::default();
    let config = fake.sdk_config().await;
    let client = Client::builder(&config)
        .price_source(FixedPrices::us_east_1())
        .sink(receipts.clone())
        .build()
        .unwrap();
    let tokens = |cost: &Cost| (cost.usage.input_tokens, cost.usage.output_tokens);

    let response = invoke(&client, "rt").await.unwrap();
    assert_eq!(tokens(response.cost()), (None, None));

    intercepted(&config, client.meter())
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    // Pricing runs off the call path: wait for the receipt, bounded.
    for _ in 0..200 {
        if receipts.all().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let intercepted = receipts.all();
    assert_eq!(intercepted.len(), 2);
    assert_eq!(tokens(&intercepted[1]), (None, None));

    let settled = submit_async(&client, "rt", 1024)
        .await
        .settle(
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(1))
                .output(body)
                .output_content_type("text/plain"),
        )
        .await;
    assert_eq!(tokens(&settled), (None, None));

    // The same body as JSON is the server's count: 0 in, 999,999,999 out.
    fake.set_response_content_type("application/json");
    let response = invoke(&client, "rt").await.unwrap();
    assert_eq!(tokens(response.cost()), (Some(0), Some(999_999_999)));
}

/// A container answering the model's raw text as `text/plain`: the counter the
/// user gave reads it (the built-in detection would not).
#[tokio::test]
async fn a_plain_text_answer_is_given_to_the_users_token_counter() {
    use sagemeter::usage::{FnTokenCounter, TokenUsage};
    let fake = fake_with_demo_endpoints().await;
    fake.set_response_body(b"Paris is the capital of France.");
    fake.set_response_content_type("text/plain; charset=utf-8");
    let client = priced(&fake)
        .await
        .token_counter(FnTokenCounter::new(|b: &[u8]| {
            Some(TokenUsage::new(0, b.len() as u64 / 4))
        }))
        .build()
        .unwrap();
    let response = invoke(&client, "rt").await.unwrap();
    let usage = &response.cost().usage;
    // 31 bytes at one token per 4 bytes, rounded down: 7 out, the 0 in it says.
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(0), Some(7))
    );
}

/// A whole stream of server-sent events answered through `InvokeEndpoint` (vLLM
/// asked to stream, `text/event-stream`) is read event by event, as a response
/// stream is: its last chunk's usage is the call's.
#[tokio::test]
async fn a_whole_event_stream_answer_is_read_for_its_final_usage() {
    let fake = fake_with_demo_endpoints().await;
    fake.set_response_body(
        b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
          data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":3}}\n\n\
          data: [DONE]\n\n",
    );
    fake.set_response_content_type("text/event-stream");
    let client = client_for(&fake).await;
    let response = invoke(&client, "rt").await.unwrap();
    let usage = &response.cost().usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(21), Some(3))
    );
}
