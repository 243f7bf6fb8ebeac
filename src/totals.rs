//! Running totals: what has been spent so far, per client, endpoint and variant,
//! and what each variant's standing capacity has accrued.
//!
//! One lock guards all of it, so a receipt's running totals include exactly the
//! calls recorded before it, however many run at once. The sums are exact
//! [`Decimal`]s: a million receipts add up to the running total to the last digit.
//!
//! The totals also keep the clocks that allocation and accrual need: each
//! endpoint's processor-sharing clock (how much instance time a call was
//! allocated while others shared the instances) and each variant's accrual
//! (what its instances and ML storage cost while the client was calling them).
//! Read them with [`Meter::totals`](crate::Meter::totals), which returns a
//! [`TotalsSnapshot`].

use crate::FastMap;
use crate::billing::{
    Accrual, AccrualCharge, AccrualSource, AccruedCapacity, AmortizedShare, FS_PER_NANOSECOND,
    SharedTime, div_round_dp, hours, mul_round_dp, round_cost,
};
use crate::pricing::PriceOrigin;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Running sums at one moment.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TotalsSnapshot {
    /// Calls recorded. An async invocation is one call, counted at its
    /// submission: its settlement adds its cost, not a call (as metrics and
    /// reports count it).
    pub calls: u64,
    /// Calls whose receipts were not fully priced (a line
    /// [`Unpriced`](crate::billing::LinePrice::Unpriced)): their priced lines
    /// are in the sums, the rest in none. An async invocation counts once in a
    /// meter's totals: at its submission if that receipt is not fully priced,
    /// else at its settlement if that one is not. A settlement by another meter
    /// (the [`PendingInference`](crate::client::PendingInference) copy settled
    /// in another process) counts there if it is not fully priced, whatever its
    /// submission was: those totals hold its priced lines, and none of the
    /// submission's.
    #[serde(default)]
    pub unpriced_calls: u64,
    /// [`unpriced_calls`](Self::unpriced_calls) per endpoint: only endpoints
    /// with at least one.
    #[serde(default)]
    pub unpriced_by_endpoint: HashMap<String, u64>,
    /// What the priced lines of every receipt recorded add up to, in USD. While
    /// [`unpriced_calls`](Self::unpriced_calls) is above 0 it is a lower bound:
    /// what those calls' unpriced lines cost is in no figure (their receipts
    /// say why, and a WARN did).
    pub client_usd: Decimal,
    /// Per endpoint, in USD (priced lines only, as `client_usd`).
    pub by_endpoint: HashMap<String, Decimal>,
    /// Per `endpoint/variant`, in USD.
    pub by_variant: HashMap<String, Decimal>,
    /// Per `endpoint/inference component`, in USD (calls that named one).
    #[serde(default)]
    pub by_component: HashMap<String, Decimal>,
    /// Per tag key, per value, in USD: the receipts carrying that tag (the
    /// client's default tags included), so a call with two tags counts in both.
    /// At most [`MAX_TAG_VALUES`] values per key: receipts with values past them
    /// count under [`OTHER_TAG_VALUE`](crate::sink::OTHER_TAG_VALUE) (`_other`, as
    /// the metrics' tag labels do; a value that is `_other` itself counts there too).
    #[serde(default)]
    pub by_tag: HashMap<String, HashMap<String, Decimal>>,
}

/// How many values of one tag key [`TotalsSnapshot::by_tag`] keeps apart, and a
/// [`BudgetScope::EachTagValue`](crate::budget::BudgetScope::EachTagValue) budget
/// begins budgets for (past it, new values share one, as `_other`): tags meant to
/// sum by (tenants, teams, features) stay well within it; a tag unique to each
/// call (a request id) would otherwise grow them without bound.
pub const MAX_TAG_VALUES: usize = 10_000;

#[derive(Default)]
struct VariantState {
    /// Shared, so that a snapshot copies it under the lock without allocating.
    name: Arc<str>,
    /// Whether a call to the variant has been recorded (snapshots list only those).
    recorded: bool,
    total_usd: Decimal,
    allocated_compute_usd: Decimal,
    /// What the instances cost so far, at 20 decimal places.
    accrued_fine_usd: Decimal,
    /// `accrued_fine_usd` at the receipts' 12 places.
    accrued_usd: Decimal,
    /// ML storage so far, at 20 places (`None` while its rate is unknown).
    storage_fine_usd: Option<Decimal>,
    /// The part of `accrued_fine_usd` no inference component reserved, at 20 places
    /// (`None` unless the variant hosts components with known shares).
    unreserved_fine_usd: Option<Decimal>,
    /// What the variant's standing capacity costs, as of its latest profile
    /// (`None` until one is applied): the accrual runs at it, whichever call's
    /// receipt records it (a call that began before a refresh carries the old one).
    standing: Option<StandingRate>,
    /// Rates replaced before the accrual began (no call recorded yet), and the
    /// one in force when it began once replaced, each with when it was replaced,
    /// oldest first: a call recorded later that began before a replacement
    /// accrues each stretch at the rate then in force.
    earlier: Vec<(StandingRate, SystemTime)>,
    /// The earliest start of a metered call: where accrual begins.
    accrual_started_at: Option<SystemTime>,
    last_accrual_at: Option<SystemTime>,
    /// The reference clock at `last_accrual_at`, when the totals keep one (see
    /// [`TotalsInner::mono_now`]).
    last_accrual_mono: Option<Duration>,
    last_call_at: Option<SystemTime>,
    /// This process's calls to the variant and the fleet's, smoothed over the
    /// fleet's last flush intervals (`None` without a fleet): amortised gaps
    /// are this process's share.
    fleet_share: Option<(u64, u64)>,
    /// What the capacity accrued since the previous call an amortised receipt
    /// charged (`None` until the first: only [`Allocation::Amortized`] keeps it).
    ///
    /// [`Allocation::Amortized`]: crate::billing::Allocation::Amortized
    since_previous_call: Option<SincePreviousCall>,
    /// Where the rates of the stretches accrued so far came from, per charge and
    /// source (see [`Accrual::priced_from`]): rebuilt only when a stretch adds one.
    priced_from: Arc<[AccrualSource]>,
}

/// What a variant's capacity accrued since the previous amortised call, per rate.
#[derive(Default)]
struct SincePreviousCall {
    /// `accrued_fine_usd` (20 places) when the previous call took its part.
    base_fine_usd: Decimal,
    /// `accrued_usd` (12 places) then.
    base_usd: Decimal,
    /// Each rate's part, in the order the rates were first in force; a rate is
    /// its USD per instance-hour and its price source (the latest note kept, as
    /// [`Accrual::priced_from`] keeps it), so that a count change at the same
    /// rate adds to a part and a price change starts another.
    parts: Vec<GapPart>,
    /// Instances × µs of the variant's own that stood unpriced meanwhile
    /// ([`StandingRate::unpriced_instances`]).
    unpriced_instance_micros: u128,
}

/// The capacity accrued at one rate since the previous amortised call.
struct GapPart {
    usd_per_instance_hour: Decimal,
    from: RateFrom,
    /// Instances × µs accrued at the rate.
    instance_micros: u128,
    /// What they cost, at 20 places (the accrual's own stretches added up).
    fine_usd: Decimal,
}

impl SincePreviousCall {
    /// `instances` accrued `fine_usd` over `micros` µs at `clock`'s rate.
    fn add(&mut self, clock: &StandingRate, micros: u64, fine_usd: Decimal) {
        if clock.beside_unknown {
            self.unpriced_instance_micros = self
                .unpriced_instance_micros
                .saturating_add(u128::from(micros) * u128::from(clock.unpriced_instances));
        }
        if clock.instances == 0 {
            return;
        }
        // Exact for instances of one type (n × rate ÷ n); with a shadow or
        // pending variant billed alongside, their average rate.
        let usd_per_instance_hour =
            (clock.usd_per_hour_all_instances / Decimal::from(clock.instances)).normalize();
        let (source, note) = &clock.capacity_from;
        let part = match self
            .parts
            .iter_mut()
            .find(|p| p.usd_per_instance_hour == usd_per_instance_hour && p.from.0 == *source)
        {
            Some(part) => part,
            None => {
                self.parts.push(GapPart {
                    usd_per_instance_hour,
                    from: (*source, None),
                    instance_micros: 0,
                    fine_usd: Decimal::ZERO,
                });
                self.parts.last_mut().expect("just pushed")
            }
        };
        if part.from.1 != *note {
            part.from.1 = note.clone();
        }
        part.instance_micros = part
            .instance_micros
            .saturating_add(u128::from(micros) * u128::from(clock.instances));
        part.fine_usd += fine_usd;
    }

    /// The parts since the previous call, each costed so that they add up to
    /// `accrued_usd − base_usd` exactly (the difference of the accrual's rounded
    /// running figures at each part's end), with the instance-hours of the
    /// variant's own that stood unpriced meanwhile; and a new mark at
    /// `accrued_usd`.
    fn take(
        &mut self,
        accrued_fine_usd: Decimal,
        accrued_usd: Decimal,
    ) -> (Vec<AccruedCapacity>, Decimal) {
        let unpriced = instance_hours(std::mem::take(&mut self.unpriced_instance_micros));
        let mut fine_so_far = std::mem::replace(&mut self.base_fine_usd, accrued_fine_usd);
        let mut charged_so_far = std::mem::replace(&mut self.base_usd, accrued_usd);
        let parts = std::mem::take(&mut self.parts);
        let last = parts.len().saturating_sub(1);
        let parts = parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                fine_so_far += part.fine_usd;
                let charged_until = match i == last {
                    true => accrued_usd,
                    false => round_cost(fine_so_far),
                };
                let cost_usd = charged_until - charged_so_far;
                charged_so_far = charged_until;
                AccruedCapacity {
                    usd_per_instance_hour: part.usd_per_instance_hour,
                    source: part.from.0,
                    note: part.from.1,
                    instance_hours: instance_hours(part.instance_micros),
                    cost_usd,
                }
            })
            .collect();
        (parts, unpriced)
    }
}

/// Instance-µs in instance-hours, to 28 significant digits (µs ÷ 3.6·10⁹ ends
/// only when 9 divides the µs; otherwise the quotient is rounded there).
fn instance_hours(instance_micros: u128) -> Decimal {
    match i128::try_from(instance_micros) {
        Ok(n) if n < 1 << 96 => {
            (Decimal::from_i128_with_scale(n, 0) / Decimal::from(MICROS_PER_HOUR)).normalize()
        }
        _ => Decimal::MAX,
    }
}

/// Microseconds in an hour.
const MICROS_PER_HOUR: u64 = 3_600_000_000;

/// Nanoseconds in an hour.
const NANOS_PER_HOUR: u128 = 3_600_000_000_000;

/// `usd_per_hour` × `micros` µs, rounded half to even at 20 decimal places, in
/// integers (the accrual runs on every call); `None` when it does not fit.
pub(crate) fn hourly_stretch(usd_per_hour: Decimal, micros: u64) -> Option<Decimal> {
    stretch_at(
        usd_per_hour,
        u128::from(micros),
        u128::from(MICROS_PER_HOUR),
    )
}

/// `usd_per_hour` × `units` of time, `per_hour` of which make an hour, rounded
/// half to even at 20 decimal places, in integers; `None` when it does not fit.
fn stretch_at(usd_per_hour: Decimal, units: u128, per_hour: u128) -> Option<Decimal> {
    const SCALE: u32 = 20;
    if usd_per_hour.is_sign_negative() || usd_per_hour.scale() > SCALE {
        return None;
    }
    let mantissa = u128::try_from(usd_per_hour.mantissa()).ok()?;
    let numerator = mantissa
        .checked_mul(units)?
        .checked_mul(10u128.checked_pow(SCALE - usd_per_hour.scale())?)?;
    let (q, r) = (numerator / per_hour, numerator % per_hour);
    let q = match (2 * r).cmp(&per_hour) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    };
    Some(Decimal::from_i128_with_scale(
        i128::try_from(q).ok().filter(|&q| q < 1 << 96)?,
        SCALE,
    ))
}

/// What standing capacity at `usd_per_hour` costs over `elapsed`, to the
/// nanosecond, rounded half to even at 20 places: the one stretch of every
/// accrual (the process's and the fleet's), so that both count the same time.
pub(crate) fn standing_stretch(usd_per_hour: Decimal, elapsed: Duration) -> Decimal {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    stretch_at(usd_per_hour, elapsed.as_nanos(), NANOS_PER_HOUR)
        .or_else(|| hourly_stretch(usd_per_hour, micros))
        .unwrap_or_else(|| {
            usd_per_hour
                .checked_mul(Decimal::from(micros))
                .and_then(|usd_us| usd_us.checked_div(Decimal::from(MICROS_PER_HOUR)))
                .unwrap_or_else(|| mul_round_dp(usd_per_hour, hours(elapsed), 20))
                .round_dp(20)
        })
}

/// How many replaced rates a variant keeps for the calls that began before them:
/// more refreshes than that before its first call ends merge the oldest stretches.
const MAX_EARLIER_RATES: usize = 16;

impl VariantState {
    /// The standing capacity costs `rate` from `now` on: what accrued until now is
    /// at the rate in force before.
    fn replace_standing(&mut self, rate: StandingRate, now: SystemTime, mono: Option<Duration>) {
        if self.standing.as_ref() == Some(&rate) {
            return;
        }
        if let Some(old) = self.standing.take() {
            if self.last_accrual_at.is_some() {
                self.accrue_to(&old, now, mono);
            }
            // Kept for calls recorded later that began before it was replaced:
            // every rate until a call is recorded (the calls in flight accrue from
            // their start when they are, the time until now at the old rate), and
            // then the one in force when the accrual began, which a call that
            // began before the first recorded back-fills at; not the ones after.
            let back_fills = match self.accrual_started_at {
                None => true,
                Some(began) => self.earlier.last().is_none_or(|(_, until)| *until < began),
            };
            if back_fills {
                if self.earlier.len() == MAX_EARLIER_RATES {
                    self.earlier.remove(0);
                }
                self.earlier.push((old, now));
            }
        }
        self.standing = Some(rate);
    }

    /// Nothing stands from `now` on: the standing rate is replaced by a zero one
    /// (no instances, no storage), so that the time until capacity stands again
    /// is not charged at the old rate. Returns where the replaced rate came from,
    /// when one stood.
    fn stand_at_nothing(&mut self, now: SystemTime, mono: Option<Duration>) -> Option<RateFrom> {
        let rate = self.standing.as_ref()?;
        let from = rate.capacity_from.clone();
        let none = StandingRate {
            usd_per_hour_all_instances: Decimal::ZERO,
            instances: 0,
            storage_usd_per_month: rate.storage_usd_per_month.map(|_| Decimal::ZERO),
            unreserved_fraction: None,
            // Nothing stands at any later rate either.
            terms: no_terms(),
            storage_terms: no_storage_terms(),
            unpriced_instances: 0,
            ..rate.clone()
        };
        self.replace_standing(none, now, mono);
        Some(from)
    }

    /// Accrues from the last accrual to `now` (the reference clock then: `mono`)
    /// at `rate`; a wall clock that stepped forward since is not charged for
    /// its step. Time the host was suspended is: the instances ran (and AWS
    /// billed them) meanwhile, and the reference clock counts it.
    fn accrue_to(&mut self, rate: &StandingRate, now: SystemTime, mono: Option<Duration>) {
        let Some(mut from) = self.last_accrual_at else {
            return;
        };
        if now <= from {
            return;
        }
        let last_mono = std::mem::replace(&mut self.last_accrual_mono, mono);
        if let (Some(mono), Some(last_mono)) = (mono, last_mono) {
            let wall = now.duration_since(from).unwrap_or_default();
            let passed = passed(wall, mono, last_mono);
            if passed < wall {
                from = now - passed;
            }
        }
        self.accrue_stretches(rate, from, now);
        self.last_accrual_at = Some(now);
    }

    /// Accrues over one call: from its start, when it is the first or began
    /// before the first, to its end. Again for the same call, nothing.
    fn accrue_call(&mut self, clock: InstanceClock, mono: Option<Duration>) {
        let rate = self.standing.get_or_insert(clock.standing).clone();
        match self.accrual_started_at {
            None => {
                self.accrual_started_at = Some(clock.started_at);
                self.last_accrual_at = Some(clock.started_at);
                // The first stretch (the call's own time, and any wait
                // for its endpoint's discovery) is not checked against
                // the reference clock: its start on it is not known.
                self.last_accrual_mono = None;
            }
            Some(first) if clock.started_at < first => {
                self.accrue_stretches(&rate, clock.started_at, first);
                self.accrual_started_at = Some(clock.started_at);
            }
            Some(_) => {}
        }
        self.accrue_to(&rate, clock.ended_at, mono);
    }

    /// Adds what the standing capacity cost from `from` to `to`, each stretch
    /// before a kept rate was replaced (see `earlier`) at the rate in force then,
    /// the rest at `current`.
    fn accrue_stretches(&mut self, current: &StandingRate, mut from: SystemTime, to: SystemTime) {
        let earlier = std::mem::take(&mut self.earlier);
        for (rate, until) in &earlier {
            if from >= to {
                break;
            }
            if from < *until {
                let stop = (*until).min(to);
                self.accrue(rate, from, stop);
                from = stop;
            }
        }
        self.earlier = earlier;
        if from < to {
            self.accrue(current, from, to);
        }
    }

    /// Adds what the standing capacity (and storage) cost from `from` to `to`:
    /// each stretch from the date of a term `clock` announced at that term's rate
    /// (AWS bills an instance-hour, and a GB-month, at the rate in force when it
    /// ran), the capacity's and the storage's each at their own dates, the rest
    /// at `clock`'s own.
    fn accrue(&mut self, clock: &StandingRate, mut from: SystemTime, to: SystemTime) {
        if clock.terms.is_empty() && clock.storage_terms.is_empty() {
            return self.accrue_at(clock, from, to);
        }
        let mut capacity = clock.terms.iter().peekable();
        let mut storage = clock.storage_terms.iter().peekable();
        let mut rate = std::borrow::Cow::Borrowed(clock);
        loop {
            let on = match (capacity.peek(), storage.peek()) {
                (Some(c), Some(s)) => c.on.min(s.on),
                (Some(c), None) => c.on,
                (None, Some(s)) => s.on,
                (None, None) => break,
            };
            if on >= to {
                break;
            }
            if on > from {
                self.accrue_at(&rate, from, on);
                from = on;
            }
            let mut then = match rate {
                std::borrow::Cow::Borrowed(clock) => clock.without_terms(),
                std::borrow::Cow::Owned(rate) => rate,
            };
            if let Some(term) = capacity.next_if(|term| term.on == on) {
                then.usd_per_hour_all_instances = term.usd_per_hour_all_instances;
                then.capacity_from = term.capacity_from.clone();
                then.unreserved_fraction = term.unreserved_fraction;
            }
            if let Some(term) = storage.next_if(|term| term.on == on) {
                then.storage_usd_per_month = Some(term.usd_per_month);
                then.storage_from = Some(term.storage_from.clone());
            }
            rate = std::borrow::Cow::Owned(then);
        }
        if from < to {
            self.accrue_at(&rate, from, to);
        }
    }

    /// Adds what the standing capacity (and storage) cost from `from` to `to` at
    /// `clock`'s own rate.
    fn accrue_at(&mut self, clock: &StandingRate, from: SystemTime, to: SystemTime) {
        let elapsed = to.duration_since(from).unwrap_or_default();
        // Kept at 20 places, shown at 12: rounding each stretch to the pico-dollar
        // would drift below what the instances cost.
        // Every nanosecond counts: a stretch cut to whole µs lost up to 1 µs of
        // what the instances cost at every call recorded.
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let stretch = standing_stretch(clock.usd_per_hour_all_instances, elapsed);
        self.accrued_fine_usd = (self.accrued_fine_usd + stretch).round_dp(20);
        if let Some(since) = &mut self.since_previous_call {
            since.add(clock, micros, stretch);
        }
        if let Some(fraction) = clock.unreserved_fraction {
            let free = (stretch * fraction).round_dp(20);
            self.unreserved_fine_usd = Some(self.unreserved_fine_usd.unwrap_or_default() + free);
        }
        self.accrued_usd = round_cost(self.accrued_fine_usd);
        self.priced_by(AccrualCharge::Capacity, &clock.capacity_from);
        if let Some(per_month) = clock.storage_usd_per_month {
            let stretch = storage_stretch(per_month, from, to);
            self.storage_fine_usd = Some(self.storage_fine_usd.unwrap_or_default() + stretch);
            if let Some(from) = &clock.storage_from {
                self.priced_by(AccrualCharge::Storage, from);
            }
        }
    }

    /// A stretch of `charge` was priced from `from`: listed once per charge and
    /// source, with the latest stretch's note. A stretch at another source than
    /// the ones before adds an entry; none is merged into another source's.
    fn priced_by(&mut self, charge: AccrualCharge, from: &RateFrom) {
        let (source, note) = from;
        let same = |s: &AccrualSource| s.charge == charge && s.price_source == *source;
        match self.priced_from.iter().position(same) {
            Some(i) if self.priced_from[i].note == *note => {}
            Some(i) => {
                let mut sources = self.priced_from.to_vec();
                sources[i].note = note.clone();
                self.priced_from = sources.into();
            }
            None => {
                let mut sources = self.priced_from.to_vec();
                sources.push(AccrualSource::new(charge, *source, note.clone()));
                self.priced_from = sources.into();
            }
        }
    }
}

/// Where a standing rate came from: its price source and the note of its
/// provenance (why a fallback was used).
pub(crate) type RateFrom = (PriceOrigin, Option<Arc<str>>);

/// The host's clocks that the meter's wall-clock readings are checked against
/// (see [`Totals::with_monotonic_reference`]); a test's host can be suspended.
///
/// The wall clock steps (NTP, a clock set by hand), which is not time the
/// instances ran; a host suspended (a laptop asleep, a VM paused) is, as
/// SageMaker's instances keep running and AWS bills them by the second. Only a
/// clock that counts the suspension tells the two apart.
pub(crate) trait HostClocks: Send + Sync {
    /// Time since a fixed start, on [`Instant`]'s clock (on Linux and macOS it
    /// stands still while the host is suspended).
    fn awake(&self) -> Duration;
    /// Time since a fixed start, counting the time the host was suspended, on a
    /// clock that does not step with the wall clock (Linux's `CLOCK_BOOTTIME`);
    /// `None` where the host has none.
    fn with_suspend(&self) -> Option<Duration>;
}

/// The clocks of the host the process runs on.
struct SystemClocks;

impl HostClocks for SystemClocks {
    fn awake(&self) -> Duration {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn with_suspend(&self) -> Option<Duration> {
        let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: `ts` is valid for writes of a `timespec`; `clock_gettime`
        // fills it when it returns 0, and it is read only then.
        let ts = unsafe {
            if libc::clock_gettime(libc::CLOCK_BOOTTIME, ts.as_mut_ptr()) != 0 {
                return None;
            }
            ts.assume_init()
        };
        Some(Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        ))
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn with_suspend(&self) -> Option<Duration> {
        None
    }
}

struct TotalsInner {
    /// How many calls one instance serves at full speed (processor sharing).
    per_instance: u32,
    /// The host's clocks the wall clock given is checked against, if it is
    /// ([`Totals::with_monotonic_reference`]).
    host: Option<Arc<dyn HostClocks>>,
    calls: u64,
    /// Calls not fully priced (see [`TotalsSnapshot::unpriced_calls`]).
    unpriced_calls: u64,
    client_usd: Decimal,
    /// Endpoints in the order their slot was first asked for.
    endpoints: Vec<EndpointTotals>,
    /// Where each endpoint is in `endpoints`, looked up by `&str`.
    slots: FastMap<String, usize>,
    /// Clocks whose calls run on another clock's capacity (an adapter's on its base
    /// component's): where their calls go, by `&str`.
    shared_clocks: FastMap<String, usize>,
    /// USD per tag value, per tag key.
    tags: FastMap<String, FastMap<String, Decimal>>,
}

impl TotalsInner {
    /// Adds a receipt's `cost_usd` to each of its `tags`' totals (past
    /// [`MAX_TAG_VALUES`] values of a key, to its `_other`).
    fn add_to_tags(&mut self, tags: &BTreeMap<String, String>, cost_usd: Decimal) {
        for (key, value) in tags {
            if !self.tags.contains_key(key.as_str()) {
                self.tags.insert(key.clone(), FastMap::default());
            }
            let Some(values) = self.tags.get_mut(key.as_str()) else {
                continue;
            };
            if let Some(usd) = values.get_mut(value.as_str()) {
                *usd += cost_usd;
                continue;
            }
            let value = if values.len() < MAX_TAG_VALUES {
                value.as_str()
            } else {
                crate::sink::OTHER_TAG_VALUE
            };
            *values.entry(value.to_owned()).or_default() += cost_usd;
        }
    }

    /// The reference clock now, when the wall clock is checked against it: the
    /// host's clock that counts the time it was suspended, where it has one
    /// ([`HostClocks::with_suspend`]), or else its awake time.
    fn mono_now(&self) -> Option<Duration> {
        let host = self.host.as_ref()?;
        Some(host.with_suspend().unwrap_or_else(|| host.awake()))
    }

    /// The wall clock stepped back from `from` (the last reading before the step
    /// the clock that saw it had, if known) to `now` (NTP, a VM resumed): each
    /// accrual first counts its standing capacity up to the last reading before
    /// the step (`from`, or another sharing clock's later one), which stood in
    /// real time, then goes on from the new time, as the sharing clocks do,
    /// rather than stand still until it caught up (while the receipts'
    /// allocations go on). Every sharing clock whose last event is after `now`
    /// goes on from `now` too: the step is counted once, not again by each
    /// clock that sees it at its next event.
    fn clock_stepped_back(&mut self, from: Option<SystemTime>, now: SystemTime) {
        let mut from = from;
        for endpoint in &mut self.endpoints {
            let clock = &mut endpoint.sharing;
            if let Some(last) = clock.last_event.filter(|last| *last > now) {
                from = Some(from.map_or(last, |from| from.max(last)));
                clock.last_event = Some(now);
                // The load before the step is not averaged over the moments
                // since the new time: the next flush publishes the calls in
                // flight from it on.
                clock.load_since = Some(now);
                clock.load_fs = 0;
                clock.last_event_mono = None;
            }
        }
        for variant in self
            .endpoints
            .iter_mut()
            .flat_map(|e| e.variants.iter_mut())
        {
            if let (Some(from), Some(rate)) = (from, variant.standing.clone()) {
                variant.accrue_to(&rate, from, None);
            }
            // An amortised call's gap, too, runs from the new time: from a
            // previous call after it, the gap would be 0 and the call's
            // receipt charge nothing while the accrual goes on.
            for at in [
                &mut variant.accrual_started_at,
                &mut variant.last_accrual_at,
                &mut variant.last_call_at,
            ] {
                if at.is_some_and(|at| at > now) {
                    *at = Some(now);
                }
            }
            // A rate replaced after the new time was replaced before it in real
            // time: the time lived again is at the rate in force now.
            for (_, until) in &mut variant.earlier {
                *until = (*until).min(now);
            }
        }
    }

    /// Moves the sharing clock of the endpoint at `index` to `now` (see
    /// [`SharingClock::advance`]; `mono`: the reference clock now), and
    /// handles a step back of the wall clock it sees, as a call joining it does.
    fn advance_clock(&mut self, index: usize, now: SystemTime, mono: Option<Duration>) {
        let per_instance = self.per_instance;
        let clock = &mut self.endpoints[index].sharing;
        let before = clock.last_event;
        if clock.advance(now, per_instance, mono) {
            self.clock_stepped_back(before, now);
        }
    }

    /// The slot of `endpoint`, made on first use.
    fn endpoint_slot(&mut self, endpoint: &str) -> EndpointSlot {
        let next = self.endpoints.len();
        let index = *self.slots.entry_ref(endpoint).or_insert(next);
        if index == next {
            self.endpoints.push(EndpointTotals {
                name: endpoint.into(),
                ..EndpointTotals::default()
            });
        }
        EndpointSlot(index)
    }
}

impl Default for TotalsInner {
    fn default() -> Self {
        TotalsInner {
            per_instance: 1,
            host: None,
            calls: 0,
            unpriced_calls: 0,
            client_usd: Decimal::ZERO,
            endpoints: Vec::new(),
            slots: FastMap::default(),
            shared_clocks: FastMap::default(),
            tags: FastMap::default(),
        }
    }
}

#[derive(Default)]
struct EndpointTotals {
    /// Shared, so that a snapshot copies it under the lock without allocating.
    name: Arc<str>,
    /// The endpoint's processor-sharing clock.
    sharing: SharingClock,
    /// `None` until a call to the endpoint is recorded.
    usd: Option<Decimal>,
    /// Its calls not fully priced (see [`TotalsSnapshot::unpriced_calls`]).
    unpriced_calls: u64,
    /// Variants in the order their slot was first asked for (a handful at most).
    variants: Vec<VariantState>,
}

/// Between an endpoint's and a component's name in the name of an inference
/// component's slot (never in an endpoint's name).
pub(crate) const COMPONENT_SEPARATOR: char = '\u{1f}';

/// The processor-sharing clock of one endpoint (see
/// [`Allocation::ProcessorSharing`](crate::billing::Allocation::ProcessorSharing)).
///
/// `allocated_fs` is the instance time allocated so far to a call that has been in
/// flight since the clock started, in instance-femtoseconds: while `n` calls are
/// in flight on `k` instances it advances at `min(1/m, k/n)` of wall time,
/// rounded down at every step. A call is in flight while one of its attempts is
/// (see [`CallShare`]); its share is the clock's advance over its attempts'
/// stretches: O(1) per event, and the shares of all calls together never exceed
/// `k` × the time some call was in flight.
///
/// With a fleet, the other processes' calls in flight count too: each process
/// publishes its average over each flush interval, and `others_milli` is their sum
/// as last read, so `n` is this process's calls plus the fleet's others.
#[derive(Debug, Default)]
struct SharingClock {
    /// Instances serving the endpoint; 0 until its profile is known, counted as
    /// one meanwhile (under- rather than over-allocating).
    instances: u32,
    in_flight: u32,
    /// Other processes' calls in flight on the endpoint, in thousandths (fleet).
    others_milli: u64,
    /// When `others_milli` was last read from the fleet.
    others_read_at: Option<SystemTime>,
    allocated_fs: u128,
    /// This process's calls in flight integrated over time since `load_since`,
    /// in call-femtoseconds: what it publishes to the fleet.
    load_fs: u128,
    load_since: Option<SystemTime>,
    last_event: Option<SystemTime>,
    /// The reference clock at `last_event`, when the totals keep one (see
    /// [`Totals::with_monotonic_reference`]).
    last_event_mono: Option<Duration>,
    /// The provisioned concurrency the clock's calls are served on before any
    /// goes on demand: that of the endpoint's only variant, when it is
    /// serverless with provisioned concurrency (`None`: none, or not known yet).
    provisioned: Option<u32>,
    /// This process's calls whose attempt in flight holds a slot of the
    /// provisioned concurrency (see [`take_slot`](Self::take_slot)).
    on_slots: u32,
}

impl SharingClock {
    /// A call's attempt goes out: it takes a slot of the provisioned concurrency
    /// when one is free, and is served on demand otherwise, as AWS serves a
    /// request only while every provisioned slot is busy. Returns the slots busy
    /// before it (the fleet's others, as last read, rounded down, taken for
    /// calls on slots) and whether it took one. While the provisioned
    /// concurrency is not known (the endpoint's profile is not applied yet),
    /// every attempt takes one: the slots busy are then the calls in flight.
    fn take_slot(&mut self) -> (u32, bool) {
        let others = u32::try_from(self.others_milli / 1000).unwrap_or(u32::MAX);
        let busy = self.on_slots.saturating_add(others);
        let free = self.provisioned.is_none_or(|slots| busy < slots);
        if free {
            self.on_slots += 1;
        }
        (busy, free)
    }

    /// [`advance`](Self::advance) to a time read a while ago (a load the fleet
    /// read before its writes, a stream's last part): taken to be the last event
    /// when it is before it, never for the wall clock stepping back, which would
    /// rewind the clock to it.
    fn advance_late(&mut self, at: SystemTime, per_instance: u32, mono: Option<Duration>) {
        let at = self.last_event.map_or(at, |last| last.max(at));
        self.advance(at, per_instance, mono);
    }

    /// Moves the clock to `now` at the share in force since the last event.
    /// Returns whether the wall clock stepped back (see [`CLOCK_STEPPED_BACK`]).
    ///
    /// `mono` is the reference clock now, when the totals keep one: a wall clock
    /// that moved more than a second further than it since the last event
    /// stepped forward (NTP, a clock set by hand), and only the time that passed
    /// is shared out, not the step. Time the host was suspended passed (the
    /// reference clock counts it).
    fn advance(&mut self, now: SystemTime, per_instance: u32, mono: Option<Duration>) -> bool {
        let last = *self.last_event.get_or_insert(now);
        self.load_since.get_or_insert(last);
        if now <= last {
            // A reading taken before the last event (its call waited for the lock):
            // nothing elapsed. The wall clock stepped back (NTP, a VM resumed)
            // further than any such wait: the clock goes on from the new time, or
            // every call until it caught up would be allocated nothing, a $0
            // compute line.
            if last
                .duration_since(now)
                .is_ok_and(|back| back > CLOCK_STEPPED_BACK)
            {
                self.last_event = Some(now);
                // As in [`TotalsInner::clock_stepped_back`]: the load before the step
                // is not averaged over the span since the new time.
                self.load_since = Some(now);
                self.load_fs = 0;
                self.last_event_mono = mono;
                return true;
            }
            // The last event's reference reading stands: the next stretch is
            // measured from it on both clocks, or the wall clock would seem to
            // have moved further than the reference one by what this reading
            // lagged, and the stretch would be cut to the reference one.
            if self.last_event_mono.is_none() {
                self.last_event_mono = mono;
            }
            return false;
        }
        let last_mono = std::mem::replace(&mut self.last_event_mono, mono);
        if self.in_flight > 0 {
            let wall = now.duration_since(last).unwrap_or_default();
            let elapsed = match (mono, last_mono) {
                (Some(mono), Some(last_mono)) => passed(wall, mono, last_mono),
                _ => wall,
            };
            // Whole nanoseconds (the clocks' own resolution): truncating each
            // stretch between events to whole µs lost up to 1 µs per event.
            let elapsed_fs = elapsed.as_nanos() * FS_PER_NANOSECOND;
            let k = u128::from(self.instances.max(1));
            let m = u128::from(per_instance.max(1));
            self.load_fs += elapsed_fs * u128::from(self.in_flight);
            // min(1/m, k/n): 1/m while n ≤ k·m; n in thousandths of a call (the
            // fleet's others are an average), which is exact for whole calls.
            let n_milli = u128::from(self.in_flight) * 1000 + u128::from(self.others_milli);
            self.allocated_fs += if n_milli <= k * m * 1000 {
                elapsed_fs / m
            } else {
                elapsed_fs * k * 1000 / n_milli
            };
        }
        self.last_event = Some(now);
        false
    }
}

/// How far back a clock reading must be, before the last one, to be taken for the
/// wall clock stepping back rather than a reading that waited for the lock; and
/// how much further than the reference clock the wall clock must move to be taken
/// for stepping forward.
pub(crate) const CLOCK_STEPPED_BACK: Duration = Duration::from_secs(1);

/// The time that passed between two readings of the reference clock, for a
/// wall-clock stretch of `wall`: `wall`, unless it is more than
/// [`CLOCK_STEPPED_BACK`] longer than what the reference clock measured (the
/// wall clock stepped forward): then that.
fn passed(wall: Duration, mono: Duration, last_mono: Duration) -> Duration {
    let measured = mono.saturating_sub(last_mono);
    if wall > measured + CLOCK_STEPPED_BACK {
        measured
    } else {
        wall
    }
}

/// A sharing clock a call is to join, found when it begins ([`Totals::seat_on`]).
#[derive(Clone)]
pub(crate) struct ClockSeat {
    totals: Arc<Mutex<TotalsInner>>,
    endpoint: usize,
}

impl fmt::Debug for ClockSeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockSeat")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl ClockSeat {
    /// The call's first attempt joins the clock at `now`: in flight on it until
    /// that attempt steps off ([`CallShare::step_off`]) or the call leaves, on
    /// a slot of the provisioned concurrency if one is free
    /// ([`SharingClock::take_slot`]; the attempt is on demand otherwise).
    pub(crate) fn join(&self, now: SystemTime) -> CallShare {
        let mut inner = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let per_instance = inner.per_instance;
        let mono = inner.mono_now();
        let clock = &mut inner.endpoints[self.endpoint].sharing;
        let before = clock.last_event;
        let stepped_back = clock.advance(now, per_instance, mono);
        clock.in_flight += 1;
        let (slots_busy_at_start, on_slot) = clock.take_slot();
        let since_fs = clock.allocated_fs;
        if stepped_back {
            inner.clock_stepped_back(before, now);
        }
        CallShare {
            totals: self.totals.clone(),
            endpoint: self.endpoint,
            seat: Mutex::new(Seat {
                since_fs: Some(since_fs),
                on_slot,
                slots_busy_at_start,
                ..Seat::default()
            }),
        }
    }
}

/// A call on an endpoint's sharing clock, from [`ClockSeat::join`]: in flight on
/// it only while one of its attempts is (from the attempt's request going out to
/// its end, [`step_off`](Self::step_off); the next attempt
/// [`rejoin`](Self::rejoin)s), not while the SDK backs off or an adaptive rate
/// limiter holds it between attempts: other calls' shares do not shrink for a call
/// that is not at the model, and its back-off is billed to nobody. Its allocation
/// is the sum of the clock's advances over its attempts' stretches, kept in O(1):
/// the clock's reading as the current stretch began, and the sums so far.
/// [`end`](Self::end) gives its share; dropped without it (a call that failed
/// before reaching the model), it just leaves the clock.
pub(crate) struct CallShare {
    totals: Arc<Mutex<TotalsInner>>,
    endpoint: usize,
    /// Where the call is on the clock. Locked before the totals, never after.
    seat: Mutex<Seat>,
}

/// A [`CallShare`]'s stretches on its clock, in instance-femtoseconds.
#[derive(Debug, Default)]
struct Seat {
    /// The clock's `allocated_fs` as the current stretch began; `None` while the
    /// call is off the clock (between attempts, or once it left).
    since_fs: Option<u128>,
    /// The clock's advance over the stretches of attempts that used the model (or
    /// were still in flight as the call left), so far.
    billed_fs: u128,
    /// Its advance over the latest stretch, billed or not.
    latest_fs: u128,
    /// Whether the call left the clock for good: only the first leaving counts.
    left: bool,
    /// Whether its attempt in flight holds a slot of the provisioned
    /// concurrency, given back as the attempt steps off or the call leaves
    /// (dropped too).
    on_slot: bool,
    /// The slots of the provisioned concurrency busy as the attempt the call
    /// is billed at the rate of went out, itself not included (see
    /// [`CallShare::slots_busy_at_start`]).
    slots_busy_at_start: u32,
    /// Whether an attempt of the call was billed (it used the model): from
    /// then on a later attempt's slots busy do not change the call's rate.
    billed_yet: bool,
}

impl fmt::Debug for CallShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallShare")
            .field("endpoint", &self.endpoint)
            .field("seat", &*self.seat())
            .finish_non_exhaustive()
    }
}

/// Where the clock is moved to as a call's stretch on it begins or ends.
#[derive(Debug, Clone, Copy)]
enum MoveTo {
    /// A reading of the meter's clock taken just now.
    Now(SystemTime),
    /// A time read a while ago (see [`SharingClock::advance_late`]).
    Late(SystemTime),
    /// Nowhere: the clock's own last event (a dropped call, no share read).
    LastEvent,
}

impl CallShare {
    /// The sharing clock the call joined (for telling whose clock it is).
    pub(crate) fn clock(&self) -> EndpointSlot {
        EndpointSlot(self.endpoint)
    }

    fn seat(&self) -> std::sync::MutexGuard<'_, Seat> {
        self.seat.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slots of the provisioned concurrency busy, itself not included (see
    /// [`SharingClock::take_slot`]), as the call's first billed attempt (one
    /// that used the model) went out; until one is billed, as its latest
    /// attempt went out (a throttled attempt is not served, on a slot or on
    /// demand, and a call none of whose attempts was seen using the model is
    /// billed its latest). When they are all the provisioned concurrency, AWS
    /// served that attempt on demand. A call is billed at that one rate: a
    /// later billed attempt that found the slots otherwise is billed at it too.
    pub(crate) fn slots_busy_at_start(&self) -> u32 {
        self.seat().slots_busy_at_start
    }

    /// Leaves the clock at `now`, if it has not left yet; the instance time
    /// allocated to the call's attempts that used the model, exact in
    /// instance-femtoseconds: the clock's advances over their stretches, an attempt
    /// still in flight as it leaves included, an attempt stepped off as not
    /// billed not ([`step_off`](Self::step_off)). With `latest`, the share of
    /// its latest attempt alone, billed or not: a receipt none of whose attempts
    /// was seen using the model bills its latest (see `bill_attempts` in the
    /// client). When the call already left ([`leave_at`](Self::leave_at)), its
    /// share as of then, whatever `now` is.
    pub(crate) fn end(&self, now: SystemTime, latest: bool) -> SharedTime {
        let mut seat = self.seat();
        self.leave(&mut seat, MoveTo::Now(now));
        SharedTime::from_fs(if latest {
            seat.latest_fs
        } else {
            seat.billed_fs
        })
    }

    /// The call leaves the clock at `now`, a reading of the meter's clock taken
    /// as the model finished with it (SageMaker answered), though its receipt is
    /// made later (its endpoint's rates are still being found): from then on it
    /// is not among the calls the instances are shared by, and
    /// [`end`](Self::end) gives its share as of `now`. Only the first leaving
    /// counts. A time read then and handed to `end` later instead would be
    /// behind the clock, by more than a second when other calls moved it on
    /// meanwhile, and taken for the wall clock stepping back.
    pub(crate) fn leave_at(&self, now: SystemTime) {
        self.leave(&mut self.seat(), MoveTo::Now(now));
    }

    /// [`leave_at`](Self::leave_at) a time read a while ago (a stream's last part,
    /// its receipt made when the caller let it go): when other calls moved the
    /// clock on since, the call leaves at the clock's last event, as a load change
    /// does, never taking the time for the wall clock stepping back.
    pub(crate) fn leave_late(&self, at: SystemTime) {
        self.leave(&mut self.seat(), MoveTo::Late(at));
    }

    /// The call's attempt ended at `now` (on the meter's clock) and the call steps
    /// off the clock until its next attempt's request goes out
    /// ([`rejoin`](Self::rejoin)), if it ever does; the stretch's advance is
    /// billed when `billed` (the attempt used the model). Nothing when the call
    /// is off the clock already, or left it.
    pub(crate) fn step_off(&self, now: SystemTime, billed: bool) {
        // A call that left is off the clock: `off` does nothing then.
        self.off(&mut self.seat(), MoveTo::Now(now), billed);
    }

    /// The call's next attempt's request goes out at `now`: it is in flight on
    /// the clock again, on a slot of the provisioned concurrency if one is free;
    /// while none of its attempts was billed, the slots it finds busy are the
    /// call's ([`slots_busy_at_start`](Self::slots_busy_at_start)). Nothing when
    /// it is on it already, or left it.
    pub(crate) fn rejoin(&self, now: SystemTime) {
        let mut seat = self.seat();
        if seat.left || seat.since_fs.is_some() {
            return;
        }
        let (since_fs, (busy, on_slot)) = self.move_clock(MoveTo::Now(now), |clock| {
            clock.in_flight += 1;
            (clock.allocated_fs, clock.take_slot())
        });
        seat.since_fs = Some(since_fs);
        seat.on_slot = on_slot;
        if !seat.billed_yet {
            seat.slots_busy_at_start = busy;
        }
    }

    /// Leaves the clock for good (see [`MoveTo`]), if it has not left yet: an
    /// attempt still in flight is billed (a success, a stream, an attempt its
    /// caller dropped).
    fn leave(&self, seat: &mut Seat, to: MoveTo) {
        if std::mem::replace(&mut seat.left, true) {
            return;
        }
        self.off(seat, to, true);
    }

    /// The current stretch ends (see [`MoveTo`]), its advance added to the call's
    /// billed ones when `billed`; nothing when the call is off the clock.
    fn off(&self, seat: &mut Seat, to: MoveTo, billed: bool) {
        let Some(since_fs) = seat.since_fs.take() else {
            return;
        };
        let on_slot = std::mem::take(&mut seat.on_slot);
        let stretch = self.move_clock(to, |clock| {
            clock.in_flight = clock.in_flight.saturating_sub(1);
            if on_slot {
                clock.on_slots = clock.on_slots.saturating_sub(1);
            }
            clock.allocated_fs.saturating_sub(since_fs)
        });
        seat.latest_fs = stretch;
        if billed {
            seat.billed_fs = seat.billed_fs.saturating_add(stretch);
            seat.billed_yet = true;
        }
    }

    /// Moves the call's clock to `to`, then `change`s it, under the totals' lock.
    fn move_clock<R>(&self, to: MoveTo, change: impl FnOnce(&mut SharingClock) -> R) -> R {
        let mut inner = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let per_instance = inner.per_instance;
        let mono = inner.mono_now();
        let clock = &mut inner.endpoints[self.endpoint].sharing;
        let before = clock.last_event;
        let stepped_back = match to {
            MoveTo::Now(now) => clock.advance(now, per_instance, mono).then_some(now),
            MoveTo::Late(at) => {
                clock.advance_late(at, per_instance, mono);
                None
            }
            MoveTo::LastEvent => None,
        };
        let changed = change(clock);
        if let Some(now) = stepped_back {
            inner.clock_stepped_back(before, now);
        }
        changed
    }
}

impl Drop for CallShare {
    fn drop(&mut self) {
        self.leave(&mut self.seat(), MoveTo::LastEvent);
    }
}

/// Exact running totals, safe under any number of concurrent calls.
#[derive(Default)]
pub(crate) struct Totals {
    inner: Arc<Mutex<TotalsInner>>,
}

// Counts, not the snapshot: a meter in a log line (`?meter`) does not list, nor
// hold every call for, every endpoint a long-lived process has called.
impl fmt::Debug for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Totals")
            .field("calls", &inner.calls)
            .field("client_usd", &inner.client_usd)
            .field("slots", &inner.endpoints.len())
            .finish_non_exhaustive()
    }
}

/// Where an endpoint's running totals are kept in [`Totals`]: found by name once
/// per endpoint profile (see [`Totals::endpoint_slot`]), then used by every call
/// without a look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndpointSlot(usize);

/// Where a variant's running totals and instance clock are kept in [`Totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VariantSlot {
    endpoint: usize,
    variant: usize,
}

impl VariantSlot {
    /// The slot of the endpoint this variant belongs to.
    pub(crate) fn endpoint(self) -> EndpointSlot {
        EndpointSlot(self.endpoint)
    }
}

/// What [`Totals::record`] hands back for the receipt.
pub(crate) struct Recorded {
    pub(crate) running_client_usd: Decimal,
    pub(crate) running_endpoint_usd: Decimal,
    pub(crate) accrual: Option<Accrual>,
}

/// What a variant's standing capacity costs over time, as one profile says, and
/// where its rates came from (a rate from another source is another rate: the
/// accrual's stretches at each are told apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StandingRate {
    /// Instances × USD per hour (or provisioned concurrency × USD per second × 3600).
    pub(crate) usd_per_hour_all_instances: Decimal,
    /// The instances (or provisioned concurrency) `usd_per_hour_all_instances`
    /// pays for, those of variants billed alongside included: amortised receipts
    /// state the instance-hours accrued.
    pub(crate) instances: u32,
    /// Where the instance-hour (or provisioned-concurrency) rate came from.
    pub(crate) capacity_from: RateFrom,
    /// ML storage of all instances, USD per month (`None` when unknown).
    pub(crate) storage_usd_per_month: Option<Decimal>,
    /// Where the storage rate came from (with `storage_usd_per_month`).
    pub(crate) storage_from: Option<RateFrom>,
    /// The share of the instances no inference component reserves (`None`: the
    /// variant hosts none, or a share is unknown).
    pub(crate) unreserved_fraction: Option<Decimal>,
    /// The variants whose standing charges `usd_per_hour_all_instances` adds up,
    /// when it is more than this one's ([`Accrual::standing_parts`]).
    pub(crate) parts: Arc<[crate::billing::StandingPart]>,
    /// The later rates its price source's answer announced (terms AWS published
    /// ahead of their dates), oldest first: from each one's date the capacity
    /// costs that rate, whether or not a rate is looked up again by then
    /// ([`no_terms`] when none).
    pub(crate) terms: Arc<[StandingTerm]>,
    /// The later rates of `storage_usd_per_month` its storage rate's price source
    /// announced, oldest first: from each one's date the storage costs that rate,
    /// whatever the capacity's terms ([`no_storage_terms`] when none).
    pub(crate) storage_terms: Arc<[StorageTerm]>,
    /// Whether this is the standing of the fleets billed alongside a variant
    /// whose own rate has not been known since the accrual began (its own
    /// instances are in no figure, unpriced on its receipts): a rate of its
    /// own, once known, replaces it, and it replaces no rate of its own
    /// ([`Totals::set_standing_beside_unknown`]).
    pub(crate) beside_unknown: bool,
    /// With [`beside_unknown`](Self::beside_unknown): the variant's own
    /// instances (or provisioned concurrency), which stand unpriced in no
    /// figure; amortised receipts state their instance-hours, unpriced.
    pub(crate) unpriced_instances: u32,
}

/// What a variant's standing capacity costs from the date of a term its price
/// source's answer announced ahead (see [`StandingRate::terms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StandingTerm {
    /// The term's effective date.
    pub(crate) on: SystemTime,
    /// [`StandingRate::usd_per_hour_all_instances`] from then.
    pub(crate) usd_per_hour_all_instances: Decimal,
    /// [`StandingRate::capacity_from`] from then.
    pub(crate) capacity_from: RateFrom,
    /// [`StandingRate::unreserved_fraction`] from then.
    pub(crate) unreserved_fraction: Option<Decimal>,
}

/// No terms announced: one shared allocation, cloned (a standing rate is put
/// together about once a second per endpoint called, and most have none).
pub(crate) fn no_terms() -> Arc<[StandingTerm]> {
    static NONE: std::sync::OnceLock<Arc<[StandingTerm]>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Arc::from([])).clone()
}

/// What a variant's ML storage costs from the date of a term its storage rate's
/// price source announced ahead (see [`StandingRate::storage_terms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageTerm {
    /// The term's effective date.
    pub(crate) on: SystemTime,
    /// [`StandingRate::storage_usd_per_month`] from then.
    pub(crate) usd_per_month: Decimal,
    /// [`StandingRate::storage_from`] from then.
    pub(crate) storage_from: RateFrom,
}

/// No storage terms announced: one shared allocation, cloned (as [`no_terms`]).
pub(crate) fn no_storage_terms() -> Arc<[StorageTerm]> {
    static NONE: std::sync::OnceLock<Arc<[StorageTerm]>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Arc::from([])).clone()
}

impl StandingRate {
    /// Whether the variant's own part of this rate stands at nothing (scaled
    /// to 0 instances, serverless without provisioned concurrency, or
    /// nothing standing at all): then it is no rate of the variant's own
    /// for instances that come up later, whatever their type, and those
    /// are unpriced while their rate is not known, not counted at $0. A
    /// rate of nothing at all is one whatever its parts say: the rate a
    /// deleted endpoint (or a variant gone) stands at keeps the parts of
    /// the one it replaced, for the receipts that carry what accrued
    /// before.
    fn none_of_its_own(&self) -> bool {
        !self.beside_unknown
            && (self.usd_per_hour_all_instances.is_zero()
                || self
                    .parts
                    .first()
                    .is_some_and(|own| own.usd_per_hour.is_zero()))
    }

    /// This rate as it stands now, without the later rates it announced (the
    /// accrual puts each term's rate in place at its date).
    fn without_terms(&self) -> StandingRate {
        StandingRate {
            terms: no_terms(),
            storage_terms: no_storage_terms(),
            ..self.clone()
        }
    }
}

/// The wall-clock cost of a variant's standing capacity over one call, for accrual.
#[derive(Clone)]
pub(crate) struct InstanceClock {
    /// The standing rate the call's profile gave.
    pub(crate) standing: StandingRate,
    /// When the call started.
    pub(crate) started_at: SystemTime,
    /// When the call ended.
    pub(crate) ended_at: SystemTime,
}

impl Totals {
    /// Totals whose processor sharing lets one instance serve `per_instance`
    /// calls at full speed (at least 1).
    pub(crate) fn with_max_concurrency_per_instance(per_instance: u32) -> Self {
        let totals = Totals::default();
        totals.lock().per_instance = per_instance.max(1);
        totals
    }

    /// Checks the wall-clock readings given against a reference clock that
    /// never steps: a wall clock that steps forward (NTP, a clock set by hand)
    /// is not time the instances served calls or stood, and neither the sharing
    /// clocks nor the accruals count the step. Time the host was suspended (a
    /// laptop asleep, a VM paused) is: the instances ran meanwhile, and AWS
    /// bills them. So the reference counts it: `CLOCK_BOOTTIME` on Linux; where
    /// the host has no such clock, [`Instant`]'s, and a suspension may be taken
    /// for a step. Only for readings of the real clock: a test's manual clock
    /// moves as the test says, not as time passes.
    pub(crate) fn with_monotonic_reference(self, on: bool) -> Self {
        self.lock().host = on.then(|| Arc::new(SystemClocks) as Arc<dyn HostClocks>);
        self
    }

    /// Checks the wall-clock readings given against `host`'s clocks (a test's
    /// host, which it suspends), as [`with_monotonic_reference`] does against
    /// the real host's.
    ///
    /// [`with_monotonic_reference`]: Self::with_monotonic_reference
    #[cfg(test)]
    pub(crate) fn with_host_clocks(self, host: Arc<dyn HostClocks>) -> Self {
        self.lock().host = Some(host);
        self
    }

    /// A call starts at `now`: it joins the sharing clock [`seat_on`](Self::seat_on)
    /// finds.
    #[cfg(test)]
    pub(crate) fn call_started_on(
        &self,
        clock: &str,
        or_else: Option<&str>,
        now: SystemTime,
    ) -> CallShare {
        self.seat_on(clock, or_else).join(now)
    }

    /// The sharing clock named `clock` (an endpoint's, a variant's or a
    /// component's), or, when there is no such clock yet and `or_else` is given,
    /// that one's (a target variant's clock is made when the endpoint's profile
    /// is applied, and until then its call shares the endpoint's: a clock of its
    /// own would count one more instance, and one that is later found to be the
    /// endpoint's only variant's would stay apart from the endpoint's calls).
    /// Found when a call begins, joined ([`ClockSeat::join`]) when its request
    /// goes out, not while it waits for credentials or a rate limiter.
    pub(crate) fn seat_on(&self, clock: &str, or_else: Option<&str>) -> ClockSeat {
        let mut inner = self.lock();
        let shared = match inner.shared_clocks.is_empty() {
            true => None,
            false => inner.shared_clocks.get(clock).copied(),
        };
        let slot = match (shared.or_else(|| inner.slots.get(clock).copied()), or_else) {
            (Some(index), _) => EndpointSlot(index),
            (None, Some(endpoint)) => inner.endpoint_slot(endpoint),
            (None, None) => inner.endpoint_slot(clock),
        };
        ClockSeat {
            totals: self.inner.clone(),
            endpoint: slot.0,
        }
    }

    /// A call's share of instance time, `shared`, at most what a call alone is
    /// allocated over its `latency` (measured on the monotonic clock), when the
    /// totals check the wall clock against it: a share that took in a step
    /// forward of the wall clock is not charged for the step. A call in flight
    /// while the host was suspended is allocated its latency at most too (the
    /// monotonic clock stands still then): the time it waited is in the
    /// accrual, not on its receipt. Without the check (a manual clock), the
    /// share as it is.
    pub(crate) fn cap_share(&self, shared: SharedTime, latency: Duration) -> SharedTime {
        let inner = self.lock();
        if inner.host.is_none() {
            return shared;
        }
        // latency / m in instance-femtoseconds, rounded down as shares are.
        let fs = latency.as_nanos().saturating_mul(FS_PER_NANOSECOND)
            / u128::from(inner.per_instance.max(1));
        shared.min(SharedTime::from_fs(fs))
    }

    /// Calls that would join `clock` join `runs_on`'s instead (an adapter's calls
    /// share its base component's copies); `None`: their own again.
    pub(crate) fn share_clock(&self, clock: &str, runs_on: Option<&str>) {
        let mut inner = self.lock();
        match runs_on {
            Some(other) => {
                let slot = inner.endpoint_slot(other).0;
                inner.shared_clocks.insert(clock.to_owned(), slot);
            }
            None if !inner.shared_clocks.is_empty() => {
                inner.shared_clocks.remove(clock);
            }
            None => {}
        }
    }

    /// What `variant`'s standing capacity costs from `now` on (its profile was
    /// found or refreshed): what accrued until now is at the rate in force before.
    pub(crate) fn set_standing(&self, variant: VariantSlot, rate: StandingRate, now: SystemTime) {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        inner.endpoints[variant.endpoint().0].variants[variant.variant]
            .replace_standing(rate, now, mono);
    }

    /// `variant`'s accrual begins at `now`, unless it has begun (with its first
    /// call recorded) or no rate stands for it: for a variant whose profile was
    /// found by a retry after its calls got a failure (none of them recorded to
    /// a variant), so that its standing capacity is metered from then, not from
    /// the next call.
    pub(crate) fn begin_accrual(&self, variant: VariantSlot, now: SystemTime) {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        let state = &mut inner.endpoints[variant.endpoint().0].variants[variant.variant];
        if state.accrual_started_at.is_some() || state.standing.is_none() {
            return;
        }
        state.accrual_started_at = Some(now);
        state.last_accrual_at = Some(now);
        state.last_accrual_mono = mono;
    }

    /// What `variant`'s standing capacity costs from `now` on when its own rate
    /// is not known (`unpriced_instances` of its own stand): `rate`, the
    /// standing of the fleets billed alongside it whose rates are known
    /// ([`StandingRate::beside_unknown`]), or nothing when there is none;
    /// unless a rate of its own is in force (that last known one stays, theirs
    /// in it). A rate in force at which nothing of its own stood (scaled to 0
    /// instances since) is none: the instances that came up since are not
    /// counted at it, at $0, but unpriced, as when none was ever known. With
    /// no `rate`, nothing stands in any figure from `now` on, whatever stood
    /// beside it before (a shadow ended, a pending fleet rolled back: no
    /// variant slot of theirs would ever stop it), and the variant's own
    /// `unpriced_instances` are those of this refresh.
    pub(crate) fn set_standing_beside_unknown(
        &self,
        variant: VariantSlot,
        rate: Option<StandingRate>,
        unpriced_instances: u32,
        now: SystemTime,
    ) {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        let state = &mut inner.endpoints[variant.endpoint().0].variants[variant.variant];
        let rate = match (rate, &state.standing) {
            (_, Some(own)) if !own.beside_unknown && !own.none_of_its_own() => return,
            (Some(rate), _) => rate,
            // Nothing billed alongside is priced (any more): nothing stands in
            // any figure, the variant's own instances unpriced, as many as now.
            (None, Some(own)) => StandingRate {
                usd_per_hour_all_instances: Decimal::ZERO,
                instances: 0,
                storage_usd_per_month: own.storage_usd_per_month.map(|_| Decimal::ZERO),
                unreserved_fraction: None,
                parts: crate::billing::no_standing_parts(),
                terms: no_terms(),
                storage_terms: no_storage_terms(),
                beside_unknown: true,
                unpriced_instances,
                ..own.clone()
            },
            (None, None) => return,
        };
        state.replace_standing(rate, now, mono);
    }

    /// The standing rate in force for `variant` when it is that of the fleets
    /// billed alongside it alone, or nothing, its own instances unpriced
    /// ([`StandingRate::beside_unknown`]); `None` when a rate of its own is in
    /// force, or none is.
    pub(crate) fn standing_beside_unknown(&self, variant: VariantSlot) -> Option<StandingRate> {
        let inner = self.lock();
        inner.endpoints[variant.endpoint().0].variants[variant.variant]
            .standing
            .as_ref()
            .filter(|s| s.beside_unknown)
            .cloned()
    }

    /// Whether `variant` stands at a last known rate of its own (not only
    /// that of the fleets billed alongside it, [`StandingRate::beside_unknown`]).
    pub(crate) fn keeps_own_rate(&self, variant: VariantSlot) -> bool {
        let inner = self.lock();
        inner.endpoints[variant.endpoint().0].variants[variant.variant]
            .standing
            .as_ref()
            .is_some_and(|s| !s.beside_unknown && !s.none_of_its_own())
    }

    /// `endpoint` was found deleted at `now`: its variants' standing capacity costs
    /// nothing from then on, until a profile of it is found again (an endpoint
    /// created again under the name accrues from then, not for the hours between).
    /// Returns the variants that stood, each with where its rate came from.
    pub(crate) fn endpoint_deleted(
        &self,
        endpoint: &str,
        now: SystemTime,
    ) -> Vec<(String, RateFrom)> {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        let Some(&index) = inner.slots.get(endpoint) else {
            return Vec::new();
        };
        let mut stood = Vec::new();
        for state in &mut inner.endpoints[index].variants {
            if let Some(from) = state.stand_at_nothing(now, mono) {
                stood.push((state.name.to_string(), from));
            }
        }
        stood
    }

    /// The variants of `endpoint` for which `gone` holds (an update of the
    /// endpoint to a config without them, as a profile found at `now` says)
    /// stand at nothing from `now` on, as a deleted endpoint's do: what accrued
    /// until now is at the rate in force before, and the time until one comes
    /// back is not charged at the old rate. Returns those whose rate this
    /// changed, each with where the replaced rate came from (one that stood at
    /// nothing already is not listed again at every refresh).
    pub(crate) fn variants_gone(
        &self,
        endpoint: EndpointSlot,
        gone: impl Fn(&str) -> bool,
        now: SystemTime,
    ) -> Vec<(String, RateFrom)> {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        let mut stood = Vec::new();
        for state in &mut inner.endpoints[endpoint.0].variants {
            if !gone(&state.name) {
                continue;
            }
            let before = state.standing.clone();
            if let Some(from) = state.stand_at_nothing(now, mono)
                && state.standing != before
            {
                stood.push((state.name.to_string(), from));
            }
        }
        stood
    }

    /// Nothing of `variant` stands from `now` on (a serverless variant without
    /// provisioned concurrency, as its latest profile says): its standing capacity
    /// costs nothing from then on, what accrued until now is at the rate in force
    /// before. Returns where the replaced rate came from, when one stood.
    pub(crate) fn nothing_stands(&self, variant: VariantSlot, now: SystemTime) -> Option<RateFrom> {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        inner.endpoints[variant.endpoint().0].variants[variant.variant].stand_at_nothing(now, mono)
    }

    /// How many instances serve `endpoint` from `now` on (its profile was found or
    /// refreshed).
    pub(crate) fn set_instances(&self, endpoint: EndpointSlot, instances: u32, now: SystemTime) {
        let mut inner = self.lock();
        if inner.endpoints[endpoint.0].sharing.instances != instances {
            let mono = inner.mono_now();
            inner.advance_clock(endpoint.0, now, mono);
            inner.endpoints[endpoint.0].sharing.instances = instances;
        }
    }

    /// The provisioned concurrency `endpoint`'s calls are served on before any
    /// goes on demand (see [`ClockSeat::join`]), from now on: its only
    /// variant's, when it is serverless with provisioned concurrency; `None`
    /// otherwise.
    pub(crate) fn set_provisioned(&self, endpoint: EndpointSlot, provisioned: Option<u32>) {
        self.lock().endpoints[endpoint.0].sharing.provisioned = provisioned;
    }

    /// How many instances serve the variant whose sharing clock is named `clock`,
    /// from `now` on; `None`: the variant is the only one of the endpoint in
    /// `endpoint`, and calls that target it share the endpoint's own clock.
    pub(crate) fn set_variant_instances(
        &self,
        endpoint: EndpointSlot,
        clock: &str,
        instances: Option<u32>,
        now: SystemTime,
    ) {
        let mut inner = self.lock();
        let current = inner.slots.get(clock).copied();
        let Some(instances) = instances else {
            if current != Some(endpoint.0) {
                inner.slots.insert(clock.to_owned(), endpoint.0);
            }
            return;
        };
        let slot = match current {
            Some(index) if index != endpoint.0 => EndpointSlot(index),
            // New, or the endpoint's own until now (it had one variant).
            _ => {
                let index = inner.endpoints.len();
                inner.endpoints.push(EndpointTotals {
                    name: clock.into(),
                    ..EndpointTotals::default()
                });
                inner.slots.insert(clock.to_owned(), index);
                EndpointSlot(index)
            }
        };
        drop(inner);
        self.set_instances(slot, instances, now);
    }

    /// Another handle on the same totals (for the fleet, which publishes and reads
    /// the endpoints' loads).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn handle(&self) -> Totals {
        Totals {
            inner: self.inner.clone(),
        }
    }

    /// This process's average number of calls in flight on each endpoint since
    /// the previous time it was asked, in thousandths: of each endpoint whose load
    /// is not 0, or whose clock counts the others' load. The others (idle, all
    /// but a few in a process that has called thousands of endpoints) are left
    /// out, their names not copied: the caller says 0 for any of them whose last
    /// load published was not.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn take_loads(&self, now: SystemTime) -> Vec<(String, u64)> {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        (0..inner.endpoints.len())
            .filter_map(|index| {
                // A step back first seen here is handled here: the clock's last
                // event is the new time afterwards, and no later event sees it.
                inner.advance_clock(index, now, mono);
                let endpoint = &mut inner.endpoints[index];
                let clock = &mut endpoint.sharing;
                let since = clock.load_since.replace(now);
                let load = std::mem::take(&mut clock.load_fs);
                let span_fs = since
                    .and_then(|since| now.duration_since(since).ok())
                    .map_or(0, |d| d.as_nanos() * FS_PER_NANOSECOND);
                // No time yet to average over (the first flush, at the first
                // call): the calls in flight now.
                let milli = match span_fs {
                    0 => u64::from(clock.in_flight) * 1000,
                    span => u64::try_from(load * 1000 / span).unwrap_or(u64::MAX),
                };
                (milli != 0 || clock.others_milli != 0).then(|| (endpoint.name.to_string(), milli))
            })
            .collect()
    }

    /// The other processes of the fleet have `others_milli` thousandths of calls
    /// in flight on `endpoint`, from `now` on.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn set_others_load(&self, endpoint: &str, others_milli: u64, now: SystemTime) {
        let mut inner = self.lock();
        let per_instance = inner.per_instance;
        let mono = inner.mono_now();
        let Some(&index) = inner.slots.get(endpoint) else {
            return;
        };
        let clock = &mut inner.endpoints[index].sharing;
        clock.others_read_at = Some(now);
        if clock.others_milli != others_milli {
            // Its time is when the fleet's writes began, maybe seconds ago.
            clock.advance_late(now, per_instance, mono);
            clock.others_milli = others_milli;
        }
    }

    /// The other processes' calls in flight on `endpoints` are no longer read
    /// (this process is idle there): a reading older than `kept` is forgotten,
    /// and from `now` on none are counted.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn forget_others_loads(
        &self,
        endpoints: &[String],
        now: SystemTime,
        kept: Duration,
    ) {
        if endpoints.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let per_instance = inner.per_instance;
        let mono = inner.mono_now();
        for endpoint in endpoints {
            let Some(&index) = inner.slots.get(endpoint.as_str()) else {
                continue;
            };
            let clock = &mut inner.endpoints[index].sharing;
            // A reading "from the future" is the wall clock stepping back: not
            // kept for the step.
            let fresh = clock
                .others_read_at
                .is_some_and(|at| now.duration_since(at).is_ok_and(|age| age < kept));
            if clock.others_milli != 0 && !fresh {
                clock.advance_late(now, per_instance, mono);
                clock.others_milli = 0;
            }
        }
    }

    /// The slot of `endpoint`, made on first use. The endpoint is listed in
    /// snapshots only once a call to it is recorded.
    pub(crate) fn endpoint_slot(&self, endpoint: &str) -> EndpointSlot {
        self.lock().endpoint_slot(endpoint)
    }

    /// The slot of `variant` of the endpoint in `endpoint`, made on first use.
    pub(crate) fn variant_slot(&self, endpoint: EndpointSlot, variant: &str) -> VariantSlot {
        let mut inner = self.lock();
        let variants = &mut inner.endpoints[endpoint.0].variants;
        let index = match variants.iter().position(|v| &*v.name == variant) {
            Some(index) => index,
            None => {
                variants.push(VariantState {
                    name: variant.into(),
                    ..VariantState::default()
                });
                variants.len() - 1
            }
        };
        VariantSlot {
            endpoint: endpoint.0,
            variant: index,
        }
    }

    /// What [`Allocation::Amortized`] charges a call to `variant` that ended at
    /// `now`: what the variant's capacity accrued since the previous such call,
    /// per rate in force (accrued to the end of this call first: `clock`, the
    /// same as [`record`](Self::record) is given next, which then adds nothing);
    /// the first call, [`AmortizedShare::First`]. Without a `clock` (no standing
    /// rate is known), the wall-clock gap; at the first call with one after calls
    /// without, the wall-clock gap too, the accrual beginning at the previous
    /// call's end so that it holds what the gap charges. O(1) per call: the
    /// accrual keeps what accrued since the previous call as it goes, one part
    /// per rate.
    ///
    /// With a fleet, every process charges its share of the fleet's calls of
    /// what it accrued, so that together they charge the instances once.
    ///
    /// [`Allocation::Amortized`]: crate::billing::Allocation::Amortized
    pub(crate) fn amortized_since_previous_call(
        &self,
        variant: VariantSlot,
        clock: Option<&InstanceClock>,
        now: SystemTime,
    ) -> AmortizedShare {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        let state = &mut inner.endpoints[variant.endpoint].variants[variant.variant];
        let share = match state.fleet_share {
            Some((local, fleet)) if fleet > 0 && local <= fleet => Some((local, fleet)),
            _ => None,
        };
        let prev = state.last_call_at;
        let gap = prev.map(|prev| now.duration_since(prev).unwrap_or_default());
        state.last_call_at = Some(state.last_call_at.map_or(now, |prev| prev.max(now)));
        // With a fleet, the wall-clock gap is this process's share of it too.
        let gap = match (gap, share) {
            (Some(gap), Some((local, fleet))) => {
                let nanos = gap.as_nanos() * u128::from(local) / u128::from(fleet);
                Some(Duration::from_nanos(
                    u64::try_from(nanos).unwrap_or(u64::MAX),
                ))
            }
            (gap, _) => gap,
        };
        let Some(clock) = clock else {
            return gap.map_or(AmortizedShare::First, AmortizedShare::Gap);
        };
        // The first call at a rate of the variant's own after calls at none: its
        // gap is charged at that rate (below), so the accrual covers the same
        // stretch, from the previous call's end, where it would begin with this
        // call and leave the receipts above it.
        let mut clock = clock.clone();
        if let Some(prev) = prev
            && state.since_previous_call.is_none()
            && !clock.standing.beside_unknown
        {
            clock.started_at = clock.started_at.min(prev);
        }
        state.accrue_call(clock, mono);
        let (fine, usd) = (state.accrued_fine_usd, state.accrued_usd);
        let Some(since) = &mut state.since_previous_call else {
            state.since_previous_call = Some(SincePreviousCall {
                base_fine_usd: fine,
                base_usd: usd,
                parts: Vec::new(),
                unpriced_instance_micros: 0,
            });
            // Calls before it had no standing rate (their gaps were taken on
            // the wall clock, unpriced; this one's is priced, and accrued
            // above), or this is the first.
            return gap.map_or(AmortizedShare::First, AmortizedShare::Gap);
        };
        let (mut parts, mut unpriced_instance_hours) = since.take(fine, usd);
        if let Some((local, fleet)) = share {
            let (local, fleet) = (Decimal::from(local), Decimal::from(fleet));
            unpriced_instance_hours = (unpriced_instance_hours * local / fleet).normalize();
            for part in &mut parts {
                part.instance_hours = (part.instance_hours * local / fleet).normalize();
                // Rounded down: the processes' shares never add up to more
                // than the instances cost.
                part.cost_usd = (part.cost_usd * local / fleet)
                    .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::ToZero);
            }
        }
        AmortizedShare::Accrued {
            parts,
            unpriced_instance_hours,
        }
    }

    /// This process made `local` of the fleet's last `fleet` calls to `variant`
    /// of `endpoint` (a variant this process has no slot of is left out: it has
    /// no gaps to charge).
    ///
    /// The share is of the counts smoothed over the last several flushes (each
    /// older one weighing 3/4 of the next): one interval's counts swing with
    /// whether another process's write fell in it, and the ratio of swinging
    /// counts leans high (the mean of `local / fleet` exceeds `local / mean fleet`).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn set_fleet_share(&self, endpoint: &str, variant: &str, local: u64, fleet: u64) {
        let mut inner = self.lock();
        let Some(&index) = inner.slots.get(endpoint) else {
            return;
        };
        let Some(state) = inner.endpoints[index]
            .variants
            .iter_mut()
            .find(|v| &*v.name == variant)
        else {
            return;
        };
        let (local_acc, fleet_acc) = state.fleet_share.unwrap_or_default();
        let smooth = |acc: u64, x: u64| (acc - acc / 4).saturating_add(x.saturating_mul(1024));
        state.fleet_share = Some((
            smooth(local_acc, local.min(fleet)),
            smooth(fleet_acc, fleet),
        ));
    }

    /// The variant's smoothed (local, fleet) call counts, as
    /// [`set_fleet_share`](Self::set_fleet_share) left them.
    #[cfg(all(test, feature = "fleet"))]
    pub(crate) fn fleet_share(&self, variant: VariantSlot) -> Option<(u64, u64)> {
        self.lock().endpoints[variant.endpoint].variants[variant.variant].fleet_share
    }

    /// Adds one receipt's total, and accrues the variant's instance cost up to the
    /// end of this call. Returns the running totals including this call.
    ///
    /// `counts_a_call` is false for an async invocation's settlement: it adds its
    /// cost, but its call was counted at its submission (as metrics and reports
    /// count it, see [`CallPart`](crate::report::CallPart)). `unpriced_call` is
    /// true for the receipt that makes its call one not fully priced (for an
    /// async invocation, the first of its receipts that is not): counted in
    /// [`TotalsSnapshot::unpriced_calls`], in all and for `endpoint`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        tags: &BTreeMap<String, String>,
        endpoint: EndpointSlot,
        variant: Option<VariantSlot>,
        cost_usd: Decimal,
        compute_usd: Option<Decimal>,
        clock: Option<InstanceClock>,
        component: Option<EndpointSlot>,
        counts_a_call: bool,
        unpriced_call: bool,
    ) -> Recorded {
        let mut inner = self.lock();
        let mono = inner.mono_now();
        if counts_a_call {
            inner.calls += 1;
        }
        if unpriced_call {
            inner.unpriced_calls += 1;
            inner.endpoints[endpoint.0].unpriced_calls += 1;
        }
        inner.client_usd += cost_usd;
        inner.add_to_tags(tags, cost_usd);
        // An inference component's totals are kept on its sharing clock's slot.
        if let Some(slot) = component {
            let totals = &mut inner.endpoints[slot.0];
            totals.usd = Some(totals.usd.unwrap_or_default() + cost_usd);
        }
        let running_client_usd = inner.client_usd;
        let totals = &mut inner.endpoints[endpoint.0];
        let running_endpoint_usd = totals.usd.unwrap_or_default() + cost_usd;
        totals.usd = Some(running_endpoint_usd);
        let mut accrual = None;
        if let Some(variant) = variant {
            debug_assert_eq!(variant.endpoint(), endpoint);
            let state = &mut totals.variants[variant.variant];
            state.recorded = true;
            state.total_usd += cost_usd;
            if let Some(clock) = clock {
                state.allocated_compute_usd += compute_usd.unwrap_or_default();
                // Accrual covers every metered call from the earliest start: a
                // call recorded later may have started before the first recorded.
                // At the rate of the latest profile applied, not of the one this
                // call began with: instances added by a refresh since count from
                // when it was applied ([`Totals::set_standing`]).
                state.accrue_call(clock, mono);
                accrual = Some(Accrual {
                    accrued_usd: state.accrued_usd,
                    allocated_usd: state.allocated_compute_usd,
                    utilisation: (!state.accrued_usd.is_zero())
                        .then(|| div_round_dp(state.allocated_compute_usd, state.accrued_usd, 6)),
                    storage_usd: state.storage_fine_usd.map(round_cost),
                    unreserved_usd: state.unreserved_fine_usd.map(round_cost),
                    priced_from: state.priced_from.clone(),
                    standing_parts: state
                        .standing
                        .as_ref()
                        .map_or_else(crate::billing::no_standing_parts, |s| s.parts.clone()),
                    accrued_to: None,
                });
            }
        }
        Recorded {
            running_client_usd,
            running_endpoint_usd,
            accrual,
        }
    }

    /// The running sums now.
    pub(crate) fn snapshot(&self) -> TotalsSnapshot {
        // Copied under the lock every call takes (names are shared, not copied),
        // keyed and formatted after it: a process that has called thousands of
        // endpoints holds its calls for a copy, not for building maps.
        let (calls, unpriced_calls, client_usd, endpoints, unpriced, variants, by_tag) = {
            let inner = self.lock();
            let endpoints: Vec<(Arc<str>, Decimal)> = inner
                .endpoints
                .iter()
                .filter_map(|e| Some((e.name.clone(), e.usd?)))
                .collect();
            let unpriced: Vec<(Arc<str>, u64)> = inner
                .endpoints
                .iter()
                .filter(|e| e.unpriced_calls > 0)
                .map(|e| (e.name.clone(), e.unpriced_calls))
                .collect();
            let variants: Vec<(Arc<str>, Arc<str>, Decimal)> = inner
                .endpoints
                .iter()
                .flat_map(|e| {
                    e.variants
                        .iter()
                        .filter(|v| v.recorded)
                        .map(|v| (e.name.clone(), v.name.clone(), v.total_usd))
                })
                .collect();
            let by_tag: HashMap<String, HashMap<String, Decimal>> = inner
                .tags
                .iter()
                .map(|(key, values)| {
                    let values = values.iter().map(|(v, usd)| (v.clone(), *usd)).collect();
                    (key.clone(), values)
                })
                .collect();
            (
                inner.calls,
                inner.unpriced_calls,
                inner.client_usd,
                endpoints,
                unpriced,
                variants,
                by_tag,
            )
        };
        // Counted on the endpoint's slot, never on a component's.
        let unpriced_by_endpoint = unpriced
            .into_iter()
            .map(|(name, n)| (name.to_string(), n))
            .collect();
        let mut by_endpoint = HashMap::new();
        let mut by_component = HashMap::new();
        for (name, usd) in endpoints {
            match name.split_once(COMPONENT_SEPARATOR) {
                Some((endpoint, component)) => {
                    by_component.insert(format!("{endpoint}/{component}"), usd);
                }
                None => {
                    by_endpoint.insert(name.to_string(), usd);
                }
            }
        }
        let by_variant = variants
            .into_iter()
            .map(|(endpoint, variant, usd)| (format!("{endpoint}/{variant}"), usd))
            .collect();
        TotalsSnapshot {
            calls,
            unpriced_calls,
            unpriced_by_endpoint,
            client_usd,
            by_endpoint,
            by_variant,
            by_component,
            by_tag,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TotalsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `usd_per_month` of storage costs from `from` to `to`, prorated by the
/// second over the calendar month (UTC) in which each part of the stretch falls,
/// as AWS prorates GB-month storage; at 20 decimal places. Nothing for times no
/// calendar holds (beyond chrono's range).
pub(crate) fn storage_stretch(usd_per_month: Decimal, from: SystemTime, to: SystemTime) -> Decimal {
    use chrono::{Datelike, TimeZone, Utc};
    let (Some(mut at), Some(end)) = (crate::util::utc(from), crate::util::utc(to)) else {
        return Decimal::ZERO;
    };
    let mut total = Decimal::ZERO;
    while at < end {
        let month_start = Utc
            .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(at);
        let next_month = month_start
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(end);
        let stop = end.min(next_month);
        // In nanoseconds: a stretch cut to whole µs lost up to 1 µs a call.
        let month_ns = (next_month - month_start)
            .num_nanoseconds()
            .unwrap_or(i64::MAX);
        let ns = (stop - at).num_nanoseconds().unwrap_or(0);
        if let Some(part) = usd_per_month
            .checked_mul(Decimal::from(ns))
            .and_then(|v| v.checked_div(Decimal::from(month_ns)))
        {
            total += part.round_dp(20);
        }
        if stop <= at {
            break;
        }
        at = stop;
    }
    total
}

#[cfg(test)]
mod sharing_props;

#[cfg(test)]
mod tests {
    use super::{MAX_TAG_VALUES, MICROS_PER_HOUR, Totals, hourly_stretch};
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    /// Records one call of `variant` priced at $0 with its instance clock (only the
    /// accrual is under test), as the client records a call.
    fn record_clock(
        totals: &Totals,
        endpoint: super::EndpointSlot,
        variant: super::VariantSlot,
        clock: super::InstanceClock,
    ) -> super::Recorded {
        totals.record(
            &BTreeMap::new(),
            endpoint,
            Some(variant),
            Decimal::ZERO,
            None,
            Some(clock),
            None,
            true,
            false,
        )
    }

    /// `instances` × ml.g5.xlarge at $1.408/h each (us-east-1), priced live.
    fn g5_xlarge(instances: u32) -> super::StandingRate {
        super::StandingRate {
            beside_unknown: false,
            unpriced_instances: 0,
            usd_per_hour_all_instances: usd("1.408") * Decimal::from(instances),
            instances,
            capacity_from: (crate::pricing::PriceOrigin::Live, None),
            storage_usd_per_month: None,
            storage_from: None,
            unreserved_fraction: None,
            parts: std::sync::Arc::from([]),
            terms: super::no_terms(),
            storage_terms: super::no_storage_terms(),
        }
    }

    /// A call at `at` seconds that took no time, its clock at `standing`.
    fn at_once(at: u64, standing: super::StandingRate) -> super::InstanceClock {
        from_to(at, at, standing)
    }

    /// A call from `started` to `ended` seconds, its clock at `standing`.
    fn from_to(started: u64, ended: u64, standing: super::StandingRate) -> super::InstanceClock {
        super::InstanceClock {
            standing,
            started_at: t(started),
            ended_at: t(ended),
        }
    }

    /// Records a call's `cost` to `endpoint` (and `variant`) with no clock,
    /// counted as a call or not (an async settlement), no tags.
    fn record_cost(
        totals: &Totals,
        endpoint: super::EndpointSlot,
        variant: Option<super::VariantSlot>,
        cost: Decimal,
        counts_a_call: bool,
    ) -> super::Recorded {
        totals.record(
            &BTreeMap::new(),
            endpoint,
            variant,
            cost,
            None,
            None,
            None,
            counts_a_call,
            false,
        )
    }

    fn usd(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A figure of hours (a call's share of an instance's time), from its text.
    fn hours(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// `n` instances of `instance_type`, as a variant bills them.
    fn on(instance_type: &str, n: u32) -> crate::endpoint::VariantBilling {
        crate::endpoint::VariantBilling::Instance {
            instance_type: instance_type.into(),
            instance_count: n,
        }
    }

    /// `own` × ml.g5.xlarge ($1.408/h each) with a shadow of 1 × ml.m5.xlarge
    /// ($0.23/h): 1.408 × own + 0.23 an hour.
    fn g5_beside_m5_shadow(own: u32) -> super::StandingRate {
        use crate::billing::StandingPart;
        let g5 = usd("1.408") * Decimal::from(own);
        super::StandingRate {
            usd_per_hour_all_instances: g5 + usd("0.23"),
            instances: own + 1,
            parts: std::sync::Arc::from([
                StandingPart::new(on("ml.g5.xlarge", own), g5),
                StandingPart::new(on("ml.m5.xlarge", 1), usd("0.23")),
            ]),
            ..g5_xlarge(own)
        }
    }

    /// That shadow alone ($0.23/h), beside 1 instance of the variant's own at a
    /// rate no source knows.
    fn m5_shadow_beside_one_unpriced() -> super::StandingRate {
        super::StandingRate {
            usd_per_hour_all_instances: usd("0.23"),
            instances: 1,
            parts: std::sync::Arc::from([crate::billing::StandingPart::new(
                on("ml.m5.xlarge", 1),
                usd("0.23"),
            )]),
            beside_unknown: true,
            unpriced_instances: 1,
            ..g5_xlarge(1)
        }
    }

    /// [`one_variant`] on 2 × ml.g5.xlarge beside a 1 × ml.m5.xlarge shadow
    /// ([`g5_beside_m5_shadow`], $3.046/h) from t = 0, a call recorded then.
    fn two_g5_beside_m5_shadow_called_at_0() -> (Totals, super::EndpointSlot, super::VariantSlot) {
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_beside_m5_shadow(2), t(0));
        record_clock(
            &totals,
            endpoint,
            variant,
            at_once(0, g5_beside_m5_shadow(2)),
        );
        (totals, endpoint, variant)
    }

    /// The variant back up at `at` s on 1 instance of a type no source prices,
    /// beside the shadow alone ([`m5_shadow_beside_one_unpriced`]): checks it
    /// keeps no rate of its own and stands beside the shadow unpriced, then
    /// records a call at `called` s and returns what has accrued by then.
    fn back_up_beside_the_shadow_unpriced(
        totals: &Totals,
        endpoint: super::EndpointSlot,
        variant: super::VariantSlot,
        at: u64,
        called: u64,
    ) -> Decimal {
        let alone = m5_shadow_beside_one_unpriced();
        totals.set_standing_beside_unknown(variant, Some(alone.clone()), 1, t(at));
        assert!(!totals.keeps_own_rate(variant));
        assert_eq!(totals.standing_beside_unknown(variant), Some(alone.clone()));
        record_clock(totals, endpoint, variant, at_once(called, alone))
            .accrual
            .unwrap()
            .accrued_usd
    }

    /// `s` seconds into the tests' day.
    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    /// `n` milliseconds into the tests' day.
    fn ms(n: u64) -> SystemTime {
        t(0) + Duration::from_millis(n)
    }

    /// Totals with one endpoint, `e`, of a provisioned concurrency of 1; its slot.
    fn one_provisioned_slot() -> (Totals, super::EndpointSlot) {
        let totals = Totals::default();
        let slot = totals.endpoint_slot("e");
        totals.set_provisioned(slot, Some(1));
        (totals, slot)
    }

    /// Totals with one endpoint, `e`, and its variant `AllTraffic`.
    fn one_variant() -> (Totals, super::EndpointSlot, super::VariantSlot) {
        let totals = Totals::default();
        let endpoint = totals.endpoint_slot("e");
        let variant = totals.variant_slot(endpoint, "AllTraffic");
        (totals, endpoint, variant)
    }

    #[test]
    fn an_hour_of_a_ml_g5_xlarge_accrues_its_hourly_price() {
        // $1.408 an hour (ml.g5.xlarge, us-east-1): an hour costs exactly that, a
        // second 1.408 / 3600 = 0.000391111… rounded at 20 places.
        let rate: Decimal = "1.408".parse().unwrap();
        assert_eq!(hourly_stretch(rate, MICROS_PER_HOUR), Some(rate));
        assert_eq!(
            hourly_stretch(rate, 1_000_000),
            Some("0.00039111111111111111".parse().unwrap())
        );
        // A tie at the 21st place goes to the even neighbour: 1 µs at 1.8·10⁻¹¹ $/h
        // is 0.5·10⁻²⁰ $, at 5.4·10⁻¹¹ $/h 1.5·10⁻²⁰ $.
        assert_eq!(
            hourly_stretch("0.000000000018".parse().unwrap(), 1),
            Some(Decimal::ZERO),
            "0.5·10⁻²⁰ rounds to the even 0"
        );
        assert_eq!(
            hourly_stretch("0.000000000054".parse().unwrap(), 1),
            Some("0.00000000000000000002".parse().unwrap()),
            "1.5·10⁻²⁰ rounds to the even 2·10⁻²⁰"
        );
    }

    /// Call counts from the fleet table are whatever its items hold (saturated at
    /// u64::MAX): their smoothing saturates, never overflows.
    #[test]
    fn a_fleet_share_of_huge_counts_saturates() {
        let totals = Totals::default();
        let endpoint = totals.endpoint_slot("e");
        let variant = totals.variant_slot(endpoint, "v");
        for _ in 0..3 {
            totals.set_fleet_share("e", "v", u64::MAX / 2, u64::MAX);
        }
        let inner = totals.lock();
        let (local, fleet) = inner.endpoints[endpoint.0].variants[variant.variant]
            .fleet_share
            .unwrap();
        assert_eq!(fleet, u64::MAX);
        assert!(local <= fleet);
    }

    #[test]
    fn a_lone_call_is_allocated_its_whole_wall_time_in_atto_hours() {
        let totals = Totals::default();
        let t0 = t(0);
        let share = totals.call_started_on("e", None, t0);
        // 1 s alone on one instance: 1/3600 h = 0.000277… rounded down at 18 places.
        assert_eq!(
            share.end(t0 + Duration::from_secs(1), false).hours(),
            hours("0.000277777777777777")
        );
    }

    #[test]
    fn shares_count_the_nanoseconds_between_events_not_whole_microseconds() {
        // One instance. A starts at 0; B at 1.5 µs and ends at 3 µs; A ends at
        // 4.5 µs. A: 1.5 µs alone + 1.5 µs × 1/2 + 1.5 µs alone = 3.75 µs;
        // B: 1.5 µs × 1/2 = 0.75 µs. In hours, rounded down at 18 places:
        // 3.75·10⁻⁶ / 3600 = 1.0416666…·10⁻⁹ h; 0.75·10⁻⁶ / 3600 = 2.083333…·10⁻¹⁰ h.
        let totals = Totals::default();
        let t0 = t(0);
        let ns = |n: u64| t0 + Duration::from_nanos(n);
        let a = totals.call_started_on("e", None, ns(0));
        let b = totals.call_started_on("e", None, ns(1_500));
        assert_eq!(
            b.end(ns(3_000), false).hours(),
            hours("0.000000000208333333")
        );
        assert_eq!(
            a.end(ns(4_500), false).hours(),
            hours("0.000000001041666666")
        );
    }

    #[test]
    fn a_call_is_allocated_its_attempts_stretches_not_its_back_off() {
        // One instance. A runs 0–2 s. B's first attempt, out at 0, reached the
        // model and failed at 0.5 s (billed); B backs off 0.5–1.5 s, off the
        // clock; its second attempt runs 1.5–2 s. A: 0.5 s at ½ + 1 s alone +
        // 0.5 s at ½ = 1.5 s; B: 0.5 s at ½ + 0.5 s at ½ = 0.5 s. Together
        // 2 s: the instance's whole time, none of it lost to the back-off. In
        // hours, rounded down at 18 places: 1.5 / 3600 = 0.000416666…,
        // 0.5 / 3600 = 0.000138888….
        let totals = Totals::default();
        let a = totals.call_started_on("e", None, ms(0));
        let b = totals.call_started_on("e", None, ms(0));
        b.step_off(ms(500), true);
        b.rejoin(ms(1_500));
        // A held the one slot counted (no provisioned concurrency known: every
        // attempt takes one) as B joined.
        assert_eq!(b.slots_busy_at_start(), 1);
        assert_eq!(
            a.end(ms(2_000), false).hours(),
            hours("0.000416666666666666")
        );
        assert_eq!(
            b.end(ms(2_000), false).hours(),
            hours("0.000138888888888888")
        );
    }

    /// The fleet's flush asks for the loads of the endpoints with calls in
    /// flight since the last, and of those whose clock counts the others' load:
    /// not one entry (a name copied) per endpoint ever called.
    #[test]
    fn idle_endpoints_are_left_out_of_the_loads_taken() {
        let totals = Totals::default();
        let t0 = t(0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 1,000 endpoints, one call each from 0 to 1 s.
        for i in 0..1_000 {
            let call = totals.call_started_on(&format!("e{i}"), None, at(0));
            call.leave_at(at(1_000));
            call.end(at(1_000), false);
        }
        // First flush at 2 s: each had 1 call for 1 s of the 2 s since its clock
        // began, an average of 0.5 calls in flight = 500 thousandths.
        let first = totals.take_loads(at(2_000));
        assert_eq!(first.len(), 1_000);
        assert!(first.iter().all(|(_, milli)| *milli == 500), "{first:?}");
        // Idle from 2 s to 4 s: none listed (the fleet says 0 for each, as its
        // last published load was 500).
        assert_eq!(totals.take_loads(at(4_000)), Vec::new());
        // e7 busy again, one call from 5 s on; e9 idle but with the others' 2
        // calls in flight read at 5 s (kept until forgotten).
        let call = totals.call_started_on("e7", None, at(5_000));
        totals.set_others_load("e9", 2_000, at(5_000));
        // Flush at 6 s: e7 had 1 call for 1 s of the 2 s since the last flush
        // (500); e9 none of its own (0), listed for its others' load.
        let mut loads = totals.take_loads(at(6_000));
        loads.sort();
        assert_eq!(loads, [("e7".to_owned(), 500), ("e9".to_owned(), 0)]);
        call.leave_at(at(6_000));
    }

    #[test]
    fn a_throttled_attempts_stretch_is_not_billed() {
        // One instance. A runs 0–1 s. B's first attempt, out at 0, is throttled
        // at 0.2 s (not billed); B backs off 0.2–0.6 s; its second attempt runs
        // 0.6–1 s. A: 0.2 s at ½ + 0.4 s alone + 0.4 s at ½ = 0.7 s =
        // 0.000194444… h. B is billed its second attempt, 0.4 s at ½ = 0.2 s =
        // 0.0000555… h; the throttled attempt was allocated 0.1 s (at ½), which
        // is on no receipt.
        let totals = Totals::default();
        let a = totals.call_started_on("e", None, ms(0));
        let b = totals.call_started_on("e", None, ms(0));
        b.step_off(ms(200), false);
        // A second step off (an attempt counted twice) changes nothing.
        b.step_off(ms(300), true);
        b.rejoin(ms(600));
        b.rejoin(ms(700));
        assert_eq!(
            a.end(ms(1_000), false).hours(),
            hours("0.000194444444444444")
        );
        b.leave_at(ms(1_000));
        assert_eq!(
            b.end(ms(5_000), false).hours(),
            hours("0.000055555555555555")
        );
        // Its latest attempt's stretch alone is the same 0.2 s.
        assert_eq!(
            b.end(ms(5_000), true).hours(),
            hours("0.000055555555555555")
        );
    }

    /// AWS serves a call on demand only while every slot of the provisioned
    /// concurrency is busy. Provisioned concurrency 1: A runs 0–1 s, B 0.5–2 s,
    /// C from 1.2 s. A takes the slot (none busy); B finds it busy: on demand,
    /// no slot taken; A gives it back at 1 s, so C finds it free (B, on
    /// demand, holds none) and takes it, though 2 calls were in flight then.
    #[test]
    fn a_call_takes_a_free_provisioned_slot_whatever_runs_on_demand() {
        let (totals, slot) = one_provisioned_slot();
        let on_slots = || totals.lock().endpoints[slot.0].sharing.on_slots;
        let a = totals.call_started_on("e", None, ms(0));
        assert_eq!(a.slots_busy_at_start(), 0);
        let b = totals.call_started_on("e", None, ms(500));
        assert_eq!(b.slots_busy_at_start(), 1, "B: the one slot busy");
        assert_eq!(on_slots(), 1);
        a.end(ms(1_000), false);
        assert_eq!(on_slots(), 0, "A gave its slot back");
        let c = totals.call_started_on("e", None, ms(1_200));
        assert_eq!(c.slots_busy_at_start(), 0, "C: the slot free");
        // C's attempt fails at 1.3 s: its slot is free while it backs off, and
        // a call D joining then takes it; C's retry at 1.4 s finds it busy and
        // takes none, and dropped at 1.5 s, gives back nothing.
        c.step_off(ms(1_300), true);
        assert_eq!(on_slots(), 0);
        let d = totals.call_started_on("e", None, ms(1_350));
        assert_eq!(d.slots_busy_at_start(), 0);
        c.rejoin(ms(1_400));
        assert_eq!(on_slots(), 1);
        drop(c);
        assert_eq!(on_slots(), 1, "D's slot");
        // D dropped mid-attempt: its slot is given back.
        drop(d);
        assert_eq!(on_slots(), 0);
        b.end(ms(2_000), false);
        assert_eq!(on_slots(), 0);
    }

    /// Provisioned concurrency 1. A holds the slot 0–1 s. B's first attempt,
    /// out at 0.5 s, finds it busy, and is throttled at 0.51 s: not served, on
    /// the slot or on demand, and not billed. Its retry at 1.2 s finds the
    /// slot free (A gave it back at 1 s) and runs on it: AWS bills B at the
    /// provisioned concurrency's inference rate, so its slots busy are the
    /// retry's, 0, not the throttled attempt's 1.
    #[test]
    fn a_call_whose_throttled_attempt_found_the_slots_busy_is_rated_by_its_retry() {
        let (totals, _) = one_provisioned_slot();
        let a = totals.call_started_on("e", None, ms(0));
        let b = totals.call_started_on("e", None, ms(500));
        assert_eq!(
            b.slots_busy_at_start(),
            1,
            "B's first attempt: A on the slot"
        );
        b.step_off(ms(510), false);
        a.end(ms(1_000), false);
        b.rejoin(ms(1_200));
        assert_eq!(b.slots_busy_at_start(), 0, "B's retry: the slot free");
        b.end(ms(1_700), false);
    }

    /// The converse, and the bound of rating a call by one attempt: A's first
    /// attempt runs on the slot 0–0.3 s and the model fails (billed); B takes
    /// the slot at 0.4 s; A's retry at 0.5 s finds it busy and runs on demand.
    /// A is rated by its first billed attempt, on the slot (0 busy): its
    /// retry's time is billed at the provisioned concurrency's inference rate,
    /// not the on-demand one (the difference, over the retry's time, is what
    /// the receipt is short of).
    #[test]
    fn a_call_is_rated_by_its_first_billed_attempt_not_a_later_one() {
        let (totals, slot) = one_provisioned_slot();
        let a = totals.call_started_on("e", None, ms(0));
        a.step_off(ms(300), true);
        let b = totals.call_started_on("e", None, ms(400));
        assert_eq!(b.slots_busy_at_start(), 0, "A's slot free as it backs off");
        a.rejoin(ms(500));
        assert_eq!(a.slots_busy_at_start(), 0, "A: its first billed attempt's");
        assert_eq!(totals.lock().endpoints[slot.0].sharing.on_slots, 1, "B's");
        a.end(ms(900), false);
        b.end(ms(1_000), false);
    }

    #[test]
    fn a_call_dropped_while_backing_off_leaves_the_clock_once() {
        let totals = Totals::default();
        let t0 = t(0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let b = totals.call_started_on("e", None, at(0));
        b.step_off(at(1), false);
        drop(b);
        // A call then is alone: 1 s on one instance, 1/3600 h, not ½ of it; and
        // the clock counts it alone in flight, no slot busy before it.
        let a = totals.call_started_on("e", None, at(2));
        assert_eq!(a.slots_busy_at_start(), 0);
        assert_eq!(a.end(at(3), false).hours(), hours("0.000277777777777777"));
        // A rejoin after leaving puts nothing back on the clock.
        a.rejoin(at(3));
        assert_eq!(totals.lock().endpoints[0].sharing.in_flight, 0);
    }

    proptest! {
        #[test]
        fn hourly_stretches_are_rust_decimals(
            cents in 0u64..100_000_000, scale in 0u32..=10, micros in 0u64..1 << 40,
        ) {
            let rate = Decimal::new(cents as i64, scale);
            let expected = (rate * Decimal::from(micros) / Decimal::from(MICROS_PER_HOUR)).round_dp(20);
            match hourly_stretch(rate, micros) {
                Some(stretch) => prop_assert_eq!(stretch, expected),
                // Only what has no room for 20 places is left to the Decimal path.
                None => prop_assert!(expected.scale() < 20, "{rate} × {micros} µs"),
            }
        }
    }

    #[test]
    fn a_fleet_load_read_seconds_ago_does_not_rewind_the_clock() {
        let totals = Totals::default();
        let t0 = t(0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let a = totals.call_started_on("e", None, at(0));
        totals.call_started_on("e", None, at(5)).end(at(5), false);
        // The fleet's other processes have one call in flight, as read at 0 s by a
        // flush whose writes took until after 5 s: it counts from 5 s.
        totals.set_others_load("e", 1000, at(0));
        // A, on one instance: 5 s alone, then 1 s shared with the other call (½):
        // 5.5 s = 5.5 / 3600 h = 0.0015277… rounded down at 18 places, not 8 s.
        assert_eq!(a.end(at(6), false).hours(), hours("0.001527777777777777"));
    }

    /// A process idle on an endpoint keeps what it last read of the others'
    /// calls in flight for a while (its next call most likely meets the same
    /// load), then forgets it (hours later it would be calls long ended).
    #[test]
    fn the_others_load_a_process_stopped_reading_counts_a_while_then_not() {
        let totals = Totals::default();
        let t0 = t(0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        totals.call_started_on("e", None, at(0)).end(at(0), false);
        // 8 calls of other processes in flight, as read at 0 s.
        totals.set_others_load("e", 8000, at(0));
        let kept = Duration::from_secs(10);
        totals.forget_others_loads(&["e".to_owned()], at(5), kept);
        // At 5 s, kept: a call starts with the 8 others taken for busy slots.
        assert_eq!(
            totals
                .call_started_on("e", None, at(5))
                .slots_busy_at_start(),
            8
        );
        totals.forget_others_loads(&["e".to_owned()], at(11), kept);
        // At 11 s, forgotten: a call starts alone.
        assert_eq!(
            totals
                .call_started_on("e", None, at(11))
                .slots_busy_at_start(),
            0
        );
    }

    /// A host whose clocks the test moves: awake time runs only while it is
    /// up, the clock counting suspension ([`super::HostClocks::with_suspend`])
    /// runs always.
    #[derive(Default)]
    struct SuspendingHost {
        awake_ns: std::sync::atomic::AtomicU64,
        with_suspend_ns: std::sync::atomic::AtomicU64,
    }

    impl SuspendingHost {
        /// `awake` passes with the host up, `suspended` with it asleep.
        fn passes(&self, awake: Duration, suspended: Duration) {
            use std::sync::atomic::Ordering::SeqCst;
            let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap();
            self.awake_ns.fetch_add(ns(awake), SeqCst);
            self.with_suspend_ns
                .fetch_add(ns(awake + suspended), SeqCst);
        }
    }

    impl super::HostClocks for SuspendingHost {
        fn awake(&self) -> Duration {
            Duration::from_nanos(self.awake_ns.load(std::sync::atomic::Ordering::SeqCst))
        }

        fn with_suspend(&self) -> Option<Duration> {
            let ns = self
                .with_suspend_ns
                .load(std::sync::atomic::Ordering::SeqCst);
            Some(Duration::from_nanos(ns))
        }
    }

    /// Call A from 0 to 1 s, then `awake` and `suspended` pass on the host while
    /// the wall clock moves 3610 s, then call B from 3610 to 3611 s, on
    /// 1 × ml.g5.xlarge; returns what has accrued after B.
    fn accrued_across(awake: Duration, suspended: Duration) -> Decimal {
        let host = std::sync::Arc::new(SuspendingHost::default());
        let (totals, endpoint, variant) = one_variant();
        let totals = totals.with_host_clocks(host.clone());
        host.passes(Duration::from_secs(1), Duration::ZERO);
        record_clock(&totals, endpoint, variant, from_to(0, 1, g5_xlarge(1)));
        host.passes(awake, suspended);
        record_clock(
            &totals,
            endpoint,
            variant,
            from_to(3610, 3611, g5_xlarge(1)),
        )
        .accrual
        .unwrap()
        .accrued_usd
    }

    #[test]
    fn time_the_host_was_suspended_between_calls_accrues() {
        // The host runs 10 s and sleeps 3600 s between the ends of A and B
        // (its awake clock moves 10 s, the wall clock and the clock counting
        // suspension 3610 s). The ml.g5.xlarge ran all along: AWS bills it
        // from A's start to B's end, 3611 s at $1.408/h:
        // 1.408 + 11 × 1.408 / 3600 = 1.408 + 0.004302222222… = $1.412302222222
        // (not 11 s, $0.004302222222, as if the sleep were a clock step).
        let accrued = accrued_across(Duration::from_secs(10), Duration::from_secs(3600));
        assert_eq!(accrued, usd("1.412302222222"));
    }

    /// The real host's clock counting suspension reads, and never goes back.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_linux_host_has_a_clock_counting_suspension() {
        use super::HostClocks;
        let first = super::SystemClocks.with_suspend().expect("CLOCK_BOOTTIME");
        let second = super::SystemClocks.with_suspend().expect("CLOCK_BOOTTIME");
        assert!(second >= first);
    }

    #[test]
    fn a_wall_clock_stepping_forward_between_calls_does_not_accrue_its_step() {
        // The host runs 10 s between the ends of A and B while the wall clock
        // steps forward 3600 s (NTP): the instance stood 1 + 10 s, billed
        // 11 × 1.408 / 3600 = 0.0043022222… = $0.004302222222.
        let accrued = accrued_across(Duration::from_secs(10), Duration::ZERO);
        assert_eq!(accrued, usd("0.004302222222"));
    }

    #[test]
    fn an_amortized_gap_after_the_wall_clock_steps_back_is_the_time_since_the_new_time() {
        use crate::billing::AmortizedShare;
        let (totals, endpoint, variant) = one_variant();
        // Call U from 100 to 101 s at no known rate (no instance clock): the
        // first amortised call.
        totals.call_started_on("e", None, t(100)).end(t(101), false);
        assert_eq!(
            totals.amortized_since_previous_call(variant, None, t(101)),
            AmortizedShare::First
        );
        // The wall clock steps back to 50 s; call P from 50 to 51 s, the first
        // at a known rate, 2 × ml.g5.xlarge ($1.408/h each).
        let p = from_to(50, 51, g5_xlarge(2));
        totals.call_started_on("e", None, t(50)).end(t(51), false);
        let share = totals.amortized_since_previous_call(variant, Some(&p), t(51));
        // P's gap runs from the new time, 50 s, to its end: 1 s, which its
        // receipt charges at its 2 instances: 2 × 1 s × 1.408 / 3600 =
        // 2.816 / 3600 = 0.000782222… = $0.000782222222, what the accrual
        // added (not a gap of 0, $0, the accrual adding that all the same).
        assert_eq!(share, AmortizedShare::Gap(Duration::from_secs(1)));
        let lines = crate::billing::amortized_compute_lines(
            &on("ml.g5.xlarge", 2),
            &crate::usage::Usage::new(
                crate::usage::Operation::InvokeEndpoint,
                Duration::from_secs(1),
            ),
            share,
            &Ok(crate::pricing::Rate::new(
                crate::pricing::PriceKey::hosting("us-east-1", "ml.g5.xlarge"),
                usd("1.408"),
                crate::pricing::Provenance::new(crate::pricing::PriceOrigin::Live),
            )),
        );
        assert_eq!(lines[0].cost_usd(), Some(usd("0.000782222222")));
        let accrual = record_clock(&totals, endpoint, variant, p).accrual.unwrap();
        assert_eq!(accrual.accrued_usd, usd("0.000782222222"));
    }

    #[test]
    fn calls_after_the_wall_clock_steps_back_are_allocated_their_time_not_nothing() {
        let totals = Totals::default();
        let t0 = t(0);
        totals
            .call_started_on("e", None, t0)
            .end(t0 + Duration::from_secs(10), false);
        // The clock steps back 5 s; a call then runs 1 s alone on one instance:
        // 1/3600 h = 0.000277… rounded down at 18 places, as before the step.
        let back = t0 + Duration::from_secs(5);
        let share = totals.call_started_on("e", None, back);
        assert_eq!(
            share.end(back + Duration::from_secs(1), false).hours(),
            hours("0.000277777777777777")
        );
        // A reading a little behind the last event (a call that waited for the
        // lock) adds nothing and takes nothing away.
        let late = totals.call_started_on("e", None, back + Duration::from_millis(900));
        assert_eq!(late.end(back + Duration::from_secs(2), false).hours(), {
            // Alone from the last event (6 s) to 7 s: 1 s.
            hours("0.000277777777777777")
        });
    }

    /// The fleets' standing beside a variant whose own rate was never known
    /// stands until its own is known, and never replaces a rate of its own.
    /// Shadow 1 × ml.g5.xlarge ($1.408/h) alone from t = 0; the variant's own
    /// 4 × ml.g5.xlarge (with the shadow's, 5 × 1.408 = $7.04/h) known at
    /// t = 1,800 s; at t = 2,700 s its rate is unknown again: the last known
    /// $7.04/h stays. To t = 3,600 s: 1,800 s × 1.408 / 3,600 + 1,800 s ×
    /// 7.04 / 3,600 = 0.704 + 3.52 = 4.224.
    #[test]
    fn the_fleets_beside_a_variant_never_priced_stand_until_its_own_rate_is_known() {
        let (totals, endpoint, variant) = one_variant();
        let beside = super::StandingRate {
            beside_unknown: true,
            unpriced_instances: 0,
            ..g5_xlarge(1)
        };
        totals.set_standing_beside_unknown(variant, Some(beside.clone()), 4, t(0));
        assert!(!totals.keeps_own_rate(variant));
        record_clock(&totals, endpoint, variant, at_once(0, beside.clone()));
        totals.set_standing(variant, g5_xlarge(5), t(1800));
        assert!(totals.keeps_own_rate(variant));
        totals.set_standing_beside_unknown(variant, Some(beside.clone()), 4, t(2700));
        let recorded = record_clock(&totals, endpoint, variant, at_once(3600, beside));
        assert_eq!(recorded.accrual.unwrap().accrued_usd, usd("4.224"));
    }

    /// A rate in force at which nothing of the variant's own stood is no
    /// last known rate for instances that come up at a rate not known: they
    /// are unpriced, the shadow beside them accruing alone. A on
    /// 2 × ml.g5.xlarge ($1.408/h) with a shadow S on 1 × ml.m5.xlarge
    /// ($0.23/h): 2.816 + 0.23 = $3.046/h from t = 0; at 600 s A is at 0
    /// instances (its part $0, S's $0.23/h); at 1,800 s A is back on 1
    /// instance of a type no source prices. To 3,600 s AWS bills
    /// 3.046 × 600 / 3,600 + 0.23 × 3,000 / 3,600 = 0.507666… + 0.191666… =
    /// $0.699333333333 of priced capacity, and A's instance from 1,800 s
    /// (0.5 instance-hours) at a rate not known: flagged, not in force at $0.
    #[test]
    fn a_variant_back_up_from_zero_at_an_unknown_rate_stands_beside_its_shadow_unpriced() {
        let (totals, endpoint, variant) = two_g5_beside_m5_shadow_called_at_0();
        totals.set_standing(variant, g5_beside_m5_shadow(0), t(600));
        let accrued = back_up_beside_the_shadow_unpriced(&totals, endpoint, variant, 1800, 3600);
        assert_eq!(accrued, usd("0.699333333333"));
    }

    /// A shadow (or a deployment's pending fleet) that stood beside a variant
    /// never priced and is gone stands no more: AllTraffic on 2 instances of
    /// a type no source prices, its shadow on 1 × ml.g5.xlarge ($1.408/h)
    /// from t = 0; at 1 h the shadow ends and nothing priced is left beside
    /// AllTraffic. AWS bills the shadow 1 h × 1.408 = $1.408, nothing after
    /// (not 2 h × 1.408 = $2.816); the rate calls carry from then on is $0,
    /// AllTraffic's 2 instances unpriced.
    #[test]
    fn a_shadow_gone_from_beside_a_variant_never_priced_stands_no_more() {
        let (totals, endpoint, variant) = one_variant();
        let shadow = super::StandingRate {
            beside_unknown: true,
            unpriced_instances: 2,
            ..g5_xlarge(1)
        };
        totals.set_standing_beside_unknown(variant, Some(shadow.clone()), 2, t(0));
        record_clock(&totals, endpoint, variant, at_once(0, shadow.clone()));
        totals.set_standing_beside_unknown(variant, None, 2, t(3600));
        let now = totals
            .standing_beside_unknown(variant)
            .expect("AllTraffic's own instances stand unpriced");
        assert_eq!(now.usd_per_hour_all_instances, Decimal::ZERO);
        assert_eq!((now.instances, now.unpriced_instances), (0, 2));
        let recorded = record_clock(&totals, endpoint, variant, at_once(7200, now));
        assert_eq!(recorded.accrual.unwrap().accrued_usd, usd("1.408"));
    }

    /// An endpoint deleted and created again is no last known rate of its
    /// own for the instances of the new one: `e`'s AllTraffic on
    /// 2 × ml.g5.xlarge (2 × 1.408 = $2.816/h) with a shadow of 1 ×
    /// ml.m5.xlarge ($0.23/h), $3.046/h from t = 0; deleted at 1 h; created
    /// again at 2 h on 1 instance of a type no source prices with the same
    /// shadow. To 3 h AWS bills 3.046 × 1 h + nothing for the hour it did
    /// not exist + the shadow's 0.23 × 1 h = $3.276 of priced capacity, and
    /// AllTraffic's new instance at a rate not known: flagged, not kept at
    /// the deleted endpoint's $0 (which lost the shadow's hour, $3.046).
    #[test]
    fn an_endpoint_created_again_on_an_unpriced_type_stands_beside_its_shadow_unpriced() {
        let (totals, endpoint, variant) = two_g5_beside_m5_shadow_called_at_0();
        totals.endpoint_deleted("e", t(3600));
        assert!(!totals.keeps_own_rate(variant));
        let accrued = back_up_beside_the_shadow_unpriced(&totals, endpoint, variant, 7200, 10800);
        assert_eq!(accrued, usd("3.276"));
    }

    #[test]
    fn a_rate_replaced_before_the_first_receipt_still_accrues_until_it_was() {
        // 4 × ml.g5.xlarge at $1.408/h; four streams start at t = 0; a refresh
        // found 1 instance, applied by a call starting at t = 62 (another, at
        // t = 61, started with the old profile); all six end at t = 120.
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(4), t(0));
        totals.set_standing(variant, g5_xlarge(1), t(62));
        let mut accrued = Decimal::ZERO;
        // The call that applied the new profile is recorded first: the accrual
        // then begins at its start, and the others back-fill before it.
        for (started, instances) in [(62, 1), (61, 4), (0, 4), (0, 4), (0, 4), (0, 4)] {
            let clock = from_to(started, 120, g5_xlarge(instances));
            let recorded = record_clock(&totals, endpoint, variant, clock);
            accrued = recorded.accrual.unwrap().accrued_usd;
        }
        // AWS bills 4 instances until the new count was applied, then 1:
        // 4 × 62 s + 1 × 58 s = 306 instance-seconds × 1.408 / 3600 = 0.11968
        // (not 120 s × 1.408 / 3600 = 0.046933…, all at the latest rate).
        assert_eq!(accrued, usd("0.11968"));
    }

    #[test]
    fn a_call_recorded_after_a_refresh_back_fills_at_the_rate_before_it() {
        // 1 × ml.g5.xlarge at $1.408/h from t = 0. A stream B starts at t = 0;
        // call A runs from t = 10 to 20 s and is recorded first (the accrual
        // begins at 10 s). A refresh at t = 36 s finds 4 instances; B ends at
        // t = 72 s and is recorded after it.
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(1), t(0));
        let clock = |started, ended| from_to(started, ended, g5_xlarge(1));
        record_clock(&totals, endpoint, variant, clock(10, 20));
        totals.set_standing(variant, g5_xlarge(4), t(36));
        let accrual = record_clock(&totals, endpoint, variant, clock(0, 72))
            .accrual
            .unwrap();
        // AWS bills 1 instance until the refresh, 4 after it: 1 × 36 s + 4 × 36 s
        // = 180 instance-seconds = 0.05 instance-hours × $1.408 = $0.0704 (not
        // the first 10 s at 4 instances: 210 instance-seconds, $0.082133…).
        assert_eq!(accrual.accrued_usd, usd("0.0704"));
    }

    #[test]
    fn time_lived_again_after_the_wall_clock_steps_back_accrues_at_the_rate_in_force_now() {
        // 1 × ml.g5.xlarge at $1.408/h from t = 0; a call A 10–20 s is recorded
        // (the accrual begins at 10 s); a refresh at 36 s finds 4 instances. At
        // 41 s the wall clock steps back to 30 s, and a call B runs 30–40 s by it.
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(1), t(0));
        let clock = |instances, started, ended| from_to(started, ended, g5_xlarge(instances));
        record_clock(&totals, endpoint, variant, clock(1, 10, 20));
        totals.set_standing(variant, g5_xlarge(4), t(36));
        // The endpoint's sharing clock sees the step: its last event at 41 s,
        // a call beginning at 30 s.
        totals.call_started_on("e", None, t(40)).end(t(41), false);
        drop(totals.call_started_on("e", None, t(30)));
        let accrual = record_clock(&totals, endpoint, variant, clock(4, 30, 40))
            .accrual
            .unwrap();
        // What stood in real time: 1 instance 10–36 s (26 instance-seconds), 4
        // from the refresh to the step at 41 s (20), and 4 over the 10 s lived
        // again after it (40): 86 × 1.408 / 3600 = 0.033635555555… (not 30–36 s
        // at the replaced rate and nothing for 36–41 s: 26 + 6 + 16 = 48
        // instance-seconds, 0.018773333333).
        assert_eq!(accrual.accrued_usd, usd("0.033635555556"));
    }

    /// 1 × ml.g5.xlarge at $1.408/h accrued over a call from 0 to `accrued_to`
    /// s; endpoint `e`'s sharing clock last moved at `e_at` s and another
    /// endpoint's, `other`, at `other_at` s. The wall clock then steps back to
    /// 40 s: `e` sees it at 40 s, `other` at 41 s, and a call runs 41–50 s.
    /// Returns what the variant accrued in all.
    fn stepped_back_to_40_seen_by_two_clocks(accrued_to: u64, e_at: u64, other_at: u64) -> Decimal {
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(1), t(0));
        let clock = |started, ended| from_to(started, ended, g5_xlarge(1));
        record_clock(&totals, endpoint, variant, clock(0, accrued_to));
        totals.call_started_on("e", None, t(0)).end(t(e_at), false);
        totals
            .call_started_on("other", None, t(0))
            .end(t(other_at), false);
        drop(totals.call_started_on("e", None, t(40)));
        drop(totals.call_started_on("other", None, t(41)));
        record_clock(&totals, endpoint, variant, clock(41, 50))
            .accrual
            .unwrap()
            .accrued_usd
    }

    #[test]
    fn a_wall_clock_step_back_seen_by_two_sharing_clocks_is_counted_once() {
        // What stood in real time: 0–100 s up to the step, then 40–50 s lived
        // again after it: 110 s × $1.408/h ÷ 3600 = $0.0430222… (not 40–100 s
        // counted again when the second clock sees the step at 41 s: 100 + 60
        // + 9 = 169 s, $0.066097777778).
        assert_eq!(
            stepped_back_to_40_seen_by_two_clocks(100, 100, 100),
            usd("0.043022222222")
        );
    }

    #[test]
    fn a_wall_clock_step_back_counts_up_to_the_latest_reading_of_any_clock() {
        // The accrual last moved at 80 s, `e` at 90 s, `other` at 100 s: the
        // last reading before the step was 100 s, whichever clock sees the step
        // first. 0–100 s, then 40–50 s: 110 s × $1.408/h ÷ 3600 = $0.0430222…
        // (not 0–90 s and 40–50 s, 100 s, $0.039111111111, up to the first
        // clock's reading only; nor 0–90, 40–100 and 41–50 s, 159 s,
        // $0.062186666667, the step counted by each clock).
        assert_eq!(
            stepped_back_to_40_seen_by_two_clocks(80, 90, 100),
            usd("0.043022222222")
        );
    }

    /// 1 × ml.g5.xlarge at $1.408/h accrued over a call 0–100 s, endpoint `e`'s
    /// sharing clock last moved at 100 s; the wall clock steps back to 40 s and
    /// `first_seen` sees it at 40 s, before any call; then a call runs 40–50 s.
    /// Returns what the variant accrued in all.
    fn stepped_back_to_40_first_seen_by(
        first_seen: impl FnOnce(&Totals, super::EndpointSlot),
    ) -> Decimal {
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(1), t(0));
        let clock = |started, ended| from_to(started, ended, g5_xlarge(1));
        record_clock(&totals, endpoint, variant, clock(0, 100));
        totals.call_started_on("e", None, t(0)).end(t(100), false);
        first_seen(&totals, endpoint);
        record_clock(&totals, endpoint, variant, clock(40, 50))
            .accrual
            .unwrap()
            .accrued_usd
    }

    #[test]
    fn a_wall_clock_step_back_first_seen_by_a_fleet_flush_or_a_scale_is_counted() {
        // What stood in real time: 0–100 s up to the step, then 40–50 s lived
        // again after it: 110 s × $1.408/h ÷ 3600 = $0.0430222… (not 100 s,
        // $0.039111111111, the accrual standing still at 100 s until the wall
        // clock caught up with it).
        let expected = usd("0.043022222222");
        let flushed = stepped_back_to_40_first_seen_by(|totals, _| {
            totals.take_loads(t(40));
        });
        assert_eq!(flushed, expected, "seen by a fleet flush");
        let scaled = stepped_back_to_40_first_seen_by(|totals, endpoint| {
            totals.set_instances(endpoint, 2, t(40));
        });
        assert_eq!(scaled, expected, "seen by an instance count changed");
    }

    /// The load published after a wall-clock step back is the calls in flight
    /// since the new time, not the load before the step over the moment since
    /// it. `other` has 3 calls in flight from 100 s, `e` 2; both published at
    /// 100 s. `other` moves at 109 s (the others' load read), `e` at 109 s (a
    /// third call); `e`'s fourth call, at 49 s, sees the step. The flush at 50 s
    /// publishes 1 s × 3 calls ÷ 1 s = 3 calls for `other`, 3,000 thousandths,
    /// and 1 s × 4 ÷ 1 s = 4,000 for `e` (not 9 s × 3 + 1 s × 3 = 30 call-s ÷
    /// 1 s = 30,000, nor 9 s × 2 + 1 s × 4 = 22 call-s, 22,000: another process
    /// would then allocate 1/31 of an instance to a call of its own, not 1/4).
    #[test]
    fn the_load_published_after_a_wall_clock_step_back_is_from_the_new_time() {
        let totals = Totals::default();
        let mut calls: Vec<_> = (0..3)
            .map(|_| totals.call_started_on("other", None, t(100)))
            .collect();
        calls.extend((0..2).map(|_| totals.call_started_on("e", None, t(100))));
        let mut first = totals.take_loads(t(100));
        first.sort();
        assert_eq!(
            first,
            [("e".to_owned(), 2_000), ("other".to_owned(), 3_000)]
        );
        totals.set_others_load("other", 1_000, t(109));
        calls.push(totals.call_started_on("e", None, t(109)));
        calls.push(totals.call_started_on("e", None, t(49)));
        let mut loads = totals.take_loads(t(50));
        loads.sort();
        assert_eq!(
            loads,
            [("e".to_owned(), 4_000), ("other".to_owned(), 3_000)]
        );
        drop(calls);
    }

    #[test]
    fn calls_served_while_no_instance_stands_accrue_nothing_until_instances_do() {
        // The profile shows 0 × ml.g5.xlarge ($1.408/h); calls are served all the
        // same (DescribeEndpoint lagging a scale-out). The accrual counts what the
        // profile shows: no instance is made up per call, which overlapping calls
        // (A 0-10 s, B 20-30 s, C 5-35 s, recorded as they end) would count twice.
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, g5_xlarge(0), t(0));
        for (started, ended) in [(0, 10), (20, 30), (5, 35)] {
            let clock = from_to(started, ended, g5_xlarge(0));
            let accrual = record_clock(&totals, endpoint, variant, clock)
                .accrual
                .unwrap();
            assert_eq!(accrual.accrued_usd, Decimal::ZERO);
            // Nothing accrued: no utilisation of it.
            assert_eq!(accrual.utilisation, None);
        }
        // A refresh at 35 s finds one instance: it accrues from then, not before.
        totals.set_standing(variant, g5_xlarge(1), t(35));
        let clock = from_to(35, 71, g5_xlarge(1));
        let accrual = record_clock(&totals, endpoint, variant, clock)
            .accrual
            .unwrap();
        // 36 s × $1.408/h ÷ 3600 = $0.01408.
        assert_eq!(accrual.accrued_usd, usd("0.01408"));
    }

    #[test]
    fn an_accrual_counts_the_nanoseconds_of_every_stretch() {
        use super::{InstanceClock, StandingRate};
        // 1 instance at $3.60/h ($10⁻¹² a nanosecond) with a volume costing
        // $2,678.40 a month (January: 31 × 86,400 s = 2,678,400 s, so also $10⁻¹²
        // a nanosecond). 1,000 calls back to back, 1.5 µs each: AWS bills the
        // 1.5 ms they span, 1,500,000 ns × $10⁻¹² = $0.0000015 of each.
        let standing = StandingRate {
            beside_unknown: false,
            unpriced_instances: 0,
            usd_per_hour_all_instances: "3.6".parse().unwrap(),
            instances: 1,
            capacity_from: (crate::pricing::PriceOrigin::Live, None),
            storage_usd_per_month: Some("2678.4".parse().unwrap()),
            storage_from: Some((crate::pricing::PriceOrigin::Live, None)),
            unreserved_fraction: None,
            parts: std::sync::Arc::from([]),
            terms: super::no_terms(),
            storage_terms: super::no_storage_terms(),
        };
        let (totals, endpoint, variant) = one_variant();
        // 2027-01-15T08:00:00Z.
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ns = |n: u64| t0 + Duration::from_nanos(n);
        let mut accrual = None;
        for i in 0..1_000 {
            let clock = InstanceClock {
                standing: standing.clone(),
                started_at: ns(i * 1_500),
                ended_at: ns((i + 1) * 1_500),
            };
            accrual = record_clock(&totals, endpoint, variant, clock).accrual;
        }
        let accrual = accrual.unwrap();
        assert_eq!(accrual.accrued_usd, usd("0.0000015"));
        assert_eq!(accrual.storage_usd, Some(usd("0.0000015")));
    }

    #[test]
    fn an_accrual_lists_each_source_its_stretches_were_priced_from_never_one_for_both() {
        use super::StandingRate;
        use crate::billing::{AccrualCharge, AccrualSource};
        use crate::pricing::PriceOrigin;
        use std::sync::Arc;
        // 1 × ml.g5.xlarge at $1.408/h, first from the bundled snapshot (the Price
        // List down), then, from t = 60 s, the same figure live. A 100 GB volume
        // at $0.14 per GB-month, from a cached price kept after a failed refresh.
        let note: Arc<str> =
            "primary price source failed (HTTP 500); bundled price snapshot".into();
        let stale: Arc<str> = "refresh failed (throttled); kept the last good price".into();
        let rate = |origin: PriceOrigin, note: Option<Arc<str>>| StandingRate {
            usd_per_hour_all_instances: "1.408".parse().unwrap(),
            instances: 1,
            capacity_from: (origin, note),
            storage_usd_per_month: Some("14".parse().unwrap()),
            storage_from: Some((PriceOrigin::Cache, Some(stale.clone()))),
            unreserved_fraction: None,
            parts: std::sync::Arc::from([]),
            terms: super::no_terms(),
            storage_terms: super::no_storage_terms(),
            beside_unknown: false,
            unpriced_instances: 0,
        };
        let (totals, endpoint, variant) = one_variant();
        let record = |started: u64, ended: u64, standing: StandingRate| {
            let clock = from_to(started, ended, standing);
            let recorded = record_clock(&totals, endpoint, variant, clock);
            recorded.accrual.unwrap()
        };
        let snapshot = rate(PriceOrigin::Snapshot, Some(note.clone()));
        let first = record(0, 30, snapshot.clone());
        assert_eq!(
            &*first.priced_from,
            [
                AccrualSource::new(
                    AccrualCharge::Capacity,
                    PriceOrigin::Snapshot,
                    Some(note.clone())
                ),
                AccrualSource::new(
                    AccrualCharge::Storage,
                    PriceOrigin::Cache,
                    Some(stale.clone())
                ),
            ]
        );
        totals.set_standing(variant, rate(PriceOrigin::Live, None), t(60));
        let second = record(90, 120, rate(PriceOrigin::Live, None));
        // 120 s × $1.408/h = 0.046933… at 12 places: 60 s at the snapshot's rate and
        // 60 s at the live one, both listed, the snapshot's first.
        assert_eq!(second.accrued_usd, usd("0.046933333333"));
        assert_eq!(
            &*second.priced_from,
            [
                AccrualSource::new(AccrualCharge::Capacity, PriceOrigin::Snapshot, Some(note)),
                AccrualSource::new(AccrualCharge::Storage, PriceOrigin::Cache, Some(stale)),
                AccrualSource::new(AccrualCharge::Capacity, PriceOrigin::Live, None),
            ]
        );
        assert!(
            second.fallbacks().count() == 2,
            "the snapshot and the kept cache"
        );
    }

    #[test]
    fn an_async_settlement_adds_its_cost_but_not_a_call() {
        let totals = Totals::default();
        let endpoint = totals.endpoint_slot("e");
        let cost = Decimal::new(25, 6);
        record_cost(&totals, endpoint, None, cost, true);
        record_cost(&totals, endpoint, None, cost, false);
        let snapshot = totals.snapshot();
        assert_eq!(snapshot.calls, 1, "the submission counted the call");
        assert_eq!(snapshot.client_usd, Decimal::new(50, 6));
    }

    #[test]
    fn a_tag_keeps_its_values_apart_up_to_the_bound_and_sums_the_rest() {
        let totals = Totals::default();
        let tag = |value: String| BTreeMap::from([("request".to_owned(), value)]);
        let cent = Decimal::new(1, 2);
        let add = |value: String| totals.lock().add_to_tags(&tag(value), cent);
        for i in 0..MAX_TAG_VALUES + 2 {
            add(format!("r{i}"));
        }
        // A value already kept goes on counting apart.
        add("r0".to_owned());
        // A key holding `=` is not confused with another key's value.
        totals
            .lock()
            .add_to_tags(&BTreeMap::from([("a=b".into(), "c".into())]), cent);
        totals
            .lock()
            .add_to_tags(&BTreeMap::from([("a".into(), "b=c".into())]), cent);
        let by_tag = totals.snapshot().by_tag;
        let requests = &by_tag["request"];
        assert_eq!(requests.len(), MAX_TAG_VALUES + 1);
        assert_eq!(requests["r0"], Decimal::new(2, 2));
        // The two values past the bound: 2 × 0.01.
        assert_eq!(requests["_other"], Decimal::new(2, 2));
        assert!(!requests.contains_key(&format!("r{MAX_TAG_VALUES}")));
        // Every cent is somewhere: (10,002 + 1) × 0.01.
        let all: Decimal = requests.values().sum();
        assert_eq!(all, Decimal::from(MAX_TAG_VALUES as u64 + 3) * cent);
        assert_eq!((by_tag["a=b"]["c"], by_tag["a"]["b=c"]), (cent, cent));
    }

    #[test]
    fn a_totals_debug_counts_its_endpoints_and_lists_none() {
        let totals = Totals::default();
        for name in ["tenant-a-endpoint", "tenant-b-endpoint"] {
            let endpoint = totals.endpoint_slot(name);
            let variant = totals.variant_slot(endpoint, "AllTraffic");
            record_cost(&totals, endpoint, Some(variant), Decimal::new(25, 6), true);
        }
        let shown = format!("{totals:?}");
        assert!(!shown.contains("tenant-"), "{shown}");
        // Two calls of 0.000025 USD each.
        assert!(shown.contains("calls: 2"), "{shown}");
        assert!(shown.contains("client_usd: 0.000050"), "{shown}");
        assert!(shown.contains("slots: 2"), "{shown}");
    }

    #[test]
    fn snapshots_list_what_was_recorded_not_every_slot_handed_out() {
        let totals = Totals::default();
        let quiet = totals.endpoint_slot("quiet");
        totals.variant_slot(quiet, "AllTraffic");
        let busy = totals.endpoint_slot("busy");
        let blue = totals.variant_slot(busy, "blue");
        let green = totals.variant_slot(busy, "green");
        assert_eq!(totals.endpoint_slot("busy"), busy, "one slot per endpoint");
        assert_eq!(
            totals.variant_slot(busy, "green"),
            green,
            "one slot per variant"
        );

        let cost = Decimal::new(25, 6);
        record_cost(&totals, busy, Some(blue), cost, true);
        let recorded = record_cost(&totals, busy, Some(blue), cost, true);
        assert_eq!(recorded.running_endpoint_usd, Decimal::new(50, 6));

        let snapshot = totals.snapshot();
        assert_eq!(snapshot.calls, 2);
        assert_eq!(snapshot.client_usd, Decimal::new(50, 6));
        assert_eq!(
            snapshot.by_endpoint.into_iter().collect::<Vec<_>>(),
            [("busy".to_owned(), Decimal::new(50, 6))]
        );
        assert_eq!(
            snapshot.by_variant.into_iter().collect::<Vec<_>>(),
            [("busy/blue".to_owned(), Decimal::new(50, 6))]
        );
    }

    /// 2026-08-31T23:50:00Z + `minutes`.
    fn from_2350(minutes: u64) -> SystemTime {
        // 2026-09-01T00:00:00Z is 1,788,220,800 s after the epoch.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_788_220_800 - 600 + minutes * 60)
    }

    /// 1 × ml.m5.xlarge at $0.23/h (live) with one 30 GB volume at $0.14 per
    /// GB-month (live): 30 × 0.14 = $4.20 a month; with the capacity's terms and
    /// the storage's given.
    fn m5_with_volume(terms: &[(u64, &str)], storage_terms: &[(u64, &str)]) -> super::StandingRate {
        use crate::pricing::PriceOrigin;
        let announced: std::sync::Arc<str> = "rate of the term announced".into();
        super::StandingRate {
            beside_unknown: false,
            unpriced_instances: 0,
            usd_per_hour_all_instances: "0.23".parse().unwrap(),
            instances: 1,
            capacity_from: (PriceOrigin::Live, None),
            storage_usd_per_month: Some("4.20".parse().unwrap()),
            storage_from: Some((PriceOrigin::Live, None)),
            unreserved_fraction: None,
            parts: std::sync::Arc::from([]),
            terms: terms
                .iter()
                .map(|(minutes, usd)| super::StandingTerm {
                    on: from_2350(*minutes),
                    usd_per_hour_all_instances: usd.parse().unwrap(),
                    capacity_from: (PriceOrigin::Cache, Some(announced.clone())),
                    unreserved_fraction: None,
                })
                .collect(),
            storage_terms: storage_terms
                .iter()
                .map(|(minutes, usd)| super::StorageTerm {
                    on: from_2350(*minutes),
                    usd_per_month: usd.parse().unwrap(),
                    storage_from: (PriceOrigin::Cache, Some(announced.clone())),
                })
                .collect(),
        }
    }

    /// Two calls of no length, at 23:50 and at `minutes` after, with `standing`,
    /// amortised: the second's parts and its accrual.
    fn called_at_2350_and(
        minutes: u64,
        standing: &super::StandingRate,
    ) -> (crate::billing::AmortizedShare, crate::billing::Accrual) {
        use super::InstanceClock;
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, standing.clone(), from_2350(0));
        let mut last = None;
        for at in [from_2350(0), from_2350(minutes)] {
            let clock = InstanceClock {
                standing: standing.clone(),
                started_at: at,
                ended_at: at,
            };
            let share = totals.amortized_since_previous_call(variant, Some(&clock), at);
            let accrual = record_clock(&totals, endpoint, variant, clock).accrual;
            last = Some((share, accrual.unwrap()));
        }
        last.unwrap()
    }

    #[test]
    fn ml_storage_accrues_at_a_term_its_storage_rate_announced_from_the_terms_date() {
        use crate::billing::{AccrualCharge, AccrualSource, AmortizedShare};
        use crate::pricing::PriceOrigin;
        // The volume's $0.14 per GB-month, with $0.10 announced from
        // 2026-09-01T00:00Z: 30 × 0.10 = $3.00 a month from then. The instance's
        // rate announces nothing. Calls at 23:50 and 00:30. AWS prorates a
        // GB-month by the second over the calendar month it falls in:
        // - 23:50 → 00:00, 600 s of August (31 days, 2,678,400 s) at $4.20:
        //   600 × 4.2 ÷ 2,678,400 = 0.000940860215053763440… →
        //   0.00094086021505376344 at 20 places;
        // - 00:00 → 00:30, 1,800 s of September (30 days, 2,592,000 s) at $3.00:
        //   1,800 × 3 ÷ 2,592,000 = 0.00208333… → 0.00208333333333333333;
        // - together 0.00302419354838709677, shown 0.003024193548 at 12 places
        //   (at $0.14 throughout: 0.000940860215… + 1,800 × 4.2 ÷ 2,592,000 =
        //   0.003857526882).
        // The instance: 40 min × $0.23/h = 0.153333… → 0.153333333333, one rate.
        let standing = m5_with_volume(&[], &[(10, "3.00")]);
        let (share, accrual) = called_at_2350_and(40, &standing);
        assert_eq!(accrual.storage_usd, Some(usd("0.003024193548")));
        assert_eq!(accrual.accrued_usd, usd("0.153333333333"));
        // One capacity line: the storage's date cuts the instance's stretch at the
        // same rate, which stays one part: 2/3 instance-hour at 0.23.
        let AmortizedShare::Accrued { parts, .. } = share else {
            panic!("{share:?}");
        };
        let parts: Vec<_> = parts
            .iter()
            .map(|p| (p.usd_per_instance_hour, p.instance_hours, p.cost_usd))
            .collect();
        assert_eq!(
            parts,
            [(
                "0.23".parse().unwrap(),
                Decimal::from(2) / Decimal::from(3),
                "0.153333333333".parse().unwrap()
            )]
        );
        // The storage was priced live, then at the term's rate (from the cache):
        // both listed; the instance live only.
        let announced: std::sync::Arc<str> = "rate of the term announced".into();
        assert_eq!(
            &*accrual.priced_from,
            [
                AccrualSource::new(AccrualCharge::Capacity, PriceOrigin::Live, None),
                AccrualSource::new(AccrualCharge::Storage, PriceOrigin::Live, None),
                AccrualSource::new(AccrualCharge::Storage, PriceOrigin::Cache, Some(announced)),
            ]
        );
    }

    #[test]
    fn a_capacity_term_and_a_storage_term_on_other_dates_each_change_their_own_rate() {
        use crate::billing::AmortizedShare;
        // The instance: $0.23/h, $0.20 from 00:10; the volume: $4.20 a month,
        // $3.00 from 00:00. Calls at 23:50 and 00:30.
        // The instance: 23:50 → 00:10 at 0.23 (cut at 00:00 at the same rate,
        // 2 × 10/60 × 0.23 = 2 × 0.03833333333333333333 = 0.07666666666666666666),
        // 00:10 → 00:30 at 0.20 (20/60 × 0.20 = 0.06666666666666666667): together
        // 0.14333333333333333333, shown 0.143333333333 (not 40 min at either).
        // The receipt's lines: 1/3 instance-hour at 0.23, costed to the shown
        // figure at its end, 0.07666666666666666666 → 0.076666666667, and 1/3 at
        // 0.20 for the rest, 0.143333333333 − 0.076666666667 = 0.066666666666.
        // The volume: 23:50 → 00:00 at $4.20 a month over August (0.00094086021505376344),
        // 00:00 → 00:10 and 00:10 → 00:30 at $3.00 over September (600 × 3 ÷
        // 2,592,000 = 0.00069444444444444444 and 1,200 × 3 ÷ 2,592,000 =
        // 0.00138888888888888889): 0.00302419354838709677, shown 0.003024193548.
        let standing = m5_with_volume(&[(20, "0.20")], &[(10, "3.00")]);
        let (share, accrual) = called_at_2350_and(40, &standing);
        assert_eq!(accrual.accrued_usd, usd("0.143333333333"));
        assert_eq!(accrual.storage_usd, Some(usd("0.003024193548")));
        let AmortizedShare::Accrued { parts, .. } = share else {
            panic!("{share:?}");
        };
        let third = Decimal::ONE / Decimal::from(3);
        let parts: Vec<_> = parts
            .iter()
            .map(|p| (p.usd_per_instance_hour, p.instance_hours, p.cost_usd))
            .collect();
        assert_eq!(
            parts,
            [
                (
                    "0.23".parse().unwrap(),
                    third,
                    "0.076666666667".parse().unwrap()
                ),
                (
                    "0.2".parse().unwrap(),
                    third,
                    "0.066666666666".parse().unwrap()
                ),
            ]
        );

        // The other way round: the instance's term at 00:00, the volume's at
        // 00:10. The instance: 10 min at 0.23 + 30 min at 0.20 =
        // 0.03833333333333333333 + 0.1 = 0.138333333333; the volume: 600 s of
        // August at $4.20 and 600 s of September at $4.20 (600 × 4.2 ÷ 2,592,000
        // = 0.00097222222222222222), then 1,200 s at $3.00
        // (0.00138888888888888889): 0.00094086021505376344 +
        // 0.00097222222222222222 + 0.00138888888888888889 =
        // 0.00330197132616487455, shown 0.003301971326.
        let standing = m5_with_volume(&[(10, "0.20")], &[(20, "3.00")]);
        let (_, accrual) = called_at_2350_and(40, &standing);
        assert_eq!(accrual.accrued_usd, usd("0.138333333333"));
        assert_eq!(accrual.storage_usd, Some(usd("0.003301971326")));
    }

    #[test]
    fn nothing_standing_drops_the_storage_terms_too() {
        use super::InstanceClock;
        // The volume at $4.20 a month, $3.00 from 00:00; at 23:55 nothing stands
        // (the variant scaled to nothing): from then nothing accrues, at neither
        // rate. 23:50 → 23:55, 300 s of August at $4.20: 300 × 4.2 ÷ 2,678,400 =
        // 0.00047043010752688172…, shown 0.000470430108.
        let standing = m5_with_volume(&[], &[(10, "3.00")]);
        let (totals, endpoint, variant) = one_variant();
        totals.set_standing(variant, standing.clone(), from_2350(0));
        let call = |at| InstanceClock {
            standing: standing.clone(),
            started_at: at,
            ended_at: at,
        };
        record_clock(&totals, endpoint, variant, call(from_2350(0)));
        totals.nothing_stands(variant, from_2350(5));
        let accrual = record_clock(&totals, endpoint, variant, call(from_2350(40)))
            .accrual
            .unwrap();
        assert_eq!(accrual.storage_usd, Some(usd("0.000470430108")));
    }

    /// [`Allocation::Amortized`](crate::billing::Allocation::Amortized) as the
    /// meter runs it: the share taken from the accrual, the lines billed from it,
    /// the receipt recorded.
    mod amortized {
        use super::super::{InstanceClock, RateFrom, StandingRate, Totals, VariantSlot};
        use crate::billing::{
            Accrual, AmortizedShare, CostLine, LinePrice, RateResult, amortized_compute_lines,
        };
        use crate::endpoint::VariantBilling;
        use crate::pricing::{PriceKey, PriceOrigin, Provenance, Rate};
        use crate::usage::{Operation, Usage};
        use rust_decimal::Decimal;
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};

        fn dec(s: &str) -> Decimal {
            s.parse().unwrap()
        }

        fn t(micros: u64) -> SystemTime {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_700_000_000)
                + Duration::from_micros(micros)
        }

        const S: u64 = 1_000_000;

        /// `instances` × ml.g5.xlarge at `usd` per instance-hour from `from`.
        fn g5(instances: u32, usd: &str, from: RateFrom) -> (StandingRate, RateResult) {
            let usd_per_hour = dec(usd);
            let mut provenance = Provenance::new(from.0).with_sku("SKU-G5-XL");
            provenance.note = from.1.clone();
            let rate = Rate::new(
                PriceKey::hosting("us-east-1", "ml.g5.xlarge"),
                usd_per_hour,
                provenance,
            );
            let standing = StandingRate {
                beside_unknown: false,
                unpriced_instances: 0,
                usd_per_hour_all_instances: usd_per_hour * Decimal::from(instances),
                instances,
                capacity_from: from,
                storage_usd_per_month: None,
                storage_from: None,
                unreserved_fraction: None,
                parts: Arc::from([]),
                terms: super::super::no_terms(),
                storage_terms: super::super::no_storage_terms(),
            };
            (standing, Ok(rate))
        }

        fn live() -> RateFrom {
            (PriceOrigin::Live, None)
        }

        struct Variant {
            totals: Totals,
            slot: VariantSlot,
        }

        impl Variant {
            fn new() -> Self {
                let totals = Totals::default();
                let endpoint = totals.endpoint_slot("e");
                let slot = totals.variant_slot(endpoint, "AllTraffic");
                Variant { totals, slot }
            }

            /// A call from `started` to `ended` (µs) whose profile said
            /// `instances` at `standing`/`rate`: its compute lines and accrual.
            fn call(
                &self,
                started: u64,
                ended: u64,
                instances: u32,
                (standing, rate): &(StandingRate, RateResult),
            ) -> (Vec<CostLine>, Accrual) {
                let clock = InstanceClock {
                    standing: standing.clone(),
                    started_at: t(started),
                    ended_at: t(ended),
                };
                let share =
                    self.totals
                        .amortized_since_previous_call(self.slot, Some(&clock), t(ended));
                let billing = VariantBilling::Instance {
                    instance_type: "ml.g5.xlarge".into(),
                    instance_count: instances,
                };
                let usage = Usage::new(
                    Operation::InvokeEndpoint,
                    Duration::from_micros(ended - started),
                );
                let lines = amortized_compute_lines(&billing, &usage, share, rate);
                let compute: Decimal = lines.iter().filter_map(CostLine::cost_usd).sum();
                let recorded = self.totals.record(
                    &std::collections::BTreeMap::new(),
                    self.slot.endpoint(),
                    Some(self.slot),
                    compute,
                    Some(compute),
                    Some(clock),
                    None,
                    true,
                    false,
                );
                (lines, recorded.accrual.expect("an accrual"))
            }
        }

        fn priced(line: &CostLine) -> (Decimal, Decimal, &Provenance) {
            match &line.price {
                LinePrice::Priced {
                    usd_per_unit,
                    cost_usd,
                    provenance,
                } => (*usd_per_unit, *cost_usd, provenance),
                LinePrice::Unpriced { reason } => panic!("unpriced: {reason}"),
            }
        }

        #[test]
        fn a_gap_across_a_scale_out_is_charged_at_each_count_for_its_time() {
            // 2 × ml.g5.xlarge at $1.408/h; call A ends at t = 0; a refresh finds 4
            // instances at t = 1800 s; call B (its profile: whichever it saw) ends at
            // t = 3600 s. AWS bills 2 × 0.5 h + 4 × 0.5 h = 3 instance-hours
            // × $1.408 = $4.224 (not 4 × 1 h × 1.408 = $5.632, nor 2 × 1 h = $2.816).
            let v = Variant::new();
            let two = g5(2, "1.408", live());
            let four = g5(4, "1.408", live());
            v.totals.set_standing(v.slot, two.0.clone(), t(0));
            let (first, _) = v.call(0, 0, 2, &two);
            assert_eq!(first[0].quantity, Decimal::ZERO, "busy time of a 0 s call");
            v.totals.set_standing(v.slot, four.0.clone(), t(1800 * S));
            let (b, accrual) = v.call(3599 * S, 3600 * S, 2, &two);
            assert_eq!(b.len(), 1, "one rate, one line: {b:?}");
            assert_eq!(b[0].quantity, dec("3"));
            let (usd_per_unit, cost_usd, provenance) = priced(&b[0]);
            assert_eq!(usd_per_unit, dec("1.408"));
            assert_eq!(cost_usd, dec("4.224"));
            assert_eq!(provenance.source, PriceOrigin::Live);
            assert_eq!(
                provenance.sku.as_deref(),
                Some("SKU-G5-XL"),
                "the call's own rate"
            );
            // And the accrual agrees: $4.224 since A's end, utilisation 1.
            assert_eq!(accrual.accrued_usd, dec("4.224"));
            assert_eq!(accrual.utilisation, Some(Decimal::ONE));
        }

        #[test]
        fn a_gap_across_a_price_change_has_a_line_per_rate_each_with_its_source() {
            // 2 × ml.g5.xlarge; until t = 1800 s priced from the bundled snapshot
            // at $1.408/h (the Price List down), from then live at $1.212/h.
            // B, ending at t = 3600 s, carries 2 × 0.5 h at each:
            // 1 instance-hour × $1.408 = $1.408 (snapshot) and
            // 1 instance-hour × $1.212 = $1.212 (live): $2.62 in all.
            let down: Arc<str> = "primary price source failed (HTTP 500)".into();
            let snapshot = g5(2, "1.408", (PriceOrigin::Snapshot, Some(down.clone())));
            let live = g5(2, "1.212", live());
            let v = Variant::new();
            v.totals.set_standing(v.slot, snapshot.0.clone(), t(0));
            v.call(0, 0, 2, &snapshot);
            v.totals.set_standing(v.slot, live.0.clone(), t(1800 * S));
            let (b, accrual) = v.call(3599 * S, 3600 * S, 2, &live);
            assert_eq!(b.len(), 2, "{b:?}");
            let (usd, cost, from) = priced(&b[0]);
            assert_eq!(
                (b[0].quantity, usd, cost),
                (dec("1"), dec("1.408"), dec("1.408"))
            );
            assert_eq!(from.source, PriceOrigin::Snapshot);
            assert_eq!(from.note.as_deref(), Some(&*down));
            let (usd, cost, from) = priced(&b[1]);
            assert_eq!(
                (b[1].quantity, usd, cost),
                (dec("1"), dec("1.212"), dec("1.212"))
            );
            assert_eq!(from.source, PriceOrigin::Live);
            assert_eq!(from.note, None);
            assert_eq!(accrual.accrued_usd, dec("2.62"));
        }

        #[test]
        fn amortized_receipts_add_up_to_the_accrued_capacity_over_the_called_span() {
            // Irregular gaps (to the µs), counts 2 → 3 → 1 and a price change
            // from a live $1.408 to a cached $1.21 mid-gap, the rates applied
            // between calls and during one: after the first call, each receipt
            // carries exactly what accrued since the previous, so together they
            // are the accrued capacity from the first call's end to the last's,
            // to the pico-dollar.
            let cached: RateFrom = (PriceOrigin::Cache, Some("refresh throttled".into()));
            let v = Variant::new();
            let two = g5(2, "1.408", live());
            v.totals.set_standing(v.slot, two.0.clone(), t(0));
            let (_, first) = v.call(0, 1_234_567, 2, &two);
            let mut charged = Decimal::ZERO;
            let mut last = first.clone();
            let mut profile = two.clone();
            let mut at = 1_234_567;
            for (i, gap) in [
                7_000_123u64,
                1,
                333_333_333,
                59_999_999,
                1_000_003,
                86_400 * S,
            ]
            .into_iter()
            .enumerate()
            {
                match i {
                    1 => {
                        profile = g5(3, "1.408", live());
                        v.totals.set_standing(v.slot, profile.0.clone(), t(at + 1));
                    }
                    3 => {
                        profile = g5(3, "1.21", cached.clone());
                        v.totals
                            .set_standing(v.slot, profile.0.clone(), t(at + gap / 3));
                    }
                    4 => {
                        profile = g5(1, "1.21", cached.clone());
                        v.totals.set_standing(v.slot, profile.0.clone(), t(at + 17));
                    }
                    _ => {}
                }
                let (lines, accrual) = v.call(at + gap / 2, at + gap, 1, &profile);
                let cost: Decimal = lines.iter().filter_map(CostLine::cost_usd).sum();
                assert_eq!(cost, accrual.accrued_usd - last.accrued_usd, "call {i}");
                charged += cost;
                last = accrual;
                at += gap;
            }
            assert_eq!(charged, last.accrued_usd - first.accrued_usd);
        }

        #[test]
        fn the_call_that_finds_the_rate_accrues_the_gap_it_charges() {
            // 2 × ml.g5.xlarge ($1.408 per instance-hour on the price list).
            // Call A, 0–1 s, while no source prices the type: its compute is
            // unpriced and nothing accrues. A live $1.408/h is found at 60 s.
            // Call B, 3599–3600 s, is the first at a known rate: its gap since
            // A's end, 3599 s, is charged on the wall clock at that rate, 2 ×
            // 3599/3600 × 1.408 = $2.815217777778, and the accrual holds the
            // same stretch (it began at A's end, not with B: then it held
            // 2 × 1 s × 1.408/3600 = $0.000782222222 and B's receipt was
            // about 3599 times it). Utilisation 1.
            let v = Variant::new();
            let two = g5(2, "1.408", live());
            assert_eq!(
                v.totals.amortized_since_previous_call(v.slot, None, t(S)),
                AmortizedShare::First
            );
            v.totals.set_standing(v.slot, two.0.clone(), t(60 * S));
            let (b, acc) = v.call(3599 * S, 3600 * S, 2, &two);
            assert_eq!(b.len(), 1, "{b:?}");
            let (usd, cost, from) = priced(&b[0]);
            assert_eq!((usd, cost), (dec("1.408"), dec("2.815217777778")));
            assert_eq!(from.sku.as_deref(), Some("SKU-G5-XL"));
            assert_eq!(acc.accrued_usd, dec("2.815217777778"));
            assert_eq!(acc.utilisation, Some(Decimal::ONE));
            // From B on the receipts add up to the accrual: C, 7199–7200 s,
            // carries 2 × 1 h × 1.408 = $2.816 accrued since B's end.
            let (c, acc) = v.call(7199 * S, 7200 * S, 2, &two);
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(priced(&c[0]).1, dec("2.816"));
            assert_eq!(acc.accrued_usd, dec("5.631217777778"));
            assert_eq!(acc.utilisation, Some(Decimal::ONE));
        }

        #[test]
        fn the_first_amortized_call_is_its_busy_time_and_sets_the_mark() {
            let v = Variant::new();
            let two = g5(2, "1.408", live());
            let clock = InstanceClock {
                standing: two.0.clone(),
                started_at: t(0),
                ended_at: t(S),
            };
            assert_eq!(
                v.totals
                    .amortized_since_previous_call(v.slot, Some(&clock), t(S)),
                AmortizedShare::First
            );
        }
    }
}

#[cfg(test)]
mod accrual_props;
