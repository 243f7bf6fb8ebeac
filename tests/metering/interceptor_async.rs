//! `InvokeEndpointAsync` through a plain SDK client with the
//! [`MeteringInterceptor`](sagemeter::client::MeteringInterceptor): its budget
//! reservation, its one receipt (compute unpriced: the interceptor never sees the
//! job run) and what the budget is charged.
//!
//! Money: the per-inference fee is 1 USD per 1,000 calls (0.001 a submission),
//! data processing is free of charge, and the enforced budget's estimate is a fixed
//! 0.05 USD a call.

use super::budget::ten_cents_per_ten_seconds_on;
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::intercepted;
use crate::support::receipts::Receipts;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice, UsageCharges};
use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
use sagemeter::pricing::PriceKey;
use sagemeter::usage::Operation;
use sagemeter::{Cost, Meter};
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A fake SageMaker with the endpoint `jobs` (1 × ml.m5.xlarge).
async fn jobs_fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "jobs",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    fake
}

/// A meter for the async endpoint `jobs` (1 × ml.m5.xlarge, `AsyncInf` at an
/// override of 36 USD/h) with an enforced endpoint budget of `limit` USD, and the
/// SDK client that carries its interceptor.
async fn interceptor_on_jobs(
    fake: &FakeSageMaker,
    limit: &str,
) -> (Meter, aws_sdk_sagemakerruntime::Client, Receipts) {
    interceptor_on_jobs_with(fake, limit, |builder| builder).await
}

/// [`interceptor_on_jobs`], its builder changed by `more` before it is built.
async fn interceptor_on_jobs_with(
    fake: &FakeSageMaker,
    limit: &str,
    more: impl FnOnce(sagemeter::ClientBuilder) -> sagemeter::ClientBuilder,
) -> (Meter, aws_sdk_sagemakerruntime::Client, Receipts) {
    let config = fake.sdk_config().await;
    let budget = Budget::enforce(BudgetScope::endpoint("jobs"), BudgetPeriod::Day, dec(limit))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.05") })
        .unwrap();
    let (builder, receipts) = ten_cents_per_ten_seconds_on(Meter::builder(&config), budget);
    let meter = more(builder).build_meter().unwrap();
    let sdk = intercepted(&config, &meter);
    (meter, sdk, receipts)
}

/// Submits to `jobs` with its input in S3 (a size the SDK does not know).
async fn submit(
    sdk: &aws_sdk_sagemakerruntime::Client,
) -> Result<
    aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncOutput,
    aws_sdk_sagemakerruntime::error::SdkError<
        aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncError,
    >,
> {
    sdk.invoke_endpoint_async()
        .endpoint_name("jobs")
        .input_location("s3://fake-bucket/input/1.json")
        .send()
        .await
}

/// Waits (bounded) until the meter's background pricing has made `n` receipts.
async fn receipts_made(meter: &Meter, receipts: &Receipts, n: usize) -> Vec<Cost> {
    for _ in 0..500 {
        if receipts.all().len() >= n && meter.background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    receipts.all()
}

#[tokio::test]
async fn an_async_submission_seen_by_the_interceptor_has_one_receipt_with_its_compute_unpriced() {
    let fake = jobs_fake().await;
    let (meter, sdk, receipts) = interceptor_on_jobs(&fake, "1").await;
    let output = submit(&sdk).await.expect("the fake queues it");
    assert_eq!(output.inference_id(), Some("jobs-inference-1"));

    let all = receipts_made(&meter, &receipts, 1).await;
    assert_eq!(all.len(), 1, "one receipt: {all:#?}");
    let cost = &all[0];
    assert_eq!(cost.endpoint, "jobs");
    assert_eq!(cost.usage.operation, Operation::InvokeEndpointAsync);
    // The receipt is SageMaker's request (its request id, which the fake makes
    // up for each submission as SageMaker does), as a Client's submission
    // receipt is.
    assert!(cost.call_id.starts_with("async-req-"), "{}", cost.call_id);
    // The per-inference fee, 1 / 1,000 USD, is the only priced money.
    assert_eq!(cost.cost_usd, dec("0.001"));
    let compute = cost
        .lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .expect("a compute line");
    let LinePrice::Unpriced { reason } = &compute.price else {
        panic!("the interceptor cannot see the job's compute: {compute:?}");
    };
    assert!(reason.contains("Client::invoke_endpoint_async"), "{reason}");
    assert!(!cost.is_fully_priced());
    // The data is stated free of charge here: its lines stay priced at $0, whatever
    // their sizes (see the next test for data at a price).
    for item in [LineItem::DataIn, LineItem::DataOut] {
        let line = cost
            .lines
            .iter()
            .find(|l| l.item == item)
            .expect("a data line");
        assert_eq!(line.cost_usd(), Some(Decimal::ZERO), "{line:?}");
    }
    assert!(
        cost.notes.iter().any(|n| n.contains("SDK interceptor")),
        "{:?}",
        cost.notes
    );
}

/// With data processed at a price, the interceptor's receipt of an async call
/// leaves both data lines unpriced: the input is in S3 and the output too, and it
/// sees the size of neither (a made-up 0 GB would be a silent $0).
#[tokio::test]
async fn the_interceptor_leaves_an_async_calls_data_of_sizes_it_cannot_see_unpriced() {
    let fake = jobs_fake().await;
    let region = || "us-east-1".to_owned();
    let (meter, sdk, receipts) = interceptor_on_jobs_with(&fake, "1", |builder| {
        builder
            .price_override(PriceKey::DataIn { region: region() }, dec("0.016"))
            .price_override(PriceKey::DataOut { region: region() }, dec("0.016"))
    })
    .await;
    submit(&sdk).await.expect("the fake queues it");
    let cost = receipts_made(&meter, &receipts, 1).await.remove(0);
    for (item, why) in [
        (LineItem::DataIn, "input_bytes"),
        (LineItem::DataOut, "Client::invoke_endpoint_async"),
    ] {
        let line = cost
            .lines
            .iter()
            .find(|l| l.item == item)
            .expect("a data line");
        let LinePrice::Unpriced { reason } = &line.price else {
            panic!("{item:?} of a size not seen is priced: {line:?}");
        };
        assert!(reason.contains(why), "{reason}");
    }
    // The fee, 1 / 1,000 USD, is still the only priced money.
    assert_eq!(cost.cost_usd, dec("0.001"));
}

#[tokio::test]
async fn the_interceptor_holds_an_async_submissions_estimate_and_charges_it_so_spent_budgets_refuse()
 {
    let fake = jobs_fake().await;
    // A limit of two estimates: 2 × 0.05 = 0.10 USD.
    let (meter, sdk, receipts) = interceptor_on_jobs(&fake, "0.10").await;
    for n in 1..=2 {
        submit(&sdk).await.expect("within the budget");
        receipts_made(&meter, &receipts, n).await;
    }
    // Each receipt leaves compute unpriced, so each submission counts at its
    // 0.05 estimate (never at its 0.001 of priced lines): 2 × 0.05 = 0.10 spent,
    // nothing still held once the receipts are made.
    let status = &meter.budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0.10"), Decimal::ZERO)
    );
    // A third would make 0.15 > 0.10: refused before it is sent, with the
    // budget's error as the SDK error's source.
    let refused = submit(&sdk).await.expect_err("the budget is spent");
    let source = sagemeter::Error::find_in(&refused);
    assert!(
        matches!(source, Some(sagemeter::Error::BudgetExceeded { .. })),
        "{refused:?}"
    );
    let status = &meter.budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0.10"), Decimal::ZERO),
        "the refusal holds nothing"
    );
    assert_eq!(receipts.all().len(), 2, "the refused call has no receipt");
}

/// A submission whose 202 answer is cut off was queued all the same: when the
/// SDK's retries are then refused (503), the interceptor still makes its one
/// receipt, an error's, with the inference it was, and charges its estimate.
#[tokio::test]
async fn an_async_submission_accepted_then_failing_its_retries_has_its_receipt_from_the_interceptor()
 {
    let fake = jobs_fake().await;
    let (meter, _, receipts) = interceptor_on_jobs(&fake, "1").await;
    let (url, requests) = crate::support::accepting_once_then_unavailable().await;
    let sdk = aws_sdk_sagemakerruntime::Client::from_conf(
        crate::support::three_attempts_at(&fake.sdk_config().await, &url)
            .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
            .build(),
    );
    submit(&sdk).await.expect_err("its retries are refused");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    let all = receipts_made(&meter, &receipts, 1).await;
    assert_eq!(all.len(), 1, "one receipt: {all:#?}");
    let cost = &all[0];
    assert_eq!(cost.usage.operation, Operation::InvokeEndpointAsync);
    assert_eq!(cost.usage.outcome, sagemeter::usage::Outcome::Error);
    assert_eq!(cost.usage.attempts, 3);
    // The one 202 is an inference: 1 / 1,000 USD, the only priced money (data
    // is free of charge here, compute unseen).
    let fee = cost
        .lines
        .iter()
        .find(|l| l.item == LineItem::Inference)
        .expect("a fee line");
    assert_eq!(
        (fee.quantity, fee.cost_usd()),
        (Decimal::ONE, Some(dec("0.001")))
    );
    assert_eq!(cost.cost_usd, dec("0.001"));
    crate::support::receipts::assert_noted_containing(
        cost,
        "its output location is unknown, so the job's compute",
    );
    // Settled, not released: its compute unpriced, it counts at its 0.05
    // estimate; nothing is still held.
    let status = &meter.budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0.05"), Decimal::ZERO)
    );
}

/// An endpoint priced by the token alone (`UsageCharges::alone`, no per-call
/// fee): the interceptor's one receipt of an async call has only token lines
/// (no compute, no data, no fee line to tell it from a settlement by). It is
/// still the call: one invocation in the totals, the metrics and EMF alike.
#[tokio::test]
async fn an_async_call_the_interceptor_meters_on_a_per_token_endpoint_is_one_invocation() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let buffer = crate::support::MemoryWriter::default();
    let emf = sagemeter::sink::EmfSink::builder()
        .writer("buffer", buffer.clone())
        .build()
        .unwrap();
    let fake = jobs_fake().await;
    // The last charges set for an endpoint are its charges: $0.50 / $1.50 per
    // million input / output tokens, and nothing else.
    let (meter, sdk, receipts) = interceptor_on_jobs_with(&fake, "1", |builder| {
        builder
            .usage_charges(
                "jobs",
                UsageCharges::default()
                    .per_1000_tokens(dec("0.0005"), dec("0.0015"))
                    .alone(),
            )
            .sink(emf.clone())
    })
    .await;
    submit(&sdk).await.expect("the fake queues it");
    let all = receipts_made(&meter, &receipts, 1).await;
    emf.flush().await.unwrap();

    assert_eq!(all.len(), 1, "one receipt: {all:#?}");
    let cost = &all[0];
    let items: Vec<_> = cost.lines.iter().map(|l| l.item).collect();
    assert_eq!(items, [LineItem::InputTokens, LineItem::OutputTokens]);
    // The output of an async call is in S3: no token counts, so both lines are
    // unpriced (never a silent $0) and the priced money is 0.
    assert!(!cost.is_fully_priced());
    assert_eq!(cost.cost_usd, Decimal::ZERO);
    assert!(!cost.is_async_settlement(), "{cost:#?}");
    // Why: the interceptor never reads the output (a token counter cannot help).
    for reason in cost.unpriced_reasons() {
        assert!(reason.contains("Client::invoke_endpoint_async"), "{reason}");
        assert!(!reason.contains("TokenCounter"), "{reason}");
    }

    assert_eq!(meter.totals().calls, 1);
    let invocations: u64 = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "sagemeter_invocations_total")
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(invocations, 1, "sagemeter_invocations_total");
    let text = buffer.text();
    let documents: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(documents.len(), 1, "{text}");
    assert_eq!(documents[0]["Invocations"], 1, "{text}");
}
