//! A model-based property test of budgets.
//!
//! Random runs of calls at non-decreasing UTC times (across hour, day and
//! month starts, month ends and 29 February among them) are played against
//! [`Budgets`] as the client plays them: a call reserves, then settles to a
//! cost above, below or at its estimate, priced or not, or is released
//! unbilled; an async invocation reserves, settles its submission as a part,
//! holds the rest until a set time, then settles or is dropped; an async
//! invocation settled by another client counts here unreserved. After every
//! step the budgets are compared with a model kept here, apart from the code
//! under test, as the module's docs state the rules:
//!
//! - an enforced budget admits a call only if, in the current period,
//!   spent + held + the call's estimate ≤ limit (equality admitted), and a call
//!   refused by any enforced budget covering it holds nothing anywhere;
//! - a call's estimate is held until it settles; a part settled lowers what it
//!   holds by as much (not below 0);
//! - what an async invocation still holds at its lapse time is charged, as
//!   run, at the budgets' next reservation or status, or when any call's
//!   reservation is dropped (its own among them; the alerts raised as a
//!   settlement would raise them, a drop's at the budgets' next call or
//!   status, never inside the drop): SageMaker has run it or dropped it by then, and were
//!   it only released, more work would be let in while its own may still be
//!   billed (20 jobs filling a limit, lapsing every 6 min and settled every
//!   30, would let 100 through). Its settlement replaces the charge: in the
//!   charge's period, the charge is taken back and the settlement charged; in
//!   the next, only what the settlement passes the charge by is charged;
//!   later, the charge is forgotten and the settlement counts as one nothing
//!   was held for. Dropped, or a part settled, it stays charged;
//! - a copy of an async invocation settled here (its serialised pending
//!   invocation read back) is its settlement, whether the original is kept
//!   or was dropped, before its lapse or after: what the original holds, or
//!   was charged when it lapsed (until forgotten), and its parts settled so
//!   far and how fully they were priced go with it, and the original holds
//!   nothing after; were it counted unreserved beside them, a job settled
//!   through a copy would count its settlement and its lapsed hold's charge
//!   ($0.30 and $0.4999: $0.80 for $0.30), and one whose submission left a
//!   bounded line unpriced would lose its bound. An invocation dropped before
//!   its hold lapsed, or whose lapse was set while it held nothing, is
//!   remembered charged nothing until its hold's lapse time (SageMaker has
//!   finished or dropped the job by then). A copy of an invocation whose hold is neither
//!   held nor charged nor remembered here counts as a call nothing was held
//!   for;
//! - an async invocation settled elsewhere (another client's meter, another
//!   process of the fleet) has its hold released here, and its lapsed hold's
//!   charge replaced as a settlement of $0 would replace it: taken back in
//!   its own period, kept after it;
//! - a settled call adds its cost to every budget covering it, and one not
//!   fully priced (any of its parts) adds to an enforced budget no less than
//!   what it held there (or, holding nothing there, than what it would have
//!   been estimated at, less the parts settled before of an invocation a copy
//!   takes over), unless every part it left unpriced has a bound: then
//!   its priced cost and those bounds; an alerting budget counts the priced
//!   part only; both count it among `unpriced_calls`;
//! - a settled call is remembered, by every budget it counts in, with its
//!   endpoint, at its priced cost (all its parts'), plus
//!   the bounds of what they left unpriced when every such line has one (the
//!   most it can have cost: an estimate, as a fully priced cost is), else a
//!   lower bound when it was not fully priced; a budget's estimate from the
//!   recent costs of its calls to an endpoint is their most, and while they
//!   hold no whole cost above $0 (none, lower bounds, $0 receipts: no
//!   estimate on their own) no less than the latest whole cost above $0 of
//!   its calls to the endpoint, however long ago, or the initial
//!   figure before it has one (its compute's price gone today, calls that
//!   cost $3 yesterday are estimated at $3, not at the initial $0.01, which
//!   would let some 10,000 of them through a $100 limit);
//! - spend, unpriced calls and alerts start again at each period's start, in
//!   UTC; what is held stays held across it;
//! - each of 50, 80 and 100 % is alerted once per period, at the settlement
//!   whose spend reaches it (spent ≥ that share of the limit).
//!
//! Figures are decimals of a few places, so that the model's sums are exact;
//! shares of the limit are compared by cross-multiplying, never dividing.

use super::*;
use aws_smithy_async::test_util::ManualTimeSource;
use chrono::{NaiveDate, TimeDelta};
use proptest::prelude::*;

const ENDPOINTS: [&str; 3] = ["chat", "embed", "jobs"];
const TEAMS: [&str; 2] = ["search", "ads"];
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A budget as configured in a run.
#[derive(Debug, Clone)]
struct Spec {
    /// 0 client, 1 endpoint chat, 2 endpoint jobs, 3 tag team=search,
    /// 4 each value of tag tenant.
    scope: u8,
    period: BudgetPeriod,
    enforce: bool,
    limit: &'static str,
    /// `Some(calls)`: the most of the last `calls` receipts, else fixed.
    recent: Option<usize>,
    /// The fixed estimate, or the initial one (at most the limit, for a fixed
    /// estimate of an enforced budget).
    usd: &'static str,
}

impl Spec {
    fn scope(&self) -> BudgetScope {
        match self.scope {
            0 => BudgetScope::Client,
            1 => BudgetScope::Endpoint {
                name: "chat".to_owned(),
            },
            2 => BudgetScope::Endpoint {
                name: "jobs".to_owned(),
            },
            3 => BudgetScope::Tag {
                key: "team".to_owned(),
                value: "search".to_owned(),
            },
            _ => BudgetScope::EachTagValue {
                key: "tenant".to_owned(),
            },
        }
    }

    fn estimate(&self) -> Estimate {
        match self.recent {
            Some(calls) => Estimate::RecentMax {
                calls,
                initial_usd: dec(self.usd),
            },
            None => Estimate::Fixed {
                usd: self.fixed_usd(),
            },
        }
    }

    fn fixed_usd(&self) -> Decimal {
        let usd = dec(self.usd);
        match self.enforce {
            true => usd.min(dec(self.limit)),
            false => usd,
        }
    }

    fn budget(&self, alerts: &Arc<Mutex<Vec<BudgetAlert>>>) -> Budget {
        let limit = dec(self.limit);
        let budget = match self.enforce {
            true => Budget::enforce(self.scope(), self.period, limit),
            false => Budget::alert(self.scope(), self.period, limit),
        };
        let seen = alerts.clone();
        budget
            .unwrap()
            .estimate(self.estimate())
            .unwrap()
            .on_alert(move |alert| seen.lock().unwrap().push(alert.clone()))
    }
}

/// A cost, as such or against the call's estimate (the most any budget
/// held for it, as the model worked it out).
#[derive(Debug, Clone, Copy)]
enum Cost {
    Usd(&'static str),
    Estimate,
    Above(&'static str),
    Below(&'static str),
}

/// How a receipt (or a part) is priced.
#[derive(Debug, Clone, Copy)]
enum Pricing {
    Fully,
    /// All but lines of at most this much.
    Bounded(&'static str),
    /// Some line of no known bound.
    Partly,
}

impl Pricing {
    /// As the code under test is told it.
    fn told(self) -> Priced {
        match self {
            Pricing::Fully => Priced::Fully,
            Pricing::Bounded(usd) => Priced::AllBut {
                unpriced_usd: dec(usd),
            },
            Pricing::Partly => Priced::Partly,
        }
    }
}

/// One step of a run, `gap_ms` after the one before.
#[derive(Debug, Clone)]
enum Op {
    /// A call reserves (kept open if admitted).
    Reserve {
        endpoint: usize,
        team: Option<usize>,
        tenant: Option<usize>,
    },
    /// An open call settles (picked by index among those open).
    Settle {
        which: usize,
        cost: Cost,
        priced: Pricing,
    },
    /// An open call settles a part (an async submission); with `lapse_s`, the
    /// rest it holds then lapses that many seconds on.
    Part {
        which: usize,
        cost: Cost,
        priced: Pricing,
        lapse_s: Option<i64>,
    },
    /// An open call is dropped unsettled (one that never reached the model, an
    /// async invocation dropped): the holds lapsed by then are charged, then
    /// what it still holds is released.
    Drop { which: usize },
    /// A copy of an async invocation (picked by index among those open, then
    /// those dropped after their lapse) is settled here, unreserved; an open
    /// original is dropped after it.
    Copy {
        which: usize,
        cost: Cost,
        priced: Pricing,
    },
    /// An open async invocation is settled elsewhere (another client's meter,
    /// another process of the fleet: its settlement here is a duplicate).
    Elsewhere { which: usize },
    /// A call settled without a reservation here (an async invocation
    /// settled by another client's meter).
    Unreserved {
        endpoint: usize,
        team: Option<usize>,
        tenant: Option<usize>,
        cost: &'static str,
        priced: Pricing,
    },
}

#[derive(Debug, Clone)]
struct Run {
    start: DateTime<Utc>,
    specs: Vec<Spec>,
    steps: Vec<(i64, Op)>,
    /// How the calls still open at the end finish: settled at their estimate
    /// (true) or dropped.
    finish: Vec<bool>,
}

// ---------------------------------------------------------------- the model

/// The start of the period holding `at`, in UTC, worked out from the instant's
/// seconds (hours and days) or its calendar date (months).
fn period_start(period: BudgetPeriod, at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp();
    let floor = |unit: i64| DateTime::from_timestamp(secs - secs.rem_euclid(unit), 0).unwrap();
    match period {
        BudgetPeriod::Hour => floor(3_600),
        BudgetPeriod::Day => floor(86_400),
        BudgetPeriod::Month => {
            let date = at.date_naive();
            NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        }
    }
}

/// An instant in the period after the one starting at `start`: a whole hour or
/// day on, or (months) 31 days on from a month's first day.
fn next_period(period: BudgetPeriod, start: DateTime<Utc>) -> DateTime<Utc> {
    start
        + match period {
            BudgetPeriod::Hour => TimeDelta::hours(1),
            BudgetPeriod::Day => TimeDelta::days(1),
            BudgetPeriod::Month => TimeDelta::days(31),
        }
}

struct MBudget {
    scope: BudgetScope,
    spec: Spec,
    start: Option<DateTime<Utc>>,
    spent: Decimal,
    unpriced: u64,
    alerted: [bool; 3],
    /// Every receipt of the calls it counted, by endpoint: when, what it is
    /// known to have cost (see `settle`), and whether that is a lower bound
    /// (some line of no known bound was unpriced).
    history: [Vec<(DateTime<Utc>, Decimal, bool)>; 3],
}

impl MBudget {
    fn limit(&self) -> Decimal {
        dec(self.spec.limit)
    }

    /// Starts the period of `now` if it is a later one.
    fn roll(&mut self, now: DateTime<Utc>) {
        let start = period_start(self.spec.period, now);
        if self.start.is_none_or(|s| start > s) {
            self.start = Some(start);
            self.spent = Decimal::ZERO;
            self.unpriced = 0;
            self.alerted = [false; 3];
        }
    }
}

#[derive(Debug, Clone)]
struct MRes {
    /// Which async invocation it is (unique in a run), for its copies.
    call: String,
    endpoint: usize,
    tags: BTreeMap<String, String>,
    /// What it holds on each budget (by the model's index), while held here.
    holds: Vec<(usize, Decimal)>,
    /// When what it holds lapses, and the order its lapse was set in (holds
    /// lapsing at once are charged in that order), until it is charged.
    lapse: Option<(DateTime<Utc>, u64)>,
    /// Once it lapsed: what each budget was charged, and the start of the
    /// period it was charged in.
    charged: Option<Vec<(usize, Decimal, DateTime<Utc>)>>,
    /// Remembered charged nothing (its lapse set while it held nothing, or
    /// dropped before its hold lapsed): when that is forgotten.
    remembered: Option<DateTime<Utc>>,
    settled: Decimal,
    /// A part settled so far was not fully priced.
    unpriced: bool,
    /// Such a part's line had no known bound.
    unbounded: bool,
    /// The bounds of the other such parts, added up.
    bounds: Decimal,
    /// A part settled before the last was not fully priced: counted among
    /// the unpriced calls then.
    counted_unpriced: bool,
    /// The bounds of such parts, charged to enforced budgets then.
    counted_bounds: Decimal,
    /// The most any budget held for it when it was reserved.
    estimate: Decimal,
}

impl MRes {
    /// Notes how a part (or the last) was priced.
    fn priced(&mut self, priced: Pricing) {
        match priced {
            Pricing::Fully => {}
            Pricing::Bounded(usd) => {
                self.unpriced = true;
                self.bounds += dec(usd);
            }
            Pricing::Partly => {
                self.unpriced = true;
                self.unbounded = true;
            }
        }
    }
}

impl MRes {
    /// What it still holds on each budget (nothing once lapsed).
    fn holding(&self) -> &[(usize, Decimal)] {
        &self.holds
    }
}

struct Model {
    budgets: Vec<MBudget>,
    /// The configured budgets: the first `configured` of `budgets`.
    configured: usize,
    /// Each value's budget: (template's spec index, value) → index.
    begun: Vec<((usize, String), usize)>,
    /// How many lapses were set.
    lapses_set: u64,
    /// Async invocations dropped after their holds lapsed, charged: a copy
    /// settled here replaces the charge, until it is forgotten; and those
    /// dropped before, remembered charged nothing.
    gone: Vec<MRes>,
    /// Each endpoint's latest whole cost above $0, of a call any budget
    /// counted: the least of a budget's estimate while its own calls to it hold
    /// no whole cost, once they hold some receipt (a tenant new to an
    /// endpoint whose compute lost its price counts at the endpoint's cost).
    endpoint_whole: [Option<Decimal>; 3],
}

/// A refusal: the budget and the figures it refused with.
type Refused = (usize, Decimal);

impl Model {
    fn new(specs: &[Spec]) -> Self {
        let budgets: Vec<MBudget> = specs
            .iter()
            .filter(|s| s.scope != 4)
            .map(|spec| MBudget {
                scope: spec.scope(),
                spec: spec.clone(),
                start: None,
                spent: Decimal::ZERO,
                unpriced: 0,
                alerted: [false; 3],
                history: Default::default(),
            })
            .collect();
        Model {
            configured: budgets.len(),
            budgets,
            begun: Vec::new(),
            lapses_set: 0,
            gone: Vec::new(),
            endpoint_whole: [None; 3],
        }
    }

    /// The budgets a call counts in: configured ones by scope, then the one of
    /// each of its tenant values (begun now if new), in the templates' order.
    fn covering(
        &mut self,
        specs: &[Spec],
        endpoint: usize,
        tags: &BTreeMap<String, String>,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.configured)
            .filter(|&i| match &self.budgets[i].scope {
                BudgetScope::Client => true,
                BudgetScope::Endpoint { name } => name == ENDPOINTS[endpoint],
                BudgetScope::Tag { key, value } => tags.get(key) == Some(value),
                _ => unreachable!(),
            })
            .collect();
        for (t, spec) in specs.iter().enumerate().filter(|(_, s)| s.scope == 4) {
            let Some(value) = tags.get("tenant") else {
                continue;
            };
            let key = (t, value.clone());
            let i = match self.begun.iter().find(|(k, _)| *k == key) {
                Some(&(_, i)) => i,
                None => {
                    self.budgets.push(MBudget {
                        scope: BudgetScope::Tag {
                            key: "tenant".to_owned(),
                            value: value.clone(),
                        },
                        spec: spec.clone(),
                        start: None,
                        spent: Decimal::ZERO,
                        unpriced: 0,
                        alerted: [false; 3],
                        history: Default::default(),
                    });
                    self.begun.push((key, self.budgets.len() - 1));
                    self.budgets.len() - 1
                }
            };
            out.push(i);
        }
        out
    }

    /// What budget `i` estimates a call to `endpoint` at, at `now`: fixed, or
    /// the most of the last `calls` receipts of its own calls to the endpoint
    /// (of those in its current period, if any are), and while they hold no
    /// whole cost above $0, no less than their latest such cost of all (before
    /// there is one: the initial figure, or once they hold some receipt, the
    /// endpoint's latest whole cost of any budget's call if more); at most the
    /// limit.
    fn estimate(&self, i: usize, endpoint: usize, now: DateTime<Utc>) -> Decimal {
        let b = &self.budgets[i];
        let Some(calls) = b.spec.recent else {
            return b.spec.fixed_usd();
        };
        let initial = dec(b.spec.usd);
        let history = &b.history[endpoint];
        let last = &history[history.len().saturating_sub(calls)..];
        let start = period_start(b.spec.period, now);
        let in_period: Vec<(Decimal, bool)> = last
            .iter()
            .filter(|(at, _, _)| *at >= start)
            .map(|(_, usd, lower)| (*usd, *lower))
            .collect();
        let pool: Vec<(Decimal, bool)> = match in_period.is_empty() {
            false => in_period,
            true => last.iter().map(|(_, usd, lower)| (*usd, *lower)).collect(),
        };
        let most = pool.iter().map(|(usd, _)| *usd).max();
        let whole = |usd: &Decimal, lower: bool| !lower && !usd.is_zero();
        let any_whole = pool.iter().any(|(usd, lower)| whole(usd, *lower));
        let own = history
            .iter()
            .rev()
            .find(|(_, usd, lower)| whole(usd, *lower))
            .map(|(_, usd, _)| *usd);
        let estimate = match most {
            None => own.unwrap_or(initial),
            Some(most) if any_whole => most,
            Some(most) => most.max(own.unwrap_or_else(|| {
                self.endpoint_whole[endpoint].map_or(initial, |whole| whole.max(initial))
            })),
        };
        estimate.min(b.limit())
    }

    /// What budget `i` holds: what every open call holds on it.
    fn held(&self, i: usize, open: &[MRes]) -> Decimal {
        open.iter()
            .flat_map(|r| r.holding())
            .filter(|(j, _)| *j == i)
            .map(|(_, usd)| *usd)
            .sum()
    }

    /// Sets the lapse of what `r` holds at `until`, unless its lapse is set
    /// already (or it lapsed, or it is remembered); holding nothing, it is
    /// remembered instead, charged nothing.
    fn set_lapse(&mut self, r: &mut MRes, until: DateTime<Utc>) {
        if r.lapse.is_some() || r.charged.is_some() || r.remembered.is_some() {
            return;
        }
        if r.holds.is_empty() {
            r.remembered = Some(self.forget_uncharged_at(until));
        } else {
            r.lapse = Some((until, self.lapses_set));
            self.lapses_set += 1;
        }
    }

    /// When an invocation remembered charged nothing, whose hold lapses (or
    /// would have) at `until`, is forgotten: then (SageMaker has finished or
    /// dropped the job by then).
    fn forget_uncharged_at(&self, until: DateTime<Utc>) -> DateTime<Utc> {
        until
    }

    /// When what `r` was charged when its hold lapsed is forgotten: once the
    /// period after each charge's has ended, for every budget charged.
    fn forget_at(&self, r: &MRes) -> Option<DateTime<Utc>> {
        let charged = r.charged.as_ref()?;
        charged
            .iter()
            .map(|&(i, _, start)| {
                let period = self.budgets[i].spec.period;
                let next = period_start(period, next_period(period, start));
                period_start(period, next_period(period, next))
            })
            .max()
    }

    /// Whether a copy of `r` settled at `now` settles it: its hold is still
    /// held (its lapse set), or its charge, or it charged nothing, still
    /// remembered.
    fn kept(&self, r: &MRes, now: DateTime<Utc>) -> bool {
        r.lapse.is_some()
            || self.forget_at(r).is_some_and(|at| now < at)
            || r.remembered.is_some_and(|at| now < at)
    }

    /// `r` settled elsewhere at `now`: a hold still held is released (it goes
    /// with `r`); a charge of its lapsed hold still remembered is taken back
    /// in its own period (replaced by $0), kept in the next.
    fn settled_elsewhere(&mut self, r: MRes, now: DateTime<Utc>) {
        if !self.kept(&r, now) {
            return;
        }
        for (i, usd, start) in r.charged.unwrap_or_default() {
            let b = &mut self.budgets[i];
            b.roll(now);
            if b.start == Some(start) {
                b.spent = (b.spent - usd).max(Decimal::ZERO);
            }
        }
    }

    /// The budgets' next reservation, status or reservation dropped: what
    /// every lapse due by `now` holds is charged, soonest first (in the order they were set, when at
    /// once), as run, in each budget's period of `now`; the alerts it raises.
    fn release_lapsed(&mut self, open: &mut [MRes], now: DateTime<Utc>) -> Alerts {
        let mut due: Vec<(DateTime<Utc>, u64, usize)> = open
            .iter()
            .enumerate()
            .filter_map(|(k, r)| r.lapse.map(|(until, n)| (until, n, k)))
            .filter(|(until, _, _)| *until <= now)
            .collect();
        due.sort();
        let mut alerts = Vec::new();
        for (_, _, k) in due {
            let r = &mut open[k];
            r.lapse = None;
            let mut charged = Vec::new();
            for (i, held) in std::mem::take(&mut r.holds) {
                alerts.extend(self.charge(&[i], now, |_| held, false));
                charged.push((i, held, self.budgets[i].start.unwrap()));
            }
            r.charged = Some(charged);
        }
        alerts
    }

    fn roll_all(&mut self, now: DateTime<Utc>) {
        for b in &mut self.budgets {
            b.roll(now);
        }
    }

    /// A reservation: the holds, or the first enforced budget with no room;
    /// and the alerts the lapses it finds due raise, either way.
    fn reserve(
        &mut self,
        specs: &[Spec],
        open: &mut [MRes],
        endpoint: usize,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> (Alerts, std::result::Result<Vec<(usize, Decimal)>, Refused>) {
        let alerts = self.release_lapsed(open, now);
        (alerts, self.reserve_now(specs, open, endpoint, tags, now))
    }

    fn reserve_now(
        &mut self,
        specs: &[Spec],
        open: &mut [MRes],
        endpoint: usize,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> std::result::Result<Vec<(usize, Decimal)>, Refused> {
        let covering = self.covering(specs, endpoint, tags);
        self.roll_all(now);
        let mut holds = Vec::new();
        for i in covering {
            if !self.budgets[i].spec.enforce {
                continue;
            }
            let estimate = self.estimate(i, endpoint, now);
            let b = &self.budgets[i];
            // Fits: spent + held + estimate ≤ limit.
            if b.spent + self.held(i, open) + estimate > b.limit() {
                return Err((i, estimate));
            }
            holds.push((i, estimate));
        }
        Ok(holds)
    }

    /// Adds `charged(i)` to each covering budget, with the alerts it raises.
    fn charge(
        &mut self,
        covering: &[usize],
        now: DateTime<Utc>,
        charged: impl Fn(usize) -> Decimal,
        unpriced: bool,
    ) -> Vec<(BudgetScope, u32, DateTime<Utc>, Decimal)> {
        let mut alerts = Vec::new();
        for &i in covering {
            let b = &mut self.budgets[i];
            b.roll(now);
            b.spent += charged(i);
            b.unpriced += u64::from(unpriced);
            let limit = b.limit();
            for (bit, percent) in [50u32, 80, 100].into_iter().enumerate() {
                // spent ≥ percent % of limit, ×100 on both sides.
                if !b.alerted[bit] && b.spent * dec("100") >= limit * Decimal::from(percent) {
                    b.alerted[bit] = true;
                    alerts.push((b.scope.clone(), percent, b.start.unwrap(), b.spent));
                }
            }
        }
        alerts
    }

    fn settle_part(
        &mut self,
        specs: &[Spec],
        r: &mut MRes,
        cost: Decimal,
        priced: Pricing,
        now: DateTime<Utc>,
    ) -> Vec<(BudgetScope, u32, DateTime<Utc>, Decimal)> {
        let covering = self.covering(specs, r.endpoint, &r.tags);
        // A lapse not yet due, or due but not yet charged, is called off: what
        // it holds is taken back. One charged stays charged, for the last part.
        r.lapse = None;
        // What it leaves unpriced counts now: its bound on an enforced budget
        // (off what the call holds there too), the call once among the
        // unpriced.
        let bound = match priced {
            Pricing::Bounded(usd) => dec(usd),
            Pricing::Fully | Pricing::Partly => Decimal::ZERO,
        };
        for (_, held) in &mut r.holds {
            *held = (*held - cost.saturating_add(bound)).max(Decimal::ZERO);
        }
        r.settled += cost;
        r.priced(priced);
        let unpriced = !matches!(priced, Pricing::Fully) && !r.counted_unpriced;
        r.counted_unpriced |= !matches!(priced, Pricing::Fully);
        r.counted_bounds += bound;
        let enforced: Vec<bool> = self.budgets.iter().map(|b| b.spec.enforce).collect();
        self.charge(
            &covering,
            now,
            |i| match enforced[i] {
                true => cost.saturating_add(bound),
                false => cost,
            },
            unpriced,
        )
    }

    /// `r` settled at `now`; `taken_over`: the parts settled before of an
    /// invocation a copy takes over (else $0).
    fn settle(
        &mut self,
        specs: &[Spec],
        r: &mut MRes,
        cost: Decimal,
        priced: Pricing,
        now: DateTime<Utc>,
        taken_over: Decimal,
    ) -> Vec<(BudgetScope, u32, DateTime<Utc>, Decimal)> {
        let covering = self.covering(specs, r.endpoint, &r.tags);
        // A lapse not yet charged is called off: what it holds is taken back.
        r.lapse = None;
        let held = std::mem::take(&mut r.holds);
        // What its hold was charged when it lapsed, in the period it is now or
        // the one before; a charge older than that is forgotten: it counts as
        // if its hold had been released (as for a call that held nothing).
        for &i in &covering {
            self.budgets[i].roll(now);
        }
        let charged_before: Vec<(usize, Decimal, DateTime<Utc>)> = r
            .charged
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|&(i, _, start)| {
                let b = &self.budgets[i];
                let next = period_start(b.spec.period, next_period(b.spec.period, start));
                b.start == Some(start) || b.start == Some(next)
            })
            .collect();
        r.priced(priced);
        let fully = !r.unpriced;
        // Not fully priced, some unpriced line of no known bound: no less than
        // what was held on each budget (or charged there when it lapsed: held
        // until then), or for a covering enforced one that held nothing, than
        // its estimate now, less the parts a copy takes over (charged already,
        // as the original's hold was less them).
        let floors: Vec<(usize, Decimal)> = match r.unbounded {
            false => Vec::new(),
            true => covering
                .iter()
                .filter(|&&i| self.budgets[i].spec.enforce)
                .map(|&i| {
                    let held = held.iter().find(|(j, _)| *j == i).map(|(_, usd)| *usd);
                    let lapsed = charged_before.iter().find(|(j, _, _)| *j == i);
                    match (held, lapsed) {
                        (Some(usd), _) | (None, Some(&(_, usd, _))) => (i, usd),
                        (None, None) => {
                            let estimate = self.estimate(i, r.endpoint, now);
                            (i, (estimate - taken_over).max(Decimal::ZERO))
                        }
                    }
                })
                .collect(),
        };
        // Remembered at what it is known to have cost, never at a floor: a
        // floor is an estimate, which fed back would make every later call
        // not fully priced count at it (one $12 call, at the limit, for good);
        // and a floor of one budget (a fixed estimate) is none of another's.
        // With a bound on every line left unpriced, at the most it can have
        // cost, a whole cost: as a lower bound (its priced part) it would keep
        // every such call's estimate at no less than the initial figure.
        let known = match (fully, r.unbounded) {
            (false, false) => r.settled + cost + r.bounds,
            _ => r.settled + cost,
        };
        // In the history of every budget it counts in: each estimates from
        // the calls it counted (one tenant's from its own).
        for &i in &covering {
            self.budgets[i].history[r.endpoint].push((now, known, r.unbounded));
        }
        if !r.unbounded && !known.is_zero() {
            self.endpoint_whole[r.endpoint] = Some(known);
        }
        let enforced: Vec<bool> = self.budgets.iter().map(|b| b.spec.enforce).collect();
        let charged = |i: usize| match (fully, r.unbounded) {
            (true, _) => cost,
            // Every unpriced line bounded: an enforced budget counts the bounds.
            // (less those charged with the parts before).
            (false, false) if enforced[i] => {
                cost + (r.bounds - r.counted_bounds).max(Decimal::ZERO)
            }
            (false, false) => cost,
            (false, true) => floors
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(cost, |(_, floor)| cost.max(*floor)),
        };
        // What replacing a charge made when its hold lapsed comes to, in each
        // budget's period of `now`: in the charge's own period, the settlement
        // less the charge (taken back); in the one after, what the settlement
        // passes it by, if anything.
        let current: Vec<Option<DateTime<Utc>>> = self.budgets.iter().map(|b| b.start).collect();
        let replaced = |i: usize| {
            let whole = charged(i);
            match charged_before.iter().find(|(j, _, _)| *j == i) {
                Some(&(_, usd, start)) if current[i] == Some(start) => whole - usd,
                Some(&(_, usd, _)) => (whole - usd).max(Decimal::ZERO),
                None => whole,
            }
        };
        self.charge(&covering, now, replaced, !fully && !r.counted_unpriced)
    }
}

// ------------------------------------------------------------ the strategies

/// Figures a run draws from.
#[derive(Clone, Copy)]
struct Figures {
    limits: &'static [&'static str],
    estimates: &'static [&'static str],
    costs: &'static [&'static str],
    deltas: &'static [&'static str],
}

/// Figures of a few places: the model's sums are exact.
const PLAIN: Figures = Figures {
    limits: &["0.05", "0.3", "1", "2.5", "10"],
    estimates: &["0.01", "0.05", "0.1", "0.25", "0.6", "3"],
    costs: &["0", "0.001", "0.01", "0.05", "0.1", "0.3", "0.4", "1", "3"],
    deltas: &["0.001", "0.01", "0.2"],
};

/// Extreme figures that are still valid: limits and estimates from the
/// smallest a decimal holds to the largest a budget takes, with all 28
/// places; costs up to a thousand times that.
const EXTREME: Figures = Figures {
    limits: &[
        "0.0000000000000000000000000001",
        "0.0000000000000000000000000003",
        "0.9999999999999999999999999999",
        "999999999999.9999999999999999",
        "1000000000000",
    ],
    estimates: &[
        "0.0000000000000000000000000001",
        "0.0000000000000000000000000002",
        "0.3333333333333333333333333333",
        "0.6666666666666666666666666667",
        "123456789012.3456789012345678",
        "1000000000000",
    ],
    costs: &[
        "0",
        "0.0000000000000000000000000001",
        "0.0000000000000000000000000005",
        "0.6666666666666666666666666667",
        "10",
        "999999999999.9999999999999999",
        "1000000000000",
        "1000000000000000",
    ],
    deltas: &["0.0000000000000000000000000001", "1000000000000"],
};

fn spec(figures: Figures) -> impl Strategy<Value = Spec> {
    let period = prop::sample::select(vec![
        BudgetPeriod::Hour,
        BudgetPeriod::Day,
        BudgetPeriod::Month,
    ]);
    let limit = prop::sample::select(figures.limits);
    let usd = prop::sample::select(figures.estimates);
    let recent = prop::option::weighted(0.7, 1usize..=4);
    (0u8..5, period, any::<bool>(), limit, recent, usd).prop_map(
        |(scope, period, enforce, limit, recent, usd)| Spec {
            scope,
            period,
            enforce,
            limit,
            recent,
            usd,
        },
    )
}

fn cost(figures: Figures) -> impl Strategy<Value = Cost> {
    let usd = prop::sample::select(figures.costs);
    let delta = prop::sample::select(figures.deltas);
    prop_oneof![
        2 => usd.prop_map(Cost::Usd),
        2 => Just(Cost::Estimate),
        1 => delta.clone().prop_map(Cost::Above),
        1 => delta.prop_map(Cost::Below),
    ]
}

/// Mostly fully priced; some receipts with a bounded unpriced line (a bound of
/// the figures' deltas), some with one of no known bound.
fn pricing(figures: Figures) -> impl Strategy<Value = Pricing> {
    prop_oneof![
        6 => Just(Pricing::Fully),
        2 => prop::sample::select(figures.deltas).prop_map(Pricing::Bounded),
        2 => Just(Pricing::Partly),
    ]
}

fn gap_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => Just(0i64),
        1 => Just(1),
        1 => Just(999),
        1 => Just(60_000),
        1 => Just(1_799_999),
        2 => Just(3_600_000),
        1 => Just(5 * 3_600_000),
        2 => Just(86_400_000),
        1 => Just(86_399_999),
        1 => Just(20 * 86_400_000),
    ]
}

fn op(figures: Figures) -> impl Strategy<Value = Op> {
    let team = prop::option::of(0usize..TEAMS.len());
    let tenant = prop::option::of(0usize..TENANTS.len());
    let usd = prop::sample::select(figures.costs);
    let lapse = prop::option::of(prop::sample::select(vec![0i64, 1, 3_600, 22_500]));
    prop_oneof![
        5 => (0usize..ENDPOINTS.len(), team.clone(), tenant.clone())
            .prop_map(|(endpoint, team, tenant)| Op::Reserve { endpoint, team, tenant }),
        3 => (any::<usize>(), cost(figures), pricing(figures))
            .prop_map(|(which, cost, priced)| Op::Settle { which, cost, priced }),
        2 => (any::<usize>(), cost(figures), pricing(figures), lapse)
            .prop_map(|(which, cost, priced, lapse_s)| Op::Part { which, cost, priced, lapse_s }),
        1 => any::<usize>().prop_map(|which| Op::Drop { which }),
        1 => (any::<usize>(), cost(figures), pricing(figures))
            .prop_map(|(which, cost, priced)| Op::Copy { which, cost, priced }),
        1 => any::<usize>().prop_map(|which| Op::Elsewhere { which }),
        2 => (0usize..ENDPOINTS.len(), team, tenant, usd, pricing(figures)).prop_map(
            |(endpoint, team, tenant, cost, priced)| Op::Unreserved { endpoint, team, tenant, cost, priced }
        ),
    ]
}

fn run(figures: Figures) -> impl Strategy<Value = Run> {
    // Just before an hour, a day, a month or a year ends; 29 February in a
    // leap year, 28 February in another.
    let start = prop::sample::select(vec![
        "2024-02-28T23:59:59.500Z",
        "2024-02-29T23:30:00Z",
        "2023-12-31T23:59:59Z",
        "2024-01-31T22:00:00Z",
        "2025-02-28T23:00:00Z",
        "2024-04-30T23:59:58Z",
        "2024-07-15T10:59:59.999Z",
    ])
    .prop_map(|s| s.parse::<DateTime<Utc>>().unwrap());
    (
        start,
        prop::collection::vec(spec(figures), 1..=5),
        prop::collection::vec((gap_ms(), op(figures)), 1..=40),
        prop::collection::vec(any::<bool>(), 40),
    )
        .prop_map(|(start, specs, steps, finish)| Run {
            start,
            specs,
            steps,
            finish,
        })
}

fn tags(team: Option<usize>, tenant: Option<usize>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    if let Some(t) = team {
        tags.insert("team".to_owned(), TEAMS[t].to_owned());
    }
    if let Some(t) = tenant {
        tags.insert("tenant".to_owned(), TENANTS[t].to_owned());
    }
    tags
}

fn figure(cost: Cost, estimate: Decimal) -> Decimal {
    match cost {
        Cost::Usd(usd) => dec(usd),
        Cost::Estimate => estimate,
        Cost::Above(d) => estimate + dec(d),
        Cost::Below(d) => (estimate - dec(d)).max(Decimal::ZERO),
    }
}

type Alerts = Vec<(BudgetScope, u32, DateTime<Utc>, Decimal)>;

fn raised(alerts: &Arc<Mutex<Vec<BudgetAlert>>>) -> Alerts {
    std::mem::take(&mut *alerts.lock().unwrap())
        .into_iter()
        .map(|a| (a.scope, a.threshold_percent, a.period_start, a.spent_usd))
        .collect()
}

/// Plays `run` against the budgets and the model; the first difference found.
fn check(run: &Run) -> std::result::Result<(), TestCaseError> {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    // The meter's clock, at each step's time: a reservation dropped reads it.
    let clock = ManualTimeSource::new(run.start.into());
    let budgets = Arc::new(Budgets::new(
        run.specs.iter().map(|s| s.budget(&alerts)).collect(),
        false,
        SharedTimeSource::new(clock.clone()),
    ));
    let mut model = Model::new(&run.specs);
    let mut open: Vec<(Reservation, MRes)> = Vec::new();
    let mut now = run.start;
    let specs = &run.specs;
    for (step, (gap, op)) in run.steps.iter().enumerate() {
        now += TimeDelta::milliseconds(*gap);
        clock.set_time(now.into());
        let mut expected: Alerts = Vec::new();
        // The alerts of lapses a drop charged: raised at the status after.
        let mut deferred: Alerts = Vec::new();
        let mut mopen: Vec<MRes> = open.iter().map(|(_, m)| m.clone()).collect();
        match op {
            Op::Reserve {
                endpoint,
                team,
                tenant,
            } => {
                let tags = tags(*team, *tenant);
                let (lapsed, want) = model.reserve(specs, &mut mopen, *endpoint, &tags, now);
                expected = lapsed;
                let got = budgets.reserve(ENDPOINTS[*endpoint], &tags, now);
                match (want, got) {
                    (Ok(holds), Ok(reservation)) => {
                        let sum: Decimal = holds.iter().map(|(_, usd)| *usd).sum();
                        prop_assert_eq!(reservation.held_usd(), sum, "step {}: held", step);
                        let estimate = holds.iter().map(|(_, usd)| *usd).max();
                        mopen.push(MRes {
                            call: format!("call-{step}"),
                            endpoint: *endpoint,
                            tags,
                            holds,
                            lapse: None,
                            charged: None,
                            remembered: None,
                            settled: Decimal::ZERO,
                            unpriced: false,
                            unbounded: false,
                            bounds: Decimal::ZERO,
                            counted_unpriced: false,
                            counted_bounds: Decimal::ZERO,
                            estimate: estimate.unwrap_or(dec("0.05")),
                        });
                        open.push((reservation, mopen.last().unwrap().clone()));
                    }
                    (Err((i, estimate)), Err(Refusal::Exceeded(error))) => {
                        let b = &model.budgets[i];
                        let Error::BudgetExceeded {
                            scope,
                            period,
                            fleet_wide,
                            estimate: got_estimate,
                            limit,
                            spent,
                            reserved,
                        } = error
                        else {
                            return Err(TestCaseError::fail(format!("step {step}: {error:?}")));
                        };
                        prop_assert_eq!(&scope, &b.scope, "step {}: refused by", step);
                        prop_assert_eq!(
                            (period, fleet_wide, got_estimate, limit, spent, reserved),
                            (
                                b.spec.period,
                                false,
                                estimate,
                                b.limit(),
                                b.spent,
                                model.held(i, &mopen)
                            ),
                            "step {}: refusal's figures",
                            step
                        );
                    }
                    (want, got) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step} at {now}: model {want:?}, budgets {got:?}"
                        )));
                    }
                }
            }
            Op::Settle {
                which,
                cost,
                priced,
            } if !open.is_empty() => {
                let k = which % open.len();
                let (reservation, _) = open.remove(k);
                let mut r = mopen.remove(k);
                let usd = figure(*cost, r.estimate);
                expected = model.settle(specs, &mut r, usd, *priced, now, Decimal::ZERO);
                let tags = r.tags.clone();
                reservation.settle(&tags, usd, priced.told(), now);
            }
            Op::Part {
                which,
                cost,
                priced,
                lapse_s,
            } if !open.is_empty() => {
                let k = which % open.len();
                let usd = figure(*cost, mopen[k].estimate);
                let mut r = mopen[k].clone();
                expected = model.settle_part(specs, &mut r, usd, *priced, now);
                let reservation = &mut open[k].0;
                reservation.settle_part(&r.tags, usd, priced.told(), now);
                if let Some(s) = lapse_s {
                    let until = now + TimeDelta::seconds(*s);
                    reservation.expire_at(until, &r.call);
                    model.set_lapse(&mut r, until);
                }
                mopen[k] = r.clone();
                open[k].1 = r;
            }
            Op::Drop { which } if !open.is_empty() => {
                let k = which % open.len();
                // Every hold lapsed by now is charged first, its own among
                // them, whether or not a reservation or status came since;
                // its alerts wait for the budgets' next call or status.
                deferred = model.release_lapsed(&mut mopen, now);
                drop(open.remove(k));
                let mut r = mopen.remove(k);
                // Its hold still held: released, and the invocation
                // remembered charged nothing, for a copy's settlement, as if
                // charged at its lapse.
                if let Some((until, _)) = r.lapse.take() {
                    r.holds.clear();
                    r.remembered = Some(model.forget_uncharged_at(until));
                }
                // Charged when its hold lapsed: the charge stays, remembered
                // for a copy's settlement; or remembered charged nothing.
                if r.charged.is_some() || r.remembered.is_some() {
                    model.gone.push(r);
                }
            }
            Op::Copy {
                which,
                cost,
                priced,
            } if !open.is_empty() || !model.gone.is_empty() => {
                let k = which % (open.len() + model.gone.len());
                let r = match k < open.len() {
                    true => mopen[k].clone(),
                    false => model.gone[k - open.len()].clone(),
                };
                let usd = figure(*cost, r.estimate);
                let copy = budgets
                    .unreserved(ENDPOINTS[r.endpoint])
                    .of_call(r.call.clone());
                if model.kept(&r, now) {
                    // The copy settles the invocation, as the original would.
                    let mut r = r;
                    let taken_over = r.settled + r.counted_bounds;
                    expected = model.settle(specs, &mut r, usd, *priced, now, taken_over);
                    copy.settle(&r.tags, usd, priced.told(), now);
                    if k < open.len() {
                        // The original, dropped, charges the other holds
                        // lapsed by now (its own went with the copy), their
                        // alerts raised at the status after.
                        drop(open.remove(k));
                        mopen.remove(k);
                        deferred = model.release_lapsed(&mut mopen, now);
                    } else {
                        model.gone.remove(k - open.len());
                    }
                } else {
                    // Nothing kept of it here: counted as a call nothing was
                    // held for; an open original stays open.
                    let mut fresh = MRes {
                        holds: Vec::new(),
                        lapse: None,
                        charged: None,
                        remembered: None,
                        settled: Decimal::ZERO,
                        unpriced: false,
                        unbounded: false,
                        bounds: Decimal::ZERO,
                        counted_unpriced: false,
                        counted_bounds: Decimal::ZERO,
                        ..r.clone()
                    };
                    expected = model.settle(specs, &mut fresh, usd, *priced, now, Decimal::ZERO);
                    copy.settle(&r.tags, usd, priced.told(), now);
                    if k >= open.len() {
                        model.gone.remove(k - open.len());
                    }
                }
            }
            Op::Elsewhere { which } if !open.is_empty() => {
                let k = which % open.len();
                let (reservation, _) = open.remove(k);
                let r = mopen.remove(k);
                model.settled_elsewhere(r, now);
                reservation.settled_elsewhere(now);
            }
            Op::Unreserved {
                endpoint,
                team,
                tenant,
                cost,
                priced,
            } => {
                let mut r = MRes {
                    call: format!("call-{step}"),
                    endpoint: *endpoint,
                    tags: tags(*team, *tenant),
                    holds: Vec::new(),
                    lapse: None,
                    charged: None,
                    remembered: None,
                    settled: Decimal::ZERO,
                    unpriced: false,
                    unbounded: false,
                    bounds: Decimal::ZERO,
                    counted_unpriced: false,
                    counted_bounds: Decimal::ZERO,
                    estimate: Decimal::ZERO,
                };
                expected = model.settle(specs, &mut r, dec(cost), *priced, now, Decimal::ZERO);
                budgets.unreserved(ENDPOINTS[*endpoint]).settle(
                    &r.tags,
                    dec(cost),
                    priced.told(),
                    now,
                );
            }
            _ => {}
        }
        prop_assert_eq!(
            raised(&alerts),
            expected,
            "step {} at {}: alerts",
            step,
            now
        );
        // The status: the alerts a drop left raised, every lapse due charged
        // (its alerts raised after them), every period rolled to now.
        let mut lapsed = deferred;
        lapsed.extend(model.release_lapsed(&mut mopen, now));
        for (slot, m) in open.iter_mut().zip(&mopen) {
            slot.1 = m.clone();
        }
        model.roll_all(now);
        compare(&budgets, &model, &mopen, now, step)?;
        prop_assert_eq!(
            raised(&alerts),
            lapsed,
            "step {} at {}: alerts of the holds lapsed by the status",
            step,
            now
        );
    }
    // Every call still open settles at its estimate or is dropped: nothing
    // stays held.
    let mut expected: Alerts = Vec::new();
    for ((reservation, mut r), settle) in open.into_iter().zip(&run.finish) {
        if *settle {
            let usd = r.estimate;
            expected.extend(model.settle(specs, &mut r, usd, Pricing::Fully, now, Decimal::ZERO));
            reservation.settle(&r.tags, usd, Priced::Fully, now);
        }
    }
    prop_assert_eq!(raised(&alerts), expected, "at the end: alerts");
    model.roll_all(now);
    compare(&budgets, &model, &[], now, run.steps.len())?;
    for status in budgets.status(now) {
        prop_assert_eq!(status.reserved_usd, Decimal::ZERO, "left held");
    }
    Ok(())
}

fn compare(
    budgets: &Budgets,
    model: &Model,
    open: &[MRes],
    now: DateTime<Utc>,
    step: usize,
) -> std::result::Result<(), TestCaseError> {
    let got: Vec<_> = budgets
        .status(now)
        .into_iter()
        .map(|s| {
            (
                s.scope,
                s.period,
                s.mode,
                s.limit_usd,
                s.spent_usd,
                s.reserved_usd,
                s.unpriced_calls,
            )
        })
        .collect();
    let want: Vec<_> = model
        .budgets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            (
                b.scope.clone(),
                b.spec.period,
                match b.spec.enforce {
                    true => BudgetMode::Enforce,
                    false => BudgetMode::Alert,
                },
                b.limit(),
                b.spent,
                model.held(i, open),
                b.unpriced,
            )
        })
        .collect();
    prop_assert_eq!(got, want, "step {} at {}: status", step, now);
    Ok(())
}

/// Plays `run` against the budgets alone, with figures whose sums round: no
/// step panics, nothing held or spent is ever below $0, an alert is raised
/// only once its share of the limit is spent, and nothing stays held.
fn play(run: &Run) -> std::result::Result<(), TestCaseError> {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let clock = ManualTimeSource::new(run.start.into());
    let budgets = Arc::new(Budgets::new(
        run.specs.iter().map(|s| s.budget(&alerts)).collect(),
        false,
        SharedTimeSource::new(clock.clone()),
    ));
    // Each open call with its tags and its invocation's call; the calls
    // dropped, for their copies.
    let mut open: Vec<(Reservation, BTreeMap<String, String>, String)> = Vec::new();
    let mut gone: Vec<(String, BTreeMap<String, String>, String)> = Vec::new();
    let mut now = run.start;
    for (step, (gap, op)) in run.steps.iter().enumerate() {
        now += TimeDelta::milliseconds(*gap);
        clock.set_time(now.into());
        match op {
            Op::Reserve {
                endpoint,
                team,
                tenant,
            } => {
                let tags = tags(*team, *tenant);
                match budgets.reserve(ENDPOINTS[*endpoint], &tags, now) {
                    Ok(reservation) => open.push((reservation, tags, format!("call-{step}"))),
                    Err(Refusal::Exceeded(Error::BudgetExceeded { .. })) => {}
                    Err(other) => {
                        return Err(TestCaseError::fail(format!("step {step}: {other:?}")));
                    }
                }
            }
            Op::Settle {
                which,
                cost,
                priced,
            } if !open.is_empty() => {
                let (reservation, tags, _) = open.remove(which % open.len());
                let usd = figure(*cost, reservation.held_usd());
                reservation.settle(&tags, usd, priced.told(), now);
            }
            Op::Part {
                which,
                cost,
                priced,
                lapse_s,
            } if !open.is_empty() => {
                let k = which % open.len();
                let (reservation, tags, call) = &mut open[k];
                let usd = figure(*cost, reservation.held_usd());
                reservation.settle_part(tags, usd, priced.told(), now);
                if let Some(s) = lapse_s {
                    reservation.expire_at(now + TimeDelta::seconds(*s), call);
                }
            }
            Op::Drop { which } if !open.is_empty() => {
                let (reservation, tags, call) = open.remove(which % open.len());
                gone.push((reservation.endpoint.clone(), tags, call));
            }
            Op::Copy {
                which,
                cost,
                priced,
            } if !open.is_empty() || !gone.is_empty() => {
                let k = which % (open.len() + gone.len());
                let (endpoint, tags, call) = match k < open.len() {
                    true => {
                        let (reservation, tags, call) = open.remove(k);
                        (reservation.endpoint.clone(), tags, call)
                    }
                    false => gone.remove(k - open.len()),
                };
                let usd = figure(*cost, Decimal::ONE);
                budgets
                    .unreserved(&endpoint)
                    .of_call(call)
                    .settle(&tags, usd, priced.told(), now);
            }
            Op::Elsewhere { which } if !open.is_empty() => {
                let (reservation, _, _) = open.remove(which % open.len());
                reservation.settled_elsewhere(now);
            }
            Op::Unreserved {
                endpoint,
                team,
                tenant,
                cost,
                priced,
            } => {
                budgets.unreserved(ENDPOINTS[*endpoint]).settle(
                    &tags(*team, *tenant),
                    dec(cost),
                    priced.told(),
                    now,
                );
            }
            _ => {}
        }
        for alert in std::mem::take(&mut *alerts.lock().unwrap()) {
            // spent ≥ percent % of the limit, × 100 on both sides (exact here:
            // a limit has at most 13 digits before its point, spend 16).
            let percent = Decimal::from(alert.threshold_percent);
            prop_assert!(
                alert.spent_usd * dec("100") >= alert.limit_usd * percent,
                "step {}: {}",
                step,
                alert
            );
        }
        for status in budgets.status(now) {
            prop_assert!(
                !status.spent_usd.is_sign_negative() && !status.reserved_usd.is_sign_negative(),
                "step {}: {:?}",
                step,
                status
            );
        }
    }
    for ((reservation, tags, _), settle) in open.into_iter().zip(&run.finish) {
        if *settle {
            let usd = reservation.held_usd();
            reservation.settle(&tags, usd, Priced::Fully, now);
        }
    }
    for status in budgets.status(now) {
        prop_assert_eq!(
            status.reserved_usd,
            Decimal::ZERO,
            "left held: {:?}",
            status
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Random runs of calls against the model: every reservation admitted or
    /// refused as it says (by the budget it says, with its figures), every
    /// alert raised at the step it says, and after every step each budget's
    /// spend, hold and unpriced calls as it has them.
    #[test]
    fn budgets_follow_their_rules(run in run(PLAIN)) {
        check(&run)?;
    }

    /// The period holding an instant starts on its whole UTC hour, its UTC
    /// day's midnight or its UTC month's first midnight, worked out apart.
    #[test]
    fn a_period_starts_where_utc_says(secs in 1_600_000_000i64..1_900_000_000, ms in 0u32..1000) {
        let at = DateTime::from_timestamp(secs, ms * 1_000_000).unwrap();
        for period in [BudgetPeriod::Hour, BudgetPeriod::Day, BudgetPeriod::Month] {
            prop_assert_eq!(period.start_of(at), period_start(period, at), "{} of {}", period, at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Limits, estimates and costs from 10⁻²⁸ to past the largest limit, with
    /// all 28 places: nothing panics, nothing goes below $0 or stays held.
    #[test]
    fn extreme_figures_never_panic(run in run(EXTREME)) {
        play(&run)?;
    }
}
