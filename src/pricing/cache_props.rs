//! A model-based property test of where a receipt's price comes from over time.
//!
//! The code under test is the default chain: [`CachedPrices`] in front of
//! [`LivePrices`] (its `GetProducts` answered by an in-process fake HTTP connector,
//! in the Price List's real awsJson 1.1 shape) with a price snapshot
//! ([`Snapshot::from_tsv`]) as fallback, on a manual clock (TTL 1 h, backoff 60 s),
//! under a Tokio runtime with paused time (a look-up that hangs times out after
//! the live source's 1 s without a real wait).
//!
//! Random runs of events drive it: calls, one at a time or two at once, for two keys (a hosting instance-hour, and
//! serverless 2 GB, whose on-demand term has AWS's free first tier `0 – 150000` s at
//! $0 and the paid tier from 150000), the clock moving on (across the TTL and the
//! backoff, to the second), the Price List's behaviour changing (answers; throttles;
//! fails with HTTP 500; hangs; answers HTTP 200 with a body that is no
//! `GetProducts` response, with documents that are not product documents, or with
//! only $0 listed), AWS publishing a price change (a new on-demand term with its own
//! `effectiveDate`, now or announced for later; the document keeps every term, as
//! a version does), and restarts (a new cache: it keeps nothing on disk, so a
//! restart starts empty).
//!
//! The model is written from `docs/cost-model.md` (*Price provenance and
//! fallbacks*, *When a price changes*) and [`CachedPrices`]' table, and the Price
//! List's rules (of a product's dated terms the one with the latest
//! `effectiveDate` not after the fetch counts; from the date of a later term its
//! answer listed, a cached rate gives way to that term's rate, noted as announced,
//! the change told and noted once as a refresh's would be, the entry as old as the
//! answer (after a failed refresh, the kept answer is that rate, noted the same),
//! and beyond the first four terms ahead it is stale from the next one's date; the
//! tier starting at 0, or after a $0 first
//! tier the first paid one, with a note; only $0 is no price). For every call
//! it checks, never against the code's own output: the rate (exact), the source on
//! the receipt (`live`, `cache`, `snapshot`), the effective date, when it was
//! fetched, and the note word for word; that no call is priced at $0 and that no
//! look-up fails; and, at the end, how many requests reached the Price List.

use super::{CachedPrices, LivePrices, PriceKey, PriceOrigin, PriceSource, Rate, Snapshot};
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cache's TTL and failure backoff in this test.
const TTL_SECS: i64 = 3600;
const BACKOFF_SECS: i64 = 60;

/// The note on a stale rate served while its refresh runs (documented wording).
const REFRESHING: &str = "cached price older than its TTL; a refresh is under way";

/// The note the live source puts on the serverless rate: the free first tier of
/// `0 – 150000` seconds at $0 is passed over for the paid tier.
const FREE_TIER: &str = "free tier of 150000 second(s) per month not applied";

/// The test's snapshot: its rates differ from every Price List rate below, so a
/// receipt's rate alone tells which source priced it.
const SNAPSHOT_TSV: &str = "region\tkind\tkey\tunit\tusd\tsource\tas_of\n\
    us-east-1\thosting\tml.m5.xlarge\tHrs\t0.21\ttest table\t2026-01-15\n\
    us-east-1\tserverless\tMem-2GB\tsecond\t0.00003\ttest table\t2026-01-15\n";

/// The note of a snapshot rate, after the primary's failure.
const SNAPSHOT_NOTE: &str = "price snapshot given to Snapshot::from_tsv (as of 2026-01-15, \
    from test table)";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// The two keys priced, with what the model needs of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Which {
    Hosting,
    Serverless,
}

const WHICH: [Which; 2] = [Which::Hosting, Which::Serverless];

impl Which {
    fn key(self) -> PriceKey {
        match self {
            Which::Hosting => PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
            Which::Serverless => PriceKey::serverless("us-east-1", 2),
        }
    }

    fn sku(self) -> &'static str {
        match self {
            Which::Hosting => "HOSTM5XL00000001",
            Which::Serverless => "SRVLESS2GB000001",
        }
    }

    /// The Price List's rates for this key, as AWS writes them (10 places).
    fn prices(self) -> [&'static str; 4] {
        match self {
            Which::Hosting => [
                "0.2300000000",
                "0.2000000000",
                "0.2500000000",
                "0.2400000000",
            ],
            Which::Serverless => [
                "0.0000400000",
                "0.0000500000",
                "0.0000600000",
                "0.0000450000",
            ],
        }
    }

    fn snapshot_usd(self) -> Decimal {
        match self {
            Which::Hosting => Decimal::new(21, 2),
            Which::Serverless => Decimal::new(3, 5),
        }
    }

    /// The live source's own note on a rate of this key.
    fn live_note(self) -> Option<&'static str> {
        match self {
            Which::Hosting => None,
            Which::Serverless => Some(FREE_TIER),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Which::Hosting => "hour",
            Which::Serverless => "second",
        }
    }

    /// The change note's rate and percentage from price `old` to price `new` (indices
    /// into [`prices`](Self::prices)), worked out by hand: (new − old) ÷ old × 100, to
    /// 2 places, trailing zeros dropped.
    fn change(self, old: usize, new: usize) -> (&'static str, &'static str, &'static str) {
        let shown = match self {
            Which::Hosting => ["0.23", "0.2", "0.25", "0.24"],
            Which::Serverless => ["0.00004", "0.00005", "0.00006", "0.000045"],
        };
        let percent = match (self, old, new) {
            // 0.23 → 0.20: −0.03 ÷ 0.23 = −13.0434…%; → 0.25: 0.02 ÷ 0.23 = 8.6956…%;
            // → 0.24: 0.01 ÷ 0.23 = 4.3478…%.
            (Which::Hosting, 0, 1) => "-13.04",
            (Which::Hosting, 0, 2) => "+8.7",
            (Which::Hosting, 0, 3) => "+4.35",
            // 0.20 → 0.23 +15%, → 0.25 +25%, → 0.24 +20%.
            (Which::Hosting, 1, 0) => "+15",
            (Which::Hosting, 1, 2) => "+25",
            (Which::Hosting, 1, 3) => "+20",
            // 0.25 → 0.23 −8%, → 0.20 −20%, → 0.24 −4%.
            (Which::Hosting, 2, 0) => "-8",
            (Which::Hosting, 2, 1) => "-20",
            (Which::Hosting, 2, 3) => "-4",
            // 0.24 → 0.23: −0.01 ÷ 0.24 = −4.1666…%; → 0.20: −0.04 ÷ 0.24 = −16.666…%;
            // → 0.25: +4.1666…%.
            (Which::Hosting, 3, 0) => "-4.17",
            (Which::Hosting, 3, 1) => "-16.67",
            (Which::Hosting, 3, 2) => "+4.17",
            // 4 → 5 (× 10⁻⁵): +25%; → 6: +50%; → 4.5: +12.5%.
            (Which::Serverless, 0, 1) => "+25",
            (Which::Serverless, 0, 2) => "+50",
            (Which::Serverless, 0, 3) => "+12.5",
            // 5 → 4: −20%; → 6: +20%; → 4.5: −10%.
            (Which::Serverless, 1, 0) => "-20",
            (Which::Serverless, 1, 2) => "+20",
            (Which::Serverless, 1, 3) => "-10",
            // 6 → 4: −33.333…%; → 5: −16.666…%; → 4.5: −25%.
            (Which::Serverless, 2, 0) => "-33.33",
            (Which::Serverless, 2, 1) => "-16.67",
            (Which::Serverless, 2, 3) => "-25",
            // 4.5 → 4: −11.111…%; → 5: +11.111…%; → 6: +33.333…%.
            (Which::Serverless, 3, 0) => "-11.11",
            (Which::Serverless, 3, 1) => "+11.11",
            (Which::Serverless, 3, 2) => "+33.33",
            _ => unreachable!("no change from a price to itself"),
        };
        (shown[new], shown[old], percent)
    }

    /// One product document with every term published so far.
    fn document(self, terms: &BTreeMap<DateTime<Utc>, usize>, zero: bool) -> String {
        let sku = self.sku();
        let mut on_demand = serde_json::Map::new();
        for (n, (date, &price)) in terms.iter().enumerate() {
            let usd = if zero {
                "0.0000000000"
            } else {
                self.prices()[price]
            };
            let code = format!("{sku}.TERM{n:06}");
            let dims = match self {
                Which::Hosting => json!({
                    format!("{code}.6YS6EN2CT7"): {
                        "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                        "description": "ml.m5.xlarge hosting", "rateCode": format!("{code}.6YS6EN2CT7"),
                        "pricePerUnit": {"USD": usd}
                    }
                }),
                Which::Serverless => json!({
                    format!("{code}.FREE000001"): {
                        "unit": "Second", "beginRange": "0", "endRange": "150000",
                        "description": "free tier", "rateCode": format!("{code}.FREE000001"),
                        "pricePerUnit": {"USD": "0.0000000000"}
                    },
                    format!("{code}.PAID000001"): {
                        "unit": "Second", "beginRange": "150000", "endRange": "Inf",
                        "description": "serverless 2 GB", "rateCode": format!("{code}.PAID000001"),
                        "pricePerUnit": {"USD": usd}
                    }
                }),
            };
            on_demand.insert(
                code.clone(),
                json!({
                    "sku": sku, "offerTermCode": format!("TERM{n:06}"),
                    "effectiveDate": rfc3339(*date), "priceDimensions": dims,
                    "termAttributes": {}
                }),
            );
        }
        let product = match self {
            Which::Hosting => json!({
                "sku": sku, "productFamily": "ML Instance",
                "attributes": {
                    "regionCode": "us-east-1", "instanceName": "ml.m5.xlarge",
                    "component": "Hosting", "usagetype": "USE1-Host:ml.m5.xlarge",
                    "operation": "RunInstance", "servicecode": "AmazonSageMaker"
                }
            }),
            Which::Serverless => json!({
                "sku": sku, "productFamily": "ML Serverless",
                "attributes": {
                    "regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-2GB",
                    "operation": "RunInstance", "servicecode": "AmazonSageMaker"
                }
            }),
        };
        json!({
            "product": product, "serviceCode": "AmazonSageMaker",
            "terms": {"OnDemand": on_demand}, "version": "20260301000000",
            "publicationDate": "2026-03-01T00:00:00Z"
        })
        .to_string()
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What the Price List does with the requests it gets from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answers,
    Throttles,
    Fails500,
    Hangs,
    /// HTTP 200 with a body that is not JSON.
    GarbageBody,
    /// HTTP 200, `PriceList` entries without a product SKU.
    BadDocuments,
    /// The documents list $0 only.
    ZeroOnly,
}

impl Mode {
    /// What a look-up of `which` fails with in this mode, as `PriceError` displays it
    /// (the documented wordings); `None` when it answers.
    fn error(self, which: Which) -> Option<String> {
        Some(match self {
            Mode::Answers => return None,
            Mode::Throttles => "price source unavailable: the Price List API throttled the \
                                request (ThrottlingException, HTTP 400)"
                .to_owned(),
            Mode::Fails500 => "price source unavailable: the Price List API failed \
                               (InternalErrorException, HTTP 500)"
                .to_owned(),
            Mode::Hangs => {
                "price source unavailable: the Price List API did not answer within 1000 ms"
                    .to_owned()
            }
            Mode::GarbageBody => "malformed price document: the Price List API answered HTTP \
                                  200 with a body that is not a GetProducts response"
                .to_owned(),
            Mode::BadDocuments => format!(
                "malformed price document: 2 of 2 price documents for {} could not be read; \
                 first: price document has no `product.sku`",
                which.key()
            ),
            Mode::ZeroOnly => format!(
                "the Price List lists only $0 for {} (SKU {}: a free-tier or bookkeeping row \
                 with no paid tier); not priced at $0",
                which.key(),
                which.sku()
            ),
        })
    }
}

/// The fake Price List: what AWS has published, and how it answers.
#[derive(Debug)]
struct World {
    mode: Mode,
    /// Per key: every on-demand term published, by `effectiveDate` (index of the price).
    terms: BTreeMap<Which, BTreeMap<DateTime<Utc>, usize>>,
    requests: usize,
}

#[derive(Debug, Clone)]
struct FakePriceList(Arc<Mutex<World>>);

fn response(status: u16, body: String) -> Response {
    let mut response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
}

impl HttpConnector for FakePriceList {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let mut world = self.0.lock().unwrap();
        world.requests += 1;
        let error = |status, code: &str| {
            response(status, json!({"__type": code, "message": "no"}).to_string())
        };
        // Both products answer every request, as a filter on region alone would:
        // the selection takes the product that prices the key.
        let documents = |zero: bool| {
            let list: Vec<String> = WHICH
                .iter()
                .map(|w| w.document(&world.terms[w], zero))
                .collect();
            response(
                200,
                json!({"FormatVersion": "aws_v1", "PriceList": list}).to_string(),
            )
        };
        let answer = match world.mode {
            Mode::Answers => documents(false),
            Mode::ZeroOnly => documents(true),
            Mode::Throttles => error(400, "ThrottlingException"),
            Mode::Fails500 => error(500, "InternalErrorException"),
            Mode::GarbageBody => response(200, "<html>not json".to_owned()),
            Mode::BadDocuments => response(
                200,
                json!({"FormatVersion": "aws_v1", "PriceList": [
                    r#"{"product":{}}"#, r#"{"product":{"attributes":{}}}"#
                ]})
                .to_string(),
            ),
            Mode::Hangs => {
                return HttpConnectorFuture::new(std::future::pending());
            }
        };
        HttpConnectorFuture::ready(Ok(answer))
    }
}

/// What a receipt's rate is expected to be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    source: PriceOrigin,
    usd: Decimal,
    effective_date: String,
    fetched_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

impl Expected {
    fn of(rate: &Rate) -> Expected {
        Expected {
            source: rate.provenance.source,
            usd: rate.usd_per_unit,
            effective_date: rate
                .provenance
                .effective_date
                .as_deref()
                .unwrap_or("(none)")
                .to_owned(),
            fetched_at: rate.provenance.fetched_at,
            note: rate.provenance.note.as_deref().map(str::to_owned),
        }
    }

    fn noted(mut self, note: &str) -> Expected {
        self.note = Some(match self.note {
            Some(old) => format!("{note}; {old}"),
            None => note.to_owned(),
        });
        self
    }
}

/// How many terms announced ahead an answer gives the rates of (the live source's
/// bound): from the date of one more, the kept rate is stale.
const TERMS_AHEAD: usize = 4;

/// A rate the Price List gave, as the model keeps it.
#[derive(Debug, Clone)]
struct Good {
    price: usize,
    effective: DateTime<Utc>,
    fetched: DateTime<Utc>,
    /// The terms the answer announced ahead (the first [`TERMS_AHEAD`]), by date:
    /// from its date, each is the rate in effect.
    ahead: Vec<(DateTime<Utc>, usize)>,
    /// The date of the next term announced beyond those: the rate is no longer the
    /// one in effect from then, and the answer gave no rate for it.
    until: Option<DateTime<Utc>>,
    /// This rate is the answer's announced term's, in effect since its date.
    announced: bool,
}

impl Good {
    fn expected(&self, which: Which, source: PriceOrigin) -> Expected {
        let expected = Expected {
            source,
            usd: Decimal::from_str_exact(which.prices()[self.price])
                .unwrap()
                .normalize(),
            effective_date: rfc3339(self.effective),
            fetched_at: Some(self.fetched),
            note: which.live_note().map(str::to_owned),
        };
        if self.announced {
            return expected.noted(&format!(
                "rate of the term effective {}, announced in the Price List answer fetched {}",
                rfc3339(self.effective),
                rfc3339(self.fetched)
            ));
        }
        expected
    }

    /// Whether the rate is no longer the one in effect at `now`, the answer giving
    /// no rate for the term that replaced it.
    fn replaced(&self, now: DateTime<Utc>) -> bool {
        self.ahead.is_empty() && self.until.is_some_and(|until| until <= now)
    }

    fn fresh(&self, now: DateTime<Utc>) -> bool {
        now - self.fetched < Span::seconds(TTL_SECS) && !self.replaced(now)
    }
}

/// The model of one key in the cache: the documented states.
#[derive(Debug, Clone, Default)]
struct Key {
    good: Option<Good>,
    /// After a failure: until when the Price List is left alone, what callers get,
    /// and, when that is the last good rate, the note it is kept with.
    failure: Option<(DateTime<Utc>, Expected, Option<String>)>,
    /// A change a refresh found, for the first call after it.
    announce: Option<String>,
}

#[derive(Debug, Clone)]
enum Event {
    Call(Which),
    /// Two calls for the key at once.
    Pair(Which),
    Advance(i64),
    Mode(Mode),
    /// AWS publishes a term for `Which` at price index `usize`, effective this many
    /// seconds from now.
    Publish(Which, usize, i64),
    Restart,
}

fn event() -> impl Strategy<Value = Event> {
    let which = prop_oneof![Just(Which::Hosting), Just(Which::Serverless)];
    prop_oneof![
        6 => which.clone().prop_map(Event::Call),
        2 => which.clone().prop_map(Event::Pair),
        4 => prop::sample::select(vec![1i64, 30, 59, 60, 61, 600, 1800, 3599, 3600, 3601, 7200, 86_400])
            .prop_map(Event::Advance),
        3 => prop::sample::select(vec![
            Mode::Answers, Mode::Answers, Mode::Throttles, Mode::Fails500, Mode::Hangs,
            Mode::GarbageBody, Mode::BadDocuments, Mode::ZeroOnly,
        ])
        .prop_map(Event::Mode),
        2 => (which, 0usize..4, prop::sample::select(vec![0i64, 1, 1800, 3600, 5400, 18_000]))
            .prop_map(|(w, p, d)| Event::Publish(w, p, d)),
        1 => Just(Event::Restart),
    ]
}

/// The model: the Price List's published terms, the clock, and the cache's state.
struct Model {
    now: DateTime<Utc>,
    keys: BTreeMap<Which, Key>,
    requests: usize,
}

/// The change note from `old` to `new` (documented wording).
fn change_note(which: Which, old: &Good, new: &Good) -> Option<String> {
    (old.price != new.price).then(|| {
        let (new_usd, old_usd, percent) = which.change(old.price, new.price);
        format!(
            "price changed: {new_usd} per {} (effective {}), was {old_usd} (effective {}) \
             ({percent}%)",
            which.unit(),
            rfc3339(new.effective),
            rfc3339(old.effective)
        )
    })
}

impl Model {
    /// What the Price List answers for `which` at `now` in `mode`: the term with the
    /// latest `effectiveDate` not after now (one is always in effect: the first term
    /// is from before the run), and the terms announced after it; or the failure.
    fn fetch(
        &mut self,
        which: Which,
        mode: Mode,
        terms: &BTreeMap<DateTime<Utc>, usize>,
    ) -> Result<Good, String> {
        self.requests += 1;
        if let Some(error) = mode.error(which) {
            return Err(error);
        }
        let (&effective, &price) = terms.range(..=self.now).next_back().unwrap();
        let later: Vec<(DateTime<Utc>, usize)> = terms
            .iter()
            .filter(|(date, _)| **date > self.now)
            .map(|(date, price)| (*date, *price))
            .collect();
        Ok(Good {
            price,
            effective,
            fetched: self.now,
            ahead: later.iter().take(TERMS_AHEAD).copied().collect(),
            until: later.get(TERMS_AHEAD).map(|(date, _)| *date),
            announced: false,
        })
    }

    fn snapshot(which: Which, error: &str) -> Expected {
        Expected {
            source: PriceOrigin::Snapshot,
            usd: which.snapshot_usd(),
            effective_date: "2026-01-15".into(),
            fetched_at: None,
            note: Some(format!(
                "primary price source failed ({error}); {SNAPSHOT_NOTE}"
            )),
        }
    }

    /// A term the kept answer announced ahead took effect by now: its rate is the
    /// kept one from then, the change from the rate before told (and noted on the
    /// first call served from the cache), the entry as old as the answer. After a
    /// failure the kept answer is the new rate, noted the same, and the change
    /// note is returned for the call that made the switch.
    fn switch(&mut self, which: Which) -> Option<String> {
        let now = self.now;
        let key = self.keys.get_mut(&which).unwrap();
        let good = key.good.as_mut()?;
        let old = good.clone();
        while let Some(&(on, price)) = good.ahead.first()
            && on <= now
        {
            good.ahead.remove(0);
            good.price = price;
            good.effective = on;
            good.announced = true;
        }
        if !good.announced || good.effective == old.effective {
            return None;
        }
        let new = good.clone();
        let change = change_note(which, &old, &new);
        if let Some((_, answer, Some(kept))) = &mut key.failure {
            *answer = new.expected(which, PriceOrigin::Cache).noted(kept);
            return change;
        }
        // After a change a refresh found that no call was told of yet: both.
        if let Some(change) = change {
            key.announce = Some(match key.announce.take() {
                Some(earlier) => format!("{change}; {earlier}"),
                None => change,
            });
        }
        None
    }

    /// A refresh (or retry) lands: the new state of the key.
    fn land(&mut self, which: Which, fetched: Result<Good, String>) {
        let now = self.now;
        let key = self.keys.get_mut(&which).unwrap();
        match fetched {
            Ok(good) => {
                key.announce = key
                    .good
                    .as_ref()
                    .and_then(|old| change_note(which, old, &good));
                key.good = Some(good);
                key.failure = None;
            }
            Err(error) => {
                let failure = match &key.good {
                    Some(good) => {
                        let kept = format!(
                            "refresh failed ({error}); kept the last good price, fetched {}",
                            rfc3339(good.fetched)
                        );
                        let answer = good.expected(which, PriceOrigin::Cache).noted(&kept);
                        (now + Span::seconds(BACKOFF_SECS), answer, Some(kept))
                    }
                    None => (
                        now + Span::seconds(BACKOFF_SECS),
                        Model::snapshot(which, &error),
                        None,
                    ),
                };
                key.failure = Some(failure);
                key.announce = None;
            }
        }
    }

    /// One call: what it is priced at, and whether it starts a refresh (which lands
    /// before the next event: the clock does not move meanwhile).
    fn call(
        &mut self,
        which: Which,
        mode: Mode,
        terms: &BTreeMap<DateTime<Utc>, usize>,
    ) -> Expected {
        let owed = self.switch(which);
        let answer = self.call_switched(which, mode, terms);
        match owed {
            Some(change) => answer.noted(&change),
            None => answer,
        }
    }

    /// One call once a term announced ahead is in place.
    fn call_switched(
        &mut self,
        which: Which,
        mode: Mode,
        terms: &BTreeMap<DateTime<Utc>, usize>,
    ) -> Expected {
        let now = self.now;
        let key = self.keys[&which].clone();
        // Fresh: younger than the TTL, and still the term in effect.
        if let Some(good) = key.good.as_ref().filter(|g| g.fresh(now)) {
            let expected = good.expected(which, PriceOrigin::Cache);
            if let Some(change) = &key.announce {
                self.keys.get_mut(&which).unwrap().announce = None;
                return expected.noted(change);
            }
            return expected;
        }
        if let Some((retry_after, answer, _)) = &key.failure
            && now < *retry_after
        {
            return answer.clone();
        }
        if key.good.is_none() && key.failure.is_none() {
            // Never answered: this call waits for the one fetch.
            let fetched = self.fetch(which, mode, terms);
            self.land(which, fetched.clone());
            return match fetched {
                Ok(good) => good.expected(which, PriceOrigin::Live),
                Err(error) => Model::snapshot(which, &error),
            };
        }
        // Stale, or a failure whose backoff is over: what is at hand, at once, and a
        // refresh on a task of its own.
        let answer = match (&key.failure, &key.good) {
            (Some((_, answer, _)), _) => answer.clone(),
            // A change found by the refresh before is noted on the first call after it,
            // this one, even when it comes after the TTL.
            (None, Some(good)) => {
                let stale = good.expected(which, PriceOrigin::Cache);
                match &key.announce {
                    Some(change) => stale.noted(change),
                    None => stale,
                }
                .noted(&stale_note(good, now))
            }
            (None, None) => unreachable!(),
        };
        let fetched = self.fetch(which, mode, terms);
        self.land(which, fetched);
        answer
    }

    /// Two calls at once (polled in turn): the first as [`call`](Self::call); the
    /// second, when the first started a fetch, gets what is at hand meanwhile (the
    /// stale rate without the change note the first took, or the kept failure
    /// answer), or, for a key never answered, waits for the one fetch and takes its
    /// answer as kept (`cache`), or the fallback's. A term announced ahead that
    /// took effect is put in place by the first, before either is answered.
    fn call_pair(
        &mut self,
        which: Which,
        mode: Mode,
        terms: &BTreeMap<DateTime<Utc>, usize>,
    ) -> (Expected, Expected) {
        let owed = self.switch(which);
        let owed = |first: Expected| match &owed {
            Some(change) => first.noted(change),
            None => first,
        };
        let now = self.now;
        let key = self.keys[&which].clone();
        let fresh = key.good.as_ref().is_some_and(|g| g.fresh(now));
        let in_backoff = key.failure.as_ref().is_some_and(|(after, ..)| now < *after);
        if fresh || in_backoff {
            // Nothing is fetched: the same as one call after the other.
            let first = owed(self.call_switched(which, mode, terms));
            return (first, self.call_switched(which, mode, terms));
        }
        if key.good.is_none() && key.failure.is_none() {
            let first = self.call_switched(which, mode, terms);
            let second = match first.source {
                PriceOrigin::Live => self.keys[&which]
                    .good
                    .as_ref()
                    .unwrap()
                    .expected(which, PriceOrigin::Cache),
                _ => first.clone(),
            };
            return (first, second);
        }
        let second = match (&key.failure, &key.good) {
            (Some((_, answer, _)), _) => answer.clone(),
            (None, Some(good)) => good
                .expected(which, PriceOrigin::Cache)
                .noted(&stale_note(good, now)),
            (None, None) => unreachable!(),
        };
        (owed(self.call_switched(which, mode, terms)), second)
    }
}

/// Why a kept rate is served stale at `now`: replaced by a later term its answer
/// listed without its rate, else past its TTL.
fn stale_note(good: &Good, now: DateTime<Utc>) -> String {
    match good.until.filter(|_| good.replaced(now)) {
        Some(until) => format!(
            "cached price replaced by a term effective {}; a refresh is under way",
            rfc3339(until)
        ),
        None => REFRESHING.to_owned(),
    }
}

/// The code under test, on the manual clock.
fn chain(world: &Arc<Mutex<World>>, time: &ManualTimeSource) -> CachedPrices {
    use aws_sdk_pricing::config::{BehaviorVersion, Credentials, Region};
    let connector = SharedHttpConnector::new(FakePriceList(world.clone()));
    let config = aws_sdk_pricing::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .time_source(SharedTimeSource::new(time.clone()))
        .build();
    let live = LivePrices::from_client(aws_sdk_pricing::Client::from_conf(config));
    CachedPrices::builder(live)
        .fallback(Snapshot::from_tsv(SNAPSHOT_TSV).unwrap())
        .ttl(Duration::from_secs(TTL_SECS as u64))
        .failure_backoff(Duration::from_secs(BACKOFF_SECS as u64))
        .time_source(SharedTimeSource::new(time.clone()))
        .build()
}

fn run(events: Vec<Event>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Every key has a term in effect from before the run.
        let first = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let terms: BTreeMap<Which, BTreeMap<DateTime<Utc>, usize>> = WHICH
            .iter()
            .map(|&w| (w, BTreeMap::from([(first, 0)])))
            .collect();
        let world = Arc::new(Mutex::new(World {
            mode: Mode::Answers,
            terms,
            requests: 0,
        }));
        let time = ManualTimeSource::new(start().into());
        let mut prices = chain(&world, &time);
        let mut model = Model {
            now: start(),
            keys: WHICH.iter().map(|&w| (w, Key::default())).collect(),
            requests: 0,
        };
        for (step, event) in events.iter().enumerate() {
            match event {
                Event::Call(which) | Event::Pair(which) => {
                    let (mode, terms) = {
                        let world = world.lock().unwrap();
                        (world.mode, world.terms[which].clone())
                    };
                    let key = which.key();
                    let (wants, gots) = if matches!(event, Event::Pair(_)) {
                        let (a, b) = model.call_pair(*which, mode, &terms);
                        let (x, y) = tokio::join!(prices.price(&key), prices.price(&key));
                        (vec![a, b], vec![x, y])
                    } else {
                        let want = model.call(*which, mode, &terms);
                        (vec![want], vec![prices.price(&key).await])
                    };
                    for (n, (want, got)) in wants.into_iter().zip(gots).enumerate() {
                        let got = match got {
                            Ok(rate) => rate,
                            Err(error) => {
                                return Err(TestCaseError::fail(format!(
                                    "step {step}, call {n}: the look-up of {which:?} failed: \
                                     {error}"
                                )));
                            }
                        };
                        prop_assert!(
                            got.usd_per_unit > Decimal::ZERO,
                            "step {}, call {}: priced at $0: {:?}",
                            step,
                            n,
                            got
                        );
                        prop_assert_eq!(
                            Expected::of(&got),
                            want,
                            "step {}, call {}: {:?} at {}",
                            step,
                            n,
                            which,
                            model.now
                        );
                    }
                    // A refresh these calls started lands before the next event.
                    for _ in 0..100 {
                        if !prices.is_fetching(&key) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    prop_assert!(
                        !prices.is_fetching(&key),
                        "step {}: a refresh did not land",
                        step
                    );
                }
                Event::Advance(secs) => {
                    time.advance(Duration::from_secs(*secs as u64));
                    model.now += Span::seconds(*secs);
                }
                Event::Mode(mode) => world.lock().unwrap().mode = *mode,
                Event::Publish(which, price, delay) => {
                    let at = model.now + Span::seconds(*delay);
                    world
                        .lock()
                        .unwrap()
                        .terms
                        .get_mut(which)
                        .unwrap()
                        .insert(at, *price);
                }
                Event::Restart => {
                    // The cache is in memory only: a new process starts empty.
                    prices = chain(&world, &time);
                    for key in model.keys.values_mut() {
                        *key = Key::default();
                    }
                }
            }
        }
        prop_assert_eq!(
            world.lock().unwrap().requests,
            model.requests,
            "requests that reached the Price List"
        );
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Every call is priced at the rate, from the source and with the note the
    /// documented rules give, never at $0, and never fails.
    #[test]
    fn each_call_is_priced_from_the_source_the_documented_rules_give(
        events in prop::collection::vec(event(), 1..60)
    ) {
        run(events)?;
    }
}
