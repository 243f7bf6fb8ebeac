//! Budgets: limits per period and scope, enforced by reservation or alerted on.
//!
//! An **enforced** budget reserves an estimate of a call's cost *before* the request
//! is sent and settles it to the real cost afterwards. A call whose reservation does
//! not fit is rejected with [`crate::Error::BudgetExceeded`]
//! and never reaches SageMaker. Because reservation and check happen under one lock,
//! concurrent calls cannot all pass a check and then overshoot together: spend can
//! exceed a limit only by the estimation error of the calls already in flight.
//! Reservations of failed calls that were not billed are released (but for an
//! async submission unanswered after an attempt went out and timed out, or was
//! dropped in flight: SageMaker may have queued it, and it counts at its
//! estimate).
//!
//! An async invocation is one call billed in two receipts: its estimate is
//! reserved when it is submitted, the submission receipt is charged against it,
//! and the rest of the estimate stays held until the invocation is settled (its
//! compute, nearly all its cost, arrives then), so queued work counts against
//! the budget. Dropping the pending invocation unsettled releases the hold.
//! Once SageMaker must have run or dropped the request, the hold lapses: the
//! invocation counts as run, what it held is charged, provisionally, to the
//! current period, and its settlement replaces that charge (dropped, the
//! pending invocation keeps it). A copy of the invocation settled through the
//! same budgets settles it, hold or charge and all; one settled elsewhere has
//! its hold taken back here (the rules, worked, and their limits: the Budgets
//! section of `docs/library.md`).
//!
//! A call whose receipt could not be fully priced (an unknown price: its receipt
//! says `Unpriced`) counts against enforced budgets at no less than the estimate
//! reserved for it (or, when nothing was reserved, as for an async invocation
//! settled by another client, at no less than what would have been), never at
//! $0; unless what it leaves unpriced has a known bound: an async input in S3
//! whose size was not given is at most 1 GB of data in at the region's rate, so
//! a call whose only unpriced line is that counts at its priced cost plus that
//! bound (at $0.016 per GB, $0.016 more), not at its estimate. Later estimates
//! are of what calls are known to have cost, never of what they were counted
//! at: a call not fully priced is remembered at its priced cost plus the
//! bound of what it left unpriced, when that has one, else at its priced cost,
//! as a lower bound (see [`Estimate::RecentMax`]), so one expensive call does
//! not make every later one count at its figure.
//!
//! An **alerting** budget never rejects; it calls back (and logs a WARN) the first
//! time spend crosses 50 %, 80 % and 100 % of the limit in each period. It counts
//! what the receipts priced: a call that could not be fully priced adds only its
//! priced part (an alerting budget reserves no estimate to count instead), and [`BudgetStatus::unpriced_calls`] says how many such calls its spend leaves
//! out.
//!
//! ```
//! use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope};
//! let cap = Budget::enforce(BudgetScope::endpoint("chat-prod"), BudgetPeriod::Day, "25".parse().unwrap())
//!     .unwrap();
//! let watch = Budget::alert(BudgetScope::Client, BudgetPeriod::Month, "500".parse().unwrap())
//!     .unwrap()
//!     .on_alert(|alert| eprintln!("{alert}"));
//! // Client::builder(&sdk_config).budget(cap).budget(watch).build()
//! # let _ = (cap, watch);
//! ```

use crate::config_error::ConfigError;
use crate::{Error, Result};
use aws_smithy_async::time::SharedTimeSource;
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a budget covers.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetScope {
    /// Every call of the client.
    Client,
    /// Calls to one endpoint.
    Endpoint {
        /// Endpoint name.
        name: String,
    },
    /// Calls carrying one tag value.
    Tag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// Each value of one tag on its own: a budget of the same limit, period and
    /// mode for every value calls carry (every tenant its own), begun when a call
    /// first carries it. Each is a [`BudgetScope::Tag`] budget from then on, in
    /// refusals, alerts and [`budget_status`](crate::Meter::budget_status) (after
    /// the other budgets, in the order the values came). At most
    /// [`MAX_TAG_VALUES`](crate::totals::MAX_TAG_VALUES) values have one of their
    /// own; past them, new values share one, as `_other`. Not kept across a fleet.
    EachTagValue {
        /// Tag key.
        key: String,
    },
}

impl BudgetScope {
    /// Calls to `name`.
    pub fn endpoint(name: impl Into<String>) -> Self {
        BudgetScope::Endpoint { name: name.into() }
    }

    /// Calls tagged `key=value`.
    pub fn tag(key: impl Into<String>, value: impl Into<String>) -> Self {
        BudgetScope::Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A budget for each value of tag `key`, e.g. each tenant's (see
    /// [`BudgetScope::EachTagValue`]).
    pub fn each_tag_value(key: impl Into<String>) -> Self {
        BudgetScope::EachTagValue { key: key.into() }
    }

    /// Whether a call to `endpoint` with `tags` counts here (never for
    /// [`EachTagValue`](BudgetScope::EachTagValue): its values' budgets do).
    pub(crate) fn covers(&self, endpoint: &str, tags: &BTreeMap<String, String>) -> bool {
        match self {
            BudgetScope::Client => true,
            BudgetScope::Endpoint { name } => name == endpoint,
            BudgetScope::Tag { key, value } => tags.get(key) == Some(value),
            BudgetScope::EachTagValue { .. } => false,
        }
    }
}

impl fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetScope::Client => f.write_str("client"),
            BudgetScope::Endpoint { name } => write!(f, "endpoint {name}"),
            BudgetScope::Tag { key, value } => write!(f, "tag {key}={value}"),
            BudgetScope::EachTagValue { key } => write!(f, "each value of tag {key}"),
        }
    }
}

/// The period a limit applies to: calendar hours, days and months in UTC.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Each UTC hour.
    Hour,
    /// Each UTC day.
    Day,
    /// Each UTC calendar month.
    Month,
}

impl fmt::Display for BudgetPeriod {
    /// `hour`, `day` or `month`, as in "per day".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetPeriod::Hour => "hour",
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        })
    }
}

impl BudgetPeriod {
    /// Start of the period containing `at`.
    pub fn start_of(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let (y, m, d, h) = (at.year(), at.month(), at.day(), at.hour());
        let start = match self {
            BudgetPeriod::Hour => Utc.with_ymd_and_hms(y, m, d, h, 0, 0),
            BudgetPeriod::Day => Utc.with_ymd_and_hms(y, m, d, 0, 0, 0),
            BudgetPeriod::Month => Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0),
        };
        start.single().unwrap_or(at)
    }

    /// When the period starting at `start` ends: the next one's start.
    pub(crate) fn end_of(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let next = match self {
            BudgetPeriod::Hour => start.checked_add_signed(chrono::TimeDelta::hours(1)),
            BudgetPeriod::Day => start.checked_add_days(chrono::Days::new(1)),
            BudgetPeriod::Month => start.checked_add_months(chrono::Months::new(1)),
        };
        next.unwrap_or(start)
    }
}

/// How a budget acts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMode {
    /// Reject calls whose reservation does not fit.
    Enforce,
    /// Only alert at thresholds.
    Alert,
}

/// How the cost of a call is estimated before it is sent.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimate {
    /// The most expensive of the last `calls` receipts of the same endpoint
    /// among the calls the budget counted (for a budget of each tag value,
    /// that value's calls: one tenant's long calls are no estimate of
    /// another's short ones) (of those settled in the budget's current period,
    /// when there are any: an outlier weighs on its own period only); at most
    /// the budget's limit.
    /// `calls` is at most [`MAX_RECENT_CALLS`]. A call that was not fully
    /// priced weighs at its priced cost, a lower bound of what it cost, unless
    /// what it left unpriced has a known bound (see the module's docs): then
    /// at its priced cost plus that bound, a whole cost. While
    /// the receipts looked at hold no whole cost above $0 (none, lower bounds,
    /// receipts of $0), they are no estimate on their own: it is no less than
    /// the latest whole cost above $0 of the budget's calls to the endpoint,
    /// however long ago, or `initial_usd` until there is one.
    RecentMax {
        /// How many recent receipts to consider (1 to [`MAX_RECENT_CALLS`]).
        calls: usize,
        /// Estimate while the endpoint has no whole cost above $0 (above $0).
        initial_usd: Decimal,
    },
    /// Always the same figure.
    Fixed {
        /// The estimate, in USD (above $0).
        usd: Decimal,
    },
}

impl Default for Estimate {
    /// The most expensive of the last 20 calls; 0.01 USD before the first.
    fn default() -> Self {
        Estimate::RecentMax {
            calls: 20,
            initial_usd: Decimal::new(1, 2),
        }
    }
}

/// A threshold crossing of an alerting (or enforced) budget.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    /// The budget's scope.
    pub scope: BudgetScope,
    /// Its period.
    pub period: BudgetPeriod,
    /// Start of the period.
    pub period_start: DateTime<Utc>,
    /// The threshold crossed, in percent (50, 80 or 100).
    pub threshold_percent: u32,
    /// The limit, in USD.
    pub limit_usd: Decimal,
    /// Spent in this period, in USD.
    pub spent_usd: Decimal,
    /// Raised by this process without the fleet's mark, so other processes may
    /// raise the same threshold: from its own spend alone, because its fleet's
    /// table could not be written (missing, access denied, or unanswered for
    /// several flushes; `spent_usd` is this process's, the fleet's may be
    /// more), or at shutdown, from the fleet's spend it read, because the
    /// threshold's mark could not be written by then. False for an alert the
    /// fleet marked, and for a budget without a fleet.
    #[serde(default)]
    pub process_local: bool,
}

impl fmt::Display for BudgetAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "budget for {} per {} crossed {}%: ${} of ${} spent since {}",
            self.scope,
            self.period,
            self.threshold_percent,
            self.spent_usd,
            self.limit_usd,
            self.period_start.to_rfc3339()
        )?;
        if self.process_local {
            f.write_str(" by this process alone (the fleet table could not be written)")?;
        }
        Ok(())
    }
}

type AlertFn = dyn Fn(&BudgetAlert) + Send + Sync;

/// A spending limit.
#[derive(Clone)]
pub struct Budget {
    scope: BudgetScope,
    period: BudgetPeriod,
    limit_usd: Decimal,
    mode: BudgetMode,
    estimate: Estimate,
    on_alert: Option<Arc<AlertFn>>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("scope", &self.scope)
            .field("period", &self.period)
            .field("limit_usd", &self.limit_usd)
            .field("mode", &self.mode)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

/// The alert thresholds, in percent.
pub const ALERT_THRESHOLDS: [u32; 3] = [50, 80, 100];

/// The most receipts an [`Estimate::RecentMax`] may look back over: each enforced
/// budget estimating from them keeps as many of its recent costs in memory per
/// endpoint it counted calls to (a budget of each tag value, per value: at most
/// [`MAX_TAG_VALUES`](crate::totals::MAX_TAG_VALUES) values and one shared by
/// the rest).
pub const MAX_RECENT_CALLS: usize = 10_000;

/// The largest budget limit or estimate accepted (10¹² USD): far above any
/// SageMaker bill, and far enough below `Decimal`'s range that a budget's sums
/// never overflow.
pub const MAX_BUDGET_USD: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

impl Budget {
    /// An enforced limit: calls that would not fit are rejected before they are sent.
    pub fn enforce(scope: BudgetScope, period: BudgetPeriod, limit_usd: Decimal) -> Result<Self> {
        Self::new(scope, period, limit_usd, BudgetMode::Enforce)
    }

    /// An alerting limit: never rejects, alerts at 50/80/100 %.
    pub fn alert(scope: BudgetScope, period: BudgetPeriod, limit_usd: Decimal) -> Result<Self> {
        Self::new(scope, period, limit_usd, BudgetMode::Alert)
    }

    fn new(
        scope: BudgetScope,
        period: BudgetPeriod,
        limit_usd: Decimal,
        mode: BudgetMode,
    ) -> Result<Self> {
        let option = match mode {
            BudgetMode::Enforce => "Budget::enforce",
            BudgetMode::Alert => "Budget::alert",
        };
        if limit_usd <= Decimal::ZERO {
            return Err(ConfigError::new(
                option,
                format!("a budget limit must be more than zero (got {limit_usd} USD for {scope})"),
            )
            .into());
        }
        if limit_usd > MAX_BUDGET_USD {
            return Err(ConfigError::new(
                option,
                format!("a budget limit above {MAX_BUDGET_USD} USD is not a limit (got {limit_usd} USD for {scope})"),
            )
            .hint("for no limit, configure no budget")
            .into());
        }
        match &scope {
            BudgetScope::Endpoint { name } if name.trim().is_empty() => {
                return Err(ConfigError::new(option, "a budget's endpoint name is empty").into());
            }
            BudgetScope::Tag { key, .. } | BudgetScope::EachTagValue { key }
                if key.trim().is_empty() =>
            {
                return Err(ConfigError::new(option, "a budget's tag key is empty").into());
            }
            _ => {}
        }
        Ok(Budget {
            scope,
            period,
            limit_usd,
            mode,
            estimate: Estimate::default(),
            on_alert: None,
        })
    }

    /// How calls are estimated before they are sent (enforced budgets). A call
    /// whose receipt is not fully priced counts at no less than its estimate, so
    /// an estimate of $0 is refused.
    pub fn estimate(mut self, estimate: Estimate) -> Result<Self> {
        let amount = |what: &str, usd: Decimal| {
            (usd.is_sign_negative() || usd > MAX_BUDGET_USD).then(|| {
                format!("{what} of ${usd} is out of range: above $0, up to $1,000,000,000,000")
            })
        };
        let bad = match estimate {
            Estimate::RecentMax { calls, .. } if calls == 0 || calls > MAX_RECENT_CALLS => Some(
                format!("a recent maximum over {calls} calls is out of range: 1 to 10,000"),
            ),
            Estimate::RecentMax { initial_usd, .. } => amount("an initial estimate", initial_usd),
            Estimate::Fixed { usd } => amount("a fixed estimate", usd),
        };
        if let Some(problem) = bad {
            return Err(ConfigError::new("Budget::estimate", problem).into());
        }
        // A call that could not be priced counts at its estimate: at $0, an
        // endpoint without a price would spend nothing of the limit.
        let zero = match estimate {
            Estimate::RecentMax { initial_usd, .. } => initial_usd.is_zero(),
            Estimate::Fixed { usd } => usd.is_zero(),
        };
        if zero {
            return Err(ConfigError::new(
                "Budget::estimate",
                "a budget estimate of $0 would count every call without a price at $0 \
                 (an unknown price must not make a budget spend-free)",
            )
            .hint("estimate at least the smallest cost a call can have, e.g. 0.000001 USD")
            .into());
        }
        if let Estimate::Fixed { usd: stated } = estimate
            && self.mode == BudgetMode::Enforce
            && stated > self.limit_usd
        {
            return Err(ConfigError::new(
                "Budget::estimate",
                format!(
                    "an estimate of {stated} USD a call is more than the budget's limit of \
                     {} USD: every call would be refused",
                    self.limit_usd
                ),
            )
            .hint("raise the limit or lower the estimate")
            .into());
        }
        self.estimate = estimate;
        Ok(self)
    }

    /// What the budget covers.
    pub fn scope(&self) -> &BudgetScope {
        &self.scope
    }

    /// The period its limit applies to.
    pub fn period(&self) -> BudgetPeriod {
        self.period
    }

    /// The limit, in USD.
    pub fn limit_usd(&self) -> Decimal {
        self.limit_usd
    }

    /// Whether it rejects calls or only alerts.
    pub fn mode(&self) -> BudgetMode {
        self.mode
    }

    /// Raises `alert`: one WARN, then the budget's callback if it has one.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn raise(&self, alert: &BudgetAlert) {
        tracing::warn!(target: "sagemeter::budget", scope = %alert.scope,
            threshold_percent = alert.threshold_percent, spent_usd = %alert.spent_usd,
            limit_usd = %alert.limit_usd, process_local = alert.process_local,
            "budget threshold crossed");
        if let Some(callback) = &self.on_alert {
            call_back(callback.as_ref(), alert);
        }
    }

    /// Called once per threshold per period when spend crosses it, where the
    /// crossing is seen: in the call that crossed it, before that call returns
    /// (with a fleet, possibly in its background flush). A crossing made by
    /// the lapsed hold of a pending async invocation that is dropped is raised
    /// at the budgets' next call (a reservation or a settlement), status or
    /// the meter's shutdown, never inside the drop: a caller may drop pending invocations while
    /// holding a lock this callback takes. Hand slow work (a page, a webhook)
    /// to a task or a channel rather than block there. A panic in it is
    /// caught and logged.
    pub fn on_alert(mut self, f: impl Fn(&BudgetAlert) + Send + Sync + 'static) -> Self {
        self.on_alert = Some(Arc::new(f));
        self
    }
}

#[derive(Default)]
struct PeriodState {
    period_start: Option<DateTime<Utc>>,
    spent: Decimal,
    reserved: Decimal,
    /// How many calls hold part of their estimate here (one billed in parts
    /// until its last part, or its release): none, and nothing is held,
    /// whatever the rounding of `reserved`'s sums left in it.
    holds: usize,
    alerted: u32,
    /// Calls settled in the period whose receipts were not fully priced.
    unpriced_calls: u64,
    /// What this process may spend in the period, leased from the fleet table
    /// (fleet budgets only).
    leased: Decimal,
    /// Until when the lease holds (fleet budgets only; `None`: no lease).
    lease_until: Option<DateTime<Utc>>,
    /// What was given up of the lease, unspent, when it lapsed here (fleet
    /// budgets only): this process's again if the table still holds the lease.
    lapsed: Decimal,
    /// The table was found to hold no lease of this process since the last
    /// one granted here, or the room held began as room granted by no lease
    /// (`WhenUnavailable::Allow`) (fleet budgets only): nothing given up
    /// since is this process's again.
    lease_gone: bool,
    /// The table was found to hold no lease of this process since the last
    /// one granted here or renewed whole (fleet budgets only): unlike
    /// `lease_gone`, not set by room `WhenUnavailable::Allow` granted after
    /// a lease lapsed here, which the table may still hold.
    found_gone: bool,
}

impl PeriodState {
    /// Releases what one call held here, `usd`: the last call holding
    /// anything leaves nothing held. (A sum of holds of all 28 places rounds
    /// past 28 significant digits: taking each back would leave a residue,
    /// held by no call, for the process's life.)
    fn release(&mut self, usd: Decimal) {
        self.holds = self.holds.saturating_sub(1);
        self.reserved = match self.holds {
            0 => Decimal::ZERO,
            _ => (self.reserved - usd).max(Decimal::ZERO),
        };
    }
}

struct Tracked {
    budget: Budget,
    state: PeriodState,
    /// Enforced across the fleet: spends only what it leased.
    fleet: bool,
    /// The recent costs of the calls this budget counted, by endpoint (kept
    /// only by an enforced budget estimating from them: see
    /// [`Tracked::remember`]).
    history: HashMap<String, History>,
}

impl Tracked {
    /// A budget in no period yet, and with no history.
    fn new(budget: Budget, fleet: bool) -> Self {
        Tracked {
            budget,
            state: PeriodState::default(),
            fleet,
            history: HashMap::new(),
        }
    }

    /// What a call to `endpoint` is estimated to cost, before it is sent, from
    /// the receipts of this budget's own calls to it (for a budget of each tag
    /// value, its value's): one tenant's 60 s calls are no estimate of
    /// another's 1 s calls, and a tenant new to an endpoint starts at the
    /// initial figure, not at the cheap calls of another.
    ///
    /// A recent maximum is at most the limit: one receipt above it, or an initial
    /// estimate above a small limit (the default $0.01 under $0.005 a day), would
    /// otherwise refuse every later call, in every later period (a refused call
    /// adds nothing to the history that could bring the estimate down). It is of
    /// the receipts settled in the current period when there are any: one
    /// outlier (a weekend's idle hours on an amortized receipt) held at the limit
    /// would otherwise let one call through per period, for as many periods as it
    /// takes to settle `calls` more. And receipts that hold no whole cost above
    /// $0 are no estimate on their own: receipts that cost nothing (credits, a
    /// free trial, a $0 override) would make an unpriced call count at $0, and
    /// the priced part of one not fully priced is a lower bound (the data lines
    /// of a call whose compute has no price, a few millionths of a dollar),
    /// which would soon make calls of no known price count at next to nothing.
    /// The estimate from them is no less than what this budget's calls to the
    /// endpoint are known to cost: their latest whole cost above $0 (its calls
    /// cost $3 each yesterday, and today's compute has no price: $3 each, not
    /// the initial $0.01); before they have one, the initial figure or
    /// `endpoint_whole`, the endpoint's latest whole cost of any call, whichever
    /// is more (a tenant new to an endpoint whose compute lost its price today
    /// counts at yesterday's $3 a call, not at $0.01 from its second call on).
    fn estimate(&self, endpoint: &str, endpoint_whole: Option<Decimal>) -> Decimal {
        let history = self.history.get(endpoint);
        match self.budget.estimate {
            Estimate::Fixed { usd } => usd,
            Estimate::RecentMax { calls, initial_usd } => {
                let recent = || {
                    history
                        .into_iter()
                        .flat_map(|h| h.recent.iter().rev().take(calls))
                };
                let since = self.state.period_start;
                let in_period = most(recent().filter(|r| since.is_some_and(|s| r.at >= s)));
                let own = history.and_then(|h| h.last_whole);
                match in_period.or_else(|| most(recent())) {
                    Some((usd, true)) => usd,
                    Some((usd, false)) => usd.max(own.unwrap_or_else(|| {
                        endpoint_whole.map_or(initial_usd, |whole| whole.max(initial_usd))
                    })),
                    None => own.unwrap_or(initial_usd),
                }
                .min(self.budget.limit_usd)
            }
        }
    }

    /// Remembers a call to `endpoint` it counted, settled, for its later
    /// estimates: kept only by an enforced budget estimating from recent
    /// receipts (an alerting one, or one of a fixed estimate, never looks at
    /// them), its last `calls` per endpoint.
    fn remember(&mut self, endpoint: &str, call: Remembered) {
        let Estimate::RecentMax { calls, .. } = self.budget.estimate else {
            return;
        };
        if self.budget.mode != BudgetMode::Enforce {
            return;
        }
        match self.history.get_mut(endpoint) {
            Some(history) => history.push(call, calls),
            None => {
                let mut history = History::default();
                history.push(call, calls);
                self.history.insert(endpoint.to_owned(), history);
            }
        }
    }

    /// What this process may spend in the period: the limit, or for a fleet
    /// budget what it holds a valid lease of (a lapsed lease is given up, past
    /// what is already spent: the fleet may have reclaimed it). What calls in
    /// flight hold is given up with it: the table counts their spend, written
    /// late, as the use of whatever lease it holds of this process then (the
    /// next one), so here it counts against that lease too.
    fn room(&mut self, now: DateTime<Utc>) -> Decimal {
        if !self.fleet {
            return self.budget.limit_usd;
        }
        self.lapse_if_due(now);
        self.state.leased
    }

    /// Gives up the lease of a fleet budget if it has lapsed at `now`: what is
    /// leased drops to what is spent, and the unspent rest is kept as given up
    /// (this process's again if the table still holds the lease whole), unless
    /// the table holds no lease of this process.
    fn lapse_if_due(&mut self, now: DateTime<Utc>) {
        let state = &mut self.state;
        if !self.fleet || state.lease_until.is_none_or(|until| until > now) {
            return;
        }
        let kept = state.leased.min(state.spent);
        if !state.lease_gone {
            state.lapsed += state.leased - kept;
        }
        state.leased = kept;
        state.lease_until = None;
    }

    /// Spend counted as leased with no lease of the table's held (kept when
    /// the lease lapsed or was found gone, or counted from the table's
    /// writes, with or without room `WhenUnavailable::Allow` let the process
    /// spend since) and taken back since (a provisional charge settled lower,
    /// the spend having been `spent_before`) is no room to spend: its
    /// take-back is written without a lease, and the table counts it for no
    /// process. What is leased drops by what was taken back, to no less than
    /// what is spent (room allowed and not spent stays room). Given up as a
    /// lapse gives up a lease's unspent part (this process's again if a
    /// lapsed lease the table still holds is renewed whole, also under room
    /// allowed since it lapsed: the take-back is then written as that
    /// lease's use), or dropped once the table was found to hold no lease
    /// of this process.
    fn unlease_taken_back(&mut self, spent_before: Decimal) {
        let state = &mut self.state;
        let table_lease = state.lease_until.is_some() && !state.lease_gone;
        if !self.fleet || table_lease || state.spent >= state.leased {
            return;
        }
        let taken_back = (spent_before - state.spent).max(Decimal::ZERO);
        let leased = (state.leased - taken_back).max(state.spent);
        if leased >= state.leased {
            return;
        }
        // Not dropped under room Allow granted after a lease lapsed here:
        // the table may still hold that lease, the take-back then written
        // as its use, the table's room for this process.
        if !state.found_gone {
            state.lapsed += state.leased - leased;
        }
        state.leased = leased;
    }

    /// The alerts of the thresholds this period's spend has passed that were not
    /// raised yet, each now marked raised (`process_local`: see
    /// [`BudgetAlert::process_local`]).
    fn newly_passed(&mut self, now: DateTime<Utc>, process_local: bool) -> Vec<BudgetAlert> {
        let mut alerts = Vec::new();
        for (bit, percent) in ALERT_THRESHOLDS.iter().enumerate() {
            // spent ≥ percent % of the limit, × 100 on both sides (as the fleet
            // compares): limit × percent / 100 rounds to 28 places, and 50 % of
            // $10⁻²⁸ would round to $0, crossed by a spend of $0. The limit's side
            // cannot overflow (at most 10¹⁴); a spend whose × 100 would is past it.
            let share = self.budget.limit_usd * Decimal::from(*percent);
            let passed = self
                .state
                .spent
                .checked_mul(Decimal::ONE_HUNDRED)
                .is_none_or(|spent| spent >= share);
            if passed && self.state.alerted & (1 << bit) == 0 {
                self.state.alerted |= 1 << bit;
                alerts.push(BudgetAlert {
                    scope: self.budget.scope.clone(),
                    period: self.budget.period,
                    period_start: self.state.period_start.unwrap_or(now),
                    threshold_percent: *percent,
                    limit_usd: self.budget.limit_usd,
                    spent_usd: self.state.spent,
                    process_local,
                });
            }
        }
        alerts
    }

    /// Rolls the period over when `now` is past it. Only forward: a `now` before
    /// the current period (the wall clock stepped back, or a caller read it just
    /// before the boundary and took the lock after another that read it just
    /// after) counts in the current period, which keeps its spend, alerts and lease.
    fn roll(&mut self, now: DateTime<Utc>) {
        let start = self.budget.period.start_of(now);
        if self
            .state
            .period_start
            .is_none_or(|current| start > current)
        {
            // Reservations in flight stay: they settle against the new period.
            self.state = PeriodState {
                period_start: Some(start),
                reserved: self.state.reserved,
                holds: self.state.holds,
                ..PeriodState::default()
            };
        }
    }
}

#[derive(Default)]
struct BudgetsInner {
    tracked: Vec<Tracked>,
    /// How many of `tracked` were configured: the budgets of tag values begun
    /// from `per_value` come after them.
    configured: usize,
    /// Budgets for each value of a tag, each with the value budgets begun from
    /// it (their places in `tracked`, by value).
    per_value: Vec<(Budget, HashMap<String, usize>)>,
    /// Holds of async invocations that lapse at a set time (see
    /// [`Reservation::expire_at`]), soonest first: a backlog of a million
    /// queued invocations costs a call O(log n), not a scan.
    expiring: BTreeMap<HoldKey, ExpiringHold>,
    next_hold: u64,
    /// Whether a lapsed hold has been warned about (once per client).
    warned_lapsed: bool,
    /// Each endpoint's latest whole cost above $0 (see [`Remembered::whole`]),
    /// of a call any budget counted: the least a budget's estimate is for its
    /// calls of no known price while its own calls hold no whole cost (see
    /// [`Tracked::estimate`]). One figure per endpoint called.
    last_whole: HashMap<String, Decimal>,
    /// The provisional charges of lapsed holds, by the hold's number, until
    /// the invocation settles here (through any copy: that replaces them) or
    /// elsewhere (that takes them back), or the period after the last of them
    /// ends (see [`Provisional::forget_at`]); a pending invocation dropped
    /// unsettled leaves them charged, and remembered: one entry per async
    /// invocation whose hold lapsed and that was not settled, for at most two
    /// periods of its longest budget. Also, with no charges, the invocations
    /// whose pending half was dropped unsettled before their holds lapsed, or
    /// that held nothing (only alerting budgets cover them), until their holds
    /// lapse or would have: what their parts settled so far cost and how fully
    /// they were priced, for a copy's settlement to take over (see
    /// [`BudgetsInner::remember`]).
    provisional: HashMap<u64, Provisional>,
    /// The same entries by when each is forgotten, soonest first: pruned as the
    /// holds lapse, in O(log n) a call.
    forgetting: BTreeSet<HoldKey>,
    /// The key of each hold in `expiring` or `provisional` by its invocation's
    /// call (see [`Invocation::call`]): a settlement of any copy of the
    /// invocation takes it over (see [`Reservation::of_call`]).
    by_call: HashMap<String, HoldKey>,
    /// The provisional charges of fleet budgets, what was taken back of them
    /// outside a settlement here (see [`Reservation::settled_elsewhere`]), and
    /// the bounds of what async submissions left unpriced (see
    /// [`Budgets::settle_part`]), not yet handed to the fleet (see [`Budgets::take_lapsed_charges`]).
    lapsed_charges: Vec<BeyondReceipt>,
    /// The alerts crossed by the lapsed holds a dropped reservation charged
    /// (see [`Reservation`]'s `Drop`), raised at the budgets' next call or
    /// status, outside the lock: a drop is no call, and may come while its
    /// caller holds a lock the callback takes.
    deferred_alerts: Vec<AlertToRaise>,
}

impl BudgetsInner {
    /// The budget at `index` while in the period that starts at
    /// `period_start`: a fleet answer about another period changes nothing.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    fn in_period(&mut self, index: usize, period_start: DateTime<Utc>) -> Option<&mut Tracked> {
        self.tracked
            .get_mut(index)
            .filter(|t| t.state.period_start == Some(period_start))
    }
}

/// What a lapsed hold was charged: each budget's charge and the start of the
/// period it was charged in (none for an invocation remembered without a
/// charge: see [`BudgetsInner::remember`]), and when it is forgotten.
struct Provisional {
    charges: Vec<ProvisionalCharge>,
    /// The end of the period after the one charged, of the budget whose
    /// period ends last: a settlement after it no longer finds the charges
    /// (nor would it replace them: see [`ProvisionalCharge::replaced`]).
    forget_at: DateTime<Utc>,
    invocation: Invocation,
}

/// The async invocation a hold kept by the budgets is of, and what a
/// settlement of a copy of it takes over besides the hold.
#[derive(Debug, Clone)]
struct Invocation {
    /// What identifies it in this process (its endpoint, call id and
    /// submission time, as the meter tells duplicate settlements apart).
    call: String,
    /// What its parts settled so far cost (its submission).
    settled_usd: Decimal,
    /// How fully they were priced.
    priced: Priced,
    /// What of their unpriced part the budgets counted when they settled.
    counted: Counted,
}

/// What of the unpriced part of a call billed in parts its parts settled so
/// far counted, where and when they settled (see
/// [`Reservation::settle_part`]), so that neither the last part nor a copy
/// counts it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counted {
    /// One of the budgets' `unpriced_calls`: a part was not fully priced.
    unpriced_call: bool,
    /// The bounds of the parts' unpriced lines, charged to the enforced
    /// budgets covering the call (see [`Priced::AllBut`]), USD.
    bound_usd: Decimal,
}

impl Counted {
    /// What two reservations of one invocation counted together (a copy
    /// taking over its original's parts).
    fn and(self, other: Counted) -> Counted {
        Counted {
            unpriced_call: self.unpriced_call || other.unpriced_call,
            bound_usd: self.bound_usd.saturating_add(other.bound_usd),
        }
    }
}

/// What [`BudgetsInner::reclaim`] takes back of a hold kept by the budgets.
#[derive(Default)]
struct Reclaimed {
    /// What it still held on each budget (it had not lapsed).
    held: Vec<(usize, Decimal)>,
    /// What it was charged when it lapsed, while remembered.
    charged: Vec<ProvisionalCharge>,
    /// Its invocation, unless nothing was found.
    invocation: Option<Invocation>,
}

/// What a lapsed hold charged one budget, provisionally.
#[derive(Debug, Clone, Copy)]
struct ProvisionalCharge {
    /// The budget's place in `tracked`.
    budget: usize,
    usd: Decimal,
    /// The start of the period it was charged in.
    period_start: DateTime<Utc>,
}

impl ProvisionalCharge {
    /// What a settlement charged `charged` adds to the budget instead, in the
    /// period starting at `current`: in the period of the provisional charge,
    /// it replaces it (`charged` less the charge, which may be below 0); in the
    /// next one, only what it passes the charge by (the invocation counts at
    /// the more of the two, once); later, the whole of it (the charge is
    /// forgotten by then).
    fn replaced(&self, period: BudgetPeriod, current: DateTime<Utc>, charged: Decimal) -> Decimal {
        if current == self.period_start {
            charged - self.usd
        } else if current == period.end_of(self.period_start) {
            (charged - self.usd).max(Decimal::ZERO)
        } else {
            charged
        }
    }
}

/// What a settled call is remembered at, for later estimates: what it is known
/// to have cost, never what budgets counted it at (a floor fed back would make
/// every later call not fully priced count at it, for good).
#[derive(Debug, Clone, Copy)]
struct Remembered {
    /// When it settled.
    at: DateTime<Utc>,
    /// Its priced cost (all its parts'), plus the bound of what they left
    /// unpriced when that has one (see [`Priced::AllBut`]).
    usd: Decimal,
    /// Some line of no known bound was unpriced: it cost `usd` or more.
    lower_bound: bool,
}

impl Remembered {
    /// Whether it is a whole cost above $0: an estimate on its own (a lower
    /// bound, or a receipt of $0, is not).
    fn whole(&self) -> bool {
        !self.lower_bound && !self.usd.is_zero()
    }
}

/// What a budget's settled calls to one endpoint are remembered at, for its
/// estimates.
#[derive(Debug, Default)]
struct History {
    /// Its most recent calls, newest last, at most the budget's look-back.
    recent: VecDeque<Remembered>,
    /// Its latest whole cost above $0 (see [`Remembered::whole`]), however
    /// long ago: the least an estimate is while its recent calls hold none.
    last_whole: Option<Decimal>,
}

impl History {
    /// Remembers a settled call, keeping the `len` most recent.
    fn push(&mut self, call: Remembered, len: usize) {
        if call.whole() {
            self.last_whole = Some(call.usd);
        }
        self.recent.push_back(call);
        while self.recent.len() > len {
            self.recent.pop_front();
        }
    }
}

/// The most of `pool`, and whether any of it is a whole cost above $0 (see
/// [`Remembered::whole`]); `None` when it is empty.
fn most<'a>(pool: impl Iterator<Item = &'a Remembered>) -> Option<(Decimal, bool)> {
    pool.fold(None, |most, r| {
        let (usd, whole) = most.unwrap_or((r.usd, false));
        Some((usd.max(r.usd), whole || r.whole()))
    })
}

/// An expiring hold's key: when it lapses, and its number (two may lapse at once).
type HoldKey = (DateTime<Utc>, u64);

/// What an async invocation still holds, kept by the budgets rather than by its
/// [`Reservation`] so that it is released once SageMaker can no longer be working
/// on it, whether or not anyone settles or drops it.
struct ExpiringHold {
    endpoint: String,
    indexes: Vec<(usize, Decimal)>,
    invocation: Invocation,
}

impl BudgetsInner {
    /// The places in `tracked` of the budgets a call to `endpoint` with `tags`
    /// counts in: the configured ones that cover it, then the budgets of its tag
    /// values, begun now for a value no call carried before. The values' budgets
    /// are looked up, not gone through: there may be thousands.
    fn covering(&mut self, endpoint: &str, tags: &BTreeMap<String, String>) -> Vec<usize> {
        let mut covering: Vec<usize> = self.tracked[..self.configured]
            .iter()
            .enumerate()
            .filter(|(_, t)| t.budget.scope.covers(endpoint, tags))
            .map(|(i, _)| i)
            .collect();
        for (template, begun) in &mut self.per_value {
            let BudgetScope::EachTagValue { key } = &template.scope else {
                continue;
            };
            let Some(value) = tags.get(key) else {
                continue;
            };
            // Past the bound, new values share one budget: never none.
            let value = if begun.len() < crate::totals::MAX_TAG_VALUES || begun.contains_key(value)
            {
                value.as_str()
            } else {
                crate::sink::OTHER_TAG_VALUE
            };
            let i = match begun.get(value) {
                Some(&i) => i,
                None => {
                    let mut budget = template.clone();
                    budget.scope = BudgetScope::tag(key.clone(), value);
                    begun.insert(value.to_owned(), self.tracked.len());
                    self.tracked.push(Tracked::new(budget, false));
                    self.tracked.len() - 1
                }
            };
            covering.push(i);
        }
        covering
    }

    /// Charges every hold whose time ran out by `now`, provisionally: SageMaker
    /// has run the request by then, or dropped it from its queue, and it is
    /// counted as run (the conservative reading). What it held moves from
    /// reserved to spent in each budget's current period, and is remembered
    /// until the invocation settles, whose cost replaces it (see
    /// [`ProvisionalCharge::replaced`]). Provisional charges forgotten by `now`
    /// are pruned first. One WARN per client, the later ones at DEBUG. Returns
    /// the alerts the charges raise (none with a fleet: it raises them from
    /// the charges of its budgets, queued in `lapsed_charges`).
    fn release_lapsed(&mut self, now: DateTime<Utc>, fleet: bool) -> Vec<AlertToRaise> {
        self.forget(now);
        let mut alerts = Vec::new();
        while let Some(entry) = self.expiring.first_entry()
            && entry.key().0 <= now
        {
            let ((until, n), hold) = entry.remove_entry();
            let usd: Decimal = hold.indexes.iter().map(|(_, usd)| *usd).sum();
            let mut charges = Vec::with_capacity(hold.indexes.len());
            let mut forget_at = now;
            for (i, held) in hold.indexes {
                let t = &mut self.tracked[i];
                t.roll(now);
                t.state.release(held);
                t.state.spent += held;
                let period_start = t.state.period_start.unwrap_or(now);
                let period = t.budget.period;
                forget_at = forget_at.max(period.end_of(period.end_of(period_start)));
                charges.push(ProvisionalCharge {
                    budget: i,
                    usd: held,
                    period_start,
                });
                if t.fleet && !held.is_zero() {
                    self.lapsed_charges.push(BeyondReceipt {
                        budget: i,
                        usd: held,
                        period_start,
                    });
                }
                if !fleet {
                    for alert in t.newly_passed(now, false) {
                        alerts.push((alert, t.budget.on_alert.clone()));
                    }
                }
            }
            self.forgetting.insert((forget_at, n));
            self.provisional.insert(
                n,
                Provisional {
                    charges,
                    forget_at,
                    invocation: hold.invocation,
                },
            );
            if !std::mem::replace(&mut self.warned_lapsed, true) {
                tracing::warn!(target: "sagemeter::budget", endpoint = %hold.endpoint,
                    held_usd = %usd, until = %until,
                    "an async invocation was neither settled nor dropped by the time SageMaker \
                     must have finished or expired it (RequestTTLSeconds + \
                     InvocationTimeoutSeconds): what its budget hold held is charged, \
                     provisionally, as run; settle it when its output lands, and its cost \
                     replaces the charge (further such charges are logged at DEBUG)");
            } else {
                tracing::debug!(target: "sagemeter::budget", endpoint = %hold.endpoint,
                    held_usd = %usd, until = %until,
                    "an async invocation's budget hold lapsed and was charged provisionally");
            }
        }
        alerts
    }

    /// Forgets the provisional charges due to be forgotten by `now` (see
    /// [`Provisional::forget_at`]).
    fn forget(&mut self, now: DateTime<Utc>) {
        while let Some(&(forget_at, n)) = self.forgetting.first()
            && forget_at <= now
        {
            self.forgetting.pop_first();
            if let Some(charged) = self.provisional.remove(&n) {
                self.unindex(&charged.invocation.call, n);
            }
        }
    }

    /// Takes back the hold `key`: what it still holds, if it has not lapsed;
    /// else what it was charged provisionally, if that is still remembered.
    fn reclaim(&mut self, key: HoldKey) -> Reclaimed {
        let (held, charged, invocation) = if let Some(hold) = self.expiring.remove(&key) {
            (hold.indexes, Vec::new(), hold.invocation)
        } else if let Some(charged) = self.provisional.remove(&key.1) {
            self.forgetting.remove(&(charged.forget_at, key.1));
            (Vec::new(), charged.charges, charged.invocation)
        } else {
            return Reclaimed::default();
        };
        self.unindex(&invocation.call, key.1);
        Reclaimed {
            held,
            charged,
            invocation: Some(invocation),
        }
    }

    /// The key of the hold `reservation` settles: its own, or for a
    /// reservation of nothing settling a copy of an async invocation, the
    /// hold of that invocation that the budgets keep, if any.
    fn hold_of(&self, reservation: &Reservation) -> Option<HoldKey> {
        reservation.lapsing.or_else(|| {
            let call = reservation.call.as_ref()?;
            self.by_call.get(call).copied()
        })
    }

    /// Remembers the async invocation of the hold `key`, charged nothing (its
    /// hold was released before it lapsed: its pending half was dropped,
    /// handed off; or it held nothing: no enforced budget covers it), so that
    /// a copy settled here still takes over its parts settled so far and how
    /// fully they were priced (an input in S3 of unstated size: the 1 GB
    /// bound, and one unpriced call). Forgotten at `key`'s time, when its hold
    /// lapses or would have: SageMaker has finished or dropped the job by then
    /// (its queue time and invocation timeout are over), so one entry per job
    /// handed off lives hours at most, however long the budgets' periods.
    fn remember(&mut self, key: HoldKey, invocation: Invocation) {
        let forget_at = key.0;
        self.forgetting.insert((forget_at, key.1));
        self.by_call.insert(invocation.call.clone(), key);
        self.provisional.insert(
            key.1,
            Provisional {
                charges: Vec::new(),
                forget_at,
                invocation,
            },
        );
    }

    /// Takes the hold numbered `n` out of `by_call` (unless another holds the
    /// call's place there).
    fn unindex(&mut self, call: &str, n: u64) {
        if self.by_call.get(call).is_some_and(|key| key.1 == n) {
            self.by_call.remove(call);
        }
    }
}

/// What the fleet table said of a fleet budget's lease, for [`Budgets::renew`].
#[cfg_attr(not(feature = "fleet"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Renewed until `until` (this process's local end of it). `whole`: the
    /// table holds at least all this process was granted, so a part it gave up
    /// when the lease lapsed here (the table unreachable past the local end) is
    /// its to spend again; otherwise part of it is gone (reclaimed, then leased
    /// anew) and only the end moves.
    Held {
        /// The lease's new local end.
        until: DateTime<Utc>,
        /// The table holds all this process was granted.
        whole: bool,
    },
    /// Reclaimed by another process, or given back: what is unspent is gone.
    Gone,
}

/// Why [`Budgets::reserve_within`] did not reserve.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No room: the error to return.
    Exceeded(Error),
    /// Fleet budgets whose lease is too small for the call: lease this much more
    /// of each and try again. The error is what to return if that cannot be done
    /// (boxed: rare, and an error is large). What to lease is read by the
    /// fleet's lease (`fleet` feature), from a reservation it makes afresh.
    Short(
        #[cfg_attr(not(feature = "fleet"), allow(dead_code))] Vec<LeaseWant>,
        Box<Error>,
    ),
}

impl Refusal {
    /// The error to return when no more can be leased.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn into_error(self) -> Error {
        match self {
            Refusal::Exceeded(err) => err,
            Refusal::Short(_, err) => *err,
        }
    }
}

/// More of a fleet budget that a call needs leased.
#[cfg_attr(not(feature = "fleet"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) struct LeaseWant {
    /// Which budget (its place in the client's list).
    pub budget: usize,
    /// The period the lease is for.
    pub period_start: DateTime<Utc>,
    /// At least this much more.
    pub needed: Decimal,
    /// The call's estimate, for the error when the fleet has no room.
    pub estimate: Decimal,
}

/// All budgets of a client, under one lock.
#[derive(Default)]
pub(crate) struct Budgets {
    inner: Mutex<BudgetsInner>,
    /// Shared with a fleet: it raises the alerts.
    fleet: bool,
    /// The meter's clock: a reservation dropped, which is given no time,
    /// charges the holds lapsed by it first (see [`Reservation::expire_at`]).
    time: SharedTimeSource,
    /// Hand-overs of charges beyond the receipts under way (see
    /// [`Budgets::handing_over`]).
    handing: Arc<AtomicUsize>,
}

/// A hand-over of charges beyond the receipts from the budgets to the fleet
/// under way, from before the budgets count them until the fleet has them
/// (see [`Budgets::handing_over`]); ended when dropped.
pub(crate) struct HandingOver(Arc<AtomicUsize>);

impl Drop for HandingOver {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for Budgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_list()
            .entries(inner.tracked.iter().map(|t| &t.budget))
            .finish()
    }
}

/// How much of a call's cost its receipt priced, as enforced budgets count it
/// (nothing more is worked out for a fully priced receipt: it is `Fully`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priced {
    /// Every line: counted at its cost.
    Fully,
    /// Every line but some whose cost together is at most `unpriced_usd` (the
    /// data in of an async input in S3 whose size was not given: at most 1 GB,
    /// at a known rate): counted at its priced cost plus that bound.
    AllBut {
        /// The most the unpriced lines can cost, USD.
        unpriced_usd: Decimal,
    },
    /// Some line whose cost has no known bound (its rate, or how much of it,
    /// is unknown: compute, tokens not reported, an output of unknown size):
    /// counted at no less than the call's estimate.
    Partly,
}

impl Priced {
    /// How a call billed in two parts priced this way and `other` is priced as a
    /// whole: the bounds of its parts add up; one part of unbounded cost makes
    /// it so.
    fn and(self, other: Priced) -> Priced {
        match (self, other) {
            (Priced::Fully, whole) | (whole, Priced::Fully) => whole,
            (Priced::AllBut { unpriced_usd: a }, Priced::AllBut { unpriced_usd: b }) => a
                .checked_add(b)
                .map_or(Priced::Partly, |usd| Priced::AllBut { unpriced_usd: usd }),
            _ => Priced::Partly,
        }
    }
}

/// An estimate held against budgets until the call settles. Dropping it without
/// settling releases it (a call that never reached the model, or an async
/// invocation whose pending half was dropped unsettled before its hold lapsed:
/// see [`expire_at`](Self::expire_at)).
///
/// A call billed in parts (an async invocation: its submission, then its
/// settlement) settles each part but the last with [`settle_part`](Self::settle_part),
/// which charges the part and keeps the rest of the estimate held.
#[derive(Debug)]
pub(crate) struct Reservation {
    budgets: Option<Arc<Budgets>>,
    /// The budgets holding part of the estimate, and how much each still holds.
    indexes: Vec<(usize, Decimal)>,
    endpoint: String,
    /// What the parts settled so far cost (remembered with the last part, as
    /// the whole call's cost for later estimates).
    settled_usd: Decimal,
    /// How fully the parts settled so far were priced (the last part's pricing
    /// joins it: see [`Priced::and`]).
    priced: Priced,
    /// What of their unpriced part the budgets counted then.
    counted: Counted,
    /// Set by [`expire_at`](Self::expire_at): what it holds is kept by the budgets
    /// under this key (and `indexes` is empty) until it lapses (then what it
    /// was charged, under the key's number) or is taken back; holding
    /// nothing, its invocation is remembered under the key's number, charged
    /// nothing.
    lapsing: Option<HoldKey>,
    /// Set by [`of_call`](Self::of_call) on a reservation of nothing: the
    /// async invocation whose copy it settles.
    call: Option<String>,
}

impl Budgets {
    /// The client's budgets; with `fleet`, enforced ones spend only what they
    /// lease from the fleet table, and alerts are raised by the fleet. `time`
    /// is the meter's clock, the one the times it gives them are read from.
    pub(crate) fn new(budgets: Vec<Budget>, fleet: bool, time: SharedTimeSource) -> Self {
        let (per_value, budgets): (Vec<_>, Vec<_>) = budgets
            .into_iter()
            .partition(|b| matches!(b.scope, BudgetScope::EachTagValue { .. }));
        Budgets {
            inner: Mutex::new(BudgetsInner {
                configured: budgets.len(),
                tracked: budgets
                    .into_iter()
                    .map(|budget| {
                        let fleet = fleet && budget.mode == BudgetMode::Enforce;
                        Tracked::new(budget, fleet)
                    })
                    .collect(),
                per_value: per_value
                    .into_iter()
                    .map(|budget| (budget, HashMap::new()))
                    .collect(),
                expiring: BTreeMap::new(),
                next_hold: 0,
                warned_lapsed: false,
                last_whole: HashMap::new(),
                provisional: HashMap::new(),
                forgetting: BTreeSet::new(),
                by_call: HashMap::new(),
                lapsed_charges: Vec::new(),
                deferred_alerts: Vec::new(),
            }),
            fleet,
            time,
            handing: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Now, on the meter's clock.
    fn now(&self) -> DateTime<Utc> {
        self.time.now().into()
    }

    pub(crate) fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.tracked.is_empty() && inner.per_value.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`reserve_within`](Self::reserve_within) what this process has leased, as
    /// calls do (the tests' short form).
    #[cfg(test)]
    pub(crate) fn reserve(
        self: &Arc<Self>,
        endpoint: &str,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> std::result::Result<Reservation, Refusal> {
        self.reserve_within(endpoint, tags, now, false)
    }

    /// Reserves the estimate of a call on every enforced budget covering it, or
    /// rejects it without reserving anything. `unleased`: a fleet budget's room is
    /// its whole limit, not what this process has leased, for a call that cannot
    /// wait for a lease (an SDK hook), so that calls in flight at once still cannot
    /// reserve past the limit (then never [`Refusal::Short`]).
    pub(crate) fn reserve_within(
        self: &Arc<Self>,
        endpoint: &str,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
        unleased: bool,
    ) -> std::result::Result<Reservation, Refusal> {
        let (reserved, alerts) = {
            let mut inner = self.lock();
            let mut alerts = std::mem::take(&mut inner.deferred_alerts);
            alerts.extend(inner.release_lapsed(now, self.fleet));
            (
                self.reserve_locked(&mut inner, endpoint, tags, now, unleased),
                alerts,
            )
        };
        // Raised outside the lock: a callback may look at the budgets.
        raise_all(alerts);
        reserved
    }

    /// [`reserve_within`](Self::reserve_within) under the lock, once lapsed
    /// holds are charged.
    fn reserve_locked(
        self: &Arc<Self>,
        inner: &mut BudgetsInner,
        endpoint: &str,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
        unleased: bool,
    ) -> std::result::Result<Reservation, Refusal> {
        let covering = inner.covering(endpoint, tags);
        let endpoint_whole = inner.last_whole.get(endpoint).copied();
        let tracked = &mut inner.tracked;
        let mut held = Vec::new();
        let mut short = Vec::new();
        for &i in &covering {
            let t = &mut tracked[i];
            if t.budget.mode != BudgetMode::Enforce {
                continue;
            }
            t.roll(now);
            let estimate = t.estimate(endpoint, endpoint_whole);
            let wanted = t.state.spent + t.state.reserved + estimate;
            let leased = t.room(now);
            let room = if unleased { t.budget.limit_usd } else { leased };
            if wanted > room {
                let exceeded = Error::BudgetExceeded {
                    scope: t.budget.scope.clone(),
                    period: t.budget.period,
                    fleet_wide: false,
                    estimate,
                    limit: t.budget.limit_usd,
                    spent: t.state.spent,
                    reserved: t.state.reserved,
                };
                if !t.fleet || wanted > t.budget.limit_usd {
                    return Err(Refusal::Exceeded(exceeded));
                }
                short.push((
                    LeaseWant {
                        budget: i,
                        period_start: t.state.period_start.unwrap_or(now),
                        needed: wanted - room,
                        estimate,
                    },
                    exceeded,
                ));
            }
            held.push((i, estimate));
        }
        if let Some((_, error)) = short.first() {
            let error = Box::new(clone_exceeded(error));
            return Err(Refusal::Short(
                short.into_iter().map(|(want, _)| want).collect(),
                error,
            ));
        }
        for (i, estimate) in &held {
            let state = &mut tracked[*i].state;
            state.reserved += *estimate;
            state.holds += 1;
        }
        Ok(Reservation {
            budgets: Some(self.clone()),
            indexes: held,
            endpoint: endpoint.to_owned(),
            settled_usd: Decimal::ZERO,
            priced: Priced::Fully,
            counted: Counted::default(),
            lapsing: None,
            call: None,
        })
    }

    /// A fleet lease of `amount` more for the budget at `index` in the period
    /// starting at `period_start`, held until `until`: a new lease
    /// (`new_lease`), or more of the one the fleet holds of this process
    /// (even if it lapsed here, the table may still hold it).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn grant(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        amount: Decimal,
        until: DateTime<Utc>,
        new_lease: bool,
    ) {
        self.add_room(index, period_start, amount, until, Some(new_lease));
    }

    /// A new lease for the budget at `index` (period starting at
    /// `period_start`), held until `until`, the one held having been
    /// reclaimed: what is leased becomes `leased`, what the table counts for
    /// this process (its writes outside the new lease and the new grant),
    /// and nothing given up before is this process's again.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn lease_anew(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        leased: Decimal,
        until: DateTime<Utc>,
    ) {
        self.update_due(index, period_start, |state| {
            state.lapsed = Decimal::ZERO;
            state.lease_gone = false;
            state.found_gone = false;
            state.leased = leased;
            state.lease_until = Some(until);
        });
    }

    /// Changes the state of the budget at `index` by `change` while in the
    /// period starting at `period_start` (nothing for another period), a lease
    /// that lapsed here with no call to see it given up first (see `add_room`).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    fn update_due(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        change: impl FnOnce(&mut PeriodState),
    ) {
        let now = self.now();
        let mut inner = self.lock();
        let Some(t) = inner.in_period(index, period_start) else {
            return;
        };
        t.lapse_if_due(now);
        change(&mut t.state);
    }

    /// A take-back counted off what a new lease gave the budget at `index`
    /// (period starting at `period_start`; see [`lease_anew`](Self::lease_anew))
    /// was applied since as that lease's use, not before it: `usd` more is
    /// leased (given up with the lease's unspent rest if it lapsed here).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn untake(&self, index: usize, period_start: DateTime<Utc>, usd: Decimal) {
        self.update_due(index, period_start, |state| {
            if state.lease_until.is_some() {
                state.leased += usd;
            } else if !state.lease_gone {
                state.lapsed += usd;
            }
        });
    }

    /// Room of `amount` more that `WhenUnavailable::Allow` lets the budget at
    /// `index` spend while the fleet table does not answer, as if leased
    /// until `until`: no lease of the table's, so nothing it gives up is this
    /// process's again.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn allow(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        amount: Decimal,
        until: DateTime<Utc>,
    ) {
        self.add_room(index, period_start, amount, until, None);
    }

    /// [`grant`](Self::grant) (`Some(new_lease)`) or [`allow`](Self::allow)
    /// (`None`).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    fn add_room(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        amount: Decimal,
        until: DateTime<Utc>,
        new_lease: Option<bool>,
    ) {
        // A lease that lapsed here with no call to see it is given up first,
        // as a call would have: moving its end on would keep its unspent
        // part as room, when the table may have reclaimed it (a grant then
        // comes of a new lease; what it gave up comes back only with a
        // renewal that finds it held whole).
        self.update_due(index, period_start, |state| {
            match new_lease {
                Some(new_lease) => {
                    if new_lease {
                        // A new lease, not more of one the table holds: what an
                        // earlier lease (or a take-back with none) gave up is not
                        // its, and a renewal of it whole gives none of that back.
                        state.lapsed = Decimal::ZERO;
                    }
                    state.lease_gone = false;
                    state.found_gone = false;
                }
                None if state.lease_until.is_none() => {
                    // Room the table granted no one: what it leaves unspent is no
                    // lease's. What a lapsed lease gave up stays its: the table may
                    // still hold that lease, and a renewal of it whole gives that
                    // back (the spend of this room, written as its use, then
                    // counted by the table past its grant: at most this room).
                    state.lease_gone = true;
                }
                None => {}
            }
            state.leased += amount;
            state.lease_until = Some(until);
        });
    }

    /// What the fleet table said of the lease of the budget at `index` (period
    /// starting at `period_start`).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn renew(&self, index: usize, period_start: DateTime<Utc>, renewal: Renewal) {
        // A lease that lapsed here with no call to see it is given up first,
        // as by a grant (see `add_room`): moving its end on would keep its
        // unspent part as room though the table may have reclaimed it; only
        // a renewal that finds it whole gives that part back.
        self.update_due(index, period_start, |state| {
            match renewal {
                Renewal::Held { until, whole: true } => {
                    // Still held, all of it: what was given up when it lapsed here
                    // is spendable again (the fleet could not have leased it to
                    // another process: the table kept it committed to this one).
                    state.leased += std::mem::take(&mut state.lapsed);
                    state.lease_until = Some(until);
                    // What the lease gives up from now on is this process's again,
                    // even if the room it held since began as room
                    // `WhenUnavailable::Allow` let it spend.
                    state.lease_gone = false;
                    state.found_gone = false;
                }
                Renewal::Held {
                    until,
                    whole: false,
                } => {
                    if state.lease_until.is_some() {
                        state.lease_until = Some(until);
                    }
                }
                Renewal::Gone => {
                    // What calls in flight hold is no lease's: their spend, written
                    // late, is the next lease's use (see `Tracked::room`).
                    state.leased = state.leased.min(state.spent);
                    state.lease_until = None;
                    state.lapsed = Decimal::ZERO;
                    state.lease_gone = true;
                    state.found_gone = true;
                }
            }
        });
    }

    /// Marks a hand-over of `charges` to the fleet as under way, when one of
    /// them is below $0 beyond the receipts (a provisional charge taken back),
    /// until the guard is dropped (`None` otherwise): taken under the budgets' lock as they count the charges
    /// ([`Reservation::settle_handing`], or take them from the queue,
    /// [`take_lapsed_charges`](Self::take_lapsed_charges)), and dropped once
    /// the fleet has them. Meanwhile the budgets' figures have taken back
    /// spend that the fleet's writes still count, and
    /// [`count_written`](Self::count_written) counts nothing. (Charges above
    /// $0 on their way are not: the writes counting less than the budgets
    /// only make the count smaller.)
    fn handing_over(&self, charges: &[BeyondReceipt]) -> Option<HandingOver> {
        if !charges.iter().any(|c| c.usd < Decimal::ZERO) {
            return None;
        }
        self.handing.fetch_add(1, Ordering::SeqCst);
        Some(HandingOver(self.handing.clone()))
    }

    /// Counts as leased, for the budget at `index` in the period starting at
    /// `period_start`, the spend the fleet table counts for this process
    /// apart from any lease it holds: the fleet holds no lease of the
    /// budget's item for this process, and `written_usd` is what its writes
    /// of the item added, acknowledged, less what the item holds to write
    /// below $0. What is leased becomes no more than the least of that, less
    /// what the table may still take off (provisional charges of lapsed async
    /// holds not replaced yet, and what was taken back of them not handed to
    /// the fleet yet), and what is spent: it is spend the table has counted,
    /// never room to spend. Returns what more is leased (nothing while a
    /// hand-over is under way, see [`handing_over`](Self::handing_over)).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn count_written(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        written_usd: Decimal,
    ) -> Decimal {
        let mut inner = self.lock();
        if self.handing.load(Ordering::SeqCst) > 0 {
            return Decimal::ZERO;
        }
        let BudgetsInner {
            tracked,
            provisional,
            lapsed_charges,
            ..
        } = &mut *inner;
        let Some(t) = tracked.get_mut(index) else {
            return Decimal::ZERO;
        };
        if t.state.period_start != Some(period_start) {
            return Decimal::ZERO;
        }
        let period = t.budget.period;
        // Replaced by their settlements in their period and the next, at
        // most taken back whole (see `ProvisionalCharge::replaced`).
        let open: Decimal = provisional
            .values()
            .flat_map(|p| p.charges.iter())
            .filter(|c| {
                c.budget == index
                    && (c.period_start == period_start
                        || period.end_of(c.period_start) == period_start)
            })
            .map(|c| c.usd.max(Decimal::ZERO))
            .sum();
        let taken_back: Decimal = lapsed_charges
            .iter()
            .filter(|c| c.budget == index)
            .map(|c| c.usd.min(Decimal::ZERO))
            .sum();
        let counted = (written_usd - open + taken_back).min(t.state.spent);
        let state = &mut t.state;
        if counted <= state.leased {
            return Decimal::ZERO;
        }
        let more = counted - state.leased;
        state.leased = counted;
        // A lease that lapsed here is not this process's again: what is
        // leased is what the table counts.
        state.lapsed = Decimal::ZERO;
        more
    }

    /// Raises the alerts of the budget at `index` that this process's own spend
    /// in the current period passes and that were not raised here yet, marked
    /// [`process_local`](BudgetAlert::process_local): the fleet calls this for
    /// a budget whose table item it cannot write, so that a budget does not
    /// stay silent while the fleet's alerts cannot be marked.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn raise_local(&self, index: usize, now: DateTime<Utc>) {
        let (alerts, budget) = {
            let mut inner = self.lock();
            let Some(t) = inner.tracked.get_mut(index) else {
                return;
            };
            t.roll(now);
            (t.newly_passed(now, true), t.budget.clone())
        };
        // Raised outside the lock: a callback may look at the budgets.
        for alert in alerts {
            budget.raise(&alert);
        }
    }

    /// Notes that the fleet raised threshold `bit` of the budget at `index` in
    /// the period starting at `period_start`; true if this process raised it
    /// already (from its own spend, see [`raise_local`](Self::raise_local)):
    /// not raised twice.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn note_fleet_alert(
        &self,
        index: usize,
        period_start: DateTime<Utc>,
        bit: usize,
    ) -> bool {
        let mut inner = self.lock();
        let Some(t) = inner.in_period(index, period_start) else {
            return false;
        };
        let raised = t.state.alerted & (1 << bit) != 0;
        t.state.alerted |= 1 << bit;
        raised
    }

    /// The budgets, in the client's order.
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn list(&self) -> Vec<Budget> {
        self.lock()
            .tracked
            .iter()
            .map(|t| t.budget.clone())
            .collect()
    }

    /// A reservation holding nothing (for spend that was not reserved in advance).
    pub(crate) fn unreserved(self: &Arc<Self>, endpoint: &str) -> Reservation {
        Reservation {
            budgets: Some(self.clone()),
            indexes: Vec::new(),
            endpoint: endpoint.to_owned(),
            settled_usd: Decimal::ZERO,
            priced: Priced::Fully,
            counted: Counted::default(),
            lapsing: None,
            call: None,
        }
    }

    /// Adds one part of a call's cost to every budget covering it, and lowers
    /// what the call still holds on each enforced one by as much (not below
    /// zero): the call's spend and hold together stay its estimate until its
    /// cost passes it. A part not fully priced is counted as such here, where
    /// and when it settles, not only with the last part (which another
    /// client's meter may settle): one of `unpriced_calls`, and on an
    /// enforced budget the bound of its unpriced lines, if they have one (an
    /// async input in S3 of unstated size: see [`Priced::AllBut`]). A fleet
    /// budget's bound is queued for the fleet as a charge beyond the receipt
    /// (see [`take_lapsed_charges`](Self::take_lapsed_charges)). Returns the
    /// alerts to raise.
    fn settle_part(
        &self,
        reservation: &mut Reservation,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: DateTime<Utc>,
    ) -> Vec<AlertToRaise> {
        let mut inner = self.lock();
        let covering = inner.covering(&reservation.endpoint, tags);
        // A hold still held is taken back (its lapse called off); one charged
        // provisionally stays charged, for the last part to replace.
        if let Some(key) = reservation.lapsing
            && inner.expiring.contains_key(&key)
        {
            reservation.lapsing = None;
            reservation.indexes = inner.reclaim(key).held;
        }
        // What this part leaves unpriced, counted now on the budgets covering
        // it: its bound on an enforced one (which holds the call), and the
        // call once among the unpriced ones.
        let bound = match priced {
            Priced::AllBut { unpriced_usd } => unpriced_usd,
            Priced::Fully | Priced::Partly => Decimal::ZERO,
        };
        let unpriced_call = priced != Priced::Fully && !reservation.counted.unpriced_call;
        let tracked = &mut inner.tracked;
        for (i, held) in reservation.indexes.iter_mut() {
            let kept = (*held - cost_usd.saturating_add(bound)).max(Decimal::ZERO);
            let state = &mut tracked[*i].state;
            state.reserved = (state.reserved - (*held - kept)).max(Decimal::ZERO);
            *held = kept;
        }
        reservation.settled_usd += cost_usd;
        reservation.priced = reservation.priced.and(priced);
        reservation.counted = reservation.counted.and(Counted {
            unpriced_call: priced != Priced::Fully,
            bound_usd: bound,
        });
        // A copy's settlement takes over the parts settled so far with the
        // charge.
        if let Some(key) = reservation.lapsing
            && let Some(charged) = inner.provisional.get_mut(&key.1)
        {
            charged.invocation.settled_usd = reservation.settled_usd;
            charged.invocation.priced = reservation.priced;
            charged.invocation.counted = reservation.counted;
        }
        let mut alerts = std::mem::take(&mut inner.deferred_alerts);
        let BudgetsInner {
            tracked,
            lapsed_charges,
            ..
        } = &mut *inner;
        for &i in &covering {
            let t = &mut tracked[i];
            t.roll(now);
            let beyond = if t.budget.mode == BudgetMode::Enforce {
                bound
            } else {
                Decimal::ZERO
            };
            t.state.spent += cost_usd.saturating_add(beyond);
            t.state.unpriced_calls += u64::from(unpriced_call);
            if t.fleet && !beyond.is_zero() {
                lapsed_charges.push(BeyondReceipt {
                    budget: i,
                    usd: beyond,
                    period_start: t.state.period_start.unwrap_or(now),
                });
            }
            if self.fleet {
                continue; // the fleet raises alerts, once for all processes
            }
            for alert in t.newly_passed(now, false) {
                alerts.push((alert, t.budget.on_alert.clone()));
            }
        }
        alerts
    }

    /// Adds a call's real cost to every budget covering it; returns the alerts to
    /// raise, and what fleet budgets were charged beyond the receipt's cost.
    fn settle(
        &self,
        reservation: &mut Reservation,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: DateTime<Utc>,
    ) -> (Vec<AlertToRaise>, Vec<BeyondReceipt>, Option<HandingOver>) {
        let mut inner = self.lock();
        inner.forget(now);
        let covering = inner.covering(&reservation.endpoint, tags);
        // What its hold still holds, or was charged provisionally if it
        // lapsed: replaced now. A copy's settlement takes over the hold of
        // its invocation, and its parts settled so far, as the original's
        // settlement would.
        let key = inner.hold_of(reservation);
        let own = reservation.lapsing.take();
        // The parts of a remembered invocation a copy takes over: already
        // charged (with the bound of what they left unpriced), so off the
        // estimate of an enforced budget that holds nothing for it.
        let mut taken_over = Decimal::ZERO;
        let provisional = match key {
            Some(key) => {
                let reclaimed = inner.reclaim(key);
                reservation.indexes.extend(reclaimed.held);
                if own.is_none()
                    && let Some(invocation) = reclaimed.invocation
                {
                    reservation.settled_usd += invocation.settled_usd;
                    reservation.priced = reservation.priced.and(invocation.priced);
                    reservation.counted = reservation.counted.and(invocation.counted);
                    taken_over = invocation
                        .settled_usd
                        .saturating_add(invocation.counted.bound_usd);
                }
                reclaimed.charged
            }
            None => Vec::new(),
        };
        let BudgetsInner {
            tracked,
            deferred_alerts,
            last_whole,
            ..
        } = &mut *inner;
        // Each budget in the period of `now` before anything is worked out: an
        // unreserved call's floor is the estimate of that period's receipts.
        for &i in &covering {
            tracked[i].roll(now);
        }
        // A provisional charge is replaced in its period and the next; later it
        // is forgotten (pruned, or due to be), and the settlement counts as if
        // its hold had been released.
        let provisional: Vec<ProvisionalCharge> = provisional
            .into_iter()
            .filter(|c| {
                let t = &tracked[c.budget];
                t.state.period_start.is_some_and(|current| {
                    current == c.period_start || current == t.budget.period.end_of(c.period_start)
                })
            })
            .collect();
        let held: Vec<(usize, Decimal)> = reservation.indexes.drain(..).collect();
        // A call billed in parts is fully priced only if every part was.
        let priced = reservation.priced.and(priced);
        let fully_priced = priced == Priced::Fully;
        for &(i, estimate) in &held {
            tracked[i].state.release(estimate);
        }
        // A call whose unpriced part has no known bound counts at no less than
        // what was reserved for it: an unknown price must not make an enforced
        // budget spend-free. One that nothing was reserved for (an async
        // settlement, a call let through unreserved) counts at no less than what
        // would have been reserved. (Nothing to work out, nor allocated, for any
        // other call.) Each budget's floor, by its place in `tracked`: what was
        // held on it, or for a covering enforced one that held nothing, its
        // estimate, less the parts of an invocation taken over (as its hold
        // would have been: an original dropped before its lapse held that). A
        // hold charged provisionally when it lapsed is its floor as it would
        // have been still held.
        let floors: Vec<(usize, Decimal)> = match priced {
            Priced::Partly => {
                let mut floors: Vec<(usize, Decimal)> = held
                    .iter()
                    .copied()
                    .chain(provisional.iter().map(|c| (c.budget, c.usd)))
                    .collect();
                for &i in &covering {
                    if tracked[i].budget.mode == BudgetMode::Enforce
                        && !floors.iter().any(|(j, _)| *j == i)
                    {
                        let estimate = tracked[i].estimate(
                            &reservation.endpoint,
                            last_whole.get(&reservation.endpoint).copied(),
                        );
                        floors.push((i, (estimate - taken_over).max(Decimal::ZERO)));
                    }
                }
                floors
            }
            Priced::Fully | Priced::AllBut { .. } => Vec::new(),
        };
        // Remembered as the whole call (with the parts settled before, an async
        // invocation's submission), at what it is known to have cost: not at a
        // floor, an estimate that would otherwise feed the estimates after it
        // (one $12 call would make every later call not fully priced count at
        // the limit, for good), nor at another budget's floor (a fixed estimate
        // is no receipt). One whose unpriced lines have a known bound is
        // known to cost at most its priced cost plus that bound: remembered at
        // that, a whole cost (an estimate a little above the call, never below;
        // as a lower bound it would leave every such call at no less than the
        // initial estimate).
        let (known, lower_bound) = match priced {
            Priced::Fully => (reservation.settled_usd + cost_usd, false),
            Priced::AllBut { unpriced_usd } => (
                (reservation.settled_usd + cost_usd).saturating_add(unpriced_usd),
                false,
            ),
            Priced::Partly => (reservation.settled_usd + cost_usd, true),
        };
        // In the history of every budget it counts in: each estimates from
        // the calls it counted.
        let remembered = Remembered {
            at: now,
            usd: known,
            lower_bound,
        };
        for &i in &covering {
            tracked[i].remember(&reservation.endpoint, remembered);
        }
        if remembered.whole() {
            match last_whole.get_mut(&reservation.endpoint) {
                Some(whole) => *whole = remembered.usd,
                None => {
                    last_whole.insert(reservation.endpoint.clone(), remembered.usd);
                }
            }
        }
        let mut alerts = std::mem::take(deferred_alerts);
        let mut beyond = Vec::new();
        for &i in &covering {
            let t = &mut tracked[i];
            let charged = match priced {
                Priced::Fully => cost_usd,
                // Parts settled before counted their priced cost then, and the
                // bound of what they left unpriced: the rest of the whole
                // call's bound is counted now.
                Priced::AllBut { unpriced_usd } if t.budget.mode == BudgetMode::Enforce => cost_usd
                    .saturating_add(
                        (unpriced_usd - reservation.counted.bound_usd).max(Decimal::ZERO),
                    ),
                Priced::AllBut { .. } => cost_usd,
                Priced::Partly => floors
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map_or(cost_usd, |(_, floor)| cost_usd.max(*floor)),
            };
            // Replacing a provisional charge of its lapsed hold, if any: what
            // the budget is charged in its current period, net.
            let charged = match provisional.iter().find(|c| c.budget == i) {
                Some(c) => c.replaced(
                    t.budget.period,
                    t.state.period_start.unwrap_or(now),
                    charged,
                ),
                None => charged,
            };
            // Not below $0: a provisional charge taken back whole leaves no
            // less than nothing, whatever the rounding of the sums before.
            let spent_before = t.state.spent;
            t.state.spent = (t.state.spent + charged).max(Decimal::ZERO);
            t.unlease_taken_back(spent_before);
            // Counted once: when a part settled before was not fully priced,
            // it was counted then.
            t.state.unpriced_calls +=
                u64::from(!fully_priced && !reservation.counted.unpriced_call);
            if t.fleet && charged != cost_usd {
                beyond.push(BeyondReceipt {
                    budget: i,
                    usd: charged - cost_usd,
                    period_start: t.state.period_start.unwrap_or(now),
                });
            }
            if self.fleet {
                continue; // the fleet raises alerts, once for all processes
            }
            for alert in t.newly_passed(now, false) {
                alerts.push((alert, t.budget.on_alert.clone()));
            }
        }
        // Under the lock: counted by the budgets, not by the fleet yet.
        let handing = self.handing_over(&beyond);
        (alerts, beyond, handing)
    }

    /// Spent and reserved per budget, for inspection.
    pub(crate) fn status(&self, now: DateTime<Utc>) -> Vec<BudgetStatus> {
        let mut inner = self.lock();
        let mut alerts = std::mem::take(&mut inner.deferred_alerts);
        alerts.extend(inner.release_lapsed(now, self.fleet));
        let status: Vec<BudgetStatus> = inner
            .tracked
            .iter_mut()
            .map(|t| {
                t.roll(now);
                BudgetStatus {
                    scope: t.budget.scope.clone(),
                    period: t.budget.period,
                    mode: t.budget.mode,
                    limit_usd: t.budget.limit_usd,
                    spent_usd: t.state.spent,
                    reserved_usd: t.state.reserved,
                    unpriced_calls: t.state.unpriced_calls,
                }
            })
            .collect();
        drop(inner);
        // Raised outside the lock: a callback may look at the budgets.
        raise_all(alerts);
        status
    }

    /// The provisional charges of fleet budgets made since the last call (holds
    /// that lapsed), what was taken back of them for invocations settled
    /// elsewhere (below $0), and the bounds of what async submissions left
    /// unpriced, for the fleet to add to the budgets' items as
    /// charges beyond the receipts; with them, when any is below $0, a guard
    /// to drop once the fleet has them (see [`handing_over`](Self::handing_over)).
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    pub(crate) fn take_lapsed_charges(&self) -> (Vec<BeyondReceipt>, Option<HandingOver>) {
        let mut inner = self.lock();
        let charges = std::mem::take(&mut inner.lapsed_charges);
        let handing = self.handing_over(&charges);
        drop(inner);
        (charges, handing)
    }
}

/// Where a budget stands.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// Scope.
    pub scope: BudgetScope,
    /// Period.
    pub period: BudgetPeriod,
    /// Mode.
    pub mode: BudgetMode,
    /// Limit, USD.
    pub limit_usd: Decimal,
    /// Spent in the current period, USD, with what async invocations whose holds
    /// lapsed were charged as run until they settle.
    pub spent_usd: Decimal,
    /// Held by calls in flight, USD (not an async invocation's hold once it
    /// lapsed: that is spent).
    pub reserved_usd: Decimal,
    /// Calls in the current period whose receipts could not be fully priced (an
    /// async invocation counts once: when submitted, where its submission was
    /// not fully priced, else when settled). An enforced budget counted
    /// each at no less than its estimate; an alerting one counted only their
    /// priced part, so while this is above 0 its `spent_usd` is a lower bound.
    #[serde(default)]
    pub unpriced_calls: u64,
}

/// An alert, and the budget's callback for it.
type AlertToRaise = (BudgetAlert, Option<Arc<AlertFn>>);

/// What a fleet budget was charged for a call beyond its receipt's cost: for a
/// call that could not be fully priced (an unknown price never makes a budget
/// spend-free), the bound of its unpriced lines, or what its estimate passes its
/// cost by (see [`Priced`]); for an async invocation whose hold lapsed, the
/// provisional charge (no receipt), then at its settlement what replacing it
/// changes (see [`ProvisionalCharge::replaced`]): less than the receipt, so
/// below $0, where the provisional charge covers part of it. The fleet adds it
/// to the budget's item of `period_start`, so that every process, and the
/// lease's use, counts it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BeyondReceipt {
    /// The budget, by its index in the client's order.
    pub budget: usize,
    /// The charge beyond the receipt, USD (not 0; below 0 where a provisional
    /// charge made before stands for part of the receipt).
    pub usd: Decimal,
    /// The start of the budget's period the charge was made in, here: the
    /// fleet counts it in that period's item, not in the one it is handed
    /// over in (a lapsed hold's charge is handed over at the next flush,
    /// maybe after the period ended).
    pub period_start: DateTime<Utc>,
}

impl Reservation {
    /// [`settle_handing`](Self::settle_handing), for the tests: what fleet
    /// budgets were charged beyond the receipt, no hand-over kept under way.
    #[cfg(test)]
    pub(crate) fn settle(
        self,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: DateTime<Utc>,
    ) -> Vec<BeyondReceipt> {
        self.settle_handing(tags, cost_usd, priced, now).0
    }

    /// Settles to the real cost and raises alerts. Consumes the reservation.
    /// Returns what fleet budgets were charged beyond the receipt (see
    /// [`BeyondReceipt`]; empty without a fleet, and for a fully priced call),
    /// and, when a charge is below $0, a guard to drop once the fleet has the
    /// charges (see [`Budgets::handing_over`]).
    pub(crate) fn settle_handing(
        mut self,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: DateTime<Utc>,
    ) -> (Vec<BeyondReceipt>, Option<HandingOver>) {
        let Some(budgets) = self.budgets.take() else {
            return (Vec::new(), None);
        };
        let (alerts, beyond, handing) = budgets.settle(&mut self, tags, cost_usd, priced, now);
        raise_all(alerts);
        (beyond, handing)
    }

    /// Settles one part of a call billed in parts (an async invocation's
    /// submission) and raises alerts; the rest of the estimate stays held until
    /// the last part is [settled](Self::settle_handing), or the reservation is dropped.
    /// A part that is not fully priced makes the whole call count as that part
    /// is priced ([`Priced`]) when it settles; what it leaves unpriced counts
    /// now, here (one unpriced call, and on an enforced budget the bound of
    /// its unpriced lines, if they have one), whoever settles the last part.
    pub(crate) fn settle_part(
        &mut self,
        tags: &BTreeMap<String, String>,
        cost_usd: Decimal,
        priced: Priced,
        now: DateTime<Utc>,
    ) {
        let Some(budgets) = self.budgets.clone() else {
            return;
        };
        let alerts = budgets.settle_part(self, tags, cost_usd, priced, now);
        raise_all(alerts);
    }

    /// Whether this reservation is held on `budgets` (a pending async invocation
    /// settled by another client's meter is not).
    pub(crate) fn is_of(&self, budgets: &Arc<Budgets>) -> bool {
        self.budgets
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, budgets))
    }

    /// What it still holds, summed over its budgets, USD (nothing once its
    /// lapse time has passed on the meter's clock, whether or not the budgets
    /// have charged it yet).
    pub(crate) fn held_usd(&self) -> Decimal {
        match (self.lapsing, &self.budgets) {
            (Some(key), Some(budgets)) if key.0 <= budgets.now() => Decimal::ZERO,
            (Some(key), Some(budgets)) => budgets
                .lock()
                .expiring
                .get(&key)
                .map_or(Decimal::ZERO, |h| {
                    h.indexes.iter().map(|(_, usd)| *usd).sum()
                }),
            _ => self.indexes.iter().map(|(_, usd)| *usd).sum(),
        }
    }

    /// Makes what it still holds lapse at `until` (on the meter's clock, the
    /// one the budgets are given): from then on the budgets themselves charge
    /// it, provisionally (at their next reservation or status, or when any
    /// reservation of theirs is dropped, this one included), settling it
    /// replaces that charge, and dropping it keeps it. For an async
    /// invocation, `until` is when SageMaker must have run or expired it; one
    /// kept unsettled past that (a lost notification, a settler that comes
    /// late) must not hold an enforced budget for ever, nor free room for more
    /// work while its own may still be billed.
    /// The budgets keep it as the hold of the invocation `call` (see
    /// [`Invocation::call`]): a settlement of any copy of it through them
    /// settles it (see [`of_call`](Self::of_call)). Holding nothing (only
    /// alerting budgets cover it), or dropped before it lapses, the
    /// invocation is still remembered, charged nothing, for a copy's
    /// settlement to take over its parts settled so far (see
    /// [`BudgetsInner::remember`]).
    pub(crate) fn expire_at(&mut self, until: DateTime<Utc>, call: &str) {
        let Some(budgets) = &self.budgets else {
            return;
        };
        if self.lapsing.is_some() {
            return;
        }
        let mut inner = budgets.lock();
        let key = (until, inner.next_hold);
        inner.next_hold += 1;
        let invocation = Invocation {
            call: call.to_owned(),
            settled_usd: self.settled_usd,
            priced: self.priced,
            counted: self.counted,
        };
        if self.indexes.is_empty() {
            // Nothing held (only alerting budgets cover it): nothing to
            // lapse, but the invocation is remembered, for a copy's
            // settlement to count it as unpriced as it is.
            inner.remember(key, invocation);
        } else {
            inner.expiring.insert(
                key,
                ExpiringHold {
                    endpoint: self.endpoint.clone(),
                    indexes: std::mem::take(&mut self.indexes),
                    invocation,
                },
            );
            inner.by_call.insert(call.to_owned(), key);
        }
        self.lapsing = Some(key);
    }

    /// Makes this reservation of nothing (see [`Budgets::unreserved`]) the
    /// settlement of a copy of the async invocation `call` (a serialised
    /// pending invocation read back, a notification delivered again): settled,
    /// it takes over what the budgets keep of the invocation (see
    /// [`expire_at`](Self::expire_at)), its hold or the provisional charge of
    /// its lapsed hold, and its parts settled so far, as the original's
    /// settlement would; the original then holds nothing.
    pub(crate) fn of_call(mut self, call: String) -> Self {
        self.call = Some(call);
        self
    }

    /// Lets go of this async invocation's hold without taking it back, for a
    /// duplicate settlement of it made by the meter that made the first: the
    /// first settlement (of the original or of a copy) takes over what the
    /// budgets keep of the invocation when it finishes (see
    /// [`Budgets::settle`]), which may be after this one is made, or took it
    /// over already. Taken back here, a hold still held would be released
    /// while its work is billed later, and a lapsed hold's charge made in an
    /// earlier period would be left charged beside the whole settlement. What
    /// it holds of its own (nothing once [`expire_at`](Self::expire_at) gave
    /// it to the budgets) is released, as dropping it releases it.
    pub(crate) fn detach(mut self) {
        self.lapsing = None;
        self.call = None;
    }

    /// Takes back what the budgets keep of this async invocation (or, for a
    /// reservation of nothing made [`of_call`](Self::of_call), of its
    /// invocation), settled and counted elsewhere: by another client's meter,
    /// or (a duplicate settlement here) by another process of the fleet. A
    /// hold still held is released; a provisional charge of its lapsed hold is
    /// replaced as a settlement of $0 here would replace it (see
    /// [`ProvisionalCharge::replaced`]): taken back in its own period, kept
    /// after it. A fleet budget's charge taken back is queued for the fleet
    /// (see [`Budgets::take_lapsed_charges`]).
    pub(crate) fn settled_elsewhere(mut self, now: DateTime<Utc>) {
        let Some(budgets) = self.budgets.take() else {
            return;
        };
        let mut inner = budgets.lock();
        inner.forget(now);
        let alerts = std::mem::take(&mut inner.deferred_alerts);
        let reclaimed = match inner.hold_of(&self) {
            Some(key) => inner.reclaim(key),
            None => Reclaimed::default(),
        };
        self.lapsing = None;
        let BudgetsInner {
            tracked,
            lapsed_charges,
            ..
        } = &mut *inner;
        for (i, held) in reclaimed.held.into_iter().chain(self.indexes.drain(..)) {
            tracked[i].state.release(held);
        }
        for charge in reclaimed.charged {
            let t = &mut tracked[charge.budget];
            t.roll(now);
            let current = t.state.period_start.unwrap_or(now);
            let back = charge.replaced(t.budget.period, current, Decimal::ZERO);
            if back.is_zero() {
                continue;
            }
            let spent_before = t.state.spent;
            t.state.spent = (t.state.spent + back).max(Decimal::ZERO);
            t.unlease_taken_back(spent_before);
            if t.fleet {
                lapsed_charges.push(BeyondReceipt {
                    budget: charge.budget,
                    usd: back,
                    period_start: current,
                });
            }
        }
        drop(inner);
        // Raised outside the lock: a callback may look at the budgets.
        raise_all(alerts);
    }
}

/// Raises settled alerts: one WARN each, then the budget's callback if any.
fn raise_all(alerts: Vec<AlertToRaise>) {
    for (alert, callback) in alerts {
        tracing::warn!(target: "sagemeter::budget", scope = %alert.scope,
            threshold_percent = alert.threshold_percent, spent_usd = %alert.spent_usd,
            limit_usd = %alert.limit_usd, "budget threshold crossed");
        if let Some(callback) = callback {
            call_back(callback.as_ref(), &alert);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(budgets) = self.budgets.take() else {
            return;
        };
        let mut inner = budgets.lock();
        // The holds lapsed by now on the meter's clock are charged first,
        // this one's among them: dropped after its lapse time, a pending
        // invocation keeps its charge whether or not a reservation or a
        // status came between (a fleet's charges are queued for it, as
        // there). The alerts the charges cross are queued, not raised: a drop
        // is no call, and its caller may hold a lock the callback takes
        // (clearing a list of pending invocations under it). The budgets'
        // next call or status raises them.
        let alerts = inner.release_lapsed(budgets.now(), budgets.fleet);
        inner.deferred_alerts.extend(alerts);
        // A hold still held is released, its invocation remembered with no
        // charge: a copy of it (the pending invocation handed off) may yet be
        // settled here, and takes over its parts settled so far as the
        // original would (what they left unpriced, the bound of an input of
        // unstated size, was counted when they settled, here, whoever settles
        // the copy). One charged
        // provisionally when it lapsed stays charged (the work ran, or
        // SageMaker dropped it), and remembered: a copy settled here replaces
        // the charge.
        if let Some(key) = self.lapsing.take()
            && inner.expiring.contains_key(&key)
        {
            let reclaimed = inner.reclaim(key);
            self.indexes = reclaimed.held;
            if let Some(invocation) = reclaimed.invocation {
                inner.remember(key, invocation);
            }
        }
        for (i, estimate) in self.indexes.drain(..) {
            inner.tracked[i].state.release(estimate);
        }
    }
}

/// Calls a user's `on_alert` callback. One that panics is caught, with one WARN
/// (not its message, which may carry anything): an alert must not fail the call
/// that crossed the threshold, nor abort a process whose call ends in a `Drop`
/// while unwinding.
fn call_back(callback: &AlertFn, alert: &BudgetAlert) {
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(alert)));
    if called.is_err() {
        tracing::warn!(target: "sagemeter::budget", scope = %alert.scope,
            threshold_percent = alert.threshold_percent,
            "a budget's on_alert callback panicked; the panic was caught and the call goes on");
    }
}

/// A copy of a [`Error::BudgetExceeded`] (the error type is not `Clone`).
fn clone_exceeded(error: &Error) -> Error {
    match error {
        Error::BudgetExceeded {
            scope,
            period,
            fleet_wide,
            estimate,
            limit,
            spent,
            reserved,
        } => Error::BudgetExceeded {
            scope: scope.clone(),
            period: *period,
            fleet_wide: *fleet_wide,
            estimate: *estimate,
            limit: *limit,
            spent: *spent,
            reserved: *reserved,
        },
        other => Error::InvalidRequest(other.to_string()),
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_async::test_util::ManualTimeSource;
    use chrono::TimeDelta;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A meter's clock stopped at the Unix epoch, before every time these
    /// tests give: a reservation dropped finds no hold lapsed by it (the tests
    /// of drops after a lapse keep a clock of their own, set as they go).
    fn stopped() -> SharedTimeSource {
        SharedTimeSource::new(aws_smithy_async::time::StaticTimeSource::from_secs(0))
    }

    /// What the (first) budget has spent and holds at `now`: its status, which
    /// raises the alerts due.
    fn spent_held(budgets: &Budgets, now: DateTime<Utc>) -> (Decimal, Decimal) {
        let status = &budgets.status(now)[0];
        (status.spent_usd, status.reserved_usd)
    }

    /// A fleet's $1 a day, each call estimated at $0.01.
    fn fleet_budgets() -> Arc<Budgets> {
        fleet_budgets_on(stopped())
    }

    /// [`fleet_budgets`] on the meter's clock `time`.
    fn fleet_budgets_on(time: SharedTimeSource) -> Arc<Budgets> {
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.01") })
            .unwrap();
        Arc::new(Budgets::new(vec![budget], true, time))
    }

    /// 1 December 2026, 12:00 UTC: the moment most of these tests call at.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    /// `budget` alone, off the fleet, on the [`stopped`] clock.
    fn one_budget(budget: Budget) -> Arc<Budgets> {
        Arc::new(Budgets::new(vec![budget], false, stopped()))
    }

    /// An enforced budget alone (as [`one_budget`]) of `limit` a day on
    /// `scope`, each call estimated at the most of the last `calls`,
    /// `initial` before the first.
    fn recent_max(scope: BudgetScope, limit: &str, calls: usize, initial: &str) -> Arc<Budgets> {
        let budget = Budget::enforce(scope, BudgetPeriod::Day, dec(limit))
            .unwrap()
            .estimate(Estimate::RecentMax {
                calls,
                initial_usd: dec(initial),
            })
            .unwrap();
        one_budget(budget)
    }

    /// One call to `endpoint` (no tags) at `at`, reserved then settled at
    /// `usd`.
    fn spend(
        budgets: &Arc<Budgets>,
        endpoint: &str,
        usd: Decimal,
        priced: Priced,
        at: DateTime<Utc>,
    ) {
        let reservation = budgets.reserve(endpoint, &BTreeMap::new(), at).unwrap();
        reservation.settle(&BTreeMap::new(), usd, priced, at);
    }

    /// [`spend`], if the call's reservation fits: what it held, `None` when
    /// refused.
    fn held_then_spent(
        budgets: &Arc<Budgets>,
        endpoint: &str,
        usd: &str,
        priced: Priced,
        at: DateTime<Utc>,
    ) -> Option<Decimal> {
        let reservation = budgets.reserve(endpoint, &BTreeMap::new(), at).ok()?;
        let held = reservation.held_usd();
        reservation.settle(&BTreeMap::new(), dec(usd), priced, at);
        Some(held)
    }

    /// A fleet budget's lease of $1 for the day of `t0`, granted at `t0`
    /// until `until`.
    fn lease_the_day(budgets: &Budgets, t0: DateTime<Utc>, until: DateTime<Utc>) {
        budgets.grant(0, BudgetPeriod::Day.start_of(t0), dec("1"), until, true);
    }

    /// An async job to `jobs` (no tags) reserved at `at`, its submission
    /// receipt `submission` settled as a part, the rest held until `lapses`
    /// as invocation `call`; `None`: refused.
    fn job_held_until(
        budgets: &Arc<Budgets>,
        at: DateTime<Utc>,
        submission: Decimal,
        lapses: DateTime<Utc>,
        call: &str,
    ) -> Option<Reservation> {
        let no_tags = BTreeMap::new();
        let mut hold = budgets.reserve("jobs", &no_tags, at).ok()?;
        hold.settle_part(&no_tags, submission, Priced::Fully, at);
        hold.expire_at(lapses, call);
        Some(hold)
    }

    /// One call to `chat` with `tags` at `at`, reserved then settled at `usd`,
    /// fully priced.
    fn spend_tagged(
        budgets: &Arc<Budgets>,
        tags: &BTreeMap<String, String>,
        usd: Decimal,
        at: DateTime<Utc>,
    ) {
        let reservation = budgets.reserve("chat", tags, at).unwrap();
        reservation.settle(tags, usd, Priced::Fully, at);
    }

    /// One $0.01 call at `at`, if its reservation fits.
    fn call(budgets: &Arc<Budgets>, at: DateTime<Utc>) -> bool {
        match budgets.reserve("chat", &BTreeMap::new(), at) {
            Ok(reservation) => {
                reservation.settle(&BTreeMap::new(), dec("0.01"), Priced::Fully, at);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn values_past_the_bound_share_one_budget_and_a_value_keeps_its_own() {
        use crate::totals::MAX_TAG_VALUES;
        let each = Budget::enforce(
            BudgetScope::each_tag_value("tenant"),
            BudgetPeriod::Day,
            dec("1"),
        )
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.6") })
        .unwrap();
        let budgets = Arc::new(Budgets::new(vec![each], false, stopped()));
        let now = Utc::now();
        let tag = |v: &str| BTreeMap::from([("tenant".to_owned(), v.to_owned())]);
        // 0.6 held on each of the bound's values, one call each.
        let mut held: Vec<Reservation> = (0..MAX_TAG_VALUES)
            .map(|i| budgets.reserve("rt", &tag(&format!("t{i}")), now).unwrap())
            .collect();
        // Past the bound, new values share `_other`'s $1: the first fits (0.6),
        // the second does not (0.6 + 0.6 = 1.2).
        held.push(budgets.reserve("rt", &tag("late-1"), now).unwrap());
        match budgets.reserve("rt", &tag("late-2"), now) {
            Err(Refusal::Exceeded(Error::BudgetExceeded { scope, .. })) => {
                assert_eq!(scope, BudgetScope::tag("tenant", "_other"))
            }
            other => panic!("expected the shared budget's refusal, got {other:?}"),
        }
        // A value with a budget of its own keeps it: t0 holds 0.6 of its own $1.
        match budgets.reserve("rt", &tag("t0"), now) {
            Err(Refusal::Exceeded(Error::BudgetExceeded { scope, .. })) => {
                assert_eq!(scope, BudgetScope::tag("tenant", "t0"))
            }
            other => panic!("expected t0's refusal, got {other:?}"),
        }
        // A call without the tag is under none of them.
        assert!(budgets.reserve("rt", &BTreeMap::new(), now).is_ok());
        assert_eq!(budgets.status(now).len(), MAX_TAG_VALUES + 1);
        drop(held);
    }

    #[test]
    fn budgets_count_the_calls_they_could_not_fully_price_and_alerting_ones_count_their_priced_part()
     {
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 12, d, 12, 0, 0).unwrap();
        let alert = Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("1")).unwrap();
        let enforced = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.25") })
            .unwrap();
        let budgets = Arc::new(Budgets::new(vec![alert, enforced], false, stopped()));
        let settle = |usd: &str, priced| spend(&budgets, "chat", dec(usd), priced, day(1));
        // One fully priced call of $0.30; two whose compute is unpriced, with
        // $0.10 of priced lines each.
        settle("0.30", Priced::Fully);
        settle("0.10", Priced::Partly);
        settle("0.10", Priced::Partly);
        let status = budgets.status(day(1));
        // Alerting: the priced parts only, 0.30 + 0.10 + 0.10 = 0.50, a lower
        // bound, and the two calls it leaves out are counted.
        assert_eq!(
            (status[0].spent_usd, status[0].unpriced_calls),
            (dec("0.50"), 2)
        );
        // Enforced: each unpriced call at no less than its 0.25 estimate,
        // 0.30 + 0.25 + 0.25 = 0.80.
        assert_eq!(
            (status[1].spent_usd, status[1].unpriced_calls),
            (dec("0.80"), 2)
        );
        // The count is the period's, as the spend is.
        let next = budgets.status(day(2));
        assert_eq!((next[0].spent_usd, next[0].unpriced_calls), (dec("0"), 0));
    }

    /// A fleet budget leased $0.05 at t0 (2026-12-01 12:00 UTC) until t0 +
    /// 30 s, one $0.01 call spent of it: the budgets, t0 and t0's day.
    fn leased_and_one_call() -> (Arc<Budgets>, DateTime<Utc>, DateTime<Utc>) {
        leased_and_one_call_on(stopped())
    }

    /// [`leased_and_one_call`] on the meter's clock `time`.
    fn leased_and_one_call_on(
        time: SharedTimeSource,
    ) -> (Arc<Budgets>, DateTime<Utc>, DateTime<Utc>) {
        let budgets = fleet_budgets_on(time);
        let t0 = noon();
        let day = BudgetPeriod::Day.start_of(t0);
        assert!(!call(&budgets, t0), "nothing leased yet");
        budgets.grant(0, day, dec("0.05"), t0 + TimeDelta::seconds(30), true);
        assert!(call(&budgets, t0));
        (budgets, t0, day)
    }

    /// [`leased_and_one_call`], its lease then lapsed here at t0 + 31 s (the
    /// table did not answer the renewals), its unspent $0.04 given up: the
    /// budgets, t0, t0's day and t0 + 31 s.
    fn lapsed_after_one_call() -> (Arc<Budgets>, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
        let (budgets, t0, day) = leased_and_one_call();
        let lapsed = t0 + TimeDelta::seconds(31);
        assert!(!call(&budgets, lapsed), "a lapsed lease is not spent");
        (budgets, t0, day, lapsed)
    }

    /// Renews the lease as held whole by the table until `until`, then
    /// checks that `calls` $0.01 calls fit at `at` and the one after is short.
    fn renewed_whole_spends(
        budgets: &Arc<Budgets>,
        day: DateTime<Utc>,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
        calls: usize,
    ) {
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        for i in 0..calls {
            assert!(call(budgets, at), "call {i} of the lease renewed");
        }
        assert!(!call(budgets, at));
    }

    #[test]
    fn a_lease_that_lapsed_here_but_the_table_still_holds_is_spent_again_once_renewed() {
        // A $0.05 lease until t0 + 30 s; one $0.01 call spends of it. The
        // table did not answer the renewals: at t0 + 31 s the lease has
        // lapsed here, and its unspent $0.04 is given up.
        let (budgets, t0, day, lapsed) = lapsed_after_one_call();
        // Then the table answers: it still holds the whole lease (nobody
        // reclaimed it), renewed until t0 + 60 s. The $0.04 is this process's
        // again: four more calls, and the fifth needs a new lease.
        let until = t0 + TimeDelta::seconds(60);
        renewed_whole_spends(&budgets, day, until, lapsed, 4);
        assert_eq!(budgets.status(lapsed)[0].spent_usd, dec("0.05"));
    }

    #[test]
    fn a_lease_that_lapsed_here_and_was_reclaimed_is_not_spent_again() {
        let (budgets, t0, day, lapsed) = lapsed_after_one_call();
        // Renewed, but the table holds less than this process was granted (part
        // was reclaimed): nothing comes back. Then it is found gone.
        let until = t0 + TimeDelta::seconds(60);
        renewed_not_whole(&budgets, day, until);
        assert!(!call(&budgets, lapsed));
        budgets.renew(0, day, Renewal::Gone);
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        assert!(!call(&budgets, lapsed), "what was gone stays gone");
    }

    /// Two $0.01 calls reserved under a $0.05 lease after one $0.01 call
    /// settled: what a lease counts as room once `lapse` took the lease away
    /// (`new_lease`: the lease granted next is a new one, not more of the
    /// one the table still holds).
    fn held_across(
        new_lease: bool,
        lapse: impl Fn(&Arc<Budgets>, DateTime<Utc>, DateTime<Utc>),
    ) -> Arc<Budgets> {
        let (budgets, t0, day) = leased_and_one_call();
        let no_tags = BTreeMap::new();
        let first = budgets.reserve("chat", &no_tags, t0).unwrap();
        let second = budgets.reserve("chat", &no_tags, t0).unwrap();
        let later = t0 + TimeDelta::seconds(31);
        lapse(&budgets, day, later);
        // The fleet leases the process $0.03 more; then the two calls settle
        // at $0.01 each. The table writes their $0.02 late, as that lease's
        // use: $0.01 of it is left to spend.
        budgets.grant(
            0,
            day,
            dec("0.03"),
            later + TimeDelta::seconds(30),
            new_lease,
        );
        first.settle(&no_tags, dec("0.01"), Priced::Fully, later);
        second.settle(&no_tags, dec("0.01"), Priced::Fully, later);
        budgets
    }

    /// A fleet budget of $1 a day, every call (and job) estimated at $0.50,
    /// on a clock set at t0 (2026-12-01 12:00 UTC), its day begun at t0: the
    /// budgets, the clock, t0 and t0's day.
    fn half_dollar_calls_from_noon()
    -> (Arc<Budgets>, ManualTimeSource, DateTime<Utc>, DateTime<Utc>) {
        let t0 = noon();
        let clock = ManualTimeSource::new(t0.into());
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.50") })
            .unwrap();
        let budgets = Arc::new(Budgets::new(
            vec![budget],
            true,
            SharedTimeSource::new(clock.clone()),
        ));
        let day = BudgetPeriod::Day.start_of(t0);
        budgets.status(t0); // the day begun
        (budgets, clock, t0, day)
    }

    /// Spend a fleet table counts for a process apart from any lease is
    /// counted as leased once written, but never a provisional charge of a
    /// lapsed async hold, which its settlement may take back: counted, then
    /// settled lower, it would leave room the table never granted.
    #[test]
    fn a_provisional_charge_written_without_a_lease_is_not_counted_until_it_is_settled() {
        // $1 a day, every call (and job) estimated at $0.50.
        let (budgets, clock, t0, day) = half_dollar_calls_from_noon();
        let no_tags = BTreeMap::new();
        // Leased $0.50; a job submitted at $0 holds it until 12:06; then the
        // lease is found gone: nothing spent, nothing kept.
        budgets.grant(0, day, dec("0.50"), t0 + TimeDelta::seconds(30), true);
        let lapses = t0 + TimeDelta::minutes(6);
        let job = job_held_until(&budgets, t0, Decimal::ZERO, lapses, "job-a").unwrap();
        budgets.renew(0, day, Renewal::Gone);
        // 12:10: the hold lapsed, charged as run ($0.50 spent), handed to the
        // fleet and written without a lease: the table counts $0.50 apart
        // from any lease, all of it provisional. Nothing is counted leased.
        let t1 = t0 + TimeDelta::minutes(10);
        clock.set_time(t1.into());
        assert_eq!(spent_held(&budgets, t1), (dec("0.50"), Decimal::ZERO));
        // The provisional $0.50 handed over: no hand-over of a charge below
        // $0 under way while it is on its way to the item.
        let (charges, handing) = budgets.take_lapsed_charges();
        assert_eq!((charges.len(), handing.is_some()), (1, false));
        assert_eq!(budgets.count_written(0, day, dec("0.50")), Decimal::ZERO);
        // Settled at $0.10 while the fleet has not been handed what it takes
        // back (0.10 − 0.50 − 0.10 = −$0.50 beyond the receipt): nothing is
        // counted meanwhile, though the figures then would count
        // min($0.50 written, $0.10 spent) = $0.10.
        {
            let (beyond, handing) = job.settle_handing(&no_tags, dec("0.10"), Priced::Fully, t1);
            assert!(handing.is_some());
            assert_eq!(
                beyond,
                vec![BeyondReceipt {
                    budget: 0,
                    period_start: day,
                    usd: dec("-0.50")
                }]
            );
            assert_eq!(budgets.count_written(0, day, dec("0.50")), Decimal::ZERO);
        }
        // Written: $0.50 + $0.10 receipt − $0.50 = $0.10 counted for the
        // process, its spend: now counted as leased, all spent.
        assert_eq!(budgets.count_written(0, day, dec("0.10")), dec("0.10"));
        assert_eq!(spent_held(&budgets, t1), (dec("0.10"), Decimal::ZERO));
        // The other processes hold the $0.90 left: the table's $1 is all
        // committed, and this process may not spend. Its next call needs its
        // whole $0.50 leased: 0.10 + 0.50 − 0.10. (Had the provisional $0.50
        // been counted leased, it would need 0.10 + 0.50 − 0.50 = $0.10: the
        // settlement would have left it $0.40 the table never granted.)
        assert_eq!(needed_by_next_call(&budgets, t1), dec("0.50"));
    }

    /// $1 a day, every call (and job) estimated at $0.50; a job submitted at
    /// t0 under a lease of $0.50 that holds until 13:00 settles its
    /// submission at $0 and holds its $0.50 until 12:06. Returns the budgets,
    /// the job, the day's start and 12:10, by when the hold lapsed and was
    /// charged as run ($0.50 spent, all of the lease) and handed to the fleet.
    fn a_job_charged_provisionally_under_a_lease()
    -> (Arc<Budgets>, Reservation, DateTime<Utc>, DateTime<Utc>) {
        let (budgets, clock, t0, day) = half_dollar_calls_from_noon();
        budgets.grant(0, day, dec("0.50"), t0 + TimeDelta::hours(1), true);
        let lapses = t0 + TimeDelta::minutes(6);
        let job = job_held_until(&budgets, t0, Decimal::ZERO, lapses, "job-a").unwrap();
        let t1 = t0 + TimeDelta::minutes(10);
        clock.set_time(t1.into());
        assert_eq!(spent_held(&budgets, t1), (dec("0.50"), Decimal::ZERO));
        assert_eq!(budgets.take_lapsed_charges().0.len(), 1);
        (budgets, job, day, t1)
    }

    /// What the next `chat` call (no tags) at `at` needs leased: it must
    /// be short of a lease.
    fn needed_by_next_call(budgets: &Arc<Budgets>, at: DateTime<Utc>) -> Decimal {
        match budgets.reserve("chat", &BTreeMap::new(), at) {
            Err(Refusal::Short(wants, _)) => wants[0].needed,
            other => panic!("{other:?}"),
        }
    }

    /// A provisional charge kept as leased when the lease was found gone, then
    /// settled lower, leaves no room: its take-back is written without a
    /// lease, and the table gives the room to the other processes.
    #[test]
    fn a_provisional_charge_settled_lower_after_the_lease_is_found_gone_leaves_no_room() {
        let (budgets, job, day, t1) = a_job_charged_provisionally_under_a_lease();
        let no_tags = BTreeMap::new();
        // Found gone (another process reclaimed it, used $0.50): what is spent
        // is kept as leased, min($0.50 leased, $0.50 spent) = $0.50.
        budgets.renew(0, day, Renewal::Gone);
        // Settled at $0.10: $0.10 − $0.50 − $0.10 = −$0.50 beyond the receipt
        // ($0.40 net taken back), written without a lease: the table's
        // committed drops by $0.40, room the others may lease.
        let beyond = job.settle(&no_tags, dec("0.10"), Priced::Fully, t1);
        assert_eq!(
            beyond,
            vec![BeyondReceipt {
                budget: 0,
                period_start: day,
                usd: dec("-0.50")
            }]
        );
        assert_eq!(spent_held(&budgets, t1), (dec("0.10"), Decimal::ZERO));
        // Leased is what is spent, $0.10: the next $0.50 call needs it all
        // leased, 0.10 + 0.50 − 0.10 = $0.50. (Kept at $0.50 leased it would
        // need 0.10 + 0.50 − 0.50 = $0.10: $0.40 spent with no lease, on top
        // of the $0.40 the table gives the others.)
        assert_eq!(needed_by_next_call(&budgets, t1), dec("0.50"));
        // Nothing of it comes back with a lease granted later and renewed
        // whole: leased $0.20 more at 12:10 until 12:11, lapsed at 12:20,
        // renewed whole: $0.10 + $0.20 leased, $0.10 spent, short of a $0.50
        // call by 0.10 + 0.50 − 0.30 = $0.30. (The $0.40 given back as well,
        // $0.70 leased, the call would go through.)
        budgets.grant(0, day, dec("0.20"), t1 + TimeDelta::minutes(1), true);
        let t2 = t1 + TimeDelta::minutes(10);
        assert!(matches!(
            budgets.reserve("chat", &no_tags, t2),
            Err(Refusal::Short(..))
        ));
        let until = t2 + TimeDelta::minutes(1);
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        assert_eq!(needed_by_next_call(&budgets, t2), dec("0.30"));
    }

    /// The same settlement after the lease lapsed here, with the table still
    /// holding it: its take-back is written as the lease's use, and the room
    /// is this process's again once the lease is renewed whole (and not if it
    /// is found gone).
    #[test]
    fn a_provisional_charge_settled_lower_after_the_lease_lapsed_here_is_room_once_renewed() {
        for whole in [true, false] {
            let (budgets, job, day, t1) = a_job_charged_provisionally_under_a_lease();
            let no_tags = BTreeMap::new();
            // 13:00, the lease lapsed here: min($0.50 leased, $0.50 spent) kept.
            let t2 = t1 + TimeDelta::minutes(50);
            assert!(budgets.reserve("chat", &no_tags, t2).is_err());
            job.settle(&no_tags, dec("0.10"), Priced::Fully, t2);
            // Spent $0.10; leased $0.10, the $0.40 taken back given up.
            assert_eq!(needed_by_next_call(&budgets, t2), dec("0.50"));
            if whole {
                // The table holds the lease, granted $0.50, used 0.50 − 0.40 =
                // $0.10: $0.40 of room, the next call short by 0.10 + 0.50 −
                // 0.50 = $0.10.
                let until = t2 + TimeDelta::minutes(1);
                budgets.renew(0, day, Renewal::Held { until, whole: true });
                assert_eq!(needed_by_next_call(&budgets, t2), dec("0.10"));
            } else {
                budgets.renew(0, day, Renewal::Gone);
                assert_eq!(needed_by_next_call(&budgets, t2), dec("0.50"));
            }
        }
    }

    /// Taken back under room `WhenUnavailable::Allow` let the process spend
    /// after its lease lapsed here, with the table still holding that lease:
    /// the take-back is written as the lease's use, so the room is this
    /// process's again once the lease is renewed whole.
    #[test]
    fn a_charge_taken_back_under_allowed_room_over_a_lapsed_lease_is_room_once_renewed() {
        // As `a_job_charged_provisionally_under_a_lease`, keeping the clock.
        let (budgets, clock, noon, day) = half_dollar_calls_from_noon();
        let no_tags = BTreeMap::new();
        budgets.grant(0, day, dec("0.50"), noon + TimeDelta::hours(1), true);
        let lapses = noon + TimeDelta::minutes(6);
        let job = job_held_until(&budgets, noon, Decimal::ZERO, lapses, "job-a").unwrap();
        let t0 = noon + TimeDelta::minutes(61);
        clock.set_time(t0.into());
        assert_eq!(spent_held(&budgets, t0), (dec("0.50"), Decimal::ZERO));
        assert_eq!(budgets.take_lapsed_charges().0.len(), 1);
        // $1 a day. The $0.50 lease (until 13:00) holds the job's $0.50
        // provisional charge as its use (table: granted 0.50, used 0.50).
        // 13:01: it lapsed here (flushes throttled): kept min(0.50 leased,
        // 0.50 spent) = $0.50, nothing given up. A call's lease request is
        // throttled too: Allow lets $0.10 through until 13:02, leased $0.60.
        budgets.allow(0, day, dec("0.10"), t0 + TimeDelta::minutes(1));
        // The job settles at $0: spent $0, the $0.50 taken back; leased
        // max(0.60 − 0.50, 0) = $0.10. The take-back is written as the
        // lease's use (the table still holds it): used 0.50 − 0.50 = $0.
        job.settle(&no_tags, Decimal::ZERO, Priced::Fully, t0);
        assert_eq!(spent_held(&budgets, t0), (Decimal::ZERO, Decimal::ZERO));
        // Throttling ends before any reclaim: the flush renews the lease
        // whole (granted 0.50, used $0): its $0.50 of room is this
        // process's again, leased 0.10 + 0.50 = $0.60, and a $0.50 call
        // fits (0 + 0.50 <= 0.60). (With the take-back dropped, leased
        // $0.10: the call short by $0.40, the table's $0.50 for this
        // process stranded.)
        let until = t0 + TimeDelta::minutes(29);
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        assert!(budgets.reserve("chat", &no_tags, t0).is_ok());
    }

    /// Spend counted as leased and taken back while the process holds only
    /// room `WhenUnavailable::Allow` let it spend (no lease of the table's)
    /// is no room either: the take-back is written without a lease.
    #[test]
    fn a_provisional_charge_settled_lower_while_only_allowed_room_is_held_leaves_no_room() {
        let (budgets, job, day, t1) = a_job_charged_provisionally_under_a_lease();
        let no_tags = BTreeMap::new();
        // Found gone (reclaimed with its $0.50 used): leased = spent = $0.50,
        // the job's provisional charge, written without a lease.
        budgets.renew(0, day, Renewal::Gone);
        // The next $0.50 call's lease request is throttled: let through,
        // $0.50 allowed until 12:11 (leased 0.50 + 0.50 = $1.00); the call
        // is in flight, holding $0.50.
        budgets.allow(0, day, dec("0.50"), t1 + TimeDelta::minutes(1));
        let in_flight = budgets.reserve("chat", &no_tags, t1).unwrap();
        // The job settles at $0 (it failed): $0.50 taken back, written
        // without a lease, the table's committed down by $0.50, counting $0
        // for this process. It may spend $0 + the $0.50 Allow let through,
        // the call in flight: leased 1.00 − 0.50 = $0.50, and the next $0.50
        // call is short of 0 + 0.50 + 0.50 − 0.50 = $0.50. (Leased kept at
        // $1.00, it would go on with no lease, $1.00 spent while another
        // process leases the $1 the table shows: the fleet at $2.00 where
        // Allow's $0.50 bounds it to $1.50.)
        job.settle(&no_tags, Decimal::ZERO, Priced::Fully, t1);
        assert_eq!(spent_held(&budgets, t1), (Decimal::ZERO, dec("0.50")));
        assert_eq!(needed_by_next_call(&budgets, t1), dec("0.50"));
        // The call in flight settles at $0.50 within its allowed room:
        // spent $0.50, leased $0.50, the next call still short of $0.50.
        in_flight.settle(&no_tags, dec("0.50"), Priced::Fully, t1);
        assert_eq!(needed_by_next_call(&budgets, t1), dec("0.50"));
    }

    /// Room `WhenUnavailable::Allow` grants, and spend counted as leased
    /// that a settlement takes back with no lease held, are no lease's: a
    /// lease granted later and renewed whole gives back only what it gave up.
    #[test]
    fn a_lease_renewed_whole_gives_back_only_its_own_room_not_what_earlier_room_gave_up() {
        let (budgets, job, day, t1) = a_job_charged_provisionally_under_a_lease();
        let no_tags = BTreeMap::new();
        // Found gone: min($0.50 leased, $0.50 spent) = $0.50 kept as leased.
        budgets.renew(0, day, Renewal::Gone);
        // The next $0.50 call is short of 0.50 + 0.50 − 0.50 = $0.50; the
        // table counts nothing more (the $0.50 written is provisional) and
        // is throttled: let through, allowed $0.50 until 12:11. It settles
        // at $0.10: spent 0.50 + 0.10 = $0.60, leased $1.00.
        assert_eq!(needed_by_next_call(&budgets, t1), dec("0.50"));
        budgets.allow(0, day, dec("0.50"), t1 + TimeDelta::minutes(1));
        let call = budgets.reserve("chat", &no_tags, t1).unwrap();
        call.settle(&no_tags, dec("0.10"), Priced::Fully, t1);
        // 12:20: the allowed room lapsed (a call finds it so: refused, 0.60 +
        // 0.50 is past the $1): min($1.00, $0.60) kept, $0.40 unspent, no
        // lease's.
        let t2 = t1 + TimeDelta::minutes(10);
        assert!(budgets.reserve("chat", &no_tags, t2).is_err());
        // The job settles at $0.10, $0.40 taken back: spent $0.20, leased
        // $0.20; the $0.40 written without a lease, room the table gives the
        // others.
        job.settle(&no_tags, dec("0.10"), Priced::Fully, t2);
        assert_eq!(spent_held(&budgets, t2), (dec("0.20"), Decimal::ZERO));
        // The table leases $0.20 until 12:21; at 12:30 it lapsed here,
        // unspent; the flush finds the table holds it whole: $0.20 of room,
        // leased 0.20 + 0.20 = $0.40, and the next $0.50 call is short of
        // 0.20 + 0.50 − 0.40 = $0.30. (Given back the $0.40 of the allowed
        // room and the $0.40 taken back as well, $1.20 leased, it would go
        // through on $1.00 of room the table granted $0.20 of.)
        budgets.grant(0, day, dec("0.20"), t2 + TimeDelta::minutes(1), true);
        let t3 = t2 + TimeDelta::minutes(10);
        assert!(budgets.reserve("chat", &no_tags, t3).is_err());
        let until = t3 + TimeDelta::minutes(1);
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        assert_eq!(needed_by_next_call(&budgets, t3), dec("0.30"));
    }

    /// Room `WhenUnavailable::Allow` grants after a lease lapsed here is no
    /// part of that lease: what it leaves unspent does not come back when the
    /// lease is renewed whole (what the lease gave up does).
    #[test]
    fn room_allowed_after_a_lease_lapsed_here_does_not_come_back_with_the_lease() {
        // A $0.05 lease until t0 + 30 s, $0.01 spent; lapsed here at t0 +
        // 31 s, $0.04 given up.
        let (budgets, t0, day, lapsed) = lapsed_after_one_call();
        // The table does not answer: $0.05 allowed until t0 + 61 s, one $0.01
        // call spends of it (spent $0.02, leased 0.01 + 0.05 = $0.06); at
        // t0 + 62 s it lapsed, $0.04 unspent, no lease's: leased $0.02.
        budgets.allow(0, day, dec("0.05"), t0 + TimeDelta::seconds(61));
        assert!(call(&budgets, lapsed));
        let later = t0 + TimeDelta::seconds(62);
        assert!(!call(&budgets, later));
        // The table answers, holding the $0.05 lease whole, its use the two
        // calls written under it, $0.02: $0.03 left there. The $0.04 the
        // lease gave up comes back, not the allowed room's $0.04: leased
        // 0.02 + 0.04 = $0.06, four calls, the fifth short. Spent 0.02 + 0.04
        // = $0.06 where the table granted $0.05: $0.01 past it, the one call
        // Allow let through (of the $0.05 it allowed). (Given back the
        // allowed room's $0.04 as well, $0.10 leased, it would make eight
        // calls, $0.05 past.)
        let until = t0 + TimeDelta::seconds(90);
        renewed_whole_spends(&budgets, day, until, later, 4);
        assert_eq!(spent_held(&budgets, later), (dec("0.06"), Decimal::ZERO));
    }

    /// Room `WhenUnavailable::Allow` grants while the table still holds a
    /// lease that lapsed here leaves what that lease gave up its own: renewed
    /// whole, it is spent again.
    #[test]
    fn room_allowed_while_a_lapsed_lease_is_held_keeps_what_the_lease_gave_up() {
        // A $0.05 lease until t0 + 30 s, $0.01 spent; lapsed here at t0 +
        // 31 s (the table throttled), $0.04 given up, leased $0.01.
        let (budgets, t0, day, lapsed) = lapsed_after_one_call();
        // The lease request for the next call is not answered: $0.01 allowed
        // until t0 + 61 s, and the call spends it: spent $0.02, leased $0.02.
        budgets.allow(0, day, dec("0.01"), t0 + TimeDelta::seconds(61));
        assert!(call(&budgets, lapsed));
        assert!(!call(&budgets, lapsed), "the allowed room is spent");
        // The table answers: it holds the $0.05 lease whole, its use the two
        // calls written under it, $0.02: $0.03 left there for this process.
        // The $0.04 the lease gave up here is its again: leased 0.02 + 0.04 =
        // $0.06, four more calls, the fifth short. Spent 0.02 + 0.04 = $0.06
        // where the table granted $0.05: $0.01 past it, the $0.01 Allow let
        // through. (With the $0.04 thrown away when the room was allowed: no
        // call, and the $0.03 the table holds for this process stranded.)
        let until = t0 + TimeDelta::seconds(90);
        renewed_whole_spends(&budgets, day, until, lapsed, 4);
        assert_eq!(spent_held(&budgets, lapsed), (dec("0.06"), Decimal::ZERO));
    }

    /// A table grant merged into a lease the table still holds, lapsed here
    /// while its request was out, is no new lease: what the lease gave up
    /// stays its own.
    #[test]
    fn more_of_a_held_lease_that_lapsed_here_keeps_what_it_gave_up() {
        // A $0.05 lease until t0 + 30 s, $0.01 spent; lapsed here at t0 +
        // 31 s while a request for more was out, $0.04 given up, leased $0.01.
        let (budgets, t0, day, lapsed) = lapsed_after_one_call();
        // The table grants $0.03 more of the same lease (its grant $0.08,
        // used $0.01): leased 0.01 + 0.03 = $0.04.
        let until = t0 + TimeDelta::seconds(61);
        budgets.grant(0, day, dec("0.03"), until, false);
        // A flush finds it held whole: the $0.04 given up is this process's
        // again, leased $0.08, as the table's $0.08 granted: seven more calls
        // (0.01 + 7 × 0.01 = $0.08), the eighth short. (Zeroed by the grant:
        // three, and $0.04 the table holds for this process stranded.)
        renewed_whole_spends(&budgets, day, until, lapsed, 7);
        assert_eq!(spent_held(&budgets, lapsed), (dec("0.08"), Decimal::ZERO));
    }

    /// A grant answered after the lease it would add to lapsed here unnoticed
    /// (no call looked at the budget since the lease's end) is room on top of
    /// what the lease kept, not of the lapsed lease's unspent part: the lapse
    /// is taken first, and only a renewal whole gives that part back.
    #[test]
    fn a_grant_after_a_lapse_no_call_saw_does_not_keep_the_lapsed_leases_room() {
        // A $0.05 lease until t0 + 30 s, $0.01 spent, on a clock the test sets.
        // At t0 + 29 s four $0.01 calls go out, holding the lease's last
        // $0.04 (0.01 + 0.04 = $0.05); a fifth is short and sends a lease
        // request (it may wait 10 s for the answer).
        let (budgets, clock, t0, day, in_flight) = last_four_calls_out_at_29_s();
        let at = t0 + TimeDelta::seconds(29);
        assert_eq!(needed_by_next_call(&budgets, at), dec("0.01"));
        // The lease ends here at t0 + 30 s; no call looks. Another process
        // reclaims it at t0 + 35.25 s (past its end and the 5 s skew), the
        // table then counting for this process only the $0.01 written as its
        // use, and the request is answered at t0 + 38 s as a new $0.05
        // lease, until t0 + 70 s: the table grants this process 0.01 + 0.05 =
        // $0.06 in all. The process still holds the item's lease, so the
        // grant comes as more of it; the flush after finds the table's grant
        // ($0.06) below the 0.05 + 0.05 = $0.10 the process was granted: not
        // whole, nothing comes back.
        let answered = t0 + TimeDelta::seconds(38);
        clock.set_time(answered.into());
        let until = t0 + TimeDelta::seconds(70);
        budgets.grant(0, day, dec("0.05"), until, false);
        renewed_not_whole(&budgets, day, until);
        // The lapse gives up 0.05 − 0.01 = $0.04 (the calls in flight keep
        // none: their spend is written as the new lease's use), leased
        // 0.01 + 0.05 = $0.06. The four calls settle at $0.01: spent $0.05,
        // one more call, spent $0.06 as the table granted. (The old lease's
        // $0.04 kept, leased $0.10: five more, spent $0.10, the fleet $0.04
        // past its limit.)
        four_settle_then_one_more_call(&budgets, in_flight, answered);
    }

    /// A renewal answered after the lease lapsed here with no call to see it
    /// gives the lapse up first, as a grant does: moving the lease's end on
    /// would keep the lapsed lease's unspent part as room, and a grant after
    /// it would then add to that room though the table may have reclaimed
    /// the lease.
    #[test]
    fn a_renewal_after_a_lapse_no_call_saw_does_not_keep_the_lapsed_leases_room() {
        // A $0.05 lease until t0 + 30 s, $0.01 spent, on a clock the test sets.
        // At t0 + 29 s four $0.01 calls go out, holding the lease's last
        // $0.04 (0.01 + 0.04 = $0.05).
        let (budgets, clock, t0, day, in_flight) = last_four_calls_out_at_29_s();
        // The lease ends here at t0 + 30 s; no call looks. At t0 + 38 s a
        // flush's renewal comes back not whole (the table's grant is a new
        // $0.05 lease, the old one reclaimed with its $0.01 use), until t0 +
        // 68 s; then the new lease's grant of $0.05 is answered.
        let answered = t0 + TimeDelta::seconds(38);
        clock.set_time(answered.into());
        let until = t0 + TimeDelta::seconds(68);
        renewed_not_whole(&budgets, day, until);
        budgets.grant(0, day, dec("0.05"), until, false);
        // The lapse gives up 0.05 − 0.01 = $0.04 before the renewal: leased
        // 0.01 + 0.05 = $0.06, the table's 0.01 used of the old lease plus
        // the new $0.05. The four calls settle at $0.01 (spent $0.05): one
        // more call, spent $0.06. (The renewal moving the old lease's end on,
        // leased 0.05 + 0.05 = $0.10: five more, spent $0.10, the fleet $0.04
        // past its limit.)
        four_settle_then_one_more_call(&budgets, in_flight, answered);
    }

    /// [`leased_and_one_call`] on a manual clock at t0: the budgets, the
    /// clock, t0 and t0's day.
    fn leased_on_a_clock() -> (Arc<Budgets>, ManualTimeSource, DateTime<Utc>, DateTime<Utc>) {
        let t0 = noon();
        let clock = ManualTimeSource::new(t0.into());
        let (budgets, t0, day) = leased_and_one_call_on(SharedTimeSource::new(clock.clone()));
        (budgets, clock, t0, day)
    }

    /// Four $0.01 calls reserved `at`, holding the $0.04 left of a $0.05
    /// lease with $0.01 spent.
    fn last_four_calls_of_the_lease(budgets: &Arc<Budgets>, at: DateTime<Utc>) -> Vec<Reservation> {
        (0..4)
            .map(|_| budgets.reserve("chat", &BTreeMap::new(), at).unwrap())
            .collect()
    }

    /// A renewal that finds the table holding the lease, not whole, until
    /// `until`.
    fn renewed_not_whole(budgets: &Budgets, day: DateTime<Utc>, until: DateTime<Utc>) {
        budgets.renew(
            0,
            day,
            Renewal::Held {
                until,
                whole: false,
            },
        );
    }

    /// [`leased_on_a_clock`] with [`last_four_calls_of_the_lease`] reserved
    /// at t0 + 29 s: the budgets, the clock, t0, t0's day and the four calls.
    fn last_four_calls_out_at_29_s() -> (
        Arc<Budgets>,
        ManualTimeSource,
        DateTime<Utc>,
        DateTime<Utc>,
        Vec<Reservation>,
    ) {
        let (budgets, clock, t0, day) = leased_on_a_clock();
        let in_flight = last_four_calls_of_the_lease(&budgets, t0 + TimeDelta::seconds(29));
        (budgets, clock, t0, day, in_flight)
    }

    /// The four calls of [`last_four_calls_out_at_29_s`] settle at $0.01 at
    /// `at` (spent $0.05) on $0.06 leased: one more call, then none, spent
    /// $0.06 and nothing held.
    fn four_settle_then_one_more_call(
        budgets: &Arc<Budgets>,
        in_flight: Vec<Reservation>,
        at: DateTime<Utc>,
    ) {
        for call in in_flight {
            call.settle(&BTreeMap::new(), dec("0.01"), Priced::Fully, at);
        }
        assert!(call(budgets, at), "the $0.01 left of the grant");
        assert!(!call(budgets, at), "the grant is spent");
        assert_eq!(spent_held(budgets, at), (dec("0.06"), Decimal::ZERO));
    }

    /// [`leased_and_one_call`] on a clock the test set to t0 + 31 s, its lease
    /// lapsed then with no call to see it: the budgets, t0's day and t0 + 31 s.
    fn lapsed_unseen_after_one_call() -> (Arc<Budgets>, DateTime<Utc>, DateTime<Utc>) {
        let (budgets, clock, t0, day) = leased_on_a_clock();
        let lapsed = t0 + TimeDelta::seconds(31);
        clock.set_time(lapsed.into());
        (budgets, day, lapsed)
    }

    /// More of a lease the table still holds, granted after it lapsed here
    /// with no call to see it, keeps what the lease gave up its own as a
    /// lapse a call saw does: spent again once a renewal finds it whole.
    #[test]
    fn more_of_a_held_lease_that_lapsed_unseen_gets_back_what_it_gave_up_once_renewed_whole() {
        // $0.05 leased until t0 + 30 s, $0.01 spent. At t0 + 31 s the table
        // grants $0.03 more of the same lease (its grant $0.08, used $0.01):
        // the lapse gives up 0.05 − 0.01 = $0.04 first, leased 0.01 + 0.03 =
        // $0.04, three calls (spent $0.04), the fourth short.
        let (budgets, day, lapsed) = lapsed_unseen_after_one_call();
        let until = lapsed + TimeDelta::seconds(30);
        budgets.grant(0, day, dec("0.03"), until, false);
        for i in 0..3 {
            assert!(call(&budgets, lapsed), "call {i} of the grant");
        }
        assert!(
            !call(&budgets, lapsed),
            "the $0.04 given up is not room yet"
        );
        // A flush finds the lease held whole: the $0.04 is this process's
        // again, leased $0.08 as the table granted, four more calls, spent
        // $0.08.
        renewed_whole_spends(&budgets, day, until, lapsed, 4);
        assert_eq!(spent_held(&budgets, lapsed), (dec("0.08"), Decimal::ZERO));
    }

    /// Room `WhenUnavailable::Allow` grants after a lease lapsed here with no
    /// call to see it is no more of that lease: the lease's unspent part is
    /// given up first, its own again only if it is renewed whole.
    #[test]
    fn room_allowed_after_a_lapse_no_call_saw_does_not_keep_the_lapsed_leases_room() {
        // $0.05 leased until t0 + 30 s, $0.01 spent. At t0 + 31 s a call's
        // lease request goes unanswered and $0.01 is allowed until t0 +
        // 61 s: the lapse gives up 0.05 − 0.01 = $0.04 first, leased 0.01 +
        // 0.01 = $0.02, one call (spent $0.02), the next short. (The lapse
        // not taken, leased 0.05 + 0.01 = $0.06: five calls, four on a lease
        // the table may have reclaimed.)
        let (budgets, day, lapsed) = lapsed_unseen_after_one_call();
        budgets.allow(0, day, dec("0.01"), lapsed + TimeDelta::seconds(30));
        assert!(call(&budgets, lapsed), "the allowed $0.01");
        assert!(!call(&budgets, lapsed), "the allowed room is spent");
        // The table answers, holding the $0.05 lease whole: the $0.04 it gave
        // up comes back, four calls, spent 0.02 + 0.04 = $0.06 (the $0.01
        // past the table's $0.05 the one call Allow let through).
        let until = lapsed + TimeDelta::seconds(60);
        renewed_whole_spends(&budgets, day, until, lapsed, 4);
        assert_eq!(spent_held(&budgets, lapsed), (dec("0.06"), Decimal::ZERO));
    }

    #[test]
    fn calls_in_flight_when_the_lease_is_found_gone_count_against_the_next_lease() {
        let later = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 31).unwrap();
        // Reclaimed while two calls were in flight: their $0.02 is the next
        // lease's use, $0.03 − $0.02 = $0.01 is left, one $0.01 call.
        let budgets = held_across(true, |b, day, _| b.renew(0, day, Renewal::Gone));
        assert!(call(&budgets, later), "the $0.01 left of the new lease");
        assert!(!call(&budgets, later), "the new lease is spent");
        // Spent $0.01 + $0.02 + $0.01.
        assert_eq!(budgets.status(later)[0].spent_usd, dec("0.04"));
    }

    #[test]
    fn calls_in_flight_when_the_lease_lapsed_here_count_against_the_next_lease() {
        let later = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 31).unwrap();
        // The lease lapsed here (a call finds it so), and the table holds only
        // part of it: the $0.03 leased next is all there is, $0.02 of it the
        // two calls' use.
        let budgets = held_across(false, |b, day, at| {
            assert!(!call(b, at), "a lapsed lease is not spent");
            let until = at + TimeDelta::seconds(30);
            renewed_not_whole(b, day, until);
        });
        assert!(call(&budgets, later), "the $0.01 left of the new lease");
        assert!(!call(&budgets, later), "the new lease is spent");
    }

    #[test]
    fn calls_in_flight_settle_past_a_lease_found_gone_and_nothing_more_is_spent() {
        let (budgets, t0, day) = leased_and_one_call();
        let no_tags = BTreeMap::new();
        let first = budgets.reserve("chat", &no_tags, t0).unwrap();
        let second = budgets.reserve("chat", &no_tags, t0).unwrap();
        budgets.renew(0, day, Renewal::Gone);
        // The two calls cost less than their estimates: $0.005 each.
        first.settle(&no_tags, dec("0.005"), Priced::Fully, t0);
        second.settle(&no_tags, dec("0.005"), Priced::Fully, t0);
        // No lease: the two calls' $0.01 is spend past any lease, and what
        // they held of their estimates ($0.01) is no room to spend.
        assert!(!call(&budgets, t0), "no lease, no room");
        assert_eq!(budgets.status(t0)[0].spent_usd, dec("0.02"));
    }

    #[test]
    fn a_lease_renewed_whole_after_it_lapsed_here_with_calls_in_flight_is_all_spendable() {
        let (budgets, t0, day) = leased_and_one_call();
        let no_tags = BTreeMap::new();
        let first = budgets.reserve("chat", &no_tags, t0).unwrap();
        let second = budgets.reserve("chat", &no_tags, t0).unwrap();
        let lapsed = t0 + TimeDelta::seconds(31);
        assert!(!call(&budgets, lapsed), "a lapsed lease is not spent");
        let until = t0 + TimeDelta::seconds(60);
        budgets.renew(0, day, Renewal::Held { until, whole: true });
        first.settle(&no_tags, dec("0.01"), Priced::Fully, lapsed);
        second.settle(&no_tags, dec("0.01"), Priced::Fully, lapsed);
        // The whole $0.05 again: $0.03 spent, two more $0.01 calls.
        assert!(call(&budgets, lapsed));
        assert!(call(&budgets, lapsed));
        assert!(!call(&budgets, lapsed));
    }

    #[test]
    fn a_clock_stepping_back_across_the_period_start_keeps_the_spend_and_the_alerts() {
        let raised = Arc::new(Mutex::new(Vec::new()));
        let seen = raised.clone();
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Hour, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.10") })
            .unwrap()
            .on_alert(move |a| seen.lock().unwrap().push(a.threshold_percent));
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        // 10 calls of 0.10 at 10:00:30 spend the hour's 1.00 (10 × 0.10), passing
        // 50, 80 and 100 %.
        let spent_at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 30).unwrap();
        for _ in 0..10 {
            spend(&budgets, "chat", dec("0.10"), Priced::Fully, spent_at);
        }
        assert_eq!(*raised.lock().unwrap(), vec![50, 80, 100]);
        // The wall clock steps back to 09:59:59: still the 10:00 hour, still full.
        let back = Utc.with_ymd_and_hms(2026, 12, 1, 9, 59, 59).unwrap();
        assert!(matches!(
            budgets.reserve("chat", &no_tags, back),
            Err(Refusal::Exceeded(Error::BudgetExceeded { .. }))
        ));
        // A call that read the clock before the boundary settles late: it counts
        // in the 10:00 hour too (1.00 + 0.10 = 1.10).
        budgets
            .unreserved("chat")
            .settle(&no_tags, dec("0.10"), Priced::Fully, back);
        // Forward again at 10:00:31: the hour still holds all of it
        // (1.10 + 0.60 = 1.70), and no threshold is raised twice.
        let forward = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 31).unwrap();
        budgets
            .unreserved("chat")
            .settle(&no_tags, dec("0.60"), Priced::Fully, forward);
        let status = &budgets.status(forward)[0];
        assert_eq!(status.spent_usd, dec("1.70"));
        assert_eq!(*raised.lock().unwrap(), vec![50, 80, 100]);
        // The next hour starts afresh.
        let next = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap();
        assert!(budgets.reserve("chat", &no_tags, next).is_ok());
    }

    #[test]
    fn recent_max_looks_back_over_all_the_calls_it_is_asked_to() {
        let budgets = recent_max(BudgetScope::Client, "1000", 100, "0.01");
        let no_tags = BTreeMap::new();
        let at = noon();
        // One 5 USD call, then 70 of 0.01: 71 receipts, all within the last 100.
        let call = |usd: &str| spend(&budgets, "chat", dec(usd), Priced::Fully, at);
        call("5");
        for _ in 0..70 {
            call("0.01");
        }
        let next = budgets.reserve("chat", &no_tags, at).unwrap();
        assert_eq!(next.held_usd(), dec("5"));
    }

    /// Every tenant its own $0.05 a day on the serverless endpoint `chat`
    /// (2048 MB, $0.00004 per second of compute: $0.0000200 per second per
    /// 1024 MB), the default estimate (the most of the last 20 receipts,
    /// $0.01 before the first); and the tags of `tenant`.
    fn each_tenant_five_cents_a_day() -> (Arc<Budgets>, impl Fn(&str) -> BTreeMap<String, String>) {
        let each = Budget::enforce(
            BudgetScope::each_tag_value("tenant"),
            BudgetPeriod::Day,
            dec("0.05"),
        )
        .unwrap();
        let tenant = |t: &str| BTreeMap::from([("tenant".to_owned(), t.to_owned())]);
        (one_budget(each), tenant)
    }

    #[test]
    fn a_tenants_calls_are_estimated_from_its_own_receipts_not_another_tenants() {
        let (budgets, tenant) = each_tenant_five_cents_a_day();
        let at = noon();
        // acme's calls run 1 s: 2048 MB × 1 s at $0.00004 a second =
        // $0.00004 each. 1,200 of them: 1,200 × 0.00004 = $0.048 of acme's
        // $0.05 (each reserved at $0.01 first, then at $0.00004: all fit).
        for n in 0..1_200 {
            let call = budgets
                .reserve("chat", &tenant("acme"), at)
                .unwrap_or_else(|e| panic!("acme's call {n}: {e:?}"));
            call.settle(&tenant("acme"), dec("0.00004"), Priced::Fully, at);
        }
        // One globex call runs 60 s: 60 × 0.00004 = $0.0024, on globex's
        // budget.
        let globex = budgets.reserve("chat", &tenant("globex"), at).unwrap();
        globex.settle(&tenant("globex"), dec("0.0024"), Priced::Fully, at);
        // acme's next call is estimated from acme's receipts, $0.00004:
        // 0.048 + 0 + 0.00004 = 0.04804 ≤ 0.05, admitted (from the endpoint's
        // receipts it would be $0.0024: 0.048 + 0.0024 = 0.0504 > 0.05,
        // refused, with room left for 50 of acme's own calls).
        let next = budgets
            .reserve("chat", &tenant("acme"), at)
            .expect("acme has room for (0.05 - 0.048) / 0.00004 = 50 more calls");
        assert_eq!(next.held_usd(), dec("0.00004"));
    }

    #[test]
    fn a_new_tenant_is_held_at_the_initial_estimate_not_at_another_tenants_cheap_calls() {
        let (budgets, tenant) = each_tenant_five_cents_a_day();
        let at = noon();
        // 20 acme calls of 1 s, $0.00004 each: the endpoint's last 20 receipts.
        for _ in 0..20 {
            spend_tagged(&budgets, &tenant("acme"), dec("0.00004"), at);
        }
        // globex, no receipt of its own, reserves 200 calls of 60 s at once
        // ($0.0024 each when they settle). Each is held at the initial
        // $0.01: 5 × 0.01 = 0.05 ≤ 0.05, a sixth 0.06 > 0.05. (At acme's
        // $0.00004 all 200 would fit, 200 × 0.00004 = $0.008, and cost
        // 200 × 0.0024 = $0.48, 9.6 times globex's limit.)
        let held: Vec<Reservation> = (0..200)
            .filter_map(|_| budgets.reserve("chat", &tenant("globex"), at).ok())
            .collect();
        assert_eq!(held.len(), 5);
    }

    #[test]
    fn a_recent_max_beyond_the_bound_is_refused_when_configured() {
        let budget = || Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1")).unwrap();
        let at_most = budget().estimate(Estimate::RecentMax {
            calls: MAX_RECENT_CALLS,
            initial_usd: dec("0.01"),
        });
        assert!(at_most.is_ok());
        let beyond = budget().estimate(Estimate::RecentMax {
            calls: MAX_RECENT_CALLS + 1,
            initial_usd: dec("0.01"),
        });
        assert!(matches!(beyond, Err(Error::Config(_))), "{beyond:?}");
    }

    #[test]
    fn a_zero_estimate_is_refused_so_unpriced_calls_never_count_at_zero() {
        // An unpriced call counts at no less than its estimate; an estimate of
        // $0 would let an endpoint without a price call an enforced budget's
        // limit away at $0 a call. Refused where it is configured.
        let budget = || Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1")).unwrap();
        for estimate in [
            Estimate::Fixed { usd: Decimal::ZERO },
            Estimate::RecentMax {
                calls: 20,
                initial_usd: Decimal::ZERO,
            },
        ] {
            let err = budget().estimate(estimate).unwrap_err();
            match &err {
                Error::Config(config) => {
                    assert_eq!(config.option, "Budget::estimate");
                    assert!(config.to_string().contains("$0"), "{config}");
                }
                other => panic!("expected a configuration error, got {other:?}"),
            }
        }
        // The smallest positive figure is an estimate.
        assert!(
            budget()
                .estimate(Estimate::Fixed {
                    usd: dec("0.000000000001")
                })
                .is_ok()
        );
    }

    #[test]
    fn one_receipt_above_the_limit_does_not_refuse_every_call_after_it() {
        // $2 an hour, each call estimated at the most of the last 20 receipts.
        let budget =
            Budget::enforce(BudgetScope::endpoint("chat"), BudgetPeriod::Hour, dec("2")).unwrap();
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 10:05: one call (estimated at the initial $0.01) that cost $3.
        spend(&budgets, "chat", dec("3"), Priced::Fully, at(10, 5));
        // 10:10: the hour is spent: refused, rightly.
        assert!(budgets.reserve("chat", &no_tags, at(10, 10)).is_err());
        // 11:00: a new hour, nothing spent. The estimate is the $3 receipt capped
        // at the $2 limit: 0 + 0 + 2 ≤ 2, so the call goes (not refused for ever).
        let next = budgets.reserve("chat", &no_tags, at(11, 0)).unwrap();
        assert_eq!(next.held_usd(), dec("2"));
        // It costs $0.01. The hour's calls are estimated from the hour's receipts
        // ($0.01), not from the $3 outlier of the hour before: the next 19 go too
        // (19 × 0.01 + 0.01 = $0.20 ≤ $2), not one an hour for 19 hours.
        next.settle(&no_tags, dec("0.01"), Priced::Fully, at(11, 0));
        for m in 1..20 {
            let call = budgets
                .reserve("chat", &no_tags, at(11, m))
                .unwrap_or_else(|e| panic!("11:{m:02}: {e:?}"));
            assert_eq!(call.held_usd(), dec("0.01"));
            call.settle(&no_tags, dec("0.01"), Priced::Fully, at(11, m));
        }
    }

    #[test]
    fn the_default_estimate_under_a_smaller_limit_is_the_limit_not_a_lock_out() {
        // $0.005 a day, the default estimate ($0.01 before the first receipt).
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("0.005")).unwrap();
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        let at = noon();
        // Held at the limit: 0 + 0 + 0.005 ≤ 0.005, the first call goes.
        let first = budgets.reserve("chat", &no_tags, at).unwrap();
        assert_eq!(first.held_usd(), dec("0.005"));
        // While it is in flight, nothing is left for a second.
        assert!(budgets.reserve("chat", &no_tags, at).is_err());
    }

    #[test]
    fn receipts_that_cost_nothing_are_no_estimate_for_an_unpriced_call() {
        let budgets = recent_max(BudgetScope::Client, "1", 20, "0.05");
        let no_tags = BTreeMap::new();
        let at = noon();
        // Two calls priced at $0 (credits), then one whose price is unknown.
        for _ in 0..2 {
            spend(&budgets, "chat", Decimal::ZERO, Priced::Fully, at);
        }
        let unpriced = budgets.reserve("chat", &no_tags, at).unwrap();
        assert_eq!(unpriced.held_usd(), dec("0.05"), "the initial estimate");
        unpriced.settle(&no_tags, Decimal::ZERO, Priced::Partly, at);
        // It counts at its $0.05 estimate, not at $0.
        assert_eq!(budgets.status(at)[0].spent_usd, dec("0.05"));
    }

    #[test]
    fn an_unpriced_call_settled_unreserved_in_a_new_period_counts_at_that_periods_estimate() {
        // $10 a day, each call estimated at the most of the last 3 receipts.
        let budgets = recent_max(BudgetScope::Client, "10", 3, "0.01");
        let no_tags = BTreeMap::new();
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 12, d, 12, 0, 0).unwrap();
        // 1 December: a call of $1; 2 December: one of $0.10.
        spend(&budgets, "jobs", dec("1"), Priced::Fully, day(1));
        spend(&budgets, "jobs", dec("0.10"), Priced::Fully, day(2));
        // 3 December, before any other call that day: an async invocation
        // submitted by another client settles here, unreserved, its compute
        // unpriced ($0 priced). The day has no receipts yet, so a call now would
        // be estimated at the most of the last 3 receipts, max(1, 0.10) = $1 (not
        // at 2 December's $0.10 alone): it counts at no less than that,
        // max(0, 1) = $1.
        budgets
            .unreserved("jobs")
            .settle(&no_tags, Decimal::ZERO, Priced::Partly, day(3));
        let status = &budgets.status(day(3))[0];
        assert_eq!((status.spent_usd, status.unpriced_calls), (dec("1"), 1));
    }

    #[test]
    fn a_fixed_estimate_above_the_limit_is_refused_when_configured() {
        let budget = || Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("25")).unwrap();
        let err = budget()
            .estimate(Estimate::Fixed { usd: dec("30") })
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(c) if c.to_string().contains("every call would be refused")),
            "{err:?}"
        );
        assert!(
            budget()
                .estimate(Estimate::Fixed { usd: dec("25") })
                .is_ok()
        );
        // An alerting budget refuses nothing: any estimate will do.
        let alert = Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("25")).unwrap();
        assert!(alert.estimate(Estimate::Fixed { usd: dec("30") }).is_ok());
    }

    #[test]
    fn an_async_invocation_holds_the_rest_of_its_estimate_until_it_settles() {
        let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.05") })
            .unwrap();
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        let at = noon();
        let mut hold = budgets.reserve("jobs", &no_tags, at).unwrap();
        // The submission costs 0.001: spent 0.001, held 0.05 − 0.001 = 0.049.
        hold.settle_part(&no_tags, dec("0.001"), Priced::Fully, at);
        assert_eq!(spent_held(&budgets, at), (dec("0.001"), dec("0.049")));
        // The settlement costs 0.10: spent 0.101, nothing held.
        hold.settle(&no_tags, dec("0.10"), Priced::Fully, at);
        assert_eq!(spent_held(&budgets, at), (dec("0.101"), Decimal::ZERO));
        // Dropped unsettled, a hold is released (spend stays).
        let mut dropped = budgets.reserve("jobs", &no_tags, at).unwrap();
        dropped.settle_part(&no_tags, dec("0.001"), Priced::Fully, at);
        drop(dropped);
        assert_eq!(spent_held(&budgets, at), (dec("0.102"), Decimal::ZERO));
    }

    #[test]
    fn an_alert_is_raised_only_once_its_share_of_the_smallest_limits_is_spent() {
        let raised = Arc::new(Mutex::new(Vec::new()));
        let seen = raised.clone();
        // The smallest limits a budget takes: $10⁻²⁸ and $3 × 10⁻²⁸.
        let budget = |limit: &str| {
            let seen = seen.clone();
            Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec(limit))
                .unwrap()
                .on_alert(move |a| {
                    seen.lock()
                        .unwrap()
                        .push((a.limit_usd, a.threshold_percent, a.spent_usd))
                })
        };
        let tiny = dec("0.0000000000000000000000000001");
        let three = dec("0.0000000000000000000000000003");
        let budgets = Arc::new(Budgets::new(
            vec![
                budget("0.0000000000000000000000000001"),
                budget("0.0000000000000000000000000003"),
            ],
            false,
            stopped(),
        ));
        let at = noon();
        let settle = |usd: Decimal| spend(&budgets, "chat", usd, Priced::Fully, at);
        // A call of $0 is no share of either: 0 < 50 % × 10⁻²⁸ = 0.5 × 10⁻²⁸.
        settle(Decimal::ZERO);
        assert_eq!(*raised.lock().unwrap(), vec![]);
        // $2 × 10⁻²⁸ is all of 10⁻²⁸ (≥ 50, 80, 100 %); of 3 × 10⁻²⁸ it passes
        // 50 % (1.5 × 10⁻²⁸) but not 80 % (2.4 × 10⁻²⁸).
        settle(dec("0.0000000000000000000000000002"));
        let two = dec("0.0000000000000000000000000002");
        assert_eq!(
            *raised.lock().unwrap(),
            vec![
                (tiny, 50, two),
                (tiny, 80, two),
                (tiny, 100, two),
                (three, 50, two)
            ]
        );
        // $10⁻²⁸ more, 3 × 10⁻²⁸ spent, passes 80 and 100 % of 3 × 10⁻²⁸.
        raised.lock().unwrap().clear();
        settle(tiny);
        assert_eq!(
            *raised.lock().unwrap(),
            vec![(three, 80, three), (three, 100, three)]
        );
    }

    #[test]
    fn nothing_stays_held_once_every_call_is_done_though_the_sum_held_rounded() {
        // $100 a day; each call estimated at its last receipt's cost, $2/3 to
        // 28 places (the most a decimal holds) before the first.
        let budgets = recent_max(
            BudgetScope::Client,
            "100",
            1,
            "0.6666666666666666666666666667",
        );
        let no_tags = BTreeMap::new();
        let at = noon();
        // One call holds 0.6666666666666666666666666667; a receipt of $10
        // settles; a second call holds $10. Together 10.6666666666666666666666666667,
        // 30 digits, which the sum held keeps to 29: 10.666666666666666666666666667.
        let first = budgets.reserve("chat", &no_tags, at).unwrap();
        budgets
            .unreserved("chat")
            .settle(&no_tags, dec("10"), Priced::Fully, at);
        let second = budgets.reserve("chat", &no_tags, at).unwrap();
        assert_eq!(second.held_usd(), dec("10"));
        // Both fail unbilled: 10.666666666666666666666666667 − 10
        // − 0.6666666666666666666666666667 would leave 3 × 10⁻²⁸ held by no
        // call. Nothing is in flight, so nothing is held.
        drop(second);
        drop(first);
        assert_eq!(budgets.status(at)[0].reserved_usd, Decimal::ZERO);
    }

    #[test]
    fn a_panicking_alert_callback_does_not_unwind_into_the_call() {
        let budget = Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("0.01"))
            .unwrap()
            .on_alert(|_| panic!("the application's alert handler failed"));
        let budgets = one_budget(budget);
        let at = noon();
        // 0.006 of 0.01 passes 50 %: the callback panics, the settlement goes on.
        spend(&budgets, "chat", dec("0.006"), Priced::Fully, at);
        assert_eq!(budgets.status(at)[0].spent_usd, dec("0.006"));
    }

    #[test]
    fn one_expensive_async_job_from_s3_neither_counts_nor_is_remembered_at_its_estimate_after_it() {
        // $10 a day on `jobs`, the default estimate: the most of the last 20
        // calls, $0.01 before the first.
        let budget =
            Budget::enforce(BudgetScope::endpoint("jobs"), BudgetPeriod::Day, dec("10")).unwrap();
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        // Each job is submitted from S3 without its size: its submission's one
        // line, data in, is unpriced ($0 priced). Its input is at most 2³⁰ bytes
        // (1 GB, SageMaker's async input limit) × $0.016 a GB (us-east-1's data
        // processed in) = $0.016 at most.
        let input = Priced::AllBut {
            unpriced_usd: dec("0.016"),
        };
        // A job at `when`: reserved, its submission settled, then its
        // settlement (compute and data out, all priced) at `usd`. What it held
        // when reserved; `None` when refused.
        let job = |usd: &str, when| -> Option<Decimal> {
            let mut hold = budgets.reserve("jobs", &no_tags, when).ok()?;
            let held = hold.held_usd();
            hold.settle_part(&no_tags, Decimal::ZERO, input, when);
            hold.settle(&no_tags, dec(usd), Priced::Fully, when);
            Some(held)
        };
        let spent = |when| budgets.status(when)[0].spent_usd;
        // 1 December, 09:00: a job of $0.05 priced, held at the initial $0.01,
        // counts its priced cost and its input's bound: 0.05 + 0.016 = $0.066,
        // and is remembered at that, the most it can have cost.
        assert_eq!(job("0.05", at(1, 9, 0)), Some(dec("0.01")));
        assert_eq!(spent(at(1, 9, 0)), dec("0.066"));
        // 23:00: one long job, $12 priced, held at the day's most, $0.066; it
        // counts 12 + 0.016 = 12.016 (the day: 0.066 + 12.016 = 12.082).
        assert_eq!(job("12", at(1, 23, 0)), Some(dec("0.066")));
        assert_eq!(spent(at(1, 23, 0)), dec("12.082"));
        // 2 December, 00:10: nothing settled yet today, so the estimate is the
        // most of the last 20, $12.016, at most the $10 limit: 0 + 0 + 10 ≤ 10,
        // it goes. Its priced cost is $0.05: it counts 0.05 + 0.016 = $0.066,
        // not its $10 estimate, and is remembered at $0.066, not at $10.
        assert_eq!(job("0.05", at(2, 0, 10)), Some(dec("10")));
        assert_eq!(spent(at(2, 0, 10)), dec("0.066"));
        // The day's estimate is then its own $0.066. The n-th job of the day
        // fits while 0.066 × (n − 1) + 0.066 ≤ 10, n ≤ 10 ÷ 0.066 = 151.5…: jobs
        // 2 to 151 go, each held at $0.066, spending 151 × 0.066 = $9.966 in
        // all; the 152nd would make 9.966 + 0.066 = 10.032 > 10.
        for n in 2..=151 {
            assert_eq!(job("0.05", at(2, 1, 0)), Some(dec("0.066")), "job {n}");
        }
        assert_eq!(spent(at(2, 1, 0)), dec("9.966"));
        assert_eq!(job("0.05", at(2, 1, 0)), None, "job 152");
        // 3 December: the last 20 calls are 2 December's $0.066 jobs: the first
        // job of the day is held at $0.066, not at the limit.
        assert_eq!(job("0.05", at(3, 0, 10)), Some(dec("0.066")));
        assert_eq!(spent(at(3, 0, 10)), dec("0.066"));
    }

    #[test]
    fn jobs_whose_only_unpriced_line_has_a_bound_are_estimated_from_it_not_from_the_initial_figure()
    {
        // $10 a day on `jobs`, each call estimated at the most of the last 20,
        // $2 before the first.
        let budgets = recent_max(BudgetScope::endpoint("jobs"), "10", 20, "2");
        let no_tags = BTreeMap::new();
        let at = noon();
        // Every job is submitted from S3 without its size: its data in is
        // unpriced, at most 2³⁰ bytes = 1 GB × $0.016 = $0.016; its
        // settlement, compute and data out, is $0.05, all priced.
        let job = || {
            let mut hold = budgets.reserve("jobs", &no_tags, at).unwrap();
            let held = hold.held_usd();
            let input = Priced::AllBut {
                unpriced_usd: dec("0.016"),
            };
            hold.settle_part(&no_tags, Decimal::ZERO, input, at);
            hold.settle(&no_tags, dec("0.05"), Priced::Fully, at);
            held
        };
        // The first is held at the initial $2 and counts 0.05 + 0.016 = $0.066.
        assert_eq!(job(), dec("2"));
        // It cost at most $0.066, a whole cost: the next nine are held at that
        // (remembered at its $0.05 priced, a lower bound, each would be held at
        // no less than the initial $2 for good).
        for n in 2..=10 {
            assert_eq!(job(), dec("0.066"), "job {n}");
        }
        // 10 × 0.066 = $0.66 counted.
        assert_eq!(budgets.status(at)[0].spent_usd, dec("0.66"));
    }

    #[test]
    fn a_call_whose_tokens_are_unpriced_counts_at_its_estimate_but_is_remembered_at_its_priced_cost()
     {
        // $10 a day on `chat`, the default estimate. Its answers (TGI's) report
        // no input tokens: the input-token line is unpriced, of no known bound
        // (how many is unknown); the output tokens are priced, at $0.01 per 1,000.
        let budget =
            Budget::enforce(BudgetScope::endpoint("chat"), BudgetPeriod::Day, dec("10")).unwrap();
        let budgets = one_budget(budget);
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        let call = |usd, when| held_then_spent(&budgets, "chat", usd, Priced::Partly, when);
        let spent = |when| budgets.status(when)[0].spent_usd;
        // 1 December, 23:00: a long answer, 600,000 output tokens = $6 priced,
        // held at the initial $0.01: it counts max(6, 0.01) = $6.
        assert_eq!(call("6", at(1, 23, 0)), Some(dec("0.01")));
        // 2 December, 00:10: held at the most of the last 20, $6 (under the $10
        // limit). Its 2,000 output tokens are $0.02: it counts no less than its
        // estimate, max(0.02, 6) = $6, and is remembered at its $0.02, a lower
        // bound.
        assert_eq!(call("0.02", at(2, 0, 10)), Some(dec("6")));
        assert_eq!(spent(at(2, 0, 10)), dec("6"));
        // The next is held at the day's $0.02 (no less than the initial $0.01):
        // 6 + 0.02 ≤ 10, it goes (held at $6, it would make 12 > 10), and counts
        // max(0.02, 0.02) = $0.02.
        assert_eq!(call("0.02", at(2, 0, 20)), Some(dec("0.02")));
        assert_eq!(spent(at(2, 0, 20)), dec("6.02"));
    }

    #[test]
    fn calls_whose_compute_has_no_price_keep_counting_at_the_initial_estimate_not_at_their_data() {
        // $1 a day on `exotic`, the default estimate. Its instance type has no
        // price: compute is unpriced; each call's 1 KiB in is priced, 1,024 ÷ 2³⁰
        // GB × $0.016 = $0.0000000152587890625, $0.000000015259 to the receipt's
        // 12 places; nothing out.
        let budget =
            Budget::enforce(BudgetScope::endpoint("exotic"), BudgetPeriod::Day, dec("1")).unwrap();
        let budgets = one_budget(budget);
        let no_tags = BTreeMap::new();
        let at = noon();
        // Each is held at $0.01 and counts max(0.000000015259, 0.01) = $0.01: its
        // priced data is a lower bound of its cost, and lower bounds alone never
        // bring the estimate under the initial one (or the second call would be
        // held at, and count, $0.000000015259: 65 million calls to the dollar).
        for n in 1..=100 {
            let r = budgets
                .reserve("exotic", &no_tags, at)
                .unwrap_or_else(|e| panic!("call {n}: {e:?}"));
            assert_eq!(r.held_usd(), dec("0.01"), "call {n}");
            r.settle(&no_tags, dec("0.000000015259"), Priced::Partly, at);
        }
        // 100 × 0.01 = $1 spent: a 101st would make 1.01 > 1.
        assert_eq!(budgets.status(at)[0].spent_usd, dec("1"));
        assert!(budgets.reserve("exotic", &no_tags, at).is_err());
    }

    #[test]
    fn calls_whose_compute_lost_its_price_count_at_the_endpoints_last_whole_cost_not_the_initial() {
        // $100 a day on `exotic`, the default estimate: the most of the last 20
        // calls, $0.01 before the first.
        let budget = Budget::enforce(
            BudgetScope::endpoint("exotic"),
            BudgetPeriod::Day,
            dec("100"),
        )
        .unwrap();
        let budgets = one_budget(budget);
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
        let call = |usd, priced, when| held_then_spent(&budgets, "exotic", usd, priced, when);
        // 1 December: five calls of $3.00 each, fully priced; the first held at
        // the initial $0.01, the others at the day's $3.
        assert_eq!(call("3.00", Priced::Fully, at(1, 12)), Some(dec("0.01")));
        for _ in 2..=5 {
            assert_eq!(call("3.00", Priced::Fully, at(1, 12)), Some(dec("3.00")));
        }
        // 2 December: the instance type is gone from the price data, so compute
        // has no price. Each call's 128 KiB in is priced: 2^17 / 2^30 GB = 2^-13
        // GB x $0.016 = $0.000001953125, a lower bound of its cost. The first
        // is held at the last 20 calls' most, $3, and counts max(0.000001953125,
        // 3) = $3. The ones after it have only the day's lower bounds to go by:
        // they are held, and count, at no less than the endpoint's latest whole
        // cost, $3 (at the initial $0.01, 1 + (100 - 3) / 0.01 = 9,701 calls
        // would go, some $29,100 of instance time at $3 a call). The n-th fits
        // while 3 x (n - 1) + 3 <= 100, n <= 33.3: 33 go (past the 20 calls
        // looked back over: 1 December's $3 calls are out of the window by
        // then), spending 33 x 3 = $99; the 34th would make 99 + 3 = 102 > 100.
        for n in 1..=33 {
            assert_eq!(
                call("0.000001953125", Priced::Partly, at(2, 12)),
                Some(dec("3.00")),
                "call {n}"
            );
        }
        assert_eq!(budgets.status(at(2, 12))[0].spent_usd, dec("99.00"));
        assert_eq!(call("0.000001953125", Priced::Partly, at(2, 12)), None);
    }

    #[test]
    fn a_new_tenants_calls_of_no_known_price_count_at_the_endpoints_last_whole_cost() {
        // $100 a day for each tenant on `exotic`, the default estimate: the
        // most of the last 20 of the tenant's own calls, $0.01 before the first.
        let each = Budget::enforce(
            BudgetScope::each_tag_value("tenant"),
            BudgetPeriod::Day,
            dec("100"),
        )
        .unwrap();
        let budgets = one_budget(each);
        let tenant = |t: &str| BTreeMap::from([("tenant".to_owned(), t.to_owned())]);
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 12, d, 12, 0, 0).unwrap();
        let call = |who: &str, usd: &str, priced, when| {
            let reservation = budgets.reserve("exotic", &tenant(who), when).ok()?;
            let held = reservation.held_usd();
            reservation.settle(&tenant(who), dec(usd), priced, when);
            Some(held)
        };
        // 1 December: acme's calls cost $3.00 each, fully priced.
        for _ in 0..5 {
            assert!(call("acme", "3.00", Priced::Fully, at(1)).is_some());
        }
        // 2 December: compute has lost its price; each call's 128 KiB in is
        // priced, 2^-13 GB x $0.016 = $0.000001953125, a lower bound. globex,
        // new, has no receipt: its first call is held at the initial $0.01
        // (no call of its own to go by) and counts max(0.000001953125, 0.01)
        // = $0.01. From then on its receipts are lower bounds only, and the
        // endpoint's calls are known to cost $3: each is held, and counts, at
        // max(0.01, 3) = $3. The n-th after the first fits while
        // 0.01 + 3n <= 100, n <= 33.33: 33 go, spending 0.01 + 99 = $99.01; the
        // next would make 102.01 > 100. (At the initial $0.01 each, some
        // 10,000 calls would go, $30,000 of instance time at $3 a call.)
        assert_eq!(
            call("globex", "0.000001953125", Priced::Partly, at(2)),
            Some(dec("0.01"))
        );
        for n in 1..=33 {
            assert_eq!(
                call("globex", "0.000001953125", Priced::Partly, at(2)),
                Some(dec("3.00")),
                "call {n}"
            );
        }
        assert_eq!(
            call("globex", "0.000001953125", Priced::Partly, at(2)),
            None
        );
    }

    #[test]
    fn a_receipt_of_zero_is_no_whole_cost_beside_lower_bounds() {
        // $1 a day on `exotic`, the default estimate ($0.01 before the first
        // call). Its variant `credits` runs on an instance priced free by a $0
        // override: its calls' receipts are fully priced at $0. Its variant
        // `new` runs on an instance type with no price: compute unpriced, each
        // call's 1 KiB in priced, 1,024 / 2^30 GB x $0.016 =
        // $0.0000000152587890625, $0.000000015259 to the receipt's 12 places.
        let budget =
            Budget::enforce(BudgetScope::endpoint("exotic"), BudgetPeriod::Day, dec("1")).unwrap();
        let budgets = one_budget(budget);
        let at = noon();
        let call = |usd, priced| held_then_spent(&budgets, "exotic", usd, priced, at).unwrap();
        // A call to `credits`: held at $0.01, counts its $0.
        assert_eq!(call("0", Priced::Fully), dec("0.01"));
        // Two calls to `new`. The $0 receipt is no estimate: each is held at the
        // initial $0.01 and counts max(0.000000015259, 0.01) = $0.01. (Were the
        // $0 receipt a whole cost, the second would be held at, and count, the
        // first's $0.000000015259: 65 million calls to the dollar.)
        assert_eq!(call("0.000000015259", Priced::Partly), dec("0.01"));
        assert_eq!(call("0.000000015259", Priced::Partly), dec("0.01"));
        // 0 + 0.01 + 0.01 = $0.02 spent.
        assert_eq!(budgets.status(at)[0].spent_usd, dec("0.02"));
    }

    #[test]
    fn a_fixed_estimate_of_one_budget_is_no_cost_in_the_estimates_of_another() {
        // The client: $100 a day, each call estimated at a fixed $5. `chat`: $10 a
        // day, the default estimate ($0.01 before the first call).
        let client = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("100"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("5") })
            .unwrap();
        let chat =
            Budget::enforce(BudgetScope::endpoint("chat"), BudgetPeriod::Day, dec("10")).unwrap();
        let budgets = Arc::new(Budgets::new(vec![client, chat], false, stopped()));
        let no_tags = BTreeMap::new();
        let at = noon();
        // A call with nothing priced ($0; its compute has no price) holds $5 on
        // the client and $0.01 on `chat`, and counts no less there.
        let call = budgets.reserve("chat", &no_tags, at).unwrap();
        assert_eq!(call.held_usd(), dec("5.01"));
        call.settle(&no_tags, Decimal::ZERO, Priced::Partly, at);
        let status = budgets.status(at);
        assert_eq!(
            (status[0].spent_usd, status[1].spent_usd),
            (dec("5"), dec("0.01"))
        );
        // It is remembered at its $0 priced, a lower bound: `chat`'s next call is
        // held at the initial $0.01 again, not at the client's $5.
        let next = budgets.reserve("chat", &no_tags, at).unwrap();
        let status = budgets.status(at);
        assert_eq!(
            (status[0].reserved_usd, status[1].reserved_usd),
            (dec("5"), dec("0.01"))
        );
        drop(next);
    }

    #[test]
    fn a_fleet_budget_is_charged_an_unpriced_inputs_bound_beyond_the_receipts() {
        let budgets = fleet_budgets();
        let no_tags = BTreeMap::new();
        let t0 = noon();
        assert!(
            budgets.reserve("jobs", &no_tags, t0).is_err(),
            "nothing leased yet"
        );
        lease_the_day(&budgets, t0, t0 + TimeDelta::seconds(30));
        // An async job held at the fixed $0.01: its submission from S3 without
        // its size is $0.001 of fee priced, its data in unpriced, at most 2³⁰
        // bytes = 1 GB × $0.016 = $0.016; its settlement $0.05, all priced.
        let mut hold = budgets.reserve("jobs", &no_tags, t0).unwrap();
        let input = Priced::AllBut {
            unpriced_usd: dec("0.016"),
        };
        hold.settle_part(&no_tags, dec("0.001"), input, t0);
        // The bound counts with the submission, where it is submitted (a copy
        // may be settled by another client): 0.001 + 0.016 = $0.017, the
        // $0.016 beyond its receipt queued for the fleet's table.
        let bound = BeyondReceipt {
            budget: 0,
            period_start: BudgetPeriod::Day.start_of(t0),
            usd: dec("0.016"),
        };
        assert_eq!(budgets.take_lapsed_charges().0, vec![bound]);
        assert_eq!(budgets.status(t0)[0].spent_usd, dec("0.017"));
        let beyond = hold.settle(&no_tags, dec("0.05"), Priced::Fully, t0);
        // It counts 0.001 + 0.016 + 0.05 = $0.067 in all, the bound once:
        // nothing more beyond the settlement's receipt. (At no less than its
        // hold it would count max(0.05, 0) at settlement, nothing beyond the
        // receipt: the $0.01 held is used up by the submission's
        // 0.001 + 0.016 = $0.017 ≥ $0.01, so nothing is still held.)
        assert_eq!(beyond, Vec::new());
        assert_eq!(budgets.status(t0)[0].spent_usd, dec("0.067"));
    }

    /// The alerts raised, as (threshold, spent).
    type Raised = Arc<Mutex<Vec<(u32, Decimal)>>>;

    /// $10 a day on `jobs`, each call estimated at a fixed $0.50; its alerts
    /// pushed to the list returned; the meter's clock, at 1 December 2026
    /// 00:00 UTC until set.
    fn jobs_at_fifty_cents() -> (Arc<Budgets>, Raised, ManualTimeSource) {
        let raised = Arc::new(Mutex::new(Vec::new()));
        let seen = raised.clone();
        let (budgets, clock) = jobs_at_fifty_cents_alerting(move |a| {
            seen.lock()
                .unwrap()
                .push((a.threshold_percent, a.spent_usd))
        });
        (budgets, raised, clock)
    }

    /// [`jobs_at_fifty_cents`], its alerts given to `on_alert`.
    fn jobs_at_fifty_cents_alerting(
        on_alert: impl Fn(&BudgetAlert) + Send + Sync + 'static,
    ) -> (Arc<Budgets>, ManualTimeSource) {
        let budget = Budget::enforce(BudgetScope::endpoint("jobs"), BudgetPeriod::Day, dec("10"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("0.50") })
            .unwrap()
            .on_alert(on_alert);
        let clock =
            ManualTimeSource::new(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap().into());
        let time = SharedTimeSource::new(clock.clone());
        (Arc::new(Budgets::new(vec![budget], false, time)), clock)
    }

    /// An async job submitted to `jobs` at `at`, as the client submits it: its
    /// estimate reserved, its submission receipt ($0 here: figures that add up
    /// exactly) settled as a part, the rest held until SageMaker must have run
    /// or dropped it: RequestTTLSeconds 300 + InvocationTimeoutSeconds 60 =
    /// 360 s = 6 min on. `None`: refused.
    fn submit_job(budgets: &Arc<Budgets>, at: DateTime<Utc>) -> Option<Reservation> {
        static JOBS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lapses = at + TimeDelta::seconds(300 + 60);
        job_held_until(budgets, at, Decimal::ZERO, lapses, &format!("job-{n}"))
    }

    /// An async job submitted to `jobs` at `at` as invocation `call`, its
    /// submission receipt $0.0001 (so it holds 0.50 − 0.0001 = $0.4999), its
    /// hold lapsing at SageMaker's defaults, 6 h in the queue + 15 min to run
    /// = 6 h 15 min on.
    fn submit_job_as(budgets: &Arc<Budgets>, at: DateTime<Utc>, call: &str) -> Reservation {
        let lapses = at + TimeDelta::minutes(6 * 60 + 15);
        job_held_until(budgets, at, dec("0.0001"), lapses, call).unwrap()
    }

    #[test]
    fn a_lapsed_hold_is_charged_so_a_late_settler_does_not_let_five_times_the_limit_through() {
        let (budgets, raised, _) = jobs_at_fifty_cents();
        let no_tags = BTreeMap::new();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: 20 jobs hold 20 × 0.50 = $10, the whole limit; a 21st would
        // make 10 + 0.50 > 10.
        let jobs: Vec<Reservation> = (1..=20)
            .map(|n| submit_job(&budgets, at(0, 0)).unwrap_or_else(|| panic!("job {n}")))
            .collect();
        assert!(submit_job(&budgets, at(0, 0)).is_none(), "job 21");
        assert_eq!(spent_held(&budgets, at(0, 0)), (Decimal::ZERO, dec("10")));
        // 00:06: the 20 holds lapse, the settler not yet run (every 30 min).
        // Each is charged its $0.50 as run: 20 × 0.50 = $10 spent, nothing held,
        // and a 21st is refused still: 10 + 0 + 0.50 > 10. (Released instead,
        // they would let 20 more through at 00:06, 00:12, 00:18 and 00:24:
        // 100 jobs run by 00:30, $50 against the $10 limit.)
        for m in [6, 12, 18, 24] {
            assert!(submit_job(&budgets, at(0, m)).is_none(), "00:{m:02}");
        }
        assert_eq!(spent_held(&budgets, at(0, 24)), (dec("10"), Decimal::ZERO));
        // The charges raised the alerts a settlement would: 10 × 0.50 = $5 is
        // 50 % of $10, 16 × 0.50 = $8 is 80 %, 20 × 0.50 = $10 is 100 %.
        assert_eq!(
            std::mem::take(&mut *raised.lock().unwrap()),
            vec![(50, dec("5")), (80, dec("8")), (100, dec("10"))]
        );
        // 00:30: the settler settles the 20 at $0.50 each, the same day: each
        // replaces its provisional charge, 10 − 0.50 + 0.50 twenty times: $10,
        // exactly, and no alert again.
        for job in jobs {
            job.settle(&no_tags, dec("0.50"), Priced::Fully, at(0, 30));
        }
        assert_eq!(spent_held(&budgets, at(0, 30)), (dec("10"), Decimal::ZERO));
        assert!(raised.lock().unwrap().is_empty());
        assert!(
            submit_job(&budgets, at(0, 30)).is_none(),
            "the day is spent"
        );
        assert!(
            budgets.lock().provisional.is_empty(),
            "nothing left to replace"
        );
    }

    #[test]
    fn a_settlement_the_day_after_its_hold_lapsed_charges_what_it_passes_the_charge_by() {
        let (budgets, _, _) = jobs_at_fifty_cents();
        let no_tags = BTreeMap::new();
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        let spent = |when| budgets.status(when)[0].spent_usd;
        // 1 December 23:52: three jobs; their holds lapse at 23:58, and the 1st
        // is charged 3 × 0.50 = $1.50 for them, provisionally.
        let [a, b, c] = [(); 3].map(|()| submit_job(&budgets, at(1, 23, 52)).unwrap());
        assert_eq!(spent(at(1, 23, 57)), Decimal::ZERO);
        assert_eq!(spent(at(1, 23, 58)), dec("1.50"));
        // 2 December 00:10: `a` settles at $0.80. Its $0.50 was charged to the
        // 1st, which has ended: the 2nd is charged what 0.80 passes 0.50 by,
        // 0.80 − 0.50 = $0.30 (`a` counts at max(0.50, 0.80) = $0.80, once).
        a.settle(&no_tags, dec("0.80"), Priced::Fully, at(2, 0, 10));
        assert_eq!(spent(at(2, 0, 10)), dec("0.30"));
        // `b` settles at $0.20, less than its $0.50 on the 1st: the 2nd is
        // charged max(0, 0.20 − 0.50) = $0 for it.
        b.settle(&no_tags, dec("0.20"), Priced::Fully, at(2, 0, 20));
        assert_eq!(spent(at(2, 0, 20)), dec("0.30"));
        // `c` is neither settled nor dropped (its notification lost). Its charge
        // is remembered until the 2nd, the day after the 1st, ends; then it is
        // forgotten, and a settlement of $0.40 on the 3rd charges the 3rd its
        // whole $0.40 (the 1st's $0.50 stands: counted twice, never less).
        assert_eq!(budgets.lock().provisional.len(), 1);
        assert_eq!(spent(at(2, 23, 59)), dec("0.30"));
        assert_eq!(budgets.lock().provisional.len(), 1);
        assert_eq!(spent(at(3, 0, 0)), Decimal::ZERO);
        assert!(budgets.lock().provisional.is_empty(), "forgotten");
        c.settle(&no_tags, dec("0.40"), Priced::Fully, at(3, 0, 5));
        assert_eq!(spent(at(3, 0, 5)), dec("0.40"));
    }

    #[test]
    fn a_pending_invocation_dropped_after_its_hold_lapsed_keeps_the_charge() {
        let (budgets, _, clock) = jobs_at_fifty_cents();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 12:00: two jobs hold 2 × 0.50 = $1.
        let early = submit_job(&budgets, at(12, 0)).unwrap();
        let late = submit_job(&budgets, at(12, 0)).unwrap();
        // 12:05: one is dropped before its hold lapses (handed off to be
        // settled elsewhere): released, nothing charged; its invocation is
        // remembered, charged nothing, for a copy's settlement, until its
        // hold would have lapsed.
        clock.set_time(at(12, 5).into());
        drop(early);
        assert_eq!(
            spent_held(&budgets, at(12, 5)),
            (Decimal::ZERO, dec("0.50"))
        );
        // 12:06: the other's hold lapses: charged its $0.50 as run.
        assert_eq!(
            spent_held(&budgets, at(12, 6)),
            (dec("0.50"), Decimal::ZERO)
        );
        // Dropped now, unsettled, it keeps the charge (the work ran, or
        // SageMaker dropped it: counted as run), remembered until the day
        // after ends: a copy of it may yet be settled here.
        clock.set_time(at(12, 7).into());
        drop(late);
        assert_eq!(
            spent_held(&budgets, at(12, 7)),
            (dec("0.50"), Decimal::ZERO)
        );
        // `late` remembered with its charge; `early`, remembered charged
        // nothing, was forgotten as its hold would have lapsed (12:06).
        assert_eq!(budgets.lock().provisional.len(), 1);
        assert_eq!(budgets.lock().by_call.len(), 1);
        // Forgotten once 2 December ends (the day after the one its hold
        // lapsed in): nothing is kept of them.
        let after = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap();
        assert_eq!(spent_held(&budgets, after), (Decimal::ZERO, Decimal::ZERO));
        assert!(budgets.lock().provisional.is_empty());
        assert!(budgets.lock().by_call.is_empty());
    }

    #[test]
    fn jobs_dropped_after_their_lapse_keep_their_charge_though_nothing_looked_at_the_budgets() {
        let (budgets, raised, clock) = jobs_at_fifty_cents();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: 20 jobs hold 20 × 0.50 = $10, the whole limit; their holds
        // lapse at 00:06 (300 s in the queue + 60 s to run).
        let jobs: Vec<Reservation> = (1..=20)
            .map(|n| submit_job(&budgets, at(0, 0)).unwrap_or_else(|| panic!("job {n}")))
            .collect();
        // 00:10: the 20 pending invocations are dropped unsettled, no call
        // nor status having come since 00:00. The first drop charges every
        // hold lapsed by 00:10 on the meter's clock, its own among them: 20 ×
        // 0.50 = $10 spent, nothing held; the others find theirs charged and
        // keep it. (Released instead, each would give back its $0.50: $0
        // spent, and 20 more jobs let through.)
        clock.set_time(at(0, 10).into());
        drop(jobs);
        // The charges cross the alerts a settlement would, raised at the
        // budgets' next status, not in the drop: 10 × 0.50 = $5 is 50 % of
        // $10, 16 × 0.50 = $8 is 80 %, 20 × 0.50 = $10 is 100 %.
        assert!(raised.lock().unwrap().is_empty(), "not in the drop");
        let status = spent_held(&budgets, at(0, 10));
        assert_eq!(
            std::mem::take(&mut *raised.lock().unwrap()),
            vec![(50, dec("5")), (80, dec("8")), (100, dec("10"))]
        );
        assert_eq!(status, (dec("10"), Decimal::ZERO));
        // A 21st is refused: 10 + 0 + 0.50 > 10.
        assert!(submit_job(&budgets, at(0, 10)).is_none(), "job 21");
        assert_eq!(budgets.lock().provisional.len(), 20, "kept for copies");
    }

    #[test]
    fn jobs_dropped_under_a_lock_their_alert_callback_takes_do_not_deadlock() {
        // $10 a day on `jobs`, each call estimated at a fixed $0.50, whose
        // alert callback looks at the pending jobs, kept in a list under the
        // caller's own lock.
        type Pending = Arc<Mutex<Vec<Reservation>>>;
        let jobs: Pending = Arc::new(Mutex::new(Vec::new()));
        let raised = Arc::new(Mutex::new(Vec::new()));
        let (held, seen) = (jobs.clone(), raised.clone());
        let (budgets, clock) = jobs_at_fifty_cents_alerting(move |a| {
            let pending = held.lock().unwrap().len();
            seen.lock()
                .unwrap()
                .push((a.threshold_percent, a.spent_usd, pending));
        });
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: 20 jobs hold 20 × 0.50 = $10, the whole limit; their holds
        // lapse at 00:06 (300 s in the queue + 60 s to run).
        for n in 1..=20 {
            let job = submit_job(&budgets, at(0, 0)).unwrap_or_else(|| panic!("job {n}"));
            jobs.lock().unwrap().push(job);
        }
        // 00:10: another thread clears the list under its lock, nothing having
        // looked at the budgets since 00:00. The first drop charges the 20
        // lapsed holds, 20 × 0.50 = $10, crossing 50, 80 and 100 %; raised in
        // the drop, the callback would wait for the lock its caller holds.
        clock.set_time(at(0, 10).into());
        let (done, ended) = std::sync::mpsc::channel();
        let clearing = jobs.clone();
        std::thread::spawn(move || {
            clearing.lock().unwrap().clear();
            done.send(()).unwrap();
        });
        ended
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the jobs are dropped: no alert raised under the caller's lock");
        assert!(raised.lock().unwrap().is_empty(), "not in the drop");
        // The budgets' next status raises them, outside every lock, the list
        // empty by then: 10 × 0.50 = $5 is 50 % of $10, 16 × 0.50 = $8 is
        // 80 %, 20 × 0.50 = $10 is 100 %; $10 spent, nothing held.
        assert_eq!(spent_held(&budgets, at(0, 10)), (dec("10"), Decimal::ZERO));
        assert_eq!(
            std::mem::take(&mut *raised.lock().unwrap()),
            vec![(50, dec("5"), 0), (80, dec("8"), 0), (100, dec("10"), 0)]
        );
        // Once: a status after raises nothing again.
        budgets.status(at(0, 11));
        assert!(raised.lock().unwrap().is_empty());
    }

    #[test]
    fn a_fleet_budgets_hold_lapsed_before_its_drop_is_queued_for_the_fleet() {
        // A fleet's $1 a day, each call estimated at $0.01, on a clock at
        // 12:00.
        let t0 = noon();
        let clock = ManualTimeSource::new(t0.into());
        let budgets = fleet_budgets_on(SharedTimeSource::new(clock.clone()));
        budgets.status(t0); // the day begun: its lease granted
        lease_the_day(&budgets, t0, t0 + TimeDelta::hours(1));
        // An async job whose submission's receipt is $0.001 holds 0.01 −
        // 0.001 = $0.009 until 12:06.
        let lapses = t0 + TimeDelta::minutes(6);
        let hold = job_held_until(&budgets, t0, dec("0.001"), lapses, "job-a").unwrap();
        // 12:10: dropped unsettled, nothing having looked at the budgets
        // since 12:00: its $0.009 is charged as run, 0.001 + 0.009 = $0.01,
        // and queued for the fleet beyond the receipts, as a status would
        // have queued it (released instead: $0.001, and nothing queued).
        clock.set_time((t0 + TimeDelta::minutes(10)).into());
        drop(hold);
        assert_eq!(
            budgets.take_lapsed_charges().0,
            vec![BeyondReceipt {
                budget: 0,
                period_start: BudgetPeriod::Day.start_of(t0),
                usd: dec("0.009")
            }]
        );
        assert_eq!(
            spent_held(&budgets, t0 + TimeDelta::minutes(10)),
            (dec("0.01"), Decimal::ZERO)
        );
    }

    #[test]
    fn a_holds_figure_is_nothing_once_its_lapse_time_has_passed() {
        let (budgets, _, clock) = jobs_at_fifty_cents();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: a job holds its $0.50 (its submission $0) until 00:06.
        let job = submit_job(&budgets, at(0, 0)).unwrap();
        clock.set_time(at(0, 5).into());
        assert_eq!(job.held_usd(), dec("0.50"));
        // 00:06 on the meter's clock: lapsed, charged as run whenever the
        // budgets are next looked at, and held no more, though they were not.
        clock.set_time(at(0, 6).into());
        assert_eq!(job.held_usd(), Decimal::ZERO);
        assert_eq!(budgets.lock().expiring.len(), 1, "not charged yet");
    }

    #[test]
    fn a_copy_settled_here_settles_the_invocation_its_original_holds_nothing_after() {
        // $10 a day on `jobs`, each job estimated at a fixed $0.50.
        let (budgets, _, clock) = jobs_at_fifty_cents();
        let no_tags = BTreeMap::new();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: a job, its submission $0.0001: spent 0.0001, held $0.4999
        // until 06:15. Its pending invocation is serialised, and the copy
        // handed to a worker of the same process (same client, same meter).
        let original = submit_job_as(&budgets, at(0, 0), "job-a");
        assert_eq!(
            spent_held(&budgets, at(0, 0)),
            (dec("0.0001"), dec("0.4999"))
        );
        // 05:00: the worker settles the copy: $0.30. It takes over the
        // original's hold, released as the original's settlement would
        // release it: 0.0001 + 0.30 = $0.3001 spent, nothing held.
        budgets
            .unreserved("jobs")
            .of_call("job-a".to_owned())
            .settle(&no_tags, dec("0.30"), Priced::Fully, at(5, 0));
        assert_eq!(
            spent_held(&budgets, at(5, 0)),
            (dec("0.3001"), Decimal::ZERO)
        );
        // 06:15: nothing left to lapse; the original, dropped, holds nothing:
        // $0.3001 for a job of 0.0001 + 0.30, counted once. (Before, the
        // hold lapsed and was charged, 0.3001 + 0.4999 = $0.80, and kept.)
        assert_eq!(
            spent_held(&budgets, at(6, 15)),
            (dec("0.3001"), Decimal::ZERO)
        );
        clock.set_time(at(6, 16).into());
        drop(original);
        assert_eq!(
            spent_held(&budgets, at(6, 16)),
            (dec("0.3001"), Decimal::ZERO)
        );

        // 07:00: another job; its hold lapses at 13:15 and is charged as run:
        // 0.3001 + 0.0001 + 0.4999 = $0.8001 spent. Its original is dropped
        // at 13:30 and keeps the charge.
        let original = submit_job_as(&budgets, at(7, 0), "job-b");
        assert_eq!(
            spent_held(&budgets, at(13, 15)),
            (dec("0.8001"), Decimal::ZERO)
        );
        clock.set_time(at(13, 30).into());
        drop(original);
        assert_eq!(
            spent_held(&budgets, at(13, 30)),
            (dec("0.8001"), Decimal::ZERO)
        );
        // 14:00, the same day: a copy settles at $0.30; it replaces the
        // charge: 0.8001 − 0.4999 + 0.30 = $0.6002, the two jobs at 0.0001 +
        // 0.30 = $0.3001 each. (Before, the charge was forgotten with the
        // original and the copy counted on top of it: $1.1001.)
        budgets
            .unreserved("jobs")
            .of_call("job-b".to_owned())
            .settle(&no_tags, dec("0.30"), Priced::Fully, at(14, 0));
        assert_eq!(
            spent_held(&budgets, at(14, 0)),
            (dec("0.6002"), Decimal::ZERO)
        );
        assert!(budgets.lock().provisional.is_empty());
        assert!(budgets.lock().by_call.is_empty());
    }

    #[test]
    fn a_copy_not_fully_priced_after_its_original_was_dropped_counts_as_the_original_would() {
        // $10 a day on `jobs`, each job estimated at a fixed $0.50.
        let (budgets, _, clock) = jobs_at_fifty_cents();
        let no_tags = BTreeMap::new();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        // 00:00: a job whose submission, 1 GB in × $0.016/GB, is $0.016: spent
        // $0.016, held 0.50 − 0.016 = $0.484 until 06:15.
        let lapses = at(6, 15);
        let original = job_held_until(&budgets, at(0, 0), dec("0.016"), lapses, "job-a").unwrap();
        assert_eq!(spent_held(&budgets, at(0, 0)), (dec("0.016"), dec("0.484")));
        // 01:00: the pending invocation handed off, the original dropped
        // before its hold lapsed: the hold is released.
        clock.set_time(at(1, 0).into());
        drop(original);
        assert_eq!(
            spent_held(&budgets, at(1, 0)),
            (dec("0.016"), Decimal::ZERO)
        );
        // 05:00: a copy settles at $0.10 of compute, its data out unpriced.
        // Through the original, it would count at no less than what was held,
        // 0.016 + max(0.10, 0.484) = $0.50, the job's estimate; so it does
        // through the copy: not 0.016 + max(0.10, 0.50) = $0.516.
        budgets
            .unreserved("jobs")
            .of_call("job-a".to_owned())
            .settle(&no_tags, dec("0.10"), Priced::Partly, at(5, 0));
        assert_eq!(spent_held(&budgets, at(5, 0)), (dec("0.50"), Decimal::ZERO));
    }

    #[test]
    fn a_lapsed_holds_charge_is_taken_back_when_its_invocation_is_settled_elsewhere() {
        // A fleet's $1 a day, each call estimated at $0.01.
        let budgets = fleet_budgets();
        let t0 = noon();
        budgets.status(t0); // the day begun: its lease granted
        lease_the_day(&budgets, t0, t0 + TimeDelta::hours(1));
        // Two async jobs; each submission's receipt is $0.001, so each holds
        // 0.01 − 0.001 = $0.009 until it lapses, 6 min on.
        let job = |call: &str| {
            job_held_until(&budgets, t0, dec("0.001"), t0 + TimeDelta::minutes(6), call).unwrap()
        };
        let (a, b) = (job("job-a"), job("job-b"));
        // 12:03: `a` is settled by another process of the fleet (here its
        // settlement is a duplicate): its hold, still held, is released.
        a.settled_elsewhere(t0 + TimeDelta::minutes(3));
        assert_eq!(
            spent_held(&budgets, t0 + TimeDelta::minutes(3)),
            (dec("0.002"), dec("0.009"))
        );
        // 12:06: `b`'s hold lapses: charged $0.009 as run, 0.002 + 0.009 =
        // $0.011, and handed to the fleet beyond the receipts.
        let lapsed = t0 + TimeDelta::minutes(6);
        assert_eq!(budgets.status(lapsed)[0].spent_usd, dec("0.011"));
        let charge = |usd: &str| BeyondReceipt {
            budget: 0,
            period_start: BudgetPeriod::Day.start_of(t0),
            usd: dec(usd),
        };
        assert_eq!(budgets.take_lapsed_charges().0, vec![charge("0.009")]);
        // 12:10, the same day: another process settles `b` first; here it is
        // a duplicate. Its charge is taken back, here (0.011 − 0.009 =
        // $0.002, the two submissions) and in the fleet's table, where the
        // other process's receipt counts it: −$0.009 beyond the receipts.
        // (Kept, the table would count the job twice.)
        b.settled_elsewhere(t0 + TimeDelta::minutes(10));
        assert_eq!(
            budgets.status(t0 + TimeDelta::minutes(10))[0].spent_usd,
            dec("0.002")
        );
        let (charges, handing) = budgets.take_lapsed_charges();
        assert_eq!(charges, vec![charge("-0.009")]);
        // Below $0: a hand-over under way until the fleet has it.
        assert!(handing.is_some());
        assert!(budgets.lock().provisional.is_empty());
    }

    #[test]
    fn a_fleet_budgets_provisional_charge_goes_to_the_fleet_and_its_settlement_takes_it_back() {
        let budgets = fleet_budgets();
        let no_tags = BTreeMap::new();
        let t0 = noon();
        assert!(
            budgets.reserve("jobs", &no_tags, t0).is_err(),
            "nothing leased yet"
        );
        lease_the_day(&budgets, t0, t0 + TimeDelta::hours(1));
        // Two async jobs held at the fixed $0.01; each submission's receipt is
        // $0.001, so each holds 0.01 − 0.001 = $0.009 until it lapses, 6 min on.
        let job = |call: &str| {
            job_held_until(&budgets, t0, dec("0.001"), t0 + TimeDelta::minutes(6), call).unwrap()
        };
        let (a, b) = (job("job-a"), job("job-b"));
        assert!(budgets.take_lapsed_charges().0.is_empty());
        // At the lapse each is charged its $0.009 here, and handed to the fleet
        // as a charge beyond the receipts: 0.002 + 2 × 0.009 = $0.02 spent.
        let lapsed = t0 + TimeDelta::minutes(6);
        assert_eq!(budgets.status(lapsed)[0].spent_usd, dec("0.02"));
        let charge = BeyondReceipt {
            budget: 0,
            period_start: BudgetPeriod::Day.start_of(t0),
            usd: dec("0.009"),
        };
        assert_eq!(budgets.take_lapsed_charges().0, vec![charge, charge]);
        assert!(
            budgets.take_lapsed_charges().0.is_empty(),
            "handed over once"
        );
        // `a` settles at $0.05 the same day: its receipt's $0.05 reaches the
        // fleet's item as spend; the charge taken back is $0.009 beyond it
        // below $0, so that the item counts 0.009 + 0.05 − 0.009 = $0.05, as
        // the process does: 0.02 − 0.009 + 0.05 = $0.061.
        let beyond = a.settle(&no_tags, dec("0.05"), Priced::Fully, lapsed);
        assert_eq!(
            beyond,
            vec![BeyondReceipt {
                budget: 0,
                period_start: BudgetPeriod::Day.start_of(t0),
                usd: dec("-0.009")
            }]
        );
        assert_eq!(budgets.status(lapsed)[0].spent_usd, dec("0.061"));
        // `b` settles at $0.005, its compute not priced (no known bound): it
        // counts no less than its $0.009 charged, max(0.005, 0.009) = $0.009,
        // which replaces the $0.009: nothing changes but its receipt's $0.005,
        // $0.005 less than the receipt beyond it.
        let beyond = b.settle(&no_tags, dec("0.005"), Priced::Partly, lapsed);
        assert_eq!(
            beyond,
            vec![BeyondReceipt {
                budget: 0,
                period_start: BudgetPeriod::Day.start_of(t0),
                usd: dec("-0.005")
            }]
        );
        assert_eq!(budgets.status(lapsed)[0].spent_usd, dec("0.061"));
    }
}
