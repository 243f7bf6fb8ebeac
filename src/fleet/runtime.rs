//! One process's part in the fleet: increments kept in memory, the flush that
//! writes them, the leases that fleet budgets spend from.

use super::keys::{self, from_pico, millis, to_pico};
use super::table::{
    self, Added, Claimed, Delta, Failure, FleetAccrual, LeaseEnd, LeaseHeld, LeaseUse, Leased,
    Load, StandingStretch, Table, TableError,
};
use super::{FleetConfig, FleetStats, SETTLEMENT_CLAIM, WhenUnavailable};
use crate::FastMap;
use crate::billing::{AccrualCharge, AccrualSource, div_round_dp, round_cost};
use crate::budget::{
    ALERT_THRESHOLDS, BeyondReceipt, Budget, BudgetAlert, BudgetMode, BudgetPeriod, BudgetScope,
    Budgets, LeaseWant, Refusal, Renewal,
};
use crate::totals::{RateFrom, StandingTerm, Totals, standing_stretch};
use crate::{Error, Result};
use aws_smithy_async::time::SharedTimeSource;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// How long items are kept after their period ends (the TTL).
const KEEP_AFTER_PERIOD: i64 = 35 * 24 * 3600;

/// Flushes an item's write may fail before its budgets' alerts are raised from
/// this process's own spend (at once when the table refuses the write: missing,
/// access denied).
const LOCAL_ALERTS_AFTER: u32 = 3;

/// Leases a call short of room takes at most before it is refused (each after
/// it tried its reservation again and found others took the room).
const LEASE_ROUNDS: usize = 3;

/// Flushes a lease request waits for at most to write the spend recorded
/// before it under a lease that lapsed here (see [`Fleet::write_before_lease`]):
/// one retries the write in flight, the next writes what was recorded while it
/// was (a flush sends an item's newer increments once its earlier write is
/// acknowledged).
const FLUSHES_BEFORE_LEASE: usize = 3;

/// What is left to write before a lease request, after a flush (see
/// [`Fleet::write_before_lease`]).
enum Owed {
    /// Nothing: the lease may be asked for. `renewed`: a lease that had lapsed
    /// here was renewed.
    Nothing { renewed: bool },
    /// The flush wrote the item, but not all that is owed yet.
    Written,
    /// The flush's write of the item failed.
    Failed,
}

/// `wait` after `now`, or as far ahead as the clock goes (a wait too long for
/// it is no limit).
fn deadline_after(now: tokio::time::Instant, wait: Duration) -> tokio::time::Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Held by the flush loop: when the loop ends, or is dropped with its runtime,
/// the fleet knows it is not running any more (the next call starts it again).
struct Running(Weak<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.started.store(false, Ordering::SeqCst);
        }
    }
}

/// A client's fleet: cheap to clone.
#[derive(Clone)]
pub(crate) struct Fleet {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("table", &self.shared.table.name)
            .field("process", &self.shared.process)
            .finish_non_exhaustive()
    }
}

struct Shared {
    table: Table,
    /// This process's name in the table (`seq:<process>`, lease keys).
    process: String,
    config: FleetConfig,
    budgets: Arc<Budgets>,
    /// The client's running totals: the endpoints' sharing clocks publish their
    /// load to the fleet and take the other processes' from it.
    totals: Totals,
    /// The client's budgets and their partition keys, in the client's order.
    specs: Vec<(Budget, String)>,
    time: SharedTimeSource,
    state: Mutex<State>,
    /// One flush at a time (the loop's and shutdown's).
    flushing: tokio::sync::Mutex<()>,
    /// One lease request at a time: calls short of lease wait for the one in flight.
    leasing: tokio::sync::Mutex<()>,
    /// The flush loop is running (set when it is started, cleared when it ends
    /// or is dropped with its runtime).
    started: AtomicBool,
    closed: AtomicBool,
    stop: tokio::sync::Notify,
    requests: AtomicU64,
    flushes: AtomicU64,
    /// The failures warned of, by kind and what was being done: once each
    /// until that operation goes through again.
    warned: Mutex<HashSet<(Failure, &'static str)>>,
    /// Settlements marked in the table by this process (their marks' numbers).
    settlements: AtomicU64,
    /// A failed settlement mark has been warned about.
    settlement_warned: AtomicBool,
    /// Set once shutdown's last flush is over: spend recorded after it is never
    /// written.
    shut_down: AtomicBool,
    /// Whether spend recorded after shutdown has been warned of (once).
    late_warned: AtomicBool,
    /// The last flush's last failed write of increments (its kind, and what it
    /// says), for shutdown to say why and to know whether the table answered.
    last_failure: Mutex<Option<(Failure, String)>>,
}

/// Which leases [`Fleet::give_back`] gives back.
#[derive(Debug, Clone, Copy)]
enum GiveBack {
    /// Every lease: at shutdown, once its last flush wrote everything.
    All,
    /// Those whose item's writes are all acknowledged (its use written): at
    /// shutdown, while other items' writes fail.
    Written,
    /// Those of periods ended by then, once their item's writes are all
    /// acknowledged: after a flush.
    EndedBy(DateTime<Utc>),
}

/// What a flush's writes of increments are, in its warnings.
const WRITING: &str = "writing increments";
/// A call's lease, in its warnings.
const LEASING: &str = "leasing budget";
/// An alert's mark, in its warnings.
const MARKING: &str = "marking an alert";
/// The second write of an item that held a later accrual start than a write's
/// own, in its warnings.
const LOWERING: &str = "lowering an accrual's start";

/// What a receipt's call adds to its variant's fleet accrual.
#[derive(Debug, Clone)]
pub(crate) struct AccrualInput {
    /// What the variant's standing capacity costs per hour now.
    pub usd_per_hour: Decimal,
    /// Where that rate came from: the one source of the fleet's `accrued_usd`.
    pub capacity_from: RateFrom,
    /// The later rates its price source's answer announced (terms AWS
    /// published ahead), oldest first: each in force from its date, whether or
    /// not a rate is looked up again by then ([`no_terms`](crate::totals::no_terms)
    /// when none).
    pub terms: Arc<[StandingTerm]>,
    /// When the call started.
    pub started_at: SystemTime,
    /// The compute the receipt allocated to the call.
    pub allocated_usd: Option<Decimal>,
}

/// The fleet's accrual of a variant, for a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FleetAccrualFigures {
    pub accrued_usd: Decimal,
    pub allocated_usd: Decimal,
    pub utilisation: Option<Decimal>,
    /// Where the rates of `accrued_usd` came from: each source of a stretch
    /// summed, once (with the latest stretch's note), in the order first used.
    pub capacity_from: Vec<RateFrom>,
}

impl FleetAccrualFigures {
    /// Where the receipt's accrual was priced from: its capacity (the fleet's
    /// day, each stretch at its rate) from the sources of the rates summed,
    /// not from every source this process's own accrual used; its storage
    /// (this process's view) from this process's sources. `process` is this
    /// process's accrual's list, handed back as it is when it says just that
    /// (a call allocates none then).
    pub(crate) fn priced_from(
        &self,
        process: Option<&Arc<[AccrualSource]>>,
    ) -> Arc<[AccrualSource]> {
        let capacity: Vec<AccrualSource> = self
            .capacity_from
            .iter()
            .map(|(origin, note)| {
                AccrualSource::new(AccrualCharge::Capacity, *origin, note.clone())
            })
            .collect();
        let sources = process.map_or(&[][..], |p| &p[..]);
        if let Some(process) = process
            && sources
                .iter()
                .filter(|s| s.charge == AccrualCharge::Capacity)
                .eq(&capacity)
        {
            return process.clone();
        }
        capacity
            .into_iter()
            .chain(
                sources
                    .iter()
                    .filter(|s| s.charge != AccrualCharge::Capacity)
                    .cloned(),
            )
            .collect()
    }
}

/// What [`Fleet::record`] hands back for the receipt.
#[derive(Debug, Default)]
pub(crate) struct FleetRecorded {
    /// The fleet's spend today as far as this process knows, this call included
    /// (`None`: the cost does not fit in pico-USD integers).
    pub running_usd: Option<Decimal>,
    /// The variant's fleet accrual today (instance variants with a known rate).
    pub accrual: Option<FleetAccrualFigures>,
}

/// Whether `spent` pico-USD is `percent` % of `limit` or more (figures from the
/// table, bounded on read; the products saturate).
fn passes(spent: i128, limit: i128, percent: u32) -> bool {
    spent.saturating_mul(100) >= limit.saturating_mul(i128::from(percent))
}

/// A lease with less than this left (ms) is renewed by the flush, whether or
/// not the flush has anything else to write to its item: half of `ttl`, and
/// never less than three flush intervals.
///
/// This process stops spending a lease one interval before its written end
/// ([`Fleet::local_until`]), and the flushes come one interval apart. A flush
/// at `t` that leaves a lease alone finds at least `3 × flush` left, so the
/// lease holds here until at least `t + 2 × flush`: the next flush (due at
/// `t + flush`) has a whole interval more to be sent late (one that overran
/// delays it), and to have its renewal answered, before the lease would lapse
/// here while the table still holds it for this process. A flush at `t` that
/// renews it leaves it held here until `t + ttl − flush`: the next flush has
/// `ttl − 2 × flush` to spare, less than an interval when `ttl` is under three
/// (the configuration keeps `ttl` above two intervals, so some time is left).
/// So a flush may be up to an interval late, or up to `ttl − 2 × flush` when
/// that is less. Half of `ttl` alone was not enough when `ttl` is under four
/// intervals (10 s flushes, a 25 s lease: left alone at 10 s with 15 s left, it
/// lapsed here from 15 s to the next renewal at 20 s); now such a lease is
/// renewed at every flush, each with 25 − 2 × 10 = 5 s to spare.
fn renew_within(ttl: Duration, flush: Duration) -> i64 {
    (millis(ttl) / 2).max(millis(flush.saturating_mul(3)))
}

/// The partition key of the whole fleet's items.
const FLEET_PK: &str = "scope#fleet";

/// The current period of some kind, and its sort key (made when it begins).
#[derive(Default)]
struct PeriodKey {
    start: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
    sk: String,
}

impl PeriodKey {
    /// Moves to the `period` containing `now`, if it is a later one: periods only
    /// move forward, as a process's own budgets do (a clock stepped back across a
    /// period's start counts in the current period, not in the one before).
    fn roll(&mut self, period: BudgetPeriod, now: DateTime<Utc>) {
        let start = period.start_of(now);
        if self.start.is_none_or(|current| start > current) {
            *self = PeriodKey {
                start: Some(start),
                end: period.end_of(start),
                sk: keys::period_sk(period, start),
            };
        }
    }
}

/// Adds a call's `pico` (and its `variant`'s share) to the item (`pk`, `sk`),
/// made if it is new; `calls` is 1, or 0 for a receipt that is not another call
/// (an async invocation's settlement).
fn add<'a>(
    items: &'a mut FastMap<String, FastMap<String, Item>>,
    pk: &str,
    sk: &str,
    end: DateTime<Utc>,
    (pico, calls): (i128, u64),
    variant: Option<&str>,
) -> &'a mut Item {
    let item = items
        .entry_ref(pk)
        .or_default()
        .entry_ref(sk)
        .or_insert_with(|| Item::spend(end));
    item.pending.spent = item.pending.spent.saturating_add(pico);
    item.pending.calls = item.pending.calls.saturating_add(calls);
    if let Some(variant) = variant {
        match item.pending.variants.get_mut(variant) {
            Some(share) => *share = share.saturating_add(pico),
            None => {
                item.pending.variants.insert(variant.to_owned(), pico);
            }
        }
        if calls > 0 {
            match item.pending.variant_calls.get_mut(variant) {
                Some(count) => *count = count.saturating_add(calls),
                None => {
                    item.pending.variant_calls.insert(variant.to_owned(), calls);
                }
            }
        }
    }
    item
}

#[derive(Default)]
struct State {
    /// Today (UTC), for the fleet's and the endpoints' items.
    today: PeriodKey,
    /// The current period of each budget, in the client's order.
    budget_periods: Vec<PeriodKey>,
    seq: u64,
    /// Items by partition key, then sort key.
    items: FastMap<String, FastMap<String, Item>>,
    /// Endpoint partition keys, made once per endpoint.
    endpoint_pks: FastMap<String, String>,
    /// Sort keys of the periods in use, made once per period.
    period_sks: Vec<(BudgetPeriod, DateTime<Utc>, String)>,
    /// Alert thresholds passed, per (budget, period start): bit i for the i-th.
    alerted: FastMap<(usize, DateTime<Utc>), u32>,
    /// Thresholds passed whose marks could not be written yet.
    unmarked: Vec<PendingMark>,
    /// The load last published per endpoint (thousandths of a call in flight),
    /// when not 0: an endpoint not here last published 0, or nothing.
    published: FastMap<String, u64>,
    /// Per endpoint, per variant, its item's calls to the variant as the last
    /// write returned them (with the item's sort key): the fleet's calls between
    /// two writes give this process's share of them, for amortised allocation.
    fleet_calls: FastMap<String, FastMap<String, (String, u64)>>,
    /// Per endpoint, per variant, the standing rate this process's profile gives
    /// now.
    standing_seen: FastMap<String, FastMap<String, SeenRate>>,
}

/// A variant's standing rate as this process's profile gives it.
#[derive(Debug, Clone)]
pub(crate) struct SeenRate {
    stretch: StandingStretch,
    /// Since when this process applies it (epoch ms).
    since_ms: i64,
    /// When the profile giving it was last described (epoch ms); `None` for a
    /// profile set by hand. A stretch the table holds from a later time was
    /// seen by another process after this one looked: the table's word is newer.
    described_ms: Option<i64>,
    /// The later rates its price source's answer announced, oldest first: each
    /// in force from its date (those dated by the last look-up are folded into
    /// `stretch` then).
    terms: Arc<[StandingTerm]>,
}

impl SeenRate {
    /// Makes the last of its terms dated by `now_ms` the rate it applies, since
    /// that term's date.
    fn fold_terms(&mut self, now_ms: i64) {
        let mut passed = 0;
        for term in self.terms.iter() {
            let Some((ms, stretch)) = term_stretch(term) else {
                break;
            };
            if ms > now_ms {
                break;
            }
            self.stretch = StandingStretch {
                term: false,
                ..stretch
            };
            self.since_ms = ms;
            passed += 1;
        }
        if passed > 0 {
            self.terms = self.terms[passed..].into();
        }
    }
}

/// The stretch a term puts in force from its date (epoch ms), marked as a
/// term's; `None` for a rate beyond pico-USD integers (no later term is taken
/// then, as after a term whose rate is not known).
fn term_stretch(term: &StandingTerm) -> Option<(i64, StandingStretch)> {
    Some((
        epoch_ms(term.on),
        StandingStretch {
            pico_per_hour: to_pico(term.usd_per_hour_all_instances)?,
            from: term.capacity_from.clone(),
            term: true,
        },
    ))
}

/// The stretch a rate (`rate`, then the terms it announced) has in force at
/// `ms`: its last term dated by then, else `rate` itself; not marked as a
/// term's.
fn in_force(rate: &StandingStretch, terms: &[StandingTerm], ms: i64) -> StandingStretch {
    let mut then = None;
    for term in terms {
        match term_stretch(term) {
            Some((on, stretch)) if on <= ms => then = Some(stretch),
            _ => break,
        }
    }
    match then {
        Some(stretch) => StandingStretch {
            term: false,
            ..stretch
        },
        None => rate.clone(),
    }
}

impl State {
    fn period_sk(&mut self, period: BudgetPeriod, start: DateTime<Utc>) -> String {
        if let Some((_, _, sk)) = self
            .period_sks
            .iter()
            .find(|(p, s, _)| *p == period && *s == start)
        {
            return sk.clone();
        }
        if self.period_sks.len() > 16 {
            self.period_sks.clear();
        }
        let sk = keys::period_sk(period, start);
        self.period_sks.push((period, start, sk.clone()));
        sk
    }

    /// The partition key of `endpoint`'s items, made once per endpoint.
    fn endpoint_pk(&mut self, endpoint: &str) -> String {
        if let Some(pk) = self.endpoint_pks.get(endpoint) {
            return pk.clone();
        }
        let pk = keys::scope_pk(&BudgetScope::endpoint(endpoint));
        self.endpoint_pks.insert(endpoint.to_owned(), pk.clone());
        pk
    }

    fn item(&mut self, pk: &str, sk: &str, make: impl FnOnce() -> Item) -> &mut Item {
        self.items
            .entry_ref(pk)
            .or_default()
            .entry_ref(sk)
            .or_insert_with(make)
    }

    /// `endpoint`'s item of the day of `now`, when this process has called
    /// `variant` in it (and so noted its rate there).
    fn variant_item_today(
        &mut self,
        endpoint: &str,
        variant: &str,
        now: SystemTime,
    ) -> Option<&mut Item> {
        let pk = self.endpoint_pk(endpoint);
        let sk = self.period_sk(BudgetPeriod::Day, BudgetPeriod::Day.start_of(now.into()));
        self.items
            .get_mut(pk.as_str())
            .and_then(|m| m.get_mut(sk.as_str()))
            .filter(|item| item.first_call_ns.contains_key(variant))
    }

    /// The item of `budget` (kept under `pk`) in its period starting at `start`,
    /// made if it is new.
    fn budget_item(&mut self, budget: &Budget, pk: &str, start: DateTime<Utc>) -> &mut Item {
        let sk = self.period_sk(budget.period(), start);
        let end = budget.period().end_of(start);
        self.item(pk, &sk, || Item::spend(end))
    }
}

/// This process's lease of the budget kept in a spend item.
struct Lease {
    budget: usize,
    period_start: DateTime<Utc>,
    granted: i128,
    /// Use written and acknowledged.
    used_written: i128,
    /// `lease_until:<process>` as last written.
    until_ms: i64,
    /// Granted anew after the held lease was reclaimed, a take-back written
    /// and not acknowledged then: its sequence number and what it took back
    /// (pico-USD, above 0), counted off what was leased (the table may have
    /// applied it before this lease). Given back if its write is applied now
    /// as this lease's use.
    taken_back: Option<(u64, i128)>,
}

/// A threshold passed whose mark in the table is not written yet: kept from
/// when a write's answer passes it until a mark is answered (throttled, no
/// answer: tried again at each flush and at shutdown), its alert raised then.
/// Kept while it is tried, so a try cut short (shutdown's time running out, a
/// flush dropped) loses nothing.
#[derive(Clone)]
struct PendingMark {
    pk: String,
    sk: String,
    /// The budget's place in the client's order.
    budget: usize,
    /// The start of the period the threshold was passed in.
    start: DateTime<Utc>,
    /// The threshold's place in [`ALERT_THRESHOLDS`].
    bit: usize,
    /// The budget's spend (pico-USD) read back when the threshold was passed.
    spent: i128,
}

impl PendingMark {
    fn is_of(&self, other: &PendingMark) -> bool {
        self.budget == other.budget && self.start == other.start && self.bit == other.bit
    }

    fn alert(&self, budget: &Budget, percent: u32, process_local: bool) -> BudgetAlert {
        BudgetAlert {
            scope: budget.scope().clone(),
            period: budget.period(),
            period_start: self.start,
            threshold_percent: percent,
            limit_usd: budget.limit_usd(),
            spent_usd: from_pico(self.spent),
            process_local,
        }
    }
}

/// A scope's spend in one period, as this process sees it.
struct Item {
    /// Its spend as the table last returned it.
    known: i128,
    /// When the item's period ends.
    period_end: DateTime<Utc>,
    pending: Delta,
    /// Written, not yet acknowledged: sent again as it is (same sequence number).
    unacked: Option<(u64, Delta)>,
    /// What this process's acknowledged writes of the item added to it, spend
    /// and charges beyond the receipts, pico-USD: with no lease of the item
    /// held, the table counts at least this much for the process (each
    /// lease's use when it ended, and what was written without one).
    written: i128,
    /// The sequence number of the item's last write acknowledged (0: none yet).
    acked_seq: u64,
    /// This process's lease, when the item is a fleet budget's and one is held.
    lease: Option<Lease>,
    /// A lease request for the item went out and its answer never came: the table
    /// may hold a lease of this process that this process does not know of. The
    /// next lease granted finds it; else it is given back with the others.
    lease_unanswered: bool,
    /// While `lease_unanswered` is set: the least use of its held lease this
    /// process had acknowledged as written since a request went unanswered
    /// (pico-USD; 0 when it held none). Above 0, a new lease that request
    /// made (its use starting at 0) never holds the use this process
    /// counts for its held lease, so a table holding that use holds the
    /// held lease.
    unanswered_low: i128,
    /// While `lease_unanswered` is set: the least of `written` since a request
    /// went unanswered (pico-USD). The table counts at least this much for
    /// this process apart from a lease such a request made: what its writes
    /// added before it was applied.
    unanswered_written: i128,
    /// Flushes in a row whose write of the item was not acknowledged.
    failed_flushes: u32,
    /// Per variant, the fleet's accrual as the table last returned it (endpoint items).
    accrual: BTreeMap<String, FleetAccrual>,
    /// Per variant, this process's earliest call in the item's period (epoch ns:
    /// the table keeps ms, the accrual counts every nanosecond).
    first_call_ns: BTreeMap<String, i128>,
    /// This process's first-call rates and the terms it noted, by variant and
    /// epoch ms, not yet compared with the stretches the table holds (its
    /// answer to the next write): a first call's rate, or a change its profile
    /// saw after, is written only where it is news to the table
    /// ([`Item::is_news`]), so that the many short runs of a day (`sagemeter
    /// invoke` from cron) do not each add one to the item, nor every process one
    /// per scaling change; a term only where it replaces the stretch the table
    /// holds before its date ([`term_replaces`]).
    unconfirmed: BTreeMap<(String, i64), Unconfirmed>,
    /// Per variant, until when (epoch ms) this process has noted the terms its
    /// rates announced in the item ([`Item::note_terms`]): from its first call
    /// to the variant in the period on, each term once.
    terms_noted_ms: BTreeMap<String, i64>,
    /// The table's item may hold attributes of this process (`seq:`,
    /// `lease_seq:`, `inflight:`, ...): removed at shutdown.
    marked: bool,
}

/// A stretch this process would write, until compared with the table's.
#[derive(Debug, Clone)]
enum Unconfirmed {
    /// Its rate at its first call to the variant in the period, with when the
    /// profile that gave it was described (see [`SeenRate`]).
    FirstCall(StandingStretch, Option<i64>),
    /// A change of the rate its profile saw after its first call (or while
    /// that call ran), with when the profile that gave it was described.
    Change(StandingStretch, Option<i64>),
    /// A term its rate announced, from the term's date, with the hourly cost
    /// (pico-USD) this process applied just before that date.
    Term(StandingStretch, i128),
}

/// Whether a term from `ms`, this process applying `before` (pico-USD an hour)
/// just before it, replaces what the table holds: `held`, the last stretch it
/// holds from `ms` or earlier (with when it began), is from before `ms` and at
/// `before`. Not when it is at another rate (the instance count this process's
/// profile gives is out of date: another process recorded a scale-out, and
/// prices its term from its own count), nor when the table holds none before
/// the term (the day's accrual begins after it) or one from `ms` already (its
/// first writer keeps it).
fn term_replaces(held: Option<(i64, &StandingStretch)>, ms: i64, before: i128) -> bool {
    held.is_some_and(|(since, then)| since < ms && then.pico_per_hour == before)
}

/// The greatest common divisor of two positive integers.
fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What `delta` takes back: its spend and charge beyond the receipts below
/// $0 (pico-USD, at most 0).
fn below_zero(delta: &Delta) -> i128 {
    delta.spent.min(0).saturating_add(delta.unpriced.min(0))
}

impl Item {
    /// Marks a lease request of the item as out, its answer not read: see
    /// `lease_unanswered` and `unanswered_low`.
    fn mark_unanswered(&mut self) {
        let used = self.lease.as_ref().map_or(0, |lease| lease.used_written);
        (self.unanswered_low, self.unanswered_written) = match self.lease_unanswered {
            true => (
                self.unanswered_low.min(used),
                self.unanswered_written.min(self.written),
            ),
            false => (used, self.written),
        };
        self.lease_unanswered = true;
    }

    /// `written` less what the item holds to write below $0 (charges taken
    /// back, pending or written and not acknowledged): the table may have
    /// applied them already, so it counts for this process no more than
    /// that.
    fn less_taken_back(&self, written: i128) -> i128 {
        written
            .saturating_add(below_zero(&self.pending))
            .saturating_add(self.unacked_taken_back().map_or(0, |(_, d)| -d))
    }

    /// The write not acknowledged, when it takes back (is below $0): its
    /// sequence number and what it takes back (pico-USD, above 0).
    fn unacked_taken_back(&self) -> Option<(u64, i128)> {
        let (seq, delta) = self.unacked.as_ref()?;
        let taken = below_zero(delta).saturating_neg();
        (taken > 0).then_some((*seq, taken))
    }

    fn spend(period_end: DateTime<Utc>) -> Item {
        Item {
            known: 0,
            period_end,
            pending: Delta::default(),
            unacked: None,
            written: 0,
            acked_seq: 0,
            lease: None,
            lease_unanswered: false,
            unanswered_low: 0,
            unanswered_written: 0,
            failed_flushes: 0,
            accrual: BTreeMap::new(),
            first_call_ns: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            terms_noted_ms: BTreeMap::new(),
            marked: false,
        }
    }

    /// Adds a call's allocated compute to `variant`'s fleet accrual, and returns
    /// that accrual: the instances' cost since the fleet's first call to the
    /// variant in the item's period, against every process's allocated compute.
    ///
    /// `seen` is the variant's standing rate as this process's profile gives it
    /// now, and since when (epoch ms). The instances' cost is summed over the
    /// standing rates the item holds (each process notes its first call's rate,
    /// every change its profile sees after it and each term its rates
    /// announced, from the term's date, once that date is past), each from when
    /// it took effect until the next; an item holding none (written by a version
    /// before them) is priced at this call's rate the whole time.
    fn accrue(
        &mut self,
        variant: &str,
        input: AccrualInput,
        now: DateTime<Utc>,
        period_start: Option<DateTime<Utc>>,
        seen: Option<&SeenRate>,
    ) -> FleetAccrualFigures {
        let started_ns = epoch_ns(input.started_at);
        let allocated = in_period(
            input.allocated_usd.and_then(to_pico).unwrap_or(0),
            started_ns,
            datetime_ns(now),
            period_start.map(datetime_ns),
        );
        let started_ms = epoch_ms(input.started_at);
        let now_ms = now.timestamp_millis();
        let rate = to_pico(input.usd_per_hour).map(|pico_per_hour| StandingStretch {
            pico_per_hour,
            from: input.capacity_from.clone(),
            term: false,
        });
        if !self.first_call_ns.contains_key(variant)
            && let Some(rate) = &rate
        {
            // This process's first call to the variant in the period: the rate
            // in force at its start, and a change its profile saw while it ran.
            // Later changes are noted as its profile sees them (`set_standing`);
            // the terms its rates announced, once their dates are past (below).
            let own = in_force(rate, &input.terms, started_ms);
            let described_ms = seen.and_then(|seen| seen.described_ms);
            if let Some(seen) = seen
                && seen.since_ms > started_ms
            {
                let then = in_force(rate, &input.terms, seen.since_ms);
                if (seen.stretch.pico_per_hour, &seen.stretch.from)
                    != (then.pico_per_hour, &then.from)
                {
                    self.unconfirmed.insert(
                        (variant.to_owned(), seen.since_ms),
                        Unconfirmed::Change(seen.stretch.clone(), described_ms),
                    );
                }
            }
            // The terms of the rate the call started at dated in the period by
            // now, those before the call's start too: a short run before the
            // term's date may have left the rate it replaces in the item.
            let period_from = period_start.map_or(i64::MIN, |start| start.timestamp_millis() - 1);
            self.terms_noted_ms.insert(variant.to_owned(), started_ms);
            self.note_terms(
                variant,
                rate,
                &input.terms,
                period_from.min(started_ms),
                now_ms,
            );
            self.unconfirmed.insert(
                (variant.to_owned(), started_ms),
                Unconfirmed::FirstCall(own, described_ms),
            );
        }
        // The terms of the rate this process applies now (its profile's, else
        // this call's), dated since it last noted them: nothing to do for a
        // rate that announced none, as most.
        let view = match seen {
            Some(seen) => Some((&seen.stretch, &seen.terms)),
            None => rate.as_ref().map(|rate| (rate, &input.terms)),
        };
        if let Some((rate, terms)) = view
            && !terms.is_empty()
            && let Some(noted) = self.terms_noted_ms.get_mut(variant)
            && *noted < now_ms
        {
            let after = std::mem::replace(noted, now_ms);
            self.note_terms(variant, rate, terms, after, now_ms);
        }
        match self.pending.allocated.get_mut(variant) {
            Some(sum) => *sum = sum.saturating_add(allocated),
            None => {
                self.pending.allocated.insert(variant.to_owned(), allocated);
            }
        }
        // A call from before the day's start accrues from it: written so, it
        // lowers no later start another process wrote in the day.
        let first_ms =
            period_start.map_or(started_ms, |start| started_ms.max(start.timestamp_millis()));
        match self.pending.first_call_ms.get_mut(variant) {
            Some(first) => *first = (*first).min(first_ms),
            None => {
                self.pending
                    .first_call_ms
                    .insert(variant.to_owned(), first_ms);
            }
        }
        match self.first_call_ns.get_mut(variant) {
            Some(first) => *first = (*first).min(started_ns),
            None => {
                self.first_call_ns.insert(variant.to_owned(), started_ns);
            }
        }
        let known = self.accrual.get(variant);
        let local_first = self
            .first_call_ns
            .get(variant)
            .copied()
            .unwrap_or(started_ns);
        // The table keeps the fleet's first call to the millisecond: in the
        // millisecond of this process's first call (most often its own, written
        // back) or after it, this process's own start, to the nanosecond, is the
        // earlier (or the same).
        let from_ns = match known.and_then(|k| k.from_ms) {
            Some(fleet_ms) if i128::from(fleet_ms) < local_first.div_euclid(NANOS_PER_MS) => {
                i128::from(fleet_ms).saturating_mul(NANOS_PER_MS)
            }
            _ => local_first,
        };
        let from_ns = from_ns.max(period_start.map_or(i128::MIN, datetime_ns));
        let allocated = known
            .map_or(0, |k| k.allocated)
            .saturating_add(
                self.unacked
                    .as_ref()
                    .and_then(|(_, d)| d.allocated.get(variant))
                    .copied()
                    .unwrap_or(0),
            )
            .saturating_add(self.pending.allocated.get(variant).copied().unwrap_or(0));
        // The standing rates as the table holds them (the first writer of each
        // keeps it), with this process's own not yet acknowledged (a first
        // call's rate only where it is news to the table, then a term only
        // where it replaces the stretch before it): copied only while there
        // are some of those.
        let mut own = self
            .unacked
            .iter()
            .flat_map(|(_, d)| &d.rates)
            .chain(&self.pending.rates)
            .chain(
                self.unconfirmed
                    .iter()
                    .filter_map(|(at, unconfirmed)| match unconfirmed {
                        Unconfirmed::FirstCall(stretch, described_ms)
                            if self.is_news(&at.0, at.1, stretch, *described_ms, true) =>
                        {
                            Some((at, stretch))
                        }
                        Unconfirmed::Change(stretch, described_ms)
                            if self.is_news(&at.0, at.1, stretch, *described_ms, false) =>
                        {
                            Some((at, stretch))
                        }
                        _ => None,
                    }),
            )
            .filter(|((v, _), _)| v == variant)
            .peekable();
        let mut terms = self
            .unconfirmed
            .range((variant.to_owned(), i64::MIN)..=(variant.to_owned(), i64::MAX))
            .filter_map(|((_, ms), unconfirmed)| match unconfirmed {
                Unconfirmed::Term(stretch, before) => Some((*ms, stretch, *before)),
                Unconfirmed::FirstCall(..) | Unconfirmed::Change(..) => None,
            })
            .peekable();
        let merged;
        let rates = match (known, own.peek(), terms.peek()) {
            (Some(known), None, None) => &known.rates,
            _ => {
                let mut rates = known.map(|k| k.rates.clone()).unwrap_or_default();
                for ((_, ms), stretch) in own {
                    rates.entry(*ms).or_insert_with(|| stretch.clone());
                }
                for (ms, stretch, before) in terms {
                    if term_replaces(
                        rates.range(..=ms).next_back().map(|(at, then)| (*at, then)),
                        ms,
                        before,
                    ) {
                        rates.insert(ms, stretch.clone());
                    }
                }
                merged = rates;
                &merged
            }
        };
        let (accrued, capacity_from) = accrued_over(rates, from_ns, datetime_ns(now), &input);
        let allocated = from_pico(allocated);
        FleetAccrualFigures {
            accrued_usd: accrued,
            allocated_usd: allocated,
            utilisation: (!accrued.is_zero()).then(|| div_round_dp(allocated, accrued, 6)),
            capacity_from,
        }
    }

    /// Spend of the scope as far as this process knows: the table's last answer
    /// plus what this process has not written yet.
    fn running(&self) -> i128 {
        self.known
            .saturating_add(self.unacked.as_ref().map_or(0, |(_, d)| d.spent))
            .saturating_add(self.pending.spent)
    }

    /// Compares this process's first-call rates and the terms it noted with
    /// the stretches the table holds (its last answer) and those this process
    /// has still to write, oldest first: each is written at the next flush
    /// where it is news to the table ([`Item::is_news`]; a term where it
    /// replaces the stretch before it, [`term_replaces`]), dropped elsewhere.
    fn confirm_rates(&mut self) {
        for ((variant, ms), unconfirmed) in std::mem::take(&mut self.unconfirmed) {
            let stretch = match unconfirmed {
                Unconfirmed::FirstCall(stretch, described_ms) => self
                    .is_news(&variant, ms, &stretch, described_ms, true)
                    .then_some(stretch),
                Unconfirmed::Change(stretch, described_ms) => self
                    .is_news(&variant, ms, &stretch, described_ms, false)
                    .then_some(stretch),
                Unconfirmed::Term(stretch, before) => {
                    term_replaces(self.held(&variant, ms, true), ms, before).then_some(stretch)
                }
            };
            if let Some(stretch) = stretch {
                self.pending.rates.insert((variant, ms), stretch);
            }
        }
    }

    /// The last stretch of `variant` from `ms` or earlier (`inclusive`; else
    /// before `ms`), with when it began, as the table will hold it as far as
    /// this process knows: its last answer, then the stretches this process
    /// has written since or is to write (the first writer of each keeps it).
    fn held(&self, variant: &str, ms: i64, inclusive: bool) -> Option<(i64, &StandingStretch)> {
        let upto = if inclusive { ms } else { ms.saturating_sub(1) };
        let table = self
            .accrual
            .get(variant)
            .and_then(|a| a.rates.range(..=upto).next_back())
            .map(|(since, then)| (*since, then));
        let key = |ms| (variant.to_owned(), ms);
        self.unacked
            .iter()
            .map(|(_, d)| &d.rates)
            .chain([&self.pending.rates])
            .filter_map(|rates| rates.range(key(i64::MIN)..=key(upto)).next_back())
            .map(|((_, since), then)| (*since, then))
            .fold(table, |last, own| match last {
                Some((since, _)) if since >= own.0 => last,
                _ => Some(own),
            })
    }

    /// Whether this process's rate `stretch` of `variant` from `ms` (its first
    /// call's where `first_call`, else a change its profile saw) is news to the
    /// table (its last answer). Not when the stretch the table holds then has
    /// the same rate; nor when that stretch began after the profile giving this
    /// rate was described (`described_ms`: another process saw the endpoint
    /// later, its rate is the newer, and this process's own is only stale until
    /// its next refresh); nor, for a first call's, when this rate is the held
    /// stretch's at the prices before one or more of the terms the table holds
    /// by then ([`Item::before_terms`]: this process has not seen them yet, its
    /// look-up predates the answer announcing them, or fell back to a price
    /// without terms). A change is a rate this process's profile moved to from
    /// the one it applied, so a match of that kind is a scaling change at the
    /// new prices (a term of 0.30 → 0.20 an hour, 2 instances at 0.40 after it,
    /// a scale-out to 3 at 0.20 is 0.60, as 2 at 0.30 were): it is written.
    fn is_news(
        &self,
        variant: &str,
        ms: i64,
        stretch: &StandingStretch,
        described_ms: Option<i64>,
        first_call: bool,
    ) -> bool {
        let Some((since, then)) = self.held(variant, ms, true) else {
            return true;
        };
        let held = then.pico_per_hour == stretch.pico_per_hour;
        let newer = described_ms.is_some_and(|described| since > described);
        let stale = first_call && self.before_terms(variant, since, then, stretch.pico_per_hour);
        !(held || newer || stale)
    }

    /// Whether `rate` (pico-USD an hour) is that of `held`, the stretch of
    /// `variant` the table holds from `since`, priced before the last term the
    /// table holds from `since` or earlier, or before the last two, and so on.
    /// A term replaces the rate of the stretch just before its date (`r_old`)
    /// with its own (`r_new`) for the same instances, so another instance
    /// count after it costs `r_old` ÷ `r_new` times as much before it: the
    /// held rate × `r_old` ÷ `r_new` (× the ratio of each earlier term walked
    /// back over too); where the held stretch is the term's own, that is
    /// `r_old`. Compared exactly, in integers (`rate` × the product of the
    /// `r_new` = the held rate × the product of the `r_old`, each ratio reduced
    /// first); a product beyond `i128`, or a rate of zero, is not equal (the
    /// rate is news). A first call at another count at the new prices whose
    /// rate happens to be the same (a term of 0.30 → 0.20 an hour, 2 instances
    /// at 0.40 after it: 3 at 0.20 are 0.60, as 2 at 0.30) is taken for the
    /// stale one too: the rate alone does not tell them apart.
    fn before_terms(&self, variant: &str, since: i64, held: &StandingStretch, rate: i128) -> bool {
        if rate <= 0 || held.pico_per_hour <= 0 {
            return false;
        }
        // The held rate at the prices before the terms walked back over,
        // `num` ÷ `den`, in lowest terms.
        let (mut num, mut den) = (held.pico_per_hour, 1_i128);
        let (mut since, mut then) = (since, held);
        while let Some((before_since, before)) = self.held(variant, since, false)
            && before_since < since
        {
            if then.term {
                let (old, new) = (before.pico_per_hour, then.pico_per_hour);
                if old <= 0 || new <= 0 {
                    return false;
                }
                let g = gcd(old, new);
                let (Some(n), Some(d)) = (num.checked_mul(old / g), den.checked_mul(new / g))
                else {
                    return false;
                };
                let g = gcd(n, d);
                (num, den) = (n / g, d / g);
                if rate.checked_mul(den) == Some(num) {
                    return true;
                }
            }
            (since, then) = (before_since, before);
        }
        false
    }

    /// Notes the terms `rate` announced dated after `after_ms` and by `now_ms`
    /// in the item, each as a stretch from its date at its rate, marked as a
    /// term's (AWS bills an instance-hour at the rate of the term in force when
    /// it ran, whether or not a process looked a rate up then), unless it
    /// leaves the rate as it was: compared with the table's answer to the next
    /// write ([`Item::confirm_rates`]), and written after it where it replaces
    /// the stretch the table holds before its date.
    fn note_terms(
        &mut self,
        variant: &str,
        rate: &StandingStretch,
        terms: &[StandingTerm],
        after_ms: i64,
        now_ms: i64,
    ) {
        let mut before = rate.pico_per_hour;
        for term in terms {
            let Some((ms, stretch)) = term_stretch(term) else {
                break;
            };
            if ms > now_ms {
                break;
            }
            let pico_per_hour = stretch.pico_per_hour;
            if ms > after_ms && pico_per_hour != before {
                self.unconfirmed
                    .insert((variant.to_owned(), ms), Unconfirmed::Term(stretch, before));
            }
            before = pico_per_hour;
        }
    }
}

/// What a variant's standing capacity cost from `from_ns` to `now_ns` (epoch
/// ns), each stretch of `rates` (by when it took effect, epoch ms) at its own
/// rate until the next one, with the sources of the rates summed; rounded to
/// the receipts' 12 places once, at the end. Time before the earliest stretch
/// is at its rate (nothing earlier is known); with no stretch at all (an item
/// written before the rates were kept), the whole time is at `call`'s rate.
fn accrued_over(
    rates: &BTreeMap<i64, StandingStretch>,
    from_ns: i128,
    now_ns: i128,
    call: &AccrualInput,
) -> (Decimal, Vec<RateFrom>) {
    // Nanoseconds, as the process's own accrual counts them (a duration of up
    // to 584 years; beyond, the longest).
    let span = |from: i128, to: i128| {
        u64::try_from(to.saturating_sub(from).max(0)).map_or(Duration::MAX, Duration::from_nanos)
    };
    if rates.is_empty() {
        let accrued = standing_stretch(call.usd_per_hour, span(from_ns, now_ns));
        return (round_cost(accrued), vec![call.capacity_from.clone()]);
    }
    let mut fine = Decimal::ZERO;
    let mut sources: Vec<RateFrom> = Vec::new();
    let mut stretches = rates.iter().peekable();
    let mut first = true;
    while let Some((start_ms, stretch)) = stretches.next() {
        let start = match first {
            true => from_ns,
            false => i128::from(*start_ms)
                .saturating_mul(NANOS_PER_MS)
                .max(from_ns),
        };
        first = false;
        let end = stretches
            .peek()
            .map_or(now_ns, |(next, _)| {
                i128::from(**next).saturating_mul(NANOS_PER_MS)
            })
            .min(now_ns);
        if end <= start {
            continue;
        }
        let usd_per_hour = from_pico(stretch.pico_per_hour);
        fine = fine
            .checked_add(standing_stretch(usd_per_hour, span(start, end)))
            .unwrap_or(Decimal::MAX);
        let (origin, note) = &stretch.from;
        match sources.iter_mut().find(|(o, _)| o == origin) {
            Some(source) => source.1 = note.clone(),
            None => sources.push(stretch.from.clone()),
        }
    }
    if sources.is_empty() {
        // No time has passed: nothing accrued, at this call's rate.
        sources.push(call.capacity_from.clone());
    }
    (round_cost(fine), sources)
}

/// One write a flush sends.
struct Write {
    pk: String,
    sk: String,
    seq: u64,
    delta: Delta,
    expires_at: i64,
    /// How the write counts against the item's budget: as the use of this
    /// process's lease (renewed until a new end), or added to what the budget has
    /// committed (a fleet budget's item without a lease), or not at all.
    lease: LeaseUse,
    /// The endpoint whose load the write publishes, and the load.
    load: Option<(String, Load)>,
    /// The endpoint, when the item is an endpoint's item of the day.
    endpoint: Option<String>,
}

/// Nanoseconds in a millisecond.
const NANOS_PER_MS: i128 = 1_000_000;

/// `at` in epoch nanoseconds (0 before the epoch, as [`epoch_ms`]).
fn epoch_ns(at: SystemTime) -> i128 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// `at` in epoch nanoseconds.
fn datetime_ns(at: DateTime<Utc>) -> i128 {
    i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos())
}

/// The part of a call's `allocated` compute (pico-USD) that falls in the period
/// beginning at `period_start_ns`, the call running from `started_ns` to
/// `ended_ns`: the period's accrual begins at its start, so a call across it
/// (before midnight to after) brings only the share of its time after it, and
/// the day's allocation never passes what the day accrued.
fn in_period(
    allocated: i128,
    started_ns: i128,
    ended_ns: i128,
    period_start_ns: Option<i128>,
) -> i128 {
    match period_start_ns {
        Some(start) if started_ns < start && start < ended_ns => {
            let inside = ended_ns - start;
            let whole = ended_ns - started_ns;
            allocated
                .checked_mul(inside)
                .map_or(allocated, |x| x / whole)
        }
        _ => allocated,
    }
}

fn epoch_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, millis)
}

fn expires_at(period_end: DateTime<Utc>) -> i64 {
    period_end.timestamp() + KEEP_AFTER_PERIOD
}

/// A name for this process, unique across the fleet: pid, start time and a
/// per-process random number.
fn process_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{}-{:016x}", std::process::id(), hasher.finish())
}

impl Fleet {
    pub(crate) fn new(
        config: FleetConfig,
        sdk_config: &aws_types::SdkConfig,
        budgets: Arc<Budgets>,
        totals: Totals,
        time: SharedTimeSource,
    ) -> Fleet {
        // Every table request has a time limit, on a client given by the user
        // too (one it sets itself is kept): a stalled connection must not hang
        // a flush, and with it every later flush and `shutdown()`.
        let client = match &config.client {
            Some(client) => table::with_time_limits(client),
            None => {
                let conf = aws_sdk_dynamodb::config::Builder::from(sdk_config)
                    .timeout_config(
                        aws_smithy_types::timeout::TimeoutConfig::builder()
                            .operation_attempt_timeout(table::ATTEMPT_TIMEOUT)
                            .operation_timeout(table::OPERATION_TIMEOUT)
                            .connect_timeout(table::CONNECT_TIMEOUT)
                            .build(),
                    )
                    .build();
                aws_sdk_dynamodb::Client::from_conf(conf)
            }
        };
        let specs = budgets
            .list()
            .into_iter()
            .map(|b| {
                let pk = keys::scope_pk(b.scope());
                (b, pk)
            })
            .collect();
        Fleet {
            shared: Arc::new(Shared {
                table: Table {
                    client,
                    name: config.table.clone(),
                },
                process: process_name(),
                config,
                budgets,
                totals,
                specs,
                time,
                state: Mutex::new(State::default()),
                flushing: tokio::sync::Mutex::new(()),
                leasing: tokio::sync::Mutex::new(()),
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                stop: tokio::sync::Notify::new(),
                requests: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
                warned: Mutex::new(HashSet::new()),
                settlements: AtomicU64::new(0),
                settlement_warned: AtomicBool::new(false),
                shut_down: AtomicBool::new(false),
                late_warned: AtomicBool::new(false),
                last_failure: Mutex::new(None),
            }),
        }
    }

    /// Adds a receipt's cost to every fleet item it counts in; the fleet's spend
    /// today as far as this process knows, this call included (`None`: the cost
    /// does not fit in pico-USD integers). `counts_a_call` is false for an async
    /// invocation's settlement: its cost is added, its call was counted at its
    /// submission.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        endpoint: &str,
        variant: Option<&str>,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        now: SystemTime,
        accrual: Option<AccrualInput>,
        counts_a_call: bool,
    ) -> FleetRecorded {
        self.start_flushing();
        let Some(pico) = to_pico(cost_usd) else {
            return FleetRecorded::default();
        };
        if self.shared.shut_down.load(Ordering::Relaxed)
            && !self.shared.late_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(target: "sagemeter::fleet", table = %self.shared.table.name,
                "spend recorded after the fleet was shut down is kept in this process only, \
                 never written to the table (finish or drop calls before shutdown; \
                 fleet_stats().unwritten_items counts it)");
        }
        let now: DateTime<Utc> = now.into();
        let shared = &self.shared;
        let mut guard = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        // Every key is made once (per endpoint, per period) and borrowed after:
        // a call allocates nothing here.
        state.today.roll(BudgetPeriod::Day, now);
        if !state.endpoint_pks.contains_key(endpoint) {
            state.endpoint_pk(endpoint);
        }
        state
            .budget_periods
            .resize_with(shared.specs.len(), PeriodKey::default);
        for ((budget, _), key) in shared.specs.iter().zip(&mut state.budget_periods) {
            key.roll(budget.period(), now);
        }
        let State {
            items,
            endpoint_pks,
            today,
            budget_periods,
            standing_seen,
            ..
        } = state;
        let Some(endpoint_pk) = endpoint_pks.get(endpoint).map(String::as_str) else {
            return FleetRecorded::default();
        };
        // The whole fleet today, and the endpoint with its variant's share.
        let charge = (pico, u64::from(counts_a_call));
        let running = add(items, FLEET_PK, &today.sk, today.end, charge, None).running();
        let item = add(items, endpoint_pk, &today.sk, today.end, charge, variant);
        let fleet_accrual = match (variant, accrual) {
            (Some(variant), Some(input)) => {
                let seen = standing_seen.get(endpoint).and_then(|v| v.get(variant));
                Some(item.accrue(variant, input, now, today.start, seen))
            }
            _ => None,
        };
        // Each budget's scope in its period (once, if it is one of the above or of
        // an earlier budget); a fleet budget's item holds this process's lease,
        // and its spend is the lease's use.
        let counted = |pk: &str, sk: &str, before: usize| {
            ((pk == FLEET_PK || pk == endpoint_pk) && sk == today.sk)
                || shared.specs[..before]
                    .iter()
                    .zip(budget_periods.iter())
                    .any(|((b, p), key)| {
                        p == pk && key.sk == sk && b.scope().covers(endpoint, tags)
                    })
        };
        for (i, ((budget, pk), key)) in shared.specs.iter().zip(budget_periods.iter()).enumerate() {
            if budget.scope().covers(endpoint, tags) && !counted(pk, &key.sk, i) {
                add(items, pk, &key.sk, key.end, charge, None);
            }
        }
        FleetRecorded {
            running_usd: Some(from_pico(running)),
            accrual: fleet_accrual,
        }
    }

    /// The fleet's spend today as far as this process knows, as
    /// [`record`](Self::record) gives it but adding nothing: for a receipt
    /// billed nowhere (a duplicate settlement of an async invocation).
    pub(crate) fn running_usd(&self, now: SystemTime) -> Decimal {
        let mut guard = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        state.today.roll(BudgetPeriod::Day, now.into());
        let running = state
            .items
            .get(FLEET_PK)
            .and_then(|by_period| by_period.get(state.today.sk.as_str()))
            .map_or(0, Item::running);
        from_pico(running)
    }

    /// The standing rate of `endpoint`'s `variant` from `now` on, as this
    /// process's profile gives it (found or refreshed), with the terms its price
    /// source's answer announced (`terms`, oldest first: each in force from its
    /// date). Once this process has noted the variant's rate in today's endpoint
    /// item (at its first call to it today), a change of the hourly cost is
    /// noted there too, from `now`, where the table's answer to the next write
    /// holds another rate then (not when another process wrote the change
    /// first), and each term from its date once that date
    /// is past (here, or at the next call): the fleet's accrual prices each
    /// stretch of the day at its own rate. A change of source alone at the same
    /// cost is not a new stretch (a price refreshed from the cache each time
    /// would add one per refresh), nor is the look-up of a term's rate once it
    /// is in force. `described` is when the profile giving the rate was last
    /// described (`None` for one set by hand): a first call's rate from a
    /// profile older than a stretch the table holds is not written over it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_standing(
        &self,
        endpoint: &str,
        variant: &str,
        usd_per_hour: Decimal,
        from: RateFrom,
        terms: Arc<[StandingTerm]>,
        now: SystemTime,
        described: Option<SystemTime>,
    ) {
        let Some(pico_per_hour) = to_pico(usd_per_hour) else {
            return;
        };
        let rate = StandingStretch {
            pico_per_hour,
            from,
            term: false,
        };
        let now_ms = epoch_ms(now);
        let described_ms = described.map(epoch_ms);
        let mut guard = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        // The rate given, as in force now (a term of its answer dated by now
        // is).
        let mut given = SeenRate {
            stretch: rate,
            since_ms: now_ms,
            described_ms,
            terms,
        };
        given.fold_terms(now_ms);
        given.since_ms = now_ms;
        // The rate applied until now, when it announced terms dated by now: they
        // are noted in today's item before it is replaced, where the rate given
        // is the one they put in force now. Not where it is another (another
        // instance count, or nothing standing): the count changed at a time not
        // known, the terms were priced from the count before.
        let passed = state
            .standing_seen
            .get(endpoint)
            .and_then(|seen| seen.get(variant))
            .filter(|seen| seen.terms.first().is_some_and(|t| epoch_ms(t.on) <= now_ms))
            .map(|seen| (seen.stretch.clone(), seen.terms.clone()));
        if let Some((before, announced)) = passed
            && let Some(item) = state.variant_item_today(endpoint, variant, now)
            && let Some(noted) = item.terms_noted_ms.get_mut(variant)
            && *noted < now_ms
        {
            let after = std::mem::replace(noted, now_ms);
            if in_force(&before, &announced, now_ms).pico_per_hour == given.stretch.pico_per_hour {
                item.note_terms(variant, &before, &announced, after, now_ms);
            }
        }
        let seen = state.standing_seen.entry(endpoint.to_owned()).or_default();
        if let Some(seen) = seen.get_mut(variant) {
            seen.fold_terms(now_ms);
            if seen.stretch.pico_per_hour == given.stretch.pico_per_hour {
                // The same rate, described again (with the terms its answer
                // announces now).
                seen.described_ms = seen.described_ms.max(described_ms);
                seen.terms = given.terms;
                return;
            }
        }
        let rate = given.stretch.clone();
        seen.insert(variant.to_owned(), given);
        // Written where the table's answer to the next write holds another
        // rate then: every process sees a scaling change, the first to write
        // it dates it.
        if let Some(item) = state.variant_item_today(endpoint, variant, now) {
            item.unconfirmed.insert(
                (variant.to_owned(), now_ms),
                Unconfirmed::Change(rate, described_ms),
            );
        }
    }

    /// Adds what fleet budgets were charged beyond a receipt (a call that could not
    /// be fully priced counts at its reserved estimate, never $0; a lapsed async
    /// hold is charged provisionally, and below $0 when its settlement's receipt
    /// replaces that charge: see [`BeyondReceipt`]) to each budget's item, written
    /// at the next flush: the lease's use, what the fleet has committed once the
    /// lease ends, and the fleet's alerts count it. Each goes to the item of
    /// the period the budget was in when it was made (see
    /// [`BeyondReceipt::period_start`]), not the one it is handed over in: a
    /// lapsed hold's charge made just before a period's end is handed over
    /// by a flush after it.
    pub(crate) fn charge_beyond_receipts(&self, charges: &[BeyondReceipt]) {
        let shared = &self.shared;
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        for charge in charges {
            let (Some((budget, pk)), Some(pico)) =
                (shared.specs.get(charge.budget), to_pico(charge.usd))
            else {
                continue;
            };
            let start = budget.period().start_of(charge.period_start);
            let pending = &mut state.budget_item(budget, pk, start).pending;
            pending.unpriced = pending.unpriced.saturating_add(pico);
        }
    }

    /// Starts the flush loop on the current runtime, unless it runs already (at
    /// each call). A loop whose runtime was dropped (a runtime made for one
    /// call, a warm-up `block_on`) was cancelled with it: the next call starts
    /// it again on its own runtime, so spend is still written and leases still
    /// renewed.
    pub(crate) fn start_flushing(&self) {
        if self.shared.started.load(Ordering::Relaxed)
            || self.shared.closed.load(Ordering::Relaxed)
            || self.shared.started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.shared.started.store(false, Ordering::SeqCst);
            return;
        };
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let every = self.shared.config.flush_every;
        // Says the loop is no longer running however it ends: returned, dropped with
        // its runtime at an await, or dropped unpolled (spawned while the runtime
        // shuts down), so it is made here and moved in, not made at the first poll.
        let running = Running(weak.clone());
        handle.spawn(async move {
            let _running = running;
            // A flush starts every `every`, however long the last one took (one
            // that overran delays the next, never doubles it). The first starts at
            // once, at the first call: the other processes learn of its load (and
            // it of theirs) without waiting an interval.
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let stop = match weak.upgrade() {
                    Some(shared) if !shared.closed.load(Ordering::SeqCst) => shared,
                    _ => return,
                };
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.stop.notified() => return,
                }
                if stop.closed.load(Ordering::SeqCst) {
                    return;
                }
                Fleet { shared: stop }.flush().await;
            }
        });
    }

    /// A name for one settlement in the table's marks, unique in the fleet: this
    /// process's name and a sequence number.
    pub(crate) fn settlement_claimant(&self) -> String {
        let n = self.shared.settlements.fetch_add(1, Ordering::Relaxed);
        format!("{}#{n}", self.shared.process)
    }

    /// Marks the async invocation `call_id` of `endpoint` settled in the table by
    /// `claimant` (a [`settlement_claimant`](Self::settlement_claimant)), the item
    /// kept for `keep` (its TTL): whether this settlement is the fleet's first
    /// (or takes over a mark never billed), another's still in progress or
    /// billed, or why that could not be told. A mark `claimant` made before (an SDK retry, or
    /// the same settlement asking again) is its own: first. The future owns what
    /// it needs (a settlement dropped unfinished completes it in the background).
    /// One WARN per process for a table that cannot be written.
    pub(crate) fn claim_settlement(
        &self,
        call_id: &str,
        endpoint: &str,
        claimant: &str,
        keep: Duration,
    ) -> impl std::future::Future<Output = std::result::Result<Claimed, String>> + Send + use<>
    {
        let fleet = self.clone();
        let call_id = call_id.to_owned();
        let endpoint = endpoint.to_owned();
        let by = claimant.to_owned();
        async move {
            let shared = &fleet.shared;
            let now = shared.time.now();
            let keep_s = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
            let expires_at = (epoch_ms(now) / 1000).saturating_add(keep_s);
            let now_ms = epoch_ms(now);
            // A mark not billed is taken over once its claim ended longer ago
            // than another host's clock may be behind this one.
            let stale_before_ms = now_ms.saturating_sub(millis(shared.config.clock_skew));
            // Counted as sent: two requests when a mark is taken over.
            let mut sent = 0;
            let result = shared
                .table
                .claim_settlement(
                    &call_id,
                    &endpoint,
                    &by,
                    now_ms,
                    millis(SETTLEMENT_CLAIM),
                    stale_before_ms,
                    expires_at,
                    &mut sent,
                )
                .await;
            shared.requests.fetch_add(sent, Ordering::Relaxed);
            if result.is_ok() {
                // Warned of afresh should marking fail again.
                shared.settlement_warned.store(false, Ordering::Relaxed);
            }
            result.map_err(|err| {
                if !shared.settlement_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "sagemeter::fleet", table = %shared.table.name,
                        failure = err.kind.as_str(), error = %err,
                        "fleet table failed marking an async settlement; settled all the same, \
                         unchecked for duplicates in other processes (the receipt says so)");
                }
                err.to_string()
            })
        }
    }

    /// Marks the async invocation `call_id` of `endpoint` billed in the table
    /// by `claimant`, whose mark it holds (see [`claim_settlement`](Self::claim_settlement)),
    /// once its receipt is made: the mark is final from then on. A failure is
    /// warned of (once per kind, until a mark goes through again), and breaks
    /// nothing: the receipt stands, and the mark may be taken over by another
    /// settlement of the invocation once its claim ([`SETTLEMENT_CLAIM`]) ended.
    /// `claimed`: the claim is known to have been written (a mark found not
    /// `claimant`'s then means it was taken over, warned of; with the claim's
    /// answer lost, it may never have been written).
    pub(crate) fn mark_settlement_billed(
        &self,
        call_id: &str,
        endpoint: &str,
        claimant: &str,
        claimed: bool,
    ) -> impl std::future::Future<Output = ()> + Send + use<> {
        const DOING: &str = "marking an async settlement billed";
        let fleet = self.clone();
        let call_id = call_id.to_owned();
        let endpoint = endpoint.to_owned();
        let by = claimant.to_owned();
        async move {
            let shared = &fleet.shared;
            let now_ms = epoch_ms(shared.time.now());
            let result = fleet.counted(
                shared
                    .table
                    .mark_billed(&call_id, &endpoint, &by, now_ms)
                    .await,
            );
            match result {
                Ok(true) => {
                    fleet.answered(DOING);
                }
                Ok(false) if !claimed => {}
                Ok(false) => {
                    tracing::warn!(target: "sagemeter::fleet", table = %shared.table.name,
                        endpoint = %endpoint, call_id = %call_id,
                        "an async settlement's mark in the fleet table was taken over by \
                         another settlement before this one's receipt was made (past its \
                         claim): the invocation may be billed twice");
                }
                Err(err) => {
                    if fleet.first_failure(&err, DOING) {
                        tracing::warn!(target: "sagemeter::fleet", table = %shared.table.name,
                            failure = err.kind.as_str(), error = %err,
                            "fleet table failed marking an async settlement billed; billed all \
                             the same, but another settlement of the invocation may take its \
                             mark over once its claim ended, and bill it again");
                    }
                }
            }
        }
    }

    fn warn(&self, err: &TableError, doing: &'static str) {
        if self.first_failure(err, doing) {
            tracing::warn!(target: "sagemeter::fleet", table = %self.shared.table.name,
                failure = err.kind.as_str(), error = %err, doing,
                "fleet table failed; calls go on, increments are kept and written when it answers");
        }
    }

    /// Whether `err`'s kind of failure of `doing` is the first since `doing`
    /// last went through ([`answered`](Self::answered)): warned of once.
    fn first_failure(&self, err: &TableError, doing: &'static str) -> bool {
        let mut warned = self.shared.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.insert((err.kind, doing))
    }

    /// `doing` went through: a later failure of it is warned of afresh. Whether
    /// a failure of it had been warned of.
    fn answered(&self, doing: &'static str) -> bool {
        let mut warned = self.shared.warned.lock().unwrap_or_else(|e| e.into_inner());
        let before = warned.len();
        if before > 0 {
            warned.retain(|(_, d)| *d != doing);
        }
        warned.len() < before
    }

    fn counted<T>(&self, result: Result<T, TableError>) -> Result<T, TableError> {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Writes what is pending (with the budgets' provisional charges queued
    /// since: see [`Budgets::take_lapsed_charges`]), retries what was not
    /// acknowledged, renews leases about to lapse, raises the alerts the new
    /// figures pass. Returns whether
    /// nothing is left unwritten (an item whose earlier write is retried sends
    /// its newer increments at the next flush).
    pub(crate) async fn flush(&self) -> bool {
        let shared = &self.shared;
        let _one = shared.flushing.lock().await;
        let now = shared.time.now();
        // The budgets' provisional charges not handed over yet: a pending
        // invocation dropped after its hold lapsed queues one, with no call
        // after it to hand it on.
        {
            let (lapsed, _handing) = shared.budgets.take_lapsed_charges();
            if !lapsed.is_empty() {
                self.charge_beyond_receipts(&lapsed);
            }
        }
        let now_ms = epoch_ms(now);
        let ttl_ms = millis(shared.config.lease_ttl);
        let renew_within = renew_within(shared.config.lease_ttl, shared.config.flush_every);
        let loads = self.loads(now, now_ms);
        let writes = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut loads = loads;
            let today = DateTime::<Utc>::from(now);
            let day = BudgetPeriod::Day.start_of(today);
            let day_sk = state.period_sk(BudgetPeriod::Day, day);
            for (pk, _) in loads.iter() {
                // An endpoint with calls in flight and none finished yet today.
                let end = BudgetPeriod::Day.end_of(day);
                state.item(pk, &day_sk, || Item::spend(end));
            }
            // The endpoint whose (day's) item is under `pk`, if this process
            // called it: `pk` names the endpoint (see `keys::scope_pk`), no map
            // of all the endpoints ever called turned round at each flush.
            let endpoint_of = |endpoint_pks: &FastMap<String, String>, pk: &str| {
                pk.strip_prefix(keys::ENDPOINT_PK_PREFIX)
                    .filter(|endpoint| endpoint_pks.contains_key(*endpoint))
                    .map(str::to_owned)
            };
            // An enforced fleet budget's item: spend written to it without a
            // lease of this process's adds to what the budget has committed.
            let fleet_budget_item = |pk: &str, sk: &str| {
                shared.specs.iter().any(|(budget, budget_pk)| {
                    budget.mode() == BudgetMode::Enforce
                        && budget_pk == pk
                        && keys::period_of_sk(sk).is_some_and(|(period, _, rest)| {
                            period == budget.period() && rest.is_empty()
                        })
                })
            };
            let state = &mut *state;
            let mut seq = state.seq;
            let mut writes = Vec::new();
            for (pk, items) in state.items.iter_mut() {
                for (sk, item) in items.iter_mut() {
                    let renew = item
                        .lease
                        .as_ref()
                        .is_some_and(|l| l.until_ms.saturating_sub(now_ms) < renew_within);
                    let load = if *sk == day_sk {
                        loads.remove(pk.as_str())
                    } else {
                        None
                    };
                    // An item with stretches to compare with the table's is
                    // written (read back) too.
                    if item.unacked.is_none()
                        && (!item.pending.is_empty()
                            || !item.unconfirmed.is_empty()
                            || renew
                            || load.is_some())
                    {
                        seq += 1;
                        item.pending.read_back = !item.unconfirmed.is_empty();
                        item.unacked = Some((seq, std::mem::take(&mut item.pending)));
                    }
                    if let Some((seq, delta)) = &item.unacked {
                        writes.push(Write {
                            pk: pk.clone(),
                            sk: sk.clone(),
                            seq: *seq,
                            delta: delta.clone(),
                            expires_at: expires_at(item.period_end),
                            lease: match &item.lease {
                                Some(_) => LeaseUse::Held {
                                    until_ms: now_ms.saturating_add(ttl_ms),
                                },
                                None if fleet_budget_item(pk, sk) => LeaseUse::Unleased,
                                None => LeaseUse::None,
                            },
                            load,
                            endpoint: if *sk == day_sk {
                                endpoint_of(&state.endpoint_pks, pk)
                            } else {
                                None
                            },
                        });
                    }
                }
            }
            state.seq = seq;
            writes
        };
        if writes.is_empty() {
            if !shared.closed.load(Ordering::SeqCst) {
                self.retry_marks().await;
            }
            self.forget_past(now);
            return true;
        }
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        let mut all = true;
        let mut passed = Vec::new();
        let mut loaded = Vec::new();
        let mut shares = Vec::new();
        // Writes not acknowledged, with why (`None`: not sent, the table being
        // unreachable for the one before).
        let mut failed: Vec<(String, String, Option<Failure>)> = Vec::new();
        // This flush's last failed write, for shutdown to say why (none: every
        // write of it went through, and no older failure is the latest word).
        let mut failure = None;
        let mut writes = writes.into_iter();
        let mut wrote_any = false;
        let mut unreachable = false;
        for write in writes.by_ref() {
            wrote_any = true;
            let result = self.counted(
                shared
                    .table
                    .add_spend(
                        &write.pk,
                        &write.sk,
                        &shared.process,
                        write.seq,
                        &write.delta,
                        write.expires_at,
                        write.lease,
                        write.load.as_ref().map(|(_, load)| *load),
                    )
                    .await,
            );
            let mut added = match result {
                Ok(added) => added,
                Err(err) => {
                    self.warn(&err, WRITING);
                    failure = Some((err.kind, err.to_string()));
                    all = false;
                    failed.push((write.pk, write.sk, Some(err.kind)));
                    if err.kind == Failure::Unreachable {
                        unreachable = true;
                        break; // every other write would wait for the same timeout
                    }
                    continue;
                }
            };
            // The write's second requests, lowering the accrual starts its item
            // held later than its own: at best, the write stands without them.
            let lowering = match &mut added {
                Added::Applied { lowering, .. } | Added::AlreadyApplied { lowering, .. } => {
                    std::mem::take(lowering)
                }
            };
            shared.requests.fetch_add(lowering.sent, Ordering::Relaxed);
            match &lowering.failure {
                Some(err) => self.warn(err, LOWERING),
                None if lowering.sent > 0 => {
                    self.answered(LOWERING);
                }
                None => {}
            }
            let (renewed, lost) = {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                let Some(item) = state
                    .items
                    .get_mut(write.pk.as_str())
                    .and_then(|m| m.get_mut(write.sk.as_str()))
                else {
                    continue;
                };
                item.unacked = None;
                item.acked_seq = item.acked_seq.max(write.seq);
                // Applied now or before (a retry): counted in the table either way.
                item.written = item
                    .written
                    .saturating_add(write.delta.spent)
                    .saturating_add(write.delta.unpriced);
                item.unanswered_written = item.unanswered_written.min(item.written);
                item.marked = true;
                item.failed_flushes = 0;
                // Starts not lowered go with the item's next write, whose answer
                // holds the later start again: lowered then.
                for (variant, ms) in lowering.left {
                    let first = item.pending.first_call_ms.entry(variant).or_insert(ms);
                    *first = (*first).min(ms);
                }
                // Whether the write was applied as the lease's use, what the
                // item holds granted to this process after it (when known), the
                // lease's end as the item holds it (when not the one this write
                // asked for), and whether the write was sent again without the
                // lease (it found the lease gone).
                let applied_now = matches!(added, Added::Applied { .. });
                // The item's calls per variant after the write, applied now or
                // before (its answer lost): this process's share of the fleet's
                // calls since the previous answer, this write's calls its own.
                let fleet_counts = match &mut added {
                    Added::Applied { variant_calls, .. }
                    | Added::AlreadyApplied { variant_calls, .. } => std::mem::take(variant_calls),
                };
                if let Some(endpoint) = &write.endpoint {
                    for (variant, fleet_calls) in fleet_counts {
                        let local = write
                            .delta
                            .variant_calls
                            .get(&variant)
                            .copied()
                            .unwrap_or(0);
                        shares.push((
                            endpoint.clone(),
                            variant,
                            write.sk.clone(),
                            fleet_calls,
                            local,
                        ));
                    }
                }
                let (held, granted, table_used, table_until, resent) = match added {
                    Added::Applied {
                        spent,
                        unpriced,
                        accruals,
                        lease_granted,
                        lease_used,
                        others_load,
                        ..
                    } => {
                        for (variant, fleet) in accruals {
                            let known = item.accrual.entry(variant).or_default();
                            known.allocated = fleet.allocated;
                            known.from_ms = fleet.from_ms.or(known.from_ms);
                            // As the table holds them: the first writer's.
                            known.rates.extend(fleet.rates);
                        }
                        // Written: kept as this process sent them where the
                        // answer did not hold them.
                        for ((variant, ms), stretch) in &write.delta.rates {
                            let known = item.accrual.entry(variant.clone()).or_default();
                            known.rates.entry(*ms).or_insert_with(|| stretch.clone());
                        }
                        item.confirm_rates();
                        item.known = spent;
                        passed.push((write.pk.clone(), write.sk.clone(), spent, unpriced));
                        if let (Some((endpoint, load)), Some(others)) = (&write.load, others_load) {
                            loaded.push((endpoint.clone(), load.milli, others));
                        }
                        let held = lease_granted.is_some();
                        (held, lease_granted, lease_used, None, !held)
                    }
                    Added::AlreadyApplied { lease, spent, .. } => {
                        item.known = item.known.saturating_add(write.delta.spent);
                        // Its thresholds were not checked when it was applied (the
                        // answer was lost): checked now, on the item as it is.
                        if let Some((spent, unpriced)) = spent {
                            passed.push((write.pk.clone(), write.sk.clone(), spent, unpriced));
                        }
                        for ((variant, ms), stretch) in &write.delta.rates {
                            let known = item.accrual.entry(variant.clone()).or_default();
                            known.rates.entry(*ms).or_insert_with(|| stretch.clone());
                        }
                        for (variant, allocated) in &write.delta.allocated {
                            let known =
                                &mut item.accrual.entry(variant.clone()).or_default().allocated;
                            *known = known.saturating_add(*allocated);
                        }
                        // A retry of a write applied before: the lease ends when
                        // the applied write said (or when a renewal since said),
                        // not when this retry asked; and a lease reclaimed since
                        // is gone, however the write was applied.
                        match lease {
                            Some(now) => (
                                true,
                                Some(now.granted),
                                Some(now.used),
                                Some(now.until_ms),
                                false,
                            ),
                            None => (false, None, None, None, false),
                        }
                    }
                };
                let unanswered = item.lease_unanswered;
                let low = &mut item.unanswered_low;
                match (&mut item.lease, write.lease) {
                    (Some(lease), LeaseUse::Held { until_ms }) if held => {
                        // No lease request out: the table's lease is the one
                        // held, its use as the answer gives it (it may hold
                        // writes acknowledged as an earlier lease's before a
                        // new one's grant was read).
                        lease.used_written = match (unanswered, table_used) {
                            (false, Some(used)) => used,
                            _ => lease
                                .used_written
                                .saturating_add(write.delta.spent)
                                .saturating_add(write.delta.unpriced),
                        };
                        *low = (*low).min(lease.used_written);
                        let until_ms = table_until.unwrap_or(until_ms);
                        lease.until_ms = until_ms;
                        // The item holds all this process was granted: what its
                        // budget gave up when the lease lapsed here (its renewal
                        // did not reach the table in time) is still its own. Not
                        // while a lease request of this process may have been
                        // applied unanswered: the grant the item holds may be
                        // that request's new lease, the old one reclaimed,
                        // unless the item holds the use this process wrote
                        // to the held lease and that use was above 0 when
                        // the request may have been applied (a new lease's
                        // use starts at 0: it holds less).
                        let own_use =
                            || *low > 0 && table_used.is_some_and(|u| u == lease.used_written);
                        let whole = granted.is_some_and(|g| g >= lease.granted)
                            && (!unanswered || own_use());
                        // More granted than this process counts, the item
                        // holding the held lease's own use: a request applied
                        // with its answer never read made it, on this lease,
                        // and it is this process's to spend. Not while a lease
                        // request is under way (its answer, read later, counts
                        // what it was granted: twice, with this); one that
                        // begins now marks the item after this (the state
                        // lock held), and finds nothing more to take. The mark
                        // stays: a request dropped unanswered may still be
                        // applied.
                        let found = granted
                            .filter(|_| {
                                unanswered && own_use() && shared.leasing.try_lock().is_ok()
                            })
                            .map_or(0, |g| g.saturating_sub(lease.granted).max(0));
                        lease.granted = lease.granted.saturating_add(found);
                        // A take-back counted off this lease when it was
                        // granted (the table may have applied it before),
                        // applied now as its use: this lease's room.
                        let untaken = lease
                            .taken_back
                            .take_if(|(seq, _)| *seq <= write.seq)
                            .filter(|(seq, _)| *seq == write.seq && applied_now)
                            .map(|(_, taken)| taken);
                        (
                            Some((
                                lease.budget,
                                lease.period_start,
                                until_ms,
                                whole,
                                untaken,
                                found,
                            )),
                            None,
                        )
                    }
                    (Some(_), LeaseUse::Held { .. }) => {
                        // Reclaimed by the fleet after it lapsed: what is unspent
                        // is gone. The write was sent again without the lease, its
                        // use added to what the budget has committed (or, a retry
                        // of a write applied while the lease stood, its use was
                        // the lease's, which the reclaim counted).
                        let lease = item.lease.take();
                        (None, lease.map(|l| (l.budget, l.period_start, resent)))
                    }
                    _ => (None, None),
                }
            };
            if let Some((budget, start, until, whole, untaken, found)) = renewed {
                let until = self.local_until(until);
                shared
                    .budgets
                    .renew(budget, start, Renewal::Held { until, whole });
                if let Some(taken) = untaken {
                    shared.budgets.untake(budget, start, from_pico(taken));
                }
                if found > 0 {
                    tracing::info!(target: "sagemeter::fleet", item = %write.sk,
                        found_usd = %from_pico(found),
                        "found a lease granted earlier whose answer came too late; it is used now");
                    shared
                        .budgets
                        .grant(budget, start, from_pico(found), until, false);
                }
            }
            // Kept before any mark is tried (nothing awaited since the answer):
            // a flush cut short from here on loses none of them.
            for (pk, sk, spent, unpriced) in passed.drain(..) {
                self.keep_passed(&pk, &sk, spent, unpriced);
            }
            if let Some((budget, start, resent)) = lost {
                if resent {
                    // The write was sent twice: with the lease, then without it.
                    shared.requests.fetch_add(1, Ordering::Relaxed);
                }
                shared.budgets.renew(budget, start, Renewal::Gone);
                tracing::warn!(target: "sagemeter::fleet", table = %shared.table.name,
                    item = %write.sk,
                    "this process's lease lapsed and was reclaimed by the fleet; \
                     its spend since counts in what the budget has committed");
            }
        }
        // The writes go through again: a later failure of them is warned of afresh
        // (a blip in week 1 must not leave an outage in week 3 unsaid). Other
        // operations' warnings stand until they go through (a lease that keeps
        // waiting longer than lease_wait is not warned every flush).
        if failure.is_none() && wrote_any && self.answered(WRITING) {
            tracing::info!(target: "sagemeter::fleet", table = %shared.table.name,
                "fleet table answers again: every increment kept meanwhile is written");
        }
        *shared
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = failure;
        failed.extend(writes.map(|w| (w.pk, w.sk, None)));
        self.raise_local_alerts(failed, now.into());
        // This process's share of the fleet's calls to each variant since the
        // previous answer that held the variant's count: its calls between the
        // two are this write's (a write in between without its calls added none).
        for (endpoint, variant, sk, fleet_calls, local_calls) in shares {
            let previous = {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                let variants = state.fleet_calls.entry_ref(endpoint.as_str()).or_default();
                match variants.get_mut(variant.as_str()) {
                    Some(known) => Some(std::mem::replace(known, (sk.clone(), fleet_calls))),
                    None => {
                        variants.insert(variant.clone(), (sk.clone(), fleet_calls));
                        None
                    }
                }
            };
            if let Some((previous_sk, previous)) = previous
                && previous_sk == sk
                && fleet_calls > previous
            {
                shared.totals.set_fleet_share(
                    &endpoint,
                    &variant,
                    local_calls,
                    fleet_calls - previous,
                );
            }
        }
        // The fleet's other processes' calls in flight share the instances from now:
        // the time read after the writes, not before them (up to seconds earlier,
        // which the sharing clock would take for the wall clock stepping back).
        let answered_at = shared.time.now();
        for (endpoint, published, others) in loaded {
            shared
                .totals
                .set_others_load(&endpoint, others, answered_at);
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if published == 0 {
                state.published.remove(&endpoint);
            } else {
                state.published.insert(endpoint, published);
            }
        }
        // The thresholds the writes passed, with those kept from before: each
        // tried once. Not against a table the writes found unreachable (each
        // mark would wait as long again), nor once shutdown has begun: it
        // tries them after it has given the leases back.
        if !unreachable && !shared.closed.load(Ordering::SeqCst) {
            self.retry_marks().await;
        }
        // Leases of periods that have ended are of no more use: their unused part
        // goes back (a failure is retried at the next flush).
        let deadline = deadline_after(tokio::time::Instant::now(), shared.config.lease_wait);
        let _ = self
            .give_back(GiveBack::EndedBy(now.into()), deadline)
            .await;
        self.forget_past(now);
        // An item whose earlier write was retried this time still holds what its
        // calls added since: not everything is written until the next flush.
        all && self.stats().unwritten_items == 0
    }

    /// This process's load per endpoint (by partition key) to publish now: every
    /// endpoint with calls in flight since the last flush, and those whose last
    /// published load was not zero (to say they went idle).
    fn loads(&self, now: SystemTime, now_ms: i64) -> FastMap<String, (String, Load)> {
        let shared = &self.shared;
        let taken = shared.totals.take_loads(now);
        // Loads older than three flush intervals (at least a second) of their
        // writer's and of this process's are of processes that are gone or idle;
        // written on their clocks, which may be behind this one by the skew
        // allowed.
        let horizon_ms = millis(shared.config.flush_every.saturating_mul(3)).max(1000);
        let skew_ms = millis(shared.config.clock_skew);
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut loads = FastMap::default();
        // Endpoints this process stops reading the others' load of (idle here,
        // its zero published): what was read last would otherwise stand for
        // hours, and its next call would share the instances with calls long
        // ended. As before a first read, it allocates as if alone.
        let mut unread = Vec::new();
        for (endpoint, milli) in taken {
            if milli == 0 && state.published.get(&endpoint).is_none_or(|p| *p == 0) {
                unread.push(endpoint);
                continue;
            }
            let pk = state.endpoint_pk(&endpoint);
            let load = Load {
                milli,
                now_ms,
                horizon_ms,
                skew_ms,
            };
            loads.insert(pk, (endpoint, load));
        }
        // Idle here now, after a load not 0 published (left out of the loads
        // taken): its 0, once, to say it went idle.
        let went_idle: Vec<String> = state
            .published
            .keys()
            .filter(|endpoint| {
                state
                    .endpoint_pks
                    .get(endpoint.as_str())
                    .is_none_or(|pk| !loads.contains_key(pk.as_str()))
            })
            .cloned()
            .collect();
        for endpoint in went_idle {
            let pk = state.endpoint_pk(&endpoint);
            let load = Load {
                milli: 0,
                now_ms,
                horizon_ms,
                skew_ms,
            };
            loads.insert(pk, (endpoint, load));
        }
        drop(state);
        // What was read last counts a while: the next call most likely meets the
        // same load; hours later it would be calls long ended.
        let kept = shared.config.flush_every.saturating_mul(10);
        shared.totals.forget_others_loads(&unread, now, kept);
        loads
    }

    /// The local end of a lease written to hold until `until_ms`: a flush
    /// interval earlier, so that this process stops spending it before any other
    /// can reclaim it.
    fn local_until(&self, until_ms: i64) -> DateTime<Utc> {
        let margin = i64::try_from(self.shared.config.flush_every.as_millis()).unwrap_or(0);
        DateTime::<Utc>::from_timestamp_millis(until_ms.saturating_sub(margin)).unwrap_or_default()
    }

    /// Keeps a mark to write for each threshold of the budgets kept in (`pk`,
    /// `sk`) that the item's figures pass and that is not marked yet (a
    /// threshold already kept takes the higher figure): each is marked in the
    /// table by a conditional write and raised by the process that marked it
    /// ([`retry_marks`](Self::retry_marks)). `spent` is the receipts' sum,
    /// `unpriced` what the item's enforced budget was charged beyond them for
    /// calls not fully priced: an enforced budget counts both, an alerting one
    /// the receipts only, as each process's own budgets do (the charge is the
    /// enforced budget's floor, not spend an alerting budget of the scope was
    /// ever charged).
    fn keep_passed(&self, pk: &str, sk: &str, spent: i128, unpriced: i128) {
        let shared = &self.shared;
        let Some((period, start, "")) = keys::period_of_sk(sk) else {
            return;
        };
        for (i, (budget, budget_pk)) in shared.specs.iter().enumerate() {
            if budget_pk != pk || budget.period() != period {
                continue;
            }
            let Some(limit) = to_pico(budget.limit_usd()) else {
                continue;
            };
            let spent = match budget.mode() {
                BudgetMode::Enforce => spent.saturating_add(unpriced),
                BudgetMode::Alert => spent,
            };
            for (bit, percent) in ALERT_THRESHOLDS.iter().enumerate() {
                if self.alerted(i, start, bit) || !passes(spent, limit, *percent) {
                    continue;
                }
                self.keep_mark(PendingMark {
                    pk: pk.to_owned(),
                    sk: sk.to_owned(),
                    budget: i,
                    start,
                    bit,
                    spent,
                });
            }
        }
    }

    /// Whether this process knows threshold `bit` of the budget at `index` in
    /// the period starting at `start` to be marked in the table.
    fn alerted(&self, index: usize, start: DateTime<Utc>, bit: usize) -> bool {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.alerted.get(&(index, start)).copied().unwrap_or(0) & (1 << bit) != 0
    }

    /// Marks `mark`'s threshold in the table, and raises its alert if this
    /// process's write marked it. Marked per budget: another budget of the
    /// scope and period (another limit, or an alerting one beside an enforced
    /// one) has its own.
    async fn mark(&self, mark: &PendingMark) -> std::result::Result<(), TableError> {
        let shared = &self.shared;
        let Some((budget, _)) = shared.specs.get(mark.budget) else {
            return Ok(());
        };
        let (Some(limit), Some(percent)) = (
            to_pico(budget.limit_usd()),
            ALERT_THRESHOLDS.get(mark.bit).copied(),
        ) else {
            return Ok(());
        };
        let name = table::alert_mark(budget.mode(), limit);
        let marked = self.counted(
            shared
                .table
                .mark_alert(&mark.pk, &mark.sk, &name, percent, &shared.process)
                .await,
        )?;
        self.answered(MARKING);
        {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            *state.alerted.entry((mark.budget, mark.start)).or_default() |= 1 << mark.bit;
        }
        // Not twice in this process: it may have raised it from its own spend
        // while the table could not be written.
        if marked
            && !shared
                .budgets
                .note_fleet_alert(mark.budget, mark.start, mark.bit)
        {
            budget.raise(&mark.alert(budget, percent, false));
        }
        Ok(())
    }

    /// Keeps a mark to write, tried at each flush and at shutdown until it is
    /// written (once per threshold, with the highest figure).
    fn keep_mark(&self, mark: PendingMark) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.unmarked.iter_mut().find(|m| m.is_of(&mark)) {
            Some(kept) => kept.spent = kept.spent.max(mark.spent),
            None => state.unmarked.push(mark),
        }
    }

    /// Tries the marks kept, once each: a threshold passed once is marked (and
    /// its alert raised) though no later flush writes its item again. Each
    /// stays kept until its mark is answered, while it is tried too: a try
    /// cut short (shutdown's time up, a flush dropped) leaves it kept. Once
    /// the table is unreachable, the rest are left for the next time.
    async fn retry_marks(&self) {
        let marks = {
            let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.unmarked.clone()
        };
        for mark in marks {
            if self.alerted(mark.budget, mark.start, mark.bit) {
                self.forget_mark(&mark); // marked since
                continue;
            }
            match self.mark(&mark).await {
                Ok(()) => self.forget_mark(&mark),
                Err(err) => {
                    self.warn(&err, MARKING);
                    if err.kind == Failure::Unreachable {
                        break;
                    }
                }
            }
        }
    }

    /// Drops the kept mark of `mark`'s threshold: written.
    fn forget_mark(&self, mark: &PendingMark) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.unmarked.retain(|kept| !kept.is_of(mark));
    }

    /// Whether some threshold passed could not be marked yet.
    fn marks_unwritten(&self) -> bool {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        !state.unmarked.is_empty()
    }

    /// At shutdown: tries the marks not written yet until `deadline`, then
    /// raises the alerts of those still not written from this process, marked
    /// [`process_local`](BudgetAlert::process_local) (no process of the fleet
    /// may ever write the item again this period: the alert would be lost for
    /// the whole fleet; another process that writes it may raise it too).
    async fn last_marks(&self, deadline: tokio::time::Instant) {
        let shared = &self.shared;
        while self.marks_unwritten() && tokio::time::Instant::now() < deadline {
            if tokio::time::timeout_at(deadline, self.retry_marks())
                .await
                .is_err()
            {
                break;
            }
            if self.marks_unwritten() {
                let next = tokio::time::Instant::now() + Duration::from_millis(200);
                tokio::time::sleep_until(next.min(deadline)).await;
            }
        }
        let left = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut state.unmarked)
        };
        for mark in left {
            let Some((budget, _)) = shared.specs.get(mark.budget) else {
                continue;
            };
            let Some(percent) = ALERT_THRESHOLDS.get(mark.bit).copied() else {
                continue;
            };
            tracing::warn!(target: "sagemeter::fleet", table = %shared.table.name,
                scope = %budget.scope(), threshold_percent = percent,
                "a budget alert could not be marked in the fleet table by shutdown; \
                 raised by this process alone, and another process of the fleet may raise it too");
            if !shared
                .budgets
                .note_fleet_alert(mark.budget, mark.start, mark.bit)
            {
                budget.raise(&mark.alert(budget, percent, true));
            }
        }
    }

    /// Counts a failed flush on each item of `failed`; for the budgets kept in
    /// those the table refused (missing, access denied) or has not acknowledged
    /// for [`LOCAL_ALERTS_AFTER`] flushes, raises the alerts this process's
    /// own spend passes: the fleet cannot mark them, and a budget must not stay
    /// silent meanwhile. Each is marked as this process's alone.
    fn raise_local_alerts(
        &self,
        failed: Vec<(String, String, Option<Failure>)>,
        now: DateTime<Utc>,
    ) {
        let shared = &self.shared;
        let mut local = Vec::new();
        {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            for (pk, sk, kind) in failed {
                let Some(item) = state
                    .items
                    .get_mut(pk.as_str())
                    .and_then(|m| m.get_mut(sk.as_str()))
                else {
                    continue;
                };
                item.failed_flushes = item.failed_flushes.saturating_add(1);
                let refused = matches!(
                    kind,
                    Some(Failure::NoTable | Failure::Denied | Failure::Other)
                );
                if refused || item.failed_flushes >= LOCAL_ALERTS_AFTER {
                    local.push((pk, sk));
                }
            }
        }
        for (pk, sk) in local {
            let Some((period, start, "")) = keys::period_of_sk(&sk) else {
                continue;
            };
            for (i, (budget, budget_pk)) in shared.specs.iter().enumerate() {
                if *budget_pk == pk
                    && budget.period() == period
                    && budget.period().start_of(now) == start
                {
                    shared.budgets.raise_local(i, now);
                }
            }
        }
    }

    /// Drops spend items of periods that have ended and are fully written.
    fn forget_past(&self, now: SystemTime) {
        let now: DateTime<Utc> = now.into();
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        for items in state.items.values_mut() {
            items.retain(|_, item| {
                item.period_end > now
                    || item.unacked.is_some()
                    || !item.pending.is_empty()
                    || !item.unconfirmed.is_empty()
                    || item.lease.is_some()
                    || item.lease_unanswered
            });
        }
        state.items.retain(|_, items| !items.is_empty());
        // Marks of periods that began more than a month ago are done with.
        let month_ago = now - chrono::TimeDelta::days(32);
        state.alerted.retain(|(_, start), _| *start > month_ago);
        state.unmarked.retain(|mark| mark.start > month_ago);
    }

    /// Leases what a call short of its process's leases needs, and reserves the
    /// call: `reserve` is the call's reservation, tried again under the lock
    /// (and, if the wait ends before its turn comes, without it: what it is
    /// short of then is what the table's answer lets through). An error is the
    /// call's refusal.
    ///
    /// Calls short at once queue on one lock; each, in its turn, first tries its
    /// reservation again, so a lease an earlier one took that covers it too is
    /// not taken again, and then leases only what it is still short of. The
    /// whole wait, in the queue and for the table, is at most `lease_wait` from
    /// when the call began to wait.
    pub(crate) async fn lease<R>(
        &self,
        mut reserve: impl FnMut() -> std::result::Result<R, Refusal>,
    ) -> Result<R> {
        let shared = &self.shared;
        let deadline = deadline_after(tokio::time::Instant::now(), shared.config.lease_wait);
        let Ok(_one) = tokio::time::timeout_at(deadline, shared.leasing.lock()).await else {
            // The leases ahead of this call took the whole wait: the table is too
            // slow. This call sent nothing. What it is short of is worked out
            // again: the calls ahead may have counted as leased (or leased)
            // what it was short of when it began to wait.
            let wants = match reserve() {
                Ok(reservation) => return Ok(reservation),
                Err(Refusal::Exceeded(err)) => return Err(err),
                Err(Refusal::Short(wants, _)) => wants,
            };
            for want in &wants {
                self.refuse_if_shut_down(want)?;
            }
            self.unavailable(&wants, self.no_answer())?;
            return reserve().map_err(Refusal::into_error);
        };
        // Each round leases what the call is still short of; calls that did not
        // wait may take the new room before this one reserves it, hence a few.
        for _ in 0..LEASE_ROUNDS {
            let wants = match reserve() {
                Ok(reservation) => return Ok(reservation),
                Err(Refusal::Exceeded(err)) => return Err(err),
                Err(Refusal::Short(wants, _)) => wants,
            };
            self.lease_wants(&wants, deadline).await?;
        }
        reserve().map_err(Refusal::into_error)
    }

    /// The error of a lease that found no answer within `lease_wait`.
    fn no_answer(&self) -> TableError {
        TableError {
            kind: Failure::Unreachable,
            message: format!("no answer within {:?}", self.shared.config.lease_wait),
            maybe_applied: true,
        }
    }

    /// The refusal of a call short of `want` once the meter is shut down: no
    /// flush would write its spend or give a new lease back, so it is neither
    /// leased nor let through (`WhenUnavailable::Allow`).
    fn refuse_if_shut_down(&self, want: &LeaseWant) -> Result<()> {
        let shared = &self.shared;
        let Some((budget, _)) = shared.specs.get(want.budget) else {
            return Ok(());
        };
        if shared.closed.load(Ordering::SeqCst) {
            return Err(Error::BudgetUnavailable {
                scope: budget.scope().clone(),
                period: budget.period(),
                reason: crate::error::SHUT_DOWN_UNAVAILABLE.into(),
            });
        }
        Ok(())
    }

    /// Leases `wants`, each from the fleet's budget, answered by `deadline`.
    async fn lease_wants(&self, wants: &[LeaseWant], deadline: tokio::time::Instant) -> Result<()> {
        let shared = &self.shared;
        for want in wants {
            let Some((budget, pk)) = shared.specs.get(want.budget) else {
                continue;
            };
            self.refuse_if_shut_down(want)?;
            // What the lease counted as leased before its request: no longer
            // short, and not granted again if the table does not answer.
            let mut counted = Decimal::ZERO;
            let outcome = tokio::time::timeout_at(
                deadline,
                self.lease_one(
                    want.budget,
                    budget,
                    pk,
                    want.period_start,
                    want.needed,
                    &mut counted,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(LeaseFailure::Table(self.no_answer())));
            match outcome {
                Ok(()) => {
                    self.answered(LEASING);
                }
                Err(LeaseFailure::NoRoom { spent, unspent }) => {
                    self.answered(LEASING);
                    return Err(Error::BudgetExceeded {
                        scope: budget.scope().clone(),
                        period: budget.period(),
                        fleet_wide: true,
                        estimate: want.estimate,
                        limit: budget.limit_usd(),
                        spent: from_pico(spent),
                        reserved: from_pico(unspent),
                    });
                }
                Err(LeaseFailure::Table(err)) => {
                    let short = LeaseWant {
                        needed: (want.needed - counted).max(Decimal::ZERO),
                        ..want.clone()
                    };
                    self.unavailable(&[short], err)?;
                }
            }
        }
        Ok(())
    }

    /// The table did not answer a lease for `wants`: the call's refusal
    /// ([`WhenUnavailable::Refuse`], or once the meter is shutting down), or
    /// `Ok` with what it wants granted as if leased
    /// ([`WhenUnavailable::Allow`]). (A request that may have been
    /// applied is remembered by [`lease_one`](Self::lease_one).)
    fn unavailable(&self, wants: &[LeaseWant], err: TableError) -> Result<()> {
        let shared = &self.shared;
        self.warn(&err, LEASING);
        for want in wants {
            let Some((budget, _)) = shared.specs.get(want.budget) else {
                continue;
            };
            match shared.config.when_unavailable {
                // Nothing short (counted as leased before the request): no
                // room granted.
                WhenUnavailable::Allow if want.needed <= Decimal::ZERO => {}
                WhenUnavailable::Allow => {
                    // Once shutdown() has begun, no flush would write what the
                    // call spends: refused, as when its turn never came.
                    self.refuse_if_shut_down(want)?;
                    // Spend the fleet does not know of yet: written when it answers.
                    let until = DateTime::<Utc>::from(shared.time.now())
                        .checked_add_signed(
                            chrono::TimeDelta::from_std(shared.config.lease_ttl)
                                .unwrap_or_default(),
                        )
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    shared
                        .budgets
                        .allow(want.budget, want.period_start, want.needed, until);
                }
                WhenUnavailable::Refuse => {
                    return Err(Error::BudgetUnavailable {
                        scope: budget.scope().clone(),
                        period: budget.period(),
                        reason: err.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn lease_one(
        &self,
        index: usize,
        budget: &Budget,
        pk: &str,
        period_start: DateTime<Utc>,
        needed: Decimal,
        counted: &mut Decimal,
    ) -> Result<(), LeaseFailure> {
        let shared = &self.shared;
        let sk = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.period_sk(budget.period(), period_start)
        };
        if self.write_before_lease(pk, &sk).await? {
            // Its lapsed lease renewed: the call may fit in it now.
            return Ok(());
        }
        // What the writes added to the item apart from any lease is no room
        // to ask the table for again: the shortfall is worked out after them.
        // (A lease's share is still asked for when that leaves nothing short:
        // calls settling meanwhile, through the SDK hook, would leave the call
        // short again.)
        // Set before the request is sent: a lease dropped at the end of its
        // wait has counted it too.
        *counted = self.count_written(index, pk, &sk, period_start);
        let needed = (needed - *counted).max(Decimal::ZERO);
        let limit = to_pico(budget.limit_usd()).unwrap_or(i128::MAX / 4);
        let needed = to_pico(needed).unwrap_or(limit).max(1);
        let chunk = (limit.saturating_mul(i128::from(shared.config.lease_percent)) / 100)
            .max(needed)
            .min(limit);
        let end = budget.period().end_of(period_start);
        let mut amount = chunk;
        let mut reclaimed = false;
        let mut seen = (0, 0);
        // Each round is one request; other processes taking the room left between
        // two of them could make this go on, so it gives up after a few.
        for _ in 0..4 {
            let now_ms = epoch_ms(shared.time.now());
            let until_ms = now_ms.saturating_add(millis(shared.config.lease_ttl));
            // The request may be applied with its answer never heard of (lost,
            // or this call dropped while it waits): the table may then hold a
            // lease of this process that it does not know of. Marked so before
            // it is sent; a definite answer puts the mark back as it was.
            let (seq, before) = {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                state.seq += 1;
                let seq = state.seq;
                let item = state.item(pk, &sk, || Item::spend(end));
                let before = (item.lease_unanswered, item.marked);
                item.mark_unanswered();
                item.marked = true;
                (seq, before)
            };
            let answer = self.counted(
                shared
                    .table
                    .lease(
                        pk,
                        &sk,
                        &shared.process,
                        seq,
                        amount,
                        limit,
                        until_ms,
                        expires_at(end),
                    )
                    .await,
            );
            let applied_nothing = match &answer {
                Ok(Leased::NoRoom(_)) => true,
                Ok(Leased::Granted { .. }) => false, // `granted` clears the mark
                Err(err) => !err.maybe_applied,
            };
            if applied_nothing {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(item) = state.items.get_mut(pk).and_then(|m| m.get_mut(sk.as_str())) {
                    (item.lease_unanswered, item.marked) = before;
                }
            }
            let answer = answer.map_err(LeaseFailure::Table)?;
            let item = match answer {
                Leased::Granted { granted, used } => {
                    self.granted(
                        index,
                        pk,
                        &sk,
                        period_start,
                        end,
                        amount,
                        (granted, used),
                        until_ms,
                    );
                    return Ok(());
                }
                Leased::NoRoom(item) => item,
            };
            let leases = table::leases_in(&item);
            if self.found_grant(index, pk, &sk, period_start, end, &leases, now_ms) {
                return Ok(());
            }
            // No room for `amount`: lease what is left if the call fits in it,
            // else end the lapsed leases of processes that are gone, once.
            let committed = table::int(&item, table::COMMITTED).unwrap_or(0);
            let spent = table::int(&item, table::SPENT).unwrap_or(0);
            // Leased and not spent yet, by every process (its own included).
            let unspent = leases.iter().fold(0i128, |sum, l| {
                sum.saturating_add(l.granted.saturating_sub(l.used).max(0))
            });
            seen = (spent, unspent);
            let room = limit.saturating_sub(committed);
            if room >= needed && room < amount {
                amount = room;
                continue;
            }
            if reclaimed {
                return Err(LeaseFailure::NoRoom { spent, unspent });
            }
            reclaimed = true;
            let mut returned = false;
            // A lease's end is on its holder's clock, which may be behind this
            // one by the skew allowed: taken back only once past that too.
            let lapsed_before = now_ms.saturating_sub(millis(shared.config.clock_skew));
            for lease in leases {
                if lease.process == shared.process || lease.until_ms >= lapsed_before {
                    continue;
                }
                let ended = self
                    .counted(shared.table.end_lease(pk, &sk, &lease).await)
                    .map_err(LeaseFailure::Table)?;
                match ended {
                    LeaseEnd::Ended => {
                        tracing::info!(target: "sagemeter::fleet", scope = %budget.scope(),
                            unused_usd = %from_pico(lease.granted.saturating_sub(lease.used)),
                            "ended the lapsed lease of a process that is gone");
                        returned = true;
                    }
                    // Gone: ended by this request (the SDK's retry of one whose
                    // answer was lost finds it so) or by another process. Either
                    // way the room may have come back: the next request says.
                    LeaseEnd::Changed(None) => returned = true,
                    LeaseEnd::Changed(Some(_)) => {}
                }
            }
            if !returned {
                return Err(LeaseFailure::NoRoom { spent, unspent });
            }
            amount = chunk;
        }
        Err(LeaseFailure::NoRoom {
            spent: seen.0,
            unspent: seen.1,
        })
    }

    /// Takes up, as room on the lease held, a grant the table made this
    /// process that it does not count: a request applied with its answer
    /// never read (`lease_unanswered`), the budget then too near its limit for
    /// the next request to be granted. `leases` are those of the budget's item
    /// as a no-room answer holds it; what it holds granted to this process beyond
    /// what this process counts is this process's to spend (and to give
    /// back). Only while the lease held has not reached its end as the table
    /// holds it (`now_ms`, this process's clock): no other process can have
    /// reclaimed it (each waits for its end and the clock skew allowed too),
    /// so the item's grant is that lease's, not a new one a request made
    /// after a reclaim. `true`: taken up.
    #[allow(clippy::too_many_arguments)]
    fn found_grant(
        &self,
        index: usize,
        pk: &str,
        sk: &str,
        period_start: DateTime<Utc>,
        end: DateTime<Utc>,
        leases: &[LeaseHeld],
        now_ms: i64,
    ) -> bool {
        let shared = &self.shared;
        let Some(held) = leases.iter().find(|lease| lease.process == shared.process) else {
            return false;
        };
        {
            let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(item) = state.items.get(pk).and_then(|m| m.get(sk)) else {
                return false;
            };
            let Some(lease) = item.lease.as_ref() else {
                return false;
            };
            if !item.lease_unanswered || lease.until_ms < now_ms || held.granted <= lease.granted {
                return false;
            }
        }
        // More of the lease held: `granted` counts the difference as found
        // (nothing asked now) and clears the mark.
        self.granted(
            index,
            pk,
            sk,
            period_start,
            end,
            0,
            (held.granted, Some(held.used)),
            held.until_ms,
        );
        true
    }

    /// Writes what this process recorded in the item before a new lease of it
    /// is asked for, when its lease of the item lapsed here (or it holds none):
    /// the fleet may have taken that lease back since, and then the spend is no
    /// lease's use and adds to what the budget has committed (the flush finds
    /// the lease gone). A lease granted first would make the table hold one of
    /// this process again, and the write, applied after it, would count the
    /// spend as the new lease's use, which this process still counts as room
    /// to spend: the fleet would overspend by it. A lapsed lease is renewed or
    /// found gone by the same flush.
    ///
    /// Only the spend recorded before the call began to wait is written first:
    /// calls settling meanwhile (through an SDK hook, or async invocations) add
    /// to the item at any time, and spend recorded after this began counts
    /// against the new lease here, as the table counts it when its write comes
    /// after the lease. Flushes (each after the one in progress) until that
    /// spend is acknowledged and no lease of the item lapsed here; stops at the
    /// first flush whose write of the item failed, and the lease then fails
    /// with that flush's failure and is not asked for. `Ok(true)`: a lease that
    /// lapsed here was renewed, so the call tries its reservation again before
    /// it leases more.
    async fn write_before_lease(&self, pk: &str, sk: &str) -> Result<bool, LeaseFailure> {
        let Some(through) = self.owed_before_lease(pk, sk) else {
            return Ok(false);
        };
        for _ in 0..FLUSHES_BEFORE_LEASE {
            self.flush().await;
            match self.still_owed(pk, sk, through) {
                Owed::Nothing { renewed } => return Ok(renewed),
                Owed::Failed => break,
                Owed::Written => {}
            }
        }
        let last = self
            .shared
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match last {
            // The table took every write of the last flush: what is left is
            // spend recorded since (or a renewal whose answer ended it at once),
            // counted against the new lease.
            None => Ok(false),
            Some((kind, message)) => Err(LeaseFailure::Table(TableError {
                kind,
                message,
                maybe_applied: false,
            })),
        }
    }

    /// Counts as leased by the budget at `index` the spend this process's
    /// writes added to its item (`pk`, `sk`) while it holds no lease of it:
    /// the table counts it apart from any lease (each lease's use when it
    /// ended, and what was written without one), so a new lease asks for none
    /// of it again. Only what is written and acknowledged, less what the item
    /// holds to write below $0 (charges taken back), is counted; spend not
    /// written yet may still be written as a new lease's use. Under the
    /// state's lock, so that no charge is between the budgets and the item
    /// meanwhile (see [`Budgets::handing_over`]). Returns what more the budget
    /// counts as leased.
    fn count_written(
        &self,
        index: usize,
        pk: &str,
        sk: &str,
        period_start: DateTime<Utc>,
    ) -> Decimal {
        let shared = &self.shared;
        let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(item) = state.items.get(pk).and_then(|m| m.get(sk)) else {
            return Decimal::ZERO;
        };
        if item.lease.is_some() {
            return Decimal::ZERO;
        }
        let written = item.less_taken_back(item.written);
        let counted = shared
            .budgets
            .count_written(index, period_start, from_pico(written));
        drop(state);
        if counted > Decimal::ZERO {
            tracing::debug!(target: "sagemeter::fleet", item = %sk, counted_usd = %counted,
                "spend written without a lease counted as leased");
        }
        counted
    }

    /// What of the item must be written before a new lease of it is asked
    /// for: `None` when its lease holds (or nothing was recorded in it),
    /// else the sequence number up to which its writes must be acknowledged
    /// (its write not acknowledged yet, or the next one, which takes what it
    /// holds unwritten), with whether a lease of it lapsed here.
    fn owed_before_lease(&self, pk: &str, sk: &str) -> Option<(u64, bool)> {
        let now = DateTime::<Utc>::from(self.shared.time.now());
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let item = state.items.get(pk).and_then(|m| m.get(sk))?;
        let used = |d: &Delta| d.spent != 0 || d.unpriced != 0;
        let lapsed = match &item.lease {
            Some(lease) if self.local_until(lease.until_ms) > now => return None,
            Some(_) => true,
            None => false,
        };
        let through = if used(&item.pending) {
            // Taken whole by the item's next write, numbered after any so far.
            state.seq.saturating_add(1)
        } else {
            match &item.unacked {
                Some((seq, delta)) if used(delta) => *seq,
                _ => 0,
            }
        };
        (lapsed || through > item.acked_seq).then_some((through, lapsed))
    }

    /// Whether what [`owed_before_lease`](Self::owed_before_lease) found is
    /// written, after a flush.
    fn still_owed(&self, pk: &str, sk: &str, (through, lapsed): (u64, bool)) -> Owed {
        let now = DateTime::<Utc>::from(self.shared.time.now());
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(item) = state.items.get(pk).and_then(|m| m.get(sk)) else {
            return Owed::Nothing { renewed: false };
        };
        let done = match &item.lease {
            // Renewed (or leased by another call meanwhile): what is not
            // written yet is written as its use, and counted so here.
            Some(lease) if self.local_until(lease.until_ms) > now => {
                return Owed::Nothing { renewed: lapsed };
            }
            Some(_) => false,
            None => item.acked_seq >= through,
        };
        if done {
            Owed::Nothing { renewed: false }
        } else if item.failed_flushes > 0 {
            Owed::Failed
        } else {
            Owed::Written
        }
    }

    /// `amount` was leased, and the item now holds `granted` in all for this
    /// process: more than this process had counted when an earlier request was
    /// applied but its answer came too late (after `lease_wait`), and that part is
    /// this process's to spend (and to give back) too.
    #[allow(clippy::too_many_arguments)]
    fn granted(
        &self,
        index: usize,
        pk: &str,
        sk: &str,
        period_start: DateTime<Utc>,
        end: DateTime<Utc>,
        amount: i128,
        (granted, used): (i128, Option<i128>),
        until_ms: i64,
    ) {
        let shared = &self.shared;
        let (added, new_lease, anew) = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let item = state.item(pk, sk, || Item::spend(end));
            item.marked = true;
            // More of a lease held (even one lapsed here: the table may still
            // hold it whole), or a new one: none held, or the item's grant
            // less than the held lease's and this request's together (the
            // held one was reclaimed, and the request made a new lease,
            // `granted` all of it).
            let new_lease = item
                .lease
                .as_ref()
                .is_none_or(|held| granted < held.granted.saturating_add(amount));
            // The held one reclaimed: the new lease's use may hold writes
            // this process counted as the old one's (spend from before the
            // old one lapsed, written after the reclaim). The table counts
            // for this process what its writes added before the request was
            // applied (at least the least they added since it went out),
            // and the new grant: its budget's lease is that (not what it
            // held and the grant together, which would count that use
            // twice). What the answer says of the use is as of then.
            let anew = (new_lease && item.lease.is_some()).then(|| {
                // Less a take-back written and not acknowledged (the table
                // may have applied it, its answer not read yet), remembered
                // to give back if its write is applied later as the new
                // lease's use. Not one still to write: never applied, the
                // next write applies it as the new lease's use.
                let taken_back = item.unacked_taken_back();
                let before = match item.lease_unanswered {
                    true => item.unanswered_written.min(item.written),
                    false => item.written,
                };
                let before = before.saturating_sub(taken_back.map_or(0, |(_, taken)| taken));
                (
                    used.unwrap_or(0),
                    before.saturating_add(granted),
                    taken_back,
                )
            });
            if new_lease {
                item.lease = None;
            }
            let lease = item.lease.get_or_insert(Lease {
                budget: index,
                period_start,
                granted: 0,
                used_written: anew.map_or(0, |(used, ..)| used),
                until_ms,
                taken_back: anew.and_then(|(.., taken_back)| taken_back),
            });
            let added = granted.saturating_sub(lease.granted).max(amount);
            lease.granted = lease.granted.saturating_add(added);
            lease.until_ms = until_ms;
            item.lease_unanswered = false;
            (added, new_lease, anew.map(|(_, leased, _)| leased))
        };
        if shared.closed.load(Ordering::SeqCst) {
            // Granted while the meter shut down: no flush would renew it or
            // write what it paid for. Not spent; `shutdown()` (which waits for
            // this request) gives it back with the others.
            tracing::debug!(target: "sagemeter::fleet", item = %sk, amount,
                "lease granted after shutdown began; given back, not spent");
            return;
        }
        if added > amount {
            tracing::info!(target: "sagemeter::fleet", item = %sk,
                found_usd = %from_pico(added - amount),
                "found a lease granted earlier whose answer came too late; it is used now");
        }
        tracing::debug!(target: "sagemeter::fleet", item = %sk, amount, "lease granted");
        match anew {
            Some(leased) => shared.budgets.lease_anew(
                index,
                period_start,
                from_pico(leased),
                self.local_until(until_ms),
            ),
            None => shared.budgets.grant(
                index,
                period_start,
                from_pico(added),
                self.local_until(until_ms),
                new_lease,
            ),
        }
    }

    /// Some item holds standing rates not written yet, or still to compare
    /// with the table's.
    fn rates_to_write(&self) -> bool {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .items
            .values()
            .flat_map(|m| m.values())
            .any(|item| !item.pending.rates.is_empty() || !item.unconfirmed.is_empty())
    }

    /// Final flush (retried until `deadline`), then every lease's unused part
    /// given back. While the flush leaves items unwritten, the leases of the
    /// items written are given back after each try (not after one that found the
    /// table unreachable), and those of the others kept, to lapse at their TTL. A
    /// try still running when three quarters of the time are up is cut off there,
    /// while such leases are held, to give them back in the last quarter. The
    /// error counts every lease kept. Problems are described, never fatal.
    pub(crate) async fn shutdown(&self, timeout: Duration) -> Vec<String> {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        shared.stop.notify_waiters();
        // However long `timeout` is (`Duration::MAX`: no limit).
        let start = tokio::time::Instant::now();
        let deadline = deadline_after(start, timeout);
        // The last quarter of the time, kept for giving back the leases whose use
        // is written when a try of the flush would take it all (a table slow to
        // answer the write of another item may answer these at once): once.
        let give_back_from = deadline - (deadline - start) / 4;
        let mut cut_for_give_back = false;
        // A lease request in flight (its call was past the `closed` check) ends
        // first: a lease it is granted now is not spent, and is given back below
        // with the others instead of staying leased to a process that is gone.
        // No new request starts once this is held (`closed` refuses them).
        let _leasing = tokio::time::timeout_at(deadline, shared.leasing.lock())
            .await
            .ok();
        let mut problems = Vec::new();
        let mut written = false;
        // What the last try at giving back the leases whose use is written left
        // undone, while other items' writes failed.
        let mut not_given_back = Vec::new();
        let unreachable = || {
            matches!(
                *shared
                    .last_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
                Some((Failure::Unreachable, _))
            )
        };
        while tokio::time::Instant::now() < deadline {
            // Not against a table the last try found unreachable: the give-back
            // would wait as long, and the try cut off would be sent again.
            let until = if !cut_for_give_back
                && tokio::time::Instant::now() < give_back_from
                && !unreachable()
                && self.leases_held(true) > 0
            {
                give_back_from
            } else {
                deadline
            };
            match tokio::time::timeout_at(until, self.flush()).await {
                // The last answers may leave a standing rate to write.
                Ok(true) if self.rates_to_write() => {}
                Ok(true) => {
                    written = true;
                    break;
                }
                // Not past the deadline: the sinks' time comes after it.
                Ok(false) => {
                    // An item whose write failed keeps its lease, to lapse at its
                    // TTL as a crashed process's does: its use is not in the table,
                    // and until then the fleet counts its whole grant committed,
                    // the unwritten spend within it. Those whose use is written go
                    // back now, not held until their TTL for want of the others.
                    // Not against a table the writes found unreachable: each
                    // would wait as long, taking the time the writes have to be
                    // tried again.
                    //
                    // After a throttled try too, though the give-backs go to the
                    // table the unwritten writes are retried on, within the same
                    // time: they are few (one a lease whose use is written, and a
                    // lease given back is not sent again), to items other than
                    // those being written, and a lease held for nothing keeps the
                    // fleet's other processes from its budget until lease_ttl +
                    // clock_skew, where an unwritten item's spend stays covered by
                    // its own lease, kept meanwhile, if its write comes late.
                    not_given_back = if unreachable() {
                        match self.leases_held(true) {
                            0 => Vec::new(),
                            n => vec![format!(
                                "{n} fleet lease(s) whose use is written not given back: the \
                                 table did not answer; each lapses lease_ttl after its last \
                                 renewal, and the fleet takes it back then"
                            )],
                        }
                    } else {
                        self.give_back(GiveBack::Written, deadline).await
                    };
                    let next = tokio::time::Instant::now() + Duration::from_millis(200);
                    tokio::time::sleep_until(next.min(deadline)).await;
                }
                // Cut off to give back the leases whose use is written: then the
                // flush is tried again with what time is left.
                Err(_) if until < deadline => {
                    cut_for_give_back = true;
                    not_given_back = self.give_back(GiveBack::Written, deadline).await;
                }
                Err(_) => break,
            }
        }
        // No flush after this one: what is recorded from now on stays here.
        shared.shut_down.store(true, Ordering::SeqCst);
        if !written {
            let why = shared
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map_or_else(
                    || format!(" within {timeout:?}"),
                    |(_, failure)| format!(" (the last write: {failure})"),
                );
            // Every lease still held: those whose use is not written, and those
            // whose use is written that could not be given back (the table did
            // not answer, or the time was up).
            let (unwritten, written) = (self.leases_held(false), self.leases_held(true));
            let whose = match (unwritten, written) {
                (1, 0) => "its use is not written".to_owned(),
                (_, 0) => "their use is not written".to_owned(),
                (0, 1) => "its use is written, but it could not be given back".to_owned(),
                (0, _) => "their use is written, but they could not be given back".to_owned(),
                (u, w) => format!(
                    "{u} whose use is not written, {w} whose use is written but that could \
                     not be given back"
                ),
            };
            let kept = match unwritten + written {
                0 => String::new(),
                1 => format!(
                    "; 1 lease of this process is kept, not given back ({whose}): it lapses \
                     lease_ttl after its last renewal, and the fleet takes it back then"
                ),
                n => format!(
                    "; {n} leases of this process are kept, not given back ({whose}): each \
                     lapses lease_ttl after its last renewal, and the fleet takes it back then"
                ),
            };
            problems.push(format!(
                "{} fleet item(s) not written to table `{}`{why}: their spend is counted in \
                 this process only{kept}",
                self.stats().unwritten_items,
                shared.table.name
            ));
            problems.extend(not_given_back);
        } else {
            problems.extend(self.give_back(GiveBack::All, deadline).await);
            self.unmark(deadline).await;
        }
        // Last: the leases matter more to the fleet than a mark.
        self.last_marks(deadline).await;
        problems
    }

    /// Removes this process's attributes (`seq:`, `lease_seq:`, `inflight:`,
    /// `inflight_at:`, `inflight_for:`) from every item it wrote whose writes are all acknowledged
    /// and that holds no lease of it, once shut down: an item keeps those only of
    /// the processes still running (or that crashed), not of every process that
    /// ever wrote it. Nothing is lost if this fails; a WARN says so.
    async fn unmark(&self, deadline: tokio::time::Instant) {
        let shared = &self.shared;
        let done: Vec<(String, String)> = {
            let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .items
                .iter()
                .flat_map(|(pk, items)| {
                    items.iter().filter_map(move |(sk, item)| {
                        let done = item.marked
                            && item.unacked.is_none()
                            && item.pending.is_empty()
                            && item.lease.is_none()
                            && !item.lease_unanswered;
                        done.then(|| (pk.clone(), sk.clone()))
                    })
                })
                .collect()
        };
        for (pk, sk) in done {
            let removed = tokio::time::timeout_at(
                deadline,
                shared.table.forget_process(&pk, &sk, &shared.process),
            )
            .await;
            match removed {
                Ok(removed) => match self.counted(removed) {
                    Ok(_) => {
                        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(item) = state
                            .items
                            .get_mut(pk.as_str())
                            .and_then(|m| m.get_mut(sk.as_str()))
                        {
                            item.marked = false;
                        }
                    }
                    Err(err) => self.warn(&err, "removing this process's attributes"),
                },
                Err(_) => return,
            }
        }
    }

    /// Leases (or lease requests never answered) this process holds on items
    /// whose writes are all acknowledged (`written`: their use is in the table)
    /// or not.
    fn leases_held(&self, written: bool) -> usize {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .items
            .values()
            .flat_map(|m| m.values())
            .filter(|item| {
                (item.lease.is_some() || item.lease_unanswered)
                    && (item.unacked.is_none() && item.pending.is_empty()) == written
            })
            .count()
    }

    /// Gives back what leases did not use: those `which` says. A lease that is
    /// gone or changed (reclaimed) is dropped too.
    async fn give_back(&self, which: GiveBack, deadline: tokio::time::Instant) -> Vec<String> {
        let shared = &self.shared;
        let leases: Vec<(String, String, LeaseHeld)> = {
            let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .items
                .iter()
                .flat_map(|(pk, items)| {
                    items.iter().filter_map(move |(sk, item)| {
                        let (granted, used, until_ms) = match &item.lease {
                            Some(l) => (l.granted, l.used_written, l.until_ms),
                            // A lease whose grant was never answered: ended as
                            // the item holds it (no lease has these figures).
                            None if item.lease_unanswered => (-1, -1, -1),
                            None => return None,
                        };
                        let written = item.unacked.is_none() && item.pending.is_empty();
                        let due = match which {
                            GiveBack::All => true,
                            GiveBack::Written => written,
                            GiveBack::EndedBy(now) => item.period_end <= now && written,
                        };
                        due.then(|| {
                            (
                                pk.clone(),
                                sk.clone(),
                                LeaseHeld {
                                    process: shared.process.clone(),
                                    granted,
                                    used,
                                    until_ms,
                                },
                            )
                        })
                    })
                })
                .collect()
        };
        let mut problems = Vec::new();
        for (pk, sk, lease) in leases {
            let ended =
                tokio::time::timeout_at(deadline, self.end_own_lease(&pk, &sk, &lease)).await;
            tracing::debug!(target: "sagemeter::fleet", item = %sk, granted = lease.granted,
                used = lease.used, ?ended, "lease given back");
            match ended {
                Ok(Ok(())) => {
                    let given_back = {
                        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        state
                            .items
                            .get_mut(pk.as_str())
                            .and_then(|m| m.get_mut(sk.as_str()))
                            .and_then(|item| {
                                item.lease_unanswered = false;
                                item.lease.take()
                            })
                    };
                    // The fleet may lease it to others now: this process's budget
                    // no longer counts on it either.
                    if let Some(lease) = given_back {
                        shared
                            .budgets
                            .renew(lease.budget, lease.period_start, Renewal::Gone);
                    }
                }
                Ok(Err(err)) => {
                    self.warn(&err, "giving back a lease");
                    // A request never answered (the table unreachable, say) may not
                    // have leased anything: not said to be a lease left stranded.
                    problems.push(if lease.granted < 0 {
                        format!(
                            "a fleet lease request was never answered, and could not be \
                             ended: if the table applied it, the lease lapses lease_ttl \
                             after it was made and the fleet takes it back: {err}"
                        )
                    } else {
                        format!("a fleet lease was not given back: {err}")
                    });
                }
                Err(_) => problems.push("a fleet lease was not given back in time".to_owned()),
            }
        }
        problems
    }

    /// Ends this process's `lease` of (`pk`, `sk`). When the item holds it
    /// otherwise than this process counted (a lease request applied after
    /// `lease_wait` gave up on it, or a write of its use whose answer was lost),
    /// the lease is ended as the item holds it: what the fleet has committed then
    /// ends equal to what was spent, whatever this process missed. `Ok` too when
    /// the lease is gone (reclaimed by another process after it lapsed).
    async fn end_own_lease(
        &self,
        pk: &str,
        sk: &str,
        lease: &LeaseHeld,
    ) -> std::result::Result<(), TableError> {
        let table = &self.shared.table;
        let mut held = lease.clone();
        // Once as counted here, then once as the item holds it.
        for _ in 0..2 {
            match self.counted(table.end_lease(pk, sk, &held).await)? {
                LeaseEnd::Ended | LeaseEnd::Changed(None) => return Ok(()),
                LeaseEnd::Changed(Some(now)) => held = now,
            }
        }
        Err(TableError {
            kind: Failure::Other,
            message: "the lease kept changing while it was given back".to_owned(),
            maybe_applied: false,
        })
    }

    pub(crate) fn stats(&self) -> FleetStats {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        FleetStats {
            requests: self.shared.requests.load(Ordering::Relaxed),
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            unwritten_items: state
                .items
                .values()
                .flat_map(|m| m.values())
                .filter(|i| i.unacked.is_some() || !i.pending.is_empty())
                .count(),
        }
    }
}

enum LeaseFailure {
    /// No room: the item's spend as of its last writes, and what its leases
    /// hold unspent.
    NoRoom {
        spent: i128,
        unspent: i128,
    },
    Table(TableError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Estimate, Priced, Reservation};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A table that takes every request and never answers.
    #[derive(Debug, Clone)]
    struct Silent;

    impl HttpConnector for Silent {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::new(std::future::pending())
        }
    }

    impl HttpClient for Silent {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// A fleet of `budgets` on a table that never answers.
    fn silent_fleet(config: FleetConfig, budgets: Vec<Budget>) -> (Fleet, Arc<Budgets>) {
        let conf = crate::fleet::table::test_config(SharedHttpClient::new(Silent)).build();
        let time = SharedTimeSource::default();
        let budgets = Arc::new(Budgets::new(budgets, true, time.clone()));
        let sdk_config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let fleet = Fleet::new(
            config.dynamodb_client(aws_sdk_dynamodb::Client::from_conf(conf)),
            &sdk_config,
            budgets.clone(),
            Totals::default(),
            time,
        );
        (fleet, budgets)
    }

    use aws_sdk_dynamodb::operation::update_item::{
        UpdateItemError, UpdateItemInput, UpdateItemOutput,
    };
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_mocks::MockResponse;

    /// What the scripted table answers to an `UpdateItem`.
    type Answer = MockResponse<UpdateItemOutput, UpdateItemError>;

    /// The value of the expression attribute name `#name` of a request.
    fn named<'a>(input: &'a UpdateItemInput, name: &str) -> Option<&'a str> {
        input
            .expression_attribute_names()
            .and_then(|names| names.get(name))
            .map(String::as_str)
    }

    /// An answer holding `attributes` (figures in pico-USD).
    fn attributes(attributes: &[(&str, i128)]) -> Answer {
        MockResponse::Output(
            UpdateItemOutput::builder()
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(name, n)| ((*name).to_owned(), AttributeValue::N(n.to_string())))
                        .collect(),
                ))
                .build(),
        )
    }

    /// A throttled request's answer, as DynamoDB gives it.
    fn throttled() -> Answer {
        use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
        let code = "ProvisionedThroughputExceededException";
        MockResponse::Error(UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("throttled (test)")
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code(code)
                        .message("throttled (test)")
                        .build(),
                )
                .build(),
        ))
    }

    /// The status of a scripted answer that never comes ([`unanswered`]).
    const UNANSWERED: u16 = 599;

    /// A request the table takes and never answers, as over a stalled
    /// connection: the SDK's attempt timeout (5 s) ends it, unless its caller
    /// gives up first.
    fn unanswered() -> Answer {
        MockResponse::Http(
            aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                UNANSWERED.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            ),
        )
    }

    /// The scripted table's HTTP client: the mock's, whose answers made by
    /// [`unanswered`] never come.
    #[derive(Debug)]
    struct Holding(SharedHttpClient);

    impl HttpClient for Holding {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(HoldingConnector(
                self.0.http_connector(settings, components),
            ))
        }
    }

    #[derive(Debug)]
    struct HoldingConnector(SharedHttpConnector);

    impl HttpConnector for HoldingConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let answer = self.0.call(request);
            HttpConnectorFuture::new(async move {
                let response = answer.await?;
                if response.status().as_u16() == UNANSWERED {
                    std::future::pending().await
                } else {
                    Ok(response)
                }
            })
        }
    }

    /// What a scripted `UpdateItem` is, for a test's record of the requests
    /// sent: `mark <percent>`, `lease`, `give back` (a lease's end), `forget`
    /// (this process's attributes removed) or `write` (increments).
    fn kind(input: &UpdateItemInput) -> String {
        let expression = input.update_expression().unwrap_or_default();
        match input
            .expression_attribute_values()
            .and_then(|v| v.get(":percent"))
        {
            Some(AttributeValue::N(percent)) => format!("mark {percent}"),
            _ if expression.starts_with("REMOVE") => "forget".to_owned(),
            _ if expression.contains("REMOVE #granted") => "give back".to_owned(),
            _ if expression.starts_with("SET") => "lease".to_owned(),
            _ => "write".to_owned(),
        }
    }

    /// A fleet of `budgets` on a table whose every `UpdateItem` is answered by
    /// `answer` (the SDK retrying none), on a clock that moves only when the
    /// test moves it, from `start`. Its flush loop is never started: the test
    /// flushes.
    fn scripted_fleet(
        config: FleetConfig,
        budgets: Vec<Budget>,
        start: DateTime<Utc>,
        answer: impl Fn(&UpdateItemInput) -> Answer + Send + Sync + 'static,
    ) -> (Fleet, Arc<Budgets>, ManualTimeSource) {
        use aws_smithy_mocks::create_mock_http_client;
        let rule = aws_smithy_mocks::mock!(aws_sdk_dynamodb::Client::update_item)
            .then_compute_response(answer);
        let client = crate::fleet::table::mocked_client(
            &rule,
            SharedHttpClient::new(Holding(create_mock_http_client())),
        );
        let clock = ManualTimeSource::new(start.into());
        let budgets = Arc::new(Budgets::new(
            budgets,
            true,
            SharedTimeSource::new(clock.clone()),
        ));
        let sdk_config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let fleet = Fleet::new(
            config.dynamodb_client(client),
            &sdk_config,
            budgets.clone(),
            Totals::default(),
            SharedTimeSource::new(clock.clone()),
        );
        // Taken for running: a receipt starts no flush loop.
        fleet.shared.started.store(true, Ordering::SeqCst);
        (fleet, budgets, clock)
    }

    /// Four $0.01 calls to chat reserved `at` within what is leased, and a
    /// fifth short of a lease: the four's reservations.
    fn four_calls_then_short(budgets: &Arc<Budgets>, at: DateTime<Utc>) -> Vec<Reservation> {
        let none = BTreeMap::new();
        let held = (0..4)
            .map(|i| {
                budgets
                    .reserve("chat", &none, at)
                    .unwrap_or_else(|_| panic!("call {i} within the lease"))
            })
            .collect();
        assert!(matches!(
            budgets.reserve("chat", &none, at),
            Err(Refusal::Short(..))
        ));
        held
    }

    /// A call to chat at `at`, short with nothing leased yet, leases and is
    /// settled at `usd`, recorded as the fleet's use (for the next flush).
    async fn spend_on_a_new_lease(
        fleet: &Fleet,
        budgets: &Arc<Budgets>,
        usd: &str,
        at: DateTime<Utc>,
    ) {
        let none = BTreeMap::new();
        let Err(Refusal::Short(..)) = budgets.reserve("chat", &none, at) else {
            panic!("nothing is leased yet: the call is short");
        };
        let call = fleet
            .lease(|| budgets.reserve("chat", &none, at))
            .await
            .unwrap();
        call.settle(&none, dec(usd), Priced::Fully, at);
        record(fleet, "chat", usd, at);
    }

    /// A receipt of `usd` for a call to `endpoint` at `at`, in the fleet's sums.
    fn record(fleet: &Fleet, endpoint: &str, usd: &str, at: DateTime<Utc>) {
        fleet.record(
            endpoint,
            None,
            &BTreeMap::new(),
            dec(usd),
            at.into(),
            None,
            true,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_renewed_in_time_when_lease_ttl_is_under_four_flush_intervals() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
        // Every lease request and every write of a lease's use is answered as
        // the table holds the lease: $0.05 (5 % of $1) granted to this process.
        // Each write's `lease_until` is noted, in seconds after t0.
        let renewals = Arc::new(Mutex::new(Vec::new()));
        let (fleet, budgets, clock) = {
            let renewals = renewals.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted")
                    .flush_every(Duration::from_secs(10))
                    .lease_ttl(Duration::from_secs(25)),
                vec![dollar_a_day()],
                t0,
                move |input| {
                    let Some(granted) = named(input, "#granted") else {
                        return attributes(&[]);
                    };
                    if input
                        .update_expression()
                        .is_some_and(|e| e.starts_with("ADD"))
                        && let Some(AttributeValue::N(until)) = input
                            .expression_attribute_values()
                            .and_then(|v| v.get(":until"))
                    {
                        let until_ms: i64 = until.parse().unwrap();
                        renewals
                            .lock()
                            .unwrap()
                            .push((until_ms - t0.timestamp_millis()) / 1000);
                    }
                    attributes(&[(granted, 50_000_000_000)])
                },
            )
        };
        // t = 0: a $0.01 call leases $0.05 (until 25 s; spent here until 15 s,
        // a flush interval before) and spends $0.01 of it; the flush writes it.
        spend_on_a_new_lease(&fleet, &budgets, "0.01", t0).await;
        assert!(fleet.flush().await);
        // t = 10 s: nothing to write, 15 s left of the lease. Left alone, it
        // would be spent here only until 15 s, and the next renewal (the flush
        // at 20 s) would come 5 s after: renewed now, until 10 + 25 = 35 s.
        clock.set_time(at(10).into());
        assert!(fleet.flush().await);
        // t = 16 s: the $0.04 left of the lease is this process's to spend,
        // four calls of $0.01 with no new lease; a fifth is short of one.
        let held = four_calls_then_short(&budgets, at(16));
        drop(held);
        assert_eq!(*renewals.lock().unwrap(), [25, 35]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lapsed_holds_charge_is_written_to_the_period_it_was_made_in_not_the_flushs() {
        use chrono::TimeZone;
        let t10 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let t11 = t10 + chrono::TimeDelta::hours(1);
        let before_11 = |ms: i64| t11 - chrono::TimeDelta::milliseconds(ms);
        // $1 an hour on the client, each async job estimated at $0.50.
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Hour, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.50") })
            .unwrap();
        // The table grants the whole $1 when asked; each write's charge beyond
        // the receipts (`unpriced_charge_pico`) is noted with its item's key.
        let charged = Arc::new(Mutex::new(Vec::new()));
        let (fleet, budgets, clock) = {
            let charged = charged.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![budget],
                t10,
                move |input| {
                    if let (Some(AttributeValue::S(sk)), Some(AttributeValue::N(n))) = (
                        input.key().and_then(|k| k.get("sk")),
                        input
                            .expression_attribute_values()
                            .and_then(|v| v.get(":unpriced")),
                    ) && n != "0"
                    {
                        charged.lock().unwrap().push((sk.clone(), n.clone()));
                    }
                    match named(input, "#granted") {
                        Some(granted) => attributes(&[(granted, 1_000_000_000_000)]),
                        None => attributes(&[]),
                    }
                },
            )
        };
        // 10:00: a job is submitted ($0 receipt), its $0.50 held until
        // 10:59:59.900.
        let none = BTreeMap::new();
        let mut job = fleet
            .lease(|| budgets.reserve("jobs", &none, t10))
            .await
            .unwrap();
        job.settle_part(&none, Decimal::ZERO, Priced::Fully, t10);
        job.expire_at(before_11(100), "job-1");
        // 10:59:59.950: its pending invocation is dropped after the lapse: the
        // $0.50 is charged as run, here in the 10:00 hour, and queued for the
        // fleet.
        clock.set_time(before_11(50).into());
        drop(job);
        assert_eq!(budgets.status(before_11(50))[0].spent_usd, dec("0.50"));
        // 11:00:00.100: the next flush hands it over. It goes to the 10:00
        // item, the hour it was charged in ($0.50 = 500,000,000,000 pico), not
        // to the 11:00 one (where the 10:00 hour would have been $0.50 short
        // and the 11:00 one $0.50 over).
        clock.set_time((t11 + chrono::TimeDelta::milliseconds(100)).into());
        fleet.flush().await;
        assert_eq!(
            *charged.lock().unwrap(),
            [(
                keys::period_sk(BudgetPeriod::Hour, t10),
                "500000000000".to_owned()
            )]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_alerting_budget_counts_the_receipts_not_an_enforced_budgets_unpriced_charge() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let pico = |usd: i128| usd * 1_000_000_000_000;
        // The endpoint's item of the day as the table returns it: the receipts'
        // sum and the enforced budget's charge beyond them.
        let item = Arc::new(Mutex::new((0i128, 0i128)));
        let raised = Arc::new(Mutex::new(Vec::new()));
        let watch = |budget: Budget| {
            let raised = raised.clone();
            budget.on_alert(move |a| {
                raised
                    .lock()
                    .unwrap()
                    .push((a.limit_usd, a.threshold_percent, a.spent_usd))
            })
        };
        let chat = || BudgetScope::endpoint("chat");
        // An alerting $20 and an enforced $25 a day on one endpoint.
        let budgets = vec![
            watch(Budget::alert(chat(), BudgetPeriod::Day, dec("20")).unwrap()),
            watch(
                Budget::enforce(chat(), BudgetPeriod::Day, dec("25"))
                    .unwrap()
                    .estimate(Estimate::Fixed { usd: dec("0.10") })
                    .unwrap(),
            ),
        ];
        let (fleet, _, _) = {
            let item = item.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                budgets,
                t0,
                move |input| {
                    let pk = input.key().and_then(|k| k.get("pk"));
                    let endpoint =
                        matches!(pk, Some(AttributeValue::S(pk)) if pk == "scope#endpoint:chat");
                    match (named(input, "#mark"), endpoint) {
                        // Every threshold's mark is this process's.
                        (Some(_), _) => attributes(&[]),
                        (None, true) => {
                            let (spent, unpriced) = *item.lock().unwrap();
                            attributes(&[(table::SPENT, spent), (table::UNPRICED, unpriced)])
                        }
                        (None, false) => attributes(&[]),
                    }
                },
            )
        };
        // 100 calls whose compute could not be priced: receipts of $0.02 each,
        // 100 × 0.02 = $2; the enforced budget counts each at its $0.10
        // estimate, charged 100 × (0.10 − 0.02) = $8 beyond the receipts.
        *item.lock().unwrap() = (pico(2), pico(8));
        record(&fleet, "chat", "2", t0);
        assert!(fleet.flush().await);
        // The enforced budget: 2 + 8 = $10 of $25, 40 %: no threshold. The
        // alerting one: $2 of $20, 10 %: none either (as without the fleet,
        // where it counts the receipts only), not $10, 50 %.
        assert_eq!(*raised.lock().unwrap(), []);
        // The receipts reach $10: the alerting budget is at 10 / 20 = 50 %; the
        // enforced one at 10 + 8 = $18 of $25, 72 %: past 50 %, short of 80 %
        // ($20).
        *item.lock().unwrap() = (pico(10), pico(8));
        record(&fleet, "chat", "8", t0);
        assert!(fleet.flush().await);
        assert_eq!(
            *raised.lock().unwrap(),
            [(dec("20"), 50, dec("10")), (dec("25"), 50, dec("18"))]
        );
    }

    /// Alerts as they are raised: (percent, spent, process-local).
    type Raised = Arc<Mutex<Vec<(u32, Decimal, bool)>>>;

    /// How the scripted table of [`alerting_at_80_40`] answers.
    struct Script {
        /// The answer to the 80 % mark.
        mark: fn() -> Answer,
        /// No request at all is answered while set.
        silent: bool,
        /// The requests sent, in order (see [`kind`]).
        sent: Vec<String>,
    }

    /// A process of a fleet with an alerting budget of $100 a month on the
    /// client, on a scripted table: the month's item holds $80.40 after its
    /// write; the 50 % threshold is marked already (by another process, when
    /// the fleet passed $50), and the 80 % mark is answered as `script` says
    /// (throttled to begin with). With the alerts it raises.
    fn alerting_at_80_40() -> (Fleet, Raised, Arc<Mutex<Script>>, DateTime<Utc>) {
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        let raised = Arc::new(Mutex::new(Vec::new()));
        let budget = {
            let raised = raised.clone();
            Budget::alert(BudgetScope::Client, BudgetPeriod::Month, dec("100"))
                .unwrap()
                .on_alert(move |a| {
                    raised
                        .lock()
                        .unwrap()
                        .push((a.threshold_percent, a.spent_usd, a.process_local))
                })
        };
        let script = Arc::new(Mutex::new(Script {
            mark: throttled,
            silent: false,
            sent: Vec::new(),
        }));
        let (fleet, _, _) = {
            let script = script.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![budget],
                t0,
                move |input| {
                    let mut script = script.lock().unwrap();
                    script.sent.push(kind(input));
                    if script.silent {
                        return unanswered();
                    }
                    let percent = input
                        .expression_attribute_values()
                        .and_then(|v| v.get(":percent"));
                    let month = matches!(
                        input.key().and_then(|k| k.get("sk")),
                        Some(AttributeValue::S(sk)) if sk.starts_with("month#")
                    );
                    match (percent, named(input, "#by")) {
                        (Some(AttributeValue::N(p)), Some(by)) if p == "50" => {
                            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                                ConditionalCheckFailedException::builder()
                                    .set_item(Some(
                                        [(by.to_owned(), AttributeValue::S("another".to_owned()))]
                                            .into(),
                                    ))
                                    .build(),
                            ))
                        }
                        (Some(_), _) => (script.mark)(),
                        // $80.40 in pico-USD.
                        (None, _) if month => attributes(&[(table::SPENT, 80_400_000_000_000)]),
                        (None, _) => attributes(&[]),
                    }
                },
            )
        };
        (fleet, raised, script, t0)
    }

    /// The 80 % mark is written.
    fn marked() -> Answer {
        attributes(&[])
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_whose_mark_was_throttled_is_marked_at_the_next_flush_though_nothing_is_written()
     {
        let (fleet, raised, script, t0) = alerting_at_80_40();
        // A call of $0.90 takes the month from $79.50 to $80.40: past 80 % of
        // $100 ($80). Its mark is throttled: nothing raised yet.
        record(&fleet, "chat", "0.90", t0);
        assert!(fleet.flush().await);
        assert_eq!(*raised.lock().unwrap(), []);
        // No call since, nothing to write: the next flush marks it all the same,
        // and this process raises it, at the spend that passed it.
        script.lock().unwrap().mark = marked;
        assert!(fleet.flush().await);
        assert_eq!(*raised.lock().unwrap(), [(80, dec("80.40"), false)]);
        // Once.
        assert_eq!(
            fleet.shutdown(Duration::from_secs(5)).await,
            Vec::<String>::new()
        );
        assert_eq!(raised.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_whose_mark_is_throttled_until_shutdown_is_raised_by_the_process() {
        let (fleet, raised, _, t0) = alerting_at_80_40();
        // The last run of a cron job: $79.50 to $80.40, past 80 % of $100, and
        // the mark is throttled until the process shuts down.
        record(&fleet, "chat", "0.90", t0);
        assert!(fleet.flush().await);
        let started = tokio::time::Instant::now();
        assert_eq!(
            fleet.shutdown(Duration::from_secs(5)).await,
            Vec::<String>::new()
        );
        // Tried until shutdown's time was up, then raised from this process (no
        // other may write the month's item again): said to be its alone.
        assert_eq!(*raised.lock().unwrap(), [(80, dec("80.40"), true)]);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_mark_still_unanswered_when_shutdown_runs_out_of_time_is_raised_by_the_process() {
        let (fleet, raised, script, t0) = alerting_at_80_40();
        // $79.50 to $80.40, past 80 % of $100 ($80): the mark is throttled.
        record(&fleet, "chat", "0.90", t0);
        assert!(fleet.flush().await);
        // From now on the table takes the mark and never answers: each try
        // ends at the SDK's 5 s attempt timeout, or when shutdown's 8 s are
        // up, whichever comes first. The second try begins at 5 s or later
        // and is cut short at 8 s, the mark still to be written then.
        script.lock().unwrap().mark = unanswered;
        let started = tokio::time::Instant::now();
        let problems = fleet.shutdown(Duration::from_secs(8)).await;
        assert_eq!(*raised.lock().unwrap(), [(80, dec("80.40"), true)]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_passed_by_shutdown_whose_mark_is_never_answered_is_raised_by_the_process()
    {
        let (fleet, raised, script, t0) = alerting_at_80_40();
        script.lock().unwrap().mark = unanswered;
        // The last run's only call: $79.50 to $80.40, written by shutdown's
        // flush, which passes 80 %; its mark is never answered, and
        // shutdown's 3 s end before the SDK's 5 s attempt timeout.
        record(&fleet, "chat", "0.90", t0);
        let started = tokio::time::Instant::now();
        let problems = fleet.shutdown(Duration::from_secs(3)).await;
        assert_eq!(*raised.lock().unwrap(), [(80, dec("80.40"), true)]);
        // Its flush wrote everything: the mark is tried after it, not in it.
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_whose_first_mark_was_cut_short_is_marked_at_the_next_flush() {
        let (fleet, raised, script, t0) = alerting_at_80_40();
        script.lock().unwrap().mark = unanswered;
        // $79.50 to $80.40 is written, passing 80 %; the flush is dropped
        // after 1 s, its mark still unanswered (a caller's own time limit on
        // flush_fleet).
        record(&fleet, "chat", "0.90", t0);
        let cut = tokio::time::timeout(Duration::from_secs(1), fleet.flush()).await;
        assert!(cut.is_err());
        assert_eq!(*raised.lock().unwrap(), []);
        // The threshold is still to be marked: the next flush, with nothing
        // to write, marks it and raises it, at the spend that passed it.
        script.lock().unwrap().mark = marked;
        assert!(fleet.flush().await);
        assert_eq!(*raised.lock().unwrap(), [(80, dec("80.40"), false)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_mark_is_tried_once_a_flush_though_the_flush_writes_its_item() {
        let (fleet, _, script, t0) = alerting_at_80_40();
        // $79.50 to $80.40, past 80 % of $100: tried once, throttled, kept.
        record(&fleet, "chat", "0.90", t0);
        assert!(fleet.flush().await);
        let count = |script: &Arc<Mutex<Script>>| {
            let sent = &script.lock().unwrap().sent;
            sent.iter().filter(|kind| *kind == "mark 80").count()
        };
        assert_eq!(count(&script), 1);
        // Another call of $0.10; the item read back still passes 80 % and the
        // mark is throttled again: this flush tries it once more, not twice
        // (kept from before, and passed again by the write).
        record(&fleet, "chat", "0.10", t0);
        assert!(fleet.flush().await);
        assert_eq!(count(&script), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_mark_is_not_tried_by_a_flush_whose_writes_found_the_table_unreachable() {
        let (fleet, _, script, t0) = alerting_at_80_40();
        // $79.50 to $80.40, past 80 % of $100: the mark is throttled, kept.
        record(&fleet, "chat", "0.90", t0);
        assert!(fleet.flush().await);
        // The table stops answering. A call of $0.10: the flush's first write
        // waits for the SDK's 5 s attempt timeout; the others are not sent,
        // nor is the mark (it would wait 5 s more).
        {
            let mut script = script.lock().unwrap();
            script.silent = true;
            script.sent.clear();
        }
        record(&fleet, "chat", "0.10", t0);
        let started = tokio::time::Instant::now();
        assert!(!fleet.flush().await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(script.lock().unwrap().sent, ["write"]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_the_leases_back_before_it_tries_the_marks_kept() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        // Every lease request and every write of the lease's use is answered
        // as the table holds $0.05 (5 % of $1) granted to this process; the
        // budget's item holds $0.80 spent after the write, every mark is
        // throttled.
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (fleet, budgets, _) = {
            let sent = sent.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![dollar_a_day()],
                t0,
                move |input| {
                    let kind = kind(input);
                    let answer = match (kind.as_str(), named(input, "#granted")) {
                        (mark, _) if mark.starts_with("mark") => throttled(),
                        ("lease", Some(granted)) => attributes(&[(granted, 50_000_000_000)]),
                        // $0.80 in pico-USD.
                        ("write", Some(granted)) => attributes(&[
                            (granted, 50_000_000_000),
                            (table::SPENT, 800_000_000_000),
                        ]),
                        _ => attributes(&[]),
                    };
                    sent.lock().unwrap().push(kind);
                    answer
                },
            )
        };
        // A $0.01 call leases $0.05 and spends $0.01 of it; the flush writes
        // it, and the budget's item holds $0.80: past 50 % and 80 % of $1.
        // Both marks are throttled and kept.
        spend_on_a_new_lease(&fleet, &budgets, "0.01", t0).await;
        assert!(fleet.flush().await);
        sent.lock().unwrap().clear();
        // At shutdown the lease goes back first (then this process's
        // attributes are removed); the marks are tried after, until its time
        // is up.
        assert_eq!(
            fleet.shutdown(Duration::from_secs(1)).await,
            Vec::<String>::new()
        );
        let sent = sent.lock().unwrap();
        let first_mark = sent.iter().position(|k| k.starts_with("mark"));
        assert_eq!(sent.first().map(String::as_str), Some("give back"));
        assert!(first_mark.is_some_and(|i| i > 0), "{sent:?}");
    }

    /// The requests a scripted table was sent: (kind (see [`kind`]), sort key).
    type Sent = Arc<Mutex<Vec<(String, String)>>>;

    /// How a scripted table answers a kind of request, when not as the others
    /// (`None`).
    type Switch = Arc<Mutex<Option<fn() -> Answer>>>;

    /// A process with $1 a day and $1 an hour on the whole client (two items, the
    /// day's and the hour's), on a scripted table that answers every lease
    /// request and every write of a lease's use as the table holds $0.05 (5 % of
    /// $1) granted to this process, every write of the hour's item as
    /// `hour_write` says (throttled to begin with), and every lease given back as
    /// `give_back` says (as the others to begin with). A $0.01 call has leased
    /// $0.05 of each budget and spent $0.01 of both, and a flush has written the
    /// day's use, not the hour's. With the requests sent since that flush.
    async fn a_day_written_and_an_hour_not() -> (Fleet, Sent, Switch, Switch) {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let sent: Sent = Arc::new(Mutex::new(Vec::new()));
        let hour_write: Switch = Arc::new(Mutex::new(Some(throttled)));
        let give_back: Switch = Arc::new(Mutex::new(None));
        let dollar_an_hour = Budget::enforce(BudgetScope::Client, BudgetPeriod::Hour, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.01") })
            .unwrap();
        let (fleet, budgets, _) = {
            let (sent, hour_write, give_back) =
                (sent.clone(), hour_write.clone(), give_back.clone());
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![dollar_a_day(), dollar_an_hour],
                t0,
                move |input| {
                    let kind = kind(input);
                    let sk = match input.key().and_then(|k| k.get("sk")) {
                        Some(AttributeValue::S(sk)) => sk.clone(),
                        _ => String::new(),
                    };
                    let hour_write = *hour_write.lock().unwrap();
                    let give_back = *give_back.lock().unwrap();
                    let answer = match (kind.as_str(), named(input, "#granted")) {
                        ("write", _) if sk.starts_with("hour#") && hour_write.is_some() => {
                            hour_write.unwrap()()
                        }
                        ("give back", _) if give_back.is_some() => give_back.unwrap()(),
                        ("lease" | "write", Some(granted)) => {
                            attributes(&[(granted, 50_000_000_000)])
                        }
                        _ => attributes(&[]),
                    };
                    sent.lock().unwrap().push((kind, sk));
                    answer
                },
            )
        };
        spend_on_a_new_lease(&fleet, &budgets, "0.01", t0).await;
        assert_eq!(
            sent_of(&sent, "lease"),
            ["day#2026-12-01", "hour#2026-12-01T12"]
        );
        assert!(!fleet.flush().await);
        sent.lock().unwrap().clear();
        (fleet, sent, hour_write, give_back)
    }

    /// The sort keys of the requests of `kind` sent, in order of key.
    fn sent_of(sent: &Sent, kind: &str) -> Vec<String> {
        let mut sks: Vec<String> = sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, sk)| sk.clone())
            .collect();
        sks.sort();
        sks
    }

    /// A shutdown whose last flush cannot write one item gives back the leases
    /// whose use is written all the same: only the lease of the item not written
    /// is kept (its use is not in the table), to lapse at its TTL.
    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_back_the_leases_whose_use_is_written_though_another_write_fails() {
        let (fleet, sent, _, _) = a_day_written_and_an_hour_not().await;
        // Shutdown's flush still cannot write the hour's item (throttled). The
        // day's lease, its use written, goes back; the hour's is kept.
        let problems = fleet.shutdown(Duration::from_secs(1)).await;
        assert_eq!(sent_of(&sent, "give back"), ["day#2026-12-01"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("1 fleet item(s) not written to table `scripted`")
                && problems[0].contains("1 lease of this process is kept"),
            "{problems:?}"
        );
    }

    /// While the table does not answer, shutdown's time goes to writing what is
    /// unwritten, not to giving leases back (each request would wait as long):
    /// the lease whose use is written is not given back either, and is said so.
    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_no_lease_back_to_a_table_its_writes_found_unreachable() {
        let (fleet, sent, hour_write, _) = a_day_written_and_an_hour_not().await;
        // From now on the hour's write is never answered: shutdown's flush
        // waits for the SDK's 5 s attempt timeout, then tries again, cut short
        // when its 8 s are up (not at 6 s to give the day's lease back: the try
        // before found the table unreachable).
        *hour_write.lock().unwrap() = Some(unanswered);
        let started = tokio::time::Instant::now();
        let problems = fleet.shutdown(Duration::from_secs(8)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(8));
        assert_eq!(sent_of(&sent, "give back"), Vec::<String>::new());
        assert_eq!(sent_of(&sent, "write"), ["hour#2026-12-01T12"; 2]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        // Both leases are kept, and said so: the hour's, its use not written,
        // and the day's, not given back.
        assert!(
            problems[0].contains(
                "2 leases of this process are kept, not given back (1 whose use is not \
                 written, 1 whose use is written but that could not be given back)"
            ) && problems[1].starts_with(
                "1 fleet lease(s) whose use is written not given back: the table did not \
                 answer"
            ),
            "{problems:?}"
        );
    }

    /// A shutdown whose first try of the flush would take all its time (the
    /// hour's write unanswered, and the SDK's attempt timeout, 5 s, longer than
    /// shutdown's 1 s) cuts it off at three quarters, 750 ms, to give back the
    /// lease whose use is written, then tries the flush again with what is left.
    #[tokio::test(start_paused = true)]
    async fn a_shutdown_whose_flush_is_cut_off_gives_back_the_leases_whose_use_is_written() {
        let (fleet, sent, hour_write, _) = a_day_written_and_an_hour_not().await;
        *hour_write.lock().unwrap() = Some(unanswered);
        let started = tokio::time::Instant::now();
        let problems = fleet.shutdown(Duration::from_secs(1)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(sent_of(&sent, "give back"), ["day#2026-12-01"]);
        // Sent at 0 and, again, at 750 ms.
        assert_eq!(sent_of(&sent, "write"), ["hour#2026-12-01T12"; 2]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("1 fleet item(s) not written to table `scripted`")
                && problems[0].contains(
                    "; 1 lease of this process is kept, not given back (its use is not written)"
                ),
            "{problems:?}"
        );
    }

    /// When the lease whose use is written cannot be given back either (the
    /// table answers nothing within shutdown's 1 s), the error counts it with
    /// the other kept: 2 leases, not 1.
    #[tokio::test(start_paused = true)]
    async fn a_shutdown_cut_off_counts_every_lease_it_keeps() {
        let (fleet, sent, hour_write, give_back) = a_day_written_and_an_hour_not().await;
        *hour_write.lock().unwrap() = Some(unanswered);
        *give_back.lock().unwrap() = Some(unanswered);
        let problems = fleet.shutdown(Duration::from_secs(1)).await;
        // Tried at 750 ms, unanswered at 1 s.
        assert_eq!(sent_of(&sent, "give back"), ["day#2026-12-01"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains(
                "; 2 leases of this process are kept, not given back (1 whose use is not \
                 written, 1 whose use is written but that could not be given back): each \
                 lapses lease_ttl after its last renewal"
            ) && problems[1] == "a fleet lease was not given back in time",
            "{problems:?}"
        );
    }

    /// After a throttled try, the lease whose use is written is given back
    /// before the flush is tried again (see `shutdown`): one request, sent once,
    /// and the hour's write, answered on the next try 200 ms later, is written
    /// within the same time; its lease then goes back too, and nothing is kept.
    #[tokio::test(start_paused = true)]
    async fn a_throttled_try_gives_back_the_written_lease_and_the_write_is_retried_in_time() {
        let (fleet, sent, hour_write, _) = a_day_written_and_an_hour_not().await;
        let shutdown = {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.shutdown(Duration::from_secs(1)).await })
        };
        // The first try (at 0) is throttled; from 100 ms on, the hour's write is
        // answered.
        tokio::time::sleep(Duration::from_millis(100)).await;
        *hour_write.lock().unwrap() = None;
        assert_eq!(shutdown.await.unwrap(), Vec::<String>::new());
        let sent: Vec<(String, String)> = sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(kind, _)| kind == "write" || kind == "give back")
            .cloned()
            .collect();
        let pair = |kind: &str, sk: &str| (kind.to_owned(), sk.to_owned());
        assert_eq!(
            sent,
            [
                pair("write", "hour#2026-12-01T12"),
                pair("give back", "day#2026-12-01"),
                pair("write", "hour#2026-12-01T12"),
                pair("give back", "hour#2026-12-01T12"),
            ]
        );
    }

    #[test]
    fn a_lease_is_renewed_when_half_its_ttl_or_three_flush_intervals_are_left() {
        let s = Duration::from_secs;
        // The default 30 s lease and 250 ms flushes: at half, 15 s.
        assert_eq!(renew_within(s(30), Duration::from_millis(250)), 15_000);
        // 10 s flushes: three intervals, 30 s, more than half of 25 s or 60 s.
        assert_eq!(renew_within(s(25), s(10)), 30_000);
        assert_eq!(renew_within(s(60), s(10)), 30_000);
        // Half of 70 s, 35 s, is more than three intervals.
        assert_eq!(renew_within(s(70), s(10)), 35_000);
    }

    /// $1 a day on the whole client, each call estimated at $0.01.
    fn dollar_a_day() -> Budget {
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.01") })
            .unwrap()
    }

    /// A fleet whose table never answers, on [`dollar_a_day`], whose calls
    /// wait at most 2 s for a lease; with `allow`, a call it cannot lease for
    /// is let through (`WhenUnavailable::Allow`).
    fn two_second_wait(allow: bool) -> (Fleet, Arc<Budgets>) {
        let config = FleetConfig::dynamodb("silent").lease_wait(Duration::from_secs(2));
        let config = if allow {
            config.when_unavailable(WhenUnavailable::Allow)
        } else {
            config
        };
        silent_fleet(config, vec![dollar_a_day()])
    }

    /// A `chat` call (no tags) leasing on a task of its own, to wait in the
    /// queue behind a lease request the test holds.
    fn lease_on_a_task(
        fleet: &Fleet,
        budgets: &Arc<Budgets>,
        now: DateTime<Utc>,
    ) -> tokio::task::JoinHandle<Result<Reservation>> {
        let (fleet, budgets) = (fleet.clone(), budgets.clone());
        tokio::spawn(async move {
            fleet
                .lease(|| budgets.reserve("chat", &BTreeMap::new(), now))
                .await
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_a_lease_at_most_lease_wait_in_all_its_wait_in_the_queue_included() {
        let (fleet, budgets) = two_second_wait(false);
        let now = Utc::now();
        let Err(Refusal::Short(..)) = budgets.reserve("chat", &BTreeMap::new(), now) else {
            panic!("nothing is leased yet: the call is short");
        };
        // An earlier call's lease request holds the queue for 1.5 s.
        let ahead = fleet.shared.leasing.lock().await;
        let started = tokio::time::Instant::now();
        let waiting = lease_on_a_task(&fleet, &budgets, now);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(ahead);
        let leased = waiting.await.unwrap();
        // Its own request (which the table never answers) had what was left of
        // the 2 s: 0.5 s, not 2 s more. (The clock is Tokio's paused one: timers
        // fire at their deadlines exactly.)
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        match leased {
            Err(Error::BudgetUnavailable { reason, .. }) => {
                assert!(reason.contains("no answer within 2s"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_whose_turn_never_comes_within_lease_wait_sends_nothing() {
        let (fleet, budgets) = two_second_wait(false);
        let now = Utc::now();
        let Err(Refusal::Short(..)) = budgets.reserve("chat", &BTreeMap::new(), now) else {
            panic!("nothing is leased yet: the call is short");
        };
        let _ahead = fleet.shared.leasing.lock().await;
        let started = tokio::time::Instant::now();
        let leased = tokio::time::timeout(
            Duration::from_secs(10),
            fleet.lease(|| budgets.reserve("chat", &BTreeMap::new(), now)),
        )
        .await
        .expect("it gives up waiting for its turn");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(
            matches!(&leased, Err(Error::BudgetUnavailable { reason, .. }) if reason.contains("no answer within 2s")),
            "{leased:?}"
        );
        assert_eq!(fleet.stats().requests, 0, "its turn never came");
    }

    /// A call whose turn in the queue never comes while the meter shuts down
    /// is refused as shut down, not let through (`WhenUnavailable::Allow`):
    /// no flush would write what it spends.
    #[tokio::test(start_paused = true)]
    async fn a_call_whose_turn_never_comes_during_shutdown_is_not_let_through() {
        let (fleet, budgets) = two_second_wait(true);
        let now = Utc::now();
        let none = BTreeMap::new();
        assert!(matches!(
            budgets.reserve("chat", &none, now),
            Err(Refusal::Short(..))
        ));
        // A lease request ahead holds the queue past the 2 s wait, and the
        // meter shuts down meanwhile.
        let _ahead = fleet.shared.leasing.lock().await;
        fleet.shared.closed.store(true, Ordering::SeqCst);
        let leased = fleet.lease(|| budgets.reserve("chat", &none, now)).await;
        assert!(
            matches!(&leased, Err(Error::BudgetUnavailable { reason, .. })
                if reason == crate::error::SHUT_DOWN_UNAVAILABLE),
            "{leased:?}"
        );
        // Nothing allowed: the call is still short of its $0.01.
        match budgets.reserve("chat", &none, now) {
            Err(Refusal::Short(wants, _)) => assert_eq!(wants[0].needed, dec("0.01")),
            other => panic!("{other:?}"),
        }
    }

    /// A call whose own lease request goes unanswered while the meter shuts
    /// down is refused as shut down, not let through (`WhenUnavailable::Allow`):
    /// waiting for a lease, it is not a call in flight `shutdown()` waits for,
    /// and no flush would write what it spends.
    #[tokio::test(start_paused = true)]
    async fn a_call_whose_lease_request_goes_unanswered_as_shutdown_begins_is_not_let_through() {
        let (fleet, budgets) = two_second_wait(true);
        let now = Utc::now();
        let none = BTreeMap::new();
        let waiting = lease_on_a_task(&fleet, &budgets, now);
        // Its request is out (the queue was free), and the table never answers.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            fleet.shared.leasing.try_lock().is_err(),
            "its turn came: it waits for the table"
        );
        // shutdown() begins.
        fleet.shared.closed.store(true, Ordering::SeqCst);
        let leased = waiting.await.unwrap();
        assert!(
            matches!(&leased, Err(Error::BudgetUnavailable { reason, .. })
                if reason == crate::error::SHUT_DOWN_UNAVAILABLE),
            "{leased:?}"
        );
        // Nothing allowed: the call is still short of its $0.01.
        match budgets.reserve("chat", &none, now) {
            Err(Refusal::Short(wants, _)) => assert_eq!(wants[0].needed, dec("0.01")),
            other => panic!("{other:?}"),
        }
    }

    /// A call let through (`WhenUnavailable::Allow`) when its turn in the
    /// queue never comes is granted what it is short of when the wait ends,
    /// not what it was short of when it began to wait: the calls ahead may
    /// have leased (or counted as leased) room that covers it.
    #[tokio::test(start_paused = true)]
    async fn a_call_let_through_after_waiting_in_the_queue_is_granted_only_what_it_still_needs() {
        let (fleet, budgets) = two_second_wait(true);
        let now = Utc::now();
        let day = BudgetPeriod::Day.start_of(now);
        let none = BTreeMap::new();
        // Nothing leased: the $0.01 call is short of $0.01 when it begins to
        // wait, behind a call whose lease request holds the queue past the
        // 2 s wait.
        assert!(matches!(
            budgets.reserve("chat", &none, now),
            Err(Refusal::Short(..))
        ));
        let ahead = fleet.shared.leasing.lock().await;
        let waiting = lease_on_a_task(&fleet, &budgets, now);
        // Meanwhile the call ahead is granted $0.05.
        tokio::time::sleep(Duration::from_secs(1)).await;
        budgets.grant(0, day, dec("0.05"), now + chrono::TimeDelta::hours(1), true);
        let call = waiting.await.unwrap().expect("let through");
        drop(ahead);
        call.settle(&none, dec("0.01"), Priced::Fully, now);
        // It fitted in the $0.05, granted nothing more: four more $0.01
        // calls, 5 × 0.01 = $0.05, and the fifth is short. (Granted the $0.01
        // it was short of before it waited, $0.06 leased, it would make five.)
        for i in 0..4 {
            let call = budgets.reserve("chat", &none, now).unwrap_or_else(|e| {
                panic!("call {i}: {e:?}");
            });
            call.settle(&none, dec("0.01"), Priced::Fully, now);
        }
        assert!(matches!(
            budgets.reserve("chat", &none, now),
            Err(Refusal::Short(..))
        ));
    }

    /// The budget item of [`dollar_a_day`] in t0's day, as this process keys it.
    fn budget_item_keys(fleet: &Fleet) -> (String, String) {
        let state = fleet.shared.state.lock().unwrap();
        state
            .items
            .iter()
            .flat_map(|(pk, items)| items.iter().map(move |(sk, item)| (pk, sk, item)))
            .find(|(_, _, item)| item.lease.is_some())
            .map(|(pk, sk, _)| (pk.clone(), sk.clone()))
            .expect("a lease is held")
    }

    /// A fleet on [`dollar_a_day`] whose scripted table grants this process
    /// $0.05 whenever it is asked, its answers holding no use; its clock at
    /// `t0`.
    fn granting_five_cents(t0: DateTime<Utc>) -> (Fleet, Arc<Budgets>, ManualTimeSource) {
        scripted_fleet(
            FleetConfig::dynamodb("scripted"),
            vec![dollar_a_day()],
            t0,
            |input| match named(input, "#granted") {
                Some(granted) => attributes(&[(granted, 50_000_000_000)]),
                None => attributes(&[]),
            },
        )
    }

    /// As [`granting_five_cents`], the table answering, as the lease's use,
    /// the sum of the uses written to it: the returned count (in the table's
    /// units), which the test may read or set.
    fn granting_five_cents_summing_uses(
        t0: DateTime<Utc>,
    ) -> (Fleet, Arc<Budgets>, ManualTimeSource, Arc<Mutex<i128>>) {
        let used = Arc::new(Mutex::new(0_i128));
        let table_used = used.clone();
        let (fleet, budgets, clock) = scripted_fleet(
            FleetConfig::dynamodb("scripted"),
            vec![dollar_a_day()],
            t0,
            move |input| {
                let mut used = table_used.lock().unwrap();
                if input
                    .update_expression()
                    .is_some_and(|e| e.contains("#used :used"))
                    && let Some(AttributeValue::N(n)) = input
                        .expression_attribute_values()
                        .and_then(|values| values.get(":used"))
                {
                    *used += n.parse::<i128>().unwrap();
                }
                match (named(input, "#granted"), named(input, "#used")) {
                    (Some(granted), Some(name)) => {
                        attributes(&[(granted, 50_000_000_000), (name, *used)])
                    }
                    (Some(granted), None) => attributes(&[(granted, 50_000_000_000)]),
                    _ => attributes(&[]),
                }
            },
        );
        (fleet, budgets, clock, used)
    }

    /// [`spend_on_a_new_lease`] at `t0` of $0.01, written by a flush: the
    /// budget item's keys.
    async fn a_cent_written_on_a_new_lease(
        fleet: &Fleet,
        budgets: &Arc<Budgets>,
        t0: DateTime<Utc>,
    ) -> (String, String) {
        spend_on_a_new_lease(fleet, budgets, "0.01", t0).await;
        assert!(fleet.flush().await);
        budget_item_keys(fleet)
    }

    /// Marks a lease request for the item `pk`/`sk` out, its answer not
    /// read, as `lease_one` marks it before it sends it.
    fn mark_unanswered(fleet: &Fleet, pk: &str, sk: &str) {
        fleet
            .shared
            .state
            .lock()
            .unwrap()
            .items
            .get_mut(pk)
            .unwrap()
            .get_mut(sk)
            .unwrap()
            .mark_unanswered();
    }

    /// The answer to the request out for the item `pk`/`sk` read: a new
    /// $0.05 lease in t0's day until `until`, its use $0 (as the request was
    /// applied).
    fn granted_anew(fleet: &Fleet, pk: &str, sk: &str, t0: DateTime<Utc>, until: DateTime<Utc>) {
        let day = BudgetPeriod::Day.start_of(t0);
        let amount = 50_000_000_000;
        fleet.granted(
            0,
            pk,
            sk,
            day,
            BudgetPeriod::Day.end_of(day),
            amount,
            (amount, Some(0)),
            until.timestamp_millis(),
        );
    }

    /// Each call settled at `usd` at `at` and recorded as the fleet's use
    /// (for the next flush).
    fn settle_and_record(fleet: &Fleet, calls: Vec<Reservation>, usd: &str, at: DateTime<Utc>) {
        let none = BTreeMap::new();
        for call in calls {
            call.settle(&none, dec(usd), Priced::Fully, at);
            record(fleet, "chat", usd, at);
        }
    }

    /// `n` $0.01 calls to chat at `now`, each let through (`what` says from
    /// what room) and settled.
    fn cent_calls(budgets: &Arc<Budgets>, n: usize, now: DateTime<Utc>, what: &str) {
        let none = BTreeMap::new();
        for i in 0..n {
            let call = budgets
                .reserve("chat", &none, now)
                .unwrap_or_else(|e| panic!("call {i} {what}: {e:?}"));
            call.settle(&none, dec("0.01"), Priced::Fully, now);
        }
    }

    /// A call to chat at `now` is short of $0.01.
    fn short_of_a_cent(budgets: &Arc<Budgets>, now: DateTime<Utc>) {
        match budgets.reserve("chat", &BTreeMap::new(), now) {
            Err(Refusal::Short(wants, _)) => assert_eq!(wants[0].needed, dec("0.01")),
            other => panic!("expected a call short of $0.01, got {other:?}"),
        }
    }

    /// $1 a day, $0.01 calls, leased 5 % ($0.05) at a time, on a table that
    /// holds $0.05 granted to this process whenever it is asked (the first
    /// lease, then a new one after another process reclaimed it). t0: the
    /// first call leases $0.05 until t0 + 30 s (spent here until 29.75 s, a
    /// flush interval before) and spends $0.01, written. t0 + 29 s: four
    /// $0.01 calls go out, holding the lease's last $0.04, and a fifth sends
    /// a lease request (the lease still holds here: no flush first). Its
    /// answer does not come; the process's flushes go unanswered until t0 +
    /// 35 s. t0 + 35.25 s: another process reclaims the lease (past its end
    /// and the 5 s skew), the table keeping the $0.01 written as its use.
    /// t0 + 36 s: the request is applied, a new $0.05 lease until t0 + 59 s.
    /// t0 + 36.25 s: a flush renews "the lease" (the new one, as it happens).
    /// t0 + 37 s: the request's answer is read, $0.05 granted in all. The
    /// table counts for this process 0.01 + 0.05 = $0.06. Returns the fleet,
    /// its budgets, the clock (at t0 + 37 s), the four calls and t0. With
    /// `settled_early`, the four settle at $0.01 each at t0 + 29.5 s (their
    /// writes failing until t0 + 35 s): the flush at 36.25 s writes their
    /// $0.04 as the new lease's use (none of the four is returned). The
    /// request's answer holds the new lease's use as it was applied, $0.
    async fn a_lease_reclaimed_and_granted_anew_while_its_request_was_out(
        settled_early: bool,
    ) -> (
        Fleet,
        Arc<Budgets>,
        ManualTimeSource,
        Vec<Reservation>,
        DateTime<Utc>,
    ) {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::TimeDelta::milliseconds(ms);
        let (fleet, budgets, clock) = granting_five_cents(t0);
        let (pk, sk) = a_cent_written_on_a_new_lease(&fleet, &budgets, t0).await;
        clock.set_time(at(29_000).into());
        let in_flight = four_calls_then_short(&budgets, at(29_000));
        // The fifth call's request is out, as `lease_one` marks it before it
        // sends it; its answer is read only at t0 + 37 s.
        mark_unanswered(&fleet, &pk, &sk);
        let in_flight = if settled_early {
            settle_and_record(&fleet, in_flight, "0.01", at(29_500));
            Vec::new()
        } else {
            in_flight
        };
        clock.set_time(at(36_250).into());
        fleet.flush().await;
        clock.set_time(at(37_000).into());
        granted_anew(&fleet, &pk, &sk, t0, at(59_000));
        (fleet, budgets, clock, in_flight, t0)
    }

    /// A flush that renews the lease while a lease request of this process
    /// may have been applied (its answer not read yet) does not take the
    /// lease for whole: the table's grant may be that request's new lease,
    /// the old one reclaimed, and what the old one gave up here is not the
    /// process's again.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_while_a_lease_request_is_out_does_not_give_back_a_reclaimed_leases_room() {
        let (_fleet, budgets, _clock, in_flight, t0) =
            a_lease_reclaimed_and_granted_anew_while_its_request_was_out(false).await;
        let now = t0 + chrono::TimeDelta::seconds(37);
        let none = BTreeMap::new();
        // The four calls settle at $0.01: spent $0.05 of the $0.06 the table
        // counts for this process, one more call, then a lease is needed.
        // (Renewed as whole and granted on top, leased 0.05 + 0.05 = $0.10:
        // five more calls, spent $0.10, the fleet $0.04 past its limit.)
        for call in in_flight {
            call.settle(&none, dec("0.01"), Priced::Fully, now);
        }
        let call = budgets.reserve("chat", &none, now).expect("the $0.01 left");
        call.settle(&none, dec("0.01"), Priced::Fully, now);
        short_of_a_cent(&budgets, now);
    }

    /// A renewal made while a lease request of the process is unanswered
    /// (throttled: maybe applied) is whole when the table holds, as the
    /// lease's use, what this process wrote to it, above $0 when the request
    /// went out: a new lease that request made would start its use at $0.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_while_a_request_is_out_is_whole_when_the_table_holds_the_leases_own_use() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::TimeDelta::milliseconds(ms);
        // The table: $0.05 granted to this process, its use the sum of the
        // uses written (the lease never reclaimed, the request never applied).
        let (fleet, budgets, clock, used) = granting_five_cents_summing_uses(t0);
        // $1 a day, $0.01 calls, leased $0.05 at a time. t0: a $0.05 lease
        // until t0 + 30 s; $0.01 spent and written as its use (table: used
        // $0.01).
        let (pk, sk) = a_cent_written_on_a_new_lease(&fleet, &budgets, t0).await;
        assert_eq!(*used.lock().unwrap(), 10_000_000_000);
        // t0 + 29 s: four calls hold the lease's last $0.04; a fifth's lease
        // request is throttled, maybe applied (marked as `lease_one` marks
        // it), the call refused. The table never applied it.
        clock.set_time(at(29_000).into());
        let in_flight = four_calls_then_short(&budgets, at(29_000));
        mark_unanswered(&fleet, &pk, &sk);
        // t0 + 31 s: the lease lapsed here (a call sees it): min(0.05 leased,
        // 0.01 spent) = $0.01 kept, $0.04 given up. The four settle at $0.005
        // each: spent 0.01 + 0.02 = $0.03.
        clock.set_time(at(31_000).into());
        let none = BTreeMap::new();
        assert!(budgets.reserve("chat", &none, at(31_000)).is_err());
        settle_and_record(&fleet, in_flight, "0.005", at(31_000));
        // The flush writes the $0.02 as the lease's use: the table answers
        // granted $0.05, used 0.01 + 0.02 = $0.03, the use this process
        // wrote (a new lease would hold $0.02): whole, the $0.04 back,
        // leased 0.01 + 0.04 = $0.05, spent $0.03: two $0.01 calls, spent
        // $0.05 as the table grants, the third short of $0.01. (Not whole,
        // leased $0.01: the first call short, the table's $0.02 for this
        // process stranded.)
        assert!(fleet.flush().await);
        assert_eq!(*used.lock().unwrap(), 30_000_000_000);
        cent_calls(&budgets, 2, at(31_000), "of the lease renewed whole");
        short_of_a_cent(&budgets, at(31_000));
    }

    /// Spend from before a lease was reclaimed, written after it as the new
    /// lease's use, is counted once: the new lease's room is its grant less
    /// that use.
    #[tokio::test(start_paused = true)]
    async fn spend_written_as_a_new_leases_use_after_a_reclaim_is_counted_once() {
        let (_fleet, budgets, _clock, _, t0) =
            a_lease_reclaimed_and_granted_anew_while_its_request_was_out(true).await;
        let now = t0 + chrono::TimeDelta::seconds(37);
        let none = BTreeMap::new();
        // Spent 0.01 + 4 x 0.01 = $0.05. The table counts for this process
        // the old lease's $0.01 use and the new $0.05 lease, which holds the
        // four calls' $0.04 as its use: 0.01 + 0.05 = $0.06, $0.01 left.
        // Leased: what its writes added when the request went out, $0.01
        // (the $0.04 was written after), and its $0.05 grant: $0.06, one
        // $0.01 call, the next short of $0.01. (Leased 0.05 + 0.05 = $0.10,
        // five calls: spent $0.10 where the table counts $0.06.)
        let call = budgets.reserve("chat", &none, now).expect("the $0.01 left");
        call.settle(&none, dec("0.01"), Priced::Fully, now);
        short_of_a_cent(&budgets, now);
    }

    /// A take-back (a write below $0) the table applied without the held
    /// lease (it found it reclaimed), its answer lost, lowers what the table
    /// counts for this process: a new lease granted after counts, as leased,
    /// what its writes added less that take-back, and its grant.
    #[tokio::test(start_paused = true)]
    async fn a_new_lease_after_a_reclaim_counts_a_take_back_whose_answer_was_lost() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let (fleet, budgets, clock) = granting_five_cents(t0);
        // t0: a $0.05 lease (5 % of $1), a call settled at $0.01: spent $0.01.
        // As a job's $0.05 provisional charge (this call's $0.01 and $0.04
        // more) written and acknowledged as the lease's use leaves it: written
        // $0.05. The lease lapsed and another process reclaimed it: the table
        // counts its $0.05 use for this process. The job settled at $0.01:
        // -$0.04 written without the lease (it was gone) and applied, the
        // table counting 0.05 - 0.04 = $0.01, its answer lost (maybe applied):
        // not acknowledged. Then this process's lease request went out, and
        // at t0 + 37 s it is applied as a new $0.05 lease, its use $0: the
        // table counts 0.01 + 0.05 = $0.06 for this process.
        let now = a_take_back_out_when_granted_anew(&fleet, &budgets, &clock, t0, true).await;
        // Leased: written 0.05 less the take-back 0.04, and the grant 0.05:
        // $0.06. Spent $0.01: five $0.01 calls (spent $0.06), the sixth short
        // of $0.01. (Leased 0.05 + 0.05 = $0.10: nine calls, spent $0.10
        // where the table counts $0.06.)
        cent_calls(&budgets, 5, now, "within the $0.06");
        short_of_a_cent(&budgets, now);
    }

    /// $1 a day, $0.01 calls, $0.05 leases (5 % of $1), on `fleet`, whose
    /// table grants this process $0.05 whenever it is asked. t0: a $0.05
    /// lease (L1) until t0 + 30 s, a call settled at $0.01 (spent $0.01) and
    /// written. Then, as a job's $0.05 provisional charge (this call's $0.01
    /// and $0.04 more) written and acknowledged as L1's use leaves it:
    /// written $0.05, L1's use $0.05. L1 lapsed and another process
    /// reclaimed it: the table counts its $0.05 use for this process. The
    /// job settled at $0.01 (spent stays $0.01): -$0.04 taken back, this
    /// process's writes throttled meanwhile, so it is still to write
    /// (`sent` false) or was written and not acknowledged (`sent` true).
    /// This process's lease request went out; at t0 + 37 s its answer is
    /// read: applied as a new $0.05 lease (L2) until t0 + 59 s, its use $0.
    /// Returns t0 + 37 s.
    async fn a_take_back_out_when_granted_anew(
        fleet: &Fleet,
        budgets: &Arc<Budgets>,
        clock: &ManualTimeSource,
        t0: DateTime<Utc>,
        sent: bool,
    ) -> DateTime<Utc> {
        let (pk, sk) = a_cent_written_on_a_new_lease(fleet, budgets, t0).await;
        {
            let mut state = fleet.shared.state.lock().unwrap();
            let item = state.items.get_mut(&pk).unwrap().get_mut(&sk).unwrap();
            item.written = 50_000_000_000;
            item.lease.as_mut().unwrap().used_written = 50_000_000_000;
            let take_back = Delta {
                spent: -40_000_000_000,
                ..Delta::default()
            };
            match sent {
                true => item.unacked = Some((item.acked_seq + 1, take_back)),
                false => item.pending = take_back,
            }
            item.mark_unanswered();
        }
        let now = t0 + chrono::TimeDelta::seconds(37);
        clock.set_time(now.into());
        granted_anew(fleet, &pk, &sk, t0, t0 + chrono::TimeDelta::seconds(59));
        now
    }

    /// [`a_take_back_out_when_granted_anew`] on a table that sums the uses
    /// written from when L2 is granted (its use $0), then a flush, which must
    /// write the -$0.04 as L2's use: the fleet, the budgets and t0 + 37 s.
    async fn a_take_back_flushed_as_l2s_use(sent: bool) -> (Fleet, Arc<Budgets>, DateTime<Utc>) {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let (fleet, budgets, clock, used) = granting_five_cents_summing_uses(t0);
        let now = a_take_back_out_when_granted_anew(&fleet, &budgets, &clock, t0, sent).await;
        *used.lock().unwrap() = 0;
        assert!(fleet.flush().await);
        assert_eq!(*used.lock().unwrap(), -40_000_000_000);
        (fleet, budgets, now)
    }

    /// A take-back still to write when a new lease is granted after the held
    /// one was reclaimed was never applied: the next write applies it as the
    /// new lease's use, so it is room of that lease, counted as leased.
    #[tokio::test]
    async fn a_take_back_still_to_write_when_a_new_lease_is_granted_is_that_leases_room() {
        // The flush writes the -$0.04 as L2's use: the table holds L2 granted
        // $0.05, used -$0.04.
        let (_fleet, budgets, now) = a_take_back_flushed_as_l2s_use(false).await;
        // The table counts for this process L1's use $0.05 and L2's grant
        // $0.05: $0.10. L2 lets its use rise from -0.04 to its grant 0.05:
        // $0.09 more, nine $0.01 calls (spent 0.01 + 0.09 = $0.10, L2's use
        // -0.04 + 0.09 = $0.05), the tenth short of $0.01. (Leased less the
        // take-back, 0.05 - 0.04 + 0.05 = $0.06: five calls, and the table's
        // other $0.04 of L2 committed to this process, never spent.)
        cent_calls(&budgets, 9, now, "within L2's $0.09 left");
        short_of_a_cent(&budgets, now);
    }

    /// A take-back written and not acknowledged when a new lease is granted
    /// after the held one was reclaimed is counted off what is leased (the
    /// table may have applied it without the reclaimed lease), and given back
    /// when its write, sent again, is applied now, as the new lease's use.
    #[tokio::test]
    async fn a_take_back_unacknowledged_when_a_new_lease_is_granted_and_applied_as_its_use_is_its_room()
     {
        // The throttled write was never applied: sent again (its sequence
        // number unseen by the table), it is applied as L2's use: -$0.04.
        let (_fleet, budgets, now) = a_take_back_flushed_as_l2s_use(true).await;
        // As above: the table counts 0.05 + 0.05 = $0.10 for this process,
        // L2 used -$0.04 of its $0.05: $0.09 more, nine $0.01 calls, the
        // tenth short of $0.01. (The take-back kept off what is leased,
        // $0.06: five calls.)
        cent_calls(&budgets, 9, now, "within L2's $0.09 left");
        short_of_a_cent(&budgets, now);
    }

    /// A take-back written and not acknowledged when a new lease is granted
    /// after the held one was reclaimed, which the table had applied without
    /// the reclaimed lease, stays counted off what is leased when its write,
    /// sent again, finds it applied.
    #[tokio::test]
    async fn a_take_back_applied_before_a_new_lease_stays_off_it_when_its_resend_finds_it_applied()
    {
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        // The table grants $0.05 whenever it is asked; once `applied` is set,
        // it answers a write that its sequence number was applied before,
        // the item holding L2 granted $0.05, used $0 (the take-back was
        // applied without a lease, before L2).
        let applied = Arc::new(AtomicBool::new(false));
        let (fleet, budgets, clock) = {
            let applied = applied.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![dollar_a_day()],
                t0,
                move |input| {
                    let value = |name: &str| {
                        input
                            .expression_attribute_values()
                            .and_then(|v| v.get(name))
                            .cloned()
                            .unwrap()
                    };
                    let write = kind(input) == "write";
                    match (named(input, "#granted"), named(input, "#used")) {
                        (Some(granted), Some(used)) if write && applied.load(Ordering::SeqCst) => {
                            let item = [
                                (named(input, "#seq").unwrap(), value(":seq")),
                                (granted, AttributeValue::N("50000000000".to_owned())),
                                (used, AttributeValue::N("0".to_owned())),
                                (named(input, "#until").unwrap(), value(":until")),
                            ];
                            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                                ConditionalCheckFailedException::builder()
                                    .set_item(Some(
                                        item.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
                                    ))
                                    .build(),
                            ))
                        }
                        (Some(granted), _) => attributes(&[(granted, 50_000_000_000)]),
                        _ => attributes(&[]),
                    }
                },
            )
        };
        let now = a_take_back_out_when_granted_anew(&fleet, &budgets, &clock, t0, true).await;
        applied.store(true, Ordering::SeqCst);
        assert!(fleet.flush().await);
        // The table counts for this process L1's use less the take-back,
        // 0.05 - 0.04 = $0.01, and L2's $0.05: $0.06. Spent $0.01: five
        // $0.01 calls, the sixth short of $0.01. (The take-back given back,
        // leased $0.10: nine calls, spent $0.10 where the table counts
        // $0.06.)
        cent_calls(&budgets, 5, now, "within the $0.06");
        short_of_a_cent(&budgets, now);
    }

    /// A new lease whose use held writes acknowledged as the reclaimed one's
    /// (before its grant was read) takes its use from the table's answer to
    /// its next write with no request out: a renewal while a later request
    /// is unanswered then finds the table holding its own use and is whole.
    #[tokio::test(start_paused = true)]
    async fn a_new_leases_use_is_the_tables_after_a_write_so_a_later_renewal_is_whole() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::TimeDelta::milliseconds(ms);
        // The table: $0.05 granted to this process, its use the sum of the
        // uses written since the test last set it.
        let (fleet, budgets, clock, used) = granting_five_cents_summing_uses(t0);
        // $1 a day, $0.01 calls, $0.05 leases. t0: a $0.05 lease until
        // t0 + 30 s, $0.01 spent and written as its use.
        let (pk, sk) = a_cent_written_on_a_new_lease(&fleet, &budgets, t0).await;
        // t0 + 29 s: four calls hold the last $0.04, a fifth's request goes
        // out; the four settle at $0.01 (spent $0.05). Another process
        // reclaims the lease ($0.01 used, counted for this process) and the
        // request is applied as a new $0.05 lease, its use $0.
        clock.set_time(at(29_000).into());
        let none = BTreeMap::new();
        let in_flight = four_calls_then_short(&budgets, at(29_000));
        settle_and_record(&fleet, in_flight, "0.01", at(29_500));
        mark_unanswered(&fleet, &pk, &sk);
        *used.lock().unwrap() = 0;
        // t0 + 36.25 s: the $0.04 written as the new lease's use (table: used
        // $0.04), acknowledged as the held one's. t0 + 37 s: the grant's
        // answer read, use $0 (as the request was applied), until t0 + 59 s:
        // leased 0.01 + 0.05 = $0.06, spent $0.05.
        clock.set_time(at(36_250).into());
        assert!(fleet.flush().await);
        clock.set_time(at(37_000).into());
        granted_anew(&fleet, &pk, &sk, t0, at(59_000));
        // t0 + 45 s: 14 s left, under half the 30 s lease: the flush renews
        // it until t0 + 75 s, no request out; the answer: used $0.04.
        clock.set_time(at(45_000).into());
        assert!(fleet.flush().await);
        assert_eq!(*used.lock().unwrap(), 40_000_000_000);
        // t0 + 80 s: the lease lapsed here (a call sees it): min(0.06 leased,
        // 0.05 spent) = $0.05 kept, $0.01 given up. A request goes out,
        // throttled (never applied). The flush renews the lease: the table
        // answers granted $0.05, used $0.04, the use this process holds for
        // its lease (above $0 when the request went out): whole, the $0.01
        // back, leased 0.05 + 0.01 = $0.06: one $0.01 call (spent $0.06 as
        // the table counts: 0.01 + 0.05), the next short of $0.01. (Its use
        // held as 0 + 0 = $0, not the table's $0.04: never whole, the
        // first call short, $0.01 stranded until the day ends.)
        clock.set_time(at(80_000).into());
        assert!(budgets.reserve("chat", &none, at(80_000)).is_err());
        mark_unanswered(&fleet, &pk, &sk);
        assert!(fleet.flush().await);
        let call = budgets
            .reserve("chat", &none, at(80_000))
            .unwrap_or_else(|e| panic!("the lease renewed whole: {e:?}"));
        call.settle(&none, dec("0.01"), Priced::Fully, at(80_000));
        short_of_a_cent(&budgets, at(80_000));
    }

    /// A grant the table holds as a new lease (the item's grant less than
    /// the old lease's and the request's together: the old one was
    /// reclaimed) is recorded as that lease: a later renewal that finds it
    /// whole gives back what it gave up when it lapsed here.
    #[tokio::test(start_paused = true)]
    async fn a_new_lease_granted_after_a_reclaim_is_spent_again_once_renewed_whole() {
        let (fleet, budgets, clock, in_flight, t0) =
            a_lease_reclaimed_and_granted_anew_while_its_request_was_out(false).await;
        let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
        let none = BTreeMap::new();
        // t0 + 37 s: the table holds the new $0.05 lease (not 0.05 + 0.05 =
        // $0.10 of the old one), until t0 + 59 s. The four calls settle at
        // $0.005 each, $0.02, written by the flush as the new lease's use:
        // $0.03 of it left. Spent 0.01 + 0.02 = $0.03, leased 0.01 + 0.05 =
        // $0.06.
        settle_and_record(&fleet, in_flight, "0.005", at(37));
        assert!(fleet.flush().await);
        // The flush renewed it until t0 + 67 s (spent here until 66.75 s).
        // No flush comes until t0 + 70 s: a call then finds the lease lapsed
        // here, min(0.06 leased, 0.03 spent) = $0.03 kept, its unspent $0.03
        // given up.
        clock.set_time(at(70).into());
        assert!(matches!(
            budgets.reserve("chat", &none, at(70)),
            Err(Refusal::Short(..))
        ));
        // The flush at t0 + 70 s finds the table holding the lease whole
        // ($0.05 granted, nobody reclaimed it): its $0.03 is this process's
        // again, three $0.01 calls, spent 0.03 + 0.03 = $0.06 as the table
        // counts (0.01 of the old lease and the new $0.05), the fourth
        // short. (Recorded as $0.10 granted, the renewal would never be whole
        // and the $0.03 would stay stranded; taken for more of the old lease,
        // the old lease's $0.04 would come back with it: seven calls.)
        assert!(fleet.flush().await);
        cent_calls(&budgets, 3, at(70), "of the lease renewed whole");
        short_of_a_cent(&budgets, at(70));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_on_a_given_client_without_time_limits_gives_up_instead_of_hanging() {
        // The client given has no timeout of its own (as the SDK's default), and
        // the table takes every request and never answers.
        let (fleet, _) = silent_fleet(FleetConfig::dynamodb("silent"), vec![]);
        fleet.record(
            "chat",
            None,
            &BTreeMap::new(),
            dec("0.01"),
            SystemTime::now(),
            None,
            true,
        );
        // Each request gives up within the fleet's limits (10 s, retries
        // included): the flush ends, with nothing written, rather than hanging
        // (and with it the flush loop, `flush_fleet()` and `shutdown()`).
        let flushed = tokio::time::timeout(Duration::from_secs(60), fleet.flush()).await;
        assert_eq!(flushed, Ok(false));
        assert_eq!(fleet.stats().unwritten_items, 2, "kept for the next flush");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_request_dropped_while_it_waits_is_remembered_as_maybe_granted() {
        let (fleet, budgets) = silent_fleet(FleetConfig::dynamodb("silent"), vec![dollar_a_day()]);
        let now = Utc::now();
        let Err(Refusal::Short(..)) = budgets.reserve("chat", &BTreeMap::new(), now) else {
            panic!("nothing is leased yet: the call is short");
        };
        // The call is dropped (cancelled by its caller) while its lease request
        // is out: the table may apply it.
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            fleet.lease(|| budgets.reserve("chat", &BTreeMap::new(), now)),
        )
        .await;
        assert!(dropped.is_err(), "cut off before any answer");
        assert_eq!(fleet.stats().requests, 0, "no answer came");
        let state = fleet.shared.state.lock().unwrap();
        let unanswered: Vec<bool> = state
            .items
            .values()
            .flat_map(|m| m.values())
            .map(|item| item.lease_unanswered)
            .collect();
        // Remembered: the next lease finds it, or shutdown gives it back.
        assert_eq!(unanswered, [true]);
    }

    /// The scripted budget item of [`a_table_leasing_up_to_its_limit`]: the
    /// fleet's committed sum, this process's grant and its lease's end, the
    /// last lease request applied, and whether the answer to the next one
    /// applied is lost (never comes).
    #[derive(Default)]
    struct LeasedItem {
        committed: i128,
        granted: i128,
        until: i128,
        seq: i128,
        lose_next: bool,
    }

    /// A fleet on [`dollar_a_day`] whose calls wait at most 2 s for a lease,
    /// on a scripted table that applies a lease request as DynamoDB's
    /// condition does (the fleet's committed sum stays within the limit) and
    /// answers no room with the item as it was; other requests are answered
    /// with nothing. Its clock at `t0`.
    fn a_table_leasing_up_to_its_limit(
        t0: DateTime<Utc>,
    ) -> (Fleet, Arc<Budgets>, Arc<Mutex<LeasedItem>>) {
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        let table = Arc::new(Mutex::new(LeasedItem::default()));
        let state = table.clone();
        let (fleet, budgets, _clock) = scripted_fleet(
            FleetConfig::dynamodb("scripted").lease_wait(Duration::from_secs(2)),
            vec![dollar_a_day()],
            t0,
            move |input| {
                if kind(input) != "lease" {
                    return attributes(&[]);
                }
                let mut item = state.lock().unwrap();
                let value =
                    |name: &str| match input.expression_attribute_values().unwrap().get(name) {
                        Some(AttributeValue::N(n)) => n.parse::<i128>().unwrap(),
                        _ => panic!("no {name} in the lease request"),
                    };
                let granted = named(input, "#granted").unwrap();
                let used = named(input, "#used").unwrap();
                if item.committed > value(":max") {
                    let n = |v: i128| AttributeValue::N(v.to_string());
                    let old = [
                        (table::COMMITTED, n(item.committed)),
                        (table::LIMIT, n(value(":limit"))),
                        (granted, n(item.granted)),
                        (used, n(0)),
                        (named(input, "#until").unwrap(), n(item.until)),
                        (named(input, "#lseq").unwrap(), n(item.seq)),
                    ];
                    return MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                        ConditionalCheckFailedException::builder()
                            .set_item(Some(
                                old.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                            ))
                            .build(),
                    ));
                }
                item.committed += value(":amount");
                item.granted += value(":amount");
                item.until = value(":until");
                item.seq = value(":seq");
                if std::mem::take(&mut item.lose_next) {
                    return unanswered();
                }
                attributes(&[(granted, item.granted), (used, 0)])
            },
        );
        (fleet, budgets, table)
    }

    /// A lease request applied with its answer lost, the budget near its
    /// limit: the next request finds no room, and the answer's item holds
    /// the lost grant as this process's, which it takes up as room on its
    /// lease (it does not stop the fleet short of the limit).
    #[tokio::test(start_paused = true)]
    async fn a_grant_whose_answer_was_lost_is_taken_up_when_the_next_request_finds_no_room() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let (fleet, budgets, table) = a_table_leasing_up_to_its_limit(t0);
        let none = BTreeMap::new();
        let pico = |usd: &str| to_pico(dec(usd)).unwrap();
        // $1 a day, $0.01 calls, leased 5 % of the limit, $0.05, at a time:
        // 95 calls spend $0.95 on 19 leases, granted 19 x 0.05 = $0.95.
        for i in 0..95 {
            let call = match budgets.reserve("chat", &none, t0) {
                Ok(call) => call,
                Err(Refusal::Short(..)) => fleet
                    .lease(|| budgets.reserve("chat", &none, t0))
                    .await
                    .unwrap_or_else(|e| panic!("call {i} leases: {e:?}")),
                Err(e) => panic!("call {i}: {e:?}"),
            };
            call.settle(&none, dec("0.01"), Priced::Fully, t0);
        }
        assert_eq!(table.lock().unwrap().granted, pico("0.95"));
        // The 96th call asks $0.05 more: the table applies it (committed
        // 0.95 + 0.05 = $1.00, this process granted $1.00), its answer never
        // comes, and the call gives up after lease_wait.
        table.lock().unwrap().lose_next = true;
        let lost = fleet.lease(|| budgets.reserve("chat", &none, t0)).await;
        assert!(lost.is_err(), "no answer within lease_wait");
        assert_eq!(table.lock().unwrap().committed, pico("1.00"));
        // The next call asks again: no room ($1.00 committed of $1), the
        // item holding $1.00 granted to this process, $0.05 more than the
        // $0.95 it counts: that $0.05 is its room, five $0.01 calls, spent
        // $1.00, the sixth refused. (Before: refused at $0.95, $0.05 of the
        // budget stranded until the process shut down.)
        for i in 0..5 {
            let call = match budgets.reserve("chat", &none, t0) {
                Ok(call) => call,
                Err(Refusal::Short(..)) => fleet
                    .lease(|| budgets.reserve("chat", &none, t0))
                    .await
                    .unwrap_or_else(|e| panic!("call {i} of the lost grant: {e:?}")),
                Err(e) => panic!("call {i} of the lost grant: {e:?}"),
            };
            call.settle(&none, dec("0.01"), Priced::Fully, t0);
        }
        let refused = fleet.lease(|| budgets.reserve("chat", &none, t0)).await;
        assert!(
            matches!(refused, Err(Error::BudgetExceeded { .. })),
            "the sixth is past the limit: {refused:?}"
        );
        let item = table.lock().unwrap();
        assert_eq!((item.committed, item.granted), (pico("1.00"), pico("1.00")));
    }

    /// A flush that renews the lease while a request of this process is
    /// unanswered, its answer holding more granted than this process counts
    /// and the use it wrote to the lease (so the lease held, not a new one),
    /// takes the difference up as room on the lease: the lost request's
    /// grant.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_finding_a_grant_whose_answer_was_lost_takes_it_up() {
        a_renewal_finding_a_grant_whose_answer_was_lost(false).await;
    }

    /// As [`a_renewal_finding_a_grant_whose_answer_was_lost_takes_it_up`],
    /// a lease request under way when the flush renews (its answer, read
    /// later, counts what it was granted): nothing taken up by the flush.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_while_a_lease_request_is_under_way_takes_up_no_grant() {
        a_renewal_finding_a_grant_whose_answer_was_lost(true).await;
    }

    /// The scenario of
    /// [`a_renewal_finding_a_grant_whose_answer_was_lost_takes_it_up`]; with
    /// `under_way`, a lease request holds the queue while the flush renews.
    async fn a_renewal_finding_a_grant_whose_answer_was_lost(under_way: bool) {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::TimeDelta::milliseconds(ms);
        // The table: this process's grant `granted` (its $0.05 lease to
        // begin with), its use the sum of the uses written.
        let granted = Arc::new(Mutex::new(50_000_000_000_i128));
        let used = Arc::new(Mutex::new(0_i128));
        let (fleet, budgets, clock) = {
            let (granted, used) = (granted.clone(), used.clone());
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                vec![dollar_a_day()],
                t0,
                move |input| {
                    let mut used = used.lock().unwrap();
                    if input
                        .update_expression()
                        .is_some_and(|e| e.contains("#used :used"))
                        && let Some(AttributeValue::N(n)) = input
                            .expression_attribute_values()
                            .and_then(|values| values.get(":used"))
                    {
                        *used += n.parse::<i128>().unwrap();
                    }
                    let granted = *granted.lock().unwrap();
                    match (named(input, "#granted"), named(input, "#used")) {
                        (Some(g), Some(u)) => attributes(&[(g, granted), (u, *used)]),
                        (Some(g), None) => attributes(&[(g, granted)]),
                        _ => attributes(&[]),
                    }
                },
            )
        };
        // $1 a day, $0.01 calls, leased $0.05 at a time. t0: a $0.05 lease
        // until t0 + 30 s; $0.01 spent and written as its use.
        let (pk, sk) = a_cent_written_on_a_new_lease(&fleet, &budgets, t0).await;
        // t0 + 1 s: four calls hold the lease's last $0.04; a fifth's request
        // for $0.05 more is applied (the table: granted 0.05 + 0.05 = $0.10),
        // its answer lost (marked as `lease_one` marks it).
        clock.set_time(at(1_000).into());
        let in_flight = four_calls_then_short(&budgets, at(1_000));
        mark_unanswered(&fleet, &pk, &sk);
        *granted.lock().unwrap() = 100_000_000_000;
        settle_and_record(&fleet, in_flight, "0.01", at(1_000));
        // The flush writes the four's $0.04: the table answers granted
        // $0.10, used 0.01 + 0.04 = $0.05, the use this process wrote (a new
        // lease would hold $0.04 at most): the lease held, $0.05 more than
        // the $0.05 counted. Leased $0.10, spent $0.05: five $0.01 calls,
        // the sixth short. (Before: leased $0.05, the first short, the $0.05
        // stranded until a lease request is granted or shutdown.)
        let ahead = under_way.then(|| fleet.shared.leasing.try_lock().unwrap());
        assert!(fleet.flush().await);
        drop(ahead);
        assert_eq!(*used.lock().unwrap(), 50_000_000_000);
        if under_way {
            // Under way: leased $0.05, spent $0.05: the first call short.
            short_of_a_cent(&budgets, at(1_000));
            return;
        }
        cent_calls(&budgets, 5, at(1_000), "of the grant found");
        short_of_a_cent(&budgets, at(1_000));
    }

    #[test]
    fn the_fleets_accrual_counts_every_nanosecond_as_the_processs_own_does() {
        use chrono::TimeZone;
        let day = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let ten = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let at = |ns: i64| ten + chrono::TimeDelta::nanoseconds(ns);
        // $3.60 an hour is $3.60 / 3.6·10¹² ns = $10⁻¹² (one pico-dollar) a ns.
        let input = |started: DateTime<Utc>| AccrualInput {
            usd_per_hour: dec("3.60"),
            capacity_from: (crate::pricing::PriceOrigin::Live, None),
            terms: crate::totals::no_terms(),
            started_at: started.into(),
            allocated_usd: None,
        };
        let first = at(400_500); // 10:00:00.000400500
        let now = at(400_500 + 1_234_567_891);
        // The process's first call is the fleet's: 1 234 567 891 ns since it,
        // $0.001234567891 (whole milliseconds would say 1 234 ms, $0.001234).
        let mut item = Item::spend(day + chrono::TimeDelta::days(1));
        let alone = item.accrue("blue", input(first), now, Some(day), None);
        assert_eq!(alone.accrued_usd, dec("0.001234567891"));
        // Written and read back, the table holds that first call to the ms
        // (10:00:00.000): the same call, still counted from its nanosecond.
        item.accrual.insert(
            "blue".to_owned(),
            FleetAccrual {
                allocated: 0,
                from_ms: Some(ten.timestamp_millis()),
                ..FleetAccrual::default()
            },
        );
        let again = item.accrue("blue", input(now), now, Some(day), None);
        assert_eq!(again.accrued_usd, dec("0.001234567891"));
        // Another process's first call, 2 ms before (09:59:59.998, to the ms):
        // 2 000 000 + 400 500 + 1 234 567 891 = 1 236 968 391 ns, $0.001236968391.
        item.accrual.get_mut("blue").unwrap().from_ms = Some(ten.timestamp_millis() - 2);
        let fleet = item.accrue("blue", input(now), now, Some(day), None);
        assert_eq!(fleet.accrued_usd, dec("0.001236968391"));
    }

    #[test]
    fn a_fleet_accrual_says_it_was_priced_from_its_one_capacity_rate_not_every_rate_of_the_process()
    {
        use crate::pricing::PriceOrigin;
        let note: Arc<str> = Arc::from("primary price source failed; bundled price snapshot");
        let source = |charge, origin, note: Option<&Arc<str>>| {
            AccrualSource::new(charge, origin, note.cloned())
        };
        let figures = |capacity_from: RateFrom| FleetAccrualFigures {
            accrued_usd: dec("0.0469"),
            allocated_usd: dec("0.0002"),
            utilisation: Some(dec("0.004264")),
            capacity_from: vec![capacity_from],
        };
        // This process priced its own stretches from the snapshot, then live; its
        // storage from the snapshot. The fleet's accrued_usd is the day at the
        // one capacity rate the item holds (live): no stretch of it at the snapshot.
        let process: Arc<[AccrualSource]> = Arc::from(vec![
            source(AccrualCharge::Capacity, PriceOrigin::Snapshot, Some(&note)),
            source(AccrualCharge::Storage, PriceOrigin::Snapshot, Some(&note)),
            source(AccrualCharge::Capacity, PriceOrigin::Live, None),
        ]);
        let live = figures((PriceOrigin::Live, None));
        let sources = live.priced_from(Some(&process));
        assert_eq!(
            &*sources,
            [
                source(AccrualCharge::Capacity, PriceOrigin::Live, None),
                source(AccrualCharge::Storage, PriceOrigin::Snapshot, Some(&note)),
            ]
        );
        // Not a fallback's capacity: only the storage is a fallback.
        let fallbacks: Vec<AccrualCharge> = sources
            .iter()
            .filter(|s| s.is_fallback())
            .map(|s| s.charge)
            .collect();
        assert_eq!(fallbacks, [AccrualCharge::Storage]);
        // Priced at the snapshot now, the fleet's day says so, with its note.
        let snapshot = figures((PriceOrigin::Snapshot, Some(note.clone())));
        assert_eq!(
            &*snapshot.priced_from(Some(&process)),
            [
                source(AccrualCharge::Capacity, PriceOrigin::Snapshot, Some(&note)),
                source(AccrualCharge::Storage, PriceOrigin::Snapshot, Some(&note)),
            ]
        );
        // A process whose list says just that is handed back as it is.
        let same: Arc<[AccrualSource]> = Arc::from(vec![source(
            AccrualCharge::Capacity,
            PriceOrigin::Live,
            None,
        )]);
        assert!(Arc::ptr_eq(&live.priced_from(Some(&same)), &same));
        // No accrual of this process's own (yet): the capacity's source alone.
        assert_eq!(
            &*live.priced_from(None),
            [source(AccrualCharge::Capacity, PriceOrigin::Live, None)]
        );
    }

    #[test]
    fn a_threshold_check_on_a_corrupt_figure_saturates() {
        // 50 % of $25 is $12.50.
        let limit = 25_000_000_000_000;
        assert!(passes(12_500_000_000_000, limit, 50));
        assert!(!passes(12_499_999_999_999, limit, 50));
        // Figures whose products overflow an i128 (×100) compare saturated.
        assert!(passes(i128::MAX, limit, 100));
        assert!(!passes(i128::MIN, limit, 50));
        assert!(!passes(limit, i128::MAX, 50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_without_a_time_limit_is_no_panic() {
        let (fleet, _) = silent_fleet(FleetConfig::dynamodb("silent"), vec![dollar_a_day()]);
        // Nothing to write: done at once, however long it was given.
        assert_eq!(fleet.shutdown(Duration::MAX).await, Vec::<String>::new());
    }

    #[test]
    fn a_flush_loop_dropped_unpolled_is_not_taken_for_running() {
        let (fleet, _) = silent_fleet(FleetConfig::dynamodb("t"), vec![]);
        // A receipt made while a runtime shuts down (a task's destructor finishing a
        // call) spawns the loop onto a runtime that drops it without a poll.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        {
            let _entered = handle.enter();
            fleet.start_flushing();
        }
        // Not started: the next call, on a live runtime, starts it again.
        assert!(!fleet.shared.started.load(Ordering::SeqCst));
    }

    #[test]
    fn a_deadline_beyond_the_clock_is_no_deadline_not_a_panic() {
        let now = tokio::time::Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            deadline_after(now, Duration::from_secs(2)),
            now + Duration::from_secs(2)
        );
    }

    use std::collections::HashMap;

    /// The fleet's endpoint items as DynamoDB applies its writes to them, as far
    /// as its accrual reads them back: `rate:` and `accrual_from:` set where
    /// absent (`if_not_exists`), `allocated:` added; each write answered with
    /// the whole item (`ALL_NEW`). The names of the `rate:` attributes written
    /// are kept, in the order sent.
    #[derive(Clone, Default)]
    struct StretchTable {
        items: Arc<Mutex<HashMap<String, HashMap<String, AttributeValue>>>>,
        rates_sent: Arc<Mutex<Vec<String>>>,
    }

    impl StretchTable {
        fn answer(&self, input: &UpdateItemInput) -> Answer {
            let key = |name: &str| match input.key().and_then(|k| k.get(name)) {
                Some(AttributeValue::S(key)) => key.clone(),
                _ => String::new(),
            };
            let pk = key("pk");
            if !pk.starts_with("scope#endpoint:") {
                return attributes(&[]);
            }
            let mut items = self.items.lock().unwrap();
            let item = items.entry(format!("{pk}/{}", key("sk"))).or_default();
            let values = input.expression_attribute_values().unwrap();
            let mut names: Vec<(&String, &String)> =
                input.expression_attribute_names().unwrap().iter().collect();
            names.sort();
            for (alias, name) in names {
                let Some(value) = values.get(&alias.replacen('#', ":", 1)) else {
                    continue;
                };
                if alias.starts_with("#r") {
                    self.rates_sent.lock().unwrap().push(name.clone());
                    item.entry(name.clone()).or_insert_with(|| value.clone());
                } else if alias.starts_with("#f") {
                    item.entry(name.clone()).or_insert_with(|| value.clone());
                } else if alias.starts_with("#a") {
                    let n = |v: Option<&AttributeValue>| match v {
                        Some(AttributeValue::N(n)) => n.parse::<i128>().unwrap(),
                        _ => 0,
                    };
                    let sum = n(item.get(name)) + n(Some(value));
                    item.insert(name.clone(), AttributeValue::N(sum.to_string()));
                }
            }
            MockResponse::Output(
                UpdateItemOutput::builder()
                    .set_attributes(Some(item.clone()))
                    .build(),
            )
        }

        /// A process of the fleet on this table, its clock (its flushes')
        /// at the start of 2026-09-01.
        fn process(&self) -> Fleet {
            let table = self.clone();
            let (fleet, _, _) = scripted_fleet(
                FleetConfig::dynamodb("stretches"),
                vec![],
                utc("2026-09-01T00:00:00Z"),
                move |input| table.answer(input),
            );
            fleet
        }

        /// The `rate:` attributes the processes sent, in order.
        fn rates_sent(&self) -> Vec<String> {
            self.rates_sent.lock().unwrap().clone()
        }

        /// The stretch `chat`'s item of `day` holds from `at`.
        fn stretch(&self, day: &str, at: DateTime<Utc>) -> Option<HashMap<String, AttributeValue>> {
            let items = self.items.lock().unwrap();
            let item = items.get(&format!("scope#endpoint:chat/day#{day}"))?;
            match item.get(&rate_name(at))? {
                AttributeValue::M(map) => Some(map.clone()),
                _ => None,
            }
        }
    }

    /// Flushes `fleet` until nothing is left to write (a write's answer may
    /// leave a first call's rate to write, at the next).
    async fn written(fleet: &Fleet) {
        for _ in 0..3 {
            if fleet.flush().await {
                return;
            }
        }
        panic!("still something to write after 3 flushes");
    }

    /// The name of `chat`'s AllTraffic stretch from `at`.
    fn rate_name(at: DateTime<Utc>) -> String {
        format!("rate:AllTraffic:{}", at.timestamp_millis())
    }

    fn utc(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    const LIVE: RateFrom = (crate::pricing::PriceOrigin::Live, None);

    /// Where the rate of the term announced ahead comes from, and the rate
    /// looked up once it is in force: the cache, noted.
    fn cached_term() -> RateFrom {
        (
            crate::pricing::PriceOrigin::Cache,
            Some(Arc::from(
                "rate of the term effective 2026-09-01T12:00:00Z, announced in the Price \
                 List answer fetched 2026-09-01T08:00:00Z",
            )),
        )
    }

    /// 1 × ml.m5.xlarge at $0.20/h from `on`, announced ahead.
    fn announced(on: DateTime<Utc>) -> Arc<[StandingTerm]> {
        announced_usd(on, "0.20")
    }

    /// The instances at `usd` an hour from `on`, announced ahead.
    fn announced_usd(on: DateTime<Utc>, usd: &str) -> Arc<[StandingTerm]> {
        Arc::from(vec![StandingTerm {
            on: on.into(),
            usd_per_hour_all_instances: dec(usd),
            capacity_from: cached_term(),
            unreserved_fraction: None,
        }])
    }

    /// A call to `chat`'s AllTraffic from `started` to `ended`, as the meter
    /// hands it to the fleet: the rate its profile gives set as it is prepared
    /// (`usd` an hour from `from`, announcing `terms`), the receipt recorded as
    /// it ends. The fleet's accrual on its receipt.
    fn call(
        fleet: &Fleet,
        (started, ended): (DateTime<Utc>, DateTime<Utc>),
        usd: &str,
        from: RateFrom,
        terms: Arc<[StandingTerm]>,
    ) -> FleetAccrualFigures {
        call_described(fleet, (started, ended), usd, from, terms, started)
    }

    /// [`call`], its profile described at `described` (a cached one: the
    /// instance count it gives may be out of date).
    fn call_described(
        fleet: &Fleet,
        (started, ended): (DateTime<Utc>, DateTime<Utc>),
        usd: &str,
        from: RateFrom,
        terms: Arc<[StandingTerm]>,
        described: DateTime<Utc>,
    ) -> FleetAccrualFigures {
        let at = started.into();
        fleet.set_standing(
            "chat",
            "AllTraffic",
            dec(usd),
            from.clone(),
            terms.clone(),
            at,
            Some(described.into()),
        );
        let input = AccrualInput {
            usd_per_hour: dec(usd),
            capacity_from: from,
            terms,
            started_at: at,
            allocated_usd: None,
        };
        let recorded = fleet.record(
            "chat",
            Some("AllTraffic"),
            &BTreeMap::new(),
            dec("0.0001"),
            ended.into(),
            Some(input),
            true,
        );
        recorded.accrual.expect("an accrual")
    }

    fn at(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (t, t)
    }

    /// The cost model's worked example, its term dated at noon (the fleet's
    /// accrual is of a UTC day: a term dated at midnight begins one, see the
    /// next test): 1 × ml.m5.xlarge at $0.23/h with $0.20/h announced from
    /// 12:00, called at 11:50 and next at 12:30, nothing between. AWS bills
    /// 10 min × 0.23 + 30 min × 0.20 = 0.0383333… + 0.10 = $0.138333333333 (12
    /// places); at the rate looked up at 11:50 until the one looked up at 12:30
    /// it was 40 min × 0.23 = $0.153333333333.
    #[tokio::test(start_paused = true)]
    async fn the_fleets_accrual_goes_to_an_announced_terms_rate_at_its_date() {
        let table = StretchTable::default();
        let a = table.process();
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        call(&a, at(first), "0.23", LIVE, announced(noon));
        written(&a).await;
        let later = call(
            &a,
            at(utc("2026-09-01T12:30:00Z")),
            "0.20",
            cached_term(),
            crate::totals::no_terms(),
        );
        assert_eq!(later.accrued_usd, dec("0.138333333333"), "{later:?}");
        // Each stretch's source once: live, then the cache noted.
        assert_eq!(later.capacity_from, [LIVE, cached_term()]);
        written(&a).await;
        // The item holds the first call's stretch and the term's, from its
        // date, marked (read back by every process).
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
        let term = table.stretch("2026-09-01", noon).unwrap();
        assert_eq!(
            term.get("pico_per_hour"),
            Some(&AttributeValue::N("200000000000".into()))
        );
        assert_eq!(term.get("term"), Some(&AttributeValue::Bool(true)));
        // Noted once: a call at 12:40 writes no stretch. 10 min × 0.23 + 40 min ×
        // 0.20 = 0.0383333… + 0.1333333… = 0.171666666666… → $0.171666666667.
        let again = call(
            &a,
            at(utc("2026-09-01T12:40:00Z")),
            "0.20",
            cached_term(),
            crate::totals::no_terms(),
        );
        assert_eq!(again.accrued_usd, dec("0.171666666667"));
        written(&a).await;
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
    }

    /// A term dated at midnight begins the day: a call from 23:59:50 to
    /// 00:00:10, the new day's first, started at $0.23/h; $0.20/h from 00:00.
    /// The day accrues from midnight at 0.20: 10 s × 0.20 / 3,600 s =
    /// $0.000555555556; and at the next call, 00:30, 30 min × 0.20 = $0.10 (at
    /// the call's rate until a look-up, 30 min × 0.23 = $0.115).
    #[tokio::test(start_paused = true)]
    async fn a_call_across_a_terms_midnight_starts_the_day_at_the_terms_rate() {
        let table = StretchTable::default();
        let a = table.process();
        let midnight = utc("2026-09-01T00:00:00Z");
        let across = (utc("2026-08-31T23:59:50Z"), utc("2026-09-01T00:00:10Z"));
        let first = call(&a, across, "0.23", LIVE, announced(midnight));
        assert_eq!(first.accrued_usd, dec("0.000555555556"), "{first:?}");
        written(&a).await;
        let next = call(
            &a,
            at(utc("2026-09-01T00:30:00Z")),
            "0.20",
            cached_term(),
            crate::totals::no_terms(),
        );
        assert_eq!(next.accrued_usd, dec("0.10"), "{next:?}");
        assert!(table.stretch("2026-09-01", midnight).is_some());
    }

    /// A scaling change every process sees is written once, by the first to
    /// see it: X and B both call at 11:00 at $0.23/h (1 × ml.m5.xlarge); X's
    /// profile shows 2 instances ($0.46/h) at 12:00:10, B's at 12:00:40. B's
    /// write finds X's stretch at that rate and adds none (20 processes would
    /// otherwise add 20 stretches per change to the day's item). B's accrual at
    /// 12:01 is X's dating: 11:00 to 12:00:10 at 0.23 = 3,610 s × 0.23 / 3,600
    /// = 0.2306388…, then 50 s × 0.46 / 3,600 = 0.0063888…: $0.237027777778
    /// (B's own dating would say 3,640 s × 0.23 + 20 s × 0.46 = $0.235111111111).
    #[tokio::test(start_paused = true)]
    async fn a_scaling_change_another_process_wrote_first_is_not_written_again() {
        let table = StretchTable::default();
        let (x, b) = (table.process(), table.process());
        let eleven = utc("2026-09-01T11:00:00Z");
        let none = crate::totals::no_terms;
        call(&x, at(eleven), "0.23", LIVE, none());
        written(&x).await;
        call(&b, at(eleven), "0.23", LIVE, none());
        written(&b).await;
        let seen_by = |fleet: &Fleet, t: DateTime<Utc>| {
            fleet.set_standing(
                "chat",
                "AllTraffic",
                dec("0.46"),
                LIVE,
                none(),
                t.into(),
                Some(t.into()),
            );
        };
        let (by_x, by_b) = (utc("2026-09-01T12:00:10Z"), utc("2026-09-01T12:00:40Z"));
        seen_by(&x, by_x);
        written(&x).await;
        seen_by(&b, by_b);
        written(&b).await;
        assert_eq!(table.rates_sent(), [rate_name(eleven), rate_name(by_x)]);
        let of_b = call(&b, at(utc("2026-09-01T12:01:00Z")), "0.46", LIVE, none());
        assert_eq!(of_b.accrued_usd, dec("0.237027777778"), "{of_b:?}");
        written(&b).await;
        assert_eq!(table.rates_sent(), [rate_name(eleven), rate_name(by_x)]);
    }

    /// A scaling change after a term is written even where its rate is the
    /// held stretch's before the term: 2 × ml.m5.xlarge, $0.30/h each, the
    /// Price List announcing $0.20/h from 12:00. X's first call is at 00:00 at
    /// 2 × 0.30 = $0.60/h; it calls again at 12:30 and notes the 12:00 term, 2 ×
    /// 0.20 = $0.40/h. At 15:00 autoscaling adds an instance: 3 × 0.20 =
    /// $0.60/h, the rate of 2 before the term, but a change X's profile saw,
    /// not a stale look-up. AWS bills 00:00–12:00 at 0.60, 12:00–15:00 at
    /// 0.40, 15:00–16:00 at 0.60: 7.20 + 1.20 + 0.60 = $9.00 at 16:00 (with
    /// the change dropped, 7.20 + 4 h × 0.40 = $8.80).
    #[tokio::test(start_paused = true)]
    async fn a_scaling_change_at_the_rate_a_term_replaced_is_written() {
        let table = StretchTable::default();
        let x = table.process();
        let midnight = utc("2026-09-01T00:00:00Z");
        let noon = utc("2026-09-01T12:00:00Z");
        let three = utc("2026-09-01T15:00:00Z");
        let none = crate::totals::no_terms;
        call(&x, at(midnight), "0.60", LIVE, announced_usd(noon, "0.40"));
        written(&x).await;
        call(
            &x,
            at(utc("2026-09-01T12:30:00Z")),
            "0.40",
            cached_term(),
            none(),
        );
        written(&x).await;
        assert_eq!(table.rates_sent(), [rate_name(midnight), rate_name(noon)]);
        x.set_standing(
            "chat",
            "AllTraffic",
            dec("0.60"),
            LIVE,
            none(),
            three.into(),
            Some(three.into()),
        );
        written(&x).await;
        assert!(table.rates_sent().contains(&rate_name(three)));
        let later = call(&x, at(utc("2026-09-01T16:00:00Z")), "0.60", LIVE, none());
        assert_eq!(later.accrued_usd, dec("9.00"), "{later:?}");
    }

    /// Two processes on the variant of the worked example: A's Price List
    /// answer announced the term, B's predates the announcement (B has not
    /// looked the rate up since). Both accrue over 12:00: once B has read the
    /// item back after A noted the term, each says 10 min × 0.23 + 45 min × 0.20
    /// = 0.0383333… + 0.15 = $0.188333333333 at 12:45 (B alone would say 55 min
    /// × 0.23 = $0.210833333333).
    #[tokio::test(start_paused = true)]
    async fn a_term_noted_by_one_process_prices_every_processs_accrual() {
        let table = StretchTable::default();
        let (a, b) = (table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        call(&a, at(first), "0.23", LIVE, announced(noon));
        written(&a).await;
        let none = crate::totals::no_terms;
        call(&b, at(utc("2026-09-01T11:55:00Z")), "0.23", LIVE, none());
        written(&b).await;
        // 12:30: A looks the rate up (the term's) and notes the term.
        call(
            &a,
            at(utc("2026-09-01T12:30:00Z")),
            "0.20",
            cached_term(),
            none(),
        );
        written(&a).await;
        // 12:40: B's call, then its write reads the term back.
        call(&b, at(utc("2026-09-01T12:40:00Z")), "0.23", LIVE, none());
        written(&b).await;
        let t = at(utc("2026-09-01T12:45:00Z"));
        let of_b = call(&b, t, "0.23", LIVE, none());
        let of_a = call(&a, t, "0.20", cached_term(), none());
        for (who, accrual) in [("A", of_a), ("B", of_b)] {
            assert_eq!(
                accrual.accrued_usd,
                dec("0.188333333333"),
                "{who}: {accrual:?}"
            );
            assert_eq!(accrual.capacity_from, [LIVE, cached_term()], "{who}");
        }
        written(&a).await;
        written(&b).await;
        // A's first call and the term: B's rate was in force before the term,
        // nothing to write.
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
    }

    /// After A noted the term from 12:00, C's first call (12:50) is at the rate
    /// the term replaced (its answer predates the announcement, though its
    /// profile is described after 12:00): it does not undo the term. D's first
    /// call, at the term's rate it looked up, agrees. At 13:00 every process
    /// says 10 min × 0.23 + 60 min × 0.20 = 0.0383333… + 0.20 = $0.238333333333
    /// (with C's rate from 12:50: 0.0383333… + 50 min × 0.20 + 10 min × 0.23 =
    /// $0.243333333333).
    #[tokio::test(start_paused = true)]
    async fn a_first_call_at_the_rate_a_term_replaced_does_not_undo_it() {
        let table = StretchTable::default();
        let (a, c, d) = (table.process(), table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        let none = crate::totals::no_terms;
        call(&a, at(first), "0.23", LIVE, announced(noon));
        written(&a).await;
        call(
            &a,
            at(utc("2026-09-01T12:30:00Z")),
            "0.20",
            cached_term(),
            none(),
        );
        written(&a).await;
        let late = at(utc("2026-09-01T12:50:00Z"));
        call(&c, late, "0.23", LIVE, none());
        call(&d, late, "0.20", cached_term(), none());
        // The first write reads the item back; a stretch news to it would go
        // with the next.
        written(&c).await;
        written(&d).await;
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
        let t = at(utc("2026-09-01T13:00:00Z"));
        for (who, process, usd, from) in [
            ("A", &a, "0.20", cached_term()),
            ("C", &c, "0.23", LIVE),
            ("D", &d, "0.20", cached_term()),
        ] {
            let accrual = call(process, t, usd, from, none());
            assert_eq!(
                accrual.accrued_usd,
                dec("0.238333333333"),
                "{who}: {accrual:?}"
            );
        }
    }

    /// A first call at the rate a term replaced, for an instance count another
    /// process recorded after the term, does not undo it either. 1 ×
    /// ml.m5.xlarge at $0.23/h, $0.20/h announced from 12:00. X calls at 11:50,
    /// notes the term at 12:05, and its profile shows 2 instances at 12:10: 2 ×
    /// 0.20 = $0.40/h from 12:10, not a term's. B's Price List answer predates
    /// the announcement: its profile, described at 12:15, gives 2 × 0.23 =
    /// $0.46/h, the same 2 instances at the rate the term replaced (0.46 × 0.20
    /// = 0.40 × 0.23 = 0.092): B's first call at 12:20 writes nothing. At 12:30
    /// X and B say 10 min × 0.23 + 10 min × 0.20 + 20 min × 0.40 = 0.0383333…
    /// + 0.0333333… + 0.1333333… = (0.23 + 0.20 + 0.80) / 6 = $0.205. With B's
    /// 0.46 from 12:20 it was 10 min × 0.23 + 10 min × 0.20 + 10 min × 0.40 +
    /// 10 min × 0.46 = (0.23 + 0.20 + 0.40 + 0.46) / 6 = $0.215.
    #[tokio::test(start_paused = true)]
    async fn a_first_call_at_the_replaced_rate_after_a_later_scale_out_does_not_undo_a_term() {
        let table = StretchTable::default();
        let (x, b) = (table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        let scaled = utc("2026-09-01T12:10:00Z");
        let none = crate::totals::no_terms;
        let of_x = |t: DateTime<Utc>, usd| call(&x, at(t), usd, cached_term(), none());
        call(&x, at(first), "0.23", LIVE, announced(noon));
        written(&x).await;
        of_x(utc("2026-09-01T12:05:00Z"), "0.20");
        written(&x).await;
        of_x(scaled, "0.40");
        written(&x).await;
        let described = utc("2026-09-01T12:15:00Z");
        let of_b = |t: &str| call_described(&b, at(utc(t)), "0.46", LIVE, none(), described);
        of_b("2026-09-01T12:20:00Z");
        written(&b).await;
        let sent = [rate_name(first), rate_name(noon), rate_name(scaled)];
        assert_eq!(table.rates_sent(), sent);
        let t = utc("2026-09-01T12:30:00Z");
        for (who, accrual) in [("X", of_x(t, "0.40")), ("B", of_b("2026-09-01T12:30:00Z"))] {
            assert_eq!(accrual.accrued_usd, dec("0.205"), "{who}: {accrual:?}");
        }
        written(&x).await;
        written(&b).await;
        assert_eq!(table.rates_sent(), sent);
    }

    /// A first call's genuine change after a term and a later scale-out is
    /// still written. As above, X at 2 × 0.20 = $0.40/h from 12:10; B has the
    /// term's rate and its profile, described at 12:15, shows 3 instances: 3 ×
    /// 0.20 = $0.60/h, not X's 2 instances at the rate before the term (0.60 ×
    /// 0.20 = 0.12, 0.40 × 0.23 = 0.092). B writes 0.60 from 12:20, X reads it
    /// back at 12:25. At 12:30 both say 10 min × 0.23 + 10 min × 0.20 + 10 min
    /// × 0.40 + 10 min × 0.60 = (0.23 + 0.20 + 0.40 + 0.60) / 6 = 1.43 / 6 =
    /// 0.2383333… → $0.238333333333 (without B's stretch, $0.205).
    #[tokio::test(start_paused = true)]
    async fn a_first_calls_scale_out_after_a_term_and_a_later_stretch_is_news() {
        let table = StretchTable::default();
        let (x, b) = (table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        let scaled = utc("2026-09-01T12:10:00Z");
        let none = crate::totals::no_terms;
        let of_x = |t: &str, usd| call(&x, at(utc(t)), usd, cached_term(), none());
        call(&x, at(first), "0.23", LIVE, announced(noon));
        written(&x).await;
        of_x("2026-09-01T12:05:00Z", "0.20");
        written(&x).await;
        of_x("2026-09-01T12:10:00Z", "0.40");
        written(&x).await;
        let described = utc("2026-09-01T12:15:00Z");
        let of_b = |t: &str| {
            let t = at(utc(t));
            call_described(&b, t, "0.60", cached_term(), none(), described)
        };
        let three = utc("2026-09-01T12:20:00Z");
        of_b("2026-09-01T12:20:00Z");
        written(&b).await;
        let sent = [
            rate_name(first),
            rate_name(noon),
            rate_name(scaled),
            rate_name(three),
        ];
        assert_eq!(table.rates_sent(), sent);
        let stretch = table.stretch("2026-09-01", three).unwrap();
        assert_eq!(
            stretch.get("pico_per_hour"),
            Some(&AttributeValue::N("600000000000".into()))
        );
        of_x("2026-09-01T12:25:00Z", "0.40");
        written(&x).await;
        let t = "2026-09-01T12:30:00Z";
        for (who, accrual) in [("X", of_x(t, "0.40")), ("B", of_b(t))] {
            assert_eq!(
                accrual.accrued_usd,
                dec("0.238333333333"),
                "{who}: {accrual:?}"
            );
        }
    }

    /// Two terms in a day: 1 × ml.m5.xlarge at $0.23/h, $0.20/h announced from
    /// 12:00 and $0.18/h from 13:00. X calls at 11:50, notes both terms at
    /// 13:05, and its profile shows 2 instances at 13:10: 2 × 0.18 = $0.36/h
    /// from 13:10. Profiles described at 13:15 give B, whose answer announced
    /// neither term, 2 × 0.23 = $0.46/h (0.46 × 0.20 × 0.18 = 0.36 × 0.23 ×
    /// 0.20), and B′, whose answer came after the first and before the
    /// second's announcement, 2 × 0.20 = $0.40/h (0.40 × 0.18 = 0.36 × 0.20):
    /// both the 2 instances at a rate a term replaced, their first calls (13:20,
    /// 13:25) write nothing. At 13:30 each says 10 min × 0.23 + 60 min × 0.20 +
    /// 10 min × 0.18 + 20 min × 0.36 = 0.0383333… + 0.20 + 0.03 + 0.12 =
    /// 0.3883333… → $0.388333333333 (with B's 0.46 from 13:20 and B′'s rate
    /// unwritten: 0.0383333… + 0.20 + 0.03 + 10 min × 0.36 + 10 min × 0.46 =
    /// $0.405).
    #[tokio::test(start_paused = true)]
    async fn a_first_call_at_a_rate_two_terms_replaced_does_not_undo_them() {
        let table = StretchTable::default();
        let (x, b, b2) = (table.process(), table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let one = utc("2026-09-01T13:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        let scaled = utc("2026-09-01T13:10:00Z");
        let none = crate::totals::no_terms;
        let second: RateFrom = (
            crate::pricing::PriceOrigin::Cache,
            Some(Arc::from(
                "rate of the term effective 2026-09-01T13:00:00Z, announced in the Price \
                 List answer fetched 2026-09-01T08:00:00Z",
            )),
        );
        let both: Arc<[StandingTerm]> = Arc::from(vec![
            StandingTerm {
                on: noon.into(),
                usd_per_hour_all_instances: dec("0.20"),
                capacity_from: cached_term(),
                unreserved_fraction: None,
            },
            StandingTerm {
                on: one.into(),
                usd_per_hour_all_instances: dec("0.18"),
                capacity_from: second.clone(),
                unreserved_fraction: None,
            },
        ]);
        let of_x = |t: &str, usd| call(&x, at(utc(t)), usd, second.clone(), none());
        call(&x, at(first), "0.23", LIVE, both);
        written(&x).await;
        of_x("2026-09-01T13:05:00Z", "0.18");
        written(&x).await;
        of_x("2026-09-01T13:10:00Z", "0.36");
        written(&x).await;
        let sent = [
            rate_name(first),
            rate_name(noon),
            rate_name(one),
            rate_name(scaled),
        ];
        assert_eq!(table.rates_sent(), sent);
        let described = utc("2026-09-01T13:15:00Z");
        let of_b = |t: &str| call_described(&b, at(utc(t)), "0.46", LIVE, none(), described);
        let of_b2 = |t: &str| {
            let t = at(utc(t));
            call_described(&b2, t, "0.40", cached_term(), none(), described)
        };
        of_b("2026-09-01T13:20:00Z");
        written(&b).await;
        of_b2("2026-09-01T13:25:00Z");
        written(&b2).await;
        assert_eq!(table.rates_sent(), sent);
        let t = "2026-09-01T13:30:00Z";
        for (who, accrual) in [("X", of_x(t, "0.36")), ("B", of_b(t)), ("B′", of_b2(t))] {
            assert_eq!(
                accrual.accrued_usd,
                dec("0.388333333333"),
                "{who}: {accrual:?}"
            );
        }
    }

    /// Cron-style short runs on 1 × ml.m5.xlarge at $0.23/h, their cached Price
    /// List answer announcing $0.20/h from 12:00: A calls at 11:50 and exits;
    /// A′ first calls at 12:30 (the rate in force then is the term's). A′ notes
    /// the 12:00 term, which replaces the stretch the item holds before it (A's
    /// 0.23, the rate A′ had before the term), and not its own 12:30 stretch
    /// (the term's rate is in force then). B, at the term's rate it looked up,
    /// calls at 12:35 and reads the item back; at 12:40 every process says 10
    /// min × 0.23 + 40 min × 0.20 = 0.0383333… + 0.1333333… = 0.171666666666…
    /// → $0.171666666667. With the term unwritten (A′ noting only terms after
    /// its first call, and its own 12:30 stretch) it was 40 min × 0.23 + 10 min
    /// × 0.20 = 0.1533333… + 0.0333333… = $0.186666666667.
    #[tokio::test(start_paused = true)]
    async fn a_term_dated_before_a_processs_first_call_is_noted_at_it() {
        let table = StretchTable::default();
        let (a, a2, b) = (table.process(), table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:50:00Z");
        let none = crate::totals::no_terms;
        call(&a, at(first), "0.23", LIVE, announced(noon));
        written(&a).await;
        drop(a);
        call(
            &a2,
            at(utc("2026-09-01T12:30:00Z")),
            "0.23",
            LIVE,
            announced(noon),
        );
        written(&a2).await;
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
        let term = table.stretch("2026-09-01", noon).unwrap();
        assert_eq!(
            term.get("pico_per_hour"),
            Some(&AttributeValue::N("200000000000".into()))
        );
        assert_eq!(term.get("term"), Some(&AttributeValue::Bool(true)));
        call(
            &b,
            at(utc("2026-09-01T12:35:00Z")),
            "0.20",
            cached_term(),
            none(),
        );
        written(&b).await;
        let t = at(utc("2026-09-01T12:40:00Z"));
        let of_a2 = call(&a2, t, "0.23", LIVE, announced(noon));
        let of_b = call(&b, t, "0.20", cached_term(), none());
        for (who, accrual) in [("A′", of_a2), ("B", of_b)] {
            assert_eq!(
                accrual.accrued_usd,
                dec("0.171666666667"),
                "{who}: {accrual:?}"
            );
        }
        written(&a2).await;
        written(&b).await;
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(noon)]);
    }

    /// A term priced from an out-of-date instance count does not override a
    /// scale-out another process recorded. A's profile, described at 11:30,
    /// gives 1 × ml.m5.xlarge at $0.23/h, its answer announcing $0.20/h from
    /// 12:00; the endpoint is at 2 instances from 11:55, when X (its answer
    /// announcing 2 × 0.20 = $0.40/h from 12:00) records 2 × 0.23 = $0.46/h. A
    /// calls at 12:10, still on its 11:30 profile: the stretch the item holds
    /// before 12:00 is X's 0.46, not A's 0.23, so A does not note its 12:00
    /// term; X notes its own at 12:20. At 12:30: 25 min × 0.23 + 5 min × 0.46
    /// + 30 min × 0.40 = 0.0958333… + 0.0383333… + 0.20 = 0.334166666666… →
    /// $0.334166666667 for A and X. With A's term written first (the first
    /// writer keeps a stretch) it was 0.0958333… + 0.0383333… + 30 min × 0.20
    /// = $0.234166666667, 0.20/h short from 12:00.
    #[tokio::test(start_paused = true)]
    async fn a_term_priced_from_an_out_of_date_instance_count_is_not_noted() {
        let table = StretchTable::default();
        let (a, x) = (table.process(), table.process());
        let noon = utc("2026-09-01T12:00:00Z");
        let described = utc("2026-09-01T11:30:00Z");
        let scaled = utc("2026-09-01T11:55:00Z");
        let of_a = |t: &str| {
            let t = at(utc(t));
            call_described(&a, t, "0.23", LIVE, announced(noon), described)
        };
        let of_x = |t: &str| call(&x, at(utc(t)), "0.46", LIVE, announced_usd(noon, "0.40"));
        of_a("2026-09-01T11:30:00Z");
        written(&a).await;
        of_x("2026-09-01T11:55:00Z");
        written(&x).await;
        of_a("2026-09-01T12:10:00Z");
        written(&a).await;
        of_x("2026-09-01T12:20:00Z");
        written(&x).await;
        of_a("2026-09-01T12:25:00Z");
        written(&a).await;
        assert_eq!(
            table.rates_sent(),
            [rate_name(described), rate_name(scaled), rate_name(noon)]
        );
        let term = table.stretch("2026-09-01", noon).unwrap();
        assert_eq!(
            term.get("pico_per_hour"),
            Some(&AttributeValue::N("400000000000".into()))
        );
        for (who, accrual) in [
            ("A", of_a("2026-09-01T12:30:00Z")),
            ("X", of_x("2026-09-01T12:30:00Z")),
        ] {
            assert_eq!(
                accrual.accrued_usd,
                dec("0.334166666667"),
                "{who}: {accrual:?}"
            );
        }
    }

    /// The look-up that reveals another instance count does not note the old
    /// rate's terms: when the count changed is not known. A's profile,
    /// described at 11:30, gives 1 × ml.m5.xlarge at $0.23/h with $0.20/h
    /// announced from 12:00; described again at 12:30 it gives 2 instances,
    /// 2 × 0.23 = $0.46/h with 2 × 0.20 = $0.40/h from 12:00, so $0.40/h in
    /// force. A notes 0.40 from 12:30 and not 0.20 from 12:00 (which would price
    /// 12:00–12:30 at half the instances if the scale-out came before noon). At
    /// 12:45: 60 min × 0.23 + 15 min × 0.40 = 0.23 + 0.10 = $0.33 (with the old
    /// term noted, 30 min × 0.23 + 30 min × 0.20 + 15 min × 0.40 = 0.115 + 0.10
    /// + 0.10 = $0.315).
    #[tokio::test(start_paused = true)]
    async fn the_look_up_revealing_another_instance_count_notes_no_old_term() {
        let table = StretchTable::default();
        let a = table.process();
        let noon = utc("2026-09-01T12:00:00Z");
        let first = utc("2026-09-01T11:30:00Z");
        let refreshed = utc("2026-09-01T12:30:00Z");
        call(&a, at(first), "0.23", LIVE, announced(noon));
        written(&a).await;
        let two = || announced_usd(noon, "0.40");
        call(&a, at(refreshed), "0.46", LIVE, two());
        written(&a).await;
        assert_eq!(table.rates_sent(), [rate_name(first), rate_name(refreshed)]);
        let later = call(&a, at(utc("2026-09-01T12:45:00Z")), "0.46", LIVE, two());
        assert_eq!(later.accrued_usd, dec("0.33"), "{later:?}");
    }

    /// A write applied with its answer lost, found applied when resent, counts
    /// its calls as this process's: the fleet's count moves past them with them.
    ///
    /// A lone process, 3 calls to chat's v1 a flush: W0 (3) answered, the item
    /// holding 3; W1 (3) applied, 6, its answer lost (a 500); W1 again, found
    /// applied (the item returned as it is: 6); W2 (the 6 calls since) applied,
    /// 12. The share's counts are smoothed as `Totals::set_fleet_share` does,
    /// each weighing 1024 and older ones 3/4 of that. Now: the resend's sample
    /// is 3 of 3 (3,072 / 3,072), W2's 6 of 6: 3,072 × 3/4 + 6 × 1,024 =
    /// 8,448 both, a share of 1. Before, the resend gave none and W2's was 6 of
    /// 12 - 3 = 9: (6,144 / 9,216), 2/3, when this process made every call. From
    /// the steady state (4,096 c each) that sample takes the share to 5,120 /
    /// 6,144 = 5/6, then 0.864, 0.890, 0.913…: some 0.79 of a flush interval's
    /// gaps unbilled per lost answer (0.2 s at 250 ms, 0.2 / 3,600 h × $1.408/h
    /// ≈ $0.00008 on an ml.g5.xlarge), always short.
    #[tokio::test(start_paused = true)]
    async fn a_write_found_applied_when_resent_counts_its_calls_in_the_share() {
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let calls_v1 = format!("{}v1", table::VARIANT_CALLS_PREFIX);
        // The endpoint's item: its calls to v1, the sequence number applied, and
        // whether the next applied write's answer is lost.
        let item = Arc::new(Mutex::new((0u64, 0u64, false)));
        let (fleet, _, _) = {
            let item = item.clone();
            let calls_v1 = calls_v1.clone();
            scripted_fleet(
                FleetConfig::dynamodb("scripted"),
                Vec::new(),
                t0,
                move |input| {
                    let endpoint = matches!(
                        input.key().and_then(|k| k.get(table::PK)),
                        Some(AttributeValue::S(pk)) if pk.starts_with(keys::ENDPOINT_PK_PREFIX)
                    );
                    if kind(input) != "write" || !endpoint {
                        return attributes(&[]);
                    }
                    let values = input.expression_attribute_values().unwrap();
                    let number = |name: &str| match values.get(name) {
                        Some(AttributeValue::N(n)) => n.parse::<u64>().unwrap(),
                        _ => 0,
                    };
                    let seq = number(":seq");
                    let added = input
                        .expression_attribute_names()
                        .into_iter()
                        .flatten()
                        .find(|(_, v)| **v == calls_v1)
                        .map_or(0, |(k, _)| number(&format!(":{}", &k[1..])));
                    let mut item = item.lock().unwrap();
                    let (calls, applied, lose) = &mut *item;
                    if *applied >= seq {
                        let seq_name = named(input, "#seq").unwrap().to_owned();
                        return MockResponse::Error(
                            UpdateItemError::ConditionalCheckFailedException(
                                ConditionalCheckFailedException::builder()
                                    .set_item(Some(
                                        [
                                            (seq_name, AttributeValue::N(applied.to_string())),
                                            (
                                                calls_v1.clone(),
                                                AttributeValue::N(calls.to_string()),
                                            ),
                                        ]
                                        .into(),
                                    ))
                                    .build(),
                            ),
                        );
                    }
                    *calls += added;
                    *applied = seq;
                    if std::mem::take(lose) {
                        return MockResponse::Http(
                            aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                                500.try_into().unwrap(),
                                aws_smithy_types::body::SdkBody::empty(),
                            ),
                        );
                    }
                    attributes(&[(calls_v1.as_str(), i128::from(*calls))])
                },
            )
        };
        let slot = fleet.shared.totals.endpoint_slot("chat");
        let v1 = fleet.shared.totals.variant_slot(slot, "v1");
        let three_calls = || {
            for _ in 0..3 {
                fleet.record(
                    "chat",
                    Some("v1"),
                    &BTreeMap::new(),
                    dec("0.01"),
                    t0.into(),
                    None,
                    true,
                );
            }
        };
        // W0: the count's baseline.
        three_calls();
        assert!(fleet.flush().await);
        assert_eq!(fleet.shared.totals.fleet_share(v1), None);
        // W1: applied, its answer lost.
        three_calls();
        item.lock().unwrap().2 = true;
        assert!(!fleet.flush().await);
        assert_eq!(item.lock().unwrap().0, 6);
        // W1 again: found applied.
        three_calls();
        fleet.flush().await;
        // W2: the 6 calls since.
        three_calls();
        assert!(fleet.flush().await);
        assert_eq!(item.lock().unwrap().0, 12);
        assert_eq!(fleet.shared.totals.fleet_share(v1), Some((8448, 8448)));
    }
}
