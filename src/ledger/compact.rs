//! Ledger format 2: what repeats is written once per file.
//!
//! A receipt's price provenance (rate, source, SKU, dates, the fallback note) and
//! its context (endpoint, variant, billing, allocation, currency, region,
//! operation) are the same for thousands of calls. Format 2 writes each distinct
//! one once per file as a *definition* line with an id, and receipts refer to it:
//!
//! ```text
//! {"v":2,"context":0,"endpoint":"llm","variant":"AllTraffic","billing":{…},"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":"AllTraffic"}
//! {"v":2,"price":1,"item":"compute","unit":"instance_hours","usd_per_unit":"1.408","source":"live","sku":"…","effective_date":"2026-11-01","fetched_at":"…","note":null}
//! {"v":2,"c":0,"id":"…","at":1764633334014650925,"lat":47767,"in":15,"out":420,"tin":12,"tout":24,"l":[[1,"0.000013268611111111"],[2],[3]],"cost":"0.000018714",…}
//! ```
//!
//! Where an accrual's rates came from (`accrual.priced_from`: a charge, a price
//! source and its often long fallback note) is an `origin` definition too,
//! `{"v":2,"origin":4,"charge":"capacity","price_source":"snapshot","note":"…"}`,
//! and the receipt's `ac` lists the ids in `o`.
//!
//! The member names of receipts are short; `docs/ledger.md` lists them. Values a
//! reader can work out exactly are left out, and only when working them out gives
//! the very same decimal (value and scale) as the receipt holds:
//! - a line's quantity of data (`gigabytes(bytes_in)` / `gigabytes(bytes_out)`);
//! - a line's cost (`quantity × rate`, rounded to 10⁻¹² as billing rounds it).
//!
//! Ids are given by the ledger (one table per process, shared by its files); each
//! file gets a definition before the first receipt that uses it, so every file
//! reads on its own. A definition holds for the lines after it; a file appended
//! to by a later process defines its ids again. Lines of format 1 may follow
//! lines of format 2 (the table full, or a ledger written by an older version):
//! the version is per line.

use super::line;
use crate::billing::{
    Accrual, AccrualCharge, AccrualSource, Allocation, Cost, CostLine, LineItem, LinePrice,
    QuantityUnit, StandingPart, checked_mul_round_dp, gigabytes,
};
use crate::endpoint::VariantBilling;
use crate::pricing::{PriceOrigin, Provenance};
use crate::report::{CallPart, GroupBy, ReportRow};
use crate::usage::{Operation, Outcome, Usage};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
// Amounts are read from JSON strings only, and exactly, as the writer writes them
// and as format 1 reads them (see `Amount`).
use crate::billing::amount::{self, option as optional_amount};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The format version of the lines this module writes.
pub(crate) const VERSION: u32 = 2;

/// Definitions one receipt can refer to: its context and up to seven prices (a
/// receipt has at most six lines today; more are written out in full).
pub(crate) const MAX_REFS: usize = 8;

/// Distinct definitions one ledger gives ids to. Beyond it (a process that
/// changes prices or endpoints without end), a receipt with a new context is
/// written in format 1, whole, and a new price in full in its receipt's line:
/// nothing is lost, only space.
const MAX_DEFINITIONS: usize = 1 << 16;

/// The longest definition given an id (its members, in bytes): real ones are a few
/// hundred. A longer one (a price source that answered with a SKU of megabytes) is
/// written inside its receipt instead, whose line is checked against what a reader
/// takes: a definition line is checked by nothing, and one too long to read would
/// make every receipt after it unreadable.
const MAX_DEFINITION_BYTES: usize = 64 << 10;

/// The definitions a receipt's line refers to, so that the file it lands in
/// gets them first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Refs {
    ids: [u32; MAX_REFS],
    len: u8,
}

impl Refs {
    fn push(&mut self, id: u32) -> bool {
        let len = usize::from(self.len);
        if len == MAX_REFS {
            return false;
        }
        self.ids[len] = id;
        self.len += 1;
        true
    }

    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids[..usize::from(self.len)]
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

/// The ledger's table of definitions: content → id, and each id's line.
#[derive(Debug)]
pub(crate) struct Dictionary {
    inner: RwLock<DictionaryInner>,
    /// At most this many ids ([`MAX_DEFINITIONS`]).
    limit: usize,
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary::with_limit(MAX_DEFINITIONS)
    }
}

#[derive(Debug, Default)]
struct DictionaryInner {
    /// A kind byte (`c`, `p`) then the definition's members.
    ids: HashMap<Box<[u8]>, u32, foldhash::fast::RandomState>,
    /// Each id's whole line, `\n` included.
    lines: Vec<Arc<[u8]>>,
}

impl Dictionary {
    fn with_limit(limit: usize) -> Self {
        Dictionary {
            inner: RwLock::default(),
            limit,
        }
    }

    /// The id of the definition `key` (`kind` byte then members), given one and
    /// its line made by `line` the first time; `None` when the table is full or
    /// `key` is longer than [`MAX_DEFINITION_BYTES`].
    fn id(&self, key: &[u8], line: impl FnOnce(u32) -> Vec<u8>) -> Option<u32> {
        if key.len() > MAX_DEFINITION_BYTES {
            return None;
        }
        if let Some(id) = self.read().ids.get(key) {
            return Some(*id);
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = inner.ids.get(key) {
            return Some(*id);
        }
        if inner.lines.len() >= self.limit {
            return None;
        }
        let id = u32::try_from(inner.lines.len()).ok()?;
        inner.lines.push(line(id).into());
        inner.ids.insert(key.into(), id);
        Some(id)
    }

    /// The line defining `id`.
    pub(crate) fn line(&self, id: u32) -> Option<Arc<[u8]>> {
        self.read().lines.get(id as usize).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DictionaryInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which ids a file already holds the definition of.
#[derive(Debug, Default, Clone)]
pub(crate) struct Defined(Vec<u64>);

impl Defined {
    pub(crate) fn contains(&self, id: u32) -> bool {
        let (word, bit) = (id as usize / 64, id % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    pub(crate) fn insert(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, id % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    pub(crate) fn remove(&mut self, id: u32) {
        if let Some(w) = self.0.get_mut(id as usize / 64) {
            *w &= !(1 << (id % 64));
        }
    }
}

/// Appends `cost`'s line in format 2 (format 1 when the table is full), `\n`
/// included, and sets `refs` to the definitions it refers to.
pub(crate) fn write_record(cost: &Cost, dict: &Dictionary, out: &mut Vec<u8>, refs: &mut Refs) {
    thread_local! {
        static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    refs.clear();
    KEY.with_borrow_mut(|key| {
        context_key(cost, key);
        let Some(context) = dict.id(key, |id| definition_line(b"context", id, &key[1..])) else {
            line::write_line(cost, out);
            return;
        };
        refs.push(context);
        let Cost {
            call_id,
            at,
            endpoint: _,
            variant: _,
            inference_component: _,
            target_model: _,
            billing: _,
            allocation: _,
            usage,
            lines,
            cost_usd,
            currency: _,
            region: _,
            running_client_usd,
            running_endpoint_usd,
            running_fleet_usd,
            accrual,
            tags,
            notes,
            // A duplicate settlement's receipt is never recorded.
            settled_before: _,
        } = cost;
        let Usage {
            operation: _,
            latency,
            time_to_first_byte,
            bytes_in,
            bytes_out,
            parts,
            variant: _,
            input_tokens,
            output_tokens,
            outcome,
            attempts,
        } = usage;
        out.extend_from_slice(b"{\"v\":2,\"c\":");
        line::number(out, context);
        out.extend_from_slice(b",\"id\":");
        line::string(out, call_id);
        out.extend_from_slice(b",\"at\":");
        instant(out, at);
        out.extend_from_slice(b",\"lat\":");
        line::micros(out, latency);
        if let Some(ttfb) = time_to_first_byte {
            out.extend_from_slice(b",\"ttfb\":");
            line::micros(out, ttfb);
        }
        for (name, n) in [(&b",\"in\":"[..], *bytes_in), (b",\"out\":", *bytes_out)] {
            if n != 0 {
                out.extend_from_slice(name);
                line::number(out, n);
            }
        }
        for (name, n) in [
            (&b",\"parts\":"[..], parts),
            (b",\"tin\":", input_tokens),
            (b",\"tout\":", output_tokens),
        ] {
            if let Some(n) = n {
                out.extend_from_slice(name);
                line::number(out, *n);
            }
        }
        if *outcome != Outcome::Ok {
            out.extend_from_slice(b",\"outcome\":");
            line::quoted(out, outcome.as_str());
        }
        if *attempts != 1 {
            out.extend_from_slice(b",\"tries\":");
            line::number(out, *attempts);
        }
        out.extend_from_slice(b",\"l\":[");
        for (i, cost_line) in lines.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let price = match &cost_line.price {
                LinePrice::Priced {
                    usd_per_unit,
                    provenance,
                    ..
                } => {
                    price_key(cost_line, *usd_per_unit, provenance, key);
                    dict.id(key, |id| definition_line(b"price", id, &key[1..]))
                        .filter(|id| refs.push(*id))
                }
                LinePrice::Unpriced { .. } => None,
            };
            match price {
                Some(id) => reference(out, id, cost_line, usage),
                None => line::cost_line(out, cost_line),
            }
        }
        out.extend_from_slice(b"],\"cost\":");
        line::decimal(out, cost_usd);
        out.extend_from_slice(b",\"rc\":");
        line::decimal(out, running_client_usd);
        out.extend_from_slice(b",\"re\":");
        line::decimal(out, running_endpoint_usd);
        if let Some(fleet) = running_fleet_usd {
            out.extend_from_slice(b",\"rf\":");
            line::decimal(out, fleet);
        }
        if let Some(accrual) = accrual {
            let Accrual {
                accrued_usd,
                allocated_usd,
                utilisation,
                storage_usd,
                unreserved_usd,
                priced_from,
                standing_parts,
                accrued_to,
            } = accrual;
            out.extend_from_slice(b",\"ac\":{\"a\":");
            line::decimal(out, accrued_usd);
            out.extend_from_slice(b",\"l\":");
            line::decimal(out, allocated_usd);
            if let Some(u) = utilisation {
                out.extend_from_slice(b",\"u\":");
                line::decimal(out, u);
            }
            if let Some(s) = storage_usd {
                out.extend_from_slice(b",\"s\":");
                line::decimal(out, s);
            }
            if let Some(r) = unreserved_usd {
                out.extend_from_slice(b",\"r\":");
                line::decimal(out, r);
            }
            // Where its rates came from: each source a definition (its note is
            // long, and the same on thousands of receipts), written out whole
            // when no id is left.
            if !priced_from.is_empty() {
                out.extend_from_slice(b",\"o\":[");
                for (i, source) in priced_from.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    key.clear();
                    key.push(b'o');
                    line::accrual_source(key, source);
                    // The definition's members: the entry's, without its braces.
                    let id = dict
                        .id(key, |id| {
                            definition_line(b"origin", id, &key[2..key.len() - 1])
                        })
                        .filter(|id| refs.push(*id));
                    match id {
                        Some(id) => line::number(out, id),
                        None => line::accrual_source(out, source),
                    }
                }
                out.push(b']');
            }
            // Rare (a shadow variant, a deployment under way): written out whole.
            if !standing_parts.is_empty() {
                out.extend_from_slice(b",\"sp\":");
                // Serializing decimals, strings and numbers into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &**standing_parts);
            }
            // An async settlement's: when its accrual runs to (as `at` is written).
            if let Some(to) = accrued_to {
                out.extend_from_slice(b",\"t\":");
                instant(out, to);
            }
            out.push(b'}');
        }
        line::tags_and_notes(out, tags, notes);
        out.extend_from_slice(b"}\n");
        // A receipt with very many tags does not keep its room forever.
        if key.capacity() > 64 * 1024 {
            *key = Vec::new();
        }
    });
}

/// An instant as format 2 writes it ([`At`] reads it): nanoseconds since the
/// epoch, or RFC 3339 text for one beyond what 64 bits of nanoseconds hold.
fn instant(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    match t.timestamp_nanos_opt() {
        Some(nanos) => line::number(out, nanos),
        None => line::timestamp(out, t),
    }
}

/// `{"v":2,"<kind>":<id>,<members>}\n`
fn definition_line(kind: &[u8], id: u32, members: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(members.len() + 32);
    out.extend_from_slice(b"{\"v\":2,\"");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"\":");
    line::number(&mut out, id);
    out.push(b',');
    out.extend_from_slice(members);
    out.extend_from_slice(b"}\n");
    out
}

/// `c` then the context's members.
fn context_key(cost: &Cost, key: &mut Vec<u8>) {
    key.clear();
    key.extend_from_slice(b"c\"endpoint\":");
    line::string(key, &cost.endpoint);
    key.extend_from_slice(b",\"variant\":");
    line::optional(key, cost.variant.as_deref(), line::string);
    line::targets(
        key,
        cost.inference_component.as_deref(),
        cost.target_model.as_deref(),
    );
    key.extend_from_slice(b",\"billing\":");
    line::optional(key, cost.billing.as_ref(), line::variant_billing);
    key.extend_from_slice(b",\"allocation\":");
    line::quoted(key, cost.allocation.as_str());
    key.extend_from_slice(b",\"currency\":");
    line::string(key, &cost.currency);
    key.extend_from_slice(b",\"region\":");
    line::optional(key, cost.region.as_deref(), line::string);
    key.extend_from_slice(b",\"operation\":");
    line::quoted(key, cost.usage.operation.as_str());
    key.extend_from_slice(b",\"usage_variant\":");
    line::optional(key, cost.usage.variant.as_deref(), line::string);
}

/// `p` then the price's members.
fn price_key(cost_line: &CostLine, rate: Decimal, provenance: &Provenance, key: &mut Vec<u8>) {
    let Provenance {
        source,
        sku,
        effective_date,
        fetched_at,
        note,
    } = provenance;
    key.clear();
    key.extend_from_slice(b"p\"item\":");
    line::quoted(key, cost_line.item.as_str());
    key.extend_from_slice(b",\"unit\":");
    line::quoted(key, cost_line.unit.as_str());
    key.extend_from_slice(b",\"usd_per_unit\":");
    line::decimal(key, &rate);
    key.extend_from_slice(b",\"source\":");
    line::quoted(key, source.as_str());
    key.extend_from_slice(b",\"sku\":");
    line::optional(key, sku.as_deref(), line::string);
    key.extend_from_slice(b",\"effective_date\":");
    line::optional(key, effective_date.as_deref(), line::string);
    key.extend_from_slice(b",\"fetched_at\":");
    line::optional(key, fetched_at.as_ref(), line::timestamp);
    key.extend_from_slice(b",\"note\":");
    line::optional(key, note.as_deref(), line::string);
}

/// `[id]`, `[id,"quantity"]`, `[id,null,"cost"]` or `[id,"quantity","cost"]`:
/// the quantity and the cost only when they cannot be worked out exactly.
fn reference(out: &mut Vec<u8>, id: u32, cost_line: &CostLine, usage: &Usage) {
    let LinePrice::Priced {
        usd_per_unit,
        cost_usd,
        ..
    } = &cost_line.price
    else {
        return;
    };
    let derived_quantity = derived_quantity(cost_line.item, usage.bytes_in, usage.bytes_out);
    let quantity = match derived_quantity {
        Some(q) if identical(&q, &cost_line.quantity) => None,
        _ => Some(&cost_line.quantity),
    };
    let cost = (!line_cost(*usd_per_unit, cost_line.quantity)
        .is_some_and(|c| identical(&c, cost_usd)))
    .then_some(cost_usd);
    out.push(b'[');
    line::number(out, id);
    match (quantity, cost) {
        (None, None) => {}
        (Some(q), None) => {
            out.push(b',');
            line::decimal(out, q);
        }
        (q, Some(c)) => {
            out.push(b',');
            line::optional(out, q, line::decimal);
            out.push(b',');
            line::decimal(out, c);
        }
    }
    out.push(b']');
}

/// The quantity a line of data has by the receipt's byte counts.
fn derived_quantity(item: LineItem, bytes_in: u64, bytes_out: u64) -> Option<Decimal> {
    match item {
        LineItem::DataIn => Some(gigabytes(bytes_in).normalize()),
        LineItem::DataOut => Some(gigabytes(bytes_out).normalize()),
        _ => None,
    }
}

/// Whether a line of `item` has a quantity without one written.
fn is_data(item: LineItem) -> bool {
    matches!(item, LineItem::DataIn | LineItem::DataOut)
}

/// A line referring to `price` that has no quantity and is not of data.
fn no_quantity(price: &PriceDef) -> serde_json::Error {
    de::Error::custom(format_args!(
        "a `{}` line has no quantity",
        price.item.as_str()
    ))
}

/// A line at `price` (id `id`) × `quantity` without its cost, which is more than
/// a decimal holds.
fn cost_overflows(id: u32, price: &PriceDef, quantity: Decimal) -> serde_json::Error {
    de::Error::custom(format_args!(
        "a `{}` line at price {id} ({} USD per unit) × {quantity} has no cost, and that \
         cost is more than a decimal holds",
        price.item.as_str(),
        price.usd_per_unit
    ))
}

/// A priced line's cost as billing works it out; `None` when it is more than a
/// decimal holds (billing never prices such a line, so its cost is always written).
fn line_cost(rate: Decimal, quantity: Decimal) -> Option<Decimal> {
    checked_mul_round_dp(rate, quantity, crate::billing::COST_SCALE)
}

/// Same value and same scale: written out, they are the same text.
fn identical(a: &Decimal, b: &Decimal) -> bool {
    a.serialize() == b.serialize()
}

// ---------------------------------------------------------------------------
// Reading

/// A price definition, as read.
#[derive(Debug, Clone)]
struct PriceDef {
    item: LineItem,
    unit: QuantityUnit,
    usd_per_unit: Decimal,
    provenance: Provenance,
    /// Whether it is a fallback ([`Provenance::is_fallback`]), told once.
    fallback: bool,
    /// Whether a line of data at it has a cost a decimal holds, whatever its
    /// bytes: the rate is below 10¹⁸ USD per GB (2⁶⁴ bytes are 1.8 × 10¹⁰ GB,
    /// the cost then below 1.8 × 10²⁸, and a decimal holds 7.9 × 10²⁸). Told
    /// once, so that a report need not work the quantity out to know.
    data_cost_fits: bool,
}

/// A context definition, as read.
#[derive(Debug, Clone)]
struct ContextDef {
    endpoint: Arc<str>,
    variant: Option<Arc<str>>,
    inference_component: Option<Arc<str>>,
    target_model: Option<Arc<str>>,
    billing: Option<VariantBilling>,
    allocation: Allocation,
    currency: Arc<str>,
    region: Option<Arc<str>>,
    operation: Operation,
    usage_variant: Option<Arc<str>>,
}

/// The definitions read so far in one file.
#[derive(Debug, Default, Clone)]
pub(crate) struct Definitions {
    prices: HashMap<u32, PriceDef>,
    contexts: HashMap<u32, ContextDef>,
    /// Where accruals' rates came from.
    origins: HashMap<u32, AccrualSource>,
    /// Price change records read (they are no receipts).
    pub(crate) price_changes: u64,
}

/// One format-2 line: a definition (taken into `defs`, `None` returned), a price
/// change record (`None`), or a receipt.
pub(crate) fn read_line(text: &[u8], defs: &mut Definitions) -> serde_json::Result<Option<Cost>> {
    let line: Line<'_> = serde_json::from_slice(text)?;
    if line.price_change.is_some() {
        defs.price_changes += 1;
        return Ok(None); // a record for auditors, not a receipt
    }
    if let Some(id) = line.price {
        let missing = |name| de::Error::custom(format_args!("price {id} has no `{name}`"));
        let provenance = Provenance {
            source: line.source.ok_or_else(|| missing("source"))?,
            sku: line.sku.map(|s| s.into()),
            effective_date: line.effective_date.map(|s| s.into()),
            fetched_at: line.fetched_at,
            note: line.note.map(|s| s.into()),
        };
        let usd_per_unit = line.usd_per_unit.ok_or_else(|| missing("usd_per_unit"))?;
        let def = PriceDef {
            item: line.item.ok_or_else(|| missing("item"))?,
            unit: line.unit.ok_or_else(|| missing("unit"))?,
            usd_per_unit,
            fallback: provenance.is_fallback(),
            provenance,
            data_cost_fits: usd_per_unit.abs() < Decimal::from(1_000_000_000_000_000_000u64),
        };
        defs.prices.insert(id, def);
        return Ok(None);
    }
    if let Some(id) = line.origin {
        let missing = |name| de::Error::custom(format_args!("origin {id} has no `{name}`"));
        let def = AccrualSource::new(
            line.charge.ok_or_else(|| missing("charge"))?,
            line.price_source.ok_or_else(|| missing("price_source"))?,
            line.note.map(|s| s.into()),
        );
        defs.origins.insert(id, def);
        return Ok(None);
    }
    if let Some(id) = line.context {
        let missing = |name| de::Error::custom(format_args!("context {id} has no `{name}`"));
        let def = ContextDef {
            endpoint: line.endpoint.ok_or_else(|| missing("endpoint"))?.into(),
            variant: line.variant.map(|s| s.into()),
            inference_component: line.inference_component.map(|s| s.into()),
            target_model: line.target_model.map(|s| s.into()),
            billing: line.billing,
            allocation: line.allocation.ok_or_else(|| missing("allocation"))?,
            currency: line.currency.ok_or_else(|| missing("currency"))?.into(),
            region: line.region.map(|s| s.into()),
            operation: line.operation.ok_or_else(|| missing("operation"))?,
            usage_variant: line.usage_variant.map(|s| s.into()),
        };
        defs.contexts.insert(id, def);
        return Ok(None);
    }
    receipt(line, defs).map(Some)
}

fn receipt(line: Line<'_>, defs: &Definitions) -> serde_json::Result<Cost> {
    let missing = |name| de::Error::custom(format_args!("the receipt has no `{name}`"));
    let c = line.c.ok_or_else(|| missing("c"))?;
    let context = defs
        .contexts
        .get(&c)
        .ok_or_else(|| de::Error::custom(format_args!("context {c} is not defined before it")))?;
    let usage = Usage {
        operation: context.operation,
        latency: Duration::from_micros(line.lat.ok_or_else(|| missing("lat"))?),
        time_to_first_byte: line.ttfb.map(Duration::from_micros),
        bytes_in: line.bytes_in.unwrap_or(0),
        bytes_out: line.bytes_out.unwrap_or(0),
        parts: line.parts,
        variant: context.usage_variant.as_deref().map(str::to_owned),
        input_tokens: line.tin,
        output_tokens: line.tout,
        outcome: line.outcome.unwrap_or(Outcome::Ok),
        attempts: line.tries.unwrap_or(1),
    };
    let mut lines = Vec::with_capacity(line.l.len());
    for entry in line.l {
        lines.push(match entry {
            LineEntry::Whole(cost_line) => cost_line,
            LineEntry::Ref { id, quantity, cost } => {
                let price = defs.prices.get(&id).ok_or_else(|| {
                    de::Error::custom(format_args!("price {id} is not defined before it"))
                })?;
                let derived = || derived_quantity(price.item, usage.bytes_in, usage.bytes_out);
                let quantity = quantity
                    .or_else(derived)
                    .ok_or_else(|| no_quantity(price))?;
                let cost_usd = match cost {
                    Some(cost) => cost,
                    None => line_cost(price.usd_per_unit, quantity)
                        .ok_or_else(|| cost_overflows(id, price, quantity))?,
                };
                CostLine {
                    item: price.item,
                    quantity,
                    unit: price.unit,
                    price: LinePrice::Priced {
                        usd_per_unit: price.usd_per_unit,
                        cost_usd,
                        provenance: price.provenance.clone(),
                    },
                }
            }
        });
    }
    let accrual = match line.ac {
        Some(ac) => Some(Accrual {
            accrued_usd: ac.a,
            allocated_usd: ac.l,
            utilisation: ac.u,
            storage_usd: ac.s,
            unreserved_usd: ac.r,
            priced_from: ac
                .o
                .into_iter()
                .map(|entry| entry.resolve(defs))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            standing_parts: ac.sp.into(),
            accrued_to: ac.t.map(|t| t.0),
        }),
        None => None,
    };
    Ok(Cost {
        call_id: line.id.ok_or_else(|| missing("id"))?.into_owned(),
        at: line.at.ok_or_else(|| missing("at"))?.0,
        endpoint: context.endpoint.to_string(),
        variant: context.variant.as_deref().map(str::to_owned),
        inference_component: context.inference_component.as_deref().map(str::to_owned),
        target_model: context.target_model.as_deref().map(str::to_owned),
        billing: context.billing.clone(),
        allocation: context.allocation,
        usage,
        lines,
        cost_usd: line.cost.ok_or_else(|| missing("cost"))?,
        currency: match &*context.currency {
            "USD" => Cow::Borrowed("USD"),
            other => Cow::Owned(other.to_owned()),
        },
        region: context.region.clone(),
        running_client_usd: line.rc.ok_or_else(|| missing("rc"))?,
        running_endpoint_usd: line.re.ok_or_else(|| missing("re"))?,
        running_fleet_usd: line.rf,
        accrual,
        tags: line.tags.unwrap_or_default(),
        notes: line.notes.unwrap_or_default(),
        settled_before: None,
    })
}

/// The start of every receipt line the writer writes: [`report_row`] reads those.
pub(crate) const RECEIPT_PREFIX: &[u8] = b"{\"v\":2,\"c\":";

/// What a report needs of a receipt line starting with [`RECEIPT_PREFIX`], read
/// without building the receipt: `defs` gives the endpoint and variant, and for a
/// `tag:<key>` report only the tags are parsed. The receipts of asynchronous
/// invocations are built, to tell a submission from a settlement.
pub(crate) fn report_row<'a>(
    text: &'a [u8],
    defs: &'a Definitions,
    by: &GroupBy,
) -> serde_json::Result<ReportRow<'a>> {
    let row: ReceiptRow<'a> = serde_json::from_slice(text)?;
    let context = defs.contexts.get(&row.c).ok_or_else(|| {
        de::Error::custom(format_args!("context {} is not defined before it", row.c))
    })?;
    let tag = match (by, row.tags) {
        (GroupBy::Tag(key), Some(raw)) => {
            let mut tags: BTreeMap<Cow<'a, str>, Cow<'a, str>> = serde_json::from_str(raw.get())?;
            tags.remove(key.as_str())
        }
        // Strings to strings, as the full reader takes them.
        (_, Some(raw)) => {
            serde_json::from_str::<StringMap>(raw.get())?;
            None
        }
        _ => None,
    };
    let mut report_row = ReportRow::new(row.at.0, &context.endpoint, row.cost);
    report_row.variant = context.variant.as_deref();
    report_row.inference_component = context.inference_component.as_deref();
    report_row.target_model = context.target_model.as_deref();
    report_row.region = context.region.as_deref();
    report_row.tag = tag;
    report_row.latency_us = row.lat;
    report_row.input_tokens = row.tin;
    report_row.output_tokens = row.tout;
    report_row.fully_priced = row.l.all_priced;
    // Every line's price must be defined, as the full reader requires: a receipt
    // referring to none is damage, not a priced call. A line is priced from a
    // fallback as its price's provenance says (told once per definition).
    // Its quantity and cost are checked as the full reader takes them.
    if let Some(refs) = &row.l.refs {
        report_row.fallback_priced = row.l.fallback;
        let bytes = (row.bytes_in.unwrap_or(0), row.bytes_out.unwrap_or(0));
        for line_ref in refs.iter() {
            match defs.prices.get(&line_ref.id) {
                Some(price) => {
                    line_ref.check(price, bytes)?;
                    report_row.fallback_priced |= price.fallback;
                }
                None => {
                    return Err(de::Error::custom(format_args!(
                        "price {} is not defined before it",
                        line_ref.id
                    )));
                }
            }
        }
    }
    // The whole receipt, built once and only when the fast read cannot tell: a
    // receipt of more lines than it keeps (building it checks their prices), or
    // an asynchronous invocation's (submission or settlement, see below).
    let whole = if row.l.refs.is_none() || context.operation == Operation::InvokeEndpointAsync {
        let line: Line<'_> = serde_json::from_slice(text)?;
        Some(receipt(line, defs)?)
    } else {
        None
    };
    if let Some(cost) = &whole {
        report_row.fallback_priced = cost.is_priced_from_fallback();
    }
    report_row.outcome = row.outcome.unwrap_or(Outcome::Ok);
    report_row.parts = row.parts;
    // Only the fallbacks among the accrual's sources: the report lists those.
    if let Some(ac) = row.ac
        && !ac.o.is_empty()
    {
        let mut fallbacks = Vec::new();
        for entry in ac.o {
            let source = entry.resolve(defs)?;
            if source.is_fallback() {
                fallbacks.push(source);
            }
        }
        if !fallbacks.is_empty() {
            report_row.accrual_priced_from = Cow::Owned(fallbacks);
        }
    }
    if context.operation == Operation::InvokeEndpointAsync {
        // Submission, settlement, or the interceptor's only receipt: told as
        // `Cost::is_async_settlement` tells it, from the whole receipt (its lines'
        // items, data out, tokens, notes).
        let settlement = whole.as_ref().is_some_and(Cost::is_async_settlement);
        let by_interceptor = whole.as_ref().is_some_and(Cost::is_by_interceptor);
        report_row.part = CallPart::of(context.operation, settlement, by_interceptor);
        let notes = || {
            whole
                .iter()
                .flat_map(|cost| cost.notes.iter().map(String::as_str))
        };
        report_row.never_settled = report_row.part.never_settled(notes());
        report_row.settled_in_part = report_row.part.settled_in_part(notes());
    }
    Ok(report_row)
}

/// The members of a receipt line a report reads; those it does not use are
/// checked to be of the types the full reader takes, without being kept
/// (`_`), so that a report takes the lines a conversion takes.
#[derive(Deserialize)]
struct ReceiptRow<'a> {
    #[serde(rename = "id", borrow)]
    _id: Cow<'a, str>,
    #[serde(rename = "rc", deserialize_with = "amount::deserialize")]
    _rc: Decimal,
    #[serde(rename = "re", deserialize_with = "amount::deserialize")]
    _re: Decimal,
    c: u32,
    at: At,
    lat: u64,
    parts: Option<u64>,
    tin: Option<u64>,
    tout: Option<u64>,
    outcome: Option<Outcome>,
    #[serde(default)]
    l: AllPriced,
    #[serde(deserialize_with = "amount::deserialize")]
    cost: Decimal,
    #[serde(borrow)]
    tags: Option<&'a serde_json::value::RawValue>,
    ac: Option<AccrualSources>,
    /// What lines of data without a quantity have (see [`LineRef::check`]).
    #[serde(rename = "in")]
    bytes_in: Option<u64>,
    #[serde(rename = "out")]
    bytes_out: Option<u64>,
    #[serde(rename = "ttfb")]
    _ttfb: Option<u64>,
    #[serde(rename = "tries")]
    _tries: Option<u32>,
    #[serde(rename = "rf")]
    _rf: Option<Amount>,
    #[serde(rename = "notes")]
    _notes: Option<Strings>,
}

/// The sources of a receipt's accrual; its figures checked, not kept.
#[derive(Deserialize)]
struct AccrualSources {
    #[serde(default)]
    o: Vec<OriginEntry>,
    #[serde(rename = "a")]
    _a: Amount,
    #[serde(rename = "l")]
    _l: Amount,
    #[serde(rename = "u")]
    _u: Option<Amount>,
    #[serde(rename = "s")]
    _s: Option<Amount>,
    #[serde(rename = "r")]
    _r: Option<Amount>,
    /// Read whole, as the full reader reads it: most accruals have none (and an
    /// empty list allocates nothing).
    #[serde(rename = "sp", default)]
    _sp: Vec<StandingPart>,
    #[serde(rename = "t")]
    _t: Option<At>,
}

/// A list of strings: checked, nothing kept or allocated.
struct Strings;

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Check;
        impl<'de> Visitor<'de> for Check {
            type Value = Strings;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                while seq.next_element::<Str>()?.is_some() {}
                Ok(Strings)
            }
        }
        d.deserialize_seq(Check)
    }
}

/// A map of strings to strings: checked, nothing kept or allocated.
struct StringMap;

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Check;
        impl<'de> Visitor<'de> for Check {
            type Value = StringMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                while map.next_entry::<Str, Str>()?.is_some() {}
                Ok(StringMap)
            }
        }
        d.deserialize_map(Check)
    }
}

/// One string: checked, not kept.
struct Str;

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Check;
        impl Visitor<'_> for Check {
            type Value = Str;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Str, E> {
                Ok(Str)
            }
        }
        d.deserialize_str(Check)
    }
}

/// Whether every entry of a receipt's `l` is priced (a reference to a price, or a
/// whole line whose price has `"status":"priced"`), whether a whole line was
/// priced from a fallback, and the references (`None` past [`MAX_LINE_REFS`]),
/// read without allocating.
struct AllPriced {
    all_priced: bool,
    fallback: bool,
    refs: Option<LineRefs>,
}

/// No lines (absent `l`): all priced, none referred to.
impl Default for AllPriced {
    fn default() -> Self {
        AllPriced {
            all_priced: true,
            fallback: false,
            refs: Some(LineRefs::default()),
        }
    }
}

/// The most line references a receipt's fast read keeps (a receipt has a few:
/// compute, data in and out, tokens, fees); past it the full reader checks them.
const MAX_LINE_REFS: usize = 8;

/// A line reference as read: `[id, quantity?, cost?]`.
#[derive(Default, Clone, Copy)]
struct LineRef {
    id: u32,
    quantity: Option<Decimal>,
    /// Whether its cost is written (read, a decimal string; not kept).
    cost: bool,
}

impl LineRef {
    /// Whether the full reader takes it with its price, `price`, and the
    /// receipt's bytes in and out: a quantity written, or one of data; a cost
    /// written, or one a decimal holds. What `receipt` works out, told without
    /// working it out where a bound tells it.
    fn check(&self, price: &PriceDef, (bytes_in, bytes_out): (u64, u64)) -> serde_json::Result<()> {
        let quantity = match self.quantity {
            Some(q) => Some(q),
            None if is_data(price.item) => None,
            None => return Err(no_quantity(price)),
        };
        if self.cost {
            return Ok(());
        }
        let quantity = match quantity {
            Some(q) => q,
            None if price.data_cost_fits => return Ok(()),
            None => derived_quantity(price.item, bytes_in, bytes_out).unwrap_or_default(),
        };
        match line_cost(price.usd_per_unit, quantity) {
            Some(_) => Ok(()),
            None => Err(cost_overflows(self.id, price, quantity)),
        }
    }
}

/// Up to [`MAX_LINE_REFS`] line references, inline.
#[derive(Default)]
struct LineRefs {
    refs: [LineRef; MAX_LINE_REFS],
    len: usize,
}

impl LineRefs {
    /// Adds `line_ref`; false when full.
    fn push(&mut self, line_ref: LineRef) -> bool {
        match self.refs.get_mut(self.len) {
            Some(slot) => {
                *slot = line_ref;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &LineRef> {
        self.refs[..self.len].iter()
    }
}

impl<'de> Deserialize<'de> for AllPriced {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Lines;
        impl<'de> Visitor<'de> for Lines {
            type Value = AllPriced;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of cost lines")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AllPriced, A::Error> {
                let mut all_priced = true;
                let mut fallback = false;
                let mut refs = Some(LineRefs::default());
                while let Some(entry) = seq.next_element::<Priced>()? {
                    all_priced &= entry.priced;
                    fallback |= entry.fallback;
                    if let (Some(line_ref), Some(kept)) = (entry.line_ref, refs.as_mut())
                        && !kept.push(line_ref)
                    {
                        refs = None;
                    }
                }
                Ok(AllPriced {
                    all_priced,
                    fallback,
                    refs,
                })
            }
        }
        d.deserialize_seq(Lines)
    }
}

/// One entry of `l`: priced or not, and the reference it is (a whole line
/// carries its own price, and says whether it is a fallback).
struct Priced {
    priced: bool,
    line_ref: Option<LineRef>,
    fallback: bool,
}

impl<'de> Deserialize<'de> for Priced {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::value::RawValue;
        /// A whole line, its members of the types `CostLine` takes; those of its
        /// price that depend on its status kept raw, and checked once it is known.
        #[derive(Deserialize)]
        struct Whole<'a> {
            #[serde(rename = "item")]
            _item: LineItem,
            #[serde(rename = "quantity")]
            _quantity: Amount,
            #[serde(rename = "unit")]
            _unit: QuantityUnit,
            #[serde(borrow)]
            price: Status<'a>,
        }
        #[derive(Deserialize)]
        struct Status<'a> {
            #[serde(borrow)]
            status: Cow<'a, str>,
            #[serde(borrow)]
            usd_per_unit: Option<&'a RawValue>,
            #[serde(borrow)]
            cost_usd: Option<&'a RawValue>,
            #[serde(borrow)]
            provenance: Option<&'a RawValue>,
            #[serde(borrow)]
            reason: Option<&'a RawValue>,
        }
        /// A provenance, of the types `Provenance` takes.
        #[derive(Deserialize)]
        struct Origin<'a> {
            source: PriceOrigin,
            #[serde(rename = "sku")]
            _sku: Option<Str>,
            #[serde(rename = "effective_date")]
            _effective_date: Option<Str>,
            #[serde(rename = "fetched_at")]
            _fetched_at: Option<DateTime<Utc>>,
            #[serde(borrow)]
            note: Option<Cow<'a, str>>,
        }
        /// `Some(raw)` read as `T`, or the error of a missing member.
        fn member<'a, T: Deserialize<'a>>(
            raw: Option<&'a RawValue>,
            name: &'static str,
        ) -> serde_json::Result<T> {
            let raw = raw.ok_or_else(|| de::Error::missing_field(name))?;
            serde_json::from_str(raw.get())
        }
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = Priced;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[price id, quantity?, cost?] or a whole cost line")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Priced, A::Error> {
                let id = seq
                    .next_element::<u32>()?
                    .ok_or_else(|| de::Error::custom("a line reference has no price id"))?;
                // [id, quantity, cost], as the full reader takes it.
                let quantity = seq.next_element::<Option<Amount>>()?.flatten();
                let cost = seq.next_element::<Option<Amount>>()?.flatten();
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "a line reference has more than 3 members",
                    ));
                }
                Ok(Priced {
                    priced: true,
                    line_ref: Some(LineRef {
                        id,
                        quantity: quantity.map(|q| q.0),
                        cost: cost.is_some(),
                    }),
                    fallback: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Priced, A::Error> {
                let whole = Whole::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let Status {
                    status,
                    usd_per_unit,
                    cost_usd,
                    provenance,
                    reason,
                } = whole.price;
                let fallback = match &*status {
                    "priced" => {
                        member::<Amount>(usd_per_unit, "usd_per_unit")
                            .map_err(de::Error::custom)?;
                        member::<Amount>(cost_usd, "cost_usd").map_err(de::Error::custom)?;
                        let origin = member::<Origin<'_>>(provenance, "provenance")
                            .map_err(de::Error::custom)?;
                        crate::pricing::is_fallback(origin.source, origin.note.as_deref())
                    }
                    "unpriced" => {
                        member::<Str>(reason, "reason").map_err(de::Error::custom)?;
                        false
                    }
                    other => {
                        return Err(de::Error::unknown_variant(other, &["priced", "unpriced"]));
                    }
                };
                Ok(Priced {
                    priced: status == "priced",
                    line_ref: None,
                    fallback,
                })
            }
        }
        d.deserialize_any(Entry)
    }
}

/// Every member a format-2 line can have (definitions' and receipts').
#[derive(Deserialize)]
struct Line<'a> {
    /// A price change record (`JsonlLedger::record_price_change`).
    price_change: Option<IgnoredAny>,
    // Definitions.
    price: Option<u32>,
    context: Option<u32>,
    origin: Option<u32>,
    charge: Option<AccrualCharge>,
    price_source: Option<PriceOrigin>,
    item: Option<LineItem>,
    unit: Option<QuantityUnit>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    usd_per_unit: Option<Decimal>,
    source: Option<PriceOrigin>,
    #[serde(borrow)]
    sku: Option<Cow<'a, str>>,
    #[serde(borrow)]
    effective_date: Option<Cow<'a, str>>,
    fetched_at: Option<DateTime<Utc>>,
    #[serde(borrow)]
    note: Option<Cow<'a, str>>,
    #[serde(borrow)]
    endpoint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    variant: Option<Cow<'a, str>>,
    #[serde(borrow)]
    inference_component: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target_model: Option<Cow<'a, str>>,
    billing: Option<VariantBilling>,
    allocation: Option<Allocation>,
    #[serde(borrow)]
    currency: Option<Cow<'a, str>>,
    #[serde(borrow)]
    region: Option<Cow<'a, str>>,
    operation: Option<Operation>,
    #[serde(borrow)]
    usage_variant: Option<Cow<'a, str>>,
    // Receipts.
    c: Option<u32>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    at: Option<At>,
    lat: Option<u64>,
    ttfb: Option<u64>,
    #[serde(rename = "in")]
    bytes_in: Option<u64>,
    #[serde(rename = "out")]
    bytes_out: Option<u64>,
    parts: Option<u64>,
    tin: Option<u64>,
    tout: Option<u64>,
    outcome: Option<Outcome>,
    tries: Option<u32>,
    #[serde(default)]
    l: Vec<LineEntry>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    cost: Option<Decimal>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    rc: Option<Decimal>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    re: Option<Decimal>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    rf: Option<Decimal>,
    ac: Option<AccrualV2>,
    tags: Option<BTreeMap<String, String>>,
    notes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AccrualV2 {
    #[serde(deserialize_with = "amount::deserialize")]
    a: Decimal,
    #[serde(deserialize_with = "amount::deserialize")]
    l: Decimal,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    u: Option<Decimal>,
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    s: Option<Decimal>,
    /// `unreserved_usd` (variants hosting inference components).
    #[serde(default, deserialize_with = "optional_amount::deserialize")]
    r: Option<Decimal>,
    /// `priced_from` (absent in lines written before accruals carried it).
    #[serde(default)]
    o: Vec<OriginEntry>,
    /// `standing_parts` (absent unless variants are billed alongside).
    #[serde(default)]
    sp: Vec<StandingPart>,
    /// `accrued_to` (an async settlement's; absent otherwise).
    t: Option<At>,
}

/// One entry of an accrual's `o`: the id of an `origin` definition, or the
/// source written out whole.
#[derive(Deserialize)]
#[serde(untagged)]
enum OriginEntry {
    Ref(u32),
    Whole(AccrualSource),
}

impl OriginEntry {
    fn resolve(self, defs: &Definitions) -> serde_json::Result<AccrualSource> {
        match self {
            OriginEntry::Ref(id) => defs.origins.get(&id).cloned().ok_or_else(|| {
                de::Error::custom(format_args!("origin {id} is not defined before it"))
            }),
            OriginEntry::Whole(source) => Ok(source),
        }
    }
}

/// A time: nanoseconds since the epoch, or RFC 3339 text (before 1677 or
/// beyond 2262), its year signed outside 0-9999.
pub(crate) struct At(pub(crate) DateTime<Utc>);

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AtVisitor;
        impl Visitor<'_> for AtVisitor {
            type Value = At;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("nanoseconds since the epoch or an RFC 3339 time")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<At, E> {
                Ok(At(DateTime::from_timestamp_nanos(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<At, E> {
                let n = i64::try_from(n).map_err(|_| E::custom("time out of range"))?;
                self.visit_i64(n)
            }
            /// As chrono's `Deserialize` reads format 1's times: past year 9999 or
            /// before year 0, [`instant`] writes a signed year (`+10000-01-01T00:00:00Z`),
            /// which RFC 3339 proper (`parse_from_rfc3339`) refuses.
            fn visit_str<E: de::Error>(self, s: &str) -> Result<At, E> {
                s.parse::<DateTime<Utc>>().map(At).map_err(E::custom)
            }
        }
        d.deserialize_any(AtVisitor)
    }
}

/// An amount, read from a JSON string only, as the writer writes every one: a
/// JSON number reaches a deserializer as an `f64`, which keeps about 17
/// significant digits, so it is refused rather than rounded silently; so is a
/// string with more digits than a decimal holds ([`amount::deserialize`]).
struct Amount(Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        amount::deserialize(d).map(Amount)
    }
}

/// A cost line: a reference to a price, or the whole line (format 1's shape).
enum LineEntry {
    Ref {
        id: u32,
        quantity: Option<Decimal>,
        cost: Option<Decimal>,
    },
    Whole(CostLine),
}

impl<'de> Deserialize<'de> for LineEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = LineEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[price id, quantity?, cost?] or a whole cost line")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineEntry, A::Error> {
                let id = seq
                    .next_element::<u32>()?
                    .ok_or_else(|| de::Error::custom("a line reference has no price id"))?;
                let quantity = seq.next_element::<Option<Amount>>()?.flatten();
                let cost = seq.next_element::<Option<Amount>>()?.flatten();
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "a line reference has more than 3 members",
                    ));
                }
                Ok(LineEntry::Ref {
                    id,
                    quantity: quantity.map(|q| q.0),
                    cost: cost.map(|c| c.0),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LineEntry, A::Error> {
                CostLine::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(LineEntry::Whole)
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

#[cfg(test)]
mod tests;
