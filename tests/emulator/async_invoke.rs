//! Metered `InvokeEndpointAsync` against the local emulator (moto answers
//! `InvokeEndpointAsync` for any endpoint name, writes the output to its S3 and
//! returns `InferenceId` and `s3://…/response.json`).
//!
//! What is specified here: the submission receipt carries data in and the
//! per-inference fee and says the compute comes later; settling it when the output
//! lands bills compute at the endpoint's `AsyncInf` rate, data out and tokens; the
//! two receipts add up in the running totals; a pending invocation can be stored and
//! settled elsewhere; a settlement whose future is dropped while its rates are looked
//! up is still recorded.
//!
//! Run: `cargo test --test emulator async_invoke::` (needs python3 and PyPI on first run).

use crate::support::GatedPrices;
use crate::support::by_hand::{gigabytes, r12};
use crate::support::emulator::{self, Emulator, REGION, VARIANT};
use crate::support::receipts::{NoPriceList, Receipts, line};
use aws_sdk_sagemakerruntime::primitives::Blob;
use sagemeter::billing::{LineItem, LinePrice, UsageCharges};
use sagemeter::client::{AsyncCompletion, PendingInference};
use sagemeter::endpoint::{EndpointProfile, VariantBilling, VariantProfile};
use sagemeter::pricing::PriceKey;
use sagemeter::usage::{Operation, Outcome};
use sagemeter::{Client, Cost, Decimal, Error};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// moto answers async invocations for any name; sagemeter is told it is async.
const ASYNC_ENDPOINT: &str = "demo-async";
const ASYNC_M5_USD_PER_HOUR: &str = "0.23";
const DATA_USD_PER_GB: &str = "0.016";

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn metered_client() -> (Client, Receipts) {
    let conf = Emulator::shared().sdk_config().await;
    let receipts = Receipts::default();
    let client = Client::builder(&conf)
        .without_discovery()
        .price_source(NoPriceList)
        .endpoint_profile(
            EndpointProfile::new(
                ASYNC_ENDPOINT,
                vec![VariantProfile::instance(VARIANT, "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_override(
            PriceKey::AsyncInference {
                region: REGION.into(),
                instance_type: "ml.m5.xlarge".into(),
            },
            dec(ASYNC_M5_USD_PER_HOUR),
        )
        .price_override(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            dec(DATA_USD_PER_GB),
        )
        .price_override(
            PriceKey::DataOut {
                region: REGION.into(),
            },
            dec(DATA_USD_PER_GB),
        )
        .usage_charges(
            ASYNC_ENDPOINT,
            UsageCharges::default()
                .per_1000_calls(dec("0.70"))
                .per_1000_tokens(dec("0.0005"), dec("0.0015")),
        )
        .sink(receipts.clone())
        .build()
        .unwrap();
    (client, receipts)
}

fn items(cost: &Cost) -> Vec<LineItem> {
    cost.lines.iter().map(|l| l.item).collect()
}

fn cost_of(cost: &Cost, item: LineItem) -> Option<Decimal> {
    cost.lines
        .iter()
        .find(|l| l.item == item)
        .unwrap_or_else(|| panic!("no {item:?} line on {cost:#?}"))
        .cost_usd()
}

/// The object at an `s3://bucket/key` URI in the emulator's S3: a path-style GET with
/// a SigV4-shaped `Authorization` header (moto checks who asks, not the signature), so
/// the test needs no S3 SDK.
fn fetch_output(s3_uri: &str) -> Vec<u8> {
    let (bucket, key) = s3_uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or_else(|| panic!("not an s3:// URI: {s3_uri}"));
    let emu = Emulator::shared();
    let mut socket = TcpStream::connect(("127.0.0.1", emu.port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        socket,
        "GET /{bucket}/{key} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
         x-amz-date: 20260101T000000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={key_id}/20260101/{REGION}/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}\r\n\r\n",
        port = emu.port,
        key_id = emulator::ACCESS_KEY_ID,
        signature = "0".repeat(64),
    )
    .unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    response[split + 4..].to_vec()
}

fn usage_of(body: &[u8]) -> (u64, u64) {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap();
    (
        doc["usage"]["prompt_tokens"].as_u64().unwrap(),
        doc["usage"]["completion_tokens"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn the_submission_receipt_bills_data_in_and_the_inference_fee_and_defers_compute() {
    let (client, receipts) = metered_client().await;
    let invocation = client
        .invoke_endpoint_async()
        .endpoint_name(ASYNC_ENDPOINT)
        .content_type("application/json")
        .input_location("s3://requests/submission-1.json")
        .input_bytes(1 << 20)
        .inference_id("submission-1")
        .tag("job", "nightly")
        .send()
        .await
        .expect("moto accepts the invocation");

    // The SDK output, untouched.
    assert_eq!(invocation.inference_id(), Some("submission-1"));
    let output_location = invocation
        .output_location()
        .expect("OutputLocation")
        .to_owned();
    assert!(output_location.starts_with("s3://") && output_location.ends_with("/response.json"));
    assert_eq!(
        invocation.pending().output_location(),
        Some(output_location.as_str())
    );

    let cost = invocation.cost();
    assert_eq!(cost.usage.operation, Operation::InvokeEndpointAsync);
    assert_eq!(items(cost), vec![LineItem::DataIn, LineItem::Inference]);
    // 1 MiB = 1/1024 GB × 0.016 = 0.000015625; 0.70 per 1,000 calls = 0.0007.
    assert_eq!(cost_of(cost, LineItem::DataIn), Some(dec("0.000015625")));
    assert_eq!(cost_of(cost, LineItem::Inference), Some(dec("0.0007")));
    assert_eq!(cost.cost_usd, dec("0.000715625"));
    assert!(cost.is_fully_priced());
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("AsyncInf") && n.contains("settlement")),
        "{:?}",
        cost.notes
    );
    assert_eq!(
        cost.billing,
        Some(VariantBilling::Instance {
            instance_type: "ml.m5.xlarge".into(),
            instance_count: 1
        })
    );
    assert_eq!(cost.tags.get("job").map(String::as_str), Some("nightly"));
    assert_eq!(receipts.all().len(), 1);
}

#[tokio::test]
async fn settling_bills_compute_at_the_async_rate_data_out_and_tokens() {
    let (client, receipts) = metered_client().await;
    let invocation = client
        .invoke_endpoint_async()
        .endpoint_name(ASYNC_ENDPOINT)
        .input_location("s3://requests/settle-1.json")
        .input_bytes(2048)
        .send()
        .await
        .unwrap();
    let submitted = invocation.cost().clone();

    // The output lands; the application reads it (here: straight from moto's S3).
    let output = fetch_output(invocation.output_location().unwrap());
    let (prompt_tokens, completion_tokens) = usage_of(&output);
    let settled = invocation
        .settle(AsyncCompletion::processed_for(Duration::from_secs(90)).output(&output))
        .await;

    assert_eq!(
        items(&settled),
        vec![
            LineItem::Compute,
            LineItem::DataOut,
            LineItem::InputTokens,
            LineItem::OutputTokens
        ]
    );
    // 90 s = 0.025 h × 0.23 USD/h (AsyncInf ml.m5.xlarge) = 0.00575.
    let compute = settled
        .lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .unwrap();
    assert_eq!(compute.quantity, dec("0.025"));
    assert!(matches!(
        &compute.price,
        LinePrice::Priced { usd_per_unit, .. } if *usd_per_unit == dec(ASYNC_M5_USD_PER_HOUR)
    ));
    assert_eq!(compute.cost_usd(), Some(dec("0.00575")));
    assert_eq!(
        cost_of(&settled, LineItem::DataOut),
        Some(r12(gigabytes(output.len() as u64) * dec(DATA_USD_PER_GB)))
    );
    assert_eq!(
        (settled.usage.input_tokens, settled.usage.output_tokens),
        (Some(prompt_tokens), Some(completion_tokens))
    );
    assert_eq!(
        cost_of(&settled, LineItem::InputTokens),
        Some(Decimal::from(prompt_tokens) * dec("0.0005") / Decimal::from(1000))
    );
    assert_eq!(
        cost_of(&settled, LineItem::OutputTokens),
        Some(Decimal::from(completion_tokens) * dec("0.0015") / Decimal::from(1000))
    );
    assert!(settled.is_fully_priced());
    assert_eq!(
        settled.cost_usd,
        settled.lines.iter().filter_map(|l| l.cost_usd()).sum()
    );
    assert_eq!(settled.call_id, submitted.call_id);
    assert_eq!(settled.usage.outcome, Outcome::Ok);

    // Two receipts, each recorded once; the running total is their sum.
    let endpoint_total = client.meter().totals().by_endpoint[ASYNC_ENDPOINT];
    assert_eq!(
        settled.running_endpoint_usd - submitted.running_endpoint_usd,
        settled.cost_usd
    );
    assert!(endpoint_total >= submitted.cost_usd + settled.cost_usd);
    let mine: Vec<_> = receipts
        .all()
        .into_iter()
        .filter(|c| c.call_id == submitted.call_id)
        .collect();
    assert_eq!(mine, vec![submitted, settled]);
}

#[tokio::test]
async fn a_pending_invocation_can_be_stored_and_settled_elsewhere_by_completion_time() {
    let (client, _) = metered_client().await;
    let invocation = client
        .invoke_endpoint_async()
        .endpoint_name(ASYNC_ENDPOINT)
        .input_location("s3://requests/elsewhere-1.json")
        .input_bytes(100)
        .send()
        .await
        .unwrap();
    let (_, _, pending) = invocation.into_parts();
    let stored = serde_json::to_string(&pending).unwrap();
    assert!(
        !stored.contains("requests/elsewhere"),
        "no input location: {stored}"
    );

    // Another process, another meter: it read the SNS error notification.
    let (elsewhere, _) = metered_client().await;
    let pending: PendingInference = serde_json::from_str(&stored).unwrap();
    let landed = SystemTime::from(pending.submitted_at()) + Duration::from_secs(30);
    let settled = elsewhere
        .meter()
        .settle_async(
            pending,
            AsyncCompletion::completed_at(landed)
                .output_bytes(120)
                .failed(),
        )
        .await
        .unwrap();

    // 30 s from submission to completion: 30 / 3600 h × 0.23 = 0.001916666667 (rounded).
    assert_eq!(
        cost_of(&settled, LineItem::Compute),
        Some(dec("0.001916666667"))
    );
    assert_eq!(settled.usage.outcome, Outcome::Error);
    assert!(
        settled
            .notes
            .iter()
            .any(|n| n.contains("queue time included"))
    );
    // A failed inference answered no tokens: AWS Marketplace charges tokens on a
    // successful answer, so its token lines are 0 tokens at $0, priced, each
    // saying why (never a silent $0, never an unpriced line asking for a count).
    for item in [LineItem::InputTokens, LineItem::OutputTokens] {
        let token_line = line(&settled, item);
        assert_eq!(
            (token_line.quantity, token_line.cost_usd()),
            (Decimal::ZERO, Some(Decimal::ZERO))
        );
        assert!(
            matches!(&token_line.price, LinePrice::Priced { provenance, .. }
                if provenance.note.as_deref().is_some_and(|n| n.contains("successful (HTTP 2XX) answer"))),
            "{token_line:?}"
        );
    }
    assert!(settled.is_fully_priced());
}

#[tokio::test]
async fn data_of_unknown_size_is_unpriced_and_an_inline_body_is_billed_as_data_in() {
    let (client, _) = metered_client().await;
    let submit_unknown = || {
        client
            .invoke_endpoint_async()
            .endpoint_name(ASYNC_ENDPOINT)
            .input_location("s3://requests/unknown-size.json")
            .send()
    };
    let unpriced_why = |cost: &Cost, item: LineItem| -> String {
        let line = cost.lines.iter().find(|l| l.item == item).unwrap();
        match &line.price {
            LinePrice::Unpriced { reason } => reason.clone(),
            priced => panic!("{item:?} of a size not known is priced: {priced:?}"),
        }
    };
    // The input is in S3 and its size was not given: data in is unpriced, saying
    // how to bill it, not a silent 0 GB at $0. The fee, 0.70 / 1,000, is billed.
    let unknown = submit_unknown().await.unwrap();
    assert!(unpriced_why(unknown.cost(), LineItem::DataIn).contains("input_bytes"));
    assert!(!unknown.cost().is_fully_priced());
    assert_eq!(unknown.cost().cost_usd, dec("0.0007"));

    // Settled without the output's size: data out is unpriced the same way; the
    // compute is billed, 10 s at 0.23 USD/h = 0.000638888…, to 10⁻¹² USD.
    let settled = unknown
        .settle(AsyncCompletion::processed_for(Duration::from_secs(10)))
        .await;
    assert!(unpriced_why(&settled, LineItem::DataOut).contains("output_bytes"));
    assert_eq!(
        cost_of(&settled, LineItem::Compute),
        Some(dec("0.000638888889"))
    );
    assert!(!settled.is_fully_priced());
    // With it, 5 MiB = 5,242,880 B = 5/1,024 GB (AWS's GB of data processed is
    // 2³⁰ B) × 0.016 USD/GB = 0.000078125 USD.
    let settled = submit_unknown()
        .await
        .unwrap()
        .settle(AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(5 << 20))
        .await;
    assert_eq!(
        cost_of(&settled, LineItem::DataOut),
        Some(dec("0.000078125"))
    );

    let body = br#"{"inputs":"inline async request"}"#;
    let inline = client
        .invoke_endpoint_async()
        .endpoint_name(ASYNC_ENDPOINT)
        .body(Blob::new(&body[..]))
        .send()
        .await
        .unwrap();
    assert_eq!(inline.cost().usage.bytes_in, body.len() as u64);
    assert!(
        !inline
            .cost()
            .notes
            .iter()
            .any(|n| n.contains("input_bytes"))
    );
}

#[tokio::test]
async fn an_async_request_without_an_endpoint_name_is_rejected_before_sending() {
    let (client, receipts) = metered_client().await;
    let err = client
        .invoke_endpoint_async()
        .input_location("s3://requests/x.json")
        .send()
        .await
        .expect_err("no endpoint name");
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(receipts.all().is_empty());
}

/// An async invocation submitted through the emulator from `location`, handed to
/// a cold worker (its own client, its price look-ups held until `gate` gets
/// permits, its receipts in `receipts`): the submission's call id, the pending
/// invocation and the worker.
async fn submitted_to_a_cold_worker(
    location: &str,
) -> (String, PendingInference, Client, Arc<Semaphore>, Receipts) {
    let (client, _) = metered_client().await;
    let invocation = client
        .invoke_endpoint_async()
        .endpoint_name(ASYNC_ENDPOINT)
        .input_location(location)
        .input_bytes(100)
        .send()
        .await
        .unwrap();
    let (_, submitted, pending) = invocation.into_parts();
    let gate = Arc::new(Semaphore::new(0));
    let receipts = Receipts::default();
    let worker = Client::builder(&Emulator::shared().sdk_config().await)
        .without_discovery()
        .price_source(GatedPrices { gate: gate.clone() })
        .endpoint_profile(
            EndpointProfile::new(
                ASYNC_ENDPOINT,
                vec![VariantProfile::instance(VARIANT, "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .sink(receipts.clone())
        .build()
        .unwrap();
    (submitted.call_id, pending, worker, gate, receipts)
}

/// A settlement dropped on a meter that is shut down (nothing more runs in the
/// background) is settled at once on the rates at hand: none, on a cold
/// meter, so its lines are unpriced and say why; the invocation is still
/// counted, not lost.
#[tokio::test]
async fn a_settlement_dropped_after_shutdown_is_counted_unpriced() {
    let (call_id, pending, worker, _gate, receipts) =
        submitted_to_a_cold_worker("s3://requests/after-shutdown.json").await;
    worker.shutdown().await.unwrap();
    let settling = worker.meter().settle_async(
        pending,
        AsyncCompletion::processed_for(Duration::from_secs(90)).output_bytes(0),
    );
    let gave_up = tokio::time::timeout(Duration::from_millis(100), settling).await;
    assert!(gave_up.is_err(), "the price look-ups hang");
    let settled = receipts.all();
    assert_eq!(settled.len(), 1, "settled at once: {settled:#?}");
    assert_eq!(settled[0].call_id, call_id);
    let compute = line(&settled[0], LineItem::Compute);
    assert!(
        matches!(&compute.price, LinePrice::Unpriced { reason } if reason.contains("could not be waited for")),
        "{compute:?}"
    );
}

#[tokio::test]
async fn a_settlement_dropped_while_its_rates_are_looked_up_is_still_recorded() {
    // A cold worker settles it; its price look-ups hang, and the caller gives up.
    let (call_id, pending, worker, gate, receipts) =
        submitted_to_a_cold_worker("s3://requests/dropped-settlement.json").await;
    let settling = worker.meter().settle_async(
        pending,
        AsyncCompletion::processed_for(Duration::from_secs(90)).output_bytes(0),
    );
    let gave_up = tokio::time::timeout(Duration::from_millis(100), settling).await;
    assert!(gave_up.is_err(), "the price look-ups hang: no receipt yet");
    assert!(receipts.all().is_empty());

    // The look-ups answer; shutdown waits for the settlement finished behind.
    gate.add_permits(1_000);
    worker.shutdown().await.unwrap();
    let settled = receipts.all();
    assert_eq!(settled.len(), 1, "one settlement receipt: {settled:#?}");
    let settled = &settled[0];
    assert_eq!(settled.call_id, call_id);
    // 90 s = 0.025 h × 0.23 USD/h (AsyncInf ml.m5.xlarge) = 0.00575; no data out.
    assert_eq!(cost_of(settled, LineItem::Compute), Some(dec("0.00575")));
    assert_eq!(settled.cost_usd, dec("0.00575"));
    assert_eq!(
        worker.meter().totals().by_endpoint[ASYNC_ENDPOINT],
        dec("0.00575")
    );
}
