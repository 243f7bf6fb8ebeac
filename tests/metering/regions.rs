//! One meter, one region. A meter's prices, sharing clocks, accruals and budgets
//! are those of its endpoints' region: a call sent through an SDK client of another
//! region would be priced at the meter's region's rates and land on the meter's
//! endpoint of the same name. Such a call is refused before it is sent, whichever
//! way in (`Client`, `send_metered`, the SDK interceptor, the builder), with a
//! configuration error naming both regions; and an async invocation submitted in
//! one region is not settled by another region's meter.
//!
//! The worked example: `chat` in us-east-1 runs on 2 × ml.m5.xlarge at $0.23/h,
//! `chat` in eu-west-1 on 1 × ml.g5.xlarge at $1.57/h. Two seconds of the eu
//! endpoint's time bill 2/3600 h × 1.57 USD/h = $0.000872222 (to 12 places,
//! 0.000872222222); priced by the us-east-1 meter they would be 2/3600 × 0.23 =
//! $0.000127778, on the us endpoint's totals and budgets, with a receipt saying
//! us-east-1.

use crate::support::by_hand::{gigabytes, r12};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::receipts::Receipts;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_types::SdkConfig;
use aws_types::region::Region;
use rust_decimal::Decimal;
use sagemeter::billing::LineItem;
use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
use sagemeter::client::{AsyncCompletion, PendingInference};
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::PriceKey;
use sagemeter::{Client, ClientBuilder, Error, Meter, SendMeteredExt};
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The fake's SDK config (its URL, test credentials), for `region`.
async fn config_in(fake: &FakeSageMaker, region: &'static str) -> SdkConfig {
    fake.sdk_config()
        .await
        .to_builder()
        .region(Region::from_static(region))
        .build()
}

/// An SDK client of the fake in `region`.
async fn sdk_in(fake: &FakeSageMaker, region: &'static str) -> aws_sdk_sagemakerruntime::Client {
    aws_sdk_sagemakerruntime::Client::new(&config_in(fake, region).await)
}

/// `client`'s `InvokeEndpoint` of `chat` with an empty JSON body, to send.
fn chat(client: &Client) -> sagemeter::client::InvokeEndpoint {
    client
        .invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
}

/// The SDK client `sdk`'s `InvokeEndpoint` of `chat` with an empty JSON body,
/// to send.
fn sdk_chat(
    sdk: &aws_sdk_sagemakerruntime::Client,
) -> aws_sdk_sagemakerruntime::operation::invoke_endpoint::builders::InvokeEndpointFluentBuilder {
    sdk.invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
}

/// A fake serving `chat` (the same name in both regions: one fake).
async fn fake_with_chat() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "chat",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake
}

/// A meter of `chat` in `region`, as deployed there in the worked example
/// (us-east-1: 2 × ml.m5.xlarge at 0.23 USD/h; eu-west-1: 1 × ml.g5.xlarge at
/// 1.57 USD/h, the published on-demand rates), real-time and async alike, with
/// a fixed profile and override prices: no discovery, no Price List.
async fn chat_meter(fake: &FakeSageMaker, region: &'static str, receipts: &Receipts) -> Meter {
    chat_builder(fake, region, receipts)
        .await
        .build_meter()
        .unwrap()
}

/// [`chat_meter`]'s builder, to add to.
async fn chat_builder(
    fake: &FakeSageMaker,
    region: &'static str,
    receipts: &Receipts,
) -> ClientBuilder {
    let (instance_type, count, usd) = match region {
        "us-east-1" => ("ml.m5.xlarge", 2, "0.23"),
        "eu-west-1" => ("ml.g5.xlarge", 1, "1.57"),
        _ => unreachable!(),
    };
    let profile = |name: &str| {
        EndpointProfile::new(
            name,
            vec![VariantProfile::instance("AllTraffic", instance_type, count)],
        )
    };
    let data = |key| (key, dec("0.016"));
    let (data_in, data_out) = (
        data(PriceKey::DataIn {
            region: region.into(),
        }),
        data(PriceKey::DataOut {
            region: region.into(),
        }),
    );
    Meter::builder(&config_in(fake, region).await)
        .without_discovery()
        .without_metrics()
        .endpoint_profile(profile("chat"))
        .endpoint_profile(profile("chat-async").asynchronous())
        .price_override(PriceKey::hosting(region, instance_type), dec(usd))
        .price_override(
            PriceKey::AsyncInference {
                region: region.into(),
                instance_type: instance_type.into(),
            },
            dec(usd),
        )
        .price_override(data_in.0, data_in.1)
        .price_override(data_out.0, data_out.1)
        .sink(receipts.clone())
}

/// [`chat_meter`] in us-east-1 under an enforced budget of $0.01 a day on
/// the client, each call estimated at $0.006.
async fn us_under_a_cent_a_day(fake: &FakeSageMaker, receipts: &Receipts) -> Meter {
    let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("0.01"))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.006") })
        .unwrap();
    chat_builder(fake, "us-east-1", receipts)
        .await
        .budget(budget)
        .build_meter()
        .unwrap()
}

/// The priced compute line of `cost`.
fn compute_cost(cost: &sagemeter::Cost) -> Decimal {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .and_then(|l| l.cost_usd())
        .unwrap()
}

/// The calls `meter` has counted once it counts `n` (priced off the call
/// path), or after about 2 s.
async fn calls_metered(meter: &Meter, n: u64) -> u64 {
    for _ in 0..200 {
        if meter.totals().calls == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    meter.totals().calls
}

/// A client of `sdk_config` priced at eu-west-1's rates on purpose
/// (`ClientBuilder::region`), calling through `runtime`, with `chat` on one
/// ml.g5.xlarge and no discovery, metrics or prices.
fn priced_at_eu_west_1(
    sdk_config: &SdkConfig,
    runtime: aws_sdk_sagemakerruntime::Client,
) -> ClientBuilder {
    Client::builder(sdk_config)
        .region("eu-west-1")
        .runtime_client(runtime)
        .without_discovery()
        .without_metrics()
        .endpoint_profile(EndpointProfile::new(
            "chat",
            vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 1)],
        ))
        .price_source(crate::support::NoPrices)
}

/// `err` is the configuration error of `option`, naming the SDK client's region
/// (eu-west-1), the meter's (us-east-1), and what to do.
#[track_caller]
fn assert_other_region(err: &Error, option: &str) {
    let Error::Config(config) = err else {
        panic!("not a configuration error: {err:?}")
    };
    assert_eq!(config.option, option, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("is for eu-west-1, and this meter meters the endpoints of us-east-1"),
        "{text}"
    );
    assert!(
        text.contains("make one Meter (or Client) per region"),
        "{text}"
    );
}

/// Nothing reached the fake, nothing was metered or left in flight.
#[track_caller]
fn assert_nothing_sent_or_metered(fake: &FakeSageMaker, meter: &Meter, receipts: &Receipts) {
    assert_eq!(fake.requests(), 0, "a request reached the fake");
    assert_eq!(meter.totals().calls, 0);
    assert_eq!(meter.totals().client_usd, Decimal::ZERO);
    assert!(receipts.all().is_empty(), "{:#?}", receipts.all());
    assert_eq!(meter.calls_in_flight(), 0);
}

#[tokio::test]
async fn a_client_whose_sdk_client_is_for_another_region_refuses_every_call_unsent() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let client = Client::from_parts(eu_sdk, us.clone());

    let err = chat(&client).send().await.unwrap_err();
    assert_other_region(&err, "Client::from_parts");
    let Err(err) = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .send()
        .await
    else {
        panic!("a stream was sent to eu-west-1 on a us-east-1 meter")
    };
    assert_other_region(&err, "Client::from_parts");
    let err = client
        .invoke_endpoint_async()
        .endpoint_name("chat-async")
        .input_location("s3://bucket/in.json")
        .input_bytes(10)
        .send()
        .await
        .unwrap_err();
    assert_other_region(&err, "Client::from_parts");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);

    // The same meter with an SDK client of its own region calls as usual.
    let us_sdk = sdk_in(&fake, "us-east-1").await;
    let ok = Client::from_parts(us_sdk, us.clone())
        .invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-east-1"));
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn send_metered_through_an_sdk_client_of_another_region_is_refused_unsent() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let err = sdk_chat(&eu_sdk).send_metered(&us).await.unwrap_err();
    assert_other_region(&err, "SendMeteredExt::send_metered");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);

    // An SDK client of the meter's region is metered as usual.
    let us_sdk = sdk_in(&fake, "us-east-1").await;
    let ok = sdk_chat(&us_sdk).send_metered(&us).await.unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-east-1"));
    assert_eq!(us.totals().calls, 1);
}

/// The interceptor refuses, rather than letting the call go unmetered: a call
/// it let through would be billed by AWS and missing from the meter's totals,
/// ledgers and budgets.
#[tokio::test]
async fn the_interceptor_refuses_a_request_for_another_region_unsent() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let eu_sdk = crate::support::intercepted(&config_in(&fake, "eu-west-1").await, &us);
    let err = sdk_chat(&eu_sdk).send().await.unwrap_err();
    let found = Error::find_in(&err).expect("sagemeter's error in the SDK error");
    assert_other_region(found, "MeteringInterceptor::new");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);

    // A client of the meter's region whose one request is overridden to another.
    let us_sdk = crate::support::intercepted(&config_in(&fake, "us-east-1").await, &us);
    let err = sdk_chat(&us_sdk)
        .customize()
        .config_override(
            aws_sdk_sagemakerruntime::config::Builder::default()
                .region(Region::from_static("eu-west-1")),
        )
        .send()
        .await
        .unwrap_err();
    let found = Error::find_in(&err).expect("sagemeter's error in the SDK error");
    assert_other_region(found, "MeteringInterceptor::new");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);
}

#[tokio::test]
async fn the_builder_refuses_a_runtime_or_sagemaker_client_of_another_region() {
    let fake = fake_with_chat().await;
    let us = config_in(&fake, "us-east-1").await;
    let eu = config_in(&fake, "eu-west-1").await;
    let err = Client::builder(&us)
        .runtime_client(aws_sdk_sagemakerruntime::Client::new(&eu))
        .build()
        .unwrap_err();
    assert_other_region(&err, "ClientBuilder::runtime_client");
    let err = Client::builder(&us)
        .sagemaker_client(aws_sdk_sagemaker::Client::new(&eu))
        .build()
        .unwrap_err();
    assert_other_region(&err, "ClientBuilder::sagemaker_client");
    // Clients of the meter's region are taken.
    Client::builder(&us)
        .runtime_client(aws_sdk_sagemakerruntime::Client::new(&us))
        .sagemaker_client(aws_sdk_sagemaker::Client::new(&us))
        .build()
        .unwrap();
    assert_eq!(fake.requests(), 0);
}

/// `ClientBuilder::region` prices the SDK config's region's endpoints at
/// another region's rates, on purpose: their calls go on; the endpoints' region
/// is the SDK config's.
#[tokio::test]
async fn a_client_priced_at_another_regions_rates_still_calls_its_sdk_configs_region() {
    let fake = fake_with_chat().await;
    let us = config_in(&fake, "us-east-1").await;
    let client = Client::builder(&us)
        .region("us-west-2")
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "chat",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_source(sagemeter::pricing::Snapshot::bundled())
        .build()
        .unwrap();
    assert_eq!(client.meter().region(), "us-west-2");
    assert_eq!(client.meter().endpoint_region(), "us-east-1");
    let ok = chat(&client).send().await.unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-west-2"));
    // An eu-west-1 SDK client is neither region: refused, saying both.
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let err = Client::from_parts(eu_sdk, client.meter().clone())
        .invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "is for eu-west-1, and this meter meters the endpoints of us-east-1, priced at \
             us-west-2's rates"
        ),
        "{err}"
    );
}

/// The worked example's async twin: `chat-async` submitted in eu-west-1, its
/// record kept as JSON and settled later. A us-east-1 meter refuses it (it would
/// price the eu job at the us rate); an eu-west-1 meter settles it at 1.57 USD/h.
#[tokio::test]
async fn an_async_invocation_is_settled_only_by_a_meter_of_its_region() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "chat-async",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    let receipts = Receipts::default();
    let eu = chat_meter(&fake, "eu-west-1", &receipts).await;
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let submitted =
        crate::support::submit_async(&Client::from_parts(eu_sdk, eu), "chat-async", 10).await;
    let kept = serde_json::to_string(submitted.pending()).unwrap();
    assert!(kept.contains(r#""region":"eu-west-1""#), "{kept}");
    let two_seconds = || AsyncCompletion::processed_for(Duration::from_secs(2));

    let us_receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &us_receipts).await;
    let pending: PendingInference = serde_json::from_str(&kept).unwrap();
    let refused = us.settle_async(pending, two_seconds()).await.unwrap_err();
    assert_eq!(refused.error().option, "Meter::settle_async");
    assert_eq!(refused.pending().region(), Some("eu-west-1"));
    let err = Error::from(refused);
    let Error::Config(config) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(config.option, "Meter::settle_async");
    let text = err.to_string();
    assert!(
        text.contains("submitted in eu-west-1, and this meter meters the endpoints of us-east-1"),
        "{text}"
    );
    assert!(us_receipts.all().is_empty());
    assert_eq!(us.totals().calls, 0);

    // Settled where it was submitted: 2 s at one ml.g5.xlarge,
    // 2/3600 h × 1.57 USD/h = 0.000872222… → 0.000872222222 (12 places).
    let eu_receipts = Receipts::default();
    let eu = chat_meter(&fake, "eu-west-1", &eu_receipts).await;
    let pending: PendingInference = serde_json::from_str(&kept).unwrap();
    let settled = eu.settle_async(pending, two_seconds()).await.unwrap();
    let compute = compute_cost(&settled);
    assert_eq!(compute, dec("0.000872222222"));
    assert_eq!(settled.region.as_deref(), Some("eu-west-1"));
}

/// A record kept before records named their region settles as it did: on the
/// meter it is given to.
#[tokio::test]
async fn an_async_record_without_a_region_settles_on_the_meter_given() {
    let fake = FakeSageMaker::start().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let kept = r#"{"endpoint":"chat-async","call_id":"req-1","inference_id":null,
        "output_location":null,"failure_location":null,
        "submitted_at":"2026-01-05T10:00:00Z","variant":"AllTraffic"}"#;
    let pending: PendingInference = serde_json::from_str(kept).unwrap();
    let settled = us
        .settle_async(
            pending,
            AsyncCompletion::processed_for(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    // 2/3600 h × 0.23 USD/h (one ml.m5.xlarge) = 0.000127777… → 0.000127777778.
    let compute = compute_cost(&settled);
    assert_eq!(compute, dec("0.000127777778"));
}

/// A refused settlement gives the pending invocation back, its budget hold still
/// held: the job may still be running, and its compute is billed when the record
/// is settled where it was submitted, charged against the hold.
#[tokio::test]
async fn a_refused_settlement_gives_the_pending_invocation_back_with_its_hold() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "chat-async",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    let receipts = Receipts::default();
    let budget = Budget::enforce(
        BudgetScope::endpoint("chat-async"),
        BudgetPeriod::Day,
        dec("1"),
    )
    .unwrap()
    .estimate(Estimate::Fixed { usd: dec("0.05") })
    .unwrap();
    let eu = chat_builder(&fake, "eu-west-1", &receipts)
        .await
        .budget(budget)
        .build_meter()
        .unwrap();
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let submitted =
        crate::support::submit_async(&Client::from_parts(eu_sdk, eu.clone()), "chat-async", 10)
            .await;
    let (_, submission, pending) = submitted.into_parts();
    // Held: the 0.05 estimate less what the submission cost.
    let held = dec("0.05") - submission.cost_usd;
    let status = || {
        let status = &eu.budget_status()[0];
        (status.spent_usd, status.reserved_usd)
    };
    assert_eq!(status(), (submission.cost_usd, held));

    // The us-east-1 meter refuses it, and gives it back; the hold stands.
    let us = chat_meter(&fake, "us-east-1", &Receipts::default()).await;
    // Its output's size given: fully priced, so charged at its cost, not at the
    // estimate an unpriced line would charge.
    let two_seconds = || AsyncCompletion::processed_for(Duration::from_secs(2)).output_bytes(10);
    let refused = us.settle_async(pending, two_seconds()).await.unwrap_err();
    assert_eq!(refused.error().option, "Meter::settle_async");
    assert_eq!(status(), (submission.cost_usd, held));
    let pending = refused.into_pending();
    assert_eq!(status(), (submission.cost_usd, held));
    assert_eq!(us.totals().calls, 0);

    // Settled by the eu-west-1 meter: 2 s at one ml.g5.xlarge,
    // 2/3600 h × 1.57 USD/h = 0.000872222… → 0.000872222222 (12 places),
    // charged against the hold, which is released.
    let settled = eu.settle_async(pending, two_seconds()).await.unwrap();
    let compute = compute_cost(&settled);
    assert_eq!(compute, dec("0.000872222222"));
    assert_eq!(settled.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        status(),
        (submission.cost_usd + settled.cost_usd, Decimal::ZERO)
    );
}

/// `send_metered` does not hold the SDK client, whose region shows only in the
/// request's configuration: the request's own watch checks it before the call
/// begins. On a cold meter with discovery on, a refused call asks nothing (no
/// DescribeEndpoint in the meter's region, no Price List), and is never in flight.
#[tokio::test]
async fn send_metered_of_another_region_is_refused_before_discovery_or_look_ups() {
    let fake = fake_with_chat().await;
    let us = Meter::builder(&config_in(&fake, "us-east-1").await)
        .without_metrics()
        .price_source(crate::support::NoPrices)
        .build_meter()
        .unwrap();
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let err = sdk_chat(&eu_sdk).send_metered(&us).await.unwrap_err();
    assert_other_region(&err, "SendMeteredExt::send_metered");
    assert_eq!(fake.describe_calls(), 0, "discovery asked for the endpoint");
    assert_eq!(fake.requests(), 0, "a request reached the fake");
    assert_eq!(us.calls_in_flight(), 0);
    assert_eq!(us.background_tasks(), 0);
    // Never on the meter's clocks: no endpoint of that name in its totals.
    assert!(us.totals().by_endpoint.is_empty(), "{:?}", us.totals());
}

/// The configuration error comes first: an exhausted enforced budget would
/// refuse the call anyway, but the call cannot work through that SDK client at
/// all, whatever the budget.
#[tokio::test]
async fn send_metered_of_another_region_under_an_exhausted_budget_is_the_configuration_error() {
    let fake = fake_with_chat().await;
    fake.add_endpoint(
        "chat-async",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let receipts = Receipts::default();
    // Each call is estimated at 0.006 USD against the client's 0.01.
    let us = us_under_a_cent_a_day(&fake, &receipts).await;
    let us_sdk = sdk_in(&fake, "us-east-1").await;
    // A queued async invocation holds its estimate less its submission's cost,
    // so another call's 0.006 no longer fits: 0.006 + 0.006 > 0.01.
    let queued = crate::support::submit_async(
        &Client::from_parts(us_sdk.clone(), us.clone()),
        "chat-async",
        10,
    )
    .await;
    let before = us.budget_status()[0].clone();
    let (submitted, calls) = (fake.requests(), us.totals().calls);
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let err = sdk_chat(&eu_sdk).send_metered(&us).await.unwrap_err();
    assert_other_region(&err, "SendMeteredExt::send_metered");
    assert_eq!(fake.requests(), submitted, "a request reached the fake");
    assert_eq!(us.totals().calls, calls);
    assert_eq!(us.calls_in_flight(), 0);
    let after = &us.budget_status()[0];
    assert_eq!(
        (after.spent_usd, after.reserved_usd),
        (before.spent_usd, before.reserved_usd)
    );
    // Through an SDK client of its region, the same call is the budget's refusal.
    let err = sdk_chat(&us_sdk).send_metered(&us).await.unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    assert_eq!(fake.requests(), submitted);
    drop(queued);
}

/// The interceptor checks the region where the request's configuration is
/// whole: a per-request override INTO the meter's region is metered, not
/// refused for the SDK client's own region.
#[tokio::test]
async fn the_interceptor_meters_a_request_overridden_into_its_region() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let eu_sdk = crate::support::intercepted(&config_in(&fake, "eu-west-1").await, &us);
    sdk_chat(&eu_sdk)
        .customize()
        .config_override(
            aws_sdk_sagemakerruntime::config::Builder::default()
                .region(Region::from_static("us-east-1")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fake.requests(), 1);
    // Priced off the call path: waited for, bounded.
    assert_eq!(calls_metered(&us, 1).await, 1);
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].region.as_deref(), Some("us-east-1"));
}

/// A per-request override AWAY from the meter's region is refused before the
/// call begins: under an exhausted enforced budget, the error is still the
/// configuration's, and the meter's clocks and budgets never saw the call.
#[tokio::test]
async fn the_interceptor_refuses_a_request_overridden_away_before_it_begins() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    // Each call is estimated at 0.006 USD against the client's 0.01; one is held
    // below, so no other fits: 0.006 + 0.006 > 0.01.
    let us = us_under_a_cent_a_day(&fake, &receipts).await;
    let us_sdk = crate::support::intercepted(&config_in(&fake, "us-east-1").await, &us);
    let away = || {
        sdk_chat(&us_sdk)
            .customize()
            .config_override(
                aws_sdk_sagemakerruntime::config::Builder::default()
                    .region(Region::from_static("eu-west-1")),
            )
            .send()
    };
    // With room in the budget: refused, never on the meter's clocks.
    let err = away().await.unwrap_err();
    let found = Error::find_in(&err).expect("sagemeter's error in the SDK error");
    assert_other_region(found, "MeteringInterceptor::new");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);
    assert!(us.totals().by_endpoint.is_empty(), "{:?}", us.totals());
    assert_eq!(us.budget_status()[0].reserved_usd, Decimal::ZERO);

    // With none: still the configuration error, not the budget's.
    fake.add_endpoint(
        "chat-async",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let plain = sdk_in(&fake, "us-east-1").await;
    let queued =
        crate::support::submit_async(&Client::from_parts(plain, us.clone()), "chat-async", 10)
            .await;
    let err = away().await.unwrap_err();
    let found = Error::find_in(&err).expect("sagemeter's error in the SDK error");
    assert_other_region(found, "MeteringInterceptor::new");
    drop(queued);
}

/// `ClientBuilder::region` prices at another region's rates on purpose, and the
/// endpoints are where the runtime client given sends its calls: with no region
/// in the SDK config, a us-east-1 runtime client's calls go on, priced at
/// eu-west-1's rates, as they did before meters had a region of endpoints.
#[tokio::test]
async fn priced_on_purpose_without_an_sdk_region_the_runtime_clients_region_is_the_endpoints() {
    let fake = fake_with_chat().await;
    let no_region = fake.sdk_config().await.to_builder().region(None).build();
    assert!(no_region.region().is_none());
    let client = priced_at_eu_west_1(&no_region, sdk_in(&fake, "us-east-1").await)
        .build()
        .unwrap();
    assert_eq!(client.meter().region(), "eu-west-1");
    assert_eq!(client.meter().endpoint_region(), "us-east-1");
    let ok = chat(&client).send().await.unwrap();
    // Receipts carry the region they are priced in.
    assert_eq!(ok.cost().region.as_deref(), Some("eu-west-1"));
    assert_eq!(fake.invocations(), 1);
}

/// With an SDK config for us-east-1, `region("eu-west-1")` and an eu-west-1
/// runtime client, the endpoints are eu-west-1's, priced at their own rates:
/// the client builds and calls. With discovery on, the default discovery client
/// (the SDK config's, us-east-1) would ask the wrong region: refused, saying so.
#[tokio::test]
async fn priced_on_purpose_the_runtime_clients_region_is_the_endpoints_and_discovery_must_match() {
    let fake = fake_with_chat().await;
    let us = config_in(&fake, "us-east-1").await;
    let eu = config_in(&fake, "eu-west-1").await;
    let client = priced_at_eu_west_1(&us, aws_sdk_sagemakerruntime::Client::new(&eu))
        .build()
        .unwrap();
    assert_eq!(client.meter().region(), "eu-west-1");
    assert_eq!(client.meter().endpoint_region(), "eu-west-1");
    let ok = chat(&client).send().await.unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("eu-west-1"));

    // Discovery on, no SageMaker client given: the SDK config's would ask us-east-1.
    let err = Client::builder(&us)
        .region("eu-west-1")
        .runtime_client(aws_sdk_sagemakerruntime::Client::new(&eu))
        .build()
        .unwrap_err();
    let Error::Config(config) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(config.option, "ClientBuilder::sagemaker_client");
    let text = err.to_string();
    assert!(
        text.contains(
            "the SageMaker client for endpoint discovery, made from the SDK config, is for \
             us-east-1, and this meter meters the endpoints of eu-west-1"
        ),
        "{text}"
    );
    assert!(text.contains("ClientBuilder::without_discovery"), "{text}");
    // A SageMaker client of the endpoints' region is taken.
    Client::builder(&us)
        .region("eu-west-1")
        .runtime_client(aws_sdk_sagemakerruntime::Client::new(&eu))
        .sagemaker_client(aws_sdk_sagemaker::Client::new(&eu))
        .build()
        .unwrap();
}

/// Where a regionless SDK client sends its requests: the fake, signed for
/// us-east-1 as the endpoint's own auth scheme says (an endpoint resolver of the
/// application's), with no region in the client's configuration.
#[derive(Debug)]
struct SignedForUsEast1(String);

impl aws_sdk_sagemakerruntime::config::endpoint::ResolveEndpoint for SignedForUsEast1 {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_sagemakerruntime::config::endpoint::Params,
    ) -> aws_sdk_sagemakerruntime::config::endpoint::EndpointFuture<'a> {
        use aws_smithy_types::Document;
        let scheme: std::collections::HashMap<String, Document> = [
            ("name", "sigv4"),
            ("signingName", "sagemaker"),
            ("signingRegion", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Document::from(v)))
        .collect();
        aws_sdk_sagemakerruntime::config::endpoint::EndpointFuture::ready(Ok(
            aws_sdk_sagemakerruntime::config::endpoint::Endpoint::builder()
                .url(self.0.clone())
                .property("authSchemes", vec![Document::Object(scheme)])
                .build(),
        ))
    }
}

/// An SDK client with no region configured says nothing to check against: its
/// calls are metered as they were before meters had a region (the check is
/// skipped, not failed), whichever way in.
#[tokio::test]
async fn an_sdk_client_with_no_region_is_not_checked() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let no_region = fake.sdk_config().await.to_builder().region(None).build();
    let regionless = |interceptor: bool| {
        let mut config = aws_sdk_sagemakerruntime::config::Builder::from(&no_region)
            .endpoint_resolver(SignedForUsEast1(fake.url.clone()));
        if interceptor {
            config = config.interceptor(sagemeter::client::MeteringInterceptor::new(us.clone()));
        }
        aws_sdk_sagemakerruntime::Client::from_conf(config.build())
    };
    let sdk = regionless(false);
    assert!(sdk.config().region().is_none());

    let ok = Client::from_parts(sdk.clone(), us.clone())
        .invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-east-1"));
    sdk_chat(&sdk).send_metered(&us).await.unwrap();
    regionless(true)
        .invoke_endpoint()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(fake.invocations(), 3);
    // The interceptor's call is priced off the call path: waited for, bounded.
    assert_eq!(calls_metered(&us, 3).await, 3);

    // Without the resolver the SDK cannot sign (no region): its own error, as
    // before, from the very poll in which the call began; nothing left behind.
    let unsigned = aws_sdk_sagemakerruntime::Client::new(&no_region);
    let err = sdk_chat(&unsigned).send_metered(&us).await.unwrap_err();
    assert!(matches!(err, Error::Invoke { cost: None, .. }), "{err:?}");
    assert_eq!(fake.invocations(), 3);
    assert_eq!(us.calls_in_flight(), 0);
    assert_eq!(us.totals().calls, 3);
}

/// A `Client` request's own SDK settings (`config_override`) apply to that
/// request: here its endpoint URL, where the client's points at a port nothing
/// listens on. A region in them is where the request goes, checked as the
/// client's is: one away from the meter's is refused unsent, whichever operation.
#[tokio::test]
async fn a_clients_request_config_override_applies_and_its_region_is_checked() {
    let fake = fake_with_chat().await;
    fake.add_endpoint(
        "chat-async",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let us_config = config_in(&fake, "us-east-1").await;
    let nowhere = us_config
        .to_builder()
        .endpoint_url("http://127.0.0.1:1")
        .build();
    let client = Client::from_parts(aws_sdk_sagemakerruntime::Client::new(&nowhere), us.clone());
    let away = || {
        aws_sdk_sagemakerruntime::config::Builder::default()
            .region(Region::from_static("eu-west-1"))
    };

    let err = chat(&client)
        .config_override(away())
        .send()
        .await
        .unwrap_err();
    assert_other_region(&err, "InvokeEndpoint::config_override");
    let Err(err) = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name("chat")
        .body(Blob::new("{}"))
        .config_override(away())
        .send()
        .await
    else {
        panic!("a stream was sent to eu-west-1 on a us-east-1 meter")
    };
    assert_other_region(&err, "InvokeEndpointWithResponseStream::config_override");
    let err = client
        .invoke_endpoint_async()
        .endpoint_name("chat-async")
        .input_location("s3://bucket/in.json")
        .input_bytes(10)
        .config_override(away())
        .send()
        .await
        .unwrap_err();
    assert_other_region(&err, "InvokeEndpointAsync::config_override");
    assert_nothing_sent_or_metered(&fake, &us, &receipts);

    // The override's endpoint URL is the fake's: sent there and metered, in the
    // meter's region.
    let to_fake = || {
        aws_sdk_sagemakerruntime::config::Builder::default()
            .endpoint_url(us_config.endpoint_url().expect("the fake's URL"))
    };
    let ok = chat(&client)
        .config_override(to_fake())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-east-1"));
    assert_eq!(fake.invocations(), 1);
    let queued = client
        .invoke_endpoint_async()
        .endpoint_name("chat-async")
        .input_location("s3://bucket/in.json")
        .input_bytes(10)
        .config_override(to_fake())
        .send()
        .await
        .unwrap();
    assert_eq!(fake.requests(), 2);
    // The submission bills its data in: 10 bytes at 0.016 USD per GB (2³⁰ bytes).
    assert_eq!(queued.cost().cost_usd, r12(gigabytes(10) * dec("0.016")));
    assert_eq!(us.totals().calls, 2);

    // Without it, the client's own URL: nothing there, nothing billed.
    let err = chat(&client).send().await.unwrap_err();
    assert!(err.cost().is_none(), "{err:?}");
    assert_eq!(fake.requests(), 2);
}

/// An SDK client of another region refuses every call ([`Client::from_parts`]),
/// unless the request's own override sends it to the meter's region: it is then
/// metered there.
#[tokio::test]
async fn a_request_of_another_regions_client_overridden_into_the_meters_region_is_metered() {
    let fake = fake_with_chat().await;
    let receipts = Receipts::default();
    let us = chat_meter(&fake, "us-east-1", &receipts).await;
    let eu_sdk = sdk_in(&fake, "eu-west-1").await;
    let client = Client::from_parts(eu_sdk, us.clone());
    let ok = chat(&client)
        .config_override(
            aws_sdk_sagemakerruntime::config::Builder::default()
                .region(Region::from_static("us-east-1")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.cost().region.as_deref(), Some("us-east-1"));
    assert_eq!(fake.requests(), 1);
    assert_eq!(us.totals().calls, 1);
    // The override names no region: the client's, refused.
    let err = chat(&client)
        .config_override(aws_sdk_sagemakerruntime::config::Builder::default())
        .send()
        .await
        .unwrap_err();
    assert_other_region(&err, "Client::from_parts");
    assert_eq!(fake.requests(), 1);
}

/// An SDK config with no region, `region("us-east-1")`: the meter says its calls
/// go to us-east-1, and the runtime client the builder makes sends them there,
/// not nowhere ("Missing Region", every call failing).
#[tokio::test]
async fn a_regionless_sdk_configs_runtime_client_calls_the_region_set_on_the_builder() {
    let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
    let no_region = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("test", "test", None, None, "static"),
            ),
        )
        .http_client(http)
        .build();
    assert!(no_region.region().is_none());
    let client = Client::builder(&no_region)
        .region("us-east-1")
        .without_discovery()
        .without_metrics()
        .endpoint_profile(EndpointProfile::new(
            "chat",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_source(crate::support::NoPrices)
        .build()
        .unwrap();
    assert_eq!(client.meter().endpoint_region(), "us-east-1");
    let _ = chat(&client).send().await;
    let sent = request.expect_request();
    let host = sent.uri().to_owned();
    assert!(host.contains("runtime.sagemaker.us-east-1."), "{host}");
    // Signed for it too.
    let auth = sent.headers().get("authorization").unwrap_or_default();
    assert!(auth.contains("/us-east-1/sagemaker/aws4_request"), "{auth}");
}
