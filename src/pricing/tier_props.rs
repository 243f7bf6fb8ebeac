//! A model-based property test of how a rate is chosen from Price List documents.
//!
//! Random but well-formed documents (1 to 4 price dimensions per term, in any order;
//! ranges that tile 0–Inf or leave gaps and overlaps; a $0 first tier or not; units
//! right or wrong; USD, CNY, both or neither; one or two dated terms; one to four
//! products, some for other keys; unreadable documents beside them) are priced by
//! every entry point that chooses from them: [`select_rate_at`], [`LivePrices`] (a
//! mocked `GetProducts`), and `compare`'s [`RateTable::fill_from`] on top of it. The
//! answers are compared with a model written from the rules of `docs/cost-model.md`
//! and [`select_rate_at`]'s documentation, never with the code's own output. The
//! bundled snapshot, which keeps its own rows rather than documents, is checked for
//! the same "never a $0 rate" rule on its own rows and on random ones.

use super::document::{parse_price_document, select_rate_at};
use super::{LivePrices, PriceError, PriceKey, PriceOrigin, PriceSource, Snapshot};
use crate::compare::{CompareError, InstancePlan, Plan, RateTable, ServerlessPlan, UsageProfile};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The moment the selection is asked about.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap()
}

/// Term dates: two in effect on [`now`], one ahead of it.
const DATES: [&str; 3] = [
    "2026-05-01T00:00:00Z",
    "2026-08-01T00:00:00Z",
    "2027-01-01T00:00:00Z",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hosting,
    Serverless,
    DataOut,
}

impl Kind {
    fn key(self) -> PriceKey {
        match self {
            Kind::Hosting => PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
            Kind::Serverless => PriceKey::serverless("us-east-1", 2),
            Kind::DataOut => PriceKey::DataOut {
                region: "us-east-1".into(),
            },
        }
    }

    /// The unit as the Price List writes it, as the errors name it.
    fn price_list_unit(self) -> &'static str {
        match self {
            Kind::Hosting => "Hrs",
            Kind::Serverless => "second",
            Kind::DataOut => "GB",
        }
    }

    /// The unit as the free-tier note names it.
    fn unit_word(self) -> &'static str {
        match self {
            Kind::Hosting => "hour",
            Kind::Serverless => "second",
            Kind::DataOut => "GB",
        }
    }

    /// Units that measure what the key bills (the documented spellings), and some
    /// that do not (`Quantity` of upfront fees, another key's unit, `GB-Second`).
    fn units(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Kind::Hosting => (&["Hrs", "Hours", "hr"], &["Quantity", "second", "GB"]),
            Kind::Serverless => (
                &["second", "seconds", "s"],
                &["GB-Second", "Hrs", "Quantity"],
            ),
            Kind::DataOut => (&["GB", "Gigabytes"], &["GB-Mo", "Hrs", "Quantity"]),
        }
    }
}

/// How well a product says it prices the key (lower is better), or that it prices
/// something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Its usagetype names exactly what the key means.
    Exact,
    /// Hosting only: `component=Hosting` and `instanceName`, no usagetype.
    ComponentAndName,
    /// Another component, memory size or direction.
    Other,
}

impl Fit {
    fn rank(self) -> Option<u8> {
        match self {
            Fit::Exact => Some(0),
            Fit::ComponentAndName => Some(2),
            Fit::Other => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Fit::Exact => "exact usagetype match",
            Fit::ComponentAndName => "component and instanceName match",
            Fit::Other => unreachable!("only products that fit are described"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Price {
    Usd(&'static str, Decimal),
    UsdAndCny(&'static str, Decimal),
    CnyOnly,
    /// `pricePerUnit` with nothing an ISO code names.
    Nothing,
}

impl Price {
    fn usd(self) -> Option<Decimal> {
        match self {
            Price::Usd(_, usd) | Price::UsdAndCny(_, usd) => Some(usd),
            Price::CnyOnly | Price::Nothing => None,
        }
    }

    fn json(self) -> Value {
        match self {
            Price::Usd(text, _) => json!({ "USD": text }),
            Price::UsdAndCny(text, _) => json!({ "USD": text, "CNY": "1.6000000000" }),
            Price::CnyOnly => json!({ "CNY": "1.6000000000" }),
            Price::Nothing => json!({ "yuan": "1.6" }),
        }
    }
}

/// USD prices as the Price List writes them, with their value worked out by hand.
fn usd_price() -> impl Strategy<Value = (&'static str, Decimal)> {
    prop::sample::select(vec![
        ("0.0000000000", Decimal::ZERO),
        ("0", Decimal::ZERO),
        ("0.0000400000", Decimal::new(4, 5)),
        ("4E-5", Decimal::new(4, 5)),
        ("0.0000350000", Decimal::new(35, 6)),
        ("0.0160000000", Decimal::new(16, 3)),
        ("0.2300000000", Decimal::new(23, 2)),
        ("1.4080000000", Decimal::new(1408, 3)),
    ])
}

fn zero_price() -> impl Strategy<Value = (&'static str, Decimal)> {
    prop::sample::select(vec![("0.0000000000", Decimal::ZERO), ("0", Decimal::ZERO)])
}

fn price(usd: impl Strategy<Value = (&'static str, Decimal)>) -> impl Strategy<Value = Price> {
    (usd, 0u8..20).prop_map(|((text, usd), currency)| match currency {
        0 => Price::CnyOnly,
        1 => Price::Nothing,
        2 => Price::UsdAndCny(text, usd),
        _ => Price::Usd(text, usd),
    })
}

#[derive(Debug, Clone)]
struct Dim {
    unit: &'static str,
    right_unit: bool,
    begin: u64,
    /// `None`: `Inf`.
    end: Option<u64>,
    price: Price,
}

fn unit(kind: Kind) -> impl Strategy<Value = (&'static str, bool)> {
    let (right, wrong) = kind.units();
    prop_oneof![
        6 => prop::sample::select(right).prop_map(|u| (u, true)),
        1 => prop::sample::select(wrong).prop_map(|u| (u, false)),
    ]
}

const CUTS: [u64; 3] = [100, 150_000, 1_000_000];

/// Tiers that tile 0–Inf, cut at some of [`CUTS`], the first one $0 or not.
fn tiling(kind: Kind) -> impl Strategy<Value = Vec<Dim>> {
    (0usize..=3, any::<bool>()).prop_flat_map(move |(cuts, free_first)| {
        let first = if free_first {
            price(zero_price()).boxed()
        } else {
            price(usd_price()).boxed()
        };
        (
            prop::sample::subsequence(CUTS.to_vec(), cuts),
            (unit(kind), first),
            prop::collection::vec((unit(kind), price(usd_price())), cuts),
        )
            .prop_map(|(cuts, head, rest)| {
                let mut bounds = vec![0];
                bounds.extend(&cuts);
                std::iter::once(head)
                    .chain(rest)
                    .enumerate()
                    .map(|(i, ((unit, right_unit), price))| Dim {
                        unit,
                        right_unit,
                        begin: bounds[i],
                        end: bounds.get(i + 1).copied(),
                        price,
                    })
                    .collect()
            })
    })
}

/// Tiers with any ranges: gaps, overlaps, none from 0; those from 0 at $0 or not.
fn loose(kind: Kind) -> impl Strategy<Value = Vec<Dim>> {
    let dims = prop::collection::vec(
        (
            prop::sample::select(vec![0, 0, 100, 150_000]),
            prop::sample::select(vec![None, Some(100), Some(150_000), Some(1_000_000)]),
            unit(kind),
            price(usd_price()),
        )
            .prop_map(|(begin, end, (unit, right_unit), price)| Dim {
                unit,
                right_unit,
                begin,
                end: end.filter(|&e| e > begin),
                price,
            }),
        1..=4,
    );
    (dims, any::<bool>()).prop_map(|(mut dims, free_first)| {
        if free_first {
            let from_zero = dims.iter_mut().filter(|d| d.begin == 0);
            from_zero.for_each(|d| d.price = Price::Usd("0.0000000000", Decimal::ZERO));
        }
        dims
    })
}

#[derive(Debug, Clone)]
struct Term {
    date: Option<&'static str>,
    dims: Vec<Dim>,
}

fn term(kind: Kind) -> impl Strategy<Value = Term> {
    (
        prop_oneof![2 => tiling(kind), 1 => loose(kind)].prop_shuffle(),
        prop::option::weighted(0.7, prop::sample::select(DATES.to_vec())),
    )
        .prop_map(|(dims, date)| Term { date, dims })
}

#[derive(Debug, Clone)]
struct Product {
    sku: &'static str,
    fit: Fit,
    terms: Vec<Term>,
}

impl Product {
    fn attributes(&self, kind: Kind) -> Value {
        let mut attrs = json!({ "regionCode": "us-east-1", "servicecode": "AmazonSageMaker" });
        let usagetype = match (kind, self.fit) {
            (Kind::Hosting, Fit::Exact) => Some("USE1-Host:ml.m5.xlarge"),
            (Kind::Hosting, Fit::ComponentAndName) => None,
            (Kind::Hosting, Fit::Other) => Some("USE1-Train:ml.m5.xlarge"),
            (Kind::Serverless, Fit::Other) => Some("USE1-ServerlessInf:Mem-3GB"),
            (Kind::Serverless, _) => Some("USE1-ServerlessInf:Mem-2GB"),
            (Kind::DataOut, Fit::Other) => Some("USE1-Hst:Data-Bytes-In"),
            (Kind::DataOut, _) => Some("USE1-Hst:Data-Bytes-Out"),
        };
        if let Some(usagetype) = usagetype {
            attrs["usagetype"] = json!(usagetype);
        }
        if kind == Kind::Hosting {
            attrs["instanceName"] = json!("ml.m5.xlarge");
            attrs["component"] = json!(if self.fit == Fit::Other {
                "Training"
            } else {
                "Hosting"
            });
        }
        attrs
    }

    fn family(kind: Kind) -> &'static str {
        match kind {
            Kind::Hosting | Kind::DataOut => "ML Instance",
            Kind::Serverless => "ML Serverless",
        }
    }

    /// The `i`th dimension of term `t`. Term keys and rate codes sort in the order
    /// they are written, so the documents read the same whether or not JSON objects
    /// keep their order.
    fn rate_code(&self, t: usize, i: usize) -> String {
        format!("{}.T{t}.R{i}", self.sku)
    }

    fn json(&self, kind: Kind) -> String {
        let mut terms = Map::new();
        for (t, term) in self.terms.iter().enumerate() {
            let mut dims = Map::new();
            for (i, dim) in term.dims.iter().enumerate() {
                let code = self.rate_code(t, i);
                let end = dim.end.map_or_else(|| "Inf".to_owned(), |e| e.to_string());
                dims.insert(
                    code.clone(),
                    json!({
                        "unit": dim.unit, "beginRange": dim.begin.to_string(), "endRange": end,
                        "description": "generated", "appliesTo": [], "rateCode": code,
                        "pricePerUnit": dim.price.json(),
                    }),
                );
            }
            let mut body = json!({
                "priceDimensions": dims, "sku": self.sku, "offerTermCode": format!("T{t}"),
                "termAttributes": {},
            });
            if let Some(date) = term.date {
                body["effectiveDate"] = json!(date);
            }
            terms.insert(format!("{}.T{t}", self.sku), body);
        }
        json!({
            "product": { "productFamily": Self::family(kind), "attributes": self.attributes(kind),
                         "sku": self.sku },
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": terms },
            "version": "20260801000000", "publicationDate": "2026-08-01T00:00:00Z",
        })
        .to_string()
    }
}

fn product(kind: Kind, sku: &'static str) -> impl Strategy<Value = Product> {
    let fit = match kind {
        Kind::Hosting => prop_oneof![
            4 => Just(Fit::Exact),
            2 => Just(Fit::ComponentAndName),
            1 => Just(Fit::Other),
        ]
        .boxed(),
        _ => prop_oneof![5 => Just(Fit::Exact), 1 => Just(Fit::Other)].boxed(),
    };
    // Two terms of one date now and then too (the term dates are few).
    (fit, prop::collection::vec(term(kind), 1..=2)).prop_map(move |(fit, terms)| Product {
        sku,
        fit,
        terms,
    })
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    products: Vec<Product>,
    /// Unreadable documents in the `GetProducts` answer.
    garbage: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![Kind::Hosting, Kind::Serverless, Kind::DataOut]),
        // Listed in another order than the SKUs sort, so the smallest SKU is not
        // simply the first listed.
        Just(vec!["SKUA", "SKUB", "SKUC", "SKUD"]).prop_shuffle(),
        1usize..=4,
        prop_oneof![3 => Just(0usize), 1 => 1usize..=2],
        // Now and then a China region's answer: every price in CNY only.
        prop::bool::weighted(0.1),
    )
        .prop_flat_map(|(kind, skus, n, garbage, china)| {
            let products: Vec<_> = skus[..n].iter().map(|&sku| product(kind, sku)).collect();
            products.prop_map(move |mut products| {
                if china {
                    let dims = products
                        .iter_mut()
                        .flat_map(|p| &mut p.terms)
                        .flat_map(|t| &mut t.dims);
                    dims.for_each(|d| d.price = Price::CnyOnly);
                }
                Case {
                    kind,
                    products,
                    garbage,
                }
            })
        })
}

/// What the model expects [`select_rate_at`] to choose: any of these (products
/// equal in fit, rate and SKU may be listed in either order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    usd: Decimal,
    sku: String,
    rate_code: String,
    effective_date: Option<String>,
    note: Option<String>,
}

/// The documented rules, written again from `docs/cost-model.md` and
/// `select_rate_at`'s documentation.
fn model(
    kind: Kind,
    products: &[Product],
    now: Option<DateTime<Utc>>,
) -> Result<Vec<Expected>, PriceError> {
    let key = kind.key();
    // Rule 1: products that price the key.
    let mut fitting: Vec<(&Product, u8)> = products
        .iter()
        .filter_map(|p| p.fit.rank().map(|rank| (p, rank)))
        .collect();
    if fitting.is_empty() {
        return Err(PriceError::NotFound { key });
    }
    // A product whose every term is dated after `now` is announced for later: while
    // another product for the key has a term in effect (dated no later, or
    // undated), it is not a price now, and is left out.
    if let Some(now) = now {
        let only_ahead = |p: &Product| {
            p.terms.iter().all(|t| {
                t.date
                    .is_some_and(|d| d.parse::<DateTime<Utc>>().unwrap() > now)
            })
        };
        if fitting.iter().any(|(p, _)| !only_ahead(p)) {
            fitting.retain(|(p, _)| !only_ahead(p));
        }
    }

    struct Candidate<'a> {
        rank: u8,
        fit: Fit,
        usd: Decimal,
        product: &'a Product,
        rate_code: String,
        date: Option<&'static str>,
        free_tier: Option<String>,
    }
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    let mut zero_rows = 0usize;
    let mut zero_skus: Vec<&str> = Vec::new();
    let mut units_seen: Vec<&str> = Vec::new();
    let (mut right_unit, mut with_usd) = (0usize, 0usize);
    let mut cny = false;
    // Products priced by a term ahead of its date, and that date.
    let mut ahead: Vec<(&str, &str)> = Vec::new();

    for &(product, rank) in &fitting {
        // The terms in effect: those of the latest date not after `now` (terms of
        // one date cannot be told apart: all count, rule 6 takes the highest);
        // when every one is ahead, those of the earliest date, noted. A product
        // with an undated term cannot have its terms put in order: all of them
        // count (rule 6 then takes the highest rate, as none that may be in
        // effect is left out); no `now`: all.
        let mut terms: Vec<(usize, &Term)> = product.terms.iter().enumerate().collect();
        if let Some(now) = now
            && terms.iter().all(|(_, t)| t.date.is_some())
        {
            let date = |t: &Term| t.date.unwrap().parse::<DateTime<Utc>>().unwrap();
            let in_effect = terms
                .iter()
                .map(|(_, t)| date(t))
                .filter(|d| *d <= now)
                .max();
            let chosen = match in_effect {
                Some(chosen) => chosen,
                None => {
                    let earliest = terms.iter().min_by_key(|(_, t)| date(t)).unwrap().1;
                    ahead.push((product.sku, earliest.date.unwrap()));
                    date(earliest)
                }
            };
            terms.retain(|(_, t)| date(t) == chosen);
        }
        for (t, term) in terms {
            // Rules 2 and 3: the right unit, a USD price.
            let mut usable: Vec<(String, &Dim, Decimal)> = Vec::new();
            for (i, dim) in term.dims.iter().enumerate() {
                if !dim.right_unit {
                    if !units_seen.contains(&dim.unit) {
                        units_seen.push(dim.unit);
                    }
                    continue;
                }
                right_unit += 1;
                match dim.price.usd() {
                    Some(usd) => {
                        with_usd += 1;
                        usable.push((product.rate_code(t, i), dim, usd));
                    }
                    None => cny |= matches!(dim.price, Price::CnyOnly),
                }
            }
            // Rule 4: the tier from 0 when it is paid; after a $0 one, the first
            // paid tier, noting the free allowance not applied; only $0: $0 rows.
            let from_zero: Vec<_> = usable.iter().filter(|(_, d, _)| d.begin == 0).collect();
            if from_zero.is_empty() {
                continue;
            }
            let candidate = |(code, _, usd): &(String, &Dim, Decimal), free_tier| Candidate {
                rank,
                fit: product.fit,
                usd: *usd,
                product,
                rate_code: code.clone(),
                date: term.date,
                free_tier,
            };
            let paid_from_zero: Vec<_> = from_zero
                .iter()
                .filter(|(_, _, usd)| !usd.is_zero())
                .collect();
            if !paid_from_zero.is_empty() {
                candidates.extend(paid_from_zero.into_iter().map(|c| candidate(c, None)));
                continue;
            }
            // The first paid tier, as rule 4 writes it: the lowest beginRange with a
            // positive price; of several there, the highest price (conservative);
            // of those, the smallest rateCode (only for determinism).
            let paid: Vec<_> = usable.iter().filter(|(_, _, usd)| !usd.is_zero()).collect();
            let lowest = paid.iter().map(|(_, d, _)| d.begin).min();
            let at_lowest: Vec<_> = paid
                .iter()
                .filter(|(_, d, _)| Some(d.begin) == lowest)
                .collect();
            let highest = at_lowest.iter().map(|(_, _, usd)| *usd).max();
            let first_paid = at_lowest
                .iter()
                .filter(|(_, _, usd)| Some(*usd) == highest)
                .min_by_key(|(code, _, _)| code.clone());
            match first_paid {
                Some(first_paid) => {
                    // The allowance stated is the usage every usable tier agrees
                    // is free: each $0 tier from 0 must reach it (Inf reaches
                    // anything), and no paid tier may begin before it.
                    let bounds = from_zero.iter().filter_map(|(_, d, _)| d.end);
                    let paid_begins = paid.iter().map(|(_, d, _)| d.begin);
                    let allowance = bounds.chain(paid_begins).min().unwrap();
                    let note = format!(
                        "free tier of {allowance} {}(s) per month not applied",
                        kind.unit_word()
                    );
                    candidates.push(candidate(first_paid, Some(note)));
                }
                None => {
                    zero_rows += from_zero.len();
                    if zero_skus.last() != Some(&product.sku) {
                        zero_skus.push(product.sku);
                    }
                }
            }
        }
    }

    // Rule 5: only $0 listed is no price.
    if candidates.is_empty() && zero_rows > 0 {
        return Err(PriceError::ZeroOnly {
            reason: format!(
                "the Price List lists only $0 for {key} (SKU {}: a free-tier or bookkeeping row \
                 with no paid tier)",
                zero_skus.join(", ")
            ),
            key,
        });
    }
    if candidates.is_empty() {
        let skus: Vec<&str> = fitting.iter().map(|(p, _)| p.sku).collect();
        let head = format!(
            "{} product(s) for {key} (SKU {})",
            fitting.len(),
            skus.join(", ")
        );
        let unit = kind.price_list_unit();
        let reason = if right_unit == 0 {
            format!(
                "{head} but none priced per {unit} (units seen: {})",
                units_seen.join(", ")
            )
        } else if with_usd == 0 && cny {
            return Err(PriceError::OtherCurrency {
                key,
                currencies: "CNY".into(),
            });
        } else if with_usd == 0 {
            format!("{head} but no USD price per {unit}")
        } else {
            format!("{head} but no price tier starting at 0 {unit}")
        };
        return Err(PriceError::Malformed { reason });
    }

    // Rule 6: best fit, then the highest rate, then the smallest SKU.
    let order = |a: &Candidate<'_>, b: &Candidate<'_>| {
        a.rank
            .cmp(&b.rank)
            .then(b.usd.cmp(&a.usd))
            .then(a.product.sku.cmp(b.product.sku))
    };
    candidates.sort_by(order);
    let tied = candidates
        .iter()
        .take_while(|c| order(c, &candidates[0]).is_eq())
        .count();
    Ok((0..tied)
        .map(|b| {
            let best = &candidates[b];
            let others: Vec<_> = (0..candidates.len())
                .filter(|&i| i != b)
                .map(|i| &candidates[i])
                .collect();
            let mut parts = Vec::new();
            if !others.is_empty() {
                let same_fit = others.iter().filter(|c| c.rank == best.rank).count();
                let how = if same_fit == 0 {
                    best.fit.describe().to_owned()
                } else {
                    format!(
                        "{}; the highest of {} equally good, the conservative choice",
                        best.fit.describe(),
                        same_fit + 1
                    )
                };
                let mut over: Vec<String> = others
                    .iter()
                    .take(4)
                    .map(|c| format!("SKU {} at ${}", c.product.sku, c.usd))
                    .collect();
                if others.len() > 4 {
                    let last = over.pop().unwrap();
                    over.push(format!("{last} and {} more", others.len() - 4));
                }
                parts.push(format!(
                    "{} prices matched {key}; chose SKU {} at ${} ({how}) over {}",
                    candidates.len(),
                    best.product.sku,
                    best.usd,
                    over.join(", ")
                ));
            }
            parts.extend(best.free_tier.clone());
            if zero_rows > 0 {
                parts.push(format!("skipped {zero_rows} $0 row(s)"));
            }
            // The chosen product's date when it is not in effect yet; no other's.
            if let Some(date) = ahead.iter().find(|(sku, _)| *sku == best.product.sku) {
                parts.push(format!(
                    "SKU {}'s price is not in effect until {}",
                    date.0, date.1
                ));
            }
            Expected {
                usd: best.usd,
                sku: best.product.sku.to_owned(),
                rate_code: best.rate_code.clone(),
                effective_date: best.date.map(str::to_owned),
                note: (!parts.is_empty()).then(|| parts.join("; ")),
            }
        })
        .collect())
}

/// A document no parser can take for a product: it has no SKU.
const GARBAGE: &str = r#"{"product":{"productFamily":"ML Instance"}}"#;

/// What [`model`] expects of [`LivePrices`]: the selection, with the unreadable
/// documents noted; when nothing prices the key, the unreadable ones may have.
fn live_model(case: &Case) -> Result<Vec<Expected>, PriceError> {
    let total = case.products.len() + case.garbage;
    match model(case.kind, &case.products, Some(now())) {
        Ok(expected) if case.garbage > 0 => Ok(expected
            .into_iter()
            .map(|mut e| {
                let skipped = format!("skipped {} unreadable price document(s)", case.garbage);
                e.note = Some(match e.note {
                    Some(note) => format!("{note}; {skipped}"),
                    None => skipped,
                });
                e
            })
            .collect()),
        Err(PriceError::NotFound { key }) if case.garbage > 0 => Err(PriceError::Malformed {
            reason: format!(
                "{} of {total} price documents for {key} could not be read; first: price \
                 document has no `product.sku`",
                case.garbage
            ),
        }),
        other => other,
    }
}

fn check_selection(
    got: Result<super::document::Selection, PriceError>,
    want: Result<Vec<Expected>, PriceError>,
) -> Result<(), TestCaseError> {
    match (got, want) {
        (Ok(got), Ok(want)) => {
            let got = Expected {
                usd: got.usd_per_unit,
                sku: got.sku,
                rate_code: got.rate_code,
                effective_date: got.effective_date,
                note: got.reason,
            };
            prop_assert!(!got.usd.is_zero(), "a $0 rate was chosen: {got:?}");
            prop_assert!(
                want.contains(&got),
                "chose {got:#?}\nexpected one of {want:#?}"
            );
        }
        (got, want) => prop_assert_eq!(got.map(|_| ()), want.map(|_| ())),
    }
    Ok(())
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

/// [`LivePrices`] whose `GetProducts` answers `docs`, on a clock at [`now`].
fn live_answering(docs: Vec<String>) -> LivePrices {
    use aws_sdk_pricing::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_pricing::operation::get_products::GetProductsOutput;
    use aws_smithy_async::time::{SharedTimeSource, StaticTimeSource};
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};

    let rule = mock!(aws_sdk_pricing::Client::get_products).then_output(move || {
        GetProductsOutput::builder()
            .set_price_list(Some(docs.clone()))
            .build()
    });
    let config = aws_sdk_pricing::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(create_mock_http_client())
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .time_source(SharedTimeSource::new(StaticTimeSource::new(now().into())))
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
        .build();
    LivePrices::from_client(aws_sdk_pricing::Client::from_conf(config))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `select_rate_at`, as of a date and with every term counted, chooses what the
    /// documented rules choose, never a $0 rate, and never panics.
    #[test]
    fn the_chosen_rate_and_its_note_follow_the_documented_rules(case in case()) {
        let docs: Vec<_> = case
            .products
            .iter()
            .map(|p| parse_price_document(&p.json(case.kind)).unwrap())
            .collect();
        let key = case.kind.key();
        for at in [Some(now()), None] {
            check_selection(select_rate_at(&key, &docs, at), model(case.kind, &case.products, at))?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The live source (a mocked `GetProducts` answer, unreadable documents in it)
    /// gives the chosen rate with its note, or the model's error; `compare` takes
    /// that rate or refuses the plan with that error, never at $0.
    #[test]
    fn live_prices_and_compare_give_the_documented_rate_or_reason(case in case()) {
        let mut docs: Vec<String> = case.products.iter().map(|p| p.json(case.kind)).collect();
        docs.extend(std::iter::repeat_n(GARBAGE.to_owned(), case.garbage));
        let key = case.kind.key();
        let want = live_model(&case);
        let live = live_answering(docs);
        let got = RUNTIME.block_on(live.price(&key));
        match (&got, &want) {
            (Ok(rate), Ok(want)) => {
                prop_assert_eq!(rate.provenance.source, PriceOrigin::Live);
                let got = Expected {
                    usd: rate.usd_per_unit,
                    sku: rate.provenance.sku.as_deref().unwrap_or_default().to_owned(),
                    rate_code: String::new(),
                    effective_date: rate.provenance.effective_date.as_deref().map(str::to_owned),
                    note: rate.provenance.note.as_deref().map(str::to_owned),
                };
                prop_assert!(
                    want.iter().any(|w| Expected { rate_code: String::new(), ..w.clone() } == got),
                    "live gave {got:#?}\nexpected one of {want:#?}"
                );
            }
            (got, want) => prop_assert_eq!(got.clone().map(|_| ()), want.clone().map(|_| ())),
        }
        // What an unpriced line would say of a $0-only answer.
        if let Err(e @ PriceError::ZeroOnly { .. }) = &got {
            prop_assert!(e.to_string().ends_with("; not priced at $0"), "{e}");
        }

        let plan = match case.kind {
            Kind::Hosting => Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
            Kind::Serverless => Plan::from(ServerlessPlan::new(2048).unwrap()),
            Kind::DataOut => return Ok(()),
        };
        let profile = UsageProfile::builder()
            .calls_per_period(1000)
            .mean_latency(std::time::Duration::from_millis(100))
            .build()
            .unwrap();
        let mut table = RateTable::new("us-east-1");
        let filled = RUNTIME.block_on(table.fill_from(&live, std::slice::from_ref(&plan), &profile));
        match (filled, &want) {
            (Ok(()), Ok(want)) => {
                let rate = table.get(&key).unwrap();
                prop_assert!(want.iter().any(|w| w.usd == rate.usd_per_unit), "{rate:?}");
            }
            (Err(CompareError::MissingRate { key: k, reason, .. }), Err(e)) => {
                prop_assert_eq!(k, key);
                prop_assert_eq!(reason, e.to_string());
            }
            (filled, want) => prop_assert!(false, "compare: {filled:?}, expected {want:?}"),
        }
    }
}

/// A snapshot row: price text and value, as_of, source.
type Row = ((&'static str, Decimal), &'static str, &'static str);

fn snapshot_rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                ("0", Decimal::ZERO),
                ("0.0000000000", Decimal::ZERO),
                ("0.00004", Decimal::new(4, 5)),
                ("0.0000350000", Decimal::new(35, 6)),
                ("0.00005", Decimal::new(5, 5)),
            ]),
            prop::sample::select(vec!["2025-12-31", "2026-05-08", "2026-09-01"]),
            prop::sample::select(vec!["a", "b"]),
        ),
        1..=4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A snapshot's rows for a key: the newest positive row (the higher price
    /// between rows of one date, the first of equal ones), $0 rows skipped; only
    /// $0 rows is no price, naming the first of them.
    #[test]
    fn snapshot_rows_follow_the_same_zero_rule(rows in snapshot_rows()) {
        let key = Kind::Serverless.key();
        let mut tsv = String::from(
            "region\tkind\tkey\tunit\tusd\tsource\tas_of\n\
             us-east-1\thosting\tml.m5.xlarge\tHrs\t0.23\tother\t2026-05-20\n",
        );
        for ((text, _), as_of, source) in &rows {
            tsv.push_str(&format!("us-east-1\tserverless\tMem-2GB\tsecond\t{text}\t{source}\t{as_of}\n"));
        }
        let snapshot = Snapshot::from_tsv(&tsv).unwrap();
        let mut best: Option<&Row> = None;
        for row in &rows {
            let ((_, usd), as_of, _) = row;
            if usd.is_zero() {
                continue;
            }
            if best.is_none_or(|((_, b), b_as_of, _)| (as_of, usd) > (b_as_of, b)) {
                best = Some(row);
            }
        }
        match best {
            Some(((_, usd), as_of, source)) => {
                let rate = snapshot.get(&key).unwrap();
                prop_assert_eq!(rate.usd_per_unit, *usd);
                prop_assert_eq!(rate.provenance.effective_date.as_deref(), Some(*as_of));
                let note = format!("price snapshot given to Snapshot::from_tsv (as of {as_of}, from {source})");
                prop_assert_eq!(rate.provenance.note.as_deref(), Some(note.as_str()));
            }
            None => {
                // Lines 1 and 2 are the header and the hosting row.
                let ((_, _), as_of, source) = rows[0];
                prop_assert_eq!(snapshot.get(&key), Err(PriceError::ZeroOnly {
                    key: key.clone(),
                    reason: format!(
                        "the price snapshot given to Snapshot::from_tsv lists only $0 for {key} \
                         (line 3, from {source}, as of {as_of})"
                    ),
                }));
            }
        }
    }
}

/// Every row the bundled snapshot has for a key it prices gives a positive rate,
/// one of the key's listed prices: the bundled fallback never prices at $0.
#[test]
fn the_bundled_snapshot_never_gives_a_zero_rate() {
    let tsv = include_str!("../../data/sagemaker-on-demand-usd.tsv");
    let snapshot = Snapshot::bundled();
    let mut checked = BTreeSet::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("region\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let key = match (
            cols[1],
            cols[2]
                .strip_prefix("Mem-")
                .and_then(|m| m.strip_suffix("GB")),
        ) {
            ("hosting", _) => PriceKey::hosting(cols[0], cols[2]),
            ("serverless", Some(gb)) => PriceKey::serverless(cols[0], gb.parse().unwrap()),
            ("data_in", _) => PriceKey::DataIn {
                region: cols[0].into(),
            },
            ("data_out", _) => PriceKey::DataOut {
                region: cols[0].into(),
            },
            ("storage", _) => PriceKey::storage(cols[0]),
            _ => continue,
        };
        let listed: Vec<Decimal> = tsv
            .lines()
            .filter_map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c.len() > 4 && c[..4] == cols[..4])
                    .then(|| c[4].parse::<Decimal>().unwrap().normalize())
            })
            .collect();
        let rate = snapshot.get(&key).unwrap();
        assert!(!rate.usd_per_unit.is_zero(), "{key}: {rate:?}");
        assert!(
            listed.contains(&rate.usd_per_unit.normalize()),
            "{key}: {rate:?} not in {listed:?}"
        );
        checked.insert(key.to_string());
    }
    assert!(checked.len() > 100, "only {} keys checked", checked.len());
}
