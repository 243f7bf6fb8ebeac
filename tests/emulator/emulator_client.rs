//! The metered client against the local AWS emulator (moto), through the real SDK
//! stack, with the default price chain. The emulator serves no Price List API,
//! so prices come from the bundled snapshot and receipts must say so.

use crate::support::by_hand::r12;
use crate::support::emulator::{Emulator, REALTIME_ENDPOINT, SERVERLESS_ENDPOINT, VARIANT};
use aws_sdk_sagemakerruntime::primitives::Blob;
use rust_decimal::Decimal;
use sagemeter::billing::LineItem;
use sagemeter::pricing::PriceOrigin;
use sagemeter::{Client, Cost};
use std::sync::OnceLock;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn line(cost: &Cost, item: LineItem) -> Decimal {
    cost.lines
        .iter()
        .find(|l| l.item == item)
        .and_then(|l| l.cost_usd())
        .unwrap_or_else(|| panic!("no priced {item:?} line: {cost:#?}"))
}

const GIB: u64 = 1 << 30;

/// This module's own seeded server, shared by its tests (as when it was a test binary
/// of its own): the receipts are checked against the call's timing, which must not
/// depend on what the other modules' tests ask of `Emulator::shared()` meanwhile.
fn emulator() -> &'static Emulator {
    static OWN: OnceLock<Emulator> = OnceLock::new();
    OWN.get_or_init(Emulator::start)
}

async fn client() -> Client {
    let config = emulator().sdk_config().await;
    Client::new(&config)
}

#[tokio::test]
async fn realtime_endpoint_receipts_equal_the_snapshot_rates_by_hand() {
    let client = client().await;
    let body = r#"{"messages":[{"role":"user","content":"What does this call cost?"}]}"#;
    let mut previous_running = Decimal::ZERO;
    for _ in 0..3 {
        let outer = std::time::Instant::now();
        let response = client
            .invoke_endpoint()
            .endpoint_name(REALTIME_ENDPOINT)
            .content_type("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .unwrap();
        let outer_us = Decimal::from(outer.elapsed().as_micros() as u64);
        let cost = response.cost();
        let latency_us = Decimal::from(cost.usage.latency.as_micros() as u64);
        let bytes_out = response.body().unwrap().as_ref().len() as u64;
        // One call at a time on 2 instances: processor sharing gives it a whole
        // instance (min(1, 2/1)) for as long as it was in flight on the meter's
        // clock, which encloses the measured latency and lies within the test's
        // own timing of the call (1 ms for the two clocks' readings).
        let compute_line = cost
            .lines
            .iter()
            .find(|l| l.item == LineItem::Compute)
            .unwrap();
        let in_flight_us = compute_line.quantity * Decimal::from(3_600_000_000u64);
        assert!(
            in_flight_us + Decimal::ONE >= latency_us
                && in_flight_us <= outer_us + Decimal::from(1_000),
            "{in_flight_us} µs in flight for a {latency_us} µs call that took {outer_us} µs"
        );
        // Snapshot, us-east-1: ml.m5.xlarge hosting 0.23 USD/h, data in/out 0.016 USD/GB;
        // a shared allocation is rounded down to the pico-dollar.
        let compute = (dec("0.23") * compute_line.quantity)
            .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::ToZero);
        let data_in = r12(Decimal::from(body.len()) / Decimal::from(GIB) * dec("0.016"));
        let data_out = r12(Decimal::from(bytes_out) / Decimal::from(GIB) * dec("0.016"));
        assert_eq!(line(cost, LineItem::Compute), compute);
        assert_eq!(line(cost, LineItem::DataIn), data_in);
        assert_eq!(line(cost, LineItem::DataOut), data_out);
        assert_eq!(cost.cost_usd, compute + data_in + data_out);
        assert!(cost.cost_usd > Decimal::ZERO);
        assert_eq!(cost.price_source(), Some(PriceOrigin::Snapshot));
        let provenance = cost.compute_provenance().unwrap();
        assert!(provenance.effective_date.is_some(), "{provenance:?}");
        assert!(
            provenance.note.is_some(),
            "a fallback says why: {provenance:?}"
        );
        assert_eq!(cost.variant.as_deref(), Some(VARIANT));
        assert!(matches!(
            cost.billing,
            Some(sagemeter::endpoint::VariantBilling::Instance {
                instance_count: 2,
                ..
            })
        ));
        // The canned responses carry OpenAI-style usage.
        assert!(cost.usage.input_tokens.is_some() && cost.usage.output_tokens.is_some());
        assert_eq!(cost.running_endpoint_usd, previous_running + cost.cost_usd);
        previous_running = cost.running_endpoint_usd;
    }
}

#[tokio::test]
async fn serverless_endpoint_receipts_bill_the_3_gb_rate_per_second() {
    let client = client().await;
    let response = client
        .invoke_endpoint()
        .endpoint_name(SERVERLESS_ENDPOINT)
        .content_type("application/json")
        .body(Blob::new(r#"{"inputs":"hi"}"#))
        .send()
        .await
        .unwrap();
    let cost = response.cost();
    let billed_ms = cost.usage.latency.as_nanos().div_ceil(1_000_000) as u64;
    // Snapshot, us-east-1: serverless Mem-3GB 0.00006 USD/s.
    let compute = r12(Decimal::from(billed_ms) / Decimal::from(1000) * dec("0.00006"));
    assert_eq!(line(cost, LineItem::Compute), compute);
    assert!(compute > Decimal::ZERO);
    assert_eq!(cost.price_source(), Some(PriceOrigin::Snapshot));
    assert!(matches!(
        cost.billing,
        Some(sagemeter::endpoint::VariantBilling::Serverless {
            memory_mb: 3072,
            ..
        })
    ));
}
