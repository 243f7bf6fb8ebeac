//! Quickstart: call the two demo endpoints and see what every call cost.
//!
//! ```sh
//! ./localstack/demo.sh            # starts the local emulator, runs this, stops it
//! ```
//!
//! or by hand, against the emulator or any AWS account (the standard AWS
//! configuration chain is used: `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, ...):
//!
//! ```sh
//! bash localstack/up.sh
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo run --example quickstart -- 5        # calls per endpoint (default 5)
//! bash localstack/down.sh
//! ```
//!
//! Every call prints its receipt (cost, latency, tokens, running total and, in
//! brackets, the price source: `live`, `cache`, `snapshot` or `override`); the
//! library's own cost log line (INFO, target `sagemeter`) goes to stderr. The local
//! emulators do not serve the AWS Price List API, so when the Price List calls would
//! go to this machine the quickstart prices from the snapshot bundled in sagemeter:
//! the receipts say `[snapshot]`, and the price note says why. Against AWS the
//! default chain (live → cache → snapshot) prices; when the Price List fails, the
//! note names the error.

use aws_sdk_sagemakerruntime::primitives::Blob;
use sagemeter::Decimal;
use sagemeter::pricing::{PriceOrigin, Provenance};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

const ENDPOINTS: [&str; 2] = ["demo-realtime", "demo-serverless"];

#[tokio::main]
async fn main() -> ExitCode {
    // The per-call cost line is an INFO event of target `sagemeter`; RUST_LOG overrides,
    // but never shows the SDK's events that print payloads or credentials.
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            sagemeter::redact::may_log(meta.target(), *meta.level())
        }))
        .with(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,sagemeter=info")),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .without_time()
                .compact(),
        )
        .init();

    let calls = match std::env::args().nth(1).map(|a| a.parse::<u32>()) {
        None => 5,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: quickstart [CALLS_PER_ENDPOINT]  (a positive number, default 5)");
            return ExitCode::from(2);
        }
    };
    match run(calls).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain without what a model's error quotes of its output.
            eprintln!("error: {}", sagemeter::redact::error_chain(&*error));
            if nothing_answered(&*error) {
                eprintln!(
                    "(is the local emulator up? start it with `bash localstack/up.sh`, or run \
                     ./localstack/demo.sh)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether the call found nothing to answer it (no connection, no answer in time).
fn nothing_answered(error: &(dyn std::error::Error + 'static)) -> bool {
    use aws_sdk_sagemakerruntime::error::SdkError;
    matches!(
        error.downcast_ref::<sagemeter::Error>(),
        Some(sagemeter::Error::Invoke { source, .. })
            if matches!(**source, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))
    )
}

async fn run(calls: u32) -> Result<(), Box<dyn std::error::Error>> {
    let sdk_config = aws_config::load_from_env().await;
    // One client for everything: it discovers how each endpoint is deployed
    // (DescribeEndpoint), prices it, and keeps the running totals.
    // (`Client::new` would do, but panics without a region; `build()` says what is missing.)
    let local_pricing = pricing_goes_to_loopback();
    let mut builder = sagemeter::Client::builder(&sdk_config);
    if local_pricing {
        // The local emulators have no Price List API: price from the snapshot bundled
        // in sagemeter at once, rather than ask the Price List for each price first
        // and fall back (with a WARN each) when it fails.
        builder = builder.price_source(sagemeter::pricing::Snapshot::bundled());
    }
    let client = builder.build()?;
    let mut notes = BTreeSet::new();
    for endpoint in ENDPOINTS {
        println!("{endpoint}:");
        for i in 0..calls {
            // A different prompt each time (the emulator answers each distinct request
            // with the next canned completion, so token counts vary).
            let body = format!(
                r#"{{"messages":[{{"role":"user","content":"Summarise meeting #{i}"}}],"max_tokens":256}}"#
            );
            let response = client
                .invoke_endpoint()
                .endpoint_name(endpoint)
                .content_type("application/json")
                .body(Blob::new(body))
                .send()
                .await?;
            let cost = response.cost();
            println!("  call {:>2}: {cost}", i + 1);
            if let Some(note) = cost
                .compute_provenance()
                .and_then(|p| price_note(p, local_pricing))
            {
                notes.insert(note);
            }
        }
    }

    let totals = client.meter().totals();
    let plural = |n: u64| if n == 1 { "call " } else { "calls" };
    let per_1000 = |usd: Decimal, n: u64| {
        sagemeter::billing::round_cost(usd * Decimal::from(1000) / Decimal::from(n.max(1)))
    };
    println!();
    println!("totals:");
    for endpoint in ENDPOINTS {
        let usd = totals
            .by_endpoint
            .get(endpoint)
            .copied()
            .unwrap_or_default();
        println!(
            "  {endpoint:<16} {calls} {}  ${}  (${} per 1,000 calls)",
            plural(u64::from(calls)),
            usd.normalize(),
            per_1000(usd, u64::from(calls)).normalize()
        );
    }
    println!(
        "  {:<16} {} {}  ${}  (${} per 1,000 calls)",
        "all",
        totals.calls,
        plural(totals.calls),
        totals.client_usd.normalize(),
        per_1000(totals.client_usd, totals.calls).normalize()
    );
    for note in notes {
        println!("  price note: {note}");
    }
    Ok(())
}

/// The note to print for a price's provenance, if it has one.
///
/// Against the local emulator the Price List API is missing and the snapshot is
/// the price source, so the note says why and keeps the snapshot's date and source.
/// Anywhere else the library's note is printed as it is: when the Price List fails,
/// it names the error that made the price fall back to the snapshot.
fn price_note(provenance: &Provenance, local_pricing: bool) -> Option<String> {
    let note = provenance.note.as_deref()?;
    if local_pricing && provenance.source == PriceOrigin::Snapshot {
        // The snapshot's note: "bundled price snapshot (as of …, from …)".
        if let Some(snapshot) = note.strip_prefix("bundled price snapshot ") {
            return Some(format!(
                "the local emulator has no Price List API: prices from the bundled snapshot {snapshot}"
            ));
        }
    }
    Some(note.to_owned())
}

/// Whether the Price List calls go to this machine (the local emulator): the SDK
/// takes their endpoint from `AWS_ENDPOINT_URL_PRICING`, else `AWS_ENDPOINT_URL`.
fn pricing_goes_to_loopback() -> bool {
    let url = std::env::var("AWS_ENDPOINT_URL_PRICING")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_default();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
