//! Instance time the receipts' accruals counted, per UTC day.
//!
//! A receipt's accrual is its process's running figure (the variant's standing
//! capacity × rate since the process's first metered call). It becomes
//! increments per run (one process writing one ledger), each over the time since
//! the run's previous receipt, split at UTC midnight in proportion to time (each
//! day's part rounded toward zero at 18 places, [`SHARE_PLACES`], the last day
//! taking what is left). The first receipt of a run is where counting starts,
//! not an increment: the ledger may begin long after its process did (a rolling
//! ledger's oldest files deleted, or a subset of them read), and its figure says
//! nothing of when that was;
//! unless it is the process's first call on the variant, whose accrual is the
//! instances' time during that call.
//! Where several runs metered the same variant at the same time (replicas of a
//! service, each with its own ledger), they counted the same instances: that
//! time is counted once, at the highest of their rates.
//!
//! A receipt of a fleet (`running_fleet_usd` set) carries the fleet's accrual
//! instead: every process's, for the UTC day its call ended in, from the fleet's
//! first call that day. Each process's ledger repeats the same growing figures,
//! so they are not increments to add up: the day's are the highest any of its
//! receipts carries.

use super::usage_class::UsageClass;
use crate::billing::{Cost, LineItem, LinePrice, StandingPart, mul_div_down};
use crate::endpoint::VariantBilling;
use crate::util::exact_sum;
use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A ledger's run, endpoint and variant.
type RunKey = (String, String, Option<String>);

/// A day, endpoint, variant and kind of instance time.
type StretchKey = (NaiveDate, String, Option<String>, UsageClass);

/// A day's part of an increment: the day, the time it covers, the amount.
pub(super) type DayPart = (NaiveDate, DateTime<Utc>, DateTime<Utc>, Decimal);

/// A day's and kind's part of an amount: the day, the kind, the amount.
pub(super) type ClassPart = (NaiveDate, UsageClass, Decimal);

/// A day's and kind's part of an amount: the day, the kind of instance time,
/// the time its day's part covers, and the amount.
type Part<'a> = (
    NaiveDate,
    &'a UsageClass,
    DateTime<Utc>,
    DateTime<Utc>,
    Decimal,
);

/// A day's and kind's part of an increment, and the run's stretch of that day
/// and kind it goes to.
#[derive(Debug)]
struct Piece {
    day: NaiveDate,
    class: UsageClass,
    /// The time it covers.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// What its stretch holds with it.
    held: Decimal,
    /// Whether it goes on the run's last stretch of the day and kind (accrued
    /// at the same rate), rather than starting one.
    extends: bool,
}

/// How far back an increment is spread: beyond Cost Explorer's 13 months of
/// daily costs, no day can be reconciled.
const SPREAD_DAYS: i64 = 400;

/// Where a run's running figures were last seen.
#[derive(Debug, Clone)]
struct Run {
    /// Tells this run's stretches from another's (a restart is a new run).
    id: u64,
    accrued: Decimal,
    allocated: Decimal,
    /// The end of the last call seen.
    to: DateTime<Utc>,
    /// The standing parts the run's last receipt that priced the variant's own
    /// instances ([`own_priced`]) stood on ([`stood_on`]).
    priced: Option<Arc<[StandingPart]>>,
    /// The standing parts the run's last receipt that named any stood on
    /// ([`carried`]): what stood beside the variant's own instances until a
    /// receipt of an unknown own rate that carries none ([`Accruals::standing`]).
    carried: Option<Arc<[StandingPart]>>,
}

/// What one run accrued over a stretch of one day, at one standing rate.
#[derive(Debug, Clone)]
struct Stretch {
    run: u64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    usd: Decimal,
    /// The standing rate its receipts accrued at ([`standing_usd_per_hour`]),
    /// where known: a change (a scale-out) starts a new stretch, so that the
    /// time replicas cover together is valued at the rate over it ([`union`]),
    /// not at the day's average.
    usd_per_hour: Option<Decimal>,
}

/// The runs' accruals so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Accruals {
    runs: HashMap<RunKey, Run>,
    next_run: u64,
    stretches: BTreeMap<StretchKey, Vec<Stretch>>,
    /// A fleet's figures of each day, by the receipts' own kind of instance time.
    fleet_days: BTreeMap<StretchKey, FleetDay>,
}

/// A fleet's figures of one day and variant.
#[derive(Debug, Clone, Default)]
struct FleetDay {
    /// The running figures seen, each with the kinds of instance time its
    /// receipt's accrual paid for and their shares (the receipt's own first). A
    /// running figure only grows: in order of figure, each step from the one
    /// before is shared out by its receipt's shares. Only the figures where the
    /// shares change are kept.
    accrued: BTreeMap<Decimal, Vec<(UsageClass, Decimal)>>,
    /// The highest allocated seen (the variant's own calls').
    allocated: Decimal,
}

impl FleetDay {
    /// Notes a running figure and its receipt's shares.
    fn note(&mut self, accrued: Decimal, shares: &[(UsageClass, Decimal)]) {
        // The next figure up shares the step to it the same way: nothing changes.
        if let Some((_, next)) = self.accrued.range(accrued..).next()
            && next.as_slice() == shares
        {
            return;
        }
        // The figure below shares its step the same way: this one's step and
        // that one's are one.
        let below = self
            .accrued
            .range(..accrued)
            .next_back()
            .filter(|(_, before)| before.as_slice() == shares)
            .map(|(figure, _)| *figure);
        if let Some(figure) = below {
            self.accrued.remove(&figure);
        }
        self.accrued.insert(accrued, shares.to_vec());
    }

    /// The day's accrual by kind of instance time: each step shared out by the
    /// shares of the receipt that reached it. `None` when a step or a sum needs
    /// more digits than a `Decimal` holds.
    fn by_class(&self) -> Option<Vec<(&UsageClass, Decimal)>> {
        let mut out: Vec<(&UsageClass, Decimal)> = Vec::new();
        let mut before = Decimal::ZERO;
        for (figure, shares) in &self.accrued {
            for (class, usd) in shared_out(exact_sum(*figure, -before)?, shares)? {
                match out.iter_mut().find(|(c, _)| *c == class) {
                    Some((_, sum)) => *sum = exact_sum(*sum, usd)?,
                    None => out.push((class, usd)),
                }
            }
            before = *figure;
        }
        Some(out)
    }
}

/// What one receipt's accrual changes, worked out before anything is changed.
#[derive(Debug)]
pub(super) struct Update {
    key: RunKey,
    run: Run,
    /// The kinds of instance time the accrual pays for, each with its share:
    /// the receipt's own first.
    classes: Vec<(UsageClass, Decimal)>,
    /// Each day's and kind's part of the increment (added exactly).
    pieces: Vec<Piece>,
    /// The standing rate the receipt's accrual stood at ([`standing_usd_per_hour`]).
    usd_per_hour: Option<Decimal>,
    /// The time the increment covers, when the receipt adds one.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Compute allocated to calls since the run's previous receipt.
    pub(super) allocated_usd: Decimal,
}

impl Update {
    /// The receipt's own kind of instance time, which its calls were allocated.
    pub(super) fn class(&self) -> &UsageClass {
        &self.classes[0].0
    }

    /// The kinds of instance time the accrual pays for, each with its share: the
    /// receipt's own first.
    pub(super) fn shares(&self) -> &[(UsageClass, Decimal)] {
        &self.classes
    }

    /// The increment the receipt adds: `None` where counting starts.
    pub(super) fn increment(&self) -> Option<Increment<'_>> {
        let (from, to) = self.span?;
        Some(Increment {
            endpoint: &self.key.1,
            from,
            to,
        })
    }
}

/// The increment a receipt adds: its endpoint, and the time it covers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Increment<'a> {
    endpoint: &'a str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Increment<'_> {
    /// The time the increment covers: from the end of the run's previous call to
    /// the end of the receipt's.
    pub(super) fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.from, self.to)
    }

    /// `usd` split as the increment is: by UTC day over the time it covers
    /// ([`spread`]), and by kind of instance time with `shares` (the receipt's own
    /// first, taking what rounding leaves; [`shared_out`]), each part exact; an
    /// error naming the amount when a part needs more digits than a `Decimal`
    /// holds.
    pub(super) fn split_as_accrued(
        &self,
        usd: Decimal,
        shares: &[(UsageClass, Decimal)],
    ) -> Result<Vec<ClassPart>, String> {
        let Increment { endpoint, from, to } = *self;
        let refused = || {
            format!(
                "the {usd} USD or units {endpoint} carried from {} to {}, split by UTC day \
                 and kind of instance time",
                from.to_rfc3339(),
                to.to_rfc3339()
            )
        };
        let parts = split(from, to, usd, shares).ok_or_else(refused)?;
        Ok(parts
            .into_iter()
            .map(|(day, class, _, _, usd)| (day, class.clone(), usd))
            .collect())
    }
}

impl Accruals {
    /// What the accrual of `cost` (read from run `run`, its instance time of the
    /// `classes`, each with its share, the receipt's own first) adds: `accrued` and
    /// `allocated` are its running figures, each within ±10¹². A new process
    /// starting over begins a new run: a figure below half the run's highest, or
    /// a process's first call ([`process_first_call`]) that cannot be the run's
    /// next receipt (see [`continues`]).
    ///
    /// The increment is split by UTC day and kind exactly, and added to what the
    /// run's stretches hold exactly: when that needs more digits than a `Decimal`
    /// holds (an increment beyond $7.9 × 10¹⁰, less an 18-place part), the error
    /// names the increment and its span, never a split rounded.
    pub(super) fn update(
        &self,
        run: &str,
        cost: &Cost,
        classes: Vec<(UsageClass, Decimal)>,
        accrued: Decimal,
        allocated: Decimal,
    ) -> Result<Update, String> {
        let key = (run.to_owned(), cost.endpoint.clone(), cost.variant.clone());
        let end = accrued_to(cost);
        let first_call = process_first_call(cost, accrued, allocated);
        let usd_per_hour = standing_usd_per_hour(cost);
        let previous = self.runs.get(&key).filter(|run| {
            accrued >= run.accrued / Decimal::TWO && (!first_call || continues(run, accrued))
        });
        let Some(previous) = previous else {
            let run = Run {
                id: self.next_run,
                accrued,
                allocated,
                to: end,
                priced: stood_on(cost),
                carried: carried(cost),
            };
            // The process's first call on the variant: what it accrued is the
            // instances' time during the call, an increment like any other (left
            // out, the idle time of that call, instance time less its share, would
            // be missing from the day). Anything else only starts the count.
            // A settlement's instances stood for its processing, before it was
            // settled (not since its submission, hours back maybe).
            let start = match cost.accrual.as_ref().and_then(|a| a.accrued_to) {
                Some(_) => Span::from_std(cost.usage.latency)
                    .ok()
                    .and_then(|latency| end.checked_sub_signed(latency))
                    .map_or(cost.at, |from| from.max(cost.at)),
                None => cost.at,
            };
            let (pieces, allocated_usd, span) = match first_call {
                true => (
                    self.pieces(&key, (run.id, usd_per_hour), start, end, accrued, &classes)?,
                    allocated,
                    Some((start, end)),
                ),
                false => (Vec::new(), Decimal::ZERO, None),
            };
            return Ok(Update {
                key,
                run,
                classes,
                pieces,
                usd_per_hour,
                span,
                allocated_usd,
            });
        };
        // Both figures are within ±10¹² and so is the previous one: no overflow.
        let accrued_usd = (accrued - previous.accrued).max(Decimal::ZERO);
        let allocated_usd = (allocated - previous.allocated).max(Decimal::ZERO);
        let to = end.max(previous.to);
        let pieces = self.pieces(
            &key,
            (previous.id, usd_per_hour),
            previous.to,
            to,
            accrued_usd,
            &classes,
        )?;
        Ok(Update {
            run: Run {
                id: previous.id,
                accrued: accrued.max(previous.accrued),
                allocated: allocated.max(previous.allocated),
                to,
                priced: stood_on(cost).or_else(|| previous.priced.clone()),
                carried: carried(cost).or_else(|| previous.carried.clone()),
            },
            key,
            classes,
            pieces,
            usd_per_hour,
            span: Some((previous.to, to)),
            allocated_usd,
        })
    }

    /// When `cost` does not price its variant's own instances ([`own_priced`]):
    /// the standing parts the variant stood on at run `run`'s last receipt that
    /// did ([`stood_on`]), which its priced compute may have run at since.
    pub(super) fn stood_before(&self, run: &str, cost: &Cost) -> Option<&[StandingPart]> {
        if own_priced(cost) {
            return None;
        }
        let key = (run.to_owned(), cost.endpoint.clone(), cost.variant.clone());
        self.runs.get(&key)?.priced.as_deref()
    }

    /// The standing parts the accrual of `cost` stood on: its own; or where it
    /// carries none and does not price its variant's own instances
    /// ([`own_priced`]), those run `run`'s last receipt that carried any stood
    /// on ([`carried`]), which its priced compute may have run at since (a
    /// shadow of a variant on a type of unknown rate ended before `cost`'s
    /// call: the receipt's priced compute is the shadow's time until then).
    pub(super) fn standing<'a>(&'a self, run: &str, cost: &'a Cost) -> &'a [StandingPart] {
        let parts = cost.accrual.as_ref().map_or(&[][..], |a| &a.standing_parts);
        if !parts.is_empty() || own_priced(cost) {
            return parts;
        }
        let key = (run.to_owned(), cost.endpoint.clone(), cost.variant.clone());
        self.runs
            .get(&key)
            .and_then(|run| run.carried.as_deref())
            .unwrap_or(parts)
    }

    /// `usd`, accrued by run `id` of `key` from `from` to `to` at the standing
    /// rate `usd_per_hour`, split by UTC day ([`spread`]) and kind
    /// ([`shared_out`]), each part with what the run's stretch of its day and kind
    /// then holds: its last one's with it, where that one is at the same rate
    /// ([`same_rate`]), else its own alone (a stretch of its own). All exact, or
    /// an error naming the amount.
    fn pieces(
        &self,
        key: &RunKey,
        (id, usd_per_hour): (u64, Option<Decimal>),
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        usd: Decimal,
        classes: &[(UsageClass, Decimal)],
    ) -> Result<Vec<Piece>, String> {
        let (_, endpoint, variant) = key;
        let refused = || {
            format!(
                "the {usd} USD that {endpoint} accrued from {} to {}, split by UTC day and \
                 kind of instance time",
                from.to_rfc3339(),
                to.to_rfc3339()
            )
        };
        let mut pieces = Vec::new();
        for (day, class, start, end, usd) in split(from, to, usd, classes).ok_or_else(refused)? {
            // A run's increments follow one another: its last stretch of the day
            // is the one an increment at the same rate goes on.
            let last = self
                .stretches
                .get(&(day, endpoint.clone(), variant.clone(), class.clone()))
                .and_then(|stretches| stretches.iter().rev().find(|s| s.run == id))
                .filter(|s| same_rate(s.usd_per_hour, usd_per_hour));
            let held = exact_sum(last.map_or(Decimal::ZERO, |s| s.usd), usd).ok_or_else(refused)?;
            pieces.push(Piece {
                day,
                class: class.clone(),
                from: start,
                to: end,
                held,
                extends: last.is_some(),
            });
        }
        Ok(pieces)
    }

    /// Makes the change `update` worked out.
    pub(super) fn apply(&mut self, update: Update) {
        let Update {
            key,
            run,
            pieces,
            usd_per_hour,
            ..
        } = update;
        if run.id == self.next_run {
            self.next_run += 1;
        }
        let (_, endpoint, variant) = &key;
        for piece in pieces {
            let Piece {
                day,
                class,
                from,
                to,
                held,
                extends,
            } = piece;
            let stretches = self
                .stretches
                .entry((day, endpoint.clone(), variant.clone(), class))
                .or_default();
            // A run's increments follow one another: one stretch per day and
            // standing rate, holding their sum, worked out exactly by `update`.
            let last = stretches
                .iter_mut()
                .rev()
                .find(|s| s.run == run.id)
                .filter(|_| extends);
            match last {
                Some(s) => {
                    s.from = s.from.min(from);
                    s.to = s.to.max(to);
                    s.usd = held;
                    s.usd_per_hour = s.usd_per_hour.or(usd_per_hour);
                }
                None => stretches.push(Stretch {
                    run: run.id,
                    from,
                    to,
                    usd: held,
                    usd_per_hour,
                }),
            }
        }
        self.runs.insert(key, run);
    }

    /// Notes the fleet's accrual a fleet receipt carries (`accrued` and
    /// `allocated`, the fleet's running figures of the day its call ended in).
    pub(super) fn note_fleet(
        &mut self,
        cost: &Cost,
        classes: &[(UsageClass, Decimal)],
        accrued: Decimal,
        allocated: Decimal,
    ) {
        let end = accrued_to(cost);
        let Some((own, _)) = classes.first() else {
            return;
        };
        let key = (
            end.date_naive(),
            cost.endpoint.clone(),
            cost.variant.clone(),
            own.clone(),
        );
        // The day's figure is the highest any receipt carries (each is the fleet's
        // running figure), each step to it shared out as the receipt that reached
        // it was: the parts' highest figures taken one by one would mix receipts.
        let day = self.fleet_days.entry(key).or_default();
        day.note(accrued, classes);
        // The calls are the receipt's own variant's: its allocation is all theirs.
        day.allocated = day.allocated.max(allocated);
    }

    /// Instance time accrued per day, endpoint and kind of instance time: each
    /// variant's time counted once however many runs metered it (a fleet's day
    /// figure, where there is one, standing for the runs it covers). Added up
    /// exactly; the error names the sum that needs more digits than a `Decimal`
    /// holds.
    pub(super) fn by_day(
        &self,
    ) -> Result<BTreeMap<(NaiveDate, &str, &UsageClass), Decimal>, String> {
        type Variant<'a> = (NaiveDate, &'a str, Option<&'a str>, &'a UsageClass);
        let of = |day: &NaiveDate, endpoint: &str, class: &UsageClass| {
            format!("the {class} instance time {endpoint} accrued on {day}")
        };
        let mut variants: BTreeMap<Variant<'_>, Decimal> = BTreeMap::new();
        for ((day, endpoint, variant, class), stretches) in &self.stretches {
            let usd = union(stretches).ok_or_else(|| of(day, endpoint, class))?;
            variants.insert((*day, endpoint, variant.as_deref(), class), usd);
        }
        for ((day, endpoint, variant, own), fleet) in &self.fleet_days {
            for (class, accrued) in fleet.by_class().ok_or_else(|| of(day, endpoint, own))? {
                let usd = variants
                    .entry((*day, endpoint, variant.as_deref(), class))
                    .or_default();
                *usd = (*usd).max(accrued);
            }
        }
        let mut days: BTreeMap<(NaiveDate, &str, &UsageClass), Decimal> = BTreeMap::new();
        for ((day, endpoint, _, class), usd) in variants {
            let sum = days.entry((day, endpoint, class)).or_default();
            *sum = exact_sum(*sum, usd).ok_or_else(|| of(&day, endpoint, class))?;
        }
        Ok(days)
    }

    /// Compute fleets allocated per day, endpoint and kind of instance time: the
    /// highest figure of each variant's day (runs outside a fleet count theirs
    /// as increments on their receipts' cells). Added up exactly, as
    /// [`by_day`](Self::by_day).
    pub(super) fn fleet_allocated_by_day(
        &self,
    ) -> Result<BTreeMap<(NaiveDate, &str, &UsageClass), Decimal>, String> {
        let mut days: BTreeMap<(NaiveDate, &str, &UsageClass), Decimal> = BTreeMap::new();
        for ((day, endpoint, _, class), fleet) in &self.fleet_days {
            let sum = days.entry((*day, endpoint, class)).or_default();
            *sum = exact_sum(*sum, fleet.allocated).ok_or_else(|| {
                format!("the {class} instance time a fleet of {endpoint} allocated on {day}")
            })?;
        }
        Ok(days)
    }
}

/// When `cost`'s accrual runs to: what the receipt says (an async settlement's
/// accrues to when it was settled, its `at` and latency being the submission and
/// the processing), else the end of its call, `at` + latency.
fn accrued_to(cost: &Cost) -> DateTime<Utc> {
    if let Some(to) = cost.accrual.as_ref().and_then(|a| a.accrued_to) {
        return to;
    }
    let latency = Span::from_std(cost.usage.latency).unwrap_or(Span::zero());
    cost.at.checked_add_signed(latency).unwrap_or(cost.at)
}

/// Whether `cost` prices its variant's own instance time: no compute line of it
/// is unpriced (no rate of the variant's own known, a receipt's priced compute
/// is of the instances that stood before or beside it only).
pub(super) fn own_priced(cost: &Cost) -> bool {
    !cost
        .lines
        .iter()
        .any(|l| l.item == LineItem::Compute && matches!(l.price, LinePrice::Unpriced { .. }))
}

/// When `cost` prices its variant's own instances ([`own_priced`]): the
/// standing parts its accrual stood on, or without any (its own alone) its
/// instances at its last compute line's rate as the one part.
fn stood_on(cost: &Cost) -> Option<Arc<[StandingPart]>> {
    let parts = &cost.accrual.as_ref()?.standing_parts;
    if !own_priced(cost) {
        return None;
    }
    if !parts.is_empty() {
        return Some(parts.clone());
    }
    let billing @ VariantBilling::Instance { instance_count, .. } = cost.billing.as_ref()? else {
        return None;
    };
    let usd_per_instance_hour = cost.lines.iter().rev().find_map(|l| match l.price {
        LinePrice::Priced { usd_per_unit, .. } if l.item == LineItem::Compute => Some(usd_per_unit),
        _ => None,
    })?;
    let usd_per_hour = usd_per_instance_hour.checked_mul(Decimal::from(*instance_count))?;
    Some(Arc::from([StandingPart::new(
        billing.clone(),
        usd_per_hour,
    )]))
}

/// What `cost`'s accrual stood at an hour: its standing parts' rates
/// ([`carried`]) added up. `None` where they are not known (its own rate
/// unknown and nothing carried), or overflow.
fn standing_usd_per_hour(cost: &Cost) -> Option<Decimal> {
    carried(cost)?.iter().try_fold(Decimal::ZERO, |sum, part| {
        sum.checked_add(part.usd_per_hour)
    })
}

/// Whether increments at the standing rates `a` and `b` go on one stretch: the
/// same rate, or one of them not known (taken as unchanged).
fn same_rate(a: Option<Decimal>, b: Option<Decimal>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The standing parts `cost`'s accrual stood on: those it carries, or without
/// any, where it prices its variant's own instances, its own ([`stood_on`]).
/// `None` when it carries none and its own rate is unknown.
fn carried(cost: &Cost) -> Option<Arc<[StandingPart]>> {
    let parts = &cost.accrual.as_ref()?.standing_parts;
    match parts.is_empty() {
        false => Some(parts.clone()),
        true => stood_on(cost),
    }
}

/// The end of UTC day `day` (the next midnight); `None` past chrono's range.
pub(super) fn day_end(day: NaiveDate) -> Option<DateTime<Utc>> {
    Some(day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc())
}

/// `usd`, over `from` to `to`, split by UTC day ([`spread`]) and then each
/// day's part by kind of instance time with `shares` ([`shared_out`]): each part
/// with its day, kind, the time its day's part covers, and its amount. `None`
/// when a part needs more digits than a `Decimal` holds.
fn split(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    usd: Decimal,
    shares: &[(UsageClass, Decimal)],
) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    for (day, start, end, part) in spread(from, to, usd)? {
        for (class, usd) in shared_out(part, shares)? {
            parts.push((day, class, start, end, usd));
        }
    }
    Some(parts)
}

/// `usd` shared out over `classes` by their shares, to the last digit: each
/// other class's part rounded toward zero at [`SHARE_PLACES`], the receipt's own
/// class (the first) taking what rounding leaves, or the first with a share when
/// its own is 0 (nothing of it is filed, not even what rounding leaves). `None`
/// when that needs more digits than a `Decimal` holds (never for an amount
/// within $7.9 × 10¹⁰ of at most 18 places: what is left after each 18-place
/// part fits).
pub(super) fn shared_out(
    usd: Decimal,
    classes: &[(UsageClass, Decimal)],
) -> Option<Vec<(&UsageClass, Decimal)>> {
    let taker = classes
        .iter()
        .position(|(_, share)| !share.is_zero())
        .unwrap_or(0);
    let mut parts: Vec<(&UsageClass, Decimal)> = classes
        .iter()
        .map(|(class, share)| {
            let whole = 10u128.pow(share.scale());
            let part = mul_div_down(usd, share.mantissa().unsigned_abs(), whole, SHARE_PLACES)
                // Shares are ratios of at most 20 places, within 1: never.
                .unwrap_or_default();
            (
                class,
                if share.is_sign_negative() {
                    -part
                } else {
                    part
                },
            )
        })
        .collect();
    let mut left = usd;
    for (i, (_, part)) in parts.iter().enumerate() {
        if i != taker {
            left = exact_sum(left, -*part)?;
        }
    }
    parts.get_mut(taker)?.1 = left;
    Some(parts)
}

/// Whether a receipt whose figures are those of its process's first call
/// (`accrued`, its running allocation its own compute) can be `run`'s next
/// receipt all the same: only when the run was allocated nothing so far (its
/// calls' compute priced at $0), and its accrual has not fallen. A process's
/// later call has a running allocation of what the run's last receipt carried
/// and its own compute: more than its own once the run was allocated anything.
/// So a process restarted on the same ledger begins a new run however much its
/// first call accrued against the last process's figure.
fn continues(run: &Run, accrued: Decimal) -> bool {
    run.allocated.is_zero() && accrued >= run.accrued
}

/// Whether `cost` is its process's first call on its variant: the running
/// allocation is the call's own compute, and the accrual no more than its
/// instances over the call (and a minute, for calls in flight beside it). A
/// ledger that begins after its process did starts with a receipt whose figures
/// hold earlier calls: that is where counting starts.
fn process_first_call(cost: &Cost, accrued: Decimal, allocated: Decimal) -> bool {
    let Some(crate::endpoint::VariantBilling::Instance { instance_count, .. }) = &cost.billing
    else {
        return false;
    };
    let compute = cost.lines.iter().filter(|l| l.item == LineItem::Compute);
    let own: Decimal = compute.clone().filter_map(|l| l.cost_usd()).sum();
    let rate = compute.filter_map(|l| match &l.price {
        crate::billing::LinePrice::Priced { usd_per_unit, .. } => Some(*usd_per_unit),
        _ => None,
    });
    let Some(rate) = rate.max() else {
        return false;
    };
    if allocated.is_zero() || allocated != own {
        return false;
    }
    // Hours of the call and a minute. A ledger can state any instance count and
    // latency: a bound past what a decimal holds is above any accrual.
    let micros = Decimal::from(cost.usage.latency.as_micros().min(u128::from(u64::MAX)) as u64)
        + Decimal::from(60_000_000u64);
    let hours = micros / Decimal::from(3_600_000_000u64);
    Decimal::from(*instance_count)
        .checked_mul(rate)
        .and_then(|usd_per_hour| usd_per_hour.checked_mul(hours))
        .is_none_or(|bound| accrued <= bound)
}

/// `usd` accrued evenly from `from` to `to`, split at UTC midnight: each day
/// before the last gets its [`share`] of the time, rounded toward zero at
/// [`SHARE_PLACES`], and the last day what is left, so that the days add up to
/// `usd` exactly. Only the last [`SPREAD_DAYS`] days are kept. `None` when what
/// is left after a day's part needs more digits than a `Decimal` holds (an
/// amount beyond $7.9 × 10¹⁰, less an 18-place part: a `Decimal` would round it,
/// and the days would not add up to the amount); never for an amount within it.
pub(super) fn spread(from: DateTime<Utc>, to: DateTime<Utc>, usd: Decimal) -> Option<Vec<DayPart>> {
    let whole = micros(from, to);
    let earliest = to
        .date_naive()
        .checked_sub_days(chrono::Days::new(SPREAD_DAYS as u64))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(from, |t| t.and_utc());
    let mut pieces = Vec::new();
    // What is left once each part is taken, exactly: never more than `usd`.
    let (mut start, mut left) = (from, usd);
    if start < earliest && earliest < to {
        left = exact_sum(usd, -share(usd, micros(from, earliest), whole))?;
        start = earliest;
    }
    while start < to {
        let day = start.date_naive();
        let midnight = day_end(day).unwrap_or(to);
        if midnight < to {
            let share = share(usd, micros(start, midnight), whole);
            pieces.push((day, start, midnight, share));
            left = exact_sum(left, -share)?;
            start = midnight;
        } else {
            pieces.push((day, start, to, left));
            start = to;
        }
    }
    if pieces.is_empty() {
        // No time between the two receipts (or they came out of order).
        pieces.push((to.date_naive(), to, to, usd));
    }
    Some(pieces)
}

/// The places a share of an amount is kept at: a day's part of an increment,
/// a class's part of an accrual, the part of a stretch over time that replicas
/// cover together. As a processor-sharing call's instance-hours are, each is
/// rounded toward zero there, once, from the exact quotient: shares of amounts
/// of at most 18 places (a receipt's have 12) then have at most 18 and add up
/// exactly, where the quotient at `Decimal`'s 28 digits (14.18 × 3,600,000,000 ÷
/// 3,601,234,567 = 14.1751388448227121552007473, itself already rounded) made
/// sums of two of them need 30 digits, more than a `Decimal` holds.
pub(super) const SHARE_PLACES: u32 = 18;

/// `usd × part ÷ whole` for `0 < part ≤ whole` (microseconds), rounded toward
/// zero at [`SHARE_PLACES`] (fewer only for a share beyond 7.9 × 10¹⁰ USD, as
/// many as fit): at most `usd`. Exact from the 256-bit product, whatever the
/// span (up to 9.2 × 10¹⁸ µs) and the amount.
fn share(usd: Decimal, part: i64, whole: i64) -> Decimal {
    let (part, whole) = (part.unsigned_abs().into(), whole.unsigned_abs().into());
    // A part of at most 2⁶³ µs × 10¹⁸, a whole of at most 2⁶³ × 10¹⁰: within
    // 128 bits, so never `None`.
    mul_div_down(usd, part, whole, SHARE_PLACES).unwrap_or_default()
}

/// Microseconds from `from` to `to` (at least 1, so that it divides).
fn micros(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX).max(1)
}

/// What `stretches` (of one variant on one day) accrued, counting time several
/// of them cover once, at the highest of their rates: over each stretch of time
/// between their ends, each one covering it has its [`share`] of it (its amount ×
/// that time ÷ its own, rounded toward zero at [`SHARE_PLACES`]), and all but the
/// highest are taken off their sum. `None` when a sum or difference needs more
/// digits than a `Decimal` holds.
fn union(stretches: &[Stretch]) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    for s in stretches {
        total = exact_sum(total, s.usd)?;
    }
    let mut sorted: Vec<&Stretch> = stretches.iter().filter(|s| s.to > s.from).collect();
    sorted.sort_by_key(|s| s.from);
    let mut reach: Option<DateTime<Utc>> = None;
    let mut overlap = false;
    for s in &sorted {
        overlap |= reach.is_some_and(|r| s.from < r);
        reach = Some(reach.map_or(s.to, |r| r.max(s.to)));
    }
    if !overlap {
        return Some(total);
    }
    let mut bounds: Vec<DateTime<Utc>> = sorted.iter().flat_map(|s| [s.from, s.to]).collect();
    bounds.sort();
    bounds.dedup();
    let mut counted_twice = Decimal::ZERO;
    for window in bounds.windows(2) {
        let (a, b) = (window[0], window[1]);
        let parts: Vec<Decimal> = sorted
            .iter()
            .filter(|s| s.from <= a && s.to >= b)
            .map(|s| share(s.usd, micros(a, b), micros(s.from, s.to)))
            .collect();
        if parts.len() > 1 {
            let highest = parts.iter().copied().max().unwrap_or_default();
            let mut sum = Decimal::ZERO;
            for part in &parts {
                sum = exact_sum(sum, *part)?;
            }
            counted_twice = exact_sum(counted_twice, exact_sum(sum, -highest)?)?;
        }
    }
    exact_sum(total, -counted_twice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A ledger can state any instance count and latency: the first call's bound
    /// (instances × rate × hours) past what a decimal holds panicked `reconcile`.
    #[test]
    fn a_first_call_of_absurd_instances_and_latency_is_judged_without_overflow() {
        let cost: Cost = serde_json::from_value(serde_json::json!({
            "call_id": "c", "at": "2026-12-01T00:00:00Z", "endpoint": "rt",
            "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge",
                        "instance_count": u32::MAX},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": u64::MAX,
                      "bytes_in": 1, "bytes_out": 1, "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": "1", "unit": "instance_hours",
                       "price": {"status": "priced", "usd_per_unit": "1000000000000",
                                 "cost_usd": "1", "provenance": {"source": "snapshot",
                                 "sku": null, "effective_date": null, "fetched_at": null,
                                 "note": null}}}],
            "cost_usd": "1", "currency": "USD",
            "running_client_usd": "1", "running_endpoint_usd": "1"
        }))
        .unwrap();
        // 4,294,967,295 instances × 10¹² USD/h × 5.1·10⁹ h is beyond 7.9·10²⁸:
        // above any accrual, so a 1 USD accrual is the call's own.
        assert!(process_first_call(&cost, Decimal::ONE, Decimal::ONE));
        // An accrual above what its instances cost over the call and a minute is
        // not a first call: 1 instance × 1 USD/h × (1 µs + 60 s) < 1 USD.
        let mut small = cost.clone();
        small.billing = Some(crate::endpoint::VariantBilling::Instance {
            instance_type: "ml.m5.xlarge".into(),
            instance_count: 1,
        });
        small.usage.latency = std::time::Duration::from_micros(1);
        if let crate::billing::LinePrice::Priced { usd_per_unit, .. } = &mut small.lines[0].price {
            *usd_per_unit = Decimal::ONE;
        }
        assert!(!process_first_call(&small, Decimal::ONE, Decimal::ONE));
    }

    /// A call of 1 × ml.g5.xlarge at $1.408/h, begun at `at` and lasting
    /// `latency_s`, its compute line `compute` USD.
    fn g5_call(id: &str, at: &str, latency_s: u64, compute: &str) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
                        "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": latency_s * 1_000_000,
                      "bytes_in": 1, "bytes_out": 1, "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": "0", "unit": "instance_hours",
                       "price": {"status": "priced", "usd_per_unit": "1.408",
                                 "cost_usd": compute, "provenance": {"source": "snapshot",
                                 "sku": null, "effective_date": null, "fetched_at": null,
                                 "note": null}}}],
            "cost_usd": compute, "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        }))
        .unwrap()
    }

    /// Reads `receipts` (a call and its running accrued and allocated) of one
    /// ledger: the instance time accrued on 2026-12-02, and the compute
    /// allocated to the calls counted.
    fn read(receipts: &[(Cost, &str, &str)]) -> (Decimal, Decimal) {
        let class = UsageClass::instance_time("ml.g5.xlarge", false);
        let mut accruals = Accruals::default();
        let mut allocated = Decimal::ZERO;
        for (cost, accrued, running) in receipts {
            let update = accruals
                .update(
                    "ledger",
                    cost,
                    vec![(class.clone(), Decimal::ONE)],
                    accrued.parse().unwrap(),
                    running.parse().unwrap(),
                )
                .unwrap();
            allocated += update.allocated_usd;
            accruals.apply(update);
        }
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let days = accruals.by_day().unwrap();
        assert_eq!(days.len(), 1, "{days:?}");
        (days[&(day, "rt", &class)], allocated)
    }

    /// A process restarted on the same ledger is a new run from its first call,
    /// however much that call accrued against the last process's figure: its
    /// accrual counts from zero again, and the last process's counts whole.
    #[test]
    fn a_restarted_process_is_a_new_run_from_its_first_call() {
        // 1 × ml.g5.xlarge at $1.408/h: $0.000391111… a second. Process A's
        // calls: 10:00:00 for 30 s ($0.011733333333), 10:02:30 for 30 s; its
        // accrual at 10:03:00, 180 s: $0.0704; its allocation 2 × 0.011733333333.
        // Process B's, on the same ledger: 11:00:00 for 90 s, accrued and
        // allocated 90 s = $0.0352 (half A's last accrual, no less); then
        // 11:09:30 for 30 s, accrued 600 s = $0.234666666667 (1.408 ÷ 6), allocated
        // 0.0352 + 0.011733333333.
        let (accrued, allocated) = read(&[
            (
                g5_call("a1", "2026-12-02T10:00:00Z", 30, "0.011733333333"),
                "0.011733333333",
                "0.011733333333",
            ),
            (
                g5_call("a2", "2026-12-02T10:02:30Z", 30, "0.011733333333"),
                "0.0704",
                "0.023466666666",
            ),
            (
                g5_call("b1", "2026-12-02T11:00:00Z", 90, "0.0352"),
                "0.0352",
                "0.0352",
            ),
            (
                g5_call("b2", "2026-12-02T11:09:30Z", 30, "0.011733333333"),
                "0.234666666667",
                "0.046933333333",
            ),
        ]);
        // The day's instance time is each process's whole accrual: 0.0704 +
        // 0.234666666667 = 0.305066666667 (not B's last figure alone, with its
        // first 90 s taken for A's again).
        assert_eq!(accrued, "0.305066666667".parse::<Decimal>().unwrap());
        // And the calls' compute, each counted once: 3 × 0.011733333333 + 0.0352.
        assert_eq!(allocated, "0.070399999999".parse::<Decimal>().unwrap());
    }

    /// A process's second call soon after its first accrued no more than a first
    /// call could (its own time and a minute), but its running allocation holds
    /// the first call's compute too: the run goes on, its time counted once.
    #[test]
    fn a_second_call_soon_after_the_first_goes_on_with_its_run() {
        // 10:00:00 for 30 s ($0.011733333333), then 10:00:40 for 30 s: accrued
        // 70 s × 1.408 ÷ 3,600 = $0.027377777778, within the $0.0352 of its own
        // 30 s and a minute; allocated 2 × 0.011733333333.
        let (accrued, allocated) = read(&[
            (
                g5_call("a1", "2026-12-02T10:00:00Z", 30, "0.011733333333"),
                "0.011733333333",
                "0.011733333333",
            ),
            (
                g5_call("a2", "2026-12-02T10:00:40Z", 30, "0.011733333333"),
                "0.027377777778",
                "0.023466666666",
            ),
        ]);
        // The process's 70 s, once (a new run would add its first 30 s again:
        // 0.011733333333 + 0.027377777778).
        assert_eq!(accrued, "0.027377777778".parse::<Decimal>().unwrap());
        assert_eq!(allocated, "0.023466666666".parse::<Decimal>().unwrap());
    }

    /// A run allocated nothing so far (calls of no measured time) can go on with
    /// a receipt whose running allocation is its own compute: that is the
    /// process's later call, not a new process, while its accrual has not fallen.
    #[test]
    fn a_call_after_calls_allocated_nothing_goes_on_with_its_run() {
        // 10:00:00 and 10:00:10, each of no time: accrued 0, then 10 s =
        // $0.003911111111, allocated nothing. Then 10:00:20 for 30 s: accrued
        // 50 s = $0.019555555556 (within its own 30 s and a minute, $0.0352),
        // allocated its own $0.011733333333.
        let (accrued, allocated) = read(&[
            (g5_call("c1", "2026-12-02T10:00:00Z", 0, "0"), "0", "0"),
            (
                g5_call("c2", "2026-12-02T10:00:10Z", 0, "0"),
                "0.003911111111",
                "0",
            ),
            (
                g5_call("c3", "2026-12-02T10:00:20Z", 30, "0.011733333333"),
                "0.019555555556",
                "0.011733333333",
            ),
        ]);
        // Counted from the first receipt read: 0.019555555556 in all (a new run
        // at the third would add the first 10 s again: + 0.003911111111).
        assert_eq!(accrued, "0.019555555556".parse::<Decimal>().unwrap());
        assert_eq!(allocated, "0.011733333333".parse::<Decimal>().unwrap());
    }

    /// Replicas' overlapping time is counted once at the rate each ledger
    /// accrued at over that time, not at its day's average: a ledger whose
    /// accrual rate changed within the day (a scale-out) keeps a stretch per rate.
    #[test]
    fn replicas_overlap_after_a_scale_out_is_counted_once_at_its_rate() {
        // `rt` stands on 1 × ml.g5.xlarge ($1.408/h) until 12:00, then on 4 after
        // autoscaling. AWS bills 12 h × 1 + 12 h × 4 = 60 instance-hours × 1.408 =
        // $84.48 on 12-02. Ledger a meters all day: counting starts at 00:00
        // (accrued 100); at 12:00 + 12 h × 1.408 = 16.896 → 116.896; at 24:00, on 4
        // instances, + 12 h × 4 × 1.408 = 67.584 → 184.48. Ledger b, a replica
        // started at 12:00: its first call (accrued 0), then at 24:00 + 67.584.
        // The same instances, counted once: 16.896 (00:00 to 12:00, a alone) +
        // 67.584 (12:00 to 24:00, both at 5.632/h) = 84.48. Averaged over a's day
        // (84.48 ÷ 24 h), a's part of 12:00 to 24:00 would be 42.24, b's 67.584
        // the higher: 84.48 + 67.584 − 42.24 = 109.824, 25.344 too much.
        let class = UsageClass::instance_time("ml.g5.xlarge", false);
        // A receipt as the meter writes it: on `count` instances, its accrual
        // `accrued` (the variant alone: no standing parts), nothing allocated.
        let receipt = |id: &str, at: &str, count: u32, accrued: &str| {
            let mut cost = g5_call(id, at, 0, "0");
            cost.billing = Some(VariantBilling::Instance {
                instance_type: "ml.g5.xlarge".into(),
                instance_count: count,
            });
            cost.accrual = Some(
                serde_json::from_value(serde_json::json!({
                    "accrued_usd": accrued, "allocated_usd": "0", "utilisation": null}))
                .unwrap(),
            );
            cost
        };
        let mut accruals = Accruals::default();
        for (run, cost) in [
            ("a", receipt("a1", "2026-12-02T00:00:00Z", 1, "100")),
            ("a", receipt("a2", "2026-12-02T12:00:00Z", 1, "116.896")),
            ("a", receipt("a3", "2026-12-03T00:00:00Z", 4, "184.48")),
            ("b", receipt("b1", "2026-12-02T12:00:00Z", 4, "0")),
            ("b", receipt("b2", "2026-12-03T00:00:00Z", 4, "67.584")),
        ] {
            let accrued = cost.accrual.as_ref().unwrap().accrued_usd;
            let update = accruals
                .update(
                    run,
                    &cost,
                    vec![(class.clone(), Decimal::ONE)],
                    accrued,
                    Decimal::ZERO,
                )
                .unwrap();
            accruals.apply(update);
        }
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let days = accruals.by_day().unwrap();
        assert_eq!(
            days[&(day, "rt", &class)],
            "84.48".parse::<Decimal>().unwrap(),
            "{days:?}"
        );
    }

    #[test]
    fn a_days_part_of_an_increment_is_rounded_toward_zero_at_18_places() {
        // 14.18 USD from 23:00 to 00:00:01.234567: 3,601,234,567 µs, of which
        // 3,600,000,000 before midnight. 14.18 × 3,600,000,000 ÷ 3,601,234,567 =
        // 14.17513884482271215520…, toward zero at 18 places 14.175138844822712155
        // on 11-28; 11-29 the rest, 14.18 − 14.175138844822712155 =
        // 0.004861155177287845.
        let pieces = spread(
            at("2026-11-28T23:00:00Z"),
            at("2026-11-29T00:00:01.234567Z"),
            Decimal::new(1418, 2),
        )
        .unwrap();
        let usd: Vec<Decimal> = pieces.iter().map(|p| p.3).collect();
        assert_eq!(
            usd,
            [
                Decimal::from_i128_with_scale(14_175_138_844_822_712_155, 18),
                Decimal::from_i128_with_scale(4_861_155_177_287_845, 18),
            ]
        );
    }

    #[test]
    fn an_increment_over_millennia_is_spread_without_overflow_and_exactly() {
        // 10¹² USD over 1970 to 9999: ≈ 2.5 × 10¹⁷ µs, whose product with the
        // amount (2.5 × 10²⁹) is beyond Decimal's 7.9 × 10²⁸. Only the last 400
        // days are kept; what they get plus what is dropped is the amount.
        let usd = Decimal::from(1_000_000_000_000u64);
        let pieces = spread(at("1970-01-01T00:00:00Z"), at("9999-12-31T00:00:00Z"), usd).unwrap();
        assert_eq!(pieces.len(), 400);
        let kept: Decimal = pieces.iter().map(|p| p.3).sum();
        assert!(kept > Decimal::ZERO && kept < usd, "{kept}");
        // Each whole day of the 400 is the same share: 86,400 s of the span.
        assert_eq!(pieces[1].3, pieces[2].3);
    }
}
