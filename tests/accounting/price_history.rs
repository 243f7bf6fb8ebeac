//! Price history from the Price List's published versions, against an in-process fake
//! of `ListPriceLists`, `GetPriceListFileUrl` and the offer files.
//!
//! The fake publishes four versions of us-east-1's price list (and one of eu-west-1's,
//! which must never be read for us-east-1):
//!
//! | version        | in effect  | what changes                                            |
//! |----------------|------------|---------------------------------------------------------|
//! | 20240101000000 | 2024-01-01 | first: c5.xlarge 0.204, c5.2xlarge 0.408, g5.xlarge 1.408, g5.12xlarge 7.09, serverless 3 GB 0.00006 after 150,000 free s |
//! | 20240615000000 | 2024-06-15 | nothing (a new version with the same rates)             |
//! | 20250301000000 | 2025-03-01 | c5.2xlarge 0.3672 (−10 %), g5.xlarge 1.1264 (−20 %), c5.4xlarge added at 0.816 |
//! | 20251001000000 | 2025-10-01 | serverless 3 GB 0.000054 (−10 %), c5.xlarge delisted    |
//!
//! History is asked from 2024-01-01 to 2026-01-01: 25 sampled dates.

use crate::support::fake_pricelist::published::{
    JAN_2024, MAR_2025, OCT_2025, REGION, c5, publish, since, until,
};
use crate::support::fake_pricelist::{FakePriceList, Fault, docs, offer_file};
use chrono::NaiveDate;
use sagemeter::Decimal;
use sagemeter::pricing::PriceKey;
use sagemeter::pricing::history::{HistoryError, KeyHistory, PriceHistory, PriceListHistory};
use serde_json::{Value, json};
use std::time::Duration;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn usd(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn reader(server: &FakePriceList, cache: Option<&std::path::Path>) -> PriceListHistory {
    PriceListHistory::builder(&server.sdk_config("eu-west-1"))
        .cache_dir(cache.map(|c| c.to_path_buf()))
        .until(until())
        .build()
}

/// A key's points as (version, date seen, rate, change in percent).
fn changes(series: &KeyHistory) -> Vec<(&str, NaiveDate, Option<Decimal>, Option<Decimal>)> {
    series
        .points
        .iter()
        .map(|p| {
            (
                p.version.as_str(),
                p.seen_on,
                p.usd_per_unit,
                p.change_percent,
            )
        })
        .collect()
}

/// A history reader of `server` as us-east-1 sees it, with no cache.
fn in_us_east_1(server: &FakePriceList) -> sagemeter::pricing::history::PriceListHistoryBuilder {
    PriceListHistory::builder(&server.sdk_config("us-east-1")).cache_dir(None)
}

/// The versions `history` read, by name.
fn versions_read(history: &PriceHistory) -> Vec<&str> {
    history
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect()
}

/// ml.m5.xlarge hosting in [`REGION`] at `usd` an hour, in effect from
/// `effective`.
fn m5_effective(usd: &str, effective: &str) -> Value {
    docs::effective(docs::hosting(REGION, "ml.m5.xlarge", usd), effective)
}

/// A missing version's span: its name, the date it was seen and the date its
/// rates are unknown until.
fn span(
    missing: &sagemeter::pricing::history::MissingVersion,
) -> (&str, NaiveDate, Option<NaiveDate>) {
    (
        missing.version.as_str(),
        missing.seen_on,
        missing.unknown_until,
    )
}

fn sku(document: &Value) -> Option<String> {
    Some(docs::sku_of(document))
}

#[tokio::test]
async fn the_history_lists_exactly_the_changes_with_their_versions_and_skus() {
    let server = publish(None).await;
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = reader(&server, None).history(&key, since()).await.unwrap();

    // 2024-01-01, the first of each month to 2025-12-01, and 2026-01-01.
    let asked = server.list_dates();
    assert_eq!(asked.len(), 25);
    assert_eq!((asked[0], asked[24]), (since(), until()));
    let read = versions_read(&history);
    assert_eq!(
        read,
        [
            "20240101000000",
            "20240615000000",
            "20250301000000",
            "20251001000000"
        ]
    );
    assert_eq!(history.versions[1].seen_on, date(2024, 7, 1));
    assert_eq!(
        history.versions[2].published.as_deref(),
        Some("2025-03-01T00:00:00Z")
    );

    assert_eq!(history.series.len(), 1);
    let series = &history.series[0];
    assert_eq!(series.key, key);
    let points: Vec<_> = series
        .points
        .iter()
        .map(|p| {
            (
                p.version.as_str(),
                p.usd_per_unit,
                p.change_percent,
                p.effective_date.as_deref(),
            )
        })
        .collect();
    // The hosting product, not the training one at the same price; the unchanged
    // version of June 2024 adds nothing. 0.3672 is 0.408 less 10 %.
    assert_eq!(
        points,
        [
            ("20240101000000", Some(usd("0.408")), None, Some(JAN_2024)),
            (
                "20250301000000",
                Some(usd("0.3672")),
                Some(usd("-10.00")),
                Some(MAR_2025)
            ),
        ]
    );
    let hosting = c5("2xlarge", "8", "0.3672000000", MAR_2025);
    assert_eq!(series.points[1].sku, sku(&hosting));
    assert_eq!(series.vcpu, Some(8));
}

#[tokio::test]
async fn an_instance_type_added_later_starts_at_its_first_version() {
    let server = publish(None).await;
    let key = PriceKey::hosting(REGION, "ml.c5.4xlarge");
    let history = reader(&server, None).history(&key, since()).await.unwrap();
    let points = &history.series[0].points;
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].version, "20250301000000");
    assert_eq!(points[0].seen_on, date(2025, 3, 1));
    assert_eq!(points[0].usd_per_unit, Some(usd("0.816")));
    assert_eq!(points[0].change_percent, None);
}

#[tokio::test]
async fn a_free_tier_is_not_taken_for_the_rate() {
    let server = publish(None).await;
    let key = PriceKey::serverless(REGION, 3);
    let history = reader(&server, None).history(&key, since()).await.unwrap();
    let points = &history.series[0].points;
    // The $0 first tier (150,000 s a month) is never the rate: 0.00006, then −10 %.
    let rates: Vec<_> = points
        .iter()
        .map(|p| (p.usd_per_unit, p.change_percent))
        .collect();
    assert_eq!(
        rates,
        [
            (Some(usd("0.00006")), None),
            (Some(usd("0.000054")), Some(usd("-10.00")))
        ]
    );
    let note = points[0].note.as_deref().unwrap_or_default();
    assert!(note.contains("free tier"), "{note}");
    assert_eq!(points[1].effective_date.as_deref(), Some(OCT_2025));
}

#[tokio::test]
async fn a_file_cut_short_is_an_error_naming_its_version_with_the_rest_read() {
    let server = publish(Some("20250301000000")).await;
    let cache = tempfile::tempdir().unwrap();
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let err = reader(&server, Some(cache.path()))
        .history(&key, since())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "the price history is incomplete: version 20250301000000 (in effect 2025-03-01; \
             rates unknown from then until 2025-10-01): the file is cut short (EOF while \
             parsing"
        ),
        "{message}"
    );
    assert!(!message.contains("fake-signature"), "{message}");
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete");
    };
    assert_eq!(missing.len(), 1);
    let read = versions_read(&partial);
    assert_eq!(read, ["20240101000000", "20240615000000", "20251001000000"]);
    // The change is still found, in the next version read.
    let points = &partial.series[0].points;
    assert_eq!(points[1].version, "20251001000000");
    assert_eq!(points[1].usd_per_unit, Some(usd("0.3672")));

    // The cut file was not kept: only whole versions are cached.
    let cached = |version: &str| {
        cache.path().join(format!(
            "price-lists/AmazonSageMaker/USD/{version}/{REGION}.json"
        ))
    };
    assert!(cached("20240101000000").is_file());
    assert!(!cached("20250301000000").exists());
    let leftovers: Vec<_> = std::fs::read_dir(cached("20250301000000").parent().unwrap())
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// AWS's docs promise a version not read makes the history incomplete: one whose
/// `FileFormats` offers no `json` file is not read, so it is missing, not skipped.
/// A version in which a product that may price the key cannot be read is missing,
/// not read as if the product were not there: there, the unreadable one was the
/// higher of two rates, and the history said 0.408 all along.
#[tokio::test]
async fn a_version_with_a_product_that_cannot_be_read_is_missing_not_skipped() {
    // January, March and June 2025 list c5.2xlarge at 0.408. March also lists a
    // second c5.2xlarge hosting product at 0.459, its price written `0.4590000000x`.
    let server = FakePriceList::start().await;
    let listed = || c5("2xlarge", "8", "0.4080000000", "2025-01-01T00:00:00Z");
    let sku = docs::sku_of(&listed());
    let unreadable: Value = serde_json::from_str(
        &c5("2xlarge", "8", "0.4590000000", "2025-01-01T00:00:00Z")
            .to_string()
            .replace(&sku, "C52XLSECOND00000")
            .replace("\"0.4590000000\"", "\"0.4590000000x\""),
    )
    .unwrap();
    for (version, month, documents) in [
        ("20250101000000", 1, vec![listed()]),
        ("20250301000000", 3, vec![listed(), unreadable]),
        ("20250601000000", 6, vec![listed()]),
    ] {
        server.add_version(
            REGION,
            version,
            date(2025, month, 1),
            offer_file(version, &documents),
        );
    }
    let err = in_us_east_1(&server)
        .until(date(2025, 7, 1))
        .build()
        .history(
            &PriceKey::hosting(REGION, "ml.c5.2xlarge"),
            date(2025, 1, 1),
        )
        .await
        .unwrap_err();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    // March's rates are unknown from 2025-03-01 until June's version took over.
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        (missing[0].version.as_str(), missing[0].seen_on),
        ("20250301000000", date(2025, 3, 1))
    );
    assert_eq!(missing[0].unknown_until, Some(date(2025, 6, 1)));
    assert!(
        missing[0].reason.contains("C52XLSECOND00000")
            && missing[0].reason.ends_with("its rates are unknown"),
        "{}",
        missing[0].reason
    );
    // What was read: 0.408 from January; June the same, no point.
    assert_eq!(
        changes(&partial.series[0]),
        [("20250101000000", date(2025, 1, 1), Some(usd("0.408")), None)]
    );
}

/// A version whose products for the key are listed but give no usable rate (priced
/// only in another currency; products that contradict each other) is missing, as
/// one listing it only at $0 is: never the rate before carried through its span.
#[tokio::test]
async fn a_version_listing_the_key_with_no_usable_rate_is_missing_not_the_rate_before_carried_on() {
    // ml.m5.xlarge hosting: January 0.23, February's version prices it only in CNY
    // (1.6600000000), March 0.25.
    let m5 = |usd: &str, month: u32| {
        docs::effective(
            docs::hosting(REGION, "ml.m5.xlarge", usd),
            &format!("2025-{month:02}-01T00:00:00Z"),
        )
    };
    let in_cny: Value = serde_json::from_str(
        &m5("1.6600000000", 2)
            .to_string()
            .replace("\"USD\":", "\"CNY\":"),
    )
    .unwrap();
    assert!(in_cny.to_string().contains("\"CNY\":\"1.6600000000\""));
    // Hosting ML storage: January 0.14, February's product says it is hosting
    // storage by its volumeType and notebook storage by its usagetype (not
    // guessed), March 0.15.
    let storage = |usd: &str, month: u32| {
        docs::effective(
            docs::hosting_storage(REGION, usd),
            &format!("2025-{month:02}-01T00:00:00Z"),
        )
    };
    let prefix = docs::usage_prefix(REGION);
    let contradicting = docs::with_attributes(
        storage("0.1400000000", 2),
        &[("usagetype", &format!("{prefix}-Notebk:VolumeUsage.gp2"))],
    );
    let cases = [
        (
            PriceKey::hosting(REGION, "ml.m5.xlarge"),
            [m5("0.2300000000", 1), in_cny, m5("0.2500000000", 3)],
            "gives no usable rate for hosting ml.m5.xlarge in us-east-1 (priced only in CNY, not USD)",
            // (0.25 − 0.23) ÷ 0.23 × 100 = 8.6956… → +8.70 %.
            ("0.23", "0.25", "8.70"),
        ),
        (
            PriceKey::storage(REGION),
            [
                storage("0.1400000000", 1),
                contradicting,
                storage("0.1500000000", 3),
            ],
            "unambiguously",
            // (0.15 − 0.14) ÷ 0.14 × 100 = 7.1428… → +7.14 %.
            ("0.14", "0.15", "7.14"),
        ),
    ];
    for (key, documents, reason, (january, march, change)) in cases {
        let server = FakePriceList::start().await;
        for (month, document) in (1..).zip(documents) {
            let version = format!("2025{month:02}01000000");
            server.add_version(
                REGION,
                &version,
                date(2025, month, 1),
                offer_file(&version, &[document]),
            );
        }
        let err = in_us_east_1(&server)
            .until(date(2025, 4, 1))
            .build()
            .history(&key, date(2025, 1, 1))
            .await
            .unwrap_err();
        let HistoryError::Incomplete { partial, missing } = err else {
            panic!("{key}: expected Incomplete, got {err:?}");
        };
        // February's rate is unknown from 2025-02-01 until March's version took over.
        assert_eq!(missing.len(), 1, "{key}: {missing:?}");
        assert_eq!(
            span(&missing[0]),
            ("20250201000000", date(2025, 2, 1), Some(date(2025, 3, 1))),
            "{key}"
        );
        assert!(
            missing[0].reason.contains(reason)
                && missing[0].reason.ends_with("so its rates are unknown"),
            "{key}: {}",
            missing[0].reason
        );
        // No point from February: not January's rate carried through it; March's
        // changes from January's.
        assert_eq!(
            changes(&partial.series[0]),
            [
                ("20250101000000", date(2025, 1, 1), Some(usd(january)), None),
                (
                    "20250301000000",
                    date(2025, 3, 1),
                    Some(usd(march)),
                    Some(usd(change))
                ),
            ],
            "{key}"
        );
    }
}

/// Only a product that may price the key makes a version missing when it cannot be
/// read: an `ml.m5.xlarge` Training product has the hosting key's region and
/// instance name, but never prices hosting (the live look-up skips it), so its
/// unreadable price leaves the hosting history whole.
#[tokio::test]
async fn an_unreadable_training_product_leaves_the_hosting_history_whole() {
    // January lists ml.m5.xlarge hosting at 0.23; February at 0.25, beside an
    // ml.m5.xlarge Training product whose price is written `0.2300000000x`.
    let server = FakePriceList::start().await;
    let training: Value = serde_json::from_str(
        &docs::effective(
            docs::training(REGION, "ml.m5.xlarge", "0.2300000000"),
            "2025-01-01T00:00:00Z",
        )
        .to_string()
        .replace("\"0.2300000000\"", "\"0.2300000000x\""),
    )
    .unwrap();
    assert!(training.to_string().contains("0.2300000000x"));
    for (version, month, documents) in [
        (
            "20250101000000",
            1,
            vec![m5_effective("0.2300000000", "2025-01-01T00:00:00Z")],
        ),
        (
            "20250201000000",
            2,
            vec![
                m5_effective("0.2500000000", "2025-02-01T00:00:00Z"),
                training,
            ],
        ),
    ] {
        server.add_version(
            REGION,
            version,
            date(2025, month, 1),
            offer_file(version, &documents),
        );
    }
    let history = in_us_east_1(&server)
        .until(date(2025, 3, 1))
        .build()
        .history(&PriceKey::hosting(REGION, "ml.m5.xlarge"), date(2025, 1, 1))
        .await
        .unwrap();
    let read = versions_read(&history);
    assert_eq!(read, ["20250101000000", "20250201000000"]);
    // February's hosting rate is read: (0.25 − 0.23) ÷ 0.23 × 100 = 8.6956… → +8.70 %.
    assert_eq!(
        changes(&history.series[0]),
        [
            ("20250101000000", date(2025, 1, 1), Some(usd("0.23")), None),
            (
                "20250201000000",
                date(2025, 2, 1),
                Some(usd("0.25")),
                Some(usd("8.70"))
            ),
        ]
    );
}

/// A version that lists a key only at $0 (a bookkeeping row, no paid tier) gives it
/// no rate: its span is reported missing, never the rate before carried through it.
#[tokio::test]
async fn a_version_listing_the_key_only_at_0_is_missing_not_the_rate_before_carried_on() {
    // January 0.23, February's version lists ml.m5.xlarge only at
    // 0.0000000000 (one dimension 0 to Inf), March 0.25.
    let server = FakePriceList::start().await;
    for (version, month, usd) in [
        ("20250101000000", 1, "0.2300000000"),
        ("20250201000000", 2, "0.0000000000"),
        ("20250301000000", 3, "0.2500000000"),
    ] {
        let effective = format!("2025-{month:02}-01T00:00:00Z");
        server.add_version(
            REGION,
            version,
            date(2025, month, 1),
            offer_file(version, &[m5_effective(usd, &effective)]),
        );
    }
    let err = in_us_east_1(&server)
        .until(date(2025, 4, 1))
        .build()
        .history(&PriceKey::hosting(REGION, "ml.m5.xlarge"), date(2025, 1, 1))
        .await
        .unwrap_err();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    // February's rate is unknown from 2025-02-01 until March's version took over.
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        span(&missing[0]),
        ("20250201000000", date(2025, 2, 1), Some(date(2025, 3, 1)))
    );
    assert!(
        missing[0]
            .reason
            .contains("lists hosting ml.m5.xlarge in us-east-1 only at $0: not a price"),
        "{}",
        missing[0].reason
    );
    let read = versions_read(&partial);
    assert_eq!(read, ["20250101000000", "20250301000000"]);
    // No point from February: not $0, and not January's 0.23 carried through it.
    // March's 0.25 changes from the last rate listed, as after any missing version:
    // (0.25 − 0.23) ÷ 0.23 × 100 = 2 ÷ 23 × 100 = 8.6956… → +8.70 %.
    assert_eq!(
        changes(&partial.series[0]),
        [
            ("20250101000000", date(2025, 1, 1), Some(usd("0.23")), None),
            (
                "20250301000000",
                date(2025, 3, 1),
                Some(usd("0.25")),
                Some(usd("8.70"))
            ),
        ]
    );
}

/// After a version that gives no rate (its download fails, or it lists the key only
/// at $0), the next version read may list the key only at a rate announced for a
/// later date. It says nothing of the rate billed before that date: that is the
/// missing version's, unknown. So the missing span runs on to the announced date,
/// and the last rate known before the gap is not shown in force until then.
#[tokio::test]
async fn a_rate_announced_after_a_missing_version_leaves_the_span_before_it_unknown() {
    // January 2025 (in effect 2025-01-01): ml.m5.xlarge 0.23. February (in effect
    // 2025-02-01): cut short, or ml.m5.xlarge only at 0.0000000000. March (in
    // effect 2025-03-01): ml.m5.xlarge only at 0.20, a term effective 2025-03-15.
    let cut = offer_file(
        "20250201000000",
        &[m5_effective("0.2300000000", "2025-01-01T00:00:00Z")],
    );
    let cut = cut[..cut.len() / 2].to_owned();
    let zero = offer_file(
        "20250201000000",
        &[m5_effective("0.0000000000", "2025-02-01T00:00:00Z")],
    );
    let key = PriceKey::hosting(REGION, "ml.m5.xlarge");
    for (february, why) in [
        (cut, "the file is cut short"),
        (
            zero,
            "lists hosting ml.m5.xlarge in us-east-1 only at $0: not a price",
        ),
    ] {
        let server = FakePriceList::start().await;
        server.add_version(
            REGION,
            "20250101000000",
            date(2025, 1, 1),
            offer_file(
                "20250101000000",
                &[m5_effective("0.2300000000", "2025-01-01T00:00:00Z")],
            ),
        );
        server.add_version(REGION, "20250201000000", date(2025, 2, 1), february);
        server.add_version(
            REGION,
            "20250301000000",
            date(2025, 3, 1),
            offer_file(
                "20250301000000",
                &[m5_effective("0.2000000000", "2025-03-15T00:00:00Z")],
            ),
        );
        let read = |until: NaiveDate| in_us_east_1(&server).until(until).build();

        // Up to 2025-04-01: 0.23 from 2025-01-01; unknown from 2025-02-01 (February's
        // rate) until 2025-03-15 (March lists no rate before it); 0.20 from
        // 2025-03-15. Its change is worked out from the last rate known, as after
        // any missing version: (0.20 − 0.23) ÷ 0.23 × 100 = −3 ÷ 23 × 100 =
        // −13.0434… → −13.04 %.
        let err = read(date(2025, 4, 1))
            .history(&key, date(2025, 1, 1))
            .await
            .unwrap_err();
        let message = err.to_string();
        let HistoryError::Incomplete { partial, missing } = err else {
            panic!("{why}: expected Incomplete, got {err:?}");
        };
        assert_eq!(
            missing
                .iter()
                .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, m.keys.len()))
                .collect::<Vec<_>>(),
            [(
                "20250201000000",
                date(2025, 2, 1),
                Some(date(2025, 3, 15)),
                0
            )],
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "version 20250201000000 (in effect 2025-02-01; rates unknown from then until \
                 2025-03-15): {why}"
            )) && message.contains(
                "version 20250301000000 after it lists hosting ml.m5.xlarge in us-east-1 only \
                 at a rate announced for later, and until then its rate is this version's, \
                 unknown"
            ),
            "{message}"
        );
        assert_eq!(
            changes(&partial.series[0]),
            [
                ("20250101000000", date(2025, 1, 1), Some(usd("0.23")), None),
                (
                    "20250301000000",
                    date(2025, 3, 15),
                    Some(usd("0.20")),
                    Some(usd("-13.04"))
                ),
            ],
            "{why}"
        );

        // Up to 2025-03-10, before the announced date: unknown from 2025-02-01 to the
        // end, and 0.23 is all the history holds.
        let err = read(date(2025, 3, 10))
            .history(&key, date(2025, 1, 1))
            .await
            .unwrap_err();
        let HistoryError::Incomplete { partial, missing } = err else {
            panic!("{why}: expected Incomplete, got {err:?}");
        };
        assert_eq!(
            missing
                .iter()
                .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until))
                .collect::<Vec<_>>(),
            [("20250201000000", date(2025, 2, 1), None)],
            "{why}"
        );
        assert_eq!(
            changes(&partial.series[0]),
            [("20250101000000", date(2025, 1, 1), Some(usd("0.23")), None)],
            "{why}"
        );
    }
}

/// A version that lists one key only at $0 gives no rate for that key, but it does
/// for the others it prices: it is missing for that key only, and read for the
/// rest. Asked for that key alone, it gives no rate at all: missing whole.
#[tokio::test]
async fn a_version_listing_one_key_only_at_0_is_missing_for_that_key_only() {
    // January 2025: ml.m5.xlarge 0.23, ml.m5.large 0.115. February 2025:
    // ml.m5.xlarge 0.20, ml.m5.large only at 0.0000000000 (one dimension 0 to Inf).
    let server = FakePriceList::start().await;
    let m5 = |instance: &str, usd: &str, month: u32| {
        docs::effective(
            docs::hosting(REGION, instance, usd),
            &format!("2025-{month:02}-01T00:00:00Z"),
        )
    };
    for (version, month, xlarge, large) in [
        ("20250101000000", 1, "0.2300000000", "0.1150000000"),
        ("20250201000000", 2, "0.2000000000", "0.0000000000"),
    ] {
        server.add_version(
            REGION,
            version,
            date(2025, month, 1),
            offer_file(
                version,
                &[
                    m5("ml.m5.xlarge", xlarge, month),
                    m5("ml.m5.large", large, month),
                ],
            ),
        );
    }
    let read = || in_us_east_1(&server).until(date(2025, 3, 1)).build();
    let large = PriceKey::hosting(REGION, "ml.m5.large");
    let xlarge = PriceKey::hosting(REGION, "ml.m5.xlarge");

    // Both sizes (the ml.m5 family): still incomplete, since ml.m5.large's rate from
    // 2025-02-01 is unknown.
    let err = read()
        .family(REGION, "ml.m5", date(2025, 1, 1))
        .await
        .unwrap_err();
    let message = err.to_string();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    // February is missing for ml.m5.large only, to the end (no later version).
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        (
            missing[0].version.as_str(),
            missing[0].seen_on,
            missing[0].unknown_until,
            &missing[0].keys[..]
        ),
        (
            "20250201000000",
            date(2025, 2, 1),
            None,
            &[large.clone()][..]
        )
    );
    assert!(
        missing[0]
            .reason
            .starts_with("lists hosting ml.m5.large in us-east-1 only at $0: not a price"),
        "{}",
        missing[0].reason
    );
    assert!(
        message.contains(
            "version 20250201000000 (in effect 2025-02-01; rates of hosting ml.m5.large in \
             us-east-1 unknown from then on): lists hosting ml.m5.large in us-east-1 only at \
             $0: not a price"
        ),
        "{message}"
    );
    // February is read, for ml.m5.xlarge.
    let versions: Vec<&str> = partial
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["20250101000000", "20250201000000"]);
    let series = |key: &PriceKey| {
        partial
            .series
            .iter()
            .find(|s| &s.key == key)
            .unwrap_or_else(|| panic!("no series for {key}"))
    };
    // ml.m5.xlarge: 0.23 from 2025-01-01, then 0.20 from 2025-02-01:
    // (0.20 − 0.23) ÷ 0.23 × 100 = −3 ÷ 23 × 100 = −13.0434… → −13.04 %.
    assert_eq!(
        changes(series(&xlarge)),
        [
            ("20250101000000", date(2025, 1, 1), Some(usd("0.23")), None),
            (
                "20250201000000",
                date(2025, 2, 1),
                Some(usd("0.20")),
                Some(usd("-13.04"))
            ),
        ]
    );
    assert_eq!(series(&xlarge).last_listed_on, Some(date(2025, 2, 1)));
    // ml.m5.large: 0.115 from 2025-01-01, and no point from February: not $0, not
    // "no longer listed", not 0.115 seen again.
    assert_eq!(
        changes(series(&large)),
        [("20250101000000", date(2025, 1, 1), Some(usd("0.115")), None)]
    );
    assert_eq!(series(&large).last_listed_on, Some(date(2025, 1, 1)));

    // ml.m5.large alone: February gives no rate for the one key asked, so it is
    // missing whole, as before, and not among the versions read.
    let err = read().history(&large, date(2025, 1, 1)).await.unwrap_err();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        span(&missing[0]),
        ("20250201000000", date(2025, 2, 1), None)
    );
    assert!(missing[0].keys.is_empty(), "{missing:?}");
    assert!(
        missing[0].reason.contains(
            "lists hosting ml.m5.large in us-east-1 only at $0: not a price, so its rates \
             are unknown"
        ),
        "{}",
        missing[0].reason
    );
    let versions: Vec<&str> = partial
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["20250101000000"]);
    assert_eq!(
        changes(&partial.series[0]),
        [("20250101000000", date(2025, 1, 1), Some(usd("0.115")), None)]
    );

    // ml.m5.xlarge alone: whole, 0.23 then 0.20 (−13.04 %, as above).
    let history = read().history(&xlarge, date(2025, 1, 1)).await.unwrap();
    assert_eq!(
        changes(&history.series[0]),
        changes(series(&xlarge)),
        "the same as in the family"
    );
}

/// The history of a key opens at the version before the first one read even when
/// that first version is missing for another key: for that key, it is no version
/// that could not be read. The other key, which the first version gives no rate
/// for, asks nothing of the version before.
#[tokio::test]
async fn a_first_version_missing_for_one_key_still_opens_the_others_at_the_rate_before() {
    // December 2024 (in effect 2024-12-01): ml.m5.xlarge 0.25; ml.m5.large only at
    // $0. January 2025 (in effect 2025-01-01): ml.m5.xlarge only at 0.20 announced
    // for 2025-01-15; ml.m5.large only at $0 announced for 2025-01-10.
    let server = FakePriceList::start().await;
    let m5 = |instance: &str, usd: &str, effective: &str| {
        docs::effective(docs::hosting(REGION, instance, usd), effective)
    };
    server.add_version(
        REGION,
        "20241201000000",
        date(2024, 12, 1),
        offer_file(
            "20241201000000",
            &[
                m5("ml.m5.xlarge", "0.2500000000", "2024-12-01T00:00:00Z"),
                m5("ml.m5.large", "0.0000000000", "2024-12-01T00:00:00Z"),
            ],
        ),
    );
    server.add_version(
        REGION,
        "20250101000000",
        date(2025, 1, 1),
        offer_file(
            "20250101000000",
            &[
                m5("ml.m5.xlarge", "0.2000000000", "2025-01-15T00:00:00Z"),
                m5("ml.m5.large", "0.0000000000", "2025-01-10T00:00:00Z"),
            ],
        ),
    );
    let err = in_us_east_1(&server)
        .until(date(2025, 2, 1))
        .build()
        .family(REGION, "ml.m5", date(2025, 1, 1))
        .await
        .unwrap_err();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    // January is missing for ml.m5.large only (its $0 from 2025-01-10). Not the
    // version before for ml.m5.large as well: January's span is unknown for it
    // whatever December says.
    assert_eq!(
        missing
            .iter()
            .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, &m.keys[..]))
            .collect::<Vec<_>>(),
        [(
            "20250101000000",
            date(2025, 1, 1),
            None,
            &[PriceKey::hosting(REGION, "ml.m5.large")][..]
        )]
    );
    assert!(
        missing[0]
            .reason
            .starts_with("lists hosting ml.m5.large in us-east-1 (from 2025-01-10) only at $0"),
        "{}",
        missing[0].reason
    );
    // ml.m5.xlarge: December's 0.25 until January's announced 0.20 on 2025-01-15:
    // (0.20 − 0.25) ÷ 0.25 × 100 = −20.00 %. ml.m5.large has no point at all.
    assert_eq!(partial.series.len(), 1, "{:?}", partial.series);
    assert_eq!(
        partial.series[0].key,
        PriceKey::hosting(REGION, "ml.m5.xlarge")
    );
    assert_eq!(
        changes(&partial.series[0]),
        [
            ("20241201000000", date(2025, 1, 1), Some(usd("0.25")), None),
            (
                "20250101000000",
                date(2025, 1, 15),
                Some(usd("0.20")),
                Some(usd("-20.00"))
            ),
        ]
    );
    let versions: Vec<&str> = partial
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["20241201000000", "20250101000000"]);
}

#[tokio::test]
async fn a_version_offering_no_json_file_is_missing_not_skipped() {
    // January 2025 lists c5.2xlarge at 0.408; March 2025 is offered as CSV only (it
    // cut the rate to 0.3672); June 2025 lists 0.3876.
    let server = FakePriceList::start().await;
    let file = |version: &str, usd: &str| {
        offer_file(version, &[c5("2xlarge", "8", usd, "2025-01-01T00:00:00Z")])
    };
    server.add_version(
        REGION,
        "20250101000000",
        date(2025, 1, 1),
        file("20250101000000", "0.4080000000"),
    );
    server.add_version_in_formats(
        REGION,
        "20250301000000",
        date(2025, 3, 1),
        file("20250301000000", "0.3672000000"),
        &["csv"],
    );
    server.add_version(
        REGION,
        "20250601000000",
        date(2025, 6, 1),
        file("20250601000000", "0.3876000000"),
    );
    let err = in_us_east_1(&server)
        .until(date(2025, 7, 1))
        .build()
        .history(
            &PriceKey::hosting(REGION, "ml.c5.2xlarge"),
            date(2025, 1, 1),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(
        message,
        "the price history is incomplete: version 20250301000000 (in effect 2025-03-01; \
         rates unknown from then until 2025-06-01): no JSON file offered (formats: csv)"
    );
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete");
    };
    // Sampled on 2025-03-01, -04-01 and -05-01, it is missing once.
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].unknown_until, Some(date(2025, 6, 1)));
    // Its file was never asked for: only January's and June's were downloaded.
    assert_eq!(server.file_downloads(), 2);
    let read = versions_read(&partial);
    assert_eq!(read, ["20250101000000", "20250601000000"]);
    // June's change is measured from the last rate read, and dated at June:
    // (0.3876 − 0.408) ÷ 0.408 × 100 = −5.00 %.
    let points: Vec<_> = partial.series[0]
        .points
        .iter()
        .map(|p| (p.seen_on, p.usd_per_unit, p.change_percent))
        .collect();
    assert_eq!(
        points,
        [
            (date(2025, 1, 1), Some(usd("0.408")), None),
            (date(2025, 6, 1), Some(usd("0.3876")), Some(usd("-5.00"))),
        ]
    );
}

/// `--since` inside a version that lists c5.2xlarge only at a rate announced for
/// later: until that date the rate is the one of the version before, which no
/// sampled date asked for. It is read, and the history opens with its rate.
#[tokio::test]
async fn a_rate_announced_for_later_in_the_first_version_opens_at_the_rate_before_it() {
    // January 2025 lists 1.00 from 2025-01-01; March 2025 lists only 0.80 from
    // 2025-03-15.
    let server = FakePriceList::start().await;
    server.add_version(
        REGION,
        "20250101000000",
        date(2025, 1, 1),
        offer_file(
            "20250101000000",
            &[c5("2xlarge", "8", "1.0000000000", "2025-01-01T00:00:00Z")],
        ),
    );
    server.add_version(
        REGION,
        "20250301000000",
        date(2025, 3, 1),
        offer_file(
            "20250301000000",
            &[c5("2xlarge", "8", "0.8000000000", "2025-03-15T00:00:00Z")],
        ),
    );
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = |until: NaiveDate| in_us_east_1(&server).until(until).build();
    let whole = history(date(2025, 4, 1))
        .history(&key, date(2025, 3, 5))
        .await
        .unwrap();
    let points = changes(&whole.series[0]);
    // (0.80 − 1.00) ÷ 1.00 × 100 = −20.00 %, on 2025-03-15.
    assert_eq!(
        points,
        [
            ("20250101000000", date(2025, 3, 5), Some(usd("1.00")), None),
            (
                "20250301000000",
                date(2025, 3, 15),
                Some(usd("0.80")),
                Some(usd("-20.00"))
            ),
        ]
    );
    let read = versions_read(&whole);
    assert_eq!(read, ["20250101000000", "20250301000000"]);
    // Until before 2025-03-15: listed all along at 1.00, not "not listed".
    let short = history(date(2025, 3, 10))
        .history(&key, date(2025, 3, 5))
        .await
        .unwrap();
    let points: Vec<_> = short.series[0]
        .points
        .iter()
        .map(|p| (p.seen_on, p.usd_per_unit))
        .collect();
    assert_eq!(points, [(date(2025, 3, 5), Some(usd("1.00")))]);
    assert_eq!(short.series[0].last_listed_on, Some(date(2025, 3, 5)));
}

/// The version before the first one read is the one in effect the day before that
/// one took effect, not the day before its id's date: an id is a publication time,
/// and a version published on 2024-12-20 to take effect on 2025-03-01 follows the
/// one in effect from 2025-01-01, not the one of 2024-12-19.
#[tokio::test]
async fn the_rate_before_a_version_published_ahead_is_the_one_in_effect_until_its_date() {
    // December 2024 lists c5.2xlarge at 1.10, January 2025 at 1.00; the version
    // published on 2024-12-20 takes effect on 2025-03-01 and lists only 0.80 from
    // 2025-03-15.
    let server = FakePriceList::start().await;
    for (version, effective, usd, from) in [
        (
            "20241201000000",
            date(2024, 12, 1),
            "1.1000000000",
            "2024-12-01T00:00:00Z",
        ),
        (
            "20250101000000",
            date(2025, 1, 1),
            "1.0000000000",
            "2025-01-01T00:00:00Z",
        ),
        (
            "20241220000000",
            date(2025, 3, 1),
            "0.8000000000",
            "2025-03-15T00:00:00Z",
        ),
    ] {
        server.add_version(
            REGION,
            version,
            effective,
            offer_file(version, &[c5("2xlarge", "8", usd, from)]),
        );
    }
    let history = in_us_east_1(&server)
        .until(date(2025, 4, 1))
        .build()
        .history(
            &PriceKey::hosting(REGION, "ml.c5.2xlarge"),
            date(2025, 3, 1),
        )
        .await
        .unwrap();
    // Until 2025-03-15 the rate is January's 1.00; then (0.80 − 1.00) ÷ 1.00 × 100 =
    // −20.00 % (from December's 1.10 it would be −27.27 %, a rate not in effect).
    assert_eq!(
        changes(&history.series[0]),
        [
            ("20250101000000", date(2025, 3, 1), Some(usd("1.00")), None),
            (
                "20241220000000",
                date(2025, 3, 15),
                Some(usd("0.80")),
                Some(usd("-20.00"))
            ),
        ]
    );
    let read = versions_read(&history);
    assert_eq!(read, ["20250101000000", "20241220000000"]);
}

/// The rate before a version's announced rate must be known to open the history:
/// when the version in effect before it lists the key with no usable rate, cannot
/// be read, or cannot be found (a `ListPriceLists` call fails), the span from
/// `--since` to the first rate known is missing, as a sampled version in that state
/// is; never the history opening later as if the key were not listed until then.
/// A version before that does not list the key at all leaves the history whole:
/// the key was not priced before its announced rate.
#[tokio::test]
async fn an_unknown_rate_before_the_first_version_read_is_missing_not_passed_over() {
    // January 2025 (in effect 2025-01-01) lists ml.c5.2xlarge at `january`; the
    // version published on 2024-12-20 takes effect on 2025-03-01 and lists only
    // 0.80 from 2025-03-15. Read from 2025-03-01 to 2025-04-01: the rate from
    // 2025-03-01 to 2025-03-14 is January's.
    let publish = |january: Option<String>, formats: &[&str]| {
        let formats: Vec<String> = formats.iter().map(|f| (*f).to_owned()).collect();
        async move {
            let server = FakePriceList::start().await;
            let formats: Vec<&str> = formats.iter().map(String::as_str).collect();
            if let Some(file) = january {
                server.add_version_in_formats(
                    REGION,
                    "20250101000000",
                    date(2025, 1, 1),
                    file,
                    &formats,
                );
            }
            server.add_version(
                REGION,
                "20241220000000",
                date(2025, 3, 1),
                offer_file(
                    "20241220000000",
                    &[c5("2xlarge", "8", "0.8000000000", "2025-03-15T00:00:00Z")],
                ),
            );
            server
        }
    };
    let january = |document: Value| Some(offer_file("20250101000000", &[document]));
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let read = |server: &FakePriceList| in_us_east_1(server).until(date(2025, 4, 1)).build();
    // Whatever the cause, 0.80 is still the rate from 2025-03-15 (its first
    // listing: no rate before it to work a change out from), and the span from
    // 2025-03-01 until then is unknown.
    let only_march = [("20241220000000", date(2025, 3, 15), Some(usd("0.80")), None)];

    let cut = offer_file(
        "20250101000000",
        &[c5("2xlarge", "8", "1.0000000000", "2025-01-01T00:00:00Z")],
    );
    let cut = cut[..cut.len() / 2].to_owned();
    let refused = publish(
        january(c5("2xlarge", "8", "1.0000000000", "2025-01-01T00:00:00Z")),
        &["json", "csv"],
    )
    .await;
    // Every day before 2025-03-01 is refused: the version before cannot be found.
    refused.set_list_fails_before(Some(date(2025, 3, 1)));
    let cases = [
        (
            // Listed only at $0 (a bookkeeping row): no rate, not "not listed".
            publish(
                january(c5("2xlarge", "8", "0.0000000000", "2025-01-01T00:00:00Z")),
                &["json", "csv"],
            )
            .await,
            "20250101000000",
            "lists hosting ml.c5.2xlarge in us-east-1 only at $0: not a price",
        ),
        (
            publish(Some(cut), &["json", "csv"]).await,
            "20250101000000",
            "could not be read: the file is cut short",
        ),
        (
            publish(
                january(c5("2xlarge", "8", "1.0000000000", "2025-01-01T00:00:00Z")),
                &["csv"],
            )
            .await,
            "20250101000000",
            "could not be read: no JSON file offered (formats: csv)",
        ),
        (
            refused,
            "before 20241220000000",
            "could not be found: listing the price list versions failed: ListPriceLists",
        ),
    ];
    for (server, version, reason) in cases {
        let err = read(&server)
            .history(&key, date(2025, 3, 1))
            .await
            .unwrap_err();
        let message = err.to_string();
        let HistoryError::Incomplete { partial, missing } = err else {
            panic!("{version}: expected Incomplete, got {err:?}");
        };
        assert_eq!(
            missing
                .iter()
                .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until))
                .collect::<Vec<_>>(),
            [(version, date(2025, 3, 1), Some(date(2025, 3, 15)))],
            "{message}"
        );
        assert!(
            missing[0].reason.starts_with(
                "the version in effect before 20241220000000 (its rate holds until the \
                 later rate 20241220000000 announces) "
            ) && missing[0].reason.contains(reason),
            "{}",
            missing[0].reason
        );
        assert!(!message.contains("fake-signature"), "{message}");
        assert_eq!(changes(&partial.series[0]), only_march, "{message}");
        let versions: Vec<&str> = partial
            .versions
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(versions, ["20241220000000"], "{message}");
    }

    // January lists only ml.c5.xlarge: ml.c5.2xlarge was not priced before its
    // announced rate, so the history is whole and opens at 0.80 on 2025-03-15. No
    // version at all before the one of 2025-03-01: the same.
    for january in [
        january(c5("xlarge", "4", "0.5000000000", "2025-01-01T00:00:00Z")),
        None,
    ] {
        let server = publish(january, &["json", "csv"]).await;
        let history = read(&server).history(&key, date(2025, 3, 1)).await.unwrap();
        assert_eq!(changes(&history.series[0]), only_march);
    }
}

/// The rate before the first version read, when unknown, is missing only for the
/// keys that needed it: those the first version lists only at a rate announced for
/// later. The sizes it prices from `--since` are read from it, known. When every
/// size needed it, it is missing for every key (no `keys`).
#[tokio::test]
async fn an_unknown_rate_before_the_first_version_is_missing_only_for_the_sizes_that_needed_it() {
    // December 2024 (in effect 2024-12-01) is served cut short. January 2025 (in
    // effect 2025-01-01) lists ml.m5.xlarge only at 0.20 from 2025-01-15, and
    // ml.m5.large at 0.115 from `large_from`. The ml.m5 family from 2025-01-01 to
    // 2025-02-01.
    let m5 = |instance: &str, usd: &str, effective: &str| {
        docs::effective(docs::hosting(REGION, instance, usd), effective)
    };
    let xlarge = PriceKey::hosting(REGION, "ml.m5.xlarge");
    let read = |large_from: &'static str| {
        let m5 = &m5;
        async move {
            let server = FakePriceList::start().await;
            let december = offer_file(
                "20241201000000",
                &[m5("ml.m5.xlarge", "0.2500000000", "2024-12-01T00:00:00Z")],
            );
            server.add_version(
                REGION,
                "20241201000000",
                date(2024, 12, 1),
                december[..december.len() / 2].to_owned(),
            );
            server.add_version(
                REGION,
                "20250101000000",
                date(2025, 1, 1),
                offer_file(
                    "20250101000000",
                    &[
                        m5("ml.m5.xlarge", "0.2000000000", "2025-01-15T00:00:00Z"),
                        m5("ml.m5.large", "0.1150000000", large_from),
                    ],
                ),
            );
            in_us_east_1(&server)
                .until(date(2025, 2, 1))
                .build()
                .family(REGION, "ml.m5", date(2025, 1, 1))
                .await
                .unwrap_err()
        }
    };

    // ml.m5.large priced from 2025-01-01: only ml.m5.xlarge needed December's rate,
    // unknown from 2025-01-01 until its own 0.20 on 2025-01-15.
    let err = read("2025-01-01T00:00:00Z").await;
    let message = err.to_string();
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(
        missing
            .iter()
            .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, &m.keys[..]))
            .collect::<Vec<_>>(),
        [(
            "20241201000000",
            date(2025, 1, 1),
            Some(date(2025, 1, 15)),
            &[xlarge.clone()][..]
        )],
        "{message}"
    );
    assert!(
        message.contains(
            "version 20241201000000 (in effect 2025-01-01; rates of hosting ml.m5.xlarge in \
             us-east-1 unknown from then until 2025-01-15): the version in effect before \
             20250101000000 (its rate holds until the later rate 20250101000000 announces) \
             could not be read: the file is cut short"
        ),
        "{message}"
    );
    // ml.m5.large: 0.115 from 2025-01-01, read from January. ml.m5.xlarge: 0.20 from
    // 2025-01-15, its first rate (none before it to work a change out from).
    let series: Vec<_> = partial
        .series
        .iter()
        .map(|s| (s.key.to_string(), changes(s)))
        .collect();
    assert_eq!(
        series,
        [
            (
                "hosting ml.m5.large in us-east-1".to_owned(),
                vec![("20250101000000", date(2025, 1, 1), Some(usd("0.115")), None)]
            ),
            (
                "hosting ml.m5.xlarge in us-east-1".to_owned(),
                vec![("20250101000000", date(2025, 1, 15), Some(usd("0.20")), None)]
            ),
        ]
    );

    // ml.m5.large announced too, for 2025-01-10: both sizes needed December's rate,
    // so it is missing for every key, until the later of their rates' dates,
    // 2025-01-15.
    let err = read("2025-01-10T00:00:00Z").await;
    let message = err.to_string();
    let HistoryError::Incomplete { missing, .. } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(
        missing
            .iter()
            .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, m.keys.len()))
            .collect::<Vec<_>>(),
        [(
            "20241201000000",
            date(2025, 1, 1),
            Some(date(2025, 1, 15)),
            0
        )],
        "{message}"
    );
    assert!(
        message.contains("version 20241201000000 (in effect 2025-01-01; rates unknown from"),
        "{message}"
    );
}

/// `versions()` lists a version offered without a JSON file with why it cannot be
/// read; the versions that can be read say nothing.
#[tokio::test]
async fn versions_say_which_version_cannot_be_read_and_why() {
    let server = FakePriceList::start().await;
    let file = |version: &str| {
        offer_file(
            version,
            &[c5("2xlarge", "8", "0.4080000000", "2025-01-01T00:00:00Z")],
        )
    };
    server.add_version(
        REGION,
        "20250101000000",
        date(2025, 1, 1),
        file("20250101000000"),
    );
    server.add_version_in_formats(
        REGION,
        "20250301000000",
        date(2025, 3, 1),
        file("20250301000000"),
        &["csv"],
    );
    let versions = in_us_east_1(&server)
        .until(date(2025, 4, 1))
        .build()
        .versions(REGION, date(2025, 1, 1))
        .await
        .unwrap();
    let listed: Vec<(&str, Option<&str>)> = versions
        .iter()
        .map(|v| (v.version.as_str(), v.unreadable.as_deref()))
        .collect();
    assert_eq!(
        listed,
        [
            ("20250101000000", None),
            (
                "20250301000000",
                Some("no JSON file offered (formats: csv)")
            ),
        ]
    );
}

/// No SageMaker price list exists before SageMaker's launch (November 2017): a
/// `since` of 1900 is read from 2017-11-01, not asked about month by month.
#[tokio::test]
async fn a_since_before_sagemakers_launch_is_read_from_the_launch() {
    let server = publish(None).await;
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = reader(&server, None)
        .history(&key, date(1900, 1, 1))
        .await
        .unwrap();
    // 2017-11-01, the first of each month from 2017-12-01 to 2025-12-01 (1 + 8 × 12
    // = 97), and 2026-01-01: 99 dates, not the 1,513 from 1900-01-01.
    let asked = server.list_dates();
    assert_eq!(asked.len(), 99);
    assert_eq!((asked[0], asked[98]), (date(2017, 11, 1), until()));
    assert_eq!(history.since, date(2017, 11, 1));
    assert_eq!(history.versions.len(), 4);
    // An `until` before the launch asks nothing.
    let err = in_us_east_1(&server)
        .until(date(2017, 10, 31))
        .build()
        .history(&key, date(1900, 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HistoryError::Invalid { reason } if reason.contains("November 2017")),
        "{err}"
    );
    assert_eq!(server.list_dates().len(), 99);
}

/// `doc` with a second on-demand term, `code`, taking effect on `date` at `usd`: a
/// version that announces a new rate beside the one in effect.
fn with_later_term(mut doc: Value, code: &str, date: &str, usd: &str) -> Value {
    let sku = docs::sku_of(&doc);
    let mut term = doc["terms"]["OnDemand"]
        .as_object()
        .and_then(|terms| terms.values().next())
        .expect("an on-demand term")
        .clone();
    let mut dimension = term["priceDimensions"]
        .as_object()
        .and_then(|d| d.values().next())
        .expect("a price dimension")
        .clone();
    let rate_code = format!("{sku}.{code}.6YS6EN2CT7");
    dimension["rateCode"] = json!(rate_code);
    dimension["pricePerUnit"]["USD"] = json!(usd);
    term["offerTermCode"] = json!(code);
    term["effectiveDate"] = json!(date);
    term["priceDimensions"] = json!({ rate_code: dimension });
    doc["terms"]["OnDemand"][format!("{sku}.{code}")] = term;
    doc
}

#[tokio::test]
async fn an_unread_version_cuts_the_terms_an_earlier_version_dated_inside_its_span() {
    // January 2025 lists c5.2xlarge at 0.408 and announces 0.3672 from 2025-04-10; the
    // March version is cut short; June lists 0.3876, in effect since 2025-05-20.
    let server = FakePriceList::start().await;
    let january = with_later_term(
        c5("2xlarge", "8", "0.4080000000", JAN_2024),
        "NEWTERM001",
        "2025-04-10T00:00:00Z",
        "0.3672000000",
    );
    let mut march = offer_file(
        "20250301000000",
        &[c5("2xlarge", "8", "0.4080000000", JAN_2024)],
    );
    march.truncate(march.len() / 2);
    let june = c5("2xlarge", "8", "0.3876000000", "2025-05-20T00:00:00Z");
    server.add_version(
        REGION,
        "20250101000000",
        date(2025, 1, 1),
        offer_file("20250101000000", &[january]),
    );
    server.add_version(REGION, "20250301000000", date(2025, 3, 1), march);
    server.add_version(
        REGION,
        "20250601000000",
        date(2025, 6, 1),
        offer_file("20250601000000", &[june]),
    );

    let err = in_us_east_1(&server)
        .until(date(2025, 7, 1))
        .build()
        .history(
            &PriceKey::hosting(REGION, "ml.c5.2xlarge"),
            date(2025, 1, 1),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "the price history is incomplete: version 20250301000000 (in effect 2025-03-01; \
             rates unknown from then until 2025-06-01): the file is cut short"
        ),
        "{message}"
    );
    let HistoryError::Incomplete { partial, missing } = err else {
        panic!("expected Incomplete");
    };
    assert_eq!(missing[0].unknown_until, Some(date(2025, 6, 1)));
    let points = changes(&partial.series[0]);
    assert_eq!(
        points,
        [
            ("20250101000000", date(2025, 1, 1), Some(usd("0.408")), None),
            // No 2025-04-10 point at 0.3672: that date is in March's span, whose
            // version may have withdrawn the announced rate. June's rate is known
            // from June on: (0.3876 − 0.408) ÷ 0.408 × 100 = −5.00 %.
            (
                "20250601000000",
                date(2025, 6, 1),
                Some(usd("0.3876")),
                Some(usd("-5.00"))
            ),
        ]
    );
    assert_eq!(partial.series[0].last_listed_on, Some(date(2025, 6, 1)));
}

#[tokio::test]
async fn versions_are_downloaded_once_then_read_from_the_cache() {
    let server = publish(None).await;
    let cache = tempfile::tempdir().unwrap();
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let first = reader(&server, Some(cache.path()))
        .history(&key, since())
        .await
        .unwrap();
    assert_eq!(server.file_downloads(), 4);
    let again = reader(&server, Some(cache.path()))
        .history(&key, since())
        .await
        .unwrap();
    assert_eq!(
        server.file_downloads(),
        4,
        "the second read downloads nothing"
    );
    assert_eq!(again, first);
    // Another key of the same versions needs no download either.
    reader(&server, Some(cache.path()))
        .history(&PriceKey::serverless(REGION, 3), since())
        .await
        .unwrap();
    assert_eq!(server.file_downloads(), 4);
}

#[tokio::test]
async fn the_time_limit_ends_the_read_with_what_was_read_so_far() {
    let server = publish(None).await;
    server.set_file_delay(Some(Duration::from_secs(30)));
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    // Each file takes 30 s: without the limit the read would end whole (no
    // error). The reasons say the 2 s limit ended it; no wall-clock bound here.
    let err = in_us_east_1(&server)
        .until(until())
        .time_limit(Duration::from_secs(2))
        .build()
        .history(&key, since())
        .await
        .unwrap_err();
    let HistoryError::Incomplete { partial, missing } = &err else {
        panic!("expected Incomplete, got {err}");
    };
    assert!(partial.versions.is_empty());
    assert_eq!(missing.len(), 4);
    assert_eq!(
        missing[0].reason,
        "not read whole within the time limit of 2 s"
    );
    assert_eq!(
        missing[3].reason,
        "not read: the time limit of 2 s was reached"
    );
}

/// A file larger than the limit (a download that does not end) is stopped there:
/// its version is unread, saying why, and nothing of it is left in the cache.
#[tokio::test]
async fn a_file_larger_than_the_limit_is_stopped_and_left_unread() {
    let server = publish(None).await;
    let cache = tempfile::tempdir().unwrap();
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let err = PriceListHistory::builder(&server.sdk_config("us-east-1"))
        .cache_dir(Some(cache.path().to_path_buf()))
        .until(until())
        .max_file_bytes(100)
        .build()
        .history(&key, since())
        .await
        .unwrap_err();
    let HistoryError::Incomplete { missing, .. } = &err else {
        panic!("expected Incomplete, got {err}");
    };
    assert_eq!(missing.len(), 4);
    assert!(
        missing[0]
            .reason
            .contains("the file is larger than 100 bytes, more than any price list"),
        "{}",
        missing[0].reason
    );
    let files: Vec<_> = walk(cache.path());
    assert!(files.is_empty(), "{files:?}");
}

/// The files under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A time limit too long for the clock is no limit, not a panic.
#[tokio::test]
async fn a_time_limit_too_long_for_the_clock_is_no_limit() {
    let server = publish(None).await;
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = in_us_east_1(&server)
        .until(until())
        .time_limit(Duration::MAX)
        .build()
        .history(&key, since())
        .await
        .unwrap();
    assert_eq!(history.versions.len(), 4);
}

fn trend_row(history: &PriceHistory, instance: &str) -> sagemeter::pricing::history::SizeTrend {
    let trend = history.trend();
    trend
        .sizes
        .into_iter()
        .find(|s| s.key == PriceKey::hosting(REGION, instance))
        .unwrap_or_else(|| panic!("no trend for {instance}"))
}

/// g5 versions of 2024-01-01 (xlarge 1.408, 2xlarge 1.515), 2025-01-01 (2xlarge cut
/// to 1.3635) and 2025-07-01 (2xlarge no longer listed).
fn publish_g5_2xlarge_dropped(server: &FakePriceList) {
    use crate::support::fake_pricelist::published::g5;
    let xlarge = g5("xlarge", "4", "1", "1.4080000000", JAN_2024);
    let versions = [
        (
            "20240101000000",
            date(2024, 1, 1),
            vec![
                xlarge.clone(),
                g5("2xlarge", "8", "1", "1.5150000000", JAN_2024),
            ],
        ),
        (
            "20250101000000",
            date(2025, 1, 1),
            vec![
                xlarge.clone(),
                g5("2xlarge", "8", "1", "1.3635000000", "2025-01-01T00:00:00Z"),
            ],
        ),
        ("20250701000000", date(2025, 7, 1), vec![xlarge]),
    ];
    for (version, effective, documents) in versions {
        server.add_version(REGION, version, effective, offer_file(version, &documents));
    }
}

/// A size's last rate was in effect until the version that dropped it took over:
/// its span ends there, not at the first date its last listing was seen.
#[tokio::test]
async fn a_size_no_longer_listed_has_its_span_end_where_it_was_dropped() {
    let server = FakePriceList::start().await;
    publish_g5_2xlarge_dropped(&server);
    let history = reader(&server, None)
        .family(REGION, "ml.g5", since())
        .await
        .unwrap();
    let row = trend_row(&history, "ml.g5.2xlarge");
    // 1.515 from 2024-01-01, 1.3635 from 2025-01-01 until 2025-07-01, when the
    // version without it took over: 1.3635 ÷ 1.515 = 0.9 over 1.5 years,
    // 0.9^(1/1.5) = 0.9^(2/3) = 0.932170…, so −6.78 % a year (not 0.9 over the
    // 1 year to 2025-01-01, −10.00 %).
    assert_eq!((row.first_usd, row.first_on), (usd("1.515"), since()));
    assert_eq!(
        (row.latest_usd, row.latest_on, row.no_longer_listed_on),
        (usd("1.3635"), date(2025, 7, 1), Some(date(2025, 7, 1)))
    );
    assert_eq!(row.yearly_change_percent, Some(usd("-6.78")));
    // The projection's fraction agrees: −0.0678…
    let series = history
        .series
        .iter()
        .find(|s| s.key == PriceKey::hosting(REGION, "ml.g5.2xlarge"))
        .unwrap();
    let fraction = series.yearly_change(until()).unwrap();
    assert_eq!(fraction.round_dp(4), usd("-0.0678"));
    // Still listed: to the last date asked for, unchanged, 0 %.
    let row = trend_row(&history, "ml.g5.xlarge");
    assert_eq!((row.latest_on, row.no_longer_listed_on), (until(), None));
    assert_eq!(row.yearly_change_percent, Some(Decimal::ZERO));
}

#[tokio::test]
async fn a_family_trend_gives_each_size_its_yearly_change_per_vcpu_and_per_gpu() {
    let server = publish(None).await;
    let reader = reader(&server, None);

    let c5 = reader.family(REGION, "ml.c5", since()).await.unwrap();
    let names: Vec<String> = c5.series.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        names,
        [
            "hosting ml.c5.2xlarge in us-east-1",
            "hosting ml.c5.4xlarge in us-east-1",
            "hosting ml.c5.xlarge in us-east-1"
        ]
    );
    // ml.c5.2xlarge: 0.408 on 2024-01-01, 0.3672 still on 2026-01-01: 0.9 over two
    // years, 0.9^(1/2) = 0.948683…, so −5.13 % a year. 8 vCPUs: 0.051 then 0.0459.
    let row = trend_row(&c5, "ml.c5.2xlarge");
    assert_eq!((row.first_usd, row.first_on), (usd("0.408"), since()));
    assert_eq!((row.latest_usd, row.latest_on), (usd("0.3672"), until()));
    assert_eq!(row.yearly_change_percent, Some(usd("-5.13")));
    assert_eq!(row.vcpu, Some(8));
    assert_eq!(row.gpu, None);
    assert_eq!(row.first_usd_per_vcpu, Some(usd("0.051")));
    assert_eq!(row.latest_usd_per_vcpu, Some(usd("0.0459")));
    assert_eq!(row.latest_usd_per_gpu, None);
    // Added in March 2025 and unchanged since: 0 %.
    let row = trend_row(&c5, "ml.c5.4xlarge");
    assert_eq!(row.first_on, date(2025, 3, 1));
    assert_eq!(row.yearly_change_percent, Some(Decimal::ZERO));
    // ml.c5.xlarge is no longer listed from October 2025: its last listing was the
    // version seen on 2025-03-01, at the same rate, in effect until the October
    // version took over, so its span ends on 2025-10-01.
    let xlarge = c5
        .series
        .iter()
        .find(|s| s.key == PriceKey::hosting(REGION, "ml.c5.xlarge"))
        .unwrap();
    let last = xlarge.points.last().unwrap();
    assert_eq!(
        (last.version.as_str(), last.usd_per_unit),
        ("20251001000000", None)
    );
    assert_eq!(last.note.as_deref(), Some("no longer listed"));
    let row = trend_row(&c5, "ml.c5.xlarge");
    assert_eq!(row.latest_on, date(2025, 10, 1));
    assert_eq!(row.no_longer_listed_on, Some(date(2025, 10, 1)));
    assert_eq!(trend_row(&c5, "ml.c5.2xlarge").no_longer_listed_on, None);

    // ml.g5.xlarge: 1.408 → 1.1264 is 0.8 over two years: 0.8^(1/2) = 0.894427…,
    // −10.56 % a year; 1 GPU, so per GPU the same as per instance.
    let g5 = reader.family(REGION, "ml.g5", since()).await.unwrap();
    let row = trend_row(&g5, "ml.g5.xlarge");
    assert_eq!(row.yearly_change_percent, Some(usd("-10.56")));
    assert_eq!(row.gpu, Some(1));
    assert_eq!(row.first_usd_per_gpu, Some(usd("1.408")));
    assert_eq!(row.latest_usd_per_gpu, Some(usd("1.1264")));
    assert_eq!(row.latest_usd_per_vcpu, Some(usd("0.2816")));
    // ml.g5.12xlarge: 7.09 ÷ 4 GPUs = 1.7725; ÷ 48 vCPUs = 0.147708333… (10 places).
    let row = trend_row(&g5, "ml.g5.12xlarge");
    assert_eq!(row.latest_usd_per_gpu, Some(usd("1.7725")));
    assert_eq!(row.latest_usd_per_vcpu, Some(usd("0.1477083333")));
    assert_eq!(row.yearly_change_percent, Some(Decimal::ZERO));

    let bad = reader.family(REGION, "g5; rm", since()).await.unwrap_err();
    assert_eq!(
        bad.to_string(),
        "`g5; rm` is not an instance family: use ml.<family>, e.g. ml.g5"
    );
}

#[tokio::test]
async fn a_refused_listing_names_the_missing_permission() {
    let server = publish(None).await;
    server.set_fault(Some(Fault::AccessDenied));
    let err = reader(&server, None)
        .history(&PriceKey::hosting(REGION, "ml.c5.2xlarge"), since())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "listing the price list versions failed: ListPriceLists for 2024-01-01 was refused \
         (AccessDeniedException, HTTP 400); the credentials need pricing:ListPriceLists"
    );
}

#[tokio::test]
async fn a_region_without_versions_has_an_empty_history() {
    let server = publish(None).await;
    let history = reader(&server, None)
        .history(
            &PriceKey::hosting("ap-south-2", "ml.c5.2xlarge"),
            date(2025, 12, 1),
        )
        .await
        .unwrap();
    assert!(history.versions.is_empty());
    assert!(history.series.is_empty());
    assert_eq!(server.file_downloads(), 0);
}

#[tokio::test]
async fn a_comparison_projects_each_rate_at_its_measured_trend() {
    use sagemeter::compare::{
        Comparison, InstancePlan, MeasuredTrend, Plan, Projection, RateTable, ServerlessPlan,
        SubscriptionPlan, TrendRate, UsageProfile,
    };
    let server = publish(None).await;
    let profile = UsageProfile::builder()
        .calls_per_period(100_000)
        .mean_latency(Duration::from_millis(800))
        .build()
        .unwrap();
    let plans = [
        Plan::from(InstancePlan::new("ml.c5.2xlarge", 1).unwrap()),
        Plan::from(ServerlessPlan::new(3072).unwrap()),
        Plan::from(
            SubscriptionPlan::builder()
                .fee_usd(usd("250"))
                .build()
                .unwrap(),
        ),
    ];
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.c5.2xlarge"), usd("0.3672"))
        .unwrap()
        .with_rate(PriceKey::serverless(REGION, 3), usd("0.000054"))
        .unwrap();
    let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
    let measured = MeasuredTrend::from_history(&comparison, &reader(&server, None), since())
        .await
        .unwrap();
    // Both rates fell 10 % over the two years 2024-01-01 … 2026-01-01:
    // 0.9^(1/2) − 1 = −0.05131670…, −5.13 % a year (to 0.01 %).
    let expected = TrendRate::per_year(usd("-0.0513")).unwrap();
    assert_eq!(
        measured
            .trend
            .rate_for(&PriceKey::hosting(REGION, "ml.c5.2xlarge")),
        expected
    );
    assert_eq!(
        measured.trend.rate_for(&PriceKey::serverless(REGION, 3)),
        expected
    );
    // Data processed is not measured: flat.
    assert!(
        measured
            .trend
            .rate_for(&PriceKey::DataIn {
                region: REGION.into()
            })
            .is_flat()
    );
    assert_eq!(
        measured.notes[0],
        "hosting ml.c5.2xlarge in us-east-1: -5.13%/year measured from 4 Price List \
         version(s) since 2024-01-01"
    );
    // Month 1 is today's comparison: 730 h × 0.3672 = 268.056 USD.
    let projection = Projection::compute(&comparison, &measured.trend, 12).unwrap();
    let instance = projection.plan("ml.c5.2xlarge x1").unwrap();
    assert_eq!(instance.monthly_usd[0], usd("268.056"));
    assert!(instance.monthly_usd[11] < instance.monthly_usd[0]);
    // The subscription's fee is held: 250 every month.
    let subscription = &projection
        .plans
        .iter()
        .find(|p| p.name.starts_with("subscription"))
        .unwrap();
    assert!(subscription.monthly_usd.iter().all(|m| *m == usd("250")));

    // A history that cannot be read whole is not measured from.
    let cut = publish(Some("20250301000000")).await;
    let err = MeasuredTrend::from_history(&comparison, &reader(&cut, None), since())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "the price trend could not be measured: the price history is incomplete: version \
             20250301000000"
        ),
        "{err}"
    );
}

/// A serverless plan with provisioned concurrency pays two rates besides the
/// serverless one: the standing charge per second provisioned and the inference
/// duration of the calls it serves. Each is measured from the history like any
/// other, with a line saying so, never held flat unsaid.
#[tokio::test]
async fn a_provisioned_concurrency_plans_rates_are_each_measured() {
    use crate::support::fake_pricelist::docs::PcName;
    use sagemeter::compare::{
        Comparison, MeasuredTrend, Plan, RateTable, ServerlessPlan, TrendRate, UsageProfile,
    };
    let standing = PriceKey::ProvisionedConcurrency {
        region: REGION.into(),
        memory_gb: 2,
    };
    let inference = PriceKey::ProvisionedConcurrencyUsage {
        region: REGION.into(),
        memory_gb: 2,
    };
    let server = FakePriceList::start().await;
    // 2024-01-01: standing 0.00001 USD/s, inference 0.0000233 USD/s, on demand
    // 0.00004 USD/s; 2025-03-01: the standing charge 0.000009 (−10 %), the rest as
    // they were.
    for (version, effective, standing_usd, on) in [
        ("20240101000000", date(2024, 1, 1), "0.0000100000", JAN_2024),
        ("20250301000000", date(2025, 3, 1), "0.0000090000", MAR_2025),
    ] {
        let documents = [
            docs::effective(
                docs::provisioned_concurrency_standing(REGION, 2, PcName::Usage, standing_usd),
                on,
            ),
            docs::effective(
                docs::provisioned_concurrency_inference(REGION, 2, PcName::Mem, "0.0000233000"),
                JAN_2024,
            ),
            docs::effective(docs::serverless(REGION, 2, "0.0000400000"), JAN_2024),
        ];
        server.add_version(REGION, version, effective, offer_file(version, &documents));
    }
    let profile = UsageProfile::builder()
        .calls_per_period(100_000)
        .mean_latency(Duration::from_millis(800))
        .build()
        .unwrap();
    let plans = [Plan::from(
        ServerlessPlan::new(2048)
            .unwrap()
            .with_provisioned_concurrency(1)
            .unwrap(),
    )];
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::serverless(REGION, 2), usd("0.00004"))
        .unwrap()
        .with_rate(standing.clone(), usd("0.000009"))
        .unwrap()
        .with_rate(inference.clone(), usd("0.0000233"))
        .unwrap();
    let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
    let measured = MeasuredTrend::from_history(&comparison, &reader(&server, None), since())
        .await
        .unwrap();
    // The standing charge fell 10 % over the two years 2024-01-01 … 2026-01-01:
    // 0.9^(1/2) − 1 = −0.05131670…, −5.13 % a year (to 0.01 %).
    assert_eq!(
        measured.trend.rate_for(&standing),
        TrendRate::per_year(usd("-0.0513")).unwrap()
    );
    // The inference rate did not change: 0 % a year, measured, not assumed.
    assert!(measured.trend.rate_for(&inference).is_flat());
    for (key, says) in [
        (
            &standing,
            "-5.13%/year measured from 2 Price List version(s)",
        ),
        (&inference, "measured from 2 Price List version(s)"),
    ] {
        let line = measured
            .notes
            .iter()
            .find(|note| note.starts_with(&format!("{key}: ")));
        assert!(
            line.is_some_and(|line| line.contains(says)),
            "{key}: {:?}",
            measured.notes
        );
    }
}

/// A fake publishing ml.c5.2xlarge at each `(version, in effect from, USD/h)`.
async fn publish_c5_2xlarge(
    rates: &[(&str, NaiveDate, &str)],
) -> crate::support::fake_pricelist::FakePriceList {
    use crate::support::fake_pricelist::offer_file;
    let server = crate::support::fake_pricelist::FakePriceList::start().await;
    for (version, effective, usd) in rates {
        let on = format!("{effective}T00:00:00Z");
        server.add_version(
            REGION,
            version,
            *effective,
            offer_file(version, &[c5("2xlarge", "8", usd, &on)]),
        );
    }
    server
}

/// The measured trend of ml.c5.2xlarge (at `today_usd` an hour today) from `since`
/// to `until`.
async fn measure_c5_2xlarge(
    server: &crate::support::fake_pricelist::FakePriceList,
    today_usd: &str,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<sagemeter::compare::MeasuredTrend, sagemeter::compare::CompareError> {
    use sagemeter::compare::{Comparison, InstancePlan, MeasuredTrend, Plan, RateTable};
    let profile = sagemeter::compare::UsageProfile::builder()
        .calls_per_period(100_000)
        .build()
        .unwrap();
    let plans = [Plan::from(InstancePlan::new("ml.c5.2xlarge", 1).unwrap())];
    let rates = RateTable::new(REGION)
        .with_rate(PriceKey::hosting(REGION, "ml.c5.2xlarge"), usd(today_usd))
        .unwrap();
    let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
    let reader = PriceListHistory::builder(&server.sdk_config("eu-west-1"))
        .cache_dir(None)
        .until(until)
        .build();
    MeasuredTrend::from_history(&comparison, &reader, since).await
}

/// A rate listed for a month is not compounded to a year: held flat, with a note,
/// whether it rose (which would be out of range) or fell (which would project a
/// collapse).
#[tokio::test]
async fn a_rate_listed_for_less_than_a_year_is_held_flat_with_a_note() {
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    for latest in ["1.2500000000", "0.8000000000"] {
        // 1.00 from 2026-11-01, `latest` from 2026-12-01, measured to 2026-12-02:
        // 1 month and 1 of December's 31 days = (1 + 1/31) / 12 = 0.0860 years.
        // Compounded: 1.25^(1/0.0860) − 1 ≈ +1,240 % a year (above the +1,000 %
        // modelled), 0.8^(1/0.0860) − 1 ≈ −92.5 % a year. 31 days < 365: neither.
        let server = publish_c5_2xlarge(&[
            ("20261101000000", date(2026, 11, 1), "1.0000000000"),
            ("20261201000000", date(2026, 12, 1), latest),
        ])
        .await;
        let measured = measure_c5_2xlarge(&server, latest, date(2023, 12, 2), date(2026, 12, 2))
            .await
            .unwrap_or_else(|e| panic!("{latest}: {e}"));
        assert!(measured.trend.rate_for(&key).is_flat(), "{latest}");
        assert_eq!(
            measured.notes,
            [
                "hosting ml.c5.2xlarge in us-east-1: listed from 2026-11-01 to 2026-12-02 only \
              (31 days), too short to measure a yearly change (at least 365 days); held flat"
            ],
            "{latest}"
        );
    }
}

/// Over two years the yearly change is measured and compounded.
#[tokio::test]
async fn a_rate_listed_for_two_years_follows_its_compound_yearly_change() {
    // 1.00 from 2024-12-02, 0.81 from 2025-06-01, measured to 2026-12-02: 2 years
    // exactly, 0.81^(1/2) = 0.9, so −10 % a year.
    let server = publish_c5_2xlarge(&[
        ("20241202000000", date(2024, 12, 2), "1.0000000000"),
        ("20250601000000", date(2025, 6, 1), "0.8100000000"),
    ])
    .await;
    let measured = measure_c5_2xlarge(&server, "0.81", date(2024, 12, 2), date(2026, 12, 2))
        .await
        .unwrap();
    assert_eq!(
        measured
            .trend
            .rate_for(&PriceKey::hosting(REGION, "ml.c5.2xlarge")),
        sagemeter::compare::TrendRate::per_year(usd("-0.1")).unwrap()
    );
    assert_eq!(
        measured.notes,
        [
            "hosting ml.c5.2xlarge in us-east-1: -10%/year measured from 2 Price List \
          version(s) since 2024-12-02"
        ]
    );
}

/// A change measured over long enough but beyond what a trend models is held flat
/// with a note, not an error naming a value the user never gave.
#[tokio::test]
async fn a_measured_change_out_of_range_is_held_flat_with_a_note() {
    // 1.00 from 2024-12-02, 144.00 from 2025-06-01, to 2026-12-02: 2 years,
    // 144^(1/2) = 12, so +1,100 % a year: above the +1,000 % a year modelled.
    let server = publish_c5_2xlarge(&[
        ("20241202000000", date(2024, 12, 2), "1.0000000000"),
        ("20250601000000", date(2025, 6, 1), "144.0000000000"),
    ])
    .await;
    let measured = measure_c5_2xlarge(&server, "144", date(2024, 12, 2), date(2026, 12, 2))
        .await
        .unwrap();
    assert!(
        measured
            .trend
            .rate_for(&PriceKey::hosting(REGION, "ml.c5.2xlarge"))
            .is_flat()
    );
    assert_eq!(
        measured.notes,
        [
            "hosting ml.c5.2xlarge in us-east-1: the measured change of +1100%/year since \
          2024-12-02 is outside what is modelled (above -100%, at most +1000%/year); held \
          flat"
        ]
    );
}

/// A cache directory that cannot be created (its parent is a regular file, which
/// fails even as root) does not lose the history: each version is read from a
/// temporary file, and nothing is cached.
#[tokio::test]
async fn a_cache_that_cannot_be_written_still_reads_every_version() {
    let server = publish(None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"a file").unwrap();
    let cache = file.join("x");
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = reader(&server, Some(&cache))
        .history(&key, since())
        .await
        .unwrap();
    assert_eq!(history.versions.len(), 4);
    let rates: Vec<_> = history.series[0]
        .points
        .iter()
        .map(|p| p.usd_per_unit)
        .collect();
    assert_eq!(rates, [Some(usd("0.408")), Some(usd("0.3672"))]);
    assert_eq!(server.file_downloads(), 4);
    // Nothing else appeared beside the file.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from("not-a-directory")]);
}

/// Sends every request to `to` instead of where it was going, through the default
/// HTTP connector (the fake's file URLs point at itself).
#[derive(Debug)]
struct Redirect {
    to: String,
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for Redirect {
    fn call(
        &self,
        mut request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        request.set_uri(self.to.as_str()).expect("a URI");
        self.inner.call(request)
    }
}

/// A file server that announces 4 MB, sends the first 100 KB, then nothing more
/// (holding the connection open). Returns its URL and how many requests it had.
async fn stalling_file_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/offer.json", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let half = vec![b' '; 100 * 1024];
                let response = "HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n";
                if socket.write_all(response.as_bytes()).await.is_ok()
                    && socket.write_all(&half).await.is_ok()
                {
                    // Stall: keep the connection open, send nothing more.
                    let _ = socket.read(&mut buf).await;
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (url, requests)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// A download cut off by the time limit (the read dropped mid-file) leaves no
/// `.part` file in the cache.
#[tokio::test]
async fn a_download_stopped_by_the_time_limit_leaves_no_part_file() {
    let server = publish(None).await;
    let (url, requests) = stalling_file_server().await;
    let settings = aws_smithy_runtime_api::client::http::HttpConnectorSettings::builder().build();
    let inner = aws_smithy_http_client::default_connector(
        &settings,
        aws_smithy_async::rt::sleep::default_async_sleep(),
    )
    .expect("a connector");
    let connector =
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(Redirect { to: url, inner });
    let cache = tempfile::tempdir().unwrap();
    let err = PriceListHistory::builder(&server.sdk_config("us-east-1"))
        .cache_dir(Some(cache.path().to_path_buf()))
        .until(until())
        .time_limit(Duration::from_secs(2))
        .http_connector(connector)
        .build()
        .history(&PriceKey::hosting(REGION, "ml.c5.2xlarge"), since())
        .await
        .unwrap_err();
    let HistoryError::Incomplete { missing, .. } = &err else {
        panic!("expected Incomplete, got {err}");
    };
    assert_eq!(
        missing[0].reason,
        "not read whole within the time limit of 2 s"
    );
    assert!(requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let left = files_under(cache.path());
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

/// The chart as a string, as a service would embed it: the same drawing as the
/// file `price --history --chart` writes.
#[cfg(feature = "charts")]
#[tokio::test]
async fn the_history_chart_is_an_svg_document_naming_the_key() {
    let server = publish(None).await;
    let key = PriceKey::hosting(REGION, "ml.c5.2xlarge");
    let history = reader(&server, None).history(&key, since()).await.unwrap();
    let svg = sagemeter::pricing::history::chart::render_svg(&history).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    assert!(svg.contains("hosting ml.c5.2xlarge in us-east-1"));
    // The y axis in dollars: the rates run from 0.408 down to 0.3672.
    assert!(svg.contains("$0.4"), "no dollar label in the y axis");
}
