//! A model-based property test of the comparison: each plan's cost line, the cheapest
//! plan, and the break-even points between every pair.
//!
//! Random plans (instances by the hour, savings plans, serverless on demand or with
//! provisioned concurrency, prices per call, per 1,000 calls or per million tokens,
//! subscriptions with or without a quota) and workloads (calls, latency, payload
//! sizes, tokens, over a day, a month or a year) are priced by
//! [`Comparison::compute`] and by a model written here from AWS's rules as the docs
//! state them (`docs/cli.md`, the plan models' docs), apart from the code under
//! test: every figure of the model is an exact rational, so its costs, kinks and
//! crossings are exact, and the code's decimals are checked against them.
//!
//! The bounds asserted, and why:
//!
//! - A figure the rules bill as one charge (instance-hours, ML storage, the
//!   commitment, data in, data out, compute per call, a fee amortised) that is a
//!   decimal of at most 28 places fitting a `Decimal` must be the code's exactly:
//!   the code multiplies before it divides. Any other (a division by 1 − discount,
//!   730 h, 2^30 bytes, a subscription's hours or a latency that does not end) is
//!   rounded by `Decimal` to 28 significant digits, or 28 places below 1: within one
//!   unit of the last digit, `10^-28 + |x| × 10^-27`. [`ulp`] allows 100 of those
//!   per figure, and a sum of charges (data in plus data out) each part's bound and
//!   its own ([`sum`]): the code rounds each direction of data on its own.
//! - A cost at a volume adds the rounding of its terms, each within its own size
//!   (`U − included` within that of `U`) when a figure is inexact ([`cost_err`]).
//! - A break-even volume `V*` is `lo − Δ(lo) / slope`: within [`ulp`] of the exact
//!   crossing, plus how far the lines' rounding moves it, their cost bounds over the
//!   smaller slope of the difference beside it, plus the kinks' own bounds. The cost
//!   there is the exact cost at the crossing, within the steeper plan's slope times
//!   that distance and the cost's bound.
//! - Just below and above `V*`, twice that distance away, the cheaper plan is the
//!   one the regions either side name, and the two differ.
//! - Which plan is cheapest, and which rows the table marks `cheapest`, exactly when
//!   every figure is exact; otherwise never a plan the model prices above the least
//!   by more than the bounds. Only a plan that can serve the calls is cheapest: the
//!   model's capacity ([`model_capacity`]: instances `count × hours × 3,600 s × m ÷
//!   latency`, serverless `200 × the period's seconds ÷ latency`) decides exactly
//!   which rows are `over capacity`, listed after the others, and when none can
//!   serve, none is cheapest.
//! - A crossing beyond the least capacity of a pair is named in its point's
//!   `beyond_capacity` and stated as one the plan "would" make "only above" it;
//!   otherwise the range a capacity-bounded plan is cheaper in up to the highest
//!   volumes ends at what "it can serve". A crossing within rounding of the
//!   capacity may be stated either way.
//! - "Never breaks even" exactly when the lines never cross, "only beyond" when
//!   they cross only past [`MAX_BREAK_EVEN_CALLS`], "they cross again beyond" when
//!   they cross within it and past it. Changes of verdict below 10^-28 calls, the
//!   least a `Decimal` holds, are no range of volumes.
//! - A projection's month 1 is a month of today's costs (× 730 h / the period's
//!   hours), and prices that are not AWS's (per call, per token, subscriptions)
//!   hold every month.
//!
//! - A profile from metered calls charges a per-inference fee and counts a quota
//!   over the calls answered with HTTP 2XX, a share `s` of the calls made
//!   (`answered_per_call`: 0, 1/3, 2/3, 0.9 or 1, or none, stated by hand): in
//!   calls made, the fee is `s × X` a call, and the quota lasts `included / s`
//!   calls, each beyond costing `s × overage` (none answered: the fee alone). The
//!   model takes `s` as the profile holds it, a decimal (1/3 rounded at 28 digits
//!   is 0.333…3, as `UsageProfile::from_totals` leaves it), so that a figure exact
//!   for that share must be the code's exactly. A per-token price charges the
//!   tokens reported: each mean on the share `c` of the calls the profile's
//!   `token_calls` says (a ledger's: the calls whose answer could carry tokens;
//!   0, 1/3, 2/3, 0.9 or 1 each way), `c × tokens × price` a call made; not said,
//!   a mean over the calls that reported it (`tokens_reported`) on the answered
//!   calls, `s × tokens × price`, and a mean over every call on every call,
//!   `tokens × price`.
//! - Which plan is cheaper in a range of volumes is decided exactly, but for
//!   rounding residues ([`Diff`]): two plans that cost the same by AWS's rules
//!   cost the same, though a share of 1/3 held at 28 digits leaves their lines
//!   5 × 10^-32 a call apart.
//!
//! Inputs whose products leave a `Decimal` (prices of 10^9 USD, 10^15 calls, 10^9
//! tokens, 1 TiB payloads, 10,000 instances) are an error, never a panic; when they
//! fit, they are checked as above.

use super::{
    CompareError, Comparison, InstancePlan, MAX_BREAK_EVEN_CALLS, PerInferencePlan, PerTokenPlan,
    Period, Plan, PriceTrend, Projection, RateTable, SavingsPlan, SavingsPlanTerm, ServerlessPlan,
    SubscriptionPlan, TokenCalls, TokensReported, TrendRate, UsageProfile,
};
use crate::pricing::PriceKey;
use num_bigint::BigInt;
use num_rational::BigRational;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::time::Duration;

type Q = BigRational;

fn qi(i: i128) -> Q {
    Q::from_integer(BigInt::from(i))
}

/// A decimal as the exact rational it is.
fn q(d: Decimal) -> Q {
    Q::new(BigInt::from(d.mantissa()), BigInt::from(10).pow(d.scale()))
}

fn zero() -> Q {
    qi(0)
}

fn abs(x: &Q) -> Q {
    if *x < zero() { -x.clone() } else { x.clone() }
}

fn max(a: Q, b: Q) -> Q {
    if a >= b { a } else { b }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// `x` as a `Decimal` without rounding, when it is one: a denominator of only 2s and
/// 5s, at most 28 places, and a mantissa within 96 bits.
fn exact_decimal(x: &Q) -> Option<Decimal> {
    let mut den = x.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let (mut twos, mut fives) = (0u32, 0u32);
    while (&den % &two) == BigInt::from(0) {
        den /= &two;
        twos += 1;
    }
    while (&den % &five) == BigInt::from(0) {
        den /= &five;
        fives += 1;
    }
    let places = twos.max(fives);
    if den != BigInt::from(1) || places > 28 {
        return None;
    }
    let mantissa = x.numer() * BigInt::from(10).pow(places) / x.denom();
    let mantissa = i128::try_from(mantissa).ok()?;
    Decimal::try_from_i128_with_scale(mantissa, places).ok()
}

/// What rounding may move a figure `x` by: 100 × (10^-28 + |x| × 10^-27).
fn ulp(x: &Q) -> Q {
    let tiny = Q::new(BigInt::from(1), BigInt::from(10).pow(26));
    let rel = Q::new(BigInt::from(1), BigInt::from(10).pow(25));
    tiny + abs(x) * rel
}

/// The bound on the code's figure for the model's `x`: 0 when `x` is a decimal the
/// code must reach exactly, else [`ulp`].
fn err(x: &Q) -> Q {
    match exact_decimal(x) {
        Some(_) => zero(),
        None => ulp(x),
    }
}

/// The code's `got` is the model's figure `want`: exactly when it has no rounding
/// bound, else within it.
fn agrees(got: Decimal, (want, bound): &(Q, Q)) -> bool {
    if *bound == zero() {
        exact_decimal(want) == Some(got)
    } else {
        abs(&(q(got) - want)) <= *bound
    }
}

// ---------------------------------------------------------------------------------
// What is generated

const TYPES: [&str; 2] = ["ml.m5.xlarge", "ml.g5.2xlarge"];
const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
enum Spec {
    Instance {
        ty: usize,
        count: u32,
        hours: Option<Decimal>,
        volume_gb: Option<u32>,
        /// Calls one instance serves at once, when stated (1 otherwise).
        per_instance: Option<u32>,
    },
    Savings {
        ty: usize,
        count: u32,
        commitment: Decimal,
        discount: Decimal,
        three_years: bool,
        hours: Option<Decimal>,
        volume_gb: Option<u32>,
        per_instance: Option<u32>,
    },
    Serverless {
        gb: u32,
        provisioned: Option<u32>,
    },
    PerCall(Decimal),
    PerThousand(Decimal),
    PerMillionTokens {
        input: Decimal,
        output: Decimal,
    },
    Subscription {
        fee: Decimal,
        period: Period,
        /// Included calls per the subscription's period, and the overage per call.
        quota: Option<(Decimal, Decimal)>,
    },
}

/// Serverless rates of one memory size: on demand, provisioned (standing, per
/// second provisioned), provisioned inference duration (per second).
#[derive(Debug, Clone)]
struct ServerlessRates {
    on_demand: Decimal,
    standing: Decimal,
    usage: Decimal,
}

#[derive(Debug, Clone)]
struct Rates {
    hosting: [Decimal; 2],
    storage: Decimal,
    data_in: Decimal,
    data_out: Decimal,
    /// Index `gb − 1`.
    serverless: Vec<ServerlessRates>,
}

#[derive(Debug, Clone)]
struct Case {
    period: Period,
    calls: Decimal,
    latency_ns: u64,
    bytes_in: u64,
    bytes_out: u64,
    tokens_in: u64,
    tokens_out: u64,
    rates: Rates,
    specs: Vec<Spec>,
    /// The share of calls answered with HTTP 2XX, as the profile holds it; `None`
    /// for a profile stated by hand (every call answered).
    share: Option<Decimal>,
    /// How many of 10 settled calls reported their input and their output tokens,
    /// when the profile counts them apart (a ledger's); `None`: the means are over
    /// every settled call.
    reported: Option<(u64, u64)>,
    /// The shares of the calls whose input and output tokens are charged, as a
    /// ledger's profile holds them (`token_calls`); `None`: a profile that does not
    /// say.
    token_calls: Option<(Decimal, Decimal)>,
}

/// A generated case's parts, in `Case`'s field order.
type CaseParts = (Period, Decimal, u64, u64, u64, u64, u64, Rates, Vec<Spec>);

impl Case {
    fn from_parts(parts: CaseParts) -> Case {
        let (period, calls, latency_ns, bytes_in, bytes_out, tokens_in, tokens_out, rates, specs) =
            parts;
        Case {
            period,
            calls,
            latency_ns,
            bytes_in,
            bytes_out,
            tokens_in,
            tokens_out,
            rates,
            specs,
            share: None,
            reported: None,
            token_calls: None,
        }
    }
}

/// A share of the calls (0, 1/3, 2/3, 0.9, 1; 1/3 and 2/3 rounded at 28 digits,
/// as a profile from metered calls holds them).
fn a_share() -> impl Strategy<Value = Decimal> {
    prop::sample::select(vec![(0i64, 1i64), (1, 3), (2, 3), (9, 10), (1, 1)])
        .prop_map(|(p, q)| Decimal::from(p) / Decimal::from(q))
}

/// The share of calls answered, or none.
fn share() -> impl Strategy<Value = Option<Decimal>> {
    prop::option::of(a_share())
}

/// The shares of the calls whose input and output tokens are charged, or none.
fn token_calls() -> impl Strategy<Value = Option<(Decimal, Decimal)>> {
    prop::option::of((a_share(), a_share()))
}

/// How many of 10 settled calls reported their input and output tokens, or none
/// counted apart.
fn reported() -> impl Strategy<Value = Option<(u64, u64)>> {
    let of_ten = || prop::sample::select(vec![0u64, 3, 5, 10]);
    prop::option::of((of_ten(), of_ten()))
}

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = Decimal> + Clone {
    prop::sample::select(values).prop_map(dec)
}

fn period() -> impl Strategy<Value = Period> + Clone {
    prop::sample::select(vec![Period::Day, Period::Month, Period::Year])
}

/// Hours an instance runs, clamped to the period's when priced.
fn hours() -> impl Strategy<Value = Option<Decimal>> + Clone {
    prop::option::of(pick(&["0.5", "1", "12", "73", "400", "730", "8760"]))
}

fn volume() -> impl Strategy<Value = Option<u32>> + Clone {
    prop::option::of(prop::sample::select(vec![1u32, 30, 512]))
}

/// Calls an instance serves at once, when stated (for each of the case's plans;
/// instance and savings plans take theirs).
fn per_instance() -> impl Strategy<Value = Option<u32>> + Clone {
    prop::option::of(prop::sample::select(vec![1u32, 2, 4, 16]))
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (0..2usize, 1u32..=4, hours(), volume()).prop_map(|(ty, count, hours, volume_gb)| {
            Spec::Instance {
                ty,
                count,
                hours,
                volume_gb,
                per_instance: None,
            }
        }),
        (
            0..2usize,
            1u32..=4,
            pick(&["0.05", "0.1", "0.0828", "1", "0.0001", "2.5"]),
            pick(&["0.64", "0.5", "0.2", "0.72", "0.9999", "0.3"]),
            any::<bool>(),
            hours(),
            volume(),
        )
            .prop_map(
                |(ty, count, commitment, discount, three_years, hours, volume_gb)| {
                    Spec::Savings {
                        ty,
                        count,
                        commitment,
                        discount,
                        three_years,
                        hours,
                        volume_gb,
                        per_instance: None,
                    }
                }
            ),
        (
            1u32..=6,
            prop::option::of(prop::sample::select(vec![1u32, 2, 7, 200]))
        )
            .prop_map(|(gb, provisioned)| Spec::Serverless { gb, provisioned }),
        pick(&[
            "0.0125",
            "0.001",
            "0.0001",
            "0.000001",
            "0.5",
            "0.00000002",
            "0.23"
        ])
        .prop_map(Spec::PerCall),
        pick(&["12.5", "0.5", "0.0016", "1.408"]).prop_map(Spec::PerThousand),
        (
            pick(&["0", "0.15", "3", "0.23"]),
            pick(&["0", "0.6", "15", "1.408"])
        )
            .prop_filter("a per-token plan charges something", |(i, o)| {
                !(i.is_zero() && o.is_zero())
            })
            .prop_map(|(input, output)| Spec::PerMillionTokens { input, output }),
        (
            pick(&["500", "150", "400", "0.01", "73", "167.9", "1200"]),
            period(),
            prop::option::of((
                pick(&["0", "1000", "40000", "1000000", "6570000"]),
                pick(&[
                    "0",
                    "0.0125",
                    "0.02",
                    "0.0125000000000001",
                    "0.00001",
                    "0.001"
                ])
            ))
        )
            .prop_map(|(fee, period, quota)| Spec::Subscription { fee, period, quota }),
    ]
}

fn rates() -> impl Strategy<Value = Rates> {
    let serverless = (
        pick(&[
            "0.00002",
            "0.0000200",
            "0.00004",
            "0.00006",
            "0.00008",
            "0.0001",
        ]),
        pick(&["0.0000048", "0.00001", "0.0000156"]),
        pick(&["0.0000233", "0.000035", "0.0001"]),
    )
        .prop_map(|(on_demand, standing, usage)| ServerlessRates {
            on_demand,
            standing,
            usage,
        });
    let hourly = pick(&["0.23", "1.408", "1.212", "0.0575", "3.06"]);
    (
        [hourly.clone(), hourly],
        pick(&["0.14", "0.1", "0.168"]),
        pick(&["0.016", "0.02", "0.0016"]),
        pick(&["0.016", "0.02", "0.0016"]),
        prop::collection::vec(serverless, 6),
    )
        .prop_map(|(hosting, storage, data_in, data_out, serverless)| Rates {
            hosting,
            storage,
            data_in,
            data_out,
            serverless,
        })
}

fn calls() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        prop::sample::select(vec![
            0u64,
            1,
            1_000,
            40_000,
            100_000,
            6_570_000,
            1_000_000_000,
            1_000_000_000_000_000,
        ])
        .prop_map(Decimal::from),
        (0u64..=1_000_000_000_000).prop_map(Decimal::from),
        // a mean from calls per day: a fraction
        (0i64..=100_000_000, 1u32..=3).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn latency_ns() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![
            800_000_000u64,
            1_000_000,
            500_000,
            1_234_567,
            333_333_333,
            3_000_000_000,
            1,
            7,
            250,
        ]),
        1u64..=5_000_000_000,
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        period(),
        calls(),
        latency_ns(),
        prop::sample::select(vec![0u64, 0, 1, 2048, 123_456, 1 << 20, 1 << 30]),
        prop::sample::select(vec![0u64, 0, 1, 4096, 1 << 20]),
        prop::sample::select(vec![1u64, 500, 2048, 123_457]),
        prop::sample::select(vec![1u64, 256, 4000]),
        rates(),
        prop::collection::vec(spec(), 2..=4),
    )
        .prop_map(Case::from_parts)
        .prop_flat_map(|case| {
            // Drawn last, so that the saved regression cases draw what they did.
            (
                share(),
                reported(),
                token_calls(),
                prop::collection::vec(per_instance(), 4),
            )
                .prop_map(move |(share, reported, token_calls, per_instance)| {
                    let mut specs = case.specs.clone();
                    for (spec, m) in specs.iter_mut().zip(per_instance) {
                        if let Spec::Instance { per_instance, .. }
                        | Spec::Savings { per_instance, .. } = spec
                        {
                            *per_instance = m;
                        }
                    }
                    Case {
                        share,
                        reported,
                        token_calls,
                        specs,
                        ..case.clone()
                    }
                })
        })
}

/// A kink past `MAX_BREAK_EVEN_CALLS`: provisioned concurrency over a year at a mean
/// latency of a few ns serves 32 to 200 × 31,536,000 s ÷ 1 to 6 ns, about 1.7 × 10^17
/// to 6.3 × 10^18 calls, against random plans.
fn far_kink_case() -> impl Strategy<Value = Case> {
    (
        case(),
        1u64..=6,
        1u32..=6,
        prop::sample::select(vec![32u32, 100, 200]),
    )
        .prop_map(|(mut case, latency_ns, gb, n)| {
            case.period = Period::Year;
            case.latency_ns = latency_ns;
            case.specs.truncate(3);
            case.specs.insert(
                0,
                Spec::Serverless {
                    gb,
                    provisioned: Some(n),
                },
            );
            case
        })
}

/// Inputs at the edge of what is accepted, whose products leave a `Decimal`.
fn huge_case() -> impl Strategy<Value = Case> {
    let big = |v: &'static [&'static str]| pick(v);
    let huge_spec = prop_oneof![
        (
            0..2usize,
            prop::sample::select(vec![1u32, 10_000]),
            hours(),
            volume()
        )
            .prop_map(|(ty, count, hours, volume_gb)| Spec::Instance {
                ty,
                count,
                hours,
                volume_gb,
                per_instance: None,
            }),
        (
            0..2usize,
            prop::sample::select(vec![1u32, 10_000]),
            big(&["1000000000", "0.0001"]),
            pick(&["0.64", "0.9999999999999999999999999999"]),
            hours(),
        )
            .prop_map(|(ty, count, commitment, discount, hours)| Spec::Savings {
                ty,
                count,
                commitment,
                discount,
                three_years: true,
                hours,
                volume_gb: Some(512),
                per_instance: None,
            }),
        (1u32..=6, prop::option::of(Just(200u32)))
            .prop_map(|(gb, provisioned)| Spec::Serverless { gb, provisioned }),
        big(&["1000000000", "0.0001"]).prop_map(Spec::PerCall),
        big(&["1000000000", "0.0001"]).prop_map(Spec::PerThousand),
        (
            big(&["1000000000", "0", "0.0001"]),
            big(&["1000000000", "0.0001"])
        )
            .prop_map(|(input, output)| Spec::PerMillionTokens { input, output }),
        (
            big(&["1000000000", "0.0001"]),
            period(),
            prop::option::of((
                big(&["0", "1000000000000000"]),
                big(&["0", "1000000000", "0.0001"])
            ))
        )
            .prop_map(|(fee, period, quota)| Spec::Subscription { fee, period, quota }),
    ];
    let huge_rate = big(&["1000000000", "0.0001", "0.23"]);
    let rates = (
        [huge_rate.clone(), huge_rate.clone()],
        huge_rate.clone(),
        huge_rate.clone(),
        huge_rate.clone(),
        prop::collection::vec(
            (huge_rate.clone(), huge_rate.clone(), huge_rate).prop_map(
                |(on_demand, standing, usage)| ServerlessRates {
                    on_demand,
                    standing,
                    usage,
                },
            ),
            6,
        ),
    )
        .prop_map(|(hosting, storage, data_in, data_out, serverless)| Rates {
            hosting,
            storage,
            data_in,
            data_out,
            serverless,
        });
    (
        period(),
        prop::sample::select(vec![Decimal::from(1_000_000_000_000_000u64), Decimal::ONE]),
        prop::sample::select(vec![1u64, 3_600_000_000_000]),
        prop::sample::select(vec![0u64, 1 << 40]),
        prop::sample::select(vec![0u64, 1 << 40]),
        prop::sample::select(vec![1u64, 1_000_000_000]),
        prop::sample::select(vec![1u64, 1_000_000_000]),
        rates,
        prop::collection::vec(huge_spec, 2..=4),
    )
        .prop_map(Case::from_parts)
}

// ---------------------------------------------------------------------------------
// The code under test, fed the case

/// Hours of a period, as the AWS Pricing Calculator counts them.
fn period_hours(period: Period) -> i128 {
    match period {
        Period::Day => 24,
        Period::Month => 730,
        Period::Year => 8760,
    }
}

/// Running hours as priced: at most the period's.
fn clamp_hours(hours: Option<Decimal>, period: Period) -> Option<Decimal> {
    hours.map(|h| h.min(Decimal::from(period_hours(period) as i64)))
}

fn name(i: usize) -> String {
    format!("plan {i}")
}

fn plans(case: &Case) -> Vec<Plan> {
    case.specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let plan = match spec {
                Spec::Instance {
                    ty,
                    count,
                    hours,
                    volume_gb,
                    per_instance,
                } => {
                    let mut p = InstancePlan::new(TYPES[*ty], *count).unwrap();
                    if let Some(m) = per_instance {
                        p = p.with_max_concurrency_per_instance(*m).unwrap();
                    }
                    if let Some(h) = clamp_hours(*hours, case.period) {
                        p = p.with_hours_per_period(h).unwrap();
                    }
                    if let Some(gb) = volume_gb {
                        p = p.with_volume_gb(*gb).unwrap();
                    }
                    Plan::from(p)
                }
                Spec::Savings {
                    ty,
                    count,
                    commitment,
                    discount,
                    three_years,
                    hours,
                    volume_gb,
                    per_instance,
                } => {
                    let mut b = SavingsPlan::builder()
                        .instance_type(TYPES[*ty])
                        .count(*count)
                        .commitment_usd_per_hour(*commitment)
                        .discount(*discount)
                        .term(if *three_years {
                            SavingsPlanTerm::ThreeYears
                        } else {
                            SavingsPlanTerm::OneYear
                        });
                    if let Some(h) = clamp_hours(*hours, case.period) {
                        b = b.hours_per_period(h);
                    }
                    if let Some(gb) = volume_gb {
                        b = b.volume_gb(*gb);
                    }
                    if let Some(m) = per_instance {
                        b = b.max_concurrency_per_instance(*m);
                    }
                    Plan::from(b.build().unwrap())
                }
                Spec::Serverless { gb, provisioned } => {
                    let mut p = ServerlessPlan::new(gb * 1024).unwrap();
                    if let Some(n) = provisioned {
                        p = p.with_provisioned_concurrency(*n).unwrap();
                    }
                    Plan::from(p)
                }
                Spec::PerCall(x) => Plan::from(PerInferencePlan::per_call(*x).unwrap()),
                Spec::PerThousand(x) => {
                    Plan::from(PerInferencePlan::per_thousand_calls(*x).unwrap())
                }
                Spec::PerMillionTokens { input, output } => {
                    Plan::from(PerTokenPlan::per_million_tokens(*input, *output).unwrap())
                }
                Spec::Subscription { fee, period, quota } => {
                    let mut b = SubscriptionPlan::builder().fee_usd(*fee).period(*period);
                    if let Some((included, overage)) = quota {
                        b = b.included_calls(*included).overage_usd_per_call(*overage);
                    }
                    Plan::from(b.build().unwrap())
                }
            };
            plan.named(name(i))
        })
        .collect()
}

fn profile(case: &Case, calls: Decimal) -> UsageProfile {
    let mut profile = UsageProfile::builder()
        .period(case.period)
        .calls_per_period(calls)
        .mean_latency(Duration::from_nanos(case.latency_ns))
        .bytes_in_per_call(case.bytes_in)
        .bytes_out_per_call(case.bytes_out)
        .tokens_in_per_call(case.tokens_in)
        .tokens_out_per_call(case.tokens_out)
        .build()
        .unwrap();
    profile.answered_per_call = case.share;
    profile.tokens_reported = case.reported.map(|(tokens_in, tokens_out)| TokensReported {
        calls: 10,
        tokens_in,
        tokens_out,
    });
    // At this volume, `calls × share` of the calls: what the code takes for the
    // answered calls when the profile does not count them per period.
    profile.token_calls = case.token_calls.map(|(tokens_in, tokens_out)| {
        TokenCalls::new(
            (tokens_in, calls * tokens_in),
            (tokens_out, calls * tokens_out),
        )
    });
    profile.validate().unwrap();
    profile
}

fn rate_table(case: &Case) -> RateTable {
    let r = &case.rates;
    let mut table = RateTable::new(REGION)
        .with_rate(PriceKey::storage(REGION), r.storage)
        .unwrap()
        .with_rate(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            r.data_in,
        )
        .unwrap()
        .with_rate(
            PriceKey::DataOut {
                region: REGION.into(),
            },
            r.data_out,
        )
        .unwrap();
    for (ty, rate) in TYPES.iter().zip(r.hosting) {
        table = table
            .with_rate(PriceKey::hosting(REGION, *ty), rate)
            .unwrap();
    }
    for (i, s) in r.serverless.iter().enumerate() {
        let memory_gb = i as u32 + 1;
        table = table
            .with_rate(PriceKey::serverless(REGION, memory_gb), s.on_demand)
            .unwrap()
            .with_rate(
                PriceKey::ProvisionedConcurrency {
                    region: REGION.into(),
                    memory_gb,
                },
                s.standing,
            )
            .unwrap()
            .with_rate(
                PriceKey::ProvisionedConcurrencyUsage {
                    region: REGION.into(),
                    memory_gb,
                },
                s.usage,
            )
            .unwrap();
    }
    table
}

// ---------------------------------------------------------------------------------
// The model: each plan's cost line from the published rules, in exact rationals

/// A figure the code computes as the sum of `parts` (charges of their own, each
/// rounded on its own when it is not a decimal): the exact sum, and how far the
/// code's may be from it.
fn sum(parts: &[Q]) -> (Q, Q) {
    let total = parts.iter().fold(zero(), |s, p| s + p);
    let bound = parts.iter().fold(err(&total), |s, p| s + err(p));
    (total, bound)
}

/// `cost(U) = fixed + per_call × U + overage × max(0, U − included)`, each figure
/// with how far the code's may be from it by rounding (0: exactly).
#[derive(Debug, Clone)]
struct Line {
    fixed: (Q, Q),
    per_call: (Q, Q),
    /// Included calls per period and the overage per call above them (may be 0).
    quota: Option<((Q, Q), (Q, Q))>,
}

impl Line {
    fn new(fixed: &[Q], per_call: &[Q]) -> Line {
        Line {
            fixed: sum(fixed),
            per_call: sum(per_call),
            quota: None,
        }
    }

    fn cost(&self, u: &Q) -> Q {
        let mut c = &self.fixed.0 + &self.per_call.0 * u;
        if let Some(((k, _), (o, _))) = &self.quota
            && u > k
        {
            c += o * (u - k);
        }
        c
    }

    /// Where the slope changes: the quota's end, when calls above it cost more.
    fn kink(&self) -> Option<(Q, Q)> {
        self.quota
            .as_ref()
            .map(|((k, _), (o, _))| (k.clone(), o.clone()))
            .filter(|(_, o)| *o > zero())
    }

    /// The slope just left (`right = false`) or right of `u`.
    fn slope(&self, u: &Q, right: bool) -> Q {
        match self.kink() {
            Some((k, o)) if (right && *u >= k) || (!right && *u > k) => &self.per_call.0 + o,
            _ => self.per_call.0.clone(),
        }
    }
}

fn model_line(case: &Case, spec: &Spec) -> Line {
    let r = &case.rates;
    // The share of calls a fee per inference or a quota counts: all, stated by hand.
    let share = case.share.map_or_else(|| qi(1), q);
    let period_h = qi(period_hours(case.period));
    let period_s = &period_h * qi(3600);
    // Data processed: bytes ÷ 2^30 × USD per GB, in and out, on every plan that runs
    // on SageMaker (instances, savings plans, serverless).
    let data = [
        qi(case.bytes_in as i128) * q(r.data_in) / qi(1 << 30),
        qi(case.bytes_out as i128) * q(r.data_out) / qi(1 << 30),
    ];
    // ML storage: GB × instances × USD per GB-month × running hours ÷ 730.
    let storage = |volume_gb: &Option<u32>, count: u32, hours: &Q| match volume_gb {
        Some(gb) => qi(*gb as i128) * qi(count as i128) * q(r.storage) * hours / qi(730),
        None => zero(),
    };
    let running = |hours: &Option<Decimal>| match clamp_hours(*hours, case.period) {
        Some(h) => q(h),
        None => period_h.clone(),
    };
    match spec {
        Spec::Instance {
            ty,
            count,
            hours,
            volume_gb,
            ..
        } => {
            // count × USD per hour × running hours, busy or not.
            let h = running(hours);
            Line::new(
                &[
                    qi(*count as i128) * q(r.hosting[*ty]) * &h,
                    storage(volume_gb, *count, &h),
                ],
                &data,
            )
        }
        Spec::Savings {
            ty,
            count,
            commitment,
            discount,
            hours,
            volume_gb,
            ..
        } => {
            // c × P + max(0, D − c / (1 − d)) × H (docs/cli.md).
            let h = running(hours);
            let c = q(*commitment);
            let on_demand = qi(*count as i128) * q(r.hosting[*ty]);
            let covered = &c / (qi(1) - q(*discount));
            let beyond = max(zero(), on_demand - covered) * &h;
            Line::new(
                &[&c * &period_h, beyond, storage(volume_gb, *count, &h)],
                &data,
            )
        }
        Spec::Serverless { gb, provisioned } => {
            // Each call's time rounded up to the millisecond.
            let billed_ms = case.latency_ns.div_ceil(1_000_000);
            let billed = Q::new(BigInt::from(billed_ms), BigInt::from(1000));
            let rates = &r.serverless[*gb as usize - 1];
            match provisioned {
                None => Line::new(
                    &[],
                    &[
                        &billed * q(rates.on_demand),
                        data[0].clone(),
                        data[1].clone(),
                    ],
                ),
                Some(n) => {
                    // n × the per-second provisioned rate × the period's seconds, busy
                    // or not; calls at the inference rate up to n × seconds ÷ mean
                    // latency, those beyond at the on-demand rate.
                    let n = qi(*n as i128);
                    let latency =
                        Q::new(BigInt::from(case.latency_ns), BigInt::from(1_000_000_000));
                    let served = &n * &period_s / latency;
                    let extra = max(zero(), q(rates.on_demand) - q(rates.usage));
                    Line {
                        quota: Some((sum(&[served]), sum(&[&billed * extra]))),
                        ..Line::new(
                            &[&n * q(rates.standing) * &period_s],
                            &[&billed * q(rates.usage), data[0].clone(), data[1].clone()],
                        )
                    }
                }
            }
        }
        // One fee per call answered: `s × X` per call made.
        Spec::PerCall(x) => Line::new(&[], &[q(*x) * &share]),
        Spec::PerThousand(x) => Line::new(&[], &[q(*x) / qi(1000) * &share]),
        // The tokens reported: each mean on the share of the calls the profile
        // says it is charged on (a ledger's: those whose answer could carry
        // tokens); not said, a mean over the calls that reported it on the answered
        // calls, `s`, among which they are; a mean over every call on every call.
        Spec::PerMillionTokens { input, output } => {
            let (c_in, c_out) = match (case.token_calls, case.reported) {
                (Some((c_in, c_out)), _) => (q(c_in), q(c_out)),
                (None, Some(_)) => (share.clone(), share.clone()),
                (None, None) => (qi(1), qi(1)),
            };
            Line::new(
                &[],
                &[
                    qi(case.tokens_in as i128) * q(*input) / qi(1_000_000) * c_in,
                    qi(case.tokens_out as i128) * q(*output) / qi(1_000_000) * c_out,
                ],
            )
        }
        Spec::Subscription { fee, period, quota } => {
            // Fee and quota amortised by hours: × hours(compared) / hours(fee's).
            // The quota counts the answered calls, `s × U` of `U` made: it lasts
            // `included / s` calls made, each beyond costing `s × overage`; none
            // answered, it never runs out.
            let t = &period_h / qi(period_hours(*period));
            Line {
                quota: quota.filter(|_| share > zero()).map(|(included, overage)| {
                    (
                        sum(&[q(included) * &t / &share]),
                        sum(&[q(overage) * &share]),
                    )
                }),
                ..Line::new(&[q(*fee) * &t], &[])
            }
        }
    }
}

/// The most calls per period a plan serves, from the rules docs/cost-model.md
/// states: instances `count × running hours × 3,600 s × m ÷ mean latency` (`m`
/// calls per instance at once, 1 unless stated), serverless `200 × the period's
/// seconds ÷ mean latency` (the most calls a serverless endpoint serves at once);
/// `None` for prices per call, per token and subscriptions (not modelled).
fn model_capacity(case: &Case, spec: &Spec) -> Option<Q> {
    let period_s = qi(period_hours(case.period)) * qi(3600);
    let running = |hours: &Option<Decimal>| match clamp_hours(*hours, case.period) {
        Some(h) => q(h),
        None => qi(period_hours(case.period)),
    };
    let serving = match spec {
        Spec::Instance {
            count,
            hours,
            per_instance,
            ..
        }
        | Spec::Savings {
            count,
            hours,
            per_instance,
            ..
        } => qi(*count as i128) * running(hours) * qi(3600) * qi(per_instance.unwrap_or(1) as i128),
        Spec::Serverless { .. } => qi(200) * period_s,
        _ => return None,
    };
    Some(serving / Q::new(BigInt::from(case.latency_ns), BigInt::from(1_000_000_000)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    A,
    B,
    Same,
}

/// Which plan a difference `cost_a − cost_b` makes cheaper.
fn sign(d: &Q) -> Verdict {
    if *d < zero() {
        Verdict::A
    } else if *d > zero() {
        Verdict::B
    } else {
        Verdict::Same
    }
}

/// How far a line's slope right of `u` may be from the model's: its per-call
/// figure's bound, and past the kink its overage's.
fn slope_err(line: &Line, u: &Q) -> Q {
    match (&line.quota, line.kink()) {
        (Some((_, (_, oe))), Some((k, _))) if *u >= k => &line.per_call.1 + oe,
        _ => line.per_call.1.clone(),
    }
}

/// `cost_a − cost_b` as the verdicts take it: linear between the kinks, so its
/// values there (`marks`, from 0 up) and its slope past the last make it, each
/// taken for 0 when within what the figures' rounding may make of it
/// ([`line_err`], [`slope_err`]). A share of 1/3 held at 28 digits leaves the
/// lines of plans that cost the same a residue apart (500 tokens × 3 USD ÷ 10^6 ×
/// 0.333…3 = 0.00049999…95 against 0.0005 a call, 5 × 10^-32 short), which is no
/// difference: AWS's rules price both at 0.0005, and so does the code, its
/// figures rounding to the same decimal. The figures generated (decimals of a few
/// places, times shares of 1/3, 2/3 or 9/10, or bytes ÷ 2^30) differ by far more
/// than a bound (about 10^-26 of a figure) when they differ at all: 0.0125
/// against 0.0125000000000001, the closest prices, by 10^-16 a call.
struct Diff {
    marks: Vec<Q>,
    values: Vec<Q>,
    tail: Q,
}

impl Diff {
    fn of(a: &Line, b: &Line) -> Diff {
        let within = |x: Q, bound: Q| if abs(&x) <= bound { zero() } else { x };
        let mut marks = vec![zero()];
        marks.extend(
            [a.kink(), b.kink()]
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .filter(|k| *k > zero()),
        );
        marks.sort();
        marks.dedup();
        let values = marks
            .iter()
            .map(|u| within(a.cost(u) - b.cost(u), line_err(a, u) + line_err(b, u)))
            .collect();
        let last = marks.last().unwrap();
        let tail = within(
            a.slope(last, true) - b.slope(last, true),
            slope_err(a, last) + slope_err(b, last),
        );
        Diff {
            marks,
            values,
            tail,
        }
    }

    /// The difference at `u`: interpolated between the marks, or on from the last.
    fn at(&self, u: &Q) -> Q {
        let n = self.marks.iter().take_while(|m| *m <= u).count();
        let i = n.max(1) - 1;
        match (self.marks.get(i + 1), self.values.get(i + 1)) {
            (Some(m1), Some(v1)) => {
                let (m0, v0) = (&self.marks[i], &self.values[i]);
                v0 + (v1 - v0) * (u - m0) / (m1 - m0)
            }
            _ => &self.values[i] + &self.tail * (u - &self.marks[i]),
        }
    }

    fn verdict(&self, u: &Q) -> Verdict {
        sign(&self.at(u))
    }
}

/// Where the cheaper of two plans changes, exactly (but for rounding residues,
/// [`Diff`]): the points up to `MAX_BREAK_EVEN_CALLS` (ascending), the verdict in
/// each range from 0 up (one more than the points), and whether it changes again
/// beyond.
struct Split {
    points: Vec<Q>,
    verdicts: Vec<Verdict>,
    beyond: bool,
    diff: Diff,
}

/// `cost_a − cost_b` ([`Diff`]) is linear between the kinks; its sign changes at a
/// kink or where it crosses zero between two (found by interpolating its values at
/// the two ends), or after the last kink (from its value there and the slope
/// beyond).
fn split(a: &Line, b: &Line) -> Split {
    let diff = Diff::of(a, b);
    let marks = &diff.marks;
    let mut candidates = marks.clone();
    for (w, d) in marks.windows(2).zip(diff.values.windows(2)) {
        let (d0, d1) = (&d[0], &d[1]);
        if (*d0 < zero() && *d1 > zero()) || (*d0 > zero() && *d1 < zero()) {
            candidates.push(&w[0] + d0 * (&w[1] - &w[0]) / (d0 - d1));
        }
    }
    let last = marks.last().unwrap();
    if diff.tail != zero() {
        let root = last - diff.values.last().unwrap() / &diff.tail;
        if root > *last {
            candidates.push(root);
        }
    }
    candidates.sort();
    candidates.dedup();

    let mut points = Vec::new();
    let mut verdicts: Vec<Verdict> = Vec::new();
    for (i, from) in candidates.iter().enumerate() {
        let probe = match candidates.get(i + 1) {
            Some(to) => (from + to) / qi(2),
            None => from + qi(1),
        };
        let v = diff.verdict(&probe);
        if verdicts.last() != Some(&v) {
            if !verdicts.is_empty() {
                points.push(from.clone());
            }
            verdicts.push(v);
        }
    }
    // A change below 10^-28 calls, the least a decimal holds, is no range of volumes.
    let least = Q::new(BigInt::from(1), BigInt::from(10).pow(28));
    let below = points.iter().take_while(|p| **p < least).count();
    points.drain(..below);
    verdicts.drain(..below);
    let max_calls = qi(MAX_BREAK_EVEN_CALLS as i128);
    let in_range = points.iter().filter(|p| **p <= max_calls).count();
    let beyond = in_range < points.len();
    points.truncate(in_range);
    verdicts.truncate(in_range + 1);
    Split {
        points,
        verdicts,
        beyond,
        diff,
    }
}

/// How far the code's lines may be from the model's at `u`: each figure's bound
/// ([`err`]) times its weight there. A quota's figures weigh only where the code
/// may charge the overage, above its end less that end's bound (`u > k − ke`):
/// below, no call is beyond the quota in the code or the model, and the cost is
/// the fixed part and the price per call alone, so a difference there (a fee at
/// 0 calls) is never within the included calls' bound times the overage.
fn line_err(line: &Line, u: &Q) -> Q {
    let mut e = &line.fixed.1 + &line.per_call.1 * u;
    if let Some(((k, ke), (o, oe))) = &line.quota
        && *o > zero()
        && *u > k - ke
    {
        e += o * ke + oe * u;
    }
    e
}

/// How far evaluating a line at `u` may round beyond its figures' own bounds: the
/// code adds the terms `fixed`, `per_call × u` and `overage × (u − included)`,
/// each rounded within its own size (`u − included` within that of `u`); nothing
/// when every term is a decimal.
fn eval_err(line: &Line, u: &Q) -> Q {
    let mut terms = vec![line.fixed.0.clone(), &line.per_call.0 * u];
    let mut size = abs(&line.fixed.0) + abs(&line.per_call.0) * u;
    if let Some((k, o)) = line.kink()
        && *u > k
    {
        terms.push(&o * (u - k));
        size += &o * u;
    }
    if line_err(line, u) == zero() {
        terms.iter().fold(zero(), |s, t| s + err(t))
    } else {
        ulp(&size)
    }
}

/// What the code's cost at `u` may be off by: the figures' bounds, the evaluation's
/// and the result's own rounding.
fn cost_err(line: &Line, u: &Q) -> Q {
    line_err(line, u) + eval_err(line, u) + err(&line.cost(u))
}

// ---------------------------------------------------------------------------------
// The properties

/// The result, or `None` for an overflow when the inputs are overflow-sized (an
/// error, as it should be); any other error fails.
fn fits<T>(r: Result<T, CompareError>, huge: bool, what: &str) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(x) => Ok(Some(x)),
        Err(CompareError::Overflow { .. }) if huge => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!("{what}: {e}"))),
    }
}

/// The model's cost line of each of `case`'s plans.
fn model_lines(case: &Case) -> Vec<Line> {
    case.specs.iter().map(|s| model_line(case, s)).collect()
}

/// The model's split of the volumes between `case`'s first two plans.
fn model_split(case: &Case) -> Split {
    let lines = model_lines(case);
    split(&lines[0], &lines[1])
}

fn check_case(case: &Case, huge: bool) -> Result<(), TestCaseError> {
    let plans = plans(case);
    let rates = rate_table(case);
    let lines = model_lines(case);
    let caps: Vec<Option<Q>> = case.specs.iter().map(|s| model_capacity(case, s)).collect();
    let base = profile(case, case.calls);
    let comparison = Comparison::compute(&base, &plans, &rates)
        .map_err(|e| TestCaseError::fail(format!("not priced: {e}")))?;

    // Each row's cost line is the model's, and so is its cost at the volume.
    for row in &comparison.plans {
        let i: usize = row.plan.name["plan ".len()..].parse().unwrap();
        let (line, curve) = (&lines[i], &row.curve);
        prop_assert!(
            agrees(curve.fixed_usd, &line.fixed),
            "{}: fixed {} vs {}",
            row.plan.name,
            curve.fixed_usd,
            line.fixed.0
        );
        prop_assert!(
            agrees(curve.usd_per_call, &line.per_call),
            "{}: per call {} vs {}",
            row.plan.name,
            curve.usd_per_call,
            line.per_call.0
        );
        match (
            &line.quota,
            curve.included_calls,
            curve.overage_usd_per_call,
        ) {
            (None, None, None) => {}
            (Some((k, o)), Some(included), Some(overage)) => {
                prop_assert!(
                    agrees(included, k),
                    "{}: included {included} vs {}",
                    row.plan.name,
                    k.0
                );
                prop_assert!(
                    agrees(overage, o),
                    "{}: overage {overage} vs {}",
                    row.plan.name,
                    o.0
                );
            }
            (want, included, overage) => prop_assert!(
                false,
                "{}: quota {want:?} vs {included:?} at {overage:?}",
                row.plan.name
            ),
        }
        let calls = q(case.calls);
        let want = line.cost(&calls);
        prop_assert!(
            abs(&(q(row.cost_usd) - &want)) <= cost_err(line, &calls),
            "{}: cost {} vs {}",
            row.plan.name,
            row.cost_usd,
            want
        );
        // Cost never falls as calls rise, and is the model's at each volume.
        let mut volumes: Vec<Decimal> = [0u64, 1, 999, 40_000, 6_570_001, 1_000_000_000_000_000]
            .into_iter()
            .map(Decimal::from)
            .chain([case.calls])
            .chain(curve.included_calls)
            .collect();
        volumes.sort();
        let mut previous = None;
        for v in volumes {
            let Some(cost) = fits(curve.cost_usd(v), huge, "cost")? else {
                continue;
            };
            let want = line.cost(&q(v));
            prop_assert!(
                abs(&(q(cost) - &want)) <= cost_err(line, &q(v)),
                "{}: cost at {v} {cost} vs {want}",
                row.plan.name
            );
            if let Some(p) = previous {
                prop_assert!(
                    cost >= p,
                    "{}: cost falls to {cost} at {v} from {p}",
                    row.plan.name
                );
            }
            previous = Some(cost);
        }
    }

    // The break-even points of every pair, in the order the plans were given.
    let mut shown = vec![case.calls];
    let mut k = 0;
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            let be = &comparison.break_evens[k];
            k += 1;
            prop_assert_eq!(&be.plans, &[name(i), name(j)]);
            let (a, b) = (&lines[i], &lines[j]);
            let model = split(a, b);
            let verdicts: Vec<Verdict> = be
                .regions
                .iter()
                .map(|r| match r.cheaper.as_deref() {
                    Some(n) if n == name(i) => Verdict::A,
                    Some(_) => Verdict::B,
                    None => Verdict::Same,
                })
                .collect();
            prop_assert_eq!(
                &verdicts,
                &model.verdicts,
                "{} vs {}: regions {:?}, model points {:?}",
                name(i),
                name(j),
                be.regions,
                model
                    .points
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
            );
            prop_assert_eq!(be.points.len(), model.points.len());
            // The least capacity of the pair: a crossing beyond it is stated as one
            // the plan would make only there. A crossing within rounding of it may
            // fall either side.
            let limit = [&caps[i], &caps[j]].into_iter().flatten().min().cloned();
            let mut near_limit = false;
            for (n, (point, r)) in be.points.iter().zip(&model.points).enumerate() {
                let v = point.calls_per_period;
                // How far rounding may move the crossing: the lines' own bounds over
                // the smaller slope of the difference beside it, plus the division's.
                let slopes = [
                    a.slope(r, false) - b.slope(r, false),
                    a.slope(r, true) - b.slope(r, true),
                ];
                let slope = slopes
                    .iter()
                    .map(abs)
                    .filter(|s| *s > zero())
                    .min()
                    .expect("a change of verdict has a slope beside it");
                let kinks: Q = [&a.quota, &b.quota]
                    .into_iter()
                    .flatten()
                    .map(|((_, ke), _)| ke)
                    .fold(zero(), |s, e| s + e);
                // The difference is computed part by part at a volume: each product
                // rounded within the costs' own size.
                let apart = cost_err(a, r) + cost_err(b, r) + ulp(&(a.cost(r) + b.cost(r)));
                let within = ulp(r) + apart / slope + kinks;
                prop_assert!(
                    abs(&(q(v) - r)) <= within,
                    "{} vs {}: break-even {v} vs {r} (within {within})",
                    name(i),
                    name(j)
                );
                // The plans that cannot serve that many calls are named.
                for k in [i, j] {
                    let Some(c) = &caps[k] else {
                        prop_assert!(!point.beyond_capacity.contains(&name(k)));
                        continue;
                    };
                    let tolerance = &within + ulp(c);
                    if abs(&(r - c)) <= tolerance {
                        near_limit |= limit.as_ref() == Some(c);
                        continue;
                    }
                    prop_assert_eq!(
                        point.beyond_capacity.contains(&name(k)),
                        r > c,
                        "{} vs {}: {:?} at {} (capacity {})",
                        name(i),
                        name(j),
                        point.beyond_capacity,
                        v,
                        c
                    );
                }
                // Either plan's cost there: the exact cost at the crossing.
                let cost = a.cost(r);
                let steepest = max(a.slope(r, true), b.slope(r, true));
                prop_assert!(
                    abs(&(q(point.cost_usd) - &cost))
                        <= &steepest * &within + cost_err(a, r) + ulp(&cost),
                    "{} vs {}: cost at break-even {} vs {cost}",
                    name(i),
                    name(j),
                    point.cost_usd
                );
                // Just below and above it the cheaper plan flips, to the regions'.
                let step = &within * qi(2);
                let (below, above) = (q(v) - &step, q(v) + &step);
                let alone = model
                    .points
                    .iter()
                    .all(|p| p == r || *p <= below || *p >= above);
                if alone && below >= zero() {
                    let (left, right) = (model.diff.verdict(&below), model.diff.verdict(&above));
                    prop_assert_ne!(left, right);
                    prop_assert_eq!(left, verdicts[n]);
                    prop_assert_eq!(right, verdicts[n + 1]);
                }
                // The volumes around a crossing are shown below, with the cheapest.
                if let Some(floor) = exact_decimal(&qi(0).max(r.floor()))
                    && floor < Decimal::from(1_000_000_000_000_000u64)
                {
                    shown.extend([floor, floor + Decimal::ONE]);
                }
            }
            // "never breaks even" exactly when the lines do not cross at all.
            let s = &be.summary;
            // They touch at the volume: exactly, or within rounding of the costs.
            let u = q(case.calls);
            let apart = abs(&(a.cost(&u) - b.cost(&u)));
            let slack = cost_err(a, &u) + cost_err(b, &u);
            let touch = s.contains("costs the same as");
            let beyond_limit = limit
                .as_ref()
                .is_some_and(|l| model.points.iter().any(|p| p > l));
            if near_limit {
                // Within rounding of the capacity: either sentence may be right.
                continue;
            }
            if beyond_limit {
                // A crossing past what a plan can serve is one it would make only
                // there, and the sentence says so.
                prop_assert!(
                    s.contains(" only above ") && s.contains(" can serve at "),
                    "{s}"
                );
                continue;
            }
            // The range a plan is cheaper in up to the highest volumes ends at its
            // capacity, unless they may cross again before it (beyond 10^18).
            let last = *model.verdicts.last().unwrap();
            let ends = match last {
                Verdict::A => caps[i].clone(),
                Verdict::B => caps[j].clone(),
                Verdict::Same => None,
            }
            .is_some_and(|c| !model.beyond || c <= qi(MAX_BREAK_EVEN_CALLS as i128));
            prop_assert_eq!(s.contains("it can serve"), ends && !touch, "{}", s);
            match (model.points.len(), model.verdicts[0]) {
                (0, Verdict::Same) if model.beyond => prop_assert!(
                    s.starts_with(&format!(
                        "{} and {} cost the same at every volume up to 10^18 ",
                        name(i),
                        name(j)
                    )) && s.ends_with(": they part only beyond"),
                    "{s}"
                ),
                (0, Verdict::Same) => prop_assert_eq!(
                    s,
                    &format!("{} and {} cost the same at every volume", name(i), name(j))
                ),
                (0, _) if touch => prop_assert!(apart <= slack, "{s}"),
                (0, _) if apart == zero() && slack == zero() => {
                    prop_assert!(false, "not said to touch: {s}")
                }
                (0, _) if model.beyond => prop_assert!(s.contains("only beyond"), "{s}"),
                (0, _) => prop_assert!(s.contains("never breaks even"), "{s}"),
                _ => {
                    prop_assert!(!s.contains("never") && !s.contains("every volume"), "{s}");
                    prop_assert_eq!(s.contains("cross again beyond"), model.beyond, "{}", s);
                }
            }
        }
    }

    // At the volume and around every crossing: the cheapest plan is the model's, and
    // the table marks the plans that cost the least.
    shown.sort();
    shown.dedup();
    for calls in shown {
        let priced = Comparison::compute(&profile(case, calls), &plans, &rates);
        let Some(comparison) = fits(priced, huge, "not priced")? else {
            continue;
        };
        check_cheapest(&comparison, &lines, &caps, calls)?;
    }

    // A month of today's prices is month 1 of a projection; prices not AWS's hold.
    // The projection scales by hours and factors, each step rounded: within the
    // line's bound and one ulp of the month, 730 times over (the bound is loose).
    let trend = PriceTrend::from(TrendRate::per_month(dec("-0.01")).unwrap());
    let Some(projection) = fits(
        Projection::compute(&comparison, &trend, 3),
        huge,
        "not projected",
    )?
    else {
        return Ok(());
    };
    for (i, line) in lines.iter().enumerate() {
        let months = &projection.plan(&name(i)).unwrap().monthly_usd;
        let month = line.cost(&q(case.calls)) * qi(730) / qi(period_hours(case.period));
        prop_assert!(
            abs(&(q(months[0]) - &month))
                <= (cost_err(line, &q(case.calls)) + ulp(&month)) * qi(730),
            "{}: month 1 {} vs {month}",
            name(i),
            months[0]
        );
        if matches!(
            case.specs[i],
            Spec::PerCall(_)
                | Spec::PerThousand(_)
                | Spec::PerMillionTokens { .. }
                | Spec::Subscription { .. }
        ) {
            prop_assert!(
                months.iter().all(|m| *m == months[0]),
                "{}: {months:?}",
                name(i)
            );
        }
    }
    Ok(())
}

fn check_cheapest(
    comparison: &Comparison,
    lines: &[Line],
    caps: &[Option<Q>],
    calls: Decimal,
) -> Result<(), TestCaseError> {
    let u = q(calls);
    let costs: Vec<Q> = lines.iter().map(|l| l.cost(&u)).collect();
    // Over capacity: more calls than the plan serves (decided exactly, the calls
    // and latency being decimals).
    let over: Vec<bool> = caps
        .iter()
        .map(|c| c.as_ref().is_some_and(|c| u > *c))
        .collect();
    let index = |name: &str| -> usize { name["plan ".len()..].parse().unwrap() };
    for row in &comparison.plans {
        let i = index(&row.plan.name);
        prop_assert_eq!(
            row.over_capacity,
            over[i],
            "at {}: {}",
            calls,
            row.plan.name
        );
    }
    // The cheapest is of the plans that can serve the calls.
    let serving: Vec<usize> = (0..lines.len()).filter(|i| !over[*i]).collect();
    let least = serving.iter().map(|i| costs[*i].clone()).min();
    // What rounding may move each plan's cost by (0 when all its figures are exact).
    let slack: Vec<Q> = (0..lines.len()).map(|i| cost_err(&lines[i], &u)).collect();
    let total = slack.iter().fold(zero(), |s, e| s + e);
    // Rows that can serve first, then those over capacity, each cheapest first:
    // never a plan before one the model prices lower by more than rounding.
    for pair in comparison.plans.windows(2) {
        let (x, y) = (index(&pair[0].plan.name), index(&pair[1].plan.name));
        prop_assert!(
            over[x] <= over[y],
            "at {calls}: {} over capacity first",
            name(x)
        );
        prop_assert!(
            over[x] != over[y] || costs[x] <= &costs[y] + &slack[x] + &slack[y],
            "at {calls}: {} ({}) before {} ({})",
            name(x),
            costs[x],
            name(y),
            costs[y]
        );
    }
    let table = comparison.to_string();
    let Some(least) = least else {
        prop_assert!(
            comparison.cheapest.is_none(),
            "at {calls}: {:?}",
            comparison.cheapest
        );
        prop_assert!(table.contains("No plan can serve"), "{table}");
        return Ok(());
    };
    let Some(cheapest) = comparison.cheapest.as_deref() else {
        return Err(TestCaseError::fail(format!(
            "at {calls}: no cheapest\n{table}"
        )));
    };
    let first = index(cheapest);
    prop_assert!(!over[first], "at {calls}: {cheapest} is over capacity");
    prop_assert!(
        costs[first] <= &least + &total,
        "at {calls}: {} is cheapest at {}, the model's least is {least}",
        cheapest,
        costs[first]
    );
    let exact = total == zero();
    if exact {
        // The first of the plans that can serve and cost the least, in the order
        // given.
        let want = *serving.iter().find(|i| costs[**i] == least).unwrap();
        prop_assert_eq!(cheapest, name(want), "at {}", calls);
    }
    // The table says "cheapest" on the rows that can serve and cost the least:
    // exactly those when the figures are exact, never one the model prices above
    // the least by more than rounding; "over capacity" on the others' rows.
    for (i, cost) in costs.iter().enumerate() {
        let row = table
            .lines()
            .find(|l| {
                l.strip_prefix(&name(i))
                    .is_some_and(|rest| rest.starts_with("  "))
            })
            .unwrap_or_else(|| panic!("no row for {} in\n{table}", name(i)));
        let marked = row.contains(" cheapest ");
        prop_assert_eq!(row.contains(" over capacity "), over[i], "{}", row);
        if over[i] {
            prop_assert!(!marked, "at {calls}: {row}\n{table}");
        } else if exact {
            prop_assert_eq!(marked, *cost == least, "at {}: {}\n{}", calls, row, table);
        } else if *cost > &least + &total {
            prop_assert!(!marked, "at {calls}: {row}\n{table}");
        }
    }
    Ok(())
}

proptest! {
    // About 1 s each in a debug build.
    #![proptest_config(ProptestConfig::with_cases(80))]

    #[test]
    fn the_comparison_prices_and_breaks_even_as_the_exact_model(case in case()) {
        check_case(&case, false)?;
    }

    /// Where a kink lies past the largest volume reported, the lines cross beyond it
    /// only where they do.
    #[test]
    fn plans_with_a_kink_past_the_largest_volume_break_even_as_the_model(
        case in far_kink_case()
    ) {
        check_case(&case, false)?;
    }

    /// Inputs whose products leave an exact decimal are refused with an error, never
    /// a panic; those that fit are priced as the model prices them.
    #[test]
    fn overflow_sized_inputs_are_an_error_not_a_panic(case in huge_case()) {
        let plans = plans(&case);
        let rates = rate_table(&case);
        match Comparison::compute(&profile(&case, case.calls), &plans, &rates) {
            Ok(comparison) => {
                let _ = comparison.to_string();
                let trend = PriceTrend::from(TrendRate::per_month(dec("-0.01")).unwrap());
                let _ = Projection::compute(&comparison, &trend, 3);
                check_case(&case, true)?;
            }
            Err(CompareError::Overflow { what, .. }) => prop_assert!(!what.is_empty()),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

/// A case of two plans over a period, with the token shares of a ledger's profile.
fn pair_case(
    period: Period,
    tokens: (u64, u64),
    token_calls: (Decimal, Decimal),
    specs: [Spec; 2],
) -> Case {
    let serverless = ServerlessRates {
        on_demand: dec("0.00002"),
        standing: dec("0.0000048"),
        usage: dec("0.0000233"),
    };
    Case {
        token_calls: Some(token_calls),
        ..Case::from_parts((
            period,
            Decimal::from(1000),
            1_000_000,
            0,
            0,
            tokens.0,
            tokens.1,
            Rates {
                hosting: [dec("0.23"), dec("0.23")],
                storage: dec("0.14"),
                data_in: dec("0.016"),
                data_out: dec("0.016"),
                serverless: vec![serverless; 6],
            },
            specs.into(),
        ))
    }
}

/// The case a run of the property test shrank to: 500 tokens in at 3 USD per
/// million, charged on a third of the calls (a ledger's `token_calls`, 1/3 held as
/// 0.333…3 at 28 digits), against 0.50 USD per 1,000 calls. By AWS's rules (here:
/// the receipts' token lines) both cost the same a call made:
///   per token:     500 × 3 ÷ 1,000,000 = 0.0015 USD a call that carries tokens,
///                  × 1/3 of the calls = 0.0005 USD a call made;
///   per 1,000:     0.50 ÷ 1,000 = 0.0005 USD a call.
/// At the share held, 0.0015 × 0.333…3 = 0.00049999…95 (32 places), 5 × 10^-32
/// short of 0.0005: a residue of the rounding, no difference, so the two cost the
/// same at every volume, in the code and in the model.
#[test]
fn a_third_of_the_calls_charged_tokens_at_the_price_per_call_cost_the_same_at_every_volume() {
    let third = Decimal::ONE / Decimal::from(3);
    let case = pair_case(
        Period::Month,
        (500, 256),
        (third, Decimal::ZERO),
        [
            Spec::PerMillionTokens {
                input: dec("3"),
                output: dec("15"),
            },
            Spec::PerThousand(dec("0.5")),
        ],
    );
    let comparison = Comparison::compute(
        &profile(&case, case.calls),
        &plans(&case),
        &rate_table(&case),
    )
    .unwrap();
    // Both curves hold 0.0005 a call: 0.00049999…95 rounds to it at 28 places.
    for i in 0..2 {
        let curve = &comparison.plan(&name(i)).unwrap().curve;
        assert_eq!(curve.usd_per_call, dec("0.0005"), "{}", name(i));
    }
    super::break_even::assert_same_at_every_volume(
        &comparison.break_evens[0],
        "plan 0 and plan 1 cost the same at every volume",
    );
    // The model says so too, and the whole case checks out.
    let model = model_split(&case);
    assert_eq!(model.verdicts, [Verdict::Same]);
    assert!(model.points.is_empty() && !model.beyond);
    check_case(&case, false).unwrap();
}

/// The same residue in a slope: 1 output token at 15 USD per million on two
/// thirds of the calls (0.666…67 at 28 digits) is
///   1 × 15 ÷ 1,000,000 × 2/3 = 0.00001 USD a call made,
/// the overage of a subscription of 500 USD a day with no calls included, 0.00001
/// a call from the first. Equal slopes: the per-token plan costs 500 USD a day
/// less at every volume and never breaks even, where the residue (0.000015 ×
/// 0.666…67 = 0.00001000…0005, 34 places, 5 × 10^-34 a call steeper) would have
/// it cross at 500 ÷ (5 × 10^-34) = 10^36 calls a day, beyond 10^18.
#[test]
fn two_thirds_of_the_calls_charged_tokens_at_a_subscriptions_overage_never_break_even() {
    let two_thirds = Decimal::TWO / Decimal::from(3);
    let case = pair_case(
        Period::Day,
        (1, 1),
        (Decimal::ZERO, two_thirds),
        [
            Spec::PerMillionTokens {
                input: dec("0"),
                output: dec("15"),
            },
            Spec::Subscription {
                fee: dec("500"),
                period: Period::Day,
                quota: Some((dec("0"), dec("0.00001"))),
            },
        ],
    );
    let comparison = Comparison::compute(
        &profile(&case, case.calls),
        &plans(&case),
        &rate_table(&case),
    )
    .unwrap();
    assert_eq!(
        comparison.plan("plan 0").unwrap().curve.usd_per_call,
        dec("0.00001")
    );
    let be = &comparison.break_evens[0];
    assert!(be.points.is_empty(), "{:?}", be.points);
    assert_eq!(be.regions.len(), 1);
    assert_eq!(be.regions[0].cheaper.as_deref(), Some("plan 0"));
    // 1,000 calls a day: 500 + 1,000 × 0.00001 = 500.01 against 1,000 × 0.00001.
    assert_eq!(
        be.summary,
        "plan 0 is cheaper at every volume: it never breaks even with plan 1 \
         (500.00 USD less at 1,000 calls per day)"
    );
    let model = model_split(&case);
    assert_eq!(model.verdicts, [Verdict::A]);
    assert!(model.points.is_empty() && !model.beyond);
    check_case(&case, false).unwrap();
}

/// The case a run of the overflow-sized property test found: a subscription of
/// 0.0001 USD a month with 10^15 calls included and 10^9 USD a call beyond,
/// against serverless at 1 GB and 10^9 USD a second, 1 ns a call (billed 1 ms),
/// over a day (24 h of the month's 730). By AWS's rules (docs/cli.md):
///   subscription: 0.0001 × 24 ÷ 730 = 0.0000032876712… USD a day for the
///                 first 10^15 × 24 ÷ 730 = 32,876,712,328,767.1… calls, then
///                 10^9 USD a call;
///   serverless:   0.001 s × 10^9 = 10^6 USD a call, nothing at 0 calls.
/// Serverless is cheaper up to 0.0000032876712… ÷ 10^6 = 3.2876712… × 10^-12
/// calls, the subscription from there to where its overage catches up,
///   0.0000032876712… + 10^9 × (V − 32,876,712,328,767.1…) = 10^6 × V,
///   V = (10^9 × 32,876,712,328,767.1… − 0.0000032876712…) ÷ (10^9 − 10^6)
///     ≈ 32,909,621,950,717.8 calls,
/// and serverless again above. The included calls' rounding bound, times the
/// 10^9 overage (about 0.0033 USD), is no bound at 0 calls, where no call is
/// beyond the quota: the fee of 0.0000033 USD there is a difference.
#[test]
fn a_fee_a_day_below_a_quotas_rounding_times_its_overage_still_breaks_even_at_0_calls() {
    let big = dec("1000000000");
    let serverless = ServerlessRates {
        on_demand: big,
        standing: big,
        usage: big,
    };
    let case = Case::from_parts((
        Period::Day,
        Decimal::from(1_000_000_000_000_000u64),
        1,
        0,
        0,
        1,
        1,
        Rates {
            hosting: [big, big],
            storage: big,
            data_in: big,
            data_out: big,
            serverless: vec![serverless; 6],
        },
        vec![
            Spec::Subscription {
                fee: dec("0.0001"),
                period: Period::Month,
                quota: Some((dec("1000000000000000"), big)),
            },
            Spec::Serverless {
                gb: 1,
                provisioned: None,
            },
        ],
    ));
    let model = model_split(&case);
    assert_eq!(model.verdicts, [Verdict::B, Verdict::A, Verdict::B]);
    assert!(!model.beyond);
    // The first crossing: 0.0001 × 24 ÷ 730 ÷ 10^6 = 24 ÷ (730 × 10^10) calls.
    assert_eq!(
        model.points[0],
        Q::new(
            BigInt::from(24),
            BigInt::from(730) * BigInt::from(10).pow(10)
        )
    );
    // The second: (10^9 × 10^15 × 24 ÷ 730 − 0.0001 × 24 ÷ 730) ÷ (10^9 − 10^6).
    let t = Q::new(BigInt::from(24), BigInt::from(730));
    let second = (qi(10i128.pow(24)) * &t - q(dec("0.0001")) * &t) / qi(999_000_000);
    assert_eq!(model.points[1], second);
    check_case(&case, true).unwrap();
}

/// The case a run of the overflow-sized property test found: over a year
/// (31,536,000 s), calls of 1 ns (billed 1 ms) with 2^40 bytes in, serverless at
/// 3 GB with 200 provisioned (standing 0.0001 USD a second, inference duration
/// 0.0001, on demand 0.23) against 4 GB on demand (0.0001 a second). By AWS's
/// rules (docs/cli.md), both pay the same per call up to the provisioned
/// concurrency's 200 × 31,536,000 s ÷ 10^-9 s = 6,307,200,000,000,000,000 calls
/// (0.001 s × 0.0001 plus the same data in), and the first pays the standing
///   200 × 0.0001 × 31,536,000 = 630,720 USD
/// more; beyond, its calls cost 0.001 × (0.23 − 0.0001) = 0.0002299 USD more
/// each. The lines never cross: 4 GB is cheaper at every volume up to the
/// 6,307,200,000,000,000,000 calls it can serve, and never breaks even. Their
/// difference at the kink, 630,720 USD, is within the code's bounds of the 2^40
/// bytes' data charge × 6.3 × 10^18 calls, so it may take them to touch there,
/// but the same plan is cheaper either side: no break-even beyond 10^18.
#[test]
fn a_touch_at_a_kink_beyond_10_18_calls_is_no_break_even() {
    let rate = |on_demand: &str, standing: &str, usage: &str| ServerlessRates {
        on_demand: dec(on_demand),
        standing: dec(standing),
        usage: dec(usage),
    };
    let big = dec("1000000000");
    let mut serverless = vec![rate("1000000000", "1000000000", "1000000000"); 6];
    serverless[2] = rate("0.23", "0.0001", "0.0001");
    serverless[3] = rate("0.0001", "1000000000", "1000000000");
    let case = Case::from_parts((
        Period::Year,
        Decimal::from(1_000_000_000_000_000u64),
        1,
        1 << 40,
        0,
        1,
        1,
        Rates {
            hosting: [big, big],
            storage: big,
            data_in: big,
            data_out: big,
            serverless,
        },
        vec![
            Spec::Serverless {
                gb: 3,
                provisioned: Some(200),
            },
            Spec::Serverless {
                gb: 4,
                provisioned: None,
            },
        ],
    ));
    let model = model_split(&case);
    assert_eq!(model.verdicts, [Verdict::B]);
    assert!(model.points.is_empty() && !model.beyond);
    assert_eq!(model.diff.values, [qi(630_720), qi(630_720)]);
    let comparison = Comparison::compute(
        &profile(&case, case.calls),
        &plans(&case),
        &rate_table(&case),
    )
    .unwrap();
    let s = &comparison.break_evens[0].summary;
    assert!(
        s.contains("it can serve") && s.contains("never breaks even"),
        "{s}"
    );
    check_case(&case, true).unwrap();
}
