//! A model-based property test of the standing-capacity accrual.
//!
//! Random runs of profile refreshes (a rate stands, nothing stands, the rate is
//! not known) and metered calls (each recorded when it ends or later, so not in
//! the order the calls began) are played against [`Totals`] as the client plays
//! them. After every step the accrual is compared with a reference worked out
//! here, apart from the code under test, as AWS bills standing capacity: the
//! rates in force make a piecewise-constant timeline, and each stretch of it costs
//! its rate × its wall time, from the first metered call's start to the latest
//! time the accrual was brought to (a call's end, or a refresh that changed the
//! rate). A rate may announce later ones (terms AWS published ahead of their
//! dates): from each one's date, until a refresh replaces the rate, the stretch is
//! at the announced rate, whether or not anything happens then. The ML storage
//! rate announces its own, at dates of their own: from each one's date the
//! storage is at its rate, the capacity at whatever rate it is then. Times fall on
//! any µs (not only whole ms), so the accrual's count of every nanosecond and the
//! parts' instance-hours by the µs are both exercised.
//! The reference sums rate × microseconds exactly in `Decimal`s and never
//! divides: it is compared with the accrual by cross-multiplying, in integers.

use super::{InstanceClock, StandingRate, Totals, VariantSlot};
use crate::billing::AmortizedShare;
use crate::pricing::PriceOrigin;
use num_bigint::BigInt;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// 2024-01-31T23:00:00Z: the runs span February's start, an hour on, so that
/// storage is prorated over January's 31 days and then over February's 29.
const T0_SECS: u64 = 1_706_742_000;
/// 2024-02-01T00:00:00Z, in µs after `T0_SECS`.
const FEBRUARY: i64 = 3_600_000_000;
/// Microseconds in an hour.
const HOUR_US: i128 = 3_600_000_000;
/// The µs of January 2024 and of February 2024 each divide this one evenly
/// (31 × 29 days): storage sums of both months compare over it without a division.
const MONTHS_US: i128 = 31 * 29 * 86_400_000_000;
/// How long before the first profile was applied a call may begin (it waited
/// for its endpoint to be described).
const LEAD_US: i64 = 5_000_000;
/// The refreshes and call starts fall within two hours (in µs).
const SPAN_US: i64 = 7_200_000_000;

/// What stands, as AWS bills it: USD an hour for all the instances, how many,
/// where the rate came from, their ML storage per month (`None`: unknown), and
/// the later rates the price source announced, by date: the capacity's and the
/// storage's.
#[derive(Debug, Clone, PartialEq)]
struct Stands {
    usd_per_hour: Decimal,
    instances: u32,
    live: bool,
    storage_per_month: Option<Decimal>,
    terms: Vec<Term>,
    storage_terms: Vec<StorageTerm>,
}

/// A later rate announced: USD an hour for all the instances from `on` (µs after
/// `T0_SECS`), and where it came from.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    on: i64,
    usd_per_hour: Decimal,
    live: bool,
}

/// A later ML storage rate announced: USD a month for all the volumes from `on`
/// (µs after `T0_SECS`), and where it came from.
#[derive(Debug, Clone, PartialEq)]
struct StorageTerm {
    on: i64,
    per_month: Decimal,
    live: bool,
}

fn origin(live: bool) -> PriceOrigin {
    match live {
        true => PriceOrigin::Live,
        false => PriceOrigin::Cache,
    }
}

impl Stands {
    /// Nothing stands: no instance, no storage (still unknown if it was).
    fn nothing(&self) -> Stands {
        Stands {
            usd_per_hour: Decimal::ZERO,
            instances: 0,
            live: self.live,
            storage_per_month: self.storage_per_month.map(|_| Decimal::ZERO),
            terms: Vec::new(),
            storage_terms: Vec::new(),
        }
    }

    /// USD an hour for all the instances, and where the rate came from, at `t`:
    /// the latest term announced by then, else its own.
    fn at(&self, t: i64) -> (Decimal, bool) {
        match self.terms.iter().rfind(|term| term.on <= t) {
            Some(term) => (term.usd_per_hour, term.live),
            None => (self.usd_per_hour, self.live),
        }
    }

    /// ML storage USD a month for all the volumes at `t` (`None`: unknown): the
    /// latest storage term announced by then, else its own.
    fn storage_at(&self, t: i64) -> Option<Decimal> {
        match self.storage_terms.iter().rfind(|term| term.on <= t) {
            Some(term) => Some(term.per_month),
            None => self.storage_per_month,
        }
    }

    /// The standing rate a profile showing this gives the totals.
    fn rate(&self) -> StandingRate {
        StandingRate {
            usd_per_hour_all_instances: self.usd_per_hour,
            instances: self.instances,
            capacity_from: (origin(self.live), None),
            storage_usd_per_month: self.storage_per_month,
            storage_from: self.storage_per_month.map(|_| (PriceOrigin::Live, None)),
            unreserved_fraction: None,
            parts: std::sync::Arc::from([]),
            beside_unknown: false,
            unpriced_instances: 0,
            terms: match self.terms.is_empty() {
                true => super::no_terms(),
                false => self
                    .terms
                    .iter()
                    .map(|term| super::StandingTerm {
                        on: at(term.on),
                        usd_per_hour_all_instances: term.usd_per_hour,
                        capacity_from: (origin(term.live), None),
                        unreserved_fraction: None,
                    })
                    .collect(),
            },
            storage_terms: match self.storage_terms.is_empty() {
                true => super::no_storage_terms(),
                false => self
                    .storage_terms
                    .iter()
                    .map(|term| super::StorageTerm {
                        on: at(term.on),
                        usd_per_month: term.per_month,
                        storage_from: (origin(term.live), None),
                    })
                    .collect(),
            },
        }
    }
}

/// What a refresh of the variant's profile found.
#[derive(Debug, Clone)]
enum Refresh {
    Stands(Stands),
    Nothing,
    Unknown,
}

/// One step of a run, at its time on the wall clock.
#[derive(Debug, Clone)]
enum Step {
    /// A refresh applied at the time (µs after `T0_SECS`).
    Refresh(i64, Refresh),
    /// A call from `start` to `end`, recorded once it ended.
    Record { start: i64, end: i64 },
}

#[derive(Debug, Clone)]
struct Run {
    /// The first profile found, applied at 0.
    first: Stands,
    /// In the order they happened: refreshes at non-decreasing times, each call
    /// recorded at or after its end.
    steps: Vec<Step>,
    /// Calls are charged [`Allocation::Amortized`](crate::billing::Allocation).
    amortized: bool,
}

fn stands() -> impl Strategy<Value = Stands> {
    let per_instance = || prop::sample::select(vec!["0.23", "1.408", "1.212", "0.2", "0"]);
    let per_month = || prop::sample::select(vec!["0", "7", "14.7", "10.5"]);
    let storage = prop::option::of(per_month());
    // Up to two terms announced, most often none, at any time of the span (before
    // the refresh that applies the rate too); as many of the storage rate's, at
    // dates of their own (or the same, on the 100 s grid).
    let terms = prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec((time(), per_instance(), any::<bool>()), 1..=2),
    ];
    let storage_terms = prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec((time(), per_month(), any::<bool>()), 1..=2),
    ];
    (
        per_instance(),
        0u32..=4,
        any::<bool>(),
        storage,
        terms,
        storage_terms,
    )
        .prop_map(
            |(per_instance, instances, live, storage, terms, storage_terms)| {
                let usd = |per_instance: &str| {
                    per_instance.parse::<Decimal>().unwrap() * Decimal::from(instances)
                };
                let mut terms: Vec<Term> = terms
                    .into_iter()
                    .map(|(on, per_instance, live)| Term {
                        on,
                        usd_per_hour: usd(per_instance),
                        live,
                    })
                    .collect();
                terms.sort_by_key(|term| term.on);
                terms.dedup_by_key(|term| term.on);
                // A storage rate not known announces nothing.
                let mut storage_terms: Vec<StorageTerm> = match storage {
                    None => Vec::new(),
                    Some(_) => storage_terms
                        .into_iter()
                        .map(|(on, per_month, live)| StorageTerm {
                            on,
                            per_month: per_month.parse().unwrap(),
                            live,
                        })
                        .collect(),
                };
                storage_terms.sort_by_key(|term| term.on);
                storage_terms.dedup_by_key(|term| term.on);
                Stands {
                    usd_per_hour: usd(per_instance),
                    instances,
                    live,
                    storage_per_month: storage.map(|s| s.parse().unwrap()),
                    terms,
                    storage_terms,
                }
            },
        )
}

fn refresh() -> impl Strategy<Value = Refresh> {
    prop_oneof![
        6 => stands().prop_map(Refresh::Stands),
        2 => Just(Refresh::Nothing),
        2 => Just(Refresh::Unknown),
    ]
}

/// A time in the span: any µs, a whole ms, or on a 100 s grid so that times
/// often coincide.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        0..SPAN_US,
        (0..SPAN_US / 1_000).prop_map(|ms| ms * 1_000),
        (0..=SPAN_US / 100_000_000).prop_map(|n| n * 100_000_000)
    ]
}

fn run() -> impl Strategy<Value = Run> {
    let refreshes = prop::collection::vec((time(), refresh(), any::<u8>()), 0..=10);
    // In µs: none, under a ms, under a s, whole ms under 10 min, any in the span.
    let duration = prop_oneof![
        Just(0),
        0..1_000i64,
        0..1_000_000i64,
        (0..600_000i64).prop_map(|ms| ms * 1_000),
        0..SPAN_US
    ];
    let delay = prop_oneof![Just(0), 0..5_000_000i64, 0..1_800_000_000i64];
    let start = prop_oneof![
        -LEAD_US..SPAN_US,
        (-LEAD_US / 1_000..SPAN_US / 1_000).prop_map(|ms| ms * 1_000)
    ];
    let calls = prop::collection::vec((start, duration, delay, any::<u8>()), 1..=12);
    (stands(), refreshes, calls, any::<bool>()).prop_map(|(first, refreshes, calls, amortized)| {
        // Each step at its time; steps at the same µs in a random order.
        let mut timed: Vec<((i64, u8), Step)> = refreshes
            .into_iter()
            .map(|(at, refresh, tie)| ((at, tie), Step::Refresh(at, refresh)))
            .collect();
        for (start, duration, delay, tie) in calls {
            // A call that began before the first profile was found ends after.
            let end = (start + duration).max(0);
            timed.push(((end + delay, tie), Step::Record { start, end }));
        }
        timed.sort_by_key(|(key, _)| *key);
        Run {
            first,
            steps: timed.into_iter().map(|(_, step)| step).collect(),
            amortized,
        }
    })
}

fn at(us: i64) -> SystemTime {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(T0_SECS);
    match u64::try_from(us) {
        Ok(us) => t0 + Duration::from_micros(us),
        Err(_) => t0 - Duration::from_micros(us.unsigned_abs()),
    }
}

/// What the reference sums over a stretch of time.
#[derive(Debug, Default)]
struct Figures {
    /// USD per hour × µs, over all stretches.
    usd_us: Decimal,
    /// Storage USD per month × µs, of the stretches in January and in February.
    storage_us: [Decimal; 2],
    /// Whether a stretch's storage rate was known.
    storage_known: bool,
    /// Instance-µs per rate an instance-hour and its source (instances standing).
    instance_us: BTreeMap<(Decimal, bool), i128>,
}

/// The reference: the rates in force over time, and where the accrual runs.
struct Reference {
    /// Each rate from its time (µs after `T0_SECS`) until the next one's; the
    /// first also before it was found (the instances stood as the first profile
    /// found them while the first call waited for it).
    timeline: Vec<(i64, Stands)>,
    /// From the earliest start of a call recorded to the latest time the accrual
    /// was brought to: a call's end or a refresh that changed the rate.
    span: Option<(i64, i64)>,
}

impl Reference {
    fn new(first: Stands) -> Self {
        Reference {
            timeline: vec![(i64::MIN, first)],
            span: None,
        }
    }

    fn in_force(&self) -> &Stands {
        &self.timeline.last().expect("a first rate").1
    }

    fn in_force_at(&self, t: i64) -> &Stands {
        let i = self.timeline.partition_point(|(from, _)| *from <= t);
        &self.timeline[i.saturating_sub(1)].1
    }

    /// A refresh at `t`: a rate found that differs from the one in force stands
    /// from `t` on, and the stretch until `t` is at the one before; nothing found
    /// stands at nothing; a rate not known leaves the last good one in force.
    fn refresh(&mut self, t: i64, refresh: &Refresh) {
        let next = match refresh {
            Refresh::Stands(stands) => stands.clone(),
            Refresh::Nothing => self.in_force().nothing(),
            Refresh::Unknown => return,
        };
        if next == *self.in_force() {
            return;
        }
        self.timeline.push((t, next));
        if let Some((_, end)) = &mut self.span {
            *end = (*end).max(t);
        }
    }

    fn record(&mut self, start: i64, end: i64) {
        self.span = Some(match self.span {
            None => (start, end),
            Some((first, last)) => (first.min(start), last.max(end)),
        });
    }

    /// Adds the stretches from `from` to `to` to `figures`: each rate's stretch
    /// cut at the dates of the terms it announced, the capacity's and the
    /// storage's.
    fn add(&self, from: i64, to: i64, figures: &mut Figures) {
        for (i, (begins, stands)) in self.timeline.iter().enumerate() {
            let ends = self.timeline.get(i + 1).map_or(i64::MAX, |next| next.0);
            let (a, b) = (from.max(*begins), to.min(ends));
            if a >= b {
                continue;
            }
            let mut cuts: Vec<i64> = stands
                .terms
                .iter()
                .map(|term| term.on)
                .chain(stands.storage_terms.iter().map(|term| term.on))
                .filter(|on| (a..b).contains(on))
                .collect();
            cuts.sort_unstable();
            cuts.insert(0, a);
            cuts.push(b);
            for pair in cuts.windows(2) {
                Self::add_one(stands, pair[0], pair[1], figures);
            }
        }
    }

    /// Adds the stretch from `a` to `b` of `stands` to `figures`, at its rates at
    /// `a` (no term's date is within it).
    fn add_one(stands: &Stands, a: i64, b: i64, figures: &mut Figures) {
        if a >= b {
            return;
        }
        let (usd_per_hour, live) = stands.at(a);
        let us = Decimal::from(b - a);
        figures.usd_us += usd_per_hour * us;
        if let Some(per_month) = stands.storage_at(a) {
            figures.storage_known = true;
            let january = Decimal::from(b.min(FEBRUARY) - a.min(FEBRUARY));
            figures.storage_us[0] += per_month * january;
            figures.storage_us[1] += per_month * (us - january);
        }
        if stands.instances > 0 {
            let per_instance = (usd_per_hour / Decimal::from(stands.instances)).normalize();
            *figures.instance_us.entry((per_instance, live)).or_default() +=
                i128::from(b - a) * i128::from(stands.instances);
        }
    }

    /// What accrued over the span.
    fn accrued(&self) -> Figures {
        let mut figures = Figures::default();
        if let Some((from, to)) = self.span {
            self.add(from, to, &mut figures);
        }
        figures
    }
}

/// `d` in units of 10⁻²⁰ (`d` has at most 20 places).
fn units(d: Decimal) -> i128 {
    assert!(d.scale() <= 20, "{d} has more than 20 places");
    d.mantissa() * 10i128.pow(20 - d.scale())
}

/// Whether `got` is `instance_us` instance-µs in instance-hours, as a receipt
/// states them (by the µs): µs ÷ 3.6·10⁹, which ends only when 9 divides the µs,
/// so it is rounded where `Decimal` ends. The bound: within one unit in the 28th
/// significant digit of the exact quotient, or in the 28th decimal place when
/// that is coarser (`Decimal` keeps no more): |got − µs ÷ 3.6·10⁹| ≤ 10⁻ᵖ with
/// p = min(28, 27 − E), 10ᴱ ≤ µs ÷ 3.6·10⁹ < 10ᴱ⁺¹. Checked by cross-multiplying
/// in integers: |got·10ˢ·3.6·10⁹ − µs·10ˢ|·10ᵖ ≤ 3.6·10⁹·10ˢ, s got's places.
fn hours_within(got: Decimal, instance_us: i128) -> bool {
    let per_hour = BigInt::from(3_600_000_000u64);
    let us = BigInt::from(instance_us);
    let ten = |n: i64| BigInt::from(10).pow(u32::try_from(n).expect("a small power"));
    if instance_us <= 0 {
        return got.is_zero() && instance_us == 0;
    }
    // 3.6·10⁹·10ᴱ ≤ µs, for E of either sign.
    let at_least = |e: i64| match e >= 0 {
        true => &per_hour * ten(e) <= us,
        false => per_hour <= &us * ten(-e),
    };
    let mut e = 0;
    while !at_least(e) {
        e -= 1;
    }
    while at_least(e + 1) {
        e += 1;
    }
    let p = u32::try_from((27 - e).min(28)).expect("fewer than 10²⁷ hours");
    let off = BigInt::from(got.mantissa()) * &per_hour - &us * ten(got.scale().into());
    let bound = per_hour * ten(got.scale().into());
    off.magnitude() * ten(p.into()).magnitude() <= *bound.magnitude()
}

/// The accrual's running figures: instances at 20 places and at the receipts'
/// 12, and storage at 20.
fn accrual_of(totals: &Totals, slot: VariantSlot) -> (Decimal, Decimal, Option<Decimal>) {
    let inner = totals.lock();
    let state = &inner.endpoints[slot.endpoint].variants[slot.variant];
    (
        state.accrued_fine_usd,
        state.accrued_usd,
        state.storage_fine_usd,
    )
}

fn check(run: &Run) -> Result<(), TestCaseError> {
    let totals = Totals::default();
    let endpoint = totals.endpoint_slot("e");
    let slot = totals.variant_slot(endpoint, "AllTraffic");
    let mut reference = Reference::new(run.first.clone());
    totals.set_standing(slot, run.first.rate(), at(0));

    // The bound: each stretch the code accrues is rounded once, at 20 places,
    // half to even for the instances (≤ ½·10⁻²⁰ each); storage once per calendar
    // month it spans, after a division kept at 28 places (≤ 10⁻²⁰ each, ≤ 2
    // months a stretch here). A stretch is cut at each replaced rate kept for
    // back-fills (at most one a refresh): a record accrues at most refreshes + 1
    // stretches back before the first call and as many on to its end, a refresh
    // as many up to it. Each of those is cut again at the dates of the (at most
    // two) terms its rate announced and of the (at most two) its storage rate
    // did: into at most five. Far below what any rate misplaced by 1 µs would
    // move it (the closest two rates here differ by $0.196/h, 5.4·10⁻¹¹ $ a µs;
    // the most stretches, (2 × 12 + 10) × 11 × 5, bound it by 9.4·10⁻¹⁸ $; the
    // closest two storage rates, $7 and $10.5 a month, differ by 1.3·10⁻¹² $ a µs
    // in January, their bound is 2 × 1,870 × 10⁻²⁰ = 3.7·10⁻¹⁷ $).
    let refreshes = run
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Refresh(..)))
        .count();
    let records = run.steps.len() - refreshes;
    let stretches = i128::try_from((2 * records + refreshes) * (refreshes + 1) * 5).unwrap();

    let mut last = accrual_of(&totals, slot);
    // The amortised receipts: the accrual and span at the previous one, and what
    // the parts of all after the first charged.
    let mut previous_receipt: Option<(Decimal, (i64, i64))> = None;
    let mut first_receipt = None;
    let mut charged = Decimal::ZERO;
    for (i, step) in run.steps.iter().enumerate() {
        match step {
            Step::Refresh(t, refresh) => {
                reference.refresh(*t, refresh);
                match refresh {
                    Refresh::Stands(stands) => totals.set_standing(slot, stands.rate(), at(*t)),
                    Refresh::Nothing => {
                        totals.nothing_stands(slot, at(*t));
                    }
                    Refresh::Unknown => {}
                }
            }
            Step::Record { start, end } => {
                let clock = InstanceClock {
                    // The profile the call began with (once one was applied, as
                    // here from before any call ended, the accrual runs at the
                    // latest one applied).
                    standing: reference.in_force_at(*start).rate(),
                    started_at: at(*start),
                    ended_at: at(*end),
                };
                reference.record(*start, *end);
                let span = reference.span.expect("a call recorded");
                let share = run
                    .amortized
                    .then(|| totals.amortized_since_previous_call(slot, Some(&clock), at(*end)));
                let recorded = totals.record(
                    &BTreeMap::new(),
                    endpoint,
                    Some(slot),
                    Decimal::ZERO,
                    None,
                    Some(clock),
                    None,
                    true,
                    false,
                );
                let accrual = recorded.accrual.expect("a metered call has an accrual");
                let (_, shown, _) = accrual_of(&totals, slot);
                prop_assert_eq!(accrual.accrued_usd, shown, "step {}: the receipt's", i);
                if let Some(share) = share {
                    match (share, previous_receipt) {
                        (AmortizedShare::First, None) => first_receipt = Some(shown),
                        (AmortizedShare::Accrued { parts, .. }, Some((before, (first, last)))) => {
                            // Nothing lost or charged twice: this receipt's parts are
                            // what accrued since the previous one.
                            let cost: Decimal = parts.iter().map(|p| p.cost_usd).sum();
                            prop_assert_eq!(cost, shown - before, "step {}: parts {:?}", i, parts);
                            charged += cost;
                            // And each rate's part is its instance-hours since then,
                            // to the µs: before the earlier span began and after it.
                            let mut since = Figures::default();
                            reference.add(span.0, first, &mut since);
                            reference.add(last, span.1, &mut since);
                            let got: BTreeMap<(Decimal, bool), Decimal> = parts
                                .iter()
                                .map(|p| {
                                    let live = p.source == PriceOrigin::Live;
                                    ((p.usd_per_instance_hour, live), p.instance_hours)
                                })
                                .collect();
                            prop_assert_eq!(got.len(), parts.len(), "step {}: one part a rate", i);
                            let rates: Vec<_> = got.keys().collect();
                            let expected: Vec<_> = since.instance_us.keys().collect();
                            prop_assert_eq!(rates, expected, "step {}: the parts' rates", i);
                            for (key, us) in &since.instance_us {
                                let hours = got[key];
                                prop_assert!(
                                    hours_within(hours, *us),
                                    "step {}: {} instance-hours at {:?}, not {} instance-µs",
                                    i,
                                    hours,
                                    key,
                                    us
                                );
                            }
                        }
                        (share, _) => {
                            return Err(TestCaseError::fail(format!(
                                "step {i}: unexpected share {share:?}"
                            )));
                        }
                    }
                    previous_receipt = Some((shown, span));
                }
            }
        }

        let (fine, shown, storage) = accrual_of(&totals, slot);
        // Never less than before.
        prop_assert!(fine >= last.0, "step {}: {} after {}", i, fine, last.0);
        prop_assert!(shown >= last.1, "step {}: {} after {}", i, shown, last.1);
        prop_assert!(
            storage.unwrap_or_default() >= last.2.unwrap_or_default(),
            "step {}: storage {:?} after {:?}",
            i,
            storage,
            last.2
        );
        last = (fine, shown, storage);

        let expected = reference.accrued();
        // |fine − usd_us / 3.6·10⁹| ≤ stretches × ½·10⁻²⁰, × 3.6·10⁹ × 10²⁰.
        let error = units(fine) * HOUR_US - units(expected.usd_us);
        prop_assert!(
            error.abs() <= stretches * HOUR_US / 2,
            "step {}: accrued {} at 20 places, the rates' USD·µs {} (÷ 3.6·10⁹), span {:?}",
            i,
            fine,
            expected.usd_us,
            reference.span
        );
        // Shown at 12 places: the 20-place figure rounded half to even at 12,
        // in units of 10⁻²⁰ (10⁸ of them a pico-dollar): shown is whole
        // pico-dollars, within half of one of fine (2·|shown − fine| ≤ 10⁸), and
        // on a tie its last digit is even.
        prop_assert!(
            shown.scale() <= 12,
            "step {}: shown {} past 12 places",
            i,
            shown
        );
        let (shown_units, off) = (units(shown), units(shown) - units(fine));
        prop_assert!(
            2 * off.abs() < 100_000_000
                || (2 * off.abs() == 100_000_000 && (shown_units / 100_000_000) % 2 == 0),
            "step {}: shown {} is not {} rounded half to even at 12 places",
            i,
            shown,
            fine
        );
        // So within ½·10⁻¹² more of the rates' figure.
        let error = units(shown) * HOUR_US - units(expected.usd_us);
        prop_assert!(
            error.abs() <= (100_000_000 + stretches) * HOUR_US / 2,
            "step {}: shown {}, the rates' USD·µs {}",
            i,
            shown,
            expected.usd_us
        );
        // Storage, prorated over each month's own length: January's µs are
        // MONTHS_US / 29, February's MONTHS_US / 31.
        prop_assert_eq!(storage.is_some(), expected.storage_known, "step {}", i);
        let storage_us = units(expected.storage_us[0]) * 29 + units(expected.storage_us[1]) * 31;
        let error = units(storage.unwrap_or_default()) * MONTHS_US - storage_us;
        prop_assert!(
            error.abs() <= 2 * stretches * MONTHS_US,
            "step {}: storage {:?}, its USD·µs {:?}",
            i,
            storage,
            expected.storage_us
        );
    }
    if let (Some(first), Some((last, _))) = (first_receipt, previous_receipt) {
        prop_assert_eq!(charged, last - first, "the receipts after the first");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever the order calls are recorded in and the refreshes between them,
    /// the accrual is each stretch at the rate then in force, within its rounding.
    #[test]
    fn the_accrual_is_each_stretch_at_the_rate_then_in_force(run in run()) {
        check(&run)?;
    }
}
