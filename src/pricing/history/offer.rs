//! One version of a region's price list, read as a stream.
//!
//! An offer file (what `GetPriceListFileUrl` points to, format `json`) holds every
//! SageMaker product of a region and its terms, a few MB:
//!
//! ```text
//! { "formatVersion": "v1.0", "offerCode": "AmazonSageMaker", "version": "20250301000000",
//!   "publicationDate": "2025-03-01T00:00:00Z",
//!   "products": { "<SKU>": { "sku", "productFamily", "attributes": {…} }, … },
//!   "terms": { "OnDemand": { "<SKU>": { "<SKU>.<offerTermCode>": { "effectiveDate",
//!              "priceDimensions": {…} } } }, "Reserved": {…} } }
//! ```
//!
//! The file is read value by value: each product is decoded, tested against the
//! [`OfferFilter`], and dropped unless it is a candidate; then only the candidates'
//! on-demand terms are decoded, every other term skipped unread. Memory is what the
//! candidates take, whatever the size of the file. Each candidate then becomes the
//! same document `GetProducts` answers with, so [`select_rate_at`](super::super::document)
//! chooses among them exactly as it does for live prices.

use super::super::document::{PriceDocument, clip, may_price, parse_price_value};
use super::super::live::filter_pairs;
use super::super::{PriceError, PriceKey};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

/// Which products of an offer file are candidates.
///
/// The same pairs the live look-up sends as `GetProducts` filters (a product's
/// `productFamily`, else an attribute, equal to a value), and optionally an
/// instance-name prefix for a whole family (`ml.g5.`); then, of the products they
/// keep, only those whose attributes say they may price what is asked (the live
/// rate selection's rule: an `ml.m5.xlarge` Training product has the hosting key's
/// region and instance name, and never prices it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferFilter {
    pairs: Vec<(&'static str, String)>,
    instance_prefix: Option<String>,
    prices: Prices,
}

/// What a candidate must be able to price.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Prices {
    /// This key.
    Key(PriceKey),
    /// A family: hosting, in this region, of the instance the product names.
    HostingIn(String),
}

impl OfferFilter {
    /// The products a live look-up of `key` would consider.
    pub(crate) fn for_key(key: &PriceKey) -> Self {
        OfferFilter {
            pairs: filter_pairs(key),
            instance_prefix: None,
            prices: Prices::Key(key.clone()),
        }
    }

    /// Every instance product of a family in a region: `instanceName` starting with
    /// `ml.<family>.` (`ml.g5` → `ml.g5.xlarge`, `ml.g5.2xlarge`, …).
    pub(crate) fn for_family(region: &str, family: &str) -> Self {
        let family = family.trim_end_matches('.');
        OfferFilter {
            pairs: vec![("regionCode", region.to_owned())],
            instance_prefix: Some(format!("{family}.")),
            prices: Prices::HostingIn(region.to_owned()),
        }
    }

    /// Whether `product` is a candidate. An offer file is one region's, so a product
    /// that names no `regionCode` (older versions may leave the attribute out) is
    /// that region's; one that names another region is not. (`GetProducts` filters
    /// server-side and is not loosened: there the pairs are sent as they are.)
    fn wants(&self, product: &Value) -> bool {
        let field = |name: &str| match name {
            "productFamily" | "sku" => product[name].as_str(),
            _ => product["attributes"][name].as_str(),
        };
        self.pairs.iter().all(|(name, value)| match field(name) {
            None if *name == "regionCode" => true,
            // As the rate's selection reads it: a region code in another case is
            // the same region.
            Some(found) if *name == "regionCode" => found.eq_ignore_ascii_case(value),
            found => found == Some(value.as_str()),
        }) && self
            .instance_prefix
            .as_deref()
            .is_none_or(|prefix| field("instanceName").is_some_and(|name| name.starts_with(prefix)))
            && self.may_price(product)
    }

    /// Whether `product`'s attributes say it may price what is asked, decided before
    /// its prices are read (see [`may_price`]): a product that cannot be read makes
    /// a version's rates unknown only when it could have priced them. One whose
    /// attributes cannot be read either (no SKU, say) may: it is kept, and found
    /// unreadable.
    fn may_price(&self, product: &Value) -> bool {
        let Ok(doc) = parse_price_value(&json!({ "product": product })) else {
            return true;
        };
        match &self.prices {
            Prices::Key(key) => may_price(key, &doc),
            Prices::HostingIn(region) => doc
                .attribute("instanceName")
                .is_some_and(|name| may_price(&PriceKey::hosting(region.clone(), name), &doc)),
        }
    }
}

/// What one offer file holds for a filter.
#[derive(Debug, Default)]
pub(crate) struct Offer {
    /// The file's `version` (e.g. `20250301000000`).
    pub(crate) version: Option<String>,
    /// The file's `publicationDate` (e.g. `2025-03-01T00:00:00Z`).
    pub(crate) publication_date: Option<String>,
    /// Products in the file, candidates or not.
    pub(crate) products_read: u64,
    /// The candidates, each with its on-demand terms, as `GetProducts` documents.
    pub(crate) documents: Vec<PriceDocument>,
    /// Candidates that could not be read as price documents (why, by SKU).
    pub(crate) unreadable: Vec<String>,
}

/// Why an offer file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OfferError {
    /// Not JSON, or cut short: serde_json's words, with the line and column.
    Syntax(String),
    /// JSON, but not an offer file this reader understands.
    Shape(String),
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferError::Syntax(why) if why.starts_with("EOF") => {
                write!(f, "the file is cut short ({why})")
            }
            OfferError::Syntax(why) => write!(f, "the file is not valid JSON ({why})"),
            OfferError::Shape(why) => write!(f, "not an AmazonSageMaker offer file: {why}"),
        }
    }
}

/// Reads an offer file from `reader` (buffer it: serde_json reads byte by byte) and
/// keeps what `filter` wants.
pub(crate) fn read_offer(reader: impl Read, filter: &OfferFilter) -> Result<Offer, OfferError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let raw = de
        .deserialize_map(OfferVisitor { filter })
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => OfferError::Shape(e.to_string()),
            _ => OfferError::Syntax(e.to_string()),
        })?;
    de.end().map_err(|e| OfferError::Syntax(e.to_string()))?;
    if raw.terms_before_products {
        return Err(OfferError::Shape(
            "`terms` comes before `products`; this reader keeps only the candidates' terms, \
             so it needs the products first (as AWS writes them)"
                .into(),
        ));
    }
    // Any other JSON object (`{}`, a proxy's `{"message": "ok"}`) is no offer file:
    // read as one it would list no product, and be kept as a version that
    // dropped every price.
    match raw.offer_code.as_deref() {
        Some("AmazonSageMaker") => {}
        Some(code) => {
            return Err(OfferError::Shape(format!(
                "its offerCode is `{}`",
                clip(code)
            )));
        }
        None => return Err(OfferError::Shape("it has no offerCode".into())),
    }
    if !raw.seen_products {
        return Err(OfferError::Shape("it has no `products`".into()));
    }

    let mut offer = Offer {
        version: raw.version,
        publication_date: raw.publication_date,
        products_read: raw.products_read,
        ..Offer::default()
    };
    let mut terms = raw.on_demand;
    for (sku, product) in raw.products {
        let on_demand = terms
            .remove(&sku)
            .unwrap_or_else(|| Value::Object(Map::new()));
        let document = json!({
            "product": product,
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": on_demand },
        });
        match parse_price_value(&document) {
            Ok(doc) => offer.documents.push(doc),
            Err(PriceError::Malformed { reason }) => offer.unreadable.push(reason),
            Err(other) => offer.unreadable.push(other.to_string()),
        }
    }
    Ok(offer)
}

#[derive(Default)]
struct RawOffer {
    version: Option<String>,
    publication_date: Option<String>,
    offer_code: Option<String>,
    products_read: u64,
    /// Candidate products by SKU.
    products: BTreeMap<String, Value>,
    /// The candidates' `terms.OnDemand.<SKU>` objects.
    on_demand: BTreeMap<String, Value>,
    terms_before_products: bool,
    /// Whether the file has `products` (an empty object is a file of no product).
    seen_products: bool,
}

struct OfferVisitor<'f> {
    filter: &'f OfferFilter,
}

impl<'de> Visitor<'de> for OfferVisitor<'_> {
    type Value = RawOffer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an offer file (a JSON object with `products` and `terms`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawOffer, A::Error> {
        let mut raw = RawOffer::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => raw.version = map.next_value()?,
                "publicationDate" => raw.publication_date = map.next_value()?,
                "offerCode" => raw.offer_code = map.next_value()?,
                "products" => {
                    raw.seen_products = true;
                    map.next_value_seed(Products {
                        filter: self.filter,
                        raw: &mut raw,
                    })?;
                }
                "terms" => {
                    if !raw.seen_products {
                        raw.terms_before_products = true;
                    }
                    map.next_value_seed(Terms { raw: &mut raw })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// `products`: each product decoded, kept only if the filter wants it.
struct Products<'a, 'f> {
    filter: &'f OfferFilter,
    raw: &'a mut RawOffer,
}

impl<'de> DeserializeSeed<'de> for Products<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Products<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`products`: an object of products by SKU")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(sku) = map.next_key::<String>()? {
            let product: Value = map.next_value()?;
            self.raw.products_read += 1;
            if self.filter.wants(&product) {
                self.raw.products.insert(sku, product);
            }
        }
        Ok(())
    }
}

/// `terms`: only `OnDemand`, and only the candidates' entries of it.
struct Terms<'a> {
    raw: &'a mut RawOffer,
}

impl<'de> DeserializeSeed<'de> for Terms<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Terms<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`terms`: an object of term kinds")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(kind) = map.next_key::<String>()? {
            if kind == "OnDemand" {
                map.next_value_seed(OnDemand {
                    raw: &mut *self.raw,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct OnDemand<'a> {
    raw: &'a mut RawOffer,
}

impl<'de> DeserializeSeed<'de> for OnDemand<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OnDemand<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`terms.OnDemand`: an object of terms by SKU")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(sku) = map.next_key::<String>()? {
            if self.raw.products.contains_key(&sku) {
                let terms: Value = map.next_value()?;
                self.raw.on_demand.insert(sku, terms);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::peak_held_during;

    fn product(sku: &str, instance: &str, component: &str) -> String {
        format!(
            r#""{sku}": {{ "sku": "{sku}", "productFamily": "ML Instance", "attributes": {{
                "regionCode": "us-east-1", "instanceName": "{instance}", "component": "{component}",
                "usagetype": "USE1-Host:{instance}", "vCpu": "4", "gpu": "1", "memory": "16 GiB" }} }}"#
        )
    }

    fn on_demand(sku: &str, usd: &str) -> String {
        format!(
            r#""{sku}": {{ "{sku}.JRTCKXETXF": {{ "sku": "{sku}", "offerTermCode": "JRTCKXETXF",
                "effectiveDate": "2025-03-01T00:00:00Z", "termAttributes": {{}},
                "priceDimensions": {{ "{sku}.JRTCKXETXF.6YS6EN2CT7": {{
                    "rateCode": "{sku}.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs", "beginRange": "0",
                    "endRange": "Inf", "description": "${usd} per Hosting {sku}",
                    "pricePerUnit": {{ "USD": "{usd}" }} }} }} }} }}"#
        )
    }

    fn small_offer() -> String {
        format!(
            r#"{{ "formatVersion": "v1.0", "offerCode": "AmazonSageMaker",
                "version": "20250301000000", "publicationDate": "2025-03-01T00:00:00Z",
                "products": {{ {}, {}, {} }},
                "terms": {{ "OnDemand": {{ {}, {}, {} }},
                            "Reserved": {{ "A": {{ "x": {{ "y": 1 }} }} }} }} }}"#,
            product("A", "ml.g5.xlarge", "Hosting"),
            product("B", "ml.g5.2xlarge", "Hosting"),
            product("C", "ml.m5.large", "Hosting"),
            on_demand("A", "1.4080000000"),
            on_demand("B", "1.5150000000"),
            on_demand("C", "0.1150000000"),
        )
    }

    #[test]
    fn keeps_only_the_candidates_with_their_on_demand_terms() {
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        let offer = read_offer(small_offer().as_bytes(), &OfferFilter::for_key(&key)).unwrap();
        assert_eq!(offer.version.as_deref(), Some("20250301000000"));
        assert_eq!(
            offer.publication_date.as_deref(),
            Some("2025-03-01T00:00:00Z")
        );
        assert_eq!(offer.products_read, 3);
        assert_eq!(offer.documents.len(), 1);
        let doc = &offer.documents[0];
        assert_eq!(doc.sku, "A");
        assert_eq!(doc.on_demand.len(), 1);
        assert_eq!(
            doc.on_demand[0].dimensions[0].usd_per_unit,
            Some("1.408".parse().unwrap())
        );

        let family = read_offer(
            small_offer().as_bytes(),
            &OfferFilter::for_family("us-east-1", "ml.g5"),
        )
        .unwrap();
        let skus: Vec<&str> = family.documents.iter().map(|d| d.sku.as_str()).collect();
        assert_eq!(skus, ["A", "B"]);
    }

    /// A Training product of the same instance name is no candidate for hosting, by
    /// key or by family, even when its price cannot be read: only a product that may
    /// price what is asked can make its rates unknown.
    #[test]
    fn a_training_product_is_no_candidate_for_hosting_even_unreadable() {
        let file = format!(
            r#"{{ "offerCode": "AmazonSageMaker", "version": "20250301000000",
                "products": {{ {}, {} }},
                "terms": {{ "OnDemand": {{ {}, {} }} }} }}"#,
            product("A", "ml.g5.xlarge", "Hosting"),
            product("T", "ml.g5.xlarge", "Training")
                .replace("USE1-Host:ml.g5.xlarge", "USE1-Train:ml.g5.xlarge"),
            on_demand("A", "1.4080000000"),
            on_demand("T", "1.4080000000x"),
        );
        only_product_a_is_us_east_1s_g5_xlarge_at_1_408(&file);
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        for filter in [
            OfferFilter::for_key(&key),
            OfferFilter::for_family("us-east-1", "ml.g5"),
        ] {
            let offer = read_offer(file.as_bytes(), &filter).unwrap();
            assert!(offer.unreadable.is_empty(), "{:?}", offer.unreadable);
        }
        // The same unreadable price on a hosting product: it may be the rate.
        let hosting_too = file
            .replace(r#""component": "Training""#, r#""component": "Hosting""#)
            .replace("USE1-Train:", "USE1-Host:");
        let offer = read_offer(hosting_too.as_bytes(), &OfferFilter::for_key(&key)).unwrap();
        assert_eq!(offer.unreadable.len(), 1, "{:?}", offer.unreadable);
    }

    /// In `file`, product A alone is a candidate for us-east-1's ml.g5.xlarge (by
    /// key and by family), and its rate is the one selected: $1.408 an hour.
    fn only_product_a_is_us_east_1s_g5_xlarge_at_1_408(file: &str) {
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        for filter in [
            OfferFilter::for_key(&key),
            OfferFilter::for_family("us-east-1", "ml.g5"),
        ] {
            let offer = read_offer(file.as_bytes(), &filter).unwrap();
            let skus: Vec<&str> = offer.documents.iter().map(|d| d.sku.as_str()).collect();
            assert_eq!(skus, ["A"], "{filter:?}");
        }
        let offer = read_offer(file.as_bytes(), &OfferFilter::for_key(&key)).unwrap();
        let chosen =
            crate::pricing::document::select_rate_at(&key, &offer.documents, None).unwrap();
        assert_eq!(chosen.usd_per_unit, "1.408".parse().unwrap());
    }

    /// A product whose `regionCode` is written in another case (`US-EAST-1`) is the
    /// region's candidate, as the rate's selection (which ignores the case) takes it.
    #[test]
    fn a_region_code_in_another_case_is_the_same_region() {
        let upper = product("A", "ml.g5.xlarge", "Hosting").replace(
            r#""regionCode": "us-east-1""#,
            r#""regionCode": "US-EAST-1""#,
        );
        assert!(upper.contains("US-EAST-1"));
        let file = format!(
            r#"{{ "offerCode": "AmazonSageMaker", "version": "20220101000000",
                "products": {{ {upper} }},
                "terms": {{ "OnDemand": {{ {} }} }} }}"#,
            on_demand("A", "1.4080000000"),
        );
        only_product_a_is_us_east_1s_g5_xlarge_at_1_408(&file);
    }

    /// An offer file is one region's: a product without `regionCode` (older price
    /// list versions may leave it out) is a candidate; one naming another region is
    /// not.
    #[test]
    fn a_product_without_a_region_code_is_the_files_regions() {
        let without =
            product("A", "ml.g5.xlarge", "Hosting").replace(r#""regionCode": "us-east-1", "#, "");
        let elsewhere = product("B", "ml.g5.xlarge", "Hosting").replace(
            r#""regionCode": "us-east-1""#,
            r#""regionCode": "eu-west-1""#,
        );
        assert!(!without.contains("regionCode") && elsewhere.contains("eu-west-1"));
        let file = format!(
            r#"{{ "offerCode": "AmazonSageMaker", "version": "20220101000000",
                "products": {{ {without}, {elsewhere} }},
                "terms": {{ "OnDemand": {{ {}, {} }} }} }}"#,
            on_demand("A", "1.4080000000"),
            on_demand("B", "1.5840000000"),
        );
        only_product_a_is_us_east_1s_g5_xlarge_at_1_408(&file);
    }

    #[test]
    fn a_file_cut_short_says_so_with_its_place() {
        let text = small_offer();
        let cut = &text[..text.len() * 2 / 3];
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        let err = read_offer(cut.as_bytes(), &OfferFilter::for_key(&key)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("the file is cut short (EOF while parsing"),
            "{message}"
        );
        assert!(message.contains("line "), "{message}");
    }

    #[test]
    fn not_an_offer_file_is_refused_with_why() {
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        let filter = OfferFilter::for_key(&key);
        let err = read_offer(&b"[1, 2]"[..], &filter).unwrap_err();
        assert!(matches!(err, OfferError::Shape(_)), "{err:?}");
        let err = read_offer(&b"<html>"[..], &filter).unwrap_err();
        assert!(matches!(err, OfferError::Syntax(_)), "{err:?}");
        let ec2 = br#"{"offerCode": "AmazonEC2", "products": {}, "terms": {}}"#;
        assert_eq!(
            read_offer(&ec2[..], &filter).unwrap_err().to_string(),
            "not an AmazonSageMaker offer file: its offerCode is `AmazonEC2`"
        );
        // Any JSON object is not an offer file: one from a proxy or a captive
        // portal would read as a version listing nothing.
        for (body, why) in [
            (&b"{}"[..], "it has no offerCode"),
            (&br#"{"message":"ok"}"#[..], "it has no offerCode"),
            (
                &br#"{"offerCode": "AmazonSageMaker", "version": "20250301000000"}"#[..],
                "it has no `products`",
            ),
        ] {
            let err = read_offer(body, &filter).unwrap_err();
            assert_eq!(
                err,
                OfferError::Shape(why.into()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let reversed = format!(
            r#"{{"terms": {{"OnDemand": {{ {} }} }}, "products": {{ {} }} }}"#,
            on_demand("A", "1.0"),
            product("A", "ml.g5.xlarge", "Hosting")
        );
        let err = read_offer(reversed.as_bytes(), &filter).unwrap_err();
        assert!(
            err.to_string().contains("`terms` comes before `products`"),
            "{err}"
        );
    }

    /// An offer file of `products` products, generated as it is read (never whole in
    /// memory), with one candidate among them.
    struct Generated {
        products: usize,
        part: Part,
        index: usize,
        pending: Vec<u8>,
        at: usize,
    }

    #[derive(PartialEq)]
    enum Part {
        Head,
        Products,
        Middle,
        Terms,
        Tail,
        Done,
    }

    impl Generated {
        fn new(products: usize) -> Self {
            Generated {
                products,
                part: Part::Head,
                index: 0,
                pending: Vec::new(),
                at: 0,
            }
        }

        fn sku(i: usize) -> String {
            format!("SKU{i:013}")
        }

        fn refill(&mut self) {
            self.pending.clear();
            self.at = 0;
            let comma = |i: usize| if i == 0 { "" } else { "," };
            match self.part {
                Part::Head => {
                    self.pending.extend_from_slice(
                        br#"{"formatVersion":"v1.0","offerCode":"AmazonSageMaker","version":"20250301000000","products":{"#,
                    );
                    self.part = Part::Products;
                }
                Part::Products if self.index < self.products => {
                    let i = self.index;
                    // The candidate sits in the middle; the others are other instances.
                    let instance = if i == self.products / 2 {
                        "ml.g5.xlarge".to_owned()
                    } else {
                        format!("ml.x{}.large", i % 1000)
                    };
                    let text = format!(
                        "{}{}",
                        comma(i),
                        product(&Self::sku(i), &instance, "Hosting")
                    );
                    self.pending.extend_from_slice(text.as_bytes());
                    self.index += 1;
                }
                Part::Products => {
                    self.index = 0;
                    self.part = Part::Middle;
                }
                Part::Middle => {
                    self.pending
                        .extend_from_slice(br#"},"terms":{"OnDemand":{"#);
                    self.part = Part::Terms;
                }
                Part::Terms if self.index < self.products => {
                    let i = self.index;
                    let text = format!("{}{}", comma(i), on_demand(&Self::sku(i), "1.4080000000"));
                    self.pending.extend_from_slice(text.as_bytes());
                    self.index += 1;
                }
                Part::Terms => self.part = Part::Tail,
                Part::Tail => {
                    self.pending.extend_from_slice(b"}}}");
                    self.part = Part::Done;
                }
                Part::Done => {}
            }
        }
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.at == self.pending.len() {
                if self.part == Part::Done {
                    return Ok(0);
                }
                self.refill();
            }
            let n = buf.len().min(self.pending.len() - self.at);
            buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn memory_stays_bounded_on_a_large_file() {
        // 60,000 products and their terms: about 60 MB of JSON, ten times a real
        // region's SageMaker file.
        let products = 60_000;
        let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        let filter = OfferFilter::for_key(&key);
        let mut bytes = 0u64;
        let counted = CountingReader {
            inner: Generated::new(products),
            bytes: &mut bytes,
        };
        let reader = std::io::BufReader::with_capacity(64 * 1024, counted);
        let (offer, peak) = peak_held_during(|| read_offer(reader, &filter).unwrap());

        assert_eq!(offer.products_read, products as u64);
        assert_eq!(offer.documents.len(), 1);
        assert_eq!(offer.documents[0].sku, Generated::sku(products / 2));
        assert!(bytes > 50_000_000, "the file was {bytes} bytes");
        // The 64 KiB read buffer, one product or term at a time and the candidate:
        // far below 1% of the file.
        assert!(
            peak < 512 * 1024,
            "reading {bytes} bytes held up to {peak} bytes at once"
        );
    }

    struct CountingReader<'a, R> {
        inner: R,
        bytes: &'a mut u64,
    }

    impl<R: Read> Read for CountingReader<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            *self.bytes += n as u64;
            Ok(n)
        }
    }
}
