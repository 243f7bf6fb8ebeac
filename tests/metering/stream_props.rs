//! A model-based property test of response streams: how a stream's parts arrive
//! and how it ends, against its receipt.
//!
//! Random runs of `InvokeEndpointWithResponseStream` calls, one after another, go
//! to the in-process event-stream fake (`tests/support/fake_stream.rs`), each with
//! random payload parts (0 to 3,000 bytes each, none among them), one of the ways a
//! stream ends (the model ends it; `ModelStreamError` with a code;
//! `InternalStreamFailure`; the connection broken) and one of the ways its caller
//! treats it (reads it to its end; reads some parts and drops it while the model is
//! still generating; drops it unread, never polled), with or without the
//! receipt's future taken first. The model here, apart from the code, works each
//! figure by hand as `docs/cost-model.md` and `docs/library.md` state them:
//!
//! - **exactly one receipt per stream**, however it ends, in the sinks and (when
//!   taken) from `receipt().await`, the same one; none left in flight afterwards
//!   (`calls_in_flight` is 0), no panic;
//! - the caller gets the SDK's parts unchanged, in order, and the SDK's error
//!   (`ModelStreamError` with its code, `InternalStreamFailure`, no service error
//!   for a broken connection);
//! - **outcome**: `ok` for a stream the model ended, `error` for one that failed
//!   (its note names the failure by code, never by message), `cancelled` for one
//!   dropped before its end (its note says it was cancelled);
//! - **parts and data out** are the parts the caller received: `parts` their
//!   number (0 for a stream that ended or failed before any), data out their
//!   bytes (not the event-stream framing): `bytes ÷ 2³⁰ × $0.016`, rounded half to
//!   even at 10⁻¹² USD; data in the request's bytes the same way;
//! - **time to first byte** is there exactly when a part was received, and is
//!   within the receipt's latency;
//! - **compute** (1 × ml.g5.xlarge at $1.408/h, processor sharing on a manual
//!   clock, each stream alone): the meter's clock is moved `held` µs once the
//!   stream is open, before the caller reads its first part, so that the stream is
//!   billed exactly `held` µs of one instance however it ends (to its last part,
//!   its error, or its drop, all after the move): `14080 × held ÷ 36`
//!   pico-dollars, rounded down;
//! - **per-inference fee** ($0.50 per 1,000 calls, configured): one inference for
//!   every stream, as its 200 arrived, however it ended;
//! - **totals**: the client's total is the exact sum of the receipts, each
//!   receipt's running total the sum up to it, and `calls` their number.

use crate::support::by_hand::{gigabytes, r12};
use crate::support::fake_stream::{FakeStream, REGION, Script, VARIANT};
use crate::support::manual_clock;
use crate::support::receipts::{NoPriceList, Receipts};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use proptest::prelude::*;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice, UsageCharges};
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::PriceKey;
use sagemeter::usage::Outcome;
use sagemeter::{Client, Cost};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 1 × ml.g5.xlarge at $1.408/h (an override).
const LLM: &str = "llm";
/// The instance rate in 10⁻⁴ USD an hour.
const G5_RATE_1E4: u64 = 14080;
const DATA_USD_PER_GB: &str = "0.016";
const USD_PER_1000_CALLS: &str = "0.50";
/// The request body of every stream.
const PROMPT: &[u8] = br#"{"inputs":"Say hello","stream":true}"#;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// How the model ends a stream it was let finish.
#[derive(Debug, Clone, PartialEq)]
enum End {
    /// The end of the stream.
    Ends,
    /// A `ModelStreamError` frame with this code.
    ModelStreamError(&'static str),
    /// An `InternalStreamFailure` frame.
    InternalStreamFailure,
    /// The connection closed in the middle of the body.
    Broken,
}

/// What the caller does with the stream.
#[derive(Debug, Clone, PartialEq)]
enum Caller {
    /// Reads it to its end (or its error).
    ReadsToEnd,
    /// Reads this many of its parts, then drops it while the model is still
    /// generating (the fake sends nothing more until the client leaves).
    DropsAfter(usize),
    /// Drops it unread (the model has sent nothing yet).
    NeverPolls,
}

#[derive(Debug, Clone)]
struct Stream {
    /// The payload parts' sizes, in bytes.
    parts: Vec<usize>,
    end: End,
    caller: Caller,
    /// µs the meter's clock moves while the stream is open.
    held_us: u64,
    /// Whether the caller takes `receipt()` before the stream's end.
    takes_receipt: bool,
}

impl Stream {
    /// The parts the caller receives.
    fn received(&self) -> &[usize] {
        match self.caller {
            Caller::ReadsToEnd => &self.parts,
            Caller::DropsAfter(k) => &self.parts[..k.min(self.parts.len())],
            Caller::NeverPolls => &[],
        }
    }

    /// The outcome its receipt states.
    fn outcome(&self) -> Outcome {
        match (&self.caller, &self.end) {
            (Caller::ReadsToEnd, End::Ends) => Outcome::Ok,
            (Caller::ReadsToEnd, _) => Outcome::Error,
            _ => Outcome::Cancelled,
        }
    }

    /// The note naming how it ended (none for a stream the model ended).
    fn note(&self) -> Option<String> {
        match (&self.caller, &self.end) {
            (Caller::ReadsToEnd, End::Ends) => None,
            (Caller::ReadsToEnd, End::ModelStreamError(code)) => {
                Some(format!("the stream failed: ModelStreamError ({code})"))
            }
            (Caller::ReadsToEnd, End::InternalStreamFailure) => {
                Some("the stream failed: InternalStreamFailure".to_owned())
            }
            (Caller::ReadsToEnd, End::Broken) => {
                Some("the stream failed: the connection or the event stream broke".to_owned())
            }
            _ => Some("cancelled: the caller dropped the stream".to_owned()),
        }
    }

    /// What the fake does: the parts and the end the caller will see; for a
    /// caller that stops early, only the parts it reads, then nothing until it
    /// leaves (so that no part it did not read has arrived when it drops).
    fn script(&self) -> Script {
        let parts = self.received().iter().map(|&n| part_bytes(n));
        let script = Script::new().parts(parts);
        match (&self.caller, &self.end) {
            (Caller::ReadsToEnd, End::Ends) => script,
            (Caller::ReadsToEnd, End::ModelStreamError(code)) => script.model_stream_error(code),
            (Caller::ReadsToEnd, End::InternalStreamFailure) => script.internal_stream_failure(),
            (Caller::ReadsToEnd, End::Broken) => script.break_connection(),
            _ => script.hang_until_client_leaves(),
        }
    }
}

/// A payload part of `n` bytes (no SSE `data:` line: no tokens in it).
fn part_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn stream() -> impl Strategy<Value = Stream> {
    let parts = prop::collection::vec(prop_oneof![1 => Just(0usize), 4 => 1..3_000usize], 0..6);
    let end = prop_oneof![
        3 => Just(End::Ends),
        1 => prop_oneof![
            Just("ModelInvocationTimeExceeded"),
            Just("ModelFailure"),
        ]
        .prop_map(End::ModelStreamError),
        1 => Just(End::InternalStreamFailure),
        1 => Just(End::Broken),
    ];
    (
        parts,
        end,
        0..8usize,
        0..4u8,
        1..20_000_000u64,
        any::<bool>(),
    )
        .prop_map(|(parts, end, k, how, held_us, takes_receipt)| {
            let caller = match how {
                0 => Caller::NeverPolls,
                1 => Caller::DropsAfter(k.min(parts.len())),
                _ => Caller::ReadsToEnd,
            };
            Stream {
                parts,
                end,
                caller,
                held_us,
                takes_receipt,
            }
        })
}

/// Data processed: `bytes ÷ 2³⁰ × $0.016`, rounded half to even at 10⁻¹² USD.
fn data_usd(bytes: u64) -> Decimal {
    r12(gigabytes(bytes) * dec(DATA_USD_PER_GB))
}

/// Processor sharing alone for `held` µs at `rate` × 10⁻⁴ USD/h: `rate × held ÷
/// 36` pico-dollars, rounded down (10⁻⁴ × 10¹² ÷ 3.6 × 10⁹ = 1 ÷ 36).
fn shared_usd(rate_1e4: u64, held_us: u64) -> Decimal {
    let pico = u128::from(rate_1e4) * u128::from(held_us) / 36;
    Decimal::from_i128_with_scale(pico as i128, 12)
}

fn priced(cost: &Cost, item: LineItem) -> Result<(Decimal, Decimal), TestCaseError> {
    let lines: Vec<_> = cost.lines.iter().filter(|l| l.item == item).collect();
    prop_assert_eq!(lines.len(), 1, "one {:?} line: {:#?}", item, cost);
    match &lines[0].price {
        LinePrice::Priced { .. } => Ok((lines[0].quantity, lines[0].cost_usd().unwrap())),
        other => Err(TestCaseError::fail(format!("{item:?} unpriced: {other:?}"))),
    }
}

async fn play(streams: Vec<Stream>) -> Result<(), TestCaseError> {
    let scripts: Arc<Mutex<VecDeque<Script>>> =
        Arc::new(Mutex::new(streams.iter().map(Stream::script).collect()));
    let fake = {
        let scripts = scripts.clone();
        FakeStream::start(move |_| scripts.lock().unwrap().pop_front().unwrap_or_default()).await
    };
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .price_source(NoPriceList)
        .time_source(shared)
        .endpoint_profile(EndpointProfile::new(
            LLM,
            vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
        ))
        .price_override(PriceKey::hosting(REGION, "ml.g5.xlarge"), dec("1.408"))
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
            LLM,
            UsageCharges::default().per_1000_calls(dec(USD_PER_1000_CALLS)),
        )
        .sink(receipts.clone())
        .build()
        .unwrap();

    for (i, s) in streams.iter().enumerate() {
        let mut response = client
            .invoke_endpoint_with_response_stream()
            .endpoint_name(LLM)
            .body(Blob::new(PROMPT))
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("stream {i} did not open: {e}")))?;
        let receipt = s.takes_receipt.then(|| response.receipt());
        time.advance(Duration::from_micros(s.held_us));

        // The caller's side: the SDK's parts, in order, then its end or error.
        let mut got: Vec<Vec<u8>> = Vec::new();
        let ended_by_recv = match s.caller {
            Caller::NeverPolls => false,
            Caller::DropsAfter(k) => {
                while got.len() < k {
                    match response.body.recv().await {
                        Ok(Some(ResponseStream::PayloadPart(part))) => got.push(
                            part.bytes()
                                .map(|b| b.as_ref().to_vec())
                                .unwrap_or_default(),
                        ),
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "stream {i}: a part expected, got {other:?}"
                            )));
                        }
                    }
                }
                false
            }
            Caller::ReadsToEnd => {
                loop {
                    match response.body.recv().await {
                        Ok(Some(ResponseStream::PayloadPart(part))) => got.push(
                            part.bytes()
                                .map(|b| b.as_ref().to_vec())
                                .unwrap_or_default(),
                        ),
                        Ok(Some(other)) => {
                            return Err(TestCaseError::fail(format!(
                                "stream {i}: not a payload part: {other:?}"
                            )));
                        }
                        Ok(None) => {
                            prop_assert_eq!(&s.end, &End::Ends, "stream {} ended", i);
                            break;
                        }
                        Err(err) => {
                            match (&s.end, err.as_service_error()) {
                                (
                                    End::ModelStreamError(code),
                                    Some(ResponseStreamError::ModelStreamError(e)),
                                ) => prop_assert_eq!(e.error_code(), Some(*code)),
                                (
                                    End::InternalStreamFailure,
                                    Some(ResponseStreamError::InternalStreamFailure(_)),
                                ) => {}
                                (End::Broken, None) => {}
                                (end, other) => {
                                    return Err(TestCaseError::fail(format!(
                                        "stream {i} ({end:?}) failed with {other:?}"
                                    )));
                                }
                            }
                            break;
                        }
                    }
                }
                true
            }
        };
        let sent: Vec<Vec<u8>> = s.received().iter().map(|&n| part_bytes(n)).collect();
        prop_assert_eq!(&got, &sent, "stream {}: the parts as sent", i);
        let at_end = response.cost().cloned();
        drop(response);
        let from_future = match receipt {
            Some(receipt) => Some(
                tokio::time::timeout(Duration::from_secs(10), receipt)
                    .await
                    .map_err(|_| TestCaseError::fail(format!("stream {i}: no receipt")))?,
            ),
            None => None,
        };

        // Exactly one receipt, here and wherever it is handed out.
        let all = receipts.all();
        prop_assert_eq!(all.len(), i + 1, "one receipt per stream: {:#?}", all);
        let cost = all[i].clone();
        prop_assert_eq!(client.meter().calls_in_flight(), 0);
        if ended_by_recv {
            prop_assert_eq!(at_end.as_ref(), Some(&cost), "cost() at the end");
        } else {
            prop_assert_eq!(at_end, None, "stream {}: a receipt before the drop", i);
        }
        if let Some(from_future) = from_future {
            prop_assert_eq!(from_future.as_ref(), Some(&cost), "receipt().await");
        }

        // The model's figures.
        let usage = &cost.usage;
        prop_assert_eq!(usage.outcome, s.outcome(), "stream {}: {:?}", i, s);
        match s.note() {
            Some(note) => prop_assert!(
                cost.notes.iter().any(|n| n.starts_with(&note)),
                "stream {}: no note {:?} in {:?}",
                i,
                note,
                cost.notes
            ),
            None => prop_assert!(cost.notes.is_empty(), "{:?}", cost.notes),
        }
        let received = s.received();
        let bytes_out: u64 = received.iter().map(|&n| n as u64).sum();
        prop_assert_eq!(usage.parts, Some(received.len() as u64));
        prop_assert_eq!(usage.bytes_out, bytes_out);
        prop_assert_eq!(usage.bytes_in, PROMPT.len() as u64);
        prop_assert_eq!(usage.time_to_first_byte.is_some(), !received.is_empty());
        if let Some(ttfb) = usage.time_to_first_byte {
            prop_assert!(ttfb <= usage.latency, "{:?} > {:?}", ttfb, usage.latency);
        }
        prop_assert_eq!(usage.input_tokens, None);
        prop_assert_eq!(usage.output_tokens, None);

        let (gb_out, usd_out) = priced(&cost, LineItem::DataOut)?;
        prop_assert_eq!(gb_out, gigabytes(bytes_out));
        prop_assert_eq!(usd_out, data_usd(bytes_out));
        let (gb_in, usd_in) = priced(&cost, LineItem::DataIn)?;
        prop_assert_eq!(gb_in, gigabytes(PROMPT.len() as u64));
        prop_assert_eq!(usd_in, data_usd(PROMPT.len() as u64));
        let (_, usd_compute) = priced(&cost, LineItem::Compute)?;
        prop_assert_eq!(
            usd_compute,
            shared_usd(G5_RATE_1E4, s.held_us),
            "stream {}: held {} µs",
            i,
            s.held_us
        );
        // One inference: $0.50 ÷ 1,000.
        let (calls, usd_fee) = priced(&cost, LineItem::Inference)?;
        prop_assert_eq!(calls, Decimal::ONE);
        prop_assert_eq!(usd_fee, dec("0.0005"));
        prop_assert_eq!(
            cost.cost_usd,
            usd_out + usd_in + usd_compute + usd_fee,
            "the receipt is the sum of its lines"
        );
    }

    // Totals: exact sums.
    let all = receipts.all();
    let mut running = Decimal::ZERO;
    for cost in &all {
        running += cost.cost_usd;
        prop_assert_eq!(cost.running_client_usd, running);
    }
    let totals = client.meter().totals();
    prop_assert_eq!(totals.calls, all.len() as u64);
    prop_assert_eq!(totals.client_usd, running);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_streams_receipt_bills_what_arrived_and_how_it_ended_once(
        streams in prop::collection::vec(stream(), 1..6)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(play(streams))?;
    }
}
