//! The public price snapshot bundled in the crate: the last fallback.

use super::document::{parse_amount, price_list_unit};
use super::{
    BoxFuture, MAX_SANE_USD_PER_UNIT, PriceError, PriceKey, PriceSource, Provenance, Rate,
};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

const BUNDLED_TSV: &str = include_str!("../../data/sagemaker-on-demand-usd.tsv");

static BUNDLED: LazyLock<Snapshot> = LazyLock::new(|| {
    // The file ships with the crate and a unit test parses it, so this cannot fail at
    // run time unless the crate was built from a broken checkout.
    Snapshot::parse(BUNDLED_TSV, Origin::Bundled).expect("the bundled price snapshot parses")
});

/// Prices from a tab-separated snapshot; [`Snapshot::bundled`] is the one in the crate.
///
/// Rows map to keys by `kind`: `hosting` → [`PriceKey::Hosting`], `async` →
/// [`PriceKey::AsyncInference`], `serverless` `Mem-<N>GB` → [`PriceKey::Serverless`],
/// `serverless_pc` `PC-Provisioned-<N>GB` → [`PriceKey::ProvisionedConcurrency`] (the
/// standing charge per second provisioned) and `PC-Inference-<N>GB` →
/// [`PriceKey::ProvisionedConcurrencyUsage`] (inference duration), `data_in` /
/// `data_out` → [`PriceKey::DataIn`] / [`PriceKey::DataOut`], `storage` `gp2` →
/// [`PriceKey::Storage`]. `batch` rows are read and checked but kept out: no key prices
/// them. The usagetype names `PC-Mem-<N>GB` / `PC-Usage-<N>GB` are refused: public
/// sources disagree on which charge each is, so a row must say which it means.
///
/// When several rows give a price for one key, the newest `as_of` wins (prices change;
/// the newest observation is the best guess of today's price). Between rows of the same
/// date, the higher price wins, the conservative choice for a fallback.
///
/// A $0 row is never a price. It is skipped when the key has a positive row; a key
/// with only $0 rows answers [`PriceError::ZeroOnly`] (an explicit unpriced line on a
/// receipt), as a Price List document that lists only $0 does.
///
/// Cheap to clone: clones share one parsed table.
///
/// `data/sagemaker-on-demand-usd.tsv` holds public on-demand USD prices gathered from
/// sources that quote the AWS Price List, one row per region and dimension, each with the
/// date it was seen (`as_of`). It is compiled into the crate, parsed once on first use,
/// and shared by every [`Snapshot`] clone. It is never the primary source: prices
/// change, and the snapshot only knows the instance types and regions it lists.
///
/// ```
/// use sagemeter::pricing::{PriceKey, PriceOrigin, Snapshot};
///
/// let snapshot = Snapshot::bundled();
/// let rate = snapshot.get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))?;
/// assert_eq!(rate.usd_per_unit.to_string(), "0.23"); // per instance-hour
/// assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
/// assert_eq!(rate.provenance.effective_date.as_deref(), Some("2026-05-20"));
/// # Ok::<(), sagemeter::pricing::PriceError>(())
/// ```
#[derive(Clone)]
pub struct Snapshot {
    table: Arc<Table>,
}

struct Table {
    rates: crate::FastMap<PriceKey, Rate>,
    /// Keys with only $0 rows, and the error they answer.
    zero_only: crate::FastMap<PriceKey, PriceError>,
    /// The bundled file, or one the application gave.
    origin: Origin,
    /// The oldest and newest `as_of` of the rows priced.
    as_of: Option<(String, String)>,
}

/// What the snapshot is, not its rates: a client's `Debug` (which holds one) stays
/// a line, not hundreds of rates.
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = &self.table;
        let mut debug = f.debug_struct("Snapshot");
        debug.field("source", &table.origin.as_str());
        match &table.as_of {
            Some((oldest, newest)) if oldest == newest => debug.field("as_of", oldest),
            Some((oldest, newest)) => debug.field("as_of", &format_args!("{oldest} to {newest}")),
            None => debug.field("as_of", &"none"),
        };
        debug
            .field("rates", &table.rates.len())
            .field("zero_only", &table.zero_only.len())
            .finish()
    }
}

/// Where a snapshot's rows came from: its errors and receipt notes name it, so a
/// reader is not sent to the crate's file for a price the application supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `data/sagemaker-on-demand-usd.tsv`, compiled into the crate.
    Bundled,
    /// Text given to [`Snapshot::from_tsv`].
    FromTsv,
}

impl Origin {
    /// Short name, for `Debug`.
    fn as_str(self) -> &'static str {
        match self {
            Origin::Bundled => "bundled",
            Origin::FromTsv => "from_tsv",
        }
    }

    /// What errors and notes call the snapshot.
    fn name(self) -> &'static str {
        match self {
            Origin::Bundled => "bundled price snapshot",
            Origin::FromTsv => "price snapshot given to Snapshot::from_tsv",
        }
    }
}

struct Row {
    usd: Decimal,
    as_of: AsOf,
    source: String,
    line: usize,
}

/// An `as_of` date: `YYYY-MM`, `YYYY-MM-DD`, or an RFC 3339 timestamp. Compared by
/// the instant it begins (UTC; a timestamp's offset counts), then by how precise it
/// is: a month before its first day, a day before a time in it.
#[derive(Debug, Clone)]
struct AsOf {
    at: chrono::DateTime<chrono::Utc>,
    /// 0: a month, 1: a day, 2: a timestamp.
    precision: u8,
    text: String,
}

impl PartialEq for AsOf {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for AsOf {}

impl PartialOrd for AsOf {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AsOf {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.precision).cmp(&(other.at, other.precision))
    }
}

impl AsOf {
    fn parse(text: &str) -> Option<AsOf> {
        let at = |date: chrono::NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let (at, precision) = if text.contains('T') {
            let stamp = chrono::DateTime::parse_from_rfc3339(text).ok()?;
            (stamp.to_utc(), 2)
        } else if text.len() == 7 {
            let date = chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok()?;
            (at(date)?, 0)
        } else if text.len() == 10 {
            (
                at(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?)?,
                1,
            )
        } else {
            return None;
        };
        Some(AsOf {
            at,
            precision,
            text: text.to_owned(),
        })
    }
}

/// The UTC day a snapshot's `as_of` date (`YYYY-MM`, `YYYY-MM-DD` or an RFC 3339
/// time, as a receipt's provenance carries it) begins on: a month's first day.
#[cfg(feature = "account")]
pub(crate) fn as_of_day(text: &str) -> Option<chrono::NaiveDate> {
    AsOf::parse(text).map(|as_of| as_of.at.date_naive())
}

/// The AWS regions (commercial, GovCloud, China, and the AWS European Sovereign
/// Cloud's) as of late 2025: a region among them that the snapshot does not cover
/// is [`PriceError::NotCovered`], any other [`PriceError::NotFound`] (most likely a
/// typo). A region launched since then is told apart from a typo only by the live
/// Price List. The ISO partitions' regions are not listed: told by their prefix
/// (`us-iso-`, `us-isob-`, …), they are real regions too, whose Price List is out
/// of sagemeter's reach.
pub(crate) const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// What a key of `key`'s kind prices, as an error names it.
fn kind_name(key: &PriceKey) -> &'static str {
    match key {
        PriceKey::Hosting { .. } => "hosting",
        PriceKey::AsyncInference { .. } => "async inference",
        PriceKey::Serverless { .. } => "serverless",
        PriceKey::ProvisionedConcurrency { .. } => "provisioned concurrency",
        PriceKey::ProvisionedConcurrencyUsage { .. } => "provisioned concurrency usage",
        PriceKey::DataIn { .. } => "data processed in",
        PriceKey::DataOut { .. } => "data processed out",
        PriceKey::Storage { .. } => "hosting ML storage",
    }
}

/// What `key` prices, its instance type or memory size included.
fn item_name(key: &PriceKey) -> String {
    match key {
        PriceKey::Hosting { instance_type, .. }
        | PriceKey::AsyncInference { instance_type, .. } => {
            format!("{instance_type} {}", kind_name(key))
        }
        PriceKey::Serverless { memory_gb, .. }
        | PriceKey::ProvisionedConcurrency { memory_gb, .. }
        | PriceKey::ProvisionedConcurrencyUsage { memory_gb, .. } => {
            format!("{} {memory_gb} GB", kind_name(key))
        }
        PriceKey::DataIn { .. } | PriceKey::DataOut { .. } | PriceKey::Storage { .. } => {
            kind_name(key).to_owned()
        }
    }
}

/// Whether `a` and `b` (of one kind) price the same thing, in any region.
fn same_item(a: &PriceKey, b: &PriceKey) -> bool {
    match (a, b) {
        (
            PriceKey::Hosting {
                instance_type: a, ..
            }
            | PriceKey::AsyncInference {
                instance_type: a, ..
            },
            PriceKey::Hosting {
                instance_type: b, ..
            }
            | PriceKey::AsyncInference {
                instance_type: b, ..
            },
        ) => a == b,
        (
            PriceKey::Serverless { memory_gb: a, .. }
            | PriceKey::ProvisionedConcurrency { memory_gb: a, .. }
            | PriceKey::ProvisionedConcurrencyUsage { memory_gb: a, .. },
            PriceKey::Serverless { memory_gb: b, .. }
            | PriceKey::ProvisionedConcurrency { memory_gb: b, .. }
            | PriceKey::ProvisionedConcurrencyUsage { memory_gb: b, .. },
        ) => a == b,
        _ => true,
    }
}

/// Whether `key` is serverless at a memory size SageMaker offers (1 to 6 GB): a real
/// key even where no snapshot row names that size, unlike an instance type, which
/// the snapshot cannot tell from a typo.
fn offered_memory_size(key: &PriceKey) -> bool {
    match key {
        PriceKey::Serverless { memory_gb, .. }
        | PriceKey::ProvisionedConcurrency { memory_gb, .. }
        | PriceKey::ProvisionedConcurrencyUsage { memory_gb, .. } => (1..=6).contains(memory_gb),
        _ => false,
    }
}

fn bad_line(line: usize, what: impl std::fmt::Display) -> PriceError {
    PriceError::Malformed {
        reason: format!("price snapshot line {line}: {what}"),
    }
}

/// `Mem-3GB` → 3 (with the given prefix before `Mem-`/`Usage-`).
fn memory_gb(text: &str, prefix: &str) -> Option<u32> {
    let n = text.strip_prefix(prefix)?.strip_suffix("GB")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&n| n > 0)
}

impl Snapshot {
    /// The snapshot bundled in the crate (`data/sagemaker-on-demand-usd.tsv`), parsed on
    /// first use and shared afterwards.
    pub fn bundled() -> Snapshot {
        BUNDLED.clone()
    }

    /// Parses a snapshot in the bundled file's format: `#` comment lines, a header line
    /// starting with `region`, then tab-separated `region, kind, key, unit, usd, source,
    /// as_of`. Errors name the line (1-based) and what was wrong with it.
    ///
    /// Its receipts' notes and its "no price" errors name it `price snapshot given to
    /// Snapshot::from_tsv`, so that they are not taken for the bundled one's.
    pub fn from_tsv(tsv: &str) -> Result<Snapshot, PriceError> {
        Snapshot::parse(tsv, Origin::FromTsv)
    }

    fn parse(tsv: &str, origin: Origin) -> Result<Snapshot, PriceError> {
        let mut rows: HashMap<PriceKey, Row> = HashMap::new();
        // Keys' first $0 row, kept only to say why such a key has no price.
        let mut zero_rows: HashMap<PriceKey, Row> = HashMap::new();
        for (index, raw) in tsv.lines().enumerate() {
            let line = index + 1;
            let text = raw.trim_end_matches('\r');
            if text.trim().is_empty() || text.starts_with('#') || text.starts_with("region\t") {
                continue;
            }
            let cols: Vec<&str> = text.split('\t').map(str::trim).collect();
            let [region, kind, name, unit, usd, source, as_of] = cols[..] else {
                return Err(bad_line(
                    line,
                    format_args!("expected 7 tab-separated columns, found {}", cols.len()),
                ));
            };
            if region.is_empty() {
                return Err(bad_line(line, "empty region"));
            }
            let key = match kind {
                "hosting" | "async" => {
                    if !name.starts_with("ml.") {
                        return Err(bad_line(
                            line,
                            format_args!("instance type {name:?} should start with `ml.`"),
                        ));
                    }
                    if kind == "hosting" {
                        PriceKey::hosting(region, name)
                    } else {
                        PriceKey::AsyncInference {
                            region: region.to_owned(),
                            instance_type: name.to_owned(),
                        }
                    }
                }
                "serverless" => {
                    let gb = memory_gb(name, "Mem-").ok_or_else(|| {
                        bad_line(
                            line,
                            format_args!("serverless key {name:?} is not Mem-<N>GB"),
                        )
                    })?;
                    PriceKey::serverless(region, gb)
                }
                "serverless_pc" => {
                    // The row names the charge, not a usagetype: public tools read
                    // `ProvisionedConcurrency:Mem-<N>GB` / `:Usage-<N>GB` both ways. The
                    // bundled rows were mapped on evidence (AWS's pricing page lists
                    // inference duration above the charge per second provisioned; the
                    // public revision filtering group and usagetype together agrees),
                    // written out above them in the data file.
                    if let Some(gb) = memory_gb(name, "PC-Provisioned-") {
                        PriceKey::ProvisionedConcurrency {
                            region: region.to_owned(),
                            memory_gb: gb,
                        }
                    } else if let Some(gb) = memory_gb(name, "PC-Inference-") {
                        PriceKey::ProvisionedConcurrencyUsage {
                            region: region.to_owned(),
                            memory_gb: gb,
                        }
                    } else if memory_gb(name, "PC-Mem-").is_some()
                        || memory_gb(name, "PC-Usage-").is_some()
                    {
                        return Err(bad_line(
                            line,
                            format_args!(
                                "provisioned concurrency key {name:?} does not say which charge it \
                                 is (public sources read Mem and Usage both ways): write \
                                 PC-Provisioned-<N>GB for the charge per second provisioned or \
                                 PC-Inference-<N>GB for inference duration"
                            ),
                        ));
                    } else {
                        return Err(bad_line(
                            line,
                            format_args!(
                                "provisioned concurrency key {name:?} is neither \
                                 PC-Provisioned-<N>GB nor PC-Inference-<N>GB"
                            ),
                        ));
                    }
                }
                "data_in" => PriceKey::DataIn {
                    region: region.to_owned(),
                },
                "data_out" => PriceKey::DataOut {
                    region: region.to_owned(),
                },
                "storage" => {
                    if name != "gp2" {
                        return Err(bad_line(
                            line,
                            format_args!(
                                "storage key {name:?} is not gp2 (the hosting ML storage volume)"
                            ),
                        ));
                    }
                    PriceKey::storage(region)
                }
                // Known, checked below, but no key prices them.
                "batch" => {
                    check_unit(line, kind, unit, "Hrs")?;
                    parse_usd(line, usd)?;
                    parse_as_of(line, as_of)?;
                    continue;
                }
                other => {
                    return Err(bad_line(line, format_args!("unknown kind {other:?}")));
                }
            };
            check_unit(line, kind, unit, price_list_unit(key.unit()))?;
            let row = Row {
                usd: parse_usd(line, usd)?,
                as_of: parse_as_of(line, as_of)?,
                source: source.to_owned(),
                line,
            };
            if row.usd.is_zero() {
                zero_rows.entry(key).or_insert(row);
                continue;
            }
            match rows.get(&key) {
                Some(kept) if (&kept.as_of, kept.usd) >= (&row.as_of, row.usd) => {}
                _ => {
                    rows.insert(key, row);
                }
            }
        }
        let zero_only = zero_rows
            .into_iter()
            .filter(|(key, _)| !rows.contains_key(key))
            .map(|(key, row)| {
                let mut reason = format!(
                    "the {} lists only $0 for {key} (line {}",
                    origin.name(),
                    row.line
                );
                if !row.source.is_empty() {
                    reason.push_str(", from ");
                    reason.push_str(&row.source);
                }
                reason.push_str(", as of ");
                reason.push_str(&row.as_of.text);
                reason.push(')');
                let error = PriceError::ZeroOnly {
                    key: key.clone(),
                    reason,
                };
                (key, error)
            })
            .collect();
        let as_of = rows
            .values()
            .map(|row| &row.as_of)
            .min()
            .zip(rows.values().map(|row| &row.as_of).max())
            .map(|(oldest, newest)| (oldest.text.clone(), newest.text.clone()));
        let rates = rows
            .into_iter()
            .map(|(key, row)| {
                let mut note = format!("{} (as of {}", origin.name(), row.as_of.text);
                if !row.source.is_empty() {
                    note.push_str(", from ");
                    note.push_str(&row.source);
                }
                note.push(')');
                let provenance = Provenance::new(super::PriceOrigin::Snapshot)
                    .with_effective_date(row.as_of.text.clone())
                    .with_note(note);
                let rate = Rate::new(key.clone(), row.usd, provenance);
                (key, rate)
            })
            .collect();
        Ok(Snapshot {
            table: Arc::new(Table {
                rates,
                zero_only,
                origin,
                as_of,
            }),
        })
    }

    /// The snapshot's rate for `key`, without going through the async [`PriceSource`]:
    /// [`PriceError::ZeroOnly`] when the snapshot lists only $0 for it,
    /// [`PriceError::NotFound`] when it has no row for it.
    ///
    /// Of a key it has no row for, it says which is the case: the snapshot does not
    /// cover that kind of price (or that instance type, listed in other regions, or
    /// that serverless memory size, 1 to 6 GB) in the key's region, a real AWS region
    /// ([`PriceError::NotCovered`]: the live Price List is needed); or the instance
    /// type, memory size or region is one it does not know at all
    /// ([`PriceError::NotFound`]: check it).
    pub fn get(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        if let Some(rate) = self.async_at_hosting_rate(key) {
            return Ok(rate);
        }
        match self.table.rates.get(key) {
            Some(rate) => Ok(rate.clone()),
            None => Err(match self.table.zero_only.get(key) {
                Some(error) => error.clone(),
                None => self.missing(key),
            }),
        }
    }

    /// An async inference key the snapshot has no row for, priced at its instance
    /// type's hosting row in the region, saying so: AWS's `AsyncInf:` and `Host:`
    /// rates have been equal wherever both were measured, and the snapshot has
    /// few async rows (a settlement would otherwise be unpriced whenever the
    /// live Price List cannot be reached).
    fn async_at_hosting_rate(&self, key: &PriceKey) -> Option<Rate> {
        let PriceKey::AsyncInference {
            region,
            instance_type,
        } = key
        else {
            return None;
        };
        if self.table.rates.contains_key(key) || self.table.zero_only.contains_key(key) {
            return None;
        }
        let hosting = self
            .table
            .rates
            .get(&PriceKey::hosting(region.as_str(), instance_type.as_str()))?;
        let mut rate = hosting.clone();
        rate.key = key.clone();
        Some(Rate::with_note_before(
            rate,
            "async inference priced at the hosting rate: this snapshot has no async row for \
             it, and AWS's have been equal wherever both were measured",
        ))
    }

    /// Why the snapshot has no row for `key` (see [`get`](Self::get)).
    fn missing(&self, key: &PriceKey) -> PriceError {
        let region = key.region();
        let kind = std::mem::discriminant(key);
        let listed = || {
            self.table
                .rates
                .keys()
                .chain(self.table.zero_only.keys())
                .filter(|k| std::mem::discriminant(*k) == kind)
        };
        let regions = |keys: &mut dyn Iterator<Item = &PriceKey>| {
            let regions: std::collections::BTreeSet<&str> = keys.map(PriceKey::region).collect();
            regions.into_iter().map(str::to_owned).collect::<Box<[_]>>()
        };
        if listed().any(|k| k.region() == region) {
            // The kind is covered here, not this instance type or memory size. One
            // listed in other regions is real, and so is every memory size SageMaker
            // offers: the snapshot lacks it here.
            let covers = regions(&mut listed().filter(|k| same_item(k, key)));
            if covers.is_empty() && !offered_memory_size(key) && !self.lists_instance_type(key) {
                return PriceError::NotFound { key: key.clone() };
            }
            // A memory size it has nowhere: the sizes it does have here.
            let here = match covers.is_empty() && offered_memory_size(key) {
                true => listed()
                    .filter(|k| k.region() == region)
                    .map(item_name)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into(),
                false => Box::default(),
            };
            return PriceError::NotCovered {
                key: key.clone(),
                snapshot: self.table.origin.name(),
                what: item_name(key).into(),
                covers,
                here,
            };
        }
        if !AWS_REGIONS.contains(&region)
            && super::live::partition_without_price_list(region).is_none()
        {
            return PriceError::NotFound { key: key.clone() };
        }
        PriceError::NotCovered {
            key: key.clone(),
            snapshot: self.table.origin.name(),
            what: kind_name(key).into(),
            covers: regions(&mut listed()),
            here: Box::default(),
        }
    }

    /// Whether `key`'s instance type is priced for any kind of use in any region
    /// (hosting or asynchronous inference): a real instance type, whatever the
    /// snapshot lacks for this kind.
    fn lists_instance_type(&self, key: &PriceKey) -> bool {
        fn instance(key: &PriceKey) -> Option<&str> {
            match key {
                PriceKey::Hosting { instance_type, .. }
                | PriceKey::AsyncInference { instance_type, .. } => Some(instance_type),
                _ => None,
            }
        }
        let Some(wanted) = instance(key) else {
            return false;
        };
        self.table.rates.keys().any(|k| instance(k) == Some(wanted))
    }

    /// Every key with a row of its own (in no particular order); keys with only $0
    /// rows are not priced and not listed, and async inference keys priced at their
    /// hosting row ([`get`](Self::get)) are not listed.
    pub fn keys(&self) -> impl Iterator<Item = &PriceKey> {
        self.table.rates.keys()
    }

    /// How many keys have a row of their own: async inference keys priced at their
    /// hosting row are not counted.
    pub fn len(&self) -> usize {
        self.table.rates.len()
    }

    /// Whether the snapshot prices nothing.
    pub fn is_empty(&self) -> bool {
        self.table.rates.is_empty()
    }
}

fn check_unit(line: usize, kind: &str, unit: &str, expected: &str) -> Result<(), PriceError> {
    if unit.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(bad_line(
            line,
            format_args!("{kind} prices are per {expected}, found unit {unit:?}"),
        ))
    }
}

/// A row's price, read as strictly as a Price List document's (see
/// [`parse_amount`]): a garbled figure is an error naming its line, never a price.
fn parse_usd(line: usize, usd: &str) -> Result<Decimal, PriceError> {
    match parse_amount(usd) {
        Some(d) if d.is_sign_negative() && !d.is_zero() => {
            Err(bad_line(line, format_args!("negative price {usd:?}")))
        }
        Some(d) if d > MAX_SANE_USD_PER_UNIT => Err(bad_line(
            line,
            format_args!(
                "price {usd:?} is above {MAX_SANE_USD_PER_UNIT} USD per unit, which no \
                 SageMaker price comes near"
            ),
        )),
        Some(d) => Ok(d.normalize()),
        None => Err(bad_line(
            line,
            format_args!("price {usd:?} is not a decimal number"),
        )),
    }
}

fn parse_as_of(line: usize, as_of: &str) -> Result<AsOf, PriceError> {
    AsOf::parse(as_of).ok_or_else(|| {
        bad_line(
            line,
            format_args!("as_of {as_of:?} is not YYYY-MM, YYYY-MM-DD or an RFC 3339 time"),
        )
    })
}

impl Default for Snapshot {
    /// The bundled snapshot.
    fn default() -> Self {
        Snapshot::bundled()
    }
}

impl PriceSource for Snapshot {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        let rate = self.get(key);
        Box::pin(std::future::ready(rate))
    }

    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{PriceOrigin, PriceUnit};

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    const HEADER: &str = "# comment\nregion\tkind\tkey\tunit\tusd\tsource\tas_of\n";

    #[test]
    fn bundled_snapshot_parses_and_prices_hosting() {
        let snapshot = Snapshot::bundled();
        let rate = snapshot
            .get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("0.23"));
        assert_eq!(rate.unit, PriceUnit::Hour);
        assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
        assert_eq!(rate.provenance.sku, None);
        assert_eq!(rate.provenance.fetched_at, None);
        assert_eq!(
            rate.provenance.effective_date.as_deref(),
            Some("2026-05-20")
        );
        let note = rate.provenance.note.unwrap();
        assert!(
            note.starts_with("bundled price snapshot (as of 2026-05-20, from flexera-public"),
            "{note}"
        );
    }

    #[test]
    fn bundled_snapshot_has_exact_values_from_the_file() {
        let s = Snapshot::bundled();
        let get = |key: PriceKey| s.get(&key).unwrap().usd_per_unit;
        let region = || "us-east-1".to_owned();
        assert_eq!(get(PriceKey::serverless("us-east-1", 3)), dec("0.00006")); // per second
        assert_eq!(get(PriceKey::serverless("us-east-1", 1)), dec("0.00002"));
        // PC-Provisioned-2GB: the standing charge, the lower of the two rates.
        assert_eq!(
            get(PriceKey::ProvisionedConcurrency {
                region: region(),
                memory_gb: 2
            }),
            dec("0.00001")
        );
        // PC-Inference-2GB: inference duration, the higher one.
        assert_eq!(
            get(PriceKey::ProvisionedConcurrencyUsage {
                region: region(),
                memory_gb: 2
            }),
            dec("0.0000233")
        );
        // Storage gp2 rows, per GB-month.
        assert_eq!(get(PriceKey::storage("us-east-1")), dec("0.14"));
        assert_eq!(get(PriceKey::storage("eu-west-1")), dec("0.154"));
        assert_eq!(
            s.get(&PriceKey::storage("us-east-1")).unwrap().unit,
            PriceUnit::GigabyteMonth
        );
        assert_eq!(get(PriceKey::DataIn { region: region() }), dec("0.016")); // per GB
        assert_eq!(
            get(PriceKey::DataOut {
                region: "eu-west-1".into()
            }),
            dec("0.016")
        );
        assert_eq!(
            get(PriceKey::AsyncInference {
                region: region(),
                instance_type: "ml.g6e.2xlarge".into()
            }),
            dec("2.8026")
        );
        // The live Price List's Hosting rate, "25.2510000000" = $25.251 an hour,
        // seen 2026-07-27: newer than the $25.2512883 of 2026-05-20 the row held.
        let p4d = s
            .get(&PriceKey::hosting("us-east-1", "ml.p4d.24xlarge"))
            .unwrap();
        assert_eq!(
            (p4d.usd_per_unit, p4d.provenance.effective_date.as_deref()),
            (dec("25.251"), Some("2026-07-27"))
        );
        assert!(
            p4d.provenance
                .note
                .as_deref()
                .is_some_and(|n| n.contains("live GetProducts")),
            "{:?}",
            p4d.provenance.note
        );
        assert_eq!(
            get(PriceKey::hosting("us-east-2", "ml.g6.xlarge")),
            dec("1.1267")
        );
        assert_eq!(
            s.get(&PriceKey::hosting("us-east-2", "ml.g6.xlarge"))
                .unwrap()
                .provenance
                .effective_date
                .as_deref(),
            Some("2026-09-25T19:21:27Z")
        );
    }

    #[test]
    fn debug_says_what_the_snapshot_is_not_every_rate() {
        let debug = format!("{:?}", Snapshot::bundled());
        assert!(debug.len() < 500, "{} bytes: {debug}", debug.len());
        // The oldest and newest `as_of` of the rows the bundled file prices.
        assert!(debug.contains(r#"as_of: 2023-12 to 2026-10-04"#), "{debug}");
        assert!(debug.contains(r#"source: "bundled""#), "{debug}");
        assert!(
            debug.contains(&format!("rates: {}", Snapshot::bundled().len())),
            "{debug}"
        );
        assert!(!debug.contains("ml.m5.xlarge"), "{debug}");
    }

    #[test]
    fn bundled_snapshot_keeps_batch_out() {
        let s = Snapshot::bundled();
        // Every data row but the batch ones (read, checked, not keyed) is a key.
        let data_rows = BUNDLED_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("region\t") && !l.trim().is_empty())
            .count();
        let skipped = BUNDLED_TSV
            .lines()
            .filter(|l| l.contains("\tbatch\t"))
            .count();
        assert_eq!(
            s.len(),
            data_rows - skipped,
            "no two rows of the bundled file share a key"
        );
        assert!(
            s.get(&PriceKey::hosting("eu-west-1", "ml.m5.xlarge"))
                .is_ok()
        );
    }

    #[test]
    fn unknown_key_is_not_found() {
        let key = PriceKey::hosting("us-east-1", "ml.nope.xlarge");
        assert_eq!(
            Snapshot::bundled().get(&key),
            Err(PriceError::NotFound { key })
        );
    }

    #[test]
    fn an_unknown_instance_type_or_region_says_to_check_it() {
        for key in [
            // An instance type the snapshot lists in no region.
            PriceKey::hosting("us-east-1", "ml.nope.xlarge"),
            // A region that is not an AWS region.
            PriceKey::hosting("us-esat-1", "ml.m5.xlarge"),
            PriceKey::DataIn {
                region: "mars-north-1".into(),
            },
        ] {
            let err = Snapshot::bundled().get(&key).unwrap_err();
            assert_eq!(err, PriceError::NotFound { key: key.clone() });
            let text = err.to_string();
            let advice = format!(
                "no price for {key}: check the instance type and region, or set a price override"
            );
            // A region AWS does not list is named as such.
            match key.region() {
                "us-east-1" => assert_eq!(text, advice),
                region => assert_eq!(
                    text,
                    format!(
                        "{advice}; `{region}` is not among the AWS regions this sagemeter knows"
                    )
                ),
            }
        }
    }

    #[test]
    fn a_real_region_the_snapshot_does_not_cover_says_the_live_price_list_is_needed() {
        let s = Snapshot::bundled();
        let text = |key: PriceKey| s.get(&key).unwrap_err().to_string();
        // The bundled file prices data processing and storage in eu-west-1 and
        // us-east-1 only, serverless in us-east-1 only, hosting in none of the
        // ap-south-1 instance types.
        assert_eq!(
            text(PriceKey::DataIn {
                region: "ap-south-1".into()
            }),
            "the bundled price snapshot has no data processed in prices for ap-south-1 (it \
             covers: eu-west-1, us-east-1); the live Price List is needed, or set a price \
             override"
        );
        assert_eq!(
            text(PriceKey::storage("eu-central-1")),
            "the bundled price snapshot has no hosting ML storage prices for eu-central-1 (it \
             covers: eu-west-1, us-east-1); the live Price List is needed, or set a price \
             override"
        );
        assert_eq!(
            text(PriceKey::serverless("eu-west-1", 2)),
            "the bundled price snapshot has no serverless prices for eu-west-1 (it covers: \
             us-east-1); the live Price List is needed, or set a price override"
        );
        assert_eq!(
            text(PriceKey::hosting("ap-south-1", "ml.m5.xlarge")),
            "the bundled price snapshot has no hosting prices for ap-south-1 (it covers: \
             ap-northeast-1, eu-central-1, eu-west-1, eu-west-3, us-east-1, us-east-2, \
             us-west-2); the live Price List is needed, or set a price override"
        );
        // China's regions: the live Price List answers in CNY only, so only a USD
        // override helps.
        assert_eq!(
            text(PriceKey::hosting("cn-north-1", "ml.m5.xlarge")),
            "the bundled price snapshot has no hosting prices for cn-north-1 (it covers: \
             ap-northeast-1, eu-central-1, eu-west-1, eu-west-3, us-east-1, us-east-2, \
             us-west-2); China's regions are priced in CNY only, which sagemeter does not \
             convert: set a USD price override"
        );
        // The AWS European Sovereign Cloud's region: a real one, whose Price List
        // sagemeter cannot reach (see LivePrices::builder), so only overrides help.
        assert_eq!(
            text(PriceKey::hosting("eusc-de-east-1", "ml.m5.xlarge")),
            "the bundled price snapshot has no hosting prices for eusc-de-east-1 (it covers: \
             ap-northeast-1, eu-central-1, eu-west-1, eu-west-3, us-east-1, us-east-2, \
             us-west-2); its partition's Price List is out of sagemeter's reach: set price \
             overrides for its rates"
        );
        // An ISO partition's region, which AWS_REGIONS does not list: real too, not
        // a typo, and out of reach the same way.
        assert_eq!(
            text(PriceKey::hosting("us-iso-east-1", "ml.m5.xlarge")),
            "the bundled price snapshot has no hosting prices for us-iso-east-1 (it covers: \
             ap-northeast-1, eu-central-1, eu-west-1, eu-west-3, us-east-1, us-east-2, \
             us-west-2); its partition's Price List is out of sagemeter's reach: set price \
             overrides for its rates"
        );
        // A region with some hosting rows, not this instance type's, which other
        // regions list: a real type the snapshot lacks there.
        let tsv = format!(
            "{HEADER}us-east-1\thosting\tml.m5.xlarge\tHrs\t0.23\ta\t2026-05-20\n\
             eu-west-3\thosting\tml.c5.xlarge\tHrs\t0.24\ta\t2026-05-20\n"
        );
        let small = Snapshot::from_tsv(&tsv).unwrap();
        let key = PriceKey::hosting("eu-west-3", "ml.m5.xlarge");
        assert_eq!(
            small.get(&key),
            Err(PriceError::NotCovered {
                key: key.clone(),
                snapshot: "price snapshot given to Snapshot::from_tsv",
                what: "ml.m5.xlarge hosting".into(),
                covers: Box::new(["us-east-1".into()]),
                here: Box::default(),
            })
        );
        // An instance type it prices for hosting, not for async inference anywhere:
        // a real type whose async rate the snapshot lacks, priced at its hosting
        // rate ($0.23), saying so.
        let key = PriceKey::AsyncInference {
            region: "us-east-1".into(),
            instance_type: "ml.m5.xlarge".into(),
        };
        let tsv_with_async =
            format!("{tsv}us-east-1\tasync\tml.c5.xlarge\tHrs\t0.24\ta\t2026-05-20\n");
        let with_async = Snapshot::from_tsv(&tsv_with_async).unwrap();
        let rate = with_async.get(&key).unwrap();
        assert_eq!((rate.key.clone(), rate.usd_per_unit), (key, dec("0.23")));
        assert!(
            rate.provenance
                .note
                .as_deref()
                .is_some_and(|n| n.starts_with(
                    "async inference priced at the hosting rate: this snapshot has no async row"
                )),
            "{:?}",
            rate.provenance.note
        );
        // Its own async row, where it has one, is its own.
        let own = PriceKey::AsyncInference {
            region: "us-east-1".into(),
            instance_type: "ml.c5.xlarge".into(),
        };
        assert_eq!(with_async.get(&own).unwrap().usd_per_unit, dec("0.24"));
        // Neither an async nor a hosting row: still an error.
        let neither = PriceKey::AsyncInference {
            region: "us-east-1".into(),
            instance_type: "ml.zz9.large".into(),
        };
        assert!(with_async.get(&neither).is_err());
        // A kind it has for no region at all.
        let key = PriceKey::storage("us-east-1");
        assert_eq!(
            small.get(&key).unwrap_err().to_string(),
            "the price snapshot given to Snapshot::from_tsv has no hosting ML storage prices \
             for us-east-1 (it has them for no region); the live Price List is needed, or set \
             a price override"
        );
    }

    #[test]
    fn a_snapshot_from_tsv_names_itself_in_its_errors_and_notes_not_the_bundled_one() {
        // Every text a snapshot writes (a receipt's note, "not covered", "only $0")
        // names the table the price came from: the application's own, here, not the
        // crate's bundled file, which the reader would otherwise go and check.
        let tsv = format!(
            "{HEADER}us-east-1\thosting\tml.m5.xlarge\tHrs\t0.23\tmine\t2026-05-20\n\
             us-east-1\tserverless\tMem-2GB\tsecond\t0\tfree tier\t2026-05-08\n"
        );
        let given = Snapshot::from_tsv(&tsv).unwrap();
        let note = given
            .get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .unwrap()
            .provenance
            .note
            .unwrap();
        assert_eq!(
            &*note,
            "price snapshot given to Snapshot::from_tsv (as of 2026-05-20, from mine)"
        );
        let not_covered = given
            .get(&PriceKey::DataIn {
                region: "eu-west-1".into(),
            })
            .unwrap_err();
        assert!(
            matches!(&not_covered, PriceError::NotCovered { snapshot, .. }
                if *snapshot == "price snapshot given to Snapshot::from_tsv"),
            "{not_covered:?}"
        );
        assert_eq!(
            not_covered.to_string(),
            "the price snapshot given to Snapshot::from_tsv has no data processed in prices \
             for eu-west-1 (it has them for no region); the live Price List is needed, or set \
             a price override"
        );
        let zero = given
            .get(&PriceKey::serverless("us-east-1", 2))
            .unwrap_err()
            .to_string();
        assert!(
            zero.starts_with("the price snapshot given to Snapshot::from_tsv lists only $0"),
            "{zero}"
        );
        for text in [note.to_string(), not_covered.to_string(), zero] {
            assert!(!text.contains("bundled"), "{text}");
        }
        assert!(format!("{given:?}").contains(r#"source: "from_tsv""#));
        // The bundled snapshot still says it is the bundled one.
        let bundled = Snapshot::bundled();
        let err = bundled
            .get(&PriceKey::DataIn {
                region: "ap-south-1".into(),
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the bundled price snapshot has no data processed in prices"),
            "{err}"
        );
    }

    #[test]
    fn a_serverless_memory_size_sagemaker_offers_is_not_covered_rather_than_a_typo() {
        // SageMaker Serverless Inference offers 1 to 6 GB of memory (1024 to 6144 MB);
        // the bundled file has serverless rows for 1, 2 and 3 GB and provisioned
        // concurrency rows for 2 GB only, all in us-east-1. A 4 GB endpoint is a real
        // configuration the snapshot lacks: the live Price List is needed, nothing
        // is to be checked.
        let s = Snapshot::bundled();
        let region = || "us-east-1".to_owned();
        // The error names the sizes it does have there, from the rows above.
        let serverless = ["serverless 1 GB", "serverless 2 GB", "serverless 3 GB"];
        for (key, what, here) in [
            (
                PriceKey::serverless("us-east-1", 4),
                "serverless 4 GB",
                &serverless[..],
            ),
            (
                PriceKey::serverless("us-east-1", 6),
                "serverless 6 GB",
                &serverless,
            ),
            (
                PriceKey::ProvisionedConcurrency {
                    region: region(),
                    memory_gb: 1,
                },
                "provisioned concurrency 1 GB",
                &["provisioned concurrency 2 GB"],
            ),
            (
                PriceKey::ProvisionedConcurrencyUsage {
                    region: region(),
                    memory_gb: 6,
                },
                "provisioned concurrency usage 6 GB",
                &["provisioned concurrency usage 2 GB"],
            ),
        ] {
            let err = s.get(&key).unwrap_err();
            assert_eq!(
                err,
                PriceError::NotCovered {
                    key: key.clone(),
                    snapshot: "bundled price snapshot",
                    what: what.into(),
                    covers: Box::default(),
                    here: here.join(", ").into(),
                }
            );
            assert!(
                err.to_string().ends_with(&format!(
                    "prices for us-east-1 (it has them for no region; for us-east-1 it has {}); \
                     the live Price List is needed, or set a price override",
                    here.join(", ")
                )),
                "{err}"
            );
        }
        // 7 GB and 0 GB are no size SageMaker offers: most likely a mistake, to check.
        for memory_gb in [0, 7] {
            let key = PriceKey::serverless("us-east-1", memory_gb);
            assert_eq!(s.get(&key), Err(PriceError::NotFound { key: key.clone() }));
        }
    }

    #[test]
    fn duplicate_rows_keep_the_newest_as_of() {
        let tsv = format!(
            "{HEADER}us-east-1\thosting\tml.m5.xlarge\tHrs\t0.30\told\t2023-12\n\
             us-east-1\thosting\tml.m5.xlarge\tHrs\t0.23\tnew\t2026-05-20\n\
             us-east-1\thosting\tml.m5.xlarge\tHrs\t0.25\tmiddle\t2024-04-17\n"
        );
        let rate = Snapshot::from_tsv(&tsv)
            .unwrap()
            .get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("0.23"));
        assert_eq!(
            rate.provenance.effective_date.as_deref(),
            Some("2026-05-20")
        );
        assert_eq!(
            rate.provenance.note.as_deref(),
            Some("price snapshot given to Snapshot::from_tsv (as of 2026-05-20, from new)")
        );
    }

    #[test]
    fn duplicate_rows_of_one_date_keep_the_higher_price() {
        let tsv = format!(
            "{HEADER}us-east-1\tdata_in\t-\tGB\t0.016\ta\t2026-05-08\n\
             us-east-1\tdata_in\t-\tGB\t0.02\tb\t2026-05-08\n\
             us-east-1\tdata_in\t-\tGB\t0.01\tc\t2026-05-08\n"
        );
        let rate = Snapshot::from_tsv(&tsv)
            .unwrap()
            .get(&PriceKey::DataIn {
                region: "us-east-1".into(),
            })
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("0.02"));
    }

    #[test]
    fn as_of_orders_month_day_and_time() {
        let a = |s| AsOf::parse(s).unwrap();
        assert!(a("2023-12") < a("2023-12-01"));
        assert!(a("2026-09-25") < a("2026-09-25T19:21:27Z"));
        assert!(a("2024-04-17") < a("2026-05-08"));
        // Instants, not text: 23:00 at UTC−5 is 04:00Z the next day, and 9:00 is
        // before 10:00.
        assert!(a("2026-09-26T01:00:00Z") < a("2026-09-25T23:00:00-05:00"));
        assert!(a("2026-09-26T09:00:00Z") < a("2026-09-26T10:00:00Z"));
        assert_eq!(AsOf::parse("2026-09-26T25:00:00Z"), None);
        assert_eq!(AsOf::parse("2026-02-30"), None);
        assert_eq!(AsOf::parse("2026-13-01"), None);
        assert_eq!(AsOf::parse("yesterday"), None);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            (
                "us-east-1\thosting\tml.m5.xlarge\tHrs\t0.23\tsrc\n",
                "line 3: expected 7 tab-separated columns, found 6",
            ),
            (
                "us-east-1\thosting\tml.m5.xlarge\tHrs\tcheap\tsrc\t2026-05-20\n",
                "line 3: price \"cheap\" is not a decimal number",
            ),
            (
                "us-east-1\thosting\tml.m5.xlarge\tHrs\t-1\tsrc\t2026-05-20\n",
                "line 3: negative price",
            ),
            // Garbled figures a lax decimal reader would take as prices: 1_000 as
            // 1000, 0.0_16 as 0.016, +0.23 as 0.23. A price is digits and one point.
            (
                "us-east-1\thosting\tml.m5.xlarge\tHrs\t1_000\tsrc\t2026-05-20\n",
                "line 3: price \"1_000\" is not a decimal number",
            ),
            (
                "us-east-1\tdata_in\t-\tGB\t0.0_16\tsrc\t2026-05-20\n",
                "line 3: price \"0.0_16\" is not a decimal number",
            ),
            (
                "us-east-1\thosting\tml.m5.xlarge\tHrs\t+0.23\tsrc\t2026-05-20\n",
                "line 3: price \"+0.23\" is not a decimal number",
            ),
            (
                "us-east-1\thosting\tml.m5.xlarge\tsecond\t0.23\tsrc\t2026-05-20\n",
                "line 3: hosting prices are per Hrs, found unit \"second\"",
            ),
            (
                "us-east-1\tserverless\t3GB\tsecond\t0.1\tsrc\t2026-05-20\n",
                "line 3: serverless key \"3GB\" is not Mem-<N>GB",
            ),
            (
                "us-east-1\tserverless_pc\tPC-Foo-2GB\tsecond\t0.1\tsrc\t2026-05-20\n",
                "line 3: provisioned concurrency key \"PC-Foo-2GB\" is neither",
            ),
            (
                "us-east-1\tserverless_pc\tPC-Mem-2GB\tsecond\t0.1\tsrc\t2026-05-20\n",
                "line 3: provisioned concurrency key \"PC-Mem-2GB\" does not say which charge it is",
            ),
            (
                "us-east-1\tserverless_pc\tPC-Usage-2GB\tsecond\t0.1\tsrc\t2026-05-20\n",
                "does not say which charge it is",
            ),
            (
                "us-east-1\tstorage\tgp3\tGB-Mo\t0.1\tsrc\t2026-05-20\n",
                "line 3: storage key \"gp3\" is not gp2",
            ),
            (
                "us-east-1\tquantum\t-\tHrs\t0.1\tsrc\t2026-05-20\n",
                "line 3: unknown kind \"quantum\"",
            ),
            (
                "us-east-1\thosting\tm5.xlarge\tHrs\t0.1\tsrc\t2026-05-20\n",
                "line 3: instance type \"m5.xlarge\" should start with `ml.`",
            ),
            (
                "us-east-1\tdata_in\t-\tGB\t0.1\tsrc\tlast week\n",
                "line 3: as_of \"last week\"",
            ),
            (
                "us-east-1\tstorage\tgp2\tGB\t0.1\tsrc\t2026-05-20\n",
                "line 3: storage prices are per GB-Mo",
            ),
        ];
        for (row, expected) in cases {
            let err = Snapshot::from_tsv(&format!("{HEADER}{row}")).unwrap_err();
            let PriceError::Malformed { reason } = &err else {
                panic!("{err:?}")
            };
            assert!(
                reason.contains(expected),
                "{row:?}: {reason:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn an_implausible_price_is_refused_naming_its_line() {
        // 5 × 10²⁸ USD an hour fits a decimal, but a 2.5 h call would overflow one.
        let row = "us-east-1\thosting\tml.m5.xlarge\tHrs\t50000000000000000000000000000\tsrc\t2026-05-20\n";
        let err = Snapshot::from_tsv(&format!("{HEADER}{row}")).unwrap_err();
        let PriceError::Malformed { reason } = &err else {
            panic!("{err:?}")
        };
        assert!(
            reason.contains("line 3: price \"50000000000000000000000000000\" is above 1000000 USD"),
            "{reason}"
        );
        // The bound itself is a price.
        let row = "us-east-1\thosting\tml.m5.xlarge\tHrs\t1000000\tsrc\t2026-05-20\n";
        let snapshot = Snapshot::from_tsv(&format!("{HEADER}{row}")).unwrap();
        let rate = snapshot
            .get(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("1000000"));
    }

    #[test]
    fn a_key_with_only_zero_rows_is_not_priced_at_zero() {
        let tsv =
            format!("{HEADER}us-east-1\tserverless\tMem-2GB\tsecond\t0\tfree tier\t2026-05-08\n");
        let snapshot = Snapshot::from_tsv(&tsv).unwrap();
        let key = PriceKey::serverless("us-east-1", 2);
        assert_eq!(
            snapshot.get(&key),
            Err(PriceError::ZeroOnly {
                key: key.clone(),
                reason: "the price snapshot given to Snapshot::from_tsv lists only $0 for \
                         serverless 2 GB in us-east-1 (line 3, from free tier, as of 2026-05-08)"
                    .into()
            })
        );
        assert_eq!(snapshot.len(), 0, "a $0 row prices nothing");
        assert_eq!(snapshot.keys().count(), 0);
    }

    #[test]
    fn zero_rows_are_skipped_beside_a_positive_row_even_a_newer_one() {
        // The $0 row is the newest, yet the only positive row (0.00004, older) is used.
        let tsv = format!(
            "{HEADER}us-east-1\tserverless\tMem-2GB\tsecond\t0.00004\tpaid\t2026-05-08\n\
             us-east-1\tserverless\tMem-2GB\tsecond\t0.0000000000\tfree tier\t2026-09-01\n"
        );
        let rate = Snapshot::from_tsv(&tsv)
            .unwrap()
            .get(&PriceKey::serverless("us-east-1", 2))
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("0.00004"));
        assert_eq!(
            rate.provenance.effective_date.as_deref(),
            Some("2026-05-08")
        );
    }

    #[test]
    fn provisioned_concurrency_rows_say_which_charge_they_are() {
        let tsv = format!(
            "{HEADER}us-east-1\tserverless_pc\tPC-Provisioned-4GB\tsecond\t0.00002\ta\t2026-05-08\n\
             us-east-1\tserverless_pc\tPC-Inference-4GB\tsecond\t0.0000466\tb\t2026-05-08\n"
        );
        let s = Snapshot::from_tsv(&tsv).unwrap();
        let region = || "us-east-1".to_owned();
        let standing = PriceKey::ProvisionedConcurrency {
            region: region(),
            memory_gb: 4,
        };
        let inference = PriceKey::ProvisionedConcurrencyUsage {
            region: region(),
            memory_gb: 4,
        };
        assert_eq!(s.get(&standing).unwrap().usd_per_unit, dec("0.00002"));
        assert_eq!(s.get(&inference).unwrap().usd_per_unit, dec("0.0000466"));
    }

    #[tokio::test]
    async fn price_source_answers_from_the_table() {
        let s = Snapshot::bundled();
        let rate = s
            .price(&PriceKey::serverless("us-east-1", 2))
            .await
            .unwrap();
        assert_eq!(rate.usd_per_unit, dec("0.00004"));
        assert_eq!(rate.unit, PriceUnit::Second);
    }
}
