//! Streams a chat completion from an LLM endpoint, printing tokens as they arrive,
//! then the call's receipt.
//!
//! ```text
//! cargo run --example streaming                       # no AWS needed: a fake endpoint
//! cargo run --example streaming -- my-llm-endpoint    # a real endpoint (AWS config
//! cargo run --example streaming -- my-llm-endpoint "Why is the sky blue?"  # from the env)
//! ```
//!
//! Without an endpoint name it starts an in-process fake SageMaker Runtime (the one the
//! tests use) that streams an OpenAI-compatible chat completion as real AWS event-stream
//! frames, and prices it at an example rate, so it runs anywhere. With a name it calls
//! that endpoint with an OpenAI-compatible request (vLLM / LMI / TGI Messages API);
//! TGI's native `token.text` events are printed too. Press Ctrl-C mid-stream: the
//! stream is dropped, and its receipt, marked cancelled, is still logged.
//!
//! The `sagemeter` cost log line goes to stderr (`RUST_LOG` to change the filter).

// The tests' fake; `pub` because this example uses only part of it (public items
// are not reported as dead code).
#[path = "../tests/support/fake_stream.rs"]
pub mod fake_stream;

use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use sagemeter::billing::LinePrice;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::{PriceKey, Snapshot};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tracing_subscriber::prelude::*;

const FAKE_ENDPOINT: &str = "example-llm";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // RUST_LOG never shows the SDK's events that print payloads or credentials.
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            sagemeter::redact::may_log(meta.target(), *meta.level())
        }))
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sagemeter=info".into()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();

    let mut args = std::env::args().skip(1);
    let endpoint = args.next();
    let prompt = args
        .next()
        .unwrap_or_else(|| "Say hello to the people reading this receipt.".to_owned());

    // A client for a real endpoint, or for the fake one (kept alive while streaming).
    let (client, endpoint, _fake) = match endpoint {
        Some(endpoint) => {
            let sdk_config = aws_config::load_from_env().await;
            // `build()` says what is missing (no region, say) where `Client::new` panics.
            (
                sagemeter::Client::builder(&sdk_config).build()?,
                endpoint,
                None,
            )
        }
        None => {
            let fake = fake_stream::FakeStream::start(|_| fake_completion()).await;
            let sdk_config = fake.sdk_config().await;
            let client = sagemeter::Client::builder(&sdk_config)
                .without_discovery()
                // No Price List look-ups for a fake endpoint: the bundled snapshot...
                .price_source(Snapshot::bundled())
                .endpoint_profile(EndpointProfile::new(
                    FAKE_ENDPOINT,
                    vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 1)],
                ))
                // ...and example rates, which receipts mark `override`.
                .price_override(
                    PriceKey::hosting(fake_stream::REGION, "ml.g5.xlarge"),
                    "1.408".parse()?,
                )
                .price_override(
                    PriceKey::DataIn {
                        region: fake_stream::REGION.into(),
                    },
                    "0.016".parse()?,
                )
                .price_override(
                    PriceKey::DataOut {
                        region: fake_stream::REGION.into(),
                    },
                    "0.016".parse()?,
                )
                .build()?;
            eprintln!(
                "(no endpoint given: streaming from a fake endpoint on {})",
                fake.endpoint_url
            );
            (client, FAKE_ENDPOINT.to_owned(), Some(fake))
        }
    };

    let request = serde_json::json!({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 256,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let mut response = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(&endpoint)
        .content_type("application/json")
        .body(Blob::new(serde_json::to_vec(&request)?))
        .send()
        .await?;
    // Taken before reading: it resolves however the stream ends (even on Ctrl-C).
    let receipt = response.receipt();

    let mut text = SseText::default();
    let read = async {
        // The same loop as with the SDK's EventReceiver.
        // A stream's error is said by its code: a model's quotes its output.
        while let Some(event) = response
            .body
            .recv()
            .await
            .map_err(|e| sagemeter::redact::error_chain(&e))?
        {
            if let ResponseStream::PayloadPart(part) = event {
                let bytes = part.bytes().map(|b| b.as_ref()).unwrap_or_default();
                print!("{}", text.push(bytes));
                std::io::stdout().flush()?;
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    tokio::select! {
        read = read => read?,
        _ = tokio::signal::ctrl_c() => eprintln!("\n(interrupted: dropping the stream)"),
    }
    drop(response);
    println!();

    let cost = receipt.await.expect("every stream has a receipt");
    println!("\n{cost}");
    let u = &cost.usage;
    println!(
        "  outcome {}, {} parts, {} bytes, first part after {:?}, {:?} in all",
        u.outcome.as_str(),
        u.parts.unwrap_or(0),
        u.bytes_out,
        u.time_to_first_byte.unwrap_or_default(),
        u.latency,
    );
    if let (Some(i), Some(o)) = (u.input_tokens, u.output_tokens) {
        println!("  tokens: {i} in, {o} out");
    }
    for line in &cost.lines {
        match &line.price {
            LinePrice::Priced {
                usd_per_unit,
                cost_usd,
                provenance,
            } => println!(
                "  {:<13} {:>22} {:?} × ${usd_per_unit} = ${cost_usd} [{}]",
                line.item.as_str(),
                line.quantity.round_dp(9),
                line.unit,
                provenance.source
            ),
            LinePrice::Unpriced { reason } => {
                println!("  {:<13} unpriced: {reason}", line.item.as_str())
            }
            _ => println!("  {:<13} {:?}", line.item.as_str(), line.price),
        }
    }
    Ok(())
}

/// The text of an SSE stream of OpenAI-compatible chunks (`choices[0].delta.content`)
/// or TGI events (`token.text`), whatever the part boundaries.
#[derive(Default)]
struct SseText {
    line: Vec<u8>,
}

impl SseText {
    fn push(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(data) else {
                continue; // `[DONE]`, keep-alives
            };
            let piece = chunk["choices"][0]["delta"]["content"]
                .as_str()
                .or(chunk["token"]["text"].as_str());
            out.push_str(piece.unwrap_or_default());
        }
        out
    }
}

/// What the fake endpoint streams: a chat completion a word at a time, then `usage`.
fn fake_completion() -> fake_stream::Script {
    let words = [
        "Hello",
        " to",
        " everyone",
        " reading",
        " this",
        " receipt:",
        " this",
        " answer",
        " cost",
        " about",
        " five",
        " hundredths",
        " of",
        " a",
        " cent.",
    ];
    let mut script = fake_stream::Script::new().pause(Duration::from_millis(300));
    for word in words {
        let chunk = serde_json::json!({
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": word}}],
        });
        script = script
            .part(format!("data: {chunk}\n\n"))
            .pause(Duration::from_millis(60));
    }
    let usage = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 17, "completion_tokens": words.len(), "total_tokens": 17 + words.len()},
    });
    script.part(format!("data: {usage}\n\ndata: [DONE]\n\n"))
}
