//! A model-based property test of the reconciliation.
//!
//! Random ledgers of receipts (two real-time endpoints of one instance type, an
//! asynchronous one, a serverless one and one with provisioned concurrency, plus
//! an endpoint of another region; receipts without a region, unpriced lines,
//! per-call fees, errors and cancelled calls; replicas each with its own
//! ledger, a ledger begun after its process did, a process restarted) are read
//! into [`Metered`], interleaved across ledgers, and reconciled against a random
//! Cost Explorer answer for the same days (instance hours, asynchronous and
//! serverless compute, provisioned concurrency under both of its usage types,
//! data in and out under two usage types each, ML storage, training and
//! notebooks outside any endpoint, an instance type no price source knows,
//! credits below zero, amounts in scientific notation and amounts of 28
//! digits), by usage type and by a cost allocation tag (one value per endpoint).
//!
//! Every figure is checked against a model worked out here, apart from the code,
//! from the rules of `docs/account.md`: a process's running accrual counts from
//! where its ledger's count starts (its first call, or its first receipt read),
//! each increment to its next receipt split at UTC midnight in proportion to
//! time (every day but the last its share rounded toward zero at 18 places, the
//! last day what is left), time that replicas cover together counted once at the
//! highest of their shares of it (rounded the same way); a cell's parts are
//! `I = accrued − allocated`, `O = Q × r − (M + I)`, `D = B − Q × r`, standing and
//! other charges, and what is left unexplained; the on-demand rate of a day is
//! the receipts' own, else the nearest day's before, else after, else the price
//! source's. The model's figures are exact (`num_bigint`; its only divisions
//! are those shares, the receipts' running accruals at 12 places and the
//! effective rate's 4 places). Calls begin on a grid of 36 s (where an hourly
//! rate over any stretch is a whole number of its hundredths and every share
//! terminates) or anywhere off it to the microsecond, where a running accrual
//! is rounded and a day's share of an increment over a span of, say,
//! 3,601,234,567 µs is not a decimal of any length. A reconciliation that
//! succeeds must give the model's figures to the last digit; one refused for a
//! sum of more digits than a `Decimal` holds is right only when the model's
//! figures of that day come near that limit.

use super::reconcile::{GroupBy, Metered, ReconcileOptions, Reconciliation, Verdict};
use super::tests::{interceptor, mocked_client};
use super::usage_class::UsageClass;
use super::{Account, AccountError};
use crate::pricing::{PriceKey, PriceSource};
use aws_config::BehaviorVersion;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_mocks::{Rule, create_mock_http_client, mock};
use aws_types::region::Region;
use chrono::{DateTime, NaiveDate, Utc};
use num_bigint::BigInt;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

// ---------------------------------------------------------------------------
// Exact decimals: m × 10^-s.

#[derive(Debug, Clone, Default)]
struct Ex {
    m: BigInt,
    s: u32,
}

fn pow10(n: u32) -> BigInt {
    BigInt::from(10u8).pow(n)
}

impl Ex {
    fn zero() -> Ex {
        Ex::new(0, 0)
    }

    fn new(m: impl Into<BigInt>, s: u32) -> Ex {
        Ex { m: m.into(), s }
    }

    fn of(d: Decimal) -> Ex {
        Ex::new(d.mantissa(), d.scale())
    }

    fn parse(text: &str) -> Ex {
        Ex::of(text.parse().unwrap())
    }

    fn at(&self, s: u32) -> BigInt {
        &self.m * pow10(s - self.s)
    }

    fn add(&self, o: &Ex) -> Ex {
        let s = self.s.max(o.s);
        Ex::new(self.at(s) + o.at(s), s)
    }

    fn neg(&self) -> Ex {
        Ex::new(-&self.m, self.s)
    }

    fn sub(&self, o: &Ex) -> Ex {
        self.add(&o.neg())
    }

    fn mul(&self, o: &Ex) -> Ex {
        Ex::new(&self.m * &o.m, self.s + o.s)
    }

    fn abs(&self) -> Ex {
        Ex::new(self.m.magnitude().clone(), self.s)
    }

    fn cmp(&self, o: &Ex) -> Ordering {
        let s = self.s.max(o.s);
        self.at(s).cmp(&o.at(s))
    }

    fn is_neg(&self) -> bool {
        self.m < BigInt::from(0)
    }

    fn max0(&self) -> Ex {
        if self.is_neg() {
            Ex::zero()
        } else {
            self.clone()
        }
    }

    /// Rounded half to even at `dp` places.
    fn round(&self, dp: u32) -> Ex {
        if self.s <= dp {
            return self.clone();
        }
        Ex::new(div_half_even(&self.m, &pow10(self.s - dp)), dp)
    }

    /// The fewest places that hold it.
    fn normalized(&self) -> Ex {
        let mut e = self.clone();
        let ten = BigInt::from(10u8);
        while e.s > 0 && (&e.m % &ten) == BigInt::from(0) {
            e.m /= &ten;
            e.s -= 1;
        }
        e
    }

    /// Whether a `Decimal` holds it exactly (at most 28 places, 96 bits).
    fn fits(&self) -> bool {
        let n = self.normalized();
        n.s <= 28 && n.m.magnitude().bits() <= 96
    }

    fn same(&self, d: Decimal) -> bool {
        self.cmp(&Ex::of(d)) == Ordering::Equal
    }

    /// Written out plainly, as Cost Explorer writes an amount.
    fn plain(&self) -> String {
        let digits = self.m.magnitude().to_string();
        let sign = if self.is_neg() { "-" } else { "" };
        let s = self.s as usize;
        if s == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (whole, frac) = padded.split_at(padded.len() - s);
        format!("{sign}{whole}.{frac}")
    }
}

/// `n ÷ d` rounded half to even (`d > 0`).
fn div_half_even(n: &BigInt, d: &BigInt) -> BigInt {
    let zero = BigInt::from(0);
    let (mut q, r) = (n / d, n % d);
    // Truncated toward zero: r has n's sign.
    let twice = r.magnitude() * 2u8;
    let up = match twice.cmp(d.magnitude()) {
        Ordering::Greater => true,
        Ordering::Equal => (&q % 2u8) != zero,
        Ordering::Less => false,
    };
    if up {
        if *n < zero {
            q -= 1;
        } else {
            q += 1;
        }
    }
    q
}

// ---------------------------------------------------------------------------
// The world: endpoints, rates, days.

/// 2026-11-27T00:00:00Z, where the grid starts.
const BASE_SECS: i64 = 1_795_737_600;
/// Calls begin on a grid of 36 s (an hourly rate over n steps is n × rate ÷ 100),
/// or off it (see [`CallSpec::off_grid_us`]).
const GRID_SECS: i64 = 36;
/// Grid steps a day.
const DAY_UNITS: i64 = 86_400 / GRID_SECS;
/// Now: 2026-12-02T12:00:00Z.
const NOW_SECS: u64 = 1_796_212_800;
/// The days billed: 11-26 to 12-01.
const BILL_DAYS: i64 = 6;

fn day_of(index: i64) -> NaiveDate {
    // Index 0 is 11-26, the day before the grid's.
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap() + chrono::Days::new(index as u64)
}

/// Microseconds a grid step.
const STEP_US: i64 = GRID_SECS * 1_000_000;
/// Microseconds a day.
const DAY_US: i64 = 86_400_000_000;

/// The UTC day of `us` microseconds after the grid's start, as a bill-day index.
fn bill_day_of_us(us: i64) -> i64 {
    us.div_euclid(DAY_US) + 1
}

fn at_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(BASE_SECS * 1_000_000 + us).unwrap()
}

/// How an endpoint is billed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Instances: usage type, instance type, count, $/instance-hour, async.
    Instance {
        instance_type: &'static str,
        count: u32,
        rate: &'static str,
        asynchronous: bool,
    },
    /// Serverless of `memory_mb`, with provisioned concurrency or not.
    Serverless { memory_mb: u32, provisioned: bool },
}

struct Endpoint {
    name: &'static str,
    kind: Kind,
    region: &'static str,
    /// Its `team` cost allocation tag.
    team: Option<&'static str>,
}

const M5: &str = "ml.m5.xlarge";
const G5: &str = "ml.g5.xlarge";

const ENDPOINTS: [Endpoint; 6] = [
    Endpoint {
        name: "rt-a",
        kind: Kind::Instance {
            instance_type: M5,
            count: 1,
            rate: "0.23",
            asynchronous: false,
        },
        region: "us-east-1",
        team: Some("alpha"),
    },
    Endpoint {
        name: "rt-b",
        kind: Kind::Instance {
            instance_type: M5,
            count: 2,
            rate: "0.23",
            asynchronous: false,
        },
        region: "us-east-1",
        team: Some("beta"),
    },
    Endpoint {
        name: "queue",
        kind: Kind::Instance {
            instance_type: G5,
            count: 1,
            rate: "1.41",
            asynchronous: true,
        },
        region: "us-east-1",
        team: None,
    },
    Endpoint {
        name: "sls",
        kind: Kind::Serverless {
            memory_mb: 3072,
            provisioned: false,
        },
        region: "us-east-1",
        team: Some("alpha"),
    },
    Endpoint {
        name: "pc",
        kind: Kind::Serverless {
            memory_mb: 2048,
            provisioned: true,
        },
        region: "us-east-1",
        team: Some("beta"),
    },
    Endpoint {
        name: "eu",
        kind: Kind::Instance {
            instance_type: M5,
            count: 1,
            rate: "0.26",
            asynchronous: false,
        },
        region: "eu-west-1",
        team: Some("alpha"),
    },
];

/// Serverless per-second rates: on demand 3 GB and 2 GB, provisioned
/// concurrency's inference duration (2 GB).
const SLS3_RATE: &str = "0.00006";
const SLS2_RATE: &str = "0.00004";
const PC_RATE: &str = "0.0000385";
/// Data processed, $/GB: the rates a day's receipts may carry (AWS changing
/// its price), the price source's the second.
const DATA_RATE: [&str; 3] = ["0.016", "0.02", "0.018"];

fn hosting(instance_type: &str) -> UsageClass {
    UsageClass::Hosting {
        instance_type: instance_type.into(),
    }
}

/// The price source's rates ("now"); none for serverless 2 GB and ml.zz9.large.
fn listed(class: &UsageClass) -> Option<Ex> {
    let rate = match class {
        UsageClass::Hosting { instance_type } if instance_type == M5 => "0.23",
        UsageClass::AsyncInference { .. } => "1.41",
        UsageClass::Serverless { memory_gb: 3 } => SLS3_RATE,
        UsageClass::DataIn | UsageClass::DataOut => DATA_RATE[1],
        UsageClass::Storage => "0.14",
        _ => return None,
    };
    Some(Ex::parse(rate))
}

/// A price source of [`listed`]'s rates.
#[derive(Debug)]
struct Listed;

impl PriceSource for Listed {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> crate::pricing::BoxFuture<'a, Result<crate::pricing::Rate, crate::pricing::PriceError>>
    {
        Box::pin(async move {
            let class = match key {
                PriceKey::Hosting { instance_type, .. } => hosting(instance_type),
                PriceKey::AsyncInference { instance_type, .. } => UsageClass::AsyncInference {
                    instance_type: instance_type.clone(),
                },
                PriceKey::Serverless { memory_gb, .. } => UsageClass::Serverless {
                    memory_gb: *memory_gb,
                },
                PriceKey::DataIn { .. } => UsageClass::DataIn,
                PriceKey::DataOut { .. } => UsageClass::DataOut,
                PriceKey::Storage { .. } => UsageClass::Storage,
                _ => UsageClass::Other {
                    usage_type: String::new(),
                },
            };
            match listed(&class) {
                Some(rate) => Ok(crate::pricing::Rate::new(
                    key.clone(),
                    rate.plain().parse().unwrap(),
                    crate::pricing::Provenance::new(crate::pricing::PriceOrigin::Live),
                )),
                None => Err(crate::pricing::PriceError::NotFound { key: key.clone() }),
            }
        })
    }
}

/// The usage types billed: name, unit, the class AWS's rules make it (data in
/// and out under another kind's prefix is data all the same; provisioned
/// concurrency's `Mem-` and `Usage-` are one charge), and its row by usage type.
struct Billed {
    usage_type: &'static str,
    unit: &'static str,
    class: fn() -> UsageClass,
    group: &'static str,
}

const BILLED: [Billed; 13] = [
    Billed {
        usage_type: "USE1-Host:ml.m5.xlarge",
        unit: "Hrs",
        class: || hosting(M5),
        group: "Host:ml.m5.xlarge",
    },
    Billed {
        usage_type: "USE1-AsyncInf:ml.g5.xlarge",
        unit: "Hrs",
        class: || UsageClass::AsyncInference {
            instance_type: G5.into(),
        },
        group: "AsyncInf:ml.g5.xlarge",
    },
    Billed {
        usage_type: "USE1-ServerlessInf:Mem-3GB",
        unit: "Second",
        class: || UsageClass::Serverless { memory_gb: 3 },
        group: "ServerlessInf:Mem-3GB",
    },
    Billed {
        usage_type: "USE1-ServerlessInf:Mem-2GB",
        unit: "Second",
        class: || UsageClass::Serverless { memory_gb: 2 },
        group: "ServerlessInf:Mem-2GB",
    },
    Billed {
        usage_type: "USE1-ProvisionedConcurrency:Mem-2GB",
        unit: "Second",
        class: || UsageClass::ProvisionedConcurrency { memory_gb: 2 },
        group: "ProvisionedConcurrency:2GB",
    },
    Billed {
        usage_type: "USE1-ProvisionedConcurrency:Usage-2GB",
        unit: "Second",
        class: || UsageClass::ProvisionedConcurrency { memory_gb: 2 },
        group: "ProvisionedConcurrency:2GB",
    },
    Billed {
        usage_type: "USE1-Hst:Data-Bytes-In",
        unit: "GB",
        class: || UsageClass::DataIn,
        group: "Hst:Data-Bytes-In",
    },
    Billed {
        usage_type: "USE1-AsyncInf:Data-Bytes-In",
        unit: "GB",
        class: || UsageClass::DataIn,
        group: "Hst:Data-Bytes-In",
    },
    Billed {
        usage_type: "USE1-Hst:Data-Bytes-Out",
        unit: "GB",
        class: || UsageClass::DataOut,
        group: "Hst:Data-Bytes-Out",
    },
    Billed {
        usage_type: "USE1-Host:VolumeUsage.gp2",
        unit: "GB-Mo",
        class: || UsageClass::Storage,
        group: "Host:VolumeUsage",
    },
    Billed {
        usage_type: "USE1-Train:ml.p3.2xlarge",
        unit: "Hrs",
        class: || UsageClass::Other {
            usage_type: "Train:ml.p3.2xlarge".into(),
        },
        group: "Train:ml.p3.2xlarge",
    },
    Billed {
        usage_type: "USE1-Notebk:ml.t3.medium",
        unit: "Hrs",
        class: || UsageClass::Other {
            usage_type: "Notebk:ml.t3.medium".into(),
        },
        group: "Notebk:ml.t3.medium",
    },
    Billed {
        usage_type: "USE1-Host:ml.zz9.large",
        unit: "Hrs",
        class: || hosting("ml.zz9.large"),
        group: "Host:ml.zz9.large",
    },
];

const TEAMS: [&str; 3] = ["alpha", "beta", ""];

// ---------------------------------------------------------------------------
// Generated cases.

/// A line's state: absent, priced, unpriced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Line {
    None,
    Priced,
    Unpriced,
}

#[derive(Debug, Clone)]
struct CallSpec {
    /// Grid steps since the previous call's end (at least 1), or since the
    /// process's start for its first.
    gap: i64,
    /// Microseconds after those steps: 0 (on the grid), or any up to a step,
    /// off the grid.
    off_grid_us: i64,
    /// Grid steps it lasted (1 or 2).
    latency: i64,
    compute: Line,
    /// The compute line's cost, pico-dollars.
    compute_pico: u64,
    data_in: (Line, u64),
    data_out: (Line, u64),
    fee: Line,
    /// No region on the receipt (written before receipts carried one).
    no_region: bool,
    /// 0 ok, 1 error, 2 cancelled.
    outcome: u8,
    /// A serverless call beyond the provisioned concurrency.
    beyond: bool,
}

#[derive(Debug, Clone)]
struct ProcessSpec {
    /// Grid steps from the grid's start (first process) or after the previous
    /// process's last call (a restart).
    start: i64,
    calls: Vec<CallSpec>,
}

#[derive(Debug, Clone)]
struct LedgerSpec {
    endpoint: usize,
    /// The process's first receipts the ledger does not hold (begun late).
    dropped: usize,
    processes: Vec<ProcessSpec>,
}

#[derive(Debug, Clone)]
struct Amount {
    mantissa: i128,
    scale: u32,
    scientific: bool,
}

#[derive(Debug, Clone)]
struct BillSpec {
    day: i64,
    team: usize,
    billed: usize,
    cost: Amount,
    quantity: (u64, u32),
}

#[derive(Debug, Clone)]
struct Case {
    ledgers: Vec<LedgerSpec>,
    order: Vec<prop::sample::Index>,
    bill: Vec<BillSpec>,
    estimated: Vec<bool>,
    /// Each bill day's data rate, of [`DATA_RATE`].
    data_rates: Vec<usize>,
    /// Whether receipts of each bill day carry their data lines: a day without
    /// is valued at the rate of the nearest day before, else after.
    data_days: Vec<bool>,
    /// The window: since and until as bill-day indexes.
    since: i64,
    until: i64,
    /// Tolerance, in cents.
    tolerance_cents: i64,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![2 => Just(Line::None), 6 => Just(Line::Priced), 1 => Just(Line::Unpriced)]
}

fn call() -> impl Strategy<Value = CallSpec> {
    (
        (
            prop_oneof![1i64..30, 1i64..1_500],
            1i64..=2,
            prop::bool::weighted(0.85),
            // Up to $0.001, or up to $0.05: more than the instance time a
            // day's receipts accrued.
            prop_oneof![4 => 1u64..1_000_000_000, 1 => 1u64..50_000_000_000],
        ),
        ((line(), 1u64..100_000), (line(), 1u64..100_000), line()),
        (
            prop::bool::weighted(0.2),
            0u8..3,
            any::<bool>(),
            prop_oneof![2 => Just(0i64), 1 => 1i64..STEP_US, 1 => 1i64..1_000],
        ),
    )
        .prop_map(
            |(
                (gap, latency, priced, compute_pico),
                (data_in, data_out, fee),
                (no_region, outcome, beyond, off_grid_us),
            )| CallSpec {
                gap,
                off_grid_us,
                latency,
                compute: if priced { Line::Priced } else { Line::Unpriced },
                compute_pico,
                data_in,
                data_out,
                fee,
                no_region,
                outcome,
                beyond,
            },
        )
}

fn process() -> impl Strategy<Value = ProcessSpec> {
    // Anywhere in four days, or within 3 h of the second's start, where
    // ledgers of one endpoint are replicas metering the same instances at once.
    let start = prop_oneof![0i64..4 * DAY_UNITS, DAY_UNITS..DAY_UNITS + 300];
    (start, prop::collection::vec(call(), 3..7))
        .prop_map(|(start, calls)| ProcessSpec { start, calls })
}

fn ledger() -> impl Strategy<Value = LedgerSpec> {
    (
        prop_oneof![3 => 0..2usize, 1 => 0..ENDPOINTS.len()],
        0usize..3,
        prop::collection::vec(process(), 1..3),
    )
        .prop_map(|(endpoint, dropped, processes)| LedgerSpec {
            endpoint,
            dropped,
            processes,
        })
}

fn amount(big: bool) -> impl Strategy<Value = Amount> {
    let normal = (
        prop_oneof![
            Just(0i128),
            1i128..1_000,
            1i128..100_000_000,
            -100_000_000i128..0
        ],
        0u32..=10,
        prop::bool::weighted(0.2),
    );
    // 3 × 10¹¹ to 7 × 10¹¹ USD at 17 places: 29 digits, as many as a Decimal
    // holds (below 2⁹⁶ ≈ 7.9 × 10²⁸), so that any two add up to more.
    let large = (
        3 * 10i128.pow(28)..7 * 10i128.pow(28),
        Just(17u32),
        Just(false),
    );
    let strategy = if big { large.boxed() } else { normal.boxed() };
    strategy.prop_map(|(mantissa, scale, scientific)| Amount {
        mantissa,
        scale,
        scientific,
    })
}

/// The usage types large amounts are billed under: two of them are one kind of
/// charge (provisioned concurrency, data in), and none needs a rate.
const LARGE: [usize; 7] = [4, 5, 6, 7, 9, 10, 11];

fn bill_item(big: bool) -> impl Strategy<Value = BillSpec> {
    let (days, billed) = match big {
        // The window's days.
        true => (1..5i64, prop::sample::select(LARGE.to_vec()).boxed()),
        false => (0..BILL_DAYS, (0..BILLED.len()).boxed()),
    };
    (
        days,
        0..TEAMS.len(),
        billed,
        amount(big),
        (0u64..10_000_000, 0u32..=6),
    )
        .prop_map(|(day, team, billed, cost, quantity)| BillSpec {
            day,
            team,
            billed,
            cost,
            quantity,
        })
}

fn case() -> impl Strategy<Value = Case> {
    let bill = prop::bool::weighted(0.3).prop_flat_map(|big| {
        (
            prop::collection::vec(bill_item(false), 0..30),
            prop::collection::vec(bill_item(big), if big { 2..6 } else { 0..1 }),
        )
            .prop_map(|(mut a, b)| {
                a.extend(b);
                a
            })
    });
    (
        prop::collection::vec(ledger(), 1..7),
        prop::collection::vec(any::<prop::sample::Index>(), 200),
        bill,
        prop::collection::vec(prop::bool::weighted(0.3), BILL_DAYS as usize),
        (
            prop::collection::vec(0..DATA_RATE.len(), BILL_DAYS as usize),
            prop::collection::vec(prop::bool::weighted(0.7), BILL_DAYS as usize),
        ),
        (1i64..=2, 4i64..=5),
        prop_oneof![Just(1i64), 0i64..500],
    )
        .prop_map(
            |(
                ledgers,
                order,
                bill,
                estimated,
                (data_rates, data_days),
                (since, until),
                tolerance_cents,
            )| {
                Case {
                    ledgers,
                    order,
                    bill,
                    estimated,
                    data_rates,
                    data_days,
                    since,
                    until,
                    tolerance_cents,
                }
            },
        )
}

// ---------------------------------------------------------------------------
// Receipts, and the model's view of them.

fn pico(n: u64) -> Ex {
    Ex::new(n, 12)
}

/// The data rate of `bill_day`'s receipts, and whether they carry data lines.
fn data_rate(case: &Case, bill_day: i64) -> (&'static str, bool) {
    let day = usize::try_from(bill_day).unwrap_or(0);
    (
        DATA_RATE[case.data_rates.get(day).copied().unwrap_or(1)],
        case.data_days.get(day).copied().unwrap_or(true),
    )
}

/// One metered cell of the model: a day, endpoint and kind of charge.
#[derive(Debug, Clone)]
struct MCell {
    cost: Ex,
    quantity: Ex,
    allocated: Ex,
    rate: Ex,
}

/// Instance time from and to (µs after the grid's start), and its USD.
type Stretch = (i64, i64, Ex);

#[derive(Debug, Default)]
struct Model {
    /// (bill day, endpoint, class) → the cell.
    cells: BTreeMap<(i64, &'static str, UsageClass), MCell>,
    /// Per endpoint: each run's (a process's in one ledger) increments of
    /// instance time counted, from and to (µs after the grid's start) and USD.
    runs: BTreeMap<&'static str, Vec<Vec<Stretch>>>,
    receipts: u64,
    without_region: u64,
    /// What the notes count, per bill day: of the days reconciled only.
    tallies: BTreeMap<i64, Tally>,
    /// The first and last bill day with a receipt of the region.
    days: Option<(i64, i64)>,
}

/// The receipts of one bill day the notes count.
#[derive(Debug, Default, Clone)]
struct Tally {
    receipts: u64,
    without_region: u64,
    left_out: u64,
    unpriced_lines: u64,
    fees: Ex,
}

impl Tally {
    fn add(mut self, other: &Tally) -> Tally {
        self.receipts += other.receipts;
        self.without_region += other.without_region;
        self.left_out += other.left_out;
        self.unpriced_lines += other.unpriced_lines;
        self.fees = self.fees.add(&other.fees);
        self
    }
}

impl Model {
    fn cell(
        &mut self,
        day: i64,
        endpoint: &'static str,
        class: UsageClass,
        rate: &Ex,
    ) -> &mut MCell {
        self.cells
            .entry((day, endpoint, class))
            .or_insert_with(|| MCell {
                cost: Ex::zero(),
                quantity: Ex::zero(),
                allocated: Ex::zero(),
                rate: rate.clone(),
            })
    }
}

/// A receipt line of `quantity` `unit`s: priced at `rate`, costing `cost`, or
/// unpriced.
fn line_json(
    item: &str,
    unit: &str,
    quantity: &Ex,
    price: Option<(&Ex, &Ex)>,
) -> serde_json::Value {
    let price = match price {
        Some((rate, cost)) => json!({
            "status": "priced", "usd_per_unit": rate.plain(), "cost_usd": cost.plain(),
            "provenance": {"source": "live", "sku": null, "effective_date": null,
                           "fetched_at": null, "note": null}}),
        None => json!({"status": "unpriced", "reason": "no rate"}),
    };
    json!({"item": item, "quantity": quantity.plain(), "unit": unit, "price": price})
}

/// The receipts of every ledger, in each ledger's order, and the model of them.
fn receipts(case: &Case) -> (Vec<Vec<crate::billing::Cost>>, Model) {
    let mut model = Model::default();
    let mut ledgers = Vec::new();
    for (l, spec) in case.ledgers.iter().enumerate() {
        let ep = &ENDPOINTS[spec.endpoint];
        let ours = ep.region == "us-east-1";
        let mut out = Vec::new();
        // Microseconds from the grid's start.
        let mut clock = 0i64;
        for (p, process) in spec.processes.iter().enumerate() {
            let off_grid = process.calls.first().map_or(0, |c| c.off_grid_us);
            let start = clock + process.start.max(1) * STEP_US + off_grid;
            let mut end = start;
            // The process's running figures.
            let mut allocated = Ex::zero();
            // The end and running accrual of the last receipt the ledger's count
            // of this process took, once it started.
            let mut last_counted: Option<(i64, Ex)> = None;
            // The increments counted: from, to, USD.
            let mut increments: Vec<Stretch> = Vec::new();
            let mut next_at = start;
            let calls = process.calls.len();
            for (c, call) in process.calls.iter().enumerate() {
                let at = if c == 0 {
                    start
                } else {
                    next_at + call.gap.max(1) * STEP_US + call.off_grid_us
                };
                let call_end = at + call.latency * STEP_US;
                next_at = call_end;
                end = call_end;
                // The first call of a restarted process, and the last one of a
                // process restarted after, are priced (see `compute_priced`).
                let compute_priced = call.compute == Line::Priced
                    || (p > 0 && c == 0)
                    || (p + 1 < spec.processes.len() && c + 1 == calls);
                let dropped = p == 0 && c < spec.dropped;
                let bill_day = bill_day_of_us(at);
                let mut lines = Vec::new();
                let mut accrual = None;
                let mut notes = Vec::<String>::new();
                let (region, no_region) = if ours && call.no_region {
                    (None, true)
                } else {
                    (Some(ep.region), false)
                };
                let mut cells: Vec<(UsageClass, Ex, Ex, Ex)> = Vec::new();
                let mut unpriced = 0u64;
                let mut fee = Ex::zero();
                // Whether this receipt starts the ledger's count of the process.
                let mut starts_count = false;
                let operation = match ep.kind {
                    Kind::Instance {
                        asynchronous: true, ..
                    } => "InvokeEndpointAsync",
                    _ => "InvokeEndpoint",
                };
                let billing = match ep.kind {
                    Kind::Instance {
                        instance_type,
                        count,
                        ..
                    } => json!({"kind": "instance", "instance_type": instance_type,
                                "instance_count": count}),
                    Kind::Serverless {
                        memory_mb,
                        provisioned,
                    } => json!({"kind": "serverless", "memory_mb": memory_mb,
                                "provisioned_concurrency": if provisioned { Some(1) } else { None }}),
                };
                // Compute.
                let compute_cost = pico(call.compute_pico);
                match ep.kind {
                    Kind::Instance {
                        count,
                        rate,
                        asynchronous,
                        instance_type,
                    } => {
                        let rate = Ex::parse(rate);
                        // Instance-hours of the call: 0.01 h a grid step.
                        let q = Ex::new(call.latency * i64::from(count), 2);
                        if compute_priced {
                            lines.push(line_json(
                                "compute",
                                "instance_hours",
                                &q,
                                Some((&rate, &compute_cost)),
                            ));
                            cells.push((
                                UsageClass::instance_time(instance_type, asynchronous),
                                q,
                                rate.clone(),
                                compute_cost.clone(),
                            ));
                            allocated = allocated.add(&compute_cost);
                            // The process's running accrual: its instances since its
                            // first call began.
                            let hourly = rate.mul(&Ex::new(count, 0));
                            let accrued = running_accrual(&hourly, call_end - start);
                            accrual = Some(json!({"accrued_usd": accrued.plain(),
                                                  "allocated_usd": allocated.plain(),
                                                  "utilisation": null}));
                            if !dropped && ours {
                                match &last_counted {
                                    // A process's first call counts its own time;
                                    // a later first receipt only starts the count.
                                    None if c == 0 => {
                                        increments.push((at, call_end, accrued.clone()))
                                    }
                                    None => starts_count = true,
                                    Some((to, before)) => {
                                        increments.push((*to, call_end, accrued.sub(before)))
                                    }
                                }
                                last_counted = Some((call_end, accrued));
                            }
                        } else {
                            lines.push(line_json("compute", "instance_hours", &q, None));
                            unpriced += 1;
                        }
                    }
                    Kind::Serverless {
                        memory_mb,
                        provisioned,
                    } => {
                        let q = Ex::new(call.latency * GRID_SECS, 0);
                        let beyond = provisioned && call.beyond;
                        let (class, rate) = match (provisioned, beyond) {
                            (true, false) => (
                                UsageClass::ProvisionedConcurrency {
                                    memory_gb: memory_mb / 1024,
                                },
                                PC_RATE,
                            ),
                            (true, true) => {
                                notes.push(format!(
                                    "the call started with 2 calls in flight (itself included), \
                                     beyond the provisioned concurrency of 1: {}",
                                    crate::billing::BEYOND_PROVISIONED_NOTE_END
                                ));
                                (UsageClass::Serverless { memory_gb: 2 }, SLS2_RATE)
                            }
                            _ => (UsageClass::Serverless { memory_gb: 3 }, SLS3_RATE),
                        };
                        let rate = Ex::parse(rate);
                        if compute_priced {
                            lines.push(line_json(
                                "compute",
                                "seconds",
                                &q,
                                Some((&rate, &compute_cost)),
                            ));
                            cells.push((class, q, rate, compute_cost.clone()));
                        } else {
                            lines.push(line_json("compute", "seconds", &q, None));
                            unpriced += 1;
                        }
                    }
                }
                // Data, at the day's rate.
                let (data_rate, data_on) = data_rate(case, bill_day);
                let data_rate = Ex::parse(data_rate);
                for (item, (state, gb_thousandths), class) in [
                    ("data_in", call.data_in, UsageClass::DataIn),
                    ("data_out", call.data_out, UsageClass::DataOut),
                ] {
                    let q = Ex::new(gb_thousandths, 3);
                    let cost = q.mul(&data_rate);
                    match state {
                        _ if !data_on => {}
                        Line::None => {}
                        Line::Priced => {
                            lines.push(line_json(item, "gigabytes", &q, Some((&data_rate, &cost))));
                            cells.push((class, q, data_rate.clone(), cost));
                        }
                        Line::Unpriced => {
                            lines.push(line_json(item, "gigabytes", &q, None));
                            unpriced += 1;
                        }
                    }
                }
                // A per-inference fee, not SageMaker usage.
                let one = Ex::new(1, 0);
                let fee_rate = Ex::parse("0.0005");
                match call.fee {
                    Line::None => {}
                    Line::Priced => {
                        lines.push(line_json(
                            "inference",
                            "calls",
                            &one,
                            Some((&fee_rate, &fee_rate)),
                        ));
                        fee = fee_rate.clone();
                    }
                    Line::Unpriced => {
                        lines.push(line_json("inference", "calls", &one, None));
                        unpriced += 1;
                    }
                }
                let outcome = ["ok", "error", "cancelled"][usize::from(call.outcome)];
                let cost: crate::billing::Cost = serde_json::from_value(json!({
                    "call_id": format!("l{l}p{p}c{c}"),
                    "at": at_us(at).to_rfc3339(),
                    "endpoint": ep.name, "variant": "AllTraffic",
                    "billing": billing, "allocation": "processor_sharing",
                    "usage": {"operation": operation, "latency_us": call.latency * STEP_US,
                              "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic",
                              "outcome": outcome},
                    "lines": lines, "cost_usd": "0", "currency": "USD", "region": region,
                    "running_client_usd": "0", "running_endpoint_usd": "0",
                    "accrual": accrual, "notes": notes
                }))
                .unwrap();
                if dropped {
                    continue;
                }
                out.push(cost);
                let tally = model.tallies.entry(bill_day).or_default();
                if !ours {
                    tally.left_out += 1;
                    continue;
                }
                tally.receipts += 1;
                tally.without_region += u64::from(no_region);
                tally.unpriced_lines += unpriced;
                tally.fees = tally.fees.add(&fee);
                model.receipts += 1;
                model.without_region += u64::from(no_region);
                model.days = Some(match model.days {
                    Some((a, b)) => (a.min(bill_day), b.max(bill_day)),
                    None => (bill_day, bill_day),
                });
                let counting = last_counted.is_some() && !starts_count;
                for (class, q, rate, cost) in cells {
                    let instance = class.is_instance_time();
                    let cell = model.cell(bill_day, ep.name, class, &rate);
                    cell.cost = cell.cost.add(&cost);
                    cell.quantity = cell.quantity.add(&q);
                    // What the calls were allocated since the count started (the
                    // first call's own when it is the process's first).
                    if instance && counting {
                        cell.allocated = cell.allocated.add(&cost);
                    }
                }
            }
            if !increments.is_empty() {
                model.runs.entry(ep.name).or_default().push(increments);
            }
            clock = end;
        }
        ledgers.push(out);
    }
    (ledgers, model)
}

/// Every ledger's receipts, interleaved by `order` (each ledger's kept in order).
fn interleaved(
    ledgers: &[Vec<crate::billing::Cost>],
    order: &[prop::sample::Index],
) -> Vec<(usize, crate::billing::Cost)> {
    let mut next = vec![0usize; ledgers.len()];
    let mut out = Vec::new();
    let mut picks = order.iter().cycle();
    loop {
        let open: Vec<usize> = (0..ledgers.len())
            .filter(|&l| next[l] < ledgers[l].len())
            .collect();
        if open.is_empty() {
            return out;
        }
        let l = open[picks.next().unwrap().index(open.len())];
        out.push((l, ledgers[l][next[l]].clone()));
        next[l] += 1;
    }
}

// ---------------------------------------------------------------------------
// The bill.

impl Amount {
    fn value(&self) -> Ex {
        Ex::new(self.mantissa, self.scale)
    }

    /// As Cost Explorer writes it: plainly, or `1.5E-7`.
    fn text(&self) -> String {
        if !self.scientific || self.mantissa == 0 {
            return self.value().plain();
        }
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let exponent = digits.len() as i64 - 1 - i64::from(self.scale);
        let (first, rest) = digits.split_at(1);
        match rest {
            "" => format!("{sign}{first}E{exponent}"),
            _ => format!("{sign}{first}.{rest}E{exponent}"),
        }
    }
}

/// One group of Cost Explorer's answer: day, tag value, usage type, cost and
/// quantity as written, and their values.
#[derive(Debug, Clone)]
struct Group {
    day: i64,
    team: Option<&'static str>,
    billed: usize,
    cost: String,
    quantity: String,
    cost_value: Ex,
    quantity_value: Ex,
}

/// The answer grouped by tag and usage type, and by usage type alone (each
/// usage type's amounts of every tag added up, as Cost Explorer adds them).
fn bills(case: &Case) -> (Vec<Group>, Vec<Group>) {
    let mut seen = BTreeSet::new();
    let mut by_tag = Vec::new();
    for item in &case.bill {
        if !seen.insert((item.day, item.team, item.billed)) {
            continue;
        }
        let quantity = Ex::new(item.quantity.0, item.quantity.1);
        by_tag.push(Group {
            day: item.day,
            team: Some(TEAMS[item.team]),
            billed: item.billed,
            cost: item.cost.text(),
            quantity: quantity.plain(),
            cost_value: item.cost.value(),
            quantity_value: quantity,
        });
    }
    let mut merged: BTreeMap<(i64, usize), (Ex, Ex)> = BTreeMap::new();
    for g in &by_tag {
        let sum = merged
            .entry((g.day, g.billed))
            .or_insert_with(|| (Ex::zero(), Ex::zero()));
        sum.0 = sum.0.add(&g.cost_value);
        sum.1 = sum.1.add(&g.quantity_value);
    }
    let by_type = merged
        .into_iter()
        .map(|((day, billed), (cost, quantity))| Group {
            day,
            team: None,
            billed,
            cost: cost.plain(),
            quantity: quantity.plain(),
            cost_value: cost,
            quantity_value: quantity,
        })
        .collect();
    (by_tag, by_type)
}

/// Cost Explorer answering `groups`, every bill day marked as `estimated` says.
fn cost_explorer(groups: Vec<Group>, estimated: Vec<bool>, tag: bool) -> Rule {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group as CeGroup, MetricValue, ResultByTime};
    let groups = Arc::new(groups);
    mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_output(move || {
        let metric =
            |amount: &str, unit: &str| MetricValue::builder().amount(amount).unit(unit).build();
        let mut out = GetCostAndUsageOutput::builder();
        for day in 0..BILL_DAYS {
            let mut result = ResultByTime::builder()
                .time_period(
                    DateInterval::builder()
                        .start(day_of(day).to_string())
                        .end(day_of(day + 1).to_string())
                        .build()
                        .unwrap(),
                )
                .estimated(estimated[day as usize]);
            for g in groups.iter().filter(|g| g.day == day) {
                let billed = &BILLED[g.billed];
                let mut group = CeGroup::builder();
                if tag {
                    group = group.keys(format!("team${}", g.team.unwrap_or_default()));
                }
                result = result.groups(
                    group
                        .keys(billed.usage_type)
                        .metrics("AmortizedCost", metric(&g.cost, "USD"))
                        .metrics("UsageQuantity", metric(&g.quantity, billed.unit))
                        .build(),
                );
            }
            out = out.results_by_time(result.build());
        }
        out.build()
    })
}

/// DescribeEndpoint and ListTags of every endpoint: its `team` tag, if any.
fn tags() -> Vec<Rule> {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    let arn = |name: &str| format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}");
    let mut rules = Vec::new();
    for ep in &ENDPOINTS {
        let (name, team) = (ep.name, ep.team);
        rules.push(
            mock!(aws_sdk_sagemaker::Client::describe_endpoint)
                .match_requests(move |r| r.endpoint_name() == Some(name))
                .then_output(move || {
                    DescribeEndpointOutput::builder()
                        .endpoint_name(name)
                        .endpoint_arn(arn(name))
                        .build()
                }),
        );
        rules.push(
            mock!(aws_sdk_sagemaker::Client::list_tags)
                .match_requests(move |r| r.resource_arn() == Some(arn(name).as_str()))
                .then_output(move || {
                    let other = aws_sdk_sagemaker::types::Tag::builder()
                        .key("owner")
                        .value("ops")
                        .build();
                    let mut out = ListTagsOutput::builder().tags(other);
                    if let Some(team) = team {
                        out = out.tags(
                            aws_sdk_sagemaker::types::Tag::builder()
                                .key("team")
                                .value(team)
                                .build(),
                        );
                    }
                    out.build()
                }),
        );
    }
    rules
}

fn account(cost_explorer: &Rule, sagemaker: &[Rule]) -> Account {
    let sagemaker: Vec<&Rule> = sagemaker.iter().collect();
    let sts = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account("123456789012")
            .build()
    });
    Account {
        region: "us-east-1".into(),
        sagemaker: mocked_client!(aws_sdk_sagemaker, &sagemaker),
        cloudwatch: mocked_client!(aws_sdk_cloudwatch, &[]),
        cost_explorer: mocked_client!(aws_sdk_costexplorer, &[cost_explorer]),
        sts: mocked_client!(aws_sdk_sts, &[&sts]),
        prices: Arc::new(Listed),
        time: SharedTimeSource::new(ManualTimeSource::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS),
        )),
    }
}

// ---------------------------------------------------------------------------
// The expected reconciliation.

/// Both sides of one day, group and kind of charge.
#[derive(Debug, Clone)]
struct ECell {
    billed: Ex,
    billed_quantity: Ex,
    unit: Option<&'static str>,
    cost: Ex,
    quantity: Ex,
    accrued: Ex,
    allocated: Ex,
}

impl Default for ECell {
    fn default() -> ECell {
        ECell {
            billed: Ex::zero(),
            billed_quantity: Ex::zero(),
            unit: None,
            cost: Ex::zero(),
            quantity: Ex::zero(),
            accrued: Ex::zero(),
            allocated: Ex::zero(),
        }
    }
}

/// idle, outside, standing, discount, other, unexplained.
type EParts = [Ex; 6];

fn no_parts() -> EParts {
    std::array::from_fn(|_| Ex::zero())
}

fn add_parts(a: &EParts, b: &EParts) -> EParts {
    std::array::from_fn(|i| a[i].add(&b[i]))
}

/// The parts of one kind of charge, as `docs/account.md` defines them.
fn explain(class: &UsageClass, c: &ECell, rate: Option<&Ex>) -> EParts {
    let mut p = no_parts();
    let (idle, outside, standing, discount, other, unexplained) = (0, 1, 2, 3, 4, 5);
    if matches!(class, UsageClass::Other { .. }) {
        p[other] = c.billed.sub(&c.cost);
        return p;
    }
    if matches!(
        class,
        UsageClass::Storage | UsageClass::ProvisionedConcurrency { .. }
    ) {
        let s = c.billed.sub(&c.cost);
        let at = if s.is_neg() { unexplained } else { standing };
        p[at] = s;
        return p;
    }
    if class.is_instance_time() {
        p[idle] = c.accrued.sub(&c.allocated).max0();
    }
    let seen = c.cost.add(&p[idle]);
    let Some(rate) = rate else {
        p[unexplained] = c.billed.sub(&seen);
        return p;
    };
    let on_demand = c.billed_quantity.mul(rate);
    p[discount] = c.billed.sub(&on_demand);
    let o = on_demand.sub(&seen);
    let at = if o.is_neg() { unexplained } else { outside };
    p[at] = o;
    p
}

#[derive(Debug)]
struct ERow {
    billed: Ex,
    metered: Ex,
    parts: EParts,
    billed_quantity: Ex,
    metered_quantity: Ex,
    unit: Option<&'static str>,
    ratio: Option<Ex>,
}

#[derive(Debug)]
struct EDay {
    billed: Ex,
    metered: Ex,
    parts: EParts,
    gross: Ex,
    estimated: bool,
}

struct Expected {
    rows: BTreeMap<(NaiveDate, String), ERow>,
    days: BTreeMap<NaiveDate, EDay>,
    /// Kinds of charge billed or metered with no rate anywhere.
    no_rate: BTreeSet<String>,
    /// Every figure of the reconciliation added up in magnitude, at the most
    /// places any has: when it does not fit a `Decimal`, a sum may not either.
    headroom: Ex,
}

fn group_of(class: &UsageClass) -> &'static str {
    BILLED
        .iter()
        .find(|b| (b.class)() == *class)
        .map(|b| b.group)
        .unwrap()
}

fn team_group(team: Option<&str>) -> String {
    match team {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => crate::report::UNTAGGED.to_owned(),
    }
}

/// A process's running accrual after `us` microseconds of its instances at
/// `hourly` USD an hour, as a receipt writes it: at 12 places (half to even;
/// exact on the grid, n steps of 36 s being n/100 h).
fn running_accrual(hourly: &Ex, us: i64) -> Ex {
    let n = &hourly.m * BigInt::from(us) * pow10(12);
    let d = BigInt::from(3_600_000_000u64) * pow10(hourly.s);
    Ex::new(div_half_even(&n, &d), 12).normalized()
}

/// `usd × part ÷ whole`, rounded toward zero at 18 places: a share of an
/// amount over part of its time, as `docs/account.md` rounds it.
fn share_down(usd: &Ex, part: i64, whole: i64) -> Ex {
    // (m × 10^-s) × part ÷ whole = (m × part × 10¹⁸ ÷ (whole × 10^s)) × 10⁻¹⁸,
    // BigInt's division truncating toward zero.
    let n = &usd.m * BigInt::from(part) * pow10(18);
    let d = BigInt::from(whole) * pow10(usd.s);
    Ex::new(n / d, 18)
}

/// Instance time per bill day and endpoint, as `docs/account.md` tells it: each
/// run's increments split at UTC midnight in proportion to time (each day but
/// the last its share rounded toward zero at 18 places, the last day what is
/// left), a run's pieces of a day one stretch; time several runs (replicas)
/// cover counted once, at the highest of their shares of it.
fn accrued(model: &Model) -> BTreeMap<(i64, &'static str), Ex> {
    let mut out = BTreeMap::new();
    for (endpoint, runs) in &model.runs {
        // Per bill day, each run's stretch: from, to, USD.
        let mut days: BTreeMap<i64, Vec<Stretch>> = BTreeMap::new();
        for run in runs {
            let mut stretches: BTreeMap<i64, Stretch> = BTreeMap::new();
            for (from, to, usd) in run {
                let (mut start, mut given) = (*from, Ex::zero());
                while start < *to {
                    let midnight = (start.div_euclid(DAY_US) + 1) * DAY_US;
                    let (stop, piece) = if midnight < *to {
                        let piece = share_down(usd, midnight - start, to - from);
                        given = given.add(&piece);
                        (midnight, piece)
                    } else {
                        (*to, usd.sub(&given))
                    };
                    let s =
                        stretches
                            .entry(bill_day_of_us(start))
                            .or_insert((start, stop, Ex::zero()));
                    s.0 = s.0.min(start);
                    s.1 = s.1.max(stop);
                    s.2 = s.2.add(&piece);
                    start = stop;
                }
            }
            for (day, stretch) in stretches {
                days.entry(day).or_default().push(stretch);
            }
        }
        for (day, stretches) in days {
            out.insert((day, *endpoint), counted_once(&stretches));
        }
    }
    out
}

/// What `stretches` (runs' of one variant and day: from, to, USD) accrued, each
/// stretch of time between their ends that several cover counted once: at the
/// highest of their shares of it (each its amount × that time ÷ its own time,
/// rounded toward zero at 18 places).
fn counted_once(stretches: &[Stretch]) -> Ex {
    let mut bounds: Vec<i64> = stretches.iter().flat_map(|s| [s.0, s.1]).collect();
    bounds.sort();
    bounds.dedup();
    let mut usd = stretches.iter().fold(Ex::zero(), |sum, s| sum.add(&s.2));
    for w in bounds.windows(2) {
        let shares: Vec<Ex> = stretches
            .iter()
            .filter(|s| s.0 <= w[0] && s.1 >= w[1])
            .map(|s| share_down(&s.2, w[1] - w[0], s.1 - s.0))
            .collect();
        if shares.len() > 1 {
            let highest = shares.iter().max_by(|a, b| a.cmp(b)).unwrap();
            for share in &shares {
                usd = usd.sub(share);
            }
            usd = usd.add(highest);
        }
    }
    usd
}

fn expected(case: &Case, model: &Model, groups: &[Group], tag: bool) -> Expected {
    let window = |day: i64| case.since <= day && day < case.until;
    let mut cells: BTreeMap<(i64, String, UsageClass), ECell> = BTreeMap::new();
    for g in groups.iter().filter(|g| window(g.day)) {
        let billed = &BILLED[g.billed];
        let group = match tag {
            true => team_group(g.team),
            false => billed.group.to_owned(),
        };
        let c = cells.entry((g.day, group, (billed.class)())).or_default();
        c.billed = c.billed.add(&g.cost_value);
        c.billed_quantity = c.billed_quantity.add(&g.quantity_value);
        c.unit = Some(billed.unit);
    }
    let group = |endpoint: &str, class: &UsageClass| match tag {
        true => team_group(ENDPOINTS.iter().find(|e| e.name == endpoint).unwrap().team),
        false => group_of(class).to_owned(),
    };
    let mut metered_rates: BTreeMap<(UsageClass, i64), Ex> = BTreeMap::new();
    for ((day, endpoint, class), m) in model.cells.iter().filter(|((d, _, _), _)| window(*d)) {
        let c = cells
            .entry((*day, group(endpoint, class), class.clone()))
            .or_default();
        c.cost = c.cost.add(&m.cost);
        c.quantity = c.quantity.add(&m.quantity);
        c.allocated = c.allocated.add(&m.allocated);
        metered_rates.insert((class.clone(), *day), m.rate.clone());
    }
    for ((day, endpoint), usd) in accrued(model).into_iter().filter(|((d, _), _)| window(*d)) {
        let ep = ENDPOINTS.iter().find(|e| e.name == endpoint).unwrap();
        let Kind::Instance {
            instance_type,
            asynchronous,
            ..
        } = ep.kind
        else {
            unreachable!()
        };
        let class = UsageClass::instance_time(instance_type, asynchronous);
        let c = cells
            .entry((day, group(endpoint, &class), class))
            .or_default();
        c.accrued = c.accrued.add(&usd);
    }
    // The receipts' rate of the day, else the nearest day's before, else after,
    // else the price source's.
    let rate_on = |class: &UsageClass, day: i64| -> Option<Ex> {
        let mut of_class = metered_rates.iter().filter(|((c, _), _)| c == class);
        let before = of_class.clone().rfind(|((_, d), _)| *d <= day);
        let after = of_class.find(|((_, d), _)| *d >= day);
        match before.or(after) {
            Some((_, rate)) => Some(rate.clone()),
            None => listed(class),
        }
    };
    let mut no_rate = BTreeSet::new();
    let mut rows: BTreeMap<(NaiveDate, String), ERow> = BTreeMap::new();
    let mut days: BTreeMap<NaiveDate, EDay> = BTreeMap::new();
    for day in case.since..case.until {
        days.insert(
            day_of(day),
            EDay {
                billed: Ex::zero(),
                metered: Ex::zero(),
                parts: no_parts(),
                gross: Ex::zero(),
                estimated: case.estimated[day as usize],
            },
        );
    }
    let mut headroom = Ex::zero();
    for ((day, group, class), c) in &cells {
        let rate = rate_on(class, *day);
        let priceable = !matches!(
            class,
            UsageClass::Other { .. } | UsageClass::ProvisionedConcurrency { .. }
        );
        if rate.is_none() && priceable {
            no_rate.insert(class.to_string());
        }
        let parts = explain(class, c, rate.as_ref());
        for figure in [
            &c.billed,
            &c.cost,
            &c.accrued,
            &c.allocated,
            &c.billed_quantity,
            &c.quantity,
        ] {
            headroom = headroom.add(&figure.abs());
        }
        if let Some(rate) = &rate {
            headroom = headroom.add(&c.billed_quantity.mul(rate).abs());
        }
        let d = days.get_mut(&day_of(*day)).unwrap();
        d.gross = d.gross.add(&parts[5].round(12).abs());
        let row = rows
            .entry((day_of(*day), group.clone()))
            .or_insert_with(|| ERow {
                billed: Ex::zero(),
                metered: Ex::zero(),
                parts: no_parts(),
                billed_quantity: Ex::zero(),
                metered_quantity: Ex::zero(),
                unit: None,
                ratio: None,
            });
        row.billed = row.billed.add(&c.billed);
        row.metered = row.metered.add(&c.cost);
        row.parts = add_parts(&row.parts, &parts);
        row.billed_quantity = row.billed_quantity.add(&c.billed_quantity);
        row.metered_quantity = row.metered_quantity.add(&c.quantity);
        row.unit = c.unit.or(row.unit);
        // Billed ÷ the billed quantity at on-demand prices, to 4 places; none for
        // provisioned concurrency, two usage types at two rates in one row.
        row.ratio = rate
            .filter(|_| !matches!(class, UsageClass::ProvisionedConcurrency { .. }))
            .map(|r| c.billed_quantity.mul(&r))
            .and_then(|on_demand| {
                (on_demand.m != BigInt::from(0)).then(|| {
                    let s = on_demand.s.max(c.billed.s);
                    let (n, d) = (c.billed.at(s) * pow10(4), on_demand.at(s));
                    let (n, d) = if d < BigInt::from(0) {
                        (-n, -d)
                    } else {
                        (n, d)
                    };
                    Ex::new(div_half_even(&n, &d), 4)
                })
            });
    }
    for ((day, _), row) in &mut rows {
        // As a row shows them: each part at 12 places, but the unexplained
        // one, which is what billed − metered (at 12 places) leaves of them.
        let mut shown: EParts = std::array::from_fn(|i| row.parts[i].round(12));
        let difference = row.billed.sub(&row.metered.round(12));
        shown[5] = (0..5).fold(difference, |left, i| left.sub(&shown[i]));
        row.parts = shown;
        let d = days.get_mut(day).unwrap();
        d.billed = d.billed.add(&row.billed);
        d.metered = d.metered.add(&row.metered.round(12));
        d.parts = add_parts(&d.parts, &row.parts);
    }
    Expected {
        rows,
        days,
        no_rate,
        headroom,
    }
}

/// Whether every figure of the reconciliation, added up in magnitude (8 times
/// over, for the parts and the day's totals), fits a `Decimal` at the most
/// places any figure has.
fn far_from_the_limit(headroom: &Ex, most_places: u32) -> bool {
    most_places <= 28 && Ex::new(headroom.at(headroom.s.max(most_places)) * 8, 0).fits()
}

// ---------------------------------------------------------------------------
// The check.

/// Cost Explorer's largest amount a group may carry.
fn trillion() -> Ex {
    Ex::new(1_000_000_000_000u64, 0)
}

fn check_parts(what: &str, code: &super::Parts, model: &EParts) -> Result<(), TestCaseError> {
    let got = [
        code.idle_instance_usd,
        code.outside_usd,
        code.standing_usd,
        code.discount_usd,
        code.other_usd,
        code.unexplained_usd,
    ];
    const NAMES: [&str; 6] = [
        "idle",
        "outside",
        "standing",
        "discount",
        "other",
        "unexplained",
    ];
    for i in 0..6 {
        let want = &model[i];
        prop_assert!(
            want.same(got[i]),
            "{}: {} is {}, the model's {}",
            what,
            NAMES[i],
            got[i],
            want.plain()
        );
    }
    Ok(())
}

fn check(
    case: &Case,
    model: &Model,
    groups: &[Group],
    tag: bool,
    result: Result<Reconciliation, AccountError>,
) -> Result<(), TestCaseError> {
    let by = if tag { "by tag" } else { "by usage type" };
    let window = |day: i64| case.since <= day && day < case.until;
    let unreadable = groups.iter().filter(|g| window(g.day)).find(|g| {
        [&g.cost_value, &g.quantity_value]
            .iter()
            .any(|v| !v.fits() || v.abs().cmp(&trillion()) == Ordering::Greater)
    });
    let want = expected(case, model, groups, tag);
    let r = match result {
        Err(err) => {
            let text = err.to_string();
            if let Some(g) = unreadable {
                prop_assert!(
                    text.contains("GetCostAndUsage"),
                    "{}: {} refused as {}",
                    by,
                    g.cost,
                    text
                );
                return Ok(());
            }
            prop_assert!(
                text.contains("needs more digits than a Decimal holds")
                    && !far_from_the_limit(&want.headroom, want.headroom.s),
                "{}: refused: {}",
                by,
                text
            );
            return Ok(());
        }
        Ok(r) => r,
    };
    prop_assert!(unreadable.is_none(), "{}: {:?} read", by, unreadable);
    // Rows: one per day and group, each figure the model's.
    let got: Vec<(NaiveDate, String)> = r
        .rows
        .iter()
        .map(|row| (row.day, row.group.clone()))
        .collect();
    let keys: Vec<(NaiveDate, String)> = want.rows.keys().cloned().collect();
    prop_assert_eq!(&got, &keys, "{}: the rows", by);
    for row in &r.rows {
        let e = &want.rows[&(row.day, row.group.clone())];
        let what = format!("{by}: {} {}", row.day, row.group);
        prop_assert!(
            e.billed.same(row.billed_usd),
            "{}: billed {}, the model's {}",
            what,
            row.billed_usd,
            e.billed.plain()
        );
        prop_assert!(
            e.metered.round(12).same(row.metered_usd),
            "{}: metered {}, the model's {}",
            what,
            row.metered_usd,
            e.metered.plain()
        );
        let difference = e.billed.sub(&e.metered.round(12));
        prop_assert!(
            difference.same(row.difference_usd),
            "{}: difference {}, the model's {}",
            what,
            row.difference_usd,
            difference.plain()
        );
        check_parts(&what, &row.parts, &e.parts)?;
        prop_assert_eq!(
            row.estimated,
            case.estimated[(row.day - day_of(0)).num_days() as usize],
            "{}",
            what
        );
        if tag {
            prop_assert!(
                row.billed_quantity.is_none()
                    && row.metered_quantity.is_none()
                    && row.unit.is_none()
                    && row.effective_rate_ratio.is_none(),
                "{}: {:?}",
                what,
                row
            );
        } else {
            prop_assert!(
                row.billed_quantity
                    .is_some_and(|q| e.billed_quantity.same(q)),
                "{}: billed quantity {:?}, the model's {}",
                what,
                row.billed_quantity,
                e.billed_quantity.plain()
            );
            prop_assert!(
                row.metered_quantity
                    .is_some_and(|q| e.metered_quantity.same(q)),
                "{}: metered quantity {:?}, the model's {}",
                what,
                row.metered_quantity,
                e.metered_quantity.plain()
            );
            prop_assert_eq!(row.unit.as_deref(), e.unit, "{}", what);
            match (&e.ratio, row.effective_rate_ratio) {
                (Some(ratio), Some(got)) => prop_assert!(
                    ratio.same(got),
                    "{}: ratio {}, the model's {}",
                    what,
                    got,
                    ratio.plain()
                ),
                (None, None) => {}
                (ratio, got) => {
                    prop_assert!(false, "{}: ratio {:?}, the model's {:?}", what, got, ratio)
                }
            }
        }
    }
    // Days: every day of the window, its totals and verdict.
    let got: Vec<NaiveDate> = r.days.iter().map(|d| d.day).collect();
    let keys: Vec<NaiveDate> = want.days.keys().copied().collect();
    prop_assert_eq!(&got, &keys, "{}: the days", by);
    let tolerance = Decimal::new(case.tolerance_cents, 2);
    let now: DateTime<Utc> = DateTime::from_timestamp(NOW_SECS as i64, 0).unwrap();
    for d in &r.days {
        let e = &want.days[&d.day];
        let what = format!("{by}: {}", d.day);
        prop_assert!(
            e.billed.same(d.billed_usd),
            "{}: billed {}, the model's {}",
            what,
            d.billed_usd,
            e.billed.plain()
        );
        prop_assert!(
            e.metered.same(d.metered_usd),
            "{}: metered {}, the model's {}",
            what,
            d.metered_usd,
            e.metered.plain()
        );
        let difference = e.billed.sub(&e.metered);
        prop_assert!(
            difference.same(d.difference_usd),
            "{}: difference {}, the model's {}",
            what,
            d.difference_usd,
            difference.plain()
        );
        check_parts(&what, &d.parts, &e.parts)?;
        prop_assert!(
            e.gross.same(d.unexplained_gross_usd),
            "{}: Σ|unexplained| {}, the model's {}",
            what,
            d.unexplained_gross_usd,
            e.gross.plain()
        );
        prop_assert_eq!(d.estimated, e.estimated, "{}", what);
        // Usage may still be coming in until 48 h after the day's end.
        let settled = (d.day + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            + chrono::Duration::hours(48);
        let tol = Ex::of(tolerance);
        let verdict = if e.estimated && now < settled {
            Verdict::NotSettled
        } else if difference.abs().cmp(&tol) != Ordering::Greater {
            Verdict::Agrees
        } else if e.gross.cmp(&tol) != Ordering::Greater {
            Verdict::Explained
        } else {
            Verdict::Differs
        };
        prop_assert_eq!(d.verdict, verdict, "{}", what);
    }
    // Notes: their counts are of the receipts of the days reconciled.
    let within = model
        .tallies
        .range(case.since..case.until.max(case.since))
        .fold(Tally::default(), |all, (_, day)| all.add(day));
    let has = |start: &str| r.notes.iter().any(|n| n.starts_with(start));
    let plural = |n: u64| {
        if n == 1 {
            "1 receipt".to_owned()
        } else {
            format!("{n} receipts")
        }
    };
    prop_assert_eq!(
        has("no receipts:"),
        model.receipts == 0,
        "{}: {:?}",
        by,
        r.notes
    );
    prop_assert_eq!(
        has("no receipts of these days:"),
        model.receipts > 0 && within.receipts == 0,
        "{}: {:?}",
        by,
        r.notes
    );
    let unpriced = match within.unpriced_lines {
        1 => "1 receipt line is unpriced".to_owned(),
        n => format!("{n} receipt lines are unpriced"),
    };
    prop_assert_eq!(
        has(&unpriced),
        within.unpriced_lines > 0,
        "{}: {:?}",
        by,
        r.notes
    );
    let fees = within.fees.normalized().plain();
    prop_assert_eq!(
        has(&format!("${fees} of per-call and per-token fees")),
        within.fees.m != BigInt::from(0),
        "{}: {:?}",
        by,
        r.notes
    );
    prop_assert_eq!(
        has(&format!(
            "{} of eu-west-1 left out",
            plural(within.left_out)
        )),
        within.left_out > 0,
        "{}: {:?}",
        by,
        r.notes
    );
    let carry = match within.without_region {
        1 => "1 receipt carries".to_owned(),
        n => format!("{n} receipts carry"),
    };
    prop_assert_eq!(
        has(&format!("{carry} no region")),
        within.without_region > 0,
        "{}: {:?}",
        by,
        r.notes
    );
    let outside = model
        .days
        .is_some_and(|(a, b)| a < case.since || b >= case.until);
    prop_assert_eq!(has("receipts from "), outside, "{}: {:?}", by, r.notes);
    let noted: BTreeSet<String> = r
        .notes
        .iter()
        .filter_map(|n| n.strip_prefix("no on-demand rate for "))
        .map(|n| n.split(" in us-east-1").next().unwrap().to_owned())
        .collect();
    prop_assert_eq!(&noted, &want.no_rate, "{}: {:?}", by, r.notes);
    Ok(())
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let (ledgers, model) = receipts(case);
    let mut metered = Metered::new("us-east-1");
    for (l, cost) in interleaved(&ledgers, &case.order) {
        metered
            .add(&format!("l{l}.jsonl"), &cost)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    prop_assert_eq!(metered.receipts(), model.receipts);
    prop_assert_eq!(metered.without_region(), model.without_region);
    let (by_tag, by_type) = bills(case);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = ReconcileOptions::new(day_of(case.since), day_of(case.until))
        .tolerance_usd(Decimal::new(case.tolerance_cents, 2));
    let result = rt.block_on(
        account(
            &cost_explorer(by_type.clone(), case.estimated.clone(), false),
            &[],
        )
        .reconcile(&metered, &options),
    );
    check(case, &model, &by_type, false, result)?;
    let options = options.group_by(GroupBy::Tag("team".into()));
    let result = rt.block_on(
        account(
            &cost_explorer(by_tag.clone(), case.estimated.clone(), true),
            &tags(),
        )
        .reconcile(&metered, &options),
    );
    check(case, &model, &by_tag, true, result)
}

proptest! {
    // Each case reconciles twice through the SDK's mocked clients: 160 take about
    // 8 s in a debug build.
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Whatever the ledgers, their order and the bill, every row and day of the
    /// reconciliation, by usage type and by tag, is the model's to the last
    /// digit, or a sum too long for a `Decimal` is refused.
    #[test]
    fn a_reconciliation_is_the_exact_models_by_usage_type_and_by_tag(case in case()) {
        run(&case)?;
    }
}
