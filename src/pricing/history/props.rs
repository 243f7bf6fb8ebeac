//! A model-based property test of the price history.
//!
//! Random runs of Price List versions are published as AWS publishes them: a
//! version index (`ListPriceLists` answers, per date asked, the version in effect
//! on it: the latest whose effective date is not after it) and, per version, an
//! offer file in the real shape (products with their SKUs and attributes,
//! `OnDemand` terms with their `effectiveDate`, price dimensions with
//! `beginRange`/`endRange` and USD strings, serverless's free first tier of
//! 150,000 s at $0). Versions are published with the same effective date or out of
//! order (a version id, its publication time, earlier than an older version's); a
//! SKU appears, disappears, changes price, is announced for later, lists only $0
//! (the version is then missing for that key, and read for the family's other
//! sizes), or is unreadable (its price written `0.23x`: the version is then
//! missing, its rates unknown); a file is cut short, is not JSON, or is offered
//! without a `json` format.
//!
//! The code under test is [`PriceListHistory`] as an application uses it
//! ([`history`](PriceListHistory::history) of a hosting or a serverless key,
//! [`family`](PriceListHistory::family) of `ml.m5`), its Price List client and its
//! file downloads answered by an in-process fake, its cache in a temporary
//! directory; then the same again after a "restart" (a new reader on the same
//! cache, one cached file damaged meanwhile), and [`PriceHistory::trend`].
//!
//! The model is written from `docs/price-history.md` and the Price List's rules
//! (of a product's dated terms the one with the latest `effectiveDate` not after
//! the day counts; a product whose every term is ahead is not in effect yet; the
//! paid tier after a $0 first tier, never $0; the highest rate when products stay
//! ambiguous). It checks, never against the code's own output: every point (its
//! version, date, exact rate, change in percent worked out in integers, term date
//! and SKU), the rate in force on every day of the span (a change exactly on its
//! effective date, the day before still the old rate), the versions read, each
//! missing version with its span and reason, what the restart downloads, and the
//! trend's first and latest rates and dates.

use super::{HistoryError, PriceHistory, PriceListHistory};
use crate::pricing::PriceKey;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use chrono::{Datelike, Days, Months, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const REGION: &str = "us-east-1";

/// The note on a rate after serverless's free first tier (documented wording).
const FREE_TIER: &str = "free tier of 150000 second(s) per month not applied";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Dates versions take effect on and terms are dated: month starts, mid-months,
/// some before the first date asked for, one after every last date asked for.
fn dates() -> [NaiveDate; 14] {
    [
        day(2023, 11, 1),
        day(2023, 12, 1),
        day(2023, 12, 20),
        day(2024, 1, 1),
        day(2024, 1, 15),
        day(2024, 2, 1),
        day(2024, 2, 10),
        day(2024, 3, 1),
        day(2024, 3, 15),
        day(2024, 4, 1),
        day(2024, 5, 1),
        day(2024, 5, 15),
        day(2024, 6, 1),
        day(2024, 7, 1),
    ]
}

/// What is read: one key's history or a family's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hosting,
    Serverless,
    Family,
}

/// What a product prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// ml.m5.xlarge hosting.
    Xlarge,
    /// ml.m5.2xlarge hosting.
    TwoXlarge,
    /// ml.m5.xlarge training: never a hosting rate.
    Training,
    /// Serverless, 2 GB.
    Serverless2,
    /// Serverless, 3 GB: never the 2 GB rate.
    Serverless3,
}

impl What {
    fn serverless(self) -> bool {
        matches!(self, What::Serverless2 | What::Serverless3)
    }

    fn attributes(self) -> (&'static str, Value) {
        let instance = |name: &str, component: &str, usage: &str, vcpu: &str| {
            json!({
                "regionCode": REGION, "servicecode": "AmazonSageMaker", "location": "US East (N. Virginia)",
                "instanceName": name, "component": component, "usagetype": usage, "vCpu": vcpu,
                "operation": "RunInstance",
            })
        };
        let serverless = |usage: &str| {
            json!({
                "regionCode": REGION, "servicecode": "AmazonSageMaker",
                "usagetype": usage, "operation": "RunInstance",
            })
        };
        match self {
            What::Xlarge => (
                "ML Instance",
                instance("ml.m5.xlarge", "Hosting", "USE1-Host:ml.m5.xlarge", "4"),
            ),
            What::TwoXlarge => (
                "ML Instance",
                instance("ml.m5.2xlarge", "Hosting", "USE1-Host:ml.m5.2xlarge", "8"),
            ),
            What::Training => (
                "ML Instance",
                instance("ml.m5.xlarge", "Training", "USE1-Train:ml.m5.xlarge", "4"),
            ),
            What::Serverless2 => ("ML Serverless", serverless("USE1-ServerlessInf:Mem-2GB")),
            What::Serverless3 => ("ML Serverless", serverless("USE1-ServerlessInf:Mem-3GB")),
        }
    }
}

impl Kind {
    /// The product slots of this kind's files: what each prices, and its SKU.
    fn slots(self) -> &'static [(What, &'static str)] {
        match self {
            Kind::Hosting => &[
                (What::Xlarge, "M5XLHOST01"),
                (What::Xlarge, "M5XLHOST02"),
                (What::Training, "M5XLTRAIN1"),
                (What::TwoXlarge, "M52XLHOST1"),
            ],
            Kind::Serverless => &[
                (What::Serverless2, "SLS2GB0001"),
                (What::Serverless2, "SLS2GB0002"),
                (What::Serverless3, "SLS3GB0001"),
            ],
            Kind::Family => &[
                (What::Xlarge, "M5XLHOST01"),
                (What::TwoXlarge, "M52XLHOST1"),
                (What::TwoXlarge, "M52XLHOST2"),
                (What::Training, "M5XLTRAIN1"),
            ],
        }
    }

    /// Rates in ten-billionths of a dollar (the Price List writes 10 places).
    fn prices(self, what: What) -> &'static [i128] {
        if what.serverless() {
            // 0.00004, 0.000048, 0.0000333333, 0.00006 per second.
            &[400_000, 480_000, 333_333, 600_000]
        } else {
            // 0.23, 0.20, 0.184, 0.2070, 0.46 per hour.
            &[
                2_300_000_000,
                2_000_000_000,
                1_840_000_000,
                2_070_000_000,
                4_600_000_000,
            ]
        }
    }

    /// Whether a product may price what is asked (docs: only such a product, when it
    /// cannot be read, makes a version missing): it prices one of this kind's keys.
    /// A Training product never prices hosting, nor a 3 GB serverless product the
    /// 2 GB rate, whatever their region and instance name.
    fn candidate(self, what: What) -> bool {
        self.keys().iter().any(|(_, prices)| *prices == what)
    }

    /// The keys a history of this kind can have, with what prices each.
    fn keys(self) -> Vec<(PriceKey, What)> {
        match self {
            Kind::Hosting => vec![(PriceKey::hosting(REGION, "ml.m5.xlarge"), What::Xlarge)],
            Kind::Serverless => vec![(PriceKey::serverless(REGION, 2), What::Serverless2)],
            Kind::Family => vec![
                (PriceKey::hosting(REGION, "ml.m5.2xlarge"), What::TwoXlarge),
                (PriceKey::hosting(REGION, "ml.m5.xlarge"), What::Xlarge),
            ],
        }
    }
}

/// One on-demand term's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Price {
    /// One dimension `0 – Inf` at this rate.
    Flat(i128),
    /// Serverless as AWS tiers it: `0 – 150000` s at $0, then this rate from 150000.
    FreeFirst(i128),
    /// `0 – Inf` at $0 only (a bookkeeping row): no rate.
    Zero,
}

#[derive(Debug, Clone)]
struct Term {
    date: NaiveDate,
    price: Price,
}

#[derive(Debug, Clone)]
struct Product {
    what: What,
    sku: &'static str,
    /// Distinct dates, in any order.
    terms: Vec<Term>,
    /// Its price is written `0.23x`: the product cannot be read.
    broken: bool,
}

/// How a version's file is offered and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Whole,
    /// Served cut in half.
    CutShort,
    /// Served as an HTML error page with HTTP 200.
    NotJson,
    /// `ListPriceLists` offers it as `csv` only.
    CsvOnly,
    /// Served as a JSON object that is no offer file (`{}`, what a proxy may
    /// answer) with HTTP 200.
    NoOffer,
    /// Served as another version's file (whole, its `version` another id).
    OtherVersion,
}

#[derive(Debug, Clone)]
struct Version {
    /// E.g. `20240301030000`: its publication time.
    id: String,
    effective: NaiveDate,
    products: Vec<Product>,
    file: File,
}

impl Version {
    fn publication_date(&self) -> String {
        format!(
            "{}-{}-{}T{}:00:00Z",
            &self.id[..4],
            &self.id[4..6],
            &self.id[6..8],
            &self.id[8..10]
        )
    }

    /// Downloaded (offered as JSON) and read whole.
    fn whole(&self) -> bool {
        self.file == File::Whole
    }

    /// Read, with every product that may price what is asked: its rates known.
    fn readable(&self, kind: Kind) -> bool {
        self.whole()
            && !self
                .products
                .iter()
                .any(|p| p.broken && kind.candidate(p.what))
    }
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    since: NaiveDate,
    until: NaiveDate,
    versions: Vec<Version>,
    /// Index of a read version whose cached file is damaged before the restart.
    damage: Option<usize>,
}

fn usd_text(units: i128) -> String {
    Decimal::new(units as i64, 10).to_string()
}

fn rfc3339(date: NaiveDate) -> String {
    format!("{date}T00:00:00Z")
}

impl Product {
    fn json(&self) -> (Value, Value) {
        let (family, attributes) = self.what.attributes();
        let product = json!({ "sku": self.sku, "productFamily": family, "attributes": attributes });
        let unit = if self.what.serverless() {
            "Second"
        } else {
            "Hrs"
        };
        let mut terms = Map::new();
        for (t, term) in self.terms.iter().enumerate() {
            let code = if t == 0 {
                "JRTCKXETXF".to_owned()
            } else {
                format!("TERM{t:06}")
            };
            let dim = |n: usize, begin: &str, end: &str, usd: String| {
                let rate_code = format!("{}.{code}.RATE{n:05}", self.sku);
                (
                    rate_code.clone(),
                    json!({
                        "rateCode": rate_code, "description": format!("${usd} per {unit}"),
                        "beginRange": begin, "endRange": end, "unit": unit,
                        "pricePerUnit": { "USD": usd }, "appliesTo": [],
                    }),
                )
            };
            let paid = |units: i128| {
                if self.broken {
                    format!("{}x", usd_text(units))
                } else {
                    usd_text(units)
                }
            };
            let dims: Map<String, Value> = match term.price {
                Price::Flat(units) => [dim(0, "0", "Inf", paid(units))].into_iter().collect(),
                Price::FreeFirst(units) => [
                    dim(0, "0", "150000", "0.0000000000".into()),
                    dim(1, "150000", "Inf", paid(units)),
                ]
                .into_iter()
                .collect(),
                Price::Zero => [dim(0, "0", "Inf", paid(0))].into_iter().collect(),
            };
            terms.insert(
                format!("{}.{code}", self.sku),
                json!({
                    "offerTermCode": code, "sku": self.sku, "effectiveDate": rfc3339(term.date),
                    "priceDimensions": dims, "termAttributes": {},
                }),
            );
        }
        (product, Value::Object(terms))
    }
}

/// The version's offer file as AWS writes it (products before terms).
fn offer_file(version: &Version) -> Vec<u8> {
    let mut products = Map::new();
    let mut on_demand = Map::new();
    for product in &version.products {
        let (p, t) = product.json();
        products.insert(product.sku.to_owned(), p);
        on_demand.insert(product.sku.to_owned(), t);
    }
    let text = format!(
        r#"{{"formatVersion":"v1.0","disclaimer":"This pricing list is for informational purposes only.","offerCode":"AmazonSageMaker","version":"{}","publicationDate":"{}","products":{},"terms":{{"OnDemand":{},"Reserved":{{}}}}}}"#,
        version.id,
        version.publication_date(),
        Value::Object(products),
        Value::Object(on_demand),
    );
    match version.file {
        File::CutShort => text.as_bytes()[..text.len() / 2].to_vec(),
        File::NotJson => b"<html><body>Service Unavailable</body></html>".to_vec(),
        File::NoOffer => b"{}".to_vec(),
        // Ids are `YYYYMMDDHH0000`: one ending in 99 is no version's.
        File::OtherVersion => text
            .replace(
                &format!(r#""version":"{}""#, version.id),
                &format!(r#""version":"{}99""#, &version.id[..12]),
            )
            .into_bytes(),
        File::Whole | File::CsvOnly => text.into_bytes(),
    }
}

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

fn price(kind: Kind, what: What) -> impl Strategy<Value = Price> {
    let paid = prop::sample::select(kind.prices(what).to_vec());
    if what.serverless() {
        prop_oneof![
            4 => paid.clone().prop_map(Price::FreeFirst),
            2 => paid.prop_map(Price::Flat),
            1 => Just(Price::Zero),
        ]
        .boxed()
    } else {
        prop_oneof![6 => paid.prop_map(Price::Flat), 1 => Just(Price::Zero)].boxed()
    }
}

fn product(kind: Kind, what: What, sku: &'static str) -> impl Strategy<Value = Product> {
    (
        prop::collection::vec(
            (prop::sample::select(dates().to_vec()), price(kind, what)),
            1..=3,
        ),
        prop::bool::weighted(0.06),
    )
        .prop_map(move |(terms, broken)| {
            let mut seen = BTreeSet::new();
            let terms = terms
                .into_iter()
                .filter(|(date, _)| seen.insert(*date))
                .map(|(date, price)| Term { date, price })
                .collect();
            Product {
                what,
                sku,
                terms,
                broken,
            }
        })
}

fn products(kind: Kind) -> impl Strategy<Value = Vec<Product>> {
    let slots: Vec<_> = kind
        .slots()
        .iter()
        .map(|&(what, sku)| prop::option::weighted(0.6, product(kind, what, sku)))
        .collect();
    slots.prop_map(|slots| slots.into_iter().flatten().collect())
}

fn file() -> impl Strategy<Value = File> {
    prop_oneof![
        20 => Just(File::Whole),
        1 => Just(File::CutShort),
        1 => Just(File::NotJson),
        1 => Just(File::CsvOnly),
        1 => Just(File::NoOffer),
        1 => Just(File::OtherVersion),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let kind = prop_oneof![
        Just(Kind::Hosting),
        Just(Kind::Serverless),
        Just(Kind::Family)
    ];
    kind.prop_flat_map(|kind| {
        let version = (
            0..dates().len() - 1,
            // Days published before taking effect: usually none.
            prop_oneof![4 => Just(0u64), 1 => Just(3u64), 2 => Just(20u64)],
            products(kind),
            // Lists what the version before listed (nothing changed).
            prop::bool::weighted(0.3),
            file(),
        );
        (
            Just(kind),
            prop::sample::select(vec![day(2024, 1, 1), day(2024, 1, 15)]),
            prop::sample::select(vec![day(2024, 4, 1), day(2024, 5, 15), day(2024, 6, 30)]),
            prop::collection::vec(version, 1..=6),
            prop::option::weighted(0.3, 0..5usize),
        )
    })
    .prop_map(|(kind, since, until, mut raw, damage)| {
        // Published over time; two can take effect on the same date.
        raw.sort_by_key(|v| v.0);
        let mut versions: Vec<Version> = Vec::new();
        for (n, (effective, lag, products, same, file)) in raw.into_iter().enumerate() {
            let effective = dates()[effective];
            let published = effective - Days::new(lag);
            let products = match versions.last() {
                Some(last) if same => last.products.clone(),
                _ => products,
            };
            versions.push(Version {
                // The hour tells apart versions published on the same day.
                id: format!("{}{n:02}0000", published.format("%Y%m%d")),
                effective,
                products,
                file,
            });
        }
        Case {
            kind,
            since,
            until,
            versions,
            damage,
        }
    })
}

// ---------------------------------------------------------------------------
// The fake Price List: ListPriceLists, GetPriceListFileUrl, and the files
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct World {
    versions: Vec<Version>,
    files: BTreeMap<String, Vec<u8>>,
    downloads: Vec<String>,
}

impl World {
    /// The version in effect on `date`: the latest effective date not after it,
    /// the latest published of those.
    fn in_effect(&self, date: NaiveDate) -> Option<&Version> {
        self.versions
            .iter()
            .filter(|v| v.effective <= date)
            .max_by(|a, b| (a.effective, &a.id).cmp(&(b.effective, &b.id)))
    }
}

#[derive(Debug, Clone)]
struct Fake(Arc<Mutex<World>>);

fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", content_type.to_owned());
    response
}

fn arn(id: &str) -> String {
    format!("arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/{id}/{REGION}")
}

impl HttpConnector for Fake {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut world = self.0.lock().unwrap();
        let uri = request.uri().to_owned();
        let json_answer = |body: Value| {
            response(
                200,
                "application/x-amz-json-1.1",
                body.to_string().into_bytes(),
            )
        };
        let answer = if let Some(rest) = uri.split("/offers/").nth(1) {
            let id = rest.split('/').next().unwrap_or_default().to_owned();
            world.downloads.push(id.clone());
            match world.files.get(&id) {
                Some(file) => response(200, "application/json", file.clone()),
                None => response(404, "text/plain", b"no such file".to_vec()),
            }
        } else {
            let target = request
                .headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default())
                .unwrap_or(Value::Null);
            match target.as_str() {
                "AWSPriceListService.ListPriceLists" => {
                    assert_eq!(body["ServiceCode"], "AmazonSageMaker");
                    assert_eq!(body["CurrencyCode"], "USD");
                    assert_eq!(body["RegionCode"], REGION);
                    let secs = body["EffectiveDate"].as_f64().unwrap() as i64;
                    let date = chrono::DateTime::from_timestamp(secs, 0)
                        .unwrap()
                        .date_naive();
                    let lists: Vec<Value> = world
                        .in_effect(date)
                        .map(|v| {
                            let formats = if v.file == File::CsvOnly {
                                json!(["csv"])
                            } else {
                                json!(["json", "csv"])
                            };
                            json!({ "PriceListArn": arn(&v.id), "RegionCode": REGION,
                                    "CurrencyCode": "USD", "FileFormats": formats })
                        })
                        .into_iter()
                        .collect();
                    json_answer(json!({ "PriceLists": lists }))
                }
                "AWSPriceListService.GetPriceListFileUrl" => {
                    assert_eq!(body["FileFormat"], "json");
                    let arn = body["PriceListArn"].as_str().unwrap_or_default();
                    let id = arn.rsplit('/').nth(1).unwrap_or_default();
                    json_answer(json!({
                        "Url": format!("https://files.test/offers/{id}/{REGION}.json?X-Amz-Signature=s")
                    }))
                }
                other => panic!("unexpected request {other:?} to {uri}"),
            }
        };
        HttpConnectorFuture::ready(Ok(answer))
    }
}

fn reader(fake: &Fake, cache: &std::path::Path, until: NaiveDate) -> PriceListHistory {
    let connector = SharedHttpConnector::new(fake.clone());
    let api = connector.clone();
    let sdk_config = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new(REGION))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("test", "test", None, None, "props"),
            ),
        )
        .http_client(http_client_fn(move |_, _| api.clone()))
        .build();
    PriceListHistory::builder(&sdk_config)
        .cache_dir(Some(cache.to_owned()))
        .until(until)
        .http_connector(connector)
        .build()
}

async fn read(case: &Case, reader: &PriceListHistory) -> Result<PriceHistory, HistoryError> {
    match case.kind {
        Kind::Hosting => {
            reader
                .history(&PriceKey::hosting(REGION, "ml.m5.xlarge"), case.since)
                .await
        }
        Kind::Serverless => {
            reader
                .history(&PriceKey::serverless(REGION, 2), case.since)
                .await
        }
        Kind::Family => reader.family(REGION, "ml.m5", case.since).await,
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// What a version says of a key at the start of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Says {
    /// No product prices it.
    Absent,
    /// Products price it, but every one of their terms is still ahead: the rate
    /// before holds.
    Ahead,
    /// Products in effect list only $0: no rate, and not gone either.
    ZeroOnly,
    Rate(Chosen),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chosen {
    units: i128,
    sku: String,
    date: NaiveDate,
    free_tier: bool,
    /// Positive rows among the products in effect (more than one: a choice).
    rows: usize,
}

/// The Price List's rules for one version's readable `products` at midnight `at`.
fn says(products: &[Product], what: What, at: NaiveDate) -> Says {
    let pricing: Vec<&Product> = products
        .iter()
        .filter(|p| p.what == what && !p.broken)
        .collect();
    if pricing.is_empty() {
        return Says::Absent;
    }
    // Of each product's terms, the latest dated not after `at`.
    let current: Vec<(&Product, &Term)> = pricing
        .iter()
        .filter_map(|p| {
            p.terms
                .iter()
                .filter(|t| t.date <= at)
                .max_by_key(|t| t.date)
                .map(|t| (*p, t))
        })
        .collect();
    if current.is_empty() {
        return Says::Ahead;
    }
    let mut rows: Vec<Chosen> = current
        .iter()
        .filter_map(|(p, t)| {
            let (units, free_tier) = match t.price {
                Price::Flat(u) => (u, false),
                Price::FreeFirst(u) => (u, true),
                Price::Zero => return None,
            };
            Some(Chosen {
                units,
                sku: p.sku.to_owned(),
                date: t.date,
                free_tier,
                rows: 0,
            })
        })
        .collect();
    let count = rows.len();
    // The highest rate, then the smallest SKU.
    rows.sort_by(|a, b| b.units.cmp(&a.units).then(a.sku.cmp(&b.sku)));
    match rows.into_iter().next() {
        Some(chosen) => Says::Rate(Chosen {
            rows: count,
            ..chosen
        }),
        None => Says::ZeroOnly,
    }
}

fn usd(units: i128) -> Decimal {
    Decimal::new(units as i64, 10)
}

fn units_of(usd: Decimal) -> i128 {
    use rust_decimal::prelude::ToPrimitive;
    (usd * Decimal::from(10_000_000_000i64)).to_i128().unwrap()
}

/// (new − old) ÷ old × 100 to 2 places, half to even, in integers.
fn percent(old: i128, new: i128) -> Decimal {
    let num = (new - old) * 10_000;
    let (mut q, r) = (num / old, num % old);
    let sign = if num < 0 { -1 } else { 1 };
    match (2 * r.abs()).cmp(&old) {
        std::cmp::Ordering::Greater => q += sign,
        std::cmp::Ordering::Equal if q % 2 != 0 => q += sign,
        _ => {}
    }
    Decimal::new(q as i64, 2)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    version: String,
    seen_on: NaiveDate,
    usd: Option<Decimal>,
    change_percent: Option<Decimal>,
    effective_date: Option<String>,
    sku: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Missing {
    version: String,
    seen_on: NaiveDate,
    unknown_until: Option<NaiveDate>,
    /// The keys it is missing for; empty: every key.
    keys: Vec<PriceKey>,
    reason: &'static str,
    /// Whether the next version read lists one of its keys only at a rate
    /// announced for later (the reason then says so).
    ahead: bool,
}

/// A key's expected points, the words each point's note must hold, and the last
/// date it is listed on.
type Series = (Vec<Point>, Vec<Option<String>>, Option<NaiveDate>);

#[derive(Debug, Default)]
struct Expected {
    /// Versions read, oldest first, with their publication dates.
    versions: Vec<(String, Option<String>)>,
    /// Per key: its points, its notes' required words, its last listed date.
    series: BTreeMap<PriceKey, Series>,
    missing: Vec<Missing>,
    /// Per key, per day of the span: the rate in force (None: not listed), left out
    /// where unknown.
    days: BTreeMap<PriceKey, BTreeMap<NaiveDate, Option<Decimal>>>,
    /// Versions whose files the first read downloads.
    downloads: BTreeSet<String>,
    /// Those kept in the cache: every file read whole, even with a product in it
    /// unreadable (the file is the version as published).
    cached: BTreeSet<String>,
}

/// The dates asked of `ListPriceLists` (docs: the first date, the first of every
/// month after it, and the last date).
fn samples(since: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let mut dates = vec![since];
    let mut month = day(since.year(), since.month(), 1) + Months::new(1);
    while month < until {
        dates.push(month);
        month = month + Months::new(1);
    }
    if until > since {
        dates.push(until);
    }
    dates
}

fn model(case: &Case) -> Expected {
    let world = World {
        versions: case.versions.clone(),
        ..World::default()
    };
    // The versions found, each with the first sampled date it was in effect on,
    // in the order they took effect.
    let mut found: Vec<(&Version, NaiveDate)> = Vec::new();
    for date in samples(case.since, case.until) {
        if let Some(v) = world.in_effect(date)
            && !found.iter().any(|(f, _)| f.id == v.id)
        {
            found.push((v, date));
        }
    }
    let mut expected = Expected::default();
    for (v, _) in &found {
        if v.file != File::CsvOnly {
            expected.downloads.insert(v.id.clone());
        }
        if v.whole() {
            expected.cached.insert(v.id.clone());
        }
    }
    let keys = case.kind.keys();
    // Where each version's span ends: the next version found takes over.
    let end_of = |i: usize| {
        found
            .get(i + 1)
            .map_or(case.until.succ_opt().unwrap(), |(_, s)| *s)
    };
    // Docs: a version read whole that lists a key only at $0 on a day it answers
    // for (its first date, or a term's date before the next version) is missing
    // for that key. Per key, not whole: in a family, the other sizes it lists are
    // read from it (a version with ml.m5.2xlarge only at $0 still prices
    // ml.m5.xlarge), so the model once making such a version missing for every
    // key would hide rates AWS published. Only when it lists no other key (with a
    // rate, or one announced for later) is it missing whole, as one that cannot be
    // read.
    let mut zero_keys: BTreeMap<String, (Vec<PriceKey>, bool)> = BTreeMap::new();
    for (i, (v, start)) in found.iter().enumerate() {
        if !v.readable(case.kind) {
            continue;
        }
        let listed = |what: What| says(&v.products, what, *start) != Says::Absent;
        let zero_only = |what: What| {
            listed(what)
                && v.products
                    .iter()
                    .filter(|p| p.what == what && !p.broken)
                    .flat_map(|p| p.terms.iter().map(|t| t.date))
                    .filter(|d| d > start && *d < end_of(i))
                    .chain([*start])
                    .any(|at| says(&v.products, what, at) == Says::ZeroOnly)
        };
        let zero: Vec<PriceKey> = keys
            .iter()
            .filter(|(_, what)| zero_only(*what))
            .map(|(key, _)| key.clone())
            .collect();
        let others = keys
            .iter()
            .any(|(_, what)| listed(*what) && !zero_only(*what));
        if !zero.is_empty() {
            zero_keys.insert(v.id.clone(), (zero, others));
        }
    }
    // The keys a version read is missing for (none: read for every key).
    let gap = |v: &Version| -> Vec<PriceKey> {
        match zero_keys.get(&v.id) {
            Some((zero, true)) => zero.clone(),
            _ => Vec::new(),
        }
    };
    // Read, and used for at least one key: every product readable, and not every
    // key it lists only at $0.
    let usable =
        |v: &Version| v.readable(case.kind) && !matches!(zero_keys.get(&v.id), Some((_, false)));
    let read: Vec<(&Version, NaiveDate)> =
        found.iter().copied().filter(|(v, _)| usable(v)).collect();
    // Per missing version, the next version read for one of its keys.
    let mut nexts: Vec<Option<(&Version, NaiveDate)>> = Vec::new();
    for (v, seen_on) in &found {
        let (reason, keys) = match v.file {
            File::Whole if usable(v) && gap(v).is_empty() => continue,
            // Docs: some keys listed only at $0, the others read.
            File::Whole if usable(v) => ("only at $0: not a price", gap(v)),
            // Docs: a product that may price the key cannot be read.
            File::Whole if !v.readable(case.kind) => ("could not be read", Vec::new()),
            // Docs: a key listed only at $0 has no rate, not the one before.
            File::Whole => ("only at $0: not a price", Vec::new()),
            File::CutShort => ("the file is cut short", Vec::new()),
            File::NotJson => ("the file is not valid JSON", Vec::new()),
            File::CsvOnly => ("no JSON file offered (formats: csv)", Vec::new()),
            // Docs: any other JSON object, or another version's file, is not the
            // version's: not read, not cached.
            File::NoOffer => (
                "not an AmazonSageMaker offer file: it has no offerCode",
                Vec::new(),
            ),
            File::OtherVersion => ("the file downloaded for it is version", Vec::new()),
        };
        // Docs: unknown until the next version read for one of its keys (carried
        // on past it below, once the days whose rate is known are worked out).
        let next = read
            .iter()
            .filter(|(_, s)| s > seen_on)
            .find(|(r, _)| keys.is_empty() || keys.iter().any(|k| !gap(r).contains(k)))
            .copied();
        nexts.push(next);
        expected.missing.push(Missing {
            version: v.id.clone(),
            seen_on: *seen_on,
            unknown_until: next.map(|(_, s)| s),
            keys,
            reason,
            ahead: false,
        });
    }

    // The version before the first one read, when that one lists a key only with a
    // rate announced for after `since` (docs: the version in effect the day before
    // the first version took effect, read too: by its effective date, never its id,
    // a publication time).
    // Not when a version before the first one read could not be read, nor when no
    // version was in effect on `since`.
    let opening: Vec<What> = match read.first() {
        Some((first, first_on))
            if found.first().is_some_and(|(f, _)| f.id == first.id) && *first_on == case.since =>
        {
            // Not a key the first version is missing for: its rate is unknown
            // through that version, whatever the one before says.
            let gap = gap(first);
            keys.iter()
                .filter(|(key, _)| !gap.contains(key))
                .map(|(_, what)| *what)
                .filter(|what| says(&first.products, *what, case.since) == Says::Ahead)
                .collect()
        }
        _ => Vec::new(),
    };
    let before: Option<&Version> = match read.first() {
        Some((first, _)) if !opening.is_empty() => first
            .effective
            .pred_opt()
            .and_then(|day| world.in_effect(day)),
        _ => None,
    };
    if let Some(b) = before {
        if b.file != File::CsvOnly {
            expected.downloads.insert(b.id.clone());
        }
        if b.whole() {
            expected.cached.insert(b.id.clone());
        }
    }
    // Docs: its rate must be known, else the span from `since` to the first rate
    // of those keys is missing, as a sampled version in that state is (not read,
    // or listing such a key only at $0 on `since`). Not listing it (or only ahead
    // again) is not priced before, not unknown.
    let before_unknown: Option<(&Version, &'static str)> = before.and_then(|b| {
        let reason = match b.file {
            File::CsvOnly => "could not be read: no JSON file offered (formats: csv)",
            File::CutShort => "could not be read: the file is cut short",
            File::NotJson => "could not be read: the file is not valid JSON",
            File::NoOffer => {
                "could not be read: not an AmazonSageMaker offer file: it has no offerCode"
            }
            File::OtherVersion => "could not be read: the file downloaded for it is version",
            File::Whole if !b.readable(case.kind) => "could not be read",
            File::Whole
                if opening
                    .iter()
                    .any(|what| says(&b.products, *what, case.since) == Says::ZeroOnly) =>
            {
                "only at $0: not a price"
            }
            File::Whole => return None,
        };
        Some((b, reason))
    });
    let before = before.filter(|_| before_unknown.is_none());
    if let Some(b) = before {
        expected
            .versions
            .push((b.id.clone(), Some(b.publication_date())));
    }
    for (v, _) in &read {
        expected
            .versions
            .push((v.id.clone(), Some(v.publication_date())));
    }

    let mut series: BTreeMap<PriceKey, Series> = BTreeMap::new();
    for (i, (v, start)) in found.iter().enumerate() {
        if !usable(v) {
            continue;
        }
        let end = end_of(i);
        let first_read = read.first().is_some_and(|(f, _)| f.id == v.id);
        // The keys it is missing for: no point, not "no longer listed" either.
        let gap = gap(v);
        let mut present = BTreeSet::new();
        for (key, what) in &keys {
            if gap.contains(key) || says(&v.products, *what, *start) == Says::Absent {
                continue;
            }
            present.insert(key.clone());
            // Each day the version's terms can change the rate: its first, and each
            // term date of the key's products before the next version took over.
            let mut moments: BTreeSet<NaiveDate> = v
                .products
                .iter()
                .filter(|p| p.what == *what && !p.broken)
                .flat_map(|p| p.terms.iter().map(|t| t.date))
                .filter(|d| d > start && *d < end)
                .collect();
            moments.insert(*start);
            let (points, notes, last_listed) = series.entry(key.clone()).or_default();
            for at in moments {
                let listed = points.last().is_some_and(|p| p.usd.is_some());
                match says(&v.products, *what, at) {
                    Says::Absent => unreachable!("checked at the start"),
                    Says::ZeroOnly => unreachable!("such a version is missing for the key"),
                    Says::Ahead => {
                        let opening = first_read && at == *start && points.is_empty();
                        if let Some(b) = before.filter(|_| opening)
                            && let Says::Rate(then) = says(&b.products, *what, at)
                        {
                            points.push(Point {
                                version: b.id.clone(),
                                seen_on: at,
                                usd: Some(usd(then.units)),
                                change_percent: None,
                                effective_date: Some(rfc3339(then.date)),
                                sku: Some(then.sku.clone()),
                            });
                            notes.push(Some(format!(
                                "in effect until a later rate of version {}",
                                v.id
                            )));
                            *last_listed = (*last_listed).max(Some(at));
                        } else if listed {
                            *last_listed = (*last_listed).max(Some(at));
                        }
                    }
                    Says::Rate(now) => {
                        let before_now = points.last().and_then(|p| p.usd);
                        let last_rate = points.iter().rev().find_map(|p| p.usd);
                        if before_now != Some(usd(now.units)) {
                            let change = last_rate
                                .filter(|old| *old != usd(now.units))
                                .map(|old| percent(units_of(old), now.units));
                            points.push(Point {
                                version: v.id.clone(),
                                seen_on: at,
                                usd: Some(usd(now.units)),
                                change_percent: change,
                                effective_date: Some(rfc3339(now.date)),
                                sku: Some(now.sku.clone()),
                            });
                            notes.push(if now.free_tier {
                                Some(FREE_TIER.to_owned())
                            } else if now.rows > 1 {
                                Some(format!("chose SKU {}", now.sku))
                            } else {
                                None
                            });
                        }
                        *last_listed = (*last_listed).max(Some(at));
                    }
                }
            }
        }
        // Listed before, not in this version: no longer listed.
        {
            for (key, (points, notes, _)) in series.iter_mut() {
                if !present.contains(key)
                    && !gap.contains(key)
                    && points.last().is_some_and(|p| p.usd.is_some())
                {
                    points.push(Point {
                        version: v.id.clone(),
                        seen_on: *start,
                        usd: None,
                        change_percent: None,
                        effective_date: None,
                        sku: None,
                    });
                    notes.push(Some("no longer listed".into()));
                }
            }
        }
    }
    series.retain(|_, (points, _, _)| !points.is_empty());
    expected.series = series;

    // The rate in force each day, straight from the versions: the version in effect
    // (as sampled) and, in it, each product's latest term not after the day.
    for (key, what) in &keys {
        let mut rates = BTreeMap::new();
        let mut carry: Option<Decimal> =
            before.and_then(|b| match says(&b.products, *what, read.first()?.1) {
                Says::Rate(then) => Some(usd(then.units)),
                _ => None,
            });
        // The rate before the first version read, unknown: unknown until a
        // version says what it is (gives a rate, or does not list the key).
        let mut unknown = before_unknown.is_some() && opening.contains(what);
        let mut d = case.since;
        while d <= case.until {
            let governing = found.iter().rev().find(|(_, s)| *s <= d);
            match governing {
                None => {
                    rates.insert(d, None);
                }
                // Missing (unreadable, or this key only at $0): unknown, and so
                // until a version says what it is. A version after it that lists
                // the key only at a rate announced for later leaves the rate before
                // that date in force, which is the missing version's, unknown. (The
                // model once carried the rate from before the gap across such a
                // version, as the code did: a rate no version read listed then.)
                Some((v, _)) if !usable(v) || gap(v).contains(key) => unknown = true,
                Some((v, _)) => {
                    match says(&v.products, *what, d) {
                        Says::Rate(now) => (carry, unknown) = (Some(usd(now.units)), false),
                        Says::Absent => (carry, unknown) = (None, false),
                        Says::Ahead => {}
                        Says::ZeroOnly => unreachable!("such a version is missing for the key"),
                    }
                    if !unknown {
                        rates.insert(d, carry);
                    }
                }
            }
            d = d.succ_opt().unwrap();
        }
        expected.days.insert(key.clone(), rates);
    }
    // The first day from `from` on whose rate of `key` is known.
    let known_again = |key: &PriceKey, from: NaiveDate| {
        expected.days[key].range(from..).next().map(|(day, _)| *day)
    };
    // Docs: when the next version read lists a key of a missing version only at a
    // rate announced for later, the span runs on to where that key's rate is known
    // again (the latest of such keys; one never known again: to the end).
    let mut carried = Vec::new();
    for (m, next) in expected.missing.iter().zip(&nexts) {
        let Some((r, s)) = next else {
            carried.push((m.unknown_until, false));
            continue;
        };
        let ahead: Vec<&PriceKey> = keys
            .iter()
            .filter(|(key, _)| m.keys.is_empty() || m.keys.contains(key))
            .filter(|(key, _)| !gap(r).contains(key))
            .filter(|(_, what)| says(&r.products, *what, *s) == Says::Ahead)
            .map(|(key, _)| key)
            .collect();
        let until = ahead
            .iter()
            .map(|key| known_again(key, *s))
            .collect::<Option<Vec<_>>>()
            .map(|dates| dates.into_iter().fold(*s, NaiveDate::max));
        carried.push((until, !ahead.is_empty()));
    }
    for (m, (until, ahead)) in expected.missing.iter_mut().zip(carried) {
        (m.unknown_until, m.ahead) = (until, ahead);
    }
    // Unknown from `since` to where the rates of the keys the rate before was
    // needed for are known again (the latest of them; one never known again: to
    // the end). Missing for those keys only, unless they are every key the versions
    // read list.
    if let Some((b, reason)) = before_unknown {
        let needed: Vec<PriceKey> = keys
            .iter()
            .filter(|(_, what)| opening.contains(what))
            .map(|(key, _)| key.clone())
            .collect();
        let unknown_until = needed
            .iter()
            .map(|key| known_again(key, case.since))
            .collect::<Option<Vec<_>>>()
            .and_then(|dates| dates.into_iter().max());
        let listed = |what: What| {
            read.iter()
                .any(|(v, _)| v.products.iter().any(|p| p.what == what && !p.broken))
        };
        let every = keys
            .iter()
            .filter(|(_, what)| listed(*what))
            .all(|(key, _)| needed.contains(key));
        expected.missing.insert(
            0,
            Missing {
                version: b.id.clone(),
                seen_on: case.since,
                unknown_until,
                keys: if every { Vec::new() } else { needed },
                reason,
                ahead: false,
            },
        );
    }
    expected
}

// ---------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------

/// Years from `from` to `to` in calendar months (docs: whole months, then the days
/// left over the length of the month they fall in).
fn years(from: NaiveDate, to: NaiveDate) -> f64 {
    if to <= from {
        return 0.0;
    }
    let mut months = 0;
    while from + Months::new(months + 1) <= to {
        months += 1;
    }
    let start = from + Months::new(months);
    let next = from + Months::new(months + 1);
    (f64::from(months) + (to - start).num_days() as f64 / (next - start).num_days() as f64) / 12.0
}

fn points_of(history: &PriceHistory, key: &PriceKey) -> Vec<Point> {
    history
        .series
        .iter()
        .find(|s| &s.key == key)
        .map(|s| {
            s.points
                .iter()
                .map(|p| Point {
                    version: p.version.clone(),
                    seen_on: p.seen_on,
                    usd: p.usd_per_unit,
                    change_percent: p.change_percent,
                    effective_date: p.effective_date.clone(),
                    sku: p.sku.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check(
    case: &Case,
    expected: &Expected,
    answer: &Result<PriceHistory, HistoryError>,
) -> Result<(), TestCaseError> {
    let (history, missing) = match answer {
        Ok(history) => (history, &[][..]),
        Err(HistoryError::Incomplete { partial, missing }) => (partial.as_ref(), &missing[..]),
        Err(other) => return Err(TestCaseError::fail(format!("the read failed: {other}"))),
    };
    let got_missing: Vec<_> = missing
        .iter()
        .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, &m.keys))
        .collect();
    let want_missing: Vec<_> = expected
        .missing
        .iter()
        .map(|m| (m.version.as_str(), m.seen_on, m.unknown_until, &m.keys))
        .collect();
    prop_assert_eq!(got_missing, want_missing, "missing versions");
    for (got, want) in missing.iter().zip(&expected.missing) {
        prop_assert!(
            got.reason.contains(want.reason),
            "{}: {:?} does not say {:?}",
            got.version,
            got.reason,
            want.reason
        );
        prop_assert_eq!(
            got.reason.contains("only at a rate announced for later"),
            want.ahead,
            "{}: {:?}",
            got.version,
            got.reason
        );
    }
    prop_assert_eq!((history.since, history.until), (case.since, case.until));
    let versions: Vec<_> = history
        .versions
        .iter()
        .map(|v| (v.version.clone(), v.published.clone()))
        .collect();
    prop_assert_eq!(&versions, &expected.versions, "versions read");

    let keys: Vec<&PriceKey> = history.series.iter().map(|s| &s.key).collect();
    let want_keys: Vec<&PriceKey> = expected.series.keys().collect();
    prop_assert_eq!(keys, want_keys, "keys with a history");
    for series in &history.series {
        let (points, notes, last_listed) = &expected.series[&series.key];
        prop_assert_eq!(
            &points_of(history, &series.key),
            points,
            "points of {}",
            series.key
        );
        for (point, note) in series.points.iter().zip(notes) {
            // Never a $0 rate: a free tier is not the rate, only $0 is no rate.
            prop_assert!(
                point.usd_per_unit.is_none_or(|u| u > Decimal::ZERO),
                "{:?}",
                point
            );
            if let Some(note) = note {
                let got = point.note.as_deref().unwrap_or_default();
                prop_assert!(got.contains(note.as_str()), "{:?} lacks {:?}", point, note);
            }
        }
        prop_assert_eq!(
            series.last_listed_on,
            *last_listed,
            "{} last listed",
            series.key
        );
        prop_assert_eq!(
            series.changes().count(),
            points.iter().filter(|p| p.change_percent.is_some()).count()
        );
    }

    // The rate in force on each day, read from the points as the chart and trends
    // read them: the latest point dated on or before the day.
    for (key, days) in &expected.days {
        let points = points_of(history, key);
        for (day, want) in days {
            let got = points
                .iter()
                .rev()
                .find(|p| p.seen_on <= *day)
                .and_then(|p| p.usd);
            prop_assert_eq!(got, *want, "{} on {}", key, day);
        }
    }

    // Trends: the first and latest listed rates, over the span the docs give.
    let trend = history.trend();
    prop_assert_eq!(trend.sizes.len(), history.series.len());
    for size in &trend.sizes {
        let (points, _, _) = &expected.series[&size.key];
        let first = points.iter().find(|p| p.usd.is_some()).unwrap();
        let latest = points.iter().rev().find(|p| p.usd.is_some()).unwrap();
        let gone = points.last().filter(|p| p.usd.is_none()).map(|p| p.seen_on);
        prop_assert_eq!(size.first_usd, first.usd.unwrap());
        prop_assert_eq!(size.first_on, first.seen_on);
        prop_assert_eq!(size.latest_usd, latest.usd.unwrap());
        prop_assert_eq!(size.no_longer_listed_on, gone);
        prop_assert_eq!(size.latest_on, gone.unwrap_or(case.until));
        let years = years(first.seen_on, size.latest_on);
        let (a, b) = (
            units_of(size.first_usd) as f64,
            units_of(size.latest_usd) as f64,
        );
        match size.yearly_change_percent {
            None => prop_assert!(years == 0.0, "{:?} over {} years", size, years),
            Some(got) => {
                prop_assert!(years > 0.0, "{:?}", size);
                let want = ((b / a).powf(1.0 / years) - 1.0) * 100.0;
                let got: f64 = got.try_into().unwrap();
                prop_assert!(
                    (got - want).abs() <= 0.006 + want.abs() * 1e-9,
                    "{}: {} % a year, the model says {} %",
                    size.key,
                    got,
                    want
                );
            }
        }
    }
    Ok(())
}

/// Every file left in the cache: no `.part` file, each a version read whole.
fn cached_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let expected = model(&case);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let world = Arc::new(Mutex::new(World {
            versions: case.versions.clone(),
            files: case
                .versions
                .iter()
                .map(|v| (v.id.clone(), offer_file(v)))
                .collect(),
            downloads: Vec::new(),
        }));
        let fake = Fake(world.clone());
        let cache = tempfile::tempdir().unwrap();
        let first = read(&case, &reader(&fake, cache.path(), case.until)).await;
        check(&case, &expected, &first)?;
        let downloads = std::mem::take(&mut world.lock().unwrap().downloads);
        prop_assert_eq!(
            downloads.iter().cloned().collect::<BTreeSet<_>>(),
            expected.downloads.clone(),
            "downloads"
        );
        prop_assert_eq!(
            downloads.len(),
            expected.downloads.len(),
            "each downloaded once"
        );

        // The cache holds each version read whole, and nothing else.
        let want_files: Vec<std::path::PathBuf> = expected
            .cached
            .iter()
            .map(|id| {
                cache
                    .path()
                    .join("price-lists/AmazonSageMaker/USD")
                    .join(id)
                    .join(format!("{REGION}.json"))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        prop_assert_eq!(cached_files(cache.path()), want_files.clone());

        // A restart: a new reader on the same cache, one cached file damaged.
        let damaged = case
            .damage
            .filter(|_| !want_files.is_empty())
            .map(|n| n % want_files.len());
        if let Some(n) = damaged {
            let text = std::fs::read(&want_files[n]).unwrap();
            std::fs::write(&want_files[n], &text[..text.len() / 3]).unwrap();
        }
        let again = read(&case, &reader(&fake, cache.path(), case.until)).await;
        prop_assert_eq!(&again, &first, "after a restart");
        let downloads: BTreeSet<String> = world.lock().unwrap().downloads.iter().cloned().collect();
        let mut want: BTreeSet<String> = expected
            .downloads
            .iter()
            .filter(|id| !expected.cached.contains(*id))
            .cloned()
            .collect();
        if let Some(n) = damaged {
            want.insert(
                want_files[n]
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        prop_assert_eq!(downloads, want, "downloads after the restart");
        prop_assert_eq!(cached_files(cache.path()), want_files);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every point, every day's rate, every missing version, the cache across a
    /// restart and the trend follow the documented rules.
    #[test]
    fn the_history_follows_the_published_versions_as_documented(case in case()) {
        run(case)?;
    }
}

/// A version whose file is any JSON object but an offer file (`{}`, as a proxy may
/// answer with HTTP 200), or another version's file, is missing, its rates unknown
/// until the next version read, and is not cached: read again, it is downloaded
/// again. Neither is read as a version that lists nothing (a false "no longer
/// listed") or as the other version's rates.
#[test]
fn a_file_that_is_not_the_versions_offer_file_is_missing_and_not_cached() {
    let m5 = |from: NaiveDate, units: i128| Product {
        what: What::Xlarge,
        sku: "M5XLHOST01",
        terms: vec![Term {
            date: from,
            price: Price::Flat(units),
        }],
        broken: false,
    };
    for file in [File::NoOffer, File::OtherVersion] {
        // December 2023: ml.m5.xlarge at $0.23 an hour; March 2024 (not read):
        // $0.20; May 2024: $0.20.
        let versions = vec![
            Version {
                id: "20231201000000".into(),
                effective: day(2023, 12, 1),
                products: vec![m5(day(2023, 12, 1), 2_300_000_000)],
                file: File::Whole,
            },
            Version {
                id: "20240301000000".into(),
                effective: day(2024, 3, 1),
                products: vec![m5(day(2024, 3, 1), 2_000_000_000)],
                file,
            },
            Version {
                id: "20240501000000".into(),
                effective: day(2024, 5, 1),
                products: vec![m5(day(2024, 3, 1), 2_000_000_000)],
                file: File::Whole,
            },
        ];
        let case = Case {
            kind: Kind::Hosting,
            since: day(2024, 1, 1),
            until: day(2024, 6, 1),
            versions,
            damage: None,
        };
        let expected = model(&case);
        let missing: Vec<(&str, Option<NaiveDate>)> = expected
            .missing
            .iter()
            .map(|m| (m.version.as_str(), m.unknown_until))
            .collect();
        assert_eq!(missing, [("20240301000000", Some(day(2024, 5, 1)))]);
        run(case).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    }
}
