//! What ledgers metered against what Cost Explorer billed, the difference
//! explained in named parts.
//!
//! For each day, group (usage type or tag value) and kind of charge
//! ([`UsageClass`]), with `B` billed, `Q` the billed quantity, `M` metered (the
//! receipts' lines), `r` the on-demand rate (the receipts' own, else the price
//! source's):
//!
//! - **idle instance time** `I`: what the receipts' accrual counted while
//!   instances waited between calls (accrued − allocated; instance classes only);
//! - **calls outside sagemeter** `O = Q × r − (M + I)`: usage in the bill beyond
//!   what the meter saw (other clients, instance hours before the first or after
//!   the last metered call);
//! - **discounts** `D = B − Q × r`: the bill below on-demand prices (savings
//!   plans, credits); the effective rate ratio is `B ÷ (Q × r)`;
//! - **standing charges** `S`: storage and provisioned concurrency beyond the
//!   receipts' share of it;
//! - **other SageMaker charges**: usage types that are not an endpoint's
//!   (training, notebooks, ...);
//! - **unexplained** `U`: what the meter counted beyond the bill (`O` or `S`
//!   below zero), and what an unknown rate leaves.
//!
//! `M + I + O + D + S + other + U = B`, to the last digit. A day **agrees** when
//! `|B − M|` is within the tolerance, is **explained** when `Σ |U|` over its
//! groups and kinds of charge is (a +$500 and a −$500 do not cancel), **differs**
//! otherwise, and is **not settled** while Cost Explorer marks it `Estimated` and
//! it ended less than [`SETTLING_TIME`] ago (Cost Explorer marks every day of a month
//! whose bill is not final `Estimated`, for weeks; a day's usage is in within a
//! day or two).
//!
//! `B` is Cost Explorer's `AmortizedCost`: usage a Savings Plan or reservation
//! covers is at its effective rate, so a discount shows as `D`.

use super::Account;
use super::accrual::{Accruals, shared_out, spread};
use super::bill::{self, Bill};
use super::error::{AccountError, from_sdk};
use super::usage_class::UsageClass;
use crate::billing::{Allocation, Cost, LineItem, LinePrice, StandingPart, round_cost};
use crate::endpoint::VariantBilling;
use crate::ledger::{LedgerReader, RolledFileName, TornTail, rolling_dir_of};
use crate::pricing::{PriceOrigin, Provenance, plausible};
use crate::report::UNTAGGED;
use chrono::{Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How far back Cost Explorer keeps daily costs.
const KEPT_MONTHS: u32 = 13;

/// How rows are grouped within a day.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// By usage type (`Host:ml.m5.xlarge`, `ServerlessInf:Mem-3GB`, data in/out, ...).
    UsageType,
    /// By the value of an endpoint's cost allocation tag (`sagemaker:ListTags`).
    Tag(String),
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(text: &str) -> Result<GroupBy, String> {
        match text {
            "usage-type" => Ok(GroupBy::UsageType),
            _ => match text.strip_prefix("tag:") {
                Some(key) if !key.is_empty() && !key.contains('$') => {
                    Ok(GroupBy::Tag(key.to_owned()))
                }
                _ => Err(format!(
                    "`{text}` is not a grouping: usage-type, or tag:KEY (a cost allocation tag of the endpoints)"
                )),
            },
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::UsageType => f.write_str("usage-type"),
            GroupBy::Tag(key) => write!(f, "tag:{key}"),
        }
    }
}

/// What [`Account::reconcile`] compares.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// First UTC day.
    pub since: NaiveDate,
    /// The UTC day after the last (exclusive, as Cost Explorer's `End`).
    pub until: NaiveDate,
    /// How rows are grouped.
    pub group_by: GroupBy,
    /// A day agrees, or is explained, within this many USD (default 0.01); not
    /// negative ([`Account::reconcile`] refuses one).
    pub tolerance_usd: Decimal,
    /// The account whose bill is read (12 digits): Cost Explorer's answer is
    /// filtered to it (`LINKED_ACCOUNT`). `None` (the default): the caller's own
    /// account (`sts:GetCallerIdentity`). With a management account's
    /// credentials, Cost Explorer answers for every member account: name the one
    /// whose ledgers these are.
    pub account: Option<String>,
}

impl ReconcileOptions {
    /// The days from `since` to `until` (exclusive), by usage type, within a cent.
    pub fn new(since: NaiveDate, until: NaiveDate) -> Self {
        ReconcileOptions {
            since,
            until,
            group_by: GroupBy::UsageType,
            tolerance_usd: Decimal::new(1, 2),
            account: None,
        }
    }

    /// Reconciles the bill of `account` (12 digits) instead of the caller's: a
    /// member account's, from a management account.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Groups by `by`.
    pub fn group_by(mut self, by: GroupBy) -> Self {
        self.group_by = by;
        self
    }

    /// Sets the tolerance, USD. A negative one is refused by
    /// [`Account::reconcile`] ([`AccountError::Invalid`]): no difference is
    /// within it, so a day billed and metered alike would differ.
    pub fn tolerance_usd(mut self, usd: Decimal) -> Self {
        self.tolerance_usd = usd;
        self
    }

    /// The earliest `since` Cost Explorer can answer on `today`: it keeps daily
    /// costs for 13 months. [`Account::reconcile`] refuses an earlier one.
    pub fn earliest_since(today: NaiveDate) -> NaiveDate {
        today
            .checked_sub_months(Months::new(KEPT_MONTHS))
            .unwrap_or(NaiveDate::MIN)
    }
}

/// What one kind of charge metered on one day, for one endpoint.
#[derive(Debug, Clone, Default)]
struct MeteredCell {
    cost_usd: Decimal,
    quantity: Decimal,
    /// Instance time accrued (whether calls came or not), from the receipts' accrual.
    accrued_usd: Decimal,
    /// Of it, allocated to calls.
    allocated_usd: Decimal,
    /// The on-demand rate the receipts used, and which receipt it is of: of the
    /// day's freshest price (see [`RateFrom`]).
    rate: Option<(RateFrom, Decimal)>,
    /// Every rate the receipts used, for the note when they differ.
    rates_seen: BTreeSet<Decimal>,
}

/// Which receipt a day's rate is of; of two, the greater is kept (and of two
/// equal, the higher rate). AWS changes a price at 00:00 UTC, and a meter's
/// cached price catches up within the day (a snapshot's, then the live one; a
/// cache refreshed mid-morning): among the receipts that looked their price up
/// on the day, the one whose price was fetched from AWS the latest has the rate
/// the bill uses all day. Not the latest receipt's: a replica, or a process
/// restarted, still on a stale cached price or the bundled snapshot may make
/// the day's last call. Of prices fetched at the same time (or never: the
/// snapshot's, an override's), the latest look-up's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RateFrom {
    /// A rate looked up on a later day (an amortised call's instance time since
    /// the previous call, over a quiet night or weekend; an async settlement
    /// filed on its submission's day, settled the next): below the day's own
    /// rates, the earliest of them kept, the nearest to the day.
    OtherDay(std::cmp::Reverse<chrono::DateTime<Utc>>),
    /// A rate looked up on the day: by how fresh its price is, then by when it
    /// was looked up, the latest kept.
    OfDay {
        fresh: Freshness,
        at: chrono::DateTime<Utc>,
    },
}

/// How fresh a receipt's price is, by its [`Provenance`]: one fetched from AWS
/// (`fetched_at`, live or cached) above any never fetched, the later fetched
/// the fresher; of those never fetched, the bundled snapshot by its `as_of`
/// date above an override (or a provenance that says nothing, as ledgers
/// written before receipts carried it). A live term's `effectiveDate` is not
/// compared with a snapshot's `as_of`: one is when AWS's price took effect, the
/// other when the snapshot was gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Freshness {
    /// Never fetched, and no snapshot date: an override, or not said.
    Unknown,
    /// The bundled snapshot, as of this date.
    Snapshot(NaiveDate),
    /// Fetched from the Price List at this time.
    Fetched(chrono::DateTime<Utc>),
}

impl Freshness {
    /// How fresh the price `provenance` tells of is (`None`: not told).
    fn of(provenance: Option<&Provenance>) -> Self {
        let Some(provenance) = provenance else {
            return Freshness::Unknown;
        };
        if let Some(at) = provenance.fetched_at {
            return Freshness::Fetched(at);
        }
        let as_of = provenance
            .effective_date
            .as_deref()
            .filter(|_| provenance.source == PriceOrigin::Snapshot)
            .and_then(crate::pricing::as_of_day);
        as_of.map_or(Freshness::Unknown, Freshness::Snapshot)
    }
}

impl RateFrom {
    /// A rate `cost` used ([`priced_at`] its time), filed on day `on`, its price
    /// from `provenance` (that of the line it priced; `None`: not told).
    fn of(cost: &Cost, on: NaiveDate, provenance: Option<&Provenance>) -> Self {
        let at = priced_at(cost);
        if at.date_naive() == on {
            RateFrom::OfDay {
                fresh: Freshness::of(provenance),
                at,
            }
        } else {
            RateFrom::OtherDay(std::cmp::Reverse(at))
        }
    }
}

/// When `cost`'s call looked its price up: an async settlement's when it was
/// settled (its accrual's `accrued_to`; its `at` is its submission, hours or a
/// day before, maybe before a price change), any other receipt's at its `at`.
fn priced_at(cost: &Cost) -> chrono::DateTime<Utc> {
    cost.accrual
        .as_ref()
        .and_then(|accrual| accrual.accrued_to)
        .unwrap_or(cost.at)
}

impl MeteredCell {
    /// Adds a receipt's metered `cost_usd` and `quantity`, each sum exact or
    /// refused by `sum` (given the sum so far, the amount and what it is), and
    /// its rate (when known) with which receipt it is of: the rate of the day's
    /// freshest price, then latest receipt, is kept ([`RateFrom`]).
    fn meter<E>(
        &mut self,
        cost_usd: Decimal,
        quantity: Decimal,
        rate: Option<(RateFrom, Decimal)>,
        sum: impl Fn(Decimal, Decimal, &str) -> Result<Decimal, E>,
    ) -> Result<(), E> {
        self.cost_usd = sum(self.cost_usd, cost_usd, "metered cost")?;
        self.quantity = sum(self.quantity, quantity, "metered quantity")?;
        if let Some(rate) = rate {
            self.rates_seen.insert(rate.1);
            // Of two receipts of prices as fresh, made at the same time
            // (replicas), the higher rate: the same whichever ledger is read first.
            self.rate = self.rate.max(Some(rate));
        }
        Ok(())
    }

    /// Takes in `other`'s rates (another endpoint's, or ledger's, of the same
    /// day and kind of charge): the greater [`RateFrom`]'s is kept.
    fn merge_rates(&mut self, other: &MeteredCell) {
        self.rates_seen.extend(other.rates_seen.iter().copied());
        self.rate = self.rate.max(other.rate);
    }

    /// The on-demand rate the receipts used: of the day's freshest price (see
    /// [`RateFrom`]).
    fn usd_per_unit(&self) -> Option<Decimal> {
        self.rate.map(|(_, usd)| usd)
    }
}

/// What the reconciliation's notes count of one UTC day's receipts: a note counts
/// the receipts of the days reconciled only.
#[derive(Debug, Clone, Default)]
struct DayTally {
    /// Receipts of the region (those without a region included).
    receipts: u64,
    without_region: u64,
    /// Receipts of other regions, left out, by region.
    other_regions: BTreeMap<String, u64>,
    unpriced_lines: u64,
    /// Per-call and per-token fees (not SageMaker usage types).
    fees_usd: Decimal,
}

/// Receipts gathered from ledgers (of one region, in USD), ready to reconcile.
///
/// Receipts of other regions (receipts carry `region`: one ledger shared by a
/// client per region holds several) are left out and counted per region
/// ([`left_out`](Self::left_out)); the reconciliation's notes say how many of
/// the days reconciled.
/// Receipts without a region (written before receipts carried it) are taken as
/// this region's ([`without_region`](Self::without_region)); when they are all
/// that is kept and others were left out, the notes say they may be the other
/// regions' (`sagemeter reconcile` refuses such ledgers).
///
/// Ledgers of many processes are read together. A receipt's accrual is its
/// process's running figure: it is turned into increments per ledger, endpoint
/// and variant, each over the time since the ledger's previous receipt of the
/// variant and split at UTC midnight in proportion to time. A ledger's first
/// receipt of a variant is where counting starts (the ledger may begin long after
/// its process did), and a process's first call (unless the ledger's run was
/// allocated nothing so far), or a figure that falls to less than half of the
/// highest seen, is a new process starting over (one process writes a ledger at
/// a time).
/// Time that several ledgers' accruals cover for the same variant (replicas, each
/// with its own ledger) is counted once, at the highest of their rates. The files
/// of a rolling ledger (one directory, `sagemeter-YYYY-MM-DDTHH[.N].jsonl`, or
/// `.parquet`) are one ledger, however its directory is named: a process's running
/// figure goes on from one file to the next.
///
/// A receipt figure (a line's cost, quantity or rate, an accrual) beyond ±10¹²
/// (a trillion USD, or units) is no receipt a meter wrote, and sums that would
/// need more digits than a `Decimal` holds (rounded, or overflowing) are refused
/// too: both are [`AccountError::Ledger`], and the receipt adds nothing.
#[derive(Debug, Clone)]
pub struct Metered {
    region: String,
    cells: BTreeMap<(NaiveDate, String, UsageClass), MeteredCell>,
    /// The receipts' accruals, as instance time per day.
    accruals: Accruals,
    receipts: u64,
    /// The first and last UTC day with a receipt, priced or not.
    receipt_days: Option<(NaiveDate, NaiveDate)>,
    without_region: u64,
    /// Receipts of other regions, left out, by region.
    other_regions: BTreeMap<String, u64>,
    /// Per-call and per-token fees (not SageMaker usage types), of every day: a
    /// sum too long for a `Decimal` is refused as the receipt is read.
    fees_usd: Decimal,
    /// What the notes count, per UTC day of the receipts.
    tallies: BTreeMap<NaiveDate, DayTally>,
    /// The receipts' own tags, per endpoint and key (the last seen).
    call_tags: HashMap<(String, String), String>,
    /// Files whose torn last line (an interrupted write) was skipped.
    torn_tails: Vec<(String, TornTail)>,
    /// The files read (by device and inode, or canonical path), each read once.
    files_read: std::collections::HashSet<crate::ledger::FileId>,
    /// The ledgers those files are of: a plain file, or a rolling ledger's
    /// directory (by device and inode, or canonical path).
    ledgers_read: std::collections::HashSet<crate::ledger::FileId>,
    /// Each file's first receipt: a copy of a ledger read with it is refused.
    first_receipts: crate::ledger::FirstReceipts,
}

/// The largest figure (USD, or units of a line's quantity) a receipt read by
/// [`Metered`] may carry: 10¹² = 0xE8_D4A5_1000 (a trillion). Anything beyond is a
/// corrupt or hostile ledger, and refusing it keeps every sum and product of a
/// reconciliation far from `Decimal`'s limits.
const MAX_RECEIPT_FIGURE: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Why a sum of `what` is refused: its exact value needs more digits than a
/// `Decimal` holds (28 or 29), beyond `Decimal::MAX` or with more places than
/// fit beside its whole part (which `checked_add` would round away).
fn too_many_digits(what: &str) -> String {
    format!(
        "{what}, added up exactly, needs more digits than a Decimal holds: the receipts \
         carry amounts no meter wrote (a corrupt or hand-edited ledger?)"
    )
}

/// The years a receipt read by [`Metered`] may be dated: those RFC 3339 writes
/// with four digits, from the Unix epoch on.
const FIRST_RECEIPT_YEAR: i32 = 1970;
/// See [`FIRST_RECEIPT_YEAR`].
const LAST_RECEIPT_YEAR: i32 = 9999;

impl Metered {
    /// Nothing metered yet, for receipts of `region`.
    pub fn new(region: impl Into<String>) -> Self {
        Metered {
            region: region.into(),
            cells: BTreeMap::new(),
            accruals: Accruals::default(),
            receipts: 0,
            receipt_days: None,
            without_region: 0,
            other_regions: BTreeMap::new(),
            fees_usd: Decimal::ZERO,
            tallies: BTreeMap::new(),
            call_tags: HashMap::new(),
            torn_tails: Vec::new(),
            files_read: std::collections::HashSet::new(),
            ledgers_read: std::collections::HashSet::new(),
            first_receipts: crate::ledger::FirstReceipts::new(),
        }
    }

    /// Reads a ledger file, receipt by receipt (a torn last line is skipped): JSON
    /// Lines, or with the `parquet` feature a `*.parquet` file. A file read already
    /// (by this or another path) is skipped with a WARN; one that begins with the
    /// same receipt as a file read before (a copy of it, or its conversion to the
    /// other format) is refused
    /// ([`LedgerError::SameReceipts`](crate::ledger::LedgerError::SameReceipts)).
    ///
    /// A file of a rolling ledger (named `sagemeter-YYYY-MM-DDTHH[.N].jsonl`, or
    /// `.parquet`) is read as part of its directory's ledger: read a rolling
    /// ledger's files oldest first (as
    /// [`any_ledger_files`](crate::ledger::any_ledger_files) lists them, or through
    /// [`read_ledgers`](Self::read_ledgers), which orders them). Errors name the
    /// file.
    pub fn read_ledger(&mut self, path: impl AsRef<Path>) -> Result<(), AccountError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = crate::ledger::FileId::of(path);
        if self.files_read.contains(&file) {
            // A directory and a file in it, or one file by two paths or links: its receipts
            // are already counted.
            tracing::warn!(target: "sagemeter::account", path = %name,
                "reconcile: this ledger file was read already; its receipts count once");
            return Ok(());
        }
        let run = run_of(path).display().to_string();
        let ledger = match rolling_dir_of(path) {
            Some(dir) => crate::ledger::FileId::of(dir),
            None => file.clone(),
        };
        #[cfg(feature = "parquet")]
        if crate::ledger::is_parquet_name(path) {
            let reader = crate::ledger::parquet::ParquetReader::open(path)?;
            self.read_receipts(path, &name, &run, reader)?;
            self.files_read.insert(file);
            self.ledgers_read.insert(ledger);
            return Ok(());
        }
        let mut reader = LedgerReader::open(path)?;
        self.read_receipts(path, &name, &run, reader.by_ref())?;
        if let Some(torn) = reader.torn_tail() {
            self.torn_tails.push((name, torn.clone()));
        }
        self.files_read.insert(file);
        self.ledgers_read.insert(ledger);
        Ok(())
    }

    /// Adds the receipts of `path` (named `name`, of run `run`), the first noted
    /// against the other files' first receipts.
    fn read_receipts(
        &mut self,
        path: &Path,
        name: &str,
        run: &str,
        receipts: impl Iterator<Item = Result<Cost, crate::ledger::LedgerError>>,
    ) -> Result<(), AccountError> {
        let mut first = true;
        for cost in receipts {
            let cost = cost?;
            if std::mem::take(&mut first) {
                self.first_receipts.note(path, &cost)?;
            }
            self.add_to(name, run, &cost)?;
        }
        Ok(())
    }

    /// Reads ledger files named in any order (e.g. a shell glob, which puts
    /// `…T10.1.jsonl` before `…T10.jsonl` and `.10` before `.2`): each rolling
    /// ledger's files (one directory, `sagemeter-YYYY-MM-DDTHH[.N].jsonl` or
    /// `.parquet`) oldest
    /// first, as a directory is read, and every other file where first named. Read
    /// newest first, a rolling ledger's running accrual would seem to start over and
    /// the instance time before it would be lost.
    pub fn read_ledgers<P: AsRef<Path>>(
        &mut self,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<(), AccountError> {
        for path in oldest_first(paths) {
            self.read_ledger(path)?;
        }
        Ok(())
    }

    /// Adds one receipt; `ledger` names where it was read, and runs are told apart
    /// per ledger. For a rolling ledger's files, `ledger` is the directory (all its
    /// files are one ledger, their receipts given oldest first), not each file: a
    /// process's accrual runs on across files, and a new name per file would count
    /// it again from zero. [`read_ledger`](Self::read_ledger) does this itself.
    ///
    /// A receipt of another region is left out, counted in
    /// [`left_out`](Self::left_out): it is another region's bill. A receipt in
    /// another currency is an error (Cost Explorer's amounts are USD), and so is a
    /// figure beyond ±10¹², or one that would make a sum overflow; after an error
    /// the receipt has added nothing.
    pub fn add(&mut self, ledger: &str, cost: &Cost) -> Result<(), AccountError> {
        self.add_to(ledger, ledger, cost)
    }

    /// [`add`](Self::add), errors naming `file`, the accrual's run told apart by `run`.
    fn add_to(&mut self, file: &str, run: &str, cost: &Cost) -> Result<(), AccountError> {
        let refuse = |reason: String| AccountError::Ledger {
            file: file.to_owned(),
            reason,
        };
        if cost.currency != "USD" {
            return Err(refuse(format!(
                "receipt {} is in {}; Cost Explorer's amounts are USD",
                cost.call_id, cost.currency
            )));
        }
        let day = cost.at.date_naive();
        let without_region = match cost.region.as_deref() {
            Some(region) if region != self.region => {
                // Another region's bill: one ledger may hold the calls of a client
                // per region.
                let tally = self.tallies.entry(day).or_default();
                for counts in [&mut self.other_regions, &mut tally.other_regions] {
                    match counts.get_mut(region) {
                        Some(n) => *n += 1,
                        None => {
                            counts.insert(region.to_owned(), 1);
                        }
                    }
                }
                return Ok(());
            }
            Some(_) => false,
            None => true,
        };
        let figure = |what: &str, value: Decimal| {
            if value.abs() <= MAX_RECEIPT_FIGURE {
                Ok(value)
            } else {
                Err(refuse(format!(
                    "receipt {} has {what} {value}, beyond the {MAX_RECEIPT_FIGURE} a receipt \
                     can carry",
                    cost.call_id
                )))
            }
        };
        // Exact, or refused: never rounded to fewer places.
        let sum = |a: Decimal, b: Decimal, what: &str| {
            crate::util::exact_sum(a, b).ok_or_else(|| {
                refuse(format!(
                    "receipt {}: {}",
                    cost.call_id,
                    too_many_digits(&format!("the {what} of {}", cost.endpoint))
                ))
            })
        };

        // chrono reads signed, extended years ("-200000-01-01T00:00:00Z"); no
        // meter wrote one, and spans of millennia are no accrual.
        let year = cost.at.year();
        if !(FIRST_RECEIPT_YEAR..=LAST_RECEIPT_YEAR).contains(&year) {
            return Err(refuse(format!(
                "receipt {} is dated {}, outside the years {FIRST_RECEIPT_YEAR} to \
                 {LAST_RECEIPT_YEAR} a receipt can carry",
                cost.call_id,
                cost.at.to_rfc3339()
            )));
        }
        if let Some(to) = cost.accrual.as_ref().and_then(|a| a.accrued_to)
            && !(FIRST_RECEIPT_YEAR..=LAST_RECEIPT_YEAR).contains(&to.year())
        {
            return Err(refuse(format!(
                "receipt {} has an accrual running to {}, outside the years \
                 {FIRST_RECEIPT_YEAR} to {LAST_RECEIPT_YEAR} a receipt can carry",
                cost.call_id,
                to.to_rfc3339()
            )));
        }

        // Its standing parts' rates, before any is added up (`average_rate`,
        // `HeldCompute::by_time`), whether or not the receipt prices instance time.
        if let Some(accrual) = &cost.accrual {
            for part in accrual.standing_parts.iter() {
                figure("a standing rate", part.usd_per_hour)?;
            }
        }

        // Work out everything the receipt changes first, then change it: an error
        // leaves `self` as it was.
        let mut cells: BTreeMap<(NaiveDate, UsageClass), MeteredCell> = BTreeMap::new();
        // An amortised call's compute lines carry the instance time since the
        // previous call (`Allocation::Amortized`): held back, to be filed as the
        // accrual's increment over that time is (see below).
        let amortized = cost.allocation == Allocation::Amortized
            && cost.running_fleet_usd.is_none()
            && cost.accrual.is_some();
        let mut held = HeldCompute::default();
        // Where the receipt does not price the variant's own instances, its
        // priced compute lines at another rate than its standing parts' are of
        // those the run's last receipt that did stood on (the variant scaled to
        // 0 and back up on a type of unknown rate).
        let stood_before = self.accruals.stood_before(run, cost);
        // What stands now: the receipt's parts, or where it carries none beside
        // an unknown own rate (a shadow ended since), those the run's last
        // receipt that carried any stood on, whose time its lines may carry.
        let standing = self.accruals.standing(run, cost);
        let standing_rate = average_rate(standing);
        let mut fees = self.fees_usd;
        let mut day_fees = self
            .tallies
            .get(&day)
            .map_or(Decimal::ZERO, |tally| tally.fees_usd);
        let mut unpriced = 0u64;
        let mut compute_class = None;
        for line in &cost.lines {
            let LinePrice::Priced {
                usd_per_unit,
                cost_usd,
                provenance,
            } = &line.price
            else {
                unpriced += 1;
                continue;
            };
            let cost_usd = figure("a line cost", *cost_usd)?;
            let quantity = figure("a line quantity", line.quantity)?;
            let usd_per_unit = figure("a rate", *usd_per_unit)?;
            let Some(class) = UsageClass::of_line(cost, line) else {
                fees = sum(fees, cost_usd, "per-call and per-token fees")?;
                day_fees = sum(day_fees, cost_usd, "per-call and per-token fees")?;
                continue;
            };
            if class.is_instance_time() {
                compute_class = Some(class.clone());
                if amortized && line.item == LineItem::Compute {
                    held.cost_usd = sum(held.cost_usd, cost_usd, "metered cost")?;
                    held.quantity = sum(held.quantity, quantity, "metered quantity")?;
                    held.lines.push((cost_usd, quantity, usd_per_unit));
                    held.usd_per_unit.get_or_insert(usd_per_unit);
                    // The call's own rate: its line with the price's full
                    // provenance (SKU, effective date, fetch time), which a
                    // stretch at an earlier rate lacks; else its last line.
                    let own = provenance.sku.is_some()
                        || provenance.effective_date.is_some()
                        || provenance.fetched_at.is_some();
                    if own || !held.own_marked {
                        held.own_usd_per_unit = Some(usd_per_unit);
                        held.own_provenance = Some(provenance.clone());
                    }
                    held.own_marked |= own;
                    // A line at the earlier parts' rate, not the standing ones':
                    // a price change at the standing parts starts a line at
                    // another rate too, and that one is theirs.
                    if stood_before.and_then(average_rate) == Some(usd_per_unit)
                        && standing_rate != Some(usd_per_unit)
                    {
                        held.before_usd = sum(held.before_usd, cost_usd, "metered cost")?;
                    }
                    continue;
                }
            }
            cell_of(&self.cells, &mut cells, day, &cost.endpoint, &class).meter(
                cost_usd,
                quantity,
                Some((RateFrom::of(cost, day, Some(provenance)), usd_per_unit)),
                sum,
            )?;
        }
        let mut accrual_update = None;
        let mut fleet_accrual = None;
        if let (Some(accrual), Some(class)) = (&cost.accrual, compute_class.clone()) {
            let accrued = figure("an accrual", accrual.accrued_usd)?;
            let allocated = figure("an allocation", accrual.allocated_usd)?;
            let stood = held.stood(standing, stood_before);
            let shares = standing_shares(&class, &stood);
            if cost.running_fleet_usd.is_some() {
                // A fleet's figures are every process's: the day's highest, not a
                // run's increments (see `accrual`).
                fleet_accrual = Some((shares, accrued, allocated));
            } else {
                let update = self
                    .accruals
                    .update(run, cost, shares, accrued, allocated)
                    .map_err(|what| {
                        refuse(format!(
                            "receipt {}: {}",
                            cost.call_id,
                            too_many_digits(&what)
                        ))
                    })?;
                let too_long = |what: String| {
                    refuse(format!(
                        "receipt {}: {}",
                        cost.call_id,
                        too_many_digits(&what)
                    ))
                };
                // An amortised call's compute (and so its allocation) is the
                // instance time since the previous call: filed on the days and
                // under the kinds of instance time the accrual's increment is, in
                // its shares, each kind's instance-hours at its own rate. Where
                // the receipt adds no increment (counting starts), on its own day.
                let spread = match update.increment().filter(|_| amortized) {
                    Some(increment) => {
                        let (by_time, rates) = held.by_time(&stood, update.shares());
                        let allocated = increment
                            .split_as_accrued(update.allocated_usd, update.shares())
                            .map_err(too_long)?;
                        // The lines come one per rate, in the order the rates were
                        // in force: where the accrual is of one kind, each line
                        // covers its own stretch of the time, and each day gets
                        // the cost at the rates AWS billed it at (`by_line`).
                        // Where they cannot be placed so (several kinds, or sets
                        // of parts, standing; lines whose instance-hours are not
                        // the time's), spread evenly over the time, the days the
                        // receipt only carries at its first line's rate.
                        let by_line = match (update.shares(), &stood[..]) {
                            ([(class, _)], [(parts, _)]) => {
                                let (from, to) = increment.span();
                                held.by_line(from, to, units_standing(parts, cost))
                                    .filter(|days| {
                                        days.keys().eq(allocated.iter().map(|(on, ..)| on))
                                    })
                                    .map(|days| (class, days))
                            }
                            _ => None,
                        };
                        let (costs, hours, line_rates) = match by_line {
                            Some((class, days)) => {
                                let mut costs = Vec::new();
                                let mut hours = Vec::new();
                                let mut line_rates = BTreeMap::new();
                                for (on, (usd, quantity, rate)) in days {
                                    costs.push((on, class.clone(), usd));
                                    hours.push((on, class.clone(), quantity));
                                    line_rates.insert(on, rate);
                                }
                                (costs, hours, line_rates)
                            }
                            None => (
                                increment
                                    .split_as_accrued(held.cost_usd, update.shares())
                                    .map_err(too_long)?,
                                increment
                                    .split_as_accrued(held.quantity, &by_time)
                                    .map_err(too_long)?,
                                BTreeMap::new(),
                            ),
                        };
                        Some((costs, hours, allocated, rates, line_rates))
                    }
                    None => None,
                };
                match spread {
                    Some((costs, hours, allocated, rates, line_rates)) => {
                        let parts = costs.iter().zip(&hours).zip(&allocated);
                        for (((on, of, usd), (_, _, quantity)), (_, _, allocated)) in parts {
                            let cell = cell_of(&self.cells, &mut cells, *on, &cost.endpoint, of);
                            let rate = match (*on == day, line_rates.get(on)) {
                                (true, _) => held.own_rate(update.shares(), of, &rates),
                                (false, Some(rate)) => Some(*rate),
                                (false, None) => rate_of(&rates, of),
                            };
                            let provenance = held.own_provenance.as_ref();
                            let rate = rate.map(|r| (RateFrom::of(cost, *on, provenance), r));
                            cell.meter(*usd, *quantity, rate, sum)?;
                            cell.allocated_usd =
                                sum(cell.allocated_usd, *allocated, "allocated instance time")?;
                        }
                    }
                    None => {
                        if amortized {
                            // Where counting starts: on its own day, by kind of
                            // instance time as an increment is.
                            let (by_time, rates) = held.by_time(&stood, update.shares());
                            let split = |amount: Decimal, shares| {
                                shared_out(amount, shares).ok_or_else(|| {
                                    too_long(format!(
                                        "the {amount} USD or units {} carried where counting \
                                         starts, split by kind of instance time",
                                        cost.endpoint
                                    ))
                                })
                            };
                            let costs = split(held.cost_usd, update.shares())?;
                            let hours = split(held.quantity, &by_time)?;
                            for ((of, usd), (_, quantity)) in costs.into_iter().zip(hours) {
                                let cell =
                                    cell_of(&self.cells, &mut cells, day, &cost.endpoint, of);
                                let rate = held.own_rate(update.shares(), of, &rates);
                                let provenance = held.own_provenance.as_ref();
                                let rate = rate.map(|r| (RateFrom::of(cost, day, provenance), r));
                                cell.meter(usd, quantity, rate, sum)?;
                            }
                        }
                        // The receipt's own compute class, whose cell is made above.
                        let cell = cells.get_mut(&(day, update.class().clone())).ok_or_else(
                            || {
                                refuse(format!(
                                    "receipt {}: the accrual of {} has no compute line to go with",
                                    cost.call_id, cost.endpoint
                                ))
                            },
                        )?;
                        cell.allocated_usd = sum(
                            cell.allocated_usd,
                            update.allocated_usd,
                            "allocated instance time",
                        )?;
                    }
                }
                accrual_update = Some(update);
            }
        }

        self.receipts += 1;
        self.receipt_days = Some(match self.receipt_days {
            Some((first, last)) => (first.min(day), last.max(day)),
            None => (day, day),
        });
        self.without_region += u64::from(without_region);
        self.fees_usd = fees;
        let tally = self.tallies.entry(day).or_default();
        tally.receipts += 1;
        tally.without_region += u64::from(without_region);
        tally.unpriced_lines += unpriced;
        tally.fees_usd = day_fees;
        for (key, value) in &cost.tags {
            self.call_tags
                .insert((cost.endpoint.clone(), key.clone()), value.clone());
        }
        for ((on, class), cell) in cells {
            self.cells.insert((on, cost.endpoint.clone(), class), cell);
        }
        if let Some(update) = accrual_update {
            self.accruals.apply(update);
        }
        if let Some((shares, accrued, allocated)) = fleet_accrual {
            self.accruals.note_fleet(cost, &shares, accrued, allocated);
        }
        Ok(())
    }

    /// Receipts read of this region (those without a region included), of every
    /// day read. A reconciliation compares those of its days only:
    /// [`Reconciliation::receipts`] counts them.
    pub fn receipts(&self) -> u64 {
        self.receipts
    }

    /// The ledgers [`read_ledger`](Self::read_ledger) (or
    /// [`read_ledgers`](Self::read_ledgers)) read: each file once however often
    /// it was named, and a rolling ledger's files (one directory) as one ledger.
    /// Receipts given to [`add`](Self::add) are of no ledger read.
    pub fn ledgers_read(&self) -> usize {
        self.ledgers_read.len()
    }

    /// The region whose receipts are gathered.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Receipts of other regions, left out, by region, of every day read.
    pub fn left_out(&self) -> &BTreeMap<String, u64> {
        &self.other_regions
    }

    /// Of the [`receipts`](Self::receipts) read, those without a region (written
    /// before receipts carried it), taken as this region's, of every day read.
    pub fn without_region(&self) -> u64 {
        self.without_region
    }

    /// The first and last UTC day with a receipt (one whose lines are all
    /// unpriced included).
    pub fn days(&self) -> Option<(NaiveDate, NaiveDate)> {
        self.receipt_days
    }

    /// What the notes count of the receipts of the days from `since` to `until`
    /// (excluded): those a reconciliation of these days compares, or leaves out
    /// for their region. The fees are added up exactly, or refused.
    fn tally(&self, since: NaiveDate, until: NaiveDate) -> Result<DayTally, AccountError> {
        let mut all = DayTally::default();
        if since >= until {
            return Ok(all);
        }
        for tally in self.tallies.range(since..until).map(|(_, tally)| tally) {
            all.receipts += tally.receipts;
            all.without_region += tally.without_region;
            for (region, n) in &tally.other_regions {
                *all.other_regions.entry(region.clone()).or_default() += n;
            }
            all.unpriced_lines += tally.unpriced_lines;
            all.fees_usd = add_exactly(all.fees_usd, tally.fees_usd, || {
                format!("the per-call and per-token fees from {since} to {until}")
            })?;
        }
        Ok(all)
    }

    fn endpoints(&self) -> BTreeSet<&str> {
        self.cells.keys().map(|(_, e, _)| e.as_str()).collect()
    }
}

/// The run a ledger file's receipts are of: its rolling ledger's directory, or
/// the file itself, as one path however it is named ([`normalised`]).
fn run_of(path: &Path) -> PathBuf {
    normalised(rolling_dir_of(path).unwrap_or(path))
}

/// `path` as one path however it is spelled (`ledger`, `./ledger/`, a symbolic
/// link to it): canonical when it resolves, else [`lexically_normalised`].
fn normalised(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| lexically_normalised(path))
}

/// `path` with its `.` components left out and each `..` taking away the name
/// before it (`.` when nothing is left), without asking the file system.
fn lexically_normalised(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // Above the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `paths` with each rolling ledger's files together (its directory however it
/// is spelled, [`normalised`]), where its first file is named, in the order its
/// writer made them; other files stay where they are.
fn oldest_first<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Vec<PathBuf> {
    /// One plain file, or the files of one rolling ledger.
    enum Entry {
        File(PathBuf),
        Rolled(Vec<(RolledFileName, PathBuf)>),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut rolled_at: HashMap<PathBuf, usize> = HashMap::new();
    for path in paths {
        let path = path.as_ref();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(RolledFileName::parse_any);
        match (named, rolling_dir_of(path)) {
            (Some(name), Some(dir)) => {
                let at = *rolled_at.entry(normalised(dir)).or_insert_with(|| {
                    entries.push(Entry::Rolled(Vec::new()));
                    entries.len() - 1
                });
                if let Entry::Rolled(files) = &mut entries[at] {
                    files.push((name, path.to_owned()));
                }
            }
            _ => entries.push(Entry::File(path.to_owned())),
        }
    }
    entries
        .into_iter()
        .flat_map(|entry| match entry {
            Entry::File(path) => vec![path],
            Entry::Rolled(mut files) => {
                // Stable: one file named twice stays twice (and is read once).
                files.sort_by_key(|(name, _)| *name);
                files.into_iter().map(|(_, path)| path).collect()
            }
        })
        .collect()
}

/// A day's difference, in named parts: idle instance time, usage outside sagemeter,
/// standing charges, discounts, other charges and what none of them explains.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    /// Instance time accrued between metered calls and allocated to none.
    pub idle_instance_usd: Decimal,
    /// Usage in the bill beyond what the meter saw, at on-demand prices.
    pub outside_usd: Decimal,
    /// Storage and provisioned concurrency beyond the receipts' share.
    pub standing_usd: Decimal,
    /// The bill below (negative) or above on-demand prices.
    pub discount_usd: Decimal,
    /// SageMaker charges that are not an endpoint's (training, notebooks, ...).
    pub other_usd: Decimal,
    /// What none of the above explains: the meter counting beyond the bill, or an
    /// unknown rate.
    pub unexplained_usd: Decimal,
}

impl Parts {
    /// Adds `other`, each part exactly ([`add_exactly`]); `of` names a sum
    /// refused (`of("discount")`).
    fn add(&mut self, other: &Parts, of: impl Fn(&str) -> String) -> Result<(), AccountError> {
        for (sum, part, what) in [
            (
                &mut self.idle_instance_usd,
                other.idle_instance_usd,
                "idle instance time",
            ),
            (
                &mut self.outside_usd,
                other.outside_usd,
                "usage outside sagemeter",
            ),
            (
                &mut self.standing_usd,
                other.standing_usd,
                "standing charges",
            ),
            (&mut self.discount_usd, other.discount_usd, "discount"),
            (&mut self.other_usd, other.other_usd, "other charges"),
            (
                &mut self.unexplained_usd,
                other.unexplained_usd,
                "unexplained amount",
            ),
        ] {
            *sum = add_exactly(*sum, part, || of(what))?;
        }
        Ok(())
    }

    /// Each part rounded to 12 places ([`round_cost`]), and the unexplained
    /// part what `difference` (the row's, billed less its rounded metered cost)
    /// leaves of them: the parts add up to it to the last digit, whatever the
    /// rounding of each (a few 10⁻¹² at most); `of` names a sum refused.
    fn normalized_to(
        mut self,
        difference: Decimal,
        of: impl Fn(&str) -> String,
    ) -> Result<Parts, AccountError> {
        let mut explained = Decimal::ZERO;
        for (v, what) in [
            (&mut self.idle_instance_usd, "idle instance time"),
            (&mut self.outside_usd, "usage outside sagemeter"),
            (&mut self.standing_usd, "standing charges"),
            (&mut self.discount_usd, "discount"),
            (&mut self.other_usd, "other charges"),
        ] {
            *v = round_cost(*v).normalize();
            explained = add_exactly(explained, *v, || of(what))?;
        }
        self.unexplained_usd =
            subtract_exactly(difference, explained, || of("unexplained amount"))?.normalize();
        Ok(self)
    }
}

/// One group of one day.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRow {
    /// The UTC day.
    pub day: NaiveDate,
    /// The usage type (without region prefix) or the tag value (`(untagged)`).
    pub group: String,
    /// Cost Explorer's `AmortizedCost` (see [`Reconciliation::billed_metric`]).
    pub billed_usd: Decimal,
    /// The receipts' SageMaker lines.
    pub metered_usd: Decimal,
    /// billed − metered.
    pub difference_usd: Decimal,
    /// The difference, explained.
    pub parts: Parts,
    /// Billed ÷ on-demand value of the billed quantity, when known (1 = on-demand;
    /// 0.7 = 30 % off). None for provisioned concurrency, whose row adds two usage
    /// types billed at two rates (standing and inference seconds).
    pub effective_rate_ratio: Option<Decimal>,
    /// Billed quantity (by usage type only), in `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_quantity: Option<Decimal>,
    /// Metered quantity (by usage type only), in `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metered_quantity: Option<Decimal>,
    /// The quantities' unit as billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Cost Explorer marks the day `Estimated`.
    pub estimated: bool,
}

/// How a day's bill and meter compare.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Billed and metered are within the tolerance.
    Agrees,
    /// They differ, and the named parts explain it within the tolerance.
    Explained,
    /// They differ beyond what the parts explain.
    Differs,
    /// Cost Explorer marks the day `Estimated`, and it ended less than
    /// [`SETTLING_TIME`] ago: its usage may not all be in yet.
    NotSettled,
}

impl Verdict {
    /// Words for a table.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Agrees => "agrees",
            Verdict::Explained => "explained",
            Verdict::Differs => "differs",
            Verdict::NotSettled => "not settled",
        }
    }
}

/// One day, all groups.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayVerdict {
    /// The UTC day.
    pub day: NaiveDate,
    /// Billed.
    pub billed_usd: Decimal,
    /// Metered.
    pub metered_usd: Decimal,
    /// billed − metered.
    pub difference_usd: Decimal,
    /// The difference, explained.
    pub parts: Parts,
    /// What none of the parts explains, without letting errors in opposite
    /// directions cancel: Σ |unexplained| over the day's groups and kinds of charge
    /// (`parts.unexplained_usd` is the signed sum). The verdict is judged by it.
    pub unexplained_gross_usd: Decimal,
    /// Estimated by Cost Explorer.
    pub estimated: bool,
    /// The verdict.
    pub verdict: Verdict,
}

/// The ledgers against the bill.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The region.
    pub region: String,
    /// The account reconciled, when the options named one; `None`: the caller's
    /// own (its id is not written down: outputs carry no account id they were
    /// not given).
    pub account: Option<String>,
    /// First day.
    pub since: NaiveDate,
    /// The day after the last.
    pub until: NaiveDate,
    /// The receipts compared: the region's (those without a region included) of
    /// the days from `since` to `until` (excluded), not the ledgers' every receipt
    /// ([`Metered::receipts`]). 0 in a reconciliation saved before it was
    /// written down.
    #[serde(default)]
    pub receipts: u64,
    /// `usage-type` or `tag:KEY`.
    pub group_by: String,
    /// The Cost Explorer metric the billed amounts are: `AmortizedCost` (usage a
    /// Savings Plan or reservation covers at its effective rate).
    pub billed_metric: String,
    /// The tolerance of the verdicts, USD.
    pub tolerance_usd: Decimal,
    /// One row per day and group, by day then group.
    pub rows: Vec<ReconcileRow>,
    /// One verdict per day.
    pub days: Vec<DayVerdict>,
    /// What the reader should know (fees left out, receipts without a region, ...).
    pub notes: Vec<String>,
}

/// A day, group and kind of charge, both sides.
#[derive(Debug, Default)]
struct Cell {
    billed: Decimal,
    billed_quantity: Decimal,
    unit: Option<String>,
    metered: MeteredCell,
}

impl Account {
    /// Compares what `metered` holds with what Cost Explorer billed over the
    /// options' days. Receipts outside the days are left out, of the figures and
    /// of the counts the notes give (a note says there are some). Metered figures of
    /// several endpoints, or kinds of charge, and Cost Explorer's amounts (of a
    /// row, a day, their parts) are added up exactly, and the parts and
    /// differences worked out from them exactly: one that needs more digits than
    /// a `Decimal` holds is [`AccountError::Invalid`], naming it, never rounded.
    pub async fn reconcile(
        &self,
        metered: &Metered,
        options: &ReconcileOptions,
    ) -> Result<Reconciliation, AccountError> {
        let now = chrono::DateTime::<Utc>::from(self.time.now());
        let today = now.date_naive();
        check_dates(options.since, options.until, today)?;
        if options.tolerance_usd < Decimal::ZERO {
            return Err(AccountError::Invalid(format!(
                "the tolerance ${} is negative: a day billed and metered alike would differ",
                options.tolerance_usd
            )));
        }
        if metered.region != self.region {
            return Err(AccountError::Invalid(format!(
                "the receipts were gathered for {}, and this account view is of {}",
                metered.region, self.region
            )));
        }
        let tag_key = match &options.group_by {
            GroupBy::Tag(key) => Some(key.as_str()),
            GroupBy::UsageType => None,
        };
        let account = match &options.account {
            Some(account) => {
                check_account(account)?;
                account.clone()
            }
            None => self.caller_account().await?,
        };
        let bill = bill::fetch(
            &self.cost_explorer,
            &self.region,
            &account,
            options.since,
            options.until,
            tag_key,
        )
        .await?;
        let mut notes = Vec::new();
        let groups = match tag_key {
            Some(key) => self.endpoint_tags(metered, key, &mut notes).await?,
            None => HashMap::new(),
        };
        let cells = self.cells(metered, &bill, options, &groups)?;
        let rates = self.rates(&cells, &mut notes).await;

        let mut rows: BTreeMap<(NaiveDate, String), ReconcileRow> = BTreeMap::new();
        // Σ |unexplained| per day, over every group and kind of charge: a row's
        // +$500 and another's −$500 are $1,000 unexplained, not $0.
        let mut gross: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        for ((day, group, class), cell) in &cells {
            let rate = rates.on(class, *day);
            let by_type = tag_key.is_none();
            let parts = explain(class, cell, rate, |what: &str| match by_type {
                true => format!("the {what} of {group} on {day}"),
                false => format!("the {what} of {class} in {group} on {day}"),
            })?;
            let gross = gross.entry(*day).or_default();
            *gross = add_exactly(*gross, round_cost(parts.unexplained_usd).abs(), || {
                format!("the unexplained amounts of {day}")
            })?;
            let row = rows
                .entry((*day, group.clone()))
                .or_insert_with(|| ReconcileRow {
                    day: *day,
                    group: group.clone(),
                    billed_usd: Decimal::ZERO,
                    metered_usd: Decimal::ZERO,
                    difference_usd: Decimal::ZERO,
                    parts: Parts::default(),
                    effective_rate_ratio: None,
                    billed_quantity: by_type.then_some(Decimal::ZERO),
                    metered_quantity: by_type.then_some(Decimal::ZERO),
                    unit: None,
                    estimated: bill.estimated.contains(day),
                });
            let of = |what: &str| format!("the {what} of {group} on {day}");
            row.billed_usd = add_exactly(row.billed_usd, cell.billed, || of("billed cost"))?;
            row.metered_usd = add_exactly(row.metered_usd, cell.metered.cost_usd, || {
                of("metered cost")
            })?;
            row.parts.add(&parts, of)?;
            if by_type {
                let quantity = row.billed_quantity.get_or_insert_default();
                *quantity = add_exactly(*quantity, cell.billed_quantity, || of("billed quantity"))?;
                let quantity = row.metered_quantity.get_or_insert_default();
                *quantity =
                    add_exactly(*quantity, cell.metered.quantity, || of("metered quantity"))?;
                row.unit = cell.unit.clone().or_else(|| row.unit.take());
                // Provisioned concurrency adds two usage types billed at two rates
                // (standing and inference seconds): its quantity at one rate is no
                // on-demand value, and its ratio is none.
                let on_demand = rate
                    .filter(|_| !matches!(class, UsageClass::ProvisionedConcurrency { .. }))
                    .and_then(|r| cell.billed_quantity.checked_mul(r));
                row.effective_rate_ratio = on_demand
                    .and_then(|v| cell.billed.checked_div(v))
                    .map(|ratio| ratio.round_dp(4).normalize());
            }
        }
        let mut days: BTreeMap<NaiveDate, DayVerdict> = BTreeMap::new();
        let mut day = options.since;
        while day < options.until {
            days.insert(day, empty_day(day, bill.estimated.contains(&day)));
            day = day.succ_opt().unwrap_or(options.until);
        }
        let mut rows: Vec<ReconcileRow> = rows.into_values().collect();
        for row in &mut rows {
            // The metered cost as the row shows it (12 places, an amortised gap's
            // day shares having up to 18), then the difference from it: billed −
            // metered to the last digit of the figures shown.
            let metered = round_cost(row.metered_usd);
            let of = |what: &str| format!("the {what} of {} on {}", row.group, row.day);
            let difference = subtract_exactly(row.billed_usd, metered, || {
                of("billed less the metered cost")
            })?;
            row.difference_usd = difference.normalize();
            row.billed_usd = row.billed_usd.normalize();
            row.metered_usd = metered.normalize();
            row.parts = std::mem::take(&mut row.parts).normalized_to(difference, of)?;
            if let Some(d) = days.get_mut(&row.day) {
                let of = |what: &str| format!("the {what} of {}", d.day);
                d.billed_usd = add_exactly(d.billed_usd, row.billed_usd, || of("billed cost"))?;
                d.metered_usd = add_exactly(d.metered_usd, row.metered_usd, || of("metered cost"))?;
                d.parts.add(&row.parts, of)?;
            }
        }
        let tolerance = options.tolerance_usd;
        let mut verdicts: Vec<DayVerdict> = Vec::with_capacity(days.len());
        for mut d in days.into_values() {
            let difference = subtract_exactly(d.billed_usd, d.metered_usd, || {
                format!("the billed less the metered cost of {}", d.day)
            })?;
            d.difference_usd = difference.normalize();
            d.billed_usd = d.billed_usd.normalize();
            d.metered_usd = d.metered_usd.normalize();
            // Its rows' parts, added up: they add up to its difference already.
            let of = |what: &str| format!("the {what} of {}", d.day);
            d.parts = std::mem::take(&mut d.parts).normalized_to(difference, of)?;
            d.unexplained_gross_usd = gross.get(&d.day).copied().unwrap_or_default().normalize();
            // The day's end (the next midnight, UTC), plus the time its usage
            // takes to reach Cost Explorer.
            let settled_at = super::accrual::day_end(d.day).map(|end| end + SETTLING_TIME);
            let settling = settled_at.is_none_or(|at| now < at);
            d.verdict = if d.estimated && settling {
                Verdict::NotSettled
            } else if d.difference_usd.abs() <= tolerance {
                Verdict::Agrees
            } else if d.unexplained_gross_usd <= tolerance {
                Verdict::Explained
            } else {
                Verdict::Differs
            };
            verdicts.push(d);
        }
        let days = verdicts;
        let judged_estimated: Vec<String> = days
            .iter()
            .filter(|d| d.estimated && d.verdict != Verdict::NotSettled)
            .map(|d| d.day.to_string())
            .collect();
        if !judged_estimated.is_empty() {
            notes.push(format!(
                "judged though Cost Explorer still marks them estimated (the month's bill is \
                 not final): {}; credits, refunds and late usage may yet change them",
                judged_estimated.join(", ")
            ));
        }
        let within = metered.tally(options.since, options.until)?;
        self.notes(metered, &within, options, &mut notes);
        Ok(Reconciliation {
            region: self.region.clone(),
            account: options.account.clone(),
            since: options.since,
            until: options.until,
            receipts: within.receipts,
            group_by: options.group_by.to_string(),
            billed_metric: bill::BILLED_METRIC.to_owned(),
            tolerance_usd: tolerance,
            rows,
            days,
            notes,
        })
    }

    /// The caller's account id (`sts:GetCallerIdentity`, which no IAM policy can
    /// deny). STS failing is its error as any AWS call's (a refusal, expired
    /// credentials, no answer), saying that naming the account skips the call;
    /// an answer without an account id is [`AccountError::Invalid`].
    async fn caller_account(&self) -> Result<String, AccountError> {
        const NAME_IT: &str = "the caller's account, whose bill is reconciled by default, is \
                               asked of STS: naming it (--account, ReconcileOptions::account) \
                               skips this";
        let identity = self.sts.get_caller_identity().send().await.map_err(|e| {
            let mut err = from_sdk("GetCallerIdentity", "sts:GetCallerIdentity", e);
            if let AccountError::MissingPermission { message, .. }
            | AccountError::Service { message, .. } = &mut err
            {
                message.push_str("; ");
                message.push_str(NAME_IT);
            }
            err
        })?;
        match identity.account() {
            Some(account) if check_account(account).is_ok() => Ok(account.to_owned()),
            _ => Err(AccountError::Invalid(
                "STS answered GetCallerIdentity without an account id, so the caller's \
                 account, whose bill is reconciled by default, could not be told: name it \
                 (--account, ReconcileOptions::account)"
                    .into(),
            )),
        }
    }

    /// Both sides, per day, group and kind of charge.
    fn cells(
        &self,
        metered: &Metered,
        bill: &Bill,
        options: &ReconcileOptions,
        groups: &HashMap<String, String>,
    ) -> Result<BTreeMap<(NaiveDate, String, UsageClass), Cell>, AccountError> {
        let mut cells: BTreeMap<(NaiveDate, String, UsageClass), Cell> = BTreeMap::new();
        let name = |tag: &str| {
            if tag.is_empty() {
                UNTAGGED.to_owned()
            } else {
                tag.to_owned()
            }
        };
        for usage in &bill.usage {
            let group = match &usage.tag {
                Some(tag) => name(tag),
                None => usage.class.to_string(),
            };
            // Exact, or refused (each amount fits, their sum may not): never
            // rounded to fewer places.
            let of = |what: &str| match &usage.tag {
                Some(_) => format!("the {what} of {} in {group} on {}", usage.class, usage.day),
                None => format!("the {what} of {group} on {}", usage.day),
            };
            let cell = cells
                .entry((usage.day, group.clone(), usage.class.clone()))
                .or_default();
            cell.billed = add_exactly(cell.billed, usage.cost_usd, || of("billed cost"))?;
            cell.billed_quantity = add_exactly(cell.billed_quantity, usage.quantity, || {
                of("billed quantity")
            })?;
            cell.unit = Some(usage.unit.clone());
        }
        // The row a metered endpoint's kind of charge goes to.
        let group_of = |endpoint: &str, class: &UsageClass| match &options.group_by {
            GroupBy::Tag(_) => name(groups.get(endpoint).map_or("", String::as_str)),
            GroupBy::UsageType => class.to_string(),
        };
        for ((day, endpoint, class), m) in &metered.cells {
            if *day < options.since || *day >= options.until {
                continue;
            }
            let group = group_of(endpoint, class);
            // Exact, or refused (endpoints' cells each fit, their sum may not):
            // never rounded to fewer places.
            let of = |what: &str| format!("the {what} of {group} on {day}, with {endpoint}'s");
            let cell = cells
                .entry((*day, group.clone(), class.clone()))
                .or_default();
            let c = &mut cell.metered;
            c.cost_usd = add_exactly(c.cost_usd, m.cost_usd, || of("metered cost"))?;
            c.quantity = add_exactly(c.quantity, m.quantity, || of("metered quantity"))?;
            c.allocated_usd = add_exactly(c.allocated_usd, m.allocated_usd, || {
                of("allocated instance time")
            })?;
            c.merge_rates(m);
        }
        // Instance time accrues on days without a receipt too (a quiet night); a
        // fleet's allocation is its day's, not its receipts' (see `accrual`).
        let beyond = |what: String| AccountError::Invalid(beyond_a_decimal(&what, "added up"));
        let accrued = metered.accruals.by_day().map_err(beyond)?.into_iter();
        let fleet_allocated = metered
            .accruals
            .fleet_allocated_by_day()
            .map_err(beyond)?
            .into_iter();
        let day_figures = accrued
            .map(|(key, usd)| (key, usd, Decimal::ZERO))
            .chain(fleet_allocated.map(|(key, usd)| (key, Decimal::ZERO, usd)));
        for ((day, endpoint, class), accrued, allocated) in day_figures {
            if day < options.since || day >= options.until {
                continue;
            }
            let group = group_of(endpoint, class);
            let of = |what: &str| format!("the {what} of {group} on {day}, with {endpoint}'s");
            let cell = &mut cells
                .entry((day, group.clone(), class.clone()))
                .or_default()
                .metered;
            cell.accrued_usd =
                add_exactly(cell.accrued_usd, accrued, || of("accrued instance time"))?;
            cell.allocated_usd = add_exactly(cell.allocated_usd, allocated, || {
                of("allocated instance time")
            })?;
        }
        Ok(cells)
    }

    /// The on-demand rate of each kind of charge on each day: the receipts' own
    /// (see [`Rates::on`]), that of the day's freshest price over every group
    /// ([`RateFrom`]), else the price source's; `None` when neither has one. A day whose
    /// receipts used several rates gets a note naming them.
    async fn rates(
        &self,
        cells: &BTreeMap<(NaiveDate, String, UsageClass), Cell>,
        notes: &mut Vec<String>,
    ) -> Rates {
        let mut rates = Rates::default();
        let mut by_day: BTreeMap<(NaiveDate, &UsageClass), MeteredCell> = BTreeMap::new();
        for ((day, _, class), cell) in cells {
            by_day
                .entry((*day, class))
                .or_default()
                .merge_rates(&cell.metered);
        }
        for ((day, class), seen) in by_day {
            let Some(rate) = seen.usd_per_unit() else {
                continue;
            };
            let listed: Vec<String> = seen
                .rates_seen
                .iter()
                .map(|r| format!("${}", r.normalize()))
                .collect();
            if let [earlier @ .., last] = listed.as_slice()
                && !earlier.is_empty()
            {
                notes.push(format!(
                    "{class} on {day}: the receipts priced it at {} and {last} (a price \
                     change, or a cached price refreshed within the day); the day is valued \
                     at ${}, that of the price fetched from AWS the latest among those looked \
                     up on the day (then of the latest look-up), as AWS changes prices at \
                     00:00 UTC: usage metered at the other rates differs from the bill by the \
                     rates' difference",
                    earlier.join(", "),
                    rate.normalize()
                ));
            }
            rates.metered.insert((class.clone(), day), rate);
        }
        for (_, _, class) in cells.keys() {
            if rates.listed.contains_key(class) || rates.has_metered(class) {
                continue;
            }
            // A source's $0, or a rate beyond any SageMaker price, is no rate
            // (`plausible`): at $0, Q × r = $0 and the whole bill is its discount.
            let rate = match class.price_key(&self.region) {
                Some(key) => match plausible(self.prices.price(&key).await) {
                    Ok(rate) => Some(rate.usd_per_unit),
                    Err(err) => {
                        // A standing charge's difference needs no rate (`explain`):
                        // what goes without one is its effective rate ratio.
                        let without = if class.is_standing() {
                            "its rows by usage type have no effective rate ratio (what its \
                             bill holds beyond its receipts is standing, which needs no rate)"
                        } else {
                            "what its bill and receipts do not explain is unexplained, not \
                             outside sagemeter or a discount"
                        };
                        notes.push(format!(
                            "no on-demand rate for {class} in {}: {err}; {without}",
                            self.region
                        ));
                        None
                    }
                },
                None => None,
            };
            rates.listed.insert(class.clone(), rate);
        }
        rates
    }

    /// Each metered endpoint's value of the tag `key` (`sagemaker:ListTags`); a
    /// receipt's own tag of that key when the endpoint is gone.
    async fn endpoint_tags(
        &self,
        metered: &Metered,
        key: &str,
        notes: &mut Vec<String>,
    ) -> Result<HashMap<String, String>, AccountError> {
        let mut tags = HashMap::new();
        for endpoint in metered.endpoints() {
            let described = match self
                .sagemaker
                .describe_endpoint()
                .endpoint_name(endpoint)
                .send()
                .await
            {
                Ok(d) => d,
                Err(err) => {
                    let err = from_sdk("DescribeEndpoint", "sagemaker:DescribeEndpoint", err);
                    if matches!(err, AccountError::MissingPermission { .. }) {
                        return Err(err);
                    }
                    let fallback = metered
                        .call_tags
                        .get(&(endpoint.to_owned(), key.to_owned()))
                        .cloned();
                    notes.push(format!(
                        "endpoint {endpoint} could not be described ({err}): its receipts are \
                         grouped by their own `{key}` tag ({})",
                        fallback.as_deref().unwrap_or(UNTAGGED)
                    ));
                    if let Some(value) = fallback {
                        tags.insert(endpoint.to_owned(), value);
                    }
                    continue;
                }
            };
            let Some(arn) = described.endpoint_arn() else {
                continue;
            };
            let mut pages = self
                .sagemaker
                .list_tags()
                .resource_arn(arn)
                .into_paginator()
                .items()
                .send();
            while let Some(tag) = pages.next().await {
                let tag = tag.map_err(|e| from_sdk("ListTags", "sagemaker:ListTags", e))?;
                if tag.key() == Some(key) {
                    tags.insert(
                        endpoint.to_owned(),
                        tag.value().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        Ok(tags)
    }

    /// The notes on `metered`, `within` its tally of the days reconciled: each
    /// count is of the receipts of those days, the one on the receipts outside
    /// them aside.
    fn notes(
        &self,
        metered: &Metered,
        within: &DayTally,
        options: &ReconcileOptions,
        notes: &mut Vec<String>,
    ) {
        if metered.receipts == 0 {
            notes.push("no receipts: everything billed is outside sagemeter".into());
        } else if within.receipts == 0 {
            notes.push("no receipts of these days: everything billed is outside sagemeter".into());
        }
        if let Some((first, last)) = metered.days()
            && (first < options.since || last >= options.until)
        {
            notes.push(format!(
                "receipts from {first} to {last}; only those from {} to the day before {} are compared",
                options.since, options.until
            ));
        }
        if within.without_region > 0 {
            let mut note = format!(
                "{} no region (written before receipts did): taken as {}",
                receipts_carry(within.without_region),
                self.region
            );
            // Nothing says they are this region's: the regions the ledgers name
            // are others (the CLI refuses this).
            if within.without_region == within.receipts && !within.other_regions.is_empty() {
                let regions: Vec<&str> = within.other_regions.keys().map(String::as_str).collect();
                let hint: Vec<String> = regions.iter().map(|r| format!("--region {r}")).collect();
                note.push_str(&format!(
                    ", though no receipt names {} and those left out name {}: if the ones \
                     without a region are {}'s, reconcile with {}",
                    self.region,
                    regions.join(", "),
                    regions.join(" or "),
                    hint.join(" or ")
                ));
            }
            notes.push(note);
        }
        for (region, n) in &within.other_regions {
            notes.push(format!(
                "{} of {region} left out: this reconciliation is of {} (reconcile {} with \
                 --region {region})",
                receipts(*n),
                self.region,
                if *n == 1 { "it" } else { "them" }
            ));
        }
        for (file, torn) in &metered.torn_tails {
            notes.push(format!(
                "skipped a torn last line of {file} (line {}, {} bytes: an interrupted \
                 write); a receipt it held is not compared",
                torn.line, torn.bytes
            ));
        }
        match within.unpriced_lines {
            0 => {}
            1 => notes.push("1 receipt line is unpriced and counts as $0 metered".into()),
            n => notes.push(format!(
                "{n} receipt lines are unpriced and count as $0 metered"
            )),
        }
        if !within.fees_usd.is_zero() {
            notes.push(format!(
                "${} of per-call and per-token fees on the receipts are not Amazon SageMaker \
                 usage and are left out",
                within.fees_usd.normalize()
            ));
        }
    }
}

/// `1 receipt`, `2 receipts`.
fn receipts(n: u64) -> String {
    if n == 1 {
        "1 receipt".to_owned()
    } else {
        format!("{n} receipts")
    }
}

/// `1 receipt carries`, `2 receipts carry`.
fn receipts_carry(n: u64) -> String {
    if n == 1 {
        "1 receipt carries".to_owned()
    } else {
        format!("{n} receipts carry")
    }
}

/// An AWS account id: twelve digits.
fn check_account(account: &str) -> Result<(), AccountError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "`{}` is not an AWS account id (twelve digits, e.g. 123456789012)",
            crate::redact::printable(account)
        )))
    }
}

/// Standing parts, each set with its part of the time a receipt's compute
/// covers (1 for the one set that stood throughout).
type Stood<'a> = [(&'a [StandingPart], Decimal)];

/// The kinds of instance time an accrual of `class` pays for, each with its share
/// of it: `class` alone, or when it adds up variants billed alongside (a shadow
/// variant, a deployment's new fleet), each part's class (its instance type, as
/// AWS bills it) with its share of what the parts `stood` cost (its standing
/// rate × its set's part of the time), `class` first. The parts need not include
/// the receipt's own variant (its own rate unknown, the accrual is of those
/// billed alongside alone, or of those it stood on before): `class` then comes
/// first with a share of 0, and no part's time is filed under it.
fn standing_shares(class: &UsageClass, stood: &Stood<'_>) -> Vec<(UsageClass, Decimal)> {
    let alone = || vec![(class.clone(), Decimal::ONE)];
    let parts = || {
        stood
            .iter()
            .flat_map(|(parts, hours)| parts.iter().map(move |part| (part, *hours)))
    };
    let total: Decimal = parts().map(|(p, hours)| p.usd_per_hour * hours).sum();
    if total <= Decimal::ZERO || parts().any(|(p, _)| p.usd_per_hour < Decimal::ZERO) {
        return alone();
    }
    let share = |usd: Decimal| (usd / total).round_dp(20);
    let mut shares = vec![(class.clone(), Decimal::ZERO)];
    for (part, hours) in parts() {
        let of = part_class(class, part);
        let part_share = share(part.usd_per_hour * hours);
        // Parts billed under one usage type (a new fleet of the same instance
        // type, a shadow standing before and since) are one share of it.
        match shares.iter_mut().find(|(class, _)| *class == of) {
            Some((_, sum)) => *sum += part_share,
            None => shares.push((of, part_share)),
        }
    }
    if shares.len() == 1 {
        return alone();
    }
    shares
}

/// What an hour of `parts` costs per instance (or unit of provisioned
/// concurrency) standing, as an amortised compute line states it: their
/// standing rates ÷ their instances. `None` without any.
fn average_rate(parts: &[StandingPart]) -> Option<Decimal> {
    // Rates a ledger may carry beyond what a receipt can: added up checked (no
    // average where they overflow).
    let units = standing_units(parts);
    let usd = parts.iter().try_fold(Decimal::ZERO, |sum, part| {
        sum.checked_add(part.usd_per_hour)
    })?;
    (units > 0).then(|| usd / Decimal::from(units))
}

/// The instances (or units of provisioned concurrency) `parts` stand on,
/// added up as u64: a ledger may state u32::MAX of each.
fn standing_units(parts: &[StandingPart]) -> u64 {
    parts.iter().map(|part| units_of(&part.billing)).sum()
}

/// The instances (or units of provisioned concurrency) `cost`'s accrual stood
/// on: its standing `parts`'; or where it carries none, as the meter writes a
/// variant's accrual alone, the receipt's own billing's (0 without one).
fn units_standing(parts: &[StandingPart], cost: &Cost) -> u64 {
    match parts.is_empty() {
        false => standing_units(parts),
        true => cost.billing.as_ref().map_or(0, units_of),
    }
}

/// The instances (or units of provisioned concurrency) `billing` stands on.
fn units_of(billing: &VariantBilling) -> u64 {
    match billing {
        VariantBilling::Instance { instance_count, .. } => u64::from(*instance_count),
        VariantBilling::Serverless {
            provisioned_concurrency,
            ..
        } => u64::from(provisioned_concurrency.unwrap_or(0)),
    }
}

/// `endpoint`'s cell of `class` on `day` among `changed` (the cells a receipt
/// changes), made from what `cells` holds the first time.
fn cell_of<'a>(
    cells: &BTreeMap<(NaiveDate, String, UsageClass), MeteredCell>,
    changed: &'a mut BTreeMap<(NaiveDate, UsageClass), MeteredCell>,
    day: NaiveDate,
    endpoint: &str,
    class: &UsageClass,
) -> &'a mut MeteredCell {
    changed.entry((day, class.clone())).or_insert_with(|| {
        cells
            .get(&(day, endpoint.to_owned(), class.clone()))
            .cloned()
            .unwrap_or_default()
    })
}

/// Kind `of`'s rate per instance-hour among `rates` ([`HeldCompute::by_time`]'s),
/// if it has a known one.
fn rate_of(rates: &[(UsageClass, Option<Decimal>)], of: &UsageClass) -> Option<Decimal> {
    rates.iter().find(|(c, _)| c == of).and_then(|(_, r)| *r)
}

/// An amortised receipt's compute lines, added up: what its instances accrued
/// since the previous call.
#[derive(Debug, Default)]
struct HeldCompute {
    cost_usd: Decimal,
    /// Instance-hours, of every instance the accrual pays for.
    quantity: Decimal,
    /// The first line's rate, the earliest stretch's (the lines are in the order
    /// the rates were first in force): the rate of the days the receipt only
    /// carries where its lines cannot each be placed on their own stretch
    /// ([`HeldCompute::by_line`]; with a shadow or a new fleet billed alongside,
    /// the average of every instance's).
    usd_per_unit: Option<Decimal>,
    /// The call's own rate, the one it looked up: its line with the price's full
    /// provenance, else its last. The rate of the receipt's own day.
    own_usd_per_unit: Option<Decimal>,
    /// Whether `own_usd_per_unit` is of a line with full provenance.
    own_marked: bool,
    /// The provenance of `own_usd_per_unit`'s line: how fresh the price the call
    /// looked up is, which ranks the rate of the receipt's own day
    /// ([`RateFrom`]); the standing parts' rates there, looked up with it, too.
    own_provenance: Option<Provenance>,
    /// Of `cost_usd`, the lines' at another rate than the parts standing now
    /// ([`Accruals::standing`]), when they are of the parts stood on before
    /// ([`Accruals::stood_before`]).
    before_usd: Decimal,
    /// Each line's cost, instance-hours and rate, in the receipt's order (the
    /// order the rates were in force).
    lines: Vec<(Decimal, Decimal, Decimal)>,
}

impl HeldCompute {
    /// The lines' cost and instance-hours by UTC day over the time `from` to `to`
    /// that `instances` stood throughout, each day with the rate of the last line
    /// over it. The lines come one per rate, in the order the rates were in
    /// force: each covers its own stretch of the time, in turn, as long as its
    /// instance-hours take, and is spread over that stretch alone. `None` where
    /// the lines cannot be placed so: no instances, or the lines' instance-hours
    /// more than a second an instance off the time's (the count changed).
    #[allow(clippy::type_complexity)]
    fn by_line(
        &self,
        from: chrono::DateTime<Utc>,
        to: chrono::DateTime<Utc>,
        instances: u64,
    ) -> Option<BTreeMap<NaiveDate, (Decimal, Decimal, Decimal)>> {
        if instances == 0 || self.lines.is_empty() || to <= from {
            return None;
        }
        if self
            .lines
            .iter()
            .any(|(_, quantity, _)| quantity.is_sign_negative())
        {
            return None;
        }
        let all = self
            .lines
            .iter()
            .try_fold(Decimal::ZERO, |all, (_, quantity, _)| {
                all.checked_add(*quantity)
            })?;
        let whole = Decimal::from((to - from).num_microseconds()?);
        let instances = Decimal::from(instances);
        let time = whole
            .checked_mul(instances)?
            .checked_div(Decimal::from(3_600_000_000u64))?;
        if all.is_zero() || (all - time).abs() > instances / Decimal::from(3_600) {
            return None;
        }
        let mut days: BTreeMap<NaiveDate, (Decimal, Decimal, Decimal)> = BTreeMap::new();
        let (mut start, mut so_far) = (from, Decimal::ZERO);
        for (i, (usd, quantity, rate)) in self.lines.iter().enumerate() {
            so_far = so_far.checked_add(*quantity)?;
            let end = match i + 1 == self.lines.len() {
                true => to,
                false => {
                    let micros = whole.checked_mul(so_far)?.checked_div(all)?.round();
                    from + chrono::TimeDelta::microseconds(micros.try_into().ok()?)
                }
            };
            let costs = spread(start, end, *usd)?;
            let hours = spread(start, end, *quantity)?;
            for ((on, _, _, usd), (_, _, _, quantity)) in costs.into_iter().zip(hours) {
                let day = days
                    .entry(on)
                    .or_insert((Decimal::ZERO, Decimal::ZERO, *rate));
                day.0 = crate::util::exact_sum(day.0, usd)?;
                day.1 = crate::util::exact_sum(day.1, quantity)?;
                day.2 = *rate;
            }
            start = end;
        }
        Some(days)
    }

    /// The rate of kind `of` on the receipt's own day: the call's own
    /// (`own_usd_per_unit`) where the accrual is of one kind alone (`shares`), else
    /// `rates`' ([`HeldCompute::by_time`]'s, the standing parts').
    fn own_rate(
        &self,
        shares: &[(UsageClass, Decimal)],
        of: &UsageClass,
        rates: &[(UsageClass, Option<Decimal>)],
    ) -> Option<Decimal> {
        match shares.len() < 2 {
            true => self.own_usd_per_unit,
            false => rate_of(rates, of),
        }
    }

    /// The standing parts the lines' instance time stood on, each set with its
    /// part of the time: those standing `now` ([`Accruals::standing`]: the
    /// receipt's, or the run's last carried when a shadow ended beside an own
    /// rate unknown) throughout; or where the receipt does not price its
    /// variant's own instances, the parts it stood on `before`
    /// ([`Accruals::stood_before`]) for the lines at another rate (all of them
    /// when nothing of a known rate stands now), each set standing its lines'
    /// cost ÷ its standing rate in hours.
    fn stood<'a>(
        &self,
        now: &'a [StandingPart],
        before: Option<&'a [StandingPart]>,
    ) -> Vec<(&'a [StandingPart], Decimal)> {
        let Some(before) = before else {
            return vec![(now, Decimal::ONE)];
        };
        if now.is_empty() {
            return vec![(before, Decimal::ONE)];
        }
        let Some(since) = self.cost_usd.checked_sub(self.before_usd) else {
            return vec![(now, Decimal::ONE)];
        };
        if self.before_usd.is_zero() {
            return vec![(now, Decimal::ONE)];
        }
        if since.is_zero() {
            return vec![(before, Decimal::ONE)];
        }
        let hours = |usd: Decimal, parts: &[StandingPart]| {
            let per_hour: Decimal = parts.iter().map(|part| part.usd_per_hour).sum();
            usd.checked_div(per_hour)
                .filter(|hours| *hours > Decimal::ZERO)
        };
        // As parts of the time (within 1, so that no rate or instance count
        // weighed with one grows).
        let time = |(before_hours, since_hours): (Decimal, Decimal)| {
            let all = before_hours.checked_add(since_hours)?;
            Some((before_hours / all, since_hours / all))
        };
        match hours(self.before_usd, before)
            .zip(hours(since, now))
            .and_then(time)
        {
            Some((before_time, since_time)) => vec![(before, before_time), (now, since_time)],
            None => vec![(now, Decimal::ONE)],
        }
    }

    /// Each kind of instance time among `shares` (an accrual's, by its standing
    /// parts' rates, the receipt's own first) with its share of the lines'
    /// instance-hours (its instances of all those the parts `stood` count, each
    /// set's × its part of the time, rounded at 20 places as the rates' shares
    /// are); and each with its own rate per instance-hour (its parts' hourly
    /// rates ÷ their instances). An accrual of one kind alone: all the
    /// instance-hours, at the lines' rate.
    #[allow(clippy::type_complexity)]
    fn by_time(
        &self,
        stood: &Stood<'_>,
        shares: &[(UsageClass, Decimal)],
    ) -> (
        Vec<(UsageClass, Decimal)>,
        Vec<(UsageClass, Option<Decimal>)>,
    ) {
        let own = &shares[0].0;
        if shares.len() < 2 {
            return (
                vec![(own.clone(), Decimal::ONE)],
                vec![(own.clone(), self.usd_per_unit)],
            );
        }
        // Instance-hours, instances and hourly rate of each kind, the parts in
        // `shares`' order.
        let mut kinds: Vec<(UsageClass, Decimal, u64, Decimal)> = shares
            .iter()
            .map(|(c, _)| (c.clone(), Decimal::ZERO, 0, Decimal::ZERO))
            .collect();
        for (parts, hours) in stood {
            for part in parts.iter() {
                let of = part_class(own, part);
                if let (Some(kind), VariantBilling::Instance { instance_count, .. }) =
                    (kinds.iter_mut().find(|(c, ..)| *c == of), &part.billing)
                {
                    kind.1 += Decimal::from(*instance_count) * hours;
                    kind.2 += u64::from(*instance_count);
                    kind.3 += part.usd_per_hour;
                }
            }
        }
        let all: Decimal = kinds.iter().map(|(_, hours, ..)| hours).sum();
        let by_time = kinds
            .iter()
            .map(|(c, hours, ..)| {
                let share = match all.is_zero() {
                    true => Decimal::ZERO,
                    false => (hours / all).round_dp(20),
                };
                (c.clone(), share)
            })
            .collect();
        let rates = kinds
            .into_iter()
            .map(|(c, _, n, usd)| {
                let rate = (n > 0).then(|| (usd / Decimal::from(n)).normalize());
                (c, rate)
            })
            .collect();
        (by_time, rates)
    }
}

/// The kind of instance time a standing part billed alongside a variant of
/// `class` is billed under (asynchronous when the variant's is).
fn part_class(class: &UsageClass, part: &crate::billing::StandingPart) -> UsageClass {
    match &part.billing {
        VariantBilling::Instance { instance_type, .. } => UsageClass::instance_time(
            instance_type,
            matches!(class, UsageClass::AsyncInference { .. }),
        ),
        VariantBilling::Serverless { memory_mb, .. } => UsageClass::ProvisionedConcurrency {
            memory_gb: memory_mb / 1024,
        },
    }
}

/// How long after its end a day's usage may still be reaching Cost Explorer
/// (AWS: its data is refreshed at least once every 24 hours): an `Estimated` day
/// that ended longer ago is judged.
pub const SETTLING_TIME: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// On-demand rates of a reconciliation's kinds of charge.
#[derive(Debug, Default)]
struct Rates {
    /// The rate the receipts used, per kind of charge and day: AWS changes a
    /// price a few times a year, at 00:00 UTC, and each day is valued at its own,
    /// its freshest price's (see [`RateFrom`]).
    metered: BTreeMap<(UsageClass, NaiveDate), Decimal>,
    /// The price source's, for kinds of charge no receipt priced.
    listed: HashMap<UsageClass, Option<Decimal>>,
}

impl Rates {
    /// Whether some receipt priced `class`.
    fn has_metered(&self, class: &UsageClass) -> bool {
        self.metered
            .range((class.clone(), NaiveDate::MIN)..=(class.clone(), NaiveDate::MAX))
            .next()
            .is_some()
    }

    /// `class`'s rate on `day`: the receipts' of that day; on a day without a
    /// priced receipt (a quiet day's instance time), that of the nearest day before
    /// with one, else of the nearest after; else the price source's.
    fn on(&self, class: &UsageClass, day: NaiveDate) -> Option<Decimal> {
        let before = self
            .metered
            .range((class.clone(), NaiveDate::MIN)..=(class.clone(), day))
            .next_back();
        let after = || {
            self.metered
                .range((class.clone(), day)..=(class.clone(), NaiveDate::MAX))
                .next()
        };
        match before.or_else(after) {
            Some((_, rate)) => Some(*rate),
            None => self.listed.get(class).copied().flatten(),
        }
    }
}

/// Refuses what Cost Explorer cannot answer.
fn check_dates(since: NaiveDate, until: NaiveDate, today: NaiveDate) -> Result<(), AccountError> {
    if since >= until {
        return Err(AccountError::DateRange(format!(
            "--since {since} is not before --until {until} (--until is the day after the last, as \
             in Cost Explorer)"
        )));
    }
    let tomorrow = today.succ_opt().unwrap_or(today);
    if until > tomorrow {
        return Err(AccountError::DateRange(format!(
            "--until {until} is in the future: Cost Explorer has costs up to today ({today}), so \
             --until can be at most {tomorrow}"
        )));
    }
    let earliest = ReconcileOptions::earliest_since(today);
    if since < earliest {
        return Err(AccountError::DateRange(format!(
            "--since {since} is beyond what Cost Explorer keeps: daily costs go back \
             {KEPT_MONTHS} months, to {earliest}"
        )));
    }
    Ok(())
}

/// The parts of one kind of charge's difference, each worked out exactly: one
/// that needs more digits than a `Decimal` holds is refused, `of` naming it
/// (`of("discount")`), as a sum is.
fn explain(
    class: &UsageClass,
    cell: &Cell,
    rate: Option<Decimal>,
    of: impl Fn(&str) -> String,
) -> Result<Parts, AccountError> {
    let billed = cell.billed;
    let m = &cell.metered;
    let mut parts = Parts::default();
    if let UsageClass::Other { .. } = class {
        parts.other_usd = subtract_exactly(billed, m.cost_usd, || of("other charges"))?;
        return Ok(parts);
    }
    if class.is_standing() {
        let standing = subtract_exactly(billed, m.cost_usd, || of("standing charges"))?;
        if standing < Decimal::ZERO {
            parts.unexplained_usd = standing;
        } else {
            parts.standing_usd = standing;
        }
        return Ok(parts);
    }
    if class.is_instance_time() {
        let idle = subtract_exactly(m.accrued_usd, m.allocated_usd, || of("idle instance time"))?;
        parts.idle_instance_usd = idle.max(Decimal::ZERO);
    }
    let seen = add_exactly(m.cost_usd, parts.idle_instance_usd, || {
        of("metered cost and idle instance time")
    })?;
    // Quantities and amounts are within 10¹² a row, rates within what a price
    // source accepts: exact but for a hostile mix of both, then refused.
    let on_demand = match rate {
        Some(rate) => Some(
            crate::util::exact_product(cell.billed_quantity, rate).ok_or_else(|| {
                AccountError::Invalid(beyond_a_decimal(
                    &of("billed quantity at the on-demand rate"),
                    "worked out",
                ))
            })?,
        ),
        None => None,
    };
    let Some(on_demand) = on_demand else {
        // Without an on-demand rate, usage outside the meter and a discount
        // cannot be told apart: the rest is unexplained (a note names a missing
        // rate).
        parts.unexplained_usd = subtract_exactly(billed, seen, || of("unexplained amount"))?;
        return Ok(parts);
    };
    parts.discount_usd = subtract_exactly(billed, on_demand, || of("discount"))?;
    let outside = subtract_exactly(on_demand, seen, || of("usage outside sagemeter"))?;
    if outside < Decimal::ZERO {
        parts.unexplained_usd = outside;
    } else {
        parts.outside_usd = outside;
    }
    Ok(parts)
}

/// `a + b` of figures of the receipts or of Cost Explorer, or worked out from
/// them (a row's, a day's, a part), exactly ([`crate::util::exact_sum`]), or an
/// error saying `what` (made only then) would need more digits than a `Decimal`
/// holds.
fn add_exactly(
    a: Decimal,
    b: Decimal,
    what: impl FnOnce() -> String,
) -> Result<Decimal, AccountError> {
    crate::util::exact_sum(a, b)
        .ok_or_else(|| AccountError::Invalid(beyond_a_decimal(&what(), "added up")))
}

/// `a − b`, exactly (negating a `Decimal` is exact), or an error saying `what`
/// would need more digits than a `Decimal` holds, as [`add_exactly`].
fn subtract_exactly(
    a: Decimal,
    b: Decimal,
    what: impl FnOnce() -> String,
) -> Result<Decimal, AccountError> {
    crate::util::exact_sum(a, -b)
        .ok_or_else(|| AccountError::Invalid(beyond_a_decimal(&what(), "worked out")))
}

/// Why `what`, of the receipts' or Cost Explorer's figures, is refused: `how`
/// ("added up") exactly, it needs more digits than a `Decimal` holds.
fn beyond_a_decimal(what: &str, how: &str) -> String {
    format!(
        "{what}, {how} exactly, needs more digits than a Decimal holds: its amounts carry \
         more places than their sum can keep (Cost Explorer's, or a receipt's no meter wrote: \
         a corrupt or hand-edited ledger?)"
    )
}

fn empty_day(day: NaiveDate, estimated: bool) -> DayVerdict {
    DayVerdict {
        day,
        billed_usd: Decimal::ZERO,
        metered_usd: Decimal::ZERO,
        difference_usd: Decimal::ZERO,
        parts: Parts::default(),
        unexplained_gross_usd: Decimal::ZERO,
        estimated,
        verdict: Verdict::Agrees,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// A day's rate ranks by how fresh its price is first, then by when it was
    /// looked up: a snapshot's `as_of` breaks ties among prices never fetched,
    /// and is never weighed against a live term's `effectiveDate`.
    #[test]
    fn a_days_rate_ranks_by_when_its_price_was_fetched_then_looked_up() {
        let on = day("2026-11-29");
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let receipt = |when: &str| -> Cost {
            serde_json::from_value(serde_json::json!({
                "call_id": "c", "at": when, "endpoint": "rt", "variant": "AllTraffic",
                "allocation": "processor_sharing",
                "usage": {"operation": "InvokeEndpoint", "latency_us": 0, "bytes_in": 0,
                          "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
                "lines": [], "cost_usd": "0", "currency": "USD",
                "running_client_usd": "0", "running_endpoint_usd": "0"
            }))
            .unwrap()
        };
        let snapshot = |as_of: &str| {
            Provenance::new(PriceOrigin::Snapshot).with_effective_date(as_of.to_owned())
        };
        let live = |effective: &str, fetched: &str| {
            Provenance::new(PriceOrigin::Live)
                .with_effective_date(effective.to_owned())
                .with_fetched_at(at(fetched))
        };
        let rank = |when: &str, provenance: Option<&Provenance>| {
            RateFrom::of(&receipt(when), on, provenance)
        };
        // Fetched at 06:00, looked up at 12:00, outranks the snapshot at 23:59.
        let fetched = live("2026-11-29T00:00:00Z", "2026-11-29T06:00:00Z");
        assert!(
            rank("2026-11-29T12:00:00Z", Some(&fetched))
                > rank("2026-11-29T23:59:00Z", Some(&snapshot("2026-12-01")))
        );
        // Of two fetches, the later, whatever their terms' effective dates and
        // their look-ups' times.
        let earlier = live("2026-12-01T00:00:00Z", "2026-11-28T06:00:00Z");
        assert!(
            rank("2026-11-29T01:00:00Z", Some(&fetched))
                > rank("2026-11-29T23:00:00Z", Some(&earlier))
        );
        // Never fetched: a later snapshot's over an older one's, then an
        // override's (or a provenance not told) last.
        assert!(
            rank("2026-11-29T01:00:00Z", Some(&snapshot("2026-09-09")))
                > rank("2026-11-29T23:00:00Z", Some(&snapshot("2026-05-20")))
        );
        let override_ = Provenance::new(PriceOrigin::Override);
        assert!(
            rank("2026-11-29T01:00:00Z", Some(&snapshot("2026-05-20")))
                > rank("2026-11-29T23:00:00Z", Some(&override_))
        );
        // A snapshot row dated by its month only (the bundled snapshot has
        // `2023-12` rows) is a snapshot's too, of the month's first day.
        assert!(
            rank("2026-11-29T01:00:00Z", Some(&snapshot("2023-12")))
                > rank("2026-11-29T23:00:00Z", Some(&override_))
        );
        assert!(
            rank("2026-11-29T23:00:00Z", Some(&snapshot("2023-12")))
                < rank("2026-11-29T01:00:00Z", Some(&snapshot("2023-12-02")))
        );
        // As fresh: the later look-up; as late too, the higher rate.
        assert!(
            rank("2026-11-29T23:00:00Z", Some(&override_)) > rank("2026-11-29T01:00:00Z", None)
        );
        let same = rank("2026-11-29T12:00:00Z", Some(&fetched));
        assert!(Some((same, d("1.408"))) > Some((same, d("1.2"))));
        // Looked up on another day: below any of the day's own.
        assert!(rank("2026-11-30T07:00:00Z", Some(&fetched)) < rank("2026-11-29T00:00:00Z", None));
    }

    #[test]
    fn dates_beyond_cost_explorer_are_refused_with_the_limit() {
        let today = day("2026-12-01");
        assert!(check_dates(day("2026-11-01"), day("2026-12-02"), today).is_ok());
        let err = check_dates(day("2025-10-31"), day("2025-11-02"), today).unwrap_err();
        assert!(err.to_string().contains("to 2025-11-01"), "{err}");
        let err = check_dates(day("2026-11-01"), day("2026-12-03"), today).unwrap_err();
        assert!(err.to_string().contains("at most 2026-12-02"), "{err}");
        assert!(check_dates(day("2026-11-02"), day("2026-11-02"), today).is_err());
    }

    #[test]
    fn the_parts_add_up_to_the_bill() {
        // 2 instances × 24 h × $0.23 billed (AmortizedCost) at a 28 % savings-plan
        // discount; the meter allocated $0.50 to calls and accrued $2.00 while calling.
        let cell = Cell {
            billed: d("7.9488"),
            billed_quantity: d("48"),
            unit: Some("Hrs".into()),
            metered: MeteredCell {
                cost_usd: d("0.5"),
                quantity: d("2.17"),
                accrued_usd: d("2"),
                allocated_usd: d("0.5"),
                ..MeteredCell::default()
            },
        };
        let class = UsageClass::Hosting {
            instance_type: "ml.m5.xlarge".into(),
        };
        let parts = explain(&class, &cell, Some(d("0.23")), |w| w.to_owned()).unwrap();
        // on demand 48 × 0.23 = 11.04; discount 7.9488 − 11.04 = −3.0912;
        // idle 2 − 0.5 = 1.5; outside 11.04 − (0.5 + 1.5) = 9.04.
        assert_eq!(parts.idle_instance_usd, d("1.5"));
        assert_eq!(parts.discount_usd, d("-3.0912"));
        assert_eq!(parts.outside_usd, d("9.04"));
        assert_eq!(parts.unexplained_usd, Decimal::ZERO);
        let sum = cell.metered.cost_usd
            + parts.idle_instance_usd
            + parts.outside_usd
            + parts.discount_usd
            + parts.standing_usd
            + parts.other_usd
            + parts.unexplained_usd;
        assert_eq!(sum, cell.billed);

        // The meter counting more data than the bill has is unexplained.
        let data = Cell {
            billed: d("0.016"),
            billed_quantity: d("1"),
            unit: Some("GB".into()),
            metered: MeteredCell {
                cost_usd: d("0.032"),
                quantity: d("2"),
                ..MeteredCell::default()
            },
        };
        let parts = explain(&UsageClass::DataIn, &data, Some(d("0.016")), |w| {
            w.to_owned()
        })
        .unwrap();
        assert_eq!(parts.unexplained_usd, d("-0.016"));
        assert_eq!(parts.outside_usd, Decimal::ZERO);
    }

    /// A receipt of one call on endpoint `rt` (one ml.m5.xlarge at 0.23 $/h) whose
    /// compute line costs `cost`, with its process's running accrual.
    fn receipt(id: &str, at: &str, cost: &str, accrued: &str, allocated: &str) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": "0.001", "unit": "instance_hours",
                       "price": {"status": "priced", "usd_per_unit": "0.23", "cost_usd": cost,
                                 "provenance": {"source": "live", "sku": null,
                                                "effective_date": null, "fetched_at": null,
                                                "note": null}}}],
            "cost_usd": cost, "currency": "USD", "region": "us-east-1",
            "running_client_usd": "1", "running_endpoint_usd": "1",
            "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}
        }))
        .unwrap()
    }

    /// Writes `receipts` as a JSON Lines ledger at `path` (its directory made).
    fn write_ledger(path: &Path, receipts: &[Cost]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::new();
        for cost in receipts {
            text.push_str(&serde_json::to_string(cost).unwrap());
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    /// The instance time accrued, and of it allocated, over every day.
    fn accrual(m: &Metered) -> (Decimal, Decimal) {
        let accrued = m.accruals.by_day().unwrap().values().sum();
        let allocated = m.cells.values().map(|c| c.allocated_usd).sum::<Decimal>()
            + m.accruals
                .fleet_allocated_by_day()
                .unwrap()
                .values()
                .sum::<Decimal>();
        (accrued, allocated)
    }

    /// The instance time accrued on `day`.
    fn accrued_on(m: &Metered, on: &str) -> Decimal {
        let on = day(on);
        m.accruals
            .by_day()
            .unwrap()
            .iter()
            .filter(|((d, _, _), _)| *d == on)
            .map(|(_, usd)| *usd)
            .sum()
    }

    /// Receipts of a process metering `rt` (one ml.m5.xlarge, $0.23/h) whose calls
    /// end on the hour from `from` (RFC 3339, on the hour) for `hours` hours: its
    /// accrual runs from `start_usd` up by 0.23 an hour, its allocation up by
    /// `allocated_per_hour`.
    fn hourly(from: &str, hours: i64, start_usd: &str, allocated_per_hour: &str) -> Vec<Cost> {
        let from: DateTime<Utc> = from.parse().unwrap();
        (0..=hours)
            .map(|h| {
                // The call took 1 ms and ended on the hour.
                let at = from + chrono::Duration::hours(h) - chrono::Duration::milliseconds(1);
                let accrued = d(start_usd) + d("0.23") * Decimal::from(h);
                let allocated = d(allocated_per_hour) * Decimal::from(h);
                receipt(
                    &format!("{h}"),
                    &at.to_rfc3339(),
                    "0.0000000639",
                    &accrued.to_string(),
                    &allocated.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_run_split_over_rolled_files_is_accrued_once() {
        let dir = tempfile::tempdir().unwrap();
        // One process, one instance at 0.23 $/h. Its receipt at 10:00 (hourly file
        // T10) is where counting starts; at 11:00 (file T11) it has accrued another
        // hour, 0.23, and allocated 0.01 of it; at 12:00 another 0.23 and 0.01.
        // Running figures: 0.46 accrued and 0.02 allocated, not the sums of the
        // figures (0.001 + 0.231 + 0.461).
        let receipts = hourly("2026-12-01T10:00:00Z", 2, "0.001", "0.01");
        let rolled = dir.path().join("receipts");
        write_ledger(
            &rolled.join("sagemeter-2026-12-01T09.jsonl"),
            &receipts[..1],
        );
        write_ledger(
            &rolled.join("sagemeter-2026-12-01T10.jsonl"),
            &receipts[1..2],
        );
        write_ledger(
            &rolled.join("sagemeter-2026-12-01T11.jsonl"),
            &receipts[2..],
        );
        let mut m = Metered::new("us-east-1");
        for file in crate::ledger::ledger_files(&rolled).unwrap() {
            m.read_ledger(file).unwrap();
        }
        assert_eq!(m.receipts(), 3);
        assert_eq!(
            m.ledgers_read(),
            1,
            "a rolling ledger's three files are one ledger"
        );
        assert_eq!(accrual(&m), (d("0.46"), d("0.02")));

        // The same receipts as three ledgers (three processes, one call each): each
        // ledger's one receipt only starts its count.
        let mut m = Metered::new("us-east-1");
        for (i, receipt) in receipts.iter().enumerate() {
            let path = dir.path().join(format!("p{i}.jsonl"));
            write_ledger(&path, std::slice::from_ref(receipt));
            m.read_ledger(&path).unwrap();
        }
        assert_eq!(accrual(&m), (Decimal::ZERO, Decimal::ZERO));
        assert_eq!(m.ledgers_read(), 3);

        // A copy of a ledger read with it would count its receipts twice: refused,
        // naming both files.
        let copy = dir.path().join("p0-backup.jsonl");
        std::fs::copy(dir.path().join("p0.jsonl"), &copy).unwrap();
        let err = m.read_ledger(&copy).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "{} and {} begin with the same receipt",
                dir.path().join("p0.jsonl").display(),
                copy.display()
            )),
            "{err}"
        );
        assert_eq!(m.receipts(), 3, "nothing of the copy counted");
        assert_eq!(m.ledgers_read(), 3, "nor the copy as a ledger");
    }

    /// Two processes of a fleet, each with its own ledger: every receipt carries the
    /// fleet's accrual of the day (both processes' calls), so each ledger repeats
    /// the same growing figures. The day's instance time and allocation are the
    /// fleet's, once: not each ledger's increments added up.
    #[test]
    fn a_fleets_ledgers_count_its_day_accrual_and_allocation_once() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = |id: &str, at: &str, accrued: &str, allocated: &str| {
            let mut cost = receipt(id, at, "0.0000000639", accrued, allocated);
            cost.running_fleet_usd = Some(d("1"));
            cost
        };
        // One ml.m5.xlarge at $0.23/h; the fleet's first call at 00:00. By 12:00
        // the day has accrued 12 h × $0.23 = $2.76, of which the processes'
        // calls were allocated $0.50; by 24:00 (the last call, at 23:59:59)
        // $5.52, of which $1.00. A's and B's receipts carry what the table held
        // when they were made.
        let a = [
            fleet("a1", "2026-12-02T00:00:00Z", "0", "0"),
            fleet("a2", "2026-12-02T12:00:00Z", "2.76", "0.50"),
            fleet("a3", "2026-12-02T23:59:59Z", "5.52", "1.00"),
        ];
        let b = [
            fleet("b1", "2026-12-02T06:00:00Z", "1.38", "0.25"),
            fleet("b2", "2026-12-02T18:00:00Z", "4.14", "0.75"),
        ];
        let mut m = Metered::new("us-east-1");
        for (name, receipts) in [("a.jsonl", &a[..]), ("b.jsonl", &b[..])] {
            let path = dir.path().join(name);
            write_ledger(&path, receipts);
            m.read_ledger(&path).unwrap();
        }
        // The day: $5.52 accrued and $1.00 allocated, as the fleet's last figures
        // say (not A's 5.52 and 1.00 plus B's 2.76 and 0.50 of increments).
        assert_eq!(accrual(&m), (d("5.52"), d("1.00")));
        assert_eq!(accrued_on(&m, "2026-12-02"), d("5.52"));
    }

    /// A fleet's day figure is shared out by the parts of the receipt that
    /// carried it: parts of one usage type are one share, and the highest figures
    /// of parts that changed during the day are not added up.
    #[test]
    fn a_fleets_day_figure_is_shared_out_by_the_parts_that_carried_it() {
        use crate::billing::StandingPart;
        use crate::endpoint::VariantBilling;
        let m5 = |n: u32, usd: &str| {
            StandingPart::new(
                VariantBilling::Instance {
                    instance_type: "ml.m5.xlarge".into(),
                    instance_count: n,
                },
                d(usd),
            )
        };
        let g5 = StandingPart::new(
            VariantBilling::Instance {
                instance_type: "ml.g5.12xlarge".into(),
                instance_count: 1,
            },
            d("0.92"),
        );
        let fleet = |id: &str, at: &str, accrued: &str, parts: Vec<StandingPart>| {
            let mut cost = receipt(id, at, "0.0000000639", accrued, "0");
            cost.running_fleet_usd = Some(d("1"));
            cost.accrual.as_mut().unwrap().standing_parts = parts.into();
            cost
        };
        let by_class = |m: &Metered| -> Vec<(String, Decimal)> {
            m.accruals
                .by_day()
                .unwrap()
                .into_iter()
                .map(|((_, _, class), usd)| (class.to_string(), usd))
                .collect()
        };
        // A new fleet of the same type (1 + 1 × $0.23/h) all day: $11.04, all of
        // it Host:ml.m5.xlarge, not the higher of its two halves.
        let mut m = Metered::new("us-east-1");
        m.add(
            "a",
            &fleet(
                "a1",
                "2026-12-02T23:59:59Z",
                "11.04",
                vec![m5(1, "0.23"), m5(1, "0.23")],
            ),
        )
        .unwrap();
        assert_eq!(by_class(&m), [("Host:ml.m5.xlarge".to_owned(), d("11.04"))]);
        // A shadow ($0.92/h beside $0.23/h) until noon, then none: the day's last
        // figure ($16.56) is the day's, each step shared as its receipt's parts
        // were, not $16.56 plus the shadow's noon share on top.
        let mut m = Metered::new("us-east-1");
        m.add(
            "a",
            &fleet(
                "a1",
                "2026-12-02T12:00:00Z",
                "13.80",
                vec![m5(1, "0.23"), g5],
            ),
        )
        .unwrap();
        m.add(
            "a",
            &fleet("a2", "2026-12-02T23:59:59Z", "16.56", Vec::new()),
        )
        .unwrap();
        // Until noon 13.80 shared 0.23 : 0.92 (2.76 and 11.04), then 2.76 more of
        // m5 alone: 5.52 and 11.04, as AWS bills the two types.
        assert_eq!(
            by_class(&m),
            [
                ("Host:ml.g5.12xlarge".to_owned(), d("11.04")),
                ("Host:ml.m5.xlarge".to_owned(), d("5.52"))
            ]
        );
    }

    #[test]
    fn rolled_files_named_in_glob_order_are_read_oldest_first() {
        // One instance at $0.23/h. File T10 holds the receipts of 10:00 (where the
        // count starts, at 0) and 10:30 (0.115 accrued); T10.1, after a size roll,
        // the one of 11:00 (0.23). 10:00 to 11:00 is 1 h × $0.23 = $0.23 accrued.
        let dir = tempfile::tempdir().unwrap();
        let rolled = dir.path().join("receipts");
        let t10 = rolled.join("sagemeter-2026-12-01T10.jsonl");
        let t10_1 = rolled.join("sagemeter-2026-12-01T10.1.jsonl");
        write_ledger(
            &t10,
            &[
                receipt("a", "2026-12-01T10:00:00Z", "0.00023", "0", "0"),
                receipt("b", "2026-12-01T10:30:00Z", "0.00023", "0.115", "0"),
            ],
        );
        write_ledger(
            &t10_1,
            &[receipt("c", "2026-12-01T11:00:00Z", "0.00023", "0.23", "0")],
        );
        // A glob puts `T10.1.jsonl` before `T10.jsonl` ('1' < 'j').
        let mut m = Metered::new("us-east-1");
        m.read_ledgers([&t10_1, &t10]).unwrap();
        assert_eq!(m.receipts(), 3);
        assert_eq!(accrual(&m).0, d("0.23"));
        // The same as reading the directory.
        let mut by_dir = Metered::new("us-east-1");
        by_dir
            .read_ledgers(crate::ledger::ledger_files(&rolled).unwrap())
            .unwrap();
        assert_eq!(accrual(&by_dir).0, d("0.23"));

        // `.10` after `.2`; each rolling ledger where its first file is named,
        // other files where they are.
        let name = |n: &str| rolled.join(format!("sagemeter-2026-12-01T{n}.jsonl"));
        let other = dir.path().join("calls.jsonl");
        let given = [
            name("10.10"),
            name("10.1"),
            other.clone(),
            name("10.2"),
            name("10"),
            name("09"),
        ];
        let expected = [
            name("09"),
            name("10"),
            name("10.1"),
            name("10.2"),
            name("10.10"),
            other,
        ];
        assert_eq!(oldest_first(given), expected);
    }

    /// One rolling ledger named by two spellings of its directory (and through a
    /// symbolic link to it) is one run: the same accrual as naming it once.
    #[test]
    fn a_rolling_ledger_named_two_ways_is_one_run() {
        // One process, one ml.m5.xlarge at $0.23/h: its receipt at 10:00 (file T10,
        // running figure 0.001) is where counting starts, its receipt at 11:00
        // (file T11, 0.231) adds 1 h × $0.23/h = $0.23. Named once: $0.23.
        let dir = tempfile::tempdir().unwrap();
        let receipts = hourly("2026-12-01T10:00:00Z", 1, "0.001", "0");
        let rolled = dir.path().join("receipts");
        let file = |dir: &Path, hour: &str| dir.join(format!("sagemeter-2026-12-01T{hour}.jsonl"));
        write_ledger(&file(&rolled, "10"), &receipts[..1]);
        write_ledger(&file(&rolled, "11"), &receipts[1..]);
        let mut once = Metered::new("us-east-1");
        once.read_ledgers(crate::ledger::ledger_files(&rolled).unwrap())
            .unwrap();
        assert_eq!(accrual(&once).0, d("0.23"));

        // The same directory spelled `receipts/../receipts` too, and through a link.
        let spelled = rolled.join("..").join("receipts");
        #[cfg(unix)]
        let linked = {
            let link = dir.path().join("latest");
            std::os::unix::fs::symlink(&rolled, &link).unwrap();
            link
        };
        #[cfg(not(unix))]
        let linked = spelled.clone();
        for other in [&spelled, &linked] {
            // Read file by file, T10 by one spelling and T11 by the other: T11
            // continues T10's run, $0.23 (not two runs whose counts each only
            // start, $0).
            let mut m = Metered::new("us-east-1");
            m.read_ledger(file(&rolled, "10")).unwrap();
            m.read_ledger(file(other, "11")).unwrap();
            assert_eq!(m.receipts(), 2);
            assert_eq!(m.ledgers_read(), 1, "{}", other.display());
            assert_eq!(accrual(&m).0, d("0.23"), "{}", other.display());

            // T11 named first by the other spelling, then the directory: read
            // oldest first as one ledger, T11 once, $0.23.
            let mut m = Metered::new("us-east-1");
            let mut named = vec![file(other, "11")];
            named.extend(crate::ledger::ledger_files(&rolled).unwrap());
            m.read_ledgers(named).unwrap();
            assert_eq!(m.receipts(), 2);
            assert_eq!(m.ledgers_read(), 1, "{}", other.display());
            assert_eq!(accrual(&m).0, d("0.23"), "{}", other.display());
        }
    }

    #[test]
    fn a_path_that_does_not_resolve_is_normalised_as_spelled() {
        // Below a directory that does not exist, the spelling is normalised as
        // text.
        let dir = tempfile::tempdir().unwrap();
        let spelled = dir
            .path()
            .join("missing")
            .join("..")
            .join(".")
            .join("ledger");
        assert_eq!(
            normalised(&spelled).display().to_string(),
            dir.path().join("ledger").display().to_string()
        );
        for (spelled, expected) in [
            ("./ledger/", "ledger"),
            ("ledger/./a/..", "ledger"),
            ("a/../../ledger", "../ledger"),
            ("/../ledger", "/ledger"),
            (".", "."),
        ] {
            // Compared as text: `Path`'s own equality leaves out interior `.`.
            assert_eq!(
                lexically_normalised(Path::new(spelled))
                    .display()
                    .to_string(),
                Path::new(expected).display().to_string(),
                "{spelled}"
            );
        }
    }

    #[test]
    fn a_ledger_file_read_twice_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        write_ledger(&path, &hourly("2026-12-01T10:00:00Z", 2, "0", "0.01"));
        let mut m = Metered::new("us-east-1");
        m.read_ledger(&path).unwrap();
        m.read_ledger(dir.path().join(".").join("calls.jsonl"))
            .unwrap();
        // A hard link has its own canonical path, and is the same file still.
        let elsewhere = tempfile::tempdir().unwrap();
        let hard_link = elsewhere.path().join("linked.jsonl");
        std::fs::hard_link(&path, &hard_link).unwrap();
        m.read_ledger(&hard_link).unwrap();
        assert_eq!(m.receipts(), 3);
        assert_eq!(m.ledgers_read(), 1, "one file by three paths is one ledger");
        // Three calls' compute lines of 0.0000000639 each, once.
        let cost: Decimal = m.cells.values().map(|c| c.cost_usd).sum();
        assert_eq!(cost, d("0.0000001917"));
        assert_eq!(accrual(&m), (d("0.46"), d("0.02")));
    }

    #[test]
    fn a_ledger_that_begins_after_its_process_did_accrues_from_its_first_receipt() {
        // A process metering since 11-01 (one instance, $0.23/h) writes an hourly
        // rolling ledger that keeps 7 days: on 12-01 its oldest file starts at
        // 11-24T00, where the running figure is already 23 days × 24 h × 0.23 =
        // 126.96. That day's instance time is 24 × 0.23 = 5.52, not 126.96 + 5.52.
        let receipts = hourly("2026-11-24T00:00:00Z", 24, "126.96", "0.01");
        let dir = tempfile::tempdir().unwrap();
        let rolled = dir.path().join("receipts");
        for receipt in &receipts {
            // Each in its hour's file.
            let name = format!("sagemeter-{}.jsonl", receipt.at.format("%Y-%m-%dT%H"));
            write_ledger(&rolled.join(name), std::slice::from_ref(receipt));
        }
        let mut m = Metered::new("us-east-1");
        for file in crate::ledger::ledger_files(&rolled).unwrap() {
            m.read_ledger(file).unwrap();
        }
        assert_eq!(accrued_on(&m, "2026-11-24"), d("5.52"));
        // Allocated: 24 hours × 0.01.
        assert_eq!(accrual(&m).1, d("0.24"));
    }

    /// A process's first call on a variant accrues the instances' time during it:
    /// that is instance time too, and what the call was not allocated of it is
    /// idle. One ml.m5.xlarge at $0.23/h serving two calls at full speed
    /// (`max_concurrency_per_instance` 2): the first call, alone for 1 ms, accrued
    /// 0.23 × 0.001 / 3600 = 0.0000000639 (to 12 places, as receipts round) and
    /// was allocated half, 0.00000003195. An hour later the second: accrued
    /// 0.23 + 0.0000000639, allocated 2 × 0.00000003195.
    #[test]
    fn a_processs_first_call_accrues_its_own_instance_time() {
        let receipts = [
            receipt(
                "1",
                "2026-12-01T10:00:00Z",
                "0.00000003195",
                "0.0000000639",
                "0.00000003195",
            ),
            receipt(
                "2",
                "2026-12-01T11:00:00Z",
                "0.00000003195",
                "0.2300000639",
                "0.0000000639",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        write_ledger(&path, &receipts);
        let mut m = Metered::new("us-east-1");
        m.read_ledger(&path).unwrap();
        // Everything accrued and allocated since the process began: idle
        // 0.2300000639 − 0.0000000639 = 0.23 (not 0.23 − 0.00000003195, the first
        // call's idle half left out).
        assert_eq!(accrual(&m), (d("0.2300000639"), d("0.0000000639")));

        // A first receipt whose accrual holds far more than its call (calls before
        // it were unpriced, so its allocation is its own): where counting starts.
        let late = [
            receipt(
                "3",
                "2026-12-01T10:00:00Z",
                "0.00000003195",
                "126.96",
                "0.00000003195",
            ),
            receipt(
                "4",
                "2026-12-01T11:00:00Z",
                "0.00000003195",
                "127.19",
                "0.0000000639",
            ),
        ];
        let path = dir.path().join("late.jsonl");
        write_ledger(&path, &late);
        let mut m = Metered::new("us-east-1");
        m.read_ledger(&path).unwrap();
        assert_eq!(accrual(&m), (d("0.23"), d("0.00000003195")));
    }

    /// A Parquet ledger (written by `ParquetLedger`, or converted) reconciles as
    /// its JSON Lines ledger does, a rolling directory of them named in any order
    /// too; a ledger read with its own conversion is refused, as a copy is.
    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_ledgers_reconcile_as_their_json_lines_ledgers_do() {
        // One instance at 0.23 $/h from 10:00 to 13:00, 0.01 $/h allocated: 0.69
        // accrued after the first receipt, 0.03 allocated.
        let receipts = hourly("2026-12-01T10:00:00Z", 3, "0.001", "0.01");
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("calls.jsonl");
        write_ledger(&jsonl, &receipts);
        let parquet = dir.path().join("calls.parquet");
        crate::ledger::parquet::convert(&jsonl, &parquet).unwrap();
        let read = |paths: &[&Path]| {
            let mut m = Metered::new("us-east-1");
            m.read_ledgers(paths).map(|()| m)
        };
        let from_jsonl = read(&[&jsonl]).unwrap();
        let from_parquet = read(&[&parquet]).unwrap();
        assert_eq!(from_parquet.receipts(), 4);
        assert_eq!(accrual(&from_parquet), (d("0.69"), d("0.03")));
        assert_eq!(accrual(&from_parquet), accrual(&from_jsonl));
        assert_eq!(
            format!("{:?}", from_parquet.cells),
            format!("{:?}", from_jsonl.cells)
        );

        // A rolling Parquet ledger, one file an hour, named newest first: read
        // oldest first, one run.
        let rolled = dir.path().join("receipts");
        std::fs::create_dir(&rolled).unwrap();
        let mut names = Vec::new();
        for (i, receipt) in receipts.iter().enumerate() {
            let hour = dir.path().join(format!("h{i}.jsonl"));
            write_ledger(&hour, std::slice::from_ref(receipt));
            let name = rolled.join(format!(
                "sagemeter-{}.parquet",
                receipt.at.format("%Y-%m-%dT%H")
            ));
            crate::ledger::parquet::convert(&hour, &name).unwrap();
            names.push(name);
        }
        names.reverse();
        let paths: Vec<&Path> = names.iter().map(PathBuf::as_path).collect();
        assert_eq!(accrual(&read(&paths).unwrap()), (d("0.69"), d("0.03")));
        // The directory, as the CLI lists it.
        let listed = crate::ledger::any_ledger_files(&rolled).unwrap();
        assert_eq!(listed.len(), 4);
        let paths: Vec<&Path> = listed.iter().map(PathBuf::as_path).collect();
        assert_eq!(accrual(&read(&paths).unwrap()), (d("0.69"), d("0.03")));

        // A ledger and its conversion: the same receipts twice, refused.
        let err = read(&[&jsonl, &parquet]).unwrap_err();
        assert!(
            err.to_string().contains("begin with the same receipt"),
            "{err}"
        );
    }

    #[test]
    fn instance_time_is_split_at_utc_midnight() {
        // One instance at $0.23/h metered from 12-01T00:00; calls until 20:00, none
        // until 04:00 on 12-02, then calls until 12-03T00:00. The accrual reaches
        // 20 × 0.23 = 4.60 at 20:00 and 28 × 0.23 = 6.44 at 04:00: the night's
        // 8 × 0.23 = 1.84 is 4 h on each day. 12-01: 4.60 + 0.92 = 5.52; 12-02:
        // 0.92 + 20 × 0.23 = 5.52, not 4.60 then 6.44 + 4.60.
        // The calls ending at 21:00 to 03:00 (hours 21 to 27) are not made.
        let receipts: Vec<Cost> = hourly("2026-12-01T00:00:00Z", 48, "0", "0")
            .into_iter()
            .enumerate()
            .filter(|(h, _)| !(21..=27).contains(h))
            .map(|(_, r)| r)
            .collect();
        assert_eq!(receipts.len(), 49 - 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        write_ledger(&path, &receipts);
        let mut m = Metered::new("us-east-1");
        m.read_ledger(&path).unwrap();
        assert_eq!(accrued_on(&m, "2026-12-01"), d("5.52"));
        assert_eq!(accrued_on(&m, "2026-12-02"), d("5.52"));
        assert_eq!(accrued_on(&m, "2026-12-03"), Decimal::ZERO);
    }

    #[test]
    fn replicas_metering_the_same_instances_count_their_time_once() {
        // Replica A meters endpoint `rt` (one ml.m5.xlarge, $0.23/h) all of 12-01,
        // allocating 0.01 an hour; replica B from 12:00 on 12-01 to 12:00 on 12-02,
        // allocating 0.02 an hour, each with its own ledger. Both accruals count the
        // one instance: 12-01 ran 24 h = 5.52 (A's 5.52 + B's 2.76 = 8.28 counted it
        // twice over 12 h); 12-02 has B alone, 12 h = 2.76.
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        write_ledger(&a, &hourly("2026-12-01T00:00:00Z", 24, "0.001", "0.01"));
        write_ledger(&b, &hourly("2026-12-01T12:00:00Z", 24, "0.002", "0.02"));
        let mut m = Metered::new("us-east-1");
        m.read_ledger(&a).unwrap();
        m.read_ledger(&b).unwrap();
        assert_eq!(accrued_on(&m, "2026-12-01"), d("5.52"));
        assert_eq!(accrued_on(&m, "2026-12-02"), d("2.76"));
        // What the calls were allocated adds up: 24 × 0.01 + 24 × 0.02 = 0.72.
        assert_eq!(accrual(&m).1, d("0.72"));
    }

    #[test]
    fn outlandish_receipts_are_a_ledger_error_and_add_nothing() {
        assert_eq!(MAX_RECEIPT_FIGURE, Decimal::from(1_000_000_000_000u64));
        let max = Decimal::MAX.to_string(); // 79228162514264337593543950335
        // Two good receipts: the first starts the accrual's count, the second
        // adds 0.23 accrued and 0.01 allocated.
        let good = [
            receipt("a", "2026-12-01T09:59:00Z", "0.00023", "0.23", "0.01"),
            receipt("a2", "2026-12-01T10:59:00Z", "0.00023", "0.46", "0.02"),
        ];
        let hostile = [
            // Two of these made `cell.cost_usd += cost` overflow (a panic).
            receipt("b", "2026-12-01T11:00:00Z", &max, "0.23", "0.01"),
            // Running figures no meter writes, counted as they were.
            receipt(
                "c",
                "2026-12-01T11:00:00Z",
                "0.00023",
                &format!("-{max}"),
                "0",
            ),
            receipt("d", "2026-12-01T11:00:00Z", "0.00023", "0.23", &max),
        ];
        let dir = tempfile::tempdir().unwrap();
        for bad in hostile {
            let path = dir.path().join(format!("{}.jsonl", bad.call_id));
            let receipts = [good[0].clone(), good[1].clone(), bad.clone(), bad.clone()];
            write_ledger(&path, &receipts);
            let mut m = Metered::new("us-east-1");
            let err = m.read_ledger(&path).unwrap_err();
            match &err {
                AccountError::Ledger { file, reason } => {
                    assert_eq!(*file, path.display().to_string());
                    assert!(
                        reason.contains(&format!("receipt {}", bad.call_id)),
                        "{err}"
                    );
                    assert!(reason.contains("beyond"), "{err}");
                }
                other => panic!("not a ledger error: {other:?}"),
            }
            // Only the good receipts count: 2 × 0.00023, and 0.23 accrued.
            assert_eq!(m.receipts(), 2);
            let cost: Decimal = m.cells.values().map(|c| c.cost_usd).sum();
            assert_eq!(cost, d("0.00046"));
            assert_eq!(accrual(&m), (d("0.23"), d("0.01")));
        }
    }

    /// Two compute lines of one day and endpoint, 10¹² USD (the most a receipt
    /// carries) and 10⁻¹⁷ USD: the exact sum, 1,000,000,000,000.00000000000000001,
    /// has 13 + 17 = 30 digits, more than a `Decimal` holds (10²⁹ + 1 > 2⁹⁶ − 1 ≈
    /// 7.9 × 10²⁸, at 17 places): the second receipt is refused, not summed to
    /// 10¹² at 16 places, 10⁻¹⁷ short.
    #[test]
    fn a_metered_sum_that_would_be_rounded_is_refused() {
        let first = receipt("a", "2026-12-01T09:59:00Z", "1000000000000", "0.23", "0.01");
        let second = receipt(
            "b",
            "2026-12-01T10:59:00Z",
            "0.00000000000000001",
            "0.46",
            "0.02",
        );
        let mut m = Metered::new("us-east-1");
        m.add("l.jsonl", &first).unwrap();
        let err = m.add("l.jsonl", &second).unwrap_err();
        match &err {
            AccountError::Ledger { reason, .. } => assert!(
                reason.contains(
                    "receipt b: the metered cost of rt, added up exactly, needs more digits \
                     than a Decimal holds"
                ),
                "{err}"
            ),
            other => panic!("not a ledger error: {other:?}"),
        }
        // Nothing of the refused receipt counts.
        assert_eq!(m.receipts(), 1);
        let cost: Decimal = m.cells.values().map(|c| c.cost_usd).sum();
        assert_eq!(cost, Decimal::from(1_000_000_000_000u64));
    }

    /// An increment is split by day exactly, or refused naming it; never split
    /// into days that add up to less than it.
    ///
    /// 1.2 × 10¹¹ USD accrued from 2026-12-01 00:00:00.000001 to 2026-12-04 00:00
    /// (259,199,999,999 µs): 12-01 gets 1.2 × 10¹¹ × 86,399,999,999 ÷
    /// 259,199,999,999 = 39,999,999,999.691358024690167276… and 12-02 1.2 × 10¹¹ ×
    /// 86,400,000,000 ÷ 259,199,999,999 = 40,000,000,000.154320987654916361…, each
    /// cut at 18 places (29 digits, a mantissa below 2⁹⁶ ≈ 7.92 × 10²⁸). Their sum,
    /// 79,999,999,999.845679012345083637, needs a mantissa of 7.99 × 10²⁸, beyond
    /// 2⁹⁶: a `Decimal` rounds it to 17 places (…08364), and 12-03, the rest, came
    /// out 3 × 10⁻¹⁸ short of 40,000,000,000.154320987654916363. Refused.
    ///
    /// Half of it, 6 × 10¹⁰ USD over the same span, fits: 12-01 6 × 10¹⁰ ×
    /// 86,399,999,999 ÷ 259,199,999,999 = 19,999,999,999.845679012345083638(16…),
    /// 12-02 6 × 10¹⁰ × 86,400,000,000 ÷ 259,199,999,999 =
    /// 20,000,000,000.077160493827458180(91…), together
    /// 39,999,999,999.922839506172541818, and 12-03 the rest,
    /// 60,000,000,000 − 39,999,999,999.922839506172541818 =
    /// 20,000,000,000.077160493827458182: the three add up to 6 × 10¹⁰.
    #[test]
    fn an_increment_whose_days_would_be_rounded_is_refused_naming_it() {
        // Each call lasts 1,000 µs: the first ends 2026-12-01 00:00:00.000001, the
        // second 2026-12-04 00:00. The first starts the count (its allocation is not
        // its own compute: not its process's first call).
        let first = receipt("a", "2026-11-30T23:59:59.999001Z", "0.00023", "1", "0.01");
        let second =
            |accrued: &str| receipt("b", "2026-12-03T23:59:59.999Z", "0.00023", accrued, "0.02");
        let mut m = Metered::new("us-east-1");
        m.add("l.jsonl", &first).unwrap();
        let err = m.add("l.jsonl", &second("120000000001")).unwrap_err();
        match &err {
            AccountError::Ledger { reason, .. } => assert!(
                reason.contains(
                    "receipt b: the 120000000000 USD that rt accrued from \
                     2026-12-01T00:00:00.000001+00:00 to 2026-12-04T00:00:00+00:00, split by \
                     UTC day and kind of instance time, added up exactly, needs more digits \
                     than a Decimal holds"
                ),
                "{err}"
            ),
            other => panic!("not a ledger error: {other:?}"),
        }
        // Nothing of the refused receipt counts.
        assert_eq!(m.receipts(), 1);
        assert_eq!(accrual(&m), (Decimal::ZERO, Decimal::ZERO));

        m.add("l.jsonl", &second("60000000001")).unwrap();
        let days = [
            accrued_on(&m, "2026-12-01"),
            accrued_on(&m, "2026-12-02"),
            accrued_on(&m, "2026-12-03"),
        ];
        assert_eq!(
            days,
            [
                d("19999999999.845679012345083638"),
                d("20000000000.077160493827458180"),
                d("20000000000.077160493827458182"),
            ]
        );
        assert_eq!(accrual(&m).0, d("60000000000"));
    }

    #[test]
    fn receipts_whose_lines_are_all_unpriced_still_give_the_ledgers_days() {
        // A ledger of unpriced calls (no rate anywhere) holds receipts: the days
        // to compare are theirs, not "no receipts".
        let mut cost = receipt("a", "2026-11-29T10:00:00Z", "0", "0", "0");
        cost.lines[0].price = LinePrice::Unpriced {
            reason: "no price".into(),
        };
        cost.accrual = None;
        let mut m = Metered::new("us-east-1");
        m.add("l", &cost).unwrap();
        let mut later = cost.clone();
        later.call_id = "b".into();
        later.at = "2026-12-01T10:00:00Z".parse().unwrap();
        m.add("l", &later).unwrap();
        assert_eq!(m.receipts(), 2);
        assert_eq!(m.days(), Some((day("2026-11-29"), day("2026-12-01"))));
    }

    #[test]
    fn a_receipt_dated_in_an_extended_year_is_a_ledger_error_not_a_panic() {
        // Format-1 receipts: the first at year −200000 starts the accrual's count
        // at 1e10; the second, in 2026, has accrued 3e10: an increment of 2e10 over
        // 202,026 years ≈ 6.4 × 10¹⁸ µs, whose product (≈ 1.3 × 10²⁹) overflowed
        // Decimal (at most ≈ 7.9 × 10²⁸): a panic.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostile.jsonl");
        write_ledger(
            &path,
            &[
                receipt(
                    "old",
                    "-200000-01-01T00:00:00Z",
                    "0.00023",
                    "10000000000",
                    "0",
                ),
                receipt("new", "2026-12-01T00:00:00Z", "0.00023", "30000000000", "0"),
            ],
        );
        let mut m = Metered::new("us-east-1");
        let err = m.read_ledger(&path).unwrap_err();
        match &err {
            AccountError::Ledger { file, reason } => {
                assert_eq!(*file, path.display().to_string());
                assert!(reason.contains("receipt old"), "{err}");
                assert!(reason.contains("outside the years 1970 to 9999"), "{err}");
            }
            other => panic!("not a ledger error: {other:?}"),
        }
        assert_eq!(m.receipts(), 0);
    }

    #[test]
    fn groupings_read_as_the_cli_writes_them() {
        assert_eq!("usage-type".parse::<GroupBy>().unwrap(), GroupBy::UsageType);
        assert_eq!(
            "tag:team".parse::<GroupBy>().unwrap(),
            GroupBy::Tag("team".into())
        );
        for bad in ["tag:", "endpoint", "tag:a$b"] {
            assert!(bad.parse::<GroupBy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reconciliation_saved_before_it_counted_its_receipts_reads_back() {
        // `reconcile --json` of a day billed $0.23, written before `receipts`
        // was: it reads back, `receipts` 0 (not known).
        let saved = r#"{"region":"us-east-1","account":null,"since":"2026-11-29",
            "until":"2026-11-30","group_by":"usage-type","billed_metric":"AmortizedCost",
            "tolerance_usd":"0.01","rows":[],"days":[],"notes":[]}"#;
        let read: Reconciliation = serde_json::from_str(saved).unwrap();
        assert_eq!(read.receipts, 0);
        assert_eq!(
            (read.since, read.until),
            (day("2026-11-29"), day("2026-11-30"))
        );
        assert_eq!(read.tolerance_usd, d("0.01"));
        // Written now, it carries them, and reads back the same.
        let again = serde_json::to_value(Reconciliation {
            receipts: 300,
            ..read
        })
        .unwrap();
        assert_eq!(again["receipts"], 300);
        let back: Reconciliation = serde_json::from_value(again).unwrap();
        assert_eq!(back.receipts, 300);
    }
}
