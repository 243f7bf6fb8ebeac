//! Metered `InvokeEndpointWithResponseStream`, driven through the real SDK against an
//! in-process server that writes real AWS event-stream frames (`tests/support/fake_stream.rs`).
//!
//! What is specified here: the stream yields the SDK's own `PayloadPart`s; exactly one
//! receipt (and one cost log line) per stream whether it ends, fails or is dropped;
//! time to first byte, parts, bytes and tokens on the receipt; compute billed on the
//! whole stream; per-token and per-inference charges on top of compute or alone.

use crate::support::by_hand::{gigabytes, hours, r12, serverless_seconds};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::fake_stream::{FakeStream, REGION, Script, VARIANT};
use crate::support::receipts::{NoPriceList, Receipts, assert_not_noted_containing, line};
use crate::support::spans::Captured;
use crate::support::{AttemptsEnded, intercepted, manual_clock};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use sagemeter::billing::{LineItem, LinePrice, UsageCharges};
use sagemeter::client::MeteredResponseStream;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::PriceKey;
use sagemeter::usage::{FnTokenCounter, Outcome, TokenUsage};
use sagemeter::{Client, ClientBuilder, Cost, Decimal, Error};
use std::sync::Arc;
use std::time::Duration;

const LLM: &str = "llm-g5"; // ml.g5.xlarge × 1
const SERVERLESS_LLM: &str = "llm-serverless"; // 2048 MB

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const G5_USD_PER_HOUR: &str = "1.408";
const DATA_USD_PER_GB: &str = "0.016";
const SERVERLESS_2GB_USD_PER_SECOND: &str = "0.00004";

// ---------------------------------------------------------------------------------
// Set-up: a fake runtime, a metered client with fixed prices, a receipt probe and a
// capture of the `sagemeter` log lines and spans.

/// Never reaches AWS: every rate in these tests is an override.
/// Busy time: these tests check compute against each stream's measured latency
/// (processor sharing of the same calls is in `a_stream_on_the_default_client_is_billed_its_processor_share`).
fn builder(conf: &aws_types::SdkConfig) -> ClientBuilder {
    Client::builder(conf)
        .allocation(sagemeter::billing::Allocation::BusyTime)
        .without_discovery()
        .price_source(NoPriceList)
        .endpoint_profile(EndpointProfile::new(
            LLM,
            vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
        ))
        .endpoint_profile(EndpointProfile::new(
            SERVERLESS_LLM,
            vec![VariantProfile::serverless(VARIANT, 2048)],
        ))
        .price_override(
            PriceKey::hosting(REGION, "ml.g5.xlarge"),
            dec(G5_USD_PER_HOUR),
        )
        .price_override(
            PriceKey::serverless(REGION, 2),
            dec(SERVERLESS_2GB_USD_PER_SECOND),
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
}

struct Harness {
    fake: FakeStream,
    client: Client,
    receipts: Receipts,
    logs: Captured,
    _logging: tracing::subscriber::DefaultGuard,
}

async fn harness(
    scripts: impl Fn(&str) -> Script + Send + Sync + 'static,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Harness {
    harness_on(scripts, |conf| conf, configure).await
}

/// [`harness`], the fake's SDK config changed by `sdk` first (its timeouts, say).
async fn harness_on(
    scripts: impl Fn(&str) -> Script + Send + Sync + 'static,
    sdk: impl FnOnce(aws_types::SdkConfig) -> aws_types::SdkConfig,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Harness {
    let (logs, logging) = crate::support::spans::capture();
    let fake = FakeStream::start(scripts).await;
    let receipts = Receipts::default();
    let conf = sdk(fake.sdk_config().await);
    let client = configure(builder(&conf).sink(receipts.clone()))
        .build()
        .unwrap();
    Harness {
        fake,
        client,
        receipts,
        logs,
        _logging: logging,
    }
}

/// Sends the prompt as a stream request to `endpoint`.
async fn send(client: &Client, endpoint: &str) -> sagemeter::Result<MeteredResponseStream> {
    client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(endpoint)
        .content_type("application/json")
        .body(Blob::new(PROMPT))
        .send()
        .await
}

async fn open(client: &Client, endpoint: &str) -> MeteredResponseStream {
    send(client, endpoint).await.expect("the stream opens")
}

/// Reads a stream as far as its `[DONE]` part, as a caller that stops there does
/// (not waiting for the end of the stream).
async fn read_to_done(response: &mut MeteredResponseStream) {
    while let Some(event) = response.body.recv().await.unwrap() {
        if let ResponseStream::PayloadPart(part) = event
            && part.bytes().unwrap().as_ref().ends_with(b"[DONE]\n\n")
        {
            return;
        }
    }
}

/// Reads a stream to its end the way SDK users do; returns the payload bytes.
async fn read_all(response: &mut MeteredResponseStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(event) = response.body.recv().await.expect("no stream error") {
        if let ResponseStream::PayloadPart(part) = event {
            out.extend_from_slice(part.bytes().unwrap().as_ref());
        }
    }
    out
}

const PROMPT: &str = r#"{"messages":[{"role":"user","content":"Say hello"}],"stream":true,"stream_options":{"include_usage":true}}"#;

/// An OpenAI-compatible chat completion stream (vLLM / LMI), as SSE, cut into parts
/// that do not follow line boundaries; the last data chunk before `[DONE]` has `usage`.
fn openai_parts() -> Vec<&'static str> {
    vec![
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\nda",
        "ta: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"comple",
        "tion_tokens\":3,\"total_tokens\":24,\"prompt_tokens_details\":{\"cached_tokens\":16}}}\n\n",
        "data: [DONE]\n\n",
    ]
}

fn cost_lines(cost: &Cost) -> Decimal {
    cost.lines.iter().filter_map(|l| l.cost_usd()).sum()
}

// ---------------------------------------------------------------------------------
// Full streams.

#[tokio::test]
async fn a_full_stream_yields_the_sdk_parts_and_one_receipt_with_ttfb_parts_bytes_and_tokens() {
    let h = harness(
        |_| {
            Script::new()
                .pause(Duration::from_millis(40))
                .parts(openai_parts())
        },
        |b| b,
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    assert_eq!(response.invoked_production_variant(), Some(VARIANT));
    assert_eq!(response.content_type(), Some("text/event-stream"));
    assert!(
        response.cost().is_none(),
        "no receipt while the stream is open"
    );

    let payload = read_all(&mut response).await;

    // The caller saw exactly the bytes the model sent.
    assert_eq!(payload, openai_parts().concat().as_bytes());
    let cost = response
        .cost()
        .expect("a receipt once the stream has ended")
        .clone();
    let u = &cost.usage;
    assert_eq!(u.outcome, Outcome::Ok);
    assert_eq!(u.parts, Some(5));
    assert_eq!(u.bytes_out, payload.len() as u64);
    assert_eq!(u.bytes_in, PROMPT.len() as u64);
    // 21 prompt tokens (16 of them cached: counted once), 3 completion tokens.
    assert_eq!((u.input_tokens, u.output_tokens), (Some(21), Some(3)));
    let ttfb = u.time_to_first_byte.expect("time to first byte");
    assert!(ttfb >= Duration::from_millis(40), "{ttfb:?}");
    assert!(u.latency >= ttfb);
    assert_eq!(cost.variant.as_deref(), Some(VARIANT));
    assert!(cost.call_id.starts_with("fake-"), "{}", cost.call_id);

    // Compute: the whole stream, latency h × 1.408 USD/h; data: bytes / 2^30 × 0.016.
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(compute.quantity, hours(u.latency).normalize());
    assert_eq!(
        compute.cost_usd(),
        Some(r12(hours(u.latency) * dec(G5_USD_PER_HOUR)))
    );
    assert_eq!(
        line(&cost, LineItem::DataOut).cost_usd(),
        Some(r12(gigabytes(u.bytes_out) * dec(DATA_USD_PER_GB)))
    );
    assert!(cost.is_fully_priced());
    assert_eq!(cost.cost_usd, cost_lines(&cost));

    // One receipt everywhere: the awaitable, the sink, the totals, one log line.
    assert_eq!(receipt.await.as_ref(), Some(&cost));
    assert_eq!(h.receipts.all(), vec![cost.clone()]);
    assert_eq!(h.client.meter().totals().calls, 1);
    assert_eq!(h.client.meter().totals().client_usd, cost.cost_usd);
    let logged = h.logs.cost_lines();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["outcome"], "ok");
    assert_eq!(logged[0]["operation"], "InvokeEndpointWithResponseStream");
    assert_eq!(logged[0]["gen_ai.usage.output_tokens"], "3");
    assert_eq!(logged[0]["cost_usd"], cost.cost_usd.to_string());
    assert!(
        !logged[0]
            .values()
            .any(|v| v.contains("Hel") || v.contains("Say hello")),
        "the payload is never logged: {logged:#?}"
    );

    // Reading past the end changes nothing.
    assert!(response.body.recv().await.unwrap().is_none());
    drop(response);
    assert_eq!(h.receipts.all().len(), 1);
    assert_eq!(h.logs.cost_lines().len(), 1);
    assert_eq!(h.fake.received().len(), 1);
}

#[tokio::test]
async fn the_call_span_carries_tokens_under_sagemeter_and_opentelemetry_genai_names() {
    let h = harness(|_| Script::new().parts(openai_parts()), |b| b).await;
    let mut response = open(&h.client, LLM).await;
    read_all(&mut response).await;
    drop(response);

    let spans = h.logs.closed_spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span["endpoint"], LLM);
    assert_eq!(span["operation"], "InvokeEndpointWithResponseStream");
    assert_eq!(span["outcome"], "ok");
    assert_eq!(span["input_tokens"], "21");
    assert_eq!(span["output_tokens"], "3");
    assert_eq!(span["gen_ai.usage.input_tokens"], "21");
    assert_eq!(span["gen_ai.usage.output_tokens"], "3");
    let cost = h.receipts.all().remove(0);
    assert_eq!(span["cost_usd"], cost.cost_usd.to_string());
    // The cost under the names proposed for the OpenTelemetry GenAI conventions,
    // a double as the proposal types it (OpenTelemetry bridges export a string
    // for a text value, which no backend sums).
    let amount: f64 = cost.cost_usd.to_string().parse().unwrap();
    assert_eq!(span["gen_ai.usage.cost.amount"], format!("f64:{amount}"));
    assert_eq!(span["gen_ai.usage.cost.currency"], "USD");
    // Where the price came from and whether the cost is whole, as on the cost line.
    assert_eq!(span["price_source"], "override");
    assert_eq!(span["fully_priced"], "true");
}

#[tokio::test]
async fn serverless_compute_is_billed_on_the_whole_stream_duration() {
    let h = harness(
        |_| {
            Script::new()
                .part("data: {\"token\":{\"text\":\"a\"}}\n\n")
                .pause(Duration::from_millis(150))
                .part("data: {\"token\":{\"text\":\"b\"},\"details\":{\"generated_tokens\":2,\"input_length\":6}}\n\n")
        },
        |b| b,
    )
    .await;
    let mut response = open(&h.client, SERVERLESS_LLM).await;
    read_all(&mut response).await;
    let cost = response.cost().unwrap();

    // Billed seconds = the stream's wall time rounded up to the ms, pause included.
    let compute = line(cost, LineItem::Compute);
    assert_eq!(
        compute.quantity,
        serverless_seconds(cost.usage.latency).normalize()
    );
    assert!(compute.quantity >= dec("0.150"), "{}", compute.quantity);
    assert_eq!(
        compute.cost_usd(),
        Some(r12(
            serverless_seconds(cost.usage.latency) * dec(SERVERLESS_2GB_USD_PER_SECOND)
        ))
    );
    // TGI streamed details: 6 input tokens, 2 generated.
    assert_eq!(
        (cost.usage.input_tokens, cost.usage.output_tokens),
        (Some(6), Some(2))
    );
}

/// A fake that refuses the first request (503, before the model) and answers
/// every other with `then`, and a client whose SDK retries once at once.
async fn refused_once_then(
    then: impl Fn() -> Script + Send + Sync + 'static,
) -> (FakeStream, Client) {
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fake = FakeStream::start(move |_| {
        if refused.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Script::new().service_unavailable()
        } else {
            then()
        }
    })
    .await;
    let conf = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&conf)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build(),
    );
    let client = builder(&conf).runtime_client(runtime).build().unwrap();
    (fake, client)
}

#[tokio::test]
async fn a_model_stream_error_before_the_stream_on_a_retry_is_the_attempt_billed() {
    // SageMaker Runtime answers `ModelStreamError` with 400 (its model makes it a
    // client error), after the model ran: that attempt is billed, the refused
    // one before it is not.
    let (fake, client) = refused_once_then(|| Script::new().model_stream_error_at_start()).await;
    let err = send(&client, LLM)
        .await
        .expect_err("the model's stream failed");
    assert!(err.cost().is_some(), "{err:?}");
    let Error::InvokeWithResponseStream { source, cost, .. } = err else {
        panic!("expected Error::InvokeWithResponseStream, got {err:?}");
    };
    assert!(
        source
            .as_service_error()
            .is_some_and(|e| e.is_model_stream_error()),
        "{source:?}"
    );
    let cost = cost.expect("the model ran: a receipt");

    assert_eq!(
        fake.received().len(),
        2,
        "refused once, then the model failed"
    );
    assert_eq!(cost.usage.attempts, 2);
    assert_eq!(cost.usage.outcome, Outcome::Error);
    crate::support::receipts::assert_noted(
        &cost,
        "2 attempts: 1 reached the model and are billed, 1 were not",
    );
    // Data in once, for the one attempt that reached the model.
    assert_eq!(cost.usage.bytes_in, PROMPT.len() as u64);
}

#[tokio::test]
async fn a_stream_opened_on_a_retry_is_billed_for_the_whole_stream_not_up_to_its_headers() {
    let (fake, client) = refused_once_then(|| {
        Script::new()
            .part("data: a\n\n")
            .pause(Duration::from_millis(300))
            .part("data: b\n\n")
    })
    .await;
    let started = std::time::Instant::now();
    let mut response = open(&client, LLM).await;
    read_all(&mut response).await;
    let wall = started.elapsed();
    let cost = response.cost().unwrap();

    assert_eq!(fake.received().len(), 2, "refused once, then streamed");
    assert_eq!(cost.usage.attempts, 2);
    crate::support::receipts::assert_noted(
        cost,
        "2 attempts: 1 reached the model and are billed, 1 were not",
    );
    // The answered attempt is billed from when it went out to the stream's end,
    // the 300 ms pause between the parts included; the refused attempt is not.
    assert!(
        cost.usage.latency >= Duration::from_millis(300) && cost.usage.latency <= wall,
        "{:?} billed of {wall:?}",
        cost.usage.latency
    );
    let compute = line(cost, LineItem::Compute);
    assert_eq!(compute.quantity, hours(cost.usage.latency));
    assert_eq!(
        compute.cost_usd(),
        Some(r12(hours(cost.usage.latency) * dec(G5_USD_PER_HOUR)))
    );
}

// ---------------------------------------------------------------------------------
// Errors.

/// A stream that fails before its first part (the model timed out with no output)
/// says it had 0 parts, not that its parts were not counted.
#[tokio::test]
async fn a_stream_that_fails_before_any_part_counts_zero_parts() {
    let h = harness(
        |_| Script::new().model_stream_error("ModelInvocationTimeExceeded"),
        |b| b,
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    response
        .body
        .recv()
        .await
        .expect_err("the model stream error");
    let cost = response.cost().expect("a receipt at the error");
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert_eq!(cost.usage.parts, Some(0));
}

#[tokio::test]
async fn a_model_stream_error_mid_stream_makes_one_error_receipt_billed_up_to_the_error() {
    let h = harness(
        |_| {
            Script::new()
                .part("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
                .pause(Duration::from_millis(20))
                .model_stream_error("ModelInvocationTimeExceeded")
        },
        |b| b,
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();

    let first = response.body.recv().await.unwrap();
    assert!(matches!(first, Some(ResponseStream::PayloadPart(_))));
    // The SDK's own error, untouched.
    let err = response
        .body
        .recv()
        .await
        .expect_err("the model stream error");
    match err.as_service_error() {
        Some(ResponseStreamError::ModelStreamError(e)) => {
            assert_eq!(e.error_code(), Some("ModelInvocationTimeExceeded"))
        }
        other => panic!("expected a ModelStreamError, got {other:?}"),
    }

    let cost = response.cost().expect("a receipt at the error").clone();
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert_eq!(cost.usage.parts, Some(1));
    assert!(cost.usage.latency >= Duration::from_millis(20));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("ModelStreamError (ModelInvocationTimeExceeded)")),
        "{:?}",
        cost.notes
    );
    assert!(
        !cost.notes.iter().any(|n| n.contains("broke off")),
        "the error message (model output) is not copied: {:?}",
        cost.notes
    );
    assert!(line(&cost, LineItem::Compute).cost_usd().unwrap() > Decimal::ZERO);

    // Whatever the caller does next, there is one receipt.
    let _ = response.body.recv().await;
    drop(response);
    assert_eq!(receipt.await, Some(cost.clone()));
    assert_eq!(h.receipts.all(), vec![cost]);
    let logged = h.logs.cost_lines();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["outcome"], "error");
}

#[tokio::test]
async fn an_internal_stream_failure_or_a_broken_connection_ends_the_receipt_as_an_error() {
    let h = harness(
        |endpoint| match endpoint {
            "internal-failure" => Script::new().part("data: {}\n\n").internal_stream_failure(),
            _ => Script::new().part("data: {}\n\n").break_connection(),
        },
        |b| {
            b.endpoint_profile(EndpointProfile::new(
                "internal-failure",
                vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
            ))
            .endpoint_profile(EndpointProfile::new(
                "broken",
                vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
            ))
        },
    )
    .await;

    let mut failed = open(&h.client, "internal-failure").await;
    failed.body.recv().await.unwrap();
    let err = failed.body.recv().await.expect_err("InternalStreamFailure");
    assert!(matches!(
        err.as_service_error(),
        Some(ResponseStreamError::InternalStreamFailure(_))
    ));
    let cost = failed.cost().unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("InternalStreamFailure"))
    );

    let mut broken = open(&h.client, "broken").await;
    broken.body.recv().await.unwrap();
    let err = broken.body.recv().await.expect_err("a broken stream");
    assert!(err.as_service_error().is_none(), "{err:?}");
    let cost = broken.cost().unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert_eq!(cost.usage.parts, Some(1));

    drop((failed, broken));
    assert_eq!(h.receipts.all().len(), 2);
    assert_eq!(h.logs.cost_lines().len(), 2);
}

#[tokio::test]
async fn a_model_error_before_the_stream_is_billed_and_returned_with_the_sdk_error() {
    let h = harness(|_| Script::new().model_error(), |b| b).await;
    let err = h
        .client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(LLM)
        .body(Blob::new(PROMPT))
        .send()
        .await
        .expect_err("a model error");
    let Error::InvokeWithResponseStream {
        endpoint,
        source,
        cost,
    } = err
    else {
        panic!("expected Error::InvokeWithResponseStream, got {err:?}");
    };
    assert_eq!(endpoint, LLM);
    assert!(
        source
            .as_service_error()
            .is_some_and(|e| e.is_model_error())
    );
    let cost = cost.expect("the model ran: the call is billed");
    assert_eq!(cost.usage.outcome, Outcome::Error);
    assert_eq!(h.receipts.all(), vec![*cost]);
}

// ---------------------------------------------------------------------------------
// Dropping a stream.

#[tokio::test]
async fn dropping_a_stream_early_makes_exactly_one_cancelled_receipt_and_log_line() {
    let h = harness(
        |_| {
            Script::new()
                .part("data: {\"choices\":[{\"delta\":{\"content\":\"Once\"}}]}\n\n")
                .part("data: {\"choices\":[{\"delta\":{\"content\":\" upon\"}}]}\n\n")
                .hang_until_client_leaves()
        },
        |b| b,
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    let first = response.body.recv().await.unwrap();
    assert!(matches!(first, Some(ResponseStream::PayloadPart(_))));
    tokio::time::sleep(Duration::from_millis(30)).await;

    drop(response); // the caller stops reading: no end, no error

    let cost = receipt.await.expect("a dropped stream still has a receipt");
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert!(cost.usage.latency >= Duration::from_millis(30));
    assert!(cost.usage.parts >= Some(1));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("cancelled") && n.contains("at least")),
        "{:?}",
        cost.notes
    );
    assert!(line(&cost, LineItem::Compute).cost_usd().unwrap() > Decimal::ZERO);
    // The model stops: the connection is closed.
    h.fake.wait_for_hang_ups(1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(h.receipts.all(), vec![cost.clone()]);
    assert_eq!(h.client.meter().totals().calls, 1);
    let logged = h.logs.cost_lines();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["outcome"], "cancelled");
    let spans = h.logs.closed_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["outcome"], "cancelled");
}

#[tokio::test]
async fn a_stream_dropped_after_its_last_part_has_arrived_is_not_cancelled() {
    let h = harness(|_| Script::new().parts(openai_parts()), |b| b).await;
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    // A common loop: stop at `[DONE]` instead of waiting for the end of the stream.
    read_to_done(&mut response).await;
    // The end of the stream is on the connection by now (nothing to poll for: a
    // read would consume it); generous on a loaded machine.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(response);

    let cost = receipt.await.unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Ok);
    assert_eq!(cost.usage.parts, Some(5));
    assert_eq!(
        (cost.usage.input_tokens, cost.usage.output_tokens),
        (Some(21), Some(3))
    );
    assert_eq!(h.receipts.all().len(), 1);
}

/// A caller that stops at `[DONE]` and drops the stream before its end has come
/// (the server holds the connection open after its last part): the answer is
/// complete, so the receipt is `ok`, with its tokens, and a serverless endpoint's
/// duration ends at the `[DONE]` part, not at the drop. Real time (serverless
/// duration is the client's latency): parts 400 ms apart, `[DONE]` at 1.2 s, the
/// stream dropped at 3.0 s.
#[tokio::test]
async fn a_serverless_stream_dropped_after_done_before_its_end_is_ok_and_billed_to_done() {
    // No end until the drop.
    dropped_at_3_s_after_done(Script::hang_until_client_leaves).await;
}

/// A stream whose `[DONE]` part is followed by an error (here a
/// `ModelStreamError`, before the caller drops it) has a complete answer all
/// the same: outcome `ok`, the error noted, billed to its `[DONE]` part, not to
/// the drop.
#[tokio::test]
async fn a_serverless_stream_failing_after_done_is_ok_and_billed_to_done() {
    // Right after `[DONE]`, waiting unread at the drop.
    let cost = dropped_at_3_s_after_done(|s| s.model_stream_error("StreamBroken")).await;
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("ModelStreamError (StreamBroken)") && n.contains("[DONE]")),
        "{:?}",
        cost.notes
    );
}

/// A serverless stream of five parts, 400 ms apart, `[DONE]` at 1.2 s and
/// `after_done` then, read to `[DONE]` and dropped at 3.0 s: its receipt is
/// `ok`, with its tokens, billed to the `[DONE]` part, and the only one.
async fn dropped_at_3_s_after_done(after_done: fn(Script) -> Script) -> sagemeter::Cost {
    let parts = openai_parts();
    let h = harness(
        move |_| {
            after_done(
                Script::new()
                    .part(parts[0])
                    .pause(Duration::from_millis(400))
                    .part(parts[1])
                    .part(parts[2])
                    .pause(Duration::from_millis(400))
                    .part(parts[3])
                    .pause(Duration::from_millis(400))
                    .part(parts[4]), // `data: [DONE]`, at 1.2 s
            )
        },
        |b| b,
    )
    .await;
    let opened = std::time::Instant::now();
    let mut response = open(&h.client, SERVERLESS_LLM).await;
    let receipt = response.receipt();
    read_to_done(&mut response).await;
    let done = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(3000).saturating_sub(done)).await;
    drop(response);

    let cost = receipt.await.unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Ok, "{:?}", cost.notes);
    assert_not_noted_containing(&cost, "cancelled");
    assert_eq!(cost.usage.parts, Some(5));
    assert_eq!(
        (cost.usage.input_tokens, cost.usage.output_tokens),
        (Some(21), Some(3))
    );
    // Billed from the request to the `[DONE]` part: the fake's three 400 ms
    // pauses (1.2 s) and no more than the test took to read that part.
    assert!(
        cost.usage.latency >= Duration::from_millis(1200) && cost.usage.latency <= done,
        "billed {:?}, `[DONE]` read by {done:?}",
        cost.usage.latency
    );
    // Serverless inference, 2048 MB at $0.0000200 per GB-second = 0.00004 USD/s,
    // by the ms: 1.2 s → 1.200 × 0.00004 = 0.000048 USD (plus 0.00000004 USD a
    // ms the request and parts took beyond the pauses), not 3.0 s to the drop →
    // 3.000 × 0.00004 = 0.00012 USD.
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(
        compute.quantity,
        serverless_seconds(cost.usage.latency).normalize()
    );
    let usd = compute.cost_usd().unwrap();
    assert_eq!(
        usd,
        r12(serverless_seconds(cost.usage.latency) * dec(SERVERLESS_2GB_USD_PER_SECOND))
    );
    assert!(usd >= dec("0.000048"), "{usd}");
    assert!(usd < dec("0.00012"), "{usd} is billed to the drop");
    assert_eq!(h.receipts.all(), vec![cost.clone()]);
    cost
}

/// The same stream read on to its error: `recv()` hands the SDK's error over,
/// and the receipt is the same, `ok` and billed to the `[DONE]` part, not to
/// when the error was read.
#[tokio::test]
async fn a_serverless_stream_read_to_an_error_after_done_is_ok_and_billed_to_done() {
    let parts = openai_parts();
    let h = harness(
        move |_| {
            Script::new()
                .part(parts[0])
                .part(parts[1])
                .part(parts[2])
                .part(parts[3])
                .pause(Duration::from_millis(1200))
                .part(parts[4]) // `data: [DONE]`, at 1.2 s
                .model_stream_error("StreamBroken")
        },
        |b| b,
    )
    .await;
    let opened = std::time::Instant::now();
    let mut response = open(&h.client, SERVERLESS_LLM).await;
    read_to_done(&mut response).await;
    let done = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(3000).saturating_sub(done)).await;
    let err = response
        .body
        .recv()
        .await
        .expect_err("the model stream error");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_model_stream_error())
    );

    let cost = response.cost().expect("a receipt at the error").clone();
    assert_eq!(cost.usage.outcome, Outcome::Ok, "{:?}", cost.notes);
    assert!(
        cost.usage.latency >= Duration::from_millis(1200) && cost.usage.latency <= done,
        "billed {:?}, `[DONE]` read by {done:?}",
        cost.usage.latency
    );
    // 1.2 s → 1.200 × 0.00004 = 0.000048 USD, not 3.0 s to the error read →
    // 3.000 × 0.00004 = 0.00012 USD.
    let usd = line(&cost, LineItem::Compute).cost_usd().unwrap();
    assert!(usd >= dec("0.000048"), "{usd}");
    assert!(usd < dec("0.00012"), "{usd} is billed to the error");
    drop(response);
    assert_eq!(h.receipts.all(), vec![cost]);
}

/// A model that writes `[DONE]` as its text, inside an SSE data event
/// (`data: {"choices":[{"delta":{"content":"[DONE]"}}]}`), has not ended its
/// stream: dropped there, the stream is `cancelled`, billed to the drop.
#[tokio::test]
async fn a_stream_dropped_after_done_in_its_text_is_cancelled() {
    let h = harness(
        |_| {
            Script::new()
                .part("data: {\"choices\":[{\"delta\":{\"content\":\"[DONE]\"}}]}\n\n")
                .hang_until_client_leaves()
        },
        |b| b,
    )
    .await;
    let mut response = open(&h.client, SERVERLESS_LLM).await;
    let receipt = response.receipt();
    let first = response.body.recv().await.unwrap();
    assert!(matches!(first, Some(ResponseStream::PayloadPart(_))));
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(response);

    let cost = receipt.await.unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Cancelled);
    assert!(cost.usage.latency >= Duration::from_millis(100));
}

/// A caller that stops at `[DONE]` and keeps the stream a while (writing its
/// answer somewhere) before dropping it: the model's work ended with the last
/// part, and the stream is billed, and shares the instance, until then.
#[tokio::test]
async fn a_stream_kept_after_its_last_part_is_billed_to_that_part_not_to_the_drop() {
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        |b| b.allocation(sagemeter::billing::Allocation::ProcessorSharing),
    )
    .await;
    let opened = std::time::Instant::now();
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    read_to_done(&mut response).await;
    let read = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(response);

    let cost = receipt.await.unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Ok);
    // The call started after `opened` and its last part came before `read`.
    assert!(
        cost.usage.latency <= read,
        "billed {:?}, the last part came by {read:?}",
        cost.usage.latency
    );
    // Its share of the one instance is its time to the last part, not the second
    // it was kept: at most its latency (and the meter's clock readings around it).
    let compute = line(&cost, LineItem::Compute);
    let in_flight_us = compute.quantity * Decimal::from(3_600_000_000u64);
    let latency_us = Decimal::from(cost.usage.latency.as_micros() as u64);
    assert!(
        in_flight_us <= latency_us + Decimal::from(50_000),
        "{in_flight_us} µs in flight for a {latency_us} µs stream"
    );
}

/// Another stream starts on the one instance after a stream's last part and
/// runs while that stream is kept, then let go: the kept one leaves the sharing
/// clock at the other's start (the clock's latest event), not back at its last
/// part, which the clock would take for the wall clock stepping back and so cut
/// the other stream's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_let_go_while_another_runs_leaves_the_other_its_whole_share() {
    let parts = openai_parts();
    let h = harness(
        move |_| {
            Script::new()
                .part(parts[0])
                .pause(Duration::from_secs(2))
                .parts(parts[1..].to_vec())
        },
        |b| b.allocation(sagemeter::billing::Allocation::ProcessorSharing),
    )
    .await;
    // The kept stream: its last part at about 2 s.
    let mut kept = open(&h.client, LLM).await;
    let kept_receipt = kept.receipt();
    read_to_done(&mut kept).await;
    // 1.5 s later the other starts (its last part 2 s on); 1 s into it the kept
    // one is let go.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let client = h.client.clone();
    let other = tokio::spawn(async move {
        let mut response = open(&client, LLM).await;
        read_all(&mut response).await;
        response.cost().unwrap().clone()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(kept);
    assert_eq!(kept_receipt.await.unwrap().usage.outcome, Outcome::Ok);
    let cost = other.await.unwrap();
    // Alone on the instance from its start: a whole instance for its 2 s.
    let compute = line(&cost, LineItem::Compute);
    let in_flight_us = compute.quantity * Decimal::from(3_600_000_000u64);
    let latency_us = Decimal::from(cost.usage.latency.as_micros() as u64);
    assert!(
        in_flight_us + Decimal::from(200_000) >= latency_us,
        "{in_flight_us} µs of the instance for a {latency_us} µs stream"
    );
}

/// On the meter's clock (a manual one): stream S to `endpoint` is sent at 0 s,
/// read to its `[DONE]` at 1 s and kept until 10 s, as a caller that breaks out of
/// its loop there and keeps the response in scope does; an `InvokeEndpoint` call
/// C to the same endpoint (through a fake runtime, on the same meter) goes out at
/// 2 s and is answered at 4 s, after `c_takes` of real time. Processor sharing.
/// Returns S's and C's receipts.
async fn a_call_while_a_stream_is_kept_after_done(
    endpoint: &str,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
    c_takes: Duration,
) -> (Cost, Cost) {
    let (time, shared) = manual_clock();
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        |b| {
            configure(
                b.allocation(sagemeter::billing::Allocation::ProcessorSharing)
                    .time_source(shared),
            )
        },
    )
    .await;
    // C's runtime only answers: what the endpoint is, is the meter's profile.
    let runtime = FakeSageMaker::start().await;
    runtime.add_endpoint(endpoint, vec![FakeVariant::serverless(VARIANT, 2048)]);
    let c_client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::new(&runtime.sdk_config().await),
        h.client.meter().clone(),
    );
    // 0 s: S is sent; 1 s: it is read to its `[DONE]`.
    let mut s = open(&h.client, endpoint).await;
    let s_receipt = s.receipt();
    time.advance(Duration::from_secs(1));
    read_to_done(&mut s).await;
    // 2 s: C goes out; 4 s: it is answered.
    time.advance(Duration::from_secs(1));
    runtime.hold();
    runtime.next_latencies(&[c_takes]);
    let name = endpoint.to_owned();
    let c = tokio::spawn(async move { crate::support::call(&c_client, &name).await });
    runtime.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(2));
    runtime.release();
    let c = c.await.unwrap();
    // 10 s: S is let go.
    time.advance(Duration::from_secs(6));
    drop(s);
    (s_receipt.await.unwrap(), c)
}

/// `b` with `endpoint` one ml.m5.xlarge (variant `VARIANT`) at 0.23 USD/h.
fn one_m5(b: ClientBuilder, endpoint: &str) -> ClientBuilder {
    b.endpoint_profile(EndpointProfile::new(
        endpoint,
        vec![VariantProfile::instance(VARIANT, "ml.m5.xlarge", 1)],
    ))
    .price_override(PriceKey::hosting(REGION, "ml.m5.xlarge"), dec("0.23"))
}

/// A stream kept after its `[DONE]` is not in flight any more: it left its
/// endpoint's sharing clock at that part, and a call that runs while it is kept
/// has the instance to itself.
#[tokio::test]
async fn a_call_while_a_stream_is_kept_after_its_done_has_the_instance_to_itself() {
    const M5: &str = "rt-m5"; // ml.m5.xlarge × 1 at 0.23 USD/h
    let (s, c) =
        a_call_while_a_stream_is_kept_after_done(M5, |b| one_m5(b, M5), Duration::ZERO).await;
    // C: alone on the one instance 2–4 s (S left at 1 s): 2 s = 2/3600 h =
    // 0.000555555555555555 h (rounded down at 18 places); 2/3600 × 0.23 =
    // 0.000127777777777777… USD, rounded down to 0.000127777777. Not half of it
    // (1 s, 0.000063888888), as if S, kept, were still in flight beside it.
    let compute = line(&c, LineItem::Compute);
    assert_eq!(compute.quantity, dec("0.000555555555555555"));
    assert_eq!(compute.cost_usd(), Some(dec("0.000127777777")));
    // S: alone 0–1 s, to its `[DONE]`: 1/3600 h = 0.000277777777777777 h;
    // 1/3600 × 0.23 = 0.0000638888… USD, rounded down to 0.000063888888.
    let compute = line(&s, LineItem::Compute);
    assert_eq!(compute.quantity, dec("0.000277777777777777"));
    assert_eq!(compute.cost_usd(), Some(dec("0.000063888888")));
}

/// A stream kept after its `[DONE]` gives back its slot of the provisioned
/// concurrency at that part: a serverless call that starts while it is kept is
/// served on the free slot, as AWS serves it, at the provisioned inference rate.
#[tokio::test]
async fn a_call_while_a_stream_is_kept_after_its_done_is_served_on_the_slot_it_gave_back() {
    const PC: &str = "llm-serverless-pc"; // 2048 MB, provisioned concurrency 1
    let region = || REGION.to_owned();
    let (_, c) = a_call_while_a_stream_is_kept_after_done(
        PC,
        |b| {
            b.endpoint_profile(EndpointProfile::new(
                PC,
                vec![VariantProfile::serverless(VARIANT, 2048).with_provisioned_concurrency(1)],
            ))
            // us-east-1, 2 GB with provisioned concurrency: 0.00001 USD per
            // second provisioned (standing, on no receipt), 0.0000233 USD per
            // second of inference duration; on demand 0.00004 USD per second
            // (the builder's).
            .price_override(
                PriceKey::ProvisionedConcurrency {
                    region: region(),
                    memory_gb: 2,
                },
                dec("0.00001"),
            )
            .price_override(
                PriceKey::ProvisionedConcurrencyUsage {
                    region: region(),
                    memory_gb: 2,
                },
                dec("0.0000233"),
            )
        },
        Duration::from_secs(1),
    )
    .await;
    // C: on the one provisioned slot, free since S's `[DONE]` at 1 s: its billed
    // seconds (its latency rounded up to the ms: 1 s the fake took, and a few ms)
    // × 0.0000233 USD/s, 1 × 0.0000233 = 0.0000233 USD for 1.000 s. Not on demand
    // at 0.00004 USD/s (0.00004 USD for 1.000 s), as if S, kept, still held the
    // slot.
    let compute = line(&c, LineItem::Compute);
    assert!(compute.quantity >= dec("1"), "{}", compute.quantity);
    assert_eq!(
        compute.cost_usd(),
        Some(r12(serverless_seconds(c.usage.latency) * dec("0.0000233")))
    );
    assert_not_noted_containing(&c, "was all busy");
}

/// A custom container streaming raw bytes (`application/octet-stream`), whose
/// model writes `[DONE]` on a line of its own mid-stream and goes on: that line
/// is the model's text, not an end marker, and the stream stays on its
/// endpoint's sharing clock to its last part. On the meter's clock (a manual
/// one): sent at 0 s, its first part ("Plan:\n[DONE]\n") read at 1 s, its
/// second at 10 s, its end read then; processor sharing, alone on one
/// ml.m5.xlarge at 0.23 USD/h.
#[tokio::test]
async fn a_done_line_in_a_raw_stream_does_not_take_it_off_the_clock_before_its_last_part() {
    const M5: &str = "rt-m5"; // ml.m5.xlarge × 1 at 0.23 USD/h
    let (time, shared) = manual_clock();
    let h = harness(
        |_| {
            Script::new()
                .content_type("application/octet-stream")
                .part("Plan:\n[DONE]\n")
                .part("Step 2: the rest of the answer\n")
        },
        |b| {
            one_m5(
                b.allocation(sagemeter::billing::Allocation::ProcessorSharing)
                    .time_source(shared),
                M5,
            )
        },
    )
    .await;
    let mut response = open(&h.client, M5).await;
    assert_eq!(response.content_type(), Some("application/octet-stream"));
    let receipt = response.receipt();
    let mut next_part = async || match response.body.recv().await.unwrap() {
        Some(ResponseStream::PayloadPart(part)) => Some(part.bytes().unwrap().as_ref().to_vec()),
        Some(other) => panic!("{other:?}"),
        None => None,
    };
    // 1 s: the part with the model's own `[DONE]` line.
    time.advance(Duration::from_secs(1));
    assert_eq!(next_part().await.unwrap(), b"Plan:\n[DONE]\n");
    // 10 s: the next part, then the end.
    time.advance(Duration::from_secs(9));
    assert!(next_part().await.unwrap().starts_with(b"Step 2"));
    assert_eq!(next_part().await, None);
    let cost = receipt.await.unwrap();
    assert_eq!(cost.usage.outcome, Outcome::Ok);
    // Alone on the one instance 0–10 s, to its last part: 10 s = 10/3600 h =
    // 0.002777777777777777… h (rounded down at 18 places); 10/3600 × 0.23 =
    // 0.000638888888… USD, rounded down to 0.000638888888. Not 1 s
    // (1/3600 × 0.23 = 0.000063888888), as if the model's `[DONE]` line ended
    // the stream at 1 s.
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(compute.quantity, dec("0.002777777777777777"));
    assert_eq!(compute.cost_usd(), Some(dec("0.000638888888")));
}

/// A stream whose first attempt was refused (503, before the model) is off its
/// endpoint's sharing clock while the SDK backs off, and on it from its second
/// attempt's request to the stream's end. On the meter's clock: stream A runs
/// 0–2 s; B's first attempt is refused at once at 0; B backs off until 1 s; its
/// stream then runs 1–1.5 s.
#[tokio::test]
async fn a_stream_retried_after_a_refusal_is_off_the_sharing_clock_while_backing_off() {
    let (time, shared) = manual_clock();
    // The first request (A's) and the third (B's second attempt) stream; the
    // second (B's first attempt) is refused.
    let requests = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let h = {
        let requests = requests.clone();
        let parts = openai_parts();
        harness(
            move |_| match requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                1 => Script::new().service_unavailable(),
                _ => Script::new().parts(parts.clone()),
            },
            |b| {
                b.allocation(sagemeter::billing::Allocation::ProcessorSharing)
                    .time_source(shared)
            },
        )
        .await
    };
    // B's SDK client retries once, after 1 s (real time, without jitter);
    // `ended` counts its attempts seen to end.
    let ended = AttemptsEnded::default();
    let conf = h.fake.sdk_config().await;
    let b_client = Client::from_parts(
        aws_sdk_sagemakerruntime::Client::from_conf(
            ended.retrying_once_after_a_second(&conf).build(),
        ),
        h.client.meter().clone(),
    );
    // t = 0: A's stream opens (and is read only at the end).
    let mut a = open(&h.client, LLM).await;
    let a_receipt = a.receipt();
    // B's first attempt is refused at once, at 0, and seen to end: B steps
    // off the sharing clock.
    let b = tokio::spawn(async move { open(&b_client, LLM).await });
    ended.wait_for(1).await;
    // t = 1 s: B's second attempt goes out after its back-off; its stream is
    // read to its end at 1.5 s.
    time.advance(Duration::from_secs(1));
    let mut b = b.await.unwrap();
    let b_receipt = b.receipt();
    time.advance(Duration::from_millis(500));
    read_all(&mut b).await;
    // t = 2 s: A's stream is read to its end.
    time.advance(Duration::from_millis(500));
    read_all(&mut a).await;
    let (a, b) = (a_receipt.await.unwrap(), b_receipt.await.unwrap());
    // A: 1 s alone (B's refused attempt took no time, its back-off is off the
    // clock) + 0.5 s at ½ with B's stream + 0.5 s alone = 1.75 s:
    // 1.75/3600 h = 0.000486111111111111 (rounded down at 18 places) ×
    // 1.408 USD/h = 0.000684444444444444… → 0.000684444444; not 1.25 s
    // (0.000488888888), as if B's back-off were shared with it.
    assert_eq!(
        line(&a, LineItem::Compute).quantity,
        dec("0.000486111111111111")
    );
    assert_eq!(
        line(&a, LineItem::Compute).cost_usd(),
        Some(dec("0.000684444444"))
    );
    // B: its stream's 0.5 s at ½ = 0.25 s: 0.25/3600 h = 0.000069444444444444
    // × 1.408 = 0.0000977777777…, rounded down; its refused attempt is not billed.
    assert_eq!(b.usage.attempts, 2);
    assert_eq!(
        line(&b, LineItem::Compute).quantity,
        dec("0.000069444444444444")
    );
    assert_eq!(
        line(&b, LineItem::Compute).cost_usd(),
        Some(dec("0.000097777777"))
    );
}

#[tokio::test]
async fn a_stream_moved_out_of_its_response_keeps_its_receipt() {
    let h = harness(|_| Script::new().parts(openai_parts()), |b| b).await;
    let response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    let mut body = response.body; // e.g. handed to another task
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(_event) = body.recv().await.unwrap() {
            n += 1;
        }
        (n, body.cost().cloned())
    });
    let (parts, cost) = reader.await.unwrap();
    assert_eq!(parts, 5);
    assert_eq!(receipt.await, cost);
    assert_eq!(h.receipts.all().len(), 1);
}

// ---------------------------------------------------------------------------------
// Tokens and usage charges.

#[tokio::test]
async fn a_custom_token_counter_reads_each_stream_event() {
    // A container that streams `{"text": "..."}` lines and a final `{"n_in":.., "n_out":..}`.
    let h = harness(
        |_| {
            Script::new()
                .part("{\"text\":\"a\"}\n{\"te")
                .part("xt\":\"b\"}\n{\"n_in\":4,\"n_out\":2}")
        },
        |b| {
            b.token_counter(FnTokenCounter::new(|event: &[u8]| {
                let v: serde_json::Value = serde_json::from_slice(event).ok()?;
                Some(TokenUsage::new(v["n_in"].as_u64()?, v["n_out"].as_u64()?))
            }))
        },
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    read_all(&mut response).await;
    let u = &response.cost().unwrap().usage;
    assert_eq!((u.input_tokens, u.output_tokens), (Some(4), Some(2)));
}

#[tokio::test]
async fn a_plain_text_stream_carries_no_tokens_even_when_the_model_writes_a_usage_line() {
    // A container streaming the model's raw text: a line it generates that looks
    // like a usage report is the model's text, not the server's count.
    let reply =
        "Example reply:\n{\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":999999999}}\nbye";
    for (content_type, tokens) in [
        ("text/plain; charset=utf-8", (None, None)),
        ("application/jsonlines", (Some(0), Some(999_999_999))),
    ] {
        let h = harness(
            move |_| Script::new().content_type(content_type).part(reply),
            |b| b,
        )
        .await;
        let mut response = open(&h.client, LLM).await;
        assert_eq!(response.content_type(), Some(content_type));
        read_all(&mut response).await;
        let u = &response.cost().unwrap().usage;
        assert_eq!((u.input_tokens, u.output_tokens), tokens, "{content_type}");
    }
}

/// A container streaming the model's raw text as `text/plain`: the counter the
/// user gave reads the whole text once, however it was split.
#[tokio::test]
async fn a_plain_text_stream_is_given_whole_to_the_users_token_counter() {
    let h = harness(
        |_| {
            Script::new()
                .content_type("text/plain")
                .part("Paris is the ")
                .part("capital of France.")
        },
        |b| {
            b.token_counter(FnTokenCounter::new(|text: &[u8]| {
                Some(TokenUsage::new(0, text.len() as u64 / 4))
            }))
        },
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    read_all(&mut response).await;
    let u = &response.cost().unwrap().usage;
    // 13 + 18 = 31 bytes at one token per 4 bytes, rounded down: 7.
    assert_eq!((u.input_tokens, u.output_tokens), (Some(0), Some(7)));
}

#[tokio::test]
async fn per_token_and_per_inference_charges_add_up_on_top_of_compute() {
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        |b| {
            b.usage_charges(
                LLM,
                UsageCharges::default()
                    .per_1000_calls(dec("0.70"))
                    .per_1000_tokens(dec("0.0005"), dec("0.0015")),
            )
        },
    )
    .await;
    let mut first = open(&h.client, LLM).await;
    read_all(&mut first).await;
    let mut second = open(&h.client, LLM).await;
    read_all(&mut second).await;
    let (first, second) = (first.cost().unwrap(), second.cost().unwrap());

    for cost in [first, second] {
        // 0.70 USD / 1,000 calls = 0.0007; 21 × 0.0005 / 1,000 = 0.0000105;
        // 3 × 0.0015 / 1,000 = 0.0000045.
        assert_eq!(
            line(cost, LineItem::Inference).cost_usd(),
            Some(dec("0.0007"))
        );
        assert_eq!(
            line(cost, LineItem::InputTokens).cost_usd(),
            Some(dec("0.0000105"))
        );
        assert_eq!(
            line(cost, LineItem::OutputTokens).cost_usd(),
            Some(dec("0.0000045"))
        );
        let infrastructure: Decimal = [LineItem::Compute, LineItem::DataIn, LineItem::DataOut]
            .into_iter()
            .map(|item| line(cost, item).cost_usd().unwrap())
            .sum();
        assert_eq!(cost.lines.len(), 6);
        assert_eq!(cost.cost_usd, infrastructure + dec("0.000715"));
        assert!(cost.is_fully_priced());
    }
    // The running totals are the receipts' sum, to the last digit.
    assert_eq!(second.running_client_usd, first.cost_usd + second.cost_usd);
    assert_eq!(
        h.client.meter().totals().client_usd,
        first.cost_usd + second.cost_usd
    );
}

/// AWS Marketplace charges one inference for each successful (HTTP 2XX) answer:
/// a stream whose 200 arrived got one, even when the model broke it off after
/// a part; a stream refused with a model error (HTTP 424) before it opened got
/// none. At $0.70 per 1,000 calls: 0.70 / 1,000 = $0.0007, and $0.
#[tokio::test]
async fn a_stream_that_opened_is_one_inference_and_one_refused_before_it_none() {
    let broken = std::sync::atomic::AtomicBool::new(true);
    let h = harness(
        move |_| {
            if broken.swap(false, std::sync::atomic::Ordering::SeqCst) {
                Script::new()
                    .part("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
                    .model_stream_error("ModelInvocationTimeExceeded")
            } else {
                Script::new().model_error()
            }
        },
        |b| b.usage_charges(LLM, UsageCharges::default().per_1000_calls(dec("0.70"))),
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    while response.body.recv().await.is_ok_and(|e| e.is_some()) {}
    let cost = response.cost().expect("a receipt at the error");
    assert_eq!(cost.usage.outcome, Outcome::Error);
    let fee = line(cost, LineItem::Inference);
    assert_eq!(
        (fee.quantity, fee.cost_usd()),
        (Decimal::ONE, Some(dec("0.0007")))
    );

    let err = send(&h.client, LLM).await.expect_err("a model error");
    let cost = err.cost().expect("the model ran: the call is billed");
    assert_eq!(cost.usage.outcome, Outcome::Error);
    let fee = line(cost, LineItem::Inference);
    assert_eq!(
        (fee.quantity, fee.cost_usd()),
        (Decimal::ZERO, Some(Decimal::ZERO))
    );
}

#[tokio::test]
async fn usage_charges_alone_price_a_stream_without_any_endpoint_profile() {
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        |b| {
            b.usage_charges(
                "per-token-only",
                UsageCharges::default()
                    .per_1000_tokens(dec("0.0005"), dec("0.0015"))
                    .alone(),
            )
            .usage_charges(
                "no-profile",
                UsageCharges::default().per_1000_tokens(dec("0.0005"), dec("0.0015")),
            )
        },
    )
    .await;

    let mut alone = open(&h.client, "per-token-only").await;
    read_all(&mut alone).await;
    let cost = alone.cost().unwrap();
    // Only the tokens: 21 × 0.0005/1000 + 3 × 0.0015/1000 = 0.0000105 + 0.0000045.
    let items: Vec<_> = cost.lines.iter().map(|l| l.item).collect();
    assert_eq!(items, vec![LineItem::InputTokens, LineItem::OutputTokens]);
    assert_eq!(cost.cost_usd, dec("0.000015"));
    assert!(cost.is_fully_priced());
    assert_eq!(cost.billing, None);

    // Not alone and no profile: the compute stays an explicit unpriced line; the
    // data processed is billed at the region's rate, which needs no profile:
    // bytes / 2^30 × 0.016 each way, on top of the tokens' 0.000015.
    let mut unprofiled = open(&h.client, "no-profile").await;
    let out = read_all(&mut unprofiled).await;
    let cost = unprofiled.cost().unwrap();
    assert!(matches!(
        line(cost, LineItem::Compute).price,
        LinePrice::Unpriced { .. }
    ));
    assert!(!cost.is_fully_priced());
    let data_in = r12(gigabytes(PROMPT.len() as u64) * dec(DATA_USD_PER_GB));
    let data_out = r12(gigabytes(out.len() as u64) * dec(DATA_USD_PER_GB));
    assert_eq!(line(cost, LineItem::DataIn).cost_usd(), Some(data_in));
    assert_eq!(line(cost, LineItem::DataOut).cost_usd(), Some(data_out));
    assert_eq!(cost.cost_usd, dec("0.000015") + data_in + data_out);
}

#[tokio::test]
async fn an_enforced_budget_settles_a_dropped_stream_and_then_rejects_the_next_one() {
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
    let budget = Budget::enforce(
        BudgetScope::endpoint(LLM),
        BudgetPeriod::Day,
        dec("0.000001"),
    )
    .unwrap()
    .estimate(Estimate::Fixed {
        usd: dec("0.000001"),
    })
    .unwrap();
    let h = harness(
        |_| {
            Script::new()
                .part("data: {\"choices\":[{\"delta\":{\"content\":\"Once\"}}]}\n\n")
                .hang_until_client_leaves()
        },
        move |b| b.budget(budget),
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    let status = &h.client.meter().budget_status()[0];
    assert_eq!(
        status.reserved_usd,
        dec("0.000001"),
        "reserved while streaming"
    );
    let receipt = response.receipt();
    response.body.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(response);
    let cost = receipt.await.unwrap();
    let status = &h.client.meter().budget_status()[0];
    assert_eq!(status.reserved_usd, Decimal::ZERO);
    assert_eq!(status.spent_usd, cost.cost_usd);
    // 30 ms of ml.g5.xlarge alone is 1.408 × 0.03 / 3600 ≈ 0.0000117 > the 0.000001 limit.
    let err = h
        .client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(LLM)
        .body(Blob::new(PROMPT))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
}

#[tokio::test]
async fn a_stream_on_the_default_client_is_billed_its_processor_share() {
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        |b| b.allocation(sagemeter::billing::Allocation::ProcessorSharing),
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    read_all(&mut response).await;
    let cost = response.cost().unwrap().clone();
    assert_eq!(
        cost.allocation,
        sagemeter::billing::Allocation::ProcessorSharing
    );
    // Alone on its one instance: a whole instance for as long as the stream was
    // in flight on the meter's clock, which encloses the stream's time. The
    // latency states that time in whole µs, an upper bound (its request's µs
    // rounded down, its end's up): at most 2 µs over it.
    let compute = line(&cost, LineItem::Compute);
    let in_flight_us = compute.quantity * Decimal::from(3_600_000_000u64);
    let latency_us = Decimal::from(cost.usage.latency.as_micros() as u64);
    assert!(
        in_flight_us + Decimal::TWO >= latency_us
            && in_flight_us <= latency_us + Decimal::from(50_000),
        "{in_flight_us} µs in flight for a {latency_us} µs stream"
    );
    // Rounded down to the pico-dollar.
    assert_eq!(
        compute.cost_usd(),
        Some(
            (compute.quantity * dec(G5_USD_PER_HOUR))
                .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::ToZero)
        )
    );
}

/// A sink with a bug: it panics on the first receipt it is handed, then takes the
/// rest quietly.
#[derive(Debug, Default)]
struct PanicsOnce(std::sync::atomic::AtomicBool);

impl sagemeter::sink::CostSink for PanicsOnce {
    fn record(&self, _cost: &Cost) {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a sink with a bug");
        }
    }
}

#[tokio::test]
async fn a_sink_that_panics_at_the_end_of_a_stream_loses_neither_its_receipt_nor_its_budget_charge()
{
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
    let budget = Budget::enforce(BudgetScope::endpoint(LLM), BudgetPeriod::Day, dec("10"))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.01") })
        .unwrap();
    // The panicking sink comes after the harness's receipt probe.
    let h = harness(
        |_| Script::new().parts(openai_parts()),
        move |b| b.sink(Arc::new(PanicsOnce::default())).budget(budget),
    )
    .await;
    let mut response = open(&h.client, LLM).await;
    let receipt = response.receipt();
    read_all(&mut response).await; // the receipt is made as the stream ends
    let cost = receipt
        .wait()
        .await
        .expect("the ended stream has its receipt");
    assert_eq!(response.cost().map(|c| &c.call_id), Some(&cost.call_id));
    let seen = h.receipts.all();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].call_id, cost.call_id);
    let status = &h.client.meter().budget_status()[0];
    assert_eq!(h.client.meter().totals().client_usd, cost.cost_usd);
    assert_eq!(status.spent_usd, cost.cost_usd);
    assert_eq!(status.reserved_usd, Decimal::ZERO);
}

/// A plain SDK client whose calls go through `meter`'s interceptor.

#[tokio::test]
async fn a_stream_through_the_interceptor_is_refused_on_a_spent_budget_and_otherwise_leaves_a_receipt()
 {
    use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
    let fake = FakeStream::start(|_| Script::new().parts(openai_parts())).await;
    let conf = fake.sdk_config().await;
    let enforce = |limit: &str| {
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec(limit))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.01") })
            .unwrap()
    };

    // Under budget ($0.015 a day): the stream goes out, and its receipt is recorded.
    let receipts = Receipts::default();
    let meter = builder(&conf)
        .sink(receipts.clone())
        .budget(enforce("0.015"))
        .build_meter()
        .unwrap();
    let mut output = intercepted(&conf, &meter)
        .invoke_endpoint_with_response_stream()
        .endpoint_name(LLM)
        .body(Blob::new(PROMPT))
        .send()
        .await
        .expect("under budget, the stream opens");
    while output.body.recv().await.unwrap().is_some() {}
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while meter.totals().calls < 1 || meter.background_tasks() > 0 {
        assert!(std::time::Instant::now() < deadline, "no receipt");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    let cost = &all[0];
    assert_eq!(
        cost.usage.operation,
        sagemeter::usage::Operation::InvokeEndpointWithResponseStream
    );
    // Its compute is not seen: unpriced, saying what meters it; never a silent $0.
    assert!(
        matches!(&line(cost, LineItem::Compute).price, LinePrice::Unpriced { reason }
            if reason.contains("Client::invoke_endpoint_with_response_stream")),
        "{cost:#?}"
    );
    // The budget counts it at no less than its 0.01 USD estimate (its priced data
    // lines are far less).
    let status = &meter.budget_status()[0];
    assert_eq!(status.spent_usd, dec("0.01"));
    assert_eq!(status.reserved_usd, Decimal::ZERO);

    // The $0.005 left is less than the estimate: refused before anything is sent.
    let sent = fake.received().len();
    let err = intercepted(&conf, &meter)
        .invoke_endpoint_with_response_stream()
        .endpoint_name(LLM)
        .body(Blob::new(PROMPT))
        .send()
        .await
        .unwrap_err();
    assert_eq!(fake.received().len(), sent, "nothing was sent");
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

/// The endpoint whose hosting rate comes from a Price List that answers only once
/// its gate is opened (ml.m5.xlarge at 0.23 USD/h).
const GATED: &str = "gated-llm";

/// A harness whose `GATED` endpoint's rate waits on the returned gate.
async fn gated_harness() -> (Harness, Arc<tokio::sync::Semaphore>) {
    gated_harness_with(|| Script::new().parts(openai_parts())).await
}

/// [`gated_harness`], each request answered as `script` says.
async fn gated_harness_with(
    script: impl Fn() -> Script + Send + Sync + 'static,
) -> (Harness, Arc<tokio::sync::Semaphore>) {
    gated_harness_on(script, |conf| conf).await
}

/// [`gated_harness_with`], the fake's SDK config changed by `sdk` first.
async fn gated_harness_on(
    script: impl Fn() -> Script + Send + Sync + 'static,
    sdk: impl FnOnce(aws_types::SdkConfig) -> aws_types::SdkConfig,
) -> (Harness, Arc<tokio::sync::Semaphore>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let prices = crate::support::GatedPrices { gate: gate.clone() };
    let h = harness_on(
        move |_| script(),
        sdk,
        |b| {
            b.endpoint_profile(EndpointProfile::new(
                GATED,
                vec![VariantProfile::instance(VARIANT, "ml.m5.xlarge", 1)],
            ))
            .price_source(prices)
        },
    )
    .await;
    (h, gate)
}

/// The first stream to an endpoint whose rates are still being found (the Price
/// List slow to answer) is handed over at once and timed as its parts come; its
/// end waits for the rates, and that wait is not billed.
#[tokio::test]
async fn a_stream_is_handed_over_at_once_while_its_rates_are_still_being_found() {
    let (h, gate) = gated_harness().await;
    let opened = std::time::Instant::now();
    // The Price List has not answered: the stream is handed over all the same (it
    // was held until the rates were found).
    let mut response = tokio::time::timeout(Duration::from_secs(5), open(&h.client, GATED))
        .await
        .expect("handed over without waiting for the rates");
    // Every part comes; the end waits for the rates (a recv() given up on meanwhile
    // hands the end over the next time).
    let mut parts = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), response.body.recv()).await {
            Ok(Ok(Some(ResponseStream::PayloadPart(_)))) => parts += 1,
            Ok(other) => panic!("the end came before the rates: {other:?}"),
            Err(_) => break,
        }
    }
    assert_eq!(parts, 5);
    assert!(response.cost().is_none(), "no receipt before the rates");
    tokio::time::sleep(Duration::from_millis(400)).await;
    gate.add_permits(1_000);
    let held = opened.elapsed();
    let end = tokio::time::timeout(Duration::from_secs(5), response.body.recv())
        .await
        .expect("the end, once the rates are found");
    assert!(matches!(end, Ok(None)), "{end:?}");
    let cost = response.cost().expect("a receipt at the end").clone();
    let u = &cost.usage;
    assert_eq!((u.outcome, u.parts), (Outcome::Ok, Some(5)));
    // Billed to the last part, not to when the rates came (held ≥ 700 ms).
    assert!(
        u.latency + Duration::from_millis(500) < held,
        "{:?} vs {held:?}",
        u.latency
    );
    // Priced on the rate found: latency h × 0.23 USD/h.
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(
        compute.cost_usd(),
        Some(r12(hours(u.latency) * dec("0.23"))),
        "{cost:?}"
    );
    assert_eq!(h.receipts.all().len(), 1);
}

/// A stream dropped while its endpoint's rates are still being found gets its one
/// receipt all the same, priced once they are, timed to the drop.
#[tokio::test]
async fn a_stream_dropped_before_its_rates_are_found_is_priced_when_they_are() {
    let (h, gate) = gated_harness().await;
    let mut response = tokio::time::timeout(Duration::from_secs(5), open(&h.client, GATED))
        .await
        .expect("handed over without waiting for the rates");
    let first = response.body.recv().await;
    assert!(matches!(first, Ok(Some(_))), "{first:?}");
    let receipt = response.receipt();
    drop(response);
    assert!(h.receipts.all().is_empty(), "made once the rates are found");
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(1_000);
    let cost = tokio::time::timeout(Duration::from_secs(5), receipt)
        .await
        .expect("the receipt, once the rates are found")
        .expect("a receipt");
    // The parts that had arrived are read at the drop: the whole stream, `ok`, or
    // cancelled when they had not; either way timed to the drop, not the rates.
    assert!(
        cost.usage.latency < Duration::from_millis(300),
        "{:?}",
        cost.usage.latency
    );
    let compute = line(&cost, LineItem::Compute);
    assert_eq!(
        compute.cost_usd(),
        Some(r12(hours(cost.usage.latency) * dec("0.23")))
    );
    assert_eq!(h.receipts.all().len(), 1);
}

/// A stream that fails before it starts (`ModelStreamError`, 400, after the model
/// ran), dropped while its endpoint's rates are still being found, gets the
/// receipt it gets when its caller waits: an error, under SageMaker's request id,
/// billed until SageMaker answered; not a cancelled one, timed to the drop.
#[tokio::test]
async fn a_stream_failed_at_start_then_dropped_while_its_rates_are_found_is_billed_as_failed() {
    let gated = gated_harness_with(|| Script::new().model_stream_error_at_start()).await;
    // SageMaker answers at once; the call then waits for the rates (gate shut).
    let (cost, dropped_after) =
        dropped_while_its_rates_are_found(gated, Duration::from_millis(300)).await;
    let cost = &cost;
    assert_eq!(cost.usage.outcome, Outcome::Error, "{:#?}", cost.notes);
    // The fake's request id for its first request.
    assert_eq!(cost.call_id, "fake-1");
    // Its caller waiting gets no note saying the model answered: nor does a drop.
    assert_not_noted_containing(cost, "model answered");
    // Billed until SageMaker answered (at once), not until the drop (≥ 300 ms
    // on); 300 ms would be 0.3/3600 × 0.23 = 0.0000191666… USD.
    assert_billed_until_answered_not_dropped(cost, dropped_after);
}

/// A stream sent on `gated` (its rates' look-up held), dropped by its caller
/// `wait` after SageMaker received it while still waiting for the rates; then
/// the rates are found and the client shut down: its one receipt, and how long
/// after sending the drop came.
async fn dropped_while_its_rates_are_found(
    (h, gate): (Harness, Arc<tokio::sync::Semaphore>),
    wait: Duration,
) -> (Cost, Duration) {
    let client = h.client.clone();
    let sent = std::time::Instant::now();
    let call = tokio::spawn(async move { send(&client, GATED).await.map(|_| ()) });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.fake.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(wait).await;
    assert!(!call.is_finished(), "still waiting for the rates");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let dropped_after = sent.elapsed();
    gate.add_permits(1_000);
    h.client.shutdown().await.unwrap();
    let all = h.receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    (all[0].clone(), dropped_after)
}

/// `cost` billed for its time until SageMaker answered (or the SDK gave up),
/// not until its drop (at least 300 ms later, `dropped_after` from sending):
/// its time on one ml.m5.xlarge at 0.23 USD/h, latency/3600 h × 0.23.
fn assert_billed_until_answered_not_dropped(cost: &Cost, dropped_after: Duration) {
    assert!(
        cost.usage.latency + Duration::from_millis(300) <= dropped_after,
        "{:?} billed, dropped after {dropped_after:?}",
        cost.usage.latency
    );
    let compute = line(cost, LineItem::Compute);
    assert_eq!(
        compute.cost_usd(),
        Some(r12(hours(cost.usage.latency) * dec("0.23"))),
        "{cost:?}"
    );
}

/// A stream the SDK times out before it starts (its operation timeout passing
/// before SageMaker answers), dropped while its endpoint's rates are still being
/// found, gets the receipt its caller gets when it waits: cancelled, with the
/// SDK-timeout note only (the model never answered: no note saying it did),
/// billed until the timeout, not until the drop.
#[tokio::test]
async fn a_stream_timed_out_at_start_then_dropped_while_its_rates_are_found_is_billed_to_the_timeout()
 {
    const TIMEOUT: Duration = Duration::from_millis(500);
    let gated = gated_harness_on(
        || Script::new().answer_after(Duration::from_secs(30)),
        |conf| {
            conf.to_builder()
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_timeout(TIMEOUT)
                        .build(),
                )
                .build()
        },
    )
    .await;
    // The SDK gives up after 500 ms; the call then waits for the rates (gate shut).
    // Dropped 1.5 s after that, so that a timeout fired late on a loaded machine
    // still comes well before the drop.
    let (cost, dropped_after) =
        dropped_while_its_rates_are_found(gated, TIMEOUT + Duration::from_millis(1_500)).await;
    let cost = &cost;
    assert_eq!(cost.usage.outcome, Outcome::Cancelled, "{:#?}", cost.notes);
    // The waiting caller's receipt notes the SDK timeout, and only that.
    assert!(
        cost.notes
            .iter()
            .any(|n| n.contains("the SDK timed out the call")),
        "{:#?}",
        cost.notes
    );
    assert_not_noted_containing(cost, "model answered");
    // Billed from the request going out (after the SDK's operation began: a
    // little under its 500 ms) until the timeout, not until the drop (at least
    // 300 ms after it): the 500 ms timeout is 0.5/3600 × 0.23 = 0.0000319444…
    // USD (a 5 s one would be 5/3600 × 0.23 = 0.000319444… USD).
    assert_billed_until_answered_not_dropped(cost, dropped_after);
}

/// A stream request's own SDK settings (`config_override`) apply to it: its
/// client sends to a port nothing listens on, the override to the fake, where
/// the stream runs and is metered as any other.
#[tokio::test]
async fn a_streams_config_override_applies_to_its_request() {
    let fake = FakeStream::start(|_| Script::new().parts(openai_parts())).await;
    let conf = fake.sdk_config().await;
    let nowhere = conf.to_builder().endpoint_url("http://127.0.0.1:1").build();
    let receipts = Receipts::default();
    let client = builder(&conf)
        .runtime_client(aws_sdk_sagemakerruntime::Client::new(&nowhere))
        .sink(receipts.clone())
        .build()
        .unwrap();
    let mut response = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(LLM)
        .content_type("application/json")
        .body(Blob::new(PROMPT))
        .config_override(
            aws_sdk_sagemakerruntime::config::Builder::default()
                .endpoint_url(conf.endpoint_url().expect("the fake's URL")),
        )
        .send()
        .await
        .expect("sent to the override's endpoint URL");
    read_all(&mut response).await;
    drop(response);
    assert_eq!(fake.received().len(), 1);
    let all = receipts.all();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].usage.input_tokens, Some(21));
    assert_eq!(all[0].usage.output_tokens, Some(3));
}
