//! Price List documents: parse one `GetProducts` element, then pick the rate for a key.

use super::{MAX_SANE_USD_PER_UNIT, PriceError, PriceKey, PriceUnit};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One parsed Price List product document (format `aws_v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PriceDocument {
    /// `product.sku`.
    pub(crate) sku: String,
    /// `product.productFamily`, e.g. `ML Instance`, `ML Serverless`.
    pub(crate) product_family: Option<String>,
    /// Top-level `serviceCode`, e.g. `AmazonSageMaker`.
    pub(crate) service_code: Option<String>,
    /// `product.attributes`, as written (names are case-sensitive).
    pub(crate) attributes: BTreeMap<String, String>,
    /// `terms.OnDemand.*`. Empty when the product has no on-demand term.
    pub(crate) on_demand: Vec<OnDemandTerm>,
}

/// One on-demand term of a product (`terms.OnDemand.<sku>.<offerTermCode>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OnDemandTerm {
    /// `offerTermCode` (the part after the SKU in the term's key when absent).
    pub(crate) offer_term_code: Option<String>,
    /// `effectiveDate`, as written (e.g. `2026-05-01T00:00:00Z`).
    pub(crate) effective_date: Option<String>,
    /// `priceDimensions.*`.
    pub(crate) dimensions: Vec<PriceDimension>,
}

/// One price dimension of a term: a rate for one usage range in one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PriceDimension {
    /// `rateCode` (the dimension's key when absent).
    pub(crate) rate_code: String,
    /// `unit`, as written (`Hrs`, `GB`, `Quantity`, ...).
    pub(crate) unit: String,
    /// `beginRange`: usage from which this rate applies (0 when absent).
    pub(crate) begin_range: Decimal,
    /// `endRange`: usage up to which this rate applies; `None` for `"Inf"` (unbounded).
    pub(crate) end_range: Option<Decimal>,
    /// `pricePerUnit.USD`; `None` when the dimension is priced in another currency only.
    pub(crate) usd_per_unit: Option<Decimal>,
    /// The other currencies of `pricePerUnit` when it has no USD (`CNY`), for the
    /// error; at most [`MAX_CURRENCIES_KEPT`].
    pub(crate) other_currencies: Vec<String>,
    /// `description`, e.g. `$0.23 per Hosting ml.m5.xlarge hour in US East (N. Virginia)`.
    pub(crate) description: Option<String>,
}

impl PriceDocument {
    /// A product attribute by its exact name (`instanceName`, `component`, `usagetype`, ...).
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// The rate [`select_rate_at`] chose, with what provenance needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    /// USD per unit of the key (hour, second or GB; see [`PriceKey::unit`]).
    pub(crate) usd_per_unit: Decimal,
    /// SKU of the chosen product.
    pub(crate) sku: String,
    /// Rate code of the chosen price dimension.
    pub(crate) rate_code: String,
    /// `effectiveDate` of the chosen on-demand term.
    pub(crate) effective_date: Option<String>,
    /// The dimension's description, as AWS wrote it.
    pub(crate) description: Option<String>,
    /// Why this product was chosen when more than one matched (goes into
    /// [`Provenance::note`](super::Provenance::note)); `None` when the choice was unambiguous.
    pub(crate) reason: Option<String>,
}

fn malformed(reason: impl Into<String>) -> PriceError {
    PriceError::Malformed {
        reason: reason.into(),
    }
}

/// Parses one `PriceList` element (a JSON string) into a [`PriceDocument`].
///
/// Strict where a wrong reading would mis-price (a price that is not a decimal string, a
/// negative price, a term without dimensions), liberal where nothing is lost (absent
/// optional fields, unknown extra fields, non-string scalar attributes). Never panics.
///
/// Each element of `GetProducts`' `PriceList` is a JSON *string* holding one product:
///
/// ```text
/// { "product": { "sku", "productFamily", "attributes": { "instanceName", "component",
///                "usagetype", "regionCode", ... } },
///   "serviceCode": "AmazonSageMaker",
///   "terms": { "OnDemand": { "<sku>.<offerTermCode>": { "effectiveDate",
///              "priceDimensions": { "<rateCode>": { "unit", "beginRange", "endRange",
///                                   "pricePerUnit": { "USD": "0.2300000000" }, ... } } } } } }
/// ```
///
/// Prices are read from their strings straight into [`Decimal`], never through `f64`.
/// [`select_rate_at`] then picks, among many documents, the one rate a [`PriceKey`] means.
/// One instance name has a product per SageMaker component (Hosting, Training, Notebook,
/// Studio, upfront fees, ...), so the selection is deliberate and says why it chose what
/// it chose. SKUs and rate codes are never hard-coded: products are recognised by their
/// attributes (`component`, `usagetype`, `instanceName`, `productFamily`) and unit.
///
/// `tests::one_hosting_document_gives_its_hourly_rate` shows one such element read
/// and chosen.
pub(crate) fn parse_price_document(json: &str) -> Result<PriceDocument, PriceError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| malformed(format!("price list element is not JSON ({e})")))?;
    parse_price_value(&value)
}

/// Parses an already-decoded `PriceList` element (see [`parse_price_document`]).
pub(crate) fn parse_price_value(value: &Value) -> Result<PriceDocument, PriceError> {
    let root = value
        .as_object()
        .ok_or_else(|| malformed("price list element is not a JSON object"))?;
    let product = root
        .get("product")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("price document has no `product` object"))?;
    let sku = product
        .get("sku")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("price document has no `product.sku`"))?
        .to_owned();
    // AWS's SKUs are 16 characters; one of kilobytes would be carried on every
    // receipt priced by it.
    if sku.len() > MAX_NAME_BYTES {
        return Err(malformed(format!(
            "price document's `product.sku` is {} bytes long: not a SKU",
            sku.len()
        )));
    }
    let product_family = optional_str(product, "productFamily", &sku)?;
    let service_code = optional_str(root, "serviceCode", &sku)?;

    let mut attributes = BTreeMap::new();
    match product.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                // Attributes are strings in `aws_v1`; keep other scalars as their text,
                // ignore nested values (they never name what a product prices).
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Null | Value::Array(_) | Value::Object(_) => continue,
                };
                attributes.insert(name.clone(), text);
            }
        }
        Some(_) => {
            return Err(malformed(format!(
                "`product.attributes` of SKU {sku} is not an object"
            )));
        }
    }

    let on_demand = match root.get("terms") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(terms)) => match terms.get("OnDemand") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(od)) => od
                .iter()
                .map(|(term_key, term)| parse_term(&sku, term_key, term))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(malformed(format!(
                    "`terms.OnDemand` of SKU {sku} is not an object"
                )));
            }
        },
        Some(_) => {
            return Err(malformed(format!("`terms` of SKU {sku} is not an object")));
        }
    };

    Ok(PriceDocument {
        sku,
        product_family,
        service_code,
        attributes,
        on_demand,
    })
}

/// The longest SKU or effective date taken from a document: the
/// real ones are at most 25 characters.
const MAX_NAME_BYTES: usize = 64;

fn optional_str(
    map: &Map<String, Value>,
    field: &str,
    sku: &str,
) -> Result<Option<String>, PriceError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("`{field}` of SKU {sku} is not a string"))),
    }
}

fn parse_term(sku: &str, term_key: &str, term: &Value) -> Result<OnDemandTerm, PriceError> {
    let term = term.as_object().ok_or_else(|| {
        malformed(format!(
            "on-demand term `{}` of SKU {sku} is not an object",
            clip(term_key)
        ))
    })?;
    let offer_term_code = optional_str(term, "offerTermCode", sku)?.or_else(|| {
        term_key
            .strip_prefix(sku)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|code| !code.is_empty())
            .map(str::to_owned)
    });
    let effective_date = optional_str(term, "effectiveDate", sku)?;
    if let Some(date) = effective_date.as_ref().filter(|d| d.len() > MAX_NAME_BYTES) {
        return Err(malformed(format!(
            "`effectiveDate` of SKU {sku} is {} bytes long: not a date",
            date.len()
        )));
    }
    let dims = term
        .get("priceDimensions")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            malformed(format!(
                "on-demand term `{}` of SKU {sku} has no `priceDimensions` object",
                clip(term_key)
            ))
        })?;
    let dimensions = dims
        .iter()
        .map(|(rate_key, dim)| parse_dimension(sku, rate_key, dim))
        .collect::<Result<_, _>>()?;
    Ok(OnDemandTerm {
        offer_term_code,
        effective_date,
        dimensions,
    })
}

fn parse_dimension(sku: &str, rate_key: &str, dim: &Value) -> Result<PriceDimension, PriceError> {
    let where_ = || format!("price dimension `{}` of SKU {}", clip(rate_key), clip(sku));
    let dim = dim
        .as_object()
        .ok_or_else(|| malformed(format!("{} is not an object", where_())))?;
    let rate_code = optional_str(dim, "rateCode", sku)?.unwrap_or_else(|| rate_key.to_owned());
    let unit = optional_str(dim, "unit", sku)?
        .ok_or_else(|| malformed(format!("{} has no `unit`", where_())))?;
    let begin_range = match optional_str(dim, "beginRange", sku)? {
        None => Decimal::ZERO,
        Some(s) => parse_amount(&s).ok_or_else(|| {
            malformed(format!(
                "{} has beginRange {:?}, not a number",
                where_(),
                clip(&s)
            ))
        })?,
    };
    let end_range = match optional_str(dim, "endRange", sku)? {
        None => None,
        Some(s) if s.trim().eq_ignore_ascii_case("inf") => None,
        Some(s) => Some(parse_amount(&s).ok_or_else(|| {
            malformed(format!(
                "{} has endRange {:?}, not a number or \"Inf\"",
                where_(),
                clip(&s)
            ))
        })?),
    };
    if let Some(end) = end_range
        && end < begin_range
    {
        return Err(malformed(format!(
            "{} ends ({end}) before it begins ({begin_range})",
            where_()
        )));
    }
    let mut other_currencies = Vec::new();
    let usd_per_unit = match dim.get("pricePerUnit") {
        None | Some(Value::Null) => None,
        Some(Value::Object(prices)) => match prices.get("USD") {
            None | Some(Value::Null) => {
                other_currencies = prices
                    .iter()
                    .filter(|(code, price)| is_currency_code(code) && !price.is_null())
                    .take(MAX_CURRENCIES_KEPT)
                    .map(|(code, _)| code.clone())
                    .collect();
                None
            }
            Some(Value::String(s)) => {
                let usd = parse_amount(s).ok_or_else(|| {
                    malformed(format!(
                        "{} has USD price {:?}, not a decimal number",
                        where_(),
                        clip(s)
                    ))
                })?;
                if usd.is_sign_negative() && !usd.is_zero() {
                    return Err(malformed(format!(
                        "{} has a negative USD price {:?}",
                        where_(),
                        clip(s)
                    )));
                }
                if usd > MAX_SANE_USD_PER_UNIT {
                    return Err(malformed(format!(
                        "{} has USD price {:?}, above {MAX_SANE_USD_PER_UNIT} USD per unit, \
                         which no SageMaker price comes near",
                        where_(),
                        clip(s)
                    )));
                }
                Some(usd.normalize())
            }
            Some(_) => {
                return Err(malformed(format!(
                    "{} has a USD price that is not a string (prices are read from their text, \
                     never through floating point)",
                    where_()
                )));
            }
        },
        Some(_) => {
            return Err(malformed(format!(
                "{} has a `pricePerUnit` that is not an object",
                where_()
            )));
        }
    };
    let description = optional_str(dim, "description", sku)?;
    Ok(PriceDimension {
        rate_code,
        unit,
        begin_range,
        end_range,
        usd_per_unit,
        other_currencies,
        description,
    })
}

/// Currencies a dimension without USD keeps for the error (a hostile document may
/// list thousands).
const MAX_CURRENCIES_KEPT: usize = 3;

/// An ISO 4217 code (`CNY`): three upper-case letters. Anything else in
/// `pricePerUnit` is not named in an error.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// At most the first 200 characters of a document's text, for an error or a note: a
/// hostile or garbled document must not make every receipt's note megabytes long.
pub(crate) fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 200;
    match text.char_indices().nth(KEEP) {
        None => text.into(),
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()).into(),
    }
}

/// A decimal amount from its text (a Price List price or range, a snapshot row's
/// price): plain (`"0.2300000000"`) or scientific (`"2.3E-5"`), exactly or not at
/// all. Only digits, one `.`, an exponent and a leading `-` (a negative price is
/// refused with its own reason): `rust_decimal` alone would also read `"0.0_16"` or
/// `"+0.23"`, a garbled price taken as a price.
pub(crate) fn parse_amount(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let mantissa_ok = match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    if exponent.is_some() {
        return parse_scientific_exactly(text);
    }
    // Zeros at the end of the fraction change nothing: a long but exact price
    // still fits in 28 places.
    let plain = match text.split_once('.') {
        Some(_) => text.trim_end_matches('0').trim_end_matches('.'),
        None => text,
    };
    Decimal::from_str_exact(plain).ok()
}

/// `<base>E<exponent>` (or `e`), read exactly: `None` when the value needs more than
/// 28 decimal places or 96 bits (never rounded, unlike `Decimal::from_scientific`).
fn parse_scientific_exactly(text: &str) -> Option<Decimal> {
    let (base, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i64 = exponent.parse().ok()?;
    // Zeros at the end of the base's fraction change nothing: drop them so that a
    // long but exact base still fits in 28 places.
    let base = match base.split_once('.') {
        Some((_, fraction))
            if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let trimmed = base.trim_end_matches('0');
            trimmed.strip_suffix('.').unwrap_or(trimmed)
        }
        _ => base,
    };
    let base = Decimal::from_str_exact(base).ok()?.normalize();
    // base = m × 10^-s, so base × 10^e = m × 10^-(s - e).
    let scale = i64::from(base.scale()).checked_sub(exponent)?;
    let mantissa = base.mantissa();
    if scale >= 0 {
        Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).ok()?).ok()
    } else {
        let factor = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
        Decimal::try_from_i128_with_scale(mantissa.checked_mul(factor)?, 0).ok()
    }
}

/// `usagetype` split into its parts: `USE1-Host:ml.m5.xlarge` → prefix `USE1`, kind
/// `Host`, detail `ml.m5.xlarge`. The region prefix is optional (`Host:ml.g4dn.xlarge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageType<'a> {
    pub(crate) kind: &'a str,
    pub(crate) detail: &'a str,
}

impl<'a> UsageType<'a> {
    pub(crate) fn parse(text: &'a str) -> Self {
        let (head, detail) = text.split_once(':').unwrap_or((text, ""));
        let kind = match region_prefix(head) {
            Some(prefix) => &head[prefix.len() + 1..],
            None => head,
        };
        UsageType { kind, detail }
    }

    /// `text` without its region prefix, as [`parse`](Self::parse) reads it:
    /// `USE1-Train:ml.p3.2xlarge` → `Train:ml.p3.2xlarge`; unchanged without one.
    /// (The account view's labels only.)
    #[cfg(feature = "account")]
    pub(crate) fn without_region_prefix(text: &'a str) -> &'a str {
        let head = text.split_once(':').map_or(text, |(head, _)| head);
        match region_prefix(head) {
            Some(prefix) => &text[prefix.len() + 1..],
            None => text,
        }
    }

    fn is(&self, kind: &str, detail: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.detail.eq_ignore_ascii_case(detail)
    }
}

/// The region prefix of a usage type's head (`USE1` of `USE1-Host`, `EU` of
/// `EU-ServerlessInf`): the upper-case letters and digits before its first `-`.
fn region_prefix(head: &str) -> Option<&str> {
    match head.split_once('-') {
        Some((prefix, _))
            if !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) =>
        {
            Some(prefix)
        }
        _ => None,
    }
}

/// How well a product matches a key. Lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    /// The usagetype says exactly what the key means (`…Host:ml.m5.xlarge`), and the
    /// component, when present, agrees.
    ExactUsageType,
    /// The product's own words say what it prices: its `group` or description
    /// (provisioned concurrency), or its `volumeType` (storage).
    Described,
    /// Recognised by `component` and `instanceName`; the usagetype is absent or differs
    /// in detail.
    ComponentAndName,
    /// Recognised by the usagetype name alone, where public readings of that name
    /// disagree (provisioned concurrency with neither group nor description).
    UsageTypeNameOnly,
}

impl Fit {
    fn describe(self) -> &'static str {
        match self {
            Fit::ExactUsageType => "exact usagetype match",
            Fit::Described => "its group or description says what it prices",
            Fit::ComponentAndName => "component and instanceName match",
            Fit::UsageTypeNameOnly => "usagetype name only",
        }
    }

    fn into_verdict(self) -> Verdict {
        Verdict::Fits {
            fit: self,
            why: None,
        }
    }
}

/// What [`fit`] concluded about one product.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// It prices what the key means; `why` says which evidence decided, when that is
    /// worth a note (provisioned concurrency).
    Fits { fit: Fit, why: Option<String> },
    /// It prices something else.
    Other,
    /// It might price what the key means, but its attributes contradict each other:
    /// not guessed. The text says how.
    Contradicts(String),
}

impl From<Option<Fit>> for Verdict {
    fn from(fit: Option<Fit>) -> Self {
        fit.map_or(Verdict::Other, Fit::into_verdict)
    }
}

/// Does `doc` price what `key` means?
fn fit(key: &PriceKey, doc: &PriceDocument) -> Verdict {
    if let Some(region) = doc.attribute("regionCode")
        && !region.eq_ignore_ascii_case(key.region())
    {
        return Verdict::Other;
    }
    let usage = doc.attribute("usagetype").map(UsageType::parse);
    match key {
        PriceKey::Hosting { instance_type, .. } => {
            // `Host` in most regions; a GovCloud bill shows `UGW1-Hosting:ml.g5.24xlarge`.
            instance_fit(doc, usage, &["Host", "Hosting"], "Hosting", instance_type).into()
        }
        PriceKey::AsyncInference { instance_type, .. } => {
            instance_fit(doc, usage, &["AsyncInf"], "AsyncInf", instance_type).into()
        }
        PriceKey::Serverless { memory_gb, .. } => match usage {
            Some(usage) => {
                serverless_fit(doc, usage, "ServerlessInf", &format!("Mem-{memory_gb}GB")).into()
            }
            None => Verdict::Other,
        },
        PriceKey::ProvisionedConcurrency { memory_gb, .. } => {
            provisioned_concurrency_fit(doc, usage, *memory_gb, PcCharge::Standing)
        }
        PriceKey::ProvisionedConcurrencyUsage { memory_gb, .. } => {
            provisioned_concurrency_fit(doc, usage, *memory_gb, PcCharge::InferenceDuration)
        }
        PriceKey::DataIn { .. } => usage
            .filter(|u| u.is("Hst", "Data-Bytes-In"))
            .map(|_| Fit::ExactUsageType)
            .into(),
        PriceKey::DataOut { .. } => usage
            .filter(|u| u.is("Hst", "Data-Bytes-Out"))
            .map(|_| Fit::ExactUsageType)
            .into(),
        PriceKey::Storage { .. } => storage_fit(doc, usage),
    }
}

/// Whether `doc` may price `key`, judged from its product's attributes alone (its
/// terms not read, or unreadable), by [`fit`]'s rule, the one the live look-up
/// applies: a product that fits, or whose attributes contradict each other on
/// whether it does (alone, it leaves the key with no rate: not guessed). A Training
/// product never may price hosting. A provisioned-concurrency product of the key's
/// memory size may price either charge: the descriptions that can tell which, or
/// contradict its `group`, are in its terms.
pub(crate) fn may_price(key: &PriceKey, doc: &PriceDocument) -> bool {
    let other_charge = match key {
        PriceKey::ProvisionedConcurrency { region, memory_gb } => {
            PriceKey::ProvisionedConcurrencyUsage {
                region: region.clone(),
                memory_gb: *memory_gb,
            }
        }
        PriceKey::ProvisionedConcurrencyUsage { region, memory_gb } => {
            PriceKey::ProvisionedConcurrency {
                region: region.clone(),
                memory_gb: *memory_gb,
            }
        }
        // Only provisioned concurrency reads a product's terms to tell what it prices.
        _ => return !matches!(fit(key, doc), Verdict::Other),
    };
    let attributes_only = PriceDocument {
        on_demand: Vec::new(),
        ..doc.clone()
    };
    [key, &other_charge]
        .into_iter()
        .any(|charge| !matches!(fit(charge, &attributes_only), Verdict::Other))
}

/// Instance-hour products: the component (`Hosting`, `AsyncInf`) or the usagetype kind
/// (`Host` or `Hosting`, `AsyncInf`) must say so, neither may say something else (a Training, Notebook,
/// Studio or Cluster row, an upfront fee), and the instance must be named.
fn instance_fit(
    doc: &PriceDocument,
    usage: Option<UsageType<'_>>,
    usage_kinds: &[&str],
    component: &str,
    instance_type: &str,
) -> Option<Fit> {
    let component_says = doc
        .attribute("component")
        .map(|c| c.eq_ignore_ascii_case(component));
    let usage_says = usage.map(|u| usage_kinds.iter().any(|k| u.kind.eq_ignore_ascii_case(k)));
    if component_says == Some(false) || usage_says == Some(false) {
        return None; // another component's product
    }
    if component_says.is_none() && usage_says.is_none() {
        return None; // cannot tell what this product prices: do not guess
    }
    let named = doc
        .attribute("instanceName")
        .map(|n| n.eq_ignore_ascii_case(instance_type));
    let usage_names = usage.map(|u| u.detail.eq_ignore_ascii_case(instance_type));
    match (named, usage_names) {
        (Some(false), _) => None,
        (_, Some(true)) => Some(Fit::ExactUsageType),
        (Some(true), _) => Some(Fit::ComponentAndName),
        (None, _) => None,
    }
}

/// Is the productFamily, when present, `ML Serverless`?
fn serverless_family(doc: &PriceDocument) -> bool {
    doc.product_family
        .as_deref()
        .is_none_or(|family| family.eq_ignore_ascii_case("ML Serverless"))
}

fn serverless_fit(
    doc: &PriceDocument,
    usage: UsageType<'_>,
    usage_kind: &str,
    detail: &str,
) -> Option<Fit> {
    (serverless_family(doc) && usage.is(usage_kind, detail)).then_some(Fit::ExactUsageType)
}

/// The two charges of serverless provisioned concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PcCharge {
    /// Per second provisioned, used or not ([`PriceKey::ProvisionedConcurrency`]).
    Standing,
    /// Per second of inference served by it ([`PriceKey::ProvisionedConcurrencyUsage`]).
    InferenceDuration,
}

impl PcCharge {
    fn describe(self) -> &'static str {
        match self {
            PcCharge::Standing => "the standing charge per second provisioned",
            PcCharge::InferenceDuration => {
                "the inference duration of calls served by provisioned concurrency"
            }
        }
    }
}

/// What a provisioned-concurrency product's `group` says it prices. Seen values:
/// `ServerlessProvisionedConcurrency-Duration` (inference duration) and
/// `ServerlessProvisionedConcurrency-Usage` (the capacity provisioned, i.e. the
/// standing charge). The group names the product line, so its "provisioned" says
/// nothing; its last words do. Anything else says nothing.
fn group_says(group: &str) -> Option<PcCharge> {
    let words = words(group, true);
    if speaks_of_inference(&words) {
        Some(PcCharge::InferenceDuration)
    } else if words.iter().any(|w| w == "usage") {
        Some(PcCharge::Standing)
    } else {
        None
    }
}

/// What a price dimension's description says it prices: "duration", "execution" or
/// "inference" (other than in the product name "Serverless Inference") mean inference
/// duration; otherwise "provisioned" (as in "per second of provisioned concurrency")
/// means the standing charge, but not in the product's name "Serverless Inference
/// *with* Provisioned Concurrency", which any of its charges may quote. Words run
/// together (`ProvisionedConcurrency:Mem-2GB` quoted from a usagetype) say nothing.
fn description_says(description: &str) -> Option<PcCharge> {
    let words = words(description, false);
    if speaks_of_inference(&words) {
        Some(PcCharge::InferenceDuration)
    } else if words
        .iter()
        .enumerate()
        .any(|(i, w)| w == "provisioned" && (i == 0 || words[i - 1] != "with"))
    {
        Some(PcCharge::Standing)
    } else {
        None
    }
}

fn speaks_of_inference(words: &[String]) -> bool {
    words.iter().enumerate().any(|(i, w)| match w.as_str() {
        "duration" | "execution" | "executions" => true,
        "inference" => i == 0 || words[i - 1] != "serverless",
        _ => false,
    })
}

/// Lower-case words: runs of ASCII letters, also split where a lower-case letter meets
/// an upper-case one when `camel` (`ServerlessProvisionedConcurrency-Usage` is four
/// words then, `ProvisionedConcurrency` one word otherwise).
fn words(text: &str, camel: bool) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if !c.is_ascii_alphabetic() {
            previous_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if camel && previous_lower && c.is_ascii_uppercase() && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_ascii_lowercase();
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Provisioned-concurrency products: productFamily `ML Serverless` (when present),
/// usagetype `…ProvisionedConcurrency:Mem-<N>GB` or `…:Usage-<N>GB` for the key's
/// memory size, and then which of the two charges it is.
///
/// Public tools disagree on which usagetype name is which charge, so the product's own
/// words decide: its `group` and its dimensions' descriptions (see [`group_says`],
/// [`description_says`]). When they disagree with each other the product is not guessed
/// ([`Verdict::Contradicts`]). Only when neither says anything does the usagetype name
/// decide, read as `Usage-<N>GB` = the capacity provisioned (standing charge) and
/// `Mem-<N>GB` = inference duration: the reading of the public revision that filters on
/// group and usagetype together (group `…-Usage` with `:Usage-<N>GB`, group
/// `…-Duration` with `:Mem-<N>GB`), whose prices also put `Mem` above `Usage` as AWS's
/// pricing page puts inference duration above provisioned concurrency.
fn provisioned_concurrency_fit(
    doc: &PriceDocument,
    usage: Option<UsageType<'_>>,
    memory_gb: u32,
    want: PcCharge,
) -> Verdict {
    let Some(usage) = usage else {
        return Verdict::Other;
    };
    if !serverless_family(doc) {
        return Verdict::Other;
    }
    let name_says = if usage.is("ProvisionedConcurrency", &format!("Usage-{memory_gb}GB")) {
        PcCharge::Standing
    } else if usage.is("ProvisionedConcurrency", &format!("Mem-{memory_gb}GB")) {
        PcCharge::InferenceDuration
    } else {
        return Verdict::Other;
    };
    // Clipped, as every text of the document that reaches a reason.
    let usagetype = clip(doc.attribute("usagetype").unwrap_or_default());

    let mut evidence: Vec<(String, PcCharge)> = Vec::new();
    if let Some(group) = doc.attribute("group")
        && let Some(says) = group_says(group)
    {
        evidence.push((format!("group {:?}", clip(group)), says));
    }
    let descriptions = doc
        .on_demand
        .iter()
        .flat_map(|term| &term.dimensions)
        .filter_map(|dim| dim.description.as_deref());
    for description in descriptions {
        if let Some(says) = description_says(description)
            && !evidence
                .iter()
                .any(|(what, s)| *s == says && what.starts_with("description"))
        {
            evidence.push((format!("description {:?}", clip(description)), says));
        }
    }

    let charge = match evidence.first() {
        None => None,
        Some(&(_, first)) => {
            if let Some((other, says)) = evidence.iter().find(|(_, s)| *s != first) {
                let (one, _) = &evidence[0];
                return Verdict::Contradicts(format!(
                    "SKU {} ({usagetype}): its {one} says {} but its {other} says {}",
                    doc.sku,
                    first.describe(),
                    says.describe()
                ));
            }
            Some(first)
        }
    };
    let (charge, fit, why) = match charge {
        Some(charge) => {
            let what: Vec<&str> = evidence.iter().map(|(what, _)| what.as_str()).collect();
            let mut why = format!(
                "SKU {} is {} per its {}",
                doc.sku,
                charge.describe(),
                what.join(" and its ")
            );
            if charge != name_says {
                why.push_str(&format!(
                    " (its usagetype {usagetype} alone would have been read the other way)"
                ));
            }
            (charge, Fit::Described, why)
        }
        None => (
            name_says,
            Fit::UsageTypeNameOnly,
            format!(
                "SKU {} is taken as {} from its usagetype {usagetype} alone (neither its group \
                 nor its description says which charge it is)",
                doc.sku,
                name_says.describe()
            ),
        ),
    };
    if charge == want {
        Verdict::Fits {
            fit,
            why: Some(why),
        }
    } else {
        Verdict::Other
    }
}

/// Hosting ML storage: productFamily `Storage` (when present), and volumeType
/// `General Purpose-Hosting` or usagetype `…Host:VolumeUsage.gp2` (Notebook, Processing,
/// Training and Studio volumes say otherwise and are skipped).
fn storage_fit(doc: &PriceDocument, usage: Option<UsageType<'_>>) -> Verdict {
    if let Some(family) = &doc.product_family
        && !family.eq_ignore_ascii_case("Storage")
    {
        return Verdict::Other;
    }
    let volume = doc.attribute("volumeType");
    let volume_says = volume.map(|v| v.eq_ignore_ascii_case("General Purpose-Hosting"));
    let usage_says = usage.map(|u| u.is("Host", "VolumeUsage.gp2"));
    match (volume_says, usage_says) {
        (Some(true), Some(false)) | (Some(false), Some(true)) => Verdict::Contradicts(format!(
            "SKU {}: its volumeType {:?} and its usagetype {:?} disagree on whether it is \
             hosting ML storage",
            doc.sku,
            clip(volume.unwrap_or_default()),
            clip(doc.attribute("usagetype").unwrap_or_default())
        )),
        (_, Some(true)) => Fit::ExactUsageType.into_verdict(),
        (Some(true), None) => Fit::Described.into_verdict(),
        _ => Verdict::Other,
    }
}

/// Does a Price List `unit` string measure what `want` measures?
///
/// Liberal in spelling, explicit in meaning: `Hrs`/`Hr`/`Hour(s)` for instance-hours;
/// `second(s)`/`sec(s)`/`s` for serverless (the Price List spelling is not documented;
/// compound units such as `GB-Second` are *not* accepted, since the serverless usagetype
/// already names the memory size); `GB`/`Gigabyte(s)` for data (not `GB-Mo`, storage);
/// `GB-Mo`/`GB-Month(s)` for storage.
fn unit_matches(want: PriceUnit, unit: &str) -> bool {
    let unit = unit.trim();
    let accepted: &[&str] = match want {
        PriceUnit::Hour => &["Hrs", "Hr", "Hour", "Hours"],
        PriceUnit::Second => &["second", "seconds", "sec", "secs", "s"],
        PriceUnit::Gigabyte => &["GB", "Gigabyte", "Gigabytes"],
        PriceUnit::GigabyteMonth => &["GB-Mo", "GB-Month", "GB-Months", "GB-Mos"],
    };
    accepted.iter().any(|a| a.eq_ignore_ascii_case(unit))
}

/// How the Price List spells `want` (the bundled snapshot's rows spell it so too).
pub(super) fn price_list_unit(want: PriceUnit) -> &'static str {
    match want {
        PriceUnit::Hour => "Hrs",
        PriceUnit::Second => "second",
        PriceUnit::Gigabyte => "GB",
        PriceUnit::GigabyteMonth => "GB-Mo",
    }
}

struct Candidate<'a> {
    fit: Fit,
    /// Which evidence decided the product, when worth a note.
    why: Option<&'a str>,
    usd: Decimal,
    doc: &'a PriceDocument,
    term: &'a OnDemandTerm,
    dim: &'a PriceDimension,
    /// Set when a $0 first tier was passed over for this paid tier (rule 4).
    free_tier: Option<String>,
}

/// The tiers of one on-demand term, read as rule 4 of [`select_rate_at`] says.
enum TermPrice<'a> {
    /// The dimensions to use (usually one), each with its price and, when a free
    /// first tier was passed over, a note saying so.
    Priced(Vec<(&'a PriceDimension, Decimal, Option<String>)>),
    /// Only $0 is listed: these $0 dimensions start at 0 and no paid tier follows.
    ZeroOnly(Vec<&'a PriceDimension>),
    /// Priced dimensions, but none starts at 0.
    NoFirstTier,
}

/// Rule 4: the tier that starts at 0; if that is $0 and a paid tier follows, the first
/// paid tier.
fn term_price<'a>(dims: &[(&'a PriceDimension, Decimal)], want: PriceUnit) -> TermPrice<'a> {
    let first: Vec<_> = dims
        .iter()
        .filter(|(d, _)| d.begin_range.is_zero())
        .collect();
    if first.is_empty() {
        return TermPrice::NoFirstTier;
    }
    let paid_first: Vec<_> = first
        .iter()
        .filter(|(_, usd)| !usd.is_zero())
        .map(|&&(d, usd)| (d, usd, None))
        .collect();
    if !paid_first.is_empty() {
        return TermPrice::Priced(paid_first); // a list price, or volume tiers
    }
    // The tier at 0 is $0: a free tier if a paid tier follows. The first paid tier is
    // the one with the lowest beginRange (the highest price among equals).
    let paid = dims
        .iter()
        .filter(|(_, usd)| !usd.is_zero())
        .min_by(|(a, a_usd), (b, b_usd)| {
            a.begin_range
                .cmp(&b.begin_range)
                .then(b_usd.cmp(a_usd))
                .then(a.rate_code.cmp(&b.rate_code))
        });
    match paid {
        Some(&(dim, usd)) => {
            // The usage every tier agrees is free: up to the nearest end of a $0 tier
            // from 0, and not past where the first paid tier begins.
            let free_end = first
                .iter()
                .filter_map(|(d, _)| d.end_range)
                .fold(dim.begin_range, Decimal::min);
            let note = format!(
                "free tier of {} {want}(s) per month not applied",
                free_end.normalize()
            );
            TermPrice::Priced(vec![(dim, usd, Some(note))])
        }
        None => TermPrice::ZeroOnly(first.iter().map(|(d, _)| *d).collect()),
    }
}

/// Picks the on-demand rate for `key` among `docs` (typically one `GetProducts` answer)
/// as of `now`.
///
/// Of a product's several dated on-demand terms, the one in effect then counts (the
/// latest `effectiveDate` not after `now`; several of that one date cannot be told
/// apart, so all count and rule 6 takes the highest rate). A product whose every
/// term is ahead of `now` (announced for later) is left out while another product
/// for the key has a term in effect (AWS bills that one until the new one's date,
/// whatever rule 6 would prefer; the price history's rule too). Only when no
/// product has is a term ahead of its date used, each product's earliest (all of
/// that date), and the receipt's note says so (that product's date only, when it
/// is the one chosen). When any term of a product has no readable `effectiveDate`,
/// its terms cannot be put in order, so every term of that product counts (the
/// product is in effect) and rule 6 takes the highest rate among them (the
/// conservative choice: no term that may be in effect is left out, so the receipt
/// does not under-state cost; the rate's own `effectiveDate` is on the receipt).
/// Without `now` (tests), every term counts.
///
/// The rules, in order:
///
/// 1. **Product**: it must price what the key means, recognised by attributes, never by
///    SKU. Hosting needs `component=Hosting` or usagetype `…Host:<type>` (`…Hosting:<type>`
///    on GovCloud), async inference
///    `component=AsyncInf` or `…AsyncInf:<type>`, and the instance named by
///    `instanceName` or the usagetype; a product whose component or usagetype says
///    anything else (Training, Notebook, Studio, Cluster, `TrainingPlanUpfrontFee`, ...)
///    is skipped, and so is one that names neither. Serverless keys need productFamily
///    `ML Serverless` (when present) and usagetype `…ServerlessInf:Mem-<N>GB`; data keys
///    need `…Hst:Data-Bytes-In` / `-Out`; storage needs productFamily `Storage` (when
///    present) and volumeType `General Purpose-Hosting` or usagetype
///    `…Host:VolumeUsage.gp2`. A `regionCode` other than the key's is skipped.
///
///    Provisioned concurrency (usagetype `…ProvisionedConcurrency:Mem-<N>GB` or
///    `…:Usage-<N>GB`) has two charges, and public tools disagree on which name is
///    which, so each product's own words decide: a `group` or description speaking of
///    duration, execution or inference (`ServerlessProvisionedConcurrency-Duration`,
///    "per second of inference duration") is
///    [`ProvisionedConcurrencyUsage`](PriceKey::ProvisionedConcurrencyUsage); a group
///    `…-Usage` or a description speaking of provisioned concurrency and nothing of
///    duration is the standing charge,
///    [`ProvisionedConcurrency`](PriceKey::ProvisionedConcurrency). When group and
///    description contradict each other the product is skipped, not guessed. Only when
///    neither says anything does the usagetype name decide (`Usage-<N>GB` standing,
///    `Mem-<N>GB` inference duration). [`Selection::reason`] says which evidence decided.
/// 2. **Unit**: the dimension's unit must measure the key's unit (see [`PriceKey::unit`]):
///    `Hrs`, a second, `GB`, or `GB-Mo`. `Quantity` (upfront fees) never matches.
/// 3. **Currency**: the dimension must carry a USD price.
/// 4. **Tier**: per-call metering cannot know the account's cumulative usage this month,
///    so, per on-demand term (each a whole price schedule; a product's tiers split
///    over two terms are not joined), among the dimensions left ordered by `beginRange`:
///    - the tier that starts at 0 is used when its price is positive. When AWS tiers a
///      rate by volume, later tiers are cheaper, so this is the list price and errs on
///      the high side. Several paid tiers from 0 are each a candidate for rule 6; a $0
///      tier from 0 beside a paid one is not a free allowance (the paid tier says
///      that usage is charged), so no free tier is noted;
///    - when every tier that starts at 0 is $0 and a paid tier follows, that $0 tier is
///      a free allowance (e.g. 150,000 serverless seconds a month) and the first paid
///      tier (lowest `beginRange` with a positive price) is used; [`Selection::reason`]
///      says "free tier of <endRange> <unit>(s) per month not applied". Receipts would
///      otherwise say $0 for usage the bill charges once the allowance is spent. Of
///      several paid tiers with that lowest `beginRange`, the highest price (the
///      conservative choice), then the smallest `rateCode` (an arbitrary tie-break,
///      only for a deterministic answer: the price is the same). The allowance stated
///      is the usage every tier agrees is free: the smallest `endRange` of the $0 tiers
///      from 0 (`Inf` bounds nothing), and no more than the chosen paid tier's
///      `beginRange`. In a well-formed schedule (`0–150000` at $0, then paid from
///      150000) that is the $0 tier's `endRange`; where $0 tiers disagree, leave a gap
///      or overlap a paid tier, the note never claims more free usage than the
///      schedule gives (`0–100` and `0–Inf` at $0, paid from 150000: 100);
///    - when only $0 is listed (no paid tier after), the term has only $0 rows;
///    - a term with prices but no tier starting at 0 has no usable price.
/// 5. **Zero**: products with only $0 rows (free-tier parents, bookkeeping rows) are
///    skipped when another product has a positive price (the reason counts them). When
///    every matching product lists only $0, there is no price:
///    [`PriceError::ZeroOnly`], never a $0 rate.
/// 6. **Several left**: prefer the best evidence (an exact usagetype match, then a
///    product whose group or description says what it prices, then component and
///    instanceName, then a usagetype name alone), then the highest rate (the
///    conservative choice: a receipt should not under-state cost), then the smallest SKU
///    for determinism. The reason is returned in [`Selection::reason`].
///
/// Errors: [`PriceError::NotFound`] when no product means the key (including an empty
/// list); [`PriceError::Malformed`] when products match but none carries a usable price,
/// with what was wrong (unit, currency, tiers), or when the only candidate products
/// contradict themselves; [`PriceError::ZeroOnly`] when only $0 is listed.
pub(crate) fn select_rate_at(
    key: &PriceKey,
    docs: &[PriceDocument],
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Selection, PriceError> {
    let want = key.unit();
    let mut products: Vec<(Fit, Option<String>, &PriceDocument)> = Vec::new();
    let mut contradictions: Vec<String> = Vec::new();
    for doc in docs {
        match fit(key, doc) {
            Verdict::Fits { fit, why } => products.push((fit, why, doc)),
            Verdict::Other => {}
            Verdict::Contradicts(what) => contradictions.push(what),
        }
    }
    if products.is_empty() {
        if !contradictions.is_empty() {
            return Err(malformed(format!(
                "no product prices {key} unambiguously: {}; not guessed",
                contradictions.join("; ")
            )));
        }
        return Err(PriceError::NotFound { key: key.clone() });
    }
    // A product announced for later is not the price while another is in effect
    // (see `only_ahead_of`). Only when none is in effect yet is a term ahead of
    // its date the best guess, noted below.
    if let Some(now) = now
        && products
            .iter()
            .any(|(_, _, doc)| !doc.on_demand.is_empty() && !only_ahead_of(doc, now))
    {
        products.retain(|(_, _, doc)| !only_ahead_of(doc, now));
    }

    let mut candidates = Vec::new();
    let mut zero_rows: Vec<(&PriceDocument, &PriceDimension)> = Vec::new();
    // The first few units seen, for the error; how many in all, by a set (a hostile
    // document may carry thousands).
    let mut units_seen: Vec<&str> = Vec::new();
    let mut units_distinct: std::collections::HashSet<&str> = Default::default();
    let (mut right_unit, mut with_usd) = (0usize, 0usize);
    // Currencies of the right-unit dimensions that have no USD price (China's are CNY).
    let mut currencies: std::collections::BTreeSet<&str> = Default::default();
    let mut ahead_of_date: Vec<String> = Vec::new();
    for (fit, why, doc) in &products {
        let (terms, ahead) = terms_in_effect(&doc.on_demand, now);
        if let Some(date) = ahead {
            ahead_of_date.push(format!(
                "SKU {}'s price is not in effect until {date}",
                doc.sku
            ));
        }
        for term in terms {
            let mut usable = Vec::new();
            for dim in &term.dimensions {
                if !unit_matches(want, &dim.unit) {
                    if units_distinct.insert(&dim.unit) && units_seen.len() < 10 {
                        units_seen.push(&dim.unit);
                    }
                    continue;
                }
                right_unit += 1;
                let Some(usd) = dim.usd_per_unit else {
                    currencies.extend(dim.other_currencies.iter().map(String::as_str));
                    continue;
                };
                with_usd += 1;
                usable.push((dim, usd));
            }
            if usable.is_empty() {
                continue;
            }
            match term_price(&usable, want) {
                TermPrice::Priced(dims) => {
                    for (dim, usd, free_tier) in dims {
                        candidates.push(Candidate {
                            fit: *fit,
                            why: why.as_deref(),
                            usd,
                            doc,
                            term,
                            dim,
                            free_tier,
                        });
                    }
                }
                TermPrice::ZeroOnly(dims) => zero_rows.extend(dims.into_iter().map(|d| (*doc, d))),
                TermPrice::NoFirstTier => {}
            }
        }
    }

    let skus = || {
        let mut s: Vec<&str> = products.iter().map(|(_, _, d)| d.sku.as_str()).collect();
        s.dedup();
        s.join(", ")
    };
    if candidates.is_empty() && !zero_rows.is_empty() {
        let mut zero_skus: Vec<&str> = zero_rows.iter().map(|(d, _)| d.sku.as_str()).collect();
        zero_skus.dedup();
        return Err(PriceError::ZeroOnly {
            key: key.clone(),
            reason: format!(
                "the Price List lists only $0 for {key} (SKU {}: a free-tier or bookkeeping \
                 row with no paid tier)",
                zero_skus.join(", ")
            ),
        });
    }
    if candidates.is_empty() {
        let unit = price_list_unit(want);
        let reason = if right_unit == 0 {
            let seen = if units_seen.is_empty() {
                "no on-demand price dimensions".to_owned()
            } else {
                let shown: Vec<_> = units_seen.iter().map(|u| clip(u)).collect();
                let more = units_distinct.len() - units_seen.len();
                match more {
                    0 => format!("units seen: {}", shown.join(", ")),
                    more => format!("units seen: {} and {more} more", shown.join(", ")),
                }
            };
            format!(
                "{} product(s) for {key} (SKU {}) but none priced per {unit} ({seen})",
                products.len(),
                skus()
            )
        } else if with_usd == 0 && !currencies.is_empty() {
            let currencies: Vec<&str> = currencies.into_iter().collect();
            return Err(PriceError::OtherCurrency {
                key: key.clone(),
                currencies: currencies.join(", "),
            });
        } else if with_usd == 0 {
            format!(
                "{} product(s) for {key} (SKU {}) but no USD price per {unit}",
                products.len(),
                skus()
            )
        } else {
            format!(
                "{} product(s) for {key} (SKU {}) but no price tier starting at 0 {unit}",
                products.len(),
                skus()
            )
        };
        return Err(malformed(reason));
    }

    // Best fit first, then highest rate, then smallest SKU.
    candidates.sort_by(|a, b| {
        a.fit
            .cmp(&b.fit)
            .then(b.usd.cmp(&a.usd))
            .then(a.doc.sku.cmp(&b.doc.sku))
    });
    let best = &candidates[0];
    let others = &candidates[1..];

    let mut parts: Vec<String> = Vec::new();
    if !others.is_empty() {
        let mut reason = String::new();
        let same_fit = others.iter().filter(|c| c.fit == best.fit).count();
        let _ = write!(
            reason,
            "{} prices matched {key}; chose SKU {} at ${}",
            candidates.len(),
            best.doc.sku,
            best.usd
        );
        if same_fit == 0 {
            let _ = write!(reason, " ({})", best.fit.describe());
        } else {
            let _ = write!(
                reason,
                " ({}; the highest of {} equally good, the conservative choice)",
                best.fit.describe(),
                same_fit + 1
            );
        }
        reason.push_str(" over ");
        for (i, c) in others.iter().take(4).enumerate() {
            if i > 0 {
                reason.push_str(", ");
            }
            let _ = write!(reason, "SKU {} at ${}", c.doc.sku, c.usd);
        }
        if others.len() > 4 {
            let _ = write!(reason, " and {} more", others.len() - 4);
        }
        parts.push(reason);
    }
    if let Some(free_tier) = &best.free_tier {
        parts.push(free_tier.clone());
    }
    if let Some(why) = best.why {
        parts.push(why.to_owned());
    }
    if !zero_rows.is_empty() {
        parts.push(format!("skipped {} $0 row(s)", zero_rows.len()));
    }
    // Only the chosen price's date: the others' are not what the receipt charges.
    let chosen_sku = format!("SKU {}'s", best.doc.sku);
    parts.extend(
        ahead_of_date
            .into_iter()
            .filter(|a| a.starts_with(&chosen_sku)),
    );
    if !contradictions.is_empty() {
        parts.push(format!(
            "skipped {} self-contradicting product(s): {}",
            contradictions.len(),
            contradictions.join("; ")
        ));
    }

    Ok(Selection {
        usd_per_unit: best.usd,
        sku: best.doc.sku.clone(),
        rate_code: best.dim.rate_code.clone(),
        effective_date: best.term.effective_date.clone(),
        description: best.dim.description.clone(),
        reason: (!parts.is_empty()).then(|| parts.join("; ")),
    })
}

/// [`select_rate_at`] with no date: every term counts (the tests' shorthand).
#[cfg(test)]
pub(crate) fn select_rate(key: &PriceKey, docs: &[PriceDocument]) -> Result<Selection, PriceError> {
    select_rate_at(key, docs, None)
}

/// The `effectiveDate`s of the on-demand terms of the products that price `key`,
/// oldest first, each once (unreadable dates left out). A price list version can
/// hold a product's current term next to one taking effect later: each date is when
/// [`select_rate_at`] may answer differently.
pub(crate) fn term_dates(
    key: &PriceKey,
    docs: &[PriceDocument],
) -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut dates: Vec<_> = docs
        .iter()
        .filter(|doc| matches!(fit(key, doc), Verdict::Fits { .. }))
        .flat_map(|doc| &doc.on_demand)
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t.effective_date.as_deref()?).ok())
        .map(|d| d.to_utc())
        .collect();
    dates.sort_unstable();
    dates.dedup();
    dates
}

/// Whether every on-demand term of `doc` is dated after `at`: the product is
/// announced, but none of its terms is in effect yet (AWS bills the term whose
/// `effectiveDate` has passed). [`select_rate_at`] leaves such a product out while
/// another for the key is in effect, the price history always. A product with an
/// undated or unreadable term, or with no term, is not: [`select_rate_at`] takes
/// such terms as they are.
pub(crate) fn only_ahead_of(doc: &PriceDocument, at: chrono::DateTime<chrono::Utc>) -> bool {
    !doc.on_demand.is_empty()
        && doc.on_demand.iter().all(|t| {
            t.effective_date
                .as_deref()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                .is_some_and(|d| d.to_utc() > at)
        })
}

/// The on-demand terms of a product in effect at `now`: of dated terms, those of the
/// latest `effectiveDate` not after `now` (a price change published ahead of its
/// date, or one superseded, is not the price now; several of that one date are all
/// returned, as they cannot be told apart); when every dated term is still
/// ahead (a single one too), those of the earliest date, with it (a receipt's
/// best guess when no product for the key is in effect; otherwise
/// [`select_rate_at`] leaves such a product out, see [`only_ahead_of`]). Undated
/// or unreadable dates, or no `now`: every term, as they are.
fn terms_in_effect(
    terms: &[OnDemandTerm],
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> (Vec<&OnDemandTerm>, Option<String>) {
    let dated: Option<Vec<(chrono::DateTime<chrono::Utc>, &OnDemandTerm)>> = terms
        .iter()
        .map(|t| {
            let date = chrono::DateTime::parse_from_rfc3339(t.effective_date.as_deref()?).ok()?;
            Some((date.to_utc(), t))
        })
        .collect();
    let (Some(now), Some(dated)) = (now, dated) else {
        return (terms.iter().collect(), None);
    };
    // Every term of the chosen date: terms of one date cannot be told apart, so
    // all count and rule 6 takes the highest rate (not the one listed last).
    let of_date = |chosen| {
        dated
            .iter()
            .filter(|(date, _)| *date == chosen)
            .map(|&(_, term)| term)
            .collect()
    };
    if let Some(current) = dated
        .iter()
        .map(|(date, _)| *date)
        .filter(|d| *d <= now)
        .max()
    {
        return (of_date(current), None);
    }
    match dated.iter().map(|(date, _)| *date).min() {
        Some(earliest) => (
            of_date(earliest),
            Some(earliest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ),
        None => (terms.iter().collect(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn one_hosting_document_gives_its_hourly_rate() {
        let json = r#"{"product":{"sku":"JDZQJFUVUR8SUWHS","productFamily":"ML Instance",
          "attributes":{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge",
                        "component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge"}},
          "serviceCode":"AmazonSageMaker",
          "terms":{"OnDemand":{"JDZQJFUVUR8SUWHS.JRTCKXETXF":{"effectiveDate":"2026-05-01T00:00:00Z",
            "priceDimensions":{"JDZQJFUVUR8SUWHS.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs",
              "beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2300000000"}}}}}}}"#;
        let doc = parse_price_document(json).unwrap();
        let chosen = select_rate(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"), &[doc]).unwrap();
        assert_eq!(chosen.usd_per_unit.to_string(), "0.23");
        assert_eq!(chosen.sku, "JDZQJFUVUR8SUWHS");
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    /// A product document in the `aws_v1` shape, with one on-demand term of one
    /// dimension per `(unit, begin, end, usd)`.
    fn doc_json(
        sku: &str,
        family: &str,
        attributes: Value,
        dims: &[(&str, &str, &str, Option<&str>)],
    ) -> String {
        let mut price_dimensions = Map::new();
        for (i, (unit, begin, end, usd)) in dims.iter().enumerate() {
            let rate_code = format!("{sku}.JRTCKXETXF.RATE{i}");
            let price = match usd {
                Some(usd) => json!({ "USD": usd }),
                None => json!({ "CNY": "1.6000000000" }),
            };
            price_dimensions.insert(
                rate_code.clone(),
                json!({
                    "unit": unit, "beginRange": begin, "endRange": end,
                    "description": format!("{usd:?} per {unit}"),
                    "appliesTo": [], "rateCode": rate_code, "pricePerUnit": price,
                }),
            );
        }
        json!({
            "product": { "productFamily": family, "attributes": attributes, "sku": sku },
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": { format!("{sku}.JRTCKXETXF"): {
                "priceDimensions": price_dimensions, "sku": sku,
                "effectiveDate": "2026-05-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
                "termAttributes": {},
            } } },
            "version": "20260501000000", "publicationDate": "2026-05-01T00:00:00Z",
        })
        .to_string()
    }

    fn instance_doc(
        sku: &str,
        usagetype: &str,
        component: Option<&str>,
        unit: &str,
        usd: &str,
    ) -> PriceDocument {
        let mut attrs = json!({
            "servicecode": "AmazonSageMaker", "regionCode": "us-east-1",
            "location": "US East (N. Virginia)", "locationType": "AWS Region",
            "instanceName": "ml.m5.xlarge", "usagetype": usagetype, "operation": "RunInstance",
        });
        if let Some(c) = component {
            attrs["component"] = json!(c);
        }
        parse_price_document(&doc_json(
            sku,
            "ML Instance",
            attrs,
            &[(unit, "0", "Inf", Some(usd))],
        ))
        .unwrap()
    }

    /// What the Price List returns for `instanceName=ml.m5.xlarge` in us-east-1: one
    /// product per component, plus an upfront fee row with no component.
    fn m5_xlarge_products() -> Vec<PriceDocument> {
        vec![
            instance_doc(
                "TRAIN0000000001",
                "USE1-Train:ml.m5.xlarge",
                Some("Training"),
                "Hrs",
                "0.2300000000",
            ),
            instance_doc(
                "NOTEBK000000001",
                "USE1-Notebk:ml.m5.xlarge",
                Some("Notebook"),
                "Hrs",
                "0.2420000000",
            ),
            instance_doc(
                "STUDIO000000001",
                "USE1-Studio:JupyterLab-ml.m5.xlarge",
                Some("Studio-JupyterLab"),
                "Hrs",
                "0.2500000000",
            ),
            instance_doc(
                "UPFRONT00000001",
                "USE1-TrainingPlanUpfrontFee:ml.m5.xlarge",
                None,
                "Quantity",
                "13.5700000000",
            ),
            instance_doc(
                "CLUSTER00000001",
                "USE1-Cluster:ml.m5.xlarge",
                Some("Cluster"),
                "Hrs",
                "0.2600000000",
            ),
            instance_doc(
                "JDZQJFUVUR8SUWHS",
                "USE1-Host:ml.m5.xlarge",
                Some("Hosting"),
                "Hrs",
                "0.2300000000",
            ),
            instance_doc(
                "ASYNC0000000001",
                "USE1-AsyncInf:ml.m5.xlarge",
                Some("AsyncInf"),
                "Hrs",
                "0.2300000000",
            ),
        ]
    }

    #[test]
    fn parses_every_field_of_a_hosting_document() {
        let json = doc_json(
            "JDZQJFUVUR8SUWHS",
            "ML Instance",
            json!({"regionCode": "us-east-1", "instanceName": "ml.m5.xlarge", "component": "Hosting",
                   "usagetype": "USE1-Host:ml.m5.xlarge", "vCpu": 4, "gpu": "0"}),
            &[("Hrs", "0", "Inf", Some("0.2300000000"))],
        );
        let doc = parse_price_document(&json).unwrap();
        assert_eq!(doc.sku, "JDZQJFUVUR8SUWHS");
        assert_eq!(doc.product_family.as_deref(), Some("ML Instance"));
        assert_eq!(doc.service_code.as_deref(), Some("AmazonSageMaker"));
        assert_eq!(doc.attribute("component"), Some("Hosting"));
        assert_eq!(
            doc.attribute("vCpu"),
            Some("4"),
            "numeric attributes are kept as text"
        );
        assert_eq!(doc.on_demand.len(), 1);
        let term = &doc.on_demand[0];
        assert_eq!(term.offer_term_code.as_deref(), Some("JRTCKXETXF"));
        assert_eq!(term.effective_date.as_deref(), Some("2026-05-01T00:00:00Z"));
        let dim = &term.dimensions[0];
        assert_eq!(dim.rate_code, "JDZQJFUVUR8SUWHS.JRTCKXETXF.RATE0");
        assert_eq!(dim.unit, "Hrs");
        assert_eq!(dim.begin_range, Decimal::ZERO);
        assert_eq!(dim.end_range, None, "\"Inf\" is unbounded");
        // "0.2300000000" read as text, exactly 23/100.
        assert_eq!(dim.usd_per_unit, Some(Decimal::new(23, 2)));
    }

    #[test]
    fn price_is_read_exactly_from_its_text() {
        // 0.1 + 0.2 style trouble never arises: 10 decimal places survive untouched.
        let json = doc_json(
            "SKU1",
            "ML Instance",
            json!({"component": "Hosting", "instanceName": "ml.p4d.24xlarge", "regionCode": "us-east-1"}),
            &[("Hrs", "0", "Inf", Some("25.2512883001"))],
        );
        let doc = parse_price_document(&json).unwrap();
        assert_eq!(
            doc.on_demand[0].dimensions[0].usd_per_unit,
            Some(dec("25.2512883001"))
        );
    }

    #[test]
    fn hosting_key_picks_the_hosting_product_among_all_components() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let chosen = select_rate(&key, &m5_xlarge_products()).unwrap();
        assert_eq!(chosen.sku, "JDZQJFUVUR8SUWHS");
        assert_eq!(chosen.usd_per_unit, dec("0.23"));
        assert_eq!(
            chosen.effective_date.as_deref(),
            Some("2026-05-01T00:00:00Z")
        );
        assert_eq!(chosen.rate_code, "JDZQJFUVUR8SUWHS.JRTCKXETXF.RATE0");
        assert_eq!(chosen.reason, None, "only one product means hosting");
    }

    /// The ml.m5.xlarge hosting product with `N` on-demand terms: `(offer term
    /// code, effectiveDate, USD per hour)` each.
    fn hosting_with_terms<const N: usize>(terms: [(&str, &str, &str); N]) -> PriceDocument {
        let sku = "JDZQJFUVUR8SUWHS";
        let mut doc: Value = serde_json::from_str(&doc_json(
            sku,
            "ML Instance",
            json!({
                "servicecode": "AmazonSageMaker", "regionCode": "us-east-1",
                "location": "US East (N. Virginia)", "locationType": "AWS Region",
                "instanceName": "ml.m5.xlarge", "usagetype": "USE1-Host:ml.m5.xlarge",
                "operation": "RunInstance", "component": "Hosting",
            }),
            &[],
        ))
        .unwrap();
        let on_demand = doc["terms"]["OnDemand"].as_object_mut().unwrap();
        on_demand.clear();
        for (code, date, usd) in terms {
            let rate_code = format!("{sku}.{code}.6YS6EN2CT7");
            on_demand.insert(
                format!("{sku}.{code}"),
                json!({
                    "sku": sku, "effectiveDate": date, "offerTermCode": code,
                    "termAttributes": {},
                    "priceDimensions": { rate_code.clone(): {
                        "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                        "description": format!("${usd} per Hosting ml.m5.xlarge hour"),
                        "appliesTo": [], "rateCode": rate_code,
                        "pricePerUnit": { "USD": usd },
                    } },
                }),
            );
        }
        parse_price_value(&doc).unwrap()
    }

    /// [`hosting_with_terms`]'s product as SKU `sku`, with one on-demand term
    /// effective `date` at `usd` an hour.
    fn hosting_sku(sku: &str, date: &str, usd: &str) -> PriceDocument {
        let mut doc = hosting_with_terms([("JRTCKXETXF", date, usd)]);
        doc.sku = sku.to_owned();
        doc
    }

    #[test]
    fn of_a_product_s_terms_the_one_in_effect_now_prices_it() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let now = "2026-12-01T00:00:00Z".parse().unwrap();
        // A change published ahead of its date (2099) is not today's price; and a
        // superseded term (2024) next to the current one (2026) is not either. The
        // highest rate won both before: $0.30.
        for terms in [
            [
                ("JRTCKXETXF", "2026-05-01T00:00:00Z", "0.2300000000"),
                ("NEWTERM001", "2099-01-01T00:00:00Z", "0.3000000000"),
            ],
            [
                ("OLDTERM001", "2024-01-01T00:00:00Z", "0.3000000000"),
                ("JRTCKXETXF", "2026-05-01T00:00:00Z", "0.2300000000"),
            ],
        ] {
            let chosen = select_rate_at(&key, &[hosting_with_terms(terms)], Some(now)).unwrap();
            assert_eq!(chosen.usd_per_unit, dec("0.23"), "{terms:?}");
            assert_eq!(
                chosen.effective_date.as_deref(),
                Some("2026-05-01T00:00:00Z")
            );
            assert_eq!(chosen.reason, None);
        }
        // Only terms ahead of their date: the earliest, saying so.
        let ahead = [
            ("NEWTERM002", "2100-01-01T00:00:00Z", "0.3100000000"),
            ("NEWTERM001", "2099-01-01T00:00:00Z", "0.3000000000"),
        ];
        let chosen = select_rate_at(&key, &[hosting_with_terms(ahead)], Some(now)).unwrap();
        assert_eq!(chosen.usd_per_unit, dec("0.30"));
        assert!(
            chosen
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("not in effect until 2099-01-01T00:00:00Z")),
            "{:?}",
            chosen.reason
        );
        // A single term ahead of its date says so too; one in effect says nothing.
        for (date, said) in [
            ("2099-01-01T00:00:00Z", true),
            ("2026-05-01T00:00:00Z", false),
        ] {
            let one = [("JRTCKXETXF", date, "0.2300000000")];
            let chosen = select_rate_at(&key, &[hosting_with_terms(one)], Some(now)).unwrap();
            assert_eq!(chosen.usd_per_unit, dec("0.23"));
            assert_eq!(
                chosen
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains(&format!("not in effect until {date}"))),
                said,
                "{date}: {:?}",
                chosen.reason
            );
        }
    }

    #[test]
    fn terms_of_one_date_all_count_and_the_highest_is_taken() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        // Two terms of one product, both effective 2026-05-01: nothing tells which
        // AWS bills, so both count and the higher, $0.30/h, is the rate (the
        // conservative choice: 720 h × $0.30 = $216.00 a 30-day month, where
        // $0.23 could under-state it by 720 × $0.07 = $50.40), whichever is
        // listed last.
        let tied = hosting_with_terms([
            ("AAAAAAAAAA", "2026-05-01T00:00:00Z", "0.3000000000"),
            ("ZZZZZZZZZZ", "2026-05-01T00:00:00Z", "0.2300000000"),
        ]);
        let now = "2026-11-01T00:00:00Z".parse().unwrap();
        let chosen = select_rate_at(&key, std::slice::from_ref(&tied), Some(now)).unwrap();
        assert_eq!(chosen.usd_per_unit, dec("0.30"));
        assert_eq!(chosen.rate_code, "JDZQJFUVUR8SUWHS.AAAAAAAAAA.6YS6EN2CT7");
        let reason = chosen.reason.unwrap();
        assert!(
            reason.contains("the highest of 2 equally good") && reason.contains("at $0.23"),
            "{reason}"
        );
        // The same when both are still ahead: the earliest date's terms, noted.
        let before = "2026-04-01T00:00:00Z".parse().unwrap();
        let chosen = select_rate_at(&key, &[tied], Some(before)).unwrap();
        assert_eq!(chosen.usd_per_unit, dec("0.30"));
        assert!(
            chosen
                .reason
                .as_deref()
                .is_some_and(|r| r.ends_with("not in effect until 2026-05-01T00:00:00Z")),
            "{:?}",
            chosen.reason
        );
    }

    #[test]
    fn async_key_picks_the_async_product() {
        let key = PriceKey::AsyncInference {
            region: "us-east-1".into(),
            instance_type: "ml.m5.xlarge".into(),
        };
        let chosen = select_rate(&key, &m5_xlarge_products()).unwrap();
        assert_eq!(chosen.sku, "ASYNC0000000001");
    }

    #[test]
    fn training_notebook_studio_cluster_and_upfront_fee_never_price_hosting() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let not_hosting: Vec<_> = m5_xlarge_products()
            .into_iter()
            .filter(|d| d.attribute("component") != Some("Hosting"))
            .filter(|d| d.attribute("component") != Some("AsyncInf"))
            .collect();
        assert_eq!(not_hosting.len(), 5);
        assert_eq!(
            select_rate(&key, &not_hosting),
            Err(PriceError::NotFound { key })
        );
    }

    #[test]
    fn upfront_fee_row_never_gives_an_hourly_price() {
        // No component, unit Quantity: never an hourly price, whatever it is called.
        let fee = instance_doc(
            "FEE",
            "USE1-Host:ml.m5.xlarge",
            None,
            "Quantity",
            "13.5700000000",
        );
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let err = select_rate(&key, &[fee]).unwrap_err();
        let PriceError::Malformed { reason } = err else {
            panic!("{err:?}")
        };
        assert!(reason.contains("none priced per Hrs"), "{reason}");
        assert!(reason.contains("Quantity"), "{reason}");
    }

    #[test]
    fn hosting_usagetype_spelled_hosting_prices_the_instance_hour() {
        // A GovCloud bill's Line Item Usage Type reads `UGW1-Hosting:ml.g5.24xlarge`,
        // not `…-Host:…`. The product names its component and instance: its hourly rate
        // is the hosting rate, so a 2 s call on one instance at 8.50 USD/h would carry
        // 8.5 × 2 / 3600 USD, where the product was taken for another component's.
        let json = doc_json(
            "GOV",
            "ML Instance",
            json!({"regionCode": "us-gov-west-1", "instanceName": "ml.g5.24xlarge",
                   "component": "Hosting", "usagetype": "UGW1-Hosting:ml.g5.24xlarge"}),
            &[("Hrs", "0", "Inf", Some("8.5000000000"))],
        );
        let doc = parse_price_document(&json).unwrap();
        let key = PriceKey::hosting("us-gov-west-1", "ml.g5.24xlarge");
        assert_eq!(
            select_rate(&key, std::slice::from_ref(&doc))
                .unwrap()
                .usd_per_unit,
            dec("8.5")
        );
        // Spelled so, it is still no training or notebook row's kind.
        let training = doc_json(
            "GOVT",
            "ML Instance",
            json!({"regionCode": "us-gov-west-1", "instanceName": "ml.g5.24xlarge",
                   "usagetype": "UGW1-Train:ml.g5.24xlarge"}),
            &[("Hrs", "0", "Inf", Some("9.0000000000"))],
        );
        let training = parse_price_document(&training).unwrap();
        assert!(matches!(
            select_rate(&key, &[training]),
            Err(PriceError::NotFound { .. })
        ));
        // Nor does it make an async key take the hosting product.
        let async_key = PriceKey::AsyncInference {
            region: "us-gov-west-1".into(),
            instance_type: "ml.g5.24xlarge".into(),
        };
        assert!(matches!(
            select_rate(&async_key, &[doc]),
            Err(PriceError::NotFound { .. })
        ));
    }

    #[test]
    fn product_without_component_or_usagetype_is_not_guessed() {
        let json = doc_json(
            "BARE",
            "ML Instance",
            json!({"regionCode": "us-east-1", "instanceName": "ml.m5.xlarge"}),
            &[("Hrs", "0", "Inf", Some("0.2300000000"))],
        );
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let doc = parse_price_document(&json).unwrap();
        assert!(matches!(
            select_rate(&key, &[doc]),
            Err(PriceError::NotFound { .. })
        ));
    }

    #[test]
    fn two_hosting_products_prefer_exact_usagetype_then_say_why() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        // A component=Hosting row whose usagetype is a free-tier parent, at a higher price,
        // loses to the exact usagetype.
        let parent = instance_doc(
            "PARENT",
            "Host:ml.m.xlarge-HostingParent",
            Some("Hosting"),
            "Hrs",
            "0.3000000000",
        );
        let exact = instance_doc(
            "EXACT",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.2300000000",
        );
        let chosen = select_rate(&key, &[parent, exact]).unwrap();
        assert_eq!(chosen.sku, "EXACT");
        assert_eq!(
            chosen.reason.as_deref(),
            Some(
                "2 prices matched hosting ml.m5.xlarge in us-east-1; chose SKU EXACT at $0.23 (exact usagetype match) over SKU PARENT at $0.3"
            )
        );
    }

    #[test]
    fn equally_good_products_choose_the_highest_rate() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let a = instance_doc(
            "AAA",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.2300000000",
        );
        let b = instance_doc(
            "BBB",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.2500000000",
        );
        let chosen = select_rate(&key, &[a, b]).unwrap();
        assert_eq!(chosen.sku, "BBB");
        assert_eq!(chosen.usd_per_unit, dec("0.25"));
        let reason = chosen.reason.unwrap();
        assert!(
            reason.contains("the highest of 2 equally good, the conservative choice"),
            "{reason}"
        );
    }

    #[test]
    fn zero_price_is_skipped_when_a_positive_one_exists() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let free = instance_doc(
            "FREE",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.0000000000",
        );
        let paid = instance_doc(
            "PAID",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.2300000000",
        );
        let chosen = select_rate(&key, &[free, paid]).unwrap();
        assert_eq!(chosen.sku, "PAID");
        assert_eq!(chosen.reason.as_deref(), Some("skipped 1 $0 row(s)"));
    }

    #[test]
    fn a_product_listing_only_zero_is_an_error_not_a_zero_price() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let free = instance_doc(
            "FREE",
            "USE1-Host:ml.m5.xlarge",
            Some("Hosting"),
            "Hrs",
            "0.0000000000",
        );
        assert_eq!(
            select_rate(&key, &[free]),
            Err(PriceError::ZeroOnly {
                key: key.clone(),
                reason: "the Price List lists only $0 for hosting ml.m5.xlarge in us-east-1 \
                         (SKU FREE: a free-tier or bookkeeping row with no paid tier)"
                    .into()
            })
        );
        // What a receipt's unpriced line will say.
        let text = select_rate(
            &key,
            &[instance_doc(
                "FREE",
                "USE1-Host:ml.m5.xlarge",
                Some("Hosting"),
                "Hrs",
                "0",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(text.ends_with("; not priced at $0"), "{text}");
    }

    #[test]
    fn only_the_chosen_price_says_it_is_not_in_effect_yet() {
        let now = "2026-09-01T00:00:00Z".parse().unwrap();
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        // Two products for the key, each with only a term ahead of its date; the same
        // usagetype, so the higher rate, $0.30, is chosen over $0.23.
        let docs = [
            hosting_sku("SKUA", "2099-01-01T00:00:00Z", "0.2300000000"),
            hosting_sku("SKUB", "2098-01-01T00:00:00Z", "0.3000000000"),
        ];
        let chosen = select_rate_at(&key, &docs, Some(now)).unwrap();
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("SKUB", dec("0.30"))
        );
        let reason = chosen.reason.unwrap();
        // SKUB's date, not SKUA's, whose price the receipt does not charge.
        assert!(
            reason.ends_with("; SKU SKUB's price is not in effect until 2098-01-01T00:00:00Z"),
            "{reason}"
        );
        assert!(!reason.contains("2099"), "{reason}");
    }

    #[test]
    fn a_product_announced_for_later_does_not_outbid_the_one_in_effect() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        // Two products of usagetype USE1-Host:ml.m5.xlarge: SKUA's only term in
        // effect from 2026-05-01 at $0.23/h, SKUB's only term announced for
        // 2026-12-01 at $0.30/h. AWS bills SKUA's $0.23 until 2026-12-01: November
        // is 30 days = 720 h, 720 × $0.23 = $165.60 an instance, where $0.30 would
        // say 720 × $0.30 = $216.00, $50.40 over.
        let docs = [
            hosting_sku("SKUA", "2026-05-01T00:00:00Z", "0.2300000000"),
            hosting_sku("SKUB", "2026-12-01T00:00:00Z", "0.3000000000"),
        ];
        let november = "2026-11-01T00:00:00Z".parse().unwrap();
        let chosen = select_rate_at(&key, &docs, Some(november)).unwrap();
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("SKUA", dec("0.23"))
        );
        assert_eq!(
            chosen.effective_date.as_deref(),
            Some("2026-05-01T00:00:00Z")
        );
        assert_eq!(chosen.reason, None, "SKUB is not a price of November");
        // From 2026-12-01 both are in effect, equally good evidence: the higher,
        // $0.30, as rule 6 says.
        let december = "2026-12-01T00:00:00Z".parse().unwrap();
        let chosen = select_rate_at(&key, &docs, Some(december)).unwrap();
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("SKUB", dec("0.30"))
        );
        let reason = chosen.reason.unwrap();
        assert!(
            reason
                .starts_with("2 prices matched hosting ml.m5.xlarge in us-east-1; chose SKU SKUB"),
            "{reason}"
        );
        assert!(!reason.contains("not in effect"), "{reason}");
    }

    /// The on-demand serverless document for 2 GB in us-east-1 as AWS shapes it: a
    /// free allowance of 150,000 seconds at $0, then $0.00004 a second.
    fn serverless_2gb_with_free_tier(dims: &[(&str, &str, &str, Option<&str>)]) -> PriceDocument {
        parse_price_document(&doc_json(
            "SRV2GB",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-2GB"}),
            dims,
        ))
        .unwrap()
    }

    #[test]
    fn free_first_tier_is_passed_over_for_the_first_paid_tier() {
        let doc = serverless_2gb_with_free_tier(&[
            ("second", "0", "150000", Some("0.0000000000")),
            ("second", "150000", "Inf", Some("0.0000400000")),
        ]);
        let chosen = select_rate(&PriceKey::serverless("us-east-1", 2), &[doc]).unwrap();
        // The paid tier's "0.0000400000", not the $0 allowance.
        assert_eq!(chosen.usd_per_unit, dec("0.00004"));
        assert_eq!(chosen.rate_code, "SRV2GB.JRTCKXETXF.RATE1");
        // The free tier ends at 150000, in seconds.
        assert_eq!(
            chosen.reason.as_deref(),
            Some("free tier of 150000 second(s) per month not applied")
        );
    }

    #[test]
    fn the_free_tier_note_states_only_the_usage_every_tier_agrees_is_free() {
        let key = PriceKey::serverless("us-east-1", 2);
        for (dims, allowance) in [
            // Two $0 tiers from 0 that disagree (0-100 and 0-150000 seconds): only the
            // first 100 seconds are free by both; the paid tier from 150000.
            (
                &[
                    ("second", "0", "100", Some("0.0000000000")),
                    ("second", "0", "150000", Some("0.0000000000")),
                    ("second", "150000", "Inf", Some("0.0000400000")),
                ][..],
                "100",
            ),
            // A $0 tier to 150000 overlapped by the paid tier from 100: from second 100
            // on the schedule also says $0.00004, so 100 seconds are free.
            (
                &[
                    ("second", "0", "150000", Some("0.0000000000")),
                    ("second", "100", "Inf", Some("0.0000400000")),
                ][..],
                "100",
            ),
            // $0 from 0 to Inf beside a paid tier from 150000: free up to 150000.
            (
                &[
                    ("second", "0", "Inf", Some("0.0000000000")),
                    ("second", "150000", "Inf", Some("0.0000400000")),
                ][..],
                "150000",
            ),
        ] {
            let chosen = select_rate(&key, &[serverless_2gb_with_free_tier(dims)]).unwrap();
            assert_eq!(chosen.usd_per_unit, dec("0.00004"), "{dims:?}");
            assert_eq!(
                chosen.reason,
                Some(format!(
                    "free tier of {allowance} second(s) per month not applied"
                )),
                "{dims:?}"
            );
        }
    }

    #[test]
    fn free_first_tier_then_volume_tiers_uses_the_lowest_paid_begin_range() {
        // Listed out of order on purpose: the tiers are ordered by beginRange.
        let doc = serverless_2gb_with_free_tier(&[
            ("second", "1000000", "Inf", Some("0.0000350000")),
            ("second", "150000", "1000000", Some("0.0000400000")),
            ("second", "0", "150000", Some("0.0000000000")),
        ]);
        let chosen = select_rate(&PriceKey::serverless("us-east-1", 2), &[doc]).unwrap();
        // The tier from 150000 (RATE1, $0.00004), not the cheaper one from 1000000.
        assert_eq!(chosen.usd_per_unit, dec("0.00004"));
        assert_eq!(chosen.rate_code, "SRV2GB.JRTCKXETXF.RATE1");
    }

    #[test]
    fn positive_first_tier_is_used_even_when_later_tiers_are_cheaper() {
        let doc = serverless_2gb_with_free_tier(&[
            ("second", "0", "150000", Some("0.0000400000")),
            ("second", "150000", "Inf", Some("0.0000300000")),
        ]);
        let chosen = select_rate(&PriceKey::serverless("us-east-1", 2), &[doc]).unwrap();
        // The list price from 0, $0.00004; no free tier to mention.
        assert_eq!(chosen.usd_per_unit, dec("0.00004"));
        assert_eq!(chosen.rate_code, "SRV2GB.JRTCKXETXF.RATE0");
        assert_eq!(chosen.reason, None);
    }

    #[test]
    fn free_tier_with_no_paid_tier_after_is_zero_only() {
        let key = PriceKey::serverless("us-east-1", 2);
        for dims in [
            &[("second", "0", "150000", Some("0.0000000000"))][..],
            &[
                ("second", "0", "150000", Some("0.0000000000")),
                ("second", "150000", "Inf", Some("0.0000000000")),
            ][..],
        ] {
            let err = select_rate(&key, &[serverless_2gb_with_free_tier(dims)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                "the Price List lists only $0 for serverless 2 GB in us-east-1 (SKU SRV2GB: a \
                 free-tier or bookkeeping row with no paid tier); not priced at $0"
            );
        }
    }

    #[test]
    fn a_zero_only_product_is_skipped_beside_a_free_tier_product_with_a_paid_tier() {
        let key = PriceKey::serverless("us-east-1", 2);
        let parent = parse_price_document(&doc_json(
            "PARENT",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-2GB"}),
            &[("second", "0", "Inf", Some("0.0000000000"))],
        ))
        .unwrap();
        let tiered = serverless_2gb_with_free_tier(&[
            ("second", "0", "150000", Some("0.0000000000")),
            ("second", "150000", "Inf", Some("0.0000400000")),
        ]);
        let chosen = select_rate(&key, &[parent, tiered]).unwrap();
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("SRV2GB", dec("0.00004"))
        );
        assert_eq!(
            chosen.reason.as_deref(),
            Some("free tier of 150000 second(s) per month not applied; skipped 1 $0 row(s)")
        );
    }

    #[test]
    fn tiered_dimensions_use_the_tier_starting_at_zero() {
        let json = doc_json(
            "TIERED",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-Hst:Data-Bytes-Out"}),
            &[
                ("GB", "10240", "Inf", Some("0.0100000000")),
                ("GB", "0", "10240", Some("0.0160000000")),
            ],
        );
        let doc = parse_price_document(&json).unwrap();
        let dims = &doc.on_demand[0].dimensions;
        assert_eq!(dims[0].end_range, None);
        assert_eq!(dims[1].end_range, Some(dec("10240")));
        let chosen = select_rate(
            &PriceKey::DataOut {
                region: "us-east-1".into(),
            },
            &[doc],
        )
        .unwrap();
        assert_eq!(chosen.usd_per_unit, dec("0.016"));
        assert_eq!(chosen.rate_code, "TIERED.JRTCKXETXF.RATE1");
    }

    #[test]
    fn only_later_tiers_is_malformed() {
        let json = doc_json(
            "LATER",
            "ML Instance",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-Hst:Data-Bytes-In"}),
            &[("GB", "100", "Inf", Some("0.0100000000"))],
        );
        let doc = parse_price_document(&json).unwrap();
        let err = select_rate(
            &PriceKey::DataIn {
                region: "us-east-1".into(),
            },
            &[doc],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no price tier starting at 0"),
            "{err}"
        );
    }

    #[test]
    fn wrong_unit_is_malformed_and_names_the_units_seen() {
        let json = doc_json(
            "STORAGE",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-3GB"}),
            &[("GB-Mo", "0", "Inf", Some("0.1400000000"))],
        );
        let doc = parse_price_document(&json).unwrap();
        let err = select_rate(&PriceKey::serverless("us-east-1", 3), &[doc]).unwrap_err();
        assert_eq!(
            err,
            PriceError::Malformed {
                reason: "1 product(s) for serverless 3 GB in us-east-1 (SKU STORAGE) but none priced per second (units seen: GB-Mo)".into()
            }
        );
    }

    #[test]
    fn a_product_priced_only_in_cny_says_so() {
        // China's Price List prices in CNY only; sagemeter never converts currencies.
        let json = doc_json(
            "CNYONLY",
            "ML Instance",
            json!({"regionCode": "cn-north-1", "instanceName": "ml.m5.xlarge", "component": "Hosting"}),
            &[("Hrs", "0", "Inf", None)],
        );
        let doc = parse_price_document(&json).unwrap();
        assert_eq!(doc.on_demand[0].dimensions[0].usd_per_unit, None);
        let key = PriceKey::hosting("cn-north-1", "ml.m5.xlarge");
        let err = select_rate(&key, &[doc]).unwrap_err();
        assert_eq!(
            err,
            PriceError::OtherCurrency {
                key,
                currencies: "CNY".into()
            }
        );
        assert!(err.to_string().contains("only in CNY"), "{err}");
    }

    #[test]
    fn missing_usd_is_malformed() {
        // `pricePerUnit` with no currency at all (or none named by an ISO code).
        let json = doc_json(
            "NOPRICE",
            "ML Instance",
            json!({"regionCode": "us-east-1", "instanceName": "ml.m5.xlarge", "component": "Hosting"}),
            &[("Hrs", "0", "Inf", None)],
        )
        .replace(r#""CNY":"1.6000000000""#, r#""yuan":"1.6""#);
        let doc = parse_price_document(&json).unwrap();
        assert_eq!(doc.on_demand[0].dimensions[0].usd_per_unit, None);
        let err = select_rate(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"), &[doc]).unwrap_err();
        assert!(err.to_string().contains("no USD price per Hrs"), "{err}");
    }

    #[test]
    fn serverless_memory_size_comes_from_the_usagetype() {
        let docs: Vec<_> = [("1", "0.0000200000"), ("3", "0.0000600000"), ("6", "0.0001200000")]
            .iter()
            .map(|(gb, usd)| {
                parse_price_document(&doc_json(
                    &format!("SRV{gb}"),
                    "ML Serverless",
                    json!({"regionCode": "us-east-1", "usagetype": format!("USE1-ServerlessInf:Mem-{gb}GB")}),
                    &[("Second", "0", "Inf", Some(usd))],
                ))
                .unwrap()
            })
            .collect();
        let chosen = select_rate(&PriceKey::serverless("us-east-1", 3), &docs).unwrap();
        assert_eq!(chosen.sku, "SRV3");
        assert_eq!(chosen.usd_per_unit, dec("0.00006"));
        let missing = select_rate(&PriceKey::serverless("us-east-1", 4), &docs);
        assert!(matches!(missing, Err(PriceError::NotFound { .. })));
    }

    /// A provisioned-concurrency product for 2 GB in us-east-1, hand-written in the
    /// Price List's shape: usagetype `USE1-ProvisionedConcurrency:<detail>`, an
    /// optional `group`, one per-second dimension with `description`.
    fn pc_doc(
        sku: &str,
        detail: &str,
        group: Option<&str>,
        description: &str,
        usd: &str,
    ) -> PriceDocument {
        let mut attrs = json!({
            "servicecode": "AmazonSageMaker", "regionCode": "us-east-1",
            "location": "US East (N. Virginia)", "locationType": "AWS Region",
            "usagetype": format!("USE1-ProvisionedConcurrency:{detail}"),
            "operation": "RunInstance",
        });
        if let Some(group) = group {
            attrs["group"] = json!(group);
        }
        let mut doc: Value = serde_json::from_str(&doc_json(
            sku,
            "ML Serverless",
            attrs,
            &[("Second", "0", "Inf", Some(usd))],
        ))
        .unwrap();
        doc["terms"]["OnDemand"][format!("{sku}.JRTCKXETXF")]["priceDimensions"]
            [format!("{sku}.JRTCKXETXF.RATE0")]["description"] = json!(description);
        parse_price_value(&doc).unwrap()
    }

    fn standing_2gb() -> PriceKey {
        PriceKey::ProvisionedConcurrency {
            region: "us-east-1".into(),
            memory_gb: 2,
        }
    }

    fn inference_2gb() -> PriceKey {
        PriceKey::ProvisionedConcurrencyUsage {
            region: "us-east-1".into(),
            memory_gb: 2,
        }
    }

    const STANDING_TEXT: &str = "$0.0000100000 per second of Provisioned Concurrency for \
                                 Serverless Inference 2GB in US East (N. Virginia)";
    const INFERENCE_TEXT: &str = "$0.0000233000 per second of inference duration with \
                                  Provisioned Concurrency for Serverless Inference 2GB in US East \
                                  (N. Virginia)";

    #[test]
    fn pc_a_description_quoting_the_product_s_name_says_nothing_of_which_charge() {
        // "Serverless Inference with Provisioned Concurrency" is the product's name:
        // a charge that quotes it is not thereby the standing charge. Read as such,
        // both products below were the standing charge and the higher rate won
        // (0.0000233 USD/s for 0.00001); with groups, the Mem product's group and
        // description contradicted each other and it was refused.
        let named = "$0.0000233000 per second of Serverless Inference with Provisioned \
                     Concurrency 2GB in US East (N. Virginia)";
        for groups in [None, Some(("-Usage", "-Duration"))] {
            let group = |g: Option<&str>| g.map(|g| format!("ServerlessProvisionedConcurrency{g}"));
            let docs = [
                pc_doc(
                    "PCUSAGE",
                    "Usage-2GB",
                    group(groups.map(|g| g.0)).as_deref(),
                    STANDING_TEXT,
                    "0.0000100000",
                ),
                pc_doc(
                    "PCMEM",
                    "Mem-2GB",
                    group(groups.map(|g| g.1)).as_deref(),
                    named,
                    "0.0000233000",
                ),
            ];
            let standing = select_rate(&standing_2gb(), &docs).unwrap();
            assert_eq!(standing.usd_per_unit, dec("0.00001"), "groups {groups:?}");
            let inference = select_rate(&inference_2gb(), &docs).unwrap();
            assert_eq!(
                inference.usd_per_unit,
                dec("0.0000233"),
                "groups {groups:?}"
            );
        }
    }

    #[test]
    fn pc_named_usage_for_standing_and_mem_for_inference_is_read_from_group_and_description() {
        // The reading where `:Usage-2GB` is the capacity provisioned (group …-Usage) and
        // `:Mem-2GB` the inference duration (group …-Duration).
        let docs = [
            pc_doc(
                "PCUSAGE",
                "Usage-2GB",
                Some("ServerlessProvisionedConcurrency-Usage"),
                STANDING_TEXT,
                "0.0000100000",
            ),
            pc_doc(
                "PCMEM",
                "Mem-2GB",
                Some("ServerlessProvisionedConcurrency-Duration"),
                INFERENCE_TEXT,
                "0.0000233000",
            ),
        ];
        let standing = select_rate(&standing_2gb(), &docs).unwrap();
        // "0.0000100000" per second provisioned.
        assert_eq!(
            (standing.sku.as_str(), standing.usd_per_unit),
            ("PCUSAGE", dec("0.00001"))
        );
        assert_eq!(
            standing.reason.as_deref(),
            Some(&*format!(
                "SKU PCUSAGE is the standing charge per second provisioned per its group \
                 \"ServerlessProvisionedConcurrency-Usage\" and its description {STANDING_TEXT:?}"
            ))
        );
        let inference = select_rate(&inference_2gb(), &docs).unwrap();
        // "0.0000233000" per second of inference.
        assert_eq!(
            (inference.sku.as_str(), inference.usd_per_unit),
            ("PCMEM", dec("0.0000233"))
        );
        let why = inference.reason.unwrap();
        assert!(
            why.starts_with(
                "SKU PCMEM is the inference duration of calls served by provisioned concurrency \
                 per its group \"ServerlessProvisionedConcurrency-Duration\""
            ),
            "{why}"
        );
    }

    #[test]
    fn pc_named_mem_for_standing_and_usage_for_inference_is_read_from_group_and_description() {
        // The reverse naming: `:Mem-2GB` the capacity provisioned, `:Usage-2GB` the
        // inference duration. The group and description still say which is which.
        let docs = [
            pc_doc(
                "PCMEM",
                "Mem-2GB",
                Some("ServerlessProvisionedConcurrency-Usage"),
                STANDING_TEXT,
                "0.0000100000",
            ),
            pc_doc(
                "PCUSAGE",
                "Usage-2GB",
                Some("ServerlessProvisionedConcurrency-Duration"),
                INFERENCE_TEXT,
                "0.0000233000",
            ),
        ];
        let standing = select_rate(&standing_2gb(), &docs).unwrap();
        assert_eq!(
            (standing.sku.as_str(), standing.usd_per_unit),
            ("PCMEM", dec("0.00001"))
        );
        let why = standing.reason.unwrap();
        assert!(
            why.ends_with(
                "(its usagetype USE1-ProvisionedConcurrency:Mem-2GB alone would have been read \
                 the other way)"
            ),
            "{why}"
        );
        let inference = select_rate(&inference_2gb(), &docs).unwrap();
        assert_eq!(
            (inference.sku.as_str(), inference.usd_per_unit),
            ("PCUSAGE", dec("0.0000233"))
        );
    }

    #[test]
    fn provisioned_concurrency_description_alone_decides_without_a_group() {
        // Mem named standing, said only by the descriptions.
        let docs = [
            pc_doc("PCMEM", "Mem-2GB", None, STANDING_TEXT, "0.0000100000"),
            pc_doc("PCUSAGE", "Usage-2GB", None, INFERENCE_TEXT, "0.0000233000"),
        ];
        let standing = select_rate(&standing_2gb(), &docs).unwrap();
        assert_eq!(standing.sku, "PCMEM");
        assert!(standing.reason.unwrap().starts_with(
            "SKU PCMEM is the standing charge per second provisioned per its description"
        ));
        assert_eq!(select_rate(&inference_2gb(), &docs).unwrap().sku, "PCUSAGE");
    }

    #[test]
    fn provisioned_concurrency_usagetype_name_decides_only_when_group_and_description_are_silent() {
        // Descriptions that name no charge, no group: `Usage-` is taken as the standing
        // charge and `Mem-` as inference duration, and the reason says so.
        let docs = [
            pc_doc(
                "PCUSAGE",
                "Usage-2GB",
                None,
                "$0.0000100000 per Second",
                "0.0000100000",
            ),
            pc_doc(
                "PCMEM",
                "Mem-2GB",
                None,
                "$0.0000233000 per Second",
                "0.0000233000",
            ),
        ];
        let standing = select_rate(&standing_2gb(), &docs).unwrap();
        assert_eq!(
            (standing.sku.as_str(), standing.usd_per_unit),
            ("PCUSAGE", dec("0.00001"))
        );
        assert_eq!(
            standing.reason.as_deref(),
            Some(
                "SKU PCUSAGE is taken as the standing charge per second provisioned from its \
                 usagetype USE1-ProvisionedConcurrency:Usage-2GB alone (neither its group nor its \
                 description says which charge it is)"
            )
        );
        let inference = select_rate(&inference_2gb(), &docs).unwrap();
        assert_eq!(
            (inference.sku.as_str(), inference.usd_per_unit),
            ("PCMEM", dec("0.0000233"))
        );
    }

    #[test]
    fn provisioned_concurrency_whose_group_and_description_disagree_is_not_guessed() {
        // Group says standing charge, description says inference duration.
        let confused = pc_doc(
            "CONFUSED",
            "Mem-2GB",
            Some("ServerlessProvisionedConcurrency-Usage"),
            INFERENCE_TEXT,
            "0.0000233000",
        );
        for key in [standing_2gb(), inference_2gb()] {
            let err = select_rate(&key, std::slice::from_ref(&confused)).unwrap_err();
            let PriceError::Malformed { reason } = &err else {
                panic!("{err:?}")
            };
            assert!(
                reason.starts_with(&format!(
                    "no product prices {key} unambiguously: SKU CONFUSED"
                )),
                "{reason}"
            );
            assert!(reason.ends_with("; not guessed"), "{reason}");
        }
        // Beside a product that says clearly what it is, the confused one is skipped
        // and named.
        let clear = pc_doc(
            "CLEAR",
            "Usage-2GB",
            Some("ServerlessProvisionedConcurrency-Usage"),
            STANDING_TEXT,
            "0.0000100000",
        );
        let chosen = select_rate(&standing_2gb(), &[confused, clear]).unwrap();
        assert_eq!(chosen.sku, "CLEAR");
        assert!(
            chosen
                .reason
                .unwrap()
                .contains("skipped 1 self-contradicting product(s): SKU CONFUSED")
        );
    }

    /// Whether a product may price a key is decided from its attributes, before its
    /// prices are read: a Training product never may price hosting, nor notebook
    /// storage hosting storage; a storage product whose volumeType and usagetype
    /// disagree may (alone, it leaves the key with no rate); a provisioned-concurrency
    /// product of the key's memory size may price either charge (its descriptions,
    /// in its terms, can tell which or contradict its group), of another size neither.
    #[test]
    fn what_a_product_may_price_is_told_by_its_attributes() {
        let instance = |sku: &str, component: &str, usage: &str| {
            parse_price_document(&doc_json(
                sku,
                "ML Instance",
                json!({ "regionCode": "us-east-1", "instanceName": "ml.m5.xlarge",
                        "component": component, "usagetype": usage }),
                &[("Hrs", "0", "Inf", Some("0.2300000000"))],
            ))
            .unwrap()
        };
        let hosting = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        assert!(may_price(
            &hosting,
            &instance("HOST", "Hosting", "USE1-Host:ml.m5.xlarge")
        ));
        assert!(!may_price(
            &hosting,
            &instance("TRAIN", "Training", "USE1-Train:ml.m5.xlarge")
        ));

        let volume = |sku: &str, volume: &str, usage: &str| {
            parse_price_document(&doc_json(
                sku,
                "Storage",
                json!({ "regionCode": "us-east-1", "volumeType": volume, "usagetype": usage }),
                &[("GB-Mo", "0", "Inf", Some("0.1400000000"))],
            ))
            .unwrap()
        };
        let storage = PriceKey::storage("us-east-1");
        let hosting_volume = "General Purpose-Hosting";
        assert!(may_price(
            &storage,
            &volume("HOSTVOL", hosting_volume, "USE1-Host:VolumeUsage.gp2")
        ));
        assert!(!may_price(
            &storage,
            &volume(
                "NBVOL",
                "General Purpose-Notebook",
                "USE1-Notebk:VolumeUsage.gp2"
            )
        ));
        let contradicting = volume("BOTH", hosting_volume, "USE1-Notebk:VolumeUsage.gp2");
        assert!(matches!(
            select_rate(&storage, std::slice::from_ref(&contradicting)),
            Err(PriceError::Malformed { .. })
        ));
        assert!(may_price(&storage, &contradicting));

        // The descriptions say the standing charge; the usagetype name alone says
        // inference duration: it may be either.
        let silent = pc_doc("PCMEM", "Mem-2GB", None, STANDING_TEXT, "0.0000100000");
        assert_eq!(
            select_rate(&standing_2gb(), std::slice::from_ref(&silent))
                .unwrap()
                .sku,
            "PCMEM"
        );
        assert!(may_price(&standing_2gb(), &silent));
        assert!(may_price(&inference_2gb(), &silent));
        // Its group says the standing charge, but a description could contradict it.
        let grouped = pc_doc(
            "PCUSAGE",
            "Mem-2GB",
            Some("ServerlessProvisionedConcurrency-Usage"),
            INFERENCE_TEXT,
            "0.0000100000",
        );
        assert!(matches!(
            select_rate(&inference_2gb(), std::slice::from_ref(&grouped)),
            Err(PriceError::Malformed { .. })
        ));
        assert!(may_price(&inference_2gb(), &grouped));
        let other_size = pc_doc("PC3GB", "Mem-3GB", None, STANDING_TEXT, "0.0000150000");
        assert!(!may_price(&standing_2gb(), &other_size));
        assert!(!may_price(&inference_2gb(), &other_size));
    }

    #[test]
    fn provisioned_concurrency_of_another_memory_size_is_not_used() {
        let doc = pc_doc(
            "PC4GB",
            "Usage-4GB",
            Some("ServerlessProvisionedConcurrency-Usage"),
            STANDING_TEXT,
            "0.0000200000",
        );
        assert!(matches!(
            select_rate(&standing_2gb(), &[doc]),
            Err(PriceError::NotFound { .. })
        ));
    }

    #[test]
    fn what_group_and_description_words_say() {
        use PcCharge::*;
        assert_eq!(
            group_says("ServerlessProvisionedConcurrency-Usage"),
            Some(Standing)
        );
        assert_eq!(
            group_says("ServerlessProvisionedConcurrency-Duration"),
            Some(InferenceDuration)
        );
        assert_eq!(
            group_says("ServerlessInference"),
            None,
            "the product name says nothing"
        );
        assert_eq!(group_says("Hosting:IN"), None);
        assert_eq!(description_says(STANDING_TEXT), Some(Standing));
        assert_eq!(description_says(INFERENCE_TEXT), Some(InferenceDuration));
        assert_eq!(
            description_says("$0.0000233 per second for USE1-ProvisionedConcurrency:Mem-2GB"),
            None,
            "a quoted usagetype is one word, not \"provisioned\""
        );
        assert_eq!(
            description_says("Provisioned Concurrency execution"),
            Some(InferenceDuration)
        );
    }

    /// An ML storage product in us-east-1 (productFamily `Storage`, unit `GB-Mo`).
    fn storage_doc(sku: &str, attrs: Value, unit: &str, usd: &str) -> PriceDocument {
        let mut attributes = json!({
            "servicecode": "AmazonSageMaker", "regionCode": "us-east-1",
            "location": "US East (N. Virginia)", "locationType": "AWS Region",
        });
        for (name, value) in attrs.as_object().unwrap() {
            attributes[name] = value.clone();
        }
        parse_price_document(&doc_json(
            sku,
            "Storage",
            attributes,
            &[(unit, "0", "Inf", Some(usd))],
        ))
        .unwrap()
    }

    /// What productFamily `Storage` holds in us-east-1: one volume product per use.
    fn storage_products() -> Vec<PriceDocument> {
        vec![
            storage_doc(
                "NOTEBOOKVOL",
                json!({"volumeType": "General Purpose-Notebook", "usagetype": "USE1-Notebk:VolumeUsage.gp2"}),
                "GB-Mo",
                "0.1400000000",
            ),
            storage_doc(
                "HOSTVOL",
                json!({"volumeType": "General Purpose-Hosting", "usagetype": "USE1-Host:VolumeUsage.gp2",
                       "platoclassificationtype": "Host:VolumeUsage", "operation": "CreateVolume-Gp2"}),
                "GB-Mo",
                "0.1400000000",
            ),
            storage_doc(
                "PROCVOL",
                json!({"volumeType": "General Purpose-Processing", "usagetype": "USE1-Processing:VolumeUsage.gp2"}),
                "GB-Mo",
                "0.1400000000",
            ),
            storage_doc(
                "STUDIOVOL",
                json!({"usagetype": "USE1-Studio:VolumeUsage.gp3"}),
                "GB-Mo",
                "0.1120000000",
            ),
        ]
    }

    #[test]
    fn storage_key_picks_the_hosting_volume_per_gb_month() {
        let chosen = select_rate(&PriceKey::storage("us-east-1"), &storage_products()).unwrap();
        // "0.1400000000" per GB-Mo, from the General Purpose-Hosting product only.
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("HOSTVOL", dec("0.14"))
        );
        assert_eq!(chosen.reason, None, "only one product is hosting storage");
        assert_eq!(
            PriceKey::storage("us-east-1").unit(),
            PriceUnit::GigabyteMonth
        );
    }

    #[test]
    fn storage_is_recognised_by_volume_type_or_usagetype_alone() {
        let key = PriceKey::storage("us-east-1");
        let by_volume = storage_doc(
            "V",
            json!({"volumeType": "General Purpose-Hosting"}),
            "GB-Mo",
            "0.14",
        );
        let by_usage = storage_doc(
            "U",
            json!({"usagetype": "Host:VolumeUsage.gp2"}),
            "GB-Mo",
            "0.14",
        );
        let neither = storage_doc("N", json!({}), "GB-Mo", "0.14");
        assert_eq!(select_rate(&key, &[by_volume]).unwrap().sku, "V");
        assert_eq!(select_rate(&key, &[by_usage]).unwrap().sku, "U");
        assert_eq!(
            select_rate(&key, &[neither]),
            Err(PriceError::NotFound { key })
        );
    }

    #[test]
    fn storage_whose_volume_type_and_usagetype_disagree_is_not_guessed() {
        let key = PriceKey::storage("us-east-1");
        let doc = storage_doc(
            "ODD",
            json!({"volumeType": "General Purpose-Hosting", "usagetype": "USE1-Notebk:VolumeUsage.gp2"}),
            "GB-Mo",
            "0.14",
        );
        let err = select_rate(&key, &[doc]).unwrap_err();
        assert!(err.to_string().contains("SKU ODD: its volumeType"), "{err}");
    }

    #[test]
    fn storage_priced_per_gb_instead_of_gb_month_is_not_used() {
        let key = PriceKey::storage("us-east-1");
        let doc = storage_doc(
            "PERGB",
            json!({"volumeType": "General Purpose-Hosting"}),
            "GB",
            "0.14",
        );
        let err = select_rate(&key, &[doc]).unwrap_err();
        assert!(
            err.to_string()
                .contains("none priced per GB-Mo (units seen: GB)"),
            "{err}"
        );
        // And a data key never takes a GB-Mo price.
        let vol = storage_doc(
            "VOL",
            json!({"usagetype": "USE1-Hst:Data-Bytes-In"}),
            "GB-Mo",
            "0.14",
        );
        let data = PriceKey::DataIn {
            region: "us-east-1".into(),
        };
        assert!(select_rate(&data, &[vol]).is_err());
    }

    #[test]
    fn serverless_fine_tuning_and_other_families_are_skipped() {
        let fine_tune = parse_price_document(&doc_json(
            "FT",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "component": "ServerlessTraining:FineTuning",
                   "usagetype": "USE1-ServerlessTraining:FineTuning"}),
            &[("second", "0", "Inf", Some("0.0010000000"))],
        ))
        .unwrap();
        let wrong_family = parse_price_document(&doc_json(
            "WF",
            "ML Instance",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-3GB"}),
            &[("second", "0", "Inf", Some("0.0010000000"))],
        ))
        .unwrap();
        let key = PriceKey::serverless("us-east-1", 3);
        assert!(matches!(
            select_rate(&key, &[fine_tune, wrong_family]),
            Err(PriceError::NotFound { .. })
        ));
    }

    #[test]
    fn another_regions_product_is_skipped() {
        let key = PriceKey::hosting("eu-west-1", "ml.m5.xlarge");
        assert!(matches!(
            select_rate(&key, &m5_xlarge_products()),
            Err(PriceError::NotFound { .. })
        ));
    }

    #[test]
    fn empty_list_is_not_found_with_the_key() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let err = select_rate(&key, &[]).unwrap_err();
        assert_eq!(err, PriceError::NotFound { key });
        assert!(
            err.to_string()
                .starts_with("no price for hosting ml.m5.xlarge in us-east-1")
        );
    }

    #[test]
    fn usagetype_prefixes_are_optional() {
        assert_eq!(
            UsageType::parse("USE1-Host:ml.m5.xlarge"),
            UsageType {
                kind: "Host",
                detail: "ml.m5.xlarge"
            }
        );
        assert_eq!(
            UsageType::parse("Host:ml.g4dn.xlarge"),
            UsageType {
                kind: "Host",
                detail: "ml.g4dn.xlarge"
            }
        );
        assert_eq!(
            UsageType::parse("EU-ServerlessInf:Mem-4GB"),
            UsageType {
                kind: "ServerlessInf",
                detail: "Mem-4GB"
            }
        );
        assert_eq!(
            UsageType::parse("USE1-Hst:Data-Bytes-In"),
            UsageType {
                kind: "Hst",
                detail: "Data-Bytes-In"
            }
        );
        assert_eq!(
            UsageType::parse("TrainingPlanUpfrontFee:ml.p4d.24xlarge"),
            UsageType {
                kind: "TrainingPlanUpfrontFee",
                detail: "ml.p4d.24xlarge"
            }
        );
    }

    #[test]
    fn a_sku_or_effective_date_of_kilobytes_is_malformed_not_carried_on_receipts() {
        let long = "S".repeat(65);
        let documents = [
            (
                format!(r#"{{"product":{{"sku":"{long}"}}}}"#),
                "`product.sku` is 65 bytes long: not a SKU",
            ),
            (
                format!(
                    r#"{{"product":{{"sku":"S"}},"terms":{{"OnDemand":{{"S.T":{{"effectiveDate":"{long}","priceDimensions":{{}}}}}}}}}}"#
                ),
                "`effectiveDate` of SKU S is 65 bytes long: not a date",
            ),
        ];
        for (json, expected) in documents {
            match parse_price_document(&json) {
                Err(PriceError::Malformed { reason }) => {
                    assert!(reason.contains(expected), "{reason}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        // 64 bytes is still a SKU.
        let sku = "S".repeat(64);
        assert!(parse_price_document(&format!(r#"{{"product":{{"sku":"{sku}"}}}}"#)).is_ok());
    }

    #[test]
    fn garbage_is_malformed_with_a_reason() {
        let cases = [
            ("", "not JSON"),
            ("{\"product\":", "not JSON"),
            ("[1,2]", "not a JSON object"),
            ("{}", "no `product` object"),
            ("{\"product\":{\"attributes\":{}}}", "no `product.sku`"),
            (
                "{\"product\":{\"sku\":\"S\",\"attributes\":[]}}",
                "not an object",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{}}}}",
                "no `priceDimensions`",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{\"priceDimensions\":{\"R\":{\"unit\":\"Hrs\",\"pricePerUnit\":{\"USD\":0.23}}}}}}}",
                "not a string",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{\"priceDimensions\":{\"R\":{\"unit\":\"Hrs\",\"pricePerUnit\":{\"USD\":\"abc\"}}}}}}}",
                "not a decimal number",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{\"priceDimensions\":{\"R\":{\"unit\":\"Hrs\",\"pricePerUnit\":{\"USD\":\"-1\"}}}}}}}",
                "negative",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{\"priceDimensions\":{\"R\":{\"pricePerUnit\":{\"USD\":\"1\"}}}}}}}",
                "no `unit`",
            ),
            (
                "{\"product\":{\"sku\":\"S\"},\"terms\":{\"OnDemand\":{\"S.T\":{\"priceDimensions\":{\"R\":{\"unit\":\"GB\",\"beginRange\":\"5\",\"endRange\":\"1\"}}}}}}",
                "ends (1) before it begins (5)",
            ),
        ];
        for (json, expected) in cases {
            match parse_price_document(json) {
                Err(PriceError::Malformed { reason }) => {
                    assert!(
                        reason.contains(expected),
                        "{json:?}: {reason:?} should mention {expected:?}"
                    )
                }
                other => panic!("{json:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn product_without_terms_parses_with_no_on_demand_price() {
        let doc = parse_price_document(
            "{\"product\":{\"sku\":\"S\",\"attributes\":{\"component\":\"Hosting\"}}}",
        )
        .unwrap();
        assert!(doc.on_demand.is_empty());
    }

    #[test]
    fn scientific_notation_is_read_exactly() {
        assert_eq!(parse_amount("2.33E-5"), Some(dec("0.0000233")));
        assert_eq!(parse_amount("0.0000600000"), Some(dec("0.00006")));
        assert_eq!(parse_amount("1e999999"), None);
        assert_eq!(parse_amount("NaN"), None);
    }

    #[test]
    fn an_amount_is_digits_a_point_and_an_exponent_nothing_else() {
        // rust_decimal alone reads digit separators and a plus sign: a garbled
        // price would be taken as a price.
        for garbled in [
            "0.0_16", "1_50000", "0.23_", "+0.23", ".5", "5.", "0x10", "1.2.3",
        ] {
            assert_eq!(parse_amount(garbled), None, "{garbled}");
        }
        // Zeros at the end of a plain fraction change nothing, however many (32
        // places here, more than a decimal holds): read as the scientific path
        // reads the same value.
        assert_eq!(
            parse_amount("0.23000000000000000000000000000000"),
            Some(dec("0.23"))
        );
        assert_eq!(
            parse_amount("-0.5"),
            Some(dec("-0.5")),
            "refused later, as negative"
        );
    }

    #[test]
    fn a_hostile_document_makes_a_short_reason() {
        // 50,000 price dimensions, each in a unit of its own, none per second; and a
        // price of a megabyte of digits.
        let units: Vec<String> = (0..50_000).map(|i| format!("u{i:05}")).collect();
        let dims: Vec<(&str, &str, &str, Option<&str>)> = units
            .iter()
            .map(|u| (u.as_str(), "0", "Inf", Some("0.1")))
            .collect();
        let json = doc_json(
            "MANY",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-3GB"}),
            &dims,
        );
        let doc = parse_price_document(&json).unwrap();
        let err = select_rate(&PriceKey::serverless("us-east-1", 3), &[doc]).unwrap_err();
        let reason = err.to_string();
        assert!(reason.len() < 1024, "{} bytes", reason.len());
        assert!(
            reason.contains("units seen: u00000, u00001") && reason.contains("and 49990 more"),
            "{reason}"
        );
        let huge = "1".repeat(1 << 20);
        let json = doc_json(
            "HUGE",
            "ML Serverless",
            json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-3GB"}),
            &[("second", "0", "Inf", Some(&huge))],
        );
        let err = parse_price_document(&json).unwrap_err().to_string();
        assert!(err.len() < 1024, "{} bytes", err.len());
        assert!(err.contains("1048576 bytes"), "{err}");
    }

    /// A megabyte of text in a provisioned-concurrency product's group reaches the
    /// receipt's reason (why the product is the standing charge) clipped to its
    /// first 200 characters and its length, as a description is.
    #[test]
    fn a_hostile_pc_group_makes_a_short_reason() {
        let group = format!(
            "ServerlessProvisionedConcurrency-Usage {}",
            "x".repeat(1 << 20)
        );
        let doc = pc_doc(
            "PCHUGE",
            "Usage-2GB",
            Some(&group),
            STANDING_TEXT,
            "0.0000100000",
        );
        let chosen = select_rate(&standing_2gb(), &[doc]).unwrap();
        assert_eq!(chosen.usd_per_unit, dec("0.00001"));
        let reason = chosen.reason.unwrap();
        assert!(reason.len() < 1024, "{} bytes", reason.len());
        // 39 bytes of group name and space, then 1,048,576 of `x`.
        assert!(reason.contains("(1048615 bytes)"), "{reason}");
    }

    /// A storage product whose megabyte-long volumeType contradicts its usagetype
    /// is skipped and named in the reason, its volumeType clipped.
    #[test]
    fn a_hostile_storage_volume_type_makes_a_short_reason() {
        let volume = |sku: &str, volume: &str| {
            parse_price_document(&doc_json(
                sku,
                "Storage",
                json!({ "regionCode": "us-east-1", "volumeType": volume,
                        "usagetype": "USE1-Host:VolumeUsage.gp2" }),
                &[("GB-Mo", "0", "Inf", Some("0.1400000000"))],
            ))
            .unwrap()
        };
        let docs = [
            volume("GOOD", "General Purpose-Hosting"),
            volume("HUGE", &"x".repeat(1 << 20)),
        ];
        let chosen = select_rate(&PriceKey::storage("us-east-1"), &docs).unwrap();
        assert_eq!(
            (chosen.sku.as_str(), chosen.usd_per_unit),
            ("GOOD", dec("0.14"))
        );
        let reason = chosen.reason.unwrap();
        assert!(reason.len() < 1024, "{} bytes", reason.len());
        assert!(reason.contains("SKU HUGE"), "{reason}");
        assert!(reason.contains("(1048576 bytes)"), "{reason}");
    }

    /// An on-demand term whose key is a megabyte long is named clipped in the
    /// parse error.
    #[test]
    fn a_hostile_term_key_makes_a_short_error() {
        let key = "K".repeat(1 << 20);
        let json = json!({
            "product": { "productFamily": "ML Instance", "sku": "SKU1",
                         "attributes": { "regionCode": "us-east-1" } },
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": { key: "x" } },
            "version": "20260501000000", "publicationDate": "2026-05-01T00:00:00Z",
        })
        .to_string();
        let err = parse_price_document(&json).unwrap_err().to_string();
        assert!(err.len() < 1024, "{} bytes", err.len());
        assert!(err.contains("(1048576 bytes)"), "{err}");
    }

    #[test]
    fn a_scientific_amount_that_is_not_exact_in_a_decimal_is_refused() {
        // 32 significant digits: a decimal keeps 28 places at most, so it cannot be
        // read exactly (rounding it would price with a number AWS did not write).
        assert_eq!(parse_amount("0.12345678901234567890123456789123E0"), None);
        // 2.5 × 10⁻²⁸ needs 29 places.
        assert_eq!(parse_amount("2.5E-28"), None);
        // 10²⁹ is above 2⁹⁶ − 1.
        assert_eq!(parse_amount("1E29"), None);
        // Exact ones are read as written, whatever the base's length or zeros.
        assert_eq!(
            parse_amount("12345678901234567890123456789E-28"),
            Some(dec("1.2345678901234567890123456789"))
        );
        assert_eq!(
            parse_amount("1.000000000000000000000000000000000E0"),
            Some(Decimal::ONE)
        );
        assert_eq!(parse_amount("4.2E+3"), Some(dec("4200")));
        assert_eq!(
            parse_amount("5E28"),
            Some(dec("50000000000000000000000000000"))
        );
        assert_eq!(parse_amount("-2.5e-2"), Some(dec("-0.025")));
        assert_eq!(parse_amount("E5"), None);
        assert_eq!(parse_amount("1E"), None);
    }

    #[test]
    fn an_implausible_usd_price_makes_the_document_malformed() {
        let key = PriceKey::serverless("us-east-1", 2);
        let pick = |usd: &str| {
            parse_price_document(&doc_json(
                "SRV2GB",
                "ML Serverless",
                json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-2GB"}),
                &[("second", "0", "Inf", Some(usd))],
            ))
            .and_then(|doc| select_rate(&key, &[doc]))
        };
        // Fits a decimal, but no SageMaker price comes near it (it would overflow
        // the cost of a 2.5 s call): the document is refused, so the chain falls back.
        for usd in [
            "5E28",
            "50000000000000000000000000000",
            "1000000.0000000001",
        ] {
            match pick(usd) {
                Err(PriceError::Malformed { reason }) => {
                    assert!(reason.contains("above 1000000 USD"), "{reason}")
                }
                other => panic!("{usd}: expected malformed, got {other:?}"),
            }
        }
        // The bound itself, and an ordinary rate, are prices.
        assert_eq!(pick("1000000").unwrap().usd_per_unit, dec("1000000"));
        assert_eq!(pick("0.0000400000").unwrap().usd_per_unit, dec("0.00004"));
    }

    /// Keys the parser looks at, so that random JSON reaches deep into the structure.
    fn key_name() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "product", "sku", "productFamily", "attributes", "serviceCode", "terms", "OnDemand",
                "priceDimensions", "unit", "pricePerUnit", "USD", "beginRange", "endRange",
                "rateCode", "effectiveDate", "offerTermCode", "description", "component",
                "usagetype", "instanceName", "regionCode", "group", "volumeType",
            ])
            .prop_map(str::to_owned),
            1 => ".{0,8}",
        ]
    }

    fn scalar_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("Inf".to_owned()),
            Just("Hrs".to_owned()),
            Just("us-east-1".to_owned()),
            Just("USE1-Host:ml.m5.xlarge".to_owned()),
            Just("USE1-ProvisionedConcurrency:Mem-2GB".to_owned()),
            Just("ServerlessProvisionedConcurrency-Duration".to_owned()),
            Just("General Purpose-Hosting".to_owned()),
            Just("0".to_owned()),
            "-?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][-+]?[0-9]{0,6})?",
            ".{0,12}",
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            scalar_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 96, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key_name(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_key() -> impl Strategy<Value = PriceKey> {
        prop_oneof![
            Just(PriceKey::hosting("us-east-1", "ml.m5.xlarge")),
            Just(PriceKey::serverless("us-east-1", 3)),
            Just(PriceKey::DataIn {
                region: "us-east-1".into()
            }),
            Just(PriceKey::ProvisionedConcurrency {
                region: "us-east-1".into(),
                memory_gb: 2
            }),
            Just(PriceKey::ProvisionedConcurrencyUsage {
                region: "us-east-1".into(),
                memory_gb: 2
            }),
            Just(PriceKey::storage("us-east-1")),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".*") {
            let _ = parse_price_document(&s);
        }

        #[test]
        fn arbitrary_json_never_panics_parse_or_select(v in arb_json(), key in any_key()) {
            let text = v.to_string();
            if let Ok(doc) = parse_price_document(&text) {
                let _ = select_rate(&key, &[doc]);
            }
        }

        #[test]
        fn mutated_real_documents_never_panic(
            price in scalar_text(),
            begin in scalar_text(),
            end in scalar_text(),
            unit in scalar_text(),
            cut in 0usize..2000,
        ) {
            let json = doc_json(
                "S",
                "ML Instance",
                json!({"regionCode": "us-east-1", "instanceName": "ml.m5.xlarge", "component": "Hosting"}),
                &[(unit.as_str(), begin.as_str(), end.as_str(), Some(price.as_str()))],
            );
            if let Ok(doc) = parse_price_document(&json) {
                let _ = select_rate(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"), &[doc]);
            }
            // Truncated anywhere (on a char boundary), it must still not panic.
            let cut = (0..=cut.min(json.len())).rev().find(|i| json.is_char_boundary(*i)).unwrap_or(0);
            let _ = parse_price_document(&json[..cut]);
        }

        #[test]
        fn tiered_documents_never_panic_and_never_give_a_zero_price(
            tiers in prop::collection::vec((scalar_text(), scalar_text(), scalar_text()), 1..4),
        ) {
            let dims: Vec<_> = tiers
                .iter()
                .map(|(begin, end, usd)| ("second", begin.as_str(), end.as_str(), Some(usd.as_str())))
                .collect();
            let json = doc_json(
                "S",
                "ML Serverless",
                json!({"regionCode": "us-east-1", "usagetype": "USE1-ServerlessInf:Mem-2GB"}),
                &dims,
            );
            if let Ok(doc) = parse_price_document(&json)
                && let Ok(chosen) = select_rate(&PriceKey::serverless("us-east-1", 2), &[doc])
            {
                prop_assert!(!chosen.usd_per_unit.is_zero(), "{chosen:?}");
            }
        }
    }
}
