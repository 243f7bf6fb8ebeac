//! The fleet on the emulator's DynamoDB: shared totals, leased budgets, lapsed
//! leases, a table that is not there. Several clients in one test stand for
//! several processes (each client is its own process in the table: its own
//! sequence numbers and leases); `tests/cli/cli_fleet.rs` runs real processes.

use crate::support::emulator::{Emulator, REALTIME_ENDPOINT};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::receipts::Receipts;
use crate::support::{GatedPrices, NoPrices, m5_priced_by_overrides, manual_clock};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, UsageCharges};
use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::fleet::{
    EXPIRES_AT, FleetConfig, FleetScopeStatus, PK, SK, WhenUnavailable, check_table, create_table,
    fleet_status,
};
use sagemeter::{Client, Cost, Error};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Flushes `client`'s fleet until nothing is left unwritten (at most five tries,
/// 100 ms apart). A flush that meets another process's write of the same item
/// leaves it for the next flush, as the flush loop would; five in a row failing
/// is a failure.
async fn flushed(client: &Client) {
    for _ in 0..5 {
        if client.meter().flush_fleet().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the fleet's increments were not written in five flushes");
}

/// The fleet in the DynamoDB table `table`, whose calls wait up to 30 s for a
/// lease: the wait is only a bound (a call is leased as soon as the table
/// answers, and refused as soon as it has no room or fails), and the 2 s
/// default was not long enough for a loaded host, whose emulator answers one
/// request at a time: the call was refused as if the table were unreachable.
/// A test of the wait itself sets its own.
fn on_table(table: impl Into<String>) -> FleetConfig {
    FleetConfig::dynamodb(table).lease_wait(Duration::from_secs(30))
}

/// A table name no other test uses.
fn table_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fleet-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// $0.01 a call and nothing else (a per-inference price alone): every receipt's
/// cost is known before the call, so the budget arithmetic is exact.
fn per_call_client(
    conf: &aws_types::SdkConfig,
    fleet: FleetConfig,
    budget: Option<Budget>,
) -> Client {
    per_call_builder(conf, fleet, budget).build().unwrap()
}

/// [`per_call_client`]'s builder, for a test to add to (a clock of its own).
fn per_call_builder(
    conf: &aws_types::SdkConfig,
    fleet: FleetConfig,
    budget: Option<Budget>,
) -> sagemeter::ClientBuilder {
    let mut builder = Client::builder(conf)
        .without_discovery()
        .without_metrics()
        .usage_charges(
            REALTIME_ENDPOINT,
            UsageCharges::default().per_1000_calls(dec("10")).alone(),
        )
        .fleet(fleet);
    if let Some(budget) = budget {
        builder = builder.budget(budget);
    }
    builder
}

async fn call(client: &Client) -> Result<Cost, Error> {
    client
        .invoke_endpoint()
        .endpoint_name(REALTIME_ENDPOINT)
        .content_type("application/json")
        .body(Blob::new(r#"{"inputs":"fleet"}"#))
        .send()
        .await
        .map(|r| r.cost().clone())
}

/// A fleet table on the emulator, and the in-process fake SageMaker serving one
/// endpoint of `ml.m5.xlarge` instances: its calls are held as long as a test
/// likes, while the processes share the table.
struct FakeFleet {
    table: String,
    ddb: aws_sdk_dynamodb::Client,
    fake: FakeSageMaker,
    endpoint: &'static str,
    instances: u32,
}

impl FakeFleet {
    async fn start(what: &str, endpoint: &'static str, instances: u32) -> FakeFleet {
        let conf = Emulator::shared().sdk_config().await;
        let table = table_name(what);
        create_table(&conf, &table).await.unwrap();
        let fake = FakeSageMaker::start().await;
        fake.add_endpoint(
            endpoint,
            vec![FakeVariant::instance(
                "AllTraffic",
                "ml.m5.xlarge",
                instances,
            )],
        );
        FakeFleet {
            table,
            ddb: aws_sdk_dynamodb::Client::new(&conf),
            fake,
            endpoint,
            instances,
        }
    }

    /// One process of the fleet, priced from overrides, without metrics; its
    /// fleet flushes every `flush` (the default when `None`).
    async fn process(&self, flush: Option<Duration>) -> sagemeter::ClientBuilder {
        let mut fleet = on_table(&self.table).dynamodb_client(self.ddb.clone());
        if let Some(flush) = flush {
            fleet = fleet.flush_every(flush);
        }
        m5_priced_by_overrides(&self.fake, self.endpoint, self.instances)
            .await
            .without_metrics()
            .fleet(fleet)
    }

    /// One process of the fleet on the clock `time`, under an enforced $1 a day
    /// on `jobs`, each job estimated at $0.05.
    async fn jobs_process(&self, time: SharedTimeSource) -> Client {
        self.process(None)
            .await
            .time_source(time)
            .budget(enforced(
                BudgetScope::endpoint("jobs"),
                BudgetPeriod::Day,
                "1",
                "0.05",
            ))
            .build()
            .unwrap()
    }

    /// The table's item of `jobs` for the day.
    async fn jobs_item(&self) -> FleetScopeStatus {
        let conf = Emulator::shared().sdk_config().await;
        let status = fleet_status(&conf, &self.table).await.unwrap();
        scope(&status, &BudgetScope::endpoint("jobs")).clone()
    }
}

/// Asserts that the table's `item` counts `receipts_usd` of receipts and
/// `charge_usd` charged beyond them (lapsed holds).
#[track_caller]
fn assert_receipts_and_charge(item: &FleetScopeStatus, receipts_usd: Decimal, charge_usd: Decimal) {
    assert_eq!(
        (item.spent_usd, item.unpriced_charge_usd),
        (receipts_usd, charge_usd),
        "{item:?}"
    );
}

/// An enforced budget of `limit` USD on `scope` per `period`, each call estimated
/// at `per_call` USD.
fn enforced(scope: BudgetScope, period: BudgetPeriod, limit: &str, per_call: &str) -> Budget {
    Budget::enforce(scope, period, dec(limit))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec(per_call) })
        .unwrap()
}

/// The cost of a receipt's compute line.
fn compute_usd(cost: &Cost) -> Decimal {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .and_then(|l| l.cost_usd())
        .expect("a priced compute line")
}

/// `d` in hours, exactly (to the microsecond).
fn hours(d: Duration) -> Decimal {
    Decimal::from(d.as_micros() as u64) / Decimal::from(3_600_000_000u64)
}

fn scope<'a>(status: &'a [FleetScopeStatus], scope: &BudgetScope) -> &'a FleetScopeStatus {
    status
        .iter()
        .find(|s| &s.scope == scope && s.period == BudgetPeriod::Day)
        .unwrap_or_else(|| panic!("no {scope} in {status:#?}"))
}

#[tokio::test]
async fn two_processes_totals_are_the_sum_of_their_receipts_to_the_pico_dollar() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("totals");
    assert!(create_table(&conf, &table).await.unwrap(), "created now");
    assert!(
        !create_table(&conf, &table).await.unwrap(),
        "kept the second time"
    );

    let a = per_call_client(&conf, on_table(&table), None);
    let b = per_call_client(&conf, on_table(&table), None);
    let mut receipts = Vec::new();
    for _ in 0..5 {
        receipts.push(call(&a).await.unwrap());
        receipts.push(call(&b).await.unwrap());
    }
    // A process knows at least its own spend (5 calls × $0.01) and at most what
    // the fleet had spent by then (also b's first 4 calls: $0.09). Which of b's
    // calls it knows of depends on when the flushes (the first at each process's
    // first call, then every 250 ms) happened to land.
    let last_of_a = receipts[8]
        .running_fleet_usd
        .expect("a fleet running total");
    assert!(
        (dec("0.05")..=dec("0.09")).contains(&last_of_a),
        "{last_of_a}"
    );
    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();

    // 10 calls at $10 per 1,000: $0.10, in every scope that counts them.
    let sum: Decimal = receipts.iter().map(|c| c.cost_usd).sum();
    assert_eq!(sum, dec("0.10"));
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!((fleet.spent_usd, fleet.calls), (sum, 10));
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!((endpoint.spent_usd, endpoint.calls), (sum, 10));

    // A third process's first flush reads the fleet's figure back.
    let c = per_call_client(&conf, on_table(&table), None);
    call(&c).await.unwrap();
    flushed(&c).await;
    let cost = call(&c).await.unwrap();
    assert_eq!(cost.running_fleet_usd, Some(dec("0.12")));
    c.meter().shutdown().await.unwrap();
    // The first call's load, then each flush that wrote at most one request per
    // item (two: the budget's and the endpoint's), then at shutdown one request
    // per item to remove the process's attributes: nothing sent per call. (How
    // many flushes wrote depends on when the 250 ms ticks land: two, or up to
    // four on a loaded machine, when the calls' loads are written apart.)
    let stats = c.meter().fleet_stats().unwrap();
    assert!(
        stats.flushes >= 1 && stats.requests <= 1 + 2 * stats.flushes + 2,
        "{stats:?}"
    );
}

#[tokio::test]
async fn an_endpoint_budget_holds_across_processes_and_leases_come_back() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("budget");
    create_table(&conf, &table).await.unwrap();
    let budget = || {
        enforced(
            BudgetScope::endpoint(REALTIME_ENDPOINT),
            BudgetPeriod::Day,
            "0.10",
            "0.01",
        )
    };
    // Leases of 20 % ($0.02, two calls) at a time.
    let fleet = || on_table(&table).lease_percent(20);
    // Every process's budget has the same callback: the fleet raises each
    // threshold once, in one of them.
    let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<Client> = (0..3)
        .map(|_| {
            let alerts = alerts.clone();
            let budget =
                budget().on_alert(move |a| alerts.lock().unwrap().push(a.threshold_percent));
            per_call_client(&conf, fleet(), Some(budget))
        })
        .collect();
    let (mut spent, mut refused) = (Decimal::ZERO, 0);
    for round in 0..6 {
        for (i, client) in clients.iter().enumerate() {
            match call(client).await {
                Ok(cost) => spent += cost.cost_usd,
                Err(Error::BudgetExceeded {
                    scope, fleet_wide, ..
                }) => {
                    assert_eq!(scope, BudgetScope::endpoint(REALTIME_ENDPOINT));
                    assert!(fleet_wide);
                    refused += 1;
                }
                Err(other) => panic!("round {round}, client {i}: {other}"),
            }
        }
    }
    // 18 calls asked for, $0.10 allowed at $0.01 each: exactly 10 go through.
    assert_eq!((spent, refused), (dec("0.10"), 8));
    for client in &clients {
        client.meter().shutdown().await.unwrap();
    }
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd, spent);
    assert_eq!(endpoint.limit_usd, Some(dec("0.10")));
    // Every lease was spent or given back: committed is what was spent.
    assert_eq!(endpoint.committed_usd, Some(spent));
    assert_eq!(endpoint.leases, 0);
    assert_eq!(endpoint.alerts_passed, [50, 80, 100]);
    let mut raised = alerts.lock().unwrap().clone();
    raised.sort_unstable();
    assert_eq!(raised, [50, 80, 100], "each threshold once for the fleet");
}

#[tokio::test]
async fn a_fleet_refusal_says_what_the_leases_hold_unspent() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("refusal");
    create_table(&conf, &table).await.unwrap();
    // $0.05 a day for the fleet at $0.01 a call, the whole limit leased at a time.
    let budget = || enforced(BudgetScope::Client, BudgetPeriod::Day, "0.05", "0.01");
    let fleet = || on_table(&table).lease_percent(100);
    // One process leases the $0.05 and spends $0.01 of it; another, without the
    // budget, spends $0.03.
    let holder = per_call_client(&conf, fleet(), Some(budget()));
    call(&holder).await.unwrap();
    flushed(&holder).await;
    let unbudgeted = per_call_client(&conf, fleet(), None);
    for _ in 0..3 {
        call(&unbudgeted).await.unwrap();
    }
    flushed(&unbudgeted).await;

    let third = per_call_client(&conf, fleet(), Some(budget()));
    match call(&third).await {
        Err(Error::BudgetExceeded {
            limit,
            spent,
            reserved,
            ..
        }) => {
            // spent by every process: 0.01 + 0.03; leased and not spent: the
            // holder's 0.05 − 0.01 (not committed − spent, 0.05 − 0.04 = 0.01)
            assert_eq!(
                (limit, spent, reserved),
                (dec("0.05"), dec("0.04"), dec("0.04"))
            );
        }
        other => panic!("expected a fleet refusal, got {other:?}"),
    }
    for client in [holder, unbudgeted, third] {
        client.meter().shutdown().await.unwrap();
    }
}

/// `send_metered` leases a fleet budget as `Client` does: its hook cannot wait
/// for the table, so the call is reserved (and leased) before its request's hook
/// checks the region. A request of another region is refused with the
/// configuration error all the same, its reservation released: nothing spent,
/// nothing left reserved, and under the spent budget it is still the
/// configuration error, not the budget's.
#[tokio::test]
async fn send_metered_leases_a_fleet_budget_and_refuses_another_region_releasing_its_reservation() {
    use sagemeter::SendMeteredExt;
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("send-metered");
    create_table(&conf, &table).await.unwrap();
    // $0.03 a day at $0.01 a call, leased 0.01 (a third) at a time.
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "0.03", "0.01");
    let client = per_call_client(&conf, on_table(&table).lease_percent(34), Some(budget));
    let meter = client.meter();
    let us = aws_sdk_sagemakerruntime::Client::new(&conf);
    let eu = aws_sdk_sagemakerruntime::Client::new(
        &conf
            .to_builder()
            .region(aws_types::region::Region::from_static("eu-west-1"))
            .build(),
    );
    let send = |sdk: &aws_sdk_sagemakerruntime::Client| {
        sdk.invoke_endpoint()
            .endpoint_name(REALTIME_ENDPOINT)
            .content_type("application/json")
            .body(Blob::new(r#"{"inputs":"fleet"}"#))
            .send_metered(meter)
    };
    let other_region = |err: &Error| matches!(err, Error::Config(config) if config.option == "SendMeteredExt::send_metered");
    let err = send(&eu).await.unwrap_err();
    assert!(other_region(&err), "{err:?}");
    let status = &meter.budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0"), dec("0"))
    );
    // Three calls of $0.01 each fit, each one leased; the fourth does not.
    let mut spent = Decimal::ZERO;
    for _ in 0..3 {
        spent += send(&us).await.unwrap().cost().cost_usd;
    }
    assert_eq!(spent, dec("0.03"));
    let err = send(&us).await.unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    let err = send(&eu).await.unwrap_err();
    assert!(other_region(&err), "{err:?}");
    // A body over SageMaker's 25,000,000 bytes is that mistake, as `Client` says it, not the
    // budget's refusal: checked before the lease.
    let err = us
        .invoke_endpoint()
        .endpoint_name(REALTIME_ENDPOINT)
        .body(Blob::new(vec![b' '; 25_000_001]))
        .send_metered(meter)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let status = &meter.budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0.03"), dec("0"))
    );
    assert_eq!(meter.calls_in_flight(), 0);
    meter.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lapsed_lease_of_a_process_that_is_gone_returns_to_the_fleet() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("lapse");
    create_table(&conf, &table).await.unwrap();
    let budget = || enforced(BudgetScope::Client, BudgetPeriod::Day, "0.05", "0.01");
    // Clocks may differ by 2 s: a lease is taken back 2 s after it lapsed.
    let fleet = || {
        on_table(&table)
            .lease_percent(100)
            .lease_ttl(Duration::from_secs(2))
            .flush_every(Duration::from_millis(100))
            .clock_skew(Duration::from_secs(2))
    };
    // Each process on a clock that moves only when the test moves it: the
    // lease lapses, and the skew passes, when the test says, however slowly
    // the host runs the calls and flushes. The gone process's clock stops
    // when it is killed: the last flush of its flush loop finds the whole 2 s
    // of its lease left and renews nothing.
    let (_, gone_time) = manual_clock();
    let (clock, time) = manual_clock();
    let client = |time: SharedTimeSource| {
        per_call_builder(&conf, fleet(), Some(budget()))
            .time_source(time)
            .build()
            .unwrap()
    };
    // The first process leases the whole $0.05, spends $0.01 and is gone without
    // shutting down (as if killed): $0.04 stays leased to it, until 2 s after
    // it was granted.
    let gone = client(gone_time);
    call(&gone).await.unwrap();
    flushed(&gone).await;
    drop(gone);

    let survivor = client(time);
    assert!(
        matches!(call(&survivor).await, Err(Error::BudgetExceeded { .. })),
        "the lease has not lapsed yet"
    );
    // 2.2 s on: lapsed on this clock (0.2 s ago), but less than the skew
    // allowed ago: its holder's clock may be behind, and it may still be
    // spending.
    clock.advance(Duration::from_millis(2200));
    assert!(
        matches!(call(&survivor).await, Err(Error::BudgetExceeded { .. })),
        "a lease lapsed less than the clock skew ago is not taken back"
    );
    // 2.5 s more, 4.7 s on: lapsed 2.7 s ago, more than the skew.
    clock.advance(Duration::from_millis(2500));
    for _ in 0..4 {
        call(&survivor).await.expect("the lapsed lease came back");
    }
    assert!(matches!(
        call(&survivor).await,
        Err(Error::BudgetExceeded { .. })
    ));
    survivor.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    assert_eq!(scope(&status, &BudgetScope::Client).spent_usd, dec("0.05"));
}

#[tokio::test]
async fn a_table_that_does_not_exist_stops_no_call_but_fleet_budgets_fail_closed() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let missing = table_name("missing");
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "1", "0.01");

    let plain = per_call_client(&conf, on_table(&missing), None);
    for _ in 0..3 {
        call(&plain)
            .await
            .expect("no budget: the fleet stops nothing");
    }
    assert!(!plain.meter().flush_fleet().await, "nothing acknowledged");
    assert_eq!(plain.meter().fleet_stats().unwrap().unwritten_items, 2);

    let closed = per_call_client(&conf, on_table(&missing), Some(budget.clone()));
    match call(&closed).await {
        Err(Error::BudgetUnavailable { scope, reason, .. }) => {
            assert_eq!(scope, sagemeter::budget::BudgetScope::Client);
            assert!(reason.contains("not found"), "{reason}");
        }
        other => panic!("expected a fail-closed refusal, got {other:?}"),
    }
    let open = per_call_client(
        &conf,
        on_table(&missing).when_unavailable(WhenUnavailable::Allow),
        Some(budget),
    );
    call(&open).await.expect("fail open lets the call go");

    // The table appears: what was kept is written, once (a flush retries the
    // writes that failed; what calls added since goes with the next).
    create_table(&conf, &missing).await.unwrap();
    plain.meter().flush_fleet().await;
    flushed(&plain).await;
    assert_eq!(plain.meter().fleet_stats().unwrap().unwritten_items, 0);
    plain.meter().shutdown().await.unwrap();
    open.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &missing).await.unwrap();
    assert_eq!(scope(&status, &BudgetScope::Client).spent_usd, dec("0.04"));
    assert_eq!(scope(&status, &BudgetScope::Client).calls, 4);
    // The call fail open let through spent $0.01 of the budget no lease covered:
    // the budget has committed it (the three calls without a budget are not its).
    assert_eq!(
        scope(&status, &BudgetScope::Client).committed_usd,
        Some(dec("0.01"))
    );
}

#[tokio::test]
async fn the_seeded_demo_table_is_a_fleet_table() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    // seed.py made it with the schema `fleet init` makes: kept, not made again.
    assert!(!create_table(&conf, "sagemeter-fleet").await.unwrap());
    let client = per_call_client(&conf, on_table("sagemeter-fleet"), None);
    let before = fleet_status(&conf, "sagemeter-fleet")
        .await
        .unwrap()
        .iter()
        .find(|s| s.scope == BudgetScope::endpoint(REALTIME_ENDPOINT))
        .map_or(Decimal::ZERO, |s| s.spent_usd);
    call(&client).await.unwrap();
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, "sagemeter-fleet").await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd - before, dec("0.01"));
}

/// The fleet's table behind a [`FaultProxy`], with short timings.
async fn behind_proxy(table_what: &str) -> (aws_types::SdkConfig, String, FaultProxy) {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name(table_what);
    create_table(&conf, &table).await.unwrap();
    let proxy = FaultProxy::start(&emu.endpoint_url).await;
    (conf, table, proxy)
}

/// The fleet on `table` ([`on_table`]) through `proxy`, flushed every 100
/// ms. Its calls wait up to 30 s for a lease, as `on_table`'s do (500 ms here
/// was not long enough for a loaded host to lease through the proxy), and as
/// long as the SDK retries a table that fails.
fn proxied(table: &str, proxy: &FaultProxy, conf: &aws_types::SdkConfig) -> FleetConfig {
    on_table(table)
        .dynamodb_client(proxy.dynamodb_client(conf))
        .flush_every(Duration::from_millis(100))
}

#[tokio::test]
async fn a_throttled_table_stops_no_call_and_loses_no_increment() {
    let (conf, table, proxy) = behind_proxy("throttled").await;
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "1", "0.01");
    // Leases of $0.05: five calls each.
    let client = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_percent(5),
        Some(budget),
    );
    call(&client).await.unwrap(); // leases $0.05 while the table answers
    proxy.set(Fault::Throttle);
    let mut spent = dec("0.01");
    for _ in 0..4 {
        // Within the lease: no round trip, the throttling does not matter.
        spent += call(&client).await.unwrap().cost_usd;
    }
    assert!(
        !client.meter().flush_fleet().await,
        "throttled writes are kept"
    );
    match call(&client).await {
        // Throttled, and the SDK's retries give up within the 30 s wait.
        Err(Error::BudgetUnavailable { reason, .. }) => {
            assert!(reason.starts_with("throttled"), "{reason}")
        }
        other => panic!("a new lease needs the table: {other:?}"),
    }
    proxy.set(Fault::None);
    for _ in 0..3 {
        spent += call(&client).await.unwrap().cost_usd;
    }
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!((fleet.spent_usd, fleet.calls), (spent, 8));
    assert_eq!(
        fleet.committed_usd,
        Some(spent),
        "leases given back exactly"
    );
}

/// A table failure is warned of once, not at every flush; once the table
/// answers again that is said, and a later failure is warned of afresh (a
/// blip in week 1 must not leave an outage in week 3 unsaid).
#[tokio::test]
async fn a_failure_after_the_table_answered_again_is_warned_of_afresh() {
    let logs = crate::support::logs::capture();
    let (conf, table, proxy) = behind_proxy("warn-again").await;
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), None);
    let failed = || {
        logs.at_level("WARN")
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("fleet table failed"))
            })
            .count()
    };
    call(&client).await.unwrap();
    flushed(&client).await;
    for outage in 1..=2 {
        proxy.set(Fault::Down);
        call(&client).await.unwrap();
        // The flush loop fails too, every 100 ms meanwhile: warned of once.
        assert!(!client.meter().flush_fleet().await);
        assert_eq!(failed(), outage, "once per outage");
        proxy.set(Fault::None);
        flushed(&client).await;
        assert!(
            logs.text().contains("fleet table answers again"),
            "{}",
            logs.text()
        );
    }
    client.meter().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lease_whose_answers_were_lost_is_applied_once_then_found_spent_and_given_back() {
    let (conf, table, proxy) = behind_proxy("lost-lease").await;
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05, five calls) at a time.
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "0.10",
        "0.01",
    );
    let client = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_percent(50),
        Some(budget),
    );
    // The table applies the lease request, and the SDK's retries of it, but every
    // answer is lost: the call gets no lease and is refused.
    proxy.set(Fault::LoseResponses);
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    proxy.set(Fault::None);
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(
        endpoint.committed_usd,
        Some(dec("0.05")),
        "one lease of $0.05, however often the request was sent"
    );

    // The next lease finds the one whose answer was lost: the process spends
    // both, the whole $0.10 (ten calls), and the eleventh is refused.
    calls_in_turn(&client, 10).await;
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    client.meter().shutdown().await.unwrap();

    // Given back as the table holds it: committed ends equal to what was spent.
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!((endpoint.spent_usd, endpoint.calls), (dec("0.10"), 10));
    assert_eq!(endpoint.committed_usd, Some(dec("0.10")));
    assert_eq!(endpoint.leases, 0);
}

#[tokio::test]
async fn a_lease_request_never_answered_is_not_called_a_lease_left_stranded() {
    // A local recorder sees this thread's events (a current-thread runtime).
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    // Nothing listens on port 1: every request fails to connect.
    let refused = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&conf)
            .endpoint_url("http://127.0.0.1:1")
            .build(),
    );
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "0.10",
        "0.01",
    );
    let client = per_call_client(
        &conf,
        on_table(table_name("never-answered")).dynamodb_client(refused),
        Some(budget),
    );
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    // The refusal is counted, as unavailable.
    assert_eq!(
        crate::support::counter_values(&recorder, "sagemeter_budget_refused_total"),
        [(vec![("reason".to_owned(), "unavailable".to_owned())], 1)]
    );
    // Whether the table applied the request cannot be known from a failed
    // answer (an earlier attempt may have reached it): shutdown says so, and that
    // such a lease lapses, not that a lease was left unreturned.
    let done = client.meter().shutdown().await.unwrap_err().to_string();
    assert!(
        done.contains("a fleet lease request was never answered")
            && done.contains("lapses lease_ttl after it was made"),
        "{done}"
    );
    assert!(!done.contains("was not given back"), "{done}");
}

#[tokio::test]
async fn a_lease_whose_answer_was_lost_is_given_back_at_shutdown() {
    let (conf, table, proxy) = behind_proxy("lost-lease-back").await;
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "0.10",
        "0.01",
    );
    let client = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_percent(50),
        Some(budget),
    );
    proxy.set(Fault::LoseResponses);
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    proxy.set(Fault::None);
    client.meter().shutdown().await.unwrap();

    // The $0.05 lease the process never heard of went back with the others:
    // nothing spent, nothing committed, no lease left to lapse.
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd, Decimal::ZERO);
    assert_eq!(endpoint.committed_usd, Some(Decimal::ZERO));
    assert_eq!(endpoint.leases, 0);
}

#[tokio::test]
async fn a_slow_table_costs_a_call_no_time_and_a_lease_no_more_than_lease_wait() {
    let (conf, table, proxy) = behind_proxy("slow").await;
    // The table answers in 30 s: longer than any loaded host takes over the
    // calls below, so no answer comes while they run.
    proxy.set(Fault::Slow(Duration::from_secs(30)));
    let plain = per_call_client(&conf, proxied(&table, &proxy, &conf), None);
    let forwarded = proxy.forwarded();
    for _ in 0..5 {
        call(&plain).await.unwrap();
    }
    // Flushes are in the background: five calls take no table time. They are
    // over though the table has answered nothing (however long the host took
    // over them: a bound on their time would measure the host).
    assert_eq!(proxy.forwarded(), forwarded, "no table request answered");
    let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("1")).unwrap();
    let capped = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_wait(Duration::from_millis(500)),
        Some(budget),
    );
    // Measured on Tokio's clock, paused (the call's wait, the table's delay at
    // the proxy: the refused call sends nothing past the proxy, which holds
    // its request): the wait ends at its deadline however late the host runs
    // it.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let refused = call(&capped).await;
    let waited = started.elapsed();
    tokio::time::resume();
    assert!(
        matches!(&refused, Err(Error::BudgetUnavailable { reason, .. }) if reason.contains("no answer within 500ms")),
        "{refused:?}"
    );
    // Within lease_wait (500 ms), never the 30 s the table would take.
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    // The table answers again; the flushes' attempts held at the proxy end at
    // the proxy's client's 2 s attempt timeout and are sent again: 30 s is
    // room enough.
    proxy.set(Fault::None);
    plain
        .meter()
        .shutdown_within(Duration::from_secs(30))
        .await
        .unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!((fleet.spent_usd, fleet.calls), (dec("0.05"), 5));
}

/// A sink whose shutdown never ends (a broker that is down); it notes when its
/// shutdown was asked for, on Tokio's clock, which the test has paused until
/// then: it resumes it, so that the sinks' shutdown, the ledger's writer
/// thread included, runs in real time.
#[derive(Debug, Clone, Default)]
struct Hangs(std::sync::Arc<std::sync::Mutex<Option<tokio::time::Instant>>>);

impl sagemeter::sink::CostSink for Hangs {
    fn record(&self, _cost: &Cost) {}
    fn name(&self) -> &str {
        "broker-down"
    }
    fn shutdown(&self) -> sagemeter::sink::BoxFuture<'_, std::io::Result<()>> {
        self.0.lock().unwrap().get_or_insert_with(|| {
            let now = tokio::time::Instant::now();
            tokio::time::resume();
            now
        });
        Box::pin(std::future::pending())
    }
}

/// `shutdown_within(t)` is over within `t` in all, a slow table and a hung sink
/// included (a pod's grace period is a bound on the whole), and the ledger still
/// gets its time and its receipts: the fleet's last write has until three
/// quarters of `t`, the sinks the last quarter.
#[tokio::test]
async fn shutdown_within_keeps_to_its_time_in_all_and_leaves_the_ledger_time() {
    let (conf, table, proxy) = behind_proxy("grace").await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = sagemeter::ledger::JsonlLedger::open(dir.path().join("l.jsonl")).unwrap();
    let hangs = Hangs::default();
    let client = Client::builder(&conf)
        .without_discovery()
        .without_metrics()
        .usage_charges(
            REALTIME_ENDPOINT,
            UsageCharges::default().per_1000_calls(dec("10")).alone(),
        )
        .fleet(proxied(&table, &proxy, &conf))
        .sink(hangs.clone())
        .sink(ledger)
        .build()
        .unwrap();
    call(&client).await.unwrap();
    // The table answers in 3 s, after the whole grace period.
    proxy.set(Fault::Slow(Duration::from_secs(3)));
    // Tokio's clock (the shutdown's, the table's delay at the proxy) paused
    // until the sinks are shut down (`Hangs` resumes it): the fleet's share
    // ends at its deadline exactly, however late the host runs the shutdown's
    // steps, and the sinks' start is measured on that clock. The sinks' quarter
    // runs in real time: the ledger's writer is a thread of its own.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let err = client
        .meter()
        .shutdown_within(Duration::from_secs(2))
        .await
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    // No call in flight: the fleet's last write waits for the table until three
    // quarters of 2 s (1.5 s), then the sinks are shut down with the last quarter
    // (0.5 s), 2 s in all. Were the fleet given the whole of what is left, the
    // sinks would start at 2 s and end at 2.5 s, and either bound catches that.
    // The sinks start at 1.5 s exactly on the paused clock; the whole leaves a
    // loaded machine 0.5 s of real time after the sinks' quarter.
    let sinks_started = hangs.0.lock().unwrap().expect("the sink was shut down") - started;
    assert!(
        sinks_started >= Duration::from_millis(1450) && sinks_started < Duration::from_millis(1950),
        "sinks shut down {sinks_started:?} in"
    );
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        err.contains("sink `broker-down` did not finish within 2s"),
        "{err}"
    );
    let written = std::fs::read_to_string(dir.path().join("l.jsonl")).unwrap();
    assert_eq!(
        written.lines().filter(|l| l.contains("\"id\":")).count(),
        1,
        "{written}"
    );
    proxy.set(Fault::None);
}

#[tokio::test]
async fn the_table_going_away_and_coming_back_loses_and_doubles_nothing() {
    let (conf, table, proxy) = behind_proxy("down").await;
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), None);
    for _ in 0..3 {
        call(&client).await.unwrap();
    }
    flushed(&client).await;
    // Unreachable: calls go on, their increments wait.
    proxy.set(Fault::Down);
    for _ in 0..4 {
        call(&client).await.unwrap();
    }
    assert!(!client.meter().flush_fleet().await);
    assert_eq!(client.meter().fleet_stats().unwrap().unwritten_items, 2);
    // Back, but every answer is lost after the write is applied: the SDK's retries
    // and the flushes send the same sequence numbers again; each write counts once.
    proxy.set(Fault::LoseResponses);
    let forwarded = proxy.forwarded();
    assert!(!client.meter().flush_fleet().await);
    assert!(
        proxy.forwarded() > forwarded,
        "the writes reached the table"
    );
    assert!(!client.meter().flush_fleet().await);
    proxy.set(Fault::None);
    for _ in 0..2 {
        call(&client).await.unwrap();
    }
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    for scope_ in [
        BudgetScope::Client,
        BudgetScope::endpoint(REALTIME_ENDPOINT),
    ] {
        let s = scope(&status, &scope_);
        assert_eq!((s.spent_usd, s.calls), (dec("0.09"), 9), "{scope_}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_one_3_instance_variant_are_allocated_its_instances_once() {
    // SageMaker is the in-process fake (its calls are held as long as the test
    // likes); the fleet table is on the emulator. The four processes share one
    // manual clock, which moves only when the test moves it: the instance time
    // allocated is what the clock says, not what the host's scheduler made of it.
    let fleet = FakeFleet::start("sharing", "three", 3).await;
    let fake = &fleet.fake;
    let (clock, time) = manual_clock();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let process = fleet.process(None).await.time_source(time.clone());
        clients.push(process.build().unwrap());
    }
    // Each process keeps 3 calls in flight: 12 calls on 3 instances.
    fake.hold();
    let mut calls = tokio::task::JoinSet::new();
    for client in &clients {
        for _ in 0..3 {
            let client = client.clone();
            calls.spawn(async move { call_endpoint(&client, "three").await });
        }
    }
    fake.wait_for_invocations(12).await;
    // Every call is in flight and the clock has not moved since they began: no
    // instance time is allocated yet, however long the flushes below take. Two
    // rounds of flushes, each process's after the one before it: in the first
    // each publishes its 3 calls in flight (its load, the clock standing still);
    // in the second each reads the other three's back, 3 + 3 + 3 = 9. The flush
    // loops' own flushes meanwhile publish and read the same.
    for _ in 0..2 {
        for client in &clients {
            flushed(client).await;
        }
    }
    // The calls are served for 3 s, and end.
    clock.advance(Duration::from_secs(3));
    fake.release();
    let mut computes = Vec::new();
    while let Some(cost) = calls.join_next().await {
        computes.push(compute_usd(&cost.unwrap()));
    }
    for client in &clients {
        client.meter().shutdown().await.unwrap();
    }
    // By hand: 12 calls in flight on 3 instances for 3 s, each call served by
    // 3/12 = 1/4 of an instance: 1/4 × 3 s = 0.75 instance-seconds a call, at
    // $0.23 an instance-hour (ml.m5.xlarge, us-east-1) 0.75 / 3,600 × $0.23 =
    // $0.0000479166…, $0.000047916666 to the pico-dollar (rounded down). The
    // twelve: 9 instance-seconds, the 3 instances' 3 s once, $0.000574999992
    // ($0.000575 less the rounding). A process that had not read the others' 9
    // calls would allocate each of its 3 calls 1 instance, the 3 instances' 3 s
    // alone: 3 / 3,600 × $0.23 = $0.000191666666 a call, $0.002299999992 for
    // the four processes, four times the bill.
    let allocated: Decimal = computes.iter().sum();
    assert_eq!(
        computes,
        vec![dec("0.000047916666"); 12],
        "allocated ${allocated} for $0.000575 of instance time"
    );
    assert_eq!(allocated, dec("0.000574999992"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_idle_a_while_does_not_share_the_instances_with_calls_long_ended() {
    // One instance. Process A calls once and goes idle while B has 8 calls in
    // flight: A's last write (its load falling to 0) reads B's 8. B's calls end,
    // and both are idle for a while. Then A calls alone for 400 ms.
    let fleet = FakeFleet::start("idle", "one", 1).await;
    let fake = &fleet.fake;
    let flush = Duration::from_millis(200);
    let a = fleet.process(Some(flush)).await.build().unwrap();
    let b = fleet.process(Some(flush)).await.build().unwrap();
    call_endpoint(&a, "one").await;
    fake.hold();
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let b = b.clone();
        held.spawn(async move { call_endpoint(&b, "one").await });
    }
    fake.wait_for_invocations(9).await;
    tokio::time::sleep(flush * 4).await; // A publishes its 0, reading B's 8
    fake.release();
    while held.join_next().await.is_some() {}
    // B publishes its 0; A's reading of B's 8 is kept ten flush intervals, then
    // forgotten.
    tokio::time::sleep(flush * 14).await;
    fake.next_latencies(&[Duration::from_millis(400)]);
    let alone = compute_usd(&call_endpoint(&a, "one").await);
    for client in [&a, &b] {
        client.meter().shutdown().await.unwrap();
    }
    // Alone on the instance: at least the model's 400 ms of it at $0.23/h (a
    // slow host only adds to the call's time), not a ninth (as if B's 8 calls of
    // seconds ago were still in flight).
    let model = dec("0.23") * hours(Duration::from_millis(400));
    assert!(
        alone >= model * dec("0.9"),
        "allocated ${alone} for a 400 ms call alone (${model})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amortized_allocation_charges_the_instances_once_across_the_fleet() {
    use sagemeter::billing::Allocation;

    let fleet = FakeFleet::start("amortized", "two", 2).await;
    let rate = dec("0.23");
    let flush = Duration::from_millis(100);
    let client = || async {
        fleet
            .process(Some(flush))
            .await
            .allocation(Allocation::Amortized)
            .build()
            .unwrap()
    };
    let (a, b) = (client().await, client().await);
    // Each process calls every 20 ms: each alone would charge the two instances'
    // whole cost, together twice that without the fleet.
    let charged = charged_after_warm_up([(a, None), (b, None)], "two").await;
    charged.assert_charges_instances_once(2, rate, flush, "");
}

/// What two processes' receipts charged for compute, calling `endpoint` (each
/// its variant, when given) every 20 ms, and over what time.
struct ChargedTogether {
    charged: Decimal,
    /// The counted window on the monotonic clock.
    window: Duration,
    /// The same on the wall clock, which receipts measure gaps on and a loaded VM
    /// can step.
    wall_window: Duration,
}

/// Both processes call every 20 ms for 3 s; the first second is a warm-up, not
/// counted. A process's share of the fleet's calls is known from the answer to its
/// second write (a flush interval apart, each after up to an interval of calls);
/// until then both charge their gaps whole. That warm-up is three intervals when
/// the emulator answers at once, and was measured at four with the two cores
/// loaded by other tests, so what is compared is the 2 s after the first second.
/// Both are shut down after.
async fn charged_after_warm_up(
    processes: [(Client, Option<&'static str>); 2],
    endpoint: &'static str,
) -> ChargedTogether {
    let started = std::time::Instant::now();
    let started_wall = std::time::SystemTime::now();
    let warm_up = Duration::from_secs(1);
    let mut tasks = tokio::task::JoinSet::new();
    for (c, variant) in processes.clone() {
        tasks.spawn(async move {
            let mut charged = Decimal::ZERO;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while started.elapsed() < warm_up + Duration::from_secs(2) {
                tick.tick().await;
                let counted = started.elapsed() >= warm_up;
                let mut call = c.invoke_endpoint().endpoint_name(endpoint);
                if let Some(variant) = variant {
                    call = call.target_variant(variant);
                }
                let response = call.body(Blob::new("{}")).send().await.unwrap();
                let cost = compute_usd(response.cost());
                if counted {
                    charged += cost;
                }
            }
            charged
        });
    }
    let mut charged = Decimal::ZERO;
    while let Some(part) = tasks.join_next().await {
        charged += part.unwrap();
    }
    let window = started.elapsed() - warm_up;
    let wall_window = std::time::SystemTime::now()
        .duration_since(started_wall)
        .unwrap_or_default()
        .saturating_sub(warm_up);
    for (c, _) in &processes {
        c.meter().shutdown().await.unwrap();
    }
    ChargedTogether {
        charged,
        window,
        wall_window,
    }
}

impl ChargedTogether {
    /// The receipts charged `instances` instances at `rate` an hour over the
    /// window once: at most their cost on the wall clock plus a lag of three
    /// flush intervals of them (each process's first counted call is charged its
    /// gap back into the warm-up, and a flush's news of the other's calls is up to
    /// an interval old), at least 0.8 of it.
    fn assert_charges_instances_once(
        &self,
        instances: u32,
        rate: Decimal,
        flush: Duration,
        why: &str,
    ) {
        let charged = self.charged;
        let instances = Decimal::from(instances);
        let instances_cost = instances * rate * hours(self.window);
        let wall_instances_cost = instances * rate * hours(self.window.max(self.wall_window));
        let lag = instances * rate * hours(flush * 3);
        assert!(
            charged <= wall_instances_cost + lag,
            "charged ${charged} for ${instances_cost} of instance time (${wall_instances_cost} \
             on the wall clock, +${lag})"
        );
        assert!(
            charged >= instances_cost * dec("0.8"),
            "charged ${charged} for ${instances_cost} of instance time{why}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amortized_allocation_charges_each_variant_once_when_processes_call_different_ones() {
    use sagemeter::billing::Allocation;
    use sagemeter::pricing::PriceKey;

    // Endpoint `ab`: variants A and B, each one ml.m5.xlarge at $0.23/h. One
    // process calls only A (TargetVariant), the other only B. AWS bills both
    // instances: 2 x 0.23 = $0.46/h. Each process made all of its variant's
    // calls, so its share of them is 1 and it charges its variant's instance
    // whole: 0.23 + 0.23 = $0.46/h in all. (A share of the endpoint's calls,
    // 1/2 each, would charge 0.115 + 0.115 = $0.23/h, half the bill.)
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("variants");
    create_table(&conf, &table).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "ab",
        vec![
            FakeVariant::instance("A", "ml.m5.xlarge", 1),
            FakeVariant::instance("B", "ml.m5.xlarge", 1),
        ],
    );
    let rate = dec("0.23");
    let flush = Duration::from_millis(100);
    let region = "us-east-1";
    let client = || async {
        Client::builder(&fake.sdk_config().await)
            .without_discovery()
            .without_metrics()
            .endpoint_profile(EndpointProfile::new(
                "ab",
                vec![
                    VariantProfile::instance("A", "ml.m5.xlarge", 1),
                    VariantProfile::instance("B", "ml.m5.xlarge", 1),
                ],
            ))
            .price_override(PriceKey::hosting(region, "ml.m5.xlarge"), rate)
            .price_override(
                PriceKey::DataIn {
                    region: region.into(),
                },
                dec("0.016"),
            )
            .price_override(
                PriceKey::DataOut {
                    region: region.into(),
                },
                dec("0.016"),
            )
            .fleet(
                on_table(&table)
                    .dynamodb_client(ddb.clone())
                    .flush_every(flush),
            )
            .allocation(Allocation::Amortized)
            .build()
            .unwrap()
    };
    let (a, b) = (client().await, client().await);
    // As in the test above: every 20 ms each, the first second a warm-up, the
    // 2 s after it counted: both instances over the window, 2 x $0.23/h x its
    // hours.
    let charged = charged_after_warm_up([(a, Some("A")), (b, Some("B"))], "ab").await;
    charged.assert_charges_instances_once(
        2,
        rate,
        flush,
        ": each variant's instance is to be charged whole by the one process calling it",
    );
}

async fn call_endpoint(client: &Client, endpoint: &str) -> Cost {
    client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap()
        .cost()
        .clone()
}

#[tokio::test]
async fn the_emulator_stopped_and_a_new_one_started_gets_every_kept_increment_once() {
    // A private emulator behind the proxy. moto keeps its tables in memory, so the
    // one started after the stop is empty: what must arrive there, each once, is
    // every increment the process kept while no emulator answered.
    // SageMaker stays on the shared emulator.
    let sagemaker = Emulator::shared().sdk_config().await;
    let first = Emulator::start_unseeded();
    let conf = first.sdk_config().await;
    let table = table_name("restart");
    create_table(&conf, &table).await.unwrap();
    let proxy = FaultProxy::start(&first.endpoint_url).await;
    let client = per_call_client(&sagemaker, proxied(&table, &proxy, &conf), None);
    for _ in 0..2 {
        call(&client).await.unwrap();
    }
    flushed(&client).await;
    drop(first); // stopped: its port refuses connections
    for _ in 0..3 {
        call(&client)
            .await
            .expect("calls go on while the table is down");
    }
    assert!(!client.meter().flush_fleet().await);
    let second = Emulator::start_unseeded();
    let conf = second.sdk_config().await;
    create_table(&conf, &table).await.unwrap();
    proxy.set_upstream(&second.endpoint_url);
    call(&client).await.unwrap();
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    for scope_ in [
        BudgetScope::Client,
        BudgetScope::endpoint(REALTIME_ENDPOINT),
    ] {
        let s = scope(&status, &scope_);
        assert_eq!((s.spent_usd, s.calls), (dec("0.04"), 4), "{scope_}");
    }
}

#[tokio::test]
async fn a_lease_of_a_period_that_ended_is_given_back_at_the_next_flush() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use std::time::UNIX_EPOCH;

    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("hourly");
    create_table(&conf, &table).await.unwrap();
    // 2027-01-15 10:59:50 UTC, ten seconds before the hour ends.
    let time = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_010_790));
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Hour, "1", "0.01");
    let client = Client::builder(&conf)
        .without_discovery()
        .without_metrics()
        .time_source(SharedTimeSource::new(time.clone()))
        .usage_charges(
            REALTIME_ENDPOINT,
            UsageCharges::default().per_1000_calls(dec("10")).alone(),
        )
        .fleet(on_table(&table).lease_percent(10))
        .budget(budget)
        .build()
        .unwrap();
    call(&client).await.unwrap(); // leases $0.10 of hour 10
    flushed(&client).await;
    let hour = |status: &[FleetScopeStatus]| {
        status
            .iter()
            .find(|s| s.scope == BudgetScope::Client && s.period == BudgetPeriod::Hour)
            .cloned()
            .unwrap()
    };
    let before = hour(&fleet_status(&conf, &table).await.unwrap());
    assert_eq!(
        (before.leases, before.committed_usd),
        (1, Some(dec("0.1"))),
        "{before:?}"
    );
    time.advance(Duration::from_secs(20)); // 11:00:10: hour 10 has ended
    flushed(&client).await;
    let after = hour(&fleet_status(&conf, &table).await.unwrap());
    assert_eq!(after.period_start, before.period_start);
    assert_eq!(
        (after.leases, after.committed_usd, after.spent_usd),
        (0, Some(dec("0.01")), dec("0.01")),
        "the unused $0.09 went back: {after:?}"
    );
    client.meter().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipts_accrual_is_the_fleets_instances_against_every_processs_allocation() {
    let fleet = FakeFleet::start("accrual", "pair", 2).await;
    let rate = dec("0.23");
    let client = || async { fleet.process(None).await.build().unwrap() };
    let (a, b) = (client().await, client().await);
    let mut receipts = Vec::new();
    for _ in 0..5 {
        receipts.push(call_endpoint(&a, "pair").await);
        receipts.push(call_endpoint(&b, "pair").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // b writes all it has; then a call of a's is written (by this flush or by a's
    // flush loop, whichever comes first), and that write reads b's figures back.
    flushed(&b).await;
    receipts.push(call_endpoint(&a, "pair").await);
    flushed(&a).await;
    let last = call_endpoint(&a, "pair").await;
    let after = std::time::SystemTime::now();
    receipts.push(last.clone());
    let accrual = last.accrual.clone().expect("an instance variant accrues");
    // Allocated: every receipt of both processes, to the pico-dollar.
    let allocated: Decimal = receipts.iter().map(compute_usd).sum();
    assert_eq!(accrual.allocated_usd, allocated);
    // Accrued: 2 instances × $0.23/h since the fleet's first call (the earliest
    // receipt's start, to the millisecond) until this receipt was made.
    let first = receipts.iter().map(|c| c.at).min().unwrap();
    let per_ms = Decimal::from(2) * rate / Decimal::from(3_600_000);
    let ms = |d: chrono::TimeDelta| Decimal::from(d.num_milliseconds());
    let at_least = (ms(last.at - first) + Decimal::from(last.usage.latency.as_millis() as u64)
        - Decimal::ONE)
        * per_ms;
    let at_most =
        (ms(chrono::DateTime::<chrono::Utc>::from(after) - first) + Decimal::ONE) * per_ms;
    assert!(
        accrual.accrued_usd >= at_least.round_dp(12) && accrual.accrued_usd <= at_most.round_dp(12),
        "accrued {} not within {at_least}..{at_most}",
        accrual.accrued_usd
    );
    assert_eq!(
        accrual.utilisation,
        Some((accrual.allocated_usd / accrual.accrued_usd).round_dp(6))
    );
    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
}

#[tokio::test]
async fn after_shutdown_a_fleet_budget_refuses_calls_instead_of_spending_a_lease_given_back() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("after-shutdown");
    create_table(&conf, &table).await.unwrap();
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05, five calls) at a time.
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "0.10",
        "0.01",
    );
    let fleet = on_table(&table).lease_percent(50);
    let client = per_call_client(&conf, fleet, Some(budget));
    // One call: $0.01 of the $0.05 lease used, $0.04 left in it.
    call(&client).await.unwrap();
    client.meter().shutdown().await.unwrap();

    // The lease was given back: what was left of it is not spent, and no new
    // lease is taken that no flush would give back.
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd, dec("0.01"));
    assert_eq!(endpoint.committed_usd, Some(dec("0.01")));
    assert_eq!(endpoint.leases, 0);
}

#[tokio::test]
async fn unpriced_calls_count_against_a_fleet_budget_at_their_estimate_not_at_zero() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("unpriced");
    create_table(&conf, &table).await.unwrap();
    // $1 a day, each call estimated at $0.05; leased 10 % ($0.10) at a time.
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "1",
        "0.05",
    );
    let client = Client::builder(&conf)
        .without_discovery()
        .without_metrics()
        .price_source(NoPrices)
        .fleet(on_table(&table).lease_percent(10))
        .budget(budget)
        .build()
        .unwrap();
    for _ in 0..3 {
        let cost = call(&client).await.unwrap();
        assert!(!cost.is_fully_priced());
        assert_eq!(cost.cost_usd, Decimal::ZERO, "nothing is priced");
    }
    // Each call counts at its $0.05 estimate, as the process's own budget counts
    // it: $0.15, not $0.
    assert_eq!(client.meter().budget_status()[0].spent_usd, dec("0.15"));
    client.meter().shutdown().await.unwrap();

    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    // The receipts' spend is $0; the budget was charged 3 × $0.05 beyond them,
    // and once the leases are given back the fleet has committed exactly that.
    assert_eq!(endpoint.spent_usd, Decimal::ZERO);
    assert_eq!(endpoint.calls, 3);
    assert_eq!(endpoint.unpriced_charge_usd, dec("0.15"));
    assert_eq!(endpoint.leases, 0);
    assert_eq!(endpoint.committed_usd, Some(dec("0.15")));
    assert_eq!(endpoint.remaining_usd, Some(dec("0.85")));
}

#[tokio::test]
async fn a_fleet_budget_on_a_tag_key_holding_an_equals_sign_is_refused_when_built() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    // `a=b` = `c` and `a` = `b=c` would both be the table's `tag:a=b=c`.
    let budget =
        Budget::enforce(BudgetScope::tag("a=b", "c"), BudgetPeriod::Day, dec("1")).unwrap();
    let err = Client::builder(&conf)
        .fleet(on_table("never-created"))
        .budget(budget.clone())
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("`a=b`"), "{err}");
    // Without a fleet, the same budget is fine: nothing keys it by that text.
    Client::builder(&conf).budget(budget).build().unwrap();
}

/// DynamoDB refuses a partition key over 2,048 bytes: a fleet budget whose item
/// would have one is refused when the client is built, not by every lease and
/// flush of it at run time.
#[tokio::test]
async fn a_fleet_budget_whose_table_key_dynamodb_would_refuse_is_refused_when_built() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let build = |scope: BudgetScope| {
        Client::builder(&conf)
            .fleet(on_table("never-created"))
            .budget(Budget::enforce(scope, BudgetPeriod::Day, dec("1")).unwrap())
            .build()
    };
    // `scope#tag:t=` (12 bytes) and a 2,100-byte value: 2,112 bytes.
    let err = build(BudgetScope::tag("t", "v".repeat(2100))).unwrap_err();
    assert!(
        matches!(&err, Error::Config(c) if c.option == "ClientBuilder::fleet"),
        "{err:?}"
    );
    assert!(err.to_string().contains("2112 bytes"), "{err}");
    assert!(
        !err.to_string().contains(&"v".repeat(100)),
        "the value is not quoted whole: {err}"
    );
    // `scope#endpoint:` (15 bytes) and a 2,034-byte name: 2,049 bytes.
    let err = build(BudgetScope::endpoint("e".repeat(2034))).unwrap_err();
    assert!(matches!(&err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("2049 bytes"), "{err}");
    // 2,048 bytes exactly are kept: `scope#tag:t=` and 2,036 bytes.
    build(BudgetScope::tag("t", "v".repeat(2036))).unwrap();
    // Without a fleet, nothing keys the budget by that text.
    Client::builder(&conf)
        .budget(
            Budget::enforce(
                BudgetScope::tag("t", "v".repeat(2100)),
                BudgetPeriod::Day,
                dec("1"),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_short_of_lease_at_once_take_one_lease_between_them() {
    let (conf, table, proxy) = behind_proxy("one-lease").await;
    // $1 a day at $0.01 a call, leased 20 % ($0.20, twenty calls) at a time.
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "1",
        "0.01",
    );
    let client = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_percent(20),
        Some(budget),
    );
    // The table answers after 300 ms: the twelve calls, begun together with no
    // lease held, are all short of one while the first lease request is out.
    proxy.set(Fault::Slow(Duration::from_millis(300)));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = client.clone();
        calls.spawn(async move { call(&client).await });
    }
    let mut spent = Decimal::ZERO;
    while let Some(cost) = calls.join_next().await {
        spent += cost.unwrap().expect("the lease covers every call").cost_usd;
    }
    proxy.set(Fault::None);
    // 12 calls × $0.01 = $0.12 fit in the first $0.20 lease: the others waited
    // for it, found it covered them, and leased nothing (twelve leases of $0.20
    // would have committed the whole $1 after five, and refused the rest).
    assert_eq!(spent, dec("0.12"));
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(
        (endpoint.committed_usd, endpoint.leases),
        (Some(dec("0.2")), 1),
        "{endpoint:?}"
    );
    client.meter().shutdown().await.unwrap();
    // Given back: committed ends at the $0.12 spent.
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(
        (endpoint.spent_usd, endpoint.committed_usd, endpoint.leases),
        (dec("0.12"), Some(dec("0.12")), 0)
    );
}

/// `fleet` leasing `percent` of a budget at a time, a lease lapsing 2 s after
/// its last renewal and taken back as soon as it lapsed (one clock: no skew).
fn short_leases(fleet: FleetConfig, percent: u32) -> FleetConfig {
    fleet
        .lease_percent(percent)
        .lease_ttl(Duration::from_secs(2))
        .flush_every(Duration::from_millis(100))
        .clock_skew(Duration::ZERO)
}

/// `client`'s spend flushed and `client` shut down: the client budget's day
/// as the table then holds it.
async fn client_budget_after_shutdown(
    client: &Client,
    conf: &aws_types::SdkConfig,
    table: &str,
) -> FleetScopeStatus {
    flushed(client).await;
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(conf, table).await.unwrap();
    scope(&status, &BudgetScope::Client).clone()
}

/// A client (one call a time) on `fleet` with [`short_leases`] of `percent`,
/// under a client budget of `limit` USD a day at $0.01 a call, on the clock
/// `time` (a lease lapses when the test
/// moves the clock past its end, not when the host gets round to it), whose
/// calls wait up to 30 s for a lease: the wait is only a bound (a call is
/// leased as soon as the table answers, and refused at once when it has no
/// room), and a loaded host took longer than 2 s to lease, take a lapsed
/// lease back and lease again (the SDK's retry of a lost answer alone waits
/// up to 1 s): the call was refused as if the table were unreachable.
fn short_lease_client_on(
    conf: &aws_types::SdkConfig,
    fleet: FleetConfig,
    limit: &str,
    percent: u32,
    time: SharedTimeSource,
) -> Client {
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, limit, "0.01");
    let fleet = short_leases(fleet, percent).lease_wait(Duration::from_secs(30));
    per_call_builder(conf, fleet, Some(budget))
        .time_source(time)
        .build()
        .unwrap()
}

/// `count` calls by `client` in turn, each of which must go through.
async fn calls_in_turn(client: &Client, count: usize) {
    for i in 0..count {
        call(client)
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
}

/// `client` (on `short_leases`, its table behind `proxy`) calls once and
/// writes it; then its table is unreachable, it calls once more within its
/// lease (not written), and is silent past the lease's end: 2.2 s on `clock`
/// (the clients' clock, which stands still until then).
async fn cut_off_past_its_lease(
    client: &Client,
    proxy: &FaultProxy,
    clock: &aws_smithy_async::test_util::ManualTimeSource,
) {
    call(client).await.unwrap();
    flushed(client).await;
    proxy.set(Fault::Down);
    call(client).await.unwrap();
    clock.advance(Duration::from_millis(2200));
}

/// A process made by `client` on `a` (its table behind `proxy`) is
/// [`cut_off_past_its_lease`]; then another, made by `client` on `table`
/// direct, makes `calls` calls that must go through and shuts down. Returns
/// the cut-off process. `clock`: the clients' clock (see
/// [`cut_off_past_its_lease`]).
async fn cut_off_then_reclaimed(
    client: impl Fn(FleetConfig) -> Client,
    a: FleetConfig,
    table: &str,
    proxy: &FaultProxy,
    calls: usize,
    clock: &aws_smithy_async::test_util::ManualTimeSource,
) -> Client {
    let cut_off = client(a);
    cut_off_past_its_lease(&cut_off, proxy, clock).await;
    let other = client(on_table(table));
    calls_in_turn(&other, calls).await;
    other.meter().shutdown().await.unwrap();
    cut_off
}

#[tokio::test]
async fn a_live_process_whose_lapsed_lease_was_reclaimed_adds_its_late_spend_to_what_is_committed()
{
    let (conf, table, proxy) = behind_proxy("reclaimed").await;
    // $0.05 a day at $0.01 a call; the whole limit is leased at a time, and a
    // lease lapses 2 s after its last renewal. Both processes on one clock
    // that moves only when the test moves it: the lease holds until the test
    // moves past its end, however slowly the host runs the calls and flushes
    // before that (renewed or lapsed here early, it would not be the lease
    // below).
    let (clock, time) = manual_clock();
    let client =
        |fleet: FleetConfig| short_lease_client_on(&conf, fleet, "0.05", 100, time.clone());
    // It leases the whole $0.05, spends $0.01 and writes it; then its table is
    // unreachable: one more call within its lease ($0.02 spent, $0.01 of it
    // not written), and it is silent past its lease's end.
    //
    // Another process finds no room, reclaims the lapsed lease as the table
    // holds it (granted $0.05, used $0.01: committed $0.05 − $0.04 = $0.01),
    // leases the $0.04 left and spends it.
    let cut_off = cut_off_then_reclaimed(
        client,
        proxied(&table, &proxy, &conf),
        &table,
        &proxy,
        4,
        &clock,
    )
    .await;

    // The table answers again: the cut-off process's late $0.01 is spent; its
    // write finds the lease gone and adds it to what is committed.
    proxy.set(Fault::None);
    let fleet = client_budget_after_shutdown(&cut_off, &conf, &table).await;
    // Spent: 2 × $0.01 + 4 × $0.01 = $0.06 (over the $0.05 limit by the call the
    // cut-off process made while the table could not hear of it). Committed: the
    // reclaim's $0.01, the second lease's $0.04 (all spent), the late $0.01.
    assert_eq!((fleet.spent_usd, fleet.calls), (dec("0.06"), 6));
    assert_eq!(fleet.committed_usd, Some(dec("0.06")), "{fleet:?}");
    assert_eq!(fleet.leases, 0);
}

#[tokio::test]
async fn spend_under_a_reclaimed_lease_is_written_before_a_new_lease_is_taken() {
    let (conf, table, proxy) = behind_proxy("reclaimed-then-leased").await;
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05) at a time; a lease lapses
    // 2 s after its last renewal and is taken back as soon as it lapsed. Both
    // processes on one clock that moves only when the test moves it (see
    // `cut_off_past_its_lease`), and their calls may wait 30 s for a lease
    // (A's requests may wait for a write held 1 s at the proxy).
    let (clock, time) = manual_clock();
    let client = |fleet: FleetConfig| short_lease_client_on(&conf, fleet, "0.10", 50, time.clone());
    let a = proxied(&table, &proxy, &conf);
    // A leases $0.05 (committed $0.05), spends $0.01 and writes it (its lease's
    // use $0.01). The table is unreachable for A: one more call within its
    // lease ($0.02 spent, $0.01 of it not written), then A is silent past its
    // lease's end (here it gives up the $0.03 of the lease it had not spent).
    //
    // B leases $0.05 (committed $0.10) and spends it in five calls. Its sixth
    // finds no room and takes back A's lapsed lease as the table holds it
    // (granted $0.05, used $0.01): committed $0.10 + $0.01 − $0.05 = $0.06; it
    // leases the $0.04 left (committed $0.10) and spends $0.01. At shutdown it
    // gives back the $0.03 it did not spend: committed $0.07, which is what the
    // table knows was spent (A's $0.01 written, B's $0.06).
    let cut_off = cut_off_then_reclaimed(client, a, &table, &proxy, 6, &clock).await;

    // The table answers A's lease requests, but throttles its writes of spend
    // to the fleet's item (the client budget's): the late $0.01 cannot be
    // written, so no new lease is asked for and the call is refused (the table
    // cannot be used); the table still holds $0.07 committed and no lease.
    const FLEET_SPEND: &[&str] = &[":spent", "scope#fleet"];
    proxy.set(Fault::ThrottleWhere(FLEET_SPEND));
    let unwritten = call(&cut_off).await;
    assert!(
        matches!(unwritten, Err(Error::BudgetUnavailable { .. })),
        "{unwritten:?}"
    );
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.committed_usd, fleet.leases),
        (dec("0.07"), Some(dec("0.07")), 0)
    );

    // Its writes of spend to the fleet's item now go through 1 s late: a call of A
    // needs a new lease before its flush has written the late $0.01. That
    // $0.01 is spend no lease of the table covers (its lease was taken back):
    // written first, it adds to what is committed ($0.07 + $0.01 = $0.08), so A
    // is leased only the $0.02 left (committed $0.10). Two calls spend it; the
    // third would bring the fleet to $0.11 and is refused. (Had the late $0.01
    // counted as the new lease's use, A would have been leased $0.03, spent all
    // of it, and the fleet $0.11.)
    proxy.set(Fault::SlowWhere(FLEET_SPEND, Duration::from_secs(1)));
    for i in 0..2 {
        call(&cut_off)
            .await
            .unwrap_or_else(|e| panic!("call {i} after the table answers: {e}"));
    }
    let refused = call(&cut_off).await;
    assert!(
        matches!(
            refused,
            Err(Error::BudgetExceeded {
                fleet_wide: true,
                ..
            })
        ),
        "{refused:?}"
    );
    proxy.set(Fault::None);
    let fleet = client_budget_after_shutdown(&cut_off, &conf, &table).await;
    // Spent: A 2 × $0.01 + 2 × $0.01, B 6 × $0.01: $0.10 in 10 calls, the
    // limit. Committed: $0.08 and A's second lease of $0.02, all spent (nothing
    // given back): $0.10.
    assert_eq!((fleet.spent_usd, fleet.calls), (dec("0.10"), 10));
    assert_eq!(fleet.committed_usd, Some(dec("0.10")), "{fleet:?}");
    assert_eq!(fleet.leases, 0);
}

/// Spend recorded in a fleet budget's item while a call waits for its lease
/// (calls through the SDK hook, which reserve against the whole limit and
/// wait for no lease) is no reason to refuse the call: only what was recorded
/// before it began waiting is written first, the rest counts against the new
/// lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_recorded_while_a_call_waits_for_its_lease_does_not_keep_the_lease_from_it() {
    let (conf, table, proxy) = behind_proxy("recorded-while-leasing").await;
    // $100 a day at $0.01 a call: far more than the calls below spend.
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "100", "0.01");
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), Some(budget));
    // Each write of spend to the fleet's item takes 100 ms at the proxy; calls
    // through the SDK hook go on settling $0.01 each, one after the other, all
    // the while: every write leaves newer spend behind it.
    const FLEET_SPEND: &[&str] = &[":spent", "scope#fleet"];
    proxy.set(Fault::SlowWhere(FLEET_SPEND, Duration::from_millis(100)));
    let sdk = crate::support::intercepted(&conf, client.meter());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let made = std::sync::Arc::new(AtomicU32::new(0));
    let hooked = {
        let (stop, made) = (stop.clone(), made.clone());
        tokio::spawn(async move {
            let mut calls = 0u32;
            while !stop.load(Ordering::Relaxed) {
                sdk.invoke_endpoint()
                    .endpoint_name(REALTIME_ENDPOINT)
                    .content_type("application/json")
                    .body(Blob::new(r#"{"inputs":"hook"}"#))
                    .send()
                    .await
                    .unwrap();
                calls += 1;
                made.store(calls, Ordering::Relaxed);
            }
            calls
        })
    };
    // Ten calls through the hook before the metered call, however long the
    // host takes over them (a 300 ms wait made more than ten on an idle host,
    // fewer on a loaded one).
    while made.load(Ordering::Relaxed) < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The metered call has no lease: it writes the spend recorded before it,
    // then is leased.
    let leased = call(&client).await;
    assert!(leased.is_ok(), "{leased:?}");
    stop.store(true, Ordering::Relaxed);
    let hook_calls = hooked.await.unwrap();
    assert!(hook_calls > 10, "{hook_calls} calls through the hook");
    proxy.set(Fault::None);
    let fleet = client_budget_after_shutdown(&client, &conf, &table).await;
    // Every call at $0.01: the hook's and the metered one. What the lease did
    // not use is given back at shutdown: committed is what was spent.
    let spent = Decimal::from(hook_calls + 1) * dec("0.01");
    assert_eq!((fleet.spent_usd, fleet.leases), (spent, 0), "{fleet:?}");
    assert_eq!(fleet.committed_usd, Some(spent), "{fleet:?}");
}

/// Spend written to a fleet budget's item while its process holds no lease
/// (calls through the SDK hook, which wait for none) is added to what the
/// budget has committed apart from any lease: the process's next lease asks
/// the table for none of it again, and the process spends the room the table
/// has left to the cent.
#[tokio::test]
async fn spend_written_without_a_lease_is_not_asked_of_the_table_again() {
    hook_calls_without_a_lease_then_metered_calls(true).await;
}

/// As above, the hook calls' spend still unwritten when the metered call
/// leases: written first (without a lease), then not asked for again.
#[tokio::test]
async fn spend_written_without_a_lease_just_before_a_lease_is_not_asked_for() {
    hook_calls_without_a_lease_then_metered_calls(false).await;
}

/// 60 calls through the SDK hook with no lease, then metered calls until one
/// is refused, under $1 a day at $0.01 a call leased 5 % ($0.05) at a time;
/// `written_first`: the hook calls are written before the metered calls
/// (else the flush loop, every hour, leaves them to the first metered call's
/// write before its lease).
async fn hook_calls_without_a_lease_then_metered_calls(written_first: bool) {
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("unleased-then-leased");
    create_table(&conf, &table).await.unwrap();
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "1", "0.01");
    let mut fleet = on_table(&table).lease_percent(5);
    if !written_first {
        fleet = fleet
            .flush_every(Duration::from_secs(3600))
            .lease_ttl(Duration::from_secs(3 * 3600));
    }
    let client = per_call_client(&conf, fleet, Some(budget));
    let sdk = crate::support::intercepted(&conf, client.meter());
    for _ in 0..60 {
        sdk.invoke_endpoint()
            .endpoint_name(REALTIME_ENDPOINT)
            .content_type("application/json")
            .body(Blob::new(r#"{"inputs":"hook"}"#))
            .send()
            .await
            .unwrap();
    }
    if written_first {
        flushed(&client).await;
        // 60 × $0.01 = $0.60 spent and committed, no lease: $1 − $0.60 =
        // $0.40 left to lease.
        let status = fleet_status(&conf, &table).await.unwrap();
        let fleet = scope(&status, &BudgetScope::Client);
        assert_eq!(fleet.committed_usd, Some(dec("0.60")), "{fleet:?}");
        assert_eq!(fleet.leases, 0, "{fleet:?}");
    }
    // The first metered call needs $0.01 leased (a lease's share, $0.05),
    // where asking for the hook calls' $0.60 again as well ($0.61) would
    // find $0.40 and be refused with the fleet at $0.60 of $1. The $0.40 left
    // is 40 calls, in eight leases of $0.05; the 41st would bring the
    // process's own spend to $1.01 and is refused without asking the table.
    for i in 0..40 {
        call(&client)
            .await
            .unwrap_or_else(|e| panic!("metered call {i}: {e}"));
    }
    let refused = call(&client).await;
    assert!(
        matches!(
            refused,
            Err(Error::BudgetExceeded { spent, .. }) if spent == dec("1.00")
        ),
        "{refused:?}"
    );
    // Spent $0.60 + 40 × $0.01 = $1.00, the limit, in 100 calls; committed
    // the hook calls' $0.60 and eight leases of $0.05, all spent.
    let fleet = client_budget_after_shutdown(&client, &conf, &table).await;
    assert_eq!(
        (fleet.spent_usd, fleet.calls, fleet.leases),
        (dec("1.00"), 100, 0),
        "{fleet:?}"
    );
    assert_eq!(fleet.committed_usd, Some(dec("1.00")), "{fleet:?}");
}

/// What a call counted as leased before its lease request (spend written
/// without a lease) is not granted again when the table does not answer and
/// the call is let through ([`WhenUnavailable::Allow`]): only what it was
/// still short of is.
#[tokio::test]
async fn spend_counted_as_leased_is_not_granted_again_when_the_lease_is_let_through() {
    let (conf, table, proxy) = behind_proxy("counted-then-allowed").await;
    // $1 a day at $0.01 a call, leased 5 % ($0.05) at a time; A's lease let
    // through holds an hour, past the end of the test.
    let budget = || enforced(BudgetScope::Client, BudgetPeriod::Day, "1", "0.01");
    let a = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf)
            .lease_percent(5)
            .lease_ttl(Duration::from_secs(3600))
            .when_unavailable(WhenUnavailable::Allow),
        Some(budget()),
    );
    // 60 calls through the SDK hook, no lease: $0.60 written, committed.
    let sdk = crate::support::intercepted(&conf, a.meter());
    for _ in 0..60 {
        sdk.invoke_endpoint()
            .endpoint_name(REALTIME_ENDPOINT)
            .content_type("application/json")
            .body(Blob::new(r#"{"inputs":"hook"}"#))
            .send()
            .await
            .unwrap();
    }
    flushed(&a).await;
    // A metered call needs 0.60 + 0.01 − 0 = $0.61 leased; $0.60 of it is
    // counted (written), and its request for the $0.01 left (a lease's
    // share, $0.05) is throttled until the wait ends: let through, with
    // $0.01 granted, 0.60 + 0.01 = $0.61 leased, all spent by the call.
    // (Granted the $0.61 it first wanted, 0.60 + 0.61 = $1.21, it would
    // have $0.60 left to spend that the table never leased it.)
    proxy.set(Fault::ThrottleWhere(&[":amount"]));
    call(&a).await.unwrap();
    proxy.set(Fault::None);
    // Its $0.01 written without a lease: committed $0.61, $0.39 left.
    flushed(&a).await;
    // B spends the $0.39 left in 39 calls (seven leases of $0.05 and one of
    // $0.04); its 40th finds no room.
    let b = per_call_client(&conf, on_table(&table).lease_percent(5), Some(budget()));
    let mut b_calls = 0;
    while call(&b).await.is_ok() {
        b_calls += 1;
        assert!(b_calls <= 100, "B is never refused");
    }
    assert_eq!(b_calls, 39);
    b.meter().shutdown().await.unwrap();
    // A's next call needs $0.01 more leased and the table has none: refused.
    // (With $1.21 leased it would spend on to its own $1: 39 calls more, the
    // fleet at $1.39.)
    let refused = call(&a).await;
    assert!(
        matches!(
            refused,
            Err(Error::BudgetExceeded {
                fleet_wide: true,
                ..
            })
        ),
        "{refused:?}"
    );
    // Spent: A 60 + 1 calls, B 39, × $0.01 = $1.00, the limit.
    let fleet = client_budget_after_shutdown(&a, &conf, &table).await;
    assert_eq!(
        (fleet.spent_usd, fleet.calls, fleet.committed_usd),
        (dec("1.00"), 100, Some(dec("1.00"))),
        "{fleet:?}"
    );
}

/// Spend recorded under a lease that was reclaimed, written without the lease
/// once the table answers again, is counted by the process once: its lapse
/// kept it as leased, and it is not counted leased again as written without
/// a lease.
#[tokio::test]
async fn a_write_sent_again_without_its_reclaimed_lease_is_not_counted_twice() {
    let (conf, table, proxy) = behind_proxy("resent-unleased").await;
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05) at a time; a lease lapses
    // 2 s after its last renewal and is taken back as soon as it lapsed; both
    // processes on one clock the test moves (see `cut_off_past_its_lease`).
    let (clock, time) = manual_clock();
    let client = |fleet: FleetConfig| short_lease_client_on(&conf, fleet, "0.10", 50, time.clone());
    // A leases $0.05, spends $0.01 and writes it; then, its table unreachable,
    // one more call within its lease ($0.02 spent, $0.01 of it not written),
    // and it is silent past its lease's end: it keeps $0.02 leased, its spend.
    // B leases $0.05 (committed $0.10) and spends it in five calls; its sixth
    // takes back A's lapsed lease as the table holds it (granted $0.05, used
    // $0.01: committed $0.06), leases the $0.04 left and spends $0.01; at
    // shutdown it gives back $0.03: committed $0.07.
    let cut_off = cut_off_then_reclaimed(
        client,
        proxied(&table, &proxy, &conf),
        &table,
        &proxy,
        6,
        &clock,
    )
    .await;
    // A's table answers: its write of the late $0.01 finds the lease gone and
    // is sent again without it, committed $0.07 + $0.01 = $0.08.
    proxy.set(Fault::None);
    flushed(&cut_off).await;
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.committed_usd, fleet.leases),
        (dec("0.08"), Some(dec("0.08")), 0),
        "{fleet:?}"
    );
    // A's $0.02 spent is all the table counts for it, and all it keeps as
    // leased: each call needs $0.01 leased. It is leased the $0.02 left
    // ($0.10 − $0.08), two calls; the third finds no room. (Had the
    // $0.01 sent again counted as leased a second time, A would have had
    // $0.01 to spend with no lease, then leased the $0.02: the fleet at $0.11.)
    for i in 0..2 {
        call(&cut_off)
            .await
            .unwrap_or_else(|e| panic!("call {i} after the table answers: {e}"));
    }
    let refused = call(&cut_off).await;
    assert!(
        matches!(
            refused,
            Err(Error::BudgetExceeded {
                fleet_wide: true,
                ..
            })
        ),
        "{refused:?}"
    );
    // Spent: A 2 × $0.01 + 2 × $0.01, B 6 × $0.01: $0.10, the limit, in 10
    // calls; committed $0.08 and A's lease of $0.02, all spent.
    let fleet = client_budget_after_shutdown(&cut_off, &conf, &table).await;
    assert_eq!(
        (fleet.spent_usd, fleet.calls),
        (dec("0.10"), 10),
        "{fleet:?}"
    );
    assert_eq!(fleet.committed_usd, Some(dec("0.10")), "{fleet:?}");
    assert_eq!(fleet.leases, 0);
}

/// The names of the attributes of every item of `table` that belong to one
/// process (its sequence numbers, load and lease), sorted.
async fn per_process_attributes(conf: &aws_types::SdkConfig, table: &str) -> Vec<String> {
    const PER_PROCESS: [&str; 8] = [
        "seq:",
        "lease_seq:",
        "inflight:",
        "inflight_at:",
        "inflight_for:",
        "lease_granted:",
        "lease_used:",
        "lease_until:",
    ];
    let items = aws_sdk_dynamodb::Client::new(conf)
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = items
        .items()
        .iter()
        .flat_map(|item| item.keys())
        .filter(|name| PER_PROCESS.iter().any(|p| name.starts_with(p)))
        .cloned()
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_process_shut_down_leaves_no_attribute_of_its_own_in_the_table() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("unmarked");
    create_table(&conf, &table).await.unwrap();
    let budget = || {
        enforced(
            BudgetScope::endpoint(REALTIME_ENDPOINT),
            BudgetPeriod::Day,
            "1",
            "0.01",
        )
    };
    // Two processes (as cron runs of the CLI are, one after the other), each
    // leasing from the endpoint's budget, publishing its load and writing its
    // spend.
    for run in 0..2 {
        let client = per_call_client(&conf, on_table(&table), Some(budget()));
        for _ in 0..3 {
            call(&client).await.unwrap();
        }
        flushed(&client).await;
        let running = per_process_attributes(&conf, &table).await;
        for kind in [
            "seq:",
            "lease_seq:",
            "inflight:",
            "inflight_for:",
            "lease_granted:",
        ] {
            assert!(
                running.iter().any(|name| name.starts_with(kind)),
                "run {run}: no {kind} while it runs: {running:?}"
            );
        }
        client.meter().shutdown().await.unwrap();
        let left = per_process_attributes(&conf, &table).await;
        assert!(left.is_empty(), "run {run} left {left:?}");
    }
    // Its spend stayed: 2 runs × 3 calls × $0.01.
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!((endpoint.spent_usd, endpoint.calls), (dec("0.06"), 6));
    assert_eq!(endpoint.committed_usd, Some(dec("0.06")));
}

#[tokio::test]
async fn two_budgets_of_one_scope_and_period_each_raise_their_own_alerts() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("two-budgets");
    create_table(&conf, &table).await.unwrap();
    let raised = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = |raised: &std::sync::Arc<std::sync::Mutex<Vec<(Decimal, u32)>>>| {
        let raised = raised.clone();
        move |a: &sagemeter::budget::BudgetAlert| {
            raised
                .lock()
                .unwrap()
                .push((a.limit_usd, a.threshold_percent))
        }
    };
    // On the same endpoint and day: an alerting $0.04 and an enforced $0.05
    // (leased whole), in each of two processes.
    let client = || {
        let watch = Budget::alert(
            BudgetScope::endpoint(REALTIME_ENDPOINT),
            BudgetPeriod::Day,
            dec("0.04"),
        )
        .unwrap()
        .on_alert(record(&raised));
        let cap = enforced(
            BudgetScope::endpoint(REALTIME_ENDPOINT),
            BudgetPeriod::Day,
            "0.05",
            "0.01",
        )
        .on_alert(record(&raised));
        Client::builder(&conf)
            .without_discovery()
            .without_metrics()
            .usage_charges(
                REALTIME_ENDPOINT,
                UsageCharges::default().per_1000_calls(dec("10")).alone(),
            )
            .fleet(on_table(&table).lease_percent(20))
            .budget(watch)
            .budget(cap)
            .build()
            .unwrap()
    };
    let (a, b) = (client(), client());
    // Five calls at $0.01 = $0.05: past 50 % ($0.02), 80 % ($0.032) and 100 %
    // ($0.04) of $0.04, and past 50 % ($0.025), 80 % ($0.04) and 100 % ($0.05) of
    // $0.05.
    for client in [&a, &b, &a, &b, &a] {
        call(client).await.unwrap();
    }
    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
    let mut raised = raised.lock().unwrap().clone();
    raised.sort();
    // Each threshold of each budget once, for the two processes.
    assert_eq!(
        raised,
        [
            (dec("0.04"), 50),
            (dec("0.04"), 80),
            (dec("0.04"), 100),
            (dec("0.05"), 50),
            (dec("0.05"), 80),
            (dec("0.05"), 100),
        ]
    );
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd, dec("0.05"));
    assert_eq!(endpoint.alerts_passed, [50, 80, 100]);
    let each: Vec<(Decimal, Vec<u32>)> = endpoint
        .budget_alerts
        .iter()
        .map(|b| (b.limit_usd, b.passed.clone()))
        .collect();
    assert_eq!(
        each,
        [
            (dec("0.04"), vec![50, 80, 100]),
            (dec("0.05"), vec![50, 80, 100])
        ]
    );
}

#[tokio::test]
async fn a_lease_that_lapsed_here_while_the_table_was_away_is_spent_again_once_it_answers() {
    let (conf, table, proxy) = behind_proxy("relapsed").await;
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05) at a time; a lease lapses
    // 2 s after its last renewal, and this process stops spending it 100 ms
    // before.
    // On a clock that moves only when the test moves it: the lease ends when
    // the test moves past it, however slowly the host runs the calls and
    // flushes before that.
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "0.10", "0.01");
    let (clock, time) = manual_clock();
    let fleet = proxied(&table, &proxy, &conf)
        .lease_percent(50)
        .lease_ttl(Duration::from_secs(2));
    let client = per_call_builder(&conf, fleet, Some(budget))
        .time_source(time)
        .build()
        .unwrap();
    call(&client).await.unwrap(); // leases $0.05, spends $0.01 of it
    flushed(&client).await;
    // The table is unreachable past the lease's end (2.2 s on, 0.2 s past
    // it): the process stops spending it, and a new lease cannot be had.
    proxy.set(Fault::Down);
    clock.advance(Duration::from_millis(2200));
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    // It answers again, and nobody reclaimed the lease: the flush renews it, and
    // its unspent $0.04 is spent (four calls) with no new lease taken.
    proxy.set(Fault::None);
    flushed(&client).await;
    calls_in_turn(&client, 4).await;
    flushed(&client).await;
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.committed_usd, fleet.leases),
        (dec("0.05"), Some(dec("0.05")), 1),
        "one lease of $0.05, all spent: {fleet:?}"
    );
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.committed_usd, fleet.leases),
        (dec("0.05"), Some(dec("0.05")), 0)
    );
}

#[tokio::test]
async fn a_retried_write_applied_before_does_not_extend_a_lease_the_fleet_reclaimed_since() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("retried-renewal");
    create_table(&conf, &table).await.unwrap();
    // $0.05 a day at $0.01 a call; the whole limit is leased at a time, and a
    // lease lapses 2 s after its last renewal. Both processes on one clock
    // that moves only when the test moves it: the lease ends when the test
    // moves past its end, however slowly the host runs the calls and flushes.
    let (clock, time) = manual_clock();
    let client =
        |fleet: FleetConfig| short_lease_client_on(&conf, fleet, "0.05", 100, time.clone());
    // The answers to the writes of the lease's use (and renewal) are lost
    // while armed: the table applies each, the process never hears of it.
    let lose = LoseFirstAnswer::while_armed("#used :used");
    let a = client(on_table(&table).dynamodb_client(lose.client(&conf)));
    call(&a).await.unwrap(); // leases the $0.05, spends $0.01 of it
    flushed(&a).await;
    // Its next write (a second $0.01, the lease renewed until 2 s from then) is
    // applied, and the answers to it and to every retry are lost.
    lose.arm(true);
    call(&a).await.unwrap();
    assert!(!a.meter().flush_fleet().await, "no answer");
    // 2.2 s on: past the end of the lease as the table holds it (renewed
    // until 2 s after the clock's start), the answers still lost.
    clock.advance(Duration::from_millis(2200));
    // Another process finds no room and reclaims the lapsed lease as the table
    // holds it (granted $0.05, used $0.02: committed $0.05 − $0.03 = $0.02),
    // leases the $0.03 left and spends it.
    let b = client(on_table(&table));
    calls_in_turn(&b, 3).await;
    // The first process hears from the table again about its write, sent again
    // with a new lease end: it was applied before, and the lease it renewed is
    // gone. The retry must not extend it here: the fleet gave its unspent
    // $0.03 to the other process.
    lose.arm(false);
    flushed(&a).await;
    let err = call(&a).await.unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    b.meter().shutdown().await.unwrap();
    a.meter().shutdown().await.unwrap();
    // 2 + 3 calls at $0.01: the fleet spent its $0.05, not more.
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!((fleet.spent_usd, fleet.calls), (dec("0.05"), 5));
    assert_eq!(fleet.committed_usd, Some(dec("0.05")), "{fleet:?}");
    assert_eq!(fleet.leases, 0);
}

#[test]
fn a_flush_loop_dropped_with_its_runtime_starts_again_on_the_next_calls_runtime() {
    let emu = Emulator::shared();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // A warm-up call on a runtime of its own, dropped after it (as a sync
    // wrapper that builds a runtime per call does): the flush loop it started
    // is cancelled with it.
    let first = runtime();
    let (conf, table, client) = first.block_on(async {
        let conf = emu.sdk_config().await;
        let table = table_name("new-runtime");
        create_table(&conf, &table).await.unwrap();
        let client = per_call_client(
            &conf,
            on_table(&table).flush_every(Duration::from_millis(100)),
            None,
        );
        call(&client).await.unwrap();
        (conf, table, client)
    });
    drop(first);
    runtime().block_on(async {
        for _ in 0..3 {
            call(&client).await.unwrap();
        }
        // Written by the flush loop, started again on this runtime (no
        // `flush_fleet()`): waited for, at most 20 s.
        let mut unwritten = usize::MAX;
        for _ in 0..200 {
            unwritten = client.meter().fleet_stats().unwrap().unwritten_items;
            if unwritten == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(unwritten, 0, "the flush loop runs again");
        client.meter().shutdown().await.unwrap();
        // 4 calls × $0.01.
        let status = fleet_status(&conf, &table).await.unwrap();
        let fleet = scope(&status, &BudgetScope::Client);
        assert_eq!((fleet.spent_usd, fleet.calls), (dec("0.04"), 4));
    });
}

/// An interceptor on a DynamoDB client that turns the answer to a request
/// whose body holds `marker` into a 500 (the table applied it; the answer is
/// lost as far as the SDK knows), so that the SDK sends it again: the first
/// such answer only ([`new`](Self::new)), or every one while armed
/// ([`while_armed`](Self::while_armed)).
#[derive(Debug, Clone)]
struct LoseFirstAnswer {
    marker: &'static str,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    once: bool,
    /// The invocations (`amz-sdk-invocation-id`) of marked requests: their
    /// retries are marked too (a retry's body may not be readable here).
    invocations: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Put in an operation's config bag when its request holds the marker.
#[derive(Debug, Clone)]
struct Marked;

impl aws_smithy_types::config_bag::Storable for Marked {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl LoseFirstAnswer {
    fn new(marker: &'static str) -> Self {
        LoseFirstAnswer {
            marker,
            lost: Default::default(),
            armed: std::sync::Arc::new(true.into()),
            once: true,
            invocations: Default::default(),
        }
    }

    /// Loses every answer to a marked request while [`arm`](Self::arm)ed.
    fn while_armed(marker: &'static str) -> Self {
        LoseFirstAnswer {
            armed: Default::default(),
            once: false,
            ..Self::new(marker)
        }
    }

    fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }

    /// A client of `conf` whose first answer to a marked request is lost.
    fn client(&self, conf: &aws_types::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(conf)
                .interceptor(self.clone())
                .build(),
        )
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LoseFirstAnswer {
    fn name(&self) -> &'static str {
        "LoseFirstAnswer"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request();
        let invocation = request
            .headers()
            .get("amz-sdk-invocation-id")
            .unwrap_or_default()
            .to_owned();
        let body = request.body().bytes().unwrap_or_default();
        let mut invocations = self.invocations.lock().unwrap();
        if String::from_utf8_lossy(body).contains(self.marker) {
            invocations.insert(invocation);
            cfg.interceptor_state().store_put(Marked);
        } else if invocations.contains(&invocation) {
            cfg.interceptor_state().store_put(Marked);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if cfg.load::<Marked>().is_none() {
            return Ok(());
        }
        let lose = if self.once {
            self.armed.swap(false, Ordering::SeqCst)
        } else {
            self.armed.load(Ordering::SeqCst)
        };
        if lose {
            self.lost.store(true, Ordering::SeqCst);
            let response = context.response_mut();
            *response.status_mut() = 500u16.try_into()?;
            response.headers_mut().remove("content-length");
            response.headers_mut().remove("x-amz-crc32");
            // The error's type comes from this header before the body's.
            response.headers_mut().remove("x-amzn-errortype");
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost (test)"}"#,
            );
        }
        Ok(())
    }
}

/// A process of a fleet on a table of its own (`name`) with an alerting budget of
/// $0.02 a day on the client, $0.01 a call, whose first answer to a request
/// holding `marker` is lost; the thresholds it raises, as they are raised.
async fn alerting_with_a_lost_answer(
    name: &str,
    marker: &'static str,
) -> (
    Client,
    LoseFirstAnswer,
    std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    aws_types::SdkConfig,
    String,
) {
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name(name);
    create_table(&conf, &table).await.unwrap();
    let lose = LoseFirstAnswer::new(marker);
    let raised = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let budget = {
        let raised = raised.clone();
        Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("0.02"))
            .unwrap()
            .on_alert(move |a| raised.lock().unwrap().push(a.threshold_percent))
    };
    let client = per_call_client(
        &conf,
        on_table(&table).dynamodb_client(lose.client(&conf)),
        Some(budget),
    );
    (client, lose, raised, conf, table)
}

#[tokio::test]
async fn an_alert_whose_marks_answer_was_lost_is_raised_all_the_same() {
    // The first alert mark is applied, its answer lost: the SDK sends it again.
    let (client, lose, raised, conf, table) =
        alerting_with_a_lost_answer("lost-mark", "ADD #mark").await;
    // $0.01 is 50 % of $0.02; $0.02 is past 80 % ($0.016) and 100 % ($0.02).
    call(&client).await.unwrap();
    flushed(&client).await;
    call(&client).await.unwrap();
    client.meter().shutdown().await.unwrap();
    assert!(lose.lost(), "the 50 % mark's answer was lost");
    // The retry found the threshold marked by this very process: raised, once.
    assert_eq!(*raised.lock().unwrap(), [50, 80, 100]);
    let status = fleet_status(&conf, &table).await.unwrap();
    assert_eq!(
        scope(&status, &BudgetScope::Client).alerts_passed,
        [50, 80, 100]
    );
}

/// The write that takes an alerting budget past a threshold is applied, but its
/// answer is lost: the SDK's retry finds it applied, and the threshold is still
/// checked on the item as it is, so its alert is raised, once.
#[tokio::test]
async fn a_threshold_passed_by_a_write_whose_answer_was_lost_is_still_alerted() {
    // The first spend write to the fleet's item is applied, its answer lost.
    let (client, lose, raised, conf, table) =
        alerting_with_a_lost_answer("lost-spend", "scope#fleet").await;
    // $0.01 is 50 % of $0.02.
    call(&client).await.unwrap();
    client.meter().shutdown().await.unwrap();
    assert!(lose.lost(), "the spend write's answer was lost");
    assert_eq!(*raised.lock().unwrap(), [50]);
    let status = fleet_status(&conf, &table).await.unwrap();
    assert_eq!(scope(&status, &BudgetScope::Client).alerts_passed, [50]);
}

#[tokio::test]
async fn a_reclaim_whose_answer_was_lost_leases_the_room_it_returned() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("lost-reclaim");
    create_table(&conf, &table).await.unwrap();
    // Each process on a clock that moves only when the test moves it: a lease
    // lapses when the test says, however slowly the host runs the calls and
    // flushes. The gone process's clock stops when it is killed: the last
    // flush of its flush loop (at the loop's tick after the drop) finds the
    // whole 2 s of its lease left and renews nothing.
    let (_, gone_time) = manual_clock();
    let (clock, time) = manual_clock();
    let client = |fleet: FleetConfig, time: SharedTimeSource| {
        short_lease_client_on(&conf, fleet, "0.05", 100, time)
    };
    // A process leases the whole $0.05, spends $0.01 and is gone (killed).
    let gone = client(on_table(&table), gone_time);
    call(&gone).await.unwrap();
    flushed(&gone).await;
    drop(gone);
    // 2.2 s on: past the lease's end, 2 s after it was granted.
    clock.advance(Duration::from_millis(2200));
    // Another ends its lapsed lease ($0.04 back), but the answer is lost and the
    // SDK's retry finds the lease gone: the room it returned is there all the
    // same, four calls' worth.
    let lose = LoseFirstAnswer::new("ADD committed_pico :back");
    let survivor = client(on_table(&table).dynamodb_client(lose.client(&conf)), time);
    calls_in_turn(&survivor, 4).await;
    assert!(lose.lost(), "the reclaim's answer was lost");
    assert!(matches!(
        call(&survivor).await,
        Err(Error::BudgetExceeded { .. })
    ));
    survivor.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.committed_usd),
        (dec("0.05"), Some(dec("0.05")))
    );
}

/// A table the credentials may not use: the refusal says access was denied and
/// which action, never who was denied (AWS's "User: arn:aws:iam::<account>:user/…
/// is not authorized"), in the refused call's error and in `fleet status`'s.
#[tokio::test]
async fn a_denied_table_is_said_to_be_denied_without_the_callers_identity() {
    let (conf, table, proxy) = behind_proxy("identity").await;
    let budget = enforced(BudgetScope::Client, BudgetPeriod::Day, "1", "0.01");
    proxy.set(Fault::Deny("UpdateItem"));
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), Some(budget));
    let refused = call(&client).await.unwrap_err();
    assert!(
        matches!(refused, Error::BudgetUnavailable { .. }),
        "{refused:?}"
    );
    proxy.set(Fault::Deny("Scan"));
    let proxied_conf = conf.to_builder().endpoint_url(&proxy.url).build();
    let status = fleet_status(&proxied_conf, &table).await.unwrap_err();
    for (err, action) in [
        (refused.to_string(), "UpdateItem"),
        (status.to_string(), "Scan"),
    ] {
        assert!(
            err.contains(&format!(
                "access denied: AccessDeniedException User: <principal> is not authorized \
                 to perform: {action}"
            )),
            "{err}"
        );
        assert!(
            !err.contains("123456789012") && !err.contains("sagemeter-test"),
            "{err}"
        );
    }
    proxy.set(Fault::None);
    client.meter().shutdown().await.unwrap();

    // Spend that cannot be written by shutdown: said with the last write's
    // failure, and where the spend stays.
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), None);
    proxy.set(Fault::Deny("UpdateItem"));
    call(&client).await.unwrap();
    let err = client
        .meter()
        .shutdown_within(Duration::from_secs(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "fleet item(s) not written to table `{table}` (the last write: access denied: \
             AccessDeniedException User: <principal> is not authorized"
        )) && err.contains("counted in this process only"),
        "{err}"
    );
    proxy.set(Fault::None);
}

#[tokio::test]
async fn an_alerting_budget_alerts_on_its_own_spend_while_the_table_refuses_its_writes() {
    let (conf, table, proxy) = behind_proxy("denied").await;
    // No `dynamodb:UpdateItem` for this process: nothing it spends can be
    // written, nor any alert marked.
    proxy.set(Fault::Deny("UpdateItem"));
    let raised = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let budget = {
        let raised = raised.clone();
        Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("0.02"))
            .unwrap()
            .on_alert(move |a| {
                raised
                    .lock()
                    .unwrap()
                    .push((a.threshold_percent, a.process_local))
            })
    };
    let client = per_call_client(&conf, proxied(&table, &proxy, &conf), Some(budget));
    for _ in 0..3 {
        call(&client).await.unwrap();
    }
    assert!(!client.meter().flush_fleet().await, "refused");
    // 3 × $0.01 = $0.03: past 50 % ($0.01), 80 % ($0.016) and 100 % ($0.02) of
    // $0.02, from this process's spend alone, and said so.
    assert_eq!(
        *raised.lock().unwrap(),
        [(50, true), (80, true), (100, true)]
    );
    // Granted again: the spend is written and the fleet marks the thresholds,
    // which this process does not raise a second time. (A flush retries the
    // writes that failed; the next one finds everything written.)
    proxy.set(Fault::None);
    client.meter().flush_fleet().await;
    flushed(&client).await;
    client.meter().shutdown().await.unwrap();
    assert_eq!(raised.lock().unwrap().len(), 3);
    let status = fleet_status(&conf, &table).await.unwrap();
    let fleet = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (fleet.spent_usd, fleet.alerts_passed.clone()),
        (dec("0.03"), vec![50, 80, 100])
    );
}

#[tokio::test]
async fn shutdown_waits_for_a_lease_in_flight_and_gives_it_back_unspent() {
    let (conf, table, proxy) = behind_proxy("lease-in-flight").await;
    // $0.10 a day at $0.01 a call, leased 50 % ($0.05) at a time.
    let budget = enforced(
        BudgetScope::endpoint(REALTIME_ENDPOINT),
        BudgetPeriod::Day,
        "0.10",
        "0.01",
    );
    let client = per_call_client(
        &conf,
        proxied(&table, &proxy, &conf).lease_percent(50),
        Some(budget),
    );
    // The table answers after 1 s (within one attempt of the proxy's client,
    // 2 s): the first call's lease request is out when the meter shuts down,
    // as soon as it reached the proxy. (A fixed 50 ms wait with the answer
    // 300 ms after the request measured the host: a slow one began the
    // shutdown before the request, or after the answer.)
    proxy.set(Fault::Slow(Duration::from_secs(1)));
    let received = proxy.received();
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { call(&client).await })
    };
    while proxy.received() == received {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.meter().shutdown().await.unwrap();
    // Its lease came after shutdown began: given back, not spent.
    let first = in_flight.await.unwrap();
    assert!(
        matches!(first, Err(Error::BudgetUnavailable { .. })),
        "{first:?}"
    );
    let err = call(&client).await.unwrap_err();
    assert!(matches!(err, Error::BudgetUnavailable { .. }), "{err:?}");
    proxy.set(Fault::None);
    let status = fleet_status(&conf, &table).await.unwrap();
    let endpoint = scope(&status, &BudgetScope::endpoint(REALTIME_ENDPOINT));
    assert_eq!(endpoint.spent_usd, Decimal::ZERO);
    assert_eq!(endpoint.committed_usd, Some(Decimal::ZERO));
    assert_eq!(
        endpoint.leases, 0,
        "no lease left to a process that is gone"
    );
}

#[tokio::test]
async fn fleet_init_refuses_a_table_of_another_key_schema_and_leaves_it_as_it_is() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let table = table_name("wrong-keys");
    // Another application's table of that name: partition key `id` alone.
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = create_table(&conf, &table).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("another key schema (id HASH)") && text.contains("`pk`"),
        "{text}"
    );
    // Its TTL was left off.
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .map(|s| s.as_str().to_owned());
    assert!(
        !matches!(status.as_deref(), Some("ENABLED" | "ENABLING")),
        "{status:?}"
    );
    // Checked before use, and by `fleet status`: the same refusal, not "no spend
    // yet" read from another application's table.
    for err in [
        check_table(&conf, &table).await.unwrap_err(),
        fleet_status(&conf, &table).await.unwrap_err(),
    ] {
        assert!(
            err.to_string().contains("another key schema (id HASH)"),
            "{err}"
        );
    }
}

/// A fleet table that does not exist (a name mistyped, `fleet init` not run) is
/// said with what to do, by the check a process makes before relying on it and
/// by `fleet status`; a table made by `create_table` passes.
#[tokio::test]
async fn a_missing_fleet_table_is_named_with_how_to_make_it() {
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("never-made");
    for err in [
        check_table(&conf, &table).await.unwrap_err(),
        fleet_status(&conf, &table).await.unwrap_err(),
    ] {
        assert!(
            err.to_string().contains(&format!(
                "table `{table}` does not exist: make it with `sagemeter fleet init --table {table}`"
            )),
            "{err}"
        );
    }
    create_table(&conf, &table).await.unwrap();
    check_table(&conf, &table).await.unwrap();
}

#[tokio::test]
async fn an_async_invocation_settled_by_two_processes_is_billed_once_across_the_fleet() {
    let fleet = FakeFleet::start("settled", "jobs", 1).await;
    let a = fleet.process(None).await.build().unwrap();
    let b = fleet.process(None).await.build().unwrap();
    let invocation = crate::support::submit_async(&a, "jobs", 1024).await;
    let submission = invocation.cost().clone();
    // The notification reaches both processes (SNS delivers at least once).
    let copy = serde_json::to_string(invocation.pending()).unwrap();
    let ten_seconds = || sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10));

    let first = invocation.settle(ten_seconds()).await;
    assert!(!first.is_duplicate_settlement(), "{first:#?}");
    // 10 s at the endpoint's $0.23/h (its profile is real-time):
    // 10/3600 × 0.23 = $0.000638888… → 0.000638888889 (12 places).
    assert_eq!(compute_usd(&first), dec("0.000638888889"));
    let pending: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
    let second = b
        .meter()
        .settle_async(pending, ten_seconds())
        .await
        .unwrap();
    assert!(second.is_duplicate_settlement(), "{second:#?}");
    assert_eq!((second.cost_usd, second.lines.len()), (Decimal::ZERO, 0));
    assert!(
        second.notes[0].contains("by another process of the fleet"),
        "{:?}",
        second.notes
    );
    // The second process recorded nothing of it.
    let theirs = b.meter().totals();
    assert_eq!((theirs.client_usd, theirs.calls), (Decimal::ZERO, 0));

    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
    // The fleet counts one call: its submission and its one settlement.
    let status = fleet_status(&Emulator::shared().sdk_config().await, &fleet.table)
        .await
        .unwrap();
    let client = scope(&status, &BudgetScope::Client);
    assert_eq!(
        (client.spent_usd, client.calls),
        (submission.cost_usd + first.cost_usd, 1)
    );
}

/// A settlement's mark in the table is final only once its receipt is made: a
/// process killed between its mark and its receipt (a deploy's SIGKILL, OOM)
/// leaves a mark never billed, which the next settlement of the invocation (SQS
/// redelivering the message) takes over once the claim ended, and bills. A mark
/// billed, or one whose claim still runs, stays a duplicate.
#[tokio::test]
async fn a_mark_never_billed_is_taken_over_and_billed_by_the_next_settlement() {
    let fleet = FakeFleet::start("settled-unbilled", "jobs", 1).await;
    let a = fleet.process(None).await.build().unwrap();
    let b = fleet.process(None).await.build().unwrap();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let minute_ms = 60_000;
    let key = |call_id: &str| {
        HashMap::from([
            (
                PK.to_owned(),
                AttributeValue::S(format!("settled#{call_id}")),
            ),
            (SK.to_owned(), AttributeValue::S("endpoint#jobs".to_owned())),
        ])
    };
    // A mark written by hand, as a settlement of a process now gone left it
    // (claimed 5 minutes; `claimed` false: by an earlier version, which wrote
    // no claim, as its receipt was made).
    let mark_of = |call_id: String, settled_ago_ms: i64, billed: bool, claimed: bool| {
        let mut item = key(&call_id);
        let at_ms = now_ms - settled_ago_ms;
        let at = AttributeValue::N(at_ms.to_string());
        item.insert("settled_by".into(), AttributeValue::S("gone#0".into()));
        item.insert("settled_at_ms".into(), at.clone());
        if claimed {
            item.insert(
                "claim_until_ms".into(),
                AttributeValue::N((at_ms + 5 * minute_ms).to_string()),
            );
        }
        if billed {
            item.insert("billed_at_ms".into(), at);
        }
        item.insert(
            EXPIRES_AT.into(),
            AttributeValue::N((now_ms / 1000 + 14 * 24 * 3600).to_string()),
        );
        // Boxed, as every wait below: the test's future stays small.
        Box::pin(
            fleet
                .ddb
                .put_item()
                .table_name(&fleet.table)
                .set_item(Some(item))
                .send(),
        )
    };
    let mark = |call_id: String, settled_ago_ms: i64, billed: bool| {
        mark_of(call_id, settled_ago_ms, billed, true)
    };
    let item = |call_id: String| {
        let request = fleet
            .ddb
            .get_item()
            .table_name(&fleet.table)
            .set_key(Some(key(&call_id)))
            .consistent_read(true)
            .send();
        Box::pin(async move { request.await.unwrap().item.expect("the mark") })
    };
    let ten_minutes =
        || sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600));

    // Marked 20 minutes ago by `gone#0`, never billed: past its 5-minute claim
    // (and the 5 s clock skew), so process `b` takes it over and bills it.
    let lost = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    let call_id = lost.pending().call_id().to_owned();
    let lost_copy = serde_json::to_string(lost.pending()).unwrap();
    mark(call_id.clone(), 20 * minute_ms, false).await.unwrap();
    let billed = Box::pin(b.meter().settle_async(lost.into_parts().2, ten_minutes()))
        .await
        .unwrap();
    assert!(!billed.is_duplicate_settlement(), "{billed:#?}");
    // 600 s at the endpoint's $0.23/h (ml.m5.xlarge, its profile real-time):
    // 600/3600 x 0.23 = $0.038333… → 0.038333333333 (12 places), where the
    // duplicate receipt said $0.
    assert_eq!(compute_usd(&billed), dec("0.038333333333"));
    assert!(billed.cost_usd > Decimal::ZERO);
    assert!(
        billed
            .notes
            .iter()
            .any(|n| n.contains("(gone#0) was not marked billed")),
        "{:?}",
        billed.notes
    );
    let taken = item(call_id.clone()).await;
    assert!(
        matches!(taken.get("settled_by"), Some(AttributeValue::S(by)) if by != "gone#0"),
        "{taken:?}"
    );
    assert!(taken.contains_key("billed_at_ms"), "{taken:?}");
    // A copy settled after that, in another process, is the duplicate of `b`'s.
    let pending: sagemeter::client::PendingInference = serde_json::from_str(&lost_copy).unwrap();
    let again = Box::pin(a.meter().settle_async(pending, ten_minutes()))
        .await
        .unwrap();
    assert!(again.is_duplicate_settlement(), "{again:#?}");

    // Marked 20 minutes ago by an earlier version (no claim): final, as that
    // version wrote it as its receipt was made: a duplicate, not billed again.
    let earlier = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    mark_of(
        earlier.pending().call_id().to_owned(),
        20 * minute_ms,
        false,
        false,
    )
    .await
    .unwrap();
    let dup = Box::pin(
        b.meter()
            .settle_async(earlier.into_parts().2, ten_minutes()),
    )
    .await
    .unwrap();
    assert!(dup.is_duplicate_settlement(), "{dup:#?}");

    // Marked and billed 20 minutes ago: a duplicate, as before.
    let done = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    mark(done.pending().call_id().to_owned(), 20 * minute_ms, true)
        .await
        .unwrap();
    let dup = Box::pin(b.meter().settle_async(done.into_parts().2, ten_minutes()))
        .await
        .unwrap();
    assert!(dup.is_duplicate_settlement(), "{dup:#?}");
    assert!(!dup.is_settlement_in_progress_elsewhere(), "{dup:#?}");
    assert_eq!((dup.cost_usd, dup.lines.len()), (Decimal::ZERO, 0));

    // Marked a minute ago, not billed yet: its settlement may still be
    // pricing it (its claim runs 5 minutes), so a duplicate too, one that says
    // that settlement is in progress (see
    // `a_copy_while_another_claim_runs_is_not_remembered_and_the_next_copy_bills_it`).
    let running = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    mark(running.pending().call_id().to_owned(), minute_ms, false)
        .await
        .unwrap();
    let dup = Box::pin(
        b.meter()
            .settle_async(running.into_parts().2, ten_minutes()),
    )
    .await
    .unwrap();
    assert!(dup.is_duplicate_settlement(), "{dup:#?}");
    assert!(dup.is_settlement_in_progress_elsewhere(), "{dup:#?}");

    // A settlement of its own: its mark is claimed for 5 minutes and billed
    // once its receipt is made; a copy settled in another process then is a
    // duplicate.
    let normal = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    let call_id = normal.pending().call_id().to_owned();
    let copy = serde_json::to_string(normal.pending()).unwrap();
    let first = Box::pin(normal.settle(ten_minutes())).await;
    assert!(!first.is_duplicate_settlement(), "{first:#?}");
    let written = item(call_id).await;
    let int = |name: &str| match written.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().unwrap(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(int("claim_until_ms") - int("settled_at_ms"), 5 * minute_ms);
    assert!(int("billed_at_ms") >= int("settled_at_ms"), "{written:?}");
    let pending: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
    let dup = Box::pin(b.meter().settle_async(pending, ten_minutes()))
        .await
        .unwrap();
    assert!(dup.is_duplicate_settlement(), "{dup:#?}");

    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
}

/// A copy of an async settlement that comes while another process's claim still
/// runs (SQS delivers at least once: two copies can be in flight together) is a
/// $0 duplicate that says the other settlement is still in progress, and its
/// process does not remember it as settled: should the other process be killed
/// before its receipt, the next copy, once the claim and the clock skew ended,
/// takes the mark over and bills it (a takeover counted as its two requests,
/// then the billed mark's one). Two copies in the process at once say so both:
/// the second, found while the first is still settling, is not a final
/// duplicate of it. A copy after a billed mark is a plain duplicate.
#[tokio::test]
async fn a_copy_while_another_claim_runs_is_not_remembered_and_the_next_copy_bills_it() {
    let fleet = FakeFleet::start("settled-in-progress", "jobs", 1).await;
    let a = fleet.process(None).await.build().unwrap();
    // `b` on a clock of its own, moved on by hand, flushing hourly: the
    // requests it sends in the test are its settlements'.
    let started = std::time::SystemTime::now();
    let clock = aws_smithy_async::test_util::ManualTimeSource::new(started);
    let b = m5_priced_by_overrides(&fleet.fake, "jobs", 1)
        .await
        .without_metrics()
        .time_source(SharedTimeSource::new(clock.clone()))
        .fleet(
            on_table(&fleet.table)
                .dynamodb_client(fleet.ddb.clone())
                .flush_every(Duration::from_secs(3600))
                .lease_ttl(Duration::from_secs(3 * 3600)),
        )
        .build()
        .unwrap();
    let requests = || b.meter().fleet_stats().unwrap().requests;
    let ten_minutes =
        || sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600));
    let invocation = Box::pin(crate::support::submit_async(&a, "jobs", 0)).await;
    let call_id = invocation.pending().call_id().to_owned();
    let copy = serde_json::to_string(invocation.pending()).unwrap();
    let copy = || serde_json::from_str::<sagemeter::client::PendingInference>(&copy).unwrap();

    // Process `gone` marked it just now, its claim running 5 minutes, and is
    // pricing it still (it is killed before its receipt, it turns out).
    let now_ms = i64::try_from(
        started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let until_ms = now_ms + 5 * 60_000;
    Box::pin(
        fleet
            .ddb
            .put_item()
            .table_name(&fleet.table)
            .item(PK, AttributeValue::S(format!("settled#{call_id}")))
            .item(SK, AttributeValue::S("endpoint#jobs".into()))
            .item("settled_by", AttributeValue::S("gone#0".into()))
            .item("settled_at_ms", AttributeValue::N(now_ms.to_string()))
            .item("claim_until_ms", AttributeValue::N(until_ms.to_string()))
            .item(
                EXPIRES_AT,
                AttributeValue::N((now_ms / 1000 + 14 * 24 * 3600).to_string()),
            )
            .send(),
    )
    .await
    .unwrap();

    // Two copies in `b` meanwhile, at once (the second started before the
    // table answered the first): each a $0 duplicate recorded nowhere, that
    // says the other settlement is in progress, until when, and to keep the
    // message.
    let sent = requests();
    let first_copy = b.meter().settle_async(copy(), ten_minutes());
    let second_copy = b.meter().settle_async(copy(), ten_minutes());
    let (during, also) = tokio::join!(Box::pin(first_copy), Box::pin(second_copy));
    let (during, also) = (during.unwrap(), also.unwrap());
    // The second found the first still settling here: it keeps its message
    // too, as the first copy does not bill it (and `gone` may never).
    assert!(also.is_duplicate_settlement(), "{also:#?}");
    assert!(also.is_settlement_in_progress_elsewhere(), "{also:#?}");
    assert_eq!((also.cost_usd, also.lines.len()), (Decimal::ZERO, 0));
    let first_here = also.settled_before.clone().unwrap();
    assert_eq!(first_here.by, sagemeter::billing::SettledBy::ThisClient);
    // Until 5 minutes after the first copy started, on `b`'s clock.
    assert_eq!(
        first_here.claim_until,
        Some(chrono::DateTime::<chrono::Utc>::from(
            started + Duration::from_secs(300)
        ))
    );
    assert!(
        also.notes[0].contains("still settling")
            && also.notes[0].contains("keep the queue message"),
        "{:?}",
        also.notes
    );
    assert!(during.is_duplicate_settlement(), "{during:#?}");
    assert!(during.is_settlement_in_progress_elsewhere(), "{during:#?}");
    assert_eq!((during.cost_usd, during.lines.len()), (Decimal::ZERO, 0));
    let before = during.settled_before.clone().unwrap();
    assert_eq!(before.by, sagemeter::billing::SettledBy::Fleet);
    assert_eq!(
        before.claim_until,
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(until_ms)
    );
    assert!(
        during.notes[0].contains("still in progress")
            && during.notes[0].contains("keep the queue message"),
        "{:?}",
        during.notes
    );
    // One request, the first copy's refused create: the second asked nothing.
    assert_eq!(requests() - sent, 1);
    let theirs = b.meter().totals();
    assert_eq!((theirs.client_usd, theirs.calls), (Decimal::ZERO, 0));

    // `gone` never billed it. Its message comes again after the claim and the
    // 5 s clock skew: `b` asks the table again (it did not remember the copy),
    // takes the mark over and bills it.
    clock.advance(Duration::from_secs(5 * 60 + 6));
    let sent = requests();
    let billed = Box::pin(b.meter().settle_async(copy(), ten_minutes()))
        .await
        .unwrap();
    assert!(!billed.is_duplicate_settlement(), "{billed:#?}");
    // 600 s at ml.m5.xlarge's $0.23/h (the profile is real-time):
    // 600/3600 x 0.23 = $0.038333… → 0.038333333333 (12 places), where the
    // copy before said $0 and nobody billed it.
    assert_eq!(compute_usd(&billed), dec("0.038333333333"));
    assert!(
        billed
            .notes
            .iter()
            .any(|n| n.contains("(gone#0) was not marked billed")),
        "{:?}",
        billed.notes
    );
    assert_eq!(b.meter().totals().client_usd, billed.cost_usd);
    // Three requests: the refused create, the takeover, the billed mark (two
    // before a takeover counted its own). The receipt also starts `b`'s flush
    // loop, whose first flush (at once, in the background) writes the
    // receipt's increments: under load it may be counted by now too.
    let settled_with = requests() - sent;
    assert!(settled_with >= 3, "{settled_with} requests");
    // Another copy in `b` now: billed here, final, a plain duplicate.
    let again = Box::pin(b.meter().settle_async(copy(), ten_minutes()))
        .await
        .unwrap();
    assert!(again.is_duplicate_settlement(), "{again:#?}");
    assert!(!again.is_settlement_in_progress_elsewhere(), "{again:#?}");
    let billed_here = again.settled_before.clone().unwrap();
    assert_eq!(billed_here.by, sagemeter::billing::SettledBy::ThisClient);
    assert_eq!(billed_here.claim_until, None);

    // A copy in `a` now finds the mark billed: a plain duplicate, final.
    let after = Box::pin(a.meter().settle_async(copy(), ten_minutes()))
        .await
        .unwrap();
    assert!(after.is_duplicate_settlement(), "{after:#?}");
    assert!(!after.is_settlement_in_progress_elsewhere(), "{after:#?}");
    assert_eq!(after.settled_before.as_ref().unwrap().claim_until, None);
    assert!(
        after.notes[0].contains("by another process of the fleet")
            && !after.notes[0].contains("in progress"),
        "{:?}",
        after.notes
    );
    assert_eq!((after.cost_usd, after.lines.len()), (Decimal::ZERO, 0));

    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
}

/// A process that settles a copy another process of the fleet settled first,
/// then another copy, says of both that the other process settled it: what it
/// remembers of the first copy is who billed it, not that it saw it.
#[tokio::test]
async fn a_second_copy_after_a_fleet_duplicate_is_still_settled_by_the_fleet() {
    let fleet = FakeFleet::start("settled-twice", "jobs", 1).await;
    let a = fleet.process(None).await.build().unwrap();
    let b = fleet.process(None).await.build().unwrap();
    let invocation = crate::support::submit_async(&a, "jobs", 1024).await;
    let copy = serde_json::to_string(invocation.pending()).unwrap();
    let ten_seconds = || sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10));

    let first = invocation.settle(ten_seconds()).await;
    assert!(!first.is_duplicate_settlement(), "{first:#?}");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let pending: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
        let again = b
            .meter()
            .settle_async(pending, ten_seconds())
            .await
            .unwrap();
        assert!(again.is_duplicate_settlement(), "{again:#?}");
        assert_eq!((again.cost_usd, again.lines.len()), (Decimal::ZERO, 0));
        let before = again.settled_before.clone().expect("settled before");
        assert_eq!(
            before.by,
            sagemeter::billing::SettledBy::Fleet,
            "{again:#?}"
        );
        assert!(
            again.notes[0].contains("by another process of the fleet"),
            "{:?}",
            again.notes
        );
        seen.push(before);
    }
    // Both say the same settlement: the first process's, at the same time.
    assert_eq!(seen[0], seen[1]);
    let theirs = b.meter().totals();
    assert_eq!((theirs.client_usd, theirs.calls), (Decimal::ZERO, 0));
    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
}

/// A settlement whose future is dropped after its mark reached the fleet table
/// but before its rates were found (a cold process, a caller's timeout) is
/// finished in the background as the first settlement, not as a duplicate of its
/// own mark: its compute is billed once.
#[tokio::test]
async fn a_settlement_dropped_after_marking_the_fleet_table_is_still_billed() {
    let fleet = FakeFleet::start("settled-dropped", "jobs", 1).await;
    let a = fleet.process(None).await.build().unwrap();
    let invocation = crate::support::submit_async(&a, "jobs", 0).await;
    let call_id = invocation.pending().call_id().to_owned();
    let pending = invocation.into_parts().2;

    // Another process settles it, cold: its price look-ups hang.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let receipts = Receipts::default();
    let b = Client::builder(&fleet.fake.sdk_config().await)
        .without_discovery()
        .without_metrics()
        .endpoint_profile(EndpointProfile::new(
            "jobs",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
        ))
        .price_source(GatedPrices { gate: gate.clone() })
        .fleet(on_table(&fleet.table).dynamodb_client(fleet.ddb.clone()))
        .sink(receipts.clone())
        .build()
        .unwrap();
    let mut settling = Box::pin(b.meter().settle_async(
        pending,
        sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10)),
    ));
    // Polled until its mark is in the table, then given up on.
    let marked = async {
        loop {
            let item = fleet
                .ddb
                .get_item()
                .table_name(&fleet.table)
                .key("pk", AttributeValue::S(format!("settled#{call_id}")))
                .key("sk", AttributeValue::S("endpoint#jobs".into()))
                .send()
                .await
                .unwrap();
            if item.item().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        cost = &mut settling => panic!("settled before its rates were found: {cost:#?}"),
        () = marked => {}
    }
    drop(settling);
    assert!(receipts.all().is_empty());

    gate.add_permits(1_000);
    b.meter().shutdown().await.unwrap();
    let settled = receipts.all();
    assert_eq!(settled.len(), 1, "one settlement receipt: {settled:#?}");
    assert!(!settled[0].is_duplicate_settlement(), "{:#?}", settled[0]);
    // 10 s at ml.m5.xlarge's $0.23/h (the profile is real-time):
    // 10/3600 × 0.23 = $0.000638888… → 0.000638888889.
    assert_eq!(compute_usd(&settled[0]), dec("0.000638888889"));
    assert_eq!(b.meter().totals().client_usd, settled[0].cost_usd);
    a.meter().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_settlement_the_fleet_table_cannot_check_is_billed_and_says_so() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "jobs",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let missing = table_name("settled-missing");
    let conf = Emulator::shared().sdk_config().await;
    let client = m5_priced_by_overrides(&fake, "jobs", 1)
        .await
        .without_metrics()
        .fleet(on_table(&missing).dynamodb_client(aws_sdk_dynamodb::Client::new(&conf)))
        .build()
        .unwrap();
    let invocation = crate::support::submit_async(&client, "jobs", 0).await;
    let cost = invocation
        .settle(sagemeter::client::AsyncCompletion::processed_for(
            Duration::from_secs(10),
        ))
        .await;
    // Nothing lost: billed as any settlement (10/3600 × 0.23 → 0.000638888889).
    assert!(!cost.is_duplicate_settlement());
    assert_eq!(compute_usd(&cost), dec("0.000638888889"));
    assert!(
        cost.notes
            .iter()
            .any(|n| n.starts_with("not checked for duplicates in the fleet's other processes")),
        "{:?}",
        cost.notes
    );
    assert_eq!(client.meter().totals().client_usd, cost.cost_usd);
}

/// A process of the fleet in `table` on its own clock `time`, discovering the
/// fake's endpoints, priced by overrides: ml.m5.xlarge at $0.23/h, data at
/// $0.016/GB.
fn discovered_m5(
    fake_conf: &aws_types::SdkConfig,
    time: impl aws_smithy_async::time::TimeSource + 'static,
    table: &str,
    ddb: &aws_sdk_dynamodb::Client,
) -> sagemeter::ClientBuilder {
    discovered_m5_in(
        fake_conf,
        time,
        on_table(table).dynamodb_client(ddb.clone()),
    )
}

/// [`discovered_m5`] in the fleet `fleet` configures.
fn discovered_m5_in(
    fake_conf: &aws_types::SdkConfig,
    time: impl aws_smithy_async::time::TimeSource + 'static,
    fleet: FleetConfig,
) -> sagemeter::ClientBuilder {
    use sagemeter::pricing::PriceKey;
    let r = "us-east-1";
    Client::builder(fake_conf)
        .price_override(PriceKey::hosting(r, "ml.m5.xlarge"), dec("0.23"))
        .price_override(PriceKey::DataIn { region: r.into() }, dec("0.016"))
        .price_override(PriceKey::DataOut { region: r.into() }, dec("0.016"))
        .time_source(aws_smithy_async::time::SharedTimeSource::new(time))
        .without_metrics()
        .fleet(fleet)
}

/// Waits (30 s at most, however slow the host) until `client`'s profile of
/// `endpoint` says `count` instances and the meter has applied it (its
/// background work done). A profile not found yet is not seen yet.
async fn sees_instances(client: &Client, endpoint: &str, count: u32) -> bool {
    use sagemeter::endpoint::VariantBilling;
    for _ in 0..3000 {
        // An endpoint found again after it was deleted: the failure until the
        // retry in the background lands.
        let seen = client
            .meter()
            .endpoint_profile(endpoint)
            .await
            .is_ok_and(|profile| {
                matches!(
                    profile.variants[0].billing,
                    VariantBilling::Instance { instance_count, .. } if instance_count == count
                )
            });
        if seen && client.meter().background_tasks() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Two processes of one fleet, each on its own manual clock (both at 2026-12-02
/// 00:00 UTC), calling endpoint `scaled` (1 ml.m5.xlarge at first) of a fake
/// SageMaker, with a table of their own.
struct TwoProcesses {
    fake: FakeSageMaker,
    time_a: aws_smithy_async::test_util::ManualTimeSource,
    time_b: aws_smithy_async::test_util::ManualTimeSource,
    a: Client,
    b: Client,
}

impl TwoProcesses {
    /// Both processes describe "scaled" first (so that the calls run alone on
    /// their clocks); then, at t0 + 1 s on A's clock, A's call, written first:
    /// the table's accrual starts at t0 + 1 s; then B's call from t0 on B's
    /// clock (each process has its own), held 2 s, not yet written.
    async fn a_written_first_then_b_from_t0(&self) {
        self.a.meter().endpoint_profile("scaled").await.unwrap();
        self.b.meter().endpoint_profile("scaled").await.unwrap();
        self.time_a.advance(Duration::from_secs(1));
        call_endpoint(&self.a, "scaled").await;
        flushed(&self.a).await;
        self.fake.hold();
        let b_call = tokio::spawn({
            let b = self.b.clone();
            async move { call_endpoint(&b, "scaled").await }
        });
        self.fake.wait_for_invocations(2).await;
        self.time_b.advance(Duration::from_secs(2));
        self.fake.release();
        b_call.await.unwrap();
    }

    /// A receipt of each process, once their clocks have moved on by `a_after`
    /// and `b_after`, each flushing first (so that each call sees the other's
    /// stretches as the table holds them).
    async fn receipt_of_each(&self, a_after: Duration, b_after: Duration) -> [(&str, Cost); 2] {
        self.time_a.advance(a_after);
        self.time_b.advance(b_after);
        flushed(&self.a).await;
        let at_a = call_endpoint(&self.a, "scaled").await;
        flushed(&self.b).await;
        let at_b = call_endpoint(&self.b, "scaled").await;
        [("A", at_a), ("B", at_b)]
    }
}

/// 2026-12-02 00:00 UTC, where the fleet tests' days begin.
fn midnight() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()
}

/// A fake SageMaker whose endpoint `scaled` runs on 1 ml.m5.xlarge.
async fn scaled_fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "scaled",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    fake
}

/// One process of a fleet on a table of its own (`name`, made here), on the
/// clock `time`, calling `fake`'s endpoints; with the emulator's config and the
/// table's name, to read the table's status.
async fn one_process(
    fake: &FakeSageMaker,
    name: &str,
    time: impl aws_smithy_async::time::TimeSource + 'static,
) -> (Client, aws_types::SdkConfig, String) {
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name(name);
    create_table(&conf, &table).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let client = discovered_m5(&fake.sdk_config().await, time, &table, &ddb)
        .build()
        .unwrap();
    (client, conf, table)
}

/// [`TwoProcesses`] on table `name`, their profiles refreshed after `refresh_a`
/// and `refresh_b` of real time.
async fn two_processes(name: &str, refresh_a: Duration, refresh_b: Duration) -> TwoProcesses {
    two_processes_with(name, refresh_a, refresh_b, |fleet| fleet).await
}

/// [`two_processes`], B's fleet configured by `b_fleet` from A's (the table's,
/// through the emulator's client).
async fn two_processes_with(
    name: &str,
    refresh_a: Duration,
    refresh_b: Duration,
    b_fleet: impl FnOnce(FleetConfig) -> FleetConfig,
) -> TwoProcesses {
    use aws_smithy_async::test_util::ManualTimeSource;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name(name);
    create_table(&conf, &table).await.unwrap();
    let fake = scaled_fake().await;
    let midnight = midnight();
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let fake_conf = fake.sdk_config().await;
    let (time_a, time_b) = (
        ManualTimeSource::new(midnight.into()),
        ManualTimeSource::new(midnight.into()),
    );
    let fleet = on_table(&table).dynamodb_client(ddb.clone());
    let process = |time: &ManualTimeSource, refresh: Duration, fleet: FleetConfig| {
        discovered_m5_in(&fake_conf, time.clone(), fleet)
            .discovery_refresh(refresh)
            .build()
            .unwrap()
    };
    let (a, b) = (
        process(&time_a, refresh_a, fleet.clone()),
        process(&time_b, refresh_b, b_fleet(fleet)),
    );
    TwoProcesses {
        fake,
        time_a,
        time_b,
        a,
        b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_accrual_prices_each_stretch_of_the_day_at_the_instances_then_running() {
    use sagemeter::pricing::PriceOrigin;
    // Profiles refreshed every 100 ms of real time.
    let refresh = Duration::from_millis(100);
    let p = two_processes("stretches", refresh, refresh).await;
    let hour = Duration::from_secs(3600);
    // 00:00: B makes the fleet's first call of the day (1 instance).
    call_endpoint(&p.b, "scaled").await;
    flushed(&p.b).await;
    // 06:00: A's first call.
    p.time_a.advance(6 * hour);
    call_endpoint(&p.a, "scaled").await;
    flushed(&p.a).await;
    // 12:00: autoscaling takes the variant to 3 instances. A's profile sees it at
    // 12:00, B's (its refresh later) at 13:00.
    p.time_a.advance(6 * hour);
    p.time_b.advance(13 * hour);
    p.fake.set_instance_count("scaled", "AllTraffic", 3);
    assert!(
        sees_instances(&p.a, "scaled", 3).await,
        "A never saw 3 instances"
    );
    assert!(
        sees_instances(&p.b, "scaled", 3).await,
        "B never saw 3 instances"
    );
    flushed(&p.a).await;
    flushed(&p.b).await;
    // 18:00: a receipt of each process.
    let receipts = p.receipt_of_each(6 * hour, 5 * hour).await;
    // AWS bills the instances that ran: 1 × $0.23/h for 12 h (00:00-12:00) =
    // $2.76, then 3 × $0.23/h = $0.69/h for 6 h (12:00-18:00) = $4.14; in all
    // $6.90. (Not the day at the count now, 3 × $0.23 × 18 h = $12.42; and B
    // seeing the change an hour late does not move it.)
    for (who, cost) in receipts {
        let accrual = cost.accrual.expect("an instance variant accrues");
        assert_eq!(accrual.accrued_usd, dec("6.90"), "{who}: {accrual:?}");
        let capacity: Vec<PriceOrigin> = accrual
            .priced_from
            .iter()
            .filter(|s| s.charge == sagemeter::billing::AccrualCharge::Capacity)
            .map(|s| s.price_source)
            .collect();
        assert_eq!(capacity, [PriceOrigin::Override], "{who}");
    }
    p.a.meter().shutdown().await.unwrap();
    p.b.meter().shutdown().await.unwrap();
}

/// A wall clock stepped back across midnight: the spend after the step stays in
/// the day the process was in (periods only move forward, as a process's own
/// budgets do), not in the day before, where the fleet's figures of the day
/// would miss it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_back_across_midnight_keeps_the_spend_in_the_later_day() {
    let fake = scaled_fake().await;
    let midnight = midnight();
    let clock = crate::support::SettableClock::new(midnight.into());
    let (client, conf, table) = one_process(&fake, "stepback", clock.clone()).await;
    // 2026-12-02 00:00:01: a call of the new day.
    clock.set((midnight + chrono::Duration::seconds(1)).into());
    let first = call_endpoint(&client, "scaled").await;
    // The clock steps back to 2026-12-01 23:59:58: another call.
    clock.set((midnight - chrono::Duration::seconds(2)).into());
    let second = call_endpoint(&client, "scaled").await;
    flushed(&client).await;
    let status = fleet_status(&conf, &table).await.unwrap();
    let days: Vec<(chrono::DateTime<chrono::Utc>, u64, Decimal)> = status
        .iter()
        .filter(|s| s.scope == BudgetScope::Client)
        .map(|s| (s.period_start, s.calls, s.spent_usd))
        .collect();
    // Both calls, and both receipts' money, in 2 December's fleet item; none
    // in 1 December's.
    let both = first.cost_usd + second.cost_usd;
    assert_eq!(days, [(midnight, 2, both)], "{status:#?}");
    assert_eq!(second.running_fleet_usd, Some(both));
    client.meter().shutdown().await.unwrap();
}

/// A call across midnight is the new day's first: the day's accrual begins at
/// midnight, so the day is allocated only the call's part after it, and its
/// utilisation stays at most 1 (all of the call's compute on the day would read
/// twice what the instance accrued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_midnight_brings_the_new_day_only_its_part_after_midnight() {
    let fake = scaled_fake().await;
    let time = aws_smithy_async::test_util::ManualTimeSource::new(
        (midnight() - chrono::Duration::seconds(30)).into(),
    );
    let (client, conf, table) = one_process(&fake, "midnight", time.clone()).await;
    // The endpoint described first, so that the call runs alone on the clock.
    client.meter().endpoint_profile("scaled").await.unwrap();
    // 23:59:30 to 00:00:30, alone on the one ml.m5.xlarge at $0.23/h.
    fake.hold();
    let call = tokio::spawn({
        let client = client.clone();
        async move { call_endpoint(&client, "scaled").await }
    });
    fake.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(60));
    fake.release();
    let cost = call.await.unwrap();
    // The receipt bills the whole minute: 60 s × $0.23 / 3,600 s = $0.0038333….
    let compute: Decimal = cost
        .lines
        .iter()
        .filter(|l| l.item == sagemeter::billing::LineItem::Compute)
        .filter_map(|l| l.cost_usd())
        .sum();
    assert_eq!(compute, dec("0.003833333333"));
    // The day from midnight: 30 s accrued, $0.23 × 30 / 3,600 = $0.0019166…,
    // and the call's 30 s of 60 allocated: half its 3,833,333,333 pico-USD, to
    // the whole pico-USD below, 1,916,666,666. Utilisation 1, not 2.
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.001916666667"));
    assert_eq!(accrual.allocated_usd, dec("0.001916666666"));
    assert!(accrual.utilisation.unwrap() <= Decimal::ONE, "{accrual:?}");
    // The day's item starts the accrual at midnight, not at 23:59:30: a later
    // start another process wrote first would be lowered to no purpose.
    flushed(&client).await;
    let item = aws_sdk_dynamodb::Client::new(&conf)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("scope#endpoint:scaled".into()))
        .key("sk", AttributeValue::S("day#2026-12-02".into()))
        .send()
        .await
        .unwrap();
    let from = item.item().and_then(|i| i.get("accrual_from:AllTraffic"));
    let midnight_ms = midnight().timestamp_millis().to_string();
    assert_eq!(from, Some(&AttributeValue::N(midnight_ms)));
    client.meter().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_call_from_a_profile_older_than_the_tables_stretch_does_not_overwrite_it() {
    // A refreshes its profile every 100 ms of real time; B keeps its own a day.
    let p = two_processes(
        "staleprofile",
        Duration::from_millis(100),
        Duration::from_secs(24 * 3600),
    )
    .await;
    let hour = Duration::from_secs(3600);
    // 00:00: A makes the fleet's first call of the day (1 instance).
    call_endpoint(&p.a, "scaled").await;
    flushed(&p.a).await;
    // 11:00: B describes the endpoint (1 instance), and calls nothing yet.
    p.time_b.advance(11 * hour);
    p.b.meter().endpoint_profile("scaled").await.unwrap();
    // 12:00: autoscaling takes the variant to 3 instances; A sees it at once.
    p.time_a.advance(12 * hour);
    p.fake.set_instance_count("scaled", "AllTraffic", 3);
    assert!(
        sees_instances(&p.a, "scaled", 3).await,
        "A never saw 3 instances"
    );
    flushed(&p.a).await;
    // 12:30: B's first call, from its profile of 11:00 (1 instance): the table's
    // 3 instances from 12:00 were seen after B looked, so B does not write its
    // 1 instance over them.
    p.time_b.advance(hour + hour / 2);
    call_endpoint(&p.b, "scaled").await;
    flushed(&p.b).await;
    flushed(&p.b).await;
    // 18:00: a receipt of each process. AWS bills 1 × $0.23/h for 12 h = $2.76,
    // then 3 × $0.23/h for 6 h = $4.14: $6.90. (With B's stale 1 instance from
    // 12:30: 2.76 + 0.69 × 0.5 + 0.23 × 5.5 = $4.37.)
    let receipts = p.receipt_of_each(6 * hour, 5 * hour + hour / 2).await;
    for (who, cost) in receipts {
        let accrual = cost.accrual.expect("an instance variant accrues");
        assert_eq!(accrual.accrued_usd, dec("6.90"), "{who}: {accrual:?}");
    }
    p.a.meter().shutdown().await.unwrap();
    p.b.meter().shutdown().await.unwrap();
}

/// The fleet's accrual begins at its earliest call, not at the first one
/// written: B's call starts first but its write lands after A's shorter, later
/// call's, and the day still accrues from B's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_accrual_begins_at_its_earliest_call_whichever_write_lands_first() {
    let refresh = Duration::from_secs(24 * 3600);
    // B's requests go through a proxy that counts those the table receives.
    let conf = Emulator::shared().sdk_config().await;
    let proxy = FaultProxy::start(&Emulator::shared().endpoint_url).await;
    let p = two_processes_with("earliest", refresh, refresh, |fleet| {
        fleet.dynamodb_client(proxy.dynamodb_client(&conf))
    })
    .await;
    p.a_written_first_then_b_from_t0().await;
    // B's write lands after A's.
    flushed(&p.b).await;
    // t0 + 10 s: A calls, writes (reading the table back), and calls again.
    p.time_a.advance(Duration::from_secs(9));
    call_endpoint(&p.a, "scaled").await;
    flushed(&p.a).await;
    let cost = call_endpoint(&p.a, "scaled").await;
    // 1 ml.m5.xlarge at $0.23/h from t0 to t0 + 10 s: 0.23 × 10 / 3,600 =
    // $0.000638888…, to 12 places 0.000638888889. (From A's t0 + 1 s, the
    // first written: 0.23 × 9 / 3,600 = $0.000575, short by 0.23 / 3,600 =
    // $0.0000638888… for the second before it.)
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.000638888889"), "{accrual:?}");
    p.a.meter().shutdown().await.unwrap();
    p.b.meter().shutdown().await.unwrap();
    // B counts every request the table received of it, the lowering (its
    // write's second request) among them; no fault, so no retry.
    assert_eq!(
        p.b.meter().fleet_stats().unwrap().requests,
        proxy.forwarded()
    );
}

/// Lowering the fleet's accrual start is the second request of a write that
/// was applied: throttled, the write still stands (the flush went through),
/// and the start is lowered with the item's next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_lowering_of_the_accrual_start_fails_no_flush_and_is_sent_again() {
    // The table's warnings, from whichever thread flushed.
    let _logs = crate::support::logs::capture();
    let refresh = Duration::from_secs(24 * 3600);
    let conf = Emulator::shared().sdk_config().await;
    let proxy = FaultProxy::start(&Emulator::shared().endpoint_url).await;
    // No flush but the test's own and the loop's first, at B's first call.
    let p = two_processes_with("lower-throttled", refresh, refresh, |fleet| {
        fleet
            .dynamodb_client(proxy.dynamodb_client(&conf))
            .flush_every(Duration::from_secs(3600))
            .lease_ttl(Duration::from_secs(3 * 3600))
    })
    .await;
    // Only B's lowering of the start (its condition `#f > :f`) is throttled.
    proxy.set(Fault::ThrottleWhere(&["#f > :f"]));
    // As in the test above: A's call at t0 + 1 s written first, then B's call
    // from t0 (its own clock) to t0 + 2 s, written after it.
    p.a_written_first_then_b_from_t0().await;
    // B's writes were applied: the throttled lowering after them is the one
    // failure its flush says, not "writing increments" (the write kept to be
    // sent again). (Its rate from t0 may still wait for the table to start
    // there, so the flush need not leave the item with nothing to write.)
    // (Read on every thread: the loop's own flush may be the one that wrote.)
    p.b.meter().flush_fleet().await;
    let failures: Vec<String> = crate::support::logs::everything()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["level"] == "WARN")
        .filter(|line| {
            line["fields"]["table"]
                .as_str()
                .is_some_and(|table| table.starts_with("fleet-lower-throttled-"))
        })
        .filter_map(|line| line["fields"]["doing"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !failures.is_empty() && failures.iter().all(|d| d == "lowering an accrual's start"),
        "the write stands; only its lowering failed: {failures:?}"
    );
    // So the table still starts the day at A's t0 + 1 s: at t0 + 10 s A's
    // accrual is 1 ml.m5.xlarge at $0.23/h for 9 s: 0.23 × 9 / 3,600 = $0.000575.
    p.time_a.advance(Duration::from_secs(9));
    call_endpoint(&p.a, "scaled").await;
    flushed(&p.a).await;
    let cost = call_endpoint(&p.a, "scaled").await;
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.000575"), "{accrual:?}");
    // The table answers again: B's next write (its call at t0 + 2 s) finds
    // the later start again and lowers it to B's t0.
    proxy.set(Fault::None);
    call_endpoint(&p.b, "scaled").await;
    flushed(&p.b).await;
    // Still t0 + 10 s on A's clock: 1 ml.m5.xlarge at $0.23/h from t0, 10 s:
    // 0.23 × 10 / 3,600 = $0.000638888…, to 12 places 0.000638888889.
    call_endpoint(&p.a, "scaled").await;
    flushed(&p.a).await;
    let cost = call_endpoint(&p.a, "scaled").await;
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.000638888889"), "{accrual:?}");
    p.a.meter().shutdown().await.unwrap();
    p.b.meter().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_runs_at_the_same_rate_add_one_standing_stretch_to_the_day_not_one_each() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use chrono::TimeZone;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("shortruns");
    create_table(&conf, &table).await.unwrap();
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "cron",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let fake_conf = fake.sdk_config().await;
    // Three runs of one call each (`sagemeter invoke` from cron), at 09:00,
    // 10:00 and 11:00, all at 1 instance × $0.23/h.
    for hour in [9, 10, 11] {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 12, 2, hour, 0, 0)
            .unwrap();
        let time = ManualTimeSource::new(at.into());
        let client = discovered_m5(&fake_conf, time.clone(), &table, &ddb)
            .build()
            .unwrap();
        call_endpoint(&client, "cron").await;
        client.meter().shutdown().await.unwrap();
    }
    let item = ddb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("scope#endpoint:cron".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("day#2026-12-02".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the endpoint's item of the day");
    let stretches: Vec<&String> = item.keys().filter(|k| k.starts_with("rate:")).collect();
    // The first run's rate; the later runs found the same rate in force and
    // wrote none, so the item does not grow with the number of runs.
    assert_eq!(stretches, ["rate:AllTraffic:1796202000000"], "{item:?}");
}

/// An SDK hook cannot wait for a fleet lease, so a call through the
/// `MeteringInterceptor` short of this process's leases is reserved against the
/// budget's whole limit: 20 calls at once under a $0.05 budget, each estimated at
/// $0.01, are 5 that go and 15 refused before anything is sent, not 20 that go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interceptor_calls_short_of_a_lease_still_cannot_reserve_past_the_limit() {
    let fleet = FakeFleet::start("intercepted", "rt", 1).await;
    let client = fleet
        .process(None)
        .await
        .budget(enforced(
            BudgetScope::Client,
            BudgetPeriod::Day,
            "0.05",
            "0.01",
        ))
        .build()
        .unwrap();
    let sdk = crate::support::intercepted(&fleet.fake.sdk_config().await, client.meter());
    fleet.fake.hold();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let sdk = sdk.clone();
        calls.spawn(async move {
            sdk.invoke_endpoint()
                .endpoint_name("rt")
                .body(Blob::new("{}"))
                .send()
                .await
        });
    }
    // The refused calls answer at once; the others wait for the fake's release.
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        let mut refused = 0;
        while refused < 15 {
            let err = calls.join_next().await.unwrap().unwrap().unwrap_err();
            // The budget's error is a source in the SDK error's chain.
            let mut e: &dyn std::error::Error = &err;
            let mut exceeded = false;
            while let Some(next) = e.source() {
                exceeded |= matches!(next.downcast_ref(), Some(Error::BudgetExceeded { .. }));
                e = next;
            }
            assert!(exceeded, "not a budget refusal: {err:?}");
            refused += 1;
        }
        refused
    })
    .await
    .expect("15 of the 20 calls are refused before they are sent");
    assert_eq!(refused, 15);
    fleet.fake.wait_for_invocations(5).await;
    fleet.fake.release();
    let mut answered = 0;
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
        answered += 1;
    }
    assert_eq!(answered, 5);
    assert_eq!(fleet.fake.invocations(), 5);
    client.meter().shutdown().await.unwrap();
}

/// An endpoint deleted at 01:00 and created again under its name at 10:00: the
/// fleet's accrual of the day has its instance for the hour it stood, nothing
/// for the nine hours between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_accrual_has_nothing_for_the_hours_an_endpoint_was_deleted() {
    use aws_smithy_async::test_util::ManualTimeSource;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("deleted");
    create_table(&conf, &table).await.unwrap();
    let fake = scaled_fake().await;
    let time = ManualTimeSource::new(midnight().into());
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let client = discovered_m5(&fake.sdk_config().await, time.clone(), &table, &ddb)
        .discovery_refresh(Duration::from_millis(100))
        .build()
        .unwrap();
    let hour = Duration::from_secs(3600);
    // 00:00: the first call (1 × ml.m5.xlarge at $0.23/h).
    call_endpoint(&client, "scaled").await;
    flushed(&client).await;
    // 01:00: deleted; the refresh loop finds it gone.
    fake.remove_endpoint("scaled");
    time.advance(hour);
    let described = fake.describe_calls();
    for _ in 0..3000 {
        if fake.describe_calls() > described && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.meter().endpoint_profile("scaled").await.is_err());
    flushed(&client).await;
    // 10:00: created again; a call has it looked at again, the next is priced.
    time.advance(9 * hour);
    fake.add_endpoint(
        "scaled",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let _ = client
        .invoke_endpoint()
        .endpoint_name("scaled")
        .body(Blob::new("{}"))
        .send()
        .await;
    assert!(sees_instances(&client, "scaled", 1).await);
    let cost = call_endpoint(&client, "scaled").await;
    // AWS billed 1 × $0.23 for 00:00-01:00, nothing until 10:00: $0.23, not
    // 10 h × $0.23 = $2.30.
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.23"), "{accrual:?}");
    client.meter().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_accrual_has_nothing_for_the_hours_a_variant_was_serverless() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use sagemeter::endpoint::VariantBilling;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("serverless-between");
    create_table(&conf, &table).await.unwrap();
    let fake = scaled_fake().await;
    let time = ManualTimeSource::new(midnight().into());
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let client = discovered_m5(&fake.sdk_config().await, time.clone(), &table, &ddb)
        .discovery_refresh(Duration::from_millis(100))
        .build()
        .unwrap();
    let hour = Duration::from_secs(3600);
    // 00:00: the first call (1 × ml.m5.xlarge at $0.23/h).
    call_endpoint(&client, "scaled").await;
    flushed(&client).await;
    // 01:00: the endpoint updated to a serverless config without provisioned
    // concurrency; the refresh loop sees it: nothing stands from then on.
    fake.add_endpoint("scaled", vec![FakeVariant::serverless("AllTraffic", 2048)]);
    time.advance(hour);
    let mut serverless = false;
    for _ in 0..3000 {
        serverless = client
            .meter()
            .endpoint_profile("scaled")
            .await
            .is_ok_and(|profile| {
                matches!(
                    profile.variants[0].billing,
                    VariantBilling::Serverless { .. }
                )
            });
        if serverless && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(serverless, "the refresh did not see the serverless config");
    flushed(&client).await;
    // 10:00: back on one instance; the refresh sees it, then a call.
    time.advance(9 * hour);
    fake.add_endpoint(
        "scaled",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    assert!(sees_instances(&client, "scaled", 1).await);
    let cost = call_endpoint(&client, "scaled").await;
    // AWS billed 1 × $0.23 for 00:00-01:00, no instance until 10:00: $0.23, not
    // 10 h × $0.23 = $2.30.
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("1") * dec("0.23"), "{accrual:?}");
    client.meter().shutdown().await.unwrap();
}

/// Endpoint `scaled` updated at 01:00 to a config whose only variant is Canary,
/// and rolled back to AllTraffic at 10:00: the fleet's accrual of AllTraffic has
/// its instance for the hour it stood, nothing for the nine hours between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_accrual_has_nothing_for_the_hours_a_variant_was_dropped() {
    use aws_smithy_async::test_util::ManualTimeSource;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("variant-dropped");
    create_table(&conf, &table).await.unwrap();
    let fake = scaled_fake().await;
    let time = ManualTimeSource::new(midnight().into());
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let client = discovered_m5(&fake.sdk_config().await, time.clone(), &table, &ddb)
        .discovery_refresh(Duration::from_millis(100))
        .build()
        .unwrap();
    let hour = Duration::from_secs(3600);
    // 00:00: the first call (AllTraffic, 1 × ml.m5.xlarge at $0.23/h).
    call_endpoint(&client, "scaled").await;
    flushed(&client).await;
    // 01:00: updated to a config of Canary alone; the refresh loop sees it.
    fake.add_endpoint(
        "scaled",
        vec![FakeVariant::instance("Canary", "ml.m5.xlarge", 1)],
    );
    time.advance(hour);
    let mut canary = false;
    for _ in 0..3000 {
        canary = client
            .meter()
            .endpoint_profile("scaled")
            .await
            .is_ok_and(|profile| profile.variants[0].name == "Canary");
        if canary && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(canary, "the refresh did not see the update");
    flushed(&client).await;
    // 10:00: rolled back to AllTraffic; the refresh sees it, then a call.
    time.advance(9 * hour);
    fake.add_endpoint(
        "scaled",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let mut back = false;
    for _ in 0..3000 {
        back = client
            .meter()
            .endpoint_profile("scaled")
            .await
            .is_ok_and(|profile| profile.variants[0].name == "AllTraffic");
        if back && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "the refresh did not see the rollback");
    let cost = call_endpoint(&client, "scaled").await;
    // AWS billed AllTraffic's instance at $0.23/h for 00:00-01:00 and nothing
    // while Canary ran alone: $0.23, not 10 h × $0.23 = $2.30.
    let accrual = cost.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.23"), "{accrual:?}");
    client.meter().shutdown().await.unwrap();
}

/// The cost model's worked example on the emulator's table, its term dated at
/// noon (the fleet's accrual is of a UTC day, which a term dated at midnight
/// begins): 1 × ml.m5.xlarge at $0.23/h, $0.20/h announced from
/// 2026-12-02T12:00Z. A's Price List answer (fetched at 11:50) announces the
/// term; B's (fetched at 11:55 from a Price List that has not published it yet)
/// does not, and B does not look the rate up again. A calls at 11:50 and 12:30,
/// B at 11:55, 12:40 and 12:45. AWS bills the instance at the rate in force when
/// it ran:
/// - at 12:30, 10 min × 0.23 + 30 min × 0.20 = 0.0383333… + 0.10 =
///   $0.138333333333 since the fleet's first call (at the rate looked up at
///   11:50 until the next look-up, 40 min × 0.23 = $0.153333333333);
/// - at 12:45, 10 min × 0.23 + 45 min × 0.20 = 0.0383333… + 0.15 =
///   $0.188333333333, for B as for A once B's write read the term back (at B's
///   rate, 55 min × 0.23 = $0.210833333333).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_announced_ahead_reaches_the_fleets_accrual_at_its_date() {
    use crate::support::fake_pricelist::{FakePriceList, docs};
    use aws_smithy_async::test_util::ManualTimeSource;
    use sagemeter::billing::AccrualCharge;
    use sagemeter::pricing::PriceOrigin;
    let conf = Emulator::shared().sdk_config().await;
    let table = table_name("announced");
    create_table(&conf, &table).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let fake = scaled_fake().await;
    let fake_conf = fake.sdk_config().await;
    let r = "us-east-1";
    let hosting = || docs::hosting(r, "ml.m5.xlarge", "0.2300000000");
    let data = || {
        [
            docs::data_in(r, "0.0160000000"),
            docs::data_out(r, "0.0160000000"),
        ]
    };
    let (announcing, not_yet) = (FakePriceList::start().await, FakePriceList::start().await);
    announcing.add_documents(data());
    announcing.add_documents([docs::with_term_announced(
        hosting(),
        "2026-12-02T12:00:00Z",
        "0.2000000000",
    )]);
    not_yet.add_documents(data());
    not_yet.add_documents([hosting()]);
    let utc = |t: &str| -> std::time::SystemTime {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .to_utc()
            .into()
    };
    let process = |pricelist: &FakePriceList, time: &ManualTimeSource| {
        Client::builder(&fake_conf)
            .pricing_config(&pricelist.sdk_config(r))
            .time_source(aws_smithy_async::time::SharedTimeSource::new(time.clone()))
            .without_metrics()
            .fleet(on_table(&table).dynamodb_client(ddb.clone()))
            .build()
            .unwrap()
    };
    let time_a = ManualTimeSource::new(utc("2026-12-02T11:50:00Z"));
    let time_b = ManualTimeSource::new(utc("2026-12-02T11:55:00Z"));
    let (a, b) = (process(&announcing, &time_a), process(&not_yet, &time_b));
    let minutes = |n: u64| Duration::from_secs(n * 60);
    call_endpoint(&a, "scaled").await;
    flushed(&a).await;
    call_endpoint(&b, "scaled").await;
    flushed(&b).await;
    // 12:30: A's call looks the term's rate up.
    time_a.advance(minutes(40));
    let at_a = call_endpoint(&a, "scaled").await;
    let accrual = at_a.accrual.expect("an instance variant accrues");
    assert_eq!(accrual.accrued_usd, dec("0.138333333333"), "{accrual:?}");
    let capacity: Vec<PriceOrigin> = accrual
        .priced_from
        .iter()
        .filter(|s| s.charge == AccrualCharge::Capacity)
        .map(|s| s.price_source)
        .collect();
    // Each rate's source once, the term's last: its rate from the answer kept in
    // the cache. The 11:50 stretch is that same answer, as A's call or A's
    // profile was served it: live, or already from the cache (then one source,
    // with the term's note, the latest), as the two look-ups' order falls.
    assert!(
        capacity == [PriceOrigin::Live, PriceOrigin::Cache] || capacity == [PriceOrigin::Cache],
        "{capacity:?}"
    );
    let term = accrual.priced_from.last().and_then(|s| s.note.as_deref());
    assert!(
        term.is_some_and(|n| n.starts_with("rate of the term effective 2026-12-02T12:00:00Z")),
        "{term:?}"
    );
    flushed(&a).await;
    // 12:40: B's call; its write reads the term back.
    time_b.advance(minutes(45));
    call_endpoint(&b, "scaled").await;
    flushed(&b).await;
    // 12:45: a receipt of each.
    time_a.advance(minutes(15));
    time_b.advance(minutes(5));
    for (who, client) in [("A", &a), ("B", &b)] {
        let cost = call_endpoint(client, "scaled").await;
        let accrual = cost.accrual.expect("an instance variant accrues");
        assert_eq!(
            accrual.accrued_usd,
            dec("0.188333333333"),
            "{who}: {accrual:?}"
        );
    }
    a.meter().shutdown().await.unwrap();
    b.meter().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lapsed_async_hold_is_charged_in_the_table_and_its_settlement_takes_the_charge_back() {
    let item = lapsed_hold_then_settled("lapsed-hold", false).await;
    assert_eq!(
        item.committed_usd,
        Some(dec("0.000638888889")),
        "the lease given back, the fleet has committed the settlement alone: {item:?}"
    );
}

#[tokio::test]
async fn a_copy_settled_after_the_original_was_dropped_takes_its_lapsed_charge_back_in_the_table() {
    // The original is dropped after the lapse: the charge stays until the
    // worker's copy settles. (Counted beside the charge, the table would keep
    // $0.05 beyond the receipt.)
    lapsed_hold_then_settled("lapsed-copy", true).await;
}

/// A fleet `name` of `jobs`, one process of it ([`FakeFleet::jobs_process`]) on
/// a manual clock from 2027-01-15 08:00:00 UTC, and the pending half of a job
/// that process submitted with 0 bytes in, whose receipt must cost $0.
async fn a_job_submitted_at_nothing(
    name: &str,
) -> (
    FakeFleet,
    aws_smithy_async::test_util::ManualTimeSource,
    Client,
    sagemeter::client::PendingInference,
) {
    let fleet = FakeFleet::start(name, "jobs", 1).await;
    let (time, shared) = manual_clock();
    let client = fleet.jobs_process(shared).await;
    let invocation = crate::support::submit_async(&client, "jobs", 0).await;
    assert_eq!(invocation.cost().cost_usd, Decimal::ZERO);
    let pending = invocation.into_parts().2;
    (fleet, time, client, pending)
}

/// `jobs` under an enforced $1 a day, each job estimated at $0.05, on a process
/// whose clock starts at 2027-01-15 08:00:00 UTC. One job is submitted with 0
/// bytes in at $0.016/GB = $0 (its compute is billed at settlement): the whole
/// $0.05 stays held. At 14:15 (SageMaker's defaults, 6 h in its queue and 15 min
/// to run, 22,500 s on) it has run the request or dropped it, and its
/// notification is late: the hold is charged as run, $0.05 spent and nothing
/// held, and the fleet's item counts it beyond the receipts ($0 of them). At
/// 14:20, the same day, it is settled: 10 s of compute at $0.23/h and no output,
/// 10/3600 × 0.23 = $0.000638888… → 0.000638888889 (12 places), replacing the
/// $0.05 charged in the process (0.05 − 0.05 + 0.000638888889) and in the table:
/// the receipt is its spend, the charge beyond it taken back. With `copy`, the
/// original pending invocation is dropped at 14:15 and a serde copy of it (a
/// worker's, from a queue) is what settles. Returns the table's item after the
/// process shut down.
async fn lapsed_hold_then_settled(name: &str, copy: bool) -> FleetScopeStatus {
    let (fleet, time, client, original) = a_job_submitted_at_nothing(name).await;
    let copied: Option<sagemeter::client::PendingInference> =
        copy.then(|| serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap());
    time.advance(Duration::from_secs(22_500));
    let status = &client.meter().budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("0.05"), Decimal::ZERO)
    );
    let pending = match copied {
        Some(copied) => {
            drop(original);
            copied
        }
        None => original,
    };
    flushed(&client).await;
    assert_receipts_and_charge(&fleet.jobs_item().await, Decimal::ZERO, dec("0.05"));
    time.advance(Duration::from_secs(300));
    let settled = client
        .meter()
        .settle_async(
            pending,
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10))
                .output_bytes(0),
        )
        .await
        .unwrap();
    assert_eq!(settled.cost_usd, dec("0.000638888889"));
    assert_eq!(
        client.meter().budget_status()[0].spent_usd,
        dec("0.000638888889")
    );
    client.meter().shutdown().await.unwrap();
    let item = fleet.jobs_item().await;
    assert_receipts_and_charge(&item, dec("0.000638888889"), Decimal::ZERO);
    item
}

/// A sink that moves the manual clock on by 1 s at each receipt it records
/// while armed: sinks that take their time; and then looks at the budgets of
/// `meter`, as another task's call would, moving them into the period of the
/// time it is then.
#[derive(Clone)]
struct SlowSink {
    time: aws_smithy_async::test_util::ManualTimeSource,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    meter: std::sync::Arc<std::sync::OnceLock<sagemeter::Meter>>,
}

impl std::fmt::Debug for SlowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlowSink")
    }
}

impl sagemeter::sink::CostSink for SlowSink {
    fn record(&self, _cost: &Cost) {
        if self.armed.load(Ordering::SeqCst) {
            self.time.advance(Duration::from_secs(1));
            if let Some(meter) = self.meter.get() {
                meter.budget_status();
            }
        }
    }
    fn name(&self) -> &str {
        "slow"
    }
}

#[tokio::test]
async fn a_settlement_billed_just_before_the_hour_counts_its_budget_charge_in_that_hour_too() {
    use chrono::TimeZone;
    // `jobs` under an enforced $1 an hour, each job estimated at $0.50, on a
    // process whose clock starts at 2027-01-15 08:00:00 UTC, with a sink that
    // takes 1 s over each receipt once armed, another task then looking at the
    // budgets (in the 15:00 hour by then).
    let fleet = FakeFleet::start("settle-hour-edge", "jobs", 1).await;
    let (time, shared) = manual_clock();
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let meter = std::sync::Arc::new(std::sync::OnceLock::new());
    let client = fleet
        .process(None)
        .await
        .time_source(shared)
        .budget(enforced(
            BudgetScope::endpoint("jobs"),
            BudgetPeriod::Hour,
            "1",
            "0.50",
        ))
        .sink(SlowSink {
            time: time.clone(),
            armed: armed.clone(),
            meter: meter.clone(),
        })
        .build()
        .unwrap();
    assert!(meter.set(client.meter().clone()).is_ok());
    // 08:00: submitted with 0 bytes in at $0.016/GB = $0: the whole $0.50 held.
    let pending = crate::support::submit_async(&client, "jobs", 0)
        .await
        .into_parts()
        .2;
    // 14:59:59.990 (25,199.99 s on): the hold lapsed at 14:15 (6 h in the
    // queue + 15 min to run), charged as run in the 14:00 hour: $0.50 beyond
    // the receipts in its item.
    time.advance(Duration::from_millis(25_199_990));
    assert_eq!(client.meter().budget_status()[0].spent_usd, dec("0.50"));
    flushed(&client).await;
    // Settled now: 10 s at $0.23/h and no output, 10/3600 × 0.23 =
    // 0.000638888889 (12 places), billed at 14:59:59.990 into the 14:00 item.
    // The sink takes 1 s: 15:00:00.990 by the time it is done.
    armed.store(true, Ordering::SeqCst);
    let settled = client
        .meter()
        .settle_async(
            pending,
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10))
                .output_bytes(0),
        )
        .await
        .unwrap();
    armed.store(false, Ordering::SeqCst);
    assert_eq!(settled.cost_usd, dec("0.000638888889"));
    client.meter().shutdown().await.unwrap();
    // The budget's charge is worked out at the receipt's time too: in the
    // 14:00 hour the receipt replaces the $0.50 charged (0.000638888889 −
    // 0.50 = −0.499361111111 counted, 0.000638888889 − 0.50 −
    // 0.000638888889 = −$0.50 beyond the receipt): the item nets the receipt
    // alone. The 15:00 hour has nothing. (Settled at the sink's end, 15:00:00.990,
    // or at the receipt's time after the sink, with the budgets moved to 15:00 by
    // then, the 14:00 item kept 0.000638888889 + 0.50 and the 15:00 one was
    // charged −0.000638888889: room with no spend.)
    let conf = Emulator::shared().sdk_config().await;
    let status = fleet_status(&conf, &fleet.table).await.unwrap();
    let hour = |h: u32| {
        let start = chrono::Utc.with_ymd_and_hms(2027, 1, 15, h, 0, 0).unwrap();
        status.iter().find(|s| {
            s.scope == BudgetScope::endpoint("jobs")
                && s.period == BudgetPeriod::Hour
                && s.period_start == start
        })
    };
    let item = hour(14).expect("the 14:00 item");
    assert_receipts_and_charge(item, dec("0.000638888889"), Decimal::ZERO);
    assert_eq!(hour(15), None, "nothing in the 15:00 hour");
}

#[tokio::test]
async fn a_pending_invocation_dropped_after_its_lapse_just_before_shutdown_leaves_its_charge_in_the_table()
 {
    dropped_after_its_lapse("lapsed-drop-shutdown", false).await;
}

#[tokio::test]
async fn a_pending_invocation_dropped_after_its_lapse_has_its_charge_written_at_the_next_flush() {
    dropped_after_its_lapse("lapsed-drop-flush", true).await;
}

/// `jobs` under an enforced $1 a day, each job estimated at $0.05, on a process
/// whose clock starts at 2027-01-15 08:00:00 UTC. One job is submitted with 0
/// bytes in at $0.016/GB = $0: the whole $0.05 stays held. At 14:15
/// (SageMaker's defaults, 6 h in its queue and 15 min to run, 22,500 s on) its
/// hold has lapsed, and its pending invocation is dropped, no call or status
/// having come since: the drop charges the $0.05 as run, queued for the fleet.
/// With `flush`, the next flush of the fleet writes it: the item counts $0 of
/// receipts and 0 + 0.05 = $0.05 beyond them. Then (or at once) the process
/// shuts down, handing the charge to the table before its last write if no
/// flush did: the same figures, and, the lease given back, the fleet has
/// committed $0.05 (the job may have run). Left in the queue, the table would
/// count $0 and the lease's whole unused part would go back, as if SageMaker
/// had never run it.
async fn dropped_after_its_lapse(name: &str, flush: bool) {
    let (fleet, time, client, pending) = a_job_submitted_at_nothing(name).await;
    time.advance(Duration::from_secs(22_500));
    drop(pending);
    if flush {
        flushed(&client).await;
        assert_receipts_and_charge(&fleet.jobs_item().await, Decimal::ZERO, dec("0.05"));
    }
    client.meter().shutdown().await.unwrap();
    let item = fleet.jobs_item().await;
    assert_receipts_and_charge(&item, Decimal::ZERO, dec("0.05"));
    assert_eq!(
        (item.committed_usd, item.leases),
        (Some(dec("0.05")), 0),
        "{item:?}"
    );
}

#[tokio::test]
async fn a_duplicate_of_another_processs_settlement_takes_the_lapsed_charge_back_in_the_table() {
    let fleet = FakeFleet::start("lapsed-duplicate", "jobs", 1).await;
    // One clock for both processes: 2027-01-15 08:00:00 UTC.
    let (time, shared) = manual_clock();
    // Each: $1 a day on `jobs`, each job estimated at $0.05.
    let (submitter, worker) = (
        fleet.jobs_process(shared.clone()).await,
        fleet.jobs_process(shared).await,
    );
    // The submitter: 0 bytes in at $0.016/GB = $0, the whole $0.05 held.
    let invocation = crate::support::submit_async(&submitter, "jobs", 0).await;
    let original = invocation.into_parts().2;
    let copy: sagemeter::client::PendingInference =
        serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
    // 14:15: the hold lapses, charged as run: $0.05 beyond the receipts.
    time.advance(Duration::from_secs(22_500));
    assert_eq!(submitter.meter().budget_status()[0].spent_usd, dec("0.05"));
    flushed(&submitter).await;
    // 14:20: the other process settles a copy first: 10 s at $0.23/h and no
    // output, 10/3600 × 0.23 = 0.000638888889 (12 places).
    time.advance(Duration::from_secs(300));
    let completion = || {
        sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(0)
    };
    let first = worker
        .meter()
        .settle_async(copy, completion())
        .await
        .unwrap();
    assert_eq!(first.cost_usd, dec("0.000638888889"));
    // 14:21: the submitter settles the original: a duplicate of the other
    // process's settlement, billed nowhere; its $0.05 charge is taken back,
    // here (spent $0) and in the table. (Kept, the table would count the job
    // at 0.000638888889 + 0.05.)
    time.advance(Duration::from_secs(60));
    let again = submitter
        .meter()
        .settle_async(original, completion())
        .await
        .unwrap();
    assert!(again.is_duplicate_settlement(), "{again:#?}");
    assert_eq!(
        submitter.meter().budget_status()[0].spent_usd,
        Decimal::ZERO
    );
    submitter.meter().shutdown().await.unwrap();
    worker.meter().shutdown().await.unwrap();
    assert_receipts_and_charge(
        &fleet.jobs_item().await,
        dec("0.000638888889"),
        Decimal::ZERO,
    );
}

/// A duplicate settlement is billed nowhere, yet carries the fleet's spend as it
/// stands, as every receipt of a process in a fleet does (`None` only without one).
#[tokio::test]
async fn a_duplicate_settlement_carries_the_fleets_running_spend() {
    let fleet = FakeFleet::start("duplicate-running", "jobs", 1).await;
    let (_time, shared) = manual_clock();
    let client = fleet.jobs_process(shared).await;
    // Submitted with 0 bytes in at $0.016/GB: $0.
    let invocation = crate::support::submit_async(&client, "jobs", 0).await;
    assert_eq!(invocation.cost().cost_usd, Decimal::ZERO);
    let original = invocation.into_parts().2;
    let copy: sagemeter::client::PendingInference =
        serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
    let completion = || {
        sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(0)
    };
    // 10 s at $0.23/h and no output: 10/3600 × 0.23 = 0.000638888889 (12
    // places), the fleet's whole spend today.
    let first = client
        .meter()
        .settle_async(original, completion())
        .await
        .unwrap();
    assert_eq!(first.running_fleet_usd, Some(dec("0.000638888889")));
    // Settled again: a duplicate, which adds nothing to it.
    let again = client
        .meter()
        .settle_async(copy, completion())
        .await
        .unwrap();
    assert!(again.is_duplicate_settlement(), "{again:#?}");
    assert_eq!(again.running_fleet_usd, Some(dec("0.000638888889")));
    client.meter().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hold_that_lapsed_unreleased_before_shutdown_leaves_its_charge_in_the_table() {
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::SharedTimeSource;
    use std::time::UNIX_EPOCH;

    // `jobs` under an enforced $1 a day, each job estimated at $0.05, on a
    // process whose clock starts at 2027-01-15 08:00:00 UTC. One job is
    // submitted with 0 bytes in at $0.016/GB = $0: the whole $0.05 stays held.
    let fleet = FakeFleet::start("lapsed-kept-shutdown", "jobs", 1).await;
    let time = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let client = fleet
        .jobs_process(SharedTimeSource::new(time.clone()))
        .await;
    let conf = Emulator::shared().sdk_config().await;
    let invocation = crate::support::submit_async(&client, "jobs", 0).await;
    assert_eq!(invocation.cost().cost_usd, Decimal::ZERO);
    let pending = invocation.into_parts().2;
    // 14:15 (SageMaker's defaults, 6 h in its queue + 15 min to run = 22,500 s
    // on): its hold has lapsed, and the process shuts down with the pending
    // invocation still kept, no call, status or drop having come since. The
    // shutdown charges the $0.05 as run and hands it to the table before its
    // last write: $0 of receipts, 0 + 0.05 = $0.05 beyond them, and the lease
    // given back, $0.05 committed. (Before, the hold was never charged: $0
    // beyond the receipts, and the lease's whole unused part went back, as
    // if SageMaker had never run the job.)
    time.advance(Duration::from_secs(22_500));
    client.meter().shutdown().await.unwrap();
    let status = fleet_status(&conf, &fleet.table).await.unwrap();
    let item = scope(&status, &BudgetScope::endpoint("jobs")).clone();
    assert_eq!(
        (item.spent_usd, item.unpriced_charge_usd),
        (Decimal::ZERO, dec("0.05")),
        "{item:?}"
    );
    assert_eq!(
        (item.committed_usd, item.leases),
        (Some(dec("0.05")), 0),
        "{item:?}"
    );
    drop(pending);
}
