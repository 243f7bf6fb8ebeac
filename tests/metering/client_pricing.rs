//! The metered client with its default price chain pointed at an in-process fake
//! Price List API: live prices with SKU and effective date, and every pricing fault
//! ending in a named fallback while calls go on.

use crate::support::fake_pricelist::{self, FakePriceList, Fault, docs};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::logs;
use crate::support::receipts::line;
use aws_sdk_sagemakerruntime::primitives::Blob;
use rust_decimal::Decimal;
use sagemeter::billing::LineItem;
use sagemeter::pricing::{PriceKey, PriceOrigin};
use sagemeter::{Client, Cost};
use std::time::{Duration, Instant};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn hosting_doc() -> serde_json::Value {
    docs::hosting("us-east-1", "ml.m5.xlarge", "0.2400000000")
}

struct Setup {
    sagemaker: FakeSageMaker,
    pricelist: FakePriceList,
    client: Client,
}

async fn setup() -> Setup {
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        // Several products for one instance: only Hosting prices a real-time endpoint.
        hosting_doc(),
        docs::training("us-east-1", "ml.m5.xlarge", "0.2700000000"),
        docs::notebook("us-east-1", "ml.m5.xlarge", "0.2900000000"),
        docs::upfront_fee("us-east-1", "ml.m5.xlarge", "13.5700000000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    // The app runs in eu-west-1's SDK config for pricing; the pricing client is still
    // pinned to us-east-1 and prices calls in the runtime's region (us-east-1 here).
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("eu-west-1"))
        .build()
        .unwrap();
    Setup {
        sagemaker,
        pricelist,
        client,
    }
}

async fn call(client: &Client) -> Cost {
    client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .expect("pricing never breaks a call")
        .into_parts()
        .1
}

fn compute(cost: &Cost) -> &sagemeter::billing::CostLine {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .unwrap()
}

/// Where the rate of the receipt's data-in line came from; the line must be
/// priced.
fn data_in_origin(cost: &Cost) -> PriceOrigin {
    match &line(cost, LineItem::DataIn).price {
        sagemeter::billing::LinePrice::Priced { provenance, .. } => provenance.source,
        other => panic!("data in not priced: {other:?}"),
    }
}

#[tokio::test]
async fn reachable_price_list_gives_live_receipts_with_sku_and_effective_date() {
    let s = setup().await;
    let first = call(&s.client).await;
    let provenance = first.compute_provenance().unwrap();
    assert_eq!(provenance.source, PriceOrigin::Live);
    assert_eq!(
        provenance.sku.as_deref(),
        Some(docs::sku_of(&hosting_doc()).as_str())
    );
    assert_eq!(
        provenance.effective_date.as_deref(),
        Some(docs::EFFECTIVE_DATE)
    );
    assert!(provenance.fetched_at.is_some());
    // The Hosting rate, not Training, Notebook or the upfront fee.
    match &compute(&first).price {
        sagemeter::billing::LinePrice::Priced { usd_per_unit, .. } => {
            assert_eq!(*usd_per_unit, dec("0.24"))
        }
        other => panic!("{other:?}"),
    }
    // The next call is served from the cache, same SKU, no new request.
    let requests = s.pricelist.request_count();
    let second = call(&s.client).await;
    assert_eq!(
        second.compute_provenance().unwrap().source,
        PriceOrigin::Cache
    );
    assert_eq!(second.compute_provenance().unwrap().sku, provenance.sku);
    assert_eq!(s.pricelist.request_count(), requests);
    // The pricing client signed for us-east-1 whatever the app's region.
    assert!(
        s.pricelist
            .requests()
            .iter()
            .all(|r| r.signing_region.as_deref() == Some("us-east-1"))
    );
}

async fn faulted(fault: Fault) {
    let s = setup().await;
    s.pricelist.set_fault(Some(fault.clone()));
    falls_back_to_the_snapshot(&s, &format!("{fault:?}")).await;
}

/// Makes 20 calls while the Price List is at fault (`fault` names it): every call
/// goes through, the first waits at most about a second, every receipt's compute
/// line is priced from the snapshot with a note, no retry storm, and one WARN per
/// distinct failure and key. Gives the receipts.
async fn falls_back_to_the_snapshot(s: &Setup, fault: &str) -> Vec<Cost> {
    let logs = logs::capture();
    let started = Instant::now();
    let mut receipts = Vec::new();
    for _ in 0..20 {
        receipts.push(call(&s.client).await);
    }
    assert_eq!(
        s.sagemaker.invocations(),
        20,
        "{fault}: every call went through"
    );
    // The first call waited at most about a second for pricing; the rest did not wait.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{fault}: {:?}",
        started.elapsed()
    );
    for cost in &receipts {
        let provenance = cost
            .compute_provenance()
            .expect("snapshot has ml.m5.xlarge");
        assert_eq!(provenance.source, PriceOrigin::Snapshot, "{fault}");
        assert!(
            provenance.note.as_deref().is_some_and(|n| !n.is_empty()),
            "{fault}"
        );
        assert!(cost.cost_usd > Decimal::ZERO);
    }
    // No retry storm: one request per key (compute, data in, data out) within the backoff.
    assert!(
        s.pricelist.request_count() <= 3 * 2,
        "{fault}: {} requests",
        s.pricelist.request_count()
    );
    // One WARN per distinct failure and key, not one per call.
    let warns: Vec<_> = logs
        .at_level("WARN")
        .into_iter()
        .filter(|w| w["fields"]["message"] == "price look-up failed; using the fallback price")
        .collect();
    assert!(
        (1..=3).contains(&warns.len()),
        "{fault}: {} warnings: {warns:#?}",
        warns.len()
    );
    receipts
}

#[tokio::test]
async fn throttled_price_list_falls_back_to_the_snapshot() {
    faulted(Fault::Throttle).await;
}

#[tokio::test]
async fn failing_price_list_falls_back_to_the_snapshot() {
    faulted(Fault::ServerError).await;
}

#[tokio::test]
async fn slow_price_list_falls_back_within_about_a_second() {
    faulted(Fault::Slow(Duration::from_secs(10))).await;
}

#[tokio::test]
async fn garbage_from_the_price_list_falls_back_to_the_snapshot() {
    faulted(Fault::GarbageBody).await;
}

/// The credentials lack `pricing:GetProducts`: AccessDeniedException on every
/// look-up. The receipt's note says the request was refused and what to grant.
#[tokio::test]
async fn refused_price_list_falls_back_to_the_snapshot() {
    let s = setup().await;
    s.pricelist.set_fault(Some(Fault::AccessDenied));
    let receipts = falls_back_to_the_snapshot(&s, "AccessDenied").await;
    for cost in &receipts {
        // The bundled snapshot lists ml.m5.xlarge hosting in us-east-1 at $0.23 an
        // hour, not the $0.24 the (refused) Price List holds.
        assert_eq!(rate_of(cost), dec("0.23"));
        let note = cost.compute_provenance().unwrap().note.clone().unwrap();
        assert!(
            note.contains("refused the request (AccessDeniedException")
                && note.contains("pricing:GetProducts"),
            "{note}"
        );
    }
}

/// The Price List answers in good form, but quotes ml.m5.xlarge hosting at
/// $2,000,000 an hour: above the $1,000,000 a unit no SageMaker price comes near,
/// so the document is refused as garbage and the compute line priced from the
/// snapshot, the note naming the bound; data in and out stay on the Price List's.
#[tokio::test]
async fn a_price_above_a_million_dollars_a_unit_falls_back_to_the_snapshot() {
    let s = setup().await;
    s.pricelist.set_documents([
        docs::hosting("us-east-1", "ml.m5.xlarge", "2000000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let receipts = falls_back_to_the_snapshot(&s, "price above $1M").await;
    for cost in &receipts {
        // The bundled snapshot's ml.m5.xlarge hosting rate in us-east-1: $0.23 an hour.
        assert_eq!(rate_of(cost), dec("0.23"));
        let note = cost.compute_provenance().unwrap().note.clone().unwrap();
        assert!(
            note.contains("\"2000000\", above 1000000 USD per unit"),
            "{note}"
        );
        // From the Price List: live on the first call, from the cache after.
        let data_in = data_in_origin(cost);
        assert!(
            matches!(data_in, PriceOrigin::Live | PriceOrigin::Cache),
            "{data_in:?}"
        );
    }
}

#[tokio::test]
async fn truncated_json_falls_back_to_the_snapshot() {
    faulted(Fault::TruncatedJson).await;
}

#[tokio::test]
async fn an_empty_price_list_falls_back_to_the_snapshot() {
    faulted(Fault::EmptyPriceList).await;
}

#[tokio::test]
async fn unreachable_price_list_falls_back_to_the_snapshot() {
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&fake_pricelist::sdk_config_for(
            &fake_pricelist::refused_url(),
            "us-east-1",
        ))
        .build()
        .unwrap();
    let cost = call(&client).await;
    assert_eq!(
        cost.compute_provenance().unwrap().source,
        PriceOrigin::Snapshot
    );
}

#[tokio::test]
async fn a_document_in_an_unexpected_unit_is_not_used() {
    let s = setup().await;
    // Replace the hosting document with one quoted per "Quantity".
    s.pricelist.set_documents([
        docs::custom(
            "us-east-1",
            "ML Instance",
            &format!("{}-Host:ml.m5.xlarge", docs::usage_prefix("us-east-1")),
            serde_json::json!({"instanceName": "ml.m5.xlarge", "component": "Hosting"}),
            &[("Quantity", "0", "Inf", "0.2400000000")],
        ),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let cost = call(&s.client).await;
    let provenance = cost.compute_provenance().unwrap();
    assert_eq!(provenance.source, PriceOrigin::Snapshot, "{provenance:?}");
    assert_eq!(data_in_origin(&cost), PriceOrigin::Live);
}

/// When AWS changes a price, the refresh after the cache's TTL finds it: the call
/// that starts the refresh is priced at the kept rate at once, the first receipt
/// at the new rate once it landed says so (here, calls one at a time), the ones
/// after it do not, and the ledger holds a `price_change` record before the
/// receipts at the new rate (readers and reports skip it).
#[tokio::test]
async fn a_price_change_is_noted_on_the_receipt_that_fetched_it_and_recorded_in_the_ledger() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use sagemeter::ledger::{JsonlLedger, read_all};
    use sagemeter::report::{GroupBy, ReportOptions, report_files};
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let pricelist = FakePriceList::start().await;
    let data = [
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ];
    pricelist.add_documents([hosting_doc()].into_iter().chain(data.clone()));
    let time = ManualTimeSource::new(std::time::SystemTime::now());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let changes_told = ChangesTold::default();
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .sink(ledger.clone())
        .sink(changes_told.clone())
        .build()
        .unwrap();

    let before = call(&client).await;
    assert_eq!(rate_of(&before), dec("0.24"));
    // AWS lowers the instance's price; the cache refreshes after its TTL (6 hours).
    pricelist.set_documents(
        [docs::hosting("us-east-1", "ml.m5.xlarge", "0.2200000000")]
            .into_iter()
            .chain(data),
    );
    time.advance(Duration::from_secs(6 * 3600 + 1));
    // The kept rate at once; the refresh runs on a task of its own.
    let stale = call(&client).await;
    assert_eq!(rate_of(&stale), dec("0.24"));
    assert_eq!(
        stale.compute_provenance().unwrap().note.as_deref(),
        Some("cached price older than its TTL; a refresh is under way")
    );
    changes_told.wait_for(1).await;
    // The client reuses the rates it looked up for a second.
    time.advance(Duration::from_secs(1));
    let first_new = call(&client).await;
    let next = call(&client).await;
    client.shutdown().await.unwrap();

    assert_eq!(
        (rate_of(&first_new), rate_of(&next)),
        (dec("0.22"), dec("0.22"))
    );
    let note = first_new
        .compute_provenance()
        .unwrap()
        .note
        .as_deref()
        .unwrap_or_default();
    // (0.22 − 0.24) ÷ 0.24 = −8.333…% → −8.33%
    assert_eq!(
        note,
        format!(
            "price changed: 0.22 per hour (effective {d}), was 0.24 (effective {d}) (-8.33%)",
            d = docs::EFFECTIVE_DATE
        )
    );
    assert_eq!(next.compute_provenance().unwrap().note, None);

    let text = std::fs::read_to_string(&path).unwrap();
    let changes: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(r#"{"v":2,"price_change":"#))
        .collect();
    assert_eq!(changes.len(), 1, "{text}");
    let change: serde_json::Value = serde_json::from_str(changes[0].1).unwrap();
    assert_eq!(change["price_change"]["old_usd_per_unit"], "0.24");
    assert_eq!(change["price_change"]["new_usd_per_unit"], "0.22");
    let receipt_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(r#"{"v":2,"c":"#))
        .map(|(i, _)| i)
        .collect();
    // After the receipt before the change; the stale call's may come either side.
    assert!(receipt_lines[0] < changes[0].0 && changes[0].0 < receipt_lines[2]);
    assert_eq!(
        read_all(&path).unwrap().records,
        [before, stale, first_new, next]
    );
    let report = report_files([&path], &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert_eq!(report.total.calls, 4);
    assert_eq!(ledger.stats().written, 4);
}

/// A sink that counts the price changes it is told of.
#[derive(Debug, Clone, Default)]
struct ChangesTold(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl sagemeter::sink::CostSink for ChangesTold {
    fn record(&self, _cost: &Cost) {}

    fn record_price_change(&self, _change: &sagemeter::pricing::PriceChange) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ChangesTold {
    /// Waits until `n` changes were told (every 5 ms, at most 2 s).
    async fn wait_for(&self, n: usize) {
        for _ in 0..400 {
            if self.0.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{n} price changes never told");
    }
}

fn rate_of(cost: &Cost) -> Decimal {
    match &compute(cost).price {
        sagemeter::billing::LinePrice::Priced { usd_per_unit, .. } => *usd_per_unit,
        other => panic!("{other:?}"),
    }
}

/// Waits until `prices` has an answer at hand for every key (every 5 ms, at most 2 s).
async fn cached_all(prices: &sagemeter::pricing::CachedPrices, keys: &[PriceKey]) {
    use sagemeter::pricing::PriceSource;
    for _ in 0..400 {
        if keys.iter().all(|k| prices.price_now(k).is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| prices.price_now(k).is_none())
        .collect();
    panic!("never cached: {missing:?}");
}

/// As soon as an endpoint's profile is known (discovered, or set on the builder),
/// every price its calls and its standing charges will look up is fetched in the
/// background, once per key, before any call: the first call waits for none of
/// them (it is priced from the cache), and makes no request of its own.
#[tokio::test]
async fn a_discovered_profile_warms_every_key_its_calls_and_accruals_need_once_each() {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    use sagemeter::pricing::{CachedPrices, LivePrices, PriceSource, Snapshot};
    let sagemaker = FakeSageMaker::start().await;
    // Discovered: serverless, 2 GB, 3 provisioned.
    let mut serverless = FakeVariant::serverless("AllTraffic", 2048);
    serverless.provisioned_concurrency = Some(3);
    sagemaker.add_endpoint("sl", vec![serverless]);
    // Set on the builder: two m5 instances with 30 GB volumes each, a shadow g5
    // and a deployment's pending c5 billed alongside.
    sagemaker.add_endpoint(
        "blue",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let blue = EndpointProfile::new(
        "blue",
        vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2).with_volume_size_gb(30)],
    )
    .with_shadow_variant(VariantProfile::instance("Shadow", "ml.g5.xlarge", 1))
    .with_pending_variant(VariantProfile::instance("Green", "ml.c5.xlarge", 1));
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        docs::hosting("us-east-1", "ml.g5.xlarge", "1.4080000000"),
        docs::hosting("us-east-1", "ml.c5.xlarge", "0.2040000000"),
        docs::hosting_storage("us-east-1", "0.1400000000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
        docs::provisioned_concurrency_standing(
            "us-east-1",
            2,
            fake_pricelist::docs::PcName::Usage,
            "0.0000100000",
        ),
        docs::provisioned_concurrency_inference(
            "us-east-1",
            2,
            fake_pricelist::docs::PcName::Mem,
            "0.0000233000",
        ),
        docs::serverless("us-east-1", 2, "0.0000400000"),
    ]);
    let prices = std::sync::Arc::new(
        CachedPrices::builder(LivePrices::from_sdk_config(
            &pricelist.sdk_config("us-east-1"),
        ))
        .fallback(Snapshot::bundled())
        .build(),
    );
    let client = Client::builder(&sagemaker.sdk_config().await)
        .price_source(prices.clone())
        .endpoint_profile(blue)
        .build()
        .unwrap();
    let meter = client.meter();

    let sl = meter.endpoint_profile("sl").await.unwrap();
    let blue = meter.endpoint_profile("blue").await.unwrap();
    let region = || "us-east-1".to_owned();
    let (data_in, data_out) = (
        PriceKey::DataIn { region: region() },
        PriceKey::DataOut { region: region() },
    );
    // Serverless with provisioned concurrency: its calls' duration rate, the
    // standing rate per second provisioned, the on-demand rate of calls beyond
    // it, and the data rates.
    let mut sl_keys = vec![
        PriceKey::ProvisionedConcurrencyUsage {
            region: region(),
            memory_gb: 2,
        },
        PriceKey::ProvisionedConcurrency {
            region: region(),
            memory_gb: 2,
        },
        PriceKey::serverless("us-east-1", 2),
        data_in.clone(),
        data_out.clone(),
    ];
    sl_keys.sort();
    assert_eq!(meter.price_keys(&sl), sl_keys);
    // Instances: each variant's compute (the shadow's and the pending fleet's
    // too: the accrual carries them), storage, and the data rates.
    let mut blue_keys = vec![
        PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
        PriceKey::hosting("us-east-1", "ml.g5.xlarge"),
        PriceKey::hosting("us-east-1", "ml.c5.xlarge"),
        PriceKey::storage("us-east-1"),
        data_in,
        data_out,
    ];
    blue_keys.sort();
    assert_eq!(meter.price_keys(&blue), blue_keys);

    let all: Vec<PriceKey> = sl_keys.iter().chain(&blue_keys).cloned().collect();
    cached_all(&prices, &all).await;
    assert_eq!(sagemaker.invocations(), 0, "no call was made");
    for key in &all {
        let rate = prices.price_now(key).unwrap().unwrap();
        assert_eq!(rate.provenance.source, PriceOrigin::Cache, "{key}");
    }
    // 2 data keys + 3 serverless + 3 instance types + storage = 9 keys, one request each.
    assert_eq!(pricelist.request_count(), 9, "{:#?}", pricelist.requests());

    // The calls find every rate cached: no request, nothing fetched for them.
    for endpoint in ["sl", "blue"] {
        let cost = client
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .body(Blob::new("{}"))
            .send()
            .await
            .unwrap()
            .into_parts()
            .1;
        assert_eq!(
            cost.compute_provenance().unwrap().source,
            PriceOrigin::Cache,
            "{endpoint}"
        );
        let accrual = cost.accrual.expect("standing capacity accrues");
        assert!(
            !accrual.priced_from.is_empty()
                && accrual
                    .priced_from
                    .iter()
                    .all(|s| s.price_source == PriceOrigin::Cache),
            "{endpoint}: {accrual:?}"
        );
    }
    assert_eq!(pricelist.request_count(), 9);
}

/// ml.m5.xlarge at $0.23/h, with $0.20 announced from 2026-09-01T00:00Z in the same
/// Price List answer, fetched at 22:00 the day before (TTL 6 h); the Price List
/// fails from 23:00. AWS bills usage at the rate of the term in force when it runs:
/// a call alone on the one instance for an hour from 00:30 is 1 h × $0.20 = $0.20,
/// and its receipt says so without any new request; the ledger records the change
/// (0.23 → 0.20, (0.20 − 0.23) ÷ 0.23 = −13.04%) once, before that receipt.
#[tokio::test]
async fn a_price_change_announced_ahead_prices_calls_from_its_date_and_is_recorded_first() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use sagemeter::ledger::JsonlLedger;
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::with_term_announced(
            docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
            "2026-09-01T00:00:00Z",
            "0.2000000000",
        ),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let utc = |t: &str| -> std::time::SystemTime {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .to_utc()
            .into()
    };
    let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let changes_told = ChangesTold::default();
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .sink(ledger.clone())
        .sink(changes_told.clone())
        .build()
        .unwrap();

    let before = call(&client).await;
    assert_eq!(rate_of(&before), dec("0.23"));
    let asked = pricelist.request_count();
    // 23:00: the Price List fails from now on.
    time.advance(Duration::from_secs(3600));
    pricelist.set_fault(Some(Fault::Throttle));
    // 00:30: one call alone on the instance for an hour.
    time.advance(Duration::from_secs(1800 + 3600));
    sagemaker.hold();
    let held = tokio::spawn({
        let client = client.clone();
        async move { call(&client).await }
    });
    sagemaker.wait_for_invocations(2).await;
    time.advance(Duration::from_secs(3600));
    sagemaker.release();
    let at_the_date = held.await.unwrap();
    client.shutdown().await.unwrap();

    // 1 h × 0.20 USD/h = 0.20 USD.
    assert_eq!(compute(&at_the_date).cost_usd(), Some(dec("0.20")));
    let provenance = at_the_date.compute_provenance().unwrap();
    assert_eq!(
        (
            provenance.source,
            provenance.effective_date.as_deref(),
            provenance.note.as_deref()
        ),
        (
            PriceOrigin::Cache,
            Some("2026-09-01T00:00:00Z"),
            Some(
                "price changed: 0.2 per hour (effective 2026-09-01T00:00:00Z), was 0.23 \
                 (effective 2026-05-01T00:00:00Z) (-13.04%); rate of the term effective \
                 2026-09-01T00:00:00Z, announced in the Price List answer fetched \
                 2026-08-31T22:00:00Z"
            )
        )
    );
    assert_eq!(pricelist.request_count(), asked, "the answer had it");

    let text = std::fs::read_to_string(&path).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            if l.starts_with(r#"{"v":2,"price_change":"#) {
                Some("change")
            } else if l.starts_with(r#"{"v":2,"c":"#) {
                Some("receipt")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(kinds, ["receipt", "change", "receipt"], "{text}");
    let change: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with(r#"{"v":2,"price_change":"#))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            &change["price_change"]["old_usd_per_unit"],
            &change["price_change"]["new_usd_per_unit"],
            &change["price_change"]["new_effective_date"]
        ),
        (
            &serde_json::json!("0.23"),
            &serde_json::json!("0.2"),
            &serde_json::json!("2026-09-01T00:00:00Z")
        )
    );
    changes_told.wait_for(1).await;
    assert_eq!(
        changes_told.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "told once"
    );
}

/// ml.m5.xlarge, 1 instance, at $0.23/h with $0.20 announced from
/// 2026-09-01T00:00Z in the Price List answer fetched at 22:00 the day before;
/// calls (amortised) at 22:00, 23:50 and 00:30, none in between. AWS bills each
/// instance-hour at the rate of the term in force when it ran, so the variant's
/// accrual from 23:50 to 00:30 is 10 min at $0.23 and 30 min at $0.20, not 40 min
/// at the rate the 00:30 call looked up:
/// - 22:00 → 23:50: 110/60 h × 0.23 = 0.421666… → 0.42166666666666666667 at the
///   accrual's 20 places (half to even), shown 0.421666666667 at 12;
/// - 23:50 → 00:00: 10/60 h × 0.23 = 0.03833333333333333333 (20 places), so
///   22:00 → 00:00 is 2 h × 0.23 = 0.46 exactly;
/// - 00:00 → 00:30: 0.5 h × 0.20 = 0.1;
/// - at 00:30: 0.46 + 0.1 = 0.56 (not 2.5 h × 0.23 = 0.575, $0.015 more), and the
///   00:30 receipt carries 0.56 − 0.421666666667 = 0.138333333333: one line of
///   1/6 instance-hour at 0.23 (0.46 − 0.421666666667 = 0.038333333333) and one
///   of 0.5 instance-hour at 0.2 (0.56 − 0.46 = 0.1), with no new request.
#[tokio::test]
async fn a_term_announced_ahead_accrues_from_its_date_not_from_the_next_look_up() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use sagemeter::billing::{Allocation, LinePrice};
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::with_term_announced(
            docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
            "2026-09-01T00:00:00Z",
            "0.2000000000",
        ),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let utc = |t: &str| -> std::time::SystemTime {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .to_utc()
            .into()
    };
    let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z"));
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .allocation(Allocation::Amortized)
        .build()
        .unwrap();

    call(&client).await;
    let asked = pricelist.request_count();
    // 23:50.
    time.advance(Duration::from_secs(110 * 60));
    let before = call(&client).await;
    assert_eq!(rate_of(&before), dec("0.23"));
    let accrued_before = before.accrual.as_ref().unwrap().accrued_usd;
    assert_eq!(accrued_before, dec("0.421666666667"));
    // 00:30.
    time.advance(Duration::from_secs(40 * 60));
    let after = call(&client).await;
    client.shutdown().await.unwrap();
    assert_eq!(pricelist.request_count(), asked, "the answer had it");

    let accrual = after.accrual.as_ref().unwrap();
    assert_eq!(
        accrual.accrued_usd,
        dec("0.56"),
        "2 h × 0.23 + 0.5 h × 0.20"
    );
    assert_eq!(accrual.accrued_usd - accrued_before, dec("0.138333333333"));
    let lines: Vec<(Decimal, Decimal, Decimal)> = after
        .lines
        .iter()
        .filter(|l| l.item == LineItem::Compute)
        .map(|l| match &l.price {
            LinePrice::Priced {
                usd_per_unit,
                cost_usd,
                ..
            } => (l.quantity, *usd_per_unit, *cost_usd),
            other => panic!("{other:?}"),
        })
        .collect();
    // 600 s ÷ 3600 = 1/6 instance-hour (to 28 significant digits), then 0.5.
    assert_eq!(
        lines,
        [
            (
                Decimal::ONE / Decimal::from(6),
                dec("0.23"),
                dec("0.038333333333")
            ),
            (dec("0.5"), dec("0.2"), dec("0.1")),
        ]
    );
}

/// ml.m5.xlarge, 1 instance at $0.23/h, with a 30 GB volume at $0.14 per GB-month
/// ($4.20 a month) with $0.10 ($3.00 a month) announced from 2026-09-01T00:00Z in
/// the Price List answer fetched at 22:00 the day before; the instance's rate
/// announces nothing. Calls (amortised) at 22:00, 23:50 and 00:30, none in
/// between. AWS prorates a GB-month by the second over the calendar month and
/// bills it at the rate of the term in force, so the volume's accrual from 23:50
/// to 00:30 is 10 min at $4.20 a month over August (31 days, 2,678,400 s) and
/// 30 min at $3.00 over September (30 days, 2,592,000 s):
/// - 22:00 → 23:50: 6,600 s × 4.2 ÷ 2,678,400 = 0.0103494623655913978… →
///   0.01034946236559139785 at the accrual's 20 places, shown 0.010349462366;
/// - 23:50 → 00:00: 600 s × 4.2 ÷ 2,678,400 = 0.00094086021505376344;
/// - 00:00 → 00:30: 1,800 s × 3 ÷ 2,592,000 = 0.00208333333333333333;
/// - at 00:30: 0.01337365591397849462, shown 0.013373655914: 0.003024193548 more
///   than at 23:50 (at $4.20 throughout it would be 0.003857526882 more), with no
///   new request.
///
/// The instance: 2.5 h × 0.23 = 0.575 at 00:30, the 00:30 receipt's one compute
/// line 40 min = 2/3 instance-hour at 0.23, 0.575 − 0.421666666667 (110 min ×
/// 0.23 at 23:50) = 0.153333333333: the volume's date is no price change of the
/// instance's.
#[tokio::test]
async fn a_storage_term_announced_ahead_accrues_from_its_date_not_from_the_next_look_up() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use sagemeter::billing::{AccrualCharge, Allocation, LinePrice};
    let sagemaker = FakeSageMaker::start().await;
    sagemaker.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1).with_volume(30)],
    );
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        docs::with_term_announced(
            docs::hosting_storage("us-east-1", "0.1400000000"),
            "2026-09-01T00:00:00Z",
            "0.1000000000",
        ),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let utc = |t: &str| -> std::time::SystemTime {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .to_utc()
            .into()
    };
    let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z"));
    let client = Client::builder(&sagemaker.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .allocation(Allocation::Amortized)
        .build()
        .unwrap();

    call(&client).await;
    let asked = pricelist.request_count();
    // 23:50.
    time.advance(Duration::from_secs(110 * 60));
    let before = call(&client).await;
    let before = before.accrual.as_ref().unwrap().clone();
    assert_eq!(before.storage_usd, Some(dec("0.010349462366")));
    assert_eq!(before.accrued_usd, dec("0.421666666667"));
    // 00:30.
    time.advance(Duration::from_secs(40 * 60));
    let after = call(&client).await;
    client.shutdown().await.unwrap();
    assert_eq!(pricelist.request_count(), asked, "the answer had it");

    let accrual = after.accrual.as_ref().unwrap();
    assert_eq!(accrual.storage_usd, Some(dec("0.013373655914")));
    assert_eq!(
        accrual.storage_usd.unwrap() - before.storage_usd.unwrap(),
        dec("0.003024193548"),
        "10 min at $4.20 a month over August, 30 min at $3.00 over September"
    );
    assert_eq!(accrual.accrued_usd, dec("0.575"), "2.5 h × 0.23");
    // The storage's stretch from 00:00 was priced at the term's rate, served from
    // the cache and noted so.
    assert!(
        accrual.priced_from.iter().any(|s| {
            s.charge == AccrualCharge::Storage
                && s.price_source == PriceOrigin::Cache
                && s.note.as_deref().is_some_and(|note| {
                    note.starts_with("rate of the term effective 2026-09-01T00:00:00Z")
                })
        }),
        "{:?}",
        accrual.priced_from
    );
    let lines: Vec<(Decimal, Decimal, Decimal)> = after
        .lines
        .iter()
        .filter(|l| l.item == LineItem::Compute)
        .map(|l| match &l.price {
            LinePrice::Priced {
                usd_per_unit,
                cost_usd,
                ..
            } => (l.quantity, *usd_per_unit, *cost_usd),
            other => panic!("{other:?}"),
        })
        .collect();
    // 2,400 s ÷ 3,600 = 2/3 instance-hour (to 28 significant digits).
    assert_eq!(
        lines,
        [(
            Decimal::from(2) / Decimal::from(3),
            dec("0.23"),
            dec("0.153333333333")
        )]
    );
}
