//! A model-based property test of the call pipeline.
//!
//! Random runs of calls are made, one after another, through every way in that
//! one meter meters: `Client::invoke_endpoint` (`send`), the SDK's builder with
//! `send_metered` / `send_metered_tagged`, a plain SDK client carrying
//! `MeteringInterceptor`, `Client::invoke_endpoint_with_response_stream`, a
//! response stream through the interceptor, and `Client::invoke_endpoint_async`
//! with its settlement. They go to the in-process fakes (SageMaker runtime,
//! `tests/support/fake_sagemaker.rs`; event streams, `tests/support/fake_stream.rs`)
//! with random request and response sizes (0 bytes among them, and async sizes
//! at and around 2³⁰ and 10⁹ bytes), model latencies, throttled attempts, model
//! errors (424, the model ran), refusals (400) and unavailability (503, the model
//! did not run), streams broken off by the model, and tags. Each receipt is
//! compared with a model kept here, apart from the code, which works its figures
//! by hand as `docs/cost-model.md` states AWS's rules:
//!
//! - **one receipt for every call that ran**: a call with an attempt answered by
//!   the model (a success or `ModelError`) has exactly one receipt, whichever way
//!   in; one whose attempts were all throttled, refused or unavailable has none;
//!   an async invocation has two (its submission's and its settlement's), and one
//!   whose stated input is above 2³⁰ bytes is refused unsent, with none;
//! - **serverless** (`sls`, 2048 MB at $0.00004/s): compute is the attempt's
//!   client-side latency (the receipt's, in µs) rounded **up** to the millisecond
//!   × the per-second rate, and never more than the call's own elapsed time
//!   (timed here) rounded up to the ms; only the attempt that reached the model
//!   is billed: a throttled one before it, which the fake takes 200 ms to
//!   answer, is not (the billed latency and those 200 ms fit within the call's
//!   elapsed time); a stream is billed from its request to its end. Plus the
//!   configured $0.50 per 1,000 calls on every receipt of the
//!   endpoint: one call for a successful (HTTP 2XX) answer, as AWS Marketplace
//!   charges by default (a stream whose 200 arrived, even one the model broke off
//!   after it), 0 calls at $0 for a model error (HTTP 424), though the model ran
//!   and its compute and data are billed;
//! - **instances, processor sharing** (`rt`, 2 × ml.m5.xlarge at $0.23/h by
//!   override; `snap`, 1 × ml.g4dn.xlarge at the bundled snapshot's $0.7364/h;
//!   `c5`, 1 × ml.c5.large at $0.102/h by override): a call is allocated
//!   `min(1/m, k/n)` of an instance for as long as it is in flight on the
//!   meter's clock: alone, 1; on `rt`, 1 to 4 calls are sent together and held
//!   together, so that both bounds bind (`min(1, 2/n)`: 1 for n ≤ 2, 2/3, 1/2),
//!   and together they get at most the 2 instances' time. The meter runs on a manual clock that the model moves by a random
//!   number of µs while the model holds the call (the fake holds the request, or
//!   the stream is open), so the allocation is known exactly: `held µs ÷ 3.6 ×
//!   10⁹` instance-hours (shown rounded down at 18 places), the cost priced from
//!   that exact time and rounded **down** once to 10⁻¹² USD. For a rate of `r` ×
//!   10⁻⁴ USD/h that is `⌊r × held ÷ 36⌋` pico-dollars, worked in integers here;
//! - **async** (`jobs`, 1 × ml.m5.xlarge, `AsyncInf` at $0.23/h): the submission
//!   bills data in (the inline body or the stated `input_bytes`); the settlement
//!   bills the stated processing time, at most the request's default
//!   `InvocationTimeoutSeconds` of 900 s (SageMaker expires it then: 1 h stated
//!   is billed 900 s), at a whole instance (busy time: the line
//!   rounded half to even at 10⁻¹² USD; `2300 × µs ÷ 36` pico-dollars, rounded in
//!   integers) and the stated output as data out;
//! - **data processed**: `bytes ÷ 2³⁰ × $0.016`, in and out, rounded half to even
//!   at 10⁻¹² USD: a stream's payload parts (not the framing); data in once for
//!   the one attempt that reached the model;
//! - **totals** are exact sums: the client's, each endpoint's and each tag
//!   value's (the default tag `env=test` on every receipt) equal the sums of the
//!   receipts, each receipt's running totals the sums up to it, and `calls` the
//!   receipts less settlements;
//! - **never a silent $0**: every receipt's cost is the exact sum of its priced
//!   lines, a priced line costs $0 only for a quantity of 0 (no rate here is free),
//!   and an unpriced line says why; **fallbacks are marked**: `snap`'s compute is
//!   from the snapshot with a note naming the live failure (the fake answers no
//!   Price List request), every other rate an override.
//!
//! Where the ways in differ, the docs say so, and so does the model:
//! - a stream's compute runs to its end (its last part read, or the model's error),
//!   not to its headers, as an `InvokeEndpoint` answer's does; so `rt`'s held time
//!   is moved while the stream is open, and a stream the model refuses with a 424
//!   before it starts is allocated the clock's advance during its request: none,
//!   as the model never moves the clock then (a priced $0 of 0 instance-hours, on
//!   a manual clock only);
//! - the interceptor does not see a stream run nor read it: its receipt has data
//!   in (and the per-inference fee) priced, compute and data out unpriced with a
//!   reason naming what meters them in full;
//! - tags: the interceptor carries the client's default tags only.
//!
//! A model error's answer is SageMaker's error, not the model's output: the model
//! here takes its data out as 0 bytes (the docs say only that the response body is
//! counted). Latencies are real (tokio's time is not paused: the fakes answer over
//! loopback TCP), kept to a few ms so that a run takes seconds.

use crate::support::by_hand::{gigabytes, r12};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::fake_stream::{FakeStream, Script};
use crate::support::manual_clock;
use crate::support::receipts::Receipts;
use aws_sdk_sagemakerruntime::primitives::Blob;
use proptest::prelude::*;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice, UsageCharges};
use sagemeter::client::AsyncCompletion;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::{PriceKey, PriceOrigin};
use sagemeter::usage::{Operation, Outcome};
use sagemeter::{Client, Cost, Error, Meter, SendMeteredExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REGION: &str = "us-east-1";
/// Serverless, 2048 MB: $0.00004 a second (us-east-1's public rate), and
/// $0.50 per 1,000 calls configured.
const SLS: &str = "sls";
/// 2 × ml.m5.xlarge at $0.23/h (an override).
const RT: &str = "rt";
/// 1 × ml.g4dn.xlarge, no override: the bundled snapshot's $0.7364/h.
const SNAP: &str = "snap";
/// 1 × ml.c5.large at $0.102/h (an override): a rate whose figure in 10⁻⁴ USD
/// (1020) is divisible by 3, at which hours rounded before pricing lose a
/// pico-dollar (see [`shared`]).
const C5: &str = "c5";
/// Asynchronous, 1 × ml.m5.xlarge, `AsyncInf` at $0.23/h (an override).
const JOBS: &str = "jobs";

/// USD a GB (2³⁰ bytes) of data processed, in and out.
const DATA_USD_PER_GB: &str = "0.016";
/// Serverless at 2 GB, USD a second.
const SLS_USD_PER_SECOND: &str = "0.00004";
/// Per-inference fee at `sls`, USD per 1,000 calls.
const SLS_USD_PER_1000_CALLS: &str = "0.50";
/// Instance rates in 10⁻⁴ USD an hour.
const M5_RATE_1E4: u64 = 2300;
const G4DN_RATE_1E4: u64 = 7364;
const C5_RATE_1E4: u64 = 1020;
/// An async request's `InvocationTimeoutSeconds` when not set: 900 s, in µs.
const INVOCATION_TIMEOUT_US: u64 = 900_000_000;
/// How long the fake takes to throttle a call's attempt on `sls`.
const THROTTLE_DELAY: Duration = Duration::from_millis(200);

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------
// What a run does.

/// How a call goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `Client::invoke_endpoint().send()`.
    Send,
    /// The SDK's builder, `send_metered` (or `send_metered_tagged`).
    SendMetered,
    /// A plain SDK client with `MeteringInterceptor`.
    Intercepted,
    /// `Client::invoke_endpoint_with_response_stream()`.
    Stream,
    /// A response stream through the interceptor.
    StreamIntercepted,
    /// `Client::invoke_endpoint_async()`, then its settlement.
    Async,
}

/// What SageMaker answers the call's last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The model answers (a stream: all its parts).
    Ok,
    /// 424 `ModelError`: the model ran and failed.
    ModelError,
    /// A stream the model breaks off with `ModelStreamError` after its parts.
    BrokenOff,
    /// 400 `ValidationError`: refused before the model.
    Refused,
    /// 503 `ServiceUnavailable` (the SDK tries again; so is the retry): no model.
    Unavailable,
}

/// An async invocation's input and how it is settled.
#[derive(Debug, Clone)]
struct AsyncCall {
    /// `Some(n)`: input in S3 of `n` bytes, stated; `None`: the inline body.
    input_bytes: Option<u64>,
    processed_us: u64,
    output_bytes: u64,
    failed: bool,
}

#[derive(Debug, Clone)]
struct Call {
    way: Way,
    endpoint: &'static str,
    /// Request body bytes.
    body: usize,
    /// The response: one body (its size), or a stream's parts.
    parts: Vec<usize>,
    answer: Answer,
    /// Attempts throttled before the one answered (the SDK tries twice in all).
    throttles: u64,
    /// The fake's latency before each answer, real time.
    latency_ms: u64,
    /// µs the meter's clock moves while the model holds the call (instances).
    held_us: u64,
    /// How many such calls are sent at once and held together (`send` on `rt`
    /// only; 1 elsewhere): `n` calls on `rt`'s 2 instances get `min(1, 2/n)` each.
    in_flight: usize,
    team: Option<&'static str>,
    async_call: Option<AsyncCall>,
}

fn body_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        4 => 1usize..200,
        1 => Just(1024usize),
        2 => 1_000usize..70_000,
    ]
}

fn async_size() -> impl Strategy<Value = u64> {
    const GIB: u64 = 1 << 30;
    prop_oneof![
        Just(0u64),
        Just(GIB),
        Just(GIB - 1),
        Just(GIB + 1),
        Just(1_000_000_000u64),
        Just(5 * GIB + 3),
        1u64..10_000_000,
    ]
}

fn held() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1u64..1_000,
        // Multiples of 3 µs: at c5's $0.102/h a whole number of pico-dollars.
        Just(3u64),
        (1u64..40_000).prop_map(|n| 3 * n),
        1u64..120_000_000,
        Just(3_600_000_000u64),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let invoke = (
        prop_oneof![
            Just(Way::Send),
            Just(Way::SendMetered),
            Just(Way::Intercepted)
        ],
        prop_oneof![Just(SLS), Just(RT), Just(SNAP), Just(C5)],
        prop_oneof![
            6 => Just(Answer::Ok),
            2 => Just(Answer::ModelError),
            1 => Just(Answer::Refused),
            1 => Just(Answer::Unavailable),
        ],
        prop_oneof![4 => Just(0u64), 2 => Just(1u64), 1 => Just(2u64)],
        body_size(),
    );
    let stream = (
        prop_oneof![3 => Just(Way::Stream), 1 => Just(Way::StreamIntercepted)],
        prop_oneof![Just(SLS), Just(RT)],
        prop_oneof![
            5 => Just(Answer::Ok),
            2 => Just(Answer::BrokenOff),
            1 => Just(Answer::ModelError),
            1 => Just(Answer::Unavailable),
        ],
        Just(0u64),
        body_size(),
    );
    let common = (
        prop::collection::vec(body_size(), 0..4),
        0u64..4,
        held(),
        prop_oneof![Just(None), Just(Some("search")), Just(Some("ads"))],
        1usize..=4,
    );
    let sync = (prop_oneof![3 => invoke, 2 => stream], common).prop_map(
        |(
            (way, endpoint, answer, throttles, body),
            (parts, latency_ms, held_us, team, in_flight),
        )| {
            // The interceptor's stream is only ever answered or refused.
            let answer = match (way, answer) {
                (Way::StreamIntercepted, Answer::BrokenOff | Answer::ModelError) => Answer::Ok,
                _ => answer,
            };
            // An InvokeEndpoint answer is one body.
            let parts = match way {
                Way::Stream | Way::StreamIntercepted => parts,
                _ => vec![parts.iter().sum()],
            };
            Call {
                way,
                endpoint,
                body,
                parts,
                answer,
                throttles,
                latency_ms,
                held_us,
                // Calls answered at the first attempt only: a throttled one
                // leaves the clock while it backs off.
                in_flight: match (way, endpoint, answer, throttles) {
                    (Way::Send, RT, Answer::Ok, 0) => in_flight,
                    _ => 1,
                },
                team,
                async_call: None,
            }
        },
    );
    let asynchronous = (
        prop_oneof![Just(None), async_size().prop_map(Some)],
        0usize..=128_000,
        prop_oneof![
            Just(0u64),
            1u64..5_000_000,
            Just(INVOCATION_TIMEOUT_US),
            Just(INVOCATION_TIMEOUT_US + 1),
            Just(3_600_000_000u64),
        ],
        async_size(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("search"))],
    )
        .prop_map(
            |(input_bytes, body, processed_us, output_bytes, failed, team)| Call {
                way: Way::Async,
                endpoint: JOBS,
                body: if input_bytes.is_some() { 0 } else { body },
                parts: Vec::new(),
                answer: Answer::Ok,
                throttles: 0,
                latency_ms: 0,
                held_us: 0,
                in_flight: 1,
                team,
                async_call: Some(AsyncCall {
                    input_bytes,
                    processed_us,
                    output_bytes,
                    failed,
                }),
            },
        );
    prop_oneof![5 => sync, 1 => asynchronous]
}

// ---------------------------------------------------------------------------------
// The model: each receipt's lines as the docs state AWS's rules.

/// What a line should be.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Priced at this quantity and cost.
    Priced { quantity: Decimal, cost: Decimal },
    /// Unpriced, with a reason.
    Unpriced,
    /// Serverless compute: the receipt's latency rounded up to the ms × the rate.
    FromLatency,
}

/// A receipt the model expects: its operation, outcome, endpoint, bytes and lines.
#[derive(Debug, Clone)]
struct Expected {
    operation: Operation,
    outcome: Outcome,
    endpoint: &'static str,
    bytes_in: u64,
    bytes_out: Option<u64>,
    attempts: Option<u32>,
    /// Every line, in no order.
    lines: Vec<(LineItem, Want)>,
    tags: BTreeMap<String, String>,
    /// Whether the compute rate is the snapshot's (a fallback).
    snapshot: bool,
    /// The least the fake's latency makes the receipt's.
    min_latency: Duration,
    settlement: bool,
}

fn data(bytes: u64) -> Want {
    // bytes ÷ 2³⁰ × $0.016, rounded half to even at 10⁻¹² USD.
    Want::Priced {
        quantity: gigabytes(bytes).normalize(),
        cost: r12(gigabytes(bytes) * dec(DATA_USD_PER_GB)),
    }
}

/// Processor sharing alone on the meter's clock: `held` µs of one instance. The
/// allocation is kept in instance-femtoseconds (`held × 10⁹`). The quantity shown
/// is in instance-hours rounded down at 18 places: ⌊held × 10⁹ fs ÷ 3.6⌋
/// atto-hours (10⁻¹⁸ h). The cost is priced from the exact time, rounded down
/// once: at `rate` × 10⁻⁴ USD/h, `rate × held ÷ 36` pico-dollars (10⁻⁴ × 10¹² ÷
/// 3.6 × 10⁹ = 1 ÷ 36), rounded down, worked in integers. Pricing the hours
/// shown instead would come out a pico-dollar low whenever 36 divides
/// `rate × held` and the hours are not exact at 18 places: never at $0.23 or
/// $0.7364 (36 divides `rate × held` only when 9 divides `held`, and then the
/// hours are exact), but at `c5`'s $0.102 for any `held` divisible by 3 and not
/// by 9 (3 µs: exactly 85 pico-dollars; the hours shown, 0.000000000833333333,
/// × 0.102 = 84.99999997).
fn shared(rate_1e4: u64, held_us: u64) -> Want {
    let atto_hours = u128::from(held_us) * 10_000_000_000 / 36;
    let quantity = Decimal::from_i128_with_scale(atto_hours as i128, 18);
    let pico = u128::from(rate_1e4) * u128::from(held_us) / 36;
    let cost = Decimal::from_i128_with_scale(pico as i128, 12);
    Want::Priced {
        quantity: quantity.normalize(),
        cost,
    }
}

/// Busy time at a whole instance: `processed` µs at $0.23/h is `2300 × µs ÷ 36`
/// pico-dollars, rounded half to even.
fn busy_m5(processed_us: u64) -> Want {
    let num = u128::from(M5_RATE_1E4) * u128::from(processed_us);
    let (q, r) = (num / 36, num % 36);
    let pico = match r.cmp(&18) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    };
    Want::Priced {
        quantity: (Decimal::from(processed_us) / Decimal::from(3_600_000_000u64)).normalize(),
        cost: Decimal::from_i128_with_scale(pico as i128, 12),
    }
}

/// The per-inference fee: one call for an answer of HTTP 2XX (`answered`), at
/// $0.50 ÷ 1,000; none, $0, for a model error.
fn per_inference(endpoint: &str, answered: bool) -> Option<Want> {
    (endpoint == SLS).then(|| match answered {
        true => Want::Priced {
            quantity: Decimal::ONE,
            cost: dec(SLS_USD_PER_1000_CALLS) / Decimal::from(1000),
        },
        false => Want::Priced {
            quantity: Decimal::ZERO,
            cost: Decimal::ZERO,
        },
    })
}

/// `n` calls held together for `held` µs on `rt`'s 2 instances: each is
/// allocated `min(1/m, k/n)` = `min(1, 2/n)` of an instance, in instance-fs
/// rounded down: `⌊held × 10⁹ × 2 ÷ n⌋` when n > 2. Shown in instance-hours
/// rounded down at 18 places (`⌊fs × 10 ÷ 36⌋` atto-hours), priced at $0.23/h
/// from the fs and rounded down once: `⌊2300 × fs ÷ (36 × 10⁹)⌋` pico-dollars
/// (10⁻⁴ × 10¹² ÷ 3.6·10¹⁸ = 1 ÷ (36 × 10⁹)). Three calls for 1 s: 2/3 s each,
/// 666,666,666,666,666 fs, $0.000042592592 (0.23 ÷ 5,400 = 0.0000425925…).
fn shared_among(n: usize, held_us: u64) -> Want {
    let whole = u128::from(held_us) * 1_000_000_000;
    let fs = if n <= 2 { whole } else { whole * 2 / n as u128 };
    let atto_hours = fs * 10 / 36;
    let pico = u128::from(M5_RATE_1E4) * fs / 36_000_000_000;
    Want::Priced {
        quantity: Decimal::from_i128_with_scale(atto_hours as i128, 18).normalize(),
        cost: Decimal::from_i128_with_scale(pico as i128, 12),
    }
}

fn instance_compute(endpoint: &str, held_us: u64) -> Want {
    match endpoint {
        RT => shared(M5_RATE_1E4, held_us),
        SNAP => shared(G4DN_RATE_1E4, held_us),
        C5 => shared(C5_RATE_1E4, held_us),
        _ => Want::FromLatency,
    }
}

/// A synchronous call's lines: compute, data in and out, the per-inference fee
/// (charged when the call got an HTTP 2XX answer, `answered`).
fn call_lines(
    endpoint: &str,
    answered: bool,
    compute: Want,
    data_in: Want,
    data_out: Want,
) -> Vec<(LineItem, Want)> {
    let mut lines = vec![
        (LineItem::Compute, compute),
        (LineItem::DataIn, data_in),
        (LineItem::DataOut, data_out),
    ];
    lines.extend(per_inference(endpoint, answered).map(|fee| (LineItem::Inference, fee)));
    lines
}

/// The receipts a call makes, in order.
fn expected(c: &Call) -> Vec<Expected> {
    let mut tags = BTreeMap::from([("env".to_owned(), "test".to_owned())]);
    if let (Some(team), false) = (
        c.team,
        matches!(c.way, Way::Intercepted | Way::StreamIntercepted),
    ) {
        tags.insert("team".to_owned(), team.to_owned());
    }
    let min_latency = Duration::from_millis(c.latency_ms);
    let bytes_out: u64 = c.parts.iter().map(|&n| n as u64).sum();
    match c.way {
        Way::Send | Way::SendMetered | Way::Intercepted => {
            if c.throttles >= 2 || matches!(c.answer, Answer::Refused | Answer::Unavailable) {
                return Vec::new();
            }
            let ok = c.answer == Answer::Ok;
            let out = if ok { bytes_out } else { 0 };
            let compute = match c.in_flight {
                1 => instance_compute(c.endpoint, c.held_us),
                n => shared_among(n, c.held_us),
            };
            let one = Expected {
                operation: Operation::InvokeEndpoint,
                outcome: if ok { Outcome::Ok } else { Outcome::Error },
                endpoint: c.endpoint,
                bytes_in: c.body as u64,
                bytes_out: Some(out),
                attempts: Some(c.throttles as u32 + 1),
                lines: call_lines(c.endpoint, ok, compute, data(c.body as u64), data(out)),
                tags,
                snapshot: c.endpoint == SNAP,
                min_latency,
                settlement: false,
            };
            // Calls sent together are alike: one receipt each.
            vec![one; c.in_flight]
        }
        Way::Stream => {
            if c.answer == Answer::Unavailable {
                return Vec::new();
            }
            let started = c.answer != Answer::ModelError;
            let out = if started { bytes_out } else { 0 };
            let held_us = if started { c.held_us } else { 0 };
            vec![Expected {
                operation: Operation::InvokeEndpointWithResponseStream,
                outcome: if c.answer == Answer::Ok {
                    Outcome::Ok
                } else {
                    Outcome::Error
                },
                endpoint: c.endpoint,
                bytes_in: c.body as u64,
                bytes_out: Some(out),
                attempts: Some(1),
                lines: call_lines(
                    c.endpoint,
                    // Its 200 arrived: a successful answer, however it ended.
                    started,
                    instance_compute(c.endpoint, held_us),
                    data(c.body as u64),
                    data(out),
                ),
                tags,
                snapshot: false,
                // The fake pauses before a stream's first part, not before a 424.
                min_latency: if started { min_latency } else { Duration::ZERO },
                settlement: false,
            }]
        }
        Way::StreamIntercepted => {
            if c.answer == Answer::Unavailable {
                return Vec::new();
            }
            vec![Expected {
                operation: Operation::InvokeEndpointWithResponseStream,
                outcome: Outcome::Ok,
                endpoint: c.endpoint,
                bytes_in: c.body as u64,
                bytes_out: None,
                attempts: Some(1),
                lines: call_lines(
                    c.endpoint,
                    true,
                    Want::Unpriced,
                    data(c.body as u64),
                    Want::Unpriced,
                ),
                tags,
                snapshot: false,
                min_latency: Duration::ZERO,
                settlement: false,
            }]
        }
        Way::Async => {
            let a = c.async_call.as_ref().unwrap();
            let input = a.input_bytes.unwrap_or(c.body as u64);
            if input > 1 << 30 {
                return Vec::new();
            }
            let submission = Expected {
                operation: Operation::InvokeEndpointAsync,
                outcome: Outcome::Ok,
                endpoint: JOBS,
                bytes_in: input,
                bytes_out: Some(0),
                attempts: None,
                // What is known at submission: data in (no fee is configured).
                lines: vec![(LineItem::DataIn, data(input))],
                tags: tags.clone(),
                snapshot: false,
                min_latency: Duration::ZERO,
                settlement: false,
            };
            let settlement = Expected {
                operation: Operation::InvokeEndpointAsync,
                outcome: if a.failed {
                    Outcome::Error
                } else {
                    Outcome::Ok
                },
                endpoint: JOBS,
                bytes_in: 0,
                bytes_out: Some(a.output_bytes),
                attempts: None,
                // The stated time at a whole instance, the stated output.
                lines: vec![
                    // At most the invocation timeout: SageMaker expires the
                    // request then.
                    (
                        LineItem::Compute,
                        busy_m5(a.processed_us.min(INVOCATION_TIMEOUT_US)),
                    ),
                    (LineItem::DataOut, data(a.output_bytes)),
                ],
                tags,
                snapshot: false,
                min_latency: Duration::ZERO,
                settlement: true,
            };
            vec![submission, settlement]
        }
    }
}

// ---------------------------------------------------------------------------------
// Checking a receipt against the model.

fn lines_of(cost: &Cost, item: LineItem) -> Vec<&sagemeter::billing::CostLine> {
    cost.lines.iter().filter(|l| l.item == item).collect()
}

fn check_line(cost: &Cost, item: LineItem, want: &Want) -> Result<(), TestCaseError> {
    if *want == Want::FromLatency {
        // The latency rounded up to the ms, × $0.00004/s.
        let ms = cost.usage.latency.as_nanos().div_ceil(1_000_000);
        let seconds = Decimal::from(u64::try_from(ms).unwrap()) / Decimal::from(1000);
        let want = Want::Priced {
            quantity: seconds.normalize(),
            cost: seconds * dec(SLS_USD_PER_SECOND),
        };
        return check_line(cost, item, &want);
    }
    let lines = lines_of(cost, item);
    prop_assert_eq!(lines.len(), 1, "one {:?} line on {:#?}", item, cost);
    let line = lines[0];
    match (want, &line.price) {
        (
            Want::Priced {
                quantity,
                cost: usd,
            },
            LinePrice::Priced { cost_usd, .. },
        ) => {
            prop_assert_eq!(
                line.quantity.normalize(),
                *quantity,
                "{:?} quantity on {:#?}",
                item,
                cost
            );
            prop_assert_eq!(cost_usd, usd, "{:?} cost on {:#?}", item, cost);
        }
        (Want::Unpriced, LinePrice::Unpriced { reason }) => {
            prop_assert!(!reason.is_empty(), "{:?} unpriced without a reason", item);
        }
        _ => prop_assert!(false, "{:?}: want {:?}, got {:#?}", item, want, cost),
    }
    Ok(())
}

fn check_receipt(cost: &Cost, e: &Expected) -> Result<(), TestCaseError> {
    prop_assert_eq!(&cost.endpoint, e.endpoint);
    prop_assert_eq!(cost.usage.operation, e.operation, "{:#?}", cost);
    prop_assert_eq!(cost.usage.outcome, e.outcome, "{:#?}", cost);
    prop_assert_eq!(cost.is_async_settlement(), e.settlement, "{:#?}", cost);
    prop_assert_eq!(&cost.tags, &e.tags);
    if !e.settlement {
        prop_assert_eq!(cost.usage.bytes_in, e.bytes_in, "{:#?}", cost);
    }
    if let Some(out) = e.bytes_out {
        prop_assert_eq!(cost.usage.bytes_out, out, "{:#?}", cost);
    }
    if let Some(attempts) = e.attempts {
        prop_assert_eq!(cost.usage.attempts, attempts, "{:#?}", cost);
    }
    prop_assert!(
        cost.usage.latency >= e.min_latency,
        "{:?} < the model's {:?}",
        cost.usage.latency,
        e.min_latency
    );
    for (item, want) in &e.lines {
        check_line(cost, *item, want)?;
    }
    prop_assert_eq!(
        cost.lines.len(),
        e.lines.len(),
        "no other lines: {:#?}",
        cost
    );
    // Never a silent $0: the receipt is the sum of its priced lines; a priced
    // line is $0 only for nothing used; an unpriced one says why.
    let priced: Decimal = cost.lines.iter().filter_map(|l| l.cost_usd()).sum();
    prop_assert_eq!(cost.cost_usd, priced);
    for line in &cost.lines {
        match &line.price {
            LinePrice::Priced {
                cost_usd,
                provenance,
                ..
            } => {
                prop_assert!(
                    !cost_usd.is_zero() || line.quantity.is_zero(),
                    "a priced $0 for {} on {:#?}",
                    line.quantity,
                    cost
                );
                // Fallbacks marked: snap's compute from the snapshot, with a note.
                if e.snapshot && line.item == LineItem::Compute {
                    prop_assert_eq!(provenance.source, PriceOrigin::Snapshot);
                    // The note names the live failure, not only the snapshot's row.
                    let note = provenance.note.as_deref().unwrap_or_default();
                    prop_assert!(note.contains("failed"), "{}", note);
                } else {
                    prop_assert_eq!(provenance.source, PriceOrigin::Override, "{:#?}", cost);
                }
            }
            LinePrice::Unpriced { reason } => prop_assert!(!reason.is_empty()),
            other => prop_assert!(false, "a line priced as {:?}", other),
        }
    }
    let source = if e.snapshot {
        PriceOrigin::Snapshot
    } else {
        PriceOrigin::Override
    };
    prop_assert_eq!(cost.price_source(), Some(source), "{:#?}", cost);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Running a call.

struct World {
    fake: FakeSageMaker,
    _streams: FakeStream,
    scripts: Arc<Mutex<VecDeque<Script>>>,
    time: aws_smithy_async::test_util::ManualTimeSource,
    meter: Meter,
    client: Client,
    sdk: aws_sdk_sagemakerruntime::Client,
    intercepted: aws_sdk_sagemakerruntime::Client,
    streams: Client,
    streams_intercepted: aws_sdk_sagemakerruntime::Client,
    receipts: Receipts,
}

async fn world() -> World {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(SLS, vec![FakeVariant::serverless("AllTraffic", 2048)]);
    fake.add_endpoint(
        RT,
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake.add_endpoint(
        SNAP,
        vec![FakeVariant::instance("AllTraffic", "ml.g4dn.xlarge", 1)],
    );
    fake.add_endpoint(
        C5,
        vec![FakeVariant::instance("AllTraffic", "ml.c5.large", 1)],
    );
    fake.add_endpoint(
        JOBS,
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let scripts: Arc<Mutex<VecDeque<Script>>> = Arc::default();
    let streams = {
        let scripts = scripts.clone();
        FakeStream::start(move |_| scripts.lock().unwrap().pop_front().unwrap_or_default()).await
    };
    // Two attempts, 1 ms apart: a throttle or a 503 is tried once more.
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(1));
    let config = fake
        .sdk_config()
        .await
        .to_builder()
        .retry_config(retry)
        .build();
    let (time, shared_time) = manual_clock();
    let receipts = Receipts::default();
    let usd = dec;
    let data = |b: sagemeter::ClientBuilder| {
        b.price_override(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            usd(DATA_USD_PER_GB),
        )
        .price_override(
            PriceKey::DataOut {
                region: REGION.into(),
            },
            usd(DATA_USD_PER_GB),
        )
    };
    let meter = data(Client::builder(&config))
        .without_discovery()
        .time_source(shared_time)
        .default_tag("env", "test")
        .sink(receipts.clone())
        .endpoint_profile(EndpointProfile::new(
            SLS,
            vec![VariantProfile::serverless("AllTraffic", 2048)],
        ))
        .endpoint_profile(EndpointProfile::new(
            RT,
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .endpoint_profile(EndpointProfile::new(
            SNAP,
            vec![VariantProfile::instance("AllTraffic", "ml.g4dn.xlarge", 1)],
        ))
        .endpoint_profile(EndpointProfile::new(
            C5,
            vec![VariantProfile::instance("AllTraffic", "ml.c5.large", 1)],
        ))
        .endpoint_profile(
            EndpointProfile::new(
                JOBS,
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_override(PriceKey::serverless(REGION, 2), usd(SLS_USD_PER_SECOND))
        .price_override(PriceKey::hosting(REGION, "ml.m5.xlarge"), usd("0.23"))
        .price_override(PriceKey::hosting(REGION, "ml.c5.large"), usd("0.102"))
        .price_override(
            PriceKey::AsyncInference {
                region: REGION.into(),
                instance_type: "ml.m5.xlarge".into(),
            },
            usd("0.23"),
        )
        .usage_charges(
            SLS,
            UsageCharges::default().per_1000_calls(usd(SLS_USD_PER_1000_CALLS)),
        )
        .build_meter()
        .unwrap();
    let runtime = aws_sdk_sagemakerruntime::Client::new(&config);
    let client = Client::from_parts(runtime.clone(), meter.clone());
    let intercepted = crate::support::intercepted(&config, &meter);
    let stream_config = streams.sdk_config().await;
    let streams_client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::new(&stream_config),
        meter.clone(),
    );
    let streams_intercepted = crate::support::intercepted(&stream_config, &meter);
    World {
        fake,
        _streams: streams,
        scripts,
        time,
        meter,
        client,
        sdk: runtime,
        intercepted,
        streams: streams_client,
        streams_intercepted,
        receipts,
    }
}

/// A body of `n` bytes.
fn bytes(n: usize) -> Blob {
    Blob::new(vec![b'x'; n])
}

/// Names call `i` of a run in a failure's message: its index, way in and endpoint.
fn named(i: usize, c: &Call) -> String {
    format!("call {i} ({:?} on {})", c.way, c.endpoint)
}

/// How many attempts of an `InvokeEndpoint` call reach the fake: a throttled or
/// unavailable one is tried once more (two in all), each of the calls sent together.
fn attempts(c: &Call) -> u64 {
    let one = match c.answer {
        Answer::Unavailable => 2,
        _ => (c.throttles + 1).min(2),
    };
    one * c.in_flight as u64
}

/// Waits (bounded) until the meter's background pricing is done and at least
/// `n` receipts were made, after call `i`.
async fn settle_down(w: &World, i: usize, c: &Call, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.receipts.all().len() < n || w.meter.background_tasks() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}: {} of {n} receipts, {} background tasks after 10 s",
            named(i, c),
            w.receipts.all().len(),
            w.meter.background_tasks()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs call `i`, an `InvokeEndpoint` whose future is `send`; on an instance
/// endpoint the fake holds the answered attempt while the meter's clock moves
/// `held_us`. A call that ends before its attempts reached the fake fails the
/// run at once, saying how it ended.
async fn held_invoke<T: Send + std::fmt::Debug + 'static>(
    w: &World,
    i: usize,
    c: &Call,
    send: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let holds = c.endpoint != SLS && c.throttles < 2 && c.answer != Answer::Unavailable;
    if !holds {
        return send.await;
    }
    let before = w.fake.invocations();
    let want = c.throttles + 1;
    w.fake.hold();
    let task = tokio::spawn(send);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.fake.invocations() - before < want {
        if task.is_finished() {
            w.fake.release();
            let arrived = w.fake.invocations() - before;
            let ended = task.await.unwrap();
            panic!(
                "{}: ended after {arrived} of its {want} attempts reached the fake: {ended:?}",
                named(i, c)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: only {} of its {want} attempts reached the fake in 10 s",
            named(i, c),
            w.fake.invocations() - before
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    w.time.advance(Duration::from_micros(c.held_us));
    w.fake.release();
    task.await.unwrap()
}

/// Makes call `i`; the receipts its way in returned (the sink has them all).
async fn run(w: &World, i: usize, c: &Call) -> Vec<Cost> {
    *w.fake.state.latency.lock().unwrap() = Duration::from_millis(c.latency_ms);
    w.fake.throttle_next(c.throttles);
    // A throttled answer takes SageMaker's front end 200 ms on `sls` (once per
    // call, so that a run stays short): none of it is the model's, none billed.
    *w.fake.state.throttle_latency.lock().unwrap() = match (c.endpoint, c.throttles) {
        (SLS, 1) => THROTTLE_DELAY,
        _ => Duration::ZERO,
    };
    match c.answer {
        Answer::ModelError => w
            .fake
            .fail_invocations(424, "ModelError", "the model failed"),
        Answer::Refused => w.fake.fail_invocations(400, "ValidationError", "refused"),
        Answer::Unavailable => w.fake.fail_invocations(503, "ServiceUnavailable", "busy"),
        Answer::Ok | Answer::BrokenOff => *w.fake.state.invoke_error.lock().unwrap() = None,
    }
    let response = bytes(c.parts.iter().sum());
    // Only an answered call takes its body from the queue.
    let invoke = matches!(c.way, Way::Send | Way::SendMetered | Way::Intercepted);
    if invoke && c.answer == Answer::Ok && c.throttles < 2 && c.in_flight == 1 {
        w.fake.next_response_bodies(&[response.as_ref()]);
    }
    let body = bytes(c.body);
    match c.way {
        Way::Send if c.in_flight > 1 => {
            // Sent together, held together while the clock moves, let go together.
            let before = w.fake.invocations();
            let response = response.as_ref();
            w.fake.next_response_bodies(&vec![response; c.in_flight]);
            w.fake.hold();
            let tasks: Vec<_> = (0..c.in_flight)
                .map(|_| {
                    let mut request = w
                        .client
                        .invoke_endpoint()
                        .endpoint_name(c.endpoint)
                        .body(bytes(c.body));
                    if let Some(team) = c.team {
                        request = request.tag("team", team);
                    }
                    tokio::spawn(request.send())
                })
                .collect();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while w.fake.invocations() - before < c.in_flight as u64 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: only {} of its {} calls sent together reached the fake in 10 s",
                    named(i, c),
                    w.fake.invocations() - before,
                    c.in_flight
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            w.time.advance(Duration::from_micros(c.held_us));
            w.fake.release();
            let mut costs = Vec::new();
            for task in tasks {
                costs.push(task.await.unwrap().unwrap().into_parts().1);
            }
            costs
        }
        Way::Send => {
            let mut request = w
                .client
                .invoke_endpoint()
                .endpoint_name(c.endpoint)
                .body(body);
            if let Some(team) = c.team {
                request = request.tag("team", team);
            }
            match held_invoke(w, i, c, request.send()).await {
                Ok(answer) => vec![answer.into_parts().1],
                Err(err) => err.cost().cloned().into_iter().collect(),
            }
        }
        Way::SendMetered => {
            let request = w.sdk.invoke_endpoint().endpoint_name(c.endpoint).body(body);
            let sent = match c.team {
                Some(team) => {
                    let tags = [("team".to_owned(), team.to_owned())];
                    held_invoke(w, i, c, request.send_metered_tagged(&w.meter, tags)).await
                }
                None => held_invoke(w, i, c, request.send_metered(&w.meter)).await,
            };
            match sent {
                Ok(answer) => vec![answer.into_parts().1],
                Err(err) => err.cost().cloned().into_iter().collect(),
            }
        }
        Way::Intercepted => {
            let request = w
                .intercepted
                .invoke_endpoint()
                .endpoint_name(c.endpoint)
                .body(body)
                .send();
            let _ = held_invoke(w, i, c, request).await;
            Vec::new()
        }
        Way::Stream | Way::StreamIntercepted => {
            let script = match c.answer {
                Answer::ModelError => Script::new().model_error(),
                Answer::Unavailable => Script::new().service_unavailable(),
                _ => {
                    let mut s = Script::new().pause(Duration::from_millis(c.latency_ms));
                    for &n in &c.parts {
                        s = s.part(vec![b'y'; n]);
                    }
                    if c.answer == Answer::BrokenOff {
                        s = s.model_stream_error("ModelFailure");
                    }
                    s
                }
            };
            w.scripts.lock().unwrap().push_back(script);
            if c.way == Way::StreamIntercepted {
                if let Ok(mut output) = w
                    .streams_intercepted
                    .invoke_endpoint_with_response_stream()
                    .endpoint_name(c.endpoint)
                    .body(body)
                    .send()
                    .await
                {
                    while let Ok(Some(_)) = output.body.recv().await {}
                }
                return Vec::new();
            }
            let mut request = w
                .streams
                .invoke_endpoint_with_response_stream()
                .endpoint_name(c.endpoint)
                .body(body);
            if let Some(team) = c.team {
                request = request.tag("team", team);
            }
            match request.send().await {
                Ok(mut stream) => {
                    w.time.advance(Duration::from_micros(c.held_us));
                    while let Ok(Some(_)) = stream.body.recv().await {}
                    stream.cost().cloned().into_iter().collect()
                }
                Err(err) => err.cost().cloned().into_iter().collect(),
            }
        }
        Way::Async => {
            let a = c.async_call.as_ref().unwrap();
            let mut request = w.client.invoke_endpoint_async().endpoint_name(JOBS);
            request = match a.input_bytes {
                Some(n) => request
                    .input_location("s3://fake-bucket/input/1.json")
                    .input_bytes(n),
                None => request.body(body),
            };
            if let Some(team) = c.team {
                request = request.tag("team", team);
            }
            let submitted_before = w.fake.state.async_submissions.load(Ordering::SeqCst);
            match request.send().await {
                Ok(invocation) => {
                    let submitted = invocation.cost().clone();
                    let mut done =
                        AsyncCompletion::processed_for(Duration::from_micros(a.processed_us))
                            .output_bytes(a.output_bytes);
                    if a.failed {
                        done = done.failed();
                    }
                    vec![submitted, invocation.settle(done).await]
                }
                // Above 2³⁰ bytes: refused before it is sent.
                Err(Error::InvalidRequest(_)) if a.input_bytes > Some(1 << 30) => {
                    let submitted = w.fake.state.async_submissions.load(Ordering::SeqCst);
                    assert_eq!(submitted, submitted_before, "refused, yet sent");
                    Vec::new()
                }
                Err(err) => panic!("{err:?}"),
            }
        }
    }
}

/// Plays a run and checks every receipt and the totals after each call.
async fn play(calls: Vec<Call>) -> Result<(), TestCaseError> {
    let w = world().await;
    let mut seen = 0usize;
    for (i, c) in calls.iter().enumerate() {
        let started = std::time::Instant::now();
        let sent_before = w.fake.invocations();
        let returned = run(&w, i, c).await;
        let elapsed = started.elapsed();
        // Every attempt the model counts reached the fake: one lost on its way
        // (a connection the fake closed) is no pricing rule's doing.
        if matches!(c.way, Way::Send | Way::SendMetered | Way::Intercepted) {
            prop_assert_eq!(
                w.fake.invocations() - sent_before,
                attempts(c),
                "{}: attempts that reached the fake ({:?})",
                named(i, c),
                c
            );
        }
        let want = expected(c);
        settle_down(&w, i, c, seen + want.len()).await;
        let all = w.receipts.all();
        prop_assert_eq!(
            all.len() - seen,
            want.len(),
            "receipts of {:?}: {:#?}",
            c,
            &all[seen..]
        );
        let made = &all[seen..];
        for (cost, e) in made.iter().zip(&want) {
            check_receipt(cost, e).map_err(|err| {
                TestCaseError::fail(format!("{err} (call {c:?}; all receipts {made:#?})"))
            })?;
        }
        // The receipts a way in returns are the ones the sinks got (calls sent
        // together are recorded in any order).
        if !returned.is_empty() {
            prop_assert_eq!(returned.len(), made.len());
            for cost in &returned {
                prop_assert!(made.contains(cost), "returned, not recorded: {:#?}", cost);
            }
        }
        // Serverless compute has an upper bound too: the call's own time. Billed
        // ms ≤ the call's elapsed ms rounded up (the receipt's latency is within
        // it); a throttled attempt's 200 ms is not billed, only the attempt that
        // reached the model (a few ms).
        if c.endpoint == SLS {
            for cost in made {
                prop_assert!(
                    cost.usage.latency <= elapsed,
                    "{:?} > {:?}",
                    cost.usage.latency,
                    elapsed
                );
                if let Some(compute) = lines_of(cost, LineItem::Compute).first()
                    && compute.cost_usd().is_some()
                {
                    let ceiling_ms = elapsed.as_nanos().div_ceil(1_000_000);
                    prop_assert!(
                        compute.quantity * Decimal::from(1000) <= Decimal::from(ceiling_ms as u64),
                        "billed {} s for {:?}",
                        compute.quantity,
                        elapsed
                    );
                }
                if c.throttles == 1 {
                    prop_assert!(
                        elapsed >= THROTTLE_DELAY,
                        "the throttle's delay: {:?}",
                        elapsed
                    );
                    // The throttled attempt and the answered one took apart
                    // at least the delay and the billed time: a bound that a
                    // stalled machine slowing the answered attempt past the
                    // delay does not break, and billing both attempts does.
                    prop_assert!(
                        cost.usage.latency + THROTTLE_DELAY <= elapsed,
                        "the throttled attempt billed: {:?} of {:?}",
                        cost.usage.latency,
                        elapsed
                    );
                }
            }
        }
        // Calls sent together on `rt`'s 2 instances: allocated at most the 2
        // instances' held time together (2 × held µs ÷ 3.6·10⁹ h × $0.23, in
        // pico-dollars 2 × 2300 × held ÷ 36).
        if c.in_flight > 1 {
            let compute: Decimal = made
                .iter()
                .filter_map(|cost| lines_of(cost, LineItem::Compute)[0].cost_usd())
                .sum();
            let most = Decimal::from(2 * M5_RATE_1E4 * c.held_us)
                / Decimal::from(36)
                / Decimal::from(1_000_000_000_000u64);
            prop_assert!(compute <= most, "{} > {}", compute, most);
        }
        seen = all.len();
    }
    // Totals: exact sums of the receipts, and each receipt's running totals the
    // sums up to it.
    // In the order they were added to the totals: calls sent together reach the
    // sinks in any order.
    let mut all = w.receipts.all();
    all.sort_by_key(|cost| cost.running_client_usd);
    let mut client = Decimal::ZERO;
    let mut by_endpoint: HashMap<String, Decimal> = HashMap::new();
    let mut by_tag: HashMap<String, HashMap<String, Decimal>> = HashMap::new();
    for cost in &all {
        client += cost.cost_usd;
        let endpoint = by_endpoint.entry(cost.endpoint.clone()).or_default();
        *endpoint += cost.cost_usd;
        prop_assert_eq!(cost.running_client_usd, client);
        prop_assert_eq!(cost.running_endpoint_usd, *endpoint);
        for (k, v) in &cost.tags {
            *by_tag
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += cost.cost_usd;
        }
    }
    let totals = w.meter.totals();
    let calls_made = all.iter().filter(|c| !c.is_async_settlement()).count();
    prop_assert_eq!(totals.calls, calls_made as u64);
    prop_assert_eq!(totals.client_usd, client);
    prop_assert_eq!(totals.by_endpoint, by_endpoint);
    prop_assert_eq!(totals.by_tag, by_tag);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_call_that_ran_has_one_receipt_priced_as_the_rules_say(
        calls in prop::collection::vec(call(), 1..8)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(play(calls))?;
    }
}
