//! A model-based property test of the report: random receipts (endpoints,
//! variants, regions, components, models, tags, exact costs with unpriced lines,
//! streams, failures, asynchronous submissions and their settlements, some
//! settled elsewhere or never) are written through the real ledger writers
//! (format 2 by `JsonlLedger`, by two processes in one file and by a rolling
//! ledger; format 1 as serde writes a receipt; Parquet), read back in blocks of
//! any size (a block boundary anywhere, mid-line included), and each figure is
//! checked against an exact model worked out from the receipts as generated, by
//! the definitions of the module docs: never from the code under test.
//! Torn last lines, zeros a power loss left and bad lines are checked against
//! the ledger docs: the torn line skipped and reported, the first bad line the
//! error.

use super::scan::scan_in_blocks;
use super::{GroupBy, GroupSummary, Report, ReportBuilder, ReportError, ReportOptions};
use crate::Cost;
use crate::billing::gigabytes;
use crate::ledger::{JsonlLedger, LedgerError, TornTail};
use chrono::{DateTime, TimeZone, Utc};
use num_bigint::BigInt;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What becomes of one generated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `InvokeEndpoint`: one receipt.
    Sync,
    /// `InvokeEndpointWithResponseStream`: one receipt with parts and a first byte.
    Stream,
    /// `InvokeEndpointAsync` submitted and settled: two receipts, one call.
    Settled,
    /// Submitted, its settlement in no ledger: one receipt, its compute in no figure.
    Unsettled,
    /// A submission that failed: nothing queued, no settlement to come.
    FailedSubmission,
    /// A settlement whose submission is in no ledger read: cost without a call.
    Orphan,
    /// `InvokeEndpointAsync` metered by the SDK interceptor: its one receipt, the
    /// whole call (it makes no settlement).
    Intercepted,
}

/// One priced or unpriced cost line of a receipt.
#[derive(Debug, Clone)]
struct LineSpec {
    priced: bool,
    /// The cost worked out as billing does (the writer may leave it out) or any.
    derived: bool,
    mantissa: u64,
    scale: u32,
    /// Where its price came from: an index into [`PRICE_SOURCES`].
    source: usize,
}

/// A priced line's price source and note, and whether that is a fallback as
/// `cost-model.md` defines one (the bundled snapshot, or a cached price the
/// cache's own note calls stale or kept after a failed refresh; a cached live
/// price with its answer's note is none).
const PRICE_SOURCES: [(&str, Option<&str>, bool); 6] = [
    ("live", None, false),
    (
        "cache",
        Some("SKU PC1 is the standing charge per second provisioned per its group (x)"),
        false,
    ),
    (
        "cache",
        Some(
            "rate of the term effective 2026-12-01T00:00:00Z, announced in the Price List answer fetched 2026-11-30T20:00:00Z",
        ),
        false,
    ),
    (
        "snapshot",
        Some("primary price source failed (HTTP 500); bundled price snapshot"),
        true,
    ),
    (
        "cache",
        Some("cached price older than its TTL; a refresh is under way; skipped 1 $0 row(s)"),
        true,
    ),
    (
        "cache",
        Some(
            "price changed: 0.2 per hour (effective x), was 0.3 (effective y); refresh failed (HTTP 500); kept the last good price, fetched 2026-11-30T20:00:00Z",
        ),
        true,
    ),
];

/// One generated call, before it is made receipts.
#[derive(Debug, Clone)]
struct CallSpec {
    kind: Kind,
    endpoint: usize,
    variant: usize,
    region: usize,
    component: usize,
    model: usize,
    tag: usize,
    /// Seconds after the base time, and nanoseconds.
    secs: i64,
    nanos: u32,
    latency_us: u64,
    tokens: (Option<u64>, Option<u64>),
    /// 0 ok, 1 error, 2 cancelled (the settlement's, for an async invocation).
    outcome: u8,
    /// The lines of the call's (only, or submission's) receipt, and of its
    /// settlement.
    lines: Vec<LineSpec>,
    settlement_lines: Vec<LineSpec>,
    /// Whether the settlement carries the client's note (else told by its lines).
    settlement_note: bool,
    /// Where its receipts go: see [`Dest`].
    dest: usize,
    settlement_dest: usize,
}

const ENDPOINTS: [&str; 3] = ["e0", "llm \"prod\"", "e2"];
const VARIANTS: [Option<&str>; 3] = [None, Some("AllTraffic"), Some("v2")];
const REGIONS: [Option<&str>; 3] = [None, Some("us-east-1"), Some("eu-west-1")];
const COMPONENTS: [Option<&str>; 2] = [None, Some("ic-1")];
const MODELS: [Option<&str>; 2] = [None, Some("m/1.tar.gz")];
const TAGS: [Option<&str>; 3] = [None, Some("search"), Some("sup\"port")];

/// Where receipts go: two format-2 files (the first written by two processes
/// one after the other), a format-1 file, a rolling ledger's directory, and a
/// Parquet file.
const PLAIN_2A: usize = 0;
const PLAIN_2B: usize = 1;
const PLAIN_1: usize = 2;
const ROLLING: usize = 3;
const PARQUET: usize = 4;
/// The plain JSON Lines files, in the order they are given to the report.
const PLAIN: [usize; 3] = [PLAIN_2A, PLAIN_2B, PLAIN_1];

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        prop::bool::weighted(0.85),
        any::<bool>(),
        prop_oneof![Just(0u64), 1u64..1_000, 1u64..10_000_000_000],
        prop_oneof![Just(12u32), Just(9), Just(6), Just(2), Just(0)],
        prop_oneof![4 => Just(0usize), 1 => 1..PRICE_SOURCES.len()],
    )
        .prop_map(|(priced, derived, mantissa, scale, source)| LineSpec {
            priced,
            derived,
            mantissa,
            scale,
            source,
        })
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    let kind = prop_oneof![
        4 => Just(Kind::Sync),
        2 => Just(Kind::Stream),
        3 => Just(Kind::Settled),
        1 => Just(Kind::Unsettled),
        1 => Just(Kind::FailedSubmission),
        1 => Just(Kind::Orphan),
        1 => Just(Kind::Intercepted),
    ];
    let tokens = (
        prop::option::weighted(0.5, 0u64..5_000),
        prop::option::weighted(0.6, 0u64..5_000),
    );
    (
        (kind, 0..3usize, 0..3usize, 0..3usize, 0..2usize, 0..2usize),
        (
            0..3usize,
            // Up to five days: hourly and daily charts both.
            prop_oneof![0i64..20_000, 0i64..5 * 86_400],
            0u32..1_000_000_000,
            prop_oneof![0u64..2_000_000, Just(u64::from(u32::MAX) * 1_000)],
            tokens,
            prop_oneof![6 => Just(0u8), 1 => Just(1), 1 => Just(2)],
        ),
        (
            prop::collection::vec(line_spec(), 0..4),
            prop::collection::vec(line_spec(), 1..3),
            any::<bool>(),
            0..5usize,
            0..5usize,
        ),
    )
        .prop_map(
            |(
                (kind, endpoint, variant, region, component, model),
                (tag, secs, nanos, latency_us, tokens, outcome),
                (lines, settlement_lines, settlement_note, dest, settlement_dest),
            )| CallSpec {
                kind,
                endpoint,
                variant,
                region,
                component,
                model,
                tag,
                secs,
                nanos,
                latency_us,
                tokens,
                outcome,
                lines,
                settlement_lines,
                settlement_note,
                dest,
                settlement_dest,
            },
        )
}

/// Damage done to a plain file once written.
#[derive(Debug, Clone)]
enum Damage {
    /// Its last line cut short: `keep` of its bytes kept (at least one, and not
    /// its closing brace).
    Torn {
        file: usize,
        keep: prop::sample::Index,
    },
    /// Zeros after its last line, as a power loss leaves them.
    Zeros { file: usize, zeros: usize },
    /// One whole line replaced by one that is no record.
    Bad {
        file: usize,
        line: prop::sample::Index,
        what: u8,
    },
}

/// Up to 3 a case; a bad line makes the whole report its error, so it is drawn
/// one time in 6 (about 22 % of cases end as one, not 45 %), and the rest check
/// every figure.
fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => (0..3usize, any::<prop::sample::Index>())
            .prop_map(|(file, keep)| Damage::Torn { file, keep }),
        2 => (0..3usize, 1usize..5_000).prop_map(|(file, zeros)| Damage::Zeros { file, zeros }),
        1 => (0..3usize, any::<prop::sample::Index>(), 0u8..3)
            .prop_map(|(file, line, what)| Damage::Bad { file, line, what }),
    ]
}

/// The base time: 2026-11-30T22:00:00Z, so that calls span a month's end.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 22, 0, 0).unwrap()
}

fn dec(mantissa: u64, scale: u32) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(mantissa), scale)
}

/// A receipt's cost lines (as JSON) and the sum of the priced ones.
fn lines_json(
    specs: &[LineSpec],
    items: &[&str],
    bytes: (u64, u64),
    tokens: (Option<u64>, Option<u64>),
) -> (Vec<Value>, Decimal) {
    let mut total = Decimal::ZERO;
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let item = items[i % items.len()];
        let (quantity, unit) = match item {
            "data_in" => (gigabytes(bytes.0), "gigabytes"),
            "data_out" => (gigabytes(bytes.1), "gigabytes"),
            "input_tokens" => (Decimal::from(tokens.0.unwrap_or(0)), "tokens"),
            "output_tokens" => (Decimal::from(tokens.1.unwrap_or(0)), "tokens"),
            "inference" => (Decimal::ONE, "calls"),
            _ => (dec(spec.mantissa % 1_000_000 + 1, 6), "instance_hours"),
        };
        let price = if spec.priced {
            let rate = dec(spec.mantissa % 10_000, 4);
            let cost = if spec.derived {
                (quantity * rate).round_dp_with_strategy(12, RoundingStrategy::MidpointNearestEven)
            } else {
                dec(spec.mantissa, spec.scale)
            };
            total += cost;
            let (source, note, _) = PRICE_SOURCES[spec.source];
            json!({"status": "priced", "usd_per_unit": rate.to_string(),
                   "cost_usd": cost.to_string(),
                   "provenance": {"source": source, "sku": "S", "effective_date": "2026-11-01",
                                  "fetched_at": null, "note": note}})
        } else {
            json!({"status": "unpriced", "reason": "no rate for \"it\""})
        };
        out.push(
            json!({"item": item, "quantity": quantity.to_string(), "unit": unit,
                        "price": price}),
        );
    }
    (out, total)
}

/// What the model needs of one receipt (kept apart from the receipt itself).
#[derive(Debug, Clone)]
struct Facts {
    part: Part,
    at: DateTime<Utc>,
    endpoint: &'static str,
    variant: Option<&'static str>,
    region: Option<&'static str>,
    component: Option<&'static str>,
    model: Option<&'static str>,
    tag: Option<&'static str>,
    cost: Decimal,
    latency_us: u64,
    tokens: (Option<u64>, Option<u64>),
    unpriced: bool,
    /// Some line priced from a fallback.
    fallback: bool,
    outcome: u8,
    /// A response stream's receipt (its parts received: its 200 arrived).
    stream: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    Submission,
    Settlement,
    /// The interceptor's only receipt of an asynchronous invocation.
    Only,
}

/// The receipts of the calls, each with its facts and its destination, in the
/// order written.
fn receipts(calls: &[CallSpec]) -> Vec<(Cost, Facts, usize)> {
    let mut out = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let at = base()
            + chrono::Duration::seconds(call.secs)
            + chrono::Duration::nanoseconds(i64::from(call.nanos));
        let make = |part: Part, n: u8| {
            let operation = match (call.kind, part) {
                (Kind::Stream, _) => "InvokeEndpointWithResponseStream",
                (_, Part::Whole) => "InvokeEndpoint",
                _ => "InvokeEndpointAsync",
            };
            let (specs, items, bytes, tokens): (_, &[&str], _, _) = match part {
                Part::Whole => (
                    &call.lines,
                    &["compute", "data_in", "data_out", "output_tokens"],
                    (
                        100 + call.secs as u64,
                        7_000 + u64::from(call.nanos % 10_000),
                    ),
                    call.tokens,
                ),
                // A submission bills data in (and the per-inference fee) only.
                Part::Submission => (
                    &call.lines,
                    &["data_in", "inference"],
                    (100 + call.secs as u64, 0),
                    (None, None),
                ),
                Part::Settlement => (
                    &call.settlement_lines,
                    &["compute", "data_out"],
                    (0, 9_000 + u64::from(call.nanos % 10_000)),
                    call.tokens,
                ),
                // Data in priced; compute and data out the interceptor does not
                // see (its lines as drawn); tokens as a response might have
                // carried, never an answer's (see `Model::add`).
                Part::Only => (
                    &call.lines,
                    &["data_in", "compute", "data_out", "inference"],
                    (100 + call.secs as u64, 0),
                    call.tokens,
                ),
            };
            // A submission always has its data-in line (priced or not).
            let mut specs = specs.clone();
            if part == Part::Submission && specs.is_empty() {
                specs.push(LineSpec {
                    priced: true,
                    derived: true,
                    mantissa: 160,
                    scale: 4,
                    source: 0,
                });
            }
            let (lines, cost) = lines_json(&specs, items, bytes, tokens);
            let outcome = match (call.kind, part) {
                (Kind::FailedSubmission, _) => 1,
                (_, Part::Submission) => 0,
                _ => call.outcome,
            };
            let latency_us = match part {
                // The processing time, not a client latency: never the submission's.
                Part::Settlement => call.latency_us + 1 + u64::from(call.nanos % 100_000),
                _ => call.latency_us,
            };
            let stream = call.kind == Kind::Stream;
            let outcome_name = ["ok", "error", "cancelled"][usize::from(outcome)];
            let mut usage = json!({"operation": operation, "latency_us": latency_us,
                "bytes_in": bytes.0, "bytes_out": bytes.1,
                "variant": VARIANTS[call.variant],
                "outcome": outcome_name});
            if stream {
                usage["time_to_first_byte_us"] = json!(latency_us / 3);
                usage["parts"] = json!(3 + call.secs % 7);
            }
            if let Some(t) = tokens.0 {
                usage["input_tokens"] = json!(t);
            }
            if let Some(t) = tokens.1 {
                usage["output_tokens"] = json!(t);
            }
            let mut notes = Vec::new();
            if part == Part::Settlement && call.settlement_note {
                notes.push(format!(
                    "{} submitted at {}",
                    crate::billing::SETTLEMENT_NOTE,
                    at.to_rfc3339()
                ));
            }
            if part == Part::Only {
                notes.push(crate::billing::INTERCEPTOR_NOTE.to_owned());
            }
            let mut receipt = json!({
                "call_id": format!("call-{i}-{n}"), "at": at,
                "endpoint": ENDPOINTS[call.endpoint], "variant": VARIANTS[call.variant],
                "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
                            "instance_count": 1},
                "allocation": "processor_sharing", "usage": usage, "lines": lines,
                "cost_usd": cost.to_string(), "currency": "USD",
                "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null,
                "notes": notes,
            });
            if let Some(region) = REGIONS[call.region] {
                receipt["region"] = json!(region);
            }
            if let Some(c) = COMPONENTS[call.component] {
                receipt["inference_component"] = json!(c);
            }
            if let Some(m) = MODELS[call.model] {
                receipt["target_model"] = json!(m);
            }
            if let Some(t) = TAGS[call.tag] {
                receipt["tags"] = json!({"team": t, "other": "x"});
            }
            let cost_receipt: Cost = serde_json::from_value(receipt).unwrap();
            let facts = Facts {
                part,
                at,
                endpoint: ENDPOINTS[call.endpoint],
                variant: VARIANTS[call.variant],
                region: REGIONS[call.region],
                component: COMPONENTS[call.component],
                model: MODELS[call.model],
                tag: TAGS[call.tag],
                cost,
                latency_us,
                tokens,
                unpriced: specs.iter().any(|s| !s.priced),
                fallback: specs.iter().any(|s| s.priced && PRICE_SOURCES[s.source].2),
                outcome,
                stream,
            };
            (cost_receipt, facts)
        };
        let parts: &[(Part, usize)] = match call.kind {
            Kind::Sync | Kind::Stream => &[(Part::Whole, call.dest)],
            Kind::Settled => &[
                (Part::Submission, call.dest),
                (Part::Settlement, call.settlement_dest),
            ],
            Kind::Unsettled | Kind::FailedSubmission => &[(Part::Submission, call.dest)],
            Kind::Orphan => &[(Part::Settlement, call.settlement_dest)],
            Kind::Intercepted => &[(Part::Only, call.dest)],
        };
        for (n, (part, dest)) in parts.iter().enumerate() {
            let (cost, facts) = make(*part, n as u8);
            out.push((cost, facts, *dest));
        }
    }
    out
}

/// The files written, in the order given to the report, and which receipt
/// (index) each plain file's lines end with.
struct Written {
    /// The plain files that hold receipts, by their [`Dest`] index.
    plain: BTreeMap<usize, PathBuf>,
    /// Each plain file's receipts, in the order written.
    plain_receipts: BTreeMap<usize, Vec<usize>>,
    rolling: Option<PathBuf>,
    parquet: Option<PathBuf>,
}

impl Written {
    /// Every path, in the order given to the report.
    fn inputs(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.plain.values().cloned().collect();
        all.extend(self.rolling.clone());
        all.extend(self.parquet.clone());
        all
    }
}

fn write(dir: &Path, receipts: &[(Cost, Facts, usize)], rolling_bytes: u64) -> Written {
    let mut by_dest: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (_, _, dest)) in receipts.iter().enumerate() {
        by_dest.entry(*dest).or_default().push(i);
    }
    let mut written = Written {
        plain: BTreeMap::new(),
        plain_receipts: BTreeMap::new(),
        rolling: None,
        parquet: None,
    };
    for (dest, indices) in &by_dest {
        let costs = indices.iter().map(|&i| &receipts[i].0);
        match *dest {
            PLAIN_2A | PLAIN_2B => {
                let path = dir.join(format!("format2-{dest}.jsonl"));
                // The first file by two processes, one after the other: the second
                // numbers its definitions from 0 again.
                let halves = match *dest {
                    PLAIN_2A => indices.len() / 2,
                    _ => indices.len(),
                };
                let costs: Vec<&Cost> = costs.collect();
                for part in [&costs[..halves], &costs[halves..]] {
                    if part.is_empty() {
                        continue;
                    }
                    let ledger = JsonlLedger::open(&path).unwrap();
                    for cost in part {
                        ledger.try_record(cost).unwrap();
                    }
                    drop(ledger); // writes everything, without a runtime
                }
                written.plain.insert(*dest, path);
            }
            PLAIN_1 => {
                let path = dir.join("format1.jsonl");
                write_format_1(&path, costs);
                written.plain.insert(*dest, path);
            }
            ROLLING => {
                let path = dir.join("rolling");
                let ledger = JsonlLedger::rolling(&path)
                    .max_bytes(rolling_bytes)
                    .open()
                    .unwrap();
                for cost in costs {
                    ledger.try_record(cost).unwrap();
                }
                drop(ledger);
                written.rolling = Some(path);
            }
            PARQUET => {
                #[cfg(feature = "parquet")]
                {
                    let path = dir.join("receipts.parquet");
                    let mut out = crate::ledger::parquet::ParquetFileWriter::create(&path).unwrap();
                    for cost in costs {
                        out.write(cost).unwrap();
                    }
                    out.finish().unwrap();
                    written.parquet = Some(path);
                }
                #[cfg(not(feature = "parquet"))]
                {
                    // Without Parquet, in a format-1 file of its own.
                    let path = dir.join("format1-more.jsonl");
                    write_format_1(&path, costs);
                    written.plain.insert(*dest, path);
                }
            }
            _ => unreachable!("no destination {dest}"),
        }
        if PLAIN.contains(dest) {
            written.plain_receipts.insert(*dest, indices.clone());
        }
    }
    written
}

/// A format-1 ledger file at `path`: each receipt whole, as serde writes it,
/// `"v":1` first.
fn write_format_1<'a>(path: &std::path::Path, costs: impl Iterator<Item = &'a Cost>) {
    let text: String = costs
        .map(|c| {
            let json = serde_json::to_string(c).unwrap();
            format!("{{\"v\":1,{}\n", &json[1..])
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// `num / den` rounded half to even (both non-negative, `den` not zero).
fn div_half_even(num: &BigInt, den: &BigInt) -> BigInt {
    let (q, r) = (num / den, num % den);
    let twice: BigInt = r * 2;
    let odd = (&q % 2u32) == BigInt::from(1);
    match twice.cmp(den) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if odd => q + 1,
        _ => q,
    }
}

/// `usd × 1000 ÷ n` rounded half to even to 12 places, exactly (`None` for n = 0).
fn per_1000(usd: Decimal, n: u128) -> Option<Decimal> {
    if n == 0 {
        return None;
    }
    let num = BigInt::from(usd.mantissa()) * BigInt::from(1000) * BigInt::from(10u64).pow(12);
    let den = BigInt::from(n) * BigInt::from(10u64).pow(usd.scale());
    let q: i128 = i128::try_from(div_half_even(&num, &den)).unwrap();
    Some(Decimal::from_i128_with_scale(q, 12))
}

/// The value at nearest rank ⌈p·n/100⌉ of `values` sorted (module docs).
fn rank<T: Ord + Copy>(values: &[T], p: usize) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    (n > 0).then(|| sorted[(p * n).div_ceil(100).max(1) - 1])
}

/// The model's figures of one group.
#[derive(Debug, Default, Clone)]
struct Model {
    calls: u64,
    cost: Decimal,
    costs: Vec<Decimal>,
    latencies: Vec<u64>,
    input_tokens: u64,
    output_tokens: u64,
    answered: u64,
    with_tokens: u64,
    with_input: u64,
    with_output: u64,
    both_cost: Decimal,
    both_tokens: u128,
    unpriced: u64,
    /// Receipts with a line priced from a fallback.
    fallback: u64,
    errors: u64,
    cancelled: u64,
    submissions: u64,
    settlements: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// Calls and cost per hour start.
    hourly: BTreeMap<i64, (u64, Decimal)>,
}

impl Model {
    fn add(&mut self, f: &Facts) {
        let call = f.part != Part::Settlement;
        self.calls += u64::from(call);
        self.cost += f.cost;
        if f.part != Part::Submission {
            self.costs.push(f.cost);
        }
        if call {
            self.latencies.push(f.latency_us);
        }
        // Answered with HTTP 2XX: a call that succeeded, a stream (its 200
        // arrived, however it ended), a settlement that succeeded; never a
        // submission, nor the interceptor's only receipt of an asynchronous
        // invocation (it does not see the answer). Only those report tokens.
        let answered = match f.part {
            Part::Submission | Part::Only => false,
            Part::Whole | Part::Settlement => f.outcome == 0 || f.stream,
        };
        let tokens = match answered {
            true => f.tokens,
            false => (None, None),
        };
        self.answered += u64::from(answered);
        self.input_tokens += tokens.0.unwrap_or(0);
        self.output_tokens += tokens.1.unwrap_or(0);
        self.with_tokens += u64::from(tokens.0.is_some() || tokens.1.is_some());
        self.with_input += u64::from(tokens.0.is_some());
        self.with_output += u64::from(tokens.1.is_some());
        if let (Some(i), Some(o)) = tokens {
            self.both_cost += f.cost;
            self.both_tokens += u128::from(i) + u128::from(o);
        }
        self.unpriced += u64::from(f.unpriced);
        self.fallback += u64::from(f.fallback);
        self.errors += u64::from(f.outcome == 1);
        self.cancelled += u64::from(f.outcome == 2);
        match f.part {
            Part::Submission if f.outcome != 1 => self.submissions += 1,
            Part::Settlement => self.settlements += 1,
            _ => {}
        }
        self.first = Some(self.first.map_or(f.at, |t| t.min(f.at)));
        self.last = Some(self.last.map_or(f.at, |t| t.max(f.at)));
        let slot = self
            .hourly
            .entry(f.at.timestamp().div_euclid(3600) * 3600)
            .or_default();
        slot.0 += u64::from(call);
        slot.1 += f.cost;
    }
}

/// Checks `got`'s figures against the model's, `p50`/`p95` exact: a case has at
/// most 39 calls (78 receipts), far below the 4,096 values past which the report
/// approximates percentiles, which the unit tests in `report/mod.rs` cover.
fn check_group(got: &GroupSummary, want: &Model, total: bool) -> Result<(), TestCaseError> {
    let key = &got.key;
    prop_assert_eq!(got.calls, want.calls, "calls of {}", key);
    prop_assert_eq!(got.cost_usd, want.cost, "cost of {}", key);
    prop_assert_eq!(
        got.usd_per_1000_calls,
        per_1000(want.cost, u128::from(want.calls)),
        "per 1,000 calls of {}",
        key
    );
    let ms = |us: u64| Decimal::from_i128_with_scale(i128::from(us), 3);
    for (p, got_cost, got_lat) in [
        (50, got.cost_per_call_p50_usd, got.latency_p50_ms),
        (95, got.cost_per_call_p95_usd, got.latency_p95_ms),
    ] {
        let want_cost = rank(&want.costs, p);
        let want_lat = rank(&want.latencies, p).map(ms);
        prop_assert_eq!(got_cost, want_cost, "cost p{} of {}", p, key);
        prop_assert_eq!(got_lat, want_lat, "latency p{} of {}", p, key);
    }
    prop_assert_eq!(
        got.input_tokens,
        want.input_tokens,
        "input tokens of {}",
        key
    );
    prop_assert_eq!(
        got.output_tokens,
        want.output_tokens,
        "output tokens of {}",
        key
    );
    prop_assert_eq!(got.answered_calls, want.answered, "answered of {}", key);
    prop_assert_eq!(got.calls_with_tokens, want.with_tokens, "{}", key);
    prop_assert_eq!(got.calls_with_input_tokens, want.with_input, "{}", key);
    prop_assert_eq!(got.calls_with_output_tokens, want.with_output, "{}", key);
    prop_assert_eq!(
        got.usd_per_1000_tokens,
        per_1000(want.both_cost, want.both_tokens),
        "per 1,000 tokens of {}",
        key
    );
    prop_assert_eq!(got.unpriced_calls, want.unpriced, "unpriced of {}", key);
    // unpriced ÷ calls, at most 1, to 6 places (half to even, as amounts).
    let share = match (want.unpriced, want.calls) {
        (0, _) => Decimal::ZERO,
        (u, c) if u >= c => Decimal::ONE,
        (u, c) => {
            let q = div_half_even(&(BigInt::from(u) * 1_000_000u32), &BigInt::from(c));
            Decimal::from_i128_with_scale(i128::try_from(q).unwrap(), 6)
        }
    };
    prop_assert_eq!(got.unpriced_share, share, "unpriced share of {}", key);
    // Each receipt with a fallback line, at most the calls (an asynchronous
    // invocation's two receipts are not paired).
    prop_assert_eq!(
        got.fallback_priced_calls,
        want.fallback.min(want.calls),
        "fallback-priced calls of {}",
        key
    );
    prop_assert_eq!(got.errors, want.errors, "errors of {}", key);
    prop_assert_eq!(got.cancelled, want.cancelled, "cancelled of {}", key);
    if !total {
        prop_assert_eq!(
            got.unsettled_async_calls,
            want.submissions.saturating_sub(want.settlements),
            "unsettled of {}",
            key
        );
        prop_assert_eq!(
            got.settlements_without_submission,
            want.settlements.saturating_sub(want.submissions),
            "orphans of {}",
            key
        );
    }
    prop_assert_eq!(got.first_at, want.first, "first of {}", key);
    prop_assert_eq!(got.last_at, want.last, "last of {}", key);
    Ok(())
}

/// The key of `f`'s group among its region's calls (module docs).
fn key_of(f: &Facts, by: &GroupBy) -> String {
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    match by {
        GroupBy::Endpoint => f.endpoint.to_owned(),
        GroupBy::Variant => format!("{}/{}", f.endpoint, or_dash(f.variant)),
        GroupBy::Component => format!("{}/{}", f.endpoint, or_dash(f.component)),
        GroupBy::Model => format!("{}/{}", f.endpoint, or_dash(f.model)),
        GroupBy::Region => or_dash(f.region),
        GroupBy::Tag(_) => f.tag.unwrap_or("(untagged)").to_owned(),
        GroupBy::Day => f.at.format("%Y-%m-%d").to_string(),
        GroupBy::Hour => f.at.format("%Y-%m-%dT%H:00Z").to_string(),
    }
}

/// Checks a report of `counted` (the receipts read, torn ones left out) against
/// the model.
fn check_report(
    report: &Report,
    counted: &[&Facts],
    options: &ReportOptions,
) -> Result<(), TestCaseError> {
    let by = &options.by;
    let in_range = |f: &&&Facts| {
        options.since.is_none_or(|s| f.at >= s) && options.until.is_none_or(|u| f.at < u)
    };
    let included: Vec<&Facts> = counted.iter().filter(in_range).copied().collect();
    prop_assert_eq!(
        report.outside_range,
        (counted.len() - included.len()) as u64,
        "outside the range"
    );
    let regions: BTreeSet<&str> = included.iter().filter_map(|f| f.region).collect();
    let per_region = regions.len() > 1
        && matches!(
            by,
            GroupBy::Endpoint | GroupBy::Variant | GroupBy::Component | GroupBy::Model
        );
    prop_assert_eq!(
        &report.regions,
        &regions.iter().map(|r| r.to_string()).collect::<Vec<_>>()
    );
    let mut groups: BTreeMap<String, Model> = BTreeMap::new();
    let mut total = Model::default();
    for f in &included {
        let mut key = key_of(f, by);
        if per_region {
            key = format!("{}/{key}", f.region.unwrap_or("-"));
        }
        groups.entry(key).or_default().add(f);
        total.add(f);
    }
    // Groups: time ones in time order, the others by cost, highest first, then name.
    let mut order: Vec<(&String, &Model)> = groups.iter().collect();
    if !by.is_time() {
        order.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then(a.0.cmp(b.0)));
    }
    let keys: Vec<&str> = report.groups.iter().map(|g| g.key.as_str()).collect();
    let want_keys: Vec<&str> = order.iter().map(|(k, _)| k.as_str()).collect();
    prop_assert_eq!(keys, want_keys, "groups by {}", by);
    for (got, (_, want)) in report.groups.iter().zip(&order) {
        check_group(got, want, false)?;
    }
    prop_assert_eq!(&report.total.key, "total");
    check_group(&report.total, &total, true)?;
    // The total's unsettled and orphan settlements are its groups'.
    let sum = |f: fn(&Model) -> u64| groups.values().map(f).sum::<u64>();
    prop_assert_eq!(
        report.total.unsettled_async_calls,
        sum(|m| m.submissions.saturating_sub(m.settlements))
    );
    prop_assert_eq!(
        report.total.settlements_without_submission,
        sum(|m| m.settlements.saturating_sub(m.submissions))
    );
    // Never past 4,096 values here (see `check_group`).
    prop_assert!(!report.approximate_percentiles);
    // Over time: hours when the calls span at most 72 hours (whole hours between
    // the first and last start), else days; a `day` report by day, `hour` by hour.
    let span = match (total.first, total.last) {
        (Some(first), Some(last)) => (last - first).num_hours(),
        _ => 0,
    };
    let daily = *by == GroupBy::Day || (*by != GroupBy::Hour && span > 72);
    prop_assert_eq!(
        report.over_time.bucket,
        if daily {
            super::Bucket::Day
        } else {
            super::Bucket::Hour
        }
    );
    let series = |m: &Model| -> Vec<Point> {
        let mut buckets: BTreeMap<i64, (u64, Decimal)> = BTreeMap::new();
        for (hour, (calls, usd)) in &m.hourly {
            let start = if daily {
                hour.div_euclid(86_400) * 86_400
            } else {
                *hour
            };
            let slot = buckets.entry(start).or_default();
            slot.0 += calls;
            slot.1 += usd;
        }
        buckets.into_iter().map(|(s, (c, u))| (s, c, u)).collect()
    };
    let want_series: Vec<Series> = if by.is_time() {
        vec![("total".to_owned(), series(&total))]
    } else {
        order
            .iter()
            .map(|(k, m)| ((*k).clone(), series(m)))
            .collect()
    };
    let got_series: Vec<Series> = report
        .over_time
        .series
        .iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|p| (p.start.timestamp(), p.calls, p.cost_usd))
                .collect();
            (s.key.clone(), points)
        })
        .collect();
    prop_assert_eq!(got_series, want_series);
    prop_assert!(report.accrual_fallbacks.is_empty());
    Ok(())
}

/// A chart point: its start (seconds), calls and cost.
type Point = (i64, u64, Decimal);

/// A chart series: its key and points.
type Series = (String, Vec<Point>);

const GROUPINGS: [&str; 8] = [
    "endpoint",
    "variant",
    "component",
    "model",
    "region",
    "tag:team",
    "day",
    "hour",
];

/// A report of `written` as `report_files` makes one, with blocks of `block`
/// bytes (the JSON Lines files; Parquet files are read by row groups).
fn report_in_blocks(
    written: &Written,
    options: &ReportOptions,
    block: usize,
) -> Result<Report, ReportError> {
    let mut jsonl: Vec<PathBuf> = written.plain.values().cloned().collect();
    if let Some(dir) = &written.rolling {
        jsonl.extend(crate::ledger::ledger_files(dir).unwrap());
    }
    let builder = scan_in_blocks(&jsonl, options, block)?;
    #[cfg(feature = "parquet")]
    let builder = {
        let mut builder = builder;
        if let Some(parquet) = &written.parquet {
            let files = std::slice::from_ref(parquet);
            builder.merge(crate::ledger::parquet::report(files, options)?)?;
        }
        builder
    };
    ReportBuilder::finish(builder)
}

/// What the report must say of damaged files: the error of the first bad line
/// (by file, then line), or the torn tails.
#[derive(Debug)]
enum Expected {
    Error {
        path: PathBuf,
        line: u64,
        what: u8,
    },
    Torn {
        /// The torn tails, by file in the order given.
        tails: Vec<(PathBuf, TornTail)>,
        /// Receipts no longer read (on a torn line).
        lost: BTreeSet<usize>,
    },
}

/// Damages the plain files as `damages` say (the first of each file's only).
fn damage_files(written: &Written, damages: &[Damage]) -> Expected {
    let mut done = BTreeSet::new();
    let mut bad: Option<(usize, u64, PathBuf, u8)> = None;
    let mut tails = BTreeMap::new();
    let mut lost = BTreeSet::new();
    for d in damages {
        let file = match d {
            Damage::Torn { file, .. } | Damage::Zeros { file, .. } | Damage::Bad { file, .. } => {
                PLAIN[*file]
            }
        };
        let Some(path) = written.plain.get(&file) else {
            continue;
        };
        if !done.insert(file) {
            continue;
        }
        let mut text = std::fs::read(path).unwrap();
        assert_eq!(text.last(), Some(&b'\n'));
        let last_start = text[..text.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
        match d {
            Damage::Torn { keep, .. } => {
                // Keep at least one byte of the line, and never its closing brace:
                // cut short, its JSON ends before it is complete.
                let len = text.len() - 1 - last_start;
                let kept = 1 + keep.index(len - 1);
                text.truncate(last_start + kept);
                tails.insert(file, (lines, last_start as u64, kept as u64));
                lost.insert(*written.plain_receipts[&file].last().unwrap());
            }
            Damage::Zeros { zeros, .. } => {
                tails.insert(file, (lines + 1, text.len() as u64, *zeros as u64));
                text.resize(text.len() + zeros, 0);
            }
            Damage::Bad { line, what, .. } => {
                let n = line.index(lines as usize);
                let mut starts = vec![0];
                starts.extend(
                    text.iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\n')
                        .map(|(i, _)| i + 1),
                );
                let garbage: &[u8] = match what {
                    0 => b"{\"v\":2,\"c\":0,\"oops\"}",
                    1 => b"not a ledger line",
                    _ => b"{\"v\":9,\"c\":0}",
                };
                let mut damaged = text[..starts[n]].to_vec();
                damaged.extend_from_slice(garbage);
                damaged.extend_from_slice(&text[starts[n + 1] - 1..]);
                text = damaged;
                let place = PLAIN.iter().position(|p| *p == file).unwrap();
                let line = n as u64 + 1;
                if bad
                    .as_ref()
                    .is_none_or(|(f, l, _, _)| (place, line) < (*f, *l))
                {
                    bad = Some((place, line, path.clone(), *what));
                }
            }
        }
        std::fs::write(path, text).unwrap();
    }
    match bad {
        Some((_, line, path, what)) => Expected::Error { path, line, what },
        None => Expected::Torn {
            tails: tails
                .into_iter()
                .map(|(file, (line, offset, bytes))| {
                    (
                        written.plain[&file].clone(),
                        TornTail::new(line, offset, bytes),
                    )
                })
                .collect(),
            lost,
        },
    }
}

fn check_error(got: Result<Report, ReportError>, expected: &Expected) -> Result<(), TestCaseError> {
    let Expected::Error { path, line, what } = expected else {
        unreachable!()
    };
    match (got, *line, *what) {
        (
            Err(ReportError::Ledger(LedgerError::UnsupportedVersion {
                path: p,
                line: l,
                version: 9,
            })),
            _,
            2,
        ) => {
            prop_assert_eq!(&p, path);
            prop_assert_eq!(l, *line);
        }
        (Err(ReportError::Ledger(LedgerError::NotALedger { path: p, .. })), 1, 0 | 1) => {
            prop_assert_eq!(&p, path)
        }
        (
            Err(ReportError::Ledger(LedgerError::Corrupt {
                path: p, line: l, ..
            })),
            _,
            0 | 1,
        ) => {
            prop_assert_eq!(&p, path);
            prop_assert_eq!(l, *line);
            prop_assert!(*line > 1);
        }
        (other, line, what) => {
            prop_assert!(false, "line {} ({}) of {:?}: {:?}", line, what, path, other)
        }
    }
    Ok(())
}

/// The calls, the damage done, a rolling ledger's size limit, a block index per
/// grouping, and `since` and `until` (seconds after the base time).
type Case = (
    Vec<CallSpec>,
    Vec<Damage>,
    u64,
    Vec<prop::sample::Index>,
    (Option<i64>, Option<i64>),
);

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(call_spec(), 1..40),
        prop::collection::vec(damage(), 0..4),
        prop_oneof![Just(500u64), 2_000u64..50_000],
        prop::collection::vec(any::<prop::sample::Index>(), GROUPINGS.len()),
        (
            prop::option::weighted(0.2, 0i64..5 * 86_400),
            prop::option::weighted(0.2, 0i64..5 * 86_400),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    /// Every receipt is counted once, in its group, whatever the files and the
    /// blocks, and each figure is the model's; a torn last line is skipped and
    /// reported, a bad line is the error, the first by file then line.
    #[test]
    fn a_report_of_random_ledgers_is_the_exact_models_whatever_the_blocks(
        (calls, damages, rolling_bytes, blocks, (since, until)) in case(),
        public in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let receipts = receipts(&calls);
        let written = write(dir.path(), &receipts, rolling_bytes);
        let expected = damage_files(&written, &damages);
        let jsonl_bytes: usize = written
            .plain
            .values()
            .map(|p| std::fs::metadata(p).unwrap().len() as usize)
            .sum();
        let mut options = ReportOptions::new(GroupBy::Endpoint);
        let at = |s: i64| base() + chrono::Duration::seconds(s);
        options.since = since.map(at);
        options.until = until.map(at);
        if let (Some(s), Some(u)) = (options.since, options.until)
            && s >= u
        {
            let refused = matches!(
                super::report_files(written.inputs(), &options),
                Err(ReportError::EmptyRange { .. })
            );
            prop_assert!(refused, "an empty range is refused");
            options.until = None;
        }
        for (by, block) in GROUPINGS.iter().zip(&blocks) {
            options.by = by.parse().unwrap();
            // A block of one byte to the whole of the files: boundaries anywhere.
            let block = 1 + block.index(jsonl_bytes.max(1) + 200);
            let blocks = report_in_blocks(&written, &options, block);
            // The public path too, for one grouping a case (its 4 MiB blocks take
            // tens of ms a report in a debug build).
            let whole = (by == &GROUPINGS[public.index(GROUPINGS.len())])
                .then(|| super::report_files(written.inputs(), &options));
            match &expected {
                Expected::Error { .. } => {
                    for report in whole.into_iter().chain([blocks]) {
                        check_error(report, &expected)?;
                    }
                }
                Expected::Torn { tails, lost } => {
                    let counted: Vec<&Facts> = receipts
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !lost.contains(i))
                        .map(|(_, (_, f, _))| f)
                        .collect();
                    let reports = whole.map(|r| ("whole", r)).into_iter().chain([("blocks", blocks)]);
                    for (which, report) in reports {
                        let fail = |e: &dyn std::fmt::Display| {
                            TestCaseError::fail(format!("by {by}, {which}, blocks of {block}: {e}"))
                        };
                        let report = report.map_err(|e| fail(&e))?;
                        check_report(&report, &counted, &options).map_err(|e| fail(&e))?;
                        prop_assert_eq!(report.torn_tails, tails.len() as u64);
                        prop_assert_eq!(report.torn_tail.as_ref(), tails.first().map(|t| &t.1));
                        prop_assert_eq!(
                            report.torn_tail_file.as_ref(),
                            tails.first().map(|t| &t.0)
                        );
                    }
                }
            }
        }
    }
}
