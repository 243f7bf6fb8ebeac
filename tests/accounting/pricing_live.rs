//! Live pricing through the real AWS SDK against an in-process fake Price List API.

use crate::support::fake_pricelist::docs::PcName;
use crate::support::fake_pricelist::{FakePriceList, Fault, docs, refused_url, sdk_config_for};
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use sagemeter::Decimal;
use sagemeter::pricing::{
    CachedPrices, LivePrices, PriceError, PriceKey, PriceOrigin, PriceSource, Rate, Snapshot,
    default_price_source,
};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn usd(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn m5_xlarge() -> PriceKey {
    PriceKey::hosting("us-east-1", "ml.m5.xlarge")
}

/// What the Price List holds for ml.m5.xlarge in us-east-1 (one product per component,
/// plus an upfront fee row), and a neighbour that the filters must keep out.
fn m5_xlarge_documents() -> Vec<serde_json::Value> {
    vec![
        docs::training("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        docs::notebook("us-east-1", "ml.m5.xlarge", "0.2420000000"),
        docs::upfront_fee("us-east-1", "ml.m5.xlarge", "13.5700000000"),
        docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        docs::hosting("us-east-1", "ml.m5.2xlarge", "0.4610000000"),
        docs::hosting("eu-west-1", "ml.m5.xlarge", "0.2570000000"),
    ]
}

fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn no_secrets(text: &str) {
    for secret in [
        "Signature",
        "Credential=",
        "aws4_request",
        "X-Amz-Security-Token",
    ] {
        assert!(!text.contains(secret), "{text:?} mentions {secret}");
    }
}

/// The default chain, with a manual clock for TTL and backoff.
fn cached_live(server: &FakePriceList, time: &ManualTimeSource) -> CachedPrices {
    let live = LivePrices::builder(&server.sdk_config("eu-west-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .build();
    CachedPrices::builder(live)
        .fallback(Snapshot::bundled())
        .time_source(SharedTimeSource::new(time.clone()))
        .build()
}

#[tokio::test]
async fn sends_sagemaker_filters_and_reads_the_exact_price() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    let time = ManualTimeSource::new(start_time());
    let live = LivePrices::builder(&server.sdk_config("eu-west-1"))
        .time_source(SharedTimeSource::new(time.clone()))
        .build();

    let rate = live.price(&m5_xlarge()).await.unwrap();

    assert_eq!(rate.usd_per_unit, usd("0.23")); // "0.2300000000", exactly
    assert_eq!(rate.provenance.source, PriceOrigin::Live);
    let hosting_sku = docs::sku_of(&docs::hosting("us-east-1", "ml.m5.xlarge", "0"));
    assert_eq!(rate.provenance.sku.as_deref(), Some(hosting_sku.as_str()));
    assert_eq!(
        rate.provenance.effective_date.as_deref(),
        Some(docs::EFFECTIVE_DATE)
    );
    assert_eq!(rate.provenance.fetched_at, Some(start_time().into()));
    assert_eq!(
        rate.provenance.note, None,
        "one product means hosting: nothing to explain"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.target.as_deref(),
        Some("AWSPriceListService.GetProducts")
    );
    assert_eq!(request.service_code.as_deref(), Some("AmazonSageMaker"));
    assert_eq!(request.format_version.as_deref(), Some("aws_v1"));
    assert_eq!(
        request.filters,
        vec![
            ("TERM_MATCH".into(), "regionCode".into(), "us-east-1".into()),
            (
                "TERM_MATCH".into(),
                "instanceName".into(),
                "ml.m5.xlarge".into()
            ),
        ]
    );
    assert_eq!(request.max_results, Some(100));
    assert_eq!(request.next_token, None);
    assert_eq!(
        request.signing_region.as_deref(),
        Some("us-east-1"),
        "pinned to the pricing region, not the app's eu-west-1"
    );
}

/// China credentials are accepted only by the China partition's Price List
/// endpoint (cn-northwest-1), whose products are priced in CNY: never converted,
/// never $0.
#[tokio::test]
async fn a_china_region_asks_the_china_price_list_endpoint() {
    let server = FakePriceList::start().await;
    let key = PriceKey::hosting("cn-north-1", "ml.m5.xlarge");
    server.add_documents([in_cny(docs::hosting(
        "cn-north-1",
        "ml.m5.xlarge",
        "1.6000000000",
    ))]);
    let live = LivePrices::from_sdk_config(&server.sdk_config("cn-north-1"));

    let err = live.price(&key).await.unwrap_err();

    assert_eq!(
        err,
        PriceError::OtherCurrency {
            key,
            currencies: "CNY".into()
        }
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].signing_region.as_deref(),
        Some("cn-northwest-1"),
        "signed for the China partition's endpoint, not the global us-east-1"
    );
    assert_eq!(requests[0].filter("regionCode"), Some("cn-north-1"));
}

#[tokio::test]
async fn follows_next_token_across_pages() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    server.set_page_size(1);
    let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));

    let rate = live.price(&m5_xlarge()).await.unwrap();

    // 4 us-east-1 ml.m5.xlarge products, 1 per page; the hosting one is on the last page.
    assert_eq!(rate.usd_per_unit, usd("0.23"));
    let tokens: Vec<_> = server
        .requests()
        .into_iter()
        .map(|r| r.next_token)
        .collect();
    assert_eq!(
        tokens,
        vec![
            None,
            Some("page-1".into()),
            Some("page-2".into()),
            Some("page-3".into())
        ]
    );
}

#[tokio::test]
async fn a_list_longer_than_the_page_bound_falls_back_and_says_so() {
    let server = FakePriceList::start().await;
    // The hosting product on the first page, then more ml.m5.xlarge products than
    // the look-up follows pages for, one per page.
    let mut documents = vec![docs::hosting("us-east-1", "ml.m5.xlarge", "0.2400000000")];
    documents.extend((0..12).map(|i| {
        docs::custom(
            "us-east-1",
            "ML Instance",
            &format!("USE1-Train{i}:ml.m5.xlarge"),
            serde_json::json!({ "instanceName": "ml.m5.xlarge", "component": "Training" }),
            &[("Hrs", "0", "Inf", "0.2300000000")],
        )
    }));
    server.add_documents(documents);
    server.set_page_size(1);
    let prices = default_price_source(&server.sdk_config("us-east-1"));

    let rate = prices.price(&m5_xlarge()).await.unwrap();

    assert_eq!(server.request_count(), 10);
    assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
    assert_eq!(rate.usd_per_unit, usd("0.23")); // the bundled row, not page 1's 0.24
    let note = rate.provenance.note.unwrap();
    assert!(
        note.starts_with(
            "primary price source failed (malformed price document: the Price List API still \
             had more products for hosting ml.m5.xlarge in us-east-1 after 10 pages"
        ),
        "{note}"
    );
}

#[tokio::test]
async fn serverless_and_data_keys_are_filtered_and_selected() {
    let server = FakePriceList::start().await;
    server.add_documents((1..=6).map(|gb| {
        // $0.00002 per GB step: 1 GB = 0.0000200000/s, ..., 6 GB = 0.0001200000/s.
        docs::serverless("us-east-1", gb, &format!("0.{:010}", 200_000 * gb))
    }));
    server.add_documents([
        docs::provisioned_concurrency_standing("us-east-1", 2, PcName::Usage, "0.0000100000"),
        docs::provisioned_concurrency_inference("us-east-1", 2, PcName::Mem, "0.0000233000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));

    let serverless = live
        .price(&PriceKey::serverless("us-east-1", 3))
        .await
        .unwrap();
    assert_eq!(serverless.usd_per_unit, usd("0.00006"));
    let pc = PriceKey::ProvisionedConcurrency {
        region: "us-east-1".into(),
        memory_gb: 2,
    };
    // The standing charge: the product whose group and description say "provisioned".
    assert_eq!(live.price(&pc).await.unwrap().usd_per_unit, usd("0.00001"));
    let data_out = live
        .price(&PriceKey::DataOut {
            region: "us-east-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(data_out.usd_per_unit, usd("0.016"));

    let requests = server.requests();
    assert_eq!(requests[0].filter("productFamily"), Some("ML Serverless"));
    assert_eq!(requests[2].filter("operation"), Some("Invoke-Endpoint"));
    assert_eq!(requests[2].filter("regionCode"), Some("us-east-1"));
}

#[tokio::test]
async fn serverless_free_tier_document_is_priced_at_its_paid_tier() {
    let server = FakePriceList::start().await;
    // 2 GB: the first 150000 s a month at $0, then $0.00004 a second.
    server.add_documents([docs::serverless_with_free_tier(
        "us-east-1",
        2,
        "150000",
        "0.0000400000",
    )]);
    let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));

    let rate = live
        .price(&PriceKey::serverless("us-east-1", 2))
        .await
        .unwrap();

    assert_eq!(rate.provenance.source, PriceOrigin::Live);
    assert_eq!(rate.usd_per_unit, usd("0.00004"), "not the $0 allowance");
    assert_eq!(
        rate.provenance.note.as_deref(),
        Some("free tier of 150000 second(s) per month not applied")
    );
}

#[tokio::test]
async fn serverless_document_with_only_a_free_tier_is_never_a_zero_price() {
    let server = FakePriceList::start().await;
    // Only the $0 allowance row, for 2 GB (the snapshot has 2 GB) and 5 GB (it has not).
    for gb in [2, 5] {
        server.add_documents([docs::custom(
            "us-east-1",
            "ML Serverless",
            &format!("USE1-ServerlessInf:Mem-{gb}GB"),
            serde_json::json!({"operation": "RunInstance"}),
            &[("Second", "0", "150000", "0.0000000000")],
        )]);
    }
    let prices = default_price_source(&server.sdk_config("us-east-1"));

    // 2 GB: the snapshot's $0.00004, with the Price List's $0 named as the reason.
    let two = prices
        .price(&PriceKey::serverless("us-east-1", 2))
        .await
        .unwrap();
    assert_eq!(two.provenance.source, PriceOrigin::Snapshot);
    assert_eq!(two.usd_per_unit, usd("0.00004"));
    let note = two.provenance.note.unwrap();
    assert!(
        note.starts_with(
            "primary price source failed (the Price List lists only $0 for serverless 2 GB in \
             us-east-1 (SKU "
        ),
        "{note}"
    );
    assert!(
        note.contains("a free-tier or bookkeeping row with no paid tier); not priced at $0)"),
        "{note}"
    );

    // 5 GB: nothing else to fall back on, so no price at all (an unpriced line), not $0.
    let five = PriceKey::serverless("us-east-1", 5);
    let err = prices.price(&five).await.unwrap_err();
    assert!(
        matches!(&err, PriceError::ZeroOnly { key, .. } if *key == five),
        "{err:?}"
    );
}

#[tokio::test]
async fn provisioned_concurrency_charges_follow_group_and_description_under_either_naming() {
    let standing = PriceKey::ProvisionedConcurrency {
        region: "us-east-1".into(),
        memory_gb: 2,
    };
    let inference = PriceKey::ProvisionedConcurrencyUsage {
        region: "us-east-1".into(),
        memory_gb: 2,
    };
    // (name of the standing charge's usagetype, name of the inference one)
    for (standing_name, inference_name) in
        [(PcName::Usage, PcName::Mem), (PcName::Mem, PcName::Usage)]
    {
        let server = FakePriceList::start().await;
        let standing_doc =
            docs::provisioned_concurrency_standing("us-east-1", 2, standing_name, "0.0000100000");
        let inference_doc =
            docs::provisioned_concurrency_inference("us-east-1", 2, inference_name, "0.0000233000");
        let (standing_sku, inference_sku) =
            (docs::sku_of(&standing_doc), docs::sku_of(&inference_doc));
        server.add_documents([
            standing_doc,
            inference_doc,
            docs::serverless("us-east-1", 2, "0.0000400000"),
        ]);
        let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));

        let rate = live.price(&standing).await.unwrap();
        assert_eq!(
            (rate.usd_per_unit, rate.provenance.sku.as_deref()),
            (usd("0.00001"), Some(standing_sku.as_str())),
            "{standing_name:?} named standing"
        );
        let note = rate.provenance.note.unwrap();
        assert!(
            note.contains("per its group \"ServerlessProvisionedConcurrency-Usage\""),
            "{note}"
        );

        let rate = live.price(&inference).await.unwrap();
        assert_eq!(
            (rate.usd_per_unit, rate.provenance.sku.as_deref()),
            (usd("0.0000233"), Some(inference_sku.as_str())),
            "{inference_name:?} named inference duration"
        );
        assert_eq!(
            server.requests()[0].filter("productFamily"),
            Some("ML Serverless")
        );
    }
}

#[tokio::test]
async fn hosting_storage_is_priced_per_gb_month_from_the_storage_family() {
    let server = FakePriceList::start().await;
    let hosting = docs::hosting_storage("us-east-1", "0.1400000000");
    let hosting_sku = docs::sku_of(&hosting);
    server.add_documents([
        docs::notebook_storage("us-east-1", "0.1500000000"),
        hosting,
        docs::hosting_storage("eu-west-1", "0.1540000000"),
    ]);
    let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));

    let rate = live.price(&PriceKey::storage("us-east-1")).await.unwrap();

    // The hosting volume's "0.1400000000" per GB-Mo, not the notebook's 0.15.
    assert_eq!(rate.usd_per_unit, usd("0.14"));
    assert_eq!(rate.unit, sagemeter::pricing::PriceUnit::GigabyteMonth);
    assert_eq!(rate.provenance.sku.as_deref(), Some(hosting_sku.as_str()));
    let request = &server.requests()[0];
    assert_eq!(request.filter("productFamily"), Some("Storage"));
    assert_eq!(request.filter("regionCode"), Some("us-east-1"));
}

#[tokio::test]
async fn unknown_instance_type_is_not_found() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    let live = LivePrices::from_sdk_config(&server.sdk_config("us-east-1"));
    let key = PriceKey::hosting("us-east-1", "ml.nope.xlarge");
    assert_eq!(live.price(&key).await, Err(PriceError::NotFound { key }));
}

/// `doc` as the Price List of the China regions writes it: every price in CNY.
fn in_cny(doc: serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&doc.to_string().replace(r#""USD":"#, r#""CNY":"#)).unwrap()
}

#[tokio::test]
async fn a_product_priced_only_in_another_currency_is_never_converted_or_zero() {
    let server = FakePriceList::start().await;
    server.add_documents([
        in_cny(docs::hosting("us-east-1", "ml.m5.xlarge", "1.6000000000")),
        in_cny(docs::hosting("us-east-1", "ml.p9.xlarge", "3.2000000000")),
    ]);
    let prices = default_price_source(&server.sdk_config("us-east-1"));

    // The snapshot has ml.m5.xlarge ($0.23 an hour): it prices the call, and says why.
    let rate = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
    assert_eq!(rate.usd_per_unit, usd("0.23"));
    let note = rate.provenance.note.unwrap();
    assert!(
        note.starts_with(
            "primary price source failed (no USD price for hosting ml.m5.xlarge in us-east-1: \
             the Price List prices it only in CNY"
        ),
        "{note}"
    );

    // Nothing else has ml.p9.xlarge's price: unpriced, saying which currency.
    let key = PriceKey::hosting("us-east-1", "ml.p9.xlarge");
    let err = prices.price(&key).await.unwrap_err();
    assert_eq!(
        err,
        PriceError::OtherCurrency {
            key,
            currencies: "CNY".into()
        }
    );
}

#[tokio::test]
async fn throttling_falls_back_to_the_snapshot_with_a_note() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    server.set_fault(Some(Fault::Throttle));
    let prices = default_price_source(&server.sdk_config("eu-west-1"));

    let rate = prices.price(&m5_xlarge()).await.unwrap();

    assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
    assert_eq!(rate.usd_per_unit, usd("0.23")); // the bundled us-east-1 ml.m5.xlarge row
    let note = rate.provenance.note.unwrap();
    assert!(
        note.starts_with(
            "primary price source failed (price source unavailable: the Price List API \
             throttled the request (ThrottlingException, HTTP 400)); bundled price snapshot"
        ),
        "{note}"
    );
    no_secrets(&note);
    assert_eq!(server.request_count(), 1, "one attempt, no retry storm");
}

async fn fallback_note_for(fault: Fault) -> (Rate, usize) {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    server.set_fault(Some(fault));
    let prices = default_price_source(&server.sdk_config("us-east-1"));
    let rate = prices.price(&m5_xlarge()).await.unwrap();
    (rate, server.request_count())
}

#[tokio::test]
async fn server_errors_and_garbage_fall_back_to_the_snapshot() {
    let cases = [
        (
            Fault::ServerError,
            "price source unavailable: the Price List API failed (InternalErrorException, HTTP 500)",
        ),
        (
            Fault::GarbageBody,
            "malformed price document: the Price List API answered HTTP 200 with a body that is not a GetProducts response",
        ),
        (
            Fault::TruncatedJson,
            "malformed price document: the Price List API answered HTTP 200 with a body that is not a GetProducts response",
        ),
        (
            Fault::GarbageDocuments,
            "malformed price document: 3 of 3 price documents for hosting ml.m5.xlarge in us-east-1 could not be read; first: price list element is not JSON",
        ),
        (
            Fault::EmptyPriceList,
            "no price for hosting ml.m5.xlarge in us-east-1",
        ),
    ];
    for (fault, expected) in cases {
        let (rate, requests) = fallback_note_for(fault.clone()).await;
        assert_eq!(rate.provenance.source, PriceOrigin::Snapshot, "{fault:?}");
        assert_eq!(rate.usd_per_unit, usd("0.23"), "{fault:?}");
        let note = rate.provenance.note.unwrap();
        assert!(
            note.starts_with(&format!("primary price source failed ({expected}")),
            "{fault:?}: {note}"
        );
        no_secrets(&note);
        assert_eq!(requests, 1, "{fault:?}: one attempt");
    }
}

#[tokio::test]
async fn connection_refused_falls_back_to_the_snapshot() {
    let prices = default_price_source(&sdk_config_for(&refused_url(), "us-east-1"));
    let rate = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
    let note = rate.provenance.note.unwrap();
    assert!(
        note.starts_with(
            "primary price source failed (price source unavailable: could not reach the Price \
             List API, the connection failed: "
        ),
        "{note}"
    );
    no_secrets(&note);
}

#[tokio::test]
async fn slow_server_falls_back_within_about_a_second() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    server.set_fault(Some(Fault::Slow(Duration::from_secs(10))));
    let prices = default_price_source(&server.sdk_config("us-east-1"));

    let started = Instant::now();
    let rate = prices.price(&m5_xlarge()).await.unwrap();
    let waited = started.elapsed();

    assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
    // The bound is 1 s; a loaded 2-core machine may take longer to notice it,
    // never the 10 s the server would take.
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "fell back after {waited:?}"
    );
    let note = rate.provenance.note.unwrap();
    assert!(note.contains("did not answer"), "{note}");
}

#[tokio::test]
async fn last_good_price_survives_a_later_failure() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    let time = ManualTimeSource::new(start_time());
    let prices = cached_live(&server, &time);

    let first = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(first.provenance.source, PriceOrigin::Live);
    let again = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(again.provenance.source, PriceOrigin::Cache);
    assert_eq!(server.request_count(), 1);

    server.set_fault(Some(Fault::Throttle));
    time.advance(Duration::from_secs(6 * 3600)); // the default TTL
    // The kept price at once while the refresh runs on its own task...
    let stale = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(
        (stale.provenance.source, stale.provenance.note.as_deref()),
        (PriceOrigin::Cache, Some(REFRESHING))
    );
    // ...then, once it failed, the kept price says why.
    until_noted(&prices, &m5_xlarge(), |note| note != Some(REFRESHING)).await;
    let kept = prices.price(&m5_xlarge()).await.unwrap();

    assert_eq!(server.request_count(), 2);
    assert_eq!(kept.provenance.source, PriceOrigin::Cache);
    assert_eq!(kept.usd_per_unit, usd("0.23"));
    assert_eq!(kept.provenance.sku, first.provenance.sku);
    assert_eq!(kept.provenance.fetched_at, first.provenance.fetched_at);
    let note = kept.provenance.note.clone().unwrap();
    assert!(
        note.starts_with("refresh failed (price source unavailable: the Price List API throttled"),
        "{note}"
    );
    assert!(
        note.ends_with("kept the last good price, fetched 2026-05-28T20:26:40Z"),
        "{note}"
    );

    // Once the API answers again (after the backoff), one retry: its caller and
    // the others meanwhile get the kept price at once, then the retry's answer is
    // the price, cached with no note.
    server.set_fault(None);
    time.advance(Duration::from_secs(60));
    let retrying = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(retrying, kept);
    until_noted(&prices, &m5_xlarge(), |note| note.is_none()).await;
    let recovered = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(
        (recovered.provenance.source, recovered.provenance.note),
        (PriceOrigin::Cache, None)
    );
    assert_eq!(server.request_count(), 3);
}

/// The note on a kept price served while its refresh runs.
const REFRESHING: &str = "cached price older than its TTL; a refresh is under way";

/// Waits for a refresh of `key` to land: until the note of what `price_now`
/// answers is `done` (every 5 ms, at most 2 s).
async fn until_noted(prices: &CachedPrices, key: &PriceKey, done: impl Fn(Option<&str>) -> bool) {
    for _ in 0..400 {
        let rate = prices.price_now(key).and_then(Result::ok);
        if rate.is_some_and(|rate| done(rate.provenance.note.as_deref())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the refresh of {key} never landed");
}

#[tokio::test]
async fn backoff_bounds_requests_during_an_outage() {
    let server = FakePriceList::start().await;
    server.set_fault(Some(Fault::ServerError));
    let time = ManualTimeSource::new(start_time());
    let live = Counted::new(
        LivePrices::builder(&server.sdk_config("eu-west-1"))
            .time_source(SharedTimeSource::new(time.clone()))
            .build(),
    );
    let prices = CachedPrices::builder(live.clone())
        .fallback(Snapshot::bundled())
        .time_source(SharedTimeSource::new(time.clone()))
        .build();

    // Ten minutes of traffic, ten calls a second. A retry runs on a task of its
    // own: each second, time for one started to land (as a caller's own I/O gives).
    for _second in 0..600 {
        for _ in 0..10 {
            let rate = prices.price(&m5_xlarge()).await.unwrap();
            assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
        }
        live.settled().await;
        time.advance(Duration::from_secs(1));
    }
    // 6,000 calls; one request at t=0 and one each time the 60 s backoff passes.
    assert_eq!(server.request_count(), 10);
}

/// A price source that counts the look-ups asked of and answered by its inner one.
#[derive(Debug, Clone)]
struct Counted<S> {
    inner: Arc<S>,
    asked: Arc<std::sync::atomic::AtomicUsize>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
}

impl<S> Counted<S> {
    fn new(inner: S) -> Self {
        Counted {
            inner: Arc::new(inner),
            asked: Arc::default(),
            answered: Arc::default(),
        }
    }

    /// Waits until every look-up started has been answered (every 1 ms, at most 2 s).
    /// On a current-thread runtime the cache records an answer before this task runs
    /// again.
    async fn settled(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        tokio::task::yield_now().await; // a look-up just spawned starts
        for _ in 0..2000 {
            if self.asked.load(SeqCst) == self.answered.load(SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("a look-up never answered");
    }
}

impl<S: PriceSource> PriceSource for Counted<S> {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> sagemeter::pricing::BoxFuture<'a, Result<Rate, PriceError>> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            self.asked.fetch_add(1, SeqCst);
            let answer = self.inner.price(key).await;
            self.answered.fetch_add(1, SeqCst);
            answer
        })
    }
}

#[tokio::test]
async fn a_retry_on_a_hanging_api_holds_no_other_caller() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    server.set_fault(Some(Fault::Slow(Duration::from_secs(10))));
    let time = ManualTimeSource::new(start_time());
    let prices = Arc::new(cached_live(&server, &time));
    let first = prices.price(&m5_xlarge()).await.unwrap();
    assert_eq!(first.provenance.source, PriceOrigin::Snapshot);

    // The backoff passes: one caller starts the retry, which hangs for the
    // look-up's second on a task of its own...
    time.advance(Duration::from_secs(60));
    let retrying = {
        let prices = prices.clone();
        tokio::spawn(async move { prices.price(&m5_xlarge()).await })
    };
    // Until the retry's request reaches the server (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.request_count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the retry never went out"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.request_count(), 2);
    // ...while every caller is priced from the snapshot at once.
    for _ in 0..10 {
        let rate = tokio::time::timeout(Duration::from_millis(100), prices.price(&m5_xlarge()))
            .await
            .expect("not held behind the retry")
            .unwrap();
        assert_eq!(rate, first);
    }
    let retried = retrying.await.unwrap().unwrap();
    assert_eq!(retried.provenance.source, PriceOrigin::Snapshot);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_cold_callers_make_one_request() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    // Slow enough that every caller arrives while the first request is in flight.
    server.set_fault(Some(Fault::Slow(Duration::from_millis(200))));
    let prices = Arc::new(default_price_source(&server.sdk_config("us-east-1")));

    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let prices = prices.clone();
            tokio::spawn(async move { prices.price(&m5_xlarge()).await })
        })
        .collect();
    let mut sources = Vec::new();
    for caller in callers {
        let rate = caller.await.unwrap().unwrap();
        assert_eq!(rate.usd_per_unit, usd("0.23"));
        sources.push(rate.provenance.source);
    }

    assert_eq!(server.request_count(), 1);
    assert_eq!(
        sources.iter().filter(|s| **s == PriceOrigin::Live).count(),
        1
    );
    assert_eq!(
        sources.iter().filter(|s| **s == PriceOrigin::Cache).count(),
        999
    );
}

/// Service-specific endpoint from the shared config file's `services` section, resolved
/// by `aws_config` itself, with a general `endpoint_url` that must lose to it.
// `ProfileFiles` is deprecated in favour of a type of `aws-runtime`, which is not a
// dependency; `ConfigLoader::profile_files` still takes it.
#[allow(deprecated)]
#[tokio::test]
async fn service_specific_endpoint_from_shared_config_is_honoured_with_region_pinned() {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    let config_file = format!(
        "[default]\n\
         region = eu-west-1\n\
         endpoint_url = {nothing}\n\
         services = local-pricing\n\
         [services local-pricing]\n\
         pricing =\n  endpoint_url = {fake}\n",
        nothing = refused_url(),
        fake = server.url(),
    );
    // The host's environment (an endpoint URL there would win over the config
    // file) is left out: the config file alone speaks.
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .profile_files(
            ProfileFiles::builder()
                .include_default_credentials_file(false)
                .with_contents(ProfileFileKind::Config, config_file)
                .build(),
        )
        .credentials_provider(aws_sdk_pricing::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    assert_eq!(sdk_config.region().map(|r| r.as_ref()), Some("eu-west-1"));

    let live = LivePrices::from_sdk_config(&sdk_config);
    let rate = live.price(&m5_xlarge()).await.unwrap();

    assert_eq!(rate.usd_per_unit, usd("0.23"));
    assert_eq!(server.request_count(), 1);
    assert_eq!(
        server.requests()[0].signing_region.as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        live.client().config().region().map(|r| r.as_ref()),
        Some("us-east-1")
    );
}

/// `AWS_ENDPOINT_URL_PRICING`, as `aws_config` hands it to service clients (through
/// `SdkConfig::service_config`), without touching the process environment.
#[tokio::test]
async fn aws_endpoint_url_pricing_is_honoured_with_region_pinned() {
    use aws_types::os_shim_internal::Env;
    use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

    /// Resolves service config keys from a fake environment the way `aws_config` does:
    /// `<ENV>_<SERVICE_ID in upper snake case>`.
    #[derive(Debug)]
    struct FakeEnv(Env);
    impl LoadServiceConfig for FakeEnv {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            let service = key.service_id().to_uppercase().replace(' ', "_");
            self.0.get(&format!("{}_{service}", key.env())).ok()
        }
    }

    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    let nothing = refused_url();
    let fake = server.url();
    let env = Env::from_slice(&[
        ("AWS_ENDPOINT_URL", nothing.as_str()),
        ("AWS_ENDPOINT_URL_PRICING", fake.as_str()),
        ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", nothing.as_str()),
    ]);
    // The app's config: general endpoint (nothing there) from the environment, and the
    // environment's service-specific settings.
    let mut builder = sdk_config_for(&nothing, "ap-northeast-1")
        .into_builder()
        .service_config(FakeEnv(env));
    builder.insert_origin(
        "endpoint_url",
        aws_types::origin::Origin::shared_environment_variable(),
    );
    let sdk_config = builder.build();

    let live = LivePrices::from_sdk_config(&sdk_config);
    let rate = live.price(&m5_xlarge()).await.unwrap();

    assert_eq!(rate.provenance.source, PriceOrigin::Live);
    assert_eq!(server.request_count(), 1);
    assert_eq!(
        server.requests()[0].signing_region.as_deref(),
        Some("us-east-1")
    );
}

#[tokio::test]
async fn endpoint_url_in_code_is_honoured_by_the_pricing_client() {
    let server = FakePriceList::start().await;
    server.add_documents(m5_xlarge_documents());
    // `sdk_config` sets endpoint_url on the SdkConfig, as an application would in code.
    let live = LivePrices::builder(&server.sdk_config("sa-east-1"))
        .pricing_region(sagemeter::pricing::PricingRegion::EuCentral1)
        .build();
    live.price(&m5_xlarge()).await.unwrap();
    assert_eq!(
        server.requests()[0].signing_region.as_deref(),
        Some("eu-central-1")
    );
}
