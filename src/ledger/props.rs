//! A model-based property test of the JSON Lines ledger as a long-running
//! service uses it: random runs of receipts written (endpoints, variants,
//! billing kinds, tags, priced, unpriced and partly priced lines, fallback
//! sources with their notes, accruals, amounts of 0 to 20 decimal places,
//! start times a little before the ledger's clock, across hour, day, month and
//! year ends, a few before 1970 or after 2262) and price change records, the
//! ledger's clock moving on, clean restarts, crashes that tear the last line
//! (cut inside it, by its newline only, away, or not at all, with or without
//! the zeros a power loss leaves after it) each
//! followed by a restart, conversions of closed files to Parquet, and reads
//! in blocks of any size interleaved with the writes. The ledger is a single
//! file (`JsonlLedger::open`) or a rolling one (hourly or daily, with or
//! without a size limit) on a manual clock.
//!
//! The model is the list of records written that the docs (`docs/ledger.md`,
//! `docs/ledger-parquet.md`, `JsonlLedger`'s and the rolling ledger's) promise
//! are kept, each with the period (UTC hour, or day) of the clock when it was
//! written. At every read it is checked, never against the code's own output:
//!
//! - every receipt of the model reads back exactly once, in the order written,
//!   over the ledger's files in the order `ledger_files` gives them, and nothing
//!   else does: each equal (`Cost: PartialEq`) and written out the same
//!   (every decimal with the same digits and scale: amounts are kept exactly,
//!   to as many places as they have); price change records are skipped and
//!   counted, as many as the model's;
//! - a crash's last line: cut anywhere before its closing brace (its JSON ends
//!   before it is complete), the receipt is lost and the line is a torn tail,
//!   reported by the reader with its line number, offset and length (zeros
//!   after it count in its length); cut by its newline only, the receipt is
//!   kept; zeros after a whole line are a torn tail of their own; a line cut
//!   away entirely is no torn tail. The next writer to open the file cuts a
//!   torn tail off: the single file's on every restart, a rolling ledger's when
//!   it restarts in the same period and the file is that period's last (the
//!   file it goes on writing, or, when it is beyond the size limit once
//!   repaired, the one it repairs before it starts the next); a torn tail of a
//!   file no writer reopens stays, reported exactly by every read, conversion
//!   and report. Never a panic, never an error;
//! - a rolling ledger: each record is in a file of the period of the clock when
//!   it was written (`sagemeter-YYYY-MM-DDTHH[.N].jsonl`, `HH` = `00` for daily
//!   files); without a size limit one file per period; with one, each file's
//!   records (every line but definitions) take at most the limit, or the file
//!   holds one record; a period's next file starts only when the next record
//!   would not fit in the previous one, by what the writer of that file counts
//!   (`JsonlLedgerBuilder::max_bytes`): the records it wrote, and in a file it
//!   did not start, all the bytes it found there (repaired), definitions
//!   included; and what it counts is within the limit, but for one record in a
//!   file it found empty, or a file it found beyond the limit and wrote nothing
//!   more to. Some runs write
//!   one receipt of a fixed length with a limit of a whole number of them, so
//!   that files fill to the byte;
//! - a closed file (of a period before the clock's, or any after the last
//!   shutdown) converted to Parquet reads back as the very receipts of the JSON
//!   Lines file, field by field and digit by digit, with its torn tail and price
//!   changes reported; a file holding an amount with a non-zero digit beyond 12
//!   places, or a time outside 1677–2262, is refused and leaves no file, not
//!   rounded;
//! - a report (by endpoint and by day, UTC) of the files, each closed file
//!   converted taken in its Parquet form, counts each receipt once: calls, cost
//!   (exact sums) and unpriced calls per group equal the model's, groups in the
//!   documented order, torn tails counted; a report of a ledger together with its
//!   conversion, or with a copy of one of its files, is refused (the same
//!   receipts twice).
//!
//! Amounts are below 10⁵ USD each, so that every sum here (below 10⁷ USD, to
//! at most 20 places: 27 digits) is exact in a `Decimal`, and every figure is
//! compared exactly; a sum with more digits than a `Decimal` holds is the
//! report's unit tests' (an error, never a rounded figure).

use super::{JsonlLedger, LedgerReader, RollEvery, TornTail, ledger_files};
use crate::Cost;
use crate::billing::gigabytes;
use crate::pricing::{PriceChange, PriceKey, PriceUnit};
use crate::report::{GroupBy, ReportError, ReportOptions, report_files};
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const ENDPOINTS: [&str; 3] = ["chat", "llm \"prod\"", "emb/東京"];
const VARIANTS: [Option<&str>; 3] = [None, Some("AllTraffic"), Some("v2")];
const ITEMS: [&str; 6] = [
    "compute",
    "data_in",
    "data_out",
    "inference",
    "input_tokens",
    "output_tokens",
];
const SOURCES: [&str; 4] = ["live", "cache", "snapshot", "override"];

/// How the ledger is opened.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// One file, `JsonlLedger::open`.
    Plain,
    /// `JsonlLedger::rolling`, hourly or daily, with or without a size limit;
    /// `uniform`: every record is one receipt of a fixed length, and the limit
    /// `uniform` times it, so that files fill to the byte.
    Rolling {
        daily: bool,
        max_bytes: Option<u64>,
        uniform: Option<u64>,
    },
}

/// One amount: a mantissa and a scale (0 to 20 places).
type Amount = (u64, u32);

/// One cost line of a receipt.
#[derive(Debug, Clone)]
struct LineSpec {
    item: usize,
    priced: bool,
    source: usize,
    note: bool,
    rate: Amount,
    quantity: Amount,
    /// The quantity of data its bytes give, and the cost `quantity × rate`
    /// rounded to 12 places (which the writer may leave out), or any.
    derived: bool,
    cost: Amount,
}

/// One receipt, before it is made.
#[derive(Debug, Clone)]
struct ReceiptSpec {
    endpoint: usize,
    variant: usize,
    billing: u8,
    allocation: u8,
    stream: bool,
    /// Microseconds before the clock the call started.
    before_us: u64,
    nanos: u32,
    /// 0: after 2262, 1: before 1970, else near the clock.
    era: u8,
    latency_us: u64,
    bytes: (u64, u64),
    tokens: (Option<u64>, Option<u64>),
    outcome: u8,
    attempts: u32,
    lines: Vec<LineSpec>,
    fleet: Option<Amount>,
    accrual: Option<(Amount, Amount, u8)>,
    tags: u8,
    notes: bool,
    region: bool,
    odd_id: bool,
}

/// How far the clock moves.
#[derive(Debug, Clone)]
enum Step {
    Millis(u64),
    Seconds(u64),
    /// To the next start of an hour (0), day (1) or month (2), give or take a
    /// millisecond.
    ToNext(u8, i64),
}

/// How much of the last line a crash keeps.
#[derive(Debug, Clone)]
enum Cut {
    /// All of it but its newline: a whole record.
    Newline,
    /// None of it.
    All,
    /// All of it (zeros may follow).
    Nothing,
    /// Some of it, at least a byte and not its closing brace.
    Inside(Index),
}

#[derive(Debug, Clone)]
enum Op {
    Record(Box<ReceiptSpec>),
    PriceChange,
    Advance(Step),
    /// Everything read back, in blocks of this many bytes; and a report.
    Read {
        block: usize,
        report: bool,
    },
    Restart {
        gap: Option<Step>,
    },
    /// The process dies writing its last line: `cut` says how much of it is
    /// kept, then `zeros`; read (in blocks) before the restart or not.
    Crash {
        cut: Cut,
        zeros: usize,
        read_before: Option<usize>,
    },
    /// Closed files converted to Parquet.
    Convert,
}

/// An amount below 10⁵ USD: most with the 12 places receipts round to, or
/// fewer; a few (built by hand) with 13 to 20.
fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![20 => Just(12u32), 20 => 0u32..12, 1 => 13u32..=20].prop_flat_map(|scale| {
        let below = 10u64.pow((5 + scale).min(16));
        (
            prop_oneof![Just(0u64), 1u64..1_000, 1u64..below],
            Just(scale),
        )
    })
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        (0..ITEMS.len(), prop::bool::weighted(0.8), 0..SOURCES.len()),
        (any::<bool>(), any::<bool>()),
        // Rates below 10 USD, quantities below 10³.
        (
            (1u64..10_000_000, 6u32..=9),
            (1u64..1_000_000_000_000, 9u32..=18),
        ),
        amount(),
    )
        .prop_map(
            |((item, priced, source), (note, derived), (rate, quantity), cost)| LineSpec {
                item,
                priced,
                source,
                note,
                rate,
                quantity,
                derived,
                cost,
            },
        )
}

fn receipt_spec() -> impl Strategy<Value = ReceiptSpec> {
    (
        (0..3usize, 0..3usize, 0u8..3, 0u8..3, any::<bool>()),
        (
            prop_oneof![Just(0u64), 0u64..5_000_000],
            0u32..1_000,
            0u8..60,
            prop_oneof![0u64..2_000_000, Just(u64::from(u32::MAX) * 1_000)],
            (prop_oneof![0u64..10_000, 0u64..(1 << 40)], 0u64..10_000_000),
        ),
        (
            (
                prop::option::weighted(0.5, 0u64..5_000),
                prop::option::weighted(0.5, 0u64..5_000),
            ),
            prop_oneof![6 => Just(0u8), 1 => Just(1), 1 => Just(2)],
            prop_oneof![4 => Just(1u32), 1 => 2u32..4],
            prop::collection::vec(line_spec(), 0..5),
        ),
        (
            prop::option::weighted(0.2, amount()),
            prop::option::weighted(0.3, (amount(), amount(), 0u8..4)),
            0u8..4,
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.2),
        ),
    )
        .prop_map(
            |(
                (endpoint, variant, billing, allocation, stream),
                (before_us, nanos, era, latency_us, bytes),
                (tokens, outcome, attempts, lines),
                (fleet, accrual, tags, notes, region, odd_id),
            )| ReceiptSpec {
                endpoint,
                variant,
                billing,
                allocation,
                stream,
                before_us,
                nanos,
                era,
                latency_us,
                bytes,
                tokens,
                outcome,
                attempts,
                lines,
                fleet,
                accrual,
                tags,
                notes,
                region,
                odd_id,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Millis(0)),
        (1u64..2_000).prop_map(Step::Millis),
        (1u64..3_600).prop_map(Step::Seconds),
        (3_600u64..3 * 86_400).prop_map(Step::Seconds),
        (0u8..3, -1i64..=1).prop_map(|(unit, ms)| Step::ToNext(unit, ms)),
    ]
}

fn block() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..16, 16usize..70_000]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => receipt_spec().prop_map(|s| Op::Record(Box::new(s))),
        1 => Just(Op::PriceChange),
        4 => step().prop_map(Op::Advance),
        2 => (block(), prop::bool::weighted(0.15))
            .prop_map(|(block, report)| Op::Read { block, report }),
        1 => prop::option::of(step()).prop_map(|gap| Op::Restart { gap }),
        2 => (
            prop_oneof![
                Just(Cut::Newline),
                Just(Cut::All),
                Just(Cut::Nothing),
                any::<Index>().prop_map(Cut::Inside),
                any::<Index>().prop_map(Cut::Inside),
            ],
            prop_oneof![2 => Just(0usize), 1 => 1usize..3_000],
            prop::option::of(block()),
        )
            .prop_map(|(cut, zeros, read_before)| Op::Crash { cut, zeros, read_before }),
        1 => Just(Op::Convert),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        1 => Just(Mode::Plain),
        3 => (
            any::<bool>(),
            prop::option::weighted(0.6, prop_oneof![150u64..600, 600u64..4_000]),
        )
            .prop_map(|(daily, max_bytes)| Mode::Rolling { daily, max_bytes, uniform: None }),
        2 => (any::<bool>(), 1u64..5).prop_map(|(daily, k)| Mode::Rolling {
            daily,
            max_bytes: None,
            uniform: Some(k),
        }),
    ]
}

/// Where the clock starts: just before a month's end, a year's end, and
/// 29 February.
fn start() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(Utc.with_ymd_and_hms(2026, 11, 30, 22, 59, 58).unwrap()),
        Just(Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap()),
        Just(Utc.with_ymd_and_hms(2028, 2, 28, 23, 59, 59).unwrap()),
    ]
}

/// The receipt of a uniform run: its line is as long whatever its call id
/// (fixed width), start (the clock's, 19 digits of ns) and running totals
/// (below 0.001 USD at 12 places), and it refers to the same definitions.
fn uniform() -> ReceiptSpec {
    let line = |item, source, rate| LineSpec {
        item,
        priced: true,
        source,
        note: false,
        rate,
        quantity: (13_268_611_111_111, 18),
        derived: true,
        cost: (0, 12),
    };
    ReceiptSpec {
        endpoint: 0,
        variant: 1,
        billing: 1,
        allocation: 0,
        stream: false,
        before_us: 0,
        nanos: 0,
        era: 2,
        latency_us: 47_767,
        bytes: (1_534, 2_048),
        tokens: (Some(412), Some(96)),
        outcome: 0,
        attempts: 1,
        lines: vec![line(0, 3, (1_408, 3)), line(1, 2, (16, 3))],
        fleet: None,
        accrual: None,
        tags: 1,
        notes: false,
        region: true,
        odd_id: false,
    }
}

fn dec((mantissa, scale): Amount) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(mantissa), scale)
}

/// The period a record written at `now` goes to: `YYYY-MM-DDTHH`, `HH` = `00`
/// for daily files.
fn period(now: DateTime<Utc>, daily: bool) -> String {
    let hour = if daily { 0 } else { now.hour() };
    format!(
        "{:04}-{:02}-{:02}T{hour:02}",
        now.year(),
        now.month(),
        now.day()
    )
}

/// The period in a rolling ledger's file name.
fn file_period(path: &Path) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    name["sagemeter-".len().."sagemeter-YYYY-MM-DDTHH".len()].to_owned()
}

/// The whole lines of a ledger file's `text` other than definitions (receipts
/// and price changes: what a size limit counts), each as its offset and length.
fn record_lines(text: &[u8]) -> Vec<(u64, u64)> {
    let mut records = Vec::new();
    let mut offset = 0u64;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let definition = serde_json::from_slice::<Value>(line).is_ok_and(|v| {
            ["context", "price", "origin"]
                .iter()
                .any(|k| v.get(k).is_some())
        });
        if line.ends_with(b"\n") && !definition {
            records.push((offset, line.len() as u64));
        }
        offset += line.len() as u64;
    }
    records
}

/// Whether Parquet stores every amount of `cost` exactly (no non-zero digit
/// beyond 12 places) and its time (1677–2262): `docs/ledger-parquet.md`.
#[cfg(feature = "parquet")]
fn storable(cost: &Cost) -> bool {
    let exact = |d: &Decimal| d.scale() <= 12 || d.round_dp(12) == *d;
    let mut amounts = vec![
        cost.cost_usd,
        cost.running_client_usd,
        cost.running_endpoint_usd,
    ];
    amounts.extend(cost.running_fleet_usd);
    if let Some(a) = &cost.accrual {
        amounts.extend([a.accrued_usd, a.allocated_usd]);
        amounts.extend(a.utilisation);
    }
    amounts.extend(cost.lines.iter().filter_map(|l| l.cost_usd()));
    amounts.iter().all(exact) && cost.at.timestamp_nanos_opt().is_some()
}

/// `read` is `want`: the same receipts in the same order, each equal and
/// written out the same (decimal scales included).
fn same(read: &[Cost], want: &[&Cost], what: &str) -> Result<(), TestCaseError> {
    for (i, (r, w)) in read.iter().zip(want).enumerate() {
        prop_assert_eq!(r, *w, "{}: receipt {}", what, i);
        prop_assert_eq!(
            serde_json::to_string(r).unwrap(),
            serde_json::to_string(w).unwrap(),
            "{}: receipt {} written out",
            what,
            i
        );
    }
    prop_assert_eq!(read.len(), want.len(), "{}: receipts", what);
    Ok(())
}

/// One record written: a receipt or a price change, and its period.
#[derive(Debug)]
struct Item {
    receipt: Option<Cost>,
    period: String,
}

/// What a read of one file gave.
struct FileRead {
    path: PathBuf,
    receipts: Vec<Cost>,
    price_changes: u64,
}

struct Run {
    mode: Mode,
    /// The file, or the rolling ledger's directory.
    path: PathBuf,
    /// Where conversions go.
    parquet_dir: PathBuf,
    /// A copy of a file goes here.
    backup_dir: PathBuf,
    clock: ManualTimeSource,
    rt: tokio::runtime::Runtime,
    ledger: Option<JsonlLedger>,
    items: Vec<Item>,
    /// Records this process wrote, and receipts among them.
    lines_since_open: u64,
    receipts_since_open: u64,
    /// The torn tail each file holds, as its reader must report it.
    torn: BTreeMap<PathBuf, TornTail>,
    /// Of a rolling ledger's file a later process opened again, its length
    /// then (repaired): what that process counts of it against the size limit,
    /// besides what it writes there after (definitions not counted).
    reopened_at: BTreeMap<PathBuf, u64>,
    /// Of a file whose first record a crash took, that record's length: the
    /// one that started the file.
    first_lost: BTreeMap<PathBuf, u64>,
    converted: BTreeMap<PathBuf, PathBuf>,
    /// Files whose conversion was refused (amounts or times Parquet does not
    /// hold): not tried again.
    #[cfg(feature = "parquet")]
    unconvertible: std::collections::BTreeSet<PathBuf>,
    next_id: u64,
    running_client: Decimal,
    running_endpoint: [Decimal; 3],
}

impl Run {
    fn new(dir: &Path, mode: Mode, start: DateTime<Utc>) -> Run {
        let path = match mode {
            Mode::Plain => dir.join("calls.jsonl"),
            Mode::Rolling { .. } => dir.join("receipts"),
        };
        let mut run = Run {
            mode,
            path,
            parquet_dir: dir.join("parquet"),
            backup_dir: dir.join("backup"),
            clock: ManualTimeSource::new(SystemTime::from(start)),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            ledger: None,
            items: Vec::new(),
            lines_since_open: 0,
            receipts_since_open: 0,
            torn: BTreeMap::new(),
            reopened_at: BTreeMap::new(),
            first_lost: BTreeMap::new(),
            converted: BTreeMap::new(),
            #[cfg(feature = "parquet")]
            unconvertible: std::collections::BTreeSet::new(),
            next_id: 0,
            running_client: Decimal::ZERO,
            running_endpoint: [Decimal::ZERO; 3],
        };
        if let Mode::Rolling {
            daily,
            uniform: Some(k),
            ..
        } = mode
        {
            // The limit: `k` lines of the uniform receipt, as format 2 writes it.
            let cost = run.receipt(&uniform());
            let (mut line, mut refs) = (Vec::new(), super::Refs::default());
            let dict = super::compact::Dictionary::default();
            super::compact::write_record(&cost, &dict, &mut line, &mut refs);
            (run.next_id, run.running_client) = (0, Decimal::ZERO);
            run.running_endpoint = [Decimal::ZERO; 3];
            run.mode = Mode::Rolling {
                daily,
                max_bytes: Some(k * line.len() as u64),
                uniform: Some(k),
            };
        }
        run.open();
        run
    }

    fn uniform(&self) -> bool {
        matches!(
            self.mode,
            Mode::Rolling {
                uniform: Some(_),
                ..
            }
        )
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().into()
    }

    fn daily(&self) -> bool {
        matches!(self.mode, Mode::Rolling { daily: true, .. })
    }

    fn current_period(&self) -> String {
        period(self.now(), self.daily())
    }

    fn open(&mut self) {
        let ledger = match self.mode {
            Mode::Plain => JsonlLedger::open(&self.path),
            Mode::Rolling {
                daily, max_bytes, ..
            } => {
                let every = if daily {
                    RollEvery::Day
                } else {
                    RollEvery::Hour
                };
                let mut builder = JsonlLedger::rolling(&self.path)
                    .roll_every(every)
                    .time_source(SharedTimeSource::new(self.clock.clone()));
                if let Some(max) = max_bytes {
                    builder = builder.max_bytes(max);
                }
                builder.open()
            }
        };
        self.ledger = Some(ledger.expect("the ledger opens"));
        self.lines_since_open = 0;
        self.receipts_since_open = 0;
    }

    /// Everything recorded is written; the counts say so.
    fn flush(&self) -> Result<(), TestCaseError> {
        let ledger = self.ledger.as_ref().unwrap();
        let flushed = self.rt.block_on(ledger.flush());
        prop_assert!(flushed.is_ok(), "flush: {:?}", flushed);
        let stats = ledger.stats();
        prop_assert_eq!(stats.accepted, self.receipts_since_open);
        prop_assert_eq!(stats.written, self.receipts_since_open);
        prop_assert_eq!(stats.lost_on_error, 0);
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), TestCaseError> {
        let ledger = self.ledger.take().unwrap();
        let done = self.rt.block_on(ledger.shutdown());
        prop_assert!(done.is_ok(), "shutdown: {:?}", done);
        prop_assert_eq!(ledger.stats().written, self.receipts_since_open);
        Ok(())
    }

    /// Restarts: a new writer appends to what the last one left. It opens the
    /// file it goes on with, the single file or the last file of the clock's
    /// period, and cuts its torn tail (module docs), even when that file is
    /// full once repaired and the next one starts; a torn tail of any other
    /// file stays.
    fn reopen(&mut self) {
        let goes_on = match self.mode {
            Mode::Plain => Some(self.path.clone()),
            Mode::Rolling { .. } => {
                let now = self.current_period();
                let period: Vec<PathBuf> = self
                    .files()
                    .into_iter()
                    .filter(|f| file_period(f) == now)
                    .collect();
                period.last().cloned()
            }
        };
        self.open();
        if let Some(path) = goes_on {
            self.torn.remove(&path);
            if matches!(self.mode, Mode::Rolling { .. }) {
                let len = std::fs::metadata(&path).unwrap().len();
                self.reopened_at.insert(path, len);
            }
        }
    }

    fn advance(&self, step: &Step) {
        let now = self.now();
        let by = match *step {
            Step::Millis(ms) => chrono::Duration::milliseconds(ms as i64),
            Step::Seconds(s) => chrono::Duration::seconds(s as i64),
            Step::ToNext(unit, ms) => {
                let hour = Utc
                    .with_ymd_and_hms(now.year(), now.month(), now.day(), now.hour(), 0, 0)
                    .unwrap();
                let next = match unit {
                    0 => hour + chrono::Duration::hours(1),
                    1 => {
                        hour - chrono::Duration::hours(i64::from(now.hour()))
                            + chrono::Duration::days(1)
                    }
                    _ => {
                        let (y, m) = match now.month() {
                            12 => (now.year() + 1, 1),
                            m => (now.year(), m + 1),
                        };
                        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap()
                    }
                };
                (next + chrono::Duration::milliseconds(ms) - now).max(chrono::Duration::zero())
            }
        };
        self.clock.advance(by.to_std().unwrap());
    }

    fn receipt(&mut self, spec: &ReceiptSpec) -> Cost {
        let now = self.now();
        let id = self.next_id;
        self.next_id += 1;
        let at = match spec.era {
            0 => Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap(),
            1 => Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap(),
            _ => now - chrono::Duration::microseconds(spec.before_us as i64),
        } + chrono::Duration::nanoseconds(i64::from(spec.nanos));
        let serverless = spec.billing == 2;
        let billing = match spec.billing {
            0 => Value::Null,
            1 => json!({"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 2}),
            _ => json!({"kind": "serverless", "memory_mb": 2048,
                        "provisioned_concurrency": spec.stream.then_some(3)}),
        };
        let mut lines = Vec::new();
        let mut cost = Decimal::ZERO;
        for line in &spec.lines {
            let item = ITEMS[line.item];
            let (quantity, unit) = match item {
                "compute" if serverless => (dec(line.quantity), "seconds"),
                "compute" => (dec(line.quantity), "instance_hours"),
                "data_in" if line.derived => (gigabytes(spec.bytes.0), "gigabytes"),
                "data_out" if line.derived => (gigabytes(spec.bytes.1), "gigabytes"),
                "data_in" | "data_out" => (dec(line.quantity), "gigabytes"),
                "inference" => (Decimal::ONE, "calls"),
                "input_tokens" => (Decimal::from(spec.tokens.0.unwrap_or(7)), "tokens"),
                _ => (Decimal::from(spec.tokens.1.unwrap_or(9)), "tokens"),
            };
            let price = if line.priced {
                let rate = dec(line.rate);
                let line_cost = match line.derived {
                    true => quantity
                        .checked_mul(rate)
                        .map(|c| {
                            c.round_dp_with_strategy(12, RoundingStrategy::MidpointNearestEven)
                        })
                        .unwrap_or_else(|| dec(line.cost)),
                    false => dec(line.cost),
                };
                cost += line_cost;
                let source = SOURCES[line.source];
                let note = (line.note || source == "snapshot").then(|| {
                    format!(
                        "primary price source failed (HTTP 500); bundled \"snapshot\"\n{source}"
                    )
                });
                json!({"status": "priced", "usd_per_unit": rate.to_string(),
                       "cost_usd": line_cost.to_string(),
                       "provenance": {"source": source,
                           "sku": (source != "override").then_some("8KTE7BNYQ6E3SPQH"),
                           "effective_date": (source != "override").then_some("2026-11-01"),
                           "fetched_at": (source == "live").then(|| now - chrono::Duration::minutes(5)),
                           "note": note}})
            } else {
                json!({"status": "unpriced", "reason": format!("no rate for {item} in \"eu\"")})
            };
            lines.push(
                json!({"item": item, "quantity": quantity.to_string(), "unit": unit,
                              "price": price}),
            );
        }
        let rounded = cost.round_dp(12);
        self.running_client += rounded;
        self.running_endpoint[spec.endpoint] += rounded;
        let operation = match spec.stream {
            true => "InvokeEndpointWithResponseStream",
            false => "InvokeEndpoint",
        };
        let outcome = ["ok", "error", "cancelled"][usize::from(spec.outcome)];
        let allocation =
            ["processor_sharing", "busy_time", "amortized"][usize::from(spec.allocation)];
        let mut usage = json!({
            "operation": operation,
            "latency_us": spec.latency_us, "bytes_in": spec.bytes.0, "bytes_out": spec.bytes.1,
            "variant": VARIANTS[(spec.variant + usize::from(spec.outcome == 2)) % 3],
            "outcome": outcome,
            "attempts": spec.attempts,
        });
        if spec.stream {
            usage["time_to_first_byte_us"] = json!(spec.latency_us / 3);
            usage["parts"] = json!(1 + spec.latency_us % 17);
        }
        if let Some(t) = spec.tokens.0 {
            usage["input_tokens"] = json!(t);
        }
        if let Some(t) = spec.tokens.1 {
            usage["output_tokens"] = json!(t);
        }
        let call_id = match spec.odd_id {
            true => format!("req-\"{id}\"\\東京\u{1}"),
            false => format!("4c7e1a2b-9f3d-4e5a-8b6c-{id:012}"),
        };
        let mut receipt = json!({
            "call_id": call_id, "at": at, "endpoint": ENDPOINTS[spec.endpoint],
            "variant": VARIANTS[spec.variant], "billing": billing,
            "allocation": allocation,
            "usage": usage, "lines": lines, "cost_usd": cost.to_string(), "currency": "USD",
            "running_client_usd": self.running_client.to_string(),
            "running_endpoint_usd": self.running_endpoint[spec.endpoint].to_string(),
            "accrual": null,
        });
        if spec.region {
            receipt["region"] = json!("us-east-1");
        }
        if let Some(fleet) = spec.fleet {
            receipt["running_fleet_usd"] = json!(dec(fleet).to_string());
        }
        if let Some((accrued, allocated, more)) = spec.accrual {
            let mut accrual = json!({"accrued_usd": dec(accrued).to_string(),
                "allocated_usd": dec(allocated).to_string(), "utilisation": "0.498849",
                "priced_from": [{"charge": "capacity", "price_source": "snapshot",
                                 "note": "primary price source failed; bundled snapshot"},
                                {"charge": "capacity", "price_source": "live"}]});
            if more > 0 {
                accrual["storage_usd"] = json!("0.0001");
                accrual["unreserved_usd"] = json!("0.00000015");
            }
            if more > 1 {
                accrual["standing_parts"] = json!([
                    {"billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
                                 "instance_count": 2}, "usd_per_hour": "2.816"}]);
            }
            receipt["accrual"] = accrual;
        }
        receipt["tags"] = match spec.tags {
            0 => json!({}),
            1 => json!({"team": "search"}),
            2 => json!({"team": "sup\"port", "ключ": "значение\n"}),
            _ => json!({"": "", "tenant": "acme"}),
        };
        if spec.notes {
            receipt["notes"] = json!(["priced from the bundled snapshot: \"live\" failed"]);
        }
        serde_json::from_value(receipt).unwrap()
    }

    fn record(&mut self, spec: &ReceiptSpec) -> Result<(), TestCaseError> {
        let cost = self.receipt(spec);
        let taken = self.ledger.as_ref().unwrap().try_record(&cost);
        prop_assert!(taken.is_ok(), "refused: {:?}", taken);
        self.lines_since_open += 1;
        self.receipts_since_open += 1;
        self.items.push(Item {
            receipt: Some(cost),
            period: self.current_period(),
        });
        Ok(())
    }

    fn price_change(&mut self) {
        let change = PriceChange {
            at: self.now(),
            key: PriceKey::Hosting {
                region: "us-east-1".into(),
                instance_type: "ml.g5.xlarge".into(),
            },
            unit: PriceUnit::Hour,
            old_usd_per_unit: Decimal::new(1_408, 3),
            new_usd_per_unit: Decimal::new(1_2345, 4),
            old_effective_date: Some("2026-11-01".into()),
            new_effective_date: None,
            sku: Some("8KTE7BNYQ6E3SPQH".into()),
        };
        self.ledger.as_ref().unwrap().record_price_change(&change);
        self.lines_since_open += 1;
        self.items.push(Item {
            receipt: None,
            period: self.current_period(),
        });
    }

    /// The ledger's files, in the order to read them.
    fn files(&self) -> Vec<PathBuf> {
        match self.mode {
            Mode::Plain => vec![self.path.clone()],
            Mode::Rolling { .. } => ledger_files(&self.path).unwrap(),
        }
    }

    /// Reads every file in blocks of `block` bytes and checks it against the
    /// model (module docs); returns what each file holds.
    fn check(&self, block: usize) -> Result<Vec<FileRead>, TestCaseError> {
        let files = self.files();
        let mut reads = Vec::new();
        for path in files {
            let file = std::fs::File::open(&path).unwrap();
            let mut reader = LedgerReader::new(BufReader::with_capacity(block, file), &path);
            let mut receipts = Vec::new();
            for cost in reader.by_ref() {
                match cost {
                    Ok(cost) => receipts.push(cost),
                    Err(e) => prop_assert!(false, "{}: {}", path.display(), e),
                }
            }
            prop_assert_eq!(
                reader.torn_tail(),
                self.torn.get(&path),
                "{}",
                path.display()
            );
            reads.push(FileRead {
                path,
                receipts,
                price_changes: reader.price_changes(),
            });
        }
        let read: Vec<Cost> = reads.iter().flat_map(|r| r.receipts.clone()).collect();
        let want: Vec<&Cost> = self
            .items
            .iter()
            .filter_map(|i| i.receipt.as_ref())
            .collect();
        same(&read, &want, "the ledger")?;
        let changes = self.items.iter().filter(|i| i.receipt.is_none()).count();
        prop_assert_eq!(
            reads.iter().map(|r| r.price_changes).sum::<u64>(),
            changes as u64,
            "price changes"
        );
        if let Mode::Rolling { max_bytes, .. } = self.mode {
            self.check_files(&reads, max_bytes)?;
        }
        #[cfg(feature = "parquet")]
        for r in &reads {
            if let Some(parquet) = self.converted.get(&r.path) {
                let back = super::parquet::read_all(parquet);
                prop_assert!(back.is_ok(), "{}: {:?}", parquet.display(), back);
                let want: Vec<&Cost> = r.receipts.iter().collect();
                same(&back.unwrap(), &want, "its Parquet conversion")?;
            }
        }
        Ok(reads)
    }

    /// A rolling ledger's files: periods, and the size limit (module docs).
    fn check_files(&self, reads: &[FileRead], max: Option<u64>) -> Result<(), TestCaseError> {
        let periods: Vec<&str> = self
            .items
            .iter()
            .filter(|i| i.receipt.is_some())
            .map(|i| i.period.as_str())
            .collect();
        let mut changes: BTreeMap<&str, u64> = BTreeMap::new();
        for i in self.items.iter().filter(|i| i.receipt.is_none()) {
            *changes.entry(&i.period).or_default() += 1;
        }
        let mut n = 0;
        let mut file_changes: BTreeMap<String, u64> = BTreeMap::new();
        // The last file: its period, and the bytes its last writer counted.
        let mut previous: Option<(String, u64)> = None;
        for r in reads {
            let name = r.path.file_name().unwrap().to_str().unwrap().to_owned();
            let p = file_period(&r.path);
            for _ in &r.receipts {
                prop_assert_eq!(periods[n], p.as_str(), "receipt {} in {}", n, name);
                n += 1;
            }
            *file_changes.entry(p.clone()).or_default() += r.price_changes;
            let text = std::fs::read(&r.path).unwrap();
            let records = record_lines(&text);
            // What the limit counts (module docs): records; of a file a later
            // process went on writing, all it found there, definitions
            // included, and the records it wrote after.
            let base = self.reopened_at.get(&r.path).copied().unwrap_or(0);
            let counted = base
                + records
                    .iter()
                    .filter(|(at, _)| *at >= base)
                    .map(|(_, len)| len)
                    .sum::<u64>();
            let seq = name.len() > "sagemeter-YYYY-MM-DDTHH.jsonl".len();
            match max {
                None => prop_assert!(!seq, "{} without a size limit", name),
                Some(max) => {
                    let bytes: u64 = records.iter().map(|(_, len)| len).sum();
                    prop_assert!(
                        bytes <= max || records.len() == 1,
                        "{}: {} bytes of records over {}",
                        name,
                        bytes,
                        max
                    );
                    // Over the limit only by one record in a file its writer
                    // found empty, or by what a later process found there and
                    // then wrote nothing after.
                    prop_assert!(
                        counted <= max
                            || (base == 0 && records.len() == 1)
                            || (base > max && counted == base),
                        "{}: {} bytes counted (found {}) over {}",
                        name,
                        counted,
                        base,
                        max
                    );
                    // The record that started the file: its first, or the one
                    // a crash took from it.
                    let first = self
                        .first_lost
                        .get(&r.path)
                        .or(records.first().map(|(_, len)| len));
                    if let (Some((prev_period, prev_counted)), Some(first)) = (&previous, first)
                        && *prev_period == p
                    {
                        prop_assert!(
                            prev_counted + first > max,
                            "{} started though its first record ({} bytes) fit the \
                             previous file ({} bytes counted, limit {})",
                            name,
                            first,
                            prev_counted,
                            max
                        );
                    }
                }
            }
            previous = Some((p, counted));
        }
        let want: BTreeMap<String, u64> =
            changes.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        file_changes.retain(|_, n| *n > 0);
        prop_assert_eq!(file_changes, want, "price changes by period");
        Ok(())
    }

    /// The process dies writing its last line, which it wrote since it opened
    /// the ledger: that line is cut, zeros may follow, and the ledger is
    /// opened again (by the next process).
    fn crash(
        &mut self,
        cut: &Cut,
        zeros: usize,
        read_before: Option<usize>,
    ) -> Result<(), TestCaseError> {
        let wrote = self.lines_since_open > 0;
        self.shutdown()?;
        let files = self.files();
        let last = files
            .iter()
            .rev()
            .find(|p| std::fs::metadata(p).unwrap().len() > 0)
            .cloned();
        if let Some(path) = last.filter(|p| wrote && !self.converted.contains_key(p)) {
            let mut text = std::fs::read(&path).unwrap();
            prop_assert_eq!(text.last(), Some(&b'\n'));
            let start = text[..text.len() - 1]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let line = text[..start].iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let len = text.len() - start;
            let first = record_lines(&text[..start]).is_empty();
            let keep = match cut {
                Cut::Newline => len - 1,
                Cut::All => 0,
                Cut::Nothing => len,
                Cut::Inside(at) => 1 + at.index(len - 2),
            };
            text.truncate(start + keep);
            text.resize(text.len() + zeros, 0);
            std::fs::write(&path, &text).unwrap();
            // Cut anywhere before its closing brace, or away: the record is lost.
            if keep + 1 < len {
                self.items.pop();
                if first {
                    self.first_lost.entry(path.clone()).or_insert(len as u64);
                }
            }
            let tail = if (1..len - 1).contains(&keep) {
                Some(TornTail::new(line, start as u64, (keep + zeros) as u64))
            } else if keep == 0 && zeros > 0 {
                Some(TornTail::new(line, start as u64, zeros as u64))
            } else if keep == len && zeros > 0 {
                Some(TornTail::new(
                    line + 1,
                    text.len() as u64 - zeros as u64,
                    zeros as u64,
                ))
            } else {
                None
            };
            if let Some(tail) = tail {
                self.torn.insert(path, tail);
            }
        }
        if let Some(block) = read_before {
            self.check(block)?;
        }
        self.reopen();
        Ok(())
    }

    /// Converts the closed files not converted yet: those of periods before
    /// the clock's, or every file (`all`, after the last shutdown).
    #[cfg(feature = "parquet")]
    fn convert(&mut self, reads: &[FileRead], all: bool) -> Result<(), TestCaseError> {
        use super::parquet::{convert, in_progress, read_all};
        let now = self.current_period();
        for r in reads {
            let path = &r.path;
            let closed =
                all || (matches!(self.mode, Mode::Rolling { .. }) && file_period(path) < now);
            if !closed || self.converted.contains_key(path) || self.unconvertible.contains(path) {
                continue;
            }
            std::fs::create_dir_all(&self.parquet_dir).unwrap();
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let out = self.parquet_dir.join(format!("{stem}.parquet"));
            let converted = convert(path, &out);
            if r.receipts.iter().all(storable) {
                let converted = match converted {
                    Ok(c) => c,
                    Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", path.display()))),
                };
                prop_assert_eq!(converted.rows, r.receipts.len() as u64);
                prop_assert_eq!(converted.price_changes, r.price_changes);
                prop_assert_eq!(converted.torn_tail.as_ref(), self.torn.get(path));
                let back = read_all(&out);
                prop_assert!(back.is_ok(), "{:?}", back);
                let want: Vec<&Cost> = r.receipts.iter().collect();
                same(&back.unwrap(), &want, "a conversion")?;
                self.converted.insert(path.clone(), out);
            } else {
                prop_assert!(converted.is_err(), "{} converted", path.display());
                prop_assert!(!out.exists(), "a refused conversion leaves no file");
                prop_assert!(!in_progress(&out).exists(), "nor one in progress");
                self.unconvertible.insert(path.clone());
            }
        }
        Ok(())
    }

    #[cfg(not(feature = "parquet"))]
    fn convert(&mut self, _: &[FileRead], _: bool) -> Result<(), TestCaseError> {
        Ok(())
    }

    /// Reports of the files (each converted one as Parquet) against the model;
    /// the ledger with its conversions, or with a copy of a file, is refused.
    fn check_reports(&self, reads: &[FileRead], copy: bool) -> Result<(), TestCaseError> {
        let inputs: Vec<PathBuf> = reads
            .iter()
            .map(|r| self.converted.get(&r.path).unwrap_or(&r.path).clone())
            .collect();
        let receipts: Vec<&Cost> = self
            .items
            .iter()
            .filter_map(|i| i.receipt.as_ref())
            .collect();
        for by in [GroupBy::Endpoint, GroupBy::Day] {
            let mut want: BTreeMap<String, (u64, Decimal, u64)> = BTreeMap::new();
            for c in &receipts {
                let key = match by {
                    GroupBy::Endpoint => c.endpoint.clone(),
                    _ => c.at.format("%Y-%m-%d").to_string(),
                };
                let slot = want.entry(key).or_default();
                slot.0 += 1;
                slot.1 += c.cost_usd;
                slot.2 += u64::from(c.lines.iter().any(|l| l.cost_usd().is_none()));
            }
            let mut order: Vec<(&String, &(u64, Decimal, u64))> = want.iter().collect();
            if by == GroupBy::Endpoint {
                order.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
            }
            let report = report_files(&inputs, &ReportOptions::new(by.clone()));
            let report = match report {
                Ok(r) => r,
                Err(e) => return Err(TestCaseError::fail(format!("report by {by}: {e}"))),
            };
            let got: Vec<(&String, (u64, Decimal, u64))> = report
                .groups
                .iter()
                .map(|g| (&g.key, (g.calls, g.cost_usd, g.unpriced_calls)))
                .collect();
            let order: Vec<(&String, (u64, Decimal, u64))> =
                order.into_iter().map(|(k, v)| (k, *v)).collect();
            prop_assert_eq!(got, order, "report by {}", by);
            prop_assert_eq!(report.total.calls, receipts.len() as u64);
            prop_assert_eq!(
                report.total.cost_usd,
                receipts.iter().map(|c| c.cost_usd).sum::<Decimal>()
            );
            let torn = reads
                .iter()
                .filter(|r| !self.converted.contains_key(&r.path))
                .filter(|r| self.torn.contains_key(&r.path))
                .count();
            prop_assert_eq!(report.torn_tails, torn as u64, "torn tails");
        }
        let same_receipts = |inputs: &[&Path]| {
            matches!(
                report_files(inputs, &ReportOptions::new(GroupBy::Endpoint)),
                Err(ReportError::Ledger(super::LedgerError::SameReceipts { .. }))
            )
        };
        let converted_any = reads
            .iter()
            .any(|r| self.converted.contains_key(&r.path) && !r.receipts.is_empty());
        if converted_any {
            prop_assert!(
                same_receipts(&[self.path.as_path(), self.parquet_dir.as_path()]),
                "a ledger and its conversion together are refused"
            );
        }
        if copy && let Some(r) = reads.iter().find(|r| !r.receipts.is_empty()) {
            std::fs::create_dir_all(&self.backup_dir).unwrap();
            std::fs::copy(&r.path, self.backup_dir.join("copy.jsonl")).unwrap();
            prop_assert!(
                same_receipts(&[self.path.as_path(), self.backup_dir.as_path()]),
                "a ledger and a copy of its file together are refused"
            );
        }
        Ok(())
    }
}

fn play(mode: Mode, start: DateTime<Utc>, ops: &[Op], block: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(dir.path(), mode, start);
    for op in ops {
        match op {
            Op::Record(_) | Op::PriceChange if run.uniform() => run.record(&uniform())?,
            Op::Record(spec) => run.record(spec)?,
            Op::PriceChange => run.price_change(),
            Op::Advance(step) => {
                // The writer writes a record by the clock when it writes it:
                // everything recorded is written before the clock moves.
                run.flush()?;
                run.advance(step);
            }
            Op::Read { block, report } => {
                run.flush()?;
                let reads = run.check(*block)?;
                if *report {
                    run.check_reports(&reads, false)?;
                }
            }
            Op::Restart { gap } => {
                run.shutdown()?;
                if let Some(step) = gap {
                    run.advance(step);
                }
                run.reopen();
            }
            Op::Crash {
                cut,
                zeros,
                read_before,
            } => run.crash(cut, *zeros, *read_before)?,
            Op::Convert => {
                run.flush()?;
                let reads = run.check(block)?;
                run.convert(&reads, false)?;
            }
        }
    }
    run.shutdown()?;
    let reads = run.check(block)?;
    // Every file is closed now: each converted (or refused) and checked.
    run.convert(&reads, true)?;
    run.check_reports(&reads, true)
}

proptest! {
    // 16 cases a run; `PROPTEST_CASES` sets another number for a longer run, as
    // `proptest!` lets it override the cases of any config given here.
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Every receipt written and not torn by a crash reads back once, exactly,
    /// in order, from the files of its periods, in JSON Lines and in Parquet;
    /// torn tails are reported and cut as the docs say; reports sum the model.
    #[test]
    fn a_ledger_keeps_every_receipt_it_promises_through_rolls_restarts_crashes_and_conversions(
        mode in mode(),
        start in start(),
        ops in prop::collection::vec(op(), 1..40),
        block in block(),
    ) {
        play(mode, start, &ops, block)?;
    }
}
