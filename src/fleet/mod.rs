//! The fleet: running totals and budgets shared by every process, on DynamoDB.
//!
//! A service runs as many replicas. Without a fleet each process keeps its own
//! totals and budgets: ten replicas under a $25/day budget can spend $250. With
//! [`ClientBuilder::fleet`](crate::ClientBuilder::fleet), every process that names
//! the same DynamoDB table shares
//!
//! * **spend** per scope and period (the whole fleet and each endpoint per UTC
//!   day, with each variant's share; each budget's scope in its period), kept as
//!   integer pico-USD (10⁻¹² USD, the receipts' precision) with atomic `ADD`s;
//! * **enforced budgets**, with no overshoot: a process spends only budget it has
//!   leased from the table (a conditional write keeps the fleet's leases within
//!   the limit), gives back what it did not use at shutdown, and a crashed
//!   process's lease is reclaimed by the others once it lapses;
//! * **alerts**, raised once per budget, threshold and period for the whole
//!   fleet (the process whose conditional write marks the threshold raises it;
//!   each budget of a scope marks its own);
//! * **instance time**, allocated once across the fleet: processor sharing counts
//!   every process's calls in flight (each publishes its average per flush
//!   interval), and amortized allocation charges each process its share of the
//!   fleet's calls; a receipt's accrual is the fleet's for the UTC day (the
//!   variant's instances since the fleet's first call, against every process's
//!   allocation).
//!
//! The reference, with how fresh each figure is: `docs/fleet.md`.
//!
//! ```no_run
//! # async fn run() -> sagemeter::Result<()> {
//! use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope};
//! use sagemeter::fleet::FleetConfig;
//!
//! let sdk_config = aws_config::load_from_env().await;
//! let client = sagemeter::Client::builder(&sdk_config)
//!     .fleet(FleetConfig::dynamodb("sagemeter-fleet"))
//!     .budget(Budget::enforce(BudgetScope::endpoint("chat-prod"), BudgetPeriod::Day, "25".parse().unwrap())?)
//!     .build()?;
//! // ... calls ...
//! client.meter().shutdown().await?; // flushes the last increments, returns leases
//! # Ok(()) }
//! ```
//!
//! ## No round trip on the call path
//!
//! A call adds its cost to in-process sums; a background task writes them every
//! [`flush_every`](FleetConfig::flush_every) (250 ms by default) and at
//! [`Meter::shutdown`](crate::Meter::shutdown): one `UpdateItem` per item touched
//! in that interval, however many calls. A call waits for the table only when its
//! estimate does not fit in what its process has leased (one conditional write
//! leases a [`lease_percent`](FleetConfig::lease_percent) share of the limit at a
//! time). Calls short at once queue for one lease request at a time, and each
//! leases only what the leases taken ahead of it left it short of; the whole
//! wait is at most [`lease_wait`](FleetConfig::lease_wait).
//!
//! ## How fresh the figures are
//!
//! [`Cost::running_fleet_usd`](crate::Cost::running_fleet_usd) is the fleet's
//! spend today (UTC) as the table returned it at this process's last flush, plus
//! everything this process has spent since, this call included: other processes'
//! calls of the last flush interval or two (theirs and ours) are not in it yet.
//! It is read from what the last update returned, never by an extra read.
//!
//! ## When the table does not answer
//!
//! Calls go on. Increments stay in memory and are written when the table answers
//! again; each write carries this process's sequence number in a condition, so a
//! write retried after a timeout is counted once. Leases already held are spent
//! as usual until they lapse ([`lease_ttl`](FleetConfig::lease_ttl) after the last
//! successful renewal). A call that needs a new lease while the table does not
//! answer (throttled, missing, unreachable or slower than
//! [`lease_wait`](FleetConfig::lease_wait)) is refused with
//! [`Error::BudgetUnavailable`](crate::Error::BudgetUnavailable) (fail closed, the
//! default) or allowed (with [`WhenUnavailable::Allow`]). One WARN per kind of
//! failure, not one per call. While a budget's item cannot be written (missing
//! table, access denied, or unacknowledged for three flushes), its alerts are
//! raised from this process's own spend, marked
//! [`process_local`](crate::budget::BudgetAlert::process_local). Every request
//! has a time limit (5 s an attempt, 10 s in all), on a client given with
//! [`FleetConfig::dynamodb_client`] too where it sets none of its own.
//!
//! ## Clocks
//!
//! A lease's end and a load's time are written on the writer's clock and judged on
//! the reader's. Processes' clocks may differ by up to
//! [`clock_skew`](FleetConfig::clock_skew) (5 s by default; hosts synchronised by
//! NTP or the Amazon Time Sync Service are within milliseconds): a lapsed lease is
//! taken back only that long after it lapsed on the reclaimer's clock, and another
//! process's load counts that much longer. Past it, a process whose clock runs
//! ahead takes back leases still in use, and one whose clock lags has the others'
//! load read as stale (its calls allocated the instances as if alone).
//!
//! Leases see only the spend of processes that declare the budget: spend by a
//! process without it (a CLI run without `--budget`) is in the scope's spend
//! but not in what the leases committed, so the fleet can exceed an enforced
//! limit by it.
//!
//! ## The table
//!
//! One table, `pk` (string, partition key) and `sk` (string, sort key), on-demand
//! capacity, TTL on `expires_at`. `sagemeter fleet init --table NAME` (or
//! [`create_table`]) makes it; infrastructure code can make the same. One item
//! per scope and period:
//!
//! | `pk` | `sk` | attributes |
//! |---|---|---|
//! | `scope#fleet`, `scope#endpoint:<name>`, `scope#tag:<key>=<value>` | `hour#2026-12-01T20`, `day#2026-12-01`, `month#2026-12` | `spent_pico`, `calls`, `unpriced_charge_pico`, `variant:<name>`, `calls:<variant>`, `allocated:<variant>`, `accrual_from:<variant>`, `rate:<variant>:<epoch ms>`, `inflight:<process>`, `inflight_at:<process>`, `inflight_for:<process>` (endpoint items), `seq:<process>`, `expires_at`; for budgets also `limit_pico`, `committed_pico`, `alerted:<mode>:<limit>` (per budget) with `alert_by:<mode>:<limit>:<percent>` (the process that marked each threshold), `lease_seq:<process>` per process that leased and, per process holding a lease, `lease_granted:<process>`, `lease_used:<process>`, `lease_until:<process>` |
//! | `settled#<call id>` | `endpoint#<name>` | `settled_by`, `settled_at_ms`, `claim_until_ms`, `billed_at_ms` (once its receipt is made), `expires_at`: an async invocation settled (see [`Meter::settle_async`](crate::Meter::settle_async)); kept 14 days |
//!
//! A budget's leases live in its own item, so leasing, spending, renewing and
//! giving back are each one conditional `UpdateItem` of one item (atomic, no
//! transactions). A process's own attributes on an item (its sequence numbers,
//! its load on an endpoint's item) take about 30 to 150 bytes, and 130 more
//! while it holds a lease; [`Meter::shutdown`](crate::Meter::shutdown) removes
//! them once its last write is acknowledged and its lease given back, so an item
//! holds those of the processes running in its period (and of those that
//! crashed), not of every process that ever wrote it. DynamoDB bills a write
//! unit per KB of item, so with a hundred live processes a write to an
//! endpoint's item costs about 16 write units, and one to a budget's item
//! about twenty while every process holds a lease.
//!
//! Every spend item expires (`expires_at`, epoch seconds) 35 days after its
//! period ends; a settled item 14 days after the settlement. IAM actions used: `dynamodb:UpdateItem` by every process;
//! `dynamodb:Scan` by `fleet status`; `dynamodb:CreateTable`,
//! `dynamodb:DescribeTable`, `dynamodb:DescribeTimeToLive` and
//! `dynamodb:UpdateTimeToLive` by `fleet init`; `dynamodb:DescribeTable` also by
//! [`check_table`], which `invoke --fleet-table` and `fleet status` run first
//! (without it the check passes).
//!
//! The endpoint (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`), region and
//! credentials come from the same AWS config as the rest of the client.

mod keys;
mod runtime;
mod status;
mod table;

pub(crate) use runtime::{AccrualInput, Fleet};
pub use status::{FleetBudgetAlerts, FleetScopeStatus, fleet_status, fleet_status_with_clock_skew};
pub(crate) use table::Claimed;
pub use table::{EXPIRES_AT, PK, SK};

use crate::budget::BudgetMode;
use crate::config_error::ConfigError;
use rust_decimal::Decimal;
use std::time::Duration;

/// The longest [`FleetConfig::flush_every`]: an hour (running totals and leases
/// are renewed by the flushes).
pub const MAX_FLUSH_EVERY: Duration = Duration::from_secs(3600);
/// The longest [`FleetConfig::lease_wait`]: an hour.
pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(3600);
/// The longest [`FleetConfig::lease_ttl`]: a day (a crashed process's lease is
/// stranded that long).
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);
/// The default [`FleetConfig::clock_skew`].
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5);
/// The longest [`FleetConfig::clock_skew`]: an hour.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);
/// How long an async settlement's mark in the fleet table is its own before its
/// receipt is made (the invocation marked billed): 5 minutes. Marked and never
/// billed (its process was killed in between, or the second write failed), the
/// mark is taken over by a later settlement of the invocation once this, and the
/// [`clock_skew`](FleetConfig::clock_skew), have passed, and billed there (see
/// [`Meter::settle_async`](crate::Meter::settle_async)). A settlement waits for
/// its endpoint's rates (seconds, on a cold meter) within it.
pub const SETTLEMENT_CLAIM: Duration = crate::client::SETTLEMENT_CLAIM;

/// What a call that needs a new lease does when the table does not answer.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenUnavailable {
    /// Refuse the call ([`Error::BudgetUnavailable`](crate::Error::BudgetUnavailable)):
    /// no spend the fleet's budget does not know of. The default.
    #[default]
    Refuse,
    /// Let the call go on as if the lease had been granted; its spend is written
    /// to the table when it answers again.
    Allow,
}

/// How a client takes part in a fleet: the table and the timings.
#[derive(Clone)]
pub struct FleetConfig {
    pub(crate) table: String,
    pub(crate) client: Option<aws_sdk_dynamodb::Client>,
    pub(crate) flush_every: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) lease_percent: u32,
    pub(crate) lease_wait: Duration,
    pub(crate) when_unavailable: WhenUnavailable,
    pub(crate) clock_skew: Duration,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("table", &self.table)
            .field("flush_every", &self.flush_every)
            .field("lease_ttl", &self.lease_ttl)
            .field("lease_percent", &self.lease_percent)
            .field("lease_wait", &self.lease_wait)
            .field("when_unavailable", &self.when_unavailable)
            .field("clock_skew", &self.clock_skew)
            .finish_non_exhaustive()
    }
}

impl FleetConfig {
    /// A fleet kept in the DynamoDB table `table` (see the [module docs](self) for
    /// its schema).
    pub fn dynamodb(table: impl Into<String>) -> Self {
        FleetConfig {
            table: table.into(),
            client: None,
            flush_every: Duration::from_millis(250),
            lease_ttl: Duration::from_secs(30),
            lease_percent: 5,
            lease_wait: Duration::from_secs(2),
            when_unavailable: WhenUnavailable::default(),
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    /// The DynamoDB client to use (default: one made from the builder's AWS
    /// config). The fleet's time limits (5 s an attempt, 10 s with retries, 2 s
    /// to connect) apply to it wherever it sets none of its own.
    pub fn dynamodb_client(mut self, client: aws_sdk_dynamodb::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How often increments are written (default 250 ms; at most
    /// [`MAX_FLUSH_EVERY`], checked when the client is built).
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    /// How long a lease holds after its last renewal (default 30 s; more than two
    /// flush intervals, at most [`MAX_LEASE_TTL`]): a crashed process's lease
    /// returns to the fleet this long after its last flush.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// The share of a budget's limit leased at a time, in percent (default 5;
    /// more when a call needs more).
    pub fn lease_percent(mut self, percent: u32) -> Self {
        self.lease_percent = percent;
        self
    }

    /// How long a call waits for a lease before the table counts as unavailable
    /// (default 2 s): the whole wait, behind the other calls of the process
    /// waiting for one too and for the table's answer. At most
    /// [`MAX_LEASE_WAIT`].
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// What a call that needs a lease does when the table does not answer.
    pub fn when_unavailable(mut self, rule: WhenUnavailable) -> Self {
        self.when_unavailable = rule;
        self
    }

    /// How far apart the fleet's processes' clocks may be (default
    /// [`DEFAULT_CLOCK_SKEW`], at most [`MAX_CLOCK_SKEW`]): another process's lapsed
    /// lease is taken back only this long after its end on this process's clock,
    /// and its load on an endpoint counts this much longer (see [Clocks](self#clocks)).
    /// A crashed process's lease is stranded this much longer too.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Checks the configuration with the client's `budgets` as
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) does (the table can key
    /// each budget, a limit the table can keep, one enforced budget per scope and
    /// period, the durations), without building a client: for a caller that wants
    /// to know before it opens its sinks or sends anything. No request is sent.
    pub fn validate(&self, budgets: &[crate::budget::Budget]) -> Result<(), ConfigError> {
        const OPTION: &str = "ClientBuilder::fleet";
        for (i, budget) in budgets.iter().enumerate() {
            keys::check_scope(budget.scope())
                .map_err(|(reason, hint)| ConfigError::new(OPTION, reason).hint(hint))?;
            // The table keeps amounts in pico-USD: a limit that rounds to none there
            // would refuse every call, or alert at $0 spent, and say the limit is $0.
            let pico = Decimal::new(1, 12);
            if budget.limit_usd() < pico {
                return Err(ConfigError::new(
                    OPTION,
                    format!(
                        "the fleet budget of the {} has a limit of ${}, less than the \
                         smallest amount the fleet table keeps ($0.000000000001)",
                        budget.scope(),
                        budget.limit_usd()
                    ),
                )
                .hint("set a limit of at least $0.000000000001"));
            }
            // A scope and period has one item, which holds one lease per process:
            // two enforced budgets of it would lease from one committed sum, each
            // refusing calls at a fraction of its limit.
            let twin = budgets[..i].iter().find(|other| {
                other.mode() == BudgetMode::Enforce
                    && budget.mode() == BudgetMode::Enforce
                    && other.scope() == budget.scope()
                    && other.period() == budget.period()
            });
            if let Some(other) = twin {
                return Err(ConfigError::new(
                    OPTION,
                    format!(
                        "two enforced fleet budgets of the {} per {} (${} and ${}): the fleet \
                         keeps one lease per scope and period",
                        budget.scope(),
                        format!("{:?}", budget.period()).to_lowercase(),
                        other.limit_usd(),
                        budget.limit_usd()
                    ),
                )
                .hint("enforce the lower limit; make the other Budget::alert"));
            }
        }
        if self.table.trim().is_empty() {
            return Err(ConfigError::new(OPTION, "the fleet table name is empty"));
        }
        if self.flush_every.is_zero() || self.lease_wait.is_zero() {
            return Err(ConfigError::new(
                OPTION,
                "flush_every and lease_wait must be longer than zero",
            ));
        }
        for (name, value, most) in [
            ("flush_every", self.flush_every, MAX_FLUSH_EVERY),
            ("lease_wait", self.lease_wait, MAX_LEASE_WAIT),
            ("lease_ttl", self.lease_ttl, MAX_LEASE_TTL),
            ("clock_skew", self.clock_skew, MAX_CLOCK_SKEW),
        ] {
            if value > most {
                return Err(ConfigError::new(
                    OPTION,
                    format!("{name} ({value:?}) must be at most {most:?}"),
                ));
            }
        }
        if self.lease_ttl <= self.flush_every.saturating_mul(2) {
            return Err(ConfigError::new(
                OPTION,
                format!(
                    "lease_ttl ({:?}) must be more than two flush intervals ({:?})",
                    self.lease_ttl, self.flush_every
                ),
            )
            .hint("a lease is renewed by the flushes; it would lapse between them"));
        }
        if !(1..=100).contains(&self.lease_percent) {
            return Err(ConfigError::new(
                OPTION,
                format!(
                    "lease_percent must be 1 to 100 (got {})",
                    self.lease_percent
                ),
            ));
        }
        Ok(())
    }
}

/// Creates the fleet table `table` (on-demand capacity, the key schema above, TTL
/// on `expires_at`) and waits until it is active. An existing table of that name
/// is kept (its TTL turned on if it was off) if its keys are the fleet's; one of
/// another key schema is refused with an error, unchanged. True when it was
/// created now. Each request has a time limit (those the SDK config sets, else
/// 5 s an attempt and 10 s in all).
pub async fn create_table(
    sdk_config: &aws_types::SdkConfig,
    table: &str,
) -> Result<bool, crate::Error> {
    let table = table::Table::of_config(sdk_config, table);
    table
        .create(Duration::from_secs(120))
        .await
        .map_err(|e| crate::Error::Fleet(format!("creating table `{}`: {e}", table.name)))
}

/// Checks that the fleet table `table` exists with the fleet's keys, before a
/// process relies on it: a name mistyped, or a table not made yet, is said then
/// rather than when the first increments cannot be written. Passes when the
/// table cannot be described (no `dynamodb:DescribeTable`: running a fleet needs
/// only item reads and writes). Each request has the fleet's time limits.
pub async fn check_table(
    sdk_config: &aws_types::SdkConfig,
    table: &str,
) -> Result<(), crate::Error> {
    let table = table::Table::of_config(sdk_config, table);
    table
        .check()
        .await
        .map_err(|e| crate::Error::Fleet(e.message))
}

/// Counters of a client's fleet traffic, from [`Meter::fleet_stats`](crate::Meter::fleet_stats).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FleetStats {
    /// Requests sent to the table: one per operation (a write, a lease, a
    /// lowering of an accrual's start; two for an async settlement's mark
    /// taken over, its refused create and the takeover), the SDK's retries of
    /// it not counted.
    pub requests: u64,
    /// Flushes that wrote something.
    pub flushes: u64,
    /// Items with increments not yet written.
    pub unwritten_items: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_enforced_fleet_budgets_of_one_scope_and_period_are_refused_when_built() {
        use crate::budget::{Budget, BudgetPeriod, BudgetScope};
        let chat = || BudgetScope::endpoint("chat");
        let usd = |s: &str| s.parse().unwrap();
        let enforce = |scope, period, limit| Budget::enforce(scope, period, usd(limit)).unwrap();
        // $1 and $2 a day on one endpoint, enforced: they would share the day's
        // item and its one lease per process, and $1 would refuse calls at about
        // $0.50 spent (each lease of either counted in one committed sum).
        let err = FleetConfig::dynamodb("fleet")
            .validate(&[
                enforce(chat(), BudgetPeriod::Day, "1"),
                enforce(chat(), BudgetPeriod::Day, "2"),
            ])
            .unwrap_err();
        assert_eq!(err.option, "ClientBuilder::fleet");
        assert!(
            err.problem
                .starts_with("two enforced fleet budgets of the endpoint chat per day ($1 and $2)"),
            "{err}"
        );
        // Another period, another scope, or an alerting twin: items of their own,
        // or no lease.
        FleetConfig::dynamodb("fleet")
            .validate(&[
                enforce(chat(), BudgetPeriod::Day, "1"),
                enforce(chat(), BudgetPeriod::Hour, "0.1"),
                enforce(BudgetScope::endpoint("other"), BudgetPeriod::Day, "1"),
                Budget::alert(chat(), BudgetPeriod::Day, usd("0.5")).unwrap(),
            ])
            .unwrap();
    }

    #[test]
    fn a_budget_for_each_tag_value_is_refused_with_the_fleet() {
        use crate::budget::{Budget, BudgetPeriod, BudgetScope};
        let each = Budget::enforce(
            BudgetScope::each_tag_value("tenant"),
            BudgetPeriod::Month,
            "100".parse().unwrap(),
        )
        .unwrap();
        let err = FleetConfig::dynamodb("fleet")
            .validate(&[each])
            .unwrap_err();
        assert_eq!(
            err.problem,
            "a budget for each value of tag `tenant` is not kept across a fleet"
        );
        assert!(err.to_string().contains("BudgetScope::tag"), "{err}");
    }

    #[test]
    fn a_fleet_limit_below_a_pico_dollar_is_refused_not_kept_as_zero() {
        use crate::budget::{Budget, BudgetPeriod, BudgetScope};
        let enforce = |limit: &str| {
            Budget::enforce(
                BudgetScope::endpoint("chat"),
                BudgetPeriod::Day,
                limit.parse().unwrap(),
            )
            .unwrap()
        };
        // 10^-13 USD is 0.1 pico-USD: the table would keep a limit of 0.
        let err = FleetConfig::dynamodb("fleet")
            .validate(&[enforce("0.0000000000001")])
            .unwrap_err();
        assert!(
            err.problem
                .contains("less than the smallest amount the fleet table keeps"),
            "{err}"
        );
        // One pico-USD is kept.
        FleetConfig::dynamodb("fleet")
            .validate(&[enforce("0.000000000001")])
            .unwrap();
        // An alerting budget too: kept as $0, a flush of a $0 call would pass
        // its 50, 80 and 100 % (0 × 100 ≥ 0 × percent).
        let alert = Budget::alert(
            BudgetScope::endpoint("chat"),
            BudgetPeriod::Day,
            "0.0000000000001".parse().unwrap(),
        )
        .unwrap();
        let err = FleetConfig::dynamodb("fleet")
            .validate(&[alert])
            .unwrap_err();
        assert!(
            err.problem
                .contains("less than the smallest amount the fleet table keeps"),
            "{err}"
        );
    }

    #[test]
    fn durations_too_long_for_the_clock_are_refused_with_a_config_error_not_a_panic() {
        let config = || FleetConfig::dynamodb("fleet");
        for (config, option) in [
            (config().flush_every(Duration::MAX), "flush_every"),
            (config().lease_wait(Duration::MAX), "lease_wait"),
            (config().lease_ttl(Duration::MAX), "lease_ttl"),
            (
                config().flush_every(MAX_FLUSH_EVERY + Duration::from_nanos(1)),
                "flush_every",
            ),
            (
                config().lease_ttl(MAX_LEASE_TTL + Duration::from_secs(1)),
                "lease_ttl",
            ),
        ] {
            let err = config.validate(&[]).unwrap_err();
            assert_eq!(err.option, "ClientBuilder::fleet");
            assert!(err.problem.starts_with(option), "{err}");
        }
        // The longest of each is fine together.
        config()
            .flush_every(MAX_FLUSH_EVERY)
            .lease_wait(MAX_LEASE_WAIT)
            .lease_ttl(MAX_LEASE_TTL)
            .validate(&[])
            .unwrap();
    }
}
